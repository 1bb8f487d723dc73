#!/bin/bash
# test-symbols.sh - the library exports exactly its public API: the dynamic
# symbols defined by the built libvhdx.so (nm -D --defined-only, without the
# version node itself), the global: list of libvhdx/libvhdx.sym and the
# functions declared VHDX_API in include/libvhdx.h must be the same set, and
# every exported symbol must carry the LIBVHDX_ version node.  A function
# added to the header but not to the script (or the reverse), or an internal
# function leaking out, fails here.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires nm

SO="$top_builddir/libvhdx/.libs/libvhdx.so"
[ -e "$SO" ] || skip "$SO was not built (static-only build?)"

nm -D --defined-only "$SO" > "$T/nm" || fail "nm -D $SO failed"
# the version node is an absolute symbol (type A) named after the node
awk '$2 == "A" { next } { print $3 }' "$T/nm" > "$T/all"
grep -v '@@LIBVHDX_[0-9]' "$T/all" > "$T/unversioned" && fail "exported without the LIBVHDX_ version node: $(tr '\n' ' ' < "$T/unversioned")"
sed 's/@.*//' "$T/all" | sort -u > "$T/exported"
awk '$2 == "A" { print $3 }' "$T/nm" | grep -q '^LIBVHDX_[0-9]' || fail "no LIBVHDX_ version node in $SO"

sed -n '/global:/,/local:/p' "$top_srcdir/libvhdx/libvhdx.sym" | grep -Eo '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort -u > "$T/script"
# VHDX_API declarations: lines "VHDX_API TYPE NAME(..." (the #define of the macro does not match)
sed -nE 's/^VHDX_API[^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' "$top_srcdir/include/libvhdx.h" | sort -u > "$T/header"
# a declaration spread so that the name is not on the VHDX_API line would escape the
# sed above: count them to be sure
expect_eq "VHDX_API declarations parsed" "$(wc -l < "$T/header")" "$(grep -c '^VHDX_API' "$top_srcdir/include/libvhdx.h")"

for f in exported script header; do [ -s "$T/$f" ] || fail "no symbols found in the $f set"; done
diff -u "$T/script" "$T/exported" > "$T/d1" || fail "libvhdx.so exports differ from libvhdx.sym (- script, + library):
$(cat "$T/d1")"
diff -u "$T/header" "$T/script" > "$T/d2" || fail "libvhdx.sym differs from the VHDX_API functions of libvhdx.h (- header, + script):
$(cat "$T/d2")"
pass "$(wc -l < "$T/exported") symbols: library = libvhdx.sym = libvhdx.h, all versioned"
