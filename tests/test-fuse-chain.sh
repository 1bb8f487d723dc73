#!/bin/bash
# test-fuse-chain.sh - vhdxfs on a three-layer chain (a qemu-img base, two
# checkpoints made with `vhdx create --parent`): the composed disk, per-layer
# read counters, the chain options (parent-dir, path-map, parent, no-parent,
# max-depth, ignore-id-mismatch) after the parents were moved away, and a rw
# mount that writes only the leaf.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires qemu-img qemu-io
MiB=1048576
MNT="$T/mnt"
ORIG="$T/orig"
MOVED="$T/moved"
LEAF="$T/leaf"
mkdir -p "$MNT" "$ORIG" "$MOVED" "$LEAF"

# base: 0x11 in [0, 8M), made by qemu; c1 adds 1 MiB of random data at 1M;
# c2 adds 4 KiB at byte 3000 (partial sectors at both ends).
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$ORIG/base.vhdx" 64M || fail "qemu-img create"
qemu-io -f vhdx -c "write -q -P 0x11 0 8M" "$ORIG/base.vhdx" > /dev/null || fail "qemu-io"
exp="$T/expected.raw"
qemu-img convert -q -f vhdx -O raw "$ORIG/base.vhdx" "$exp" || fail "qemu-img convert"
head -c $MiB /dev/urandom > "$T/d1"
head -c 4096 /dev/urandom > "$T/d2"
(cd "$ORIG" && "$VHDX" create --parent base.vhdx c1.avhdx > /dev/null) || fail "vhdx create c1"
"$VHDX" write --offset $MiB "$ORIG/c1.avhdx" < "$T/d1" || fail "vhdx write c1"
(cd "$ORIG" && "$VHDX" create --parent c1.avhdx c2.avhdx > /dev/null) || fail "vhdx create c2"
"$VHDX" write --offset 3000 "$ORIG/c2.avhdx" < "$T/d2" || fail "vhdx write c2"
dd if="$T/d1" of="$exp" bs=64K seek=16 conv=notrunc status=none
dd if="$T/d2" of="$exp" bs=4096 oflag=seek_bytes seek=3000 conv=notrunc status=none
exp_sha=$(sha256 "$exp")
stat_val() { sed -n "s/^$1=//p" "$MNT/.vhdxfs/stats"; }

# In place: the whole chain, and reads counted per layer.
fuse_mount "$MNT" "$ORIG/c2.avhdx"
expect_eq "sha256 of the 3-layer chain" "$(sha256 "$MNT/disk")" "$exp_sha"
expect_eq "layers in stats" "$(stat_val layers)" 3
expect_eq "layer2_path" "$(basename "$(stat_val layer2_path)")" base.vhdx
for l in 0 1 2; do eval "b$l=\$(stat_val layer${l}_read_bytes)"; done
dd if="$MNT/disk" of=/dev/null bs=1M skip=4 count=1 iflag=direct status=none || fail "read"
dd if="$MNT/disk" of=/dev/null bs=1M skip=1 count=1 iflag=direct status=none || fail "read"
expect_eq "base bytes of a read of [4M,5M)" $(($(stat_val layer2_read_bytes) - b2)) $MiB
expect_eq "c1 bytes of a read of [1M,2M)" $(($(stat_val layer1_read_bytes) - b1)) $MiB
expect_eq "c2 bytes of those reads" $(($(stat_val layer0_read_bytes) - b0)) 0
fuse_unmount "$MNT"
pass "3-layer chain reads as expected; per-layer counters split the reads"

# Parents moved away: the leaf's locators no longer lead to them.
mv "$ORIG/base.vhdx" "$ORIG/c1.avhdx" "$MOVED/"
mv "$ORIG/c2.avhdx" "$LEAF/"
sums=$(cd "$MOVED" && sha256sum base.vhdx c1.avhdx)
expect_fail_msg "c1\.avhdx.*not found" "$VHDXFS" "$LEAF/c2.avhdx" "$MNT"
fuse_is_mounted "$MNT" && fail "mounted although the parent is missing"
for opt in "parent-dir=$MOVED" "path-map=$ORIG=$MOVED" "parent=$MOVED/c1.avhdx"; do
	fuse_mount "$MNT" "$LEAF/c2.avhdx" -o "$opt"
	expect_eq "sha256 with -o $opt" "$(sha256 "$MNT/disk")" "$exp_sha"
	fuse_unmount "$MNT"
done
pass "-o parent-dir, path-map and parent find the moved parents"

# no-parent: the leaf alone; only the sectors it holds, [2560, 7168), are not zero.
truncate -s $((64 * MiB)) "$T/alone.raw"
dd if="$exp" of="$T/alone.raw" bs=512 skip=5 seek=5 count=9 conv=notrunc status=none
fuse_mount "$MNT" "$LEAF/c2.avhdx" -o no-parent
expect_eq "layers with no-parent" "$(stat_val layers)" 1
expect_eq "sha256 with -o no-parent" "$(sha256 "$MNT/disk")" "$(sha256 "$T/alone.raw")"
fuse_unmount "$MNT"
expect_fail_msg "deeper than the limit of 2" "$VHDXFS" -o "parent-dir=$MOVED,max-depth=2" "$LEAF/c2.avhdx" "$MNT"
fuse_is_mounted "$MNT" && fail "mounted a 3-layer chain with max-depth=2"
pass "-o no-parent reads the leaf alone; max-depth=2 refuses 3 layers"

# A stranger with the parent's name: refused unless ignore-id-mismatch.
mkdir -p "$T/other"
cp "$MOVED/base.vhdx" "$T/other/"
(cd "$T/other" && "$VHDX" create --parent base.vhdx c1.avhdx > /dev/null) || fail "vhdx create stranger"
expect_fail_msg "wrong identity" "$VHDXFS" -o "parent-dir=$T/other" "$LEAF/c2.avhdx" "$MNT"
fuse_is_mounted "$MNT" && fail "mounted over a parent with the wrong identity"
fuse_mount "$MNT" "$LEAF/c2.avhdx" -o "parent-dir=$T/other,ignore-id-mismatch"
expect_eq "layers with ignore-id-mismatch" "$(stat_val layers)" 3
fuse_unmount "$MNT"
pass "a parent with another identity is refused, and accepted with -o ignore-id-mismatch"

# rw: only the leaf changes.
head -c $((3 * MiB)) /dev/urandom > "$T/d3"
fuse_mount "$MNT" "$LEAF/c2.avhdx" -o "rw,parent-dir=$MOVED"
if ! dd if="$T/d3" of="$MNT/disk" bs=64K seek=40 conv=notrunc,fsync status=none 2> "$T/err"; then
	grep -q "Operation not supported" "$T/err" &&
		skip "the library cannot write this chain yet (ENOTSUP): $(cat "$T/err")"
	fail "write to the chain: $(cat "$T/err")"
fi
dd if="$T/d3" of="$exp" bs=64K seek=40 conv=notrunc status=none
expect_eq "sha256 while mounted rw" "$(sha256 "$MNT/disk")" "$(sha256 "$exp")"
fuse_unmount "$MNT"
expect_eq "parents after a rw mount" "$(cd "$MOVED" && sha256sum base.vhdx c1.avhdx)" "$sums"
"$VHDX" convert -O raw --parent-dir "$MOVED" "$LEAF/c2.avhdx" "$T/got.raw" || fail "vhdx convert"
cmp "$T/got.raw" "$exp" || fail "the chain does not hold the write after unmount"
pass "rw mount of the chain wrote the leaf only"
