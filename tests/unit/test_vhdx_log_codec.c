/*
 * test_vhdx_log_codec.c - codec/vhdx_log_codec.c (MS-VHDX 2.3.1): the
 * encoder's bytes match an entry laid out by hand from the tables of
 * FORMAT.md 1.5; encode -> decode -> page rebuild gives back every page
 * byte for byte (including the 8 leading and 4 trailing bytes that travel
 * in the descriptor: the qemu issue #727 case); and every rule broken in
 * turn (with the CRC made valid again, so that only that rule is wrong)
 * is refused with -EBADMSG and a message naming the rule.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_log_codec.h"

#define LOG_OFF (1u << 20)
#define LOG_LEN (1u << 20)
#define SEQ 0x0000000500000007ull /* both halves non-zero: SequenceHigh 5, SequenceLow 7 */

static const uint8_t GUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
				  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01 };

static void fill_page(uint8_t *p, unsigned salt)
{
	for (unsigned i = 0; i < 4096; i++)
		p[i] = (uint8_t)(i * 31 + salt * 7 + (i >> 8));
}

/* CRC-32C of the whole entry with bytes 4..7 as zero, stamped into bytes 4..7 (computed without the codec). */
static void restamp(uint8_t *buf, size_t len)
{
	vhdx_put_le32(buf + 4, 0);
	vhdx_put_le32(buf + 4, vhdx_crc32c(0, buf, len));
}

static void info_init(struct vhdx_log_entry_info *info, uint64_t seq, uint32_t tail)
{
	memset(info, 0, sizeof *info);
	info->seq = seq;
	info->tail = tail;
	memcpy(info->log_guid, GUID, 16);
	info->flushed_file_offset = 5u << 20;
	info->last_file_offset = 6u << 20;
}

/*
 * Encodes PAGES into a new buffer (*LEN bytes) with SEQ.  Pages: data at
 * 0x300000 (salt 1), zero 0x8000 bytes at 0x400000, data at 0x301000 (salt 2).
 */
static uint8_t *std_entry(size_t *len, uint8_t pages_out[2][4096])
{
	static uint8_t p1[4096], p2[4096];
	struct vhdx_log_page pages[3] = {
		{ 0x300000, p1, 0 },
		{ 0x400000, NULL, 0x8000 },
		{ 0x301000, p2, 0 },
	};
	struct vhdx_log_entry_info info;
	uint8_t *buf;

	fill_page(p1, 1);
	fill_page(p2, 2);
	if (pages_out) {
		memcpy(pages_out[0], p1, 4096);
		memcpy(pages_out[1], p2, 4096);
	}
	info_init(&info, SEQ, 0x2000);
	*len = vhdx_log_entry_size(pages, 3);
	buf = calloc(1, *len);
	assert_non_null(buf);
	vhdx_log_entry_encode(&info, pages, 3, buf);
	return buf;
}

/* The same entry, laid out by hand from FORMAT.md 1.5. */
static void hand_entry(uint8_t *buf, const uint8_t p1[4096], const uint8_t p2[4096])
{
	uint8_t *d;

	memset(buf, 0, 3 * 4096);
	memcpy(buf, "loge", 4);
	vhdx_put_le32(buf + 8, 3 * 4096);       /* EntryLength: 1 descriptor sector + 2 data sectors */
	vhdx_put_le32(buf + 12, 0x2000);        /* Tail */
	vhdx_put_le64(buf + 16, SEQ);
	vhdx_put_le32(buf + 24, 3);             /* DescriptorCount */
	memcpy(buf + 32, GUID, 16);
	vhdx_put_le64(buf + 48, 5u << 20);
	vhdx_put_le64(buf + 56, 6u << 20);
	d = buf + 64;                           /* data descriptor */
	memcpy(d, "desc", 4);
	memcpy(d + 4, p1 + 4092, 4);            /* TrailingBytes */
	memcpy(d + 8, p1, 8);                   /* LeadingBytes */
	vhdx_put_le64(d + 16, 0x300000);
	vhdx_put_le64(d + 24, SEQ);
	d += 32;                                /* zero descriptor */
	memcpy(d, "zero", 4);
	vhdx_put_le64(d + 8, 0x8000);
	vhdx_put_le64(d + 16, 0x400000);
	vhdx_put_le64(d + 24, SEQ);
	d += 32;
	memcpy(d, "desc", 4);
	memcpy(d + 4, p2 + 4092, 4);
	memcpy(d + 8, p2, 8);
	vhdx_put_le64(d + 16, 0x301000);
	vhdx_put_le64(d + 24, SEQ);
	for (int k = 0; k < 2; k++) {
		uint8_t *sec = buf + 4096 * (k + 1);
		const uint8_t *p = k ? p2 : p1;
		memcpy(sec, "data", 4);
		vhdx_put_le32(sec + 4, 5);      /* SequenceHigh */
		memcpy(sec + 8, p + 8, 4084);
		vhdx_put_le32(sec + 4092, 7);   /* SequenceLow */
	}
	restamp(buf, 3 * 4096);
}

static void test_encode_matches_hand_layout(void **state)
{
	uint8_t pages[2][4096], *hand;
	size_t len;
	uint8_t *buf = std_entry(&len, pages);

	assert_int_equal(len, 3 * 4096);
	hand = malloc(3 * 4096);
	assert_non_null(hand);
	hand_entry(hand, pages[0], pages[1]);
	assert_memory_equal(buf, hand, len);
	free(hand);
	free(buf);
}

static void test_roundtrip(void **state)
{
	uint8_t pages[2][4096], page[4096];
	struct vhdx_log_entry e;
	size_t len;
	uint8_t *buf = std_entry(&len, pages);

	assert_ok(vhdx_log_entry_decode(buf, len, LOG_OFF, LOG_LEN, GUID, &e));
	assert_int_equal(e.entry_length, 3 * 4096);
	assert_int_equal(e.tail, 0x2000);
	assert_true(e.seq == SEQ);
	assert_int_equal(e.desc_count, 3);
	assert_int_equal(e.data_count, 2);
	assert_memory_equal(e.log_guid, GUID, 16);
	assert_true(e.flushed_file_offset == 5u << 20);
	assert_true(e.last_file_offset == 6u << 20);
	assert_int_equal(e.checksum, vhdx_get_le32(buf + 4));

	assert_false(e.descs[0].is_zero);
	assert_true(e.descs[0].file_offset == 0x300000);
	assert_int_equal(e.descs[0].data_index, 0);
	assert_true(e.descs[1].is_zero);
	assert_true(e.descs[1].file_offset == 0x400000);
	assert_true(e.descs[1].zero_length == 0x8000);
	assert_false(e.descs[2].is_zero);
	assert_true(e.descs[2].file_offset == 0x301000);
	assert_int_equal(e.descs[2].data_index, 1);

	vhdx_log_entry_page(buf, &e, &e.descs[0], page);
	assert_memory_equal(page, pages[0], 4096);
	vhdx_log_entry_page(buf, &e, &e.descs[2], page);
	assert_memory_equal(page, pages[1], 4096);
	vhdx_log_entry_free(&e);
	assert_null(e.descs);
	free(buf);
}

/*
 * qemu issue #727: a page whose first 8 bytes are a BAT entry that changed.
 * Every byte position carries its own value, so a shift by 8 (the qemu
 * bug) or a lost leading/trailing word would show.
 */
static void test_leading_trailing_exact(void **state)
{
	uint8_t page[4096], back[4096], buf[2 * 4096];
	struct vhdx_log_page pg = { 0x200000, page, 0 };
	struct vhdx_log_entry_info info;
	struct vhdx_log_entry e;

	for (unsigned i = 0; i < 4096; i++)
		page[i] = (uint8_t)(i ^ (i >> 8) ^ 0x5a);
	vhdx_put_le64(page, vhdx_bat_make(6, 0x1500000));       /* BAT entry 0: FULLY_PRESENT at 21 MiB */
	vhdx_put_le64(page + 4088, vhdx_bat_make(2, 0));        /* last BAT entry of the page: ZERO */
	vhdx_put_le32(page + 4092, 0xdeadbeef);                 /* ... whose upper half is the trailing word */
	info_init(&info, 0x1234567890ull, 0);
	assert_int_equal(vhdx_log_entry_size(&pg, 1), sizeof buf);
	vhdx_log_entry_encode(&info, &pg, 1, buf);

	/* where the spec puts each piece */
	assert_memory_equal(buf + 64 + 8, page, 8);             /* LeadingBytes = page[0..8) */
	assert_memory_equal(buf + 64 + 4, page + 4092, 4);      /* TrailingBytes = page[4092..4096) */
	assert_memory_equal(buf + 4096 + 8, page + 8, 4084);    /* data sector bytes 8..4091 = page 8..4091 */
	assert_int_equal(vhdx_get_le32(buf + 4096 + 4), 0x12);         /* SequenceHigh */
	assert_int_equal(vhdx_get_le32(buf + 4096 + 4092), 0x34567890); /* SequenceLow */

	assert_ok(vhdx_log_entry_decode(buf, sizeof buf, LOG_OFF, LOG_LEN, GUID, &e));
	assert_true(e.descs[0].leading == vhdx_get_le64(page));
	assert_int_equal(e.descs[0].trailing, 0xdeadbeef);
	memset(back, 0xcc, sizeof back);
	vhdx_log_entry_page(buf, &e, &e.descs[0], back);
	assert_memory_equal(back, page, 4096);
	vhdx_log_entry_free(&e);
}

/* 130 descriptors: the descriptor area spills into a second sector (126 fit in the first, then 128). */
static void test_two_descriptor_sectors(void **state)
{
	enum { N = 130 };
	static uint8_t data[N][4096];
	struct vhdx_log_page pages[N];
	struct vhdx_log_entry_info info;
	struct vhdx_log_entry e;
	uint8_t page[4096], *buf;
	size_t len, ndata = 0;

	for (unsigned i = 0; i < N; i++) {
		pages[i].file_offset = 0x300000 + 0x1000ull * i;
		if (i % 3 == 1) {
			pages[i].data = NULL;
			pages[i].zero_length = 0x1000ull * (i % 5 + 1);
		} else {
			fill_page(data[i], i + 10);
			pages[i].data = data[i];
			pages[i].zero_length = 0;
			ndata++;
		}
	}
	len = vhdx_log_entry_size(pages, N);
	assert_int_equal(len, 2 * 4096 + ndata * 4096);
	buf = malloc(len);
	assert_non_null(buf);
	info_init(&info, 99, 0);
	vhdx_log_entry_encode(&info, pages, N, buf);
	/* descriptor 126 opens the second sector */
	assert_memory_equal(buf + 4096, "desc", 4);
	assert_true(vhdx_get_le64(buf + 4096 + 16) == 0x300000 + 0x1000ull * 126);
	assert_ok(vhdx_log_entry_decode(buf, len, LOG_OFF, LOG_LEN, GUID, &e));
	assert_int_equal(e.desc_count, N);
	assert_int_equal(e.data_count, ndata);
	for (unsigned i = 0; i < N; i++) {
		assert_true(e.descs[i].file_offset == pages[i].file_offset);
		assert_int_equal(e.descs[i].is_zero, pages[i].data == NULL);
		if (pages[i].data) {
			vhdx_log_entry_page(buf, &e, &e.descs[i], page);
			assert_memory_equal(page, data[i], 4096);
		} else {
			assert_true(e.descs[i].zero_length == pages[i].zero_length);
		}
	}
	vhdx_log_entry_free(&e);
	free(buf);
}

static void test_empty_entry(void **state)
{
	struct vhdx_log_entry_info info;
	struct vhdx_log_entry e;
	uint8_t buf[4096];

	assert_int_equal(vhdx_log_entry_size(NULL, 0), 4096);
	info_init(&info, 1, 0);
	vhdx_log_entry_encode(&info, NULL, 0, buf);
	assert_ok(vhdx_log_entry_decode(buf, sizeof buf, LOG_OFF, LOG_LEN, GUID, &e));
	assert_int_equal(e.desc_count, 0);
	assert_int_equal(e.data_count, 0);
	vhdx_log_entry_free(&e);
	assert_true(vhdx_log_entry_matches(buf, GUID));
	buf[40] ^= 1;
	assert_false(vhdx_log_entry_matches(buf, GUID));
	buf[40] ^= 1;
	buf[0] = 'L';
	assert_false(vhdx_log_entry_matches(buf, GUID));
}

/* ---- every rule broken in turn ---- */

struct mutation {
	const char *name;
	void (*apply)(uint8_t *buf, size_t *len);
	bool keep_crc;          /* do not restamp the CRC (the CRC test itself) */
	const char *msg;        /* expected part of the message */
};

/* The standard entry: descriptors at 64 (data, 0x300000), 96 (zero, 0x400000), 128 (data, 0x301000);
 * data sectors at 0x1000 and 0x2000. */
static void m_sig(uint8_t *b, size_t *l) { memcpy(b, "logx", 4); }
static void m_len_unaligned(uint8_t *b, size_t *l) { vhdx_put_le32(b + 8, 3 * 4096 + 512); }
static void m_len_zero(uint8_t *b, size_t *l) { vhdx_put_le32(b + 8, 0); }
static void m_len_too_big(uint8_t *b, size_t *l) { vhdx_put_le32(b + 8, LOG_LEN); }
static void m_tail_unaligned(uint8_t *b, size_t *l) { vhdx_put_le32(b + 12, 0x2800); }
static void m_tail_too_big(uint8_t *b, size_t *l) { vhdx_put_le32(b + 12, LOG_LEN); }
static void m_seq_zero(uint8_t *b, size_t *l) { vhdx_put_le64(b + 16, 0); }
static void m_guid(uint8_t *b, size_t *l) { b[32 + 15] ^= 0x80; }
static void m_flushed(uint8_t *b, size_t *l) { vhdx_put_le64(b + 48, (5u << 20) + 4096); }
static void m_last(uint8_t *b, size_t *l) { vhdx_put_le64(b + 56, (6u << 20) + 512); }
static void m_count_too_big(uint8_t *b, size_t *l) { vhdx_put_le32(b + 24, 400); }
static void m_desc_sig(uint8_t *b, size_t *l) { memcpy(b + 96, "zerO", 4); }
static void m_desc_seq(uint8_t *b, size_t *l) { vhdx_put_le64(b + 128 + 24, SEQ + 1); }
static void m_desc_foff(uint8_t *b, size_t *l) { vhdx_put_le64(b + 64 + 16, 0x300200); }
static void m_zero_len(uint8_t *b, size_t *l) { vhdx_put_le64(b + 96 + 8, 0x1001); }
static void m_below_192k(uint8_t *b, size_t *l) { vhdx_put_le64(b + 128 + 16, 0x10000); }
static void m_in_log(uint8_t *b, size_t *l) { vhdx_put_le64(b + 64 + 16, LOG_OFF + 0x5000); }
/* a zero range that starts below the log and runs into it */
static void m_zero_into_log(uint8_t *b, size_t *l)
{
	vhdx_put_le64(b + 96 + 16, LOG_OFF - 0x4000);
	vhdx_put_le64(b + 96 + 8, 0x5000);
}
static void m_zero_overflow(uint8_t *b, size_t *l)
{
	vhdx_put_le64(b + 96 + 16, 0xfffffffffffff000ull);
	vhdx_put_le64(b + 96 + 8, 0x2000);
}
static void m_data_sig(uint8_t *b, size_t *l) { memcpy(b + 0x2000, "dat4", 4); }
static void m_seq_high(uint8_t *b, size_t *l) { vhdx_put_le32(b + 0x1000 + 4, 6); }
static void m_seq_low(uint8_t *b, size_t *l) { vhdx_put_le32(b + 0x2000 + 4092, 8); }
/* one sector longer than the descriptors need (the buffer has room for it) */
static void m_len_exact(uint8_t *b, size_t *l)
{
	vhdx_put_le32(b + 8, 4 * 4096);
	*l = 4 * 4096;
}
/* a data descriptor turned into a zero one: the data sector count no longer adds up */
static void m_desc_kind(uint8_t *b, size_t *l) { memcpy(b + 128, "zero", 4); vhdx_put_le64(b + 128 + 8, 0); }
static void m_crc(uint8_t *b, size_t *l) { b[0x1000 + 2000] ^= 0x01; }

static const struct mutation mutations[] = {
	{ "signature", m_sig, false, "signature is not \"loge\"" },
	{ "EntryLength not a 4 KiB multiple", m_len_unaligned, false, "EntryLength 0x3200 is not a multiple of 4 KiB" },
	{ "EntryLength zero", m_len_zero, false, "EntryLength 0x0 is less than 4 KiB" },
	{ "EntryLength as long as the log", m_len_too_big, false, "EntryLength 0x100000 is not less than the log length 0x100000" },
	{ "Tail misaligned", m_tail_unaligned, false, "Tail 0x2800 is not 4 KiB aligned" },
	{ "Tail past the log", m_tail_too_big, false, "Tail 0x100000 is not less than the log length" },
	{ "SequenceNumber zero", m_seq_zero, false, "SequenceNumber is zero" },
	{ "LogGuid", m_guid, false, "differs from the header's LogGuid" },
	{ "FlushedFileOffset", m_flushed, false, "FlushedFileOffset 0x501000 is not a multiple of 1 MiB" },
	{ "LastFileOffset", m_last, false, "LastFileOffset 0x600200 is not a multiple of 1 MiB" },
	{ "DescriptorCount", m_count_too_big, false, "DescriptorCount 400 needs 0x4000 bytes of descriptors, more than EntryLength 0x3000" },
	{ "descriptor signature", m_desc_sig, false, "descriptor 1 (entry offset 0x60): signature 0x4f72657a is neither \"zero\" nor \"desc\"" },
	{ "descriptor SequenceNumber", m_desc_seq, false, "descriptor 2 (entry offset 0x80): SequenceNumber 21474836488 differs from the entry's 21474836487" },
	{ "descriptor FileOffset alignment", m_desc_foff, false, "descriptor 0 (entry offset 0x40): FileOffset 0x300200 is not 4 KiB aligned" },
	{ "ZeroLength", m_zero_len, false, "descriptor 1 (entry offset 0x60): ZeroLength 0x1001 is not a multiple of 4 KiB" },
	{ "target below 192 KiB", m_below_192k, false, "descriptor 2 (entry offset 0x80): targets 0x10000, below 192 KiB" },
	{ "target inside the log", m_in_log, false, "descriptor 0 (entry offset 0x40): target 0x105000 (+0x1000) lies inside the log at 0x100000 (+0x100000)" },
	{ "zero range into the log", m_zero_into_log, false, "descriptor 1 (entry offset 0x60): target 0xfc000 (+0x5000) lies inside the log" },
	{ "zero range overflows", m_zero_overflow, false, "descriptor 1 (entry offset 0x60): target 0xfffffffffffff000 + 0x2000 overflows" },
	{ "data sector signature", m_data_sig, false, "data sector 1 (entry offset 0x2000): signature is not \"data\"" },
	{ "SequenceHigh", m_seq_high, false, "data sector 0 (entry offset 0x1000): SequenceHigh 0x00000006 / SequenceLow 0x00000007 do not match" },
	{ "SequenceLow", m_seq_low, false, "data sector 1 (entry offset 0x2000): SequenceHigh 0x00000005 / SequenceLow 0x00000008 do not match" },
	{ "EntryLength not exact", m_len_exact, false, "EntryLength 0x4000 differs from the 0x3000 that 3 descriptors (2 with data) need" },
	{ "descriptor kinds vs data sectors", m_desc_kind, false, "EntryLength 0x3000 differs from the 0x2000 that 3 descriptors (1 with data) need" },
	{ "CRC", m_crc, true, "CRC-32C mismatch (stored 0x" },
};

static void test_rules(void **state)
{
	for (size_t i = 0; i < VHDX_ARRAY_LEN(mutations); i++) {
		const struct mutation *m = &mutations[i];
		struct vhdx_log_entry e;
		size_t len;
		uint8_t *buf = std_entry(&len, NULL), *big;

		/* room for the longer variants; the unused tail is zero */
		big = calloc(1, 5 * 4096);
		assert_non_null(big);
		memcpy(big, buf, len);
		free(buf);
		/* the untouched entry is valid (so the failure below is the mutation's) */
		assert_ok(vhdx_log_entry_decode(big, len, LOG_OFF, LOG_LEN, GUID, &e));
		vhdx_log_entry_free(&e);

		m->apply(big, &len);
		if (!m->keep_crc)
			restamp(big, len);
		print_message("rule: %s\n", m->name);
		assert_fails(vhdx_log_entry_decode(big, len, LOG_OFF, LOG_LEN, GUID, &e), -EBADMSG, m->msg);
		assert_null(e.descs); /* nothing left to free after a failure */
		free(big);
	}
}

/* The header-only check refuses the same header rules, from the first sector alone. */
static void test_header_decode(void **state)
{
	struct vhdx_log_entry e;
	size_t len;
	uint8_t *buf = std_entry(&len, NULL);

	assert_ok(vhdx_log_entry_header_decode(buf, 4096, LOG_LEN, GUID, &e));
	assert_int_equal(e.entry_length, 3 * 4096);
	assert_int_equal(e.desc_count, 3);
	assert_null(e.descs);
	assert_fails(vhdx_log_entry_header_decode(buf, 63, LOG_LEN, GUID, &e), -EBADMSG, "too short");
	/* a smaller log makes the same EntryLength too long */
	assert_fails(vhdx_log_entry_header_decode(buf, 4096, 0x3000, GUID, &e), -EBADMSG,
		     "EntryLength 0x3000 is not less than the log length 0x3000");
	m_tail_unaligned(buf, &len);
	assert_fails(vhdx_log_entry_header_decode(buf, 4096, LOG_LEN, GUID, &e), -EBADMSG,
		     "Tail 0x2800 is not 4 KiB aligned");
	/* a buffer shorter than EntryLength is refused by the full decode */
	free(buf);
	buf = std_entry(&len, NULL);
	assert_fails(vhdx_log_entry_decode(buf, len - 4096, LOG_OFF, LOG_LEN, GUID, &e), -EBADMSG,
		     "only 0x2000 bytes for an EntryLength of 0x3000");
	free(buf);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_encode_matches_hand_layout),
	  cmocka_unit_test(test_roundtrip),
	  cmocka_unit_test(test_leading_trailing_exact),
	  cmocka_unit_test(test_two_descriptor_sectors),
	  cmocka_unit_test(test_empty_entry),
	  cmocka_unit_test(test_rules),
	  cmocka_unit_test(test_header_decode))
