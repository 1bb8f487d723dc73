/*
 * test_vhdx_region.c - codec/vhdx_region.c: the region table (MS-VHDX
 * 2.2.3, FORMAT.md 1.4).  Tables are laid out by hand, the CRC filled in,
 * and each rule broken in turn.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/unit_codec.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"

#define MiB (1024u * 1024)

UNIT_CODEC_FIXTURE(VHDX_REGION_SIZE, struct vhdx_region_table)

static void put_entry(uint32_t i, const uint8_t guid[16], uint64_t off, uint32_t len, uint32_t flags)
{
	unit_put_guid_entry(buf + 16 + 32 * i, guid, off, 8, len, flags);
}

static void seal(uint32_t count)
{
	memcpy(buf, "regi", 4);
	vhdx_put_le32(buf + 8, count);
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, VHDX_REGION_SIZE));
}

/* The usual table: BAT at 3 MiB (1 MiB), metadata at 2 MiB (1 MiB). */
static void make_good(void)
{
	memset(buf, 0, VHDX_REGION_SIZE);
	put_entry(0, VHDX_GUID_BAT_REGION, 3 * MiB, MiB, 1);
	put_entry(1, VHDX_GUID_METADATA_REGION, 2 * MiB, MiB, 1);
	seal(2);
}

static void test_decode_good(void **state)
{
	uint8_t other[16];

	make_good();
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
	assert_int_equal(tab->entry_count, 2);
	assert_int_equal(tab->checksum, vhdx_get_le32(buf + 4));
	assert_memory_equal(tab->entries[0].guid, VHDX_GUID_BAT_REGION, 16);
	assert_true(tab->entries[0].file_offset == 3 * MiB);
	assert_int_equal(tab->entries[0].length, MiB);
	assert_true(tab->entries[0].required);
	assert_memory_equal(tab->entries[1].guid, VHDX_GUID_METADATA_REGION, 16);
	assert_true(tab->entries[1].file_offset == 2 * MiB);

	/* Required is bit 0 only; a non-required extra region decodes */
	assert_ok(vhdx_guid_parse("11111111-2222-3333-4444-555555555555", other));
	put_entry(2, other, 10 * MiB, 2 * MiB, 0);
	seal(3);
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
	assert_int_equal(tab->entry_count, 3);
	assert_false(tab->entries[2].required);

	/* an empty table decodes (the reader then misses BAT/metadata) */
	memset(buf, 0, VHDX_REGION_SIZE);
	seal(0);
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
	assert_int_equal(tab->entry_count, 0);
}

static void test_find(void **state)
{
	uint8_t other[16];

	make_good();
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
	assert_ptr_equal(vhdx_region_find(tab, VHDX_GUID_BAT_REGION), &tab->entries[0]);
	assert_ptr_equal(vhdx_region_find(tab, VHDX_GUID_METADATA_REGION), &tab->entries[1]);
	assert_ok(vhdx_guid_parse("11111111-2222-3333-4444-555555555555", other));
	assert_null(vhdx_region_find(tab, other));
}

static void test_bad_header(void **state)
{
	make_good();
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE - 1, tab), -EBADMSG, "too short");
	buf[3] = 'I';
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, VHDX_REGION_SIZE));
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "signature");
	make_good();
	buf[VHDX_REGION_SIZE - 1] ^= 1; /* a byte past the entries is covered by the CRC too */
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "CRC-32C mismatch");
}

static void test_count(void **state)
{
	make_good();
	seal(2048);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "entry count 2048 exceeds 2047");
	assert_int_equal(tab->entry_count, 0);
	seal(0xffffffffu);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "entry count 4294967295");
}

static void test_max_count(void **state)
{
	/* 2047 distinct, non-overlapping, non-required regions fill the table exactly */
	memset(buf, 0, VHDX_REGION_SIZE);
	for (uint32_t i = 0; i < 2047; i++) {
		uint8_t g[16] = { 0 };
		vhdx_put_le32(g, i + 1);
		put_entry(i, g, (uint64_t)(i + 1) * MiB, MiB, 0);
	}
	seal(2047);
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
	assert_int_equal(tab->entry_count, 2047);
	assert_true(tab->entries[2046].file_offset == 2047ull * MiB);
}

static void test_alignment(void **state)
{
	make_good();
	put_entry(1, VHDX_GUID_METADATA_REGION, 2 * MiB + 4096, MiB, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "region table entry 1");
	assert_errmsg_contains("8b7ca206-4790-4b9a-b8fe-575f050f886e");
	assert_errmsg_contains("file offset 0x201000");

	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 0, MiB, 1); /* inside the first megabyte */
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "region table entry 0");
	assert_errmsg_contains("file offset 0x0 ");

	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 3 * MiB, MiB + 512, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "length 0x100200");

	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 3 * MiB, 0, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "length 0x0");

	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 0xfffffffffff00000ull, MiB, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "overflows");
}

static void test_duplicates_and_overlaps(void **state)
{
	make_good();
	put_entry(1, VHDX_GUID_BAT_REGION, 5 * MiB, MiB, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "appears twice");
	assert_errmsg_contains("region table entry 1");
	assert_errmsg_contains("2dc27766-f623-4200-9d64-115e9bfd4a08");

	/* metadata inside the BAT */
	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 2 * MiB, 2 * MiB, 1);
	put_entry(1, VHDX_GUID_METADATA_REGION, 3 * MiB, MiB, 1);
	seal(2);
	assert_fails(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab), -EBADMSG, "overlaps entry 0");
	assert_errmsg_contains("entry 1");

	/* touching is fine */
	make_good();
	put_entry(0, VHDX_GUID_BAT_REGION, 2 * MiB, MiB, 1);
	put_entry(1, VHDX_GUID_METADATA_REGION, 3 * MiB, MiB, 1);
	seal(2);
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, tab));
}

static void test_encode_round_trip(void **state)
{
	uint8_t *enc = malloc(VHDX_REGION_SIZE);
	struct vhdx_region_table *src = calloc(1, sizeof *src);

	assert_non_null(enc);
	assert_non_null(src);
	make_good();
	assert_ok(vhdx_region_table_decode(buf, VHDX_REGION_SIZE, src));
	memset(enc, 0xcc, VHDX_REGION_SIZE);
	vhdx_region_table_encode(src, enc);
	/* byte-identical to the hand-made table */
	assert_memory_equal(enc, buf, VHDX_REGION_SIZE);
	src->entries[1].required = false;
	vhdx_region_table_encode(src, enc);
	assert_ok(vhdx_region_table_decode(enc, VHDX_REGION_SIZE, tab));
	assert_false(tab->entries[1].required);
	assert_true(tab->entries[0].required);
	free(enc);
	free(src);
}

UNIT_MAIN_TESTS(setup, teardown,
		test_decode_good, test_find, test_bad_header, test_count, test_max_count, test_alignment,
		test_duplicates_and_overlaps, test_encode_round_trip)
