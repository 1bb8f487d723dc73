#!/bin/bash
# profile.sh - where the time goes in the figures of `vhdx bench` that miss
# their targets (issue #8): perf profiles, in one run, of
#
#   convert     `vhdx convert -O raw` of a fully allocated dynamic VHDX (warm)
#   fuse-seq    the vhdxfs daemon while 1 MiB reads stream the disk (dd)
#   fuse-rand   the vhdxfs daemon during random 4 KiB reads (fio, one job)
#   fuse-write  the vhdxfs daemon while dd writes 1 MiB blocks into a new
#               image mounted -o rw, then fsync
#
# For each: the share of samples in the kernel, in libc, in libfuse and in
# our own code (vhdx, vhdxfs and the library linked into them), and the
# hottest symbols.  The figures of `vhdx bench` say how fast; this says why.
# Not a test: it prints a report.  Needs root (mounts, kernel symbols),
# perf (linux-perf), fio for fuse-rand, and the build's tools/vhdx and
# fuse/vhdxfs.
set -u
set -o pipefail

usage() {
	cat <<EOF
Usage: bench/profile.sh [--size N] [--top N] [--dir DIR] [--only convert|fuse-seq|fuse-rand|fuse-write]

Profiles vhdx convert and the vhdxfs daemon with perf and prints, for each,
the share of samples by program part (kernel, libc, libfuse, ours) and the
hottest symbols.

  --size N   size of the test disk, e.g. 1G (default 1G)
  --top N    symbols shown per profile (default 12)
  --dir DIR  make the temporary folder in DIR (default \$TMPDIR or /var/tmp)
  --only P   only this profile
  VHDX, VHDXFS: the programs (default: the build beside this script, then PATH)
EOF
}

size=1G top=12 dir=${TMPDIR:-/var/tmp} only=
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift 2 ;;
	--top) top=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
VHDX=${VHDX:-$(command -v "$here/tools/vhdx" || command -v vhdx)}
VHDXFS=${VHDXFS:-$(command -v "$here/fuse/vhdxfs" || command -v vhdxfs)}
die() { echo "profile.sh: $*" >&2; exit 1; }
[ -x "$VHDX" ] || die "vhdx not found (set VHDX=)"
command -v perf > /dev/null || die "perf is not installed (apt-get install linux-perf)"
[ "$(id -u)" = 0 ] || die "needs root (mounts, kernel symbols)"

T=$(mktemp -d "$dir/vhdx-profile.XXXXXX") || die "cannot make a folder in $dir"
MNT=$T/mnt
mkdir -p "$MNT"
cleanup() {
	mountpoint -q "$MNT" 2> /dev/null && fusermount3 -u "$MNT"
	rm -rf "$T"
}
trap cleanup EXIT

# report NAME PERF.DATA: split by program part, then the hottest symbols
report() {
	echo "== $1"
	perf report -i "$2" --no-children --sort dso --stdio 2> /dev/null | awk -v top="$top" '
		/^ *[0-9.]+%/ {
			p = $1; sub("%", "", p); d = $2
			if (d ~ /kernel|vmlinux|\[/) part = "kernel"
			else if (d ~ /^libc/) part = "libc"
			else if (d ~ /libfuse/) part = "libfuse"
			else if (d ~ /^(vhdx|vhdxfs|lt-vhdx|lt-vhdxfs|libvhdx)/) part = "ours (vhdx, vhdxfs, libvhdx)"
			else part = "other (" d ")"
			share[part] += p
		}
		END { for (k in share) printf "  %6.2f%%  %s\n", share[k], k }' | sort -rn
	echo "  hottest symbols:"
	perf report -i "$2" --no-children --sort sym --stdio 2> /dev/null |
		grep -E '^ +[0-9.]+%' | head -n "$top" | sed 's/^/  /'
	echo
}

echo "making a fully allocated dynamic VHDX of $size in $T ..." >&2
head -c "$(numfmt --from=iec "$size")" /dev/urandom > "$T/disk.raw" || die "cannot write $T/disk.raw"
"$VHDX" convert -f raw -O vhdx --type dynamic --no-progress "$T/disk.raw" "$T/disk.vhdx" || die "convert to VHDX failed"
rm -f "$T/disk.raw"
warm() { cat "$1" > /dev/null; }

if [ -z "$only" ] || [ "$only" = convert ]; then
	warm "$T/disk.vhdx"
	perf record -q -g -o "$T/convert.data" -- "$VHDX" convert -O raw --no-progress "$T/disk.vhdx" "$T/out.raw" \
		> /dev/null 2>&1 || die "perf record of convert failed"
	rm -f "$T/out.raw"
	report "convert: vhdx convert -O raw, warm input, new raw file" "$T/convert.data"
fi

# fuse_profile NAME DATA IMAGE OPTS COMMAND...: mounts IMAGE (-o OPTS unless
# empty), profiles the daemon while COMMAND uses MNT/disk
fuse_profile() {
	local name=$1 data=$2 image=$3 opts=$4 pid
	shift 4
	[ -x "$VHDXFS" ] || die "vhdxfs not found (set VHDXFS=)"
	"$VHDXFS" -f ${opts:+-o "$opts"} "$image" "$MNT" & pid=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
	mountpoint -q "$MNT" || die "vhdxfs did not mount"
	warm "$T/disk.vhdx"
	perf record -q -g -o "$data" -p "$pid" > /dev/null 2>&1 & local perf_pid=$!
	sleep 0.5
	"$@" > /dev/null 2>&1 || echo "profile.sh: the reader failed: $*" >&2
	kill -INT "$perf_pid"
	wait "$perf_pid"
	fusermount3 -u "$MNT"
	wait "$pid"
	report "$name" "$data"
}

if [ -z "$only" ] || [ "$only" = fuse-seq ]; then
	fuse_profile "fuse-seq: the vhdxfs daemon, dd bs=1M of the whole disk" "$T/fuse-seq.data" "$T/disk.vhdx" "" \
		dd if="$MNT/disk" of=/dev/null bs=1M
fi
if [ -z "$only" ] || [ "$only" = fuse-rand ]; then
	if command -v fio > /dev/null; then
		fuse_profile "fuse-rand: the vhdxfs daemon, fio randread 4 KiB, one job" "$T/fuse-rand.data" "$T/disk.vhdx" "" \
			fio --name=r --filename="$MNT/disk" --rw=randread --bs=4k --number_ios=40000 \
			--ioengine=psync --fadvise_hint=1 --norandommap --randrepeat=1
	else
		echo "== fuse-rand: skipped, fio is not installed" >&2
	fi
fi
if [ -z "$only" ] || [ "$only" = fuse-write ]; then
	"$VHDX" create --size "$size" "$T/new.vhdx" > /dev/null || die "vhdx create failed"
	fuse_profile "fuse-write: the vhdxfs daemon, dd bs=1M into a new image mounted -o rw, fsync" "$T/fuse-write.data" \
		"$T/new.vhdx" rw dd if="$T/disk.vhdx" of="$MNT/disk" bs=1M count="$(($(numfmt --from=iec "$size") >> 20))" \
		conv=notrunc,fsync
fi
