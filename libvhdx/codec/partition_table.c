/*
 * partition_table.c - which partition table a disk holds, and reading it:
 *
 *  - a protective MBR (an entry of type 0xEE) or an "EFI PART" signature
 *    at LBA 1: GPT, at the disk's logical sector size or else at the other
 *    of 512 and 4096 (an image made on a 4Kn disk but declaring 512-byte
 *    sectors, or the reverse); the primary header and entry array, else
 *    the backup header at the end of the disk and its array, with a note
 *    saying why;
 *  - a file system starting in sector 0 (a "superfloppy": NTFS, FAT, XFS...
 *    on the whole disk): no table;
 *  - an MBR (0x55AA and status bytes 0x00/0x80): the primaries and the
 *    logicals of each extended partition (partition_mbr.c);
 *  - anything else: no table.
 *
 * All the bytes come through the caller's read callback (no I/O here).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/partition.h"

struct vhdx_part *vhdx_part_table_add(struct vhdx_part_table *t)
{
	struct vhdx_part *np;

	if (t->n % 16 == 0) {
		np = realloc(t->parts, (t->n + 16) * sizeof *np);
		if (!np)
			return NULL;
		t->parts = np;
	}
	np = &t->parts[t->n++];
	memset(np, 0, sizeof *np);
	return np;
}

void vhdx_part_table_free(struct vhdx_part_table *t)
{
	free(t->parts);
	t->parts = NULL;
	t->n = 0;
}

/* Appends "; TEXT" (or TEXT) to T->note, truncating. */
static void note_add(struct vhdx_part_table *t, const char *text)
{
	size_t len = strlen(t->note);

	snprintf(t->note + len, sizeof t->note - len, "%s%s", len ? "; " : "", text);
}

/* True when the sector at LBA 1 of sector size SS starts with the GPT signature. */
static bool gpt_sig_at(vhdx_part_read_fn read, void *arg, uint64_t disk_size, uint32_t ss)
{
	uint8_t sig[8];

	if (disk_size < 3ull * ss || read(arg, sig, sizeof sig, ss) < 0)
		return false;
	return memcmp(sig, "EFI PART", 8) == 0;
}

/* Reads the header at LBA (*HDR_OK: it is valid) and its entry array into T. 0 or -errno (message set). */
static int gpt_read_one(vhdx_part_read_fn read, void *arg, struct vhdx_part_table *t, uint64_t lba,
			const char *what, struct vhdx_gpt_header *h, bool *hdr_ok)
{
	uint32_t ss = t->sector_size;
	uint64_t disk_sectors = t->disk_size / ss;
	uint8_t sector[4096];
	uint8_t *array;
	size_t bytes;
	char hdr_what[32];
	int ret;

	*hdr_ok = false;
	snprintf(hdr_what, sizeof hdr_what, "%s GPT header", what);
	ret = read(arg, sector, ss, lba * ss);
	if (ret < 0)
		return vhdx_err_prefix(ret, "reading the %s at byte %" PRIu64, hdr_what, lba * ss);
	ret = vhdx_gpt_header_decode(sector, ss, lba, disk_sectors, hdr_what, h);
	if (ret < 0)
		return ret;
	*hdr_ok = true;
	bytes = (size_t)h->n_entries * h->entry_size; /* bounded by the decoder */
	array = malloc(bytes);
	if (!array)
		return vhdx_err(ENOMEM, "%s GPT entry array: out of memory", what);
	ret = read(arg, array, bytes, h->entries_lba * ss);
	if (ret < 0)
		ret = vhdx_err_prefix(ret, "reading the %s GPT entry array at byte %" PRIu64, what, h->entries_lba * ss);
	else
		ret = vhdx_gpt_entries_decode(array, h, ss, what, t);
	free(array);
	if (ret < 0)
		vhdx_part_table_free(t);
	return ret;
}

static int gpt_read(vhdx_part_read_fn read, void *arg, struct vhdx_part_table *t)
{
	uint32_t ss = t->sector_size;
	uint64_t last = t->disk_size / ss - 1, backup_lba = last;
	struct vhdx_gpt_header ph, bh;
	char *primary_err, text[sizeof t->note];
	bool primary_hdr_ok, backup_hdr_ok;
	int ret;

	t->scheme = VHDX_PART_GPT;
	ret = gpt_read_one(read, arg, t, 1, "primary", &ph, &primary_hdr_ok);
	if (ret == -ENOMEM)
		return ret;
	if (ret == 0) {
		memcpy(t->disk_guid, ph.disk_guid, 16);
		/* Say so when the backup header is damaged (its array is not read: the primary is good). */
		if (ph.alternate_lba != 1 && ph.alternate_lba <= last) {
			uint8_t sector[4096];

			if (read(arg, sector, ss, ph.alternate_lba * ss) == 0 &&
			    vhdx_gpt_header_decode(sector, ss, ph.alternate_lba, last + 1, "backup GPT header", &bh) < 0) {
				snprintf(text, sizeof text, "%s (the primary GPT was used)", vhdx_errmsg());
				note_add(t, text);
			}
		}
		vhdx_err_clear();
		return 0;
	}
	/* The primary is damaged: the backup header's place comes from the primary if its header is good. */
	primary_err = vhdx_err_dup();
	if (primary_hdr_ok && ph.alternate_lba > 1 && ph.alternate_lba <= last)
		backup_lba = ph.alternate_lba;
	ret = gpt_read_one(read, arg, t, backup_lba, "backup", &bh, &backup_hdr_ok);
	if (ret < 0) {
		ret = vhdx_err_prefix(ret, "no valid GPT: %s; and", primary_err ? primary_err : "primary GPT damaged");
		free(primary_err);
		return ret;
	}
	t->from_backup = true;
	memcpy(t->disk_guid, bh.disk_guid, 16);
	snprintf(text, sizeof text, "%s; read the backup GPT header at byte %" PRIu64 " and its entry array at byte %" PRIu64,
		 primary_err ? primary_err : "primary GPT damaged", backup_lba * ss, bh.entries_lba * ss);
	note_add(t, text);
	free(primary_err);
	vhdx_err_clear();
	return 0;
}

/* Reads up to VHDX_FS_PROBE_LEN bytes of [START, START+SIZE) and probes them. */
static int probe(vhdx_part_read_fn read, void *arg, uint64_t start, uint64_t size, uint8_t *buf, char *fs,
		 char *label)
{
	size_t len = size < VHDX_FS_PROBE_LEN ? (size_t)size : VHDX_FS_PROBE_LEN;
	int ret = read(arg, buf, len, start);

	if (ret < 0)
		return vhdx_err_prefix(ret, "reading the first bytes of the volume at byte %" PRIu64, start);
	vhdx_fs_probe(buf, len, size, read, arg, start, fs, label);
	return 0;
}

int vhdx_part_table_read(vhdx_part_read_fn read, void *arg, uint64_t disk_size, uint32_t sector_size, bool do_probe,
			 struct vhdx_part_table *t)
{
	uint8_t mbr[VHDX_MBR_SIZE];
	struct vhdx_mbr_entry e[4];
	uint32_t other = sector_size == 4096 ? 512 : 4096;
	bool is_mbr, protective = false;
	uint8_t *buf = NULL;
	int ret;

	memset(t, 0, sizeof *t);
	t->disk_size = disk_size;
	t->sector_size = sector_size == 4096 ? 4096 : 512;
	if (sector_size != 512 && sector_size != 4096)
		return vhdx_err(EINVAL, "partition table: sector size %" PRIu32 " is not 512 or 4096", sector_size);
	if (disk_size < VHDX_MBR_SIZE)
		return 0;
	ret = read(arg, mbr, sizeof mbr, 0);
	if (ret < 0)
		return vhdx_err_prefix(ret, "reading the MBR at byte 0");
	is_mbr = vhdx_mbr_decode(mbr, e) == 0;
	for (unsigned i = 0; is_mbr && i < 4; i++)
		protective |= e[i].type == 0xEE;
	if (do_probe) {
		buf = malloc(VHDX_FS_PROBE_LEN);
		if (!buf)
			return vhdx_err(ENOMEM, "partition table: out of memory");
	}
	if (protective || gpt_sig_at(read, arg, disk_size, t->sector_size) || gpt_sig_at(read, arg, disk_size, other)) {
		if (!gpt_sig_at(read, arg, disk_size, t->sector_size) && gpt_sig_at(read, arg, disk_size, other)) {
			char text[128];

			snprintf(text, sizeof text, "the GPT uses %" PRIu32 "-byte sectors, the disk declares %" PRIu32, other,
				 t->sector_size);
			t->sector_size = other;
			note_add(t, text);
		}
		if (disk_size / t->sector_size < 3)
			ret = vhdx_err(EBADMSG, "protective MBR at byte 0: the disk (%" PRIu64 " bytes) is too small for a GPT",
				       disk_size);
		else
			ret = gpt_read(read, arg, t);
	} else {
		/* A file system on the whole disk, whose boot sector may well end in 0x55AA. */
		if (buf) {
			ret = probe(read, arg, 0, disk_size, buf, t->fs, t->label);
			if (ret < 0)
				goto out;
		}
		if (t->fs[0] || !is_mbr) {
			ret = 0;
			goto out;
		}
		ret = vhdx_mbr_read(mbr, read, arg, t);
	}
	if (ret < 0 || !buf)
		goto out;
	for (unsigned i = 0; i < t->n; i++) {
		struct vhdx_part *p = &t->parts[i];
		char text[sizeof t->note];

		if (p->flags & VHDX_PART_F_EXTENDED)
			continue;
		/* a volume that cannot be read is no reason to hide the table: say so, nothing found */
		if (probe(read, arg, p->start, p->size, buf, p->fs, p->label) < 0) {
			p->flags |= VHDX_PART_F_UNREADABLE;
			snprintf(text, sizeof text, "partition %u: %s", p->number, vhdx_errmsg());
			note_add(t, text);
			vhdx_err_clear();
		}
	}
	ret = 0;
out:
	free(buf);
	return ret;
}
