#!/bin/bash
# test-fuse-perms.sh - who may use a vhdxfs mount.  Without allow_other no
# other user gets in at all (the kernel's FUSE rule); with allow_other,
# vhdxfs adds default_permissions so the kernel enforces the modes: another
# user may read the disk but neither write it (even on a rw mount) nor
# change the fault rules.  The other user is 'nobody' (uid 65534).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires setpriv cmp sha256sum
[ "$(id -u)" = 0 ] || skip "switching to another user needs root"

chmod 755 "$T" # the other user must reach the mount point
MNT="$T/mnt"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

"$VHDX" create --size 8M "$T/d.vhdx" >/dev/null || fail "create"
head -c 1M /dev/urandom > "$T/data"
"$VHDX" write --offset 1M "$T/d.vhdx" < "$T/data" || fail "write"
"$VHDX" convert -O raw "$T/d.vhdx" "$T/d.raw" || fail "convert"
sum0=$(sha256sum < "$T/d.vhdx")

# ---- no allow_other: the other user cannot even look ----
fuse_mount "$MNT" "$T/d.vhdx"
as_nobody stat "$MNT/disk" > /dev/null 2> "$T/err" && fail "nobody could stat the disk without allow_other"
grep -q "Permission denied" "$T/err" || fail "stat as nobody: $(cat "$T/err")"
cmp "$MNT/disk" "$T/d.raw" || fail "root reads other bytes"
grep -q 'default_permissions' /proc/mounts && awk -v m="$MNT" '$2 == m' /proc/mounts | grep -q default_permissions &&
	fail "default_permissions was added without allow_other"
fuse_unmount "$MNT"
pass "without allow_other another user gets EACCES"

# ---- allow_other, read-only ----
fuse_mount "$MNT" "$T/d.vhdx" -o allow_other
awk -v m="$MNT" '$2 == m' /proc/mounts | grep -q default_permissions ||
	fail "allow_other did not bring default_permissions: $(awk -v m="$MNT" '$2 == m' /proc/mounts)"
as_nobody cmp "$MNT/disk" "$T/d.raw" 2> "$T/err" || fail "nobody cannot read the disk with allow_other: $(cat "$T/err")"
as_nobody sh -c "echo 'fail read' > '$MNT/.vhdxfs/faults'" 2> "$T/err" && fail "nobody changed the fault rules"
grep -q "Permission denied" "$T/err" || fail "faults as nobody: $(cat "$T/err")"
as_nobody sh -c "cat '$MNT/.vhdxfs/stats'" > /dev/null || fail "nobody cannot read the stats"
fuse_unmount "$MNT"
pass "allow_other: others read the disk and stats, not the fault rules"

# ---- allow_other (with an explicit default_permissions too), read-write ----
fuse_mount "$MNT" "$T/d.vhdx" -o rw,allow_other,default_permissions
as_nobody dd if=/dev/zero of="$MNT/disk" bs=4096 count=1 conv=notrunc 2> "$T/err" &&
	fail "nobody wrote the disk of a rw mount"
grep -q "Permission denied" "$T/err" || fail "write as nobody: $(cat "$T/err")"
fuse_unmount "$MNT"
expect_eq "image after the refused write" "$(sha256sum < "$T/d.vhdx")" "$sum0"
pass "allow_other on a rw mount: another user cannot write, image unchanged"
