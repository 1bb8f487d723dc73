/*
 * bench_scale.c - figure 8 of `vhdx bench` (bench.h): how the cost grows.
 * Issue #8 asks that "cost grow linearly with the bytes moved and not with
 * the image's virtual size or chain depth beyond the lookups themselves";
 * each row compares the same work on a small and a large instance, both
 * measured in this run, so the ratio is the non-linearity:
 *
 *   chain-leaf-dD        random 4 KiB vhdx_pread of data the leaf holds, in
 *                        a chain of depth D (4, 16, 64) vs depth 1 (the base
 *                        alone): must not grow with D
 *   chain-base-dD        random 4 KiB reads of data only the base holds,
 *                        through D-1 children whose blocks are all partially
 *                        present (one sector-bitmap lookup per layer) vs
 *                        depth 1: may grow, at most linearly (target D)
 *   chain-base-per-layer what one more layer adds to such a read, at depth
 *                        64 vs at depth 16: a constant per layer
 *   chain-first-read-d64 the first read after opening the depth-64 chain,
 *                        which loads what every layer's lookup needs, per
 *                        layer, vs the first read of the base alone
 *   chain-open-per-layer vhdx_open of the chain per layer, depth 64 vs 16
 *   vsize-read-64t       random 4 KiB reads of the same allocated data in a
 *                        64 TiB dynamic VHDX vs a 1 GiB one
 *   vsize-open-cpu       open cost per MiB of BAT (net of the 1 GiB disk's
 *                        open), 64 TiB vs 16 TiB: linear in the BAT
 *   vsize-open-memory    peak memory growth of that open per MiB of BAT,
 *                        against the BAT's own size
 *   bytes-hash           `vhdx hash` CPU time per GiB of a disk of --size
 *                        vs one of a quarter of it
 *
 * Costs are CPU time (CLOCK_PROCESS_CPUTIME_ID in this process, or the
 * child's user + system time from wait4()): on this shared 2-core machine
 * the wall clock also counts waiting for a CPU.  Files stay in the page
 * cache, so the reads measure the library's own work.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

/* CPU seconds of this process so far (all threads, user + system). */
static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Random reads per measurement: fewer for small smoke-test disks. */
static unsigned n_reads(const struct bench *b)
{
	return b->size >= (1ull << 30) ? 20000 : 2000;
}

/* CPU nanoseconds per 4 KiB vhdx_pread of IMG at OFFS[IDX[i]], i < N. */
static double read_cost(struct vhdx_image *img, const char *path, const uint64_t *offs, const unsigned *idx,
			unsigned n, uint8_t *buf)
{
	double t = cpu_now();

	for (unsigned i = 0; i < n; i++)
		if (vhdx_pread(img, buf, 4096, offs[idx[i]]) != 4096)
			bench_die(path);
	return (cpu_now() - t) * 1e9 / n;
}

/* ---- chain depth ---- */

#define SCALE_DEPTH 64          /* the deepest chain; VHDX_DEFAULT_MAX_DEPTH allows it */
#define SCALE_BLOCK (1u << 20)  /* block size of every layer */
#define SLOTS (SCALE_BLOCK / 4096)
#define BASE_SLOTS 3            /* offsets per block that only the base holds */

/*
 * The 4 KiB slot of block K that layer D (1..63) writes; D = 0 names the
 * base's slots that depth 1 reads as "leaf" data.  7 is odd, so the slots
 * of different D differ in every block; D in 64..255 gives slots that no
 * layer writes (the base-only offsets).
 */
static uint64_t slot_off(uint64_t k, unsigned d)
{
	return k * SCALE_BLOCK + (uint64_t)((k * 3 + 7u * d) % SLOTS) * 4096;
}

static void layer_path(char *out, const struct bench *b, unsigned d)
{
	char name[64];

	snprintf(name, sizeof name, d ? "scale%u.avhdx" : "scale%u.vhdx", d);
	bench_path(out, b, name);
}

/*
 * The chain: a fully allocated base of SIZE bytes, then 63 children, each
 * writing one 4 KiB run into every block, so that every child's every block
 * is partially present.  The chain of depth D is opened at child D-1.
 */
static void make_deep_chain(struct bench *b, uint64_t size)
{
	char path[1100], parent[1100];
	struct vhdx_image *img;
	uint8_t buf[4096];

	layer_path(path, b, 0);
	bench_path(parent, b, "scale0.raw");
	bench_make_pair(b, path, parent, size, SCALE_BLOCK);
	unlink(parent);
	for (unsigned d = 1; d < SCALE_DEPTH; d++) {
		layer_path(parent, b, d - 1);
		layer_path(path, b, d);
		bench_new_image(path, 0, SCALE_BLOCK, parent, &img);
		for (uint64_t k = 0; k < size / SCALE_BLOCK; k++) {
			bench_fill_random(buf, sizeof buf);
			if (vhdx_pwrite(img, buf, sizeof buf, slot_off(k, d)) != (ssize_t)sizeof buf)
				bench_die(path);
		}
		if (vhdx_close(img) < 0)
			bench_die(path);
	}
}

static void scale_chain(struct bench *b)
{
	static const unsigned depths[] = { 1, 4, 16, 64 };
	enum { ND = sizeof depths / sizeof depths[0] };
	static const char *const leaf_names[ND] = { NULL, "chain-leaf-d4", "chain-leaf-d16", "chain-leaf-d64" };
	static const char *const base_names[ND] = { NULL, "chain-base-d4", "chain-base-d16", "chain-base-d64" };
	struct bench_fig *fl[ND], *fb[ND], *fper, *fcold, *fop;
	uint64_t size = b->size < (64u << 20) ? b->size : 64u << 20;
	uint64_t nblk = size / SCALE_BLOCK;
	unsigned n = n_reads(b);
	uint64_t *leaf_offs = malloc(nblk * sizeof *leaf_offs), *base_offs = malloc(BASE_SLOTS * nblk * sizeof *base_offs);
	unsigned *leaf_idx = malloc(n * sizeof *leaf_idx), *base_idx = malloc(n * sizeof *base_idx);
	double leaf[ND][16], base[ND][16], opn[ND][16], cold[ND][16];
	uint8_t buf[4096];

	for (unsigned i = 1; i < ND; i++) {
		fl[i] = bench_add(8, leaf_names[i], "ns/read (CPU)", "depth 1, the base alone", BENCH_RATIO_AT_MOST, 1.5);
		fb[i] = bench_add(8, base_names[i], "ns/read (CPU)", "depth 1, the base alone", BENCH_RATIO_AT_MOST,
				  depths[i]);
	}
	fper = bench_add(8, "chain-base-per-layer", "ns/layer (CPU)", "per layer at depth 16", BENCH_RATIO_AT_MOST, 1.5);
	/* a cold lookup per layer: a cache allocation, a page fault and one 4 KiB bitmap read, against one 4 KiB read */
	fcold = bench_add(8, "chain-first-read-d64", "us/layer (CPU)", "first read at depth 1", BENCH_RATIO_AT_MOST, 8.0);
	fop = bench_add(8, "chain-open-per-layer", "us/layer (CPU)", "per layer at depth 16", BENCH_RATIO_AT_MOST, 1.5);
	if (!leaf_offs || !base_offs || !leaf_idx || !base_idx) {
		fprintf(stderr, "vhdx bench: out of memory\n");
		exit(EXIT_ERR);
	}
	bench_log(b, "building a chain of depth %u over a %llu MiB base, every child's blocks partially present",
		  SCALE_DEPTH, (unsigned long long)(size >> 20));
	make_deep_chain(b, size);
	for (uint64_t k = 0; k < nblk; k++)
		for (unsigned j = 0; j < BASE_SLOTS; j++)
			base_offs[k * BASE_SLOTS + j] = slot_off(k, 100 + 50 * j);
	for (unsigned i = 0; i < n; i++) {
		leaf_idx[i] = (unsigned)(bench_rand() % nblk);
		base_idx[i] = (unsigned)(bench_rand() % (BASE_SLOTS * nblk));
	}
	for (int r = -1; r < b->runs; r++) { /* run -1 warms the page cache and is not counted */
		for (unsigned i = 0; i < ND; i++) {
			char leafpath[1100];
			struct vhdx_image *img;
			double t;

			layer_path(leafpath, b, depths[i] - 1);
			for (uint64_t k = 0; k < nblk; k++)
				leaf_offs[k] = slot_off(k, depths[i] - 1);
			t = cpu_now();
			if (vhdx_open(leafpath, NULL, &img) < 0)
				bench_die(leafpath);
			t = cpu_now() - t;
			if (r >= 0) {
				unsigned one = 0;
				opn[i][r] = t * 1e6 / depths[i];
				/* the first read loads what every layer's lookup needs (the sector bitmaps) */
				cold[i][r] = read_cost(img, leafpath, base_offs, &one, 1, buf) / 1e3 / depths[i];
				/* then the steady state: one uncounted pass over every offset, and the counted reads */
				for (unsigned k = 0; k < nblk; k++)
					read_cost(img, leafpath, leaf_offs, &k, 1, buf);
				for (unsigned k = 0; k < BASE_SLOTS * nblk; k++)
					read_cost(img, leafpath, base_offs, &k, 1, buf);
				leaf[i][r] = read_cost(img, leafpath, leaf_offs, leaf_idx, n, buf);
				base[i][r] = read_cost(img, leafpath, base_offs, base_idx, n, buf);
			} else {
				/* check that the offsets hold what this figure says: the leaf's own run is its data */
				struct vhdx_extent e;
				if (vhdx_map(img, leaf_offs[0], 4096, &e) < 0 || e.kind != VHDX_EXTENT_DATA || e.layer != 0 ||
				    vhdx_map(img, base_offs[0], 4096, &e) < 0 || e.kind != VHDX_EXTENT_DATA ||
				    e.layer != depths[i] - 1) {
					fprintf(stderr, "vhdx bench: %s: the scaling chain is not laid out as expected\n",
						leafpath);
					exit(EXIT_ERR);
				}
				read_cost(img, leafpath, leaf_offs, leaf_idx, n, buf);
				read_cost(img, leafpath, base_offs, base_idx, n, buf);
			}
			vhdx_close(img);
		}
	}
	{
		double l1 = bench_median(leaf[0], b->runs), b1 = bench_median(base[0], b->runs);
		double m[ND];

		for (unsigned i = 1; i < ND; i++) {
			fl[i]->ours = bench_median(leaf[i], b->runs);
			fl[i]->base = l1;
			fb[i]->ours = bench_median(base[i], b->runs);
			fb[i]->base = b1;
			m[i] = fb[i]->ours;
		}
		/* the extra cost of 63 layers over 63, against that of 15 over 15 */
		if (m[3] > b1 && m[2] > b1) {
			fper->ours = (m[3] - b1) / 63;
			fper->base = (m[2] - b1) / 15;
		} else {
			bench_skip(fper, "a deeper chain read no slower than depth 1 (noise at this size)");
		}
		fop->ours = bench_median(opn[3], b->runs);
		fop->base = bench_median(opn[2], b->runs);
		fcold->ours = bench_median(cold[3], b->runs);
		fcold->base = bench_median(cold[0], b->runs);
	}
	for (unsigned d = 0; d < SCALE_DEPTH; d++) {
		char p[1100];
		layer_path(p, b, d);
		unlink(p);
	}
	free(leaf_offs);
	free(base_offs);
	free(leaf_idx);
	free(base_idx);
}

/* ---- virtual size ---- */

#define VS_BLOCK (32u << 20)
/* The allocated data: two pieces of data_len / 2 at these blocks, inside 1 GiB. */
static const uint64_t vs_blocks[2] = { 5, 23 };

/* A dynamic VHDX of VSIZE bytes holding the run's data at vs_blocks; the BAT's bytes in *BAT_BYTES. */
static void make_vsize(struct bench *b, const char *path, uint64_t vsize, double *bat_mib)
{
	struct vhdx_image *img;
	struct vhdx_layer_info g;
	size_t piece = b->data_len / 2;

	bench_new_image(path, vsize, VS_BLOCK, NULL, &img);
	g.struct_size = sizeof g;
	if (vhdx_get_layer_info(img, 0, &g) < 0)
		bench_die(path);
	*bat_mib = (double)g.bat_entries * 8 / 1048576.0;
	for (unsigned p = 0; p < 2; p++)
		for (size_t o = 0; o < piece; o += 1u << 20) {
			size_t len = piece - o < (1u << 20) ? piece - o : 1u << 20;
			if (vhdx_pwrite(img, b->data + p * piece + o, len, vs_blocks[p] * VS_BLOCK + o) != (ssize_t)len)
				bench_die(path);
		}
	if (vhdx_close(img) < 0)
		bench_die(path);
}

static void scale_vsize(struct bench *b)
{
	struct bench_fig *fr = bench_add(8, "vsize-read-64t", "ns/read (CPU)", "1 GiB disk, same data",
					 BENCH_RATIO_AT_MOST, 1.2);
	struct bench_fig *fo = bench_add(8, "vsize-open-cpu", "us/BAT MiB (CPU)", "per BAT MiB at 16 TiB",
					 BENCH_RATIO_AT_MOST, 1.3);
	struct bench_fig *fm = bench_add(8, "vsize-open-memory", "KiB/BAT MiB", "the BAT itself (1024)",
					 BENCH_RATIO_AT_MOST, 1.2);
	static const uint64_t vsizes[3] = { 1ull << 30, 16ull << 40, 64ull << 40 };
	unsigned n = n_reads(b);
	size_t piece = b->data_len / 2;
	uint64_t *offs = malloc(n * sizeof *offs);
	unsigned *idx = malloc(n * sizeof *idx);
	char path[3][1100];
	double bat[3], rd[3][16], oc[3][16], om[3][16];
	uint8_t buf[4096];

	if (!offs || !idx) {
		fprintf(stderr, "vhdx bench: out of memory\n");
		exit(EXIT_ERR);
	}
	bench_log(b, "building dynamic VHDX of 1 GiB, 16 TiB and 64 TiB holding the same %zu MiB",
		  b->data_len >> 20);
	for (unsigned v = 0; v < 3; v++) {
		char name[32];
		snprintf(name, sizeof name, "vsize%u.vhdx", v);
		bench_path(path[v], b, name);
		make_vsize(b, path[v], vsizes[v], &bat[v]);
	}
	for (unsigned i = 0; i < n; i++) {
		offs[i] = vs_blocks[i % 2] * VS_BLOCK + (bench_rand() % (piece / 4096)) * 4096;
		idx[i] = i;
	}
	for (int r = -1; r < b->runs; r++) { /* run -1 warms the caches */
		for (unsigned v = 0; v < 3; v++) {
			struct vhdx_image *img;
			double c, m;

			if (bench_open_probe(b, path[v], NULL, &m, &c) < 0) {
				bench_skip(fo, "vhdx bench --probe-open %s failed", path[v]);
				bench_skip(fm, "vhdx bench --probe-open %s failed", path[v]);
				c = m = 0;
			}
			if (vhdx_open(path[v], NULL, &img) < 0)
				bench_die(path[v]);
			if (r >= 0) {
				oc[v][r] = c;
				om[v][r] = m;
				rd[v][r] = v == 1 ? 0 : read_cost(img, path[v], offs, idx, n, buf);
			} else {
				read_cost(img, path[v], offs, idx, n, buf);
			}
			vhdx_close(img);
		}
	}
	fr->ours = bench_median(rd[2], b->runs);
	fr->base = bench_median(rd[0], b->runs);
	if (!fo->skip[0]) {
		double c0 = bench_median(oc[0], b->runs), c1 = bench_median(oc[1], b->runs);
		double c2 = bench_median(oc[2], b->runs), m0 = bench_median(om[0], b->runs);
		double m2 = bench_median(om[2], b->runs);
		/* net of what opening the 1 GiB disk costs: headers, metadata, the log, the process */
		fo->ours = (c2 - c0) * 1e6 / (bat[2] - bat[0]);
		fo->base = (c1 - c0) * 1e6 / (bat[1] - bat[0]);
		fm->ours = (m2 - m0) / 1024 / (bat[2] - bat[0]);
		fm->base = 1024;
		if (fo->ours <= 0 || fo->base <= 0)
			bench_skip(fo, "the larger BAT opened no slower than the 1 GiB disk's (noise)");
	}
	for (unsigned v = 0; v < 3; v++)
		unlink(path[v]);
	free(offs);
	free(idx);
}

/* ---- bytes moved ---- */

static void scale_bytes(struct bench *b)
{
	struct bench_fig *f = bench_add(8, "bytes-hash", "ms/GiB (CPU)", "vhdx hash of a quarter of the bytes",
					BENCH_RATIO_AT_MOST, 1.2);
	char small[1100], raw[1100];
	double big_t[16], small_t[16];

	bench_prepare_pair(b);
	bench_path(small, b, "quarter.vhdx");
	bench_path(raw, b, "quarter.raw");
	bench_log(b, "building a %llu MiB dynamic VHDX (a quarter of --size)", (unsigned long long)(b->size >> 22));
	bench_make_pair(b, small, raw, b->size / 4, 32u << 20);
	unlink(raw);
	char *big_argv[] = { b->vhdx_exe, (char *)"hash", b->vhdx, NULL };
	char *small_argv[] = { b->vhdx_exe, (char *)"hash", small, NULL };
	for (int r = 0; r < b->runs; r++) {
		for (int k = 0; k < 2; k++) {
			bool big = (k == 0) == (r % 2 == 0); /* alternate which goes first */
			double s, cpu;

			bench_warm(big ? b->vhdx : small);
			s = bench_run_cpu(big ? big_argv : small_argv, NULL, NULL, &cpu) < 0 ? -1 : cpu;
			if (s < 0) {
				bench_skip(f, "vhdx hash failed");
				unlink(small);
				return;
			}
			/* ms per GiB of the virtual disk */
			(big ? big_t : small_t)[r] = s * 1000 / ((double)(big ? b->size : b->size / 4) / (1 << 30));
		}
	}
	f->ours = bench_median(big_t, b->runs);
	f->base = bench_median(small_t, b->runs);
	unlink(small);
}

void bench_fig_scale(struct bench *b)
{
	scale_chain(b);
	scale_vsize(b);
	scale_bytes(b);
}
