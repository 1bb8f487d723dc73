#!/bin/bash
# test-install.sh - `make install` into a staging root (DESTDIR), then use the
# installed files the way a user does: a versioned SONAME, only the public API
# exported, the header, libvhdx.pc, the programs and man pages in place, and
# an outside C program (tests/install/outside.c) built with
# `pkg-config --cflags --libs libvhdx` against the staged copy that reads an
# image made by the installed `vhdx` identically to `vhdx convert`.
#
# Why a nested `make install` from inside `make check`: it is the real
# install rule (libtool's install mode, install-data hooks, man pages), not
# a re-creation of it.  By the time tests run everything is built, so the
# nested make only copies; MAKEFLAGS is dropped so it does not join the
# jobserver of the outer make.  PKG_CONFIG_SYSROOT_DIR makes pkg-config put
# the staging root in front of -I/-L, whatever --prefix/--libdir configure got.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires make pkg-config readelf nm cc

ROOT="$T/root"
staged_install "$ROOT"

# Where configure said things go (prefix, libdir... may have been changed).
libdir=$(install_dir libdir)
bindir=$(install_dir bindir)
includedir=$(install_dir includedir)
mandir=$(install_dir mandir)

# ---- the installed files
LIB="$ROOT$libdir/libvhdx.so"
for f in "$LIB" "$ROOT$includedir/libvhdx.h" "$ROOT$libdir/pkgconfig/libvhdx.pc" "$ROOT$bindir/vhdx"; do
	[ -e "$f" ] || fail "not installed: $f (installed: $(cd "$ROOT" && find . -type f | sort | tr '\n' ' '))"
done
if [ -x "$top_builddir/fuse/vhdxfs" ]; then
	[ -x "$ROOT$bindir/vhdxfs" ] || fail "vhdxfs was built but not installed in $bindir"
fi
for m in man1/vhdx.1 man3/libvhdx.3; do
	[ -f "$ROOT$mandir/$m" ] || fail "man page not installed: $mandir/$m"
	cmp -s "$ROOT$mandir/$m" "$top_srcdir/man/${m#*/}" || fail "installed $m differs from man/${m#*/}"
done
pass "installed: library, header, libvhdx.pc, vhdx$([ -x "$top_builddir/fuse/vhdxfs" ] && echo ", vhdxfs"), man pages"

# ---- SONAME: versioned, and the file it names exists
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" =~ ^libvhdx\.so\.[0-9]+$ ]] || fail "SONAME of $LIB is '$soname', expected libvhdx.so.N"
[ -e "$ROOT$libdir/$soname" ] || fail "$soname (the SONAME) is not installed in $libdir"
pass "SONAME $soname"

# ---- exported symbols: exactly the global: list of the version script
nm -D --defined-only "$LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort > "$T/exported"
sed -n '/global:/,/local:/p' "$top_srcdir/libvhdx/libvhdx.sym" | grep -Eo '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort > "$T/sym"
[ -s "$T/sym" ] || fail "no global: symbols found in libvhdx.sym"
diff -u "$T/sym" "$T/exported" > "$T/symdiff" || fail "installed library exports differ from libvhdx.sym:
$(cat "$T/symdiff")"
nm -D --defined-only "$LIB" | grep -Eq '@@LIBVHDX_[0-9]' || fail "symbols carry no LIBVHDX_ version node"
pass "$(wc -l < "$T/exported") exported symbols, all versioned, equal to libvhdx.sym"

# ---- an outside program built through pkg-config
export PKG_CONFIG_PATH="$ROOT$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$ROOT"
pc_cflags=$(pkg-config --cflags libvhdx) || fail "pkg-config --cflags libvhdx failed"
pc_libs=$(pkg-config --libs libvhdx) || fail "pkg-config --libs libvhdx failed"
expect_eq "pkg-config --modversion" "$(pkg-config --modversion libvhdx)" "$(make_var PACKAGE_VERSION)"
# A sanitizer build's library needs its runtime in the program too.
san=$(make_var SAN_LDFLAGS)
cc -std=c99 -Wall -Werror $san $pc_cflags -o "$T/outside" "$top_srcdir/tests/install/outside.c" $pc_libs \
	2> "$T/cc.err" || fail "cannot build the outside program with '$pc_cflags $pc_libs': $(cat "$T/cc.err")"
grep -q -- "-I$ROOT$includedir" <<< "$pc_cflags" || fail "pkg-config --cflags '$pc_cflags' does not point at $ROOT$includedir"
# The program must use the installed library, not one from this build tree.
LD_LIBRARY_PATH="$ROOT$libdir" ldd "$T/outside" | grep -q "$ROOT$libdir/$soname" ||
	fail "outside does not load $ROOT$libdir/$soname: $(LD_LIBRARY_PATH="$ROOT$libdir" ldd "$T/outside")"

# An image made by the installed vhdx: a dynamic VHDX with data in two blocks
# and a differencing child over it that changes part of one.
# vhdx is linked to the shared library (issue #18): run from the staging
# root, it must load the staged copy, as the outside program does.
V="$ROOT$bindir/vhdx"
LD_LIBRARY_PATH="$ROOT$libdir" ldd "$V" | grep -q "$ROOT$libdir/$soname" ||
	fail "installed vhdx does not load $ROOT$libdir/$soname: $(LD_LIBRARY_PATH="$ROOT$libdir" ldd "$V")"
# So are vhdxfs, the nbdkit plugin and filter and pyvhdx, where they were built.
for m in "fuse/vhdxfs $bindir/vhdxfs" \
	"nbdkit/.libs/nbdkit-vhdx-plugin.so $(install_dir nbdkitplugindir)/nbdkit-vhdx-plugin.so" \
	"nbdkit/.libs/nbdkit-vhdx-filter.so $(install_dir nbdkitfilterdir)/nbdkit-vhdx-filter.so" \
	"python/.libs/_pyvhdx.so $(install_dir pythonsitedir)/pyvhdx/_pyvhdx.so"; do
	set -- $m
	[ -e "$top_builddir/$1" ] || continue
	[ -e "$ROOT$2" ] || fail "$1 was built but $2 was not installed"
	LD_LIBRARY_PATH="$ROOT$libdir" ldd "$ROOT$2" | grep -q "$ROOT$libdir/$soname" ||
		fail "installed $2 does not load $ROOT$libdir/$soname: $(LD_LIBRARY_PATH="$ROOT$libdir" ldd "$ROOT$2")"
done
export LD_LIBRARY_PATH="$ROOT$libdir"
"$V" create --size 5M --block-size 1M "$T/base.vhdx" > /dev/null || fail "installed vhdx create failed"
head -c 300000 /dev/urandom > "$T/d1"; head -c 70000 /dev/urandom > "$T/d2"; head -c 4096 /dev/urandom > "$T/d3"
"$V" write --offset 1000 "$T/base.vhdx" < "$T/d1" || fail "vhdx write d1"
"$V" write --offset 3M "$T/base.vhdx" < "$T/d2" || fail "vhdx write d2"
"$V" create --parent "$T/base.vhdx" "$T/child.avhdx" > /dev/null || fail "vhdx create --parent"
"$V" write --offset 3100000 "$T/child.avhdx" < "$T/d3" || fail "vhdx write d3"
# The expected bytes, built independently of the library: a raw mirror.
truncate -s 5M "$T/expect.raw"
dd if="$T/d1" of="$T/expect.raw" bs=1 seek=1000 conv=notrunc status=none
dd if="$T/d2" of="$T/expect.raw" bs=1M seek=3 conv=notrunc status=none
dd if="$T/d3" of="$T/expect.raw" bs=1 seek=3100000 conv=notrunc status=none

for img in base.vhdx child.avhdx; do
	LD_LIBRARY_PATH="$ROOT$libdir" "$T/outside" "$T/$img" "$T/$img.out" > "$T/$img.info" 2> "$T/err" ||
		fail "outside $img: $(cat "$T/err")"
	layers=1; [ "$img" = child.avhdx ] && layers=2
	expect_eq "outside $img" "$(cat "$T/$img.info")" "virtual_size=5242880 layers=$layers version=$(make_var PACKAGE_VERSION)"
	"$V" convert -O raw "$T/$img" "$T/$img.conv" || fail "vhdx convert $img"
	expect_eq "sha256 of $img read by outside vs vhdx convert" "$(sha256 "$T/$img.out")" "$(sha256 "$T/$img.conv")"
done
# The base alone: d1 and d2 (d3 went into the child only).
truncate -s 5M "$T/base.raw"
dd if="$T/d1" of="$T/base.raw" bs=1 seek=1000 conv=notrunc status=none
dd if="$T/d2" of="$T/base.raw" bs=1M seek=3 conv=notrunc status=none
expect_eq "base read by outside vs raw mirror" "$(sha256 "$T/base.vhdx.out")" "$(sha256 "$T/base.raw")"
expect_eq "child read by outside vs raw mirror" "$(sha256 "$T/child.avhdx.out")" "$(sha256 "$T/expect.raw")"
pass "outside program (pkg-config: $pc_cflags $pc_libs) reads base and child like vhdx convert and the raw mirror"
