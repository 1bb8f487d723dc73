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
		TOOL_JSON_LONGOPT,
		TOOL_LONGOPTS_END,
	};
	struct vhdx_image *img;
	struct vhdx_layer_info leaf;
	struct report r;
	const char *what;
	bool json = false, dirty = false;
	int ret;
	struct tool_cmd tc = { .name = "replay", .help = help, .shortopts = "h", .longopts = longopts, .json = &json };

	while (tool_getopt(&tc, argc, argv) != -1)
		; /* --json only */
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	/* the writable open replays the log; vhdx --faults RULES reaches it */
	ret = tool_open_flags(argv[optind], VHDX_OPEN_RDWR | VHDX_OPEN_NO_PARENT, tool_faults, &img);
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

	if (json) {
		tool_report_image(&r, true, argv[optind]);
		report_str(&r, "format", leaf.format == VHDX_FORMAT_VHDX ? "vhdx" : "vhd");
		report_bool(&r, "log_was_dirty", dirty);
		report_bool(&r, "replayed", leaf.log_replayed);
		report_str(&r, "report", what);
		report_end(&r);
		report_finish(&r);
	} else {
		printf("%s: %s\n", argv[optind], what);
	}
	return tool_close_image("replay", img);
}
