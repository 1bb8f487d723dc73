/*
 * io.c - the wrappers every caller uses around a backend's methods: counting
 * per operation and per structure tag, read-only enforcement, and messages
 * that name the file, the structure and the offset.  The request's tag and
 * virtual offset are published in a thread-local context for io/fault.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/io.h"

static _Thread_local struct vhdx_io_ctx cur_ctx = { VHDX_TAG_OTHER, VHDX_NO_VOFF };

static const char *const tag_names[VHDX_TAG__COUNT] = {
	[VHDX_TAG_OTHER] = "other",       [VHDX_TAG_FILEID] = "file identifier",
	[VHDX_TAG_HEADER] = "header",     [VHDX_TAG_REGION] = "region table",
	[VHDX_TAG_METADATA] = "metadata", [VHDX_TAG_LOG] = "log",
	[VHDX_TAG_BAT] = "BAT",           [VHDX_TAG_BITMAP] = "sector bitmap",
	[VHDX_TAG_PAYLOAD] = "payload",   [VHDX_TAG_FOOTER] = "footer",
	[VHDX_TAG_DYNHDR] = "dynamic header",
};

const char *vhdx_tag_name(enum vhdx_tag tag)
{
	return (unsigned)tag < VHDX_TAG__COUNT ? tag_names[tag] : "?";
}

const struct vhdx_io_ctx *vhdx_io_current(void)
{
	return &cur_ctx;
}

int vhdx_io_init(struct vhdx_io *io, const struct vhdx_io_methods *m, const char *name, bool readonly)
{
	memset(io, 0, sizeof *io);
	io->m = m;
	io->readonly = readonly;
	io->name = strdup(name ? name : "(unnamed)");
	return io->name ? 0 : vhdx_err(ENOMEM, "out of memory");
}

void vhdx_io_fini(struct vhdx_io *io)
{
	free(io->name);
	io->name = NULL;
}

static void count(struct vhdx_io *io, enum vhdx_io_op op, enum vhdx_tag tag, uint64_t bytes, int ret)
{
	atomic_fetch_add_explicit(&io->cnt.ops[op], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&io->cnt.bytes[op], bytes, memory_order_relaxed);
	if ((unsigned)tag < VHDX_TAG__COUNT)
		atomic_fetch_add_explicit(&io->cnt.tag_ops[tag], 1, memory_order_relaxed);
	if (ret < 0)
		atomic_fetch_add_explicit(&io->cnt.errors[op], 1, memory_order_relaxed);
}

/*
 * The backend's read (into RBUF) or write (from WBUF), counted, with TAG
 * and VOFF in the thread's context for the fault engine while it runs.
 */
static int backend_call(struct vhdx_io *io, enum vhdx_io_op op, void *rbuf, const void *wbuf, size_t len,
			uint64_t off, enum vhdx_tag tag, uint64_t voff)
{
	int ret;

	cur_ctx.tag = tag;
	cur_ctx.voff = voff;
	ret = op == VHDX_IO_READ ? io->m->pread(io, rbuf, len, off) : io->m->pwrite(io, wbuf, len, off);
	count(io, op, tag, len, ret);
	cur_ctx.tag = VHDX_TAG_OTHER;
	cur_ctx.voff = VHDX_NO_VOFF;
	return ret;
}

static int do_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off, enum vhdx_tag tag, uint64_t voff)
{
	int ret;

	ret = backend_call(io, VHDX_IO_READ, buf, NULL, len, off, tag, voff);
	if (ret == -ENODATA)
		return vhdx_err(EBADMSG, "%s: %s at offset 0x%llx (+%zu bytes) lies past the end of the file",
				io->name, vhdx_tag_name(tag), (unsigned long long)off, len);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: reading %s at offset 0x%llx (%zu bytes)", io->name,
				       vhdx_tag_name(tag), (unsigned long long)off, len);
	return 0;
}

static int do_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off, enum vhdx_tag tag,
		     uint64_t voff)
{
	int ret;

	if (io->readonly)
		return vhdx_err(EROFS, "%s: opened read-only; refusing to write %s at offset 0x%llx", io->name,
				vhdx_tag_name(tag), (unsigned long long)off);
	ret = backend_call(io, VHDX_IO_WRITE, NULL, buf, len, off, tag, voff);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: writing %s at offset 0x%llx (%zu bytes)", io->name,
				       vhdx_tag_name(tag), (unsigned long long)off, len);
	return 0;
}

int vhdx_io_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off, enum vhdx_tag tag)
{
	return do_pread(io, buf, len, off, tag, VHDX_NO_VOFF);
}

int vhdx_io_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off, enum vhdx_tag tag)
{
	return do_pwrite(io, buf, len, off, tag, VHDX_NO_VOFF);
}

int vhdx_io_pread_payload(struct vhdx_io *io, void *buf, size_t len, uint64_t foff, uint64_t voff)
{
	return do_pread(io, buf, len, foff, VHDX_TAG_PAYLOAD, voff);
}

int vhdx_io_pwrite_payload(struct vhdx_io *io, const void *buf, size_t len, uint64_t foff, uint64_t voff)
{
	return do_pwrite(io, buf, len, foff, VHDX_TAG_PAYLOAD, voff);
}

int vhdx_io_zero_range(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag)
{
	static const uint8_t zeros[64 * 1024];

	while (len) {
		size_t n = (size_t)VHDX_MIN(len, (uint64_t)sizeof zeros);
		int ret = vhdx_io_pwrite(io, zeros, n, off, tag);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* posix_fallocate, or fallocate(KEEP_SIZE) when KEEP_SIZE: 0 or an errno value; EOPNOTSUPP where neither exists */
static int allocate_range(int fd, uint64_t off, uint64_t len, bool keep_size)
{
	if (keep_size) {
#ifdef FALLOC_FL_KEEP_SIZE
		return fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0 ? 0 : errno;
#else
		return EOPNOTSUPP;
#endif
	}
#ifdef HAVE_POSIX_FALLOCATE
	return posix_fallocate(fd, (off_t)off, (off_t)len);
#else
	return EOPNOTSUPP;
#endif
}

static int allocate(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag, bool keep_size)
{
	int fd = vhdx_io_get_fd(io), ret;

	if (fd < 0 || io->readonly || len == 0)
		return 0;
	if (off > INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return vhdx_err(EFBIG, "%s: cannot allocate %llu bytes of the %s at %llu", io->name,
				(unsigned long long)len, vhdx_tag_name(tag), (unsigned long long)off);
	ret = allocate_range(fd, off, len, keep_size);
	if (ret == EOPNOTSUPP || ret == EINVAL || ret == ENOSYS)
		return 0; /* the file system cannot preallocate: the writes will tell */
	if (ret) {
#ifdef FALLOC_FL_PUNCH_HOLE
		/* what a failed reservation past the end took is given back */
		if (keep_size)
			(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
#endif
		return vhdx_err(ret, "%s: allocating the %s (%llu bytes at 0x%llx): %s", io->name, vhdx_tag_name(tag),
				(unsigned long long)len, (unsigned long long)off, strerror(ret));
	}
	return 0;
}

int vhdx_io_allocate(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag)
{
	return allocate(io, off, len, tag, false);
}

int vhdx_io_reserve(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag)
{
	return allocate(io, off, len, tag, true);
}

int vhdx_io_flush(struct vhdx_io *io)
{
	int ret;

	if (io->readonly)
		return 0;
	ret = io->m->flush(io);
	count(io, VHDX_IO_FLUSH, VHDX_TAG_OTHER, 0, ret);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: flush", io->name);
	return 0;
}

int vhdx_io_get_size(struct vhdx_io *io, uint64_t *size)
{
	int ret = io->m->get_size(io, size);

	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: getting the file size", io->name);
	return 0;
}

int vhdx_io_set_size(struct vhdx_io *io, uint64_t size)
{
	int ret;

	if (io->readonly)
		return vhdx_err(EROFS, "%s: opened read-only; refusing to resize to %llu bytes", io->name,
				(unsigned long long)size);
	ret = io->m->set_size(io, size);
	count(io, VHDX_IO_TRUNCATE, VHDX_TAG_OTHER, 0, ret);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: resizing to %llu bytes", io->name, (unsigned long long)size);
	return 0;
}

int vhdx_io_get_fd(struct vhdx_io *io)
{
	return io->m->get_fd ? io->m->get_fd(io) : -1;
}

void vhdx_io_close(struct vhdx_io *io)
{
	if (io)
		io->m->close(io);
}
