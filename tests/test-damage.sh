#!/bin/bash
# test-damage.sh - damaged images must never crash, hang or trip a sanitizer,
# and must be refused with a message naming the broken structure, or read
# correctly where the format allows it (a damaged header or region table copy
# falls back to the other copy).  tests/tools/damage writes the variants and
# what each must give (see the top of tests/tools/damage.c); the inputs are
# the qemu-made sample disk, a qemu-made fixed disk and, where ../shared is
# beside the checkout, a disk written by Windows 10.
#
#   DAMAGE_SEED=N   reproduce the random variants of an earlier run
#   DAMAGE_FLIPS=N  random byte-flip variants per image (default 30)
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires qemu-img qemu-io timeout xz
DAMAGE="$top_builddir/tests/tools/damage"
[ -x "$VHDX" ] || fail "$VHDX was not built"
[ -x "$DAMAGE" ] || fail "$DAMAGE was not built (make check builds it)"

seed=${DAMAGE_SEED:-$(( $(date +%s%N) % 1000000000000 ))}
flips=${DAMAGE_FLIPS:-30}
echo "DAMAGE_SEED=$seed DAMAGE_FLIPS=$flips (set them to reproduce this run)"

SANITIZER='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error|ThreadSanitizer'
n_fail=0
n_checked=0

bad() {
	echo "FAIL: $*"
	n_fail=$((n_fail + 1))
}

# sha256 of the good disk with bytes [OFF, OFF+LEN) zeroed
zeroed_sha() {
	local off=${1%+*} len=${1#*+}
	cp "$good" "$T/zeroed.raw"
	dd if=/dev/zero of="$T/zeroed.raw" bs=512 seek=$((off / 512)) count=$((len / 512)) conv=notrunc status=none
	sha256 "$T/zeroed.raw"
}

# check_run WHAT RC ERRFILE: the rules every run must follow whatever the damage
check_run() {
	local what="$1" rc="$2" err="$3"
	if grep -Eq "$SANITIZER" "$err"; then
		bad "$what: sanitizer report: $(grep -Em3 "$SANITIZER" "$err")"
		return 1
	fi
	case "$rc" in
	0) ;;
	1) [ -s "$err" ] || { bad "$what: exit 1 without a message on stderr"; return 1; } ;;
	124) bad "$what: timed out (20 s)"; return 1 ;;
	*)
		if [ "$rc" -ge 128 ]; then
			bad "$what: killed by signal $((rc - 128)); stderr: $(tail -c 600 "$err")"
		else
			bad "$what: exit $rc (expected 0 or 1); stderr: $(tail -c 600 "$err")"
		fi
		return 1
		;;
	esac
	return 0
}

# check_variant IMAGE-LABEL FILE NAME EXPECT ARG DESCRIPTION
check_variant() {
	local label="$1" v="$2" name="$3" expect="$4" arg="$5" desc="$6" rc irc got want msg
	local what="$label/$name ($desc)"

	timeout -k 5 20 "$VHDX" convert -O raw "$v" - 2> "$T/err" | sha256_stdin > "$T/hash"
	rc=${PIPESTATUS[0]}
	got=$(cat "$T/hash")
	timeout -k 5 20 "$VHDX" info "$v" > /dev/null 2> "$T/ierr"
	irc=$?
	n_checked=$((n_checked + 1))
	check_run "$what: convert" "$rc" "$T/err" || return
	check_run "$what: info" "$irc" "$T/ierr" || return
	msg=$(head -c 300 "$T/err" | tr '\n' ' ')

	case "$expect" in
	same | zeroed | prefix | ok)
		[ "$rc" = 0 ] || { bad "$what: convert must read it (expect $expect) but failed: $msg"; return; }
		[ "$irc" = 0 ] || { bad "$what: info must read it (expect $expect) but failed: $(head -c 300 "$T/ierr")"; return; }
		case "$expect" in
		same) want=$good_sha ;;
		zeroed) want=$(zeroed_sha "$arg") ;;
		prefix) want=$(head -c "$arg" "$good" | sha256_stdin) ;;
		ok) want=$got ;;
		esac
		[ "$got" = "$want" ] || bad "$what: read without error but the data is wrong (expect $expect${arg:+ $arg})"
		;;
	error)
		[ "$rc" = 1 ] || { bad "$what: convert must refuse it (a message matching /$arg/) but exited $rc"; return; }
		grep -Eiq -- "$arg" "$T/err" || bad "$what: convert's message does not name /$arg/: $msg"
		[ "$irc" = 1 ] || { bad "$what: info must refuse it but exited $irc"; return; }
		grep -Eiq -- "$arg" "$T/ierr" || bad "$what: info's message does not name /$arg/: $(head -c 300 "$T/ierr")"
		;;
	same-or-error)
		if [ "$rc" = 0 ]; then
			[ "$got" = "$good_sha" ] || bad "$what: read without error but the data is wrong (must be the good data or an error)"
		fi
		[ "$rc" = 1 ] || [ "$irc" = 0 ] || bad "$what: convert read it but info failed: $(head -c 300 "$T/ierr")"
		;;
	any)
		[ "$rc" = 1 ] || [ "$irc" = 0 ] || bad "$what: convert read it but info failed: $(head -c 300 "$T/ierr")"
		;;
	*)
		bad "$what: unknown expectation '$expect' in variants.tsv"
		;;
	esac
	echo "ok $label/$name: $expect -> convert $rc, info $irc${msg:+: $msg}"
}

# damage_image LABEL IMAGE GOOD-RAW SEED: every variant of IMAGE
damage_image() {
	local label="$1" img="$2" name expect arg desc n_before=$n_fail
	good="$3"
	good_sha=$(sha256 "$good")
	rm -rf "$T/v" && mkdir "$T/v"
	"$DAMAGE" --seed "$4" --flips "$flips" "$img" "$T/v" || fail "$label: the damage generator failed"
	# the good image itself reads as the reference says
	got=$("$VHDX" convert -O raw "$img" - 2> "$T/err" | sha256_stdin)
	[ "$got" = "$good_sha" ] || fail "$label: the undamaged image does not read correctly: $(cat "$T/err")"
	while IFS=$'\t' read -r name expect arg desc _; do
		[ "$arg" = - ] && arg=
		check_variant "$label" "$T/v/$name.vhdx" "$name" "$expect" "$arg" "$desc"
	done < "$T/v/variants.tsv"
	[ "$n_fail" = "$n_before" ] && pass "$label: $(wc -l < "$T/v/variants.tsv") damaged variants behave"
	rm -rf "$T/v"
}

# 1. the sample disk: dynamic, 1 MiB blocks, 5 of 8 blocks present (qemu)
img=$(fixture_image sample-dynamic.vhdx)
qemu-img convert -O raw "$img" "$T/sample.raw" || fail "qemu-img convert of the sample failed"
damage_image sample "$img" "$T/sample.raw" "$seed"

# 2. a fixed disk, 2 MiB blocks, 6 MiB + 512 so the last block is partial (qemu)
qemu-img create -q -f vhdx -o subformat=fixed,block_size=2M "$T/fixed.vhdx" 6292992 || fail "qemu-img create failed"
qemu-io -f vhdx -c "write -P 0x3c 0 1M" -c "write -P 0xc3 2096640 1024" -c "write -P 0x99 6292480 512" \
	"$T/fixed.vhdx" > /dev/null || fail "qemu-io failed"
qemu-img convert -O raw "$T/fixed.vhdx" "$T/fixed.raw" || fail "qemu-img convert of the fixed disk failed"
damage_image fixed "$T/fixed.vhdx" "$T/fixed.raw" $((seed + 1))
rm -f "$T/fixed.vhdx" "$T/fixed.raw"

# 3. a disk written by Windows 10 (32 MiB block, one block present)
if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	name=win10-dynamic-10M.vhdx
	img=$(conformance_image "$name")
	"$VHDX" convert -O raw "$img" "$T/win10.raw" || fail "$name: vhdx convert failed"
	# the reference is the manifest's hash (two other readers agree), not our own reading
	expect_eq "$name: sha256 of the raw disk" "$(sha256 "$T/win10.raw")" "$(manifest_field "$name.xz" raw_sha256)"
	damage_image win10 "$img" "$T/win10.raw" $((seed + 2))
else
	echo "conformance images not found at $CONFORMANCE: the Windows-made input is left out"
fi

echo "$n_checked variants checked, $n_fail problems (DAMAGE_SEED=$seed)"
[ "$n_fail" = 0 ] || fail "$n_fail problems with damaged images (reproduce with DAMAGE_SEED=$seed)"
