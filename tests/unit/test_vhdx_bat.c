/*
 * test_vhdx_bat.c - codec/vhdx_bat.c and the BAT helpers of
 * codec/vhdx_codec.h: chunk ratio, block counts, BAT entry counts for
 * fixed/dynamic and differencing disks, the interleave formulas and the
 * limits of MS-VHDX 2.4/2.5/2.6.2 (FORMAT.md 1.6).  Expected values are
 * the worked examples of FORMAT.md or computed by hand in the comments.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/vhdx_codec.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

static void test_chunk_ratio_examples(void **state)
{
	static const struct {
		uint32_t lss, bs;
		uint64_t ratio;
	} ex[] = {
		{ 512, 32 * MiB, 128 },   /* FORMAT.md 1.6 examples */
		{ 512, 2 * MiB, 2048 },
		{ 512, 1 * MiB, 4096 },
		{ 4096, 32 * MiB, 1024 },
		{ 4096, 1 * MiB, 32768 }, /* 2^23 * 4096 / 2^20 */
		{ 512, 256 * MiB, 16 },
		{ 4096, 256 * MiB, 128 },
	};
	struct vhdx_geometry g;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(ex); i++) {
		assert_ok(vhdx_geometry_init(&g, 4 * GiB, ex[i].bs, ex[i].lss, false));
		if (g.chunk_ratio != ex[i].ratio)
			fail_msg("lss %u block %u: chunk ratio %llu, expected %llu", ex[i].lss, ex[i].bs,
				 (unsigned long long)g.chunk_ratio, (unsigned long long)ex[i].ratio);
		assert_int_equal(g.block_size, ex[i].bs);
		assert_int_equal(g.logical_sector_size, ex[i].lss);
		assert_true(g.virtual_size == 4 * GiB);
	}
}

static void test_entry_counts(void **state)
{
	struct vhdx_geometry g;

	/* 10 GiB, 32 MiB blocks, 512 B sectors: 320 payload blocks, ratio 128, 3 chunks */
	assert_ok(vhdx_geometry_init(&g, 10 * GiB, 32 * MiB, 512, false));
	assert_true(g.payload_blocks == 320);
	assert_true(g.bitmap_blocks == 3);
	assert_true(g.bat_entries == 320 + 319 / 128); /* 322: two interleaved SB entries */
	assert_false(g.has_parent);
	assert_ok(vhdx_geometry_init(&g, 10 * GiB, 32 * MiB, 512, true));
	assert_true(g.bat_entries == 3 * 129);         /* 387: whole chunks */
	assert_true(g.has_parent);

	/* exactly one chunk: no trailing SB entry for a base disk, one for a child */
	assert_ok(vhdx_geometry_init(&g, 4 * GiB, 32 * MiB, 512, false));
	assert_true(g.payload_blocks == 128 && g.bitmap_blocks == 1 && g.bat_entries == 128);
	assert_ok(vhdx_geometry_init(&g, 4 * GiB, 32 * MiB, 512, true));
	assert_true(g.bat_entries == 129);
	/* one block into the second chunk */
	assert_ok(vhdx_geometry_init(&g, 4 * GiB + 32 * MiB, 32 * MiB, 512, false));
	assert_true(g.payload_blocks == 129 && g.bitmap_blocks == 2 && g.bat_entries == 130);
	assert_ok(vhdx_geometry_init(&g, 4 * GiB + 32 * MiB, 32 * MiB, 512, true));
	assert_true(g.bat_entries == 258);

	/* a one-sector disk */
	assert_ok(vhdx_geometry_init(&g, 512, MiB, 512, false));
	assert_true(g.payload_blocks == 1 && g.bitmap_blocks == 1 && g.bat_entries == 1);
	assert_ok(vhdx_geometry_init(&g, 512, MiB, 512, true));
	assert_true(g.bat_entries == 4097);

	/* 4 KiB sectors, 1 MiB blocks: ratio 32768 */
	assert_ok(vhdx_geometry_init(&g, 40 * GiB, MiB, 4096, false));
	assert_true(g.payload_blocks == 40960 && g.bitmap_blocks == 2);
	assert_true(g.bat_entries == 40960 + 1);
}

static void test_not_block_multiple(void **state)
{
	struct vhdx_geometry g;

	/* 33 MiB with 32 MiB blocks: 2 blocks, the second 1 MiB long */
	assert_ok(vhdx_geometry_init(&g, 33 * MiB, 32 * MiB, 512, false));
	assert_true(g.payload_blocks == 2 && g.bat_entries == 2);
	/* one sector more than a block */
	assert_ok(vhdx_geometry_init(&g, MiB + 512, MiB, 512, false));
	assert_true(g.payload_blocks == 2);
	/* one sector less than a block */
	assert_ok(vhdx_geometry_init(&g, MiB - 512, MiB, 512, false));
	assert_true(g.payload_blocks == 1);
	/* 4 KiB sectors */
	assert_ok(vhdx_geometry_init(&g, 3 * MiB + 4096, 2 * MiB, 4096, true));
	assert_true(g.payload_blocks == 2 && g.bitmap_blocks == 1);
	assert_true(g.chunk_ratio == 16384 && g.bat_entries == 16385);
}

static void test_limits(void **state)
{
	struct vhdx_geometry g;

	/* 64 TiB is the largest disk */
	assert_ok(vhdx_geometry_init(&g, 64 * TiB, 32 * MiB, 512, false));
	assert_true(g.payload_blocks == 2097152);
	assert_true(g.bitmap_blocks == 16384);
	assert_true(g.bat_entries == 2097152 + 16383);
	assert_ok(vhdx_geometry_init(&g, 64 * TiB, 32 * MiB, 512, true));
	assert_true(g.bat_entries == 16384 * 129);
	assert_ok(vhdx_geometry_init(&g, 64 * TiB, MiB, 4096, true));

	assert_fails(vhdx_geometry_init(&g, 64 * TiB + 512, 32 * MiB, 512, false), -EBADMSG,
		     "virtual disk size 70368744178176 is not between 1 byte and 64 TiB");
	assert_fails(vhdx_geometry_init(&g, UINT64_MAX, 32 * MiB, 512, false), -EBADMSG, "64 TiB");
	assert_fails(vhdx_geometry_init(&g, 0, 32 * MiB, 512, false), -EBADMSG, "virtual disk size 0");
	/* sector multiples */
	assert_fails(vhdx_geometry_init(&g, GiB + 1, 32 * MiB, 512, false), -EBADMSG,
		     "not a multiple of the logical sector size 512");
	assert_fails(vhdx_geometry_init(&g, GiB + 512, 32 * MiB, 4096, false), -EBADMSG,
		     "not a multiple of the logical sector size 4096");
	assert_ok(vhdx_geometry_init(&g, GiB + 512, 32 * MiB, 512, false));
	/* sector sizes */
	assert_fails(vhdx_geometry_init(&g, GiB, 32 * MiB, 1024, false), -EBADMSG,
		     "logical sector size 1024 is neither 512 nor 4096");
	assert_fails(vhdx_geometry_init(&g, GiB, 32 * MiB, 0, false), -EBADMSG, "logical sector size 0");
	/* block sizes */
	assert_fails(vhdx_geometry_init(&g, GiB, 512 * 1024, 512, false), -EBADMSG, "block size 524288");
	assert_fails(vhdx_geometry_init(&g, GiB, 512 * MiB, 512, false), -EBADMSG, "block size 536870912");
	assert_fails(vhdx_geometry_init(&g, GiB, 3 * MiB, 512, false), -EBADMSG, "block size 3145728");
	assert_fails(vhdx_geometry_init(&g, GiB, 0, 512, false), -EBADMSG, "block size 0");
	for (uint32_t bs = MiB; bs <= 256 * MiB; bs <<= 1)
		assert_ok(vhdx_geometry_init(&g, GiB, bs, 512, false));
}

/* The interleave: payload index n + n/ratio, SB index k*(ratio+1)+ratio, together a bijection. */
static void test_index_formulas(void **state)
{
	struct vhdx_geometry g;
	unsigned char *seen;

	assert_ok(vhdx_geometry_init(&g, 10 * GiB, 32 * MiB, 512, true)); /* ratio 128 */
	assert_true(vhdx_bat_payload_index(&g, 0) == 0);
	assert_true(vhdx_bat_payload_index(&g, 127) == 127);
	assert_true(vhdx_bat_payload_index(&g, 128) == 129); /* after the first SB entry */
	assert_true(vhdx_bat_payload_index(&g, 255) == 256);
	assert_true(vhdx_bat_payload_index(&g, 256) == 258);
	assert_true(vhdx_bat_bitmap_index(&g, 0) == 128);
	assert_true(vhdx_bat_bitmap_index(&g, 1) == 257);
	assert_true(vhdx_bat_bitmap_index(&g, 2) == 386);

	seen = calloc(g.bat_entries, 1);
	assert_non_null(seen);
	for (uint64_t n = 0; n < g.bitmap_blocks * g.chunk_ratio; n++)
		seen[vhdx_bat_payload_index(&g, n)]++;
	for (uint64_t k = 0; k < g.bitmap_blocks; k++)
		seen[vhdx_bat_bitmap_index(&g, k)]++;
	for (uint64_t i = 0; i < g.bat_entries; i++)
		if (seen[i] != 1)
			fail_msg("BAT index %llu used %u times", (unsigned long long)i, seen[i]);
	free(seen);

	/* base disk: every payload index is below bat_entries, the last one is the last entry */
	assert_ok(vhdx_geometry_init(&g, 10 * GiB, 32 * MiB, 512, false));
	assert_true(vhdx_bat_payload_index(&g, g.payload_blocks - 1) == g.bat_entries - 1);
	assert_ok(vhdx_geometry_init(&g, 4 * GiB + 32 * MiB, 32 * MiB, 512, false));
	assert_true(vhdx_bat_payload_index(&g, g.payload_blocks - 1) == g.bat_entries - 1);
}

static void test_entry_helpers(void **state)
{
	uint64_t e = vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 5 * MiB);

	assert_true(e == ((5ull << 20) | 6));
	assert_int_equal(vhdx_bat_state(e), VHDX_BAT_FULLY_PRESENT);
	assert_true(vhdx_bat_foff(e) == 5 * MiB);
	/* reserved bits 3-19 are not part of the offset */
	e |= 0x8;
	assert_true(vhdx_bat_foff(e) == 5 * MiB);
	assert_true((e & VHDX_BAT_RESERVED_MASK) == 0x8);
	assert_true((vhdx_bat_make(7, 5 * MiB) & VHDX_BAT_RESERVED_MASK) == 0);
	/* the largest offset: 44 bits of MiB */
	e = vhdx_bat_make(VHDX_BAT_PARTIALLY_PRESENT, 0xfffffffffff00000ull);
	assert_true(vhdx_bat_foff(e) == 0xfffffffffff00000ull);
	assert_int_equal(vhdx_bat_state(e), 7);
	/* an unaligned offset loses its low bits */
	assert_true(vhdx_bat_foff(vhdx_bat_make(VHDX_BAT_ZERO, 5 * MiB + 4096)) == 5 * MiB);
	assert_true(VHDX_BAT_RESERVED_MASK == 0xffff8ull);
}

static void test_state_names(void **state)
{
	/* by state number 0-7: payload BAT entries, then sector bitmap entries */
	static const char *const payload[8] = { "NOT_PRESENT", "UNDEFINED", "ZERO", "UNMAPPED", "INVALID",
						"UNMAPPED(v0.95)", "FULLY_PRESENT", "PARTIALLY_PRESENT" };
	static const char *const bitmap[8] = { "SB_BLOCK_NOT_PRESENT", [2] = "SB_INVALID", [6] = "SB_BLOCK_PRESENT",
					       [7] = "SB_INVALID" };

	for (unsigned st = 0; st < 8; st++) {
		assert_string_equal(vhdx_bat_state_name(st, false), payload[st]);
		if (bitmap[st])
			assert_string_equal(vhdx_bat_state_name(st, true), bitmap[st]);
	}
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_chunk_ratio_examples), cmocka_unit_test(test_entry_counts),
	  cmocka_unit_test(test_not_block_multiple),   cmocka_unit_test(test_limits),
	  cmocka_unit_test(test_index_formulas),       cmocka_unit_test(test_entry_helpers),
	  cmocka_unit_test(test_state_names))
