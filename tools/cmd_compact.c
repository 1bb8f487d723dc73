/*
 * cmd_compact.c - `vhdx compact [--progress] [--json] IMAGE`: vhdx_compact()
 * on the command line (like Hyper-V's Optimize-VHD): all-zero blocks stop
 * being stored, blocks move down, the file shrinks; crash-safe.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx compact [--json] [--progress|--no-progress] IMAGE\n\n"
		   "Compacts the dynamic or differencing IMAGE (VHDX or VHD) in place, like\n"
		   "Optimize-VHD: blocks whose data is all zero stop being stored (in a\n"
		   "differencing VHDX they become ZERO blocks, so the parent stays hidden; a\n"
		   "differencing VHD has no such state and keeps them), blocks with no sector of\n"
		   "their own are dropped, unneeded sector-bitmap blocks are freed,\n"
		   "the remaining blocks move down into the freed space and the file is truncated.\n"
		   "The disk reads the same before, after, and after a crash at any point; its\n"
		   "identity does not change, so children stay linked.\n\n"
		   "      --json                machine-readable report\n"
		   "  -p, --progress            show progress on standard error (default on a terminal)\n"
		   "      --no-progress         never show progress\n"
		   "  -h, --help                this text\n");
}

int cmd_compact(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		TOOL_LONGOPTS_END,
	};
	struct vhdx_compact_options o;
	struct vhdx_compact_result res;
	struct tool_progress ps;
	struct report r;
	bool json = false;
	int progress = -1, ret;
	struct tool_cmd tc = { .name = "compact", .help = help, .shortopts = "ph", .longopts = longopts,
			       .json = &json, .progress = &progress };

	while (tool_getopt(&tc, argc, argv) != -1)
		; /* --json and the progress options only */
	if (tool_operands(&tc, argc, 1, NULL))
		return tc.rc;
	tool_progress_start(&ps, "compact", progress == 1 || (progress == -1 && isatty(2)), 0);
	vhdx_compact_options_init(&o);
	o.faults = tool_faults;
	o.progress = tool_progress_cb;
	o.progress_arg = &ps;
	res.struct_size = sizeof res;
	ret = vhdx_compact(argv[optind], &o, &res);
	tool_progress_end(&ps);
	if (ret < 0)
		return tool_lib_error("compact", ret);
	tool_report_image(&r, json, argv[optind]);
	report_u64(&r, "blocks_examined", res.blocks_examined);
	report_u64(&r, "blocks_zeroed", res.blocks_zeroed);
	report_u64(&r, "blocks_dropped", res.blocks_dropped);
	report_u64(&r, "bitmaps_freed", res.bitmaps_freed);
	report_u64(&r, "blocks_moved", res.blocks_moved);
	report_size(&r, "bytes_moved", res.bytes_moved);
	report_size(&r, "old_file_size", res.old_file_size);
	report_size(&r, "new_file_size", res.new_file_size);
	report_size(&r, "bytes_freed", res.old_file_size > res.new_file_size ? res.old_file_size - res.new_file_size : 0);
	report_end(&r);
	report_finish(&r);
	return EXIT_OK;
}
