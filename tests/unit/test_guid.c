/*
 * test_guid.c - codec/guid.h: GUID text <-> mixed-endian on-disk bytes
 * (FORMAT.md 1.1: Data1..Data3 little-endian, Data4 as stored).
 */
#include "config.h"

#include "lib/unit.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"

/* FORMAT.md 1.1: the BAT region GUID and its on-disk bytes */
static const uint8_t bat_bytes[16] = { 0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
				       0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };

static void test_parse_mixed_endian(void **state)
{
	uint8_t g[16];

	assert_ok(vhdx_guid_parse("2DC27766-F623-4200-9D64-115E9BFD4A08", g));
	assert_memory_equal(g, bat_bytes, 16);
	/* and the library's own constant agrees */
	assert_memory_equal(VHDX_GUID_BAT_REGION, bat_bytes, 16);
}

static void test_format(void **state)
{
	char s[VHDX_GUID_STRLEN];

	vhdx_guid_format(bat_bytes, s);
	assert_string_equal(s, "2dc27766-f623-4200-9d64-115e9bfd4a08");
	assert_int_equal(strlen(s), VHDX_GUID_STRLEN - 1);
}

static void test_braces_and_case(void **state)
{
	static const char *const forms[] = {
		"2dc27766-f623-4200-9d64-115e9bfd4a08",   "{2DC27766-F623-4200-9D64-115E9BFD4A08}",
		"{2dc27766-f623-4200-9d64-115e9bfd4a08}", "2Dc27766-F623-4200-9d64-115E9bFd4A08",
	};
	uint8_t g[16];

	for (size_t i = 0; i < VHDX_ARRAY_LEN(forms); i++) {
		memset(g, 0xaa, sizeof g);
		assert_ok(vhdx_guid_parse(forms[i], g));
		assert_memory_equal(g, bat_bytes, 16);
	}
	/* parse_n takes a length and needs no NUL */
	memset(g, 0, sizeof g);
	assert_ok(vhdx_guid_parse_n("{2DC27766-F623-4200-9D64-115E9BFD4A08}XYZ", 38, g));
	assert_memory_equal(g, bat_bytes, 16);
}

static void test_round_trip(void **state)
{
	uint8_t g[16], back[16];
	char s[VHDX_GUID_STRLEN];

	for (int seed = 0; seed < 64; seed++) {
		for (int i = 0; i < 16; i++)
			g[i] = (uint8_t)(seed * 37 + i * 11 + (seed >> 2) * i);
		vhdx_guid_format(g, s);
		assert_ok(vhdx_guid_parse(s, back));
		assert_memory_equal(g, back, 16);
	}
}

static void test_bad_inputs(void **state)
{
	static const char *const bad[] = {
		"",
		"2DC27766-F623-4200-9D64-115E9BFD4A0",     /* one digit short */
		"2DC27766-F623-4200-9D64-115E9BFD4A088",   /* one digit long */
		"2DC27766F623-4200-9D64-115E9BFD4A08-",    /* dash moved */
		"2DC27766-F623-4200-9D64_115E9BFD4A08",    /* wrong separator */
		"2DC27766-F623-4200-9D64-115E9BFD4AG8",    /* not hex */
		"{2DC27766-F623-4200-9D64-115E9BFD4A08",   /* unbalanced brace */
		"2DC27766-F623-4200-9D64-115E9BFD4A08}",
		"(2DC27766-F623-4200-9D64-115E9BFD4A08)",
		"{{2DC27766-F623-4200-9D64-115E9BFD4A08}}",
		" 2DC27766-F623-4200-9D64-115E9BFD4A08",
		"2DC27766-F623-4200-9D64-115E9BFD4A08 ",
		"-DC27766-F623-4200-9D64-115E9BFD4A08",
		"2DC27766-F623-4200-9D64-115E9BFD4A0-",
		"0x2DC277-F623-4200-9D64-115E9BFD4A08",
	};
	uint8_t g[16];

	for (size_t i = 0; i < VHDX_ARRAY_LEN(bad); i++) {
		int r = vhdx_guid_parse(bad[i], g);
		if (r != -EINVAL)
			fail_msg("\"%s\" parsed with %d, expected -EINVAL", bad[i], r);
	}
	/* an embedded NUL inside the length given to parse_n */
	assert_int_equal(vhdx_guid_parse_n("2DC27766-F623-4200-9D64-115E9BFD4A0\0", 36, g), -EINVAL);
}

static void test_is_zero(void **state)
{
	uint8_t g[16] = { 0 };

	assert_true(vhdx_guid_is_zero(g));
	for (int i = 0; i < 16; i++) {
		g[i] = 1;
		assert_false(vhdx_guid_is_zero(g));
		g[i] = 0;
	}
}

static void test_generate(void **state)
{
	uint8_t a[16], b[16];
	char s[VHDX_GUID_STRLEN];

	assert_ok(vhdx_guid_generate(a));
	assert_ok(vhdx_guid_generate(b));
	assert_memory_not_equal(a, b, 16);
	/* version 4 and RFC 4122 variant, visible in the text form */
	vhdx_guid_format(a, s);
	assert_int_equal(s[14], '4');
	assert_true(strchr("89ab", s[19]) != NULL);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_parse_mixed_endian), cmocka_unit_test(test_format),
	  cmocka_unit_test(test_braces_and_case),    cmocka_unit_test(test_round_trip),
	  cmocka_unit_test(test_bad_inputs),         cmocka_unit_test(test_is_zero),
	  cmocka_unit_test(test_generate))
