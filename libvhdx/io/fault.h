/*
 * fault.h - the fault engine of the I/O stack (DESIGN.md "L0": the `fault`
 * backend; issue #6).  Three pieces, one file each:
 *
 *   io/fault_rules.c   the rule language: parse one line into a struct
 *                      vhdx_fault_rule, match a request against it, decide
 *                      whether it fires (nth=, after=, every=, prob=, once)
 *   io/fault_engine.c  struct vhdx_faults: the rule set behind a mutex, the
 *                      evaluation of a request against every rule, the event
 *                      ring and the counters, the crash epoch
 *   io/fault.c         the backend: a struct vhdx_io wrapping a layer's file
 *                      that asks the engine about every call and carries out
 *                      the answer (error, delay, short or torn transfer, bit
 *                      flips, a power cut that drops the unflushed writes)
 *
 * and faults.c, the public API over the engine (libvhdx.h vhdx_faults_*).
 *
 * Where it sits: io/stack.c (the stack builder format/layer.c opens each
 * layer's file with) wraps the file io with the fault backend when the open
 * options carry an engine, before the format parses the file.  A read-only
 * open of a dirty VHDX then puts its overlay on top, so the stack is
 * overlay -> fault -> file: faults hit the bytes of the file, never the
 * in-memory replay.
 *
 * Rule language (one rule a line; `key=value` words; `#` starts a comment at
 * the start of a word; blank lines ignored):
 *   match   op=read|write|flush|truncate|open|close|lock|any   file=GLOB
 *           off=START-END (file bytes, inclusive; or START+LEN, or one N)
 *           voff=START-END (virtual-disk bytes of payload requests)
 *           struct=header|region|metadata|log|bat|bitmap|payload|footer|
 *                  dynhdr|fileid|other
 *           nth=N  after=N  every=N  prob=P [seed=S]  once
 *   action  err=ERRNO  delay=MS  short=BYTES  torn=SECTORS  flip=N  crash
 * Numbers take K/M/G/T suffixes (binary) and 0x hex.
 */
#ifndef VHDX_IO_FAULT_H
#define VHDX_IO_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

struct vhdx_faults; /* the engine; opaque in libvhdx.h */

/* Operations a rule can match (op=). */
enum vhdx_fault_op {
	VHDX_FOP_READ,
	VHDX_FOP_WRITE,
	VHDX_FOP_FLUSH,
	VHDX_FOP_TRUNCATE,
	VHDX_FOP_OPEN,
	VHDX_FOP_CLOSE,
	VHDX_FOP_LOCK,   /* taking a file's lock when it is opened (issue #14) */
	VHDX_FOP__COUNT
};
/* op=any: every operation but lock, which a rule names on its own (so that
 * the nth= counts of rules written before locks existed stay the same) */
#define VHDX_FOP_ALL ((1u << VHDX_FOP_LOCK) - 1)

/** "read", "write", "flush", "truncate", "open", "close", "lock". */
const char *vhdx_fault_op_name(enum vhdx_fault_op op);
/** The rule-language name of a structure tag ("bat", "payload", ...). */
const char *vhdx_fault_tag_name(enum vhdx_tag tag);
/** "EIO" for 5, or the number as text in BUF (of BUFLEN bytes). */
const char *vhdx_fault_errno_name(int err, char *buf, size_t buflen);

/* Action bits of a rule. */
#define VHDX_FACT_ERR 0x01u   /* fail the call with err (alone, or the code of short/torn/crash) */
#define VHDX_FACT_DELAY 0x02u /* sleep delay_ms, then go on */
#define VHDX_FACT_SHORT 0x04u /* transfer short_bytes, then fail */
#define VHDX_FACT_TORN 0x08u  /* write torn_sectors * 512 bytes, then fail */
#define VHDX_FACT_FLIP 0x10u  /* flip flip_bits bits of the data; the call succeeds */
#define VHDX_FACT_CRASH 0x20u /* power cut: drop the unflushed writes, fail from now on */

#define VHDX_FAULT_MAX_FLIP 64          /* flip=N takes 1..64 */
#define VHDX_FAULT_MAX_DELAY_MS 600000u /* ten minutes */
#define VHDX_FAULT_MAX_LINE 4096        /* characters of one rule line */

struct vhdx_fault_rule {
	unsigned id;   /* 1, 2, ... in the order rules were added to an engine; never reused */
	char *text;    /* the line without its comment, trimmed (owned) */
	/* match */
	unsigned op_mask;    /* 1 << enum vhdx_fault_op */
	char *file_glob;     /* NULL: any file (owned) */
	bool has_off, has_voff;
	uint64_t off_first, off_last;   /* inclusive */
	uint64_t voff_first, voff_last; /* inclusive */
	unsigned tag_mask;   /* 1 << enum vhdx_tag; 0: any */
	uint64_t nth, after, every;
	bool has_prob, has_seed, once;
	double prob;
	uint64_t seed;
	/* action */
	unsigned actions;    /* VHDX_FACT_* */
	int err;             /* positive errno; EIO unless err= */
	uint64_t delay_ms, short_bytes, torn_sectors;
	unsigned flip_bits;
	/* state, under the engine's lock */
	uint64_t matched;    /* calls that met the match keys */
	uint64_t hits;       /* calls the rule acted on */
	uint64_t prob_rng, flip_rng;
};

/*
 * One call as the engine sees it.  Read and write carry a file range and a
 * structure tag (and a virtual offset for payload); truncate carries the new
 * size as foff with len 0; flush, open and close carry neither.
 */
struct vhdx_fault_req {
	enum vhdx_fault_op op;
	const char *path;     /* the layer file as opened */
	const char *base;     /* its last path component */
	bool has_foff;
	uint64_t foff, len;
	bool has_tag;
	enum vhdx_tag tag;
	uint64_t voff;        /* VHDX_NO_VOFF unless a payload request */
	bool crash_unavailable; /* the io cannot simulate a power cut (pre-image limit) */
};

/**
 * Parses one line.  SOURCE ("faults", a file name) and LINENO only make the
 * message: "SOURCE line N: unknown key 'opp'".  Returns 1 with *OUT set (the
 * caller owns it: vhdx_fault_rule_free), 0 for a blank or comment line
 * (*OUT NULL), or -EINVAL with the message.
 */
int vhdx_fault_rule_parse(const char *line, const char *source, unsigned lineno, struct vhdx_fault_rule **out);
void vhdx_fault_rule_free(struct vhdx_fault_rule *r);
/** True when Q meets R's match keys (op, file, off, voff, struct); no state. */
bool vhdx_fault_rule_matches(const struct vhdx_fault_rule *r, const struct vhdx_fault_req *q);
/**
 * Counts one matching call and says whether R acts on it (nth=, after=,
 * every=, prob=, once).  Advances R's state; caller holds the engine lock.
 */
bool vhdx_fault_rule_fires(struct vhdx_fault_rule *r);
/**
 * Picks the bit positions of a flip on LEN bytes: min(R->flip_bits, LEN*8)
 * distinct positions in BITS (VHDX_FAULT_MAX_FLIP long), from R's seed.
 * Returns how many.  Caller holds the engine lock.
 */
unsigned vhdx_fault_rule_flip_positions(struct vhdx_fault_rule *r, uint64_t len, uint64_t *bits);

/* What the engine decided for one call (filled by vhdx_fault_eval). */
struct vhdx_fault_decision {
	unsigned rule;         /* the rule that decided the outcome; 0: none */
	unsigned actions;      /* VHDX_FACT_* of that rule (DELAY: the sum of every firing delay) */
	int err;               /* positive errno */
	uint64_t delay_ms;
	uint64_t short_bytes, torn_sectors;
	unsigned nflip;
	uint64_t flip[VHDX_FAULT_MAX_FLIP];
	bool crash_unavailable; /* a crash rule fired but the io cannot simulate it (ENOMEM) */
	uint64_t seq_mark;     /* the engine's next event number when the call was decided */
	bool track;            /* crash rules are armed: keep pre-images of writes */
	uint64_t crash_limit;  /* bytes of pre-images an io may keep */
};

/**
 * The fast test every fault io makes first: true when no rule is active
 * and no crash happened since the io's EPOCH (one atomic load).
 */
bool vhdx_fault_idle(struct vhdx_faults *f, uint32_t epoch);
/** The current crash epoch (an io records it when it is created). */
uint32_t vhdx_fault_epoch(struct vhdx_faults *f);
/**
 * Evaluates Q against every rule under the engine lock, records an event
 * per rule that acted (and calls the event callback), and fills *D.  A
 * firing crash rule starts a new crash epoch before this returns.
 */
void vhdx_fault_eval(struct vhdx_faults *f, const struct vhdx_fault_req *q, struct vhdx_fault_decision *d);
/**
 * Tells the engine that the read Q (decided at SEQ_MARK, the decision's
 * seq_mark) succeeded without a fault: every failed read of the same file
 * injected before it whose range overlaps Q's is marked read again
 * ("reread=yes" in the event list).  One atomic load when no failed read
 * is waiting.
 */
void vhdx_fault_read_ok(struct vhdx_faults *f, const struct vhdx_fault_req *q, uint64_t seq_mark);
/**
 * Records that Q failed because its io is dead after a crash (the engine's
 * last crash rule is named in the event).  Returns the rule id that crashed.
 */
unsigned vhdx_fault_dead_call(struct vhdx_faults *f, const struct vhdx_fault_req *q);

/**
 * Parses TEXT (one or many lines; messages name SOURCE and the line) and
 * appends its rules, all or none.  Returns the number added or -errno.
 */
int vhdx_fault_engine_add(struct vhdx_faults *f, const char *text, const char *source);

/** Takes / drops a reference on the engine (fault ios hold one each). */
void vhdx_fault_ref(struct vhdx_faults *f);
void vhdx_fault_unref(struct vhdx_faults *f);

/**
 * Evaluates the op=open rules for PATH (before the file is opened).
 * 0, or -errno with "injected EIO (fault rule N)".  F may be NULL.
 */
int vhdx_fault_check_open(struct vhdx_faults *f, const char *path);

/**
 * The fault backend: wraps LOWER (taking ownership of it, also on failure)
 * so that every call is checked against F's rules.  The io holds a
 * reference on F.  Its get_fd is -1, so zero-copy readers fall back to
 * reads that pass through the rules.  0 or -ENOMEM.
 */
int vhdx_io_fault_new(struct vhdx_faults *f, struct vhdx_io *lower, struct vhdx_io **out);
/**
 * Evaluates the op=close rules for fault io IO (a struct vhdx_io made by
 * vhdx_io_fault_new); called just before the io is closed.  0 or -errno
 * ("injected EIO (fault rule N)"; EIO once the io died in a crash).
 */
int vhdx_io_fault_close_check(struct vhdx_io *io);
/** Unflushed writes whose pre-images a fault io holds (tests). */
size_t vhdx_io_fault_pending(struct vhdx_io *io);

#endif /* VHDX_IO_FAULT_H */
