#!/bin/bash
# bench-mount.sh - figures of issue #16 (not a pass/fail test), as root:
#   1. the time from `vhdx mount IMAGE DIR` to the first byte of a file on
#      an ext4 and an NTFS partition (the mount, then head -c 1);
#   2. the read speed of a SIZE MiB file through `vhdx mount` against the
#      same file system in a raw image, loop-mounted directly.
# Each reader's page cache of the file is dropped before each run
# (posix_fadvise DONTNEED), the image files stay cached (as in vhdx bench);
# the median of RUNS runs is printed.
# Usage: bench/bench-mount.sh [--size MiB] [--runs N] [--dir DIR] [--build DIR]
set -eu
size=512 runs=5 dir=/var/tmp build=
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
build=${build:-$here/build}
VHDX=$build/tools/vhdx
export VHDXFS=$build/fuse/vhdxfs
[ "$(id -u)" = 0 ] || { echo "bench-mount.sh: needs root (loop devices, mounts)" >&2; exit 2; }
W=$(mktemp -d "$dir/bench-mount.XXXXXX")
loopdev=
cleanup() {
	"$VHDX" umount "$W/vol" > /dev/null 2>&1 || true
	mountpoint -q "$W/raw-mnt" && umount "$W/raw-mnt"
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2> /dev/null
	rm -rf "$W"
}
trap cleanup EXIT

drop() { python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }

# a raw disk: GPT, p1 ext4 with a SIZE MiB file, p2 NTFS with a 1 MiB file; the same as a dynamic VHDX
disk_mib=$((size + 300))
truncate -s ${disk_mib}M "$W/disk.raw"
sgdisk -n 1:0:+$((size + 100))M -t 1:8300 -n 2:0:+64M -t 2:0700 "$W/disk.raw" > /dev/null
loopdev=$(losetup -f --show -o $((1 << 20)) --sizelimit $(((size + 100) << 20)) "$W/disk.raw")
mkfs.ext4 -q -F "$loopdev"
mkdir -p "$W/raw-mnt"
mount "$loopdev" "$W/raw-mnt"
head -c $((size << 20)) /dev/urandom > "$W/raw-mnt/big.bin"
umount "$W/raw-mnt"
losetup -d "$loopdev"
p2=$(((size + 101) << 20))
loopdev=$(losetup -f --show -o $p2 --sizelimit $((64 << 20)) "$W/disk.raw")
mkntfs -Q -F "$loopdev" > /dev/null 2>&1
ntfs-3g "$loopdev" "$W/raw-mnt"
head -c $((1 << 20)) /dev/urandom > "$W/raw-mnt/small.bin"
umount "$W/raw-mnt"
losetup -d "$loopdev"
loopdev=
"$VHDX" convert -f raw "$W/disk.raw" "$W/disk.vhdx" > /dev/null
cat "$W/disk.vhdx" "$W/disk.raw" > /dev/null # both in the page cache
sync

# 1. vhdx mount to the first byte
t_ext=() t_ntfs=()
for ((i = 0; i < runs; i++)); do
	t0=$(now)
	"$VHDX" mount "$W/disk.vhdx" "$W/vol" > /dev/null
	head -c 1 "$W/vol/p1/big.bin" > /dev/null
	t1=$(now)
	head -c 1 "$W/vol/p2/small.bin" > /dev/null
	t2=$(now)
	"$VHDX" umount "$W/vol" > /dev/null
	t_ext+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
	t_ntfs+=("$(echo "($t2 - $t0) * 1000" | bc -l)")
done
m_ext=$(printf '%s\n' "${t_ext[@]}" | median)
m_ntfs=$(printf '%s\n' "${t_ntfs[@]}" | median)

# 2. read speed: through vhdx mount against the raw image loop-mounted
"$VHDX" mount "$W/disk.vhdx" "$W/vol" > /dev/null
loopdev=$(losetup -r -f --show -o $((1 << 20)) --sizelimit $(((size + 100) << 20)) "$W/disk.raw")
mount -o ro,noload "$loopdev" "$W/raw-mnt"
s_ours=() s_raw=()
for ((i = 0; i < runs; i++)); do
	for which in ours raw; do
		f=$W/vol/p1/big.bin
		[ "$which" = raw ] && f=$W/raw-mnt/big.bin
		drop "$f"
		t0=$(now)
		dd if="$f" of=/dev/null bs=1M 2> /dev/null
		t1=$(now)
		mbs=$(echo "$size / ($t1 - $t0)" | bc -l)
		if [ "$which" = ours ]; then s_ours+=("$mbs"); else s_raw+=("$mbs"); fi
	done
done
m_ours=$(printf '%s\n' "${s_ours[@]}" | median)
m_raw=$(printf '%s\n' "${s_raw[@]}" | median)
umount "$W/raw-mnt"

echo "bench-mount.sh --size $size --runs $runs; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %10.1f ms\n' "vhdx mount to the first byte (ext4, p1)" "$m_ext"
printf '%-44s %10.1f ms\n' "vhdx mount to the first byte (NTFS p2, after p1)" "$m_ntfs"
printf '%-44s %10.1f MiB/s\n' "read $size MiB through vhdx mount (ext4)" "$m_ours"
printf '%-44s %10.1f MiB/s\n' "read $size MiB, raw image loop-mounted" "$m_raw"
printf '%-44s %10.3f\n' "ratio" "$(echo "$m_ours / $m_raw" | bc -l)"
