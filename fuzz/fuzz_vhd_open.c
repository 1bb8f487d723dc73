/*
 * fuzz_vhd_open.c - libFuzzer target for opening and reading a VHD
 * (format/vhd.c and codec/vhd_footer.c, vhd_dynhdr.c: footer and its copy,
 * dynamic header, parent locators, BAT, sector bitmaps; the VHD spec) and
 * its write path on a writable open (format/vhd_write.c).  The input is an
 * image, raw or in the sparse form of fuzz/image.c; its seeds are VHD files
 * (the code is the same as fuzz_vhdx_open: both formats bid on every input,
 * the seeds steer each target to its own).  What runs on it:
 * fuzz_image_run() (fuzz.h).
 */
#include "config.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_run(data, size);
	return 0;
}
