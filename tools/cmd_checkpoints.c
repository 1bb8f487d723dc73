/*
 * cmd_checkpoints.c - `vhdx checkpoints DIR`: the checkpoint chains of a
 * folder of VHD/VHDX/AVHDX files, the way an administrator sees a Hyper-V
 * VM folder (issues #7, #17).  checkpoints_scan.c finds the facts; this
 * file reports them.
 *
 * By default the report is neutral: a chain of many checkpoints, or a
 * fork, is what Hyper-V makes every day, and only Hyper-V's configuration
 * knows which checkpoints a backup product made.  Reported as facts:
 *
 *   chain        each leaf (an image nothing builds on) down to its base;
 *                depth = the number of images in it, the base included
 *                (as `vhdx info`'s chain_depth and --max-depth count)
 *   fork         a parent with two or more children
 *   broken links a missing parent (the paths tried), a linkage mismatch
 *                (both GUIDs), an unreadable parent, a cycle of parents,
 *                an interrupted merge (CHILD.merging), a chain that does
 *                not reach a base
 *   merged       a layer `vhdx merge` wrote into its parent and left
 *                behind (its parent changed after it was made and holds
 *                all its data): deleting it loses nothing
 *   unreferenced a differencing image with a broken link that nothing
 *                builds on
 *
 * The backup diagnosis (0xA000971E "another recovery checkpoint exists",
 * 0xA0009723 "cannot create a recovery checkpoint") is given only when the
 * user states what the backup product expects: --backup-checkpoints N (how
 * many checkpoints it keeps over a base) or --recovery GLOB (which files
 * are its recovery checkpoints).
 *
 * Commands that clean up are printed quoted for a POSIX shell, with every
 * chain option of the command line, each after a line saying in words what
 * it changes and which files it deletes.
 * Exit 0 nothing broken, 3 something broken or to clean up, 1 error.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "checkpoints.h"

#define MAX_CHAIN 128
#define MAX_KIDS 64

struct ck_cmd {
	char *note;  /* what it does, in words (deleted files named) */
	char *text;  /* the command line */
};

struct tally {
	unsigned chains, forks, missing, mismatches, interrupted, unreferenced, merged, cycles, incomplete,
		link_errors, unreadable, extra_chains, extra_layers, broken_chains_backup;
};

struct ctx {
	struct scan *s;
	bool json;
	int backup_n;              /* --backup-checkpoints N, or -1 */
	const char *globs[65];     /* --recovery GLOB... */
	unsigned n_globs;
	char *chain_args;          /* the chain options, quoted, for the commands */
	struct report rep;
	struct tally t;
	struct ck_cmd *cmds;
	size_t n_cmds, cap_cmds;
};

enum { OPT_BACKUP_N = OPT__NEXT, OPT_RECOVERY };

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx checkpoints [--json] [--backup-checkpoints N] [--recovery GLOB] [CHAIN OPTIONS] DIR\n\n"
		   "Reads every VHD, VHDX and AVHDX file of DIR (found by their contents, not\n"
		   "their names; other files are skipped) and reports the facts: each chain from\n"
		   "base to leaf with its depth (the number of images in it, the base included),\n"
		   "forks (a parent with several children), broken links (a missing parent with\n"
		   "the paths tried, a linkage mismatch with both GUIDs, a cycle of parents, a\n"
		   "chain that does not reach a base), interrupted merges (CHILD.merging), layers\n"
		   "merged away by 'vhdx merge' (their parent holds all their data), unreferenced\n"
		   "checkpoints and unreadable images.  Many checkpoints and forks are normal.\n"
		   "Then the commands that clean up, quoted, ready to paste, each after a line\n"
		   "saying which files it deletes.\n\n"
		   "Backup diagnosis (only when asked for):\n"
		   "  --backup-checkpoints N  the backup product keeps N checkpoints over a base\n"
		   "                          (Backup Exec: 1); more are its leftovers (0xA000971E)\n"
		   "  --recovery GLOB         the files matching GLOB (a shell pattern on the file\n"
		   "                          name, repeatable) are its recovery checkpoints; with\n"
		   "                          no --backup-checkpoints it keeps 1 of them\n\n"
		   "  --json                  machine-readable output\n"
		   "  -h, --help              this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP
		   "  (--parent FILE: FILE is tried for every image whose own locator finds no parent)\n"
		   "\nExit status: 0 nothing broken, 3 something broken or to clean up, 1 error.\n");
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

static const char *fmt_name(enum vhdx_format f)
{
	return f == VHDX_FORMAT_VHD ? "vhd" : "vhdx";
}

/* The chain options of the command line, quoted, each with a leading space (malloc'd). */
static char *chain_args(const struct tool_open *to)
{
	struct vhdx_open_options defaults;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (unsigned i = 0; i < to->n_parent_dirs; i++) {
		fputs(" --parent-dir ", f);
		shell_quote(f, to->parent_dirs[i]);
	}
	for (unsigned i = 0; i < to->n_path_maps; i++) {
		fputs(" --path-map ", f);
		shell_quote(f, to->path_maps[i]);
	}
	if (to->opts.flags & VHDX_OPEN_IGNORE_ID_MISMATCH)
		fputs(" --ignore-id-mismatch", f);
	vhdx_open_options_init(&defaults);
	if (to->opts.max_depth && to->opts.max_depth != defaults.max_depth)
		fprintf(f, " --max-depth %u", to->opts.max_depth);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ------------------------------------------------------------ chains */

/* Layers of the chain of leaf LEAF, leaf first; the count; whether it ends at a base. */
static size_t chain_of(const struct scan *s, size_t leaf, size_t *out, size_t max, bool *complete)
{
	size_t n = 0;
	int i = (int)leaf;

	*complete = false;
	while (i >= 0 && n < max && !s->nodes[i].in_cycle) {
		out[n++] = (size_t)i;
		if (!s->nodes[i].has_parent) {
			*complete = true;
			return n;
		}
		i = s->nodes[i].parent;
	}
	return n;
}

/* Node indices whose parent is P, in order. */
static size_t children_of(const struct scan *s, size_t p, size_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n && n < max; i++)
		if (s->nodes[i].parent == (int)p && !s->nodes[i].merged_away)
			out[n++] = i;
	return n;
}

/* A leaf: nothing in the report builds on it, and it is the folder's. */
static bool is_leaf(const struct node *n)
{
	return !n->n_children && !n->external && !n->in_cycle;
}

static bool is_recovery(const struct ctx *c, const struct node *n)
{
	const char *base = strrchr(n->path, '/');

	if (!n->has_parent)
		return false;
	if (!c->n_globs)
		return true;
	for (unsigned i = 0; i < c->n_globs; i++)
		if (!fnmatch(c->globs[i], base ? base + 1 : n->path, 0) || !fnmatch(c->globs[i], n->path, 0))
			return true;
	return false;
}

static bool backup_mode(const struct ctx *c)
{
	return c->backup_n >= 0 || c->n_globs;
}

static unsigned backup_keeps(const struct ctx *c)
{
	return c->backup_n >= 0 ? (unsigned)c->backup_n : 1;
}

/*
 * The extra recovery checkpoints of chain CH (leaf first, NC layers): the
 * recovery layers beyond the newest backup_keeps() ones.  *TOP and *LOW
 * are their chain indices (TOP nearer the leaf); the count.
 */
static unsigned extras_of(const struct ctx *c, const size_t *ch, size_t nc, size_t *top, size_t *low)
{
	unsigned seen = 0, extra = 0;

	for (size_t k = 0; k + 1 < nc; k++) {
		if (!is_recovery(c, &c->s->nodes[ch[k]]))
			continue;
		if (++seen <= backup_keeps(c))
			continue;
		if (!extra++)
			*top = k;
		*low = k;
	}
	return extra;
}

/*
 * Whether the extras TOP..LOW of chain CH can be merged into the layer
 * below LOW by one command: all of them recovery checkpoints, and that
 * layer and every merged one with exactly one child (a fork is the user's
 * branch, not a backup's leftover: no other chain may read differently).
 */
static bool mergeable(const struct ctx *c, const size_t *ch, size_t top, size_t low)
{
	for (size_t k = top; k <= low; k++)
		if (!is_recovery(c, &c->s->nodes[ch[k]]))
			return false;
	for (size_t k = top; k <= low + 1; k++)
		if (c->s->nodes[ch[k]].n_children != 1 && !(k == 0 && c->s->nodes[ch[k]].n_children == 0))
			return false;
	return true;
}

/* ------------------------------------------------------------ commands */

static void cmd_add(struct ctx *c, char *note, char *text)
{
	if (!note || !text || grow(&c->cmds, &c->cap_cmds, c->n_cmds + 1, sizeof *c->cmds, 16) < 0) {
		free(note);
		free(text);
		return;
	}
	c->cmds[c->n_cmds].note = note;
	c->cmds[c->n_cmds].text = text;
	c->n_cmds++;
}

/*
 * Whether a merge of CHILD (whose chain is CHILD and the layers below it)
 * can be run with the chain options: --parent reaches only CHILD's own
 * parent.  *WITH_PARENT: add --parent.
 */
static bool parent_opt_fits(const struct scan *s, size_t child, bool *with_parent)
{
	*with_parent = s->nodes[child].by_parent_opt;
	for (int i = s->nodes[child].parent; i >= 0 && !s->nodes[i].in_cycle; i = s->nodes[i].parent)
		if (s->nodes[i].by_parent_opt)
			return false;
	return true;
}

/* "vhdx merge CHILD --into INTO --delete --relink KID... CHAIN-OPTIONS" (malloc'd), or NULL. */
static char *merge_text(const struct ctx *c, size_t child, const char *into)
{
	const struct scan *s = c->s;
	size_t kids[MAX_KIDS], nk = children_of(s, child, kids, MAX_KIDS);
	char *buf = NULL;
	size_t len = 0;
	bool with_parent;
	FILE *f;

	if (!parent_opt_fits(s, child, &with_parent) || !(f = open_memstream(&buf, &len)))
		return NULL;
	fputs("vhdx merge ", f);
	shell_quote(f, s->nodes[child].path);
	fputs(" --into ", f);
	shell_quote(f, into);
	fputs(" --delete", f);
	for (size_t k = 0; k < nk; k++) {
		fputs(" --relink ", f);
		shell_quote(f, s->nodes[kids[k]].path);
	}
	if (with_parent) {
		fputs(" --parent ", f);
		shell_quote(f, s->to.opts.parent);
	}
	fputs(c->chain_args ? c->chain_args : "", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* A printf into a malloc'd string (NULL on failure). */
static char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *format, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, format);
	if (vasprintf(&s, format, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* "A, B and C" of the chain layers CH[TOP..LOW] (malloc'd). */
static char *layer_list(const struct scan *s, const size_t *ch, size_t top, size_t low)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t k = low + 1; k-- > top;)
		fprintf(f, "%s%s", s->nodes[ch[k]].path, k == top ? "" : k == top + 1 ? " and " : ", ");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Completing the interrupted merges: first, since they make chains readable again. */
static void commands_interrupted(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n; i++) {
		const struct node *nd = &c->s->nodes[i];
		char *text;

		if (!nd->merging_ancestor || (nd->link != LINK_MISMATCH && nd->link != LINK_OK) || nd->external)
			continue;
		text = merge_text(c, i, nd->merging_ancestor);
		cmd_add(c, fmt("completes the interrupted merge of %s into %s, re-points its children to it, and DELETES %s "
			       "(its data is then in %s):", nd->path, nd->merging_ancestor, nd->path, nd->merging_ancestor),
			text);
	}
}

/* Deleting the layers merged away: their parent holds all their data. */
static void commands_merged(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n; i++) {
		const struct node *nd = &c->s->nodes[i];
		int pi = nd->link == LINK_MISMATCH ? nd->mismatched : nd->parent;
		char *buf = NULL;
		size_t len = 0;
		FILE *f;

		if (!nd->merged_away || pi < 0 || !(f = open_memstream(&buf, &len)))
			continue;
		fputs("rm -- ", f);
		shell_quote(f, nd->path);
		if (fclose(f) != 0) {
			free(buf);
			continue;
		}
		cmd_add(c, fmt("DELETES %s: merged into %s, which holds all its data (nothing builds on it):", nd->path,
			       c->s->nodes[pi].path), buf);
	}
}

/* Merging the extra recovery checkpoints of the chain of LEAF (backup mode). */
static void command_extras(struct ctx *c, size_t leaf)
{
	const struct scan *s = c->s;
	size_t ch[MAX_CHAIN], top = 0, low = 0, nc, kids[MAX_KIDS], nk;
	bool complete;
	char *list, *text;

	nc = chain_of(s, leaf, ch, MAX_CHAIN, &complete);
	if (!complete || !extras_of(c, ch, nc, &top, &low) || !mergeable(c, ch, top, low))
		return;
	/* an interrupted merge in it is completed first; then run this report again */
	for (size_t k = top; k <= low; k++)
		if (s->nodes[ch[k]].merging_ancestor)
			return;
	/* a shared layer (a fork above it) is merged once, by its first leaf */
	nk = children_of(s, ch[top], kids, MAX_KIDS);
	if (top > 0 && nk && kids[0] != ch[top - 1])
		return;
	list = layer_list(s, ch, top, low);
	text = merge_text(c, ch[top], s->nodes[ch[low + 1]].path);
	cmd_add(c, fmt("merges the extra recovery checkpoints %s into %s and DELETES %s:", list ? list : "?",
		       s->nodes[ch[low + 1]].path, list ? list : "?"), text);
	free(list);
}

static void build_commands(struct ctx *c)
{
	commands_interrupted(c);
	commands_merged(c);
	if (!backup_mode(c))
		return;
	for (size_t i = 0; i < c->s->n; i++)
		if (is_leaf(&c->s->nodes[i]))
			command_extras(c, i);
}

/* ------------------------------------------------------------ the report */

static void report_header(struct ctx *c)
{
	const struct scan *s = c->s;
	size_t inside = 0, outside = 0;

	for (size_t i = 0; i < s->n; i++)
		s->nodes[i].external ? outside++ : inside++;
	if (c->json) {
		report_str(&c->rep, "folder", s->dir);
		report_begin_list(&c->rep, "images");
		for (size_t i = 0; i < s->n; i++) {
			const struct node *n = &s->nodes[i];
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "path", n->path);
			report_str(&c->rep, "format", fmt_name(n->format));
			report_str(&c->rep, "type", vhdx_type_name(n->type));
			report_u64(&c->rep, "virtual_size", n->virtual_size);
			report_u64(&c->rep, "file_size", n->file_size);
			report_u64(&c->rep, "block_size", n->block_size);
			report_guid(&c->rep, "identity", n->identity);
			report_bool(&c->rep, "outside_folder", n->external);
			report_str_or_null(&c->rep, "in_use", n->in_use);
			if (n->has_parent)
				report_str(&c->rep, "parent", ckpt_parent_name(n->parent_locator ? n->parent_locator : ""));
			report_end(&c->rep);
		}
		report_end_list(&c->rep);
		return;
	}
	printf("folder %s: %zu images, %zu unreadable, %zu other files", s->dir, inside, s->n_bad, s->n_other);
	if (outside)
		printf("; %zu parent%s outside the folder", outside, outside == 1 ? "" : "s");
	printf("\n");
}

/* One complete chain, leaf LEAF (CH, NC layers). */
static void report_chain(struct ctx *c, const size_t *ch, size_t nc)
{
	struct scan *s = c->s;
	const struct node *leaf = &s->nodes[ch[0]];
	size_t top = 0, low = 0;
	unsigned extra = backup_mode(c) ? extras_of(c, ch, nc, &top, &low) : 0;

	c->t.chains++;
	if (extra) {
		c->t.extra_chains++;
		for (size_t k = top; k <= low; k++)
			if (is_recovery(c, &s->nodes[ch[k]]) && !s->nodes[ch[k]].extra_counted) {
				s->nodes[ch[k]].extra_counted = true; /* a layer shared by chains counts once */
				c->t.extra_layers++;
			}
	}
	if (c->json) {
		report_begin(&c->rep, NULL);
		report_str(&c->rep, "base", s->nodes[ch[nc - 1]].path);
		report_str(&c->rep, "leaf", leaf->path);
		report_u64(&c->rep, "depth", nc);
		report_u64(&c->rep, "checkpoints", nc - 1);
		report_str(&c->rep, "format", fmt_name(leaf->format));
		report_u64(&c->rep, "virtual_size", leaf->virtual_size);
		if (backup_mode(c))
			report_u64(&c->rep, "extra_checkpoints", extra);
		report_begin_list(&c->rep, "layers");
		for (size_t k = nc; k-- > 0;) {
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "path", s->nodes[ch[k]].path);
			report_str(&c->rep, "type", vhdx_type_name(s->nodes[ch[k]].type));
			report_u64(&c->rep, "file_size", s->nodes[ch[k]].file_size);
			report_bool(&c->rep, "identity_mismatch_accepted", s->nodes[ch[k]].id_accepted);
			report_end(&c->rep);
		}
		report_end_list(&c->rep);
		report_end(&c->rep);
		return;
	}
	printf("chain: ");
	for (size_t k = nc; k-- > 0;)
		printf("%s%s", s->nodes[ch[k]].path, k ? " <- " : "");
	if (nc == 1)
		printf(" (depth 1: a base alone, %s, virtual %" PRIu64 " bytes)\n", fmt_name(leaf->format), leaf->virtual_size);
	else
		printf(" (depth %zu: the base and %zu checkpoint%s, %s, virtual %" PRIu64 " bytes)\n", nc, nc - 1,
		       nc == 2 ? "" : "s", fmt_name(leaf->format), leaf->virtual_size);
	for (size_t k = nc; k-- > 0;) {
		const struct node *n = &s->nodes[ch[k]];
		printf("  %s: %s %s, file %" PRIu64 " bytes%s%s%s%s%s\n", n->path, fmt_name(n->format),
		       vhdx_type_name(n->type), n->file_size, n->external ? " (outside the folder)" : "",
		       n->id_accepted ? " (its parent's identity differs: accepted by --ignore-id-mismatch)" : "",
		       n->in_use ? " (in use for " : "", n->in_use ? (strcmp(n->in_use, "write") ? "reading" : "writing") : "",
		       n->in_use ? " by another process)" : "");
	}
	if (extra) {
		printf("extra recovery checkpoints: %u over %s:", extra, s->nodes[ch[low + 1]].path);
		for (size_t k = low + 1; k-- > top;)
			printf(" %s", s->nodes[ch[k]].path);
		printf(" (the backup keeps %u; a backup job fails with 0xA000971E, another recovery checkpoint exists)%s\n",
		       backup_keeps(c), mergeable(c, ch, top, low) ? ""
				: "; no merge command: a fork or a checkpoint that is not a recovery checkpoint is in between");
	}
}

/* A leaf whose parents do not reach a base. */
static void report_incomplete(struct ctx *c, const size_t *ch, size_t nc)
{
	const struct scan *s = c->s;
	const struct node *last = &s->nodes[ch[nc - 1]];
	const char *why = last->in_cycle || (last->parent >= 0 && s->nodes[last->parent].in_cycle)
				  ? "its parents run into a cycle"
				  : last->merging_ancestor ? "an interrupted merge" : "a broken link";

	c->t.incomplete++;
	if (c->json) {
		report_begin(&c->rep, NULL);
		report_str(&c->rep, "leaf", s->nodes[ch[0]].path);
		report_str(&c->rep, "ends_at", last->path);
		report_str(&c->rep, "reason", why);
		if (backup_mode(c))
			report_bool(&c->rep, "backup_fails_0xA0009723", true);
		report_end(&c->rep);
		return;
	}
	printf("incomplete chain: ");
	for (size_t k = nc; k-- > 0;)
		printf("%s%s", s->nodes[ch[k]].path, k ? " <- " : "");
	printf(" (no base: %s at %s; the leaf cannot be read)\n", why, last->path);
	if (backup_mode(c))
		printf("backup: %s: a backup job fails to create its checkpoint over it (0xA0009723)\n", s->nodes[ch[0]].path);
}

/* The chain of every leaf: the complete ones (COMPLETE_ONES) or the others. */
static void report_leaf_chains(struct ctx *c, bool complete_ones)
{
	size_t ch[MAX_CHAIN];
	bool complete;

	for (size_t i = 0; i < c->s->n; i++) {
		size_t nc;
		if (!is_leaf(&c->s->nodes[i]) || c->s->nodes[i].merged_away)
			continue;
		nc = chain_of(c->s, i, ch, MAX_CHAIN, &complete);
		if (complete_ones && complete)
			report_chain(c, ch, nc);
		/* a leaf whose own link is broken is reported as unreferenced below */
		else if (!complete_ones && !complete && (nc > 1 || c->s->nodes[i].link == LINK_OK))
			report_incomplete(c, ch, nc);
	}
}

static void report_chains(struct ctx *c)
{
	report_leaf_chains(c, true);
}

static void report_incomplete_chains(struct ctx *c)
{
	report_leaf_chains(c, false);
}

static void report_forks(struct ctx *c)
{
	size_t kids[MAX_KIDS];

	for (size_t i = 0; i < c->s->n; i++) {
		size_t nk;

		if (c->s->nodes[i].n_children < 2)
			continue;
		c->t.forks++;
		nk = children_of(c->s, i, kids, MAX_KIDS);
		if (c->json) {
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "parent", c->s->nodes[i].path);
			report_begin_list(&c->rep, "children");
			for (size_t k = 0; k < nk; k++) {
				report_begin(&c->rep, NULL);
				report_str(&c->rep, "path", c->s->nodes[kids[k]].path);
				report_end(&c->rep);
			}
			report_end_list(&c->rep);
			report_end(&c->rep);
			continue;
		}
		printf("fork: %s has %zu children:", c->s->nodes[i].path, nk);
		for (size_t k = 0; k < nk; k++)
			printf(" %s", c->s->nodes[kids[k]].path);
		printf(" (merging one child into it would change what the others read)\n");
	}
}

/* What is wrong with node ND's link, for the broken-links list; NULL when nothing is. */
static const char *link_problem(const struct node *nd)
{
	if (nd->merged_away || nd->in_cycle)
		return NULL;
	if (nd->merging_ancestor && (nd->link == LINK_MISMATCH || nd->link == LINK_OK))
		return "interrupted_merge";
	switch (nd->link) {
	case LINK_MISSING: return "missing";
	case LINK_MISMATCH: return "linkage_mismatch";
	case LINK_ERROR: return "error";
	default: return NULL;
	}
}

static void link_json(struct ctx *c, const struct node *nd, const char *problem)
{
	struct report *r = &c->rep;

	report_begin(r, NULL);
	report_str(r, "image", nd->path);
	report_str(r, "problem", problem);
	report_str(r, "parent", ckpt_parent_name(nd->parent_locator ? nd->parent_locator : ""));
	report_str(r, "parent_locator", nd->parent_locator ? nd->parent_locator : "");
	report_guid(r, "linkage", nd->linkage);
	if (nd->link == LINK_MISMATCH && nd->mismatched >= 0) {
		report_str(r, "found", c->s->nodes[nd->mismatched].path);
		report_guid(r, "found_identity", nd->parent_identity);
	}
	if (nd->merging_ancestor)
		report_str(r, "merging_into", nd->merging_ancestor);
	if (nd->tried)
		report_str(r, "tried", nd->tried);
	if (nd->message && nd->link != LINK_MISSING)
		report_str(r, "message", nd->message);
	report_bool(r, "referenced", nd->n_children > 0);
	report_end(r);
}

static void link_text(const struct ctx *c, const struct node *nd, const char *problem)
{
	char g1[VHDX_GUID_TEXT_SIZE], g2[VHDX_GUID_TEXT_SIZE];
	const char *name = ckpt_parent_name(nd->parent_locator ? nd->parent_locator : "");

	vhdx_guid_text(nd->linkage, g1);
	vhdx_guid_text(nd->parent_identity, g2);
	if (!strcmp(problem, "missing"))
		printf("missing parent: %s: parent \"%s\" {%s} not found; tried: %s\n", nd->path, name, g1,
		       nd->tried ? nd->tried : "");
	else if (!strcmp(problem, "interrupted_merge"))
		printf("interrupted merge: %s into %s (%s.merging): run the same merge again to complete it\n", nd->path,
		       nd->merging_ancestor, nd->path);
	else if (!strcmp(problem, "linkage_mismatch"))
		printf("linkage mismatch: %s: parent \"%s\" {%s} is %s {%s} now\n", nd->path, name, g1,
		       nd->mismatched >= 0 ? c->s->nodes[nd->mismatched].path : "?", g2);
	else
		printf("broken link: %s: %s\n", nd->path, nd->message ? nd->message : "");
}

static void report_links(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n; i++) {
		const struct node *nd = &c->s->nodes[i];
		const char *problem = link_problem(nd);

		if (!problem)
			continue;
		if (!strcmp(problem, "missing"))
			c->t.missing++;
		else if (!strcmp(problem, "interrupted_merge"))
			c->t.interrupted++;
		else if (!strcmp(problem, "linkage_mismatch"))
			c->t.mismatches++;
		else
			c->t.link_errors++;
		if (c->json)
			link_json(c, nd, problem);
		else
			link_text(c, nd, problem);
	}
}

/* Each cycle of parents once: its members from the first one met. */
static void report_cycles(struct ctx *c)
{
	bool *done = calloc(c->s->n ? c->s->n : 1, sizeof *done);

	for (size_t i = 0; done && i < c->s->n; i++) {
		int k = (int)i;

		if (!c->s->nodes[i].in_cycle || done[i])
			continue;
		c->t.cycles++;
		if (c->json) {
			report_begin(&c->rep, NULL);
			report_begin_list(&c->rep, "images");
		} else {
			printf("cycle of parents:");
		}
		do {
			done[k] = true;
			if (c->json)
				report_str(&c->rep, NULL, c->s->nodes[k].path);
			else
				printf(" the parent of %s is %s;", c->s->nodes[k].path,
				       c->s->nodes[c->s->nodes[k].parent].path);
			k = c->s->nodes[k].parent;
		} while (k != (int)i);
		if (c->json) {
			report_end_list(&c->rep);
			report_end(&c->rep);
		} else {
			printf(" no chain through them reaches a base\n");
		}
	}
	free(done);
}

static void report_merged(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n; i++) {
		const struct node *nd = &c->s->nodes[i];
		int pi = nd->link == LINK_MISMATCH ? nd->mismatched : nd->parent;

		if (!nd->merged_away || pi < 0)
			continue;
		c->t.merged++;
		if (c->json) {
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "image", nd->path);
			report_str(&c->rep, "into", c->s->nodes[pi].path);
			report_end(&c->rep);
			continue;
		}
		printf("merged: %s: its parent %s changed after it was made and holds all its data (vhdx merge); "
		       "nothing builds on it: delete it\n", nd->path, c->s->nodes[pi].path);
	}
}

static void report_unreferenced(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n; i++) {
		const struct node *nd = &c->s->nodes[i];

		if (nd->external || nd->n_children || !nd->has_parent || nd->link == LINK_OK || nd->merged_away ||
		    (nd->link == LINK_MISMATCH && nd->merging_ancestor))
			continue;
		c->t.unreferenced++;
		if (c->json) {
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "image", nd->path);
			report_str(&c->rep, "reason", nd->link == LINK_MISSING ? "parent_missing"
						      : nd->link == LINK_MISMATCH ? "linkage_mismatch" : "parent_unreadable");
			report_end(&c->rep);
			continue;
		}
		printf("unreferenced: %s: nothing builds on it and its parent is %s: no chain can read it\n", nd->path,
		       nd->link == LINK_MISSING ? "missing" : nd->link == LINK_MISMATCH ? "another image now" : "unreadable");
		if (backup_mode(c))
			printf("backup: %s: a backup job fails to create its checkpoint over it (0xA0009723)\n", nd->path);
	}
}

static void report_unreadable(struct ctx *c)
{
	for (size_t i = 0; i < c->s->n_bad; i++) {
		const char *m = c->s->bad[i].message ? c->s->bad[i].message : "";
		size_t pl = strlen(c->s->bad[i].path);

		c->t.unreadable++;
		if (c->json) {
			report_begin(&c->rep, NULL);
			report_str(&c->rep, "path", c->s->bad[i].path);
			report_str(&c->rep, "message", m);
			report_end(&c->rep);
			continue;
		}
		/* the library's messages start with the file name already */
		if (!strncmp(m, c->s->bad[i].path, pl) && !strncmp(m + pl, ": ", 2))
			m += pl + 2;
		printf("unreadable: %s: %s\n", c->s->bad[i].path, m);
	}
}

static bool broken(const struct tally *t)
{
	return t->missing || t->mismatches || t->interrupted || t->link_errors || t->unreferenced || t->merged ||
	       t->cycles || t->incomplete || t->unreadable || t->extra_layers;
}

static void report_end_json(struct ctx *c)
{
	struct report *r = &c->rep;
	const struct tally *t = &c->t;
	size_t outside = 0;

	report_begin_list(r, "commands");
	for (size_t k = 0; k < c->n_cmds; k++) {
		report_begin(r, NULL);
		report_str(r, "what", c->cmds[k].note);
		report_str(r, "command", c->cmds[k].text);
		report_end(r);
	}
	report_end_list(r);
	report_begin(r, "summary");
	for (size_t i = 0; i < c->s->n; i++)
		outside += c->s->nodes[i].external;
	report_u64(r, "images", c->s->n - outside); /* of the folder, as the text's first line */
	report_u64(r, "chains", t->chains);
	report_u64(r, "forks", t->forks);
	report_u64(r, "missing_parents", t->missing);
	report_u64(r, "linkage_mismatches", t->mismatches);
	report_u64(r, "interrupted_merges", t->interrupted);
	report_u64(r, "link_errors", t->link_errors);
	report_u64(r, "cycles", t->cycles);
	report_u64(r, "incomplete_chains", t->incomplete);
	report_u64(r, "merged", t->merged);
	report_u64(r, "unreferenced", t->unreferenced);
	report_u64(r, "unreadable", t->unreadable);
	report_u64(r, "other_files", c->s->n_other);
	report_u64(r, "parents_outside_folder", outside);
	if (backup_mode(c)) {
		report_u64(r, "backup_keeps", backup_keeps(c));
		report_u64(r, "chains_with_extra_checkpoints", t->extra_chains);
		report_u64(r, "extra_checkpoints", t->extra_layers);
	}
	report_end(r);
	report_bool(r, "clean", !broken(t));
}

static void report_end_text(struct ctx *c)
{
	const struct tally *t = &c->t;

	if (c->n_cmds) {
		printf("cleanup (each command after what it does):\n");
		for (size_t k = 0; k < c->n_cmds; k++)
			printf("  # %s\n  %s\n", c->cmds[k].note, c->cmds[k].text);
	}
	printf("summary: %u chains, %u forks, %u missing parents, %u linkage mismatches, %u interrupted merges, "
	       "%u cycles, %u incomplete chains, %u merged, %u unreferenced, %u unreadable",
	       t->chains, t->forks, t->missing, t->mismatches, t->interrupted, t->cycles, t->incomplete, t->merged,
	       t->unreferenced, t->unreadable);
	if (backup_mode(c))
		printf(", %u extra checkpoints (the backup keeps %u)", t->extra_layers, backup_keeps(c));
	printf("\n%s\n", broken(t) ? "problems found" : "clean: nothing broken");
}

/* The lists of the report, in order: with --json, each function's items inside its list. */
static const struct {
	const char *name;
	void (*fn)(struct ctx *);
} lists[] = {
	{ "chains", report_chains }, { "incomplete_chains", report_incomplete_chains }, { "forks", report_forks },
	{ "broken_links", report_links }, { "cycles", report_cycles }, { "merged", report_merged },
	{ "unreferenced", report_unreferenced }, { "unreadable", report_unreadable },
};

/* The whole report, in named steps; the exit status. */
static int report_all(struct ctx *c)
{
	build_commands(c);
	if (c->json) {
		report_init(&c->rep, stdout, true);
		report_begin(&c->rep, NULL);
	}
	report_header(c);
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		if (c->json)
			report_begin_list(&c->rep, lists[i].name);
		lists[i].fn(c);
		if (c->json)
			report_end_list(&c->rep);
	}
	if (c->json) {
		report_end_json(c);
		report_end(&c->rep);
		report_finish(&c->rep);
	} else {
		report_end_text(c);
	}
	return broken(&c->t) ? EXIT_PROBLEMS : EXIT_OK;
}

/* Options into C; -1 to return *RC. */
static int parse_options(struct ctx *c, int argc, char **argv, int *rc)
{
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		{ "backup-checkpoints", required_argument, NULL, OPT_BACKUP_N },
		{ "recovery", required_argument, NULL, OPT_RECOVERY },
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_cmd tc = { .name = "checkpoints", .help = help, .shortopts = "hU", .longopts = longopts,
			       .open = &c->s->to, .json = &c->json };
	uint64_t v;
	int opt;

	while ((opt = tool_getopt(&tc, argc, argv)) != -1) {
		switch (opt) {
		case OPT_BACKUP_N:
			if (tool_uint_option("checkpoints", "--backup-checkpoints", optarg, 0, 1000, &v) < 0)
				goto usage;
			c->backup_n = (int)v;
			break;
		case OPT_RECOVERY:
			if (tool_list_option("checkpoints", "--recovery", c->globs, &c->n_globs, optarg) < 0)
				goto usage;
			break;
		}
	}
	if (tc.stopped) {
		*rc = tc.rc;
		return -1;
	}
	if (c->s->to.opts.flags & VHDX_OPEN_NO_PARENT) {
		tool_error("checkpoints", "--no-parent makes no sense for a report of chains");
		goto usage;
	}
	if (tool_operands(&tc, argc, 1, "one folder DIR")) {
		*rc = tc.rc;
		return -1;
	}
	return 0;
usage:
	*rc = EXIT_USAGE;
	return -1;
}

int cmd_checkpoints(int argc, char **argv)
{
	struct scan s = { 0 };
	struct ctx c = { .s = &s, .backup_n = -1 };
	int rc = EXIT_OK;

	tool_open_init(&s.to);
	if (parse_options(&c, argc, argv, &rc) < 0)
		return rc;
	s.dir = argv[optind];
	s.to.parent_dirs[s.to.n_parent_dirs] = NULL;
	s.to.path_maps[s.to.n_path_maps] = NULL;
	s.to.opts.parent_dirs = s.to.n_parent_dirs ? s.to.parent_dirs : NULL;
	s.to.opts.path_maps = s.to.n_path_maps ? s.to.path_maps : NULL;
	c.chain_args = chain_args(&s.to);
	if (ckpt_scan(&s) < 0 || ckpt_analyse(&s) < 0)
		rc = EXIT_ERR;
	else
		rc = report_all(&c);
	for (size_t k = 0; k < c.n_cmds; k++) {
		free(c.cmds[k].note);
		free(c.cmds[k].text);
	}
	free(c.cmds);
	free(c.chain_args);
	ckpt_free(&s);
	return rc;
}
