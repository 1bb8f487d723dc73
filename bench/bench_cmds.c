/*
 * bench_cmds.c - figures of `vhdx bench` (bench.h) that time whole
 * commands, ours against another tool's on the same input:
 *
 *   3 convert  `vhdx convert -O raw IMG OUT` vs `qemu-img convert -O raw
 *              IMG OUT` of figure 1's image, to a new file in the same
 *              folder
 *   3 convert-vs-write  the same `vhdx convert` vs writing the same bytes
 *              from memory into a new file, 1 MiB per write(), nothing
 *              read: the least any convert to a raw file pays.  Says how
 *              close to that limit convert is, and so how much faster than
 *              qemu-img any tool can be
 *   7 hash     `vhdx hash IMG` vs `xxhsum -H3` of the raw twin (XXH3-64,
 *              the digest vhdx hash uses per block)
 *
 * Caches: both WARM.  The input was just read into the page cache (and is
 * read again before every run); an output file is deleted after each run,
 * which throws its dirty pages away, so no run pays for the previous one's
 * writeback.  Each command runs in a block of its own, after one untimed
 * run (time_block says why).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/*
 * Times ARGV B->runs times after one untimed run, into V (MiB/s); false if
 * a run failed.  Each tool runs in a block of its own: on our test VM a
 * command that writes a new 1 GiB file right after the other tool did ran
 * 2-5 times slower than right after itself (memory the other tool freed
 * in another folio size comes back slowly), whichever tool it was, so
 * alternating the two made every second run of each an outlier.
 */
static bool time_block(struct bench *b, char *const argv[], const char *in_warm, const char *out, double *v)
{
	for (int r = -1; r < b->runs; r++) {
		double s;

		bench_warm(in_warm);
		s = bench_run(argv, NULL, NULL);
		if (out)
			unlink(out);
		if (s <= 0)
			return false;
		if (r >= 0)
			v[r] = (double)b->size / s / 1048576.0;
	}
	return true;
}

/* Median MiB/s of OURS and THEIRS over the runs; false (and WHY) if one of them failed. */
static bool time_pair(struct bench *b, char *const ours[], char *const theirs[], const char *in_warm,
		      const char *out, double *o, double *t, const char **failed)
{
	double a[16], c[16];

	if (!time_block(b, ours, in_warm, out, a)) {
		*failed = ours[0];
		return false;
	}
	if (!time_block(b, theirs, in_warm, out, c)) {
		*failed = theirs[0];
		return false;
	}
	*o = bench_median(a, b->runs);
	*t = bench_median(c, b->runs);
	return true;
}

/*
 * Seconds to write SIZE bytes into a new file OUT, 1 MiB per write() (the
 * size convert writes) from one MiB of B's random data, then close it: what
 * any convert to a raw file pays at least, with nothing to read.
 */
static double write_only(const struct bench *b, const char *out)
{
	int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	double t = bench_now();
	bool ok = fo >= 0;

	for (uint64_t off = 0; ok && off < b->size; off += 1u << 20) {
		size_t n = b->size - off < (1u << 20) ? (size_t)(b->size - off) : 1u << 20;
		/* the same MiB every time: hot in the CPU's cache, as convert's window is */
		ok = pwrite(fo, b->data, n, (off_t)off) == (ssize_t)n;
	}
	if (fo >= 0 && close(fo) < 0)
		ok = false;
	t = bench_now() - t;
	return ok ? t : -1;
}

/* Convert against writing its output from memory (see the top of the file). */
static void convert_vs_write(struct bench *b, char *const ours[], const char *out)
{
	struct bench_fig *f = bench_add(3, "convert-vs-write", "MiB/s",
					"write() of the same bytes from memory into a new file (the limit)",
					BENCH_RATIO_AT_LEAST, 0.8);
	double a[16], c[16];

	if (!time_block(b, ours, b->vhdx, out, a)) {
		bench_skip(f, "%s failed", ours[0]);
		return;
	}
	for (int r = -1; r < b->runs; r++) {
		double s = write_only(b, out);

		unlink(out);
		if (s <= 0) {
			bench_skip(f, "writing the output from memory failed");
			return;
		}
		if (r >= 0)
			c[r] = (double)b->size / s / 1048576.0;
	}
	f->ours = bench_median(a, b->runs);
	f->base = bench_median(c, b->runs);
}

void bench_fig_convert(struct bench *b)
{
	struct bench_fig *f = bench_add(3, "convert", "MiB/s", "qemu-img convert -O raw (both warm)",
					BENCH_RATIO_AT_LEAST, 1.5);
	char out[1100];
	const char *failed;

	bench_prepare_pair(b);
	bench_path(out, b, "convert.out");
	char *ours[] = { b->vhdx_exe, (char *)"convert", (char *)"-O", (char *)"raw", (char *)"--no-progress", b->vhdx, out, NULL };
	char *theirs[] = { (char *)"qemu-img", (char *)"convert", (char *)"-O", (char *)"raw", b->vhdx, out, NULL };
	if (!bench_have("qemu-img")) {
		char *one[] = { b->vhdx_exe, (char *)"convert", (char *)"-O", (char *)"raw", (char *)"--no-progress", b->vhdx, out, NULL };
		double s = bench_run(one, NULL, NULL);
		unlink(out);
		if (s > 0)
			f->ours = (double)b->size / s / 1048576.0;
		bench_skip(f, "baseline skipped: qemu-img is not installed");
		convert_vs_write(b, ours, out);
		return;
	}
	if (!time_pair(b, ours, theirs, b->vhdx, out, &f->ours, &f->base, &failed))
		bench_skip(f, "%s failed", failed);
	convert_vs_write(b, ours, out);
}

void bench_fig_hash(struct bench *b)
{
	struct bench_fig *f = bench_add(7, "hash", "MiB/s", "xxhsum -H3 of the raw file (both warm)",
					BENCH_RATIO_AT_LEAST, 0.8);
	const char *failed;

	bench_prepare_pair(b);
	char *ours[] = { b->vhdx_exe, (char *)"hash", b->vhdx, NULL };
	char *theirs[] = { (char *)"xxhsum", (char *)"-H3", b->raw, NULL };
	if (!bench_have("xxhsum")) {
		double s;
		bench_warm(b->vhdx);
		s = bench_run(ours, NULL, NULL);
		if (s > 0)
			f->ours = (double)b->size / s / 1048576.0;
		bench_skip(f, "baseline skipped: xxhsum is not installed");
		return;
	}
	bench_warm(b->raw);
	if (!time_pair(b, ours, theirs, b->vhdx, NULL, &f->ours, &f->base, &failed))
		bench_skip(f, "%s failed", failed);
}
