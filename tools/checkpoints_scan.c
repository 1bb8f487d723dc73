/*
 * checkpoints_scan.c - the facts `vhdx checkpoints DIR` reports: every
 * image of the folder (found by the library's format probes, whatever its
 * name), each differencing image's parent found with the library's own
 * resolution (chain/parent.c: locator paths, --path-map, --parent-dir,
 * --parent as a last candidate, the identity check, --ignore-id-mismatch),
 * parents outside the folder followed too, then cycles of parents and
 * layers merged away (`vhdx merge B` without --delete: B's data is all in
 * its parent, which changed after B was made).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/grow.h"
#include "checkpoints.h"

#define COMPARE_CHUNK (1u << 20)
#define VHD_EPOCH 946684800 /* 2000-01-01 00:00:00 UTC, where VHD time stamps count from */

const char *ckpt_parent_name(const char *stored)
{
	const char *b = stored;

	for (const char *q = stored; *q; q++)
		if (*q == '\\' || *q == '/')
			b = q + 1;
	return b;
}

static bool image_suffix(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (!strcasecmp(dot, ".vhdx") || !strcasecmp(dot, ".avhdx") || !strcasecmp(dot, ".vhd") ||
		       !strcasecmp(dot, ".avhd"));
}

static struct node *node_add(struct scan *s)
{
	if (grow(&s->nodes, &s->cap, s->n + 1, sizeof *s->nodes, 16) < 0)
		return NULL;
	memset(&s->nodes[s->n], 0, sizeof s->nodes[0]);
	s->nodes[s->n].parent = -1;
	s->nodes[s->n].mismatched = -1;
	return &s->nodes[s->n++];
}

static int bad_add(struct scan *s, const char *path, const char *msg)
{
	if (grow(&s->bad, &s->cap_bad, s->n_bad + 1, sizeof *s->bad, 8) < 0)
		return -ENOMEM;
	s->bad[s->n_bad].path = strdup(path);
	s->bad[s->n_bad].message = strdup(msg);
	s->n_bad++;
	return 0;
}

static int find_node(const struct scan *s, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->nodes[i].dev == dev && s->nodes[i].ino == ino)
			return (int)i;
	return -1;
}

/*
 * Images are read alone and without locks (issue #14), like --force-share:
 * a report of headers and links must not fail on an image in use;
 * node_fill records what another process does with it instead (in_use).
 */
#define CKPT_OPEN (VHDX_OPEN_NO_PARENT | VHDX_OPEN_FORCE_SHARE)

/* Opens PATH as CKPT_OPEN says into *IMG. 0 or -errno. */
static int ckpt_open(const char *path, struct vhdx_image **img)
{

	return tool_open_flags(path, CKPT_OPEN, NULL, img);
}

/* The facts of IMG's leaf into *LI. */
static void leaf_info(struct vhdx_image *img, struct vhdx_layer_info *li)
{
	li->struct_size = sizeof *li;
	if (vhdx_get_layer_info(img, 0, li) < 0)
		memset(li, 0, sizeof *li); /* layer 0 of an open image is always there */
}

/* Fills N from the opened image IMG (its leaf). */
static void node_fill(struct node *n, struct vhdx_image *img, const struct stat *st)
{
	struct vhdx_layer_info l;
	int use = vhdx_layer_in_use(img, 0);

	leaf_info(img, &l);
	n->in_use = NULL;
	if (use == VHDX_IN_USE_WRITE || use == VHDX_IN_USE_READ)
		n->in_use = use == VHDX_IN_USE_WRITE ? "write" : "read";
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->file_size = (uint64_t)st->st_size;
	n->mtime = (int64_t)st->st_mtime;
	n->format = l.format;
	n->type = l.type;
	n->virtual_size = l.virtual_size;
	n->block_size = l.block_size;
	memcpy(n->identity, l.identity, 16);
	n->has_parent = l.has_parent;
	if (l.has_parent) {
		memcpy(n->linkage, l.parent_linkage, 16);
		n->parent_timestamp = l.parent_timestamp;
		if (l.parent_locator)
			n->parent_locator = strdup(l.parent_locator);
	}
}

/* The ancestor path of PATH.merging, or NULL. */
static char *merging_record(const char *path)
{
	char rec[PATH_MAX + 16], line[PATH_MAX + 32];
	char *anc = NULL;
	FILE *f;

	snprintf(rec, sizeof rec, "%s.merging", path);
	f = fopen(rec, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "ancestor=", 9)) {
			line[strcspn(line, "\n")] = 0;
			anc = strdup(line + 9);
			break;
		}
	fclose(f);
	return anc;
}

/*
 * The library's search for the parent of IMG's leaf: first through the
 * locator and the folders, then (when that finds nothing right) the file
 * named by --parent.  *BY_OPT tells which one answered.
 */
static int parent_search(const struct scan *s, struct vhdx_image *img, unsigned flags, struct vhdx_image **p,
			 bool *by_opt)
{
	struct vhdx_open_options oo = s->to.opts;
	int ret;
	char *first_msg;

	oo.flags = (oo.flags & ~(VHDX_OPEN_IGNORE_ID_MISMATCH | VHDX_OPEN_NO_PARENT)) | flags;
	oo.flags |= VHDX_OPEN_FORCE_SHARE; /* as CKPT_OPEN */
	oo.parent = NULL;
	*by_opt = false;
	ret = vhdx_open_parent(img, &oo, p);
	if (ret == 0 || !s->to.opts.parent || (ret != -ENOENT && ret != -EBADMSG))
		return ret;
	first_msg = strdup(vhdx_errmsg());
	oo.parent = s->to.opts.parent;
	if (vhdx_open_parent(img, &oo, p) == 0) {
		*by_opt = true;
		free(first_msg);
		return 0;
	}
	vhdx_set_errmsg(-ret, "%s", first_msg ? first_msg : "");
	free(first_msg);
	return ret;
}

/* The node of the opened parent P: one of DIR, or a new external one whose own parent is followed too. */
static int parent_node(struct scan *s, struct vhdx_image *p, int *idx_out);

/*
 * Resolves the parent of node I (whose image, opened alone, is IMG);
 * appends a node for a parent outside DIR.  0 or -errno for errors of the
 * command itself (out of memory).
 */
static int resolve_parent(struct scan *s, size_t i, struct vhdx_image *img)
{
	struct vhdx_layer_info l, pl;
	struct vhdx_image *p = NULL;
	bool ignore = s->to.opts.flags & VHDX_OPEN_IGNORE_ID_MISMATCH, by_opt;
	int ret, idx;

	s->nodes[i].merging_ancestor = merging_record(s->nodes[i].path);
	leaf_info(img, &l);
	ret = parent_search(s, img, 0, &p, &by_opt);
	if (ret == -EBADMSG) {
		/* which candidate has the wrong identity: the same search, accepting it */
		char *msg = strdup(vhdx_errmsg());

		if (parent_search(s, img, VHDX_OPEN_IGNORE_ID_MISMATCH, &p, &by_opt) == 0 &&
		    (leaf_info(p, &pl), memcmp(pl.identity, l.parent_linkage, 16) != 0) &&
		    !(l.has_parent_linkage2 && !memcmp(pl.identity, l.parent_linkage2, 16))) {
			s->nodes[i].link = ignore ? LINK_OK : LINK_MISMATCH;
			s->nodes[i].id_accepted = ignore;
			memcpy(s->nodes[i].parent_identity, pl.identity, 16);
			free(msg);
		} else {
			vhdx_close(p);
			s->nodes[i].link = LINK_ERROR;
			s->nodes[i].message = msg;
			return 0;
		}
	} else if (ret == -ENOENT) {
		const char *m = vhdx_errmsg(), *t = strstr(m, "Tried: ");
		s->nodes[i].link = LINK_MISSING;
		s->nodes[i].message = strdup(m);
		s->nodes[i].tried = strdup(t ? t + 7 : "");
		return 0;
	} else if (ret < 0) {
		s->nodes[i].link = LINK_ERROR;
		s->nodes[i].message = strdup(vhdx_errmsg());
		return 0;
	} else {
		s->nodes[i].link = LINK_OK;
	}
	s->nodes[i].by_parent_opt = by_opt;
	ret = parent_node(s, p, &idx);
	vhdx_close(p);
	if (ret < 0 || idx < 0)
		return ret;
	if (s->nodes[i].link == LINK_OK) {
		s->nodes[i].parent = idx;
		s->nodes[idx].n_children++;
	} else {
		s->nodes[i].mismatched = idx;
	}
	return 0;
}

static int parent_node(struct scan *s, struct vhdx_image *p, int *idx_out)
{
	const char *path = vhdx_layer_path(p, 0);
	struct stat st;
	struct node *n;
	int idx;

	*idx_out = -1;
	if (stat(path, &st) < 0)
		return 0;
	idx = find_node(s, st.st_dev, st.st_ino);
	if (idx >= 0) {
		*idx_out = idx;
		return 0;
	}
	n = node_add(s);
	if (!n)
		return -ENOMEM;
	n->path = strdup(path);
	n->external = true;
	node_fill(n, p, &st);
	idx = (int)(s->n - 1);
	*idx_out = idx;
	/* follow the chain outside DIR too (the external node resolves its own parent) */
	return n->has_parent ? resolve_parent(s, (size_t)idx, p) : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of DIR (without . and ..); -1 when it cannot be read (message printed). */
static int read_names(const char *dir, char ***out, size_t *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		tool_error("checkpoints", "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (grow(&names, &cap, n + 1, sizeof *names, 32) < 0)
			break;
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	*out = names;
	*n_out = n;
	return 0;
}

/* Probes and opens DIR/NAME: a node, an unreadable entry, or nothing. 0 or -ENOMEM. */
static int scan_file(struct scan *s, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	struct vhdx_image *img;
	struct node *n;
	int bid;

	snprintf(path, sizeof path, "%s%s%s", s->dir, s->dir[strlen(s->dir) - 1] == '/' ? "" : "/", name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (find_node(s, st.st_dev, st.st_ino) >= 0)
		return 0; /* another name (a link) of an image already listed: one file, one node */
	bid = vhdx_probe_file(path);
	if (bid < 0)
		return bad_add(s, path, vhdx_errmsg());
	if (bid == 0 && !image_suffix(name)) {
		s->n_other++; /* not an image: skipped quietly */
		return 0;
	}
	if (bid == 0) {
		/* named like an image but no format recognises it */
		char msg[160];
		snprintf(msg, sizeof msg, "named like an image, but neither a VHDX nor a VHD (%llu bytes)",
			 (unsigned long long)st.st_size);
		return bad_add(s, path, msg);
	}
	if (ckpt_open(path, &img) < 0)
		return bad_add(s, path, vhdx_errmsg());
	n = node_add(s);
	if (!n) {
		vhdx_close(img);
		return -ENOMEM;
	}
	n->path = strdup(path);
	node_fill(n, img, &st);
	vhdx_close(img);
	return 0;
}

int ckpt_scan(struct scan *s)
{
	char **names = NULL;
	size_t n_names = 0, first_new;
	int ret = 0;

	if (read_names(s->dir, &names, &n_names) < 0)
		return -1;
	for (size_t k = 0; k < n_names && ret == 0; k++)
		ret = scan_file(s, names[k]);
	for (size_t k = 0; k < n_names; k++)
		free(names[k]);
	free(names);
	/* parents: each image's layer again (the list may grow with parents outside DIR) */
	first_new = s->n;
	for (size_t i = 0; i < first_new && ret == 0; i++) {
		struct vhdx_image *img;

		if (!s->nodes[i].has_parent)
			continue;
		if (ckpt_open(s->nodes[i].path, &img) < 0) {
			s->nodes[i].link = LINK_ERROR;
			s->nodes[i].message = strdup(vhdx_errmsg());
			continue;
		}
		ret = resolve_parent(s, i, img);
		vhdx_close(img);
	}
	if (ret < 0) {
		tool_error("checkpoints", "out of memory");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ analysis */

/* Marks every node whose parent links lead back to itself. */
static void mark_cycles(struct scan *s)
{
	unsigned char *state = calloc(s->n ? s->n : 1, 1); /* 0 new, 1 on the current walk, 2 done */

	if (!state)
		return;
	for (size_t i = 0; i < s->n; i++) {
		int j = (int)i;

		while (j >= 0 && state[j] == 0) {
			state[j] = 1;
			j = s->nodes[j].parent;
		}
		if (j >= 0 && state[j] == 1) {
			/* j is on the walk just made: the cycle is j, parent(j), ... back to j */
			int k = j;
			do {
				s->nodes[k].in_cycle = true;
				k = s->nodes[k].parent;
			} while (k != j);
		}
		for (j = (int)i; j >= 0 && state[j] == 1; j = s->nodes[j].parent)
			state[j] = 2;
	}
	free(state);
}

/* Whether B and A read the same in [VOFF, VOFF+LEN); -errno on a read error. */
static int same_bytes(struct vhdx_image *b, struct vhdx_image *a, uint8_t *bb, uint8_t *ab, uint64_t voff, uint64_t len)
{
	while (len) {
		size_t n = (size_t)(len < COMPARE_CHUNK ? len : COMPARE_CHUNK);
		ssize_t r1 = vhdx_pread(b, bb, n, voff), r2 = vhdx_pread(a, ab, n, voff);

		if (r1 < 0 || r2 < 0)
			return r1 < 0 ? (int)r1 : (int)r2;
		if ((size_t)r1 != n || (size_t)r2 != n || memcmp(bb, ab, n))
			return 0;
		voff += n;
		len -= n;
	}
	return 1;
}

/* Whether A stores data anywhere in [VOFF, VOFF+LEN). */
static bool has_data(struct vhdx_image *a, uint64_t voff, uint64_t len)
{
	struct vhdx_extent e;

	while (len && vhdx_map(a, voff, len, &e) == 0 && e.len) {
		if (e.kind == VHDX_EXTENT_DATA)
			return true;
		voff += e.len;
		len = e.len < len ? len - e.len : 0;
	}
	return false;
}

/*
 * 1 when every byte the leaf of B holds (its data, and its zero blocks
 * over data below) reads the same in A, and the leaf holds at least one
 * data block; 0 otherwise; -errno on a read error.  B is B's chain over A.
 */
static int nothing_new(struct vhdx_image *b, struct vhdx_image *a, uint64_t size)
{
	uint8_t *bb = malloc(COMPARE_CHUNK), *ab = malloc(COMPARE_CHUNK);
	uint64_t voff = 0;
	bool any = false;
	int ret = 1;

	if (!bb || !ab) {
		free(bb);
		free(ab);
		return -ENOMEM;
	}
	while (voff < size && ret == 1) {
		struct vhdx_extent e;

		ret = vhdx_map(b, voff, size - voff, &e);
		if (ret < 0 || !e.len)
			break;
		ret = 1;
		if (e.kind == VHDX_EXTENT_DATA && e.layer == 0) {
			any = true;
			ret = same_bytes(b, a, bb, ab, e.voff, e.len);
		} else if (e.kind == VHDX_EXTENT_ZERO && has_data(a, e.voff, e.len)) {
			ret = same_bytes(b, a, bb, ab, e.voff, e.len);
		}
		voff = e.voff + e.len;
	}
	free(bb);
	free(ab);
	return ret < 0 ? ret : ret == 1 && any;
}

/*
 * Whether node I was merged away: it is a leaf, its parent changed after it
 * was made (VHDX: the identity differs; VHD: the file is newer than the
 * time stamp the child holds), and its data is all in that parent.
 */
static bool merged_away(struct scan *s, size_t i)
{
	const struct node *nd = &s->nodes[i];
	int pi = nd->link == LINK_MISMATCH ? nd->mismatched : nd->parent;
	struct vhdx_open_options oo = s->to.opts;
	struct vhdx_image *b = NULL, *a = NULL;
	int ret;

	if (!nd->has_parent || nd->n_children || nd->merging_ancestor || pi < 0 || nd->in_cycle ||
	    s->nodes[pi].virtual_size != nd->virtual_size)
		return false;
	if (nd->link == LINK_OK && !nd->id_accepted &&
	    !(nd->format == VHDX_FORMAT_VHD && s->nodes[pi].mtime > (int64_t)nd->parent_timestamp + VHD_EPOCH))
		return false;
	if (nd->link != LINK_OK && nd->link != LINK_MISMATCH)
		return false;
	/* read-only comparisons, as CKPT_OPEN: an image in use is compared all the same */
	oo.flags = (oo.flags & ~VHDX_OPEN_NO_PARENT) | VHDX_OPEN_IGNORE_ID_MISMATCH | VHDX_OPEN_FORCE_SHARE;
	oo.parent = s->nodes[pi].path;
	ret = vhdx_open(nd->path, &oo, &b);
	if (ret == 0) {
		oo.flags &= ~VHDX_OPEN_IGNORE_ID_MISMATCH;
		oo.flags |= s->to.opts.flags & VHDX_OPEN_IGNORE_ID_MISMATCH;
		oo.parent = s->nodes[pi].by_parent_opt ? s->to.opts.parent : NULL;
		ret = vhdx_open(s->nodes[pi].path, &oo, &a);
	}
	if (ret == 0)
		ret = nothing_new(b, a, nd->virtual_size);
	if (b)
		vhdx_close(b);
	if (a)
		vhdx_close(a);
	return ret == 1;
}

int ckpt_analyse(struct scan *s)
{
	mark_cycles(s);
	for (size_t i = 0; i < s->n; i++) {
		if (s->nodes[i].external || !merged_away(s, i))
			continue;
		s->nodes[i].merged_away = true;
		/* a leftover: its parent is a leaf again (a VHD child still links to it) */
		if (s->nodes[i].parent >= 0)
			s->nodes[s->nodes[i].parent].n_children--;
	}
	return 0;
}

void ckpt_free(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->nodes[i].path);
		free(s->nodes[i].parent_locator);
		free(s->nodes[i].message);
		free(s->nodes[i].tried);
		free(s->nodes[i].merging_ancestor);
	}
	free(s->nodes);
	for (size_t i = 0; i < s->n_bad; i++) {
		free(s->bad[i].path);
		free(s->bad[i].message);
	}
	free(s->bad);
}
