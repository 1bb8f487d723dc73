/*
 * crash_check.h - what a crash test of a write workload checks against:
 * the record of the workload's writes and flushes (with the crash_io event
 * numbers around each), the data pattern each write leaves, and the sectors
 * a crash after a given event must hold.  The rule (DESIGN.md, crash
 * safety): every sector holds what the last acknowledged write (one before
 * a completed flush) put there, or the data of a write still in flight.
 */
#ifndef VHDX_TEST_CRASH_CHECK_H
#define VHDX_TEST_CRASH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRASH_SECTOR 512

enum crash_op_kind { CRASH_OP_WRITE, CRASH_OP_FLUSH };

/* One step of a workload: a write of LEN bytes at VOFF with data ID, or a flush. */
struct crash_op {
	enum crash_op_kind kind;
	uint64_t voff, len;
	uint32_t id;             /* writes: data identity (never 0) */
	size_t ev_start, ev_end; /* crash_io_events() before and after it */
};

/** Fills NSECT sectors from FIRST_SECTOR with write ID's data: (ID, sector ^ word * 2654435761) in every 8 bytes. */
void crash_fill(uint8_t *p, uint32_t id, uint64_t first_sector, uint64_t nsect);
/** True when the sector P holds write ID's data for sector S (ID 0: zeros). */
bool crash_sector_is(const uint8_t *p, uint32_t id, uint64_t s);
/** The next number (0..32767) of the workload's own generator (a plain LCG, so runs repeat). */
unsigned crash_rnd(unsigned *seed);

/**
 * Fills ACKED[0..NSECT) with the id each sector must hold after a crash
 * after event AFTER: the last write acknowledged by a completed flush, else
 * BASE_IDS[s] (NULL: 0, zeros).  Returns the index of that flush in OPS:
 * the writes from there on may be in flight.
 */
size_t crash_acked(const struct crash_op *ops, size_t nops, size_t after, const uint32_t *base_ids, uint32_t *acked,
		   uint64_t nsect);

/**
 * The first sector of DISK[0..NSECT) that holds neither ACKED[s] nor the
 * data of a write of OPS[DONE..NOPS) started before event AFTER; -1 when
 * every sector is right.
 */
int64_t crash_bad_sector(const uint8_t *disk, uint64_t nsect, const uint32_t *acked, const struct crash_op *ops,
			 size_t nops, size_t done, size_t after);

struct vhdx_io;
struct vhdx_layer;

/**
 * Closes the workload's layer L and records it in OP as its last flush (a
 * clean close flushes), with CIO's event numbers around it.  Returns what
 * the close returned.
 */
int crash_close_as_flush(struct vhdx_layer *l, struct vhdx_io *cio, struct crash_op *op);

#endif
