/*
 * convert_out.c - the output of `vhdx convert`: a raw regular file (written
 * sparse: what is not written is a hole, and the size is set at the end), a
 * raw stream (standard output, a pipe or a device: every byte in order,
 * zeros included), or a new VHDX or VHD made with vhdx_create() and filled
 * with vhdx_pwrite(), made durable by one vhdx_flush() at the end.
 *
 * An existing DST is only replaced when asked (--force; or -O raw, which
 * replaced it in earlier versions and scripts rely on), never when it is a
 * file the input reads.  A regular file is written under a temporary name
 * beside DST (tools/outfile.c) and renamed to DST only when complete and
 * durable; a failed conversion removes it, so a half-written image is
 * never mistaken for a copy, even after a kill -9 (issue #15 item 2), and
 * an existing DST stays as it was until the new one is complete.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"

static const char *fmt_name(enum convert_fmt f)
{
	return f == CONVERT_VHDX ? "vhdx" : f == CONVERT_VHD ? "vhd" : "raw";
}

static int open_image(struct convert_out *o, const struct convert_out_params *p)
{
	struct vhdx_create_options co;
	int ret;

	vhdx_create_options_init(&co);
	co.format = p->fmt == CONVERT_VHD ? VHDX_FORMAT_VHD : VHDX_FORMAT_VHDX;
	co.type = p->type;
	co.virtual_size = p->size;
	co.block_size = p->block_size;
	co.logical_sector_size = p->logical_sector_size;
	co.physical_sector_size = p->physical_sector_size;
	co.faults = tool_faults; /* vhdx --faults RULES convert ...: the new file's I/O too */
	ret = vhdx_create(o->of.tmp, &co);
	if (ret < 0) {
		tool_outfile_lib_error(&o->of, "convert", ret); /* vhdx_create removes what it could not finish */
		tool_outfile_abort(&o->of);
		return EXIT_ERR;
	}
	o->remove_on_failure = true;
	ret = tool_open_flags(o->of.tmp, VHDX_OPEN_RDWR | VHDX_OPEN_NO_PARENT, tool_faults, &o->img);
	if (ret < 0) {
		tool_outfile_lib_error(&o->of, "convert", ret);
		o->img = NULL;
		convert_out_abort(o);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

int convert_out_open(struct convert_out *o, const char *path, const struct convert_out_params *p,
		     struct convert_src *src)
{
	struct stat st;
	bool exists;

	memset(o, 0, sizeof *o);
	o->path = path;
	o->fmt = p->fmt;
	o->fd = -1;
	o->size = p->size;
	if (!strcmp(path, "-")) {
		if (p->fmt != CONVERT_RAW) {
			tool_error("convert", "standard output ('-') takes only -O raw, not %s", fmt_name(p->fmt));
			return EXIT_USAGE;
		}
		o->fd = STDOUT_FILENO;
		o->stream = true;
		return EXIT_OK;
	}
	exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT) {
		tool_error("convert", "%s: %s", path, strerror(errno));
		return EXIT_ERR;
	}
	if (exists && convert_src_uses(src, path)) {
		tool_error("convert", "%s: is a file of the input %s; refusing to write over it", path, src->path);
		return EXIT_ERR;
	}
	if (exists && !S_ISREG(st.st_mode)) {
		/* a device, pipe or /dev/null: raw bytes in order, as dd writes them */
		if (p->fmt != CONVERT_RAW) {
			tool_error("convert", "%s: not a regular file; a %s image needs one", path, fmt_name(p->fmt));
			return EXIT_ERR;
		}
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0) {
			tool_error("convert", "%s: %s", path, strerror(errno));
			return EXIT_ERR;
		}
		o->stream = true;
		return EXIT_OK;
	}
	if (exists && !p->force && !(p->fmt == CONVERT_RAW && p->replace_raw)) {
		tool_error("convert", "%s: exists (use --force to replace it)", path);
		return EXIT_ERR;
	}
	o->replace = exists;
	if (tool_outfile_begin(&o->of, "convert", path) != EXIT_OK)
		return EXIT_ERR;
	if (p->fmt != CONVERT_RAW)
		return open_image(o, p);
	o->fd = open(o->of.tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (o->fd < 0) {
		tool_error("convert", "%s: %s", o->of.tmp, strerror(errno));
		tool_outfile_abort(&o->of);
		return EXIT_ERR;
	}
	o->remove_on_failure = true;
	return EXIT_OK;
}

int convert_out_write(struct convert_out *o, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	if (o->img) {
		while (len) {
			ssize_t n = vhdx_pwrite(o->img, p, len, off);
			if (n <= 0) {
				int ret = n < 0 ? (int)n : -EIO;
				if (n < 0)
					tool_outfile_lib_error(&o->of, "convert", ret);
				else
					tool_error("convert", "%s: write at %llu is past the end of the disk", o->path,
						   (unsigned long long)off);
				return ret;
			}
			p += n;
			len -= (size_t)n;
			off += (uint64_t)n;
		}
		return 0;
	}
	while (len) {
		ssize_t n = o->stream ? write(o->fd, p, len) : pwrite(o->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			tool_error("convert", "writing %s: %s", o->fd == STDOUT_FILENO ? "standard output" : o->path,
				   strerror(e));
			return -e;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* The complete temporary file takes PATH's name. */
static int commit(struct convert_out *o)
{
	o->remove_on_failure = false;
	return tool_outfile_commit(&o->of, "convert", o->replace);
}

int convert_out_finish(struct convert_out *o)
{
	int ret;

	if (o->img) {
		/* the only flush: every block's data before the BAT entries that name it (the library orders it) */
		ret = vhdx_flush(o->img);
		if (ret == 0) {
			ret = vhdx_close(o->img);
			o->img = NULL;
		}
		if (ret < 0) {
			tool_outfile_lib_error(&o->of, "convert", ret);
			convert_out_abort(o);
			return EXIT_ERR;
		}
		return commit(o);
	}
	if (o->fd == STDOUT_FILENO)
		return EXIT_OK;
	/* holes were left where the disk reads as zeros: the size makes the tail one too */
	if (!o->stream && ftruncate(o->fd, (off_t)o->size) < 0) {
		tool_error("convert", "%s: cannot set the size to %llu: %s", o->path, (unsigned long long)o->size,
			   strerror(errno));
		convert_out_abort(o);
		return EXIT_ERR;
	}
	/* durable before it takes the destination's name */
	ret = o->remove_on_failure ? fsync(o->fd) : 0;
	if (ret == 0)
		ret = close(o->fd);
	else
		close(o->fd);
	o->fd = -1;
	if (ret < 0) {
		tool_error("convert", "%s: %s", o->path, strerror(errno));
		convert_out_abort(o);
		return EXIT_ERR;
	}
	return o->remove_on_failure ? commit(o) : EXIT_OK;
}

void convert_out_abort(struct convert_out *o)
{
	if (o->img) {
		vhdx_close(o->img);
		o->img = NULL;
	}
	if (o->fd >= 0 && o->fd != STDOUT_FILENO)
		close(o->fd);
	o->fd = -1;
	if (o->remove_on_failure && o->of.tmp && access(o->of.tmp, F_OK) == 0)
		tool_error("convert", "%s: removed the incomplete output%s", o->of.tmp,
			   o->replace ? "; the existing destination was not changed" : "");
	if (o->of.tmpdir)
		tool_outfile_abort(&o->of);
	o->remove_on_failure = false;
}
