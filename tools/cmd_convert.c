/*
 * cmd_convert.c - `vhdx convert [-O raw|vhdx|vhd] SRC DST`: the whole
 * virtual disk of SRC (an image and its parent chain, flattened; or a raw
 * disk file with -f raw) written to DST as a raw file or stream, or as a
 * new fixed or dynamic VHDX or VHD (like Convert-VHD).
 *
 * The source's allocation map drives the copy (convert_copy.c): zero
 * extents are skipped (a 127 GiB empty disk converts in the time it takes
 * to walk its BAT), and data is read in 4 MiB windows whose all-zero 64 KiB
 * pieces are not written either.  So a raw output gets holes, and a dynamic
 * output stores only blocks that hold a non-zero byte; a fixed output is
 * allocated in full by vhdx_create() and reads as zeros where nothing was
 * written.  Source and output files stay in the page cache's hands; an
 * image output gets one vhdx_flush() at the end, a raw one none (as
 * qemu-img and cp: `sync` if durability matters).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "convert.h"
#include "parts.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx convert [-O raw|vhdx|vhd] [OPTIONS] [CHAIN OPTIONS] SRC DST\n\n"
		   "Writes the whole virtual disk of SRC (through its parent chain: a chain\n"
		   "becomes one image) to DST as a raw disk or a new VHDX or VHD.  The format\n"
		   "is -O, else DST's extension (.vhdx and .avhdx: vhdx, .vhd: vhd), else raw.\n"
		   "Zeros are not stored: a raw file gets holes, a dynamic image only the\n"
		   "blocks that hold data.  DST '-' is standard output (raw).  An existing DST\n"
		   "is refused without --force (-O raw replaces a raw DST, as it always did).\n"
		   "A file DST is written as .DST.tmp-PID/DST and renamed when complete.\n\n"
		   "  -O, --output-format raw|vhdx|vhd   the output format\n"
		   "  -f, --input-format raw|auto        raw: SRC is a raw disk file (its size is\n"
		   "                                     the disk size); auto: a VHDX/VHD (default)\n"
		   "      --type fixed|dynamic           the new image's type (default: SRC's when\n"
		   "                                     fixed, else dynamic)\n"
		   "      --block-size N                 the new image's block size (default 32M\n"
		   "                                     VHDX, 2M VHD)\n"
		   "      --logical-sector-size 512|4096  (VHDX; default SRC's, raw: 512)\n"
		   "      --physical-sector-size 512|4096 (VHDX; default SRC's, raw: 4096)\n"
		   "      --force                        replace an existing DST\n"
		   "      --offset N                     raw output: start at byte N of the disk\n"
		   "      --length N                     raw output: convert N bytes\n"
		   "      --partition N                  only partition N of SRC (numbered as Linux\n"
		   "                                     does, see 'vhdx info'): a volume image\n"
		   "  -p, --progress                     show progress on standard error (default\n"
		   "                                     on a terminal)\n"
		   "      --no-progress                  never show progress\n"
		   "  -h, --help                         this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

/* ---------------------------------------------------------------- interruption */

static void on_signal(int sig)
{
	convert_interrupted = sig;
}

/* SIGINT/SIGTERM stop the copy at the next window, so that the partial DST is removed. */
static void catch_signals(struct sigaction old[2])
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old[0]);
	sigaction(SIGTERM, &sa, &old[1]);
}

static void restore_signals(const struct sigaction old[2])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
}

/* ---------------------------------------------------------------- options */

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && !strcasecmp(s + n - m, suf);
}

/* The output format DST's name implies: .vhdx/.avhdx, .vhd, else raw. */
static enum convert_fmt fmt_from_name(const char *dst)
{
	if (has_suffix(dst, ".vhdx") || has_suffix(dst, ".avhdx"))
		return CONVERT_VHDX;
	if (has_suffix(dst, ".vhd"))
		return CONVERT_VHD;
	return CONVERT_RAW;
}

static int parse_sector(const char *opt, const char *arg, uint32_t *out)
{
	uint64_t v;

	if (tool_parse_size(arg, &v) < 0 || (v != 512 && v != 4096)) {
		tool_error("convert", "%s takes 512 or 4096, got '%s'", opt, arg);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* The output format: -O FMT, else from DST's name.  0, or -1 after the message. */
static int out_format(const char *ofmt, const char *dst, struct convert_out_params *op)
{
	if (!ofmt) {
		op->fmt = !strcmp(dst, "-") ? CONVERT_RAW : fmt_from_name(dst);
	} else if (!strcmp(ofmt, "raw")) {
		op->fmt = CONVERT_RAW;
		op->replace_raw = true;
	} else if (!strcmp(ofmt, "vhdx")) {
		op->fmt = CONVERT_VHDX;
	} else if (!strcmp(ofmt, "vhd")) {
		op->fmt = CONVERT_VHD;
	} else {
		tool_error("convert", "unknown output format '%s' (use -O raw, vhdx or vhd)", ofmt);
		return -1;
	}
	return 0;
}

/* The bytes of SRC to copy: --partition N's, or --offset/--length checked against the disk.  EXIT_*. */
static int disk_range(struct convert_src *src, unsigned partition, uint64_t *start, uint64_t *length)
{
	if (partition) {
		struct vhdx_partition p;
		int ret = tool_partition_find(src->img, "convert", partition, &p);

		if (ret)
			return ret;
		*start = p.offset;
		*length = p.size;
	}
	if (*start > src->size || (*length != UINT64_MAX && *length > src->size - *start)) {
		tool_error("convert", "the range %" PRIu64 "+%" PRIu64 " is past the end of the disk (%" PRIu64 " bytes)",
			   *start, *length, src->size);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* A VHDX or VHD output's type, block and sector sizes (--type, --block-size, else from SRC).  0, or -1 after the message. */
static int image_params(struct convert_out_params *op, const struct convert_src *src, const char *type, uint64_t block)
{
	uint32_t lss;

	/* Convert-VHD keeps a fixed disk fixed; dynamic, differencing and raw become dynamic */
	op->type = type ? (!strcmp(type, "fixed") ? VHDX_TYPE_FIXED : VHDX_TYPE_DYNAMIC)
		       : src->type == VHDX_TYPE_FIXED ? VHDX_TYPE_FIXED : VHDX_TYPE_DYNAMIC;
	op->block_size = (uint32_t)block;
	/* a VHDX keeps SRC's sector sizes; a VHD has 512-byte sectors whatever SRC had */
	if (op->fmt == CONVERT_VHDX && !op->logical_sector_size)
		op->logical_sector_size = src->logical_sector_size;
	if (op->fmt == CONVERT_VHDX && !op->physical_sector_size)
		op->physical_sector_size = src->physical_sector_size;
	lss = op->logical_sector_size ? op->logical_sector_size : 512;
	if (op->size % lss) {
		tool_error("convert",
			   "%s: the disk size %" PRIu64 " is not a multiple of the logical sector size (%u); "
			   "pad the file or convert to raw",
			   src->path, op->size, lss);
		return -1;
	}
	return 0;
}

/* Copies [START, END) of SRC into OUT and finishes it (removed when the copy fails or is interrupted).  EXIT_*. */
static int copy_out(struct convert_src *src, struct convert_out *out, uint64_t start, uint64_t end, int progress)
{
	struct tool_progress prog;
	struct sigaction old_sig[2];
	int ret;

	if (progress < 0)
		progress = isatty(STDERR_FILENO) && out->fd != STDOUT_FILENO;
	tool_progress_start(&prog, "convert", progress, end - start);
	convert_interrupted = 0;
	catch_signals(old_sig);
	if (convert_copy(src, out, start, end, &prog) < 0) {
		convert_out_abort(out);
		ret = EXIT_ERR;
	} else {
		ret = convert_out_finish(out);
	}
	restore_signals(old_sig);
	if (ret == EXIT_OK)
		tool_progress_show(&prog, end - start, true);
	else if (prog.on)
		fputc('\n', stderr);
	return ret;
}

int cmd_convert(int argc, char **argv)
{
	enum {
		OPT_OFFSET = OPT__NEXT, OPT_LENGTH, OPT_TYPE, OPT_BLOCK, OPT_LSS, OPT_PSS, OPT_FORCE,
		OPT_PARTITION,
	};
	static const struct option longopts[] = {
		{ "output-format", required_argument, NULL, 'O' },
		{ "input-format", required_argument, NULL, 'f' },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "block-size", required_argument, NULL, OPT_BLOCK },
		{ "logical-sector-size", required_argument, NULL, OPT_LSS },
		{ "physical-sector-size", required_argument, NULL, OPT_PSS },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "partition", required_argument, NULL, OPT_PARTITION },
		TOOL_READ_LONGOPTS_END,
	};
	struct convert_out_params op = { 0 };
	struct tool_open to;
	struct convert_src src;
	struct convert_out out;
	const char *ofmt = NULL, *ifmt = NULL, *type = NULL, *dst;
	int progress = -1, c, ret, r;
	bool image_opts = false, range = false;
	uint64_t start = 0, length = UINT64_MAX, end, block = 0;
	unsigned partition = 0;
	struct tool_cmd tc = { .name = "convert", .help = help, .shortopts = "O:f:phU", .longopts = longopts,
			       .open = &to, .progress = &progress };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case 'O': ofmt = optarg; break;
		case 'f': ifmt = optarg; break;
		case OPT_TYPE: type = optarg; image_opts = true; break;
		case OPT_BLOCK:
			if (tool_size_option("convert", "--block-size", optarg, true, &block) < 0)
				return EXIT_USAGE;
			if (block > UINT32_MAX) {
				tool_error("convert", "bad --block-size '%s'", optarg);
				return EXIT_USAGE;
			}
			image_opts = true;
			break;
		case OPT_LSS:
			if (parse_sector("--logical-sector-size", optarg, &op.logical_sector_size) < 0)
				return EXIT_USAGE;
			image_opts = true;
			break;
		case OPT_PSS:
			if (parse_sector("--physical-sector-size", optarg, &op.physical_sector_size) < 0)
				return EXIT_USAGE;
			image_opts = true;
			break;
		case OPT_FORCE: op.force = true; break;
		case OPT_OFFSET:
			if (tool_size_option("convert", "--offset", optarg, false, &start) < 0)
				return EXIT_USAGE;
			range = true;
			break;
		case OPT_LENGTH:
			if (tool_size_option("convert", "--length", optarg, true, &length) < 0)
				return EXIT_USAGE;
			range = true;
			break;
		case OPT_PARTITION:
			if (tool_partition_option("convert", optarg, &partition) < 0)
				return EXIT_USAGE;
			break;
		}
	}
	if (tool_operands(&tc, argc, 2, "SRC and DST"))
		return tc.rc;
	dst = argv[optind + 1];
	if (out_format(ofmt, dst, &op) < 0)
		return EXIT_USAGE;
	if (ifmt && strcmp(ifmt, "raw") && strcmp(ifmt, "auto")) {
		tool_error("convert", "unknown input format '%s' (use -f raw or auto)", ifmt);
		return EXIT_USAGE;
	}
	if (type && tool_choice_option("convert", "--type", type, "fixed", "dynamic") < 0)
		return EXIT_USAGE;
	if (op.fmt == CONVERT_RAW && image_opts) {
		tool_error("convert", "--type, --block-size and the sector sizes are for a VHDX or VHD output, not raw");
		return EXIT_USAGE;
	}
	if (partition && (range || (ifmt && !strcmp(ifmt, "raw")))) {
		tool_error("convert", "--partition cannot be combined with --offset, --length or -f raw");
		return EXIT_USAGE;
	}
	if (op.fmt != CONVERT_RAW && range) {
		tool_error("convert", "--offset and --length need a raw output (-O raw)");
		return EXIT_USAGE;
	}

	ret = convert_src_open(&src, argv[optind], ifmt && !strcmp(ifmt, "raw"), &to);
	if (ret)
		return ret;
	ret = disk_range(&src, partition, &start, &length);
	if (ret) {
		convert_src_close(&src);
		return ret;
	}
	end = length == UINT64_MAX ? src.size : start + length;
	op.size = end - start;
	if (op.fmt != CONVERT_RAW && image_params(&op, &src, type, block) < 0) {
		convert_src_close(&src);
		return EXIT_ERR;
	}

	ret = convert_out_open(&out, dst, &op, &src);
	if (ret) {
		convert_src_close(&src);
		return ret;
	}
	ret = copy_out(&src, &out, start, end, progress);
	r = convert_src_close(&src);
	if (r < 0 && ret == EXIT_OK)
		ret = tool_lib_error("convert", r);
	return ret;
}
