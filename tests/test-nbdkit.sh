#!/bin/bash
# test-nbdkit.sh - the nbdkit plugin (nbdkit/vhdx_plugin.c): a VHDX chain
# (base + two checkpoints with partial blocks) and a VHD chain served over
# NBD read back by nbdcopy byte for byte as `vhdx convert` reads them; four
# concurrent clients reading different ranges; block status (nbdinfo --map)
# equal to `vhdx map`; writes, zero and trim through NBD land in the leaf
# only (the image reads them back after nbdkit exits, parents unchanged,
# qemu-img check clean); readonly=true and -r refuse writes; a missing
# parent stops nbdkit at start-up and parent-dir= finds it.
#
# nbdkit runs for one client command (nbdkit_run: it ends when the command
# does, and flushes and closes the image before it exits) with
# --exit-with-parent, so it is never left running.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
PLUGIN="$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so"
[ -f "$PLUGIN" ] || skip "the nbdkit plugin was not built (configure found no nbdkit-plugin.h; Debian: nbdkit-plugin-dev)"
requires nbdkit nbdcopy nbdinfo qemu-img qemu-io python3 timeout
cd "$T"

# A sanitizer build's plugin needs the ASan runtime loaded first into the
# (uninstrumented) nbdkit (the plugin pulls in libubsan itself); leaks of
# nbdkit itself are not ours to check.  The clients that --run starts must
# not get the preload (qemu-img hangs with it).
nbdkit_sanitizer_env

# serve [NBDKIT-OPTIONS...] -- PLUGIN-PARAMS... --run CMD: nbdkit on a private
# Unix socket ($uri in CMD), plugin messages in $T/nbdkit.err; the exit status
# is CMD's.  A hang fails after 120 s: timeout kills nbdkit and its clients.
serve() {
	local opts=()
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	local params=()
	while [ "$1" != --run ]; do params+=("$1"); shift; done
	nbdkit_run "$2" "${opts[@]}" "$PLUGIN" "${params[@]}"
}

# same_sha WHAT FILE WANT-FILE
same_sha() {
	expect_eq "$1" "$(sha256 "$2")" "$(sha256 "$3")"
}

# the manual page documents every parameter of the plugin's --help, and renders cleanly
"${NBDKIT_ENV[@]}" nbdkit "$PLUGIN" --help > help.txt 2>&1 || fail "nbdkit vhdx --help: $(cat help.txt)"
params=$(sed -n 's/^\([a-z-]*\)=.*/\1/p' help.txt)
expect_eq "parameters of --help" "$(echo $params)" "file parent parent-dir path-map ignore-id-mismatch readonly"
# the first line of each .TP entry of PARAMETERS names one parameter
entries=$(awk '/^\.SH PARAMETERS/ { s = 1; next } /^\.SH/ { s = 0 } s && prev == ".TP" { print } { prev = $0 }' \
	"$top_srcdir/nbdkit/nbdkit-vhdx-plugin.1")
for p in $params; do
	grep -Eq "(^|[ [])$p=" <<< "$entries" || fail "nbdkit-vhdx-plugin.1 has no PARAMETERS entry for $p="
done
if command -v groff > /dev/null; then
	groff -man -Tutf8 -ww -z "$top_srcdir/nbdkit/nbdkit-vhdx-plugin.1" 2> groff.err && [ ! -s groff.err ] ||
		fail "groff warnings in nbdkit-vhdx-plugin.1: $(cat groff.err)"
fi
pass "nbdkit-vhdx-plugin.1 documents every parameter of --help"

# ---------------------------------------------------------------- a VHDX chain
# base: 1 MiB blocks with data in whole and partial blocks; c1 and c2:
# 2 MiB-block checkpoints with writes of a few bytes, across block
# boundaries and a discard that hides the parent's data.
"$VHDX" create --size 16M --block-size 1M base.vhdx
head -c 5M /dev/urandom | "$VHDX" write --offset 1M base.vhdx
head -c 777777 /dev/urandom | "$VHDX" write --offset 9000001 base.vhdx
"$VHDX" create --parent base.vhdx c1.avhdx
head -c 300000 /dev/urandom | "$VHDX" write --offset 2000000 c1.avhdx
head -c 4096 /dev/urandom | "$VHDX" write --offset 14680064 c1.avhdx
"$VHDX" create --parent c1.avhdx c2.avhdx
head -c 10 /dev/urandom | "$VHDX" write --offset 4194307 c2.avhdx
head -c 1000 /dev/urandom | "$VHDX" write --offset 6291000 c2.avhdx
"$VHDX" write --offset 8M --discard 2M c2.avhdx < /dev/null
"$VHDX" convert -O raw c2.avhdx want.raw || fail "vhdx convert of the chain"
cmp -s <(head -c 2M want.raw | tail -c 1M) <(head -c 1M /dev/zero) && fail "the chain's data is missing (test set-up)"

serve -r -- file=c2.avhdx --run 'nbdcopy "$uri" got.raw' || fail "nbdcopy of the VHDX chain: $(cat nbdkit.err)"
same_sha "VHDX chain copied by nbdcopy" got.raw want.raw
pass "VHDX chain (base + 2 checkpoints) read over NBD equals vhdx convert"

# ---------------------------------------------------------------- a VHD chain
"$VHDX" create --size 12M --block-size 512K base.vhd
head -c 3M /dev/urandom | "$VHDX" write --offset 100000 base.vhd
"$VHDX" create --parent base.vhd c1.vhd
head -c 70000 /dev/urandom | "$VHDX" write --offset 500001 c1.vhd
"$VHDX" create --parent c1.vhd c2.vhd
head -c 513 /dev/urandom | "$VHDX" write --offset 11534335 c2.vhd
"$VHDX" convert -O raw c2.vhd want-vhd.raw || fail "vhdx convert of the VHD chain"
serve -r -- file=c2.vhd --run 'nbdcopy "$uri" got-vhd.raw' || fail "nbdcopy of the VHD chain: $(cat nbdkit.err)"
same_sha "VHD chain copied by nbdcopy" got-vhd.raw want-vhd.raw
# and the base alone, against qemu's own VHD reader (the size from the
# footer, not from the CHS geometry qemu prefers for other creators)
qemu-img convert --image-opts driver=vpc,force_size_calc=current_size,file.filename=base.vhd \
	-O raw want-qemu.raw || fail "qemu-img convert base.vhd"
serve -r -- file=base.vhd --run 'nbdcopy "$uri" got-base.raw' || fail "nbdcopy of base.vhd: $(cat nbdkit.err)"
same_sha "base.vhd over NBD vs qemu-img" got-base.raw want-qemu.raw
pass "VHD chain read over NBD equals vhdx convert; base.vhd equals qemu-img"

# ---------------------------------------------------------------- concurrent clients
# Four qemu-img processes read four different ranges (raw driver offset/size
# over the NBD socket) at once, while nbdcopy uses several connections.
cat > clients.sh <<'EOF'
sock=$1 uri=$2 pids=() i=0
for r in 0:3145728 3145000:4194304 7340032:2097152 8999936:7777280; do
	off=${r%%:*} len=${r##*:}
	qemu-img convert -f raw -O raw \
		"json:{\"driver\":\"raw\",\"offset\":$off,\"size\":$len,\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"$sock\"}}}" \
		range$i.raw &
	pids+=($!)
	i=$((i + 1))
done
nbdcopy --connections=4 "$uri" multi.raw &
pids+=($!)
nbdinfo --json "$uri" > info.json || exit 1
for p in "${pids[@]}"; do wait "$p" || exit 1; done
EOF
serve -r -- file=c2.avhdx --run 'bash clients.sh "$unixsocket" "$uri"' || fail "concurrent clients: $(cat nbdkit.err)"
i=0
for r in 0:3145728 3145000:4194304 7340032:2097152 8999936:7777280; do
	off=${r%%:*} len=${r##*:}
	expect_eq "client $i: bytes at $off+$len" "$(sha256 range$i.raw)" \
		"$(tail -c +$((off + 1)) want.raw | head -c "$len" | sha256sum | cut -d' ' -f1)"
	i=$((i + 1))
done
same_sha "nbdcopy with 4 connections" multi.raw want.raw
python3 - <<'EOF' || fail "nbdinfo --json: $(cat info.json)"
import json
e = json.load(open("info.json"))["exports"][0]
assert e["export-size"] == 16 << 20, e
assert e["can_multi_conn"] is True and e["is_read_only"] is True, e
EOF
pass "4 concurrent clients and a multi-connection nbdcopy read the right bytes"

# ---------------------------------------------------------------- extents
# nbdinfo --map (NBD block status) against vhdx map, both merged into
# maximal runs of data / zero.
serve -r -- file=c2.avhdx --run 'nbdinfo --map --json "$uri" > nbdmap.json' || fail "nbdinfo --map: $(cat nbdkit.err)"
"$VHDX" map --json c2.avhdx > vhdxmap.json || fail "vhdx map"
python3 - <<'EOF' || fail "block status differs from vhdx map"
import json
def runs(items):
    out = []
    for off, length, data in items:
        if out and out[-1][2] == data and out[-1][0] + out[-1][1] == off:
            out[-1][1] += length
        else:
            out.append([off, length, data])
    return out
nbd = runs((e["offset"], e["length"], e["type"] == 0) for e in json.load(open("nbdmap.json")))
for e in json.load(open("nbdmap.json")):
    assert e["type"] in (0, 3), e   # data, or a hole reading as zeros
vm = runs((e["offset"], e["length"], e["type"] == "data") for e in json.load(open("vhdxmap.json")))
assert nbd == vm, (nbd, vm)
assert sum(n for o, n, d in nbd) == 16 << 20, nbd
# the discarded 8M..10M of c2 hides c1/base data: a hole that reads as zeros
assert any(o <= 8 << 20 and 10 << 20 <= o + n and not d for o, n, d in nbd), nbd
EOF
pass "block status equals vhdx map (holes where nothing is stored, also the discarded range)"

# ---------------------------------------------------------------- writes
sha_base=$(sha256 base.vhdx) sha_c1=$(sha256 c1.avhdx)
cp want.raw model.raw
# patch FILE OFF LEN BYTE: the expected effect of a write on the raw model
patch() {
	python3 -c "
import sys
with open('$1', 'r+b') as f:
    f.seek($2); f.write(bytes([$4]) * $3)"
}
# unaligned, across a block boundary (2 MiB blocks), into a block only the
# parents hold, into a discarded block, and a zero write and a trim
# (discard=unmap: qemu sends NBD trim; write -z -u: zero with may-trim)
cat > writes.qio <<'EOF'
write -P 0x5a 1000 3000
write -P 0xa5 4194000 1000
write -P 0x11 9437184 65536
write -P 0x22 12582400 1048576
write -z 5242880 100000
write -z -u 2097152 2097152
discard 14680064 2097152
flush
EOF
patch model.raw 1000 3000 0x5a
patch model.raw 4194000 1000 0xa5
patch model.raw 9437184 65536 0x11
patch model.raw 12582400 1048576 0x22
patch model.raw 5242880 100000 0
patch model.raw 2097152 2097152 0
patch model.raw 14680064 2097152 0
serve --filter=log -- file=c2.avhdx logfile="$T/nbd.log" \
	--run 'qemu-io -d unmap -f raw "$uri" < writes.qio > qio.out && nbdcopy "$uri" during.raw' ||
	fail "writes through NBD: $(cat qio.out nbdkit.err)"
grep -qi "error\|fail" qio.out && fail "qemu-io: $(cat qio.out)"
# the requests reached the plugin as the NBD commands meant
grep -Eq 'Trim id=[0-9]+ offset=0xe00000 count=0x200000' nbd.log || fail "no trim request in the log: $(grep -E 'Trim|Zero' nbd.log)"
grep -Eq 'Zero id=[0-9]+ offset=0x200000 count=0x200000 trim=1' nbd.log || fail "no zero with may_trim: $(grep Zero nbd.log)"
grep -Eq 'Zero id=[0-9]+ offset=0x500000 count=0x186a0 trim=0' nbd.log || fail "no zero without may_trim: $(grep Zero nbd.log)"
same_sha "read back through NBD while serving" during.raw model.raw
# nbdkit has exited: the file alone holds the writes
"$VHDX" convert -O raw c2.avhdx after.raw || fail "vhdx convert after the NBD writes"
same_sha "c2.avhdx after the NBD writes (vhdx convert)" after.raw model.raw
expect_eq "base.vhdx unchanged" "$(sha256 base.vhdx)" "$sha_base"
expect_eq "c1.avhdx unchanged" "$(sha256 c1.avhdx)" "$sha_c1"
# the trimmed and zeroed whole blocks store nothing and hide the parents' data
"$VHDX" map --json --layers c2.avhdx | python3 -c "
import json, sys
m = json.load(sys.stdin)
def kind(off):
    return next(e for e in m if e['offset'] <= off < e['offset'] + e['length'])['type']
assert kind(14680064) == 'zero' and kind(2097152) == 'zero', m
" || fail "trimmed blocks are not holes: $("$VHDX" map c2.avhdx)"
pass "writes, zero and trim through NBD land in the leaf; parents unchanged"

# a standalone dynamic VHDX written through NBD is clean for qemu-img check
"$VHDX" create --size 8M --block-size 1M solo.vhdx
head -c 8M /dev/urandom > solo-in.raw
serve -- file=solo.vhdx --run 'nbdcopy solo-in.raw "$uri" && nbdcopy "$uri" solo-back.raw' ||
	fail "nbdcopy into solo.vhdx: $(cat nbdkit.err)"
same_sha "solo.vhdx read back during the session" solo-back.raw solo-in.raw
qemu-img check -f vhdx solo.vhdx > check.out 2>&1 || fail "qemu-img check solo.vhdx: $(cat check.out)"
qemu-img convert -f vhdx -O raw solo.vhdx solo-qemu.raw
same_sha "solo.vhdx as qemu-img reads it" solo-qemu.raw solo-in.raw
pass "nbdcopy into a dynamic VHDX: qemu-img check clean, qemu reads the same bytes"

# ---------------------------------------------------------------- writes racing reads
# Four writers (one connection each) put 4 KiB pieces into the first half of
# blocks 0, 2, 4 and 6 of c2 (partially present, ZERO state and partially
# present again: new blocks and sector-bitmap bits are published while
# readers map), while four readers fetch the second halves of the same
# blocks (bytes of the parents, found through those bitmaps) three times
# each.  Every read must be exact, and so must the disk afterwards.
cat > race.sh <<'EOF'
sock=$1 uri=$2 pids=()
for w in 0 1 2 3; do
	qemu-io -t writeback -f raw "$uri" < race$w.qio > race$w.out 2>&1 &
	pids+=($!)
done
for w in 0 1 2 3; do
	(
		off=$((w * 4194304 + 1048576))
		for k in 1 2 3; do
			qemu-img convert -f raw -O raw \
				"json:{\"driver\":\"raw\",\"offset\":$off,\"size\":1048576,\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"$sock\"}}}" \
				rd$w-$k.raw || exit 1
		done
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || exit 1; done
nbdcopy "$uri" race-during.raw
EOF
python3 - <<'EOF'
with open("model.raw", "r+b") as f:
    for w in range(4):
        with open("race%d.qio" % w, "w") as q:
            for k in range(64):
                off = w * 4194304 + k * 16384
                q.write("write -P %d %d 4096\n" % (0x30 + w, off))
                f.seek(off); f.write(bytes([0x30 + w]) * 4096)
            q.write("flush\n")
EOF
serve -- file=c2.avhdx --run 'bash race.sh "$unixsocket" "$uri"' || fail "writes racing reads: $(cat race*.out nbdkit.err)"
for w in 0 1 2 3; do
	grep -qi "error\|fail" race$w.out && fail "writer $w: $(cat race$w.out)"
	want=$(tail -c +$((w * 4194304 + 1048576 + 1)) model.raw | head -c 1048576 | sha256sum | cut -d' ' -f1)
	for k in 1 2 3; do
		expect_eq "reader $w, pass $k (parents' bytes beside the writes)" "$(sha256 rd$w-$k.raw)" "$want"
	done
done
same_sha "the disk read at the end of the racing session" race-during.raw model.raw
"$VHDX" convert -O raw c2.avhdx after.raw || fail "vhdx convert after the racing writes"
same_sha "c2.avhdx after the racing writes" after.raw model.raw
expect_eq "base.vhdx unchanged" "$(sha256 base.vhdx)" "$sha_base"
expect_eq "c1.avhdx unchanged" "$(sha256 c1.avhdx)" "$sha_c1"
pass "4 writers and 4 readers at once on one chain: every read exact, the leaf holds every write"

# ---------------------------------------------------------------- read-only
sha_c2=$(sha256 c2.avhdx)
for ro in "readonly=true" "-r"; do
	if [ "$ro" = -r ]; then o=(-r --); else o=(-- "$ro"); fi
	serve "${o[@]}" file=c2.avhdx --run 'nbdinfo --json "$uri" > ro.json; qemu-io -f raw "$uri" -c "write -P 0x77 0 4096" > ro.out 2>&1' &&
		fail "$ro: a write through NBD succeeded: $(cat ro.out)"
	grep -Eiq "read-only|not permitted|permission" ro.out || fail "$ro: qemu-io's error: $(cat ro.out)"
	python3 -c "import json; e = json.load(open('ro.json'))['exports'][0]; assert e['is_read_only'] is True, e" ||
		fail "$ro: not advertised read-only: $(cat ro.json)"
	expect_eq "$ro: c2.avhdx unchanged" "$(sha256 c2.avhdx)" "$sha_c2"
done
pass "readonly=true and nbdkit -r refuse writes and leave the file unchanged"

# A file we may not open for writing is served read-only when neither is
# given: no write permission, or for root (who may write any file) the
# immutable attribute, where the file system has it.
ro_locked=
if [ "$(id -u)" != 0 ]; then
	chmod a-w c2.avhdx && ro_locked="no write permission"
elif command -v chattr > /dev/null && chattr +i c2.avhdx 2> /dev/null; then
	cleanup_fn "chattr -i '$T/c2.avhdx'"
	ro_locked="immutable"
fi
if [ -n "$ro_locked" ]; then
	serve -- file=c2.avhdx --run 'nbdinfo --json "$uri" > ro.json && nbdcopy "$uri" locked.raw' ||
		fail "$ro_locked: $(cat nbdkit.err)"
	python3 -c "import json; e = json.load(open('ro.json'))['exports'][0]; assert e['is_read_only'] is True, e" ||
		fail "$ro_locked: not served read-only: $(cat ro.json)"
	same_sha "$ro_locked: the disk" locked.raw model.raw
	if [ "$(id -u)" != 0 ]; then chmod u+w c2.avhdx; else chattr -i c2.avhdx; fi
	pass "a file that cannot be opened for writing ($ro_locked) is served read-only"
fi

# ---------------------------------------------------------------- locks (issue #14)
# One open and one lock serve every connection of the server (the four
# writers above never met EBUSY); while the server has the chain open,
# another process is refused: the leaf is held for writing, the parents
# for reading.
cat > lockcheck.sh <<EOF
qemu-io -f raw -c "read 0 4k" "\$1" > /dev/null || exit 10
"$VHDX" write --offset 0 c2.avhdx < /dev/null 2> lock-w.err && exit 11
"$VHDX" compact base.vhdx > /dev/null 2> lock-c.err && exit 12
exit 0
EOF
serve -- file=c2.avhdx --run 'bash lockcheck.sh "$uri"' || fail "locks while served (exit $?): $(cat lock-*.err nbdkit.err)"
grep -Eqx "vhdx write: c2.avhdx: in use for writing by another process \(pid [0-9]+, nbdkit\); cannot open it for writing" lock-w.err ||
	fail "vhdx write while served: $(cat lock-w.err)"
grep -Eqx "vhdx compact: base.vhdx: in use for reading by another process \(pid [0-9]+, nbdkit\); cannot open it for writing" lock-c.err ||
	fail "vhdx compact of a parent while served: $(cat lock-c.err)"
pass "while nbdkit serves the chain another process cannot write the leaf or compact a parent"

# ---------------------------------------------------------------- parents
mkdir moved
mv base.vhdx moved/
serve -r -- file=c2.avhdx --run true && fail "nbdkit started without the base"
grep -q "base.vhdx" nbdkit.err || fail "the start-up error does not name the missing parent: $(cat nbdkit.err)"
serve -r -- file=c2.avhdx parent-dir="$T/moved" --run 'nbdcopy "$uri" moved.raw' ||
	fail "parent-dir=: $(cat nbdkit.err)"
same_sha "chain with the base found through parent-dir=" moved.raw model.raw
pass "a missing parent stops nbdkit at start-up; parent-dir= finds it"
