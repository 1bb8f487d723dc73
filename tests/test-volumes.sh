#!/bin/bash
# test-volumes.sh - partition tables (issue #16): `vhdx info --json` agrees
# with sfdisk --json, and every vhdxfs MNT/pN equals the slice of MNT/disk
# that sfdisk names, on
#   - GPT disks made by sgdisk with 1, 5 and 128 partitions, 512- and
#     4096-byte sectors (4096: sgdisk on a loop device with 4 KiB sectors);
#   - an MBR disk with an extended partition and logicals made by sfdisk;
#   - the Windows-made images of ../shared/conformance (MBR FAT16, NTFS and
#     FAT32; GPT basic data), whose file systems and labels must be what
#     blkid finds;
# and damaged tables: a primary GPT header read from the backup (and said),
# both entry arrays with bad CRCs, entries past the end (GPT, MBR), and a
# looping EBR chain, each with its exact message (vhdx info, map, vhdxfs).
# Before issue #16 there was no partition table in `vhdx info` and no pN.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires sgdisk sfdisk python3 jq
requires_fuse
PY="python3 $top_srcdir/tests/volumes.py"

# check_image IMG RAW WHAT [SS]: info agrees with sfdisk, every pN equals its slice
# (sfdisk reads a file with 512-byte sectors: 4096 ones through a loop device)
check_image() {
	local img=$1 raw=$2 what=$3 ss=${4:-512} dev=$2
	[ "$ss" = 512 ] || loop_attach dev "$raw" -r -b "$ss" || fail "losetup -b $ss: $(cat "$T/losetup.err")"
	sfdisk --json "$dev" > "$T/sfdisk.json" 2> "$T/sfdisk.err" || fail "$what: sfdisk --json: $(cat "$T/sfdisk.err")"
	[ "$ss" = 512 ] || loop_detach "$dev" "$raw"
	"$VHDX" info --json "$img" > "$T/info.json" || fail "$what: vhdx info --json failed"
	$PY compare "$T/info.json" "$T/sfdisk.json" > "$T/py.out" 2>&1 || fail "$what: vhdx info disagrees with sfdisk: $(cat "$T/py.out")"
	fuse_mount "$T/mnt" "$img"
	$PY slices "$T/mnt" "$T/sfdisk.json" > "$T/py2.out" 2>&1 || fail "$what: $(cat "$T/py2.out")"
	fuse_unmount "$T/mnt"
	pass "$what: $(cat "$T/py.out"), $(cat "$T/py2.out")"
}

# make_gpt RAW SS N: a 48 MiB disk of random bytes with an sgdisk GPT of N partitions
make_gpt() {
	local raw=$1 ss=$2 n=$3 dev="" args=() i
	head -c $((48 << 20)) /dev/urandom > "$raw"
	local types=(0700 8300 8200 0c01 ef00 4201 8e00 fd00)
	for ((i = 1; i <= n; i++)); do
		args+=(-n "$i:0:+256K" -t "$i:${types[$(((i - 1) % 8))]}" -c "$i:part $i")
	done
	if [ "$ss" = 4096 ]; then
		loop_attach dev "$raw" -b 4096 || fail "losetup -b 4096: $(cat "$T/losetup.err")"
		sgdisk -a 8 -o "${args[@]}" "$dev" > "$T/sgdisk.out" 2>&1 || fail "sgdisk on $dev: $(cat "$T/sgdisk.out")"
		sync
		loop_detach "$dev" "$raw"
	else
		sgdisk -a 8 -o "${args[@]}" "$raw" > "$T/sgdisk.out" 2>&1 || fail "sgdisk: $(cat "$T/sgdisk.out")"
	fi
}

# ---- GPT by sgdisk: 1, 5, 128 partitions; 512- and 4096-byte sectors
can_4k=yes
[ "$(id -u)" = 0 ] && [ -e /dev/loop-control ] || can_4k=no
for ss in 512 4096; do
	if [ "$ss" = 4096 ] && [ "$can_4k" = no ]; then
		echo "# 4096-byte sectors skipped: sgdisk needs a loop device with 4 KiB sectors (root)"
		continue
	fi
	for n in 1 5 128; do
		raw="$T/gpt$n-$ss.raw"
		make_gpt "$raw" "$ss" "$n"
		"$VHDX" convert -f raw --logical-sector-size "$ss" "$raw" "$T/gpt.vhdx" --force > /dev/null ||
			fail "convert of the sgdisk disk failed"
		check_image "$T/gpt.vhdx" "$raw" "sgdisk GPT, $n partitions, $ss-byte sectors" "$ss"
	done
done

# ---- MBR with an extended partition and three logicals, by sfdisk
raw="$T/mbr.raw"
head -c $((32 << 20)) /dev/urandom > "$raw"
printf 'label: dos\nlabel-id: 0x1badcafe\nstart=2048,size=4096,type=7,bootable\nstart=6144,size=4096,type=83\nstart=10240,size=40960,type=5\nstart=12288,size=4096,type=83\nstart=18432,size=8192,type=c\nstart=28672,size=2048,type=82\n' |
	sfdisk -q "$raw" > "$T/sfdisk.out" 2>&1 || fail "sfdisk: $(cat "$T/sfdisk.out")"
"$VHDX" convert -f raw "$raw" "$T/mbr.vhdx" > /dev/null || fail "convert of the sfdisk disk failed"
check_image "$T/mbr.vhdx" "$raw" "sfdisk MBR, 2 primaries + extended with 3 logicals"
[ "$(jq -c '[.partitions.entries[].number]' "$T/info.json")" = "[1,2,3,5,6,7]" ] || fail "MBR numbers: $(jq -c '[.partitions.entries[].number]' "$T/info.json")"
expect_fail_msg "partition 3 is an extended partition: a container of the logical partitions" \
	"$VHDX" map --partition 3 "$T/mbr.vhdx"
"$VHDX" convert --partition 6 "$T/mbr.vhdx" "$T/p6.raw" || fail "convert --partition 6"
cmp "$T/p6.raw" <(tail -c +$((18432 * 512 + 1)) "$raw" | head -c $((8192 * 512))) || fail "convert --partition 6 differs from the slice"
pass "vhdx convert --partition 6 is the logical partition's slice; map --partition 3 refuses the extended one"

# ---- the Windows-made images: tables, file systems and labels
if [ -f "$CONFORMANCE/MANIFEST.tsv" ]; then
	for name in disk2vhd-256M.vhdx win10-fixed-10M.vhdx win81-dynamic-100M.vhdx ws2022-ntfs-5M.vhdx win11-fixed-6M.vhd; do
		img=$(conformance_image "$name")
		"$VHDX" convert -O raw "$img" "$T/conf.raw" > /dev/null || fail "$name: convert"
		check_image "$img" "$T/conf.raw" "$name (Windows-made)"
		if command -v blkid > /dev/null; then
			jq -r '.partitions.entries[] | "\(.number) \(.first_byte) \(.size) \(.fs) \(.label)"' "$T/info.json" |
				while read -r num first size fs label; do
					tail -c +$((first + 1)) "$T/conf.raw" | head -c "$size" > "$T/slice"
					btype=$(blkid -p -o value -s TYPE "$T/slice" 2>/dev/null || true)
					blabel=$(blkid -p -o value -s LABEL "$T/slice" 2>/dev/null || true)
					case "$fs" in fat12|fat16|fat32) fs=vfat ;; esac
					[ "$fs" = "${btype:-}" ] || fail "$name p$num: we found '$fs', blkid '$btype'"
					[ "${label:-}" = "${blabel:-}" ] || fail "$name p$num: label '$label', blkid '$blabel'"
				done || exit 1
		fi
	done
	pass "conformance: the file systems and labels found are blkid's"
else
	echo "# conformance images skipped: $CONFORMANCE not found"
fi

# ---- damage: a primary GPT header read from the backup, and said
make_gpt "$T/d.raw" 512 5
want=$($PY gpt-damage "$T/d.raw" 512 primary-header)
"$VHDX" convert -f raw "$T/d.raw" "$T/d.vhdx" --force > /dev/null || fail "convert"
"$VHDX" info --json "$T/d.vhdx" > "$T/info.json" || fail "vhdx info of a damaged primary GPT failed"
expect_eq "from_backup" "$(jq -r .partitions.from_backup "$T/info.json")" true
expect_eq "note" "$(jq -r .partitions.note "$T/info.json")" "$want"
expect_eq "partitions from the backup" "$(jq -c '[.partitions.entries[].number]' "$T/info.json")" "[1,2,3,4,5]"
"$VHDX" info "$T/d.vhdx" | grep -q "READ FROM THE BACKUP GPT" || fail "vhdx info text does not say the backup was read"
fuse_mount "$T/mnt" "$T/d.vhdx"
grep -qF "vhdxfs: $T/d.vhdx: partition table: $want" "$T/vhdxfs.err" || fail "vhdxfs did not say the backup was read: $(cat "$T/vhdxfs.err")"
[ -f "$T/mnt/p5" ] || fail "no p5 from the backup GPT"
fuse_unmount "$T/mnt"
pass "damaged primary GPT header: the backup is read and vhdx info and vhdxfs say why"

# ---- damage with exact errors: both entry arrays, entries past the end, a looping EBR chain
damage_case() {
	local what=$1 raw=$2 want=$3
	"$VHDX" convert -f raw "$raw" "$T/d.vhdx" --force > /dev/null || fail "convert"
	"$VHDX" info --json "$T/d.vhdx" > "$T/info.json" || fail "$what: vhdx info failed"
	expect_eq "$what: vhdx info error" "$(jq -r .partitions.error "$T/info.json")" "$want"
	expect_fail_msg "" "$VHDX" map --partition 1 "$T/d.vhdx"
	expect_eq "$what: vhdx map error" "$(cat "$T/err")" "vhdx map: $want"
	fuse_mount "$T/mnt" "$T/d.vhdx"
	grep -qF "vhdxfs: $T/d.vhdx: no partition files: $want" "$T/vhdxfs.err" || fail "$what: vhdxfs: $(cat "$T/vhdxfs.err")"
	[ -z "$(ls "$T/mnt" | grep '^p')" ] || fail "$what: partition files from a damaged table"
	cmp "$T/mnt/disk" "$raw" || fail "$what: disk differs"
	fuse_unmount "$T/mnt"
	pass "$what: $want"
}
make_gpt "$T/d.raw" 512 5
want=$($PY gpt-damage "$T/d.raw" 512 arrays)
damage_case "bad CRC of both GPT entry arrays" "$T/d.raw" "$want"
make_gpt "$T/d.raw" 512 5
want=$($PY gpt-damage "$T/d.raw" 512 past-end)
damage_case "GPT entry past the end" "$T/d.raw" "$want"
cp "$raw" "$T/d.raw"
want=$($PY mbr-damage "$T/d.raw" past-end)
damage_case "MBR entry past the end" "$T/d.raw" "$want"
cp "$raw" "$T/d.raw"
want=$($PY mbr-damage "$T/d.raw" ebr-loop)
damage_case "looping EBR chain" "$T/d.raw" "$want"

# ---- partition files are served zero-copy like disk
fuse_mount "$T/mnt" "$T/mbr.vhdx"
before=$(sed -n 's/^zero_copy_reads=//p' "$T/mnt/.vhdxfs/stats")
cat "$T/mnt/p5" > /dev/null
after=$(sed -n 's/^zero_copy_reads=//p' "$T/mnt/.vhdxfs/stats")
[ "$after" -gt "$before" ] || fail "reads of p5 were not spliced (zero_copy_reads $before -> $after)"
[ ! -w "$T/mnt/p5" ] || [ "$(id -u)" = 0 ] || fail "p5 is writable on a read-only mount"
echo x | dd of="$T/mnt/p5" conv=notrunc 2> /dev/null && fail "a write to p5 of a read-only mount succeeded"
fuse_unmount "$T/mnt"
pass "p5 is spliced from the image file (zero_copy_reads $before -> $after) and read-only"

# ---- a rw mount: writes through pN reach disk (and its cache), a new table is re-read after a flush
make_gpt "$T/rw.raw" 512 5
"$VHDX" convert -f raw "$T/rw.raw" "$T/rw.vhdx" --force > /dev/null || fail "convert"
fuse_mount "$T/mnt" "$T/rw.vhdx" -o rw
p2_off=$("$VHDX" info --json "$T/rw.vhdx" | jq -r '.partitions.entries[] | select(.number == 2) | .first_byte')
cat "$T/mnt/disk" > /dev/null # the disk's pages are cached now
head -c 8192 /dev/urandom > "$T/chunk"
dd if="$T/chunk" of="$T/mnt/p2" bs=4096 seek=3 conv=notrunc,fsync 2> /dev/null || fail "write to p2 of a rw mount"
cmp "$T/chunk" <(tail -c +$((p2_off + 3 * 4096 + 1)) "$T/mnt/disk" | head -c 8192) || fail "disk does not show the write to p2"
echo x | dd of="$T/mnt/p2" bs=1 seek=$((256 * 1024)) conv=notrunc 2> "$T/dd.err" && fail "a write past the end of p2 succeeded"
grep -q "No space left on device" "$T/dd.err" || fail "write past the end of p2: $(cat "$T/dd.err")"
sgdisk -d 5 -n 9:0:+1M "$T/mnt/disk" > "$T/sgdisk.out" 2>&1 || fail "sgdisk on the mounted disk: $(cat "$T/sgdisk.out")"
sleep 1.2 # the entry timeout of partition names on a rw mount
expect_eq "partition files after a new table" "$(ls "$T/mnt" | grep '^p' | sort -V | tr '\n' ' ')" "p1 p2 p3 p4 p9 "
# a re-read of the table that fails with EIO keeps the partition files (a file
# system mounted on one must not lose it to a read error): reads of the GPT fail
echo "op=read voff=0-1048575 err=EIO" > "$T/mnt/.vhdxfs/faults" || fail "adding a read fault rule"
dd if=/dev/zero of="$T/mnt/disk" bs=4096 seek=$((p2_off / 4096 + 8)) count=1 oflag=direct conv=notrunc,fsync \
	2> /dev/null || fail "a write to disk under a read fault of the table"
sleep 1.2
expect_eq "partition files after a failed re-read" "$(ls "$T/mnt" | grep '^p' | sort -V | tr '\n' ' ')" "p1 p2 p3 p4 p9 "
echo clear > "$T/mnt/.vhdxfs/faults" || fail "clear the rules"
fuse_unmount "$T/mnt"
"$VHDX" convert -O raw "$T/rw.vhdx" "$T/rw2.raw" > /dev/null || fail "convert"
cmp "$T/chunk" <(tail -c +$((p2_off + 3 * 4096 + 1)) "$T/rw2.raw" | head -c 8192) || fail "the write to p2 is not in the image"
pass "rw: writes to p2 land in the image and in disk's view, stop at its end; a new table shows p9 after sgdisk"

# ---- -o nopartitions
fuse_mount "$T/mnt" "$T/mbr.vhdx" -o nopartitions
[ -z "$(ls "$T/mnt" | grep '^p')" ] || fail "-o nopartitions still shows partition files"
fuse_unmount "$T/mnt"
pass "-o nopartitions: disk only"
