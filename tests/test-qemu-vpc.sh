#!/bin/bash
# test-qemu-vpc.sh - VHD images written by qemu (an independent writer and
# reader): `qemu-img create -f vpc` dynamic and fixed, with force_size (the
# 'qem2' creator: the footer's current size is the disk size) and without
# (the 'qemu' creator: qemu rounds the size to a CHS geometry), filled by
# qemu-io with distinct patterns that straddle block boundaries.  `vhdx
# convert -O raw` must give the same bytes as `qemu-img convert -O raw`,
# and `vhdx info` the size, creator and CHS geometry qemu wrote.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires qemu-img qemu-io python3 cmp
[ -x "$VHDX" ] || fail "$VHDX was not built"

# jget FILE EXPR...: values of the JSON document in FILE, one line per
# python expression on 'd' (one python start for all of them)
jget() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for e in sys.argv[2:]: print(eval(e))' "$@"
}
GEO='"%(cylinders)d/%(heads)d/%(sectors_per_track)d" % d["layers"][0]["footer"]["geometry"]'

M=$((1 << 20))

# check NAME SUBFORMAT SIZE FORCE WRITES...: create, write, compare
check() {
	local name="$1" sub="$2" size="$3" force="$4" img="$T/$1.vhd" qsize creator
	shift 4
	qemu-img create -q -f vpc -o "subformat=$sub,force_size=$force" "$img" "$size" ||
		fail "$name: qemu-img create failed"
	local args=()
	for w in "$@"; do args+=(-c "$w"); done
	qemu-io -f vpc "${args[@]}" "$img" > "$T/qemu-io.out" 2>&1 || fail "$name: qemu-io failed: $(cat "$T/qemu-io.out")"
	qemu-img info --output=json -f vpc "$img" > "$T/qinfo.json" || fail "$name: qemu-img info failed"
	qsize=$(jget "$T/qinfo.json" 'd["virtual-size"]')

	"$VHDX" info --json "$img" > "$T/info.json" 2> "$T/err" || fail "$name: vhdx info failed: $(cat "$T/err")"
	{ read -r vsize; read -r type; read -r creator; read -r geo; read -r chs; read -r match; } < <(jget "$T/info.json" \
		'd["virtual_size"]' 'd["type"]' 'd["layers"][0]["footer"]["creator_application"]' "$GEO" \
		'd["layers"][0]["footer"]["chs_size"]' 'd["layers"][0]["footer"]["geometry_matches_spec_calculation"]')
	expect_eq "$name: virtual size (qemu-img says $qsize)" "$vsize" "$qsize"
	expect_eq "$name: type" "$type" "$sub"
	if [ "$force" = on ]; then
		expect_eq "$name: creator" "$creator" qem2
		expect_eq "$name: size asked for" "$qsize" "$size"
		# with force_size qemu writes the maximum geometry, so that readers use the current size
		expect_eq "$name: geometry" "$geo" 65535/16/255
	else
		expect_eq "$name: creator" "$creator" qemu
		# the size is rounded up to a geometry qemu computes with the spec's
		# algorithm, so the CHS size is the disk size and our calculation agrees
		expect_eq "$name: chs_size" "$chs" "$qsize"
		expect_eq "$name: qemu's CHS $geo equals the spec calculation" "$match" True
	fi

	qemu-img convert -f vpc -O raw "$img" "$T/$name.qemu.raw" || fail "$name: qemu-img convert failed"
	"$VHDX" convert -O raw "$img" "$T/$name.vhdx.raw" 2> "$T/err" || fail "$name: vhdx convert failed: $(cat "$T/err")"
	expect_eq "$name: size of the raw disk" "$(stat -c %s "$T/$name.vhdx.raw")" "$(stat -c %s "$T/$name.qemu.raw")"
	cmp "$T/$name.qemu.raw" "$T/$name.vhdx.raw" || fail "$name: vhdx and qemu-img read different bytes"
	# the patterns really are there (a test that cannot pass on an all-zero disk)
	[ "$(head -c 1 "$T/$name.vhdx.raw" | od -An -tx1 | tr -d ' ')" = 11 ] || fail "$name: first byte is not 0x11"
	rm -f "$T/$name.qemu.raw" "$T/$name.vhdx.raw"
	pass "$name: $sub, $qsize bytes, creator '$creator', same bytes as qemu-img"
}

# writes straddling the 2 MiB block boundaries, odd sector offsets, the last sector
w_small=("write -P 0x11 0 64k" "write -P 0x22 $((2 * M - 4096)) 8k" "write -P 0x33 $((5 * M + 512)) 1536"
	"write -P 0x44 $((4 * M - 512)) 1024" "write -P 0x55 $((8 * M)) 4k")

check dyn-10M dynamic $((10 * M)) on "${w_small[@]}" "write -P 0x66 $((10 * M - 512)) 512"
check dyn-100M512 dynamic $((100 * M + 512)) on "${w_small[@]}" "write -P 0x77 $((100 * M - 1024)) 1536" \
	"write -P 0x88 $((64 * M - 2048)) 4096"
check dyn-1G dynamic $((1024 * M)) on "${w_small[@]}" "write -P 0x99 $((512 * M - 512)) 1024" \
	"write -P 0xaa $((1024 * M - 4096)) 4096"
check dyn-10M-chs dynamic $((10 * M)) off "${w_small[@]}"
check fixed-10M fixed $((10 * M)) on "${w_small[@]}" "write -P 0x66 $((10 * M - 512)) 512"
check fixed-100M512 fixed $((100 * M + 512)) on "${w_small[@]}" "write -P 0x77 $((100 * M - 1024)) 1536"
check fixed-10M-chs fixed $((10 * M)) off "${w_small[@]}"

# CHS geometry: qemu (an independent implementation of the spec's algorithm)
# against ours, for sizes that take each branch: 17, 31, 63 and 255 sectors
# per track, and the 65535/16/255 cap.  Only the footer matters: no writes.
sizes="3M 200M 300M 40G 130G"
for size in $sizes; do
	img=$T/chs-$size.vhd
	qemu-img create -q -f vpc -o subformat=dynamic "$img" "$size" || fail "chs $size: qemu-img create failed"
	"$VHDX" info --json "$img" > "$T/info.json" 2> "$T/err" || fail "chs $size: vhdx info failed: $(cat "$T/err")"
	qemu-img info --output=json -f vpc "$img" > "$T/qinfo.json" || fail "chs $size: qemu-img info failed"
	{ read -r vsize; read -r geo; read -r match; } < <(jget "$T/info.json" 'd["virtual_size"]' "$GEO" \
		'd["layers"][0]["footer"]["geometry_matches_spec_calculation"]')
	expect_eq "chs $size: virtual size" "$vsize" "$(jget "$T/qinfo.json" 'd["virtual-size"]')"
	expect_eq "chs $size: qemu's geometry $geo equals the spec calculation" "$match" True
	rm -f "$img"
done
pass "CHS geometry agrees with qemu for $sizes"

# ---- a differencing VHD over a qemu-written parent.  qemu cannot create
# VHD children, so a small independent writer (python, below) makes one:
# parent unique id copied from the parent's footer, a W2ru locator, two
# allocated blocks with mixed sector bitmaps.  The expected disk is the
# parent's raw bytes (qemu-img) overlaid with the child's sectors whose bit
# is set (MSB-first), computed by the same script.
mkdir -p "$T/chain"
parent=$T/chain/parent.vhd
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$parent" $((8 * M)) || fail "chain: qemu-img create failed"
qemu-io -f vpc -c "write -P 0x5a 0 $((3 * M))" -c "write -P 0x6b $((6 * M)) 512k" "$parent" > "$T/qemu-io.out" 2>&1 ||
	fail "chain: qemu-io failed: $(cat "$T/qemu-io.out")"
qemu-img convert -f vpc -O raw "$parent" "$T/parent.raw" || fail "chain: qemu-img convert failed"
python3 - "$parent" "$T/chain/child.vhd" "$T/parent.raw" "$T/expected.raw" <<'PYEOF' || fail "chain: the child writer failed"
import struct, sys, time
parent, child, praw, expected = sys.argv[1:5]
pf = open(parent, 'rb').read()[-512:]
size = struct.unpack('>Q', pf[48:56])[0]
bs = 2 << 20
n = (size + bs - 1) // bs
def csum(b, skip):
    return ~sum(x for i, x in enumerate(b) if not skip <= i < skip + 4) & 0xffffffff
footer = bytearray(pf)
footer[24:28] = struct.pack('>I', int(time.time()) - 946684800)
footer[60:64] = struct.pack('>I', 4)
footer[68:84] = bytes(range(0xc0, 0xd0))
footer[64:68] = struct.pack('>I', csum(footer, 64))
rel = '.\\parent.vhd'.encode('utf-16-le')
dyn = bytearray(1024)
dyn[0:8] = b'cxsparse'
dyn[8:16] = b'\xff' * 8
bat_off, loc_off = 1536, 2048
dyn[16:24] = struct.pack('>Q', bat_off)
dyn[24:36] = struct.pack('>III', 0x10000, n, bs)
dyn[40:56] = pf[68:84]                      # the parent's unique id
name = 'parent.vhd'.encode('utf-16-be')
dyn[64:64 + len(name)] = name
dyn[576:600] = struct.pack('>IIIIQ', 0x57327275, 512, len(rel), 0, loc_off)   # W2ru
dyn[36:40] = struct.pack('>I', csum(dyn, 36))
blocks = {1: 0, 3: 1}                       # block -> order in the file
first = loc_off + 512
bat = [0xffffffff] * n
img = bytearray(first + len(blocks) * (512 + bs))
for b, k in blocks.items():
    bat[b] = (first + k * (512 + bs)) // 512
img[0:512] = footer
img[512:1536] = dyn
img[bat_off:bat_off + 4 * n] = struct.pack('>%dI' % n, *bat)
img[loc_off:loc_off + len(rel)] = rel
exp = bytearray(open(praw, 'rb').read())
for b, k in blocks.items():
    off = first + k * (512 + bs)
    bm = bytes([0xff, 0x00, 0xa5, 0x0f, 0xf0, 0x01, 0x80, 0x00] * 64)
    img[off:off + 512] = bm
    for s in range(bs // 512):
        pat = bytes([(b * 16 + s) & 0xff]) * 512
        img[off + 512 + s * 512:off + 1024 + s * 512] = pat
        if bm[s // 8] & (0x80 >> (s % 8)):
            v = b * bs + s * 512
            exp[v:v + 512] = pat
img += footer
open(child, 'wb').write(img)
open(expected, 'wb').write(exp)
PYEOF
"$VHDX" convert -O raw "$T/chain/child.vhd" "$T/child.raw" 2> "$T/err" || fail "chain: convert failed: $(cat "$T/err")"
cmp "$T/expected.raw" "$T/child.raw" || fail "chain: child over its qemu parent reads wrong bytes"
"$VHDX" info --json "$T/chain/child.vhd" > "$T/info.json" 2> "$T/err" || fail "chain: info failed: $(cat "$T/err")"
{ read -r depth; read -r complete; } < <(jget "$T/info.json" 'd["chain_depth"]' 'd["chain_complete"]')
expect_eq "chain: depth" "$depth" 2
expect_eq "chain: complete" "$complete" True
# the child alone: zeros where the parent would show through
"$VHDX" convert --no-parent -O raw "$T/chain/child.vhd" "$T/alone.raw" 2> "$T/err" || fail "chain: --no-parent failed: $(cat "$T/err")"
cmp -s "$T/alone.raw" "$T/child.raw" && fail "chain: the child alone reads like the chain (the parent was not used)"
# another parent with a different unique id is refused, unless told to accept it
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$T/chain/other.vhd" $((8 * M)) || fail "chain: create other"
expect_fail_msg "wrong identity" "$VHDX" convert --parent "$T/chain/other.vhd" -O raw "$T/chain/child.vhd" -
"$VHDX" convert --parent "$T/chain/other.vhd" --ignore-id-mismatch -O raw "$T/chain/child.vhd" - > /dev/null 2> "$T/err" ||
	fail "chain: --ignore-id-mismatch failed: $(cat "$T/err")"
pass "differencing VHD over a qemu parent: W2ru resolved, linkage checked, same bytes as an independent overlay"
