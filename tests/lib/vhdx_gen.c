/*
 * vhdx_gen.c - the deterministic VHDX test-image generator (see vhdx_gen.h
 * for the layout, the data pattern and how to damage an image).  Layout
 * rules from MS-VHDX 2.2-2.6 as summarised in FORMAT.md 1.2-1.8.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/splitmix.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_locator.h"
#include "lib/gen_bytes.h"
#include "lib/vhdx_gen.h"

#define MiB (1024ull * 1024)
#define CHUNK_SECTORS (1ull << 23) /* sectors one 1 MiB sector-bitmap block describes (MS-VHDX 2.4) */

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int gen_fail(const char *what)
{
	fprintf(stderr, "vhdx_gen: %s\n", what);
	return -EINVAL;
}

/* A version-4 GUID derived from the image seed and a purpose number. */
static void derive_guid(uint32_t seed, unsigned purpose, uint8_t g[16])
{
	uint64_t a = splitmix64_mix((uint64_t)seed << 8 | purpose), b = splitmix64_mix(a ^ 0x5bd1e995u);

	vhdx_put_le64(g, a);
	vhdx_put_le64(g + 8, b);
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40);
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
}

static bool guid_zero(const uint8_t g[16])
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

static uint64_t pattern_key(uint32_t img_seed, uint32_t blk_seed)
{
	return splitmix64_mix((uint64_t)img_seed << 32 | blk_seed);
}

uint8_t vhdx_gen_pattern_byte(uint32_t img_seed, uint32_t blk_seed, uint64_t voff)
{
	uint64_t w = splitmix64_mix(pattern_key(img_seed, blk_seed) ^ (voff >> 3));

	return (uint8_t)(w >> (8 * (voff & 7)));
}

void vhdx_gen_pattern(uint32_t img_seed, uint32_t blk_seed, uint64_t voff, size_t len, uint8_t *buf)
{
	uint64_t key = pattern_key(img_seed, blk_seed);
	size_t i = 0;

	while (i < len && ((voff + i) & 7)) {
		buf[i] = (uint8_t)(splitmix64_mix(key ^ ((voff + i) >> 3)) >> (8 * ((voff + i) & 7)));
		i++;
	}
	for (; i + 8 <= len; i += 8)
		vhdx_put_le64(buf + i, splitmix64_mix(key ^ ((voff + i) >> 3)));
	for (; i < len; i++)
		buf[i] = (uint8_t)(splitmix64_mix(key ^ ((voff + i) >> 3)) >> (8 * ((voff + i) & 7)));
}

uint64_t vhdx_gen_payload_index(const struct vhdx_gen_image *img, uint64_t blk)
{
	return blk + blk / img->chunk_ratio;
}

uint64_t vhdx_gen_bitmap_index(const struct vhdx_gen_image *img, uint64_t chunk)
{
	return chunk * (img->chunk_ratio + 1) + img->chunk_ratio;
}

void vhdx_gen_free(struct vhdx_gen_image *img)
{
	if (!img)
		return;
	free(img->file);
	free(img->extra_item_off);
	free(img->regions[0]);
	free(img->regions[1]);
	free(img->meta);
	free(img->bat);
	free(img->block_state);
	free(img->block_seed);
	free(img->block_foff);
	if (img->bitmaps)
		for (uint64_t i = 0; i < img->bitmap_blocks; i++)
			free(img->bitmaps[i]);
	free(img->bitmaps);
	free(img->bitmap_foff);
	free(img);
}

static bool is_present(unsigned st)
{
	return st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
}

/* Sets the intended bitmap bits of RUNS in block BLK. */
static int set_runs(struct vhdx_gen_image *img, uint64_t blk, const struct vhdx_gen_run *runs, size_t n)
{
	uint64_t spb = img->block_size / img->logical_sector_size; /* sectors per block */

	for (size_t r = 0; r < n; r++) {
		if (runs[r].first > spb || runs[r].count > spb - runs[r].first)
			return gen_fail("a bitmap run lies outside its block");
		for (uint64_t s = blk * spb + runs[r].first, e = s + runs[r].count; s < e; s++) {
			uint64_t chunk = s / CHUNK_SECTORS, bit = s % CHUNK_SECTORS;
			if (!img->bitmaps[chunk]) {
				img->bitmaps[chunk] = calloc(1, MiB);
				if (!img->bitmaps[chunk])
					return -ENOMEM;
			}
			img->bitmaps[chunk][bit >> 3] |= (uint8_t)(1u << (bit & 7));
		}
	}
	return 0;
}

/* Data bytes of block BLK inside the virtual disk (the last block may be short). */
static uint64_t block_data_len(const struct vhdx_gen_image *img, uint64_t blk)
{
	return min64(img->block_size, img->virtual_size - blk * img->block_size);
}

/* Geometry of MS-VHDX 2.4/2.5, computed here on purpose (not with vhdx_geometry_init). */
static int gen_geometry(struct vhdx_gen_image *img, const struct vhdx_gen_opts *o)
{
	img->virtual_size = o->virtual_size;
	img->block_size = o->block_size ? o->block_size : (uint32_t)MiB;
	img->logical_sector_size = o->logical_sector_size ? o->logical_sector_size : 512;
	img->physical_sector_size = o->physical_sector_size ? o->physical_sector_size : 4096;
	img->has_parent = o->type == VHDX_GEN_DIFFERENCING;
	if (img->logical_sector_size != 512 && img->logical_sector_size != 4096)
		return gen_fail("logical sector size must be 512 or 4096 (patch the item to test others)");
	if (img->block_size < MiB || img->block_size > 256 * MiB || (img->block_size & (img->block_size - 1)))
		return gen_fail("block size must be a power of two from 1 MiB to 256 MiB (patch the item to test others)");
	if (!img->virtual_size || img->virtual_size % img->logical_sector_size)
		return gen_fail("virtual size must be a non-zero multiple of the logical sector size");
	img->chunk_ratio = CHUNK_SECTORS * img->logical_sector_size / img->block_size;
	img->payload_blocks = (img->virtual_size + img->block_size - 1) / img->block_size;
	img->bitmap_blocks = (img->payload_blocks + img->chunk_ratio - 1) / img->chunk_ratio;
	if (img->has_parent)
		img->bat_entries = img->bitmap_blocks * (img->chunk_ratio + 1);
	else
		img->bat_entries = img->payload_blocks + (img->payload_blocks - 1) / img->chunk_ratio;
	if (img->bat_entries > (256 * MiB) / 8)
		return gen_fail("the BAT would exceed 256 MiB; use a smaller virtual size for generated images");
	return 0;
}

/* The parent locator item: raw bytes, given pairs, or parent_linkage + relative_path. */
static int gen_locator(const struct vhdx_gen_opts *o, uint8_t **out, size_t *outlen)
{
	char linkage[VHDX_GUID_STRLEN + 2];
	char gs[VHDX_GUID_STRLEN];
	const char *keys[2] = { "parent_linkage", "relative_path" };
	const char *values[2];

	if (o->locator_raw) {
		*out = malloc(o->locator_raw_len ? o->locator_raw_len : 1);
		if (!*out)
			return -ENOMEM;
		memcpy(*out, o->locator_raw, o->locator_raw_len);
		*outlen = o->locator_raw_len;
		return 0;
	}
	if (o->locator_n)
		return vhdx_locator_encode(o->locator_keys, o->locator_values, o->locator_n, out, outlen);
	vhdx_guid_format(o->parent_linkage, gs);
	snprintf(linkage, sizeof linkage, "{%s}", gs);
	values[0] = linkage;
	values[1] = o->parent_path ? o->parent_path : "parent.vhdx";
	return vhdx_locator_encode(keys, values, 2, out, outlen);
}

struct item_spec {
	const uint8_t *guid;
	const uint8_t *data;
	uint32_t len;
	bool is_user, is_virtual_disk, is_required;
};

/* Writes the metadata table and the items; fills img->item_off/len and img->meta. */
static int gen_metadata(struct vhdx_gen_image *img, const struct vhdx_gen_opts *o, const uint8_t disk_id[16])
{
	struct vhdx_file_params fp = { .block_size = img->block_size,
				       .leave_blocks_allocated = o->type == VHDX_GEN_FIXED,
				       .has_parent = img->has_parent };
	uint8_t fpb[8], vsb[8], lssb[4], pssb[4];
	uint8_t *loc = NULL;
	size_t loclen = 0, nstd = img->has_parent ? 6 : 5, n = nstd + o->n_extra_meta;
	struct item_spec *items;
	uint64_t pos = VHDX_METADATA_TABLE_SIZE;
	int ret = 0;

	if (n > VHDX_METADATA_MAX_ENTRIES)
		return gen_fail("too many metadata items");
	vhdx_file_params_encode(&fp, fpb);
	vhdx_put_le64(vsb, img->virtual_size);
	vhdx_put_le32(lssb, img->logical_sector_size);
	vhdx_put_le32(pssb, img->physical_sector_size);
	if (img->has_parent) {
		ret = gen_locator(o, &loc, &loclen);
		if (ret < 0)
			return ret == -ENOMEM ? ret : gen_fail("the parent locator pairs cannot be encoded");
		if (loclen > VHDX_METADATA_MAX_ITEM) {
			free(loc);
			return gen_fail("parent locator too long");
		}
	}
	items = calloc(n, sizeof *items);
	if (!items) {
		free(loc);
		return -ENOMEM;
	}
	/* IsVirtualDisk as openvmm enforces it (FORMAT.md 1.7); all system items required */
	items[0] = (struct item_spec){ VHDX_GUID_FILE_PARAMETERS, fpb, 8, false, false, true };
	items[1] = (struct item_spec){ VHDX_GUID_VIRTUAL_DISK_SIZE, vsb, 8, false, true, true };
	items[2] = (struct item_spec){ VHDX_GUID_VIRTUAL_DISK_ID, disk_id, 16, false, true, true };
	items[3] = (struct item_spec){ VHDX_GUID_LOGICAL_SECTOR_SIZE, lssb, 4, false, true, true };
	items[4] = (struct item_spec){ VHDX_GUID_PHYSICAL_SECTOR_SIZE, pssb, 4, false, true, true };
	if (img->has_parent)
		items[5] = (struct item_spec){ VHDX_GUID_PARENT_LOCATOR, loc, (uint32_t)loclen, false, false, true };
	for (size_t i = 0; i < o->n_extra_meta; i++) {
		const struct vhdx_gen_meta_item *x = &o->extra_meta[i];
		items[nstd + i] = (struct item_spec){ x->guid, x->data, x->len, x->is_user, x->is_virtual_disk,
						      x->is_required };
	}
	img->meta = calloc(1, sizeof *img->meta);
	if (!img->meta) {
		ret = -ENOMEM;
		goto out;
	}
	img->meta->entry_count = (uint16_t)n;
	for (size_t i = 0; i < n; i++) {
		struct vhdx_metadata_entry *e = &img->meta->entries[i];
		uint64_t foff;

		memcpy(e->item_id, items[i].guid, 16);
		e->length = items[i].len;
		e->offset = items[i].len ? (uint32_t)pos : 0;
		e->is_user = items[i].is_user;
		e->is_virtual_disk = items[i].is_virtual_disk;
		e->is_required = items[i].is_required;
		if (!items[i].len)
			continue;
		if (pos + items[i].len > img->meta_length) {
			ret = gen_fail("metadata items do not fit in the metadata region");
			goto out;
		}
		foff = img->meta_offset + pos;
		if (items[i].data)
			memcpy(img->file + foff, items[i].data, items[i].len);
		if (i < nstd) {
			img->item_off[i] = foff;
			img->item_len[i] = items[i].len;
		} else {
			img->extra_item_off[i - nstd] = foff;
		}
		pos += items[i].len;
	}
	vhdx_gen_reencode_metadata(img);
out:
	free(items);
	free(loc);
	return ret;
}

/* Allocates the per-block and per-chunk arrays. */
static int gen_alloc(struct vhdx_gen_image *img, size_t n_extra_meta)
{
	img->bat = calloc(img->bat_entries, sizeof *img->bat);
	img->block_state = calloc(img->payload_blocks, sizeof *img->block_state);
	img->block_seed = calloc(img->payload_blocks, sizeof *img->block_seed);
	img->block_foff = calloc(img->payload_blocks, sizeof *img->block_foff);
	img->bitmap_foff = calloc(img->bitmap_blocks, sizeof *img->bitmap_foff);
	img->bitmaps = calloc(img->bitmap_blocks, sizeof *img->bitmaps);
	img->extra_item_off = calloc(n_extra_meta ? n_extra_meta : 1, sizeof *img->extra_item_off);
	img->regions[0] = calloc(1, sizeof *img->regions[0]);
	img->regions[1] = calloc(1, sizeof *img->regions[1]);
	if (!img->bat || !img->block_state || !img->block_seed || !img->block_foff || !img->bitmap_foff ||
	    !img->bitmaps || !img->extra_item_off || !img->regions[0] || !img->regions[1])
		return -ENOMEM;
	return 0;
}

/* Decides what every block holds and where (before the file exists). */
static int gen_plan_blocks(struct vhdx_gen_image *img, const struct vhdx_gen_opts *o, uint64_t *cursor,
			   uint64_t *file_end)
{
	bool *listed = calloc(img->payload_blocks, sizeof *listed);
	int ret = 0;

	if (!listed)
		return -ENOMEM;
	for (uint64_t b = 0; b < img->payload_blocks; b++) {
		img->block_state[b] = o->type == VHDX_GEN_FIXED ? VHDX_BAT_FULLY_PRESENT : VHDX_BAT_NOT_PRESENT;
		img->block_seed[b] = (uint32_t)(b + 1);
	}
	/* listed blocks first, in list order */
	for (size_t i = 0; i < o->n_blocks; i++) {
		const struct vhdx_gen_block *gb = &o->blocks[i];
		uint64_t b = gb->blk;

		if (b >= img->payload_blocks) {
			ret = gen_fail("a listed block is past the last payload block");
			goto out;
		}
		listed[b] = true;
		img->block_state[b] = gb->state & 7;
		img->block_seed[b] = gb->seed ? gb->seed : (uint32_t)(b + 1);
		if (is_present(img->block_state[b])) {
			if (gb->foff) {
				img->block_foff[b] = gb->foff;
			} else {
				img->block_foff[b] = *cursor;
				*cursor += img->block_size;
			}
			*file_end = max64(*file_end, img->block_foff[b] + block_data_len(img, b));
		} else {
			img->block_foff[b] = gb->foff; /* offset bits of a non-present entry, no data */
		}
		ret = set_runs(img, b, gb->runs, gb->n_runs);
		if (ret < 0)
			goto out;
	}
	/* then the unlisted present blocks of a fixed disk, in block order */
	for (uint64_t b = 0; b < img->payload_blocks; b++) {
		if (listed[b] || !is_present(img->block_state[b]))
			continue;
		img->block_foff[b] = *cursor;
		*cursor += img->block_size;
		*file_end = max64(*file_end, img->block_foff[b] + block_data_len(img, b));
	}
	/* sector-bitmap blocks of a differencing disk, in chunk order */
	if (img->has_parent && !(o->damage & VHDX_GEN_NO_BITMAP_BLOCKS)) {
		for (uint64_t c = 0; c < img->bitmap_blocks; c++) {
			bool need = img->bitmaps[c] != NULL;
			for (uint64_t b = c * img->chunk_ratio; !need && b < min64((c + 1) * img->chunk_ratio,
										     img->payload_blocks); b++)
				need = img->block_state[b] == VHDX_BAT_PARTIALLY_PRESENT;
			if (!need)
				continue;
			img->bitmap_foff[c] = *cursor;
			*cursor += MiB;
			*file_end = max64(*file_end, *cursor);
		}
	}
out:
	free(listed);
	return ret;
}

static void gen_bat(struct vhdx_gen_image *img)
{
	for (uint64_t b = 0; b < img->payload_blocks; b++)
		img->bat[vhdx_gen_payload_index(img, b)] = vhdx_bat_make(img->block_state[b], img->block_foff[b]);
	for (uint64_t c = 0; c < img->bitmap_blocks; c++) {
		uint64_t idx = vhdx_gen_bitmap_index(img, c);
		if (idx < img->bat_entries)
			img->bat[idx] = img->bitmap_foff[c] ? vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, img->bitmap_foff[c])
							    : 0;
	}
	for (uint64_t i = 0; i < img->bat_entries; i++)
		vhdx_put_le64(img->file + img->bat_offset + 8 * i, img->bat[i]);
}

static void gen_payload(struct vhdx_gen_image *img)
{
	for (uint64_t b = 0; b < img->payload_blocks; b++)
		if (is_present(img->block_state[b]))
			vhdx_gen_pattern(img->seed, img->block_seed[b], b * img->block_size, block_data_len(img, b),
					 img->file + img->block_foff[b]);
	for (uint64_t c = 0; c < img->bitmap_blocks; c++)
		if (img->bitmap_foff[c] && img->bitmaps[c])
			memcpy(img->file + img->bitmap_foff[c], img->bitmaps[c], MiB);
}

int vhdx_gen_build(const struct vhdx_gen_opts *o, struct vhdx_gen_image **out)
{
	struct vhdx_gen_image *img = calloc(1, sizeof *img);
	uint8_t disk_id[16];
	uint64_t log_end, meta_end, bat_end, cursor, file_end;
	int ret;

	*out = NULL;
	if (!img)
		return -ENOMEM;
	img->type = o->type;
	img->seed = o->seed;
	ret = gen_geometry(img, o);
	if (ret < 0)
		goto fail;
	ret = gen_alloc(img, o->n_extra_meta);
	if (ret < 0)
		goto fail;

	/* layout of the regions */
	if (o->damage & VHDX_GEN_NO_LOG) {
		img->log_offset = 0;
		img->log_length = 0;
	} else {
		img->log_offset = o->log_offset ? o->log_offset : MiB;
		img->log_length = o->log_length ? o->log_length : (uint32_t)MiB;
	}
	log_end = max64(MiB, img->log_offset + img->log_length);
	img->meta_offset = o->meta_offset ? o->meta_offset : round_up(log_end, MiB);
	img->meta_length = o->meta_length ? o->meta_length : (uint32_t)MiB;
	meta_end = img->meta_offset + img->meta_length;
	img->bat_offset = o->bat_offset ? o->bat_offset : round_up(max64(log_end, meta_end), MiB);
	if (o->bat_length) {
		img->bat_length = o->bat_length;
	} else {
		img->bat_length = (uint32_t)round_up(img->bat_entries * 8, MiB);
	}
	if ((uint64_t)img->bat_length < img->bat_entries * 8 && o->bat_length == 0) {
		ret = gen_fail("BAT too large");
		goto fail;
	}
	bat_end = img->bat_offset + img->bat_length;
	file_end = max64(max64(log_end, meta_end), bat_end);
	for (size_t i = 0; i < o->n_extra_regions; i++)
		file_end = max64(file_end, o->extra_regions[i].file_offset + o->extra_regions[i].length);
	cursor = o->data_offset ? o->data_offset : round_up(file_end, MiB);

	ret = gen_plan_blocks(img, o, &cursor, &file_end);
	if (ret < 0)
		goto fail;
	file_end = max64(round_up(file_end, MiB), o->min_file_size);
	if (file_end > SIZE_MAX / 2) {
		ret = gen_fail("file too large");
		goto fail;
	}
	img->file_len = (size_t)file_end;
	img->file = calloc(1, img->file_len);
	if (!img->file) {
		ret = -ENOMEM;
		goto fail;
	}

	/* file identifier (2.2.1) */
	vhdx_fileid_encode(o->creator ? o->creator : "libvhdx test generator", img->file);
	if (o->damage & VHDX_GEN_BAD_FILEID_SIG)
		img->file[7] = 'E';

	/* headers (2.2.2): slot 1 newer by default, so it is the current one */
	for (int i = 0; i < 2; i++) {
		struct vhdx_header *h = &img->headers[i];
		h->seq = o->header_seq[i] ? o->header_seq[i] : (uint64_t)(i + 1);
		if (guid_zero(o->file_write_guid))
			derive_guid(o->seed, 1, h->file_write_guid);
		else
			memcpy(h->file_write_guid, o->file_write_guid, 16);
		if (guid_zero(o->data_write_guid))
			derive_guid(o->seed, 2, h->data_write_guid);
		else
			memcpy(h->data_write_guid, o->data_write_guid, 16);
		memcpy(h->log_guid, o->log_guid, 16);
		h->log_version = 0;
		h->version = 1;
		h->log_length = img->log_length;
		h->log_offset = img->log_offset;
	}
	vhdx_gen_reencode_headers(img);

	/* region tables (2.2.3): BAT and metadata, both required, then the extras */
	{
		struct vhdx_region_table *t = img->regions[0];
		size_t n = 2 + o->n_extra_regions;
		if (n > VHDX_REGION_MAX_ENTRIES) {
			ret = gen_fail("too many regions");
			goto fail;
		}
		t->entry_count = (uint32_t)n;
		memcpy(t->entries[0].guid, VHDX_GUID_BAT_REGION, 16);
		t->entries[0].file_offset = img->bat_offset;
		t->entries[0].length = img->bat_length;
		t->entries[0].required = true;
		memcpy(t->entries[1].guid, VHDX_GUID_METADATA_REGION, 16);
		t->entries[1].file_offset = img->meta_offset;
		t->entries[1].length = img->meta_length;
		t->entries[1].required = true;
		for (size_t i = 0; i < o->n_extra_regions; i++) {
			memcpy(t->entries[2 + i].guid, o->extra_regions[i].guid, 16);
			t->entries[2 + i].file_offset = o->extra_regions[i].file_offset;
			t->entries[2 + i].length = o->extra_regions[i].length;
			t->entries[2 + i].required = o->extra_regions[i].required;
		}
		memcpy(img->regions[1], t, sizeof *t);
		vhdx_gen_reencode_regions(img);
	}

	/* metadata (2.6) */
	if (guid_zero(o->disk_id))
		derive_guid(o->seed, 3, disk_id);
	else
		memcpy(disk_id, o->disk_id, 16);
	ret = gen_metadata(img, o, disk_id);
	if (ret < 0)
		goto fail;

	/* payload and bitmaps before the BAT: the BAT is what overlap damage tests patch */
	gen_payload(img);
	gen_bat(img);

	if (o->damage & VHDX_GEN_BAD_HEADER1_CRC)
		vhdx_gen_break_crc(img, VHDX_HEADER1_OFF);
	if (o->damage & VHDX_GEN_BAD_HEADER2_CRC)
		vhdx_gen_break_crc(img, VHDX_HEADER2_OFF);
	if (o->damage & VHDX_GEN_BAD_REGION1_CRC)
		vhdx_gen_break_crc(img, VHDX_REGION1_OFF);
	if (o->damage & VHDX_GEN_BAD_REGION2_CRC)
		vhdx_gen_break_crc(img, VHDX_REGION2_OFF);
	*out = img;
	return 0;
fail:
	vhdx_gen_free(img);
	return ret;
}

void vhdx_gen_reencode_headers(struct vhdx_gen_image *img)
{
	vhdx_header_encode(&img->headers[0], img->file + VHDX_HEADER1_OFF);
	vhdx_header_encode(&img->headers[1], img->file + VHDX_HEADER2_OFF);
}

void vhdx_gen_reencode_regions(struct vhdx_gen_image *img)
{
	vhdx_region_table_encode(img->regions[0], img->file + VHDX_REGION1_OFF);
	vhdx_region_table_encode(img->regions[1], img->file + VHDX_REGION2_OFF);
}

void vhdx_gen_reencode_metadata(struct vhdx_gen_image *img)
{
	vhdx_metadata_table_encode(img->meta, img->file + img->meta_offset);
}

void vhdx_gen_break_crc(struct vhdx_gen_image *img, uint64_t foff)
{
	img->file[foff + 4] ^= 0x01;
}

void vhdx_gen_set_bat(struct vhdx_gen_image *img, uint64_t idx, uint64_t entry)
{
	vhdx_put_le64(img->file + img->bat_offset + 8 * idx, entry);
}

int vhdx_gen_to_io(const struct vhdx_gen_image *img, const char *name, struct vhdx_io **out)
{
	return vhdx_io_mem_new(img->file, img->file_len, name, out);
}

int vhdx_gen_write_file(const struct vhdx_gen_image *img, const char *path)
{
	return gen_write_sparse(path, img->file, img->file_len);
}

/* Intended bitmap bit of virtual sector SECTOR. */
static bool gen_bit(const struct vhdx_gen_image *img, uint64_t sector)
{
	const uint8_t *bm = img->bitmaps[sector / CHUNK_SECTORS];
	uint64_t bit = sector % CHUNK_SECTORS;

	return bm && ((bm[bit >> 3] >> (bit & 7)) & 1);
}

enum vhdx_gen_kind vhdx_gen_kind(const struct vhdx_gen_image *img, uint64_t voff, uint64_t *run)
{
	uint64_t blk = voff / img->block_size;
	uint64_t blk_end = min64((blk + 1) * img->block_size, img->virtual_size);
	uint64_t lss = img->logical_sector_size;

	*run = blk_end - voff;
	switch (img->block_state[blk]) {
	case VHDX_BAT_FULLY_PRESENT:
		return VHDX_GEN_K_DATA;
	case VHDX_BAT_PARTIALLY_PRESENT: {
		uint64_t s = voff / lss, end_s = blk_end / lss;
		bool v = gen_bit(img, s);
		while (++s < end_s && gen_bit(img, s) == v)
			;
		*run = s * lss - voff;
		return v ? VHDX_GEN_K_DATA : VHDX_GEN_K_PARENT;
	}
	case VHDX_BAT_NOT_PRESENT:
		return img->has_parent ? VHDX_GEN_K_PARENT : VHDX_GEN_K_ZERO;
	default: /* ZERO, UNDEFINED, UNMAPPED (3 and the v0.95 value 5) */
		return VHDX_GEN_K_ZERO;
	}
}

uint64_t vhdx_gen_data_foff(const struct vhdx_gen_image *img, uint64_t voff)
{
	uint64_t run;

	if (voff >= img->virtual_size || vhdx_gen_kind(img, voff, &run) != VHDX_GEN_K_DATA)
		return 0;
	return img->block_foff[voff / img->block_size] + voff % img->block_size;
}

enum vhdx_gen_kind vhdx_gen_chain_resolve(const struct vhdx_gen_image *const *layers, size_t n, uint64_t voff,
					  unsigned *layer, uint64_t *run)
{
	uint64_t limit = UINT64_MAX;

	for (size_t i = 0;; i++) {
		enum vhdx_gen_kind k;
		uint64_t r;

		if (i >= n || voff >= layers[i]->virtual_size) {
			*run = limit;
			return VHDX_GEN_K_ZERO;
		}
		k = vhdx_gen_kind(layers[i], voff, &r);
		limit = min64(limit, r);
		if (k != VHDX_GEN_K_PARENT) {
			*layer = (unsigned)i;
			*run = limit;
			return k;
		}
	}
}

void vhdx_gen_chain_expected(const struct vhdx_gen_image *const *layers, size_t n, uint64_t voff, size_t len,
			     uint8_t *buf)
{
	while (len) {
		unsigned li = 0;
		uint64_t run;
		enum vhdx_gen_kind k = vhdx_gen_chain_resolve(layers, n, voff, &li, &run);
		size_t chunk = (size_t)min64(run, len);

		if (k == VHDX_GEN_K_DATA) {
			const struct vhdx_gen_image *l = layers[li];
			vhdx_gen_pattern(l->seed, l->block_seed[voff / l->block_size], voff, chunk, buf);
		} else {
			memset(buf, 0, chunk);
		}
		buf += chunk;
		voff += chunk;
		len -= chunk;
	}
}

void vhdx_gen_expected(const struct vhdx_gen_image *img, uint64_t voff, size_t len, uint8_t *buf)
{
	const struct vhdx_gen_image *one[1] = { img };

	vhdx_gen_chain_expected(one, 1, voff, len, buf);
}

uint8_t *vhdx_gen_mirror(const struct vhdx_gen_image *img)
{
	uint8_t *m;

	if (img->virtual_size > SIZE_MAX)
		return NULL;
	m = malloc((size_t)img->virtual_size);
	if (m)
		vhdx_gen_expected(img, 0, (size_t)img->virtual_size, m);
	return m;
}
