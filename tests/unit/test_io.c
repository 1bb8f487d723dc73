/*
 * test_io.c - L0, the I/O stack (io/io.c wrappers, io/mem.c, io/file.c):
 * reads, writes, growth and sizes of both backends; the wrappers' precise
 * messages (file name, structure tag, offset), read-only enforcement,
 * counters, and the thread-local request context that fault rules read.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "io/io.h"

/* ---- a recording backend over a mem io: what did the wrapper publish? ---- */
struct rec_io {
	struct vhdx_io io;
	struct vhdx_io *lower;
	enum vhdx_tag seen_tag;
	uint64_t seen_voff;
	int fail_with; /* errno to fail every call with, 0 = pass through */
};

/* Notes what the wrapper published for this call; returns the failure to give, or 0 to pass through. */
static int rec_note(struct rec_io *r)
{
	r->seen_tag = vhdx_io_current()->tag;
	r->seen_voff = vhdx_io_current()->voff;
	return r->fail_with ? vhdx_err(r->fail_with, "disk on fire") : 0;
}

static int rec_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct rec_io *r = (struct rec_io *)io;
	int rc = rec_note(r);

	return rc ? rc : r->lower->m->pread(r->lower, buf, len, off);
}

static int rec_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	struct rec_io *r = (struct rec_io *)io;
	int rc = rec_note(r);

	return rc ? rc : r->lower->m->pwrite(r->lower, buf, len, off);
}

static int rec_flush(struct vhdx_io *io)
{
	struct rec_io *r = (struct rec_io *)io;
	return r->fail_with ? vhdx_err(r->fail_with, "cache lost") : 0;
}

static int rec_get_size(struct vhdx_io *io, uint64_t *size)
{
	struct rec_io *r = (struct rec_io *)io;
	return r->lower->m->get_size(r->lower, size);
}

static int rec_set_size(struct vhdx_io *io, uint64_t size)
{
	struct rec_io *r = (struct rec_io *)io;
	return r->lower->m->set_size(r->lower, size);
}

static void rec_close(struct vhdx_io *io)
{
	struct rec_io *r = (struct rec_io *)io;

	vhdx_io_close(r->lower);
	vhdx_io_fini(io);
	free(r);
}

static const struct vhdx_io_methods rec_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = rec_pread,
	.pwrite = rec_pwrite,
	.flush = rec_flush,
	.get_size = rec_get_size,
	.set_size = rec_set_size,
	.close = rec_close,
	.get_fd = NULL,
};

static struct rec_io *rec_new(size_t size)
{
	struct rec_io *r = calloc(1, sizeof *r);

	assert_non_null(r);
	assert_ok(vhdx_io_init(&r->io, &rec_methods, "rec.vhdx", false));
	assert_ok(vhdx_io_mem_new(NULL, 0, "lower", &r->lower));
	assert_ok(vhdx_io_set_size(r->lower, size));
	return r;
}

/* ---- mem backend ---- */

static void test_mem_basic(void **state)
{
	static const uint8_t init[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct vhdx_io *io;
	uint8_t buf[16];
	uint64_t size = 0;
	const uint8_t *data;
	size_t dlen = 0;

	assert_ok(vhdx_io_mem_new(init, sizeof init, "m.vhdx", &io));
	assert_string_equal(io->name, "m.vhdx");
	assert_false(io->readonly);
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 8);
	assert_ok(vhdx_io_pread(io, buf, 4, 2, VHDX_TAG_OTHER));
	assert_memory_equal(buf, init + 2, 4);
	/* a zero-length read at the end is fine */
	assert_ok(vhdx_io_pread(io, buf, 0, 8, VHDX_TAG_OTHER));
	/* writing past the end grows the file; the gap reads as zeros */
	assert_ok(vhdx_io_pwrite(io, "xyz", 3, 13, VHDX_TAG_OTHER));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 16);
	assert_ok(vhdx_io_pread(io, buf, 16, 0, VHDX_TAG_OTHER));
	assert_memory_equal(buf, init, 8);
	assert_memory_equal(buf + 8, "\0\0\0\0\0xyz", 8);
	data = vhdx_io_mem_data(io, &dlen);
	assert_int_equal(dlen, 16);
	assert_memory_equal(data, buf, 16);
	/* an overwrite in the middle */
	assert_ok(vhdx_io_pwrite(io, "AB", 2, 1, VHDX_TAG_OTHER));
	assert_ok(vhdx_io_pread(io, buf, 4, 0, VHDX_TAG_OTHER));
	assert_memory_equal(buf, "\x01" "AB\x04", 4);
	assert_int_equal(vhdx_io_get_fd(io), -1);
	assert_ok(vhdx_io_flush(io));
	vhdx_io_close(io);
	vhdx_io_close(NULL);
}

static void test_mem_grow_large(void **state)
{
	struct vhdx_io *io;
	uint8_t *big = malloc(3 << 20), *back = malloc(3 << 20);
	uint64_t size;

	assert_non_null(big);
	assert_non_null(back);
	for (size_t i = 0; i < (3u << 20); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_ok(vhdx_io_mem_new(NULL, 0, NULL, &io));
	assert_string_equal(io->name, "mem");
	/* many small appends, then one big write across the old end */
	for (unsigned i = 0; i < 100; i++)
		assert_ok(vhdx_io_pwrite(io, big + 512 * i, 512, 512 * i, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pwrite(io, big + 40000, (3u << 20) - 40000, 40000, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 3u << 20);
	assert_ok(vhdx_io_pread(io, back, 3u << 20, 0, VHDX_TAG_PAYLOAD));
	assert_memory_equal(back, big, 3u << 20);
	vhdx_io_close(io);
	free(big);
	free(back);
}

static void test_mem_set_size(void **state)
{
	struct vhdx_io *io;
	uint8_t buf[64];
	uint64_t size;

	memset(buf, 0xab, sizeof buf);
	assert_ok(vhdx_io_mem_new(buf, sizeof buf, "s", &io));
	assert_ok(vhdx_io_set_size(io, 10));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 10);
	assert_fails(vhdx_io_pread(io, buf, 1, 10, VHDX_TAG_OTHER), -EBADMSG, "past the end of the file");
	/* growing again shows zeros, not the old bytes */
	assert_ok(vhdx_io_set_size(io, 64));
	assert_ok(vhdx_io_pread(io, buf, 64, 0, VHDX_TAG_OTHER));
	for (int i = 0; i < 64; i++)
		assert_int_equal(buf[i], i < 10 ? 0xab : 0);
	assert_ok(vhdx_io_set_size(io, 0));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 0);
	vhdx_io_close(io);
}

static void test_short_read_message(void **state)
{
	struct vhdx_io *io;
	uint8_t buf[4096];

	assert_ok(vhdx_io_mem_new(NULL, 0, "img.vhdx", &io));
	assert_ok(vhdx_io_set_size(io, 0x10000 + 100));
	/* entirely past the end */
	assert_fails(vhdx_io_pread(io, buf, 4096, 0x20000, VHDX_TAG_BAT), -EBADMSG,
		     "img.vhdx: BAT at offset 0x20000 (+4096 bytes) lies past the end of the file");
	/* straddling the end: a short read is an error, never partial data */
	assert_fails(vhdx_io_pread(io, buf, 4096, 0x10000, VHDX_TAG_HEADER), -EBADMSG,
		     "img.vhdx: header at offset 0x10000 (+4096 bytes) lies past the end of the file");
	assert_fails(vhdx_io_pread_payload(io, buf, 512, 0x10000 + 99, 7), -EBADMSG,
		     "img.vhdx: payload at offset 0x10063 (+512 bytes)");
	/* an offset so large that offset + length overflows */
	assert_fails(vhdx_io_pread(io, buf, 16, UINT64_MAX - 3, VHDX_TAG_BITMAP), -EBADMSG,
		     "sector bitmap at offset 0xfffffffffffffffc");
	vhdx_io_close(io);
}

static void test_readonly(void **state)
{
	struct vhdx_io *io;
	uint8_t buf[8] = { 0 };
	uint64_t size;

	assert_ok(vhdx_io_mem_new(buf, sizeof buf, "ro.vhdx", &io));
	io->readonly = true;
	assert_fails(vhdx_io_pwrite(io, "x", 1, 0, VHDX_TAG_HEADER), -EROFS,
		     "ro.vhdx: opened read-only; refusing to write header at offset 0x0");
	assert_fails(vhdx_io_pwrite_payload(io, "x", 1, 0x100000, 0), -EROFS, "payload at offset 0x100000");
	assert_fails(vhdx_io_set_size(io, 1 << 20), -EROFS, "ro.vhdx: opened read-only; refusing to resize to 1048576");
	/* flushing a read-only file is a no-op success */
	assert_ok(vhdx_io_flush(io));
	/* nothing changed */
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 8);
	assert_ok(vhdx_io_pread(io, buf, 8, 0, VHDX_TAG_OTHER));
	assert_int_equal(buf[0], 0);
	assert_true(io->cnt.ops[VHDX_IO_WRITE] == 0);
	vhdx_io_close(io);
}

static void test_counters(void **state)
{
	struct vhdx_io *io;
	uint8_t buf[100];

	assert_ok(vhdx_io_mem_new(NULL, 0, "c", &io));
	assert_ok(vhdx_io_pwrite(io, buf, 100, 0, VHDX_TAG_BAT));
	assert_ok(vhdx_io_pwrite(io, buf, 50, 200, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pread(io, buf, 10, 0, VHDX_TAG_BAT));
	assert_ok(vhdx_io_pread(io, buf, 20, 0, VHDX_TAG_HEADER));
	assert_true(io->cnt.bytes[VHDX_IO_READ] == 30);
	assert_int_equal(vhdx_io_pread(io, buf, 20, 1000, VHDX_TAG_HEADER), -EBADMSG);
	assert_ok(vhdx_io_flush(io));
	assert_ok(vhdx_io_set_size(io, 4096));
	assert_true(io->cnt.ops[VHDX_IO_WRITE] == 2);
	assert_true(io->cnt.bytes[VHDX_IO_WRITE] == 150);
	assert_true(io->cnt.ops[VHDX_IO_READ] == 3);
	assert_true(io->cnt.errors[VHDX_IO_READ] == 1);
	assert_true(io->cnt.errors[VHDX_IO_WRITE] == 0);
	assert_true(io->cnt.ops[VHDX_IO_FLUSH] == 1);
	assert_true(io->cnt.ops[VHDX_IO_TRUNCATE] == 1);
	assert_true(io->cnt.tag_ops[VHDX_TAG_BAT] == 2);
	assert_true(io->cnt.tag_ops[VHDX_TAG_HEADER] == 2);
	assert_true(io->cnt.tag_ops[VHDX_TAG_PAYLOAD] == 1);
	assert_true(io->cnt.tag_ops[VHDX_TAG_LOG] == 0);
	vhdx_io_close(io);
}

static void test_context_and_errors(void **state)
{
	struct rec_io *r = rec_new(1 << 20);
	uint8_t buf[512];

	assert_ok(vhdx_io_pread(&r->io, buf, 512, 4096, VHDX_TAG_METADATA));
	assert_int_equal(r->seen_tag, VHDX_TAG_METADATA);
	assert_true(r->seen_voff == VHDX_NO_VOFF);
	assert_ok(vhdx_io_pread_payload(&r->io, buf, 512, 8192, 0x123400));
	assert_int_equal(r->seen_tag, VHDX_TAG_PAYLOAD);
	assert_true(r->seen_voff == 0x123400);
	assert_ok(vhdx_io_pwrite_payload(&r->io, buf, 512, 8192, 0x5600));
	assert_int_equal(r->seen_tag, VHDX_TAG_PAYLOAD);
	assert_true(r->seen_voff == 0x5600);
	assert_ok(vhdx_io_pwrite(&r->io, buf, 512, 8192, VHDX_TAG_LOG));
	assert_int_equal(r->seen_tag, VHDX_TAG_LOG);
	assert_true(r->seen_voff == VHDX_NO_VOFF);
	/* the context is reset after each call */
	assert_int_equal(vhdx_io_current()->tag, VHDX_TAG_OTHER);
	assert_true(vhdx_io_current()->voff == VHDX_NO_VOFF);

	/* backend errors pass through with the code and gain file/tag/offset context */
	r->fail_with = EIO;
	assert_fails(vhdx_io_pread(&r->io, buf, 512, 0x30000, VHDX_TAG_REGION), -EIO,
		     "rec.vhdx: reading region table at offset 0x30000 (512 bytes): disk on fire");
	assert_fails(vhdx_io_pwrite_payload(&r->io, buf, 512, 0x400000, 0), -EIO,
		     "rec.vhdx: writing payload at offset 0x400000 (512 bytes): disk on fire");
	r->fail_with = ENOSPC;
	assert_fails(vhdx_io_pwrite(&r->io, buf, 512, 0x400000, VHDX_TAG_BAT), -ENOSPC, "writing BAT");
	assert_fails(vhdx_io_flush(&r->io), -ENOSPC, "rec.vhdx: flush: cache lost");
	assert_true(r->io.cnt.errors[VHDX_IO_READ] == 1);
	assert_true(r->io.cnt.errors[VHDX_IO_WRITE] == 2);
	assert_true(r->io.cnt.errors[VHDX_IO_FLUSH] == 1);
	assert_int_equal(vhdx_io_current()->tag, VHDX_TAG_OTHER);
	vhdx_io_close(&r->io);
}

static void test_tag_names(void **state)
{
	/* in the order of enum vhdx_tag (io/io.h), OTHER first; anything out of range is "?" */
	static const char *const want[] = { "other", "file identifier", "header", "region table",
					    "metadata", "log", "BAT", "sector bitmap",
					    "payload", "footer", "dynamic header" };

	assert_int_equal(VHDX_ARRAY_LEN(want), VHDX_TAG__COUNT);
	for (int t = 0; t < VHDX_TAG__COUNT; t++)
		assert_string_equal(vhdx_tag_name((enum vhdx_tag)t), want[t]);
	assert_string_equal(vhdx_tag_name(VHDX_TAG__COUNT), "?");
	assert_string_equal(vhdx_tag_name((enum vhdx_tag)-1), "?");
}

/* ---- file backend ---- */

static char tmp_path[64];

static int file_setup(void **state)
{
	int fd;

	snprintf(tmp_path, sizeof tmp_path, "/tmp/vhdx-test-io.XXXXXX");
	fd = mkstemp(tmp_path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int file_teardown(void **state)
{
	unlink(tmp_path);
	return 0;
}

static void test_file_backend(void **state)
{
	struct vhdx_io *io;
	uint8_t buf[8192], back[8192];
	uint64_t size;
	int fd;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	assert_ok(vhdx_io_file_open(tmp_path, true, &io));
	assert_string_equal(io->name, tmp_path);
	assert_false(io->readonly);
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 0);
	/* writes at scattered offsets, then reads at other offsets */
	assert_ok(vhdx_io_pwrite(io, buf, 8192, 1 << 20, VHDX_TAG_PAYLOAD));
	assert_ok(vhdx_io_pwrite(io, buf, 100, 3, VHDX_TAG_HEADER));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == (1 << 20) + 8192);
	assert_ok(vhdx_io_pread(io, back, 4000, (1 << 20) + 1000, VHDX_TAG_PAYLOAD));
	assert_memory_equal(back, buf + 1000, 4000);
	assert_ok(vhdx_io_pread(io, back, 103, 0, VHDX_TAG_HEADER));
	assert_int_equal(back[0], 0);
	assert_memory_equal(back + 3, buf, 100);
	/* the hole reads zeros */
	assert_ok(vhdx_io_pread(io, back, 512, 4096, VHDX_TAG_OTHER));
	for (int i = 0; i < 512; i++)
		assert_int_equal(back[i], 0);
	/* the descriptor sees the same bytes at the same offsets */
	fd = vhdx_io_get_fd(io);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, back, 16, (1 << 20) + 16), 16);
	assert_memory_equal(back, buf + 16, 16);
	/* past the end */
	assert_fails(vhdx_io_pread(io, back, 16, (1 << 20) + 8190, VHDX_TAG_BAT), -EBADMSG,
		     "BAT at offset 0x101ffe (+16 bytes) lies past the end of the file");
	assert_errmsg_contains(tmp_path);
	/* set_size shrinks and grows */
	assert_ok(vhdx_io_set_size(io, 4096));
	assert_ok(vhdx_io_get_size(io, &size));
	assert_true(size == 4096);
	assert_ok(vhdx_io_set_size(io, 3 << 20));
	assert_ok(vhdx_io_pread(io, back, 8192, 1 << 20, VHDX_TAG_OTHER));
	for (int i = 0; i < 8192; i++)
		assert_int_equal(back[i], 0);
	assert_ok(vhdx_io_flush(io));
	assert_true(io->cnt.ops[VHDX_IO_FLUSH] == 1);
	vhdx_io_close(io);

	/* read-only open: reads work, writes are refused, the file is untouched */
	assert_ok(vhdx_io_file_open(tmp_path, false, &io));
	assert_true(io->readonly);
	assert_ok(vhdx_io_pread(io, back, 100, 3, VHDX_TAG_OTHER));
	assert_memory_equal(back, buf, 100);
	assert_fails(vhdx_io_pwrite(io, buf, 1, 0, VHDX_TAG_HEADER), -EROFS, "opened read-only");
	assert_fails(vhdx_io_set_size(io, 0), -EROFS, "refusing to resize");
	vhdx_io_close(io);
}

static void test_file_open_errors(void **state)
{
	struct vhdx_io *io;
	int fd;

	assert_fails(vhdx_io_file_open("/nonexistent-dir/x.vhdx", false, &io), -ENOENT,
		     "/nonexistent-dir/x.vhdx: cannot open: No such file or directory");
	assert_fails(vhdx_io_file_open("/nonexistent-dir/x.vhdx", true, &io), -ENOENT, "cannot open for writing");

	/* a borrowed descriptor stays open after close */
	fd = open(tmp_path, O_RDWR);
	assert_true(fd >= 0);
	assert_ok(vhdx_io_file_from_fd(fd, "borrowed", true, false, &io));
	assert_ok(vhdx_io_pwrite(io, "abc", 3, 0, VHDX_TAG_OTHER));
	vhdx_io_close(io);
	assert_true(fcntl(fd, F_GETFD) != -1); /* still a valid descriptor */
	assert_int_equal(close(fd), 0);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_mem_basic),
	  cmocka_unit_test(test_mem_grow_large),
	  cmocka_unit_test(test_mem_set_size),
	  cmocka_unit_test(test_short_read_message),
	  cmocka_unit_test(test_readonly),
	  cmocka_unit_test(test_counters),
	  cmocka_unit_test(test_context_and_errors),
	  cmocka_unit_test(test_tag_names),
	  cmocka_unit_test_setup_teardown(test_file_backend, file_setup, file_teardown),
	  cmocka_unit_test_setup_teardown(test_file_open_errors, file_setup, file_teardown))
