/*
 * unit_codec.h - the fixture of a codec unit test that decodes one table
 * laid out by hand: a zeroed buffer and a zeroed decoded table, fresh for
 * the group, and the entries of its region or metadata table.  Include
 * after lib/unit.h.
 */
#ifndef VHDX_TESTS_UNIT_CODEC_H
#define VHDX_TESTS_UNIT_CODEC_H

#include "codec/endian.h"

/*
 * Declares the file's statics `buf` (BUF_SIZE bytes) and `tab` (one
 * TAB_TYPE), and the group's setup() and teardown() that allocate and free
 * them.
 */
#define UNIT_CODEC_FIXTURE(buf_size, tab_type)                                                            \
	static uint8_t *buf;                                                                              \
	static tab_type *tab;                                                                             \
                                                                                                          \
	static int setup(void **state)                                                                    \
	{                                                                                                 \
		(void)state;                                                                              \
		buf = calloc(1, (buf_size));                                                              \
		tab = calloc(1, sizeof *tab);                                                             \
		return buf && tab ? 0 : -1;                                                               \
	}                                                                                                 \
                                                                                                          \
	static int teardown(void **state)                                                                 \
	{                                                                                                 \
		(void)state;                                                                              \
		free(buf);                                                                                \
		free(tab);                                                                                \
		return 0;                                                                                 \
	}

/*
 * Lays out at P one 32-byte entry of a region or metadata table (MS-VHDX
 * 2.2.3.2, 2.6.1.2): GUID, the offset in OFF_BYTES (8 or 4) bytes, then
 * the length and the flags, little-endian.
 */
static inline void unit_put_guid_entry(uint8_t *p, const uint8_t guid[16], uint64_t off, unsigned off_bytes,
				       uint32_t len, uint32_t flags)
{
	memcpy(p, guid, 16);
	if (off_bytes == 8)
		vhdx_put_le64(p + 16, off);
	else
		vhdx_put_le32(p + 16, (uint32_t)off);
	vhdx_put_le32(p + 16 + off_bytes, len);
	vhdx_put_le32(p + 20 + off_bytes, flags);
}

#endif /* VHDX_TESTS_UNIT_CODEC_H */
