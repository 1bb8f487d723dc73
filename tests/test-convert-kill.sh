#!/bin/bash
# test-convert-kill.sh - a killed command never leaves a plausible output
# at its destination (issue #15 item 2): `vhdx convert` (raw, VHDX and VHD
# outputs), `vhdx create` and `vhdx hash -o` write a temporary file in a
# hidden folder beside the destination and rename it when complete.
#  - deterministic: a fault rule stalls the source's payload reads after
#    the copy began (delay=), the command is killed with SIGKILL while stalled: the
#    destination does not exist (it used to hold a valid all-zero image that
#    `vhdx check` passed), only the hidden ".NAME.tmp-PID" folder; an
#    existing destination (--force) keeps its bytes;
#  - the kill -9 loop that found it: convert killed after a random delay,
#    N times (VHDX_KILL_LOOPS, default 12; the seed is printed, set
#    VHDX_KILL_SEED to repeat a run): the destination is absent or equal to
#    a complete conversion, never anything else;
#  - standard output is still written directly (a stream has no name).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires cmp sha256sum
[ -x "$VHDX" ] || fail "$VHDX was not built"
MiB=1048576
cd "$T" || fail "cd $T"

"$VHDX" create --size 64M --block-size 1M src.vhdx || fail "vhdx create"
head -c $((24 * MiB)) /dev/urandom > data
"$VHDX" write --offset 4M src.vhdx < data || fail "vhdx write"
"$VHDX" convert -O raw src.vhdx ref.raw || fail "reference conversion"

# waits (5 s at most) until one of the FILEs exists
wait_for() {
	local i f
	for ((i = 0; i < 100; i++)); do
		for f in "$@"; do [ -e "$f" ] && return 0; done
		sleep 0.05
	done
	return 1
}

# ---- deterministic: killed while stalled inside the copy
echo 'op=read file=src.vhdx struct=payload nth=3 delay=20000' > stall.rules
for out in out.vhdx out.vhd out.raw; do
	fmt=${out##*.}
	rm -rf "$out" ".$out".tmp-*
	"$VHDX" --faults stall.rules convert -O "$fmt" src.vhdx "$out" 2> err &
	pid=$!
	# the stall: the temporary file exists and holds some of the data
	wait_for ".$out.tmp-$pid/$out" "$out" || { kill -9 $pid; fail "$out: no output file: $(ls -a)"; }
	sleep 0.5
	kill -9 $pid
	wait $pid 2>/dev/null
	[ -e "$out" ] && fail "$out: a killed convert left $out behind ($(stat -c %s "$out") bytes)"
	[ -d ".$out.tmp-$pid" ] || fail "$out: the temporary folder is gone"
	rm -rf ".$out.tmp-$pid"
	pass "$out: convert killed while writing: no $out, only .$out.tmp-$pid"
done

# an existing destination replaced with --force keeps its bytes when the convert dies
cp src.vhdx old.vhdx
before=$(sha256 old.vhdx)
"$VHDX" --faults stall.rules convert --force -O vhdx src.vhdx old.vhdx 2> err &
pid=$!
wait_for ".old.vhdx.tmp-$pid/old.vhdx" || { kill -9 $pid; fail "old.vhdx: no temporary file"; }
sleep 0.5
kill -9 $pid
wait $pid 2>/dev/null
expect_eq "sha256 of the destination a killed --force convert would replace" "$(sha256 old.vhdx)" "$before"
rm -rf ".old.vhdx.tmp-$pid"
# a failed (not killed) conversion leaves the existing destination too
echo 'op=write struct=payload nth=3 err=ENOSPC' > enospc.rules
rc=0
"$VHDX" --faults enospc.rules convert --force -O vhdx src.vhdx old.vhdx 2> err || rc=$?
expect_eq "exit of a failed --force convert" "$rc" 1
expect_eq "sha256 after a failed --force convert" "$(sha256 old.vhdx)" "$before"
grep -q "removed the incomplete output; the existing destination was not changed" err || fail "message: $(cat err)"
ls -a | grep -q '\.tmp-' && fail "a failed convert left a temporary folder: $(ls -a)"
pass "an existing destination stays as it was when the replacing convert is killed or fails"

# vhdx create and vhdx hash -o, killed while stalled
echo 'op=write delay=20000' > slow.rules
"$VHDX" --faults slow.rules create --size 64M new.vhdx 2> err &
pid=$!
wait_for ".new.vhdx.tmp-$pid/new.vhdx" new.vhdx || { kill -9 $pid; fail "create: no output file: $(ls -a)"; }
sleep 0.3
kill -9 $pid
wait $pid 2>/dev/null
[ -e new.vhdx ] && fail "a killed create left new.vhdx behind"
rm -rf ".new.vhdx.tmp-$pid"
"$VHDX" create --size 64M new.vhdx || fail "create"
"$VHDX" check new.vhdx > /dev/null || fail "check of a created image"
ls -a | grep -q '\.tmp-' && fail "create left a temporary folder: $(ls -a)"
"$VHDX" hash -o man.txt src.vhdx || fail "hash -o"
"$VHDX" verify src.vhdx man.txt > /dev/null || fail "verify against the renamed manifest"
ls -a | grep -q '\.tmp-' && fail "hash -o left a temporary folder: $(ls -a)"
pass "create and hash -o: written under a temporary name, renamed when complete"

# standard output: written directly
"$VHDX" convert -O raw src.vhdx - > stdout.raw || fail "convert to standard output"
cmp stdout.raw ref.raw || fail "convert to standard output differs"
pass "standard output is still a plain stream"

# ---- the kill -9 loop
loops=${VHDX_KILL_LOOPS:-12}
seed=${VHDX_KILL_SEED:-$(date +%s)}
echo "kill -9 loop: $loops runs, seed $seed (VHDX_KILL_SEED=$seed VHDX_KILL_LOOPS=$loops to repeat)"
RANDOM=$seed
"$VHDX" convert -O vhdx -f raw ref.raw full.vhdx || fail "a complete conversion"
"$VHDX" convert -O raw full.vhdx full.raw || fail "full.vhdx -> raw"
cmp full.raw ref.raw || fail "the complete conversion differs"
for ((i = 0; i < loops; i++)); do
	out=k$i.vhdx
	"$VHDX" convert -O vhdx -f raw ref.raw "$out" 2> /dev/null &
	pid=$!
	sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	if [ -e "$out" ]; then
		"$VHDX" convert -O raw "$out" k.raw 2> err || fail "run $i (seed $seed): $out exists but does not read: $(cat err)"
		cmp -s k.raw ref.raw || fail "run $i (seed $seed): $out exists but is not the complete conversion"
		rm -f "$out" k.raw
	fi
	rm -rf ".$out".tmp-*
done
pass "kill -9 loop: $loops runs, no incomplete output at the destination"
