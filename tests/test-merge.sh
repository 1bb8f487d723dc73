#!/bin/bash
# test-merge.sh - vhdx merge and vhdx reparent.  For chains of depth 1..5
# (VHDX with a different block size per layer, partial blocks and ZERO
# blocks in children; VHD chains), the merged ancestor reads exactly as the
# leaf read before (sha256 of `vhdx convert -O raw`), also with --into a
# middle layer, where the re-pointed layer above must still read the same;
# qemu-img check/convert and vhdimount agree for VHDX; power cuts during a
# merge (crash rules of the fault engine), then the same merge again, give
# the same bytes; nothing changes when the chain cannot be opened; reparent
# repairs moved files and refuses a parent with another identity unless
# --ignore-id-mismatch.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img sha256sum python3
cd "$T"

n7=0

head -c 16M /dev/urandom > rnd
# put LEN bytes of rnd (from SKIP) at OFF of IMAGE
put() { tail -c +$((RANDOM * 100 + 1)) rnd | head -c "$3" | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }

# build_chain DIR EXT DEPTH: base + DEPTH children with varied block sizes, partial
# blocks, ZERO blocks over data; prints nothing; layers DIR/l0.EXT (base) .. lDEPTH.EXT
build_chain() {
	local dir=$1 ext=$2 depth=$3 bs i
	mkdir -p "$dir"
	if [ "$ext" = vhd ]; then bs=(512K 1M 2M 64K 4M 1M); else bs=(1M 2M 4M 1M 8M 2M); fi
	"$VHDX" create --size 40M --block-size "${bs[0]}" "$dir/l0.$ext" >/dev/null || fail "create base"
	put "$dir/l0.$ext" 0 9M
	put "$dir/l0.$ext" 30M 3000000
	for ((i = 1; i <= depth; i++)); do
		"$VHDX" create --parent "$dir/l$((i - 1)).$ext" --block-size "${bs[$i]}" "$dir/l$i.$ext" >/dev/null ||
			fail "create layer $i"
		put "$dir/l$i.$ext" $((i * 1048576 + i * 4096 + 512)) $((5000 + i * 3000))   # partial block
		put "$dir/l$i.$ext" $((12 + i * 3))M 1M                                     # fresh area
		"$VHDX" write --offset $((i * 2))M --discard 4M "$dir/l$i.$ext" || fail "discard in layer $i" # over data
	done
}

# ---- every depth, VHDX and VHD, merged into the base
for ext in vhdx vhd; do
	for depth in 1 2 3 5; do
		d="$T/$ext$depth"
		build_chain "$d" $ext $depth
		want=$(rawsum "$d/l$depth.$ext")
		"$VHDX" merge --no-progress --into "$d/l0.$ext" "$d/l$depth.$ext" > out || fail "merge $ext depth $depth"
		expect_eq "$ext depth $depth: merged base" "$(rawsum "$d/l0.$ext")" "$want"
		[ -e "$d/l$depth.$ext.merging" ] && fail "merge record left behind"
		grep -q "merged: $d/l$depth.$ext (no longer valid" out || fail "merged layer not reported: $(cat out)"
		check_clean "$d/l0.$ext" "of the merged base ($ext depth $depth)"
		# 7-Zip as a further reader (vhdimount only below: it misreads VHD chains, issue #21)
		sevenzip_agrees "$d/l0.$ext" "$want" "$ext depth $depth: merged base" && n7=$((n7 + 1))
		if [ $ext = vhdx ]; then
			qemu-img check "$d/l0.vhdx" > /dev/null || fail "qemu-img check after merge at depth $depth"
			qemu-img convert -O raw "$d/l0.vhdx" "$T/q.raw"
			expect_eq "qemu-img reads the merged base ($depth)" "$(sha256 "$T/q.raw")" "$want"
		fi
	done
	pass "$ext: chains of depth 1, 2, 3, 5 merged into the base read as the leaf did"
done
command -v 7zz > /dev/null && { [ "$n7" = 8 ] || fail "7-Zip read only $n7 of the 8 merged bases"; }

if vhdimount_usable; then
	mkdir -p vm
	vhdimount "$T/vhdx5/l0.vhdx" vm >/dev/null 2>&1 || fail "vhdimount could not open the merged base"
	got=$(sha256 vm/vhdi1); fusermount3 -u vm
	"$VHDX" convert -O raw "$T/vhdx5/l0.vhdx" m.raw
	expect_eq "vhdimount reads the merged base" "$got" "$(sha256 m.raw)"
	pass "vhdimount reads the merged base the same"
fi

# ---- the immediate parent by default, and --into a middle layer with the layer above re-pointed
for ext in vhdx vhd; do
	d="$T/mid$ext"
	build_chain "$d" $ext 4
	want4=$(rawsum "$d/l4.$ext")
	want3=$(rawsum "$d/l3.$ext")
	"$VHDX" merge --no-progress --into "$d/l1.$ext" "$d/l3.$ext" > out || fail "merge into the middle ($ext)"
	grep -q "re-pointed to the ancestor: .*l4.$ext" out || fail "l4 not re-pointed: $(cat out)"
	expect_eq "$ext: l1 after merging l3 into it" "$(rawsum "$d/l1.$ext")" "$want3"
	expect_eq "$ext: l4 over the merged l1" "$(rawsum "$d/l4.$ext")" "$want4"
	"$VHDX" merge --no-progress --delete "$d/l4.$ext" > out || fail "merge into the immediate parent ($ext)"
	[ -e "$d/l4.$ext" ] && fail "--delete left l4"
	expect_eq "$ext: l1 after merging l4" "$(rawsum "$d/l1.$ext")" "$want4"
	"$VHDX" merge --no-progress "$d/l1.$ext" > /dev/null || fail "merge l1 into the base ($ext)"
	expect_eq "$ext: base after the last merge" "$(rawsum "$d/l0.$ext")" "$want4"
	check_clean "$d/l0.$ext" "of the base after the last merge ($ext)"
	[ $ext = vhdx ] && { qemu-img check "$d/l0.vhdx" > /dev/null || fail "qemu-img check ($ext mid)"; }
done
pass "--into a middle layer: the ancestor and the re-pointed layer above read as before; --delete; default parent"

# ---- nothing changes when the chain cannot be opened
d="$T/broken"
build_chain "$d" vhdx 2
before=$(sha256 "$d/l0.vhdx")
mv "$d/l1.vhdx" "$d/moved.vhdx"
expect_fail_msg "nothing was changed.*not found" "$VHDX" merge --no-progress "$d/l2.vhdx"
expect_eq "base untouched by a failed merge" "$(sha256 "$d/l0.vhdx")" "$before"
[ -e "$d/l2.vhdx.merging" ] && fail "a failed open left a merge record"
pass "a chain that cannot be opened is not modified"

# ---- power cuts during the merge, then the same merge again
n=0
for ext in vhdx vhd; do
	rules=("op=flush nth=1 crash" "op=flush nth=2 crash" "op=write after=3 crash" "op=write after=10 crash"
		"op=write after=5 torn=3 crash")
	[ $ext = vhdx ] && rules+=("op=flush nth=4 crash" "op=write struct=log nth=1 crash" "op=write struct=bat nth=1 crash")
	for rule in "${rules[@]}"; do
		d="$T/crash$n"
		n=$((n + 1))
		build_chain "$d" $ext 3
		want=$(rawsum "$d/l3.$ext")
		echo "$rule" > rules
		"$VHDX" --faults rules merge --no-progress --into "$d/l0.$ext" "$d/l3.$ext" > /dev/null 2> err &&
			fail "$ext '$rule': the merge did not crash"
		grep -q "crash" err || fail "$ext '$rule': unexpected error: $(cat err)"
		[ -e "$d/l3.$ext.merging" ] || fail "$ext '$rule': no merge record after the crash"
		# consistent after the power cut: the base opens and reads on its own
		"$VHDX" convert -O raw --no-parent "$d/l0.$ext" x.raw 2> err || fail "$ext '$rule': base unreadable after the crash: $(cat err)"
		"$VHDX" merge --no-progress --into "$d/l0.$ext" "$d/l3.$ext" > /dev/null 2> err ||
			fail "$ext '$rule': the merge again failed: $(cat err)"
		expect_eq "$ext '$rule': base after crash and merge again" "$(rawsum "$d/l0.$ext")" "$want"
		[ $ext = vhdx ] && { qemu-img check "$d/l0.vhdx" > /dev/null || fail "qemu-img check after '$rule'"; }
	done
done
pass "power cuts at $n points of a merge, then the merge again: the expected bytes"

# ---- reparent: moved and renamed files
for ext in vhdx vhd; do
	d="$T/move$ext"
	build_chain "$d" $ext 2
	want=$(rawsum "$d/l2.$ext")
	mkdir -p "$d/elsewhere"
	mv "$d/l0.$ext" "$d/elsewhere/renamed-base.$ext"
	mv "$d/l1.$ext" "$d/elsewhere/mid.$ext"
	expect_fail_msg "not found" "$VHDX" convert -O raw "$d/l2.$ext" x.raw
	"$VHDX" reparent "$d/elsewhere/mid.$ext" --parent "$d/elsewhere/renamed-base.$ext" > /dev/null || fail "reparent mid"
	"$VHDX" reparent "$d/l2.$ext" --parent "$d/elsewhere/mid.$ext" > /dev/null || fail "reparent leaf"
	expect_eq "$ext: chain after reparent" "$(rawsum "$d/l2.$ext")" "$want"
	# a parent with another identity is refused, and accepted with --ignore-id-mismatch
	"$VHDX" create --size 40M "$d/other.$ext" > /dev/null
	before=$(sha256 "$d/l2.$ext")
	expect_fail_msg "links to a parent with identity .*ignore-id-mismatch" "$VHDX" reparent "$d/l2.$ext" --parent "$d/other.$ext"
	expect_eq "$ext: refused reparent changed nothing" "$(sha256 "$d/l2.$ext")" "$before"
	"$VHDX" reparent --ignore-id-mismatch "$d/l2.$ext" --parent "$d/other.$ext" > /dev/null || fail "relink"
	"$VHDX" convert -O raw "$d/l2.$ext" y.raw || fail "$ext: the relinked chain does not open"
done
pass "reparent repairs moved chains (VHDX and VHD) and refuses another identity without --ignore-id-mismatch"

# reparent keeps the child's DataWriteGuid (its own children link to it)
d="$T/move2"
build_chain "$d" vhdx 2
guids() { # FILE: "DataWriteGuid FileWriteGuid" of the current header
	"$VHDX" info --no-parent --json "$1" | python3 -c "import json,sys; l=json.load(sys.stdin)['layers'][0]
h=l['headers'][l['current_header']-1]; print(h['data_write_guid'], h['file_write_guid'])"
}
read -r g1 f1 <<< "$(guids "$d/l1.vhdx")"
[ -n "$g1" ] || fail "no DataWriteGuid in vhdx info --json"
mv "$d/l0.vhdx" "$d/b.vhdx"
"$VHDX" reparent "$d/l1.vhdx" --parent "$d/b.vhdx" > /dev/null || fail "reparent"
read -r g2 f2 <<< "$(guids "$d/l1.vhdx")"
expect_eq "DataWriteGuid after reparent" "$g2" "$g1"
[ "$f2" != "$f1" ] || fail "FileWriteGuid unchanged by the reparent"
"$VHDX" convert -O raw "$d/l2.vhdx" z.raw || fail "the grandchild no longer opens after its parent was reparented"
pass "reparent renews FileWriteGuid only"

# ---- power cuts while a VHD child is re-pointed (merge's re-linking), with W2ku/W2ru
# locators (as Windows and vhdx create write them) and without (as vhd-lib writes them):
# base <- mid <- top, mid merged into base without re-linking, then top re-pointed to
# base under each crash rule.  Every write and flush of the reparent is a crash point.
# top reads the same through mid and through base, so after any crash it must read as
# before; only a 1 KiB header write torn between its sectors (with locators) leaves a
# header checksum to repair.  Then the reparent again links top to base.
n=0
for kind in locators bare; do
	d="$T/pc-$kind"
	mkdir -p "$d"
	"$VHDX" create --size 8M "$d/base.vhd" > /dev/null && put "$d/base.vhd" 0 1M
	"$VHDX" create --parent "$d/base.vhd" "$d/mid.vhd" > /dev/null && put "$d/mid.vhd" 1049088 5000
	"$VHDX" create --parent "$d/mid.vhd" "$d/top.vhd" > /dev/null && put "$d/top.vhd" 3M 5000
	[ $kind = bare ] && { vhd_strip_locators "$d/mid.vhd"; vhd_strip_locators "$d/top.vhd"; }
	want=$(rawsum "$d/top.vhd")
	"$VHDX" merge --no-progress --no-auto-relink "$d/mid.vhd" > /dev/null || fail "$kind: merge mid"
	cp "$d/top.vhd" "$d/top.orig"
	if [ $kind = locators ]; then # two locator areas, flush, the header (1 KiB), flush
		rules=("op=write nth=1 crash" "op=write nth=2 crash" "op=flush nth=1 crash" "op=write nth=3 crash"
			"op=write nth=3 torn=1 crash" "op=flush nth=2 crash")
	else # the header's first sector, flush
		rules=("op=write nth=1 crash" "op=write nth=1 torn=1 crash" "op=flush nth=1 crash")
	fi
	for rule in "${rules[@]}"; do
		n=$((n + 1))
		cp "$d/top.orig" "$d/top.vhd"
		echo "$rule" > rules
		"$VHDX" --faults rules reparent --ignore-id-mismatch "$d/top.vhd" --parent "$d/base.vhd" > /dev/null 2> err &&
			fail "$kind '$rule': the reparent did not crash"
		grep -q "crash" err || fail "$kind '$rule': unexpected error: $(cat err)"
		if [ "$rule" = "op=write nth=3 torn=1 crash" ]; then
			# the first sector new, the second old: the checksum fails until check --repair
			expect_fail_msg "dynamic header: checksum mismatch" "$VHDX" convert -O raw "$d/top.vhd" x.raw
			"$VHDX" check --repair "$d/top.vhd" > out 2>&1
			grep -q "rewrote the dynamic header" out || fail "$kind '$rule': check --repair: $(cat out)"
		fi
		expect_eq "$kind '$rule': top after the power cut" "$(rawsum "$d/top.vhd")" "$want"
		"$VHDX" reparent --ignore-id-mismatch "$d/top.vhd" --parent "$d/base.vhd" > /dev/null 2> err ||
			fail "$kind '$rule': the reparent again: $(cat err)"
		mv "$d/mid.vhd" "$d/mid.away"
		expect_eq "$kind '$rule': top over base alone" "$(rawsum "$d/top.vhd")" "$want"
		mv "$d/mid.away" "$d/mid.vhd"
		check_clean "$d/top.vhd" "of top after '$rule' and the reparent again ($kind)"
	done
done
pass "power cuts at every write and flush of a VHD reparent ($n, with and without locators): top reads as before, and the reparent again links it"
