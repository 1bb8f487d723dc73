#!/bin/bash
# test-hash.sh - block-hash manifests: vhdx hash agrees with xxhsum -H3 over
# the raw bytes of each block, verify passes on an unchanged image and finds
# a single flipped payload bit at exactly its block, and diff lists exactly
# the blocks a checkpoint changed.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3 xxhsum
cd "$T"

"$VHDX" create --size 8M --block-size 1M img.vhdx
head -c 100000 /dev/urandom | "$VHDX" write --offset 3000000 img.vhdx
head -c 5000 /dev/urandom | "$VHDX" write --offset 8383000 img.vhdx     # the last block
"$VHDX" convert -O raw img.vhdx img.raw
"$VHDX" hash --block-size 1M img.vhdx > m.txt || fail "vhdx hash"
# every block digest equals xxhsum -H3 of that block of the raw disk
for i in 0 1 2 3 4 5 6 7; do
	want=$(dd if=img.raw bs=1M skip=$i count=1 status=none | xxhsum -H3 | sed 's/.*= //')
	got=$(awk -v off=$((i * 1048576)) '$1 == off { print $2 }' m.txt)
	expect_eq "digest of block $i" "$got" "$want"
done
# the JSON manifest carries the same digests
"$VHDX" hash --json img.vhdx | python3 -c "
import json, sys
d = json.load(sys.stdin)
text = {int(l.split()[0]): l.split()[1] for l in open('m.txt') if l[0].isdigit()}
assert d['virtual_size'] == 8388608 and d['block_size'] == 1048576
assert all(text[b['offset']] == b['xxh3'] for b in d['blocks']) and len(d['blocks']) == 8
" || fail "JSON manifest differs from the text one"
pass "hash: per-block XXH3-64 equal to xxhsum -H3"

"$VHDX" verify img.vhdx m.txt > out.txt || fail "verify of an unchanged image: $(cat out.txt)"
grep -q "^ok: 8 blocks" out.txt || fail "verify output: $(cat out.txt)"

# flip one payload bit in the file, at virtual offset 3000001 (inside block 2)
foff=$("$VHDX" map --json img.vhdx | python3 -c "
import json, sys
for e in json.load(sys.stdin):
    if e['type'] == 'data' and e['offset'] <= 3000001 < e['offset'] + e['length']:
        print(e['file_offset'] + 3000001 - e['offset'])")
python3 - img.vhdx "$foff" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x10]))
PY
"$VHDX" verify img.vhdx m.txt > out.txt
expect_eq "verify exit status after a bit flip" "$?" 3
expect_eq "mismatching ranges" "$(cat out.txt)" "mismatch 0x000000200000 0x000000100000"
"$VHDX" verify --json img.vhdx m.txt | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d == {'mismatch': [{'offset': 2097152, 'length': 1048576}], 'count': 1}, d
" || fail "verify --json"
pass "verify finds one flipped bit at its block"

# diff: a checkpoint against its parent lists exactly the blocks written in it
"$VHDX" create --size 16M --block-size 1M base.vhdx
head -c 16777216 /dev/urandom | "$VHDX" write base.vhdx
"$VHDX" create --parent base.vhdx cp.avhdx
head -c 10 /dev/urandom | "$VHDX" write --offset 5242885 cp.avhdx       # block 5
head -c 2097152 /dev/urandom | "$VHDX" write --offset 9437184 cp.avhdx  # blocks 9 and 10
"$VHDX" diff base.vhdx cp.avhdx > out.txt
expect_eq "diff exit status" "$?" 3
expect_eq "diff ranges" "$(cat out.txt)" "differ 0x000000500000 0x000000100000
differ 0x000000900000 0x000000200000"
"$VHDX" diff cp.avhdx cp.avhdx > out.txt || fail "an image differs from itself: $(cat out.txt)"
# the layer alone against zeros: --no-parent
"$VHDX" diff --no-parent --block-size 4K cp.avhdx cp.avhdx > /dev/null || fail "diff --no-parent"
pass "diff lists exactly the changed blocks"

expect_fail_msg "line 2: not a vhdx-hash manifest line" sh -c "printf '# vhdx-hash 1\nbogus\n' > bad.txt; '$VHDX' verify img.vhdx bad.txt"
pass "a damaged manifest is refused with its line number"
