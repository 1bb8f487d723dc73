/*
 * callbacks.c - L0 backend over caller-supplied I/O (struct
 * vhdx_io_callbacks of libvhdx.h): an image whose bytes live inside another
 * container (an E01, a zip, a Python file object, a remote source).
 *
 * The caller's pread/pwrite may return fewer bytes than asked; this backend
 * asks again for the rest and turns an early end of data into -ENODATA, so
 * the layers above see the exact-length contract of io.h.  With
 * VHDX_IO_SERIALIZE every callback runs under one mutex per source.  The
 * thread's error message is cleared before each callback so that a message
 * the callback records with vhdx_set_errmsg() (and only that one) is kept
 * under the wrapper's "NAME: reading STRUCT at offset ..." prefix.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

struct cb_io {
	struct vhdx_io io;
	struct vhdx_io_callbacks cb; /* the caller's table, copied (name points to io.name) */
	void *opaque;
	bool serialize;
	pthread_mutex_t lock;
};

static void cb_lock(struct cb_io *c)
{
	if (c->serialize)
		pthread_mutex_lock(&c->lock);
}

static void cb_unlock(struct cb_io *c)
{
	if (c->serialize)
		pthread_mutex_unlock(&c->lock);
}

/* Result of a callback that returned N > LEFT or an errno out of range: a caller bug, said plainly. */
static int cb_bad_return(struct cb_io *c, const char *what, long long n)
{
	return vhdx_err(EIO, "%s: the %s callback returned %lld, which is neither a byte count of the request nor -errno",
			c->io.name, what, n);
}

/*
 * The whole of [OFF, OFF+LEN) through the caller's pread (WBUF NULL) or
 * pwrite (RBUF NULL), asking again after a short count; an early end of
 * the source on a read is -ENODATA (io.h's contract).
 */
static int cb_transfer(struct cb_io *c, uint8_t *rbuf, const uint8_t *wbuf, size_t len, uint64_t off)
{
	int ret = 0;

	cb_lock(c);
	while (len) {
		ssize_t n;
		vhdx_err_clear();
		n = rbuf ? c->cb.pread(c->opaque, rbuf, len, off) : c->cb.pwrite(c->opaque, wbuf, len, off);
		if (n == 0 && rbuf) {
			ret = -ENODATA; /* the source ends before the request does */
			break;
		}
		if (n <= 0 || (size_t)n > len) {
			ret = n < 0 && n >= -4095 ? (int)n : cb_bad_return(c, rbuf ? "pread" : "pwrite", (long long)n);
			break;
		}
		if (rbuf)
			rbuf += n;
		else
			wbuf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	cb_unlock(c);
	return ret;
}

static int cb_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	return cb_transfer((struct cb_io *)io, buf, NULL, len, off);
}

static int cb_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct cb_io *c = (struct cb_io *)io;

	if (!c->cb.pwrite)
		return vhdx_err(EROFS, "%s: the source has no pwrite callback", io->name);
	return cb_transfer(c, NULL, buf, len, off);
}

static int cb_flush(struct vhdx_io *io)
{
	struct cb_io *c = (struct cb_io *)io;
	int ret;

	if (!c->cb.flush)
		return 0;
	cb_lock(c);
	vhdx_err_clear();
	ret = c->cb.flush(c->opaque);
	cb_unlock(c);
	return ret > 0 ? 0 : ret;
}

static int cb_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct cb_io *c = (struct cb_io *)io;
	int ret;

	cb_lock(c);
	vhdx_err_clear();
	ret = c->cb.get_size(c->opaque, size);
	cb_unlock(c);
	return ret > 0 ? 0 : ret;
}

/*
 * The format layers only grow a file (a new block at the end) or cut it
 * (compact, log replay of a shorter file).  Growing writes one zero byte at
 * the new end through pwrite; cutting needs a callback the table does not
 * have, so it is refused.
 */
static int cb_set_size(struct vhdx_io *io, uint64_t size)
{
	uint64_t cur;
	int ret = cb_get_size(io, &cur);

	if (ret < 0)
		return ret;
	if (size == cur)
		return 0;
	if (size < cur)
		return vhdx_err(ENOTSUP, "%s: a caller-supplied source cannot be shortened (from %llu to %llu bytes)",
				io->name, (unsigned long long)cur, (unsigned long long)size);
	return cb_pwrite(io, "", 1, size - 1);
}

static void cb_close(struct vhdx_io *io)
{
	struct cb_io *c = (struct cb_io *)io;

	if (c->cb.close)
		c->cb.close(c->opaque);
	pthread_mutex_destroy(&c->lock);
	vhdx_io_fini(io);
	free(c);
}

static const struct vhdx_io_methods cb_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = cb_pread,
	.pwrite = cb_pwrite,
	.flush = cb_flush,
	.get_size = cb_get_size,
	.set_size = cb_set_size,
	.close = cb_close,
	.get_fd = NULL,
};

int vhdx_io_callbacks_new(const struct vhdx_io_callbacks *cb, void *opaque, bool writable, struct vhdx_io **out)
{
	struct vhdx_io_callbacks t; /* the caller's table at our size: an older one leaves the newer members NULL */
	struct cb_io *c;
	int ret;

	memset(&t, 0, sizeof t);
	ret = cb ? vhdx_struct_copy_in(&t, sizeof t, cb, offsetof(struct vhdx_io_callbacks, pwrite), "caller I/O",
				       "the callbacks")
		 : vhdx_err(EINVAL, "caller I/O: the callbacks struct_size 0 is too small");
	if (ret < 0)
		goto fail_unowned;
	if (!t.pread || !t.get_size) {
		ret = vhdx_err(EINVAL, "caller I/O%s%s: pread and get_size callbacks are required", t.name ? " " : "",
			       t.name ? t.name : "");
		goto fail_unowned;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto fail_unowned;
	}
	c->cb = t;
	c->opaque = opaque;
	c->serialize = c->cb.flags & VHDX_IO_SERIALIZE;
	pthread_mutex_init(&c->lock, NULL);
	ret = vhdx_io_init(&c->io, &cb_methods, t.name ? t.name : "(caller I/O)", !writable);
	if (ret < 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		goto fail_unowned;
	}
	c->cb.name = NULL; /* the name lives in io.name (a parent may be renamed) */
	if (writable && !c->cb.pwrite) {
		ret = vhdx_err(EROFS, "%s: cannot open writable: the source has no pwrite callback", c->io.name);
		cb_close(&c->io);
		return ret;
	}
	*out = &c->io;
	return 0;
fail_unowned:
	vhdx_io_callbacks_release(cb, opaque);
	return ret;
}

void vhdx_io_callbacks_release(const struct vhdx_io_callbacks *cb, void *opaque)
{
	char *m;

	if (!cb || cb->struct_size < offsetof(struct vhdx_io_callbacks, close) + sizeof cb->close || !cb->close)
		return;
	/* the close callback may use libvhdx and so overwrite the message of the failure */
	m = vhdx_err_dup();
	cb->close(opaque);
	if (m) {
		vhdx_err(0, "%s", m);
		free(m);
	}
}

const struct vhdx_io_callbacks *vhdx_io_callbacks_of(struct vhdx_io *io, void **opaque)
{
	struct cb_io *c = (struct cb_io *)io;

	if (!io || io->m != &cb_methods)
		return NULL;
	*opaque = c->opaque;
	return &c->cb;
}
