/*
 * internal.h - helpers shared by the layers that know the public API:
 * base/base.h (error recording, overflow-checked arithmetic, buffers) and
 * the versioned structs of libvhdx.h.  Nothing here does I/O.  The codecs
 * include base/base.h alone.
 */
#ifndef VHDX_INTERNAL_H
#define VHDX_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhdx.h"
#include "base/base.h"

/*
 * Versioned structs of the public API begin with `size_t struct_size`, so
 * that a program built against an older header passes a shorter struct.
 * vhdx_struct_copy_in copies the caller's IN (NULL: keep the defaults) over
 * the defaults already in OUT (OUT_SIZE bytes) and sets OUT's struct_size to
 * OUT_SIZE; EINVAL naming FN and WHAT when IN's struct_size is under
 * MIN_SIZE (the oldest version the API accepts; at least the size_t).
 * vhdx_struct_copy_out copies the fields of SRC after struct_size into the
 * caller's DST, as many as DST holds.
 */
int vhdx_struct_copy_in(void *out, size_t out_size, const void *in, size_t min_size, const char *fn, const char *what);
void vhdx_struct_copy_out(void *dst, const void *src, size_t src_size);
/*
 * The options of a call whose defaults are all zero: OUT (OUT_SIZE bytes)
 * zeroed, its struct_size set, then the caller's IN copied over it as by
 * vhdx_struct_copy_in (FN names the call in the message).
 */
int vhdx_options_in(void *out, size_t out_size, const void *in, size_t min_size, const char *fn);

#endif /* VHDX_INTERNAL_H */
