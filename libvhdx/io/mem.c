/*
 * mem.c - an in-memory file: the backend of unit tests, crash simulation and
 * fuzzing.  It grows on writes past its end like a sparse file would.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

struct mem_io {
	struct vhdx_io io;
	pthread_rwlock_t lock;
	uint8_t *data;
	size_t len, cap;
};

static int mem_reserve(struct mem_io *m, uint64_t size)
{
	size_t ncap;
	uint8_t *p;

	if (size > SIZE_MAX / 2)
		return vhdx_err(ENOMEM, "in-memory file cannot grow to %llu bytes", (unsigned long long)size);
	if (size <= m->cap)
		return 0;
	ncap = m->cap ? m->cap : 4096;
	while (ncap < size)
		ncap *= 2;
	p = realloc(m->data, ncap);
	if (!p)
		return vhdx_err(ENOMEM, "out of memory growing an in-memory file to %zu bytes", ncap);
	memset(p + m->cap, 0, ncap - m->cap);
	m->data = p;
	m->cap = ncap;
	return 0;
}

static int mem_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct mem_io *m = (struct mem_io *)io;
	int ret = 0;

	pthread_rwlock_rdlock(&m->lock);
	if (!vhdx_range_ok(off, len, m->len))
		ret = -ENODATA;
	else if (len)
		memcpy(buf, m->data + off, len); /* data is NULL while the file is empty */
	pthread_rwlock_unlock(&m->lock);
	return ret;
}

static int mem_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct mem_io *m = (struct mem_io *)io;
	uint64_t end;
	int ret;

	if (vhdx_add_ovf(off, len, &end))
		return vhdx_err(EINVAL, "write range overflows");
	pthread_rwlock_wrlock(&m->lock);
	ret = mem_reserve(m, end);
	if (ret == 0) {
		memcpy(m->data + off, buf, len);
		if (end > m->len)
			m->len = end;
	}
	pthread_rwlock_unlock(&m->lock);
	return ret;
}

static int mem_flush(struct vhdx_io *io)
{
	return 0;
}

static int mem_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct mem_io *m = (struct mem_io *)io;

	pthread_rwlock_rdlock(&m->lock);
	*size = m->len;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int mem_set_size(struct vhdx_io *io, uint64_t size)
{
	struct mem_io *m = (struct mem_io *)io;
	int ret;

	pthread_rwlock_wrlock(&m->lock);
	ret = mem_reserve(m, size);
	if (ret == 0) {
		if (size < m->len)
			memset(m->data + size, 0, m->len - size);
		m->len = size;
	}
	pthread_rwlock_unlock(&m->lock);
	return ret;
}

static void mem_close(struct vhdx_io *io)
{
	struct mem_io *m = (struct mem_io *)io;

	pthread_rwlock_destroy(&m->lock);
	free(m->data);
	vhdx_io_fini(io);
	free(m);
}

static const struct vhdx_io_methods mem_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.flush = mem_flush,
	.get_size = mem_get_size,
	.set_size = mem_set_size,
	.close = mem_close,
	.get_fd = NULL,
};

int vhdx_io_mem_new(const void *data, size_t len, const char *name, struct vhdx_io **out)
{
	struct mem_io *m = calloc(1, sizeof *m);
	int ret;

	if (!m)
		return vhdx_err(ENOMEM, "out of memory");
	ret = vhdx_io_init(&m->io, &mem_methods, name ? name : "mem", false);
	if (ret < 0) {
		free(m);
		return ret;
	}
	pthread_rwlock_init(&m->lock, NULL);
	if (len) {
		ret = mem_reserve(m, len);
		if (ret < 0) {
			mem_close(&m->io);
			return ret;
		}
		memcpy(m->data, data, len);
		m->len = len;
	}
	*out = &m->io;
	return 0;
}

const uint8_t *vhdx_io_mem_data(struct vhdx_io *io, size_t *len)
{
	struct mem_io *m = (struct mem_io *)io;

	*len = m->len;
	return m->data;
}
