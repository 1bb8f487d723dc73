/*
 * chain.c - building the layer stack and reading through it.  A read walks
 * the leaf's runs; a run that is "ask the parent" becomes one read of the
 * layer below, so the cost grows with the number of runs, not of sectors.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "chain/chain.h"

void vhdx_chain_warn(struct vhdx_chain *c, const char *fmt, ...)
{
	size_t old = c->warnings ? strlen(c->warnings) : 0;
	char line[1024], *p;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	p = realloc(c->warnings, old + strlen(line) + 2);
	if (!p)
		return;
	memcpy(p + old, line, strlen(line));
	p[old + strlen(line)] = '\n';
	p[old + strlen(line) + 1] = '\0';
	c->warnings = p;
}

int vhdx_chain_close(struct vhdx_chain *c)
{
	int ret = 0;

	for (unsigned i = 0; c->layers && i < c->n; i++) {
		int r = vhdx_layer_close(c->layers[i]);
		if (r < 0 && ret == 0)
			ret = r;
	}
	free(c->layers);
	free(c->warnings);
	memset(c, 0, sizeof *c);
	return ret;
}

/* Same file as one already in the chain (device + inode), for cycle detection. */
static bool same_file(const struct vhdx_layer *a, const struct vhdx_layer *b)
{
	return vhdx_same_file(a->path, b->path);
}

/* The layer flags an open with OPTS asks for. */
static unsigned layer_flags(const struct vhdx_open_options *opts)
{
	unsigned flags = 0;

	if (opts->flags & VHDX_OPEN_RDWR)
		flags |= VHDX_LAYER_WRITABLE;
	if (opts->flags & VHDX_OPEN_SALVAGE)
		flags |= VHDX_LAYER_SALVAGE;
	if (opts->flags & VHDX_OPEN_NO_REPLAY)
		flags |= VHDX_LAYER_NO_REPLAY;
	if (opts->flags & VHDX_OPEN_ALLOW_INCOMPLETE)
		flags |= VHDX_LAYER_ALLOW_INCOMPLETE;
	return flags;
}

/*
 * Stacks the parents of the leaf L (already opened, owned by C from here
 * on).  SRC is the caller-I/O backend of L when it came through
 * vhdx_open_io (its open_parent callback finds the next parent), NULL for
 * a file.  On failure C is closed.
 */
static int chain_build(struct vhdx_chain *c, struct vhdx_layer *l, struct vhdx_io *src,
		       const struct vhdx_open_options *opts)
{
	unsigned max_depth = opts->max_depth ? opts->max_depth : VHDX_DEFAULT_MAX_DEPTH;
	int ret;

	c->layers = vhdx_calloc(max_depth, sizeof *c->layers);
	if (!c->layers) {
		vhdx_layer_close(l);
		return vhdx_err(ENOMEM, "out of memory");
	}
	c->layers[c->n++] = l;
	c->virtual_size = l->virtual_size;

	while (!(opts->flags & VHDX_OPEN_NO_PARENT) && l->has_parent) {
		struct vhdx_layer *p;
		if (c->n >= max_depth) {
			ret = vhdx_err(ELOOP, "%s: the chain is deeper than the limit of %u layers", l->path, max_depth);
			goto fail;
		}
		/* caller I/O: the source's open_parent callback (or the file search when it has none) */
		if (src)
			ret = vhdx_parent_open_io(l, src, opts, c->n, &p, &src);
		else
			ret = vhdx_parent_open(l, opts, c->n, &p);
		if (ret < 0)
			goto fail;
		for (unsigned i = 0; i < c->n; i++) {
			/*
			 * The same file has the same identity, so only a layer whose
			 * identity matches needs the two stat() calls: without this
			 * check, opening a chain of depth n cost n*n stat() calls.
			 */
			if (!memcmp(c->layers[i]->identity, p->identity, sizeof p->identity) && same_file(c->layers[i], p)) {
				ret = vhdx_err(ELOOP, "%s: parent %s is already layer %u of this chain (a cycle)", l->path,
					       p->path, i);
				vhdx_layer_close(p);
				goto fail;
			}
		}
		/* disputed by implementations (FORMAT.md 1.8): read it, but say so */
		if (p->virtual_size != l->virtual_size)
			vhdx_chain_warn(c, "%s (layer %u) is %llu bytes, its parent %s is %llu bytes", l->path, c->n - 1,
					(unsigned long long)l->virtual_size, p->path,
					(unsigned long long)p->virtual_size);
		c->layers[c->n++] = p;
		l = p;
	}
	return 0;
fail:
	vhdx_chain_close(c);
	return ret;
}

int vhdx_chain_open(const char *path, const struct vhdx_open_options *opts, struct vhdx_chain *c)
{
	struct vhdx_layer *l;
	int ret;

	memset(c, 0, sizeof *c);
	ret = vhdx_layer_open_faults(path, layer_flags(opts), opts->faults, &l); /* opts->faults: fault injection or NULL */
	if (ret < 0)
		return ret;
	return chain_build(c, l, NULL, opts);
}

int vhdx_chain_open_io(struct vhdx_io *io, const struct vhdx_open_options *opts, struct vhdx_chain *c)
{
	struct vhdx_layer *l;
	int ret;

	memset(c, 0, sizeof *c);
	ret = vhdx_layer_open_io(io, io->name, layer_flags(opts), &l); /* owns IO, even on failure */
	if (ret < 0)
		return ret;
	/* IO stays alive below any overlay the format puts over it, as long as the layer */
	return chain_build(c, l, io, opts);
}

int vhdx_chain_read(const struct vhdx_chain *c, unsigned from, void *buf, size_t len, uint64_t voff)
{
	uint8_t *p = buf;

	while (len) {
		struct vhdx_layer *l;
		struct vhdx_layer_extent ext;
		int ret;

		if (from >= c->n || voff >= c->layers[from]->virtual_size) {
			/* below the base, or beyond a smaller parent: zeros */
			memset(p, 0, len);
			return 0;
		}
		l = c->layers[from];
		ret = l->ops->map(l, voff, len, &ext);
		if (ret < 0)
			return vhdx_err_prefix(ret, "%s (layer %u)", l->path, from);
		if (ext.len == 0 || ext.len > len)
			return vhdx_err(EIO, "%s: internal error: map returned %llu bytes for %zu", l->path,
					(unsigned long long)ext.len, len);
		switch (ext.kind) {
		case VHDX_LEXT_DATA:
			ret = vhdx_io_pread_payload(l->io, p, ext.len, ext.foff, voff);
			break;
		case VHDX_LEXT_PARENT:
			ret = vhdx_chain_read(c, from + 1, p, ext.len, voff);
			break;
		default:
			memset(p, 0, ext.len);
			ret = 0;
			break;
		}
		if (ret < 0)
			return ret;
		p += ext.len;
		voff += ext.len;
		len -= ext.len;
	}
	return 0;
}

/* The single-layer-resolved extent at VOFF: follows PARENT runs downwards. */
static int resolve_one(const struct vhdx_chain *c, uint64_t voff, uint64_t len, struct vhdx_extent *ext)
{
	unsigned i = 0;

	for (;;) {
		struct vhdx_layer *l;
		struct vhdx_layer_extent le;
		int ret;

		if (i >= c->n || voff >= c->layers[i]->virtual_size) {
			ext->kind = VHDX_EXTENT_ZERO;
			ext->len = len;
			return 0;
		}
		l = c->layers[i];
		ret = l->ops->map(l, voff, len, &le);
		if (ret < 0)
			return vhdx_err_prefix(ret, "%s (layer %u)", l->path, i);
		len = le.len;
		if (le.kind == VHDX_LEXT_DATA) {
			ext->kind = VHDX_EXTENT_DATA;
			ext->layer = i;
			ext->foff = le.foff;
			ext->len = len;
			return 0;
		}
		if (le.kind == VHDX_LEXT_ZERO) {
			ext->kind = VHDX_EXTENT_ZERO;
			ext->len = len;
			return 0;
		}
		i++;
	}
}

int vhdx_chain_map(const struct vhdx_chain *c, uint64_t voff, uint64_t len, struct vhdx_extent *ext)
{
	struct vhdx_extent next;
	int ret;

	if (voff >= c->virtual_size)
		return vhdx_err(EINVAL, "offset %llu is at or past the end of the disk (%llu bytes)",
				(unsigned long long)voff, (unsigned long long)c->virtual_size);
	if (len == 0)
		return vhdx_err(EINVAL, "zero-length map request");
	len = VHDX_MIN(len, c->virtual_size - voff);
	memset(ext, 0, sizeof *ext);
	ret = resolve_one(c, voff, len, ext);
	if (ret < 0)
		return ret;
	ext->voff = voff;
	/* coalesce following runs of the same kind, layer and contiguous file offsets */
	while (ext->len < len) {
		uint64_t at = voff + ext->len;
		memset(&next, 0, sizeof next);
		ret = resolve_one(c, at, len - ext->len, &next);
		if (ret < 0)
			return ret;
		if (next.kind != ext->kind)
			break;
		if (next.kind == VHDX_EXTENT_DATA && (next.layer != ext->layer || next.foff != ext->foff + ext->len))
			break;
		ext->len += next.len;
	}
	return 0;
}
