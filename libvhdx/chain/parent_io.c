/*
 * parent_io.c - the parent of a layer read through caller-supplied I/O
 * (vhdx_open_io): the source's open_parent callback is given the child's
 * locator entries and its linkage, and returns the parent's callbacks.  The
 * parent is then checked like one found on disk (chain/parent.c): its
 * identity must be the child's link (unless the user accepts a mismatch)
 * and its logical sector size the child's.  A source without the callback
 * falls back to the file search of vhdx_parent_open().
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"

/* Checks that P may be CHILD's parent; closes P and returns -errno if not. */
static int parent_io_check(const struct vhdx_layer *child, struct vhdx_layer *p, const struct vhdx_open_options *opts)
{
	const struct vhdx_parent_ref *ref = &child->parent;
	char want[VHDX_GUID_STRLEN], got[VHDX_GUID_STRLEN];
	bool linked = !memcmp(p->identity, ref->linkage, 16) || (ref->has_linkage2 && !memcmp(p->identity, ref->linkage2, 16));
	int ret = 0;

	if (!linked && !(opts->flags & VHDX_OPEN_IGNORE_ID_MISMATCH)) {
		vhdx_guid_format(ref->linkage, want);
		vhdx_guid_format(p->identity, got);
		ret = vhdx_err(EBADMSG, "%s: parent %s from the open_parent callback has the wrong identity (the child links to {%s}, this image is {%s}; use ignore-id-mismatch to accept it)",
			       child->path, p->path, want, got);
	} else if (p->logical_sector_size != child->logical_sector_size) {
		ret = vhdx_err(EBADMSG, "%s: parent %s has %u-byte logical sectors, the child %u-byte ones", child->path,
			       p->path, p->logical_sector_size, child->logical_sector_size);
	}
	if (ret < 0)
		vhdx_layer_close(p);
	return ret;
}

int vhdx_parent_open_io(const struct vhdx_layer *child, struct vhdx_io *src, const struct vhdx_open_options *opts,
			unsigned depth, struct vhdx_layer **out, struct vhdx_io **out_src)
{
	const struct vhdx_parent_ref *ref = &child->parent;
	const struct vhdx_io_callbacks *cb, *pcb = NULL;
	struct vhdx_parent_locator_entry *entries;
	struct vhdx_parent_request req;
	struct vhdx_io *pio;
	void *opaque, *popaque = NULL;
	char label[512];
	int ret;

	*out_src = NULL;
	cb = vhdx_io_callbacks_of(src, &opaque);
	if (!cb || !cb->open_parent)
		return vhdx_parent_open(child, opts, depth, out);
	entries = vhdx_calloc(ref->n_paths, sizeof *entries);
	if (!entries)
		return vhdx_err(ENOMEM, "out of memory");
	for (size_t i = 0; i < ref->n_paths; i++) {
		entries[i].key = ref->paths[i].key;
		entries[i].value = ref->paths[i].value;
	}
	memset(&req, 0, sizeof req);
	req.struct_size = sizeof req;
	req.child_name = child->path;
	req.depth = depth;
	req.format = child->format;
	memcpy(req.linkage, ref->linkage, 16);
	req.n_entries = ref->n_paths;
	req.entries = entries;
	vhdx_err_clear();
	ret = cb->open_parent(opaque, &req, &pcb, &popaque);
	free(entries);
	if (ret < 0) {
		char want[VHDX_GUID_STRLEN];
		vhdx_guid_format(ref->linkage, want);
		return vhdx_err_prefix(ret, "%s: parent (identity {%s}) not given by the open_parent callback", child->path,
				       want);
	}
	if (!pcb)
		return vhdx_err(EINVAL, "%s: the open_parent callback returned 0 without callbacks for the parent",
				child->path);
	/* the parent's messages name it; without a name of its own, say whose parent it is */
	if (pcb->struct_size >= offsetof(struct vhdx_io_callbacks, name) + sizeof pcb->name && pcb->name)
		snprintf(label, sizeof label, "%s", pcb->name);
	else
		snprintf(label, sizeof label, "(parent of %s)", child->path);
	ret = vhdx_io_callbacks_new(pcb, popaque, false, &pio); /* closes the source on failure */
	if (ret < 0)
		return ret;
	if (strcmp(pio->name, label)) {
		char *n = strdup(label);
		if (!n) {
			vhdx_io_close(pio);
			return vhdx_err(ENOMEM, "out of memory");
		}
		free(pio->name);
		pio->name = n;
	}
	ret = vhdx_layer_open_io(pio, label, (opts->flags & VHDX_OPEN_SALVAGE) ? VHDX_LAYER_SALVAGE : 0, out);
	if (ret < 0)
		return ret;
	ret = parent_io_check(child, *out, opts);
	if (ret < 0)
		return ret;
	*out_src = pio;
	return 0;
}
