#!/bin/bash
# test-qemu-matrix.sh - `vhdx convert -O raw` against `qemu-img convert -O raw`
# (an independent reader) on a matrix of VHDX images that qemu-img makes:
# block sizes 1M..256M, dynamic (with ZERO or NOT_PRESENT unallocated blocks)
# and fixed, virtual sizes 1M, 63M+512, 1G and a sparse 5G, filled by qemu-io
# with distinct patterns at offsets that straddle block boundaries, the 4 GiB
# chunk boundary (where the BAT interleaves a sector-bitmap entry) and the
# last partial block.  The two raw files must be identical byte for byte, and
# ours must be sparse (loosely) where qemu's is.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires qemu-img qemu-io
[ -x "$VHDX" ] || fail "$VHDX was not built"

MiB=$((1 << 20))
GiB=$((1 << 30))
CHUNK=$((4 * GiB)) # bytes of disk one sector-bitmap block covers with 512-byte sectors

# same_bytes A B: byte-for-byte equality of two files of the same size.  With
# python3 only the data extents (SEEK_DATA/SEEK_HOLE) of either file are read,
# since a hole in both reads as zeros in both; a 5 GiB sparse cmp takes 30 s.
same_bytes() {
	[ "$(stat -c %s "$1")" = "$(stat -c %s "$2")" ] ||
		{ echo "sizes differ: $(stat -c %s "$1") vs $(stat -c %s "$2")"; return 1; }
	if ! command -v python3 >/dev/null 2>&1; then
		cmp "$1" "$2"
		return
	fi
	python3 - "$1" "$2" <<'EOF'
import os, sys
def extents(fd, size):
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break  # ENXIO: only a hole is left
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    return out
fa, fb = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(fa).st_size
ranges = sorted(extents(fa, size) + extents(fb, size))
merged = []
for s, e in ranges:
    if merged and s <= merged[-1][1]:
        merged[-1][1] = max(merged[-1][1], e)
    else:
        merged.append([s, e])
for s, e in merged:
    off = s
    while off < e:
        n = min(e - off, 1 << 22)
        a, b = os.pread(fa, n, off), os.pread(fb, n, off)
        if a != b:
            i = next(k for k in range(min(len(a), len(b))) if a[k] != b[k]) if len(a) == len(b) else 0
            print(f"first difference at byte {off + i}: {a[i:i+1].hex()} vs {b[i:i+1].hex()}")
            sys.exit(1)
        off += n
EOF
}

# bytes N[KMG]: a size in bytes
bytes() {
	case "$1" in
	*K) echo $((${1%K} << 10)) ;;
	*M) echo $((${1%M} << 20)) ;;
	*G) echo $((${1%G} << 30)) ;;
	*) echo $(($1)) ;;
	esac
}

# allocated KiB of a file
alloc_kib() { du -k "$1" | cut -f1; }

# run_case BLOCK SUBFORMAT SIZE [qemu-img -o extras]
run_case() {
	local bs="$1" sub="$2" size extra="${4:-}" bsb img w=() nw=0 rc=0 dv dq lb nblk
	size=$(bytes "$3")
	bsb=$(bytes "$bs")
	img="$T/m.vhdx"
	rm -f "$img" "$T/vhdx.raw" "$T/qemu.raw"
	qemu-img create -q -f vhdx -o "block_size=$bs,subformat=$sub${extra:+,$extra}" "$img" "$size" ||
		fail "qemu-img create $bs $sub $size failed"

	# add_write OFF LEN PATTERN: a write clipped to the disk
	add_write() {
		local o=$1 l=$2
		[ "$o" -ge 0 ] && [ "$o" -lt "$size" ] || return 0
		[ $((o + l)) -le "$size" ] || l=$((size - o))
		w+=(-c "write -P $3 $o $l")
		nw=$((nw + 1))
	}
	nblk=$(((size + bsb - 1) / bsb))
	add_write 0 4096 0x01                                  # first sector(s)
	[ "$size" -gt "$bsb" ] && add_write $((bsb - 512)) 1024 0x02      # block 0 | block 1
	[ "$nblk" -gt 2 ] && add_write $((nblk / 2 * bsb - 4096)) 8192 0x03 # a middle block boundary
	[ "$size" -gt "$CHUNK" ] && add_write $((CHUNK - 512)) 1024 0x06  # chunk 0 | chunk 1
	lb=$(((size - 1) / bsb * bsb))                         # start of the last (maybe partial) block
	[ "$lb" -ge 512 ] && add_write $((lb - 512)) 1024 0x05
	if [ "$nblk" -ge 4 ] && [ "$bsb" -le $((2 * MiB)) ]; then
		add_write $((bsb / 2)) $((3 * bsb)) 0x07       # one write across four blocks
		add_write $((2 * bsb)) "$bsb" 0x08             # a whole block, then zeroed again:
		w+=(-c "write -z $((2 * bsb)) $bsb")           # qemu may mark it ZERO
	fi
	add_write $((size - 512)) 512 0x04                     # the last sector
	qemu-io -f vhdx "${w[@]}" "$img" > "$T/qemu-io.out" 2>&1 ||
		fail "qemu-io on $bs $sub $size failed: $(cat "$T/qemu-io.out")"

	qemu-img convert -O raw "$img" "$T/qemu.raw" || fail "qemu-img convert $bs $sub $size failed"
	timeout 120 "$VHDX" convert -O raw "$img" "$T/vhdx.raw" 2> "$T/err" || rc=$?
	[ "$rc" = 0 ] || fail "block_size=$bs $sub size=$size${extra:+ $extra}: vhdx convert exited $rc: $(cat "$T/err")"
	same_bytes "$T/vhdx.raw" "$T/qemu.raw" > "$T/cmp" 2>&1 ||
		fail "block_size=$bs $sub size=$size${extra:+ $extra}: vhdx and qemu-img differ: $(cat "$T/cmp")"
	# sparse: ours may allocate whole 4 MiB copy chunks around each write, no more
	dv=$(alloc_kib "$T/vhdx.raw") dq=$(alloc_kib "$T/qemu.raw")
	[ "$dv" -le $((dq + (nw * 8 + 1) * 1024)) ] ||
		fail "block_size=$bs $sub size=$size: output is not sparse: $dv KiB allocated, qemu-img's $dq KiB"
	if [ "$size" -le $((64 * MiB + 512)) ]; then
		"$VHDX" convert -O raw "$img" - 2> "$T/err" | cmp -s - "$T/qemu.raw" ||
			fail "block_size=$bs $sub size=$size: vhdx convert to standard output differs: $(cat "$T/err")"
	fi
	pass "block_size=$bs $sub${extra:+ ($extra)} size=$size: $nw pattern writes, identical to qemu-img (allocated: $dv KiB, qemu $dq KiB)"
	rm -f "$img" "$T/vhdx.raw" "$T/qemu.raw"
}

# is a fixed 5 GiB image sparse and quick here?  (qemu-img makes it with a hole)
fixed5g=no
if qemu-img create -q -f vhdx -o block_size=256M,subformat=fixed "$T/probe.vhdx" 5G 2>/dev/null &&
   [ "$(alloc_kib "$T/probe.vhdx")" -lt $((64 * 1024)) ]; then
	fixed5g=yes
else
	echo "a fixed 5G image is not sparse on this file system: only dynamic 5G cases"
fi
rm -f "$T/probe.vhdx"

for bs in 1M 2M 8M 32M 256M; do
	for size in 1M 66060800 1G; do
		run_case "$bs" dynamic "$size"
		run_case "$bs" fixed "$size"
	done
done
# unallocated blocks NOT_PRESENT instead of ZERO
run_case 1M dynamic 66060800 block_state_zero=off
run_case 32M dynamic 1G block_state_zero=off
# 5 GiB spans two 4 GiB chunks: the BAT interleaves a sector-bitmap entry after chunk 0
run_case 1M dynamic 5G
run_case 2M dynamic 5G block_state_zero=off
run_case 256M dynamic 5G
if [ "$fixed5g" = yes ]; then
	run_case 1M fixed 5G
	run_case 256M fixed 5G
fi
