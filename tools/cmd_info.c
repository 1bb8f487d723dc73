/*
 * cmd_info.c - `vhdx info`: what an image is, layer by layer.  A broken
 * chain still shows every layer that could be read (the leaf at least) and
 * then the error, so an administrator sees the locator paths that failed.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

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
		   "  -h, --help      this text\n\n"
		   "An image another process has open for writing is shown all the same (read\n"
		   "without its lock); in_use says \"write\" or \"read\" while another process\n"
		   "has a file open.\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_info(int argc, char **argv)
{
	enum { OPT_LOG = OPT__NEXT };
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		{ "log", no_argument, NULL, OPT_LOG },
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img = NULL;
	struct vhdx_info_doc_options io;
	struct report r;
	char *chain_error = NULL, *doc;
	int chain_errno = 0;
	bool json = false, show_log = false;
	int c, ret;
	struct tool_cmd tc = { .name = "info", .help = help, .shortopts = "hU", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1)
		if (c == OPT_LOG)
			show_log = true;
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	ret = vhdx_open(argv[optind], &to.opts, &img);
	if (ret == -EBUSY) {
		/* another process writes a file of the chain: report that (in_use) instead of failing */
		to.opts.flags |= VHDX_OPEN_FORCE_SHARE;
		ret = vhdx_open(argv[optind], &to.opts, &img);
	}
	if (ret < 0 && !(to.opts.flags & VHDX_OPEN_NO_PARENT)) {
		/* show the leaf alone, then say why the chain could not be opened */
		const char *m = vhdx_errmsg();
		chain_error = strdup(m && *m ? m : strerror(-ret));
		chain_errno = -ret;
		to.opts.flags |= VHDX_OPEN_NO_PARENT;
		if (vhdx_open(argv[optind], &to.opts, &img) < 0) {
			/* the leaf itself is unreadable: report the first error */
			tool_json_set_errno(chain_errno);
			tool_error("info", "%s", chain_error);
			free(chain_error);
			return EXIT_ERR;
		}
	} else if (ret < 0) {
		return tool_lib_error("info", ret);
	}
	vhdx_info_doc_options_init(&io);
	io.flags = (json ? VHDX_INFO_OPEN : VHDX_INFO_TEXT) | (show_log ? VHDX_INFO_LOG : 0);
	io.chain_error = chain_error;
	ret = vhdx_info_doc(img, &io, &doc);
	if (ret < 0) {
		vhdx_close(img);
		free(chain_error);
		return tool_lib_error("info", ret);
	}
	/* the library's document with its top object still open: the tool may add its error */
	report_init(&r, stdout, json);
	fputs(doc, stdout);
	free(doc);
	report_resume(&r, 1);
	if (chain_error)
		report_error(&r, chain_errno, chain_error); /* with --json: the error object too */
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
