/*
 * test_vhdx_header_update.c - rewriting the two VHDX headers
 * (libvhdx/format/vhdx_header_update.c, MS-VHDX 2.2.2.1) on a generator
 * image (tests/lib/vhdx_gen.h) opened writable over the recording backend
 * (tests/lib/crash_io.h).
 *
 * The rule: an update writes the NON-current slot with the current
 * sequence number + 1, flushes, then the other slot with + 2, flushes; so
 * the current header (the valid one with the higher sequence number) is
 * at every instant either the old one or the new one, and the new one from
 * the first flush on.  The test cuts the power after every I/O event under
 * every mode and decodes both slots of what is left.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/crash_io.h"
#include "lib/vhdx_gen.h"
#include "codec/vhdx_codec.h"
#include "format/vhdx_format.h"

#define MiB (1024ull * 1024)

static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_TORN_4096,
					 CRASH_RANDOM };
static const uint8_t new_log_guid[16] = { 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
					  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

/* An image whose slots hold sequence numbers SEQ0 and SEQ1, opened writable over a recording backend. */
struct fixture {
	struct vhdx_gen_image *img;
	struct vhdx_io *cio;
	struct vhdx_layer *l;
	struct vhdx_state *s;
	size_t events0; /* events recorded before the update */
};

static void open_fixture(struct fixture *f, uint64_t seq0, uint64_t seq1)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 2 * MiB, .seed = 41,
				   .header_seq = { seq0, seq1 } };
	struct vhdx_io *borrowed;

	memset(f, 0, sizeof *f);
	assert_ok(vhdx_gen_build(&o, &f->img));
	assert_ok(crash_io_new(f->img->file, f->img->file_len, &f->cio));
	assert_ok(crash_io_borrow(f->cio, &borrowed));
	assert_ok(vhdx_layer_open_io(borrowed, "h.vhdx", VHDX_LAYER_WRITABLE, &f->l));
	f->s = vhdx_state_of(f->l);
	f->events0 = crash_io_events(f->cio);
}

static void close_fixture(struct fixture *f)
{
	assert_ok(vhdx_layer_close(f->l));
	vhdx_io_close(f->cio);
	vhdx_gen_free(f->img);
}

/* Decodes the slots of FILE; returns the index of the current one (-1: none valid). */
static int current_of(const uint8_t *file, struct vhdx_header h[2])
{
	bool ok0 = vhdx_header_decode(file + VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, &h[0]) == 0;
	bool ok1 = vhdx_header_decode(file + VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, &h[1]) == 0;

	if (!ok0 && !ok1)
		return -1;
	if (ok0 && ok1)
		return h[1].seq > h[0].seq;
	return ok1;
}

/* Whether A and B hold the same header apart from the checksum and sequence number. */
static bool same_fields(const struct vhdx_header *a, const struct vhdx_header *b)
{
	return !memcmp(a->file_write_guid, b->file_write_guid, 16) && !memcmp(a->data_write_guid, b->data_write_guid, 16) &&
	       !memcmp(a->log_guid, b->log_guid, 16) && a->log_version == b->log_version && a->version == b->version &&
	       a->log_length == b->log_length && a->log_offset == b->log_offset;
}

/* An update from slots (1, 2): slot 1 is current, so slot 0 is written first (seq 3), then slot 1 (seq 4). */
static void test_header_update_sequence(void **state)
{
	struct fixture f;
	struct vhdx_header old, want, h[2];
	size_t nev;

	open_fixture(&f, 1, 2);
	assert_int_equal(f.s->current, 1);
	old = f.s->headers[1];
	assert_int_equal(old.seq, 2);
	assert_ok(vhdx_header_update(f.l, f.s, new_log_guid, 0));
	/* write slot 0, flush, write slot 1, flush */
	nev = crash_io_events(f.cio) - f.events0;
	assert_int_equal(nev, 4);
	assert_int_equal(f.s->current, 1);
	assert_int_equal(f.s->headers[0].seq, 3);
	assert_int_equal(f.s->headers[1].seq, 4);
	assert_true(f.s->header_valid[0] && f.s->header_valid[1]);
	/* no flag: the GUIDs stay, only the LogGuid changes */
	want = old;
	memcpy(want.log_guid, new_log_guid, 16);
	assert_true(same_fields(&f.s->headers[1], &want));
	assert_true(same_fields(&f.s->headers[0], &want));
	assert_memory_equal(f.l->identity, old.data_write_guid, 16);

	for (size_t after = 0; after <= nev; after++) {
		for (size_t m = 0; m < VHDX_ARRAY_LEN(modes); m++) {
			uint8_t *bytes;
			size_t len;
			int cur;
			assert_ok(crash_io_image(f.cio, f.events0 + after, modes[m], 77u + (unsigned)after, &bytes, &len));
			cur = current_of(bytes, h);
			if (cur < 0)
				fail_msg("crash after event %zu (mode %zu): no valid header left", after, m);
			if (after >= 2) {
				/* the first slot was flushed: the new header is current whatever happened next */
				if (!same_fields(&h[cur], &want) || h[cur].seq < 3)
					fail_msg("crash after event %zu (mode %zu): slot %d (seq %llu) is not the new header",
						 after, m, cur, (unsigned long long)h[cur].seq);
			} else if (!(h[cur].seq == 2 && same_fields(&h[cur], &old)) &&
				   !(h[cur].seq == 3 && same_fields(&h[cur], &want))) {
				fail_msg("crash after event %zu (mode %zu): slot %d (seq %llu) is neither the old nor the new header",
					 after, m, cur, (unsigned long long)h[cur].seq);
			}
			if (after == nev) {
				assert_int_equal(cur, 1);
				assert_int_equal(h[0].seq, 3);
				assert_int_equal(h[1].seq, 4);
			}
			free(bytes);
		}
	}
	close_fixture(&f);
}

/* From slots (5, 4) slot 0 is current: slot 1 is written first (seq 6), then slot 0 (seq 7). */
static void test_header_update_from_slot0(void **state)
{
	struct fixture f;
	struct vhdx_header h[2];
	uint8_t *bytes;
	size_t len;

	open_fixture(&f, 5, 4);
	assert_int_equal(f.s->current, 0);
	assert_ok(vhdx_header_update(f.l, f.s, NULL, 0));
	assert_int_equal(f.s->current, 0);
	assert_int_equal(f.s->headers[1].seq, 6);
	assert_int_equal(f.s->headers[0].seq, 7);
	/* after the first write and its flush, slot 1 (seq 6) is the durable current one */
	assert_ok(crash_io_image(f.cio, f.events0 + 2, CRASH_DROP_ALL, 0, &bytes, &len));
	assert_int_equal(current_of(bytes, h), 1);
	assert_int_equal(h[1].seq, 6);
	assert_int_equal(h[0].seq, 5);
	free(bytes);
	/* the whole update: both slots encode exactly what the state says */
	assert_ok(crash_io_image(f.cio, crash_io_events(f.cio), CRASH_DROP_ALL, 0, &bytes, &len));
	for (int i = 0; i < 2; i++) {
		uint8_t enc[VHDX_HEADER_SIZE];
		vhdx_header_encode(&f.s->headers[i], enc);
		assert_memory_equal(bytes + (i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF), enc, VHDX_HEADER_SIZE);
	}
	free(bytes);
	close_fixture(&f);
}

/* The flags renew exactly the GUIDs they name; a new DataWriteGuid is the layer's new identity. */
static void test_header_update_flags(void **state)
{
	struct fixture f;
	struct vhdx_header old, cur;

	open_fixture(&f, 1, 2);
	old = f.s->headers[f.s->current];
	assert_ok(vhdx_header_update(f.l, f.s, NULL, VHDX_HDR_NEW_FILE_GUID));
	cur = f.s->headers[f.s->current];
	assert_memory_not_equal(cur.file_write_guid, old.file_write_guid, 16);
	assert_memory_equal(cur.data_write_guid, old.data_write_guid, 16);
	assert_memory_equal(cur.log_guid, old.log_guid, 16);
	assert_memory_equal(f.l->identity, old.data_write_guid, 16);

	old = cur;
	assert_ok(vhdx_header_update(f.l, f.s, NULL, VHDX_HDR_NEW_DATA_GUID));
	cur = f.s->headers[f.s->current];
	assert_memory_equal(cur.file_write_guid, old.file_write_guid, 16);
	assert_memory_not_equal(cur.data_write_guid, old.data_write_guid, 16);
	assert_memory_equal(f.l->identity, cur.data_write_guid, 16);
	assert_int_equal(cur.seq, 6);
	/* both slots agree after each update */
	assert_true(same_fields(&f.s->headers[0], &f.s->headers[1]));
	close_fixture(&f);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_header_update_sequence),
	  cmocka_unit_test(test_header_update_from_slot0),
	  cmocka_unit_test(test_header_update_flags))
