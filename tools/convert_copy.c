/*
 * convert_copy.c - the copy loop of `vhdx convert`, as a two-stage
 * pipeline: a reader thread walks the source's allocation map, reads
 * CHUNK-sized windows into a ring of NSLOT buffers and finds their
 * non-zero 64 KiB pieces, while the calling thread writes those.  Reading
 * the next window while the previous one is written lets the source's
 * reads (and a cold cache's disk reads) overlap the output's writes, which
 * are the slower stage: buffered writes to one file serialise on its inode.
 *
 * Zero extents of the source are skipped by the reader without a buffer,
 * except for a stream output, which gets them as "zeros" slots.  Windows
 * end at CHUNK boundaries of the disk and, for a sparse output, begin at
 * the PIECE holding the first data byte, so writes into an image stay
 * aligned (no read-modify-write of sectors).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convert.h"

/*
 * Bytes per read and per window, at most.  Not more: writes of 2 or 4 MiB
 * into a new file's page cache stalled now and then for 0.3-2 s on our
 * test VM, where 1 MiB writes did not (no reclaim or compaction was
 * counted: most likely the host backing the fresh memory that large
 * folios come from).  Six rounds of a warm 1 GiB convert: 0.19-0.23 s with
 * 1 MiB windows, 0.21-1.37 s (median 0.47) with 4 MiB ones, 0.26-0.93 s
 * for qemu-img, which writes 2 MiB at a time.
 */
#define CHUNK (1u << 20)
#define PIECE (64u << 10)  /* granularity of the all-zero test: holes and skipped writes */
#define NSLOT 8            /* windows in flight between the reader and the writer */

volatile sig_atomic_t convert_interrupted;

/* ---------------------------------------------------------------- the ring */

struct slot {
	uint8_t *buf;
	uint64_t pos;   /* disk offset of buf[0] */
	size_t len;
	bool zeros;     /* a zero extent for a stream: LEN zeros, BUF unused */
	uint64_t upto;  /* the disk is done up to here once this slot is written */
	/* sparse output: the runs of non-zero pieces of BUF, found by the reader */
	struct { uint32_t off, len; } runs[CHUNK / PIECE];
	unsigned n_runs;
};

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slot[NSLOT];
	uint64_t head, tail; /* slots filled / slots written */
	bool eof;            /* the reader is done (ERR says how) */
	bool stop;           /* the writer failed: the reader must stop */
	int err;
	struct convert_src *src;
	bool sparse;
	uint64_t start, end;
};

/*
 * Finds the runs of non-zero PIECE-aligned pieces of the slot's window
 * (disk bytes [pos, pos+len)); the writer then writes each run in one call
 * and leaves the rest alone.  Done on the reader's thread: the writer is
 * the slower stage, and the window is still in this core's cache.
 */
static void find_runs(struct slot *s)
{
	const uint8_t *buf = s->buf;
	size_t len = s->len, n;

	s->n_runs = 0;
	for (size_t at = 0; at < len;) {
		size_t run = 0;
		/* pieces end at PIECE boundaries of the disk */
		while (at < len) {
			n = (size_t)CONVERT_MIN((uint64_t)(len - at), PIECE - (s->pos + at) % PIECE);
			if (!vhdx_buf_is_zero(buf + at, n))
				break;
			at += n;
		}
		while (at + run < len) {
			n = (size_t)CONVERT_MIN((uint64_t)(len - at - run), PIECE - (s->pos + at + run) % PIECE);
			if (vhdx_buf_is_zero(buf + at + run, n))
				break;
			run += n;
		}
		if (run) {
			/* at most one run per two pieces: runs[] (one per piece) cannot overflow */
			s->runs[s->n_runs].off = (uint32_t)at;
			s->runs[s->n_runs].len = (uint32_t)run;
			s->n_runs++;
			at += run;
		}
	}
}

/*
 * The window that copies the data at disk offset AT of [START, END): to the
 * next CHUNK boundary, from AT or, for a sparse output, from the PIECE
 * holding AT (so writes into an image stay aligned).
 */
static void data_window(uint64_t start, uint64_t end, uint64_t at, bool sparse, uint64_t *ws, uint64_t *we)
{
	*ws = sparse ? CONVERT_MAX(start, at - at % PIECE) : at;
	*we = CONVERT_MIN(end, *ws - *ws % CHUNK + CHUNK);
}

/* The reader: fills slots in disk order until END, an error or STOP. */
static void *reader(void *arg)
{
	struct ring *g = arg;
	int r = 0;

	for (uint64_t at = g->start; at < g->end;) {
		struct slot *s;
		uint64_t ext, ws, we;
		bool data;

		if (convert_interrupted)
			break; /* the writer reports it */
		r = convert_src_map(g->src, at, g->end - at, &data, &ext);
		if (r < 0)
			break;
		if (!data && g->sparse) {
			at += ext;
			continue;
		}
		pthread_mutex_lock(&g->mu);
		while (g->head - g->tail == NSLOT && !g->stop)
			pthread_cond_wait(&g->cv, &g->mu);
		bool stop = g->stop;
		pthread_mutex_unlock(&g->mu);
		if (stop)
			break;
		/* only this thread touches the slot until head moves past it */
		s = &g->slot[g->head % NSLOT];
		if (!data) {
			s->zeros = true;
			s->pos = at;
			s->len = (size_t)CONVERT_MIN(ext, CHUNK);
			at += s->len;
		} else {
			data_window(g->start, g->end, at, g->sparse, &ws, &we);
			r = convert_src_read(g->src, s->buf, (size_t)(we - ws), ws);
			if (r < 0)
				break;
			s->zeros = false;
			s->pos = ws;
			s->len = (size_t)(we - ws);
			if (g->sparse)
				find_runs(s);
			at = we;
		}
		s->upto = at;
		pthread_mutex_lock(&g->mu);
		g->head++;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
	}
	pthread_mutex_lock(&g->mu);
	g->eof = true;
	g->err = r;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* Writes the slot: every byte to a stream, the non-zero runs to a sparse output. */
static int put(struct convert_out *out, const struct slot *s, uint64_t base)
{
	if (!convert_out_sparse(out))
		return convert_out_write(out, s->buf, s->len, s->pos - base);
	for (unsigned i = 0; i < s->n_runs; i++) {
		int r = convert_out_write(out, s->buf + s->runs[i].off, s->runs[i].len, s->pos + s->runs[i].off - base);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------ two workers, for a raw file */

/*
 * A raw output file takes its windows in any order, so two workers each
 * read, test and write whole windows of their own: each writes from a
 * window that is still in its own core's cache, where the ring's writer
 * reads every window from the other core's (measured on a warm 1 GiB copy:
 * 0.172-0.177 s against 0.19-0.20 s).  Images keep the ring: their blocks
 * are laid out in the order they are written, which must not depend on
 * thread timing, and a stream needs its bytes in order.
 */
struct share {
	pthread_mutex_t mu;          /* the map walk: at, the source's read-ahead state, err */
	struct convert_src *src;
	struct convert_out *out;
	uint64_t at, start, end;     /* disk bytes [start, end); windows are claimed from AT on */
	_Atomic uint64_t done;       /* bytes written or skipped as zeros */
	int err;                     /* the first error (printed), or -EINTR */
};

/* Claims the next window [*WS, *WE) holding data; false at the end or after an error.  Under mu. */
static bool claim(struct share *sh, uint64_t *ws, uint64_t *we, uint64_t *counted)
{
	while (sh->at < sh->end && sh->err == 0) {
		uint64_t ext;
		bool data;
		int r;

		if (convert_interrupted) {
			sh->err = -EINTR;
			break;
		}
		r = convert_src_map(sh->src, sh->at, sh->end - sh->at, &data, &ext);
		if (r < 0) {
			sh->err = r;
			break;
		}
		if (!data) {
			sh->at += ext;
			atomic_fetch_add(&sh->done, ext);
			continue;
		}
		data_window(sh->start, sh->end, sh->at, true, ws, we);
		*counted = *we - sh->at;
		sh->at = *we;
		return true;
	}
	return false;
}

/* One worker's loop; the calling thread's (SHOW) also keeps the progress line. */
static void work(struct share *sh, struct tool_progress *prog, bool show)
{
	struct slot *s = calloc(1, sizeof *s);
	uint64_t ws, we, counted;
	int r = 0;

	if (!s || posix_memalign((void **)&s->buf, 4096, CHUNK) != 0) {
		tool_error("convert", "out of memory");
		r = -ENOMEM;
	}
	for (;;) {
		bool more;

		pthread_mutex_lock(&sh->mu);
		if (r < 0 && sh->err == 0)
			sh->err = r;
		more = r == 0 && claim(sh, &ws, &we, &counted);
		pthread_mutex_unlock(&sh->mu);
		if (!more)
			break;
		r = convert_src_read(sh->src, s->buf, (size_t)(we - ws), ws);
		if (r == 0) {
			s->pos = ws;
			s->len = (size_t)(we - ws);
			find_runs(s);
			r = put(sh->out, s, sh->start);
		}
		if (r == 0) {
			uint64_t done = atomic_fetch_add(&sh->done, counted) + counted;
			if (show)
				tool_progress_show(prog, done, false);
		}
	}
	if (s)
		free(s->buf);
	free(s);
}

static void *worker(void *arg)
{
	work(arg, NULL, false);
	return NULL;
}

static int copy_to_file(struct convert_src *src, struct convert_out *out, uint64_t start, uint64_t end,
			struct tool_progress *prog)
{
	struct share sh = { .src = src, .out = out, .at = start, .start = start, .end = end };
	pthread_t th;
	int ret;

	pthread_mutex_init(&sh.mu, NULL);
	ret = pthread_create(&th, NULL, worker, &sh);
	work(&sh, prog, true);
	if (ret == 0)
		pthread_join(th, NULL);
	pthread_mutex_destroy(&sh.mu);
	if (sh.err == 0 && convert_interrupted)
		sh.err = -EINTR;
	if (sh.err == -EINTR)
		tool_error("convert", "interrupted by signal %d", (int)convert_interrupted);
	return sh.err;
}

/* ------------------------------------------------------------ the copy */

int convert_copy(struct convert_src *src, struct convert_out *out, uint64_t start, uint64_t end,
		 struct tool_progress *prog)
{
	struct ring g;
	pthread_t th;
	uint8_t *zeros = NULL;
	int r = 0, ret;
	unsigned n = 0;

	if (!out->img && !out->stream)
		return copy_to_file(src, out, start, end, prog);
	memset(&g, 0, sizeof g);
	g.src = src;
	g.sparse = convert_out_sparse(out);
	g.start = start;
	g.end = end;
	for (n = 0; n < NSLOT; n++)
		if (posix_memalign((void **)&g.slot[n].buf, 4096, CHUNK) != 0)
			break;
	if (n < NSLOT || (!g.sparse && !(zeros = calloc(1, CHUNK)))) {
		tool_error("convert", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	ret = pthread_create(&th, NULL, reader, &g);
	if (ret) {
		tool_error("convert", "cannot start the reader thread: %s", strerror(ret));
		r = -ret;
		goto out_sync;
	}
	for (;;) {
		struct slot *s;
		uint64_t upto;

		pthread_mutex_lock(&g.mu);
		while (g.head == g.tail && !g.eof)
			pthread_cond_wait(&g.cv, &g.mu);
		if (g.head == g.tail || g.err < 0) {
			/* nothing left: done; or the reader's error (already printed) */
			r = g.err;
			pthread_mutex_unlock(&g.mu);
			break;
		}
		s = &g.slot[g.tail % NSLOT];
		pthread_mutex_unlock(&g.mu);

		if (convert_interrupted) {
			r = -EINTR;
		} else if (s->zeros) {
			r = convert_out_write(out, zeros, s->len, s->pos - start);
		} else {
			r = put(out, s, start);
		}
		upto = s->upto; /* the slot is the reader's again after tail++ */
		pthread_mutex_lock(&g.mu);
		if (r < 0)
			g.stop = true;
		else
			g.tail++;
		pthread_cond_broadcast(&g.cv);
		pthread_mutex_unlock(&g.mu);
		if (r < 0)
			break;
		tool_progress_show(prog, upto - start, false);
	}
	pthread_join(th, NULL);
	if (r == 0 && convert_interrupted)
		r = -EINTR;
	if (r == -EINTR)
		tool_error("convert", "interrupted by signal %d", (int)convert_interrupted);
out_sync:
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
out:
	for (unsigned i = 0; i < n; i++)
		free(g.slot[i].buf);
	free(zeros);
	return r;
}
