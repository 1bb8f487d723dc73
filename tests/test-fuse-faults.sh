#!/bin/bash
# test-fuse-faults.sh - fault injection through a vhdxfs mount (issue #6),
# with dd on MNT/disk, for a VHDX and a VHD:
#  - `-o faults=FILE` with `op=read voff=1048576-1114111 err=EIO` fails
#    exactly the O_DIRECT reads (4 KiB and 64 KiB pieces, also straddling
#    ones) that touch that 64 KiB, with EIO; every other piece succeeds and
#    equals the bytes of `vhdx convert`; the counts in .vhdxfs/stats, the
#    lines of .vhdxfs/events and the rule's hit count all equal the number of
#    failed reads; events name the operation, layer file, offsets, structure;
#  - rules written to MNT/.vhdxfs/faults at run time take effect, several
#    lines at once, all or none (a bad line fails the write with EINVAL and
#    adds nothing), `remove N`, and `clear` removes them;
#  - write faults (op=write err=ENOSPC) fail dd writes on a rw mount with
#    "No space left on device", and the image stays intact;
#  - flip=1 on a read returns data that differs in exactly one bit;
#  - buffered reads: a rule change drops the kernel's cached pages of disk,
#    so rules meet pages read before them, and flipped pages do not outlive
#    their rule;
#  - delay=MS delays the reads it matches and no others;
#  - a bad rules file exits 2 naming the file and line, nothing mounted;
#  - -o fault-log=FILE holds every event after the unmount;
#  - a mount without rules still splices reads (zero copy).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires cmp od

MNT="$T/mnt"
mkdir -p "$MNT"
MiB=1048576
FLO=1048576               # the faulted range [FLO, FHI]
FHI=1114111
stat_val() { sed -n "s/^$1=//p" "$MNT/.vhdxfs/stats"; }
n_events() { grep -c '^seq=' "$MNT/.vhdxfs/events"; }
# piece OFF LEN: O_DIRECT read of LEN bytes at OFF of MNT/disk into $T/piece
piece() { dd if="$MNT/disk" of="$T/piece" bs="$2" count=1 skip="$1" iflag=direct,skip_bytes status=none 2> "$T/dd.err"; }
ref() { dd if="$T/ref.raw" bs="$2" count=1 skip="$1" iflag=skip_bytes status=none; }

# ---- a bad rules file: exit 2, naming the file and the line, nothing mounted
printf 'op=read err=EIO\n# fine so far\nop=read voff=1M-2M errr=EIO\n' > "$T/bad.rules"
"$VHDX" create --size 16M "$T/x.vhdx" || fail "vhdx create"
"$VHDXFS" -f -o faults="$T/bad.rules" "$T/x.vhdx" "$MNT" > "$T/out" 2> "$T/err" && fail "a bad rules file was accepted"
rc=$?
expect_eq "exit status for a bad rules file" "$rc" 2
grep -q "$T/bad.rules line 3: .*errr" "$T/err" || fail "the message does not name the file and line 3: $(cat "$T/err")"
fuse_is_mounted "$MNT" && fail "a bad rules file left a mount behind"
"$VHDXFS" -f -o faults="$T/missing.rules" "$T/x.vhdx" "$MNT" > "$T/out" 2> "$T/err" && fail "a missing rules file was accepted"
grep -q "missing.rules" "$T/err" || fail "missing rules file: $(cat "$T/err")"
pass "bad or missing rules files exit 2 with the file and line, nothing mounted"

for fmt in vhdx vhd; do
	img="$T/disk.$fmt"
	# 8 MiB of data from 0: every range the rules name is allocated (a
	# voff rule matches payload I/O, and unallocated ranges have none).
	"$VHDX" create --size 32M "$img" || fail "$fmt: vhdx create"
	head -c $((8 * MiB)) /dev/urandom > "$T/data"
	"$VHDX" write --offset 0 "$img" < "$T/data" || fail "$fmt: vhdx write"
	"$VHDX" convert -O raw "$img" "$T/ref.raw" || fail "$fmt: vhdx convert"
	cmp -n $((8 * MiB)) "$T/data" "$T/ref.raw" || fail "$fmt: the reference differs from the written data"

	# ---- no rules: zero copy still works (the engine is idle)
	fuse_mount "$MNT" "$img"
	z0=$(stat_val zero_copy_reads)
	dd if="$MNT/disk" of=/dev/null bs=64K count=4 skip=40 iflag=direct status=none || fail "$fmt: read without rules"
	[ $(($(stat_val zero_copy_reads) - z0)) -ge 1 ] || fail "$fmt: a mount without fault rules no longer splices reads"
	expect_eq "$fmt: faults_rules without rules" "$(stat_val faults_rules)" 0
	expect_eq "$fmt: faults file without rules" "$(cat "$MNT/.vhdxfs/faults")" ""
	expect_eq "$fmt: events without rules" "$(cat "$MNT/.vhdxfs/events")" ""
	fuse_unmount "$MNT"

	# ---- -o faults: a 64 KiB virtual range fails to read, nothing else
	echo "op=read voff=$FLO-$FHI err=EIO" > "$T/read.rules"
	fuse_mount "$MNT" "$img" -o faults="$T/read.rules",fault-log="$T/fault.log"
	grep -qx "op=read voff=$FLO-$FHI err=EIO  # rule 1: hits=0 matched=0" "$MNT/.vhdxfs/faults" ||
		fail "$fmt: faults listing at mount: $(cat "$MNT/.vhdxfs/faults")"
	failed=0 good=0
	check_pieces() { # LEN FIRST LAST STEP
		local len=$1 off
		for ((off = $2; off <= $3; off += $4)); do
			if piece "$off" "$len"; then
				((off + len - 1 < FLO || off > FHI)) || fail "$fmt: read of $len at $off inside the faulted range succeeded"
				ref "$off" "$len" | cmp -s - "$T/piece" || fail "$fmt: read of $len at $off gave wrong bytes"
				good=$((good + 1))
			else
				((off + len - 1 < FLO || off > FHI)) && fail "$fmt: read of $len at $off outside the faulted range failed: $(cat "$T/dd.err")"
				grep -q "Input/output error" "$T/dd.err" || fail "$fmt: read at $off failed without EIO: $(cat "$T/dd.err")"
				failed=$((failed + 1))
			fi
		done
	}
	check_pieces 4096 $((FLO - 64 * 1024)) $((FHI + 64 * 1024)) 4096   # 4 KiB pieces around it
	check_pieces 65536 0 $((4 * MiB)) 32768                              # 64 KiB pieces, half of them straddling
	check_pieces 512 $((FLO - 1024)) $((FLO + 1024)) 512                 # the edges, to the sector
	check_pieces 512 $((FHI - 1535)) $((FHI + 1025)) 512
	# pieces touching the range: 16 of 4 KiB, 3 of 64 KiB (at 992K, 1M, 1056K), 3 + 3 sectors at the edges
	expect_eq "$fmt: failed reads" "$failed" 25
	expect_eq "$fmt: faults_injected" "$(stat_val faults_injected)" "$failed"
	expect_eq "$fmt: faults_read" "$(stat_val faults_read)" "$failed"
	expect_eq "$fmt: fault_rule1_hits" "$(stat_val fault_rule1_hits)" "$failed"
	expect_eq "$fmt: errors_EIO" "$(stat_val errors_EIO)" "$failed"
	expect_eq "$fmt: event lines" "$(n_events)" "$failed"
	bad=$(grep -cv "^seq=[0-9]* t=[0-9.]* rule=1 op=read file=$img off=0x[0-9a-f]* len=[0-9]* voff=0x[0-9a-f]* struct=payload action=err errno=EIO reread=\(yes\|no\)$" "$MNT/.vhdxfs/events")
	expect_eq "$fmt: event lines of another shape" "$bad" 0
	# every event's virtual range overlaps the faulted one
	while read -r v l; do
		((v <= FHI && v + l - 1 >= FLO)) || fail "$fmt: an event at voff $v len $l is outside the range"
	done < <(sed -n 's/.* len=\([0-9]*\) voff=\(0x[0-9a-f]*\) .*/\2 \1/p' "$MNT/.vhdxfs/events" |
		while read -r v l; do echo "$((v)) $l"; done)
	grep -q "^last_error=EIO: .*$(basename "$img"): reading payload at offset 0x[0-9a-f]* ([0-9]* bytes): injected EIO (fault rule 1; virtual disk bytes 0x" \
		"$MNT/.vhdxfs/stats" || fail "$fmt: last_error does not name the file, structure and offset: $(stat_val last_error)"
	pass "$fmt: -o faults: exactly the $failed reads touching [$FLO, $FHI] fail with EIO, $good others give the right bytes; stats, events and hits agree"

	# ---- runtime rules: clear, add, several lines, all or none, remove
	echo clear > "$MNT/.vhdxfs/faults" || fail "$fmt: clear"
	expect_eq "$fmt: rules after clear" "$(cat "$MNT/.vhdxfs/faults")" ""
	piece $FLO 4096 || fail "$fmt: read after clear: $(cat "$T/dd.err")"
	expect_eq "$fmt: faults_injected after clear" "$(stat_val faults_injected)" "$failed"
	# cat writes the file with one write() (bash's printf builtin may write line by line)
	printf 'op=read voff=3M+4K err=EIO\nop=read voff=5M+4K err=ETIMEDOUT once\n' > "$T/two.rules"
	cat "$T/two.rules" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding two rules at once"
	[ "$(grep -c '# rule' "$MNT/.vhdxfs/faults")" = 2 ] || fail "$fmt: two lines did not add two rules: $(cat "$MNT/.vhdxfs/faults")"
	printf 'op=read voff=6M+4K err=EIO\nop=read colour=blue\n' > "$T/bad2.rules"
	if cat "$T/bad2.rules" > "$MNT/.vhdxfs/faults" 2> "$T/err"; then
		fail "$fmt: a write with a bad line succeeded"
	fi
	grep -q "Invalid argument" "$T/err" || fail "$fmt: a bad line did not fail with EINVAL: $(cat "$T/err")"
	[ "$(grep -c '# rule' "$MNT/.vhdxfs/faults")" = 2 ] || fail "$fmt: a refused write added rules: $(cat "$MNT/.vhdxfs/faults")"
	grep -q "^faults_last_error=faults line 2: .*colour" "$MNT/.vhdxfs/stats" || fail "$fmt: faults_last_error: $(stat_val faults_last_error)"
	piece $((6 * MiB)) 4096 || fail "$fmt: the good line of a refused write was added"
	piece $((3 * MiB)) 4096 && fail "$fmt: a rule added at run time did not fail the read"
	grep -q "Input/output error" "$T/dd.err" || fail "$fmt: runtime rule: $(cat "$T/dd.err")"
	piece $((3 * MiB + 4096)) 4096 || fail "$fmt: runtime rule failed a read outside its range"
	piece $((5 * MiB)) 4096 && fail "$fmt: the once rule did not fire"
	grep -q "Connection timed out" "$T/dd.err" || fail "$fmt: err=ETIMEDOUT: $(cat "$T/dd.err")"
	piece $((5 * MiB)) 4096 || fail "$fmt: the once rule fired twice"
	grep -qx "op=read voff=3M+4K err=EIO  # rule 2: hits=1 matched=1" "$MNT/.vhdxfs/faults" ||
		fail "$fmt: runtime rule listing: $(cat "$MNT/.vhdxfs/faults")"
	grep -qx "op=read voff=5M+4K err=ETIMEDOUT once  # rule 3: hits=1 matched=2" "$MNT/.vhdxfs/faults" ||
		fail "$fmt: once rule listing: $(cat "$MNT/.vhdxfs/faults")"
	echo "remove 2" > "$MNT/.vhdxfs/faults" || fail "$fmt: remove 2"
	piece $((3 * MiB)) 4096 || fail "$fmt: read after remove 2: $(cat "$T/dd.err")"
	echo "remove 2" > "$MNT/.vhdxfs/faults" 2> /dev/null && fail "$fmt: removing a removed rule succeeded"
	echo clear > "$MNT/.vhdxfs/faults" || fail "$fmt: clear"
	total=$((failed + 2))
	expect_eq "$fmt: faults_injected" "$(stat_val faults_injected)" "$total"
	expect_eq "$fmt: event lines" "$(n_events)" "$total"
	expect_eq "$fmt: faults_rules after clear" "$(stat_val faults_rules)" 0
	grep -q "^seq=$total .* rule=3 op=read .* struct=payload action=err errno=ETIMEDOUT reread=\(yes\|no\)$" "$MNT/.vhdxfs/events" ||
		fail "$fmt: the last event: $(tail -1 "$MNT/.vhdxfs/events")"
	pass "$fmt: rules written at run time take effect, several lines all or none, remove and clear work"

	# ---- flip=1 on a read: exactly one bit differs; the call succeeds
	echo "op=read voff=2M+64K flip=1 seed=11" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding a flip rule"
	piece $((2 * MiB)) 65536 || fail "$fmt: the flipped read failed: $(cat "$T/dd.err")"
	cmp -l "$T/piece" <(ref $((2 * MiB)) 65536) > "$T/cmp" || true
	expect_eq "$fmt: bytes differing after flip=1" "$(wc -l < "$T/cmp")" 1
	read -r _ a b < "$T/cmp"
	x=$((8#$a ^ 8#$b))
	((x != 0 && (x & (x - 1)) == 0)) || fail "$fmt: the differing byte differs in more than one bit ($a vs $b)"
	grep -q "rule=$((4)) op=read .* action=flip bits=" "$MNT/.vhdxfs/events" || fail "$fmt: no flip event: $(tail -1 "$MNT/.vhdxfs/events")"
	echo clear > "$MNT/.vhdxfs/faults"
	piece $((2 * MiB)) 65536 && ref $((2 * MiB)) 65536 | cmp -s - "$T/piece" || fail "$fmt: wrong bytes after the flip rule was cleared"
	pass "$fmt: flip=1 on a read gives data differing in exactly one bit"

	# ---- buffered reads: pages the kernel cached before a rule change must
	# meet the new rules (EIO), and pages a flip rule corrupted must not
	# outlive the rule.  Every check above reads with O_DIRECT, which never
	# uses the page cache.
	cached() { dd if="$MNT/disk" of="$T/piece" bs=64K count=1 skip="$1" iflag=skip_bytes status=none 2> "$T/dd.err"; }
	cached $((7 * MiB)) && ref $((7 * MiB)) 65536 | cmp -s - "$T/piece" || fail "$fmt: buffered read before the rule"
	echo "op=read voff=7M+64K err=EIO" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding a rule over cached pages"
	cached $((7 * MiB)) && fail "$fmt: a buffered read of cached pages succeeded under op=read err=EIO"
	grep -q "Input/output error" "$T/dd.err" || fail "$fmt: buffered read under the rule: $(cat "$T/dd.err")"
	echo "op=read voff=7M+64K flip=1 seed=5" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding a flip rule"
	echo "remove 5" > "$MNT/.vhdxfs/faults" || fail "$fmt: remove 5: $(cat "$MNT/.vhdxfs/faults")"
	cached $((7 * MiB)) || fail "$fmt: buffered read under the flip rule: $(cat "$T/dd.err")"
	cmp -s "$T/piece" <(ref $((7 * MiB)) 65536) && fail "$fmt: flip=1 did not change a buffered read"
	echo clear > "$MNT/.vhdxfs/faults"
	cached $((7 * MiB)) && ref $((7 * MiB)) 65536 | cmp -s - "$T/piece" ||
		fail "$fmt: a buffered read after clear still returns the flipped bytes"
	pass "$fmt: buffered reads: a rule change drops the kernel's cached pages (EIO on cached pages; no flipped page outlives its rule)"

	# ---- delay: the matching read waits, the others do not
	echo "op=read voff=4M+4K delay=400" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding a delay rule"
	t0=$(date +%s%N); piece $((4 * MiB)) 4096 || fail "$fmt: delayed read failed"; t1=$(date +%s%N)
	piece $((4 * MiB + 8192)) 4096 || fail "$fmt: read beside the delay failed"; t2=$(date +%s%N)
	((t1 - t0 >= 400000000)) || fail "$fmt: the delayed read took $(((t1 - t0) / 1000000)) ms, not 400"
	((t2 - t1 < 300000000)) || fail "$fmt: a read outside the delay rule took $(((t2 - t1) / 1000000)) ms"
	ref $((4 * MiB + 8192)) 4096 | cmp -s - "$T/piece" || fail "$fmt: wrong bytes beside the delay rule"
	grep -q "op=read .* voff=0x400000 struct=payload action=delay ms=400$" "$MNT/.vhdxfs/events" ||
		fail "$fmt: no delay event: $(tail -1 "$MNT/.vhdxfs/events")"
	echo clear > "$MNT/.vhdxfs/faults"
	pass "$fmt: delay=400 delays the matching read by $(((t1 - t0) / 1000000)) ms, the next took $(((t2 - t1) / 1000000)) ms"
	n_before_unmount=$(n_events)
	fuse_unmount "$MNT"
	expect_eq "$fmt: events in the fault log" "$(grep -c '^seq=' "$T/fault.log")" "$n_before_unmount"
	grep -q "^# rules$" "$T/fault.log" && grep -q "^# events$" "$T/fault.log" || fail "$fmt: fault log: $(cat "$T/fault.log")"

	# ---- write faults on a rw mount: dd fails with ENOSPC, the image stays as it was
	fuse_mount "$MNT" "$img" -o rw
	head -c 65536 /dev/urandom > "$T/w"
	echo "op=write struct=payload err=ENOSPC" > "$MNT/.vhdxfs/faults" || fail "$fmt: adding a write rule"
	dd if="$T/w" of="$MNT/disk" bs=64K seek=16 oflag=direct conv=notrunc,fsync status=none 2> "$T/err" &&
		fail "$fmt: a write under op=write err=ENOSPC succeeded"
	grep -q "No space left on device" "$T/err" || fail "$fmt: write fault: $(cat "$T/err")"
	grep -q "^last_error=ENOSPC: .*writing payload at offset 0x[0-9a-f]* ([0-9]* bytes): injected ENOSPC" "$MNT/.vhdxfs/stats" ||
		fail "$fmt: last_error after the write fault: $(stat_val last_error)"
	nw=$(stat_val faults_write)
	[ "$nw" -ge 1 ] || fail "$fmt: faults_write=$nw"
	expect_eq "$fmt: errors_ENOSPC" "$(stat_val errors_ENOSPC)" 1
	echo clear > "$MNT/.vhdxfs/faults"
	dd if="$T/w" of="$MNT/disk" bs=64K seek=20 oflag=direct conv=notrunc,fsync status=none 2> "$T/err" ||
		fail "$fmt: a write after clear failed: $(cat "$T/err")"
	fuse_unmount "$MNT"
	"$VHDX" convert -O raw "$img" "$T/after.raw" || fail "$fmt: convert after the write faults"
	dd if="$T/w" of="$T/ref.raw" bs=64K seek=20 conv=notrunc status=none
	# the failed write's 64 KiB may hold old or new bytes; everything else must be exact
	cmp -n $((MiB)) "$T/after.raw" "$T/ref.raw" || fail "$fmt: bytes before the failed write changed"
	cmp -i $((17 * 65536)) "$T/after.raw" "$T/ref.raw" || fail "$fmt: bytes after the failed write differ"
	dd if="$T/after.raw" bs=64K skip=16 count=1 status=none > "$T/slot"
	cmp -s "$T/slot" "$T/w" || ref $MiB 65536 | cmp -s - "$T/slot" ||
		fail "$fmt: the failed write's range holds neither the old nor the new bytes"
	pass "$fmt: op=write err=ENOSPC fails dd writes with ENOSPC; the image keeps everything else"
done
