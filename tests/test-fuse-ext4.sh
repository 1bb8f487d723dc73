#!/bin/bash
# test-fuse-ext4.sh - a real file system written through vhdxfs, end to end.
#
# 1. A chain: a 256 MiB dynamic base made by `vhdx create`, a checkpoint made
#    by `vhdx create --parent`.  The checkpoint is mounted -o rw, a loop
#    device is attached over MNT/disk, mkfs.ext4 formats it and files of
#    awkward sizes (0, 1, 4095, 4096, 1 MiB+17, 20 MiB of random bytes, 300
#    small files in nested folders) are copied in, one is rewritten in the
#    middle and one deleted.  Everything is synced and unmounted.  The chain
#    is then mounted read-only, loop-attached read-only, e2fsck -fn must find
#    the file system clean, mounted ro,noload, and every file must have the
#    sha256 of its source.  Afterwards: `vhdx info` accepts both layers, no
#    header of either holds a LogGuid, the base is byte-identical to what it
#    was before the rw session (only the leaf is written), and the disk read
#    by `vhdx convert` (no FUSE) is a clean ext4 too.
# 2. The same on a base VHDX without a child, smaller, then `qemu-img check`
#    must find it clean and the file system must read back through qemu-img
#    convert (an independent VHDX reader) with every hash intact.
# Mounts and loop devices are released by the cleanups, also on failure.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires_loop
requires mkfs.ext4 e2fsck qemu-img mountpoint
MiB=1048576
MNT="$T/mnt"
FS="$T/fs"
SRC="$T/src"
mkdir -p "$MNT" "$FS" "$SRC"

# ---- the files: random contents, hashed at the source ----
rnd() { head -c "$2" /dev/urandom > "$1" || fail "cannot write $1"; }
rnd "$SRC/empty" 0
rnd "$SRC/one" 1
rnd "$SRC/f4095" 4095
rnd "$SRC/f4096" 4096
rnd "$SRC/f1M17" $((MiB + 17))
rnd "$SRC/f20M" $((20 * MiB))
RANDOM=5 # reproducible sizes
for a in 0 1 2 3 4; do
	for b in 0 1 2 3 4; do
		mkdir -p "$SRC/d$a/e$b"
		for c in $(seq 0 11); do rnd "$SRC/d$a/e$b/f$c" $(((RANDOM * 7) % 20000)); done
	done
done
n_src=$(find "$SRC" -type f | wc -l)
expect_eq "number of source files" "$n_src" 306

# manifest DIR: "sha256  ./path" of every file under DIR, sorted by path
manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# write_files DEV: mkfs.ext4 on DEV, mount it on $FS, copy $SRC in, rewrite
# 100000 bytes in the middle of f20M and delete d0/e0/f0 in both places,
# sync and unmount.
write_files() {
	mkfs.ext4 -q -F "$1" 2> "$T/mkfs.err" || fail "mkfs.ext4 $1: $(cat "$T/mkfs.err")"
	fs_mount "$1" "$FS" -t ext4 || fail "mount $1: $(cat "$T/mount.err")"
	cp -a "$SRC/." "$FS/" || fail "copying the files into the ext4 file system"
	rnd "$T/patch" 100000
	for d in "$SRC" "$FS"; do
		dd if="$T/patch" of="$d/f20M" bs=100000 oflag=seek_bytes seek=$((7 * MiB + 333)) conv=notrunc \
			status=none || fail "rewrite in $d/f20M"
		rm "$d/d0/e0/f0" || fail "rm in $d"
	done
	sync || fail "sync"
	umount "$FS" || fail "umount $FS"
}

# verify_files DEV: e2fsck -fn finds DEV clean, and mounted ro,noload it holds
# exactly the files of $SRC with their hashes.
verify_files() {
	e2fsck -fn "$1" > "$T/fsck" 2>&1 || fail "e2fsck -fn $1 exited $?: $(cat "$T/fsck")"
	fs_mount "$1" "$FS" -t ext4 -o ro,noload || fail "mount -o ro,noload $1: $(cat "$T/mount.err")"
	manifest "$FS" > "$T/got.sums"
	cmp -s "$T/got.sums" "$T/want.sums" || fail "files differ from their sources: $(diff "$T/want.sums" "$T/got.sums" | head -5)"
	umount "$FS" || fail "umount $FS"
}

# log_guids IMAGE: the LogGuid of every header of every layer, one a line
log_guids() { "$VHDX" info "$1" | sed -n 's/^ *log_guid: //p'; }
ZERO_GUID=00000000-0000-0000-0000-000000000000

# ================= 1. a chain: base + checkpoint, the checkpoint written
base="$T/base.vhdx"
child="$T/child.avhdx"
"$VHDX" create --size 256M "$base" > /dev/null || fail "vhdx create base"
(cd "$T" && "$VHDX" create --parent base.vhdx child.avhdx > /dev/null) || fail "vhdx create --parent"
base_sha=$(sha256 "$base")

fuse_mount "$MNT" "$child" -o rw
loop_attach dev "$MNT/disk" || skip "cannot attach a loop device here: $(cat "$T/losetup.err")"
write_files "$dev"
loop_detach "$dev" "$MNT/disk"
fuse_unmount "$MNT"
# Sources after the rewrite and the deletion.
manifest "$SRC" > "$T/want.sums"
expect_eq "files in the manifest" "$(wc -l < "$T/want.sums")" $((n_src - 1))
pass "chain mounted rw: mkfs.ext4 and $((n_src - 1)) files written through a loop device, all unmounted"

fuse_mount "$MNT" "$child"
loop_attach dev "$MNT/disk" -r || fail "read-only loop device: $(cat "$T/losetup.err")"
verify_files "$dev"
loop_detach "$dev" "$MNT/disk"
fuse_unmount "$MNT"
pass "chain remounted read-only: e2fsck clean, every file's sha256 intact"

for img in "$child" "$base"; do
	"$VHDX" info "$img" > /dev/null 2> "$T/err" || fail "vhdx info $(basename "$img") exited $?: $(cat "$T/err")"
done
guids=$(log_guids "$child")
expect_eq "headers listed by vhdx info (2 layers x 2)" "$(echo "$guids" | wc -l)" 4
expect_eq "LogGuids of both layers" "$(echo "$guids" | sort -u)" "$ZERO_GUID"
expect_eq "base sha256 after the rw session" "$(sha256 "$base")" "$base_sha"
"$VHDX" convert -O raw "$child" "$T/chain.raw" || fail "vhdx convert of the chain"
e2fsck -fn "$T/chain.raw" > "$T/fsck" 2>&1 || fail "e2fsck on the disk read by vhdx convert: $(cat "$T/fsck")"
rm -f "$T/chain.raw"
pass "vhdx info accepts both layers, every LogGuid is zero, the base is unchanged, vhdx convert reads a clean ext4"

# ================= 2. a base without a child, mounted rw directly
# Smaller: d1-d4 go, f20M becomes 8 MiB, and d0/e0/f0 (deleted by the first
# run) comes back for write_files to delete again: 6 + 59 files in the end.
rm -rf "${SRC:?}/d"[1-4]
rnd "$SRC/f20M" $((8 * MiB))
rnd "$SRC/d0/e0/f0" 5000
single="$T/single.vhdx"
"$VHDX" create --size 64M --block-size 1M "$single" > /dev/null || fail "vhdx create single"
fuse_mount "$MNT" "$single" -o rw
loop_attach dev "$MNT/disk" || fail "loop device: $(cat "$T/losetup.err")"
write_files "$dev"
manifest "$SRC" > "$T/want.sums"
expect_eq "files in the second manifest" "$(wc -l < "$T/want.sums")" 65
loop_detach "$dev" "$MNT/disk"
fuse_unmount "$MNT"
qemu-img check -f vhdx "$single" > "$T/check" 2>&1 || fail "qemu-img check: $(cat "$T/check")"
expect_eq "LogGuids of the single image" "$(log_guids "$single" | sort -u)" "$ZERO_GUID"
qemu-img convert -q -f vhdx -O raw "$single" "$T/single.raw" || fail "qemu-img convert"
loop_attach dev "$T/single.raw" -r || fail "loop device over the qemu raw: $(cat "$T/losetup.err")"
verify_files "$dev"
loop_detach "$dev" "$T/single.raw"
pass "base mounted rw without a child: qemu-img check clean, qemu-img reads the ext4 with every hash intact"
