#!/bin/bash
# test-lock.sh - image file locks without FUSE (issue #14): while another
# process holds an image (a `vhdx write` waiting on its standard input
# holds it for writing, a `vhdx convert` blocked on a full pipe for
# reading), every conflicting command is refused at once with the exact
# message (file, access asked, access held, holder's pid and command) and
# leaves every file of the chain byte for byte as it was; --force-share
# reads anyway and warns; `vhdx info` reports in_use; kill -9 of a holder
# (a writer, a merge in progress) frees the lock at once; two processes
# racing to open one image for writing: exactly one wins, every round
# (LOCK_ROUNDS, default 200); the flock() fallback (LIBVHDX_LOCK=flock)
# names the holder too.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires jq
MiB=1048576
img="$T/web01.vhdx"
lock_images "$img"
head -c $((1 * MiB)) /dev/urandom | "$VHDX" write --offset $((5 * MiB)) "$child" || fail "write child"

# hold_write IMAGE [OPTIONS]: a `vhdx write` holds IMAGE open for writing until release; HOLD_PID
hold_write() {
	local f=$1
	shift
	rm -f "$T/hold.fifo"
	mkfifo "$T/hold.fifo"
	exec 7<> "$T/hold.fifo"
	# 7>&-: the holder must not keep a writer of its own input open
	"$VHDX" write --offset $((3 * MiB)) "$@" "$f" < "$T/hold.fifo" 2> "$T/hold.err" 7>&- &
	HOLD_PID=$!
	wait_in_use "$f" write
}
# hold_read IMAGE [OPTIONS]: a `vhdx convert` blocked on a full pipe holds IMAGE for reading; HOLD_PID
hold_read() {
	local f=$1
	shift
	rm -f "$T/read.fifo"
	mkfifo "$T/read.fifo"
	exec 8<> "$T/read.fifo"
	"$VHDX" convert -O raw "$@" "$f" - > "$T/read.fifo" 2> "$T/hold.err" 8<&- &
	HOLD_PID=$!
}
# wait_in_use IMAGE WANT: until `vhdx info` says in_use WANT (5 s at most); -U: the
# polling itself must take no lock, or it could refuse the holder it waits for
wait_in_use() {
	local i got
	for ((i = 0; i < 100; i++)); do
		got=$("$VHDX" info -U --json "$1" 2> /dev/null | jq -r .in_use)
		[ "$got" = "$2" ] && return 0
		sleep 0.05
	done
	fail "$1: in_use stayed '$got', expected '$2': $(cat "$T/hold.err")"
}
release_write() {
	exec 7>&-
	wait "$HOLD_PID" || fail "the holder exited $?: $(cat "$T/hold.err")"
}
release_read() {
	kill -KILL "$HOLD_PID"
	wait "$HOLD_PID" 2> /dev/null
	exec 8<&-
}
# refused WANT-STDERR CMD...: CMD exits 1 with exactly WANT-STDERR and changes no file
refused() { expect_refused "$base $child $img" "$@"; }

expect_eq "in_use of an image nobody holds" "$("$VHDX" info --json "$img" | jq -c '[.in_use, .layers[0].in_use]')" "[null,null]"

# ---- a writer holds web01.vhdx
hold_write "$img"
held="in use for writing by another process (pid $HOLD_PID, vhdx)"
refused "vhdx write: $img: $held; cannot open it for writing" "$VHDX" write --offset $((5 * MiB)) "$img"
refused "vhdx map: $img: $held; cannot open it for reading" "$VHDX" map "$img"
refused "vhdx hash: $img: $held; cannot open it for reading" "$VHDX" hash "$img"
refused "vhdx compact: $img: $held; cannot open it for writing" "$VHDX" compact "$img"
refused "vhdx resize: $img: $held; cannot open it for writing" "$VHDX" resize --size 128M "$img"
refused "vhdx check: $img: $held; cannot open it for writing" "$VHDX" check --repair "$img"
refused "vhdx check: $img: $held; cannot open it for reading" "$VHDX" check "$img"
refused "vhdx replay: $img: $held; cannot open it for writing" "$VHDX" replay "$img"
refused "vhdx create: $img: $held; cannot open it for writing" "$VHDX" create --force --size 32M "$img"
refused "vhdx create: parent: $img: $held; cannot open it for reading" "$VHDX" create --parent "$img" "$T/new.avhdx"
[ -e "$T/new.avhdx" ] && fail "the refused create left $T/new.avhdx"
pass "a writer holds the image: write, map, hash, compact, resize, check [--repair], replay, create --overwrite refused, nothing changed"

expect_eq "info while written" "$("$VHDX" info --json "$img" | jq -c '[.in_use, .layers[0].in_use, .virtual_size]')" \
	"[\"write\",\"write\",$((64 * MiB))]"
expect_eq "checkpoints while written" "$("$VHDX" checkpoints --json "$T" |
	jq -c --arg p "$img" '[.. | objects | select(.path? == $p and has("in_use")) | .in_use] | unique')" '["write"]'
expect_eq "checkpoints text while written" "$("$VHDX" checkpoints "$T" | grep -F "  $img: " | sort -u)" \
	"  $img: vhdx dynamic, file $(stat -c %s "$img") bytes (in use for writing by another process)"
"$VHDX" hash -U "$img" > "$T/hash.out" 2> "$T/hash.err" || fail "hash --force-share: $(cat "$T/hash.err")"
expect_eq "--force-share warning" "$(cat "$T/hash.err")" \
	"vhdx hash: warning: $img is in use for writing by another process; what is read may be inconsistent"
"$VHDX" map --force-share "$img" > /dev/null 2>&1 || fail "map --force-share"
expect_fail_msg "force-share" "$VHDX" check --repair --force-share "$img"
"$VHDX" compact --force-share "$img" > /dev/null 2> "$T/err" && fail "compact took --force-share"
pass "--force-share reads while a writer runs and warns; info and checkpoints say in_use write; maintenance does not take it"
# ... and qemu cannot open what libvhdx writes
if command -v qemu-img > /dev/null; then
	qemu-img info "$img" > "$T/q.out" 2>&1 && fail "qemu-img opened an image libvhdx writes"
	grep -q 'lock' "$T/q.out" || fail "qemu-img beside a libvhdx writer: $(cat "$T/q.out")"
fi
release_write

# ---- a reader holds the chain (child and base)
hold_read "$child"
wait_in_use "$child" read
held="in use for reading by another process (pid $HOLD_PID, vhdx)"
refused "vhdx write: $child: $held; cannot open it for writing" "$VHDX" write --offset 0 "$child"
refused "vhdx compact: $base: $held; cannot open it for writing" "$VHDX" compact "$base"
refused "vhdx merge: merge of $child: nothing was changed: $base: $held; cannot open it for writing" \
	"$VHDX" merge --no-progress "$child"
refused "vhdx reparent: $child: $held; cannot open it for writing" "$VHDX" reparent --parent "$base" "$child"
"$VHDX" map "$child" > /dev/null || fail "a second reader was refused"
expect_eq "info of a chain being read" "$("$VHDX" info --json "$child" | jq -c '[.in_use, .layers[].in_use]')" \
	'["read","read","read"]'
# qemu's own locks (bytes 100-299) stay apart from a reader's: qemu reads beside it
if command -v qemu-img > /dev/null; then
	qemu-img info "$base" > "$T/q.out" 2>&1 || fail "qemu-img info beside a libvhdx reader: $(cat "$T/q.out")"
fi
release_read
# only the child is read (--no-parent): merge --delete must keep it, plain merge may go on
hold_read "$child" --no-parent
wait_in_use "$child" read
held="in use for reading by another process (pid $HOLD_PID, vhdx)"
refused "vhdx merge: merge of $child: nothing was changed: $child: $held; cannot open it for writing" \
	"$VHDX" merge --no-progress --delete "$child"
release_read
pass "readers share; writers, compact of a parent, merge [--delete] and reparent refused while the chain is read"

# a child that merge --delete would re-point, held for writing alone (--no-parent): found all the same, refused
mkdir "$T/m"
"$VHDX" create --size 16M --block-size 1M "$T/m/b.vhdx" > /dev/null && "$VHDX" create --parent "$T/m/b.vhdx" "$T/m/mid.avhdx" > /dev/null &&
	"$VHDX" create --parent "$T/m/mid.avhdx" "$T/m/leaf.avhdx" > /dev/null || fail "create the chain of $T/m"
hold_write "$T/m/leaf.avhdx" --no-parent
before=$(sha256sum "$T"/m/*.*vhdx)
"$VHDX" merge --no-progress --delete "$T/m/mid.avhdx" > "$T/out" 2> "$T/err" && fail "merge --delete of a layer whose held child it must re-point succeeded"
expect_eq "merge --delete with a held child" "$(cat "$T/err")" \
	"vhdx merge: merge of $T/m/mid.avhdx: nothing was changed: $T/m/leaf.avhdx: in use for writing by another process (pid $HOLD_PID, vhdx); cannot open it for writing"
expect_eq "the chain of $T/m after the refused merge" "$(sha256sum "$T"/m/*.*vhdx)" "$before"
release_write
pass "merge --delete refuses while a child it would re-point is open elsewhere"

# ---- kill -9 of a holder frees its lock at once
hold_write "$img"
kill -9 "$HOLD_PID"
wait "$HOLD_PID" 2> /dev/null
exec 7>&-
printf 'after the kill' | "$VHDX" write --offset $((7 * MiB)) "$img" 2> "$T/err" || fail "the next writer after kill -9: $(cat "$T/err")"
expect_eq "data of the next writer" "$("$VHDX" convert -O raw "$img" - | dd bs=1M skip=7 count=1 iflag=fullblock status=none | head -c 14)" \
	"after the kill"
"$VHDX" convert -O raw "$child" "$T/child-before.raw" || fail "convert child"
printf 'op=write delay=1000\n' > "$T/slow.rules"   # every write of the merge takes a second
"$VHDX" --faults "$T/slow.rules" merge --no-progress "$child" > /dev/null 2> "$T/merge.err" &
merge_pid=$!
for ((i = 0; i < 100; i++)); do [ -e "$child.merging" ] && break; sleep 0.05; done
[ -e "$child.merging" ] || fail "the slow merge never started: $(cat "$T/merge.err")"
expect_eq "base in use during the merge" "$("$VHDX" info --json "$base" | jq -r .in_use)" write
sleep 1.5 # a write or two into the base, not all of them
kill -0 "$merge_pid" 2> /dev/null || fail "the slow merge ended before it could be killed: $(cat "$T/merge.err")"
kill -9 "$merge_pid"
wait "$merge_pid" 2> /dev/null
"$VHDX" merge --no-progress "$child" > /dev/null 2> "$T/err" || fail "merge after kill -9: $(cat "$T/err")"
"$VHDX" convert -O raw "$base" "$T/base-after.raw" || fail "convert base"
expect_eq "base after the completed merge" "$(sha256 "$T/base-after.raw")" "$(sha256 "$T/child-before.raw")"
pass "kill -9 of a writer and of a merge in progress: the next writer opens at once and finds every write"

# ---- the flock() fallback names the holder from /proc/locks
export LIBVHDX_LOCK=flock
hold_write "$img"
refused "vhdx write: $img: in use for writing by another process (pid $HOLD_PID, vhdx); cannot open it for writing" \
	"$VHDX" write --offset 0 "$img"
release_write
unset LIBVHDX_LOCK
pass "flock() fallback: refused with the holder's pid"

# ---- two processes race to open one image for writing: exactly one wins, every round
rounds=${LOCK_ROUNDS:-200}
mkfifo "$T/a.fifo" "$T/b.fifo"
for ((r = 0; r < rounds; r++)); do
	exec 5<> "$T/a.fifo" 6<> "$T/b.fifo"
	"$VHDX" write --offset 0 "$img" < "$T/a.fifo" 2> "$T/a.err" 5>&- 6>&- &
	a=$!
	"$VHDX" write --offset 0 "$img" < "$T/b.fifo" 2> "$T/b.err" 5>&- 6>&- &
	b=$!
	# the loser exits at once; the winner waits for its input until the descriptors close
	for ((i = 0; i < 500; i++)); do
		! kill -0 $a 2> /dev/null || ! kill -0 $b 2> /dev/null && break
		sleep 0.01
	done
	exec 5>&- 6>&-
	wait $a; ra=$?
	wait $b; rb=$?
	[ $((ra + rb)) = 1 ] || fail "round $r: exit codes $ra and $rb (want one 0, one 1): $(cat "$T/a.err" "$T/b.err")"
	grep -q "in use for writing by another process (pid [0-9]*, vhdx); cannot open it for writing" "$T/a.err" "$T/b.err" ||
		fail "round $r: the loser's message: $(cat "$T/a.err" "$T/b.err")"
done
pass "$rounds rounds of two writers racing: exactly one won each"

# ---- vhdx cycle checkpoint: another process holds the base while the agent merges
printf 'op=lock file=cb.vhdx nth=4 err=EBUSY\n' > "$T/busy.rules"   # the 4th lock of the base: the 1st merge
"$VHDX" cycle checkpoint --base "$T/cb.vhdx" --count 2 --faults "$T/busy.rules" --json > "$T/cycle.json" 2> "$T/cycle.err" ||
	fail "cycle checkpoint with a busy base exited $?: $(cat "$T/cycle.err")"
expect_eq "cycle checkpoint contention" "$(jq -c '[.rounds[].class, (.rounds[1].steps[] | select(.errno != "") | .step, .errno, .windows),
	.rounds[1].faults[0].op, .summary.verdict]' "$T/cycle.json")" \
	'["clean","reported","merge","EBUSY","0x80070020","lock","ok"]'
pass "vhdx cycle checkpoint: a base held by another process is reported, 0x80070020"
