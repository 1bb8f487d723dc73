/*
 * test_crc32c.c - codec/crc32c.h: CRC-32C (Castagnoli) against published
 * check values, incremental use, every alignment of the slicing-by-8 loop,
 * and the "own field at offset 4 counts as zero" variant of MS-VHDX 2.2.2.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/crc_ref.h"
#include "codec/crc32c.h"
#include "codec/endian.h"

static void test_check_value(void **state)
{
	/* the standard check value of CRC-32C (RFC 3720 / "CRC catalogue") */
	assert_int_equal(vhdx_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(vhdx_crc32c(0, "", 0), 0);
}

static void test_rfc3720_vectors(void **state)
{
	uint8_t buf[48];

	/* RFC 3720 appendix B.4 */
	memset(buf, 0, 32);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, 32);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x113fdb5cu);
}

static void test_incremental(void **state)
{
	const char *s = "123456789";

	for (size_t cut = 0; cut <= 9; cut++) {
		uint32_t c = vhdx_crc32c(0, s, cut);
		assert_int_equal(vhdx_crc32c(c, s + cut, 9 - cut), 0xe3069283u);
	}
}

/* every start alignment and length around the 8-byte step against the bitwise reference */
static void test_alignments(void **state)
{
	uint8_t *buf = malloc(4096 + 16);

	assert_non_null(buf);
	for (size_t i = 0; i < 4096 + 16; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 40; len++)
			assert_int_equal(vhdx_crc32c(0, buf + off, len), crc_ref(CRC_REF_CASTAGNOLI, buf + off, len));
	assert_int_equal(vhdx_crc32c(0, buf + 3, 4096), crc_ref(CRC_REF_CASTAGNOLI, buf + 3, 4096));
	free(buf);
}

static void test_struct_variant(void **state)
{
	uint8_t buf[4096], copy[4096];

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i ^ (i >> 8));
	memcpy(copy, buf, sizeof buf);
	memset(copy + 4, 0, 4);
	/* the field's own bytes do not matter */
	assert_int_equal(vhdx_crc32c_struct(buf, sizeof buf), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
	vhdx_put_le32(buf + 4, 0xdeadbeefu);
	assert_int_equal(vhdx_crc32c_struct(buf, sizeof buf), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
	/* the input is not modified */
	assert_int_equal(vhdx_get_le32(buf + 4), 0xdeadbeefu);
	/* any other byte does matter */
	buf[0] ^= 1;
	assert_int_not_equal(vhdx_crc32c_struct(buf, sizeof buf), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
	buf[0] ^= 1;
	buf[8] ^= 0x80;
	assert_int_not_equal(vhdx_crc32c_struct(buf, sizeof buf), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
	buf[8] ^= 0x80;
	buf[4095] ^= 1;
	assert_int_not_equal(vhdx_crc32c_struct(buf, sizeof buf), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
	/* "head" + zero CRC + 4088 zero bytes: stored CRC makes a self-consistent header */
	memset(buf, 0, sizeof buf);
	memcpy(buf, "head", 4);
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, sizeof buf));
	memcpy(copy, buf, sizeof buf);
	memset(copy + 4, 0, 4);
	assert_int_equal(vhdx_get_le32(buf + 4), crc_ref(CRC_REF_CASTAGNOLI, copy, sizeof copy));
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_check_value), cmocka_unit_test(test_rfc3720_vectors),
	  cmocka_unit_test(test_incremental), cmocka_unit_test(test_alignments),
	  cmocka_unit_test(test_struct_variant))
