#!/bin/bash
# test-checkpoints-verdicts.sh - what a new user meets in `vhdx checkpoints`
# (issue #17 items 1-4, issue #15 item 8):
#   1. a base with three ordinary checkpoints and a fork are facts: exit 0,
#      no merge, no deletion; the backup diagnosis (0xA000971E) only with
#      --backup-checkpoints N or --recovery GLOB, every deleting command
#      after a line saying DELETES;
#   2. the chain options (--parent-dir, --path-map, --ignore-id-mismatch,
#      --parent) are carried into the proposed commands, and every proposed
#      command is run and must succeed;
#   3. depth is the number of images of a chain in checkpoints, info and
#      the man page; the parent is printed as info prints it;
#   4. after `vhdx merge B` (VHDX and VHD), B is listed for deletion;
#   and a cycle of parents is reported as broken (exit 3), not "clean".
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 sha256sum
cd "$T"

mk() { "$VHDX" create "$@" >/dev/null || fail "create $*"; }
put() { head -c "$3" /dev/urandom | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }
# run_cmds OUT: runs every command line the report OUT proposes (the lines
# after "  # ..."), each must succeed; the lines before each must say DELETES
# for every file it deletes
run_cmds() {
	python3 - "$1" > cmds.sh <<'EOF' || fail "the proposed commands: $(cat "$1")"
import sys, shlex
lines = open(sys.argv[1]).read().split("\n")
for i, l in enumerate(lines):
    if not l.startswith("  ") or l.startswith("  #") or i == 0 or not lines[i - 1].startswith("  # "):
        continue
    note, cmd = lines[i - 1][4:], l[2:]
    argv = shlex.split(cmd)
    deleted = []
    if argv[0] == "rm":
        deleted = [a for a in argv[1:] if a != "--"]
    elif "--delete" in argv:
        deleted = [argv[2]]
    for d in deleted:
        assert "DELETES " in note and d in note.split("DELETES ", 1)[1], (note, cmd)
    print(cmd.replace("vhdx ", '"$VHDX" ', 1) if argv[0] == "vhdx" else cmd)
EOF
	[ -s cmds.sh ] || fail "no command proposed in $1"
	VHDX=$VHDX bash -e -x cmds.sh > cmds.out 2>&1 || fail "a proposed command failed: $(cat cmds.out)"
}

# carried WHAT OUT COMMAND LEAF SUM [RAWSUM-OPTIONS...]: the report OUT proposes COMMAND exactly, every
# proposed command runs, and LEAF then reads as SUM (read with RAWSUM-OPTIONS)
carried() {
	local what=$1 out=$2 cmd=$3 leaf=$4 sum=$5
	shift 5
	grep -qxF "  $cmd" "$out" || fail "$what not carried into the command: $(cat "$out")"
	run_cmds "$out"
	[ "$(rawsum "$@" "$leaf")" = "$sum" ] || fail "$leaf reads differently after the $what merge"
}

# ---- 1. ordinary checkpoints and forks are facts
D=$T/vm
mkdir "$D"
mk --size 8M "$D/web01.vhdx"
put "$D/web01.vhdx" 0 1M
for i in 1 2 3; do
	p=$D/web01.vhdx; [ $i -gt 1 ] && p=$D/web01-$((i - 1)).avhdx
	mk --parent "$p" "$D/web01-$i.avhdx"
	put "$D/web01-$i.avhdx" $((i * 1048576)) 300000
done
mk --parent "$D/web01-1.avhdx" "$D/test-branch.avhdx"
sum3=$(rawsum "$D/web01-3.avhdx")
"$VHDX" checkpoints "$D" > out.txt 2> err.txt
rc=$?
[ $rc -eq 0 ] || fail "three ordinary checkpoints and a fork: exit $rc, expected 0: $(cat out.txt err.txt)"
grep -qxF "chain: $D/web01.vhdx <- $D/web01-1.avhdx <- $D/web01-2.avhdx <- $D/web01-3.avhdx (depth 4: the base and 3 checkpoints, vhdx, virtual 8388608 bytes)" out.txt ||
	fail "chain line: $(cat out.txt)"
grep -qxF "fork: $D/web01-1.avhdx has 2 children: $D/test-branch.avhdx $D/web01-2.avhdx (merging one child into it would change what the others read)" out.txt ||
	fail "fork line: $(cat out.txt)"
grep -q "0xA000971E\|recovery\|vhdx merge\|--delete\|rm " out.txt && fail "the neutral report diagnoses a backup or proposes a merge: $(cat out.txt)"
grep -qxF "clean: nothing broken" out.txt || fail "verdict: $(cat out.txt)"
"$VHDX" checkpoints --json "$D" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["clean"] is True and r["commands"] == [], r
assert "extra_checkpoints" not in r["summary"], r["summary"]
c = [c for c in r["chains"] if c["leaf"].endswith("/web01-3.avhdx")][0]
assert c["depth"] == 4 and c["checkpoints"] == 3 and "extra_checkpoints" not in c, c
' || fail "neutral JSON"
pass "1: a base with three checkpoints and a fork: facts, exit 0, nothing proposed"

# the backup product keeps one checkpoint: the fork blocks the merge (web01-1 has two children)
"$VHDX" checkpoints --backup-checkpoints 1 "$D" > out.txt
[ $? -eq 3 ] || fail "--backup-checkpoints 1: exit not 3"
grep -qxF "extra recovery checkpoints: 2 over $D/web01.vhdx: $D/web01-1.avhdx $D/web01-2.avhdx (the backup keeps 1; a backup job fails with 0xA000971E, another recovery checkpoint exists); no merge command: a fork or a checkpoint that is not a recovery checkpoint is in between" out.txt ||
	fail "backup diagnosis with a fork: $(cat out.txt)"
grep -q "vhdx merge" out.txt && fail "a merge proposed through a fork: $(cat out.txt)"
"$VHDX" checkpoints --backup-checkpoints 3 "$D" > out.txt || fail "--backup-checkpoints 3: three checkpoints are what it keeps: $(cat out.txt)"
# --recovery names the backup's checkpoints: only web01-3 is one, it keeps 1: nothing extra
"$VHDX" checkpoints --recovery 'web01-3.*' "$D" > out.txt || fail "--recovery 'web01-3.*': $(cat out.txt)"
grep -qF "0 extra checkpoints (the backup keeps 1)" out.txt || fail "--recovery summary: $(cat out.txt)"
rm "$D/test-branch.avhdx"
# two recovery checkpoints web01-2 and web01-3 over the user's web01-1: web01-2 is merged into web01-1, never deeper
"$VHDX" checkpoints --recovery 'web01-[23].avhdx' "$D" > out.txt
[ $? -eq 3 ] || fail "--recovery with 2 recovery checkpoints: exit not 3: $(cat out.txt)"
grep -qxF "  # merges the extra recovery checkpoints $D/web01-2.avhdx into $D/web01-1.avhdx and DELETES $D/web01-2.avhdx:" out.txt ||
	fail "--recovery command note: $(cat out.txt)"
grep -qxF "  vhdx merge '$D/web01-2.avhdx' --into '$D/web01-1.avhdx' --delete --relink '$D/web01-3.avhdx'" out.txt ||
	fail "--recovery command: $(cat out.txt)"
run_cmds out.txt
[ "$(rawsum "$D/web01-3.avhdx")" = "$sum3" ] || fail "web01-3 reads differently after the merge"
[ -e "$D/web01-2.avhdx" ] && fail "web01-2.avhdx was not deleted"
"$VHDX" checkpoints --recovery 'web01-[23].avhdx' "$D" > out.txt || fail "after the merge: $(cat out.txt)"
pass "1: --backup-checkpoints N and --recovery GLOB: 0xA000971E only when asked, no merge through a fork or below a user checkpoint"

# ---- 2. chain options carried into the commands, every command run
S=$T/s2
mkdir -p "$S/basestore" "$S/vm"
mk --size 8M "$S/basestore/web01.vhdx"
put "$S/basestore/web01.vhdx" 0 1M
mk --parent "$S/basestore/web01.vhdx" "$S/vm/web01-1.avhdx"
put "$S/vm/web01-1.avhdx" 1M 200000
mk --parent "$S/vm/web01-1.avhdx" "$S/vm/web01-2.avhdx"
put "$S/vm/web01-2.avhdx" 2M 200000
mk --parent "$S/vm/web01-2.avhdx" "$S/vm/web01-3.avhdx"
mv "$S/basestore" "$S/other" # the base's folder was renamed: found through --parent-dir only
sum=$(rawsum --parent-dir "$S/other" "$S/vm/web01-3.avhdx")
"$VHDX" checkpoints --backup-checkpoints 1 "$S/vm" > /dev/null
[ $? -eq 3 ] || fail "without --parent-dir the base is missing: exit should be 3"
( cd "$S" && "$VHDX" checkpoints --backup-checkpoints 1 --parent-dir other vm ) > out.txt
[ $? -eq 3 ] || fail "--parent-dir: extras not found: $(cat out.txt)"
grep -qxF "  vhdx merge 'vm/web01-2.avhdx' --into 'other/web01.vhdx' --delete --relink 'vm/web01-3.avhdx' --parent-dir 'other'" out.txt ||
	fail "--parent-dir not carried into the command: $(cat out.txt)"
( cd "$S" && run_cmds "$T/out.txt" )
[ "$(rawsum --parent-dir "$S/other" "$S/vm/web01-3.avhdx")" = "$sum" ] || fail "web01-3 reads differently after the --parent-dir merge"
( cd "$S" && "$VHDX" checkpoints --backup-checkpoints 1 --parent-dir other vm ) > out.txt || fail "not clean after the merge: $(cat out.txt)"
( cd "$S" && "$VHDX" checkpoints --json --parent-dir other vm ) | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
assert (s["images"], s["parents_outside_folder"]) == (1, 1), s
' || fail "JSON image counts with a parent outside the folder"
grep -qxF "folder vm: 1 images, 0 unreadable, 0 other files; 1 parent outside the folder" <(cd "$S" && "$VHDX" checkpoints --parent-dir other vm) ||
	fail "the folder line counts a parent outside the folder as one of its images"
pass "2: --parent-dir is carried into the merge command, which runs"

# --path-map: the locator's absolute Windows path mapped to a moved folder
P=$T/p2
mkdir -p "$P/store" "$P/vm"
mk --size 8M "$P/store/gold.vhdx"
mk --parent "$P/store/gold.vhdx" "$P/vm/a.avhdx"
put "$P/vm/a.avhdx" 0 100000
mk --parent "$P/vm/a.avhdx" "$P/vm/b.avhdx"
put "$P/vm/b.avhdx" 1M 100000
mk --parent "$P/vm/b.avhdx" "$P/vm/c.avhdx"
mv "$P/store" "$P/moved"
win=$(tr '/' '\\' <<< "$P/store")
sum=$(rawsum --path-map "$win=$P/moved" "$P/vm/c.avhdx")
"$VHDX" checkpoints --backup-checkpoints 1 --path-map "$win=$P/moved" "$P/vm" > out.txt
[ $? -eq 3 ] || fail "--path-map: exit not 3: $(cat out.txt)"
grep -qF -- "--path-map '$win=$P/moved'" out.txt || fail "--path-map not carried: $(cat out.txt)"
run_cmds out.txt
[ "$(rawsum --path-map "$win=$P/moved" "$P/vm/c.avhdx")" = "$sum" ] || fail "c reads differently after the --path-map merge"
pass "2: --path-map is carried into the merge command, which runs"

# --ignore-id-mismatch: the base was replaced by a copy with another identity
I=$T/i2
mkdir "$I"
mk --size 8M "$I/base.vhdx"
put "$I/base.vhdx" 0 100000
mk --parent "$I/base.vhdx" "$I/c1.avhdx"
put "$I/c1.avhdx" 1M 100000
mk --parent "$I/c1.avhdx" "$I/c2.avhdx"
put "$I/c2.avhdx" 2M 100000
mk --parent "$I/c2.avhdx" "$I/c3.avhdx"
"$VHDX" convert -O vhdx "$I/base.vhdx" "$I/new.vhdx" >/dev/null || fail "convert base"
mv "$I/new.vhdx" "$I/base.vhdx"
sum=$(rawsum --ignore-id-mismatch "$I/c3.avhdx")
"$VHDX" checkpoints --backup-checkpoints 1 --ignore-id-mismatch "$I" > out.txt
[ $? -eq 3 ] || fail "--ignore-id-mismatch: exit not 3: $(cat out.txt)"
grep -qF "$I/c1.avhdx: vhdx differencing, file" out.txt && grep -qF "(its parent's identity differs: accepted by --ignore-id-mismatch)" out.txt ||
	fail "the accepted mismatch is not shown: $(cat out.txt)"
carried --ignore-id-mismatch out.txt "vhdx merge '$I/c2.avhdx' --into '$I/base.vhdx' --delete --relink '$I/c3.avhdx' --ignore-id-mismatch" \
	"$I/c3.avhdx" "$sum"
pass "2: --ignore-id-mismatch is carried into the merge command, which runs"

# --parent: the base was renamed; the locator finds nothing, --parent names it
R=$T/r2
mkdir "$R"
mk --size 8M "$R/base.vhdx"
put "$R/base.vhdx" 0 100000
mk --parent "$R/base.vhdx" "$R/c1.avhdx"
put "$R/c1.avhdx" 1M 100000
mk --parent "$R/c1.avhdx" "$R/c2.avhdx"
mv "$R/base.vhdx" "$R/renamed.vhdx"
sum=$(rawsum --parent "$R/renamed.vhdx" "$R/c1.avhdx")
"$VHDX" checkpoints --backup-checkpoints 1 --parent "$R/renamed.vhdx" "$R" > out.txt
[ $? -eq 3 ] || fail "--parent: exit not 3: $(cat out.txt)"
carried --parent out.txt "vhdx merge '$R/c1.avhdx' --into '$R/renamed.vhdx' --delete --relink '$R/c2.avhdx' --parent '$R/renamed.vhdx'" \
	"$R/c2.avhdx" "$sum"
pass "2: --parent is carried into the merge command of the image whose parent it names"

# ---- 3. one depth: info's chain_depth, the checkpoints chain depth, the man page
H=$T/h3
mkdir "$H"
mk --size 8M "$H/web01.vhdx"
mk --parent "$H/web01.vhdx" "$H/web01-1.avhdx"
mk --parent "$H/web01-1.avhdx" "$H/web01-2.avhdx"
mk --parent "$H/web01-2.avhdx" "$H/web01-3.avhdx"
idepth=$("$VHDX" info --json "$H/web01-3.avhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain_depth"])')
cdepth=$("$VHDX" checkpoints --json "$H" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chains"][0]["depth"])')
expect_eq "info chain_depth" "$idepth" 4
expect_eq "checkpoints depth" "$cdepth" 4
grep -q "depth 4: the base and 3 checkpoints" <("$VHDX" checkpoints "$H") || fail "text depth"
grep -q "the number of images in it, the base included" "$top_srcdir/man/vhdx.1" || fail "the man page does not define depth"
grep -q "the base included" <("$VHDX" checkpoints --help) || fail "--help does not define depth"
# the parent: named as info names it
mv "$H/web01.vhdx" "$H/../web01-moved.vhdx"
"$VHDX" info "$H/web01-1.avhdx" > /dev/null 2> info.err
iname=$(sed -n 's/.*parent "\([^"]*\)".*/\1/p' info.err)
expect_eq "info's parent name" "$iname" "web01.vhdx"
"$VHDX" checkpoints "$H" > out.txt
grep -qF "missing parent: $H/web01-1.avhdx: parent \"$iname\" {" out.txt || fail "checkpoints names the parent otherwise: $(cat out.txt)"
pass "3: depth 4 for base + 3 in info and checkpoints (defined in the man page); the parent named as info names it"

# ---- 4. after vhdx merge B, B is listed for deletion (VHDX: the parent's identity changed; VHD: its time)
M=$T/m4
mkdir "$M"
mk --size 8M "$M/a.vhdx"
mk --parent "$M/a.vhdx" "$M/b.avhdx"
put "$M/b.avhdx" 0 300000
mk --format vhd --size 8M "$M/v.vhd"
mk --format vhd --parent "$M/v.vhd" "$M/w.avhd"
put "$M/w.avhd" 1M 300000
sleep 1.1 # a VHD child holds its parent's time stamp in seconds
"$VHDX" merge --no-progress "$M/b.avhdx" > merge.out || fail "merge b: $(cat merge.out)"
"$VHDX" merge --no-progress "$M/w.avhd" >> merge.out || fail "merge w: $(cat merge.out)"
grep -qF "merged: $M/b.avhdx (no longer valid" merge.out || fail "merge output: $(cat merge.out)"
"$VHDX" checkpoints "$M" > out.txt
[ $? -eq 3 ] || fail "merged leftovers: exit not 3: $(cat out.txt)"
grep -qxF "merged: $M/b.avhdx: its parent $M/a.vhdx changed after it was made and holds all its data (vhdx merge); nothing builds on it: delete it" out.txt ||
	fail "b.avhdx not listed as merged: $(cat out.txt)"
grep -qxF "merged: $M/w.avhd: its parent $M/v.vhd changed after it was made and holds all its data (vhdx merge); nothing builds on it: delete it" out.txt ||
	fail "w.avhd not listed as merged: $(cat out.txt)"
grep -qxF "  # DELETES $M/b.avhdx: merged into $M/a.vhdx, which holds all its data (nothing builds on it):" out.txt || fail "b note: $(cat out.txt)"
grep -qxF "  rm -- '$M/b.avhdx'" out.txt || fail "b command: $(cat out.txt)"
grep -qxF "  rm -- '$M/w.avhd'" out.txt || fail "w command: $(cat out.txt)"
grep -q "^unreferenced\|^linkage mismatch" out.txt && fail "a merged layer reported as broken: $(cat out.txt)"
run_cmds out.txt
"$VHDX" checkpoints "$M" > out.txt || fail "after deleting the merged layers: $(cat out.txt)"
# a checkpoint whose parent was replaced by another disk is not "merged"
mk --size 8M "$M/p.vhdx"
mk --parent "$M/p.vhdx" "$M/q.avhdx"
put "$M/q.avhdx" 0 300000
mk --size 8M --force "$M/p.vhdx"
"$VHDX" checkpoints "$M" > out.txt
grep -q "^merged: $M/q.avhdx" out.txt && fail "a checkpoint over a replaced parent called merged: $(cat out.txt)"
grep -qxF "unreferenced: $M/q.avhdx: nothing builds on it and its parent is another image now: no chain can read it" out.txt ||
	fail "q.avhdx: $(cat out.txt)"
pass "4: after vhdx merge B (VHDX, VHD) the report lists B for deletion; the rm runs; a replaced parent is not a merge"

# ---- issue 15 item 8: a cycle of parents (each links to the other's identity)
C=$T/c8
mkdir "$C"
mk --size 8M "$C/p.vhdx"
mk --parent "$C/p.vhdx" "$C/b.avhdx"
mk --parent "$C/b.avhdx" "$C/a.avhdx"
pid=$("$VHDX" info --json --no-parent "$C/p.vhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["identity"])')
aid=$("$VHDX" info --json --no-parent "$C/a.avhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["identity"])')
# b's locator: the linkage becomes a's identity (same length, metadata has no checksum); a takes p's name
python3 - "$C/b.avhdx" "$pid" "$aid" <<'EOF' || fail "patching b's linkage"
import sys
path, old, new = sys.argv[1:4]
data = open(path, "rb").read()
o = ("{" + old + "}").encode("utf-16-le")
n = ("{" + new + "}").encode("utf-16-le")
if data.count(o) != 1:
    o, n = o.upper(), n.upper()
assert data.count(o) == 1, "the linkage is not in the file once"
open(path, "wb").write(data.replace(o, n))
EOF
mv "$C/a.avhdx" "$C/p.vhdx"
# a leaf over the cycle: made over x.vhdx, its linkage then set to b's identity, x.vhdx then a link to b
mk --size 8M "$C/x.vhdx"
mk --parent "$C/x.vhdx" "$C/top.avhdx"
bid=$("$VHDX" info --json --no-parent "$C/b.avhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["identity"])')
xid=$("$VHDX" info --json --no-parent "$C/x.vhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["identity"])')
python3 -c '
import sys
path, old, new = sys.argv[1:4]
data = open(path, "rb").read()
o = ("{" + old + "}").encode("utf-16-le")
n = ("{" + new + "}").encode("utf-16-le")
assert data.count(o) == 1
open(path, "wb").write(data.replace(o, n))
' "$C/top.avhdx" "$xid" "$bid" || fail "patching top's linkage"
rm "$C/x.vhdx"
ln -s b.avhdx "$C/x.vhdx"
"$VHDX" info "$C/b.avhdx" > /dev/null 2> info.err && fail "info opened a cycle"
grep -q "cycle" info.err || fail "info does not see the cycle: $(cat info.err)"
"$VHDX" checkpoints "$C" > out.txt 2> err.txt
rc=$?
[ $rc -eq 3 ] || fail "a cycle: exit $rc, expected 3: $(cat out.txt)"
grep -q "clean" out.txt && fail "a cycle reported clean: $(cat out.txt)"
grep -qxF "cycle of parents: the parent of $C/b.avhdx is $C/p.vhdx; the parent of $C/p.vhdx is $C/b.avhdx; no chain through them reaches a base" out.txt ||
	fail "no cycle line: $(cat out.txt)"
grep -qF "1 cycles, 1 incomplete chains" out.txt || fail "cycle count: $(cat out.txt)"
grep -qxF "incomplete chain: $C/top.avhdx (no base: its parents run into a cycle at $C/top.avhdx; the leaf cannot be read)" out.txt ||
	fail "the leaf over the cycle is not reported: $(cat out.txt)"
"$VHDX" checkpoints --json "$C" > out.json
[ $? -eq 3 ] || fail "a cycle, JSON: exit not 3"
python3 -c '
import json, sys
r = json.load(open("out.json"))
assert r["clean"] is False and r["summary"]["cycles"] == 1, r["summary"]
assert sorted(r["cycles"][0]["images"]) == sorted([sys.argv[1] + "/b.avhdx", sys.argv[1] + "/p.vhdx"]), r["cycles"]
' "$C" || fail "cycle JSON"
pass "issue 15.8: a cycle of parents is reported (text, JSON), exit 3"
