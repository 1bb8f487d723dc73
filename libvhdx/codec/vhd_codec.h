/*
 * vhd_codec.h - L1 codecs of the legacy VHD on-disk structures ("Virtual
 * Hard Disk Image Format Specification" v1.0, 2006; FORMAT.md section 2):
 * the footer, the dynamic disk header with its 8 parent locator entries,
 * the one's-complement checksum, the CHS geometry rule of the spec's
 * appendix and the BAT / sector bitmap arithmetic.  Pure functions: bytes
 * <-> structs, every bound checked here, no I/O.
 *
 * Every integer is big-endian.  Layouts of the three file types:
 *
 *   fixed:         | data (current size) ............... | footer (512) |
 *
 *   dynamic,       | footer | dynamic | BAT (4 bytes    | block | block |   | footer |
 *   differencing:  | copy   | header  | per entry, 512  |  ...  |  ...  |   | (512)  |
 *                  | (512)  | (1024)  | multiple)       |       |       |   |        |
 *
 *   block:         | sector bitmap (ceil(blocksize/512/8) rounded up to 512) | data |
 *
 * Decoders return 0 or -EBADMSG / -ENOTSUP with a message naming the field
 * (the caller prefixes the structure's file offset).  Encoders cannot fail
 * and fill in the checksum.
 */
#ifndef VHDX_CODEC_VHD_H
#define VHDX_CODEC_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_SECTOR            512u
#define VHD_FOOTER_SIZE       512u
#define VHD_FOOTER_OLD_SIZE   511u   /* footers written before Virtual PC 2004 */
#define VHD_DYNHDR_SIZE       1024u
#define VHD_FOOTER_COOKIE     "conectix"
#define VHD_DYNHDR_COOKIE     "cxsparse"
#define VHD_VERSION_1         0x00010000u
#define VHD_BAT_UNUSED        0xFFFFFFFFu
#define VHD_N_LOCATORS        8
#define VHD_PARENT_NAME_LEN   512u
/* Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_UNIX        946684800ull

/* Block sizes accepted: powers of two in [4 KiB, 256 MiB] (the spec's default is 2 MiB). */
#define VHD_MIN_BLOCK_SIZE    (4u * 1024)
#define VHD_MAX_BLOCK_SIZE    (256u * 1024 * 1024)
/* Longest parent locator data accepted (a 32767-unit UTF-16 path plus its NUL). */
#define VHD_LOCATOR_MAX_LEN   65536u

/* Disk types (footer offset 60). */
#define VHD_TYPE_NONE         0u
#define VHD_TYPE_FIXED        2u
#define VHD_TYPE_DYNAMIC      3u
#define VHD_TYPE_DIFFERENCING 4u

/* Footer feature bits (offset 8). */
#define VHD_FEATURE_TEMPORARY 0x1u
#define VHD_FEATURE_RESERVED  0x2u   /* "must always be set" */

/* Platform codes of the parent locator entries (2.4). */
#define VHD_PLAT_NONE 0x00000000u
#define VHD_PLAT_WI2R 0x57693272u    /* "Wi2r" deprecated: relative Windows path, single-byte chars */
#define VHD_PLAT_WI2K 0x5769326Bu    /* "Wi2k" deprecated: absolute Windows path, single-byte chars */
#define VHD_PLAT_W2RU 0x57327275u    /* "W2ru" relative Windows path, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u    /* "W2ku" absolute Windows path, UTF-16LE */
#define VHD_PLAT_MAC  0x4D616320u    /* "Mac " Mac OS alias blob */
#define VHD_PLAT_MACX 0x4D616358u    /* "MacX" file URL, UTF-8 */

/* Creator host OS (footer offset 36). */
#define VHD_OS_WINDOWS 0x5769326Bu   /* "Wi2k" */
#define VHD_OS_MAC     0x4D616320u   /* "Mac " */

/* Decoder flags */
#define VHDX_VHD_DECODE_SALVAGE 0x1u /* a checksum mismatch is recorded, not an error */

/* ---- footer (512 bytes) ----
 *   0  8 cookie "conectix"          8  4 features
 *  12  4 file format version       16  8 data offset (dynamic header; all-FF for fixed)
 *  24  4 time stamp (VHD epoch)    28  4 creator application
 *  32  4 creator version           36  4 creator host OS
 *  40  8 original size             48  8 current size
 *  56  2 cylinders  58 1 heads  59 1 sectors per track
 *  60  4 disk type                 64  4 checksum
 *  68 16 unique id                 84  1 saved state
 *  85 427 reserved
 */
#define VHD_FOOTER_CHECKSUM_OFF 64
struct vhdx_vhd_footer {
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	uint8_t creator_app[4];
	uint32_t creator_version;
	uint32_t creator_os;
	uint64_t original_size;
	uint64_t current_size;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors_per_track;
	uint32_t disk_type;
	uint32_t checksum;          /* as stored */
	uint32_t checksum_computed;
	bool checksum_valid;
	uint8_t unique_id[16];      /* as stored (big-endian UUID byte order) */
	uint8_t saved_state;
	bool reserved_nonzero;      /* informational: bytes 85..511 are not all zero */
};

/**
 * Decodes a footer from BUF (LEN >= 512; a 511-byte old footer must be
 * passed zero-padded to 512).  Checks, in this order: the cookie, the
 * checksum (a mismatch is an error unless FLAGS has
 * VHDX_VHD_DECODE_SALVAGE), the format version (major 1), the disk type
 * (2, 3 or 4; others -ENOTSUP naming the type), a current size that is a
 * multiple of 512, and a data offset that is a 512 multiple for dynamic and
 * differencing disks.  *OUT is filled as far as decoding got.
 * 0, -EBADMSG or -ENOTSUP with a message starting "footer: ".
 */
int vhdx_vhd_footer_decode(const uint8_t *buf, size_t len, unsigned flags, struct vhdx_vhd_footer *out);

/** Encodes F into BUF (512 bytes, reserved area zeroed) with a fresh checksum. */
void vhdx_vhd_footer_encode(const struct vhdx_vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);

/* ---- dynamic disk header (1024 bytes at footer.data_offset) ----
 *   0  8 cookie "cxsparse"          8  8 data offset (unused, all-FF)
 *  16  8 table offset (BAT)        24  4 header version (0x00010000)
 *  28  4 max table entries         32  4 block size
 *  36  4 checksum                  40 16 parent unique id
 *  56  4 parent time stamp         60  4 reserved
 *  64 512 parent Unicode name (UTF-16BE, NUL padded)
 * 576 8 x 24 parent locator entries:
 *        0 4 platform code  4 4 platform data space  8 4 platform data length
 *       12 4 reserved      16 8 platform data offset (absolute)
 * 768 256 reserved
 */
#define VHD_DYNHDR_CHECKSUM_OFF 36
#define VHD_DYNHDR_NAME_OFF     64
#define VHD_DYNHDR_LOCATOR_OFF  576
#define VHD_LOCATOR_ENTRY_SIZE  24

struct vhdx_vhd_locator {
	uint32_t code;
	uint32_t data_space;  /* documented in sectors, real files hold byte counts: informational only */
	uint32_t data_length; /* bytes */
	uint32_t reserved;
	uint64_t data_offset; /* absolute file offset */
};

struct vhdx_vhd_dynhdr {
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t checksum;          /* as stored */
	uint32_t checksum_computed;
	bool checksum_valid;
	uint8_t parent_unique_id[16]; /* as stored */
	uint32_t parent_timestamp;
	uint8_t parent_name[VHD_PARENT_NAME_LEN]; /* raw UTF-16BE; see vhdx_vhd_parent_name() */
	struct vhdx_vhd_locator locators[VHD_N_LOCATORS];
};

/**
 * Decodes a dynamic disk header from BUF (LEN >= 1024).  Checks the cookie,
 * the checksum (unless VHDX_VHD_DECODE_SALVAGE, which records a mismatch in
 * checksum_valid), the header version (major 1) and the block size (a
 * power of two in [VHD_MIN_BLOCK_SIZE, VHD_MAX_BLOCK_SIZE]).  Locator
 * entries are decoded but their bounds are checked by
 * vhdx_vhd_locator_check().  0, -EBADMSG or -ENOTSUP with a message
 * starting "dynamic header: ".
 */
int vhdx_vhd_dynhdr_decode(const uint8_t *buf, size_t len, unsigned flags, struct vhdx_vhd_dynhdr *out);

/** Encodes H into BUF (1024 bytes, reserved areas zeroed) with a fresh checksum. */
void vhdx_vhd_dynhdr_encode(const struct vhdx_vhd_dynhdr *h, uint8_t buf[VHD_DYNHDR_SIZE]);

/**
 * Checks that the BAT of H covers a disk of CURRENT_SIZE bytes:
 * max_table_entries >= ceil(CURRENT_SIZE / block_size).  0 or -EBADMSG.
 */
int vhdx_vhd_dynhdr_check_size(const struct vhdx_vhd_dynhdr *h, uint64_t current_size);

/**
 * Decodes the parent Unicode name of H (UTF-16BE up to the first NUL) into
 * a new UTF-8 string *OUT ("" when empty).  0, -EBADMSG (bad UTF-16, with a
 * message) or -ENOMEM.
 */
int vhdx_vhd_parent_name(const struct vhdx_vhd_dynhdr *h, char **out);

/**
 * Checks the bounds of locator entry IDX of H before its data is read: a
 * known or unknown code with a data length of at most VHD_LOCATOR_MAX_LEN,
 * and data [offset, offset + length) inside [0, DATA_END) without overflow.
 * An entry with code 0 is always fine.  0 or -EBADMSG naming the entry.
 */
int vhdx_vhd_locator_check(const struct vhdx_vhd_dynhdr *h, unsigned idx, uint64_t data_end);

/**
 * Decodes the data of a locator entry with platform CODE (DATA, LEN bytes)
 * into a new UTF-8 path *OUT: W2ru/W2ku as UTF-16LE, Wi2r/Wi2k as
 * single-byte characters (bytes >= 0x80 taken as Latin-1), MacX as UTF-8;
 * each up to its first NUL.  -ENOTSUP for "Mac " alias blobs and unknown
 * codes, -EBADMSG for bad UTF-16/UTF-8 (no message), -ENOMEM.
 */
int vhdx_vhd_locator_path(uint32_t code, const uint8_t *data, size_t len, char **out);

/** The 4-character name of a platform code or creator field ("W2ru"), NUL-terminated, '?' for unprintables. */
void vhdx_vhd_fourcc(uint32_t code, char out[5]);

/* ---- checksum (2.6) ---- */

/**
 * One's complement of the byte sum of BUF[0..LEN), skipping the four
 * checksum bytes at SKIP_OFF.
 */
uint32_t vhdx_vhd_checksum(const uint8_t *buf, size_t len, size_t skip_off);

/* ---- CHS geometry (spec appendix, FORMAT.md 2.7) ---- */
struct vhdx_vhd_chs {
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors_per_track;
};

/** The geometry the spec's algorithm gives for SIZE bytes (capped at 65535/16/255). */
void vhdx_vhd_chs_calc(uint64_t size, struct vhdx_vhd_chs *out);

/** Bytes a geometry addresses: cylinders * heads * sectors_per_track * 512. */
uint64_t vhdx_vhd_chs_size(uint16_t cylinders, uint8_t heads, uint8_t sectors_per_track);

/* ---- BAT and blocks (2.5) ---- */

/** Bytes of the sector bitmap in front of every block of BLOCK_SIZE bytes (512 multiple). */
uint32_t vhdx_vhd_bitmap_size(uint32_t block_size);

/** BAT entry I of the raw big-endian table RAW (the caller bounds I). */
static inline uint32_t vhdx_vhd_bat_get(const uint8_t *raw, uint64_t i)
{
	const uint8_t *p = raw + 4 * i;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/** Stores VALUE as BAT entry I of the raw big-endian table RAW (the caller bounds I). */
static inline void vhdx_vhd_bat_put(uint8_t *raw, uint64_t i, uint32_t value)
{
	uint8_t *p = raw + 4 * i;
	p[0] = (uint8_t)(value >> 24);
	p[1] = (uint8_t)(value >> 16);
	p[2] = (uint8_t)(value >> 8);
	p[3] = (uint8_t)value;
}

/** File offset of the block (its bitmap) that BAT entry value SECTOR names. */
static inline uint64_t vhdx_vhd_block_foff(uint32_t sector)
{
	return (uint64_t)sector * VHD_SECTOR;
}

/**
 * Sector bit of the MSB-first bitmap BM: sector I of the block is byte
 * I/8, bit 7 - I%8 (the opposite of the VHDX order).
 */
static inline bool vhdx_vhd_bitmap_bit(const uint8_t *bm, uint64_t i)
{
	return (bm[i >> 3] >> (7 - (i & 7))) & 1;
}

/**
 * Length, in sectors, of the run of equal bits of the MSB-first bitmap BM
 * starting at sector FIRST and ending at LIMIT at most (FIRST < LIMIT);
 * *VALUE receives the bit.  Whole 0x00 / 0xff bytes are skipped at once.
 */
uint64_t vhdx_vhd_bitmap_run(const uint8_t *bm, uint64_t first, uint64_t limit, bool *value);

/**
 * Sets the bits of sectors [FIRST, FIRST + N) of the MSB-first bitmap BM
 * (sector I is byte I/8, bit 7 - I%8; whole bytes at once).  Returns true
 * when at least one bit changed from 0 to 1, so that a writer knows whether
 * the bitmap sector must be written again.
 */
bool vhdx_vhd_bitmap_set(uint8_t *bm, uint64_t first, uint64_t n);

/* ---- identifiers ---- */

/**
 * Converts the 16 bytes of a VHD unique id (a UUID stored in big-endian,
 * RFC 4122 byte order) into libvhdx's GUID bytes (Microsoft mixed-endian),
 * so that vhdx_guid_format() prints the same text as the VHD specification
 * and libvhdi.  The conversion is its own inverse.
 */
void vhdx_vhd_uuid_to_guid(const uint8_t uuid[16], uint8_t guid[16]);

/**
 * The VHD time stamp (seconds since 2000-01-01 UTC) of UNIX_SECONDS: 0 for
 * times before the VHD epoch, 0xFFFFFFFF for times past its end (2136).
 */
static inline uint32_t vhdx_vhd_time_from_unix(int64_t unix_seconds)
{
	if (unix_seconds <= (int64_t)VHD_EPOCH_UNIX)
		return 0;
	if ((uint64_t)unix_seconds - VHD_EPOCH_UNIX > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)((uint64_t)unix_seconds - VHD_EPOCH_UNIX);
}

/** Seconds since the Unix epoch of a VHD time stamp. */
static inline uint64_t vhdx_vhd_time_to_unix(uint32_t ts)
{
	return VHD_EPOCH_UNIX + ts;
}

#endif /* VHDX_CODEC_VHD_H */
