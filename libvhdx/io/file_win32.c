/*
 * file_win32.c - the file backend for Windows (built instead of io/file.c
 * on mingw-w64 hosts).  Same contract as file.c: positional I/O only, so
 * threads never share a seek offset.  A synchronous handle with an
 * OVERLAPPED offset reads or writes at that offset (the handle's own file
 * pointer is never used); FlushFileBuffers makes writes durable;
 * SetFileInformationByHandle(FileEndOfFileInfo) sets the size.  Paths are
 * UTF-8 and opened with CreateFileW.  The backend keeps a CRT descriptor
 * beside the handle (_open_osfhandle), because the interface (get_fd,
 * vhdx_io_file_from_fd) speaks descriptors.
 *
 * Locks (issue #14): LockFileEx with LOCKFILE_FAIL_IMMEDIATELY on one byte
 * far past any image's end (FILE_LOCK_OFFSET), shared or exclusive.
 * Windows byte-range locks are mandatory for the bytes they cover, so the
 * lock covers a byte no image has: reads and writes of the data are never
 * blocked by it, not even those of a --force-share reader.  A lock belongs
 * to the handle, so two opens conflict even inside one process, and it goes
 * when the handle is closed or the process dies.  Windows cannot tell who
 * holds a lock, or test one without taking it: lock_test is ENOTSUP.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "internal.h"
#include "io/io.h"

struct file_io {
	struct vhdx_io io;
	int fd;
	HANDLE h;   /* the handle behind fd (owned through fd) */
	bool own;
	enum vhdx_lock_mode mode; /* this handle's lock */
};

/* The locked byte: 2^62, past the end of any image (VHDX files end far below 64 TiB + metadata). */
#define FILE_LOCK_OFFSET ((uint64_t)1 << 62)

/* Records the Win32 error of the last call as -errno with its text. */
static int file_win_err(void)
{
	int e = vhdx_compat_errno(GetLastError());

	return vhdx_err(e, "%s", strerror(e));
}

static void file_overlapped(OVERLAPPED *ov, uint64_t off)
{
	memset(ov, 0, sizeof *ov);
	ov->Offset = (DWORD)(off & 0xffffffffu);
	ov->OffsetHigh = (DWORD)(off >> 32);
}

/* One ReadFile/WriteFile moves at most a DWORD; 1 GiB pieces keep it simple. */
#define FILE_IO_MAX ((size_t)1 << 30)

static int file_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct file_io *f = (struct file_io *)io;
	uint8_t *p = buf;

	while (len) {
		OVERLAPPED ov;
		DWORD got = 0;

		file_overlapped(&ov, off);
		if (!ReadFile(f->h, p, (DWORD)VHDX_MIN(len, FILE_IO_MAX), &got, &ov)) {
			if (GetLastError() == ERROR_HANDLE_EOF)
				return -ENODATA;
			return file_win_err();
		}
		if (got == 0)
			return -ENODATA;
		p += got;
		len -= got;
		off += got;
	}
	return 0;
}

static int file_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct file_io *f = (struct file_io *)io;
	const uint8_t *p = buf;

	while (len) {
		OVERLAPPED ov;
		DWORD put = 0;

		file_overlapped(&ov, off);
		if (!WriteFile(f->h, p, (DWORD)VHDX_MIN(len, FILE_IO_MAX), &put, &ov))
			return file_win_err();
		if (put == 0)
			return vhdx_err(EIO, "WriteFile wrote nothing");
		p += put;
		len -= put;
		off += put;
	}
	return 0;
}

static int file_flush(struct vhdx_io *io)
{
	struct file_io *f = (struct file_io *)io;

	/* writes through the handle reach the disk only after this (no fdatasync on Windows) */
	if (!FlushFileBuffers(f->h))
		return file_win_err();
	return 0;
}

static int file_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct file_io *f = (struct file_io *)io;
	LARGE_INTEGER li;

	if (!GetFileSizeEx(f->h, &li))
		return file_win_err();
	*size = (uint64_t)li.QuadPart;
	return 0;
}

static int file_set_size(struct vhdx_io *io, uint64_t size)
{
	struct file_io *f = (struct file_io *)io;
	FILE_END_OF_FILE_INFO eof;

	if (size > INT64_MAX)
		return vhdx_err(EFBIG, "size %llu is too large", (unsigned long long)size);
	eof.EndOfFile.QuadPart = (LONGLONG)size;
	/* sets the end of file without touching the handle's file pointer (SetEndOfFile would need it) */
	if (!SetFileInformationByHandle(f->h, FileEndOfFileInfo, &eof, sizeof eof))
		return file_win_err();
	return 0;
}

static int file_get_fd(struct vhdx_io *io)
{
	return ((struct file_io *)io)->fd;
}

static int file_lock(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	struct file_io *f = (struct file_io *)io;
	OVERLAPPED ov;
	DWORD flags = LOCKFILE_FAIL_IMMEDIATELY;

	file_overlapped(&ov, FILE_LOCK_OFFSET);
	/* a handle's lock changes by unlock, then lock: Windows has no conversion */
	if (f->mode != VHDX_LOCK_NONE) {
		if (!UnlockFileEx(f->h, 0, 1, 0, &ov))
			return file_win_err();
		f->mode = VHDX_LOCK_NONE;
	}
	if (mode == VHDX_LOCK_NONE)
		return 0;
	if (mode == VHDX_LOCK_EXCLUSIVE)
		flags |= LOCKFILE_EXCLUSIVE_LOCK;
	file_overlapped(&ov, FILE_LOCK_OFFSET);
	if (!LockFileEx(f->h, flags, 0, 1, 0, &ov)) {
		DWORD e = GetLastError();
		if (e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING || e == ERROR_SHARING_VIOLATION) {
			/* a shared request fails only on a writer; an exclusive one on anybody */
			held->mode = mode == VHDX_LOCK_SHARED ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_NONE;
			return -EBUSY;
		}
		return file_win_err();
	}
	f->mode = mode;
	return 0;
}

static int file_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	(void)io;
	(void)held;
	return vhdx_err(ENOTSUP, "Windows cannot tell who holds a lock on a file");
}

static void file_close(struct vhdx_io *io)
{
	struct file_io *f = (struct file_io *)io;

	if (f->own)
		_close(f->fd);   /* closes the handle too */
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
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	struct file_io *f;
	int ret;

	if (h == INVALID_HANDLE_VALUE)
		return vhdx_err(EBADF, "%s: descriptor %d has no Windows handle", name, fd);
	f = calloc(1, sizeof *f);
	if (!f)
		return vhdx_err(ENOMEM, "out of memory");
	ret = vhdx_io_init(&f->io, &file_methods, name, !writable);
	if (ret < 0) {
		free(f);
		return ret;
	}
	f->fd = fd;
	f->h = h;
	f->own = own;
	*out = &f->io;
	return 0;
}

int vhdx_io_file_open(const char *path, bool writable, struct vhdx_io **out)
{
	wchar_t *w = vhdx_compat_widen(path);
	HANDLE h;
	int fd, ret, e;

	if (!w)
		return vhdx_err(errno, "%s: cannot open%s: %s", path, writable ? " for writing" : "", strerror(errno));
	/* share everything, like a POSIX open: a chain may open one parent twice */
	h = CreateFileW(w, GENERIC_READ | (writable ? GENERIC_WRITE : 0),
			FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
			FILE_ATTRIBUTE_NORMAL, NULL);
	free(w);
	if (h == INVALID_HANDLE_VALUE) {
		e = vhdx_compat_errno(GetLastError());
		return vhdx_err(e, "%s: cannot open%s: %s", path, writable ? " for writing" : "", strerror(e));
	}
	fd = _open_osfhandle((intptr_t)h, (writable ? _O_RDWR : _O_RDONLY) | _O_BINARY);
	if (fd < 0) {
		CloseHandle(h);
		return vhdx_err(EMFILE, "%s: no descriptor for the handle", path);
	}
	ret = vhdx_io_file_from_fd(fd, path, writable, true, out);
	if (ret < 0)
		_close(fd);
	return ret;
}

int vhdx_io_file_open_kind(const char *path, bool writable, bool regular_only, struct vhdx_io **out)
{
	struct vhdx_io *io;
	int ret = vhdx_io_file_open(path, writable, &io);

	if (ret < 0 || !regular_only)
		goto done;
	/* a pipe or a console is not a disk file; judged on the handle in use */
	if (GetFileType((HANDLE)_get_osfhandle(vhdx_io_get_fd(io))) != FILE_TYPE_DISK) {
		vhdx_io_close(io);
		return vhdx_err(EPERM, "%s: not a regular file: a parent found through a locator must be a regular "
				       "file (name a device as the explicit parent)", path);
	}
done:
	if (ret == 0)
		*out = io;
	return ret;
}
