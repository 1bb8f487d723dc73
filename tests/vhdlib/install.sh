#!/bin/bash
# install.sh DIR - installs vhd-lib (the VHD library of Xen Orchestra, from
# the npm registry) into DIR/node_modules for tests/test-vhdlib.sh: an
# independent writer and reader of VHD files and chains.
#
# vhd-lib 4.15.0 declares dependencies that are not all on the registry
# (@vates/diff and @vates/stream-reader, used only by its stream validator),
# so `npm install vhd-lib` fails.  Instead the package itself is fetched with
# `npm pack` and unpacked, and only the modules that the files our scripts
# load (openVhd, VhdFile, VhdSynthetic, checkChain, the structs) require are
# installed, each at a pinned version.  Idempotent: does nothing when DIR
# already holds this set.  Exit 0 installed, 1 failed (npm missing, offline,
# a package gone); the reason is on standard error.
set -u
dir=${1:?usage: install.sh DIR}
VHDLIB_VERSION=4.15.0
DEPS=(struct-fu@1.2.1 uuid@9.0.1 promise-toolbox@0.21.0 @xen-orchestra/log@0.7.2 @xen-orchestra/async-map@0.1.4
	async-iterator-to-stream@1.2.0 decorator-synchronized@0.6.0 lodash@4.17.21)
stamp="vhd-lib@$VHDLIB_VERSION ${DEPS[*]}"

[ "$(cat "$dir/.installed" 2>/dev/null)" = "$stamp" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "install.sh: npm is not installed (Debian package npm)" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "install.sh: node is not installed (Debian package nodejs)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir" || exit 1
cd "$dir" || exit 1
dir=$(pwd)
echo '{ "name": "libvhdx-vhdlib-tests", "private": true }' > package.json
log="$dir/npm.log"
if ! timeout 300 npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "${DEPS[@]}" > "$log" 2>&1; then
	echo "install.sh: npm install of vhd-lib's dependencies failed: $(tail -n 3 "$log")" >&2
	exit 1
fi
if ! tgz=$(timeout 120 npm pack --silent "vhd-lib@$VHDLIB_VERSION" 2>> "$log") || [ ! -f "$tgz" ]; then
	echo "install.sh: npm pack vhd-lib@$VHDLIB_VERSION failed: $(tail -n 3 "$log")" >&2
	exit 1
fi
mkdir -p node_modules/vhd-lib && tar xzf "$tgz" -C node_modules/vhd-lib --strip-components=1 && rm -f "$tgz" || exit 1
echo "$stamp" > .installed
