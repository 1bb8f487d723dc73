/*
 * test_vhdx_journal.c - the VHDX log WRITER (libvhdx/format/vhdx_journal.c)
 * against the log reader (format/vhdx_log.c), on a generator image
 * (tests/lib/vhdx_gen.h) opened writable in the mem backend.
 *
 * The writer's promise is that an entry, once committed, can redo its
 * pages: so each test takes the file as the commit left it, puts back the
 * old bytes where the pages landed (a crash after the entry's flush, before
 * the pages were durable), replays the log with vhdx_log_find() and
 * vhdx_log_apply(), and compares the WHOLE file with the one the commit
 * left.  A torn entry (only its first 4 KiB written) must be ignored: the
 * replay then gives the file as the entry before it left it.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/vhdx_gen.h"
#include "codec/vhdx_codec.h"
#include "format/vhdx_format.h"
#include "format/vhdx_journal.h"
#include "format/vhdx_log.h"

#define MiB (1024ull * 1024)
#define PAGE 4096u

/* A writable layer over a dynamic 4 MiB generator image with data in blocks 0 and 3. */
struct fixture {
	struct vhdx_gen_image *img;
	struct vhdx_layer *l;
	struct vhdx_state *s;
	struct vhdx_journal j;
};

static void open_fixture(struct fixture *f)
{
	static const struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
	};
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 4 * MiB, .seed = 31,
				   .blocks = blocks, .n_blocks = VHDX_ARRAY_LEN(blocks) };
	struct vhdx_io *io;

	memset(f, 0, sizeof *f);
	assert_ok(vhdx_gen_build(&o, &f->img));
	assert_ok(vhdx_gen_to_io(f->img, "j.vhdx", &io));
	assert_ok(vhdx_layer_open_io(io, "j.vhdx", VHDX_LAYER_WRITABLE, &f->l));
	f->s = vhdx_state_of(f->l);
}

static void close_fixture(struct fixture *f)
{
	assert_ok(vhdx_layer_close(f->l));
	vhdx_gen_free(f->img);
}

/* A copy of the layer's file as it is now; *LEN gets its size. */
static uint8_t *snapshot(struct fixture *f, size_t *len)
{
	const uint8_t *d = vhdx_io_mem_data(f->l->io, len);
	uint8_t *copy = malloc(*len);

	assert_non_null(copy);
	memcpy(copy, d, *len);
	return copy;
}

/* A page of bytes that differ from everything the image holds (BYTE, then its offset in the page). */
static uint8_t *page_of(uint8_t byte)
{
	uint8_t *p = malloc(PAGE);

	assert_non_null(p);
	for (unsigned i = 0; i < PAGE; i++)
		p[i] = (uint8_t)(byte ^ (i * 13));
	return p;
}

/* Puts OLD's bytes back in FILE where PAGES landed: the pages of a commit that never became durable. */
static void unapply(uint8_t *file, const uint8_t *old, const struct vhdx_log_page *pages, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t len = pages[i].data ? PAGE : pages[i].zero_length;
		memcpy(file + pages[i].file_offset, old + pages[i].file_offset, len);
	}
}

/*
 * Replays the log of FILE (LEN bytes, its current header read from the
 * file) and returns the file afterwards (malloc'd; same LEN); *ENTRIES gets
 * the number of entries of the active sequence.
 */
static uint8_t *replay(const uint8_t *file, size_t len, size_t *entries)
{
	struct vhdx_header h[2];
	struct vhdx_log_sequence seq;
	struct vhdx_io *io;
	const uint8_t *d;
	uint8_t *out;
	size_t out_len;
	int cur;

	assert_ok(vhdx_header_decode(file + VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, &h[0]));
	assert_ok(vhdx_header_decode(file + VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, &h[1]));
	cur = h[1].seq > h[0].seq;
	assert_ok(vhdx_io_mem_new(file, len, "replay", &io));
	memset(&seq, 0, sizeof seq);
	assert_ok(vhdx_log_find(io, &h[cur], &seq));
	*entries = seq.n;
	if (seq.n)
		assert_ok(vhdx_log_apply(io, &seq, NULL, NULL));
	vhdx_log_sequence_free(&seq);
	d = vhdx_io_mem_data(io, &out_len);
	assert_int_equal(out_len, len);
	out = malloc(len);
	assert_non_null(out);
	memcpy(out, d, len);
	vhdx_io_close(io);
	return out;
}

/* start: a fresh LogGuid in the current header, written through the header protocol; finish clears it. */
static void test_journal_session_headers(void **state)
{
	static const uint8_t zero[16];
	struct fixture f;
	uint64_t seq0;

	open_fixture(&f);
	seq0 = f.s->headers[f.s->current].seq;
	assert_ok(vhdx_journal_start(f.l, f.s, &f.j));
	assert_true(f.j.active);
	assert_int_equal(f.j.seq, 1);
	assert_int_equal(f.j.log_off, f.img->log_offset);
	assert_int_equal(f.j.log_len, f.img->log_length);
	assert_memory_not_equal(f.j.log_guid, zero, 16);
	assert_memory_equal(f.s->headers[f.s->current].log_guid, f.j.log_guid, 16);
	assert_int_equal(f.s->headers[f.s->current].seq, seq0 + 2);
	assert_ok(vhdx_journal_finish(f.l, f.s, &f.j));
	assert_false(f.j.active);
	assert_memory_equal(f.s->headers[f.s->current].log_guid, zero, 16);
	assert_int_equal(f.s->headers[f.s->current].seq, seq0 + 4);
	/* a second finish does nothing */
	assert_ok(vhdx_journal_finish(f.l, f.s, &f.j));
	assert_int_equal(f.s->headers[f.s->current].seq, seq0 + 4);
	close_fixture(&f);
}

/* A log too small for one entry and its header sector is refused before anything is written. */
static void test_journal_log_too_small(void **state)
{
	struct fixture f;
	size_t len;
	uint8_t *before, *after;

	open_fixture(&f);
	f.s->headers[f.s->current].log_length = PAGE;
	before = snapshot(&f, &len);
	assert_fails(vhdx_journal_start(f.l, f.s, &f.j), -ENOTSUP,
		     "the log of 4096 bytes is too small to journal metadata updates");
	assert_false(f.j.active);
	after = snapshot(&f, &len);
	assert_memory_equal(after, before, len);
	f.s->headers[f.s->current].log_length = f.img->log_length;
	free(before);
	free(after);
	close_fixture(&f);
}

/* Two commits, then their pages lost: the replay redoes both and gives the same bytes; a torn second entry is ignored. */
static void test_journal_replay_and_torn(void **state)
{
	struct fixture f;
	uint8_t *p1 = page_of(0x11), *p2 = page_of(0x22), *p3 = page_of(0x33);
	const enum vhdx_tag tags[2] = { VHDX_TAG_BAT, VHDX_TAG_PAYLOAD };
	struct vhdx_log_page c1[2], c2[2];
	uint8_t *start, *after1, *after2, *crashed, *got;
	size_t len, n, size2;
	uint32_t at2;

	open_fixture(&f);
	assert_ok(vhdx_journal_start(f.l, f.s, &f.j));
	start = snapshot(&f, &len);
	/* entry 1: a data page over the BAT's first page and 8 KiB of zeros over block 0's data */
	c1[0] = (struct vhdx_log_page){ .file_offset = f.img->bat_offset, .data = p1 };
	c1[1] = (struct vhdx_log_page){ .file_offset = f.img->block_foff[0] + PAGE, .zero_length = 2 * PAGE };
	assert_ok(vhdx_journal_commit(f.l, &f.j, c1, tags, 2, len));
	after1 = snapshot(&f, &len);
	assert_memory_equal(after1 + f.img->bat_offset, p1, PAGE);
	assert_int_equal(f.j.head, vhdx_log_entry_size(c1, 2));
	assert_int_equal(f.j.tail, 0);
	/* entry 2: the same BAT page again and a page of block 3; entry 1 is still needed (no flush between) */
	at2 = f.j.head;
	c2[0] = (struct vhdx_log_page){ .file_offset = f.img->bat_offset, .data = p2 };
	c2[1] = (struct vhdx_log_page){ .file_offset = f.img->block_foff[3], .data = p3 };
	size2 = vhdx_log_entry_size(c2, 2);
	assert_ok(vhdx_journal_commit(f.l, &f.j, c2, tags, 2, len));
	after2 = snapshot(&f, &len);
	assert_int_equal(f.j.tail, 0);
	assert_int_equal(f.j.head, at2 + size2);
	assert_int_equal(f.j.seq, 3);
	assert_int_equal(f.j.entries, 2);
	assert_int_equal(f.j.pages, 4);

	/* neither commit's pages durable: the replay of both entries gives what the two commits left */
	crashed = malloc(len);
	memcpy(crashed, after2, len);
	unapply(crashed, start, c2, 2);
	unapply(crashed, start, c1, 2);
	assert_memory_not_equal(crashed + f.img->bat_offset, after2 + f.img->bat_offset, PAGE);
	got = replay(crashed, len, &n);
	assert_int_equal(n, 2);
	assert_memory_equal(got, after2, len);
	free(got);

	/* entry 2 torn after its first 4 KiB: ignored, the replay gives what entry 1 left (and the torn 4 KiB) */
	memcpy(crashed + f.img->log_offset + at2 + PAGE, start + f.img->log_offset + at2 + PAGE, size2 - PAGE);
	got = replay(crashed, len, &n);
	assert_int_equal(n, 1);
	memcpy(after1 + f.img->log_offset + at2, after2 + f.img->log_offset + at2, PAGE);
	assert_memory_equal(got, after1, len);
	free(got);

	free(crashed);
	free(start);
	free(after1);
	free(after2);
	free(p1);
	free(p2);
	free(p3);
	assert_ok(vhdx_journal_finish(f.l, f.s, &f.j));
	close_fixture(&f);
}

/*
 * With the file flushed after each commit, each entry is its own tail and
 * the ring is reused: 200 entries of 8 KiB go round a 1 MiB log, none
 * straddles its end, and the last one still replays to the same bytes.
 */
static void test_journal_ring_wraps(void **state)
{
	const enum vhdx_tag tag = VHDX_TAG_BAT;
	struct fixture f;
	struct vhdx_log_page pg;
	uint8_t *before = NULL, *after, *got, *p = NULL;
	size_t len, n, esize;
	uint32_t at = 0;
	bool wrapped = false;

	open_fixture(&f);
	assert_ok(vhdx_journal_start(f.l, f.s, &f.j));
	for (unsigned i = 0; i < 200; i++) {
		free(p);
		p = page_of((uint8_t)i);
		pg = (struct vhdx_log_page){ .file_offset = f.img->bat_offset + PAGE * (i % 4), .data = p };
		esize = vhdx_log_entry_size(&pg, 1);
		assert_int_equal(esize, 2 * PAGE);
		free(before);
		before = snapshot(&f, &len);
		at = f.j.head;
		assert_ok(vhdx_journal_commit(f.l, &f.j, &pg, &tag, 1, len));
		assert_int_equal(f.j.tail, at);
		assert_true(at + esize <= f.img->log_length);
		if (f.j.head < at || f.j.head == 0)
			wrapped = true;
		assert_ok(vhdx_io_flush(f.l->io));
		vhdx_journal_file_flushed(&f.j);
	}
	assert_true(wrapped);
	assert_int_equal(f.j.entries, 200);
	/* 200 * 8 KiB = 1600 KiB: the last entry sits 1600 - 1024 KiB into the ring */
	assert_int_equal(at, 200 * 2 * PAGE - f.img->log_length - 2 * PAGE);
	after = snapshot(&f, &len);
	unapply(after, before, &pg, 1);
	got = replay(after, len, &n);
	assert_int_equal(n, 1);
	free(after);
	after = snapshot(&f, &len);
	assert_memory_equal(got, after, len);
	free(got);
	free(after);
	free(before);
	free(p);
	assert_ok(vhdx_journal_finish(f.l, f.s, &f.j));
	close_fixture(&f);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_journal_session_headers),
	  cmocka_unit_test(test_journal_log_too_small),
	  cmocka_unit_test(test_journal_replay_and_torn),
	  cmocka_unit_test(test_journal_ring_wraps))
