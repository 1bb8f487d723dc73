/*
 * cmd_replay.c - `vhdx replay IMAGE`: replays a dirty VHDX metadata log in
 * place (MS-VHDX 2.3.3) and clears the LogGuid, the way a writable open by
 * Hyper-V or `qemu-img check -r all` would, and says what it replayed.
 * The replay itself happens inside the writable open (format/vhdx_log.c);
 * this command only opens, reports and closes.
 */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx replay [--json] IMAGE\n\n"
		   "Opens IMAGE read-write, which replays a dirty VHDX metadata log into the\n"
		   "file and clears the header's LogGuid, and prints what was replayed (or\n"
		   "that the log was clean).  Parents are not opened or changed.\n\n"
		   "  --json          machine-readable output\n"
		   "  -h, --help      this text\n");
}

int cmd_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhdx_open_options opts;
	struct vhdx_image *img;
	struct vhdx_layer_info leaf;
	struct report r;
	const char *what;
	bool json = false, dirty = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = true; break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_error("replay", "expected one IMAGE (see 'vhdx replay --help')");
		return EXIT_USAGE;
	}
	vhdx_open_options_init(&opts);
	opts.flags = VHDX_OPEN_RDWR | VHDX_OPEN_NO_PARENT;
	opts.faults = tool_faults; /* vhdx --faults RULES */
	ret = vhdx_open(argv[optind], &opts, &img);
	if (ret < 0)
		return tool_lib_error("replay", ret);
	leaf.struct_size = sizeof leaf;
	ret = vhdx_get_layer_info(img, 0, &leaf);
	if (ret < 0) {
		vhdx_close(img);
		return tool_lib_error("replay", ret);
	}
	dirty = leaf.log_was_dirty;
	if (leaf.format != VHDX_FORMAT_VHDX)
		what = "VHD images have no log: nothing to replay";
	else if (!dirty)
		what = "log is clean, nothing to replay";
	else
		what = leaf.log_report ? leaf.log_report : "dirty log";

	report_init(&r, stdout, json);
	if (json) {
		report_begin(&r, NULL);
		report_str(&r, "image", argv[optind]);
		report_str(&r, "format", leaf.format == VHDX_FORMAT_VHDX ? "vhdx" : "vhd");
		report_bool(&r, "log_was_dirty", dirty);
		report_bool(&r, "replayed", leaf.log_replayed);
		report_str(&r, "report", what);
		report_end(&r);
		report_finish(&r);
	} else {
		printf("%s: %s\n", argv[optind], what);
	}
	ret = vhdx_close(img);
	return ret < 0 ? tool_lib_error("replay", ret) : EXIT_OK;
}
