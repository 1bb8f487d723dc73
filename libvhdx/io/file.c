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

/*
 * All LEN bytes at OFF read into RBUF (IS_WRITE false) or written from WBUF:
 * short transfers continue, EINTR is retried; a read past the end of the
 * file is -ENODATA (io.c says which structure it was).
 */
static int file_xfer(int fd, bool is_write, uint8_t *rbuf, const uint8_t *wbuf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = is_write ? pwrite(fd, wbuf + done, len - done, (off_t)(off + done))
				  : pread(fd, rbuf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhdx_err(errno, "%s", strerror(errno));
		}
		if (n == 0 && !is_write)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

static int file_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	return file_xfer(((struct file_io *)io)->fd, false, buf, NULL, len, off);
}

static int file_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	return file_xfer(((struct file_io *)io)->fd, true, NULL, buf, len, off);
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

/* "a FIFO", "a block device", ...: what kind of file ST is, for messages. */
static const char *file_kind(const struct stat *st)
{
	if (S_ISFIFO(st->st_mode))
		return "a FIFO";
	if (S_ISSOCK(st->st_mode))
		return "a socket";
	if (S_ISCHR(st->st_mode))
		return "a character device";
	if (S_ISBLK(st->st_mode))
		return "a block device";
	if (S_ISDIR(st->st_mode))
		return "a folder";
	return "not a regular file";
}

/* 0 when ST may hold an image: a regular file, or (unless REGULAR_ONLY) a device; else -errno and a message. */
static int file_kind_check(const char *path, const struct stat *st, bool regular_only)
{
	if (S_ISREG(st->st_mode))
		return 0;
	if (regular_only)
		return vhdx_err(EPERM, "%s: %s: a parent found through a locator must be a regular file (name a "
				       "device as the explicit parent)", path, file_kind(st));
	if (S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) || S_ISDIR(st->st_mode))
		return vhdx_err(EINVAL, "%s: %s cannot hold a disk image", path, file_kind(st));
	return 0;
}

int vhdx_io_file_open(const char *path, bool writable, struct vhdx_io **out)
{
	return vhdx_io_file_open_kind(path, writable, false, out);
}

int vhdx_io_file_open_kind(const char *path, bool writable, bool regular_only, struct vhdx_io **out)
{
	struct stat st;
	int fd, fl, ret;

	/*
	 * Only a shortcut: a path that names a device now is refused without
	 * calling its driver's open (a watchdog, a tape).  The check that
	 * counts is the fstat() below, on the descriptor actually used, so a
	 * file swapped in between cannot slip through.
	 */
	if (regular_only && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return file_kind_check(path, &st, true);
	/* O_NONBLOCK: opening a FIFO would wait for a writer; cleared below */
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return vhdx_err(errno, "%s: cannot open%s: %s", path, writable ? " for writing" : "",
				strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = vhdx_err(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	ret = file_kind_check(path, &st, regular_only);
	if (ret < 0)
		goto fail;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		ret = vhdx_err(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	ret = vhdx_io_file_from_fd(fd, path, writable, true, out);
	if (ret == 0)
		return 0;
fail:
	close(fd);
	return ret;
}
