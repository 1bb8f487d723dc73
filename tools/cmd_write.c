/*
 * cmd_write.c - `vhdx write`: standard input into the virtual disk at a
 * byte offset, then a flush; for scripts and tests.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx write [--offset N] [--discard LEN] IMAGE < DATA\n\n"
		   "Writes standard input into the virtual disk of IMAGE starting at byte N\n"
		   "(any offset; partial sectors are merged) and flushes.  Only the leaf of a\n"
		   "chain is written.  Writing past the end of the disk is an error.\n\n"
		   "  --offset N       byte offset in the virtual disk (default 0; K/M/G suffixes)\n"
		   "  --discard LEN    instead of writing, make LEN bytes at N read as zeros\n"
		   "                   (whole blocks are released)\n"
		   "  -h, --help       this text\n\n" TOOL_OPEN_HELP);
}

int cmd_write(int argc, char **argv)
{
	enum { OPT_OFFSET = OPT__NEXT, OPT_DISCARD };
	static const struct option longopts[] = {
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "discard", required_argument, NULL, OPT_DISCARD },
		TOOL_IMAGE_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img;
	struct vhdx_info info = { .struct_size = sizeof info };
	uint64_t off = 0, discard = 0, total = 0;
	size_t cap = 4u << 20;
	uint8_t *buf;
	int c, ret, rc = EXIT_OK;
	struct tool_cmd tc = { .name = "write", .help = help, .shortopts = "h", .longopts = longopts, .open = &to };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_OFFSET:
			if (tool_size_option("write", "--offset", optarg, false, &off) < 0)
				return EXIT_USAGE;
			break;
		case OPT_DISCARD:
			if (tool_size_option("write", "--discard", optarg, true, &discard) < 0)
				return EXIT_USAGE;
			break;
		}
	}
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	to.opts.flags |= VHDX_OPEN_RDWR;
	ret = tool_open_image(&to, argv[optind], "write", &img);
	if (ret)
		return ret;
	vhdx_get_info(img, &info);
	if (discard) {
		if (off > info.virtual_size || discard > info.virtual_size - off) {
			tool_error("write", "range %" PRIu64 "+%" PRIu64 " is past the end of the disk (%" PRIu64 " bytes)",
				   off, discard, info.virtual_size);
			vhdx_close(img);
			return EXIT_ERR;
		}
		ret = vhdx_discard(img, off, discard);
		if (ret < 0)
			rc = tool_lib_error("write", ret);
		goto close;
	}
	buf = malloc(cap);
	if (!buf) {
		tool_error("write", "out of memory");
		vhdx_close(img);
		return EXIT_ERR;
	}
	for (;;) {
		ssize_t n = 0, w;
		/* fill the whole buffer (pipes return 64 KiB at a time) so whole blocks arrive whole */
		while ((size_t)n < cap) {
			ssize_t r = read(STDIN_FILENO, buf + n, cap - (size_t)n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (r < 0) {
					tool_error("write", "reading standard input: %s", strerror(errno));
					rc = EXIT_ERR;
				}
				break;
			}
			n += r;
		}
		if (rc != EXIT_OK || n == 0)
			break;
		if (off + total + (uint64_t)n > info.virtual_size) {
			tool_error("write", "data reaches byte %" PRIu64 ", past the end of the disk (%" PRIu64 " bytes)",
				   off + total + (uint64_t)n, info.virtual_size);
			rc = EXIT_ERR;
			break;
		}
		w = vhdx_pwrite(img, buf, (size_t)n, off + total);
		if (w < 0) {
			rc = tool_lib_error("write", (int)w);
			break;
		}
		total += (uint64_t)n;
	}
	free(buf);
close:
	if (rc == EXIT_OK) {
		ret = vhdx_flush(img);
		if (ret < 0)
			rc = tool_lib_error("write", ret);
	}
	ret = vhdx_close(img);
	if (ret < 0 && rc == EXIT_OK)
		rc = tool_lib_error("write", ret);
	return rc;
}
