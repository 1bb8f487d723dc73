/*
 * vhdx_maint_space.c - the free space of a file being compacted (L2),
 * shared by vhdx_compact.c and vhd_compact.c: the spans the file's
 * structures and blocks use, and the aligned gaps between them that
 * blocks may move down into.
 */
#include "config.h"

#include "libvhdx.h"
#include "base/base.h"
#include "format/vhdx_maint.h"

int vhdx_span_cmp(const void *a, const void *b)
{
	const struct vhdx_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

size_t vhdx_maint_gaps(const struct vhdx_span *used, size_t nu, uint64_t align, struct vhdx_span *gaps,
		       uint64_t *end_out)
{
	uint64_t end = 0;
	size_t ng = 0;

	for (size_t i = 0; i < nu; i++) {
		/* both ends aligned: a gap starts after one span and ends before the next */
		uint64_t gs = vhdx_round_up(end, align), ge = used[i].start - used[i].start % align;

		if (ge > gs)
			gaps[ng++] = (struct vhdx_span){ gs, ge };
		end = VHDX_MAX(end, used[i].end);
	}
	*end_out = end;
	return ng;
}
