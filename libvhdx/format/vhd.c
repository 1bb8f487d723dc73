/*
 * vhd.c - L2 reader of legacy VHD files (VHD spec v1.0; FORMAT.md section
 * 2): finds a valid footer (the trailing copy first, then the leading copy
 * of dynamic and differencing disks), reads the dynamic header with its
 * parent locators, loads and validates the BAT once, and maps virtual
 * ranges to file ranges, zeros or the parent.
 *
 * Read semantics (FORMAT.md 2.5):
 *   fixed         data at the same offset in the file;
 *   dynamic       unallocated block -> zeros; allocated block -> the block's
 *                 data area, whatever its sector bitmap says (Windows and
 *                 qemu read it that way, and Disk2VHD leaves bitmap bits
 *                 clear over zero-filled data);
 *   differencing  unallocated block -> parent; allocated block -> per sector
 *                 through the MSB-first bitmap: 1 this file, 0 the parent.
 *
 * The disk size is the footer's current size, never the CHS geometry.
 * Writes are vhd_write.c's: a writable open hands the loaded state to it,
 * and from then on map() reads the BAT and bitmap bits under s->lock.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "format/check.h"
#include "format/vhd_create.h"
#include "format/vhd_format.h"
#include "format/vhd_reparent.h"
#include "format/vhd_write.h"
#include "format/vhdx_maint.h"

#define VHD_BID_TRAILING 80 /* below VHDX's 100: a "vhdxfile" signature at 0 wins */
#define VHD_BID_OLD      75
#define VHD_BID_LEADING  70

static int vhd_probe(struct vhdx_io *io, const uint8_t *head, size_t headlen, uint64_t file_size)
{
	uint8_t tail[VHD_FOOTER_SIZE];

	if (file_size >= VHD_FOOTER_SIZE) {
		/* a failed read is an I/O error, not "no footer" (issue #15 item 9:
		 * a fixed VHD was "not a VHDX or VHD image" after an EIO here) */
		int ret = vhdx_io_pread(io, tail, VHD_FOOTER_SIZE, file_size - VHD_FOOTER_SIZE, VHDX_TAG_FOOTER);
		if (ret < 0 && ret != -EBADMSG)
			return ret;
		if (ret == 0 && !memcmp(tail, VHD_FOOTER_COOKIE, 8))
			return VHD_BID_TRAILING;
		if (ret == 0 && !memcmp(tail + 1, VHD_FOOTER_COOKIE, 8))
			return VHD_BID_OLD;
	}
	if (headlen >= VHD_FOOTER_SIZE && !memcmp(head, VHD_FOOTER_COOKIE, 8))
		return VHD_BID_LEADING;
	return 0;
}

static void state_free(struct vhdx_vhd_state *s)
{
	if (!s)
		return;
	for (int i = 0; i < 2; i++)
		free(s->copies[i].error);
	free(s->parent_name);
	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		free(s->locators[i].path);
		free(s->locators[i].error);
	}
	free(s->bat);
	if (s->bitmaps) {
		for (uint64_t i = 0; i < s->blocks_needed; i++)
			free(s->bitmaps[i]);
		free(s->bitmaps);
	}
	if (s->mutex_ready)
		pthread_mutex_destroy(&s->bitmap_mutex);
	if (s->lock_ready)
		pthread_rwlock_destroy(&s->lock);
	free(s);
}

/*
 * Reads and decodes one footer copy at C->offset (LEN bytes: 512, or 511
 * for an old trailing footer).  A strict decode first; with SALVAGE a
 * checksum mismatch is then excused.  Only I/O errors are returned; a bad
 * copy is described in C->error.
 */
static int read_copy(struct vhdx_layer *l, struct vhdx_vhd_footer_copy *c, size_t len, bool salvage,
		     const char *what)
{
	int ret;

	memset(c->raw, 0, sizeof c->raw);
	ret = vhdx_io_pread(l->io, c->raw, len, c->offset, VHDX_TAG_FOOTER);
	if (ret < 0)
		return ret;
	c->present = !memcmp(c->raw, VHD_FOOTER_COOKIE, 8);
	ret = vhdx_vhd_footer_decode(c->raw, sizeof c->raw, 0, &c->f);
	if (ret < 0 && salvage && c->present) {
		/* the second decode's message (if it fails) names the fault salvage cannot excuse */
		ret = vhdx_vhd_footer_decode(c->raw, sizeof c->raw, VHDX_VHD_DECODE_SALVAGE, &c->f);
		c->salvaged = ret == 0;
	}
	c->valid = ret == 0;
	c->err = ret < 0 ? -ret : 0;
	if (c->salvaged) {
		vhdx_err(EBADMSG, "%s at 0x%llx: footer: checksum mismatch (stored 0x%08x, computed 0x%08x), read anyway (salvage)",
			 what, (unsigned long long)c->offset, c->f.checksum, c->f.checksum_computed);
		c->error = vhdx_err_dup();
	} else if (!c->valid) {
		vhdx_err_prefix(ret, "%s at 0x%llx", what, (unsigned long long)c->offset);
		c->error = vhdx_err_dup();
	}
	return 0;
}

/*
 * Picks the footer (FORMAT.md 2.2): the trailing copy when it is valid;
 * otherwise the leading copy of a dynamic or differencing disk (a fixed
 * disk has none: its first sector is disk data).  With SALVAGE a copy whose
 * only fault is its checksum is used, preferring one with a good checksum.
 */
static int read_footers(struct vhdx_layer *l, struct vhdx_vhd_state *s, bool salvage)
{
	struct vhdx_vhd_footer_copy *t = &s->copies[VHDX_VHD_TRAILING], *h = &s->copies[VHDX_VHD_LEADING];
	int ret;

	if (s->file_size < VHD_FOOTER_OLD_SIZE)
		return vhdx_err(EBADMSG, "file of %llu bytes is too small to hold a VHD footer",
				(unsigned long long)s->file_size);
	if (s->file_size >= VHD_FOOTER_SIZE) {
		t->offset = s->file_size - VHD_FOOTER_SIZE;
		ret = read_copy(l, t, VHD_FOOTER_SIZE, salvage, "trailing footer");
		if (ret < 0)
			return ret;
	}
	if (!t->present) {
		/* images older than Virtual PC 2004 may end with a 511-byte footer */
		struct vhdx_vhd_footer_copy old = { .offset = s->file_size - VHD_FOOTER_OLD_SIZE, .old_size = true };
		ret = read_copy(l, &old, VHD_FOOTER_OLD_SIZE, salvage, "trailing footer (511-byte form)");
		if (ret < 0)
			return ret;
		if (old.present) {
			free(t->error);
			*t = old;
		} else {
			free(old.error);
		}
	}
	/* without a trailing footer the last block may run up to the end of the file */
	s->data_end = t->present ? t->offset : s->file_size;

	if (t->valid && !t->salvaged && t->f.disk_type == VHD_TYPE_FIXED) {
		s->used = VHDX_VHD_TRAILING;
		s->footer = &t->f;
		return 0;
	}
	if (s->file_size >= VHD_FOOTER_SIZE && (!t->present || t->offset != 0)) {
		s->leading_read = true;
		h->offset = 0;
		ret = read_copy(l, h, VHD_FOOTER_SIZE, salvage, "leading footer copy");
		if (ret < 0)
			return ret;
		if (h->valid && h->f.disk_type == VHD_TYPE_FIXED) {
			h->valid = false;
			h->err = EBADMSG;
			free(h->error);
			h->error = strdup("leading footer copy at 0x0: a fixed disk has no leading copy");
		}
	}
	if (t->valid && !t->salvaged)
		s->used = VHDX_VHD_TRAILING;
	else if (h->valid && !h->salvaged)
		s->used = VHDX_VHD_LEADING;
	else if (t->valid)
		s->used = VHDX_VHD_TRAILING;
	else if (h->valid)
		s->used = VHDX_VHD_LEADING;
	else if (t->present || !h->present)
		/* the errno of the trailing copy: ENOTSUP for an unsupported disk type or version */
		return vhdx_err(t->present && t->err ? t->err : EBADMSG, "%s%s%s",
				t->error ? t->error : "no \"conectix\" footer at the end of the file",
				h->error && h->present ? "; " : "", h->error && h->present ? h->error : "");
	else
		return vhdx_err(h->err ? h->err : EBADMSG, "no footer at the end of the file; %s",
				h->error ? h->error : "");
	s->footer = &s->copies[s->used].f;
	if (s->footer->disk_type == VHD_TYPE_FIXED && s->used == VHDX_VHD_TRAILING) {
		s->leading_read = false; /* what sits at offset 0 of a fixed disk is data */
		free(h->error);
		memset(h, 0, sizeof *h);
	}
	s->footers_differ = t->valid && h->valid && memcmp(t->raw, h->raw, VHD_FOOTER_SIZE) != 0;
	return 0;
}

/* True when [a, a+alen) intersects [b, b+blen). */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return vhdx_ranges_overlap(a, alen, b, blen);
}

/* Reads and decodes the locator data of every entry; fatal only for a differencing disk. */
static int read_locators(struct vhdx_layer *l, struct vhdx_vhd_state *s, bool differencing)
{
	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		const struct vhdx_vhd_locator *e = &s->dyn.locators[i];
		struct vhdx_vhd_locator_info *li = &s->locators[i];
		uint64_t entry_off = s->dynhdr_off + VHD_DYNHDR_LOCATOR_OFF + (uint64_t)VHD_LOCATOR_ENTRY_SIZE * i;
		uint8_t *data;
		char cc[5];
		int ret;

		if (e->code == VHD_PLAT_NONE)
			continue;
		vhdx_vhd_fourcc(e->code, cc);
		ret = vhdx_vhd_locator_check(&s->dyn, i, s->data_end);
		if (ret == 0 && (overlaps(e->data_offset, e->data_length, s->dynhdr_off, VHD_DYNHDR_SIZE) ||
				 overlaps(e->data_offset, e->data_length, s->dyn.table_offset,
					  4ull * s->dyn.max_table_entries)))
			ret = vhdx_err(EBADMSG, "parent locator entry %u (%s): data at 0x%llx (+%u bytes) overlaps the dynamic header or the BAT",
				       i, cc, (unsigned long long)e->data_offset, e->data_length);
		if (ret == 0 && e->data_length == 0)
			continue;
		if (ret == 0) {
			data = malloc(e->data_length);
			if (!data)
				return vhdx_err(ENOMEM, "out of memory");
			ret = vhdx_io_pread(l->io, data, e->data_length, e->data_offset, VHDX_TAG_DYNHDR);
			if (ret == 0) {
				ret = vhdx_vhd_locator_path(e->code, data, e->data_length, &li->path);
				if (ret == -ENOTSUP)
					ret = 0; /* a Mac alias blob or an unknown code: listed, never followed */
				else if (ret == -EBADMSG)
					ret = vhdx_err(EBADMSG, "parent locator entry %u (%s): data at 0x%llx is not valid %s",
						       i, cc, (unsigned long long)e->data_offset,
						       e->code == VHD_PLAT_MACX ? "UTF-8" : "UTF-16LE");
				else if (ret == -ENOMEM)
					ret = vhdx_err(ENOMEM, "out of memory");
			}
			free(data);
		}
		if (ret < 0 && ret != -EBADMSG)
			return ret; /* I/O (any errno) or memory: not the locator's fault */
		if (ret < 0) {
			vhdx_err_prefix(ret, "dynamic header at 0x%llx, locator entry at 0x%llx",
					(unsigned long long)s->dynhdr_off, (unsigned long long)entry_off);
			if (differencing)
				return ret;
			li->error = vhdx_err_dup(); /* unused by a dynamic disk: shown by info, not fatal */
		}
	}
	return 0;
}

/* Bytes block BLK occupies in the file: its bitmap and the part of its data inside the disk. */
static uint64_t block_span(const struct vhdx_vhd_state *s, uint64_t blk)
{
	uint64_t vsize = s->footer->current_size, start = blk * s->dyn.block_size;
	uint64_t data = start < vsize ? VHDX_MIN((uint64_t)s->dyn.block_size, vsize - start) : 0;

	return s->bitmap_size + data;
}

/*
 * Loads the entries of the BAT that the disk uses (the first blocks_needed;
 * vhdx_vhd_dynhdr_check_size() made sure the table has that many) and
 * checks every allocated block: inside the data area (before the trailing
 * footer), clear of the leading footer, the dynamic header, the BAT and
 * (differencing) the locator data, and clear of every other block.
 *
 * Entries past the disk's last block are never used for data (the VHD spec
 * lets Max Table Entries exceed the disk: Windows sizes the table for
 * 127 GiB), so they are neither read nor kept: memory and reads are
 * O(blocks_needed), whatever Max Table Entries says.  blocks_needed itself
 * is bounded by the 2 TiB limit (open_dynamic()) and by the file, as its
 * entries must lie in it (checked below).
 * `vhdx check` looks at the rest of the table (vhd_check.c).
 */
static int load_bat(struct vhdx_layer *l, struct vhdx_vhd_state *s, bool differencing)
{
	const struct vhdx_vhd_dynhdr *d = &s->dyn;
	uint64_t bat_len = 4ull * d->max_table_entries, nalloc = 0, n = s->blocks_needed;
	uint64_t *allocs = NULL;
	uint8_t *raw;
	int ret;

	if (!vhdx_range_ok(d->table_offset, bat_len, s->data_end))
		return vhdx_err(EBADMSG, "BAT at 0x%llx with %u entries (%llu bytes) extends past the end of the data area (0x%llx bytes)",
				(unsigned long long)d->table_offset, d->max_table_entries, (unsigned long long)bat_len,
				(unsigned long long)s->data_end);
	if (d->table_offset < VHD_FOOTER_SIZE || overlaps(d->table_offset, bat_len, s->dynhdr_off, VHD_DYNHDR_SIZE))
		return vhdx_err(EBADMSG, "BAT at 0x%llx (%llu bytes) overlaps the leading footer or the dynamic header at 0x%llx",
				(unsigned long long)d->table_offset, (unsigned long long)bat_len,
				(unsigned long long)s->dynhdr_off);
	/* n <= max_table_entries, so 4 * n bytes lie in the file (checked above) */
	raw = malloc(VHD_BAT_READ_CHUNK);
	s->bat = vhdx_calloc(n ? n : 1, sizeof *s->bat);
	if (!raw || !s->bat) {
		free(raw);
		return vhdx_err(ENOMEM, "out of memory for the %llu BAT entries of a %llu-byte disk",
				(unsigned long long)n, (unsigned long long)s->footer->current_size);
	}
	/* in bounded pieces: no second copy of the table in memory */
	for (uint64_t first = 0; first < n; first += VHD_BAT_READ_CHUNK / 4) {
		uint64_t cnt = VHDX_MIN(n - first, (uint64_t)VHD_BAT_READ_CHUNK / 4);
		ret = vhdx_io_pread(l->io, raw, 4 * cnt, d->table_offset + 4 * first, VHDX_TAG_BAT);
		if (ret < 0) {
			free(raw);
			return ret;
		}
		for (uint64_t k = 0; k < cnt; k++) {
			s->bat[first + k] = vhdx_vhd_bat_get(raw, k);
			s->allocated_blocks += s->bat[first + k] != VHD_BAT_UNUSED;
		}
	}
	free(raw);

	allocs = vhdx_calloc(s->allocated_blocks ? s->allocated_blocks : 1, 2 * sizeof *allocs);
	if (!allocs)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t foff, len, entry_off = d->table_offset + 4 * i;

		if (s->bat[i] == VHD_BAT_UNUSED)
			continue;
		foff = vhdx_vhd_block_foff(s->bat[i]);
		len = block_span(s, i);
		if (!vhdx_range_ok(foff, len, s->data_end)) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at file offset 0x%llx (+0x%llx) lies past the end of the data area (0x%llx, %s)",
				       (unsigned long long)i, (unsigned long long)entry_off, (unsigned long long)foff,
				       (unsigned long long)len, (unsigned long long)s->data_end,
				       s->copies[VHDX_VHD_TRAILING].present ? "the trailing footer" : "end of file");
			goto out;
		}
		if (overlaps(foff, len, 0, VHD_FOOTER_SIZE) || overlaps(foff, len, s->dynhdr_off, VHD_DYNHDR_SIZE) ||
		    overlaps(foff, len, d->table_offset, bat_len)) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at file offset 0x%llx (+0x%llx) overlaps the %s",
				       (unsigned long long)i, (unsigned long long)entry_off, (unsigned long long)foff,
				       (unsigned long long)len,
				       overlaps(foff, len, 0, VHD_FOOTER_SIZE) ? "leading footer copy at 0x0"
				       : overlaps(foff, len, s->dynhdr_off, VHD_DYNHDR_SIZE) ? "dynamic header"
				       : "BAT");
			goto out;
		}
		for (unsigned k = 0; differencing && k < VHD_N_LOCATORS; k++) {
			const struct vhdx_vhd_locator *e = &d->locators[k];
			if (e->code != VHD_PLAT_NONE && overlaps(foff, len, e->data_offset, e->data_length)) {
				ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at file offset 0x%llx overlaps the data of parent locator entry %u at 0x%llx",
					       (unsigned long long)i, (unsigned long long)entry_off,
					       (unsigned long long)foff, k, (unsigned long long)e->data_offset);
				goto out;
			}
		}
		allocs[2 * nalloc] = foff;
		allocs[2 * nalloc + 1] = i;
		nalloc++;
	}
	qsort(allocs, nalloc, 2 * sizeof *allocs, vhdx_cmp_u64);
	for (uint64_t k = 1; k < nalloc; k++) {
		uint64_t prev = allocs[2 * (k - 1) + 1], i = allocs[2 * k + 1];
		if (allocs[2 * k] < allocs[2 * (k - 1)] + block_span(s, prev)) {
			ret = vhdx_err(EBADMSG, "BAT entry %llu at 0x%llx: block at file offset 0x%llx overlaps the block of BAT entry %llu at file offset 0x%llx",
				       (unsigned long long)i, (unsigned long long)(d->table_offset + 4 * i),
				       (unsigned long long)allocs[2 * k], (unsigned long long)prev,
				       (unsigned long long)allocs[2 * (k - 1)]);
			goto out;
		}
	}
	ret = 0;
out:
	free(allocs);
	return ret;
}

/* Fills l->parent for a differencing disk: linkage and paths in resolution order. */
static int fill_parent(struct vhdx_layer *l, struct vhdx_vhd_state *s)
{
	/* W2ru relative first, then W2ku absolute, the deprecated single-byte
	 * forms, the parent Unicode name, and a MacX URL last (FORMAT.md 2.4) */
	static const struct {
		uint32_t code;
		const char *key;
	} order[] = {
		{ VHD_PLAT_W2RU, "W2ru" }, { VHD_PLAT_W2KU, "W2ku" }, { VHD_PLAT_WI2R, "Wi2r" },
		{ VHD_PLAT_WI2K, "Wi2k" }, { 0, "parent_name" },     { VHD_PLAT_MACX, "MacX" },
	};
	struct vhdx_parent_ref *r = &l->parent;

	vhdx_vhd_uuid_to_guid(s->dyn.parent_unique_id, r->linkage);
	r->timestamp = s->dyn.parent_timestamp;
	r->paths = vhdx_calloc(VHD_N_LOCATORS + 1, sizeof *r->paths);
	if (!r->paths)
		return vhdx_err(ENOMEM, "out of memory");
	for (size_t o = 0; o < VHDX_ARRAY_LEN(order); o++) {
		for (unsigned i = 0; i < VHD_N_LOCATORS + 1; i++) {
			const char *value;
			struct vhdx_parent_path *p;

			if (order[o].code == 0) {
				if (i > 0)
					break;
				value = s->parent_name;
			} else {
				if (i >= VHD_N_LOCATORS)
					break;
				if (s->dyn.locators[i].code != order[o].code)
					continue;
				value = s->locators[i].path;
			}
			if (!value || !*value)
				continue;
			p = &r->paths[r->n_paths];
			p->key = strdup(order[o].key);
			p->value = strdup(value);
			if (!p->key || !p->value) {
				free(p->key);
				free(p->value);
				p->key = p->value = NULL;
				return vhdx_err(ENOMEM, "out of memory");
			}
			r->n_paths++;
		}
	}
	return 0;
}

static int open_dynamic(struct vhdx_layer *l, struct vhdx_vhd_state *s, bool salvage)
{
	const struct vhdx_vhd_footer *f = s->footer;
	bool differencing = f->disk_type == VHD_TYPE_DIFFERENCING;
	uint8_t buf[VHD_DYNHDR_SIZE];
	int ret;

	if (f->current_size > VHD_MAX_READ_DYNAMIC_SIZE)
		return vhdx_err(EBADMSG, "footer at 0x%llx: current size %llu is more than the %llu bytes (2 TiB) a dynamic or differencing VHD can hold",
				(unsigned long long)s->copies[s->used].offset, (unsigned long long)f->current_size,
				(unsigned long long)VHD_MAX_READ_DYNAMIC_SIZE);
	s->dynhdr_off = f->data_offset;
	if (s->dynhdr_off < VHD_FOOTER_SIZE || !vhdx_range_ok(s->dynhdr_off, VHD_DYNHDR_SIZE, s->data_end))
		return vhdx_err(EBADMSG, "footer: data offset 0x%llx does not leave room for a dynamic header between the leading footer copy and the end of the data area (0x%llx)",
				(unsigned long long)s->dynhdr_off, (unsigned long long)s->data_end);
	ret = vhdx_io_pread(l->io, buf, sizeof buf, s->dynhdr_off, VHDX_TAG_DYNHDR);
	if (ret < 0)
		return ret;
	ret = vhdx_vhd_dynhdr_decode(buf, sizeof buf, salvage ? VHDX_VHD_DECODE_SALVAGE : 0, &s->dyn);
	if (ret == 0)
		ret = vhdx_vhd_dynhdr_check_size(&s->dyn, f->current_size);
	if (ret < 0)
		return vhdx_err_prefix(ret, "dynamic header at 0x%llx", (unsigned long long)s->dynhdr_off);
	s->has_dynhdr = true;
	s->bitmap_size = vhdx_vhd_bitmap_size(s->dyn.block_size);
	s->blocks_needed = vhdx_div_round_up(f->current_size, s->dyn.block_size);

	ret = vhdx_vhd_parent_name(&s->dyn, &s->parent_name);
	if (ret < 0) {
		if (ret == -ENOMEM || differencing)
			return vhdx_err_prefix(ret, "dynamic header at 0x%llx", (unsigned long long)s->dynhdr_off);
		s->parent_name = NULL; /* a dynamic disk does not use it */
	}
	ret = read_locators(l, s, differencing);
	if (ret < 0)
		return ret;
	ret = load_bat(l, s, differencing);
	if (ret < 0)
		return ret;
	if (differencing) {
		pthread_mutex_init(&s->bitmap_mutex, NULL);
		s->mutex_ready = true;
		s->bitmaps = vhdx_calloc(s->blocks_needed ? s->blocks_needed : 1, sizeof *s->bitmaps);
		if (!s->bitmaps)
			return vhdx_err(ENOMEM, "out of memory");
	}
	return 0;
}

/* RET; a checksum mismatch that salvage would read through says how to ask for it. */
static int salvage_hint(int ret, bool salvage)
{
	if (salvage || ret != -EBADMSG || !strstr(vhdx_errmsg(), "checksum mismatch"))
		return ret;
	{
		char *m = vhdx_err_dup();
		ret = vhdx_err(EBADMSG, "%s (to read it anyway, open it with salvage: vhdx --salvage, vhdxfs -o salvage)",
			       m ? m : "checksum mismatch");
		free(m);
	}
	return ret;
}

static int vhd_open(struct vhdx_layer *l, unsigned flags)
{
	struct vhdx_vhd_state *s = calloc(1, sizeof *s);
	bool salvage = flags & VHDX_LAYER_SALVAGE;
	const struct vhdx_vhd_footer *f;
	int ret;

	if (!s)
		return vhdx_err(ENOMEM, "out of memory");
	l->priv = s;
	l->format = VHDX_FORMAT_VHD;
	ret = vhdx_io_get_size(l->io, &s->file_size);
	if (ret < 0)
		return ret;
	ret = read_footers(l, s, salvage);
	if (ret < 0)
		return salvage_hint(ret, salvage);
	f = s->footer;

	switch (f->disk_type) {
	case VHD_TYPE_FIXED:
		if (f->current_size > s->data_end)
			return vhdx_err(EBADMSG, "fixed disk: current size %llu in the footer at 0x%llx needs %llu bytes of data, but only %llu precede the footer",
					(unsigned long long)f->current_size,
					(unsigned long long)s->copies[s->used].offset,
					(unsigned long long)f->current_size, (unsigned long long)s->data_end);
		l->type = VHDX_TYPE_FIXED;
		break;
	case VHD_TYPE_DYNAMIC:
	case VHD_TYPE_DIFFERENCING:
		ret = open_dynamic(l, s, salvage);
		if (ret < 0)
			return salvage_hint(ret, salvage);
		l->type = f->disk_type == VHD_TYPE_DYNAMIC ? VHDX_TYPE_DYNAMIC : VHDX_TYPE_DIFFERENCING;
		l->block_size = s->dyn.block_size;
		break;
	default: /* refused by the footer decoder */
		return vhdx_err(ENOTSUP, "footer: disk type %u is not supported", f->disk_type);
	}
	l->virtual_size = f->current_size;
	l->logical_sector_size = VHD_SECTOR;
	l->physical_sector_size = VHD_SECTOR;
	vhdx_vhd_uuid_to_guid(f->unique_id, l->disk_id);
	memcpy(l->identity, l->disk_id, 16);
	if (l->type == VHDX_TYPE_DIFFERENCING) {
		l->has_parent = true;
		ret = fill_parent(l, s);
		if (ret < 0)
			return ret;
	}
	if (flags & VHDX_LAYER_WRITABLE)
		return vhdx_vhd_write_open(l, s);
	return 0;
}

int vhdx_vhd_footer_move(struct vhdx_io *io, const uint8_t *footer, uint64_t end)
{
	int ret = vhdx_io_pwrite(io, footer, VHD_FOOTER_SIZE, end, VHDX_TAG_FOOTER);

	if (ret == 0)
		ret = vhdx_io_flush(io);
	if (ret == 0)
		ret = vhdx_io_set_size(io, end + VHD_FOOTER_SIZE);
	if (ret == 0)
		ret = vhdx_io_flush(io);
	return ret;
}

int vhdx_vhd_bitmap_get(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint64_t blk, uint8_t **out)
{
	uint8_t *bm = __atomic_load_n(&s->bitmaps[blk], __ATOMIC_ACQUIRE);
	int ret = 0;

	if (bm) {
		*out = bm;
		return 0;
	}
	pthread_mutex_lock(&s->bitmap_mutex);
	bm = s->bitmaps[blk];
	if (!bm) {
		bm = malloc(s->bitmap_size);
		if (!bm) {
			ret = vhdx_err(ENOMEM, "out of memory");
		} else {
			ret = vhdx_io_pread(l->io, bm, s->bitmap_size, vhdx_vhd_block_foff(s->bat[blk]), VHDX_TAG_BITMAP);
			if (ret < 0) {
				free(bm);
				bm = NULL;
			} else {
				__atomic_store_n(&s->bitmaps[blk], bm, __ATOMIC_RELEASE);
			}
		}
	}
	pthread_mutex_unlock(&s->bitmap_mutex);
	*out = bm;
	return ret;
}

static int vhd_map_locked(struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, struct vhdx_layer_extent *ext);

static int vhd_map(struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, struct vhdx_layer_extent *ext)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	int ret;

	/* only a writable layer's BAT and bits change after open */
	if (!s->lock_ready)
		return vhd_map_locked(l, voff, maxlen, ext);
	pthread_rwlock_rdlock(&s->lock);
	ret = vhd_map_locked(l, voff, maxlen, ext);
	pthread_rwlock_unlock(&s->lock);
	return ret;
}

/* vhd_map() with s->lock held for reading when the layer is writable. */
static int vhd_map_locked(struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, struct vhdx_layer_extent *ext)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	uint64_t bs, blk, in_blk, len, base, sector, end_sector, run;
	uint8_t *bm;
	bool present;
	int ret;

	if (voff >= l->virtual_size || maxlen == 0)
		return vhdx_err(EINVAL, "VHD map: offset %llu (+%llu) is outside the disk (%llu bytes)",
				(unsigned long long)voff, (unsigned long long)maxlen,
				(unsigned long long)l->virtual_size);
	maxlen = VHDX_MIN(maxlen, l->virtual_size - voff);
	if (l->type == VHDX_TYPE_FIXED) {
		ext->kind = VHDX_LEXT_DATA;
		ext->foff = voff;
		ext->len = maxlen;
		return 0;
	}
	bs = s->dyn.block_size;
	blk = voff / bs;
	in_blk = voff % bs;
	len = VHDX_MIN(maxlen, bs - in_blk);
	if (s->bat[blk] == VHD_BAT_UNUSED) {
		/* one extent over the whole run of unallocated blocks */
		while (len < maxlen && blk + 1 < s->blocks_needed && s->bat[blk + 1] == VHD_BAT_UNUSED) {
			blk++;
			len = VHDX_MIN(maxlen, len + bs);
		}
		ext->kind = l->type == VHDX_TYPE_DIFFERENCING ? VHDX_LEXT_PARENT : VHDX_LEXT_ZERO;
		ext->len = len;
		return 0;
	}
	base = vhdx_vhd_block_foff(s->bat[blk]) + s->bitmap_size;
	ext->foff = base + in_blk;
	if (l->type == VHDX_TYPE_DYNAMIC) {
		ext->kind = VHDX_LEXT_DATA;
		ext->len = len;
		return 0;
	}
	ret = vhdx_vhd_bitmap_get(l, s, blk, &bm);
	if (ret < 0)
		return vhdx_err_prefix(ret, "sector bitmap of block %llu", (unsigned long long)blk);
	sector = in_blk / VHD_SECTOR;
	end_sector = vhdx_div_round_up(in_blk + len, VHD_SECTOR);
	run = vhdx_vhd_bitmap_run(bm, sector, end_sector, &present);
	ext->len = VHDX_MIN((sector + run) * VHD_SECTOR - in_blk, len);
	ext->kind = present ? VHDX_LEXT_DATA : VHDX_LEXT_PARENT;
	return 0;
}

static int vhd_close(struct vhdx_layer *l)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	int ret = 0;

	if (s && s->writer)
		ret = vhdx_vhd_write_close(l, s); /* the final flush */
	state_free(s);
	l->priv = NULL;
	return ret;
}

const struct vhdx_format_ops vhdx_format_vhd = {
	.name = "vhd",
	.id = VHDX_FORMAT_VHD,
	.probe = vhd_probe,
	.open = vhd_open,
	.map = vhd_map,
	.pwrite = vhdx_vhd_write,
	.flush = vhdx_vhd_write_flush,
	.discard = NULL, /* image.c writes zeros: over unallocated dynamic blocks they store nothing */
	.close = vhd_close,
	.check = &vhdx_checker_vhd,
	.compact = vhdx_compact_vhd,
	.resize = vhdx_resize_vhd,
	.reparent = vhdx_vhd_reparent,
	.create_check = vhdx_create_vhd_check,
	.create = vhdx_create_vhd,
};
