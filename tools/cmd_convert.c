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

#define CHUNK (4u << 20)
#define VHDX_TOOL_MIN(a, b) ((a) < (b) ? (a) : (b))

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx convert -O raw [--progress|--no-progress] IMAGE OUT\n\n"
		   "Writes the whole virtual disk of IMAGE (through its parent chain) to OUT.\n"
		   "OUT '-' is standard output; a regular file OUT is written sparse (holes\n"
		   "where the disk reads as zeros) and truncated to the virtual size.\n\n"
		   "  -O, --output-format raw   the output format (raw)\n"
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

static bool all_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];

	while (len >= sizeof zero) {
		if (memcmp(p, zero, sizeof zero))
			return false;
		p += sizeof zero;
		len -= sizeof zero;
	}
	return memcmp(p, zero, len) == 0;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int cmd_convert(int argc, char **argv)
{
	enum { OPT_NO_PROGRESS = OPT__NEXT };
	static const struct option longopts[] = {
		{ "output-format", required_argument, NULL, 'O' },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
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
	for (uint64_t at = 0; at < info.virtual_size;) {
		struct vhdx_extent e;
		r = vhdx_map(img, at, info.virtual_size - at, &e);
		if (r < 0) {
			ret = tool_lib_error("convert", r);
			goto done;
		}
		for (uint64_t done_len = 0; done_len < e.len;) {
			size_t n = (size_t)VHDX_TOOL_MIN(e.len - done_len, CHUNK);
			uint64_t pos = at + done_len;
			if (e.kind == VHDX_EXTENT_ZERO) {
				if (!seekable && (r = write_all(fd, zeros, n, pos, false)) < 0)
					goto write_error;
			} else {
				ssize_t got = vhdx_pread(img, buf, n, pos);
				if (got < 0) {
					ret = tool_lib_error("convert", (int)got);
					goto done;
				}
				if (!(seekable && all_zero(buf, n)) && (r = write_all(fd, buf, n, pos, seekable)) < 0)
					goto write_error;
			}
			done_len += n;
			if (progress) {
				double t = now_sec();
				if (t - last > 0.5) {
					fprintf(stderr, "\r%5.1f%%  %" PRIu64 " / %" PRIu64 " MiB  %.0f MiB/s",
						100.0 * (double)(pos + n) / (double)info.virtual_size, (pos + n) >> 20,
						info.virtual_size >> 20, (double)((pos + n) >> 20) / (t - t0 + 1e-9));
					last = t;
				}
			}
		}
		at += e.len;
	}
	if (seekable && ftruncate(fd, (off_t)info.virtual_size) < 0) {
		tool_error("convert", "%s: cannot set the size to %" PRIu64 ": %s", out, info.virtual_size,
			   strerror(errno));
		ret = EXIT_ERR;
		goto done;
	}
	if (progress)
		fprintf(stderr, "\r100.0%%  %" PRIu64 " MiB in %.1f s%20s\n", info.virtual_size >> 20, now_sec() - t0, "");
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
