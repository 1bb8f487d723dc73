/*
 * cmd_info.c - `vhdx info`: what an image is, layer by layer.  A broken
 * chain still shows every layer that could be read (the leaf at least) and
 * then the error, so an administrator sees the locator paths that failed.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "info.h"
#include "parts.h"
#include "image_internal.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx info [--json] [--log] IMAGE\n\n"
		   "Shows the format, type, virtual size, block and sector sizes, disk id and,\n"
		   "for each layer of the chain, its headers, region table, metadata items,\n"
		   "log state, BAT block states and parent locator; and the disk's partitions\n"
		   "(MBR or GPT: number, first byte, size, type, name, file system, label).\n\n"
		   "  --json          machine-readable output\n"
		   "  --log           also list every entry of the VHDX log's active sequence\n"
		   "                  (log offset, sequence number, tail, length, descriptors)\n"
		   "  -h, --help      this text\n\n" TOOL_OPEN_HELP);
}

static void print_layer(struct report *r, struct vhdx_layer *l, const struct vhdx_layer *parent, unsigned idx,
			bool show_log)
{
	report_begin(r, NULL);
	report_u64(r, "layer", idx);
	report_str(r, "path", l->path);
	report_str(r, "format", l->format == VHDX_FORMAT_VHDX ? "vhdx" : "vhd");
	report_str(r, "type", vhdx_disk_type_name(l->type));
	report_size(r, "virtual_size", l->virtual_size);
	report_u64(r, "block_size", l->block_size);
	report_u64(r, "logical_sector_size", l->logical_sector_size);
	report_u64(r, "physical_sector_size", l->physical_sector_size);
	report_guid(r, "disk_id", l->disk_id);
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

int cmd_info(int argc, char **argv)
{
	enum { OPT_LOG = OPT__NEXT };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "log", no_argument, NULL, OPT_LOG },
		{ "help", no_argument, NULL, 'h' },
		TOOL_OPEN_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct tool_open to;
	struct vhdx_image *img = NULL;
	struct vhdx_chain *ch;
	struct report r;
	char *chain_error = NULL;
	bool json = false, show_log = false;
	int c, ret;

	tool_open_init(&to);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int h = tool_open_option(&to, c, optarg, "info");
		if (h < 0)
			return EXIT_USAGE;
		if (h)
			continue;
		switch (c) {
		case OPT_JSON: json = true; break;
		case OPT_LOG: show_log = true; break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_error("info", "expected one IMAGE (see 'vhdx info --help')");
		return EXIT_USAGE;
	}
	ret = vhdx_open(argv[optind], &to.opts, &img);
	if (ret < 0 && !(to.opts.flags & VHDX_OPEN_NO_PARENT)) {
		/* show the leaf alone, then say why the chain could not be opened */
		const char *m = vhdx_errmsg();
		chain_error = strdup(m && *m ? m : strerror(-ret));
		to.opts.flags |= VHDX_OPEN_NO_PARENT;
		if (vhdx_open(argv[optind], &to.opts, &img) < 0) {
			/* the leaf itself is unreadable: report the first error */
			tool_error("info", "%s", chain_error);
			free(chain_error);
			return EXIT_ERR;
		}
	} else if (ret < 0) {
		return tool_lib_error("info", ret);
	}
	ch = vhdx_image_chain(img);
	report_init(&r, stdout, json);
	report_begin(&r, NULL);
	{
		const struct vhdx_layer *leaf = ch->layers[0];
		report_str(&r, "format", leaf->format == VHDX_FORMAT_VHDX ? "vhdx" : "vhd");
		report_str(&r, "type", vhdx_disk_type_name(leaf->type));
		report_size(&r, "virtual_size", leaf->virtual_size);
		report_u64(&r, "block_size", leaf->block_size);
		report_u64(&r, "logical_sector_size", leaf->logical_sector_size);
		report_u64(&r, "physical_sector_size", leaf->physical_sector_size);
		report_guid(&r, "disk_id", leaf->disk_id);
		report_u64(&r, "chain_depth", ch->n);
		report_bool(&r, "chain_complete", chain_error == NULL && !(leaf->has_parent && ch->n == 1));
		if (chain_error)
			report_str(&r, "chain_error", chain_error);
		report_begin_list(&r, "warnings");
		for (const char *w = vhdx_warnings(img); *w;) {
			const char *nl = strchr(w, '\n');
			char *line = strndup(w, nl ? (size_t)(nl - w) : strlen(w));
			report_str(&r, NULL, line ? line : "");
			free(line);
			w = nl ? nl + 1 : w + strlen(w);
		}
		report_end_list(&r);
	}
	/* the disk's partitions, when the whole chain could be read */
	if (!chain_error)
		tool_partitions_report(&r, img);
	report_begin_list(&r, "layers");
	for (unsigned i = 0; i < ch->n; i++)
		print_layer(&r, ch->layers[i], i + 1 < ch->n ? ch->layers[i + 1] : NULL, i, show_log);
	report_end_list(&r);
	report_end(&r);
	report_finish(&r);
	ret = vhdx_close(img);
	if (chain_error) {
		tool_error("info", "%s", chain_error);
		free(chain_error);
		return EXIT_ERR;
	}
	return ret < 0 ? tool_lib_error("info", ret) : EXIT_OK;
}
