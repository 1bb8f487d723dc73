/*
 * test_vhdx_log.c - format/vhdx_log.c (MS-VHDX 2.3.2/2.3.3): the
 * active sequence of a log and its replay, on VHDX images from the test
 * generator (tests/lib/vhdx_gen.h) with hand-placed log entries.
 *
 * Each entry writes recognisable pages ("tag" patterns) into a scratch
 * area of the file that nothing else uses (or into the BAT), so the bytes
 * after a replay say exactly which entries were applied and in which order.
 * Read-only opens must show them through the overlay and leave the
 * underlying file byte-identical; writable opens must write them in place
 * and leave LogGuid zero in both headers.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/vhdx_gen.h"
#include "libvhdx.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_log_codec.h"
#include "format/format.h"
#include "format/vhdx_format.h"
#include "format/vhdx_log.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define FILE_LEN (8 * MiB)
#define SCR (6 * MiB) /* scratch area: referenced by no structure of the image */
#define PG 4096u

static const uint8_t GUID[16] = { 0xa1, 0xb2, 0xc3, 0xd4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const uint8_t OTHER_GUID[16] = { 0xee, 0xb2, 0xc3, 0xd4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

/* A page full of a pattern of TAG (never all zero). */
static void tag_page(uint8_t *p, unsigned tag)
{
	for (unsigned i = 0; i < PG; i++)
		p[i] = (uint8_t)(tag * 37 + i * 11 + (i >> 9) + 1) | 1;
}

/* A dirty image: 8 MiB disk, 1 MiB blocks, block 0 present, file padded to 8 MiB, LogGuid GUID. */
static struct vhdx_gen_image *build_log(uint32_t log_length, bool no_log)
{
	struct vhdx_gen_block blocks[] = { { .blk = 0, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 8 * MiB, .blocks = blocks, .n_blocks = 1, .seed = 5,
				   .min_file_size = FILE_LEN, .log_length = log_length };
	struct vhdx_gen_image *img = NULL;

	memcpy(o.log_guid, GUID, 16);
	if (no_log)
		o.damage = VHDX_GEN_NO_LOG;
	if (vhdx_gen_build(&o, &img) < 0 || !img)
		fail_msg("the generator refused the options");
	if (log_length <= 2 * MiB) /* larger logs push the rest of the file (and SCR) further out */
		assert_true(img->file_len == FILE_LEN);
	return img;
}

static struct vhdx_gen_image *build(void)
{
	return build_log(0, false);
}

/* Each test's fixture: build()'s image in *state, freed after the test. */
static int setup_image(void **state)
{
	*state = build();
	return 0;
}

static int free_image(void **state)
{
	vhdx_gen_free(*state);
	return 0;
}

/* For a test that needs a fresh or another image: the fixture's becomes IMG. */
static struct vhdx_gen_image *replace_image(void **state, struct vhdx_gen_image *img)
{
	vhdx_gen_free(*state);
	*state = img;
	return img;
}

/* Encodes an entry and puts it at log offset OFF (wrapping at the end of the log). */
static size_t put_entry_guid(struct vhdx_gen_image *img, uint32_t off, uint64_t seq, uint32_t tail,
			     const struct vhdx_log_page *pages, size_t n, uint64_t flushed, uint64_t last,
			     const uint8_t *guid)
{
	struct vhdx_log_entry_info info = { .seq = seq, .tail = tail, .flushed_file_offset = flushed,
					    .last_file_offset = last };
	size_t len = vhdx_log_entry_size(pages, n);
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	memcpy(info.log_guid, guid, 16);
	vhdx_log_entry_encode(&info, pages, n, buf);
	for (size_t i = 0; i < len; i++)
		img->file[img->log_offset + (off + i) % img->log_length] = buf[i];
	free(buf);
	return len;
}

static size_t put_entry(struct vhdx_gen_image *img, uint32_t off, uint64_t seq, uint32_t tail,
			const struct vhdx_log_page *pages, size_t n)
{
	return put_entry_guid(img, off, seq, tail, pages, n, FILE_LEN, FILE_LEN, GUID);
}

/*
 * The standard entry of these tests: its own tag page at SCR + UNIQUE*4K,
 * and the shared page at SCR (so the last applied entry shows there).
 * 0x3000 bytes long.
 */
static uint8_t page_bufs[64][2][PG];
static size_t put_std(struct vhdx_gen_image *img, uint32_t off, uint64_t seq, uint32_t tail, unsigned unique)
{
	struct vhdx_log_page pages[2];

	assert_true(seq < 64 * 4);
	tag_page(page_bufs[seq % 64][0], (unsigned)seq);
	tag_page(page_bufs[seq % 64][1], 1000 + (unsigned)seq);
	pages[0] = (struct vhdx_log_page){ SCR, page_bufs[seq % 64][0], 0 };
	pages[1] = (struct vhdx_log_page){ SCR + unique * PG, page_bufs[seq % 64][1], 0 };
	return put_entry(img, off, seq, tail, pages, 2);
}

/* Three standard entries back to back from log offset 0 (Tail 0), seq FIRST to FIRST + 2. */
static void put_three(struct vhdx_gen_image *img, uint64_t first)
{
	for (unsigned i = 0; i < 3; i++)
		put_std(img, i * 0x3000, first + i, 0, i + 1);
}

static void expect_tag(struct vhdx_io *io, uint64_t foff, unsigned tag)
{
	uint8_t want[PG], got[PG];

	if (tag)
		tag_page(want, tag);
	else
		memset(want, 0, PG);
	assert_ok(vhdx_io_pread(io, got, PG, foff, VHDX_TAG_OTHER));
	if (memcmp(want, got, PG))
		fail_msg("page at 0x%llx: expected %s %u", (unsigned long long)foff, tag ? "tag" : "zeros", tag);
}

/* Finds the sequence of IMG's current header directly (no open). */
static void find(const struct vhdx_gen_image *img, struct vhdx_log_sequence *seq)
{
	struct vhdx_io *io;

	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &io));
	assert_ok(vhdx_log_find(io, &img->headers[1], seq));
	vhdx_io_close(io);
}

static void expect_seq(const struct vhdx_log_sequence *s, size_t n, uint64_t first_seq, const uint32_t *offs)
{
	if (s->n != n)
		fail_msg("sequence has %zu entries, expected %zu (diag: %s)", s->n, n, s->diag ? s->diag : "-");
	for (size_t i = 0; i < n; i++) {
		assert_true(s->entries[i].e.seq == first_seq + i);
		assert_int_equal(s->entries[i].log_off, offs[i]);
	}
}

/* Opens IMG read-only from a mem io; *MEM is the mem io under the overlay (alive until the layer closes). */
static struct vhdx_layer *open_ro(const struct vhdx_gen_image *img, unsigned flags, struct vhdx_io **mem)
{
	struct vhdx_layer *l = NULL;
	int ret;

	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", mem));
	vhdx_err_clear();
	ret = vhdx_layer_open_io(*mem, "gen.vhdx", flags, &l);
	if (ret < 0)
		fail_msg("open failed with %d: %s", ret, vhdx_errmsg());
	return l;
}

static void expect_lower_unchanged(struct vhdx_io *mem, const struct vhdx_gen_image *img)
{
	size_t len;
	const uint8_t *d = vhdx_io_mem_data(mem, &len);

	assert_int_equal(len, img->file_len);
	assert_memory_equal(d, img->file, len);
}

static void expect_report(struct vhdx_layer *l, const char *want)
{
	const char *got = vhdx_state_of(l)->log_report;

	if (!got || strcmp(got, want))
		fail_msg("log report \"%s\"\n  expected \"%s\"", got ? got : "(none)", want);
}

/* The bytes of file PATH must be exactly IMG's (nothing written). */
static void expect_file_is(const char *path, const struct vhdx_gen_image *img)
{
	FILE *f = fopen(path, "rb");
	uint8_t *back = malloc(img->file_len);

	assert_non_null(f);
	assert_non_null(back);
	assert_int_equal(fread(back, 1, img->file_len, f), img->file_len);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_memory_equal(back, img->file, img->file_len);
	free(back);
}

/* ---- one entry, read-only: overlay, BAT page, lower file untouched, public API ---- */
static void test_one_entry_readonly(void **state)
{
	struct vhdx_gen_image *img = *state;
	static uint8_t data[MiB], got[MiB];
	uint8_t bat[PG], scratch[PG];
	struct vhdx_log_page pages[2] = { { img->bat_offset, bat, 0 }, { SCR, scratch, 0 } };
	struct vhdx_layer_extent ext;
	struct vhdx_layer *l;
	struct vhdx_io *mem;
	char path[] = "/tmp/vhdx-log-replay.XXXXXX";
	struct vhdx_image *im;
	int fd;

	/* block 1's data sits at 5 MiB, but only the logged BAT page says so */
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	memcpy(img->file + 5 * MiB, data, sizeof data);
	memcpy(bat, img->file + img->bat_offset, PG);
	vhdx_put_le64(bat + 8 * vhdx_gen_payload_index(img, 1), vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 5 * MiB));
	tag_page(scratch, 1);
	put_entry(img, 0, 5, 0, pages, 2);

	l = open_ro(img, 0, &mem);
	assert_true(l->log_replayed);
	assert_true(vhdx_state_of(l)->log_was_dirty);
	assert_ptr_not_equal(l->io, mem);
	assert_int_equal(vhdx_io_overlay_pages(l->io), 2);
	assert_true(l->io->readonly);
	expect_report(l, "replayed 1 entry (seq 5..5, 2 descriptors: 2 data, 0 zero) from log offset 0x0 into memory (the file is untouched)");
	expect_tag(l->io, SCR, 1);
	assert_ok(vhdx_io_pread(l->io, got, PG, img->bat_offset, VHDX_TAG_BAT));
	assert_memory_equal(got, bat, PG);
	/* the reader loaded the replayed BAT */
	assert_ok(l->ops->map(l, 1 * MiB, MiB, &ext));
	assert_int_equal(ext.kind, VHDX_LEXT_DATA);
	assert_true(ext.foff == 5 * MiB);
	/* the headers in memory still carry the LogGuid: nothing was written */
	assert_memory_equal(vhdx_state_of(l)->headers[vhdx_state_of(l)->current].log_guid, GUID, 16);
	expect_lower_unchanged(mem, img);
	vhdx_layer_close(l);

	/* the same through the public API on a real file */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_ok(vhdx_gen_write_file(img, path));
	assert_ok(vhdx_open(path, NULL, &im));
	assert_int_equal(vhdx_pread(im, got, MiB, MiB), (ssize_t)MiB);
	assert_memory_equal(got, data, MiB);
	{
		struct vhdx_info info = { .struct_size = sizeof info };
		assert_ok(vhdx_get_info(im, &info));
		assert_true(info.log_replayed);
		assert_false(info.writable);
	}
	assert_int_equal(vhdx_layer_fd(im, 0), -1); /* no zero-copy around the overlay */
	assert_ok(vhdx_close(im));
	expect_file_is(path, img);
	unlink(path);
}

/* ---- several entries; replay starts at the head's Tail ---- */
static void test_several_entries(void **state)
{
	static const uint32_t offs[] = { 0, 0x3000, 0x6000 };
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_sequence s;
	struct vhdx_layer *l;
	struct vhdx_io *mem;

	put_three(img, 10);
	find(img, &s);
	expect_seq(&s, 3, 10, offs);
	assert_int_equal(s.valid_entries, 3);
	assert_int_equal(s.candidates, 1);
	vhdx_log_sequence_free(&s);

	l = open_ro(img, 0, &mem);
	expect_report(l, "replayed 3 entries (seq 10..12, 6 descriptors: 6 data, 0 zero) from log offset 0x0 into memory (the file is untouched)");
	expect_tag(l->io, SCR, 12);             /* the last entry wins */
	expect_tag(l->io, SCR + 1 * PG, 1010);
	expect_tag(l->io, SCR + 2 * PG, 1011);
	expect_tag(l->io, SCR + 3 * PG, 1012);
	expect_tag(l->io, SCR + 4 * PG, 0);
	expect_lower_unchanged(mem, img);
	vhdx_layer_close(l);

	/* the head says entry 10 is no longer needed: it is not replayed */
	put_std(img, 0x6000, 12, 0x3000, 3);
	find(img, &s);
	expect_seq(&s, 2, 11, offs + 1);
	vhdx_log_sequence_free(&s);
	l = open_ro(img, 0, &mem);
	expect_report(l, "replayed 2 entries (seq 11..12, 4 descriptors: 4 data, 0 zero) from log offset 0x3000 into memory (the file is untouched)");
	expect_tag(l->io, SCR, 12);
	expect_tag(l->io, SCR + 1 * PG, 0);
	expect_tag(l->io, SCR + 2 * PG, 1011);
	expect_tag(l->io, SCR + 3 * PG, 1012);
	vhdx_layer_close(l);
}

/* ---- a sequence that wraps around the end of the circular log (also a 2 MiB log) ---- */
static void wrap_case(void **state, uint32_t log_length)
{
	struct vhdx_gen_image *img = replace_image(state, build_log(log_length, false));
	uint32_t L = img->log_length;
	const uint32_t offs[] = { L - 0x5000, L - 0x2000, 0x1000 };
	struct vhdx_log_sequence s;
	struct vhdx_layer *l;
	struct vhdx_io *mem;

	assert_int_equal(L, log_length);
	put_std(img, offs[0], 19, offs[0], 1);
	put_std(img, offs[1], 20, offs[0], 2); /* header at L-8K, data sectors at L-4K and 0 */
	put_std(img, offs[2], 21, offs[1], 3);
	put_std(img, 0x4000, 5, 0x4000, 4);    /* an old entry of this log right after the head */
	find(img, &s);
	expect_seq(&s, 2, 20, offs + 1);       /* the head's Tail is entry 20 */
	assert_int_equal(s.valid_entries, 4);
	assert_int_equal(s.candidates, 2);     /* {19,20,21} and the old {5} */
	assert_non_null(s.entries[0].copy);    /* entry 20 was read across the end */
	vhdx_log_sequence_free(&s);

	put_std(img, offs[2], 21, offs[0], 3); /* now the Tail is entry 19 */
	find(img, &s);
	expect_seq(&s, 3, 19, offs);
	vhdx_log_sequence_free(&s);

	l = open_ro(img, 0, &mem);
	expect_tag(l->io, SCR, 21);
	expect_tag(l->io, SCR + 1 * PG, 1019);
	expect_tag(l->io, SCR + 2 * PG, 1020); /* its data sector is the one at log offset 0 */
	expect_tag(l->io, SCR + 3 * PG, 1021);
	expect_tag(l->io, SCR + 4 * PG, 0);    /* the old entry 5 is not part of it */
	expect_lower_unchanged(mem, img);
	vhdx_layer_close(l);
}

static void test_wrap(void **state)
{
	wrap_case(state, 1 * MiB);
	wrap_case(state, 2 * MiB);
}

/* ---- two candidate sequences: the higher head wins, wherever it lies ---- */
static void test_two_candidates(void **state)
{
	for (int swap = 0; swap < 2; swap++) {
		struct vhdx_gen_image *img = swap ? replace_image(state, build()) : *state; /* a fresh image each round */
		uint32_t a = swap ? 0x8000 : 0x20000, b = swap ? 0x20000 : 0x8000;
		const uint32_t boffs[] = { b, b + 0x3000 };
		struct vhdx_log_sequence s;
		struct vhdx_layer *l;
		struct vhdx_io *mem;

		put_std(img, a, 30, a, 1);
		put_std(img, a + 0x3000, 31, a, 2);
		put_std(img, b, 40, b, 3);
		put_std(img, b + 0x3000, 41, b, 4);
		find(img, &s);
		expect_seq(&s, 2, 40, boffs);
		assert_int_equal(s.candidates, 2);
		vhdx_log_sequence_free(&s);
		l = open_ro(img, 0, &mem);
		expect_tag(l->io, SCR, 41);
		expect_tag(l->io, SCR + 1 * PG, 0);
		expect_tag(l->io, SCR + 2 * PG, 0);
		expect_tag(l->io, SCR + 3 * PG, 1040);
		expect_tag(l->io, SCR + 4 * PG, 1041);
		vhdx_layer_close(l);
	}
}

/* ---- a stale older sequence right after the newer one; another session's entries ---- */
static void test_stale_after_newer(void **state)
{
	static const uint32_t offs[] = { 0, 0x3000 };
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_sequence s;
	struct vhdx_log_page pg;
	uint8_t other[PG];

	put_std(img, 0x0000, 50, 0, 1);
	put_std(img, 0x3000, 51, 0, 2);
	put_std(img, 0x6000, 45, 0x6000, 3);   /* older, laid where 52 would go */
	put_std(img, 0x9000, 46, 0x6000, 4);
	/* an entry of an earlier session (other LogGuid) with a higher sequence number */
	tag_page(other, 99);
	pg = (struct vhdx_log_page){ SCR, other, 0 };
	put_entry_guid(img, 0x10000, 100, 0x10000, &pg, 1, FILE_LEN, FILE_LEN, OTHER_GUID);
	find(img, &s);
	expect_seq(&s, 2, 50, offs);
	assert_int_equal(s.valid_entries, 4);
	assert_int_equal(s.candidates, 2);
	vhdx_log_sequence_free(&s);
}

/* ---- a torn last entry: the sequence ends before it ---- */
static void test_torn_last_entry(void **state)
{
	static const uint32_t offs[] = { 0, 0x3000 };
	for (int how = 0; how < 2; how++) {
		struct vhdx_gen_image *img = how ? replace_image(state, build()) : *state; /* a fresh image each round */
		struct vhdx_log_sequence s;
		struct vhdx_layer *l;
		struct vhdx_io *mem;

		put_three(img, 60);
		if (how == 0)
			img->file[img->log_offset + 0x6000 + 0x2000 + 100] ^= 0x10; /* data sector 1: CRC */
		else
			vhdx_put_le32(img->file + img->log_offset + 0x6000 + 0x2000 + 4092, 0); /* its SequenceLow */
		find(img, &s);
		expect_seq(&s, 2, 60, offs);
		assert_int_equal(s.valid_entries, 2);
		vhdx_log_sequence_free(&s);
		l = open_ro(img, 0, &mem);
		expect_report(l, "replayed 2 entries (seq 60..61, 4 descriptors: 4 data, 0 zero) from log offset 0x0 into memory (the file is untouched)");
		expect_tag(l->io, SCR, 61);
		expect_tag(l->io, SCR + 3 * PG, 0);
		vhdx_layer_close(l);
	}
}

/* ---- a head whose Tail is not one of its entries: not acceptable ---- */
static void test_tail_outside(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_sequence s;
	struct vhdx_layer *l;
	struct vhdx_io *mem;

	put_std(img, 0x4000, 70, 0x0, 1); /* nothing at log offset 0 */
	find(img, &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.valid_entries, 1);
	assert_string_equal(s.diag, "1 valid entry, but no sequence contains its head's Tail (the newest head, seq 70 at log offset 0x4000, has Tail 0x0)");
	vhdx_log_sequence_free(&s);

	/* our policy: open, replay nothing, say so */
	l = open_ro(img, 0, &mem);
	assert_false(l->log_replayed);
	assert_ptr_equal(l->io, mem);
	expect_report(l, "dirty log, no valid sequence: 1 valid entry, but no sequence contains its head's Tail (the newest head, seq 70 at log offset 0x4000, has Tail 0x0); nothing replayed");
	expect_tag(l->io, SCR + PG, 0);
	vhdx_layer_close(l);


	/* a Tail inside the sequence's span but not at an entry start (the data sector of entry 71) */
	img = replace_image(state, build());
	put_std(img, 0x0000, 71, 0, 2);
	put_std(img, 0x3000, 72, 0x1000, 3);
	find(img, &s);
	assert_int_equal(s.n, 0);
	assert_string_equal(s.diag, "2 valid entries, but no sequence contains its head's Tail (the newest head, seq 72 at log offset 0x3000, has Tail 0x1000)");
	vhdx_log_sequence_free(&s);
}

/* IMG into a new temporary file; its path in PATH (a mkstemp template). */
static void to_file(const struct vhdx_gen_image *img, char *path)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_ok(vhdx_gen_write_file(img, path));
}

/* IMG in a temporary file: a writable open fails with -EBADMSG and MSG, and the file is unchanged. */
static void expect_writable_refused(const struct vhdx_gen_image *img, const char *msg)
{
	char path[] = "/tmp/vhdx-log-refused.XXXXXX";
	struct vhdx_layer *l = NULL;

	to_file(img, path);
	assert_fails(vhdx_layer_open(path, VHDX_LAYER_WRITABLE, &l), -EBADMSG, msg);
	expect_file_is(path, img);
	unlink(path);
}

/* One entry at log offset OFF, its own Tail, with a tag page at SCR and these file offsets. */
static void put_page_entry(struct vhdx_gen_image *img, uint32_t off, uint64_t seq, uint64_t flushed, uint64_t last)
{
	uint8_t p[PG];
	struct vhdx_log_page pg = { SCR, p, 0 };

	tag_page(p, (unsigned)seq);
	put_entry_guid(img, off, seq, off, &pg, 1, flushed, last, GUID);
}

/* IMG from memory: a read-only open fails with -EBADMSG and MSG. */
static void expect_readonly_refused(const struct vhdx_gen_image *img, const char *msg)
{
	struct vhdx_layer *l = NULL;
	struct vhdx_io *mem;

	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &mem));
	assert_fails(vhdx_layer_open_io(mem, "gen.vhdx", 0, &l), -EBADMSG, msg);
}

/* ---- FlushedFileOffset beyond the end of the file: refused, read-only and writable ---- */
static void test_flushed_beyond_eof(void **state)
{
	const char *msg = "log entry at log offset 0x0 (seq 80): the file is 0x800000 bytes, shorter than the entry's FlushedFileOffset 0x1000000 (it was truncated after the log was written)";

	put_page_entry(*state, 0, 80, 16 * MiB, 16 * MiB);
	expect_readonly_refused(*state, msg);
	/* writable: refused before the first byte changes */
	expect_writable_refused(*state, msg);
}

/* ---- LastFileOffset beyond the end: the view grows, and reads zeros there ---- */
static void test_last_beyond_eof(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_page pg;
	struct vhdx_layer *l;
	struct vhdx_io *mem;
	uint8_t p[PG], *z;
	uint64_t size;
	size_t len;

	tag_page(p, 81);
	pg = (struct vhdx_log_page){ 10 * MiB, p, 0 }; /* a page past the end, too */
	put_entry_guid(img, 0, 81, 0, &pg, 1, FILE_LEN, 12 * MiB, GUID);
	l = open_ro(img, 0, &mem);
	expect_report(l, "replayed 1 entry (seq 81..81, 1 descriptor: 1 data, 0 zero) from log offset 0x0 into memory (the file is untouched); size seen extended from 0x800000 to 0xc00000 bytes");
	assert_ok(vhdx_io_get_size(l->io, &size));
	assert_true(size == 12 * MiB);
	assert_true(vhdx_state_of(l)->file_size == 12 * MiB);
	expect_tag(l->io, 10 * MiB, 81);
	z = malloc(2 * MiB);
	assert_non_null(z);
	assert_ok(vhdx_io_pread(l->io, z, 2 * MiB, 8 * MiB, VHDX_TAG_OTHER));
	for (size_t i = 0; i < 2 * MiB; i++)
		if (z[i])
			fail_msg("byte 0x%zx of the extension is not zero", (size_t)(8 * MiB + i));
	assert_ok(vhdx_io_pread(l->io, z, 2 * MiB - PG, 10 * MiB + PG, VHDX_TAG_OTHER));
	for (size_t i = 0; i < 2 * MiB - PG; i++)
		if (z[i])
			fail_msg("byte 0x%zx of the extension is not zero", (size_t)(10 * MiB + PG + i));
	free(z);
	vhdx_io_mem_data(mem, &len);
	assert_int_equal(len, FILE_LEN);
	expect_lower_unchanged(mem, img);
	vhdx_layer_close(l);
}

/* ---- zero descriptors, an empty entry, a zero range past the end ---- */
static void test_zero_descriptors(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_page pages[2];
	struct vhdx_layer *l;
	struct vhdx_io *mem;
	uint8_t p[PG], *got, *want;
	uint64_t size;
	size_t off = 0;

	/* the scratch area holds data the zero descriptor must clear */
	for (size_t i = 0; i < 64 * KiB; i++)
		img->file[SCR + i] = (uint8_t)(i % 251 + 1);
	tag_page(p, 90);
	pages[0] = (struct vhdx_log_page){ SCR + PG, NULL, 2 * PG };
	pages[1] = (struct vhdx_log_page){ SCR + 4 * PG, p, 0 };
	off += put_entry(img, (uint32_t)off, 90, 0, pages, 2);
	off += put_entry(img, (uint32_t)off, 91, 0, NULL, 0);                 /* DescriptorCount 0 */
	pages[0] = (struct vhdx_log_page){ 9 * MiB, NULL, 64 * KiB };        /* zeros past the end */
	off += put_entry(img, (uint32_t)off, 92, 0, pages, 1);
	assert_int_equal(off, 0x2000 + 0x1000 + 0x1000);

	l = open_ro(img, 0, &mem);
	expect_report(l, "replayed 3 entries (seq 90..92, 3 descriptors: 1 data, 2 zero) from log offset 0x0 into memory (the file is untouched); size seen extended from 0x800000 to 0x910000 bytes");
	want = malloc(64 * KiB);
	got = malloc(64 * KiB);
	assert_non_null(want);
	assert_non_null(got);
	memcpy(want, img->file + SCR, 64 * KiB);
	memset(want + PG, 0, 2 * PG);
	memcpy(want + 4 * PG, p, PG);
	assert_ok(vhdx_io_pread(l->io, got, 64 * KiB, SCR, VHDX_TAG_OTHER));
	assert_memory_equal(got, want, 64 * KiB);
	assert_ok(vhdx_io_get_size(l->io, &size));
	assert_true(size == 9 * MiB + 64 * KiB);
	assert_int_equal(vhdx_io_overlay_pages(l->io), 3); /* two zero pages and one data page; nothing past the end */
	expect_lower_unchanged(mem, img);
	vhdx_layer_close(l);
	free(want);
	free(got);
}

/* ---- writable: pages written in place, LogGuid zero in both headers ---- */
static void test_writable_in_place(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_header h[2];
	struct vhdx_layer *l = NULL;
	struct vhdx_io *io;
	const uint8_t *d;
	uint8_t want[PG];
	size_t len;

	put_three(img, 10);
	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &io));
	vhdx_err_clear();
	if (vhdx_layer_open_io(io, "gen.vhdx", VHDX_LAYER_WRITABLE, &l) < 0)
		fail_msg("writable open failed: %s", vhdx_errmsg());
	assert_ptr_equal(l->io, io); /* in place: no overlay */
	assert_true(l->log_replayed);
	expect_report(l, "replayed 3 entries (seq 10..12, 6 descriptors: 6 data, 0 zero) from log offset 0x0 in place; LogGuid cleared");
	d = vhdx_io_mem_data(io, &len);
	assert_int_equal(len, FILE_LEN);
	tag_page(want, 12);
	assert_memory_equal(d + SCR, want, PG);
	for (unsigned k = 0; k < 3; k++) {
		tag_page(want, 1010 + k);
		assert_memory_equal(d + SCR + (k + 1) * PG, want, PG);
	}
	/* both header slots valid, LogGuid zero, newer than before; new FileWriteGuid, same DataWriteGuid */
	for (int i = 0; i < 2; i++) {
		assert_ok(vhdx_header_decode(d + (i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF), VHDX_HEADER_SIZE, &h[i]));
		assert_true(vhdx_guid_is_zero(h[i].log_guid));
		assert_true(h[i].seq > img->headers[1].seq);
		assert_memory_not_equal(h[i].file_write_guid, img->headers[1].file_write_guid, 16);
		assert_memory_equal(h[i].data_write_guid, img->headers[1].data_write_guid, 16);
	}
	assert_true(h[0].seq != h[1].seq);
	/* everything outside the headers and the replayed pages is as it was (the log too) */
	assert_memory_equal(d, img->file, VHDX_HEADER1_OFF);
	assert_memory_equal(d + VHDX_HEADER1_OFF + VHDX_HEADER_SIZE, img->file + VHDX_HEADER1_OFF + VHDX_HEADER_SIZE,
			    VHDX_HEADER2_OFF - VHDX_HEADER1_OFF - VHDX_HEADER_SIZE);
	assert_memory_equal(d + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE, img->file + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE,
			    SCR - VHDX_HEADER2_OFF - VHDX_HEADER_SIZE);
	assert_memory_equal(d + SCR + 4 * PG, img->file + SCR + 4 * PG, FILE_LEN - SCR - 4 * PG);
	vhdx_layer_close(l);
}

/* ---- writable, nothing valid: only the LogGuid is cleared ---- */
static void test_writable_no_sequence(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_layer *l = NULL;
	struct vhdx_header h;
	struct vhdx_io *io;
	const uint8_t *d;
	size_t len;

	put_std(img, 0x4000, 70, 0x0, 1); /* tail outside */
	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &io));
	if (vhdx_layer_open_io(io, "gen.vhdx", VHDX_LAYER_WRITABLE, &l) < 0)
		fail_msg("writable open failed: %s", vhdx_errmsg());
	assert_false(l->log_replayed);
	expect_report(l, "dirty log, no valid sequence: 1 valid entry, but no sequence contains its head's Tail (the newest head, seq 70 at log offset 0x4000, has Tail 0x0); nothing replayed; LogGuid cleared");
	d = vhdx_io_mem_data(io, &len);
	for (int i = 0; i < 2; i++) {
		assert_ok(vhdx_header_decode(d + (i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF), VHDX_HEADER_SIZE, &h));
		assert_true(vhdx_guid_is_zero(h.log_guid));
	}
	assert_memory_equal(d + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE, img->file + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE,
			    FILE_LEN - VHDX_HEADER2_OFF - VHDX_HEADER_SIZE);
	vhdx_layer_close(l);
}

/* ---- no entry at all, a log past the end, no log, and VHDX_LAYER_NO_REPLAY ---- */
static void test_other_refusals(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_layer *l = NULL;
	struct vhdx_io *mem;

	/* LogGuid set, log all zero */
	l = open_ro(img, 0, &mem);
	expect_report(l, "dirty log, no valid sequence: no entry in the log carries the LogGuid d4c3b2a1-0201-0403-0506-0708090a0b0c; nothing replayed");
	vhdx_layer_close(l);
	/* ... also with NO_REPLAY: there is nothing to replay */
	l = open_ro(img, VHDX_LAYER_NO_REPLAY, &mem);
	assert_false(l->log_replayed);
	vhdx_layer_close(l);

	/* something to replay and NO_REPLAY: refused with the hint */
	put_std(img, 0, 3, 0, 1);
	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &mem));
	assert_fails(vhdx_layer_open_io(mem, "gen.vhdx", VHDX_LAYER_NO_REPLAY, &l), -EROFS,
		     "dirty log (LogGuid set; 1 entry (seq 3..3, 2 descriptors: 2 data, 0 zero) from log offset 0x0 to replay); replay it with 'vhdx replay' or open read-write");

	/* a log that runs past the end of the file */
	for (int i = 0; i < 2; i++)
		img->headers[i].log_offset = 8 * MiB;
	vhdx_gen_reencode_headers(img);
	assert_ok(vhdx_gen_to_io(img, "gen.vhdx", &mem));
	assert_fails(vhdx_layer_open_io(mem, "gen.vhdx", 0, &l), -EBADMSG,
		     "log at 0x800000 (+0x100000 bytes) extends past the end of the file (0x800000 bytes)");

	/* LogGuid set but no log at all */
	img = replace_image(state, build_log(0, true));
	l = open_ro(img, 0, &mem);
	expect_report(l, "dirty log, no valid sequence: LogLength is 0: there is no log to replay; nothing replayed");
	vhdx_layer_close(l);
}

/*
 * Issue #15 item 7: an entry whose LastFileOffset is 2^50 (valid CRC) made
 * replay extend the file to 1 PiB.  Refused, read-only and writable, with
 * the entry's sequence number and log offset, before anything changes; the
 * same for a zero descriptor reaching that far, while an entry within the
 * bound (test_last_beyond_eof) still grows the file.
 */
static void test_last_file_offset_bound(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_page pg;
	struct vhdx_layer *l = NULL;
	struct vhdx_io *mem;
	char msg[512];
	/* the file's 8 MiB, plus a 1 MiB block for every entry of the BAT region */
	uint64_t lim = FILE_LEN + (uint64_t)img->bat_length / 8 * MiB;

	put_page_entry(img, 0x3000, 83, FILE_LEN, 1ull << 50);
	snprintf(msg, sizeof msg, "log entry at log offset 0x3000 (seq 83): LastFileOffset would extend the file to 0x4000000000000 bytes, more than the 0x%llx this image's structures can need; refusing to replay",
		 (unsigned long long)lim);
	expect_readonly_refused(img, msg);
	expect_writable_refused(img, msg);

	/* the bound itself is allowed; one MiB more is not */
	img = replace_image(state, build());
	put_page_entry(img, 0, 84, FILE_LEN, lim);
	l = open_ro(img, 0, &mem);
	assert_true(vhdx_state_of(l)->file_size == lim);
	vhdx_layer_close(l);
	img = replace_image(state, build());
	put_page_entry(img, 0, 85, FILE_LEN, lim + MiB);
	expect_readonly_refused(img, "(seq 85): LastFileOffset would extend the file to");

	/* a zero descriptor whose range reaches 2^50 */
	img = replace_image(state, build());
	pg = (struct vhdx_log_page){ (1ull << 50) - 64 * KiB, NULL, 64 * KiB };
	put_entry_guid(img, 0, 86, 0, &pg, 1, FILE_LEN, FILE_LEN, GUID);
	expect_writable_refused(img, "log entry at log offset 0x0 (seq 86): the range of a zero descriptor would extend the file to 0x4000000000000 bytes");
}

/*
 * Issue #15 item 6: a clean header (LogGuid zero, valid CRC) whose
 * LogOffset is 0xfff0000000100000 opens read-only; a writable open used to
 * set the LogGuid and then fail writing the log, leaving an image nothing
 * could open.  Refused before anything changes.
 */
static void test_unusable_log_writable(void **state)
{
	struct vhdx_gen_block blocks[] = { { .blk = 0, .state = VHDX_BAT_FULLY_PRESENT } };
	struct vhdx_gen_opts o = { .virtual_size = 8 * MiB, .blocks = blocks, .n_blocks = 1, .seed = 6,
				   .min_file_size = FILE_LEN };
	struct vhdx_gen_image *img = NULL;
	struct vhdx_layer *l = NULL;
	char path[] = "/tmp/vhdx-log-where.XXXXXX";

	assert_ok(vhdx_gen_build(&o, &img));
	replace_image(state, img);
	for (int i = 0; i < 2; i++)
		img->headers[i].log_offset = 0xfff0000000100000ull;
	vhdx_gen_reencode_headers(img);
	to_file(img, path);
	assert_ok(vhdx_layer_open(path, 0, &l));
	vhdx_layer_close(l);
	unlink(path);
	expect_writable_refused(img, "header at 0x20000: the log at 0xfff0000000100000 (+0x100000 bytes) lies past the end of the file (0x800000 bytes): writes could not be journaled; the image can only be opened read-only");
}

/* ---- a damaged entry of this log is named in the diagnostic ---- */
static void test_rejected_entry_named(void **state)
{
	struct vhdx_gen_image *img = *state;
	struct vhdx_log_sequence s;

	put_std(img, 0xc000, 7, 0xc000, 1);
	img->file[img->log_offset + 0xc000 + 0x1000 + 9] ^= 1;
	find(img, &s);
	assert_int_equal(s.n, 0);
	if (!strstr(s.diag, "1 entry carries the LogGuid but fails a check (log entry at log offset 0xc000: CRC-32C mismatch (stored 0x"))
		fail_msg("diag: %s", s.diag);
	vhdx_log_sequence_free(&s);
}

/* ---- a large log full of entries: one long chain ending right before where it began ---- */
static void test_large_log(void **state)
{
	struct vhdx_gen_image *img = replace_image(state, build_log(8 * MiB, false));
	struct vhdx_log_sequence s;
	uint8_t p[PG];
	struct vhdx_log_page pg = { 32 * MiB, p, 0 }; /* past the end: the log spans 1..9 MiB here */
	struct vhdx_layer *l;
	struct vhdx_io *mem;
	uint32_t off = 0, seq = 500;

	/* 1000 empty entries, then one-page entries up to the end of the 8 MiB ring, all with Tail
	 * at sector 200: seq 500..2023; the next one would be the entry at 0 (seq 500): the end */
	for (; off < 1000 * PG; off += PG)
		put_entry(img, off, seq++, 200 * PG, NULL, 0);
	for (; off < img->log_length; off += 2 * PG) {
		tag_page(p, seq);
		put_entry(img, off, seq++, 200 * PG, &pg, 1);
	}
	assert_int_equal(seq, 2024);
	find(img, &s);
	assert_int_equal(s.n, 2024 - 700);
	assert_true(s.entries[0].e.seq == 700);
	assert_int_equal(s.entries[0].log_off, 200 * PG);
	assert_true(s.entries[s.n - 1].e.seq == 2023);
	assert_int_equal(s.entries[s.n - 1].log_off, img->log_length - 2 * PG);
	assert_int_equal(s.valid_entries, 1524);
	assert_int_equal(s.candidates, 1);
	vhdx_log_sequence_free(&s);
	l = open_ro(img, 0, &mem);
	expect_tag(l->io, 32 * MiB, 2023); /* the last of them */
	vhdx_layer_close(l);
}

UNIT_MAIN_EACH(setup_image, free_image,
	       test_one_entry_readonly,
	       test_several_entries,
	       test_wrap,
	       test_two_candidates,
	       test_stale_after_newer,
	       test_torn_last_entry,
	       test_tail_outside,
	       test_flushed_beyond_eof,
	       test_last_beyond_eof,
	       test_zero_descriptors,
	       test_writable_in_place,
	       test_writable_no_sequence,
	       test_other_refusals,
	       test_last_file_offset_bound,
	       test_unusable_log_writable,
	       test_rejected_entry_named,
	       test_large_log)
