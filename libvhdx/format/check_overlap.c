/*
 * check_overlap.c - the sweep both BAT checks (format/vhdx_check.c,
 * format/vhd_check.c) run to find blocks that overlap each other (7-Zip's
 * "BAT overlap").
 */
#include "config.h"

#include "format/check.h"

void vhdx_check_overlaps(const uint64_t *allocs, uint64_t n, uint64_t block_len, uint64_t small_len,
			 void (*found)(void *arg, uint64_t victim, uint64_t other), void *arg)
{
	uint64_t end = 0, end_i = 0;

	for (uint64_t k = 0; k < n; k++) {
		uint64_t foff = allocs[2 * k], i = allocs[2 * k + 1] >> 1;
		uint64_t len = (allocs[2 * k + 1] & 1) ? small_len : block_len;
		if (k && foff < end) {
			/* the later entry of a pair is the suspect one; the block reaching further stays the one to beat */
			uint64_t victim = i > end_i ? i : end_i, other = i > end_i ? end_i : i;
			found(arg, victim, other);
			if (victim == end_i) {
				end = foff + len;
				end_i = i;
			}
			continue;
		}
		end = foff + len;
		end_i = i;
	}
}
