/*
 * test_vhdx_gen.c - the test-image generator (tests/lib/vhdx_gen.c)
 * checked against the layout of MS-VHDX 2.2-2.6 by hand: where each
 * structure lands, what the BAT entries and bitmap bytes are, that the
 * build is deterministic, and that its oracle (kind/expected) says what
 * FORMAT.md 1.6 says.  The reader tests rely on all of this.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/vhdx_gen.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_locator.h"

#define MiB (1024ull * 1024)

static void test_default_layout(void **state)
{
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_ZERO },
		{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT, .seed = 77 },
	};
	struct vhdx_gen_opts o = { .virtual_size = 4 * MiB, .blocks = blocks, .n_blocks = 3, .creator = "gen test" };
	struct vhdx_gen_image *img;
	struct vhdx_header h;
	struct vhdx_region_table *rt = calloc(1, sizeof *rt);
	struct vhdx_metadata_table *mt = calloc(1, sizeof *mt);
	struct vhdx_fileid fid;
	uint8_t *pat = malloc(MiB);

	assert_non_null(rt);
	assert_non_null(mt);
	assert_non_null(pat);
	assert_ok(vhdx_gen_build(&o, &img));
	/* 1 MiB log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB, data from 4 MiB: two blocks */
	assert_true(img->log_offset == MiB && img->log_length == MiB);
	assert_true(img->meta_offset == 2 * MiB && img->meta_length == MiB);
	assert_true(img->bat_offset == 3 * MiB && img->bat_length == MiB);
	assert_int_equal(img->file_len, 6 * MiB);
	assert_true(img->chunk_ratio == 4096 && img->payload_blocks == 4 && img->bat_entries == 4);

	assert_ok(vhdx_fileid_decode(img->file, img->file_len, &fid));
	assert_string_equal(fid.creator, "gen test");
	vhdx_fileid_free(&fid);
	assert_ok(vhdx_header_decode(img->file + 64 * 1024, 4096, &h));
	assert_true(h.seq == 1 && h.log_offset == MiB && h.log_length == MiB);
	assert_true(vhdx_guid_is_zero(h.log_guid));
	assert_ok(vhdx_header_decode(img->file + 128 * 1024, 4096, &h));
	assert_true(h.seq == 2);
	assert_ok(vhdx_region_table_decode(img->file + 192 * 1024, 64 * 1024, rt));
	assert_memory_equal(img->file + 192 * 1024, img->file + 256 * 1024, 64 * 1024);
	assert_true(vhdx_region_find(rt, VHDX_GUID_BAT_REGION)->file_offset == 3 * MiB);
	assert_true(vhdx_region_find(rt, VHDX_GUID_METADATA_REGION)->file_offset == 2 * MiB);
	assert_ok(vhdx_metadata_table_decode(img->file + 2 * MiB, 64 * 1024, MiB, mt));
	assert_int_equal(mt->entry_count, 5);
	/* the items at the recorded offsets hold the values */
	assert_true(img->item_off[VHDX_GEN_ITEM_FILE_PARAMS] == 2 * MiB + 64 * 1024);
	assert_int_equal(vhdx_get_le32(img->file + img->item_off[VHDX_GEN_ITEM_FILE_PARAMS]), MiB);
	assert_int_equal(vhdx_get_le32(img->file + img->item_off[VHDX_GEN_ITEM_FILE_PARAMS] + 4), 0);
	assert_true(vhdx_get_le64(img->file + img->item_off[VHDX_GEN_ITEM_VIRTUAL_SIZE]) == 4 * MiB);
	assert_int_equal(vhdx_get_le32(img->file + img->item_off[VHDX_GEN_ITEM_LOGICAL_SS]), 512);
	assert_int_equal(vhdx_get_le32(img->file + img->item_off[VHDX_GEN_ITEM_PHYSICAL_SS]), 4096);
	assert_true(img->item_off[VHDX_GEN_ITEM_LOCATOR] == 0);

	/* BAT entries by hand: block 0 at 4 MiB, block 3 at 5 MiB */
	assert_true(vhdx_get_le64(img->file + 3 * MiB) == (4 * MiB | 6));
	assert_true(vhdx_get_le64(img->file + 3 * MiB + 8) == 0);
	assert_true(vhdx_get_le64(img->file + 3 * MiB + 16) == 2);
	assert_true(vhdx_get_le64(img->file + 3 * MiB + 24) == (5 * MiB | 6));
	/* payload = the pattern of the block's virtual offsets */
	vhdx_gen_pattern(0, 1, 0, MiB, pat);
	assert_memory_equal(img->file + 4 * MiB, pat, MiB);
	vhdx_gen_pattern(0, 77, 3 * MiB, MiB, pat);
	assert_memory_equal(img->file + 5 * MiB, pat, MiB);
	assert_int_equal(vhdx_gen_pattern_byte(0, 77, 3 * MiB + 5), pat[5]);

	vhdx_gen_free(img);
	free(rt);
	free(mt);
	free(pat);
}

static void test_deterministic(void **state)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = 3 * MiB, .seed = 5 };
	struct vhdx_gen_image *a, *b, *c;

	assert_ok(vhdx_gen_build(&o, &a));
	assert_ok(vhdx_gen_build(&o, &b));
	assert_int_equal(a->file_len, b->file_len);
	assert_memory_equal(a->file, b->file, a->file_len);
	o.seed = 6;
	assert_ok(vhdx_gen_build(&o, &c));
	assert_int_equal(a->file_len, c->file_len);
	/* other GUIDs and other data */
	assert_memory_not_equal(a->headers[1].data_write_guid, c->headers[1].data_write_guid, 16);
	assert_memory_not_equal(a->file + a->block_foff[0], c->file + c->block_foff[0], 4096);
	/* fixed: every block present, in block order, LeaveBlockAllocated set */
	for (uint64_t b2 = 0; b2 < 3; b2++) {
		assert_int_equal(a->block_state[b2], VHDX_BAT_FULLY_PRESENT);
		assert_true(a->block_foff[b2] == (4 + b2) * MiB);
	}
	assert_int_equal(vhdx_get_le32(a->file + a->item_off[VHDX_GEN_ITEM_FILE_PARAMS] + 4), 1);
	vhdx_gen_free(a);
	vhdx_gen_free(b);
	vhdx_gen_free(c);
}

static void test_differencing_layout(void **state)
{
	struct vhdx_gen_run runs[] = { { 0, 1 }, { 7, 3 }, { 2047, 1 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 3 },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 3 * MiB, .blocks = blocks,
				   .n_blocks = 1, .parent_path = "..\\base.vhdx" };
	struct vhdx_gen_image *img;
	struct vhdx_parent_ref ref;
	const uint8_t *bm;
	uint64_t sb;

	assert_ok(vhdx_guid_parse("0f0e0d0c-0b0a-0908-0706-050403020100", o.parent_linkage));
	assert_ok(vhdx_gen_build(&o, &img));
	/* one chunk of 4096 blocks: 4097 entries (32776 bytes, a 1 MiB region) */
	assert_true(img->bat_entries == 4097 && img->bat_length == MiB);
	/* HasParent flag, and a locator the library decodes back */
	assert_int_equal(vhdx_get_le32(img->file + img->item_off[VHDX_GEN_ITEM_FILE_PARAMS] + 4), 2);
	assert_true(img->item_off[VHDX_GEN_ITEM_LOCATOR] != 0);
	assert_ok(vhdx_locator_decode(img->file + img->item_off[VHDX_GEN_ITEM_LOCATOR],
				      img->item_len[VHDX_GEN_ITEM_LOCATOR], &ref));
	assert_memory_equal(ref.linkage, o.parent_linkage, 16);
	assert_int_equal(ref.n_paths, 1);
	assert_string_equal(ref.paths[0].value, "..\\base.vhdx");
	vhdx_parent_ref_free(&ref);
	/* block 1 at 4 MiB, its chunk's bitmap at 5 MiB, SB entry at index 4096 */
	assert_true(vhdx_get_le64(img->file + img->bat_offset + 8) == (4 * MiB | 7));
	sb = vhdx_get_le64(img->file + img->bat_offset + 8 * 4096);
	assert_true(sb == (5 * MiB | 6));
	/* LSB-first: sector 2048 (block 1, sector 0) = byte 256 bit 0; 2055..2057 = byte 256 bit 7,
	 * byte 257 bits 0-1; 4095 = byte 511 bit 7 */
	bm = img->file + 5 * MiB;
	for (size_t i = 0; i < MiB; i++) {
		uint8_t want = i == 256 ? 0x81 : i == 257 ? 0x03 : i == 511 ? 0x80 : 0;
		if (bm[i] != want)
			fail_msg("bitmap byte %zu is 0x%02x, expected 0x%02x", i, bm[i], want);
	}
	vhdx_gen_free(img);
}

/* The oracle on the image above, by hand from FORMAT.md 1.6 and 1.9. */
static void test_oracle(void **state)
{
	struct vhdx_gen_run runs[] = { { 0, 1 }, { 7, 3 }, { 2047, 1 } };
	struct vhdx_gen_block cblocks[] = {
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 3 },
		{ .blk = 2, .state = VHDX_BAT_ZERO },
	};
	struct vhdx_gen_block pblocks[] = {
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts co = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = 2,
				    .blocks = cblocks, .n_blocks = 2 };
	struct vhdx_gen_opts po = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 4 * MiB, .seed = 1,
				    .blocks = pblocks, .n_blocks = 2 };
	struct vhdx_gen_image *c, *p;
	const struct vhdx_gen_image *chain[2];
	uint64_t run;
	unsigned layer = 99;
	uint8_t buf[4096], want[4096];

	assert_ok(vhdx_gen_build(&co, &c));
	assert_ok(vhdx_gen_build(&po, &p));
	chain[0] = c;
	chain[1] = p;

	assert_int_equal(vhdx_gen_kind(c, 0, &run), VHDX_GEN_K_PARENT);
	assert_true(run == MiB);
	assert_int_equal(vhdx_gen_kind(c, 4096, &run), VHDX_GEN_K_PARENT);
	assert_true(run == MiB - 4096);
	assert_int_equal(vhdx_gen_kind(c, MiB, &run), VHDX_GEN_K_DATA);
	assert_true(run == 512);
	assert_int_equal(vhdx_gen_kind(c, MiB + 512, &run), VHDX_GEN_K_PARENT);
	assert_true(run == 6 * 512);
	assert_int_equal(vhdx_gen_kind(c, MiB + 7 * 512, &run), VHDX_GEN_K_DATA);
	assert_true(run == 3 * 512);
	assert_int_equal(vhdx_gen_kind(c, MiB + 8 * 512 + 100, &run), VHDX_GEN_K_DATA);
	assert_true(run == 2 * 512 - 100);
	assert_int_equal(vhdx_gen_kind(c, MiB + 10 * 512, &run), VHDX_GEN_K_PARENT);
	assert_true(run == (2047 - 10) * 512);
	assert_int_equal(vhdx_gen_kind(c, 2 * MiB - 512, &run), VHDX_GEN_K_DATA);
	assert_true(run == 512);
	assert_int_equal(vhdx_gen_kind(c, 2 * MiB, &run), VHDX_GEN_K_ZERO);
	assert_true(run == MiB);
	assert_int_equal(vhdx_gen_kind(p, 0, &run), VHDX_GEN_K_ZERO); /* NOT_PRESENT in a base disk */
	assert_true(vhdx_gen_data_foff(c, MiB + 7 * 512 + 3) == c->block_foff[1] + 7 * 512 + 3);
	assert_true(vhdx_gen_data_foff(c, MiB + 512) == 0);

	/* chain: parent block 1 shows through the 0 bits; child ZERO hides parent block 2 */
	assert_int_equal(vhdx_gen_chain_resolve(chain, 2, MiB + 512, &layer, &run), VHDX_GEN_K_DATA);
	assert_int_equal(layer, 1);
	assert_true(run == 6 * 512);
	assert_int_equal(vhdx_gen_chain_resolve(chain, 2, MiB, &layer, &run), VHDX_GEN_K_DATA);
	assert_int_equal(layer, 0);
	assert_int_equal(vhdx_gen_chain_resolve(chain, 2, 2 * MiB + 5, &layer, &run), VHDX_GEN_K_ZERO);
	assert_true(run == MiB - 5);
	assert_int_equal(vhdx_gen_chain_resolve(chain, 2, 0, &layer, &run), VHDX_GEN_K_ZERO);
	assert_true(run == MiB);
	assert_int_equal(vhdx_gen_chain_resolve(chain, 1, MiB + 512, &layer, &run), VHDX_GEN_K_ZERO);

	/* expected bytes at MiB: sector 0 child's pattern, sectors 1-6 parent's, 7 child's */
	vhdx_gen_chain_expected(chain, 2, MiB, 4096, buf);
	vhdx_gen_pattern(2, 2, MiB, 512, want);
	vhdx_gen_pattern(1, 2, MiB + 512, 6 * 512, want + 512);
	vhdx_gen_pattern(2, 2, MiB + 7 * 512, 512, want + 7 * 512);
	assert_memory_equal(buf, want, 4096);
	/* the child alone reads zeros where the parent would be */
	vhdx_gen_expected(c, MiB, 4096, buf);
	memset(want + 512, 0, 6 * 512);
	assert_memory_equal(buf, want, 4096);
	/* the mirror agrees with expected() */
	{
		uint8_t *m = vhdx_gen_mirror(c);
		assert_non_null(m);
		assert_memory_equal(m + MiB, buf, 4096);
		for (size_t i = 0; i < MiB; i++)
			if (m[i] || m[2 * MiB + i])
				fail_msg("mirror byte not zero");
		free(m);
	}
	vhdx_gen_free(c);
	vhdx_gen_free(p);
}

static void test_write_file_and_io(void **state)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = MiB };
	struct vhdx_gen_image *img;
	struct vhdx_io *io;
	char path[] = "/tmp/vhdx-gen-test.XXXXXX";
	int fd = mkstemp(path);
	uint8_t *back;
	size_t len;

	assert_true(fd >= 0);
	close(fd);
	assert_ok(vhdx_gen_build(&o, &img));
	assert_ok(vhdx_gen_write_file(img, path));
	assert_ok(vhdx_io_file_open(path, false, &io));
	back = malloc(img->file_len);
	assert_non_null(back);
	assert_ok(vhdx_io_pread(io, back, img->file_len, 0, VHDX_TAG_OTHER));
	assert_memory_equal(back, img->file, img->file_len);
	vhdx_io_close(io);
	assert_ok(vhdx_gen_to_io(img, "g", &io));
	assert_memory_equal(vhdx_io_mem_data(io, &len), img->file, img->file_len);
	assert_int_equal(len, img->file_len);
	vhdx_io_close(io);
	free(back);
	unlink(path);
	vhdx_gen_free(img);
}

static void test_bad_options(void **state)
{
	struct vhdx_gen_block blocks[] = { { .blk = 9, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 4 * MiB };
	struct vhdx_gen_image *img = NULL;

	o.block_size = 3 * MiB;
	assert_int_equal(vhdx_gen_build(&o, &img), -EINVAL);
	o.block_size = 0;
	o.virtual_size = 1000;
	assert_int_equal(vhdx_gen_build(&o, &img), -EINVAL);
	o.virtual_size = 4 * MiB;
	o.blocks = blocks;
	o.n_blocks = 1;
	assert_int_equal(vhdx_gen_build(&o, &img), -EINVAL);
	assert_null(img);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_default_layout),
	  cmocka_unit_test(test_deterministic),
	  cmocka_unit_test(test_differencing_layout),
	  cmocka_unit_test(test_oracle),
	  cmocka_unit_test(test_write_file_and_io),
	  cmocka_unit_test(test_bad_options))
