/*
 * info_image.c - the document of `vhdx info` for a whole image: the
 * leaf's summary, the chain, then each layer with its locator and the
 * structures of its format (info_vhdx.c, info_vhd.c).  vhdx_info_json()
 * gives bindings the same JSON the tool prints.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "image_internal.h"
#include "report/info.h"

/* "write", "read" or NULL: what another process does with layer LAYER of IMG */
static const char *info_in_use(struct vhdx_image *img, unsigned layer)
{
	int use = vhdx_layer_in_use(img, layer);

	return use == VHDX_IN_USE_WRITE ? "write" : use == VHDX_IN_USE_READ ? "read" : NULL;
}

/* What the image summary and each layer both say: format, type, sizes and the disk's id. */
static void info_geometry(struct report *r, const struct vhdx_layer *l)
{
	report_str(r, "format", l->format == VHDX_FORMAT_VHDX ? "vhdx" : "vhd");
	report_str(r, "type", vhdx_disk_type_name(l->type));
	report_size(r, "virtual_size", l->virtual_size);
	report_u64(r, "block_size", l->block_size);
	report_u64(r, "logical_sector_size", l->logical_sector_size);
	report_u64(r, "physical_sector_size", l->physical_sector_size);
	report_guid(r, "disk_id", l->disk_id);
}

static void info_layer(struct report *r, struct vhdx_layer *l, const struct vhdx_layer *parent, unsigned idx,
			bool show_log, const char *in_use)
{
	report_begin(r, NULL);
	report_u64(r, "layer", idx);
	report_str(r, "path", l->path);
	report_str_or_null(r, "in_use", in_use);
	info_geometry(r, l);
	report_guid(r, "identity", l->identity);
	if (l->has_parent) {
		report_begin(r, "parent");
		report_guid(r, "linkage", l->parent.linkage);
		if (l->parent.has_linkage2)
			report_guid(r, "linkage2", l->parent.linkage2);
		if (parent) {
			/* false only when the chain was opened with --ignore-id-mismatch */
			report_str(r, "opened_path", parent->path);
			report_bool(r, "linkage_holds", !memcmp(parent->identity, l->parent.linkage, 16) ||
							(l->parent.has_linkage2 &&
							 !memcmp(parent->identity, l->parent.linkage2, 16)));
		}
		report_begin_list(r, "paths");
		for (size_t i = 0; i < l->parent.n_paths; i++) {
			report_begin(r, NULL);
			report_str(r, "key", l->parent.paths[i].key);
			report_str(r, "value", l->parent.paths[i].value);
			report_end(r);
		}
		report_end_list(r);
		report_end(r);
	}
	if (l->format == VHDX_FORMAT_VHDX) {
		info_vhdx_layer(r, l, false);
		if (show_log)
			info_vhdx_log(r, l);
	} else
		info_vhd_layer(r, l, false);
	report_end(r);
}

void vhdx_info_report(struct report *r, struct vhdx_image *img, const char *chain_error, bool show_log)
{
	struct vhdx_chain *ch = vhdx_image_chain(img);

	report_begin(r, NULL);
	{
		const struct vhdx_layer *leaf = ch->layers[0];
		info_geometry(r, leaf);
		report_u64(r, "chain_depth", ch->n);
		report_bool(r, "chain_complete", chain_error == NULL && !(leaf->has_parent && ch->n == 1));
		{
			/* the strongest use another process makes of any file of the chain */
			const char *use = NULL;
			for (unsigned i = 0; i < ch->n; i++) {
				const char *u = info_in_use(img, i);
				if (u && (!use || !strcmp(u, "write")))
					use = u;
			}
			report_str_or_null(r, "in_use", use);
		}
		if (chain_error)
			report_str(r, "chain_error", chain_error);
		report_begin_list(r, "warnings");
		for (const char *w = vhdx_warnings(img); *w;) {
			const char *nl = strchr(w, '\n');
			char *line = strndup(w, nl ? (size_t)(nl - w) : strlen(w));
			report_str(r, NULL, line ? line : "");
			free(line);
			w = nl ? nl + 1 : w + strlen(w);
		}
		report_end_list(r);
	}
	/* the disk's partitions, when the whole chain could be read */
	if (!chain_error)
		vhdx_report_partitions(r, img);
	report_begin_list(r, "layers");
	for (unsigned i = 0; i < ch->n; i++)
		info_layer(r, ch->layers[i], i + 1 < ch->n ? ch->layers[i + 1] : NULL, i, show_log, info_in_use(img, i));
	report_end_list(r);
}

int vhdx_info_render(struct vhdx_image *img, const char *chain_error, unsigned flags, char **doc, const char *fn)
{
	bool json = !(flags & VHDX_INFO_TEXT);
	struct report r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

#ifdef _WIN32
	f = tmpfile(); /* no open_memstream: write to a temporary file, then read it back */
#else
	f = open_memstream(&buf, &len);
#endif
	if (!f)
		return vhdx_err(ENOMEM, "%s: cannot open a memory stream", fn);
	report_init(&r, f, json);
	vhdx_info_report(&r, img, chain_error, flags & VHDX_INFO_LOG);
	if (!(json && (flags & VHDX_INFO_OPEN))) {
		report_end(&r);
		report_finish(&r);
	}
#ifdef _WIN32
	len = (size_t)ftell(f);
	buf = malloc(len + 1);
	rewind(f);
	if (buf && fread(buf, 1, len, f) != len) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = '\0';
#endif
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return vhdx_err(ENOMEM, "%s: out of memory", fn);
	}
	*doc = buf;
	return 0;
}

int vhdx_info_json(struct vhdx_image *img, unsigned flags, char **json)
{
	if (!img || !json)
		return vhdx_err(EINVAL, "vhdx_info_json: img and json must not be NULL");
	if (flags & ~VHDX_INFO_LOG)
		return vhdx_err(EINVAL, "vhdx_info_json: unknown flags 0x%x", flags & ~VHDX_INFO_LOG);
	return vhdx_info_render(img, NULL, flags, json, "vhdx_info_json");
}
