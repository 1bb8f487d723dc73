/*
 * api_check.c - vhdx_check(), the public door to the structure checks and
 * repairs of check.c: copies the caller's versioned options in, forwards
 * the callbacks, copies the counts out.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "maint/check_internal.h"

void vhdx_check_options_init(struct vhdx_check_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->struct_size = sizeof *opts;
}

/* The internal callbacks take a bool; the public ones an int, as the header has no stdbool. */
static void forward_problem(void *ctx, bool after, const struct vhdx_check_problem *p)
{
	const struct vhdx_check_options *o = ctx;

	if (o->problem)
		o->problem(o->ctx, after, p);
}
static void forward_repaired(void *ctx, const struct vhdx_check_event *e)
{
	const struct vhdx_check_options *o = ctx;

	if (o->repaired)
		o->repaired(o->ctx, e);
}
static void forward_lost(void *ctx, const struct vhdx_check_event *e)
{
	const struct vhdx_check_options *o = ctx;

	if (o->lost)
		o->lost(o->ctx, e);
}

int vhdx_check(const char *path, const struct vhdx_check_options *opts_in, struct vhdx_check_counts *counts)
{
	struct vhdx_check_options o;
	struct vhdx_check_opts io;
	struct vhdx_check_result res;
	struct vhdx_check_counts c;
	int ret;

	ret = vhdx_options_in(&o, sizeof o, opts_in, offsetof(struct vhdx_check_options, lost) + sizeof o.lost,
			      "vhdx_check");
	if (ret < 0)
		return ret;
	if (!path)
		return vhdx_err(EINVAL, "vhdx_check: path must not be NULL");
	memset(&io, 0, sizeof io);
	io.repair = o.flags & VHDX_CHECK_REPAIR;
	io.check_chain = o.flags & VHDX_CHECK_CHAIN;
	io.faults = o.faults;
	io.chain_opts = o.chain_opts;
	io.ctx = &o;
	io.problem = forward_problem;
	io.repaired = forward_repaired;
	io.lost = forward_lost;
	memset(&res, 0, sizeof res);
	ret = vhdx_check_path(path, &io, &res);
	memset(&c, 0, sizeof c);
	c.struct_size = sizeof c;
	c.format = res.format;
	c.errors = res.errors;
	c.warnings = res.warnings;
	c.repairs = res.repairs;
	c.errors_after = res.errors_after;
	c.warnings_after = res.warnings_after;
	vhdx_struct_copy_out(counts, &c, sizeof c);
	return ret;
}
