#!/bin/bash
# test-vhd-hostile.sh - a dynamic VHD whose dynamic header declares a BAT of
# 0xFFFFFFF0 entries (16 GiB, in a sparse file) for a 4 MiB disk: every
# command must cost memory and reads in proportion to the disk's 2 blocks,
# never to the table (peak RSS measured with wait4), and give the right
# bytes; entries past the disk's end are never data (writes and compaction
# keep them on disk as they are, a grow clears the ones it brings into the
# disk); `vhdx check` reads the table's tail in bounded pieces up to a bound
# and says what it did not examine.  A header whose table is too small for
# the disk is refused with a message naming the dynamic header.
# The images come from tests/mkvhd-hostile.py, written from the spec.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires python3 cmp dd od
[ -x "$VHDX" ] || fail "$VHDX was not built"
GEN="$top_srcdir/tests/mkvhd-hostile.py"
M=$((1 << 20))
MAXE=0xFFFFFFF0

# a sparse 16 GiB file needs a file system with holes
truncate -s 17G "$T/probe" 2>/dev/null || skip "cannot create a sparse 17 GiB file in $T"
[ "$(stat -c %b "$T/probe")" -lt 1024 ] || skip "$T does not keep holes in sparse files"
rm -f "$T/probe"

# the memory bound: 64 MiB; an ASan build's shadow memory and quarantine
# need more, still far below the 16 GiB the table would take
LIMIT_KB=$((64 * 1024))
grep -q __asan_init "$VHDX" 2>/dev/null && LIMIT_KB=$((512 * 1024))

# rss NAME CMD...: runs CMD (stdout $T/out, stderr $T/err); sets RC and
# KB (the peak RSS of CMD in KiB, from wait4) and fails above LIMIT_KB.
# The child is forked from python before the exec, so KB includes python's
# ~10 MiB: a floor well below the limit.
rss() {
	local name="$1" res
	shift
	res=$(python3 -c 'import os, sys
pid = os.fork()
if pid == 0:
    out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.execvp(sys.argv[3], sys.argv[3:])
_, status, ru = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss)' "$T/out" "$T/err" "$@") || fail "$name: could not run $*"
	RC=${res% *}
	KB=${res#* }
	echo "$name: exit $RC, peak RSS $KB KiB"
	[ "$KB" -lt "$LIMIT_KB" ] || fail "$name: peak RSS $KB KiB, more than $LIMIT_KB KiB"
}

# entry FILE I: BAT entry I of an image made by the generator (table at 0x600), as 8 hex digits
entry() {
	od -A n -t x1 -j $((0x600 + 4 * $2)) -N 4 "$1" | tr -d ' \n'
}

gen() { python3 "$GEN" "$@" || fail "mkvhd-hostile.py $* failed"; }

# ---- (a) 4 MiB disk, 2 blocks, 0xFFFFFFF0 table entries
gen "$T/a.vhd" "$T/a.raw" $((4 * M)) $MAXE --tail-fill 0x00000001
[ "$(stat -c %s "$T/a.vhd")" -gt $((16 << 30)) ] || fail "the generated image is not 16 GiB long"

rss "info" "$VHDX" info "$T/a.vhd"
[ "$RC" = 0 ] || fail "vhdx info failed: $(cat "$T/err")"
grep -q "^ *virtual_size: 4 MiB (4194304 bytes)$" "$T/out" || fail "info: virtual size: $(grep virtual_size "$T/out")"
grep -q "^ *max_table_entries: 4294967280$" "$T/out" || fail "info: max table entries: $(grep max_ "$T/out")"
grep -q "^ *allocated_blocks: 1$" "$T/out" || fail "info: allocated blocks: $(grep allocated "$T/out")"

rss "convert" "$VHDX" convert -O raw "$T/a.vhd" "$T/a.out"
[ "$RC" = 0 ] || fail "vhdx convert failed: $(cat "$T/err")"
cmp "$T/a.out" "$T/a.raw" || fail "convert: the disk's bytes differ from what the generator wrote"
pass "info and convert of a 16 GiB table for a 4 MiB disk"

# the same digests as the expected bytes in a VHDX made from the raw file
"$VHDX" convert -f raw "$T/a.raw" "$T/ref.vhdx" 2> "$T/err" || fail "convert of the raw file failed: $(cat "$T/err")"
"$VHDX" hash "$T/ref.vhdx" > "$T/ref.hash" || fail "hash of the reference failed"
rss "hash" "$VHDX" hash "$T/a.vhd"
[ "$RC" = 0 ] || fail "vhdx hash failed: $(cat "$T/err")"
cmp "$T/out" "$T/ref.hash" || fail "hash: $(diff "$T/out" "$T/ref.hash")"
pass "hash"

# ---- (c) check: the tail of the table in bounded pieces, up to 4 Mi entries
t0=$(date +%s)
rss "check" "$VHDX" check "$T/a.vhd"
elapsed=$(($(date +%s) - t0))
[ "$RC" = 3 ] || fail "check exited $RC, expected 3 (problems found): $(cat "$T/out" "$T/err")"
[ "$elapsed" -lt 60 ] || fail "check took $elapsed s"
{
	echo "$T/a.vhd: vhd, 0 errors, 10 warnings"
	for i in 2 3 4 5 6 7 8 9; do
		printf '  warning: BAT entry at 0x%x: entry %d is past the disk'\''s last block (2 blocks) but allocated (sector 0x1)\n' \
			$((0x600 + 4 * i)) $i
	done
	# entries 10..127 hold 0x00000001, 128.. are the hole's zeros: 4 Mi examined, 8 reported
	printf '  warning: BAT entry at 0x%x: %d more entries from entry 10 on are past the disk'\''s last block but allocated\n' \
		$((0x600 + 4 * 10)) $(((4 << 20) - 8))
	printf '  warning: BAT at 0x%x: max table entries 4294967280 is far more than the disk'\''s 2 blocks: entries %d..4294967279 (past the disk'\''s end, never used for data) were not examined\n' \
		$((0x600 + 4 * (2 + (4 << 20)))) $((2 + (4 << 20)))
} > "$T/check.want"
diff "$T/check.want" "$T/out" || fail "check: the report differs (above)"
pass "check reads the tail of a huge table up to its bound ($elapsed s)"

# ---- a write allocates block 1; the BAT sector it rewrites keeps entries 2..127
head -c 4096 /dev/urandom > "$T/w.bin"
rss "write" "$VHDX" write --offset $((2 * M + 8192)) "$T/a.vhd" < "$T/w.bin"
[ "$RC" = 0 ] || fail "vhdx write failed: $(cat "$T/err")"
dd if="$T/w.bin" of="$T/a.raw" bs=4096 seek=$(((2 * M + 8192) / 4096)) conv=notrunc status=none
"$VHDX" convert -O raw "$T/a.vhd" "$T/a.out" 2> "$T/err" || fail "convert after the write failed: $(cat "$T/err")"
cmp "$T/a.out" "$T/a.raw" || fail "the disk after the write differs"
[ "$(entry "$T/a.vhd" 1)" != ffffffff ] || fail "entry 1 was not written"
for i in 2 64 127; do
	expect_eq "entry $i after the write" "$(entry "$T/a.vhd" $i)" 00000001
done
expect_eq "entry 128 after the write" "$(entry "$T/a.vhd" 128)" 00000000
pass "a write keeps the entries past the disk's end in the BAT sector it rewrites"

# ---- resize: a grow within the table's room makes the new blocks' entries unallocated
rss "resize" "$VHDX" resize --size $((8 * M)) "$T/a.vhd"
[ "$RC" = 0 ] || fail "vhdx resize failed: $(cat "$T/err")"
for i in 2 3; do
	expect_eq "entry $i after the grow" "$(entry "$T/a.vhd" $i)" ffffffff
done
expect_eq "entry 4 after the grow (past the new end, untouched)" "$(entry "$T/a.vhd" 4)" 00000001
truncate -s $((8 * M)) "$T/a.raw"
"$VHDX" convert -O raw "$T/a.vhd" "$T/a.out" 2> "$T/err" || fail "convert after the grow failed: $(cat "$T/err")"
cmp "$T/a.out" "$T/a.raw" || fail "the grown disk differs (the new blocks must read zeros)"
pass "resize grows within the table's room"

# ---- compact: block 0 holds zeros and is released; its BAT sector keeps entries 2..127
gen "$T/z.vhd" - $((4 * M)) $MAXE --tail-fill 0x00000001 --zero-block
rss "compact" "$VHDX" compact --no-progress "$T/z.vhd"
[ "$RC" = 0 ] || fail "vhdx compact failed: $(cat "$T/err")"
expect_eq "entry 0 after compact" "$(entry "$T/z.vhd" 0)" ffffffff
for i in 2 127; do
	expect_eq "entry $i after compact" "$(entry "$T/z.vhd" $i)" 00000001
done
# nothing is stored behind the table any more: the footer follows it
expect_eq "file size after compact" "$(stat -c %s "$T/z.vhd")" $((0x600 + (4 * MAXE + 511) / 512 * 512 + 512))
"$VHDX" convert -O raw "$T/z.vhd" "$T/z.out" 2> "$T/err" || fail "convert after compact failed: $(cat "$T/err")"
cmp "$T/z.out" <(head -c $((4 * M)) /dev/zero) || fail "the compacted disk does not read zeros"
pass "compact"

# ---- (b) a table too small for the disk: refused, naming the dynamic header
T2=$((2 << 40))
gen "$T/b.vhd" - $T2 $((T2 / (2 * M) - 1)) --raw-size 0
rss "info (b)" "$VHDX" info "$T/b.vhd"
[ "$RC" = 1 ] || fail "info of a table too small for the disk exited $RC: $(cat "$T/err")"
expect_eq "message" "$(cat "$T/err")" \
	"vhdx info: $T/b.vhd: dynamic header at 0x200: dynamic header: max table entries 1048575 cannot cover the current size $T2 with 2097152-byte blocks (1048576 entries needed)"
pass "a table too small for the disk is refused"

# ---- 2 TiB (qemu's and VirtualBox's limit) opens with the huge table; a sector more is refused
gen "$T/c.vhd" - $T2 $MAXE --raw-size 0
rss "info (2 TiB)" "$VHDX" info "$T/c.vhd"
[ "$RC" = 0 ] || fail "info of a 2 TiB disk failed: $(cat "$T/err")"
grep -q "^ *allocated_blocks: 1$" "$T/out" || fail "info (2 TiB): allocated blocks: $(grep allocated "$T/out")"
rss "check (2 TiB)" "$VHDX" check "$T/c.vhd"
[ "$RC" = 3 ] || fail "check of the 2 TiB disk exited $RC: $(cat "$T/out" "$T/err")"
grep -q "entries $((1048576 + (4 << 20)))..4294967279 (past the disk's end, never used for data) were not examined" "$T/out" ||
	fail "check (2 TiB): $(cat "$T/out")"
gen "$T/d.vhd" - $((T2 + 512)) $MAXE --raw-size 0
rss "info (2 TiB + 512)" "$VHDX" info "$T/d.vhd"
[ "$RC" = 1 ] || fail "info of a disk over 2 TiB exited $RC: $(cat "$T/err")"
expect_eq "message" "$(cat "$T/err")" \
	"vhdx info: $T/d.vhd: footer at 0x$(printf %x $(($(stat -c %s "$T/d.vhd") - 512))): current size $((T2 + 512)) is more than the $T2 bytes (2 TiB) a dynamic or differencing VHD can hold"
rss "check (2 TiB + 512)" "$VHDX" check "$T/d.vhd"
[ "$RC" = 3 ] || fail "check of a disk over 2 TiB exited $RC: $(cat "$T/out" "$T/err")"
grep -q "error: footer at 0x.*: current size $((T2 + 512)) is more than" "$T/out" || fail "check (2 TiB + 512): $(cat "$T/out")"
pass "the 2 TiB limit"
