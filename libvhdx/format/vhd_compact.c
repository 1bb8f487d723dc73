/*
 * vhd_compact.c - compaction of a dynamic or differencing VHD in place
 * (VHD spec v1.0 "Block Allocation Table and Data Blocks"; FORMAT.md 2.5).
 *
 *   1. scan: a dynamic disk's block whose data is all zero is released
 *      (BAT entry 0xFFFFFFFF: unallocated reads as zeros); a differencing
 *      disk's block whose sector bitmap has no bit set is released
 *      (unallocated reads the parent, as every sector of it did).  A
 *      differencing block holding zeros with bits set stays: VHD has no
 *      ZERO state, and releasing it would show the parent.
 *   2. move, in rounds: blocks from the top of the file down into the
 *      lowest space that is free in the DURABLE state.  Per round: copy
 *      bitmap and data, flush (durable before any entry names it), write the
 *      changed BAT sectors, flush (only now is the old place free).  A BAT
 *      sector write is atomic, and each entry names either the old copy
 *      (never touched) or the new one (durable): any crash reads the same.
 *   3. the footer (its bytes unchanged) is written right behind the last
 *      block, flushed, then the file is cut behind it and flushed.  A crash
 *      before the cut leaves the old trailing footer at the end of the file
 *      (the copy written inside is unused space).
 * The unique id does not change: children stay linked.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "format/vhd_format.h"
#include "format/vhdx_maint.h"

struct vblock {
	uint32_t blk;
	uint64_t foff;
	uint64_t span;     /* bitmap + whole block: what a block reserves */
	uint64_t copy_len; /* bitmap + the data inside the disk */
};

static int cmp_vblock_desc(const void *a, const void *b)
{
	const struct vblock *x = a, *y = b;
	return x->foff > y->foff ? -1 : x->foff < y->foff;
}

/*
 * Writes the BAT sectors holding entries BLKS[0..N) from s->bat (each sector
 * write is atomic).  s->bat holds only the disk's entries: the entries past
 * the disk's end that share the last sector are written back as the file
 * has them.
 */
static int write_bat_sectors(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint32_t *blks, size_t n)
{
	uint64_t bat_bytes = 4ull * s->dyn.max_table_entries;
	uint8_t sec[VHD_SECTOR];
	uint64_t last = UINT64_MAX;
	int ret;

	for (size_t i = 1; i < n; i++) /* insertion order is ascending in practice; sort to be sure */
		for (size_t k = i; k > 0 && blks[k - 1] > blks[k]; k--) {
			uint32_t t = blks[k];
			blks[k] = blks[k - 1];
			blks[k - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		uint64_t sector = (uint64_t)blks[i] * 4 / VHD_SECTOR, first = sector * VHD_SECTOR / 4, len;
		if (sector == last)
			continue;
		last = sector;
		len = VHDX_MIN((uint64_t)VHD_SECTOR, bat_bytes - sector * VHD_SECTOR);
		memset(sec, 0xff, sizeof sec);
		if (first + len / 4 > s->blocks_needed) {
			ret = vhdx_io_pread(l->io, sec, len, s->dyn.table_offset + sector * VHD_SECTOR, VHDX_TAG_BAT);
			if (ret < 0)
				return ret;
		}
		for (uint64_t e = 0; e < len / 4 && first + e < s->blocks_needed; e++)
			vhdx_vhd_bat_put(sec, e, s->bat[first + e]);
		ret = vhdx_io_pwrite(l->io, sec, len, s->dyn.table_offset + sector * VHD_SECTOR, VHDX_TAG_BAT);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void set_entry(struct vhdx_vhd_state *s, uint32_t blk, uint32_t v)
{
	pthread_rwlock_wrlock(&s->lock);
	if (s->bat[blk] == VHD_BAT_UNUSED && v != VHD_BAT_UNUSED)
		s->allocated_blocks++;
	else if (s->bat[blk] != VHD_BAT_UNUSED && v == VHD_BAT_UNUSED)
		s->allocated_blocks--;
	s->bat[blk] = v;
	if (v == VHD_BAT_UNUSED && s->bitmaps && s->bitmaps[blk]) {
		free(s->bitmaps[blk]);
		s->bitmaps[blk] = NULL;
	}
	pthread_rwlock_unlock(&s->lock);
}

static uint64_t data_len(const struct vhdx_vhd_state *s, uint64_t blk)
{
	uint64_t start = blk * s->dyn.block_size, vsize = s->footer->current_size;
	return start < vsize ? VHDX_MIN((uint64_t)s->dyn.block_size, vsize - start) : 0;
}

static int progress(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, uint64_t done, uint64_t total)
{
	if (prog && prog->fn && prog->fn(done, total, prog->arg))
		return vhdx_err(ECANCELED, "%s: compaction cancelled", l->path);
	return 0;
}

/* Phase 1 (see the top of the file). */
static int scan(struct vhdx_layer *l, struct vhdx_vhd_state *s, const struct vhdx_maint_progress *prog,
		struct vhdx_compact_result *res, uint64_t *done, uint64_t *total)
{
	bool diff = l->type == VHDX_TYPE_DIFFERENCING;
	uint32_t *changed = vhdx_calloc(s->blocks_needed ? s->blocks_needed : 1, sizeof *changed);
	uint8_t *buf = malloc(VHDX_MAX(s->dyn.block_size, s->bitmap_size));
	size_t n = 0;
	int ret = 0;

	if (!changed || !buf) {
		free(changed);
		free(buf);
		return vhdx_err(ENOMEM, "out of memory");
	}
	for (uint64_t blk = 0; blk < s->blocks_needed; blk++)
		if (s->bat[blk] != VHD_BAT_UNUSED) {
			res->blocks_examined++;
			*total += data_len(s, blk);
		}
	for (uint64_t blk = 0; blk < s->blocks_needed && ret == 0; blk++) {
		uint64_t foff, len = data_len(s, blk);
		bool release;

		if (s->bat[blk] == VHD_BAT_UNUSED)
			continue;
		foff = vhdx_vhd_block_foff(s->bat[blk]);
		if (diff) {
			uint64_t nsect = vhdx_div_round_up(len, VHD_SECTOR);
			bool v;
			ret = vhdx_io_pread(l->io, buf, s->bitmap_size, foff, VHDX_TAG_BITMAP);
			if (ret < 0)
				break;
			/* no bit set: every sector reads from the parent already */
			release = vhdx_vhd_bitmap_run(buf, 0, nsect, &v) == nsect && !v;
		} else {
			ret = vhdx_io_pread_payload(l->io, buf, len, foff + s->bitmap_size, blk * s->dyn.block_size);
			if (ret < 0)
				break;
			release = vhdx_buf_is_zero(buf, len);
		}
		*done += len;
		if (release) {
			set_entry(s, (uint32_t)blk, VHD_BAT_UNUSED);
			changed[n++] = (uint32_t)blk;
			if (diff)
				res->blocks_dropped++;
			else
				res->blocks_zeroed++;
		}
		if (blk % 16 == 15)
			ret = progress(l, prog, *done, *total);
	}
	if (ret == 0 && n) {
		ret = write_bat_sectors(l, s, changed, n);
		if (ret == 0)
			ret = vhdx_io_flush(l->io);
	}
	free(changed);
	free(buf);
	return ret;
}

/*
 * Allocated blocks and every span of the file in use (blocks included),
 * sorted.  Only the disk's blocks count: an entry past the disk's end is
 * never used for data (and not loaded), so the space it names is free to
 * reuse; `vhdx check` reports such entries.
 */
static int collect(struct vhdx_vhd_state *s, struct vblock **bout, size_t *nbout, struct vhdx_span **uout, size_t *nuout)
{
	const struct vhdx_vhd_dynhdr *d = &s->dyn;
	struct vblock *b = vhdx_calloc(s->blocks_needed ? s->blocks_needed : 1, sizeof *b);
	struct vhdx_span *u = vhdx_calloc((size_t)s->blocks_needed + VHD_N_LOCATORS + 3, sizeof *u);
	size_t nb = 0, nu = 0;

	if (!b || !u) {
		free(b);
		free(u);
		return vhdx_err(ENOMEM, "out of memory");
	}
	u[nu++] = (struct vhdx_span){ 0, VHD_FOOTER_SIZE };
	u[nu++] = (struct vhdx_span){ s->dynhdr_off, s->dynhdr_off + VHD_DYNHDR_SIZE };
	u[nu++] = (struct vhdx_span){ d->table_offset, d->table_offset + vhdx_round_up(4ull * d->max_table_entries, VHD_SECTOR) };
	for (unsigned k = 0; k < VHD_N_LOCATORS; k++)
		if (d->locators[k].code != VHD_PLAT_NONE && d->locators[k].data_length)
			u[nu++] = (struct vhdx_span){ d->locators[k].data_offset,
						 d->locators[k].data_offset + d->locators[k].data_length };
	for (uint64_t i = 0; i < s->blocks_needed; i++) {
		if (s->bat[i] == VHD_BAT_UNUSED)
			continue;
		b[nb].blk = (uint32_t)i;
		b[nb].foff = vhdx_vhd_block_foff(s->bat[i]);
		b[nb].span = (uint64_t)s->bitmap_size + d->block_size;
		b[nb].copy_len = (uint64_t)s->bitmap_size + data_len(s, i);
		u[nu++] = (struct vhdx_span){ b[nb].foff, b[nb].foff + b[nb].span };
		nb++;
	}
	qsort(u, nu, sizeof *u, vhdx_span_cmp);
	*bout = b;
	*nbout = nb;
	*uout = u;
	*nuout = nu;
	return 0;
}

static int move_round(struct vhdx_layer *l, struct vhdx_vhd_state *s, const struct vhdx_maint_progress *prog,
		      struct vhdx_compact_result *res, uint64_t *done, uint64_t *total, size_t *moved)
{
	struct vblock *b = NULL;
	struct vhdx_span *u = NULL, *gaps = NULL;
	uint64_t *to = NULL, end = 0;
	uint32_t *blks = NULL;
	size_t nb, nu, ng = 0, nm = 0, cur = 0;
	int ret;

	*moved = 0;
	ret = collect(s, &b, &nb, &u, &nu);
	if (ret < 0)
		return ret;
	gaps = vhdx_calloc(nu + 1, sizeof *gaps);
	to = vhdx_calloc(nb ? nb : 1, sizeof *to);
	blks = vhdx_calloc(nb ? nb : 1, sizeof *blks);
	if (!gaps || !to || !blks) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	ng = vhdx_maint_gaps(u, nu, VHD_SECTOR, gaps, &end);
	/* every block has the same span: the lowest fitting gap only moves up */
	qsort(b, nb, sizeof *b, cmp_vblock_desc);
	for (size_t k = 0; k < nb; k++) {
		while (cur < ng && gaps[cur].end - gaps[cur].start < b[k].span)
			cur++;
		if (cur >= ng || gaps[cur].start >= b[k].foff) {
			to[k] = UINT64_MAX;
			continue;
		}
		to[k] = gaps[cur].start;
		gaps[cur].start += b[k].span;
		nm++;
	}
	if (nm == 0)
		goto out;
	for (size_t k = 0; k < nb; k++)
		if (to[k] != UINT64_MAX)
			*total += b[k].copy_len;
	for (size_t k = 0; k < nb; k++) {
		if (to[k] == UINT64_MAX)
			continue;
		if (to[k] / VHD_SECTOR >= VHD_BAT_UNUSED) {
			ret = vhdx_err(EINVAL, "internal error: block destination 0x%llx out of range",
				       (unsigned long long)to[k]);
			goto out;
		}
		/* bitmap and data into space no durable entry names */
		ret = vhdx_maint_copy(l, b[k].foff, to[k], b[k].copy_len, VHDX_TAG_PAYLOAD);
		if (ret < 0)
			goto out;
		*done += b[k].copy_len;
		res->bytes_moved += b[k].copy_len;
		ret = progress(l, prog, *done, *total);
		if (ret < 0)
			goto out;
	}
	/* the copies durable before a BAT entry names them */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		goto out;
	nm = 0;
	for (size_t k = 0; k < nb; k++)
		if (to[k] != UINT64_MAX) {
			set_entry(s, b[k].blk, (uint32_t)(to[k] / VHD_SECTOR));
			blks[nm++] = b[k].blk;
		}
	ret = write_bat_sectors(l, s, blks, nm);
	/* the entries durable: only now may the old places be reused */
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	if (ret == 0) {
		res->blocks_moved += nm;
		*moved = nm;
	}
out:
	free(b);
	free(u);
	free(gaps);
	free(to);
	free(blks);
	return ret;
}

int vhdx_compact_vhd(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, struct vhdx_compact_result *res)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	struct vblock *b = NULL;
	struct vhdx_span *u = NULL;
	size_t nb, nu, moved;
	uint64_t done = 0, total = 0, end = 0;
	int ret;

	res->old_file_size = res->new_file_size = s->file_size;
	if (l->type == VHDX_TYPE_FIXED)
		return vhdx_err(EINVAL, "%s is a fixed disk: every block stays allocated, there is nothing to compact",
				l->path);
	if (!l->writable || !s->writer)
		return vhdx_err(EROFS, "%s: opened read-only", l->path);
	if (!s->copies[VHDX_VHD_TRAILING].valid || s->copies[VHDX_VHD_TRAILING].old_size)
		return vhdx_err(ENOTSUP, "%s: the trailing footer is missing or damaged; repair it before compacting",
				l->path);
	ret = scan(l, s, prog, res, &done, &total);
	while (ret == 0) {
		ret = move_round(l, s, prog, res, &done, &total, &moved);
		if (ret < 0 || moved == 0)
			break;
	}
	if (ret == 0)
		ret = collect(s, &b, &nb, &u, &nu);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < nu; i++)
		end = VHDX_MAX(end, u[i].end);
	free(b);
	free(u);
	if (end < s->data_end) {
		ret = vhdx_vhd_footer_move(l->io, s->copies[VHDX_VHD_TRAILING].raw, end);
		if (ret < 0)
			return ret;
		s->data_end = end;
		s->file_size = end + VHD_FOOTER_SIZE;
		s->copies[VHDX_VHD_TRAILING].offset = end;
		res->new_file_size = s->file_size;
	}
	return progress(l, prog, done, total);
}
