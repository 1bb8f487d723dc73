/*
 * bench_fuse.c - the vhdxfs figures of `vhdx bench` (bench.h):
 *
 *   4 fuse-seq-*      1 MiB read()s of the whole disk through vhdxfs, vs
 *                     vhdimount (libvhdi) on the same image and vs the raw
 *                     file read directly
 *   4 fuse-rand-*     random 4 KiB pread()s, the same readers
 *   4 fuse-dio-*      the same through a second mount with -o direct_io
 *                     (no page cache for the disk: bigger requests, splice)
 *   4 fuse-cached-*   re-reads: the same readers with nothing dropped, so
 *                     vhdxfs (keep_cache) serves its pages from the kernel
 *                     as the raw file does; vhdimount drops them at open
 *   4 fuse-*-zeros    the FUSE round trip's own ceiling: a third mount, of
 *                     an image with nothing allocated, answers every read
 *                     from a buffer of zeros without touching a file; how
 *                     close the real reads come to it, and how that
 *                     ceiling compares with the raw file
 *   5 fuse-seq-write  1 MiB writes into a new image mounted -o rw, fsync,
 *                     vs write() of a raw file + fdatasync
 *   5 fuse-rand-alloc random allocating 4 KiB writes with an fsync every
 *                     64, vs qemu-io doing the same writes and flushes
 *
 * Caches for reads: WARM images.  The image and raw files stay in the page
 * cache; before every run but the re-reads the page cache of the file read
 * through FUSE is dropped (posix_fadvise DONTNEED), so every byte read
 * through a mount goes through its daemon.  Random reads set POSIX_FADV_RANDOM on every reader
 * (as fio does), so no readahead inflates them.  The order of the readers
 * rotates from run to run.  Mounting needs root and /dev/fuse: otherwise
 * the figures are skipped with the reason.  bench/bench-fuse.sh measures
 * the same by hand with cold caches, O_DIRECT and several jobs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "tool.h"

#define FUSE_RAND_IOS 4000

static bool is_mounted(const char *mnt)
{
	char parent[1200];
	struct stat a, p;

	snprintf(parent, sizeof parent, "%s/..", mnt);
	return stat(mnt, &a) == 0 && stat(parent, &p) == 0 && a.st_dev != p.st_dev;
}

static bool wait_mounted(const char *mnt)
{
	for (int i = 0; i < 200; i++) {
		if (is_mounted(mnt))
			return true;
		usleep(50000);
	}
	return false;
}

static void unmount(const char *mnt)
{
	char *argv[] = { (char *)"fusermount3", (char *)"-u", (char *)mnt, NULL };

	for (int i = 0; i < 50 && is_mounted(mnt); i++) {
		if (bench_run(argv, NULL, NULL) >= 0)
			break;
		usleep(100000);
	}
}

/* Starts `vhdxfs -f [-o OPTS] IMAGE MNT` (OPTS NULL: none); its pid, or -1. */
static pid_t mount_vhdxfs(struct bench *b, const char *image, const char *mnt, const char *opts)
{
	pid_t pid;

	mkdir(mnt, 0755);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0 && !getenv("VHDX_BENCH_DEBUG")) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (opts)
			execl(b->vhdxfs_exe, "vhdxfs", "-f", "-o", opts, image, mnt, (char *)NULL);
		else
			execl(b->vhdxfs_exe, "vhdxfs", "-f", image, mnt, (char *)NULL);
		_exit(127);
	}
	if (!wait_mounted(mnt)) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void unmount_vhdxfs(const char *mnt, pid_t pid)
{
	unmount(mnt);
	waitpid(pid, NULL, 0);
}

/* Why FUSE figures cannot run here, or NULL. */
static const char *fuse_unavailable(const struct bench *b)
{
	if (!b->vhdxfs_exe[0])
		return "vhdxfs was not built or is not found (beside this vhdx, or on PATH)";
	if (geteuid() != 0)
		return "mounting needs root";
	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return "/dev/fuse is missing";
	if (!bench_have("fusermount3"))
		return "fusermount3 is not installed";
	return NULL;
}

/* PATH opened for reading, from the disk when DROP (its pages dropped from the cache first); -1 on failure. */
static int open_read(const char *path, bool drop)
{
	if (drop)
		bench_drop_cache(path);
	return open(path, O_RDONLY);
}

static double seq_read(const char *path, bool drop)
{
	static uint8_t buf[1 << 20];
	uint64_t total = 0;
	ssize_t n;
	double t;
	int fd = open_read(path, drop);

	if (fd < 0)
		return -1;
	t = bench_now();
	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += (uint64_t)n;
	t = bench_now() - t;
	close(fd);
	return n < 0 ? -1 : (double)total / t / 1048576.0;
}

static double rand_read(const char *path, bool drop, const uint64_t *offs, unsigned n)
{
	static uint8_t buf[4096];
	double t;
	int fd = open_read(path, drop);

	if (fd < 0)
		return -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	t = bench_now();
	for (unsigned i = 0; i < n; i++)
		if (pread(fd, buf, sizeof buf, (off_t)offs[i]) != (ssize_t)sizeof buf) {
			close(fd);
			return -1;
		}
	t = bench_now() - t;
	close(fd);
	return n / t;
}

/* R_ZEROS: vhdxfs on an image with nothing allocated, answering from memory */
enum { R_RAW, R_VHDXFS, R_DIO, R_VHDI, R_ZEROS, N_READERS };


/*
 * Figure 4's timed reads through every reader of FILES (vhdimount's only
 * when HAVE_VHDI), B->runs times each in a rotating order: sequential and
 * random (at OFFS) with the page cache dropped, then the re-reads.
 */
static void measure_reads(const struct bench *b, char files[][1200], bool have_vhdi, const uint64_t *offs,
			  double seq[][16], double rnd[][16], double cseq[][16], double crnd[][16])
{
	for (int r = 0; r < b->runs; r++)
		for (int k = 0; k < N_READERS; k++) {
			int who = (k + r) % N_READERS; /* rotate the order */
			if (who == R_VHDI && !have_vhdi)
				continue;
			seq[who][r] = seq_read(files[who], who != R_RAW);
		}
	for (int r = 0; r < b->runs; r++)
		for (int k = 0; k < N_READERS; k++) {
			int who = (k + r) % N_READERS;
			if (who == R_VHDI && !have_vhdi)
				continue;
			rnd[who][r] = rand_read(files[who], who != R_RAW, offs, FUSE_RAND_IOS);
		}
	/*
	 * Re-reads: nothing dropped.  vhdxfs opens /disk with keep_cache, so
	 * after one unmeasured pass its pages stay in the kernel; vhdimount's
	 * open drops them, so each of its runs goes through its daemon again.
	 * -o direct_io caches nothing and is left out.
	 */
	seq_read(files[R_VHDXFS], false);
	for (int r = 0; r < b->runs; r++)
		for (int k = 0; k < N_READERS; k++) {
			int who = (k + r) % N_READERS;
			if (who == R_DIO || who == R_ZEROS || (who == R_VHDI && !have_vhdi))
				continue;
			cseq[who][r] = seq_read(files[who], false);
		}
	for (int r = 0; r < b->runs; r++)
		for (int k = 0; k < N_READERS; k++) {
			int who = (k + r) % N_READERS;
			if (who == R_DIO || who == R_ZEROS || (who == R_VHDI && !have_vhdi))
				continue;
			crnd[who][r] = rand_read(files[who], false, offs, FUSE_RAND_IOS);
		}
}

void bench_fig_fuse_read(struct bench *b)
{
	struct bench_fig *sv = bench_add(4, "fuse-seq-vs-vhdimount", "MiB/s", "vhdimount, same image",
					 BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *sr = bench_add(4, "fuse-seq-vs-raw", "MiB/s", "read of the raw file", BENCH_RATIO_AT_LEAST,
					 0.6);
	struct bench_fig *rv = bench_add(4, "fuse-rand-vs-vhdimount", "IOPS", "vhdimount, same image",
					 BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *rr = bench_add(4, "fuse-rand-vs-raw", "IOPS", "pread of the raw file", BENCH_RATIO_AT_LEAST,
					 0.6);
	struct bench_fig *dsv = bench_add(4, "fuse-dio-seq-vs-vhdimount", "MiB/s", "vhdimount, same image",
					  BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *dsr = bench_add(4, "fuse-dio-seq-vs-raw", "MiB/s", "read of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *drv = bench_add(4, "fuse-dio-rand-vs-vhdimount", "IOPS", "vhdimount, same image",
					  BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *drr = bench_add(4, "fuse-dio-rand-vs-raw", "IOPS", "pread of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *csv = bench_add(4, "fuse-cached-seq-vs-vhdimount", "MiB/s", "vhdimount, same image, re-read",
					  BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *csr = bench_add(4, "fuse-cached-seq-vs-raw", "MiB/s", "read of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *crv = bench_add(4, "fuse-cached-rand-vs-vhdimount", "IOPS", "vhdimount, same image, re-read",
					  BENCH_RATIO_AT_LEAST, 3.0);
	struct bench_fig *crr = bench_add(4, "fuse-cached-rand-vs-raw", "IOPS", "pread of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *zs = bench_add(4, "fuse-seq-vs-zeros", "MiB/s", "vhdxfs reading zeros, no image I/O",
					 BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *zr = bench_add(4, "fuse-rand-vs-zeros", "IOPS", "vhdxfs reading zeros, no image I/O",
					 BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *zsr = bench_add(4, "fuse-zeros-seq-vs-raw", "MiB/s", "read of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *zrr = bench_add(4, "fuse-zeros-rand-vs-raw", "IOPS", "pread of the raw file",
					  BENCH_RATIO_AT_LEAST, 0.6);
	struct bench_fig *all[] = { sv, sr, rv, rr, dsv, dsr, drv, drr, csv, csr, crv, crr, zs, zr, zsr, zrr };
	const unsigned n_all = sizeof all / sizeof all[0];
	const char *why = fuse_unavailable(b);
	char m1[1100], m2[1100], m3[1100], m4[1100], empty[1100], files[N_READERS][1200];
	double seq[N_READERS][16], rnd[N_READERS][16], cseq[N_READERS][16], crnd[N_READERS][16];
	uint64_t offs[FUSE_RAND_IOS];
	bool have_vhdi = bench_have("vhdimount");
	pid_t pid, pid_dio, pid_zeros;

	if (why) {
		for (unsigned i = 0; i < n_all; i++)
			bench_skip(all[i], "%s", why);
		return;
	}
	bench_prepare_pair(b);
	bench_path(m1, b, "mnt-vhdxfs");
	bench_path(m2, b, "mnt-vhdimount");
	bench_path(m3, b, "mnt-vhdxfs-dio");
	bench_path(m4, b, "mnt-vhdxfs-zeros");
	bench_path(empty, b, "empty.vhdx");
	bench_log(b, "vhdxfs reads");
	bench_new_image(empty, b->size, 0, NULL, NULL);
	pid = mount_vhdxfs(b, b->vhdx, m1, NULL);
	pid_dio = pid < 0 ? -1 : mount_vhdxfs(b, b->vhdx, m3, "direct_io");
	pid_zeros = pid_dio < 0 ? -1 : mount_vhdxfs(b, empty, m4, NULL);
	if (pid < 0 || pid_dio < 0 || pid_zeros < 0) {
		if (pid >= 0)
			unmount_vhdxfs(m1, pid);
		if (pid_dio >= 0)
			unmount_vhdxfs(m3, pid_dio);
		unlink(empty);
		for (unsigned i = 0; i < n_all; i++)
			bench_skip(all[i], "vhdxfs did not mount");
		return;
	}
	if (have_vhdi) {
		char *argv[] = { (char *)"vhdimount", b->vhdx, m2, NULL };
		mkdir(m2, 0755);
		if (bench_run(argv, NULL, NULL) < 0 || !wait_mounted(m2))
			have_vhdi = false;
	}
	snprintf(files[R_RAW], sizeof files[0], "%s", b->raw);
	snprintf(files[R_VHDXFS], sizeof files[0], "%s/disk", m1);
	snprintf(files[R_DIO], sizeof files[0], "%s/disk", m3);
	snprintf(files[R_VHDI], sizeof files[0], "%s/vhdi1", m2);
	snprintf(files[R_ZEROS], sizeof files[0], "%s/disk", m4);
	for (unsigned i = 0; i < FUSE_RAND_IOS; i++)
		offs[i] = (bench_rand() % (b->size / 4096)) * 4096;
	bench_warm(b->vhdx);
	bench_warm(b->raw);
	measure_reads(b, files, have_vhdi, offs, seq, rnd, cseq, crnd);
	unmount_vhdxfs(m1, pid);
	unmount_vhdxfs(m3, pid_dio);
	unmount_vhdxfs(m4, pid_zeros);
	unlink(empty);
	if (have_vhdi)
		unmount(m2);
	for (int r = 0; r < b->runs; r++)
		for (int w = 0; w < N_READERS; w++)
			if ((w != R_VHDI || have_vhdi) &&
			    (seq[w][r] < 0 || rnd[w][r] < 0 ||
			     (w != R_DIO && w != R_ZEROS && (cseq[w][r] < 0 || crnd[w][r] < 0)))) {
				for (unsigned i = 0; i < n_all; i++)
					bench_skip(all[i], "a read through a mount failed");
				return;
			}
	sv->ours = sr->ours = bench_median(seq[R_VHDXFS], b->runs);
	rv->ours = rr->ours = bench_median(rnd[R_VHDXFS], b->runs);
	dsv->ours = dsr->ours = bench_median(seq[R_DIO], b->runs);
	drv->ours = drr->ours = bench_median(rnd[R_DIO], b->runs);
	csv->ours = csr->ours = bench_median(cseq[R_VHDXFS], b->runs);
	crv->ours = crr->ours = bench_median(crnd[R_VHDXFS], b->runs);
	sr->base = dsr->base = bench_median(seq[R_RAW], b->runs);
	rr->base = drr->base = bench_median(rnd[R_RAW], b->runs);
	csr->base = bench_median(cseq[R_RAW], b->runs);
	crr->base = bench_median(crnd[R_RAW], b->runs);
	zs->ours = sv->ours;
	zr->ours = rv->ours;
	zs->base = zsr->ours = bench_median(seq[R_ZEROS], b->runs);
	zr->base = zrr->ours = bench_median(rnd[R_ZEROS], b->runs);
	zsr->base = sr->base;
	zrr->base = rr->base;
	if (have_vhdi) {
		sv->base = dsv->base = bench_median(seq[R_VHDI], b->runs);
		rv->base = drv->base = bench_median(rnd[R_VHDI], b->runs);
		csv->base = bench_median(cseq[R_VHDI], b->runs);
		crv->base = bench_median(crnd[R_VHDI], b->runs);
	} else {
		const char *m = "baseline skipped: vhdimount (libvhdi-utils) is not installed or did not mount";
		bench_skip(sv, "%s", m);
		bench_skip(rv, "%s", m);
		bench_skip(dsv, "%s", m);
		bench_skip(drv, "%s", m);
		bench_skip(csv, "%s", m);
		bench_skip(crv, "%s", m);
	}
}

/*
 * Mounts IMAGE read-write at MNT, runs WRITES on its disk and fsyncs it,
 * unmounts and removes IMAGE: the seconds the writes and the fsync took,
 * or -1.
 */
static double timed_writes(struct bench *b, const char *image, const char *mnt, bool (*writes)(struct bench *, int))
{
	char disk[1200];
	double t = -1;
	pid_t pid = mount_vhdxfs(b, image, mnt, "rw");
	int fd;

	if (pid < 0)
		return -1;
	snprintf(disk, sizeof disk, "%s/disk", mnt);
	fd = open(disk, O_WRONLY);
	if (fd >= 0) {
		double t0 = bench_now();
		bool ok = writes(b, fd) && fsync(fd) == 0;
		close(fd);
		if (ok)
			t = bench_now() - t0;
	}
	unmount_vhdxfs(mnt, pid);
	unlink(image);
	return t;
}

static bool seq_writes(struct bench *b, int fd)
{
	bool ok = true;

	for (uint64_t off = 0; off < b->size && ok; off += 1u << 20)
		ok = pwrite(fd, b->data + off % b->data_len, 1u << 20, (off_t)off) == 1 << 20;
	return ok;
}

/* Sequential 1 MiB writes of the whole disk through a -o rw mount, then fsync: MiB/s or -1. */
static double fuse_seq_write(struct bench *b, const char *image, const char *mnt)
{
	double t;

	unlink(image);
	bench_new_image(image, b->size, 0, NULL, NULL);
	t = timed_writes(b, image, mnt, seq_writes);
	return t < 0 ? -1 : (double)b->size / t / 1048576.0;
}

static bool alloc_writes(struct bench *b, int fd)
{
	const uint64_t *offs = bench_alloc_offsets(b);
	unsigned n = bench_alloc_count(b);
	bool ok = true;

	for (unsigned i = 0; i < n && ok; i++) {
		ok = pwrite(fd, b->data + (i % 1024) * 4096, 4096, (off_t)offs[i]) == 4096;
		if (ok && i % BENCH_ALLOC_EVERY == BENCH_ALLOC_EVERY - 1)
			ok = fsync(fd) == 0;
	}
	return ok;
}

static double fuse_alloc_write(struct bench *b, const char *image, const char *mnt)
{
	double t;

	bench_alloc_offsets(b); /* draw the offsets (bench_rand) before the image is made */
	bench_new_image(image, BENCH_ALLOC_DISK, 1u << 20, NULL, NULL);
	t = timed_writes(b, image, mnt, alloc_writes);
	return t < 0 ? -1 : bench_alloc_count(b) / t;
}

void bench_fig_fuse_writes(struct bench *b)
{
	struct bench_fig *fs = bench_add(5, "fuse-seq-write", "MiB/s", "write of a raw file + fdatasync",
					 BENCH_RATIO_AT_LEAST, 0.8);
	struct bench_fig *fa = bench_add(5, "fuse-rand-alloc", "IOPS", "qemu-io, same writes and flushes",
					 BENCH_RATIO_AT_LEAST, 3.0);
	const char *why = fuse_unavailable(b);
	char image[1100], mnt[1100], raw[1100], qwhy[160] = "";
	double a[16], c[16];

	if (why) {
		bench_skip(fs, "%s", why);
		bench_skip(fa, "%s", why);
		return;
	}
	bench_log(b, "vhdxfs writes");
	bench_path(image, b, "fuse-write.vhdx");
	bench_path(mnt, b, "mnt-rw");
	bench_path(raw, b, "fuse-write.raw");
	for (int r = 0; r < b->runs; r++) {
		a[r] = fuse_seq_write(b, image, mnt);
		c[r] = bench_raw_seq_write(b, raw);
		if (a[r] < 0) {
			bench_skip(fs, "writing through a -o rw mount failed");
			break;
		}
	}
	if (!fs->skip[0]) {
		fs->ours = bench_median(a, b->runs);
		fs->base = bench_median(c, b->runs);
	}
	for (int r = 0; r < b->runs; r++) {
		a[r] = fuse_alloc_write(b, image, mnt);
		if (a[r] < 0) {
			bench_skip(fa, "writing through a -o rw mount failed");
			return;
		}
		c[r] = bench_qemu_alloc(b, qwhy, sizeof qwhy);
		if (c[r] < 0) {
			fa->ours = bench_median(a, r + 1);
			bench_skip(fa, "baseline skipped: %s", qwhy);
			return;
		}
	}
	fa->ours = bench_median(a, b->runs);
	fa->base = bench_median(c, b->runs);
}
