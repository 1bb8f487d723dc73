#!/bin/bash
# test-cli.sh - the `vhdx` command line contract: exit codes (0 ok, 1 error
# with a message naming the file, 2 usage), --help on every command, and
# `info --json` / `map --json` / `convert` on the bundled sample disk, whose
# expected contents come from the qemu recipe in fixtures/sample-dynamic.vhdx.txt.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

[ -x "$VHDX" ] || fail "$VHDX was not built"

# run_rc WANT CMD...: CMD must exit WANT; its output is left in $T/out, $T/err
run_rc() {
	local want="$1" rc=0
	shift
	"$@" > "$T/out" 2> "$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $(head -c 2000 "$T/err")"
}

# ---- the command itself
run_rc 2 "$VHDX"
grep -q 'Usage' "$T/err" || fail "'vhdx' with no arguments prints no usage on stderr"
run_rc 2 "$VHDX" no-such-command
grep -q "no-such-command" "$T/err" || fail "'vhdx no-such-command' does not name the unknown command: $(cat "$T/err")"
run_rc 0 "$VHDX" --help
grep -q '^Usage' "$T/out" || fail "'vhdx --help' prints no Usage"
run_rc 0 "$VHDX" --version
grep -q 'vhdx' "$T/out" || fail "'vhdx --version' prints no version"
pass "no arguments / unknown command / --help / --version"

# ---- every command listed by --help has --help and wants an IMAGE
"$VHDX" --help > "$T/help"
cmds=$(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' "$T/help")
for c in info map convert; do
	echo "$cmds" | grep -qx "$c" || fail "'vhdx --help' does not list the '$c' command"
done
for c in $cmds; do
	run_rc 0 "$VHDX" "$c" --help
	grep -q '^Usage: vhdx '"$c" "$T/out" || fail "'vhdx $c --help' does not start with 'Usage: vhdx $c'"
	run_rc 2 "$VHDX" "$c" --no-such-option
done
pass "--help of: $(echo $cmds)"

# commands that read one IMAGE: missing IMAGE is a usage error; a missing file an error naming it
for c in info map; do
	run_rc 2 "$VHDX" "$c"
	[ -s "$T/err" ] || fail "'vhdx $c' without IMAGE prints nothing on stderr"
	run_rc 1 "$VHDX" "$c" "$T/does-not-exist.vhdx"
	grep -qF "$T/does-not-exist.vhdx" "$T/err" || fail "'vhdx $c' on a missing file does not name it: $(cat "$T/err")"
done
run_rc 2 "$VHDX" convert -O raw
run_rc 2 "$VHDX" convert -O raw "$T/does-not-exist.vhdx"
run_rc 1 "$VHDX" convert -O raw "$T/does-not-exist.vhdx" -
grep -qF "$T/does-not-exist.vhdx" "$T/err" || fail "'vhdx convert' on a missing file does not name it: $(cat "$T/err")"
run_rc 2 "$VHDX" convert -O qcow2 "$T/does-not-exist.vhdx" -
pass "missing IMAGE exits 2, missing file exits 1 naming the path"

# a file that is not a disk image at all
head -c 100000 /dev/zero > "$T/zeros.img"
run_rc 1 "$VHDX" info "$T/zeros.img"
grep -qF "zeros.img" "$T/err" || fail "'vhdx info' on a non-image does not name it: $(cat "$T/err")"
pass "a non-image file exits 1 naming it"

# ---- the sample disk (see fixtures/sample-dynamic.vhdx.txt)
img=$(fixture_image sample-dynamic.vhdx)
want_sha=$(sed -n 's/^raw_sha256[^:]*: *//p' "$top_srcdir/fixtures/sample-dynamic.vhdx.txt")
[ ${#want_sha} = 64 ] || fail "no raw_sha256 in fixtures/sample-dynamic.vhdx.txt"
file_sha=$(sha256 "$img")

run_rc 0 "$VHDX" info "$img"
grep -q 'vhdx' "$T/out" || fail "'vhdx info' does not say vhdx"

run_rc 0 "$VHDX" info --json "$img"
cp "$T/out" "$T/info.json"
if command -v python3 >/dev/null 2>&1; then
	python3 - "$T/info.json" <<'EOF' || fail "vhdx info --json: wrong JSON (above)"
import json, sys
d = json.load(open(sys.argv[1]))
want = {"format": "vhdx", "type": "dynamic", "virtual_size": 8388608, "block_size": 1048576,
        "logical_sector_size": 512, "physical_sector_size": 512}
bad = [f"{k}: got {d.get(k)!r}, want {v!r}" for k, v in want.items() if d.get(k) != v]
if not isinstance(d.get("layers"), list) or len(d["layers"]) != 1:
    bad.append(f"layers: want a list of 1 layer, got {d.get('layers')!r:.200}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
	pass "info --json parses and has format/type/sizes of the sample"
else
	echo "python3 is not installed: skipping the JSON checks"
fi

# the allocation map: qemu wrote blocks 0, 1, 3, 5, 7 (1 MiB each); the rest reads as zeros
run_rc 0 "$VHDX" map "$img"
while read -r off len kind rest; do
	echo "$((off)) $((len)) $kind"
done < "$T/out" > "$T/map" || fail "cannot parse 'vhdx map' output: $(cat "$T/out")"
cat > "$T/map.want" <<'EOF'
0 2097152 data
2097152 1048576 zero
3145728 1048576 data
4194304 1048576 zero
5242880 1048576 data
6291456 1048576 zero
7340032 1048576 data
EOF
cmp -s "$T/map" "$T/map.want" || fail "vhdx map: got
$(cat "$T/out")
want (decimal):
$(cat "$T/map.want")"
pass "map lists the allocated blocks"
if command -v python3 >/dev/null 2>&1; then
	run_rc 0 "$VHDX" map --json "$img"
	python3 - "$T/out" "$T/map.want" <<'EOF' || fail "vhdx map --json: wrong extents (above)"
import json, sys
got = [(e["offset"], e["length"], e["type"]) for e in json.load(open(sys.argv[1]))]
want = [(int(a), int(b), c) for a, b, c in (l.split() for l in open(sys.argv[2]))]
if got != want:
    print(f"got  {got}\nwant {want}", file=sys.stderr)
    sys.exit(1)
EOF
	pass "map --json lists the allocated blocks"
fi

# the raw disk, to standard output and to a file
got=$("$VHDX" convert -O raw "$img" - | sha256_stdin)
expect_eq "sha256 of 'vhdx convert -O raw sample -'" "$got" "$want_sha"
run_rc 0 "$VHDX" convert -O raw "$img" "$T/sample.raw"
expect_eq "size of the raw file" "$(stat -c %s "$T/sample.raw")" 8388608
expect_eq "sha256 of the raw file" "$(sha256 "$T/sample.raw")" "$want_sha"
# converting over an existing, longer file truncates it
head -c 9000000 /dev/urandom > "$T/sample.raw"
run_rc 0 "$VHDX" convert -O raw "$img" "$T/sample.raw"
expect_eq "sha256 of the raw file written over a longer file" "$(sha256 "$T/sample.raw")" "$want_sha"
expect_eq "the image after reading it (read-only open never writes)" "$(sha256 "$img")" "$file_sha"
pass "convert -O raw gives the bytes qemu wrote"
