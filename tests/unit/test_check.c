/*
 * test_check.c - `vhdx check` (libvhdx/maint/check.c, the driver, and
 * format/vhdx_check.c, the VHDX scan and repairs) through
 * vhdx_check_path() on images of the generator (tests/lib/vhdx_gen.h)
 * written to a temporary folder.
 *
 * Every problem, repair and lost range the check reports is written into
 * one transcript ("error|header 1|0x10000|message") and the transcript is
 * compared whole: a check that names another structure, another offset or
 * another message, or reports one problem more or less, fails.  After a
 * repair the bytes of the repaired structure are compared with what they
 * must be.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/unit_files.h"
#include "lib/vhdx_gen.h"
#include "maint/check_internal.h"
#include "codec/crc32c.h"
#include "codec/endian.h"

#define MiB (1024ull * 1024)

static char dir[] = "/tmp/libvhdx-test-check-XXXXXX";
static char path[64];

/* The transcript of one check: every report on its own line. */
struct transcript {
	char text[8192];
	size_t len;
};

static void add_line(struct transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct transcript *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof t->text - t->len);
	t->len += (size_t)n;
}

static void on_problem(void *ctx, bool after, const struct vhdx_check_problem *p)
{
	add_line(ctx, "%s%s|%s|0x%llx|%s\n", after ? "after " : "", p->severity == VHDX_CHECK_ERROR ? "error" : "warning",
		 p->structure, (unsigned long long)p->foff, p->message);
}

static void on_repaired(void *ctx, const struct vhdx_check_event *e)
{
	add_line(ctx, "repaired|%s|0x%llx|%s\n", e->structure, (unsigned long long)e->foff, e->message);
}

static void on_lost(void *ctx, const struct vhdx_check_event *e)
{
	add_line(ctx, "lost|0x%llx+0x%llx|%s|0x%llx|%s\n", (unsigned long long)e->lost_voff,
		 (unsigned long long)e->lost_len, e->structure, (unsigned long long)e->foff, e->message);
}

/* Checks (REPAIR: and repairs) the file at PATH; fails unless the transcript is EXPECTED. */
static void check_file(bool repair, const char *expected, struct vhdx_check_result *res)
{
	static struct transcript t;
	struct vhdx_check_opts o;

	memset(&o, 0, sizeof o);
	memset(res, 0, sizeof *res);
	t.len = 0;
	t.text[0] = 0;
	o.repair = repair;
	o.ctx = &t;
	o.problem = on_problem;
	o.repaired = on_repaired;
	o.lost = on_lost;
	assert_ok(vhdx_check_path(path, &o, res));
	if (strcmp(t.text, expected) != 0)
		fail_msg("check of %s reported:\n%s\nexpected:\n%s", path, t.text, expected);
	assert_string_equal(res->format, "vhdx");
}

/* Writes IMG to PATH. */
static void put(const struct vhdx_gen_image *img)
{
	assert_ok(vhdx_gen_write_file(img, path));
}

static const struct vhdx_gen_block two_blocks[] = {
	{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
	{ .blk = 2, .state = VHDX_BAT_ZERO },
	{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
};

/* Builds the dynamic 4 MiB image every test starts from, with DAMAGE flags. */
static struct vhdx_gen_image *base_image(unsigned damage)
{
	struct vhdx_gen_opts o = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 4 * MiB, .seed = 21,
				   .blocks = two_blocks, .n_blocks = VHDX_ARRAY_LEN(two_blocks), .damage = damage };
	struct vhdx_gen_image *img;

	assert_ok(vhdx_gen_build(&o, &img));
	return img;
}

static void test_check_clean(void **state)
{
	struct vhdx_gen_image *img = base_image(0);
	struct vhdx_check_result r;

	put(img);
	check_file(false, "", &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.warnings, 0);
	assert_int_equal(r.repairs, 0);
	/* a repair of a sound file changes no byte */
	{
		size_t len;
		uint8_t *b;
		check_file(true, "", &r);
		assert_int_equal(r.repairs, 0);
		b = unit_slurp(path, &len);
		assert_int_equal(len, img->file_len);
		assert_memory_equal(b, img->file, len);
		free(b);
	}
	vhdx_gen_free(img);
}

/* "(stored 0x..., computed 0x...)" of the structure of LEN bytes at FOFF of IMG, as the check words it. */
static void crc_words(const struct vhdx_gen_image *img, uint64_t foff, size_t len, char *out, size_t out_len)
{
	snprintf(out, out_len, "(stored 0x%08x, computed 0x%08x)", vhdx_get_le32(img->file + foff + 4),
		 vhdx_crc32c_struct(img->file + foff, len));
}

/* A broken header 1 CRC: found at 64 KiB; the repair rewrites both headers from header 2, as the protocol does. */
static void test_check_header_crc(void **state)
{
	struct vhdx_gen_image *img = base_image(VHDX_GEN_BAD_HEADER1_CRC);
	struct vhdx_check_result r;
	struct vhdx_header h[2];
	char crc[64], problem[256], expected[512];
	size_t len;
	uint8_t *b;

	put(img);
	crc_words(img, VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, crc, sizeof crc);
	snprintf(problem, sizeof problem, "error|header 1|0x10000|header: CRC-32C mismatch %s\n", crc);
	check_file(false, problem, &r);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.warnings, 0);
	/* without repair nothing changed */
	b = unit_slurp(path, &len);
	assert_int_equal(len, img->file_len);
	assert_memory_equal(b, img->file, len);
	free(b);

	snprintf(expected, sizeof expected,
		 "%srepaired|header 1|0x10000|rewrote both headers from header 2 (sequence number 2 -> 4)\n", problem);
	check_file(true, expected, &r);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.repairs, 1);
	assert_int_equal(r.errors_after, 0);
	assert_int_equal(r.warnings_after, 0);
	/* both slots valid again: 3 and 4, a new FileWriteGuid, the same DataWriteGuid (no data changed) */
	b = unit_slurp(path, &len);
	assert_ok(vhdx_header_decode(b + VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, &h[0]));
	assert_ok(vhdx_header_decode(b + VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, &h[1]));
	assert_int_equal(h[0].seq, 3);
	assert_int_equal(h[1].seq, 4);
	assert_memory_not_equal(h[1].file_write_guid, img->headers[1].file_write_guid, 16);
	assert_memory_equal(h[1].data_write_guid, img->headers[1].data_write_guid, 16);
	assert_memory_equal(h[0].file_write_guid, h[1].file_write_guid, 16);
	/* and nothing else moved */
	assert_memory_equal(b + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE, img->file + VHDX_HEADER2_OFF + VHDX_HEADER_SIZE,
			    len - VHDX_HEADER2_OFF - VHDX_HEADER_SIZE);
	free(b);
	vhdx_gen_free(img);
}

/* A broken region table 2: found at 256 KiB; the repair copies region table 1 over it. */
static void test_check_region_crc(void **state)
{
	struct vhdx_gen_image *img = base_image(VHDX_GEN_BAD_REGION2_CRC);
	struct vhdx_check_result r;
	char crc[64], expected[512];
	size_t len;
	uint8_t *b;

	put(img);
	crc_words(img, VHDX_REGION2_OFF, VHDX_REGION_SIZE, crc, sizeof crc);
	snprintf(expected, sizeof expected,
		 "error|region table 2|0x40000|region table: CRC-32C mismatch %s\n"
		 "repaired|region table 2|0x40000|rewrote region table 2 from copy 1\n",
		 crc);
	check_file(true, expected, &r);
	assert_int_equal(r.repairs, 1);
	assert_int_equal(r.errors_after, 0);
	b = unit_slurp(path, &len);
	assert_int_equal(len, img->file_len);
	assert_memory_equal(b + VHDX_REGION2_OFF, img->file + VHDX_REGION1_OFF, VHDX_REGION_SIZE);
	/* only region table 2 changed */
	memcpy(img->file + VHDX_REGION2_OFF, img->file + VHDX_REGION1_OFF, VHDX_REGION_SIZE);
	assert_memory_equal(b, img->file, len);
	free(b);
	vhdx_gen_free(img);
}

/* A BAT entry past the end of the file: an error at its own offset; the repair unmaps it and reports the lost range. */
static void test_check_bat_past_end(void **state)
{
	struct vhdx_gen_image *img = base_image(0);
	uint64_t idx = vhdx_gen_payload_index(img, 1), eoff = img->bat_offset + 8 * idx;
	struct vhdx_check_result r;
	char expected[1024];
	size_t len;
	uint8_t *b;

	vhdx_gen_set_bat(img, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 64 * MiB));
	put(img);
	snprintf(expected, sizeof expected,
		 "error|BAT entry|0x%llx|entry %llu: payload block at file offset 0x4000000 (+0x100000) is past the end of the file (0x%zx bytes)\n"
		 "repaired|BAT entry|0x%llx|entry %llu (block 1, was 0x0000000004000006) set to NOT_PRESENT\n"
		 "lost|0x100000+0x100000|BAT entry|0x%llx|virtual bytes 0x100000..0x200000 (block 1) now read as zeros: the data of its BAT entry cannot be trusted\n",
		 (unsigned long long)eoff, (unsigned long long)idx, img->file_len, (unsigned long long)eoff,
		 (unsigned long long)idx, (unsigned long long)eoff);
	check_file(true, expected, &r);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.repairs, 1);
	assert_int_equal(r.errors_after, 0);
	/* the entry reads NOT_PRESENT; every other entry is as the generator wrote it */
	b = unit_slurp(path, &len);
	for (uint64_t i = 0; i < img->bat_entries; i++)
		assert_int_equal(vhdx_get_le64(b + img->bat_offset + 8 * i),
				 i == idx ? vhdx_bat_make(VHDX_BAT_NOT_PRESENT, 0) : img->bat[i]);
	free(b);
	vhdx_gen_free(img);
}

/* 3 MiB nobody references at the end: a warning at the first free byte; the repair truncates them. */
static void test_check_leak(void **state)
{
	struct vhdx_gen_image *img = base_image(0);
	size_t good = img->file_len, len;
	struct vhdx_check_result r;
	char expected[512];
	uint8_t *b;

	img->file = realloc(img->file, good + 3 * MiB);
	assert_non_null(img->file);
	memset(img->file + good, 0, 3 * MiB);
	img->file_len = good + 3 * MiB;
	put(img);
	snprintf(expected, sizeof expected,
		 "warning|file|0x%zx|leaked space: the last 3145728 bytes of the file (from 0x%zx to 0x%zx) are not referenced by any structure\n",
		 good, good, img->file_len);
	check_file(false, expected, &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.warnings, 1);
	snprintf(expected + strlen(expected), sizeof expected - strlen(expected),
		 "repaired|file|0x%zx|truncated the file from 0x%zx to 0x%zx bytes (leaked space freed)\n", good,
		 img->file_len, good);
	check_file(true, expected, &r);
	assert_int_equal(r.warnings_after, 0);
	b = unit_slurp(path, &len);
	assert_int_equal(len, good);
	assert_memory_equal(b, img->file, good);
	free(b);
	vhdx_gen_free(img);
}

/* A file that is neither VHDX nor VHD cannot be checked at all. */
static void test_check_not_an_image(void **state)
{
	struct vhdx_check_opts o;
	struct vhdx_check_result r;
	FILE *f = fopen(path, "wb");
	static uint8_t zeros[256 * 1024];
	char msg[256];

	assert_non_null(f);
	assert_int_equal(fwrite(zeros, 1, sizeof zeros, f), sizeof zeros);
	fclose(f);
	memset(&o, 0, sizeof o);
	assert_fails(vhdx_check_path(path, &o, &r), -EINVAL, "neither a VHDX file");
	snprintf(msg, sizeof msg,
		 "%s: neither a VHDX file (no 'vhdxfile' identifier, no 'head' header) nor a VHD file (no 'conectix' footer)",
		 path);
	assert_string_equal(vhdx_errmsg(), msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_clean),
		cmocka_unit_test(test_check_header_crc),
		cmocka_unit_test(test_check_region_crc),
		cmocka_unit_test(test_check_bat_past_end),
		cmocka_unit_test(test_check_leak),
		cmocka_unit_test(test_check_not_an_image),
	};
	int ret;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.vhdx", dir);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	rmdir(dir);
	return ret;
}
