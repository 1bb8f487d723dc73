#!/bin/sh
# test-bench.sh - smoke test of `vhdx bench`: one run on 16 MiB disks must
# report every figure of issue #8 with numbers, or say why it skipped one;
# figure 8 (scaling) needs no other tool, so its rows must all be numbers.
# No timing thresholds: only the shape of the report is checked.
. "${srcdir:-.}/tests/functions.sh"
requires python3

# Usage errors exit 2 and name the option.
expect_usage() {
	local out rc=0
	out=$("$VHDX" bench "$@" 2>&1) || rc=$?
	[ "$rc" = 2 ] || fail "vhdx bench $*: exit $rc, expected 2 ($out)"
	echo "$out" | grep -q -- "$1" || fail "vhdx bench $*: message does not name $1: $out"
}
expect_usage --runs 0
expect_usage --figures 10
expect_usage --figures 1,0
expect_usage --size 1M
"$VHDX" bench --help | grep -q -- '--figures LIST' || fail "vhdx bench --help lacks --figures"
pass "usage errors"

# One full run on 16 MiB disks, JSON.  The temporary folder goes into $T/w
# and must be gone afterwards.
mkdir "$T/w"
"$VHDX" bench --size 16M --runs 1 --json --quiet --dir "$T/w" > "$T/bench.json" 2> "$T/bench.err" ||
	fail "vhdx bench failed: $(cat "$T/bench.err")"
[ -z "$(ls -A "$T/w")" ] || fail "vhdx bench left files behind: $(ls -A "$T/w")"

VHDX_SAN=$(grep -Eq "^SAN_CFLAGS = .*sanitize" "$top_builddir/Makefile" && echo 1) python3 - "$T/bench.json" <<'PY' || fail "bad JSON report: $(cat "$T/bench.json")"
import json, os, sys
rep = json.load(open(sys.argv[1]))
assert rep["size"] == 16 << 20 and rep["runs"] == 1, rep
want = {
    "seq-read": 1, "rand-read": 2, "chain-read": 2, "convert": 3,
    "fuse-seq-vs-vhdimount": 4, "fuse-seq-vs-raw": 4, "fuse-rand-vs-vhdimount": 4, "fuse-rand-vs-raw": 4,
    "fuse-dio-seq-vs-vhdimount": 4, "fuse-dio-seq-vs-raw": 4,
    "fuse-dio-rand-vs-vhdimount": 4, "fuse-dio-rand-vs-raw": 4,
    "fuse-cached-seq-vs-vhdimount": 4, "fuse-cached-seq-vs-raw": 4,
    "fuse-cached-rand-vs-vhdimount": 4, "fuse-cached-rand-vs-raw": 4, "convert-vs-write": 3,
    "fuse-seq-vs-zeros": 4, "fuse-rand-vs-zeros": 4, "fuse-zeros-seq-vs-raw": 4, "fuse-zeros-rand-vs-raw": 4,
    "seq-write": 5, "rand-alloc": 5, "fuse-seq-write": 5, "fuse-rand-alloc": 5,
    "open-64t-time": 6, "open-64t-cpu": 6, "open-64t-memory": 6, "hash": 7,
    "chain-leaf-d4": 8, "chain-leaf-d16": 8, "chain-leaf-d64": 8,
    "chain-base-d4": 8, "chain-base-d16": 8, "chain-base-d64": 8,
    "chain-base-per-layer": 8, "chain-first-read-d64": 8, "chain-open-per-layer": 8,
    "vsize-read-64t": 8, "vsize-open-cpu": 8, "vsize-open-memory": 8, "bytes-hash": 8,
    "nbd-seq-vs-qemu-nbd": 9, "nbd-rand-vs-qemu-nbd": 9, "nbd-seq-vs-file": 9, "nbd-rand-vs-file": 9,
    "nbd-chain-seq": 9, "nbd-chain-rand": 9, "nbd-chain-vs-qemu-nbd": 9, "nbd-http-vs-qemu-img": 9,
    "nbd-http-limit": 9, "nbd-http-ceiling": 9,
}
# figure 8 has no external baseline: only these two may skip (their numbers are differences)
may_skip_8 = {"chain-base-per-layer", "vsize-open-cpu"}
got = {f["name"]: f for f in rep["figures"]}
assert sorted(got) == sorted(want), ("figures", sorted(got))
assert len(rep["figures"]) == len(want), "a figure twice"
for name, fig in got.items():
    assert fig["figure"] == want[name], (name, fig)
    assert fig["goal"] in ("ratio>=", "ratio<="), fig
    assert isinstance(fig["target"], (int, float)) and fig["target"] > 0, fig
    assert isinstance(fig["unit"], str) and fig["unit"] and fig["baseline_is"], fig
    if "skipped" in fig:
        assert fig["figure"] != 8 or name in may_skip_8, ("figure 8 skipped", fig)
        assert isinstance(fig["skipped"], str) and len(fig["skipped"]) > 5, fig
        assert fig["ratio"] is None and fig["met"] is None, fig
        print("skipped:", name, "-", fig["skipped"])
        continue
    for k in ("ours", "baseline", "ratio"):
        assert isinstance(fig[k], (int, float)) and fig[k] > 0, (name, k, fig)
    assert abs(fig["ratio"] - fig["ours"] / fig["baseline"]) <= 1e-3 * fig["ratio"] + 1e-4, fig
    met = fig["ratio"] >= fig["target"] if fig["goal"] == "ratio>=" else fig["ratio"] <= fig["target"]
    assert fig["met"] is met, fig
# figure 9: the chain's row against qemu-nbd always records why it has no baseline
q = got["nbd-chain-vs-qemu-nbd"]
# a sanitizer build's plugin cannot be loaded into nbdkit without the ASan runtime preloaded (the bench does not)
san_nbdkit = os.environ.get("VHDX_SAN") == "1" and (q["skipped"] or "").startswith("nbdkit exited")
assert q["baseline"] is None and ("qemu-nbd" in q["skipped"] or "not installed" in q["skipped"] or san_nbdkit), q
# the HTTP row cannot beat its own ceiling (its CPU time spread over every core); lighttpd's CPU comes in 10 ms ticks
h, c = got["nbd-http-vs-qemu-img"], got["nbd-http-ceiling"]
if "skipped" not in h and "skipped" not in c:
    mib = rep["size"] / 1048576.0
    assert mib / h["ours"] >= mib / c["ours"] - 0.02, ("HTTP row above its ceiling", h, c)
PY
pass "JSON report: every figure with numbers or a skip reason"

# --figures picks figures; the text table has a header and one row per figure.
"$VHDX" bench --size 16M --runs 1 --figures 1,7 --quiet --dir "$T/w" > "$T/bench.txt" ||
	fail "vhdx bench --figures 1,7 failed"
grep -q '^figure .*ours .*baseline .*ratio .*target .*met' "$T/bench.txt" || fail "no table header: $(cat "$T/bench.txt")"
[ "$(grep -c '^[0-9] ' "$T/bench.txt")" = 2 ] || fail "--figures 1,7: expected 2 rows: $(cat "$T/bench.txt")"
grep -q '^1 seq-read ' "$T/bench.txt" && grep -q '^7 hash ' "$T/bench.txt" || fail "rows: $(cat "$T/bench.txt")"
pass "--figures and the table"

# --figures 8 alone: its rows, in the table's order, and nothing else; the
# base-read rows' targets are their depths (linear in the layers at most).
"$VHDX" bench --size 16M --runs 1 --figures 8 --json --quiet --dir "$T/w" > "$T/bench8.json" ||
	fail "vhdx bench --figures 8 failed"
[ -z "$(ls -A "$T/w")" ] || fail "vhdx bench --figures 8 left files behind: $(ls -A "$T/w")"
python3 - "$T/bench8.json" <<'PY' || fail "bad figure 8 report: $(cat "$T/bench8.json")"
import json, sys
rep = json.load(open(sys.argv[1]))
names = [f["name"] for f in rep["figures"]]
assert names == ["chain-leaf-d4", "chain-base-d4", "chain-leaf-d16", "chain-base-d16", "chain-leaf-d64",
                 "chain-base-d64", "chain-base-per-layer", "chain-first-read-d64", "chain-open-per-layer",
                 "vsize-read-64t", "vsize-open-cpu", "vsize-open-memory", "bytes-hash"], names
for f in rep["figures"]:
    assert f["figure"] == 8 and f["goal"] == "ratio<=", f
    if f["name"].startswith("chain-base-d"):
        assert f["target"] == int(f["name"][len("chain-base-d"):]), f
    if "skipped" in f:
        continue
    assert all(isinstance(f[k], (int, float)) and f[k] > 0 for k in ("ours", "baseline", "ratio")), f
    if f["name"] == "vsize-open-memory":
        assert f["baseline"] == 1024, f
# the leaf rows and the base rows share the depth-1 baseline
by = {f["name"]: f for f in rep["figures"]}
assert by["chain-leaf-d4"]["baseline"] == by["chain-leaf-d64"]["baseline"], by
assert by["chain-base-d4"]["baseline"] == by["chain-base-d64"]["baseline"], by
PY
pass "--figures 8: every scaling row with numbers"
