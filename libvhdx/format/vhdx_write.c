/*
 * vhdx_write.c - writing the leaf of a VHDX (MS-VHDX 2.4-2.5 for the block
 * states, 2.3 for the log): payload goes straight to its block; a write into
 * a block the file does not hold allocates a new 1 MiB-aligned block at the
 * end of the file; BAT and sector-bitmap changes are made in memory at once
 * (so reads see them) and reach the file only through the journal at flush.
 *
 * Crash-safety argument, in the order things happen:
 *   - payload bytes of a new block are written before any BAT entry that
 *     points at them is journaled, and flush #1 of vhdx_write_flush makes
 *     them (and the grown file size) durable before the entry is written;
 *   - the entry is durable (flush #2, inside the journal) before its pages
 *     are written in place, so a torn in-place write is redone by replay;
 *   - a crash before flush #2 loses only unflushed writes: the on-disk BAT
 *     still describes the old, consistent state.
 * Writes into blocks the file already holds are plain payload writes; they
 * are durable after the next flush, like on any disk.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "libvhdx.h"
#include "base/base.h"
#include "codec/endian.h"
#include "format/vhdx_journal.h"
#include "format/vhdx_write.h"

/* A dirty metadata page and, for a bitmap page, the chunk whose cached bitmap holds it. */
struct dirty_page {
	uint64_t foff;  /* first member: sorted with vhdx_cmp_u64 */
	uint64_t chunk; /* NO_CHUNK for BAT pages */
};
#define NO_CHUNK UINT64_MAX

struct vhdx_writer {
	struct vhdx_journal journal;
	uint64_t file_end;      /* 1 MiB-aligned end of the file: the next block goes here */
	bool data_dirty;        /* payload written since the last flush */
	struct dirty_page *dirty; /* dirty 4 KiB metadata pages (unsorted, may repeat) */
	size_t n_dirty, cap_dirty;
	uint64_t blocks_allocated, bitmaps_allocated;
};

#define PAGE VHDX_LOG_SECTOR

int vhdx_write_open(struct vhdx_layer *l, struct vhdx_state *s)
{
	const struct vhdx_header *h = &s->headers[s->current];
	struct vhdx_writer *w;
	int ret;

	/*
	 * Every metadata change goes through the log, and the first one sets
	 * the LogGuid: with a log the writer cannot use, that first write
	 * would leave a header naming a log that no reader can replay (issue
	 * #15 item 6).  So refuse here, before anything changes.  (Overlaps
	 * with the regions and blocks are refused by every open.)
	 */
	unsigned hoff = s->current ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;

	if (h->log_length < 2 * VHDX_LOG_SECTOR)
		return vhdx_err(ENOTSUP, "%s: header at 0x%x: the log of %u bytes is too small to journal metadata updates; the image can only be opened read-only",
				l->path, hoff, h->log_length);
	if (!vhdx_range_ok(h->log_offset, h->log_length, s->file_size))
		return vhdx_err(EBADMSG, "%s: header at 0x%x: the log at 0x%llx (+0x%x bytes) lies past the end of the file (0x%llx bytes): writes could not be journaled; the image can only be opened read-only",
				l->path, hoff, (unsigned long long)h->log_offset, h->log_length,
				(unsigned long long)s->file_size);
	/* a log that is a hole (older or other writers) gets its space now: a
	 * full file system then refuses the open, not the first commit */
	ret = vhdx_io_allocate(l->io, h->log_offset, h->log_length, VHDX_TAG_LOG);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: the log must have its space before the image is changed", l->path);
	w = calloc(1, sizeof *w);
	if (!w)
		return vhdx_err(ENOMEM, "out of memory");
	w->file_end = vhdx_round_up(s->file_size, VHDX_ALIGN);
	s->writer = w;
	return 0;
}

static int mark_dirty(struct vhdx_writer *w, uint64_t page_foff, uint64_t chunk)
{
	if (w->n_dirty && w->dirty[w->n_dirty - 1].foff == page_foff)
		return 0;
	if (grow(&w->dirty, &w->cap_dirty, w->n_dirty + 1, sizeof *w->dirty, 64) < 0)
		return vhdx_err(ENOMEM, "out of memory");
	w->dirty[w->n_dirty].foff = page_foff;
	w->dirty[w->n_dirty].chunk = chunk;
	w->n_dirty++;
	return 0;
}

static int mark_bat_dirty(struct vhdx_state *s, uint64_t idx)
{
	return mark_dirty(s->writer, s->bat_off + (idx * 8 / PAGE) * PAGE, NO_CHUNK);
}

/* Starts the session (new GUIDs, LogGuid set) before the first change. */
static int ensure_session(struct vhdx_layer *l, struct vhdx_state *s)
{
	if (s->writer->journal.active)
		return 0;
	return vhdx_journal_start(l, s, &s->writer->journal);
}

/* Reserves a new zero-filled 1 MiB-aligned area of LEN bytes at the end of the file. */
static int allocate(struct vhdx_layer *l, struct vhdx_state *s, uint64_t len, uint64_t *foff)
{
	struct vhdx_writer *w = s->writer;
	uint64_t end;
	int ret;

	if (vhdx_add_ovf(w->file_end, len, &end) || end > (1ull << 63))
		return vhdx_err(ENOSPC, "%s: file would grow past the largest offset a BAT entry can hold", l->path);
	/* growing the file yields zeros; the flush before the journal entry makes the size durable */
	ret = vhdx_io_set_size(l->io, end);
	if (ret < 0)
		return ret;
	*foff = w->file_end;
	w->file_end = end;
	s->file_size = end;
	return 0;
}

/* Returns the writable cached bitmap of CHUNK, allocating its block when absent. */
static int bitmap_for_write(struct vhdx_layer *l, struct vhdx_state *s, uint64_t chunk, uint8_t **out)
{
	uint64_t idx = vhdx_bat_bitmap_index(&s->geo, chunk);
	uint64_t e = s->bat[idx];
	uint8_t *bm = s->bitmaps[chunk];
	int ret;

	if (vhdx_bat_state(e) == VHDX_BAT_FULLY_PRESENT) {
		if (!bm) {
			/* same mutex as the readers' loader, so one copy of the block is ever cached */
			pthread_mutex_lock(&s->bitmap_mutex);
			bm = s->bitmaps[chunk];
			if (!bm) {
				bm = malloc(VHDX_ALIGN);
				ret = bm ? vhdx_io_pread(l->io, bm, VHDX_ALIGN, vhdx_bat_foff(e), VHDX_TAG_BITMAP)
					 : vhdx_err(ENOMEM, "out of memory");
				if (ret < 0) {
					pthread_mutex_unlock(&s->bitmap_mutex);
					free(bm);
					return ret;
				}
				__atomic_store_n(&s->bitmaps[chunk], bm, __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&s->bitmap_mutex);
		}
		*out = bm;
		return 0;
	}
	/* a new bitmap block: zeros on disk (fresh file space) and in memory */
	bm = calloc(1, VHDX_ALIGN);
	if (!bm)
		return vhdx_err(ENOMEM, "out of memory");
	{
		uint64_t foff;
		ret = allocate(l, s, VHDX_ALIGN, &foff);
		if (ret < 0) {
			free(bm);
			return ret;
		}
		pthread_rwlock_wrlock(&s->lock);
		free(s->bitmaps[chunk]);
		s->bitmaps[chunk] = bm;
		s->bat[idx] = vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, foff);
		pthread_rwlock_unlock(&s->lock);
	}
	s->sb_present++;
	s->writer->bitmaps_allocated++;
	ret = mark_bat_dirty(s, idx);
	if (ret < 0)
		return ret;
	*out = bm;
	return 0;
}

/* Sets (VALUE true) or clears the bits of sectors [first, first+n) of CHUNK's bitmap and marks pages dirty. */
static int bitmap_set(struct vhdx_state *s, uint8_t *bm, uint64_t chunk, uint64_t first, uint64_t n, bool value)
{
	uint64_t foff = vhdx_bat_foff(s->bat[vhdx_bat_bitmap_index(&s->geo, chunk)]);
	uint64_t bit = first % VHDX_CHUNK_SECTORS;
	uint64_t end = bit + n;
	int ret;

	pthread_rwlock_wrlock(&s->lock);
	for (uint64_t b = bit; b < end;) {
		if ((b & 7) == 0 && b + 8 <= end) {
			uint64_t nbytes = (end - b) / 8;
			memset(bm + b / 8, value ? 0xff : 0x00, nbytes);
			b += nbytes * 8;
			continue;
		}
		if (value)
			bm[b / 8] |= (uint8_t)(1u << (b & 7));
		else
			bm[b / 8] &= (uint8_t)~(1u << (b & 7));
		b++;
	}
	pthread_rwlock_unlock(&s->lock);
	for (uint64_t p = bit / 8 / PAGE; p <= (end - 1) / 8 / PAGE; p++) {
		ret = mark_dirty(s->writer, foff + p * PAGE, chunk);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static bool bits_all_set(const uint8_t *bm, uint64_t bit, uint64_t n)
{
	for (uint64_t b = bit; b < bit + n;) {
		if ((b & 7) == 0 && b + 8 <= bit + n) {
			if (bm[b / 8] != 0xff)
				return false;
			b += 8;
			continue;
		}
		if (!((bm[b / 8] >> (b & 7)) & 1))
			return false;
		b++;
	}
	return true;
}

static void set_entry(struct vhdx_state *s, uint64_t idx, uint64_t e)
{
	pthread_rwlock_wrlock(&s->lock);
	s->bat_counts[vhdx_bat_state(s->bat[idx])]--;
	s->bat[idx] = e;
	s->bat_counts[vhdx_bat_state(e)]++;
	pthread_rwlock_unlock(&s->lock);
}

/* Writes N bytes (sector multiple) at VOFF, all inside one block. */
static int write_in_block(struct vhdx_layer *l, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_geometry *g = &s->geo;
	uint64_t lss = g->logical_sector_size;
	uint64_t blk = voff / g->block_size, in_blk = voff % g->block_size;
	uint64_t idx = vhdx_bat_payload_index(g, blk);
	uint64_t e = s->bat[idx], foff;
	uint64_t chunk = (voff / lss) / VHDX_CHUNK_SECTORS;
	uint64_t blk_first_sector = blk * (g->block_size / lss);
	uint64_t blk_sectors = g->block_size / lss;
	unsigned st = vhdx_bat_state(e);
	uint8_t *bm;
	int ret;

	if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT) {
		ret = vhdx_io_pwrite_payload(l->io, buf, n, vhdx_bat_foff(e) + in_blk, voff);
		if (ret < 0)
			return ret;
		s->writer->data_dirty = true;
		if (st == VHDX_BAT_FULLY_PRESENT)
			return 0;
		ret = bitmap_for_write(l, s, chunk, &bm);
		if (ret == 0)
			ret = bitmap_set(s, bm, chunk, voff / lss, n / lss, true);
		if (ret < 0)
			return ret;
		/* a partial block whose every sector is now here needs no bitmap lookups any more */
		if (bits_all_set(bm, blk_first_sector % VHDX_CHUNK_SECTORS, blk_sectors)) {
			set_entry(s, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, vhdx_bat_foff(e)));
			return mark_bat_dirty(s, idx);
		}
		return 0;
	}

	/* the block is not stored in this file */
	if (vhdx_buf_is_zero(buf, n)) {
		/* zeros over something that reads as zeros: nothing to store */
		if (!g->has_parent || st != VHDX_BAT_NOT_PRESENT)
			return 0;
		/* a whole block of zeros over the parent: ZERO state, no data */
		if (n == g->block_size) {
			set_entry(s, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));
			return mark_bat_dirty(s, idx);
		}
	}
	ret = allocate(l, s, g->block_size, &foff);
	if (ret < 0)
		return ret;
	s->writer->blocks_allocated++;
	ret = vhdx_io_pwrite_payload(l->io, buf, n, foff + in_blk, voff);
	if (ret < 0)
		return ret;
	s->writer->data_dirty = true;
	if (g->has_parent && st == VHDX_BAT_NOT_PRESENT && n < g->block_size) {
		/* the rest of the block still comes from the parent: mark exactly the written sectors */
		ret = bitmap_for_write(l, s, chunk, &bm);
		if (ret == 0)
			ret = bitmap_set(s, bm, chunk, blk_first_sector, blk_sectors, false);
		if (ret == 0)
			ret = bitmap_set(s, bm, chunk, voff / lss, n / lss, true);
		if (ret < 0)
			return ret;
		set_entry(s, idx, vhdx_bat_make(VHDX_BAT_PARTIALLY_PRESENT, foff));
	} else {
		/* base disk, or a child block that read as zeros: the zero-filled rest is right */
		set_entry(s, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, foff));
	}
	return mark_bat_dirty(s, idx);
}

int vhdx_write(struct vhdx_layer *l, const void *buf, size_t len, uint64_t voff)
{
	struct vhdx_state *s = vhdx_state_of(l);
	int ret;

	if (voff % s->geo.logical_sector_size || len % s->geo.logical_sector_size)
		return vhdx_err(EINVAL, "internal error: unaligned write reached the VHDX layer");
	ret = ensure_session(l, s);
	if (ret < 0)
		return ret;
	return vhdx_layer_write_by_block(l, s->geo.block_size, buf, len, voff, write_in_block);
}

int vhdx_write_discard(struct vhdx_layer *l, uint64_t voff, uint64_t len)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_geometry *g = &s->geo;
	int ret;

	if (voff % g->block_size || (len % g->block_size && voff + len != g->virtual_size))
		return vhdx_err(EINVAL, "internal error: discard of a partial block");
	ret = ensure_session(l, s);
	if (ret < 0)
		return ret;
	for (uint64_t blk = voff / g->block_size; blk * g->block_size < voff + len; blk++) {
		uint64_t idx = vhdx_bat_payload_index(g, blk);
		unsigned st = vhdx_bat_state(s->bat[idx]);
		if (st == VHDX_BAT_ZERO || (!g->has_parent && st == VHDX_BAT_NOT_PRESENT))
			continue;
		/* ZERO, not UNMAPPED: the range must read as zeros, also in a child */
		set_entry(s, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));
		ret = mark_bat_dirty(s, idx);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Builds the current bytes of dirty page D (a BAT page, or a page of its chunk's cached bitmap). */
static int page_bytes(struct vhdx_layer *l, struct vhdx_state *s, const struct dirty_page *d, uint8_t *page,
		      enum vhdx_tag *tag)
{
	uint64_t foff = d->foff;

	if (d->chunk == NO_CHUNK) {
		uint64_t first = (foff - s->bat_off) / 8;
		int ret;
		*tag = VHDX_TAG_BAT;
		/* entries past the end of the table keep whatever the file holds */
		if (first + PAGE / 8 > s->geo.bat_entries) {
			ret = vhdx_io_pread(l->io, page, PAGE, foff, VHDX_TAG_BAT);
			if (ret < 0)
				return ret;
		}
		for (uint64_t i = 0; i < PAGE / 8 && first + i < s->geo.bat_entries; i++)
			vhdx_put_le64(page + 8 * i, s->bat[first + i]);
		return 0;
	}
	*tag = VHDX_TAG_BITMAP;
	{
		/* bitmap blocks never move while the layer is open, so the chunk's block still holds FOFF */
		uint64_t bfoff = vhdx_bat_foff(s->bat[vhdx_bat_bitmap_index(&s->geo, d->chunk)]);
		if (!s->bitmaps[d->chunk] || foff < bfoff || foff >= bfoff + VHDX_ALIGN)
			return vhdx_err(EIO, "internal error: dirty bitmap page at 0x%llx is not in chunk %llu's block",
					(unsigned long long)foff, (unsigned long long)d->chunk);
		memcpy(page, s->bitmaps[d->chunk] + (foff - bfoff), PAGE);
	}
	return 0;
}

int vhdx_write_flush(struct vhdx_layer *l)
{
	struct vhdx_state *s = vhdx_state_of(l);
	struct vhdx_writer *w = s->writer;
	struct vhdx_log_page *pages = NULL;
	enum vhdx_tag *tags = NULL;
	uint8_t *data = NULL;
	size_t n, i, batch_start;
	int ret;

	if (!w)
		return 0;
	if (w->n_dirty == 0) {
		if (!w->data_dirty)
			return 0;
		ret = vhdx_io_flush(l->io);
		if (ret == 0) {
			w->data_dirty = false;
			vhdx_journal_file_flushed(&w->journal);
		}
		return ret;
	}
	/* flush #1: payload of new blocks and the grown file size before any entry names them */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	w->data_dirty = false;
	vhdx_journal_file_flushed(&w->journal);

	qsort(w->dirty, w->n_dirty, sizeof *w->dirty, vhdx_cmp_u64);
	n = 0;
	for (i = 0; i < w->n_dirty; i++)
		if (n == 0 || w->dirty[n - 1].foff != w->dirty[i].foff)
			w->dirty[n++] = w->dirty[i];
	w->n_dirty = n;

	pages = calloc(n, sizeof *pages);
	tags = calloc(n, sizeof *tags);
	data = malloc(n * PAGE);
	if (!pages || !tags || !data) {
		ret = vhdx_err(ENOMEM, "out of memory for %zu dirty metadata pages", n);
		goto out;
	}
	pthread_rwlock_rdlock(&s->lock);
	for (i = 0; i < n; i++) {
		pages[i].file_offset = w->dirty[i].foff;
		pages[i].data = data + i * PAGE;
		ret = page_bytes(l, s, &w->dirty[i], data + i * PAGE, &tags[i]);
		if (ret < 0) {
			pthread_rwlock_unlock(&s->lock);
			goto out;
		}
	}
	pthread_rwlock_unlock(&s->lock);

	/* as many pages per entry as fit the ring; more entries only for huge updates */
	for (batch_start = 0; batch_start < n;) {
		size_t cnt = 0;
		while (batch_start + cnt < n &&
		       vhdx_log_entry_size(pages + batch_start, cnt + 1) <= (size_t)w->journal.log_len - 2 * PAGE)
			cnt++;
		if (cnt == 0) {
			ret = vhdx_err(ENOSPC, "%s: the log is too small for one page", l->path);
			goto out;
		}
		if (batch_start > 0) {
			/* make the previous batch's pages durable so its entry can be dropped */
			ret = vhdx_io_flush(l->io);
			if (ret < 0)
				goto out;
			vhdx_journal_file_flushed(&w->journal);
		}
		ret = vhdx_journal_commit(l, &w->journal, pages + batch_start, tags + batch_start, cnt, w->file_end);
		if (ret < 0)
			goto out;
		batch_start += cnt;
	}
	w->n_dirty = 0;
	ret = 0;
out:
	free(pages);
	free(tags);
	free(data);
	return ret;
}

int vhdx_write_close(struct vhdx_layer *l, struct vhdx_state *s)
{
	struct vhdx_writer *w = s->writer;
	int ret = 0;

	if (!w)
		return 0;
	if (w->journal.active) {
		ret = vhdx_write_flush(l);
		if (ret == 0)
			ret = vhdx_journal_finish(l, s, &w->journal);
	}
	free(w->dirty);
	free(w);
	s->writer = NULL;
	return ret;
}

void vhdx_write_get_stats(struct vhdx_layer *l, struct vhdx_write_stats *st)
{
	struct vhdx_state *s = vhdx_state_of(l);

	memset(st, 0, sizeof *st);
	if (!s->writer)
		return;
	st->log_entries = s->writer->journal.entries;
	st->log_pages = s->writer->journal.pages;
	st->blocks_allocated = s->writer->blocks_allocated;
	st->bitmaps_allocated = s->writer->bitmaps_allocated;
}
