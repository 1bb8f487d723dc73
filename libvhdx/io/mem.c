/*
 * mem.c - an in-memory file: the backend of unit tests, crash simulation and
 * fuzzing.  It grows on writes past its end like a sparse file would.
 *
 * The bytes live in a struct mem_file that several opens can share
 * (vhdx_io_mem_reopen), each with a lock of its own, so that unit tests
 * see lock conflicts exactly as two opens of one real file would (issue
 * #14): any number of SHARED locks, or one EXCLUSIVE.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "internal.h"
#include "io/io.h"

struct mem_file {
	pthread_rwlock_t lock; /* data, len, cap */
	uint8_t *data;
	size_t len, cap;
	pthread_mutex_t lk;    /* refs, nshared, excl */
	unsigned refs;
	unsigned nshared;      /* opens holding a SHARED lock */
	bool excl;             /* an open holds the EXCLUSIVE lock */
};

struct mem_io {
	struct vhdx_io io;
	struct mem_file *f;
	enum vhdx_lock_mode mode; /* this open's lock */
};

static int mem_reserve(struct mem_file *m, uint64_t size)
{
	size_t old_cap = m->cap;

	if (size > SIZE_MAX / 2)
		return vhdx_err(ENOMEM, "in-memory file cannot grow to %llu bytes", (unsigned long long)size);
	if (grow(&m->data, &m->cap, (size_t)size, 1, 4096) < 0)
		return vhdx_err(ENOMEM, "out of memory growing an in-memory file to %llu bytes", (unsigned long long)size);
	memset(m->data + old_cap, 0, m->cap - old_cap);
	return 0;
}

static int mem_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct mem_file *m = ((struct mem_io *)io)->f;
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
	struct mem_file *m = ((struct mem_io *)io)->f;
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
	struct mem_file *m = ((struct mem_io *)io)->f;

	pthread_rwlock_rdlock(&m->lock);
	*size = m->len;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int mem_set_size(struct vhdx_io *io, uint64_t size)
{
	struct mem_file *m = ((struct mem_io *)io)->f;
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

/* Drops this open's lock; caller holds f->lk. */
static void mem_unlock(struct mem_io *mi)
{
	if (mi->mode == VHDX_LOCK_SHARED)
		mi->f->nshared--;
	else if (mi->mode == VHDX_LOCK_EXCLUSIVE)
		mi->f->excl = false;
	mi->mode = VHDX_LOCK_NONE;
}

static int mem_lock(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	struct mem_io *mi = (struct mem_io *)io;
	struct mem_file *f = mi->f;
	unsigned others_shared;
	bool others_excl;
	int ret = 0;

	pthread_mutex_lock(&f->lk);
	others_shared = f->nshared - (mi->mode == VHDX_LOCK_SHARED);
	others_excl = f->excl && mi->mode != VHDX_LOCK_EXCLUSIVE;
	if (mode == VHDX_LOCK_SHARED && others_excl) {
		held->mode = VHDX_LOCK_EXCLUSIVE;
		ret = -EBUSY;
	} else if (mode == VHDX_LOCK_EXCLUSIVE && (others_excl || others_shared)) {
		held->mode = others_excl ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_SHARED;
		ret = -EBUSY;
	} else {
		mem_unlock(mi);
		if (mode == VHDX_LOCK_SHARED)
			f->nshared++;
		else if (mode == VHDX_LOCK_EXCLUSIVE)
			f->excl = true;
		mi->mode = mode;
	}
	pthread_mutex_unlock(&f->lk);
	return ret;
}

static int mem_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	struct mem_io *mi = (struct mem_io *)io;
	struct mem_file *f = mi->f;

	pthread_mutex_lock(&f->lk);
	if (f->excl && mi->mode != VHDX_LOCK_EXCLUSIVE)
		held->mode = VHDX_LOCK_EXCLUSIVE;
	else if (f->nshared - (mi->mode == VHDX_LOCK_SHARED))
		held->mode = VHDX_LOCK_SHARED;
	else
		held->mode = VHDX_LOCK_NONE;
	pthread_mutex_unlock(&f->lk);
	return 0;
}

static void mem_close(struct vhdx_io *io)
{
	struct mem_io *mi = (struct mem_io *)io;
	struct mem_file *f = mi->f;
	bool last;

	pthread_mutex_lock(&f->lk);
	mem_unlock(mi); /* like close(2): the open's lock goes with it */
	last = --f->refs == 0;
	pthread_mutex_unlock(&f->lk);
	if (last) {
		pthread_rwlock_destroy(&f->lock);
		pthread_mutex_destroy(&f->lk);
		free(f->data);
		free(f);
	}
	vhdx_io_fini(io);
	free(mi);
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
	.lock = mem_lock,
	.lock_test = mem_lock_test,
};

/* A new open of F (taking a reference) named NAME. */
static int mem_open(struct mem_file *f, const char *name, struct vhdx_io **out)
{
	struct mem_io *mi = calloc(1, sizeof *mi);
	int ret;

	if (!mi)
		return vhdx_err(ENOMEM, "out of memory");
	ret = vhdx_io_init(&mi->io, &mem_methods, name ? name : "mem", false);
	if (ret < 0) {
		free(mi);
		return ret;
	}
	pthread_mutex_lock(&f->lk);
	f->refs++;
	pthread_mutex_unlock(&f->lk);
	mi->f = f;
	*out = &mi->io;
	return 0;
}

int vhdx_io_mem_new(const void *data, size_t len, const char *name, struct vhdx_io **out)
{
	struct mem_file *f = calloc(1, sizeof *f);
	int ret;

	if (!f)
		return vhdx_err(ENOMEM, "out of memory");
	pthread_rwlock_init(&f->lock, NULL);
	pthread_mutex_init(&f->lk, NULL);
	if (len) {
		ret = mem_reserve(f, len);
		if (ret < 0)
			goto fail;
		memcpy(f->data, data, len);
		f->len = len;
	}
	ret = mem_open(f, name, out);
	if (ret == 0)
		return 0;
fail:
	pthread_rwlock_destroy(&f->lock);
	pthread_mutex_destroy(&f->lk);
	free(f->data);
	free(f);
	return ret;
}

int vhdx_io_mem_reopen(struct vhdx_io *io, const char *name, struct vhdx_io **out)
{
	return mem_open(((struct mem_io *)io)->f, name, out);
}

const uint8_t *vhdx_io_mem_data(struct vhdx_io *io, size_t *len)
{
	struct mem_file *m = ((struct mem_io *)io)->f;

	*len = m->len;
	return m->data;
}
