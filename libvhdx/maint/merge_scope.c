/*
 * merge_scope.c - which files of a chain a merge may change.  Parents are
 * found through locators the image itself holds, and a relative_path may
 * climb with "..": reading through it is fine (Hyper-V writes
 * "..\Virtual Hard Disks\base.vhdx"), writing is not.  A merge writes into
 * the ancestor and, with VHDX_MERGE_DELETE, deletes the layers between;
 * each of these must lie in the child's folder (or below it) or in a
 * parent folder the caller gave, unless the caller named that very file
 * (the explicit parent for layer 1, the merge target for the ancestor).
 * The ancestor is then opened again, for writing, by its path: that open
 * must find the same image, and a regular file unless the user named it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "chain/chain.h"
#include "maint/merge_internal.h"

#ifdef _WIN32
#define IS_SEP(ch) ((ch) == '/' || (ch) == '\\')
#else
#define IS_SEP(ch) ((ch) == '/')
#endif

/* True when the real path REAL lies in the folder DIR or below it. */
static bool inside(const char *real, const char *dir)
{
	char rdir[PATH_MAX];
	size_t n;

	if (!realpath(dir, rdir))
		return false;
	n = strlen(rdir);
	while (n > 1 && IS_SEP(rdir[n - 1]))
		n--;
	if (n == 1 && IS_SEP(rdir[0]))
		return true;
	return !strncmp(real, rdir, n) && IS_SEP(real[n]);
}

/* The folder of CHILD ("." for a bare name), in BUF. */
static void folder_of(const char *child, char buf[PATH_MAX])
{
	const char *slash = NULL;
	size_t n;

	for (const char *q = child; *q; q++)
		if (IS_SEP(*q))
			slash = q;
	n = slash ? (size_t)(slash - child) : 0;

	if (n >= PATH_MAX)
		n = PATH_MAX - 1;
	if (slash && n == 0)
		n = 1; /* "/x": the root */
	if (!slash)
		memcpy(buf, ".", 2);
	else {
		memcpy(buf, child, n);
		buf[n] = '\0';
	}
}

/* True when the user named PATH: the explicit parent (layer 1) or the merge target (layer K). */
static bool user_named(const char *path, unsigned i, unsigned k, const struct vhdx_merge_options *o)
{
	return (i == 1 && o->parent && vhdx_same_file(o->parent, path)) ||
	       (i == k && o->into && vhdx_same_file(o->into, path));
}

int vhdx_merge_scope_check(const struct vhdx_chain *c, unsigned k, const char *child,
			   const struct vhdx_merge_options *o)
{
	char cdir[PATH_MAX], real[PATH_MAX];

	folder_of(child, cdir);
	for (unsigned i = 1; i <= k; i++) {
		const struct vhdx_layer *l = c->layers[i];
		bool ok = user_named(l->path, i, k, o);

		if (i < k && !(o->flags & VHDX_MERGE_DELETE))
			continue; /* only read */
		if (!realpath(l->path, real))
			return vhdx_err(errno, "%s: %s", l->path, strerror(errno));
		ok = ok || inside(real, cdir);
		for (const char *const *d = o->parent_dirs; !ok && d && *d; d++)
			ok = inside(real, *d);
		if (ok)
			continue;
		if (i == k)
			return vhdx_err(EPERM, "merge of %s: the ancestor to write into is %s (reached through the parent "
					       "locator of %s), outside %s and the parent folders given: name it as the "
					       "merge target (--into) to write into it; nothing was changed",
					child, real, c->layers[i - 1]->path, cdir);
		return vhdx_err(EPERM, "merge of %s: %s (reached through the parent locator of %s) would be deleted, "
				       "but it is outside %s and the parent folders given: give its folder as a parent "
				       "folder (--parent-dir) to allow it; nothing was changed",
				child, real, c->layers[i - 1]->path, cdir);
	}
	return 0;
}

int vhdx_merge_scope_reopened(const struct vhdx_chain *c, unsigned k, const struct vhdx_layer *w,
			      const struct vhdx_merge_options *o)
{
	const struct vhdx_layer *was = c->layers[k];
	int fd = vhdx_io_get_fd(w->io);
	struct stat st;

	if (memcmp(was->identity, w->identity, sizeof w->identity) != 0)
		return vhdx_err(EPERM, "%s changed between the chain's open and the open for writing (another image "
				       "is there now): nothing was merged", w->path);
	/* judged on the descriptor the merge writes through, not on the name */
	if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !user_named(w->path, k, k, o))
		return vhdx_err(EPERM, "%s is not a regular file now: merge writes into a device only when it is "
				       "named as the merge target (--into); nothing was merged", w->path);
	return 0;
}
