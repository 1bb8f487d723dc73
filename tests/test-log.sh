#!/bin/bash
# test-log.sh - VHDX log replay (MS-VHDX 2.3) with the real tool, against
# qemu and against the conformance image with a dirty log:
#
#  1. (qemu-img, qemu-io) dirty logs made by qemu itself: a blkdebug rule
#     fails qemu's in-place BAT write after its log entry is durable, which
#     leaves the entry unreplayed; and qemu-io killed with SIGKILL mid-write
#     (dirty about one time in four).  Our read-only read must equal qemu's
#     replay (`qemu-img check -r all`), the file must stay byte-identical,
#     and our in-place `vhdx replay` must give a file qemu finds clean and
#     reads the same.
#  2. (conformance) dirtylog-10G.vhdx: read-only reads to the manifest's
#     raw_sha256 without changing the file; `vhdx info` says replayed in
#     memory; `vhdx info --log` lists the entry; `vhdx replay` on a copy
#     clears the LogGuid, qemu-img check is clean, the raw hash still holds
#     (by equality with the hashed read-only read; VHDX_SLOW_TESTS=1 hashes
#     it again) and the copy equals qemu's own replay of another copy.
#  3. A damaged entry is never replayed and never hidden: the diagnostic
#     names the entry, its log offset and the failed rule.
#
# The facts about dirtylog-10G.vhdx checked below (one entry of LogGuid
# c82755bc-..., seq 7, at log offset 0xc000 with Tail 0xc000, 8 KiB, one
# data descriptor for the BAT page at 0x200000, FlushedFileOffset
# 0x1e00000) were read from the file with a separate Python struct dump,
# and agree with the manifest ("one live entry adds BAT entry for block 17":
# entry 17 lies in the BAT page at 0x200000).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
[ -x "$VHDX" ] || fail "$VHDX was not built"

have_qemu=yes
command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1 || have_qemu=no
have_conf=yes
[ -f "$CONFORMANCE/MANIFEST.tsv" ] && command -v xz >/dev/null 2>&1 || have_conf=no
[ $have_qemu = yes ] || [ $have_conf = yes ] ||
	skip "neither qemu-img/qemu-io nor the conformance images (at $CONFORMANCE) are available"

# log_guids FILE: the LogGuid of both header slots from `vhdx info --json` (one line)
log_guids() {
	"$VHDX" info --json "$1" 2> "$T/err" | grep -o '"log_guid":"[0-9a-f-]*"' | cut -d'"' -f4 | tr '\n' ' ' ||
		fail "vhdx info --json $1: $(cat "$T/err")"
}
ZERO_GUIDS="00000000-0000-0000-0000-000000000000 00000000-0000-0000-0000-000000000000 "

# info_field FILE KEY: the value of the first "KEY: value" line of `vhdx info` (text)
info_field() {
	"$VHDX" info "$1" 2> "$T/err" | sed -n "s/^ *$2: //p" | head -n 1
}

# ---------------------------------------------------------------- 1. qemu's own dirty logs
if [ $have_qemu = yes ]; then
	# qemu's read of a dirty image after its own replay, on a copy; then ours
	# read-only on the original; byte for byte equal, original untouched
	compare_with_qemu() {
		local img=$1 what=$2 before
		before=$(sha256 "$img")
		cp "$img" "$T/q.vhdx"
		qemu-img check -q -r all "$T/q.vhdx" > "$T/qcheck" 2>&1 || true
		qemu-img convert -f vhdx -O raw "$T/q.vhdx" "$T/qemu.raw" 2> "$T/err" ||
			fail "$what: qemu-img convert of qemu's replay failed: $(cat "$T/err")"
		"$VHDX" convert -O raw "$img" "$T/ours.raw" 2> "$T/err" ||
			fail "$what: vhdx convert (read-only open of the dirty image) failed: $(cat "$T/err")"
		cmp -s "$T/qemu.raw" "$T/ours.raw" || fail "$what: our read-only read differs from qemu's replay"
		expect_eq "$what: sha256 of the image after our read-only open" "$(sha256 "$img")" "$before"
		rm -f "$T/qemu.raw" "$T/ours.raw"
	}

	qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$T/base.vhdx" 64M ||
		fail "qemu-img create failed"
	bat_off=$("$VHDX" info --json "$T/base.vhdx" | grep -o '"bat":{"offset":[0-9]*' | grep -o '[0-9]*$')
	[ -n "$bat_off" ] || fail "no BAT offset in vhdx info --json of a qemu-made image"

	# qemu journals the BAT page, flushes, then writes the page in place: fail that write
	cat > "$T/rules.cfg" <<EOF
[inject-error]
event = "pwritev"
errno = "5"
sector = "$((bat_off / 512))"
once = "on"
EOF
	cp "$T/base.vhdx" "$T/d.vhdx"
	qemu-io --image-opts "driver=vhdx,file.driver=blkdebug,file.config=$T/rules.cfg,file.image.driver=file,file.image.filename=$T/d.vhdx" \
		-c 'write -P 0x5a 0 1M' > "$T/out" 2>&1 && fail "the blkdebug rule did not make qemu's write fail: $(cat "$T/out")"
	guids=$(log_guids "$T/d.vhdx")
	[ "$guids" != "$ZERO_GUIDS" ] || fail "qemu left no dirty log (LogGuids: $guids)"
	expect_eq "state of qemu's dirty log" "$(info_field "$T/d.vhdx" state)" "dirty, replayed"
	info_field "$T/d.vhdx" replay | grep -Eq '^replayed 1 entry \(seq [0-9]+\.\.[0-9]+, 1 descriptor: 1 data, 0 zero\) from log offset 0x[0-9a-f]+ into memory \(the file is untouched\)$' ||
		fail "replay report: $(info_field "$T/d.vhdx" replay)"
	compare_with_qemu "$T/d.vhdx" "blkdebug dirty log"
	# what was written is there (0x5a), independently of both readers' replay logic
	"$VHDX" convert -O raw "$T/d.vhdx" "$T/d.raw" 2> "$T/err" || fail "vhdx convert: $(cat "$T/err")"
	cmp -s <(head -c 1048576 "$T/d.raw") <(head -c 1048576 /dev/zero | tr '\0' '\132') ||
		fail "blkdebug dirty log: the first MiB does not read as 0x5a"
	rm -f "$T/d.raw"
	pass "qemu-made dirty log (blkdebug): read-only read equals qemu's replay, file untouched"

	# our in-place replay: qemu finds the result clean and reads it like its own replay
	cp "$T/d.vhdx" "$T/r.vhdx"
	"$VHDX" replay "$T/r.vhdx" > "$T/out" 2> "$T/err" || fail "vhdx replay failed: $(cat "$T/err")"
	grep -Eq "^$T/r.vhdx: replayed 1 entry \(seq [0-9]+\.\.[0-9]+, 1 descriptor: 1 data, 0 zero\) from log offset 0x[0-9a-f]+ in place; LogGuid cleared$" "$T/out" ||
		fail "vhdx replay said: $(cat "$T/out")"
	expect_eq "LogGuids after vhdx replay" "$(log_guids "$T/r.vhdx")" "$ZERO_GUIDS"
	qemu-img check "$T/r.vhdx" > "$T/out" 2>&1 || fail "qemu-img check after vhdx replay: $(cat "$T/out")"
	qemu-img compare -q -f vhdx -F vhdx "$T/r.vhdx" "$T/q.vhdx" || fail "our in-place replay differs from qemu's"
	pass "vhdx replay of a qemu-made dirty log: clean for qemu-img check, same disk as qemu's replay"

	# SIGKILL in the middle of qemu-io writes: whatever state that leaves, we and qemu must agree
	dirty=0
	for delay in 0.15 0.25 0.35 0.45 0.55 0.65; do
		qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$T/k.vhdx" 96M
		qemu-io -f vhdx -c 'write -P 0x33 0 80M' "$T/k.vhdx" > /dev/null 2>&1 &
		pid=$!
		sleep "$delay"
		kill -9 "$pid" 2> /dev/null || true
		wait "$pid" 2> /dev/null || true
		[ "$(log_guids "$T/k.vhdx")" = "$ZERO_GUIDS" ] || dirty=$((dirty + 1))
		compare_with_qemu "$T/k.vhdx" "qemu-io killed after ${delay}s"
	done
	pass "qemu-io killed mid-write 6 times ($dirty left a dirty log): our read-only read equals qemu's replay each time"
else
	echo "qemu-img/qemu-io not installed: skipping the qemu-made dirty logs"
fi

# ---------------------------------------------------------------- 2. dirtylog-10G.vhdx
if [ $have_conf != yes ]; then
	echo "conformance images not found at $CONFORMANCE: skipping dirtylog-10G.vhdx"
	exit 0
fi
name=dirtylog-10G.vhdx
raw_sha=$(manifest_field "$name.xz" raw_sha256)
file_sha=$(manifest_field "$name.xz" file_sha256)
[ ${#raw_sha} = 64 ] && [ ${#file_sha} = 64 ] || fail "$name: no hashes in MANIFEST.tsv"
img=$(conformance_image "$name")
expect_eq "$name: sha256 of the decompressed file" "$(sha256 "$img")" "$file_sha"

got=$("$VHDX" convert -O raw "$img" - 2> "$T/err" | sha256_stdin) || fail "$name: vhdx convert failed: $(cat "$T/err")"
expect_eq "$name: sha256 of the raw disk read read-only (log replayed in memory)" "$got" "$raw_sha"
expect_eq "$name: sha256 of the file after the read-only open" "$(sha256 "$img")" "$file_sha"
pass "$name read-only: manifest raw hash, file unchanged"

expect_eq "$name: log state" "$(info_field "$img" state)" "dirty, replayed"
expect_eq "$name: replay report" "$(info_field "$img" replay)" \
	"replayed 1 entry (seq 7..7, 1 descriptor: 1 data, 0 zero) from log offset 0xc000 into memory (the file is untouched)"
"$VHDX" info --log "$img" > "$T/log.txt" 2> "$T/err" || fail "$name: vhdx info --log failed: $(cat "$T/err")"
sed -n '/log_sequence:/,$p' "$T/log.txt" | sed 's/^ *//' | grep -v '^-$' > "$T/log.got"
cat > "$T/log.want" <<'EOF'
log_sequence:
state: active sequence
valid_entries: 1
acceptable_sequences: 1
entries:
log_offset: 0xc000
sequence_number: 7
tail: 0xc000
length: 8192
descriptor_count: 1
flushed_file_offset: 0x1e00000
last_file_offset: 0x1e00000
descriptors:
type: data
target: 0x200000
length: 4096
EOF
diff "$T/log.want" "$T/log.got" > "$T/diff" || fail "$name: vhdx info --log: $(cat "$T/diff")"
"$VHDX" info --log --json "$img" | grep -q '"entries":\[{"log_offset":49152,"sequence_number":7,"tail":49152,"length":8192,"descriptor_count":1,' ||
	fail "$name: vhdx info --log --json does not list the entry"
expect_eq "$name: sha256 of the file after vhdx info" "$(sha256 "$img")" "$file_sha"
pass "$name: vhdx info shows the dirty log replayed in memory; --log lists its entry"

# in-place replay on a copy
cp "$img" "$T/c1.vhdx"
"$VHDX" replay "$T/c1.vhdx" > "$T/out" 2> "$T/err" || fail "vhdx replay $name: $(cat "$T/err")"
expect_eq "vhdx replay output" "$(cat "$T/out")" \
	"$T/c1.vhdx: replayed 1 entry (seq 7..7, 1 descriptor: 1 data, 0 zero) from log offset 0xc000 in place; LogGuid cleared"
expect_eq "LogGuids after vhdx replay" "$(log_guids "$T/c1.vhdx")" "$ZERO_GUIDS"
expect_eq "log state after vhdx replay" "$(info_field "$T/c1.vhdx" state)" "clean"
"$VHDX" replay "$T/c1.vhdx" > "$T/out" 2> "$T/err" || fail "second vhdx replay: $(cat "$T/err")"
expect_eq "second vhdx replay" "$(cat "$T/out")" "$T/c1.vhdx: log is clean, nothing to replay"
"$VHDX" replay --json "$T/c1.vhdx" > "$T/out" 2> "$T/err" || fail "vhdx replay --json: $(cat "$T/err")"
grep -q '"log_was_dirty":false,"replayed":false,"report":"log is clean, nothing to replay"' "$T/out" ||
	fail "vhdx replay --json: $(cat "$T/out")"
# The raw hash still holds.  Hashing 10 GiB again costs 15-40 s, so by default this is
# proven by equality with the read-only read hashed above: the same extent map (the
# zero extents read as zeros either way) and the same bytes in the data extents.
# VHDX_SLOW_TESTS=1 hashes the whole disk again.
if [ "${VHDX_SLOW_TESTS:-0}" = 1 ]; then
	got=$("$VHDX" convert -O raw "$T/c1.vhdx" - 2> "$T/err" | sha256_stdin) || fail "vhdx convert after replay: $(cat "$T/err")"
	expect_eq "sha256 of the raw disk after vhdx replay" "$got" "$raw_sha"
else
	"$VHDX" map "$img" > "$T/map.ro" 2> "$T/err" || fail "vhdx map $name: $(cat "$T/err")"
	"$VHDX" map "$T/c1.vhdx" > "$T/map.rw" 2> "$T/err" || fail "vhdx map after replay: $(cat "$T/err")"
	cmp -s "$T/map.ro" "$T/map.rw" || fail "the extent map after vhdx replay differs from the read-only (replayed in memory) one"
	last=$(tail -n 1 "$T/map.ro")
	[ "${last##* }" = zero ] || fail "$name: the map does not end with a zero extent: $last"
	data_end=$((${last%% *}))
	"$VHDX" convert -O raw "$img" "$T/ro.raw" 2> "$T/err" || fail "vhdx convert $name: $(cat "$T/err")"
	"$VHDX" convert -O raw "$T/c1.vhdx" "$T/rw.raw" 2> "$T/err" || fail "vhdx convert after replay: $(cat "$T/err")"
	cmp -s <(head -c "$data_end" "$T/ro.raw") <(head -c "$data_end" "$T/rw.raw") ||
		fail "the data extents after vhdx replay differ from the read-only read"
	rm -f "$T/ro.raw" "$T/rw.raw"
fi
if [ $have_qemu = yes ]; then
	qemu-img check "$T/c1.vhdx" > "$T/out" 2>&1 || fail "qemu-img check after vhdx replay: $(cat "$T/out")"
	cp "$img" "$T/c2.vhdx"
	qemu-img check -q -r all "$T/c2.vhdx" > /dev/null 2>&1 || true
	expect_eq "LogGuids after qemu-img check -r all" "$(log_guids "$T/c2.vhdx")" "$ZERO_GUIDS"
	qemu-img compare -q -f vhdx -F vhdx "$T/c1.vhdx" "$T/c2.vhdx" || fail "our in-place replay of $name differs from qemu's"
	rm -f "$T/c2.vhdx"
fi
rm -f "$T/c1.vhdx"
pass "vhdx replay $name: LogGuid zero, raw hash holds, same disk as qemu-img check -r all"

# ---------------------------------------------------------------- 3. damaged entries
# damaged OFFSET BYTES RULE: BYTES (printf format, "" = flip the byte) at file OFFSET of a copy;
# RULE = the start of the reason the report must give
damaged() {
	local before report b
	cp "$img" "$T/c3.vhdx"
	if [ -z "$2" ]; then
		b=$(od -An -tu1 -j $(($1)) -N1 "$T/c3.vhdx" | tr -d ' ')
		printf "\\$(printf %o $((255 - b)))" | dd of="$T/c3.vhdx" bs=1 seek=$(($1)) conv=notrunc status=none
	else
		printf "$2" | dd of="$T/c3.vhdx" bs=1 seek=$(($1)) conv=notrunc status=none
	fi
	cmp -s "$img" "$T/c3.vhdx" && fail "damaged ($3): the copy was not changed"
	before=$(sha256 "$T/c3.vhdx")
	expect_eq "damaged ($3): log state" "$(info_field "$T/c3.vhdx" state)" "dirty"
	report=$(info_field "$T/c3.vhdx" replay)
	case "$report" in
	"dirty log, no valid sequence: 1 entry carries the LogGuid but fails a check (log entry at log offset 0xc000: $3"*"); nothing replayed") ;;
	*) fail "damaged ($3): report: $report" ;;
	esac
	# the read goes on with the BAT as stored: block 17 absent (zeros), as qemu reads it too
	"$VHDX" convert -O raw "$T/c3.vhdx" "$T/c3.raw" 2> "$T/err" || fail "damaged ($3): vhdx convert: $(cat "$T/err")"
	cmp -s <(head -c $((17 << 20)) "$T/c3.raw") <(head -c $((17 << 20)) /dev/zero | tr '\0' '\245') ||
		fail "damaged ($3): blocks 0-16 do not read as 0xa5"
	cmp -s <(dd if="$T/c3.raw" bs=1M skip=17 count=3 status=none) <(head -c $((3 << 20)) /dev/zero) ||
		fail "damaged ($3): block 17 is not the stale (absent) block"
	expect_eq "damaged ($3): sha256 after reading" "$(sha256 "$T/c3.vhdx")" "$before"
	rm -f "$T/c3.vhdx" "$T/c3.raw"
}
# log at 0x100000, entry at +0xc000: its data sector (+0x1000) payload, then its signature
damaged $((0x100000 + 0xc000 + 0x1000 + 100)) "" "CRC-32C mismatch"
damaged $((0x100000 + 0xc000 + 0x1000)) 'DATA' 'data sector 0 (entry offset 0x1000): signature is not "data"'
pass "damaged log entries: not replayed, reported with the entry's log offset and rule, file untouched"
