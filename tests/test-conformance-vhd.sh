#!/bin/bash
# test-conformance-vhd.sh - reads every legacy VHD of ../shared/conformance
# (written by Windows, Hyper-V, Virtual PC, Disk2VHD and qemu, never by
# libvhdx) and compares with MANIFEST.tsv: the file's sha256 before and
# after (a read-only open never writes), the raw disk's sha256 and the
# virtual size.  The two empty 127 GiB disks are proven "all zero, nothing
# allocated" through the allocation map instead of hashing 127 GiB.  Then
# the bad-checksum images (refused; --salvage reads), the diskpart orphan
# (locators, linkage, the child alone over zeros), and damage done here to
# copies of real images: a 511-byte old footer, a broken trailing footer,
# truncation, a BAT entry past the end, a huge max table entries.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

set -o pipefail
requires_conformance
requires xz python3
[ -x "$VHDX" ] || fail "$VHDX was not built"
command -v sha256_stdin >/dev/null 2>&1 || sha256_stdin() { sha256sum | cut -d' ' -f1; }

# jget FILE EXPR...: values of the JSON document in FILE, one line per
# python expression on 'd' (one python start for all of them)
jget() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for e in sys.argv[2:]: print(eval(e))' "$@"
}

rows=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$c["format"] == "vhd" { print $c["file"] "\t" $c["type"] "\t" $c["virtual_size"] "\t" $c["raw_sha256"] "\t" $c["file_sha256"] }' \
	"$CONFORMANCE/MANIFEST.tsv")
[ -n "$rows" ] || fail "no vhd rows in $CONFORMANCE/MANIFEST.tsv"

checked=0 big=0 n7=0
while IFS=$'\t' read -r xzname type vsize raw_sha file_sha; do
	name=${xzname%.xz}
	[ "$raw_sha" != - ] || continue     # refused or orphan images: below
	img=$(conformance_image "$name")
	expect_eq "$name: sha256 of the decompressed file" "$(sha256 "$img")" "$file_sha"

	"$VHDX" info --json "$img" > "$T/info.json" 2> "$T/err" || fail "$name: vhdx info failed: $(cat "$T/err")"
	{ read -r got_size; read -r got_format; read -r got_type; read -r got_current; read -r got_alloc; read -r chs; } < <(
		jget "$T/info.json" 'd["virtual_size"]' 'd["format"]' 'd["type"]' 'd["layers"][0]["footer"]["current_size"]' \
			'd["layers"][0].get("bat", {}).get("allocated_blocks")' 'd["layers"][0]["footer"]["chs_size"]')
	expect_eq "$name: virtual_size of vhdx info --json" "$got_size" "$vsize"
	expect_eq "$name: format" "$got_format" vhd
	expect_eq "$name: type" "$got_type" "$type"
	expect_eq "$name: footer current_size" "$got_current" "$vsize"

	if [ "$vsize" -gt $((16 << 30)) ]; then
		# An empty 127 GiB disk: hashing it takes minutes.  The allocation map
		# must be one zero extent over the whole disk, the BAT must have no
		# block, and reads of the first and last MiB must be zeros.
		"$VHDX" map --json "$img" > "$T/map.json" 2> "$T/err" || fail "$name: vhdx map failed: $(cat "$T/err")"
		expect_eq "$name: allocation map" "$(jget "$T/map.json" 'json.dumps(d, separators=(",", ":"))')" \
			"[{\"offset\":0,\"length\":$vsize,\"type\":\"zero\"}]"
		expect_eq "$name: allocated blocks" "$got_alloc" 0
		# the CHS geometry gives less than the footer's current size, which must win
		[ "$chs" -lt "$vsize" ] || fail "$name: expected a CHS size below the current size, got $chs"
		# the first and the last MiB through the read path (to a pipe: every byte is written)
		zero_mib=$(head -c 1048576 /dev/zero | sha256_stdin)
		got=$("$VHDX" convert -O raw --length 1048576 "$img" - 2> "$T/err" | sha256_stdin) ||
			fail "$name: reading the first MiB failed: $(cat "$T/err")"
		expect_eq "$name: first MiB" "$got" "$zero_mib"
		got=$("$VHDX" convert -O raw --offset $((vsize - 1048576)) --length 1048576 "$img" - 2> "$T/err" |
			sha256_stdin) || fail "$name: reading the last MiB failed: $(cat "$T/err")"
		expect_eq "$name: last MiB" "$got" "$zero_mib"
		big=$((big + 1))
	else
		# the raw disk from vhdx convert, and from 7-Zip where it opens the image
		expect_raw_sha "$name" "$img" "$raw_sha" && n7=$((n7 + 1))
	fi
	expect_eq "$name: sha256 of the file after reading it (read-only open must not write)" "$(sha256 "$img")" "$file_sha"
	pass "$name ($type, $vsize bytes)"
	[ "$name" = win10-dynamic-10M.vhd ] || [ "$name" = win11-fixed-6M.vhd ] || rm -f "$img"
	checked=$((checked + 1))
done <<< "$rows"
[ "$checked" -ge 7 ] || fail "only $checked VHD images were checked"
[ "$big" = 2 ] || fail "expected the two 127 GiB images, checked $big"
if command -v 7zz > /dev/null; then
	# 7-Zip 26 opens every one of these (issue #21); fewer means a comparison silently stopped
	[ "$n7" -ge 5 ] || fail "7-Zip read only $n7 of the VHD images"
	pass "7-Zip reads the same bytes from $n7 VHD images"
fi

# ---- the CHS quirk of the 127 GiB images, as the manifest states it
img=$(conformance_image virtualpc-dynamic-127G.vhd)
"$VHDX" info --json "$img" > "$T/info.json" || fail "virtualpc-dynamic-127G.vhd: info failed"
expect_eq "virtualpc 127G: creator" "$(jget "$T/info.json" 'd["layers"][0]["footer"]["creator_application"]')" "vpc "
expect=$(manifest_field virtualpc-dynamic-127G.vhd.xz expect)
want_chs=$(echo "$expect" | grep -o 'CHS gives [0-9]*' | grep -o '[0-9]*$')
[ -n "$want_chs" ] || fail "virtualpc-dynamic-127G.vhd: no 'CHS gives N' in its expect column: $expect"
expect_eq "virtualpc 127G: chs_size" "$(jget "$T/info.json" 'd["layers"][0]["footer"]["chs_size"]')" "$want_chs"
expect_eq "virtualpc 127G: virtual size" "$(jget "$T/info.json" 'd["virtual_size"]')" \
	"$(manifest_field virtualpc-dynamic-127G.vhd.xz virtual_size)"
rm -f "$img"
pass "127 GiB: current size wins over CHS ($want_chs)"

# ---- bad checksums: refused with exit 1 and a message naming the checksum
for name in badsum-dynamic.vhd badsum-differencing.vhd; do
	img=$(conformance_image "$name")
	file_sha=$(manifest_field "$name.xz" file_sha256)
	expect_eq "$name: sha256 of the decompressed file" "$(sha256 "$img")" "$file_sha"
	expect_fail_msg "checksum" "$VHDX" info "$img"
	grep -q "footer at 0x" "$T/err" || fail "$name: the error does not name the footer offset: $(cat "$T/err")"
	expect_fail_msg "checksum" "$VHDX" convert -O raw "$img" -
	expect_fail_msg "checksum" "$VHDX" map "$img"
	pass "$name is refused: $(head -n 1 "$T/err")"
done

# --salvage reads badsum-dynamic.vhd; compare with an independent minimal
# reader of dynamic VHDs (footer, dynamic header, BAT; no checksum checks)
img=$T/badsum-dynamic.vhd
"$VHDX" info --salvage --json "$img" > "$T/info.json" 2> "$T/err" ||
	fail "badsum-dynamic.vhd: info --salvage failed: $(cat "$T/err")"
expect_eq "badsum-dynamic --salvage: footer checksum_valid" "$(jget "$T/info.json" 'd["layers"][0]["footer"]["checksum_valid"]')" False
python3 - "$img" > "$T/indep.raw" <<'EOF' || fail "the independent reader failed"
import struct, sys
d = open(sys.argv[1], 'rb').read()
ft = d[-512:]
size = struct.unpack('>Q', ft[48:56])[0]
hdr = struct.unpack('>Q', ft[16:24])[0]
table, = struct.unpack('>Q', d[hdr + 16:hdr + 24])
n, bs = struct.unpack('>II', d[hdr + 28:hdr + 36])
bm = ((bs // 512 + 7) // 8 + 511) // 512 * 512
out = bytearray()
for i in range((size + bs - 1) // bs):
    e, = struct.unpack('>I', d[table + 4 * i:table + 4 * i + 4])
    part = min(bs, size - i * bs)
    out += bytes(part) if e == 0xffffffff else d[e * 512 + bm:e * 512 + bm + part]
sys.stdout.buffer.write(out)
EOF
"$VHDX" convert --salvage -O raw "$img" "$T/salvage.raw" 2> "$T/err" ||
	fail "badsum-dynamic.vhd: convert --salvage failed: $(cat "$T/err")"
[ "$(stat -c %s "$T/salvage.raw")" = "$(jget "$T/info.json" 'd["virtual_size"]')" ] || fail "badsum-dynamic: salvaged size"
cmp "$T/salvage.raw" "$T/indep.raw" || fail "badsum-dynamic --salvage differs from the independent reader"
expect_eq "badsum-dynamic.vhd: unchanged after the salvage reads" "$(sha256 "$img")" \
	"$(manifest_field badsum-dynamic.vhd.xz file_sha256)"
pass "badsum-dynamic.vhd --salvage reads ($(stat -c %s "$T/salvage.raw") bytes, same as an independent reader)"

# ---- the diskpart differencing disk whose parent is missing
orphan=diskpart-fat-differencing-orphan.vhd
expect=$(manifest_field "$orphan.xz" expect)
img=$(conformance_image "$orphan")
expect_eq "$orphan: sha256 of the decompressed file" "$(sha256 "$img")" "$(manifest_field "$orphan.xz" file_sha256)"
# what the manifest says, parsed from its text
parse() { python3 -c 'import re, sys; m = re.search(sys.argv[2], sys.argv[1]); print(m.group(1) if m else "")' "$expect" "$1"; }
want_w2ku=$(parse "W2ku '([^']*)'")
want_w2ru=$(parse "W2ru '([^']*)'")
want_uid=$(parse "unique id ([0-9a-f-]{36})")
want_sha=$(parse "sha256 ([0-9a-f]{64})")
[ -n "$want_w2ku" ] && [ -n "$want_w2ru" ] && [ -n "$want_uid" ] && [ -n "$want_sha" ] ||
	fail "$orphan: cannot parse W2ku/W2ru/unique id/sha256 from its expect column: $expect"

"$VHDX" info --no-parent --json "$img" > "$T/info.json" 2> "$T/err" || fail "$orphan: info --no-parent failed: $(cat "$T/err")"
expect_eq "$orphan: type" "$(jget "$T/info.json" 'd["layers"][0]["type"]')" differencing
expect_eq "$orphan: virtual_size" "$(jget "$T/info.json" 'd["virtual_size"]')" "$(manifest_field "$orphan.xz" virtual_size)"
expect_eq "$orphan: parent linkage" "$(jget "$T/info.json" 'd["layers"][0]["parent"]["linkage"]')" "$want_uid"
expect_eq "$orphan: dynamic header parent_unique_id" \
	"$(jget "$T/info.json" 'd["layers"][0]["dynamic_header"]["parent_unique_id"]')" "$want_uid"
expect_eq "$orphan: W2ku locator" \
	"$(jget "$T/info.json" '[e["path"] for e in d["layers"][0]["parent_locators"] if e["code"] == "W2ku"][0]')" "$want_w2ku"
expect_eq "$orphan: W2ru locator" \
	"$(jget "$T/info.json" '[e["path"] for e in d["layers"][0]["parent_locators"] if e["code"] == "W2ru"][0]')" "$want_w2ru"
# the paths the chain layer tries, in order: W2ru (relative) first, then W2ku, then the name
expect_eq "$orphan: parent path order" \
	"$(jget "$T/info.json" '"|".join(p["key"] + "=" + p["value"] for p in d["layers"][0]["parent"]["paths"])')" \
	"W2ru=$want_w2ru|W2ku=$want_w2ku|parent_name=$want_w2ku"
# the text form lists them too
"$VHDX" info --no-parent "$img" > "$T/info.txt" 2> "$T/err" || fail "$orphan: text info failed: $(cat "$T/err")"
grep -qF "path: $want_w2ku" "$T/info.txt" || fail "$orphan: text info does not list the W2ku path"
grep -qF "path: $want_w2ru" "$T/info.txt" || fail "$orphan: text info does not list the W2ru path"
grep -qF "linkage: $want_uid" "$T/info.txt" || fail "$orphan: text info does not show the linkage"

got=$("$VHDX" convert --no-parent -O raw "$img" - 2> "$T/err" | sha256_stdin) ||
	fail "$orphan: convert --no-parent failed: $(cat "$T/err")"
expect_eq "$orphan: sha256 of the child alone over zeros" "$got" "$want_sha"
expect_eq "$orphan: sha256 of the file after reading it" "$(sha256 "$img")" "$(manifest_field "$orphan.xz" file_sha256)"
pass "$orphan: locators, linkage $want_uid, child alone over zeros"

# ---- damage done here to copies of real images
fixed=$T/win11-fixed-6M.vhd
fixed_sha=$(manifest_field win11-fixed-6M.vhd.xz raw_sha256)
dyn=$T/win10-dynamic-10M.vhd
dyn_sha=$(manifest_field win10-dynamic-10M.vhd.xz raw_sha256)
size=$(stat -c %s "$dyn")

# a 511-byte footer (images older than Virtual PC 2004): the last reserved byte is missing
head -c -1 "$fixed" > "$T/old.vhd"
got=$("$VHDX" convert -O raw "$T/old.vhd" - 2> "$T/err" | sha256_stdin) || fail "511-byte footer: convert failed: $(cat "$T/err")"
expect_eq "fixed VHD with a 511-byte footer" "$got" "$fixed_sha"
pass "a 511-byte footer reads"

# a damaged trailing footer: the leading copy of a dynamic disk is used
cp "$dyn" "$T/trail.vhd"
printf 'X' | dd of="$T/trail.vhd" bs=1 seek=$((size - 512 + 20)) conv=notrunc status=none
got=$("$VHDX" convert -O raw "$T/trail.vhd" - 2> "$T/err" | sha256_stdin) || fail "bad trailing footer: convert failed: $(cat "$T/err")"
expect_eq "dynamic VHD with a damaged trailing footer" "$got" "$dyn_sha"
"$VHDX" info --json "$T/trail.vhd" > "$T/info.json" || fail "bad trailing footer: info failed"
expect_eq "damaged trailing footer: copy used" "$(jget "$T/info.json" 'd["layers"][0]["footer"]["copy_used"]')" leading
expect_eq "damaged trailing footer: copies_match" "$(jget "$T/info.json" 'd["layers"][0]["footer_copies"]["copies_match"]')" False
pass "a damaged trailing footer falls back to the leading copy"

# truncated in the middle of the last block (trailing footer gone too)
head -c $((5 << 20)) "$dyn" > "$T/trunc.vhd"
expect_fail_msg "BAT entry [0-9]+ at 0x[0-9a-f]+: block at file offset 0x[0-9a-f]+ .*past the end" "$VHDX" info "$T/trunc.vhd"
pass "truncated: $(cat "$T/err")"
# a fixed disk cut short: refused (the footer at the new end is data, not "conectix")
head -c $((3 << 20)) "$fixed" > "$T/trunc-fixed.vhd"
expect_fail_msg "not a VHDX or VHD image" "$VHDX" info "$T/trunc-fixed.vhd"

# a BAT entry past the end of the file (the BAT has no checksum)
cp "$dyn" "$T/bat.vhd"
table=$(jget "$T/info.json" 'd["layers"][0]["dynamic_header"]["table_offset"]')
printf '\x00\x10\x00\x00' | dd of="$T/bat.vhd" bs=1 seek=$((table + 4)) conv=notrunc status=none
expect_fail_msg "BAT entry 1 at 0x$(printf %x $((table + 4))): block at file offset 0x20000000 .*past the end" "$VHDX" info "$T/bat.vhd"
pass "BAT entry past EOF: $(cat "$T/err")"

# huge max table entries (checksum kept right, so the bound check must catch it)
cp "$dyn" "$T/huge.vhd"
python3 - "$T/huge.vhd" <<'EOF' || fail "cannot patch huge.vhd"
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
hdr = struct.unpack('>Q', d[-512 + 16:-512 + 24])[0]
d[hdr + 28:hdr + 32] = struct.pack('>I', 0xfffffff0)
d[hdr + 36:hdr + 40] = b'\0\0\0\0'
d[hdr + 36:hdr + 40] = struct.pack('>I', ~sum(d[hdr:hdr + 1024]) & 0xffffffff)
open(p, 'wb').write(d)
EOF
expect_fail_msg "BAT at 0x[0-9a-f]+ with 4294967280 entries .* extends past the end" "$VHDX" info "$T/huge.vhd"
pass "huge max table entries: $(cat "$T/err")"

# and nothing of the above touched the originals
expect_eq "win10-dynamic-10M.vhd unchanged" "$(sha256 "$dyn")" "$(manifest_field win10-dynamic-10M.vhd.xz file_sha256)"
expect_eq "win11-fixed-6M.vhd unchanged" "$(sha256 "$fixed")" "$(manifest_field win11-fixed-6M.vhd.xz file_sha256)"
