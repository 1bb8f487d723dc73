#!/bin/bash
# test-chain.sh - differencing chains (AVHDX over VHDX): depth 1 to 8 with
# different block sizes per layer, 512 and 4096-byte sectors, writes that
# cover parts of sectors and blocks; every read equals a raw mirror kept by
# the test, vhdimount reads the same bytes, and parents are never modified.
# Then the parent search (folders, explicit parent, path maps), the linkage
# check and its override, cycles, the depth cap, and the errors of broken
# chains, each with its exact message.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3

write_both() { # IMG MIRROR OFFSET LEN
	head -c "$4" /dev/urandom > "$T/chunk"
	"$VHDX" write --offset "$3" "$1" < "$T/chunk" || fail "vhdx write $1 at $3+$4"
	dd if="$T/chunk" of="$2" bs=64K oflag=seek_bytes seek="$3" conv=notrunc status=none || fail "dd mirror"
}
json() { # EXPR INFO-ARGS...: evaluates EXPR over `vhdx info --json` as d
	local expr="$1"
	shift
	"$VHDX" info --json "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); print($expr)"
}

n7=0
# vhdimount_check (functions.sh): libvhdi (vhdimount) returns wrong data for VHDX chains
# with ZERO, UNDEFINED or UNMAPPED blocks in a child (issue #21); these chains have none

for lss in 512 4096; do
	dir="$T/chain$lss"
	mkdir -p "$dir"
	size=$((48 * 1048576 + 8192))
	"$VHDX" create --size $size --block-size 4M --logical-sector-size $lss "$dir/base.vhdx" || fail "create base"
	truncate -s $size "$T/mirror$lss"
	write_both "$dir/base.vhdx" "$T/mirror$lss" 0 10000000
	write_both "$dir/base.vhdx" "$T/mirror$lss" $((size - 5000)) 5000
	parent="$dir/base.vhdx"
	bsizes=(1M 2M 8M 1M 32M 2M 4M 16M)
	for depth in 1 2 3 4 5 6 7 8; do
		child="$dir/c$depth.avhdx"
		"$VHDX" create --parent "$parent" --block-size ${bsizes[$((depth - 1))]} "$child" || fail "create depth $depth"
		sums=$(sha256sum "$dir"/*.vhdx "$dir"/c*.avhdx | grep -v "$child")
		# partial sectors, sector runs inside a block, block-straddling and whole blocks
		write_both "$child" "$T/mirror$lss" $((depth * 1000 + 3)) 700
		write_both "$child" "$T/mirror$lss" $((depth * 2097152 - 1024)) 70000
		write_both "$child" "$T/mirror$lss" $((depth * 3000000 + 512)) 1048576
		write_both "$child" "$T/mirror$lss" $((size - depth * 4096 - 17)) 1000
		"$VHDX" convert -O raw "$child" "$T/out.raw" || fail "read depth $depth"
		cmp "$T/out.raw" "$T/mirror$lss" || fail "lss=$lss depth $depth: chain read differs from the mirror"
		echo "$sums" | sha256sum --quiet -c - || fail "a parent changed while writing the leaf at depth $depth"
		expect_eq "chain depth" "$(json "d['chain_depth']" "$child")" $((depth + 1))
		# vhdimount (libvhdi) mishandles 4096-byte sectors in children; compare with 512 only
		[ $lss = 512 ] && { [ $depth = 1 ] || [ $depth = 4 ] || [ $depth = 8 ]; } && vhdimount_check "$child" "$T/mirror$lss" $((depth + 1))
		# 7-Zip reads VHDX chains through relative_path, 4096-byte sectors too (limits: functions.sh)
		sevenzip_agrees "$child" "$(sha256 "$T/mirror$lss")" "lss=$lss depth $depth" && n7=$((n7 + 1))
		parent="$child"
	done
	pass "lss=$lss: chains of depth 1..8 read exactly as the mirror; parents unchanged"
done
if command -v 7zz > /dev/null; then
	[ "$n7" -ge 16 ] || fail "7-Zip read only $n7 of the 16 chains"
	pass "7-Zip reads the same bytes from $n7 VHDX chains of depth 1..8"
fi

# --no-parent: the leaf alone, zeros where it holds nothing
dir="$T/chain512"
"$VHDX" convert -O raw --no-parent "$dir/c8.avhdx" "$T/leaf.raw" || fail "no-parent read"
"$VHDX" map --json --no-parent "$dir/c8.avhdx" > "$T/leafmap.json"
python3 - "$T/leaf.raw" "$T/leafmap.json" "$T/mirror512" <<'EOF' || fail "--no-parent view"
import json, sys
raw = open(sys.argv[1], "rb").read(); mirror = open(sys.argv[3], "rb").read()
for e in json.load(open(sys.argv[2])):
    a, b = e["offset"], e["offset"] + e["length"]
    if e["type"] == "data":
        assert raw[a:b] == mirror[a:b], "data extent %d+%d differs" % (a, b - a)
    else:
        assert raw[a:b] == bytes(b - a), "zero extent %d+%d not zero" % (a, b - a)
EOF
pass "--no-parent reads the leaf alone"

# moved chain: parent search folders, explicit parent, path maps
mkdir -p "$T/moved"
mv "$dir/base.vhdx" "$T/moved/base.vhdx"
expect_fail_msg "parent \"base.vhdx\" .*not found.*Tried: .*base.vhdx \(not found\)" "$VHDX" info "$dir/c8.avhdx"
expect_eq "depth with --parent-dir" "$(json "d['chain_depth']" --parent-dir "$T/moved" "$dir/c8.avhdx")" 9
"$VHDX" convert -O raw --parent-dir /nonexistent --parent-dir "$T/moved" "$dir/c8.avhdx" "$T/out.raw" || fail "--parent-dir"
cmp "$T/out.raw" "$T/mirror512" || fail "read through --parent-dir differs"
cp "$T/moved/base.vhdx" "$T/renamed.vhdx"
expect_eq "depth with --parent" "$(json "d['chain_depth']" --parent "$T/renamed.vhdx" "$dir/c1.avhdx")" 2
# the absolute path stored by create is '\dir\base.vhdx'; map it with --path-map
abs=$(json "[p['value'] for p in d['layers'][0]['parent']['paths'] if p['key']=='absolute_win32_path'][0]" --no-parent "$dir/c1.avhdx")
mkdir -p "$T/mapped"
cp "$T/moved/base.vhdx" "$T/mapped/base.vhdx"
winprefix="${abs%\\base.vhdx}\\"
expect_eq "depth with --path-map" "$(json "d['chain_depth']" --path-map "$winprefix=$T/mapped" "$dir/c1.avhdx")" 2
mv "$T/moved/base.vhdx" "$dir/base.vhdx"
pass "parent search: folders, explicit parent, path map; error lists the paths tried"

# linkage: a changed parent is refused with both GUIDs unless told to ignore it
mkdir -p "$T/link" && cd "$T/link"
"$VHDX" create --size 8M --block-size 1M base.vhdx
"$VHDX" create --parent base.vhdx child.avhdx
head -c 4096 /dev/urandom | "$VHDX" write --offset 0 base.vhdx   # new DataWriteGuid
expect_fail_msg "wrong identity.*child links to \{[0-9a-f-]{36}\}, this file is \{[0-9a-f-]{36}\}" \
	"$VHDX" convert -O raw child.avhdx "$T/x.raw"
"$VHDX" convert -O raw --ignore-id-mismatch child.avhdx "$T/x.raw" || fail "--ignore-id-mismatch"
cmp <(head -c 4096 "$T/x.raw") <("$VHDX" convert -O raw base.vhdx - | head -c 4096) || fail "override reads the parent"
# a parent swapped for another image of the same name: same refusal
mv base.vhdx old.vhdx
"$VHDX" create --size 8M base.vhdx
expect_fail_msg "wrong identity" "$VHDX" info child.avhdx
pass "linkage mismatch refused with both GUIDs; --ignore-id-mismatch accepts it"

# a cycle: c1 -> p, where p is a copy of c2 whose parent is c1
mkdir -p "$T/cycle" && cd "$T/cycle"
"$VHDX" create --size 8M --block-size 1M p.vhdx
"$VHDX" create --parent p.vhdx c1.avhdx
"$VHDX" create --parent c1.avhdx c2.avhdx
cp c2.avhdx p.vhdx
expect_fail_msg "already layer 0 of this chain \(a cycle\)" "$VHDX" info --ignore-id-mismatch c1.avhdx
pass "cycle refused"

# the depth cap
expect_fail_msg "deeper than the limit of 3 layers" "$VHDX" info --max-depth 3 "$T/chain512/c8.avhdx"
pass "depth cap"

# ZERO blocks in a child read as zeros, never the parent (libvhdi reads the parent)
mkdir -p "$T/zero" && cd "$T/zero"
"$VHDX" create --size 8M --block-size 1M base.vhdx
head -c 8388608 /dev/urandom > full && "$VHDX" write base.vhdx < full
"$VHDX" create --parent base.vhdx --block-size 1M child.avhdx
head -c 1048576 /dev/zero | "$VHDX" write --offset 2097152 child.avhdx
expect_eq "ZERO blocks in the child" "$(json "d['layers'][0]['bat']['payload_states'].get('ZERO', 0)" --no-parent child.avhdx)" 1
"$VHDX" convert -O raw child.avhdx out.raw
cmp <(dd if=out.raw bs=1M skip=2 count=1 status=none) <(head -c 1048576 /dev/zero) || fail "ZERO block reads the parent"
cmp <(dd if=out.raw bs=1M count=2 status=none) <(head -c 2097152 full) || fail "NOT_PRESENT blocks must read the parent"
pass "ZERO blocks of a child do not fall through"

# a partially present block whose sector bitmap block is not present is corrupt
"$VHDX" create --parent base.vhdx --block-size 1M part.avhdx
head -c 512 /dev/urandom | "$VHDX" write --offset 4096 part.avhdx
python3 - part.avhdx "$("$VHDX" info --json --no-parent part.avhdx)" <<'EOF'
import json, struct, sys
info = json.loads(sys.argv[2])["layers"][0]
idx = info["chunk_ratio"]            # the sector-bitmap entry of chunk 0
with open(sys.argv[1], "r+b") as f:
    f.seek(info["bat"]["offset"] + 8 * idx)
    f.write(struct.pack("<Q", 0))
EOF
ratio=$(json "d['layers'][0]['chunk_ratio']" --no-parent part.avhdx)
expect_eq "chunk ratio of 1 MiB blocks, 512-byte sectors" "$ratio" 4096
expect_fail_msg "chunk 0 has partially present blocks but its sector bitmap block \(BAT entry $ratio\) is not present" \
	"$VHDX" convert -O raw part.avhdx "$T/x.raw"
pass "missing sector bitmap block refused"

# fixed VHDX beyond 4 GiB (libvhdi reads it wrong): data at 4.5 GiB reads back, also in qemu-img
if command -v qemu-img >/dev/null; then
	"$VHDX" create --type fixed --size 5G --block-size 32M big.vhdx
	head -c 65536 /dev/urandom > chunk
	"$VHDX" write --offset 4831838208 big.vhdx < chunk
	"$VHDX" convert -O raw --offset 4831838208 --length 65536 big.vhdx slice.raw
	cmp slice.raw chunk || fail "fixed VHDX > 4 GiB: our read"
	qemu-img dd -f vhdx -O raw if=big.vhdx of=qslice.raw bs=65536 skip=73728 count=73729 2>/dev/null || fail "qemu-img dd"
	cmp qslice.raw chunk || fail "fixed VHDX > 4 GiB: qemu-img reads different bytes"
	rm -f big.vhdx slice.raw qslice.raw
	pass "fixed VHDX beyond 4 GiB"
fi
