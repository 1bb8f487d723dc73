/*
 * bench.h - pieces shared by `vhdx bench` (cmd_bench.c) and its figures
 * (bench_lib.c: the library against pread/pwrite of a raw file and the
 * 64 TiB open; bench_cmds.c: whole commands against qemu-img, qemu-io and
 * xxhsum; bench_fuse.c: vhdxfs against vhdimount and the raw file;
 * bench_scale.c: figure 8, how the cost grows with chain depth, virtual
 * size and bytes moved; bench_nbd.c: figure 9, the nbdkit plugin against
 * qemu-nbd and nbdkit's file plugin).
 *
 * Every figure is measured as the median of --runs runs, with its
 * baseline measured in the same run right beside it, so that the ratio
 * stays meaningful on a loaded machine even where the absolute numbers
 * do not.  A figure records why it was skipped instead of a number.
 */
#ifndef VHDX_BENCH_H
#define VHDX_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vhdx_image;

/* How a figure is judged. */
enum bench_goal {
	BENCH_RATIO_AT_LEAST, /* ours / baseline >= target (higher is better) */
	BENCH_RATIO_AT_MOST,  /* ours / baseline <= target: the baseline is a limit (time, memory) */
};

struct bench_fig {
	unsigned figure;      /* the number of the figure, 1..7, or 8 (scaling) */
	const char *name;     /* short id, e.g. "seq-read" */
	const char *unit;     /* of ours and baseline */
	const char *baseline_is; /* what the baseline is */
	enum bench_goal goal;
	double target;
	double ours, base;    /* < 0: not measured */
	char skip[160];       /* non-empty: why ours or the baseline was not measured */
};

/* The whole run: the options and the state every figure needs. */
struct bench {
	uint64_t size;        /* bytes of the test disks */
	int runs;
	char dir[512];        /* the temporary folder, removed at the end */
	char vhdx_exe[1024];  /* this program (for `vhdx convert` and `vhdx hash`) */
	char vhdxfs_exe[1024]; /* "" if not found */
	uint8_t *data;        /* random bytes, data_len long, written into every disk */
	size_t data_len;
	bool quiet;
	/* figure 1's image and its raw twin, made once by bench_prepare_pair() */
	char vhdx[1100], raw[1100];
	bool pair_ready;
};

#define BENCH_MAX_FIGS 64
/* The figures measured so far, in order (bench_util.c). */
extern struct bench_fig bench_figs[BENCH_MAX_FIGS];
extern unsigned bench_nfigs;

/** Adds a figure to the run's list and returns it (ours and base start at -1). */
struct bench_fig *bench_add(unsigned figure, const char *name, const char *unit, const char *baseline_is,
			    enum bench_goal goal, double target);
/** Marks F skipped with a reason (printf format). */
void bench_skip(struct bench_fig *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Monotonic seconds. */
double bench_now(void);
/** The median of V[0..N-1] (sorts V). */
double bench_median(double *v, int n);
/** Next number of the benchmark's fixed xorshift sequence (repeatable runs). */
uint64_t bench_rand(void);
/** Fills P with N random bytes (N a multiple of 8). */
void bench_fill_random(uint8_t *p, size_t n);
/** Prints a progress line on stderr unless --quiet. */
void bench_log(const struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Exits 1 with the library's last message: the benchmark's own setup failed. */
void bench_die(const char *what) __attribute__((noreturn));
/** Formats DIR/NAME into OUT (size 1100). */
void bench_path(char *out, const struct bench *b, const char *name);

/** True if the program NAME is on PATH. */
bool bench_have(const char *name);
/**
 * Runs ARGV (a NULL-terminated vector; ARGV[0] looked up on PATH) with
 * standard input from IN (NULL: /dev/null) and standard output to OUT
 * (NULL: /dev/null), standard error to /dev/null (unless VHDX_BENCH_DEBUG
 * is set); returns the seconds it took, or -1 if it could not run or
 * exited non-zero.
 */
double bench_run(char *const argv[], const char *in, const char *out);
/** bench_run() that also gives the child's CPU seconds (user + system) in *CPU. */
double bench_run_cpu(char *const argv[], const char *in, const char *out, double *cpu);
/** Drops the page cache of PATH (posix_fadvise DONTNEED after fdatasync); 0 or -errno. */
int bench_drop_cache(const char *path);
/** Reads all of PATH once, to put it into the page cache. */
void bench_warm(const char *path);

/**
 * Creates PATH, a dynamic VHDX of SIZE bytes and block size BS (0: the
 * library's default) or, when PARENT is set, its child (SIZE 0: the
 * parent's), replacing an old file; and when IMG is set, opens it
 * read-write into *IMG.  Exits with the library's message on failure.
 */
void bench_new_image(const char *path, uint64_t size, uint32_t bs, const char *parent, struct vhdx_image **img);
/** Creates a dynamic VHDX of SIZE bytes (block BS) full of the run's data, and its raw twin. */
void bench_make_pair(struct bench *b, const char *vhdx, const char *raw, uint64_t size, uint32_t bs);
/**
 * Opens PATH in a new process of this program (`vhdx bench --probe-open`):
 * the open's wall seconds (SECS may be NULL), peak memory growth in bytes
 * and CPU seconds.  0, or -1.
 */
int bench_open_probe(struct bench *b, const char *path, double *secs, double *bytes, double *cpu);
/** Makes figure 1's pair (b->vhdx, b->raw) once. */
void bench_prepare_pair(struct bench *b);

/* The figures, by the numbers: each adds its rows with bench_add(). */
void bench_fig_seq_read(struct bench *b);      /* 1 */
void bench_fig_rand_read(struct bench *b);     /* 2 */
void bench_fig_convert(struct bench *b);       /* 3 */
void bench_fig_fuse_read(struct bench *b);     /* 4 */
void bench_fig_writes(struct bench *b);        /* 5 (library) */
void bench_fig_fuse_writes(struct bench *b);   /* 5 (vhdxfs) */
void bench_fig_open_64t(struct bench *b);      /* 6 */
void bench_fig_hash(struct bench *b);          /* 7 */
void bench_fig_scale(struct bench *b);         /* 8: chain depth, virtual size, bytes moved */
void bench_fig_nbd(struct bench *b);           /* 9: serving over NBD (bench_nbd.c) */

/** The hidden `vhdx bench --probe-open PATH`: one timed open, peak memory growth; prints "SECONDS BYTES". */
int bench_probe_open(const char *path);

/* Random allocating writes of figure 5: how many, and their offsets in an 8 GiB disk of 1 MiB blocks. */
#define BENCH_ALLOC_DISK (8ull << 30)
#define BENCH_ALLOC_EVERY 64 /* a flush after every 64 writes */
unsigned bench_alloc_count(const struct bench *b);
const uint64_t *bench_alloc_offsets(const struct bench *b);
/** Writes the run's data sequentially into a new raw file at PATH, 1 MiB at a time, + fdatasync; MiB/s. */
double bench_raw_seq_write(struct bench *b, const char *path);
/** qemu-io doing figure 5's allocating writes and flushes on a new VHDX: writes/s, or -1 (reason in WHY). */
double bench_qemu_alloc(struct bench *b, char *why, size_t whylen);

#endif
