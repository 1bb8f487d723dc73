#!/bin/bash
# test-nbd-source.sh - NBD URIs as image paths (libvhdx/io/nbd.c, issue #20):
# `nbdkit file dir=FOLDER` serves a folder holding a 3-layer VHDX chain and
# a 2-layer VHD chain; `vhdx convert -O raw 'nbd+unix:///child?socket=S' -`
# reads them byte for byte as the local files, the parents found as exports
# of the same server through their relative locators; `vhdx info` names
# every layer by its URI; vhdxfs mounts the URI and reads the same bytes;
# the nbdkit plugin takes the URI as file=; a missing export names every
# URI tried; server errors (nbdkit's error filter) and the fault engine
# (file= matching the URI) give reported errors in convert, in a mount
# and in `vhdx cycle mount --image URI`, never a silent short or wrong
# read, nothing acknowledged lost.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires nbdkit nbdinfo python3 timeout
"$VHDX" info "nbd+unix:///x?socket=$T/none" 2> "$T/probe.err"
grep -q "built without libnbd" "$T/probe.err" && skip "libvhdx was built without libnbd (Debian: libnbd-dev)"
nbdkit file --version > /dev/null 2>&1 || skip "nbdkit's file plugin is missing"
cd "$T"

# ---------------------------------------------------------------- the chains
mkdir srv
"$VHDX" create --size 16M --block-size 1M srv/base.vhdx > /dev/null
head -c 5M /dev/urandom | "$VHDX" write --offset 1M srv/base.vhdx
head -c 777777 /dev/urandom | "$VHDX" write --offset 9000001 srv/base.vhdx
"$VHDX" create --parent srv/base.vhdx srv/c1.avhdx > /dev/null
head -c 300000 /dev/urandom | "$VHDX" write --offset 2000000 srv/c1.avhdx
"$VHDX" create --parent srv/c1.avhdx "srv/child disk.avhdx" > /dev/null
head -c 10 /dev/urandom | "$VHDX" write --offset 4194307 "srv/child disk.avhdx"
"$VHDX" write --offset 8M --discard 2M "srv/child disk.avhdx" < /dev/null
"$VHDX" create --format vhd --size 8M srv/vbase.vhd > /dev/null
head -c 3M /dev/urandom | "$VHDX" write --offset 1M srv/vbase.vhd
"$VHDX" create --format vhd --parent srv/vbase.vhd srv/vchild.vhd > /dev/null
head -c 4096 /dev/urandom | "$VHDX" write --offset 2M srv/vchild.vhd
"$VHDX" convert -O raw "srv/child disk.avhdx" want.raw
"$VHDX" convert -O raw srv/vchild.vhd want-vhd.raw
[ "$(sha256 want.raw)" != "$(sha256 srv/base.vhdx)" ] || fail "setup"

S="$T/s"
nbdkit_start "$S" file dir="$T/srv"
U="nbd+unix:///child%20disk.avhdx?socket=$S"

# ---------------------------------------------------------------- reads
"$VHDX" convert -O raw "$U" - > got.raw 2> err || fail "convert $U: $(cat err)"
expect_eq "VHDX chain over NBD" "$(sha256 got.raw)" "$(sha256 want.raw)"
"$VHDX" convert -O raw "nbd+unix:///vchild.vhd?socket=$S" - > got-vhd.raw 2> err || fail "convert vchild.vhd: $(cat err)"
expect_eq "VHD chain over NBD" "$(sha256 got-vhd.raw)" "$(sha256 want-vhd.raw)"
pass "vhdx convert of an NBD URI equals the local read (VHDX 3 layers, VHD 2 layers)"

# the layers are named by URI, the parents found as exports of the same server
"$VHDX" info --json "$U" > info.json || fail "vhdx info --json $U"
python3 - info.json "$S" <<'PY' || fail "vhdx info --json: $(cat info.json)"
import json, sys
info, s = json.load(open(sys.argv[1])), sys.argv[2]
paths = [l["path"] for l in info["layers"]]
want = ["nbd+unix:///%s?socket=%s" % (n, s) for n in ("child%20disk.avhdx", "c1.avhdx", "base.vhdx")]
assert paths == want, paths
assert info["chain_depth"] == 3, info["chain_depth"]
PY
pass "vhdx info names every layer by its URI"

# the plugin serves the URI as file=, and its parent given as parent=URI
if [ -f "$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so" ] && command -v nbdcopy > /dev/null &&
	! grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile"; then
	timeout 60 nbdkit -U - -r "$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so" file="$U" \
		--run 'nbdcopy "$uri" plugin.raw' 2> plugin.err || fail "nbdkit vhdx file=$U: $(cat plugin.err)"
	expect_eq "nbdkit vhdx file=URI" "$(sha256 plugin.raw)" "$(sha256 want.raw)"
	pass "nbdkit vhdx file=nbd+unix://... serves the chain"
fi

# a missing parent export: ENOENT naming the URIs tried
"$VHDX" create --parent srv/base.vhdx srv/orphan.avhdx > /dev/null
mv srv/base.vhdx srv/base.moved
expect_fail_msg "orphan.avhdx\?socket=.*: parent \"base.vhdx\" \(identity \{[-0-9a-f]+\}\) not found. Tried: .*nbd\+unix:///base.vhdx\?socket=$S \(.*server has no export named 'base.vhdx'" \
	"$VHDX" info "nbd+unix:///orphan.avhdx?socket=$S"
# ... and parent-dir= given as a URI finds it under another name's folder
mkdir srv/old && mv srv/base.moved srv/old/base.vhdx
expect_fail_msg "not found" "$VHDX" info "nbd+unix:///orphan.avhdx?socket=$S"
nbdkit_stop
cp srv/orphan.avhdx orphan.avhdx
# nbdkit file dir= serves no subfolders: serve the subfolder on a second socket
nbdkit_start "$T/s2" file dir="$T/srv/old"
"$VHDX" info --json --parent-dir "nbd+unix:///?socket=$T/s2" orphan.avhdx > info2.json 2> err ||
	fail "--parent-dir URI: $(cat err)"
python3 -c 'import json, sys; p = [l["path"] for l in json.load(open("info2.json"))["layers"]]; assert p[1] == sys.argv[1], p' \
	"nbd+unix:///base.vhdx?socket=$T/s2" || fail "--parent-dir URI: $(cat info2.json)"
nbdkit_stop
mv srv/old/base.vhdx srv/base.vhdx
nbdkit_start "$S" file dir="$T/srv"
pass "a missing parent export is reported with every URI tried; a parent-dir URI is searched"

# ---------------------------------------------------------------- the fault engine: file= matches the URI
printf 'op=read file=nbd+unix:///c1.avhdx* struct=payload err=EIO\n' > rules
expect_fail_msg "nbd\+unix:///c1.avhdx\?socket=.*injected EIO \(fault rule 1" \
	"$VHDX" --faults rules convert -O raw "$U" out.raw
printf 'op=read file=*/nothing-like-this* err=EIO\n' > rules-none
"$VHDX" --faults rules-none convert -O raw "$U" - > got2.raw 2> err || fail "a rule matching nothing: $(cat err)"
expect_eq "a rule matching nothing" "$(sha256 got2.raw)" "$(sha256 want.raw)"
pass "fault rules with file= matching the URI fail the read and say so"

# ---------------------------------------------------------------- server errors
# nbdkit's error filter fails every read while $T/trigger exists: the open
# (or the read) must fail with EIO and libnbd's message, never succeed.
nbdkit_stop
nbdkit_start "$S" --filter=error file dir="$T/srv" error-pread=EIO error-pread-rate=100% error-pread-file="$T/trigger"
touch trigger
expect_fail_msg "nbd\+unix:///child%20disk.avhdx\?socket=.*(Input/output error)" "$VHDX" convert -O raw "$U" out.raw
rm trigger
# the same server without the trigger reads right
"$VHDX" convert -O raw "$U" - > got3.raw 2> err || fail "no trigger: convert failed: $(cat err)"
expect_eq "error filter without its trigger" "$(sha256 got3.raw)" "$(sha256 want.raw)"
pass "server errors surface as EIO with libnbd's message"

# ---------------------------------------------------------------- vhdxfs
if [ -x "$VHDXFS" ] && [ -c /dev/fuse ] && command -v fusermount3 > /dev/null; then
	fuse_mount "$T/mnt" "$U"
	expect_eq "vhdxfs of the URI" "$(sha256 "$T/mnt/disk")" "$(sha256 want.raw)"
	# four readers at once (direct I/O, past the page cache): the backend's connection pool
	pids=()
	for i in 0 1 2 3; do
		dd if="$T/mnt/disk" of="par$i" bs=1M skip=$((i * 4)) count=4 iflag=direct status=none &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a concurrent reader through vhdxfs failed"; done
	for i in 0 1 2 3; do
		dd if=want.raw of="wpar$i" bs=1M skip=$((i * 4)) count=4 status=none
		expect_eq "concurrent reader $i through vhdxfs" "$(sha256 "par$i")" "$(sha256 "wpar$i")"
	done
	# the server starts failing reads: the mount reports EIO (direct reads, past the page cache)
	touch trigger
	if dd if="$T/mnt/disk" of=/dev/null bs=64k iflag=direct 2> dd.err; then
		fail "reads through vhdxfs succeeded while the server failed every read"
	fi
	grep -q "Input/output error" dd.err || fail "dd through vhdxfs: $(cat dd.err)"
	rm trigger
	fuse_unmount "$T/mnt"
	pass "vhdxfs mounts the URI, reads the same bytes (also four readers at once), and reports the server's errors as EIO"
else
	echo "vhdxfs part skipped: no vhdxfs or /dev/fuse"
fi

# ---------------------------------------------------------------- vhdx cycle mount --image URI
# the scratch-disk cycle over NBD (a fixed VHDX: an export cannot grow), clean first; then
# the server fails every write: each cycle reports its errors (EIO, naming the URI), none is
# silent, damaged or lost
if [ -x "$VHDXFS" ] && [ -c /dev/fuse ] && command -v fusermount3 > /dev/null; then
	nbdkit_stop
	"$VHDX" create --type fixed --size 16M srv/scratch.vhdx > /dev/null
	nbdkit_start "$S" --filter=error file dir="$T/srv" error-pwrite=EIO error-pwrite-rate=100% \
		error-pwrite-file="$T/trigger"
	SU="nbd+unix:///scratch.vhdx?socket=$S"
	timeout 300 "$VHDX" cycle mount --json --image "$SU" --count 2 --workdir "$T/cw1" > cyc1.json 2> cyc.err ||
		fail "cycle mount over NBD: $(cat cyc.err cyc1.json)"
	touch trigger
	rc=0
	timeout 300 "$VHDX" cycle mount --json --image "$SU" --count 2 --workdir "$T/cw2" > cyc2.json 2> cyc.err || rc=$?
	rm trigger
	expect_eq "cycle mount under server write errors: exit status" "$rc" 3
	python3 - cyc1.json cyc2.json "$SU" <<'PY' || fail "cycle mount over NBD: $(cat cyc1.json cyc2.json)"
import json, sys
a, b, uri = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert a["image"] == uri and a["summary"]["cycles_by_class"]["clean"] == 2, a["summary"]
s = b["summary"]["cycles_by_class"]
assert s["unexpected"] == 2 and s["silent"] == 0 and s["damaged"] == 0 and s["lost"] == 0, s
for c in b["cycles"]:
    assert c["errors"], c
    for e in c["errors"]:
        assert e["errno"] == "EIO" and uri in e["message"] and "Input/output error" in e["message"], e
    assert c["verify"]["reopened"] and c["verify"]["lost_sectors"] == 0, c["verify"]
PY
	pass "vhdx cycle mount --image URI: clean cycles, and server write errors reported in every cycle, nothing lost"
fi
