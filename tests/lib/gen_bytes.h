/*
 * gen_bytes.h - the half of the test-image generator that uses no code of
 * the library (built as tests/lib/libgen_bytes.la, linked without libvhdx):
 * field access, checksums written from the specifications, structures built
 * by hand, and the output forms of an image (a sparse file, a fuzz seed).
 *
 * vhdx_gen.h builds whole VHDX images with the library's encoders and
 * checks the library's geometry against its own; this half serves the
 * tools whose point is not to trust the library at all: the damage tool
 * (tests/tools/damage.c parses and re-checksums images itself), the fuzz
 * harness (fuzz/image.c fixes checksums of mutated inputs) and the seed
 * maker (fuzz/make_seeds.c).  vhdx_gen.c uses the output forms too.
 */
#ifndef VHDX_TESTS_GEN_BYTES_H
#define VHDX_TESTS_GEN_BYTES_H

#include <stddef.h>
#include <stdint.h>

/*
 * For the harness code the fuzzers run on every input (checksum fixes,
 * input expansion): not the code under test, so libFuzzer's coverage must
 * not count it as progress (and it costs much of the time).
 */
#if defined(__clang__)
#define GEN_NO_COV __attribute__((no_sanitize("coverage")))
#else
#define GEN_NO_COV
#endif

/* ---- fields (VHDX is little-endian, VHD big-endian) ---- */
uint16_t gen_get_le16(const uint8_t *p);
uint32_t gen_get_le32(const uint8_t *p);
uint64_t gen_get_le64(const uint8_t *p);
uint32_t gen_get_be32(const uint8_t *p);
uint64_t gen_get_be64(const uint8_t *p);
void gen_put_le16(uint8_t *p, uint16_t v);
void gen_put_le32(uint8_t *p, uint32_t v);
void gen_put_le64(uint8_t *p, uint64_t v);
void gen_put_be32(uint8_t *p, uint32_t v);
void gen_put_be64(uint8_t *p, uint64_t v);

/** "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" to the 16 on-disk bytes (Data1-3 little-endian). */
void gen_guid_parse(const char *s, uint8_t g[16]);
/**
 * UTF-8 S as UTF-16 (little-endian if LE, else big-endian) into OUT (room
 * for CAP bytes); characters past U+FFFF become surrogate pairs.  Returns
 * the bytes written (cut at CAP).
 */
size_t gen_utf16(const char *s, int le, uint8_t *out, size_t cap);

/* ---- checksums, written from the specifications ---- */
/** CRC-32C of the VHDX structure P[0..LEN) whose checksum field (bytes 4..7) counts as zero. */
uint32_t gen_crc32c_struct(const uint8_t *p, size_t len);
/** Stores that CRC-32C in bytes 4..7 of P (a damage hook: "checksum correct after the change"). */
void gen_fix_crc32c(uint8_t *p, size_t len);
/** The VHD one's-complement checksum of P[0..LEN) without its field at SUM_OFF. */
uint32_t gen_vhd_checksum(const uint8_t *p, size_t len, size_t sum_off);

/* ---- structures built by hand ---- */
/** A key/value pair of a parent locator. */
struct gen_kv {
	const char *key;   /* UTF-8 */
	const char *value; /* UTF-8 */
};
/**
 * A VHDX parent locator item (MS-VHDX 2.6.2.6, the VHDX locator type) of
 * PAIRS[0..N): header, entries, then each key and value in UTF-16LE in
 * entry order.  Writes at most CAP bytes to OUT, returns the item's length.
 */
size_t gen_vhdx_locator(const struct gen_kv *pairs, size_t n, uint8_t *out, size_t cap);

/** A VHD parent locator entry's platform code and data. */
struct gen_vhd_loc {
	uint32_t code;
	const uint8_t *data;
	size_t len;
};
/**
 * A VHD dynamic header (1024 bytes, valid checksum, parent PARENT_NAME) and
 * behind it the data of LOCS[0..N) (at most 8), each padded to 512 bytes,
 * their offsets pointing there (counted from the start of OUT).  Writes at
 * most CAP bytes, returns the length.
 */
size_t gen_vhd_dynhdr(const struct gen_vhd_loc *locs, size_t n, const char *parent_name, uint8_t *out, size_t cap);

/* ---- output forms ---- */
/**
 * Writes BUF[0..LEN) to PATH (created or truncated) as a sparse file: only
 * the 4 KiB pages that are not all zero are written, the size set with
 * ftruncate.  0 or -errno.
 */
int gen_write_sparse(const char *path, const uint8_t *buf, size_t len);

/* The fuzz image targets' "sparse" input (fuzz/image.c, fuzz/fuzz.h). */
struct gen_seed {
	uint8_t *data; /* header, then records (offset, length, bytes) */
	size_t len, cap;
	size_t last;   /* where the last record starts (0: none yet) */
};
/** Starts SEED: magic "VXFZ", FLAGS, CHOICE, FILE_SIZE.  0 or -ENOMEM. */
int gen_seed_begin(struct gen_seed *seed, uint8_t flags, uint8_t choice, uint64_t file_size);
/**
 * Appends the record LEN bytes at OFF, or, when it starts where the last
 * record ends, extends that one.  0 or -ENOMEM.
 */
int gen_seed_add(struct gen_seed *seed, uint64_t off, const uint8_t *data, size_t len);
void gen_seed_free(struct gen_seed *seed);

#endif /* VHDX_TESTS_GEN_BYTES_H */
