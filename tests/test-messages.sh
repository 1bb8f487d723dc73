#!/bin/bash
# test-messages.sh - messages that say what to do (issue #17 items 6, 7, 9,
# 10 and 8): the exact text and exit status of
#   6. vhdx create on an existing file (names --force), and a refused
#      create --force that must leave the existing file alone;
#   7. vhdx create --size 1000 / 65T / a VHD of 1000 bytes: the allowed
#      range and the unit rule;
#   9. a VHD with a bad footer checksum: the salvage hint, and --salvage
#      reads it;
#  10. vhdxfs IMAGE nosuchdir: exit 1 as its man page says for a failed
#      mount; vhdx --help and vhdxfs --help send readers to libvhdx(3) for
#      the fault rules, as the man pages do;
#   8. a refused rule written to MNT/.vhdxfs/faults: the reason on the first
#      line of the next read of faults, until a write is accepted (FUSE).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 cmp
cd "$T"

# ---- 6
"$VHDX" create --size 8M a.vhdx > /dev/null || fail "create a.vhdx"
cp a.vhdx a.copy
"$VHDX" create --size 8M a.vhdx > out 2> err
expect_eq "create over an existing file: exit" "$?" 1
expect_eq "create over an existing file: message" "$(cat err)" "vhdx create: a.vhdx: the file exists (add --force to replace it)"
"$VHDX" create --force --size 1000 a.vhdx > out 2> err
expect_eq "create --force with a bad size: exit" "$?" 1
cmp -s a.vhdx a.copy || fail "create --force with a bad size changed or deleted the existing file: $(ls -la a.vhdx 2>&1)"
pass "6: an existing file: --force named; a refused --force create leaves the file as it was"

# ---- 7
unit="(--size takes bytes, or a number with K, M, G or T: powers of 1024, 1M = 1048576)"
"$VHDX" create --size 1000 b.vhdx 2> err
expect_eq "create --size 1000: exit" "$?" 1
expect_eq "create --size 1000" "$(cat err)" "vhdx create: b.vhdx: a VHDX's virtual size must be a multiple of its 512-byte logical sector, from 512 bytes to 64 TiB (70368744177664 bytes); 1000 bytes asked for $unit"
"$VHDX" create --size 65T b.vhdx 2> err
expect_eq "create --size 65T: exit" "$?" 1
expect_eq "create --size 65T" "$(cat err)" "vhdx create: b.vhdx: a VHDX's virtual size must be a multiple of its 512-byte logical sector, from 512 bytes to 64 TiB (70368744177664 bytes); 71468255805440 bytes asked for $unit"
"$VHDX" create --size 1000 b.vhd 2> err
expect_eq "create --size 1000 (VHD): exit" "$?" 1
expect_eq "create --size 1000 (VHD)" "$(cat err)" "vhdx create: b.vhd: a VHD's virtual size must be a non-zero multiple of 512 bytes, not 1000 (from 512 bytes to 2040 GiB, 2190433320960 bytes, for a dynamic one) $unit"
[ -e b.vhdx ] || [ -e b.vhd ] && fail "a refused create left a file"
pass "7: a bad --size says the range and the unit rule"

# ---- 9: a VHD whose footer (both copies) has a bad checksum
"$VHDX" create --size 8M c.vhd > /dev/null || fail "create c.vhd"
python3 - c.vhd <<'EOF' || fail "damaging the footer"
import os, sys
f = open(sys.argv[1], "r+b")
size = os.fstat(f.fileno()).st_size
for base in (0, size - 512):       # leading copy and trailing footer
    f.seek(base + 64); c = f.read(1) # the checksum field (offset 64) made wrong
    f.seek(base + 64); f.write(bytes([c[0] ^ 0x5a]))
EOF
"$VHDX" info c.vhd > /dev/null 2> err
expect_eq "info on a bad checksum: exit" "$?" 1
grep -qF "checksum mismatch" err || fail "no checksum message: $(cat err)"
grep -qF "(to read it anyway, open it with salvage: vhdx --salvage, vhdxfs -o salvage)" err || fail "no salvage hint: $(cat err)"
"$VHDX" info --salvage c.vhd > out 2> err || fail "--salvage does not read it: $(cat err)"
pass "9: a VHD checksum mismatch says how to read it anyway (--salvage / -o salvage)"

# ---- 10
grep -q "see libvhdx(3), 'Fault injection'" <("$VHDX" --help) || fail "vhdx --help does not send readers to libvhdx(3)"
"$VHDX" --help | grep -q "libvhdx\.h" && fail "vhdx --help still sends readers to libvhdx.h"
grep -q 'Fault injection' "$top_srcdir/man/vhdx.1" || fail "vhdx.1 names another section"
grep -q '^\.SS Fault injection' "$top_srcdir/man/libvhdx.3" || fail "libvhdx.3 has no 'Fault injection' section"
if [ -x "$VHDXFS" ]; then
	"$VHDXFS" --help 2>&1 | grep -q "libvhdx\.h" && fail "vhdxfs --help still sends readers to libvhdx.h"
	"$VHDXFS" a.vhdx "$T/nosuchdir" > out 2> err
	expect_eq "vhdxfs IMAGE nosuchdir: exit" "$?" 1
	expect_eq "vhdxfs IMAGE nosuchdir" "$(cat err)" "vhdxfs: cannot mount a.vhdx on $T/nosuchdir: No such file or directory (the mount point must be an existing folder)"
	grep -q "1 when the image cannot be opened, the mount\$" "$top_srcdir/fuse/vhdxfs.1" || fail "vhdxfs.1 exit status"
	"$VHDXFS" > /dev/null 2>&1
	expect_eq "vhdxfs without arguments: exit" "$?" 2
fi
pass "10: vhdxfs exits 1 for a mount point that is not there, as its man page says; one place for the fault rules"

# ---- 8: a refused rule, readable right after the failed write (FUSE)
[ -x "$VHDXFS" ] && [ -c /dev/fuse ] && command -v fusermount3 > /dev/null || skip "no FUSE here for item 8 (items 6, 7, 9, 10 passed)"
fuse_mount "$T/mnt" a.vhdx
echo "op=read colour=blue" > "$T/mnt/.vhdxfs/faults" 2> err && fail "a bad rule was accepted"
grep -q "Invalid argument" err || fail "a bad rule: $(cat err)"
head -1 "$T/mnt/.vhdxfs/faults" > first
grep -qx "# last write refused (EINVAL, nothing changed): faults line 1: .*colour.*" first ||
	fail "the next read of faults does not start with the reason: $(cat "$T/mnt/.vhdxfs/faults")"
grep -q "^faults_last_error=faults line 1: .*colour" "$T/mnt/.vhdxfs/stats" || fail "stats faults_last_error"
echo "op=read voff=1M+4K err=EIO" > "$T/mnt/.vhdxfs/faults" || fail "a good rule refused"
expect_eq "faults after an accepted write" "$(cat "$T/mnt/.vhdxfs/faults")" "op=read voff=1M+4K err=EIO  # rule 1: hits=0 matched=0"
grep -q "^faults_last_error=faults line 1: .*colour" "$T/mnt/.vhdxfs/stats" || fail "stats lost faults_last_error after a good write"
"$VHDXFS" --help | grep -q "faults_last_error" || fail "vhdxfs --help does not list faults_last_error"
grep -q "last write refused" "$top_srcdir/fuse/vhdxfs.1" || fail "vhdxfs.1 does not document the refused-write line"
fuse_unmount "$T/mnt"
pass "8: a refused rule's reason is the first line of the next read of .vhdxfs/faults, documented"
