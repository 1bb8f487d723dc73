#!/bin/bash
# test-checkpoints.sh - vhdx checkpoints DIR: a folder holding a clean chain,
# a fork, a missing parent, a linkage mismatch, a chain with two extra
# recovery checkpoints, an interrupted merge (a power cut during vhdx merge),
# an image with a foreign name, a truncated image and files that are no
# images.  Checks the exact report lines and JSON fields, the exit codes
# (3 problems, 0 clean, 1 error), that the default report is neutral (no
# merge of ordinary checkpoints) while --backup-checkpoints 1 diagnoses the
# extra recovery checkpoints, and that running the printed merge commands
# leaves a folder that reports clean with every leaf reading as before.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 sha256sum
cd "$T"

put() { head -c "$3" /dev/urandom | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }
mk() { "$VHDX" create "$@" >/dev/null || fail "create $*"; }
guid() { "$VHDX" info --json --no-parent "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0][sys.argv[1]])' "$2"; }
linkage() { "$VHDX" info --json --no-parent "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["parent"]["linkage"])'; }

D=$T/vm
mkdir "$D"
# a clean chain: base + one checkpoint
mk --size 8M "$D/clean.vhdx"
mk --parent "$D/clean.vhdx" "$D/clean-1.avhdx"
put "$D/clean-1.avhdx" 1M 100000
# a fork: two children of one parent
mk --size 8M "$D/fork.vhdx"
mk --parent "$D/fork.vhdx" "$D/fork-a.avhdx"
mk --parent "$D/fork.vhdx" "$D/fork-b.avhdx"
# a missing parent
mk --size 8M "$D/gone.vhdx"
mk --parent "$D/gone.vhdx" "$D/orphan.avhdx"
orphan_link=$(linkage "$D/orphan.avhdx")
rm "$D/gone.vhdx"
# a linkage mismatch: the parent was replaced by another disk of the same name
mk --size 8M "$D/mm.vhdx"
mk --parent "$D/mm.vhdx" "$D/mm-1.avhdx"
rm "$D/mm.vhdx"
mk --size 8M "$D/mm.vhdx"
mm_link=$(linkage "$D/mm-1.avhdx")
mm_id=$(guid "$D/mm.vhdx" identity)
[ "$mm_link" != "$mm_id" ] || fail "the replaced parent has the same identity"
# two extra recovery checkpoints: base <- vm-1 <- vm-2 <- vm-3 (VHD, to cover both formats)
mk --size 8M "$D/vm.vhd"
put "$D/vm.vhd" 0 3M
for i in 1 2 3; do
	p=$D/vm.vhd; [ $i -gt 1 ] && p=$D/vm-$((i - 1)).avhd
	mk --format vhd --parent "$p" "$D/vm-$i.avhd"
	put "$D/vm-$i.avhd" $((i * 1048576 + 512)) 700000
done
vm_sum=$(rawsum "$D/vm-3.avhd")
# an interrupted merge: a power cut at the second flush of the base during vhdx merge
# (after the base took its new identity: db-1 no longer links to it)
mk --size 8M "$D/db.vhdx"
mk --parent "$D/db.vhdx" "$D/db-1.avhdx"
put "$D/db-1.avhdx" 0 2M
mk --parent "$D/db-1.avhdx" "$D/db-2.avhdx"
put "$D/db-2.avhdx" 4M 300000
db_sum=$(rawsum "$D/db-2.avhdx")
echo "op=flush file=db.vhdx nth=2 crash" > crash.rules
"$VHDX" --faults crash.rules merge --no-progress "$D/db-1.avhdx" > merge.out 2>&1 && fail "the crashed merge succeeded"
[ -f "$D/db-1.avhdx.merging" ] || fail "no merge record after the crash: $(cat merge.out)"
# an image under a foreign name, a truncated image, files that are not images
cp "$D/clean.vhdx" "$D/disk.bin"
head -c 100000 "$D/fork.vhdx" > "$D/cut.vhdx"
head -c 5000 /dev/urandom > "$D/noise.avhdx"
echo "VM notes" > "$D/notes.txt"
mkdir "$D/Snapshots"

"$VHDX" checkpoints "$D" > out.txt 2> err.txt
rc=$?
[ $rc -eq 3 ] || fail "checkpoints: exit $rc, expected 3 (problems): $(cat out.txt err.txt)"
[ -s err.txt ] && fail "checkpoints wrote to stderr: $(cat err.txt)"
want() { grep -qxF -- "$1" out.txt || fail "no line '$1' in the report:
$(cat out.txt)"; }
want "folder $D: 16 images, 2 unreadable, 2 other files"
want "chain: $D/clean.vhdx <- $D/clean-1.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 8388608 bytes)"
want "chain: $D/disk.bin (depth 1: a base alone, vhdx, virtual 8388608 bytes)"
want "chain: $D/fork.vhdx <- $D/fork-a.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 8388608 bytes)"
want "chain: $D/fork.vhdx <- $D/fork-b.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 8388608 bytes)"
want "chain: $D/vm.vhd <- $D/vm-1.avhd <- $D/vm-2.avhd <- $D/vm-3.avhd (depth 4: the base and 3 checkpoints, vhd, virtual 8388608 bytes)"
grep -q "recovery\|0xA000971E\|vm-2.avhd. --into" out.txt && fail "the neutral report calls ordinary checkpoints recovery checkpoints: $(cat out.txt)"
want "fork: $D/fork.vhdx has 2 children: $D/fork-a.avhdx $D/fork-b.avhdx (merging one child into it would change what the others read)"
want "linkage mismatch: $D/mm-1.avhdx: parent \"mm.vhdx\" {$mm_link} is $D/mm.vhdx {$mm_id} now"
grep -qF "missing parent: $D/orphan.avhdx: parent \"gone.vhdx\" {$orphan_link} not found; tried: " out.txt ||
	fail "no missing-parent line for orphan.avhdx: $(cat out.txt)"
grep "^missing parent: $D/orphan.avhdx" out.txt | grep -qF "$D/gone.vhdx (not found)" ||
	fail "the missing parent line does not list $D/gone.vhdx as tried"
want "interrupted merge: $D/db-1.avhdx into $(realpath "$D/db.vhdx") ($D/db-1.avhdx.merging): run the same merge again to complete it"
want "unreferenced: $D/mm-1.avhdx: nothing builds on it and its parent is another image now: no chain can read it"
want "unreferenced: $D/orphan.avhdx: nothing builds on it and its parent is missing: no chain can read it"
want "unreadable: $D/noise.avhdx: named like an image, but neither a VHDX nor a VHD (5000 bytes)"
grep -q "^unreadable: $D/cut.vhdx: .*region table" out.txt || fail "cut.vhdx not reported as unreadable: $(cat out.txt)"
grep -q "notes.txt\|Snapshots" out.txt && fail "a file that is no image was reported"
want "incomplete chain: $D/db-1.avhdx <- $D/db-2.avhdx (no base: an interrupted merge at $D/db-1.avhdx; the leaf cannot be read)"
want "  # completes the interrupted merge of $D/db-1.avhdx into $(realpath "$D/db.vhdx"), re-points its children to it, and DELETES $D/db-1.avhdx (its data is then in $(realpath "$D/db.vhdx")):"
want "  vhdx merge '$D/db-1.avhdx' --into '$(realpath "$D/db.vhdx")' --delete --relink '$D/db-2.avhdx'"
[ "$(grep -c '^  vhdx merge ' out.txt)" = 1 ] || fail "expected exactly 1 merge command: $(cat out.txt)"
want "summary: 7 chains, 1 forks, 1 missing parents, 1 linkage mismatches, 1 interrupted merges, 0 cycles, 1 incomplete chains, 0 merged, 2 unreferenced, 2 unreadable"
want "problems found"
pass "text report: chains, fork, missing parent, mismatch, interrupted merge, unreferenced, unreadable, commands"

# the backup diagnosis, asked for: the backup keeps one checkpoint over a base
"$VHDX" checkpoints --backup-checkpoints 1 "$D" > out.txt 2> err.txt
[ $? -eq 3 ] || fail "checkpoints --backup-checkpoints 1: exit not 3"
want "extra recovery checkpoints: 2 over $D/vm.vhd: $D/vm-1.avhd $D/vm-2.avhd (the backup keeps 1; a backup job fails with 0xA000971E, another recovery checkpoint exists)"
want "  # merges the extra recovery checkpoints $D/vm-1.avhd and $D/vm-2.avhd into $D/vm.vhd and DELETES $D/vm-1.avhd and $D/vm-2.avhd:"
want "  vhdx merge '$D/db-1.avhdx' --into '$(realpath "$D/db.vhdx")' --delete --relink '$D/db-2.avhdx'"
want "  vhdx merge '$D/vm-2.avhd' --into '$D/vm.vhd' --delete --relink '$D/vm-3.avhd'"
[ "$(grep -c '^  vhdx merge ' out.txt)" = 2 ] || fail "expected exactly 2 merge commands: $(cat out.txt)"
want "summary: 7 chains, 1 forks, 1 missing parents, 1 linkage mismatches, 1 interrupted merges, 0 cycles, 1 incomplete chains, 0 merged, 2 unreferenced, 2 unreadable, 2 extra checkpoints (the backup keeps 1)"
want "problems found"
pass "--backup-checkpoints 1: the extra recovery checkpoints (0xA000971E) and their merge command"

# the same as JSON
"$VHDX" checkpoints --backup-checkpoints 1 --json "$D" > out.json
[ $? -eq 3 ] || fail "checkpoints --json: exit not 3"
python3 - "$D" "$mm_link" "$mm_id" "$orphan_link" out.json <<'EOF' || fail "JSON report"
import json, sys
d, mm_link, mm_id, orphan_link = sys.argv[1:5]
r = json.load(open(sys.argv[5]))
s = r["summary"]
assert (s["images"], s["chains"], s["forks"], s["missing_parents"], s["linkage_mismatches"], s["interrupted_merges"],
        s["unreferenced"], s["extra_checkpoints"], s["chains_with_extra_checkpoints"], s["unreadable"]) == \
       (16, 7, 1, 1, 1, 1, 2, 2, 1, 2), s
assert r["clean"] is False
vm = [c for c in r["chains"] if c["leaf"] == d + "/vm-3.avhd"][0]
assert vm["depth"] == 4 and vm["checkpoints"] == 3 and vm["format"] == "vhd" and vm["extra_checkpoints"] == 2, vm
assert [l["path"] for l in vm["layers"]] == [d + "/vm.vhd", d + "/vm-1.avhd", d + "/vm-2.avhd", d + "/vm-3.avhd"]
assert all(l["file_size"] > 0 for l in vm["layers"])
fk = r["forks"][0]
assert fk["parent"] == d + "/fork.vhdx" and [c["path"] for c in fk["children"]] == [d + "/fork-a.avhdx", d + "/fork-b.avhdx"]
bl = {b["image"]: b for b in r["broken_links"]}
assert bl[d + "/mm-1.avhdx"]["problem"] == "linkage_mismatch"
assert bl[d + "/mm-1.avhdx"]["linkage"] == mm_link and bl[d + "/mm-1.avhdx"]["found_identity"] == mm_id
assert bl[d + "/mm-1.avhdx"]["parent"] == "mm.vhdx" and bl[d + "/mm-1.avhdx"]["found"] == d + "/mm.vhdx"
assert bl[d + "/orphan.avhdx"]["problem"] == "missing" and bl[d + "/orphan.avhdx"]["linkage"] == orphan_link
assert d + "/gone.vhdx (not found)" in bl[d + "/orphan.avhdx"]["tried"]
assert bl[d + "/db-1.avhdx"]["problem"] == "interrupted_merge" and bl[d + "/db-1.avhdx"]["referenced"] is True
assert sorted(u["image"] for u in r["unreferenced"]) == [d + "/mm-1.avhdx", d + "/orphan.avhdx"]
assert sorted(u["path"] for u in r["unreadable"]) == [d + "/cut.vhdx", d + "/noise.avhdx"]
assert len(r["commands"]) == 2
EOF
pass "JSON report: summary counts, chain layers, fork, both GUIDs of the mismatch, tried paths, commands"

# run the printed commands: the extras and the interrupted merge go away, the leaves read the same
grep '^  vhdx merge ' out.txt | sed "s|^  vhdx |\"\$VHDX\" |; s|\$| --no-progress|" > cmds.sh
VHDX=$VHDX bash -e cmds.sh > cmds.out 2>&1 || fail "the printed merge commands failed: $(cat cmds.out)"
[ "$(rawsum "$D/vm-3.avhd")" = "$vm_sum" ] || fail "vm-3.avhd reads differently after the cleanup"
[ "$(rawsum "$D/db-2.avhdx")" = "$db_sum" ] || fail "db-2.avhdx reads differently after the cleanup"
[ -e "$D/vm-1.avhd" ] || [ -e "$D/vm-2.avhd" ] || [ -e "$D/db-1.avhdx" ] || [ -e "$D/db-1.avhdx.merging" ] &&
	fail "merged layers or the record are still there: $(ls "$D")"
"$VHDX" checkpoints --backup-checkpoints 1 "$D" > out2.txt
[ $? -eq 3 ] || fail "the fork, orphan and mismatch remain: exit should stay 3"
grep -qxF "chain: $D/vm.vhd <- $D/vm-3.avhd (depth 2: the base and 1 checkpoint, vhd, virtual 8388608 bytes)" out2.txt || fail "vm chain: $(cat out2.txt)"
grep -qxF "chain: $D/db.vhdx <- $D/db-2.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 8388608 bytes)" out2.txt || fail "db chain: $(cat out2.txt)"
grep -q "^extra recovery\|^interrupted merge\|^  vhdx merge" out2.txt && fail "still something to merge: $(cat out2.txt)"
# what remains cannot be merged: remove it by hand, then the folder is clean
rm -r "$D/fork-b.avhdx" "$D/orphan.avhdx" "$D/mm-1.avhdx" "$D/cut.vhdx" "$D/noise.avhdx"
"$VHDX" checkpoints "$D" > out3.txt || fail "checkpoints after the cleanup: exit $? $(cat out3.txt)"
grep -qxF "summary: 6 chains, 0 forks, 0 missing parents, 0 linkage mismatches, 0 interrupted merges, 0 cycles, 0 incomplete chains, 0 merged, 0 unreferenced, 0 unreadable" out3.txt ||
	fail "summary after the cleanup: $(cat out3.txt)"
grep -qxF "clean: nothing broken" out3.txt || fail "not clean: $(cat out3.txt)"
"$VHDX" checkpoints --json "$D" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["clean"] is True and r["commands"] == []' ||
	fail "JSON after the cleanup"
pass "the printed merge commands clean up the extras and the interrupted merge; leaves read as before; exit 0 when clean"

# a parent outside the folder, reached through --path-map
mkdir -p "$T/store" "$T/ext"
mk --size 4M "$T/store/gold.vhdx"
mk --parent "$T/store/gold.vhdx" "$T/ext/work.avhdx"
"$VHDX" checkpoints "$T/ext" > ext.txt || fail "a parent outside the folder (relative path) is found: $(cat ext.txt)"
grep -qxF "chain: $T/ext/../store/gold.vhdx <- $T/ext/work.avhdx (depth 2: the base and 1 checkpoint, vhdx, virtual 4194304 bytes)" ext.txt ||
	grep -qF "gold.vhdx <- $T/ext/work.avhdx (depth 2" ext.txt || fail "outside parent: $(cat ext.txt)"
mv "$T/store" "$T/moved"
"$VHDX" checkpoints "$T/ext" > ext2.txt
[ $? -eq 3 ] || fail "a moved parent is not a problem?"
win=$(tr '/' '\\' <<< "$T/store")
"$VHDX" checkpoints --path-map "$win=$T/moved" "$T/ext" > ext3.txt ||
	fail "--path-map did not find the moved parent: $(cat ext3.txt)"
grep -qF "$T/moved/gold.vhdx <- $T/ext/work.avhdx (depth 2" ext3.txt || fail "path-map chain: $(cat ext3.txt)"
pass "parents outside the folder: relative locator, --path-map"

# errors and usage
"$VHDX" checkpoints "$T/nonexistent" > /dev/null 2> e.txt
[ $? -eq 1 ] || fail "a missing folder is not exit 1"
grep -q "nonexistent" e.txt || fail "the error does not name the folder"
"$VHDX" checkpoints > /dev/null 2>&1
[ $? -eq 2 ] || fail "no folder is not a usage error"
mkdir "$T/empty"
"$VHDX" checkpoints "$T/empty" > e2.txt || fail "an empty folder is not clean"
grep -qxF "folder $T/empty: 0 images, 0 unreadable, 0 other files" e2.txt || fail "empty folder: $(cat e2.txt)"
pass "exit 1 for a missing folder, 2 for usage, 0 for an empty folder"
