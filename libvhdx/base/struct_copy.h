/*
 * struct_copy.h - the versioned structs of the public API (api_struct.c).
 * They begin with `size_t struct_size`, so that a program built against an
 * older header passes a shorter struct; these two copy between the
 * caller's size and ours.  Plain bytes: no type of libvhdx.h is named, so
 * any layer may include this.
 */
#ifndef VHDX_BASE_STRUCT_COPY_H
#define VHDX_BASE_STRUCT_COPY_H

#include <stddef.h>

/*
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

#endif /* VHDX_BASE_STRUCT_COPY_H */
