#!/bin/bash
# test-hostile-log.sh - hostile VHDX log fields through the vhdx command
# (issue #15 items 6 and 7); the images come from tests/mkvhdx-log.py,
# written from the spec:
#  - a clean header whose LogOffset is 0xfff0000000100000 (valid CRC):
#    `vhdx write` into a new block (which used to set the LogGuid and then
#    fail writing the log) is refused before anything changes (the file keeps its
#    sha256), and info, map, convert and check still read the image;
#  - a log entry whose LastFileOffset is 2^50 (valid CRC): `vhdx replay`
#    refuses with the entry's sequence number and log offset, and the file
#    keeps its size and bytes; an entry whose LastFileOffset is within the
#    bound still grows the file as the spec says.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires python3 cmp stat
[ -x "$VHDX" ] || fail "$VHDX was not built"
GEN="$top_srcdir/tests/mkvhdx-log.py"
MiB=1048576

# ---- item 6: a log a writable open could not use
img="$T/where.vhdx"
"$VHDX" create --size 64M --block-size 1M "$img" || fail "vhdx create"
head -c $MiB /dev/urandom > "$T/data"
"$VHDX" write --offset 0 "$img" < "$T/data" || fail "vhdx write"
python3 "$GEN" "$img" --log-offset 0xfff0000000100000 || fail "mkvhdx-log.py --log-offset"
before=$(sha256 "$img")
expect_fail_msg "^vhdx write: $img: header at 0x20000: the log at 0xfff0000000100000 \(\+0x100000 bytes\) lies past the end of the file \(0x[0-9a-f]+ bytes\): writes could not be journaled; the image can only be opened read-only$" \
	"$VHDX" write --offset 8M "$img" < "$T/data"
expect_eq "sha256 after the refused write" "$(sha256 "$img")" "$before"
"$VHDX" info "$img" > "$T/info" || fail "vhdx info after the refused write: $(cat "$T/info")"
"$VHDX" map "$img" > "$T/map" || fail "vhdx map after the refused write"
grep -q "^0x000000000000 0x[0-9a-f]* data" "$T/map" || fail "vhdx map: $(cat "$T/map")"
"$VHDX" convert -O raw "$img" "$T/raw" || fail "vhdx convert after the refused write"
cmp -n $MiB "$T/raw" "$T/data" || fail "the data changed"
rc=0
"$VHDX" check "$img" > "$T/check.out" 2>&1 || rc=$?
expect_eq "vhdx check exit" "$rc" 3
grep -q "error: log at 0xfff0000000100000: the log (0x100000 bytes at 0xfff0000000100000) lies past the end of the file" "$T/check.out" ||
	fail "vhdx check: $(cat "$T/check.out")"
pass "a log past the end of the file: the writable open is refused, nothing changes, the image stays readable"

# ---- item 7: LastFileOffset = 2^50
img="$T/last.vhdx"
"$VHDX" create --size 4M "$img" || fail "vhdx create"
python3 "$GEN" "$img" --entry 7 --last $((1 << 50)) || fail "mkvhdx-log.py --entry"
before=$(sha256 "$img")
size=$(stat -c %s "$img")
expect_fail_msg "^vhdx replay: $img: log entry at log offset 0x0 \(seq 7\): LastFileOffset would extend the file to 0x4000000000000 bytes, more than the 0x[0-9a-f]+ this image's structures can need; refusing to replay$" \
	"$VHDX" replay "$img"
expect_eq "file size after the refused replay" "$(stat -c %s "$img")" "$size"
expect_eq "sha256 after the refused replay" "$(sha256 "$img")" "$before"
expect_fail_msg "\(seq 7\): LastFileOffset would extend the file" "$VHDX" info "$img"
pass "LastFileOffset 2^50: replay refused with the entry's sequence number and offset, the file unchanged"

# within the bound: the file grows to LastFileOffset (MS-VHDX 2.3.3)
img="$T/grow.vhdx"
"$VHDX" create --size 4M "$img" || fail "vhdx create"
python3 "$GEN" "$img" --entry 9 --last $((64 * MiB)) || fail "mkvhdx-log.py --entry"
"$VHDX" replay "$img" > "$T/out" 2>&1 || fail "vhdx replay of an entry within the bound: $(cat "$T/out")"
expect_eq "file size after replay" "$(stat -c %s "$img")" $((64 * MiB))
"$VHDX" check "$img" > "$T/check.out" 2>&1
grep -q ", 0 errors, 1 warning" "$T/check.out" && grep -q "leaked space: the last 62914560 bytes" "$T/check.out" ||
	fail "vhdx check of the grown file (the extension is unreferenced space): $(cat "$T/check.out")"
pass "LastFileOffset within the bound: the file grows to it"
