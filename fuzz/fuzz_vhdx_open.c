/*
 * fuzz_vhdx_open.c - libFuzzer target for opening and reading a VHDX
 * (format/vhdx.c and the codecs under it: file identifier, headers, region
 * tables, metadata, BAT, sector bitmaps; MS-VHDX 2.2-2.6), a dirty log's
 * replay into the read-only overlay, and the write path on a writable open
 * (format/vhdx_write.c, the journal).  The input is an image, raw or in the
 * sparse form of fuzz/image.c; its seeds are VHDX files.  What runs on it:
 * fuzz_image_run() (fuzz.h).
 */
#include "config.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_run(data, size);
	return 0;
}
