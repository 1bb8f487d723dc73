#!/bin/bash
# test-enospc.sh - images on a full file system (issue #15 item 3), on a
# 64 MiB tmpfs this test mounts (as root, or in a user namespace):
#  - `vhdx create --type fixed --size 100M` (VHDX and VHD) fails at once
#    with ENOSPC and a message saying what to do, and leaves no file (it
#    used to exit 0 with a sparse file whose later writes failed);
#  - a fixed image that fits and a dynamic one are allocated for real:
#    their allocated bytes are at least their size;
#  - a VHDX whose log is a hole (as older versions and other tools leave
#    it) on a full file system: `vhdx write` is refused before anything
#    changes (the file keeps its sha256), instead of failing at its first
#    log write after the LogGuid was set.
if [ "$(id -u)" != 0 ] && [ -z "${VHDX_IN_USERNS:-}" ] && unshare -Urm true 2>/dev/null; then
	exec env VHDX_IN_USERNS=1 unshare -Urm "$0" "$@"
fi
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires stat fallocate sha256sum
[ -x "$VHDX" ] || fail "$VHDX was not built"
FS="$T/fs"
mkdir -p "$FS"
mount -t tmpfs -o size=64m tmpfs "$FS" 2> "$T/mount.err" ||
	skip "cannot mount a 64 MiB tmpfs (root or user namespaces needed): $(cat "$T/mount.err")"
cleanup_fn "umount '$FS'"
MiB=1048576

allocated() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }

# ---- fixed images that do not fit: ENOSPC at create time, nothing left
for f in f.vhdx f.vhd; do
	expect_fail_msg "^vhdx create: $FS/$f: no room for the fixed image of [0-9]+ bytes: No space left on device; free some space or choose another folder \(a dynamic disk grows as it is written\)$" \
		"$VHDX" create --type fixed --size 100M "$FS/$f"
	[ -z "$(ls -A "$FS")" ] || fail "$f: a failed create left files: $(ls -A "$FS")"
done
pass "fixed images larger than the free space: ENOSPC at create time, no file left"

# ---- what fits is allocated for real
"$VHDX" create --type fixed --size 30M --block-size 1M "$FS/g.vhdx" || fail "create a fixed VHDX that fits"
[ "$(allocated "$FS/g.vhdx")" -ge "$(stat -c %s "$FS/g.vhdx")" ] ||
	fail "fixed VHDX: $(allocated "$FS/g.vhdx") bytes allocated for a $(stat -c %s "$FS/g.vhdx")-byte file"
"$VHDX" create --type fixed --size 8M "$FS/g.vhd" || fail "create a fixed VHD that fits"
[ "$(allocated "$FS/g.vhd")" -ge $((8 * MiB)) ] || fail "fixed VHD: only $(allocated "$FS/g.vhd") bytes allocated"
"$VHDX" create --size 64M --block-size 1M "$FS/d.vhdx" || fail "create a dynamic VHDX"
[ "$(allocated "$FS/d.vhdx")" -ge "$(stat -c %s "$FS/d.vhdx")" ] ||
	fail "dynamic VHDX: the headers, log, metadata and BAT are not all allocated"
# growing a fixed VHDX allocates its new blocks too: too large a grow fails with
# ENOSPC before the size changes (the session's header update may have happened)
size=$(stat -c %s "$FS/g.vhdx")
expect_fail_msg "No space left on device" "$VHDX" resize --size 60M "$FS/g.vhdx"
expect_eq "file size after a refused grow" "$(stat -c %s "$FS/g.vhdx")" "$size"
"$VHDX" info "$FS/g.vhdx" | grep -q "virtual_size: 30 MiB" || fail "the refused grow changed the size: $("$VHDX" info "$FS/g.vhdx")"
check_clean "$FS/g.vhdx" "after a refused grow"
"$VHDX" resize --size 34M "$FS/g.vhdx" > /dev/null || fail "a grow that fits"
[ "$(allocated "$FS/g.vhdx")" -ge "$(stat -c %s "$FS/g.vhdx")" ] || fail "the grown fixed VHDX is sparse"
# a fixed VHD too; its footer is its last 512 bytes, so a grow that does not
# fit fails before the file changes at all (it was sparse: ENOSPC came later)
size=$(stat -c %s "$FS/g.vhd")
sum=$(sha256 "$FS/g.vhd")
expect_fail_msg "No space left on device" "$VHDX" resize --size 60M "$FS/g.vhd"
expect_eq "fixed VHD after a refused grow" "$(stat -c %s "$FS/g.vhd") $(sha256 "$FS/g.vhd")" "$size $sum"
"$VHDX" resize --size 12M "$FS/g.vhd" > /dev/null || fail "a VHD grow that fits"
expect_eq "fixed VHD size after the grow" "$(stat -c %s "$FS/g.vhd")" $((12 * MiB + 512))
[ "$(allocated "$FS/g.vhd")" -ge $((12 * MiB + 512)) ] || fail "the grown fixed VHD is sparse: $(allocated "$FS/g.vhd") bytes allocated"
check_clean "$FS/g.vhd" "after the VHD grow"
rm -f "$FS/g.vhdx" "$FS/g.vhd"
pass "fixed images and the structures of dynamic ones are allocated at create time, grown fixed VHDX and VHD too"

# ---- a log that is a hole, on a full file system
img="$FS/d.vhdx"
head -c $MiB /dev/urandom > "$T/data"
head -c $MiB /dev/urandom | "$VHDX" write --offset 0 "$img" || fail "vhdx write"
fallocate -p -o $MiB -l $MiB "$img" || skip "this tmpfs cannot punch holes"
[ "$(allocated "$img")" -lt "$(stat -c %s "$img")" ] || fail "the punched log is still allocated"
fallocate -l 256M "$FS/filler" 2>/dev/null
[ -e "$FS/filler" ] || dd if=/dev/zero of="$FS/filler" bs=1M status=none 2>/dev/null
while dd if=/dev/zero of="$FS/fill.$RANDOM" bs=4k count=1 status=none 2>/dev/null; do :; done
before=$(sha256 "$img")
expect_fail_msg "^vhdx write: $img: the log must have its space before the image is changed: $img: allocating the log \(1048576 bytes at 0x100000\): No space left on device$" \
	"$VHDX" write --offset 8M "$img" < "$T/data"
expect_eq "sha256 after the refused write" "$(sha256 "$img")" "$before"
rm -f "$FS/filler" "$FS"/fill.*
"$VHDX" write --offset 8M "$img" < "$T/data" || fail "vhdx write with room again"
check_clean "$img" "the image written after space was freed"
pass "a sparse log on a full file system: the writable open is refused before anything changes"
