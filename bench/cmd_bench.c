/*
 * cmd_bench.c - `vhdx bench`: the speed figures of issue #8, each the
 * median of --runs runs with its baseline measured alongside in the same
 * run, printed as a table (or JSON) with the ratio and whether the target
 * is met.  The figures live in bench_lib.c, bench_cmds.c, bench_fuse.c and
 * bench_scale.c (see bench.h); this file parses the options, makes and removes the
 * temporary folder, runs the chosen figures and prints the results.
 * A benchmark, never a test: it exits 0 whether targets are met or not.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: vhdx bench [--size N] [--runs N] [--json] [--figures 1,2,...] [--dir DIR]\n\n"
		   "Measure the speed figures of libvhdx, vhdx and vhdxfs against their baselines\n"
		   "(the raw file, qemu-img, qemu-io, vhdimount, xxhsum), each the median of several\n"
		   "runs measured alongside its baseline; print figure, ours, baseline, ratio, target\n"
		   "and whether it is met.  The test images are made in a temporary folder, removed\n"
		   "at the end; a baseline whose tool is missing is skipped with the reason.\n\n"
		   "Figures:\n"
		   "  1  library sequential read vs pread of the raw file\n"
		   "  2  library random 4 KiB reads (dynamic VHDX, depth-4 chain) vs the raw file\n"
		   "  3  vhdx convert -O raw vs qemu-img convert -O raw, and vs writing the same\n"
		   "     bytes from memory into a new file (the limit every tool shares)\n"
		   "  4  vhdxfs sequential and random reads vs vhdimount and the raw file (root):\n"
		   "     default mount, -o direct_io, re-reads, and vs vhdxfs reading zeros\n"
		   "  5  sequential and random allocating writes (library, vhdxfs) vs raw and qemu-io\n"
		   "  6  opening a 64 TiB dynamic VHDX with a full BAT: time and peak memory\n"
		   "  7  vhdx hash vs xxhsum of the raw file\n"
		   "  8  scaling: CPU cost per read at chain depth 4, 16, 64 vs depth 1 (data in the\n"
		   "     leaf, data in the base), reads and open of a 64 TiB vs a 1 GiB disk with\n"
		   "     the same data (open per BAT MiB), vhdx hash per GiB of --size vs a quarter\n"
		   "  9  serving over NBD: nbdkit with the vhdx plugin vs qemu-nbd -f vhdx and vs\n"
		   "     nbdkit file of the raw twin (nbdcopy to null:, fio nbd 4 KiB reads at\n"
		   "     queue depth 16), and a differencing chain (qemu-nbd refuses it)\n\n"
		   "Options:\n"
		   "      --size N       size of the test disks (default 1G, at least 16M)\n"
		   "      --runs N       runs per figure, the median is shown (default 3, 1..15)\n"
		   "      --figures LIST only these figures, e.g. 1,2,6 (default all)\n"
		   "      --dir DIR      make the temporary folder in DIR (default $TMPDIR or /tmp)\n"
		   "      --json         print the results as JSON\n"
		   "  -q, --quiet        no progress messages on standard error\n"
		   "  -h, --help         this text\n");
}

/* Finds vhdxfs beside this program (build tree: ../fuse/vhdxfs; installed: same folder) or on PATH. */
static void find_vhdxfs(struct bench *b)
{
	char dir[900];
	char *slash;

	snprintf(dir, sizeof dir, "%.890s", b->vhdx_exe);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		snprintf(b->vhdxfs_exe, sizeof b->vhdxfs_exe, "%s/../fuse/vhdxfs", dir);
		if (access(b->vhdxfs_exe, X_OK) == 0)
			return;
		snprintf(b->vhdxfs_exe, sizeof b->vhdxfs_exe, "%s/vhdxfs", dir);
		if (access(b->vhdxfs_exe, X_OK) == 0)
			return;
	}
	if (bench_have("vhdxfs"))
		snprintf(b->vhdxfs_exe, sizeof b->vhdxfs_exe, "vhdxfs");
	else
		b->vhdxfs_exe[0] = 0;
}

/* Parses "1,2,6" into a bit mask of figures 1..9; 0 on error. */
static unsigned parse_figures(const char *s)
{
	unsigned mask = 0;

	while (*s) {
		char *end;
		long n = strtol(s, &end, 10);
		if (end == s || n < 1 || n > 9 || (*end && *end != ','))
			return 0;
		mask |= 1u << n;
		s = *end ? end + 1 : end;
	}
	return mask;
}

static double ratio_of(const struct bench_fig *f)
{
	return f->ours > 0 && f->base > 0 ? f->ours / f->base : -1;
}

/* 1 met, 0 missed, -1 unknown (skipped) */
static int met_of(const struct bench_fig *f)
{
	double r = ratio_of(f);

	if (r < 0)
		return -1;
	return f->goal == BENCH_RATIO_AT_LEAST ? r >= f->target : r <= f->target;
}

static void json_num(FILE *o, const char *key, double v, int prec)
{
	if (v < 0)
		fprintf(o, ",\"%s\":null", key);
	else
		fprintf(o, ",\"%s\":%.*f", key, prec, v);
}

static void print_json(const struct bench *b, const char *load)
{
	double l1 = 0, l5 = 0, l15 = 0;

	/* /proc/loadavg "0.52 0.58 0.59 1/467 12345": the three averages, as numbers */
	if (sscanf(load, "%lf %lf %lf", &l1, &l5, &l15) != 3)
		l1 = l5 = l15 = 0;
	printf("{\"size\":%llu,\"runs\":%d,\"load_average\":[%.2f,%.2f,%.2f]", (unsigned long long)b->size, b->runs,
	       l1, l5, l15);
	printf(",\"figures\":[");
	for (unsigned i = 0; i < bench_nfigs; i++) {
		const struct bench_fig *f = &bench_figs[i];
		int met = met_of(f);
		printf("%s{\"figure\":%u,\"name\":", i ? "," : "", f->figure);
		json_write_string(stdout, f->name);
		printf(",\"unit\":");
		json_write_string(stdout, f->unit);
		json_num(stdout, "ours", f->ours, 3);
		json_num(stdout, "baseline", f->base, 3);
		printf(",\"baseline_is\":");
		json_write_string(stdout, f->baseline_is);
		json_num(stdout, "ratio", ratio_of(f), 4);
		printf(",\"goal\":\"%s\",\"target\":%.2f,\"met\":%s", f->goal == BENCH_RATIO_AT_LEAST ? "ratio>=" : "ratio<=",
		       f->target, met < 0 ? "null" : met ? "true" : "false");
		if (f->skip[0]) {
			printf(",\"skipped\":");
			json_write_string(stdout, f->skip);
		}
		printf("}");
	}
	printf("]}\n");
	tool_json_printed();
}

static void print_table(const struct bench *b, const char *load)
{
	printf("vhdx bench --size %lluM --runs %d; load average before: %s\n", (unsigned long long)(b->size >> 20),
	       b->runs, load);
	printf("%-26s %11s %11s %8s %8s %-4s %s\n", "figure", "ours", "baseline", "ratio", "target", "met",
	       "unit, baseline");
	for (unsigned i = 0; i < bench_nfigs; i++) {
		const struct bench_fig *f = &bench_figs[i];
		char name[64], ours[32] = "-", base[32] = "-", ratio[32] = "-", target[32];
		int met = met_of(f);

		snprintf(name, sizeof name, "%u %s", f->figure, f->name);
		if (f->ours >= 0)
			snprintf(ours, sizeof ours, "%.1f", f->ours);
		if (f->base >= 0)
			snprintf(base, sizeof base, "%.1f", f->base);
		if (ratio_of(f) >= 0)
			snprintf(ratio, sizeof ratio, "%.3f", ratio_of(f));
		snprintf(target, sizeof target, "%s%.2f", f->goal == BENCH_RATIO_AT_LEAST ? ">=" : "<=", f->target);
		printf("%-26s %11s %11s %8s %8s %-4s %s, %s%s%s\n", name, ours, base, ratio, target,
		       met < 0 ? "-" : met ? "yes" : "NO", f->unit, f->baseline_is, f->skip[0] ? "; skipped: " : "",
		       f->skip);
	}
}

static void remove_dir(const char *dir)
{
	char *argv[] = { (char *)"rm", (char *)"-rf", (char *)dir, NULL };

	if (bench_run(argv, NULL, NULL) < 0)
		fprintf(stderr, "vhdx bench: could not remove %s\n", dir);
}

int cmd_bench(int argc, char **argv)
{
	enum { OPT_SIZE = OPT__NEXT, OPT_RUNS, OPT_FIGURES, OPT_DIR, OPT_PROBE_OPEN };
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "runs", required_argument, NULL, OPT_RUNS },
		{ "figures", required_argument, NULL, OPT_FIGURES },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "probe-open", required_argument, NULL, OPT_PROBE_OPEN }, /* internal: figure 6's child */
		TOOL_JSON_LONGOPT,
		{ "quiet", no_argument, NULL, 'q' },
		TOOL_LONGOPTS_END,
	};
	static struct bench b;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	unsigned figures = 0x3fe;
	bool json = false;
	char load[128] = "?";
	FILE *lf;
	ssize_t n;
	int c;
	struct tool_cmd tc = { .name = "bench", .help = usage, .shortopts = "qh", .longopts = longopts, .json = &json };

	b.size = 1ull << 30;
	b.runs = 3;
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_SIZE:
			if (tool_size_option("bench", "--size", optarg, true, &b.size) < 0)
				return EXIT_USAGE;
			break;
		case OPT_RUNS:
			b.runs = atoi(optarg);
			if (b.runs < 1 || b.runs > 15) {
				tool_error("bench", "bad --runs '%s' (1..15)", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_FIGURES:
			figures = parse_figures(optarg);
			if (!figures) {
				tool_error("bench", "bad --figures '%s' (numbers 1..9, comma-separated)", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_DIR:
			tmp = optarg;
			break;
		case OPT_PROBE_OPEN:
			return bench_probe_open(optarg);
		case 'q':
			b.quiet = true;
			break;
		}
	}
	if (tc.stopped)
		return tc.rc;
	if (optind != argc) {
		tool_error("bench", "unexpected argument '%s' (see 'vhdx bench --help')", argv[optind]);
		return EXIT_USAGE;
	}
	if (b.size < (16u << 20) || b.size % (1u << 20)) {
		tool_error("bench", "--size must be a whole number of MiB, at least 16M");
		return EXIT_USAGE;
	}
	n = tool_self_exe(b.vhdx_exe, sizeof b.vhdx_exe);
	if (n <= 0) {
		tool_error("bench", "cannot find this program (/proc/self/exe)");
		return EXIT_ERR;
	}
	b.vhdx_exe[n] = 0;
	find_vhdxfs(&b);
	lf = fopen("/proc/loadavg", "r");
	if (lf) {
		if (fgets(load, sizeof load, lf))
			load[strcspn(load, "\n")] = 0;
		fclose(lf);
	}
	snprintf(b.dir, sizeof b.dir, "%s/vhdx-bench.XXXXXX", tmp);
	if (!mkdtemp(b.dir)) {
		tool_error("bench", "cannot make a folder in %s: %m", tmp);
		return EXIT_ERR;
	}
	b.data_len = b.size < (64u << 20) ? (size_t)b.size : 64u << 20;
	b.data = malloc(b.data_len);
	if (!b.data) {
		remove_dir(b.dir);
		tool_error("bench", "out of memory");
		return EXIT_ERR;
	}
	bench_fill_random(b.data, b.data_len);

	/*
	 * The shared test images are made first (2 GiB of dirty pages at
	 * --size 1G) and everything is synced before each figure: otherwise
	 * the kernel writes them back in the middle of a later figure's runs
	 * (30 s after they were written), and whichever tool runs then pays.
	 */
	static const struct {
		unsigned figure;
		void (*run)(struct bench *b);
	} order[] = {
		{ 1, bench_fig_seq_read }, { 2, bench_fig_rand_read }, { 3, bench_fig_convert },
		{ 4, bench_fig_fuse_read }, { 5, bench_fig_writes }, { 5, bench_fig_fuse_writes },
		{ 6, bench_fig_open_64t }, { 7, bench_fig_hash }, { 8, bench_fig_scale }, { 9, bench_fig_nbd },
	};
	if (figures & (1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 7 | 1u << 9))
		bench_prepare_pair(&b);
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		if (figures & 1u << order[i].figure) {
			sync();
			order[i].run(&b);
		}

	remove_dir(b.dir);
	free(b.data);
	if (json)
		print_json(&b, load);
	else
		print_table(&b, load);
	return EXIT_OK;
}
