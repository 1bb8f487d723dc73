#!/bin/bash
# test-crash-qemu.sh - logs we leave behind in crashes are replayed by qemu to
# the same bytes as our own replay.  The crash test dumps images whose log is
# dirty (power cut after every I/O event, unflushed writes dropped); for each,
# our read-only open (replay in memory) and `qemu-img check -r all` on a copy
# (qemu's replay in place) must give the same virtual disk, and qemu must
# find the replayed image clean.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img
crash="$top_builddir/tests/unit/test_crash_vhdx"
[ -x "$crash" ] || skip "tests/unit/test_crash_vhdx was not built (cmocka missing)"
mkdir -p "$T/dumps"
VHDX_CRASH_DUMP_DIR="$T/dumps" "$crash" > "$T/crash.log" 2>&1 || fail "the crash test failed: $(tail -5 "$T/crash.log")"
n=0
for img in "$T"/dumps/*.vhdx; do
	[ -f "$img" ] || continue
	sum=$(sha256 "$img")
	"$VHDX" convert -O raw "$img" "$T/ours.raw" || fail "$(basename "$img"): our read-only replay"
	expect_eq "$(basename "$img") untouched by a read-only open" "$(sha256 "$img")" "$sum"
	cp "$img" "$T/q.vhdx"
	qemu-img check -r all "$T/q.vhdx" > "$T/qcheck.log" 2>&1 || fail "$(basename "$img"): qemu-img check -r all: $(cat "$T/qcheck.log")"
	qemu-img check "$T/q.vhdx" > /dev/null 2>&1 || fail "$(basename "$img"): still not clean after qemu's replay"
	qemu-img convert -O raw "$T/q.vhdx" "$T/qemu.raw" || fail "qemu-img convert"
	cmp "$T/ours.raw" "$T/qemu.raw" || fail "$(basename "$img"): qemu's replay gives other bytes than ours"
	# and our in-place replay gives the same bytes too
	cp "$img" "$T/v.vhdx"
	"$VHDX" replay "$T/v.vhdx" > /dev/null || fail "vhdx replay $(basename "$img")"
	"$VHDX" convert -O raw "$T/v.vhdx" "$T/v.raw"
	cmp "$T/v.raw" "$T/qemu.raw" || fail "$(basename "$img"): our in-place replay differs from qemu's"
	n=$((n + 1))
done
[ $n -ge 5 ] || fail "only $n dirty crash images were produced; expected at least 5"
pass "$n dirty crash images: qemu's replay, our in-memory replay and our in-place replay agree"
