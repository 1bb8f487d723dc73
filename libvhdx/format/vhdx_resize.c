/*
 * vhdx_resize.c - changing the virtual size of a VHDX in place (MS-VHDX
 * 2.6.2.2 Virtual Disk Size, 2.5 BAT geometry, 2.2.3 region table, 2.3
 * log).
 *
 * Grow.  The BAT needs PayloadBlocks + (PayloadBlocks - 1) / ChunkRatio
 * entries (FORMAT.md 1.6); entry indices of existing blocks do not change
 * with the size (the chunk ratio depends only on the sector and block
 * sizes), so the old entries stay where they are and new ones follow.
 *   - When the BAT region has room, the new entries are journaled into it.
 *   - Otherwise a larger region is written at the end of the file (old
 *     entries copied, new ones NOT_PRESENT) and the region table (both
 *     copies, at 192 and 256 KiB, which the log may target) is journaled
 *     to point at it; the old region becomes free space.
 *   - A fixed disk gets its new blocks allocated (zero-filled file space,
 *     allocated on the file system: posix_fallocate).
 *   - The old last block, when it was only partly inside the disk, gets the
 *     rest of its block zeroed so that the new area reads as zeros.
 * Every data write (new table, zeroed tail, grown file) is flushed before
 * the log entry that makes it reachable.  The Virtual Disk Size item goes
 * in the last log entry, after (or with) every BAT change the new size
 * needs: entries past the old table are ignored by a reader of the old
 * size, so any crash leaves the old size with the old content, or the new
 * size with all of it.
 *
 * Shrink.  Refused when a block past the new end is allocated (the first
 * one is named).  The size is journaled first, then the entries past the
 * new table are cleared (they read as zeros either way in a base disk).
 *
 * A size change is user-visible: DataWriteGuid is renewed (children of
 * this disk no longer link to it, as with any change of its data).
 * Differencing disks are refused: a child's size is its parent's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/endian.h"
#include "format/vhdx_maint.h"

#define PAGE VHDX_LOG_SECTOR

struct page_list {
	struct vhdx_log_page pages[80];
	enum vhdx_tag tags[80];
	uint8_t *data[80];
	size_t n;
};

static int add_page(struct page_list *pl, uint64_t foff, const uint8_t *bytes, enum vhdx_tag tag)
{
	uint8_t *d;

	if (pl->n >= VHDX_ARRAY_LEN(pl->pages))
		return vhdx_err(EINVAL, "internal error: too many pages for one resize entry");
	d = malloc(PAGE);
	if (!d)
		return vhdx_err(ENOMEM, "out of memory");
	memcpy(d, bytes, PAGE);
	pl->data[pl->n] = d;
	pl->pages[pl->n].file_offset = foff;
	pl->pages[pl->n].data = d;
	pl->tags[pl->n] = tag;
	pl->n++;
	return 0;
}

static void free_pages(struct page_list *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->data[i]);
	pl->n = 0;
}

/* The page(s) holding the Virtual Disk Size item, with NEW_SIZE in it. */
static int size_pages(struct vhdx_layer *l, struct vhdx_state *s, uint64_t new_size, struct page_list *pl)
{
	const struct vhdx_metadata_entry *e = vhdx_metadata_find(s->meta, VHDX_GUID_VIRTUAL_DISK_SIZE, false);
	uint8_t buf[2 * PAGE];
	uint64_t item, first, n;
	int ret;

	if (!e || e->length != 8)
		return vhdx_err(EBADMSG, "%s: metadata: no 8-byte Virtual Disk Size item", l->path);
	item = s->meta_off + e->offset;
	first = item / PAGE * PAGE;
	n = (item + 7) / PAGE - item / PAGE + 1;
	ret = vhdx_io_pread(l->io, buf, n * PAGE, first, VHDX_TAG_METADATA);
	if (ret < 0)
		return ret;
	vhdx_put_le64(buf + (item - first), new_size);
	for (uint64_t p = 0; p < n && ret == 0; p++)
		ret = add_page(pl, first + p * PAGE, buf + p * PAGE, VHDX_TAG_METADATA);
	return ret;
}

/* The changed pages of both region table copies with the BAT region at NEW_OFF (+NEW_LEN). */
static int region_pages(struct vhdx_layer *l, struct vhdx_state *s, uint64_t new_off, uint32_t new_len,
			struct page_list *pl)
{
	static const uint64_t offs[2] = { VHDX_REGION1_OFF, VHDX_REGION2_OFF };
	struct vhdx_region_table *t = malloc(sizeof *t);
	uint8_t *neu = malloc(VHDX_REGION_SIZE), *old = malloc(VHDX_REGION_SIZE);
	bool found = false;
	int ret = 0;

	if (!t || !neu || !old) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	*t = *s->regions;
	for (uint32_t i = 0; i < t->entry_count; i++)
		if (!memcmp(t->entries[i].guid, VHDX_GUID_BAT_REGION, 16)) {
			t->entries[i].file_offset = new_off;
			t->entries[i].length = new_len;
			found = true;
		}
	if (!found) {
		ret = vhdx_err(EBADMSG, "%s: region table without a BAT entry", l->path);
		goto out;
	}
	vhdx_region_table_encode(t, neu);
	for (int c = 0; c < 2 && ret == 0; c++) {
		ret = vhdx_io_pread(l->io, old, VHDX_REGION_SIZE, offs[c], VHDX_TAG_REGION);
		for (uint32_t p = 0; p < VHDX_REGION_SIZE && ret == 0; p += PAGE)
			if (memcmp(old + p, neu + p, PAGE))
				ret = add_page(pl, offs[c] + p, neu + p, VHDX_TAG_REGION);
	}
out:
	free(t);
	free(neu);
	free(old);
	return ret;
}

static bool overlaps_fixed(struct vhdx_state *s, uint64_t off, uint64_t len)
{
	const struct vhdx_header *h = &s->headers[s->current];

	if (off < VHDX_ALIGN)
		return true;
	if (h->log_length && vhdx_ranges_overlap(off, len, h->log_offset, h->log_length))
		return true;
	for (uint32_t r = 0; r < s->regions->entry_count; r++)
		if (vhdx_ranges_overlap(off, len, s->regions->entries[r].file_offset, s->regions->entries[r].length))
			return true;
	return false;
}

/* Journals the BAT entries [FIRST, END) as s->bat holds them, through J. */
static int commit_entries(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j, unsigned flags,
			  uint64_t first, uint64_t end)
{
	struct vhdx_log_page *pages = NULL;
	enum vhdx_tag *tags = NULL;
	uint8_t *data = NULL;
	size_t n = 0, npages = 0;
	uint64_t *idx = vhdx_calloc(end - first + 1, sizeof *idx);
	int ret;

	if (!idx)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint64_t i = first; i < end; i++)
		idx[n++] = i;
	ret = vhdx_maint_bat_pages(l, s, idx, n, &pages, &tags, &data, &npages);
	if (ret == 0)
		ret = vhdx_maint_commit(l, j, flags, pages, tags, npages, s->file_size);
	free(idx);
	free(pages);
	free(tags);
	free(data);
	return ret;
}

/* A shrink past an allocated block loses data: refused before anything is written. */
static int shrink_check(const struct vhdx_layer *l, const struct vhdx_state *s, const struct vhdx_geometry *old,
			const struct vhdx_geometry *ng)
{
	for (uint64_t blk = ng->payload_blocks; blk < old->payload_blocks; blk++) {
		uint64_t e = s->bat[vhdx_bat_payload_index(old, blk)];
		unsigned st = vhdx_bat_state(e);
		if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT)
			return vhdx_err(EINVAL, "cannot shrink %s to %llu bytes: block %llu (virtual offset %llu) past the new end is allocated (file offset 0x%llx)%s",
					l->path, (unsigned long long)ng->virtual_size, (unsigned long long)blk,
					(unsigned long long)(blk * old->block_size), (unsigned long long)vhdx_bat_foff(e),
					l->type == VHDX_TYPE_FIXED ? "" : "; 'vhdx compact' frees it if it holds only zeros");
	}
	return 0;
}

/*
 * A grow whose old size ends inside its last block: the part of that block
 * past the old size must read zero from now on.  *FILE_END grows to cover
 * the whole block.
 */
static int grow_last_block(struct vhdx_layer *l, struct vhdx_state *s, const struct vhdx_geometry *old,
			   uint64_t *file_end)
{
	uint64_t blk = old->payload_blocks - 1, e = s->bat[vhdx_bat_payload_index(old, blk)];
	uint64_t have = old->virtual_size - blk * old->block_size, foff = vhdx_bat_foff(e);
	int ret;

	if (vhdx_bat_state(e) != VHDX_BAT_FULLY_PRESENT)
		return 0;
	if (overlaps_fixed(s, foff + have, old->block_size - have))
		return vhdx_err(ENOSPC, "%s: the last block at file offset 0x%llx cannot grow to a whole block: a region or the log follows it",
				l->path, (unsigned long long)foff);
	ret = vhdx_io_zero_range(l->io, foff + have, old->block_size - have, VHDX_TAG_PAYLOAD);
	if (ret < 0)
		return ret;
	*file_end = VHDX_MAX(*file_end, foff + old->block_size);
	return 0;
}

/* Writes the grown table of NG's entries at NEW_OFF (NEW_LEN bytes), a place nothing names yet. */
static int write_new_table(struct vhdx_layer *l, const struct vhdx_state *s, const struct vhdx_geometry *ng,
			   uint64_t new_off, uint32_t new_len)
{
	uint8_t *table = calloc(1, new_len);
	int ret;

	if (!table)
		return vhdx_err(ENOMEM, "out of memory for a BAT of %u bytes", new_len);
	for (uint64_t i = 0; i < ng->bat_entries; i++)
		vhdx_put_le64(table + 8 * i, s->bat[i]);
	ret = vhdx_io_pwrite(l->io, table, new_len, new_off, VHDX_TAG_BAT);
	free(table);
	return ret;
}

int vhdx_resize_vhdx(struct vhdx_layer *l, uint64_t new_size, struct vhdx_resize_result *res)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_geometry old = s->geo;
	struct vhdx_geometry ng;
	struct vhdx_journal j;
	struct page_list pl;
	uint64_t *nbat;
	uint64_t file_end, new_bat_off = 0, need;
	uint32_t new_bat_len = 0;
	bool fixed = l->type == VHDX_TYPE_FIXED, relocate;
	const unsigned flags = VHDX_HDR_NEW_FILE_GUID | VHDX_HDR_NEW_DATA_GUID;
	int ret;

	memset(&j, 0, sizeof j);
	memset(&pl, 0, sizeof pl);
	res->old_size = old.virtual_size;
	res->new_size = new_size;
	res->old_file_size = res->new_file_size = s->file_size;
	if (l->has_parent)
		return vhdx_err(EINVAL, "%s is a differencing image: its virtual size must stay its parent's (%llu bytes)",
				l->path, (unsigned long long)old.virtual_size);
	if (new_size == 0 || new_size % old.logical_sector_size)
		return vhdx_err(EINVAL, "new size %llu is not a positive multiple of the logical sector size (%u bytes)",
				(unsigned long long)new_size, old.logical_sector_size);
	if (new_size > VHDX_MAX_VIRTUAL_SIZE)
		return vhdx_err(EINVAL, "new size %llu is larger than the VHDX limit of 64 TiB",
				(unsigned long long)new_size);
	if (!l->writable || !s->writer)
		return vhdx_err(EROFS, "%s: opened read-only", l->path);
	if (new_size == old.virtual_size)
		return 0;
	ret = vhdx_geometry_init(&ng, new_size, old.block_size, old.logical_sector_size, false);
	if (ret == 0 && new_size < old.virtual_size)
		ret = shrink_check(l, s, &old, &ng);
	if (ret < 0)
		return ret;
	/* new FileWriteGuid and DataWriteGuid before the first byte of the file changes (MS-VHDX 2.2.2) */
	ret = vhdx_journal_start_flags(l, s, &j, flags);
	if (ret < 0)
		return ret;

	if (new_size < old.virtual_size) {
		/* the new size first, then the entries past the new table (zeros either way) */
		ret = size_pages(l, s, new_size, &pl);
		if (ret == 0)
			ret = vhdx_maint_commit(l, &j, flags, pl.pages, pl.tags, pl.n, s->file_size);
		if (ret < 0)
			goto out;
		for (uint64_t i = ng.bat_entries; i < old.bat_entries; i++)
			s->bat[i] = 0;
		ret = commit_entries(l, s, &j, flags, ng.bat_entries, old.bat_entries);
		goto finish;
	}

	/* ---- grow: data first (nothing names it yet), one flush, then the log ---- */
	need = ng.bat_entries * 8;
	relocate = need > s->bat_len;
	file_end = vhdx_round_up(s->file_size, VHDX_ALIGN);
	if (old.virtual_size % old.block_size) {
		ret = grow_last_block(l, s, &old, &file_end);
		if (ret < 0)
			goto out;
	}
	nbat = realloc(s->bat, ng.bat_entries * sizeof *s->bat);
	if (!nbat) {
		ret = vhdx_err(ENOMEM, "out of memory for a BAT of %llu entries", (unsigned long long)ng.bat_entries);
		goto out;
	}
	s->bat = nbat;
	memset(s->bat + old.bat_entries, 0, (ng.bat_entries - old.bat_entries) * sizeof *s->bat);
	if (relocate) {
		if (need > UINT32_MAX - VHDX_ALIGN) {
			ret = vhdx_err(EINVAL, "%s: a BAT of %llu bytes does not fit a region", l->path, (unsigned long long)need);
			goto out;
		}
		new_bat_len = (uint32_t)vhdx_round_up(need, VHDX_ALIGN);
		new_bat_off = file_end;
		file_end += new_bat_len;
	}
	if (fixed) {
		/* a fixed disk keeps every block allocated: zero-filled file space for the new ones */
		for (uint64_t blk = old.payload_blocks; blk < ng.payload_blocks; blk++) {
			s->bat[vhdx_bat_payload_index(&ng, blk)] = vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, file_end);
			file_end += old.block_size;
		}
	}
	if (file_end > s->file_size) {
		/* a fixed disk's new blocks get real space, as at create time (issue
		 * #15 item 3): a full file system fails here, before any metadata change */
		ret = fixed ? vhdx_io_allocate(l->io, s->file_size, file_end - s->file_size, VHDX_TAG_PAYLOAD) : 0;
		if (ret == 0)
			ret = vhdx_io_set_size(l->io, file_end);
		if (ret < 0)
			goto out;
		s->file_size = file_end;
	}
	if (relocate) {
		ret = write_new_table(l, s, &ng, new_bat_off, new_bat_len);
		if (ret < 0)
			goto out;
	}
	/* the new table, zeroed tails and grown file durable before the log names them */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		goto out;
	if (relocate) {
		ret = region_pages(l, s, new_bat_off, new_bat_len, &pl);
		res->bat_relocated = 1;
	} else {
		/* the new entries first (ignored by a reader of the old size), the size last */
		s->geo = ng;
		ret = commit_entries(l, s, &j, flags, old.bat_entries, ng.bat_entries);
	}
	if (ret == 0)
		ret = size_pages(l, s, new_size, &pl);
	/* the region table (when the BAT moved) and the size in one entry */
	if (ret == 0)
		ret = vhdx_maint_commit(l, &j, flags, pl.pages, pl.tags, pl.n, s->file_size);
finish:
	if (ret == 0 && j.active)
		ret = vhdx_journal_finish(l, s, &j);
	if (ret == 0)
		res->new_file_size = s->file_size;
out:
	if (ret < 0 && j.active)
		(void)vhdx_journal_finish(l, s, &j); /* best effort: a clear log if the file still takes writes */
	free_pages(&pl);
	return ret;
}
