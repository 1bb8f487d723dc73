#!/bin/bash
# test-write.sh - images we create and write, checked against a raw mirror of
# the same writes and against independent readers: qemu-img (check, convert)
# and vhdimount.  Covers fixed and dynamic, 512 and 4096-byte sectors, block
# sizes 1 MiB and 32 MiB, unaligned and block-straddling writes, the last
# partial block, discard, and that a clean close leaves the log clean.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img xz python3

# write_both IMG MIRROR OFFSET LEN: the same random bytes into the image and the mirror
write_both() {
	head -c "$4" /dev/urandom > "$T/chunk"
	"$VHDX" write --offset "$3" "$1" < "$T/chunk" || fail "vhdx write $1 at $3+$4: $(cat "$T/err" 2>/dev/null)"
	dd if="$T/chunk" of="$2" bs=64K oflag=seek_bytes seek="$3" conv=notrunc status=none || fail "dd mirror"
}

# discard_both IMG MIRROR OFFSET LEN
discard_both() {
	"$VHDX" write --discard "$4" --offset "$3" "$1" || fail "vhdx write --discard $1"
	head -c "$4" /dev/zero | dd of="$2" bs=64K oflag=seek_bytes seek="$3" conv=notrunc status=none
}

json() { "$VHDX" info --json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"; }

check_same() { # IMG MIRROR LABEL [no-qemu]
	"$VHDX" convert -O raw "$1" "$T/ours.raw" || fail "$3: convert"
	cmp "$T/ours.raw" "$2" || fail "$3: our read differs from the raw mirror"
	if [ "${4:-}" != no-qemu ]; then
		qemu-img check -q "$1" || fail "$3: qemu-img check reports problems"
		qemu-img convert -O raw "$1" "$T/qemu.raw" || fail "$3: qemu-img convert"
		cmp "$T/qemu.raw" "$2" || fail "$3: qemu-img reads different bytes"
	fi
	expect_eq "$3: LogGuid after a clean close" "$(json "$1" "d['layers'][0]['headers'][d['layers'][0]['current_header']-1]['log_guid']")" \
		00000000-0000-0000-0000-000000000000
}

size=42000384 # not a multiple of any block size, a multiple of 4096 (and of 8192, as 7-Zip needs)
n=0 n7=0
for type in dynamic fixed; do
	for bs in 1M 32M; do
		for lss in 512 4096; do
			img="$T/w-$type-$bs-$lss.vhdx"
			"$VHDX" create --type $type --size $size --block-size $bs --logical-sector-size $lss "$img" ||
				fail "create $type $bs $lss"
			expect_eq "type" "$(json "$img" "d['type']")" "$type"
			expect_eq "logical sector size" "$(json "$img" "d['logical_sector_size']")" "$lss"
			truncate -s $size "$T/mirror"
			write_both "$img" "$T/mirror" 0 4096
			write_both "$img" "$T/mirror" 3 777               # inside one sector: merged
			write_both "$img" "$T/mirror" $((1048576 - 100)) 300000  # straddles a block boundary
			write_both "$img" "$T/mirror" $((size - 864)) 864  # the end of the last partial block
			write_both "$img" "$T/mirror" 7340032 5242880      # 5 MiB, several blocks
			write_both "$img" "$T/mirror" 7340100 1000         # overwrite inside allocated data
			# qemu opens only 512-byte logical sectors ("Operation not supported")
			check_same "$img" "$T/mirror" "$type bs=$bs lss=$lss" "$([ $lss = 4096 ] && echo no-qemu)"
			if command -v vhdimount >/dev/null && [ -c /dev/fuse ]; then
				mkdir -p "$T/vm"
				if vhdimount "$img" "$T/vm" >/dev/null 2>&1; then
					cmp "$T/vm/vhdi1" "$T/mirror" || { fusermount3 -u "$T/vm"; fail "vhdimount reads different bytes ($type $bs $lss)"; }
					fusermount3 -u "$T/vm"
				fi
			fi
			sevenzip_agrees "$img" "$(sha256 "$T/mirror")" "$type bs=$bs lss=$lss" && n7=$((n7 + 1))
			rm -f "$T/mirror" "$T/ours.raw" "$T/qemu.raw"
			n=$((n + 1))
		done
	done
done
pass "$n create/write combinations read identically by us, qemu-img and vhdimount"
command -v 7zz > /dev/null && { [ "$n7" = "$n" ] || fail "7-Zip read only $n7 of the $n images"; }

# discard: whole blocks become ZERO (nothing stored), partial ranges get zeros
img="$T/discard.vhdx"
"$VHDX" create --size 16M --block-size 1M "$img"
rm -f "$T/mirror"; truncate -s 16M "$T/mirror"
write_both "$img" "$T/mirror" 0 8388608
discard_both "$img" "$T/mirror" 1048576 2097152     # two whole blocks
discard_both "$img" "$T/mirror" 4000000 100000      # inside one block
check_same "$img" "$T/mirror" "discard"
expect_eq "ZERO blocks after discard" "$(json "$img" "d['layers'][0]['bat']['payload_states'].get('ZERO', 0)")" 2
pass "discard"

# zeros written over blocks that read as zeros store nothing
img="$T/zeros.vhdx"
"$VHDX" create --size 64M --block-size 1M "$img"
before=$(stat -c %s "$img")
head -c 33554432 /dev/zero | "$VHDX" write --offset 0 "$img"
expect_eq "file size after writing zeros" "$(stat -c %s "$img")" "$before"
expect_eq "allocated blocks after writing zeros" "$(json "$img" "d['layers'][0]['bat']['payload_states']['FULLY_PRESENT']")" 0
pass "zero writes allocate nothing"

# images qemu writes into (it journals its BAT updates) read correctly here, and ours in qemu-io
img="$T/qemu-made.vhdx"
"$VHDX" create --size 20M --block-size 2M "$img"
rm -f "$T/mirror"; truncate -s 20M "$T/mirror"
qemu-io -f vhdx -c "write -P 0x5a 1000000 3000000" -c "write -P 0xa5 0 512" "$img" >/dev/null || fail "qemu-io write"
python3 - "$T/mirror" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000000); f.write(b"\x5a" * 3000000)
    f.seek(0); f.write(b"\xa5" * 512)
EOF
write_both "$img" "$T/mirror" 9000000 70000
check_same "$img" "$T/mirror" "qemu-io then vhdx write"
pass "qemu-io and vhdx write on the same image"

# a read-only open never writes: the file of a read is byte-identical
sum=$(sha256 "$img")
"$VHDX" convert -O raw "$img" - > /dev/null
"$VHDX" info "$img" > /dev/null
"$VHDX" map "$img" > /dev/null
expect_eq "sha256 after read-only use" "$(sha256 "$img")" "$sum"

# writes past the end and bad options are refused
expect_fail_msg "past the end" sh -c "head -c 1024 /dev/zero | '$VHDX' write --offset 20971000 '$img'"
pass "writes past the end are refused"
