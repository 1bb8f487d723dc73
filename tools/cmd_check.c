/*
 * cmd_check.c - `vhdx check [--json] [--repair] IMAGE`: every structure
 * check of FORMAT.md 1.10 and the VHD equivalents (libvhdx/maint/check.c and the
 * per-format checkers), each problem with its severity, structure and file
 * offset; with --repair the repairs done, the virtual ranges whose data was
 * given up, and the verdict after the repair.
 *
 * Exit: 0 clean (or clean after --repair), 3 problems found (or left after
 * --repair), 1 the image could not be checked or a repair step failed.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "tool.h"

struct item {
	int severity;       /* problems; -1 for events */
	char *structure;
	uint64_t foff;
	char *message;
	uint64_t voff, len; /* lost ranges */
};
struct list {
	struct item *v;
	size_t n, cap;
};
struct collect {
	struct list before, after, repaired, lost;
	bool oom;
};

static void list_add(struct collect *c, struct list *l, int sev, const char *structure, uint64_t foff, const char *msg,
		     uint64_t voff, uint64_t len)
{
	struct item *it;
	if (grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16) < 0) {
		c->oom = true;
		return;
	}
	it = &l->v[l->n++];
	it->severity = sev;
	it->structure = strdup(structure);
	it->message = strdup(msg);
	it->foff = foff;
	it->voff = voff;
	it->len = len;
	if (!it->structure || !it->message)
		c->oom = true;
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].structure);
		free(l->v[i].message);
	}
	free(l->v);
}

static void on_problem(void *ctx, int after, const struct vhdx_check_problem *p)
{
	struct collect *c = ctx;
	list_add(c, after ? &c->after : &c->before, (int)p->severity, p->structure, p->foff, p->message, 0, 0);
}
static void on_repaired(void *ctx, const struct vhdx_check_event *e)
{
	struct collect *c = ctx;
	list_add(c, &c->repaired, -1, e->structure, e->foff, e->message, 0, 0);
}
static void on_lost(void *ctx, const struct vhdx_check_event *e)
{
	struct collect *c = ctx;
	list_add(c, &c->lost, -1, e->structure, e->foff, e->message, e->lost_voff, e->lost_len);
}

static const char *sev_name(int s)
{
	return s == VHDX_CHECK_ERROR ? "error" : "warning";
}

static void print_text(const struct item *it, const char *lead)
{
	printf("  %s: %s", lead ? lead : sev_name(it->severity), it->structure);
	if (it->foff != VHDX_CHECK_NO_OFF)
		printf(" at 0x%llx", (unsigned long long)it->foff);
	printf(": %s\n", it->message);
}

static void json_items(struct report *r, const char *key, const struct list *l, bool problems, bool lost)
{
	report_begin_list(r, key);
	for (size_t i = 0; i < l->n; i++) {
		const struct item *it = &l->v[i];
		report_begin(r, NULL);
		if (problems)
			report_str(r, "severity", sev_name(it->severity));
		report_str(r, "structure", it->structure);
		if (it->foff != VHDX_CHECK_NO_OFF)
			report_u64(r, "offset", it->foff);
		if (lost) {
			report_u64(r, "virtual_offset", it->voff);
			report_u64(r, "length", it->len);
		}
		report_str(r, "message", it->message);
		report_end(r);
	}
	report_end_list(r);
}

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx check [--json] [--repair] [CHAIN OPTIONS] IMAGE\n\n"
		   "Checks every structure of a VHDX/AVHDX or VHD file and reports each problem\n"
		   "with its severity, the structure and its file offset: file identifier,\n"
		   "headers, log, region tables, metadata, BAT, parent locator, VHD footer and\n"
		   "its copy, dynamic header, leaked space.  A differencing disk whose own\n"
		   "structures are sound is also opened with its parent chain.\n"
		   "Exit status: 0 clean, 3 problems found, 1 the image could not be checked.\n\n"
		   "  --json          machine-readable output\n"
		   "  --repair        repair what can be repaired, crash-safe: replay a dirty log,\n"
		   "                  restore a header, region table or VHD footer copy from the\n"
		   "                  good one, clear BAT entries that cannot be right (the data\n"
		   "                  of their ranges is reported lost), free leaked space at the\n"
		   "                  end; then check again (exit 0 when clean afterwards; a\n"
		   "                  broken chain is not repaired, so it never is)\n"
		   "  -h, --help      this text\n\n"
		   TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		{ "repair", no_argument, NULL, OPT__NEXT },
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_check_options o;
	struct vhdx_check_counts res;
	struct collect col;
	struct report r;
	const char *path;
	bool json = false, repair;
	int c, ret, rc;
	struct tool_cmd tc = { .name = "check", .help = help, .shortopts = "hU", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	vhdx_check_options_init(&o);
	while ((c = tool_getopt(&tc, argc, argv)) != -1)
		if (c == OPT__NEXT) /* --repair */
			o.flags |= VHDX_CHECK_REPAIR;
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	path = argv[optind];
	repair = o.flags & VHDX_CHECK_REPAIR;
	memset(&col, 0, sizeof col);
	o.faults = tool_faults; /* vhdx --faults RULES check --repair: power cuts during a repair */
	if (!(to.opts.flags & VHDX_OPEN_NO_PARENT))
		o.flags |= VHDX_CHECK_CHAIN;
	o.chain_opts = &to.opts;
	o.ctx = &col;
	o.problem = on_problem;
	o.repaired = on_repaired;
	o.lost = on_lost;
	res.struct_size = sizeof res;
	ret = vhdx_check(path, &o, &res);
	if (ret < 0 && !col.repaired.n) {
		rc = tool_lib_error("check", ret);
		goto out;
	}
	if (col.oom) {
		tool_error("check", "out of memory");
		rc = EXIT_ERR;
		goto out;
	}
	if (json) {
		tool_report_image(&r, true, path);
		report_str(&r, "format", res.format ? res.format : "unknown");
		report_u64(&r, "errors", res.errors);
		report_u64(&r, "warnings", res.warnings);
		json_items(&r, "problems", &col.before, true, false);
		if (repair) {
			report_begin(&r, "repair");
			report_bool(&r, "completed", ret == 0);
			json_items(&r, "actions", &col.repaired, false, false);
			json_items(&r, "lost", &col.lost, false, true);
			report_u64(&r, "errors_after", res.errors_after);
			report_u64(&r, "warnings_after", res.warnings_after);
			json_items(&r, "problems_after", &col.after, true, false);
			report_end(&r);
		}
		report_end(&r);
		report_finish(&r);
	} else {
		printf("%s: %s, %u error%s, %u warning%s\n", path, res.format ? res.format : "?", res.errors,
		       res.errors == 1 ? "" : "s", res.warnings, res.warnings == 1 ? "" : "s");
		for (size_t i = 0; i < col.before.n; i++)
			print_text(&col.before.v[i], NULL);
		if (repair && (col.repaired.n || ret < 0 || res.errors + res.warnings)) {
			for (size_t i = 0; i < col.repaired.n; i++)
				print_text(&col.repaired.v[i], "repaired");
			for (size_t i = 0; i < col.lost.n; i++)
				print_text(&col.lost.v[i], "lost");
			if (ret == 0) {
				if (res.errors_after + res.warnings_after == 0)
					printf("after repair: clean\n");
				else
					printf("after repair: %u error%s, %u warning%s\n", res.errors_after,
					       res.errors_after == 1 ? "" : "s", res.warnings_after,
					       res.warnings_after == 1 ? "" : "s");
				for (size_t i = 0; i < col.after.n; i++)
					print_text(&col.after.v[i], NULL);
			}
		}
	}
	if (ret < 0)
		rc = tool_lib_error("check", ret); /* a repair step failed after others were done */
	else if (repair && res.errors + res.warnings)
		rc = res.errors_after + res.warnings_after ? EXIT_PROBLEMS : EXIT_OK;
	else
		rc = res.errors + res.warnings ? EXIT_PROBLEMS : EXIT_OK;
out:
	list_free(&col.before);
	list_free(&col.after);
	list_free(&col.repaired);
	list_free(&col.lost);
	return rc;
}
