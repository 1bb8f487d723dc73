/*
 * cycle_report.c - the verdicts of `vhdx cycle mount`: the classes, the
 * classification of each injected fault and of each cycle, and the table of
 * errno values with the code Windows shows for the same failure (what a
 * backup agent on Windows would have logged: EIO is 0x8007045D,
 * ERROR_IO_DEVICE, the error of the MARS scratch-VHD incident).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"

static const char *const class_names[CC__COUNT] = {
	"clean", "delayed", "reported", "torn", "unexpected", "silent", "damaged", "lost",
};

static const char *const class_help[CC__COUNT] = {
	"no fault injected, no error, the image verified",
	"only delay faults were injected: slower, nothing failed",
	"every fault that changed an outcome surfaced as an error of the call it hit; the image verified",
	"reported, and a sector of a failed write or fsync holds neither its old nor any attempted bytes (a write cut inside a sector, short=); allowed, the workload was told",
	"a call failed with no fault injected into it or before it in the cycle",
	"a fault changed an outcome (error, short/torn transfer, bit flip) but no call failed and verification found nothing",
	"damage found: the image did not reopen, or a read returned wrong bytes without an error",
	"data lost: an acknowledged write (the write and the fsync after it succeeded) is missing or wrong after the reopen",
};

const char *cycle_class_name(enum cycle_class c)
{
	return (unsigned)c < CC__COUNT ? class_names[c] : "?";
}

void cycle_json_faults(struct report *r, const struct cycle_result *res, bool detail)
{
	char nb[24];

	report_begin_list(r, "faults");
	for (size_t i = 0; i < res->n_events; i++) {
		const struct cycle_event *ev = &res->events[i];

		report_begin(r, NULL);
		if (detail) {
			report_u64(r, "seq", ev->seq);
			report_f64(r, "t", strtod(ev->t, NULL), 6);
		}
		report_u64(r, "rule", ev->rule);
		report_str(r, "op", ev->op);
		report_str(r, "file", ev->file);
		if (detail) {
			if (ev->foff != CYCLE_NONE)
				report_u64(r, "offset", ev->foff);
			report_u64(r, "length", ev->len);
			if (ev->voff != CYCLE_NONE)
				report_u64(r, "voff", ev->voff);
		}
		report_str(r, "structure", ev->structure);
		report_str(r, "action", ev->action);
		if (detail)
			report_str(r, "detail", ev->detail);
		report_str(r, "errno", ev->err ? cycle_errno_name(ev->err, nb, sizeof nb) : "");
		report_str(r, "step", ev->step >= 0 && (size_t)ev->step < res->n_steps ? res->steps[ev->step].what : "");
		report_str(r, "class", cycle_class_name(ev->cls));
		report_end(r);
	}
	report_end_list(r);
}

void cycle_print_classes(int indent)
{
	for (int c = 0; c < CC__COUNT; c++)
		printf("%*s%-11s %s\n", indent, "", class_names[c], class_help[c]);
}

/*
 * errno -> what Windows reports for the same failure, as the HRESULT a
 * Win32 error becomes (0x8007xxxx, HRESULT_FROM_WIN32), as backup agents
 * log it.  Where no Win32 error means the same, the code is 0.
 */
static const struct {
	int err;
	const char *name;
	uint32_t win;
	const char *win_name;
} errnos[] = {
	{ EIO, "EIO", 0x8007045Du, "ERROR_IO_DEVICE" },
	{ ENOSPC, "ENOSPC", 0x80070070u, "ERROR_DISK_FULL" },
	{ EDQUOT, "EDQUOT", 0x80070070u, "ERROR_DISK_FULL" },
	{ EROFS, "EROFS", 0x80070013u, "ERROR_WRITE_PROTECT" },
	{ EACCES, "EACCES", 0x80070005u, "ERROR_ACCESS_DENIED" },
	{ EPERM, "EPERM", 0x80070005u, "ERROR_ACCESS_DENIED" },
	{ EBADMSG, "EBADMSG", 0x80070570u, "ERROR_FILE_CORRUPT" },
	{ ENOENT, "ENOENT", 0x80070002u, "ERROR_FILE_NOT_FOUND" },
	{ ETIMEDOUT, "ETIMEDOUT", 0x800705B4u, "ERROR_TIMEOUT" },
	{ ENOMEM, "ENOMEM", 0x8007000Eu, "ERROR_OUTOFMEMORY" },
	{ EBUSY, "EBUSY", 0x80070020u, "ERROR_SHARING_VIOLATION" }, /* in use by another process (locks, issue #14) */
	{ ENOTSUP, "ENOTSUP", 0x80070032u, "ERROR_NOT_SUPPORTED" },
	{ EINVAL, "EINVAL", 0x80070057u, "ERROR_INVALID_PARAMETER" },
	{ ENXIO, "ENXIO", 0x80070015u, "ERROR_NOT_READY" },
	{ ENODEV, "ENODEV", 0x80070015u, "ERROR_NOT_READY" },
	{ ENOMEDIUM, "ENOMEDIUM", 0x80070015u, "ERROR_NOT_READY" },
	{ ENOTCONN, "ENOTCONN", 0x8007048Fu, "ERROR_DEVICE_NOT_CONNECTED" },
	{ EFBIG, "EFBIG", 0x800700DFu, "ERROR_FILE_TOO_LARGE" },
	{ EEXIST, "EEXIST", 0x80070050u, "ERROR_FILE_EXISTS" },
	{ ELOOP, "ELOOP", 0, "" },
	{ EAGAIN, "EAGAIN", 0, "" },
	{ EINTR, "EINTR", 0, "" },
	{ ENODATA, "ENODATA", 0, "" },
	{ EREMOTEIO, "EREMOTEIO", 0x8007045Du, "ERROR_IO_DEVICE" },
	{ ECANCELED, "ECANCELED", 0x800703E3u, "ERROR_OPERATION_ABORTED" },
	{ EOVERFLOW, "EOVERFLOW", 0, "" },
	{ ESTALE, "ESTALE", 0, "" },
	{ EMEDIUMTYPE, "EMEDIUMTYPE", 0, "" },
	{ ENOSYS, "ENOSYS", 0x80070001u, "ERROR_INVALID_FUNCTION" },
};

const char *cycle_errno_name(int err, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (errnos[i].err == err)
			return errnos[i].name;
	snprintf(buf, n, "errno %d", err);
	return buf;
}

int cycle_errno_parse(const char *name, int *err)
{
	char *end;
	long v;

	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (!strcmp(errnos[i].name, name)) {
			*err = errnos[i].err;
			return 0;
		}
	v = strtol(name, &end, 10);
	if (end == name || *end || v <= 0 || v > 4095)
		return -1;
	*err = (int)v;
	return 0;
}

uint32_t cycle_win_code(int err)
{
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (errnos[i].err == err)
			return errnos[i].win;
	return 0;
}

const char *cycle_win_name(int err)
{
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (errnos[i].err == err)
			return errnos[i].win_name;
	return "";
}

static enum cycle_class worse(enum cycle_class a, enum cycle_class b)
{
	return a > b ? a : b;
}

/*
 * Per fault: a delay is `delayed`; a fault whose call failed is
 * `reported`; any other fault (its call succeeded: the error was swallowed,
 * or it was a bit flip) takes what verification found: `lost` or `damaged`
 * when it found something (the fault was detected that way), else `silent`.
 * Torn sectors (foreign bytes where a failed write or fsync left the
 * contents undefined) only come from failed calls, which were reported: the
 * cycle is `torn`, which is no problem, unless something worse happened.
 * Per failed call: with a fault of its own it is covered above; without
 * one it is the consequence of a fault earlier in the cycle (`reported`:
 * after a failed write the library may refuse further work) or, with none
 * before it, `unexpected`.  The cycle takes the worst of all.
 */
void cycle_classify(struct cycle_result *res)
{
	enum cycle_class found = CC_CLEAN, cls = CC_CLEAN;
	uint64_t first_fault_step = UINT64_MAX;

	if (res->ck.lost)
		found = CC_LOST;
	else if (res->reopen_failed || res->rb.damaged)
		found = CC_DAMAGED;
	else if (res->ck.damaged || res->rb.torn)
		found = CC_TORN;
	cls = found;
	for (size_t i = 0; i < res->n_events; i++) {
		struct cycle_event *ev = &res->events[i];
		const struct cycle_step *st =
			ev->step >= 0 && (size_t)ev->step < res->n_steps ? &res->steps[ev->step] : NULL;

		if (!strcmp(ev->action, "delay"))
			ev->cls = CC_DELAYED;
		else if (st && st->err)
			ev->cls = CC_REPORTED;
		else
			ev->cls = found >= CC_DAMAGED ? found : CC_SILENT;
		if (ev->cls != CC_DELAYED && ev->step >= 0 && (uint64_t)ev->step < first_fault_step)
			first_fault_step = (uint64_t)ev->step;
		cls = worse(cls, ev->cls);
	}
	for (size_t s = 0; s < res->n_steps; s++) {
		bool own = false;

		if (!res->steps[s].err)
			continue;
		for (size_t i = 0; i < res->n_events && !own; i++)
			own = res->events[i].step == (int)s && strcmp(res->events[i].action, "delay") != 0;
		if (!own)
			cls = worse(cls, first_fault_step < s ? CC_REPORTED : CC_UNEXPECTED);
	}
	res->cls = cls;
}

/* ---- the volume-level cycle (cycle_fs.c) ---- */

static const char *const fs_class_names[CFC__N] = {
	"clean", "unexpected", "reported", "absorbed", "repaired", "silent", "damaged", "lost",
};

const char *cycle_fs_class_name(enum cycle_fs_class c)
{
	return (unsigned)c < CFC__N ? fs_class_names[c] : "?";
}

unsigned cycle_log_faults(const char *log, unsigned *reread)
{
	unsigned n = 0;

	*reread = 0;
	for (const char *p = log; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		const char *eol = strchr(p, '\n'), *mark;

		if (strncmp(p, "seq=", 4) != 0)
			continue;
		n++;
		mark = strstr(p, " reread=yes");
		*reread += mark && (!eol || mark < eol);
	}
	return n;
}

/*
 * Why failed reads read again are not silent: the kernel's readahead (or a
 * file system's best-effort read) fails, the kernel drops those pages and
 * reads the ones it needs later with a read that succeeds; nobody is told
 * because nothing went wrong.  A fault that was not read again (or any
 * other kind) stays silent: it may hide damage.
 */
enum cycle_fs_class cycle_fs_classify(bool damaged, bool repaired, unsigned lost, unsigned errors, unsigned injected,
				      unsigned reread)
{
	if (damaged)
		return CFC_DAMAGED;
	if (lost)
		return CFC_LOST;
	if (repaired)
		return errors ? CFC_REPAIRED : injected ? CFC_SILENT : CFC_UNEXPECTED;
	if (injected && errors)
		return CFC_REPORTED;
	if (injected)
		return reread == injected ? CFC_ABSORBED : CFC_SILENT;
	return errors ? CFC_UNEXPECTED : CFC_CLEAN;
}
