/*
 * cmd_cycle.c - `vhdx cycle mount`: the mount/unmount cycle of a backup
 * agent's scratch disk, with fault injection and fault detection (issue #6).
 *
 * Azure Backup's MARS agent mounts a metadata VHD from its scratch folder on
 * every file-and-folder backup, writes its catalogue into it, and unmounts
 * it; a defect in that step once failed every backup with 0x8007045D
 * (ERROR_IO_DEVICE).  This command repeats that cycle on Linux, N times:
 *
 *   1. create the image on the first cycle if it does not exist (VHDX or VHD)
 *   2. mount it read-write with vhdxfs (a child process), with this cycle's
 *      fault rules (-o faults=) and a fault log (-o fault-log=)
 *   3. run the metadata workload through MOUNTPOINT/disk (cycle_workload.c),
 *      keeping a model of what was acknowledged (cycle_model.c) and tying
 *      every injected fault to the call it hit (MOUNTPOINT/.vhdxfs/events)
 *   4. unmount with fusermount3 -u; vhdxfs's exit status says whether closing
 *      the image failed; its fault log holds the faults of the unmount
 *   5. reopen the image in this process, read-only, without faults (a dirty
 *      VHDX log is replayed in memory), and compare every sector with the
 *      model
 *   6. classify the cycle and every fault (cycle_report.c)
 *
 * The summary counts cycles and faults per class and errors per errno with
 * the Windows code; --json prints the same with every cycle's detail.  The
 * exit status is 3 when any cycle was silent, unexpected, damaged or lost.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cycle.h"

#define MAX_ERRNOS 32

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct errno_count {
	int err;
	uint64_t injected, surfaced;
};

struct cycle_run {
	const char *image;
	const char *faults;
	uint64_t seed;
	unsigned count;
	unsigned ops;
	uint64_t size;
	uint64_t block_size;
	enum vhdx_format format;    /* 0 until --format or the image says */
	bool json, verbose, quiet, keep;
	bool progress;
	unsigned timeout_ms;
	const char *vhdxfs_opt, *workdir_opt;
	struct cycle_rules *rules;  /* --faults, counts carried from cycle to cycle */
	struct cycle_model *m;      /* what the workload was told is durable */
	/* totals */
	struct cycle_totals tot;    /* cycles and faults per class */
	struct errno_count errnos[MAX_ERRNOS];
	unsigned n_errnos;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vhdx cycle mount --image FILE --count N [--faults RULES] [--seed S] [--json]\n"
		   "                        [--format vhd|vhdx] [--size N] [OPTIONS]\n"
		   "       vhdx cycle checkpoint --base FILE --count N [--faults RULES] [--seed S] [--json]\n"
		   "Try 'vhdx cycle --help' for more information.\n");
}

static void help(void)
{
	printf(
"Usage: vhdx cycle mount --image FILE --count N [--faults RULES] [--seed S] [--json]\n"
"                        [--format vhd|vhdx] [--size N] [OPTIONS]\n"
"       vhdx cycle checkpoint --base FILE --count N [--faults RULES] [--seed S] [--json]\n"
"                        (the recovery-checkpoint cycle: 'vhdx cycle checkpoint --help')\n"
"\n"
"NAME\n"
"    vhdx cycle mount - repeat a backup agent's mount/write/unmount cycle of a\n"
"    scratch disk, with injected faults, and report every fault seen or missed\n"
"\n"
"SYNOPSIS\n"
"    vhdx cycle mount --image FILE --count N [--faults RULES] [--seed S]\n"
"                     [--json] [--format vhd|vhdx] [--size N] [OPTIONS]\n"
"\n"
"DESCRIPTION\n"
"    Azure Backup's MARS agent mounts a metadata VHD from its scratch folder\n"
"    on every backup, writes its catalogue into it and unmounts it; a defect\n"
"    in that step once made every backup fail with 0x8007045D\n"
"    (ERROR_IO_DEVICE).  This command repeats that cycle N times so that such\n"
"    failures can be reproduced, and checks that none goes unnoticed.  Each\n"
"    cycle:\n"
"\n"
"    1. creates FILE on the first cycle when it does not exist: a dynamic\n"
"       VHD when its name ends in .vhd, else a VHDX (--format overrides),\n"
"       of --size bytes; an existing FILE is used as it is, and its contents\n"
"       at the start are what the first cycle expects to find\n"
"    2. mounts it read-write with vhdxfs (a child process: vhdxfs -f -o rw\n"
"       -o faults=... -o fault-log=... FILE MOUNTPOINT)\n"
"    3. runs a metadata workload through MOUNTPOINT/disk with O_DIRECT: small\n"
"       writes (512 B - 8 KiB) in a hot area, large writes (64 KiB - 512 KiB),\n"
"       overwrites, fsyncs, reads of what was written; it always ends with an\n"
"       fsync, a read-back and close().  The workload is a function of --seed\n"
"       and the cycle number only.  A write is acknowledged when it and the\n"
"       next fsync both returned success\n"
"    4. unmounts with fusermount3 -u and waits for vhdxfs, whose exit status\n"
"       tells whether closing the image failed\n"
"    5. reopens FILE through the library, read-only and without faults (a\n"
"       dirty VHDX log is replayed in memory), and compares every 512-byte\n"
"       sector with what the workload was told: acknowledged sectors must\n"
"       hold their bytes; a sector of a failed write or fsync may hold its\n"
"       old bytes or the bytes of any write attempted (anything else there\n"
"       is a torn sector: allowed, the workload was told the call failed)\n"
"\n"
"    Every injected fault is read from MOUNTPOINT/.vhdxfs/events after each\n"
"    call of the workload (the calls are made one at a time, so a fault\n"
"    belongs to the call during which it appeared) and, for the unmount, from\n"
"    vhdxfs's fault log.  Each fault, and each cycle, is then classified:\n"
"\n");
	cycle_print_classes(6);
	printf(
"\n"
"    A cycle takes the worst class of its faults and of what verification\n"
"    found.  A fault whose call succeeded is silent unless verification found\n"
"    damage or loss in that cycle (then it takes that class).  A bit flip on a\n"
"    read is silent by design unless the workload reads those bytes back.  A\n"
"    failed call without a fault of its own counts as reported when a fault\n"
"    hit an earlier call of the same cycle (the library may refuse to go on\n"
"    after a failed write), else as unexpected.  When the image no longer\n"
"    opens, the run stops there.\n"
"\n"
"FAULT RULES\n"
"    RULES is a file in the rule language of vhdxfs -o faults and vhdx\n"
"    --faults (one rule a line; see libvhdx(3), 'Fault injection'), e.g.\n"
"\n"
"        op=write prob=0.02 seed=7 err=EIO     # 2%% of the writes fail\n"
"        op=flush every=17 err=EIO             # every 17th flush fails\n"
"        op=open nth=5 err=EIO                 # the 5th mount fails\n"
"        op=close every=50 err=EIO             # every 50th unmount fails\n"
"        op=lock nth=3 err=EBUSY               # another process (an antivirus\n"
"                                              # scanner) holds the disk at the\n"
"                                              # 3rd mount: 0x80070020\n"
"        op=write struct=payload flip=1        # silent corruption\n"
"\n"
"    The counters of a rule (nth=, after=, every=, once) run over the whole\n"
"    run, not per mount: op=open nth=5 fails the fifth mount.  Random rules\n"
"    (prob=) and bit flips draw a new, reproducible sequence each cycle from\n"
"    their seed (or --seed) and the cycle number.  op=open and op=close rules\n"
"    hit the mount and the unmount: a failed mount or unmount counts as the\n"
"    error of that step.  Creating the image and the verifying reopen never\n"
"    see faults.  The global 'vhdx --faults' does not apply to this command.\n"
"    Reports and messages number the rules as RULES does (rule 1 is its first\n"
"    rule), also where vhdxfs's message says 'fault rule N'.\n"
"\n"
"OPTIONS\n"
"    --image FILE      the scratch disk (created on the first cycle if missing)\n"
"    --fs none|ext4|ntfs  none (default): the raw-disk workload below; ext4 or\n"
"                      ntfs: the cycle at the volume level, through 'vhdx mount\n"
"                      --rw' and a file workload (see 'vhdx cycle mount --fs ext4\n"
"                      --help')\n"
"    --count N         number of cycles\n"
"    --faults RULES    fault rules file (default: none; the cycles are then\n"
"                      expected to be clean)\n"
"    --seed S          seed of the workload and of random rules (default 1)\n"
"    --ops N           workload operations per cycle (default 24)\n"
"    --format vhd|vhdx format of a new image (default: from the name)\n"
"    --size N          virtual size of a new image (default 64M; K/M/G)\n"
"    --block-size N    block size of a new image (default 1M)\n"
"    --json            print the report as JSON, with every cycle's detail\n"
"    -v, --verbose     print every fault and error of every cycle that was\n"
"                      not clean (default: one line per such cycle)\n"
"    -q, --quiet       print only the summary\n"
"    --vhdxfs PATH     the vhdxfs program (default: $VHDXFS, beside this\n"
"                      program, ../fuse/vhdxfs of a build tree, then PATH)\n"
"    --workdir DIR     folder for the mount point, rules and logs (default:\n"
"                      a new folder in $TMPDIR, removed at the end)\n"
"    --keep-workdir    do not remove the work folder\n"
"    --timeout SEC     how long a mount or an unmount may take (default 30)\n"
"    -h, --help        this text\n"
"\n"
"OUTPUT\n"
"    On a terminal, a progress line on standard error.  Then one line per\n"
"    cycle that was not clean: its class, the failed call (operation, virtual\n"
"    offset and length), the errno with its Windows equivalent, and vhdxfs's\n"
"    message naming the operation, the layer file, the file offset and the\n"
"    structure; then the summary: cycles and faults per class, errors per\n"
"    errno (injected, surfaced to the workload) with the Windows code, and\n"
"    each rule's hit count.  Windows codes: EIO 0x8007045D ERROR_IO_DEVICE,\n"
"    ENOSPC 0x80070070 ERROR_DISK_FULL, EROFS 0x80070013 ERROR_WRITE_PROTECT,\n"
"    EACCES/EPERM 0x80070005 ERROR_ACCESS_DENIED, EBADMSG 0x80070570\n"
"    ERROR_FILE_CORRUPT, ETIMEDOUT 0x800705B4 ERROR_TIMEOUT, ENOTCONN\n"
"    0x8007048F ERROR_DEVICE_NOT_CONNECTED, ...\n"
"\n"
"EXIT STATUS\n"
"    0  every cycle was clean, delayed, reported or torn\n"
"    1  an error of the command itself (vhdxfs not found, the image cannot be\n"
"       created, interrupted)\n"
"    2  usage error, or a bad rules file (naming the file and line)\n"
"    3  a cycle was silent, unexpected, damaged or lost\n"
"\n"
"EXAMPLES\n"
"    Two hundred cycles of a VHD under a failing disk:\n"
"        vhdx cycle mount --image scratch.vhd --count 200 --faults disk.rules\n"
"\n"
"    The same as JSON, for a test harness:\n"
"        vhdx cycle mount --image scratch.vhdx --count 50 --faults disk.rules \\\n"
"            --json > report.json\n"
"\n"
"SEE ALSO\n"
"    vhdxfs(1) (-o faults, .vhdxfs/faults, .vhdxfs/events), vhdx hash,\n"
"    vhdx verify, fusermount3(1)\n");
}

static struct errno_count *errno_slot(struct cycle_run *run, int err)
{
	for (unsigned i = 0; i < run->n_errnos; i++)
		if (run->errnos[i].err == err)
			return &run->errnos[i];
	if (run->n_errnos == MAX_ERRNOS)
		return NULL;
	run->errnos[run->n_errnos].err = err;
	return &run->errnos[run->n_errnos++];
}

/* "EIO (0x8007045D ERROR_IO_DEVICE)" */
static const char *err_text(int err, char *buf, size_t n)
{
	char nb[24];
	uint32_t w = cycle_win_code(err);

	if (w)
		snprintf(buf, n, "%s (0x%08X %s)", cycle_errno_name(err, nb, sizeof nb), (unsigned)w, cycle_win_name(err));
	else
		snprintf(buf, n, "%s (no Windows equivalent)", cycle_errno_name(err, nb, sizeof nb));
	return buf;
}

/* The errno of the first failing fault attributed to STEP (EIO when none names one). */
static int step_errno(const struct cycle_result *res, int step)
{
	for (size_t i = 0; i < res->n_events; i++)
		if (res->events[i].step == step && res->events[i].err)
			return res->events[i].err;
	return EIO;
}

static void range_text(uint64_t voff, uint64_t len, char *buf, size_t n)
{
	if (voff == CYCLE_NONE)
		buf[0] = '\0';
	else
		snprintf(buf, n, " %" PRIu64 " bytes at 0x%" PRIx64, len, voff);
}

/* ------------------------------------------------------------ text output */

/* " rule N (TEXT) OP FILE off=... struct=... action=... errno=... during STEP" */
static void print_fault(const struct cycle_rules *rules, const struct cycle_result *res, const struct cycle_event *ev)
{
	const char *step = ev->step >= 0 && (size_t)ev->step < res->n_steps ? res->steps[ev->step].what : "?";

	printf(" rule %u (%s) %s %s", ev->rule, cycle_rules_text(rules, ev->rule), ev->op, ev->file);
	if (ev->foff != CYCLE_NONE)
		printf(" off=0x%" PRIx64 " len=%" PRIu64, ev->foff, ev->len);
	if (ev->voff != CYCLE_NONE)
		printf(" voff=0x%" PRIx64, ev->voff);
	printf(" struct=%s action=%s%s%s", ev->structure[0] ? ev->structure : "-", ev->action,
	       ev->detail[0] ? " " : "", ev->detail);
	if (ev->err) {
		char nb[24];
		printf(" errno=%s", cycle_errno_name(ev->err, nb, sizeof nb));
	}
	printf(" during %s", step);
}

static void print_cycle_text(const struct cycle_run *run, const struct cycle_rules *rules,
			     const struct cycle_result *res)
{
	char eb[96], rb[64];
	const struct cycle_step *first = NULL;

	if (run->quiet || res->cls == CC_CLEAN)
		return;
	for (size_t s = 0; s < res->n_steps && !first; s++)
		if (res->steps[s].err)
			first = &res->steps[s];
	printf("cycle %u: %s", res->cycle, cycle_class_name(res->cls));
	if (first) {
		range_text(first->voff, first->len, rb, sizeof rb);
		printf(": %s%s failed: %s", first->what, rb, err_text(first->err, eb, sizeof eb));
		if (first->msg && *first->msg)
			printf(": %s", first->msg);
	}
	if (res->reopen_failed)
		printf("%sreopen failed: %s", first ? "; " : ": ", res->reopen_msg ? res->reopen_msg : "");
	if (res->ck.lost)
		printf("; %" PRIu64 " acknowledged sectors lost, first at 0x%" PRIx64 " (written in cycle %u)",
		       res->ck.lost, res->ck.lost_r[0].voff, res->ck.lost_r[0].ack_cycle);
	if (res->ck.damaged)
		printf("; %" PRIu64 " sectors of failed writes hold neither old nor attempted bytes (torn), first at 0x%" PRIx64,
		       res->ck.damaged, res->ck.damaged_r[0].voff);
	if (res->rb.damaged)
		printf("; %" PRIu64 " sectors read back wrong while mounted, first at 0x%" PRIx64, res->rb.damaged,
		       res->rb.damaged_r[0].voff);
	if (res->rb.torn)
		printf("; %" PRIu64 " sectors of failed writes read back torn while mounted", res->rb.torn);
	if (!first && !res->reopen_failed && !res->ck.lost && !res->ck.damaged && !res->rb.damaged && !res->rb.torn)
		printf(": %zu fault%s, no call failed", res->n_events, res->n_events == 1 ? "" : "s");
	/* a silent cycle: the fault that no call reported, not the first failed call (issue #15 item 9) */
	for (size_t i = 0; res->cls == CC_SILENT && i < res->n_events; i++)
		if (res->events[i].cls == CC_SILENT) {
			printf("; silent fault:");
			print_fault(rules, res, &res->events[i]);
			break;
		}
	printf("\n");
	if (!run->verbose)
		return;
	for (size_t s = 0; s < res->n_steps; s++) {
		const struct cycle_step *st = &res->steps[s];

		if (!st->err)
			continue;
		range_text(st->voff, st->len, rb, sizeof rb);
		printf("    error: %s%s: %s%s%s\n", st->what, rb, err_text(st->err, eb, sizeof eb), st->msg ? ": " : "",
		       st->msg ? st->msg : "");
	}
	for (size_t i = 0; i < res->n_events; i++) {
		printf("    fault:");
		print_fault(rules, res, &res->events[i]);
		printf(": %s\n", cycle_class_name(res->events[i].cls));
	}
}

static void print_summary_text(const struct cycle_run *run, const struct cycle_rules *rules, double secs)
{
	char nb[24];

	cycle_totals_text(&run->tot, "cycles", run->count, secs);
	if (run->n_errnos) {
		printf("  %-11s %8s %8s  %s\n", "errno", "injected", "surfaced", "Windows");
		for (unsigned i = 0; i < run->n_errnos; i++) {
			const struct errno_count *e = &run->errnos[i];
			uint32_t w = cycle_win_code(e->err);

			printf("  %-11s %8" PRIu64 " %8" PRIu64 "  ", cycle_errno_name(e->err, nb, sizeof nb), e->injected,
			       e->surfaced);
			if (w)
				printf("0x%08X %s\n", (unsigned)w, cycle_win_name(e->err));
			else
				printf("-\n");
		}
	}
	if (cycle_rules_count(rules)) {
		printf("  %-55s %8s %8s\n", "rules", "hits", "matched");
		for (unsigned n = 1; n <= cycle_rules_count(rules); n++)
			printf("  %3u  %-50s %8" PRIu64 " %8" PRIu64 "\n", n, cycle_rules_text(rules, n),
			       cycle_rules_hits(rules, n), cycle_rules_matched(rules, n));
	}
	if (cycle_totals_bad(&run->tot))
		printf("Verdict: PROBLEMS: %" PRIu64 " silent, %" PRIu64 " unexpected, %" PRIu64 " damaged, %" PRIu64
		       " lost cycles\n", run->tot.by_class[CC_SILENT], run->tot.by_class[CC_UNEXPECTED],
		       run->tot.by_class[CC_DAMAGED], run->tot.by_class[CC_LOST]);
	else
		printf("Verdict: ok: every injected fault that changed an outcome was reported; no acknowledged data lost\n");
}

/* ------------------------------------------------------------ JSON output */

/* The JSON list NAME of the sector ranges M[0..N); ACKED: with when each was acknowledged (lost data). */
static void json_mismatches(struct report *r, const char *name, const struct cycle_mismatch *m, unsigned n, bool acked)
{
	report_begin_list(r, name);
	for (unsigned i = 0; i < n; i++) {
		report_begin(r, NULL);
		report_u64(r, "voff", m[i].voff);
		report_u64(r, "len", m[i].len);
		if (acked) {
			report_u64(r, "acknowledged_cycle", m[i].ack_cycle);
			report_u64(r, "acknowledged_op", m[i].ack_op);
		}
		report_end(r);
	}
	report_end_list(r);
}

static void json_cycle(struct report *r, const struct cycle_result *res)
{
	char nb[24], wb[16];

	report_begin(r, NULL);
	report_u64(r, "cycle", res->cycle);
	report_str(r, "class", cycle_class_name(res->cls));
	report_bool(r, "created", res->created);
	report_bool(r, "mounted", res->mounted);
	report_u64(r, "writes", res->writes);
	report_u64(r, "write_bytes", res->write_bytes);
	report_u64(r, "reads", res->reads);
	report_u64(r, "read_bytes", res->read_bytes);
	report_u64(r, "fsyncs", res->fsyncs);
	report_f64(r, "seconds", res->seconds, 3);
	report_begin_list(r, "errors");
	for (size_t s = 0; s < res->n_steps; s++) {
		const struct cycle_step *st = &res->steps[s];

		if (!st->err)
			continue;
		report_begin(r, NULL);
		report_str(r, "step", st->what);
		if (st->voff != CYCLE_NONE) {
			report_u64(r, "voff", st->voff);
			report_u64(r, "len", st->len);
		}
		report_str(r, "errno", cycle_errno_name(st->err, nb, sizeof nb));
		snprintf(wb, sizeof wb, "0x%08X", (unsigned)cycle_win_code(st->err));
		report_str(r, "windows", cycle_win_code(st->err) ? wb : "");
		report_str(r, "windows_name", cycle_win_name(st->err));
		report_str(r, "message", st->msg ? st->msg : "");
		report_end(r);
	}
	report_end_list(r);
	cycle_json_faults(r, res, true);
	report_begin(r, "verify");
	report_bool(r, "reopened", !res->reopen_failed);
	if (res->reopen_msg)
		report_str(r, "message", res->reopen_msg);
	report_u64(r, "sectors", res->ck.sectors);
	report_u64(r, "uncertain_sectors", res->ck.uncertain);
	report_u64(r, "lost_sectors", res->ck.lost);
	report_u64(r, "torn_sectors", res->ck.damaged);
	report_u64(r, "readback_bad_sectors", res->rb.damaged);
	report_u64(r, "readback_torn_sectors", res->rb.torn);
	json_mismatches(r, "lost", res->ck.lost_r, res->ck.n_lost_r, true);
	json_mismatches(r, "torn", res->ck.damaged_r, res->ck.n_damaged_r, false);
	json_mismatches(r, "readback_bad", res->rb.damaged_r, res->rb.n_damaged_r, false);
	report_end(r);
	report_end(r);
}

static void json_summary(struct report *r, const struct cycle_run *run, const struct cycle_rules *rules, double secs)
{
	char nb[24], wb[16];

	report_begin(r, "summary");
	cycle_totals_json(r, &run->tot, "cycles", secs);
	report_begin_list(r, "errnos");
	for (unsigned i = 0; i < run->n_errnos; i++) {
		const struct errno_count *e = &run->errnos[i];

		report_begin(r, NULL);
		report_str(r, "errno", cycle_errno_name(e->err, nb, sizeof nb));
		report_u64(r, "injected", e->injected);
		report_u64(r, "surfaced", e->surfaced);
		snprintf(wb, sizeof wb, "0x%08X", (unsigned)cycle_win_code(e->err));
		report_str(r, "windows", cycle_win_code(e->err) ? wb : "");
		report_str(r, "windows_name", cycle_win_name(e->err));
		report_end(r);
	}
	report_end_list(r);
	report_begin_list(r, "rules");
	for (unsigned n = 1; n <= cycle_rules_count(rules); n++) {
		report_begin(r, NULL);
		report_u64(r, "rule", n);
		report_str(r, "text", cycle_rules_text(rules, n));
		report_u64(r, "hits", cycle_rules_hits(rules, n));
		report_u64(r, "matched", cycle_rules_matched(rules, n));
		report_end(r);
	}
	report_end_list(r);
	report_str(r, "verdict", cycle_totals_bad(&run->tot) ? "problems" : "ok");
	report_end(r);
}

/* ------------------------------------------------------------ one cycle */

static int make_image(const struct cycle_run *run)
{
	struct vhdx_create_options co;

	vhdx_create_options_init(&co);
	co.format = run->format;
	co.type = VHDX_TYPE_DYNAMIC;
	co.virtual_size = run->size;
	co.block_size = (uint32_t)run->block_size;
	return vhdx_create(run->image, &co);
}

/* Adds RES to the run's totals. */
static void tally(struct cycle_run *run, const struct cycle_result *res)
{
	struct errno_count *e;

	cycle_totals_add(&run->tot, res);
	for (size_t i = 0; i < res->n_events; i++)
		if (strcmp(res->events[i].action, "after-crash") != 0 && res->events[i].err &&
		    (e = errno_slot(run, res->events[i].err)))
			e->injected++; /* an injected fault's errno (a call failed after a crash is none) */
	for (size_t s = 0; s < res->n_steps; s++)
		if (res->steps[s].err && (e = errno_slot(run, res->steps[s].err)))
			e->surfaced++;
}

/*
 * Runs cycle RES->cycle: mount, workload, unmount, reopen and verify.
 * Returns 0, 1 when the run cannot go on (the image no longer opens), or
 * -1 on an error of the command itself (message printed).
 */
static int run_cycle(struct cycle_run *run, struct cycle_mount *cm, struct cycle_rules *rules,
		     struct cycle_model *m, struct cycle_result *res)
{
	char rules_path[PATH_MAX], log_path[PATH_MAX];
	char *msg = NULL, *text, *listing = NULL, *log;
	struct vhdx_image *img = NULL;
	uint64_t seen = 0;
	FILE *f;
	int step, ret;

	snprintf(rules_path, sizeof rules_path, "%s/rules", cm->workdir);
	snprintf(log_path, sizeof log_path, "%s/fault.log", cm->workdir);
	f = fopen(rules_path, "w");
	if (!f) {
		tool_error("cycle", "%s: %s", rules_path, strerror(errno));
		return -1;
	}
	ret = cycle_rules_emit(rules, res->cycle, f);
	if (fclose(f) != 0 || ret < 0) {
		tool_error("cycle", "%s: cannot write the rules", rules_path);
		return -1;
	}
	unlink(log_path);

	/* mount */
	if (cycle_mount_start(cm, run->image, rules_path, log_path, &msg) < 0) {
		step = cycle_result_step(res, "mount", CYCLE_NONE, CYCLE_NONE, EIO, msg);
		log = cycle_read_file(log_path);
		if (log)
			cycle_result_events(res, rules, log, &seen, step);
		if (step >= 0)
			res->steps[step].err = step_errno(res, step);
		cycle_rules_account(rules, log);
		free(log);
		free(msg);
		msg = NULL;
	} else {
		struct cycle_workload_opts wo = { .seed = run->seed, .cycle = res->cycle, .ops = run->ops,
						  .size = cycle_model_size(m) };

		res->mounted = true;
		step = cycle_result_step(res, "mount", CYCLE_NONE, CYCLE_NONE, 0, NULL);
		text = cycle_mount_read_ctl(cm, "events");
		if (text)
			cycle_result_events(res, rules, text, &seen, step);
		free(text);
		cycle_workload_run(&wo, cm, m, rules, res, &seen);
		listing = cycle_mount_read_ctl(cm, "faults");
		ret = cycle_mount_stop(cm, &msg);
		step = cycle_result_step(res, "unmount", CYCLE_NONE, CYCLE_NONE, ret < 0 ? -ret : 0, msg);
		free(msg);
		msg = NULL;
		/* the log, written after vhdxfs closed the image, holds the faults of the unmount */
		log = cycle_read_file(log_path);
		if (log)
			cycle_result_events(res, rules, log, &seen, step);
		if (ret == -EIO && step >= 0)
			res->steps[step].err = step_errno(res, step);
		cycle_rules_account(rules, log ? log : listing);
		free(log);
		free(listing);
	}

	/* reopen, read-only, no faults: a dirty log is replayed in memory */
	ret = tool_open_flags(run->image, 0, NULL, &img);
	if (ret == 0) {
		struct vhdx_info info = { .struct_size = sizeof info };

		ret = vhdx_get_info(img, &info);
		if (ret == 0 && info.virtual_size != cycle_model_size(m)) {
			ret = -EBADMSG;
			if (asprintf(&res->reopen_msg, "%s: the virtual size changed from %" PRIu64 " to %" PRIu64,
				     run->image, cycle_model_size(m), info.virtual_size) < 0)
				res->reopen_msg = NULL;
		}
		if (ret == 0)
			ret = cycle_model_verify(m, img, false, &res->ck);
	}
	if (ret < 0) {
		res->reopen_failed = true;
		if (!res->reopen_msg)
			res->reopen_msg = strdup(*vhdx_errmsg() ? vhdx_errmsg() : strerror(-ret));
	}
	vhdx_close(img);
	for (size_t s = 0; s < res->n_steps; s++)
		cycle_rules_renumber(rules, &res->steps[s].msg);
	cycle_classify(res);
	return res->reopen_failed ? 1 : 0;
}

/* ------------------------------------------------------------ the command */

/* The options of `vhdx cycle mount`, in getopt's order (cycle_setup.c parses them). */
static const struct cycle_opt mount_opts[] = {
	{ .name = "image", .kind = CYCLE_OPT_STR, .field = offsetof(struct cycle_run, image) },
	{ .name = "fs", .kind = CYCLE_OPT_SKIP }, /* only "none" comes here */
	{ .name = "count", .kind = CYCLE_OPT_UINT, .field = offsetof(struct cycle_run, count), .min = 1, .max = 10000000 },
	{ .name = "faults", .kind = CYCLE_OPT_STR, .field = offsetof(struct cycle_run, faults) },
	{ .name = "seed", .kind = CYCLE_OPT_U64, .field = offsetof(struct cycle_run, seed), .max = UINT64_MAX },
	{ .name = "ops", .kind = CYCLE_OPT_UINT, .field = offsetof(struct cycle_run, ops), .min = 1, .max = 100000 },
	{ .name = "format", .kind = CYCLE_OPT_FORMAT, .field = offsetof(struct cycle_run, format) },
	{ .name = "size", .kind = CYCLE_OPT_SIZE, .field = offsetof(struct cycle_run, size), .min = 1,
	  .max = UINT64_MAX, .multiple = CYCLE_SECTOR,
	  .bad = "--size takes a multiple of 512 bytes (K/M/G suffixes), got " },
	{ .name = "block-size", .kind = CYCLE_OPT_SIZE, .field = offsetof(struct cycle_run, block_size), .min = 1,
	  .max = UINT32_MAX, .multiple = 1, .bad = "--block-size: bad size " },
	{ .name = "vhdxfs", .kind = CYCLE_OPT_STR, .field = offsetof(struct cycle_run, vhdxfs_opt) },
	{ .name = "workdir", .kind = CYCLE_OPT_STR, .field = offsetof(struct cycle_run, workdir_opt) },
	{ .name = "keep-workdir", .kind = CYCLE_OPT_FLAG, .field = offsetof(struct cycle_run, keep) },
	{ .name = "timeout", .kind = CYCLE_OPT_UINT, .field = offsetof(struct cycle_run, timeout_ms), .min = 1,
	  .max = 3600, .scale = 1000 },
	CYCLE_OPTS_REPORT(struct cycle_run),
};

static const struct cycle_cli mount_cli = {
	.name = "mount", .image_opt = "image", .opts = mount_opts, .help = help, .usage = usage,
};

/* Removes the work folder's files and folder (only what this command made). */
static void remove_workdir(const char *dir, const char *mnt)
{
	static const char *const files[] = { "rules", "fault.log", "vhdxfs.out", "fusermount.out" };
	char p[PATH_MAX + 32];

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(mnt);
	rmdir(dir);
}

/*
 * The work folder (--workdir, else a new one in $TMPDIR) into *WORKDIR and
 * its mount point into *MNT: the mount point, this cycle's rules, the fault
 * log, the children's output.  EXIT_OK or EXIT_ERR after the message; what
 * was made is in *WORKDIR and *MNT either way.
 */
static int make_workdir(const char *workdir_opt, char **workdir, char **mnt)
{
	if (workdir_opt) {
		if (mkdir(workdir_opt, 0700) < 0 && errno != EEXIST) {
			tool_error("cycle", "--workdir %s: %s", workdir_opt, strerror(errno));
			return EXIT_ERR;
		}
		*workdir = realpath(workdir_opt, NULL);
	} else {
		const char *tmp = getenv("TMPDIR");
		char *tmpl = NULL;

		/* absolute: the mount point is looked up in /proc/self/mountinfo */
		if (asprintf(&tmpl, "%s/vhdx-cycle.XXXXXX", tmp && *tmp ? tmp : "/tmp") >= 0 && mkdtemp(tmpl))
			*workdir = realpath(tmpl, NULL);
		free(tmpl);
	}
	if (!*workdir || asprintf(mnt, "%s/mnt", *workdir) < 0 || (mkdir(*mnt, 0700) < 0 && errno != EEXIST)) {
		tool_error("cycle", "cannot make the work folder%s%s: %s", *workdir ? " " : "", *workdir ? *workdir : "",
			   strerror(errno));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/* The report's head: the run's parameters (JSON, opening the list of cycles) or one line. */
static void print_start(const struct cycle_run *run, const struct cycle_mount *cm, struct report *rep)
{
	if (run->json) {
		report_init(rep, stdout, true);
		report_begin(rep, NULL);
		report_str(rep, "image", run->image);
		report_str(rep, "format", run->format == VHDX_FORMAT_VHD ? "vhd" : "vhdx");
		report_u64(rep, "virtual_size", run->size);
		report_u64(rep, "count", run->count);
		report_u64(rep, "seed", run->seed);
		report_u64(rep, "ops_per_cycle", run->ops);
		report_str(rep, "faults", run->faults ? run->faults : "");
		report_str(rep, "vhdxfs", cm->vhdxfs);
		report_begin_list(rep, "cycles");
	} else if (!run->quiet) {
		printf("vhdx cycle mount: %s (%s, %" PRIu64 " bytes), %u cycles, seed %" PRIu64 ", %u rules%s%s\n",
		       run->image, run->format == VHDX_FORMAT_VHD ? "vhd" : "vhdx", run->size, run->count, run->seed,
		       cycle_rules_count(run->rules), run->faults ? " from " : "", run->faults ? run->faults : "");
		fflush(stdout);
	}
}

/* Reports cycle RES as it ends: the progress line on a terminal, then its line (or JSON object). */
static void report_cycle(const struct cycle_run *run, struct report *rep, const struct cycle_result *res)
{
	if (run->progress) {
		fprintf(stderr, "\r\033[K[cycle %u/%u] clean %" PRIu64 " reported %" PRIu64 " silent %" PRIu64
			" damaged %" PRIu64 " lost %" PRIu64,
			res->cycle, run->count, run->tot.by_class[CC_CLEAN], run->tot.by_class[CC_REPORTED],
			run->tot.by_class[CC_SILENT], run->tot.by_class[CC_DAMAGED], run->tot.by_class[CC_LOST]);
		fflush(stderr);
	}
	if (run->json) {
		json_cycle(rep, res);
	} else {
		if (run->progress && res->cls != CC_CLEAN && !run->quiet)
			fprintf(stderr, "\r\033[K");
		print_cycle_text(run, run->rules, res);
		fflush(stdout);
	}
}

/*
 * The cycles, one after the other (the image made on the first when it did
 * not EXIST).  The exit status so far; *EARLY when the run stopped before
 * --count: an error of the command, or the image no longer opens.
 */
static int run_cycles(struct cycle_run *run, struct cycle_mount *cm, bool exists, struct report *rep, bool *early)
{
	for (unsigned c = 1; c <= run->count && !stop_requested; c++) {
		struct cycle_result res = { .cycle = c };
		double tc = tool_now();
		int ret;

		if (!exists) {
			ret = make_image(run);
			if (ret < 0) {
				*early = true;
				return tool_lib_error("cycle", ret);
			}
			run->m = cycle_model_new(run->size);
			if (!run->m) {
				tool_error("cycle", "out of memory for the model of %" PRIu64 " bytes", run->size);
				*early = true;
				return EXIT_ERR;
			}
			exists = true;
			res.created = true;
		}
		ret = run_cycle(run, cm, run->rules, run->m, &res);
		res.seconds = tool_now() - tc;
		if (ret < 0) {
			cycle_result_free(&res);
			*early = true;
			return EXIT_ERR;
		}
		tally(run, &res);
		report_cycle(run, rep, &res);
		cycle_result_free(&res);
		if (ret > 0) {
			/* the image no longer opens: every later mount would fail the same way */
			if (!run->json)
				printf("stopping: the image no longer opens after cycle %u\n", c);
			*early = true;
			break;
		}
	}
	return EXIT_OK;
}

/* The report's end: the summary (closing the JSON document); RC with EXIT_PROBLEMS for a bad cycle. */
static int finish_report(struct cycle_run *run, struct report *rep, bool early, double t0, int rc)
{
	if (run->progress)
		fprintf(stderr, "\r\033[K");
	if (stop_requested) {
		tool_error("cycle", "interrupted after %u cycles", run->tot.run);
		rc = EXIT_ERR;
	}
	if (run->json) {
		report_end_list(rep);
		report_bool(rep, "stopped_early", early || stop_requested);
		json_summary(rep, run, run->rules, tool_now() - t0);
		report_end(rep);
		report_finish(rep);
	} else {
		print_summary_text(run, run->rules, tool_now() - t0);
	}
	if (cycle_totals_bad(&run->tot) && rc == EXIT_OK)
		rc = EXIT_PROBLEMS;
	return rc;
}

/* `vhdx cycle mount` without --fs (ARGV[0] is "mount"): set up, run the cycles, report. */
static int cycle_mount_main(int argc, char **argv)
{
	struct cycle_run run = { .seed = 1, .ops = 24, .size = 64u << 20, .block_size = 1u << 20,
				 .timeout_ms = 30000 };
	struct cycle_mount cm = { 0 };
	char *workdir = NULL, *mnt = NULL;
	struct sigaction sa, old_int, old_term;
	struct report rep;
	bool exists, early = false;
	double t0;
	int rc;

	if (cycle_cli_parse(&mount_cli, &run, argc, argv, &rc) < 0)
		return rc;
	if (cycle_cli_check(&mount_cli, run.image, run.count, argc, argv) < 0)
		return EXIT_USAGE;
	if (!run.format) /* not given: from the name */
		run.format = cycle_format_of_name(run.image);
	rc = cycle_setup_rules(run.faults, run.seed, &run.rules);
	if (rc != EXIT_OK)
		return rc;
	cm.vhdxfs = cycle_find_vhdxfs(run.vhdxfs_opt);
	if (!cm.vhdxfs) {
		tool_error("cycle", "cannot find vhdxfs%s%s (looked at $VHDXFS, beside this program, ../fuse/vhdxfs and in PATH); use --vhdxfs PATH",
			   run.vhdxfs_opt ? " at " : "", run.vhdxfs_opt ? run.vhdxfs_opt : "");
		cycle_rules_free(run.rules);
		return EXIT_ERR;
	}
	cm.timeout_ms = run.timeout_ms;
	rc = make_workdir(run.workdir_opt, &workdir, &mnt);
	if (rc != EXIT_OK)
		goto out;
	cm.workdir = workdir;
	cm.mnt = mnt;

	/* an existing image: its contents now are what the first cycle expects */
	exists = vhdx_path_is_uri(run.image) || access(run.image, F_OK) == 0; /* an NBD export exists */
	if (exists) {
		struct vhdx_info info = { .struct_size = sizeof info };

		rc = cycle_setup_model(&mount_cli, run.image, false, &info, &run.m);
		if (rc != EXIT_OK)
			goto out;
		run.format = info.format;
		run.size = info.virtual_size;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	run.progress = !run.json && isatty(STDERR_FILENO);
	print_start(&run, &cm, &rep);
	t0 = tool_now();
	rc = run_cycles(&run, &cm, exists, &rep, &early);
	rc = finish_report(&run, &rep, early, t0, rc);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out:
	if (cm.pid || cm.mounted) {
		char *msg = NULL;
		cycle_mount_stop(&cm, &msg);
		free(msg);
	}
	if (workdir && !run.keep)
		remove_workdir(workdir, mnt);
	else if (workdir && !run.json)
		fprintf(stderr, "vhdx cycle: kept the work folder %s\n", workdir);
	free(workdir);
	free(mnt);
	free((char *)cm.vhdxfs);
	cycle_model_free(run.m);
	cycle_rules_free(run.rules);
	return rc;
}

int cmd_cycle(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		help();
		return EXIT_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "checkpoint"))
		return cycle_checkpoint_main(argc - 1, argv + 1); /* cycle_checkpoint.c */
	if (argc < 2 || strcmp(argv[1], "mount") != 0) {
		if (argc >= 2)
			tool_error("cycle", "unknown cycle '%s' (there are 'mount' and 'checkpoint')", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	/* --fs ext4|ntfs: the cycle at the volume level (cycle_fs.c); --fs none is this one */
	for (int i = 1; i < argc; i++) {
		const char *fs = !strcmp(argv[i], "--fs") && i + 1 < argc ? argv[i + 1]
				 : !strncmp(argv[i], "--fs=", 5) ? argv[i] + 5 : NULL;

		if (fs && strcmp(fs, "none") != 0)
			return cycle_fs_main(argc, argv);
	}
	return cycle_mount_main(argc, argv);
}
