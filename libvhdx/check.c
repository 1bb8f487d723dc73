/*
 * check.c - L4 driver of `vhdx check` (FORMAT.md 1.10 and the VHD
 * equivalents): opens the file (read-only, or read-write for a repair,
 * under the fault engine when one is given), decides the format from the
 * raw bytes (a damaged file identifier must still be checked, so this is
 * more forgiving than the open's probe), runs the per-format checker, and
 * for a differencing disk that is otherwise sound opens its chain to check
 * the parent link (locator, linkage, sector size, cycles: chain/chain.c).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "internal.h"
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

void vhdx_check_repaired(struct vhdx_check_ctx *c, const char *structure, uint64_t foff, const char *fmt, ...)
{
	char msg[1024];
	struct vhdx_check_event e = { 0 };
	va_list ap;

	c->res->repairs++;
	if (!c->o->repaired)
		return;
	va_start(ap, fmt);
	check_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	e.structure = structure;
	e.foff = foff;
	e.message = msg;
	c->o->repaired(c->o->ctx, &e);
}

void vhdx_check_lost(struct vhdx_check_ctx *c, uint64_t voff, uint64_t len, const char *structure, uint64_t foff,
		     const char *fmt, ...)
{
	char msg[1024];
	struct vhdx_check_event e = { 0 };
	va_list ap;

	if (!c->o->lost)
		return;
	va_start(ap, fmt);
	check_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	e.structure = structure;
	e.foff = foff;
	e.message = msg;
	e.lost_voff = voff;
	e.lost_len = len;
	c->o->lost(c->o->ctx, &e);
}

/* "vhdx", "vhd" or NULL from the raw bytes: a file identifier or a header signature; a VHD cookie at 0 or the end */
static const char *check_detect(struct vhdx_io *io, uint64_t size)
{
	uint8_t buf[8];

	if (size >= 8 && vhdx_io_pread(io, buf, 8, 0, VHDX_TAG_FILEID) == 0) {
		if (!memcmp(buf, "vhdxfile", 8))
			return "vhdx";
		if (!memcmp(buf, "conectix", 8))
			return "vhd";
	}
	/* a broken file identifier: the headers still say VHDX */
	if (size >= 128 * 1024 + 4) {
		uint8_t h1[4], h2[4];
		if (vhdx_io_pread(io, h1, 4, 64 * 1024, VHDX_TAG_HEADER) == 0 &&
		    vhdx_io_pread(io, h2, 4, 128 * 1024, VHDX_TAG_HEADER) == 0 &&
		    (!memcmp(h1, "head", 4) || !memcmp(h2, "head", 4)))
			return "vhdx";
	}
	for (uint64_t back = 512; back >= 511; back--) {
		if (size >= back && vhdx_io_pread(io, buf, 8, size - back, VHDX_TAG_FOOTER) == 0 &&
		    !memcmp(buf, "conectix", 8))
			return "vhd";
	}
	return NULL;
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
	const char *fmt;
	int ret;

	memset(res, 0, sizeof *res);
	ret = vhdx_fault_check_open(o->faults, path);
	if (ret < 0)
		return ret;
	ret = vhdx_io_open_path(path, o->repair, &io);
	if (ret < 0)
		return ret;
	if (o->faults) {
		ret = vhdx_io_fault_new(o->faults, io, &io);
		if (ret < 0)
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
	res->format = fmt;
	ret = !strcmp(fmt, "vhdx") ? vhdx_check_vhdx(&c) : vhdx_check_vhd(&c);
	if (ret < 0)
		goto out;
	/* the chain: only worth opening when the layer itself is sound */
	if (c.has_parent && o->check_chain && c.n_errors == 0)
		check_chain(&c);
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
	return ret;
}
