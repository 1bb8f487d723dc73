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
#include "io/compat.h"

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
/** A whole number MIN..MAX for option OPT of CMD; prints "OPT takes a number from MIN to MAX" and returns -1 otherwise. */
int tool_uint_option(const char *cmd, const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out);
/** Seconds on the monotonic clock. */
double tool_now(void);

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
	"  --max-depth N           refuse chains longer than N layers (default 64)\n"       \
	"  --no-replay             refuse a dirty VHDX log instead of replaying it in memory\n"

struct tool_open {
	struct vhdx_open_options opts;
	const char *parent_dirs[65];
	unsigned n_parent_dirs;
	const char *path_maps[65];
	unsigned n_path_maps;
};
void tool_open_init(struct tool_open *o);
/** Handles one of the OPT_* chain options; returns 1 if handled, 0 if not ours, -1 on a bad value. */
int tool_open_option(struct tool_open *o, int code, const char *arg, const char *cmd);
/** Opens PATH with the collected options; prints the error and returns EXIT_ERR on failure. */
int tool_open_image(struct tool_open *o, const char *path, const char *cmd, struct vhdx_image **img);

/* ---- report writer: one tree, printed as indented text or as JSON ---- */
struct report {
	FILE *f;
	bool json;
	int depth;
	bool first[64];   /* JSON: no comma needed before the next member at this depth */
	bool in_array[64];
};
void report_init(struct report *r, FILE *f, bool json);
void report_begin(struct report *r, const char *key);       /* object (key NULL in arrays / at top) */
void report_end(struct report *r);
void report_begin_list(struct report *r, const char *key);  /* array */
void report_end_list(struct report *r);
void report_str(struct report *r, const char *key, const char *val);
void report_u64(struct report *r, const char *key, uint64_t val);
void report_hex(struct report *r, const char *key, uint64_t val); /* JSON number, text 0x... */
void report_bool(struct report *r, const char *key, bool val);
void report_guid(struct report *r, const char *key, const uint8_t g[16]);
void report_size(struct report *r, const char *key, uint64_t bytes); /* JSON number, text "10 MiB (10485760)" */
void report_finish(struct report *r);
/** Writes S as a JSON string literal. */
void json_write_string(FILE *f, const char *s);

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
