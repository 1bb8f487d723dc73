/*
 * tool.h - shared pieces of the `vhdx` command: the subcommand table,
 * parsing of sizes and of the options every image-opening command takes,
 * and a report writer that prints the same tree as text or JSON.
 */
#ifndef VHDX_TOOL_H
#define VHDX_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libvhdx.h"
#include "port/compat.h"

/* Exit codes */
#define EXIT_OK 0
#define EXIT_ERR 1
#define EXIT_USAGE 2
#define EXIT_PROBLEMS 3

extern const char *tool_prog; /* "vhdx" */

/** Prints "vhdx CMD: message" to stderr. */
void tool_error(const char *cmd, const char *fmt, ...) __attribute__((format(VHDX_PRINTF_ARCHETYPE, 2, 3)));
/** Prints a failed library call's message (vhdx_errmsg) with the command name and returns EXIT_ERR. */
int tool_lib_error(const char *cmd, int ret);

/** Parses "123", "4K", "1.5G"-style sizes (K/M/G/T binary; optional "iB"/"B"). 0 or -1. */
int tool_parse_size(const char *s, uint64_t *out);
/** tool_parse_size for option OPT of command CMD; prints "bad OPT 'ARG'" and returns -1 on error (or 0 when NONZERO). */
int tool_size_option(const char *cmd, const char *opt, const char *arg, bool nonzero, uint64_t *out);
#ifndef _WIN32
/**
 * This program's path (/proc/self/exe) into OUT (SIZE bytes), NUL-terminated;
 * in the build tree the libtool wrapper rather than the program in .libs.
 * Its length, or -1 with errno.
 */
ssize_t tool_self_exe(char *out, size_t size);
#endif
/** A whole number MIN..MAX for option OPT of CMD; prints "OPT takes a number from MIN to MAX" and returns -1 otherwise. */
int tool_uint_option(const char *cmd, const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out);
/** 0 when ARG is FIRST, 1 when SECOND; else -1 after "OPT takes FIRST or SECOND, got 'ARG'". */
int tool_choice_option(const char *cmd, const char *opt, const char *arg, const char *first, const char *second);
/**
 * A repeatable option: ARG appended to LIST (TOOL_LIST_MAX entries and a
 * NULL after them), or -1 after "too many OPT options (64 at most)".
 */
#define TOOL_LIST_MAX 64
int tool_list_option(const char *cmd, const char *opt, const char **list, unsigned *n, const char *arg);
/**
 * The whole of a command this build lacks (cmd_*_none.c): -h or --help
 * prints "Usage: vhdx CMD ..." and HELP_NOTE, anything else is the error WHY.
 */
int tool_not_built(const char *cmd, int argc, char **argv, const char *help_note, const char *why);
/** Seconds on the monotonic clock. */
double tool_now(void);

/*
 * A new output file written under a temporary name beside its destination
 * and renamed over it when complete (outfile.c), so that an interrupted
 * command never leaves a plausible but incomplete file at the destination.
 */
struct tool_outfile {
	char *dst; /* the destination (a symbolic link resolved to the file it names) */
	char *tmpdir; /* ".NAME.tmp-PID", a new folder beside it */
	char *tmp;    /* TMPDIR/NAME: create and write this one */
	struct vhdx_file_lock *dst_lock; /* an existing DST locked until it is replaced (issue #14) */
};
/** Picks the temporary name for DST (not created).  EXIT_OK, or EXIT_ERR after printing why. */
int tool_outfile_begin(struct tool_outfile *of, const char *cmd, const char *dst);
/** Renames the complete (and durable) temporary file to DST; an existing DST only with REPLACE.  Removes it on failure. */
int tool_outfile_commit(struct tool_outfile *of, const char *cmd, bool replace);
/** Removes the temporary file and frees OF. */
void tool_outfile_abort(struct tool_outfile *of);
/** tool_lib_error() with the temporary name in the library's message replaced by the destination's. */
int tool_outfile_lib_error(const struct tool_outfile *of, const char *cmd, int ret);
/** The same with HINT (what to do, or NULL) after the message; OF may be NULL. */
int tool_outfile_lib_error_hint(const struct tool_outfile *of, const char *cmd, int ret, const char *hint);

/*
 * Progress of a long command on standard error (progress.c): at most four
 * updates a second, since a terminal that scrolls slows the work down.
 */
struct tool_progress {
	const char *cmd; /* "vhdx CMD: " before each line */
	bool on;         /* false: nothing is printed */
	uint64_t total;  /* bytes of the whole job */
	double t0, last;
	bool open;       /* a line is on the terminal without its newline */
	bool ended;      /* the final line is out: nothing more */
};
void tool_progress_start(struct tool_progress *p, const char *cmd, bool on, uint64_t total);
/** "\rvhdx CMD:  42.0%  430 / 1024 MiB  512 MiB/s"; FINAL: always printed, with a newline. */
void tool_progress_show(struct tool_progress *p, uint64_t done, bool final);
/** The library's progress callback (merge, compact): ARG is a started struct tool_progress. */
int tool_progress_cb(uint64_t done, uint64_t total, void *arg);
/** Ends a line left open by work cut short (an error), so that messages start on their own line. */
void tool_progress_end(struct tool_progress *p);

/*
 * Options shared by every command that opens an image.  TOOL_OPEN_LONGOPTS
 * goes into a getopt_long table; tool_open_option() handles a returned code.
 */
enum {
	OPT_PARENT = 1000,
	OPT_PARENT_DIR,
	OPT_PATH_MAP,
	OPT_IGNORE_ID,
	OPT_NO_PARENT,
	OPT_SALVAGE,
	OPT_MAX_DEPTH,
	OPT_NO_REPLAY,
	OPT_JSON,
	OPT_FORCE_SHARE,
	OPT_NO_PROGRESS,
	OPT__NEXT = 1100, /* commands number their own options from here */
};
#define TOOL_OPEN_LONGOPTS                                                  \
	{ "parent", required_argument, NULL, OPT_PARENT },                  \
	{ "parent-dir", required_argument, NULL, OPT_PARENT_DIR },          \
	{ "path-map", required_argument, NULL, OPT_PATH_MAP },              \
	{ "ignore-id-mismatch", no_argument, NULL, OPT_IGNORE_ID },         \
	{ "no-parent", no_argument, NULL, OPT_NO_PARENT },                  \
	{ "salvage", no_argument, NULL, OPT_SALVAGE },                      \
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },             \
	{ "no-replay", no_argument, NULL, OPT_NO_REPLAY }

#define TOOL_OPEN_HELP                                                                          \
	"Chain options:\n"                                                                      \
	"  --parent FILE           use FILE as the immediate parent (overrides the locator)\n"   \
	"  --parent-dir DIR        also look for parents in DIR (repeatable)\n"                  \
	"  --path-map 'C:\\=/mnt/c/' map a Windows path prefix of a locator to a folder\n"       \
	"  --ignore-id-mismatch    accept a parent whose identity differs from the link\n"       \
	"  --no-parent             read this layer alone (zeros where it holds nothing)\n"       \
	"  --salvage               read through bad VHD checksums\n"                             \
	"  --max-depth N           refuse chains longer than N layers (default 1000)\n"     \
	"  --no-replay             refuse a dirty VHDX log instead of replaying it in memory\n"

/*
 * --force-share / -U (issue #14), for read-only commands only: add
 * TOOL_SHARE_LONGOPTS to the table, 'U' to the short options and
 * TOOL_SHARE_HELP to the help; tool_open_option() sets
 * VHDX_OPEN_FORCE_SHARE.
 */
#define TOOL_SHARE_LONGOPTS { "force-share", no_argument, NULL, 'U' }
#define TOOL_SHARE_HELP                                                                         \
	"  -U, --force-share       read even while another process writes the image: take no\n"   \
	"                          lock (a warning says when the data may be inconsistent)\n"

/*
 * The end of a command's getopt_long table (getopt's "ambiguous" message
 * lists the options in table order): --help, then for a command that opens
 * an image the chain options, then for a read-only one --force-share.
 */
#define TOOL_HELP_LONGOPT { "help", no_argument, NULL, 'h' }
#define TOOL_JSON_LONGOPT { "json", no_argument, NULL, OPT_JSON }
#define TOOL_LONGOPTS_END TOOL_HELP_LONGOPT, { NULL, 0, NULL, 0 }
#define TOOL_IMAGE_LONGOPTS_END TOOL_HELP_LONGOPT, TOOL_OPEN_LONGOPTS, { NULL, 0, NULL, 0 }
#define TOOL_READ_LONGOPTS_END TOOL_HELP_LONGOPT, TOOL_OPEN_LONGOPTS, TOOL_SHARE_LONGOPTS, { NULL, 0, NULL, 0 }

struct tool_open {
	struct vhdx_open_options opts;
	const char *parent_dirs[TOOL_LIST_MAX + 1];
	unsigned n_parent_dirs;
	const char *path_maps[TOOL_LIST_MAX + 1];
	unsigned n_path_maps;
};
void tool_open_init(struct tool_open *o);
/** Handles one of the OPT_* chain options; returns 1 if handled, 0 if not ours, -1 on a bad value. */
int tool_open_option(struct tool_open *o, int code, const char *arg, const char *cmd);
/** Opens PATH with FLAGS (VHDX_OPEN_*) and FAULTS (or NULL), the default options else: vhdx_open's result. */
int tool_open_flags(const char *path, unsigned flags, struct vhdx_faults *faults, struct vhdx_image **img);
/** Opens PATH with the collected options; prints the error and returns EXIT_ERR on failure. */
int tool_open_image(struct tool_open *o, const char *path, const char *cmd, struct vhdx_image **img);
/** Closes IMG: EXIT_OK, or EXIT_ERR with the library's message (a failed last flush). */
int tool_close_image(const char *cmd, struct vhdx_image *img);
/**
 * After an open with VHDX_OPEN_FORCE_SHARE in FLAGS: prints the one-line
 * warning "vhdx CMD: warning: FILE is in use for writing by another
 * process; what is read may be inconsistent" when a layer of IMG is.
 */
void tool_share_warn(const char *cmd, struct vhdx_image *img, unsigned flags);
/** "write", "read" or NULL: what another process does with layer LAYER of IMG (NULL when unknown). */
const char *tool_in_use(struct vhdx_image *img, unsigned layer);

/*
 * The option loop of a command (options.c): tool_getopt() handles what
 * every command answers alike (-h, an unknown option, --json, -p and
 * --no-progress, the chain options) and returns the command's own options
 * one by one; -1 at their end, or when the command is to return RC (STOPPED:
 * help printed, or a bad value said).
 */
struct option;
struct tool_cmd {
	const char *name;              /* "map": messages read "vhdx map: ..." */
	void (*help)(FILE *f);
	const char *shortopts;
	const struct option *longopts;
	struct tool_open *open;        /* takes the chain options; NULL: none */
	bool *json;                    /* set by --json; NULL: the command's own code */
	int *progress;                 /* 1 by -p, 0 by --no-progress; NULL: none */
	int rc;
	bool stopped, started;
};
int tool_getopt(struct tool_cmd *tc, int argc, char **argv);
/**
 * After the options: false when N operands follow them; true when the
 * command is to return TC->RC: stopped, or "expected WHAT (see 'vhdx CMD
 * --help')" said (the help when WHAT is NULL).  N -1 never matches: a
 * command missing a required option passes it to say so the same way.
 */
bool tool_operands(struct tool_cmd *tc, int argc, int n, const char *what);

/* ---- report writer: common/report.h (shared with the library) ---- */
#include "common/report.h"

/*
 * Errors as JSON (json_error.c): with --json, standard output holds one
 * JSON document even when the command fails.  vhdx.c turns the mode on for
 * a command given --json and calls tool_json_finish(RC) at the end: a
 * failure that printed nothing prints {"error": {"errno": NAME, "message":
 * ...}}, one inside an open report closes it with an "error" member.
 * tool_error/tool_lib_error and report_init/report_finish feed it; a
 * command that prints its JSON by hand calls tool_json_printed() when the
 * document is complete.
 */
void tool_json_mode(bool on);
/** Starts the report of a command about IMAGE on standard output (as JSON with JSON): its first member "image". */
void tool_report_image(struct report *r, bool json, const char *image);
void tool_json_note_error(const char *msg);
void tool_json_set_errno(int err);
void tool_json_report_begun(struct report *r);
void tool_json_report_done(struct report *r);
void tool_json_printed(void);
/** JSON only: the member "error": {"errno": NAME, "message": MSG} of the open object of R. */
void report_error(struct report *r, int err, const char *msg);
/** Ends a JSON list printed by hand with {"error": ...} (AFTER_ANOTHER: a comma first) and "]\n". */
void tool_json_error_element(FILE *f, bool after_another, int rc);
int tool_json_finish(int rc);
/** "ENOENT" for ENOENT; "errno N" in BUF for a number without a name. */
const char *tool_errno_name(int err, char *buf, size_t n);

/*
 * Global fault injection (faults_opt.c): `vhdx --faults RULES [--fault-log
 * FILE] COMMAND`.  tool_faults is the engine (NULL without --faults);
 * tool_open_init() puts it in every open.  tool_global_options() returns
 * the index of the command in ARGV or -EXIT_USAGE / -EXIT_ERR (message
 * printed); tool_faults_finish(RC) writes the fault log, frees the engine
 * and returns the exit code.
 */
extern struct vhdx_faults *tool_faults;
int tool_global_options(int argc, char **argv);
int tool_faults_finish(int rc);

/* Subcommands */
int cmd_info(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_hash(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_cycle(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_reparent(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_checkpoints(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);

#endif
