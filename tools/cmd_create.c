/*
 * cmd_create.c - `vhdx create`: new fixed, dynamic or differencing images.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx create [--type fixed|dynamic] --size N [OPTIONS] FILE\n"
		   "       vhdx create --parent PARENT [OPTIONS] FILE\n\n"
		   "Creates a new image.  The format follows the name: FILE.vhd is a legacy VHD,\n"
		   "anything else (.vhdx, .avhdx, ...) is VHDX; --format overrides.  With --parent\n"
		   "the new file is a differencing child (a checkpoint) of PARENT: it takes the\n"
		   "parent's virtual size and sector sizes and links to the parent's identity.\n"
		   "Defaults are Hyper-V's: dynamic, 32 MiB blocks (2 MiB for a child), 512-byte\n"
		   "logical and 4096-byte physical sectors, a 1 MiB log.  Sizes take K, M, G, T.\n"
		   "A VHD has 512-byte sectors and 2 MiB blocks by default (a power of two from\n"
		   "4K to 256M); a dynamic or differencing VHD holds at most 2040 GiB.\n\n"
		   "  --type fixed|dynamic           allocation (default dynamic)\n"
		   "  --size N                       virtual size in bytes (K/M/G/T suffixes)\n"
		   "  --block-size N                 block size, a power of two from 1M to 256M\n"
		   "                                 (VHD: from 4K to 256M, default 2M)\n"
		   "  --logical-sector-size 512|4096\n"
		   "  --physical-sector-size 512|4096\n"
		   "  --parent PARENT                create a differencing child of PARENT\n"
		   "  --log-size N                   VHDX log size, a multiple of 1M (default 1M)\n"
		   "  --format vhdx|vhd              override the format chosen from the name\n"
		   "  --force                        replace FILE if it exists\n"
		   "  -h, --help                     this text\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (tool_parse_size(s, &v) < 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/*
 * Prints vhdx_create's failure RET for FILE (made under OF's temporary name
 * when OF is set) with what to do about it; EXIT_ERR.
 */
static int create_error(const struct tool_outfile *of, const char *file, int ret)
{
	if (ret == -EEXIST) {
		tool_error("create", "%s: the file exists (add --force to replace it)", file);
		return EXIT_ERR;
	}
	if (ret == -EINVAL && strstr(vhdx_errmsg(), "virtual size must be"))
		/* the library says the range; the unit rule is the command line's */
		return tool_outfile_lib_error_hint(of, "create", ret,
						   "(--size takes bytes, or a number with K, M, G or T: powers of "
						   "1024, 1M = 1048576)");
	return of ? tool_outfile_lib_error(of, "create", ret) : tool_lib_error("create", ret);
}

int cmd_create(int argc, char **argv)
{
	enum { OPT_TYPE = OPT__NEXT, OPT_SIZE, OPT_BLOCK, OPT_LSS, OPT_PSS, OPT_CPARENT, OPT_LOG, OPT_FORMAT, OPT_FORCE };
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "block-size", required_argument, NULL, OPT_BLOCK },
		{ "logical-sector-size", required_argument, NULL, OPT_LSS },
		{ "physical-sector-size", required_argument, NULL, OPT_PSS },
		{ "parent", required_argument, NULL, OPT_CPARENT },
		{ "log-size", required_argument, NULL, OPT_LOG },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "force", no_argument, NULL, OPT_FORCE },
		TOOL_LONGOPTS_END,
	};
	struct vhdx_create_options o;
	struct tool_outfile of;
	const char *format = NULL, *file;
	int c, ret;
	struct tool_cmd tc = { .name = "create", .help = help, .shortopts = "h", .longopts = longopts };

	vhdx_create_options_init(&o);
	o.faults = tool_faults; /* vhdx --faults RULES create ... */
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_TYPE:
			ret = tool_choice_option("create", "--type", optarg, "fixed", "dynamic");
			if (ret < 0)
				return EXIT_USAGE;
			o.type = ret ? VHDX_TYPE_DYNAMIC : VHDX_TYPE_FIXED;
			break;
		case OPT_SIZE:
			if (tool_parse_size(optarg, &o.virtual_size) < 0 || o.virtual_size == 0) {
				tool_error("create", "bad --size '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_BLOCK:
			if (parse_u32(optarg, &o.block_size) < 0) {
				tool_error("create", "bad --block-size '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_LSS:
		case OPT_PSS: {
			uint32_t v;
			if (parse_u32(optarg, &v) < 0 || (v != 512 && v != 4096)) {
				tool_error("create", "sector sizes are 512 or 4096, got '%s'", optarg);
				return EXIT_USAGE;
			}
			if (c == OPT_LSS)
				o.logical_sector_size = v;
			else
				o.physical_sector_size = v;
			break;
		}
		case OPT_CPARENT: o.parent = optarg; break;
		case OPT_LOG:
			if (parse_u32(optarg, &o.log_size) < 0) {
				tool_error("create", "bad --log-size '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_FORMAT: format = optarg; break;
		case OPT_FORCE: o.flags |= VHDX_CREATE_OVERWRITE; break;
		}
	}
	if (tool_operands(&tc, argc, 1, "one FILE"))
		return tc.rc;
	file = argv[optind];
	if (format) {
		ret = tool_choice_option("create", "--format", format, "vhdx", "vhd");
		if (ret < 0)
			return EXIT_USAGE;
		o.format = ret ? VHDX_FORMAT_VHD : VHDX_FORMAT_VHDX;
	} else {
		size_t n = strlen(file);
		o.format = n >= 4 && !strcasecmp(file + n - 4, ".vhd") ? VHDX_FORMAT_VHD : VHDX_FORMAT_VHDX;
	}
	if (!o.parent && !o.virtual_size) {
		tool_error("create", "--size is required (or --parent for a differencing child)");
		return EXIT_USAGE;
	}
	if (o.parent) {
		/* a child's locator holds its path relative to the parent: created where it stays */
		ret = vhdx_create(file, &o);
		return ret < 0 ? create_error(NULL, file, ret) : EXIT_OK;
	}
	/* under a temporary name, renamed when complete: a killed create leaves no image at FILE */
	if (!(o.flags & VHDX_CREATE_OVERWRITE) && access(file, F_OK) == 0)
		return create_error(NULL, file, -EEXIST);
	if (tool_outfile_begin(&of, "create", file) != EXIT_OK)
		return EXIT_ERR;
	ret = vhdx_create(of.tmp, &o);
	if (ret < 0) {
		create_error(&of, file, ret);
		tool_outfile_abort(&of);
		return EXIT_ERR;
	}
	return tool_outfile_commit(&of, "create", o.flags & VHDX_CREATE_OVERWRITE);
}
