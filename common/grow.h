/*
 * grow.h - growing a heap array by doubling (header-only; shared by the
 * library and the programs, not part of the API).
 */
#ifndef COMMON_GROW_H
#define COMMON_GROW_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Makes the array at *ARRP (ARRP is the address of the caller's pointer;
 * *CAP items of ELEM bytes allocated) hold at least NEED items, doubling
 * its capacity from FIRST.  Returns 0, or -ENOMEM (no memory, or the size
 * overflows) leaving the pointer and *CAP as they were.  Items past the old
 * capacity are not initialised.
 */
static inline int grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t ncap = *cap ? *cap : (first ? first : 1);
	void *old, *p;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (elem && ncap > SIZE_MAX / elem)
		return -ENOMEM;
	/* through memcpy: ARRP points at a pointer of the caller's own type */
	memcpy(&old, arrp, sizeof old);
	p = realloc(old, ncap * elem);
	if (!p)
		return -ENOMEM;
	memcpy(arrp, &p, sizeof p);
	*cap = ncap;
	return 0;
}

#endif
