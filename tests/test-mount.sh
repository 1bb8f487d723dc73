#!/bin/bash
# test-mount.sh - `vhdx mount IMAGE DIR` and `vhdx umount DIR` (issue #16)
# on a base + checkpoint chain holding a GPT with an NTFS (mkntfs, mounted
# by ntfs-3g) and an ext4 partition (mkfs.ext4, on a loop device), plus
# an MSR, a partition of unknown contents and a LUKS one (skipped, one line
# each):
#   - files written through a --rw mount read back equal through a
#     read-only one; the rw mount wrote only the leaf, the ro one nothing;
#   - umount leaves no mount, loop device, vhdxfs process or folder;
#   - a busy umount names the process and changes nothing;
#   - a kill -9 of the mount's vhdxfs, and a `vhdx mount` killed half-way,
#     are cleaned up by `vhdx umount`.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires_loop
requires sgdisk mkntfs mkfs.ext4 ntfs-3g jq
D="$T/vol"

# nothing_left: no mount under $D, no loop device over a file under it, no vhdxfs for it, no folder left
nothing_left() {
	local what=$1
	grep -qF " $D/" /proc/mounts && fail "$what: mounts left: $(grep -F " $D/" /proc/mounts)"
	for f in /sys/block/loop*/loop/backing_file; do
		[ -e "$f" ] || continue
		grep -qF "$D/" "$f" && fail "$what: a loop device is left over $(cat "$f")"
	done
	pgrep -f "vhdxfs.* $D/.disk" > /dev/null && fail "$what: a vhdxfs process is left: $(pgrep -af "vhdxfs.* $D/.disk")"
	pgrep -f "ntfs-3g.* $D/" > /dev/null && fail "$what: an ntfs-3g process is left"
	[ -z "$(ls -A "$D")" ] || fail "$what: $D still holds $(ls -A "$D")"
}
# the cleanups of a failed test: vhdx umount, then by hand what is ours
cleanup_fn "'$top_builddir/tools/vhdx' umount '$D' > /dev/null 2>&1"

# ---- the chain: a base with a GPT (NTFS, ext4, MSR, unknown, LUKS) and a checkpoint
"$VHDX" create --size 96M "$T/base.vhdx" > /dev/null || fail "create"
fuse_mount "$T/m" "$T/base.vhdx" -o rw
sgdisk -n 1:0:+24M -t 1:0700 -c 1:"Basic data partition" -n 2:0:+32M -t 2:8300 -n 3:0:+4M -t 3:0c01 \
	-n 4:0:+4M -t 4:8300 -n 5:0:+8M -t 5:8309 "$T/m/disk" > "$T/sgdisk.out" 2>&1 || fail "sgdisk: $(cat "$T/sgdisk.out")"
sleep 1.2 # the partition files of a rw mount appear after the table's re-read
[ -e "$T/m/p5" ] || fail "vhdxfs shows no p5 after sgdisk"
mkntfs -Q -F -L WinData "$T/m/p1" > "$T/mkfs.out" 2>&1 || fail "mkntfs: $(cat "$T/mkfs.out")"
mkfs.ext4 -q -F -L linuxdata "$T/m/p2" > "$T/mkfs.out" 2>&1 || fail "mkfs.ext4: $(cat "$T/mkfs.out")"
printf 'LUKS\xba\xbe\0\2' | dd of="$T/m/p5" conv=notrunc 2> /dev/null
fuse_unmount "$T/m"
"$VHDX" create --parent "$T/base.vhdx" "$T/child.avhdx" > /dev/null || fail "create child"
base_sum=$(sha256 "$T/base.vhdx")

# ---- errors before anything happens
mkdir -p "$D"
touch "$D/x"
expect_fail_msg "$D is not empty" "$VHDX" mount "$T/child.avhdx" "$D"
rm "$D/x"
expect_fail_msg "$D: nothing of 'vhdx mount' is there" "$VHDX" umount "$D"

# ---- --rw: write files
"$VHDX" mount --rw --json "$T/child.avhdx" "$D" > "$T/mount.json" || fail "vhdx mount --rw exited $?: $(cat "$T/mount.json")"
expect_eq "volumes" "$(jq -c '[.volumes[] | [.number, .fs, .mounted, .driver // .reason]]' "$T/mount.json")" \
"[[1,\"ntfs\",true,\"ntfs-3g\"],[2,\"ext4\",true,\"ext4\"],[3,\"\",false,\"Microsoft reserved partition: nothing to mount\"],[4,\"\",false,\"unknown contents: not mounted; $D/.disk/p4 holds its bytes\"],[5,\"luks\",false,\"LUKS: not mounted; open $D/.disk/p5 with cryptsetup open\"]]"
loop=$(jq -r '.volumes[1].loop' "$T/mount.json")
[ "$(cat /sys/block/${loop#/dev/}/loop/backing_file)" = "$D/.disk/p2" ] || fail "$loop is not over $D/.disk/p2"
mkdir -p "$D/p1/docs" "$D/p2/etc"
head -c $((3 << 20)) /dev/urandom > "$T/a.bin"
head -c 777777 /dev/urandom > "$T/b.bin"
cp "$T/a.bin" "$D/p1/docs/report.bin" && cp "$T/b.bin" "$D/p1/small.bin" || fail "write to NTFS"
cp "$T/a.bin" "$D/p2/etc/a.bin" && cp "$T/b.bin" "$D/p2/b.bin" || fail "write to ext4"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount exited $?: $(cat "$T/umount.out")"
nothing_left "umount after --rw"
expect_eq "base after a --rw mount of its child" "$(sha256 "$T/base.vhdx")" "$base_sum"
pass "vhdx mount --rw of base+checkpoint: ntfs-3g and ext4 on $loop, 3 volumes skipped with their reason; umount left nothing"

# ---- without root (as nobody): ext4 through fuse2fs; NTFS through ntfs-3g, which
# is set-user-ID root on Debian, so only when /etc/fuse.conf has user_allow_other
# (vhdxfs then lets root in with allow_root), else skipped saying so.  In a private
# mount namespace whose /dev/fuse (0600 in containers) and /etc/fuse.conf are the
# test's own, so nothing of the machine changes.
if [ "$(id -u)" = 0 ] && command -v fuse2fs > /dev/null && command -v unshare > /dev/null &&
	command -v setpriv > /dev/null && [ -u "$(command -v ntfs-3g)" ]; then
	N="$T/nobody"
	mkdir -p "$N/d"
	cp "$T/base.vhdx" "$T/child.avhdx" "$N/"
	mknod "$N/fuse" c 10 229 && chmod 666 "$N/fuse" || fail "mknod a private /dev/fuse"
	cat > "$N/as-nobody.sh" <<'EOF'
#!/bin/bash
# as-nobody.sh N VHDX CONF: in a private mount namespace, mount N/child.avhdx as nobody, copy two files out, unmount
N=$1 VHDX=$2
printf '%s\n' "$3" > "$N/fuse.conf"
mount --bind "$N/fuse" /dev/fuse && mount --bind "$N/fuse.conf" /etc/fuse.conf || exit 90
exec setpriv --reuid=65534 --regid=65534 --clear-groups -- bash -c '
	"$2" mount --json "$1/child.avhdx" "$1/d" > "$1/mount.json"; echo $? > "$1/rc"
	cat "$1/d/p2/etc/a.bin" > "$1/ext4.bin"; cat "$1/d/p1/docs/report.bin" > "$1/ntfs.bin"
	"$2" umount "$1/d" > "$1/umount.out" 2>&1; echo $? >> "$1/rc"' _ "$N" "$VHDX"
EOF
	chmod 711 "$T"
	chown -R 65534:65534 "$N"
	for conf in "" user_allow_other; do
		rm -f "$N/ntfs.bin" "$N/ext4.bin"
		unshare -m --propagation private bash "$N/as-nobody.sh" "$N" "$VHDX" "$conf" 2> "$N/err" ||
			fail "as nobody ($conf): $(cat "$N/err")"
		expect_eq "vhdx mount and umount as nobody ($conf): exit statuses" "$(tr '\n' ' ' < "$N/rc")" "0 0 "
		cmp "$N/ext4.bin" "$T/a.bin" || fail "as nobody: the ext4 file (fuse2fs) differs"
		expect_eq "ext4 as nobody" "$(jq -c '.volumes[1] | [.fs, .mounted, .driver]' "$N/mount.json")" '["ext4",true,"fuse2fs"]'
		if [ -n "$conf" ]; then
			cmp "$N/ntfs.bin" "$T/a.bin" || fail "as nobody with user_allow_other: the NTFS file differs"
			expect_eq "NTFS as nobody" "$(jq -c '.volumes[0] | [.fs, .mounted, .driver]' "$N/mount.json")" '["ntfs",true,"ntfs-3g"]'
		else
			expect_eq "NTFS as nobody without user_allow_other" "$(jq -r '.volumes[0] | "\(.mounted) \(.reason)"' "$N/mount.json")" \
				"false NTFS without root: ntfs-3g runs as root here and FUSE lets root into your vhdxfs mount only with user_allow_other in /etc/fuse.conf; add it (vhdx mount then mounts vhdxfs with allow_root), or run vhdx mount as root; $N/d/.disk/p1 holds its bytes"
		fi
		pgrep -f "$N/" > /dev/null && fail "as nobody: processes left: $(pgrep -af "$N/")"
	done
	chmod 700 "$T"
	pass "without root: ext4 through fuse2fs; NTFS through ntfs-3g with user_allow_other (vhdxfs -o allow_root), else skipped saying what to do"
else
	echo "# the non-root part needs root to set it up, fuse2fs, unshare, setpriv and a set-user-ID ntfs-3g: not run"
fi

# ---- read-only: the files, and nothing written
child_sum=$(sha256 "$T/child.avhdx")
"$VHDX" mount "$T/child.avhdx" "$D" > "$T/mount.out" || fail "vhdx mount exited $?: $(cat "$T/mount.out")"
grep -qF "  p2: ext4 \"linuxdata\" mounted on $D/p2 (ext4 on /dev/loop" "$T/mount.out" || fail "report: $(cat "$T/mount.out")"
grep -qF "  p1: ntfs \"WinData\" mounted on $D/p1 (ntfs-3g)" "$T/mount.out" || fail "report: $(cat "$T/mount.out")"
cmp "$T/a.bin" "$D/p1/docs/report.bin" && cmp "$T/b.bin" "$D/p1/small.bin" || fail "NTFS files differ"
cmp "$T/a.bin" "$D/p2/etc/a.bin" && cmp "$T/b.bin" "$D/p2/b.bin" || fail "ext4 files differ"
touch "$D/p2/new" 2> /dev/null && fail "a read-only ext4 mount accepted a new file"
touch "$D/p1/new" 2> /dev/null && fail "a read-only NTFS mount accepted a new file"
awk -v m="$D/p2" '$2 == m { print $4 }' /proc/mounts | grep -q '^ro,' || fail "p2 is not mounted read-only: $(grep -F " $D/p2 " /proc/mounts)"
pass "read-only mount: the files written read back equal, nothing can be written"

# ---- busy: named, nothing changed
(cd "$D/p2/etc" && exec sleep 60) &
holder=$!
sleep 0.3
expect_fail_msg "$D is busy, nothing was unmounted: PID $holder \\(sleep\\) cwd $D/p2/etc" "$VHDX" umount "$D"
mounts_before=$(grep -cF " $D/" /proc/mounts)
expect_eq "mounts after a busy umount" "$mounts_before" 3
cmp "$T/a.bin" "$D/p2/etc/a.bin" || fail "p2 unreadable after the busy umount"
exec 7< "$D/.disk/p1"
expect_fail_msg "PID $$ \\([a-z-]+\\) open $D/.disk/p1" "$VHDX" umount "$D"
exec 7<&-
kill "$holder"
wait "$holder" 2> /dev/null
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount exited $?: $(cat "$T/umount.out")"
nothing_left "umount after the holders left"
expect_eq "child after a read-only mount" "$(sha256 "$T/child.avhdx")" "$child_sum"
pass "busy umount names the process (cwd, open file) and changes nothing; the ro mount wrote nothing"

# ---- kill -9 of the mount's vhdxfs
"$VHDX" mount "$T/child.avhdx" "$D" > /dev/null || fail "vhdx mount"
vpid=$(pgrep -f "vhdxfs.* $D/.disk")
[ -n "$vpid" ] || fail "no vhdxfs process for $D/.disk"
kill -9 $vpid
sleep 0.2
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount after kill -9 of vhdxfs exited $?: $(cat "$T/umount.out")"
nothing_left "umount after kill -9 of vhdxfs"
pass "kill -9 of vhdxfs (PID $vpid): vhdx umount cleaned up ($(tr '\n' ';' < "$T/umount.out"))"

# ---- a vhdx mount killed half-way: vhdxfs up, a loop device attached, folders made, nothing mounted on them
mkdir -p "$D/.disk" "$D/p2" "$D/p1"
"$VHDXFS" "$T/child.avhdx" "$D/.disk" || fail "vhdxfs"
loop_attach dev "$D/.disk/p2" -r || fail "losetup: $(cat "$T/losetup.err")"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount of a half-made mount exited $?: $(cat "$T/umount.out")"
grep -qF "detached $dev ($D/.disk/p2)" "$T/umount.out" || fail "umount did not detach $dev: $(cat "$T/umount.out")"
nothing_left "umount of a half-made mount"
pass "a half-made mount (vhdxfs, $dev, empty folders) is cleaned up by vhdx umount"

# ---- --faults: a read error under p2's superblock fails its mount (exit 3), the rest stays mounted
p2=$("$VHDX" info --json "$T/child.avhdx" | jq -r '.partitions.entries[] | select(.number == 2) | .first_byte')
printf 'op=read voff=%d+4096 err=EIO\n' $((p2 + 1024)) > "$T/rules"
"$VHDX" mount --faults "$T/rules" "$T/child.avhdx" "$D" > "$T/mount.out" 2>&1
expect_eq "exit status of vhdx mount with a failing partition" "$?" 3
grep -qF "  p2: FAILED: mount -t ext4 -o ro,noload /dev/loop" "$T/mount.out" || fail "report: $(cat "$T/mount.out")"
grep -qF "  p1: ntfs \"WinData\" mounted on $D/p1 (ntfs-3g)" "$T/mount.out" || fail "report: $(cat "$T/mount.out")"
[ -d "$D/p2" ] && fail "$D/p2 left behind by the failed mount"
cmp "$T/b.bin" "$D/p1/small.bin" || fail "p1 unreadable"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1
expect_eq "exit status of vhdx umount after I/O errors" "$?" 3
grep -qE "^vhdx umount: $D: vhdxfs returned [0-9]+ I/O errors? to the file systems while mounted \(last: EIO: .*injected EIO \(fault rule 1; virtual disk bytes" "$T/umount.out" ||
	fail "umount does not report the I/O errors: $(cat "$T/umount.out")"
nothing_left "umount after a failed partition mount"
pass "--faults: p2's mount fails with the loop device detached (exit 3), p1 stays mounted; umount cleans up and reports the I/O errors (exit 3)"

# ---- a close that fails (vhdxfs's last flush at unmount): vhdx umount says so (exit 3).
# A daemon's exit status reaches nobody; before -o close-status this went unreported.
"$VHDX" mount --rw "$T/child.avhdx" "$D" > "$T/mount.out" 2>&1 || fail "vhdx mount --rw exited $?: $(cat "$T/mount.out")"
cp "$T/b.bin" "$D/p2/close.bin" && sync -f "$D/p2/close.bin" || fail "write to ext4"
printf 'op=flush err=EIO\n' > "$D/.disk/.vhdxfs/faults" || fail "cannot set the rules of the running vhdxfs"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1
expect_eq "exit status of vhdx umount after a failed close" "$?" 3
grep -qE "^vhdx umount: $D: vhdxfs could not close the image cleanly: .*flush: injected EIO \(fault rule 1\)" "$T/umount.out" ||
	fail "umount does not report the failed close: $(cat "$T/umount.out")"
nothing_left "umount after a failed close"
# the close could not make the log clean: a dirty log, no error, replayed at the next open
"$VHDX" check "$T/child.avhdx" > "$T/check.out" 2>&1
grep -q "child.avhdx: vhdx, 0 errors, 1 warning" "$T/check.out" && grep -q "dirty log (LogGuid set)" "$T/check.out" ||
	fail "vhdx check after a failed close: $(cat "$T/check.out")"
"$VHDX" mount "$T/child.avhdx" "$D" > "$T/mount.out" 2>&1 || fail "vhdx mount after a failed close: $(cat "$T/mount.out")"
cmp "$D/p2/close.bin" "$T/b.bin" || fail "the file synced before the failed close differs"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount exited $?: $(cat "$T/umount.out")"
nothing_left "umount after reading back"
pass "a failed close at unmount (vhdxfs's last flush) is reported by vhdx umount (exit 3); the synced file is there after"

# ---- a partition whose first bytes cannot be read (vhdx's own table read, global --faults): failed, not "unknown"
printf 'op=read voff=%d+4096 err=EIO\n' "$p2" > "$T/rules2"
"$VHDX" --faults "$T/rules2" mount "$T/child.avhdx" "$D" > "$T/mount.out" 2>&1
expect_eq "exit status of vhdx mount with an unreadable partition" "$?" 3
grep -qF "  p2: FAILED: its first bytes could not be read (see the partition table note): not mounted" "$T/mount.out" ||
	fail "report: $(cat "$T/mount.out")"
grep -qF "  partition table note: partition 2: reading the first bytes of the volume at byte $p2: " "$T/mount.out" ||
	fail "report: $(cat "$T/mount.out")"
"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount exited $?: $(cat "$T/umount.out")"
nothing_left "umount after an unreadable partition"
pass "a partition whose first bytes cannot be read is reported as failed (exit 3), not as unknown contents"

# ---- a file system on the whole disk (no partition table): DIR/disk
if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	img=$(conformance_image qemu-ext2.vhd)
	"$VHDX" mount --json "$img" "$D" > "$T/mount.json" || fail "vhdx mount of a whole-disk ext2 exited $?: $(cat "$T/mount.json")"
	expect_eq "whole-disk volume" "$(jq -c '[.volumes[] | [.number, .fs, .label, .mountpoint]]' "$T/mount.json")" \
		"[[0,\"ext2\",\"ext2_test\",\"$D/disk\"]]"
	[ -d "$D/disk/lost+found" ] || fail "the whole-disk ext2 is not mounted at $D/disk: $(ls -a "$D/disk")"
	"$VHDX" umount "$D" > "$T/umount.out" 2>&1 || fail "vhdx umount exited $?: $(cat "$T/umount.out")"
	nothing_left "umount of a whole-disk volume"
	pass "a file system on the whole disk (qemu-ext2.vhd) is mounted at DIR/disk"
fi
