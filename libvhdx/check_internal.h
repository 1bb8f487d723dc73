/*
 * check_internal.h - `vhdx check`: structure checks of one VHDX or VHD file
 * (FORMAT.md 1.10 and the VHD equivalents) and their repairs.
 *
 * Layers: check.c (L4 driver: opens the file, picks the format, counts and
 * forwards problems, checks the parent chain), format/vhdx_check.c and
 * format/vhd_check.c (per-format scans and repairs, built on the codecs).
 * The checkers read raw bytes themselves instead of going through a normal
 * open: a normal open stops at the first damage, a check must report them
 * all.  The public door is vhdx_check() (api_check.c).
 */
#ifndef VHDX_CHECK_INTERNAL_H
#define VHDX_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "io/io.h"

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

/* ---- used by the format checkers ---- */
struct vhdx_check_ctx {
	struct vhdx_io *io;
	const char *path;
	uint64_t file_size;
	const struct vhdx_check_opts *o;
	struct vhdx_check_result *res;
	bool after;   /* the pass after a repair */
	bool quiet;   /* an internal re-scan: problems are not reported */
	unsigned n_errors, n_warnings; /* this pass */
	/* chain facts for check.c */
	bool has_parent;
};

/** Reports a problem of this pass (nothing when c->quiet). */
void vhdx_check_report(struct vhdx_check_ctx *c, enum vhdx_check_severity sev, const char *structure, uint64_t foff,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/** Reports a repair action done. */
void vhdx_check_repaired(struct vhdx_check_ctx *c, const char *structure, uint64_t foff, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/** Reports virtual bytes [VOFF, VOFF+LEN) whose data a repair gave up. */
void vhdx_check_lost(struct vhdx_check_ctx *c, uint64_t voff, uint64_t len, const char *structure, uint64_t foff,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/**
 * The per-format checkers: scan C->io (size C->file_size), report every
 * problem, and with c->o->repair repair and scan once more (c->after).
 * 0, or -errno when the file cannot be checked or a repair step failed.
 */
int vhdx_check_vhdx(struct vhdx_check_ctx *c);
int vhdx_check_vhd(struct vhdx_check_ctx *c);

#endif
