/*
 * layer.c - opening one file as a layer: every format bids on the first
 * 64 KiB (the libarchive way), the highest bid opens it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "format/format.h"
#include "io/fault.h"

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

void vhdx_parent_ref_free(struct vhdx_parent_ref *r)
{
	for (size_t i = 0; r->paths && i < r->n_paths; i++) {
		free(r->paths[i].key);
		free(r->paths[i].value);
	}
	free(r->paths);
	memset(r, 0, sizeof *r);
}

int vhdx_layer_close(struct vhdx_layer *l)
{
	int ret = 0;

	if (!l)
		return 0;
	if (l->ops && l->ops->close)
		ret = l->ops->close(l);
	if (l->fault_io) {
		/* fault injection: op=close rules (io/fault.h) fail the close like close(2) would */
		int r = vhdx_io_fault_close_check(l->fault_io);
		if (r < 0 && ret == 0)
			ret = vhdx_err_prefix(r, "%s: closing", l->path);
	}
	if (l->has_parent)
		vhdx_parent_ref_free(&l->parent);
	vhdx_io_close(l->io);
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
	enum vhdx_lock_mode mode = VHDX_LOCK_SHARED;
	struct vhdx_io *io;
	int ret;

	/* issue #14: a writer excludes every other open, a reader only writers */
	if (flags & VHDX_LAYER_WRITABLE)
		mode = VHDX_LOCK_EXCLUSIVE;
	else if (flags & VHDX_LAYER_NO_LOCK)
		mode = VHDX_LOCK_NONE;
	/* faults (io/fault.h) sit below the format and below a replay overlay: they hit the file's bytes */
	ret = vhdx_io_open_locked_kind(path, flags & VHDX_LAYER_WRITABLE, flags & VHDX_LAYER_LOCATED, mode, faults, &io);
	if (ret < 0)
		return ret;
	ret = vhdx_layer_open_io(io, path, flags, out);
	if (ret == 0)
		(*out)->fault_io = faults ? io : NULL;
	return ret;
}
