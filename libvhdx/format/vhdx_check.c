/*
 * vhdx_check.c - structure checks and repairs of one VHDX file (FORMAT.md
 * 1.10; MS-VHDX 2.2 headers and region tables, 2.3 log, 2.5 BAT, 2.6
 * metadata).  The scan reads raw bytes and decodes them with the codecs,
 * reporting every problem instead of stopping at the first one, as long as
 * the structures it needs to go on can be trusted.
 *
 * Repair order, and why (each step is crash-safe on its own, and a crash
 * between steps leaves a file that the next `check --repair` continues):
 *  1. a damaged, older or disagreeing header slot: the header update
 *     protocol (vhdx_header_update.c) writes the current header, with a new
 *     FileWriteGuid, over the other slot first, flushes, then over the
 *     first; the good header is never the one overwritten while it is the
 *     only good one;
 *  2. a dirty log: replayed (format/vhdx_log.c), flushed, then the LogGuid
 *     cleared through the header protocol, as a writable open does;
 *  3. a damaged or disagreeing region table copy: the good copy is written
 *     over it and flushed (the good copy stays untouched, so a torn write
 *     leaves the same situation as before);
 *  4. BAT entries that cannot be right (invalid state, reserved bits,
 *     outside the file, on the first megabyte, a region or the log, or
 *     overlapping another block): rewritten through the log
 *     (format/vhdx_journal.c), so a crash replays or forgets the change as
 *     a whole; the data of their virtual ranges is reported lost;
 *  5. space at the end of the file that nothing references: the file is
 *     truncated after everything has been flushed (a crash before or after
 *     the truncation leaves a valid file).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_locator.h"
#include "format/check.h"
#include "format/vhdx_format.h"
#include "format/vhdx_journal.h"
#include "format/vhdx_log.h"
#include "libvhdx.h"
#include "base/base.h"

static const uint64_t hdr_offs[2] = { VHDX_HEADER1_OFF, VHDX_HEADER2_OFF };
static const uint64_t rt_offs[2] = { VHDX_REGION1_OFF, VHDX_REGION2_OFF };
static const char *const hdr_names[2] = { "header 1", "header 2" };
static const char *const rt_names[2] = { "region table 1", "region table 2" };

/* Why a BAT entry must be cleared (bits) */
#define BAD_STATE 0x1u
#define BAD_RESERVED 0x2u
#define BAD_PLACE 0x4u   /* outside the file, first megabyte, a region or the log */
#define BAD_OVERLAP 0x8u
#define BAD_NO_BITMAP 0x10u /* PARTIALLY_PRESENT whose sector bitmap block is absent */
#define BAD_ABSENT_BITS 0x20u /* not present, but reserved or offset bits set: cleaned, nothing lost */

/* What one scan found. */
struct vx {
	uint8_t hdr_raw[2][VHDX_HEADER_SIZE];
	bool hdr_read[2], hdr_sum_ok[2], hdr_ok[2], hdr_reserved[2];
	struct vhdx_header hdr[2];
	int cur;                    /* current header, -1 when none */
	int alt;                    /* the current header is unusable but this one is fine: repair from it, else -1 */
	bool fileid_bad;
	bool hdr_fix;               /* the non-current slot needs rewriting */
	bool log_dirty, log_replayable;
	uint8_t *rt_raw[2];
	bool rt_ok[2];
	int rt_used;                /* -1 when none */
	bool rt_fix;
	struct vhdx_region_table *rt;
	bool have_bat, have_meta;
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	bool geo_ok;
	struct vhdx_geometry geo;
	uint64_t *bat;              /* geo.bat_entries, when read */
	uint8_t *bad;               /* per entry: BAD_* */
	uint64_t n_bad;
	uint64_t used_end;          /* end of everything referenced (before rounding) */
	bool layout_known;          /* used_end covers every structure */
};

static void vx_free(void *state)
{
	struct vx *v = state;

	free(v->rt_raw[0]);
	free(v->rt_raw[1]);
	free(v->rt);
	free(v->bat);
	free(v->bad);
	memset(v, 0, sizeof *v);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void use_end(struct vx *v, uint64_t off, uint64_t len)
{
	uint64_t end;
	if (!vhdx_add_ovf(off, len, &end) && end > v->used_end)
		v->used_end = end;
}

/* ---- file identifier and headers (2.2.1, 2.2.2) ---- */
static int scan_headers(struct vhdx_check_ctx *c, struct vx *v)
{
	uint8_t sig[8];
	int ret;

	if (c->file_size < VHDX_ALIGN)
		vhdx_check_report(c, VHDX_CHECK_ERROR, "file", 0,
				  "the file is %llu bytes, shorter than the 1 MiB of fixed structures",
				  (unsigned long long)c->file_size);
	if (c->file_size >= 8) {
		ret = vhdx_io_pread(c->io, sig, 8, 0, VHDX_TAG_FILEID);
		if (ret < 0)
			return ret;
		if (memcmp(sig, VHDX_FILEID_SIG, 8)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "file identifier", 0, "signature is not \"vhdxfile\"");
			v->fileid_bad = true;
		}
	}
	use_end(v, 0, VHDX_ALIGN);
	v->cur = -1;
	v->alt = -1;
	for (int i = 0; i < 2; i++) {
		uint8_t *b = v->hdr_raw[i];
		if (!vhdx_range_ok(hdr_offs[i], VHDX_HEADER_SIZE, c->file_size)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, hdr_names[i], hdr_offs[i], "missing: the file ends at 0x%llx",
					  (unsigned long long)c->file_size);
			continue;
		}
		ret = vhdx_io_pread(c->io, b, VHDX_HEADER_SIZE, hdr_offs[i], VHDX_TAG_HEADER);
		if (ret < 0)
			return ret;
		v->hdr_read[i] = true;
		v->hdr_sum_ok[i] = vhdx_get_le32(b) == VHDX_HEADER_SIG &&
				   vhdx_get_le32(b + 4) == vhdx_crc32c_struct(b, VHDX_HEADER_SIZE);
		ret = vhdx_header_decode(b, VHDX_HEADER_SIZE, &v->hdr[i]);
		if (ret == -ENOMEM)
			return ret;
		v->hdr_ok[i] = ret == 0;
		if (ret < 0)
			vhdx_check_report(c, VHDX_CHECK_ERROR, hdr_names[i], hdr_offs[i], "%s", vhdx_errmsg());
		v->hdr_reserved[i] = v->hdr_sum_ok[i] && !all_zero(b + 80, VHDX_HEADER_SIZE - 80);
		if (v->hdr_reserved[i])
			vhdx_check_report(c, VHDX_CHECK_ERROR, hdr_names[i], hdr_offs[i] + 80,
					  "reserved bytes 80..4095 are not zero");
	}
	if (v->hdr_sum_ok[0] && v->hdr_sum_ok[1])
		v->cur = v->hdr[1].seq > v->hdr[0].seq ? 1 : 0;
	else if (v->hdr_sum_ok[0] || v->hdr_sum_ok[1])
		v->cur = v->hdr_sum_ok[0] ? 0 : 1;
	if (v->cur < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "headers", hdr_offs[0],
				  "neither header has a valid signature and checksum: nothing else can be checked");
		return 0;
	}
	if (v->hdr_sum_ok[0] && v->hdr_sum_ok[1] && v->hdr[0].seq == v->hdr[1].seq &&
	    memcmp(v->hdr_raw[0], v->hdr_raw[1], VHDX_HEADER_SIZE))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "headers", hdr_offs[0],
				  "both headers have sequence number %llu but different contents (header 1 is used)",
				  (unsigned long long)v->hdr[0].seq);
	if (!v->hdr_ok[v->cur]) {
		if (v->hdr_ok[1 - v->cur])
			v->alt = 1 - v->cur;
		vhdx_check_report(c, VHDX_CHECK_ERROR, "headers", hdr_offs[v->cur],
				  "the current header (%d, sequence number %llu) is not usable: nothing else can be checked",
				  v->cur + 1, (unsigned long long)v->hdr[v->cur].seq);
		v->cur = -1;
		return 0;
	}
	{
		int o = 1 - v->cur;
		v->hdr_fix = !v->hdr_ok[o] || v->hdr_reserved[o] || v->hdr_reserved[v->cur] ||
			     (v->hdr[o].seq == v->hdr[v->cur].seq &&
			      memcmp(v->hdr_raw[0], v->hdr_raw[1], VHDX_HEADER_SIZE));
	}
	return 0;
}

/* ---- log (2.3): LogGuid zero, or an acceptable sequence that fits the file ---- */
static int scan_log(struct vhdx_check_ctx *c, struct vx *v, struct vhdx_log_sequence *seq)
{
	const struct vhdx_header *h = &v->hdr[v->cur];
	uint64_t log_foff = h->log_offset;
	int ret;

	if (h->log_length) {
		if (!vhdx_range_ok(h->log_offset, h->log_length, c->file_size)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "log", log_foff,
					  "the log (0x%x bytes at 0x%llx) lies past the end of the file (0x%llx bytes)",
					  h->log_length, (unsigned long long)log_foff, (unsigned long long)c->file_size);
			return 0;
		}
		use_end(v, h->log_offset, h->log_length);
	}
	if (all_zero(h->log_guid, 16))
		return 0;
	v->log_dirty = true;
	if (!h->log_length) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "log", log_foff, "the LogGuid is set but the log is empty");
		return 0;
	}
	ret = vhdx_log_find(c->io, h, seq);
	if (ret < 0 && ret != -EBADMSG)
		return ret; /* I/O (any errno) or memory: not a finding about the log */
	if (ret < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "log", log_foff, "%s", vhdx_errmsg());
		return 0;
	}
	if (seq->n == 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "log", log_foff,
				  "dirty log (LogGuid set) without an acceptable sequence: %s",
				  seq->diag ? seq->diag : "no valid entry");
		return 0;
	}
	{
		const struct vhdx_log_entry *head = &seq->entries[seq->n - 1].e;
		if (head->flushed_file_offset > c->file_size) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "log", log_foff + seq->entries[seq->n - 1].log_off,
					  "the log's head entry says the file was 0x%llx bytes when it was written, now it is 0x%llx: the file was truncated",
					  (unsigned long long)head->flushed_file_offset,
					  (unsigned long long)c->file_size);
			return 0;
		}
		v->log_replayable = true;
		vhdx_check_report(c, VHDX_CHECK_WARNING, "log", log_foff,
				  "dirty log (LogGuid set): %zu entries (sequence %llu..%llu) must be replayed; the rest is checked as replayed in memory",
				  seq->n, (unsigned long long)seq->entries[0].e.seq, (unsigned long long)head->seq);
	}
	return 0;
}

/* ---- region tables (2.2.3) ---- */
static int scan_regions(struct vhdx_check_ctx *c, struct vx *v)
{
	const struct vhdx_header *h = &v->hdr[v->cur];
	struct vhdx_region_table *tmp;
	int ret;

	v->rt = calloc(1, sizeof *v->rt);
	tmp = calloc(1, sizeof *tmp);
	v->rt_raw[0] = malloc(VHDX_REGION_SIZE);
	v->rt_raw[1] = malloc(VHDX_REGION_SIZE);
	if (!v->rt || !tmp || !v->rt_raw[0] || !v->rt_raw[1]) {
		free(tmp);
		return vhdx_err(ENOMEM, "out of memory");
	}
	v->rt_used = -1;
	for (int i = 0; i < 2; i++) {
		if (!vhdx_range_ok(rt_offs[i], VHDX_REGION_SIZE, c->file_size)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, rt_names[i], rt_offs[i], "missing: the file ends at 0x%llx",
					  (unsigned long long)c->file_size);
			memset(v->rt_raw[i], 0, VHDX_REGION_SIZE);
			continue;
		}
		ret = vhdx_io_pread(c->io, v->rt_raw[i], VHDX_REGION_SIZE, rt_offs[i], VHDX_TAG_REGION);
		if (ret < 0)
			goto out;
		ret = vhdx_region_table_decode(v->rt_raw[i], VHDX_REGION_SIZE, v->rt_used < 0 ? v->rt : tmp);
		if (ret == -ENOMEM)
			goto out;
		if (ret < 0) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, rt_names[i], rt_offs[i], "%s", vhdx_errmsg());
			continue;
		}
		v->rt_ok[i] = true;
		if (v->rt_used < 0)
			v->rt_used = i;
		if (vhdx_get_le32(v->rt_raw[i] + 12))
			vhdx_check_report(c, VHDX_CHECK_ERROR, rt_names[i], rt_offs[i] + 12, "reserved field is 0x%x, not 0",
					  vhdx_get_le32(v->rt_raw[i] + 12));
		for (uint32_t k = 0; k < vhdx_get_le32(v->rt_raw[i] + 8); k++) {
			uint32_t fl = vhdx_get_le32(v->rt_raw[i] + 16 + 32 * k + 28);
			if (fl & ~1u)
				vhdx_check_report(c, VHDX_CHECK_ERROR, rt_names[i], rt_offs[i] + 16 + 32 * k + 28,
						  "entry %u: reserved flag bits set (0x%08x)", k, fl);
		}
	}
	ret = 0;
	if (v->rt_used < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "region tables", rt_offs[0],
				  "neither region table copy is valid: the BAT and metadata cannot be found");
		goto out;
	}
	if (v->rt_ok[0] && v->rt_ok[1] && memcmp(v->rt_raw[0], v->rt_raw[1], VHDX_REGION_SIZE))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "region tables", rt_offs[1],
				  "the two region table copies differ (copy 1 is used)");
	v->rt_fix = !v->rt_ok[0] || !v->rt_ok[1] || memcmp(v->rt_raw[0], v->rt_raw[1], VHDX_REGION_SIZE);

	for (uint32_t i = 0; i < v->rt->entry_count; i++) {
		const struct vhdx_region_entry *e = &v->rt->entries[i];
		uint64_t eoff = rt_offs[v->rt_used] + 16 + 32 * i;
		char gs[VHDX_GUID_STRLEN];
		const char *name;
		bool known = true;

		vhdx_guid_format(e->guid, gs);
		if (!memcmp(e->guid, VHDX_GUID_BAT_REGION, 16)) {
			name = "BAT region";
			v->have_bat = true, v->bat_off = e->file_offset, v->bat_len = e->length;
		} else if (!memcmp(e->guid, VHDX_GUID_METADATA_REGION, 16)) {
			name = "metadata region";
			v->have_meta = true, v->meta_off = e->file_offset, v->meta_len = e->length;
		} else {
			name = gs;
			known = false;
			if (e->required)
				vhdx_check_report(c, VHDX_CHECK_ERROR, "region table entry", eoff,
						  "entry %u: unknown region %s is marked required", i, gs);
		}
		if (!vhdx_range_ok(e->file_offset, e->length, c->file_size)) {
			if (known || e->required)
				vhdx_check_report(c, VHDX_CHECK_ERROR, "region table entry", eoff,
						  "entry %u: the %s (0x%x bytes at 0x%llx) lies past the end of the file (0x%llx bytes)",
						  i, name, e->length, (unsigned long long)e->file_offset,
						  (unsigned long long)c->file_size);
			if (!memcmp(e->guid, VHDX_GUID_BAT_REGION, 16))
				v->have_bat = false;
			else if (!memcmp(e->guid, VHDX_GUID_METADATA_REGION, 16))
				v->have_meta = false;
			continue;
		}
		use_end(v, e->file_offset, e->length);
		if (h->log_length && vhdx_ranges_overlap(e->file_offset, e->length, h->log_offset, h->log_length))
			vhdx_check_report(c, VHDX_CHECK_ERROR, "region table entry", eoff,
					  "entry %u: the %s at 0x%llx overlaps the log at 0x%llx", i, name,
					  (unsigned long long)e->file_offset, (unsigned long long)h->log_offset);
		for (uint32_t k = 0; k < i; k++) {
			const struct vhdx_region_entry *o = &v->rt->entries[k];
			if (vhdx_ranges_overlap(e->file_offset, e->length, o->file_offset, o->length))
				vhdx_check_report(c, VHDX_CHECK_ERROR, "region table entry", eoff,
						  "entry %u: the %s at 0x%llx overlaps entry %u at 0x%llx", i, name,
						  (unsigned long long)e->file_offset, k,
						  (unsigned long long)o->file_offset);
		}
	}
	if (!v->have_bat && !vhdx_region_find(v->rt, VHDX_GUID_BAT_REGION))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "region table", rt_offs[v->rt_used],
				  "the required BAT region is missing");
	if (!v->have_meta && !vhdx_region_find(v->rt, VHDX_GUID_METADATA_REGION))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "region table", rt_offs[v->rt_used],
				  "the required metadata region is missing");
	/* two regions on the same bytes: neither can be trusted */
	if (v->have_bat && v->have_meta &&
	    vhdx_ranges_overlap(v->bat_off, v->bat_len, v->meta_off, v->meta_len))
		v->have_bat = v->have_meta = false;
out:
	free(tmp);
	return ret;
}

/* ---- metadata (2.6) ---- */
static bool meta_item(struct vhdx_check_ctx *c, struct vx *v, const struct vhdx_metadata_table *mt,
		      const uint8_t *table, const uint8_t id[16], const char *name, uint32_t len, bool virt,
		      uint8_t *out)
{
	const struct vhdx_metadata_entry *e = vhdx_metadata_find(mt, id, false);
	uint64_t eoff = v->meta_off;

	if (!e) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, name, v->meta_off, "the required %s item is missing", name);
		return false;
	}
	eoff = v->meta_off + 32 + 32 * (uint64_t)(e - mt->entries);
	(void)table;
	if (e->length != len) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, name, eoff, "the %s item is %u bytes, expected %u", name, e->length,
				  len);
		return false;
	}
	if (!e->is_required)
		vhdx_check_report(c, VHDX_CHECK_ERROR, name, eoff, "the %s item is not marked required", name);
	if (e->is_virtual_disk != virt)
		vhdx_check_report(c, VHDX_CHECK_WARNING, name, eoff, "the %s item is %smarked IsVirtualDisk", name,
				  virt ? "not " : "");
	if (vhdx_io_pread(c->io, out, len, v->meta_off + e->offset, VHDX_TAG_METADATA) < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, name, v->meta_off + e->offset, "cannot be read: %s", vhdx_errmsg());
		return false;
	}
	return true;
}

static int scan_metadata(struct vhdx_check_ctx *c, struct vx *v)
{
	struct vhdx_metadata_table *mt;
	uint8_t *tbl, b8[8], b16[16], b4[4];
	struct vhdx_file_params fp;
	uint64_t vsize = 0;
	uint32_t lss = 0, pss;
	bool ok = true;
	int ret;

	mt = calloc(1, sizeof *mt);
	tbl = malloc(VHDX_METADATA_TABLE_SIZE);
	if (!mt || !tbl) {
		free(mt);
		free(tbl);
		return vhdx_err(ENOMEM, "out of memory");
	}
	ret = vhdx_io_pread(c->io, tbl, VHDX_METADATA_TABLE_SIZE, v->meta_off, VHDX_TAG_METADATA);
	if (ret < 0)
		goto out;
	ret = vhdx_metadata_table_decode(tbl, VHDX_METADATA_TABLE_SIZE, v->meta_len, mt);
	if (ret == -ENOMEM)
		goto out;
	if (ret < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "metadata table", v->meta_off, "%s", vhdx_errmsg());
		ret = 0;
		goto out;
	}
	if (vhdx_get_le16(tbl + 8) || !all_zero(tbl + 12, 20))
		vhdx_check_report(c, VHDX_CHECK_ERROR, "metadata table", v->meta_off + 8, "reserved fields are not zero");
	for (uint16_t i = 0; i < mt->entry_count; i++) {
		const struct vhdx_metadata_entry *e = &mt->entries[i];
		char gs[VHDX_GUID_STRLEN];
		uint64_t eoff = v->meta_off + 32 + 32u * i;
		bool known = !e->is_user && vhdx_known_guid_name(e->item_id);

		vhdx_guid_format(e->item_id, gs);
		if (e->is_required && !known)
			vhdx_check_report(c, VHDX_CHECK_ERROR, "metadata table", eoff,
					  "entry %u: unknown %sitem %s is marked required", i, e->is_user ? "user " : "", gs);
		if (!e->is_user && !memcmp(e->item_id, VHDX_GUID_INCOMPLETE_FILE, 16))
			vhdx_check_report(c, VHDX_CHECK_ERROR, "metadata table", eoff,
					  "entry %u: the incomplete-file marker is set (Windows did not finish creating this file)",
					  i);
		if (vhdx_get_le32(tbl + 32 + 32u * i + 28))
			vhdx_check_report(c, VHDX_CHECK_ERROR, "metadata table", eoff + 28,
					  "entry %u: reserved field is not zero", i);
	}

	if (meta_item(c, v, mt, tbl, VHDX_GUID_FILE_PARAMETERS, "file parameters", 8, false, b8)) {
		if (vhdx_file_params_decode(b8, 8, &fp) < 0) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "file parameters", v->meta_off, "%s", vhdx_errmsg());
			ok = false;
		} else if (vhdx_get_le32(b8 + 4) & ~3u) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "file parameters", v->meta_off,
					  "reserved flag bits set (0x%08x)", vhdx_get_le32(b8 + 4));
		}
	} else {
		ok = false;
	}
	if (meta_item(c, v, mt, tbl, VHDX_GUID_VIRTUAL_DISK_SIZE, "virtual disk size", 8, true, b8))
		vsize = vhdx_get_le64(b8);
	else
		ok = false;
	if (!meta_item(c, v, mt, tbl, VHDX_GUID_VIRTUAL_DISK_ID, "virtual disk id", 16, true, b16))
		ok = false;
	if (meta_item(c, v, mt, tbl, VHDX_GUID_LOGICAL_SECTOR_SIZE, "logical sector size", 4, true, b4))
		lss = vhdx_get_le32(b4);
	else
		ok = false;
	if (meta_item(c, v, mt, tbl, VHDX_GUID_PHYSICAL_SECTOR_SIZE, "physical sector size", 4, true, b4)) {
		pss = vhdx_get_le32(b4);
		if (pss != 512 && pss != 4096)
			vhdx_check_report(c, VHDX_CHECK_ERROR, "physical sector size", v->meta_off,
					  "physical sector size %u is neither 512 nor 4096", pss);
	}
	if (ok) {
		if (lss != 512 && lss != 4096) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "logical sector size", v->meta_off,
					  "logical sector size %u is neither 512 nor 4096", lss);
		} else if (vhdx_geometry_init(&v->geo, vsize, fp.block_size, lss, fp.has_parent) < 0) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "virtual disk size", v->meta_off, "%s", vhdx_errmsg());
		} else {
			v->geo_ok = true;
		}
	}
	/* parent locator (1.8): present iff HasParent, decodable, with a linkage and a path */
	{
		const struct vhdx_metadata_entry *e = vhdx_metadata_find(mt, VHDX_GUID_PARENT_LOCATOR, false);
		bool has_parent = ok && fp.has_parent;
		c->has_parent = has_parent;
		if (has_parent && !e) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "parent locator", v->meta_off,
					  "HasParent is set but there is no parent locator item");
		} else if (!has_parent && e && ok) {
			vhdx_check_report(c, VHDX_CHECK_WARNING, "parent locator", v->meta_off + e->offset,
					  "a parent locator item in a disk without HasParent");
		} else if (has_parent && e) {
			uint8_t *buf = malloc(e->length ? e->length : 1);
			struct vhdx_parent_ref ref;
			if (!buf) {
				ret = vhdx_err(ENOMEM, "out of memory");
				goto out;
			}
			memset(&ref, 0, sizeof ref);
			if (vhdx_io_pread(c->io, buf, e->length, v->meta_off + e->offset, VHDX_TAG_METADATA) < 0 ||
			    vhdx_locator_decode(buf, e->length, &ref) < 0) {
				vhdx_check_report(c, VHDX_CHECK_ERROR, "parent locator", v->meta_off + e->offset, "%s",
						  vhdx_errmsg());
			} else {
				if (!ref.n_paths)
					vhdx_check_report(c, VHDX_CHECK_ERROR, "parent locator", v->meta_off + e->offset,
							  "no relative_path, volume_path or absolute_win32_path entry");
				if (ref.has_linkage2)
					vhdx_check_report(c, VHDX_CHECK_WARNING, "parent locator", v->meta_off + e->offset,
							  "a parent_linkage2 entry is present (the current specification forbids it)");
			}
			vhdx_parent_ref_free(&ref);
			free(buf);
		}
	}
out:
	free(mt);
	free(tbl);
	return ret;
}

/* ---- BAT (2.5) ---- */
/* Entry I of the BAT is the sector bitmap slot of its chunk. */
static bool bitmap_slot(const struct vhdx_geometry *g, uint64_t i)
{
	return (i % (g->chunk_ratio + 1)) == g->chunk_ratio;
}

/*
 * The state and reserved bits of entry I (BAD_STATE, BAD_RESERVED,
 * BAD_ABSENT_BITS): true when it is sound and holds a block of *LEN bytes
 * whose place is to be checked next.
 */
static bool entry_present(struct vhdx_check_ctx *c, struct vx *v, uint64_t i, uint64_t *len)
{
	const struct vhdx_geometry *g = &v->geo;
	uint64_t e = v->bat[i], eoff = v->bat_off + 8 * i;
	unsigned st = vhdx_bat_state(e);
	uint64_t blk = i - i / (g->chunk_ratio + 1);
	bool present;

	if (bitmap_slot(g, i)) {
		if (!g->has_parent) {
			if (e)
				vhdx_check_report(c, VHDX_CHECK_WARNING, "BAT entry", eoff,
						  "entry %llu (sector bitmap slot of a disk without a parent) is 0x%016llx, not 0",
						  (unsigned long long)i, (unsigned long long)e);
			return false;
		}
		if (st != VHDX_BAT_NOT_PRESENT && st != VHDX_BAT_FULLY_PRESENT) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
					  "entry %llu (sector bitmap of chunk %llu): invalid state %u",
					  (unsigned long long)i, (unsigned long long)(i / (g->chunk_ratio + 1)), st);
			v->bad[i] |= BAD_STATE;
			return false;
		}
		present = st == VHDX_BAT_FULLY_PRESENT;
		*len = VHDX_ALIGN;
	} else {
		if (blk >= g->payload_blocks)
			return false;
		if (!vhdx_bat_payload_state_ok(st, g->has_parent)) {
			vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
					  "entry %llu (block %llu): state %u is not valid for a %s disk",
					  (unsigned long long)i, (unsigned long long)blk, st,
					  g->has_parent ? "differencing" : "non-differencing");
			v->bad[i] |= BAD_STATE;
			return false;
		}
		present = st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
		*len = g->block_size;
	}
	if (e & VHDX_BAT_RESERVED_MASK) {
		vhdx_check_report(c, present ? VHDX_CHECK_ERROR : VHDX_CHECK_WARNING, "BAT entry", eoff,
				  "entry %llu: reserved bits set (0x%016llx)", (unsigned long long)i,
				  (unsigned long long)e);
		if (present) {
			v->bad[i] |= BAD_RESERVED;
			return false;
		}
		v->bad[i] |= BAD_ABSENT_BITS;
	}
	return present;
}

/* The block of present entry I (LEN bytes) must lie in the file, past the first megabyte, off the log and every region (else BAD_PLACE). */
static void check_place(struct vhdx_check_ctx *c, struct vx *v, uint64_t i, uint64_t len)
{
	const struct vhdx_geometry *g = &v->geo;
	const struct vhdx_header *h = &v->hdr[v->cur];
	uint64_t foff = vhdx_bat_foff(v->bat[i]), eoff = v->bat_off + 8 * i;
	bool is_sb = bitmap_slot(g, i);
	uint64_t blk = i - i / (g->chunk_ratio + 1);
	const char *what = is_sb ? "sector bitmap block" : "payload block";
	/* the last block may end inside the file's last allocation: only its used part must be in the file */
	uint64_t inside = is_sb ? len : VHDX_MIN((uint64_t)g->block_size, g->virtual_size - blk * g->block_size);

	if (foff < VHDX_ALIGN) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
				  "entry %llu: %s at file offset 0x%llx lies inside the first megabyte (headers and region tables)",
				  (unsigned long long)i, what, (unsigned long long)foff);
		v->bad[i] |= BAD_PLACE;
		return;
	}
	if (!vhdx_range_ok(foff, inside, c->file_size)) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
				  "entry %llu: %s at file offset 0x%llx (+0x%llx) is past the end of the file (0x%llx bytes)",
				  (unsigned long long)i, what, (unsigned long long)foff,
				  (unsigned long long)inside, (unsigned long long)c->file_size);
		v->bad[i] |= BAD_PLACE;
		return;
	}
	if (h->log_length && vhdx_ranges_overlap(foff, len, h->log_offset, h->log_length)) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
				  "entry %llu: %s at 0x%llx overlaps the log at 0x%llx", (unsigned long long)i, what,
				  (unsigned long long)foff, (unsigned long long)h->log_offset);
		v->bad[i] |= BAD_PLACE;
		return;
	}
	for (uint32_t r = 0; r < v->rt->entry_count; r++) {
		const struct vhdx_region_entry *re = &v->rt->entries[r];
		if (vhdx_ranges_overlap(foff, len, re->file_offset, re->length)) {
			const char *rn = !memcmp(re->guid, VHDX_GUID_BAT_REGION, 16)        ? "the BAT region"
					 : !memcmp(re->guid, VHDX_GUID_METADATA_REGION, 16) ? "the metadata region"
											    : "a region";
			vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", eoff,
					  "entry %llu: %s at 0x%llx overlaps %s (region table entry %u at 0x%llx)",
					  (unsigned long long)i, what, (unsigned long long)foff, rn, r,
					  (unsigned long long)re->file_offset);
			v->bad[i] |= BAD_PLACE;
			return;
		}
	}
}

struct overlap_arg {
	struct vhdx_check_ctx *c;
	struct vx *v;
};

/* vhdx_check_overlaps() found the block of entry VICTIM over that of OTHER. */
static void overlap_found(void *arg, uint64_t victim, uint64_t other)
{
	struct overlap_arg *a = arg;
	struct vx *v = a->v;

	vhdx_check_report(a->c, VHDX_CHECK_ERROR, "BAT entry", v->bat_off + 8 * victim,
			  "entry %llu: block at file offset 0x%llx overlaps the block of entry %llu at 0x%llx",
			  (unsigned long long)victim, (unsigned long long)vhdx_bat_foff(v->bat[victim]),
			  (unsigned long long)other, (unsigned long long)vhdx_bat_foff(v->bat[other]));
	v->bad[victim] |= BAD_OVERLAP;
}

/* PARTIALLY_PRESENT needs its chunk's sector bitmap block (else BAD_NO_BITMAP). */
static void check_partial_bitmaps(struct vhdx_check_ctx *c, struct vx *v)
{
	const struct vhdx_geometry *g = &v->geo;

	for (uint64_t blk = 0; blk < g->payload_blocks; blk++) {
		uint64_t i = vhdx_bat_payload_index(g, blk), chunk = blk / g->chunk_ratio;
		uint64_t sbi = vhdx_bat_bitmap_index(g, chunk);
		if (v->bad[i] || vhdx_bat_state(v->bat[i]) != VHDX_BAT_PARTIALLY_PRESENT)
			continue;
		if (sbi < g->bat_entries && vhdx_bat_state(v->bat[sbi]) == VHDX_BAT_FULLY_PRESENT && !v->bad[sbi])
			continue;
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT entry", v->bat_off + 8 * i,
				  "entry %llu (block %llu) is PARTIALLY_PRESENT but the sector bitmap block of chunk %llu (entry %llu) is not present",
				  (unsigned long long)i, (unsigned long long)blk, (unsigned long long)chunk,
				  (unsigned long long)sbi);
		v->bad[i] |= BAD_NO_BITMAP;
	}
}

/* Counts the bad entries and extends the layout by the good blocks. */
static void bat_layout(struct vx *v)
{
	const struct vhdx_geometry *g = &v->geo;

	for (uint64_t i = 0; i < g->bat_entries; i++) {
		if (v->bad[i]) {
			v->n_bad++;
			continue;
		}
		unsigned st = vhdx_bat_state(v->bat[i]);
		bool is_sb = bitmap_slot(g, i);
		if (is_sb ? (g->has_parent && st == VHDX_BAT_FULLY_PRESENT)
			  : (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT))
			use_end(v, vhdx_bat_foff(v->bat[i]), is_sb ? VHDX_ALIGN : g->block_size);
	}
}

static int scan_bat(struct vhdx_check_ctx *c, struct vx *v)
{
	const struct vhdx_geometry *g = &v->geo;
	uint64_t need = g->bat_entries * 8, n = 0;
	uint64_t *allocs = NULL;
	uint8_t *raw;
	int ret;

	if (need > v->bat_len) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "BAT", v->bat_off,
				  "the BAT region (%u bytes) cannot hold the %llu entries the disk needs",
				  v->bat_len, (unsigned long long)g->bat_entries);
		return 0;
	}
	raw = malloc(need);
	v->bat = malloc(need);
	v->bad = calloc(g->bat_entries, 1);
	allocs = malloc(2 * sizeof *allocs * g->bat_entries);
	if (!raw || !v->bat || !v->bad || !allocs) {
		free(raw);
		free(allocs);
		return vhdx_err(ENOMEM, "out of memory for a BAT of %llu bytes", (unsigned long long)need);
	}
	ret = vhdx_io_pread(c->io, raw, need, v->bat_off, VHDX_TAG_BAT);
	if (ret < 0) {
		free(raw);
		free(allocs);
		return ret;
	}
	for (uint64_t i = 0; i < g->bat_entries; i++)
		v->bat[i] = vhdx_get_le64(raw + 8 * i);
	free(raw);

	for (uint64_t i = 0; i < g->bat_entries; i++) {
		uint64_t len;
		if (!entry_present(c, v, i, &len))
			continue;
		check_place(c, v, i, len);
		if (v->bad[i])
			continue;
		allocs[2 * n] = vhdx_bat_foff(v->bat[i]);
		allocs[2 * n + 1] = (i << 1) | bitmap_slot(g, i);
		n++;
	}
	qsort(allocs, n, 2 * sizeof *allocs, vhdx_cmp_u64);
	{
		struct overlap_arg oa = { c, v };
		vhdx_check_overlaps(allocs, n, g->block_size, VHDX_ALIGN, overlap_found, &oa);
	}
	free(allocs);
	if (g->has_parent)
		check_partial_bitmaps(c, v);
	bat_layout(v);
	return 0;
}

/* One whole scan.  IO is C->io, or an overlay with the log replayed in memory. */
static int scan(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	struct vhdx_log_sequence seq;
	struct vhdx_io *saved = c->io, *ov = NULL;
	int ret;

	memset(&seq, 0, sizeof seq);
	ret = scan_headers(c, v);
	if (ret < 0 || v->cur < 0)
		return ret;
	ret = scan_log(c, v, &seq);
	if (ret < 0)
		goto out;
	if (v->log_replayable) {
		/* check what a reader sees: the log replayed into memory over a second, read-only descriptor */
		struct vhdx_io *lower;
		ret = vhdx_io_open_path(c->path, false, &lower);
		if (ret == 0)
			ret = vhdx_io_overlay_new(lower, &ov);
		if (ret == 0)
			ret = vhdx_log_apply(ov, &seq, NULL, NULL);
		if (ret < 0)
			goto out;
		c->io = ov;
	}
	ret = scan_regions(c, v);
	if (ret < 0 || v->rt_used < 0)
		goto out;
	if (v->have_meta) {
		ret = scan_metadata(c, v);
		if (ret < 0)
			goto out;
	}
	if (v->have_bat && v->geo_ok) {
		ret = scan_bat(c, v);
		if (ret < 0)
			goto out;
		v->layout_known = v->bat != NULL;
	}
	/* leaked space: bytes past everything any structure references */
	if (v->layout_known) {
		uint64_t end = vhdx_div_round_up(v->used_end, VHDX_ALIGN) * VHDX_ALIGN;
		/* less than 1 MiB past the last allocation is padding (Disk2VHD leaves 512 bytes), not a block */
		if (c->file_size >= end + VHDX_ALIGN)
			vhdx_check_report(c, VHDX_CHECK_WARNING, "file", end,
					  "leaked space: the last %llu bytes of the file (from 0x%llx to 0x%llx) are not referenced by any structure",
					  (unsigned long long)(c->file_size - end), (unsigned long long)end,
					  (unsigned long long)c->file_size);
	}
out:
	c->io = saved;
	vhdx_io_close(ov);
	vhdx_log_sequence_free(&seq);
	return ret;
}

/* ---- repairs ---- */

/* A minimal layer and state over C->io for the header protocol and the journal (they use io, headers, current). */
struct fake {
	struct vhdx_layer l;
	struct vhdx_state s;
};
static void fake_init(struct fake *f, struct vhdx_check_ctx *c, const struct vx *v)
{
	memset(f, 0, sizeof *f);
	f->l.io = c->io;
	f->l.priv = &f->s;
	for (int i = 0; i < 2; i++) {
		f->s.headers[i] = v->hdr[i];
		f->s.header_valid[i] = v->hdr_ok[i];
	}
	f->s.current = v->cur;
}

static int repair_headers(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	struct fake f;
	int bad = 1 - v->cur, ret;

	fake_init(&f, c, v);
	if (v->alt >= 0) {
		/*
		 * The newest header is unusable (bad version or log placement) and
		 * the other one is sound: repair from the older one, which is what
		 * the file looked like one header update earlier.
		 */
		f.s.current = v->cur = v->alt;
		bad = 1 - v->alt;
	}
	/* the protocol overwrites the non-current (damaged) slot first: the good header survives any crash */
	ret = vhdx_header_update(&f.l, &f.s, NULL, VHDX_HDR_NEW_FILE_GUID);
	if (ret < 0)
		return vhdx_err_prefix(ret, "repairing the headers");
	vhdx_check_repaired(c, hdr_names[bad], hdr_offs[bad],
			    "rewrote both headers from header %d (sequence number %llu -> %llu)", v->cur + 1,
			    (unsigned long long)v->hdr[v->cur].seq, (unsigned long long)f.s.headers[f.s.current].seq);
	return 0;
}

static int repair_log(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	static const uint8_t zero[16];
	struct vhdx_log_sequence seq;
	struct fake f;
	uint64_t old_size = 0, new_size = 0;
	int ret;

	memset(&seq, 0, sizeof seq);
	ret = vhdx_log_find(c->io, &v->hdr[v->cur], &seq);
	if (ret < 0)
		return vhdx_err_prefix(ret, "reading the log");
	if (seq.n) {
		ret = vhdx_log_apply(c->io, &seq, &old_size, &new_size);
		/* the replayed pages must be durable before the LogGuid that protects them goes */
		if (ret == 0)
			ret = vhdx_io_flush(c->io);
		if (ret < 0) {
			vhdx_log_sequence_free(&seq);
			return vhdx_err_prefix(ret, "replaying the log");
		}
	}
	fake_init(&f, c, v);
	ret = vhdx_header_update(&f.l, &f.s, zero, VHDX_HDR_NEW_FILE_GUID);
	if (ret < 0) {
		vhdx_log_sequence_free(&seq);
		return vhdx_err_prefix(ret, "clearing the LogGuid");
	}
	if (seq.n)
		vhdx_check_repaired(c, "log", v->hdr[v->cur].log_offset,
				    "replayed %zu log entries (file size 0x%llx -> 0x%llx) and cleared the LogGuid", seq.n,
				    (unsigned long long)old_size, (unsigned long long)new_size);
	else
		vhdx_check_repaired(c, "log", v->hdr[v->cur].log_offset,
				    "cleared the LogGuid of a log without an acceptable sequence (nothing to replay)");
	vhdx_log_sequence_free(&seq);
	c->file_size = new_size > c->file_size ? new_size : c->file_size;
	return 0;
}

static int repair_regions(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	int good = v->rt_used, bad = 1 - good;
	int ret;

	/* only the damaged copy is written; the good one stays as it is until the next repair */
	ret = vhdx_io_pwrite(c->io, v->rt_raw[good], VHDX_REGION_SIZE, rt_offs[bad], VHDX_TAG_REGION);
	if (ret == 0)
		ret = vhdx_io_flush(c->io);
	if (ret < 0)
		return vhdx_err_prefix(ret, "repairing region table %d", bad + 1);
	vhdx_check_repaired(c, rt_names[bad], rt_offs[bad], "rewrote region table %d from copy %d", bad + 1, good + 1);
	return 0;
}

/* Clears every BAT entry marked bad, through the log; reports the virtual ranges whose data is lost. */
static int repair_bat(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	const struct vhdx_geometry *g = &v->geo;
	uint64_t npages_max = vhdx_div_round_up(g->bat_entries * 8, VHDX_LOG_SECTOR);
	uint8_t *pages = NULL, *dirty = NULL;
	struct vhdx_log_page *lp = NULL;
	enum vhdx_tag *tags = NULL;
	struct vhdx_journal j;
	struct fake f;
	size_t n = 0, batch;
	int ret = 0;

	/* a cleared sector bitmap takes the partially present blocks of its chunk with it */
	if (g->has_parent) {
		for (uint64_t chunk = 0; chunk < g->bitmap_blocks; chunk++) {
			uint64_t sbi = vhdx_bat_bitmap_index(g, chunk);
			if (sbi >= g->bat_entries || !v->bad[sbi])
				continue;
			for (uint64_t k = 0; k < g->chunk_ratio; k++) {
				uint64_t blk = chunk * g->chunk_ratio + k, i = vhdx_bat_payload_index(g, blk);
				if (blk < g->payload_blocks && !v->bad[i] &&
				    vhdx_bat_state(v->bat[i]) == VHDX_BAT_PARTIALLY_PRESENT)
					v->bad[i] |= BAD_NO_BITMAP;
			}
		}
	}
	pages = malloc(npages_max * VHDX_LOG_SECTOR);
	dirty = calloc(npages_max, 1);
	lp = calloc(npages_max, sizeof *lp);
	tags = calloc(npages_max, sizeof *tags);
	if (!pages || !dirty || !lp || !tags) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < g->bat_entries; i++) {
		uint64_t p = i * 8 / VHDX_LOG_SECTOR, newe;
		bool is_sb = (i % (g->chunk_ratio + 1)) == g->chunk_ratio;
		uint64_t blk = i - i / (g->chunk_ratio + 1);

		if (!v->bad[i])
			continue;
		if (!dirty[p]) {
			uint64_t poff = v->bat_off + p * VHDX_LOG_SECTOR;
			memset(pages + p * VHDX_LOG_SECTOR, 0, VHDX_LOG_SECTOR);
			ret = vhdx_io_pread(c->io, pages + p * VHDX_LOG_SECTOR,
					    VHDX_MIN((uint64_t)VHDX_LOG_SECTOR, v->bat_off + v->bat_len - poff), poff,
					    VHDX_TAG_BAT);
			if (ret < 0)
				goto out;
			dirty[p] = 1;
		}
		if (v->bad[i] == BAD_ABSENT_BITS) {
			/* an entry that maps nothing: only its stray bits go, what it reads as stays */
			newe = vhdx_bat_state(v->bat[i]);
			vhdx_put_le64(pages + i * 8, newe);
			vhdx_check_repaired(c, "BAT entry", v->bat_off + 8 * i, "entry %llu (was 0x%016llx) cleaned to 0x%llx",
					    (unsigned long long)i, (unsigned long long)v->bat[i], (unsigned long long)newe);
			continue;
		}
		/* base disks: NOT_PRESENT reads zeros; a child: ZERO, so the lost range does not show stale parent data */
		newe = is_sb ? 0 : vhdx_bat_make(g->has_parent ? VHDX_BAT_ZERO : VHDX_BAT_NOT_PRESENT, 0);
		vhdx_put_le64(pages + i * 8, newe);
		if (is_sb) {
			vhdx_check_repaired(c, "BAT entry", v->bat_off + 8 * i,
					    "entry %llu (sector bitmap of chunk %llu, was 0x%016llx) cleared", (unsigned long long)i,
					    (unsigned long long)(i / (g->chunk_ratio + 1)), (unsigned long long)v->bat[i]);
		} else {
			uint64_t voff = blk * g->block_size, len = VHDX_MIN((uint64_t)g->block_size, g->virtual_size - voff);
			vhdx_check_repaired(c, "BAT entry", v->bat_off + 8 * i,
					    "entry %llu (block %llu, was 0x%016llx) set to %s", (unsigned long long)i,
					    (unsigned long long)blk, (unsigned long long)v->bat[i],
					    g->has_parent ? "ZERO" : "NOT_PRESENT");
			vhdx_check_lost(c, voff, len, "BAT entry", v->bat_off + 8 * i,
					"virtual bytes 0x%llx..0x%llx (block %llu) now read as zeros: the data of its BAT entry cannot be trusted",
					(unsigned long long)voff, (unsigned long long)(voff + len), (unsigned long long)blk);
		}
	}
	for (uint64_t p = 0; p < npages_max; p++) {
		if (!dirty[p])
			continue;
		lp[n].file_offset = v->bat_off + p * VHDX_LOG_SECTOR;
		lp[n].data = pages + p * VHDX_LOG_SECTOR;
		lp[n].zero_length = 0;
		tags[n] = VHDX_TAG_BAT;
		n++;
	}
	if (!n)
		goto out;
	fake_init(&f, c, v);
	if (v->hdr[v->cur].log_length < 2 * VHDX_LOG_SECTOR) {
		/* no log to journal through: each 4 KiB page written in place and flushed */
		for (size_t k = 0; k < n && ret == 0; k++) {
			ret = vhdx_io_pwrite(c->io, lp[k].data, VHDX_LOG_SECTOR, lp[k].file_offset, VHDX_TAG_BAT);
			if (ret == 0)
				ret = vhdx_io_flush(c->io);
		}
		goto out;
	}
	/* user-visible data changes: new FileWriteGuid and DataWriteGuid before the first page changes */
	ret = vhdx_journal_start(&f.l, &f.s, &j);
	if (ret < 0)
		goto out;
	batch = v->hdr[v->cur].log_length / VHDX_LOG_SECTOR / 2;
	batch = batch > 2 ? batch - 2 : 1;
	for (size_t k = 0; k < n && ret == 0; k += batch) {
		size_t m = VHDX_MIN(batch, n - k);
		ret = vhdx_journal_commit(&f.l, &j, lp + k, tags + k, m, c->file_size);
	}
	if (ret == 0)
		ret = vhdx_journal_finish(&f.l, &f.s, &j);
out:
	free(pages);
	free(dirty);
	free(lp);
	free(tags);
	return ret < 0 ? vhdx_err_prefix(ret, "clearing BAT entries") : 0;
}

static int repair_tail(struct vhdx_check_ctx *c, void *state)
{
	struct vx *v = state;
	uint64_t end = vhdx_div_round_up(v->used_end, VHDX_ALIGN) * VHDX_ALIGN;
	int ret;

	if (c->file_size < end + VHDX_ALIGN)
		return 0;
	/* everything before is flushed by the earlier steps; cutting unreferenced bytes needs no ordering */
	ret = vhdx_io_flush(c->io);
	if (ret == 0)
		ret = vhdx_io_set_size(c->io, end);
	if (ret == 0)
		ret = vhdx_io_flush(c->io);
	if (ret < 0)
		return vhdx_err_prefix(ret, "truncating leaked space");
	vhdx_check_repaired(c, "file", end, "truncated the file from 0x%llx to 0x%llx bytes (leaked space freed)",
			    (unsigned long long)c->file_size, (unsigned long long)end);
	c->file_size = end;
	return 0;
}

/* ---- the repair steps, in the order of the top of this file (maint/check.c runs them) ---- */

static bool need_fileid(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	return v->fileid_bad && c->file_size >= VHDX_ALIGN;
}

static int repair_fileid(struct vhdx_check_ctx *c, void *state)
{
	/* 8 bytes in a sector nothing else uses; the creator string after it is kept */
	int ret = vhdx_io_pwrite(c->io, VHDX_FILEID_SIG, 8, 0, VHDX_TAG_FILEID);

	(void)state;
	if (ret == 0)
		ret = vhdx_io_flush(c->io);
	if (ret < 0)
		return ret;
	vhdx_check_repaired(c, "file identifier", 0, "rewrote the signature \"vhdxfile\"");
	return 0;
}

/* the current header is unusable, the other one fine */
static bool need_header_from_alt(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->cur < 0 && v->alt >= 0;
}

static bool need_header_slot(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->cur >= 0 && v->hdr_fix;
}

static bool need_log(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->cur >= 0 && v->log_dirty;
}

static bool need_regions(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->cur >= 0 && v->rt_used >= 0 && v->rt_fix;
}

static bool need_bat(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->cur >= 0 && v->bat && v->n_bad;
}

static bool need_tail(const struct vhdx_check_ctx *c, const void *state)
{
	const struct vx *v = state;
	(void)c;
	return v->layout_known;
}

static const struct vhdx_check_step steps[] = {
	{ need_fileid, repair_fileid, false },
	{ need_header_from_alt, repair_headers, true },
	{ need_header_slot, repair_headers, true },
	{ need_log, repair_log, true },
	{ need_regions, repair_regions, true },
	{ need_bat, repair_bat, true },
	{ need_tail, repair_tail, false },
	{ NULL, NULL, false },
};

/* A broken file identifier: the headers still say VHDX. */
static bool recognise(struct vhdx_io *io, uint64_t size)
{
	uint8_t h1[4], h2[4];

	return size >= 128 * 1024 + 4 && vhdx_io_pread(io, h1, 4, 64 * 1024, VHDX_TAG_HEADER) == 0 &&
	       vhdx_io_pread(io, h2, 4, 128 * 1024, VHDX_TAG_HEADER) == 0 &&
	       (!memcmp(h1, "head", 4) || !memcmp(h2, "head", 4));
}

const struct vhdx_checker vhdx_checker_vhdx = {
	.signature = VHDX_FILEID_SIG,
	.recognise = recognise,
	.state_size = sizeof(struct vx),
	.scan = scan,
	.free = vx_free,
	.steps = steps,
};
