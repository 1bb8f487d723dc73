#!/bin/bash
# bench-fuse.sh - read speed of vhdxfs against vhdimount (libvhdi) on the
# same VHDX image and against the same disk as a plain raw file, in one run.
#
#   seq 1M      dd bs=1M of the whole disk (MB/s), buffered
#   seq 1M dio  the same with iflag=direct (O_DIRECT: no page cache of the
#               file read; for the raw file that means reading the disk)
#   rand 4K     fio randread, 4 KiB, one job, a fixed number of I/Os (IOPS)
#   rand 4K x4  the same with 4 jobs at once (IOPS; vhdxfs is multi-threaded)
#
# Readers: the raw file, vhdxfs as mounted by default, vhdxfs -o direct_io
# (a second mount of the same image), and vhdimount.  The targets are
# judged for the default mount; the direct_io mount's ratios are shown too.
# Every figure is the median of --runs runs; the order of the three readers
# rotates from run to run.  As root, all caches are dropped before every run
# (cold: the image is read from the disk); `--warm` (or not being root)
# keeps the image and raw files in the page cache and drops only the cache
# of the file being read through FUSE (fadvise DONTNEED), which measures the
# drivers rather than the disk.  `--both` runs the two modes.  Also shown:
# CPU time of each FUSE daemon per GiB read (less sensitive to other load).
#
# Targets (issue #5): vhdxfs >= 3 x vhdimount and >= 0.6 x the raw file.
# Not a test: nothing fails; it prints a table.  Needs root or a user who
# may mount FUSE file systems, plus fio and vhdimount (libvhdi-utils).
set -u
set -o pipefail

usage() {
	cat <<EOF
Usage: bench/bench-fuse.sh [OPTIONS]

  --build DIR     build folder holding fuse/vhdxfs and tools/vhdx
                  (default: the current folder if it has them, else ./build)
  --image FILE    benchmark this VHDX (default: a new dynamic VHDX with
                  32 MiB blocks, filled with random data by vhdx write)
  --size N        size of the generated disk, e.g. 1G (default 1G)
  --runs N        runs per figure, the median is shown (default 5)
  --ios N         I/Os per random-read run and job (default 4000)
  --warm          keep the image files cached (default as root: cold caches)
  --both          cold and warm
  --dir DIR       work folder (default: a new folder in /var/tmp, removed)
  -h, --help      this text
EOF
}

SRC=$(cd "$(dirname "$0")/.." && pwd)
build= image= size=1G runs=5 ios=4000 mode= both=0 dir=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--image) image=$2; shift ;;
	--size) size=$2; shift ;;
	--runs) runs=$2; shift ;;
	--ios) ios=$2; shift ;;
	--warm) mode=warm ;;
	--both) both=1 ;;
	--dir) dir=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench-fuse: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

die() { echo "bench-fuse: $*" >&2; exit 1; }
if [ -z "$build" ]; then
	if [ -x fuse/vhdxfs ]; then build=$(pwd); else build=$SRC/build; fi
fi
VHDXFS=$build/fuse/vhdxfs
VHDX=$build/tools/vhdx
[ -x "$VHDXFS" ] || die "no vhdxfs in $build/fuse (build first, or give --build DIR)"
[ -x "$VHDX" ] || die "no vhdx in $build/tools"
for c in fio vhdimount fusermount3 dd; do command -v "$c" > /dev/null || die "'$c' is not installed"; done

can_drop=0
[ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ] && can_drop=1
if [ "$both" = 1 ]; then
	[ "$can_drop" = 1 ] || die "--both needs root (to drop the caches)"
	modes="cold warm"
elif [ "$mode" = warm ] || [ "$can_drop" = 0 ]; then
	modes=warm
else
	modes=cold
fi

if [ -z "$dir" ]; then
	dir=$(mktemp -d /var/tmp/bench-fuse.XXXXXX) || die "mktemp"
	remove_dir=1
else
	mkdir -p "$dir" || die "cannot create $dir"
	remove_dir=0
fi
M1=$dir/vhdxfs M2=$dir/vhdimount M3=$dir/vhdxfs-dio
mkdir -p "$M1" "$M2" "$M3"
cleanup() {
	mountpoint -q "$M1" && fusermount3 -u "$M1"
	mountpoint -q "$M3" && fusermount3 -u "$M3"
	mountpoint -q "$M2" && { fusermount3 -u "$M2" 2>/dev/null || umount "$M2"; }
	[ "$remove_dir" = 1 ] && rm -rf "$dir"
}
trap cleanup EXIT

# ---- the image and its raw twin
raw=$dir/disk.raw
if [ -z "$image" ]; then
	image=$dir/bench.vhdx
	echo "Generating a $size disk of random bytes: $raw"
	if command -v openssl > /dev/null; then
		# AES-CTR of zeros: incompressible and many times faster than /dev/urandom.
		head -c "$size" /dev/zero | openssl enc -aes-128-ctr -nosalt -pass pass:bench-fuse -out "$raw" 2>/dev/null ||
			die "openssl"
	else
		head -c "$size" /dev/urandom > "$raw" || die "head"
	fi
	"$VHDX" create --size "$(stat -c %s "$raw")" "$image" > /dev/null || die "vhdx create"
	"$VHDX" write --offset 0 "$image" < "$raw" || die "vhdx write"
else
	echo "Reading $image into $raw (vhdx convert)"
	"$VHDX" convert -O raw "$image" "$raw" || die "vhdx convert"
fi
disk_bytes=$(stat -c %s "$raw")
mib=$((disk_bytes >> 20))

# ---- the two mounts
"$VHDXFS" -f "$image" "$M1" 2> "$dir/vhdxfs.err" &
pid1=$!
"$VHDXFS" -f -o direct_io "$image" "$M3" 2> "$dir/vhdxfs-dio.err" &
pid3=$!
vhdimount "$image" "$M2" > "$dir/vhdimount.out" 2>&1 || die "vhdimount: $(cat "$dir/vhdimount.out")"
for ((i = 0; i < 100; i++)); do mountpoint -q "$M1" && mountpoint -q "$M2" && mountpoint -q "$M3" && break; sleep 0.1; done
mountpoint -q "$M1" || die "vhdxfs did not mount: $(cat "$dir/vhdxfs.err")"
mountpoint -q "$M3" || die "vhdxfs -o direct_io did not mount: $(cat "$dir/vhdxfs-dio.err")"
mountpoint -q "$M2" || die "vhdimount did not mount: $(cat "$dir/vhdimount.out")"
# vhdimount daemonises: its pid is the process whose command line names our mount point.
pid2=
for p in /proc/[0-9]*; do
	cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
	case "$cmd" in "vhdimount "*" $M2 ") pid2=${p#/proc/} ;; esac
done
F_raw=$raw F_vhdxfs=$M1/disk F_vhdimount=$M2/vhdi1 F_dio=$M3/disk
cmp -n $((4 << 20)) "$F_raw" "$F_vhdxfs" || die "vhdxfs reads other bytes than the raw file"
cmp -n $((4 << 20)) "$F_raw" "$F_dio" || die "vhdxfs -o direct_io reads other bytes than the raw file"
cmp -n $((4 << 20)) "$F_raw" "$F_vhdimount" || die "vhdimount reads other bytes than the raw file"
# (vhdxfs sets its window when the first request after INIT arrives: the cmp above.)
ra1=$(cat "/sys/class/bdi/$(mountpoint -d "$M1")/read_ahead_kb" 2>/dev/null || echo '?')
ra2=$(cat "/sys/class/bdi/$(mountpoint -d "$M2")/read_ahead_kb" 2>/dev/null || echo '?')

# cpu_ticks PID: user+system clock ticks of a process so far (0 if unknown)
cpu_ticks() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
	# Fields after the ")" of the command name: utime is the 12th, stime the 13th.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
pid_of() { case $1 in vhdxfs) echo "$pid1" ;; dio) echo "$pid3" ;; vhdimount) echo "${pid2:-}" ;; *) echo "" ;; esac; }

# prepare MODE FILE: the cache state before one measurement
prepare() {
	if [ "$1" = cold ]; then
		sync
		echo 3 > /proc/sys/vm/drop_caches
	else
		# The image files stay cached; the FUSE file's own pages go.
		cat "$image" "$raw" > /dev/null
		[ "$2" = "$raw" ] || dd if="$2" iflag=nocache count=0 status=none
	fi
}

# measure KIND WHO MODE: prints one figure (MB/s or IOPS); adds the daemon's
# CPU ticks to cpu_WHO_KIND and the bytes read to bytes_WHO_KIND.
measure() {
	local kind=$1 who=$2 mode=$3 f t0 t1 out bytes
	eval "f=\$F_$who"
	prepare "$mode" "$f"
	t0=$(cpu_ticks "$(pid_of "$who")")
	case $kind in
	seq|seqd)
		local flag=
		[ "$kind" = seqd ] && flag=iflag=direct
		out=$(LC_ALL=C dd if="$f" of=/dev/null bs=1M $flag 2>&1 | tail -n 1)
		# "N bytes (...) copied, S s, ..." -> MB/s from bytes and seconds
		echo "$out" | awk '{ printf "%.0f\n", $1 / $(NF-3) / 1e6 }'
		bytes=$disk_bytes
		;;
	rand|rand4)
		local jobs=1
		[ "$kind" = rand4 ] && jobs=4
		out=$(fio --name=r --filename="$f" --rw=randread --bs=4k --ioengine=psync --numjobs="$jobs" \
			--number_ios="$ios" --size="$disk_bytes" --randrepeat=1 --invalidate=0 --group_reporting \
			--output-format=terse --terse-version=3 2>/dev/null | tail -n 1)
		echo "$out" | awk -F';' '{ print $8 }'
		bytes=$((ios * jobs * 4096))
		;;
	esac
	t1=$(cpu_ticks "$(pid_of "$who")")
	eval "cpu_${who}_$kind=\$(( \${cpu_${who}_$kind:-0} + t1 - t0 ))"
	eval "bytes_${who}_$kind=\$(( \${bytes_${who}_$kind:-0} + bytes ))"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a >= b) }'; }

hz=$(getconf CLK_TCK)
READERS="raw vhdxfs dio vhdimount"
KINDS="seq seqd rand rand4"
echo
echo "Disk: $mib MiB; image: $image ($(stat -c %s "$image") bytes)"
echo "Machine: $(nproc) CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Readahead: vhdxfs mount ${ra1} KiB, vhdimount mount ${ra2} KiB; $runs runs per figure (median); $ios I/Os per random run and job"
met_all=1
for mode in $modes; do
	echo
	if [ "$mode" = cold ]; then
		echo "Caches: COLD - sync; echo 3 > /proc/sys/vm/drop_caches before every run"
	else
		echo "Caches: WARM for all - the image and raw files stay in the page cache; before every run"
		echo "        the cache of the file read through FUSE is dropped (fadvise DONTNEED)"
	fi
	for kind in $KINDS; do
		for who in $READERS; do
			eval "cpu_${who}_$kind=0 bytes_${who}_$kind=0"
			: > "$dir/$kind.$who"
		done
		for ((r = 0; r < runs; r++)); do
			# Rotate the order so that no reader always runs first or last.
			case $((r % 4)) in
			0) order="raw vhdxfs dio vhdimount" ;;
			1) order="vhdxfs dio vhdimount raw" ;;
			2) order="dio vhdimount raw vhdxfs" ;;
			3) order="vhdimount raw vhdxfs dio" ;;
			esac
			for who in $order; do
				measure "$kind" "$who" "$mode" >> "$dir/$kind.$who"
			done
		done
	done
	printf '\n%-11s %5s %8s %8s %8s %9s | %-17s %-17s | %-8s %-8s\n' "[$mode]" unit raw vhdxfs dio vhdimount \
		"vhdxfs/vhdimount" "vhdxfs/raw" "dio/vhdi" "dio/raw"
	for kind in $KINDS; do
		case $kind in
		seq) label="seq 1M" unit=MB/s ;;
		seqd) label="seq 1M dio" unit=MB/s ;;
		rand) label="rand 4K" unit=IOPS ;;
		rand4) label="rand 4K x4" unit=IOPS ;;
		esac
		for who in $READERS; do eval "m_$who=\$(median < \"\$dir/\$kind.\$who\")"; done
		q_vi=$(ratio "$m_vhdxfs" "$m_vhdimount")
		q_raw=$(ratio "$m_vhdxfs" "$m_raw")
		if ge "$q_vi" 3; then t_vi="met"; else t_vi="MISSED"; met_all=0; fi
		if ge "$q_raw" 0.6; then t_raw="met"; else t_raw="MISSED"; met_all=0; fi
		printf '%-11s %5s %8s %8s %8s %9s | %-17s %-17s | %-8s %-8s\n' "$label" "$unit" \
			"$m_raw" "$m_vhdxfs" "$m_dio" "$m_vhdimount" "$q_vi >=3 $t_vi" "$q_raw >=0.6 $t_raw" \
			"$(ratio "$m_dio" "$m_vhdimount")" "$(ratio "$m_dio" "$m_raw")"
	done
	echo "Daemon CPU (user+system) per GiB read, ms:"
	for kind in $KINDS; do
		line="  $kind:"
		for who in vhdxfs dio vhdimount; do
			eval "c=\$cpu_${who}_$kind b=\$bytes_${who}_$kind"
			line="$line $who=$(awk -v c="$c" -v b="$b" -v hz="$hz" \
				'BEGIN { if (b > 0) printf "%.0f", c * 1000 / hz / (b / 1073741824); else print "-" }')"
		done
		echo "$line"
	done
	[ -n "$pid2" ] || echo "  (vhdimount's pid was not found: its CPU shows as 0)"
	echo "Every run:"
	for kind in $KINDS; do
		for who in $READERS; do
			printf '  %-6s %-10s %s\n' "$kind" "$who" "$(tr '\n' ' ' < "$dir/$kind.$who")"
		done
	done
done
echo
[ "$met_all" = 1 ] && echo "All targets met." || echo "Some targets were MISSED (see the tables)."
echo "vhdxfs stats: $(grep -E '^(read_ahead_kb|reads|zero_copy_reads|copied_reads)=' "$M1/.vhdxfs/stats" | tr '\n' ' ')"
