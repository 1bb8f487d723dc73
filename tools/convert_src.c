/*
 * convert_src.c - the input of `vhdx convert`: an image opened through
 * libvhdx (a chain reads as its leaf's whole content, extents from
 * vhdx_map) or, with -f raw, a raw disk file whose holes (SEEK_DATA /
 * SEEK_HOLE) are its zero extents.
 *
 * A raw input is never guessed: a damaged VHDX read as raw would convert
 * its headers and BAT as if they were disk data, silently.  So an image
 * that cannot be opened is an error, with a hint to -f raw when the file
 * carries no VHDX/VHD signature at all.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#ifndef _WIN32
#include <sys/uio.h> /* preadv2 */
#endif
#include <unistd.h>

#include "convert.h"

#define CONVERT_READAHEAD (16u << 20) /* bytes of a data extent read ahead from where the copy is */

int convert_src_open(struct convert_src *s, const char *path, bool raw, struct tool_open *to)
{
	memset(s, 0, sizeof *s);
	s->path = path;
	s->fd = -1;
	if (raw) {
		struct stat st;
		s->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0 || fstat(s->fd, &st) < 0) {
			tool_error("convert", "%s: %s", path, strerror(errno));
			if (s->fd >= 0)
				close(s->fd);
			s->fd = -1;
			return EXIT_ERR;
		}
		if (S_ISREG(st.st_mode)) {
			s->size = (uint64_t)st.st_size;
		} else if (S_ISBLK(st.st_mode)) {
			off_t end = lseek(s->fd, 0, SEEK_END);
			if (end < 0) {
				tool_error("convert", "%s: cannot find the size of the device: %s", path, strerror(errno));
				close(s->fd);
				s->fd = -1;
				return EXIT_ERR;
			}
			s->size = (uint64_t)end;
		} else {
			tool_error("convert", "%s: a raw input must be a regular file or a block device", path);
			close(s->fd);
			s->fd = -1;
			return EXIT_ERR;
		}
#ifdef POSIX_FADV_SEQUENTIAL
		posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a larger read-ahead window */
#endif
		/* probe once: file systems without SEEK_DATA say EINVAL, and then everything is data */
		s->seek_data = lseek(s->fd, 0, SEEK_DATA) >= 0 || errno == ENXIO;
		return EXIT_OK;
	}

	int ret = vhdx_open(path, &to->opts, &s->img);
	if (ret < 0) {
		bool no_image = strstr(vhdx_errmsg(), "not a VHDX or VHD image") != NULL;
		tool_lib_error("convert", ret);
		if (no_image)
			tool_error("convert", "%s: to convert a raw disk file, say so with -f raw", path);
		s->img = NULL;
		return EXIT_ERR;
	}
	tool_share_warn("convert", s->img, to->opts.flags);
	struct vhdx_info info = { .struct_size = sizeof info };
	ret = vhdx_get_info(s->img, &info);
	if (ret < 0) {
		tool_lib_error("convert", ret);
		vhdx_close(s->img);
		s->img = NULL;
		return EXIT_ERR;
	}
	s->size = info.virtual_size;
	s->format = info.format;
	s->type = info.type;
	s->logical_sector_size = info.logical_sector_size;
	s->physical_sector_size = info.physical_sector_size;
	return EXIT_OK;
}

/* Raw input: the data or hole run at OFF, from the file system's view of the file. */
static int raw_map(struct convert_src *s, uint64_t off, uint64_t len, bool *data, uint64_t *ext_len)
{
	off_t d, h;

	if (!s->seek_data) {
		*data = true;
		*ext_len = len;
		return 0;
	}
	d = lseek(s->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		/* nothing but a hole up to the end of the file */
		*data = false;
		*ext_len = len;
		return 0;
	}
	if (d < 0) {
		int e = errno;
		tool_error("convert", "%s: SEEK_DATA at %llu: %s", s->path, (unsigned long long)off, strerror(e));
		return -e;
	}
	if ((uint64_t)d > off) {
		*data = false;
		*ext_len = CONVERT_MIN((uint64_t)d - off, len);
		return 0;
	}
	h = lseek(s->fd, (off_t)off, SEEK_HOLE);
	if (h < 0) {
		int e = errno;
		tool_error("convert", "%s: SEEK_HOLE at %llu: %s", s->path, (unsigned long long)off, strerror(e));
		return -e;
	}
	*data = true;
	*ext_len = (uint64_t)h > off ? CONVERT_MIN((uint64_t)h - off, len) : len;
	return 0;
}

#ifdef POSIX_FADV_WILLNEED
/*
 * Asks the kernel to read ahead what the next windows will want of the data
 * extent E (LEN bytes of it are wanted): with a cold cache, the disk then
 * works while we copy, instead of one window at a time.  Only the part not
 * asked for yet: the map is walked a window at a time, and on a warm cache
 * each request still walks the page cache of its whole range.
 */
static void read_ahead(struct convert_src *s, const struct vhdx_extent *e, uint64_t len)
{
	uint64_t from = e->foff, to = e->foff + CONVERT_MIN(len, CONVERT_READAHEAD);
	int fd = vhdx_layer_fd(s->img, e->layer);

	if (fd < 0)
		return;
	if (e->layer == s->ra_layer && from >= s->ra_start && from <= s->ra_end) {
		if (to <= s->ra_end || to - s->ra_end < CONVERT_READAHEAD / 4)
			return; /* mostly asked for already: wait for a bigger piece */
		from = s->ra_end;
	} else {
		s->ra_layer = e->layer;
		s->ra_start = from;
	}
	s->ra_end = to;
#ifdef RWF_NOWAIT
	/*
	 * A warm cache needs none: asking costs ~16 us per MiB even then
	 * (measured), over 10 % of a warm convert.  Its last byte in the cache
	 * says so for the whole piece, sequential reads fill in order.
	 */
	char byte;
	struct iovec iov = { &byte, 1 };
	if (preadv2(fd, &iov, 1, (off_t)(to - 1), RWF_NOWAIT) == 1)
		return;
#endif
	posix_fadvise(fd, (off_t)from, (off_t)(to - from), POSIX_FADV_WILLNEED);
}
#endif

int convert_src_map(struct convert_src *s, uint64_t off, uint64_t len, bool *data, uint64_t *ext_len)
{
	struct vhdx_extent e;
	int ret;

	if (!s->img)
		return raw_map(s, off, len, data, ext_len);
	ret = vhdx_map(s->img, off, len, &e);
	if (ret < 0) {
		tool_lib_error("convert", ret);
		return ret;
	}
	if (e.len == 0) {
		tool_error("convert", "%s: the allocation map returned an empty extent at %llu", s->path,
			   (unsigned long long)off);
		return -EIO;
	}
	*data = e.kind == VHDX_EXTENT_DATA;
	*ext_len = CONVERT_MIN(e.len, len);
#ifdef POSIX_FADV_WILLNEED
	if (*data)
		read_ahead(s, &e, *ext_len);
#endif
	return 0;
}

int convert_src_read(struct convert_src *s, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	if (s->img) {
		ssize_t got = vhdx_pread(s->img, buf, len, off);
		if (got < 0) {
			tool_lib_error("convert", (int)got);
			return (int)got;
		}
		if ((size_t)got != len) {
			tool_error("convert", "%s: short read at %llu", s->path, (unsigned long long)off);
			return -EIO;
		}
		return 0;
	}
	while (len) {
		ssize_t n = pread(s->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			tool_error("convert", "%s: reading %zu bytes at %llu: %s", s->path, len, (unsigned long long)off,
				   n < 0 ? strerror(e) : "the file ended (did it shrink?)");
			return -e;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

bool convert_src_uses(struct convert_src *s, const char *path)
{
	if (!s->img)
		return vhdx_same_file(s->path, path);
	for (unsigned i = 0;; i++) {
		const char *p = vhdx_layer_path(s->img, i);
		if (!p)
			return false;
		if (vhdx_same_file(p, path))
			return true;
	}
}

int convert_src_close(struct convert_src *s)
{
	int ret = 0;

	if (s->img)
		ret = vhdx_close(s->img);
	if (s->fd >= 0)
		close(s->fd);
	s->img = NULL;
	s->fd = -1;
	return ret;
}
