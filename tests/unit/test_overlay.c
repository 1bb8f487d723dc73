/*
 * test_overlay.c - io/overlay.c: reads and writes at unaligned offsets
 * across page boundaries against a plain byte-array model, writes past the
 * end, set_size shrinking and growing (the lower file's bytes must not come
 * back), zero pages, the fast path (one lower read when no page is in the
 * way, counted by a spy backend under the overlay), the lower io left
 * untouched, and concurrent readers.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "lib/unit.h"
#include "io/io.h"

#define LOWER_LEN (3 * 4096 + 100)

/* ---- a spy backend: a mem io that counts and records the reads that reach it ---- */
struct spy_io {
	struct vhdx_io io;
	struct vhdx_io *mem;
	unsigned reads;
	uint64_t last_off;
	size_t last_len;
};

static int spy_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct spy_io *s = (struct spy_io *)io;

	__atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_off, off, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_len, len, __ATOMIC_RELAXED);
	return s->mem->m->pread(s->mem, buf, len, off);
}
static int spy_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	fail_msg("the overlay wrote to its lower io at 0x%llx", (unsigned long long)off);
	return -EIO;
}
static int spy_flush(struct vhdx_io *io) { return 0; }
static int spy_get_size(struct vhdx_io *io, uint64_t *size)
{
	return ((struct spy_io *)io)->mem->m->get_size(((struct spy_io *)io)->mem, size);
}
static int spy_set_size(struct vhdx_io *io, uint64_t size)
{
	fail_msg("the overlay resized its lower io");
	return -EIO;
}
static bool spy_closed;
static void spy_close(struct vhdx_io *io)
{
	struct spy_io *s = (struct spy_io *)io;

	spy_closed = true;
	vhdx_io_close(s->mem);
	vhdx_io_fini(io);
	free(s);
}
static int spy_get_fd(struct vhdx_io *io) { return 42; }

static const struct vhdx_io_methods spy_methods = {
	.version = VHDX_IO_METHODS_VERSION, .pread = spy_pread, .pwrite = spy_pwrite, .flush = spy_flush,
	.get_size = spy_get_size, .set_size = spy_set_size, .close = spy_close, .get_fd = spy_get_fd,
};

static uint8_t lower_bytes[LOWER_LEN];

/* An overlay over a spy over a mem io holding lower_bytes. */
static struct vhdx_io *make_overlay(struct spy_io **spy_out)
{
	struct spy_io *spy = calloc(1, sizeof *spy);
	struct vhdx_io *ov;

	for (size_t i = 0; i < LOWER_LEN; i++)
		lower_bytes[i] = (uint8_t)(i * 13 + 1 + (i >> 12));
	assert_non_null(spy);
	assert_ok(vhdx_io_init(&spy->io, &spy_methods, "lower", true));
	assert_ok(vhdx_io_mem_new(lower_bytes, LOWER_LEN, "mem", &spy->mem));
	spy_closed = false;
	assert_ok(vhdx_io_overlay_new(&spy->io, &ov));
	*spy_out = spy;
	return ov;
}

/* The model: what the overlay must show. */
struct model {
	uint8_t *b;
	uint64_t size;
};

static void model_init(struct model *m)
{
	m->b = calloc(1, 1 << 20);
	assert_non_null(m->b);
	memcpy(m->b, lower_bytes, LOWER_LEN);
	m->size = LOWER_LEN;
}

/* Each test's overlay (over a spy over lower_bytes) and the model of what it must show. */
struct ovl_fx {
	struct spy_io *spy;
	struct vhdx_io *ov; /* NULL once a test closed it itself */
	struct model m;
};

static int fx_setup(void **state)
{
	struct ovl_fx *x = calloc(1, sizeof *x);

	assert_non_null(x);
	x->ov = make_overlay(&x->spy);
	model_init(&x->m);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct ovl_fx *x = *state;

	if (x->ov)
		vhdx_io_close(x->ov);
	free(x->m.b);
	free(x);
	return 0;
}

static void model_write(struct model *m, const uint8_t *buf, size_t len, uint64_t off)
{
	memcpy(m->b + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
}

static void model_set_size(struct model *m, uint64_t size)
{
	if (size < m->size)
		memset(m->b + size, 0, m->size - size);
	m->size = size;
}

/* Writes BUF[0..LEN) at OFF through the overlay OV and into the model M. */
static void write_both(struct vhdx_io *ov, struct model *m, const uint8_t *buf, size_t len, uint64_t off)
{
	assert_ok(vhdx_io_pwrite(ov, buf, len, off, VHDX_TAG_OTHER));
	model_write(m, buf, len, off);
}

static void check_all(struct vhdx_io *ov, const struct model *m)
{
	uint64_t size;
	uint8_t *buf = malloc(m->size + 1);

	assert_non_null(buf);
	assert_ok(vhdx_io_get_size(ov, &size));
	assert_true(size == m->size);
	assert_ok(vhdx_io_pread(ov, buf, (size_t)m->size, 0, VHDX_TAG_OTHER));
	assert_memory_equal(buf, m->b, m->size);
	free(buf);
}

static void test_fresh_overlay_reads_lower(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	uint8_t buf[LOWER_LEN];
	uint64_t size;

	assert_ok(vhdx_io_get_size(ov, &size));
	assert_int_equal(size, LOWER_LEN);
	assert_ok(vhdx_io_pread(ov, buf, LOWER_LEN, 0, VHDX_TAG_OTHER));
	assert_memory_equal(buf, lower_bytes, LOWER_LEN);
	assert_int_equal(vhdx_io_overlay_pages(ov), 0);
	assert_int_equal(vhdx_io_get_fd(ov), -1); /* never the lower file's descriptor */
	assert_ok(vhdx_io_flush(ov));
	/* past the end: the wrapper's precise error */
	assert_fails(vhdx_io_pread(ov, buf, 2, LOWER_LEN - 1, VHDX_TAG_BAT), -EBADMSG, "past the end of the file");
	vhdx_io_close(ov);
	x->ov = NULL;
	assert_true(spy_closed); /* the overlay owns and closes its lower io */
}

static void test_unaligned_writes(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	uint8_t w[9000];
	size_t len;
	const uint8_t *mem;

	for (size_t i = 0; i < sizeof w; i++)
		w[i] = (uint8_t)(0xa0 ^ i);
	/* across the boundary of pages 0 and 1, partial at both ends */
	write_both(ov, &x->m, w, 5000, 4000);
	check_all(ov, &x->m);
	assert_int_equal(vhdx_io_overlay_pages(ov), 3); /* pages 0, 1 and 2 (4000..8999 ends in page 2) */
	/* one byte in the last, partial page of the lower file */
	write_both(ov, &x->m, w + 7, 1, LOWER_LEN - 1);
	check_all(ov, &x->m);
	/* past the end: extends, with zeros (not stale bytes) between */
	write_both(ov, &x->m, w, 3000, 20000);
	check_all(ov, &x->m);
	/* a whole page, aligned */
	write_both(ov, &x->m, w + 100, 4096, 8192);
	check_all(ov, &x->m);
	/* a small read inside one page and one straddling overlay and lower */
	{
		uint8_t r[6000];
		assert_ok(vhdx_io_pread(ov, r, 10, 4090, VHDX_TAG_OTHER));
		assert_memory_equal(r, x->m.b + 4090, 10);
		assert_ok(vhdx_io_pread(ov, r, 6000, 10000, VHDX_TAG_OTHER));
		assert_memory_equal(r, x->m.b + 10000, 6000);
	}
	/* the lower file never changed */
	mem = vhdx_io_mem_data(x->spy->mem, &len);
	assert_int_equal(len, LOWER_LEN);
	assert_memory_equal(mem, lower_bytes, LOWER_LEN);
}

static void test_set_size(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	uint8_t w[100];
	size_t len;

	memset(w, 0x77, sizeof w);
	/* grow: the extension reads as zeros */
	assert_ok(vhdx_io_set_size(ov, 40000));
	model_set_size(&x->m, 40000);
	check_all(ov, &x->m);
	/* shrink into the lower data, with an overlaid page straddling the new end */
	write_both(ov, &x->m, w, 100, 5000);
	write_both(ov, &x->m, w, 100, 30000);
	assert_ok(vhdx_io_set_size(ov, 5050));
	model_set_size(&x->m, 5050);
	check_all(ov, &x->m);
	assert_int_equal(vhdx_io_overlay_pages(ov), 1); /* the page at 30000 is gone */
	/* grow again: neither the lower bytes nor the cut part of the page come back */
	assert_ok(vhdx_io_set_size(ov, 16384));
	model_set_size(&x->m, 16384);
	check_all(ov, &x->m);
	/* to zero and back */
	assert_ok(vhdx_io_set_size(ov, 0));
	model_set_size(&x->m, 0);
	assert_ok(vhdx_io_set_size(ov, 8192));
	model_set_size(&x->m, 8192);
	check_all(ov, &x->m);
	assert_int_equal(vhdx_io_overlay_pages(ov), 0);
	/* the lower io kept its size and bytes */
	vhdx_io_mem_data(x->spy->mem, &len);
	assert_int_equal(len, LOWER_LEN);
	assert_memory_equal(vhdx_io_mem_data(x->spy->mem, &len), lower_bytes, LOWER_LEN);
}

static void test_zero_pages(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	static const uint8_t zeros[3 * 4096];
	uint8_t w[4096];

	memset(w, 0x31, sizeof w);
	/* whole zero pages over lower data: kept (as zero pages), and read as zeros */
	write_both(ov, &x->m, zeros, 8192, 0);
	check_all(ov, &x->m);
	assert_int_equal(vhdx_io_overlay_pages(ov), 2);
	/* partly rewritten zero page */
	write_both(ov, &x->m, w, 10, 4100);
	check_all(ov, &x->m);
	/* zeros past the lower data cost no page but extend the size */
	write_both(ov, &x->m, zeros, sizeof zeros, 16384);
	check_all(ov, &x->m);
	assert_int_equal(vhdx_io_overlay_pages(ov), 2);
	/* a data page turned back into zeros */
	write_both(ov, &x->m, w, 4096, 16384);
	write_both(ov, &x->m, zeros, 4096, 16384);
	check_all(ov, &x->m);
}

/* A request with no overlaid page in its range is one read of the lower io, whole. */
static void test_fast_path(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	uint8_t w[16], r[3 * 4096];

	memset(w, 0xee, sizeof w);
	assert_ok(vhdx_io_pwrite(ov, w, sizeof w, 4096 + 50, VHDX_TAG_OTHER)); /* page 1 */
	x->spy->reads = 0;
	assert_ok(vhdx_io_pread(ov, r, 4096, 0, VHDX_TAG_OTHER));
	assert_int_equal(x->spy->reads, 1);
	assert_true(x->spy->last_off == 0 && x->spy->last_len == 4096);
	x->spy->reads = 0;
	assert_ok(vhdx_io_pread(ov, r, 4196, 8192, VHDX_TAG_OTHER));
	assert_int_equal(x->spy->reads, 1);
	assert_true(x->spy->last_off == 8192 && x->spy->last_len == 4196);
	/* across the overlaid page: the lower io is read around it, page 1 not at all */
	x->spy->reads = 0;
	assert_ok(vhdx_io_pread(ov, r, sizeof r, 0, VHDX_TAG_OTHER));
	assert_int_equal(x->spy->reads, 2);
	assert_true(x->spy->last_off == 8192 && x->spy->last_len == 4096);
	assert_memory_equal(r, lower_bytes, 4096);
	assert_memory_equal(r + 4096 + 50, w, sizeof w);
	assert_memory_equal(r + 4096, lower_bytes + 4096, 50);
	assert_memory_equal(r + 8192, lower_bytes + 8192, 4096);
}

static void test_readonly_flag(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	uint8_t w[4] = { 1, 2, 3, 4 };

	ov->readonly = true; /* what a replay does when it is done */
	assert_fails(vhdx_io_pwrite(ov, w, 4, 0, VHDX_TAG_BAT), -EROFS, "read-only");
	assert_fails(vhdx_io_set_size(ov, 0), -EROFS, "read-only");
	assert_int_equal(vhdx_io_overlay_pages(ov), 0);
	vhdx_io_close(ov);
	x->ov = NULL;
	/* a non-overlay io has no overlay pages */
	{
		struct vhdx_io *mem;
		assert_ok(vhdx_io_mem_new(w, 4, "m", &mem));
		assert_int_equal(vhdx_io_overlay_pages(mem), 0);
		vhdx_io_close(mem);
	}
}

/* ---- concurrent readers ---- */
struct reader_arg {
	struct vhdx_io *ov;
	const struct model *m;
	unsigned seed;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[9000];

	for (int i = 0; i < 3000; i++) {
		uint64_t off;
		size_t len;
		a->seed = a->seed * 1103515245u + 12345u;
		off = (a->seed >> 8) % a->m->size;
		len = 1 + (a->seed >> 3) % sizeof buf;
		if (off + len > a->m->size)
			len = (size_t)(a->m->size - off);
		if (vhdx_io_pread(a->ov, buf, len, off, VHDX_TAG_PAYLOAD) < 0 || memcmp(buf, a->m->b + off, len))
			a->bad++;
	}
	return NULL;
}

static void test_concurrent_reads(void **state)
{
	struct ovl_fx *x = *state;
	struct vhdx_io *ov = x->ov;
	struct reader_arg args[4];
	pthread_t th[4];
	uint8_t w[3000];

	for (int k = 0; k < 6; k++) {
		memset(w, 0x40 + k, sizeof w);
		write_both(ov, &x->m, w, sizeof w, 2500u * k * 3);
	}
	for (int t = 0; t < 4; t++) {
		args[t] = (struct reader_arg){ ov, &x->m, 17u + t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, reader, &args[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].bad, 0);
	}
}

UNIT_MAIN_EACH(fx_setup, fx_teardown,
	       test_fresh_overlay_reads_lower, test_unaligned_writes, test_set_size, test_zero_pages, test_fast_path,
	       test_readonly_flag, test_concurrent_reads)
