/*
 * test_vhdx.c - L2, the VHDX reader (format/vhdx.c through
 * vhdx_layer_open_io in format/layer.c) on images from the generator
 * (tests/lib/vhdx_gen.h) in the mem backend: geometry, map() for every
 * BAT state in base and differencing layers, sector-bitmap runs, sector
 * and block sizes, header and region-table fallback, and every open-time
 * refusal with its exact code and a message naming the structure.
 *
 * map() is compared run by run with the generator's oracle
 * (vhdx_gen_kind), which is written from FORMAT.md 1.6/1.9 and not from
 * the reader; reads go through a one-layer struct vhdx_chain and are
 * compared byte for byte with vhdx_gen_expected().
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/vhdx_gen.h"
#include "chain/chain.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "format/format.h"
#include "format/vhdx_format.h"
#include "lib/guid_ref.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* ---- helpers ---- */

static struct vhdx_gen_image *build(const struct vhdx_gen_opts *o)
{
	struct vhdx_gen_image *img = NULL;

	if (vhdx_gen_build(o, &img) < 0 || !img)
		fail_msg("the generator refused the options");
	return img;
}

static int open_img(const struct vhdx_gen_image *img, unsigned flags, struct vhdx_layer **l)
{
	struct vhdx_io *io;
	int ret = vhdx_gen_to_io(img, "gen.vhdx", &io);

	if (ret < 0)
		return ret;
	vhdx_err_clear();
	return vhdx_layer_open_io(io, "gen.vhdx", flags, l);
}

static struct vhdx_layer *open_ok(const struct vhdx_gen_image *img, unsigned flags)
{
	struct vhdx_layer *l = NULL;
	int ret = open_img(img, flags, &l);

	if (ret < 0)
		fail_msg("open failed with %d: %s", ret, vhdx_errmsg());
	return l;
}

/* Builds O into *IMG and opens it (it must open). */
static struct vhdx_layer *build_open(const struct vhdx_gen_opts *o, struct vhdx_gen_image **img)
{
	*img = build(o);
	return open_ok(*img, 0);
}

/* Builds O: opening it must fail with ERR (a negative errno) and a message that contains MSG. */
static void build_refused(const struct vhdx_gen_opts *o, int err, const char *msg)
{
	struct vhdx_gen_image *img = build(o);
	struct vhdx_layer *l = NULL;

	assert_fails(open_img(img, 0, &l), err, msg);
	vhdx_gen_free(img);
}

/* The end of a check of one image: the layer closed, the image freed. */
static void close_free(struct vhdx_layer *l, struct vhdx_gen_image *img)
{
	vhdx_layer_close(l);
	vhdx_gen_free(img);
}

static enum vhdx_gen_kind kind_of(enum vhdx_lext_kind k)
{
	switch (k) {
	case VHDX_LEXT_DATA: return VHDX_GEN_K_DATA;
	case VHDX_LEXT_ZERO: return VHDX_GEN_K_ZERO;
	case VHDX_LEXT_PARENT: return VHDX_GEN_K_PARENT;
	}
	return 0;
}

/* map(VOFF, MAXLEN) must equal the oracle's run, clipped to MAXLEN. */
static void check_map_at(struct vhdx_layer *l, const struct vhdx_gen_image *img, uint64_t voff, uint64_t maxlen)
{
	struct vhdx_layer_extent ext;
	uint64_t run, want_len;
	enum vhdx_gen_kind want = vhdx_gen_kind(img, voff, &run);
	int ret;

	memset(&ext, 0xee, sizeof ext);
	ret = l->ops->map(l, voff, maxlen, &ext);
	if (ret < 0)
		fail_msg("map(0x%llx, %llu) failed: %s", (unsigned long long)voff, (unsigned long long)maxlen,
			 vhdx_errmsg());
	want_len = run < maxlen ? run : maxlen;
	if (kind_of(ext.kind) != want || ext.len != want_len)
		fail_msg("map(0x%llx, %llu): kind %d len %llu, expected kind %d len %llu", (unsigned long long)voff,
			 (unsigned long long)maxlen, ext.kind, (unsigned long long)ext.len, want,
			 (unsigned long long)want_len);
	if (want == VHDX_GEN_K_DATA && ext.foff != vhdx_gen_data_foff(img, voff))
		fail_msg("map(0x%llx): file offset 0x%llx, expected 0x%llx", (unsigned long long)voff,
			 (unsigned long long)ext.foff, (unsigned long long)vhdx_gen_data_foff(img, voff));
}

/* Walks the whole disk with map() and checks every run. Returns the number of runs. */
static unsigned check_map_all(struct vhdx_layer *l, const struct vhdx_gen_image *img)
{
	uint64_t voff = 0;
	unsigned runs = 0;

	while (voff < img->virtual_size) {
		struct vhdx_layer_extent ext;
		check_map_at(l, img, voff, img->virtual_size - voff);
		assert_ok(l->ops->map(l, voff, img->virtual_size - voff, &ext));
		voff += ext.len;
		runs++;
	}
	return runs;
}

static int read_layer(struct vhdx_layer *l, void *buf, size_t len, uint64_t voff)
{
	struct vhdx_layer *ls[1] = { l };
	struct vhdx_chain c = { .n = 1, .layers = ls, .virtual_size = l->virtual_size };

	vhdx_err_clear();
	return vhdx_chain_read(&c, 0, buf, len, voff);
}

/* Reads the whole disk in odd-sized pieces and compares with the oracle. */
static void check_read_all(struct vhdx_layer *l, const struct vhdx_gen_image *img)
{
	size_t piece = 192 * KiB + 512;
	uint8_t *got = malloc(piece), *want = malloc(piece);

	assert_non_null(got);
	assert_non_null(want);
	for (uint64_t voff = 0; voff < img->virtual_size; voff += piece) {
		size_t n = (size_t)(img->virtual_size - voff < piece ? img->virtual_size - voff : piece);
		if (read_layer(l, got, n, voff) < 0)
			fail_msg("read at 0x%llx failed: %s", (unsigned long long)voff, vhdx_errmsg());
		vhdx_gen_expected(img, voff, n, want);
		if (memcmp(got, want, n)) {
			size_t i = 0;
			while (got[i] == want[i])
				i++;
			fail_msg("byte 0x%llx differs: 0x%02x, expected 0x%02x", (unsigned long long)(voff + i),
				 got[i], want[i]);
		}
	}
	free(got);
	free(want);
}

/* N reads and maps at pseudo-random offsets and lengths (fixed seed). */
static void check_random(struct vhdx_layer *l, const struct vhdx_gen_image *img, unsigned n)
{
	uint64_t x = 0x243f6a8885a308d3ull;
	uint8_t *got = malloc(64 * KiB), *want = malloc(64 * KiB);

	assert_non_null(got);
	assert_non_null(want);
	for (unsigned i = 0; i < n; i++) {
		uint64_t voff, len;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		voff = x % img->virtual_size;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = 1 + x % (64 * KiB);
		if (len > img->virtual_size - voff)
			len = img->virtual_size - voff;
		check_map_at(l, img, voff, len);
		if (read_layer(l, got, (size_t)len, voff) < 0)
			fail_msg("read at 0x%llx+%llu failed: %s", (unsigned long long)voff, (unsigned long long)len,
				 vhdx_errmsg());
		vhdx_gen_expected(img, voff, (size_t)len, want);
		if (memcmp(got, want, (size_t)len))
			fail_msg("read at 0x%llx+%llu differs", (unsigned long long)voff, (unsigned long long)len);
	}
	free(got);
	free(want);
}

static int meta_index(const struct vhdx_gen_image *img, const uint8_t guid[16])
{
	for (int i = 0; i < img->meta->entry_count; i++)
		if (!memcmp(img->meta->entries[i].item_id, guid, 16))
			return i;
	fail_msg("item not in the generated table");
	return -1;
}

static void meta_remove(struct vhdx_gen_image *img, const uint8_t guid[16])
{
	int i = meta_index(img, guid);

	memmove(&img->meta->entries[i], &img->meta->entries[i + 1],
		(img->meta->entry_count - i - 1) * sizeof img->meta->entries[0]);
	img->meta->entry_count--;
	vhdx_gen_reencode_metadata(img);
}

static const uint8_t *guid_of(const char *text)
{
	static uint8_t g[4][16];
	static int next;
	uint8_t *p = g[next++ % 4];

	if (vhdx_guid_parse(text, p) < 0)
		fail_msg("bad GUID text in the test");
	return p;
}

/* ---- geometry and basic reads ---- */

static void test_geometry_dynamic(void **state)
{
	struct vhdx_gen_block blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 4, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .virtual_size = 10 * MiB, .block_size = 2 * MiB, .physical_sector_size = 512,
				   .blocks = blocks, .n_blocks = 2, .creator = "unit test \xe2\x82\xac" };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	struct vhdx_state *s;

	memcpy(o.disk_id, guid_of("01234567-89ab-cdef-0123-456789abcdef"), 16);
	memcpy(o.data_write_guid, guid_of("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"), 16);
	l = build_open(&o, &img);
	assert_int_equal(l->format, VHDX_FORMAT_VHDX);
	assert_string_equal(l->ops->name, "vhdx");
	assert_int_equal(l->type, VHDX_TYPE_DYNAMIC);
	assert_true(l->virtual_size == 10 * MiB);
	assert_int_equal(l->block_size, 2 * MiB);
	assert_int_equal(l->logical_sector_size, 512);
	assert_int_equal(l->physical_sector_size, 512);
	assert_memory_equal(l->disk_id, o.disk_id, 16);
	assert_memory_equal(l->identity, o.data_write_guid, 16);
	assert_false(l->has_parent);
	assert_false(l->writable);
	assert_string_equal(l->path, "gen.vhdx");

	s = vhdx_state_of(l);
	assert_string_equal(s->fileid.creator, "unit test \xe2\x82\xac");
	assert_true(s->file_size == img->file_len);
	assert_int_equal(s->current, 1); /* slot 2 has the higher sequence number */
	assert_true(s->header_valid[0] && s->header_valid[1]);
	assert_int_equal(s->region_used, 0);
	assert_false(s->regions_differ);
	assert_true(s->bat_off == img->bat_offset && s->bat_len == img->bat_length);
	assert_true(s->meta_off == img->meta_offset && s->meta_len == img->meta_length);
	assert_int_equal(s->params.block_size, 2 * MiB);
	assert_false(s->params.leave_blocks_allocated);
	assert_true(s->geo.chunk_ratio == 2048);
	assert_true(s->geo.payload_blocks == 5);
	assert_true(s->geo.bat_entries == 5);
	assert_true(s->bat_counts[VHDX_BAT_FULLY_PRESENT] == 2);
	assert_true(s->bat_counts[VHDX_BAT_NOT_PRESENT] == 3);
	assert_false(s->log_was_dirty);

	assert_int_equal(check_map_all(l, img), 5);
	check_read_all(l, img);
	check_random(l, img, 200);
	close_free(l, img);
}

static void test_fixed(void **state)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = 6 * MiB + 4096, .seed = 3 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);

	assert_int_equal(l->type, VHDX_TYPE_FIXED);
	assert_true(vhdx_state_of(l)->params.leave_blocks_allocated);
	assert_true(vhdx_state_of(l)->bat_counts[VHDX_BAT_FULLY_PRESENT] == 7);
	/* seven blocks, the last 4 KiB long; all data */
	assert_int_equal(check_map_all(l, img), 7);
	check_map_at(l, img, 6 * MiB, 4096);
	check_read_all(l, img);
	close_free(l, img);
}

/* Blocks 0 to 5 in every payload state but PARTIALLY_PRESENT: how both state tests begin. */
#define BLOCKS_0_TO_5_IN_EVERY_STATE                                                                          \
	{ .blk = 0, .state = VHDX_BAT_NOT_PRESENT }, { .blk = 1, .state = VHDX_BAT_UNDEFINED },                  \
		{ .blk = 2, .state = VHDX_BAT_ZERO }, { .blk = 3, .state = VHDX_BAT_UNMAPPED },                   \
		{ .blk = 4, .state = VHDX_BAT_UNMAPPED_V095 }, { .blk = 5, .state = VHDX_BAT_FULLY_PRESENT }

/* Every payload state in a base disk: only FULLY_PRESENT has data, nothing falls through. */
static void test_states_base(void **state)
{
	struct vhdx_gen_block blocks[] = {
		BLOCKS_0_TO_5_IN_EVERY_STATE,
		/* non-present states with a stale file offset (Windows leaves them) */
		{ .blk = 6, .state = VHDX_BAT_ZERO, .foff = 40 * MiB },
		{ .blk = 7, .state = VHDX_BAT_UNMAPPED, .foff = 4 * MiB },
	};
	struct vhdx_gen_opts o = { .virtual_size = 8 * MiB, .blocks = blocks, .n_blocks = 8 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);
	struct vhdx_layer_extent ext;
	struct vhdx_state *s = vhdx_state_of(l);

	for (uint64_t b = 0; b < 8; b++) {
		assert_ok(l->ops->map(l, b * MiB + 512, 8 * MiB - b * MiB - 512, &ext));
		assert_int_equal(ext.kind, b == 5 ? VHDX_LEXT_DATA : VHDX_LEXT_ZERO);
		assert_true(ext.len == MiB - 512);
	}
	assert_ok(l->ops->map(l, 5 * MiB, MiB, &ext));
	assert_true(ext.foff == img->block_foff[5]);
	assert_true(s->bat_counts[0] == 1 && s->bat_counts[1] == 1 && s->bat_counts[2] == 2 &&
		    s->bat_counts[3] == 2 && s->bat_counts[5] == 1 && s->bat_counts[6] == 1);
	check_map_all(l, img);
	check_read_all(l, img);
	close_free(l, img);
}

/* The same states in a differencing layer: NOT_PRESENT falls through, ZERO and the others do not. */
static void test_states_differencing(void **state)
{
	struct vhdx_gen_run runs[] = { { 0, 8 } };
	struct vhdx_gen_block blocks[] = {
		BLOCKS_0_TO_5_IN_EVERY_STATE,
		{ .blk = 6, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 1 },
		/* bits set for a NOT_PRESENT block mean nothing */
		{ .blk = 7, .state = VHDX_BAT_NOT_PRESENT, .runs = runs, .n_runs = 1 },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 8 * MiB, .blocks = blocks,
				   .n_blocks = 8, .seed = 9 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	struct vhdx_layer_extent ext;
	static const enum vhdx_lext_kind want[8] = {
		VHDX_LEXT_PARENT, VHDX_LEXT_ZERO, VHDX_LEXT_ZERO, VHDX_LEXT_ZERO,
		VHDX_LEXT_ZERO,   VHDX_LEXT_DATA, VHDX_LEXT_DATA, VHDX_LEXT_PARENT,
	};

	memcpy(o.parent_linkage, guid_of("{0F0E0D0C-0B0A-0908-0706-050403020100}"), 16);
	l = build_open(&o, &img);
	assert_int_equal(l->type, VHDX_TYPE_DIFFERENCING);
	assert_true(l->has_parent);
	assert_memory_equal(l->parent.linkage, o.parent_linkage, 16);
	assert_int_equal(l->parent.n_paths, 1);
	assert_string_equal(l->parent.paths[0].key, "relative_path");
	assert_string_equal(l->parent.paths[0].value, "parent.vhdx");
	assert_true(vhdx_state_of(l)->sb_present == 1);
	for (uint64_t b = 0; b < 8; b++) {
		assert_ok(l->ops->map(l, b * MiB, MiB, &ext));
		if (ext.kind != want[b])
			fail_msg("block %llu (%s): kind %d, expected %d", (unsigned long long)b,
				 vhdx_bat_state_name(blocks[b].state, false), ext.kind, want[b]);
		assert_true(ext.len == (b == 6 ? 8 * 512 : MiB));
	}
	check_map_all(l, img);
	check_read_all(l, img);
	close_free(l, img);
}

/* ---- sector bitmaps ---- */

static void test_partial_runs(void **state)
{
	/* block 1: sector 0; sectors 5..20 (across bytes 0-2); 63,64 (byte boundary 7|8); 2040..2047 (to the end)
	 * block 2: sectors 0..9 (the bits run on from block 1 but the run must stop at the block boundary)
	 * block 3: all bits set (a whole-block run), block 4: no bit set */
	struct vhdx_gen_run r1[] = { { 0, 1 }, { 5, 16 }, { 63, 2 }, { 2040, 8 } };
	struct vhdx_gen_run r2[] = { { 0, 10 } };
	struct vhdx_gen_run r3[] = { { 0, 2048 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r1, .n_runs = 4 },
		{ .blk = 2, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r2, .n_runs = 1 },
		{ .blk = 3, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r3, .n_runs = 1 },
		{ .blk = 4, .state = VHDX_BAT_PARTIALLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 6 * MiB, .blocks = blocks,
				   .n_blocks = 4, .seed = 4 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);
	struct vhdx_layer_extent ext;
	uint64_t b1 = MiB, b1f = img->block_foff[1];

	/* hand-checked runs of block 1 */
	assert_ok(l->ops->map(l, b1, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 512 && ext.foff == b1f);
	assert_ok(l->ops->map(l, b1 + 512, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 4 * 512);
	assert_ok(l->ops->map(l, b1 + 5 * 512, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 16 * 512 && ext.foff == b1f + 5 * 512);
	assert_ok(l->ops->map(l, b1 + 21 * 512, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 42 * 512);
	assert_ok(l->ops->map(l, b1 + 63 * 512, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 2 * 512);
	/* the last run ends at the block boundary although block 2 starts with data */
	assert_ok(l->ops->map(l, b1 + 2040 * 512, 5 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 8 * 512 && ext.foff == b1f + 2040 * 512);
	assert_ok(l->ops->map(l, b1 + 1000 * 512, 5 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 1040 * 512);
	/* mid-sector start and a short maxlen */
	assert_ok(l->ops->map(l, b1 + 5 * 512 + 100, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 16 * 512 - 100 && ext.foff == b1f + 5 * 512 + 100);
	assert_ok(l->ops->map(l, b1 + 5 * 512 + 100, 7, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 7);
	assert_ok(l->ops->map(l, b1 + 512 + 3, 10, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 10);
	/* whole-block runs */
	assert_ok(l->ops->map(l, 3 * MiB, 3 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == MiB);
	assert_ok(l->ops->map(l, 4 * MiB + 4096, 2 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == MiB - 4096);

	check_map_all(l, img);
	check_read_all(l, img);
	check_random(l, img, 300);
	close_free(l, img);
}

/* A partially present block in the second chunk (4 GiB on with 512-byte sectors) uses the second bitmap. */
static void test_partial_second_chunk(void **state)
{
	struct vhdx_gen_run r[] = { { 0, 3 }, { 100, 1 } };
	struct vhdx_gen_run r0[] = { { 1, 1 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r0, .n_runs = 1 },
		{ .blk = 4096, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 2 },
		{ .blk = 4097, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * GiB + 2 * MiB,
				   .blocks = blocks, .n_blocks = 3 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);
	struct vhdx_layer_extent ext;

	assert_true(img->bitmap_blocks == 2 && img->bat_entries == 2 * 4097);
	assert_true(img->bitmap_foff[0] && img->bitmap_foff[1]);
	assert_true(vhdx_state_of(l)->sb_present == 2);
	assert_ok(l->ops->map(l, 4 * GiB, 2 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 3 * 512 && ext.foff == img->block_foff[4096]);
	assert_ok(l->ops->map(l, 4 * GiB + 3 * 512, 2 * MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 97 * 512);
	assert_ok(l->ops->map(l, 0, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 512);
	assert_ok(l->ops->map(l, 4 * GiB + MiB, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == MiB && ext.foff == img->block_foff[4097]);
	check_random(l, img, 100);
	for (uint64_t v = 4 * GiB - MiB; v < o.virtual_size; v += 64 * KiB)
		check_map_at(l, img, v, o.virtual_size - v);
	close_free(l, img);
}

static void test_partial_missing_bitmap(void **state)
{
	struct vhdx_gen_run r[] = { { 0, 3 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 1 },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .blocks = blocks,
				   .n_blocks = 2, .damage = VHDX_GEN_NO_BITMAP_BLOCKS };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l;
	struct vhdx_layer_extent ext;
	uint8_t buf[4096];

	/* the open succeeds: the damage only matters where the bitmap is needed */
	l = open_ok(img, 0);
	assert_true(vhdx_state_of(l)->sb_present == 0);
	assert_ok(l->ops->map(l, 0, MiB, &ext));
	assert_int_equal(ext.kind, VHDX_LEXT_DATA);
	assert_ok(read_layer(l, buf, sizeof buf, 0));
	assert_ok(read_layer(l, buf, sizeof buf, 2 * MiB));
	/* never zeros or parent data instead: an error naming the chunk and the BAT entry */
	assert_fails(l->ops->map(l, MiB, MiB, &ext), -EBADMSG,
		     "chunk 0 has partially present blocks but its sector bitmap block (BAT entry 4096) is not present");
	assert_fails(read_layer(l, buf, sizeof buf, MiB - 512), -EBADMSG, "gen.vhdx (layer 0): chunk 0");
	close_free(l, img);
}

/* ---- sector sizes, block sizes, odd virtual sizes ---- */

static void test_sector_4096(void **state)
{
	/* 4 KiB sectors: bitmap bits are 4 KiB each; 1 MiB blocks hold 256 sectors */
	struct vhdx_gen_run r[] = { { 1, 2 }, { 255, 1 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 2 },
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_ZERO },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB - 4096,
				   .logical_sector_size = 4096, .physical_sector_size = 4096, .blocks = blocks,
				   .n_blocks = 3 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);
	struct vhdx_layer_extent ext;

	assert_int_equal(l->logical_sector_size, 4096);
	assert_int_equal(l->physical_sector_size, 4096);
	assert_true(vhdx_state_of(l)->geo.chunk_ratio == 32768);
	assert_true(vhdx_state_of(l)->geo.bat_entries == 32769);
	assert_ok(l->ops->map(l, 0, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 4096);
	assert_ok(l->ops->map(l, 4096, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 8192);
	assert_ok(l->ops->map(l, 3 * 4096, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 252 * 4096);
	assert_ok(l->ops->map(l, 255 * 4096 + 1000, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 4096 - 1000);
	/* last block is 255 sectors long */
	assert_ok(l->ops->map(l, 3 * MiB, MiB - 4096, &ext));
	assert_true(ext.kind == VHDX_LEXT_ZERO && ext.len == MiB - 4096);
	check_map_all(l, img);
	check_read_all(l, img);
	close_free(l, img);

	/* a dynamic disk with 4 KiB logical and 512-byte physical sectors */
	{
		struct vhdx_gen_opts d = { .virtual_size = 3 * MiB, .logical_sector_size = 4096,
					   .physical_sector_size = 512, .blocks = blocks + 1, .n_blocks = 1 };
		l = build_open(&d, &img);
		assert_int_equal(l->logical_sector_size, 4096);
		assert_int_equal(l->physical_sector_size, 512);
		check_map_all(l, img);
		check_read_all(l, img);
		close_free(l, img);
	}
}

static void test_block_sizes(void **state)
{
	for (uint32_t bs = MiB; bs <= 256 * MiB; bs <<= 1) {
		/* two blocks, the second only 1 MiB long: block 0 ZERO (or present when small), block 1 present */
		struct vhdx_gen_block blocks[] = {
			{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT, .seed = bs >> 20 },
			{ .blk = 0, .state = bs <= 4 * MiB ? VHDX_BAT_FULLY_PRESENT : VHDX_BAT_ZERO },
		};
		struct vhdx_gen_opts o = { .virtual_size = (uint64_t)bs + MiB, .block_size = bs, .blocks = blocks,
					   .n_blocks = 2, .seed = bs };
		struct vhdx_gen_image *img = build(&o);
		struct vhdx_layer *l = open_ok(img, 0);
		struct vhdx_layer_extent ext;
		uint8_t got[4096], want[4096];

		assert_int_equal(l->block_size, bs);
		assert_true(vhdx_state_of(l)->geo.chunk_ratio == (8ull << 20) * 512 / bs);
		assert_true(vhdx_state_of(l)->geo.payload_blocks == 2);
		/* the partial last block needs only its 1 MiB in the file */
		assert_true(img->block_foff[1] + MiB == img->file_len || bs <= 4 * MiB);
		assert_ok(l->ops->map(l, bs - 512, 2 * MiB, &ext));
		assert_int_equal(ext.kind, bs <= 4 * MiB ? VHDX_LEXT_DATA : VHDX_LEXT_ZERO);
		assert_true(ext.len == 512);
		assert_ok(l->ops->map(l, bs, MiB, &ext));
		assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == MiB && ext.foff == img->block_foff[1]);
		assert_ok(l->ops->map(l, (uint64_t)bs + MiB - 4096, 4096, &ext));
		assert_true(ext.foff == img->block_foff[1] + MiB - 4096);
		assert_ok(read_layer(l, got, sizeof got, (uint64_t)bs + MiB - 4096));
		vhdx_gen_expected(img, (uint64_t)bs + MiB - 4096, sizeof want, want);
		assert_memory_equal(got, want, sizeof got);
		check_map_all(l, img);
		check_random(l, img, 20);
		if (bs <= 4 * MiB)
			check_read_all(l, img);
		close_free(l, img);
	}
}

static void test_virtual_size_not_block_multiple(void **state)
{
	struct vhdx_gen_block blocks[] = { { .blk = 3, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 3 * MiB + 3 * 512, .blocks = blocks, .n_blocks = 1 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l = open_ok(img, 0);
	struct vhdx_layer_extent ext;
	uint8_t got[1536], want[1536];

	assert_true(l->virtual_size == 3 * MiB + 1536);
	assert_true(vhdx_state_of(l)->geo.payload_blocks == 4);
	/* map() clips at the virtual size, also when asked for more */
	assert_ok(l->ops->map(l, 3 * MiB, MiB, &ext));
	assert_true(ext.kind == VHDX_LEXT_DATA && ext.len == 1536);
	assert_ok(l->ops->map(l, 3 * MiB + 1024, 4 * MiB, &ext));
	assert_true(ext.len == 512);
	assert_ok(read_layer(l, got, sizeof got, 3 * MiB));
	vhdx_gen_expected(img, 3 * MiB, sizeof want, want);
	assert_memory_equal(got, want, sizeof got);
	/* the file holds 1536 bytes of that block; the BAT check uses the short length */
	check_read_all(l, img);
	close_free(l, img);

	/* the same in a differencing layer with a partial last block */
	{
		struct vhdx_gen_run r[] = { { 1, 1 } };
		struct vhdx_gen_block b2[] = { { .blk = 3, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 1 } };
		struct vhdx_gen_opts d = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 3 * MiB + 3 * 512,
					   .blocks = b2, .n_blocks = 1 };
		l = build_open(&d, &img);
		assert_ok(l->ops->map(l, 3 * MiB + 1024, 4 * MiB, &ext));
		assert_true(ext.kind == VHDX_LEXT_PARENT && ext.len == 512);
		check_map_all(l, img);
		check_read_all(l, img);
		close_free(l, img);
	}
}

/* ---- two copies (headers, region tables): one damaged, the other used ---- */

/* What the state says of a structure's two copies. */
struct copies {
	int used;
	bool valid[2];
	const char *error[2];
};

static struct copies headers_of(const struct vhdx_state *s)
{
	struct copies c = { s->current, { s->header_valid[0], s->header_valid[1] },
			    { s->header_error[0], s->header_error[1] } };
	return c;
}

static struct copies regions_of(const struct vhdx_state *s)
{
	struct copies c = { s->region_used, { s->region_valid[0], s->region_valid[1] },
			    { s->region_error[0], s->region_error[1] } };
	return c;
}

/*
 * Builds O with DAMAGE (one copy's CRC broken) into *IMG and opens it: the
 * reader must use copy USED, mark the other invalid with an error that
 * contains WHY, and read the whole disk right.  Returns the open layer.
 */
static struct vhdx_layer *open_one_copy_bad(struct vhdx_gen_opts *o, unsigned damage,
					    struct copies (*view)(const struct vhdx_state *s), int used,
					    const char *why, struct vhdx_gen_image **img)
{
	struct vhdx_layer *l;
	struct copies c;

	o->damage = damage;
	l = build_open(o, img);
	c = view(vhdx_state_of(l));
	assert_int_equal(c.used, used);
	assert_true(c.valid[used]);
	assert_false(c.valid[1 - used]);
	assert_null(c.error[used]);
	assert_non_null(c.error[1 - used]);
	assert_non_null(strstr(c.error[1 - used], why));
	check_read_all(l, *img);
	return l;
}

/* ---- headers ---- */

static void test_header_fallback(void **state)
{
	struct vhdx_gen_block blocks[] = { { .blk = 0, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB, .blocks = blocks, .n_blocks = 1 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;

	/* the newer header (slot 2) damaged: slot 1 is used */
	l = open_one_copy_bad(&o, VHDX_GEN_BAD_HEADER2_CRC, headers_of, 0, "CRC-32C mismatch", &img);
	close_free(l, img);
	/* the older one damaged: slot 2 */
	l = open_one_copy_bad(&o, VHDX_GEN_BAD_HEADER1_CRC, headers_of, 1, "CRC-32C mismatch", &img);
	close_free(l, img);

	/* slot 1 newer: it is current, and the identity comes from it */
	o.damage = 0;
	o.header_seq[0] = 9;
	o.header_seq[1] = 3;
	img = build(&o);
	memcpy(img->headers[0].data_write_guid, guid_of("11111111-1111-4111-8111-111111111111"), 16);
	vhdx_gen_reencode_headers(img);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->current, 0);
	assert_memory_equal(l->identity, img->headers[0].data_write_guid, 16);
	vhdx_layer_close(l);
	/* ... unless its CRC is bad */
	vhdx_gen_break_crc(img, 64 * KiB);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->current, 1);
	assert_memory_equal(l->identity, img->headers[1].data_write_guid, 16);
	close_free(l, img);

	/* equal sequence numbers (Disk2VHD): fine */
	o.header_seq[0] = o.header_seq[1] = 5;
	l = build_open(&o, &img);
	assert_true(vhdx_state_of(l)->header_valid[0] && vhdx_state_of(l)->header_valid[1]);
	assert_int_equal(vhdx_state_of(l)->current, 0);
	check_read_all(l, img);
	close_free(l, img);

	/* both bad: refused, and the message says why for each slot */
	o.header_seq[0] = o.header_seq[1] = 0;
	o.damage = VHDX_GEN_BAD_HEADER1_CRC | VHDX_GEN_BAD_HEADER2_CRC;
	img = build(&o);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "gen.vhdx: no valid header: header 1 at 0x10000: header: CRC-32C mismatch");
	assert_errmsg_contains("header 2 at 0x20000: header: CRC-32C mismatch");
	/* one bad CRC and one bad signature */
	memcpy(img->file + 128 * KiB, "HEAD", 4);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "header 2 at 0x20000: header: signature is not \"head\"");
	vhdx_gen_free(img);
}

/*
 * MS-VHDX 2.2.2: a header is valid when signature and CRC check; the valid
 * one with the larger sequence number is current and "the implementation
 * MUST only use data from the current header".  So bad fields behind a
 * good CRC in the current header make the file unusable (no fallback to
 * stale data), while the same damage in the older header does not matter.
 */
static void test_header_bad_fields(void **state)
{
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l;

	/* the older header (slot 1) with a misaligned log: slot 2 is used, slot 1 reported */
	img->headers[0].log_offset = MiB + 4096;
	vhdx_gen_reencode_headers(img);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->current, 1);
	assert_false(vhdx_state_of(l)->header_valid[0]);
	assert_non_null(strstr(vhdx_state_of(l)->header_error[0], "log offset 0x101000"));
	vhdx_layer_close(l);

	/* the current header (slot 2) with a misaligned log: refused, naming the slot */
	img->headers[0].log_offset = MiB;
	img->headers[1].log_offset = MiB + 4096;
	vhdx_gen_reencode_headers(img);
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "gen.vhdx: header 2 at 0x20000 is the current one (sequence number 2) but header: log offset 0x101000");
	img->headers[1].log_offset = MiB;
	img->headers[1].log_length = MiB / 2;
	vhdx_gen_reencode_headers(img);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "header 2 at 0x20000 is the current one");
	assert_errmsg_contains("log length 0x80000");

	/* an unknown version in the current header: not supported, rather than the older header's data */
	img->headers[1].log_length = MiB;
	img->headers[1].version = 2;
	vhdx_gen_reencode_headers(img);
	assert_fails(open_img(img, 0, &l), -ENOTSUP, "header 2 at 0x20000 is the current one (sequence number 2) but header: version 2");
	img->headers[1].version = 1;
	img->headers[1].log_version = 1;
	vhdx_gen_reencode_headers(img);
	assert_fails(open_img(img, 0, &l), -ENOTSUP, "log version 1");
	/* ... and with its CRC broken it is no longer valid, so slot 1 is current */
	vhdx_gen_break_crc(img, 128 * KiB);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->current, 0);
	vhdx_layer_close(l);
	/* the older header with an unknown version does not matter */
	img->headers[0].version = 7;
	img->headers[1].log_version = 0;
	vhdx_gen_reencode_headers(img);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->current, 1);
	assert_non_null(strstr(vhdx_state_of(l)->header_error[0], "version 7"));
	close_free(l, img);
}

static void test_region_overlaps_log(void **state)
{
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB, .log_offset = 2 * MiB, .meta_offset = 3 * MiB,
				   .bat_offset = 4 * MiB };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l;

	l = open_ok(img, 0);
	assert_true(vhdx_state_of(l)->bat_off == 4 * MiB);
	vhdx_layer_close(l);
	/* move the log over the metadata region in both headers */
	img->headers[0].log_offset = img->headers[1].log_offset = 3 * MiB;
	vhdx_gen_reencode_headers(img);
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "region table entry 1 (8b7ca206-4790-4b9a-b8fe-575f050f886e) at 0x300000 overlaps the log at 0x300000");
	vhdx_gen_free(img);
}

/* ---- region tables ---- */

static void test_region_fallback(void **state)
{
	struct vhdx_gen_block blocks[] = { { .blk = 1, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB, .blocks = blocks, .n_blocks = 1 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	struct vhdx_state *s;

	l = open_one_copy_bad(&o, VHDX_GEN_BAD_REGION1_CRC, regions_of, 1, "region table: CRC-32C mismatch", &img);
	assert_false(vhdx_state_of(l)->regions_differ);
	close_free(l, img);
	l = open_one_copy_bad(&o, VHDX_GEN_BAD_REGION2_CRC, regions_of, 0, "region table: CRC-32C mismatch", &img);
	assert_false(vhdx_state_of(l)->regions_differ);
	close_free(l, img);

	o.damage = VHDX_GEN_BAD_REGION1_CRC | VHDX_GEN_BAD_REGION2_CRC;
	img = build(&o);
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "no valid region table: copy 1 at 0x30000: region table: CRC-32C mismatch");
	assert_errmsg_contains("copy 2 at 0x40000: region table: CRC-32C mismatch");
	vhdx_gen_free(img);

	/* two valid copies that differ: the first is used and the difference reported */
	o.damage = 0;
	img = build(&o);
	{
		struct vhdx_region_table *t = img->regions[1];
		memcpy(t->entries[2].guid, guid_of("12345678-9abc-4def-8123-456789abcdef"), 16);
		t->entries[2].file_offset = 100 * MiB;
		t->entries[2].length = MiB;
		t->entries[2].required = false;
		t->entry_count = 3;
	}
	vhdx_gen_reencode_regions(img);
	l = open_ok(img, 0);
	s = vhdx_state_of(l);
	assert_true(s->regions_differ);
	assert_int_equal(s->region_used, 0);
	assert_int_equal(s->regions->entry_count, 2);
	check_read_all(l, img);
	vhdx_layer_close(l);
	/* and with the first copy damaged the second one (with the extra entry) is used */
	vhdx_gen_break_crc(img, 192 * KiB);
	l = open_ok(img, 0);
	assert_int_equal(vhdx_state_of(l)->region_used, 1);
	assert_int_equal(vhdx_state_of(l)->regions->entry_count, 3);
	assert_false(vhdx_state_of(l)->regions_differ);
	close_free(l, img);
}

/* Where an unknown extra entry of ignored_until_required() sits. */
enum extra_table { IN_REGIONS, IN_METADATA };

/*
 * O's image carries an unknown extra entry in TABLE whose required flag is
 * *REQUIRED: while optional it is ignored (the table read keeps all its
 * N_ENTRIES entries), once required (set here) the image is refused with
 * ENOTSUP and REFUSAL, which names its GUID.
 */
static void ignored_until_required(struct vhdx_gen_opts *o, bool *required, enum extra_table table, uint32_t n_entries,
				   const char *refusal)
{
	struct vhdx_gen_image *img;
	struct vhdx_layer *l = build_open(o, &img);
	const struct vhdx_state *s = vhdx_state_of(l);

	assert_int_equal(table == IN_REGIONS ? s->regions->entry_count : s->meta->entry_count, n_entries);
	close_free(l, img);
	*required = true;
	build_refused(o, -ENOTSUP, refusal);
}

static void test_region_unknown(void **state)
{
	struct vhdx_gen_region extra = { .file_offset = 20 * MiB, .length = MiB, .required = false };
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB, .extra_regions = &extra, .n_extra_regions = 1 };

	memcpy(extra.guid, guid_of("12345678-9abc-4def-8123-456789abcdef"), 16);
	ignored_until_required(&o, &extra.required, IN_REGIONS, 3,
			       "gen.vhdx: region table entry 2: unknown required region 12345678-9abc-4def-8123-456789abcdef");
}

/* IMG's first region table, as the caller changed it, in both copies: the open fails with -EBADMSG and MSG. */
static void regions_refused(struct vhdx_gen_image *img, const char *msg)
{
	struct vhdx_layer *l = NULL;

	memcpy(img->regions[1], img->regions[0], sizeof *img->regions[0]);
	vhdx_gen_reencode_regions(img);
	assert_fails(open_img(img, 0, &l), -EBADMSG, msg);
	vhdx_gen_free(img);
}

static void test_region_missing(void **state)
{
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB };
	struct vhdx_gen_image *img = build(&o);

	/* the BAT or the metadata region missing */
	img->regions[0]->entries[0] = img->regions[0]->entries[1];
	img->regions[0]->entry_count = 1;
	regions_refused(img, "region table: the required BAT region is missing");
	img = build(&o);
	img->regions[0]->entry_count = 1;
	regions_refused(img, "region table: the required metadata region is missing");

	/* the metadata region past the end of the file */
	img = build(&o);
	img->regions[0]->entries[1].file_offset = 64 * MiB;
	regions_refused(img, "metadata region at 0x4000000 (+0x100000) lies past the end of the file (0x400000 bytes)");
}

/* ---- metadata ---- */

static void test_metadata_unknown_items(void **state)
{
	static const uint8_t payload[16] = { 1, 2, 3 };
	struct vhdx_gen_meta_item item = { .data = payload, .len = 16 };
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB, .extra_meta = &item, .n_extra_meta = 1 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;

	memcpy(item.guid, guid_of("deadbeef-0000-4000-8000-000000000001"), 16);
	ignored_until_required(&o, &item.is_required, IN_METADATA, 6,
			       "metadata entry 5: unknown required item deadbeef-0000-4000-8000-000000000001");
	/* a required user item is never known */
	item.is_user = true;
	build_refused(&o, -ENOTSUP, "metadata entry 5: unknown required user item deadbeef-0000-4000-8000-000000000001");
	/* Windows-internal items that are known: CHS parameters, PMEM label (required or not) */
	item.is_user = false;
	memcpy(item.guid, VHDX_GUID_CHS_PARAMETERS, 16);
	l = build_open(&o, &img);
	assert_true(vhdx_state_of(l)->has_chs);
	close_free(l, img);
	memcpy(item.guid, VHDX_GUID_PMEM_LABEL, 16);
	l = build_open(&o, &img);
	assert_true(vhdx_state_of(l)->has_pmem);
	close_free(l, img);
}

static void test_incomplete_marker(void **state)
{
	struct vhdx_gen_meta_item item = { .len = 0, .is_required = true };
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = 2 * MiB, .extra_meta = &item,
				   .n_extra_meta = 1 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;

	memcpy(item.guid, VHDX_GUID_INCOMPLETE_FILE, 16);
	img = build(&o);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "gen.vhdx: metadata: the incomplete-file marker is set");
	l = open_ok(img, VHDX_LAYER_ALLOW_INCOMPLETE);
	assert_true(vhdx_state_of(l)->has_incomplete);
	check_read_all(l, img);
	close_free(l, img);
}

static void test_metadata_missing_and_bad_values(void **state)
{
	struct vhdx_gen_opts o = { .virtual_size = 2 * MiB };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	char expect[128];
	unsigned n_required = 0;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(GUID_REFS); i++) {
		if (!GUID_REFS[i].required_item)
			continue;
		n_required++;
		img = build(&o);
		meta_remove(img, GUID_REFS[i].guid);
		snprintf(expect, sizeof expect, "gen.vhdx: metadata: required item %s is missing", GUID_REFS[i].name);
		assert_fails(open_img(img, 0, &l), -EBADMSG, expect);
		vhdx_gen_free(img);
	}
	assert_int_equal(n_required, 5);
	/* a wrong item length, with the item's file offset */
	img = build(&o);
	img->meta->entries[meta_index(img, VHDX_GUID_VIRTUAL_DISK_SIZE)].length = 4;
	vhdx_gen_reencode_metadata(img);
	snprintf(expect, sizeof expect, "metadata item Virtual Disk Size at 0x%llx: length 4, expected 8",
		 (unsigned long long)img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE]);
	assert_fails(open_img(img, 0, &l), -EBADMSG, expect);
	vhdx_gen_free(img);

	/* bad values in the items */
	img = build(&o);
	vhdx_put_le32(img->file + img->item_off[VHDX_GEN_ITEM_FILE_PARAMS], 3 * MiB);
	snprintf(expect, sizeof expect, "metadata item at 0x%llx: file parameters: block size 3145728",
		 (unsigned long long)img->item_off[VHDX_GEN_ITEM_FILE_PARAMS]);
	assert_fails(open_img(img, 0, &l), -EBADMSG, expect);
	vhdx_gen_free(img);

	img = build(&o);
	vhdx_put_le32(img->file + img->item_off[VHDX_GEN_ITEM_PHYSICAL_SS], 1024);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "physical sector size 1024 is neither 512 nor 4096");
	vhdx_gen_free(img);

	img = build(&o);
	vhdx_put_le32(img->file + img->item_off[VHDX_GEN_ITEM_LOGICAL_SS], 520);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "metadata: logical sector size 520 is neither 512 nor 4096");
	vhdx_gen_free(img);

	img = build(&o);
	vhdx_put_le64(img->file + img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE], 0);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "metadata: virtual disk size 0 is not between");
	vhdx_put_le64(img->file + img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE], (64ull << 40) + 512);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "64 TiB");
	vhdx_put_le64(img->file + img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE], 2 * MiB + 100);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "not a multiple of the logical sector size 512");
	/* a virtual size whose BAT does not fit the 1 MiB BAT region */
	vhdx_put_le64(img->file + img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE], 1ull << 40);
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT region at 0x300000: 1048576 bytes cannot hold the 1048831 entries the disk needs");
	vhdx_gen_free(img);

	/* the metadata table itself broken: the codec's message, prefixed with the region */
	img = build(&o);
	img->file[img->meta_offset] = 'M';
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "metadata region at 0x200000: metadata table: signature is not \"metadata\"");
	vhdx_gen_free(img);
	img = build(&o);
	img->meta->entries[1].offset = 2 * MiB;
	vhdx_gen_reencode_metadata(img);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "metadata region at 0x200000: metadata entry 1");
	assert_errmsg_contains("past the metadata region");
	vhdx_gen_free(img);
}

static void test_parent_locator_errors(void **state)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 2 * MiB };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	const char *keys[] = { "relative_path" };
	const char *values[] = { "p.vhdx" };
	static const uint8_t junk[40] = { 1, 2, 3 };

	/* no locator item at all */
	img = build(&o);
	meta_remove(img, VHDX_GUID_PARENT_LOCATOR);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "metadata: differencing disk without a parent locator item");
	vhdx_gen_free(img);
	/* no parent_linkage */
	o.locator_keys = keys;
	o.locator_values = values;
	o.locator_n = 1;
	build_refused(&o, -EBADMSG, "gen.vhdx: parent locator: the required parent_linkage key is missing");
	/* a wrong locator type */
	o.locator_n = 0;
	o.locator_raw = junk;
	o.locator_raw_len = sizeof junk;
	build_refused(&o, -ENOTSUP, "parent locator: locator type 00030201-0000-0000-0000-000000000000");
	/* and several paths, with all-zero parent_linkage2 treated as absent */
	{
		const char *k[] = { "absolute_win32_path", "parent_linkage2", "relative_path", "parent_linkage" };
		const char *v[] = { "C:\\a\\p.vhdx", "{00000000-0000-0000-0000-000000000000}", ".\\p.vhdx",
				    "{00112233-4455-6677-8899-aabbccddeeff}" };
		o.locator_raw = NULL;
		o.locator_keys = k;
		o.locator_values = v;
		o.locator_n = 4;
		l = build_open(&o, &img);
		assert_false(l->parent.has_linkage2);
		assert_memory_equal(l->parent.linkage, guid_of("00112233-4455-6677-8899-aabbccddeeff"), 16);
		assert_int_equal(l->parent.n_paths, 2);
		assert_string_equal(l->parent.paths[0].value, ".\\p.vhdx");
		assert_string_equal(l->parent.paths[1].value, "C:\\a\\p.vhdx");
		close_free(l, img);
	}
}

/* ---- BAT ---- */

static void test_bat_errors(void **state)
{
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .virtual_size = 4 * MiB, .blocks = blocks, .n_blocks = 2 };
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;

	/* past the end of the file */
	img = build(&o);
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 100 * MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT entry 1 at 0x300008: payload block at file offset 0x6400000 (+0x100000) is past the end of the file (0x600000 bytes)");
	vhdx_gen_free(img);
	/* the file cut short by half a block */
	img = build(&o);
	img->file_len -= MiB / 2;
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 1 at 0x300008: payload block at file offset 0x500000");
	assert_errmsg_contains("past the end of the file (0x580000 bytes)");
	vhdx_gen_free(img);
	/* reserved bits */
	img = build(&o);
	vhdx_gen_set_bat(img, 0, img->bat[0] | (1ull << 3));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 0 at 0x300000: reserved bits set (0x000000000040000e)");
	vhdx_gen_set_bat(img, 0, img->bat[0] | (1ull << 19));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 0 at 0x300000: reserved bits set");
	vhdx_gen_free(img);
	/* invalid states */
	img = build(&o);
	vhdx_gen_set_bat(img, 2, 4);
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT entry 2 (block 2) at 0x300010: state 4 is not valid for a non-differencing disk");
	vhdx_gen_set_bat(img, 2, vhdx_bat_make(VHDX_BAT_PARTIALLY_PRESENT, 4 * MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 2 (block 2) at 0x300010: state 7 is not valid");
	vhdx_gen_free(img);
	/* two blocks at one offset */
	img = build(&o);
	vhdx_gen_set_bat(img, 1, img->bat[0]);
	assert_fails(open_img(img, 0, &l), -EBADMSG, "block at file offset 0x400000 overlaps the block of BAT entry");
	vhdx_gen_free(img);
	/* 2 MiB blocks overlapping by one megabyte */
	o.block_size = 2 * MiB;
	img = build(&o);
	assert_true(img->block_foff[0] == 4 * MiB && img->block_foff[1] == 6 * MiB);
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 5 * MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT entry 1 at 0x300008: block at file offset 0x500000 overlaps the block of BAT entry 0");
	/* touching blocks are fine: block 1 right after block 0 ... after moving block 0 down */
	vhdx_gen_set_bat(img, 0, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 4 * MiB));
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 6 * MiB));
	l = open_ok(img, 0);
	close_free(l, img);
	o.block_size = 0;
	/* a block over the log, over the metadata region, inside the first megabyte */
	img = build(&o);
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 1 at 0x300008: block at 0x100000 overlaps the log");
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 2 * MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT entry 1 at 0x300008: block at 0x200000 overlaps region table entry 1");
	vhdx_gen_set_bat(img, 1, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 0));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 1 at 0x300008: payload block at file offset 0x0");
	vhdx_gen_free(img);
	/* the BAT region past the end of the file */
	img = build(&o);
	img->file_len = 3 * MiB;
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT region at 0x300000 lies past the end of the file");
	vhdx_gen_free(img);
}

static void test_bat_errors_differencing(void **state)
{
	struct vhdx_gen_run r[] = { { 0, 1 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 1 },
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .blocks = blocks,
				   .n_blocks = 2 };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l;
	uint64_t sbi = vhdx_gen_bitmap_index(img, 0);

	assert_true(sbi == 4096);
	/* a sector-bitmap entry with a payload state */
	vhdx_gen_set_bat(img, sbi, vhdx_bat_make(VHDX_BAT_ZERO, 0));
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "BAT entry 4096 (sector bitmap of chunk 0) at 0x308000: invalid state 2");
	/* the bitmap block past the end of the file */
	vhdx_gen_set_bat(img, sbi, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 64 * MiB));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "BAT entry 4096 at 0x308000: sector bitmap block at file offset 0x4000000");
	/* the bitmap block over a payload block */
	vhdx_gen_set_bat(img, sbi, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, img->block_foff[1]));
	assert_fails(open_img(img, 0, &l), -EBADMSG, "overlaps the block of BAT entry");
	/* the padding entries past the last block of the chunk are not checked */
	vhdx_gen_set_bat(img, sbi, img->bat[sbi]);
	vhdx_gen_set_bat(img, 100, 0xdeadbeef);
	l = open_ok(img, 0);
	check_map_all(l, img);
	close_free(l, img);
}

/* ---- detection ---- */

static void test_not_vhdx(void **state)
{
	struct vhdx_gen_opts o = { .virtual_size = MiB, .damage = VHDX_GEN_BAD_FILEID_SIG };
	struct vhdx_gen_image *img = build(&o);
	struct vhdx_layer *l;
	struct vhdx_io *io;
	static const uint8_t zeros[4096];

	assert_fails(open_img(img, 0, &l), -EBADMSG, "gen.vhdx: not a VHDX or VHD image");
	assert_errmsg_contains("file is 4194304 bytes");
	vhdx_gen_free(img);
	assert_ok(vhdx_io_mem_new(zeros, sizeof zeros, "z", &io));
	assert_fails(vhdx_layer_open_io(io, "zeros.img", 0, &l), -EBADMSG, "zeros.img: not a VHDX or VHD image");
	assert_ok(vhdx_io_mem_new(NULL, 0, "e", &io));
	assert_fails(vhdx_layer_open_io(io, "empty.img", 0, &l), -EBADMSG, "file is 0 bytes");
	/* a file cut inside the identifier */
	img = build(&(struct vhdx_gen_opts){ .virtual_size = MiB });
	img->file_len = 60 * KiB;
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "gen.vhdx: file identifier at offset 0x0 (+65536 bytes) lies past the end of the file");
	/* cut after the first header: header 1 is used, then neither region table can be read */
	img->file_len = 100 * KiB;
	assert_fails(open_img(img, 0, &l), -EBADMSG,
		     "no valid region table: copy 1 at 0x30000: gen.vhdx: region table at offset 0x30000 (+65536 bytes) lies past the end of the file");
	vhdx_gen_free(img);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_geometry_dynamic),
	  cmocka_unit_test(test_fixed),
	  cmocka_unit_test(test_states_base),
	  cmocka_unit_test(test_states_differencing),
	  cmocka_unit_test(test_partial_runs),
	  cmocka_unit_test(test_partial_second_chunk),
	  cmocka_unit_test(test_partial_missing_bitmap),
	  cmocka_unit_test(test_sector_4096),
	  cmocka_unit_test(test_block_sizes),
	  cmocka_unit_test(test_virtual_size_not_block_multiple),
	  cmocka_unit_test(test_header_fallback),
	  cmocka_unit_test(test_header_bad_fields),
	  cmocka_unit_test(test_region_overlaps_log),
	  cmocka_unit_test(test_region_fallback),
	  cmocka_unit_test(test_region_unknown),
	  cmocka_unit_test(test_region_missing),
	  cmocka_unit_test(test_metadata_unknown_items),
	  cmocka_unit_test(test_incomplete_marker),
	  cmocka_unit_test(test_metadata_missing_and_bad_values),
	  cmocka_unit_test(test_parent_locator_errors),
	  cmocka_unit_test(test_bat_errors),
	  cmocka_unit_test(test_bat_errors_differencing),
	  cmocka_unit_test(test_not_vhdx))
