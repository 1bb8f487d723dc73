#!/bin/bash
# test-parent-escape.sh - parent locators written by a hostile image (issue
# 15, item 4): a path-mapped absolute path may not climb out of the folder
# its map names; a relative ".." path stays readable (Hyper-V writes
# "..\Virtual Hard Disks\base.vhdx") but merge writes only into a file in
# the child's folder, a --parent-dir folder or one the user names (--into);
# a candidate that is no image is refused without describing the file; a
# parent swapped between a regular file and a FIFO never hangs a command.
# The device case is tests/test-parent-device.sh.
# VHDX_RACE_RUNS (default 300) sets the number of runs of the FIFO race.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 timeout mkfifo

linkage() { # IMAGE: the link its parent locator holds
	"$VHDX" info --json --no-parent "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["parent"]["linkage"])'
}
abs_locator() { # IMAGE: its absolute locator path (VHDX absolute_win32_path, VHD W2ku)
	"$VHDX" info --json --no-parent "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)["layers"][0]["parent"]
print([p["value"] for p in d["paths"] if p["key"] in ("absolute_win32_path", "W2ku")][0])'
}
# patch_locator IMAGE OLD NEW: replaces the last UTF-16LE text OLD (the
# whole absolute locator path: a VHD has it in its header's parent name
# too, which a checksum covers, and in the W2ku data after it) by NEW of
# the same length, in place (neither format checksums its locator data)
patch_locator() {
	python3 - "$@" <<'EOF' || fail "cannot patch the locator of $1"
import sys
path, old, new = sys.argv[1:4]
assert len(old) == len(new)
data = bytearray(open(path, "rb").read())
o, n = old.encode("utf-16-le"), new.encode("utf-16-le")
assert data.count(o) in (1, 2), "locator text found %d times" % data.count(o)
at = data.rindex(o)
data[at:at + len(o)] = n
open(path, "r+b").write(data)
EOF
}

# ---- a path map's folder is a fence ----
for fmt in vhdx vhd; do
	cext=avhdx
	[ $fmt = vhd ] && cext=vhd
	d="$T/pm-$fmt"
	mkdir -p "$d/map/xx/yyyyyy" "$d/vm" "$d/secret" "$d/map/okay"
	cd "$d" || fail "cd $d"
	"$VHDX" create --size 8M --block-size 1M map/xx/yyyyyy/base.$fmt || fail "$fmt: create base"
	head -c 65536 /dev/urandom | "$VHDX" write map/xx/yyyyyy/base.$fmt || fail "$fmt: write base"
	"$VHDX" create --parent map/xx/yyyyyy/base.$fmt vm/child.$cext || fail "$fmt: create child"
	cp vm/child.$cext vm/inside.$cext
	# the file a hostile locator wants read: an image with the right identity outside the map
	cp map/xx/yyyyyy/base.$fmt secret/base.$fmt
	cp map/xx/yyyyyy/base.$fmt map/okay/base.$fmt
	rm -r map/xx
	abs=$(abs_locator vm/child.$cext)
	prefix="${abs%xx\\yyyyyy\\base.$fmt}"
	escape="${prefix}..\\secret\\base.$fmt"
	patch_locator vm/child.$cext "$abs" "$escape"
	patch_locator vm/inside.$cext "$abs" "${prefix}q\\..\\okay\\base.$fmt"
	expect_eq "$fmt: patched locator" "$(abs_locator vm/child.$cext)" "$escape"
	link=$(linkage vm/child.$cext)
	expect_err "$fmt: mapped path climbing out of its folder" \
		"vhdx info: vm/child.$cext: parent \"base.$fmt\" (identity {$link}) not found. Tried: $escape (climbs out of the folder its path map names: not followed); vm/../map/xx/yyyyyy/base.$fmt (not found); vm/base.$fmt (not found)" \
		"$VHDX" info --path-map "$prefix=$d/map/" vm/child.$cext
	# the same map with a ".." that stays inside is followed
	"$VHDX" info --json --path-map "$prefix=$d/map/" vm/inside.$cext > info.json || fail "$fmt: a mapped path with .. inside its folder"
	expect_eq "$fmt: chain depth through the map" "$(python3 -c 'import json; print(json.load(open("info.json"))["chain_depth"])')" 2
	expect_eq "$fmt: parent through the map" \
		"$(python3 -c 'import json; print(json.load(open("info.json"))["layers"][1]["path"])')" "$d/map//okay/base.$fmt"
	# a map must match whole components: "...\ma" does not map "...\map\..."
	expect_err "$fmt: partial component" \
		"vhdx info: vm/inside.$cext: parent \"base.$fmt\" (identity {$link}) not found. Tried: ${prefix}q\\..\\okay\\base.$fmt (absolute path from the image: followed only through a path map); vm/../map/xx/yyyyyy/base.$fmt (not found); vm/base.$fmt (not found)" \
		"$VHDX" info --path-map "${prefix%p\\}=$d/ma" vm/inside.$cext
	pass "$fmt: --path-map: a stored path climbing out of the mapped folder is not followed, one staying inside is"
done

# ---- a candidate that is no image is not described ----
d="$T/noimage"
mkdir -p "$d" && cd "$d" || fail "cd $d"
"$VHDX" create --size 8M --block-size 1M base.vhdx && "$VHDX" create --parent base.vhdx child.avhdx || fail "create"
link=$(linkage child.avhdx)
abs=$(abs_locator child.avhdx)
printf 'root-password: hunter2\n' > base.vhdx
expect_err "a parent candidate that is no image" \
	"vhdx info: child.avhdx: parent \"base.vhdx\" (identity {$link}) not found. Tried: $abs (absolute path from the image: followed only through a path map); ./base.vhdx (not a VHDX or VHD image)" \
	"$VHDX" info child.avhdx
# named by the user, the same file is described (it is the user's own)
expect_err "an explicit parent that is no image" \
	"vhdx info: child.avhdx: parent \"base.vhdx\" (identity {$link}) not found. Tried: base.vhdx (not a VHDX or VHD image (no \"vhdxfile\" signature at offset 0 and no \"conectix\" footer at the end; file is 23 bytes))" \
	"$VHDX" info --parent base.vhdx child.avhdx
pass "a located candidate that is no image: 'not a VHDX or VHD image' and nothing about the file"

# ---- merge writes only where the user allows ----
d="$T/scope"
mkdir -p "$d/vm/snap" "$d/other" "$d/mid" "$d/keep"
cd "$d" || fail "cd $d"
"$VHDX" create --size 8M --block-size 1M other/base.vhdx || fail "create base"
head -c 1M /dev/urandom | "$VHDX" write other/base.vhdx || fail "write base"
"$VHDX" create --parent other/base.vhdx vm/snap/child.avhdx || fail "create child"
head -c 65536 /dev/urandom | "$VHDX" write --offset 2097152 vm/snap/child.avhdx || fail "write child"
"$VHDX" convert -O raw vm/snap/child.avhdx want.raw || fail "reading through ..\\..\\other (reading may climb)"
cp other/base.vhdx vm/snap/child.avhdx keep/
sums=$(sha256sum other/base.vhdx vm/snap/child.avhdx)
real=$(realpath other/base.vhdx)
expect_err "merge into a parent outside the child's folder" \
	"vhdx merge: merge of vm/snap/child.avhdx: the ancestor to write into is $real (reached through the parent locator of vm/snap/child.avhdx), outside vm/snap and the parent folders given: name it as the merge target (--into) to write into it; nothing was changed" \
	"$VHDX" merge vm/snap/child.avhdx
echo "$sums" | sha256sum --quiet -c - || fail "a refused merge changed a file"
[ ! -e vm/snap/child.avhdx.merging ] || fail "a refused merge left a merge record"
"$VHDX" merge --into other/base.vhdx vm/snap/child.avhdx > out || fail "merge --into the named file: $(cat "$T/err")"
"$VHDX" convert -O raw other/base.vhdx got.raw && cmp got.raw want.raw || fail "merge --into: wrong bytes"
cp keep/base.vhdx other/ && cp keep/child.avhdx vm/snap/
"$VHDX" merge --parent-dir other vm/snap/child.avhdx > out || fail "merge with the parent's folder as --parent-dir"
"$VHDX" convert -O raw other/base.vhdx got.raw && cmp got.raw want.raw || fail "merge --parent-dir: wrong bytes"
# --delete of a layer between, outside every allowed folder
cp keep/base.vhdx other/
"$VHDX" create --parent other/base.vhdx mid/mid.avhdx && "$VHDX" create --parent mid/mid.avhdx vm/snap/top.avhdx || fail "create mid, top"
sums=$(sha256sum other/base.vhdx mid/mid.avhdx vm/snap/top.avhdx)
expect_err "merge --delete of a layer outside the allowed folders" \
	"vhdx merge: merge of vm/snap/top.avhdx: $(realpath mid/mid.avhdx) (reached through the parent locator of vm/snap/top.avhdx) would be deleted, but it is outside vm/snap and the parent folders given: give its folder as a parent folder (--parent-dir) to allow it; nothing was changed" \
	"$VHDX" merge --delete --into other/base.vhdx vm/snap/top.avhdx
echo "$sums" | sha256sum --quiet -c - || fail "a refused merge --delete changed a file"
"$VHDX" merge --delete --parent-dir mid --into other/base.vhdx vm/snap/top.avhdx > out || fail "merge --delete with --parent-dir mid"
[ ! -e mid/mid.avhdx ] && [ ! -e vm/snap/top.avhdx ] || fail "merge --delete kept a merged layer"
# a child named without a folder: its folder is the current one
cd vm/snap || fail "cd vm/snap"
"$VHDX" create --size 8M --block-size 1M here.vhdx && "$VHDX" create --parent here.vhdx here.avhdx || fail "create here"
"$VHDX" merge here.avhdx > out || fail "merge of a bare name into its neighbour: $(cat "$T/err")"
cd "$d" || fail "cd $d"
pass "merge: refuses to write into or delete a file reached by '..' outside the allowed folders; --into and --parent-dir allow it"

# ---- FIFOs never hang a command ----
d="$T/fifo"
mkdir -p "$d" && cd "$d" || fail "cd $d"
"$VHDX" create --size 8M --block-size 1M base.vhdx && "$VHDX" create --parent base.vhdx child.avhdx || fail "create"
mkfifo stale.avhdx
# merge looks for children of CHILD among the images of its folder
timeout 20 "$VHDX" merge child.avhdx > out 2> err || fail "merge beside a FIFO named like an image exited $?: $(cat err)"
expect_err "a FIFO named as the image" "vhdx info: stale.avhdx: a FIFO cannot hold a disk image" timeout 20 "$VHDX" info stale.avhdx
pass "a FIFO named like an image in the folder or on the command line never hangs"

# ---- a parent swapped between a regular file and a FIFO ----
d="$T/race"
mkdir -p "$d" && cd "$d" || fail "cd $d"
"$VHDX" create --size 8M --block-size 1M base.vhdx && "$VHDX" create --parent base.vhdx child.avhdx || fail "create"
ln base.vhdx base.reg && mkfifo base.fifo || fail "ln, mkfifo"
# base.vhdx is always there (rename is atomic), a regular file or a FIFO in turn
python3 - <<'EOF' &
import os
while True:
    for src in ("base.fifo", "base.reg"):
        os.link(src, "swap.tmp")
        os.rename("swap.tmp", "base.vhdx")
EOF
swapper=$!
cleanup_fn "kill $swapper"
runs=${VHDX_RACE_RUNS:-300}
ok=0 refused=0
fifo_msg="./base.vhdx (a FIFO: a parent found through a locator must be a regular file (name a device as the explicit parent))"
for ((i = 0; i < runs; i++)); do
	rc=0
	timeout 10 "$VHDX" info child.avhdx > out 2> err || rc=$?
	case $rc in
	0) ok=$((ok + 1)) ;;
	1) grep -qF "$fifo_msg" err || fail "run $i: exit 1 for another reason: $(cat err)"
	   refused=$((refused + 1)) ;;
	124) fail "run $i of $runs: vhdx info hung on the parent swapped for a FIFO" ;;
	*) fail "run $i: vhdx info exited $rc: $(cat err)" ;;
	esac
done
kill -0 $swapper 2>/dev/null || fail "the swapping process died"
kill $swapper
# both states were met, so the race was run
[ $ok -gt 0 ] && [ $refused -gt 0 ] || fail "FIFO swap race: $ok runs read the parent, $refused refused the FIFO: the swap did not race"
pass "FIFO swap race: $runs runs of vhdx info, none hung ($ok read the regular parent, $refused refused the FIFO)"
