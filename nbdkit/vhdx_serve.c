/*
 * vhdx_serve.c - the parent options and the data requests shared by the
 * nbdkit plugin and the nbdkit filter (vhdx_serve.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "vhdx_serve.h"

int vhdx_serve_fail(int neg_errno, const char *fmt, ...)
{
	char what[256];
	const char *msg = vhdx_errmsg();
	va_list ap;
	int e = neg_errno < 0 ? -neg_errno : EIO;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	nbdkit_error("%s: %s", what, msg && *msg ? msg : strerror(e));
	return e;
}

char *vhdx_serve_abs_or_uri(const char *value)
{
	char *s;

	if (!vhdx_path_is_uri(value))
		return nbdkit_realpath(value);
	s = strdup(value);
	if (!s)
		nbdkit_error("out of memory");
	return s;
}

int vhdx_serve_parent_config(struct vhdx_serve_parents *p, const char *key, const char *value)
{
	if (!strcmp(key, "parent")) {
		free(p->parent);
		p->parent = vhdx_serve_abs_or_uri(value);
		return p->parent ? 1 : -1;
	}
	if (!strcmp(key, "parent-dir")) {
		if (p->n_parent_dirs >= VHDX_SERVE_MAX_LIST) {
			nbdkit_error("too many parent-dir parameters (%d at most)", VHDX_SERVE_MAX_LIST);
			return -1;
		}
		p->parent_dirs[p->n_parent_dirs] = vhdx_serve_abs_or_uri(value);
		if (!p->parent_dirs[p->n_parent_dirs])
			return -1;
		p->n_parent_dirs++;
		return 1;
	}
	if (!strcmp(key, "path-map")) {
		/* nbdkit splits key=value at the first '=': VALUE is "WINPREFIX=DIR" */
		const char *eq = strchr(value, '=');
		char *dir;
		if (!eq || eq == value || !eq[1]) {
			nbdkit_error("path-map takes 'WINDOWS_PREFIX=FOLDER', got '%s'", value);
			return -1;
		}
		if (p->n_path_maps >= VHDX_SERVE_MAX_LIST) {
			nbdkit_error("too many path-map parameters (%d at most)", VHDX_SERVE_MAX_LIST);
			return -1;
		}
		dir = nbdkit_absolute_path(eq + 1);
		if (!dir)
			return -1;
		if (asprintf(&p->path_maps[p->n_path_maps], "%.*s=%s", (int)(eq - value), value, dir) < 0) {
			free(dir);
			nbdkit_error("out of memory");
			return -1;
		}
		free(dir);
		p->n_path_maps++;
		return 1;
	}
	return vhdx_serve_bool_config("ignore-id-mismatch", &p->ignore_id, key, value);
}

int vhdx_serve_bool_config(const char *name, bool *out, const char *key, const char *value)
{
	int r;

	if (strcmp(key, name))
		return 0;
	r = nbdkit_parse_bool(value);
	if (r < 0)
		return -1;
	*out = r;
	return 1;
}

void vhdx_serve_parents_free(struct vhdx_serve_parents *p)
{
	free(p->parent);
	for (unsigned i = 0; i < p->n_parent_dirs; i++)
		free(p->parent_dirs[i]);
	for (unsigned i = 0; i < p->n_path_maps; i++)
		free(p->path_maps[i]);
	memset(p, 0, sizeof *p);
}

void vhdx_serve_parents_apply(const struct vhdx_serve_parents *p, struct vhdx_open_options *o)
{
	if (p->ignore_id)
		o->flags |= VHDX_OPEN_IGNORE_ID_MISMATCH;
	o->parent = p->parent;
	o->parent_dirs = p->n_parent_dirs ? (const char *const *)p->parent_dirs : NULL;
	o->path_maps = p->n_path_maps ? (const char *const *)p->path_maps : NULL;
}

/* ---------------------------------------------------------------- data */

/*
 * The errno for vhdx_pread/vhdx_pwrite's result R of a WHAT of COUNT bytes:
 * nbdkit checks ranges against get_size, so a short transfer means the
 * image changed under us.
 */
static int transferred(ssize_t r, const char *what, uint32_t count, uint64_t offset)
{
	if (r < 0)
		return vhdx_serve_fail((int)r, "%s of %" PRIu32 " bytes at %" PRIu64, what, count, offset);
	if ((uint64_t)r != count) {
		nbdkit_error("%s of %" PRIu32 " bytes at %" PRIu64 ": only %zd bytes before the end of the disk", what,
			     count, offset, r);
		return EIO;
	}
	return 0;
}

int vhdx_serve_pread(struct vhdx_image *img, void *buf, uint32_t count, uint64_t offset)
{
	return transferred(vhdx_pread(img, buf, count, offset), "read", count, offset);
}

static int flush_if_fua(struct vhdx_image *img, uint32_t flags, const char *what, uint32_t count, uint64_t offset)
{
	int r;

	if (!(flags & NBDKIT_FLAG_FUA))
		return 0;
	r = vhdx_flush(img);
	return r < 0 ? vhdx_serve_fail(r, "flush after %s of %" PRIu32 " bytes at %" PRIu64 " (FUA)", what, count,
				       offset)
		     : 0;
}

int vhdx_serve_pwrite(struct vhdx_image *img, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	int e = transferred(vhdx_pwrite(img, buf, count, offset), "write", count, offset);

	return e ? e : flush_if_fua(img, flags, "write", count, offset);
}

int vhdx_serve_flush(struct vhdx_image *img)
{
	int r = vhdx_flush(img);

	return r < 0 ? vhdx_serve_fail(r, "flush") : 0;
}

int vhdx_serve_trim(struct vhdx_image *img, uint32_t count, uint64_t offset, uint32_t flags)
{
	int r = vhdx_discard(img, offset, count);

	if (r < 0)
		return vhdx_serve_fail(r, "trim of %" PRIu32 " bytes at %" PRIu64, count, offset);
	return flush_if_fua(img, flags, "trim", count, offset);
}

/* Zeros for vhdx_serve_zero without MAY_TRIM; never written (in .bss, not in the file). */
static char zero_buf[1u << 20];

/*
 * MAY_TRIM: vhdx_discard, which leaves the range reading as zeros (whole
 * VHDX blocks become ZERO state, which also hides a parent's data; partial
 * blocks and VHD get zeros written).  Without it the client asked us not
 * to punch holes, so zeros are written (libvhdx still stores nothing over
 * a base disk's unallocated blocks, which read as zeros already).  A fast
 * zero is promised only for block release; anything that writes zeros is
 * refused up front with ENOTSUP, before touching the image.
 */
int vhdx_serve_zero(struct vhdx_image *img, bool native_discard, uint32_t count, uint64_t offset, uint32_t flags)
{
	bool trim = (flags & NBDKIT_FLAG_MAY_TRIM) != 0;
	uint64_t done = 0;
	int r;

	if ((flags & NBDKIT_FLAG_FAST_ZERO) && !(trim && native_discard))
		return ENOTSUP;
	if (trim) {
		r = vhdx_discard(img, offset, count);
		if (r < 0)
			return vhdx_serve_fail(r, "zero (trim) of %" PRIu32 " bytes at %" PRIu64, count, offset);
	} else {
		while (done < count) {
			size_t n = count - done < sizeof zero_buf ? (size_t)(count - done) : sizeof zero_buf;
			ssize_t w = vhdx_pwrite(img, zero_buf, n, offset + done);
			if (w < 0)
				return vhdx_serve_fail((int)w, "zero of %" PRIu32 " bytes at %" PRIu64, count, offset);
			if ((size_t)w != n) {
				nbdkit_error("zero of %" PRIu32 " bytes at %" PRIu64 ": past the end of the disk", count, offset);
				return EIO;
			}
			done += n;
		}
	}
	return flush_if_fua(img, flags, "zero", count, offset);
}

/*
 * Block status from vhdx_map, which already resolves the chain: DATA is
 * stored in some layer (allocated), ZERO reads as zeros without stored
 * bytes (unallocated in every layer, ZERO state, past a parent's end):
 * a hole that reads as zeros.  nbdkit merges neighbours of one type.
 */
#define MAX_EXTENTS_PER_REPLY 65536 /* bounds one reply; the client asks again where it stops */

int vhdx_serve_extents(struct vhdx_image *img, uint32_t count, uint64_t offset, uint32_t flags,
		       struct nbdkit_extents *extents)
{
	uint64_t off = offset, end = offset + count;
	unsigned n = 0;

	while (off < end && n < MAX_EXTENTS_PER_REPLY) {
		struct vhdx_extent e;
		int r = vhdx_map(img, off, end - off, &e);
		if (r < 0)
			return vhdx_serve_fail(r, "block status at %" PRIu64, off);
		if (e.len == 0 || e.len > end - off) {
			nbdkit_error("block status at %" PRIu64 ": vhdx_map returned an extent of %" PRIu64 " bytes",
				     off, e.len);
			return EIO;
		}
		if (nbdkit_add_extent(extents, off, e.len,
				      e.kind == VHDX_EXTENT_DATA ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) < 0)
			return errno ? errno : ENOMEM;
		off += e.len;
		n++;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}
