/*
 * check_internal.h - `vhdx check`: structure checks of one VHDX or VHD file
 * (FORMAT.md 1.10 and the VHD equivalents) and their repairs.
 *
 * Layers: maint/check.c (L4 driver: opens the file, picks the format
 * from the format table, counts and forwards problems, runs the one
 * scan-repair-rescan loop, checks the parent chain), format/vhdx_check.c
 * and format/vhd_check.c (per-format scans and repairs, built on the
 * codecs; what they share with the driver is format/check.h).  The public
 * door is vhdx_check() (api_check.c).
 */
#ifndef VHDX_CHECK_INTERNAL_H
#define VHDX_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "libvhdx.h"
#include "format/check.h"

/* the severities, problems and events are public (libvhdx.h: vhdx_check()) */

struct vhdx_check_opts {
	bool repair;                     /* fix what can be fixed (opens the file read-write) */
	struct vhdx_faults *faults;      /* fault engine wrapped around the file io, or NULL */
	bool check_chain;                /* also open the parent chain of a differencing disk */
	const struct vhdx_open_options *chain_opts; /* options for that open (may be NULL) */
	void *ctx;
	/* problems found by the first pass (AFTER false) and, with repair, by the pass after it (AFTER true) */
	void (*problem)(void *ctx, bool after, const struct vhdx_check_problem *p);
	void (*repaired)(void *ctx, const struct vhdx_check_event *e);
	void (*lost)(void *ctx, const struct vhdx_check_event *e);
};

struct vhdx_check_result {
	const char *format;        /* "vhdx" or "vhd" */
	unsigned errors, warnings; /* first pass */
	unsigned repairs;          /* repair actions done */
	unsigned errors_after, warnings_after; /* after the repair (repair only) */
};

/*
 * Checks the file PATH.  Every problem goes to o->problem.  With o->repair,
 * repairs what it can (each step crash-safe, see the format files) and
 * checks again.  0 when the checks could run (whatever they found), -errno
 * when the file could not be checked at all (not a VHD/VHDX file, I/O
 * error, a repair step failed).
 */
int vhdx_check_path(const char *path, const struct vhdx_check_opts *o, struct vhdx_check_result *res);

#endif
