#!/bin/bash
# test-fuse-ntfs.sh - the whole path a user takes: mount ws2022-ntfs-5M.vhdx
# (written by Windows Server 2022) with vhdxfs, attach a read-only loop
# device over the NTFS volume at offset 65536 of MNT/disk, mount it with
# ntfs-3g read-only, and read Hello.txt.txt (11 bytes).  Everything is
# unmounted and detached in the cleanups, also on failure.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_conformance
requires_fuse
requires ntfs-3g losetup
[ "$(id -u)" = 0 ] || skip "loop devices need root"
[ -e /dev/loop-control ] || skip "/dev/loop-control is missing (no loop devices here)"

MNT="$T/mnt"
NTFS="$T/ntfs"
mkdir -p "$MNT" "$NTFS"
img=$(conformance_image ws2022-ntfs-5M.vhdx) || exit 1
img_sha=$(manifest_field ws2022-ntfs-5M.vhdx.xz file_sha256)

fuse_mount "$MNT" "$img"
loop=$(losetup -r -o 65536 --show -f "$MNT/disk" 2> "$T/err") ||
	skip "cannot attach a loop device here: $(cat "$T/err")"
cleanup_fn "losetup -d '$loop' 2>/dev/null"
pass "loop device $loop over $MNT/disk at offset 65536"

ntfs-3g -o ro "$loop" "$NTFS" 2> "$T/err" || fail "ntfs-3g cannot mount $loop: $(cat "$T/err")"
cleanup_fn "umount '$NTFS' 2>/dev/null || fusermount3 -u -z '$NTFS' 2>/dev/null"

f=$(find "$NTFS" -name Hello.txt.txt | head -n 1)
[ -n "$f" ] || fail "Hello.txt.txt not found; the volume holds: $(find "$NTFS" -maxdepth 2 | head -20)"
expect_eq "size of Hello.txt.txt (stat)" "$(stat -c %s "$f")" 11
expect_eq "bytes read from Hello.txt.txt" "$(wc -c < "$f")" 11
echo "Hello.txt.txt: '$(cat "$f")'"
pass "found ${f#"$NTFS"} of 11 bytes through vhdxfs -> loop -> ntfs-3g"

umount "$NTFS" || fail "umount $NTFS"
losetup -d "$loop" || fail "losetup -d $loop"
# The loop device lets go of MNT/disk asynchronously: wait for it before unmounting.
for ((i = 0; i < 50; i++)); do losetup -j "$MNT/disk" 2>/dev/null | grep -q . || break; sleep 0.1; done
fuse_unmount "$MNT"
expect_eq "image sha256 after the mount" "$(sha256 "$img")" "$img_sha"
pass "unmounted ntfs-3g, detached the loop, unmounted vhdxfs; the image is unchanged"
