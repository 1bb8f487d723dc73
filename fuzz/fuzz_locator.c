/*
 * fuzz_locator.c - libFuzzer target for the parent-locator decoders: the
 * VHDX locator item (codec/vhdx_locator.c, MS-VHDX 2.6.2.6) and the VHD
 * dynamic header's parent name and locator entries (codec/vhd_dynhdr.c,
 * VHD spec 2.4).  Every input goes through all of them:
 *
 *   - vhdx_locator_decode() and vhdx_locator_list() on the whole input; a
 *     list that decodes is encoded again and must list back to the same
 *     pairs (an oracle, so that silent mis-decoding is found too);
 *   - vhdx_vhd_locator_path() on the input for every platform code;
 *   - the input as a 1024-byte VHD dynamic header (zero padded, decoded in
 *     salvage mode so that the checksum does not stop it): the parent name
 *     and the bounds check of each of the 8 locator entries.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "codec/vhd_codec.h"
#include "codec/vhdx_locator.h"
#include "format/format.h"
#include "fuzz.h"

static void check_roundtrip(const struct vhdx_locator_kv *kv, size_t n)
{
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	const char **values = calloc(n ? n : 1, sizeof *values);
	struct vhdx_locator_kv *kv2 = NULL;
	uint8_t *item = NULL;
	size_t itemlen = 0, n2 = 0;

	if (!keys || !values)
		goto out;
	for (size_t i = 0; i < n; i++) {
		keys[i] = kv[i].key;
		values[i] = kv[i].value;
	}
	/* EINVAL (e.g. an empty key) is a legitimate refusal of the encoder */
	if (vhdx_locator_encode(keys, values, n, &item, &itemlen) < 0)
		goto out;
	if (vhdx_locator_list(item, itemlen, &kv2, &n2) < 0)
		FUZZ_FAIL("a locator item made by vhdx_locator_encode does not list: %s", vhdx_errmsg());
	if (n2 != n)
		FUZZ_FAIL("locator round trip: %zu pairs became %zu", n, n2);
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, kv2[i].key) != 0 || strcmp(kv[i].value, kv2[i].value) != 0)
			FUZZ_FAIL("locator round trip: pair %zu changed", i);
out:
	vhdx_locator_kv_free(kv2, n2);
	free(item);
	free(keys);
	free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t codes[] = { VHD_PLAT_NONE, VHD_PLAT_WI2R, VHD_PLAT_WI2K, VHD_PLAT_W2RU,
					  VHD_PLAT_W2KU, VHD_PLAT_MAC, VHD_PLAT_MACX, 0x12345678u };
	struct vhdx_parent_ref ref;
	struct vhdx_locator_kv *kv = NULL;
	struct vhdx_vhd_dynhdr dyn;
	uint8_t hdr[VHD_DYNHDR_SIZE];
	size_t n = 0;

	memset(&ref, 0, sizeof ref);
	if (vhdx_locator_decode(data, size, &ref) == 0) {
		for (size_t i = 0; i < ref.n_paths; i++)
			if (!ref.paths[i].key || !ref.paths[i].value)
				FUZZ_FAIL("decoded locator path %zu without key or value", i);
	}
	vhdx_parent_ref_free(&ref);

	if (vhdx_locator_list(data, size, &kv, &n) == 0)
		check_roundtrip(kv, n);
	vhdx_locator_kv_free(kv, n);

	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		char *path = NULL;

		if (vhdx_vhd_locator_path(codes[i], data, size, &path) == 0 && !path)
			FUZZ_FAIL("vhdx_vhd_locator_path succeeded without a path");
		free(path);
	}

	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, data, size < sizeof hdr ? size : sizeof hdr);
	if (vhdx_vhd_dynhdr_decode(hdr, sizeof hdr, VHDX_VHD_DECODE_SALVAGE, &dyn) == 0) {
		char *name = NULL;
		uint64_t data_end = size; /* the input stands for the whole file */

		if (vhdx_vhd_parent_name(&dyn, &name) == 0)
			free(name);
		for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
			const struct vhdx_vhd_locator *e = &dyn.locators[i];

			/* the same sequence as format/vhd.c: check bounds, then decode the data */
			/* an empty entry is never read, so its offset is not checked */
			if (vhdx_vhd_locator_check(&dyn, i, data_end) == 0 && e->code != 0 && e->data_length) {
				char *path = NULL;

				if (e->data_offset > size || e->data_length > size - e->data_offset)
					FUZZ_FAIL("locator entry %u passed the bounds check but lies outside the file", i);

				if (vhdx_vhd_locator_path(e->code, data + e->data_offset, e->data_length, &path) == 0)
					free(path);
			}
		}
	}
	return 0;
}
