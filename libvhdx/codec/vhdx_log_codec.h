/*
 * vhdx_log_codec.h - L1 codec of VHDX log entries (MS-VHDX 2.3.1): pure
 * functions from bytes to structs and back, no I/O.  Sequence finding and
 * replay (which read the log ring and write pages) live in format/vhdx_log.c.
 *
 * Entry layout (FORMAT.md 1.5):
 *   entry header (64 B) | descriptors (32 B each), padded to 4 KiB |
 *   one 4 KiB data sector per data descriptor, in descriptor order
 *
 *   header:  0 4 "loge"  4 4 CRC-32C over EntryLength bytes  8 4 EntryLength
 *           12 4 Tail   16 8 SequenceNumber  24 4 DescriptorCount  28 4 reserved
 *           32 16 LogGuid  48 8 FlushedFileOffset  56 8 LastFileOffset
 *   zero descriptor: 0 4 "zero" 4 4 reserved 8 8 ZeroLength 16 8 FileOffset 24 8 SequenceNumber
 *   data descriptor: 0 4 "desc" 4 4 TrailingBytes 8 8 LeadingBytes 16 8 FileOffset 24 8 SequenceNumber
 *   data sector:     0 4 "data" 4 4 SequenceHigh  8..4091 page bytes 8..4091  4092 4 SequenceLow
 */
#ifndef VHDX_CODEC_LOG_H
#define VHDX_CODEC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHDX_LOG_SECTOR 4096
#define VHDX_LOG_ENTRY_HEADER_LEN 64
#define VHDX_LOG_DESC_LEN 32
#define VHDX_LOG_ENTRY_SIG 0x65676f6cu /* "loge" */
#define VHDX_LOG_ZERO_SIG 0x6f72657au  /* "zero" */
#define VHDX_LOG_DESC_SIG 0x63736564u  /* "desc" */
#define VHDX_LOG_DATA_SIG 0x61746164u  /* "data" */

/* One page (or zeroed range) to journal, as the write path hands it in. */
struct vhdx_log_page {
	uint64_t file_offset;  /* 4 KiB aligned, >= 192 KiB, outside the log */
	const uint8_t *data;   /* 4096 bytes to write; NULL makes a zero descriptor */
	uint64_t zero_length;  /* zero descriptors only: a 4 KiB multiple */
};

/* Header fields of an entry being written. */
struct vhdx_log_entry_info {
	uint64_t seq;                 /* non-zero */
	uint32_t tail;                /* log offset of the oldest entry still needed */
	uint8_t log_guid[16];
	uint64_t flushed_file_offset; /* 1 MiB multiple */
	uint64_t last_file_offset;    /* 1 MiB multiple */
};

/** Bytes of the entry that vhdx_log_entry_encode() makes from PAGES[0..N). */
size_t vhdx_log_entry_size(const struct vhdx_log_page *pages, size_t n);

/**
 * Encodes one entry into BUF (exactly vhdx_log_entry_size() bytes),
 * splitting each data page into leading/trailing bytes and a data sector
 * stamped with the sequence halves, and fills in the CRC-32C.
 */
void vhdx_log_entry_encode(const struct vhdx_log_entry_info *info, const struct vhdx_log_page *pages, size_t n,
			   uint8_t *buf);

/* A decoded descriptor. */
struct vhdx_log_desc {
	bool is_zero;
	uint64_t file_offset;
	uint64_t zero_length;    /* zero descriptors */
	uint64_t leading;        /* data descriptors: bytes 0..7 of the page (as stored, LE) */
	uint32_t trailing;       /* data descriptors: bytes 4092..4095 */
	uint32_t data_index;     /* data descriptors: index of its data sector */
};

struct vhdx_log_entry {
	uint32_t checksum;
	uint32_t entry_length;
	uint32_t tail;
	uint64_t seq;
	uint32_t desc_count;
	uint8_t log_guid[16];
	uint64_t flushed_file_offset;
	uint64_t last_file_offset;
	struct vhdx_log_desc *descs; /* desc_count entries (owned) */
	uint32_t data_count;
};

/**
 * Checks the 64-byte header at BUF (the first sector of a candidate entry;
 * LEN >= 64, else -EBADMSG) against LOG_LENGTH and LOG_GUID and fills the
 * header fields of *E (descs NULL): signature, EntryLength (4 KiB multiple,
 * >= 4 KiB, < LOG_LENGTH), Tail (aligned, < LOG_LENGTH), non-zero
 * SequenceNumber, LogGuid, 1 MiB Flushed/LastFileOffset, and a
 * descriptor area that fits in EntryLength.  0, or -EBADMSG naming the rule
 * that failed.
 */
int vhdx_log_entry_header_decode(const uint8_t *buf, size_t len, uint32_t log_length, const uint8_t log_guid[16],
				 struct vhdx_log_entry *e);

/**
 * Fully validates one whole entry BUF[0..LEN) (LEN == EntryLength) as
 * MS-VHDX 2.3.1 says: header rules, descriptor signatures and sequence
 * numbers, alignment, descriptors not below 192 KiB and not into the log
 * [LOG_OFFSET, LOG_OFFSET+LOG_LENGTH), data-sector signatures and sequence
 * halves, exact entry length, CRC-32C.  On success *E owns descs
 * (vhdx_log_entry_free).  0 or -EBADMSG naming the rule and the byte
 * offset inside the entry.
 */
int vhdx_log_entry_decode(const uint8_t *buf, size_t len, uint64_t log_offset, uint32_t log_length,
			  const uint8_t log_guid[16], struct vhdx_log_entry *e);

/** Rebuilds the 4 KiB page of data descriptor D of the entry in BUF into PAGE. */
void vhdx_log_entry_page(const uint8_t *buf, const struct vhdx_log_entry *e, const struct vhdx_log_desc *d,
			 uint8_t page[VHDX_LOG_SECTOR]);

void vhdx_log_entry_free(struct vhdx_log_entry *e);

/**
 * True when the 64 bytes at BUF start like an entry of the log LOG_GUID
 * names (signature "loge" and that LogGuid), whatever else is wrong with
 * it: lets a log scan tell a damaged entry of this session from leftovers
 * of older sessions and from sectors that are not entry headers at all.
 */
bool vhdx_log_entry_matches(const uint8_t *buf, const uint8_t log_guid[16]);

#endif
