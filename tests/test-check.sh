#!/bin/bash
# test-check.sh - `vhdx check [--json] [--repair]`.
#  1. clean images (qemu-made, our own, every conformance image) exit 0 with
#     no problem; the conformance images that are damaged on purpose report
#     exactly their damage;
#  2. every damage kind of tests/tools/damage (listed below, an unlisted kind
#     fails the test) is reported with the structure named here and at the
#     offset the generator says, exit 3, and the file is not modified;
#  3. --repair: repairable kinds end with `vhdx check` exit 0, `qemu-img
#     check` clean, and every byte outside the ranges reported lost reads as
#     before the damage (with our reader and with qemu's); the others exit 3;
#  4. VHD damage (footer, footer copy, dynamic header, BAT, leaked space) and a
#     differencing VHDX whose sector bitmap entry is gone;
#  5. power cuts at every write and flush of a repair, then repair again.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires qemu-img qemu-io python3 xz timeout
DAMAGE="$top_builddir/tests/tools/damage"
[ -x "$VHDX" ] || fail "$VHDX was not built"
[ -x "$DAMAGE" ] || fail "$DAMAGE was not built (make check builds it)"
seed=${DAMAGE_SEED:-$(( $(date +%s%N) % 1000000000000 ))}
echo "DAMAGE_SEED=$seed (set it to reproduce the random variants)"
n_fail=0
bad() {
	echo "FAIL: $*"
	n_fail=$((n_fail + 1))
}

# problems FILE.json [after]: one line per problem, "SEVERITY<tab>STRUCTURE<tab>OFFSET"
problems() {
	python3 - "$1" "${2:-}" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ps = d["repair"]["problems_after"] if sys.argv[2] else d["problems"]
for p in ps:
    print("%s\t%s\t%s" % (p["severity"], p["structure"], p.get("offset", "-")))
EOF
}
# lost FILE.json: "VOFF+LEN" per lost range
lost_ranges() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for l in d.get("repair",{}).get("lost",[]): print("%d+%d" % (l["virtual_offset"], l["length"]))' "$1"
}
# zero_ranges RAW RANGES...: zeroes [OFF, OFF+LEN) of RAW in place
zero_ranges() {
	local raw="$1" r
	shift
	for r in "$@"; do
		python3 -c 'import sys
f=open(sys.argv[1],"r+b"); o,n=map(int,sys.argv[2].split("+")); f.seek(0,2); sz=f.tell()
n=max(0,min(n,sz-o)); f.seek(o); f.write(bytes(n))' "$raw" "$r"
	done
}

# ---- 1. clean images
clean_ok() { # LABEL FILE
	local rc
	"$VHDX" check --json "$2" > "$T/c.json" 2> "$T/err"
	rc=$?
	[ $rc = 0 ] || { bad "$1: vhdx check exit $rc on a clean image: $(cat "$T/err") $(problems "$T/c.json" 2>/dev/null | head -5)"; return; }
	[ -z "$(problems "$T/c.json")" ] || bad "$1: problems listed on a clean image"
	"$VHDX" check "$2" > "$T/c.txt" || bad "$1: text mode exit $?"
	grep -q ", 0 errors, 0 warnings$" "$T/c.txt" || bad "$1: text summary: $(head -1 "$T/c.txt")"
}
sample=$(fixture_image sample-dynamic.vhdx)
clean_ok sample "$sample"
qemu-img create -q -f vhdx -o subformat=fixed,block_size=2M "$T/qfixed.vhdx" 6292992 || fail "qemu-img create"
qemu-io -f vhdx -c "write -P 0x3c 0 1M" -c "write -P 0x99 6292480 512" "$T/qfixed.vhdx" > /dev/null || fail "qemu-io"
clean_ok qemu-fixed "$T/qfixed.vhdx"
qemu-img create -q -f vhdx -o block_size=1M "$T/qdyn.vhdx" 64M || fail "qemu-img create"
qemu-io -f vhdx -c "write -P 0x11 3M 2M" -c "write -P 0x22 40M 1M" "$T/qdyn.vhdx" > /dev/null || fail "qemu-io"
clean_ok qemu-dynamic "$T/qdyn.vhdx"
qemu-img create -q -f vpc -o subformat=dynamic "$T/qdyn.vhd" 32M || fail "qemu-img create vpc"
qemu-io -f vpc -c "write -P 0x33 1M 3M" -c "write -P 0x44 20M 64K" "$T/qdyn.vhd" > /dev/null || fail "qemu-io vpc"
clean_ok qemu-vhd-dynamic "$T/qdyn.vhd"
qemu-img create -q -f vpc -o subformat=fixed "$T/qfix.vhd" 8M || fail "qemu-img create vpc fixed"
clean_ok qemu-vhd-fixed "$T/qfix.vhd"
"$VHDX" create --size 48M "$T/own.vhdx" > /dev/null || fail "vhdx create"
printf 'hello' | "$VHDX" write --offset 5M "$T/own.vhdx" || fail "vhdx write"
clean_ok own-dynamic "$T/own.vhdx"
"$VHDX" create --parent "$T/own.vhdx" "$T/own-child.avhdx" > /dev/null || fail "vhdx create --parent"
printf 'child' | "$VHDX" write --offset 7M "$T/own-child.avhdx" || fail "vhdx write child"
clean_ok own-child "$T/own-child.avhdx"
"$VHDX" create --size 16M "$T/own.vhd" > /dev/null || fail "vhdx create vhd"
clean_ok own-vhd "$T/own.vhd"
mv "$T/own.vhdx" "$T/own-moved.vhdx"
"$VHDX" check --json "$T/own-child.avhdx" > "$T/c.json"
rc=$?
[ $rc = 3 ] && [ "$(problems "$T/c.json" | cut -f2 | sort -u)" = parent ] ||
	bad "a child whose parent is missing: exit $rc, problems $(problems "$T/c.json" | tr '\n' ' ') (expected 3, 'parent')"
rm -f "$T/own-moved.vhdx" "$T/own-child.avhdx" "$T/own.vhd"
[ $n_fail = 0 ] && pass "clean images: exit 0, no problem; a missing parent is a 'parent' problem"

if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	while IFS=$'\t' read -r file fmt type vsize raw fsha by expect; do
		[ "$file" = file ] && continue
		name=${file%.xz}
		img=$(conformance_image "$name")
		before=$(sha256 "$img")
		"$VHDX" check --json "$img" > "$T/c.json" 2> "$T/err"
		rc=$?
		got=$(problems "$T/c.json" 2>/dev/null | cut -f1,2 | sort -u | tr '\n' ' ')
		case "$name" in
		dirtylog-*) want="warning	log " ;;
		badsum-*) want="error	footer error	footer copy " ;;
		*-orphan.*) want="error	parent " ;;
		*) want= ;;
		esac
		if [ -z "$want" ]; then
			[ $rc = 0 ] && [ -z "$got" ] || bad "$name: exit $rc, problems '$got' on a clean image $(cat "$T/err")"
		else
			[ $rc = 3 ] && [ "$got" = "$want" ] || bad "$name: exit $rc, problems '$got', expected exit 3 with '$want'"
		fi
		[ "$(sha256 "$img")" = "$before" ] || bad "$name: vhdx check changed the file"
		rm -f "$img"
	done < "$CONFORMANCE/MANIFEST.tsv"
	[ $n_fail = 0 ] && pass "conformance images: clean ones exit 0; dirtylog, badsum and orphans report exactly their damage"
else
	echo "conformance images not found at $CONFORMANCE: left out"
fi

# ---- 2 and 3. every damage kind of tests/tools/damage
# KIND -> "STRUCTURE|CLASS": the structure check must name (at the generator's offset where it gives one);
# CLASS fix: --repair ends clean with the data intact outside the lost ranges; keep: not repairable (exit 3);
# legal: a state the format allows (exit 0, or only leaked space that --repair frees without changing the data);
# any: random damage (no crash, exit 0/1/3; a repair that ends with exit 0 leaves a clean image).
declare -A KIND=(
	[hdr1-signature]="header 1|fix" [hdr1-crc]="header 1|fix" [hdr1-sig-and-crc]="header 1|fix"
	[hdr1-zeroed]="header 1|fix" [hdr1-reserved-byte]="header 1|fix" [hdr1-version-2]="header 1|fix"
	[hdr1-log-misaligned]="header 1|fix"
	[hdr2-signature]="header 2|fix" [hdr2-crc]="header 2|fix" [hdr2-sig-and-crc]="header 2|fix"
	[hdr2-zeroed]="header 2|fix" [hdr2-reserved-byte]="header 2|fix" [hdr2-version-2]="header 2|fix"
	[hdr2-log-misaligned]="header 2|fix"
	[hdr-older-made-current]="|legal" [hdr-equal-sequence]="headers|fix"
	[hdr-both-signature]="headers|keep" [hdr-both-crc]="headers|keep" [hdr-both-zeroed]="headers|keep"
	[hdr-both-version-2]="headers|keep" [hdr-both-log-version-7]="headers|keep"
	[hdr-both-log-length-odd]="headers|keep" [hdr-both-log-offset-overflow]="headers|keep"
	[hdr-both-clean-log-past-eof]="log|keep" [hdr-both-log-guid-no-entries]="log|fix"
	[rt1-signature]="region table 1|fix" [rt1-crc]="region table 1|fix" [rt1-sig-and-crc]="region table 1|fix"
	[rt1-entry-byte]="region table 1|fix" [rt1-count-huge]="region table 1|fix"
	[rt2-signature]="region table 2|fix" [rt2-crc]="region table 2|fix" [rt2-sig-and-crc]="region table 2|fix"
	[rt2-entry-byte]="region table 2|fix" [rt2-count-huge]="region table 2|fix"
	[rt-both-signature]="region tables|keep" [rt-both-crc]="region tables|keep"
	[rt-both-count-huge]="region tables|keep" [rt-both-count-2048]="region tables|keep"
	[rt-both-count-zero]="region table|keep" [rt-both-bat-past-eof]="region table entry|keep"
	[rt-both-bat-offset-overflow]="region tables|keep" [rt-both-metadata-past-eof]="region table entry|keep"
	[rt-both-overlap]="region tables|keep" [rt-both-bat-on-log]="region table entry|keep"
	[rt-both-bat-misaligned]="region tables|keep" [rt-both-bat-offset-zero]="region tables|keep"
	[rt-both-bat-length-zero]="region tables|keep" [rt-both-two-bats]="region tables|keep"
	[rt-both-unknown-required]="region table entry|keep" [rt-both-unknown-optional]="|legal"
	[rt-both-reserved-flags]="region table 1|keep"
	[meta-signature]="metadata table|keep" [meta-count-huge]="metadata table|keep"
	[meta-count-2048]="metadata table|keep" [meta-count-zero]="file parameters|keep"
	[meta-item-offset-past-region]="metadata table|keep" [meta-item-end-past-region]="metadata table|keep"
	[meta-item-offset-overflow]="metadata table|keep" [meta-item-length-huge]="metadata table|keep"
	[meta-item-in-table]="metadata table|keep" [meta-items-overlap]="metadata table|keep"
	[meta-params-length-4]="file parameters|keep" [meta-duplicate-item]="metadata table|keep"
	[meta-missing-file-parameters]="file parameters|keep" [meta-missing-virtual-size]="virtual disk size|keep"
	[meta-missing-disk-id]="virtual disk id|keep" [meta-missing-logical-sector-size]="logical sector size|keep"
	[meta-missing-physical-sector-size]="physical sector size|keep"
	[meta-unknown-required]="metadata table|keep" [meta-unknown-required-user]="metadata table|keep"
	[meta-unknown-optional]="|legal" [meta-unknown-user]="|legal"
	[meta-has-parent-no-locator]="parent locator|keep" [meta-params-reserved-flags]="file parameters|keep"
	[meta-logical-sector-other]="|any" [meta-virtual-size-unaligned]="virtual disk size|keep"
	[meta-virtual-size-half]="|any" [meta-virtual-size-double]="|any" [meta-virtual-size-64T]="BAT|keep"
	[bat-past-eof]="BAT entry|fix" [bat-at-eof]="BAT entry|fix" [bat-offset-max]="BAT entry|fix"
	[bat-offset-zero]="BAT entry|fix" [bat-on-metadata]="BAT entry|fix" [bat-on-bat]="BAT entry|fix"
	[bat-on-log]="BAT entry|fix" [bat-reserved-bit3]="BAT entry|fix" [bat-reserved-bit19]="BAT entry|fix"
	[bat-state-4]="BAT entry|fix" [bat-state-partial]="BAT entry|fix"
	[bat-state-zero]="|legal" [bat-state-not-present]="|legal" [bat-state-unmapped]="|legal"
	[bat-state-undefined]="|legal" [bat-state-zero-with-offset]="|legal"
	[bat-duplicate]="BAT entry|fix" [bat-overlap]="BAT entry|fix" [bat-duplicate-of-absent]="BAT entry|fix"
	[bat-absent-reserved]="BAT entry|fix" [bat-padding-garbage]="|legal" [bat-random]="|any"
	[bat-random-present]="BAT entry|fix"
	[append-zeros]="file|fix" [append-garbage]="|legal"
	[fileid-signature]="file identifier|fix" [fileid-creator-garbage]="|legal"
)
kind_of() { # NAME EXPECT -> table entry (patterns for the families with variable names)
	[ -n "${KIND[$1]:-}" ] && { echo "${KIND[$1]}"; return; }
	case "$1" in
	meta-block-size-*) [ "$2" = any ] && echo "|any" || echo "file parameters|keep" ;; # any: another valid size
	meta-logical-sector-other) echo "|any" ;;
	meta-logical-sector-*) echo "logical sector size|keep" ;;
	meta-physical-sector-*) echo "physical sector size|keep" ;;
	meta-virtual-size-[0-9]*) echo "virtual disk size|keep" ;;
	truncate-*) echo "|trunc" ;;
	flip-*) echo "|any" ;;
	esac
}

# repaired_ok LABEL FILE GOODRAW [RANGES...]: vhdx check 0, qemu-img check clean, both readers give GOODRAW
# with RANGES zeroed
repaired_ok() {
	local what="$1" f="$2" good="$3" rc
	shift 3
	"$VHDX" check "$f" > "$T/after.txt" 2>&1
	rc=$?
	[ $rc = 0 ] || { bad "$what: vhdx check after repair: exit $rc: $(head -4 "$T/after.txt" | tr '\n' ' ')"; return 1; }
	# qemu-img check knows VHDX (not vpc)
	case "$f" in
	*.vhd) ;;
	*) qemu-img check -q "$f" > "$T/q.txt" 2>&1 || { bad "$what: qemu-img check after repair: $(tail -2 "$T/q.txt")"; return 1; } ;;
	esac
	cp "$good" "$T/want.raw"
	zero_ranges "$T/want.raw" "$@"
	"$VHDX" convert -O raw "$f" "$T/got.raw" 2> "$T/err" || { bad "$what: convert after repair: $(cat "$T/err")"; return 1; }
	cmp -s "$T/got.raw" "$T/want.raw" || { bad "$what: after repair the data differs outside the lost ranges ($*)"; return 1; }
	if [ -n "${QEMU_READ:-}" ]; then
		qemu-img convert -O raw "$f" "$T/qgot.raw" && cmp -s "$T/qgot.raw" "$T/want.raw" ||
			{ bad "$what: qemu-img reads other data after the repair"; return 1; }
	fi
	return 0
}

n_kinds=0
damage_check() { # LABEL IMAGE SEED [norepair]
	local label="$1" img="$2" repair=${4:-repair} name expect arg desc at entry structure class rc before v got ranges
	local n_before=$n_fail
	rm -rf "$T/v" && mkdir "$T/v"
	"$DAMAGE" --seed "$3" --flips 4 "$img" "$T/v" > /dev/null || fail "$label: the damage generator failed"
	qemu-img convert -O raw "$img" "$T/good.raw" || fail "$label: qemu-img convert"
	while IFS=$'\t' read -r name expect arg desc at; do
		v="$T/v/$name.vhdx"
		entry=$(kind_of "$name" "$expect")
		[ -n "$entry" ] || { bad "$label/$name: damage kind not listed in test-check.sh ($desc)"; continue; }
		structure=${entry%|*} class=${entry#*|}
		n_kinds=$((n_kinds + 1))
		before=$(sha256 "$v")
		timeout -k 5 30 "$VHDX" check --json "$v" > "$T/c.json" 2> "$T/err"
		rc=$?
		[ "$(sha256 "$v")" = "$before" ] || bad "$label/$name: vhdx check without --repair changed the file"
		grep -Eq 'Sanitizer|runtime error' "$T/err" && bad "$label/$name: sanitizer: $(head -3 "$T/err")"
		case "$class" in
		fix | keep)
			[ $rc = 3 ] || { bad "$label/$name: exit $rc, expected 3 ($desc) $(head -c 300 "$T/err")"; continue; }
			got=$(problems "$T/c.json")
			if [ "$at" != - ]; then
				grep -qP "^\w+\t\Q$structure\E\t$at\$" <<< "$got" ||
					bad "$label/$name: no '$structure' problem at offset $at: $(tr '\n' ' ' <<< "$got")"
			else
				cut -f2 <<< "$got" | grep -qxF "$structure" ||
					bad "$label/$name: no '$structure' problem: $(tr '\n' ' ' <<< "$got")"
			fi
			;;
		legal)
			if [ $rc = 3 ]; then
				got=$(problems "$T/c.json" | cut -f1,2 | sort -u)
				[ "$got" = "warning	file" ] || bad "$label/$name: a legal state reported as '$got'"
			elif [ $rc != 0 ]; then
				bad "$label/$name: exit $rc on a legal state ($desc): $(head -c 300 "$T/err")"
			fi
			;;
		trunc | any)
			case $rc in 0 | 3) ;; 1) [ -s "$T/err" ] || bad "$label/$name: exit 1 without a message" ;;
			*) bad "$label/$name: exit $rc ($desc)" ;; esac
			;;
		esac
		[ $rc = 3 ] && [ "$repair" = repair ] || continue
		# the repair, on a copy
		cp "$v" "$T/r.vhdx"
		[ "$class" = legal ] && "$VHDX" convert -O raw "$v" "$T/legal.raw" 2> /dev/null
		timeout -k 5 30 "$VHDX" check --repair --json "$T/r.vhdx" > "$T/r.json" 2> "$T/err"
		rc=$?
		grep -Eq 'Sanitizer|runtime error' "$T/err" && bad "$label/$name: sanitizer in repair: $(head -3 "$T/err")"
		mapfile -t ranges < <(lost_ranges "$T/r.json" 2>/dev/null)
		case "$class" in
		fix)
			[ $rc = 0 ] || { bad "$label/$name: --repair exit $rc: $(problems "$T/r.json" after 2>/dev/null | tr '\n' ' ') $(head -c 300 "$T/err")"; continue; }
			repaired_ok "$label/$name" "$T/r.vhdx" "$T/good.raw" "${ranges[@]}"
			;;
		legal)
			[ $rc = 0 ] || { bad "$label/$name: --repair of leaked space: exit $rc"; continue; }
			[ ${#ranges[@]} = 0 ] || bad "$label/$name: freeing leaked space lost data: ${ranges[*]}"
			repaired_ok "$label/$name" "$T/r.vhdx" "$T/legal.raw"
			;;
		keep)
			[ $rc = 3 ] || bad "$label/$name: --repair of unrepairable damage: exit $rc (expected 3)"
			;;
		trunc | any)
			case $rc in
			0) "$VHDX" check "$T/r.vhdx" > /dev/null 2>&1 || bad "$label/$name: repair said clean but check disagrees"
			   qemu-img check -q "$T/r.vhdx" > /dev/null 2>&1 || bad "$label/$name: repaired, but qemu-img check fails" ;;
			1 | 3) ;;
			*) bad "$label/$name: --repair exit $rc" ;;
			esac
			;;
		esac
	done < "$T/v/variants.tsv"
	[ $n_fail = $n_before ] && pass "$label: $(wc -l < "$T/v/variants.tsv") damaged variants: named structure and offset, exit 3, file unchanged$([ "$repair" = repair ] && echo "; repairs clean with the data intact outside the lost ranges" || echo " (checks only)")"
	rm -rf "$T/v" "$T/good.raw"
}
damage_check sample "$sample" "$seed"
# the second image: the checks only (the repairs are the same code paths; keeps the test fast)
damage_check qemu-fixed "$T/qfixed.vhdx" $((seed + 1)) norepair
echo "$n_kinds damaged variants checked"

# ---- 4. VHD damage (patched here, independently of the library)
qemu-img convert -O raw "$T/qdyn.vhd" "$T/vgood.raw" || fail "qemu-img convert vhd"
vhd_damage() { # NAME STRUCTURE CLASS PYTHON-PATCH (f = the open file, size, tab = BAT offset, bs = block size)
	local name="$1" structure="$2" class="$3" rc
	cp "$T/qdyn.vhd" "$T/vd.vhd"
	python3 - "$T/vd.vhd" "$4" <<'EOF' || fail "patching $1"
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0, 2); size = f.tell()
f.seek(512); dh = f.read(1024)
tab = struct.unpack(">Q", dh[16:24])[0]; bs = struct.unpack(">I", dh[32:36])[0]
def vsum(b, skip):
    return (~sum(x for i, x in enumerate(b) if not skip <= i < skip + 4)) & 0xffffffff
exec(sys.argv[2])
EOF
	before=$(sha256 "$T/vd.vhd")
	"$VHDX" check --json "$T/vd.vhd" > "$T/c.json" 2> "$T/err"
	rc=$?
	[ "$(sha256 "$T/vd.vhd")" = "$before" ] || bad "vhd/$name: check changed the file"
	[ $rc = 3 ] || { bad "vhd/$name: exit $rc, expected 3: $(cat "$T/err")"; return; }
	got=$(problems "$T/c.json")
	cut -f2 <<< "$got" | grep -qxF "$structure" ||
		{ bad "vhd/$name: no '$structure' problem: $(problems "$T/c.json" | tr '\n' ' ')"; return; }
	"$VHDX" check --repair --json "$T/vd.vhd" > "$T/r.json" 2> "$T/err"
	rc=$?
	if [ "$class" = keep ]; then
		[ $rc = 3 ] || bad "vhd/$name: --repair exit $rc (expected 3)"
		return
	fi
	[ $rc = 0 ] || { bad "vhd/$name: --repair exit $rc: $(problems "$T/r.json" after | tr '\n' ' ') $(cat "$T/err")"; return; }
	mapfile -t ranges < <(lost_ranges "$T/r.json")
	repaired_ok "vhd/$name" "$T/vd.vhd" "$T/vgood.raw" "${ranges[@]}" || return
	[ "$class" = fix ] && [ ${#ranges[@]} != 0 ] && bad "vhd/$name: data reported lost: ${ranges[*]}"
	[ "$class" = fix-lost ] && [ ${#ranges[@]} = 0 ] && bad "vhd/$name: no lost range reported"
}
QEMU_READ=1
vhd_damage footer-checksum footer fix 'f.seek(size - 512 + 64); f.write(b"\x12\x34\x56\x78")'
vhd_damage footer-missing footer fix 'f.truncate(size - 512)'
vhd_damage copy-checksum "footer copy" fix 'f.seek(64); f.write(b"\0\0\0\0")'
vhd_damage copy-differs "footer copy" fix 'f.seek(0); b = bytearray(f.read(512)); b[24] ^= 1; b[64:68] = struct.pack(">I", vsum(b, 64)); f.seek(0); f.write(b)'
vhd_damage both-footers footer keep 'f.seek(64); f.write(b"\0\0\0\0"); f.seek(size - 512 + 64); f.write(b"\0\0\0\0")'
vhd_damage dynhdr-checksum "dynamic header" fix 'f.seek(512 + 36); f.write(b"\xde\xad\xbe\xef")'
vhd_damage bat-past-eof "BAT entry" fix-lost 'f.seek(tab + 4 * 0); f.write(struct.pack(">I", 0x7fffffff))'
vhd_damage bat-on-bat "BAT entry" fix-lost 'f.seek(tab); f.write(struct.pack(">I", tab // 512))'
vhd_damage bat-duplicate "BAT entry" fix-lost 'f.seek(tab + 4 * 1); e = f.read(4); f.seek(tab + 4 * 2); f.write(e)'
vhd_damage leaked-block file fix 'f.seek(size - 512); ft = f.read(512); f.seek(size - 512); f.write(b"\xa5" * (bs + 512) + ft)'
[ $n_fail = 0 ] && pass "VHD: footer, footer copy, dynamic header, BAT entries, leaked space: found, repaired, data intact"

# fixed VHD with space between the data and the footer
cp "$T/qfix.vhd" "$T/vf.vhd"
sz=$(stat -c %s "$T/vf.vhd")
tail -c 512 "$T/vf.vhd" > "$T/ft"
truncate -s $((sz - 512 + 3 * 1048576)) "$T/vf.vhd" && cat "$T/ft" >> "$T/vf.vhd"
"$VHDX" check --json "$T/vf.vhd" > "$T/c.json"
rc=$?
# the leak starts where the disk data ends: the footer's current size = the original file size - 512
[ "$rc:$(problems "$T/c.json" | tr '\n' ' ')" = "3:warning	file	$((sz - 512)) " ] ||
	bad "fixed VHD with leaked space: exit $rc, problems $(problems "$T/c.json" | tr '\n' ' ')"
"$VHDX" check --repair "$T/vf.vhd" > /dev/null || bad "fixed VHD leaked space: --repair exit $?"
cmp -s "$T/vf.vhd" "$T/qfix.vhd" || bad "fixed VHD: after freeing the leaked space the file is not the original"

# a differencing VHDX: a PARTIALLY_PRESENT block whose sector bitmap entry was cleared
"$VHDX" create --size 64M "$T/dp.vhdx" > /dev/null && printf 'AAAA' | "$VHDX" write --offset 1M "$T/dp.vhdx" &&
	"$VHDX" create --parent "$T/dp.vhdx" "$T/dc.avhdx" > /dev/null &&
	head -c 512 /dev/urandom | "$VHDX" write --offset 2M "$T/dc.avhdx" &&
	head -c 2M /dev/urandom | "$VHDX" write --offset 40M "$T/dc.avhdx" || fail "making a chain"
"$VHDX" convert -O raw "$T/dc.avhdx" "$T/dgood.raw" || fail "convert chain"
# the BAT found by our own reading of the region table (MS-VHDX 2.2.3); block 1 and its chunk's bitmap entry
bat_sb=$(python3 - "$T/dc.avhdx" <<'EOF2'
import struct, sys
f = open(sys.argv[1], "r+b"); f.seek(192 * 1024); rt = f.read(65536)
for i in range(struct.unpack("<I", rt[8:12])[0]):
    e = rt[16 + 32 * i:48 + 32 * i]
    if e[:16] == bytes.fromhex("6677c22d23f600429d64115e9bfd4a08"):
        bat = struct.unpack("<Q", e[16:24])[0]
f.seek(bat + 8); b1 = struct.unpack("<Q", f.read(8))[0]
# 2 MiB blocks of 512-byte sectors: 2048 payload entries per chunk, then the bitmap entry
f.seek(bat + 8 * 2048); sb = struct.unpack("<Q", f.read(8))[0]
assert b1 & 7 == 7 and sb & 7 == 6, (hex(b1), hex(sb))
f.seek(bat + 8 * 2048); f.write(bytes(8))
print(bat + 8)
EOF2
) || fail "damaging the child"
"$VHDX" check --json "$T/dc.avhdx" > "$T/c.json"
rc=$?
[ $rc = 3 ] && problems "$T/c.json" | grep -qP "^error\tBAT entry\t$bat_sb\$" ||
	bad "child without its sector bitmap: exit $rc, problems $(problems "$T/c.json" | tr '\n' ' ')"
"$VHDX" check --repair --json "$T/dc.avhdx" > "$T/r.json" || bad "child: --repair exit $?"
mapfile -t ranges < <(lost_ranges "$T/r.json")
[ "${ranges[*]}" = "$((2 * 1048576))+$((2 * 1048576))" ] || bad "child: lost ranges '${ranges[*]}', expected block 1"
"$VHDX" check "$T/dc.avhdx" > /dev/null || bad "child: check after repair exit $?"
cp "$T/dgood.raw" "$T/dwant.raw" && zero_ranges "$T/dwant.raw" "${ranges[@]}"
"$VHDX" convert -O raw "$T/dc.avhdx" "$T/dgot.raw" && cmp -s "$T/dgot.raw" "$T/dwant.raw" ||
	bad "child: after repair the chain reads other data outside block 1"
rm -f "$T/dp.vhdx" "$T/dc.avhdx" "$T/"d*.raw
[ $n_fail = 0 ] && pass "differencing VHDX: a partially present block without its sector bitmap is found, cleared through the log, the rest of the chain intact"

# ---- 5. power cuts during a repair, then the repair again
# the damage: header 1 broken, one BAT entry 1 GiB past the end, a dirty-looking 3 MiB tail
rm -rf "$T/v" && mkdir "$T/v"
"$DAMAGE" --seed 1 --flips 0 "$sample" "$T/v" > /dev/null || fail "damage"
blk=$(sed -n 's/^bat-past-eof\t.*block \([0-9]*\) 1 GiB past.*/\1/p' "$T/v/variants.tsv")
[ -n "$blk" ] || fail "bat-past-eof variant missing"
cp "$T/v/bat-past-eof.vhdx" "$T/crash-base.vhdx"
printf '\x55' | dd of="$T/crash-base.vhdx" bs=1 seek=$((65536 + 300)) conv=notrunc status=none
truncate -s +3M "$T/crash-base.vhdx"
qemu-img convert -O raw "$sample" "$T/good.raw"
bsz=1048576 # the sample's block size (fixtures/sample-dynamic.vhdx.txt)
rm -rf "$T/v"
for op in write flush; do
	n=1
	while :; do
		[ $n -le 100 ] || fail "op=$op crash: still firing at call $n"
		cp "$T/crash-base.vhdx" "$T/crash.vhdx"
		printf 'op=%s nth=%d crash\n' "$op" $n > "$T/rules"
		"$VHDX" --faults "$T/rules" --fault-log "$T/flog" check --repair "$T/crash.vhdx" > "$T/out" 2>&1
		rc=$?
		hits=$(sed -n 's/.*# rule 1: hits=\([0-9]*\).*/\1/p' "$T/flog")
		[ "$hits" = 0 ] && { [ $rc = 0 ] || bad "op=$op: repair without a fault exited $rc"; break; }
		[ $rc != 0 ] || bad "op=$op nth=$n: a crash was injected but the repair reported success"
		"$VHDX" check --repair "$T/crash.vhdx" > "$T/out2" 2>&1
		rc=$?
		[ $rc = 0 ] || { bad "op=$op nth=$n: the repair after the crash exited $rc: $(head -5 "$T/out2" | tr '\n' ' ')"; n=$((n + 1)); continue; }
		repaired_ok "op=$op nth=$n" "$T/crash.vhdx" "$T/good.raw" "$((blk * bsz))+$bsz"
		n=$((n + 1))
	done
	[ $n -ge 3 ] || bad "op=$op: the repair has only $((n - 1)) such calls?"
	echo "op=$op crash at each of calls 1..$((n - 1)) of the repair: the next repair finishes it"
done
[ $n_fail = 0 ] && pass "power cuts at every write and flush of a repair: running it again gives a clean image, data intact"

[ $n_fail = 0 ] || fail "$n_fail problems (DAMAGE_SEED=$seed)"
