#!/bin/bash
# test-python.sh - the pyvhdx binding (python/): runs its pytest suite
# (python/tests) against the extension of this build, with the package laid
# out in a scratch folder.  In a sanitizer build the interpreter is not
# instrumented, so the ASan runtime is preloaded (leak checking off: the
# interpreter's own allocations at exit are not ours) and the RSS test is
# skipped.  PYVHDX_TEST_LONG=1 hashes the 127 GiB images fully.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

PY=${PYTHON:-python3}
so="$top_builddir/python/.libs/_pyvhdx.so"
[ -f "$so" ] || skip "pyvhdx was not built (configure found no Python.h for ${PY}; Debian: python3-dev)"
"$PY" -c 'import pytest' 2>/dev/null || skip "pytest is not installed for $PY (Debian: python3-pytest)"

mkdir -p "$T/site/pyvhdx"
cp "$top_srcdir"/python/pyvhdx/*.py "$so" "$T/site/pyvhdx/" || fail "cannot lay out the package"

env=(PYTHONPATH="$T/site" VHDX="$VHDX" VHDX_SHARED="$SHARED" PYTHONDONTWRITEBYTECODE=1)
asan=$(ldd "$so" | awk '/libasan/ { print $3 }')
if [ -n "$asan" ]; then
	[ -f "$asan" ] || skip "sanitizer build, but the libasan of $so was not found to preload into $PY"
	env+=(LD_PRELOAD="$asan" PYVHDX_ASAN=1
	      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi

# the module loads (in the sanitizer build too) and is ours
env "${env[@]}" "$PY" -c 'import pyvhdx, sys; assert pyvhdx._pyvhdx.__file__.startswith(sys.argv[1]), pyvhdx._pyvhdx.__file__' \
	"$T/site" || fail "pyvhdx does not load from $T/site"
pass "pyvhdx loads with $PY${asan:+ (ASan preloaded)}"

cd "$T" || fail "cd $T"
env "${env[@]}" "$PY" -m pytest -q -p no:cacheprovider -o python_files='test_*.py' \
	--rootdir="$top_srcdir/python/tests" "$top_srcdir/python/tests"
rc=$?
[ "$rc" = 0 ] || fail "pytest failed (exit $rc)"
pass "pytest python/tests"
