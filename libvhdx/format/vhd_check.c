/*
 * vhd_check.c - structure checks and repairs of one legacy VHD file
 * (FORMAT.md 2.2-2.6: footer and its copy at offset 0, dynamic header, BAT,
 * blocks, parent locators), the VHD side of `vhdx check`.
 *
 * Repairs (each crash-safe on its own; a crash between steps leaves a file
 * that the next `check --repair` continues):
 *  1. a damaged or missing footer copy is rewritten from the good one (the
 *     good copy is not touched, so a torn write changes nothing);
 *  2. a dynamic header whose only fault is its checksum is rewritten with
 *     the checksum fixed (one 1 KiB write; a torn write leaves a bad
 *     checksum that the next repair fixes the same way);
 *  3. BAT entries that cannot be right (blocks outside the data area, on
 *     the footer copy, the dynamic header, the BAT or locator data, or
 *     overlapping another block) are set to "not allocated" in place, one
 *     512-byte BAT sector per write, flushed; their ranges are reported lost;
 *  4. unreferenced space before the trailing footer: the footer is written
 *     right after the last block and flushed, then the file is truncated
 *     after it (a crash in between leaves a file whose last 512 bytes are
 *     still the old, valid footer).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "codec/vhd_codec.h"
#include "format/check.h"
#include "format/vhd_format.h"
#include "libvhdx.h"
#include "base/base.h"

/* The BAT is read in pieces of this many bytes (a multiple of 512). */
#define VHD_CHECK_BAT_PIECE (64u * 1024)
/* Entries past the disk's end looked at: 4 Mi covers the table of a
 * 2040 GiB disk with 512 KiB blocks (16 MiB of reads at most) */
#define VHD_CHECK_TAIL_MAX (4ull << 20)
/* Allocated entries past the disk's end reported one by one; then a count */
#define VHD_CHECK_TAIL_REPORTS 8u

#define BAD_PLACE 0x1u
#define BAD_OVERLAP 0x2u

struct vh {
	uint8_t traw[VHD_FOOTER_SIZE], lraw[VHD_FOOTER_SIZE];
	bool t_present, t_ok, l_present, l_ok;
	uint64_t t_off;
	struct vhdx_vhd_footer tf, lf;
	const struct vhdx_vhd_footer *f; /* the footer in use, or NULL */
	bool dynamic;
	bool fix_footer;
	uint64_t data_end;
	bool dh_ok, dh_sum_only;
	uint8_t dhraw[VHD_DYNHDR_SIZE];
	struct vhdx_vhd_dynhdr dh;
	uint32_t bitmap_size;
	uint64_t bat_bytes, blocks_needed;
	uint32_t *bat;
	uint8_t *bad;
	uint64_t n_bad;
	uint64_t used_end;
	bool layout_known;
};

static void vh_free(void *state)
{
	struct vh *v = state;

	free(v->bat);
	free(v->bad);
	memset(v, 0, sizeof *v);
}

static void use_end(struct vh *v, uint64_t off, uint64_t len)
{
	uint64_t end;
	if (!vhdx_add_ovf(off, len, &end) && end > v->used_end)
		v->used_end = end;
}

/* reads one footer copy at OFF; reports its problems as STRUCTURE */
static int read_footer(struct vhdx_check_ctx *c, uint64_t off, const char *structure, uint8_t *raw, bool *present,
		       bool *ok, struct vhdx_vhd_footer *f)
{
	int ret = vhdx_io_pread(c->io, raw, VHD_FOOTER_SIZE, off, VHDX_TAG_FOOTER);

	*present = *ok = false;
	if (ret < 0)
		return ret;
	if (memcmp(raw, VHD_FOOTER_COOKIE, 8)) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, structure, off, "no \"conectix\" cookie");
		return 0;
	}
	*present = true;
	ret = vhdx_vhd_footer_decode(raw, VHD_FOOTER_SIZE, VHDX_VHD_DECODE_SALVAGE, f);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, structure, off, "%s", vhdx_errmsg());
		return 0;
	}
	if (!f->checksum_valid) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, structure, off,
				  "checksum 0x%08x does not match the computed 0x%08x", f->checksum, f->checksum_computed);
		return 0;
	}
	if (f->reserved_nonzero)
		vhdx_check_report(c, VHDX_CHECK_WARNING, structure, off + 85, "reserved bytes 85..511 are not zero");
	*ok = true;
	return 0;
}

static int scan_footers(struct vhdx_check_ctx *c, struct vh *v)
{
	int ret;

	if (c->file_size < VHD_FOOTER_SIZE) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "footer", 0, "the file is %llu bytes, too small for a footer",
				  (unsigned long long)c->file_size);
		return 0;
	}
	v->t_off = c->file_size - VHD_FOOTER_SIZE;
	ret = read_footer(c, v->t_off, "footer", v->traw, &v->t_present, &v->t_ok, &v->tf);
	if (ret < 0)
		return ret;
	if (!v->t_present && c->file_size % VHD_FOOTER_SIZE == VHD_FOOTER_OLD_SIZE) {
		/* tolerated old 511-byte form: nothing more to say about it than its absence at -512 */
	}
	v->data_end = v->t_present ? v->t_off : c->file_size;
	v->dynamic = (v->t_ok && v->tf.disk_type != VHD_TYPE_FIXED) || !v->t_ok;
	if (v->dynamic && v->t_off != 0) {
		uint8_t probe[8];
		ret = vhdx_io_pread(c->io, probe, 8, 0, VHDX_TAG_FOOTER);
		if (ret < 0)
			return ret;
		if (v->t_ok || !memcmp(probe, VHD_FOOTER_COOKIE, 8)) {
			ret = read_footer(c, 0, "footer copy", v->lraw, &v->l_present, &v->l_ok, &v->lf);
			if (ret < 0)
				return ret;
			if (v->l_ok && v->lf.disk_type == VHD_TYPE_FIXED) {
				v->l_ok = false;
				vhdx_check_report(c, VHDX_CHECK_ERROR, "footer copy", 0, "the copy at offset 0 says fixed disk");
			}
		}
	}
	if (v->t_ok && v->l_ok && memcmp(v->traw, v->lraw, VHD_FOOTER_SIZE))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "footer copy", 0,
				  "the footer copy at offset 0 differs from the footer at the end of the file");
	v->f = v->t_ok ? &v->tf : v->l_ok ? &v->lf : NULL;
	if (!v->f) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "footer", v->t_off,
				  "no valid footer (neither at the end of the file nor at offset 0): nothing else can be checked");
		return 0;
	}
	v->dynamic = v->f->disk_type != VHD_TYPE_FIXED;
	if (v->dynamic)
		v->fix_footer = !v->t_ok || !v->l_ok || memcmp(v->traw, v->lraw, VHD_FOOTER_SIZE);
	if (!v->t_ok && v->t_present)
		v->data_end = v->t_off;
	return 0;
}

static int scan_fixed(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t want = v->f->current_size + VHD_FOOTER_SIZE;

	if (c->file_size < want)
		vhdx_check_report(c, VHDX_CHECK_ERROR, "file", c->file_size,
				  "the fixed disk of %llu bytes needs a file of %llu bytes, the file has %llu",
				  (unsigned long long)v->f->current_size, (unsigned long long)want,
				  (unsigned long long)c->file_size);
	else if (c->file_size > want && v->t_ok)
		/* bytes between the data and the footer: not referenced by anything */
		vhdx_check_report(c, VHDX_CHECK_WARNING, "file", v->f->current_size,
				  "leaked space: %llu bytes between the end of the disk data (0x%llx) and the footer",
				  (unsigned long long)(c->file_size - want), (unsigned long long)v->f->current_size);
	v->used_end = v->f->current_size;
	v->layout_known = v->t_ok;
	return 0;
}

/*
 * The entries past the disk's last block: never used for data, but one that
 * is allocated is not what a clean writer leaves (a warning; its space is
 * not counted as used).  Read in pieces of VHD_CHECK_BAT_PIECE bytes into
 * RAW, at most VHD_CHECK_TAIL_MAX entries (a hostile Max Table Entries may
 * declare 4 G of them); the rest is reported as not examined.  Only the
 * first VHD_CHECK_TAIL_REPORTS allocated entries are reported one by one.
 */
static int tail_entries(struct vhdx_check_ctx *c, struct vh *v, uint8_t *raw)
{
	uint64_t max = v->dh.max_table_entries, end = VHDX_MIN(max, v->blocks_needed + VHD_CHECK_TAIL_MAX);
	uint64_t n_alloc = 0, first_alloc = 0;
	int ret;

	for (uint64_t first = v->blocks_needed; first < end; first += VHD_CHECK_BAT_PIECE / 4) {
		uint64_t cnt = VHDX_MIN(end - first, (uint64_t)VHD_CHECK_BAT_PIECE / 4);
		ret = vhdx_io_pread(c->io, raw, 4 * cnt, v->dh.table_offset + 4 * first, VHDX_TAG_BAT);
		if (ret < 0)
			return ret;
		for (uint64_t k = 0; k < cnt; k++) {
			uint32_t e = vhdx_vhd_bat_get(raw, k);
			uint64_t i = first + k;
			if (e == VHD_BAT_UNUSED)
				continue;
			if (n_alloc++ < VHD_CHECK_TAIL_REPORTS)
				vhdx_check_report(c, VHDX_CHECK_WARNING, "BAT entry", v->dh.table_offset + 4 * i,
						  "entry %llu is past the disk's last block (%llu blocks) but allocated (sector 0x%x)",
						  (unsigned long long)i, (unsigned long long)v->blocks_needed, e);
			else if (n_alloc == VHD_CHECK_TAIL_REPORTS + 1)
				first_alloc = i;
		}
	}
	if (n_alloc > VHD_CHECK_TAIL_REPORTS)
		vhdx_check_report(c, VHDX_CHECK_WARNING, "BAT entry", v->dh.table_offset + 4 * first_alloc,
				  "%llu more entries from entry %llu on are past the disk's last block but allocated",
				  (unsigned long long)(n_alloc - VHD_CHECK_TAIL_REPORTS), (unsigned long long)first_alloc);
	if (end < max)
		vhdx_check_report(c, VHDX_CHECK_WARNING, "BAT", v->dh.table_offset + 4 * end,
				  "max table entries %llu is far more than the disk's %llu blocks: entries %llu..%llu (past the disk's end, never used for data) were not examined",
				  (unsigned long long)max, (unsigned long long)v->blocks_needed, (unsigned long long)end,
				  (unsigned long long)(max - 1));
	return 0;
}

/* Bytes of unmarked sectors read at a time by unmarked_sector(). */
#define VHD_CHECK_DATA_PIECE (1u << 20)

/*
 * Finds the first sector of block I whose bit in BM is clear but whose
 * data is not zeros: *AT receives its index, or UINT64_MAX.  BUF holds
 * VHD_CHECK_DATA_PIECE bytes.
 */
static int unmarked_sector(struct vhdx_check_ctx *c, struct vh *v, uint64_t i, const uint8_t *bm, uint8_t *buf,
			   uint64_t *at)
{
	uint64_t foff = vhdx_vhd_block_foff(v->bat[i]) + v->bitmap_size;
	uint64_t nsect = VHDX_MIN((uint64_t)v->dh.block_size, v->f->current_size - i * v->dh.block_size) / VHD_SECTOR;
	int ret;

	*at = UINT64_MAX;
	for (uint64_t sct = 0; sct < nsect;) {
		bool set;
		uint64_t run = vhdx_vhd_bitmap_run(bm, sct, nsect, &set);
		for (uint64_t k = sct; !set && k < sct + run;) {
			uint64_t cnt = VHDX_MIN(sct + run - k, (uint64_t)VHD_CHECK_DATA_PIECE / VHD_SECTOR);
			ret = vhdx_io_pread(c->io, buf, cnt * VHD_SECTOR, foff + k * VHD_SECTOR, VHDX_TAG_PAYLOAD);
			if (ret < 0)
				return ret;
			for (uint64_t j = 0; j < cnt; j++)
				if (!vhdx_buf_is_zero(buf + j * VHD_SECTOR, VHD_SECTOR)) {
					*at = k + j;
					return 0;
				}
			k += cnt;
		}
		sct += run;
	}
	return 0;
}

/*
 * A dynamic disk's reader shows an allocated block's data whatever its
 * sector bitmap says, and the writers we know either set the bits over the
 * data they write or leave zeros under clear bits (Disk2VHD): nonzero bytes
 * under a clear bit are what a failed write left (bytes in no sector anyone
 * acknowledged).  Reads the bitmap of every good block and the data of its
 * unmarked sectors; the first VHD_CHECK_TAIL_REPORTS such blocks are
 * reported one by one, the rest in one line.
 */
static int unmarked_data(struct vhdx_check_ctx *c, struct vh *v)
{
	uint8_t *bm = malloc(v->bitmap_size), *buf = malloc(VHD_CHECK_DATA_PIECE);
	uint64_t n_found = 0, first_more = 0;
	int ret = 0;

	if (!bm || !buf) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < v->blocks_needed; i++) {
		uint64_t at, foff = vhdx_vhd_block_foff(v->bat[i]);
		if (v->bad[i] || v->bat[i] == VHD_BAT_UNUSED)
			continue;
		ret = vhdx_io_pread(c->io, bm, v->bitmap_size, foff, VHDX_TAG_BITMAP);
		if (ret == 0)
			ret = unmarked_sector(c, v, i, bm, buf, &at);
		if (ret < 0)
			goto out;
		if (at == UINT64_MAX)
			continue;
		if (n_found++ < VHD_CHECK_TAIL_REPORTS)
			vhdx_check_report(c, VHDX_CHECK_ERROR, "block", foff + v->bitmap_size + at * VHD_SECTOR,
					  "block %llu: sector %llu (virtual offset 0x%llx) holds nonzero bytes but its sector-bitmap bit is clear (left by a failed write?); readers of a dynamic disk show these bytes",
					  (unsigned long long)i, (unsigned long long)at,
					  (unsigned long long)(i * v->dh.block_size + at * VHD_SECTOR));
		else if (n_found == VHD_CHECK_TAIL_REPORTS + 1)
			first_more = i;
	}
	if (n_found > VHD_CHECK_TAIL_REPORTS)
		vhdx_check_report(c, VHDX_CHECK_ERROR, "block", vhdx_vhd_block_foff(v->bat[first_more]),
				  "%llu more blocks from block %llu on hold nonzero bytes under clear sector-bitmap bits",
				  (unsigned long long)(n_found - VHD_CHECK_TAIL_REPORTS), (unsigned long long)first_more);
out:
	free(bm);
	free(buf);
	return ret;
}

/* The dynamic header (sets v->dh_ok when the scan can go on from it). */
static int scan_dynhdr(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t dh_off = v->f->data_offset;
	int ret;

	if (v->f->current_size > VHD_MAX_READ_DYNAMIC_SIZE) {
		/* nothing reads it, and its BAT would be sized by the claim */
		vhdx_check_report(c, VHDX_CHECK_ERROR, "footer", v->f == &v->tf ? v->t_off : 0,
				  "current size %llu is more than the %llu bytes (2 TiB) a dynamic or differencing VHD can hold",
				  (unsigned long long)v->f->current_size, (unsigned long long)VHD_MAX_READ_DYNAMIC_SIZE);
		return 0;
	}
	if (dh_off < VHD_FOOTER_SIZE || !vhdx_range_ok(dh_off, VHD_DYNHDR_SIZE, v->data_end)) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "dynamic header", dh_off,
				  "the dynamic header offset 0x%llx is outside the data area (0x200..0x%llx)",
				  (unsigned long long)dh_off, (unsigned long long)v->data_end);
		return 0;
	}
	ret = vhdx_io_pread(c->io, v->dhraw, VHD_DYNHDR_SIZE, dh_off, VHDX_TAG_DYNHDR);
	if (ret < 0)
		return ret;
	use_end(v, dh_off, VHD_DYNHDR_SIZE);
	ret = vhdx_vhd_dynhdr_decode(v->dhraw, VHD_DYNHDR_SIZE, VHDX_VHD_DECODE_SALVAGE, &v->dh);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "dynamic header", dh_off, "%s", vhdx_errmsg());
		return 0;
	}
	if (!v->dh.checksum_valid) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "dynamic header", dh_off,
				  "checksum 0x%08x does not match the computed 0x%08x", v->dh.checksum,
				  v->dh.checksum_computed);
		v->dh_sum_only = true;
	}
	if (vhdx_vhd_dynhdr_check_size(&v->dh, v->f->current_size) < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "dynamic header", dh_off + 28, "%s", vhdx_errmsg());
		return 0;
	}
	v->dh_ok = true;
	return 0;
}

/* Where the BAT lies; false when it is outside the data area (the scan stops). */
static bool scan_bat_place(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t dh_off = v->f->data_offset;

	v->bitmap_size = vhdx_vhd_bitmap_size(v->dh.block_size);
	v->blocks_needed = vhdx_div_round_up(v->f->current_size, v->dh.block_size);
	v->bat_bytes = vhdx_div_round_up((uint64_t)v->dh.max_table_entries * 4, VHD_SECTOR) * VHD_SECTOR;
	if (!vhdx_range_ok(v->dh.table_offset, (uint64_t)v->dh.max_table_entries * 4, v->data_end)) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT", v->dh.table_offset,
				  "the BAT (%u entries at 0x%llx) lies outside the data area (ends at 0x%llx)",
				  v->dh.max_table_entries, (unsigned long long)v->dh.table_offset,
				  (unsigned long long)v->data_end);
		return false;
	}
	if (vhdx_ranges_overlap(v->dh.table_offset, v->bat_bytes, dh_off, VHD_DYNHDR_SIZE) ||
	    v->dh.table_offset < VHD_FOOTER_SIZE)
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT", v->dh.table_offset,
				  "the BAT overlaps the dynamic header or the footer copy");
	use_end(v, v->dh.table_offset, v->bat_bytes);
	return true;
}

/* Parent locators: bounds of every entry; a differencing disk needs a usable one. */
static void scan_locators(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t dh_off = v->f->data_offset;

	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		const struct vhdx_vhd_locator *l = &v->dh.locators[i];
		uint64_t loff = dh_off + VHD_DYNHDR_LOCATOR_OFF + VHD_LOCATOR_ENTRY_SIZE * i;
		if (l->code == VHD_PLAT_NONE)
			continue;
		if (vhdx_vhd_locator_check(&v->dh, i, v->data_end) < 0) {
			vhdx_check_report(c, v->f->disk_type == VHD_TYPE_DIFFERENCING ? VHDX_CHECK_ERROR : VHDX_CHECK_WARNING,
					  "parent locator", loff, "%s", vhdx_errmsg());
			continue;
		}
		use_end(v, l->data_offset, l->data_length);
	}
	if (v->f->disk_type == VHD_TYPE_DIFFERENCING) {
		bool any = false;
		for (unsigned i = 0; i < VHD_N_LOCATORS; i++)
			any |= v->dh.locators[i].code == VHD_PLAT_W2RU || v->dh.locators[i].code == VHD_PLAT_W2KU;
		if (!any && !v->dh.parent_name[0] && !v->dh.parent_name[1])
			vhdx_check_report(c, VHDX_CHECK_ERROR, "parent locator", dh_off + VHD_DYNHDR_LOCATOR_OFF,
					  "a differencing disk without a W2ru/W2ku locator or a parent name");
		c->has_parent = true;
	}
}

/* The disk's BAT entries into v->bat, read in pieces through RAW (VHD_CHECK_BAT_PIECE bytes). */
static int read_bat(struct vhdx_check_ctx *c, struct vh *v, uint8_t *raw)
{
	for (uint64_t first = 0; first < v->blocks_needed; first += VHD_CHECK_BAT_PIECE / 4) {
		uint64_t cnt = VHDX_MIN(v->blocks_needed - first, (uint64_t)VHD_CHECK_BAT_PIECE / 4);
		int ret = vhdx_io_pread(c->io, raw, 4 * cnt, v->dh.table_offset + 4 * first, VHDX_TAG_BAT);
		if (ret < 0)
			return ret;
		for (uint64_t k = 0; k < cnt; k++)
			v->bat[first + k] = vhdx_vhd_bat_get(raw, k);
	}
	return 0;
}

/*
 * Every allocated entry's block must lie in the data area, off the footer
 * copy, the dynamic header, the BAT and the locator data (else BAD_PLACE).
 * The good ones go into ALLOCS as (file offset, entry << 1) pairs; returns how many.
 */
static uint64_t check_entries(struct vhdx_check_ctx *c, struct vh *v, uint64_t *allocs)
{
	uint64_t dh_off = v->f->data_offset, n = 0;

	for (uint64_t i = 0; i < v->blocks_needed; i++) {
		uint32_t e = v->bat[i];
		uint64_t foff = vhdx_vhd_block_foff(e), len = (uint64_t)v->bitmap_size + v->dh.block_size;
		uint64_t eoff = v->dh.table_offset + 4 * i;
		if (e == VHD_BAT_UNUSED)
			continue;
		if (!vhdx_range_ok(foff, len, v->data_end)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
					  "entry %llu: block at 0x%llx (+0x%llx) is past the end of the data area (0x%llx)",
					  (unsigned long long)i, (unsigned long long)foff, (unsigned long long)len,
					  (unsigned long long)v->data_end);
			v->bad[i] |= BAD_PLACE;
			continue;
		}
		if (foff < VHD_FOOTER_SIZE || vhdx_ranges_overlap(foff, len, dh_off, VHD_DYNHDR_SIZE) ||
		    vhdx_ranges_overlap(foff, len, v->dh.table_offset, v->bat_bytes)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
					  "entry %llu: block at 0x%llx overlaps the footer copy, the dynamic header or the BAT",
					  (unsigned long long)i, (unsigned long long)foff);
			v->bad[i] |= BAD_PLACE;
			continue;
		}
		for (unsigned k = 0; k < VHD_N_LOCATORS; k++) {
			const struct vhdx_vhd_locator *l = &v->dh.locators[k];
			if (l->code != VHD_PLAT_NONE && vhdx_ranges_overlap(foff, len, l->data_offset, l->data_length)) {
				vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
						  "entry %llu: block at 0x%llx overlaps the data of parent locator %u",
						  (unsigned long long)i, (unsigned long long)foff, k);
				v->bad[i] |= BAD_PLACE;
				break;
			}
		}
		if (v->bad[i])
			continue;
		allocs[2 * n] = foff;
		allocs[2 * n + 1] = i << 1; /* vhdx_check_overlaps(): every block is as long */
		n++;
	}
	return n;
}

struct overlap_arg {
	struct vhdx_check_ctx *c;
	struct vh *v;
};

/* vhdx_check_overlaps() found the block of entry VICTIM over that of OTHER. */
static void overlap_found(void *arg, uint64_t victim, uint64_t other)
{
	struct overlap_arg *a = arg;
	struct vh *v = a->v;

	vhdx_check_report(a->c, VHDX_CHECK_ERROR, "BAT entry", v->dh.table_offset + 4 * victim,
			  "entry %llu: block at 0x%llx overlaps the block of entry %llu at 0x%llx",
			  (unsigned long long)victim, (unsigned long long)vhdx_vhd_block_foff(v->bat[victim]),
			  (unsigned long long)other, (unsigned long long)vhdx_vhd_block_foff(v->bat[other]));
	v->bad[victim] |= BAD_OVERLAP;
}

/* Counts the bad entries and extends the layout by the good blocks. */
static void scan_layout(struct vh *v)
{
	for (uint64_t i = 0; i < v->blocks_needed; i++) {
		if (v->bad[i]) {
			v->n_bad++;
			continue;
		}
		if (v->bat[i] != VHD_BAT_UNUSED)
			use_end(v, vhdx_vhd_block_foff(v->bat[i]), (uint64_t)v->bitmap_size + v->dh.block_size);
	}
}

/* Space before the trailing footer that nothing references. */
static void scan_leak(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t end = vhdx_div_round_up(v->used_end, VHD_SECTOR) * VHD_SECTOR;

	/* writers align the BAT and blocks (Windows: 4 KiB): only room for a whole block is a leak */
	if (v->data_end > end && v->data_end - end >= (uint64_t)v->bitmap_size + v->dh.block_size)
		vhdx_check_report(c, VHDX_CHECK_WARNING, "file", end,
				  "leaked space: %llu bytes between the last structure (ends at 0x%llx) and the footer at 0x%llx are not referenced",
				  (unsigned long long)(v->data_end - end), (unsigned long long)end,
				  (unsigned long long)v->data_end);
}

static int scan_dynamic(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t *allocs = NULL, n;
	uint8_t *raw = NULL;
	int ret;

	use_end(v, 0, VHD_FOOTER_SIZE);
	ret = scan_dynhdr(c, v);
	if (ret < 0 || !v->dh_ok || !scan_bat_place(c, v))
		return ret;
	scan_locators(c, v);

	/* the disk's entries are kept (blocks_needed <= max table entries,
	 * all inside the file: checked above); the rest of the table is
	 * looked at piece by piece (tail_entries()) */
	raw = malloc(VHD_CHECK_BAT_PIECE);
	v->bat = calloc(v->blocks_needed + 1, sizeof *v->bat);
	v->bad = calloc(v->blocks_needed + 1, 1);
	allocs = malloc(2 * sizeof *allocs * (v->blocks_needed + 1));
	if (!raw || !v->bat || !v->bad || !allocs) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	ret = read_bat(c, v, raw);
	if (ret < 0)
		goto out;
	n = check_entries(c, v, allocs);
	qsort(allocs, n, 2 * sizeof *allocs, vhdx_cmp_u64);
	{
		struct overlap_arg oa = { c, v };
		vhdx_check_overlaps(allocs, n, (uint64_t)v->bitmap_size + v->dh.block_size, 0, overlap_found, &oa);
	}
	ret = tail_entries(c, v, raw);
	if (ret < 0)
		goto out;
	scan_layout(v);
	if (v->f->disk_type == VHD_TYPE_DYNAMIC) {
		ret = unmarked_data(c, v);
		if (ret < 0)
			goto out;
	}
	v->layout_known = v->t_ok;
	if (v->layout_known)
		scan_leak(c, v);
	ret = 0;
out:
	free(raw);
	free(allocs);
	return ret;
}

static int scan(struct vhdx_check_ctx *c, void *state)
{
	struct vh *v = state;
	int ret = scan_footers(c, v);

	if (ret < 0 || !v->f)
		return ret;
	return v->dynamic ? scan_dynamic(c, v) : scan_fixed(c, v);
}

/* ---- repairs ---- */
static int repair_footer(struct vhdx_check_ctx *c, void *state)
{
	struct vh *v = state;
	int ret;

	if (v->t_ok) {
		/* the trailing footer is the one readers use: the copy at 0 follows it */
		ret = vhdx_io_pwrite(c->io, v->traw, VHD_FOOTER_SIZE, 0, VHDX_TAG_FOOTER);
		if (ret == 0)
			ret = vhdx_io_flush(c->io);
		if (ret < 0)
			return vhdx_err_prefix(ret, "rewriting the footer copy");
		vhdx_check_repaired(c, "footer copy", 0, "rewrote the footer copy at offset 0 from the footer at the end");
		return 0;
	}
	/* trailing footer damaged or missing: from the copy, where the damaged one was or appended */
	{
		uint64_t at = v->t_present ? v->t_off : vhdx_div_round_up(c->file_size, VHD_SECTOR) * VHD_SECTOR;
		ret = vhdx_io_pwrite(c->io, v->lraw, VHD_FOOTER_SIZE, at, VHDX_TAG_FOOTER);
		if (ret == 0)
			ret = vhdx_io_flush(c->io);
		if (ret < 0)
			return vhdx_err_prefix(ret, "rebuilding the footer");
		vhdx_check_repaired(c, "footer", at, "rebuilt the footer at 0x%llx from the copy at offset 0",
				    (unsigned long long)at);
	}
	return 0;
}

static int repair_dynhdr(struct vhdx_check_ctx *c, void *state)
{
	struct vh *v = state;
	uint8_t buf[VHD_DYNHDR_SIZE];
	uint32_t sum;
	int ret;

	/* the fields decoded; only the checksum was wrong: the same bytes with the right checksum */
	memcpy(buf, v->dhraw, sizeof buf);
	sum = vhdx_vhd_checksum(buf, sizeof buf, VHD_DYNHDR_CHECKSUM_OFF);
	buf[36] = (uint8_t)(sum >> 24), buf[37] = (uint8_t)(sum >> 16), buf[38] = (uint8_t)(sum >> 8), buf[39] = (uint8_t)sum;
	ret = vhdx_io_pwrite(c->io, buf, sizeof buf, v->f->data_offset, VHDX_TAG_DYNHDR);
	if (ret == 0)
		ret = vhdx_io_flush(c->io);
	if (ret < 0)
		return vhdx_err_prefix(ret, "rewriting the dynamic header");
	vhdx_check_repaired(c, "dynamic header", v->f->data_offset, "rewrote the dynamic header with checksum 0x%08x", sum);
	return 0;
}

static int repair_bat(struct vhdx_check_ctx *c, void *state)
{
	struct vh *v = state;
	uint8_t sec[VHD_SECTOR];
	/* only the disk's entries can be bad: the sectors holding them */
	uint64_t nsec = vhdx_div_round_up(4 * v->blocks_needed, VHD_SECTOR);
	int ret;

	for (uint64_t s = 0; s < nsec; s++) {
		uint64_t first = s * (VHD_SECTOR / 4), soff = v->dh.table_offset + s * VHD_SECTOR;
		bool any = false;
		for (uint64_t i = first; i < first + VHD_SECTOR / 4 && i < v->blocks_needed; i++)
			any |= v->bad[i] != 0;
		if (!any)
			continue;
		memset(sec, 0xff, sizeof sec);
		ret = vhdx_io_pread(c->io, sec, VHDX_MIN((uint64_t)VHD_SECTOR, (uint64_t)v->dh.max_table_entries * 4 - s * VHD_SECTOR),
				    soff, VHDX_TAG_BAT);
		if (ret < 0)
			return ret;
		for (uint64_t i = first; i < first + VHD_SECTOR / 4 && i < v->blocks_needed; i++) {
			uint64_t voff = i * v->dh.block_size, len;
			if (!v->bad[i])
				continue;
			vhdx_vhd_bat_put(sec, i - first, VHD_BAT_UNUSED);
			len = VHDX_MIN((uint64_t)v->dh.block_size, v->f->current_size - voff);
			vhdx_check_repaired(c, "BAT entry", v->dh.table_offset + 4 * i,
					    "entry %llu (was sector 0x%x) set to not allocated", (unsigned long long)i, v->bat[i]);
			vhdx_check_lost(c, voff, len, "BAT entry", v->dh.table_offset + 4 * i,
					"virtual bytes 0x%llx..0x%llx (block %llu) now read as %s: the data of its BAT entry cannot be trusted",
					(unsigned long long)voff, (unsigned long long)(voff + len), (unsigned long long)i,
					v->f->disk_type == VHD_TYPE_DIFFERENCING ? "the parent's data" : "zeros");
		}
		/* one sector per write: a torn write cannot mix two sectors' entries */
		ret = vhdx_io_pwrite(c->io, sec, VHDX_MIN((uint64_t)VHD_SECTOR, (uint64_t)v->dh.max_table_entries * 4 - s * VHD_SECTOR),
				     soff, VHDX_TAG_BAT);
		if (ret == 0)
			ret = vhdx_io_flush(c->io);
		if (ret < 0)
			return vhdx_err_prefix(ret, "clearing BAT entries");
	}
	return 0;
}

/* a dynamic disk: the footer follows the last block, the file ends after it */
static int repair_dynamic_tail(struct vhdx_check_ctx *c, struct vh *v)
{
	uint64_t end = vhdx_div_round_up(v->used_end, VHD_SECTOR) * VHD_SECTOR;
	int ret;

	if (!v->t_ok || end + VHD_FOOTER_SIZE >= c->file_size ||
	    c->file_size - VHD_FOOTER_SIZE - end < (uint64_t)v->bitmap_size + v->dh.block_size)
		return 0;
	ret = vhdx_vhd_footer_move(c->io, v->traw, end);
	if (ret < 0)
		return vhdx_err_prefix(ret, "freeing leaked space");
	vhdx_check_repaired(c, "file", end, "moved the footer to 0x%llx and truncated the file from 0x%llx to 0x%llx bytes",
			    (unsigned long long)end, (unsigned long long)c->file_size,
			    (unsigned long long)(end + VHD_FOOTER_SIZE));
	return 0;
}

/* unreferenced space before the trailing footer (step 4 at the top of this file) */
static int repair_tail(struct vhdx_check_ctx *c, void *state)
{
	struct vh *v = state;
	int ret = 0;

	if (v->dynamic) {
		ret = repair_dynamic_tail(c, v);
	} else if (c->file_size > v->f->current_size + VHD_FOOTER_SIZE) {
		ret = vhdx_vhd_footer_move(c->io, v->traw, v->f->current_size);
		if (ret == 0)
			vhdx_check_repaired(c, "file", v->f->current_size,
					    "moved the footer to 0x%llx and truncated the file after it",
					    (unsigned long long)v->f->current_size);
	}
	return ret;
}

/* ---- the repair steps, in the order of the top of this file (maint/check.c runs them) ---- */

static bool need_footer(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vh *v = state;
	(void)c;
	return v->f && v->dynamic && v->fix_footer && (v->t_ok || v->l_ok);
}

/* the fields decoded; only the checksum is wrong */
static bool need_dynhdr(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vh *v = state;
	(void)c;
	return v->f && v->dynamic && v->dh_sum_only && !v->dh.checksum_valid;
}

static bool need_bat(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vh *v = state;
	(void)c;
	return v->f && v->dynamic && v->bat && v->n_bad;
}

static bool need_tail(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vh *v = state;
	(void)c;
	return v->f && v->layout_known;
}

static const struct vhdx_check_step steps[] = {
	{ need_footer, repair_footer, true },
	{ need_dynhdr, repair_dynhdr, true },
	{ need_bat, repair_bat, true },
	{ need_tail, repair_tail, false },
	{ NULL, NULL, false },
};

/* A damaged copy at offset 0: the footer at the end (511 bytes from it in files of old writers) says VHD. */
static bool recognise(struct vhdx_io *io, uint64_t size)
{
	uint8_t buf[8];

	for (uint64_t back = 512; back >= 511; back--) {
		if (size >= back && vhdx_io_pread(io, buf, 8, size - back, VHDX_TAG_FOOTER) == 0 &&
		    !memcmp(buf, VHD_FOOTER_COOKIE, 8))
			return true;
	}
	return false;
}

const struct vhdx_checker vhdx_checker_vhd = {
	.signature = VHD_FOOTER_COOKIE,
	.recognise = recognise,
	.state_size = sizeof(struct vh),
	.scan = scan,
	.free = vh_free,
	.steps = steps,
};
