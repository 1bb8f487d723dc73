/*
 * cycle.h - shared pieces of `vhdx cycle mount` (tools/cycle/cmd_cycle.c), the
 * emulation of a backup agent's scratch-disk cycle (Azure Backup's MARS
 * agent mounts a metadata VHD on every backup; issue #6):
 *
 *   cycle_model.c     what the workload was told is durable, per 512-byte
 *                     sector, and the check of an image against it
 *   cycle_rules.c     the fault rules of one cycle: counters (nth, after,
 *                     every, once) carried from cycle to cycle
 *   cycle_mount.c     vhdxfs as a child process: mount, control files,
 *                     unmount, fault log
 *   cycle_workload.c  the metadata workload through MOUNTPOINT/disk, each
 *                     injected fault attributed to the call it hit
 *   cycle_report.c    classes, the errno table with Windows codes, the
 *                     summary as text or JSON
 *   cycle_setup.c     the drivers' shared set-up: their options from a table,
 *                     the rules, the model of the image at the start
 *   cycle_totals.c    the totals both drivers count and print: cycles (rounds)
 *                     and faults per class
 *   cycle_checkpoint.c `vhdx cycle checkpoint`: a backup product's Hyper-V
 *                     recovery-checkpoint cycle (create, back up, merge) in
 *                     this process, reusing the model, the rules, the events
 *                     and the classification above
 */
#ifndef VHDX_CYCLE_H
#define VHDX_CYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tool.h"

#define CYCLE_SECTOR 512u
#define CYCLE_NONE UINT64_MAX

/*
 * How a cycle (and each injected fault) ends, from best to worst.  A
 * cycle's class is the worst of its faults' classes and of what
 * verification found.
 */
enum cycle_class {
	CC_CLEAN,      /* no fault injected, no error, verification found nothing */
	CC_DELAYED,    /* only delay faults: slower, nothing failed */
	CC_REPORTED,   /* every fault that changed an outcome surfaced as an error of the call it hit */
	CC_TORN,       /* reported, and a sector of a failed write or fsync holds neither its old nor
			  any attempted bytes (a write cut inside a sector); the workload was told */
	CC_UNEXPECTED, /* a call failed although no fault was injected into it or before it */
	CC_SILENT,     /* a fault changed an outcome, nothing surfaced, verification found nothing */
	CC_DAMAGED,    /* damage found: the image does not reopen, or a read returned wrong bytes
			  without an error */
	CC_LOST,       /* an acknowledged write (write and the next fsync succeeded) is missing or wrong */
	CC__COUNT
};
const char *cycle_class_name(enum cycle_class c);
/** Every class and one line saying what it means, INDENT spaces in (both drivers' --help). */
void cycle_print_classes(int indent);

/* ---- errno names and Windows equivalents (cycle_report.c) ---- */

/** "EIO" for 5; "errno 123" in BUF otherwise. */
const char *cycle_errno_name(int err, char *buf, size_t n);
/** Parses "EIO" (or a number) into *ERR; 0 or -1. */
int cycle_errno_parse(const char *name, int *err);
/** The HRESULT Windows reports for ERR (0x8007045D for EIO), 0 when there is no equivalent. */
uint32_t cycle_win_code(int err);
/** The Win32 name of that code ("ERROR_IO_DEVICE"), or "". */
const char *cycle_win_name(int err);

/* ---- the model of acknowledged data (cycle_model.c) ---- */

struct cycle_model;

/** A model of a disk of SIZE bytes (a multiple of 512) that is all zeros.  NULL on ENOMEM. */
struct cycle_model *cycle_model_new(uint64_t size);
void cycle_model_free(struct cycle_model *m);
/** An independent copy of M (what it expects now), e.g. a checkpoint's contents; NULL on ENOMEM. */
struct cycle_model *cycle_model_copy(const struct cycle_model *m);
uint64_t cycle_model_size(const struct cycle_model *m);
/** The 64-bit hash the model keeps per 512-byte sector. */
uint64_t cycle_sector_hash(const void *sector);

/*
 * What the workload saw, in order.  VOFF and LEN are multiples of 512;
 * HASHES holds one hash per sector of the data written.  CYCLE and OP name
 * the write, for reports of lost data.
 */
void cycle_model_write_ok(struct cycle_model *m, uint64_t voff, uint64_t len, const uint64_t *hashes,
			  unsigned cycle, unsigned op);
void cycle_model_write_failed(struct cycle_model *m, uint64_t voff, uint64_t len, const uint64_t *hashes);
/** An fsync returned OK (every sector written OK since becomes acknowledged) or failed. */
void cycle_model_fsync(struct cycle_model *m, bool ok);

/* A range of sectors that did not match, for reports. */
struct cycle_mismatch {
	uint64_t voff, len;
	unsigned ack_cycle, ack_op; /* lost: the write that was acknowledged (0: the initial contents) */
};
#define CYCLE_MAX_MISMATCH 8

struct cycle_check {
	uint64_t sectors;            /* sectors compared */
	uint64_t lost;               /* acknowledged sectors that are wrong */
	uint64_t damaged;            /* reopen: unacknowledged sectors with foreign bytes (torn);
					while mounted: sectors read back wrong */
	uint64_t uncertain;          /* sectors whose contents were not known (failed writes or fsyncs) */
	uint64_t torn;               /* while mounted: sectors of failed writes or fsyncs holding neither
					old nor attempted bytes (torn, as the reopen classes them) */
	struct cycle_mismatch lost_r[CYCLE_MAX_MISMATCH], damaged_r[CYCLE_MAX_MISMATCH];
	unsigned n_lost_r, n_damaged_r;
};

/**
 * Compares LEN bytes of BUF read at VOFF (while mounted) with what the
 * model expects there now (a sector written OK must read back as written,
 * even before fsync).  Adds mismatching sectors to *CK as damaged: a wrong
 * read may come from the read path alone, the reopen tells whether the data
 * was lost.  A sector of a failed write or fsync holding foreign bytes (a
 * write cut inside it: short=) is counted in ck->torn instead, the class
 * the reopen gives it too.  Returns the number of damaged sectors.
 */
uint64_t cycle_model_check_read(struct cycle_model *m, uint64_t voff, const uint8_t *buf, uint64_t len,
				struct cycle_check *ck);
/**
 * Reads the whole virtual disk of IMG and compares it with the model:
 * acknowledged sectors must hold their bytes (else lost); sectors of failed
 * writes or fsyncs may hold their old or any attempted contents (else
 * torn: counted in ck->damaged).  Afterwards the model takes what the disk holds as the known
 * contents of every sector (so one loss is reported once).  With ADOPT the
 * comparison is skipped (the baseline of an existing image).  0 or -errno
 * (message from the library).
 */
int cycle_model_verify(struct cycle_model *m, struct vhdx_image *img, bool adopt, struct cycle_check *ck);

/* ---- fault rules carried across cycles (cycle_rules.c) ---- */

struct cycle_rules;

/**
 * Reads the rules file PATH (checked with the library first: a bad line
 * gives "PATH line N: ...").  Returns 0 or -errno with the message printed.
 */
int cycle_rules_load(const char *path, uint64_t seed, struct cycle_rules **out);
void cycle_rules_free(struct cycle_rules *r);
/** Number of rules in the file (0 without --faults). */
unsigned cycle_rules_count(const struct cycle_rules *r);
/** The text of rule N (1-based), as written in the file without its comment. */
const char *cycle_rules_text(const struct cycle_rules *r, unsigned n);
/**
 * Writes the rules for cycle CYCLE to OUT: each rule continues its counts
 * from the cycles before (a rule `op=open nth=5` fires at the fifth open of
 * the whole run, not of each mount).  Rules that can no longer fire are left
 * out.  Returns the number of lines written.
 */
int cycle_rules_emit(struct cycle_rules *r, unsigned cycle, FILE *out);
/** The rule of the rules file (1-based) behind rule ID of the last emitted set; 0 if none. */
unsigned cycle_rules_origin(const struct cycle_rules *r, unsigned id);
/**
 * Adds the counts of the cycle just ended, from a listing of the emitted
 * rules with their "# rule N: hits=H matched=M" comments.
 */
void cycle_rules_account(struct cycle_rules *r, const char *listing);
/**
 * Rewrites every "fault rule N" of *MSG (the number in the last emitted set,
 * as the library's messages say it) to the rules file's number (in place,
 * or a new string replacing *MSG).
 */
void cycle_rules_renumber(const struct cycle_rules *rules, char **msg);
/** Cumulative hits of rule N (1-based): the calls it acted on. */
uint64_t cycle_rules_hits(const struct cycle_rules *r, unsigned n);
/** Cumulative matched calls of rule N (1-based), while it could still fire. */
uint64_t cycle_rules_matched(const struct cycle_rules *r, unsigned n);

/* ---- one injected fault, parsed from an events line ---- */

struct cycle_event {
	uint64_t seq;
	char t[24];          /* seconds since the mount's engine was made */
	unsigned rule;       /* rule number of the rules file (after cycle_rules_origin) */
	char op[12];
	char *file;          /* layer file (owned) */
	uint64_t foff, len, voff; /* CYCLE_NONE when absent */
	char structure[16];
	char action[24];
	char detail[48];
	int err;             /* errno the call got, 0 for delay and flip */
	int step;            /* the workload step it is attributed to (index in the cycle's steps) */
	enum cycle_class cls;
};
/** Parses one events line; 0, or -1 when it is not one. */
int cycle_event_parse(const char *line, struct cycle_event *ev);

/* ---- vhdxfs as a child process (cycle_mount.c) ---- */

struct cycle_mount {
	const char *vhdxfs;  /* program path */
	char *mnt;           /* absolute mount point */
	char *workdir;       /* rules, logs, stderr of the children */
	pid_t pid;           /* of vhdxfs while it runs, else 0 */
	int status;          /* vhdxfs wait status once it ended */
	bool mounted;
	unsigned timeout_ms; /* for the mount to appear and vhdxfs to exit */
};

/** Finds vhdxfs: OVERRIDE, $VHDXFS, beside this program, ../fuse/ of a build tree, then PATH. */
char *cycle_find_vhdxfs(const char *override);
/**
 * Starts `vhdxfs -f -o rw,nopartitions,faults=RULES,fault-log=LOG IMAGE MNT` and waits
 * for the mount.  0 when mounted; -1 when vhdxfs ended first or the mount
 * did not appear in time (its message in *MSG, malloc'd; the wait status in
 * cm->status).
 */
int cycle_mount_start(struct cycle_mount *cm, const char *image, const char *rules, const char *log, char **msg);
/**
 * fusermount3 -u, then waits for vhdxfs to exit.  0 when unmounted and
 * vhdxfs exited 0; otherwise *MSG says what failed (fusermount3's message,
 * vhdxfs's exit status and stderr) and the result is -EBUSY when the mount
 * could not be unmounted, -EIO when vhdxfs failed or did not exit.  Always
 * leaves nothing mounted and no child running (lazy unmount and SIGKILL as
 * last resorts).
 */
int cycle_mount_stop(struct cycle_mount *cm, char **msg);
/** Reads MNT/.vhdxfs/NAME into a malloc'd string (NULL on failure). */
char *cycle_mount_read_ctl(const struct cycle_mount *cm, const char *name);
/** The value of KEY in MNT/.vhdxfs/stats (malloc'd), or NULL. */
char *cycle_mount_stat(const struct cycle_mount *cm, const char *key);
/** Reads a whole file (malloc'd, NUL-terminated), NULL on failure. */
char *cycle_read_file(const char *path);

/* ---- the workload (cycle_workload.c) ---- */

/* One call of the cycle that can fail: mount, the workload's I/O, unmount. */
struct cycle_step {
	const char *what;    /* "mount", "pwrite", "pread", "fsync", "close", "unmount" */
	uint64_t voff, len;  /* CYCLE_NONE for none */
	int err;             /* 0: it succeeded; else the errno it returned */
	char *msg;           /* the reason vhdxfs gave (stats' last_error, its stderr), owned */
	uint64_t last_seq;   /* events with seq up to this one happened during or before it */
};

struct cycle_run;  /* cmd_cycle.c: options and totals */

struct cycle_result {
	unsigned cycle;
	enum cycle_class cls;
	bool created;
	bool mounted;
	struct cycle_step *steps;
	size_t n_steps, cap_steps;
	struct cycle_event *events;
	size_t n_events, cap_events;
	uint64_t writes, write_bytes, reads, read_bytes, fsyncs;
	bool reopen_failed;
	char *reopen_msg;
	struct cycle_check rb;      /* the workload's reads while mounted */
	struct cycle_check ck;      /* the whole disk after the reopen */
	double seconds;
};

/** Appends a step; returns its index or -1 on ENOMEM. */
int cycle_result_step(struct cycle_result *res, const char *what, uint64_t voff, uint64_t len, int err,
		      const char *msg);
/** Adds the events of TEXT with seq > *SEEN to RES, attributed to STEP; updates *SEEN. */
void cycle_result_events(struct cycle_result *res, const struct cycle_rules *rules, const char *text,
			 uint64_t *seen, int step);
void cycle_result_free(struct cycle_result *res);
/**
 * The JSON list "faults" of RES's events (cycle_report.c): rule, op, file,
 * structure, action, errno, step and class; with DETAIL (vhdx cycle mount)
 * also the sequence number, time, offsets, length and detail.
 */
void cycle_json_faults(struct report *r, const struct cycle_result *res, bool detail);

struct cycle_workload_opts {
	uint64_t seed;
	unsigned cycle;
	unsigned ops;          /* operations per cycle */
	uint64_t size;         /* virtual disk bytes */
};

/**
 * Runs one cycle's workload on the mounted disk of CM: writes, overwrites,
 * fsyncs and reads through MNT/disk with O_DIRECT, updating the model and
 * recording every call that failed, and attributing each injected fault
 * (read from MNT/.vhdxfs/events after every call) to the call it hit.
 * Returns 0, or -1 when the workload could not run at all (MNT/disk does not
 * open: that is recorded as a failed step too).
 */
int cycle_workload_run(const struct cycle_workload_opts *o, struct cycle_mount *cm, struct cycle_model *m,
		       const struct cycle_rules *rules, struct cycle_result *res, uint64_t *seen);

/* ---- the verdict (cycle_report.c) ---- */

/** Classifies every event of RES and RES itself (after verification). */
void cycle_classify(struct cycle_result *res);

/* ---- the totals both drivers count and print (cycle_totals.c) ---- */

struct cycle_totals {
	unsigned run;                          /* cycles (rounds) run */
	uint64_t by_class[CC__COUNT];          /* cycles (rounds) per class */
	uint64_t faults_by_class[CC__COUNT];
	uint64_t faults_total;                 /* faults the rules injected */
	uint64_t after_crash;                  /* calls failed because a simulated crash came before them */
};

/** Adds RES: its class, and its faults (a call failed after a simulated crash counted apart). */
void cycle_totals_add(struct cycle_totals *t, const struct cycle_result *res);
/** Whether a cycle (round) was unexpected or worse. */
bool cycle_totals_bad(const struct cycle_totals *t);
/** "Summary: N of COUNT UNIT in S s, ..." and UNIT ("cycles", "rounds") and faults per class. */
void cycle_totals_text(const struct cycle_totals *t, const char *unit, unsigned count, double secs);
/** The same into R's open object: UNIT_run, seconds, faults, after_crash_events, UNIT_by_class, faults_by_class. */
void cycle_totals_json(struct report *r, const struct cycle_totals *t, const char *unit, double secs);

/* ---- the drivers' shared set-up: options from a table, rules, the first model (cycle_setup.c) ---- */

enum cycle_opt_kind {
	CYCLE_OPT_STR,     /* a string argument, kept as given */
	CYCLE_OPT_SKIP,    /* an argument read elsewhere (mount's --fs): taken, not stored */
	CYCLE_OPT_FLAG,    /* a bool set to true */
	CYCLE_OPT_UINT,    /* an unsigned in [min, max], stored times SCALE (1 when 0) */
	CYCLE_OPT_U64,     /* a uint64_t in [min, max] */
	CYCLE_OPT_SIZE,    /* a uint64_t size (K/M/G) in [min, max], a multiple of MULTIPLE; else BAD 'ARG' */
	CYCLE_OPT_FORMAT,  /* vhd or vhdx into an enum vhdx_format */
	CYCLE_OPT_HELP,    /* the driver's help on standard output, exit status 0 */
};

/* One option of a driver: its long name, and where its value goes in the driver's run struct. */
struct cycle_opt {
	const char *name;          /* without "--"; NULL ends a table */
	char short_name;           /* 'v', 'q', 'h' or 0 */
	enum cycle_opt_kind kind;
	size_t field;              /* offsetof the value in the run struct */
	uint64_t min, max;
	unsigned scale;            /* CYCLE_OPT_UINT: --timeout takes seconds, the run keeps ms */
	uint64_t multiple;         /* CYCLE_OPT_SIZE */
	const char *bad;           /* CYCLE_OPT_SIZE: the message before 'ARG' */
};

/* The options ending the tables of mount and checkpoint (TYPE: the driver's run struct), and the end. */
#define CYCLE_OPTS_REPORT(type)                                                                          \
	{ .name = "json", .kind = CYCLE_OPT_FLAG, .field = offsetof(type, json) },                          \
	{ .name = "verbose", .short_name = 'v', .kind = CYCLE_OPT_FLAG, .field = offsetof(type, verbose) }, \
	{ .name = "quiet", .short_name = 'q', .kind = CYCLE_OPT_FLAG, .field = offsetof(type, quiet) },     \
	{ .name = "help", .short_name = 'h', .kind = CYCLE_OPT_HELP },                                      \
	{ .name = NULL }

/* A driver's command line. */
struct cycle_cli {
	const char *name;          /* "mount", "checkpoint": in the messages */
	const char *image_opt;     /* "image" or "base": the option naming the image */
	const struct cycle_opt *opts;
	void (*help)(void);        /* -h, --help */
	void (*usage)(FILE *f);    /* after a bad option, on standard error */
};

/**
 * Parses ARGV's options by CLI's table into RUN (getopt_long, in the table's
 * order).  0, or -1 with *RC the exit status to return (0 after --help, 2
 * after a usage error with its message).
 */
int cycle_cli_parse(const struct cycle_cli *cli, void *run, int argc, char **argv, int *rc);
/** The checks after the options of mount and checkpoint: no operand, IMAGE and COUNT given, no global --faults.  0 or -1 (exit status 2; message printed). */
int cycle_cli_check(const struct cycle_cli *cli, const char *image, unsigned count, int argc, char **argv);
/** The rules of --faults FILE (none when NULL) into *RULES: EXIT_OK, or EXIT_USAGE / EXIT_ERR with *RULES freed and NULL. */
int cycle_setup_rules(const char *faults, uint64_t seed, struct cycle_rules **rules);
/** The format a new image at PATH gets: VHD when the name ends in .vhd, else VHDX. */
enum vhdx_format cycle_format_of_name(const char *path);
/**
 * Opens PATH read-only, fills INFO and makes *M, the model of its contents
 * now (what the first cycle expects).  BASE_ONLY refuses a differencing
 * image (the message names --CLI->image_opt).  EXIT_OK, else the exit
 * status after the message.
 */
int cycle_setup_model(const struct cycle_cli *cli, const char *path, bool base_only, struct vhdx_info *info,
		      struct cycle_model **m);

/* ---- vhdx cycle checkpoint (cycle_checkpoint.c) ---- */

/** `vhdx cycle checkpoint ...` (ARGV[0] is "checkpoint"); returns the exit status. */
int cycle_checkpoint_main(int argc, char **argv);

/* ---- vhdx cycle mount --fs ext4|ntfs (cycle_fs.c) ---- */

/*
 * The classes of a volume-level cycle, best first (cycle_report.c holds
 * their names and the decision): see cycle_fs_classify().
 */
enum cycle_fs_class {
	CFC_CLEAN, CFC_UNEXPECTED, CFC_REPORTED, CFC_ABSORBED, CFC_REPAIRED, CFC_SILENT, CFC_DAMAGED, CFC_LOST, CFC__N
};

/** "clean", "unexpected", "reported", "absorbed", "repaired", "silent", "damaged", "lost". */
const char *cycle_fs_class_name(enum cycle_fs_class c);
/**
 * The faults of a fault log as vhdxfs writes it at its end (event lines
 * "seq=..."): their number, and in *REREAD how many of them are failed
 * reads that a later successful read of the same bytes made good
 * ("reread=yes").
 */
unsigned cycle_log_faults(const char *log, unsigned *reread);
/**
 * The class of a volume-level cycle: DAMAGED (the volume did not mount
 * again, even after a repair), REPAIRED (it mounted only after a repair by
 * the file system's own tool), LOST acknowledged files, ERRORS calls that
 * failed (workload, mount, umount), INJECTED faults of which REREAD were
 * failed reads read again.  A cycle whose faults surfaced nowhere is
 * absorbed when every one of them was a failed read read again, else
 * silent; a repair is "repaired" only where an error surfaced, else it is
 * silent (or unexpected, without faults).
 */
enum cycle_fs_class cycle_fs_classify(bool damaged, bool repaired, unsigned lost, unsigned errors, unsigned injected,
				      unsigned reread);

/** `vhdx cycle mount --fs ...` (ARGV[0] is "mount"): the volume-level cycle.  An exit status. */
int cycle_fs_main(int argc, char **argv);

#endif
