/*
 * fault_engine.c - struct vhdx_faults, the fault engine (fault.h): the rule
 * set behind one mutex, the evaluation of each call against every rule, the
 * ring of recorded events and the counters, and the crash epoch that tells
 * every fault io of the engine that the power went off.
 *
 * Cost when idle: the fault backend first calls vhdx_fault_idle(), one
 * atomic load of `state` = (crash epoch << 32) | number of rules.  Only a
 * call made while rules exist (or after a crash) takes the mutex.
 *
 * The public vhdx_faults_* functions that read or change the engine's state
 * are here, next to that state; faults.c holds the ones that bring rules in
 * from text and files.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/grow.h"
#include "common/textbuf.h"
#include "internal.h"
#include "io/fault.h"

#define DEFAULT_EVENT_LIMIT 10000
#define DEFAULT_CRASH_LIMIT (256 * VHDX_MiB)

/*
 * A failed read (err=, short=) waits for a later successful read of the
 * same file that overlaps its range: a kernel whose readahead failed drops
 * those pages and reads the ones it needs again later, so the failure
 * changed nothing.  The event log says which failed reads were read again
 * (reread=yes) and which never were (reread=no), so that a test can tell a
 * fault the reader absorbed from one nobody noticed.
 */
enum reread { REREAD_NA, REREAD_NO, REREAD_YES };

struct event {
	uint64_t seq, time_ns;
	unsigned rule;
	char *rule_text;
	enum vhdx_fault_op op;
	char *file;
	uint64_t foff, len, voff;
	int tag; /* -1: none */
	const char *action;
	char detail[96];
	int error;
	enum reread reread; /* failed reads: was the range read again since (issue #16) */
};

struct vhdx_faults {
	atomic_uint_fast64_t state; /* (crash epoch << 32) | rules: the idle test's one load */
	atomic_uint refs;
	atomic_uint awaiting_reread; /* events of the ring with REREAD_NO: a successful read looks only then */
	pthread_mutex_t lock;       /* everything below */
	struct vhdx_fault_rule **rules;
	size_t n, cap;
	unsigned next_id;
	unsigned ncrash;            /* rules with a crash action */
	uint64_t crash_limit;
	unsigned crash_rule;        /* the rule of the last crash, for after-crash events */
	/* event ring: the last ring_cap events, oldest at ring_first */
	struct event *ring;
	size_t ring_cap, ring_len, ring_first;
	uint64_t next_seq;
	uint64_t t0_ns;
	struct vhdx_faults_stats st;
	void (*cb)(const struct vhdx_fault_event *ev, void *arg);
	void *cb_arg;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Publishes the rule count into `state` (caller holds the lock). */
static void publish(struct vhdx_faults *f)
{
	uint64_t s = atomic_load_explicit(&f->state, memory_order_relaxed);

	atomic_store_explicit(&f->state, (s & ~(uint64_t)UINT32_MAX) | (uint32_t)f->n, memory_order_release);
}

bool vhdx_fault_idle(struct vhdx_faults *f, uint32_t epoch)
{
	return atomic_load_explicit(&f->state, memory_order_acquire) == (uint64_t)epoch << 32;
}

uint32_t vhdx_fault_epoch(struct vhdx_faults *f)
{
	return (uint32_t)(atomic_load_explicit(&f->state, memory_order_acquire) >> 32);
}

/* ---------------------------------------------------------------- lifetime */

int vhdx_faults_new(struct vhdx_faults **out)
{
	struct vhdx_faults *f;

	if (!out)
		return vhdx_err(EINVAL, "vhdx_faults_new: out must not be NULL");
	f = calloc(1, sizeof *f);
	if (!f)
		return vhdx_err(ENOMEM, "out of memory");
	atomic_init(&f->state, 0);
	atomic_init(&f->refs, 1);
	atomic_init(&f->awaiting_reread, 0);
	pthread_mutex_init(&f->lock, NULL);
	f->next_id = 1;
	f->next_seq = 1;
	f->crash_limit = DEFAULT_CRASH_LIMIT;
	f->ring_cap = DEFAULT_EVENT_LIMIT;
	f->t0_ns = now_ns();
	*out = f;
	return 0;
}

static void event_free(struct event *e)
{
	free(e->rule_text);
	free(e->file);
	e->rule_text = e->file = NULL;
}

static void ring_clear(struct vhdx_faults *f)
{
	for (size_t i = 0; i < f->ring_len; i++)
		event_free(&f->ring[(f->ring_first + i) % f->ring_cap]);
	free(f->ring);
	f->ring = NULL;
	f->ring_len = f->ring_first = 0;
	atomic_store_explicit(&f->awaiting_reread, 0, memory_order_relaxed);
}

void vhdx_fault_ref(struct vhdx_faults *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void vhdx_fault_unref(struct vhdx_faults *f)
{
	if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < f->n; i++)
		vhdx_fault_rule_free(f->rules[i]);
	free(f->rules);
	ring_clear(f);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void vhdx_faults_free(struct vhdx_faults *f)
{
	vhdx_fault_unref(f);
}

/* ---------------------------------------------------------------- rules */

/* Parses every line first and appends only when all parsed: a file with one bad line changes nothing. */
int vhdx_fault_engine_add(struct vhdx_faults *f, const char *text, const char *source)
{
	struct vhdx_fault_rule **tmp = NULL;
	size_t n = 0, cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	if (!f || !text)
		return vhdx_err(EINVAL, "vhdx_faults_add: engine and text must not be NULL");
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		struct vhdx_fault_rule *r;
		lineno++;
		ret = vhdx_fault_rule_parse(line, source, lineno, &r);
		if (ret < 0)
			goto fail;
		if (r) {
			if (grow(&tmp, &cap, n + 1, sizeof *tmp, 8) < 0) {
				vhdx_fault_rule_free(r);
				ret = vhdx_err(ENOMEM, "out of memory");
				goto fail;
			}
			tmp[n++] = r;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	pthread_mutex_lock(&f->lock);
	if (grow(&f->rules, &f->cap, f->n + n, sizeof *f->rules, 8) < 0) {
		pthread_mutex_unlock(&f->lock);
		ret = vhdx_err(ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		tmp[i]->id = f->next_id++;
		if (tmp[i]->actions & VHDX_FACT_CRASH)
			f->ncrash++;
		f->rules[f->n++] = tmp[i];
	}
	publish(f);
	pthread_mutex_unlock(&f->lock);
	free(tmp);
	return (int)n;
fail:
	for (size_t i = 0; i < n; i++)
		vhdx_fault_rule_free(tmp[i]);
	free(tmp);
	return ret;
}

/* The index of rule ID in F (F's lock held), or F->n when F has none. */
static size_t rule_index(const struct vhdx_faults *f, unsigned id)
{
	size_t i = 0;

	while (i < f->n && f->rules[i]->id != id)
		i++;
	return i;
}

/* What a call naming rule ID returns: 0 with the message cleared when it was FOUND, else -ENOENT. */
static int rule_found(bool found, unsigned id)
{
	if (!found)
		return vhdx_err(ENOENT, "no fault rule %u", id);
	vhdx_err_clear();
	return 0;
}

int vhdx_faults_remove(struct vhdx_faults *f, unsigned id)
{
	size_t i;
	bool found;

	if (!f)
		return vhdx_err(EINVAL, "vhdx_faults_remove: no engine");
	pthread_mutex_lock(&f->lock);
	i = rule_index(f, id);
	found = i < f->n;
	if (found) {
		if (f->rules[i]->actions & VHDX_FACT_CRASH)
			f->ncrash--;
		vhdx_fault_rule_free(f->rules[i]);
		memmove(f->rules + i, f->rules + i + 1, (f->n - i - 1) * sizeof *f->rules);
		f->n--;
		publish(f);
	}
	pthread_mutex_unlock(&f->lock);
	return rule_found(found, id);
}

void vhdx_faults_clear(struct vhdx_faults *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++)
		vhdx_fault_rule_free(f->rules[i]);
	f->n = 0;
	f->ncrash = 0;
	publish(f);
	pthread_mutex_unlock(&f->lock);
}

void vhdx_faults_clear_events(struct vhdx_faults *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	ring_clear(f);
	pthread_mutex_unlock(&f->lock);
}

void vhdx_faults_set_crash_limit(struct vhdx_faults *f, uint64_t bytes)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->crash_limit = bytes;
	pthread_mutex_unlock(&f->lock);
}

void vhdx_faults_set_event_limit(struct vhdx_faults *f, size_t n)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	ring_clear(f); /* the ring is rebuilt at the new size by the next event */
	f->ring_cap = n ? n : 1;
	pthread_mutex_unlock(&f->lock);
}

void vhdx_faults_set_callback(struct vhdx_faults *f, void (*fn)(const struct vhdx_fault_event *ev, void *arg),
			      void *arg)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->cb = fn;
	f->cb_arg = arg;
	pthread_mutex_unlock(&f->lock);
}

int vhdx_faults_rule_hits(struct vhdx_faults *f, unsigned id, uint64_t *matched, uint64_t *hits)
{
	const struct vhdx_fault_rule *r;
	size_t i;

	if (!f)
		return vhdx_err(EINVAL, "vhdx_faults_rule_hits: no engine");
	pthread_mutex_lock(&f->lock);
	i = rule_index(f, id);
	r = i < f->n ? f->rules[i] : NULL;
	if (r && matched)
		*matched = r->matched;
	if (r && hits)
		*hits = r->hits;
	pthread_mutex_unlock(&f->lock);
	return rule_found(r != NULL, id);
}

/* ---------------------------------------------------------------- text output */

static int sb_finish(struct vhdx_textbuf *b, char **text)
{
	if (!b->failed && !b->p)
		vhdx_textbuf_printf(b, "%s", "");
	if (b->failed) {
		free(b->p);
		*text = NULL;
		return vhdx_err(ENOMEM, "out of memory");
	}
	*text = b->p;
	return 0;
}

int vhdx_faults_format_rules(struct vhdx_faults *f, char **text)
{
	struct vhdx_textbuf b = { 0 };

	if (!f || !text)
		return vhdx_err(EINVAL, "vhdx_faults_format_rules: engine and text must not be NULL");
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		const struct vhdx_fault_rule *r = f->rules[i];
		vhdx_textbuf_printf(&b, "%s  # rule %u: hits=%llu matched=%llu\n", r->text, r->id, (unsigned long long)r->hits,
			  (unsigned long long)r->matched);
	}
	pthread_mutex_unlock(&f->lock);
	return sb_finish(&b, text);
}

static void fmt_off(char *buf, size_t n, uint64_t v)
{
	if (v == VHDX_FAULT_NO_OFFSET)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "0x%llx", (unsigned long long)v);
}

int vhdx_faults_format_events(struct vhdx_faults *f, uint64_t since, char **text, uint64_t *next)
{
	struct vhdx_textbuf b = { 0 };
	uint64_t last = since;

	if (!f || !text)
		return vhdx_err(EINVAL, "vhdx_faults_format_events: engine and text must not be NULL");
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->ring_len; i++) {
		const struct event *e = &f->ring[(f->ring_first + i) % f->ring_cap];
		char off[24], voff[24], eb[24];
		uint64_t t;
		if (e->seq <= since)
			continue;
		fmt_off(off, sizeof off, e->foff);
		fmt_off(voff, sizeof voff, e->voff);
		t = e->time_ns >= f->t0_ns ? e->time_ns - f->t0_ns : 0;
		vhdx_textbuf_printf(&b, "seq=%llu t=%llu.%06llu rule=%u op=%s file=%s off=%s len=%llu voff=%s struct=%s action=%s%s%s",
			  (unsigned long long)e->seq, (unsigned long long)(t / 1000000000u),
			  (unsigned long long)(t % 1000000000u / 1000), e->rule, vhdx_fault_op_name(e->op), e->file,
			  off, (unsigned long long)e->len, voff, e->tag < 0 ? "-" : vhdx_fault_tag_name((enum vhdx_tag)e->tag),
			  e->action, e->detail[0] ? " " : "", e->detail);
		if (e->error)
			vhdx_textbuf_printf(&b, " errno=%s", vhdx_fault_errno_name(e->error, eb, sizeof eb));
		if (e->reread != REREAD_NA)
			vhdx_textbuf_printf(&b, " reread=%s", e->reread == REREAD_YES ? "yes" : "no");
		vhdx_textbuf_printf(&b, "\n");
		last = e->seq;
	}
	pthread_mutex_unlock(&f->lock);
	if (next)
		*next = last;
	return sb_finish(&b, text);
}

int vhdx_faults_get_stats(struct vhdx_faults *f, struct vhdx_faults_stats *st)
{
	struct vhdx_faults_stats s;

	if (!f || !st || st->struct_size < offsetof(struct vhdx_faults_stats, rules) + sizeof(unsigned))
		return vhdx_err(EINVAL, "vhdx_faults_get_stats: bad arguments (set st->struct_size)");
	pthread_mutex_lock(&f->lock);
	s = f->st;
	s.rules = (unsigned)f->n;
	s.events = f->next_seq - 1;
	s.events_kept = f->ring_len;
	pthread_mutex_unlock(&f->lock);
	s.struct_size = VHDX_MIN(st->struct_size, sizeof s);
	memcpy(st, &s, s.struct_size);
	return 0;
}

/* ---------------------------------------------------------------- evaluation */

/*
 * Records one event (caller holds the lock) and hands it to the callback.
 * On allocation failure the event is counted but not kept.
 */
static void record(struct vhdx_faults *f, const struct vhdx_fault_rule *r, unsigned rule_id, const char *rule_text,
		   const struct vhdx_fault_req *q, const char *action, const char *detail, int error)
{
	struct event e = {
		.seq = f->next_seq++,
		.time_ns = now_ns(),
		.rule = r ? r->id : rule_id,
		.op = q->op,
		.foff = q->has_foff ? q->foff : VHDX_FAULT_NO_OFFSET,
		.len = q->len,
		.voff = q->voff == VHDX_NO_VOFF ? VHDX_FAULT_NO_OFFSET : q->voff,
		.tag = q->has_tag ? (int)q->tag : -1,
		.action = action,
		.error = error,
		.reread = q->op == VHDX_FOP_READ && error && (!strcmp(action, "err") || !strcmp(action, "short"))
				  ? REREAD_NO : REREAD_NA,
	};

	snprintf(e.detail, sizeof e.detail, "%s", detail ? detail : "");
	if ((unsigned)q->op < 6)
		f->st.by_op[q->op]++;
	if (error)
		f->st.failed++;
	if (f->cb) {
		struct vhdx_fault_event pe = {
			.struct_size = sizeof pe,
			.seq = e.seq,
			.time_ns = e.time_ns,
			.rule = e.rule,
			.rule_text = r ? r->text : (rule_text ? rule_text : ""),
			.op = vhdx_fault_op_name(q->op),
			.file = q->path ? q->path : "",
			.foff = e.foff,
			.len = e.len,
			.voff = e.voff,
			.structure = q->has_tag ? vhdx_fault_tag_name(q->tag) : "",
			.action = action,
			.detail = e.detail,
			.error = error,
		};
		f->cb(&pe, f->cb_arg);
	}
	if (!f->ring) {
		f->ring = vhdx_calloc(f->ring_cap, sizeof *f->ring);
		if (!f->ring)
			return;
	}
	e.rule_text = strdup(r ? r->text : (rule_text ? rule_text : ""));
	e.file = strdup(q->path ? q->path : "");
	if (!e.rule_text || !e.file) {
		event_free(&e);
		return;
	}
	if (e.reread == REREAD_NO)
		atomic_fetch_add_explicit(&f->awaiting_reread, 1, memory_order_relaxed);
	if (f->ring_len == f->ring_cap) {
		if (f->ring[f->ring_first].reread == REREAD_NO)
			atomic_fetch_sub_explicit(&f->awaiting_reread, 1, memory_order_relaxed);
		event_free(&f->ring[f->ring_first]);
		f->ring[f->ring_first] = e;
		f->ring_first = (f->ring_first + 1) % f->ring_cap;
	} else {
		f->ring[(f->ring_first + f->ring_len) % f->ring_cap] = e;
		f->ring_len++;
	}
}

void vhdx_fault_eval(struct vhdx_faults *f, const struct vhdx_fault_req *q, struct vhdx_fault_decision *d)
{
	char detail[96];

	memset(d, 0, sizeof *d);
	pthread_mutex_lock(&f->lock);
	d->seq_mark = f->next_seq;
	f->st.calls++;
	d->track = f->ncrash > 0;
	d->crash_limit = f->crash_limit;
	for (size_t i = 0; i < f->n; i++) {
		struct vhdx_fault_rule *r = f->rules[i];
		unsigned main_acts = r->actions & ~VHDX_FACT_DELAY;

		if (!vhdx_fault_rule_matches(r, q))
			continue;
		/* a second deciding rule on the same call is not consulted: its count still advances */
		if (!vhdx_fault_rule_fires(r))
			continue;
		if (main_acts && d->rule) {
			/* not applied: take back the once-consumption by not counting a hit */
			continue;
		}
		r->hits++;
		if (r->actions & VHDX_FACT_DELAY) {
			d->actions |= VHDX_FACT_DELAY;
			d->delay_ms += r->delay_ms;
			f->st.delays++;
			snprintf(detail, sizeof detail, "ms=%llu", (unsigned long long)r->delay_ms);
			record(f, r, 0, NULL, q, "delay", detail, 0);
		}
		if (!main_acts)
			continue;
		d->rule = r->id;
		d->actions |= main_acts;
		d->err = r->err;
		d->short_bytes = r->short_bytes;
		d->torn_sectors = r->torn_sectors;
		if (main_acts & VHDX_FACT_CRASH) {
			if (q->crash_unavailable) {
				/* the io could not keep its pre-images: refuse rather than pretend */
				d->actions = (d->actions & VHDX_FACT_DELAY) | VHDX_FACT_CRASH;
				d->crash_unavailable = true;
				f->st.failed++;
				record(f, r, 0, NULL, q, "crash-unavailable", "pre-image limit exceeded", ENOMEM);
				continue;
			}
			f->st.crashes++;
			f->crash_rule = r->id;
			/* a new epoch: every fault io of this engine is now behind a power cut */
			atomic_fetch_add_explicit(&f->state, (uint64_t)1 << 32, memory_order_acq_rel);
			if (main_acts & VHDX_FACT_TORN)
				snprintf(detail, sizeof detail, "sectors=%llu", (unsigned long long)r->torn_sectors);
			else
				detail[0] = '\0';
			record(f, r, 0, NULL, q, "crash", detail, r->err);
		} else if (main_acts & VHDX_FACT_FLIP) {
			size_t o = 0;
			d->nflip = vhdx_fault_rule_flip_positions(r, q->len, d->flip);
			f->st.flips++;
			o += (size_t)snprintf(detail, sizeof detail, "bits=");
			for (unsigned k = 0; k < d->nflip && o < sizeof detail; k++)
				o += (size_t)snprintf(detail + o, sizeof detail - o, "%s%llu", k ? "," : "",
						      (unsigned long long)d->flip[k]);
			record(f, r, 0, NULL, q, "flip", detail, 0);
		} else if (main_acts & VHDX_FACT_SHORT) {
			f->st.shorts++;
			snprintf(detail, sizeof detail, "bytes=%llu",
				 (unsigned long long)VHDX_MIN(r->short_bytes, q->len));
			record(f, r, 0, NULL, q, "short", detail, r->err);
		} else if (main_acts & VHDX_FACT_TORN) {
			f->st.torns++;
			snprintf(detail, sizeof detail, "sectors=%llu", (unsigned long long)r->torn_sectors);
			record(f, r, 0, NULL, q, "torn", detail, r->err);
		} else {
			f->st.errors++;
			record(f, r, 0, NULL, q, "err", NULL, r->err);
		}
	}
	pthread_mutex_unlock(&f->lock);
}

void vhdx_fault_read_ok(struct vhdx_faults *f, const struct vhdx_fault_req *q, uint64_t seq_mark)
{
	unsigned left; /* waiting events not looked at yet: the scan stops when none is left */

	if (atomic_load_explicit(&f->awaiting_reread, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&f->lock);
	left = atomic_load_explicit(&f->awaiting_reread, memory_order_relaxed);
	for (size_t i = 0; i < f->ring_len && left; i++) {
		struct event *e = &f->ring[(f->ring_first + i) % f->ring_cap];

		/* only failures injected before this read was decided: a read in flight then proves nothing */
		if (e->seq >= seq_mark)
			break;
		if (e->reread != REREAD_NO)
			continue;
		left--;
		if (e->foff >= q->foff + q->len || q->foff >= e->foff + e->len || strcmp(e->file, q->path ? q->path : "") != 0)
			continue;
		e->reread = REREAD_YES;
		atomic_fetch_sub_explicit(&f->awaiting_reread, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&f->lock);
}

unsigned vhdx_fault_dead_call(struct vhdx_faults *f, const struct vhdx_fault_req *q)
{
	unsigned rule;
	char detail[64];

	pthread_mutex_lock(&f->lock);
	rule = f->crash_rule;
	f->st.after_crash++;
	snprintf(detail, sizeof detail, "crashed-by=%u", rule);
	record(f, NULL, rule, "(after crash)", q, "after-crash", detail, EIO);
	pthread_mutex_unlock(&f->lock);
	return rule;
}

int vhdx_fault_check_open(struct vhdx_faults *f, const char *path)
{
	struct vhdx_fault_req q = { .op = VHDX_FOP_OPEN, .path = path, .voff = VHDX_NO_VOFF };
	struct vhdx_fault_decision d;
	const char *slash;
	char eb[24];

	if (!f || vhdx_fault_idle(f, vhdx_fault_epoch(f)))
		return 0;
	slash = strrchr(path, '/');
	q.base = slash ? slash + 1 : path;
	vhdx_fault_eval(f, &q, &d);
	if (d.delay_ms) {
		struct timespec ts = { (time_t)(d.delay_ms / 1000), (long)(d.delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (d.actions & VHDX_FACT_CRASH) {
		if (d.crash_unavailable)
			return vhdx_err(ENOMEM, "injected crash (fault rule %u) cannot be simulated", d.rule);
		return vhdx_err(d.err, "injected crash (fault rule %u): power cut", d.rule);
	}
	if (d.actions & VHDX_FACT_ERR)
		return vhdx_err(d.err, "injected %s (fault rule %u)", vhdx_fault_errno_name(d.err, eb, sizeof eb),
				d.rule);
	return 0;
}
