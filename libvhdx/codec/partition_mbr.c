/*
 * partition_mbr.c - the MBR partition table and the EBR chains of extended
 * partitions.
 *
 * MBR (sector 0):                       one entry (16 bytes):
 *   440  4 disk signature                 0 1 status (0x80 bootable, 0x00)
 *   446 64 four entries                   1 3 CHS of the first sector (ignored)
 *   510  2 0x55 0xAA                      4 1 type
 *                                         5 3 CHS of the last sector (ignored)
 *                                         8 4 first sector (LBA)
 *                                        12 4 number of sectors
 *
 * An extended partition (type 0x05, 0x0F or 0x85) holds a chain of EBRs,
 * each laid out like an MBR: a data entry whose LBA counts from that EBR,
 * and a link entry (an extended type) whose LBA counts from the start of
 * the extended partition.  Linux numbers the primaries by slot (1-4) and
 * the logicals from 5 in chain order; so do we.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/partition.h"

bool vhdx_mbr_type_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

int vhdx_mbr_decode(const uint8_t *buf, struct vhdx_mbr_entry e[4])
{
	if (buf[VHDX_MBR_SIG_OFF] != 0x55 || buf[VHDX_MBR_SIG_OFF + 1] != 0xAA)
		return -EBADMSG;
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *p = buf + VHDX_MBR_ENTRIES_OFF + 16 * i;

		e[i].status = p[0];
		e[i].type = p[4];
		e[i].lba = vhdx_get_le32(p + 8);
		e[i].nsectors = vhdx_get_le32(p + 12);
		if (e[i].status != 0x00 && e[i].status != 0x80)
			return -EBADMSG;
	}
	return 0;
}

/* Adds a partition of [FIRST, FIRST+N) sectors; EBADMSG when it lies past the end of the disk. */
static int add_part(struct vhdx_part_table *t, unsigned number, unsigned flags, const struct vhdx_mbr_entry *e,
		    uint64_t first, uint64_t entry_off, const char *what)
{
	uint64_t ss = t->sector_size, disk_sectors = t->disk_size / ss;
	struct vhdx_part *p;

	if (first >= disk_sectors || e->nsectors > disk_sectors - first)
		return vhdx_err(EBADMSG,
				"%s at byte %" PRIu64 ": sectors %" PRIu64 "-%" PRIu64
				" lie past the end of the disk (%" PRIu64 " sectors of %" PRIu64 " bytes)",
				what, entry_off, first, first + e->nsectors - 1, disk_sectors, ss);
	p = vhdx_part_table_add(t);
	if (!p)
		return vhdx_err(ENOMEM, "%s: out of memory", what);
	p->number = number;
	p->flags = flags | (e->status == 0x80 ? VHDX_PART_F_BOOTABLE : 0);
	p->start = first * ss;
	p->size = (uint64_t)e->nsectors * ss;
	p->entry_off = entry_off;
	p->mbr_type = e->type;
	return 0;
}

/* Follows the EBR chain of the extended partition EXT (slot SLOT); *NEXT_NUMBER counts logicals from 5. */
static int read_chain(const struct vhdx_part *ext, unsigned slot, vhdx_part_read_fn read, void *arg,
		      struct vhdx_part_table *t, unsigned *next_number)
{
	uint64_t ss = t->sector_size, ext_first = ext->start / ss, ext_n = ext->size / ss;
	uint64_t visited[VHDX_MBR_MAX_LOGICAL + 1];
	unsigned n_visited = 0;
	uint64_t ebr = ext_first; /* sector of the current EBR */
	uint8_t buf[VHDX_MBR_SIZE];
	char what[96];
	int ret;

	for (;;) {
		struct vhdx_mbr_entry e[4];
		uint64_t ebr_off = ebr * ss, link = UINT64_MAX;
		unsigned link_idx = 0;

		for (unsigned i = 0; i < n_visited; i++)
			if (visited[i] == ebr)
				return vhdx_err(EBADMSG,
						"EBR chain of extended partition %u: the link in the EBR at byte %" PRIu64
						" points back to the EBR at byte %" PRIu64 " (a loop)",
						slot, visited[n_visited - 1] * ss, ebr_off);
		if (n_visited > VHDX_MBR_MAX_LOGICAL)
			return vhdx_err(EBADMSG,
					"EBR chain of extended partition %u: more than %u EBRs (the one at byte %" PRIu64
					" is one too many)",
					slot, VHDX_MBR_MAX_LOGICAL, ebr_off);
		visited[n_visited++] = ebr;
		ret = read(arg, buf, sizeof buf, ebr_off);
		if (ret < 0)
			return vhdx_err_prefix(ret, "reading the EBR at byte %" PRIu64, ebr_off);
		if (vhdx_mbr_decode(buf, e) < 0) {
			/* An empty extended partition (no EBR written yet) holds nothing. */
			if (ebr == ext_first && vhdx_buf_is_zero(buf, sizeof buf))
				return 0;
			return vhdx_err(EBADMSG,
					"EBR at byte %" PRIu64 " (extended partition %u): %s", ebr_off, slot,
					buf[510] != 0x55 || buf[511] != 0xAA ? "no 0x55AA signature"
									     : "an entry's status byte is not 0x00 or 0x80");
		}
		for (unsigned i = 0; i < 4; i++) {
			uint64_t entry_off = ebr_off + VHDX_MBR_ENTRIES_OFF + 16 * i, first;

			if (e[i].type == 0 || e[i].nsectors == 0)
				continue;
			if (vhdx_mbr_type_is_extended(e[i].type)) {
				if (link == UINT64_MAX) {
					link = e[i].lba;
					link_idx = i;
				}
				continue;
			}
			if (*next_number >= 5 + VHDX_MBR_MAX_LOGICAL)
				return vhdx_err(EBADMSG,
						"EBR at byte %" PRIu64 ": more than %u logical partitions", ebr_off,
						VHDX_MBR_MAX_LOGICAL);
			first = ebr + e[i].lba;
			/* a logical partition lies inside its extended partition */
			if (e[i].lba == 0 || first + e[i].nsectors > ext_first + ext_n)
				return vhdx_err(EBADMSG,
						"EBR at byte %" PRIu64 " entry %u (at byte %" PRIu64 "): logical partition of sectors %" PRIu64
						"-%" PRIu64 " lies outside its extended partition (sectors %" PRIu64 "-%" PRIu64 ")",
						ebr_off, i + 1, entry_off, first, first + e[i].nsectors - 1, ext_first,
						ext_first + ext_n - 1);
			snprintf(what, sizeof what, "EBR at byte %" PRIu64 " entry %u", ebr_off, i + 1);
			ret = add_part(t, (*next_number)++, VHDX_PART_F_LOGICAL, &e[i], first, entry_off, what);
			if (ret < 0)
				return ret;
		}
		if (link == UINT64_MAX)
			return 0;
		if (link >= ext_n)
			return vhdx_err(EBADMSG,
					"EBR at byte %" PRIu64 " entry %u (at byte %" PRIu64 "): the link to the next EBR (sector %" PRIu64
					" of the extended partition) lies outside the extended partition (%" PRIu64 " sectors)",
					ebr_off, link_idx + 1, ebr_off + VHDX_MBR_ENTRIES_OFF + 16 * link_idx, link, ext_n);
		ebr = ext_first + link;
	}
}

int vhdx_mbr_read(const uint8_t *mbr, vhdx_part_read_fn read, void *arg, struct vhdx_part_table *t)
{
	struct vhdx_mbr_entry e[4];
	unsigned next_number = 5;
	char what[64];
	int ret;

	if (vhdx_mbr_decode(mbr, e) < 0)
		return vhdx_err(EBADMSG, "MBR at byte 0: not a partition table");
	t->scheme = VHDX_PART_MBR;
	t->mbr_signature = vhdx_get_le32(mbr + 440);
	for (unsigned i = 0; i < 4; i++) {
		if (e[i].type == 0 || e[i].nsectors == 0)
			continue;
		snprintf(what, sizeof what, "MBR entry %u", i + 1);
		ret = add_part(t, i + 1, vhdx_mbr_type_is_extended(e[i].type) ? VHDX_PART_F_EXTENDED : 0, &e[i],
			       e[i].lba, VHDX_MBR_ENTRIES_OFF + 16 * i, what);
		if (ret < 0)
			return ret;
	}
	/* Then the logicals, in the order of the extended partitions (one, normally). */
	for (unsigned i = 0, n = t->n; i < n; i++) {
		struct vhdx_part ext = t->parts[i]; /* a copy: read_chain grows the array */

		if (!(ext.flags & VHDX_PART_F_EXTENDED))
			continue;
		ret = read_chain(&ext, ext.number, read, arg, t, &next_number);
		if (ret < 0)
			return ret;
	}
	return 0;
}
