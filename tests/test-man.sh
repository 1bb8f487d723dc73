#!/bin/bash
# test-man.sh - keeps the manual pages in step with the code:
#  - every command listed by `vhdx --help` has its own section
#    (.SS "vhdx CMD ...") in man/vhdx.1, and every option that
#    `vhdx CMD --help` prints appears in that section (or, for the shared
#    chain options, in the CHAIN OPTIONS section); the global options of
#    `vhdx --help` appear in GLOBAL OPTIONS;
#  - every function declared VHDX_API in libvhdx.h is in the SYNOPSIS of
#    man/libvhdx.3 and described (in bold) in its body;
#  - groff renders every page (vhdx.1, libvhdx.3, fuse/vhdxfs.1 if present)
#    without a single warning.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires groff

M1="$top_srcdir/man/vhdx.1"
M3="$top_srcdir/man/libvhdx.3"
# The page's source as plain text: \- is -, font escapes dropped.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' -e 's/\\e/\\/g' "$1"; }
plain "$M1" > "$T/vhdx.txt"

# section NAME-REGEX: the lines of vhdx.txt from the heading matching it to the next heading
section() {
	awk -v re="$1" '/^\.S[SH] / { on = ($0 ~ re) } on' "$T/vhdx.txt"
}
# options HELPFILE: every -x / --long option word the help text prints
options() {
	grep -Eo '(^|[[:space:][(|,])--?[A-Za-z][A-Za-z0-9-]*' "$1" | sed 's/^[^-]*//' | sort -u
}

"$VHDX" --help > "$T/help" || fail "vhdx --help failed"
cmds=$(sed -n '/^Commands:/,/^$/p' "$T/help" | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || fail "no commands found in vhdx --help"

# global options
sed -n '1,/^Commands:/p' "$T/help" > "$T/global.help"
section '^\.SH (SYNOPSIS|GLOBAL OPTIONS)' > "$T/global.man"
for o in $(options "$T/global.help"); do
	grep -qF -- "$o" "$T/global.man" || fail "global option $o of 'vhdx --help' is not in GLOBAL OPTIONS of man/vhdx.1"
done

section '^\.SH CHAIN OPTIONS' > "$T/chain.man"
[ -s "$T/chain.man" ] || fail "man/vhdx.1 has no CHAIN OPTIONS section"
section '^\.SH COMMANDS' | sed '/^\.SS /,$d' | grep -q -- '-h " and " --help' ||
	fail "the COMMANDS section of man/vhdx.1 does not say that every command takes -h and --help"
n=0
for c in $cmds; do
	section "^\\.SS \"vhdx $c( |\")" > "$T/$c.man"
	[ -s "$T/$c.man" ] || fail "command '$c' of vhdx --help has no .SS \"vhdx $c ...\" section in man/vhdx.1"
	"$VHDX" "$c" --help > "$T/$c.help" || fail "vhdx $c --help failed"
	sed -n '/^Chain options:/,$p' "$T/$c.help" > "$T/$c.chain.help"
	sed '/^Chain options:/,$d' "$T/$c.help" > "$T/$c.own.help"
	for o in $(options "$T/$c.own.help"); do
		# -h/--help: said once for all commands at the top of COMMANDS
		case "$o" in -h|--help) continue ;; esac
		grep -qE -- "(^|[^A-Za-z0-9-])$o([^A-Za-z0-9-]|\$)" "$T/$c.man" ||
			fail "option $o of 'vhdx $c --help' is missing from the 'vhdx $c' section of man/vhdx.1"
		n=$((n + 1))
	done
	if [ -s "$T/$c.chain.help" ]; then
		grep -q 'CHAIN OPTIONS' "$T/$c.man" || fail "'vhdx $c' takes chain options but its section does not say so"
		for o in $(options "$T/$c.chain.help"); do
			grep -qE -- "(^|[^A-Za-z0-9-])$o([^A-Za-z0-9-]|\$)" "$T/chain.man" ||
				fail "chain option $o of 'vhdx $c --help' is missing from CHAIN OPTIONS of man/vhdx.1"
			n=$((n + 1))
		done
	fi
done
pass "vhdx.1: $(echo $cmds | wc -w) commands, $n command options, as in --help"

# libvhdx.3: every VHDX_API function in SYNOPSIS and in the text
fns=$(sed -n 's/^VHDX_API[^(]*[ *]\(vhdx_[a-z0-9_]*\)(.*/\1/p' "$top_srcdir/include/libvhdx.h")
[ -n "$fns" ] || fail "no VHDX_API functions found in libvhdx.h"
plain "$M3" > "$T/lib.txt"
awk '/^\.SH SYNOPSIS/ { on = 1; next } /^\.SH / { on = 0 } on' "$T/lib.txt" > "$T/lib.syn"
awk '/^\.SH DESCRIPTION/ { on = 1 } on' "$T/lib.txt" > "$T/lib.body"
for f in $fns; do
	grep -qE "[^a-z_]$f[\" ]*\\(" "$T/lib.syn" || fail "$f of libvhdx.h is not in the SYNOPSIS of man/libvhdx.3"
	grep -qE "^\\.BR $f \\(\\)" "$T/lib.body" || fail "$f of libvhdx.h is not described in man/libvhdx.3"
done
pass "libvhdx.3: all $(echo $fns | wc -w) functions of libvhdx.h in SYNOPSIS and described"

# rendering: no warning at all (-ww), for each page we ship
pages=("$M1" "$M3")
[ -f "$top_srcdir/fuse/vhdxfs.1" ] && pages+=("$top_srcdir/fuse/vhdxfs.1")
[ -f "$top_srcdir/man/vhdxfs.1" ] && pages+=("$top_srcdir/man/vhdxfs.1")
for p in "${pages[@]}"; do
	LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$p" > "$T/groff.err" 2>&1 || fail "groff failed on $p: $(cat "$T/groff.err")"
	[ ! -s "$T/groff.err" ] || fail "groff warns on $p: $(cat "$T/groff.err")"
	if command -v man >/dev/null 2>&1; then
		MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$p" > "$T/man.out" 2> "$T/man.err" || fail "man -l $p failed: $(cat "$T/man.err")"
		[ ! -s "$T/man.err" ] || fail "man -l warns on $p: $(cat "$T/man.err")"
		grep -q 'NAME' "$T/man.out" || fail "man -l $p rendered no NAME section"
	fi
done
pass "${#pages[@]} pages render without warnings"
