/*
 * internal.h - what the L4 files at the root of libvhdx/ (and the I/O
 * stack, the chains and the maintenance drivers) share: the public header,
 * base/base.h (error recording, overflow-checked arithmetic, buffers) and
 * base/struct_copy.h (the versioned structs of libvhdx.h).  Nothing here
 * does I/O.  The codecs and the formats include base/ headers directly.
 */
#ifndef VHDX_INTERNAL_H
#define VHDX_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhdx.h"
#include "base/base.h"
#include "base/struct_copy.h"

#endif /* VHDX_INTERNAL_H */
