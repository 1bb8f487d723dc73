/*
 * cmd_checkpoints.c - `vhdx checkpoints DIR`: the checkpoint chains of a
 * folder of VHD/VHDX/AVHDX files (issue #7), the way an administrator sees a
 * Hyper-V VM folder after backup jobs that left recovery checkpoints behind.
 *
 * Every regular file of DIR is probed with the library's format probes
 * (so an image is found whatever its name); files no format bids on are
 * skipped quietly, images that bid but do not open are reported as
 * unreadable.  Each differencing image's parent is looked up with the
 * library's own resolution (chain/parent.c: locator paths, --path-map,
 * --parent-dir, the identity check), so what is reported here is what
 * `vhdx info` and vhdxfs would find.  Then:
 *
 *   chain        each leaf (an image nothing in DIR builds on) down to its
 *                base; depth = the number of differencing layers
 *   fork         a parent with two or more children
 *   missing parent / linkage mismatch
 *                a differencing image whose parent is not found (the paths
 *                tried) or has another identity (both GUIDs)
 *   interrupted merge
 *                a mismatch explained by CHILD.merging (vhdx_merge's record):
 *                running the same merge again completes it
 *   unreferenced a differencing image with a broken link that nothing builds
 *                on: no chain can read it (a checkpoint left over after its
 *                parent changed or vanished)
 *   extra recovery checkpoints
 *                a chain with more than one differencing layer: a backup
 *                product expects one AVHDX (the running one) over each base,
 *                and fails with 0xA000971E while more exist
 *
 * For the extra checkpoints and the interrupted merges it prints the
 * `vhdx merge` commands that clean them up, quoted for a POSIX shell.
 * Exit 0 nothing to clean, 3 problems found, 1 error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "tool.h"
#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"
#include "io/io.h"

#define PROBE_BYTES (64u << 10)

enum link_state {
	LINK_NONE,     /* not differencing */
	LINK_OK,       /* parent found, identity matches */
	LINK_MISSING,  /* no candidate found */
	LINK_MISMATCH, /* a candidate with another identity */
	LINK_ERROR,    /* the parent could not be read (I/O error, sector size...) */
};

struct node {
	char *path;
	bool external;            /* a parent outside DIR, reached through a locator */
	dev_t dev;
	ino_t ino;
	enum vhdx_format format;
	enum vhdx_disk_type type;
	uint64_t virtual_size, file_size;
	uint32_t block_size;
	uint8_t identity[16];
	bool has_parent;
	uint8_t linkage[16];
	char *parent_name;        /* first locator entry, as stored */
	enum link_state link;
	int parent;               /* index of the parent node, or -1 */
	uint8_t parent_identity[16]; /* LINK_MISMATCH: what the candidate is */
	char *parent_path;        /* LINK_MISMATCH: the candidate */
	char *message;            /* LINK_MISSING/ERROR: the library's message */
	char *tried;              /* LINK_MISSING: "path (why); ..." */
	char *merging_ancestor;   /* ancestor named by PATH.merging, or NULL */
	unsigned n_children;
	bool extra;               /* an extra recovery checkpoint of some chain */
	const char *in_use;       /* "write", "read" or NULL: another process has it open (issue #14) */
};

struct unreadable {
	char *path, *message;
};

struct scan {
	const char *dir;
	struct tool_open to;
	struct node *nodes;
	size_t n, cap;
	struct unreadable *bad;
	size_t n_bad, cap_bad;
};

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx checkpoints [--json] [CHAIN OPTIONS] DIR\n\n"
		   "Reads every VHD, VHDX and AVHDX file of DIR (found by their contents, not\n"
		   "their names; other files are skipped) and reports each chain from base to\n"
		   "leaf with its depth, forks (a parent with several children), broken links\n"
		   "(a missing parent with the paths tried, a linkage mismatch with both GUIDs),\n"
		   "interrupted merges (CHILD.merging), unreferenced checkpoints (a differencing\n"
		   "image with a broken link that nothing builds on), unreadable images, and\n"
		   "extra recovery checkpoints: more than one differencing layer over a base,\n"
		   "where a backup product expects one and fails with 0xA000971E.  Then the\n"
		   "'vhdx merge' commands that clean them up, quoted, ready to paste.\n\n"
		   "  --json          machine-readable output\n"
		   "  -h, --help      this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP
		   "\nExit status: 0 nothing to clean up, 3 problems found, 1 error.\n");
}

/* Shell-quotes S into F: 'it'\''s' */
static void shell_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

static const char *type_name(enum vhdx_disk_type t)
{
	return vhdx_disk_type_name(t);
}

static const char *fmt_name(enum vhdx_format f)
{
	return f == VHDX_FORMAT_VHD ? "vhd" : "vhdx";
}

/* 1 when a format bids on PATH, 0 when none does, -errno when it cannot be read. */
static int probe_file(const char *path, uint64_t size)
{
	const struct vhdx_format_ops *formats[] = { &vhdx_format_vhdx, &vhdx_format_vhd };
	struct vhdx_io *io;
	uint8_t *head;
	size_t len = (size_t)(size < PROBE_BYTES ? size : PROBE_BYTES);
	int ret, bid = 0;

	ret = vhdx_io_file_open(path, false, &io);
	if (ret < 0)
		return ret;
	head = malloc(PROBE_BYTES);
	if (!head) {
		vhdx_io_close(io);
		return vhdx_err(ENOMEM, "out of memory");
	}
	ret = len ? vhdx_io_pread(io, head, len, 0, VHDX_TAG_OTHER) : 0;
	for (size_t i = 0; ret >= 0 && i < sizeof formats / sizeof formats[0]; i++)
		if (formats[i]->probe(io, head, len, size) > 0)
			bid = 1;
	free(head);
	vhdx_io_close(io);
	return ret < 0 ? ret : bid;
}

static bool image_suffix(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (!strcasecmp(dot, ".vhdx") || !strcasecmp(dot, ".avhdx") || !strcasecmp(dot, ".vhd") ||
		       !strcasecmp(dot, ".avhd"));
}

static struct node *node_add(struct scan *s)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct node *p = realloc(s->nodes, ncap * sizeof *p);
		if (!p)
			return NULL;
		s->nodes = p;
		s->cap = ncap;
	}
	memset(&s->nodes[s->n], 0, sizeof s->nodes[0]);
	s->nodes[s->n].parent = -1;
	return &s->nodes[s->n++];
}

static int bad_add(struct scan *s, const char *path, const char *msg)
{
	if (s->n_bad == s->cap_bad) {
		size_t ncap = s->cap_bad ? s->cap_bad * 2 : 8;
		struct unreadable *p = realloc(s->bad, ncap * sizeof *p);
		if (!p)
			return -ENOMEM;
		s->bad = p;
		s->cap_bad = ncap;
	}
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

/* Fills N from the opened layer L. */
/*
 * Images are read without locks (issue #14), like --force-share: a report of
 * headers and links must not fail on an image in use; node_fill records
 * what another process does with it instead (in_use).
 */
#define CKPT_OPEN VHDX_LAYER_NO_LOCK

static void node_fill(struct node *n, const struct vhdx_layer *l, const struct stat *st)
{
	struct vhdx_lock_holder h;

	n->in_use = NULL;
	if (vhdx_io_lock_test(l->io, &h) == 0 && h.mode != VHDX_LOCK_NONE)
		n->in_use = h.mode == VHDX_LOCK_EXCLUSIVE ? "write" : "read";
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->file_size = (uint64_t)st->st_size;
	n->format = l->format;
	n->type = l->type;
	n->virtual_size = l->virtual_size;
	n->block_size = l->block_size;
	memcpy(n->identity, l->identity, 16);
	n->has_parent = l->has_parent;
	if (l->has_parent) {
		memcpy(n->linkage, l->parent.linkage, 16);
		if (l->parent.n_paths)
			n->parent_name = strdup(l->parent.paths[0].value);
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
 * Resolves the parent of node I (whose layer is L) with the library's
 * resolution; appends a node for a parent outside DIR.  0 or -errno for
 * errors of the command itself (out of memory).
 */
static int resolve_parent(struct scan *s, size_t i, const struct vhdx_layer *l)
{
	struct vhdx_open_options oo = s->to.opts;
	struct vhdx_layer *p = NULL;
	struct stat st;
	int ret, idx;

	oo.flags &= ~(VHDX_OPEN_IGNORE_ID_MISMATCH | VHDX_OPEN_NO_PARENT);
	oo.flags |= VHDX_OPEN_FORCE_SHARE; /* as CKPT_OPEN */
	oo.parent = NULL; /* --parent names one image's parent: not meaningful for a folder */
	s->nodes[i].merging_ancestor = merging_record(s->nodes[i].path);
	ret = vhdx_parent_open(l, &oo, 1, &p);
	if (ret == -EBADMSG) {
		/* which candidate has the wrong identity: the same search, accepting it */
		char *msg = vhdx_err_dup();
		oo.flags |= VHDX_OPEN_IGNORE_ID_MISMATCH;
		if (vhdx_parent_open(l, &oo, 1, &p) == 0 && memcmp(p->identity, l->parent.linkage, 16) != 0 &&
		    !(l->parent.has_linkage2 && !memcmp(p->identity, l->parent.linkage2, 16))) {
			s->nodes[i].link = LINK_MISMATCH;
			memcpy(s->nodes[i].parent_identity, p->identity, 16);
			s->nodes[i].parent_path = strdup(p->path);
			ret = 0;
		} else {
			s->nodes[i].link = LINK_ERROR;
			s->nodes[i].message = msg;
			msg = NULL;
		}
		free(msg);
		if (s->nodes[i].link == LINK_ERROR) {
			vhdx_layer_close(p);
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
	/* the parent (OK or mismatched): a node of DIR, or a new external one */
	if (stat(p->path, &st) < 0) {
		vhdx_layer_close(p);
		return 0;
	}
	idx = find_node(s, st.st_dev, st.st_ino);
	if (idx < 0) {
		struct node *n = node_add(s);
		if (!n) {
			vhdx_layer_close(p);
			return -ENOMEM;
		}
		n->path = strdup(p->path);
		n->external = true;
		node_fill(n, p, &st);
		idx = (int)(s->n - 1);
		if (n->has_parent) {
			/* follow the chain outside DIR too (the external node resolves its own parent) */
			ret = resolve_parent(s, (size_t)idx, p);
			if (ret < 0) {
				vhdx_layer_close(p);
				return ret;
			}
		}
	}
	if (s->nodes[i].link == LINK_OK) {
		s->nodes[i].parent = idx;
		s->nodes[idx].n_children++;
	} else if (s->nodes[i].link == LINK_MISMATCH) {
		free(s->nodes[i].parent_path);
		s->nodes[i].parent_path = strdup(s->nodes[idx].path);
	}
	vhdx_layer_close(p);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads DIR: probes every regular file, opens the images, resolves their parents. */
static int scan_dir(struct scan *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	char **names = NULL;
	size_t n_names = 0, cap = 0, first_new;
	int ret = 0;

	if (!d) {
		tool_error("checkpoints", "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (n_names == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *p);
			if (!p)
				break;
			names = p;
		}
		names[n_names] = strdup(de->d_name);
		if (names[n_names])
			n_names++;
	}
	closedir(d);
	if (n_names)
		qsort(names, n_names, sizeof *names, cmp_str);
	for (size_t k = 0; k < n_names; k++) {
		char path[PATH_MAX];
		struct stat st;
		struct vhdx_layer *l;
		struct node *n;
		int bid;

		snprintf(path, sizeof path, "%s%s%s", s->dir, s->dir[strlen(s->dir) - 1] == '/' ? "" : "/", names[k]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		bid = probe_file(path, (uint64_t)st.st_size);
		if (bid < 0) {
			bad_add(s, path, vhdx_errmsg());
			continue;
		}
		if (bid == 0 && !image_suffix(names[k]))
			continue; /* not an image: skipped quietly */
		if (bid == 0) {
			/* named like an image but no format recognises it */
			char msg[160];
			snprintf(msg, sizeof msg, "named like an image, but neither a VHDX nor a VHD (%llu bytes)",
				 (unsigned long long)st.st_size);
			bad_add(s, path, msg);
			continue;
		}
		ret = vhdx_layer_open(path, CKPT_OPEN, &l);
		if (ret < 0) {
			bad_add(s, path, vhdx_errmsg());
			ret = 0;
			continue;
		}
		n = node_add(s);
		if (!n) {
			vhdx_layer_close(l);
			ret = -ENOMEM;
			break;
		}
		n->path = strdup(path);
		node_fill(n, l, &st);
		vhdx_layer_close(l);
	}
	for (size_t k = 0; k < n_names; k++)
		free(names[k]);
	free(names);
	if (ret < 0) {
		tool_error("checkpoints", "out of memory");
		return -1;
	}
	/* parents: each image's layer again (the list may grow with parents outside DIR) */
	first_new = s->n;
	for (size_t i = 0; i < first_new; i++) {
		struct vhdx_layer *l;

		if (!s->nodes[i].has_parent)
			continue;
		if (vhdx_layer_open(s->nodes[i].path, CKPT_OPEN, &l) < 0) {
			s->nodes[i].link = LINK_ERROR;
			s->nodes[i].message = strdup(vhdx_errmsg());
			continue;
		}
		ret = resolve_parent(s, i, l);
		vhdx_layer_close(l);
		if (ret < 0) {
			tool_error("checkpoints", "out of memory");
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the analysis */

/* Layers of the chain of leaf LEAF, leaf first; the count; whether it ends at a base. */
static size_t chain_of(const struct scan *s, size_t leaf, size_t *out, size_t max, bool *complete)
{
	size_t n = 0;
	int i = (int)leaf;

	while (i >= 0 && n < max) {
		out[n++] = (size_t)i;
		if (!s->nodes[i].has_parent) {
			*complete = true;
			return n;
		}
		i = s->nodes[i].parent;
	}
	*complete = false;
	return n;
}

/* Node indices whose parent is P, in order. */
static size_t children_of(const struct scan *s, size_t p, size_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n && n < max; i++)
		if (s->nodes[i].parent == (int)p)
			out[n++] = i;
	return n;
}

/*
 * Whether the extra layers of chain CH (leaf first, N layers, base last)
 * can be merged into the base without changing what another chain reads:
 * the base and every layer merged except the topmost have exactly one child.
 */
static bool mergeable(const struct scan *s, const size_t *ch, size_t n)
{
	for (size_t k = 2; k < n; k++)
		if (s->nodes[ch[k]].n_children != 1)
			return false;
	return true;
}

struct tally {
	unsigned chains, forks, missing, mismatches, interrupted, unreferenced, extra_chains, extra_layers,
		unreadable, link_errors, commands;
};

static void print_cmd_merge(FILE *f, const struct scan *s, size_t child, const char *into, bool del)
{
	size_t kids[64];
	size_t nk = children_of(s, child, kids, 64);

	fputs("vhdx merge ", f);
	shell_quote(f, s->nodes[child].path);
	fputs(" --into ", f);
	shell_quote(f, into);
	if (del)
		fputs(" --delete", f);
	for (size_t k = 0; k < nk; k++) {
		fputs(" --relink ", f);
		shell_quote(f, s->nodes[kids[k]].path);
	}
}

/* The cleanup commands as strings (malloc'd), in order: interrupted merges first. */
static size_t build_commands(const struct scan *s, char ***out)
{
	char **cmds = NULL;
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < s->n; i++) {
			const struct node *nd = &s->nodes[i];
			char *buf = NULL;
			size_t len = 0;
			FILE *f;

			if (pass == 0 && !(nd->merging_ancestor && (nd->link == LINK_MISMATCH || nd->link == LINK_OK)))
				continue;
			if (pass == 1) {
				size_t ch[128];
				bool complete;
				size_t nc;

				/* one command per chain with extras: merge the leaf's parent into the base */
				if (nd->n_children || nd->external || !nd->has_parent || nd->link != LINK_OK)
					continue;
				nc = chain_of(s, i, ch, 128, &complete);
				if (!complete || nc < 3 || !mergeable(s, ch, nc))
					continue;
				/* an interrupted merge in the middle is resumed first (pass 0); then run this again */
				{
					bool rec = false;
					for (size_t k = 1; k + 1 < nc; k++)
						rec = rec || s->nodes[ch[k]].merging_ancestor;
					if (rec)
						continue;
				}
				/* a shared middle (a fork above the base) is merged once, by its first leaf */
				{
					size_t kids[64], nk = children_of(s, ch[1], kids, 64);
					if (nk && kids[0] != i)
						continue;
				}
				f = open_memstream(&buf, &len);
				if (!f)
					continue;
				print_cmd_merge(f, s, ch[1], s->nodes[ch[nc - 1]].path, true);
			} else {
				f = open_memstream(&buf, &len);
				if (!f)
					continue;
				print_cmd_merge(f, s, i, nd->merging_ancestor, true);
			}
			if (fclose(f) != 0 || !buf) {
				free(buf);
				continue;
			}
			char **p = realloc(cmds, (n + 1) * sizeof *p);
			if (!p) {
				free(buf);
				continue;
			}
			cmds = p;
			cmds[n++] = buf;
		}
	}
	*out = cmds;
	return n;
}

static void guid_str(const uint8_t g[16], char out[VHDX_GUID_STRLEN])
{
	vhdx_guid_format(g, out);
}

/* ------------------------------------------------------------ output */

static void json_node(struct report *r, const struct node *n)
{
	report_begin(r, NULL);
	report_str(r, "path", n->path);
	report_str(r, "format", fmt_name(n->format));
	report_str(r, "type", type_name(n->type));
	report_u64(r, "virtual_size", n->virtual_size);
	report_u64(r, "file_size", n->file_size);
	report_u64(r, "block_size", n->block_size);
	report_guid(r, "identity", n->identity);
	report_bool(r, "outside_folder", n->external);
	report_str_or_null(r, "in_use", n->in_use);
	report_end(r);
}

static const char *link_name(enum link_state l)
{
	static const char *const names[] = { "none", "ok", "missing", "mismatch", "error" };
	return names[l];
}

static int report_all(struct scan *s, bool json)
{
	struct tally t = { 0 };
	struct report rep;
	char **cmds = NULL;
	size_t n_cmds, ch[128], kids[64];
	char g1[VHDX_GUID_STRLEN], g2[VHDX_GUID_STRLEN];

	/* extra layers: the middle of every complete chain */
	for (size_t i = 0; i < s->n; i++) {
		bool complete;
		size_t nc;

		if (s->nodes[i].n_children || s->nodes[i].external)
			continue;
		nc = chain_of(s, i, ch, 128, &complete);
		if (!complete)
			continue;
		for (size_t k = 1; k + 1 < nc; k++)
			s->nodes[ch[k]].extra = true;
	}
	n_cmds = build_commands(s, &cmds);
	if (json) {
		report_init(&rep, stdout, true);
		report_begin(&rep, NULL);
		report_str(&rep, "folder", s->dir);
		report_begin_list(&rep, "images");
		for (size_t i = 0; i < s->n; i++)
			json_node(&rep, &s->nodes[i]);
		report_end_list(&rep);
		report_begin_list(&rep, "chains");
	} else {
		printf("folder %s: %zu images\n", s->dir, s->n);
	}
	/* chains: one per leaf that reaches a base */
	for (size_t i = 0; i < s->n; i++) {
		bool complete;
		size_t nc;

		if (s->nodes[i].n_children || s->nodes[i].external)
			continue;
		nc = chain_of(s, i, ch, 128, &complete);
		if (!complete)
			continue;
		t.chains++;
		if (nc > 2) {
			t.extra_chains++;
			t.extra_layers += (unsigned)(nc - 2);
		}
		if (json) {
			report_begin(&rep, NULL);
			report_str(&rep, "base", s->nodes[ch[nc - 1]].path);
			report_str(&rep, "leaf", s->nodes[i].path);
			report_u64(&rep, "depth", nc - 1);
			report_str(&rep, "format", fmt_name(s->nodes[i].format));
			report_u64(&rep, "virtual_size", s->nodes[i].virtual_size);
			report_u64(&rep, "extra_checkpoints", nc > 2 ? nc - 2 : 0);
			report_begin_list(&rep, "layers");
			for (size_t k = nc; k-- > 0;) {
				report_begin(&rep, NULL);
				report_str(&rep, "path", s->nodes[ch[k]].path);
				report_str(&rep, "type", type_name(s->nodes[ch[k]].type));
				report_u64(&rep, "file_size", s->nodes[ch[k]].file_size);
				report_end(&rep);
			}
			report_end_list(&rep);
			report_end(&rep);
			continue;
		}
		printf("chain: ");
		for (size_t k = nc; k-- > 0;)
			printf("%s%s", s->nodes[ch[k]].path, k ? " <- " : "");
		printf(" (depth %zu, %s, virtual %" PRIu64 " bytes)\n", nc - 1, fmt_name(s->nodes[i].format),
		       s->nodes[i].virtual_size);
		for (size_t k = nc; k-- > 0;)
			printf("  %s: %s %s, file %" PRIu64 " bytes%s\n", s->nodes[ch[k]].path, fmt_name(s->nodes[ch[k]].format),
			       type_name(s->nodes[ch[k]].type), s->nodes[ch[k]].file_size,
			       s->nodes[ch[k]].external ? " (outside the folder)" : "");
		if (nc > 2) {
			printf("extra recovery checkpoints: %zu over %s:", nc - 2, s->nodes[ch[nc - 1]].path);
			for (size_t k = nc - 1; k-- > 1;)
				printf(" %s", s->nodes[ch[k]].path);
			printf(" (a backup expects one checkpoint over a base; 0xA000971E)%s\n",
			       mergeable(s, ch, nc) ? "" : "; not merged automatically: a fork below the leaf's parent");
		}
	}
	if (json) {
		report_end_list(&rep);
		report_begin_list(&rep, "forks");
	}
	for (size_t i = 0; i < s->n; i++) {
		size_t nk;

		if (s->nodes[i].n_children < 2)
			continue;
		t.forks++;
		nk = children_of(s, i, kids, 64);
		if (json) {
			report_begin(&rep, NULL);
			report_str(&rep, "parent", s->nodes[i].path);
			report_begin_list(&rep, "children");
			for (size_t k = 0; k < nk; k++) {
				report_begin(&rep, NULL);
				report_str(&rep, "path", s->nodes[kids[k]].path);
				report_end(&rep);
			}
			report_end_list(&rep);
			report_end(&rep);
			continue;
		}
		printf("fork: %s has %zu children:", s->nodes[i].path, nk);
		for (size_t k = 0; k < nk; k++)
			printf(" %s", s->nodes[kids[k]].path);
		printf(" (merging one child into it would change what the others read)\n");
	}
	if (json) {
		report_end_list(&rep);
		report_begin_list(&rep, "broken_links");
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct node *nd = &s->nodes[i];

		if (nd->link != LINK_MISSING && nd->link != LINK_MISMATCH && nd->link != LINK_ERROR &&
		    !(nd->link == LINK_OK && nd->merging_ancestor))
			continue;
		guid_str(nd->linkage, g1);
		if (nd->link == LINK_MISSING)
			t.missing++;
		else if (nd->merging_ancestor && nd->link != LINK_ERROR)
			t.interrupted++;
		else if (nd->link == LINK_MISMATCH)
			t.mismatches++;
		else
			t.link_errors++;
		if (json) {
			report_begin(&rep, NULL);
			report_str(&rep, "image", nd->path);
			report_str(&rep, "problem", nd->merging_ancestor && (nd->link == LINK_MISMATCH || nd->link == LINK_OK)
							    ? "interrupted_merge" : nd->link == LINK_MISMATCH ? "linkage_mismatch"
							    : link_name(nd->link));
			report_str(&rep, "parent_name", nd->parent_name ? nd->parent_name : "");
			report_guid(&rep, "linkage", nd->linkage);
			if (nd->link == LINK_MISMATCH) {
				report_str(&rep, "parent", nd->parent_path ? nd->parent_path : "");
				report_guid(&rep, "parent_identity", nd->parent_identity);
			}
			if (nd->merging_ancestor)
				report_str(&rep, "merging_into", nd->merging_ancestor);
			if (nd->tried)
				report_str(&rep, "tried", nd->tried);
			if (nd->message && nd->link != LINK_MISSING)
				report_str(&rep, "message", nd->message);
			report_bool(&rep, "referenced", nd->n_children > 0);
			report_end(&rep);
			continue;
		}
		if (nd->link == LINK_MISSING)
			printf("missing parent: %s: parent \"%s\" {%s} not found; tried: %s\n", nd->path,
			       nd->parent_name ? nd->parent_name : "", g1, nd->tried ? nd->tried : "");
		else if (nd->link == LINK_MISMATCH || nd->link == LINK_OK) {
			guid_str(nd->parent_identity, g2);
			if (nd->merging_ancestor)
				printf("interrupted merge: %s into %s (%s.merging): run the same merge again to complete it\n",
				       nd->path, nd->merging_ancestor, nd->path);
			else
				printf("linkage mismatch: %s links to {%s}, its parent %s is {%s}\n", nd->path, g1,
				       nd->parent_path ? nd->parent_path : "?", g2);
		} else {
			printf("broken link: %s: %s\n", nd->path, nd->message ? nd->message : "");
		}
	}
	if (json) {
		report_end_list(&rep);
		report_begin_list(&rep, "unreferenced");
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct node *nd = &s->nodes[i];

		if (nd->external || nd->n_children || !nd->has_parent || nd->link == LINK_OK ||
		    (nd->link == LINK_MISMATCH && nd->merging_ancestor))
			continue;
		t.unreferenced++;
		if (json) {
			report_begin(&rep, NULL);
			report_str(&rep, "image", nd->path);
			report_str(&rep, "reason", nd->link == LINK_MISSING ? "parent_missing" : nd->link == LINK_MISMATCH
										    ? "linkage_mismatch" : "parent_unreadable");
			report_end(&rep);
			continue;
		}
		printf("unreferenced: %s: nothing builds on it and its parent is %s: no chain can read it\n", nd->path,
		       nd->link == LINK_MISSING ? "missing" : nd->link == LINK_MISMATCH ? "another image now"
											: "unreadable");
	}
	if (json) {
		report_end_list(&rep);
		report_begin_list(&rep, "unreadable");
	}
	for (size_t i = 0; i < s->n_bad; i++) {
		t.unreadable++;
		if (json) {
			report_begin(&rep, NULL);
			report_str(&rep, "path", s->bad[i].path);
			report_str(&rep, "message", s->bad[i].message ? s->bad[i].message : "");
			report_end(&rep);
			continue;
		}
		{
			const char *m = s->bad[i].message ? s->bad[i].message : "";
			size_t pl = strlen(s->bad[i].path);

			/* the library's messages start with the file name already */
			if (!strncmp(m, s->bad[i].path, pl) && !strncmp(m + pl, ": ", 2))
				m += pl + 2;
			printf("unreadable: %s: %s\n", s->bad[i].path, m);
		}
	}
	t.commands = (unsigned)n_cmds;
	if (json) {
		report_end_list(&rep);
		report_begin_list(&rep, "commands");
		for (size_t k = 0; k < n_cmds; k++) {
			report_begin(&rep, NULL);
			report_str(&rep, "command", cmds[k]);
			report_end(&rep);
		}
		report_end_list(&rep);
		report_begin(&rep, "summary");
		report_u64(&rep, "images", s->n);
		report_u64(&rep, "chains", t.chains);
		report_u64(&rep, "forks", t.forks);
		report_u64(&rep, "missing_parents", t.missing);
		report_u64(&rep, "linkage_mismatches", t.mismatches);
		report_u64(&rep, "interrupted_merges", t.interrupted);
		report_u64(&rep, "link_errors", t.link_errors);
		report_u64(&rep, "unreferenced", t.unreferenced);
		report_u64(&rep, "chains_with_extra_checkpoints", t.extra_chains);
		report_u64(&rep, "extra_checkpoints", t.extra_layers);
		report_u64(&rep, "unreadable", t.unreadable);
		report_end(&rep);
	} else {
		if (n_cmds) {
			printf("cleanup:\n");
			for (size_t k = 0; k < n_cmds; k++)
				printf("  %s\n", cmds[k]);
		}
		printf("summary: %u chains, %u forks, %u missing parents, %u linkage mismatches, %u interrupted merges, "
		       "%u unreferenced, %u extra checkpoints, %u unreadable\n",
		       t.chains, t.forks, t.missing, t.mismatches, t.interrupted, t.unreferenced, t.extra_layers,
		       t.unreadable);
	}
	for (size_t k = 0; k < n_cmds; k++)
		free(cmds[k]);
	free(cmds);
	{
		bool problems = t.forks || t.missing || t.mismatches || t.interrupted || t.link_errors || t.unreferenced ||
				t.extra_layers || t.unreadable;
		if (json) {
			report_bool(&rep, "clean", !problems);
			report_end(&rep);
			report_finish(&rep);
		} else {
			printf("%s\n", problems ? "problems found" : "clean: nothing to clean up");
		}
		return problems ? EXIT_PROBLEMS : EXIT_OK;
	}
}

int cmd_checkpoints(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		TOOL_OPEN_LONGOPTS,
		TOOL_SHARE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct scan s = { 0 };
	bool json = false;
	int c, r, rc;

	tool_open_init(&s.to);
	optind = 1;
	while ((c = getopt_long(argc, argv, "hU", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			r = tool_open_option(&s.to, c, optarg, "checkpoints");
			if (r == 1)
				break;
			if (r == 0)
				help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	s.dir = argv[optind];
	s.to.parent_dirs[s.to.n_parent_dirs] = NULL;
	s.to.path_maps[s.to.n_path_maps] = NULL;
	s.to.opts.parent_dirs = s.to.n_parent_dirs ? s.to.parent_dirs : NULL;
	s.to.opts.path_maps = s.to.n_path_maps ? s.to.path_maps : NULL;
	if (scan_dir(&s) < 0)
		rc = EXIT_ERR;
	else
		rc = report_all(&s, json);
	for (size_t i = 0; i < s.n; i++) {
		free(s.nodes[i].path);
		free(s.nodes[i].parent_name);
		free(s.nodes[i].parent_path);
		free(s.nodes[i].message);
		free(s.nodes[i].tried);
		free(s.nodes[i].merging_ancestor);
	}
	free(s.nodes);
	for (size_t i = 0; i < s.n_bad; i++) {
		free(s.bad[i].path);
		free(s.bad[i].message);
	}
	free(s.bad);
	return rc;
}
