#!/bin/bash
# test-json.sh - every `vhdx` command that takes --json (found from the
# --help texts, so that a new one is not forgotten) (issue #17 items 11, 12):
#  - on an error, standard output holds {"error": {"errno": "ENOENT",
#    "message": "..."}} and the exit status is the one without --json;
#  - on success, one JSON document whose numbers are JSON numbers: no string
#    value that reads as a number ("0.070"), and the keys that are counts,
#    sizes, offsets or times (seconds, t, depth, size...) are numbers.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3
cd "$T"

# ---- which commands take --json
cmds=$("$VHDX" --help | awk '/^Commands:/ { f = 1; next } f && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "no command list in vhdx --help"
json_cmds=()
for c in $cmds; do
	if [ "$c" = cycle ]; then
		for sub in mount checkpoint; do
			"$VHDX" cycle "$sub" --help 2>&1 | grep -q -- "--json" && json_cmds+=("cycle $sub")
		done
	elif "$VHDX" "$c" --help 2>&1 | grep -q -- "--json"; then
		json_cmds+=("$c")
	fi
done
for want in info map hash verify diff check checkpoints compact replay resize bench "cycle mount" "cycle checkpoint"; do
	printf '%s\n' "${json_cmds[@]}" | grep -qx "$want" || fail "vhdx $want --help does not show --json"
done

# ---- 11: errors as JSON, for every one of them
N=$T/missing.vhdx
err_args() {
	case "$1" in
	info | map | hash | check | compact | replay) echo "$N" ;;
	verify) echo "$N $T/missing.manifest" ;;
	diff) echo "$N $T/missing2.vhdx" ;;
	resize) echo "--size 16M $N" ;;
	checkpoints) echo "$T/missing-dir" ;;
	"cycle mount") echo "--count 1" ;;          # no --image: a usage error
	"cycle checkpoint") echo "--count 1" ;;     # no --base
	bench) echo "--size 1K" ;;                  # below the minimum
	*) fail "no error case for vhdx $1" ;;
	esac
}
for c in "${json_cmds[@]}"; do
	# shellcheck disable=SC2046
	"$VHDX" $c $(err_args "$c") > plain.out 2> plain.err
	rc_plain=$?
	# shellcheck disable=SC2046
	"$VHDX" $c --json $(err_args "$c") > json.out 2> json.err
	rc_json=$?
	[ "$rc_plain" -ne 0 ] || fail "vhdx $c $(err_args "$c") did not fail"
	expect_eq "vhdx $c: exit status with --json" "$rc_json" "$rc_plain"
	[ -s plain.out ] && fail "vhdx $c without --json printed on stdout: $(cat plain.out)"
	python3 - json.out "$c" <<'EOF' || fail "vhdx $c --json: no error object: $(cat json.out) / $(cat json.err)"
import json, re, sys
d = json.load(open(sys.argv[1]))
e = d["error"]
assert set(e) == {"errno", "message"}, e
assert re.fullmatch(r"E[A-Z0-9]+", e["errno"]), e
assert isinstance(e["message"], str) and e["message"], e
EOF
done
# the errno is the library's: a missing file is ENOENT, a bad option EINVAL
"$VHDX" info --json "$N" | python3 -c 'import json,sys; e=json.load(sys.stdin)["error"]; assert e["errno"] == "ENOENT" and "missing.vhdx" in e["message"], e' ||
	fail "info --json on a missing file"
"$VHDX" resize --json --size 1K "$N" | python3 -c 'import json,sys; e=json.load(sys.stdin)["error"]; assert e["errno"] in ("EINVAL", "ENOENT"), e' ||
	fail "resize --json errno"
# an error after the report began: info on a child whose parent is missing (the report and an "error" member)
"$VHDX" create --size 8M p.vhdx > /dev/null && "$VHDX" create --parent p.vhdx c.vhdx > /dev/null || fail "create"
mv p.vhdx p2.vhdx
"$VHDX" info --json c.vhdx > info.out 2> /dev/null
expect_eq "info --json with a missing parent: exit" "$?" 1
python3 -c 'import json,sys; d=json.load(open("info.out")); assert d["error"]["errno"] == "ENOENT" and d["chain_complete"] is False, d' ||
	fail "info --json with a missing parent: $(cat info.out)"
pass "11: every command with --json prints an error object on failure, with the same exit status (${#json_cmds[@]} commands)"

# ---- 12: numbers are numbers, in every JSON output
mv p2.vhdx p.vhdx
head -c 2M /dev/urandom | "$VHDX" write --offset 1M p.vhdx || fail "write"
"$VHDX" create --force --parent p.vhdx c.vhdx > /dev/null || fail "create c.vhdx again over the written parent"
"$VHDX" create --format vhd --size 8M v.vhd > /dev/null || fail "create v.vhd"
cp p.vhdx q.vhdx
head -c 4096 /dev/urandom | "$VHDX" write --offset 5M q.vhdx || fail "write q"
"$VHDX" hash -o p.manifest p.vhdx || fail "hash -o"
mkdir ck
"$VHDX" create --size 8M ck/base.vhdx > /dev/null && "$VHDX" create --parent ck/base.vhdx ck/c1.avhdx > /dev/null || fail "ck"
run_json() { # NAME CMD...: runs CMD (exit 0 or 3), keeps its output as NAME.json
	local name=$1 rc
	shift
	"$@" > "$name.json" 2> "$name.err"
	rc=$?
	[ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "$*: exit $rc: $(cat "$name.err")"
	outputs+=("$name")
}
outputs=()
run_json info "$VHDX" info --json c.vhdx
run_json info-vhd "$VHDX" info --json v.vhd
run_json map "$VHDX" map --json c.vhdx
run_json hash "$VHDX" hash --json p.vhdx
run_json verify "$VHDX" verify --json p.vhdx p.manifest
run_json diff "$VHDX" diff --json p.vhdx q.vhdx
run_json check "$VHDX" check --json p.vhdx
run_json checkpoints "$VHDX" checkpoints --json --backup-checkpoints 0 ck
run_json compact "$VHDX" compact --json q.vhdx
run_json replay "$VHDX" replay --json p.vhdx
run_json resize "$VHDX" resize --json --size 16M p.vhdx
echo "op=write file=*-ckpt-* struct=header nth=2 err=EIO" > ck.rules
run_json cycle-checkpoint "$VHDX" cycle checkpoint --json --base cc.vhdx --count 3 --size 4M --faults ck.rules
run_json bench "$VHDX" bench --json -q --size 16M --runs 1 --figures 7
if [ -x "$VHDXFS" ] && [ -c /dev/fuse ] && command -v fusermount3 > /dev/null; then
	echo "op=write struct=payload nth=3 crash" > m.rules  # one injected fault, then calls that fail after it
	"$VHDX" cycle mount --json --image m.vhdx --count 2 --size 8M --faults m.rules > cycle-mount.json 2> cm.err
	rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
		outputs+=(cycle-mount)
	elif ! grep -q "Operation not permitted\|Permission denied" cm.err; then
		fail "cycle mount --json: exit $rc: $(cat cm.err)"
	fi
fi
for o in "${outputs[@]}"; do
	python3 - "$o.json" <<'EOF' || fail "$o: a number that is not a JSON number: $(head -c 600 "$o.json")"
import json, re, sys
NUMERIC = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
# values that are text by nature: digests, GUIDs, versions, paths, names, messages
TEXT_KEYS = {"xxh3", "disk", "load_average_text", "version", "message", "path", "file", "leaf", "base",
             "image", "text", "command", "what", "creator", "value", "key"}
# keys that must hold numbers wherever they appear
NUM_KEYS = re.compile(r"^(seconds|t|depth|checkpoints|size|count|round|cycle|virtual_size|file_size|block_size|"
                      r"offset|length|file_offset|.*_sectors|.*_size|hits|faults|rounds_run|cycles_run|"
                      r"load_average)$")
bad = []
def walk(v, path, key):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, path + "." + k, k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, "%s[%d]" % (path, i), key)
    elif isinstance(v, str):
        if NUMERIC.match(v) and key not in TEXT_KEYS and not key.endswith("version"):
            bad.append("%s = %r (a number as a string)" % (path, v))
        if key and NUM_KEYS.match(key) and key != "faults":
            bad.append("%s = %r (must be a number)" % (path, v))
    elif isinstance(v, bool) or v is None:
        if key and NUM_KEYS.match(key) and not (key in ("ours", "baseline", "ratio") and v is None):
            bad.append("%s = %r (must be a number)" % (path, v))
d = json.load(open(sys.argv[1]))
walk(d, "$", None)
if bad:
    print("\n".join(bad[:10]), file=sys.stderr)
    sys.exit(1)
EOF
done
# the keys the issue named
python3 -c '
import json
r = json.load(open("cycle-checkpoint.json"))
assert isinstance(r["summary"]["seconds"], float) and all(isinstance(x["seconds"], float) for x in r["rounds"]), r["summary"]
b = json.load(open("bench.json"))
assert isinstance(b["load_average"], list) and all(isinstance(x, (int, float)) for x in b["load_average"]), b["load_average"]
' || fail "seconds / load_average"
if [ -f cycle-mount.json ] && printf '%s\n' "${outputs[@]}" | grep -qx cycle-mount; then
	python3 -c '
import json
r = json.load(open("cycle-mount.json"))
ts = [f["t"] for c in r["cycles"] for f in c["faults"]]
assert ts and all(isinstance(t, float) for t in ts), ts
assert isinstance(r["summary"]["seconds"], float)
# the faults the rules injected are their hits; the calls failed after the simulated crash are counted apart
s = r["summary"]
assert s["faults"] == sum(x["hits"] for x in s["rules"]) == 1 and s["after_crash_events"] >= 1, s
' || fail "cycle mount: t, seconds, faults and after-crash events: $(head -c 800 cycle-mount.json)"
fi
pass "12: numbers are JSON numbers in the output of ${#outputs[@]} runs (${outputs[*]})"
