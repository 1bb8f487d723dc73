/*
 * util.c - helpers shared by the subcommands: errors, sizes, the chain
 * options (the text/JSON report writer is common/report.c).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

const char *tool_prog = "vhdx";

void tool_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	char msg[2048];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s%s%s: %s\n", tool_prog, cmd ? " " : "", cmd ? cmd : "", msg);
	tool_json_note_error(msg); /* with --json, also the "error" object on stdout (json_error.c) */
}

int tool_lib_error(const char *cmd, int ret)
{
	const char *m = vhdx_errmsg();

	tool_json_set_errno(ret < 0 ? -ret : ret);
	tool_error(cmd, "%s", m && *m ? m : strerror(-ret));
	tool_json_set_errno(0);
	return EXIT_ERR;
}

int tool_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double frac = 0;
	uint64_t v, mul = 1;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == '.') {
		char *fend;
		frac = strtod(end, &fend);
		end = fend;
	}
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	case 'P': mul = 1ull << 50; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	if (frac && mul == 1)
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul + (uint64_t)(frac * (double)mul);
	return 0;
}

int tool_size_option(const char *cmd, const char *opt, const char *arg, bool nonzero, uint64_t *out)
{
	if (tool_parse_size(arg, out) < 0 || (nonzero && *out == 0)) {
		tool_error(cmd, "bad %s '%s' (a size in bytes; K, M, G, T suffixes)", opt, arg);
		return -1;
	}
	return 0;
}

int tool_uint_option(const char *cmd, const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || *arg == '-' || *out < min || *out > max) {
		tool_error(cmd, "%s takes a number from %" PRIu64 " to %" PRIu64 ", got '%s'", opt, min, max, arg);
		return -1;
	}
	return 0;
}

int tool_choice_option(const char *cmd, const char *opt, const char *arg, const char *first, const char *second)
{
	if (!strcmp(arg, first))
		return 0;
	if (!strcmp(arg, second))
		return 1;
	tool_error(cmd, "%s takes %s or %s, got '%s'", opt, first, second, arg);
	return -1;
}

int tool_not_built(const char *cmd, int argc, char **argv, const char *help_note, const char *why)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: vhdx %s ...\n\n%s\n", cmd, help_note);
		return EXIT_OK;
	}
	tool_error(cmd, "%s", why);
	return EXIT_ERR;
}

int tool_list_option(const char *cmd, const char *opt, const char **list, unsigned *n, const char *arg)
{
	if (*n >= TOOL_LIST_MAX) {
		tool_error(cmd, "too many %s options (%d at most)", opt, TOOL_LIST_MAX);
		return -1;
	}
	list[(*n)++] = arg;
	return 0;
}

double tool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tool_open_init(struct tool_open *o)
{
	memset(o, 0, sizeof *o);
	vhdx_open_options_init(&o->opts);
	o->opts.parent_dirs = o->parent_dirs;
	o->opts.path_maps = o->path_maps;
	o->opts.faults = tool_faults; /* vhdx --faults RULES (faults_opt.c) */
}

/* The chain options without a value: each sets one open flag. */
static const struct {
	int code;
	unsigned flag;
} flag_options[] = {
	{ OPT_IGNORE_ID, VHDX_OPEN_IGNORE_ID_MISMATCH },
	{ OPT_NO_PARENT, VHDX_OPEN_NO_PARENT },
	{ OPT_SALVAGE, VHDX_OPEN_SALVAGE },
	{ OPT_NO_REPLAY, VHDX_OPEN_NO_REPLAY },
	{ 'U', VHDX_OPEN_FORCE_SHARE },
	{ OPT_FORCE_SHARE, VHDX_OPEN_FORCE_SHARE },
};

int tool_open_option(struct tool_open *o, int code, const char *arg, const char *cmd)
{
	uint64_t n;

	switch (code) {
	case OPT_PARENT:
		o->opts.parent = arg;
		return 1;
	case OPT_PARENT_DIR:
		return tool_list_option(cmd, "--parent-dir", o->parent_dirs, &o->n_parent_dirs, arg) < 0 ? -1 : 1;
	case OPT_PATH_MAP:
		if (!strchr(arg, '=')) {
			tool_error(cmd, "--path-map takes 'WINDOWS_PREFIX=FOLDER', got '%s'", arg);
			return -1;
		}
		return tool_list_option(cmd, "--path-map", o->path_maps, &o->n_path_maps, arg) < 0 ? -1 : 1;
	case OPT_MAX_DEPTH:
		if (tool_parse_size(arg, &n) < 0 || n == 0 || n > 4096) {
			tool_error(cmd, "--max-depth takes a number from 1 to 4096, got '%s'", arg);
			return -1;
		}
		o->opts.max_depth = (unsigned)n;
		return 1;
	default:
		for (size_t i = 0; i < sizeof flag_options / sizeof flag_options[0]; i++)
			if (code == flag_options[i].code) {
				o->opts.flags |= flag_options[i].flag;
				return 1;
			}
		return 0;
	}
}

void tool_report_image(struct report *r, bool json, const char *image)
{
	report_init(r, stdout, json);
	report_begin(r, NULL);
	report_str(r, "image", image);
}

int tool_open_flags(const char *path, unsigned flags, struct vhdx_faults *faults, struct vhdx_image **img)
{
	struct vhdx_open_options oo;

	vhdx_open_options_init(&oo);
	oo.flags = flags;
	oo.faults = faults;
	return vhdx_open(path, &oo, img);
}

int tool_open_image(struct tool_open *o, const char *path, const char *cmd, struct vhdx_image **img)
{
	int ret = vhdx_open(path, &o->opts, img);

	if (ret < 0)
		return tool_lib_error(cmd, ret);
	tool_share_warn(cmd, *img, o->opts.flags);
	return EXIT_OK;
}

int tool_close_image(const char *cmd, struct vhdx_image *img)
{
	int ret = vhdx_close(img);

	return ret < 0 ? tool_lib_error(cmd, ret) : EXIT_OK;
}

const char *tool_in_use(struct vhdx_image *img, unsigned layer)
{
	int use = vhdx_layer_in_use(img, layer);

	return use == VHDX_IN_USE_WRITE ? "write" : use == VHDX_IN_USE_READ ? "read" : NULL;
}

void tool_share_warn(const char *cmd, struct vhdx_image *img, unsigned flags)
{
	struct vhdx_info info = { .struct_size = sizeof info };

	if (!(flags & VHDX_OPEN_FORCE_SHARE) || vhdx_get_info(img, &info) < 0)
		return;
	for (unsigned i = 0; i < info.layers; i++) {
		int use = vhdx_layer_in_use(img, i);
		if (use == VHDX_IN_USE_WRITE || use < 0) {
			tool_error(cmd, "warning: %s is %s; what is read may be inconsistent", vhdx_layer_path(img, i),
				   use < 0 ? "perhaps in use for writing (the system cannot tell)"
					   : "in use for writing by another process");
			return;
		}
	}
}

#ifndef _WIN32
ssize_t tool_self_exe(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	char *slash;

	if (n <= 0)
		return n;
	out[n] = '\0';
	/*
	 * Uninstalled, vhdx (linked to the shared library) is libtool's
	 * DIR/.libs/vhdx or DIR/.libs/lt-vhdx, run by the wrapper script
	 * DIR/vhdx: answer the wrapper, which finds the library when run again
	 * and beside which the build tree's other programs lie.
	 */
	slash = strrchr(out, '/');
	if (slash && slash - out >= 6 && !strncmp(slash - 6, "/.libs", 6)) {
		const char *name = slash + 1;

		if (!strncmp(name, "lt-", 3))
			name += 3;
		memmove(slash - 5, name, strlen(name) + 1);
		n = (ssize_t)strlen(out);
	}
	return n;
}
#endif
