#!/bin/bash
# test-python-pip.sh - the two ways pyvhdx gets installed, used as a user
# would: `make install` puts the package into the interpreter's
# site-packages (staged under DESTDIR), and `pip install ./python` (offline,
# no build isolation) builds it against the staged libvhdx found through
# pkg-config.  Each installed copy then reads fixtures/sample-dynamic.vhdx
# to the same bytes as `vhdx convert`.  (Like test-install.sh: a
# nested `make install` without the outer make's jobserver.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires make pkg-config

PY=${PYTHON:-python3}
[ -f "$top_builddir/python/.libs/_pyvhdx.so" ] || skip "pyvhdx was not built (configure found no Python.h for ${PY})"
ldd "$top_builddir/python/.libs/_pyvhdx.so" | grep -q libasan &&
	skip "sanitizer build: the pip-built module is not instrumented like the library (the normal build runs this)"
"$PY" -m pip --version > /dev/null 2>&1 || skip "pip is not installed for $PY (Debian: python3-pip)"
"$PY" -c 'import setuptools' 2>/dev/null || skip "setuptools is not installed for $PY (Debian: python3-setuptools)"

ROOT="$T/root"
staged_install "$ROOT"
libdir=$(install_dir libdir)
sitedir=$(install_dir pythonsitedir)

img=$(fixture_image sample-dynamic.vhdx)
want=$("$VHDX" convert -O raw "$img" - | sha256sum | cut -d' ' -f1)

# read IMG with the pyvhdx found on PYTHONPATH=$1; prints the module's file and the sha256
read_with() {
	PYTHONPATH="$1" LD_LIBRARY_PATH="$ROOT$libdir" "$PY" -c '
import hashlib, sys, pyvhdx
with pyvhdx.open(sys.argv[1]) as img:
    print(pyvhdx._pyvhdx.__file__)
    print(hashlib.sha256(img.read()).hexdigest())' "$img"
}

# 1. make install: the package in the interpreter's site-packages under the prefix
[ -f "$ROOT$sitedir/pyvhdx/__init__.py" ] && [ -f "$ROOT$sitedir/pyvhdx/compat.py" ] ||
	fail "make install did not put pyvhdx into $sitedir (installed: $(cd "$ROOT" && find . -path '*pyvhdx*' | tr '\n' ' '))"
out=$(read_with "$ROOT$sitedir") || fail "the make-installed pyvhdx does not work: $out"
case "$out" in "$ROOT$sitedir/pyvhdx/_pyvhdx"*) ;; *) fail "imported another pyvhdx: $out" ;; esac
expect_eq "make-installed pyvhdx reads the image" "$(echo "$out" | tail -1)" "$want"
pass "make install put pyvhdx into $sitedir"

# 2. pip install ./python against the staged libvhdx (a copy: pip's build writes beside setup.py)
cp -r "$top_srcdir/python" "$T/src" || fail "cannot copy python/"
rm -rf "$T/src/tests"
PKG_CONFIG_SYSROOT_DIR="$ROOT" PKG_CONFIG_PATH="$ROOT$libdir/pkgconfig" \
	"$PY" -m pip install --no-index --no-build-isolation --disable-pip-version-check --no-warn-script-location \
	--target "$T/site" "$T/src" > "$T/pip.log" 2>&1 || fail "pip install ./python failed: $(tail -30 "$T/pip.log")"
ls "$T/site/pyvhdx/"_pyvhdx*.so > /dev/null 2>&1 || fail "pip installed no extension: $(ls -R "$T/site")"
out=$(read_with "$T/site") || fail "the pip-installed pyvhdx does not work: $out"
case "$out" in "$T/site/pyvhdx/_pyvhdx"*) ;; *) fail "imported another pyvhdx: $out" ;; esac
expect_eq "pip-installed pyvhdx reads the image" "$(echo "$out" | tail -1)" "$want"
# it links the installed shared libvhdx (pkg-config), not a copy of the library
ldd "$T/site/pyvhdx/"_pyvhdx*.so | grep -q "libvhdx.so" || fail "the pip-built module does not link libvhdx.so"
pass "pip install ./python built pyvhdx against the installed libvhdx"
