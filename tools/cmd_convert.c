/*
 * cmd_convert.c - `vhdx convert -O raw IMAGE OUT`: the whole virtual disk as
 * a raw file (sparse: zero extents and all-zero data become holes) or on
 * standard output.  The allocation map drives it, so a 127 GiB empty disk
 * converts in the time it takes to walk its BAT.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"
#include "internal.h"

#define CHUNK (4u << 20)
#define VHDX_TOOL_MIN(a, b) ((a) < (b) ? (a) : (b))

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx convert -O raw [--offset N] [--length N] [--progress] IMAGE OUT\n\n"
		   "Writes the whole virtual disk of IMAGE (through its parent chain) to OUT.\n"
		   "OUT '-' is standard output; a regular file OUT is written sparse (holes\n"
		   "where the disk reads as zeros) and truncated to the virtual size.\n\n"
		   "  -O, --output-format raw   the output format (raw)\n"
		   "      --offset N            start at byte N of the virtual disk (default 0)\n"
		   "      --length N            convert N bytes (default: to the end of the disk)\n"
		   "  -p, --progress            show progress on standard error (default on a terminal)\n"
		   "      --no-progress         never show progress\n"
		   "  -h, --help                this text\n\n" TOOL_OPEN_HELP);
}

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off, bool seekable)
{
	while (len) {
		ssize_t n = seekable ? pwrite(fd, p, len, (off_t)off) : write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Writes the non-zero 64 KiB pieces of BUF at OFF of a regular file and
 * leaves holes for the rest (the file is truncated to its size at the end).
 */
static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	const size_t piece = 64 * 1024;

	for (size_t at = 0; at < len;) {
		size_t run = 0;
		while (at < len && vhdx_buf_is_zero(buf + at, VHDX_TOOL_MIN(piece, len - at)))
			at += VHDX_TOOL_MIN(piece, len - at);
		/* a run of data pieces, written in one call */
		while (at + run < len && !vhdx_buf_is_zero(buf + at + run, VHDX_TOOL_MIN(piece, len - at - run)))
			run += VHDX_TOOL_MIN(piece, len - at - run);
		if (run) {
			int r = write_all(fd, buf + at, run, off + at, true);
			if (r < 0)
				return r;
			at += run;
		}
	}
	return 0;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int cmd_convert(int argc, char **argv)
{
	enum { OPT_NO_PROGRESS = OPT__NEXT, OPT_OFFSET, OPT_LENGTH };
	static const struct option longopts[] = {
		{ "output-format", required_argument, NULL, 'O' },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "help", no_argument, NULL, 'h' },
		TOOL_OPEN_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct tool_open to;
	struct vhdx_image *img;
	struct vhdx_info info = { .struct_size = sizeof info };
	const char *fmt = NULL, *out;
	int progress = -1, c, ret, fd, r = 0;
	bool seekable = false, to_stdout;
	uint8_t *buf, *zeros;
	double t0, last = 0;
	uint64_t start = 0, length = UINT64_MAX, end, total;

	tool_open_init(&to);
	optind = 1;
	while ((c = getopt_long(argc, argv, "O:ph", longopts, NULL)) != -1) {
		int h = tool_open_option(&to, c, optarg, "convert");
		if (h < 0)
			return EXIT_USAGE;
		if (h)
			continue;
		switch (c) {
		case 'O': fmt = optarg; break;
		case 'p': progress = 1; break;
		case OPT_NO_PROGRESS: progress = 0; break;
		case OPT_OFFSET:
			if (tool_size_option("convert", "--offset", optarg, false, &start) < 0)
				return EXIT_USAGE;
			break;
		case OPT_LENGTH:
			if (tool_size_option("convert", "--length", optarg, true, &length) < 0)
				return EXIT_USAGE;
			break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		tool_error("convert", "expected IMAGE and OUT (see 'vhdx convert --help')");
		return EXIT_USAGE;
	}
	if (!fmt || strcmp(fmt, "raw") != 0) {
		tool_error("convert", "output format '%s' is not supported (use -O raw)", fmt ? fmt : "(none)");
		return EXIT_USAGE;
	}
	out = argv[optind + 1];
	to_stdout = !strcmp(out, "-");
	ret = tool_open_image(&to, argv[optind], "convert", &img);
	if (ret)
		return ret;
	vhdx_get_info(img, &info);
	if (start > info.virtual_size || (length != UINT64_MAX && length > info.virtual_size - start)) {
		tool_error("convert", "the range %" PRIu64 "+%" PRIu64 " is past the end of the disk (%" PRIu64 " bytes)",
			   start, length, info.virtual_size);
		vhdx_close(img);
		return EXIT_ERR;
	}
	end = length == UINT64_MAX ? info.virtual_size : start + length;
	total = end - start;
	if (to_stdout) {
		fd = STDOUT_FILENO;
	} else {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			tool_error("convert", "%s: %s", out, strerror(errno));
			vhdx_close(img);
			return EXIT_ERR;
		}
	}
	{
		struct stat st;
		seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && !to_stdout;
	}
	if (progress < 0)
		progress = isatty(STDERR_FILENO) && !to_stdout;
	buf = malloc(CHUNK);
	zeros = calloc(1, CHUNK);
	if (!buf || !zeros) {
		tool_error("convert", "out of memory");
		ret = EXIT_ERR;
		goto done;
	}
	t0 = now_sec();
	ret = EXIT_OK;
	/* output byte = virtual byte - start */
	for (uint64_t at = start; at < end;) {
		struct vhdx_extent e;
		r = vhdx_map(img, at, end - at, &e);
		if (r < 0) {
			ret = tool_lib_error("convert", r);
			goto done;
		}
		for (uint64_t done_len = 0; done_len < e.len;) {
			size_t n = (size_t)VHDX_TOOL_MIN(e.len - done_len, CHUNK);
			uint64_t pos = at + done_len;
			if (e.kind == VHDX_EXTENT_ZERO) {
				if (!seekable && (r = write_all(fd, zeros, n, pos - start, false)) < 0)
					goto write_error;
			} else {
				ssize_t got = vhdx_pread(img, buf, n, pos);
				if (got < 0) {
					ret = tool_lib_error("convert", (int)got);
					goto done;
				}
				if (seekable)
					r = write_sparse(fd, buf, n, pos - start);
				else
					r = write_all(fd, buf, n, pos - start, false);
				if (r < 0)
					goto write_error;
			}
			done_len += n;
			if (progress) {
				double t = now_sec();
				if (t - last > 0.5) {
					uint64_t done_bytes = pos + n - start;
					fprintf(stderr, "\r%5.1f%%  %" PRIu64 " / %" PRIu64 " MiB  %.0f MiB/s",
						100.0 * (double)done_bytes / (double)total, done_bytes >> 20, total >> 20,
						(double)(done_bytes >> 20) / (t - t0 + 1e-9));
					last = t;
				}
			}
		}
		at += e.len;
	}
	if (seekable && ftruncate(fd, (off_t)total) < 0) {
		tool_error("convert", "%s: cannot set the size to %" PRIu64 ": %s", out, total, strerror(errno));
		ret = EXIT_ERR;
		goto done;
	}
	if (progress)
		fprintf(stderr, "\r100.0%%  %" PRIu64 " MiB in %.1f s%20s\n", total >> 20, now_sec() - t0, "");
	goto done;
write_error:
	tool_error("convert", "writing %s: %s", to_stdout ? "standard output" : out, strerror(-r));
	ret = EXIT_ERR;
done:
	free(buf);
	free(zeros);
	if (!to_stdout && close(fd) < 0 && ret == EXIT_OK) {
		tool_error("convert", "%s: %s", out, strerror(errno));
		ret = EXIT_ERR;
	}
	r = vhdx_close(img);
	if (r < 0 && ret == EXIT_OK)
		ret = tool_lib_error("convert", r);
	return ret;
}
