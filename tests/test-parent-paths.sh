#!/bin/bash
# test-parent-paths.sh - what `vhdx create --parent` stores as the parent's
# path (issue #17 item 14, issue #21), for VHDX and VHD, with the parent in
# the child's folder, a sibling folder and a folder below it:
#   VHDX relative_path        .\base.vhdx, ..\other\base.vhdx, .\sub\base.vhdx
#                             (Hyper-V's form: '\', a leading .\ unless it climbs)
#   VHDX absolute_win32_path  the parent's absolute path with '\' (no drive letter
#                             on Linux; followed only through a --path-map)
#   VHD  W2ru / W2ku          the same two paths, as Windows writes them
#   VHD  Parent Unicode Name  the relative path with '/': base.vhd, ../other/base.vhd,
#                             sub/base.vhd (vhd-lib resolves it against the child)
# Then the whole tree moves elsewhere and every child opens without options
# and reads the same bytes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires sha256sum
cd "$T"

# key FILE KEY: the value of parent path KEY in `vhdx info --no-parent`
key() { "$VHDX" info --no-parent "$1" | awk -v k="$2" '$0 ~ "key: " k "$" { getline; sub(/^ *value: /, ""); print; exit }'; }
put() { head -c "$3" /dev/urandom | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }

mkdir -p tree/vm/sub tree/other
for ext in vhdx vhd; do
	"$VHDX" create --size 8M tree/vm/base.$ext > /dev/null || fail "create base.$ext"
	put tree/vm/base.$ext 0 2M
	cp tree/vm/base.$ext tree/other/base.$ext
	cp tree/vm/base.$ext tree/vm/sub/base.$ext
	# each copy its own bytes: the bytes read prove which parent was opened (VHD ids stay equal)
	put tree/other/base.$ext 4M 4096
	put tree/vm/sub/base.$ext 4M 4096
	# child in vm/ over: vm/base (same folder), other/base (sibling), vm/sub/base (deeper)
	"$VHDX" create --parent tree/vm/base.$ext tree/vm/same.$ext > /dev/null || fail "create same.$ext"
	"$VHDX" create --parent tree/other/base.$ext tree/vm/sibling.$ext > /dev/null || fail "create sibling.$ext"
	"$VHDX" create --parent tree/vm/sub/base.$ext tree/vm/deeper.$ext > /dev/null || fail "create deeper.$ext"
	abs=$(cd tree && pwd -P | tr / '\\')
	if [ $ext = vhdx ]; then rk=relative_path ak=absolute_win32_path; else rk=W2ru ak=W2ku; fi
	expect_eq "$ext same folder: $rk" "$(key tree/vm/same.$ext $rk)" ".\\base.$ext"
	expect_eq "$ext sibling folder: $rk" "$(key tree/vm/sibling.$ext $rk)" "..\\other\\base.$ext"
	expect_eq "$ext deeper folder: $rk" "$(key tree/vm/deeper.$ext $rk)" ".\\sub\\base.$ext"
	expect_eq "$ext same folder: $ak" "$(key tree/vm/same.$ext $ak)" "$abs\\vm\\base.$ext"
	expect_eq "$ext sibling folder: $ak" "$(key tree/vm/sibling.$ext $ak)" "$abs\\other\\base.$ext"
	expect_eq "$ext deeper folder: $ak" "$(key tree/vm/deeper.$ext $ak)" "$abs\\vm\\sub\\base.$ext"
	if [ $ext = vhd ]; then
		expect_eq "vhd same folder: parent name" "$(key tree/vm/same.vhd parent_name)" "base.vhd"
		expect_eq "vhd sibling folder: parent name" "$(key tree/vm/sibling.vhd parent_name)" "../other/base.vhd"
		expect_eq "vhd deeper folder: parent name" "$(key tree/vm/deeper.vhd parent_name)" "sub/base.vhd"
	fi
	for c in same sibling deeper; do
		put tree/vm/$c.$ext 1049088 5000
		"$VHDX" convert -O raw tree/vm/$c.$ext $c.$ext.raw || fail "$c.$ext does not read"
	done
done
pass "create --parent stores .\\, ..\\other\\ and .\\sub\\ relative paths, the absolute path, and a '/' VHD parent name"

# the tree moves (another absolute path): every child opens without options, same bytes
mkdir moved
mv tree moved/tree2
for ext in vhdx vhd; do
	for c in same sibling deeper; do
		"$VHDX" convert -O raw moved/tree2/vm/$c.$ext x.raw 2> err || fail "moved $c.$ext does not open: $(cat err)"
		expect_eq "moved $c.$ext" "$(sha256 x.raw)" "$(sha256 $c.$ext.raw)"
		case $c in same) p=vm/base.$ext ;; sibling) p=vm/../other/base.$ext ;; deeper) p=vm/sub/base.$ext ;; esac
		"$VHDX" info moved/tree2/vm/$c.$ext | grep -q "opened_path: moved/tree2/$p\$" ||
			fail "moved $c.$ext: not opened through $p: $("$VHDX" info moved/tree2/vm/$c.$ext | grep opened_path)"
	done
done
pass "after moving the folder tree, every child (VHDX and VHD) opens without options and reads the same"
