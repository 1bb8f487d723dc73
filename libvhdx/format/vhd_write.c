/*
 * vhd_write.c - writing the leaf of a legacy VHD (VHD spec "Block
 * Allocation Table and Data Blocks"; FORMAT.md 2.5).
 *
 *   fixed          payload written in place; nothing else changes.
 *   dynamic,       a write into an allocated block goes to the block's data
 *   differencing   area and sets the written sectors' bits of its sector
 *                  bitmap (MSB-first).  A write into an unallocated block
 *                  appends a new block, [sector bitmap | data], where the
 *                  trailing footer was and moves the footer behind it.  Only
 *                  the written sectors' bits are set: in a differencing disk
 *                  every other sector still reads from the parent, in a
 *                  dynamic disk from the zero-filled new space.  Zeros
 *                  written over an unallocated block of a dynamic disk store
 *                  nothing (they already read as zeros).
 *
 * The footer's bytes never change, only its position: its unique id is what
 * children link to, and the leading copy at offset 0 must stay identical to
 * the trailing one (7-Zip compares them).
 *
 * VHD has no log, so crash safety is an ordering argument.  Invariant: every
 * BAT entry on disk names a block whose bitmap and data on disk are complete,
 * and the file ends with a valid footer.
 *
 *   allocation, in vhdx_vhd_write():
 *     1. the footer at the new end (old footer offset + bitmap + block):
 *        the file ends with a valid footer again at once, and the old
 *        footer's bytes become unreferenced space inside the new block;
 *     2. the payload into the new block's data area (behind the bitmap, so
 *        the old footer's sector is not touched yet).
 *     No BAT entry on disk names the block: a crash here leaves the old
 *     image plus leaked space.  (Should the device keep 2 but lose 1, the
 *     file lacks a trailing footer and readers use the leading copy.)
 *     A failed step 2 leaves that space leaked for good: the next block
 *     goes behind the new footer, never over bytes a failed write may have
 *     left (a dynamic disk reads a block's data whatever its bitmap says).
 *   vhdx_vhd_write_flush():
 *     3. the bitmaps of blocks appended since the last flush, over the old
 *        footer's sector;
 *     4. flush #1: footer, data and bitmaps of new blocks are durable before
 *        any BAT entry names them; and the data of writes into existing
 *        blocks is durable before bitmap bits claim it (a bit set over data
 *        that never reached the disk would read stale bytes instead of the
 *        parent's sectors);
 *     5. the BAT entries of the new blocks, batched by 512-byte sector, and
 *        the bitmaps of existing blocks whose bits changed;
 *     6. flush #2: everything vhdx_flush() promises is durable.
 *   A crash between 4 and 6 leaves each BAT sector old or new (a sector
 *   write is atomic on the devices we target) and every entry either
 *   unallocated or naming a complete block.  So a vhdx_flush() costs at
 *   most two flushes of the file however many blocks were appended.
 *
 * Readers run concurrently with the (single) writer: new BAT entries and
 * bitmap bits are published under s->lock, which vhd_map() takes for
 * reading on a writable layer, and always after the data they describe
 * has been written.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "libvhdx.h"
#include "base/base.h"
#include "format/vhd_write.h"

/* What a block needs at the next flush (writer->flags[blk]). */
#define BLK_NEW    0x1u /* appended since the last flush: bitmap before flush #1 */
#define BLK_BITMAP 0x2u /* bits changed in an older block: bitmap after flush #1 */
#define BLK_BAT    0x4u /* BAT entry changed: written after flush #1 */

struct vhdx_vhd_writer {
	uint8_t footer[VHD_FOOTER_SIZE]; /* the bytes of every footer we write: the copy in use */
	uint64_t footer_off;   /* where the trailing footer is: the next block goes here (rounded to 512) */
	bool data_dirty;       /* payload written since the last flush */
	uint8_t *bat_raw;      /* the BAT as stored (big-endian): the sectors holding the disk's entries */
	uint64_t bat_raw_entries; /* entries in bat_raw: blocks_needed up to a whole sector, within the table */
	uint8_t *flags;        /* BLK_* per block of the disk */
	uint32_t *touched;     /* blocks with flags != 0, in the order first touched */
	size_t n_touched, cap_touched;
	struct vhdx_vhd_write_stats st;
};

int vhdx_vhd_write_open(struct vhdx_layer *l, struct vhdx_vhd_state *s)
{
	const struct vhdx_vhd_footer_copy *used = &s->copies[s->used];
	struct vhdx_vhd_writer *w;
	uint64_t n;

	if (used->salvaged || (s->has_dynhdr && !s->dyn.checksum_valid))
		return vhdx_err(EROFS, "%s: the %s was accepted only by salvage (bad checksum); writing would spread the damage, so the image opens read-only",
				l->path, used->salvaged ? "footer" : "dynamic header");
	w = calloc(1, sizeof *w);
	if (!w)
		return vhdx_err(ENOMEM, "out of memory");
	memcpy(w->footer, used->raw, VHD_FOOTER_SIZE);
	w->footer_off = s->data_end;
	s->writer = w;
	pthread_rwlock_init(&s->lock, NULL);
	s->lock_ready = true;
	if (l->type == VHDX_TYPE_FIXED)
		return 0;

	/* BAT sectors are written whole: keep the disk's entries plus the rest
	 * of their last sector, whose entries past the disk's end (never
	 * loaded by the reader) are written back as they are in the file */
	n = s->blocks_needed;
	w->bat_raw_entries = VHDX_MIN((uint64_t)s->dyn.max_table_entries, vhdx_round_up(n, VHD_SECTOR / 4));
	w->bat_raw = malloc(w->bat_raw_entries ? 4 * w->bat_raw_entries : 1);
	w->flags = calloc(n ? n : 1, 1);
	if (!w->bat_raw || !w->flags)
		return vhdx_err(ENOMEM, "out of memory for the writer's copy of a %llu-entry BAT", (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++)
		vhdx_vhd_bat_put(w->bat_raw, i, s->bat[i]);
	if (w->bat_raw_entries > n) {
		int ret = vhdx_io_pread(l->io, w->bat_raw + 4 * n, 4 * (w->bat_raw_entries - n),
					s->dyn.table_offset + 4 * n, VHDX_TAG_BAT);
		if (ret < 0)
			return ret;
	}
	/* a dynamic disk's reader needs no bitmaps; the writer keeps their bits */
	if (!s->mutex_ready) {
		pthread_mutex_init(&s->bitmap_mutex, NULL);
		s->mutex_ready = true;
	}
	if (!s->bitmaps) {
		s->bitmaps = vhdx_calloc(n ? n : 1, sizeof *s->bitmaps);
		if (!s->bitmaps)
			return vhdx_err(ENOMEM, "out of memory");
	}
	return 0;
}

/* Records that block BLK needs FLAG at the next flush. */
static int mark(struct vhdx_vhd_writer *w, uint32_t blk, unsigned flag)
{
	if (!w->flags[blk]) {
		if (grow(&w->touched, &w->cap_touched, w->n_touched + 1, sizeof *w->touched, 64) < 0)
			return vhdx_err(ENOMEM, "out of memory");
		w->touched[w->n_touched++] = blk;
	}
	w->flags[blk] |= (uint8_t)flag;
	return 0;
}

/*
 * Appends block BLK with the N payload bytes BUF at IN_BLK inside it (steps
 * 1 and 2 of the ordering at the top of this file), then publishes it.
 */
static int append_block(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint32_t blk, const uint8_t *buf,
			uint64_t in_blk, uint64_t n, uint64_t voff)
{
	struct vhdx_vhd_writer *w = s->writer;
	uint64_t foff = vhdx_round_up(w->footer_off, VHD_SECTOR);
	uint64_t new_footer = foff + s->bitmap_size + s->dyn.block_size;
	struct vhdx_vhd_footer_copy *t = &s->copies[VHDX_VHD_TRAILING];
	uint8_t *bm;
	int ret;

	if (foff / VHD_SECTOR >= VHD_BAT_UNUSED)
		return vhdx_err(ENOSPC, "%s: a new block at file offset 0x%llx is past what a VHD BAT entry can address (32-bit sector numbers: 2 TiB)",
				l->path, (unsigned long long)foff);
	bm = calloc(1, s->bitmap_size);
	if (!bm)
		return vhdx_err(ENOMEM, "out of memory");
	/* 1: the file ends with a valid footer before anything overwrites the old one */
	ret = vhdx_io_pwrite(l->io, w->footer, VHD_FOOTER_SIZE, new_footer, VHDX_TAG_FOOTER);
	if (ret < 0) {
		/* the data area was not touched: it still reads as zeros, so the
		 * next allocation may use it (and rewrites this footer whole) */
		free(bm);
		return ret;
	}
	w->st.footer_writes++;
	w->data_dirty = true; /* the next flush makes the moved footer durable */
	/* the file ends at the new footer from now on, whatever happens to the
	 * payload: the next block goes behind it */
	w->footer_off = new_footer;
	s->data_end = new_footer; /* what `vhdx info` shows of the file: the trailing copy moved */
	s->file_size = new_footer + VHD_FOOTER_SIZE;
	if (!t->valid) {
		free(t->error);
		*t = s->copies[s->used];
		t->error = NULL;
		t->old_size = false;
	}
	t->offset = new_footer;
	/* 2: behind the bitmap area, which still holds the old footer's bytes */
	ret = vhdx_io_pwrite_payload(l->io, buf, n, foff + s->bitmap_size + in_blk, voff);
	if (ret < 0) {
		/* a failed write may have left some of its bytes in the data area,
		 * and a dynamic disk reads an allocated block without its bitmap:
		 * the space is never reused (leaked, as in a VHDX; check reports it
		 * and check --repair or compact give it back), so those bytes can
		 * never show up in another block */
		free(bm);
		return ret;
	}
	vhdx_vhd_bitmap_set(bm, in_blk / VHD_SECTOR, n / VHD_SECTOR);

	/* publish: the cached bitmap first, so that a reader never loads the
	 * on-disk one (still the old footer's bytes until the flush) */
	pthread_rwlock_wrlock(&s->lock);
	free(s->bitmaps[blk]);
	s->bitmaps[blk] = bm;
	s->bat[blk] = (uint32_t)(foff / VHD_SECTOR);
	s->allocated_blocks++;
	pthread_rwlock_unlock(&s->lock);
	vhdx_vhd_bat_put(w->bat_raw, blk, (uint32_t)(foff / VHD_SECTOR));
	w->data_dirty = true;
	w->st.blocks_allocated++;
	return mark(w, blk, BLK_NEW | BLK_BAT);
}

/* Writes N bytes (sector multiple) at VOFF, all inside block BLK. */
static int write_in_block(struct vhdx_layer *l, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	struct vhdx_vhd_writer *w = s->writer;
	uint32_t blk = (uint32_t)(voff / s->dyn.block_size);
	uint64_t in_blk = voff % s->dyn.block_size;
	uint32_t e = s->bat[blk]; /* only this thread changes bat[] */
	uint8_t *bm;
	bool changed;
	int ret;

	if (e == VHD_BAT_UNUSED) {
		if (l->type == VHDX_TYPE_DYNAMIC && vhdx_buf_is_zero(buf, n)) {
			w->st.zero_writes_skipped++;
			return 0;
		}
		return append_block(l, s, blk, buf, in_blk, n, voff);
	}
	ret = vhdx_io_pwrite_payload(l->io, buf, n, vhdx_vhd_block_foff(e) + s->bitmap_size + in_blk, voff);
	if (ret < 0)
		return ret;
	w->data_dirty = true;
	ret = vhdx_vhd_bitmap_get(l, s, blk, &bm);
	if (ret < 0)
		return vhdx_err_prefix(ret, "sector bitmap of block %u", blk);
	/* the data is in the file: readers may now see the bits */
	pthread_rwlock_wrlock(&s->lock);
	changed = vhdx_vhd_bitmap_set(bm, in_blk / VHD_SECTOR, n / VHD_SECTOR);
	pthread_rwlock_unlock(&s->lock);
	/* a block appended since the last flush has its whole bitmap written then anyway */
	return changed ? mark(w, blk, BLK_BITMAP) : 0;
}

int vhdx_vhd_write(struct vhdx_layer *l, const void *buf, size_t len, uint64_t voff)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	int ret;

	if (!s->writer)
		return vhdx_err(EROFS, "%s: opened read-only", l->path);
	if (voff % VHD_SECTOR || len % VHD_SECTOR)
		return vhdx_err(EINVAL, "internal error: unaligned write (%zu bytes at %llu) reached the VHD layer", len,
				(unsigned long long)voff);
	if (!vhdx_range_ok(voff, len, l->virtual_size))
		return vhdx_err(EINVAL, "write of %zu bytes at %llu is outside the disk (%llu bytes)", len,
				(unsigned long long)voff, (unsigned long long)l->virtual_size);
	if (l->type == VHDX_TYPE_FIXED) {
		/* the data sits at its own offset in front of the footer */
		ret = vhdx_io_pwrite_payload(l->io, buf, len, voff, voff);
		if (ret == 0)
			s->writer->data_dirty = true;
		return ret;
	}
	return vhdx_layer_write_by_block(l, s->dyn.block_size, buf, len, voff, write_in_block);
}

static int write_bitmap(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint32_t blk)
{
	/* the bits change only under the image's write lock, which the caller holds */
	int ret = vhdx_io_pwrite(l->io, s->bitmaps[blk], s->bitmap_size, vhdx_vhd_block_foff(s->bat[blk]),
				 VHDX_TAG_BITMAP);
	if (ret == 0)
		s->writer->st.bitmap_writes++;
	return ret;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Writes the BAT sectors holding changed entries, one write per run of adjacent sectors. */
static int write_bat(struct vhdx_layer *l, struct vhdx_vhd_state *s)
{
	struct vhdx_vhd_writer *w = s->writer;
	uint64_t bat_bytes = 4 * w->bat_raw_entries;
	uint32_t *sectors;
	size_t n = 0;
	int ret = 0;

	sectors = malloc((w->n_touched ? w->n_touched : 1) * sizeof *sectors);
	if (!sectors)
		return vhdx_err(ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n_touched; i++)
		if (w->flags[w->touched[i]] & BLK_BAT)
			sectors[n++] = w->touched[i] / (VHD_SECTOR / 4);
	qsort(sectors, n, sizeof *sectors, cmp_u32);
	for (size_t i = 0; i < n && ret == 0;) {
		size_t j = i + 1;
		uint64_t start, end;
		/* one run: the same or the next sector */
		while (j < n && sectors[j] <= sectors[j - 1] + 1)
			j++;
		start = (uint64_t)sectors[i] * VHD_SECTOR;
		/* never past the table: what follows the last entry may belong to something else */
		end = VHDX_MIN(((uint64_t)sectors[j - 1] + 1) * VHD_SECTOR, bat_bytes);
		ret = vhdx_io_pwrite(l->io, w->bat_raw + start, end - start, s->dyn.table_offset + start, VHDX_TAG_BAT);
		if (ret == 0)
			w->st.bat_sector_writes += vhdx_div_round_up(end - start, VHD_SECTOR);
		i = j;
	}
	free(sectors);
	return ret;
}

int vhdx_vhd_write_flush(struct vhdx_layer *l)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	struct vhdx_vhd_writer *w = s->writer;
	int ret;

	if (!w)
		return 0;
	if (w->n_touched == 0) {
		/* payload only: one flush, or none when nothing was written */
		if (!w->data_dirty)
			return 0;
		ret = vhdx_io_flush(l->io);
		if (ret == 0)
			w->data_dirty = false;
		return ret;
	}
	/* 3: bitmaps of new blocks, still unreferenced on disk */
	for (size_t i = 0; i < w->n_touched; i++)
		if (w->flags[w->touched[i]] & BLK_NEW) {
			ret = write_bitmap(l, s, w->touched[i]);
			if (ret < 0)
				return ret;
		}
	/* 4: flush #1, everything the BAT entries and bits below will claim */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	w->data_dirty = false;
	/* 5: bits of older blocks, then the BAT entries of the new ones */
	for (size_t i = 0; i < w->n_touched; i++) {
		uint32_t blk = w->touched[i];
		if ((w->flags[blk] & BLK_BITMAP) && !(w->flags[blk] & BLK_NEW)) {
			ret = write_bitmap(l, s, blk);
			if (ret < 0)
				return ret;
		}
	}
	ret = write_bat(l, s);
	if (ret < 0)
		return ret;
	/* 6: flush #2; only now is the work list dropped, so a failed flush is retried in full */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < w->n_touched; i++)
		w->flags[w->touched[i]] = 0;
	w->n_touched = 0;
	w->st.commits++;
	return 0;
}

int vhdx_vhd_write_close(struct vhdx_layer *l, struct vhdx_vhd_state *s)
{
	struct vhdx_vhd_writer *w = s->writer;
	int ret;

	if (!w)
		return 0;
	ret = vhdx_vhd_write_flush(l);
	free(w->bat_raw);
	free(w->flags);
	free(w->touched);
	free(w);
	s->writer = NULL;
	return ret;
}

void vhdx_vhd_write_get_stats(struct vhdx_layer *l, struct vhdx_vhd_write_stats *st)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);

	memset(st, 0, sizeof *st);
	if (s->writer)
		*st = s->writer->st;
}
