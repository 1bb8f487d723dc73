#!/bin/bash
# test-s390x.sh - the unit tests on a big-endian machine: cross-builds the
# library and the cmocka unit tests for s390x (gcc-s390x-linux-gnu, cmocka
# from Debian's libcmocka-dev:s390x) in a build folder of its own and runs
# each under qemu-s390x (qemu-user).  Every on-disk integer goes through
# codec/endian.h, so a missed conversion shows up here as a wrong checksum,
# size or offset.  Skips, saying what to install, where the tools are missing.
#
# Only the unit tests are built (not the FUSE driver, not the shell tests):
# they cover the codecs, the readers, the write path and the crash points
# on in-memory images, and the build must stay well under a minute.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
HOST=s390x-linux-gnu
requires make
# The cross build does not depend on how this tree was configured: run it
# once, in the normal build, not again in ./run-tests' sanitizer build.
grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile" 2>/dev/null &&
	skip "sanitizer build: the s390x cross build runs in the normal build only"
command -v $HOST-gcc > /dev/null || skip "no $HOST-gcc (Debian: apt-get install gcc-s390x-linux-gnu)"
command -v qemu-s390x > /dev/null || skip "no qemu-s390x (Debian: apt-get install qemu-user)"
MA=/usr/lib/$HOST
[ -f "$MA/pkgconfig/cmocka.pc" ] ||
	skip "no cmocka for s390x (Debian: dpkg --add-architecture s390x; apt-get update; apt-get install libcmocka-dev:s390x)"

# The unit tests registered in Makefile.am (so new ones are picked up).
units=$(grep -Eo 'tests/unit/test_[a-z0-9_]+' "$top_srcdir/Makefile.am" | sort -u)
[ -n "$units" ] || fail "no unit tests found in Makefile.am"
# The power-cut sweeps take ~30 s natively and several minutes under qemu,
# too long for every CI run: left out unless VHDX_S390X_ALL=1 (the codecs
# they drive are covered by the other unit tests).
SLOW="tests/unit/test_crash_vhdx tests/unit/test_compact tests/unit/test_resize"
if [ "${VHDX_S390X_ALL:-0}" != 1 ]; then
	for u in $SLOW; do
		case " $(echo $units) " in *" $u "*) echo "# not run under qemu (slow; VHDX_S390X_ALL=1 runs it): $u" ;; esac
	done
	units=$(printf '%s\n' $units | grep -vxF -f <(printf '%s\n' $SLOW))
fi

B="$T/build"
mkdir -p "$B"
cd "$B" || fail "cd $B"
# Only s390x .pc files: the build machine's libxxhash must not be linked in
# (configure then uses xxhash.h in XXH_INLINE_ALL mode).
PKG_CONFIG_LIBDIR="$MA/pkgconfig:/usr/share/pkgconfig" \
	"$top_srcdir/configure" --host=$HOST --build="$(gcc -dumpmachine)" --disable-fuse \
	CFLAGS="-O1 -g0" > "$T/configure.log" 2>&1 || fail "configure --host=$HOST failed: $(tail -20 "$T/configure.log")"
grep -q 'cmocka unit tests: *yes' "$T/configure.log" || fail "configure --host=$HOST did not find cmocka: $(tail -12 "$T/configure.log")"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 $units > "$T/make.log" 2>&1 ||
	fail "cross build for $HOST failed: $(grep -E 'error|Error' "$T/make.log" | head -20)"
file -L "$B/tests/unit/test_endian" 2>/dev/null | grep -q 'IBM S/390' ||
	{ command -v file > /dev/null && fail "tests/unit/test_endian is not an s390x binary: $(file "$B/tests/unit/test_endian")"; }

# Run them the way automake would, one by one, under qemu (the dynamic
# loader and libcmocka come from the multiarch folders of libc6:s390x and
# libcmocka0:s390x).
export QEMU_LD_PREFIX=/ LD_LIBRARY_PATH=$MA
# two at a time (qemu is CPU-bound); each leaves OK or its log
run_one() { cd "$B" && if timeout "${VHDX_S390X_TIMEOUT:-180}" qemu-s390x "./$1" > "$T/$(basename "$1").log" 2>&1; then
	echo "ok $1"; else echo "FAIL $1"; fi; }
export -f run_one; export B T
printf '%s\n' $units | xargs -P 2 -I{} bash -c 'run_one {}' > "$T/results"
n=$(wc -l < "$T/results")
nfail=$(grep -c '^FAIL' "$T/results")
[ "$n" = "$(echo $units | wc -w)" ] || fail "only $n unit tests ran under qemu-s390x: $(cat "$T/results")"
for u in $(sed -n 's/^FAIL //p' "$T/results"); do
	echo "FAIL on s390x: $u" >&2
	tail -30 "$T/$(basename "$u").log" >&2
done
[ "$nfail" = 0 ] || fail "$nfail of $n unit tests fail on big-endian s390x"
pass "$n unit tests pass on s390x (big-endian, under qemu-s390x)"
