/*
 * test_vhdx_metadata.c - codec/vhdx_metadata.c: the metadata table
 * (MS-VHDX 2.6.1, FORMAT.md 1.7) and the file parameters item (2.6.2.1).
 * The table has no checksum, so these range checks are all that protects
 * the reader; each one is broken in turn.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/unit_codec.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "lib/guid_ref.h"

#define MiB (1024u * 1024)
#define KiB 1024u

UNIT_CODEC_FIXTURE(VHDX_METADATA_TABLE_SIZE, struct vhdx_metadata_table)

#define F_USER 1u
#define F_VDISK 2u
#define F_REQ 4u

static void put_entry(unsigned i, const uint8_t guid[16], uint32_t off, uint32_t len, uint32_t flags)
{
	unit_put_guid_entry(buf + 32 + 32 * i, guid, off, 4, len, flags);
}

static void set_count(unsigned n)
{
	memcpy(buf, "metadata", 8);
	vhdx_put_le16(buf + 10, (uint16_t)n);
}

/* The table in buf decodes in a metadata region of REGION bytes. */
#define decodes(region) assert_ok(vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, (region), tab))

/* The table in buf is refused in a metadata region of REGION bytes, its message holding SUB and SUB2 (if not NULL). */
static void refused(uint32_t region, const char *sub, const char *sub2)
{
	assert_fails(vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, region, tab), -EBADMSG, sub);
	if (sub2 != NULL)
		assert_errmsg_contains(sub2);
}

/* The five items of a dynamic disk, packed from 64 KiB like qemu does. */
static void make_good(void)
{
	memset(buf, 0, VHDX_METADATA_TABLE_SIZE);
	put_entry(0, VHDX_GUID_FILE_PARAMETERS, 64 * KiB, 8, F_REQ);
	put_entry(1, VHDX_GUID_VIRTUAL_DISK_SIZE, 64 * KiB + 8, 8, F_REQ | F_VDISK);
	put_entry(2, VHDX_GUID_VIRTUAL_DISK_ID, 64 * KiB + 16, 16, F_REQ | F_VDISK);
	put_entry(3, VHDX_GUID_LOGICAL_SECTOR_SIZE, 64 * KiB + 32, 4, F_REQ | F_VDISK);
	put_entry(4, VHDX_GUID_PHYSICAL_SECTOR_SIZE, 64 * KiB + 36, 4, F_REQ | F_VDISK);
	set_count(5);
}

static void test_decode_good(void **state)
{
	make_good();
	decodes(MiB);
	assert_int_equal(tab->entry_count, 5);
	assert_memory_equal(tab->entries[0].item_id, VHDX_GUID_FILE_PARAMETERS, 16);
	assert_int_equal(tab->entries[0].offset, 64 * KiB);
	assert_int_equal(tab->entries[0].length, 8);
	assert_false(tab->entries[0].is_user);
	assert_false(tab->entries[0].is_virtual_disk);
	assert_true(tab->entries[0].is_required);
	assert_true(tab->entries[2].is_virtual_disk);
	assert_int_equal(tab->entries[4].offset, 64 * KiB + 36);

	assert_ptr_equal(vhdx_metadata_find(tab, VHDX_GUID_VIRTUAL_DISK_ID, false), &tab->entries[2]);
	assert_null(vhdx_metadata_find(tab, VHDX_GUID_VIRTUAL_DISK_ID, true));
	assert_null(vhdx_metadata_find(tab, VHDX_GUID_PARENT_LOCATOR, false));
}

static void test_user_flag_and_empty_items(void **state)
{
	make_good();
	/* the same GUID as a user item is a different item */
	put_entry(5, VHDX_GUID_VIRTUAL_DISK_ID, 64 * KiB + 40, 16, F_USER);
	/* "present but empty": offset 0, length 0 */
	put_entry(6, VHDX_GUID_PMEM_LABEL, 0, 0, 0);
	set_count(7);
	decodes(MiB);
	assert_ptr_equal(vhdx_metadata_find(tab, VHDX_GUID_VIRTUAL_DISK_ID, true), &tab->entries[5]);
	assert_ptr_equal(vhdx_metadata_find(tab, VHDX_GUID_VIRTUAL_DISK_ID, false), &tab->entries[2]);
	assert_true(tab->entries[5].is_user);
	assert_int_equal(tab->entries[6].length, 0);
}

static void test_bad_signature_and_count(void **state)
{
	make_good();
	assert_fails(vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE - 1, MiB, tab), -EBADMSG,
		     "too short");
	buf[7] = 'A';
	refused(MiB, "signature", NULL);
	make_good();
	set_count(2048);
	refused(MiB, "entry count 2048 exceeds 2047", NULL);
	assert_int_equal(tab->entry_count, 0);
	set_count(0xffff);
	refused(MiB, "entry count 65535", NULL);
}

static void test_offset_inside_table(void **state)
{
	make_good();
	put_entry(3, VHDX_GUID_LOGICAL_SECTOR_SIZE, 64 * KiB - 4, 4, F_REQ | F_VDISK);
	refused(MiB, "metadata entry 3", "8141bf1d-a96f-4709-ba47-f233a8faab5f");
	assert_errmsg_contains("offset 0xfffc is inside the table");
	/* an empty item must have offset 0 */
	make_good();
	put_entry(4, VHDX_GUID_PHYSICAL_SECTOR_SIZE, 64 * KiB + 36, 0, F_REQ | F_VDISK);
	refused(MiB, "metadata entry 4", "offset 0x10024");
	/* a non-empty item at offset 0 */
	make_good();
	put_entry(0, VHDX_GUID_FILE_PARAMETERS, 0, 8, F_REQ);
	refused(MiB, "offset 0x0 is inside the table", NULL);
}

static void test_item_past_region(void **state)
{
	make_good();
	/* ends exactly at the end of a 1 MiB region: fine */
	put_entry(2, VHDX_GUID_VIRTUAL_DISK_ID, MiB - 16, 16, F_REQ | F_VDISK);
	decodes(MiB);
	/* one byte further is not */
	put_entry(2, VHDX_GUID_VIRTUAL_DISK_ID, MiB - 15, 16, F_REQ | F_VDISK);
	refused(MiB, "metadata entry 2", "past the metadata region (1048576 bytes)");
	/* offset + length wrapping around 2^32 */
	put_entry(2, VHDX_GUID_VIRTUAL_DISK_ID, 0xfffffff8u, 16, F_REQ | F_VDISK);
	refused(MiB, "past the metadata region", NULL);
	/* a region smaller than the table's own 64 KiB: every item is past it */
	make_good();
	refused(64 * KiB, "metadata entry 0", NULL);
}

static void test_item_too_long(void **state)
{
	make_good();
	/* exactly 1 MiB in a 2 MiB region: fine */
	put_entry(5, VHDX_GUID_PMEM_LABEL, MiB, MiB, 0);
	set_count(6);
	decodes(2 * MiB);
	put_entry(5, VHDX_GUID_PMEM_LABEL, MiB, MiB + 1, 0);
	refused(4 * MiB, "metadata entry 5", "length 1048577 exceeds 1 MiB");
}

static void test_duplicates(void **state)
{
	make_good();
	put_entry(5, VHDX_GUID_VIRTUAL_DISK_SIZE, 64 * KiB + 100, 8, F_REQ | F_VDISK);
	set_count(6);
	refused(MiB, "metadata entry 5: item 2fa54224-cd1b-4876-b211-5dbed83bf4b8 appears twice", NULL);
	/* duplicate user items too */
	make_good();
	put_entry(5, VHDX_GUID_PMEM_LABEL, 64 * KiB + 100, 8, F_USER);
	put_entry(6, VHDX_GUID_PMEM_LABEL, 64 * KiB + 200, 8, F_USER);
	set_count(7);
	refused(MiB, "metadata entry 6", "appears twice");
}

static void test_overlaps(void **state)
{
	make_good();
	/* logical sector size overlapping the last 4 bytes of the disk id */
	put_entry(3, VHDX_GUID_LOGICAL_SECTOR_SIZE, 64 * KiB + 28, 4, F_REQ | F_VDISK);
	refused(MiB, "metadata entry 3", "at 0x1001c overlaps entry 2");
	/* two empty items never overlap */
	make_good();
	put_entry(5, VHDX_GUID_PMEM_LABEL, 0, 0, 0);
	put_entry(6, VHDX_GUID_CHS_PARAMETERS, 0, 0, 0);
	set_count(7);
	decodes(MiB);
}

static void test_user_items_limit(void **state)
{
	unsigned n;

	make_good();
	/* 1024 user items (empty, distinct GUIDs) are allowed ... */
	for (n = 0; n < 1024; n++) {
		uint8_t g[16] = { 0x55 };
		vhdx_put_le32(g + 4, n);
		put_entry(5 + n, g, 0, 0, F_USER);
	}
	set_count(5 + 1024);
	decodes(MiB);
	assert_int_equal(tab->entry_count, 1029);
	/* ... a 1025th is not */
	{
		uint8_t g[16] = { 0x56 };
		put_entry(5 + 1024, g, 0, 0, F_USER);
	}
	set_count(5 + 1025);
	refused(MiB, "more than 1024 user items", NULL);
	/* but 1025 system items are fine */
	for (n = 0; n < 1025; n++) {
		uint8_t *p = buf + 32 + 32 * (5 + n);
		vhdx_put_le32(p + 24, 0);
	}
	decodes(MiB);
}

static void test_encode_round_trip(void **state)
{
	struct vhdx_metadata_table *src = calloc(1, sizeof *src);
	uint8_t *enc = malloc(VHDX_METADATA_TABLE_SIZE);

	assert_non_null(src);
	assert_non_null(enc);
	make_good();
	put_entry(5, VHDX_GUID_PMEM_LABEL, 64 * KiB + 40, 24, F_USER | F_VDISK | F_REQ);
	set_count(6);
	assert_ok(vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, MiB, src));
	memset(enc, 0xcc, VHDX_METADATA_TABLE_SIZE);
	vhdx_metadata_table_encode(src, enc);
	assert_memory_equal(enc, buf, VHDX_METADATA_TABLE_SIZE);
	assert_ok(vhdx_metadata_table_decode(enc, VHDX_METADATA_TABLE_SIZE, MiB, tab));
	assert_true(tab->entries[5].is_user && tab->entries[5].is_virtual_disk && tab->entries[5].is_required);
	free(src);
	free(enc);
}

static void test_file_params(void **state)
{
	uint8_t b[8];
	struct vhdx_file_params p, q;

	vhdx_put_le32(b, 32 * MiB);
	vhdx_put_le32(b + 4, 0);
	assert_ok(vhdx_file_params_decode(b, 8, &p));
	assert_int_equal(p.block_size, 32 * MiB);
	assert_false(p.leave_blocks_allocated);
	assert_false(p.has_parent);
	vhdx_put_le32(b + 4, 1);
	assert_ok(vhdx_file_params_decode(b, 8, &p));
	assert_true(p.leave_blocks_allocated);
	assert_false(p.has_parent);
	vhdx_put_le32(b + 4, 2);
	assert_ok(vhdx_file_params_decode(b, 8, &p));
	assert_false(p.leave_blocks_allocated);
	assert_true(p.has_parent);

	/* every power of two from 1 MiB to 256 MiB */
	for (uint32_t bs = MiB; bs <= 256 * MiB; bs <<= 1) {
		vhdx_put_le32(b, bs);
		assert_ok(vhdx_file_params_decode(b, 8, &p));
		assert_int_equal(p.block_size, bs);
	}
	/* and nothing else */
	{
		static const uint32_t bad[] = { 0, 512, MiB / 2, MiB - 1, MiB + 1, 3 * MiB, 512 * MiB, 0x80000000u,
						0xffffffffu };
		for (size_t i = 0; i < VHDX_ARRAY_LEN(bad); i++) {
			char expect[64];
			vhdx_put_le32(b, bad[i]);
			snprintf(expect, sizeof expect, "block size %u is not", bad[i]);
			assert_fails(vhdx_file_params_decode(b, 8, &p), -EBADMSG, expect);
		}
	}
	vhdx_put_le32(b, MiB);
	assert_fails(vhdx_file_params_decode(b, 7, &p), -EBADMSG, "7 bytes, expected 8");
	assert_fails(vhdx_file_params_decode(b, 16, &p), -EBADMSG, "16 bytes, expected 8");

	/* encode/decode */
	p.block_size = 2 * MiB;
	p.leave_blocks_allocated = true;
	p.has_parent = true;
	vhdx_file_params_encode(&p, b);
	assert_int_equal(vhdx_get_le32(b), 2 * MiB);
	assert_int_equal(vhdx_get_le32(b + 4), 3);
	assert_ok(vhdx_file_params_decode(b, 8, &q));
	assert_int_equal(q.block_size, 2 * MiB);
	assert_true(q.leave_blocks_allocated && q.has_parent);
}

/* every well-known GUID: the constant's bytes match FORMAT.md 1.7's text, and its name */
static void test_known_names(void **state)
{
	for (size_t i = 0; i < VHDX_ARRAY_LEN(GUID_REFS); i++) {
		const struct guid_ref *r = &GUID_REFS[i];
		const char *name = vhdx_known_guid_name(r->guid);
		uint8_t g[16];

		assert_ok(vhdx_guid_parse(r->text, g));
		if (memcmp(g, r->guid, 16))
			fail_msg("constant for %s has the wrong bytes", r->text);
		if (r->name == NULL ? name != NULL : name == NULL || strcmp(name, r->name))
			fail_msg("%s is named \"%s\", expected \"%s\"", r->text, name ? name : "(none)",
				 r->name ? r->name : "(none)");
	}
}

UNIT_MAIN_TESTS(setup, teardown,
		test_decode_good, test_user_flag_and_empty_items, test_bad_signature_and_count, test_offset_inside_table,
		test_item_past_region, test_item_too_long, test_duplicates, test_overlaps, test_user_items_limit,
		test_encode_round_trip, test_file_params, test_known_names)
