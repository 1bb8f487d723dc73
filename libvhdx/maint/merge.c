/*
 * merge.c - vhdx_merge(): writes the data of a child layer (and of every
 * layer between it and an ancestor) into the ancestor, like Hyper-V's
 * Merge-VHD.
 *
 * How it stays safe:
 *   - the chain is opened read-only first; when it cannot be opened nothing
 *     is written anywhere;
 *   - the ancestor is opened writable as an image of its own and receives
 *     ordinary writes, so its log (VHDX) or its write ordering (VHD) keeps it
 *     consistent at every instant;
 *   - the layers above the ancestor are not touched until the end, so the
 *     data to merge survives a crash, and merging is idempotent: running the
 *     same merge again writes the same bytes;
 *   - the first write into a VHDX ancestor renews its DataWriteGuid, after
 *     which the layer above no longer links to it.  CHILD.merging, written
 *     and made durable before the ancestor changes, records which ancestor
 *     and which old link this merge is about, so that a re-run after a crash
 *     accepts exactly that one mismatched link and nothing else.  It is
 *     removed once the merge and the re-linking are complete;
 *   - (issue #14) before the merge reads anything for itself it holds
 *     exclusive locks on every file it will change: the ancestor, the
 *     merged layers with VHDX_MERGE_DELETE, the children it re-points; the
 *     other files of the chain get shared locks when the chain is opened.
 *     So a merge of a mounted chain is refused, nothing changed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"
#include "image_internal.h"
#include "maint/merge_internal.h"

#define MERGE_CHUNK (4u << 20)            /* bytes copied per read/write */
#define MERGE_FLUSH_EVERY (64ull << 20)   /* bytes written between flushes of the ancestor */

void vhdx_merge_options_init(struct vhdx_merge_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
}

/* ---- the CHILD.merging record ---- */

static char *record_path(const char *child)
{
	size_t n = strlen(child) + sizeof ".merging";
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s.merging", child);
	return p;
}

/* fsync of the folder holding PATH, so that a created or removed name is durable. */
static int sync_dir_of(const char *path)
{
	char *dup = strdup(path);
	int ret = 0;

	if (!dup)
		return vhdx_err(ENOMEM, "out of memory");
	if (vhdx_sync_dir(dirname(dup)) < 0)
		ret = vhdx_err(errno, "%s: cannot sync the folder: %s", path, strerror(errno));
	free(dup);
	return ret;
}

/* Writes the record (ancestor's real path and the link the layer above it holds) durably. */
static int record_write(const char *rec, const char *ancestor_real, const uint8_t linkage[16])
{
	char tmp[PATH_MAX + 16], gs[VHDX_GUID_STRLEN];
	FILE *f;
	int ret;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", rec) >= sizeof tmp)
		return vhdx_err(ENAMETOOLONG, "%s: path too long", rec);
	f = fopen(tmp, "w");
	if (!f)
		return vhdx_err(errno, "%s: cannot create: %s", tmp, strerror(errno));
	vhdx_guid_format(linkage, gs);
	fprintf(f, "libvhdx merge record 1\nancestor=%s\nlinkage={%s}\n", ancestor_real, gs);
	/* the record must be durable before the ancestor's identity can change */
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		ret = vhdx_err(errno, "%s: cannot write: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return ret;
	}
	fclose(f);
	if (rename(tmp, rec) < 0) {
		ret = vhdx_err(errno, "%s: cannot rename to %s: %s", tmp, rec, strerror(errno));
		unlink(tmp);
		return ret;
	}
	return sync_dir_of(rec);
}

/* Reads the record: 1 found (fills ANCESTOR_REAL and LINKAGE), 0 none, -errno. */
static int record_read(const char *rec, char ancestor_real[PATH_MAX], uint8_t linkage[16])
{
	char line[PATH_MAX + 32];
	bool have_anc = false, have_link = false;
	FILE *f = fopen(rec, "r");

	if (!f)
		return errno == ENOENT ? 0 : vhdx_err(errno, "%s: %s", rec, strerror(errno));
	if (!fgets(line, sizeof line, f) || strcmp(line, "libvhdx merge record 1\n") != 0) {
		fclose(f);
		return vhdx_err(EBADMSG, "%s: not a merge record of this version", rec);
	}
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "ancestor=", 9) && strlen(line + 9) < PATH_MAX) {
			strcpy(ancestor_real, line + 9);
			have_anc = true;
		} else if (!strncmp(line, "linkage={", 9) && strlen(line) == 9 + 36 + 1 &&
			   vhdx_guid_parse_n(line + 9, 36, linkage) == 0) {
			have_link = true;
		}
	}
	fclose(f);
	if (!have_anc || !have_link)
		return vhdx_err(EBADMSG, "%s: incomplete merge record", rec);
	return 1;
}

int vhdx_merge_record_ancestor(const char *child, char *ancestor)
{
	char *rec = record_path(child);
	uint8_t linkage[16];
	int ret;

	if (!rec)
		return vhdx_err(ENOMEM, "out of memory");
	ret = record_read(rec, ancestor, linkage);
	free(rec);
	return ret;
}

/* ---- the copy ---- */

static bool same_file(const char *a, const char *b)
{
	return vhdx_same_file(a, b);
}

static bool linked(const struct vhdx_layer *child, const struct vhdx_layer *parent)
{
	return !memcmp(parent->identity, child->parent.linkage, 16) ||
	       (child->parent.has_linkage2 && !memcmp(parent->identity, child->parent.linkage2, 16));
}

enum above_kind { ABOVE_DATA, ABOVE_ZERO, BELOW };

/*
 * What the layers above the ancestor (0..K-1) say about VOFF: DATA stored
 * in one of them, ZERO (a ZERO block: it hides the ancestor), or nothing
 * (the ancestor's own content shows).  *LEN: length of that run (<= MAXLEN).
 */
static int above_at(const struct vhdx_chain *c, unsigned k, uint64_t voff, uint64_t maxlen, enum above_kind *kind,
		    uint64_t *len)
{
	uint64_t n = maxlen;

	for (unsigned i = 0; i < k; i++) {
		struct vhdx_layer *l = c->layers[i];
		struct vhdx_layer_extent le;
		int ret = l->ops->map(l, voff, n, &le);

		if (ret < 0)
			return vhdx_err_prefix(ret, "%s (layer %u)", l->path, i);
		if (le.len == 0 || le.len > n)
			return vhdx_err(EIO, "%s: internal error: map returned %llu bytes for %llu", l->path,
					(unsigned long long)le.len, (unsigned long long)n);
		n = le.len;
		if (le.kind == VHDX_LEXT_DATA) {
			*kind = ABOVE_DATA;
			*len = n;
			return 0;
		}
		if (le.kind == VHDX_LEXT_ZERO) {
			*kind = ABOVE_ZERO;
			*len = n;
			return 0;
		}
	}
	*kind = BELOW;
	*len = n;
	return 0;
}

/*
 * Whether the ancestor already reads BUF at [VOFF, VOFF+LEN) (BUF NULL:
 * zeros).  Used when resuming: see copy_chain().  SCRATCH holds LEN bytes.
 */
static int ancestor_holds(struct vhdx_image *anc, const uint8_t *buf, uint8_t *scratch, uint64_t voff, uint64_t len,
			  bool *same)
{
	ssize_t got = vhdx_pread(anc, scratch, (size_t)len, voff);

	if (got < 0)
		return (int)got;
	*same = (uint64_t)got == len && (buf ? !memcmp(scratch, buf, (size_t)len) : vhdx_buf_is_zero(scratch, (size_t)len));
	return 0;
}

/*
 * Zeros in the ancestor wherever [VOFF, VOFF+LEN) reads as data through it
 * now (with SCRATCH, of MERGE_CHUNK bytes: not where that data is zeros already).
 */
static int zero_in_ancestor(struct vhdx_image *anc, uint64_t voff, uint64_t len, uint8_t *scratch)
{
	while (len) {
		struct vhdx_extent e;
		int ret = vhdx_map(anc, voff, len, &e);

		if (ret < 0)
			return ret;
		if (e.len > len)
			e.len = len;
		if (e.kind == VHDX_EXTENT_DATA) {
			bool same = false;

			if (scratch && e.len <= MERGE_CHUNK) {
				ret = ancestor_holds(anc, NULL, scratch, voff, e.len, &same);
				if (ret < 0)
					return ret;
			}
			if (!same) {
				ret = vhdx_discard(anc, voff, e.len);
				if (ret < 0)
					return ret;
			}
		}
		voff += e.len;
		len -= e.len;
	}
	return 0;
}

/*
 * Copies what the layers above the ancestor (0..K-1) hold into it.  When
 * RESUMED (a re-run after a crash), ranges the ancestor already holds are
 * not written again: the crashed run may have completed the copy and
 * re-pointed a child to the ancestor's new DataWriteGuid already, and a
 * write would renew that identity once more and cut the child off.
 */
static int copy_chain(struct vhdx_chain *c, unsigned k, struct vhdx_image *anc, const struct vhdx_merge_options *o,
		      bool resumed)
{
	uint64_t size = c->virtual_size, voff = 0, since_flush = 0;
	uint8_t *buf = malloc(MERGE_CHUNK);
	uint8_t *scratch = resumed ? malloc(MERGE_CHUNK) : NULL;
	int ret = 0;

	if (!buf || (resumed && !scratch)) {
		free(buf);
		free(scratch);
		return vhdx_err(ENOMEM, "out of memory");
	}
	while (voff < size) {
		enum above_kind kind;
		uint64_t len, max = VHDX_MIN(size - voff, (uint64_t)MERGE_CHUNK);

		ret = above_at(c, k, voff, max, &kind, &len);
		if (ret < 0)
			break;
		/* grow the run while the next one has the same kind (fewer, larger writes) */
		while (voff + len < size && len < max) {
			enum above_kind k2;
			uint64_t l2;
			ret = above_at(c, k, voff + len, max - len, &k2, &l2);
			if (ret < 0 || k2 != kind)
				break;
			len += l2;
		}
		if (ret < 0)
			break;
		if (kind == ABOVE_DATA) {
			ssize_t w;
			/* the chain read gives exactly what the topmost layer holds here */
			ret = vhdx_chain_read(c, 0, buf, (size_t)len, voff);
			if (ret < 0)
				break;
			if (scratch) {
				bool same = false;
				ret = ancestor_holds(anc, buf, scratch, voff, len, &same);
				if (ret < 0)
					break;
				if (same) {
					voff += len;
					continue;
				}
			}
			w = vhdx_pwrite(anc, buf, (size_t)len, voff);
			if (w < 0 || (uint64_t)w != len) {
				ret = w < 0 ? (int)w : vhdx_err(EIO, "short write into the ancestor at %llu",
								(unsigned long long)voff);
				break;
			}
			since_flush += len;
		} else if (kind == ABOVE_ZERO) {
			/* a ZERO block above hides what the ancestor holds: it must read as zeros there too */
			ret = zero_in_ancestor(anc, voff, len, scratch);
			if (ret < 0)
				break;
			since_flush += len;
		}
		voff += len;
		if (since_flush >= MERGE_FLUSH_EVERY) {
			/* bounds what a crash can lose (and the writer's dirty metadata) */
			ret = vhdx_flush(anc);
			if (ret < 0)
				break;
			since_flush = 0;
		}
		if (o->progress && o->progress(voff, size, o->progress_arg)) {
			ret = vhdx_err(ECANCELED, "merge cancelled at %llu of %llu bytes", (unsigned long long)voff,
				       (unsigned long long)size);
			break;
		}
	}
	free(buf);
	free(scratch);
	if (ret < 0)
		return ret;
	return vhdx_flush(anc);
}

/* Opens the chain of CHILD read-only; with a record, accepts exactly the recorded mismatched link. */
static int open_chain(const char *child, const struct vhdx_merge_options *o, const char *rec, struct vhdx_chain *c,
		      bool *resumed)
{
	struct vhdx_open_options oo;
	char anc_real[PATH_MAX];
	uint8_t rec_link[16];
	int ret, have;

	vhdx_open_options_init(&oo);
	oo.flags = o->open_flags & VHDX_OPEN_IGNORE_ID_MISMATCH;
	oo.parent = o->parent;
	oo.parent_dirs = o->parent_dirs;
	oo.path_maps = o->path_maps;
	if (o->max_depth)
		oo.max_depth = o->max_depth;
	oo.faults = o->faults;
	*resumed = false;
	have = record_read(rec, anc_real, rec_link);
	if (have < 0)
		return have;
	if (!have)
		return vhdx_chain_open(child, &oo, c);
	/* an interrupted merge: its ancestor already has a new identity */
	oo.flags |= VHDX_OPEN_IGNORE_ID_MISMATCH;
	ret = vhdx_chain_open(child, &oo, c);
	if (ret < 0)
		return vhdx_err_prefix(ret, "resuming the merge recorded in %s", rec);
	for (unsigned i = 0; i + 1 < c->n; i++) {
		bool is_anc_link = same_file(c->layers[i + 1]->path, anc_real) &&
				   !memcmp(c->layers[i]->parent.linkage, rec_link, 16);
		if (is_anc_link || linked(c->layers[i], c->layers[i + 1]) ||
		    (o->open_flags & VHDX_OPEN_IGNORE_ID_MISMATCH))
			continue;
		ret = vhdx_err(EBADMSG, "%s: parent %s has the wrong identity, and it is not the ancestor of the "
					"merge recorded in %s", c->layers[i]->path, c->layers[i + 1]->path, rec);
		vhdx_chain_close(c);
		return ret;
	}
	*resumed = true;
	return 0;
}

/* The index K of the ancestor in chain C: opts->into, or the immediate parent.  0 or -EINVAL. */
static int find_ancestor(const struct vhdx_chain *c, const char *child, const char *into, unsigned *k)
{
	if (c->n < 2)
		return vhdx_err(EINVAL, "%s has no parent: nothing to merge into", child);
	*k = 1;
	if (!into)
		return 0;
	while (*k < c->n && !same_file(c->layers[*k]->path, into))
		(*k)++;
	if (*k == c->n)
		return vhdx_err(EINVAL, "%s is not an ancestor of %s (the chain is %u layers deep)", into, child, c->n);
	return 0;
}

/*
 * Takes the exclusive locks of the merge into LS (see the top of this
 * file).  Which files they are comes from a first open of the chain,
 * without the fault engine (so that fault rules count the merge's own
 * I/O only), closed again before the locks are taken: its shared locks
 * would conflict with them.  A chain that does not open locks nothing:
 * the merge's own open reports it.  0 or -errno (-EBUSY: in use).
 */
static int lock_files(const char *child, const struct vhdx_merge_options *o, const char *rec,
		      struct vhdx_lockset *ls)
{
	struct vhdx_merge_options q = *o;
	struct vhdx_chain c;
	char **paths;
	unsigned k, n = 0;
	bool resumed;
	int ret = 0;

	q.faults = NULL;
	if (open_chain(child, &q, rec, &c, &resumed) < 0)
		return 0;
	if (find_ancestor(&c, child, o->into, &k) < 0) {
		vhdx_chain_close(&c);
		return 0;
	}
	paths = calloc(k + 1, sizeof *paths);
	for (unsigned i = (o->flags & VHDX_MERGE_DELETE) ? 0 : k; paths && i <= k; i++)
		if (!(paths[n++] = strdup(c.layers[i]->path)))
			ret = vhdx_err(ENOMEM, "out of memory");
	if (!paths)
		ret = vhdx_err(ENOMEM, "out of memory");
	vhdx_chain_close(&c);
	for (unsigned i = 0; i < n; i++) {
		if (ret == 0)
			ret = vhdx_lockset_add(ls, paths[i], VHDX_LOCK_EXCLUSIVE, o->faults);
		free(paths[i]);
	}
	free(paths);
	for (size_t i = 0; ret == 0 && o->relink && o->relink[i]; i++)
		ret = vhdx_lockset_add(ls, o->relink[i], VHDX_LOCK_EXCLUSIVE, o->faults);
	return ret;
}

/* Every layer from CHILD to the ancestor K must have the chain's virtual size. */
static int same_sizes(const struct vhdx_chain *c, unsigned k, const char *child)
{
	for (unsigned i = 0; i <= k; i++) {
		if (c->layers[i]->virtual_size != c->virtual_size)
			return vhdx_err(ENOTSUP, "%s has a virtual size of %llu bytes, %s %llu: merging layers of "
						 "different sizes is not supported", c->layers[i]->path,
					(unsigned long long)c->layers[i]->virtual_size, child,
					(unsigned long long)c->virtual_size);
	}
	return 0;
}

/* Copies of the paths of layers 0..K-1 (the merged ones) into *MERGED; *N counts those made (free them even on failure). */
static int merged_paths(const struct vhdx_chain *c, unsigned k, char ***merged, unsigned *n)
{
	*merged = calloc(k, sizeof **merged);
	if (!*merged)
		return vhdx_err(ENOMEM, "out of memory");
	for (unsigned i = 0; i < k; i++) {
		(*merged)[i] = strdup(c->layers[i]->path);
		if (!(*merged)[i])
			return vhdx_err(ENOMEM, "out of memory");
		(*n)++;
	}
	return 0;
}

/*
 * Opens the ancestor, layer K of C at ANC_REAL, writable as an image of its
 * own (the writer only writes leaves), over the very parent file the chain
 * used, and checks it is still the file checked before.
 */
static int open_ancestor(const struct vhdx_chain *c, unsigned k, const struct vhdx_merge_options *o,
			 const char *anc_real, struct vhdx_image **anc)
{
	struct vhdx_open_options ao;
	int ret;

	vhdx_open_options_init(&ao);
	ao.flags = VHDX_OPEN_RDWR | VHDX_OPEN_IGNORE_ID_MISMATCH;
	if (k + 1 < c->n) {
		ao.parent = c->layers[k + 1]->path; /* the very file the chain used */
		if (!(o->open_flags & VHDX_OPEN_IGNORE_ID_MISMATCH) && !linked(c->layers[k], c->layers[k + 1]))
			ao.flags &= ~VHDX_OPEN_IGNORE_ID_MISMATCH;
	} else {
		ao.flags |= VHDX_OPEN_NO_PARENT;
	}
	if (o->max_depth)
		ao.max_depth = o->max_depth;
	ao.parent_dirs = o->parent_dirs;
	ao.path_maps = o->path_maps;
	ao.faults = o->faults;
	ret = vhdx_open(anc_real, &ao, anc);
	if (ret < 0)
		return vhdx_err_prefix(ret, "opening the ancestor %s for writing", anc_real);
	/* opened again by name: the file there now must be the one checked above */
	ret = vhdx_merge_scope_reopened(c, k, vhdx_image_chain(*anc)->layers[0], o);
	if (ret < 0) {
		vhdx_close(*anc);
		*anc = NULL;
	}
	return ret;
}

/*
 * After the ancestor is complete and durable: re-points the children O
 * names to it, removes the record REC, and deletes (VHDX_MERGE_DELETE) or
 * just reports the MERGED[0..N) layers.
 */
static int merge_finish(const struct vhdx_merge_options *o, const char *rec, const char *anc_real, char **merged,
			unsigned n)
{
	int ret;

	for (size_t i = 0; o->relink && o->relink[i]; i++) {
		ret = vhdx_reparent_faults(o->relink[i], anc_real, VHDX_REPARENT_RELINK, o->faults);
		if (ret < 0)
			return vhdx_err_prefix(ret, "the merge into %s is complete, but re-pointing %s to it failed "
						    "(run the merge again or vhdx reparent)", anc_real, o->relink[i]);
	}
	if (unlink(rec) < 0 && errno != ENOENT)
		return vhdx_err(errno, "%s: cannot remove: %s", rec, strerror(errno));
	ret = sync_dir_of(rec);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		int deleted = 0;
		if (o->flags & VHDX_MERGE_DELETE) {
			if (unlink(merged[i]) < 0)
				return vhdx_err(errno, "%s: merged, but cannot delete it: %s", merged[i], strerror(errno));
			deleted = 1;
		}
		if (o->merged_layer)
			o->merged_layer(merged[i], deleted, o->progress_arg);
	}
	return 0;
}

int vhdx_merge(const char *child, const struct vhdx_merge_options *opts_in)
{
	struct vhdx_merge_options o;
	struct vhdx_chain c;
	struct vhdx_image *anc = NULL;
	struct vhdx_lockset locks;
	char anc_real[PATH_MAX];
	char *rec = NULL, **merged = NULL;
	unsigned k = 0, n_merged = 0;
	bool resumed;
	int ret;

	vhdx_err_clear();
	if (!child)
		return vhdx_err(EINVAL, "vhdx_merge: child must not be NULL");
	ret = vhdx_options_in(&o, sizeof o, opts_in, offsetof(struct vhdx_merge_options, flags) + sizeof(unsigned),
			      "vhdx_merge");
	if (ret < 0)
		return ret;
	rec = record_path(child);
	if (!rec)
		return vhdx_err(ENOMEM, "out of memory");
	memset(&c, 0, sizeof c);
	vhdx_lockset_begin(&locks);
	ret = lock_files(child, &o, rec, &locks);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		free(rec);
		return vhdx_err_prefix(ret, "merge of %s: nothing was changed", child);
	}
	ret = open_chain(child, &o, rec, &c, &resumed);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		free(rec);
		return vhdx_err_prefix(ret, "merge of %s: the chain cannot be opened, nothing was changed", child);
	}
	ret = find_ancestor(&c, child, o.into, &k);
	if (ret == 0)
		ret = same_sizes(&c, k, child);
	if (ret < 0)
		goto out;
	/* a locator may point anywhere: write only where the user allows it */
	ret = vhdx_merge_scope_check(&c, k, child, &o);
	if (ret < 0)
		goto out;
	if (!realpath(c.layers[k]->path, anc_real)) {
		ret = vhdx_err(errno, "%s: %s", c.layers[k]->path, strerror(errno));
		goto out;
	}
	ret = merged_paths(&c, k, &merged, &n_merged);
	if (ret < 0)
		goto out;
	if (!resumed) {
		/* durable before the ancestor's identity can change (see the top of this file) */
		ret = record_write(rec, anc_real, c.layers[k - 1]->parent.linkage);
		if (ret < 0)
			goto out;
	}
	ret = open_ancestor(&c, k, &o, anc_real, &anc);
	if (ret < 0)
		goto out;
	ret = copy_chain(&c, k, anc, &o, resumed);
	if (ret < 0) {
		/* keep the copy's message: the close after a failure has its own */
		char *msg = vhdx_err_dup();
		vhdx_close(anc);
		ret = vhdx_err(-ret, "merging %s into %s (run the merge again to complete it): %s", child, anc_real,
			       msg ? msg : "");
		free(msg);
		goto out;
	}
	ret = vhdx_close(anc);
	anc = NULL;
	if (ret < 0) {
		ret = vhdx_err_prefix(ret, "closing %s (run the merge again to complete it)", anc_real);
		goto out;
	}
	vhdx_chain_close(&c);
	memset(&c, 0, sizeof c);
	/* the ancestor is complete and durable: re-point the named children to it */
	ret = merge_finish(&o, rec, anc_real, merged, n_merged);
out:
	if (c.layers)
		vhdx_chain_close(&c);
	vhdx_lockset_end(&locks); /* after the deletions: nobody opened a layer about to go */
	for (unsigned i = 0; i < n_merged; i++)
		free(merged[i]);
	free(merged);
	free(rec);
	return ret;
}
