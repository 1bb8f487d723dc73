/*
 * fs_probe.c - what a volume holds, from its first bytes, and its label
 * where that is cheap.  Signatures (offsets from the start of the volume):
 *
 *   NTFS       "NTFS    " at 3; label: the $VOLUME_NAME attribute (0x60) of
 *              MFT record 3 ($Volume), read at MftLcn * cluster + 3 * record
 *   ReFS       "ReFS" at 3            exFAT  "EXFAT   " at 3
 *   BitLocker  "-FVE-FS-" at 3        LUKS   "LUKS\xba\xbe" at 0
 *   FAT12/16/32  a BIOS parameter block whose cluster count gives the type
 *              (Microsoft's FAT specification); label at 43 (FAT12/16) or
 *              71 (FAT32) when the extended boot signature 0x29 is there
 *   ext2/3/4   superblock at 1024: magic 0xEF53 at +56, label at +120;
 *              ext3 = has_journal, ext4 = a feature ext3 does not know
 *   XFS        "XFSB" at 0, label at 108      Btrfs "_BHRfS_M" at 65600, label at 65536+299
 *   swap       "SWAPSPACE2"/"SWAP-SPACE" at page size - 10 (4, 8, 16, 64 KiB)
 *   LVM2       "LABELONE" at the start of one of sectors 0-3, "LVM2 001" at +24
 *
 * Nothing here fails: a damaged structure only means "" (not recognised)
 * or an empty label.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/partition.h"
#include "codec/utf16.h"

/* True when HEAD holds the LEN bytes S at OFF. */
static bool has(const uint8_t *head, size_t head_len, size_t off, const void *s, size_t len)
{
	return off + len <= head_len && memcmp(head + off, s, len) == 0;
}

/* Copies LEN bytes of P as a label: stops at NUL, trims trailing spaces. */
static void label_copy(char *label, const uint8_t *p, size_t len)
{
	size_t n = 0;

	while (n < len && n < VHDX_FS_LABEL_MAX - 1 && p[n])
		n++;
	while (n && p[n - 1] == ' ')
		n--;
	for (size_t i = 0; i < n; i++)
		label[i] = (char)(p[i] >= 0x20 && p[i] != 0x7f ? p[i] : '?');
	label[n] = '\0';
}

/* FAT: the type from the BPB, or NULL when the sector is not a FAT boot sector. */
static const char *fat_type(const uint8_t *b, size_t len, uint64_t size)
{
	uint32_t bps, spc, reserved, nfats, root_entries, total, fatsz, root_sectors, data, clusters;

	if (len < 512 || !((b[0] == 0xEB && b[2] == 0x90) || b[0] == 0xE9))
		return NULL;
	bps = vhdx_get_le16(b + 11);
	spc = b[13];
	reserved = vhdx_get_le16(b + 14);
	nfats = b[16];
	root_entries = vhdx_get_le16(b + 17);
	total = vhdx_get_le16(b + 19);
	if (!total)
		total = vhdx_get_le32(b + 32);
	fatsz = vhdx_get_le16(b + 22);
	if (!fatsz)
		fatsz = vhdx_get_le32(b + 36);
	if (bps < 512 || bps > 4096 || !vhdx_is_pow2(bps) || !spc || !vhdx_is_pow2(spc) || !reserved || !nfats ||
	    nfats > 4 || !total || !fatsz || (b[21] != 0xF0 && b[21] < 0xF8))
		return NULL;
	if ((uint64_t)total * bps > size + bps) /* a little slack: some tools round the last sector */
		return NULL;
	root_sectors = (root_entries * 32 + bps - 1) / bps;
	if ((uint64_t)reserved + (uint64_t)nfats * fatsz + root_sectors >= total)
		return NULL;
	data = total - (reserved + nfats * fatsz + root_sectors);
	clusters = data / spc;
	if (clusters < 4085)
		return "fat12";
	if (clusters < 65525)
		return "fat16";
	return root_entries == 0 ? "fat32" : NULL;
}

/* Applies the update sequence array of the NTFS record REC (LEN bytes); false when it does not match. */
static bool ntfs_fixup(uint8_t *rec, size_t len)
{
	uint32_t usa_off = vhdx_get_le16(rec + 4), usa_n = vhdx_get_le16(rec + 6);

	if (usa_n < 2 || usa_off + 2ull * usa_n > len || (usa_n - 1) * 512ull > len)
		return false;
	for (uint32_t i = 1; i < usa_n; i++) {
		uint8_t *end = rec + i * 512 - 2;

		if (memcmp(end, rec + usa_off, 2) != 0)
			return false;
		memcpy(end, rec + usa_off + 2 * i, 2);
	}
	return true;
}

/* NTFS: the volume name from the $Volume record (MFT record 3). */
static void ntfs_label(const uint8_t *b, uint64_t size, vhdx_part_read_fn read, void *arg, uint64_t base,
		       char *label)
{
	uint32_t bps = vhdx_get_le16(b + 11), spc = b[13], cluster, rec_size;
	int8_t cpr = (int8_t)b[64];
	uint64_t mft_lcn = vhdx_get_le64(b + 48), off;
	uint32_t attr;
	uint8_t *rec;

	if (!read || bps < 256 || bps > 4096 || !vhdx_is_pow2(bps) || !spc)
		return;
	/* sectors per cluster above 0x80 is a negative power of two (clusters of 64 KiB and up) */
	cluster = spc <= 0x80 ? bps * spc : 256 - spc > 21 ? 0 : 1u << (256 - spc);
	if (!cluster || cluster > (2u << 20))
		return;
	/* clusters per record; negative: a record of 2^-n bytes */
	rec_size = cpr > 0 ? (uint32_t)cpr * cluster : (cpr < -16 || cpr > -9) ? 0 : 1u << -cpr;
	if (rec_size < 512 || rec_size > 65536)
		return;
	if (mft_lcn > size / cluster)
		return;
	off = mft_lcn * cluster + 3ull * rec_size;
	if (off > size || rec_size > size - off)
		return;
	rec = malloc(rec_size);
	if (!rec)
		return;
	if (read(arg, rec, rec_size, base + off) < 0 || memcmp(rec, "FILE", 4) != 0 || !ntfs_fixup(rec, rec_size))
		goto out;
	/* the attributes, each: type (4), length (4), non-resident (1), ...; resident: value length at 16, offset at 20 */
	for (attr = vhdx_get_le16(rec + 20); attr + 24 <= rec_size;) {
		uint32_t type = vhdx_get_le32(rec + attr), len = vhdx_get_le32(rec + attr + 4);

		if (type == 0xFFFFFFFFu || len < 24 || len > rec_size - attr)
			break;
		if (type == 0x60 && rec[attr + 8] == 0) {
			uint32_t vlen = vhdx_get_le32(rec + attr + 16), voff = vhdx_get_le16(rec + attr + 20);
			char *name = NULL;

			if (voff <= len && vlen <= len - voff && vhdx_utf16_to_utf8(rec + attr + voff, vlen, false, true, &name) == 0) {
				snprintf(label, VHDX_FS_LABEL_MAX, "%s", name);
				free(name);
			}
			break;
		}
		attr += len;
	}
out:
	free(rec);
}

/* File systems known by one signature at a fixed offset, in the order they are tried (after NTFS). */
struct fixed_sig {
	size_t off;
	const char *magic;
	size_t len;
	const char *name;
	size_t label_off, label_len; /* where the label is, LABEL_LEN 0: not read */
};

static const struct fixed_sig fixed_sigs[] = {
	{ 3, "-FVE-FS-", 8, "bitlocker", 0, 0 },
	{ 3, "ReFS", 4, "refs", 0, 0 },
	{ 3, "EXFAT   ", 8, "exfat", 0, 0 },
	{ 0, "LUKS\xba\xbe", 6, "luks", 0, 0 },
	{ 0, "XFSB", 4, "xfs", 108, 12 },
};

void vhdx_fs_probe(const uint8_t *head, size_t head_len, uint64_t size, vhdx_part_read_fn read, void *arg,
		   uint64_t base, char *fs, char *label)
{
	static const size_t swap_pages[] = { 4096, 8192, 16384, 65536 };
	const char *t;

	fs[0] = '\0';
	label[0] = '\0';
	if (has(head, head_len, 3, "NTFS    ", 8)) {
		strcpy(fs, "ntfs");
		if (head_len >= 512)
			ntfs_label(head, size, read, arg, base, label);
		return;
	}
	for (size_t i = 0; i < sizeof fixed_sigs / sizeof fixed_sigs[0]; i++) {
		const struct fixed_sig *g = &fixed_sigs[i];

		if (has(head, head_len, g->off, g->magic, g->len)) {
			strcpy(fs, g->name);
			if (g->label_len && head_len >= g->label_off + g->label_len)
				label_copy(label, head + g->label_off, g->label_len);
			return;
		}
	}
	for (size_t s = 0; s < 4; s++) {
		if (has(head, head_len, s * 512, "LABELONE", 8) && has(head, head_len, s * 512 + 24, "LVM2 001", 8)) {
			strcpy(fs, "lvm2");
			return;
		}
	}
	if (head_len >= 1024 + 256 && vhdx_get_le16(head + 1024 + 56) == 0xEF53) {
		const uint8_t *sb = head + 1024;
		uint32_t compat = vhdx_get_le32(sb + 92), incompat = vhdx_get_le32(sb + 96), ro = vhdx_get_le32(sb + 100);

		/* ext3 knows filetype, recover, journal_dev, meta_bg; sparse_super, large_file, btree_dir */
		if ((incompat & ~0x1Eu) || (ro & ~0x7u))
			strcpy(fs, "ext4");
		else if (compat & 0x4u)
			strcpy(fs, "ext3");
		else
			strcpy(fs, "ext2");
		label_copy(label, sb + 120, 16);
		return;
	}
	if (has(head, head_len, 65536 + 64, "_BHRfS_M", 8)) {
		strcpy(fs, "btrfs");
		if (head_len >= 65536 + 299 + 256)
			label_copy(label, head + 65536 + 299, 256);
		return;
	}
	for (size_t i = 0; i < sizeof swap_pages / sizeof swap_pages[0]; i++) {
		size_t at = swap_pages[i] - 10;

		if (has(head, head_len, at, "SWAPSPACE2", 10) || has(head, head_len, at, "SWAP-SPACE", 10)) {
			strcpy(fs, "swap");
			return;
		}
	}
	t = fat_type(head, head_len, size);
	if (t) {
		uint32_t at = strcmp(t, "fat32") == 0 ? 64 : 36; /* the drive number; 0x29 two bytes later */

		strcpy(fs, t);
		if (head[at + 2] == 0x29 && !has(head, head_len, at + 7, "NO NAME    ", 11))
			label_copy(label, head + at + 7, 11);
	}
}
