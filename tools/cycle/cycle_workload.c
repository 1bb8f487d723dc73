/*
 * cycle_workload.c - the metadata workload of `vhdx cycle mount`, run
 * through MOUNTPOINT/disk, and the attribution of every injected fault to
 * the call it hit.
 *
 * The workload stands for a backup agent's catalogue on its scratch disk:
 * small writes (512 B to 8 KiB) into a hot area at the start of the disk,
 * large writes (64 KiB to 512 KiB) anywhere, overwrites of ranges written
 * earlier in the cycle, fsyncs between them, and reads of what was written;
 * it always ends with an fsync and a read-back.  Everything is drawn from
 * (seed, cycle), and every sector written carries its cycle, operation and
 * offset, so each write's data is unique and a hash names it.
 *
 * The disk is opened with O_DIRECT: every read and write reaches vhdxfs (no
 * page cache hides a fault), and the calls are made one at a time, so the
 * faults that appear in MOUNTPOINT/.vhdxfs/events between two calls were
 * injected during the second one.  That is how each fault is tied to the
 * call it hit and to the error (or the silence) the workload got.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/splitmix.h"
#include "cycle.h"

/*
 * The largest call: 512 KiB, the largest request vhdxfs takes, so that each
 * call is one FUSE request.  A larger O_DIRECT write is split by the kernel
 * into requests that vhdxfs's threads serve in parallel, and which of them
 * a fault rule hits would then vary from run to run.
 */
#define MAX_IO (512u << 10)

/* ------------------------------------------------------------ results */

int cycle_result_step(struct cycle_result *res, const char *what, uint64_t voff, uint64_t len, int err,
		      const char *msg)
{
	struct cycle_step *s;

	if (grow(&res->steps, &res->cap_steps, res->n_steps + 1, sizeof *res->steps, 64) < 0)
		return -1;
	s = &res->steps[res->n_steps];
	memset(s, 0, sizeof *s);
	s->what = what;
	s->voff = voff;
	s->len = len;
	s->err = err;
	s->msg = msg ? strdup(msg) : NULL;
	return (int)res->n_steps++;
}

void cycle_result_free(struct cycle_result *res)
{
	for (size_t i = 0; i < res->n_steps; i++)
		free(res->steps[i].msg);
	for (size_t i = 0; i < res->n_events; i++)
		free(res->events[i].file);
	free(res->steps);
	free(res->events);
	free(res->reopen_msg);
	memset(res, 0, sizeof *res);
}

/* Copies the value of " KEY=" in LINE (up to the next space) into OUT; 0 or -1. */
static int field(const char *line, const char *key, char *out, size_t n)
{
	char pat[32];
	const char *p, *e;

	snprintf(pat, sizeof pat, " %s=", key);
	if (!strncmp(line, pat + 1, strlen(pat + 1))) {
		p = line + strlen(pat + 1);
	} else {
		p = strstr(line, pat);
		if (!p)
			return -1;
		p += strlen(pat);
	}
	e = strchr(p, ' ');
	if (!e)
		e = p + strlen(p);
	if ((size_t)(e - p) >= n)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static uint64_t num_or_none(const char *s)
{
	return !strcmp(s, "-") ? CYCLE_NONE : strtoull(s, NULL, 0);
}

int cycle_event_parse(const char *line, struct cycle_event *ev)
{
	char v[64];
	const char *f, *o;

	memset(ev, 0, sizeof *ev);
	if (strncmp(line, "seq=", 4) != 0)
		return -1;
	ev->seq = strtoull(line + 4, NULL, 10);
	field(line, "t", ev->t, sizeof ev->t);
	if (field(line, "rule", v, sizeof v) < 0)
		return -1;
	ev->rule = (unsigned)strtoul(v, NULL, 10);
	field(line, "op", ev->op, sizeof ev->op);
	/* file= may hold spaces: it runs up to " off=" */
	f = strstr(line, " file=");
	o = f ? strstr(f, " off=") : NULL;
	if (!f || !o)
		return -1;
	ev->file = strndup(f + 6, (size_t)(o - f - 6));
	if (!ev->file)
		return -1;
	o = strstr(o, " off="); /* the fields after the file name */
	if (field(o, "off", v, sizeof v) == 0)
		ev->foff = num_or_none(v);
	if (field(o, "len", v, sizeof v) == 0)
		ev->len = strtoull(v, NULL, 10);
	if (field(o, "voff", v, sizeof v) == 0)
		ev->voff = num_or_none(v);
	field(o, "struct", ev->structure, sizeof ev->structure);
	field(o, "action", ev->action, sizeof ev->action);
	/* the detail ("ms=50", "bytes=100", "bits=5,811") is the word after the action, if not errno= */
	{
		const char *a = strstr(o, " action=");
		const char *d = a ? strchr(a + 1, ' ') : NULL;

		if (d && strncmp(d + 1, "errno=", 6) != 0) {
			const char *e = strchr(d + 1, ' ');
			size_t n = e ? (size_t)(e - d - 1) : strlen(d + 1);

			if (n >= sizeof ev->detail)
				n = sizeof ev->detail - 1;
			memcpy(ev->detail, d + 1, n);
			ev->detail[n] = '\0';
		}
	}
	if (field(o, "errno", v, sizeof v) == 0 && cycle_errno_parse(v, &ev->err) < 0)
		ev->err = EIO;
	ev->step = -1;
	return 0;
}

void cycle_result_events(struct cycle_result *res, const struct cycle_rules *rules, const char *text,
			 uint64_t *seen, int step)
{
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *copy = strndup(line, n);
		struct cycle_event ev;

		if (copy && cycle_event_parse(copy, &ev) == 0) {
			if (ev.seq > *seen) {
				if (grow(&res->events, &res->cap_events, res->n_events + 1, sizeof *res->events, 16) < 0) {
					free(ev.file);
					free(copy);
					return;
				}
				ev.rule = cycle_rules_origin(rules, ev.rule);
				ev.step = step;
				res->events[res->n_events++] = ev;
				*seen = ev.seq;
			} else {
				free(ev.file);
			}
		}
		free(copy);
		line = nl ? nl + 1 : NULL;
	}
	if (step >= 0 && (size_t)step < res->n_steps)
		res->steps[step].last_seq = *seen;
}

/* ------------------------------------------------------------ the workload */

static uint64_t rnd(uint64_t *state)
{
	*state += SPLITMIX64_GAMMA;
	return splitmix64_mix(*state);
}

/*
 * Fills LEN bytes (whole sectors) for write OP of cycle CYCLE at VOFF: each
 * sector starts with "vhdxcycl", the seed, cycle, op and its own offset,
 * then pseudo-random bytes.  Puts the sector hashes in HASHES.
 */
static void fill(uint8_t *buf, uint64_t len, uint64_t seed, unsigned cycle, unsigned op, uint64_t voff,
		 uint64_t *hashes)
{
	for (uint64_t s = 0; s < len / CYCLE_SECTOR; s++) {
		uint8_t *p = buf + s * CYCLE_SECTOR;
		uint64_t so = voff + s * CYCLE_SECTOR;
		uint64_t st = splitmix64_mix(seed ^ splitmix64_mix(((uint64_t)cycle << 32) | op) ^ splitmix64_mix(so));

		memcpy(p, "vhdxcycl", 8);
		for (int i = 0; i < 8; i++) {
			p[8 + i] = (uint8_t)(seed >> (8 * i));
			p[24 + i] = (uint8_t)(so >> (8 * i));
		}
		for (int i = 0; i < 4; i++) {
			p[16 + i] = (uint8_t)(cycle >> (8 * i));
			p[20 + i] = (uint8_t)(op >> (8 * i));
		}
		for (unsigned i = 32; i < CYCLE_SECTOR; i += 8) {
			uint64_t r = rnd(&st);

			for (int k = 0; k < 8; k++)
				p[i + (unsigned)k] = (uint8_t)(r >> (8 * k));
		}
		hashes[s] = cycle_sector_hash(p);
	}
}

struct wl {
	const struct cycle_workload_opts *o;
	struct cycle_mount *cm;
	struct cycle_model *m;
	const struct cycle_rules *rules;
	struct cycle_result *res;
	uint64_t *seen;
	int fd;
	uint8_t *buf;
	uint64_t *hashes;
	struct { uint64_t voff, len; } ranges[64];
	unsigned n_ranges;
};

/* Records the outcome of one call and the faults injected during it. */
static void after_call(struct wl *w, const char *what, uint64_t voff, uint64_t len, int err)
{
	char *msg = NULL, *events;
	int step;

	if (err)
		msg = cycle_mount_stat(w->cm, "last_error");
	step = cycle_result_step(w->res, what, voff, len, err, msg);
	free(msg);
	events = cycle_mount_read_ctl(w->cm, "events");
	if (events)
		cycle_result_events(w->res, w->rules, events, w->seen, step);
	free(events);
}

static void do_write(struct wl *w, unsigned op, uint64_t voff, uint64_t len)
{
	ssize_t n;
	int err = 0;

	fill(w->buf, len, w->o->seed, w->o->cycle, op, voff, w->hashes);
	n = pwrite(w->fd, w->buf, (size_t)len, (off_t)voff);
	if (n < 0)
		err = errno;
	else if ((uint64_t)n != len)
		err = EIO; /* a short write: the rest did not happen */
	if (err)
		cycle_model_write_failed(w->m, voff, len, w->hashes);
	else
		cycle_model_write_ok(w->m, voff, len, w->hashes, w->o->cycle, op);
	w->res->writes++;
	w->res->write_bytes += len;
	after_call(w, "pwrite", voff, len, err);
	if (w->n_ranges < sizeof w->ranges / sizeof w->ranges[0]) {
		w->ranges[w->n_ranges].voff = voff;
		w->ranges[w->n_ranges].len = len;
		w->n_ranges++;
	}
}

static void do_fsync(struct wl *w)
{
	int err = fsync(w->fd) < 0 ? errno : 0;

	cycle_model_fsync(w->m, err == 0);
	w->res->fsyncs++;
	after_call(w, "fsync", CYCLE_NONE, CYCLE_NONE, err);
}

static void do_read(struct wl *w, uint64_t voff, uint64_t len)
{
	ssize_t n = pread(w->fd, w->buf, (size_t)len, (off_t)voff);
	int err = n < 0 ? errno : (uint64_t)n != len ? EIO : 0;

	if (!err)
		cycle_model_check_read(w->m, voff, w->buf, len, &w->res->rb);
	w->res->reads++;
	w->res->read_bytes += len;
	after_call(w, "pread", voff, len, err);
}

int cycle_workload_run(const struct cycle_workload_opts *o, struct cycle_mount *cm, struct cycle_model *m,
		       const struct cycle_rules *rules, struct cycle_result *res, uint64_t *seen)
{
	struct wl w = { .o = o, .cm = cm, .m = m, .rules = rules, .res = res, .seen = seen, .fd = -1 };
	uint64_t st = splitmix64_mix(o->seed ^ splitmix64_mix(0x6379636c65ull + o->cycle)), size = o->size;
	uint64_t hot = size / 8 < 65536 ? (size < 65536 ? size : 65536) : size / 8;
	uint64_t big_max = size / 4 < MAX_IO ? size / 4 : MAX_IO;
	char path[PATH_MAX + 16];
	void *p = NULL;
	unsigned op = 0;

	snprintf(path, sizeof path, "%s/disk", cm->mnt);
	w.fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (w.fd < 0) {
		after_call(&w, "open", CYCLE_NONE, CYCLE_NONE, errno);
		return -1;
	}
	if (posix_memalign(&p, 4096, MAX_IO) != 0 || !(w.hashes = malloc(MAX_IO / CYCLE_SECTOR * sizeof *w.hashes))) {
		free(p);
		close(w.fd);
		return -1;
	}
	w.buf = p;
	if (big_max < 65536)
		big_max = 65536 <= size ? 65536 : size;
	for (op = 1; op <= o->ops; op++) {
		unsigned r = (unsigned)(rnd(&st) % 100);
		uint64_t len, voff;

		if (r < 40) {
			/* a catalogue record: 512 B - 8 KiB in the hot area */
			len = CYCLE_SECTOR * (1 + rnd(&st) % 16);
			if (len > hot)
				len = hot;
			voff = (rnd(&st) % (hot - len + 1)) / CYCLE_SECTOR * CYCLE_SECTOR;
			do_write(&w, op, voff, len);
		} else if (r < 55) {
			/* a large chunk: 64 KiB - 512 KiB, 4 KiB aligned, anywhere */
			len = 65536 * (1 + rnd(&st) % 8);
			if (len > big_max)
				len = big_max;
			voff = (rnd(&st) % (size - len + 1)) / 4096 * 4096;
			do_write(&w, op, voff, len);
		} else if (r < 70 && w.n_ranges) {
			/* an overwrite of a range written earlier in the cycle */
			unsigned k = (unsigned)(rnd(&st) % w.n_ranges);

			do_write(&w, op, w.ranges[k].voff, w.ranges[k].len);
		} else if (r < 85) {
			do_fsync(&w);
		} else if (w.n_ranges) {
			unsigned k = (unsigned)(rnd(&st) % w.n_ranges);

			do_read(&w, w.ranges[k].voff, w.ranges[k].len);
		} else {
			len = 65536 < size ? 65536 : size;
			do_read(&w, (rnd(&st) % (size - len + 1)) / CYCLE_SECTOR * CYCLE_SECTOR, len);
		}
	}
	/* the end of a backup: everything synced, the last records read back */
	do_fsync(&w);
	for (unsigned i = 0; i < 2 && i < w.n_ranges; i++)
		do_read(&w, w.ranges[w.n_ranges - 1 - i].voff, w.ranges[w.n_ranges - 1 - i].len);
	{
		/* close() flushes (FUSE flush) if writes are still dirty: its error counts */
		int err = close(w.fd) < 0 ? errno : 0;

		w.fd = -1;
		after_call(&w, "close", CYCLE_NONE, CYCLE_NONE, err);
	}
	free(w.buf);
	free(w.hashes);
	return 0;
}
