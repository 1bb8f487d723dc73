/*
 * test_partition.c - the partition-table codecs (codec/partition_*.c) and
 * the file-system probe (codec/fs_probe.c).  Disks are laid out here by an
 * independent writer (its own CRC-32, its own UTF-16), read through a
 * memory read callback, then damaged one structure at a time: every
 * damage must give its exact error or, for a GPT with a good backup, the
 * backup's table and a note saying why.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/crc_ref.h"
#include "codec/endian.h"
#include "codec/partition.h"

#define MiB (1024u * 1024u)

static uint8_t *disk;
static size_t disk_len;

static int mem_read(void *arg, void *buf, size_t len, uint64_t off)
{
	(void)arg;
	if (off > disk_len || len > disk_len - off)
		return vhdx_err(EIO, "test read past the end: %zu at %llu", len, (unsigned long long)off);
	memcpy(buf, disk + off, len);
	return 0;
}

static void disk_new(size_t len)
{
	free(disk);
	disk = calloc(1, len);
	assert_non_null(disk);
	disk_len = len;
}

/* ---------------------------------------------------------------- MBR */

static void mbr_entry(uint64_t sector_off, unsigned slot, uint8_t status, uint8_t type, uint32_t lba, uint32_t n)
{
	uint8_t *e = disk + sector_off + 446 + 16 * slot;

	e[0] = status;
	e[4] = type;
	vhdx_put_le32(e + 8, lba);
	vhdx_put_le32(e + 12, n);
	disk[sector_off + 510] = 0x55;
	disk[sector_off + 511] = 0xAA;
}

/* 64 MiB disk: p1 (1 MiB, 4 MiB) bootable, p2 (5 MiB, 4 MiB), p3 extended (16 MiB, 40 MiB) with 3 logicals. */
static void make_mbr_disk(void)
{
	const uint32_t ext = 32768; /* sectors */

	disk_new(64 * MiB);
	vhdx_put_le32(disk + 440, 0x12345678u);
	mbr_entry(0, 0, 0x80, 0x07, 2048, 8192);
	mbr_entry(0, 1, 0x00, 0x83, 10240, 8192);
	mbr_entry(0, 2, 0x00, 0x05, ext, 81920);
	/* EBR 1 at the start: logical 5 at +2048, link to sector 10240 of the extended */
	mbr_entry((uint64_t)ext * 512, 0, 0, 0x83, 2048, 4096);
	mbr_entry((uint64_t)ext * 512, 1, 0, 0x05, 10240, 10240);
	/* EBR 2: logical 6, link to 20480 */
	mbr_entry((uint64_t)(ext + 10240) * 512, 0, 0, 0x07, 2048, 4096);
	mbr_entry((uint64_t)(ext + 10240) * 512, 1, 0, 0x05, 20480, 10240);
	/* EBR 3: logical 7, end of the chain */
	mbr_entry((uint64_t)(ext + 20480) * 512, 0, 0, 0x0c, 2048, 2048);
}

static void test_mbr_logicals(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	make_mbr_disk();
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), 0);
	assert_int_equal(t.scheme, VHDX_PART_MBR);
	assert_int_equal(t.mbr_signature, 0x12345678u);
	assert_int_equal(t.n, 6);
	{
		const unsigned num[] = { 1, 2, 3, 5, 6, 7 };
		const uint64_t start[] = { 2048, 10240, 32768, 32768 + 2048, 32768 + 10240 + 2048, 32768 + 20480 + 2048 };
		const uint64_t size[] = { 8192, 8192, 81920, 4096, 4096, 2048 };
		const uint8_t type[] = { 0x07, 0x83, 0x05, 0x83, 0x07, 0x0c };

		for (unsigned i = 0; i < 6; i++) {
			assert_int_equal(t.parts[i].number, num[i]);
			assert_int_equal(t.parts[i].start, start[i] * 512);
			assert_int_equal(t.parts[i].size, size[i] * 512);
			assert_int_equal(t.parts[i].mbr_type, type[i]);
		}
	}
	assert_true(t.parts[0].flags & VHDX_PART_F_BOOTABLE);
	assert_true(t.parts[2].flags & VHDX_PART_F_EXTENDED);
	assert_true(t.parts[3].flags & VHDX_PART_F_LOGICAL);
	assert_string_equal(vhdx_part_mbr_type_name(0x07), "HPFS/NTFS/exFAT");
	assert_string_equal(vhdx_part_type_kind(&t.parts[2], t.scheme), "extended");
	vhdx_part_table_free(&t);
}

static void test_mbr_ebr_loop(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	make_mbr_disk();
	/* EBR 3 links back to EBR 2 (sector 10240 of the extended partition) */
	mbr_entry((uint64_t)(32768 + 20480) * 512, 1, 0, 0x05, 10240, 10240);
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "EBR chain of extended partition 3: the link in the EBR at byte 27262976 points back to the EBR at "
		     "byte 22020096 (a loop)");
	vhdx_part_table_free(&t);
	/* a link to itself */
	make_mbr_disk();
	mbr_entry((uint64_t)32768 * 512, 1, 0, 0x05, 0, 10240);
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "the link in the EBR at byte 16777216 points back to the EBR at byte 16777216 (a loop)");
	vhdx_part_table_free(&t);
}

static void test_mbr_damage(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	make_mbr_disk();
	mbr_entry(0, 1, 0x00, 0x83, 130000, 8192); /* past the end of a 131072-sector disk */
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "MBR entry 2 at byte 462: sectors 130000-138191 lie past the end of the disk (131072 sectors of 512 bytes)");
	vhdx_part_table_free(&t);
	make_mbr_disk();
	disk[(32768 + 10240) * 512 + 511] = 0; /* EBR 2 without its signature */
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "EBR at byte 22020096 (extended partition 3): no 0x55AA signature");
	vhdx_part_table_free(&t);
	make_mbr_disk();
	/* logical 6 reaching past its extended partition */
	mbr_entry((uint64_t)(32768 + 10240) * 512, 0, 0, 0x07, 2048, 90000);
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "lies outside its extended partition (sectors 32768-114687)");
	vhdx_part_table_free(&t);
	/* a status byte other than 0/0x80: not an MBR at all */
	make_mbr_disk();
	disk[446] = 0x12;
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), 0);
	assert_int_equal(t.scheme, VHDX_PART_NONE);
	vhdx_part_table_free(&t);
}

/* ---------------------------------------------------------------- GPT */

static const uint8_t basic_data[16] = { 0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44,
					0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7 };
static const uint8_t linux_fs[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
				      0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };

static void gpt_entry(uint64_t array_off, unsigned idx, const uint8_t type[16], uint64_t first, uint64_t last,
		      uint64_t attr, const char *name)
{
	uint8_t *e = disk + array_off + 128 * idx;

	memcpy(e, type, 16);
	memset(e + 16, (int)(idx + 1), 16);
	vhdx_put_le64(e + 32, first);
	vhdx_put_le64(e + 40, last);
	vhdx_put_le64(e + 48, attr);
	for (size_t i = 0; name[i] && i < 36; i++)
		vhdx_put_le16(e + 56 + 2 * i, (uint8_t)name[i]);
}

static void gpt_header(uint32_t ss, uint64_t lba, uint64_t alt, uint64_t array_lba, uint64_t first, uint64_t last)
{
	uint8_t *h = disk + lba * ss;

	memset(h, 0, ss);
	memcpy(h, "EFI PART", 8);
	vhdx_put_le32(h + 8, 0x00010000);
	vhdx_put_le32(h + 12, 92);
	vhdx_put_le64(h + 24, lba);
	vhdx_put_le64(h + 32, alt);
	vhdx_put_le64(h + 40, first);
	vhdx_put_le64(h + 48, last);
	memset(h + 56, 0xAB, 16);
	vhdx_put_le64(h + 72, array_lba);
	vhdx_put_le32(h + 80, 128);
	vhdx_put_le32(h + 84, 128);
	vhdx_put_le32(h + 88, crc_ref(CRC_REF_IEEE, disk + array_lba * ss, 128 * 128));
	vhdx_put_le32(h + 16, crc_ref(CRC_REF_IEEE, h, 92));
}

/* A GPT disk of SIZE bytes, sectors SS: entries 1 (basic data), 3 (Linux), 6 (basic data); primary and backup. */
static void make_gpt_disk(uint32_t ss, size_t size)
{
	uint64_t n = size / ss, array_sectors = 16384 / ss, first = 2 + array_sectors, last = n - 2 - array_sectors;
	uint64_t part = MiB / ss; /* 1 MiB in sectors */

	disk_new(size);
	mbr_entry(0, 0, 0, 0xEE, 1, (uint32_t)(n - 1));
	for (int copy = 0; copy < 2; copy++) {
		uint64_t array_lba = copy ? n - 1 - array_sectors : 2;

		gpt_entry(array_lba * ss, 0, basic_data, part, 3 * part - 1, 0x8000000000000000ull, "Basic data partition");
		gpt_entry(array_lba * ss, 2, linux_fs, 3 * part, 5 * part - 1, 0, "root");
		gpt_entry(array_lba * ss, 5, basic_data, 5 * part, last, 1, "D\xc3");
		/* a non-ASCII name: U+00E9 */
		vhdx_put_le16(disk + array_lba * ss + 128 * 5 + 56 + 2, 0x00e9);
		gpt_header(ss, copy ? n - 1 : 1, copy ? 1 : n - 1, array_lba, first, last);
	}
}

static void check_gpt(const struct vhdx_part_table *t, uint32_t ss, size_t size)
{
	uint64_t n = size / ss, last = n - 2 - 16384 / ss;

	assert_int_equal(t->scheme, VHDX_PART_GPT);
	assert_int_equal(t->sector_size, ss);
	assert_int_equal(t->n, 3);
	assert_int_equal(t->parts[0].number, 1);
	assert_int_equal(t->parts[1].number, 3);
	assert_int_equal(t->parts[2].number, 6);
	assert_int_equal(t->parts[0].start, MiB);
	assert_int_equal(t->parts[0].size, 2 * MiB);
	assert_int_equal(t->parts[1].start, 3 * MiB);
	assert_int_equal(t->parts[2].start, 5 * MiB);
	assert_int_equal(t->parts[2].size, (last + 1) * ss - 5 * MiB);
	assert_string_equal(t->parts[0].name, "Basic data partition");
	assert_string_equal(t->parts[1].name, "root");
	assert_string_equal(t->parts[2].name, "D\xc3\xa9");
	assert_int_equal(t->parts[0].attributes, 0x8000000000000000ull);
	assert_memory_equal(t->parts[1].type_guid, linux_fs, 16);
	assert_string_equal(vhdx_part_gpt_type_name(t->parts[0].type_guid), "Microsoft basic data");
	assert_string_equal(vhdx_part_gpt_type_name(t->parts[1].type_guid), "Linux filesystem");
}

/*
 * A new GPT disk of DISK_SS-byte sectors (make_gpt_disk, 16 MiB), read
 * through READ with SS-byte sectors (PROBE: and its file systems), holds
 * the partitions it was made with (check_gpt).
 */
static void gpt_reads_back(vhdx_part_read_fn read, uint32_t disk_ss, uint32_t ss, bool probe,
			   struct vhdx_part_table *t)
{
	make_gpt_disk(disk_ss, 16 * MiB);
	assert_int_equal(vhdx_part_table_read(read, NULL, disk_len, ss, probe, t), 0);
	check_gpt(t, disk_ss, 16 * MiB);
}

static void test_gpt_512_4096(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	gpt_reads_back(mem_read, 512, 512, false, &t);
	assert_false(t.from_backup);
	assert_string_equal(t.note, "");
	vhdx_part_table_free(&t);

	gpt_reads_back(mem_read, 4096, 4096, false, &t);
	vhdx_part_table_free(&t);
	/* a 4096-byte GPT on a disk declaring 512-byte sectors is still found, and said */
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), 0);
	check_gpt(&t, 4096, 16 * MiB);
	assert_string_equal(t.note, "the GPT uses 4096-byte sectors, the disk declares 512");
	vhdx_part_table_free(&t);
}

/* A new 512-byte-sector GPT disk with byte AT flipped by MASK reads as a partition table into T. */
static void read_damaged_gpt(size_t at, uint8_t mask, struct vhdx_part_table *t)
{
	make_gpt_disk(512, 16 * MiB);
	disk[at] ^= mask;
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, t), 0);
}

static void test_gpt_backup(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	/* primary header damaged: the backup, said */
	read_damaged_gpt(512 + 40, 1, &t);
	check_gpt(&t, 512, 16 * MiB);
	assert_true(t.from_backup);
	assert_non_null(strstr(t.note, "primary GPT header at byte 512: CRC-32 0x"));
	assert_non_null(strstr(t.note, "read the backup GPT header at byte 16776704 and its entry array at byte 16760320"));
	vhdx_part_table_free(&t);

	/* primary entry array damaged */
	read_damaged_gpt(1024 + 100, 0x40, &t);
	check_gpt(&t, 512, 16 * MiB);
	assert_true(t.from_backup);
	assert_non_null(strstr(t.note, "primary GPT entry array at byte 1024: CRC-32 0x"));
	vhdx_part_table_free(&t);

	/* backup header damaged, primary good: the primary, and a note */
	make_gpt_disk(512, 16 * MiB);
	disk[16 * MiB - 512 + 3] = 'X';
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), 0);
	assert_false(t.from_backup);
	assert_string_equal(t.note, "backup GPT header at byte 16776704: no \"EFI PART\" signature (the primary GPT was used)");
	vhdx_part_table_free(&t);

	/* both entry arrays damaged: the exact error of each */
	make_gpt_disk(512, 16 * MiB);
	disk[1024 + 100] ^= 0x40;
	disk[16760320 + 100] ^= 0x40;
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "no valid GPT: primary GPT entry array at byte 1024: CRC-32 0x");
	assert_errmsg_contains("; and: backup GPT entry array at byte 16760320: CRC-32 0x");
	assert_errmsg_contains("does not match 0x");
	vhdx_part_table_free(&t);
}

static void test_gpt_damage(void **state)
{
	struct vhdx_part_table t;
	uint64_t n = 16 * MiB / 512;

	(void)state;
	/* an entry past the end (in both copies: otherwise the other one would be used) */
	make_gpt_disk(512, 16 * MiB);
	for (int copy = 0; copy < 2; copy++) {
		uint64_t array_lba = copy ? n - 33 : 2;

		vhdx_put_le64(disk + array_lba * 512 + 128 * 2 + 40, n + 100);
		gpt_header(512, copy ? n - 1 : 1, copy ? 1 : n - 1, array_lba, 34, n - 34);
	}
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "primary GPT entry 3 (at byte 1280): LBAs 6144-32868 lie outside the usable LBAs 34-32734 (past the end)");
	vhdx_part_table_free(&t);

	/* a header whose entry array would lie past the end */
	make_gpt_disk(512, 16 * MiB);
	vhdx_put_le64(disk + 512 + 72, n - 2);
	vhdx_put_le32(disk + 512 + 16, 0);
	vhdx_put_le32(disk + 512 + 16, crc_ref(CRC_REF_IEEE, disk + 512, 92));
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), 0);
	assert_true(t.from_backup);
	assert_non_null(strstr(t.note, "primary GPT header at byte 512: the entry array at LBA 32766 (32 sectors) lies past the end of the disk (32768 sectors)"));
	vhdx_part_table_free(&t);

	/* a protective MBR on a disk too small for a GPT */
	disk_new(1024);
	mbr_entry(0, 0, 0, 0xEE, 1, 1);
	assert_fails(vhdx_part_table_read(mem_read, NULL, disk_len, 512, false, &t), -EBADMSG,
		     "protective MBR at byte 0: the disk (1024 bytes) is too small for a GPT");
	vhdx_part_table_free(&t);
}

/* ---------------------------------------------------------------- file systems */

static void probe(const char *want_fs, const char *want_label)
{
	char fs[VHDX_FS_NAME_MAX], label[VHDX_FS_LABEL_MAX];

	vhdx_fs_probe(disk, disk_len < VHDX_FS_PROBE_LEN ? disk_len : VHDX_FS_PROBE_LEN, disk_len, mem_read, NULL, 0, fs,
		      label);
	assert_string_equal(fs, want_fs);
	assert_string_equal(label, want_label);
}

static void fat_boot(uint16_t total16, uint32_t total32, uint16_t fatsz16, uint32_t fatsz32, uint16_t root)
{
	disk[0] = 0xEB;
	disk[1] = 0x3C;
	disk[2] = 0x90;
	vhdx_put_le16(disk + 11, 512);
	disk[13] = 4;
	vhdx_put_le16(disk + 14, fatsz32 ? 32 : 1);
	disk[16] = 2;
	vhdx_put_le16(disk + 17, root);
	vhdx_put_le16(disk + 19, total16);
	disk[21] = 0xF8;
	vhdx_put_le16(disk + 22, fatsz16);
	vhdx_put_le32(disk + 32, total32);
	vhdx_put_le32(disk + 36, fatsz32);
}

static void test_fs_probe(void **state)
{
	(void)state;
	/* FAT16: 20000 clusters of 4 sectors; label in the boot sector */
	disk_new(48 * MiB);
	fat_boot(0, 81920, 80, 0, 512);
	disk[38] = 0x29;
	memcpy(disk + 43, "MYDATA     ", 11);
	probe("fat16", "MYDATA");
	memcpy(disk + 43, "NO NAME    ", 11);
	probe("fat16", "");
	/* FAT12 and FAT32 */
	disk_new(8 * MiB);
	fat_boot(16000, 0, 12, 0, 224);
	probe("fat12", "");
	disk_new(600 * MiB);
	fat_boot(0, 1228800, 0, 2400, 0);
	disk[66] = 0x29;
	memcpy(disk + 71, "BIGFAT     ", 11);
	probe("fat32", "BIGFAT");

	/* ext2/3/4 by features, with the label */
	disk_new(4 * MiB);
	vhdx_put_le16(disk + 1024 + 56, 0xEF53);
	memcpy(disk + 1024 + 120, "rootfs", 6);
	probe("ext2", "rootfs");
	vhdx_put_le32(disk + 1024 + 92, 0x4);
	probe("ext3", "rootfs");
	vhdx_put_le32(disk + 1024 + 96, 0x2 | 0x40); /* filetype, extents */
	probe("ext4", "rootfs");

	disk_new(1 * MiB);
	memcpy(disk, "XFSB", 4);
	memcpy(disk + 108, "xfsvol", 6);
	probe("xfs", "xfsvol");
	disk_new(1 * MiB);
	memcpy(disk + 65536 + 64, "_BHRfS_M", 8);
	memcpy(disk + 65536 + 299, "pool", 4);
	probe("btrfs", "pool");
	/* the ones known by one magic string, without a label */
	{
		static const struct {
			size_t at;
			const char *magic, *fs;
		} magics[] = {
			{ 4086, "SWAPSPACE2", "swap" }, { 0, "LUKS\xba\xbe", "luks" }, { 3, "-FVE-FS-", "bitlocker" },
			{ 3, "EXFAT   ", "exfat" },     { 3, "ReFS", "refs" },
		};
		for (size_t i = 0; i < VHDX_ARRAY_LEN(magics); i++) {
			disk_new(1 * MiB);
			memcpy(disk + magics[i].at, magics[i].magic, strlen(magics[i].magic));
			probe(magics[i].fs, "");
		}
	}
	disk_new(1 * MiB);
	memcpy(disk + 512, "LABELONE", 8);
	memcpy(disk + 512 + 24, "LVM2 001", 8);
	probe("lvm2", "");
	disk_new(1 * MiB);
	probe("", "");
}

/* An NTFS boot sector and a $Volume record with a name; MFT at cluster 4 of 4 KiB, records of 1 KiB. */
static void make_ntfs(size_t size)
{
	uint8_t *rec;
	const char *name = "Backup";

	disk_new(size);
	disk[0] = 0xEB;
	disk[1] = 0x52;
	disk[2] = 0x90;
	memcpy(disk + 3, "NTFS    ", 8);
	vhdx_put_le16(disk + 11, 512);
	disk[13] = 8;
	vhdx_put_le64(disk + 48, 4);
	disk[64] = (uint8_t)-10; /* 2^10 bytes per record */
	rec = disk + 4 * 4096 + 3 * 1024;
	memcpy(rec, "FILE", 4);
	vhdx_put_le16(rec + 4, 48); /* update sequence array at 48, 3 entries (USN + 2 sectors) */
	vhdx_put_le16(rec + 6, 3);
	vhdx_put_le16(rec + 48, 0x1234);
	vhdx_put_le16(rec + 20, 56);
	/* attribute 0x60, resident, value at 24 */
	vhdx_put_le32(rec + 56, 0x60);
	vhdx_put_le32(rec + 60, 40);
	vhdx_put_le32(rec + 56 + 16, 12);
	vhdx_put_le16(rec + 56 + 20, 24);
	for (int i = 0; i < 6; i++)
		vhdx_put_le16(rec + 56 + 24 + 2 * i, (uint8_t)name[i]);
	vhdx_put_le32(rec + 96, 0xFFFFFFFFu);
	/* the fixups: the last two bytes of each 512-byte sector hold the USN, their values in the array */
	memcpy(rec + 50, rec + 510, 2);
	memcpy(rec + 52, rec + 1022, 2);
	vhdx_put_le16(rec + 510, 0x1234);
	vhdx_put_le16(rec + 1022, 0x1234);
}

static void test_ntfs_label(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	make_ntfs(2 * MiB);
	probe("ntfs", "Backup");
	/* a torn record (USN mismatch): ntfs, no label */
	vhdx_put_le16(disk + 4 * 4096 + 3 * 1024 + 1022, 0x9999);
	probe("ntfs", "");
	/* on a whole disk (its boot sector ends in 0x55AA like an MBR): no table, the volume */
	make_ntfs(2 * MiB);
	disk[510] = 0x55;
	disk[511] = 0xAA;
	assert_int_equal(vhdx_part_table_read(mem_read, NULL, disk_len, 512, true, &t), 0);
	assert_int_equal(t.scheme, VHDX_PART_NONE);
	assert_string_equal(t.fs, "ntfs");
	assert_string_equal(t.label, "Backup");
	vhdx_part_table_free(&t);
}

/* A disk whose bytes [3 MiB, 5 MiB) cannot be read (partition 3 of make_gpt_disk). */
static int bad_read(void *arg, void *buf, size_t len, uint64_t off)
{
	if (off < 5 * MiB && off + len > 3 * MiB)
		return vhdx_err(EIO, "read error at byte %llu", (unsigned long long)off);
	return mem_read(arg, buf, len, off);
}

static void test_probe_read_error(void **state)
{
	struct vhdx_part_table t;

	(void)state;
	gpt_reads_back(bad_read, 512, 512, true, &t);
	assert_string_equal(t.note, "partition 3: reading the first bytes of the volume at byte 3145728: read error at byte 3145728");
	assert_string_equal(t.parts[1].fs, "");
	assert_true(t.parts[1].flags & VHDX_PART_F_UNREADABLE);
	assert_false(t.parts[0].flags & VHDX_PART_F_UNREADABLE);
	vhdx_part_table_free(&t);
}

/*
 * The public call on a real image: the MBR disk written into a new VHDX,
 * read with the caller's struct sizes (a shorter, older vhdx_partition
 * keeps its stride and nothing past it is touched), MAX smaller than the
 * count, and a bad struct_size.
 */
static void test_vhdx_partitions(void **state)
{
	char dir[] = "/tmp/test_partition.XXXXXX", path[64];
	struct vhdx_create_options co;
	struct vhdx_open_options oo;
	struct vhdx_partition_table pt;
	struct vhdx_partition parts[8];
	const size_t old_size = offsetof(struct vhdx_partition, type_name);
	uint8_t old[8][offsetof(struct vhdx_partition, type_name) + 16];
	struct vhdx_image *img;
	const uint64_t sectors[] = { 0, 32768, 32768 + 10240, 32768 + 20480 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/mbr.vhdx", dir);
	make_mbr_disk();
	vhdx_create_options_init(&co);
	co.virtual_size = disk_len;
	co.block_size = 1 << 20;
	assert_int_equal(vhdx_create(path, &co), 0);
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	assert_int_equal(vhdx_open(path, &oo, &img), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(vhdx_pwrite(img, disk + sectors[i] * 512, 512, sectors[i] * 512), 512);
	assert_int_equal(vhdx_close(img), 0);
	assert_int_equal(vhdx_open(path, NULL, &img), 0);

	memset(&pt, 0, sizeof pt);
	pt.struct_size = sizeof pt;
	memset(parts, 0, sizeof parts);
	parts[0].struct_size = sizeof parts[0];
	assert_int_equal(vhdx_partitions(img, &pt, parts, 8), 6);
	assert_int_equal(pt.scheme, VHDX_SCHEME_MBR);
	assert_int_equal(pt.count, 6);
	assert_int_equal(pt.mbr_signature, 0x12345678u);
	assert_int_equal(parts[5].number, 7);
	assert_int_equal(parts[5].struct_size, sizeof parts[0]);
	assert_int_equal(parts[5].offset, (32768ull + 20480 + 2048) * 512);
	assert_string_equal(parts[0].type_name, "HPFS/NTFS/exFAT");
	assert_true(parts[0].flags & VHDX_PARTITION_BOOTABLE);
	assert_string_equal(parts[2].kind, "extended");
	assert_true(parts[3].flags & VHDX_PARTITION_LOGICAL);

	/* MAX below the count: the count, MAX entries filled */
	memset(parts, 0, sizeof parts);
	parts[0].struct_size = sizeof parts[0];
	assert_int_equal(vhdx_partitions(img, &pt, parts, 2), 6);
	assert_int_equal(parts[1].number, 2);
	assert_int_equal(parts[2].number, 0);

	/* an older, shorter struct: its stride, nothing past it written */
	memset(old, 0xEE, sizeof old);
	memcpy(old[0], &old_size, sizeof old_size);
	assert_int_equal(vhdx_partitions(img, &pt, (struct vhdx_partition *)(void *)old[0], 4), 6);
	for (unsigned i = 0; i < 4; i++) {
		struct vhdx_partition got;

		memset(&got, 0, sizeof got);
		memcpy(&got, (uint8_t *)old + i * old_size, old_size);
		assert_int_equal(got.struct_size, old_size);
		assert_int_equal(got.number, i < 3 ? i + 1 : 5);
	}
	for (size_t b = 4 * old_size; b < sizeof old; b++)
		assert_int_equal(((uint8_t *)old)[b], 0xEE);

	assert_fails(vhdx_partitions(img, &pt, NULL, 1), -EINVAL, "vhdx_partitions");
	parts[0].struct_size = 4;
	assert_fails(vhdx_partitions(img, &pt, parts, 1), -EINVAL, "parts[0].struct_size 4 is too small");
	assert_int_equal(vhdx_close(img), 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mbr_logicals), cmocka_unit_test(test_mbr_ebr_loop),
		cmocka_unit_test(test_mbr_damage),   cmocka_unit_test(test_gpt_512_4096),
		cmocka_unit_test(test_gpt_backup),   cmocka_unit_test(test_gpt_damage),
		cmocka_unit_test(test_fs_probe),     cmocka_unit_test(test_ntfs_label),
		cmocka_unit_test(test_probe_read_error), cmocka_unit_test(test_vhdx_partitions),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	free(disk);
	return ret;
}
