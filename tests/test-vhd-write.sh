#!/bin/bash
# test-vhd-write.sh - VHD images made by `vhdx create` and written by `vhdx
# write`, checked against a raw mirror of the same writes and against
# independent readers: qemu-img (convert; check where qemu has a checker)
# and vhdimount (libvhdi).  Fixed and dynamic disks of 20M and 100M+512
# bytes, block sizes 2M (default) and 512K, writes inside one sector,
# across sector and block boundaries and at the end; zeros over unallocated
# blocks; the footer copies stay identical and the unique id unchanged.
# Then differencing chains made by `vhdx create --parent`, depth 1 to 4
# with a different block size per layer and writes at every level: every
# read equals the mirror, parents never change (sha256), the linkage
# holds, and vhdimount reads the same chain.  Finally qemu-io writes into
# an image we made, and the refusals of bad create options.
#
# libvhdi and sector bitmaps: vhdimount reads a differencing block's sector
# from the child when its bit is clear but an earlier bit of the same
# bitmap byte is set (bitmap byte 0x78: sectors 5..7 come back as the
# child's zeros instead of the parent's data; 0xa5: all eight sectors from
# the child).  Our bitmaps hold exactly the written sectors, as the format
# says, so the chain writes compared with vhdimount start anywhere (inside
# a sector too) but end on a 4 KiB boundary, where libvhdi is right; writes
# ending elsewhere are checked against our reader and the mirror only, in
# a separate chain.
#
# libvhdi returns wrong data for more shapes than the above (issue #21): in
# every VHD chain tried (diskpart's too) some sectors whose bit is 0 come
# from the child, partially set bitmaps in dynamic VHDs, a resized VHD (it
# reports the footer's original size).  So vhdimount is compared only where
# the shapes avoid these, and 7-Zip (7zz), which reads them right, is
# compared everywhere it opens an image: every image and chain here, also
# the chain whose writes end inside bitmap bytes.
#
# qemu and the disk size: qemu sizes a VHD by its CHS geometry unless the
# creator is one it knows to use the current size ('win ', 'qem2', 'd2v ',
# 'tap', 'CTXS') or the geometry is the 65535/16/255 maximum.  Ours says
# 'vhdx' and carries the spec's geometry (as Windows writes it), so plain
# `qemu-img -f vpc` sees the CHS size, which is smaller than the disk (that
# is checked below, together with the CHS-covered prefix).  Whole-disk
# comparisons open the image with qemu's force_size_calc=current_size,
# which reads by the footer's current size as Windows does.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
set -o pipefail
requires python3 cmp
[ -x "$VHDX" ] || fail "$VHDX was not built"

have_qemu=no
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && have_qemu=yes

M=1048576

# write_both IMG MIRROR OFFSET LEN [zero]: the same bytes (random, or zeros) into the image and the mirror
write_both() {
	if [ "${5:-}" = zero ]; then head -c "$4" /dev/zero > "$T/chunk"; else head -c "$4" /dev/urandom > "$T/chunk"; fi
	"$VHDX" write --offset "$3" "$1" < "$T/chunk" 2> "$T/err" || fail "vhdx write $1 at $3+$4: $(cat "$T/err")"
	dd if="$T/chunk" of="$2" bs=64K oflag=seek_bytes seek="$3" conv=notrunc status=none || fail "dd mirror"
}

# jget IMG EXPR...: values of `vhdx info --json IMG`, one line per python expression on d
jget() {
	local img="$1"
	shift
	"$VHDX" info --json "$img" > "$T/info.json" 2> "$T/err" || fail "vhdx info $img: $(cat "$T/err")"
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for e in sys.argv[2:]: print(eval(e))' "$T/info.json" "$@"
}
L0='d["layers"][0]'

qemu_opts() { echo "driver=vpc,force_size_calc=current_size,file.filename=$1"; }

qemu_check_noted=no
# check_same IMG MIRROR LABEL: our read, qemu's reads and vhdimount's against the mirror
check_same() {
	local img="$1" mirror="$2" label="$3" rc chs qsize
	"$VHDX" convert -O raw "$img" "$T/ours.raw" 2> "$T/err" || fail "$label: convert: $(cat "$T/err")"
	cmp "$T/ours.raw" "$mirror" || fail "$label: our read differs from the raw mirror"
	if [ $have_qemu = yes ]; then
		qemu-img check -q -f vpc "$img" > "$T/qcheck" 2>&1 && rc=0 || rc=$?
		if [ "$rc" = 63 ] && grep -q "does not support checks" "$T/qcheck"; then
			[ $qemu_check_noted = yes ] || echo "note: this qemu-img has no checker for vpc images"
			qemu_check_noted=yes
		elif [ "$rc" != 0 ]; then
			fail "$label: qemu-img check reports problems (rc $rc): $(cat "$T/qcheck")"
		fi
		qemu-img convert -O raw --image-opts "$(qemu_opts "$img")" "$T/qemu.raw" 2> "$T/err" ||
			fail "$label: qemu-img convert: $(cat "$T/err")"
		cmp "$T/qemu.raw" "$mirror" || fail "$label: qemu-img (by current size) reads different bytes"
		# plain qemu: the CHS size, and the same bytes up to it
		chs=$(jget "$img" "$L0[\"footer\"][\"chs_size\"]")
		qsize=$(qemu-img info --output=json -f vpc "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
		expect_eq "$label: qemu's size by CHS" "$qsize" "$chs"
		qemu-img convert -f vpc -O raw "$img" "$T/qemu-chs.raw" || fail "$label: qemu-img convert (CHS)"
		cmp -n "$chs" "$T/qemu-chs.raw" "$mirror" || fail "$label: qemu-img (by CHS) reads different bytes"
	fi
	vhdimount_check "$img" "$mirror" 1
	sevenzip_agrees "$img" "$(sha256 "$mirror")" "$label" && n7=$((n7 + 1))
	rm -f "$T/ours.raw" "$T/qemu.raw" "$T/qemu-chs.raw"
}

# footers_intact IMG UNIQUE_ID LABEL: both copies identical (dynamic), unique id unchanged, checksums valid
footers_intact() {
	local got
	{ read -r got; read -r match; read -r csum; } < <(jget "$1" "$L0[\"footer\"][\"unique_id\"]" \
		"$L0[\"footer_copies\"].get(\"copies_match\", \"fixed\")" "$L0[\"footer\"][\"checksum_valid\"]")
	expect_eq "$3: unique id after writes" "$got" "$2"
	expect_eq "$3: checksum" "$csum" True
	if [ "$match" != fixed ]; then
		expect_eq "$3: leading and trailing footer copies match" "$match" True
		python3 - "$1" <<'EOF' || fail "$3: the first and last 512 bytes differ"
import sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if b[:512] == b[-512:] and b[:8] == b"conectix" else 1)
EOF
	fi
}

# ---- fixed and dynamic disks
n=0 n7=0
for type in fixed dynamic; do
	for size in $((20 * M)) $((100 * M + 512)); do
		for bs in default 512K; do
			[ $type = fixed ] && [ $bs != default ] && continue
			img="$T/w-$type-$size-$bs.vhd"
			label="$type size=$size bs=$bs"
			args=(--type $type --size $size)
			[ $bs = default ] || args+=(--block-size $bs)
			"$VHDX" create "${args[@]}" "$img" 2> "$T/err" || fail "$label: create: $(cat "$T/err")"
			{ read -r vsize; read -r t; read -r creator; read -r os; read -r geo; read -r block; read -r uid; } < <(jget "$img" \
				'd["virtual_size"]' 'd["type"]' "$L0[\"footer\"][\"creator_application\"]" \
				"$L0[\"footer\"][\"creator_host_os\"]" "$L0[\"footer\"][\"geometry_matches_spec_calculation\"]" \
				'd["block_size"]' "$L0[\"footer\"][\"unique_id\"]")
			expect_eq "$label: size" "$vsize" "$size"
			expect_eq "$label: type" "$t" "$type"
			expect_eq "$label: creator" "$creator" vhdx
			expect_eq "$label: host OS" "$os" Wi2k
			expect_eq "$label: CHS from the spec's algorithm" "$geo" True
			if [ $type = dynamic ]; then
				expect_eq "$label: block size" "$block" "$([ $bs = default ] && echo 2097152 || echo 524288)"
			else
				expect_eq "$label: file size" "$(stat -c %s "$img")" $((size + 512))
			fi
			rm -f "$T/mirror"
			truncate -s "$size" "$T/mirror"
			before=$(stat -c %s "$img")
			write_both "$img" "$T/mirror" $((12 * M)) $((3 * M)) zero  # zeros over unallocated blocks
			[ $type = dynamic ] && expect_eq "$label: file size after zeros" "$(stat -c %s "$img")" "$before"
			write_both "$img" "$T/mirror" 0 4096
			write_both "$img" "$T/mirror" 3 777                         # inside one sector: merged
			write_both "$img" "$T/mirror" $((2 * M - 100)) 300000       # across a 2M (and 512K) block boundary
			write_both "$img" "$T/mirror" $((size - 864)) 864           # the end of the disk
			write_both "$img" "$T/mirror" $((7 * M)) $((5 * M))         # several blocks
			write_both "$img" "$T/mirror" $((7 * M + 100)) 1000         # inside allocated data
			write_both "$img" "$T/mirror" $((8 * M + 7)) 2000 zero      # zeros over allocated data
			check_same "$img" "$T/mirror" "$label"
			footers_intact "$img" "$uid" "$label"
			n=$((n + 1))
		done
	done
done
pass "$n fixed/dynamic VHDs written by vhdx read identically by us, qemu-img and vhdimount"

# ---- differencing chains, depth 1..4, a different block size per layer
dir="$T/chain"
mkdir -p "$dir"
size=$((36 * M + 512))
rm -f "$T/mirror"
truncate -s $size "$T/mirror"
"$VHDX" create --size $size --block-size 1M "$dir/base.vhd" || fail "chain: create base"
write_both "$dir/base.vhd" "$T/mirror" 0 $((9 * M + 333))
write_both "$dir/base.vhd" "$T/mirror" $((size - 5000)) 5000
write_both "$dir/base.vhd" "$T/mirror" $((20 * M)) $((4 * M))
parent="$dir/base.vhd"
bsizes=(default 512K 4M 64K)
for depth in 1 2 3 4; do
	child="$dir/c$depth.vhd"
	bs=${bsizes[$((depth - 1))]}
	args=(--parent "$parent")
	[ $bs = default ] || args+=(--block-size $bs)
	"$VHDX" create "${args[@]}" "$child" 2> "$T/err" || fail "chain: create depth $depth: $(cat "$T/err")"
	sums=$(cd "$dir" && sha256sum $(ls | grep -vx "c$depth.vhd"))
	{ read -r t; read -r pid; read -r holds; read -r k0; read -r v0; read -r k1; read -r v1; } < <(jget "$child" \
		'd["type"]' "$L0[\"dynamic_header\"][\"parent_unique_id\"]" "$L0[\"parent\"][\"linkage_holds\"]" \
		"$L0[\"parent_locators\"][0][\"code\"]" "$L0[\"parent_locators\"][0][\"path\"]" \
		"$L0[\"parent_locators\"][1][\"code\"]" "$L0[\"parent_locators\"][1][\"path\"]")
	expect_eq "depth $depth: type" "$t" differencing
	expect_eq "depth $depth: parent unique id is the parent's footer unique id" "$pid" \
		"$(jget "$parent" "$L0[\"footer\"][\"unique_id\"]")"
	expect_eq "depth $depth: linkage" "$holds" True
	expect_eq "depth $depth: locator 0" "$k0 $v0" "W2ku $(realpath "$parent" | tr / '\\')"
	expect_eq "depth $depth: locator 1" "$k1 $v1" "W2ru .\\$(basename "$parent")"
	# unaligned starts (inside sectors), block-straddling writes, partial
	# blocks over data and over holes of the parents; ends on 4 KiB (see the top)
	write_both "$child" "$T/mirror" $((depth * 1000 + 3)) $((12288 - depth * 1000 - 3))
	write_both "$child" "$T/mirror" $((2 * M - 700 * depth)) $((614400 + 700 * depth))
	write_both "$child" "$T/mirror" $((9 * M + 100)) $((4096 - 100))
	write_both "$child" "$T/mirror" $((16 * M + depth * 65536 + 512)) 3584
	write_both "$child" "$T/mirror" $((size - 1536 * depth)) $((1536 * depth))  # across the last block boundary
	write_both "$child" "$T/mirror" $((22 * M + depth * 4096)) 8192 zero  # zeros over parent data: stored
	"$VHDX" convert -O raw "$child" "$T/out.raw" 2> "$T/err" || fail "chain depth $depth: convert: $(cat "$T/err")"
	cmp "$T/out.raw" "$T/mirror" || fail "chain depth $depth: read differs from the mirror"
	(cd "$dir" && echo "$sums" | sha256sum --quiet -c -) || fail "a parent changed while writing the leaf at depth $depth"
	expect_eq "chain depth" "$(jget "$child" 'd["chain_depth"]')" $((depth + 1))
	footers_intact "$child" "$(jget "$child" "$L0[\"footer\"][\"unique_id\"]")" "depth $depth"
	vhdimount_check "$child" "$T/mirror" $((depth + 1))
	sevenzip_agrees "$child" "$(sha256 "$T/mirror")" "chain depth $depth" && n7=$((n7 + 1))
	parent="$child"
done
pass "VHD chains of depth 1..4 read exactly as the mirror (us and vhdimount); parents unchanged"

# the chain still resolves after moving the whole folder (relative W2ru locators)
mv "$dir" "$T/moved"
"$VHDX" convert -O raw "$T/moved/c4.vhd" "$T/out.raw" 2> "$T/err" || fail "moved chain: $(cat "$T/err")"
cmp "$T/out.raw" "$T/mirror" || fail "the moved chain reads differently"
pass "a moved chain resolves through its relative locators"

# writes that end inside sectors and inside bitmap bytes, at every level of
# a depth-3 chain (ours against the mirror; libvhdi misreads these bitmaps)
dir="$T/chain2"
mkdir -p "$dir"
size=$((10 * M))
rm -f "$T/mirror"
truncate -s $size "$T/mirror"
"$VHDX" create --size $size "$dir/base.vhd" || fail "chain2: create base"
write_both "$dir/base.vhd" "$T/mirror" 0 $((6 * M + 77))
parent="$dir/base.vhd"
for depth in 1 2 3; do
	"$VHDX" create --parent "$parent" --block-size $((1 << (depth + 7)))K "$dir/c$depth.vhd" 2> "$T/err" ||
		fail "chain2: create depth $depth: $(cat "$T/err")"
	sums=$(sha256sum "$dir"/*.vhd | grep -v "c$depth.vhd")
	for k in 1 2 3 4 5; do
		write_both "$dir/c$depth.vhd" "$T/mirror" $(((k * 1234567 + depth * 3331) % (size - 70000))) $((k * 997 + depth))
	done
	write_both "$dir/c$depth.vhd" "$T/mirror" $((size - 700)) 700
	"$VHDX" convert -O raw "$dir/c$depth.vhd" "$T/out.raw" 2> "$T/err" || fail "chain2 depth $depth: $(cat "$T/err")"
	cmp "$T/out.raw" "$T/mirror" || fail "chain2 depth $depth: read differs from the mirror"
	echo "$sums" | sha256sum --quiet -c - || fail "chain2: a parent changed at depth $depth"
	sevenzip_agrees "$dir/c$depth.vhd" "$(sha256 "$T/mirror")" "chain2 depth $depth" && n7=$((n7 + 1))
	parent="$dir/c$depth.vhd"
done
pass "chain writes ending inside sectors and bitmap bytes read exactly as the mirror"
if command -v 7zz > /dev/null; then
	# every image above opens in 7-Zip 26: fewer means a comparison silently stopped
	[ "$n7" -ge 13 ] || fail "7-Zip read only $n7 of the images"
	pass "7-Zip reads the same bytes from $n7 VHD images and chains (those libvhdi misreads too)"
fi

# ---- qemu-io writes into an image we made, then we read it (and write more)
if [ $have_qemu = yes ]; then
	img="$T/qemu-writes.vhd"
	"$VHDX" create --size $((20 * M)) "$img" || fail "create for qemu-io"
	rm -f "$T/mirror"
	truncate -s $((20 * M)) "$T/mirror"
	write_both "$img" "$T/mirror" $((4 * M + 512)) 70000
	qemu-io --image-opts -c "write -P 0x5a 1000000 3000000" -c "write -P 0xa5 0 512" \
		-c "write -P 0x3c $((20 * M - 4096)) 4096" "$(qemu_opts "$img")" > "$T/qio" 2>&1 ||
		fail "qemu-io write: $(cat "$T/qio")"
	python3 - "$T/mirror" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000000); f.write(b"\x5a" * 3000000)
    f.seek(0); f.write(b"\xa5" * 512)
    f.seek(20 * 1048576 - 4096); f.write(b"\x3c" * 4096)
EOF
	"$VHDX" convert -O raw "$img" "$T/out.raw" 2> "$T/err" || fail "read after qemu-io: $(cat "$T/err")"
	cmp "$T/out.raw" "$T/mirror" || fail "after qemu-io writes our read differs from the mirror"
	write_both "$img" "$T/mirror" $((9 * M)) 70000
	write_both "$img" "$T/mirror" 999 5000
	check_same "$img" "$T/mirror" "qemu-io then vhdx write"
	pass "qemu-io writes into a vhdx-made VHD read back exactly, and mix with ours"
else
	echo "note: qemu-img/qemu-io not installed: the qemu checks were skipped"
fi

# ---- refusals, each with its message
expect_fail_msg "multiple of 512" "$VHDX" create --size 1000 "$T/bad1.vhd"
expect_fail_msg "at most 2040 GiB" "$VHDX" create --size 2041G "$T/bad2.vhd"
expect_fail_msg "block size 3145728 is not a power of two" "$VHDX" create --size 20M --block-size 3M "$T/bad3.vhd"
expect_fail_msg "512-byte sectors" "$VHDX" create --size 20M --logical-sector-size 4096 "$T/bad4.vhd"
"$VHDX" create --size 20M "$T/x.vhdx" || fail "create a VHDX parent"
expect_fail_msg "a VHD child needs a VHD parent" "$VHDX" create --parent "$T/x.vhdx" "$T/bad5.vhd"
for i in 1 2 3 4 5; do [ -e "$T/bad$i.vhd" ] && fail "a refused create left $T/bad$i.vhd behind"; done
"$VHDX" create --size 20M "$T/exists.vhd" || fail "create"
expect_fail_msg "exists" "$VHDX" create --size 20M "$T/exists.vhd"
pass "bad create options are refused with their reasons and leave no file"
