/*
 * crash_check.c - the workload record and the crash-image rule of the
 * crash tests (see crash_check.h).
 */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "format/format.h"
#include "crash_check.h"
#include "crash_io.h"

void crash_fill(uint8_t *p, uint32_t id, uint64_t first_sector, uint64_t nsect)
{
	for (uint64_t k = 0; k < nsect; k++)
		for (unsigned w = 0; w < CRASH_SECTOR / 8; w++) {
			uint32_t a = id, b = (uint32_t)(first_sector + k) ^ (w * 2654435761u);
			memcpy(p + k * CRASH_SECTOR + w * 8, &a, 4);
			memcpy(p + k * CRASH_SECTOR + w * 8 + 4, &b, 4);
		}
}

bool crash_sector_is(const uint8_t *p, uint32_t id, uint64_t s)
{
	uint8_t want[CRASH_SECTOR];

	if (id == 0)
		memset(want, 0, sizeof want);
	else
		crash_fill(want, id, s, 1);
	return memcmp(p, want, CRASH_SECTOR) == 0;
}

unsigned crash_rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) & 0x7fff;
}

size_t crash_acked(const struct crash_op *ops, size_t nops, size_t after, const uint32_t *base_ids, uint32_t *acked,
		   uint64_t nsect)
{
	size_t done = 0; /* ops before this index are acknowledged */

	for (size_t i = 0; i < nops; i++)
		if (ops[i].kind == CRASH_OP_FLUSH && ops[i].ev_end <= after)
			done = i;
	for (uint64_t s = 0; s < nsect; s++)
		acked[s] = base_ids ? base_ids[s] : 0;
	for (size_t i = 0; i < done; i++)
		if (ops[i].kind == CRASH_OP_WRITE)
			for (uint64_t s = ops[i].voff / CRASH_SECTOR; s < (ops[i].voff + ops[i].len) / CRASH_SECTOR; s++)
				acked[s] = ops[i].id;
	return done;
}

int64_t crash_bad_sector(const uint8_t *disk, uint64_t nsect, const uint32_t *acked, const struct crash_op *ops,
			 size_t nops, size_t done, size_t after)
{
	for (uint64_t s = 0; s < nsect; s++) {
		const uint8_t *p = disk + s * CRASH_SECTOR;
		bool ok = crash_sector_is(p, acked[s], s);

		/* or the data of any write that was not acknowledged yet */
		for (size_t i = done; !ok && i < nops; i++)
			if (ops[i].kind == CRASH_OP_WRITE && ops[i].ev_start < after && ops[i].voff / CRASH_SECTOR <= s &&
			    s < (ops[i].voff + ops[i].len) / CRASH_SECTOR)
				ok = crash_sector_is(p, ops[i].id, s);
		if (!ok)
			return (int64_t)s;
	}
	return -1;
}

int crash_close_as_flush(struct vhdx_layer *l, struct vhdx_io *cio, struct crash_op *op)
{
	int ret;

	op->kind = CRASH_OP_FLUSH;
	op->ev_start = crash_io_events(cio);
	ret = vhdx_layer_close(l);
	op->ev_end = crash_io_events(cio);
	return ret;
}
