/*
 * layer.c - opening one file as a layer: every format bids on the first
 * 64 KiB (the libarchive way), the highest bid opens it.  Also what the
 * formats' write paths share: cutting a write at block boundaries.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "format/format.h"
#include "io/stack.h"

static const struct vhdx_format_ops *const formats[] = {
	&vhdx_format_vhdx,
	&vhdx_format_vhd,
};

const struct vhdx_format_ops *vhdx_format_nth(size_t i)
{
	return i < VHDX_ARRAY_LEN(formats) ? formats[i] : NULL;
}

const struct vhdx_format_ops *vhdx_format_by_id(enum vhdx_format id)
{
	for (size_t i = 0; i < VHDX_ARRAY_LEN(formats); i++)
		if (formats[i]->id == id)
			return formats[i];
	return NULL;
}

#define PROBE_LEN (64 * 1024)

const char *vhdx_disk_type_name(enum vhdx_disk_type t)
{
	switch (t) {
	case VHDX_TYPE_FIXED: return "fixed";
	case VHDX_TYPE_DYNAMIC: return "dynamic";
	case VHDX_TYPE_DIFFERENCING: return "differencing";
	}
	return "unknown";
}

int vhdx_layer_close(struct vhdx_layer *l)
{
	int ret = 0, r;

	if (!l)
		return 0;
	if (l->ops && l->ops->close)
		ret = l->ops->close(l);
	if (l->has_parent)
		vhdx_parent_ref_free(&l->parent);
	r = vhdx_io_stack_close(l->io, l->stack);
	if (r < 0 && ret == 0)
		ret = vhdx_err_prefix(r, "%s: closing", l->path);
	free(l->path);
	free(l);
	return ret;
}

int vhdx_layer_open_io(struct vhdx_io *io, const char *path, unsigned flags, struct vhdx_layer **out)
{
	struct vhdx_layer *l;
	uint8_t *head;
	uint64_t size;
	size_t headlen;
	int ret, best = 0;
	const struct vhdx_format_ops *winner = NULL;

	l = calloc(1, sizeof *l);
	head = malloc(PROBE_LEN);
	if (!l || !head) {
		free(l);
		free(head);
		vhdx_io_close(io);
		return vhdx_err(ENOMEM, "out of memory");
	}
	l->io = io;
	l->path = strdup(path);
	l->writable = flags & VHDX_LAYER_WRITABLE;
	if (!l->path) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto fail;
	}
	ret = vhdx_io_get_size(io, &size);
	if (ret < 0)
		goto fail;
	headlen = (size_t)VHDX_MIN(size, (uint64_t)PROBE_LEN);
	ret = vhdx_io_pread(io, head, headlen, 0, VHDX_TAG_OTHER);
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < VHDX_ARRAY_LEN(formats) && best < VHDX_BID_CERTAIN; i++) {
		int bid = formats[i]->probe(io, head, headlen, size);
		if (bid < 0) {
			ret = bid; /* a read failed: say so, not "not an image" */
			goto fail;
		}
		if (bid > best) {
			best = bid;
			winner = formats[i];
		}
	}
	if (!winner && (flags & VHDX_LAYER_LOCATED)) {
		ret = vhdx_err(EBADMSG, "not a VHDX or VHD image"); /* the file may be anyone's: say no more */
		goto fail;
	}
	if (!winner) {
		ret = vhdx_err(EBADMSG, "not a VHDX or VHD image (no \"vhdxfile\" signature at offset 0 and no \"conectix\" footer at the end; file is %llu bytes)",
			       (unsigned long long)size);
		goto fail;
	}
	l->ops = winner;
	ret = winner->open(l, flags);
	if (ret < 0)
		goto fail;
	free(head);
	*out = l;
	return 0;
fail:
	free(head);
	/* the I/O layer names the file already in its messages; say it once */
	if (strncmp(vhdx_errmsg(), path, strlen(path)) != 0)
		ret = vhdx_err_prefix(ret, "%s", path);
	vhdx_layer_close(l);
	return ret;
}

int vhdx_layer_open(const char *path, unsigned flags, struct vhdx_layer **out)
{
	return vhdx_layer_open_faults(path, flags, NULL, out);
}

int vhdx_layer_open_faults(const char *path, unsigned flags, struct vhdx_faults *faults, struct vhdx_layer **out)
{
	struct vhdx_io_stack_opts o = {
		.writable = flags & VHDX_LAYER_WRITABLE,
		.regular_only = flags & VHDX_LAYER_LOCATED,
		.lock = VHDX_LOCK_SHARED,
		.faults = faults,
	};
	struct vhdx_io *io;
	int ret;

	/* issue #14: a writer excludes every other open, a reader only writers */
	if (flags & VHDX_LAYER_WRITABLE)
		o.lock = VHDX_LOCK_EXCLUSIVE;
	else if (flags & VHDX_LAYER_NO_LOCK)
		o.lock = VHDX_LOCK_NONE;
	ret = vhdx_io_stack_open(path, &o, &io);
	if (ret < 0)
		return ret;
	ret = vhdx_layer_open_io(io, path, flags, out);
	if (ret == 0)
		(*out)->stack = io;
	return ret;
}

int vhdx_layer_write_by_block(struct vhdx_layer *l, uint64_t block_size, const void *buf, size_t len, uint64_t voff,
			      int (*write_in_block)(struct vhdx_layer *l, const uint8_t *p, uint64_t n, uint64_t voff))
{
	const uint8_t *p = buf;

	while (len) {
		uint64_t n = VHDX_MIN((uint64_t)len, block_size - voff % block_size);
		int ret = write_in_block(l, p, n, voff);

		if (ret < 0)
			return ret;
		p += n;
		voff += n;
		len -= (size_t)n;
	}
	return 0;
}
