/*
 * fault.c - the fault backend (fault.h; DESIGN.md "L0"): a struct vhdx_io
 * over a layer's file io that asks the engine about every call and carries
 * out its answer.  Our backends' contract is all-or-error, so every fault
 * that moves only part of the data (short, torn) still ends in an error:
 * the library never sees a silent short transfer, only bit flips are silent
 * on purpose.
 *
 * Crash simulation: while the engine has a crash rule, each write and
 * truncate first saves the bytes it is about to replace (its pre-image) and
 * the file size before it; a successful flush forgets them, since what a
 * flush made durable survives a power cut.  When a crash fires, the
 * pre-images are written back newest first, which leaves the lower file
 * exactly as the last flush left it, and the io goes dead: every later call
 * fails with EIO.  The other fault ios of the same engine see the new crash
 * epoch on their next call (or at close) and do the same, because a power
 * cut hits every file at once.  Pre-images are bounded per io by the
 * engine's crash limit (256 MiB by default): past it the io drops them and
 * refuses to simulate a crash until its next flush (see libvhdx.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/grow.h"
#include "internal.h"
#include "io/fault.h"

struct preimage {
	uint64_t off;       /* where DATA goes back */
	uint64_t prev_size; /* file size before the change */
	size_t len;         /* bytes of DATA: the part of the change inside prev_size */
	uint8_t *data;
};

struct fault_io {
	struct vhdx_io io;
	struct vhdx_io *lower;  /* owned */
	struct vhdx_faults *f;  /* one reference */
	const char *base;       /* last component of io.name */
	uint32_t epoch;         /* crash epoch when opened */
	atomic_bool overflow;   /* pre-images dropped: a crash cannot be simulated until the next flush */
	pthread_mutex_t lock;   /* the fields below; held across tracked writes, flushes and restores */
	bool dead;              /* behind a power cut */
	struct preimage *recs;
	size_t nrec, cap;
	uint64_t rec_bytes;
};

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *ename(int err, char *buf, size_t n)
{
	return vhdx_fault_errno_name(err, buf, n);
}

static void req_init(struct fault_io *fi, struct vhdx_fault_req *q, enum vhdx_fault_op op)
{
	memset(q, 0, sizeof *q);
	q->op = op;
	q->path = fi->io.name;
	q->base = fi->base;
	q->voff = VHDX_NO_VOFF;
	q->crash_unavailable = atomic_load_explicit(&fi->overflow, memory_order_relaxed);
}

/* A read or write: file range, and the tag and virtual offset the wrapper published. */
static void req_data(struct fault_io *fi, struct vhdx_fault_req *q, enum vhdx_fault_op op, size_t len, uint64_t off)
{
	const struct vhdx_io_ctx *ctx = vhdx_io_current();

	req_init(fi, q, op);
	q->has_foff = true;
	q->foff = off;
	q->len = len;
	q->has_tag = true;
	q->tag = ctx->tag;
	q->voff = ctx->tag == VHDX_TAG_PAYLOAD ? ctx->voff : VHDX_NO_VOFF;
}

/* ---------------------------------------------------------------- pre-images */

static void drop_preimages(struct fault_io *fi)
{
	for (size_t i = 0; i < fi->nrec; i++)
		free(fi->recs[i].data);
	fi->nrec = 0;
	fi->rec_bytes = 0;
}

/*
 * Saves what [OFF, OFF+LEN) holds now and the current size, before a write
 * (or, with LEN the rest of the file, a shrinking truncate).  Past the
 * crash limit every pre-image is dropped and the io marked overflowed.
 * Caller holds fi->lock.  0 or -errno (the lower read failed).
 */
static int keep_preimage(struct fault_io *fi, uint64_t off, uint64_t len, uint64_t limit)
{
	struct preimage *p;
	uint64_t size, keep = 0;
	int ret;

	if (atomic_load_explicit(&fi->overflow, memory_order_relaxed))
		return 0;
	ret = fi->lower->m->get_size(fi->lower, &size);
	if (ret < 0)
		return ret;
	if (off < size)
		keep = VHDX_MIN(len, size - off);
	if (fi->rec_bytes + keep > limit || keep > SIZE_MAX) {
		drop_preimages(fi);
		atomic_store_explicit(&fi->overflow, true, memory_order_relaxed);
		return 0;
	}
	if (grow(&fi->recs, &fi->cap, fi->nrec + 1, sizeof *fi->recs, 16) < 0)
		return vhdx_err(ENOMEM, "out of memory keeping a pre-image for crash simulation");
	p = &fi->recs[fi->nrec];
	memset(p, 0, sizeof *p);
	p->off = off;
	p->prev_size = size;
	p->len = (size_t)keep;
	if (keep) {
		p->data = malloc((size_t)keep);
		if (!p->data)
			return vhdx_err(ENOMEM, "out of memory keeping a pre-image for crash simulation");
		ret = fi->lower->m->pread(fi->lower, p->data, (size_t)keep, off);
		if (ret < 0) {
			free(p->data);
			return ret;
		}
	}
	fi->nrec++;
	fi->rec_bytes += keep;
	return 0;
}

/*
 * Undoes every change since the last flush, newest first: the size goes
 * back first (so the old bytes fit again, or the extension is cut), then
 * the old bytes.  Caller holds fi->lock.  0 or the first -errno.
 */
static int restore(struct fault_io *fi)
{
	int ret = 0;

	for (size_t i = fi->nrec; i-- > 0;) {
		const struct preimage *p = &fi->recs[i];
		uint64_t size;
		int r = fi->lower->m->get_size(fi->lower, &size);
		if (r == 0 && size != p->prev_size)
			r = fi->lower->m->set_size(fi->lower, p->prev_size);
		if (r == 0 && p->len)
			r = fi->lower->m->pwrite(fi->lower, p->data, p->len, p->off);
		if (r < 0 && ret == 0)
			ret = r;
	}
	drop_preimages(fi);
	return ret;
}

/* Writes through to the lower io, keeping the pre-image first when TRACK. */
static int lower_pwrite(struct fault_io *fi, const void *buf, size_t len, uint64_t off, bool track, uint64_t limit)
{
	int ret;

	if (!track)
		return fi->lower->m->pwrite(fi->lower, buf, len, off);
	/* the lock makes "save the old bytes, write the new" one step for concurrent writers */
	pthread_mutex_lock(&fi->lock);
	ret = keep_preimage(fi, off, len, limit);
	if (ret == 0)
		ret = fi->lower->m->pwrite(fi->lower, buf, len, off);
	pthread_mutex_unlock(&fi->lock);
	return ret;
}

/* ---------------------------------------------------------------- crash */

/* The call that meets a crash epoch newer than the io: undo, die, fail. */
static int check_dead(struct fault_io *fi, const struct vhdx_fault_req *q)
{
	unsigned rule;

	if (vhdx_fault_epoch(fi->f) == fi->epoch)
		return 0;
	pthread_mutex_lock(&fi->lock);
	if (!fi->dead) {
		restore(fi); /* a failed restore cannot be reported better than by the EIO below */
		fi->dead = true;
	}
	pthread_mutex_unlock(&fi->lock);
	rule = vhdx_fault_dead_call(fi->f, q);
	return vhdx_err(EIO, "the disk is gone after the injected crash of fault rule %u", rule);
}

/*
 * Carries out a crash decision on this io: undo the unflushed writes, then
 * (torn=) persist the first sectors of the write in BUF, and fail.
 */
static int do_crash(struct fault_io *fi, const struct vhdx_fault_decision *d, const void *buf, size_t len,
		    uint64_t off)
{
	size_t dropped, torn = 0;
	int ret = 0;
	char eb[24];

	if (d->crash_unavailable)
		return vhdx_err(ENOMEM, "injected crash (fault rule %u) cannot be simulated: the unflushed writes since the last flush exceed the crash limit of %llu bytes of pre-images",
				d->rule, (unsigned long long)d->crash_limit);
	pthread_mutex_lock(&fi->lock);
	dropped = fi->nrec;
	if (!fi->dead) {
		ret = restore(fi);
		fi->dead = true;
	}
	if (ret == 0 && buf && (d->actions & VHDX_FACT_TORN)) {
		uint64_t bytes;
		if (vhdx_mul_ovf(d->torn_sectors, 512, &bytes))
			bytes = UINT64_MAX;
		torn = (size_t)VHDX_MIN(bytes, (uint64_t)len);
		if (torn)
			ret = fi->lower->m->pwrite(fi->lower, buf, torn, off);
	}
	pthread_mutex_unlock(&fi->lock);
	if (ret < 0)
		return vhdx_err_prefix(-EIO, "injected crash (fault rule %u): undoing the unflushed writes failed", d->rule);
	if (d->actions & VHDX_FACT_TORN)
		return vhdx_err(d->err, "injected crash (fault rule %u): power cut, %zu unflushed writes dropped, %zu of %zu bytes of this write persisted (%s)",
				d->rule, dropped, torn, len, ename(d->err, eb, sizeof eb));
	return vhdx_err(d->err, "injected crash (fault rule %u): power cut, %zu unflushed writes dropped (%s)", d->rule,
			dropped, ename(d->err, eb, sizeof eb));
}

/* "injected EIO (fault rule 2)", with the virtual range for payload I/O */
static int injected(const struct vhdx_fault_decision *d, const struct vhdx_fault_req *q)
{
	char eb[24];

	if (q->voff != VHDX_NO_VOFF && q->len)
		return vhdx_err(d->err, "injected %s (fault rule %u; virtual disk bytes 0x%llx-0x%llx)",
				ename(d->err, eb, sizeof eb), d->rule, (unsigned long long)q->voff,
				(unsigned long long)(q->voff + q->len - 1));
	return vhdx_err(d->err, "injected %s (fault rule %u)", ename(d->err, eb, sizeof eb), d->rule);
}

static void flip_bits(uint8_t *p, const struct vhdx_fault_decision *d)
{
	for (unsigned i = 0; i < d->nflip; i++)
		p[d->flip[i] / 8] ^= (uint8_t)(1u << (d->flip[i] % 8));
}

/*
 * The engine's answer for a call without data (flush, lock, close): the
 * crash epoch first, then the rules; a crash decision is carried out here.
 * 0 with *D filled (D->rule 0: go on), or -errno.
 */
static int eval_plain(struct fault_io *fi, enum vhdx_fault_op op, struct vhdx_fault_req *q,
		      struct vhdx_fault_decision *d)
{
	int ret;

	req_init(fi, q, op);
	ret = check_dead(fi, q);
	if (ret < 0)
		return ret;
	vhdx_fault_eval(fi->f, q, d);
	sleep_ms(d->delay_ms);
	if (d->actions & VHDX_FACT_CRASH)
		return do_crash(fi, d, NULL, 0, 0);
	return 0;
}

/* ---------------------------------------------------------------- methods */

/* What a rule decided for a read: pass, corrupt or cut it short, or fail it. */
static int read_decided(struct fault_io *fi, void *buf, size_t len, uint64_t off, const struct vhdx_fault_req *q,
			const struct vhdx_fault_decision *d)
{
	char eb[24];
	int ret;

	if (!d->rule) {
		ret = fi->lower->m->pread(fi->lower, buf, len, off);
		if (ret == 0)
			vhdx_fault_read_ok(fi->f, q, d->seq_mark); /* a failed read of these bytes was read again */
		return ret;
	}
	if (d->actions & VHDX_FACT_FLIP) {
		ret = fi->lower->m->pread(fi->lower, buf, len, off);
		if (ret == 0)
			flip_bits(buf, d);
		return ret;
	}
	if (d->actions & VHDX_FACT_SHORT) {
		size_t n = (size_t)VHDX_MIN(d->short_bytes, (uint64_t)len);
		ret = n ? fi->lower->m->pread(fi->lower, buf, n, off) : 0;
		if (ret < 0)
			return ret;
		return vhdx_err(d->err, "injected %s after a short read of %zu of %zu bytes (fault rule %u)",
				ename(d->err, eb, sizeof eb), n, len, d->rule);
	}
	return injected(d, q);
}

/* What a rule decided for a write: pass, corrupt, tear or cut it short, or fail it. */
static int write_decided(struct fault_io *fi, const void *buf, size_t len, uint64_t off,
			 const struct vhdx_fault_req *q, const struct vhdx_fault_decision *d)
{
	char eb[24];
	int ret;

	if (!d->rule)
		return lower_pwrite(fi, buf, len, off, d->track, d->crash_limit);
	if (d->actions & VHDX_FACT_FLIP) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			return vhdx_err(ENOMEM, "out of memory");
		memcpy(copy, buf, len);
		flip_bits(copy, d);
		ret = lower_pwrite(fi, copy, len, off, d->track, d->crash_limit);
		free(copy);
		return ret;
	}
	if (d->actions & (VHDX_FACT_SHORT | VHDX_FACT_TORN)) {
		uint64_t want = d->short_bytes;
		size_t n;
		if ((d->actions & VHDX_FACT_TORN) && vhdx_mul_ovf(d->torn_sectors, 512, &want))
			want = UINT64_MAX;
		n = (size_t)VHDX_MIN(want, (uint64_t)len);
		ret = n ? lower_pwrite(fi, buf, n, off, d->track, d->crash_limit) : 0;
		if (ret < 0)
			return ret;
		if (d->actions & VHDX_FACT_TORN)
			return vhdx_err(d->err, "injected %s after a torn write: %zu of %zu sectors persisted (fault rule %u)",
					ename(d->err, eb, sizeof eb), n / 512, (len + 511) / 512, d->rule);
		return vhdx_err(d->err, "injected %s after a short write of %zu of %zu bytes (fault rule %u)",
				ename(d->err, eb, sizeof eb), n, len, d->rule);
	}
	return injected(d, q);
}

/*
 * A read (RBUF) or a write (WBUF) while rules are armed: the crash epoch,
 * then the rules; a crash drops the unflushed writes (and this write), the
 * other decisions are carried out by read_decided or write_decided.
 */
static int fault_data(struct fault_io *fi, enum vhdx_fault_op op, void *rbuf, const void *wbuf, size_t len,
		      uint64_t off)
{
	struct vhdx_fault_req q;
	struct vhdx_fault_decision d;
	int ret;

	req_data(fi, &q, op, len, off);
	ret = check_dead(fi, &q);
	if (ret < 0)
		return ret;
	vhdx_fault_eval(fi->f, &q, &d);
	sleep_ms(d.delay_ms);
	if (op == VHDX_FOP_READ) {
		if (d.rule && (d.actions & VHDX_FACT_CRASH))
			return do_crash(fi, &d, NULL, 0, 0);
		return read_decided(fi, rbuf, len, off, &q, &d);
	}
	if (d.rule && (d.actions & VHDX_FACT_CRASH))
		return do_crash(fi, &d, wbuf, len, off);
	return write_decided(fi, wbuf, len, off, &q, &d);
}

static int fault_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct fault_io *fi = (struct fault_io *)io;

	if (vhdx_fault_idle(fi->f, fi->epoch))
		return fi->lower->m->pread(fi->lower, buf, len, off);
	return fault_data(fi, VHDX_FOP_READ, buf, NULL, len, off);
}

static int fault_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct fault_io *fi = (struct fault_io *)io;

	if (vhdx_fault_idle(fi->f, fi->epoch))
		return fi->lower->m->pwrite(fi->lower, buf, len, off);
	return fault_data(fi, VHDX_FOP_WRITE, NULL, buf, len, off);
}

static int fault_flush(struct vhdx_io *io)
{
	struct fault_io *fi = (struct fault_io *)io;
	int ret;

	if (!vhdx_fault_idle(fi->f, fi->epoch)) {
		struct vhdx_fault_req q;
		struct vhdx_fault_decision d;

		ret = eval_plain(fi, VHDX_FOP_FLUSH, &q, &d);
		if (ret < 0)
			return ret;
		if (d.rule)
			return injected(&d, &q);
	}
	/* the lock keeps a tracked write from landing between the flush and forgetting its pre-image */
	pthread_mutex_lock(&fi->lock);
	ret = fi->lower->m->flush(fi->lower);
	if (ret == 0) {
		/* durable now: a later crash must not undo it */
		drop_preimages(fi);
		atomic_store_explicit(&fi->overflow, false, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fi->lock);
	return ret;
}

static int fault_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct fault_io *fi = (struct fault_io *)io;

	return fi->lower->m->get_size(fi->lower, size);
}

static int fault_set_size(struct vhdx_io *io, uint64_t size)
{
	struct fault_io *fi = (struct fault_io *)io;
	struct vhdx_fault_req q;
	struct vhdx_fault_decision d;
	uint64_t cur;
	int ret;

	if (vhdx_fault_idle(fi->f, fi->epoch))
		return fi->lower->m->set_size(fi->lower, size);
	req_init(fi, &q, VHDX_FOP_TRUNCATE);
	q.has_foff = true;
	q.foff = size;
	ret = check_dead(fi, &q);
	if (ret < 0)
		return ret;
	vhdx_fault_eval(fi->f, &q, &d);
	sleep_ms(d.delay_ms);
	if (d.actions & VHDX_FACT_CRASH)
		return do_crash(fi, &d, NULL, 0, 0);
	if (d.rule)
		return injected(&d, &q);
	if (!d.track)
		return fi->lower->m->set_size(fi->lower, size);
	pthread_mutex_lock(&fi->lock);
	ret = fi->lower->m->get_size(fi->lower, &cur);
	if (ret == 0)
		ret = keep_preimage(fi, size, cur > size ? cur - size : 0, d.crash_limit);
	if (ret == 0)
		ret = fi->lower->m->set_size(fi->lower, size);
	pthread_mutex_unlock(&fi->lock);
	return ret;
}

/*
 * A descriptor lets zero-copy readers (vhdxfs splicing reads) bypass the
 * rules, so there is none while any rule is active or after a crash.  An
 * idle engine could not act on a read anyway: handing out the lower file's
 * descriptor then keeps zero-copy for mounts that carry an engine only so
 * that rules can be added later.  A rule added while a reader holds the
 * descriptor applies from that reader's next request on.
 */
static int fault_get_fd(struct vhdx_io *io)
{
	struct fault_io *fi = (struct fault_io *)io;

	if (!vhdx_fault_idle(fi->f, fi->epoch) || !fi->lower->m->get_fd)
		return -1;
	return fi->lower->m->get_fd(fi->lower);
}

static void fault_close(struct vhdx_io *io)
{
	struct fault_io *fi = (struct fault_io *)io;

	pthread_mutex_lock(&fi->lock);
	/* a power cut that this io never saw still undoes its unflushed writes */
	if (!fi->dead && vhdx_fault_epoch(fi->f) != fi->epoch)
		restore(fi);
	drop_preimages(fi);
	pthread_mutex_unlock(&fi->lock);
	free(fi->recs);
	pthread_mutex_destroy(&fi->lock);
	vhdx_fault_unref(fi->f);
	vhdx_io_close(fi->lower);
	vhdx_io_fini(io);
	free(fi);
}

/*
 * op=lock rules act on taking a lock (not on dropping one): err=EBUSY
 * stands for another process holding the file, and the wrapper's message
 * then says "in use ... (injected EBUSY, fault rule N)".
 */
static int fault_lock(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	struct fault_io *fi = (struct fault_io *)io;
	struct vhdx_fault_req q;
	struct vhdx_fault_decision d;
	char eb[24];
	int ret;

	if (mode != VHDX_LOCK_NONE && !vhdx_fault_idle(fi->f, fi->epoch)) {
		ret = eval_plain(fi, VHDX_FOP_LOCK, &q, &d);
		if (ret < 0)
			return ret;
		if (d.rule && d.err == EBUSY) {
			snprintf(held->note, sizeof held->note, "injected %s, fault rule %u", ename(d.err, eb, sizeof eb),
				 d.rule);
			return -EBUSY;
		}
		if (d.rule)
			return injected(&d, &q);
	}
	return vhdx_io_pass_lock(fi->lower, mode, held);
}

static int fault_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	return vhdx_io_pass_lock_test(((struct fault_io *)io)->lower, held);
}

static const struct vhdx_io_methods fault_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = fault_pread,
	.pwrite = fault_pwrite,
	.flush = fault_flush,
	.get_size = fault_get_size,
	.set_size = fault_set_size,
	.close = fault_close,
	.get_fd = fault_get_fd,
	.lock = fault_lock,
	.lock_test = fault_lock_test,
};

int vhdx_io_fault_new(struct vhdx_faults *f, struct vhdx_io *lower, struct vhdx_io **out)
{
	struct fault_io *fi = calloc(1, sizeof *fi);
	const char *slash;
	int ret;

	if (!fi) {
		vhdx_io_close(lower);
		return vhdx_err(ENOMEM, "out of memory");
	}
	ret = vhdx_io_init(&fi->io, &fault_methods, lower->name, lower->readonly);
	if (ret < 0) {
		free(fi);
		vhdx_io_close(lower);
		return ret;
	}
	fi->lower = lower;
	fi->f = f;
	vhdx_fault_ref(f);
	fi->epoch = vhdx_fault_epoch(f);
	atomic_init(&fi->overflow, false);
	pthread_mutex_init(&fi->lock, NULL);
	slash = strrchr(fi->io.name, '/');
	fi->base = slash ? slash + 1 : fi->io.name;
	*out = &fi->io;
	return 0;
}

int vhdx_io_fault_close_check(struct vhdx_io *io)
{
	struct fault_io *fi = (struct fault_io *)io;
	struct vhdx_fault_req q;
	struct vhdx_fault_decision d;
	int ret;

	if (!io || io->m != &fault_methods)
		return 0;
	if (vhdx_fault_idle(fi->f, fi->epoch))
		return 0;
	ret = eval_plain(fi, VHDX_FOP_CLOSE, &q, &d);
	if (ret < 0)
		return ret;
	if (d.rule)
		return injected(&d, &q);
	return 0;
}

size_t vhdx_io_fault_pending(struct vhdx_io *io)
{
	struct fault_io *fi = (struct fault_io *)io;
	size_t n;

	if (!io || io->m != &fault_methods)
		return 0;
	pthread_mutex_lock(&fi->lock);
	n = fi->nrec;
	pthread_mutex_unlock(&fi->lock);
	return n;
}
