/*
 * cmd_resize.c - `vhdx resize --size N [--json] IMAGE`: vhdx_resize() on the
 * command line (like Resize-VHD): grows VHDX and VHD, shrinks VHDX when no
 * allocated block lies past the new end; crash-safe.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx resize --size N [--json] IMAGE\n\n"
		   "Changes the virtual size of IMAGE to N bytes (K/M/G/T suffixes; a multiple of\n"
		   "the logical sector size).  VHDX grows (the BAT region moves when it is too\n"
		   "small) and shrinks when no allocated block lies past the new end.  VHD grows:\n"
		   "fixed images always, dynamic ones while the BAT has room before the first\n"
		   "block; shrinking a VHD is refused.  Differencing images are refused: their\n"
		   "size is their parent's.  The old content stays, the new area reads as zeros.\n"
		   "Through the VHDX log (ordered sector writes for VHD): crash-safe.  A VHDX gets\n"
		   "a new DataWriteGuid, so children made over it no longer link to it.\n\n"
		   "      --size N              the new virtual size\n"
		   "      --json                machine-readable report\n"
		   "  -h, --help                this text\n");
}

int cmd_resize(int argc, char **argv)
{
	enum { OPT_SIZE = OPT__NEXT };
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, OPT_SIZE },
		TOOL_JSON_LONGOPT,
		TOOL_LONGOPTS_END,
	};
	struct vhdx_resize_options o;
	struct vhdx_resize_result res;
	struct report r;
	uint64_t size = 0;
	bool json = false, have_size = false;
	int ret;
	struct tool_cmd tc = { .name = "resize", .help = help, .shortopts = "h", .longopts = longopts, .json = &json };

	while (tool_getopt(&tc, argc, argv) != -1) { /* --size */
		if (tool_size_option("resize", "--size", optarg, true, &size) < 0)
			return EXIT_USAGE;
		have_size = true;
	}
	if (tool_operands(&tc, argc, have_size ? 1 : -1, NULL))
		return tc.rc;
	vhdx_resize_options_init(&o);
	o.faults = tool_faults;
	res.struct_size = sizeof res;
	ret = vhdx_resize(argv[optind], size, &o, &res);
	if (ret < 0)
		return tool_lib_error("resize", ret);
	tool_report_image(&r, json, argv[optind]);
	report_size(&r, "old_size", res.old_size);
	report_size(&r, "new_size", res.new_size);
	report_bool(&r, "bat_relocated", res.bat_relocated);
	report_size(&r, "old_file_size", res.old_file_size);
	report_size(&r, "new_file_size", res.new_file_size);
	report_end(&r);
	report_finish(&r);
	return EXIT_OK;
}
