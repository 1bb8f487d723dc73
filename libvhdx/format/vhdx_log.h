/*
 * vhdx_log.h - the VHDX metadata log (MS-VHDX 2.3): finding the active
 * sequence and replaying it, in place on a writable open or into an
 * in-memory overlay on a read-only one.
 */
#ifndef VHDX_FORMAT_LOG_H
#define VHDX_FORMAT_LOG_H

#include "codec/vhdx_log_codec.h"
#include "format/vhdx_format.h"

/* One entry of the active sequence. */
struct vhdx_log_seq_entry {
	uint32_t log_off;        /* where the entry starts, relative to LogOffset */
	struct vhdx_log_entry e; /* decoded (owns e.descs) */
	const uint8_t *bytes;    /* its EntryLength bytes, contiguous (into ring or copy) */
	uint8_t *copy;           /* owned copy of an entry that wraps the end of the ring, or NULL */
};

/* What a search of the log found (MS-VHDX 2.3.2/2.3.3). */
struct vhdx_log_sequence {
	size_t n;                           /* entries from the tail to the head, in replay order; 0 = none */
	struct vhdx_log_seq_entry *entries;
	uint32_t valid_entries;             /* entries anywhere in the log that passed every check */
	uint32_t candidates;                /* acceptable sequences seen (distinct heads) */
	char *diag;                         /* n == 0 with a non-zero LogGuid: why (owned), else NULL */
	uint8_t *ring;                      /* the whole log as read (owned) */
	uint64_t log_offset;
	uint32_t log_length;
	uint64_t size_limit;                /* the largest file a replay may leave (vhdx_log_find) */
};

/**
 * Reads the whole log of header H from IO (refusing a log that extends past
 * the end of the file) and finds the active sequence: every 4 KiB offset is
 * tried as an entry, entries carrying H's LogGuid that pass every check of
 * vhdx_log_entry_decode() are chained end to end (wrapping at the end of
 * the ring) while their sequence numbers go up by one, each fits the free
 * space and its Tail stays inside the sequence; a chain is acceptable when
 * its head's Tail is one of its entries; the acceptable one whose head has
 * the highest SequenceNumber wins.  *OUT is filled even when nothing is
 * found (n == 0, diag says why); release it with vhdx_log_sequence_free().
 * Also sets out->size_limit, the largest file a replay may leave: the end
 * of the file, the log and every region of the region table (read from the
 * file, 1 MiB-aligned), plus room for one block (the File Parameters block
 * size, 256 MiB when unreadable) per entry the BAT region can hold; without
 * a valid region table, the file may not grow at all.
 * 0, or -errno for I/O errors, memory, and a log past the end of the file.
 */
int vhdx_log_find(struct vhdx_io *io, const struct vhdx_header *h, struct vhdx_log_sequence *out);

/**
 * Replays SEQ (n > 0) into IO: refuses (EBADMSG) when IO is shorter than the
 * head's FlushedFileOffset, or when an entry would make the file larger than
 * SEQ->size_limit (a LastFileOffset, a descriptor's range; the message names
 * the entry's sequence number and log offset), before changing anything;
 * then applies the entries from the tail to the
 * head, descriptors in order (data: the rebuilt 4 KiB page; zero: ZeroLength
 * zero bytes), and extends IO to the head's LastFileOffset if it is
 * shorter.  Does not flush.  *OLD_SIZE / *NEW_SIZE (may be NULL) get IO's
 * size before and after.  0 or -errno.
 */
int vhdx_log_apply(struct vhdx_io *io, const struct vhdx_log_sequence *seq, uint64_t *old_size,
		   uint64_t *new_size);

void vhdx_log_sequence_free(struct vhdx_log_sequence *seq);

/**
 * Called by the VHDX open when the current header's LogGuid is non-zero.
 * Makes L->io show the replayed state: replays in place when the layer is
 * opened writable, otherwise wraps L->io in an overlay and replays into it
 * (refusing instead with VHDX_LAYER_NO_REPLAY, -EROFS).  Sets
 * l->log_replayed and s->log_report.  0 or -errno with the log offset and
 * rule in the message.
 *
 * Policy for a non-zero LogGuid without an acceptable sequence (FORMAT.md
 * 1.5 step 6 leaves it to us): like qemu, nothing is replayed and the open
 * goes on, but s->log_report records "dirty log, no valid sequence: ..."
 * with the reason; a writable open also clears the LogGuid.
 */
int vhdx_log_open_dirty(struct vhdx_layer *l, struct vhdx_state *s, unsigned flags);

#endif
