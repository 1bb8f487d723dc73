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
#include "maint/merge_internal.h"

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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *parent = NULL;
	unsigned flags = 0;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PARENT:
			parent = optarg;
			break;
		case OPT_IGNORE_ID:
			flags |= VHDX_REPARENT_RELINK;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !parent) {
		help(stderr);
		return EXIT_USAGE;
	}
	ret = vhdx_reparent_faults(argv[optind], parent, flags, tool_faults);
	if (ret < 0)
		return tool_lib_error("reparent", ret);
	printf("%s: parent is now %s\n", argv[optind], parent);
	return EXIT_OK;
}
