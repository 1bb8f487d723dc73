/*
 * file.c - the file backend: positional pread/pwrite on one descriptor, so
 * any number of threads can use it at once without a shared seek offset
 * (libvhdi's shared offset serialises every read; we do not).
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "io/io.h"
#include "io/file_lock.h"

struct file_io {
	struct vhdx_io io;
	int fd;
	bool own;
	enum vhdx_lock_mode mode; /* this open's lock (io/file_lock.c) */
};

static int file_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct file_io *f = (struct file_io *)io;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhdx_err(errno, "%s", strerror(errno));
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct file_io *f = (struct file_io *)io;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhdx_err(errno, "%s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_flush(struct vhdx_io *io)
{
	struct file_io *f = (struct file_io *)io;

	if (fdatasync(f->fd) < 0)
		return vhdx_err(errno, "%s", strerror(errno));
	return 0;
}

static int file_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct file_io *f = (struct file_io *)io;
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return vhdx_err(errno, "%s", strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0)
			return vhdx_err(errno, "%s", strerror(errno));
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_set_size(struct vhdx_io *io, uint64_t size)
{
	struct file_io *f = (struct file_io *)io;

	if (ftruncate(f->fd, (off_t)size) < 0)
		return vhdx_err(errno, "%s", strerror(errno));
	return 0;
}

static int file_get_fd(struct vhdx_io *io)
{
	return ((struct file_io *)io)->fd;
}

static int file_lock(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	struct file_io *f = (struct file_io *)io;
	int ret = vhdx_file_lock(f->fd, mode, held);

	if (ret == 0)
		f->mode = mode;
	return ret;
}

static int file_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	struct file_io *f = (struct file_io *)io;

	return vhdx_file_lock_test(f->fd, f->mode, held);
}

static void file_close(struct vhdx_io *io)
{
	struct file_io *f = (struct file_io *)io;

	if (f->own)
		close(f->fd);
	vhdx_io_fini(io);
	free(f);
}

static const struct vhdx_io_methods file_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = file_pread,
	.pwrite = file_pwrite,
	.flush = file_flush,
	.get_size = file_get_size,
	.set_size = file_set_size,
	.close = file_close,
	.get_fd = file_get_fd,
	.lock = file_lock,
	.lock_test = file_lock_test,
};

int vhdx_io_file_from_fd(int fd, const char *name, bool writable, bool own, struct vhdx_io **out)
{
	struct file_io *f = calloc(1, sizeof *f);
	int ret;

	if (!f)
		return vhdx_err(ENOMEM, "out of memory");
	ret = vhdx_io_init(&f->io, &file_methods, name, !writable);
	if (ret < 0) {
		free(f);
		return ret;
	}
	f->fd = fd;
	f->own = own;
	*out = &f->io;
	return 0;
}

int vhdx_io_file_open(const char *path, bool writable, struct vhdx_io **out)
{
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return vhdx_err(errno, "%s: cannot open%s: %s", path, writable ? " for writing" : "",
				strerror(errno));
	ret = vhdx_io_file_from_fd(fd, path, writable, true, out);
	if (ret < 0)
		close(fd);
	return ret;
}
