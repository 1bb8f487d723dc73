#!/bin/bash
# test-mingw.sh - the Windows build: cross-builds the library (libvhdx-1.dll)
# and the vhdx command (vhdx.exe) with mingw-w64 in a build folder of its own
# (configure --host=x86_64-w64-mingw32 --disable-fuse --enable-werror) and
# checks what came out: PE32+ binaries, and a DLL that exports exactly the
# functions of libvhdx.sym (on Windows VHDX_API is __declspec(dllexport);
# the ELF version script does not apply).  Where wine is installed, vhdx.exe
# then reads and writes images through the Windows file backend
# (io/file_win32.c) and must agree with the Linux build byte for byte.
# Skips, saying what to install, where the cross compiler is missing.
#
# Only the library and vhdx.exe are built (no unit tests, no FUSE driver),
# so the test stays around a minute on two cores.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
HOST=x86_64-w64-mingw32
requires make xz
# The cross build does not depend on how this tree was configured: run it
# once, in the normal build, not again in ./run-tests' sanitizer build.
grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile" 2>/dev/null &&
	skip "sanitizer build: the mingw cross build runs in the normal build only"
command -v $HOST-gcc > /dev/null || skip "no $HOST-gcc (Debian: apt-get install gcc-mingw-w64-x86-64)"
requires file $HOST-objdump
# No libxxhash exists for Windows here: configure takes xxhash.h alone
# (XXH_INLINE_ALL) from a folder given in CPPFLAGS.
XXH=$(echo '#include <xxhash.h>' | cpp -H -o /dev/null 2>&1 | sed -n 's/^\. //p' | head -1)
[ -f "$XXH" ] || skip "no xxhash.h for the cross build (Debian: apt-get install libxxhash-dev)"
mkdir -p "$T/inc" "$T/nopc"
ln -s "$XXH" "$T/inc/xxhash.h"

B="$T/build"
mkdir -p "$B"
cd "$B" || fail "cd $B"
# -Werror catches what Windows lacks (an implicit declaration is a warning in C);
# gcc's -O1 flow analysis gives false maybe-uninitialized warnings that -O2
# (the Linux -Werror build) does not, so those are not errors here.
# PKG_CONFIG_LIBDIR: no .pc file of the build machine (cmocka, fuse, xxhash) may leak in
PKG_CONFIG_LIBDIR="$T/nopc" "$top_srcdir/configure" --host=$HOST --build="$(gcc -dumpmachine)" \
	--disable-fuse --enable-werror CPPFLAGS="-I$T/inc" CFLAGS="-O1 -g0 -Wno-maybe-uninitialized" > "$T/configure.log" 2>&1 ||
	fail "configure --host=$HOST failed: $(tail -20 "$T/configure.log")"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 libvhdx/libvhdx.la tools/vhdx.exe > "$T/make.log" 2>&1 ||
	fail "cross build for $HOST failed: $(grep -E 'error|Error|warning' "$T/make.log" | head -30)"

EXE="$B/tools/vhdx.exe"
DLL=$(ls "$B"/libvhdx/.libs/libvhdx-*.dll 2>/dev/null | head -1)
[ -f "$EXE" ] || fail "no tools/vhdx.exe after the build"
[ -n "$DLL" ] || fail "no libvhdx/.libs/libvhdx-*.dll after the build (libtool built no DLL)"
[ -f "$B/libvhdx/.libs/libvhdx.dll.a" ] || fail "no import library libvhdx.dll.a"
file "$EXE" | grep -q 'PE32+ executable (console) x86-64' || fail "vhdx.exe is not a PE32+ x86-64 console program: $(file "$EXE")"
file "$DLL" | grep -q 'PE32+ executable (DLL).*x86-64' || fail "$(basename "$DLL") is not a PE32+ x86-64 DLL: $(file "$DLL")"
pass "vhdx.exe and $(basename "$DLL") are PE32+ x86-64"

# The DLL's export table = the global: list of libvhdx.sym (what test-symbols.sh checks on ELF)
$HOST-objdump -p "$DLL" > "$T/pe" || fail "objdump -p $DLL failed"
sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' "$T/pe" | sed -n 's/^[[:space:]]*\[[[:space:]]*[0-9]*\] //p' | sort -u > "$T/exported"
sed -n '/global:/,/local:/p' "$top_srcdir/libvhdx/libvhdx.sym" | grep -Eo '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort -u > "$T/script"
[ -s "$T/script" ] || fail "no symbols in libvhdx.sym"
diff -u "$T/script" "$T/exported" > "$T/d" || fail "$(basename "$DLL") exports differ from libvhdx.sym (- script, + DLL):
$(cat "$T/d")"
pass "$(basename "$DLL") exports exactly the $(wc -l < "$T/script") functions of libvhdx.sym"

# the one door: vhdx.exe is linked to the DLL, as the Linux vhdx is to libvhdx.so
REAL="$EXE"
[ -f "$B/tools/.libs/vhdx.exe" ] && REAL="$B/tools/.libs/vhdx.exe"
$HOST-objdump -p "$REAL" | grep -q "DLL Name: $(basename "$DLL")" ||
	fail "vhdx.exe does not import $(basename "$DLL"): $($HOST-objdump -p "$REAL" | grep 'DLL Name' | tr '\n' ' ')"
pass "vhdx.exe is linked to $(basename "$DLL")"

# ---- run it, where wine is installed (Debian's wine64 is ~670 MB, so CI does not install it)
WINE=
for w in wine64 wine /usr/lib/wine/wine64; do
	command -v "$w" > /dev/null 2>&1 && { WINE=$(command -v "$w"); break; }
done
if [ -z "$WINE" ]; then
	echo "# wine is not installed: vhdx.exe was built and checked but not run (Debian: apt-get install wine64)"
	exit 0
fi
[ -x "$VHDX" ] || skip "the Linux vhdx was not built (needed to compare with)"
# libtool may leave a wrapper in tools/ and the program in tools/.libs/
[ -f "$B/tools/.libs/vhdx.exe" ] && EXE="$B/tools/.libs/vhdx.exe"
# the runtime DLLs the program needs, beside it
for d in libwinpthread-1.dll libgcc_s_seh-1.dll; do
	p=$($HOST-gcc -print-file-name=$d)
	[ -f "$p" ] && cp "$p" "$(dirname "$EXE")/"
done
cp "$DLL" "$(dirname "$EXE")/"
export WINEPREFIX="$T/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# stop this prefix's wineserver before $T is removed (it keeps writing there)
WINESERVER=$(dirname "$WINE")/wineserver
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver || true)
[ -n "$WINESERVER" ] && cleanup_fn '"$WINESERVER" -k 2>/dev/null; "$WINESERVER" -w 2>/dev/null'
# wine writes text through the CRT: \r\n line ends, dropped before comparing
wexe() { "$WINE" "$EXE" "$@" 2> "$T/wine.err" | tr -d '\r'; return "${PIPESTATUS[0]}"; }
cd "$T" || fail "cd $T"
cp "$(fixture_image sample-dynamic.vhdx)" img.vhdx || fail "no fixture sample-dynamic.vhdx"
timeout 120 "$WINE" "$EXE" --help > /dev/null 2>&1 ||
	{ timeout 120 "$WINE" "$EXE" --help > "$T/help.out" 2>&1; fail "wine vhdx.exe --help failed: $(tail -5 "$T/help.out")"; }

for args in "info img.vhdx" "info --json img.vhdx" "map --layers img.vhdx"; do
	"$VHDX" $args > "$T/linux.out" 2>&1 || fail "vhdx $args (Linux) failed: $(cat "$T/linux.out")"
	wexe $args > "$T/win.out" || fail "wine vhdx.exe $args failed: $(cat "$T/wine.err")"
	diff -u "$T/linux.out" "$T/win.out" > "$T/d" || fail "vhdx.exe $args differs from the Linux build:
$(head -40 "$T/d")"
done
pass "vhdx.exe info, info --json and map --layers under wine print what the Linux build prints"

# reads through file_win32.c: the whole disk converted to raw, byte for byte
"$VHDX" convert -O raw img.vhdx linux.raw > /dev/null 2>&1 || fail "vhdx convert (Linux) failed"
wexe convert -O raw img.vhdx win.raw > /dev/null || fail "wine vhdx.exe convert -O raw failed: $(cat "$T/wine.err")"
expect_eq "raw image written by vhdx.exe" "$(sha256 win.raw)" "$(sha256 linux.raw)"
pass "vhdx.exe convert -O raw gives the same bytes as the Linux build"

# writes through file_win32.c: create (BCryptGenRandom GUIDs, set size, flush), write, read back on Linux
wexe create --size 64M new.vhdx > /dev/null || fail "wine vhdx.exe create failed: $(cat "$T/wine.err")"
head -c 1048576 linux.raw > part.bin
"$WINE" "$EXE" write --offset 3M new.vhdx < part.bin > /dev/null 2> "$T/wine.err" ||
	fail "wine vhdx.exe write failed: $(cat "$T/wine.err")"
"$VHDX" info new.vhdx > "$T/new.info" 2>&1 || fail "the image vhdx.exe created does not open on Linux: $(cat "$T/new.info")"
"$VHDX" convert -O raw new.vhdx new.raw > /dev/null 2>&1 || fail "vhdx convert of the image vhdx.exe wrote failed"
expect_eq "size of the disk vhdx.exe created" "$(stat -c %s new.raw)" 67108864
expect_eq "bytes vhdx.exe wrote at 3 MiB" "$(dd if=new.raw bs=1M skip=3 count=1 status=none | sha256sum | cut -d' ' -f1)" "$(sha256 part.bin)"
expect_eq "zeros around them" "$(dd if=new.raw bs=1M count=3 status=none | tr -d '\0' | wc -c)" 0
pass "vhdx.exe create + write under wine: the Linux build reads the image back exactly"

# a differencing child in a sub-folder: its relative locator (from realpath's
# drive-letter paths) must lead the Linux build to the parent, and the child's
# bytes over the parent's must read back
mkdir -p sub
wexe create --parent new.vhdx sub/child.vhdx > /dev/null || fail "wine vhdx.exe create --parent failed: $(cat "$T/wine.err")"
wexe info sub/child.vhdx > "$T/child.winfo" || fail "wine vhdx.exe info of the child failed: $(cat "$T/wine.err")"
grep -A1 'key: relative_path' "$T/child.winfo" | grep -q 'value: \.\.\\new\.vhdx$' ||
	fail "relative parent path written by vhdx.exe is not ..\\new.vhdx: $(grep -A1 'key: relative_path' "$T/child.winfo")"
grep -q 'chain_complete: yes' "$T/child.winfo" || fail "vhdx.exe does not find the parent of sub/child.vhdx: $(cat "$T/child.winfo")"
head -c 65536 linux.raw | "$WINE" "$EXE" write --offset 0 sub/child.vhdx > /dev/null 2> "$T/wine.err" ||
	fail "wine vhdx.exe write into the child failed: $(cat "$T/wine.err")"
"$VHDX" convert -O raw sub/child.vhdx child.raw > "$T/conv.out" 2>&1 || fail "Linux vhdx cannot read the chain vhdx.exe made: $(cat "$T/conv.out")"
expect_eq "child's first 64 KiB" "$(head -c 65536 child.raw | sha256sum | cut -d' ' -f1)" "$(head -c 65536 linux.raw | sha256sum | cut -d' ' -f1)"
expect_eq "parent's bytes seen through the child" "$(dd if=child.raw bs=1M skip=3 count=1 status=none | sha256sum | cut -d' ' -f1)" "$(sha256 part.bin)"
pass "vhdx.exe create --parent in a sub-folder: relative locator ..\\new.vhdx, the chain reads right on Linux"
