/*
 * test_compact.c - vhdx compact and vhdx resize, and their crash safety,
 * proven the SQLite way (as test_crash_vhdx.c does for writes): each
 * operation runs once over a recording backend (tests/lib/crash_io.c), then
 * a power cut is simulated after EVERY I/O event (unflushed writes dropped,
 * all kept, the last one torn at 512 and 4096 bytes, a random subset kept)
 * and the image must open (read-only: log replayed in memory; and writable:
 * replayed in place) and read exactly what it read before the operation
 * (resize: the old bytes up to the smaller size, zeros past the old end,
 * and a size that is the old or the new one).
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
#include "lib/crash_io.h"
#include "lib/vhdx_gen.h"

#define MiB (1024u * 1024)

static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_TORN_4096,
					 CRASH_RANDOM };

/* Bytes of a disk compared byte for byte; past them a dynamic disk must map no data (see read_disk). */
#define READ_LIMIT (24ull * MiB)

/*
 * Reads the disk of TOP (over BASE when not NULL) up to READ_LIMIT into a
 * buffer shared by every call (valid until the next one); *SIZE gets the
 * virtual size.  Past READ_LIMIT (the 130 GiB
 * disk of the BAT relocation test) every extent must be non-data: -EBADMSG
 * otherwise.
 */
static int read_disk(struct vhdx_layer *top, struct vhdx_layer *base, uint8_t **out, uint64_t *size)
{
	struct vhdx_layer *layers[2] = { top, base };
	struct vhdx_chain c;
	uint64_t n = VHDX_MIN(top->virtual_size, READ_LIMIT);
	/* one buffer for every crash point: big allocations are slow under ASan */
	static uint8_t *buf;
	int ret;

	if (!buf)
		buf = malloc(READ_LIMIT);
	memset(&c, 0, sizeof c);
	c.n = base ? 2 : 1;
	c.layers = layers;
	c.virtual_size = top->virtual_size;
	ret = vhdx_chain_read(&c, 0, buf, n, 0);
	for (uint64_t v = n; ret == 0 && v < top->virtual_size;) {
		struct vhdx_layer_extent e;
		ret = top->ops->map(top, v, top->virtual_size - v, &e);
		if (ret == 0 && e.kind == VHDX_LEXT_DATA)
			ret = vhdx_err(EBADMSG, "data mapped at %llu past the compared part", (unsigned long long)v);
		v += e.len;
	}
	if (ret < 0)
		return ret;
	*out = buf;
	*size = top->virtual_size;
	return 0;
}

/* Opens BYTES (FLAGS) and returns what the disk reads, or fails the test naming WHAT and AFTER. */
static uint8_t *disk_of(const uint8_t *bytes, size_t len, unsigned flags, struct vhdx_layer *base, uint64_t *size,
			const char *what, size_t after)
{
	struct vhdx_io *io;
	struct vhdx_layer *l;
	uint8_t *d = NULL;
	int ret;

	assert_int_equal(vhdx_io_mem_new(bytes, len, "crashed", &io), 0);
	ret = vhdx_layer_open_io(io, "crashed", flags, &l);
	if (ret < 0)
		fail_msg("%s: crash after event %zu: reopen (%s) failed: %s", what, after,
			 flags ? "writable" : "read-only", vhdx_errmsg());
	ret = read_disk(l, base, &d, size);
	if (ret < 0)
		fail_msg("%s: crash after event %zu: read failed: %s", what, after, vhdx_errmsg());
	assert_int_equal(vhdx_layer_close(l), 0);
	return d;
}

enum op { OP_COMPACT, OP_RESIZE };

/*
 * Runs OP on IMG (over BASE) through a recording backend, checks the
 * image after a power cut at every event under every mode, and returns the
 * final bytes in *FINAL (malloc'd).
 */
static void crash_run(const uint8_t *img, size_t img_len, struct vhdx_layer *base, enum op op, uint64_t new_size,
		      const char *what, uint8_t **final, size_t *final_len, struct vhdx_compact_result *cres)
{
	struct vhdx_io *mio, *cio, *borrowed;
	struct vhdx_layer *l;
	struct vhdx_compact_result res_c;
	struct vhdx_resize_result res_r;
	struct vhdx_maint_progress prog = { NULL, NULL };
	uint8_t *before, *got;
	uint64_t old_size, size;
	size_t nev;
	bool fixed_vhd;
	int ret;

	/* what the disk reads before */
	assert_int_equal(vhdx_io_mem_new(img, img_len, "before", &mio), 0);
	assert_int_equal(vhdx_layer_open_io(mio, "before", 0, &l), 0);
	assert_int_equal(read_disk(l, base, &got, &old_size), 0);
	before = malloc(VHDX_MIN(old_size, READ_LIMIT));
	memcpy(before, got, VHDX_MIN(old_size, READ_LIMIT));
	assert_int_equal(vhdx_layer_close(l), 0);

	assert_int_equal(crash_io_new(img, img_len, &cio), 0);
	assert_int_equal(crash_io_borrow(cio, &borrowed), 0);
	assert_int_equal(vhdx_layer_open_io(borrowed, "work", VHDX_LAYER_WRITABLE, &l), 0);
	fixed_vhd = l->format == VHDX_FORMAT_VHD && l->type == VHDX_TYPE_FIXED;
	memset(&res_c, 0, sizeof res_c);
	memset(&res_r, 0, sizeof res_r);
	if (op == OP_COMPACT)
		ret = l->format == VHDX_FORMAT_VHDX ? vhdx_compact_vhdx(l, &prog, &res_c) : vhdx_compact_vhd(l, &prog, &res_c);
	else
		ret = l->format == VHDX_FORMAT_VHDX ? vhdx_resize_vhdx(l, new_size, &res_r)
						    : vhdx_resize_vhd(l, new_size, &res_r);
	if (ret < 0)
		fail_msg("%s: %s", what, vhdx_errmsg());
	assert_int_equal(vhdx_layer_close(l), 0);
	nev = crash_io_events(cio);
	print_message("%s: %zu I/O events, %zu crash points x %zu modes\n", what, nev, nev + 1,
		      sizeof modes / sizeof modes[0]);
	for (size_t after = 0; after <= nev; after++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			uint8_t *bytes;
			size_t len;
			assert_int_equal(crash_io_image(cio, after, modes[m], 4242u + (unsigned)after, &bytes, &len), 0);
			for (int writable = 0; writable <= (m == 0); writable++) {
				got = disk_of(bytes, len, writable ? VHDX_LAYER_WRITABLE : 0, base, &size, what, after);
				if (op == OP_COMPACT) {
					if (size != old_size || memcmp(got, before, VHDX_MIN(size, READ_LIMIT)) != 0)
						fail_msg("%s: crash after event %zu (mode %zu): the disk reads differently", what,
							 after, m);
				} else {
					uint64_t common = VHDX_MIN(VHDX_MIN(size, old_size), READ_LIMIT);
					if (size != old_size && size != new_size)
						fail_msg("%s: crash after event %zu (mode %zu): size %llu is neither the old nor the new one",
							 what, after, m, (unsigned long long)size);
					if (memcmp(got, before, common) != 0)
						fail_msg("%s: crash after event %zu (mode %zu): old content changed", what, after, m);
					/* the fixed-VHD window (see vhd_resize.c): the old footer sector before it is zeroed */
					for (uint64_t i = common; i < VHDX_MIN(size, READ_LIMIT); i++)
						if (got[i] && !(fixed_vhd && after < nev && i >= old_size && i < old_size + 512))
							fail_msg("%s: crash after event %zu (mode %zu): the new area is not zero at %llu",
								 what, after, m, (unsigned long long)i);
				}
			}
			free(bytes);
		}
	}
	/* the final image */
	assert_int_equal(crash_io_image(cio, nev, CRASH_DROP_ALL, 0, final, final_len), 0);
	got = disk_of(*final, *final_len, 0, base, &size, what, nev);
	if (op == OP_RESIZE) {
		assert_int_equal(size, new_size);
		assert_memory_equal(got, before, VHDX_MIN(VHDX_MIN(size, old_size), READ_LIMIT));
		for (uint64_t i = old_size; i < VHDX_MIN(size, READ_LIMIT); i++)
			if (got[i])
				fail_msg("%s: the new area is not zero at %llu", what, (unsigned long long)i);
	} else {
		assert_int_equal(size, old_size);
		assert_memory_equal(got, before, VHDX_MIN(size, READ_LIMIT));
		if (cres)
			*cres = res_c;
	}
	free(before);
	vhdx_io_close(cio);
}

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
	crash_run(img->file, img->file_len, NULL, OP_COMPACT, 0, "compact dynamic", &final, &flen, &r);
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
	crash_run(final, flen, NULL, OP_RESIZE, 20 * MiB, "grow dynamic", &final2, &flen2, NULL);
	free(final);
	crash_run(final2, flen2, NULL, OP_RESIZE, 8 * MiB - 256 * 1024, "shrink dynamic", &final, &flen, NULL);
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
	crash_run(cimg->file, cimg->file_len, base, OP_COMPACT, 0, what, &final, &flen, &r);
	assert_int_equal(r.blocks_examined, with_mixed ? 6 : 5);
	assert_int_equal(r.blocks_zeroed, 1);
	assert_int_equal(r.blocks_dropped, 1);
	assert_int_equal(r.bitmaps_freed, with_mixed ? 0 : 1);
	/* block 4 reads zeros, not the base's data; block 2 reads the base */
	got = disk_of(final, flen, 0, base, &size, what, 0);
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

/* Growing past what the BAT region holds moves the BAT (region table through the log). */
static void test_resize_relocate(void **state)
{
	static const struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
	};
	/* a 1 MiB BAT region holds 131072 entries: 1 MiB blocks past ~128 GiB need more */
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 4 * MiB, .seed = 9,
				   .blocks = blocks, .n_blocks = 2 };
	struct vhdx_gen_image *img;
	struct vhdx_io *io;
	struct vhdx_layer *l;
	struct vhdx_resize_result r;
	uint8_t *final;
	size_t flen;

	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	assert_int_equal(img->bat_length, MiB);
	crash_run(img->file, img->file_len, NULL, OP_RESIZE, 130ull << 30, "grow dynamic (BAT relocated)", &final,
		  &flen, NULL);
	/* the new BAT (133152 entries: 2 MiB) at the old end of the file */
	assert_int_equal(flen, img->file_len + 2 * MiB);
	assert_int_equal(vhdx_io_mem_new(final, flen, "g", &io), 0);
	assert_int_equal(vhdx_layer_open_io(io, "g", VHDX_LAYER_WRITABLE, &l), 0);
	assert_int_equal(vhdx_state_of(l)->bat_off, img->file_len);
	assert_int_equal(vhdx_state_of(l)->bat_len, 2 * MiB);
	/* and it takes writes past the old end, which read back through the new BAT */
	{
		uint8_t buf[512], back[512];
		struct vhdx_layer_extent e;
		memset(buf, 0x5a, sizeof buf);
		assert_int_equal(l->ops->pwrite(l, buf, 512, 129ull << 30), 0);
		assert_int_equal(l->ops->flush(l), 0);
		assert_int_equal(l->ops->map(l, 129ull << 30, 512, &e), 0);
		assert_int_equal(e.kind, VHDX_LEXT_DATA);
		assert_int_equal(vhdx_io_pread(l->io, back, 512, e.foff, VHDX_TAG_PAYLOAD), 0);
		assert_memory_equal(back, buf, 512);
		assert_int_equal(vhdx_layer_close(l), 0);
	}
	(void)r;
	free(final);
	vhdx_gen_free(img);

	/* growing inside the region: new entries journaled in place */
	{
		struct vhdx_gen_opts o2 = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 6 * MiB, .seed = 10,
					    .blocks = blocks, .n_blocks = 2 };
		struct vhdx_gen_image *img2;
		assert_int_equal(vhdx_gen_build(&o2, &img2), 0);
		crash_run(img2->file, img2->file_len, NULL, OP_RESIZE, 12 * MiB, "grow dynamic (BAT in place)", &final,
			  &flen, NULL);
		free(final);
		vhdx_gen_free(img2);
	}
}

/* A fixed VHDX grows with allocated (zero) blocks; refusals carry exact messages. */
static void test_resize_fixed_and_refusals(void **state)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = 3 * MiB + 512, .seed = 11 };
	struct vhdx_gen_image *img;
	struct vhdx_io *io;
	struct vhdx_layer *l;
	struct vhdx_resize_result r;
	uint8_t *final;
	size_t flen;

	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	crash_run(img->file, img->file_len, NULL, OP_RESIZE, 6 * MiB, "grow fixed", &final, &flen, NULL);
	free(final);

	assert_int_equal(vhdx_gen_to_io(img, "fx", &io), 0);
	assert_int_equal(vhdx_layer_open_io(io, "fx", VHDX_LAYER_WRITABLE, &l), 0);
	assert_int_equal(vhdx_resize_vhdx(l, 3 * MiB + 100, &r), -EINVAL);
	assert_string_equal(vhdx_errmsg(), "new size 3145828 is not a positive multiple of the logical sector size (512 bytes)");
	assert_int_equal(vhdx_resize_vhdx(l, 2 * MiB, &r), -EINVAL);
	assert_string_equal(vhdx_errmsg(), "cannot shrink fx to 2097152 bytes: block 2 (virtual offset 2097152) past the new end is allocated (file offset 0x600000)");
	{
		struct vhdx_compact_result cr;
		struct vhdx_maint_progress p = { NULL, NULL };
		memset(&cr, 0, sizeof cr);
		assert_int_equal(vhdx_compact_vhdx(l, &p, &cr), -EINVAL);
		assert_string_equal(vhdx_errmsg(), "fx is a fixed disk: every block stays allocated, there is nothing to compact");
	}
	assert_int_equal(vhdx_layer_close(l), 0);
	vhdx_gen_free(img);
}

/* VHD: a fixed and a dynamic disk grow under power cuts. */
static void test_resize_vhd(void **state)
{
	for (int type = 0; type < 2; type++) {
		struct vhdx_create_params p;
		struct vhdx_io *io, *wio;
		struct vhdx_layer *l;
		const uint8_t *d;
		uint8_t *bytes, *final, buf[4096];
		size_t len, flen;

		memset(&p, 0, sizeof p);
		p.type = type ? VHDX_TYPE_DYNAMIC : VHDX_TYPE_FIXED;
		p.virtual_size = 3 * MiB + 512 * 3;
		p.block_size = 1 * MiB;
		p.logical_sector_size = 512;
		assert_int_equal(vhdx_io_mem_new(NULL, 0, "vhd", &io), 0);
		assert_int_equal(vhdx_create_vhd(io, "/tmp/t.vhd", &p, NULL), 0);
		/* data in the last (short) block and at the start */
		assert_int_equal(vhdx_layer_open_io(io, "vhd", VHDX_LAYER_WRITABLE, &l), 0);
		memset(buf, 0xa5, sizeof buf);
		assert_int_equal(l->ops->pwrite(l, buf, 4096, 0), 0);
		assert_int_equal(l->ops->pwrite(l, buf, 1024, 3 * MiB), 0);
		assert_int_equal(l->ops->flush(l), 0);
		wio = l->io;
		d = vhdx_io_mem_data(wio, &len);
		bytes = malloc(len);
		memcpy(bytes, d, len);
		assert_int_equal(vhdx_layer_close(l), 0);
		crash_run(bytes, len, NULL, OP_RESIZE, 9 * MiB, type ? "grow dynamic VHD" : "grow fixed VHD", &final, &flen,
			  NULL);
		free(final);
		free(bytes);
	}
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
	crash_run(bytes, len, NULL, OP_COMPACT, 0, "compact dynamic VHD", &final, &flen, &r);
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
	crash_run(bytes, len, base, OP_COMPACT, 0, "compact differencing VHD", &final, &flen, &r);
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
		cmocka_unit_test(test_resize_relocate),
		cmocka_unit_test(test_resize_fixed_and_refusals),
		cmocka_unit_test(test_resize_vhd),
		cmocka_unit_test(test_compact_vhd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
