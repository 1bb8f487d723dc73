#!/bin/bash
# test-convert.sh - vhdx convert between raw, VHDX and VHD, fixed and
# dynamic, and flattening chains.  Every expected hash comes from outside
# the code under test: sha256 of a raw file built with head/dd, of a model
# file that receives the same writes as a chain, or the MANIFEST of the
# conformance images.  Checks: a round trip through every format and type
# keeps the bytes and the size; dynamic outputs store exactly the blocks
# that hold a non-zero byte (vhdx map); qemu-img check and compare accept
# the outputs; depth-3 VHDX and VHD chains flatten to the leaf's content;
# conformance images go to VHDX and VHD and back with their manifest hash;
# refusals (existing DST, odd raw size, unknown -O, no -f raw, DST = SRC)
# print their exact messages; a failed conversion leaves no DST behind.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img sha256sum
set -o pipefail
cd "$T"

# raw2sha IMAGE: sha256 of the whole virtual disk as vhdx reads it
raw2sha() { "$VHDX" convert -O raw "$1" - 2> "$T/err" | sha256_stdin || fail "read $1: $(cat "$T/err")"; }
vsize() { "$VHDX" info "$1" | sed -n 's/^  virtual_size:.*(\([0-9]*\) bytes).*/\1/p'; }
qcompare() {
	local img=$1 fmt=$2 ref=$3 spec
	if [ "$fmt" = vpc ]; then
		spec="json:{\"driver\":\"vpc\",\"force_size_calc\":\"current_size\",\"file\":{\"driver\":\"file\",\"filename\":\"$img\"}}"
	else
		spec="$img"
	fi
	qemu-img compare -q -f raw "$ref" "$spec" > "$T/q.out" 2>&1 ||
		fail "qemu-img compare $ref $img: $(cat "$T/q.out")"
}
# blocks_with_data IMAGE BS: the block numbers (of BS bytes) that vhdx map shows data in
blocks_with_data() {
	"$VHDX" map "$1" | while read -r off len kind rest; do
		[ "$kind" = data ] || continue
		for ((b = off / $2; b <= (off + len - 1) / $2; b++)); do echo $b; done
	done | sort -un
}
# nonzero_blocks RAW BS: the block numbers of RAW that hold a non-zero byte
nonzero_blocks() {
	local size n b
	size=$(stat -c %s "$1")
	n=$(((size + $2 - 1) / $2))
	for ((b = 0; b < n; b++)); do
		dd if="$1" bs="$2" skip=$b count=1 status=none | cmp -s - <(head -c "$2" /dev/zero) ||
			echo $b
	done
}

# ---- a raw source: data at odd places, explicit zero blocks (written zeros,
# not holes), holes, a tail; 24 MiB + 3 sectors is no 1 MiB multiple
head -c 16M /dev/urandom > rnd
truncate -s $((24 * 1048576 + 1536)) src.raw
dd if=rnd of=src.raw conv=notrunc bs=4096 count=300 status=none               # 0 .. 1.17M
dd if=/dev/zero of=src.raw conv=notrunc bs=1M seek=2 count=3 status=none       # 2M .. 5M written zeros
dd if=rnd of=src.raw conv=notrunc bs=512 seek=$((7 * 2048 + 5)) skip=9 count=3 status=none # 3 sectors in 7M
dd if=rnd of=src.raw conv=notrunc bs=1M seek=10 skip=3 count=4 status=none     # 10M .. 14M
dd if=rnd of=src.raw conv=notrunc bs=1 seek=$((20 * 1048576 + 70000)) skip=77 count=1 status=none
dd if=rnd of=src.raw conv=notrunc bs=512 seek=$((24 * 2048)) skip=100 count=3 status=none # the 3 tail sectors
SRC_SHA=$(sha256 src.raw)
SRC_SIZE=$(stat -c %s src.raw)
nonzero_blocks src.raw 1048576 > want.blocks1M
nonzero_blocks src.raw 2097152 > want.blocks2M

# raw input needs -f raw: a file without an image signature is not guessed
expect_fail_msg "^vhdx convert: .*src\.raw: not a VHDX or VHD image" "$VHDX" convert src.raw a.vhdx
grep -qx "vhdx convert: $T/src.raw: to convert a raw disk file, say so with -f raw" "$T/err" ||
	grep -qx "vhdx convert: src.raw: to convert a raw disk file, say so with -f raw" "$T/err" ||
	fail "no hint to -f raw: $(cat "$T/err")"
[ -e a.vhdx ] && fail "a refused conversion left a.vhdx"
pass "a raw SRC without -f raw is refused with a hint"

# ---- the round trip: raw -> vhdx fixed -> vhdx dynamic -> vhd fixed -> vhd dynamic -> vhdx -> raw
prev=src.raw
prevf="-f raw"
for step in vhdx:fixed:1M vhdx:dynamic:1M vhd:fixed: vhd:dynamic:2M vhdx:dynamic:2M raw::; do
	IFS=: read -r fmt type bs <<< "$step"
	out="rt-$fmt-${type:-raw}$bs.$fmt"
	opts=(-O "$fmt")
	[ -n "$type" ] && opts+=(--type "$type")
	[ -n "$bs" ] && opts+=(--block-size "$bs")
	# shellcheck disable=SC2086
	"$VHDX" convert $prevf "${opts[@]}" "$prev" "$out" 2> err || fail "convert $prev -> $out: $(cat err)"
	[ -s err ] && fail "convert $prev -> $out printed on a non-terminal without --progress: $(cat err)"
	if [ "$fmt" = raw ]; then
		expect_eq "$out: size" "$(stat -c %s "$out")" "$SRC_SIZE"
		expect_eq "$out: sha256" "$(sha256 "$out")" "$SRC_SHA"
	else
		expect_eq "$out: virtual size" "$(vsize "$out")" "$SRC_SIZE"
		expect_eq "$out: content" "$(raw2sha "$out")" "$SRC_SHA"
		"$VHDX" info "$out" > info.txt
		grep -q "^  format: $fmt\$" info.txt || fail "$out: not $fmt: $(head -3 info.txt)"
		grep -q "^  type: $type\$" info.txt || fail "$out: not $type: $(head -3 info.txt)"
		check_clean "$out"
		if [ "$fmt" = vhdx ]; then
			qemu-img check -q "$out" > q.out 2>&1 || fail "qemu-img check $out: $(cat q.out)"
			qcompare "$out" vhdx src.raw
		else
			qcompare "$out" vpc src.raw
		fi
		if [ "$type" = dynamic ]; then
			blocks_with_data "$out" "$((${bs%M} * 1048576))" > got.blocks
			cmp -s got.blocks "want.blocks$bs" ||
				fail "$out: blocks stored: $(echo $(cat got.blocks)); blocks with data: $(echo $(cat "want.blocks$bs"))"
		fi
	fi
	prev=$out
	prevf=
done
# the raw output is sparse: the file holds about the non-zero 64 KiB pieces only
used=$(($(stat -c %b rt-raw-raw.raw) * $(stat -c %B rt-raw-raw.raw)))
[ "$used" -le $((7 * 1048576)) ] || fail "rt-raw-raw.raw uses $used bytes: zeros were written, not holes"
pass "raw -> vhdx fixed -> vhdx dynamic -> vhd fixed -> vhd dynamic -> vhdx -> raw: same bytes and size;" \
	"dynamic outputs store exactly the non-zero blocks; qemu-img check and compare agree"

# VHDX with 4096-byte logical sectors, and to a VHD (512) from it
"$VHDX" convert -f raw --logical-sector-size 4096 --physical-sector-size 4096 src.raw 4k.vhdx 2> err &&
	fail "a size of 3 sectors past 24 MiB was accepted for 4096-byte sectors"
grep -qx "vhdx convert: src.raw: the disk size $SRC_SIZE is not a multiple of the logical sector size (4096); pad the file or convert to raw" err ||
	fail "odd size for 4K sectors: $(cat err)"
head -c $((24 * 1048576)) src.raw > src24.raw
"$VHDX" convert -f raw --logical-sector-size 4096 src24.raw 4k.vhdx || fail "convert to 4K VHDX"
"$VHDX" info 4k.vhdx | grep -q "logical_sector_size: 4096" || fail "4k.vhdx has no 4096-byte sectors"
"$VHDX" convert 4k.vhdx from4k.vhd || fail "4K VHDX -> VHD"
"$VHDX" info from4k.vhd | grep -q "logical_sector_size: 512" || fail "from4k.vhd has no 512-byte sectors"
"$VHDX" convert 4k.vhdx from4k.vhdx || fail "4K VHDX -> VHDX"
"$VHDX" info from4k.vhdx | grep -q "logical_sector_size: 4096" || fail "a VHDX output did not keep 4096-byte sectors"
for f in 4k.vhdx from4k.vhd from4k.vhdx; do
	expect_eq "$f: content" "$(raw2sha "$f")" "$(sha256 src24.raw)"
done
# (qemu-img opens no VHDX with 4096-byte logical sectors: ENOTSUP, so no qemu check here)
pass "4096-byte sectors: kept by a VHDX output, 512 for a VHD, same bytes"

# ---- flattening depth-3 chains; a model file gets the same writes
for ext in vhdx vhd; do
	d="chain-$ext"
	mkdir "$d"
	truncate -s 40M "$d/model"
	"$VHDX" create --size 40M --block-size 2M "$d/l0.$ext" > /dev/null || fail "create base"
	# put LAYER OFF LEN SKIP: LEN bytes of rnd from SKIP at OFF of the layer and of the model
	put() {
		tail -c +$(($4 + 1)) rnd | head -c "$3" > piece
		"$VHDX" write --offset "$2" "$d/$1" < piece || fail "write $1 at $2"
		dd if=piece of="$d/model" bs=1M oflag=seek_bytes seek="$2" conv=notrunc status=none
	}
	put "l0.$ext" 0 9M 0
	put "l0.$ext" 31457280 3000000 777
	for i in 1 2 3; do
		"$VHDX" create --parent "$d/l$((i - 1)).$ext" "$d/l$i.$ext" > /dev/null || fail "create layer $i"
		put "l$i.$ext" $((i * 1048576 + i * 4096 + 512)) $((5000 + i * 3000)) $((i * 999))
		put "l$i.$ext" $(((12 + i * 3) * 1048576)) 1048576 $((i * 12345))
		"$VHDX" write --offset $((i * 2))M --discard 4M "$d/l$i.$ext" || fail "discard in layer $i"
		dd if=/dev/zero of="$d/model" bs=1M seek=$((i * 2)) count=4 conv=notrunc status=none
	done
	want=$(sha256 "$d/model")
	for to in vhdx vhd raw; do
		"$VHDX" convert "$d/l3.$ext" "flat-$ext.$to" || fail "flatten the $ext chain to $to"
		if [ $to = raw ]; then got=$(sha256 "flat-$ext.$to"); else got=$(raw2sha "flat-$ext.$to"); fi
		expect_eq "$ext chain flattened to $to" "$got" "$want"
	done
	"$VHDX" info "flat-$ext.vhdx" | grep -q "chain_depth: 1" || fail "flat-$ext.vhdx is not a single image"
	check_clean "flat-$ext.vhdx"
	qemu-img check -q "flat-$ext.vhdx" || fail "qemu-img check flat-$ext.vhdx"
	qcompare "flat-$ext.vhdx" vhdx "$d/model"
	qcompare "flat-$ext.vhd" vpc "$d/model"
done
pass "depth-3 VHDX and VHD chains flatten to the leaf's content (VHDX, VHD, raw)"

# ---- conformance images to VHDX and VHD and back, with the manifest's hash
if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	n=0
	for name in win10-fixed-10M.vhdx win81-dynamic-100M.vhdx disk2vhd-256M.vhdx win10-dynamic-10M.vhd \
		win11-fixed-6M.vhd disk2vhd-zerofilled.vhd qemu-ext2.vhd; do
		img=$(conformance_image "$name")
		want=$(manifest_field "$name.xz" raw_sha256)
		[ ${#want} = 64 ] || fail "$name: no raw_sha256 in the manifest"
		for to in vhdx vhd; do
			"$VHDX" convert "$img" "c-$name.$to" || fail "$name -> $to"
			"$VHDX" convert "c-$name.$to" "c-$name.$to.raw" || fail "$name -> $to -> raw"
			expect_eq "$name -> $to -> raw" "$(sha256 "c-$name.$to.raw")" "$want"
			expect_eq "$name -> $to: size" "$(stat -c %s "c-$name.$to.raw")" "$(manifest_field "$name.xz" virtual_size)"
		done
		qemu-img check -q "c-$name.vhdx" || fail "qemu-img check c-$name.vhdx"
		n=$((n + 1))
	done
	# 126 allocated blocks that are all zero: a dynamic copy stores none
	"$VHDX" map "c-disk2vhd-zerofilled.vhd.vhdx" | grep -q data && fail "zero-filled VHD: the VHDX copy stores blocks"
	"$VHDX" map "c-disk2vhd-zerofilled.vhd.vhd" | grep -q data && fail "zero-filled VHD: the VHD copy stores blocks"
	pass "$n conformance images -> VHDX and VHD -> raw give the manifest's raw_sha256; all-zero blocks are dropped"

	# a dirty log (replayed in memory, the file untouched): per the manifest,
	# 0xa5 for 0-18M, zeros after (a full 10 GiB hash would take too long)
	img=$(conformance_image dirtylog-10G.vhdx)
	"$VHDX" convert "$img" dirty.vhd || fail "dirtylog-10G.vhdx -> vhd"
	expect_eq "dirtylog-10G.vhdx after the conversion" "$(sha256 "$img")" \
		"$(manifest_field dirtylog-10G.vhdx.xz file_sha256)"
	expect_eq "dirtylog-10G.vhdx -> vhd: size" "$(vsize dirty.vhd)" "$(manifest_field dirtylog-10G.vhdx.xz virtual_size)"
	expect_eq "dirtylog-10G.vhdx -> vhd: blocks stored" "$(echo $(blocks_with_data dirty.vhd 2097152))" "0 1 2 3 4 5 6 7 8"
	"$VHDX" convert -O raw --length 18M dirty.vhd - | cmp -s - <(head -c 18M /dev/zero | tr '\0' '\245') ||
		fail "dirtylog-10G.vhdx -> vhd: the first 18 MiB are not 0xa5"
	pass "a dirty-log VHDX converts with its log replayed and stays untouched"
else
	echo "conformance images not found at $CONFORMANCE: skipping that part"
fi

# ---- standard output, --offset/--length
expect_eq "raw to standard output" "$("$VHDX" convert rt-vhd-dynamic2M.vhd - | sha256_stdin)" "$SRC_SHA"
expect_eq "--offset/--length" "$("$VHDX" convert -O raw --offset 10M --length 3M rt-vhd-dynamic2M.vhd - | sha256_stdin)" \
	"$(dd if=src.raw bs=1M skip=10 count=3 status=none | sha256_stdin)"
pass "raw output to standard output and a slice"

# ---- refusals, with their exact messages
before=$(sha256 rt-vhdx-dynamic2M.vhdx)
expect_fail_msg . "$VHDX" convert rt-vhd-fixed.vhd rt-vhdx-dynamic2M.vhdx
expect_eq "message for an existing DST" "$(cat "$T/err")" \
	"vhdx convert: rt-vhdx-dynamic2M.vhdx: exists (use --force to replace it)"
expect_eq "the existing DST after the refusal" "$(sha256 rt-vhdx-dynamic2M.vhdx)" "$before"
expect_fail_msg . "$VHDX" convert rt-vhd-fixed.vhd rt-raw-raw.raw
expect_eq "message for an existing raw DST without -O" "$(cat "$T/err")" \
	"vhdx convert: rt-raw-raw.raw: exists (use --force to replace it)"
"$VHDX" convert --force --type fixed rt-vhd-dynamic2M.vhd rt-vhdx-dynamic2M.vhdx || fail "--force"
expect_eq "--force replaced the DST" "$(raw2sha rt-vhdx-dynamic2M.vhdx)" "$SRC_SHA"
"$VHDX" info rt-vhdx-dynamic2M.vhdx | grep -q "type: fixed" || fail "--force did not make the new (fixed) image"
expect_fail_msg . "$VHDX" convert --force rt-vhdx-dynamic2M.vhdx rt-vhdx-dynamic2M.vhdx
expect_eq "message for DST = SRC" "$(cat "$T/err")" \
	"vhdx convert: rt-vhdx-dynamic2M.vhdx: is a file of the input rt-vhdx-dynamic2M.vhdx; refusing to write over it"
expect_fail_msg . "$VHDX" convert --force chain-vhdx/l3.vhdx chain-vhdx/l1.vhdx
grep -q "is a file of the input" "$T/err" || fail "a parent of the input as DST: $(cat "$T/err")"
expect_eq "the input after DST = SRC was refused" "$(raw2sha rt-vhdx-dynamic2M.vhdx)" "$SRC_SHA"
head -c 1000 rnd > odd.raw
for f in vhdx vhd; do
	expect_fail_msg . "$VHDX" convert -f raw odd.raw odd.$f
	expect_eq "message for a raw size that is no sector multiple ($f)" "$(cat "$T/err")" \
		"vhdx convert: odd.raw: the disk size 1000 is not a multiple of the logical sector size (512); pad the file or convert to raw"
	[ -e odd.$f ] && fail "odd.$f exists after the refusal"
done
"$VHDX" convert -f raw odd.raw odd2.raw || fail "raw -> raw of an odd size"
cmp odd.raw odd2.raw || fail "raw -> raw of 1000 bytes"
rc=0
"$VHDX" convert -O qcow2 src.raw x.qcow2 2> err || rc=$?
expect_eq "exit code of -O qcow2" "$rc" 2
expect_eq "message for -O qcow2" "$(cat err)" "vhdx convert: unknown output format 'qcow2' (use -O raw, vhdx or vhd)"
rc=0
"$VHDX" convert --type fixed src.raw x.raw 2> err || rc=$?
expect_eq "exit code of --type with a raw output" "$rc" 2
pass "refusals: existing DST, DST = SRC or its parent, odd raw size, unknown -O, image options for raw"

# ---- a failure half-way removes the DST it created
rc=0
echo 'op=write file=fail.vhdx struct=payload nth=3 err=ENOSPC' > rules
"$VHDX" --faults rules convert rt-vhd-fixed.vhd fail.vhdx 2> err || rc=$?
expect_eq "exit code of a failed conversion" "$rc" 1
grep -q "fail.vhdx: writing payload.*ENOSPC" err || fail "the failure is not reported: $(cat err)"
grep -q "removed the incomplete output" err || fail "no word about the removed output: $(cat err)"
[ -e fail.vhdx ] && fail "a failed conversion left fail.vhdx behind"
pass "a failed conversion removes its DST"

# ---- progress: only when asked (or on a terminal); a final 100% line
"$VHDX" convert --progress rt-vhd-fixed.vhd prog.vhdx 2> err || fail "--progress"
grep -q "100.0%" err || fail "--progress printed no 100% line: $(cat err)"
grep -q "MiB/s" err || fail "--progress printed no rate: $(cat err)"
pass "--progress"

# ---- SIGTERM half-way (every payload write slowed down by a fault rule) removes the DST
echo 'op=write file=slow.vhdx struct=payload delay=300' > slow.rules
"$VHDX" --faults slow.rules convert rt-vhd-fixed.vhd slow.vhdx 2> err &
pid=$!
for ((i = 0; i < 50; i++)); do [ -e slow.vhdx ] || [ -e ".slow.vhdx.tmp-$pid/slow.vhdx" ] && break; sleep 0.1; done
sleep 0.5
kill -TERM $pid
rc=0
wait $pid || rc=$?
expect_eq "exit code after SIGTERM" "$rc" 1
grep -q "interrupted by signal 15" err || fail "no word about the signal: $(cat err)"
[ -e slow.vhdx ] && fail "an interrupted conversion left slow.vhdx behind"
pass "SIGTERM stops the conversion and removes its DST"
