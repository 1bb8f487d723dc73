#!/bin/bash
# test-fuzz-replay.sh - the fuzz targets of fuzz/ without libFuzzer: each
# target linked with fuzz/replay_main.c (fuzz/replay_<name>) is fed every
# file of its corpus fuzz/corpus/fuzz_<name>/: the seeds and every input
# that once crashed a fuzzer (crash-*), so a fixed bug stays fixed.  Runs in
# the normal and in the ASan+UBSan build (where a read past a buffer, a
# leak or undefined behaviour aborts the replay).  A target must run as many
# inputs as its folder holds, and write nothing to stderr.  The seed maker
# (fuzz/make_seeds) must still write the committed seeds it can remake
# without ../shared: the hand-made ones, those of the test-image generator and
# those of the lib-*/qemu-* images.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

total=0
for name in vhdx_open vhd_open vhdx_log locator fault_rules partition; do
	bin="$top_builddir/fuzz/replay_$name"
	dir="$top_srcdir/fuzz/corpus/fuzz_$name"
	[ -x "$bin" ] || fail "$bin was not built"
	[ -d "$dir" ] || fail "no corpus folder $dir"
	want=$(find "$dir" -maxdepth 1 -type f ! -name '.*' | wc -l)
	[ "$want" -gt 0 ] || fail "$dir is empty"
	"$bin" "$dir" > "$T/out.$name" 2> "$T/err.$name"
	rc=$?
	[ "$rc" -eq 0 ] || fail "replay_$name exited $rc on $dir: $(tail -n 20 "$T/err.$name")"
	got=$(sed -n 's/^\([0-9]*\) inputs ran$/\1/p' "$T/out.$name")
	[ "$got" = "$want" ] || fail "replay_$name ran '${got}' inputs, $dir holds $want"
	[ -s "$T/err.$name" ] && fail "replay_$name wrote to stderr: $(head -n 5 "$T/err.$name")"
	pass "fuzz_$name: $got inputs of fuzz/corpus/fuzz_$name replayed clean"
	total=$((total + got))
done

# the seed maker (fuzz/make_seeds.c) still writes the committed hand-made
# seeds and those of the test-image generator byte for byte (the seeds of
# the conformance images need ../shared: fuzz/README)
seeds="$top_builddir/fuzz/make_seeds"
[ -x "$seeds" ] || fail "$seeds was not built"
"$seeds" "$T/seeds" > "$T/out.seeds" 2>&1 || fail "make_seeds failed: $(head -n 5 "$T/out.seeds")"
n_seeds=0
for f in "$T"/seeds/*/*; do
	rel=${f#"$T/seeds/"}
	cmp -s "$f" "$top_srcdir/fuzz/corpus/$rel" || fail "make_seeds wrote $rel, which differs from fuzz/corpus/$rel"
	n_seeds=$((n_seeds + 1))
done
[ $n_seeds = 18 ] || fail "make_seeds wrote $n_seeds seeds (expected 18: 6 locators, 6 fault rules, 6 generated images)"
pass "make_seeds writes the $n_seeds committed hand-made and generated seeds byte for byte"

# and the image seeds: the lib-* and qemu-* images (not kept) expanded from
# their seeds give the same seeds again, also the -write, raw-, log and
# entry- ones made from them
mkdir -p "$T/gen"
for f in "$top_srcdir"/fuzz/corpus/fuzz_vhdx_open/lib-* "$top_srcdir"/fuzz/corpus/fuzz_vhdx_open/qemu-* \
	 "$top_srcdir"/fuzz/corpus/fuzz_vhd_open/lib-* "$top_srcdir"/fuzz/corpus/fuzz_vhd_open/qemu-*; do
	case $f in *-write) continue ;; esac
	"$seeds" --expand "$f" "$T/gen/${f##*/}" || fail "make_seeds --expand $f failed"
done
"$seeds" --gen "$T/gen" "$T/regen" > "$T/out.regen" 2>&1 || fail "make_seeds --gen failed: $(head -n 5 "$T/out.regen")"
n_regen=0
for f in "$T"/regen/fuzz_v*/*; do
	rel=${f#"$T/regen/"}
	cmp -s "$f" "$top_srcdir/fuzz/corpus/$rel" || fail "make_seeds --gen wrote $rel, which differs from fuzz/corpus/$rel"
	n_regen=$((n_regen + 1))
done
[ $n_regen = 39 ] || fail "make_seeds --gen wrote $n_regen image seeds from $(ls "$T/gen" | wc -l) expanded images (expected 39: 33 of the images, 6 generated)"
pass "make_seeds makes the 33 committed seeds of $(ls "$T/gen" | wc -l) images expanded from their seeds byte for byte"

# the replay driver itself: a missing path is an error, not an empty run
"$top_builddir/fuzz/replay_locator" "$T/does-not-exist" > /dev/null 2>&1 && fail "replay of a missing path succeeded"
pass "replay driver refuses a missing path"
echo "$total inputs replayed"
