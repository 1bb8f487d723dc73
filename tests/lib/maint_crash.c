/*
 * maint_crash.c - the power-cut driver of the maintenance unit tests (see
 * maint_crash.h).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "chain/chain.h"
#include "format/vhd_format.h"
#include "lib/crash_io.h"
#include "lib/maint_crash.h"
#include "lib/vhdx_gen.h"

static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_TORN_4096,
					 CRASH_RANDOM };

/*
 * Reads the disk of TOP (over BASE when not NULL) up to MAINT_READ_LIMIT into a
 * buffer shared by every call (valid until the next one); *SIZE gets the
 * virtual size.  Past MAINT_READ_LIMIT (the 130 GiB
 * disk of the BAT relocation test) every extent must be non-data: -EBADMSG
 * otherwise.
 */
static int read_disk(struct vhdx_layer *top, struct vhdx_layer *base, uint8_t **out, uint64_t *size)
{
	struct vhdx_layer *layers[2] = { top, base };
	struct vhdx_chain c;
	uint64_t n = VHDX_MIN(top->virtual_size, MAINT_READ_LIMIT);
	/* one buffer for every crash point: big allocations are slow under ASan */
	static uint8_t *buf;
	int ret;

	if (!buf)
		buf = malloc(MAINT_READ_LIMIT);
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

uint8_t *maint_disk_of(const uint8_t *bytes, size_t len, unsigned flags, struct vhdx_layer *base, uint64_t *size,
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

void maint_crash_run(const uint8_t *img, size_t img_len, struct vhdx_layer *base, enum maint_op op, uint64_t new_size,
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
	before = malloc(VHDX_MIN(old_size, MAINT_READ_LIMIT));
	memcpy(before, got, VHDX_MIN(old_size, MAINT_READ_LIMIT));
	assert_int_equal(vhdx_layer_close(l), 0);

	assert_int_equal(crash_io_new(img, img_len, &cio), 0);
	assert_int_equal(crash_io_borrow(cio, &borrowed), 0);
	assert_int_equal(vhdx_layer_open_io(borrowed, "work", VHDX_LAYER_WRITABLE, &l), 0);
	fixed_vhd = l->format == VHDX_FORMAT_VHD && l->type == VHDX_TYPE_FIXED;
	memset(&res_c, 0, sizeof res_c);
	memset(&res_r, 0, sizeof res_r);
	if (op == MAINT_COMPACT)
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
				got = maint_disk_of(bytes, len, writable ? VHDX_LAYER_WRITABLE : 0, base, &size, what, after);
				if (op == MAINT_COMPACT) {
					if (size != old_size || memcmp(got, before, VHDX_MIN(size, MAINT_READ_LIMIT)) != 0)
						fail_msg("%s: crash after event %zu (mode %zu): the disk reads differently", what,
							 after, m);
				} else {
					uint64_t common = VHDX_MIN(VHDX_MIN(size, old_size), MAINT_READ_LIMIT);
					if (size != old_size && size != new_size)
						fail_msg("%s: crash after event %zu (mode %zu): size %llu is neither the old nor the new one",
							 what, after, m, (unsigned long long)size);
					if (memcmp(got, before, common) != 0)
						fail_msg("%s: crash after event %zu (mode %zu): old content changed", what, after, m);
					/* the fixed-VHD window (see vhd_resize.c): the old footer sector before it is zeroed */
					for (uint64_t i = common; i < VHDX_MIN(size, MAINT_READ_LIMIT); i++)
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
	got = maint_disk_of(*final, *final_len, 0, base, &size, what, nev);
	if (op == MAINT_RESIZE) {
		assert_int_equal(size, new_size);
		assert_memory_equal(got, before, VHDX_MIN(VHDX_MIN(size, old_size), MAINT_READ_LIMIT));
		for (uint64_t i = old_size; i < VHDX_MIN(size, MAINT_READ_LIMIT); i++)
			if (got[i])
				fail_msg("%s: the new area is not zero at %llu", what, (unsigned long long)i);
	} else {
		assert_int_equal(size, old_size);
		assert_memory_equal(got, before, VHDX_MIN(size, MAINT_READ_LIMIT));
		if (cres)
			*cres = res_c;
	}
	free(before);
	vhdx_io_close(cio);
}

struct vhdx_gen_image *maint_fixed_image(void)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_FIXED, .virtual_size = 3 * MiB + 512, .seed = 11 };
	struct vhdx_gen_image *img;

	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	return img;
}

struct vhdx_layer *maint_open_writable(const struct vhdx_gen_image *img, const char *name)
{
	struct vhdx_io *io;
	struct vhdx_layer *l;

	assert_int_equal(vhdx_gen_to_io(img, name, &io), 0);
	assert_int_equal(vhdx_layer_open_io(io, name, VHDX_LAYER_WRITABLE, &l), 0);
	return l;
}
