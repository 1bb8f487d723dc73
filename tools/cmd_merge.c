/*
 * cmd_merge.c - `vhdx merge CHILD [--into ANCESTOR]`: vhdx_merge() on the
 * command line (like Merge-VHD).  Children of CHILD named with --relink or
 * found in CHILD's folder (differencing images that link to CHILD's
 * identity) are re-pointed to the ancestor after the merge.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx merge [--into ANCESTOR] [--delete] [--relink FILE] [--progress|--no-progress] CHILD\n\n"
		   "Writes the data of CHILD and of every layer between it and ANCESTOR (default: the\n"
		   "immediate parent) into ANCESTOR, through its log: a crash leaves ANCESTOR\n"
		   "consistent, and running the same merge again completes it.  The merged layers\n"
		   "no longer fit the changed ANCESTOR: they are reported (or deleted with --delete).\n"
		   "Children of CHILD (given with --relink, or found in CHILD's folder) are\n"
		   "re-pointed to ANCESTOR.  ANCESTOR must lie in CHILD's folder or a --parent-dir\n"
		   "folder, or be named with --into: a locator may lead anywhere.\n\n"
		   "      --into ANCESTOR       the layer to merge into (a file of CHILD's chain)\n"
		   "      --delete              delete the merged layers afterwards\n"
		   "      --relink FILE         re-point FILE (a child of CHILD) to ANCESTOR (repeatable)\n"
		   "      --no-auto-relink      do not look for children of CHILD in its folder\n"
		   "  -p, --progress            show progress on standard error (default on a terminal)\n"
		   "      --no-progress         never show progress\n"
		   "  -h, --help                this text\n\n" TOOL_OPEN_HELP);
}

static void merged_cb(const char *path, int deleted, void *arg)
{
	(void)arg;
	if (deleted)
		printf("merged and deleted: %s\n", path);
	else
		printf("merged: %s (no longer valid: its parent has changed; delete it)\n", path);
}

static bool has_image_suffix(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (!strcasecmp(dot, ".vhdx") || !strcasecmp(dot, ".avhdx") || !strcasecmp(dot, ".vhd"));
}

/* Adds to RELINK every image in CHILD's folder whose link is CHILD's identity. */
/* The leaf's facts of IMG into *LI (0), or -errno. */
static int leaf_info(struct vhdx_image *img, struct vhdx_layer_info *li)
{
	li->struct_size = sizeof *li;
	return vhdx_get_layer_info(img, 0, li);
}

static int find_children(const char *child, const char **relink, unsigned *n, unsigned max, char **owned)
{
	struct vhdx_image *img;
	struct vhdx_layer_info li;
	uint8_t id[16], anc_id[16];
	char *anc_path = NULL;
	bool have_anc = false;
	char *dup = strdup(child), *dir;
	DIR *d;
	struct dirent *de;
	int ret;

	if (!dup)
		return -1;
	if (tool_open_flags(child, VHDX_OPEN_NO_PARENT, NULL, &img) < 0) {
		free(dup);
		return 0; /* vhdx_merge reports it */
	}
	ret = leaf_info(img, &li);
	memcpy(id, li.identity, 16);
	vhdx_close(img);
	if (ret < 0) {
		free(dup);
		return 0; /* vhdx_merge reports it */
	}
	/*
	 * A resumed merge may have been cut while re-pointing a child: that
	 * child links to the ancestor already, but only through its log.
	 * Re-pointing it again is idempotent and settles the log in the file.
	 */
	if (vhdx_merge_pending(child, &anc_path) == 1 &&
	    tool_open_flags(anc_path, VHDX_OPEN_NO_PARENT, NULL, &img) == 0) {
		have_anc = leaf_info(img, &li) == 0;
		memcpy(anc_id, li.identity, 16);
		vhdx_close(img);
	}
	free(anc_path);
	dir = dirname(dup);
	d = opendir(dir);
	if (!d) {
		free(dup);
		return 0;
	}
	while ((de = readdir(d)) && *n < max) {
		char path[4096];
		if (!has_image_suffix(de->d_name))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		/*
		 * Only its link is read, without a lock (issue #14): a child that
		 * another process has open must still be found, so that the
		 * merge's exclusive lock on it refuses the merge instead of
		 * leaving the child pointing at a changed parent.
		 */
		ret = tool_open_flags(path, VHDX_OPEN_NO_PARENT | VHDX_OPEN_FORCE_SHARE, NULL, &img);
		if (ret < 0)
			continue;
		if (leaf_info(img, &li) == 0 && li.has_parent && strcmp(path, child) != 0 &&
		    (!memcmp(li.parent_linkage, id, 16) ||
		     (have_anc && li.log_replayed && !memcmp(li.parent_linkage, anc_id, 16)))) {
			owned[*n] = strdup(path);
			if (owned[*n]) {
				relink[*n] = owned[*n];
				(*n)++;
			}
		}
		vhdx_close(img);
	}
	closedir(d);
	free(dup);
	return 0;
}

int cmd_merge(int argc, char **argv)
{
	enum { OPT_INTO = OPT__NEXT, OPT_DELETE, OPT_RELINK, OPT_NO_AUTO };
	static const struct option longopts[] = {
		{ "into", required_argument, NULL, OPT_INTO },
		{ "delete", no_argument, NULL, OPT_DELETE },
		{ "relink", required_argument, NULL, OPT_RELINK },
		{ "no-auto-relink", no_argument, NULL, OPT_NO_AUTO },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		TOOL_IMAGE_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_merge_options mo;
	struct tool_progress ps;
	const char *relink[65];
	char *owned[65];
	unsigned n_relink = 0, n_owned_from;
	int progress = -1, auto_relink = 1, c, ret;
	struct tool_cmd tc = { .name = "merge", .help = help, .shortopts = "ph", .longopts = longopts,
			       .open = &to, .progress = &progress };

	tool_open_init(&to);
	vhdx_merge_options_init(&mo);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_INTO:
			mo.into = optarg;
			break;
		case OPT_DELETE:
			mo.flags |= VHDX_MERGE_DELETE;
			break;
		case OPT_RELINK:
			if (tool_list_option("merge", "--relink", relink, &n_relink, optarg) < 0)
				return EXIT_USAGE;
			break;
		case OPT_NO_AUTO:
			auto_relink = 0;
			break;
		}
	}
	if (tool_operands(&tc, argc, 1, NULL))
		return tc.rc;
	if (to.opts.flags & VHDX_OPEN_NO_PARENT) {
		tool_error("merge", "--no-parent makes no sense for a merge");
		return EXIT_USAGE;
	}
	n_owned_from = n_relink;
	if (auto_relink && n_relink == 0)
		find_children(argv[optind], relink, &n_relink, 64, owned + n_relink - n_owned_from);
	relink[n_relink] = NULL;
	tool_progress_start(&ps, "merge", progress == 1 || (progress == -1 && isatty(2)), 0);
	mo.open_flags = to.opts.flags & VHDX_OPEN_IGNORE_ID_MISMATCH;
	mo.parent = to.opts.parent;
	to.parent_dirs[to.n_parent_dirs] = NULL;
	to.path_maps[to.n_path_maps] = NULL;
	mo.parent_dirs = to.n_parent_dirs ? to.parent_dirs : NULL;
	mo.path_maps = to.n_path_maps ? to.path_maps : NULL;
	mo.max_depth = to.opts.max_depth;
	mo.faults = tool_faults;
	mo.relink = relink;
	mo.progress = tool_progress_cb;
	mo.progress_arg = &ps;
	mo.merged_layer = merged_cb;
	ret = vhdx_merge(argv[optind], &mo);
	tool_progress_end(&ps);
	for (unsigned i = n_owned_from; i < n_relink; i++)
		if (ret == 0)
			printf("re-pointed to the ancestor: %s\n", relink[i]);
	for (unsigned i = 0; i < n_relink; i++)
		if (i >= n_owned_from)
			free(owned[i - n_owned_from]);
	if (ret < 0)
		return tool_lib_error("merge", ret);
	return EXIT_OK;
}
