/*
 * fuzz_vhdx_log.c - libFuzzer target for the VHDX log (MS-VHDX 2.3): the
 * entry codec (codec/vhdx_log_codec.c), the search for the active sequence
 * (vhdx_log_find) and its replay (vhdx_log_apply) into an in-memory overlay
 * (io/overlay.c), as a read-only open of a dirty image does.  The input is
 * an image, raw or in the sparse form of fuzz/image.c (seeds: images with a
 * log to replay, FUZZ_FIX_LOG set so that mutated entries keep their CRC).
 *
 * For each of the two headers that decodes, the log it names is searched;
 * a sequence found is replayed into an overlay over a second io of the same
 * input, and then every page the sequence writes must read back as its
 * last data descriptor (or zero descriptor) says: the pages are rebuilt
 * here with vhdx_log_entry_page(), in replay order, independently of
 * vhdx_log_apply's loop.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "codec/endian.h"
#include "codec/vhdx_codec.h"
#include "format/vhdx_log.h"
#include "fuzz.h"
#include "lib/gen_bytes.h"

#define MAX_CHECKED_PAGES 256

struct page {
	uint64_t foff;
	uint8_t bytes[VHDX_LOG_SECTOR];
};

/* Records what the page at FOFF must hold after the replay (the newest wins). */
static void model_set(struct page *pages, size_t *n, uint64_t foff, const uint8_t *bytes)
{
	size_t i;

	for (i = 0; i < *n && pages[i].foff != foff; i++)
		;
	if (i == *n) {
		if (*n == MAX_CHECKED_PAGES)
			return;
		(*n)++;
	}
	pages[i].foff = foff;
	if (bytes)
		memcpy(pages[i].bytes, bytes, VHDX_LOG_SECTOR);
	else
		memset(pages[i].bytes, 0, VHDX_LOG_SECTOR);
}

static void check_replay(const struct vhdx_log_sequence *seq, struct vhdx_io *ov)
{
	struct page *pages = calloc(MAX_CHECKED_PAGES, sizeof *pages);
	uint8_t got[VHDX_LOG_SECTOR];
	size_t n = 0;

	if (!pages)
		return;
	for (size_t k = 0; k < seq->n; k++) {
		const struct vhdx_log_seq_entry *se = &seq->entries[k];

		for (uint32_t d = 0; d < se->e.desc_count; d++) {
			const struct vhdx_log_desc *desc = &se->e.descs[d];

			if (!desc->is_zero) {
				uint8_t page[VHDX_LOG_SECTOR];

				vhdx_log_entry_page(se->bytes, &se->e, desc, page);
				model_set(pages, &n, desc->file_offset, page);
				continue;
			}
			/* a zero descriptor: pages already modelled inside it become zeros */
			for (size_t i = 0; i < n; i++)
				if (pages[i].foff >= desc->file_offset &&
				    pages[i].foff - desc->file_offset < desc->zero_length)
					memset(pages[i].bytes, 0, VHDX_LOG_SECTOR);
			if (desc->zero_length <= 4 * VHDX_LOG_SECTOR)
				for (uint64_t z = 0; z < desc->zero_length; z += VHDX_LOG_SECTOR)
					model_set(pages, &n, desc->file_offset + z, NULL);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (vhdx_io_pread(ov, got, sizeof got, pages[i].foff, VHDX_TAG_OTHER) < 0)
			FUZZ_FAIL("replayed page at 0x%llx does not read: %s", (unsigned long long)pages[i].foff,
				  vhdx_errmsg());
		if (memcmp(got, pages[i].bytes, sizeof got) != 0)
			FUZZ_FAIL("replayed page at 0x%llx differs from its last descriptor",
				  (unsigned long long)pages[i].foff);
	}
	free(pages);
}

static void one_header(const uint8_t *data, size_t size, struct vhdx_io *io, uint64_t hoff)
{
	uint8_t hb[VHDX_HEADER_SIZE];
	struct vhdx_header h;
	struct vhdx_log_sequence seq;
	struct vhdx_io *io2, *ov;
	uint64_t old_size, new_size;
	uint8_t choice;
	int ret;

	if (vhdx_io_pread(io, hb, sizeof hb, hoff, VHDX_TAG_HEADER) < 0 || vhdx_header_decode(hb, sizeof hb, &h) < 0)
		return;
	memset(&seq, 0, sizeof seq);
	ret = vhdx_log_find(io, &h, &seq);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "header at 0x%llx: find %d, %zu entries%s%s\n", (unsigned long long)hoff, ret, seq.n,
			seq.diag ? ": " : "", seq.diag ? seq.diag : "");
	if (ret == 0 && seq.n > 0) {
		for (size_t k = 0; k < seq.n; k++)
			if (seq.entries[k].e.entry_length == 0 || !seq.entries[k].bytes)
				FUZZ_FAIL("entry %zu of the active sequence is empty", k);
		if (fuzz_image_io(data, size, &io2, &choice) == 0 && vhdx_io_overlay_new(io2, &ov) == 0) {
			ret = vhdx_log_apply(ov, &seq, &old_size, &new_size);
			if (getenv("FUZZ_VERBOSE"))
				fprintf(stderr, "apply: %d %s\n", ret, ret < 0 ? vhdx_errmsg() : "");
			if (ret == 0)
				check_replay(&seq, ov);
			vhdx_io_close(ov);
		}
	}
	vhdx_log_sequence_free(&seq);
}

/*
 * A raw input (no sparse magic) is also one log entry on its own, decoded
 * as a log of 1 MiB at 1 MiB would: LogGuid taken from the entry itself, and
 * a valid CRC-32C put in, so that the descriptor and data-sector checks and
 * the page rebuild are reached.
 */
static void one_entry(const uint8_t *data, size_t size)
{
	struct vhdx_log_entry e;
	uint8_t *buf, guid[16], page[VHDX_LOG_SECTOR];

	if (size < VHDX_LOG_ENTRY_HEADER_LEN || size > VHDX_MiB)
		return;
	buf = malloc(size);
	if (!buf)
		return;
	memcpy(buf, data, size);
	memcpy(guid, buf + 32, sizeof guid);
	memset(&e, 0, sizeof e);
	if (vhdx_log_entry_header_decode(buf, size, VHDX_MiB, guid, &e) == 0 && e.entry_length <= size) {
		uint32_t elen = e.entry_length;

		gen_fix_crc32c(buf, elen); /* the harness's own CRC, not the code under test's */
		memset(&e, 0, sizeof e);
		if (vhdx_log_entry_decode(buf, elen, VHDX_MiB, VHDX_MiB, guid, &e) == 0) {
			for (uint32_t d = 0; d < e.desc_count; d++)
				if (!e.descs[d].is_zero)
					vhdx_log_entry_page(buf, &e, &e.descs[d], page);
			vhdx_log_entry_free(&e);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhdx_io *io;
	uint8_t choice;

	if (size < 4 || memcmp(data, FUZZ_SPARSE_MAGIC, 4) != 0)
		one_entry(data, size);

	if (fuzz_image_io(data, size, &io, &choice) < 0)
		return 0;
	one_header(data, size, io, VHDX_HEADER1_OFF);
	one_header(data, size, io, VHDX_HEADER2_OFF);
	vhdx_io_close(io);
	return 0;
}
