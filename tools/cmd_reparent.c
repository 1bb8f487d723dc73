/*
 * cmd_reparent.c - `vhdx reparent CHILD --parent NEWPARENT
 * [--ignore-id-mismatch]`: vhdx_reparent() on the command line (like
 * Set-VHD -ParentPath).  The global chain option --parent is this
 * command's own --parent; --ignore-id-mismatch also rewrites the link.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx reparent --parent NEWPARENT [--ignore-id-mismatch] CHILD\n\n"
		   "Points the parent locator of the differencing image CHILD at NEWPARENT (after\n"
		   "files were moved or renamed).  NEWPARENT must have the identity CHILD links to,\n"
		   "unless --ignore-id-mismatch, which links CHILD to NEWPARENT as it is now (only\n"
		   "right when NEWPARENT holds the data CHILD was made over).  Crash-safe for VHDX\n"
		   "(through the log); CHILD's own data and identity do not change.  A VHD child\n"
		   "gets its W2ku/W2ru locators (where it has them) and its parent name, which\n"
		   "vhd-lib (Xen Orchestra) children without locators rely on.  A NEWPARENT\n"
		   "that is CHILD or leads back to it (a cycle) is refused.\n\n"
		   "      --parent NEWPARENT     the new parent file\n"
		   "      --ignore-id-mismatch   also rewrite the link to NEWPARENT's identity\n"
		   "  -h, --help                 this text\n");
}

int cmd_reparent(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "ignore-id-mismatch", no_argument, NULL, OPT_IGNORE_ID },
		TOOL_LONGOPTS_END,
	};
	struct vhdx_reparent_options ro;
	const char *parent = NULL;
	int c, ret;
	/* no .open: --parent and --ignore-id-mismatch mean other things here */
	struct tool_cmd tc = { .name = "reparent", .help = help, .shortopts = "h", .longopts = longopts };

	vhdx_reparent_options_init(&ro);
	ro.faults = tool_faults; /* vhdx --faults RULES reparent */
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		if (c == OPT_PARENT)
			parent = optarg;
		else if (c == OPT_IGNORE_ID)
			ro.flags |= VHDX_REPARENT_RELINK;
	}
	if (tool_operands(&tc, argc, parent ? 1 : -1, NULL))
		return tc.rc;
	ret = vhdx_reparent_ex(argv[optind], parent, &ro);
	if (ret < 0)
		return tool_lib_error("reparent", ret);
	printf("%s: parent is now %s\n", argv[optind], parent);
	return EXIT_OK;
}
