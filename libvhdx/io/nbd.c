/*
 * nbd.c - the NBD backend: an image (or a parent) read from an NBD server
 * through libnbd, named by its URI (nbd://HOST[:PORT]/EXPORT,
 * nbds://..., nbd+unix:///EXPORT?socket=PATH; libnbd's nbd_connect_uri
 * documents them all).  io->name is the URI, so every message and every
 * fault rule's file= sees it as it sees a file's path.
 *
 * Threads: one libnbd handle runs one synchronous request at a time, so
 * the backend keeps a small pool of connections, each with its own mutex,
 * and opens another (up to NBD_POOL) only when every open one is busy and
 * the server says several connections see the same data (read-only use,
 * or NBD's multi-conn flag).  Requests longer than the server's maximum
 * are split.
 *
 * Errors: a failed request is EIO (ENOSPC, EDQUOT and EROFS pass
 * through) with libnbd's message, which carries what the server said.
 * The export cannot grow: set_size and writes past its end fail with
 * ENOSPC saying so.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

#ifdef HAVE_LIBNBD
#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>

#define NBD_POOL 4
#define NBD_MAX_REQUEST (32u << 20) /* what every server takes (the NBD protocol's recommendation) */

struct nbd_conn {
	pthread_mutex_t lock;   /* held for one request */
	struct nbd_handle *h;
};

struct nbd_io {
	struct vhdx_io io;
	uint64_t size;
	uint32_t max_req;
	bool can_flush;
	bool can_pool;          /* more connections see the same bytes */
	pthread_mutex_t grow;   /* serialises adding a connection */
	atomic_uint n;          /* connections in c[] (only grows) */
	atomic_uint next;       /* round-robin start */
	struct nbd_conn c[NBD_POOL];
};

/* Returns the errno of libnbd's last failure on this thread, mapped as the top of the file says. */
static int nbd_errno_mapped(void)
{
	int e = nbd_get_errno();

	return e == ENOSPC || e == EDQUOT || e == EROFS || e == ENOMEM ? e : EIO;
}

/* A connected handle to URI, or NULL with the error set (-errno in *RET). */
static struct nbd_handle *nbd_connect(const char *uri, int *ret)
{
	struct nbd_handle *h = nbd_create();

	if (!h) {
		*ret = vhdx_err(ENOMEM, "%s: %s", uri, nbd_get_error());
		return NULL;
	}
	if (nbd_connect_uri(h, uri) < 0) {
		int e = nbd_get_errno();
		/* a server that says "no such export" is a missing file; others are I/O errors */
		*ret = vhdx_err(e == ENOENT || e == ECONNREFUSED ? ENOENT : e == EINVAL ? EINVAL : EIO,
				"%s: cannot open: %s", uri, nbd_get_error());
		nbd_close(h);
		return NULL;
	}
	return h;
}

/* Locks a connection for one request: a free one, a new one, or waits for one. */
static struct nbd_conn *conn_get(struct nbd_io *b)
{
	unsigned n = atomic_load(&b->n), start = atomic_fetch_add(&b->next, 1);
	struct nbd_conn *c;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		c = &b->c[(start + i) % n];
		if (pthread_mutex_trylock(&c->lock) == 0)
			return c;
	}
	if (b->can_pool && n < NBD_POOL && pthread_mutex_trylock(&b->grow) == 0) {
		n = atomic_load(&b->n);
		if (n < NBD_POOL) {
			struct nbd_handle *h = nbd_connect(b->io.name, &ret);
			if (h) {
				c = &b->c[n];
				c->h = h;
				pthread_mutex_lock(&c->lock);
				atomic_store(&b->n, n + 1);
				pthread_mutex_unlock(&b->grow);
				return c;
			}
			/* the pool stays as it is: the open connections still work */
		}
		pthread_mutex_unlock(&b->grow);
	}
	c = &b->c[start % n];
	pthread_mutex_lock(&c->lock);
	return c;
}

static void conn_put(struct nbd_conn *c)
{
	pthread_mutex_unlock(&c->lock);
}

/* Reads (BUF) or writes (WBUF) LEN bytes at OFF in requests the server takes, each on a free connection. */
static int nbd_io_transfer(struct nbd_io *b, void *buf, const void *wbuf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	const uint8_t *wp = wbuf;

	while (len) {
		size_t n = len < b->max_req ? len : b->max_req;
		struct nbd_conn *c = conn_get(b);
		int r = wbuf ? nbd_pwrite(c->h, wp, n, off, 0) : nbd_pread(c->h, p, n, off, 0);
		if (r < 0) {
			int e = nbd_errno_mapped();
			r = vhdx_err(e, "NBD %s: %s", wbuf ? "write" : "read", nbd_get_error());
		}
		conn_put(c);
		if (r < 0)
			return r;
		if (wbuf)
			wp += n;
		else
			p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int nbd_io_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct nbd_io *b = (struct nbd_io *)io;

	if (off > b->size || len > b->size - off)
		return -ENODATA;
	return nbd_io_transfer(b, buf, NULL, len, off);
}

static int nbd_io_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct nbd_io *b = (struct nbd_io *)io;

	if (off > b->size || len > b->size - off)
		return vhdx_err(ENOSPC, "an NBD export cannot grow: writing %zu bytes at %llu, past its end at %llu",
				len, (unsigned long long)off, (unsigned long long)b->size);
	return nbd_io_transfer(b, NULL, buf, len, off);
}

static int nbd_io_flush(struct vhdx_io *io)
{
	struct nbd_io *b = (struct nbd_io *)io;
	unsigned n = atomic_load(&b->n);
	int ret = 0;

	if (!b->can_flush)
		return 0; /* the server has no cache to flush (NBD: no FLUSH flag) */
	/* every connection: a write completed on one must be durable whichever it went through */
	for (unsigned i = 0; i < n && ret == 0; i++) {
		struct nbd_conn *c = &b->c[i];
		pthread_mutex_lock(&c->lock);
		if (nbd_flush(c->h, 0) < 0) {
			int e = nbd_errno_mapped();
			ret = vhdx_err(e, "NBD flush: %s", nbd_get_error());
		}
		pthread_mutex_unlock(&c->lock);
	}
	return ret;
}

static int nbd_io_get_size(struct vhdx_io *io, uint64_t *size)
{
	*size = ((struct nbd_io *)io)->size;
	return 0;
}

static int nbd_io_set_size(struct vhdx_io *io, uint64_t size)
{
	struct nbd_io *b = (struct nbd_io *)io;

	if (size == b->size)
		return 0;
	return vhdx_err(ENOSPC, "an NBD export has a fixed size (%llu bytes); cannot resize it to %llu",
			(unsigned long long)b->size, (unsigned long long)size);
}

static int nbd_io_get_fd(struct vhdx_io *io)
{
	return -1;
}

static void nbd_io_close(struct vhdx_io *io)
{
	struct nbd_io *b = (struct nbd_io *)io;
	unsigned n = atomic_load(&b->n);

	for (unsigned i = 0; i < n; i++) {
		nbd_shutdown(b->c[i].h, 0);
		nbd_close(b->c[i].h);
	}
	for (unsigned i = 0; i < NBD_POOL; i++)
		pthread_mutex_destroy(&b->c[i].lock);
	pthread_mutex_destroy(&b->grow);
	vhdx_io_fini(io);
	free(b);
}

static const struct vhdx_io_methods nbd_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = nbd_io_pread,
	.pwrite = nbd_io_pwrite,
	.flush = nbd_io_flush,
	.get_size = nbd_io_get_size,
	.set_size = nbd_io_set_size,
	.close = nbd_io_close,
	.get_fd = nbd_io_get_fd,
};

int vhdx_io_nbd_open(const char *uri, bool writable, struct vhdx_io **out)
{
	struct nbd_io *b = calloc(1, sizeof *b);
	struct nbd_handle *h;
	int64_t size, maxb;
	int ret;

	if (!b)
		return vhdx_err(ENOMEM, "out of memory");
	h = nbd_connect(uri, &ret);
	if (!h) {
		free(b);
		return ret;
	}
	size = nbd_get_size(h);
	if (size < 0) {
		ret = vhdx_err(EIO, "%s: getting the export's size: %s", uri, nbd_get_error());
		goto fail;
	}
	if (writable && nbd_is_read_only(h) != 0) {
		ret = vhdx_err(EROFS, "%s: cannot open for writing: the server exports it read-only", uri);
		goto fail;
	}
	ret = vhdx_io_init(&b->io, &nbd_methods, uri, !writable);
	if (ret < 0)
		goto fail;
	b->size = (uint64_t)size;
	maxb = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	b->max_req = maxb > 0 && maxb < NBD_MAX_REQUEST ? (uint32_t)maxb : NBD_MAX_REQUEST;
	b->can_flush = nbd_can_flush(h) == 1;
	b->can_pool = !writable || nbd_can_multi_conn(h) == 1;
	pthread_mutex_init(&b->grow, NULL);
	for (unsigned i = 0; i < NBD_POOL; i++)
		pthread_mutex_init(&b->c[i].lock, NULL);
	b->c[0].h = h;
	atomic_store(&b->n, 1);
	*out = &b->io;
	return 0;
fail:
	nbd_close(h);
	free(b);
	return ret;
}

#else /* !HAVE_LIBNBD */

int vhdx_io_nbd_open(const char *uri, bool writable, struct vhdx_io **out)
{
	return vhdx_err(ENOTSUP, "%s: this libvhdx was built without libnbd, so it cannot open NBD URIs "
				 "(rebuild with libnbd-dev installed, or serve the file another way)", uri);
}

#endif /* HAVE_LIBNBD */
