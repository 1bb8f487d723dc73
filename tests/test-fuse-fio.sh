#!/bin/bash
# test-fuse-fio.sh - fio through vhdxfs -o rw: 4 jobs of random reads and
# writes (4 KiB to 64 KiB) with crc32c verification, each job in its own
# 32 MiB region of MNT/disk.
#
# On a dynamic VHDX (1 MiB blocks, so thousands of blocks get allocated
# while other jobs read and write): a first workload (O_DIRECT) writes and
# verifies; after an unmount and a new mount, `fio --verify_only` checks
# that what was written is what the image holds; a second workload with
# another seed overwrites the now allocated blocks.  After unmounting,
# `vhdx convert`, `qemu-img convert` and a read-only mount give the same
# bytes, `fio --verify_only` of the second workload passes on the raw file
# written by `vhdx convert`, and `qemu-img check` is clean.
# (verify_only replays a workload's offsets and seeds; with --loops=2 it
# expects the first loop's seeds even on a plain file, so loops stay at 1.)
#
# On a chain leaf (a checkpoint over a base holding random data): a buffered
# workload, verify_only after a remount, the base unchanged, the parent's
# bytes still showing outside the jobs' regions, `vhdx convert` and the
# mounted disk agreeing.
#
# fio's own verification is shown to bite: --verify_only against an image
# that was never written must fail.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires fio qemu-img
MiB=1048576
MNT="$T/mnt"
mkdir -p "$MNT"

# run_fio NAME [FIO-OPTIONS...]: 4 jobs, job k in [k*64M, k*64M+32M) of
# MNT/disk; fails on a non-zero exit or any verify message.
run_fio() {
	local name=$1
	shift
	# in $T: fio writes its *-verify.state files into the current folder
	# (the build folder under make check, which distcheck requires clean)
	(cd "$T" && fio --name="$name" --filename="$MNT/disk" --rw=randrw --bsrange=4k-64k --ioengine=psync \
		--numjobs=4 --size=32M --offset_increment=64M --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --runtime=60 --group_reporting "$@") > "$T/fio.out" 2>&1
	local rc=$?
	[ "$rc" = 0 ] || return "$rc"
	! grep -Eq "verify:|err= *[1-9]" "$T/fio.out"
}
fio_summary() { grep -E "^ *(READ|WRITE):" "$T/fio.out" | sed 's/^ */    /'; }

# ================= a dynamic VHDX
img="$T/dyn.vhdx"
"$VHDX" create --size 256M --block-size 1M "$img" > /dev/null || fail "vhdx create"

# The check must be able to fail: verify_only finds nothing on a blank disk.
fuse_mount "$MNT" "$img" -o rw
run_fio w1 --direct=1 --verify_only && fail "fio --verify_only passed on a disk never written"
grep -q "verify:" "$T/fio.out" || fail "fio --verify_only on a blank disk failed without a verify error: $(tail -5 "$T/fio.out")"
pass "fio --verify_only on a blank disk reports verification errors (the check can fail)"

run_fio w1 --direct=1 || fail "fio workload 1 (O_DIRECT) on the dynamic VHDX: $(grep -E 'verify|err' "$T/fio.out" | head -5)"
fio_summary
fuse_unmount "$MNT"
pass "fio workload 1: 4 jobs of O_DIRECT random reads/writes, verified, no error"

fuse_mount "$MNT" "$img" -o rw
run_fio w1 --direct=1 --verify_only || fail "fio --verify_only after a remount: $(grep -E 'verify|err' "$T/fio.out" | head -5)"
writes=$(sed -n 's/^writes=//p' "$MNT/.vhdxfs/stats")
expect_eq "writes during verify_only" "$writes" 0
run_fio w2 --direct=1 --randseed=4242 || fail "fio workload 2 (overwrites): $(grep -E 'verify|err' "$T/fio.out" | head -5)"
fio_summary
fuse_unmount "$MNT"
pass "after a remount the image holds workload 1; workload 2 overwrote allocated blocks, verified"

"$VHDX" convert -O raw "$img" "$T/vhdx.raw" || fail "vhdx convert after fio"
qemu-img convert -q -f vhdx -O raw "$img" "$T/qemu.raw" || fail "qemu-img convert after fio"
cmp "$T/vhdx.raw" "$T/qemu.raw" || fail "vhdx convert and qemu-img convert read different disks"
fuse_mount "$MNT" "$img"
expect_eq "sha256 of the read-only mounted disk" "$(sha256 "$MNT/disk")" "$(sha256 "$T/vhdx.raw")"
fuse_unmount "$MNT"
qemu-img check -f vhdx "$img" > "$T/check" 2>&1 || fail "qemu-img check: $(cat "$T/check")"
# The converted raw file holds workload 2 as fio wrote it.
(cd "$T" && fio --name=w2 --filename="$T/vhdx.raw" --rw=randrw --bsrange=4k-64k --ioengine=psync --numjobs=4 --size=32M \
	--offset_increment=64M --verify=crc32c --verify_fatal=1 --randseed=4242 --verify_only) \
	> "$T/fio.out" 2>&1 || fail "fio --verify_only on the output of vhdx convert: $(grep -E 'verify|err' "$T/fio.out" | head -5)"
rm -f "$T/vhdx.raw" "$T/qemu.raw"
pass "vhdx convert = qemu-img convert = the mounted disk, fio verifies the converted raw file, qemu-img check is clean"

# ================= the leaf of a chain
base="$T/base.vhdx"
"$VHDX" create --size 256M --block-size 2M "$base" > /dev/null || fail "vhdx create base"
head -c $((24 * MiB)) /dev/urandom > "$T/fill"
"$VHDX" write --offset $((16 * MiB)) "$base" < "$T/fill" || fail "vhdx write into the base"
(cd "$T" && "$VHDX" create --parent base.vhdx leaf.avhdx > /dev/null) || fail "vhdx create --parent"
base_sha=$(sha256 "$base")

fuse_mount "$MNT" "$T/leaf.avhdx" -o rw
run_fio c1 --direct=0 --end_fsync=1 || fail "fio (buffered) on the chain leaf: $(grep -E 'verify|err' "$T/fio.out" | head -5)"
fio_summary
fuse_unmount "$MNT"
fuse_mount "$MNT" "$T/leaf.avhdx" -o rw
run_fio c1 --direct=1 --verify_only || fail "fio --verify_only of the chain after a remount: $(grep -E 'verify|err' "$T/fio.out" | head -5)"
disk_sha=$(sha256 "$MNT/disk")
fuse_unmount "$MNT"
expect_eq "base sha256 after the rw session on its child" "$(sha256 "$base")" "$base_sha"
"$VHDX" convert -O raw "$T/leaf.avhdx" "$T/chain.raw" || fail "vhdx convert of the chain"
expect_eq "sha256 of vhdx convert of the chain" "$(sha256 "$T/chain.raw")" "$disk_sha"
# [32M, 40M) lies between the regions of jobs 0 and 1: the base's data shows through.
cmp <(dd if="$T/chain.raw" bs=1M skip=32 count=8 status=none) \
	<(dd if="$T/fill" bs=1M skip=16 count=8 status=none) || fail "the base's data between the jobs' regions changed"
pass "chain leaf: buffered fio verified, verify_only after a remount, base unchanged and visible outside the written regions"
