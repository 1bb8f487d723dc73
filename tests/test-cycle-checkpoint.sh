#!/bin/bash
# test-cycle-checkpoint.sh - vhdx cycle checkpoint: a backup product's
# recovery-checkpoint cycle under faults.
#  - 50 rounds with a fixed seed under rules that fail checkpoint creation
#    (0xA0009723), fail and crash merges (leaving extra checkpoints behind:
#    0xA000971E next round, then merged; interrupted merges resumed) and
#    fail the backup's reads: no silent fault, no unexpected error, no lost
#    data, every one of those cases at least once, the chain ends at depth 2
#    and the folder holds just the base and the last checkpoint (vhdx
#    checkpoints reports it clean);
#  - the disk then reads byte for byte as after the same 50 rounds without
#    faults (the VM's workload depends only on the seed and the round: a
#    check that does not rely on the command's own model);
#  - a VHD base;
#  - a bit flip in the merge's writes (a silent corruption) is caught: the
#    round is 'lost' and the exit status 3.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 sha256sum
cd "$T"


cat > disk.rules <<'EOF'
# creation of a checkpoint (its headers) and the re-linking of the new one
op=write file=*-ckpt-* struct=header every=17 err=EIO
# the merge's writes into the base
op=write file=base.vhdx struct=payload every=211 err=EIO
# a power cut at a flush of the base during a merge
op=flush file=base.vhdx every=31 crash
# the backup's reads of the checkpoints
op=read file=*-ckpt-* struct=payload every=97 err=EIO
EOF

mkdir f
"$VHDX" cycle checkpoint --base f/base.vhdx --count 50 --size 16M --seed 7 --faults disk.rules --json > f.json 2> f.err
rc=$?
[ $rc -eq 0 ] || fail "50 rounds under faults: exit $rc: $(cat f.err; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"])' f.json)"
python3 - f.json "$T/f" <<'EOF' || fail "the report of 50 rounds under faults"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
assert s["rounds_run"] == 50 and len(r["rounds"]) == 50, s
for c in ("unexpected", "silent", "damaged", "lost"):
    assert s["rounds_by_class"][c] == 0, (c, s)
    assert s["faults_by_class"][c] == 0, (c, s)
assert s["verdict"] == "ok" and s["final_problem"] == "" and s["final_depth"] == 2, s
assert s["final_leaf"] == "f/base-ckpt-0050.avhdx", s["final_leaf"]
# every fault case at least once
for k in ("create_failed_0xA0009723", "extra_checkpoint_0xA000971E", "extra_checkpoint_resolved", "merge_failed",
          "merge_crashed", "merge_resumed", "backup_read_failed", "merges_ok"):
    assert s[k] >= 1, (k, s)
assert s["extra_checkpoint_unexpected"] == 0 and s["backup_read_wrong"] == 0, s
assert all(x["hits"] >= 1 for x in s["rules"]), s["rules"]
assert s["rounds_by_class"]["clean"] >= 1 and s["rounds_by_class"]["reported"] >= 1, s
# the rounds say the same as the totals
rs = r["rounds"]
assert sum(x["create_failed"] for x in rs) == s["create_failed_0xA0009723"]
assert sum(x["extra_checkpoint_detected"] for x in rs) == s["extra_checkpoint_0xA000971E"]
assert sum(x["merge_crashed"] for x in rs) == s["merge_crashed"]
# injected faults are the rules' hits; calls failed after a simulated crash are counted apart (issue #17 item 5)
assert s["faults"] == sum(x["hits"] for x in s["rules"]), (s["faults"], s["rules"])
assert sum(len([e for e in x["faults"] if e["action"] != "after-crash"]) for x in rs) == s["faults"]
assert sum(len([e for e in x["faults"] if e["action"] == "after-crash"]) for x in rs) == s["after_crash_events"] >= 1, s
# a round that met 0xA000971E or resumed an interrupted merge failed as a backup job: reported, never clean
for x in rs:
    if x["extra_checkpoint_detected"] or x["merge_resumed"]:
        assert x["class"] != "clean", x
# numbers are numbers (issue #17 item 12)
assert isinstance(s["seconds"], float) and all(isinstance(x["seconds"], float) for x in rs), s["seconds"]
# a creation failure is reported with its code and the library's message, the steps name the files
cf = [st for x in rs for st in x["steps"] if st["step"] == "create" and st["errno"]]
assert cf and all(st["message"].startswith("0xA0009723 cannot create a recovery checkpoint: ") for st in cf), cf
det = [st for x in rs for st in x["steps"] if st["step"] == "detect"]
assert det and all(st["message"].startswith("0xA000971E another recovery checkpoint exists: ") and st["errno"] == ""
                   for st in det), det
# an extra checkpoint is only ever found after a round whose merge failed
failed_before = False
for x in rs:
    if x["extra_checkpoint_detected"]:
        assert failed_before and x["depth_found"] >= 3 and x["checkpoints_found"] == x["depth_found"] - 1, x
    failed_before = failed_before or x["merge_failed"]
# messages name the rules file's rules
for x in rs:
    for st in x["steps"]:
        if "fault rule" in st["message"]:
            n = int(st["message"].split("fault rule ")[1].split(";")[0].split(")")[0])
            assert 1 <= n <= 4, st["message"]
print("ok", s["create_failed_0xA0009723"], s["extra_checkpoint_0xA000971E"], s["merge_crashed"], s["merge_resumed"],
      s["backup_read_failed"], s["faults"], file=sys.stderr)
EOF
[ "$(ls f | sort | tr '\n' ' ')" = "base-ckpt-0050.avhdx base.vhdx " ] || fail "files left in the folder: $(ls f)"
"$VHDX" checkpoints f > ck.txt || fail "vhdx checkpoints after the cycle: $(cat ck.txt)"
grep -qxF "chain: f/base.vhdx <- f/base-ckpt-0050.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 16777216 bytes)" ck.txt ||
	fail "the final chain: $(cat ck.txt)"
pass "50 rounds under faults: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print("%d faults, %d creation failures, %d extra checkpoints found (%d resolved), %d merges failed (%d crashed), %d resumed, %d backup reads failed; no silent fault, no lost data; depth 2" % (s["faults"], s["create_failed_0xA0009723"], s["extra_checkpoint_0xA000971E"], s["extra_checkpoint_resolved"], s["merge_failed"], s["merge_crashed"], s["merge_resumed"], s["backup_read_failed"]))' f.json)"

# the same rounds without faults give the same disk
mkdir n
"$VHDX" cycle checkpoint --base n/base.vhdx --count 50 --size 16M --seed 7 -q > n.txt || fail "50 rounds without faults: $(cat n.txt)"
grep -qxF "Verdict: ok: every fault was reported and recovered; no data lost; the chain ends at depth 2 (the base and one checkpoint)" n.txt ||
	fail "verdict without faults: $(cat n.txt)"
grep -qE '^  clean +50 +0$' n.txt || fail "not 50 clean rounds without faults: $(cat n.txt)"
sum_f=$(rawsum f/base-ckpt-0050.avhdx)
[ "$sum_f" = "$(rawsum n/base-ckpt-0050.avhdx)" ] || fail "the disk after 50 rounds under faults differs from the one without faults"
[ "$sum_f" != "$(sha256sum < /dev/null | cut -c1-64)" ] || fail "empty"
# and the base alone holds everything but the last round's writes
[ "$(rawsum f/base.vhdx)" = "$(rawsum n/base.vhdx)" ] || fail "the merged bases differ"
pass "the disk (and the merged base) after 50 faulty rounds equals the fault-free run's, byte for byte"

# a VHD base
mkdir v
"$VHDX" cycle checkpoint --base v/base.vhd --count 8 --size 8M --seed 3 --faults disk.rules -q > v.txt ||
	fail "VHD rounds: $(cat v.txt)"
grep -q "final chain: v/base-ckpt-0008.avhd, depth 2" v.txt || fail "VHD final chain: $(cat v.txt)"
"$VHDX" info --json v/base-ckpt-0008.avhd | python3 -c 'import json,sys; r=json.load(sys.stdin); assert [l["format"] for l in r["layers"]] == ["vhd", "vhd"], r' ||
	fail "the VHD chain is not VHD"
pass "VHD base: 8 rounds, depth 2"

# a silent corruption: a bit flipped in the merge's writes is found as lost data (exit 3)
echo "op=write file=base.vhdx struct=payload nth=3 flip=1" > flip.rules
mkdir s
"$VHDX" cycle checkpoint --base s/base.vhdx --count 5 --size 8M --seed 3 --faults flip.rules > s.txt 2>&1
rc=$?
[ $rc -eq 3 ] || fail "a flipped bit in a merge: exit $rc, expected 3: $(cat s.txt)"
grep -qE "^round [0-9]+: lost; [0-9]+ sectors the VM wrote are lost, first at 0x" s.txt || fail "no lost round: $(cat s.txt)"
grep -q "^Verdict: PROBLEMS: 0 silent, 0 unexpected, 0 damaged, 1 lost rounds" s.txt || fail "verdict: $(cat s.txt)"
mkdir s2; "$VHDX" cycle checkpoint --base s2/base.vhdx --count 5 --size 8M --seed 3 --faults flip.rules --json > s.json
[ $? -eq 3 ] || fail "--json: exit not 3"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; assert s["rounds_by_class"]["lost"] == 1 and s["faults_by_class"]["lost"] == 1 and s["verdict"] == "problems", s' s.json ||
	fail "JSON of the flipped bit"
pass "a bit flip in a merge's write is classified lost, exit 3"

# usage
"$VHDX" cycle checkpoint --count 3 > /dev/null 2>&1
[ $? -eq 2 ] || fail "no --base is not a usage error"
echo "op=bogus" > bad.rules
"$VHDX" cycle checkpoint --base u.vhdx --count 1 --faults bad.rules > /dev/null 2> e.txt
[ $? -eq 2 ] || fail "a bad rules file is not a usage error"
grep -q "bad.rules line 1" e.txt || fail "the bad rules message: $(cat e.txt)"
"$VHDX" cycle checkpoint --base f/base-ckpt-0050.avhdx --count 1 > /dev/null 2> e.txt
[ $? -eq 2 ] || fail "a differencing --base is not refused"
pass "usage errors"
