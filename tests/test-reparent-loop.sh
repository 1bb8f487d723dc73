#!/bin/bash
# test-reparent-loop.sh - vhdx reparent must not build a cycle (issue 15,
# item 5): `reparent --ignore-id-mismatch --parent X X` made X its own
# parent, and reparenting b to c where c's chain holds b made b->c->b.
# Both are refused with ELOOP's message before anything is written (the
# sha256 of every file is unchanged), in both formats, and so is a new
# parent whose own chain is a cycle; an ordinary reparent still works.
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
	# a new parent whose own chain is a cycle already: p is a copy of q2, whose parent is q1, whose parent is p
	"$VHDX" create --size 8M --block-size 1M p.$fmt && "$VHDX" create --parent p.$fmt q1.$ext &&
		"$VHDX" create --parent q1.$ext q2.$ext && cp q2.$ext p.$fmt || fail "$fmt: create p, q1, q2"
	sha256sum a.$fmt b.$ext c.$ext > sums
	expect_err "$fmt: a new parent in a cycle" \
		"vhdx reparent: reparenting c.$ext to p.$fmt: p.$fmt: its parent chain is a cycle already (./p.$fmt is the parent of ./q1.$ext)" \
		"$VHDX" reparent --ignore-id-mismatch --parent p.$fmt c.$ext
	sha256sum --quiet -c sums || fail "$fmt: a refused reparent changed a file"
	pass "$fmt: self-parent, b->c->b and a new parent in a cycle refused with nothing written; c over a is fine"
done
