#!/bin/bash
# test-faults.sh - `vhdx --faults RULES COMMAND` (issue #6) on an image made
# by qemu-img: a read error on one 64 KiB range of the virtual disk fails
# exactly the reads that touch it, with a message naming the injected EIO,
# the payload and the offsets; a BAT read error fails the open; one flipped
# bit is exactly one bit; a failed log write leaves the old data; parse
# errors exit 2 with the line.  Then the SQLite loops: fail (once) or crash
# at the Nth write I/O of a `vhdx write`, N = 1, 2, ... until the write
# gets through; after each, the image opens, qemu-img finds it consistent
# (after replaying its log), every flushed byte is intact and every sector
# of the interrupted write holds either its old or its new bytes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img python3 cmp

MiB=1048576
# the disk: 16 MiB, 1 MiB blocks; random data in the first 6 MiB, zeros (unallocated blocks) after
head -c $((6 * MiB)) /dev/urandom > "$T/disk.raw"
truncate -s $((16 * MiB)) "$T/disk.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M "$T/disk.raw" "$T/base.vhdx" ||
	fail "qemu-img convert to vhdx"
img="$T/disk.vhdx"
cp "$T/base.vhdx" "$img"
"$VHDX" convert -O raw "$img" "$T/clean.raw" || fail "clean convert"
cmp "$T/clean.raw" "$T/disk.raw" || fail "clean convert differs from the raw disk"

# ---- err on a virtual range: only the reads that touch it fail
echo "op=read voff=1048576-1114111 err=EIO   # the second MiB's first 64 KiB" > "$T/r-voff"
expect_fail_msg "injected EIO \(fault rule 1; virtual disk bytes 0x[0-9a-f]+-0x[0-9a-f]+\)" \
	"$VHDX" --faults "$T/r-voff" --fault-log "$T/log" convert -O raw "$img" "$T/out.raw"
grep -Eq "reading payload at offset 0x[0-9a-f]+ \([0-9]+ bytes\)" "$T/err" ||
	fail "the message does not name the payload and its file offset: $(cat "$T/err")"
grep -q "^seq=1 .* rule=1 op=read file=$img off=0x[0-9a-f]* len=[0-9]* voff=0x[0-9a-f]* struct=payload action=err errno=EIO reread=no$" "$T/log" ||
	fail "fault log: $(cat "$T/log")"
grep -q "^op=read voff=1048576-1114111 err=EIO  # rule 1: hits=1 matched=1$" "$T/log" || fail "fault log rules: $(cat "$T/log")"
# outside the range: the right bytes
slice() { dd if="$T/disk.raw" bs=4096 iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none; }
for range in "0 1048576" "1114112 2097152" "0 65536" "1044480 4096" "1114112 4096" "2097152 14680064"; do
	set -- $range
	"$VHDX" --faults "$T/r-voff" convert -O raw --offset "$1" --length "$2" "$img" - > "$T/part" ||
		fail "convert --offset $1 --length $2 outside the faulted range failed: $(cat "$T/err")"
	slice "$1" "$2" | cmp - "$T/part" || fail "convert --offset $1 --length $2 gave wrong bytes"
done
# inside it, even one byte: fails
for range in "1048576 512" "1114111 1" "1048000 1000"; do
	set -- $range
	expect_fail_msg "injected EIO" "$VHDX" --faults "$T/r-voff" convert -O raw --offset "$1" --length "$2" "$img" -
done
pass "op=read voff= err=EIO fails exactly the reads that touch the range"

# ---- a BAT read error fails the open, naming the BAT
printf 'struct=bat err=EIO op=read\n' > "$T/r-bat"
expect_fail_msg "reading BAT at offset 0x[0-9a-f]+ \([0-9]+ bytes\): injected EIO \(fault rule 1\)" \
	"$VHDX" --faults "$T/r-bat" info "$img"
expect_fail_msg "BAT.*injected EIO" "$VHDX" --faults "$T/r-bat" convert -O raw "$img" "$T/out.raw"
printf 'op=open file=disk.vhdx err=EACCES\n' > "$T/r-open"
expect_fail_msg "$img: opening: injected EACCES \(fault rule 1\)" "$VHDX" --faults "$T/r-open" info "$img"
pass "BAT and open faults fail the open with a message naming them"

# ---- one flipped bit on a payload read: exactly one bit differs, silently
printf 'op=read struct=payload nth=1 flip=1 seed=5\n' > "$T/r-flip"
"$VHDX" --faults "$T/r-flip" --fault-log "$T/log" convert -O raw "$img" "$T/flip.raw" ||
	fail "a flip makes the read fail: $(cat "$T/log")"
expect_eq "bytes differing after flip=1" "$(cmp -l "$T/flip.raw" "$T/disk.raw" | wc -l)" 1
bits=$(cmp -l "$T/flip.raw" "$T/disk.raw" | python3 -c 'import sys; a, b, c = sys.stdin.read().split(); print(bin(int(b, 8) ^ int(c, 8)).count("1"))')
expect_eq "bits differing after flip=1" "$bits" 1
grep -q "action=flip bits=[0-9]*$" "$T/log" || fail "fault log has no flip event: $(cat "$T/log")"
pass "flip=1 changes exactly one bit of the data read"

# ---- parse errors: exit 2 with the line
printf '# faults\nop=read err=EIO\nopp=read err=EIO\n' > "$T/r-bad"
"$VHDX" --faults "$T/r-bad" info "$img" > /dev/null 2> "$T/err"
expect_eq "exit status for a bad rules file" "$?" 2
grep -q "^vhdx: --faults: $T/r-bad line 3: unknown key 'opp'$" "$T/err" || fail "parse error message: $(cat "$T/err")"
printf 'op=write off=10-5 err=EIO\n' > "$T/r-bad"
"$VHDX" --faults "$T/r-bad" info "$img" > /dev/null 2> "$T/err"
expect_eq "exit status for off=10-5" "$?" 2
grep -q "line 1: off=10-5: end before start$" "$T/err" || fail "parse error message: $(cat "$T/err")"
printf 'op=read\n' > "$T/r-bad"
"$VHDX" --faults "$T/r-bad" info "$img" > /dev/null 2> "$T/err"
expect_eq "exit status for a rule without action" "$?" 2
grep -q "line 1: no action (err=, delay=, short=, torn=, flip= or crash)$" "$T/err" || fail "$(cat "$T/err")"
"$VHDX" --faults "$T/missing" info "$img" > /dev/null 2> "$T/err"
expect_eq "exit status for a missing rules file" "$?" 2
"$VHDX" --faults > /dev/null 2> "$T/err"
expect_eq "exit status for --faults without a value" "$?" 2
pass "rule parse errors exit 2 naming the file and the line"

# ---- failed log writes under the BAT update of new blocks
head -c $((1536 * 1024)) /dev/urandom > "$T/new"
woff=$((10 * MiB + 4096)) # unallocated blocks: their BAT entries go through the log at flush
cp "$T/disk.raw" "$T/new.raw"
dd if="$T/new" of="$T/new.raw" bs=4096 oflag=seek_bytes seek=$woff conv=notrunc status=none
# a log that always fails: vhdx write fails and the image keeps exactly its old data
printf 'op=write struct=log err=EIO\n' > "$T/r-log"
expect_fail_msg "writing log at offset 0x[0-9a-f]+ \([0-9]+ bytes\): injected EIO \(fault rule 1\)" \
	"$VHDX" --faults "$T/r-log" write --offset $woff "$img" < "$T/new"
"$VHDX" info "$img" > /dev/null || fail "the image does not open after failed log writes"
"$VHDX" convert -O raw "$img" "$T/after.raw" || fail "convert after failed log writes"
cmp "$T/after.raw" "$T/disk.raw" || fail "failed log writes left changed data visible"
qemu-img check -q "$img" || fail "qemu-img check after failed log writes"
# only the first log write failing: vhdx write reports the failed flush; the close commits the
# update again, so the write is there whole (never in part), and everything else is untouched
cp "$T/base.vhdx" "$img"
printf 'op=write struct=log nth=1 err=EIO\n' > "$T/r-log1"
expect_fail_msg "writing log at offset 0x[0-9a-f]+ \([0-9]+ bytes\): injected EIO \(fault rule 1\)" \
	"$VHDX" --faults "$T/r-log1" write --offset $woff "$img" < "$T/new"
"$VHDX" convert -O raw "$img" "$T/after.raw" || fail "convert after a failed log write"
cmp -s "$T/after.raw" "$T/disk.raw" || cmp -s "$T/after.raw" "$T/new.raw" ||
	fail "after one failed log write the disk is neither the old nor the new data"
qemu-img check -q "$img" || fail "qemu-img check after a failed log write"
cp "$T/base.vhdx" "$img"
pass "failed log writes leave the old data, or the whole write, never a part"

# ---- the SQLite loops: fail (once) / crash at the Nth write I/O, until it gets through
# expected state: the base image plus a flushed first write; the second write is the one interrupted
cp "$T/base.vhdx" "$T/loop-base.vhdx"
head -c $((700 * 1024)) /dev/urandom > "$T/w1"
w1off=$((3 * MiB + 1000))
"$VHDX" write --offset $w1off "$T/loop-base.vhdx" < "$T/w1" || fail "first write"
cp "$T/disk.raw" "$T/flushed.raw"
dd if="$T/w1" of="$T/flushed.raw" bs=4096 oflag=seek_bytes seek=$w1off conv=notrunc status=none
head -c $((2 * MiB + 512)) /dev/urandom > "$T/w2" # straddles allocated data and two new blocks
w2off=$((5 * MiB + 512 * 3))
cp "$T/flushed.raw" "$T/new.raw"
dd if="$T/w2" of="$T/new.raw" bs=4096 oflag=seek_bytes seek=$w2off conv=notrunc status=none

# check_loop_image IMG LABEL: opens, is consistent for qemu, and holds the flushed bytes; every
# sector of the interrupted write is old or new
check_loop_image() {
	"$VHDX" info "$1" > /dev/null 2> "$T/err" || fail "$2: the image does not open: $(cat "$T/err")"
	"$VHDX" convert -O raw "$1" "$T/got.raw" 2> "$T/err" || fail "$2: convert: $(cat "$T/err")"
	python3 - "$T/got.raw" "$T/flushed.raw" "$T/new.raw" "$w2off" "$(stat -c %s "$T/w2")" "$2" <<'EOF' || exit 1
import sys
got, old, new = (open(p, 'rb').read() for p in sys.argv[1:4])
off, n, label = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
if len(got) != len(old):
    sys.exit(f"FAIL: {label}: disk size {len(got)}, expected {len(old)}")
if got[:off] != old[:off] or got[off + n:] != old[off + n:]:
    first = next(i for i in range(len(got)) if got[i] != old[i] and not off <= i < off + n)
    sys.exit(f"FAIL: {label}: flushed data changed at byte {first}")
for s in range(off, off + n, 512) if got[off:off + n] not in (old[off:off + n], new[off:off + n]) else ():
    g = got[s:s + 512]
    if g != old[s:s + 512] and g != new[s:s + 512]:
        sys.exit(f"FAIL: {label}: sector at {s} is neither the old nor the new data")
EOF
	cp "$1" "$T/q.vhdx"
	# qemu refuses a dirty log read-only: replay it on a copy first (-r all), then it must be clean
	qemu-img check -r all "$T/q.vhdx" > "$T/qcheck.log" 2>&1 || fail "$2: qemu-img check -r all: $(cat "$T/qcheck.log")"
	qemu-img check "$T/q.vhdx" > "$T/qcheck.log" 2>&1 || fail "$2: qemu-img check after replay: $(cat "$T/qcheck.log")"
	qemu-img convert -O raw "$T/q.vhdx" "$T/qemu.raw" || fail "$2: qemu-img convert"
	cmp "$T/qemu.raw" "$T/got.raw" || fail "$2: qemu reads other bytes than we do"
}

for spec in "write:once err=EIO" "write:crash" "write:torn=3 crash" "flush:once err=EIO" "flush:crash" \
	"read:once err=EIO"; do
	op=${spec%%:*} mode=${spec#*:}
	n=1 absorbed=
	while :; do
		[ $n -le 200 ] || fail "op=$op $mode: still failing at call $n"
		cp "$T/loop-base.vhdx" "$T/loop.vhdx"
		printf 'op=%s nth=%d %s\n' "$op" $n "$mode" > "$T/r-loop"
		"$VHDX" --faults "$T/r-loop" --fault-log "$T/log" write --offset $w2off "$T/loop.vhdx" < "$T/w2" \
			> /dev/null 2> "$T/err"
		rc=$?
		hits=$(sed -n 's/.*# rule 1: hits=\([0-9]*\).*/\1/p' "$T/log")
		if [ "$hits" = 0 ]; then
			# the workload never reached its Nth call: it must have succeeded and hold the new data
			[ $rc = 0 ] || fail "op=$op $mode: no fault at N=$n but vhdx write failed: $(cat "$T/err")"
			"$VHDX" convert -O raw "$T/loop.vhdx" "$T/got.raw" || fail "convert"
			cmp "$T/got.raw" "$T/new.raw" || fail "op=$op $mode: the write without faults gave wrong data"
			break
		fi
		if [ $rc = 0 ]; then
			# the fault was absorbed (a format probe that read elsewhere): then the write must be all there
			"$VHDX" convert -O raw "$T/loop.vhdx" "$T/got.raw" || fail "convert"
			cmp "$T/got.raw" "$T/new.raw" || fail "op=$op $mode at call $n: vhdx write succeeded but the data is wrong"
			absorbed="$absorbed $n"
		else
			[ $rc = 1 ] || fail "op=$op $mode at call $n: vhdx write exited $rc (expected 0 or 1): $(cat "$T/err")"
			grep -q "injected" "$T/err" || fail "op=$op $mode at call $n: the error does not say it was injected: $(cat "$T/err")"
			check_loop_image "$T/loop.vhdx" "op=$op $mode at call $n"
		fi
		n=$((n + 1))
	done
	[ $n -ge 3 ] || fail "op=$op $mode: the workload has only $((n - 1)) such calls?"
	pass "op=$op $mode at every such call (1..$((n - 1))) of vhdx write: the image reopens consistent, flushed data intact${absorbed:+ (absorbed without error, data right: call$absorbed)}"
done
