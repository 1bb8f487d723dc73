#!/bin/bash
# test-nbdkit-filter.sh - the nbdkit vhdx filter (nbdkit/vhdx_filter.c):
#  - lighttpd serves a folder on 127.0.0.1 with range requests; `nbdkit curl
#    url=http://127.0.0.1:PORT/IMAGE --filter=vhdx` read with nbdcopy equals
#    `vhdx convert` for the small VHDX and VHD conformance images; with
#    --filter=partition partition=1 above it, the first partition; an .xz
#    image through --filter=xz below it;
#  - a chain: the child from the file plugin, its parent by parent-dir=;
#  - writes (qemu-io) through the filter with writable=true on the file
#    plugin and on the memory plugin (reached through the nbd plugin), then
#    the image read back locally equals the model and qemu-img check is
#    clean; a write that would grow the export fails with ENOSPC, reported;
#  - nbdkit's error filter below the vhdx filter: reported errors, at open
#    and on reads after it, never a silent read.
# Filter order: nbdkit-filter(3): the first --filter is closest to the
# client, the last closest to the plugin.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
FILTER="$top_builddir/nbdkit/.libs/nbdkit-vhdx-filter.so"
[ -f "$FILTER" ] || skip "the nbdkit filter was not built (configure found no nbdkit-filter.h; Debian: nbdkit-plugin-dev)"
requires nbdkit nbdcopy nbdinfo qemu-io qemu-img python3 timeout xz
requires_conformance
cd "$T"

# A sanitizer build's filter needs the ASan runtime loaded first into nbdkit (as test-nbdkit.sh).
nbdkit_sanitizer_env

# the manual page documents every parameter of the filter's --help
"${NBDKIT_ENV[@]}" nbdkit --filter="$FILTER" null --help > help.txt 2>&1 || fail "nbdkit --filter=vhdx --help: $(cat help.txt)"
params=$(sed -n 's/^\([a-z-]*\)=<*.*  .*/\1/p' help.txt | head -7)
expect_eq "parameters of --help" "$(echo $params)" "writable parent parent-dir path-map ignore-id-mismatch readers readahead"
for p in $params; do
	grep -Eq "^\.BI? \[?$p=|^\.RB \[ $p=" "$top_srcdir/nbdkit/nbdkit-vhdx-filter.1" ||
		fail "nbdkit-vhdx-filter.1 has no entry for $p="
done
if command -v groff > /dev/null; then
	groff -man -Tutf8 -ww -z "$top_srcdir/nbdkit/nbdkit-vhdx-filter.1" 2> groff.err && [ ! -s groff.err ] ||
		fail "groff warnings in nbdkit-vhdx-filter.1: $(cat groff.err)"
fi
pass "nbdkit-vhdx-filter.1 documents every parameter of --help"

# serve_run NBDKIT-ARGS... -- CMD: a private nbdkit for one client command ($uri in CMD)
serve_run() {
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	nbdkit_run "$1" "${args[@]}"
}

# ---------------------------------------------------------------- over HTTP (lighttpd + curl plugin)
have_http=yes
command -v lighttpd > /dev/null || have_http="lighttpd is not installed"
"${NBDKIT_ENV[@]}" nbdkit curl --version > /dev/null 2>&1 || have_http="nbdkit's curl plugin is missing"
if [ "$have_http" = yes ]; then
	mkdir www
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat > lighttpd.conf <<EOF
server.document-root = "$T/www"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$T/lighttpd.err"
mimetype.assign = ("" => "application/octet-stream")
EOF
	lighttpd -D -f lighttpd.conf 2> lighttpd.out &
	LIGHTTPD_PID=$!
	cleanup_fn "kill $LIGHTTPD_PID 2>/dev/null; wait $LIGHTTPD_PID 2>/dev/null"
	echo hello > www/probe
	for ((i = 0; i < 100; i++)); do
		[ "$(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$port/probe').read().decode().strip())" 2>/dev/null)" = hello ] && break
		kill -0 $LIGHTTPD_PID 2>/dev/null || fail "lighttpd did not start: $(cat lighttpd.out lighttpd.err 2>/dev/null)"
		sleep 0.1
	done
	[ $i -lt 100 ] || fail "lighttpd did not answer on port $port"
	URL="http://127.0.0.1:$port"

	# every small conformance image with a raw hash: the filter's bytes are vhdx convert's
	n=0
	while IFS=$'\t' read -r file format type vsize raw _; do
		case "$file" in *.xz) ;; *) continue ;; esac
		[ -n "$raw" ] && [ "$type" != differencing ] && [ "$vsize" -le $((300 << 20)) ] 2> /dev/null || continue
		img=${file%.xz}
		xz -dc "$CONFORMANCE/$file" > "www/$img"
		"$VHDX" convert -O raw "www/$img" "want-$img" 2> err || fail "vhdx convert $img: $(cat err)"
		serve_run curl url="$URL/$img" --filter="$FILTER" -- 'nbdcopy "$uri" got.raw' ||
			fail "nbdkit curl $img --filter=vhdx: $(cat nbdkit.err)"
		expect_eq "$img over HTTP through the filter" "$(sha256 got.raw)" "$(sha256 "want-$img")"
		rm -f got.raw
		n=$((n + 1))
	done < "$CONFORMANCE/MANIFEST.tsv"
	[ $n -ge 8 ] || fail "only $n conformance images were read"
	pass "$n conformance images (VHDX and VHD) over HTTP through --filter=vhdx equal vhdx convert"

	# readers=N: the curl plugin serves one request at a time per context, so a
	# read-only image reads through N of them (nbdcopy's four connections in parallel)
	img=win10-dynamic-10M.vhdx
	for r in 1 4; do
		serve_run -v curl url="$URL/$img" --filter="$FILTER" readers=$r -- 'nbdcopy "$uri" got.raw' ||
			fail "readers=$r: $(cat nbdkit.err)"
		expect_eq "$img with readers=$r" "$(sha256 got.raw)" "$(sha256 "want-$img")"
		case $r in 1) want="1 context of the plugin below reads" ;; *) want="$r contexts of the plugin below read in parallel" ;; esac
		grep -q "vhdx filter: $want" nbdkit.err || fail "readers=$r: no '$want' in nbdkit -v: $(grep 'vhdx filter' nbdkit.err)"
		rm -f got.raw
	done
	serve_run curl url="$URL/$img" --filter="$FILTER" readers=0 -- 'true' && fail "readers=0 was accepted"
	grep -q "readers=0: from 1 to 16" nbdkit.err || fail "readers=0: $(cat nbdkit.err)"
	pass "readers=1 and readers=4 (the default) read the same bytes over HTTP; readers=0 is refused"

	# readahead (on by default over such a plugin): a streamed read fetches whole 2 MiB
	# chunks, so far fewer requests reach the curl plugin (counted by nbdkit's log
	# filter between the two), and the bytes are the same
	head -c $((24 << 20)) /dev/urandom > stream.raw
	"$VHDX" convert -f raw -O vhdx stream.raw www/stream.vhdx > /dev/null || fail "convert stream.raw"
	for ra in true false; do
		rm -f reads.log
		serve_run curl url="$URL/stream.vhdx" --filter="$FILTER" --filter=log logfile=reads.log readahead=$ra -- \
			'nbdcopy "$uri" got.raw' || fail "readahead=$ra: $(cat nbdkit.err)"
		cmp got.raw stream.raw || fail "readahead=$ra: the bytes differ"
		eval "gets_$ra=$(grep -c ' Read ' reads.log)"
		rm -f got.raw
	done
	[ "$gets_false" -ge 96 ] && [ $((gets_true * 3)) -le "$gets_false" ] ||
		fail "readahead: $gets_true reads of the curl plugin with it, $gets_false without (expected a third or fewer with it)"
	pass "readahead: a 24 MiB streamed read takes $gets_true reads of the curl plugin ($gets_false without); the same bytes"
	rm -f stream.raw www/stream.vhdx

	# a partition of a remote image: --filter=partition above the vhdx filter
	for img in win10-dynamic-10M.vhdx win10-fixed-10M.vhd; do
		read -r start count < <(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read(512)
assert d[510:512] == b"\x55\xaa"
print(*struct.unpack("<II", d[446 + 8:446 + 16]))' "want-$img")
		dd if="want-$img" of=want-part bs=512 skip="$start" count="$count" status=none
		serve_run curl url="$URL/$img" --filter=partition --filter="$FILTER" partition=1 -- 'nbdcopy "$uri" got-part' ||
			fail "--filter=partition --filter=vhdx $img: $(cat nbdkit.err)"
		expect_eq "partition 1 of $img" "$(sha256 got-part)" "$(sha256 want-part)"
	done
	pass "--filter=partition partition=1 over --filter=vhdx gives the first partition"

	# an xz-compressed image: --filter=xz below the vhdx filter
	xz -k -T1 --block-size=1MiB -c www/win10-dynamic-10M.vhdx > www/w10.vhdx.xz
	serve_run curl url="$URL/w10.vhdx.xz" --filter="$FILTER" --filter=xz -- 'nbdcopy "$uri" got-xz' ||
		fail "--filter=vhdx --filter=xz: $(cat nbdkit.err)"
	expect_eq "xz image through the filters" "$(sha256 got-xz)" "$(sha256 want-win10-dynamic-10M.vhdx)"
	pass "--filter=vhdx over --filter=xz reads an .xz image right"
	kill $LIGHTTPD_PID
	wait $LIGHTTPD_PID 2> /dev/null
	rm -rf www
else
	echo "HTTP part skipped: $have_http"
fi

# ---------------------------------------------------------------- a chain: parents by parent-dir=
mkdir par kids
"$VHDX" create --size 16M --block-size 1M par/base.vhdx > /dev/null
head -c 5M /dev/urandom | "$VHDX" write --offset 1M par/base.vhdx
"$VHDX" create --parent par/base.vhdx kids/c1.avhdx > /dev/null
head -c 300000 /dev/urandom | "$VHDX" write --offset 2000000 kids/c1.avhdx
"$VHDX" convert -O raw kids/c1.avhdx want-chain.raw
serve_run file kids/c1.avhdx --filter="$FILTER" parent-dir="$T/par" -- 'nbdcopy "$uri" got-chain.raw && nbdinfo --map "$uri" > map.txt' ||
	fail "file c1.avhdx --filter=vhdx parent-dir=: $(cat nbdkit.err)"
expect_eq "chain through the filter" "$(sha256 got-chain.raw)" "$(sha256 want-chain.raw)"
# block status from the allocation map: the extents nbdinfo sees are vhdx map's
"$VHDX" map --json kids/c1.avhdx | python3 -c '
import json, sys
want = []
for e in json.load(sys.stdin):
    kind = "data" if e["type"] == "data" else "hole,zero"
    if want and want[-1][2] == kind and want[-1][0] + want[-1][1] == e["offset"]:
        want[-1][1] += e["length"]
    else:
        want.append([e["offset"], e["length"], kind])
got = [[int(f[0]), int(f[1]), f[3]] for f in (l.split() for l in open("map.txt"))]
assert got == want, (got, want)' || fail "nbdinfo --map through the filter is not vhdx map: $(cat map.txt)"
# no parent-dir: the parent is not found, and nbdkit says so
serve_run file kids/c1.avhdx --filter="$FILTER" -- 'nbdinfo --size "$uri"' && fail "the orphan child was served"
grep -q 'parent "base.vhdx" (identity {[-0-9a-f]*}) not found' nbdkit.err || fail "orphan: $(cat nbdkit.err)"
pass "a chain from the file plugin with parent-dir=; block status is vhdx map; a missing parent is reported"

# ---------------------------------------------------------------- writes (qemu-io)
# a dynamic VHDX with every block allocated: writes go in place, a trim releases a whole block
make_image() {
	"$VHDX" create --size 8M --block-size 1M "$1" > /dev/null
	head -c 8M /dev/urandom | "$VHDX" write "$1"
	"$VHDX" convert -O raw "$1" "$2"
}
# model WANT: the same writes on the raw bytes
model_writes() {
	python3 - "$1" <<'PY'
import sys
f = open(sys.argv[1], "r+b")
f.seek(1048576 + 512); f.write(b"\x5a" * 65536)
f.seek(3 << 20); f.write(b"\0" * 4096)
f.seek(5 << 20); f.write(b"\0" * (1 << 20))
PY
}
QEMU_WRITES=(-c 'write -P 0x5a 1049088 65536' -c 'write -z 3145728 4096' -c 'discard 5242880 1048576' -c 'flush')

make_image w1.vhdx want-w1.raw
model_writes want-w1.raw
serve_run file w1.vhdx --filter="$FILTER" writable=true -- "qemu-io -f raw \"\$uri\" $(printf "%q " "${QEMU_WRITES[@]}")" > qemu-io.out ||
	fail "qemu-io through the filter on the file plugin: $(cat qemu-io.out nbdkit.err)"
"$VHDX" convert -O raw w1.vhdx got-w1.raw
expect_eq "file plugin: writes through the filter" "$(sha256 got-w1.raw)" "$(sha256 want-w1.raw)"
qemu-img check -f vhdx w1.vhdx > check.out 2>&1 || fail "qemu-img check after writes through the filter: $(cat check.out)"
check_clean w1.vhdx "after writes through the filter"
pass "writes, zero and trim through the filter on the file plugin land in the image; qemu-img check clean"

# without writable=true the filter is read-only and the file is untouched
before=$(sha256 w1.vhdx)
serve_run file w1.vhdx --filter="$FILTER" -- 'qemu-io -f raw "$uri" -c "write -P 1 0 512"' > qemu-io.out 2>&1 &&
	fail "a write through a read-only filter succeeded: $(cat qemu-io.out)"
expect_eq "read-only filter leaves the file alone" "$(sha256 w1.vhdx)" "$before"
pass "the filter is read-only by default"

# the memory plugin, reached through the nbd plugin so that the bytes can be copied in and out
make_image w2.vhdx want-w2.raw
model_writes want-w2.raw
nbdkit_start "$T/mem.sock" memory size="$(stat -c %s w2.vhdx)"
MEM_PID=$NBDKIT_PID
nbdcopy w2.vhdx "nbd+unix:///?socket=$T/mem.sock" || fail "copying the image into the memory plugin"
nbdkit_start "$T/flt.sock" nbd socket="$T/mem.sock" --filter="$FILTER" writable=true
# another client first: the image it opened stays open, shared, for qemu-io
nbdinfo --can write "nbd+unix:///?socket=$T/flt.sock" || fail "writable=true over the memory plugin: not writable"
qemu-io -f raw "nbd+unix:///?socket=$T/flt.sock" "${QEMU_WRITES[@]}" > qemu-io.out 2>&1 ||
	fail "qemu-io through the filter on the memory plugin: $(cat qemu-io.out "$T/flt.sock.err")"
nbdkit_stop # the filter's server: closing flushes the image into the memory plugin
nbdcopy "nbd+unix:///?socket=$T/mem.sock" w2-back.vhdx || fail "copying the image out of the memory plugin"
kill $MEM_PID; wait $MEM_PID 2> /dev/null
"$VHDX" convert -O raw w2-back.vhdx got-w2.raw
expect_eq "memory plugin: writes through the filter" "$(sha256 got-w2.raw)" "$(sha256 want-w2.raw)"
qemu-img check -f vhdx w2-back.vhdx > check.out 2>&1 || fail "qemu-img check (memory plugin): $(cat check.out)"
pass "writes through the filter on the memory plugin; the image read back is right and qemu-img check clean"

# a write that needs a new block past the end of the export: ENOSPC, reported; the image stays clean
"$VHDX" create --size 8M --block-size 1M w3.vhdx > /dev/null
head -c 1M /dev/urandom | "$VHDX" write w3.vhdx
serve_run file w3.vhdx --filter="$FILTER" writable=true -- \
	'qemu-io -f raw "$uri" -c "write -P 7 0 4096" -c flush -c "write -P 7 4194304 4096" -c flush' > qemu-io.out 2>&1
grep -q "write failed: No space left on device" qemu-io.out || fail "growing write: $(cat qemu-io.out)"
grep -q "fixed size" nbdkit.err || fail "growing write: nbdkit did not say why: $(cat nbdkit.err)"
qemu-img check -f vhdx w3.vhdx > check.out 2>&1 || fail "qemu-img check after a refused growth: $(cat check.out)"
"$VHDX" convert -O raw --length 4096 w3.vhdx - | cmp -s - <(head -c 4096 /dev/zero | tr '\0' '\7') ||
	fail "the flushed write before the refused one is lost"
pass "a write that would grow the export fails with ENOSPC, reported; flushed writes stay, the image checks clean"

# ---------------------------------------------------------------- the error filter below the vhdx filter
make_image e.vhdx want-e.raw
touch trigger
serve_run file e.vhdx --filter="$FILTER" --filter=error error-pread=EIO error-pread-rate=100% \
	error-pread-file="$T/trigger" -- 'nbdinfo --size "$uri"' && fail "opened while every read failed"
grep -q "vhdx filter: opening the image: .*the plugin below failed a read of .*Input/output error" nbdkit.err ||
	fail "open under the error filter: $(cat nbdkit.err)"
rm trigger
# the trigger appears after the open (the first connection opens the image for all): the copy
# must fail, not return zeros or stale bytes
serve_run file e.vhdx --filter="$FILTER" --filter=error error-pread=EIO error-pread-rate=100% \
	error-pread-file="$T/trigger" -- "nbdinfo --size \"\$uri\" && touch '$T/trigger' && nbdcopy \"\$uri\" got-e.raw" > /dev/null 2>&1 &&
	fail "nbdcopy succeeded while every read of the plugin failed"
grep -q "read of [0-9]* bytes at [0-9]*: the plugin below the vhdx filter: reading payload at offset .*Input/output error" nbdkit.err ||
	fail "reads under the error filter: $(cat nbdkit.err)"
rm trigger
pass "errors of the plugin below are reported at open and on reads"
