/*
 * check.h - L2, what a format's checker (format/vhdx_check.c,
 * format/vhd_check.c) gets from and gives to the check driver
 * (maint/check.c): the context of one check, the report calls, and the
 * checker's table (how the format is recognised in a damaged file, its
 * scan, and its repair steps), reached through ops->check.
 *
 * The checkers read raw bytes themselves instead of going through a normal
 * open: a normal open stops at the first damage, a check must report them
 * all.  Not public API.
 */
#ifndef VHDX_FORMAT_CHECK_H
#define VHDX_FORMAT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

/* VHDX_CHECK_NO_OFF and enum vhdx_check_severity are public (libvhdx.h, vhdx_check()) */

struct vhdx_check_opts;
struct vhdx_check_result;

/* One check of one file; the driver owns it, the checker reads io and file_size and sets has_parent. */
struct vhdx_check_ctx {
	struct vhdx_io *io;
	const char *path;
	uint64_t file_size;
	const struct vhdx_check_opts *o;  /* the driver's (maint/check_internal.h) */
	struct vhdx_check_result *res;    /* the driver's */
	bool after;   /* the pass after a repair */
	bool quiet;   /* an internal re-scan: problems are not reported */
	unsigned n_errors, n_warnings; /* this pass */
	/* chain facts for the driver */
	bool has_parent;
};

/*
 * The report calls, implemented by the driver (maint/check.c), which
 * counts and forwards them to the caller's callbacks.
 */
/** Reports a problem of this pass (nothing when c->quiet). */
void vhdx_check_report(struct vhdx_check_ctx *c, enum vhdx_check_severity sev, const char *structure, uint64_t foff,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/** Reports a repair action done. */
void vhdx_check_repaired(struct vhdx_check_ctx *c, const char *structure, uint64_t foff, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/** Reports virtual bytes [VOFF, VOFF+LEN) whose data a repair gave up. */
void vhdx_check_lost(struct vhdx_check_ctx *c, uint64_t voff, uint64_t len, const char *structure, uint64_t foff,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * One repair step: when NEEDED says the last scan (STATE) asks for it,
 * REPAIR changes the file (crash-safe on its own) and reports what it did;
 * with RESCAN the driver then scans again quietly, so that the next step
 * sees the repaired file.  0 or -errno.
 */
struct vhdx_check_step {
	bool (*needed)(const struct vhdx_check_ctx *c, const void *state);
	int (*repair)(struct vhdx_check_ctx *c, void *state);
	bool rescan;
};

/* A format's checker: the driver runs one loop over these for every format. */
struct vhdx_checker {
	/* the file identifier at offset 0 that makes the file this format's ("vhdxfile", "conectix") */
	const char *signature;
	/*
	 * Whether a file whose identifier at 0 is no format's still is this
	 * format's, from its other copies of a signature (headers, a footer
	 * at the end), read from IO of SIZE bytes.  A read error is "no".
	 */
	bool (*recognise)(struct vhdx_io *io, uint64_t size);
	size_t state_size; /* the scan's state, zeroed before the first scan */
	/* Scans C->io (C->file_size bytes) into STATE, reporting every problem; 0, or -errno when it cannot go on. */
	int (*scan)(struct vhdx_check_ctx *c, void *state);
	/* Frees what STATE holds and zeroes it. */
	void (*free)(void *state);
	const struct vhdx_check_step *steps; /* in order; ends with a step whose repair is NULL */
};

/**
 * The overlap sweep of the BAT checks (check_overlap.c): ALLOCS holds N
 * (file offset, entry << 1 | small) pairs sorted by file offset, a block
 * being SMALL_LEN bytes when the low bit is set, else BLOCK_LEN.  For each
 * pair of blocks that overlap, FOUND gets the later entry (the suspect
 * one, to be cleared) and the other.
 */
void vhdx_check_overlaps(const uint64_t *allocs, uint64_t n, uint64_t block_len, uint64_t small_len,
			 void (*found)(void *arg, uint64_t victim, uint64_t other), void *arg);

extern const struct vhdx_checker vhdx_checker_vhdx;
extern const struct vhdx_checker vhdx_checker_vhd;

#endif
