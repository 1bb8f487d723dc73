/*
 * test_utf16.c - codec/utf16.h: UTF-16LE/BE <-> UTF-8 for locator keys,
 * values and VHD parent names.  Bad surrogates and odd lengths must be
 * errors (these strings become file paths), never replaced.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/utf16.h"

static void check_to8(const uint8_t *u16, size_t len, bool be, const char *expect)
{
	char *s = NULL;

	assert_ok(vhdx_utf16_to_utf8(u16, len, be, false, &s));
	assert_non_null(s);
	assert_string_equal(s, expect);
	free(s);
}

static void test_ascii(void **state)
{
	static const uint8_t le[] = { 'a', 0, '\\', 0, 'Z', 0 };
	static const uint8_t be[] = { 0, 'a', 0, '\\', 0, 'Z' };

	check_to8(le, sizeof le, false, "a\\Z");
	check_to8(be, sizeof be, true, "a\\Z");
	/* the same bytes in the other order are other characters (U+6100 ...) */
	check_to8(le, sizeof le, true, "\xe6\x84\x80\xe5\xb0\x80\xe5\xa8\x80");
	check_to8(le, 0, false, "");
}

static void test_bmp(void **state)
{
	/* U+00E9 e-acute (2-byte UTF-8), U+20AC euro (3 bytes), U+FFFD */
	static const uint8_t le[] = { 0xe9, 0x00, 0xac, 0x20, 0xfd, 0xff };
	static const uint8_t be[] = { 0x00, 0xe9, 0x20, 0xac, 0xff, 0xfd };

	check_to8(le, sizeof le, false, "\xc3\xa9\xe2\x82\xac\xef\xbf\xbd");
	check_to8(be, sizeof be, true, "\xc3\xa9\xe2\x82\xac\xef\xbf\xbd");
}

static void test_surrogate_pairs(void **state)
{
	/* U+1F600 = D83D DE00; U+10000 = D800 DC00; U+10FFFF = DBFF DFFF */
	static const uint8_t le[] = { 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xd8, 0x00, 0xdc, 0xff, 0xdb, 0xff, 0xdf };
	static const uint8_t be[] = { 0xd8, 0x3d, 0xde, 0x00, 0xd8, 0x00, 0xdc, 0x00, 0xdb, 0xff, 0xdf, 0xff };
	const char *utf8 = "\xf0\x9f\x98\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";

	check_to8(le, sizeof le, false, utf8);
	check_to8(be, sizeof be, true, utf8);
}

static void test_bad_surrogates(void **state)
{
	static const uint8_t lone_high_end[] = { 'a', 0, 0x3d, 0xd8 };
	static const uint8_t high_then_bmp[] = { 0x3d, 0xd8, 'a', 0 };
	static const uint8_t lone_low[] = { 0x00, 0xde, 'a', 0 };
	static const uint8_t high_high[] = { 0x3d, 0xd8, 0x3d, 0xd8, 0x00, 0xde };
	static const uint8_t high_then_e000[] = { 0x3d, 0xd8, 0x00, 0xe0 }; /* just above the low range */
	static const uint8_t high_then_dbff[] = { 0x3d, 0xd8, 0xff, 0xdb }; /* just below it */
	char *s = (char *)0x1;

	assert_int_equal(vhdx_utf16_to_utf8(lone_high_end, sizeof lone_high_end, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(high_then_bmp, sizeof high_then_bmp, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(lone_low, sizeof lone_low, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(high_high, sizeof high_high, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(high_then_e000, sizeof high_then_e000, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(high_then_dbff, sizeof high_then_dbff, false, false, &s), -EINVAL);
	/* *out untouched on failure */
	assert_ptr_equal(s, (char *)0x1);
}

static void test_odd_length(void **state)
{
	static const uint8_t le[] = { 'a', 0, 'b' };
	char *s = NULL;

	assert_int_equal(vhdx_utf16_to_utf8(le, 3, false, false, &s), -EINVAL);
	assert_int_equal(vhdx_utf16_to_utf8(le, 1, false, true, &s), -EINVAL);
	assert_null(s);
}

static void test_embedded_nul(void **state)
{
	static const uint8_t le[] = { 'a', 0, 0, 0, 'b', 0 };
	char *s = NULL;

	/* a locator string must not contain NUL */
	assert_int_equal(vhdx_utf16_to_utf8(le, sizeof le, false, false, &s), -EINVAL);
	assert_null(s);
	/* a NUL-padded field (creator, VHD parent name) stops at the first NUL */
	assert_ok(vhdx_utf16_to_utf8(le, sizeof le, false, true, &s));
	assert_string_equal(s, "a");
	free(s);
	s = NULL;
	assert_ok(vhdx_utf16_to_utf8(le + 2, 4, false, true, &s));
	assert_string_equal(s, "");
	free(s);
}

static void test_to_utf16(void **state)
{
	const char *in = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const uint8_t le[] = { 'a', 0, 0xe9, 0, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde };
	static const uint8_t be[] = { 0, 'a', 0, 0xe9, 0x20, 0xac, 0xd8, 0x3d, 0xde, 0x00 };
	uint8_t *out = NULL;
	size_t outlen = 0;
	char *back = NULL;

	assert_ok(vhdx_utf8_to_utf16(in, false, &out, &outlen));
	assert_int_equal(outlen, sizeof le);
	assert_memory_equal(out, le, sizeof le);
	assert_ok(vhdx_utf16_to_utf8(out, outlen, false, false, &back));
	assert_string_equal(back, in);
	free(out);
	free(back);
	assert_ok(vhdx_utf8_to_utf16(in, true, &out, &outlen));
	assert_int_equal(outlen, sizeof be);
	assert_memory_equal(out, be, sizeof be);
	free(out);
	assert_ok(vhdx_utf8_to_utf16("", false, &out, &outlen));
	assert_int_equal(outlen, 0);
	free(out);
}

static void test_bad_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",                 /* continuation without lead */
		"a\xc3",                /* truncated 2-byte */
		"\xe2\x82",             /* truncated 3-byte */
		"\xe2\x28\xa1",         /* bad continuation */
		"\xed\xa0\x80",         /* encoded surrogate U+D800 */
		"\xf4\x90\x80\x80",     /* U+110000 */
		"\xff",
	};
	uint8_t *out = NULL;
	size_t outlen = 0;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(bad); i++) {
		int r = vhdx_utf8_to_utf16(bad[i], false, &out, &outlen);
		if (r != -EINVAL)
			fail_msg("bad UTF-8 #%zu converted with %d", i, r);
	}
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_ascii),          cmocka_unit_test(test_bmp),
	  cmocka_unit_test(test_surrogate_pairs), cmocka_unit_test(test_bad_surrogates),
	  cmocka_unit_test(test_odd_length),     cmocka_unit_test(test_embedded_nul),
	  cmocka_unit_test(test_to_utf16),       cmocka_unit_test(test_bad_utf8))
