/*
 * fuzz.h - what the libFuzzer targets of fuzz/ share: the entry point they
 * define, FUZZ_FAIL for a broken invariant (a crash libFuzzer records), and
 * the expansion of the image targets' compact "sparse" inputs (fuzz/image.c).
 */
#ifndef VHDX_FUZZ_H
#define VHDX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/io.h"
#include "format/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the library does not hold: report and abort (a crash for libFuzzer). */
#define FUZZ_FAIL(...)                                                   \
	do {                                                             \
		fprintf(stderr, "FUZZ_FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                            \
		fputc('\n', stderr);                                     \
		abort();                                                 \
	} while (0)

/* The sparse input of the image targets (fuzz/image.c). */
#define FUZZ_SPARSE_MAGIC "VXFZ"
#define FUZZ_FIX_VHDX 0x01u /* valid CRC-32C for VHDX headers and region tables */
#define FUZZ_FIX_LOG 0x02u  /* valid CRC-32C for the VHDX log entries the headers point to */
#define FUZZ_FIX_VHD 0x04u  /* valid checksums for the VHD footer, its copy and the dynamic header */
#define FUZZ_WRITE 0x08u    /* image targets: a writable open (over an overlay) and writes */
/*
 * Larger file sizes are cut to 256 MiB: the readers hold tables whose size
 * is bounded by the file's (a VHD BAT of max_table_entries inside the file,
 * read whole, as every reader does), so a sparse input claiming a 1 TiB file
 * would only report that design bound as out-of-memory over and over.
 */
#define FUZZ_SPARSE_MAX_SIZE (256ull << 20)

/**
 * Makes the io an image target opens from its input DATA[0..SIZE): a mem
 * backend holding a copy of a raw input, or the sparse file of an input
 * with the magic (read-only; writes need an overlay on top).  *CHOICE gets
 * the target's choice byte (0 for raw inputs).  0 or -ENOMEM.
 */
int fuzz_image_io(const uint8_t *data, size_t size, struct vhdx_io **out, uint8_t *choice);
/**
 * The image targets' run: opens the input (read-only, or writable over an
 * overlay with FUZZ_WRITE), walks the map from the start, from a place the
 * choice byte picks and at the last byte, reads the data extents, and on a
 * writable open writes 4 KiB there and checks that it maps and reads back.
 * Choice bits 0x80 and 0x40 open with VHDX_LAYER_SALVAGE / _ALLOW_INCOMPLETE.
 */
void fuzz_image_run(const uint8_t *data, size_t size);
/** The flags byte of a sparse input (0 for a raw one). */
static inline uint8_t fuzz_image_flags(const uint8_t *data, size_t size)
{
	return size >= 16 && data[0] == 'V' && data[1] == 'X' && data[2] == 'F' && data[3] == 'Z' ? data[4] : 0;
}

#endif /* VHDX_FUZZ_H */
