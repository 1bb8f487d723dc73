/*
 * test_compact.c - vhdx compact (libvhdx/maint/compact.c, format/vhdx_compact.c,
 * format/vhd_compact.c) and its crash safety, proven the SQLite way (as
 * test_crash_vhdx.c does for writes) through tests/lib/maint_crash.h: a
 * power cut after EVERY I/O event under every mode must leave an image that
 * reads exactly what it read before.  Resize has its own test_resize.c;
 * the compacted dynamic image is grown and shrunk back here because that is
 * what shows compact left zeros past the end of the moved short block.
 *
 * Images come from the test generator (tests/lib/vhdx_gen.h): a dynamic
 * base with all-zero FULLY_PRESENT blocks (patched to zero), a ZERO block,
 * a short last block at the end of the file; a differencing child over a
 * fixed base (data everywhere) with an all-zero FULLY_PRESENT block (must
 * become ZERO, not expose the parent), a PARTIALLY_PRESENT block without
 * any bit set (dropped: the parent shows as before), one with every bit
 * set, a mixed one, and data at the end of the file that must move down.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "chain/chain.h"
#include "format/vhd_create.h"
#include "format/vhd_format.h"
#include "format/vhdx_create.h"
#include "format/vhdx_maint.h"
#include "lib/maint_crash.h"
#include "lib/vhdx_gen.h"

/* Zeroes the stored data of payload block BLK of IMG. */
static void zero_block(struct vhdx_gen_image *img, uint64_t blk)
{
	uint64_t len = VHDX_MIN((uint64_t)img->block_size, img->virtual_size - blk * img->block_size);
	assert_true(img->block_foff[blk] != 0);
	memset(img->file + img->block_foff[blk], 0, len);
}

/* Dynamic base: zero blocks go, the short last block moves down, the file shrinks exactly. */
static void test_compact_dynamic(void **state)
{
	static const struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT }, /* zeroed below */
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_ZERO },
		{ .blk = 4, .state = VHDX_BAT_UNMAPPED, .foff = 5 * MiB }, /* names block 1's place: must not after */
		{ .blk = 5, .state = VHDX_BAT_FULLY_PRESENT }, /* zeroed below */
		{ .blk = 6, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 7, .state = VHDX_BAT_FULLY_PRESENT }, /* short: the disk ends inside it */
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 8 * MiB - 256 * 1024, .seed = 5,
				   .blocks = blocks, .n_blocks = VHDX_ARRAY_LEN(blocks) };
	struct vhdx_gen_image *img;
	struct vhdx_compact_result r;
	uint8_t *final, *final2;
	size_t flen, flen2;

	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	zero_block(img, 1);
	zero_block(img, 5);
	/* 4 MiB of structures, 6 stored blocks (the last one 768 KiB, rounded to 1 MiB) */
	assert_int_equal(img->file_len, 10 * MiB);
	maint_crash_run(img->file, img->file_len, NULL, MAINT_COMPACT, 0, "compact dynamic", &final, &flen, &r);
	assert_int_equal(r.blocks_examined, 6);
	assert_int_equal(r.blocks_zeroed, 2);
	assert_int_equal(r.blocks_dropped, 0);
	assert_int_equal(r.bitmaps_freed, 0);
	/* blocks 6 and 7 move into the places of 1 and 5 */
	assert_int_equal(r.blocks_moved, 2);
	assert_int_equal(flen, 8 * MiB);
	assert_int_equal(r.new_file_size, 8 * MiB);
	{
		/* the UNMAPPED entry no longer names a place that now holds another block */
		struct vhdx_io *io;
		struct vhdx_layer *l;
		uint64_t e;
		assert_int_equal(vhdx_io_mem_new(final, flen, "f", &io), 0);
		assert_int_equal(vhdx_layer_open_io(io, "f", 0, &l), 0);
		e = vhdx_state_of(l)->bat[vhdx_bat_payload_index(&vhdx_state_of(l)->geo, 4)];
		assert_int_equal(e, vhdx_bat_make(VHDX_BAT_NOT_PRESENT, 0));
		vhdx_layer_close(l);
	}

	/* grow the compacted image: the moved short block's tail must read zero; then shrink it back */
	maint_crash_run(final, flen, NULL, MAINT_RESIZE, 20 * MiB, "grow dynamic", &final2, &flen2, NULL);
	free(final);
	maint_crash_run(final2, flen2, NULL, MAINT_RESIZE, 8 * MiB - 256 * 1024, "shrink dynamic", &final, &flen, NULL);
	free(final);
	free(final2);
	vhdx_gen_free(img);
}

/* A child over a fixed base (data in every block); WITH_MIXED keeps one partial block (and so its bitmap). */
static void run_child(bool with_mixed)
{
	static const struct vhdx_gen_run mixed[] = { { 0, 100 }, { 700, 3 } };
	static const struct vhdx_gen_run all[] = { { 0, 2048 } };
	struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT, .seed = 40 },
		{ .blk = 4, .state = VHDX_BAT_FULLY_PRESENT, .seed = 41 }, /* zeroed below: must become ZERO */
		{ .blk = 2, .state = VHDX_BAT_PARTIALLY_PRESENT, .seed = 42 }, /* no bit set: dropped */
		{ .blk = 3, .state = VHDX_BAT_PARTIALLY_PRESENT, .seed = 43, .runs = all, .n_runs = 1 },
		{ .blk = 5, .state = VHDX_BAT_ZERO },
		{ .blk = 1, .state = VHDX_BAT_PARTIALLY_PRESENT, .seed = 44, .runs = mixed, .n_runs = 2 },
		{ .blk = 7, .state = VHDX_BAT_FULLY_PRESENT, .seed = 45 },
	};
	struct vhdx_gen_opts bo = { .type = VHDX_GEN_FIXED, .virtual_size = 8 * MiB, .seed = 6 };
	struct vhdx_gen_opts co = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 8 * MiB, .seed = 7,
				    .blocks = blocks, .n_blocks = VHDX_ARRAY_LEN(blocks) };
	struct vhdx_gen_image *bimg, *cimg;
	struct vhdx_io *bio;
	struct vhdx_layer *base;
	struct vhdx_compact_result r;
	uint8_t *final, *z = calloc(1, MiB), *got;
	size_t flen;
	uint64_t size;
	const char *what = with_mixed ? "compact child (mixed block)" : "compact child";

	if (!with_mixed)
		blocks[5] = (struct vhdx_gen_block){ .blk = 1, .state = VHDX_BAT_NOT_PRESENT };
	assert_int_equal(vhdx_gen_build(&bo, &bimg), 0);
	assert_int_equal(vhdx_gen_build(&co, &cimg), 0);
	zero_block(cimg, 4);
	assert_int_equal(vhdx_gen_to_io(bimg, "base", &bio), 0);
	assert_int_equal(vhdx_layer_open_io(bio, "base", 0, &base), 0);
	maint_crash_run(cimg->file, cimg->file_len, base, MAINT_COMPACT, 0, what, &final, &flen, &r);
	assert_int_equal(r.blocks_examined, with_mixed ? 6 : 5);
	assert_int_equal(r.blocks_zeroed, 1);
	assert_int_equal(r.blocks_dropped, 1);
	assert_int_equal(r.bitmaps_freed, with_mixed ? 0 : 1);
	/* block 4 reads zeros, not the base's data; block 2 reads the base */
	got = maint_disk_of(final, flen, 0, base, &size, what, 0);
	assert_memory_equal(got + 4 * MiB, z, MiB);
	{
		uint8_t *b = malloc(MiB);
		vhdx_gen_expected(bimg, 2 * MiB, MiB, b);
		assert_memory_equal(got + 2 * MiB, b, MiB);
		free(b);
	}
	/* 4 MiB of structures + blocks 0, 3, 7 (+ 1 and the bitmap block when mixed) */
	assert_int_equal(flen, (with_mixed ? 9 : 7) * MiB);
	free(final);
	vhdx_layer_close(base);
	vhdx_gen_free(bimg);
	vhdx_gen_free(cimg);
	free(z);
}

static void test_compact_child(void **state)
{
	run_child(false);
}

static void test_compact_child_mixed(void **state)
{
	run_child(true);
}

/* A fixed VHDX has nothing to compact: refused with an exact message. */
static void test_compact_fixed_refused(void **state)
{
	struct vhdx_gen_image *img = maint_fixed_image();
	struct vhdx_layer *l = maint_open_writable(img, "fx");
	struct vhdx_compact_result cr;
	struct vhdx_maint_progress p = { NULL, NULL };

	memset(&cr, 0, sizeof cr);
	assert_int_equal(vhdx_compact_vhdx(l, &p, &cr), -EINVAL);
	assert_string_equal(vhdx_errmsg(), "fx is a fixed disk: every block stays allocated, there is nothing to compact");
	assert_int_equal(vhdx_layer_close(l), 0);
	vhdx_gen_free(img);
}

/* VHD: a dynamic disk's zero blocks go; a differencing disk's block without bits goes, zeros with bits stay. */
static void test_compact_vhd(void **state)
{
	struct vhdx_create_params p;
	struct vhdx_io *io;
	struct vhdx_layer *l, *base;
	struct vhdx_compact_result r;
	const uint8_t *d;
	uint8_t *bytes, *final, *buf = malloc(MiB), *z = calloc(1, MiB);
	size_t len, flen;
	FILE *f;

	memset(&p, 0, sizeof p);
	p.type = VHDX_TYPE_DYNAMIC;
	p.virtual_size = 8 * MiB - 4096; /* a short last block */
	p.block_size = MiB;
	p.logical_sector_size = 512;
	assert_int_equal(vhdx_io_mem_new(NULL, 0, "vhd", &io), 0);
	assert_int_equal(vhdx_create_vhd(io, "/tmp/libvhdx-compact-base.vhd", &p, NULL), 0);
	assert_int_equal(vhdx_layer_open_io(io, "vhd", VHDX_LAYER_WRITABLE, &l), 0);
	for (unsigned i = 0; i < MiB; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	/* blocks 0..7 written in order 0, 1, 3, 4, 6, 7; then 1 and 4 zeroed */
	for (unsigned blk = 0; blk < 8; blk++)
		if (blk != 2 && blk != 5)
			assert_int_equal(l->ops->pwrite(l, buf, blk == 7 ? MiB - 4096 : MiB, (uint64_t)blk * MiB), 0);
	assert_int_equal(l->ops->pwrite(l, z, MiB, 1 * MiB), 0);
	assert_int_equal(l->ops->pwrite(l, z, MiB, 4 * MiB), 0);
	assert_int_equal(l->ops->flush(l), 0);
	d = vhdx_io_mem_data(l->io, &len);
	bytes = malloc(len);
	memcpy(bytes, d, len);
	assert_int_equal(vhdx_layer_close(l), 0);
	maint_crash_run(bytes, len, NULL, MAINT_COMPACT, 0, "compact dynamic VHD", &final, &flen, &r);
	assert_int_equal(r.blocks_examined, 6);
	assert_int_equal(r.blocks_zeroed, 2);
	assert_int_equal(r.blocks_moved, 2);
	/* 2 blocks of (512-byte bitmap + 1 MiB) fewer */
	assert_int_equal(flen, len - 2 * (MiB + 512));
	free(final);

	/* a differencing child over BYTES: one block with bits over zeros (stays), one without bits (goes) */
	f = fopen("/tmp/libvhdx-compact-base.vhd", "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
	assert_int_equal(vhdx_io_mem_new(bytes, len, "base", &io), 0);
	assert_int_equal(vhdx_layer_open_io(io, "/tmp/libvhdx-compact-base.vhd", 0, &base), 0);
	memset(&p, 0, sizeof p);
	p.type = VHDX_TYPE_DIFFERENCING;
	p.virtual_size = base->virtual_size;
	p.block_size = MiB;
	p.logical_sector_size = 512;
	p.parent = "/tmp/libvhdx-compact-base.vhd";
	assert_int_equal(vhdx_io_mem_new(NULL, 0, "child", &io), 0);
	assert_int_equal(vhdx_create_vhd(io, "/tmp/libvhdx-compact-child.vhd", &p, base), 0);
	assert_int_equal(vhdx_layer_open_io(io, "child", VHDX_LAYER_WRITABLE, &l), 0);
	assert_int_equal(l->ops->pwrite(l, z, 8192, 3 * MiB), 0);      /* zeros with bits over the base's data */
	assert_int_equal(l->ops->pwrite(l, buf, 4096, 6 * MiB + 512), 0);
	assert_int_equal(l->ops->pwrite(l, buf, MiB, 7 * MiB - MiB), 0); /* block 6 again: stays */
	assert_int_equal(l->ops->pwrite(l, buf, 512, 0), 0);            /* block 0: bits cleared below */
	assert_int_equal(l->ops->flush(l), 0);
	d = vhdx_io_mem_data(l->io, &len);
	free(bytes);
	bytes = malloc(len);
	memcpy(bytes, d, len);
	assert_int_equal(vhdx_layer_close(l), 0);
	{
		/* clear block 0's bitmap on disk: a block without a sector of its own */
		struct vhdx_io *cio;
		struct vhdx_layer *cl;
		uint32_t e;
		assert_int_equal(vhdx_io_mem_new(bytes, len, "c", &cio), 0);
		assert_int_equal(vhdx_layer_open_io(cio, "c", 0, &cl), 0);
		e = vhdx_vhd_state_of(cl)->bat[0];
		memset(bytes + (uint64_t)e * 512, 0, 512);
		vhdx_layer_close(cl);
	}
	maint_crash_run(bytes, len, base, MAINT_COMPACT, 0, "compact differencing VHD", &final, &flen, &r);
	assert_int_equal(r.blocks_examined, 3);
	assert_int_equal(r.blocks_dropped, 1);
	assert_int_equal(r.blocks_zeroed, 0);
	free(final);
	vhdx_layer_close(base);
	remove("/tmp/libvhdx-compact-base.vhd");
	free(bytes);
	free(buf);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_dynamic),
		cmocka_unit_test(test_compact_child),
		cmocka_unit_test(test_compact_child_mixed),
		cmocka_unit_test(test_compact_fixed_refused),
		cmocka_unit_test(test_compact_vhd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
