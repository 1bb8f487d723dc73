/*
 * bench_read.c - speed figures of the library against baselines measured in
 * the same run (a benchmark, never a pass/fail test):
 *
 *   seq-read     sequential 1 MiB reads of a fully allocated dynamic VHDX
 *                vs pread() of a raw file holding the same bytes   (target >= 0.9)
 *   rand-read    random 4 KiB reads, dynamic VHDX vs raw           (target >= 0.7)
 *   chain-read   random 4 KiB reads of a depth-4 chain full of partially
 *                present blocks vs raw                             (target >= 0.5)
 *   seq-write    sequential 1 MiB writes into a new dynamic VHDX + flush
 *                vs write() of a raw file + fdatasync               (target >= 0.8)
 *   rand-alloc   random 4 KiB writes that allocate blocks, a flush every 64,
 *                vs qemu-io doing the same                          (target >= 3)
 *
 * Each figure is the median of --runs runs; files live in a temporary
 * folder (--dir, default /tmp) and are removed at the end.  Caches are warm
 * for both sides of every read comparison.
 *
 *   bench_read [--size N(MiB)] [--runs N] [--dir DIR] [--json]
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhdx.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, vhdx_errmsg());
	exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = next_rand();
		memcpy(p + i, &v, 8);
	}
}

struct fig {
	const char *name, *unit;
	double ours, base, target;
	const char *baseline;
	int skipped;
};

static struct fig figs[8];
static int nfigs;

static void add_fig(const char *name, const char *unit, double ours, double base, double target, const char *baseline)
{
	struct fig *f = &figs[nfigs++];
	f->name = name;
	f->unit = unit;
	f->ours = ours;
	f->base = base;
	f->target = target;
	f->baseline = baseline;
	f->skipped = base <= 0;
}

/* Creates a dynamic VHDX of SIZE bytes with BS blocks filled with DATA (or sparse), and the raw twin. */
static void make_pair(const char *vhdx, const char *raw, uint64_t size, uint32_t bs, const uint8_t *data)
{
	struct vhdx_create_options co;
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	int fd;

	vhdx_create_options_init(&co);
	co.virtual_size = size;
	co.block_size = bs;
	co.flags = VHDX_CREATE_OVERWRITE;
	if (vhdx_create(vhdx, &co) < 0)
		die("create");
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	if (vhdx_open(vhdx, &oo, &img) < 0)
		die("open");
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		const uint8_t *p = data + (off % (64u << 20));
		if (vhdx_pwrite(img, p, 1u << 20, off) < 0)
			die("pwrite");
		if (pwrite(fd, p, 1u << 20, (off_t)off) < 0)
			exit(1);
	}
	if (vhdx_close(img) < 0)
		die("close");
	close(fd);
}

static double seq_read_vhdx(const char *path, uint64_t size, uint8_t *buf)
{
	struct vhdx_image *img;
	double t;

	if (vhdx_open(path, NULL, &img) < 0)
		die("open");
	t = now();
	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (vhdx_pread(img, buf, 1u << 20, off) < 0)
			die("pread");
	t = now() - t;
	vhdx_close(img);
	return (double)size / t / 1048576.0;
}

static double seq_read_raw(const char *path, uint64_t size, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	double t = now();

	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (pread(fd, buf, 1u << 20, (off_t)off) < 0)
			exit(1);
	t = now() - t;
	close(fd);
	return (double)size / t / 1048576.0;
}

#define NRAND 200000

static double rand_read_vhdx(const char *path, const uint64_t *offs, uint8_t *buf)
{
	struct vhdx_image *img;
	double t;

	if (vhdx_open(path, NULL, &img) < 0)
		die("open chain");
	t = now();
	for (int i = 0; i < NRAND; i++)
		if (vhdx_pread(img, buf, 4096, offs[i]) < 0)
			die("pread");
	t = now() - t;
	vhdx_close(img);
	return NRAND / t;
}

static double rand_read_raw(const char *path, const uint64_t *offs, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	double t = now();

	for (int i = 0; i < NRAND; i++)
		if (pread(fd, buf, 4096, (off_t)offs[i]) < 0)
			exit(1);
	t = now() - t;
	close(fd);
	return NRAND / t;
}

/* Depth-4 chain: a full base and three children each holding scattered 4 KiB runs (partial blocks). */
static void make_chain(const char *dir, uint64_t size, const uint8_t *data, char *leaf, size_t leaflen, const char *raw)
{
	char base[1024], child[1024], parent[1024];
	struct vhdx_create_options co;
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	uint8_t *buf = malloc(1u << 20);
	int fd;

	snprintf(base, sizeof base, "%s/chain0.vhdx", dir);
	snprintf(parent, sizeof parent, "%s", base);
	{
		char rawtmp[1024];
		snprintf(rawtmp, sizeof rawtmp, "%s/chain0.raw", dir);
		make_pair(base, rawtmp, size, 32u << 20, data);
		unlink(rawtmp);
	}
	for (int d = 1; d <= 3; d++) {
		snprintf(child, sizeof child, "%s/chain%d.avhdx", dir, d);
		vhdx_create_options_init(&co);
		co.parent = parent;
		co.flags = VHDX_CREATE_OVERWRITE;
		if (vhdx_create(child, &co) < 0)
			die("create child");
		vhdx_open_options_init(&oo);
		oo.flags = VHDX_OPEN_RDWR;
		if (vhdx_open(child, &oo, &img) < 0)
			die("open child");
		/* 1/4 of every block gets 4 KiB runs, so nearly every block is partial */
		for (uint64_t i = 0; i < size / 16384; i++) {
			uint64_t off = (next_rand() % (size / 4096)) * 4096;
			fill_random(buf, 4096);
			if (vhdx_pwrite(img, buf, 4096, off) < 0)
				die("child write");
		}
		if (vhdx_close(img) < 0)
			die("close child");
		snprintf(parent, sizeof parent, "%s", child);
	}
	snprintf(leaf, leaflen, "%s", child);
	/* the raw twin is what the chain reads */
	if (vhdx_open(leaf, NULL, &img) < 0)
		die("open leaf");
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		if (vhdx_pread(img, buf, 1u << 20, off) < 0)
			die("read leaf");
		if (pwrite(fd, buf, 1u << 20, (off_t)off) < 0)
			exit(1);
	}
	close(fd);
	vhdx_close(img);
	free(buf);
}

static double seq_write_vhdx(const char *path, uint64_t size, const uint8_t *data)
{
	struct vhdx_create_options co;
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	double t;

	vhdx_create_options_init(&co);
	co.virtual_size = size;
	co.flags = VHDX_CREATE_OVERWRITE;
	if (vhdx_create(path, &co) < 0)
		die("create");
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	t = now();
	if (vhdx_open(path, &oo, &img) < 0)
		die("open");
	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (vhdx_pwrite(img, data + off % (64u << 20), 1u << 20, off) < 0)
			die("pwrite");
	if (vhdx_flush(img) < 0 || vhdx_close(img) < 0)
		die("flush");
	t = now() - t;
	return (double)size / t / 1048576.0;
}

static double seq_write_raw(const char *path, uint64_t size, const uint8_t *data)
{
	double t = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (pwrite(fd, data + off % (64u << 20), 1u << 20, (off_t)off) < 0)
			exit(1);
	fdatasync(fd);
	close(fd);
	t = now() - t;
	return (double)size / t / 1048576.0;
}

#define NALLOC 4096

static double alloc_write_vhdx(const char *path, const uint64_t *offs, const uint8_t *data)
{
	struct vhdx_create_options co;
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	double t;

	vhdx_create_options_init(&co);
	co.virtual_size = 8ull << 30;
	co.block_size = 1u << 20;
	co.flags = VHDX_CREATE_OVERWRITE;
	if (vhdx_create(path, &co) < 0)
		die("create");
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	t = now();
	if (vhdx_open(path, &oo, &img) < 0)
		die("open");
	for (int i = 0; i < NALLOC; i++) {
		if (vhdx_pwrite(img, data + (i % 1024) * 4096, 4096, offs[i]) < 0)
			die("pwrite");
		if (i % 64 == 63 && vhdx_flush(img) < 0)
			die("flush");
	}
	if (vhdx_close(img) < 0)
		die("close");
	return NALLOC / (now() - t);
}

/* qemu-io reads its commands from a script: the same writes and flushes. */
static double alloc_write_qemu(const char *dir, const uint64_t *offs)
{
	char img[1024], script[1024], cmd[4096];
	FILE *f;
	double t;
	int rc;

	if (system("command -v qemu-io >/dev/null 2>&1 && command -v qemu-img >/dev/null 2>&1") != 0)
		return -1;
	snprintf(img, sizeof img, "%s/qemu-alloc.vhdx", dir);
	snprintf(script, sizeof script, "%s/qemu-alloc.cmds", dir);
	snprintf(cmd, sizeof cmd, "qemu-img create -q -f vhdx -o block_size=1M,subformat=dynamic %s 8G", img);
	if (system(cmd) != 0)
		return -1;
	f = fopen(script, "w");
	for (int i = 0; i < NALLOC; i++) {
		fprintf(f, "write -P %d %" PRIu64 " 4k\n", i % 250 + 1, offs[i]);
		if (i % 64 == 63)
			fprintf(f, "flush\n");
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "qemu-io -f vhdx %s < %s > /dev/null", img, script);
	t = now();
	rc = system(cmd);
	t = now() - t;
	unlink(img);
	unlink(script);
	return rc == 0 ? NALLOC / t : -1;
}

int main(int argc, char **argv)
{
	uint64_t size = 1ull << 30;
	int runs = 3, json = 0;
	const char *tmp = "/tmp";
	char dir[512], vhdx[1024], raw[1024], leaf[1024], chainraw[1024];
	uint8_t *data, *buf;
	uint64_t *offs, *coffs, *aoffs;
	double a[16], b[16];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 10) << 20;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			tmp = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: bench_read [--size MiB] [--runs N] [--dir DIR] [--json]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 15 || size < (64u << 20)) {
		fprintf(stderr, "bench: --runs 1..15, --size >= 64\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/vhdx-bench.XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	data = malloc(64u << 20);
	buf = malloc(1u << 20);
	offs = malloc(NRAND * sizeof *offs);
	coffs = malloc(NRAND * sizeof *coffs);
	aoffs = malloc(NALLOC * sizeof *aoffs);
	fill_random(data, 64u << 20);
	for (int i = 0; i < NRAND; i++)
		offs[i] = (next_rand() % (size / 4096)) * 4096;
	for (int i = 0; i < NALLOC; i++)
		aoffs[i] = (next_rand() % (8192)) * (1u << 20) + (next_rand() % 256) * 4096;

	snprintf(vhdx, sizeof vhdx, "%s/seq.vhdx", dir);
	snprintf(raw, sizeof raw, "%s/seq.raw", dir);
	fprintf(stderr, "bench: building a %" PRIu64 " MiB fully allocated dynamic VHDX and its raw twin in %s\n",
		size >> 20, dir);
	make_pair(vhdx, raw, size, 32u << 20, data);
	seq_read_vhdx(vhdx, size, buf); /* warm the cache */
	seq_read_raw(raw, size, buf);
	for (int r = 0; r < runs; r++) {
		a[r] = seq_read_vhdx(vhdx, size, buf);
		b[r] = seq_read_raw(raw, size, buf);
	}
	add_fig("seq-read", "MiB/s", median(a, runs), median(b, runs), 0.9, "pread of the raw file");
	for (int r = 0; r < runs; r++) {
		a[r] = rand_read_vhdx(vhdx, offs, buf);
		b[r] = rand_read_raw(raw, offs, buf);
	}
	add_fig("rand-read", "IOPS", median(a, runs), median(b, runs), 0.7, "pread of the raw file");

	fprintf(stderr, "bench: building a depth-4 chain with partially present blocks\n");
	snprintf(chainraw, sizeof chainraw, "%s/chain.raw", dir);
	{
		uint64_t csize = size > (256u << 20) ? 256u << 20 : size;
		make_chain(dir, csize, data, leaf, sizeof leaf, chainraw);
		for (int i = 0; i < NRAND; i++)
			coffs[i] = (next_rand() % (csize / 4096)) * 4096;
	}
	rand_read_vhdx(leaf, coffs, buf);
	for (int r = 0; r < runs; r++) {
		a[r] = rand_read_vhdx(leaf, coffs, buf);
		b[r] = rand_read_raw(chainraw, coffs, buf);
	}
	add_fig("chain-read", "IOPS", median(a, runs), median(b, runs), 0.5, "pread of the raw file");

	fprintf(stderr, "bench: writes\n");
	for (int r = 0; r < runs; r++) {
		a[r] = seq_write_vhdx(vhdx, size, data);
		b[r] = seq_write_raw(raw, size, data);
	}
	add_fig("seq-write", "MiB/s", median(a, runs), median(b, runs), 0.8, "write of a raw file + fdatasync");
	for (int r = 0; r < runs; r++) {
		a[r] = alloc_write_vhdx(vhdx, aoffs, data);
		b[r] = alloc_write_qemu(dir, aoffs);
	}
	add_fig("rand-alloc", "IOPS", median(a, runs), median(b, runs), 3.0, "qemu-io, same writes and flushes");

	if (json) {
		printf("[");
		for (int i = 0; i < nfigs; i++)
			printf("%s{\"figure\":\"%s\",\"unit\":\"%s\",\"ours\":%.1f,\"baseline\":%.1f,\"baseline_is\":\"%s\",\"ratio\":%.3f,\"target\":%.2f,\"met\":%s}",
			       i ? "," : "", figs[i].name, figs[i].unit, figs[i].ours, figs[i].base, figs[i].baseline,
			       figs[i].skipped ? 0 : figs[i].ours / figs[i].base, figs[i].target,
			       !figs[i].skipped && figs[i].ours / figs[i].base >= figs[i].target ? "true" : "false");
		printf("]\n");
	} else {
		printf("%-11s %12s %12s %7s %7s  %-4s  %s\n", "figure", "ours", "baseline", "ratio", "target", "met",
		       "baseline is");
		for (int i = 0; i < nfigs; i++) {
			if (figs[i].skipped) {
				printf("%-11s %12.1f %12s %7s %7.2f  %-4s  %s (not available: skipped)\n", figs[i].name,
				       figs[i].ours, "-", "-", figs[i].target, "-", figs[i].baseline);
				continue;
			}
			printf("%-11s %12.1f %12.1f %7.3f %7.2f  %-4s  %s (%s)\n", figs[i].name, figs[i].ours,
			       figs[i].base, figs[i].ours / figs[i].base, figs[i].target,
			       figs[i].ours / figs[i].base >= figs[i].target ? "yes" : "NO", figs[i].baseline,
			       figs[i].unit);
		}
	}
	{
		char cmd[1100];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", dir);
	}
	free(data);
	free(buf);
	free(offs);
	free(coffs);
	free(aoffs);
	return 0;
}
