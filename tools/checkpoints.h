/*
 * checkpoints.h - what `vhdx checkpoints DIR` knows about a folder: its
 * images, how each links to its parent, and the facts derived from that
 * (cycles, layers merged away).  checkpoints_scan.c fills it,
 * cmd_checkpoints.c reports it.
 */
#ifndef VHDX_CHECKPOINTS_H
#define VHDX_CHECKPOINTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tool.h"

enum link_state {
	LINK_NONE,     /* not differencing */
	LINK_OK,       /* parent found, identity matches (or accepted by --ignore-id-mismatch) */
	LINK_MISSING,  /* no candidate found */
	LINK_MISMATCH, /* a candidate with another identity */
	LINK_ERROR,    /* the parent could not be read (I/O error, sector size...) */
};

struct node {
	char *path;
	bool external;            /* a parent outside DIR, reached through a locator */
	dev_t dev;
	ino_t ino;
	enum vhdx_format format;
	enum vhdx_disk_type type;
	uint64_t virtual_size, file_size;
	uint32_t block_size;
	uint8_t identity[16];
	bool has_parent;
	uint8_t linkage[16];
	char *parent_locator;     /* first locator entry, as stored (".\web01.vhdx") */
	uint32_t parent_timestamp; /* VHD: the parent's time stamp the child was made with */
	int64_t mtime;            /* the file's modification time (seconds) */
	enum link_state link;
	bool id_accepted;         /* LINK_OK only through --ignore-id-mismatch */
	bool by_parent_opt;       /* the parent is the file named by --parent */
	int parent;               /* index of the parent node (LINK_OK), or -1 */
	int mismatched;           /* LINK_MISMATCH: index of the candidate found, or -1 */
	uint8_t parent_identity[16]; /* LINK_MISMATCH: what the candidate is */
	char *message;            /* LINK_MISSING/ERROR: the library's message */
	char *tried;              /* LINK_MISSING: "path (why); ..." */
	char *merging_ancestor;   /* ancestor named by PATH.merging, or NULL */
	unsigned n_children;
	bool in_cycle;            /* its parents lead back to itself */
	bool merged_away;         /* its data is all in its parent, which changed after it was made */
	const char *in_use;       /* "write", "read" or NULL: another process has it open (issue #14) */
	bool extra_counted;       /* the report counted it as an extra recovery checkpoint */
};

struct unreadable {
	char *path, *message;
};

struct scan {
	const char *dir;
	struct tool_open to;
	struct node *nodes;
	size_t n, cap;
	struct unreadable *bad;
	size_t n_bad, cap_bad;
	size_t n_other;           /* files of DIR that are not images */
};

/** Reads DIR: probes every regular file, opens the images, resolves their parents. 0, or -1 (message printed). */
int ckpt_scan(struct scan *s);
/** Marks cycles and layers merged away (reads the data of candidates). 0, or -1 (message printed). */
int ckpt_analyse(struct scan *s);
/** Frees what ckpt_scan allocated. */
void ckpt_free(struct scan *s);

/** The last component of a stored parent path, the way the library names a parent ("web01.vhdx"). */
const char *ckpt_parent_name(const char *stored);

#endif
