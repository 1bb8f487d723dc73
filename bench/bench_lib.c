/*
 * bench_lib.c - the library's figures of `vhdx bench` (bench.h), each with
 * its baseline measured alongside in the same run:
 *
 *   1 seq-read    1 MiB vhdx_pread of a fully allocated dynamic VHDX vs
 *                 pread() of the raw file with the same bytes
 *   2 rand-read   random 4 KiB reads of that VHDX vs the raw file
 *   2 chain-read  random 4 KiB reads of a depth-4 chain whose children hold
 *                 scattered 4 KiB runs (partially present blocks) vs raw
 *   5 seq-write   1 MiB writes into a new dynamic VHDX + flush + close vs
 *                 write() of a raw file + fdatasync
 *   5 rand-alloc  random 4 KiB writes that allocate blocks, a flush every
 *                 64, vs qemu-io doing the same writes and flushes
 *   6 open-64t    vhdx_open of a 64 TiB dynamic VHDX whose BAT is fully
 *                 populated: time (wall clock, and CPU time of the process:
 *                 on a loaded machine the wall clock includes waiting for a
 *                 CPU), and peak memory growth, in a new process
 *
 * Reads are warm on both sides (the files stay in the page cache): they
 * measure the library's own cost, which is what the targets are about.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

/* Random reads per run: fewer for small smoke-test disks. */
static unsigned n_rand(const struct bench *b)
{
	return b->size >= (1ull << 30) ? 200000 : 20000;
}

static double seq_read_vhdx(const char *path, uint64_t size, uint8_t *buf)
{
	struct vhdx_image *img;
	double t;

	if (vhdx_open(path, NULL, &img) < 0)
		bench_die(path);
	t = bench_now();
	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (vhdx_pread(img, buf, 1u << 20, off) < 0)
			bench_die(path);
	t = bench_now() - t;
	vhdx_close(img);
	return (double)size / t / 1048576.0;
}

static double seq_read_raw(const char *path, uint64_t size, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	double t = bench_now();

	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (pread(fd, buf, 1u << 20, (off_t)off) < 0)
			exit(EXIT_ERR);
	t = bench_now() - t;
	close(fd);
	return (double)size / t / 1048576.0;
}

void bench_fig_seq_read(struct bench *b)
{
	struct bench_fig *f = bench_add(1, "seq-read", "MiB/s", "pread of the raw file", BENCH_RATIO_AT_LEAST, 0.9);
	uint8_t *buf = malloc(1u << 20);
	double a[16], c[16];

	bench_prepare_pair(b);
	seq_read_vhdx(b->vhdx, b->size, buf); /* warm both */
	seq_read_raw(b->raw, b->size, buf);
	for (int r = 0; r < b->runs; r++) {
		a[r] = seq_read_vhdx(b->vhdx, b->size, buf);
		c[r] = seq_read_raw(b->raw, b->size, buf);
	}
	f->ours = bench_median(a, b->runs);
	f->base = bench_median(c, b->runs);
	free(buf);
}

static double rand_read_vhdx(const char *path, const uint64_t *offs, unsigned n, uint8_t *buf)
{
	struct vhdx_image *img;
	double t;

	if (vhdx_open(path, NULL, &img) < 0)
		bench_die(path);
	t = bench_now();
	for (unsigned i = 0; i < n; i++)
		if (vhdx_pread(img, buf, 4096, offs[i]) < 0)
			bench_die(path);
	t = bench_now() - t;
	vhdx_close(img);
	return n / t;
}

static double rand_read_raw(const char *path, const uint64_t *offs, unsigned n, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	double t = bench_now();

	for (unsigned i = 0; i < n; i++)
		if (pread(fd, buf, 4096, (off_t)offs[i]) < 0)
			exit(EXIT_ERR);
	t = bench_now() - t;
	close(fd);
	return n / t;
}

/*
 * Depth-4 chain: a full base and three children, each holding scattered
 * 4 KiB runs over a quarter of its blocks' sectors, so that nearly every
 * block of every child is partially present.  RAW gets what the leaf reads.
 */
static void make_chain(struct bench *b, uint64_t size, char *leaf, const char *raw)
{
	char base[1100], child[1100], parent[1100], tmp[1100];
	struct vhdx_image *img;
	uint8_t *buf = malloc(1u << 20);
	int fd;

	bench_path(base, b, "chain0.vhdx");
	bench_path(tmp, b, "chain0.raw");
	bench_make_pair(b, base, tmp, size, 32u << 20);
	unlink(tmp);
	snprintf(parent, sizeof parent, "%s", base);
	for (int d = 1; d <= 3; d++) {
		snprintf(child, sizeof child, "%s/chain%d.avhdx", b->dir, d);
		bench_new_image(child, 0, 0, parent, &img);
		for (uint64_t i = 0; i < size / 16384; i++) {
			uint64_t off = (bench_rand() % (size / 4096)) * 4096;
			bench_fill_random(buf, 4096);
			if (vhdx_pwrite(img, buf, 4096, off) < 0)
				bench_die(child);
		}
		if (vhdx_close(img) < 0)
			bench_die(child);
		snprintf(parent, sizeof parent, "%s", child);
	}
	snprintf(leaf, 1100, "%s", child);
	if (vhdx_open(leaf, NULL, &img) < 0)
		bench_die(leaf);
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		if (vhdx_pread(img, buf, 1u << 20, off) < 0)
			bench_die(leaf);
		if (pwrite(fd, buf, 1u << 20, (off_t)off) < 0)
			exit(EXIT_ERR);
	}
	close(fd);
	vhdx_close(img);
	free(buf);
}

void bench_fig_rand_read(struct bench *b)
{
	struct bench_fig *f1 = bench_add(2, "rand-read", "IOPS", "pread of the raw file", BENCH_RATIO_AT_LEAST, 0.7);
	struct bench_fig *f2 = bench_add(2, "chain-read", "IOPS", "pread of the raw file", BENCH_RATIO_AT_LEAST, 0.5);
	unsigned n = n_rand(b);
	uint64_t *offs = malloc(n * sizeof *offs);
	uint64_t csize = b->size > (256u << 20) ? 256u << 20 : b->size;
	uint8_t *buf = malloc(1u << 20);
	char leaf[1100], chainraw[1100];
	double a[16], c[16];

	bench_prepare_pair(b);
	for (unsigned i = 0; i < n; i++)
		offs[i] = (bench_rand() % (b->size / 4096)) * 4096;
	rand_read_vhdx(b->vhdx, offs, n, buf);
	rand_read_raw(b->raw, offs, n, buf);
	for (int r = 0; r < b->runs; r++) {
		a[r] = rand_read_vhdx(b->vhdx, offs, n, buf);
		c[r] = rand_read_raw(b->raw, offs, n, buf);
	}
	f1->ours = bench_median(a, b->runs);
	f1->base = bench_median(c, b->runs);

	bench_log(b, "building a depth-4 chain of %llu MiB with partially present blocks",
		  (unsigned long long)(csize >> 20));
	bench_path(chainraw, b, "chain.raw");
	make_chain(b, csize, leaf, chainraw);
	for (unsigned i = 0; i < n; i++)
		offs[i] = (bench_rand() % (csize / 4096)) * 4096;
	rand_read_vhdx(leaf, offs, n, buf);
	rand_read_raw(chainraw, offs, n, buf);
	for (int r = 0; r < b->runs; r++) {
		a[r] = rand_read_vhdx(leaf, offs, n, buf);
		c[r] = rand_read_raw(chainraw, offs, n, buf);
	}
	f2->ours = bench_median(a, b->runs);
	f2->base = bench_median(c, b->runs);
	for (int d = 0; d <= 3; d++) {
		char p[1100];
		snprintf(p, sizeof p, d ? "%s/chain%d.avhdx" : "%s/chain%d.vhdx", b->dir, d);
		unlink(p);
	}
	unlink(chainraw);
	free(offs);
	free(buf);
}

/* ---- figure 5, library side ---- */

static double seq_write_vhdx(struct bench *b, const char *path)
{
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	double t;

	unlink(path);
	bench_new_image(path, b->size, 0, NULL, NULL);
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	t = bench_now();
	if (vhdx_open(path, &oo, &img) < 0)
		bench_die(path);
	for (uint64_t off = 0; off < b->size; off += 1u << 20)
		if (vhdx_pwrite(img, b->data + off % b->data_len, 1u << 20, off) < 0)
			bench_die(path);
	if (vhdx_flush(img) < 0 || vhdx_close(img) < 0)
		bench_die(path);
	t = bench_now() - t;
	return (double)b->size / t / 1048576.0;
}

double bench_raw_seq_write(struct bench *b, const char *path)
{
	double t;
	int fd;

	unlink(path); /* freeing the last run's blocks is not part of this run */
	t = bench_now();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	for (uint64_t off = 0; off < b->size; off += 1u << 20)
		if (pwrite(fd, b->data + off % b->data_len, 1u << 20, (off_t)off) < 0)
			exit(EXIT_ERR);
	fdatasync(fd);
	close(fd);
	t = bench_now() - t;
	unlink(path);
	return (double)b->size / t / 1048576.0;
}

static uint64_t *alloc_offs;

unsigned bench_alloc_count(const struct bench *b)
{
	return b->size >= (1ull << 30) ? 4096 : 512;
}

/* Offsets spread over the 8 GiB disk's 8192 blocks of 1 MiB: most writes allocate a block. */
const uint64_t *bench_alloc_offsets(const struct bench *b)
{
	unsigned n = bench_alloc_count(b);

	if (!alloc_offs) {
		alloc_offs = malloc(n * sizeof *alloc_offs);
		for (unsigned i = 0; i < n; i++)
			alloc_offs[i] = (bench_rand() % (BENCH_ALLOC_DISK >> 20)) * (1u << 20) +
					(bench_rand() % 256) * 4096;
	}
	return alloc_offs;
}

static double alloc_write_vhdx(struct bench *b, const char *path)
{
	const uint64_t *offs = bench_alloc_offsets(b);
	unsigned n = bench_alloc_count(b);
	struct vhdx_open_options oo;
	struct vhdx_image *img;
	double t;

	bench_new_image(path, BENCH_ALLOC_DISK, 1u << 20, NULL, NULL);
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	t = bench_now();
	if (vhdx_open(path, &oo, &img) < 0)
		bench_die(path);
	for (unsigned i = 0; i < n; i++) {
		if (vhdx_pwrite(img, b->data + (i % 1024) * 4096, 4096, offs[i]) < 0)
			bench_die(path);
		if (i % BENCH_ALLOC_EVERY == BENCH_ALLOC_EVERY - 1 && vhdx_flush(img) < 0)
			bench_die(path);
	}
	if (vhdx_close(img) < 0)
		bench_die(path);
	t = bench_now() - t;
	unlink(path);
	return n / t;
}

double bench_qemu_alloc(struct bench *b, char *why, size_t whylen)
{
	const uint64_t *offs = bench_alloc_offsets(b);
	unsigned n = bench_alloc_count(b);
	char img[1100], script[1100];
	FILE *f;
	double t;

	if (!bench_have("qemu-io") || !bench_have("qemu-img")) {
		snprintf(why, whylen, "qemu-io or qemu-img is not installed");
		return -1;
	}
	bench_path(img, b, "qemu-alloc.vhdx");
	bench_path(script, b, "qemu-alloc.cmds");
	{
		char *argv[] = { (char *)"qemu-img", (char *)"create", (char *)"-q", (char *)"-f", (char *)"vhdx", (char *)"-o", (char *)"block_size=1M,subformat=dynamic",
				 img, (char *)"8G", NULL };
		if (bench_run(argv, NULL, NULL) < 0) {
			snprintf(why, whylen, "qemu-img create failed");
			return -1;
		}
	}
	f = fopen(script, "w");
	if (!f) {
		snprintf(why, whylen, "cannot write %s", script);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, "write -P %u %" PRIu64 " 4k\n", i % 250 + 1, offs[i]);
		if (i % BENCH_ALLOC_EVERY == BENCH_ALLOC_EVERY - 1)
			fprintf(f, "flush\n");
	}
	fclose(f);
	{
		char *argv[] = { (char *)"qemu-io", (char *)"-f", (char *)"vhdx", img, NULL };
		t = bench_run(argv, script, NULL);
	}
	unlink(img);
	unlink(script);
	if (t < 0) {
		snprintf(why, whylen, "qemu-io failed");
		return -1;
	}
	return n / t;
}

void bench_fig_writes(struct bench *b)
{
	struct bench_fig *f1 = bench_add(5, "seq-write", "MiB/s", "write of a raw file + fdatasync",
					 BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *f2 = bench_add(5, "rand-alloc", "IOPS", "qemu-io, same writes and flushes",
					 BENCH_RATIO_AT_LEAST, 3.0);
	char vhdx[1100], raw[1100], why[160] = "";
	double a[16], c[16];

	bench_path(vhdx, b, "write.vhdx");
	bench_path(raw, b, "write.raw");
	bench_log(b, "library writes");
	for (int r = 0; r < b->runs; r++) {
		a[r] = seq_write_vhdx(b, vhdx);
		c[r] = bench_raw_seq_write(b, raw);
	}
	f1->ours = bench_median(a, b->runs);
	f1->base = bench_median(c, b->runs);
	unlink(vhdx);
	unlink(raw);
	for (int r = 0; r < b->runs; r++) {
		a[r] = alloc_write_vhdx(b, vhdx);
		c[r] = bench_qemu_alloc(b, why, sizeof why);
		if (c[r] < 0) {
			bench_skip(f2, "baseline skipped: %s", why);
			f2->ours = bench_median(a, r + 1);
			return;
		}
	}
	f2->ours = bench_median(a, b->runs);
	f2->base = bench_median(c, b->runs);
}

/* ---- figure 6: opening a 64 TiB dynamic VHDX with a full BAT ---- */

#define OPEN_BLOCK (32u << 20)
#define OPEN_VSIZE (64ull << 40)   /* the largest virtual size MS-VHDX 2.6.2.2 allows */
#define OPEN_ALIGN (1u << 20)      /* VHDX objects are 1 MiB aligned (MS-VHDX 2.2) */
#define OPEN_FULLY_PRESENT 6u      /* PAYLOAD_BLOCK_FULLY_PRESENT (MS-VHDX 2.5.1.1) */

/* The BAT's place and layout in the VHDX PATH (vhdx_get_layer_info). 0 or -errno. */
static int bat_layout(const char *path, struct vhdx_layer_info *li)
{
	struct vhdx_image *img;
	int ret;

	ret = tool_open_flags(path, VHDX_OPEN_NO_PARENT, NULL, &img);
	if (ret < 0)
		return ret;
	li->struct_size = sizeof *li;
	ret = vhdx_get_layer_info(img, 0, li);
	vhdx_close(img);
	return ret < 0 ? ret : li->bat_entries ? 0 : -EBADMSG;
}

/*
 * Creates PATH as a 64 TiB dynamic VHDX whose every payload BAT entry is
 * FULLY_PRESENT, pointing at consecutive blocks after the metadata; the
 * file is made as long as the blocks need (sparse).  Returns 0, or -1 with
 * WHY (for instance a file system that caps the file size).
 */
static int make_64t(const char *path, uint64_t *bat_bytes, char *why, size_t whylen)
{
	struct vhdx_create_options co;
	struct vhdx_layer_info g;
	uint8_t *buf = NULL;
	uint64_t start;
	struct stat st;
	int fd = -1, ret = -1;

	vhdx_create_options_init(&co);
	co.virtual_size = OPEN_VSIZE;
	co.block_size = OPEN_BLOCK;
	co.flags = VHDX_CREATE_OVERWRITE;
	if (vhdx_create(path, &co) < 0) {
		snprintf(why, whylen, "cannot create %.100s: %s", path, vhdx_errmsg());
		goto out;
	}
	fd = open(path, O_RDWR);
	if (fd < 0 || bat_layout(path, &g) < 0 || !(buf = malloc(g.bat_entries * 8)) || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "cannot read the region table of %.100s", path);
		goto out;
	}
	start = ((uint64_t)st.st_size + OPEN_ALIGN - 1) / OPEN_ALIGN * OPEN_ALIGN;
	for (uint64_t i = 0; i < g.bat_entries; i++) {
		uint64_t blk = i - i / (g.chunk_ratio + 1), e = 0;
		if (i % (g.chunk_ratio + 1) != g.chunk_ratio)
			e = (start + blk * OPEN_BLOCK) | OPEN_FULLY_PRESENT;
		for (unsigned k = 0; k < 8; k++) /* little-endian, as every VHDX field */
			buf[8 * i + k] = (uint8_t)(e >> (8 * k));
	}
	if (pwrite(fd, buf, g.bat_entries * 8, (off_t)g.bat_foff) != (ssize_t)(g.bat_entries * 8)) {
		snprintf(why, whylen, "cannot write the BAT of %.100s", path);
		goto out;
	}
	if (ftruncate(fd, (off_t)(start + (OPEN_VSIZE + OPEN_BLOCK - 1) / OPEN_BLOCK * OPEN_BLOCK)) < 0) {
		snprintf(why, whylen, "cannot make %.100s 64 TiB long (%s)", path, strerror(errno));
		goto out;
	}
	*bat_bytes = g.bat_entries * 8;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* KiB of the "KEY:" line of /proc/self/status, or -1. */
static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * `vhdx bench --probe-open PATH` (hidden; run by bench_open_probe() in a fresh
 * process): opens PATH once and prints the seconds the open took and the
 * growth of the peak resident set over the resident set before it
 * (VmHWM after - VmRSS before).  A fresh process, not a fork of the
 * benchmark: a fork inherits a heap whose freed pages are still resident
 * and glibc's raised mmap threshold, so the BAT would land in memory that
 * is already counted.
 */
int bench_probe_open(const char *path)
{
	struct vhdx_image *img;
	long before, peak;
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	struct timespec c0, c1;
	double t;

	if (fd >= 0) { /* "5" resets the peak to the current size */
		if (write(fd, "5", 1) < 0) { /* without it the peak so far is the start-up's: small */ }
		close(fd);
	}
	before = status_kib("VmRSS");
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	t = bench_now();
	if (vhdx_open(path, NULL, &img) < 0) {
		fprintf(stderr, "vhdx bench: %s: %s\n", path, vhdx_errmsg());
		return EXIT_ERR;
	}
	t = bench_now() - t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	peak = status_kib("VmHWM");
	vhdx_close(img);
	if (before < 0 || peak < 0)
		return EXIT_ERR;
	printf("%.9f %.0f %.9f\n", t, (double)(peak - before) * 1024,
	       (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
	return EXIT_OK;
}

int bench_open_probe(struct bench *b, const char *path, double *secs, double *bytes, double *cpu)
{
	char out[1100], line[128] = "";
	char *argv[] = { b->vhdx_exe, (char *)"bench", (char *)"--probe-open", (char *)path, NULL };
	double wall;
	FILE *f;
	int ok;

	bench_path(out, b, "probe.out");
	if (bench_run(argv, NULL, out) < 0)
		return -1;
	f = fopen(out, "r");
	ok = f && fgets(line, sizeof line, f) && sscanf(line, "%lf %lf %lf", secs ? secs : &wall, bytes, cpu) == 3;
	if (f)
		fclose(f);
	unlink(out);
	return ok ? 0 : -1;
}

void bench_fig_open_64t(struct bench *b)
{
	struct bench_fig *ft = bench_add(6, "open-64t-time", "ms", "the limit: 100 ms", BENCH_RATIO_AT_MOST, 1.0);
	struct bench_fig *fc = bench_add(6, "open-64t-cpu", "ms", "the limit: 100 ms", BENCH_RATIO_AT_MOST, 1.0);
	struct bench_fig *fm = bench_add(6, "open-64t-memory", "MiB", "the limit: BAT size + 16 MiB",
					 BENCH_RATIO_AT_MOST, 1.0);
	const char *dirs[] = { "/dev/shm", b->dir };
	char path[1100], why[300] = "";
	uint64_t bat_bytes = 0;
	double t[16], m[16], c[16];
	int ok = -1;

	/* ext4 caps a file at 16 TiB: tmpfs takes a sparse 64 TiB file */
	for (unsigned d = 0; d < 2 && ok < 0; d++) {
		if (access(dirs[d], W_OK) < 0)
			continue;
		snprintf(path, sizeof path, "%s/vhdx-bench-64t.%ld.vhdx", dirs[d], (long)getpid());
		bench_log(b, "building a 64 TiB dynamic VHDX with a full BAT in %s", dirs[d]);
		ok = make_64t(path, &bat_bytes, why, sizeof why);
		if (ok < 0)
			unlink(path);
	}
	if (ok < 0) {
		bench_skip(ft, "no file system here holds a 64 TiB file: %s", why);
		bench_skip(fc, "no file system here holds a 64 TiB file: %s", why);
		bench_skip(fm, "no file system here holds a 64 TiB file: %s", why);
		return;
	}
	bench_open_probe(b, path, &t[0], &m[0], &c[0]); /* a first open to warm the caches (not counted) */
	for (int r = 0; r < b->runs; r++) {
		if (bench_open_probe(b, path, &t[r], &m[r], &c[r]) < 0) {
			bench_skip(ft, "vhdx_open of the 64 TiB image failed");
			bench_skip(fc, "vhdx_open of the 64 TiB image failed");
			bench_skip(fm, "vhdx_open of the 64 TiB image failed");
			unlink(path);
			return;
		}
		t[r] *= 1000;
		c[r] *= 1000;
		m[r] /= 1048576.0;
	}
	unlink(path);
	ft->ours = bench_median(t, b->runs);
	ft->base = 100;
	fc->ours = bench_median(c, b->runs);
	fc->base = 100;
	fm->ours = bench_median(m, b->runs);
	fm->base = (double)bat_bytes / 1048576.0 + 16;
}
