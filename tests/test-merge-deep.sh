#!/bin/bash
# test-merge-deep.sh - vhdx merge on deep chains and a power cut at every
# flush of a merge (issue #7; test-merge.sh covers depth 1..5).
#  - chains of depth 6, 7 and 8, VHDX and VHD, a different block size per
#    layer, partial blocks, ZERO blocks (discards) over data: the leaf merged
#    into the base reads exactly as the leaf read before; the base passes
#    qemu-img check (VHDX) and reads the same through qemu-img convert and
#    vhdimount (skipped where vhdimount or FUSE is missing);
#  - a power cut at every flush: the merge is run once with a rule that
#    matches every flush (delay=0) to count the flushes K (of the base and
#    of the re-linked child above), then for k = 1..K on a fresh copy the
#    merge is cut at flush k (crash rule: unflushed writes are undone), the
#    same merge is run again, and the base and the re-linked child must
#    read the expected bytes (and pass qemu-img check).  Every flush of a
#    small VHDX chain, a small VHD chain and the depth-8 VHDX chain
#    (crash_sweep takes a stride for chains with many flushes; K is 4..13
#    here, so every one is cut).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img sha256sum python3
cd "$T"

n7=0

head -c 12M /dev/urandom > rnd
sha() { sha256sum < "$1" | cut -c1-64; }
put() { tail -c +$(( (RANDOM % 2000) * 4096 + 1 )) rnd | head -c "$3" | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }

# build_chain DIR EXT DEPTH SIZE_MB: l0.EXT (base) .. lDEPTH.EXT, block sizes varying per layer,
# partial blocks (odd offsets and lengths), fresh areas, discards over data below
build_chain() {
	local dir=$1 ext=$2 depth=$3 size=$4 bs i
	mkdir -p "$dir"
	if [ "$ext" = vhd ]; then bs=(512K 1M 2M 64K 256K 1M 4M 128K 2M); else bs=(1M 2M 4M 1M 8M 2M 1M 4M 2M); fi
	"$VHDX" create --size "${size}M" --block-size "${bs[0]}" "$dir/l0.$ext" >/dev/null || fail "create base"
	put "$dir/l0.$ext" 0 $(( size * 1048576 / 3 ))
	put "$dir/l0.$ext" $(( (size - 3) * 1048576 + 4096 )) 2000000
	for ((i = 1; i <= depth; i++)); do
		"$VHDX" create --parent "$dir/l$((i - 1)).$ext" --block-size "${bs[$i]}" "$dir/l$i.$ext" >/dev/null ||
			fail "create layer $i"
		put "$dir/l$i.$ext" $(( i * 1048576 + i * 4096 + 512 )) $(( 5000 + i * 3000 ))          # partial block
		put "$dir/l$i.$ext" $(( (size / 2 + i % 4) * 1048576 - 1536 )) $(( 700000 + i * 512 )) # across block ends
		"$VHDX" write --offset $(( (i % 5) * 1048576 )) --discard $(( 1048576 + i * 512 )) "$dir/l$i.$ext" ||
			fail "discard in layer $i"
	done
}

# ---- deep chains merged into the base
for ext in vhdx vhd; do
	for depth in 6 7 8; do
		d="$T/$ext$depth"
		build_chain "$d" $ext $depth 24
		want=$(rawsum "$d/l$depth.$ext")
		cp conv.raw leaf.raw
		"$VHDX" merge --no-progress --into "$d/l0.$ext" "$d/l$depth.$ext" > out || fail "merge $ext depth $depth: $(cat out)"
		[ "$(grep -c '^merged: ' out)" = "$depth" ] || fail "$ext depth $depth: $depth merged layers expected: $(cat out)"
		expect_eq "$ext depth $depth: merged base" "$(rawsum "$d/l0.$ext")" "$want"
		[ -e "$d/l$depth.$ext.merging" ] && fail "merge record left behind"
		qemu-img convert -O raw "$d/l0.$ext" q.raw || fail "qemu-img convert of the merged $ext base"
		if [ $ext = vhd ]; then
			# qemu's vpc driver takes the size from the CHS geometry (a little less): compare that much
			qsz=$(stat -c %s q.raw)
			[ "$qsz" -gt $(( 23 * 1048576 )) ] && [ "$qsz" -le $(( 24 * 1048576 )) ] || fail "qemu-img: VHD size $qsz"
			"$VHDX" convert -O raw "$d/l0.$ext" conv.raw
			expect_eq "$ext depth $depth: qemu-img reads the merged base" "$(sha q.raw)" "$(head -c "$qsz" conv.raw | sha256sum | cut -c1-64)"
			expect_eq "$ext depth $depth: the leaf before, as far as qemu reads" "$(head -c "$qsz" conv.raw | sha256sum | cut -c1-64)" "$(head -c "$qsz" "$T/leaf.raw" | sha256sum | cut -c1-64)"
		else
			expect_eq "$ext depth $depth: qemu-img reads the merged base" "$(sha q.raw)" "$want"
		fi
		check_clean "$d/l0.$ext" "of the merged base ($ext depth $depth)"
		if [ $ext = vhdx ]; then
			qemu-img check "$d/l0.vhdx" > /dev/null || fail "qemu-img check after merge at depth $depth"
		fi
		# libvhdi misreads partially set bitmaps of dynamic VHDs where data lies under clear
		# bits, and VHD chains (issue #21): it is compared only on the merged base, whose clear
		# bits cover zeros (our writer's blocks); 7-Zip, which reads those shapes right, too
		sevenzip_agrees "$d/l0.$ext" "$want" "$ext depth $depth: the merged base" && n7=$((n7 + 1))
		if vhdimount_usable; then
			mkdir -p vm
			vhdimount "$d/l0.$ext" vm >/dev/null 2>&1 || fail "vhdimount could not open the merged $ext base"
			# 1 MiB reads: libvhdi 20210425 returned zeros for a partly written VHD block with
			# 4 KiB reads of the same file (qemu-img and 1 MiB reads agree with vhdx)
			got=$(dd if=vm/vhdi1 bs=1M 2>/dev/null | sha256sum | cut -c1-64)
			fusermount3 -u vm
			expect_eq "$ext depth $depth: vhdimount reads the merged base" "$got" "$want"
		fi
	done
done
if command -v 7zz > /dev/null; then
	[ "$n7" -ge 6 ] || fail "7-Zip read only $n7 of the 6 merged bases"
	pass "7-Zip reads the same bytes from the $n7 merged bases"
fi
vm_note=""
vhdimount_usable || vm_note=" (vhdimount part skipped: vhdimount or FUSE missing)"
pass "depth 6, 7, 8, VHDX and VHD: the merged base reads as the leaf did, in vhdx, qemu-img$(vhdimount_usable && echo ' and vhdimount')$vm_note"

# ---- a power cut at flush k of a merge, for every k (or a stride), then the merge again
# crash_sweep NAME EXT DEPTH SIZE_MB STRIDE [bare]: merges l(DEPTH-1) into l0 with lDEPTH above
# re-linked; bare: VHD children without W2ku/W2ru locators, as vhd-lib writes them (issue #21)
crash_sweep() {
	local name=$1 ext=$2 depth=$3 size=$4 stride=$5 bare=${6:-} tpl="$T/tpl-$1" k K n=0 want_base want_leaf i
	build_chain "$tpl" $ext $depth "$size"
	if [ "$bare" = bare ]; then
		for ((i = 1; i <= depth; i++)); do vhd_strip_locators "$tpl/l$i.$ext"; done
	fi
	want_leaf=$(rawsum "$tpl/l$depth.$ext")
	want_base=$(rawsum "$tpl/l$((depth - 1)).$ext")
	# count the flushes of the whole merge (every file: the base and the re-linked child)
	rm -rf "$T/count"; cp -a "$tpl" "$T/count"
	echo "op=flush delay=0" > count.rules
	"$VHDX" --faults count.rules --fault-log count.log merge --no-progress --into "$T/count/l0.$ext" \
		"$T/count/l$((depth - 1)).$ext" > /dev/null || fail "$name: the counting merge failed"
	K=$(sed -n 's/^op=flush delay=0 *# rule 1: hits=\([0-9]*\).*/\1/p' count.log)
	[ -n "$K" ] && [ "$K" -ge 2 ] || fail "$name: cannot count the flushes: $(cat count.log)"
	[ "$(grep -c '^seq=.* op=flush ' count.log)" = "$K" ] || fail "$name: the flush events do not match the count"
	expect_eq "$name: the counting merge" "$(rawsum "$T/count/l0.$ext")" "$want_base"
	for ((k = 1; k <= K; k++)); do
		[ "$stride" -gt 1 ] && [ $k -ne 1 ] && [ $k -ne "$K" ] && [ $(( (k - 1) % stride )) -ne 0 ] && continue
		d="$T/cut-$name-$k"
		rm -rf "$d"; cp -a "$tpl" "$d"
		echo "op=flush nth=$k crash" > cut.rules
		"$VHDX" --faults cut.rules merge --no-progress --into "$d/l0.$ext" "$d/l$((depth - 1)).$ext" > /dev/null 2> err &&
			fail "$name flush $k/$K: the merge did not fail"
		grep -q "crash" err || fail "$name flush $k/$K: not the injected crash: $(cat err)"
		"$VHDX" convert -O raw --no-parent "$d/l0.$ext" x.raw 2> err ||
			fail "$name flush $k/$K: the base does not open after the power cut: $(cat err)"
		"$VHDX" merge --no-progress --into "$d/l0.$ext" "$d/l$((depth - 1)).$ext" > /dev/null 2> err ||
			fail "$name flush $k/$K: the merge again failed: $(cat err)"
		expect_eq "$name flush $k/$K: base after the merge again" "$(rawsum "$d/l0.$ext")" "$want_base"
		expect_eq "$name flush $k/$K: the re-linked leaf" "$(rawsum "$d/l$depth.$ext")" "$want_leaf"
		[ -e "$d/l$((depth - 1)).$ext.merging" ] && fail "$name flush $k/$K: merge record left"
		check_clean "$d/l0.$ext" "$name flush $k/$K: of the base"
		check_clean "$d/l$depth.$ext" "$name flush $k/$K: of the re-linked leaf"
		if [ $ext = vhdx ]; then
			qemu-img check "$d/l0.vhdx" > /dev/null 2>&1 || fail "$name flush $k/$K: qemu-img check of the base"
		fi
		rm -rf "$d"
		n=$((n + 1))
	done
	sweep_done="$sweep_done${sweep_done:+, }$name: $n of $K flushes"
}
sweep_done=""
crash_sweep small-vhdx vhdx 4 16 1
crash_sweep small-vhd vhd 4 16 1
crash_sweep small-vhd-bare vhd 4 16 1 bare
crash_sweep deep-vhdx vhdx 8 24 1
pass "a power cut at flush k, then the same merge again: the expected base and re-linked leaf ($sweep_done)"
