/*
 * vhdx_compact.c - compaction of a dynamic or differencing VHDX in place
 * (like Hyper-V's Optimize-VHD; MS-VHDX 2.5 for the block states, 2.3 for
 * the log that carries every BAT change).
 *
 *   1. scan: a FULLY_PRESENT block whose payload is all zero stops being
 *      stored: NOT_PRESENT in a base disk (reads zero), ZERO in a
 *      differencing disk (reads zero and, unlike NOT_PRESENT, hides the
 *      parent).  A PARTIALLY_PRESENT block with no bitmap bit set holds
 *      nothing of its own: NOT_PRESENT (the parent shows, as it did); with
 *      every bit set it is a FULLY_PRESENT block (and may then be zero).  A
 *      sector-bitmap block whose chunk has no PARTIALLY_PRESENT block any
 *      more is freed.  An UNMAPPED entry that still names its old data's
 *      place loses that offset (the place is about to be reused).  These
 *      BAT changes are committed first.
 *   2. move, in rounds: the blocks from the top of the file down go to the
 *      lowest free 1 MiB-aligned space below them that is free in the
 *      DURABLE state (space freed in this round is not reused before the
 *      BAT change that freed it is durable).  Per round: copy the payloads,
 *      flush (the data is durable before any BAT entry names it), journal
 *      the new BAT entries, flush (the old locations are free only now).
 *      Until the second flush a crash leaves either the old entry (the old
 *      copy was never touched) or the new one (its copy is durable).
 *   3. end the log session (LogGuid cleared), then truncate the file
 *      behind the last structure and flush.  Truncating only after the log
 *      is clear matters: a dirty log whose FlushedFileOffset lies past the
 *      end of the file makes the image unopenable.
 * Only FileWriteGuid changes: the virtual disk reads the same, so children
 * linked to DataWriteGuid stay valid.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "libvhdx.h"
#include "base/base.h"
#include "codec/endian.h"
#include "format/vhdx_maint.h"

#define PAGE VHDX_LOG_SECTOR
#define COPY_CHUNK (4u << 20)
#define SCAN_CHUNK (1u << 20)

/* ---- helpers shared with vhdx_resize.c ---- */

int vhdx_maint_commit(struct vhdx_layer *l, struct vhdx_journal *j, unsigned hdr_flags,
		      const struct vhdx_log_page *pages, const enum vhdx_tag *tags, size_t n, uint64_t file_size)
{
	struct vhdx_state *s = vhdx_state_of(l);
	size_t start = 0;
	int ret;

	if (n == 0)
		return 0;
	if (!j->active) {
		ret = vhdx_journal_start_flags(l, s, j, hdr_flags);
		if (ret < 0)
			return ret;
	}
	while (start < n) {
		size_t cnt = 0;
		while (start + cnt < n && vhdx_log_entry_size(pages + start, cnt + 1) <= (size_t)j->log_len - 2 * PAGE)
			cnt++;
		if (cnt == 0)
			return vhdx_err(ENOSPC, "%s: the log is too small for one page", l->path);
		ret = vhdx_journal_commit(l, j, pages + start, tags + start, cnt, file_size);
		if (ret < 0)
			return ret;
		/* the applied pages durable: the entry is no longer needed, and what they free is free */
		ret = vhdx_io_flush(l->io);
		if (ret < 0)
			return ret;
		vhdx_journal_file_flushed(j);
		start += cnt;
	}
	return 0;
}

int vhdx_maint_bat_pages(struct vhdx_layer *l, struct vhdx_state *s, uint64_t *idx, size_t n,
			 struct vhdx_log_page **pages_out, enum vhdx_tag **tags_out, uint8_t **data_out,
			 size_t *npages)
{
	struct vhdx_log_page *pages = NULL;
	enum vhdx_tag *tags = NULL;
	uint8_t *data = NULL;
	size_t np = 0;
	int ret = 0;

	*pages_out = NULL;
	*tags_out = NULL;
	*data_out = NULL;
	*npages = 0;
	if (n == 0)
		return 0;
	/* page numbers, sorted and unique */
	for (size_t i = 0; i < n; i++)
		idx[i] = idx[i] * 8 / PAGE;
	qsort(idx, n, sizeof *idx, vhdx_cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (np == 0 || idx[np - 1] != idx[i])
			idx[np++] = idx[i];
	pages = vhdx_calloc(np, sizeof *pages);
	tags = vhdx_calloc(np, sizeof *tags);
	data = vhdx_calloc(np, PAGE);
	if (!pages || !tags || !data) {
		ret = vhdx_err(ENOMEM, "out of memory for %zu BAT pages", np);
		goto fail;
	}
	for (size_t p = 0; p < np; p++) {
		uint64_t first = idx[p] * (PAGE / 8);
		uint8_t *d = data + p * PAGE;

		pages[p].file_offset = s->bat_off + idx[p] * PAGE;
		pages[p].data = d;
		tags[p] = VHDX_TAG_BAT;
		if (first + PAGE / 8 > s->geo.bat_entries) {
			/* entries past the end of the table keep whatever the file holds */
			ret = vhdx_io_pread(l->io, d, PAGE, pages[p].file_offset, VHDX_TAG_BAT);
			if (ret < 0)
				goto fail;
		}
		for (uint64_t i = 0; i < PAGE / 8 && first + i < s->geo.bat_entries; i++)
			vhdx_put_le64(d + 8 * i, s->bat[first + i]);
	}
	*pages_out = pages;
	*tags_out = tags;
	*data_out = data;
	*npages = np;
	return 0;
fail:
	free(pages);
	free(tags);
	free(data);
	return ret;
}

int vhdx_maint_copy(struct vhdx_layer *l, uint64_t from, uint64_t to, uint64_t len, enum vhdx_tag tag)
{
	uint8_t *buf = malloc(VHDX_MIN(len, (uint64_t)COPY_CHUNK) ? VHDX_MIN(len, (uint64_t)COPY_CHUNK) : 1);
	int ret = 0;

	if (!buf)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint64_t done = 0; done < len && ret == 0;) {
		size_t n = (size_t)VHDX_MIN(len - done, (uint64_t)COPY_CHUNK);
		ret = vhdx_io_pread(l->io, buf, n, from + done, tag);
		if (ret == 0)
			ret = vhdx_io_pwrite(l->io, buf, n, to + done, tag);
		done += n;
	}
	free(buf);
	return ret;
}

/* ---- compaction ---- */

struct cblock {
	uint64_t idx;      /* BAT index */
	uint64_t foff;
	uint64_t span;     /* bytes reserved in the file: block size, or 1 MiB for a bitmap block */
	uint64_t copy_len; /* bytes that hold data (a short last block holds less than its span) */
	uint64_t end;      /* where the block ends in the file (for the final size) */
	bool bitmap;
};

static int cmp_cblock_desc(const void *a, const void *b)
{
	const struct cblock *x = a, *y = b;
	return x->foff > y->foff ? -1 : x->foff < y->foff;
}

struct compactor {
	struct vhdx_layer *l;
	struct vhdx_state *s;
	struct vhdx_journal j;
	const struct vhdx_maint_progress *prog;
	uint64_t done, total;
	struct vhdx_compact_result *res;
	uint64_t *changed;   /* BAT indices changed since the last commit */
	size_t n_changed, cap_changed;
};

static int progress(struct compactor *c)
{
	if (c->prog && c->prog->fn && c->prog->fn(c->done, c->total, c->prog->arg))
		return vhdx_err(ECANCELED, "%s: compaction cancelled", c->l->path);
	return 0;
}

static int note_change(struct compactor *c, uint64_t idx, uint64_t e)
{
	struct vhdx_state *s = c->s;

	if (grow(&c->changed, &c->cap_changed, c->n_changed + 1, sizeof *c->changed, 256) < 0)
		return vhdx_err(ENOMEM, "out of memory");
	c->changed[c->n_changed++] = idx;
	pthread_rwlock_wrlock(&s->lock);
	s->bat_counts[vhdx_bat_state(s->bat[idx])]--;
	s->bat[idx] = e;
	s->bat_counts[vhdx_bat_state(e)]++;
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* Journals the BAT entries changed since the last commit (one flush after, inside vhdx_maint_commit). */
static int commit_changes(struct compactor *c)
{
	struct vhdx_log_page *pages;
	enum vhdx_tag *tags;
	uint8_t *data;
	size_t np;
	int ret;

	if (c->n_changed == 0)
		return 0;
	ret = vhdx_maint_bat_pages(c->l, c->s, c->changed, c->n_changed, &pages, &tags, &data, &np);
	if (ret < 0)
		return ret;
	/* FileWriteGuid only: the disk reads the same, children stay linked */
	ret = vhdx_maint_commit(c->l, &c->j, VHDX_HDR_NEW_FILE_GUID, pages, tags, np, c->s->file_size);
	free(pages);
	free(tags);
	free(data);
	c->n_changed = 0;
	return ret;
}

/* Bytes of payload block BLK inside the virtual disk. */
static uint64_t block_data_len(const struct vhdx_geometry *g, uint64_t blk)
{
	return VHDX_MIN((uint64_t)g->block_size, g->virtual_size - blk * g->block_size);
}

/* True (1) when LEN bytes at FOFF are all zero, 0 when not, or -errno. */
static int range_is_zero(struct compactor *c, uint8_t *buf, uint64_t foff, uint64_t len, uint64_t voff)
{
	for (uint64_t done = 0; done < len;) {
		size_t n = (size_t)VHDX_MIN(len - done, (uint64_t)SCAN_CHUNK);
		int ret = vhdx_io_pread_payload(c->l->io, buf, n, foff + done, voff + done);
		if (ret < 0)
			return ret;
		done += n;
		c->done += n;
		if (!vhdx_buf_is_zero(buf, n)) {
			c->done += len - done; /* the rest of the block is not read */
			return 0;
		}
	}
	return 1;
}

/* Counts the set bits of sectors [FIRST, FIRST+N) of the LSB-first bitmap BM. */
static uint64_t count_bits(const uint8_t *bm, uint64_t first, uint64_t n)
{
	uint64_t cnt = 0;

	for (uint64_t b = first; b < first + n;) {
		if ((b & 7) == 0 && b + 8 <= first + n) {
			cnt += (uint64_t)__builtin_popcount(bm[b / 8]);
			b += 8;
			continue;
		}
		cnt += (bm[b / 8] >> (b & 7)) & 1;
		b++;
	}
	return cnt;
}

/* Phase 1: blocks that hold nothing (or only zeros) stop being stored. */
static int scan(struct compactor *c)
{
	struct vhdx_state *s = c->s;
	const struct vhdx_geometry *g = &s->geo;
	uint64_t lss = g->logical_sector_size, sectors_per_block = g->block_size / lss;
	uint8_t *buf = malloc(SCAN_CHUNK), *bm = NULL;
	uint64_t bm_chunk = UINT64_MAX;
	int ret = 0;

	if (!buf)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint64_t blk = 0; blk < g->payload_blocks; blk++) {
		uint64_t st = vhdx_bat_state(s->bat[vhdx_bat_payload_index(g, blk)]);
		if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT) {
			c->res->blocks_examined++;
			c->total += block_data_len(g, blk);
		}
	}
	for (uint64_t blk = 0; blk < g->payload_blocks && ret == 0; blk++) {
		uint64_t idx = vhdx_bat_payload_index(g, blk), e = s->bat[idx];
		unsigned st = vhdx_bat_state(e);
		uint64_t len = block_data_len(g, blk);
		uint64_t first_sector = blk * sectors_per_block;
		uint64_t chunk = first_sector / VHDX_CHUNK_SECTORS;

		if (st == VHDX_BAT_PARTIALLY_PRESENT) {
			uint64_t nsect = vhdx_div_round_up(len, lss), bits;
			if (bm_chunk != chunk) {
				uint64_t sb = s->bat[vhdx_bat_bitmap_index(g, chunk)];
				if (vhdx_bat_state(sb) != VHDX_BAT_FULLY_PRESENT) {
					ret = vhdx_err(EBADMSG, "%s: block %llu is partially present but the sector bitmap of chunk %llu is not",
						       c->l->path, (unsigned long long)blk, (unsigned long long)chunk);
					break;
				}
				if (!bm)
					bm = malloc(VHDX_ALIGN);
				if (!bm) {
					ret = vhdx_err(ENOMEM, "out of memory");
					break;
				}
				ret = vhdx_io_pread(c->l->io, bm, VHDX_ALIGN, vhdx_bat_foff(sb), VHDX_TAG_BITMAP);
				if (ret < 0)
					break;
				bm_chunk = chunk;
			}
			bits = count_bits(bm, first_sector % VHDX_CHUNK_SECTORS, nsect);
			if (bits == 0) {
				/* nothing of its own: every sector already reads from the parent */
				ret = note_change(c, idx, vhdx_bat_make(VHDX_BAT_NOT_PRESENT, 0));
				c->res->blocks_dropped++;
				c->done += len;
				continue;
			}
			if (bits < nsect) {
				c->done += len;
				continue; /* a mix of this file and the parent: stays */
			}
			/* every sector is here: a fully present block (which may be all zero) */
			ret = note_change(c, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, vhdx_bat_foff(e)));
			if (ret < 0)
				break;
			st = VHDX_BAT_FULLY_PRESENT;
		}
		if ((st == VHDX_BAT_UNMAPPED || st == VHDX_BAT_UNMAPPED_V095) && vhdx_bat_foff(e)) {
			/*
			 * An unmapped block may keep the offset of its old data; that
			 * space is about to hold other blocks, so the entry must not
			 * name it any more.  It reads as zeros: NOT_PRESENT in a base,
			 * ZERO in a child.
			 */
			ret = note_change(c, idx, vhdx_bat_make(g->has_parent ? VHDX_BAT_ZERO : VHDX_BAT_NOT_PRESENT, 0));
			continue;
		}
		if (st != VHDX_BAT_FULLY_PRESENT)
			continue;
		ret = range_is_zero(c, buf, vhdx_bat_foff(e), len, blk * g->block_size);
		if (ret < 0)
			break;
		if (ret == 1) {
			/* ZERO in a child: NOT_PRESENT would show the parent's data here */
			ret = note_change(c, idx, vhdx_bat_make(g->has_parent ? VHDX_BAT_ZERO : VHDX_BAT_NOT_PRESENT, 0));
			c->res->blocks_zeroed++;
		}
		if (ret == 0 && (blk % 64) == 63)
			ret = progress(c);
	}
	/* sector-bitmap blocks of chunks without a partially present block */
	for (uint64_t chunk = 0; ret == 0 && g->has_parent && chunk < g->bitmap_blocks; chunk++) {
		uint64_t sbi = vhdx_bat_bitmap_index(g, chunk);
		bool needed = false;

		if (vhdx_bat_state(s->bat[sbi]) != VHDX_BAT_FULLY_PRESENT)
			continue;
		for (uint64_t k = 0; k < g->chunk_ratio && !needed; k++) {
			uint64_t blk = chunk * g->chunk_ratio + k;
			if (blk >= g->payload_blocks)
				break;
			needed = vhdx_bat_state(s->bat[vhdx_bat_payload_index(g, blk)]) == VHDX_BAT_PARTIALLY_PRESENT;
		}
		if (!needed) {
			ret = note_change(c, sbi, vhdx_bat_make(VHDX_BAT_NOT_PRESENT, 0));
			if (ret == 0)
				s->sb_present--;
			c->res->bitmaps_freed++;
		}
	}
	free(buf);
	free(bm);
	if (ret < 0)
		return ret;
	ret = progress(c);
	if (ret == 0)
		ret = commit_changes(c);
	return ret;
}

/* The allocated blocks of the durable BAT, and every interval of the file in use. */
static int collect(struct compactor *c, struct cblock **blocks_out, size_t *nb_out, struct vhdx_span **used_out,
		   size_t *nu_out)
{
	struct vhdx_state *s = c->s;
	const struct vhdx_geometry *g = &s->geo;
	const struct vhdx_header *h = &s->headers[s->current];
	struct cblock *blocks = vhdx_calloc(g->bat_entries ? g->bat_entries : 1, sizeof *blocks);
	struct vhdx_span *used = vhdx_calloc(g->bat_entries + s->regions->entry_count + 2, sizeof *used);
	size_t nb = 0, nu = 0;

	if (!blocks || !used) {
		free(blocks);
		free(used);
		return vhdx_err(ENOMEM, "out of memory");
	}
	used[nu++] = (struct vhdx_span){ 0, VHDX_ALIGN };
	if (h->log_length)
		used[nu++] = (struct vhdx_span){ h->log_offset, h->log_offset + h->log_length };
	for (uint32_t r = 0; r < s->regions->entry_count; r++) {
		const struct vhdx_region_entry *re = &s->regions->entries[r];
		used[nu++] = (struct vhdx_span){ re->file_offset, re->file_offset + re->length };
	}
	for (uint64_t i = 0; i < g->bat_entries; i++) {
		uint64_t e = s->bat[i];
		unsigned st = vhdx_bat_state(e);
		bool is_sb = (i % (g->chunk_ratio + 1)) == g->chunk_ratio;
		uint64_t blk = i - i / (g->chunk_ratio + 1);
		struct cblock *b;

		if (is_sb) {
			/* a base disk's bitmap entries mean nothing (the reader ignores them) */
			if (!g->has_parent || st != VHDX_BAT_FULLY_PRESENT)
				continue;
		} else if (blk >= g->payload_blocks ||
			   (st != VHDX_BAT_FULLY_PRESENT && st != VHDX_BAT_PARTIALLY_PRESENT)) {
			continue;
		}
		b = &blocks[nb++];
		b->idx = i;
		b->foff = vhdx_bat_foff(e);
		b->bitmap = is_sb;
		b->span = is_sb ? VHDX_ALIGN : g->block_size;
		b->copy_len = is_sb ? VHDX_ALIGN : block_data_len(g, blk);
		/*
		 * The file keeps the whole span of every block, also of a short
		 * last block (a file may end inside one, but not every reader
		 * accepts that, so compaction never makes one).
		 */
		b->end = b->foff + b->span;
		used[nu++] = (struct vhdx_span){ b->foff, b->foff + b->span };
	}
	qsort(used, nu, sizeof *used, vhdx_span_cmp);
	*blocks_out = blocks;
	*nb_out = nb;
	*used_out = used;
	*nu_out = nu;
	return 0;
}

/* One round of moves (see the top of the file).  *MOVED: blocks moved in it. */
static int move_round(struct compactor *c, uint64_t *moved)
{
	struct vhdx_state *s = c->s;
	struct cblock *blocks = NULL;
	struct vhdx_span *used = NULL, *gaps = NULL;
	size_t nb, nu, ng = 0, cursor[2] = { 0, 0 };
	struct {
		struct cblock *b;
		uint64_t to;
	} *moves = NULL;
	size_t nm = 0;
	uint64_t end = 0;
	int ret;

	*moved = 0;
	ret = collect(c, &blocks, &nb, &used, &nu);
	if (ret < 0)
		return ret;
	/* free gaps between the used intervals, 1 MiB aligned */
	gaps = vhdx_calloc(nu + 1, sizeof *gaps);
	moves = vhdx_calloc(nb ? nb : 1, sizeof *moves);
	if (!gaps || !moves) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	ng = vhdx_maint_gaps(used, nu, VHDX_ALIGN, gaps, &end);
	/* the highest blocks first, each into the lowest gap below it that fits */
	qsort(blocks, nb, sizeof *blocks, cmp_cblock_desc);
	for (size_t k = 0; k < nb; k++) {
		struct cblock *b = &blocks[k];
		size_t *cur = &cursor[b->bitmap];
		size_t gi = *cur;

		/* a gap before the cursor is too small for this size; gaps only shrink */
		while (gi < ng && gaps[gi].end - gaps[gi].start < b->span)
			gi++;
		*cur = gi;
		if (gi >= ng || gaps[gi].start >= b->foff)
			continue;
		moves[nm].b = b;
		moves[nm].to = gaps[gi].start;
		nm++;
		gaps[gi].start += b->span;
	}
	if (nm == 0)
		goto out;
	for (size_t m = 0; m < nm; m++)
		c->total += moves[m].b->copy_len;
	/* copies into space that no durable entry names */
	for (size_t m = 0; m < nm; m++) {
		struct cblock *b = moves[m].b;
		ret = vhdx_maint_copy(c->l, b->foff, moves[m].to, b->copy_len,
				      b->bitmap ? VHDX_TAG_BITMAP : VHDX_TAG_PAYLOAD);
		if (ret == 0 && b->copy_len < b->span)
			/* the rest of a short last block reads zero if the disk grows later */
			ret = vhdx_io_zero_range(c->l->io, moves[m].to + b->copy_len, b->span - b->copy_len,
						 VHDX_TAG_PAYLOAD);
		if (ret < 0)
			goto out;
		c->done += b->copy_len;
		c->res->bytes_moved += b->copy_len;
		ret = progress(c);
		if (ret < 0)
			goto out;
	}
	/* the copies durable before any entry names them */
	ret = vhdx_io_flush(c->l->io);
	if (ret < 0)
		goto out;
	vhdx_journal_file_flushed(&c->j);
	for (size_t m = 0; m < nm; m++) {
		uint64_t e = s->bat[moves[m].b->idx];
		ret = note_change(c, moves[m].b->idx, vhdx_bat_make(vhdx_bat_state(e), moves[m].to));
		if (ret < 0)
			goto out;
	}
	/* journaled, applied and flushed: only now are the old places free for the next round */
	ret = commit_changes(c);
	if (ret < 0)
		goto out;
	c->res->blocks_moved += nm;
	*moved = nm;
out:
	free(blocks);
	free(used);
	free(gaps);
	free(moves);
	return ret;
}

/* End of the last structure in use: the size the file can be cut to. */
static int final_size(struct compactor *c, uint64_t *size)
{
	struct vhdx_state *s = c->s;
	const struct vhdx_header *h = &s->headers[s->current];
	struct cblock *blocks;
	struct vhdx_span *used;
	size_t nb, nu;
	uint64_t end = VHDX_ALIGN;
	int ret = collect(c, &blocks, &nb, &used, &nu);

	if (ret < 0)
		return ret;
	if (h->log_length)
		end = VHDX_MAX(end, h->log_offset + h->log_length);
	for (uint32_t r = 0; r < s->regions->entry_count; r++)
		end = VHDX_MAX(end, s->regions->entries[r].file_offset + s->regions->entries[r].length);
	for (size_t k = 0; k < nb; k++)
		end = VHDX_MAX(end, blocks[k].end);
	free(blocks);
	free(used);
	*size = end;
	return 0;
}

int vhdx_compact_vhdx(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, struct vhdx_compact_result *res)
{
	struct compactor c;
	uint64_t moved, size;
	int ret, r2;

	memset(&c, 0, sizeof c);
	c.l = l;
	c.s = vhdx_state_of(l);
	c.prog = prog;
	c.res = res;
	res->old_file_size = res->new_file_size = c.s->file_size;
	if (l->type == VHDX_TYPE_FIXED)
		return vhdx_err(EINVAL, "%s is a fixed disk: every block stays allocated, there is nothing to compact",
				l->path);
	if (!l->writable || !c.s->writer)
		return vhdx_err(EROFS, "%s: opened read-only", l->path);
	ret = scan(&c);
	while (ret == 0) {
		ret = move_round(&c, &moved);
		if (ret < 0 || moved == 0)
			break;
	}
	/* every change durable and the log clear before the file shrinks */
	r2 = c.j.active ? vhdx_journal_finish(l, c.s, &c.j) : 0;
	if (ret == 0)
		ret = r2;
	if (ret == 0)
		ret = final_size(&c, &size);
	if (ret == 0 && size < c.s->file_size) {
		ret = vhdx_io_set_size(l->io, size);
		if (ret == 0)
			ret = vhdx_io_flush(l->io);
		if (ret == 0) {
			c.s->file_size = size;
			res->new_file_size = size;
		}
	}
	free(c.changed);
	return ret;
}
