/*
 * parent.c - finding a differencing layer's parent (MS-VHDX 2.6.2.6,
 * VHD spec "parent locator"; FORMAT.md 1.8 and 2.4).
 *
 * Candidates, in order, each tried once:
 *   1. an explicit parent given by the user for the leaf (overrides all);
 *   2. each locator path in the format's order (VHDX: relative_path,
 *      volume_path, absolute_win32_path; VHD: W2ru, W2ku, the Unicode
 *      name).  Relative paths are taken against the child's folder with
 *      '\' mapped to '/'.  Absolute and volume paths come from the image,
 *      which may be hostile: they are followed only through a path map the
 *      user gave ("C:\=/mnt/c/"), never as they stand;
 *   3. the file name of each locator path in the child's folder, then in
 *      every parent folder the user listed.
 * A child opened by NBD URI (io/uri.c) has exports for folders: its
 * relative paths and file names name exports of the same server, and a
 * parent folder given as a URI is searched the same way.
 * A candidate is accepted only when its identity (VHDX DataWriteGuid, VHD
 * unique id) equals the child's link, unless the user says to ignore a
 * mismatch; every candidate is opened read-only and checked before any of
 * its data is used.  A failure names every path tried and why it failed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/grow.h"
#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"
#include "io/io.h"

struct tried {
	char *buf;
	size_t len, cap;
	unsigned count;
};

static void tried_add(struct tried *t, const char *path, const char *why)
{
	size_t need = strlen(path) + strlen(why) + 8;

	if (grow(&t->buf, &t->cap, t->len + need + 1, 1, 256) < 0)
		return;
	t->len += (size_t)snprintf(t->buf + t->len, t->cap - t->len, "%s%s (%s)", t->count ? "; " : "", path, why);
	t->count++;
}

/* Last component of a Windows or POSIX path. */
static const char *base_name(const char *p)
{
	const char *b = p;

	for (const char *q = p; *q; q++)
		if (*q == '\\' || *q == '/')
			b = q + 1;
	return b;
}

static char *join(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s/%s", dir, rel);
	return s;
}

static void slashes(char *s)
{
	for (; *s; s++)
		if (*s == '\\')
			*s = '/';
}

/* Folder of the child file ("." when it has none). */
static char *child_dir(const char *child_path)
{
	const char *slash = strrchr(child_path, '/');
	char *d;

	if (!slash)
		return strdup(".");
	if (slash == child_path)
		return strdup("/");
	d = strndup(child_path, (size_t)(slash - child_path));
	return d;
}

/* A relative locator path as a local path, or NULL when it is not relative. */
static char *map_relative(const char *dir, const char *value)
{
	char *rel, *out;
	const char *v = value;

	if (v[0] == '\\' || v[0] == '/' || (v[0] && v[1] == ':'))
		return NULL;
	while (v[0] == '.' && (v[1] == '\\' || v[1] == '/'))
		v += 2;
	rel = strdup(v);
	if (!rel)
		return NULL;
	slashes(rel);
	out = join(dir, rel);
	free(rel);
	return out;
}

/*
 * REST (a path below a mapped folder, '/'-separated) with "." and ".."
 * resolved as text, in *OUT (owned by the caller): 0, -EPERM when a ".."
 * would climb out of the folder, -ENOMEM; so that a stored "C:\..\..\etc\x" cannot leave the folder
 * the user mapped C:\ to.
 */
static int confine(const char *rest, char **res)
{
	size_t n = strlen(rest), len = 0;
	char *out = malloc(n + 1);
	const char *p = rest;

	if (!out)
		return -ENOMEM;
	while (*p) {
		size_t clen = strcspn(p, "/");
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (len == 0) {
				free(out);
				return -EPERM;
			}
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the '/' before the dropped component */
		} else if (clen && !(clen == 1 && p[0] == '.')) {
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, clen);
			len += clen;
		}
		p += clen;
		while (*p == '/')
			p++;
	}
	out[len] = '\0';
	*res = out;
	return 0;
}

/* Windows paths compare without regard to case; separators '\' and '/' alike. */
static bool win_prefix(const char *prefix, size_t plen, const char *v)
{
	if (strlen(v) < plen)
		return false;
	for (size_t i = 0; i < plen; i++) {
		char a = prefix[i], b = v[i];
		if (a == '/')
			a = '\\';
		if (b == '/')
			b = '\\';
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	/* whole components only: "C:\VMs" does not map "C:\VMsecret" */
	return plen == 0 || prefix[plen - 1] == '\\' || prefix[plen - 1] == '/' || v[plen] == '\0' ||
	       v[plen] == '\\' || v[plen] == '/';
}

/*
 * An absolute/volume locator path through the user's "WINPREFIX=DIR" maps,
 * or NULL.  *ESCAPES is set when a map matched but the path climbs out of
 * its folder.
 */
static char *map_absolute(const struct vhdx_open_options *opts, const char *value, bool *escapes)
{
	const char *v = value;

	*escapes = false;
	/* "\\?\C:\x" is the long form of "C:\x" */
	if (!strncmp(v, "\\\\?\\", 4) && v[4] && v[5] == ':')
		v += 4;
	for (const char *const *m = opts->path_maps; m && *m; m++) {
		const char *eq = strchr(*m, '=');
		char *rest, *inside = NULL, *out;
		int r;
		if (!eq || !win_prefix(*m, (size_t)(eq - *m), v))
			continue;
		rest = strdup(v + (eq - *m));
		if (!rest)
			return NULL;
		slashes(rest);
		r = confine(rest, &inside);
		free(rest);
		if (r < 0) {
			*escapes = r == -EPERM;
			return NULL;
		}
		out = join(eq + 1, inside);
		free(inside);
		return out;
	}
	return NULL;
}

/* MSG without a leading "PATH: " (the list of paths tried names it already). */
static const char *without_path(const char *msg, const char *path)
{
	size_t n = strlen(path);

	return !strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

struct cand_list {
	char **paths;
	size_t n, cap;
};

static void cand_add(struct cand_list *c, char *path)
{
	if (!path)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->paths[i], path)) {
			free(path);
			return;
		}
	}
	if (grow(&c->paths, &c->cap, c->n + 1, sizeof *c->paths, 8) < 0) {
		free(path);
		return;
	}
	c->paths[c->n++] = path;
}

static bool is_absolute_key(const char *key)
{
	return !strcmp(key, "volume_path") || !strcmp(key, "absolute_win32_path") || !strcmp(key, "W2ku") ||
	       !strcmp(key, "Wi2k");
}

int vhdx_parent_open(const struct vhdx_layer *child, const struct vhdx_open_options *opts, unsigned depth,
		     struct vhdx_layer **out)
{
	const struct vhdx_parent_ref *ref = &child->parent;
	struct cand_list c = { 0 };
	struct tried t = { 0 };
	struct vhdx_layer *mismatched = NULL;
	char *dir = child_dir(child->path), *mismatch_msg = NULL;
	char want[VHDX_GUID_STRLEN], got[VHDX_GUID_STRLEN];
	unsigned flags = ((opts->flags & VHDX_OPEN_SALVAGE) ? VHDX_LAYER_SALVAGE : 0) |
			 ((opts->flags & VHDX_OPEN_FORCE_SHARE) ? VHDX_LAYER_NO_LOCK : 0);
	bool explicit_parent = depth == 1 && opts->parent;
	bool child_uri = vhdx_io_is_uri(child->path); /* relative names are exports of the same server */
	const char *name = ref->n_paths ? base_name(ref->paths[0].value) : "(unnamed)";
	int ret = 0;

	if (!dir)
		return vhdx_err(ENOMEM, "out of memory");
	vhdx_guid_format(ref->linkage, want);
	if (explicit_parent) {
		cand_add(&c, strdup(opts->parent));
	} else {
		for (size_t i = 0; i < ref->n_paths; i++) {
			const char *key = ref->paths[i].key, *val = ref->paths[i].value;
			bool escapes = false;
			char *p = is_absolute_key(key) ? map_absolute(opts, val, &escapes)
				  : child_uri		 ? vhdx_io_uri_resolve(child->path, val, false)
							 : map_relative(dir, val);
			if (p)
				cand_add(&c, p);
			else if (escapes)
				tried_add(&t, val, "climbs out of the folder its path map names: not followed");
			else if (is_absolute_key(key))
				tried_add(&t, val, "absolute path from the image: followed only through a path map");
			/* a bare parent_name is tried by file name below */
		}
		for (size_t i = 0; i < ref->n_paths; i++)
			cand_add(&c, child_uri ? vhdx_io_uri_resolve(child->path, base_name(ref->paths[i].value), false)
					       : join(dir, base_name(ref->paths[i].value)));
		/* a search folder may be an NBD URI too: its export name is the folder */
		for (const char *const *d = opts->parent_dirs; d && *d; d++)
			for (size_t i = 0; i < ref->n_paths; i++)
				cand_add(&c, vhdx_io_is_uri(*d) ? vhdx_io_uri_resolve(*d, base_name(ref->paths[i].value), true)
								: join(*d, base_name(ref->paths[i].value)));
	}

	for (size_t i = 0; i < c.n; i++) {
		struct vhdx_layer *p;
		bool linked;

		/* found through a locator: a regular file, and a non-image is not described */
		ret = vhdx_layer_open_faults(c.paths[i], flags | (explicit_parent ? 0 : VHDX_LAYER_LOCATED), opts->faults,
					     &p); /* faults: see io/fault.h */
		if (ret == -EIO || ret == -ENOMEM || ret == -EBUSY) {
			/* the disk failed (or another process writes the parent), not the search: say that */
			ret = vhdx_err_prefix(ret, "%s: opening parent candidate", child->path);
			goto out;
		}
		if ((ret == -ENOENT || ret == -ENOTDIR) && !vhdx_io_is_uri(c.paths[i])) {
			/* a server's own words (no such export) say more than "not found": kept below */
			tried_add(&t, c.paths[i], "not found");
			continue;
		}
		if (ret < 0) {
			tried_add(&t, c.paths[i], without_path(vhdx_errmsg(), c.paths[i]));
			continue;
		}
		linked = !memcmp(p->identity, ref->linkage, 16) ||
			 (ref->has_linkage2 && !memcmp(p->identity, ref->linkage2, 16));
		if (!linked) {
			char why[200];
			vhdx_guid_format(p->identity, got);
			snprintf(why, sizeof why, "identity mismatch: the child links to {%s}, this file is {%s}", want,
				 got);
			tried_add(&t, c.paths[i], why);
			if (!mismatched) {
				mismatched = p;
				mismatch_msg = strdup(why);
			} else {
				vhdx_layer_close(p);
			}
			continue;
		}
		vhdx_layer_close(mismatched);
		mismatched = NULL;
		*out = p;
		ret = 0;
		goto check;
	}
	if (mismatched && (opts->flags & VHDX_OPEN_IGNORE_ID_MISMATCH)) {
		*out = mismatched;
		mismatched = NULL;
		ret = 0;
		goto check;
	}
	if (mismatched) {
		ret = vhdx_err(EBADMSG, "%s: parent %s has the wrong identity (%s; use ignore-id-mismatch to accept it). Tried: %s",
			       child->path, mismatched->path, mismatch_msg ? mismatch_msg : "", t.buf ? t.buf : "");
		vhdx_layer_close(mismatched);
	} else {
		ret = vhdx_err(ENOENT, "%s: parent \"%s\" (identity {%s}) not found. Tried: %s", child->path, name, want,
			       t.buf ? t.buf : "no path (the locator has none that can be used here)");
	}
	goto out;
check:
	if ((*out)->logical_sector_size != child->logical_sector_size) {
		ret = vhdx_err(EBADMSG, "%s: parent %s has %u-byte logical sectors, the child %u-byte ones", child->path,
			       (*out)->path, (*out)->logical_sector_size, child->logical_sector_size);
		vhdx_layer_close(*out);
		*out = NULL;
	}
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.paths[i]);
	free(c.paths);
	free(t.buf);
	free(dir);
	free(mismatch_msg);
	return ret;
}
