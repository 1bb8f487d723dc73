#!/bin/bash
# test-cycle-readfaults.sh - `vhdx cycle mount` with the read-fault mix of
# issue #15: `op=write struct=payload prob=0.05 seed=7 err=EIO`,
# `op=flush prob=0.05 seed=8 err=EIO`, `op=read prob=0.02 seed=9 err=EIO`,
# --seed 5, on a VHDX and a VHD: no cycle silent, unexpected, damaged or
# lost.  Before the fixes, EIO in the VHD footer probe at open was
# swallowed (silent cycles) and short= faults read back while mounted were
# "damaged".  A second mix adds `op=write prob=0.03 seed=11 short=3000`:
# cycles may be torn (allowed), never damaged.  60 cycles each by default
# (about 40 s); the issue's 200: VHDX_CYCLE_COUNT=200 (about 2.5 minutes).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
[ -x "$VHDX" ] || fail "$VHDX was not built"
count=${VHDX_CYCLE_COUNT:-60}
printf 'op=write struct=payload prob=0.05 seed=7 err=EIO\nop=flush prob=0.05 seed=8 err=EIO\nop=read prob=0.02 seed=9 err=EIO\n' > "$T/mix.rules"
printf 'op=write struct=payload prob=0.05 seed=7 err=EIO\nop=flush prob=0.05 seed=8 err=EIO\nop=read prob=0.02 seed=9 err=EIO\nop=write prob=0.03 seed=11 short=3000\n' > "$T/short.rules"

# cycles FMT RULES: runs the cycle and checks the classes
cycles() {
	local fmt="$1" rules="$2" rc=0 n
	rm -f "$T/c.$fmt"
	echo "vhdx cycle mount --image c.$fmt --count $count --faults $(basename "$rules") --seed 5"
	"$VHDX" cycle mount --image "$T/c.$fmt" --count "$count" --faults "$rules" --seed 5 --json > "$T/cycle.json" 2> "$T/cycle.err" || rc=$?
	grep -q "FUSE mounts are not allowed\|Operation not permitted" "$T/cycle.err" && skip "FUSE mounts are not allowed here"
	for c in silent unexpected damaged lost; do
		n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["summary"]["cycles_by_class"][sys.argv[2]])' "$T/cycle.json" "$c") ||
			fail "$fmt: no summary in the JSON report: $(tail -c 400 "$T/cycle.json") $(cat "$T/cycle.err")"
		expect_eq "$fmt ($(basename "$rules")): $c cycles" "$n" 0
	done
	expect_eq "$fmt ($(basename "$rules")): exit status" "$rc" 0
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["summary"]["cycles_by_class"]; print("  " + ", ".join("%s %d" % (k, v) for k, v in s.items()))' "$T/cycle.json"
}

requires python3
for fmt in vhdx vhd; do
	cycles "$fmt" "$T/mix.rules"
	pass "$fmt: $count cycles of the read-fault mix: none silent, damaged or lost"
	cycles "$fmt" "$T/short.rules"
	pass "$fmt: $count cycles with short writes too: torn at most, never damaged"
done
