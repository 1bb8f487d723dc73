/*
 * damage.c - deterministic generator of damaged VHDX images, for
 * tests/test-damage.sh (a libarchive-style "damage the fixtures" test).
 *
 *   damage [--seed N] [--flips N] IMAGE OUTDIR
 *
 * Reads a good VHDX image, finds its structures (MS-VHDX 2.2 headers and
 * region tables, 2.6 metadata, 2.5 BAT) with its own small parser and the
 * CRC-32C of the test-image generator's library-free half
 * (tests/lib/gen_bytes.h: independent of libvhdx, the code under test),
 * and writes one damaged copy
 * per variant into OUTDIR (sparse: only non-zero 4 KiB pages are written),
 * plus OUTDIR/variants.tsv, one line per variant:
 *
 *   NAME <tab> EXPECT <tab> ARG <tab> DESCRIPTION <tab> OFFSET
 *
 * OFFSET is the file offset (decimal) of the one damaged structure that a
 * checker must name (the header or region table copy, the metadata table,
 * the BAT entry: of two entries on one block the later one), or "-" where
 * the damage has no single place (both copies, truncations, random flips).
 *
 * EXPECT says what a correct reader must do with the variant:
 *   same           read it without error, exactly as the good image
 *   error          refuse it: exit 1 with a message matching the regex ARG
 *   same-or-error  either of the two (a reader may or may not notice)
 *   zeroed         read it without error as the good image with the byte
 *                  range ARG ("OFFSET+LENGTH") zeroed (a BAT state change)
 *   prefix         read it without error as the first ARG bytes of the good
 *                  image (a smaller virtual size)
 *   ok             read it without error; the data may differ (payload flips)
 *   any            read it or refuse it with a message (random damage)
 *
 * Random byte flips use a seed from --seed, else $DAMAGE_SEED, else the
 * clock; it is printed so that a failure can be reproduced.  Variants that do
 * not apply to an image (e.g. two BAT entries when the disk has one block)
 * are left out.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/splitmix.h"
#include "lib/gen_bytes.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* Fixed layout of the first megabyte (MS-VHDX 2.2) */
#define HDR_OFF(i) ((i) ? 0x20000u : 0x10000u)
#define HDR_SIZE 4096u
#define RT_OFF(i) ((i) ? 0x40000u : 0x30000u)
#define RT_SIZE 65536u
#define RT_ENTRY(i) (16u + 32u * (i))
#define META_TABLE_SIZE 65536u
#define META_ENTRY(i) (32u + 32u * (i))

/* Header fields (2.2.2) */
#define H_SEQ 8
#define H_LOG_GUID 48
#define H_LOG_VERSION 64
#define H_VERSION 66
#define H_LOG_LEN 68
#define H_LOG_OFF 72

/* Metadata entry flags (2.6.1.2) */
#define MF_USER 1u
#define MF_VIRTUAL 2u
#define MF_REQUIRED 4u

/* BAT states (2.5.1.1) */
#define ST_NOT_PRESENT 0
#define ST_UNDEFINED 1
#define ST_ZERO 2
#define ST_UNMAPPED 3
#define ST_FULLY_PRESENT 6
#define ST_PARTIALLY_PRESENT 7

enum item { IT_PARAMS, IT_VSIZE, IT_DISKID, IT_LSS, IT_PSS, IT_COUNT };
static const char *const item_guid_str[IT_COUNT] = {
	"CAA16737-FA36-4D43-B3B6-33F0AA44E76B", "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
	"BECA12AB-B2E6-4523-93EF-C309E000C746", "8141BF1D-A96F-4709-BA47-F233A8FAAB5F",
	"CDA348C7-445D-4471-9CC9-E9885251C556",
};
static const char *const item_name[IT_COUNT] = { "file-parameters", "virtual-size", "disk-id",
						 "logical-sector-size", "physical-sector-size" };
#define GUID_BAT_STR "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define GUID_META_STR "8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define GUID_UNKNOWN_STR "D4A3A9E1-5C0F-4B67-9E1D-0DA3A6E5B00F" /* made up for these tests */

/* ------------------------------------------------------------ byte helpers */
/*
 * Fields, CRC-32C and GUIDs come from the generator's library-free half
 * (tests/lib/gen_bytes.h), written from the specification: the test must
 * not trust the library's.  Short names for the many accesses below.
 */
#define get16 gen_get_le16
#define get32 gen_get_le32
#define get64 gen_get_le64
#define put16 gen_put_le16
#define put32 gen_put_le32
#define put64 gen_put_le64
#define guid_parse gen_guid_parse

/* splitmix64: the same everywhere, so a seed reproduces */
static uint64_t rng_state;
static uint64_t rng(void) { return splitmix64_next(&rng_state); }
static uint64_t rng_below(uint64_t n) { return n ? rng() % n : 0; }

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "damage: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ------------------------------------------------------------ the image */
static uint8_t *base, *cur;     /* the good image; the copy being damaged */
static size_t base_len, cur_len, cur_cap;

static struct layout {
	bool hdr_valid[2], hdr_equiv; /* equiv: both valid, same log fields and version */
	int hdr_cur;
	uint64_t log_off;
	uint32_t log_len;
	bool rt_valid[2], rt_same;
	uint32_t rt_count;
	int rt_bat, rt_meta; /* entry indexes in the region table */
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	uint16_t meta_count;
	int item[IT_COUNT];             /* metadata entry index of each required item */
	uint32_t item_off[IT_COUNT];    /* offset inside the metadata region */
	uint32_t meta_free;             /* first 8-aligned offset after every item */
	uint32_t block_size, lss;
	uint64_t vsize, chunk_ratio, payload_blocks, bat_entries;
	uint64_t *present;              /* payload block numbers in state FULLY_PRESENT */
	uint64_t n_present;
	uint64_t not_present_blk;       /* a payload block that is not FULLY_PRESENT, or UINT64_MAX */
} L;

static uint64_t bat_index(uint64_t blk) { return blk + blk / L.chunk_ratio; }
static uint64_t bat_pos(uint64_t blk) { return L.bat_off + 8 * bat_index(blk); }
static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static bool hdr_ok(const uint8_t *b, size_t len, int i)
{
	const uint8_t *h = b + HDR_OFF(i);
	return len >= HDR_OFF(i) + HDR_SIZE && !memcmp(h, "head", 4) && get32(h + 4) == gen_crc32c_struct(h, HDR_SIZE);
}

static bool rt_ok(const uint8_t *b, size_t len, int i)
{
	const uint8_t *r = b + RT_OFF(i);
	return len >= RT_OFF(i) + RT_SIZE && !memcmp(r, "regi", 4) && get32(r + 4) == gen_crc32c_struct(r, RT_SIZE) &&
	       get32(r + 8) <= 2047;
}

/* Finds every structure of the good image, or dies saying why it cannot be damaged. */
static void parse(void)
{
	uint8_t g_bat[16], g_meta[16], g_item[IT_COUNT][16];
	const uint8_t *h, *rt, *mt;
	int rt_use;

	if (base_len < 1 * MiB || memcmp(base, "vhdxfile", 8))
		die("the input is not a VHDX image");
	for (int i = 0; i < 2; i++)
		L.hdr_valid[i] = hdr_ok(base, base_len, i);
	if (!L.hdr_valid[0] && !L.hdr_valid[1])
		die("the input has no valid header");
	L.hdr_cur = !L.hdr_valid[0] ? 1 : !L.hdr_valid[1] ? 0
		    : get64(base + HDR_OFF(1) + H_SEQ) > get64(base + HDR_OFF(0) + H_SEQ) ? 1 : 0;
	h = base + HDR_OFF(L.hdr_cur);
	L.log_off = get64(h + H_LOG_OFF);
	L.log_len = get32(h + H_LOG_LEN);
	L.hdr_equiv = L.hdr_valid[0] && L.hdr_valid[1] &&
		      !memcmp(base + HDR_OFF(0) + H_LOG_GUID, base + HDR_OFF(1) + H_LOG_GUID, 16 + 2 + 2 + 4 + 8);
	for (int i = 0; i < 16 && L.hdr_equiv; i++)
		if (h[H_LOG_GUID + i])
			L.hdr_equiv = false; /* a dirty log: which header is used matters */

	for (int i = 0; i < 2; i++)
		L.rt_valid[i] = rt_ok(base, base_len, i);
	if (!L.rt_valid[0] && !L.rt_valid[1])
		die("the input has no valid region table");
	L.rt_same = L.rt_valid[0] && L.rt_valid[1] && !memcmp(base + RT_OFF(0), base + RT_OFF(1), RT_SIZE);
	rt_use = L.rt_valid[0] ? 0 : 1;
	rt = base + RT_OFF(rt_use);
	L.rt_count = get32(rt + 8);
	guid_parse(GUID_BAT_STR, g_bat);
	guid_parse(GUID_META_STR, g_meta);
	L.rt_bat = L.rt_meta = -1;
	for (uint32_t i = 0; i < L.rt_count; i++) {
		const uint8_t *e = rt + RT_ENTRY(i);
		if (!memcmp(e, g_bat, 16))
			L.rt_bat = (int)i, L.bat_off = get64(e + 16), L.bat_len = get32(e + 24);
		else if (!memcmp(e, g_meta, 16))
			L.rt_meta = (int)i, L.meta_off = get64(e + 16), L.meta_len = get32(e + 24);
	}
	if (L.rt_bat < 0 || L.rt_meta < 0)
		die("the region table lacks the BAT or the metadata region");
	if (L.meta_off + META_TABLE_SIZE > base_len || L.bat_off + L.bat_len > base_len || L.meta_len < META_TABLE_SIZE)
		die("the BAT or metadata region lies outside the file");

	mt = base + L.meta_off;
	if (memcmp(mt, "metadata", 8))
		die("no metadata table signature");
	L.meta_count = get16(mt + 10);
	if (L.meta_count > 2047)
		die("metadata entry count %u is too large", L.meta_count);
	for (int k = 0; k < IT_COUNT; k++) {
		guid_parse(item_guid_str[k], g_item[k]);
		L.item[k] = -1;
	}
	L.meta_free = META_TABLE_SIZE;
	for (uint16_t i = 0; i < L.meta_count; i++) {
		const uint8_t *e = mt + META_ENTRY(i);
		uint32_t end = get32(e + 16) + get32(e + 20);
		if (end > L.meta_free)
			L.meta_free = (uint32_t)round_up(end, 8);
		if (get32(e + 24) & MF_USER)
			continue;
		for (int k = 0; k < IT_COUNT; k++)
			if (!memcmp(e, g_item[k], 16))
				L.item[k] = i, L.item_off[k] = get32(e + 16);
	}
	for (int k = 0; k < IT_COUNT; k++) {
		if (L.item[k] < 0)
			die("the metadata lacks the %s item", item_name[k]);
		if (L.meta_off + L.item_off[k] + 8 > base_len)
			die("the %s item lies outside the file", item_name[k]);
	}
	if (L.meta_free + 64 > L.meta_len)
		die("no room in the metadata region for an extra item");
	L.block_size = get32(base + L.meta_off + L.item_off[IT_PARAMS]);
	if (get32(base + L.meta_off + L.item_off[IT_PARAMS] + 4) & 2)
		die("differencing images are not supported by this generator");
	L.vsize = get64(base + L.meta_off + L.item_off[IT_VSIZE]);
	L.lss = get32(base + L.meta_off + L.item_off[IT_LSS]);
	if (L.block_size < MiB || L.block_size > 256 * MiB || (L.block_size & (L.block_size - 1)) ||
	    (L.lss != 512 && L.lss != 4096) || !L.vsize || L.vsize > 64 * 1024 * GiB)
		die("implausible geometry: block size %u, sector size %u, size %" PRIu64, L.block_size, L.lss, L.vsize);
	L.chunk_ratio = ((1ull << 23) * L.lss) / L.block_size;
	L.payload_blocks = (L.vsize + L.block_size - 1) / L.block_size;
	L.bat_entries = L.payload_blocks + (L.payload_blocks - 1) / L.chunk_ratio;
	if (L.bat_entries * 8 > L.bat_len)
		die("the BAT region is too small");

	L.present = calloc(L.payload_blocks, sizeof *L.present);
	if (!L.present)
		die("out of memory");
	L.not_present_blk = UINT64_MAX;
	for (uint64_t b = 0; b < L.payload_blocks; b++) {
		if ((get64(base + bat_pos(b)) & 7) == ST_FULLY_PRESENT)
			L.present[L.n_present++] = b;
		else if (L.not_present_blk == UINT64_MAX)
			L.not_present_blk = b;
	}
}

/* ------------------------------------------------------------ variants */
static const char *outdir;
static FILE *manifest;
static unsigned n_variants;
static uint64_t at_off = UINT64_MAX; /* file offset of the damaged structure, when one structure is damaged */
#define AT(off) (at_off = (off))

/* starts a variant from a fresh copy of the good image */
static void begin(void)
{
	if (cur_cap < base_len) {
		free(cur);
		cur = malloc(base_len);
		cur_cap = base_len;
		if (!cur)
			die("out of memory");
	}
	memcpy(cur, base, base_len);
	cur_len = base_len;
	at_off = UINT64_MAX;
}

/* grows the variant (appended bytes) */
static void grow(size_t len, uint8_t fill)
{
	if (len > cur_cap) {
		uint8_t *p = realloc(cur, len);
		if (!p)
			die("out of memory");
		cur = p;
		cur_cap = len;
	}
	if (len > cur_len)
		memset(cur + cur_len, fill, len - cur_len);
	cur_len = len;
}

/* writes the current variant sparse as OUTDIR/NAME.vhdx and lists it in variants.tsv */
static void emit(const char *name, const char *expect, const char *arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void emit(const char *name, const char *expect, const char *arg, const char *fmt, ...)
{
	char path[4096], desc[512];
	va_list ap;
	int err;

	snprintf(path, sizeof path, "%s/%s.vhdx", outdir, name);
	err = gen_write_sparse(path, cur, cur_len);
	if (err < 0)
		die("%s: %s", path, strerror(-err));
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	if (at_off == UINT64_MAX)
		fprintf(manifest, "%s\t%s\t%s\t%s\t-\n", name, expect, arg && *arg ? arg : "-", desc);
	else
		fprintf(manifest, "%s\t%s\t%s\t%s\t%" PRIu64 "\n", name, expect, arg && *arg ? arg : "-", desc, at_off);
	n_variants++;
}

static void fix_hdr(int i) { gen_fix_crc32c(cur + HDR_OFF(i), HDR_SIZE); }
static void fix_rt(int i) { gen_fix_crc32c(cur + RT_OFF(i), RT_SIZE); }
static uint8_t *rt_entry(int copy, int idx) { return cur + RT_OFF(copy) + RT_ENTRY(idx); }
static uint8_t *meta_entry(int idx) { return cur + L.meta_off + META_ENTRY(idx); }
static uint8_t *item_data(enum item k) { return cur + L.meta_off + L.item_off[k]; }

/* what one damaged header copy must give: the other copy takes over */
static const char *one_header(void) { return L.hdr_equiv ? "same" : "same-or-error"; }
static const char *one_region(void) { return L.rt_same ? "same" : "same-or-error"; }

/* Sets the WIDTH-byte field at FIELD of both headers to V, with correct checksums. */
static void both_headers(unsigned field, unsigned width, uint64_t v)
{
	for (int i = 0; i < 2; i++) {
		uint8_t *f = cur + HDR_OFF(i) + field;
		if (width == 2)
			put16(f, (uint16_t)v);
		else if (width == 4)
			put32(f, (uint32_t)v);
		else
			put64(f, v);
		fix_hdr(i);
	}
}

static void headers(void)
{
	static const char *const which[2] = { "1", "2" };

	for (int i = 0; i < 2; i++) {
		char name[64];
		snprintf(name, sizeof name, "hdr%s-signature", which[i]);
		begin(), AT(HDR_OFF(i)), cur[HDR_OFF(i)] ^= 0x20;
		emit(name, one_header(), NULL, "header %s: signature 'head' broken", which[i]);
		snprintf(name, sizeof name, "hdr%s-crc", which[i]);
		begin(), AT(HDR_OFF(i)), cur[HDR_OFF(i) + 4] ^= 0x01;
		emit(name, one_header(), NULL, "header %s: checksum off by one bit", which[i]);
		snprintf(name, sizeof name, "hdr%s-sig-and-crc", which[i]);
		begin(), AT(HDR_OFF(i)), memset(cur + HDR_OFF(i), 0xff, 8);
		emit(name, one_header(), NULL, "header %s: signature and checksum overwritten", which[i]);
		snprintf(name, sizeof name, "hdr%s-zeroed", which[i]);
		begin(), AT(HDR_OFF(i)), memset(cur + HDR_OFF(i), 0, HDR_SIZE);
		emit(name, one_header(), NULL, "header %s: all 4 KiB zero (never written)", which[i]);
		snprintf(name, sizeof name, "hdr%s-reserved-byte", which[i]);
		begin(), AT(HDR_OFF(i)), cur[HDR_OFF(i) + 2000] ^= 0x40;
		emit(name, one_header(), NULL, "header %s: a reserved byte changed, checksum not updated", which[i]);
		snprintf(name, sizeof name, "hdr%s-version-2", which[i]);
		begin(), AT(HDR_OFF(i)), put16(cur + HDR_OFF(i) + H_VERSION, 2), fix_hdr(i);
		emit(name, "same-or-error", NULL, "header %s: version 2 with a correct checksum", which[i]);
		snprintf(name, sizeof name, "hdr%s-log-misaligned", which[i]);
		begin(), AT(HDR_OFF(i)), put64(cur + HDR_OFF(i) + H_LOG_OFF, L.log_off + 4096), fix_hdr(i);
		emit(name, "same-or-error", NULL, "header %s: log offset not 1 MiB aligned, correct checksum", which[i]);
	}
	/* the older header made current by a higher sequence number: same data either way */
	if (L.hdr_equiv) {
		int old = !L.hdr_cur;
		begin(), put64(cur + HDR_OFF(old) + H_SEQ, get64(cur + HDR_OFF(L.hdr_cur) + H_SEQ) + 1000), fix_hdr(old);
		emit("hdr-older-made-current", "same", NULL, "header %d gets the higher sequence number", old + 1);
		begin(), put64(cur + HDR_OFF(old) + H_SEQ, get64(cur + HDR_OFF(L.hdr_cur) + H_SEQ)), fix_hdr(old);
		emit("hdr-equal-sequence", "same", NULL, "both headers with the same sequence number");
	}
	begin(), cur[HDR_OFF(0)] ^= 0x20, cur[HDR_OFF(1)] ^= 0x20;
	emit("hdr-both-signature", "error", "header", "both headers: signature broken");
	begin(), cur[HDR_OFF(0) + 4] ^= 1, cur[HDR_OFF(1) + 5] ^= 0x80;
	emit("hdr-both-crc", "error", "header", "both headers: checksum wrong");
	begin(), memset(cur + HDR_OFF(0), 0, HDR_SIZE), memset(cur + HDR_OFF(1), 0, HDR_SIZE);
	emit("hdr-both-zeroed", "error", "header", "both headers zero");
	begin(), both_headers(H_VERSION, 2, 2);
	emit("hdr-both-version-2", "error", "header|version", "both headers: version 2 (unknown), correct checksums");
	begin(), both_headers(H_LOG_VERSION, 2, 7);
	emit("hdr-both-log-version-7", "error", "header|log", "both headers: log version 7 (unknown), correct checksums");
	begin(), both_headers(H_LOG_LEN, 4, 12345);
	emit("hdr-both-log-length-odd", "error", "header|log", "both headers: log length not a 1 MiB multiple");
	begin(), both_headers(H_LOG_OFF, 8, UINT64_MAX & ~(MiB - 1));
	emit("hdr-both-log-offset-overflow", "error", "header|log", "both headers: log offset + length overflows 64 bits");
	begin(), both_headers(H_LOG_OFF, 8, round_up(base_len, MiB) + 64 * MiB);
	emit("hdr-both-clean-log-past-eof", "same-or-error", NULL,
	     "both headers: clean log (zero log GUID) placed past the end of the file");
	begin();
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 16; k++)
			cur[HDR_OFF(i) + H_LOG_GUID + k] = (uint8_t)(0xa0 + k);
		fix_hdr(i);
	}
	/* nothing valid to replay: refusing is fine, reading must give the unchanged data */
	emit("hdr-both-log-guid-no-entries", "same-or-error", NULL,
	     "both headers: a log GUID is set but the log holds no entry with it");
}

static void regions(void)
{
	uint8_t g[16];
	uint64_t past_eof = round_up(base_len, MiB) + 1 * GiB;

	for (int i = 0; i < 2; i++) {
		char name[64];
		snprintf(name, sizeof name, "rt%d-signature", i + 1);
		begin(), AT(RT_OFF(i)), cur[RT_OFF(i) + 1] ^= 0x01;
		emit(name, one_region(), NULL, "region table %d: signature broken", i + 1);
		snprintf(name, sizeof name, "rt%d-crc", i + 1);
		begin(), AT(RT_OFF(i)), cur[RT_OFF(i) + 7] ^= 0x10;
		emit(name, one_region(), NULL, "region table %d: checksum wrong", i + 1);
		snprintf(name, sizeof name, "rt%d-sig-and-crc", i + 1);
		begin(), AT(RT_OFF(i)), memset(cur + RT_OFF(i), 0x5a, 8);
		emit(name, one_region(), NULL, "region table %d: signature and checksum overwritten", i + 1);
		snprintf(name, sizeof name, "rt%d-entry-byte", i + 1);
		begin(), AT(RT_OFF(i)), cur[RT_OFF(i) + RT_ENTRY(L.rt_bat) + 18] ^= 0x01;
		emit(name, one_region(), NULL, "region table %d: BAT offset changed, checksum not updated", i + 1);
		snprintf(name, sizeof name, "rt%d-count-huge", i + 1);
		begin(), AT(RT_OFF(i)), put32(cur + RT_OFF(i) + 8, 0xFFFFFFFFu), fix_rt(i);
		emit(name, one_region(), NULL, "region table %d: entry count 0xffffffff, correct checksum", i + 1);
	}

	/* the rest damage both copies alike (with correct checksums), so no fallback hides it */
#define BOTH(stmt)                                  \
	do {                                        \
		for (int c_ = 0; c_ < 2; c_++) {    \
			const int c = c_;           \
			(void)c;                    \
			stmt;                       \
			fix_rt(c_);                 \
		}                                   \
	} while (0)

	begin(), cur[RT_OFF(0) + 1] ^= 1, cur[RT_OFF(1) + 2] ^= 1;
	emit("rt-both-signature", "error", "region table", "both region tables: signature broken");
	begin(), cur[RT_OFF(0) + 4] ^= 1, cur[RT_OFF(1) + 4] ^= 2;
	emit("rt-both-crc", "error", "region table", "both region tables: checksum wrong");
	begin(); BOTH(put32(cur + RT_OFF(c) + 8, 0xFFFFFFFFu));
	emit("rt-both-count-huge", "error", "region table", "both region tables: entry count 0xffffffff");
	begin(); BOTH(put32(cur + RT_OFF(c) + 8, 2048));
	emit("rt-both-count-2048", "error", "region table", "both region tables: entry count 2048 (limit 2047)");
	begin(); BOTH(put32(cur + RT_OFF(c) + 8, 0));
	emit("rt-both-count-zero", "error", "region", "both region tables: no entries (BAT and metadata missing)");
	begin(); BOTH(put64(rt_entry(c, L.rt_bat) + 16, past_eof));
	emit("rt-both-bat-past-eof", "error", "BAT", "both region tables: BAT region 1 GiB past the end of the file");
	begin(); BOTH(put64(rt_entry(c, L.rt_bat) + 16, UINT64_MAX & ~(MiB - 1)));
	emit("rt-both-bat-offset-overflow", "error", "region|BAT", "both region tables: BAT offset near 2^64");
	begin(); BOTH(put64(rt_entry(c, L.rt_meta) + 16, past_eof));
	emit("rt-both-metadata-past-eof", "error", "metadata", "both region tables: metadata region past the end of the file");
	begin(); BOTH(put64(rt_entry(c, L.rt_meta) + 16, L.bat_off));
	emit("rt-both-overlap", "error", "region table|overlap", "both region tables: metadata region at the BAT's offset");
	if (L.log_len) {
		begin(); BOTH(put64(rt_entry(c, L.rt_bat) + 16, L.log_off));
		emit("rt-both-bat-on-log", "error", "region table|log|overlap", "both region tables: BAT region on the log");
	}
	begin(); BOTH(put64(rt_entry(c, L.rt_bat) + 16, L.bat_off + 4096));
	emit("rt-both-bat-misaligned", "error", "region table", "both region tables: BAT offset not 1 MiB aligned");
	begin(); BOTH(put64(rt_entry(c, L.rt_bat) + 16, 0));
	emit("rt-both-bat-offset-zero", "error", "region table", "both region tables: BAT at offset 0");
	begin(); BOTH(put32(rt_entry(c, L.rt_bat) + 24, 0));
	emit("rt-both-bat-length-zero", "error", "region table", "both region tables: BAT length 0");
	begin(); BOTH(memcpy(rt_entry(c, L.rt_meta), rt_entry(c, L.rt_bat), 16));
	emit("rt-both-two-bats", "error", "region", "both region tables: two BAT entries, no metadata entry");
	guid_parse(GUID_UNKNOWN_STR, g);
	if (L.rt_count < 2047) {
		uint32_t n = L.rt_count;
		begin(); BOTH(put32(cur + RT_OFF(c) + 8, n + 1); memcpy(rt_entry(c, (int)n), g, 16);
			      put64(rt_entry(c, (int)n) + 16, past_eof); put32(rt_entry(c, (int)n) + 24, (uint32_t)MiB);
			      put32(rt_entry(c, (int)n) + 28, 1));
		emit("rt-both-unknown-required", "error", "region", "both region tables: an unknown region marked required");
		begin(); BOTH(put32(cur + RT_OFF(c) + 8, n + 1); memcpy(rt_entry(c, (int)n), g, 16);
			      put64(rt_entry(c, (int)n) + 16, past_eof); put32(rt_entry(c, (int)n) + 24, (uint32_t)MiB);
			      put32(rt_entry(c, (int)n) + 28, 0));
		emit("rt-both-unknown-optional", "same-or-error", NULL,
		     "both region tables: an unknown optional region (past the end of the file)");
	}
	begin(); BOTH(put32(rt_entry(c, L.rt_bat) + 28, 0xFFFFFFFEu | get32(rt_entry(c, L.rt_bat) + 28)));
	emit("rt-both-reserved-flags", "same-or-error", NULL, "both region tables: reserved bits of the BAT entry set");
#undef BOTH
}

/* removes metadata entry IDX (the last entry takes its place) */
static void meta_remove(int idx)
{
	uint16_t n = get16(cur + L.meta_off + 10);
	if (idx != n - 1)
		memcpy(meta_entry(idx), meta_entry(n - 1), 32);
	memset(meta_entry(n - 1), 0, 32);
	put16(cur + L.meta_off + 10, (uint16_t)(n - 1));
}

/* appends a metadata entry with ITEM id G, FLAGS, holding 8 bytes in free space */
static bool meta_add(const uint8_t g[16], uint32_t flags)
{
	uint16_t n = get16(cur + L.meta_off + 10);
	uint8_t *e;
	if (n >= 2047 || META_ENTRY(n) + 32 > META_TABLE_SIZE)
		return false;
	e = meta_entry(n);
	memcpy(e, g, 16);
	put32(e + 16, L.meta_free);
	put32(e + 20, 8);
	put32(e + 24, flags);
	put32(e + 28, 0);
	memset(cur + L.meta_off + L.meta_free, 0x77, 8);
	put16(cur + L.meta_off + 10, (uint16_t)(n + 1));
	return true;
}

static void metadata(void)
{
	uint8_t g[16];
	char name[96], arg[64];
	uint8_t *vs_e = NULL;

	guid_parse(GUID_UNKNOWN_STR, g);
	begin(), AT(L.meta_off), cur[L.meta_off + 3] ^= 0x01;
	emit("meta-signature", "error", "metadata", "metadata table: signature broken");
	begin(), AT(L.meta_off), put16(cur + L.meta_off + 10, 0xFFFF);
	emit("meta-count-huge", "error", "metadata", "metadata table: entry count 65535");
	begin(), AT(L.meta_off), put16(cur + L.meta_off + 10, 2048);
	emit("meta-count-2048", "error", "metadata", "metadata table: entry count 2048 (limit 2047)");
	begin(), put16(cur + L.meta_off + 10, 0);
	emit("meta-count-zero", "error", "metadata", "metadata table: no entries");

	begin(), vs_e = meta_entry(L.item[IT_VSIZE]);
	put32(vs_e + 16, L.meta_len + 64 * (uint32_t)KiB);
	emit("meta-item-offset-past-region", "error", "metadata", "virtual size item: offset past the metadata region");
	begin(), vs_e = meta_entry(L.item[IT_VSIZE]);
	put32(vs_e + 16, L.meta_len - 4);
	emit("meta-item-end-past-region", "error", "metadata", "virtual size item: the last 4 of its 8 bytes past the region");
	begin(), vs_e = meta_entry(L.item[IT_VSIZE]);
	put32(vs_e + 16, 0xFFFFFFF8u);
	emit("meta-item-offset-overflow", "error", "metadata", "virtual size item: offset 0xfffffff8 (32-bit overflow)");
	begin(), vs_e = meta_entry(L.item[IT_VSIZE]);
	put32(vs_e + 20, L.meta_len);
	emit("meta-item-length-huge", "error", "metadata", "virtual size item: length = the whole region");
	begin(), vs_e = meta_entry(L.item[IT_VSIZE]);
	put32(vs_e + 16, 100);
	emit("meta-item-in-table", "error", "metadata", "virtual size item: offset 100, inside the table");
	begin(), put32(meta_entry(L.item[IT_VSIZE]) + 16, L.item_off[IT_PARAMS]);
	emit("meta-items-overlap", "error", "metadata", "virtual size item on top of the file parameters item");
	begin(), put32(meta_entry(L.item[IT_PARAMS]) + 20, 4);
	emit("meta-params-length-4", "error", "metadata", "file parameters item: length 4 instead of 8");
	begin(), memcpy(meta_entry(L.item[IT_DISKID]), meta_entry(L.item[IT_VSIZE]), 32);
	emit("meta-duplicate-item", "error", "metadata", "the virtual size item listed twice (disk id entry replaced)");

	for (int k = 0; k < IT_COUNT; k++) {
		snprintf(name, sizeof name, "meta-missing-%s", item_name[k]);
		begin(), meta_remove(L.item[k]);
		emit(name, "error", "metadata", "metadata table: the required %s item removed", item_name[k]);
	}
	begin();
	if (meta_add(g, MF_REQUIRED))
		emit("meta-unknown-required", "error", "metadata", "an unknown system item marked required");
	begin();
	if (meta_add(g, MF_REQUIRED | MF_USER))
		emit("meta-unknown-required-user", "error", "metadata", "an unknown user item marked required");
	begin();
	if (meta_add(g, 0))
		emit("meta-unknown-optional", "same", NULL, "an unknown optional system item");
	begin();
	if (meta_add(g, MF_USER | MF_VIRTUAL))
		emit("meta-unknown-user", "same", NULL, "an unknown optional user item");

	/* values of the items */
	static const uint32_t bad_bs[] = { 0, 512 * 1024, 3 * 1024 * 1024, 512u * 1024 * 1024, 0x80000000u, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof bad_bs / sizeof bad_bs[0]; i++) {
		snprintf(name, sizeof name, "meta-block-size-%u", bad_bs[i]);
		begin(), put32(item_data(IT_PARAMS), bad_bs[i]);
		emit(name, "error", "block size", "file parameters: block size %u", bad_bs[i]);
	}
	snprintf(name, sizeof name, "meta-block-size-%u", L.block_size == MiB ? 2 * (uint32_t)MiB : L.block_size / 2);
	begin(), put32(item_data(IT_PARAMS), L.block_size == MiB ? 2 * (uint32_t)MiB : L.block_size / 2);
	emit(name, "any", NULL, "file parameters: another valid block size (the BAT no longer fits the data)");
	begin(), put32(item_data(IT_PARAMS) + 4, get32(item_data(IT_PARAMS) + 4) | 2);
	emit("meta-has-parent-no-locator", "error", "metadata|locator|parent", "file parameters: HasParent set, no parent locator item");
	begin(), put32(item_data(IT_PARAMS) + 4, get32(item_data(IT_PARAMS) + 4) | 0xF0);
	emit("meta-params-reserved-flags", "same-or-error", NULL, "file parameters: reserved flag bits set");

	static const uint32_t bad_ss[] = { 0, 1024, 4097, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof bad_ss / sizeof bad_ss[0]; i++) {
		snprintf(name, sizeof name, "meta-logical-sector-%u", bad_ss[i]);
		begin(), put32(item_data(IT_LSS), bad_ss[i]);
		emit(name, "error", "sector size", "logical sector size %u", bad_ss[i]);
		snprintf(name, sizeof name, "meta-physical-sector-%u", bad_ss[i]);
		begin(), put32(item_data(IT_PSS), bad_ss[i]);
		emit(name, "error", "sector size", "physical sector size %u", bad_ss[i]);
	}
	begin(), put32(item_data(IT_LSS), L.lss == 512 ? 4096 : 512);
	emit("meta-logical-sector-other", "any", NULL, "the other valid logical sector size");

	static const uint64_t bad_vs[] = { 0, 64 * 1024 * GiB + 512, 1ull << 63, UINT64_MAX, UINT64_MAX - 511 };
	for (size_t i = 0; i < sizeof bad_vs / sizeof bad_vs[0]; i++) {
		snprintf(name, sizeof name, "meta-virtual-size-%" PRIu64, bad_vs[i]);
		begin(), put64(item_data(IT_VSIZE), bad_vs[i]);
		emit(name, "error", "size", "virtual size %" PRIu64, bad_vs[i]);
	}
	begin(), put64(item_data(IT_VSIZE), L.vsize + 1);
	emit("meta-virtual-size-unaligned", "error", "size", "virtual size not a multiple of the sector size");
	if (L.vsize / 2 % L.lss == 0) {
		snprintf(arg, sizeof arg, "%" PRIu64, L.vsize / 2);
		begin(), put64(item_data(IT_VSIZE), L.vsize / 2);
		emit("meta-virtual-size-half", "prefix", arg, "virtual size halved: reads the first half of the disk");
	}
	begin(), put64(item_data(IT_VSIZE), L.vsize * 2);
	emit("meta-virtual-size-double", "any", NULL, "virtual size doubled (the BAT may be too small)");
	begin(), put64(item_data(IT_VSIZE), 64 * 1024 * GiB);
	emit("meta-virtual-size-64T", "error", "BAT|size", "virtual size 64 TiB: a BAT of 64 Mi entries does not fit the region");
}

static void bat(void)
{
	char arg[64];
	uint64_t e, foff, b0, b1;
	uint64_t past_eof = round_up(base_len, MiB);

	if (!L.n_present)
		return;
	b0 = L.present[0];
	e = get64(base + bat_pos(b0));
	foff = e & ~(MiB - 1);
#define SET(blk, v) put64(cur + bat_pos(blk), (v))
	begin(), AT(bat_pos(b0)), SET(b0, (past_eof + GiB) | ST_FULLY_PRESENT);
	emit("bat-past-eof", "error", "BAT entry", "block %" PRIu64 " 1 GiB past the end of the file", b0);
	begin(), AT(bat_pos(b0)), SET(b0, past_eof | ST_FULLY_PRESENT);
	emit("bat-at-eof", "error", "BAT entry", "block %" PRIu64 " starts at the end of the file", b0);
	begin(), AT(bat_pos(b0)), SET(b0, (0xFFFFFFFFFFFull << 20) | ST_FULLY_PRESENT);
	emit("bat-offset-max", "error", "BAT entry", "block %" PRIu64 " at the largest offset (2^64 - 1 MiB)", b0);
	begin(), AT(bat_pos(b0)), SET(b0, 0 | ST_FULLY_PRESENT);
	emit("bat-offset-zero", "error", "BAT entry", "block %" PRIu64 " at file offset 0 (the file identifier)", b0);
	begin(), AT(bat_pos(b0)), SET(b0, L.meta_off | ST_FULLY_PRESENT);
	emit("bat-on-metadata", "error", "BAT entry", "block %" PRIu64 " on the metadata region", b0);
	begin(), AT(bat_pos(b0)), SET(b0, L.bat_off | ST_FULLY_PRESENT);
	emit("bat-on-bat", "error", "BAT entry", "block %" PRIu64 " on the BAT region", b0);
	if (L.log_len) {
		begin(), AT(bat_pos(b0)), SET(b0, L.log_off | ST_FULLY_PRESENT);
		emit("bat-on-log", "error", "BAT entry", "block %" PRIu64 " on the log", b0);
	}
	begin(), AT(bat_pos(b0)), SET(b0, e | (1ull << 3));
	emit("bat-reserved-bit3", "error", "BAT entry", "block %" PRIu64 ": reserved bit 3 set (offset misaligned)", b0);
	begin(), AT(bat_pos(b0)), SET(b0, e | (1ull << 19));
	emit("bat-reserved-bit19", "error", "BAT entry", "block %" PRIu64 ": reserved bit 19 set (offset 512 KiB off)", b0);
	begin(), AT(bat_pos(b0)), SET(b0, (e & ~7ull) | 4);
	emit("bat-state-4", "error", "BAT entry", "block %" PRIu64 ": state 4 (reserved)", b0);
	begin(), AT(bat_pos(b0)), SET(b0, (e & ~7ull) | ST_PARTIALLY_PRESENT);
	emit("bat-state-partial", "error", "BAT entry", "block %" PRIu64 ": PARTIALLY_PRESENT in a disk with no parent", b0);

	/* legal states that make the block read as zeros */
	snprintf(arg, sizeof arg, "%" PRIu64 "+%" PRIu64, b0 * L.block_size,
		 L.vsize - b0 * L.block_size < L.block_size ? L.vsize - b0 * L.block_size : L.block_size);
	begin(), SET(b0, ST_ZERO);
	emit("bat-state-zero", "zeroed", arg, "block %" PRIu64 ": ZERO instead of FULLY_PRESENT", b0);
	begin(), SET(b0, ST_NOT_PRESENT);
	emit("bat-state-not-present", "zeroed", arg, "block %" PRIu64 ": NOT_PRESENT instead of FULLY_PRESENT", b0);
	begin(), SET(b0, ST_UNMAPPED);
	emit("bat-state-unmapped", "zeroed", arg, "block %" PRIu64 ": UNMAPPED instead of FULLY_PRESENT", b0);
	begin(), SET(b0, ST_UNDEFINED);
	emit("bat-state-undefined", "zeroed", arg, "block %" PRIu64 ": UNDEFINED instead of FULLY_PRESENT", b0);
	begin(), SET(b0, foff | ST_ZERO);
	emit("bat-state-zero-with-offset", "zeroed", arg, "block %" PRIu64 ": ZERO, the old file offset left in place", b0);

	/* two entries pointing at the same block */
	if (L.n_present >= 2) {
		b1 = L.present[1];
		begin(), AT(bat_pos(b1)), SET(b1, e);
		emit("bat-duplicate", "error", "BAT entry", "blocks %" PRIu64 " and %" PRIu64 " share file offset 0x%" PRIx64,
		     b0, b1, foff);
		if (L.block_size > MiB) {
			begin(), AT(bat_pos(b1)), SET(b1, (foff + MiB) | ST_FULLY_PRESENT);
			emit("bat-overlap", "error", "BAT entry", "block %" PRIu64 " starts 1 MiB into block %" PRIu64, b1, b0);
		}
	}
	if (L.not_present_blk != UINT64_MAX) {
		b1 = L.not_present_blk;
		/* of two entries on one block the later one is the suspect */
		begin(), AT(bat_pos(b1 > b0 ? b1 : b0)), SET(b1, e);
		emit("bat-duplicate-of-absent", "error", "BAT entry",
		     "block %" PRIu64 " (was not present) made to share block %" PRIu64 "'s offset", b1, b0);
		begin(), AT(bat_pos(b1)), SET(b1, e | (1ull << 12));
		emit("bat-absent-reserved", "error", "BAT entry", "block %" PRIu64 " present, shared offset and reserved bit 12", b1);
	}
	/* entries past the ones the disk uses are padding: never read */
	if ((L.bat_entries + 1) * 8 <= L.bat_len) {
		begin(), put64(cur + L.bat_off + 8 * L.bat_entries, UINT64_MAX);
		emit("bat-padding-garbage", "same", NULL, "the first BAT entry past the disk's last block is all ones");
	}
	/* every entry random */
	begin();
	for (uint64_t i = 0; i < L.bat_entries; i++)
		put64(cur + L.bat_off + 8 * i, rng());
	emit("bat-random", "any", NULL, "every used BAT entry random");
	begin();
	for (uint64_t i = 0; i < L.bat_entries; i++)
		put64(cur + L.bat_off + 8 * i, (rng() & ~(MiB - 1) & ((1ull << 40) - 1)) | ST_FULLY_PRESENT);
	emit("bat-random-present", "error", "BAT entry", "every used BAT entry FULLY_PRESENT at a random offset below 1 TiB");
#undef SET
}

static void truncations(void)
{
	uint64_t lens[64];
	size_t n = 0;
	uint64_t last_block = 0;
	char name[64];

	for (uint64_t i = 0; i < L.n_present; i++) {
		uint64_t off = get64(base + bat_pos(L.present[i])) & ~(MiB - 1);
		if (off > last_block)
			last_block = off;
	}
	lens[n++] = 0;
	lens[n++] = 1;
	lens[n++] = 8;
	lens[n++] = 4095;
	lens[n++] = 64 * KiB - 1;
	lens[n++] = 64 * KiB;
	lens[n++] = 64 * KiB + 100;
	lens[n++] = 128 * KiB + 4095;
	lens[n++] = 192 * KiB + 16;
	lens[n++] = 256 * KiB + 1000;
	lens[n++] = MiB - 1;
	lens[n++] = MiB;
	lens[n++] = L.bat_off;
	lens[n++] = L.bat_off + 8;
	lens[n++] = L.meta_off;
	lens[n++] = L.meta_off + 40;
	lens[n++] = L.meta_off + L.item_off[IT_VSIZE] + 4;
	if (last_block)
		lens[n++] = last_block + L.block_size / 2;
	lens[n++] = base_len - MiB;
	lens[n++] = base_len - 4096;
	lens[n++] = base_len - 1;
	for (int i = 0; i < 4; i++)
		lens[n++] = rng_below(base_len);
	for (size_t i = 0; i < n; i++) {
		if (lens[i] >= base_len)
			continue;
		snprintf(name, sizeof name, "truncate-%" PRIu64, lens[i]);
		begin(), cur_len = lens[i];
		emit(name, "same-or-error", NULL, "file truncated to %" PRIu64 " bytes", lens[i]);
	}
	begin(), grow(base_len + 3 * MiB + 123, 0);
	emit("append-zeros", "same", NULL, "3 MiB + 123 zero bytes appended");
	begin(), grow(base_len + 5000, 0xa5);
	emit("append-garbage", "same", NULL, "5000 bytes of 0xa5 appended");
}

static void file_identifier(void)
{
	begin(), AT(0), cur[0] = 'V';
	emit("fileid-signature", "error", "vhdxfile|VHDX|signature", "file identifier: 'Vhdxfile'");
	begin(), memset(cur + 8, 0xff, 512);
	emit("fileid-creator-garbage", "same", NULL, "file identifier: creator string all 0xff (not UTF-16)");
}

/* Flips 1-8 random bytes inside [off, off+len) of the current variant. */
static void flip_in(uint64_t off, uint64_t len)
{
	unsigned k = 1 + (unsigned)rng_below(8);
	for (unsigned i = 0; i < k; i++) {
		uint64_t at = off + rng_below(len);
		if (at < cur_len)
			cur[at] ^= (uint8_t)(1 + rng_below(255));
	}
}

static void random_flips(unsigned count)
{
	char name[64];

	for (unsigned i = 0; i < count; i++) {
		unsigned cls = (unsigned)rng_below(8);
		const char *expect = "any", *what;
		begin();
		switch (cls) {
		case 0:
		case 1:
			flip_in(HDR_OFF(cls), HDR_SIZE);
			expect = one_header();
			what = cls ? "header 2" : "header 1";
			break;
		case 2:
		case 3:
			flip_in(RT_OFF(cls - 2), RT_SIZE);
			expect = one_region();
			what = cls == 3 ? "region table 2" : "region table 1";
			break;
		case 4:
			flip_in(L.meta_off, L.meta_free);
			what = "metadata table and items";
			break;
		case 5:
			flip_in(L.bat_off, L.bat_entries * 8);
			what = "BAT";
			break;
		case 6:
			if (L.n_present) {
				uint64_t b = L.present[rng_below(L.n_present)];
				uint64_t foff = get64(base + bat_pos(b)) & ~(MiB - 1);
				uint64_t len = L.vsize - b * L.block_size < L.block_size ? L.vsize - b * L.block_size : L.block_size;
				flip_in(foff, len);
				expect = "ok";
				what = "payload data";
				break;
			}
			/* fall through */
		default:
			flip_in(0, base_len);
			what = "anywhere";
			break;
		}
		/*
		 * A flip that makes the virtual size valid but huge (up to what the
		 * BAT region can map: 128 GiB with 1 MiB blocks) would make a correct
		 * reader stream zeros past the time limit: keep the size item intact
		 * (the targeted meta-virtual-size-* variants cover its values).
		 */
		memcpy(item_data(IT_VSIZE), base + L.meta_off + L.item_off[IT_VSIZE], 8);
		snprintf(name, sizeof name, "flip-%02u", i);
		emit(name, expect, NULL, "1-8 random bytes flipped in the %s", what);
	}
}

int main(int argc, char **argv)
{
	const char *img, *env;
	uint64_t seed = 0;
	unsigned flips = 30;
	bool have_seed = false;
	char path[4096];
	struct stat st;
	int fd, a = 1;

	for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
		if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			seed = strtoull(argv[++a], NULL, 0), have_seed = true;
		else if (!strcmp(argv[a], "--flips") && a + 1 < argc)
			flips = (unsigned)strtoul(argv[++a], NULL, 0);
		else
			break;
	}
	if (argc - a != 2) {
		fprintf(stderr, "Usage: damage [--seed N] [--flips N] IMAGE OUTDIR\n"
				"Writes damaged variants of the VHDX IMAGE and OUTDIR/variants.tsv.\n"
				"The seed of the random variants: --seed, else $DAMAGE_SEED, else the clock.\n");
		return 2;
	}
	img = argv[a];
	outdir = argv[a + 1];
	if (!have_seed) {
		env = getenv("DAMAGE_SEED");
		if (env && *env) {
			seed = strtoull(env, NULL, 0);
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 16;
			seed %= 1000000000000ull; /* short enough to retype */
		}
	}
	rng_state = seed;
	printf("damage: %s: seed %" PRIu64 " (reproduce with DAMAGE_SEED=%" PRIu64 ")\n", img, seed, seed);

	fd = open(img, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", img, strerror(errno));
	if (st.st_size <= 0 || (uint64_t)st.st_size > 4 * GiB)
		die("%s: size %lld is not a test image size", img, (long long)st.st_size);
	base_len = (size_t)st.st_size;
	base = malloc(base_len);
	if (!base)
		die("out of memory");
	for (size_t got = 0; got < base_len;) {
		ssize_t r = pread(fd, base + got, base_len - got, (off_t)got);
		if (r <= 0)
			die("%s: read: %s", img, r < 0 ? strerror(errno) : "unexpected end of file");
		got += (size_t)r;
	}
	close(fd);
	parse();

	snprintf(path, sizeof path, "%s/variants.tsv", outdir);
	manifest = fopen(path, "w");
	if (!manifest)
		die("%s: %s", path, strerror(errno));
	headers();
	regions();
	metadata();
	bat();
	truncations();
	file_identifier();
	random_flips(flips);
	if (fclose(manifest) != 0)
		die("%s: %s", path, strerror(errno));
	printf("damage: %u variants of %s (block size %u, %" PRIu64 " blocks, %" PRIu64 " present) in %s\n", n_variants,
	       img, L.block_size, L.payload_blocks, L.n_present, outdir);
	free(base);
	free(cur);
	free(L.present);
	return 0;
}
