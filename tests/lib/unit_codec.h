/*
 * unit_codec.h - the fixture of a codec unit test that decodes one table
 * laid out by hand: a zeroed buffer and a zeroed decoded table, fresh for
 * the group.  Include after lib/unit.h.
 */
#ifndef VHDX_TESTS_UNIT_CODEC_H
#define VHDX_TESTS_UNIT_CODEC_H

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

#endif /* VHDX_TESTS_UNIT_CODEC_H */
