/*
 * test_chain.c - L3, reads and maps through a layer stack (chain/chain.c:
 * vhdx_chain_read, vhdx_chain_map) on chains assembled by hand from
 * generated layers (no parent lookup involved): PARENT runs fall through
 * to the layer below, ZERO runs do not, a smaller parent reads as zeros
 * past its end, and the chain map coalesces adjacent runs of one kind,
 * layer and contiguous file offsets.  Expected bytes and extents come from
 * the generator's oracle (vhdx_gen_chain_expected / _resolve).
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/vhdx_gen.h"
#include "chain/chain.h"
#include "format/format.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

struct test_chain {
	struct vhdx_gen_image *img[4];
	struct vhdx_layer *layer[4];
	struct vhdx_chain c;
};

static void chain_add(struct test_chain *t, const struct vhdx_gen_opts *o)
{
	unsigned i = t->c.n;
	struct vhdx_io *io;
	char name[32];

	snprintf(name, sizeof name, "layer%u.vhdx", i);
	assert_ok(vhdx_gen_build(o, &t->img[i]));
	assert_ok(vhdx_gen_to_io(t->img[i], name, &io));
	assert_ok(vhdx_layer_open_io(io, name, 0, &t->layer[i]));
	t->c.layers = t->layer;
	t->c.n = i + 1;
	if (i == 0)
		t->c.virtual_size = t->layer[0]->virtual_size;
}

static void chain_free(struct test_chain *t)
{
	for (unsigned i = 0; i < t->c.n; i++) {
		vhdx_layer_close(t->layer[i]);
		vhdx_gen_free(t->img[i]);
	}
	memset(t, 0, sizeof *t);
}

/* Reads [VOFF, VOFF+LEN) as seen from layer FROM and compares with the oracle. */
static void check_read(struct test_chain *t, unsigned from, uint64_t voff, size_t len)
{
	uint8_t *got = malloc(len ? len : 1), *want = malloc(len ? len : 1);
	const struct vhdx_gen_image *imgs[4];
	int ret;

	assert_non_null(got);
	assert_non_null(want);
	for (unsigned i = from; i < t->c.n; i++)
		imgs[i - from] = t->img[i];
	vhdx_err_clear();
	ret = vhdx_chain_read(&t->c, from, got, len, voff);
	if (ret < 0)
		fail_msg("read at 0x%llx failed: %s", (unsigned long long)voff, vhdx_errmsg());
	vhdx_gen_chain_expected(imgs, t->c.n - from, voff, len, want);
	if (memcmp(got, want, len)) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		fail_msg("from layer %u: byte 0x%llx differs: 0x%02x, expected 0x%02x", from,
			 (unsigned long long)(voff + i), got[i], want[i]);
	}
	free(got);
	free(want);
}

static void check_read_all(struct test_chain *t, unsigned from)
{
	const uint64_t piece = 320 * KiB + 1536;

	for (uint64_t v = 0; v < t->c.virtual_size; v += piece)
		check_read(t, from, v, (size_t)(t->c.virtual_size - v < piece ? t->c.virtual_size - v : piece));
}

/*
 * The extents vhdx_chain_map must return, built here from the oracle's
 * runs: adjacent runs merge when kind, layer and (for data) file offsets
 * continue.  Compares the whole walk from offset 0.
 */
static unsigned check_map_walk(struct test_chain *t)
{
	const struct vhdx_gen_image *imgs[4];
	uint64_t size = t->c.virtual_size, voff = 0;
	unsigned n = 0;

	for (unsigned i = 0; i < t->c.n; i++)
		imgs[i] = t->img[i];
	while (voff < size) {
		struct vhdx_extent got, want = { .voff = voff };
		uint64_t at = voff;

		/* expected: merge oracle runs */
		for (;;) {
			unsigned layer = 0;
			uint64_t run, foff = 0;
			enum vhdx_gen_kind k = vhdx_gen_chain_resolve(imgs, t->c.n, at, &layer, &run);
			enum vhdx_extent_kind ek = k == VHDX_GEN_K_DATA ? VHDX_EXTENT_DATA : VHDX_EXTENT_ZERO;
			if (run > size - at)
				run = size - at;
			if (k == VHDX_GEN_K_DATA)
				foff = vhdx_gen_data_foff(imgs[layer], at);
			if (at == voff) {
				want.kind = ek;
				want.layer = k == VHDX_GEN_K_DATA ? layer : 0;
				want.foff = foff;
			} else if (ek != want.kind ||
				   (ek == VHDX_EXTENT_DATA && (layer != want.layer || foff != want.foff + want.len))) {
				break;
			}
			want.len += run;
			at += run;
			if (at >= size)
				break;
		}
		vhdx_err_clear();
		if (vhdx_chain_map(&t->c, voff, size - voff, &got) < 0)
			fail_msg("map at 0x%llx failed: %s", (unsigned long long)voff, vhdx_errmsg());
		if (got.voff != want.voff || got.len != want.len || got.kind != want.kind ||
		    (want.kind == VHDX_EXTENT_DATA && (got.layer != want.layer || got.foff != want.foff)))
			fail_msg("extent at 0x%llx: kind %d layer %u foff 0x%llx len 0x%llx; expected kind %d layer %u foff 0x%llx len 0x%llx",
				 (unsigned long long)voff, got.kind, got.layer, (unsigned long long)got.foff,
				 (unsigned long long)got.len, want.kind, want.layer, (unsigned long long)want.foff,
				 (unsigned long long)want.len);
		voff += got.len;
		n++;
	}
	return n;
}

/*
 * Parent (dynamic, 8 x 1 MiB): blocks 0-3 present (contiguous in the file), 4 ZERO, 5 present.
 * Child (differencing): block 0 NOT_PRESENT, 1 ZERO, 2 PARTIALLY_PRESENT, 3 FULLY_PRESENT, 6 UNMAPPED.
 */
static void build_two(struct test_chain *t)
{
	static const struct vhdx_gen_run runs[] = { { 0, 4 }, { 100, 1 }, { 1024, 1024 } };
	static const struct vhdx_gen_block child_blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_ZERO },
		{ .blk = 2, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 3 },
		{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 6, .state = VHDX_BAT_UNMAPPED },
	};
	static const struct vhdx_gen_block parent_blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT }, { .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT }, { .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 4, .state = VHDX_BAT_ZERO },          { .blk = 5, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 6, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts child = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 8 * MiB, .seed = 20,
				       .blocks = child_blocks, .n_blocks = 4 };
	struct vhdx_gen_opts parent = { .virtual_size = 8 * MiB, .seed = 10, .blocks = parent_blocks,
					.n_blocks = 7 };

	memset(t, 0, sizeof *t);
	chain_add(t, &child);
	chain_add(t, &parent);
}

static void test_read_fall_through(void **state)
{
	struct test_chain t;
	uint8_t buf[4096], pat[4096];

	build_two(&t);
	/* block 0: child NOT_PRESENT -> the parent's bytes */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, 4096));
	vhdx_gen_pattern(10, 1, 4096, sizeof pat, pat);
	assert_memory_equal(buf, pat, sizeof buf);
	/* block 1: child ZERO over a present parent block -> zeros */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, MiB + 8192));
	memset(pat, 0, sizeof pat);
	assert_memory_equal(buf, pat, sizeof buf);
	/* ... while the parent alone has data there */
	assert_ok(vhdx_chain_read(&t.c, 1, buf, sizeof buf, MiB + 8192));
	vhdx_gen_pattern(10, 2, MiB + 8192, sizeof pat, pat);
	assert_memory_equal(buf, pat, sizeof buf);
	/* block 2: sectors 0-3 the child's, 4-99 the parent's, 100 the child's */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, 2 * MiB));
	vhdx_gen_pattern(20, 3, 2 * MiB, 2048, pat);
	vhdx_gen_pattern(10, 3, 2 * MiB + 2048, 2048, pat + 2048);
	assert_memory_equal(buf, pat, sizeof buf);
	assert_ok(vhdx_chain_read(&t.c, 0, buf, 1024, 2 * MiB + 99 * 512));
	vhdx_gen_pattern(10, 3, 2 * MiB + 99 * 512, 512, pat);
	vhdx_gen_pattern(20, 3, 2 * MiB + 100 * 512, 512, pat + 512);
	assert_memory_equal(buf, pat, 1024);
	/* block 6: child UNMAPPED -> zeros, not the parent */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, 6 * MiB));
	memset(pat, 0, sizeof pat);
	assert_memory_equal(buf, pat, sizeof buf);
	/* everything, from the leaf and from the parent */
	check_read_all(&t, 0);
	check_read_all(&t, 1);
	/* a read that crosses several runs and blocks in one call */
	check_read(&t, 0, MiB - 1000, 3 * MiB + 5000);
	chain_free(&t);
}

static void test_read_without_parent(void **state)
{
	struct test_chain t;

	build_two(&t);
	/* the child alone (as with VHDX_OPEN_NO_PARENT): parent runs read zeros */
	t.c.n = 1;
	check_read_all(&t, 0);
	t.c.n = 2;
	/* starting below the base: zeros */
	{
		uint8_t buf[512], z[512] = { 0 };
		memset(buf, 0xaa, sizeof buf);
		assert_ok(vhdx_chain_read(&t.c, 2, buf, sizeof buf, 0));
		assert_memory_equal(buf, z, sizeof buf);
	}
	chain_free(&t);
}

static void test_smaller_parent(void **state)
{
	static const struct vhdx_gen_block pb[] = { { .blk = 1, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts child = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = 2 };
	struct vhdx_gen_opts parent = { .virtual_size = 2 * MiB - 4096, .seed = 1, .blocks = pb, .n_blocks = 1 };
	struct test_chain t;
	uint8_t buf[8192];

	memset(&t, 0, sizeof t);
	chain_add(&t, &child);
	chain_add(&t, &parent);
	/* across the parent's end: its last bytes, then zeros */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, 2 * MiB - 8192));
	{
		uint8_t want[8192] = { 0 };
		vhdx_gen_pattern(1, 2, 2 * MiB - 8192, 4096, want);
		assert_memory_equal(buf, want, sizeof buf);
	}
	check_read_all(&t, 0);
	check_map_walk(&t);
	chain_free(&t);
}

static void test_map_coalesces(void **state)
{
	struct test_chain t;
	struct vhdx_extent e;

	build_two(&t);
	/* block 0 comes from the parent; the parent's blocks 0 and 1 are adjacent in its file, but the
	 * child's ZERO block 1 ends the extent at 1 MiB */
	assert_ok(vhdx_chain_map(&t.c, 0, 8 * MiB, &e));
	assert_true(e.voff == 0 && e.len == MiB && e.kind == VHDX_EXTENT_DATA && e.layer == 1);
	assert_true(e.foff == t.img[1]->block_foff[0]);
	/* ZERO from the child's ZERO block */
	assert_ok(vhdx_chain_map(&t.c, MiB, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == MiB);
	/* the child's partial block: child sectors 0-3, then the parent for sectors 4-99 */
	assert_ok(vhdx_chain_map(&t.c, 2 * MiB, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.layer == 0 && e.len == 2048);
	assert_ok(vhdx_chain_map(&t.c, 2 * MiB + 2048, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.layer == 1 && e.len == 96 * 512);
	assert_true(e.foff == t.img[1]->block_foff[2] + 2048);
	/* the child's sectors 1024-2047 of block 2 and its block 3 are adjacent in its file:
	 * one extent of 1.5 MiB */
	assert_true(t.img[0]->block_foff[3] == t.img[0]->block_foff[2] + MiB);
	assert_ok(vhdx_chain_map(&t.c, 2 * MiB + 1024 * 512, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.layer == 0 && e.len == MiB + MiB / 2);
	/* parent ZERO (block 4), then the parent's block 5 */
	assert_ok(vhdx_chain_map(&t.c, 4 * MiB, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == MiB);
	/* child UNMAPPED (6) and NOT_PRESENT over nothing (7): one zero extent to the end */
	assert_ok(vhdx_chain_map(&t.c, 6 * MiB, 8 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == 2 * MiB && e.voff == 6 * MiB);
	/* LEN clips the extent */
	assert_ok(vhdx_chain_map(&t.c, 6 * MiB + 10, 100, &e));
	assert_true(e.len == 100);
	/* the full walk against the oracle */
	check_map_walk(&t);
	/* errors */
	assert_fails(vhdx_chain_map(&t.c, 8 * MiB, 1, &e), -EINVAL, "offset 8388608 is at or past the end of the disk");
	assert_fails(vhdx_chain_map(&t.c, 0, 0, &e), -EINVAL, "zero-length map request");
	chain_free(&t);
}

static void test_map_zero_runs_merge(void **state)
{
	/* a base disk: NOT_PRESENT, ZERO, UNDEFINED, UNMAPPED, v0.95 UNMAPPED in a row are one zero extent,
	 * and a fixed run of contiguous blocks one data extent */
	static const struct vhdx_gen_block b[] = {
		{ .blk = 1, .state = VHDX_BAT_ZERO },      { .blk = 2, .state = VHDX_BAT_UNDEFINED },
		{ .blk = 3, .state = VHDX_BAT_UNMAPPED },  { .blk = 4, .state = VHDX_BAT_UNMAPPED_V095 },
		{ .blk = 5, .state = VHDX_BAT_FULLY_PRESENT }, { .blk = 6, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 7, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 9, .state = VHDX_BAT_FULLY_PRESENT }, /* next in the file, not next virtually */
	};
	struct vhdx_gen_opts o = { .virtual_size = 10 * MiB, .blocks = b, .n_blocks = 8 };
	struct test_chain t;
	struct vhdx_extent e;

	memset(&t, 0, sizeof t);
	chain_add(&t, &o);
	assert_ok(vhdx_chain_map(&t.c, 0, 10 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == 5 * MiB);
	assert_ok(vhdx_chain_map(&t.c, 5 * MiB, 10 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.len == 3 * MiB && e.layer == 0);
	assert_true(e.foff == t.img[0]->block_foff[5]);
	assert_ok(vhdx_chain_map(&t.c, 8 * MiB, 10 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == MiB);
	assert_ok(vhdx_chain_map(&t.c, 9 * MiB, 10 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.len == MiB);
	assert_int_equal(check_map_walk(&t), 4);
	chain_free(&t);
}

static void test_three_layers(void **state)
{
	static const struct vhdx_gen_run r_mid[] = { { 0, 1024 } };
	static const struct vhdx_gen_run r_top[] = { { 512, 1024 } };
	static const struct vhdx_gen_block top[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r_top, .n_runs = 1 },
		{ .blk = 2, .state = VHDX_BAT_ZERO },
	};
	static const struct vhdx_gen_block mid[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r_mid, .n_runs = 1 },
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o0 = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = 30,
				    .blocks = top, .n_blocks = 2 };
	struct vhdx_gen_opts o1 = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = 20,
				    .blocks = mid, .n_blocks = 2 };
	struct vhdx_gen_opts o2 = { .type = VHDX_GEN_FIXED, .virtual_size = 4 * MiB, .seed = 10 };
	struct test_chain t;
	struct vhdx_extent e;

	memset(&t, 0, sizeof t);
	chain_add(&t, &o0);
	chain_add(&t, &o1);
	chain_add(&t, &o2);
	/* block 0: sectors 0-511 from the middle, 512-1535 from the top, 1536-2047 from the base */
	assert_ok(vhdx_chain_map(&t.c, 0, 4 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.layer == 1 && e.len == 512 * 512);
	assert_ok(vhdx_chain_map(&t.c, 512 * 512, 4 * MiB, &e));
	assert_true(e.layer == 0 && e.len == 1024 * 512);
	assert_ok(vhdx_chain_map(&t.c, 1536 * 512, 4 * MiB, &e));
	assert_true(e.layer == 2 && e.len == 512 * 512 && e.foff == t.img[2]->block_foff[0] + 1536 * 512);
	/* block 2 ZERO at the top hides the fixed base */
	assert_ok(vhdx_chain_map(&t.c, 2 * MiB, 4 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_ZERO && e.len == MiB);
	/* block 3 from the base */
	assert_ok(vhdx_chain_map(&t.c, 3 * MiB, 4 * MiB, &e));
	assert_true(e.kind == VHDX_EXTENT_DATA && e.layer == 2 && e.len == MiB);
	check_map_walk(&t);
	check_read_all(&t, 0);
	check_read_all(&t, 1);
	check_read_all(&t, 2);
	chain_free(&t);
}

static void test_error_context(void **state)
{
	struct vhdx_gen_run r[] = { { 0, 1 } };
	struct vhdx_gen_block cb[] = { { .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = r, .n_runs = 1 } };
	struct vhdx_gen_opts child = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 2 * MiB, .blocks = cb,
				       .n_blocks = 1, .damage = VHDX_GEN_NO_BITMAP_BLOCKS };
	struct vhdx_gen_opts parent = { .type = VHDX_GEN_FIXED, .virtual_size = 2 * MiB };
	struct test_chain t;
	struct vhdx_extent e;
	uint8_t buf[1024];

	memset(&t, 0, sizeof t);
	chain_add(&t, &child);
	chain_add(&t, &parent);
	/* the error names the layer's file and position in the chain */
	assert_fails(vhdx_chain_read(&t.c, 0, buf, sizeof buf, MiB - 512), -EBADMSG,
		     "layer0.vhdx (layer 0): chunk 0 has partially present blocks");
	assert_fails(vhdx_chain_map(&t.c, MiB, 512, &e), -EBADMSG, "layer0.vhdx (layer 0): chunk 0");
	/* the part before the damaged block still reads */
	assert_ok(vhdx_chain_read(&t.c, 0, buf, sizeof buf, 0));
	chain_free(&t);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_read_fall_through), cmocka_unit_test(test_read_without_parent),
	  cmocka_unit_test(test_smaller_parent),    cmocka_unit_test(test_map_coalesces),
	  cmocka_unit_test(test_map_zero_runs_merge), cmocka_unit_test(test_three_layers),
	  cmocka_unit_test(test_error_context))
