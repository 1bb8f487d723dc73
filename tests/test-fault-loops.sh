#!/bin/bash
# test-fault-loops.sh - the SQLite loop for open, replay and create: fail the
# Nth I/O of the operation (once, then persistently from the Nth on), for
# N = 1, 2, ... until the operation gets through without meeting the fault.
# After every run the image must reopen without faults and be consistent:
#   open    a read-only open either fails naming the injected fault or reads
#           exactly the right bytes; the file never changes;
#   replay  an interrupted `vhdx replay` leaves an image whose next open
#           (read-only replay, or replay again) gives exactly the replayed bytes;
#   create  an interrupted `vhdx create` leaves no file at all, or one that
#           opens as the image asked for.
# (Write and flush loops of a write workload are in test-faults.sh.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3
crash="$top_builddir/tests/unit/test_crash_vhdx"
cd "$T"

# runs "$@" under the rules in file r; sets rc and hits (times the rule fired)
run_faulted() {
	"$VHDX" --faults r --fault-log log "$@" > out 2> err
	rc=$?
	hits=$(sed -n 's/.*# rule 1: hits=\([0-9]*\).*/\1/p' log)
	[ -n "$hits" ] || fail "no hit count in the fault log: $(cat log)"
	if [ $rc != 0 ]; then
		[ $rc = 1 ] || fail "'$*' exited $rc under '$(cat r)': $(cat err)"
		# a flipped bit is silent corruption: the error then names the damaged structure instead
		if grep -q "flip=" r; then
			[ -s err ] || fail "'$*' under '$(cat r)': failed without a message"
		else
			grep -q "injected" err || fail "'$*' under '$(cat r)': the error does not name the injected fault: $(cat err)"
		fi
	fi
}

# ---- open: every read of a read-only open of a chain
"$VHDX" create --size 16M --block-size 1M base.vhdx
head -c 3000000 /dev/urandom | "$VHDX" write --offset 100000 base.vhdx
"$VHDX" create --parent base.vhdx child.avhdx
head -c 700000 /dev/urandom | "$VHDX" write --offset 2000000 child.avhdx
"$VHDX" convert -O raw child.avhdx want.raw
sums=$(sha256sum base.vhdx child.avhdx)
for mode in "once err=EIO" "err=EIO" "flip=1 seed=3 once"; do
	n=1
	while :; do
		[ $n -le 300 ] || fail "open: op=read $mode still hit at call $n"
		printf 'op=read nth=%d %s\n' $n "$mode" > r
		[ "${mode#err=EIO}" != "$mode" ] && printf 'op=read after=%d err=EIO\n' $((n - 1)) > r
		run_faulted convert -O raw child.avhdx got.raw
		[ "$hits" = 0 ] && { [ $rc = 0 ] && cmp -s got.raw want.raw || fail "open: no fault at N=$n but wrong result"; break; }
		if [ $rc = 0 ] && [ "${mode#flip}" = "$mode" ]; then
			cmp -s got.raw want.raw || fail "open: op=read $mode at call $n: success with wrong bytes"
		fi
		n=$((n + 1))
	done
	echo "$sums" | sha256sum --quiet -c - || fail "open: a read-only open changed a file"
	if [ "${mode#flip}" = "$mode" ]; then
		pass "open: op=read $mode at each of calls 1..$((n - 1)): an error naming the fault, or the right bytes; files unchanged"
	else
		# a flipped bit is silent: success may give changed bytes; what must hold is no crash, a message on failure
		pass "open: op=read $mode at each of calls 1..$((n - 1)): no crash, every failure with a message; files unchanged"
	fi
done

# ---- replay: a small image with a dirty log from the crash test
[ -x "$crash" ] || skip "tests/unit/test_crash_vhdx was not built (cmocka missing)"
mkdir dumps
VHDX_CRASH_DUMP_DIR=dumps "$crash" > crash.log 2>&1 || fail "crash test: $(tail -3 crash.log)"
dirty=$(ls dumps/*.vhdx | tail -1)
[ -f "$dirty" ] || fail "no dirty image was dumped"
"$VHDX" convert -O raw "$dirty" replayed.raw    # read-only replay in memory
for op in write flush read; do
	for mode in "once err=EIO" "err=EIO" "crash"; do
		n=1
		while :; do
			[ $n -le 300 ] || fail "replay: op=$op $mode still hit at call $n"
			cp "$dirty" img.vhdx
			printf 'op=%s nth=%d %s\n' $op $n "$mode" > r
			[ "$mode" = "err=EIO" ] && printf 'op=%s after=%d err=EIO\n' $op $((n - 1)) > r
			run_faulted replay img.vhdx
			"$VHDX" convert -O raw img.vhdx got.raw 2> err2 || fail "replay: op=$op $mode at call $n: the image does not reopen: $(cat err2)"
			cmp -s got.raw replayed.raw || fail "replay: op=$op $mode at call $n: the reopened image reads other bytes"
			"$VHDX" replay img.vhdx > /dev/null 2> err2 || fail "replay: op=$op $mode at call $n: a second replay fails: $(cat err2)"
			"$VHDX" convert -O raw img.vhdx got.raw && cmp -s got.raw replayed.raw ||
				fail "replay: op=$op $mode at call $n: wrong bytes after the second replay"
			[ "$hits" = 0 ] && break
			n=$((n + 1))
		done
		pass "replay: op=$op $mode at each of calls 1..$((n - 1)): the image reopens with the replayed bytes"
	done
done

# ---- create: every write and flush of vhdx create (dynamic, fixed, and a child)
for spec in "dynamic:--size 40M" "fixed:--type fixed --size 8M --block-size 1M" "child:--parent base.vhdx" \
	"vhd:--size 12M"; do
	kind=${spec%%:*} args=${spec#*:}
	name=new.vhdx
	[ $kind = vhd ] && name=new.vhd
	for op in write flush; do
		for mode in "once err=EIO" "err=ENOSPC" "crash"; do
			n=1
			while :; do
				[ $n -le 300 ] || fail "create $kind: op=$op $mode still hit at call $n"
				rm -f new.vhdx new.vhd
				printf 'op=%s nth=%d %s\n' $op $n "$mode" > r
				[ "$mode" = "err=ENOSPC" ] && printf 'op=%s after=%d err=ENOSPC\n' $op $((n - 1)) > r
				run_faulted create $args $name
				if [ $rc != 0 ] && [ "$mode" != crash ]; then
					[ ! -e $name ] || fail "create $kind: op=$op $mode at call $n: a failed create left $name behind"
				elif [ -e $name ]; then
					# a crash may leave a file; it must be refused cleanly or open as asked
					if "$VHDX" info --json $name > info.json 2> err2; then
						[ $rc = 0 ] || [ "$mode" = crash ] || fail "create $kind: failed but left an image"
					elif [ $rc = 0 ]; then
						fail "create $kind: op=$op $mode at call $n: success, but the image does not open: $(cat err2)"
					else
						grep -q "$name" err2 || fail "create $kind: a half-created file is refused without naming it: $(cat err2)"
					fi
				fi
				[ "$hits" = 0 ] && { [ $rc = 0 ] || fail "create $kind: no fault at N=$n but create failed: $(cat err)"; break; }
				n=$((n + 1))
			done
			pass "create $kind: op=$op $mode at each of calls 1..$((n - 1)): no file, or a refused one, or a good image"
		done
	done
done
