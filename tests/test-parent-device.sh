#!/bin/bash
# test-parent-device.sh - a parent locator that leads to a block device
# (issue 15, item 4).  A child's relative path "..\..\..\..\dev\loopN"
# made `vhdx merge` open the loop device read-write and write into it.  A
# parent found through a locator must be a regular file: every command
# that opens the chain (and vhdxfs, the nbdkit plugin) refuses the device
# with the same message, the device's bytes stay as they were, and naming
# the device explicitly (--parent) still works for reading.  VHDX (relative_path) and VHD (W2ru).
# Needs root and a free loop device (losetup -f); the device is made over a
# scratch file in $T and detached at the end.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires losetup python3

[ "$(id -u)" = 0 ] || skip "loop devices need root"
cd "$T" || fail "cd $T"

for fmt in vhdx vhd; do
	cext=avhdx
	[ $fmt = vhd ] && cext=vhd
	mkdir -p "$fmt/a/b"
	"$VHDX" create --size 8M --block-size 1M "$fmt/a/b/base.$fmt" || fail "$fmt: create base"
	head -c 1M /dev/urandom | "$VHDX" write --offset 1048576 "$fmt/a/b/base.$fmt" || fail "$fmt: write base"
	"$VHDX" create --parent "$fmt/a/b/base.$fmt" "$fmt/a/b/child.$cext" || fail "$fmt: create child"
	head -c 1M /dev/urandom | "$VHDX" write "$fmt/a/b/child.$cext" || fail "$fmt: write child"
	cp "$fmt/a/b/base.$fmt" "$fmt/dev.img"
	dev=$(losetup -f --show "$fmt/dev.img" 2>"$T/losetup.err") || skip "no loop device: $(cat "$T/losetup.err")"
	cleanup_fn "losetup -d '$dev'"
	# named by the user, a device is allowed: the locator now climbs to it
	"$VHDX" reparent --parent "$dev" "$fmt/a/b/child.$cext" > /dev/null || fail "$fmt: reparent to $dev"
	rm "$fmt/a/b/base.$fmt"
	name=${dev##*/}
	rel="$fmt/a/b/$("$VHDX" info --json --no-parent "$fmt/a/b/child.$cext" | python3 -c '
import json, sys
d = json.load(sys.stdin)["layers"][0]["parent"]
print([p["value"] for p in d["paths"] if p["key"] in ("relative_path", "W2ru")][0].replace("\\", "/"))')"
	case "$rel" in */../dev/$name) ;; *) fail "$fmt: relative locator is $rel, expected one climbing to /dev/$name" ;; esac
	link=$("$VHDX" info --json --no-parent "$fmt/a/b/child.$cext" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["parent"]["linkage"])')
	before=$(sha256 "$dev")
	# VHDX: relative_path, absolute_win32_path; VHD: W2ru, W2ku, the parent's Unicode name
	tried="\\dev\\$name (absolute path from the image: followed only through a path map); $rel (a block device: a parent found through a locator must be a regular file (name a device as the explicit parent)); $fmt/a/b/$name (not found)"
	notfound="$fmt/a/b/child.$cext: parent \"$name\" (identity {$link}) not found. Tried: $tried"
	expect_err "$fmt: merge through a locator leading to $dev" \
		"vhdx merge: merge of $fmt/a/b/child.$cext: the chain cannot be opened, nothing was changed: $notfound" \
		"$VHDX" merge "$fmt/a/b/child.$cext"
	expect_eq "$fmt: $dev after the merge" "$(sha256 "$dev")" "$before"
	for cmd in convert map hash; do
		args=("$fmt/a/b/child.$cext")
		[ $cmd = convert ] && args=(-O raw "$fmt/a/b/child.$cext" "$fmt/out.raw")
		"$VHDX" $cmd "${args[@]}" > out 2> err && fail "$fmt: $cmd read through the device"
		grep -qF "$notfound" err || fail "$fmt: vhdx $cmd: $(cat err)"
	done
	# the FUSE driver and the nbdkit plugin open chains the same way
	if [ -x "$VHDXFS" ] && [ -c /dev/fuse ]; then
		mkdir -p "$fmt/mnt"
		cleanup_fn "fusermount3 -u '$T/$fmt/mnt' 2>/dev/null"
		rc=0; timeout 20 "$VHDXFS" -f "$fmt/a/b/child.$cext" "$fmt/mnt" > out 2> err || rc=$?
		expect_eq "$fmt: vhdxfs exit code" "$rc" 1
		expect_eq "$fmt: vhdxfs error" "$(cat err)" "vhdxfs: $notfound"
	fi
	plugin="$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so"
	# (not in a sanitizer build: nbdkit would need the ASan runtime preloaded, see test-nbdkit.sh)
	if [ -f "$plugin" ] && command -v nbdkit > /dev/null && command -v nbdinfo > /dev/null &&
		! grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile" 2>/dev/null; then
		timeout 20 nbdkit -U - "$plugin" file="$fmt/a/b/child.$cext" --run 'nbdinfo "$uri"' > out 2> err &&
			fail "$fmt: nbdkit served the chain through $dev"
		grep -qF "$(echo "$notfound" | sed "s|$fmt/a/b/|$T/$fmt/a/b/|g")" err || fail "$fmt: nbdkit: $(cat err)"
	fi
	expect_eq "$fmt: $dev after convert, map, hash, vhdxfs, nbdkit" "$(sha256 "$dev")" "$before"
	# named explicitly, the device is the parent (for reading)
	"$VHDX" convert -O raw --parent "$dev" "$fmt/a/b/child.$cext" "$fmt/via-dev.raw" || fail "$fmt: --parent $dev"
	cmp <(head -c 2097152 "$fmt/via-dev.raw" | tail -c 1048576) <("$VHDX" convert -O raw "$fmt/dev.img" - | head -c 2097152 | tail -c 1048576) ||
		fail "$fmt: the explicit device parent reads other bytes"
	expect_eq "$fmt: $dev after reading it" "$(sha256 "$dev")" "$before"
	pass "$fmt: a locator leading to $dev is refused by merge/convert/map/hash/vhdxfs/nbdkit, the device is unchanged; --parent $dev reads"
done
