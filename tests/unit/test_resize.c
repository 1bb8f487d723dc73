/*
 * test_resize.c - vhdx resize (libvhdx/maint/resize.c, format/vhdx_resize.c,
 * format/vhd_resize.c) and its crash safety, proven the SQLite way through
 * tests/lib/maint_crash.h: a power cut after EVERY I/O event of the resize
 * must leave an image that reads the old bytes up to the smaller size,
 * zeros past the old end, and has the old or the new size.
 *
 * Images: a dynamic VHDX grown past what its BAT region holds (the BAT
 * moves) and inside it (new entries journaled in place), a fixed VHDX
 * grown with allocated blocks, the refusals with their exact messages, and
 * a fixed and a dynamic VHD grown with data in the short last block.
 * (Growing and shrinking a compacted image is in test_compact.c: it checks
 * what compact left past the end of the moved short block.)
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
#include "format/vhd_create.h"
#include "format/vhd_format.h"
#include "format/vhdx_maint.h"
#include "lib/maint_crash.h"
#include "lib/vhdx_gen.h"

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
	uint8_t *final;
	size_t flen;

	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	assert_int_equal(img->bat_length, MiB);
	maint_crash_run(img->file, img->file_len, NULL, MAINT_RESIZE, 130ull << 30, "grow dynamic (BAT relocated)", &final,
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
	free(final);
	vhdx_gen_free(img);

	/* growing inside the region: new entries journaled in place */
	{
		struct vhdx_gen_opts o2 = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 6 * MiB, .seed = 10,
					    .blocks = blocks, .n_blocks = 2 };
		struct vhdx_gen_image *img2;
		assert_int_equal(vhdx_gen_build(&o2, &img2), 0);
		maint_crash_run(img2->file, img2->file_len, NULL, MAINT_RESIZE, 12 * MiB, "grow dynamic (BAT in place)", &final,
			  &flen, NULL);
		free(final);
		vhdx_gen_free(img2);
	}
}

/* A fixed VHDX grows with allocated (zero) blocks; refusals carry exact messages. */
static void test_resize_fixed_and_refusals(void **state)
{
	struct vhdx_gen_image *img = maint_fixed_image();
	struct vhdx_layer *l;
	struct vhdx_resize_result r;
	uint8_t *final;
	size_t flen;

	maint_crash_run(img->file, img->file_len, NULL, MAINT_RESIZE, 6 * MiB, "grow fixed", &final, &flen, NULL);
	free(final);

	l = maint_open_writable(img, "fx");
	assert_int_equal(vhdx_resize_vhdx(l, 3 * MiB + 100, &r), -EINVAL);
	assert_string_equal(vhdx_errmsg(), "new size 3145828 is not a positive multiple of the logical sector size (512 bytes)");
	assert_int_equal(vhdx_resize_vhdx(l, 2 * MiB, &r), -EINVAL);
	assert_string_equal(vhdx_errmsg(), "cannot shrink fx to 2097152 bytes: block 2 (virtual offset 2097152) past the new end is allocated (file offset 0x600000)");
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
		maint_crash_run(bytes, len, NULL, MAINT_RESIZE, 9 * MiB, type ? "grow dynamic VHD" : "grow fixed VHD", &final, &flen,
			  NULL);
		free(final);
		free(bytes);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resize_relocate),
		cmocka_unit_test(test_resize_fixed_and_refusals),
		cmocka_unit_test(test_resize_vhd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
