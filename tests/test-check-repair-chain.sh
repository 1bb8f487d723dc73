#!/bin/bash
# test-check-repair-chain.sh - `vhdx check --repair` on a child whose chain
# is broken (issue 15, item 8).  A missing parent or a cycle was reported,
# then "after repair: clean" with exit 0, while plain check exited 3: a
# repair that repaired nothing said clean.  Now the verdict after the
# repair is the problem again (text and JSON), exit 3, and no file changes;
# VHDX and VHD.  A repairable problem beside it (leaked space; for VHD a
# footer no longer at the end) is repaired and the chain problem stands.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3

# check_repair_broken WHAT IMAGE MESSAGE [CHAIN-OPTIONS...]: check and check --repair
# both exit 3 with exactly MESSAGE before and after, and IMAGE does not change
check_repair_broken() {
	local what="$1" img="$2" msg="$3" rc sum
	shift 3
	sum=$(sha256 "$img")
	rc=0; "$VHDX" check "$@" "$img" > out || rc=$?
	expect_eq "$what: check exit code" "$rc" 3
	expect_eq "$what: check report" "$(cat out)" "$img: $fmt, 1 error, 0 warnings
  error: parent: $msg"
	rc=0; "$VHDX" check --repair "$@" "$img" > out || rc=$?
	expect_eq "$what: check --repair exit code" "$rc" 3
	expect_eq "$what: check --repair report" "$(cat out)" "$img: $fmt, 1 error, 0 warnings
  error: parent: $msg
after repair: 1 error, 0 warnings
  error: parent: $msg"
	rc=0; "$VHDX" check --repair --json "$@" "$img" > out.json || rc=$?
	expect_eq "$what: check --repair --json exit code" "$rc" 3
	expect_eq "$what: JSON verdict after the repair" "$(python3 -c '
import json, sys
r = json.load(open("out.json"))["repair"]
print(r["completed"], len(r["actions"]), r["errors_after"], r["warnings_after"])
for p in r["problems_after"]:
    print(p["severity"], p["structure"], p["message"])')" \
		"True 0 1 0
error parent $msg"
	expect_eq "$what: $img after check --repair" "$(sha256 "$img")" "$sum"
}

for fmt in vhdx vhd; do
	ext=avhdx
	[ $fmt = vhd ] && ext=vhd
	mkdir -p "$T/$fmt" && cd "$T/$fmt" || fail "cd"
	# a missing parent
	"$VHDX" create --size 8M --block-size 1M base.$fmt && "$VHDX" create --parent base.$fmt child.$ext || fail "$fmt: create"
	link=$("$VHDX" info --json --no-parent child.$ext | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["parent"]["linkage"])')
	abs=$("$VHDX" info --json --no-parent child.$ext | python3 -c '
import json, sys
print([p["value"] for p in json.load(sys.stdin)["layers"][0]["parent"]["paths"] if p["key"] in ("absolute_win32_path", "W2ku")][0])')
	mv base.$fmt moved.$fmt
	check_repair_broken "$fmt: missing parent" child.$ext \
		"the parent chain does not open: child.$ext: parent \"base.$fmt\" (identity {$link}) not found. Tried: $abs (absolute path from the image: followed only through a path map); ./base.$fmt (not found)"
	# with a repairable problem beside it (VHDX: leaked space; VHD: the footer not at the end):
	# repaired, and the chain problem stays
	truncate -s +1M child.$ext
	rc=0; "$VHDX" check --repair child.$ext > out || rc=$?
	expect_eq "$fmt: leaked space and a missing parent: exit code" "$rc" 3
	grep -q "^  repaired: " out || fail "$fmt: nothing was repaired: $(cat out)"
	grep -q "^after repair: 1 error, 0 warnings$" out || fail "$fmt: verdict after the repair: $(cat out)"
	# a cycle: p is a copy of c2, whose parent is c1, whose parent is p
	"$VHDX" create --size 8M --block-size 1M p.$fmt || fail "$fmt: create p"
	"$VHDX" create --parent p.$fmt c1.$ext && "$VHDX" create --parent c1.$ext c2.$ext || fail "$fmt: create c1, c2"
	cp c2.$ext p.$fmt
	check_repair_broken "$fmt: cycle" c1.$ext \
		"the parent chain does not open: ./p.$fmt: parent ./c1.$ext is already layer 0 of this chain (a cycle)" \
		--ignore-id-mismatch
	pass "$fmt: check --repair of a child with a missing parent or in a cycle: exit 3, the problem stands after the repair, nothing written"
done
