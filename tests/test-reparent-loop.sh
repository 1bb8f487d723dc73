#!/bin/bash
# test-reparent-loop.sh - vhdx reparent must not build a cycle (issue 15,
# item 5): `reparent --ignore-id-mismatch --parent X X` made X its own
# parent, and reparenting b to c where c's chain holds b made b->c->b.
# Both are refused with ELOOP's message before anything is written (the
# sha256 of every file is unchanged), in both formats; an ordinary reparent
# still works afterwards.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

for fmt in vhdx vhd; do
	ext=avhdx
	[ $fmt = vhd ] && ext=vhd
	mkdir -p "$T/$fmt" && cd "$T/$fmt" || fail "cd"
	"$VHDX" create --size 8M --block-size 1M a.$fmt || fail "$fmt: create a"
	"$VHDX" create --parent a.$fmt b.$ext && "$VHDX" create --parent b.$ext c.$ext || fail "$fmt: create b, c"
	head -c 65536 /dev/urandom | "$VHDX" write c.$ext || fail "$fmt: write c"
	sha256sum a.$fmt b.$ext c.$ext > sums
	for ign in --ignore-id-mismatch ""; do
		# shellcheck disable=SC2086
		expect_err "$fmt: b its own parent $ign" "vhdx reparent: b.$ext cannot be its own parent: nothing was changed" \
			"$VHDX" reparent $ign --parent b.$ext b.$ext
	done
	expect_err "$fmt: b -> c -> b" \
		"vhdx reparent: reparenting b.$ext to c.$ext would make a cycle: b.$ext is layer 1 of the chain of c.$ext; nothing was changed" \
		"$VHDX" reparent --ignore-id-mismatch --parent c.$ext b.$ext
	# the same file under another name is the same file
	ln -s c.$ext c-link.$ext
	expect_err "$fmt: a -> c -> b -> a through a symbolic link" \
		"vhdx reparent: reparenting b.$ext to c-link.$ext would make a cycle: b.$ext is layer 1 of the chain of c-link.$ext; nothing was changed" \
		"$VHDX" reparent --ignore-id-mismatch --parent c-link.$ext b.$ext
	sha256sum --quiet -c sums || fail "$fmt: a refused reparent changed a file"
	"$VHDX" info c.$ext > /dev/null || fail "$fmt: the chain no longer opens"
	# not a cycle: c over a directly
	"$VHDX" reparent --ignore-id-mismatch --parent a.$fmt c.$ext > out || fail "$fmt: c over a: $(cat "$T/err")"
	expect_eq "$fmt: depth of c over a" "$("$VHDX" info c.$ext | sed -n 's/^  chain_depth: //p')" 2
	pass "$fmt: self-parent and b->c->b refused with nothing written; c over a is fine"
done
