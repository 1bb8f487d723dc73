/*
 * inspect.c - the public inspect API: what one layer of an opened image is
 * (vhdx_get_layer_info) and the `vhdx info` document in text or JSON
 * (vhdx_info_doc), so that the tools show headers, regions, metadata, log
 * and BAT state without reaching into the layer and format structs.
 */
#include "config.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "image_internal.h"
#include "chain/chain.h"
#include "io/io.h"
#include "format/vhdx_format.h"
#include "report/info.h"

int vhdx_get_layer_info(struct vhdx_image *img, unsigned layer, struct vhdx_layer_info *info)
{
	struct vhdx_chain *c;
	struct vhdx_layer *l;
	struct vhdx_layer_info i;

	if (!img || !info || info->struct_size < sizeof(size_t))
		return vhdx_err(EINVAL, "vhdx_get_layer_info: set info->struct_size");
	c = vhdx_image_chain(img);
	if (layer >= c->n)
		return vhdx_err(ENOENT, "vhdx_get_layer_info: no layer %u (the chain has %u)", layer, c->n);
	l = c->layers[layer];
	memset(&i, 0, sizeof i);
	i.struct_size = sizeof i;
	i.path = l->path;
	i.format = l->format;
	i.type = l->type;
	i.virtual_size = l->virtual_size;
	i.block_size = l->block_size;
	i.logical_sector_size = l->logical_sector_size;
	i.physical_sector_size = l->physical_sector_size;
	memcpy(i.disk_id, l->disk_id, 16);
	memcpy(i.identity, l->identity, 16);
	i.has_parent = l->has_parent;
	if (l->has_parent) {
		memcpy(i.parent_linkage, l->parent.linkage, 16);
		i.has_parent_linkage2 = l->parent.has_linkage2;
		memcpy(i.parent_linkage2, l->parent.linkage2, 16);
		i.parent_timestamp = l->parent.timestamp;
		i.parent_locator = l->parent.n_paths ? l->parent.paths[0].value : NULL;
	}
	i.log_replayed = l->log_replayed;
	if (l->format == VHDX_FORMAT_VHDX) {
		const struct vhdx_state *s = vhdx_state_of(l);

		i.log_was_dirty = s->log_was_dirty;
		i.log_report = s->log_report;
		i.bat_foff = s->bat_off;
		i.bat_entries = s->geo.bat_entries;
		i.chunk_ratio = s->geo.chunk_ratio;
	}
	vhdx_struct_copy_out(info, &i, sizeof i);
	return 0;
}

const char *vhdx_type_name(enum vhdx_disk_type t)
{
	return vhdx_disk_type_name(t);
}

#define PROBE_BYTES (64u << 10) /* more than any format's bid needs */

int vhdx_probe_file(const char *path)
{
	const struct vhdx_format_ops *formats[] = { &vhdx_format_vhdx, &vhdx_format_vhd };
	struct vhdx_io *io;
	uint64_t size;
	uint8_t *head;
	size_t len;
	int ret, bid = 0;

	vhdx_err_clear();
	if (!path)
		return vhdx_err(EINVAL, "vhdx_probe_file: path must not be NULL");
	ret = vhdx_io_file_open(path, false, &io);
	if (ret < 0)
		return ret;
	ret = vhdx_io_get_size(io, &size);
	head = ret < 0 ? NULL : malloc(PROBE_BYTES);
	if (!head) {
		vhdx_io_close(io);
		return ret < 0 ? ret : vhdx_err(ENOMEM, "out of memory");
	}
	len = (size_t)(size < PROBE_BYTES ? size : PROBE_BYTES);
	ret = len ? vhdx_io_pread(io, head, len, 0, VHDX_TAG_OTHER) : 0;
	for (size_t i = 0; ret >= 0 && i < sizeof formats / sizeof formats[0]; i++)
		if (formats[i]->probe(io, head, len, size) > 0)
			bid = 1;
	free(head);
	vhdx_io_close(io);
	return ret < 0 ? ret : bid;
}

void vhdx_info_doc_options_init(struct vhdx_info_doc_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->struct_size = sizeof *opts;
}

int vhdx_info_doc(struct vhdx_image *img, const struct vhdx_info_doc_options *opts_in, char **doc)
{
	const unsigned known = VHDX_INFO_LOG | VHDX_INFO_TEXT | VHDX_INFO_OPEN;
	struct vhdx_info_doc_options o;
	int ret;

	ret = vhdx_options_in(&o, sizeof o, opts_in,
			      offsetof(struct vhdx_info_doc_options, chain_error) + sizeof o.chain_error, "vhdx_info_doc");
	if (ret < 0)
		return ret;
	if (!img || !doc)
		return vhdx_err(EINVAL, "vhdx_info_doc: img and doc must not be NULL");
	if (o.flags & ~known)
		return vhdx_err(EINVAL, "vhdx_info_doc: unknown flags 0x%x", o.flags & ~known);
	return vhdx_info_render(img, o.chain_error, o.flags, doc, "vhdx_info_doc");
}
