#!/bin/bash
# test-nbdkit-partition.sh - the nbdkit plugin with nbdkit's own partition
# filter (issue #16): `nbdkit --filter=partition vhdx file=IMAGE
# partition=N` serves partition N of a chain, byte for byte what
# `vhdx convert --partition N` and vhdxfs's MNT/pN give (a GPT partition of
# a base + checkpoint chain, and an MBR logical partition).
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
PLUGIN="$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so"
[ -f "$PLUGIN" ] || skip "the nbdkit plugin was not built (configure found no nbdkit-plugin.h; Debian: nbdkit-plugin-dev)"
requires nbdkit nbdcopy sgdisk sfdisk timeout
nbdkit --dump-config > /dev/null 2>&1 || skip "nbdkit does not run here"
nbdkit --filter=partition null --help > /dev/null 2>&1 || skip "nbdkit's partition filter is not installed"
cd "$T"

# A sanitizer build's plugin needs the ASan runtime preloaded into nbdkit (as in test-nbdkit.sh).
nbdkit_sanitizer_env

# serve_partition IMAGE N OUT: partition N of IMAGE through the filter, copied to OUT
serve_partition() {
	nbdkit_run "nbdcopy \"\$uri\" '$3'" -r --filter=partition "$PLUGIN" file="$1" partition="$2" ||
		fail "nbdkit --filter=partition partition=$2 on $1: $(cat "$T/nbdkit.err")"
}

# GPT: three partitions, a checkpoint that writes into partition 2
head -c $((24 << 20)) /dev/urandom > gpt.raw
sgdisk -n 1:0:+4M -n 2:0:+8M -t 2:0700 -n 3:0:+4M gpt.raw > sgdisk.out 2>&1 || fail "sgdisk: $(cat sgdisk.out)"
"$VHDX" convert -f raw gpt.raw base.vhdx > /dev/null || fail "convert"
"$VHDX" create --parent base.vhdx child.avhdx > /dev/null || fail "create child"
start2=$("$VHDX" info --json child.avhdx | sed -n 's/.*"number":2,"first_byte":\([0-9]*\).*/\1/p')
[ -n "$start2" ] || fail "no partition 2 in vhdx info --json"
head -c 65536 /dev/urandom > chunk
"$VHDX" write --offset $((start2 + 1048576)) child.avhdx < chunk || fail "vhdx write"
serve_partition child.avhdx 2 p2.nbd
"$VHDX" convert --partition 2 child.avhdx p2.raw > /dev/null || fail "convert --partition 2"
same=$(cmp p2.nbd p2.raw && echo yes)
expect_eq "GPT partition 2 through nbdkit's partition filter = vhdx convert --partition 2" "$same" yes
cmp chunk <(tail -c +$((1048576 + 1)) p2.nbd | head -c 65536) || fail "the checkpoint's write is not in the served partition"
pass "GPT partition 2 of base+checkpoint served by --filter=partition equals vhdx convert --partition 2"

# MBR: a logical partition (5)
head -c $((16 << 20)) /dev/urandom > mbr.raw
printf 'label: dos\nstart=2048,size=4096,type=83\nstart=6144,size=20480,type=5\nstart=8192,size=8192,type=83\n' |
	sfdisk -q mbr.raw > sfdisk.out 2>&1 || fail "sfdisk: $(cat sfdisk.out)"
"$VHDX" convert -f raw mbr.raw mbr.vhdx > /dev/null || fail "convert"
if nbdkit_run 'nbdcopy "$uri" /dev/null' -r --filter=partition "$PLUGIN" file=mbr.vhdx partition=5 > size5; then
	serve_partition mbr.vhdx 5 p5.nbd
	"$VHDX" convert --partition 5 mbr.vhdx p5.raw > /dev/null || fail "convert --partition 5"
	cmp p5.nbd p5.raw || fail "MBR logical partition 5 through the filter differs from vhdx convert --partition 5"
	pass "MBR logical partition 5 served by --filter=partition equals vhdx convert --partition 5"
else
	echo "# nbdkit's partition filter does not serve MBR logical partitions here: $(head -c 200 "$T/nbdkit.err")"
fi
