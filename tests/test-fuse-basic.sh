#!/bin/bash
# test-fuse-basic.sh - vhdxfs on an image made by qemu-img: command line
# (help, version, usage, bad images leave nothing mounted), the mounted tree,
# byte-exact reads against two independent readers (vhdx convert and
# qemu-img convert), parallel readers, the .vhdxfs/stats counters, read-only
# enforcement, and SEEK_DATA/SEEK_HOLE from the allocation map.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

[ -x "$VHDXFS" ] || skip "vhdxfs was not built (configure found no libfuse3)"
requires qemu-img

MNT="$T/mnt"
mkdir -p "$MNT"
MiB=1048576

# ---- command line, no mount needed ----
"$VHDXFS" --help > "$T/help" 2>&1 || fail "vhdxfs --help exited $?"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES; do
	grep -q "^$s" "$T/help" || fail "--help has no $s section"
done
for s in "losetup -r -P --show -f" "fusermount3 -u" "parent-dir=DIR" "path-map=WIN=DIR" "no-parent" \
	"ignore-id-mismatch" "salvage" "max-depth=N" "-o rw" "allow_other"; do
	grep -qF -- "$s" "$T/help" || fail "--help does not mention '$s'"
done
pass "--help has the man-page sections"
# fuse/vhdxfs.1 in step with --help: every section, every option and every .vhdxfs file.
man1="$top_srcdir/fuse/vhdxfs.1"
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$man1" > "$T/man.txt" || fail "cannot read $man1"
sed -n '1,/^FUSE OPTIONS (from libfuse)/p' "$T/help" > "$T/own.help"
for s in $(grep -E '^[A-Z][A-Z ]+$' "$T/own.help" | grep -v '^FUSE OPTIONS' | tr ' ' _); do
	grep -q "^\.SH \"*${s//_/ }\"*\$" "$T/man.txt" || fail "section '${s//_/ }' of --help is not in fuse/vhdxfs.1"
done
n_opts=0
for o in $({ grep -Eo -- '-o [a-z_][a-z_-]*' "$T/own.help"; grep -Eo -- '^ +-[a-zA-Z]( |,|$)' "$T/own.help" | tr -d ' ,'
	grep -Eo -- '--[a-z]+' "$T/own.help"; } | tr ' ' '#' | sort -u); do
	o=${o//#/ }
	grep -qF -- "$o" "$T/man.txt" || grep -qF -- "${o#-o }" "$T/man.txt" || fail "option '$o' of --help is not in fuse/vhdxfs.1"
	n_opts=$((n_opts + 1))
done
[ "$n_opts" -ge 25 ] || fail "only $n_opts options found in --help (the check itself is broken)"
for f in $(grep -Eo 'MOUNTPOINT/[.a-z/]+' "$T/own.help" | sort -u); do
	grep -qF "$f" "$T/man.txt" || fail "$f of --help is not in fuse/vhdxfs.1"
done
pass "fuse/vhdxfs.1 has every section, all $n_opts options and every file of --help"
"$VHDXFS" --version > "$T/version" 2>&1 || fail "vhdxfs --version exited $?"
grep -q "^vhdxfs [0-9]" "$T/version" || fail "--version: $(cat "$T/version")"
grep -q "FUSE library version" "$T/version" || fail "--version does not name libfuse: $(cat "$T/version")"

"$VHDXFS" > "$T/out" 2> "$T/err" && fail "vhdxfs without arguments succeeded"
rc=$?
expect_eq "exit status without arguments" "$rc" 2
grep -q "Usage: vhdxfs" "$T/err" || fail "no usage line: $(cat "$T/err")"
"$VHDXFS" -o max-depth=0 "$T/x" "$MNT" > "$T/out" 2> "$T/err" && fail "max-depth=0 accepted"
grep -q "max-depth takes a number" "$T/err" || fail "max-depth=0: $(cat "$T/err")"

# A missing image and a garbage image: exit 1 with the reason, nothing mounted.
expect_fail_msg "$T/nonexistent.vhdx.*(No such file|not found)" "$VHDXFS" "$T/nonexistent.vhdx" "$MNT"
fuse_is_mounted "$MNT" && fail "a mount was left behind after a missing image"
head -c $((3 * MiB)) /dev/urandom > "$T/garbage.vhdx"
expect_fail_msg "garbage\.vhdx.*not a VHDX or VHD" "$VHDXFS" "$T/garbage.vhdx" "$MNT"
fuse_is_mounted "$MNT" && fail "a mount was left behind after a garbage image"
pass "bad images exit 1 with a message and mount nothing"

# ---- an image with data, holes and partial blocks ----
# Random data in 1 MiB blocks 2-4, the second half of block 9, 4 KiB of
# block 20, and blocks 30-61; qemu-img leaves all-zero blocks unallocated.
raw="$T/src.raw"
truncate -s $((64 * MiB)) "$raw"
rnd() { head -c "$2" /dev/urandom | dd of="$raw" bs=64K iflag=fullblock seek="$1" conv=notrunc status=none oflag=seek_bytes; }
rnd $((2 * MiB)) $((3 * MiB))
rnd $((9 * MiB + 512 * 1024)) $((512 * 1024))
rnd $((20 * MiB)) 4096
rnd $((30 * MiB)) $((32 * MiB))
img="$T/basic.vhdx"
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic,block_size=1M "$raw" "$img" || fail "qemu-img convert"
img_sha=$(sha256 "$img")
"$VHDX" convert -O raw "$img" "$T/ref.raw" || fail "vhdx convert"
cmp "$T/ref.raw" "$raw" || fail "the reference from vhdx convert differs from the source raw"
qemu-img convert -q -f vhdx -O raw "$img" "$T/qemu.raw" || fail "qemu-img convert to raw"
cmp "$T/qemu.raw" "$raw" || fail "qemu-img's reading differs from the source raw"
ref_sha=$(sha256 "$raw")

requires_fuse

# Daemon mode with an explicit -o ro: returns once mounted.
"$VHDXFS" -o ro "$img" "$MNT" 2> "$T/err" || fail "vhdxfs (daemon mode) exited $?: $(cat "$T/err")"
cleanup_fn "fuse_unmount '$MNT' quiet"
fuse_is_mounted "$MNT" || fail "not mounted after vhdxfs returned"
expect_eq "sha256 of disk (daemon mode)" "$(sha256 "$MNT/disk")" "$ref_sha"
dd if=/dev/zero of="$MNT/disk" bs=4096 count=1 conv=notrunc status=none 2> "$T/err" && fail "a write to a -o ro mount succeeded"
grep -Eq "Read-only file system|Permission denied" "$T/err" || fail "-o ro write: $(cat "$T/err")"
fusermount3 -u "$MNT" || fail "fusermount3 -u"
fuse_is_mounted "$MNT" && fail "still mounted"
pass "daemon mode mounts, reads and unmounts"

fuse_mount "$MNT" "$img"
# The tree.
expect_eq "root listing" "$(ls -A "$MNT" | tr '\n' ' ')" ".vhdxfs disk "
expect_eq "control listing" "$(ls -A "$MNT/.vhdxfs" | tr '\n' ' ')" "events faults stats "
expect_eq "disk size" "$(stat -c %s "$MNT/disk")" $((64 * MiB))
expect_eq "disk mode (ro)" "$(stat -c %a "$MNT/disk")" 444
expect_eq "disk owner" "$(stat -c %u:%g "$MNT/disk")" "$(id -u):$(id -g)"
expect_eq "disk type" "$(stat -c %F "$MNT/disk")" "regular file"
[ -e "$MNT/nonexistent" ] && fail "a nonexistent name exists"
pass "tree: disk $(stat -c %s "$MNT/disk") bytes, mode 444, owned by the mounting user"

# Whole-disk and unaligned reads.
expect_eq "sha256 of disk" "$(sha256 "$MNT/disk")" "$ref_sha"
for r in "9999 123457" "$((9 * MiB + 511 * 1024 + 17)) 5000" "$((64 * MiB - 777)) 777"; do
	set -- $r
	a=$(dd if="$MNT/disk" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=64K status=none | sha256sum)
	b=$(dd if="$raw" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=64K status=none | sha256sum)
	expect_eq "bytes $1+$2" "$a" "$b"
done
expect_eq "read past the end" "$(dd if="$MNT/disk" bs=4096 skip=$((16 * 1024)) status=none | wc -c)" 0
pass "whole-disk sha256 and unaligned reads match vhdx/qemu-img convert"

# Statistics: exact byte counts with O_DIRECT (no readahead, no cache).
stat_val() { sed -n "s/^$1=//p" "$MNT/.vhdxfs/stats"; }
grep -qx "layer0_path=$img" "$MNT/.vhdxfs/stats" || fail "stats lack layer0_path=$img: $(cat "$MNT/.vhdxfs/stats")"
for k in reads read_bytes zero_copy_reads copied_reads zero_reads writes write_bytes flushes errors \
	errors_EIO errors_EROFS errors_other layers layer0_reads layer0_read_bytes; do
	[ -n "$(stat_val $k)" ] || fail "stats have no $k"
done
expect_eq "virtual_size in stats" "$(stat_val virtual_size)" $((64 * MiB))
r0=$(stat_val reads) b0=$(stat_val read_bytes) z0=$(stat_val zero_copy_reads) l0=$(stat_val layer0_read_bytes)
dd if="$MNT/disk" of=/dev/null bs=1M skip=2 count=3 iflag=direct status=none || fail "direct read"
r1=$(stat_val reads) b1=$(stat_val read_bytes) z1=$(stat_val zero_copy_reads) l1=$(stat_val layer0_read_bytes)
expect_eq "read_bytes after a 3 MiB direct read" $((b1 - b0)) $((3 * MiB))
expect_eq "layer0_read_bytes after a 3 MiB direct read of data" $((l1 - l0)) $((3 * MiB))
[ $((r1 - r0)) -ge 3 ] || fail "reads grew by $((r1 - r0)), expected >= 3"
[ $((z1 - z0)) -ge 1 ] || fail "zero_copy_reads did not grow on a read of contiguous data"
zr0=$(stat_val zero_reads)
dd if="$MNT/disk" of=/dev/null bs=1M skip=22 count=2 iflag=direct status=none || fail "direct read of zeros"
expect_eq "layer0_read_bytes after reading unallocated blocks" "$(stat_val layer0_read_bytes)" "$l1"
[ $(($(stat_val zero_reads) - zr0)) -ge 1 ] || fail "zero_reads did not grow on a read of unallocated blocks"
pass "stats: read_bytes +$((b1 - b0)), reads +$((r1 - r0)), zero_copy_reads +$((z1 - z0))"

# Read-only: writes are refused with EROFS and counted.
e0=$(stat_val errors_EROFS)
dd if=/dev/zero of="$MNT/disk" bs=512 count=1 conv=notrunc status=none 2> "$T/err" && fail "a write to a ro mount succeeded"
grep -Eq "Read-only file system|Permission denied" "$T/err" || fail "ro write: $(cat "$T/err")"
truncate -s 0 "$MNT/disk" 2> "$T/err" && fail "truncate of a ro mount succeeded"
(echo x > "$MNT/.vhdxfs/stats") 2> "$T/err" && fail "writing the stats file succeeded"
[ "$(stat_val errors_EROFS)" -ge $((e0 + 1)) ] || fail "errors_EROFS did not count the refused write"
grep -q "^last_error=EROFS: " "$MNT/.vhdxfs/stats" || fail "last_error: $(grep last_error "$MNT/.vhdxfs/stats")"
expect_eq "disk size after refused writes" "$(stat -c %s "$MNT/disk")" $((64 * MiB))
pass "ro mount refuses writes (EROFS) and counts them"

# Four parallel readers of different ranges and request sizes, two of them O_DIRECT.
pids=()
i=0
for spec in "0 4K" "16 64K direct" "32 1M" "48 7K direct"; do
	set -- $spec
	flags=skip_bytes,count_bytes
	[ "${3:-}" = direct ] && flags=$flags,direct
	bs=$2
	[ "$bs" = 7K ] && bs=4K # O_DIRECT on FUSE wants page-sized requests here
	(dd if="$MNT/disk" of="$T/par$i" bs=$bs iflag=$flags skip=$(($1 * MiB)) count=$((16 * MiB)) status=none) &
	pids+=($!)
	i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p" || fail "a parallel reader failed"; done
for i in 0 1 2 3; do
	dd if="$T/ref.raw" of="$T/slice" bs=1M skip=$((i * 16)) count=16 status=none
	cmp "$T/par$i" "$T/slice" || fail "parallel reader $i: bytes differ from vhdx convert"
done
pass "4 parallel readers match vhdx convert slices"

# SEEK_DATA / SEEK_HOLE follow the allocation map (1 MiB blocks).
if command -v python3 >/dev/null 2>&1; then
	got=$(python3 - "$MNT/disk" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out, off = [], 0
while True:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    out.append("%d-%d" % (d >> 20, h >> 20))
    off = h
print(" ".join(out))
PY
)
	expect_eq "data ranges (MiB) from SEEK_DATA/SEEK_HOLE" "$got" "2-5 9-10 20-21 30-62"
	cp --sparse=always "$MNT/disk" "$T/sparse.raw" || fail "cp --sparse"
	cmp "$T/sparse.raw" "$raw" || fail "cp --sparse copy differs"
	pass "SEEK_DATA/SEEK_HOLE: $got"
else
	echo "SKIP: SEEK_DATA/SEEK_HOLE check (python3 missing)"
fi

fuse_unmount "$MNT"
expect_eq "image sha256 after a ro mount" "$(sha256 "$img")" "$img_sha"

# -o max_read: a 1 MiB O_DIRECT read becomes exactly 8 requests of 128 KiB.
fuse_mount "$MNT" "$img" -o max_read=131072
r0=$(stat_val reads)
dd if="$MNT/disk" of=/dev/null bs=1M skip=30 count=1 iflag=direct status=none || fail "read with max_read"
expect_eq "requests for 1 MiB with max_read=131072" $(($(stat_val reads) - r0)) 8
fuse_unmount "$MNT"
pass "-o max_read=131072 limits requests to 128 KiB"

# Unknown options fail and leave nothing mounted.
"$VHDXFS" -o no-such-option "$img" "$MNT" > "$T/out" 2> "$T/err" && fail "an unknown option was accepted"
grep -q "no-such-option" "$T/err" || fail "unknown option: $(cat "$T/err")"
fuse_is_mounted "$MNT" && fail "a mount was left behind after an unknown option"
pass "unmounted cleanly; the image is unchanged"
