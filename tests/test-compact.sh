#!/bin/bash
# test-compact.sh - vhdx compact (like Optimize-VHD) on real files: the disk
# reads the same (sha256 of `vhdx convert -O raw` before and after, and
# qemu-img's reading of it), the file shrinks by exactly the blocks that
# held only zeros, qemu-img check is clean, a second compact finds nothing;
# in a differencing image a zero block over the parent's data keeps reading
# zeros (ZERO, not NOT_PRESENT); a power cut during a compact (crash rules
# of the fault engine) leaves the same disk and compacting again finishes;
# fixed images are refused with exact messages.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img sha256sum python3
cd "$T"

MiB=1048576
rawsum() { "$VHDX" convert -O raw "$1" - | sha256_stdin; }
size_of() { stat -c %s "$1"; }
jfield() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
head -c 16M /dev/urandom > rnd
# put IMAGE OFF LEN: LEN random bytes at OFF
put() { head -c "$3" rnd | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }
zeros() { head -c "$3" /dev/zero | "$VHDX" write --offset "$2" "$1" || fail "zero write $1 at $2"; }

# ---- a dynamic base: 12 blocks of data, 5 of them overwritten with zeros afterwards
"$VHDX" create --size 64M --block-size 1M d.vhdx > /dev/null || fail "create"
for mib in 0 1 2 5 9 13 20 33 40 47 60 63; do put d.vhdx $((mib * MiB)) $MiB; done
for mib in 1 9 20 40 63; do zeros d.vhdx $((mib * MiB)) $MiB; done
put d.vhdx $((47 * MiB + 4096)) 512     # a zero block that is not quite zero stays
zeros d.vhdx $((47 * MiB)) 4096
want=$(rawsum d.vhdx)
before=$(size_of d.vhdx)
"$VHDX" compact --no-progress --json d.vhdx > c.json || fail "compact"
expect_eq "blocks examined" "$(jfield c.json blocks_examined)" 12
expect_eq "blocks zeroed" "$(jfield c.json blocks_zeroed)" 5
expect_eq "old file size" "$(jfield c.json old_file_size)" "$before"
expect_eq "file size after compact" "$(size_of d.vhdx)" $((before - 5 * MiB))
expect_eq "reported new size" "$(jfield c.json new_file_size)" $((before - 5 * MiB))
expect_eq "bytes freed" "$(jfield c.json bytes_freed)" $((5 * MiB))
expect_eq "content after compact" "$(rawsum d.vhdx)" "$want"
check_clean d.vhdx "after compact"
qemu-img check d.vhdx > q.out 2>&1 || fail "qemu-img check after compact: $(cat q.out)"
qemu-img convert -O raw d.vhdx q.raw || fail "qemu-img convert"
expect_eq "qemu-img reads the compacted disk" "$(sha256 q.raw)" "$want"
"$VHDX" map d.vhdx > map.txt
expect_eq "data extents left" "$(grep -c data map.txt)" 7   # blocks 0, 2, 5, 13, 33, 47, 60
pass "dynamic: 5 zero blocks released, file exactly 5 MiB smaller, same bytes (ours and qemu's)"

"$VHDX" compact --no-progress --json d.vhdx > c2.json || fail "second compact"
expect_eq "second compact zeroes" "$(jfield c2.json blocks_zeroed)" 0
expect_eq "second compact moves" "$(jfield c2.json blocks_moved)" 0
expect_eq "size after a second compact" "$(size_of d.vhdx)" $((before - 5 * MiB))
"$VHDX" compact --no-progress d.vhdx > c.txt || fail "text report"
grep -Eq '^ *blocks_zeroed: 0$' c.txt || fail "text report: $(cat c.txt)"
pass "a second compact finds nothing to do"

# writes after a compact go to new blocks at the end and read back
put d.vhdx $((30 * MiB)) 3000000
"$VHDX" convert -O raw d.vhdx w.raw
cmp -s <(head -c 3000000 rnd) <(tail -c +$((30 * MiB + 1)) w.raw | head -c 3000000) || fail "write after compact"
qemu-img check d.vhdx > /dev/null 2>&1 || fail "qemu-img check after writing to the compacted image"
pass "the compacted image takes writes"

# ---- a differencing child: a zero block over the parent's data must keep reading zeros
"$VHDX" create --size 16M --block-size 1M base.vhdx > /dev/null || fail "create base"
put base.vhdx 0 16M
"$VHDX" create --parent base.vhdx --block-size 1M child.avhdx > /dev/null || fail "create child"
put child.avhdx $((2 * MiB)) $MiB         # fully present ...
zeros child.avhdx $((2 * MiB)) $MiB       # ... then all zero: must become ZERO
put child.avhdx $((5 * MiB + 512)) 4096   # partially present, stays
put child.avhdx $((9 * MiB)) $MiB         # data that moves down
want=$(rawsum child.avhdx)
"$VHDX" convert -O raw child.avhdx c.raw
cmp -s <(head -c $MiB /dev/zero) <(tail -c +$((2 * MiB + 1)) c.raw | head -c $MiB) || fail "child zero block before"
cbefore=$(size_of child.avhdx)
"$VHDX" compact --no-progress --json child.avhdx > cc.json || fail "compact child"
expect_eq "child blocks zeroed" "$(jfield cc.json blocks_zeroed)" 1
expect_eq "child content after compact" "$(rawsum child.avhdx)" "$want"
"$VHDX" convert -O raw child.avhdx c2.raw
cmp -s <(head -c $MiB /dev/zero) <(tail -c +$((2 * MiB + 1)) c2.raw | head -c $MiB) ||
	fail "compact exposed the parent's data under the child's zero block"
expect_eq "child file size" "$(size_of child.avhdx)" $((cbefore - MiB))
"$VHDX" map --layers child.avhdx > cmap.txt || fail "map child"
pass "differencing: the zero block became ZERO (parent stays hidden), same bytes, 1 MiB smaller"

# ---- VHD: a dynamic disk's zero blocks go; a differencing disk's zero block stays (no ZERO state in VHD)
"$VHDX" create --size 40M --block-size 2M v.vhd > /dev/null || fail "create vhd"
for m in 0 4 8 12 20 30 38; do put v.vhd $((m * MiB)) 2M; done
for m in 4 12 30; do zeros v.vhd $((m * MiB)) 2M; done
want=$(rawsum v.vhd)
vbefore=$(size_of v.vhd)
"$VHDX" compact --no-progress --json v.vhd > v.json || fail "compact vhd"
expect_eq "vhd blocks zeroed" "$(jfield v.json blocks_zeroed)" 3
expect_eq "vhd content after compact" "$(rawsum v.vhd)" "$want"
# each block: a 512-byte sector bitmap and 2 MiB of data
expect_eq "vhd file size" "$(size_of v.vhd)" $((vbefore - 3 * (2 * MiB + 512)))
qemu-img convert -f vpc -O raw v.vhd vq.raw || fail "qemu-img convert of the compacted VHD"
"$VHDX" convert -O raw v.vhd v.raw
cmp -s -n "$(stat -c %s vq.raw)" vq.raw v.raw || fail "qemu-img reads the compacted VHD differently"
"$VHDX" create --parent v.vhd vc.vhd > /dev/null || fail "create vhd child"
zeros vc.vhd $((8 * MiB)) 2M                # zeros over the parent's data: must stay
put vc.vhd $((21 * MiB)) 4096
want=$(rawsum vc.vhd)
"$VHDX" compact --no-progress --json vc.vhd > vc.json || fail "compact vhd child"
expect_eq "vhd child zero blocks kept" "$(jfield vc.json blocks_zeroed)" 0
expect_eq "vhd child content after compact" "$(rawsum vc.vhd)" "$want"
pass "VHD: 3 zero blocks released (exact size, qemu-img agrees); a differencing VHD keeps its zeros over the parent"

# ---- a power cut during a compact, then compacting again
"$VHDX" create --size 32M --block-size 1M p.vhdx > /dev/null || fail "create p"
for mib in 0 3 4 8 12 16 20 24 28 31; do put p.vhdx $((mib * MiB)) $MiB; done
for mib in 3 8 16 24; do zeros p.vhdx $((mib * MiB)) $MiB; done
want=$(rawsum p.vhdx)
psize=$(size_of p.vhdx)
for n in 1 2 3 5 8; do
	cp p.vhdx pc.vhdx
	echo "op=write nth=$n crash" > rules
	"$VHDX" --faults rules compact --no-progress pc.vhdx > /dev/null 2> err && fail "compact survived a crash at write $n"
	expect_eq "content after a crash at write $n" "$(rawsum pc.vhdx)" "$want"
	"$VHDX" compact --no-progress pc.vhdx > /dev/null || fail "compact after a crash at write $n"
	expect_eq "content after compacting again ($n)" "$(rawsum pc.vhdx)" "$want"
	expect_eq "size after compacting again ($n)" "$(size_of pc.vhdx)" $((psize - 4 * MiB))
	check_clean pc.vhdx "after crash $n and compact"
	qemu-img check pc.vhdx > /dev/null 2>&1 || fail "qemu-img check after crash $n and compact"
done
pass "power cuts at writes 1, 2, 3, 5, 8 of a compact: same disk, and compact again finishes"

# ---- images made by Windows, Disk2VHD and qemu (../shared/conformance): same bytes as the manifest after compact
if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	for f in win10-dynamic-10M.vhdx win11-dynamic-6M.vhdx win81-dynamic-100M.vhdx ws2022-ntfs-5M.vhdx; do
		[ -f "$CONFORMANCE/$f.xz" ] || continue
		img=$(conformance_image "$f")
		s0=$(size_of "$img")
		"$VHDX" compact --no-progress "$img" > /dev/null || fail "compact $f"
		expect_eq "$f after compact" "$(rawsum "$img")" "$(manifest_field "$f.xz" raw_sha256)"
		[ "$(size_of "$img")" -le "$s0" ] || fail "$f grew"
		qemu-img check "$img" > /dev/null 2>&1 || fail "qemu-img check of $f after compact"
		rm -f "$img"
	done
	# a 10 GiB disk with a dirty log (replayed by the writable open): compared with the untouched copy
	# (read through an in-memory replay, which test-conformance-vhdx checks against the manifest)
	orig=$(conformance_image dirtylog-10G.vhdx)
	cp "$orig" dl.vhdx
	"$VHDX" compact --no-progress dl.vhdx > /dev/null || fail "compact dirtylog-10G.vhdx"
	"$VHDX" diff "$orig" dl.vhdx > diff.out || fail "dirtylog-10G.vhdx reads differently after compact: $(head -5 diff.out)"
	qemu-img check dl.vhdx > /dev/null 2>&1 || fail "qemu-img check of dirtylog-10G.vhdx after compact"
	rm -f "$orig" dl.vhdx
	# Disk2VHD leaves zero-filled blocks allocated: compaction must give most of the 260 MiB back
	img=$(conformance_image disk2vhd-256M.vhdx)
	"$VHDX" compact --no-progress --json "$img" > d2v.json || fail "compact disk2vhd"
	[ "$(jfield d2v.json blocks_zeroed)" -gt 100 ] || fail "disk2vhd: only $(jfield d2v.json blocks_zeroed) zero blocks found"
	[ "$(size_of "$img")" -lt $((64 * MiB)) ] || fail "disk2vhd: still $(size_of "$img") bytes"
	expect_eq "disk2vhd-256M.vhdx after compact" "$(rawsum "$img")" "$(manifest_field disk2vhd-256M.vhdx.xz raw_sha256)"
	qemu-img check "$img" > /dev/null 2>&1 || fail "qemu-img check of disk2vhd-256M.vhdx after compact"
	rm -f "$img"
	# Disk2VHD's VHD of a zero-filled disk: every block released, the file cut behind the BAT
	img=$(conformance_image disk2vhd-zerofilled.vhd)
	"$VHDX" compact --no-progress --json "$img" > d2vhd.json || fail "compact disk2vhd-zerofilled.vhd"
	expect_eq "disk2vhd-zerofilled.vhd after compact" "$(rawsum "$img")" "$(manifest_field disk2vhd-zerofilled.vhd.xz raw_sha256)"
	[ "$(size_of "$img")" -lt $MiB ] || fail "disk2vhd-zerofilled.vhd: still $(size_of "$img") bytes"
	qemu-img convert -f vpc -O raw "$img" z.raw || fail "qemu-img convert of the compacted disk2vhd-zerofilled.vhd"
	"$VHDX" convert -O raw "$img" zv.raw
	cmp -s -n "$(stat -c %s z.raw)" z.raw zv.raw || fail "qemu-img reads the compacted disk2vhd-zerofilled.vhd differently"
	rm -f "$img" z.raw zv.raw
	pass "conformance VHDX and VHD images read as their manifest says after compact; qemu-img agrees"
else
	echo "conformance images not found at $CONFORMANCE: that part skipped"
fi

# ---- refusals
"$VHDX" create --type fixed --size 4M f.vhdx > /dev/null || fail "create fixed"
expect_fail_msg "^vhdx compact: f.vhdx is a fixed disk: every block stays allocated, there is nothing to compact$" \
	"$VHDX" compact --no-progress f.vhdx
"$VHDX" create --type fixed --size 4M f.vhd > /dev/null || fail "create fixed vhd"
expect_fail_msg "^vhdx compact: f.vhd is a fixed disk: every block stays allocated, there is nothing to compact$" \
	"$VHDX" compact --no-progress f.vhd
"$VHDX" compact > /dev/null 2>&1; expect_eq "compact without an image" $? 2
pass "fixed images (VHDX and VHD) are refused with exact messages"
