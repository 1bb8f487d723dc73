/*
 * check.c - L4 driver of `vhdx check` (FORMAT.md 1.10 and the VHD
 * equivalents): opens the file (read-only, or read-write for a repair,
 * under the fault engine when one is given), decides the format from the
 * raw bytes (a damaged file identifier must still be checked, so this is
 * more forgiving than the open's probe), runs the one scan-repair-rescan
 * loop over the format's checker (ops->check, format/check.h), and for a
 * differencing disk that is otherwise sound opens its chain to check the
 * parent link (locator, linkage, sector size, cycles: chain/chain.c).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maint/check_internal.h"
#include "internal.h"
#include "format/check.h"
#include "format/format.h"
#include "io/fault.h"

static void check_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
}

void vhdx_check_report(struct vhdx_check_ctx *c, enum vhdx_check_severity sev, const char *structure, uint64_t foff,
		       const char *fmt, ...)
{
	char msg[1024];
	struct vhdx_check_problem p;
	va_list ap;

	if (sev == VHDX_CHECK_ERROR)
		c->n_errors++;
	else
		c->n_warnings++;
	if (c->quiet || !c->o->problem)
		return;
	va_start(ap, fmt);
	check_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p.severity = sev;
	p.structure = structure;
	p.foff = foff;
	p.message = msg;
	c->o->problem(c->o->ctx, c->after, &p);
}

/* Formats an event (a repair or a lost range) and hands it to CB (nothing when CB is NULL). */
static void check_event(struct vhdx_check_ctx *c, void (*cb)(void *ctx, const struct vhdx_check_event *e),
			struct vhdx_check_event *e, const char *fmt, va_list ap)
{
	char msg[1024];

	if (!cb)
		return;
	check_vformat(msg, sizeof msg, fmt, ap);
	e->message = msg;
	cb(c->o->ctx, e);
}

void vhdx_check_repaired(struct vhdx_check_ctx *c, const char *structure, uint64_t foff, const char *fmt, ...)
{
	struct vhdx_check_event e = { .structure = structure, .foff = foff };
	va_list ap;

	c->res->repairs++;
	va_start(ap, fmt);
	check_event(c, c->o->repaired, &e, fmt, ap);
	va_end(ap);
}

void vhdx_check_lost(struct vhdx_check_ctx *c, uint64_t voff, uint64_t len, const char *structure, uint64_t foff,
		     const char *fmt, ...)
{
	struct vhdx_check_event e = { .structure = structure, .foff = foff, .lost_voff = voff, .lost_len = len };
	va_list ap;

	va_start(ap, fmt);
	check_event(c, c->o->lost, &e, fmt, ap);
	va_end(ap);
}

/*
 * The format's table entry from the raw bytes, or NULL: a file identifier
 * at offset 0 first, then, for every format, its other signatures (the
 * VHDX headers, a VHD footer at the end).
 */
static const struct vhdx_format_ops *check_detect(struct vhdx_io *io, uint64_t size)
{
	const struct vhdx_format_ops *f;
	uint8_t buf[8];

	if (size >= 8 && vhdx_io_pread(io, buf, 8, 0, VHDX_TAG_FILEID) == 0) {
		for (size_t i = 0; (f = vhdx_format_nth(i)); i++)
			if (f->check && !memcmp(buf, f->check->signature, 8))
				return f;
	}
	for (size_t i = 0; (f = vhdx_format_nth(i)); i++)
		if (f->check && f->check->recognise(io, size))
			return f;
	return NULL;
}

/* Before a scan of a file a repair changed: the last scan's findings dropped, the size read again. */
static int check_reload(struct vhdx_check_ctx *c, const struct vhdx_checker *k, void *state)
{
	k->free(state);
	return vhdx_io_get_size(c->io, &c->file_size);
}

/* A quiet re-scan after a repair step changed the file: the counts of the pass stay. */
static int check_rescan(struct vhdx_check_ctx *c, const struct vhdx_checker *k, void *state)
{
	unsigned e = c->n_errors, w = c->n_warnings;
	bool q = c->quiet;
	int ret;

	ret = check_reload(c, k, state);
	if (ret < 0)
		return ret;
	c->quiet = true;
	ret = k->scan(c, state);
	c->quiet = q;
	c->n_errors = e;
	c->n_warnings = w;
	return ret;
}

/*
 * The one check loop, the same for every format: scan; with a repair,
 * every step the last scan asks for, in the checker's order, each followed
 * by a quiet re-scan where it says so; then the scan after the repair.
 */
static int check_run(struct vhdx_check_ctx *c, const struct vhdx_checker *k)
{
	void *state = calloc(1, k->state_size);
	int ret;

	if (!state)
		return vhdx_err(ENOMEM, "out of memory");
	ret = k->scan(c, state);
	c->res->errors = c->n_errors;
	c->res->warnings = c->n_warnings;
	if (ret < 0 || !c->o->repair || c->n_errors + c->n_warnings == 0)
		goto out;
	for (const struct vhdx_check_step *s = k->steps; s->repair; s++) {
		if (!s->needed(c, state))
			continue;
		ret = s->repair(c, state);
		if (ret == 0 && s->rescan)
			ret = check_rescan(c, k, state);
		if (ret < 0)
			goto out;
	}
	/* the verdict after the repair */
	ret = check_reload(c, k, state);
	if (ret == 0) {
		c->after = true;
		c->n_errors = c->n_warnings = 0;
		ret = k->scan(c, state);
	}
out:
	k->free(state);
	free(state);
	return ret;
}

/* Opens the chain of a differencing disk whose own structures are sound: the parent must be found and match. */
static void check_chain(struct vhdx_check_ctx *c)
{
	struct vhdx_open_options opts;
	struct vhdx_image *img = NULL;
	int ret;

	if (c->o->chain_opts)
		opts = *c->o->chain_opts;
	else
		vhdx_open_options_init(&opts);
	opts.flags &= ~(unsigned)(VHDX_OPEN_RDWR | VHDX_OPEN_NO_PARENT);
	opts.faults = NULL;
	ret = vhdx_open(c->path, &opts, &img);
	if (ret < 0) {
		vhdx_check_report(c, VHDX_CHECK_ERROR, "parent", VHDX_CHECK_NO_OFF, "the parent chain does not open: %s",
				  vhdx_errmsg());
		return;
	}
	vhdx_close(img);
}

int vhdx_check_path(const char *path, const struct vhdx_check_opts *o, struct vhdx_check_result *res)
{
	struct vhdx_check_ctx c;
	struct vhdx_io *io = NULL;
	struct vhdx_lockset ls;
	bool share = o->chain_opts && (o->chain_opts->flags & VHDX_OPEN_FORCE_SHARE);
	const struct vhdx_format_ops *fmt;
	int ret;

	memset(res, 0, sizeof *res);
	if (o->repair && share)
		return vhdx_err(EINVAL, "%s: a repair writes the image: it cannot be combined with force-share", path);
	/*
	 * issue #14: the file is locked for the whole check (exclusively for a
	 * repair) before anything is read; the check's own second open of it,
	 * for the chain, is covered by the same lock.
	 */
	vhdx_lockset_begin(&ls);
	ret = share ? 0 : vhdx_lockset_add(&ls, path, o->repair ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_SHARED, o->faults);
	if (ret == 0)
		ret = vhdx_io_open_locked(path, o->repair, VHDX_LOCK_NONE, o->faults, &io);
	if (ret < 0) {
		vhdx_lockset_end(&ls);
		return ret;
	}
	memset(&c, 0, sizeof c);
	c.io = io;
	c.path = path;
	c.o = o;
	c.res = res;
	ret = vhdx_io_get_size(io, &c.file_size);
	if (ret < 0)
		goto out;
	fmt = check_detect(io, c.file_size);
	if (!fmt) {
		ret = vhdx_err(EINVAL, "%s: neither a VHDX file (no 'vhdxfile' identifier, no 'head' header) nor a VHD file (no 'conectix' footer)",
			       path);
		goto out;
	}
	res->format = fmt->name;
	ret = check_run(&c, fmt->check);
	if (ret < 0)
		goto out;
	/* the chain: only worth opening when the layer itself is sound */
	if (c.has_parent && o->check_chain && c.n_errors == 0) {
		unsigned before = c.n_errors;
		check_chain(&c);
		if (o->repair && !c.after && c.n_errors > before) {
			/*
			 * The layer needed no repair and a repair does not mend a
			 * chain (a missing parent, a cycle): the verdict after the
			 * repair is the one before, never "clean".  Check again
			 * as the pass after it, so the problem is listed there too.
			 */
			res->errors = c.n_errors;
			res->warnings = c.n_warnings;
			c.after = true;
			c.n_errors = c.n_warnings = 0;
			check_chain(&c);
		}
	}
	if (c.after) {
		res->errors_after = c.n_errors;
		res->warnings_after = c.n_warnings;
	} else {
		res->errors = c.n_errors;
		res->warnings = c.n_warnings;
	}
out:
	if (o->faults && io) {
		int r2 = vhdx_io_fault_close_check(io);
		if (r2 < 0 && ret == 0)
			ret = r2;
	}
	vhdx_io_close(io);
	vhdx_lockset_end(&ls);
	return ret;
}
