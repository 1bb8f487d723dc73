/*
 * overlay.c - an in-memory overlay of 4 KiB pages over a read-only lower
 * io.  A read-only open of a VHDX whose log is dirty replays the log into
 * it (format/vhdx_log.c), so the reader sees the replayed metadata while
 * the file itself stays byte-identical (FORMAT.md 1.5, "Replay" step 5).
 *
 * Pages live in an array sorted by page number: a read first finds, by
 * binary search, the first page at or after its start, and when that page
 * lies beyond the request (the usual case: a replay touches a few BAT
 * pages, payload reads never hit them) the whole request goes straight to
 * the lower io.  A page whose data pointer is NULL is known to be all
 * zeros (a zero descriptor of the log), which keeps a large zeroed range
 * at 16 bytes a page.
 *
 * Sizes: the visible size starts as the lower file's size and follows
 * writes past the end and set_size.  Lower bytes are shown only below
 * lower_limit, the smallest visible size seen so far, so that shrinking and
 * growing again reads zeros like a truncated file would.
 *
 * Locking: a rwlock; reads share it (concurrent readers never wait for
 * each other), writes and set_size take it exclusively.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

#define PAGE 4096u

struct ovl_page {
	uint64_t pgno;
	uint8_t *data; /* PAGE bytes, or NULL for a page of zeros */
};

struct overlay_io {
	struct vhdx_io io;
	struct vhdx_io *lower;
	pthread_rwlock_t lock;
	uint64_t size;        /* visible size */
	uint64_t lower_limit; /* lower bytes at or past this offset read as zeros */
	struct ovl_page *pages;
	size_t n, cap;
};

static const uint8_t zero_page[PAGE];

/* Index of the first page with pgno >= PGNO (n when none). */
static size_t find_ge(const struct overlay_io *o, uint64_t pgno)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->pages[mid].pgno < pgno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Reads [OFF, OFF+LEN) of what lies under the pages: the lower io below
 * lower_limit, zeros above.  The wrapper that called the overlay already
 * published the request's tag and virtual offset (for a fault backend
 * below) and will count the request and prefix errors, so the lower
 * backend's method is called directly rather than through the wrapper.
 */
static int read_under(struct overlay_io *o, uint8_t *buf, size_t len, uint64_t off)
{
	size_t from_lower = 0;

	if (off < o->lower_limit)
		from_lower = (size_t)VHDX_MIN((uint64_t)len, o->lower_limit - off);
	if (from_lower) {
		int ret = o->lower->m->pread(o->lower, buf, from_lower, off);
		if (ret < 0)
			return ret;
	}
	memset(buf + from_lower, 0, len - from_lower);
	return 0;
}

static int ovl_pread(struct vhdx_io *io, void *vbuf, size_t len, uint64_t off)
{
	struct overlay_io *o = (struct overlay_io *)io;
	uint8_t *buf = vbuf;
	uint64_t end = off + len, cur = off;
	size_t i;
	int ret = 0;

	pthread_rwlock_rdlock(&o->lock);
	if (!vhdx_range_ok(off, len, o->size)) {
		ret = -ENODATA;
		goto out;
	}
	/* pages are page aligned, so the one covering OFF (if any) is the first >= OFF / PAGE */
	i = find_ge(o, off / PAGE);
	while (cur < end) {
		uint64_t pstart = i < o->n ? o->pages[i].pgno * PAGE : UINT64_MAX;

		if (pstart > cur) {
			/* the run below the next page (all of it on the fast path) */
			uint64_t stop = VHDX_MIN(end, pstart);
			ret = read_under(o, buf + (cur - off), (size_t)(stop - cur), cur);
			if (ret < 0)
				goto out;
			cur = stop;
			continue;
		}
		{
			uint64_t stop = VHDX_MIN(end, pstart + PAGE);
			size_t in = (size_t)(cur - pstart), n = (size_t)(stop - cur);
			if (o->pages[i].data)
				memcpy(buf + (cur - off), o->pages[i].data + in, n);
			else
				memset(buf + (cur - off), 0, n);
			cur = stop;
			i++;
		}
	}
out:
	pthread_rwlock_unlock(&o->lock);
	return ret;
}

/* Inserts page PGNO at index I (kept sorted), its bytes read from below unless FULL is about to replace them. */
static int insert_page(struct overlay_io *o, size_t i, uint64_t pgno, bool full, bool zeros)
{
	struct ovl_page pg = { pgno, NULL };
	int ret;

	if (!zeros) {
		pg.data = malloc(PAGE);
		if (!pg.data)
			return vhdx_err(ENOMEM, "overlay: out of memory for a page");
		if (!full) {
			/* read-modify-write: the part of the page not written keeps what lay there */
			ret = read_under(o, pg.data, PAGE, pgno * PAGE);
			if (ret < 0) {
				free(pg.data);
				return ret;
			}
		}
	}
	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 64;
		struct ovl_page *p = vhdx_calloc(ncap, sizeof *p);
		if (!p) {
			free(pg.data);
			return vhdx_err(ENOMEM, "overlay: out of memory for %zu pages", ncap);
		}
		if (o->n)
			memcpy(p, o->pages, o->n * sizeof *p);
		free(o->pages);
		o->pages = p;
		o->cap = ncap;
	}
	memmove(&o->pages[i + 1], &o->pages[i], (o->n - i) * sizeof *o->pages);
	o->pages[i] = pg;
	o->n++;
	return 0;
}

static bool is_zero(const uint8_t *p, size_t len)
{
	return memcmp(p, zero_page, len) == 0;
}

/* Writes N bytes of SRC at offset IN of page PGNO (the caller holds the write lock). */
static int write_page(struct overlay_io *o, uint64_t pgno, size_t in, const uint8_t *src, size_t n)
{
	size_t i = find_ge(o, pgno);
	bool exists = i < o->n && o->pages[i].pgno == pgno;
	bool full = in == 0 && n == PAGE;
	int ret;

	if (!exists) {
		/*
		 * A page of zeros written where zeros already lie (past the
		 * lower data) needs no page at all; a whole page of zeros
		 * elsewhere is kept as a NULL page.
		 */
		if (is_zero(src, n) && (pgno * PAGE >= o->lower_limit))
			return 0;
		ret = insert_page(o, i, pgno, full, full && is_zero(src, n));
		if (ret < 0)
			return ret;
		if (!o->pages[i].data)
			return 0;
	} else if (full && is_zero(src, n)) {
		free(o->pages[i].data);
		o->pages[i].data = NULL;
		return 0;
	} else if (!o->pages[i].data) {
		if (is_zero(src, n))
			return 0;
		o->pages[i].data = calloc(1, PAGE);
		if (!o->pages[i].data)
			return vhdx_err(ENOMEM, "overlay: out of memory for a page");
	}
	memcpy(o->pages[i].data + in, src, n);
	return 0;
}

static int ovl_pwrite(struct vhdx_io *io, const void *vbuf, size_t len, uint64_t off)
{
	struct overlay_io *o = (struct overlay_io *)io;
	const uint8_t *buf = vbuf;
	uint64_t end, cur = off;
	int ret = 0;

	if (vhdx_add_ovf(off, len, &end))
		return vhdx_err(EINVAL, "overlay: write range overflows");
	pthread_rwlock_wrlock(&o->lock);
	while (cur < end) {
		uint64_t pgno = cur / PAGE;
		size_t in = (size_t)(cur % PAGE);
		size_t n = (size_t)VHDX_MIN((uint64_t)(PAGE - in), end - cur);

		ret = write_page(o, pgno, in, buf + (cur - off), n);
		if (ret < 0)
			break;
		cur += n;
	}
	/* like a file, a write past the end extends it (as far as it got) */
	if (cur > o->size)
		o->size = cur;
	pthread_rwlock_unlock(&o->lock);
	return ret;
}

static int ovl_flush(struct vhdx_io *io)
{
	return 0; /* nothing here is ever meant to be durable */
}

static int ovl_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct overlay_io *o = (struct overlay_io *)io;

	pthread_rwlock_rdlock(&o->lock);
	*size = o->size;
	pthread_rwlock_unlock(&o->lock);
	return 0;
}

static int ovl_set_size(struct vhdx_io *io, uint64_t size)
{
	struct overlay_io *o = (struct overlay_io *)io;

	pthread_rwlock_wrlock(&o->lock);
	if (size < o->size) {
		size_t keep = find_ge(o, vhdx_div_round_up(size, PAGE));
		for (size_t i = keep; i < o->n; i++)
			free(o->pages[i].data);
		o->n = keep;
		/* the bytes of a straddling page past the new end must read as zeros if it grows again */
		if (size % PAGE && o->n && o->pages[o->n - 1].pgno == size / PAGE && o->pages[o->n - 1].data)
			memset(o->pages[o->n - 1].data + size % PAGE, 0, PAGE - size % PAGE);
		if (size < o->lower_limit)
			o->lower_limit = size;
	}
	o->size = size;
	pthread_rwlock_unlock(&o->lock);
	return 0;
}

static void ovl_close(struct vhdx_io *io)
{
	struct overlay_io *o = (struct overlay_io *)io;

	for (size_t i = 0; i < o->n; i++)
		free(o->pages[i].data);
	free(o->pages);
	pthread_rwlock_destroy(&o->lock);
	vhdx_io_close(o->lower);
	vhdx_io_fini(io);
	free(o);
}

/* The bytes differ from any descriptor's: zero-copy readers must come through pread. */
static int ovl_get_fd(struct vhdx_io *io)
{
	return -1;
}

/* Locks belong to the file below: the overlay only passes them on. */
static int ovl_lock(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	return vhdx_io_pass_lock(((struct overlay_io *)io)->lower, mode, held);
}

static int ovl_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	return vhdx_io_pass_lock_test(((struct overlay_io *)io)->lower, held);
}

static const struct vhdx_io_methods overlay_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = ovl_pread,
	.pwrite = ovl_pwrite,
	.flush = ovl_flush,
	.get_size = ovl_get_size,
	.set_size = ovl_set_size,
	.close = ovl_close,
	.get_fd = ovl_get_fd,
	.lock = ovl_lock,
	.lock_test = ovl_lock_test,
};

int vhdx_io_overlay_new(struct vhdx_io *lower, struct vhdx_io **out)
{
	struct overlay_io *o;
	uint64_t size;
	int ret;

	ret = vhdx_io_get_size(lower, &size);
	if (ret < 0) {
		vhdx_io_close(lower);
		return ret;
	}
	o = calloc(1, sizeof *o);
	if (!o) {
		vhdx_io_close(lower);
		return vhdx_err(ENOMEM, "out of memory");
	}
	ret = vhdx_io_init(&o->io, &overlay_methods, lower->name, false);
	if (ret < 0) {
		free(o);
		vhdx_io_close(lower);
		return ret;
	}
	pthread_rwlock_init(&o->lock, NULL);
	o->lower = lower;
	o->size = size;
	o->lower_limit = size;
	*out = &o->io;
	return 0;
}

size_t vhdx_io_overlay_pages(struct vhdx_io *io)
{
	struct overlay_io *o = (struct overlay_io *)io;
	size_t n;

	if (!io || io->m != &overlay_methods)
		return 0;
	pthread_rwlock_rdlock(&o->lock);
	n = o->n;
	pthread_rwlock_unlock(&o->lock);
	return n;
}
