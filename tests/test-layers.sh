#!/bin/bash
# test-layers.sh - the layers of DESIGN.md name only what lies below them:
# every #include "..." of a folder's .c and .h files must name a header the
# folder may use.  The codecs (L1) stand on base/ alone; the formats (L2)
# on the public header (include/libvhdx.h), base/, io/, codec/, their own
# folder and common/, never a header of the libvhdx/ root (internal.h and
# the like belong to L4) nor chain/, maint/ or report/ above them.  An
# include that breaks this fails here with its file and line.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

cd "$top_srcdir" || fail "cd $top_srcdir"
[ -f include/libvhdx.h ] || fail "the public header is not include/libvhdx.h"
# a header at the libvhdx/ root named libvhdx.h would shadow the public one
[ -e libvhdx/libvhdx.h ] && fail "libvhdx/libvhdx.h exists beside include/libvhdx.h"

# check_folder DIR ALLOWED...: each ALLOWED is a header name or a folder prefix ending in /
check_folder() {
	local dir=$1 f line name ok a n=0 bad=
	shift
	for f in "$dir"/*.[ch]; do
		[ -e "$f" ] || continue
		while IFS= read -r line; do
			name=${line#*:}
			name=${name#*\"}
			name=${name%%\"*}
			ok=
			for a in "$@"; do
				case "$a" in
				*/) [[ "$name" == "$a"* ]] && ok=1 ;;
				*) [ "$name" = "$a" ] && ok=1 ;;
				esac
			done
			[ -n "$ok" ] || bad+="  $f:${line%%:*}: #include \"$name\""$'\n'
			n=$((n + 1))
		done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
	done
	[ -z "$bad" ] || fail "$dir includes what lies above it (allowed: $*):
$bad"
	pass "$dir: $n includes, all of $*"
}

check_folder libvhdx/codec config.h base/ codec/
check_folder libvhdx/format config.h libvhdx.h base/ io/ codec/ format/ common/
