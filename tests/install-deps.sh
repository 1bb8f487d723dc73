# install-deps.sh - installs the Debian packages libvhdx needs to build and
# test (sourced by ./run-tests and ./quickstart; bash).
#
# install_deps [extra-package...]
#   Asks dpkg which of the packages are missing and installs only those, so a
#   machine that has everything never touches the network (`apt-get update`
#   runs only when something is missing).  Works without a terminal.  Not
#   root: uses sudo if it can run without a password, else says what to
#   install.  Not Debian (no dpkg/apt-get): says so and carries on; configure
#   then reports what is missing.  Returns 0 unless an install was attempted
#   and failed (the callers carry on anyway and let configure decide).

# What each package is for:
#   build-essential autoconf automake libtool pkg-config   the autotools build
#   libfuse3-dev fuse3                                      vhdxfs (FUSE driver) and its tests
#   libxxhash-dev xxhash                                    block hashes (hash/verify/diff)
#   libcmocka-dev                                           unit tests
#   qemu-utils libvhdi-utils                                independent readers the tests compare with
#   xz-utils                                                the compressed fixtures and conformance images
#   e2fsprogs ntfs-3g                                       file systems inside test images
#   fio valgrind clang                                      benchmarks, make check-valgrind, fuzzing
#   openssl python3                                         fast sha256 of large disks, JSON checks in tests
#   nbdkit nbdkit-plugin-dev libnbd-bin                     the nbdkit plugin and its test (nbdcopy, nbdinfo)
#   nodejs npm 7zip                                         vhd-lib (npm) and 7-Zip (7zz) as further VHD/VHDX readers
#                                                           (npm only where no npm command exists: NodeSource's
#                                                           nodejs carries its own and conflicts with Debian's)
#   python3-dev python3-pytest python3-libvhdi              pyvhdx (python/): headers, its tests, pyvhdi beside it
#   python3-setuptools python3-pip                          `pip install ./python` in tests/test-python-pip.sh
#   jq                                                      JSON reports in the shell tests (test-lock.sh ...)
#   libnbd-dev lighttpd qemu-block-extra                    NBD URIs (libnbd); the vhdx filter over HTTP (test, bench vs qemu's curl driver)
VHDX_DEB_PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libfuse3-dev fuse3 libxxhash-dev xxhash libcmocka-dev
	qemu-utils libvhdi-utils xz-utils e2fsprogs ntfs-3g fio valgrind clang
	openssl python3
	nbdkit nbdkit-plugin-dev libnbd-bin
	nodejs 7zip $(command -v npm >/dev/null 2>&1 || echo npm)
	mount # losetup: tests/test-parent-device.sh
	python3-dev python3-pytest python3-libvhdi python3-setuptools python3-pip
	jq
	libnbd-dev lighttpd qemu-block-extra
	gdisk fdisk util-linux
	fuse2fs # vhdx mount without root: ext2/3/4 (tests/test-mount.sh)
)

# Prints, one a line, those of the packages given that dpkg has not installed.
install_deps_missing() {
	local p

	for p in "$@"; do
		# db:Status-Abbrev is "ii " for an installed package
		case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" in
		ii*) ;;
		*) echo "$p" ;;
		esac
	done
}

# Sets the caller's array `sudo` to what runs apt-get as root: nothing when
# root, sudo when it needs no password; returns 1 when there is no way.
install_deps_as_root() {
	sudo=()
	[ "$(id -u)" = 0 ] && return 0
	command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
	sudo=(sudo -n)
}

install_deps() {
	local pkgs=("${VHDX_DEB_PACKAGES[@]}" "$@") missing=() sudo=()

	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
		echo "install-deps: no dpkg/apt-get here (not Debian?); install these or their equivalents yourself:" >&2
		echo "  ${pkgs[*]}" >&2
		return 0
	fi
	mapfile -t missing < <(install_deps_missing "${pkgs[@]}")
	if [ ${#missing[@]} -eq 0 ]; then
		echo "install-deps: all ${#pkgs[@]} packages are installed"
		return 0
	fi
	if ! install_deps_as_root; then
		echo "install-deps: missing packages, and not root (run as root or: sudo apt-get install ${missing[*]})" >&2
		return 0
	fi
	echo "install-deps: installing ${missing[*]}"
	# noninteractive + </dev/null: never wait for a terminal (CI has none)
	if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
	   ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" </dev/null; then
		echo "install-deps: apt-get failed; carrying on with what is installed" >&2
		return 1
	fi
	return 0
}

# [port] install_cross_deps: the cross tools of test-mingw.sh and test-s390x.sh
# (called by ./run-tests, not by ./quickstart: a few hundred MB).  Best effort:
# these tests skip, saying what is missing, when anything here fails.
#   gcc-mingw-w64-x86-64                                    the Windows cross build (test-mingw.sh)
#   gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user     the big-endian unit tests (test-s390x.sh)
#   libcmocka-dev:s390x                                     cmocka for s390x (needs the foreign architecture s390x)
#   file                                                    both tests check what the binaries are
VHDX_CROSS_PACKAGES=(gcc-mingw-w64-x86-64 gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user file)
VHDX_FOREIGN_PACKAGES=(libcmocka-dev:s390x)

install_cross_deps() {
	local missing=() foreign=() sudo=() apt

	command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 || return 0
	mapfile -t missing < <(install_deps_missing "${VHDX_CROSS_PACKAGES[@]}")
	mapfile -t foreign < <(install_deps_missing "${VHDX_FOREIGN_PACKAGES[@]}")
	if [ ${#missing[@]} -eq 0 ] && [ ${#foreign[@]} -eq 0 ]; then
		echo "install-deps: the cross tools are installed"
		return 0
	fi
	if ! install_deps_as_root; then
		echo "install-deps: cross tools missing and not root (test-mingw/test-s390x will skip): ${missing[*]} ${foreign[*]}" >&2
		return 0
	fi
	apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends)
	if [ ${#foreign[@]} -gt 0 ] && ! dpkg --print-foreign-architectures | grep -qx s390x; then
		echo "install-deps: dpkg --add-architecture s390x (for ${foreign[*]})"
		"${sudo[@]}" dpkg --add-architecture s390x || foreign=()
	fi
	echo "install-deps: installing the cross tools ${missing[*]} ${foreign[*]}"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
		echo "install-deps: apt-get update failed; trying with the lists there are" >&2
	# the native packages first, so that a foreign package that cannot be
	# installed (an archive without s390x) does not hold them back
	if [ ${#missing[@]} -gt 0 ] && ! "${apt[@]}" install "${missing[@]}" </dev/null; then
		echo "install-deps: could not install ${missing[*]}; test-mingw/test-s390x may skip" >&2
	fi
	if [ ${#foreign[@]} -gt 0 ] && ! "${apt[@]}" install "${foreign[@]}" </dev/null; then
		echo "install-deps: could not install ${foreign[*]}; test-s390x will skip" >&2
	fi
	return 0
}
