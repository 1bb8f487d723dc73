#!/bin/bash
# test-fuse-lock.sh - two users of one image through vhdxfs (issue #14).
# Before locks, two `vhdxfs -o rw` mounts of one image both succeeded and
# the first one's fsync'd block was lost at unmount, unnoticed.  Now:
#   - a second rw mount is refused before mounting (exit 1, the exact
#     message, nothing mounted); so are vhdx write, merge, compact, resize,
#     reparent, check --repair on a rw-mounted leaf, compact of the parent
#     of a rw-mounted leaf, and merge --delete of a layer of a read-only
#     chain mount; every file of the chain keeps its sha256;
#   - a mount on a directory that is already a mount point is refused
#     unless -o over-mount;
#   - -o force-share mounts read-only beside a writer, with a warning;
#   - kill -9 of a rw vhdxfs frees its lock at once, and the next writer
#     finds every fsync'd write;
#   - the FUSE worker threads of one mount never conflict with each other.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires jq
MiB=1048576
dbl="$T/dbl.vhdx"
lock_images "$dbl"

# refused WANT-STDERR CMD...: CMD exits 1 with exactly WANT-STDERR and changes no file
refused() { expect_refused "$base $child $dbl" "$@"; }
put() { # put MNT OFFSET-MIB FILE: 1 MiB of FILE through MNT/disk, fsync'd
	dd if="$3" of="$1/disk" bs=1M seek="$2" count=1 conv=notrunc,fsync status=none || fail "dd into $1 at $2 MiB"
}
head -c $MiB /dev/urandom > "$T/a.bin"
head -c $MiB /dev/urandom > "$T/b.bin"

# ---- two rw mounts of one image: the second is refused, nothing lost
fuse_mount "$T/m1" "$dbl" -o rw
pid1=$FUSE_PID
held="in use for writing by another process (pid $pid1, vhdxfs)"
mkdir -p "$T/m2"
cleanup_fn "fuse_is_mounted '$T/m2' && fusermount3 -u '$T/m2'" # should a refused mount succeed after all
refused "vhdxfs: $dbl: $held; cannot open it for writing" "$VHDXFS" -o rw "$dbl" "$T/m2"
fuse_is_mounted "$T/m2" && fail "the refused mount left $T/m2 mounted"
refused "vhdxfs: $dbl: $held; cannot open it for reading" "$VHDXFS" "$dbl" "$T/m2"
put "$T/m1" 3 "$T/a.bin"
refused "vhdx write: $dbl: $held; cannot open it for writing" "$VHDX" write --offset $((5 * MiB)) "$dbl"
refused "vhdx compact: $dbl: $held; cannot open it for writing" "$VHDX" compact "$dbl"
refused "vhdx resize: $dbl: $held; cannot open it for writing" "$VHDX" resize --size 128M "$dbl"
refused "vhdx check: $dbl: $held; cannot open it for writing" "$VHDX" check --repair "$dbl"
# a read-only peek beside the writer: -o force-share, with its warning
fuse_mount "$T/m2" "$dbl" -o force-share
grep -qx "vhdxfs: warning: $dbl is in use for writing by another process; with force-share what is read may be inconsistent" \
	"$T/vhdxfs.err" || fail "no force-share warning: $(cat "$T/vhdxfs.err")"
cmp <(dd if="$T/m2/disk" bs=1M skip=3 count=1 status=none) "$T/a.bin" || fail "force-share mount does not see the fsync'd block"
fuse_unmount "$T/m2"
"$VHDXFS" -o rw,force-share "$dbl" "$T/m2" 2> "$T/err" && fail "-o rw,force-share mounted"
expect_eq "-o rw,force-share" "$(cat "$T/err")" \
	"vhdxfs: -o force-share is for read-only mounts; it cannot be combined with -o rw"
FUSE_PID=$pid1
fuse_unmount "$T/m1"
cmp <("$VHDX" convert -O raw "$dbl" - | dd bs=1M skip=3 count=1 iflag=fullblock status=none) "$T/a.bin" ||
	fail "the fsync'd block at 3 MiB is not in the image after unmount"
pass "a second rw mount, vhdx write, compact, resize, check --repair refused while mounted rw; force-share peeks and warns; no write lost"

# ---- a rw mount of a chain's leaf: maintenance of the leaf and of its parent refused
fuse_mount "$T/m1" "$child" -o rw
pid1=$FUSE_PID
put "$T/m1" 6 "$T/b.bin"
held="in use for writing by another process (pid $pid1, vhdxfs)"
refused "vhdx merge: merge of $child: the chain cannot be opened, nothing was changed: $child: $held; cannot open it for reading" \
	"$VHDX" merge --no-progress "$child"
refused "vhdx reparent: $child: $held; cannot open it for writing" "$VHDX" reparent --parent "$base" "$child"
refused "vhdx check: $child: $held; cannot open it for writing" "$VHDX" check --repair "$child"
refused "vhdx compact: $child: $held; cannot open it for writing" "$VHDX" compact "$child"
refused "vhdx compact: $base: in use for reading by another process (pid $pid1, vhdxfs); cannot open it for writing" \
	"$VHDX" compact "$base"
expect_eq "info of the mounted chain" "$("$VHDX" info --json "$child" | jq -c '[.in_use, .layers[].in_use]')" \
	'["write","write","read"]'
fuse_unmount "$T/m1"
pass "rw leaf mount: merge, reparent, check --repair, compact of the leaf and compact of its parent refused"

# ---- a read-only chain mount: merge --delete of one of its layers refused
fuse_mount "$T/m1" "$child"
pid1=$FUSE_PID
refused "vhdx merge: merge of $child: nothing was changed: $child: in use for reading by another process (pid $pid1, vhdxfs); cannot open it for writing" \
	"$VHDX" merge --no-progress --delete "$child"
[ -e "$child.merging" ] && fail "the refused merge left a record"

# ---- stacked mounts are refused unless -o over-mount
"$VHDXFS" "$dbl" "$T/m1" 2> "$T/err" && fail "a mount on top of a mount point succeeded"
expect_eq "mount on a mount point" "$(cat "$T/err")" \
	"vhdxfs: $T/m1 is already a mount point (unmount it first, or use -o over-mount to mount on top of it)"
"$VHDXFS" -f -o over-mount "$dbl" "$T/m1" 2> "$T/over.err" &
over_pid=$!
for ((i = 0; i < 100; i++)); do
	[ "$(awk -v m="$T/m1" '$2 == m' /proc/mounts | wc -l)" = 2 ] && break
	sleep 0.1
done
expect_eq "mounts on $T/m1 with -o over-mount" "$(awk -v m="$T/m1" '$2 == m' /proc/mounts | wc -l)" 2
fusermount3 -u "$T/m1" || fail "unmounting the top mount"
wait "$over_pid" || fail "vhdxfs -o over-mount exited $?: $(cat "$T/over.err")"
FUSE_PID=$pid1
fuse_unmount "$T/m1"
pass "read-only chain mount: merge --delete of its leaf refused; a stacked mount only with -o over-mount"

# ---- kill -9 of a rw vhdxfs: the lock goes at once, the fsync'd writes stay
fuse_mount "$T/m1" "$dbl" -o rw
put "$T/m1" 9 "$T/b.bin"
kill -9 "$FUSE_PID"
wait "$FUSE_PID" 2> /dev/null
FUSE_PID=
fusermount3 -u "$T/m1" 2> /dev/null || fusermount3 -u -z "$T/m1"
printf 'next writer' | "$VHDX" write --offset $((20 * MiB)) "$dbl" 2> "$T/err" ||
	fail "the next writer after kill -9 of vhdxfs: $(cat "$T/err")"
cmp <("$VHDX" convert -O raw "$dbl" - | dd bs=1M skip=9 count=1 iflag=fullblock status=none) "$T/b.bin" ||
	fail "the fsync'd block at 9 MiB is lost after kill -9"
cmp <("$VHDX" convert -O raw "$dbl" - | dd bs=1M skip=3 count=1 iflag=fullblock status=none) "$T/a.bin" ||
	fail "the block at 3 MiB is lost after kill -9"
pass "kill -9 of vhdxfs -o rw: the next writer opens at once and finds every fsync'd write"

# ---- the worker threads of one mount share its lock
fuse_mount "$T/m1" "$dbl" -o rw
for k in 0 1 2 3 4 5 6 7; do
	dd if="$T/a.bin" of="$T/m1/disk" bs=64K seek=$((32 * 16 + k * 16)) count=16 conv=notrunc,fsync status=none &
	dd if="$T/m1/disk" of=/dev/null bs=64K skip=$((k * 16)) count=16 iflag=direct status=none &
done
wait_ok=0
for j in $(jobs -p); do [ "$j" = "$FUSE_PID" ] && continue; wait "$j" || wait_ok=1; done
[ "$wait_ok" = 0 ] || fail "parallel I/O through one mount failed"
fuse_unmount "$T/m1"
for k in 0 1 2 3 4 5 6 7; do
	cmp <("$VHDX" convert -O raw "$dbl" - | dd bs=64K skip=$((32 * 16 + k * 16)) count=16 iflag=fullblock status=none) "$T/a.bin" ||
		fail "parallel write $k"
done
pass "8 writers and 8 readers through one rw mount: no conflict, every write there"

# ---- vhdx cycle mount: another process (a scanner) holds the scratch disk at the 2nd mount
printf 'op=lock nth=2 err=EBUSY\n' > "$T/busy.rules"
"$VHDX" cycle mount --image "$T/scratch.vhdx" --count 3 --faults "$T/busy.rules" --json > "$T/cycle.json" 2> "$T/cycle.err" ||
	fail "cycle mount with a busy disk exited $?: $(cat "$T/cycle.err")"
expect_eq "cycle mount contention" "$(jq -c '[.cycles[].class, .cycles[1].errors[0].step, .cycles[1].errors[0].errno,
	.cycles[1].errors[0].windows, .cycles[1].errors[0].windows_name, .summary.verdict]' "$T/cycle.json")" \
	'["clean","reported","clean","mount","EBUSY","0x80070020","ERROR_SHARING_VIOLATION","ok"]'
jq -r '.cycles[1].errors[0].message' "$T/cycle.json" | grep -q "in use by another process (injected EBUSY, fault rule 1); cannot open it for writing" ||
	fail "cycle mount contention message: $(jq -r '.cycles[1].errors[0].message' "$T/cycle.json")"
pass "vhdx cycle mount: a disk held by another process at a mount is reported, 0x80070020 ERROR_SHARING_VIOLATION"
