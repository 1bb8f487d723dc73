/*
 * test_vhdx_header.c - codec/vhdx_header.c: the file type identifier
 * (MS-VHDX 2.2.1) and the header (2.2.2): a good header decodes field by
 * field, and each rule broken in turn gives the documented code and a
 * message naming the field.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/vhdx_codec.h"

/* A header laid out by hand from the table in FORMAT.md 1.3 (not with the encoder). */
static void make_header(uint8_t buf[4096], uint64_t seq, uint16_t log_version, uint16_t version, uint32_t log_len,
			uint64_t log_off)
{
	memset(buf, 0, 4096);
	memcpy(buf, "head", 4);
	vhdx_put_le64(buf + 8, seq);
	for (int i = 0; i < 16; i++) {
		buf[16 + i] = (uint8_t)(0x10 + i); /* FileWriteGuid */
		buf[32 + i] = (uint8_t)(0x20 + i); /* DataWriteGuid */
		buf[48 + i] = 0;                   /* LogGuid */
	}
	vhdx_put_le16(buf + 64, log_version);
	vhdx_put_le16(buf + 66, version);
	vhdx_put_le32(buf + 68, log_len);
	vhdx_put_le64(buf + 72, log_off);
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, 4096));
}

static void test_decode_good(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;

	make_header(buf, 0x0102030405060708ull, 0, 1, 1 << 20, 1 << 20);
	assert_ok(vhdx_header_decode(buf, sizeof buf, &h));
	assert_true(h.seq == 0x0102030405060708ull);
	assert_int_equal(h.checksum, vhdx_get_le32(buf + 4));
	for (int i = 0; i < 16; i++) {
		assert_int_equal(h.file_write_guid[i], 0x10 + i);
		assert_int_equal(h.data_write_guid[i], 0x20 + i);
		assert_int_equal(h.log_guid[i], 0);
	}
	assert_int_equal(h.log_version, 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.log_length, 1 << 20);
	assert_true(h.log_offset == 1 << 20);
	/* no log at all is fine too */
	make_header(buf, 1, 0, 1, 0, 0);
	assert_ok(vhdx_header_decode(buf, sizeof buf, &h));
	/* a large log far out */
	make_header(buf, 1, 0, 1, 64u << 20, 1ull << 40);
	assert_ok(vhdx_header_decode(buf, sizeof buf, &h));
}

static void test_short(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;

	make_header(buf, 1, 0, 1, 1 << 20, 1 << 20);
	assert_fails(vhdx_header_decode(buf, 4095, &h), -EBADMSG, "4095 bytes is too short");
}

static void test_bad_signature(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;

	make_header(buf, 1, 0, 1, 1 << 20, 1 << 20);
	buf[0] = 'H';
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, 4096)); /* CRC right, signature wrong */
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "signature");
}

static void test_bad_crc(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;
	char expect[96];
	uint32_t good;

	make_header(buf, 1, 0, 1, 1 << 20, 1 << 20);
	good = vhdx_get_le32(buf + 4);
	/* a flipped bit anywhere (also in the reserved area) breaks the CRC */
	for (size_t off = 8; off < 4096; off += 509) {
		buf[off] ^= 0x40;
		snprintf(expect, sizeof expect, "stored 0x%08x, computed 0x%08x", good,
			 vhdx_crc32c_struct(buf, 4096));
		assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "CRC-32C mismatch");
		assert_errmsg_contains(expect);
		buf[off] ^= 0x40;
	}
	vhdx_put_le32(buf + 4, good ^ 1);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "CRC-32C");
}

static void test_bad_versions(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;

	make_header(buf, 1, 0, 2, 1 << 20, 1 << 20);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -ENOTSUP, "version 2");
	make_header(buf, 1, 0, 0, 1 << 20, 1 << 20);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -ENOTSUP, "version 0");
	make_header(buf, 1, 1, 1, 1 << 20, 1 << 20);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -ENOTSUP, "log version 1");
}

static void test_bad_log_placement(void **state)
{
	uint8_t buf[4096];
	struct vhdx_header h;

	/* length not a 1 MiB multiple */
	make_header(buf, 1, 0, 1, (1 << 20) + 4096, 1 << 20);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "log length 0x101000");
	make_header(buf, 1, 0, 1, 4096, 1 << 20);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "log length");
	/* offset not a 1 MiB multiple */
	make_header(buf, 1, 0, 1, 1 << 20, (1 << 20) + 512);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "log offset 0x100200");
	/* offset inside the first megabyte */
	make_header(buf, 1, 0, 1, 1 << 20, 0);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "log offset 0x0");
	/* offset + length overflows */
	make_header(buf, 1, 0, 1, 1 << 20, 0xfffffffffff00000ull);
	assert_fails(vhdx_header_decode(buf, sizeof buf, &h), -EBADMSG, "overflows");
}

static void test_encode_round_trip(void **state)
{
	uint8_t buf[4096], hand[4096];
	struct vhdx_header h = { 0 }, back;

	h.seq = 0x0102030405060708ull;
	for (int i = 0; i < 16; i++) {
		h.file_write_guid[i] = (uint8_t)(0x10 + i);
		h.data_write_guid[i] = (uint8_t)(0x20 + i);
	}
	h.version = 1;
	h.log_length = 1 << 20;
	h.log_offset = 1 << 20;
	memset(buf, 0xcc, sizeof buf); /* the encoder must clear the reserved bytes */
	vhdx_header_encode(&h, buf);
	/* byte-identical to the hand-made header of the same fields */
	make_header(hand, h.seq, 0, 1, 1 << 20, 1 << 20);
	assert_memory_equal(buf, hand, sizeof buf);
	assert_ok(vhdx_header_decode(buf, sizeof buf, &back));
	assert_true(back.seq == h.seq);
	assert_memory_equal(back.file_write_guid, h.file_write_guid, 16);
	assert_memory_equal(back.data_write_guid, h.data_write_guid, 16);
	assert_memory_equal(back.log_guid, h.log_guid, 16);
	assert_int_equal(back.log_length, h.log_length);
	assert_true(back.log_offset == h.log_offset);
	/* a log GUID survives too */
	for (int i = 0; i < 16; i++)
		h.log_guid[i] = (uint8_t)(0xa0 + i);
	vhdx_header_encode(&h, buf);
	assert_ok(vhdx_header_decode(buf, sizeof buf, &back));
	assert_memory_equal(back.log_guid, h.log_guid, 16);
}

static void test_fileid(void **state)
{
	uint8_t *buf = malloc(VHDX_FILEID_SIZE);
	struct vhdx_fileid f;

	assert_non_null(buf);
	vhdx_fileid_encode("QEMU v8.0 \xc3\xa9", buf);
	assert_memory_equal(buf, "vhdxfile", 8);
	assert_int_equal(buf[8], 'Q');
	assert_int_equal(buf[9], 0);
	assert_ok(vhdx_fileid_decode(buf, VHDX_FILEID_SIZE, &f));
	assert_non_null(f.creator);
	assert_string_equal(f.creator, "QEMU v8.0 \xc3\xa9");
	vhdx_fileid_free(&f);
	assert_null(f.creator);

	/* an undecodable creator is not an error (informational field) */
	vhdx_put_le16(buf + 8, 0xdc00);
	assert_ok(vhdx_fileid_decode(buf, VHDX_FILEID_SIZE, &f));
	assert_null(f.creator);
	vhdx_fileid_free(&f);

	/* NULL creator: all zero after the signature */
	vhdx_fileid_encode(NULL, buf);
	for (size_t i = 8; i < VHDX_FILEID_SIZE; i++)
		if (buf[i])
			fail_msg("byte %zu of the identifier is 0x%02x", i, buf[i]);

	/* a creator longer than 256 UTF-16 units is cut and stays NUL terminated */
	{
		char longname[400];
		memset(longname, 'c', sizeof longname - 1);
		longname[sizeof longname - 1] = '\0';
		vhdx_fileid_encode(longname, buf);
		assert_ok(vhdx_fileid_decode(buf, VHDX_FILEID_SIZE, &f));
		assert_int_equal(strlen(f.creator), 255);
		vhdx_fileid_free(&f);
	}

	memcpy(buf, "vhdxfilE", 8);
	assert_fails(vhdx_fileid_decode(buf, VHDX_FILEID_SIZE, &f), -EBADMSG, "signature");
	assert_fails(vhdx_fileid_decode(buf, 519, &f), -EBADMSG, "too short");
	free(buf);
}

UNIT_MAIN_TESTS(NULL, NULL,
		test_decode_good, test_short, test_bad_signature, test_bad_crc, test_bad_versions, test_bad_log_placement,
		test_encode_round_trip, test_fileid)
