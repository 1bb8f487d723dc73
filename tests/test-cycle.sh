#!/bin/bash
# test-cycle.sh - `vhdx cycle mount` (issue #6): the MARS scratch-disk cycle.
#  - --help has the man-page sections, the classes and the Windows codes;
#    usage errors and bad rules files exit 2 naming the file and line;
#  - 200 cycles of a VHDX under a rules file that hits write, flush, open and
#    unmount (close): exit 0; every injected fault is classified and
#    reported (none silent), no acknowledged data lost, and the JSON agrees
#    with itself and with the arithmetic of the rules: `op=open nth=5` fails
#    exactly the fifth mount, `op=close every=50` every 50th unmount of a
#    mounted cycle, `op=flush every=17` floor(flushes / 17) flushes; every
#    error names the failed operation, file, offset or structure and carries
#    0x8007045D; afterwards qemu-img finds the image consistent and reads the
#    same bytes as vhdx convert;
#  - the same rules on a VHD;
#  - the classifier can fail: a bit flipped in every payload write is `lost`
#    (exit 3), flipped reads are `damaged`, a flipped header read that the
#    library survives through the other header is `silent` (exit 3), delays
#    are `delayed` (exit 0), a clean run is all `clean`.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires python3

# ---- help and usage
"$VHDX" cycle --help > "$T/help" || fail "vhdx cycle --help exited $?"
for s in NAME SYNOPSIS DESCRIPTION "FAULT RULES" OPTIONS OUTPUT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
	grep -q "^$s" "$T/help" || fail "--help has no $s section"
done
for c in clean delayed reported torn unexpected silent damaged lost; do
	grep -Eq "^      $c +[a-z]" "$T/help" || fail "--help does not explain the class $c"
done
for s in 0x8007045D ERROR_IO_DEVICE 0x80070070 "op=open nth=5" "--image FILE" "--count N" "--faults RULES" "--seed S" \
	"--json" "--format vhd|vhdx" "--size N" fusermount3; do
	grep -qF -- "$s" "$T/help" || fail "--help does not mention '$s'"
done
"$VHDX" --help | grep -q "^  cycle " || fail "vhdx --help does not list cycle"
pass "--help has the man-page sections, the classes and the Windows codes"

usage_fails() { # PATTERN ARGS...: exit 2 with PATTERN on stderr
	local pat=$1 rc
	shift
	"$VHDX" "$@" > "$T/out" 2> "$T/err" && fail "'vhdx $*' succeeded"
	rc=$?
	expect_eq "exit status of 'vhdx $*'" "$rc" 2
	grep -Eq -- "$pat" "$T/err" || fail "'vhdx $*': stderr does not match /$pat/: $(cat "$T/err")"
}
usage_fails "needs --image FILE and --count N" cycle mount --count 3
usage_fails "needs --image FILE and --count N" cycle mount --image "$T/x.vhdx"
usage_fails "--count takes a number" cycle mount --image "$T/x.vhdx" --count 0
usage_fails "unknown cycle 'spin'" cycle spin
usage_fails "--format takes vhd or vhdx" cycle mount --image "$T/x.vhdx" --count 1 --format qcow2
printf 'op=write err=EIO\n\nop=flsh err=EIO\n' > "$T/bad.rules"
usage_fails "$T/bad.rules line 3: .*flsh" cycle mount --image "$T/x.vhdx" --count 1 --faults "$T/bad.rules"
echo 'op=write err=EIO' > "$T/w.rules"
usage_fails "global --faults does not apply" --faults "$T/w.rules" cycle mount --image "$T/x.vhdx" --count 1
[ -e "$T/x.vhdx" ] && fail "a refused command created the image"
pass "usage errors and bad rules exit 2, naming the file and the line; nothing is created"

# ---- a clean run: no rules, every cycle clean
"$VHDX" cycle mount --image "$T/clean.vhdx" --count 5 --size 8M --json > "$T/clean.json" ||
	fail "a clean run exited $?: $(head -c 2000 "$T/clean.json")"
python3 - "$T/clean.json" <<'EOF' || fail "clean run"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert s["cycles_run"] == 5 and s["cycles_by_class"]["clean"] == 5, s
assert s["faults"] == 0 and s["verdict"] == "ok", s
assert d["cycles"][0]["created"] and not any(c["created"] for c in d["cycles"][1:])
for c in d["cycles"]:
    assert c["mounted"] and c["writes"] > 0 and c["fsyncs"] > 0 and not c["errors"], c
    assert c["verify"]["reopened"] and c["verify"]["sectors"] == 16384, c["verify"]
EOF
pass "5 cycles without faults: all clean, every sector verified"

# ---- 200 cycles under write, flush, open and close faults
cat > "$T/cycle.rules" <<'EOF'
# the scratch disk of a backup agent on a failing host disk
op=write prob=0.02 seed=7 err=EIO     # 2% of the writes fail
op=flush every=17 err=EIO             # every 17th flush fails
op=open nth=5 err=EIO                 # the fifth mount fails
op=close every=50 err=EIO             # every 50th unmount fails
EOF
img="$T/scratch.vhdx"
t0=$(date +%s)
"$VHDX" cycle mount --image "$img" --count 200 --size 8M --ops 16 --seed 3 --faults "$T/cycle.rules" --json \
	> "$T/run.json" 2> "$T/run.err"
rc=$?
t1=$(date +%s)
[ "$rc" = 0 ] || fail "200 cycles exited $rc: $(cat "$T/run.err"); $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"])' "$T/run.json" 2>&1)"
python3 - "$T/run.json" "$img" <<'EOF' || fail "200 cycles: the report does not add up"
import json, re, sys
d = json.load(open(sys.argv[1]))
img = sys.argv[2]
s = d["summary"]
cycles = d["cycles"]
assert s["cycles_run"] == 200 and len(cycles) == 200 and not d["stopped_early"], s
for bad in ("unexpected", "silent", "damaged", "lost"):
    assert s["cycles_by_class"][bad] == 0, (bad, s)
    assert s["faults_by_class"][bad] == 0, (bad, s)
assert s["verdict"] == "ok"
faults = [f for c in cycles for f in c["faults"]]
assert len(faults) == s["faults"] > 0, (len(faults), s["faults"])
rules = {r["rule"]: r for r in s["rules"]}
assert sum(r["hits"] for r in rules.values()) == len(faults), (rules, len(faults))
ops = {1: "write", 2: "flush", 3: "open", 4: "close"}
for c in cycles:
    for f in c["faults"]:
        # every fault is classified, and reported by the call it hit
        assert f["class"] == "reported", (c["cycle"], f)
        assert f["op"] == ops[f["rule"]], f
        assert f["errno"] == "EIO" and f["action"] == "err", f
        assert f["step"] in ("mount", "pwrite", "pread", "fsync", "close", "unmount"), f
        assert any(e["step"] == f["step"] for e in c["errors"]), (c["cycle"], f, c["errors"])
    # a cycle with faults is reported (or torn), one without is clean
    assert c["class"] == ("reported" if c["faults"] else "clean") or (c["faults"] and c["class"] == "torn"), c
    assert bool(c["errors"]) == bool(c["faults"]), c
    for e in c["errors"]:
        assert e["errno"] == "EIO" and e["windows"] == "0x8007045D" and e["windows_name"] == "ERROR_IO_DEVICE", e
        m = re.search(r"injected EIO (after [a-z ]+ )?\(fault rule (\d)", e["message"])
        assert m and 1 <= int(m.group(2)) <= 4, e
        if e["step"] in ("pwrite", "fsync"):
            # names the layer file and what failed: the structure and file offset, or the flush
            assert re.search(r"scratch\.vhdx: (writing [a-z]+ at offset 0x[0-9a-f]+ \(\d+ bytes\)|flush): injected", e["message"]), e
    v = c["verify"]
    assert v["reopened"] and v["sectors"] == 16384 and v["lost_sectors"] == 0, (c["cycle"], v)
# op=open nth=5: exactly the fifth mount failed, naming the open
assert rules[3]["hits"] == 1
c5 = cycles[4]
assert not c5["mounted"] and c5["errors"][0]["step"] == "mount", c5
assert "opening: injected EIO (fault rule 3)" in c5["errors"][0]["message"], c5["errors"]
assert [c["cycle"] for c in cycles if not c["mounted"] and any(f["op"] == "open" for f in c["faults"])] == [5]
# op=close every=50: every 50th unmount of a cycle that mounted
mounted = [c for c in cycles if c["mounted"]]
closes = [f for c in cycles for f in c["faults"] if f["op"] == "close"]
assert rules[4]["matched"] == len(mounted), (rules[4], len(mounted))
assert len(closes) == rules[4]["hits"] == len(mounted) // 50 >= 3, (len(closes), rules[4], len(mounted))
for i, c in enumerate(mounted):
    hit = [f for f in c["faults"] if f["op"] == "close"]
    assert len(hit) == (1 if (i + 1) % 50 == 0 else 0), (c["cycle"], i)
    if hit:
        assert hit[0]["step"] == "unmount" and any("fault rule 4" in e["message"] for e in c["errors"] if e["step"] == "unmount"), c
# op=flush every=17: one flush in 17
assert rules[2]["hits"] == rules[2]["matched"] // 17 > 0, rules[2]
assert rules[1]["hits"] == sum(1 for f in faults if f["op"] == "write") > 0, rules[1]
# failed writes left sectors whose contents were uncertain, and the model checked them
assert sum(c["verify"]["uncertain_sectors"] for c in cycles) > 0
print("faults %d, reported cycles %d, clean %d, rule hits %s" % (len(faults), s["cycles_by_class"]["reported"],
      s["cycles_by_class"]["clean"], [rules[n]["hits"] for n in (1, 2, 3, 4)]))
EOF
pass "200 VHDX cycles in $((t1 - t0)) s: every fault reported by the call it hit, none silent, no acknowledged data lost"

# an independent reader agrees with the library on the final image
"$VHDX" convert -O raw "$img" "$T/final.raw" || fail "vhdx convert of the final image"
if command -v qemu-img > /dev/null; then
	cp "$img" "$T/copy.vhdx"
	qemu-img check -r all -f vhdx "$T/copy.vhdx" > "$T/check" 2>&1 || fail "qemu-img check: $(cat "$T/check")"
	grep -q "No errors were found" "$T/check" || fail "qemu-img check: $(cat "$T/check")"
	qemu-img convert -f vhdx -O raw "$T/copy.vhdx" "$T/qemu.raw" || fail "qemu-img convert"
	cmp "$T/final.raw" "$T/qemu.raw" || fail "qemu-img and vhdx read different bytes from the final image"
	pass "the final image: qemu-img check finds no errors, qemu-img and vhdx convert read the same bytes"
fi

# ---- after= and once carried across cycles; ENOSPC shows as ERROR_DISK_FULL
cat > "$T/carry.rules" <<'EOF'
op=flush after=10 every=7 err=EIO
op=write struct=payload after=40 once err=ENOSPC
EOF
"$VHDX" cycle mount --image "$T/carry.vhdx" --count 20 --size 8M --ops 16 --faults "$T/carry.rules" --json > "$T/carry.json" ||
	fail "the after/once run exited $?"
python3 - "$T/carry.json" <<'EOF' || fail "after/once run"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
r = {x["rule"]: x for x in s["rules"]}
assert r[1]["matched"] > 17 and r[1]["hits"] == (r[1]["matched"] - 10) // 7, r[1]
assert r[2]["hits"] == 1 and r[2]["matched"] >= 41, r[2]
nospc = [e for c in d["cycles"] for e in c["errors"] if e["errno"] == "ENOSPC"]
assert len(nospc) == 1 and nospc[0]["windows"] == "0x80070070" and nospc[0]["windows_name"] == "ERROR_DISK_FULL", nospc
assert "injected ENOSPC (fault rule 2" in nospc[0]["message"], nospc
e = {x["errno"]: x for x in s["errnos"]}
assert e["ENOSPC"]["injected"] == 1 and e["ENOSPC"]["windows"] == "0x80070070", e
assert s["verdict"] == "ok", s
EOF
pass "after=, every= and once count over the whole run; ENOSPC is 0x80070070 ERROR_DISK_FULL"

# ---- the same rules on a VHD (text report)
"$VHDX" cycle mount --image "$T/scratch.vhd" --count 60 --size 8M --ops 16 --faults "$T/cycle.rules" > "$T/vhd.out" 2>&1 ||
	fail "60 VHD cycles exited $?: $(tail -20 "$T/vhd.out")"
grep -q "^vhdx cycle mount: $T/scratch.vhd (vhd, 8388608 bytes), 60 cycles" "$T/vhd.out" || fail "VHD header: $(head -1 "$T/vhd.out")"
grep -Eq "^cycle 5: reported: mount failed: EIO \(0x8007045D ERROR_IO_DEVICE\): vhdxfs exited with status 1 before mounting: .*opening: injected EIO \(fault rule 3\)" \
	"$T/vhd.out" || fail "VHD: cycle 5 is not the failed mount: $(grep '^cycle 5:' "$T/vhd.out")"
grep -Eq "^  (silent|lost|damaged|unexpected) +0 +0$" "$T/vhd.out" || fail "VHD summary: $(cat "$T/vhd.out")"
for c in silent lost damaged unexpected; do
	grep -Eq "^  $c +0 +0$" "$T/vhd.out" || fail "VHD: $c is not 0: $(grep "^  $c" "$T/vhd.out")"
done
grep -Eq "^  EIO +[1-9][0-9]* +[1-9][0-9]*  0x8007045D ERROR_IO_DEVICE$" "$T/vhd.out" || fail "VHD errno table: $(cat "$T/vhd.out")"
grep -q "^Verdict: ok" "$T/vhd.out" || fail "VHD verdict: $(tail -3 "$T/vhd.out")"
pass "60 VHD cycles: the fifth mount fails, everything reported, verdict ok"

# ---- the classifier can fail
# one flipped bit in every payload write: the acknowledged data is wrong
echo "op=write struct=payload flip=1" > "$T/flip.rules"
"$VHDX" cycle mount --image "$T/flip.vhdx" --count 3 --size 8M --ops 16 --faults "$T/flip.rules" --json > "$T/flip.json"
rc=$?
expect_eq "exit status with silent payload corruption" "$rc" 3
python3 - "$T/flip.json" <<'EOF' || fail "flip run"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert s["verdict"] == "problems" and s["cycles_by_class"]["lost"] == 3, s
for c in d["cycles"]:
    assert c["class"] == "lost" and not c["errors"], c
    v = c["verify"]
    assert v["lost_sectors"] > 0 and v["lost"][0]["acknowledged_cycle"] == c["cycle"], v
    assert v["readback_bad_sectors"] > 0, v  # the read-back already saw it while mounted
    assert all(f["action"] == "flip" and f["class"] == "lost" and f["step"] == "pwrite" for f in c["faults"]), c["faults"]
EOF
pass "flip=1 on payload writes: every cycle lost, exit 3"

# flipped payload reads: the workload's read-back catches them (damaged); nothing lost on disk
echo "op=read struct=payload flip=1" > "$T/flipr.rules"
"$VHDX" cycle mount --image "$T/flipr.vhdx" --count 3 --size 8M --ops 16 --faults "$T/flipr.rules" --json > "$T/flipr.json"
expect_eq "exit status with flipped reads" "$?" 3
python3 - "$T/flipr.json" <<'EOF' || fail "read flip run"
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cycles"]:
    assert c["class"] == "damaged" and c["verify"]["readback_bad_sectors"] > 0 and c["verify"]["lost_sectors"] == 0, c
EOF
pass "flip=1 on payload reads: damaged (wrong bytes read without an error), nothing lost on disk, exit 3"

# a flipped header read: the library uses the other header; no call fails, nothing is wrong: silent
echo "op=read struct=header nth=1 flip=1" > "$T/hdr.rules"
"$VHDX" cycle mount --image "$T/hdr.vhdx" --count 2 --size 8M --ops 8 --faults "$T/hdr.rules" > "$T/hdr.out"
expect_eq "exit status with a silent fault" "$?" 3
# the line names the fault that made the cycle silent (issue #15 item 9)
grep -q "^cycle 1: silent: 1 fault, no call failed; silent fault: rule 1 (op=read struct=header nth=1 flip=1) read $T/hdr.vhdx off=0x10000 len=4096 struct=header action=flip bits=[0-9]* during mount$" "$T/hdr.out" ||
	fail "header flip: $(cat "$T/hdr.out")"
grep -Eq "^  silent +1 +1$" "$T/hdr.out" || fail "header flip summary: $(cat "$T/hdr.out")"
grep -q "^Verdict: PROBLEMS: 1 silent" "$T/hdr.out" || fail "header flip verdict: $(tail -1 "$T/hdr.out")"
pass "a flipped header read that nothing noticed is silent, exit 3"

# delays: slower, nothing fails
echo "op=write delay=2 every=5" > "$T/delay.rules"
"$VHDX" cycle mount --image "$T/delay.vhdx" --count 3 --size 8M --ops 16 --faults "$T/delay.rules" --json > "$T/delay.json" ||
	fail "a delay-only run exited $?"
python3 - "$T/delay.json" <<'EOF' || fail "delay run"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert s["cycles_by_class"]["delayed"] == 3 and s["faults_by_class"]["delayed"] == s["faults"] > 0, s
EOF
pass "delay faults: delayed, exit 0"
