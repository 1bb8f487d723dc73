/*
 * partition_gpt.c - the GUID partition table (UEFI 2.x, section 5.3).
 *
 * Header (at LBA 1; the backup at the last LBA):
 *    0  8 "EFI PART"                 56 16 DiskGUID
 *    8  4 Revision (0x00010000)      72  8 PartitionEntryLBA
 *   12  4 HeaderSize (92..sector)    80  4 NumberOfPartitionEntries
 *   16  4 HeaderCRC32 (field = 0)    84  4 SizeOfPartitionEntry (128 x 2^n)
 *   20  4 reserved                   88  4 PartitionEntryArrayCRC32
 *   24  8 MyLBA    32 8 AlternateLBA
 *   40  8 FirstUsableLBA  48 8 LastUsableLBA
 *
 * Entry:  0 16 type GUID (zero: unused)   32 8 StartingLBA   48 8 Attributes
 *        16 16 unique GUID                40 8 EndingLBA (inclusive)
 *        56 72 name, UTF-16LE, NUL-padded
 *
 * Linux numbers a partition by its entry's index + 1, gaps included.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/crc32.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/partition.h"
#include "codec/utf16.h"

#define GPT_SIGNATURE "EFI PART"

int vhdx_gpt_header_decode(const uint8_t *buf, uint32_t sector_size, uint64_t lba, uint64_t disk_sectors,
			   const char *what, struct vhdx_gpt_header *h)
{
	uint64_t off = lba * sector_size, array_sectors, bytes;
	uint8_t tmp[4096];
	uint32_t crc;

	if (memcmp(buf, GPT_SIGNATURE, 8) != 0)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": no \"EFI PART\" signature", what, off);
	h->revision = vhdx_get_le32(buf + 8);
	h->header_size = vhdx_get_le32(buf + 12);
	h->header_crc = vhdx_get_le32(buf + 16);
	h->my_lba = vhdx_get_le64(buf + 24);
	h->alternate_lba = vhdx_get_le64(buf + 32);
	h->first_usable = vhdx_get_le64(buf + 40);
	h->last_usable = vhdx_get_le64(buf + 48);
	memcpy(h->disk_guid, buf + 56, 16);
	h->entries_lba = vhdx_get_le64(buf + 72);
	h->n_entries = vhdx_get_le32(buf + 80);
	h->entry_size = vhdx_get_le32(buf + 84);
	h->entries_crc = vhdx_get_le32(buf + 88);

	if (h->header_size < VHDX_GPT_HEADER_MIN || h->header_size > sector_size || h->header_size > sizeof tmp)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": header size %" PRIu32 " is not between %u and %" PRIu32,
				what, off, h->header_size, VHDX_GPT_HEADER_MIN, sector_size);
	memcpy(tmp, buf, h->header_size);
	memset(tmp + 16, 0, 4);
	crc = vhdx_crc32(0, tmp, h->header_size);
	if (crc != h->header_crc)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": CRC-32 0x%08" PRIx32 " does not match the stored 0x%08" PRIx32,
				what, off, crc, h->header_crc);
	if ((h->revision >> 16) != 1)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": revision 0x%08" PRIx32 " is not 1.x", what, off,
				h->revision);
	if (h->my_lba != lba)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": MyLBA %" PRIu64 " is not its own LBA %" PRIu64, what, off,
				h->my_lba, lba);
	if (h->first_usable > h->last_usable || h->last_usable >= disk_sectors)
		return vhdx_err(EBADMSG,
				"%s at byte %" PRIu64 ": usable LBAs %" PRIu64 "-%" PRIu64
				" do not lie inside the disk (%" PRIu64 " sectors of %" PRIu32 " bytes)",
				what, off, h->first_usable, h->last_usable, disk_sectors, sector_size);
	if (h->entry_size < 128 || h->entry_size > VHDX_GPT_MAX_ENTRY_SIZE || !vhdx_is_pow2(h->entry_size))
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": entry size %" PRIu32 " is not 128 x 2^n (up to %u)", what,
				off, h->entry_size, VHDX_GPT_MAX_ENTRY_SIZE);
	bytes = (uint64_t)h->n_entries * h->entry_size;
	if (h->n_entries == 0 || bytes > VHDX_GPT_MAX_ARRAY)
		return vhdx_err(EBADMSG, "%s at byte %" PRIu64 ": %" PRIu32 " entries of %" PRIu32 " bytes (%s)", what, off,
				h->n_entries, h->entry_size, h->n_entries ? "more than 4 MiB" : "none");
	array_sectors = vhdx_div_round_up(bytes, sector_size);
	if (h->entries_lba < 1 || h->entries_lba >= disk_sectors || array_sectors > disk_sectors - h->entries_lba)
		return vhdx_err(EBADMSG,
				"%s at byte %" PRIu64 ": the entry array at LBA %" PRIu64 " (%" PRIu64
				" sectors) lies past the end of the disk (%" PRIu64 " sectors)",
				what, off, h->entries_lba, array_sectors, disk_sectors);
	return 0;
}

int vhdx_gpt_entries_decode(const uint8_t *array, const struct vhdx_gpt_header *h, uint32_t sector_size,
			    const char *what, struct vhdx_part_table *t)
{
	uint64_t array_off = h->entries_lba * sector_size;
	size_t bytes = (size_t)h->n_entries * h->entry_size;
	uint32_t crc = vhdx_crc32(0, array, bytes);

	if (crc != h->entries_crc)
		return vhdx_err(EBADMSG,
				"%s GPT entry array at byte %" PRIu64 ": CRC-32 0x%08" PRIx32
				" does not match 0x%08" PRIx32 " in its header",
				what, array_off, crc, h->entries_crc);
	for (uint32_t i = 0; i < h->n_entries; i++) {
		const uint8_t *e = array + (size_t)i * h->entry_size;
		uint64_t entry_off = array_off + (uint64_t)i * h->entry_size;
		uint64_t first = vhdx_get_le64(e + 32), last = vhdx_get_le64(e + 40);
		struct vhdx_part *p;
		char *name = NULL;
		int ret;

		if (vhdx_guid_is_zero(e))
			continue;
		if (first > last)
			return vhdx_err(EBADMSG,
					"%s GPT entry %" PRIu32 " (at byte %" PRIu64 "): starting LBA %" PRIu64
					" is after its ending LBA %" PRIu64,
					what, i + 1, entry_off, first, last);
		if (first < h->first_usable || last > h->last_usable)
			return vhdx_err(EBADMSG,
					"%s GPT entry %" PRIu32 " (at byte %" PRIu64 "): LBAs %" PRIu64 "-%" PRIu64
					" lie outside the usable LBAs %" PRIu64 "-%" PRIu64 "%s",
					what, i + 1, entry_off, first, last, h->first_usable, h->last_usable,
					last > h->last_usable ? " (past the end)" : "");
		ret = vhdx_utf16_to_utf8(e + 56, 72, false, true, &name);
		if (ret == -ENOMEM)
			return vhdx_err(ENOMEM, "%s GPT entry %" PRIu32 ": out of memory", what, i + 1);
		if (ret < 0)
			return vhdx_err(EBADMSG, "%s GPT entry %" PRIu32 " (at byte %" PRIu64 "): the name is not valid UTF-16LE",
					what, i + 1, entry_off);
		p = vhdx_part_table_add(t);
		if (!p) {
			free(name);
			return vhdx_err(ENOMEM, "%s GPT entry %" PRIu32 ": out of memory", what, i + 1);
		}
		p->number = i + 1;
		p->start = first * sector_size;
		p->size = (last - first + 1) * sector_size;
		p->entry_off = entry_off;
		memcpy(p->type_guid, e, 16);
		memcpy(p->guid, e + 16, 16);
		p->attributes = vhdx_get_le64(e + 48);
		/* 36 UTF-16 units make at most 108 bytes of UTF-8 */
		snprintf(p->name, sizeof p->name, "%s", name);
		free(name);
	}
	return 0;
}
