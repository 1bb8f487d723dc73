# functions.sh - shared helpers of the shell tests (sourced, nbdkit style).
#
# Environment (set by `make check` through AM_TESTS_ENVIRONMENT):
#   top_srcdir, top_builddir   absolute paths of the source and build trees
# A test that cannot run here calls `skip "reason"` (exit 77: automake SKIP).
# `fail "message"` ends it with exit 1.  Every test gets its own scratch
# folder $T, removed on exit (kept when KEEP_TMP=1).

set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
VHDX="$top_builddir/tools/vhdx"
VHDXFS="$top_builddir/fuse/vhdxfs"
SHARED="${VHDX_SHARED:-$top_srcdir/../shared}"
CONFORMANCE="$SHARED/conformance"

T=$(mktemp -d "${TMPDIR:-/tmp}/vhdx-test.XXXXXX")
_cleanups=()
cleanup_fn() { _cleanups+=("$1"); }
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}" || true; done
	if [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap _run_cleanups EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# requires CMD...: skip unless every command exists
requires() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed"; done
}

# requires_conformance: skip unless ../shared/conformance is beside the checkout
requires_conformance() {
	[ -f "$CONFORMANCE/MANIFEST.tsv" ] || skip "conformance images not found at $CONFORMANCE (../shared is not beside the checkout)"
}

# requires_fuse: skip unless FUSE mounts can work here
requires_fuse() {
	[ -x "$VHDXFS" ] || skip "vhdxfs was not built (configure found no libfuse3)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	requires fusermount3
}

# conformance_image NAME: decompresses NAME.xz into $T once and prints the path
conformance_image() {
	local out="$T/$1"
	[ -f "$out" ] || xz -dc "$CONFORMANCE/$1.xz" > "$out" || fail "cannot decompress $1.xz"
	echo "$out"
}

# manifest_field FILE.xz COLUMN: prints a column of MANIFEST.tsv for FILE.xz
manifest_field() {
	awk -F'\t' -v f="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
		$1 == f { print $idx[col] }' "$CONFORMANCE/MANIFEST.tsv"
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# check_clean IMAGE [WHAT] [CHECK-OPTIONS...]: `vhdx check` must find no
# problem at all (exit 0) in IMAGE; WHAT names the step in the failure.
check_clean() {
	local img="$1" what="${2:-$1}"
	shift 2 2>/dev/null || shift
	"$VHDX" check "$@" "$img" > "$T/check.out" 2>&1 || fail "vhdx check $what exited $?: $(cat "$T/check.out")"
}

# expect_fail_msg PATTERN CMD...: CMD must exit 1 and print PATTERN (grep -E) on stderr
expect_fail_msg() {
	local pat="$1" rc
	shift
	"$@" > "$T/out" 2> "$T/err" && fail "'$*' succeeded but should have failed"
	rc=$?
	[ "$rc" = 1 ] || fail "'$*' exited $rc, expected 1; stderr: $(cat "$T/err")"
	grep -Eq -- "$pat" "$T/err" || fail "'$*': stderr does not match /$pat/: $(cat "$T/err")"
}

# expect_err WHAT WANT CMD...: CMD must exit 1 and print exactly WANT on stderr
expect_err() {
	local what="$1" want="$2" rc
	shift 2
	"$@" > "$T/out" 2> "$T/err" && fail "$what: '$*' succeeded"
	rc=$?
	expect_eq "$what: exit code" "$rc" 1
	expect_eq "$what: error" "$(cat "$T/err")" "$want"
}

# expect_refused "FILE..." WANT-STDERR CMD...: CMD must exit 1 with exactly
# WANT-STDERR and leave every FILE (a space-separated list) as it was (sha256)
expect_refused() {
	local files=$1 want=$2 before
	shift 2
	before=$(sha256sum $files)
	"$@" < /dev/null > "$T/out" 2> "$T/err" && fail "'$*' succeeded but should have been refused"
	[ $? = 1 ] || fail "'$*' did not exit 1: $(cat "$T/err")"
	expect_eq "stderr of '$*'" "$(cat "$T/err")" "$want"
	expect_eq "sha256 of $files after '$*'" "$(sha256sum $files)" "$before"
}

# fixture_image NAME: decompresses fixtures/NAME.xz into $T once and prints the path
fixture_image() {
	local out="$T/$1"
	[ -f "$out" ] || xz -dc "$top_srcdir/fixtures/$1.xz" > "$out" || fail "cannot decompress fixtures/$1.xz"
	echo "$out"
}

# sha256_stdin: sha256 of standard input (openssl uses the CPU's SHA
# instructions, several times faster than sha256sum on multi-GiB disks)
sha256_stdin() {
	if command -v openssl >/dev/null 2>&1; then
		openssl dgst -sha256 -r | cut -d' ' -f1
	else
		sha256sum | cut -d' ' -f1
	fi
}

# sevenzip_sum IMAGE: sha256 of the virtual disk 7-Zip (7zz, Debian package 7zip)
# extracts from IMAGE, forced to the image type by the extension (else 7-Zip
# opens the partitions inside); status 1 and nothing printed where 7zz is not
# installed, refuses IMAGE or extracts nothing.  A further independent reader
# for VHD and VHDX: where it opens an image, its bytes must agree.  Its limits
# (issue #21): it refuses a VHDX whose size is not a multiple of twice its
# logical sector size and a VHD whose MaxTableEntries is not exact, extracts
# nothing for some 256 MiB-block images, does not replay a VHDX log (never
# give it a dirty one), and finds a VHD parent only by the Parent Unicode Name
# in the child's folder or below it.
sevenzip_sum() {
	local t=vhdx sum
	command -v 7zz >/dev/null 2>&1 || return 1
	case "$1" in *.vhd | *.VHD) t=vhd ;; esac
	sum=$(set -o pipefail; 7zz e -so -t$t "$1" 2>/dev/null | sha256_stdin) || return 1
	# the sha256 of nothing: 7-Zip opened the image but gave no data
	[ "$sum" != e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] || return 1
	echo "$sum"
}

# sevenzip_agrees IMAGE SHA256 WHAT: where 7-Zip opens IMAGE (sevenzip_sum), its disk
# must have SHA256 (the test fails otherwise); status 0 when compared, 1 when not
sevenzip_agrees() {
	local z
	z=$(sevenzip_sum "$1") || return 1
	expect_eq "$3: 7-Zip reads" "$z" "$2"
}

# vhd_strip_locators FILE: removes every parent locator entry of the differencing
# VHD FILE (dynamic header at 512) and redoes the header checksum: a child as
# vhd-lib (Xen Orchestra) writes it, found through its Parent Unicode Name only
vhd_strip_locators() {
	python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(512)
    h = bytearray(f.read(1024))
    h[576:768] = bytes(192)
    h[36:40] = bytes(4)
    h[36:40] = struct.pack('>I', ~sum(h) & 0xffffffff)
    f.seek(512)
    f.write(h)
PY
}

# ---- FUSE mounts (vhdxfs) ----
# fuse_mount MNT IMAGE [VHDXFS-OPTIONS...]: mounts IMAGE on MNT with vhdxfs -f
# in the background, waits (10 s at most) for the mount to appear, and
# registers a cleanup that unmounts it.  Skips the test where this machine
# refuses FUSE mounts (no permission, no fuse module); fails on any other
# error.  Sets FUSE_PID to the daemon's pid.
fuse_mount() {
	local mnt="$1" img="$2" i
	shift 2
	mkdir -p "$mnt"
	"$VHDXFS" -f "$@" "$img" "$mnt" 2> "$T/vhdxfs.err" &
	FUSE_PID=$!
	cleanup_fn "fuse_unmount '$mnt' quiet"
	for ((i = 0; i < 100; i++)); do
		fuse_is_mounted "$mnt" && return 0
		kill -0 "$FUSE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if grep -Eq "Operation not permitted|Permission denied|device not found|failed to open /dev/fuse" "$T/vhdxfs.err"; then
		skip "FUSE mounts are not allowed here: $(cat "$T/vhdxfs.err")"
	fi
	fail "vhdxfs did not mount $img on $mnt: $(cat "$T/vhdxfs.err")"
}

# fuse_is_mounted MNT: true when MNT is a mount point in /proc/mounts
fuse_is_mounted() {
	awk -v m="$(cd "$1" 2>/dev/null && pwd -P || echo "$1")" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# fuse_unmount MNT [quiet]: unmounts MNT and waits for the vhdxfs daemon to
# exit; fails if it exits non-zero (a failed close of the image) unless quiet.
fuse_unmount() {
	local mnt="$1" quiet="${2:-}" rc=0 i
	if fuse_is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || { sleep 0.5; fusermount3 -u "$mnt" 2>/dev/null; } ||
			fusermount3 -u -z "$mnt" 2>/dev/null
	fi
	if [ -n "${FUSE_PID:-}" ]; then
		for ((i = 0; i < 100; i++)); do kill -0 "$FUSE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$FUSE_PID" 2>/dev/null && kill "$FUSE_PID" 2>/dev/null
		wait "$FUSE_PID" 2>/dev/null || rc=$?
		FUSE_PID=
	fi
	[ -n "$quiet" ] && return 0
	fuse_is_mounted "$mnt" && fail "$mnt is still mounted after fusermount3 -u"
	[ "$rc" = 0 ] || fail "vhdxfs exited $rc after unmounting $mnt: $(cat "$T/vhdxfs.err" 2>/dev/null)"
}

# ---- loop devices and file systems inside a mounted disk ----
# requires_loop: skip unless this process may attach loop devices and mount
requires_loop() {
	requires losetup mount umount
	[ "$(id -u)" = 0 ] || skip "loop devices and mounts need root"
	[ -e /dev/loop-control ] || skip "/dev/loop-control is missing (no loop devices here)"
}

# loop_attach VAR FILE [LOSETUP-OPTIONS...]: attaches a free loop device over
# FILE (e.g. -r for read-only), stores its name in VAR and registers a cleanup
# that detaches it.  Returns 1 with the reason in $T/losetup.err on failure.
loop_attach() {
	local _var=$1 _file=$2 _dev
	shift 2
	_dev=$(losetup "$@" --show -f "$_file" 2> "$T/losetup.err") || return 1
	# losetup records the canonical path: the cleanup compares with that one.
	cleanup_fn "loop_detach '$_dev' '$(losetup -n -O BACK-FILE "$_dev")' quiet"
	printf -v "$_var" '%s' "$_dev"
}

# loop_detach DEV FILE [quiet]: detaches DEV if it is still attached to FILE
# (once detached the device may belong to someone else: never detach it
# blindly), and waits (10 s at most) until the kernel lets go of FILE, so
# that a FUSE mount holding FILE can be unmounted.  Fails unless quiet.
loop_detach() {
	local dev=$1 file quiet=${3:-} i
	file=$(readlink -f "$2" 2>/dev/null) || file=$2
	if [ "$(losetup -n -O BACK-FILE "$dev" 2>/dev/null)" = "$file" ]; then
		losetup -d "$dev" 2> "$T/losetup.err" ||
			{ [ -n "$quiet" ] || fail "losetup -d $dev: $(cat "$T/losetup.err")"; }
	fi
	for ((i = 0; i < 100; i++)); do
		[ "$(losetup -n -O BACK-FILE "$dev" 2>/dev/null)" = "$file" ] || return 0
		sleep 0.1
	done
	[ -n "$quiet" ] || fail "$dev is still attached to $file 10 s after losetup -d"
}

# fs_mount DEV DIR [MOUNT-OPTIONS...]: mounts DEV on DIR and registers a
# cleanup that unmounts it.  Returns mount's status (message in $T/mount.err).
fs_mount() {
	local dev=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	mount "$@" "$dev" "$dir" 2> "$T/mount.err" || return 1
	cleanup_fn "mountpoint -q '$dir' && umount '$dir'"
}

# ---- images, readers and installs several tests share ----
# make_base_child BASE CHILD: a 64 MiB VHDX BASE (1 MiB blocks) with 2 MiB of
# random bytes at 4 MiB, and a differencing CHILD over it
make_base_child() {
	"$VHDX" create --size 64M --block-size 1M "$1" > /dev/null || fail "create $1"
	head -c $((2 * 1048576)) /dev/urandom | "$VHDX" write --offset $((4 * 1048576)) "$1" || fail "write $1"
	"$VHDX" create --parent "$1" "$2" > /dev/null || fail "create $2"
}

# lock_images IMAGE: what the lock tests hold and refuse: a lone 64 MiB VHDX
# IMAGE (1 MiB blocks), and $base with a differencing $child over it (make_base_child)
lock_images() {
	base="$T/base.vhdx"
	child="$T/child.avhdx"
	"$VHDX" create --size 64M --block-size 1M "$1" > /dev/null || fail "create $1"
	make_base_child "$base" "$child"
}

# rawsum IMAGE [CONVERT-OPTIONS...]: sha256 of the raw disk `vhdx convert`
# makes of IMAGE (through $T/conv.raw, which stays for a closer look)
rawsum() {
	"$VHDX" convert -O raw "$@" "$T/conv.raw" > /dev/null || fail "convert $*"
	sha256 "$T/conv.raw"
}

# vhdimount_usable: true where vhdimount can mount here (the program, /dev/fuse, fusermount3)
vhdimount_usable() {
	command -v vhdimount > /dev/null && [ -c /dev/fuse ] && command -v fusermount3 > /dev/null
}

# vhdimount_check IMG MIRROR DEPTH: where vhdimount is usable, it must read
# the disk of IMG (a chain of DEPTH images: libvhdi names it vhdi<DEPTH>)
# exactly as the raw file MIRROR holds it
vhdimount_check() {
	vhdimount_usable || return 0
	mkdir -p "$T/vm"
	vhdimount "$1" "$T/vm" > /dev/null 2>&1 || fail "vhdimount could not open $1"
	cmp "$T/vm/vhdi$3" "$2" || { fusermount3 -u "$T/vm"; fail "vhdimount reads different bytes from $1 (depth $3)"; }
	fusermount3 -u "$T/vm"
}

# expect_raw_sha NAME IMAGE SHA256: `vhdx convert` of IMAGE must give a disk
# with SHA256, and so must 7-Zip where it opens IMAGE (sevenzip_agrees);
# status 0 when 7-Zip compared too, 1 when not
expect_raw_sha() {
	local got
	got=$("$VHDX" convert -O raw "$2" - 2> "$T/err" | sha256_stdin) ||
		fail "$1: vhdx convert failed: $(cat "$T/err")"
	expect_eq "$1: sha256 of the raw disk" "$got" "$3"
	sevenzip_agrees "$2" "$3" "$1"
}

# staged_install ROOT: the real `make install DESTDIR=ROOT` of this build.
# Nested inside `make check`, everything is built and it only copies;
# MAKEFLAGS is dropped so it does not join the outer make's jobserver.
staged_install() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" install DESTDIR="$1" \
		> "$T/install.log" 2>&1 || fail "make install DESTDIR=$1 failed: $(tail -20 "$T/install.log")"
}

# make_var NAME: the value of NAME in the build's Makefile
make_var() { sed -n "s|^$1 = ||p" "$top_builddir/Makefile" | head -1; }

# install_dir NAME: the folder configure chose for NAME (libdir, bindir,
# mandir, pythonsitedir...), every ${VAR} in it replaced by the Makefile's
# VAR until none is left (pythonsitedir is ${libdir}/..., libdir
# ${exec_prefix}/lib, and each may have been changed at configure time)
install_dir() {
	local v var
	v=$(make_var "$1")
	while [[ $v =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; do
		var=${BASH_REMATCH[1]}
		v=${v//\$\{$var\}/$(make_var "$var")}
	done
	echo "$v"
}

# ---- nbdkit servers (NBD sources and the vhdx filter) ----
# nbdkit_start SOCK [NBDKIT-ARGS...]: runs nbdkit in the foreground (as a
# background job of this test) on the Unix socket SOCK, waits (10 s at
# most) for the socket, and registers a cleanup that kills that PID only.
# Sets NBDKIT_PID; nbdkit's messages go to SOCK.err.  The array
# NBDKIT_ENV (e.g. (env LD_PRELOAD=...)) prefixes the command when set.
nbdkit_start() {
	local sock=$1 i
	shift
	rm -f "$sock"
	${NBDKIT_ENV[@]+"${NBDKIT_ENV[@]}"} nbdkit -f --exit-with-parent -U "$sock" "$@" 2> "$sock.err" &
	NBDKIT_PID=$!
	cleanup_fn "kill $NBDKIT_PID 2>/dev/null; wait $NBDKIT_PID 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		[ -S "$sock" ] && return 0
		kill -0 "$NBDKIT_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "nbdkit $* did not start on $sock: $(cat "$sock.err")"
}

# nbdkit_stop: stops the server nbdkit_start started last (by its PID).
nbdkit_stop() {
	kill "$NBDKIT_PID" 2>/dev/null
	wait "$NBDKIT_PID" 2>/dev/null
	return 0
}

# nbdkit_run CMD NBDKIT-ARGS...: what `nbdkit -U - NBDKIT-ARGS --run CMD` does,
# without nbdkit's fork: nbdkit runs in the foreground (a background job of
# this test) on a private socket, CMD runs in a shell with $uri and
# $unixsocket set (and without NBDKIT_ENV's preload), then nbdkit is asked
# to end (SIGTERM: it flushes and closes the image first) and waited for.
# Why: nbdkit's --run child exits through the destructors of the libraries
# it inherited, and with the ASan runtime preloaded (sanitizer build) one of
# them (p11-kit's) waits forever on a glibc lock a thread held at the fork.
# nbdkit's messages go to $T/nbdkit.err.  The exit status is CMD's, else
# nbdkit's (when it could not start, or failed while ending); a CMD or an
# ending that hangs fails after 120 s.
nbdkit_run() {
	local cmd=$1 sock pid rc i
	shift
	sock=$(mktemp -u "$T/nbdkit-run.XXXXXX")
	${NBDKIT_ENV[@]+"${NBDKIT_ENV[@]}"} nbdkit -f --exit-with-parent -U "$sock" "$@" 2> "$T/nbdkit.err" &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		[ -S "$sock" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -S "$sock" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		[ "$rc" != 0 ] || rc=1
		return "$rc"
	fi
	(unset LD_PRELOAD; export uri="nbd+unix://?socket=$sock" unixsocket="$sock"
	 exec timeout -k 10 120 bash -c "$cmd")
	rc=$?
	kill "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$pid" 2>/dev/null && echo "nbdkit_run: nbdkit did not end within 120 s of SIGTERM" >> "$T/nbdkit.err"
	wait "$pid"
	i=$?
	rm -f "$sock"
	[ "$rc" != 0 ] && return "$rc"
	return "$i"
}

# nbdkit_sanitizer_env: in a sanitizer build, sets NBDKIT_ENV (an env command
# preloading the ASan runtime into the uninstrumented nbdkit, nbdkit's own
# leaks not checked) and RUN_PREFIX (for --run: the clients must not get the
# preload); else both empty.  Skips when libasan.so cannot be found.
nbdkit_sanitizer_env() {
	NBDKIT_ENV=() RUN_PREFIX=
	if grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile" 2>/dev/null; then
		local cc f
		cc=$(sed -n 's/^CC = //p' "$top_builddir/Makefile")
		f=$($cc -print-file-name=libasan.so 2>/dev/null)
		[ -f "$f" ] || skip "sanitizer build: cannot find libasan.so of '$cc' to preload into nbdkit"
		# p11-kit (under nbdkit's gnutls) makes a locale in its constructor; the ASan
		# runtime, initialised later than that by the loader, starts inside that
		# newlocale (its first malloc), and its gettext read-locks glibc's locale
		# lock under newlocale's write lock, leaving the lock broken: nbdkit then
		# hangs for good at exit in p11-kit's freelocale.  Preloaded right after
		# the runtime, p11-kit's constructor runs after the runtime is up.
		p11=$(ldd "$(command -v nbdkit)" 2>/dev/null | awk '/libp11-kit/ { print $3 }')
		# detect_leaks=0 last: ./run-tests exports detect_leaks=1, and the last one wins (nbdkit's
		# own allocations still held when it ends on SIGTERM are not ours to check)
		NBDKIT_ENV=(env "LD_PRELOAD=$f${p11:+ $p11}" "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
		RUN_PREFIX="unset LD_PRELOAD; ASAN_OPTIONS='${ASAN_OPTIONS:-}'; "
	fi
}
