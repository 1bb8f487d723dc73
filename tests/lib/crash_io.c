/*
 * crash_io.c - the recording backend of crash tests (see crash_io.h).
 * The live contents are a mem backend; the event list keeps a copy of every
 * write, and set_size is recorded as an event too (as a write of LEN 0 at
 * OFF = the new size, flagged), since a grown file size is metadata that a
 * flush makes durable.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "crash_io.h"

struct crash_io {
	struct vhdx_io io;
	struct vhdx_io *live;
	uint8_t *initial;
	size_t initial_len;
	struct crash_event *ev;
	size_t n_ev, cap_ev;
};

#define EV_TRUNCATE 2

static int record(struct crash_io *c, int kind, uint64_t off, const void *data, size_t len)
{
	struct crash_event *e;

	if (c->n_ev == c->cap_ev) {
		size_t ncap = c->cap_ev ? c->cap_ev * 2 : 256;
		struct crash_event *p = realloc(c->ev, ncap * sizeof *p);
		if (!p)
			return -ENOMEM;
		c->ev = p;
		c->cap_ev = ncap;
	}
	e = &c->ev[c->n_ev];
	memset(e, 0, sizeof *e);
	e->is_flush = kind;
	e->off = off;
	e->len = len;
	if (len) {
		e->data = malloc(len);
		if (!e->data)
			return -ENOMEM;
		memcpy(e->data, data, len);
	}
	c->n_ev++;
	return 0;
}

static int c_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct crash_io *c = (struct crash_io *)io;
	return c->live->m->pread(c->live, buf, len, off);
}

static int c_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct crash_io *c = (struct crash_io *)io;
	int ret = record(c, 0, off, buf, len);
	return ret < 0 ? ret : c->live->m->pwrite(c->live, buf, len, off);
}

static int c_flush(struct vhdx_io *io)
{
	return record((struct crash_io *)io, 1, 0, NULL, 0);
}

static int c_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct crash_io *c = (struct crash_io *)io;
	return c->live->m->get_size(c->live, size);
}

static int c_set_size(struct vhdx_io *io, uint64_t size)
{
	struct crash_io *c = (struct crash_io *)io;
	int ret = record(c, EV_TRUNCATE, size, NULL, 0);
	return ret < 0 ? ret : c->live->m->set_size(c->live, size);
}

static void c_close(struct vhdx_io *io)
{
	struct crash_io *c = (struct crash_io *)io;

	for (size_t i = 0; i < c->n_ev; i++)
		free(c->ev[i].data);
	free(c->ev);
	free(c->initial);
	vhdx_io_close(c->live);
	vhdx_io_fini(io);
	free(c);
}

static const struct vhdx_io_methods crash_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = c_pread,
	.pwrite = c_pwrite,
	.flush = c_flush,
	.get_size = c_get_size,
	.set_size = c_set_size,
	.close = c_close,
	.get_fd = NULL,
};

int crash_io_new(const uint8_t *initial, size_t len, struct vhdx_io **out)
{
	struct crash_io *c = calloc(1, sizeof *c);
	int ret;

	if (!c)
		return -ENOMEM;
	ret = vhdx_io_init(&c->io, &crash_methods, "crash", false);
	if (ret == 0)
		ret = vhdx_io_mem_new(initial, len, "crash-live", &c->live);
	if (ret < 0) {
		free(c);
		return ret;
	}
	c->initial = malloc(len ? len : 1);
	if (!c->initial) {
		c_close(&c->io);
		return -ENOMEM;
	}
	memcpy(c->initial, initial, len);
	c->initial_len = len;
	*out = &c->io;
	return 0;
}

size_t crash_io_events(struct vhdx_io *io)
{
	return ((struct crash_io *)io)->n_ev;
}

/* A growable byte image used to rebuild the durable state. */
struct img {
	uint8_t *p;
	size_t len, cap;
};

static int img_resize(struct img *m, size_t len)
{
	if (len > m->cap) {
		size_t ncap = m->cap ? m->cap : 4096;
		uint8_t *p;
		while (ncap < len)
			ncap *= 2;
		p = realloc(m->p, ncap);
		if (!p)
			return -ENOMEM;
		memset(p + m->cap, 0, ncap - m->cap);
		m->p = p;
		m->cap = ncap;
	}
	if (len < m->len)
		memset(m->p + len, 0, m->len - len);
	m->len = len;
	return 0;
}

static int img_apply(struct img *m, const struct crash_event *e, size_t len)
{
	int ret;

	if (e->is_flush == EV_TRUNCATE)
		return img_resize(m, e->off);
	if (e->is_flush)
		return 0;
	if (e->off + len > m->len) {
		ret = img_resize(m, e->off + len);
		if (ret < 0)
			return ret;
	}
	memcpy(m->p + e->off, e->data, len);
	return 0;
}

int crash_io_image(struct vhdx_io *io, size_t after, enum crash_mode mode, unsigned seed, uint8_t **out,
		   size_t *out_len)
{
	struct crash_io *c = (struct crash_io *)io;
	struct img m = { 0 };
	size_t last_flush = 0, i;
	int ret;

	if (after > c->n_ev)
		after = c->n_ev;
	ret = img_resize(&m, c->initial_len);
	if (ret < 0)
		return ret;
	memcpy(m.p, c->initial, c->initial_len);
	for (i = 0; i < after; i++)
		if (c->ev[i].is_flush == 1)
			last_flush = i + 1;
	for (i = 0; i < last_flush; i++) {
		ret = img_apply(&m, &c->ev[i], c->ev[i].len);
		if (ret < 0)
			goto fail;
	}
	/* events in (last_flush, after]: in flight at the power cut */
	for (i = last_flush; i < after; i++) {
		const struct crash_event *e = &c->ev[i];
		bool last = i + 1 == after;
		size_t len = e->len;
		switch (mode) {
		case CRASH_DROP_ALL:
			continue;
		case CRASH_KEEP_ALL:
			break;
		case CRASH_TORN_512:
		case CRASH_TORN_4096:
			if (last && !e->is_flush) {
				size_t unit = mode == CRASH_TORN_512 ? 512 : 4096;
				len = len > unit ? (len / unit / 2) * unit : 0;
				/* a write torn before its first byte did nothing, not even extend the file */
				if (len == 0)
					continue;
			}
			break;
		case CRASH_RANDOM:
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) & 1)
				continue;
			break;
		}
		ret = img_apply(&m, e, len);
		if (ret < 0)
			goto fail;
	}
	*out = m.p;
	*out_len = m.len;
	return 0;
fail:
	free(m.p);
	return ret;
}

/* ---- borrowing wrapper ---- */
struct borrow_io {
	struct vhdx_io io;
	struct vhdx_io *target;
};

static int b_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct vhdx_io *t = ((struct borrow_io *)io)->target;
	return t->m->pread(t, buf, len, off);
}
static int b_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct vhdx_io *t = ((struct borrow_io *)io)->target;
	return t->m->pwrite(t, buf, len, off);
}
static int b_flush(struct vhdx_io *io)
{
	struct vhdx_io *t = ((struct borrow_io *)io)->target;
	return t->m->flush(t);
}
static int b_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct vhdx_io *t = ((struct borrow_io *)io)->target;
	return t->m->get_size(t, size);
}
static int b_set_size(struct vhdx_io *io, uint64_t size)
{
	struct vhdx_io *t = ((struct borrow_io *)io)->target;
	return t->m->set_size(t, size);
}
static void b_close(struct vhdx_io *io)
{
	vhdx_io_fini(io);
	free(io);
}

static const struct vhdx_io_methods borrow_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = b_pread,
	.pwrite = b_pwrite,
	.flush = b_flush,
	.get_size = b_get_size,
	.set_size = b_set_size,
	.close = b_close,
	.get_fd = NULL,
};

int crash_io_borrow(struct vhdx_io *io, struct vhdx_io **out)
{
	struct borrow_io *b = calloc(1, sizeof *b);
	int ret;

	if (!b)
		return -ENOMEM;
	ret = vhdx_io_init(&b->io, &borrow_methods, io->name, io->readonly);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b->target = io;
	*out = &b->io;
	return 0;
}
