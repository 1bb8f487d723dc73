#!/bin/bash
# test-dist.sh - the release tarball is complete: every file git tracks
# (sources, headers, test scripts, tests/lib, fixtures, corpora, man pages,
# helpers) must be in `make dist`'s file list, so `make distcheck` and a
# build from the tarball do not fail on a file someone forgot to put in
# EXTRA_DIST or a _SOURCES list.  Fast: it only copies the distribution into
# a folder (make distdir), without compressing or building it.  Skips
# outside a git checkout.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires git make
git -C "$top_srcdir" rev-parse --is-inside-work-tree > /dev/null 2>&1 || skip "$top_srcdir is not a git checkout"
[ -f "$top_builddir/Makefile" ] || skip "no Makefile in $top_builddir"

# Tracked files that are not part of a release, on purpose.
EXCLUDE='^(\.gitignore|.*/\.gitignore|.*/\.gitkeep|m4/\.keep)$'

D="$T/distdir"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" distdir distdir="$D" top_distdir="$D" \
	> "$T/make.log" 2>&1 || fail "make distdir failed: $(tail -20 "$T/make.log")"
(cd "$D" && find . -type f | sed 's|^\./||' | sort) > "$T/dist"
[ -s "$T/dist" ] || fail "make distdir produced no files"
grep -qx configure "$T/dist" || fail "configure is not in the distribution"
# only the tracked files that exist (a file deleted but not yet committed is not missing)
git -C "$top_srcdir" ls-files | grep -Ev "$EXCLUDE" | while IFS= read -r f; do
	[ -f "$top_srcdir/$f" ] && echo "$f"
done | sort > "$T/git"
comm -23 "$T/git" "$T/dist" > "$T/missing"
[ -s "$T/missing" ] && fail "$(wc -l < "$T/missing") git-tracked files are not in make dist (add them to EXTRA_DIST or a _SOURCES list in Makefile.am):
$(cat "$T/missing")"
pass "all $(wc -l < "$T/git") git-tracked files are in make dist ($(wc -l < "$T/dist") files)"
