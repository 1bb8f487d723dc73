/*
 * vhdx_codec.h - L1 codecs of the VHDX on-disk structures (MS-VHDX 2.2, 2.4,
 * 2.5, 2.6): bytes <-> structs, with every bound checked here.  No I/O.
 *
 * First megabyte of a VHDX file (MS-VHDX 2.2):
 *
 *   0        64K       128K      192K      256K      320K        1M
 *   +--------+---------+---------+---------+---------+-----------+
 *   | file   | header  | header  | region  | region  | reserved  |
 *   | id     | 1       | 2       | table 1 | table 2 |           |
 *   +--------+---------+---------+---------+---------+-----------+
 *
 * Decoders return 0 or -EBADMSG/-ENOTSUP with a message naming the field;
 * the caller prefixes the file and offset.  Encoders cannot fail and fill
 * in checksums.
 */
#ifndef VHDX_CODEC_VHDX_H
#define VHDX_CODEC_VHDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- fixed offsets and sizes (MS-VHDX 2.2) ---- */
#define VHDX_FILEID_OFF     0
#define VHDX_FILEID_SIZE    (64 * 1024)
#define VHDX_HEADER1_OFF    (64 * 1024)
#define VHDX_HEADER2_OFF    (128 * 1024)
#define VHDX_HEADER_SIZE    4096
#define VHDX_REGION1_OFF    (192 * 1024)
#define VHDX_REGION2_OFF    (256 * 1024)
#define VHDX_REGION_SIZE    (64 * 1024)
#define VHDX_ALIGN          (1024 * 1024)   /* every allocated object is 1 MiB aligned */
#define VHDX_LOGGABLE_OFF   (192 * 1024)    /* the log may not target anything below */
#define VHDX_MAX_VIRTUAL_SIZE (64ull * 1024 * 1024 * 1024 * 1024)
#define VHDX_MIN_BLOCK_SIZE (1u << 20)
#define VHDX_MAX_BLOCK_SIZE (256u << 20)
#define VHDX_CHUNK_SECTORS  (1ull << 23)    /* sectors described by one sector-bitmap block */

/* ---- file type identifier (2.2.1) ----
 *   0  8   signature "vhdxfile"
 *   8  512 creator, UTF-16LE, informational
 */
#define VHDX_FILEID_SIG "vhdxfile"
#define VHDX_FILEID_CREATOR_OFF 8
#define VHDX_FILEID_CREATOR_LEN 512

struct vhdx_fileid {
	char *creator; /* UTF-8, owned; NULL if not decodable */
};
int vhdx_fileid_decode(const uint8_t *buf, size_t len, struct vhdx_fileid *out);
/** Writes the 64 KiB identifier with CREATOR (UTF-8, may be NULL). */
void vhdx_fileid_encode(const char *creator, uint8_t buf[VHDX_FILEID_SIZE]);
void vhdx_fileid_free(struct vhdx_fileid *f);

/* ---- header (2.2.2), 4096 bytes ----
 *   0  4  "head"           4  4  CRC-32C (field zeroed)
 *   8  8  SequenceNumber  16 16  FileWriteGuid
 *  32 16  DataWriteGuid   48 16  LogGuid
 *  64  2  LogVersion (0)  66  2  Version (1)
 *  68  4  LogLength       72  8  LogOffset
 */
#define VHDX_HEADER_SIG 0x64616568u /* "head" */
struct vhdx_header {
	uint32_t checksum;
	uint64_t seq;
	uint8_t file_write_guid[16];
	uint8_t data_write_guid[16];
	uint8_t log_guid[16];
	uint16_t log_version;
	uint16_t version;
	uint32_t log_length;
	uint64_t log_offset;
};
/**
 * The opening checks shared by the checksummed structures (header, region
 * table): BUF holds at least SIZE of LEN bytes, starts with the 4-byte
 * signature SIG (SIG_TEXT in the message) and carries at byte 4 the CRC-32C
 * of its SIZE bytes, which is stored in *CHECKSUM.  WHAT names the structure
 * in the messages.  0, or -EBADMSG with a message.
 */
int vhdx_checked_struct_open(const uint8_t *buf, size_t len, size_t size, uint32_t sig, const char *sig_text,
			     const char *what, uint32_t *checksum);

/** Checks signature, CRC, versions and log placement rules. */
int vhdx_header_decode(const uint8_t *buf, size_t len, struct vhdx_header *out);
void vhdx_header_encode(const struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE]);

/* ---- region table (2.2.3), 64 KiB ----
 *   0 4 "regi"  4 4 CRC-32C  8 4 EntryCount (<= 2047)  12 4 reserved
 *   then entries of 32 bytes: 0 16 GUID, 16 8 FileOffset, 24 4 Length, 28 4 Required(bit 0)
 */
#define VHDX_REGION_SIG 0x69676572u /* "regi" */
#define VHDX_REGION_MAX_ENTRIES 2047
struct vhdx_region_entry {
	uint8_t guid[16];
	uint64_t file_offset;
	uint32_t length;
	bool required;
};
struct vhdx_region_table {
	uint32_t checksum;
	uint32_t entry_count;
	struct vhdx_region_entry entries[VHDX_REGION_MAX_ENTRIES];
};
/** Checks signature, CRC, count, alignment and duplicate GUIDs (not overlaps with the log: see vhdx.c). */
int vhdx_region_table_decode(const uint8_t *buf, size_t len, struct vhdx_region_table *out);
void vhdx_region_table_encode(const struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_SIZE]);
const struct vhdx_region_entry *vhdx_region_find(const struct vhdx_region_table *t, const uint8_t guid[16]);

extern const uint8_t VHDX_GUID_BAT_REGION[16];
extern const uint8_t VHDX_GUID_METADATA_REGION[16];

/* ---- metadata table (2.6.1), first 64 KiB of the metadata region ----
 *   0 8 "metadata"  8 2 reserved  10 2 EntryCount (<= 2047)  12 20 reserved
 *   entries of 32 bytes: 0 16 ItemId, 16 4 Offset, 20 4 Length,
 *                        24 4 flags (bit0 IsUser, bit1 IsVirtualDisk, bit2 IsRequired), 28 4 reserved
 */
#define VHDX_METADATA_SIG "metadata"
#define VHDX_METADATA_TABLE_SIZE (64 * 1024)
#define VHDX_METADATA_MAX_ENTRIES 2047
#define VHDX_METADATA_MAX_ITEM (1024 * 1024)
struct vhdx_metadata_entry {
	uint8_t item_id[16];
	uint32_t offset;
	uint32_t length;
	bool is_user, is_virtual_disk, is_required;
};
struct vhdx_metadata_table {
	uint16_t entry_count;
	struct vhdx_metadata_entry entries[VHDX_METADATA_MAX_ENTRIES];
};
/** Checks signature, count, offsets/lengths inside REGION_LEN, duplicates. */
int vhdx_metadata_table_decode(const uint8_t *buf, size_t len, uint32_t region_len,
			       struct vhdx_metadata_table *out);
void vhdx_metadata_table_encode(const struct vhdx_metadata_table *t, uint8_t buf[VHDX_METADATA_TABLE_SIZE]);
const struct vhdx_metadata_entry *vhdx_metadata_find(const struct vhdx_metadata_table *t, const uint8_t id[16],
						     bool is_user);

/* Known metadata items (2.6.2 and Windows-internal ones). */
extern const uint8_t VHDX_GUID_FILE_PARAMETERS[16];
extern const uint8_t VHDX_GUID_VIRTUAL_DISK_SIZE[16];
extern const uint8_t VHDX_GUID_VIRTUAL_DISK_ID[16];
extern const uint8_t VHDX_GUID_LOGICAL_SECTOR_SIZE[16];
extern const uint8_t VHDX_GUID_PHYSICAL_SECTOR_SIZE[16];
extern const uint8_t VHDX_GUID_PARENT_LOCATOR[16];
extern const uint8_t VHDX_GUID_CHS_PARAMETERS[16];
extern const uint8_t VHDX_GUID_INCOMPLETE_FILE[16];
extern const uint8_t VHDX_GUID_PMEM_LABEL[16];
extern const uint8_t VHDX_GUID_PARENT_LOCATOR_TYPE[16];

/** Human name of a known system metadata item or region GUID, or NULL. */
const char *vhdx_known_guid_name(const uint8_t guid[16]);

#define VHDX_FILE_PARAMS_LEAVE_ALLOCATED 0x1u
#define VHDX_FILE_PARAMS_HAS_PARENT 0x2u
struct vhdx_file_params {
	uint32_t block_size;
	bool leave_blocks_allocated;
	bool has_parent;
};
int vhdx_file_params_decode(const uint8_t *buf, size_t len, struct vhdx_file_params *out);
void vhdx_file_params_encode(const struct vhdx_file_params *p, uint8_t buf[8]);

/* ---- BAT (2.5) ----
 * u64 entries: bits 0-2 state, 3-19 reserved, 20-63 file offset in MiB.
 * After every chunk_ratio payload entries comes one sector-bitmap entry.
 */
enum vhdx_bat_state {
	VHDX_BAT_NOT_PRESENT = 0,      /* payload; also SB_BLOCK_NOT_PRESENT */
	VHDX_BAT_UNDEFINED = 1,
	VHDX_BAT_ZERO = 2,
	VHDX_BAT_UNMAPPED = 3,
	VHDX_BAT_UNMAPPED_V095 = 5,    /* draft value still written by old tools */
	VHDX_BAT_FULLY_PRESENT = 6,    /* payload; also SB_BLOCK_PRESENT */
	VHDX_BAT_PARTIALLY_PRESENT = 7,
};
#define VHDX_BAT_STATE_MASK 0x7ull
#define VHDX_BAT_RESERVED_MASK 0xFFFF8ull
#define VHDX_BAT_OFFSET_SHIFT 20

static inline unsigned vhdx_bat_state(uint64_t e)
{
	return (unsigned)(e & VHDX_BAT_STATE_MASK);
}
static inline uint64_t vhdx_bat_foff(uint64_t e)
{
	return (e >> VHDX_BAT_OFFSET_SHIFT) << VHDX_BAT_OFFSET_SHIFT;
}
static inline uint64_t vhdx_bat_make(unsigned state, uint64_t foff)
{
	return (foff & ~((1ull << VHDX_BAT_OFFSET_SHIFT) - 1)) | (state & VHDX_BAT_STATE_MASK);
}
const char *vhdx_bat_state_name(unsigned state, bool bitmap_entry);
/* Whether a payload entry may hold STATE (2.5.1): PARTIALLY_PRESENT only in a differencing disk. */
static inline bool vhdx_bat_payload_state_ok(unsigned state, bool has_parent)
{
	switch (state) {
	case VHDX_BAT_NOT_PRESENT:
	case VHDX_BAT_UNDEFINED:
	case VHDX_BAT_ZERO:
	case VHDX_BAT_UNMAPPED:
	case VHDX_BAT_UNMAPPED_V095:
	case VHDX_BAT_FULLY_PRESENT:
		return true;
	case VHDX_BAT_PARTIALLY_PRESENT:
		return has_parent;
	default:
		return false;
	}
}

/* Geometry of the block and chunk layout (2.4, 2.5). */
struct vhdx_geometry {
	uint64_t virtual_size;
	uint32_t block_size;
	uint32_t logical_sector_size;
	bool has_parent;
	uint64_t chunk_ratio;        /* payload blocks per sector-bitmap block */
	uint64_t payload_blocks;     /* ceil(virtual_size / block_size) */
	uint64_t bitmap_blocks;      /* ceil(payload_blocks / chunk_ratio) */
	uint64_t bat_entries;        /* entries the BAT must hold */
};
/** Validates sizes (bounds of 2.6.2) and computes the layout. */
int vhdx_geometry_init(struct vhdx_geometry *g, uint64_t virtual_size, uint32_t block_size,
		       uint32_t logical_sector_size, bool has_parent);
static inline uint64_t vhdx_bat_payload_index(const struct vhdx_geometry *g, uint64_t blk)
{
	return blk + blk / g->chunk_ratio;
}
static inline uint64_t vhdx_bat_bitmap_index(const struct vhdx_geometry *g, uint64_t chunk)
{
	return chunk * (g->chunk_ratio + 1) + g->chunk_ratio;
}

#endif /* VHDX_CODEC_VHDX_H */
