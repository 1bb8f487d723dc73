/*
 * vhdx.c - L2 reader of VHDX files (MS-VHDX 2.2-2.6): picks the current
 * header and a valid region table, reads the metadata items, loads and
 * validates the BAT, and maps virtual ranges to file ranges, zeros or the
 * parent (through the sector bitmap for partially present blocks).
 *
 * Read semantics per payload state (FORMAT.md 1.6): FULLY_PRESENT from this
 * file; PARTIALLY_PRESENT per sector bit (1 = here, 0 = parent);
 * NOT_PRESENT from the parent (zeros for a base disk); ZERO, UNDEFINED and
 * UNMAPPED read as zeros and do not fall through.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "format/check.h"
#include "format/vhdx_create.h"
#include "format/vhdx_format.h"
#include "format/vhdx_log.h"
#include "format/vhdx_maint.h"
#include "format/vhdx_reparent.h"
#include "format/vhdx_write.h"
#include "codec/vhdx_locator.h"

static int vhdx_probe(struct vhdx_io *io, const uint8_t *head, size_t headlen, uint64_t file_size)
{
	return headlen >= 8 && !memcmp(head, VHDX_FILEID_SIG, 8) ? VHDX_BID_CERTAIN : 0;
}

static void state_free(struct vhdx_state *s)
{
	if (!s)
		return;
	vhdx_fileid_free(&s->fileid);
	for (int i = 0; i < 2; i++) {
		free(s->header_error[i]);
		free(s->region_error[i]);
	}
	free(s->regions);
	free(s->meta);
	free(s->locator_raw);
	free(s->bat);
	free(s->log_report);
	if (s->bitmaps) {
		for (uint64_t i = 0; i < s->geo.bitmap_blocks; i++)
			free(s->bitmaps[i]);
		free(s->bitmaps);
	}
	free(s->bitmap_loaded);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->bitmap_mutex);
	free(s);
}

/*
 * Reads both headers and picks the current one (MS-VHDX 2.2.2): a header is
 * valid when its signature and CRC check, and the current one is the valid
 * one with the larger sequence number.  Only then are its other fields
 * (versions, log placement) judged: a current header with an unsupported
 * version or a bad log placement makes the file unusable; falling back to
 * the older header would use stale data, which the spec forbids ("MUST
 * only use data from the current header").  header_valid[] stays "fully
 * usable" for the reports.
 */
static int read_headers(struct vhdx_layer *l, struct vhdx_state *s)
{
	static const uint64_t offs[2] = { VHDX_HEADER1_OFF, VHDX_HEADER2_OFF };
	uint8_t buf[VHDX_HEADER_SIZE];
	bool sum_ok[2] = { false, false };
	uint64_t seq[2] = { 0, 0 };
	int err[2] = { 0, 0 };
	int ret;

	for (int i = 0; i < 2; i++) {
		ret = vhdx_io_pread(l->io, buf, sizeof buf, offs[i], VHDX_TAG_HEADER);
		/* a read that failed says nothing about the header's contents (ETIMEDOUT,
		 * ENOTCONN, ESTALE, EACCES ... as much as EIO): never fall back to the
		 * other header for it; only "past the end of the file" (EBADMSG) is damage */
		if (ret < 0 && ret != -EBADMSG)
			return ret;
		if (ret == 0) {
			sum_ok[i] = vhdx_get_le32(buf) == VHDX_HEADER_SIG &&
				    vhdx_get_le32(buf + 4) == vhdx_crc32c_struct(buf, sizeof buf);
			seq[i] = vhdx_get_le64(buf + 8);
			ret = vhdx_header_decode(buf, sizeof buf, &s->headers[i]);
		}
		s->header_valid[i] = ret == 0;
		err[i] = ret;
		if (ret < 0)
			s->header_error[i] = vhdx_err_dup();
	}
	if (!sum_ok[0] && !sum_ok[1])
		return vhdx_err(EBADMSG, "no valid header: header 1 at 0x%x: %s; header 2 at 0x%x: %s",
				VHDX_HEADER1_OFF, s->header_error[0] ? s->header_error[0] : "?", VHDX_HEADER2_OFF,
				s->header_error[1] ? s->header_error[1] : "?");
	if (sum_ok[0] && sum_ok[1]) {
		/* Equal sequence numbers (Disk2VHD writes two identical headers) pick slot 0. */
		s->current = seq[1] > seq[0] ? 1 : 0;
	} else {
		s->current = sum_ok[0] ? 0 : 1;
	}
	if (!s->header_valid[s->current])
		return vhdx_err(-err[s->current], "header %d at 0x%llx is the current one (sequence number %llu) but %s",
				s->current + 1, (unsigned long long)offs[s->current],
				(unsigned long long)seq[s->current],
				s->header_error[s->current] ? s->header_error[s->current] : "is not usable");
	return 0;
}

/* Reads both region tables; uses the first valid one and notes a mismatch. */
static int read_regions(struct vhdx_layer *l, struct vhdx_state *s)
{
	static const uint64_t offs[2] = { VHDX_REGION1_OFF, VHDX_REGION2_OFF };
	uint8_t *buf[2] = { NULL, NULL };
	struct vhdx_region_table *tmp = NULL;
	int ret = 0;

	s->regions = calloc(1, sizeof *s->regions);
	tmp = calloc(1, sizeof *tmp);
	buf[0] = malloc(VHDX_REGION_SIZE);
	buf[1] = malloc(VHDX_REGION_SIZE);
	if (!s->regions || !tmp || !buf[0] || !buf[1]) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	s->region_used = -1;
	for (int i = 0; i < 2; i++) {
		ret = vhdx_io_pread(l->io, buf[i], VHDX_REGION_SIZE, offs[i], VHDX_TAG_REGION);
		if (ret < 0 && ret != -EBADMSG)
			goto out; /* an I/O error, not a bad copy (see read_headers) */
		if (ret == 0)
			ret = vhdx_region_table_decode(buf[i], VHDX_REGION_SIZE, s->region_used < 0 ? s->regions : tmp);
		if (ret == -ENOMEM)
			goto out;
		s->region_valid[i] = ret == 0;
		if (ret < 0)
			s->region_error[i] = vhdx_err_dup();
		else if (s->region_used < 0)
			s->region_used = i;
	}
	ret = 0;
	if (s->region_used < 0) {
		ret = vhdx_err(EBADMSG, "no valid region table: copy 1 at 0x%x: %s; copy 2 at 0x%x: %s",
			       VHDX_REGION1_OFF, s->region_error[0] ? s->region_error[0] : "?", VHDX_REGION2_OFF,
			       s->region_error[1] ? s->region_error[1] : "?");
		goto out;
	}
	s->regions_differ = s->region_valid[0] && s->region_valid[1] && memcmp(buf[0], buf[1], VHDX_REGION_SIZE);
out:
	free(tmp);
	free(buf[0]);
	free(buf[1]);
	return ret;
}

/* Finds the BAT and metadata regions; refuses unknown required regions. */
static int locate_regions(struct vhdx_state *s)
{
	const struct vhdx_header *h = &s->headers[s->current];
	const struct vhdx_region_entry *bat = NULL, *meta = NULL;
	char gs[VHDX_GUID_STRLEN];

	for (uint32_t i = 0; i < s->regions->entry_count; i++) {
		const struct vhdx_region_entry *e = &s->regions->entries[i];
		if (!memcmp(e->guid, VHDX_GUID_BAT_REGION, 16))
			bat = e;
		else if (!memcmp(e->guid, VHDX_GUID_METADATA_REGION, 16))
			meta = e;
		else if (e->required) {
			vhdx_guid_format(e->guid, gs);
			return vhdx_err(ENOTSUP, "region table entry %u: unknown required region %s", i, gs);
		}
		if (h->log_length && vhdx_ranges_overlap(e->file_offset, e->length, h->log_offset, h->log_length)) {
			vhdx_guid_format(e->guid, gs);
			return vhdx_err(EBADMSG, "region table entry %u (%s) at 0x%llx overlaps the log at 0x%llx", i,
					gs, (unsigned long long)e->file_offset, (unsigned long long)h->log_offset);
		}
	}
	if (!bat)
		return vhdx_err(EBADMSG, "region table: the required BAT region is missing");
	if (!meta)
		return vhdx_err(EBADMSG, "region table: the required metadata region is missing");
	s->bat_off = bat->file_offset;
	s->bat_len = bat->length;
	s->meta_off = meta->file_offset;
	s->meta_len = meta->length;
	return 0;
}

/* Reads one metadata item of exactly LEN bytes (0 = any length into *ALLOC). */
static int read_item(struct vhdx_layer *l, struct vhdx_state *s, const struct vhdx_metadata_entry *e, void *buf,
		     size_t len, const char *what)
{
	if (e->length != len)
		return vhdx_err(EBADMSG, "metadata item %s at 0x%llx: length %u, expected %zu", what,
				(unsigned long long)(s->meta_off + e->offset), e->length, len);
	return vhdx_io_pread(l->io, buf, len, s->meta_off + e->offset, VHDX_TAG_METADATA);
}

static int read_metadata(struct vhdx_layer *l, struct vhdx_state *s, unsigned flags)
{
	const struct vhdx_metadata_entry *e;
	uint8_t *buf, b8[8], b4[4];
	char gs[VHDX_GUID_STRLEN];
	uint64_t vsize;
	int ret;

	buf = malloc(VHDX_METADATA_TABLE_SIZE);
	s->meta = calloc(1, sizeof *s->meta);
	if (!buf || !s->meta) {
		free(buf);
		return vhdx_err(ENOMEM, "out of memory");
	}
	ret = vhdx_io_pread(l->io, buf, VHDX_METADATA_TABLE_SIZE, s->meta_off, VHDX_TAG_METADATA);
	if (ret == 0)
		ret = vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, s->meta_len, s->meta);
	free(buf);
	if (ret < 0)
		return vhdx_err_prefix(ret, "metadata region at 0x%llx", (unsigned long long)s->meta_off);

	for (uint16_t i = 0; i < s->meta->entry_count; i++) {
		e = &s->meta->entries[i];
		if (e->is_user)
			continue;
		if (!memcmp(e->item_id, VHDX_GUID_CHS_PARAMETERS, 16))
			s->has_chs = true;
		else if (!memcmp(e->item_id, VHDX_GUID_INCOMPLETE_FILE, 16))
			s->has_incomplete = true;
		else if (!memcmp(e->item_id, VHDX_GUID_PMEM_LABEL, 16))
			s->has_pmem = true;
		else if (!vhdx_known_guid_name(e->item_id) && e->is_required) {
			vhdx_guid_format(e->item_id, gs);
			return vhdx_err(ENOTSUP, "metadata entry %u: unknown required item %s", i, gs);
		}
	}
	for (uint16_t i = 0; i < s->meta->entry_count; i++) {
		e = &s->meta->entries[i];
		if (e->is_user && e->is_required) {
			vhdx_guid_format(e->item_id, gs);
			return vhdx_err(ENOTSUP, "metadata entry %u: unknown required user item %s", i, gs);
		}
	}
	if (s->has_incomplete && !(flags & VHDX_LAYER_ALLOW_INCOMPLETE))
		return vhdx_err(EBADMSG, "metadata: the incomplete-file marker is set (Windows did not finish creating this file)");

#define NEED(guid, name)                                                                         \
	do {                                                                                     \
		e = vhdx_metadata_find(s->meta, guid, false);                                    \
		if (!e)                                                                          \
			return vhdx_err(EBADMSG, "metadata: required item %s is missing", name); \
	} while (0)

	NEED(VHDX_GUID_FILE_PARAMETERS, "File Parameters");
	ret = read_item(l, s, e, b8, 8, "File Parameters");
	if (ret == 0)
		ret = vhdx_file_params_decode(b8, 8, &s->params);
	if (ret < 0)
		return vhdx_err_prefix(ret, "metadata item at 0x%llx", (unsigned long long)(s->meta_off + e->offset));

	NEED(VHDX_GUID_VIRTUAL_DISK_SIZE, "Virtual Disk Size");
	ret = read_item(l, s, e, b8, 8, "Virtual Disk Size");
	if (ret < 0)
		return ret;
	vsize = vhdx_get_le64(b8);

	NEED(VHDX_GUID_VIRTUAL_DISK_ID, "Virtual Disk ID");
	ret = read_item(l, s, e, l->disk_id, 16, "Virtual Disk ID");
	if (ret < 0)
		return ret;

	NEED(VHDX_GUID_LOGICAL_SECTOR_SIZE, "Logical Sector Size");
	ret = read_item(l, s, e, b4, 4, "Logical Sector Size");
	if (ret < 0)
		return ret;
	l->logical_sector_size = vhdx_get_le32(b4);

	NEED(VHDX_GUID_PHYSICAL_SECTOR_SIZE, "Physical Sector Size");
	ret = read_item(l, s, e, b4, 4, "Physical Sector Size");
	if (ret < 0)
		return ret;
	l->physical_sector_size = vhdx_get_le32(b4);
	if (l->physical_sector_size != 512 && l->physical_sector_size != 4096)
		return vhdx_err(EBADMSG, "metadata: physical sector size %u is neither 512 nor 4096",
				l->physical_sector_size);
#undef NEED

	ret = vhdx_geometry_init(&s->geo, vsize, s->params.block_size, l->logical_sector_size, s->params.has_parent);
	if (ret < 0)
		return vhdx_err_prefix(ret, "metadata");

	e = vhdx_metadata_find(s->meta, VHDX_GUID_PARENT_LOCATOR, false);
	if (s->params.has_parent) {
		if (!e)
			return vhdx_err(EBADMSG, "metadata: differencing disk without a parent locator item");
		s->locator_raw = malloc(e->length ? e->length : 1);
		if (!s->locator_raw)
			return vhdx_err(ENOMEM, "out of memory");
		s->locator_len = e->length;
		ret = vhdx_io_pread(l->io, s->locator_raw, e->length, s->meta_off + e->offset, VHDX_TAG_METADATA);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The overlap check between allocated blocks runs in two steps so that the
 * usual case (no overlap) costs O(entries) and no more memory than a bit
 * per megabyte of the file: every block is 1 MiB aligned, so marking the
 * megabytes each block covers in a bitmap finds whether ANY two blocks
 * overlap.  Only then (or when the bitmap would be too large: a file far
 * longer than its BAT can address) does bat_overlap_sorted() sort the
 * blocks by offset to name the pair, exactly as a sort-based check does,
 * so the message never depends on which path found the overlap.
 */

/* Sets the N bits from FIRST in BM; true if one of them was set already. */
static bool bat_mark(uint64_t *bm, uint64_t first, uint64_t n)
{
	bool hit = false;

	while (n) {
		unsigned b = (unsigned)(first & 63);
		uint64_t k = VHDX_MIN(64u - b, n);
		uint64_t mask = (k == 64 ? ~0ull : (1ull << k) - 1) << b;

		hit |= (bm[first >> 6] & mask) != 0;
		bm[first >> 6] |= mask;
		first += k;
		n -= k;
	}
	return hit;
}

/* Whether BAT entry I is an allocated block that takes part in the overlap check, and which kind. */
static bool bat_entry_allocated(const struct vhdx_geometry *g, uint64_t i, uint64_t e, bool *is_sb)
{
	unsigned st = vhdx_bat_state(e);

	*is_sb = (i % (g->chunk_ratio + 1)) == g->chunk_ratio;
	if (*is_sb)
		return g->has_parent && st == VHDX_BAT_FULLY_PRESENT;
	if (i - i / (g->chunk_ratio + 1) >= g->payload_blocks)
		return false;
	return st == VHDX_BAT_FULLY_PRESENT || (g->has_parent && st == VHDX_BAT_PARTIALLY_PRESENT);
}

/*
 * Names the first overlapping pair of blocks in offset order (the BAT's
 * entries are all valid by now): the blocks sorted by file offset, each
 * compared with the one before it.  0 if none overlap.
 */
static int bat_overlap_sorted(const struct vhdx_geometry *g, struct vhdx_state *s)
{
	uint64_t *allocs = malloc(2 * sizeof *allocs * (g->payload_blocks + g->bitmap_blocks));
	uint64_t nalloc = 0;
	int ret = 0;

	if (!allocs)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint64_t i = 0; i < g->bat_entries; i++) {
		bool is_sb;
		if (!bat_entry_allocated(g, i, s->bat[i], &is_sb))
			continue;
		/* (start, index << 1 | is_sb) pairs, sorted by start */
		allocs[2 * nalloc] = vhdx_bat_foff(s->bat[i]);
		allocs[2 * nalloc + 1] = (i << 1) | is_sb;
		nalloc++;
	}
	qsort(allocs, nalloc, 2 * sizeof *allocs, vhdx_cmp_u64);
	for (uint64_t k = 1; k < nalloc; k++) {
		uint64_t prev_i = allocs[2 * (k - 1) + 1] >> 1;
		bool prev_sb = allocs[2 * (k - 1) + 1] & 1;
		uint64_t prev_len = prev_sb ? VHDX_ALIGN : g->block_size;
		if (allocs[2 * k] < allocs[2 * (k - 1)] + prev_len) {
			uint64_t i = allocs[2 * k + 1] >> 1;
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at file offset 0x%llx overlaps the block of BAT entry %llu",
				       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
				       (unsigned long long)allocs[2 * k], (unsigned long long)prev_i);
			break;
		}
	}
	free(allocs);
	return ret;
}

/*
 * Loads the BAT and checks every entry: legal state for the disk type,
 * reserved bits, 1 MiB-aligned offsets inside the file, and no block
 * overlapping another block, the log, a region or the first megabyte.
 * The entries are read straight into s->bat and decoded in place by the
 * checking loop (one copy of the BAT in memory, one pass over it; on an
 * error the open fails and s->bat is freed, half decoded or not); the
 * overlap check between blocks is the bitmap above.  Cost: O(entries), memory: the BAT plus one bit per MiB
 * of the file.
 */
static int load_bat(struct vhdx_layer *l, struct vhdx_state *s)
{
	const struct vhdx_geometry *g = &s->geo;
	const struct vhdx_header *h = &s->headers[s->current];
	uint64_t need = g->bat_entries * 8;
	uint64_t *bm = NULL, bm_units = 0;
	bool overlap = false;
	int ret;

	if (need > s->bat_len)
		return vhdx_err(EBADMSG, "BAT region at 0x%llx: %u bytes cannot hold the %llu entries the disk needs",
				(unsigned long long)s->bat_off, s->bat_len, (unsigned long long)g->bat_entries);
	s->bat = malloc(need);
	if (!s->bat)
		return vhdx_err(ENOMEM, "out of memory for a BAT of %llu bytes", (unsigned long long)need);
	ret = vhdx_io_pread(l->io, s->bat, need, s->bat_off, VHDX_TAG_BAT);
	if (ret < 0)
		return ret;

	/*
	 * One bit per MiB up to the end of the file plus a block (the last
	 * block's full length counts in the overlap check, though only its
	 * part inside the virtual size must lie inside the file).  Files far
	 * longer than the BAT could fill get the sorting check instead.
	 */
	if (s->file_size / VHDX_ALIGN / 8 <= VHDX_MAX(need, 16ull << 20)) {
		bm_units = (s->file_size + g->block_size) / VHDX_ALIGN + 1;
		bm = calloc((size_t)(bm_units + 63) / 64, sizeof *bm);
		if (!bm)
			return vhdx_err(ENOMEM, "out of memory");
	}

	for (uint64_t i = 0; i < g->bat_entries; i++) {
		/* the entry's little-endian bytes become a number in place, in this one pass */
		uint64_t e = vhdx_get_le64((const uint8_t *)s->bat + 8 * i), foff = vhdx_bat_foff(e), len;
		unsigned st = vhdx_bat_state(e);
		bool is_sb = (i % (g->chunk_ratio + 1)) == g->chunk_ratio;
		uint64_t blk = i - i / (g->chunk_ratio + 1);
		bool present;

		s->bat[i] = e;
		if (is_sb) {
			if (!g->has_parent)
				continue; /* no sector bitmaps in a base disk; Windows leaves these zero */
			if (st != VHDX_BAT_NOT_PRESENT && st != VHDX_BAT_FULLY_PRESENT) {
				ret = vhdx_err(EBADMSG, "BAT entry %llu (sector bitmap of chunk %llu) at 0x%llx: invalid state %u",
					       (unsigned long long)i, (unsigned long long)(i / (g->chunk_ratio + 1)),
					       (unsigned long long)(s->bat_off + 8 * i), st);
				goto out;
			}
			present = st == VHDX_BAT_FULLY_PRESENT;
			len = VHDX_ALIGN;
			if (present)
				s->sb_present++;
		} else {
			if (blk >= g->payload_blocks)
				continue; /* padding entries of a differencing disk's last chunk */
			if (!vhdx_bat_payload_state_ok(st, g->has_parent)) {
				ret = vhdx_err(EBADMSG, "BAT entry %llu (block %llu) at 0x%llx: state %u is not valid for a %s disk",
					       (unsigned long long)i, (unsigned long long)blk,
					       (unsigned long long)(s->bat_off + 8 * i), st,
					       g->has_parent ? "differencing" : "non-differencing");
				goto out;
			}
			s->bat_counts[st]++;
			present = st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
			/* the last block of a disk may be partly beyond the virtual size */
			len = VHDX_MIN((uint64_t)g->block_size, g->virtual_size - blk * g->block_size);
		}
		if (!present)
			continue;
		if (e & VHDX_BAT_RESERVED_MASK) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: reserved bits set (0x%016llx)",
				       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
				       (unsigned long long)e);
			goto out;
		}
		if (foff < VHDX_ALIGN) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: %s at file offset 0x%llx lies inside the first megabyte (headers and region tables)",
				       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
				       is_sb ? "sector bitmap block" : "payload block", (unsigned long long)foff);
			goto out;
		}
		if (!vhdx_range_ok(foff, len, s->file_size)) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: %s at file offset 0x%llx (+0x%llx) is past the end of the file (0x%llx bytes)",
				       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
				       is_sb ? "sector bitmap block" : "payload block", (unsigned long long)foff,
				       (unsigned long long)len, (unsigned long long)s->file_size);
			goto out;
		}
		if (h->log_length && vhdx_ranges_overlap(foff, len, h->log_offset, h->log_length)) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at 0x%llx overlaps the log",
				       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
				       (unsigned long long)foff);
			goto out;
		}
		for (uint32_t r = 0; r < s->regions->entry_count; r++) {
			const struct vhdx_region_entry *re = &s->regions->entries[r];
			if (vhdx_ranges_overlap(foff, len, re->file_offset, re->length)) {
				ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at 0x%llx overlaps region table entry %u",
					       (unsigned long long)i, (unsigned long long)(s->bat_off + 8 * i),
					       (unsigned long long)foff, r);
				goto out;
			}
		}
		/* foff < file_size here, so the block's megabytes fit the bitmap */
		if (bm && !overlap)
			overlap = bat_mark(bm, foff / VHDX_ALIGN, (is_sb ? VHDX_ALIGN : g->block_size) / VHDX_ALIGN);
	}
	/* every entry is valid: now name an overlap, if the bitmap saw one (or could not look) */
	ret = overlap || !bm ? bat_overlap_sorted(g, s) : 0;
out:
	free(bm);
	return ret;
}

static int vhdx_open_layer(struct vhdx_layer *l, unsigned flags)
{
	struct vhdx_state *s = calloc(1, sizeof *s);
	uint8_t *buf = NULL;
	int ret;

	if (!s)
		return vhdx_err(ENOMEM, "out of memory");
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->bitmap_mutex, NULL);
	l->priv = s;
	l->format = VHDX_FORMAT_VHDX;

	buf = malloc(VHDX_FILEID_SIZE);
	if (!buf)
		return vhdx_err(ENOMEM, "out of memory");
	ret = vhdx_io_pread(l->io, buf, VHDX_FILEID_SIZE, 0, VHDX_TAG_FILEID);
	if (ret == 0)
		ret = vhdx_fileid_decode(buf, VHDX_FILEID_SIZE, &s->fileid);
	free(buf);
	if (ret < 0)
		return ret;
	ret = read_headers(l, s);
	if (ret < 0)
		return ret;

	if (!vhdx_guid_is_zero(s->headers[s->current].log_guid)) {
		s->log_was_dirty = true;
		ret = vhdx_log_open_dirty(l, s, flags);
		if (ret < 0)
			return ret;
	}
	ret = vhdx_io_get_size(l->io, &s->file_size);
	if (ret < 0)
		return ret;

	ret = read_regions(l, s);
	if (ret < 0)
		return ret;
	ret = locate_regions(s);
	if (ret < 0)
		return ret;
	if (!vhdx_range_ok(s->bat_off, s->bat_len, s->file_size) && s->bat_off >= s->file_size)
		return vhdx_err(EBADMSG, "BAT region at 0x%llx lies past the end of the file (0x%llx bytes)",
				(unsigned long long)s->bat_off, (unsigned long long)s->file_size);
	if (!vhdx_range_ok(s->meta_off, s->meta_len, s->file_size))
		return vhdx_err(EBADMSG, "metadata region at 0x%llx (+0x%x) lies past the end of the file (0x%llx bytes)",
				(unsigned long long)s->meta_off, s->meta_len, (unsigned long long)s->file_size);
	ret = read_metadata(l, s, flags);
	if (ret < 0)
		return ret;
	ret = load_bat(l, s);
	if (ret < 0)
		return ret;

	l->type = s->params.has_parent ? VHDX_TYPE_DIFFERENCING
		  : s->params.leave_blocks_allocated ? VHDX_TYPE_FIXED : VHDX_TYPE_DYNAMIC;
	l->virtual_size = s->geo.virtual_size;
	l->block_size = s->geo.block_size;
	memcpy(l->identity, s->headers[s->current].data_write_guid, 16);
	l->has_parent = s->params.has_parent;
	if (l->has_parent) {
		ret = vhdx_locator_decode(s->locator_raw, s->locator_len, &l->parent);
		if (ret < 0)
			return vhdx_err_prefix(ret, "parent locator");
	}
	if (s->geo.bitmap_blocks && s->params.has_parent) {
		s->bitmaps = vhdx_calloc(s->geo.bitmap_blocks, sizeof *s->bitmaps);
		if (!s->bitmaps)
			return vhdx_err(ENOMEM, "out of memory");
		/* a read-only layer (every parent in a chain) loads only the pages its reads need */
		if (!(flags & VHDX_LAYER_WRITABLE)) {
			s->bitmap_loaded = vhdx_calloc(s->geo.bitmap_blocks * VHDX_BITMAP_WORDS, sizeof *s->bitmap_loaded);
			if (!s->bitmap_loaded)
				return vhdx_err(ENOMEM, "out of memory");
		}
	}
	if (flags & VHDX_LAYER_WRITABLE)
		return vhdx_write_open(l, s);
	return 0;
}

/* True if pages P0..P1 of CHUNK's cached bitmap block are loaded (read-only layers). */
static bool bitmap_pages_loaded(const struct vhdx_state *s, uint64_t chunk, uint64_t p0, uint64_t p1)
{
	const uint64_t *w = s->bitmap_loaded + chunk * VHDX_BITMAP_WORDS;

	for (uint64_t p = p0; p <= p1; p++)
		if (!((__atomic_load_n(&w[p / 64], __ATOMIC_ACQUIRE) >> (p % 64)) & 1))
			return false;
	return true;
}

/*
 * Loads the pages of P0..P1 that BM (CHUNK's block, at file offset FOFF)
 * lacks, each run of missing pages with one read.  Caller holds
 * bitmap_mutex, the only writer of the loaded bits.
 */
static int bitmap_load_pages(struct vhdx_layer *l, struct vhdx_state *s, uint64_t chunk, uint8_t *bm, uint64_t foff,
			     uint64_t p0, uint64_t p1)
{
	uint64_t *w = s->bitmap_loaded + chunk * VHDX_BITMAP_WORDS;

	for (uint64_t p = p0; p <= p1;) {
		uint64_t q = p;
		int ret;

		if ((w[p / 64] >> (p % 64)) & 1) {
			p++;
			continue;
		}
		while (q + 1 <= p1 && !((w[(q + 1) / 64] >> ((q + 1) % 64)) & 1))
			q++;
		ret = vhdx_io_pread(l->io, bm + p * VHDX_BITMAP_PAGE, (size_t)(q - p + 1) * VHDX_BITMAP_PAGE,
				    foff + p * VHDX_BITMAP_PAGE, VHDX_TAG_BITMAP);
		if (ret < 0)
			return ret;
		/* release: a reader that sees the bit sees the page's bytes */
		for (; p <= q; p++)
			__atomic_or_fetch(&w[p / 64], 1ull << (p % 64), __ATOMIC_RELEASE);
	}
	return 0;
}

/*
 * Returns CHUNK's cached sector bitmap block, with at least the bytes
 * FIRST..LAST of it loaded.  A writable layer loads the whole 1 MiB block
 * on first use; a read-only one only the 4 KiB pages a lookup needs, so
 * the first read through a deep chain reads a page per layer, not a MiB.
 */
static int get_bitmap(struct vhdx_layer *l, struct vhdx_state *s, uint64_t chunk, uint64_t first, uint64_t last,
		      const uint8_t **out)
{
	uint64_t e = s->bat[vhdx_bat_bitmap_index(&s->geo, chunk)];
	uint64_t p0 = first / VHDX_BITMAP_PAGE, p1 = last / VHDX_BITMAP_PAGE;
	uint8_t *bm;
	int ret = 0;

	bm = __atomic_load_n(&s->bitmaps[chunk], __ATOMIC_ACQUIRE);
	if (bm && (!s->bitmap_loaded || bitmap_pages_loaded(s, chunk, p0, p1))) {
		*out = bm;
		return 0;
	}
	if (vhdx_bat_state(e) != VHDX_BAT_FULLY_PRESENT)
		return vhdx_err(EBADMSG, "chunk %llu has partially present blocks but its sector bitmap block (BAT entry %llu) is not present",
				(unsigned long long)chunk, (unsigned long long)vhdx_bat_bitmap_index(&s->geo, chunk));
	pthread_mutex_lock(&s->bitmap_mutex);
	bm = s->bitmaps[chunk];
	if (!bm) {
		bm = malloc(VHDX_ALIGN);
		if (!bm) {
			ret = vhdx_err(ENOMEM, "out of memory");
		} else if (s->bitmap_loaded) {
			/* published before any page: readers look at the loaded bits first */
			__atomic_store_n(&s->bitmaps[chunk], bm, __ATOMIC_RELEASE);
		} else {
			ret = vhdx_io_pread(l->io, bm, VHDX_ALIGN, vhdx_bat_foff(e), VHDX_TAG_BITMAP);
			if (ret < 0) {
				free(bm);
				bm = NULL;
			} else {
				__atomic_store_n(&s->bitmaps[chunk], bm, __ATOMIC_RELEASE);
			}
		}
	}
	if (ret == 0 && s->bitmap_loaded)
		ret = bitmap_load_pages(l, s, chunk, bm, vhdx_bat_foff(e), p0, p1);
	pthread_mutex_unlock(&s->bitmap_mutex);
	*out = bm;
	return ret;
}

/* Length in sectors of the run of equal bits starting at bit FIRST (< LIMIT), LSB-first. */
static uint64_t bit_run(const uint8_t *bm, uint64_t first, uint64_t limit, bool *value)
{
	bool v = (bm[first >> 3] >> (first & 7)) & 1;
	uint64_t i = first + 1;

	*value = v;
	/* finish the current byte, then skip whole bytes of 0x00 / 0xff */
	while (i < limit && (i & 7)) {
		if ((bool)((bm[i >> 3] >> (i & 7)) & 1) != v)
			return i - first;
		i++;
	}
	while (i + 8 <= limit && bm[i >> 3] == (v ? 0xff : 0x00))
		i += 8;
	while (i < limit && (bool)((bm[i >> 3] >> (i & 7)) & 1) == v)
		i++;
	return i - first;
}

static int map_partial(struct vhdx_layer *l, struct vhdx_state *s, uint64_t voff, uint64_t maxlen, uint64_t e,
		     struct vhdx_layer_extent *ext)
{
	const struct vhdx_geometry *g = &s->geo;
	uint64_t lss = g->logical_sector_size;
	uint64_t sector = voff / lss;
	uint64_t chunk = sector / VHDX_CHUNK_SECTORS;
	uint64_t bit = sector % VHDX_CHUNK_SECTORS;
	uint64_t blk_end_sector = ((voff / g->block_size) + 1) * (g->block_size / lss);
	uint64_t end_sector = vhdx_div_round_up(voff + maxlen, lss);
	uint64_t limit_bits, run;
	const uint8_t *bm = NULL; /* set by get_bitmap() when it returns 0 */
	bool present;
	int ret;

	end_sector = VHDX_MIN(end_sector, blk_end_sector);
	limit_bits = bit + (end_sector - sector);
	/* bit_run() reads the bytes of bits bit..limit_bits-1 */
	ret = get_bitmap(l, s, chunk, bit / 8, (limit_bits - 1) / 8, &bm);
	if (ret < 0)
		return ret;
	run = bit_run(bm, bit, limit_bits, &present);
	/* bytes from voff to the end of the run, clipped to maxlen */
	ext->len = VHDX_MIN((sector + run) * lss - voff, maxlen);
	if (present) {
		ext->kind = VHDX_LEXT_DATA;
		ext->foff = vhdx_bat_foff(e) + voff % g->block_size;
	} else {
		ext->kind = VHDX_LEXT_PARENT;
	}
	return 0;
}

static int vhdx_layer_map(struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, struct vhdx_layer_extent *ext)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_geometry *g = &s->geo;
	uint64_t blk = voff / g->block_size;
	uint64_t in_blk = voff % g->block_size;
	uint64_t e;
	int ret = 0;

	maxlen = VHDX_MIN(maxlen, g->virtual_size - voff);
	pthread_rwlock_rdlock(&s->lock);
	e = s->bat[vhdx_bat_payload_index(g, blk)];
	ext->len = VHDX_MIN(maxlen, g->block_size - in_blk);
	switch (vhdx_bat_state(e)) {
	case VHDX_BAT_FULLY_PRESENT:
		ext->kind = VHDX_LEXT_DATA;
		ext->foff = vhdx_bat_foff(e) + in_blk;
		break;
	case VHDX_BAT_PARTIALLY_PRESENT:
		ret = map_partial(l, s, voff, ext->len, e, ext);
		break;
	case VHDX_BAT_NOT_PRESENT:
		ext->kind = g->has_parent ? VHDX_LEXT_PARENT : VHDX_LEXT_ZERO;
		break;
	default: /* ZERO, UNDEFINED, UNMAPPED: zeros, never the parent */
		ext->kind = VHDX_LEXT_ZERO;
		break;
	}
	pthread_rwlock_unlock(&s->lock);
	return ret;
}

static int vhdx_close_layer(struct vhdx_layer *l)
{
	struct vhdx_state *s = vhdx_state_of(l);
	int ret = 0;

	if (s && s->writer)
		ret = vhdx_write_close(l, s);
	state_free(s);
	l->priv = NULL;
	return ret;
}

/* A VHDX child needs nothing of its opened parent beyond what P holds (the linkage). */
static int vhdx_create_check_op(const struct vhdx_create_params *p, const struct vhdx_layer *parent)
{
	(void)parent;
	return vhdx_create_vhdx_check(p);
}

static int vhdx_create_op(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p,
			  const struct vhdx_layer *parent)
{
	(void)parent;
	return vhdx_create_vhdx(io, path, p);
}

const struct vhdx_format_ops vhdx_format_vhdx = {
	.name = "vhdx",
	.id = VHDX_FORMAT_VHDX,
	.probe = vhdx_probe,
	.open = vhdx_open_layer,
	.map = vhdx_layer_map,
	.pwrite = vhdx_write,
	.flush = vhdx_write_flush,
	.discard = vhdx_write_discard,
	.close = vhdx_close_layer,
	.check = &vhdx_checker_vhdx,
	.compact = vhdx_compact_vhdx,
	.resize = vhdx_resize_vhdx,
	.reparent = vhdx_reparent_vhdx,
	.create_check = vhdx_create_check_op,
	.create = vhdx_create_op,
};
