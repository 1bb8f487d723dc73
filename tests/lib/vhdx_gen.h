/*
 * vhdx_gen.h - a deterministic generator of VHDX test images, built in
 * memory from a small options struct, for the unit tests, the crash tests
 * and the fuzzers' seed corpus (fuzz/make_seeds.c).  Its half that uses no
 * library code (fields, checksums, sparse-file and fuzz-seed output) is
 * gen_bytes.h, which the damage tool and the fuzz harness use alone.
 *
 * The generator writes every structure that has a library encoder with it
 * (vhdx_fileid_encode, vhdx_header_encode, vhdx_region_table_encode,
 * vhdx_metadata_table_encode, vhdx_file_params_encode,
 * vhdx_locator_encode) and everything else (metadata values, BAT entries,
 * sector bitmaps, payload) with the endian helpers.  Its geometry (chunk
 * ratio, BAT interleave, entry counts) is computed here independently of
 * libvhdx/codec/vhdx_bat.c so that the tests compare two implementations.
 *
 * Default layout (MS-VHDX 2.2, FORMAT.md 1.2), every offset overridable:
 *
 *   0     file identifier "vhdxfile" + creator
 *   64K   header 1 (seq 1)        128K  header 2 (seq 2: the current one)
 *   192K  region table 1          256K  region table 2 (identical)
 *   1M    log (1 MiB, all zero, LogGuid zero: a clean log)
 *   2M    metadata region (1 MiB): table, then the items back to back at 64K
 *   3M    BAT (entries rounded up to 1 MiB)
 *   ...   payload blocks in the order they are listed, then sector-bitmap
 *         blocks in chunk order, each at the next free 1 MiB-aligned offset.
 *         A payload block takes a whole block size in the file, but only its
 *         bytes inside the virtual size are written: when the short last
 *         block is the last thing in the file, the file ends after its data
 *         (rounded up to 1 MiB).
 *
 * Data pattern: the byte at virtual offset V of a block with seed S in an
 * image with seed I is vhdx_gen_pattern_byte(I, S, V).  Because the pattern
 * depends on the virtual offset and not on the file offset, a reader that
 * maps a sector to the wrong block or the wrong offset inside it reads
 * different bytes.  A partially present block holds the pattern in every
 * sector (also those whose bitmap bit is 0), so a reader that ignores the
 * bitmap reads this layer's bytes where it should have read the parent's.
 *
 * Damage: build a good image, then change it.  Structures without a
 * checksum (metadata table and items, BAT, bitmaps, payload) can be patched
 * in img->file directly (vhdx_put_le32(img->file + off, v), or
 * vhdx_gen_set_bat()).  Headers and region tables are kept decoded in the
 * image: edit img->headers[] / img->regions[] and call
 * vhdx_gen_reencode_headers() / vhdx_gen_reencode_regions() to write them
 * back with a valid CRC, then vhdx_gen_break_crc() to make one invalid.
 * The same goes for img->meta (vhdx_gen_reencode_metadata()).  Flags in
 * opts->damage do the common cases at build time.
 *
 * Expected contents: img remembers what each payload block was meant to be
 * (state, seed, bitmap bits) independently of the bytes in img->file, so
 * vhdx_gen_expected() / vhdx_gen_kind() stay the intended truth after the
 * file was damaged.
 *
 * Nothing here reads the image back with the library: the generator is the
 * oracle the reader is checked against.
 */
#ifndef VHDX_TESTS_GEN_H
#define VHDX_TESTS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/vhdx_codec.h"
#include "io/io.h"

enum vhdx_gen_type {
	VHDX_GEN_DYNAMIC = 0,      /* unlisted blocks NOT_PRESENT (read as zeros) */
	VHDX_GEN_FIXED = 1,        /* LeaveBlockAllocated; unlisted blocks FULLY_PRESENT with seed blk+1 */
	VHDX_GEN_DIFFERENCING = 2, /* HasParent + locator; unlisted blocks NOT_PRESENT (parent) */
};

/* A run of logical sectors, relative to the start of its block. */
struct vhdx_gen_run {
	uint64_t first;
	uint64_t count;
};

/* One payload block to describe (blocks not listed get the type's default). */
struct vhdx_gen_block {
	uint64_t blk;        /* payload block number (< payload blocks) */
	unsigned state;      /* VHDX_BAT_* payload state; any 0..7 is written as is */
	uint32_t seed;       /* data pattern seed; 0 = blk + 1 */
	/*
	 * FULLY/PARTIALLY_PRESENT: file offset of the data (1 MiB aligned);
	 * 0 = the next free slot.  Other states: written into the entry's
	 * offset bits as is (no data is written).
	 */
	uint64_t foff;
	/* Sector bitmap bits set to 1 for these sectors of the block (any state;
	 * they only change what is read for PARTIALLY_PRESENT blocks). */
	const struct vhdx_gen_run *runs;
	size_t n_runs;
};

/* An extra metadata item appended after the standard ones. */
struct vhdx_gen_meta_item {
	uint8_t guid[16];
	const void *data;    /* LEN bytes (NULL = zeros) */
	uint32_t len;        /* 0 = "present but empty" (offset 0) */
	bool is_user, is_virtual_disk, is_required;
};

/* An extra region table entry (both copies) appended after BAT and metadata. */
struct vhdx_gen_region {
	uint8_t guid[16];
	uint64_t file_offset; /* the bytes there are not touched (zeros unless written) */
	uint32_t length;
	bool required;
};

/* Damage flags (opts->damage), applied at the end of vhdx_gen_build(). */
#define VHDX_GEN_BAD_HEADER1_CRC  0x0001u /* header at 64 KiB: stored CRC off by one bit */
#define VHDX_GEN_BAD_HEADER2_CRC  0x0002u /* header at 128 KiB */
#define VHDX_GEN_BAD_REGION1_CRC  0x0004u /* region table at 192 KiB */
#define VHDX_GEN_BAD_REGION2_CRC  0x0008u /* region table at 256 KiB */
#define VHDX_GEN_NO_BITMAP_BLOCKS 0x0010u /* no sector-bitmap block is allocated (SB entries NOT_PRESENT) */
#define VHDX_GEN_BAD_FILEID_SIG   0x0020u /* "vhdxfilE" at offset 0 */
#define VHDX_GEN_NO_LOG           0x0040u /* LogLength = LogOffset = 0 in both headers */

struct vhdx_gen_opts {
	enum vhdx_gen_type type;
	uint64_t virtual_size;          /* bytes; required */
	uint32_t block_size;            /* 0 = 1 MiB */
	uint32_t logical_sector_size;   /* 0 = 512 */
	uint32_t physical_sector_size;  /* 0 = 4096 */
	uint32_t seed;                  /* image seed: data pattern and default GUIDs */
	const char *creator;            /* NULL = "libvhdx test generator" */

	uint64_t log_offset;            /* 0 = 1 MiB */
	uint32_t log_length;            /* 0 = 1 MiB (VHDX_GEN_NO_LOG for none) */
	uint64_t meta_offset;           /* 0 = after the log */
	uint32_t meta_length;           /* 0 = 1 MiB */
	uint64_t bat_offset;            /* 0 = after the metadata region */
	uint32_t bat_length;            /* 0 = the entries rounded up to 1 MiB */
	uint64_t data_offset;           /* 0 = after the highest of log, metadata, BAT */

	uint64_t header_seq[2];         /* 0 = slot 0: 1, slot 1: 2 */
	/* All-zero GUIDs are replaced by ones derived from the seed
	 * (log_guid stays zero unless given: a non-zero one means "dirty"). */
	uint8_t file_write_guid[16];
	uint8_t data_write_guid[16];
	uint8_t log_guid[16];
	uint8_t disk_id[16];

	/* Differencing: the parent's DataWriteGuid (written as
	 * parent_linkage "{...}") and relative_path (NULL = "parent.vhdx").
	 * locator_n > 0 replaces the default keys with these pairs;
	 * locator_raw (non-NULL) replaces the whole item with these bytes. */
	uint8_t parent_linkage[16];
	const char *parent_path;
	const char *const *locator_keys;
	const char *const *locator_values;
	size_t locator_n;
	const uint8_t *locator_raw;
	size_t locator_raw_len;

	const struct vhdx_gen_block *blocks;
	size_t n_blocks;
	const struct vhdx_gen_meta_item *extra_meta;
	size_t n_extra_meta;
	const struct vhdx_gen_region *extra_regions;
	size_t n_extra_regions;

	uint64_t min_file_size;         /* pad the file with zeros up to this size */
	unsigned damage;                /* VHDX_GEN_* flags above */
};

/* Indexes of img->item_off / item_len (standard metadata items, table order). */
enum vhdx_gen_item {
	VHDX_GEN_ITEM_FILE_PARAMS = 0,
	VHDX_GEN_ITEM_VIRTUAL_SIZE,
	VHDX_GEN_ITEM_DISK_ID,
	VHDX_GEN_ITEM_LOGICAL_SS,
	VHDX_GEN_ITEM_PHYSICAL_SS,
	VHDX_GEN_ITEM_LOCATOR,      /* differencing only */
	VHDX_GEN_ITEM__COUNT
};

/* What the image holds at a virtual offset, as this layer alone says it. */
enum vhdx_gen_kind {
	VHDX_GEN_K_DATA = 1,   /* stored in this file (pattern bytes) */
	VHDX_GEN_K_ZERO = 2,   /* zeros; does not fall through */
	VHDX_GEN_K_PARENT = 3, /* transparent: the parent's bytes (zeros without one) */
};

struct vhdx_gen_image {
	/* the file (owned); tests may patch it and shrink file_len */
	uint8_t *file;
	size_t file_len;

	/* the options the image was built from (blocks/items not kept) */
	enum vhdx_gen_type type;
	uint32_t seed;

	/* geometry as the generator computed it */
	uint64_t virtual_size;
	uint32_t block_size;
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	bool has_parent;
	uint64_t chunk_ratio;
	uint64_t payload_blocks;
	uint64_t bitmap_blocks;
	uint64_t bat_entries;

	/* layout (file offsets) */
	uint64_t log_offset;
	uint32_t log_length;
	uint64_t meta_offset;
	uint32_t meta_length;
	uint64_t bat_offset;
	uint32_t bat_length;
	uint64_t item_off[VHDX_GEN_ITEM__COUNT];  /* file offset of each item (0 = absent) */
	uint32_t item_len[VHDX_GEN_ITEM__COUNT];
	uint64_t *extra_item_off;                 /* file offset of each opts->extra_meta item */

	/* decoded copies of what was encoded; see vhdx_gen_reencode_*() */
	struct vhdx_header headers[2];
	struct vhdx_region_table *regions[2];
	struct vhdx_metadata_table *meta;

	/* intent per payload block and per chunk */
	uint64_t *bat;            /* bat_entries entries as first written (host order) */
	unsigned *block_state;    /* payload_blocks */
	uint32_t *block_seed;     /* payload_blocks */
	uint64_t *block_foff;     /* payload_blocks; 0 = no data */
	uint64_t *bitmap_foff;    /* bitmap_blocks; 0 = no sector-bitmap block */
	uint8_t **bitmaps;        /* bitmap_blocks intended 1 MiB bitmaps (NULL = all zero) */
};

/**
 * Builds the image described by O into a new *OUT (free with
 * vhdx_gen_free).  Returns 0, -EINVAL for options it cannot lay out
 * (message on stderr), or -ENOMEM.  Deterministic: the same options give
 * the same bytes.
 */
int vhdx_gen_build(const struct vhdx_gen_opts *o, struct vhdx_gen_image **out);
void vhdx_gen_free(struct vhdx_gen_image *img);

/** A new mem backend (libvhdx/io/io.h) holding a copy of img->file[0..file_len). 0 or -errno. */
int vhdx_gen_to_io(const struct vhdx_gen_image *img, const char *name, struct vhdx_io **out);
/** Writes img->file to PATH (created or truncated; all-zero 4 KiB pages left as holes). 0 or -errno. */
int vhdx_gen_write_file(const struct vhdx_gen_image *img, const char *path);

/* ---- editing ---- */

/** Re-encodes img->headers[0..1] into their slots (valid CRCs). */
void vhdx_gen_reencode_headers(struct vhdx_gen_image *img);
/** Re-encodes img->regions[0..1] into their slots (valid CRCs). */
void vhdx_gen_reencode_regions(struct vhdx_gen_image *img);
/** Re-encodes img->meta into the first 64 KiB of the metadata region. */
void vhdx_gen_reencode_metadata(struct vhdx_gen_image *img);
/** Flips one bit of the stored CRC of the structure at FOFF (a header or region table slot). */
void vhdx_gen_break_crc(struct vhdx_gen_image *img, uint64_t foff);
/** Overwrites BAT entry IDX in the file (img->bat keeps the original). */
void vhdx_gen_set_bat(struct vhdx_gen_image *img, uint64_t idx, uint64_t entry);
/** BAT index of payload block BLK / of the sector bitmap entry of CHUNK (generator's formulas). */
uint64_t vhdx_gen_payload_index(const struct vhdx_gen_image *img, uint64_t blk);
uint64_t vhdx_gen_bitmap_index(const struct vhdx_gen_image *img, uint64_t chunk);

/* ---- expected contents ---- */

/** Byte at virtual offset VOFF of a block with seed BLK_SEED in an image with seed IMG_SEED. */
uint8_t vhdx_gen_pattern_byte(uint32_t img_seed, uint32_t blk_seed, uint64_t voff);
/** Fills BUF with the pattern for virtual range [VOFF, VOFF+LEN). */
void vhdx_gen_pattern(uint32_t img_seed, uint32_t blk_seed, uint64_t voff, size_t len, uint8_t *buf);

/**
 * Kind of the byte at VOFF (< virtual_size) in this layer alone, and in
 * *RUN the bytes from VOFF to the end of that run (the end of the block for
 * whole-block states; the next bitmap change or the end of the block for
 * PARTIALLY_PRESENT; never past the virtual size).
 */
enum vhdx_gen_kind vhdx_gen_kind(const struct vhdx_gen_image *img, uint64_t voff, uint64_t *run);
/** File offset that holds virtual offset VOFF of a DATA run (0 when it is not DATA). */
uint64_t vhdx_gen_data_foff(const struct vhdx_gen_image *img, uint64_t voff);
/** Expected bytes of this layer read alone (PARENT runs read as zeros; past the end zeros). */
void vhdx_gen_expected(const struct vhdx_gen_image *img, uint64_t voff, size_t len, uint8_t *buf);
/**
 * Expected bytes of a chain LAYERS[0] (leaf) ... LAYERS[N-1] (base):
 * PARENT runs go one layer down; below the base or past a layer's virtual
 * size reads zeros (the rules of libvhdx/chain/chain.c).
 */
void vhdx_gen_chain_expected(const struct vhdx_gen_image *const *layers, size_t n, uint64_t voff, size_t len,
			     uint8_t *buf);
/**
 * Resolves VOFF through the chain LAYERS[0..N) like vhdx_chain_map(): DATA
 * (with *LAYER the layer holding it) or ZERO, and in *RUN the bytes from
 * VOFF for which that answer holds (UINT64_MAX when VOFF is past every
 * layer: callers clip).
 */
enum vhdx_gen_kind vhdx_gen_chain_resolve(const struct vhdx_gen_image *const *layers, size_t n, uint64_t voff,
					  unsigned *layer, uint64_t *run);
/** The whole expected raw disk of this layer alone, newly allocated (virtual_size bytes), or NULL. */
uint8_t *vhdx_gen_mirror(const struct vhdx_gen_image *img);

#endif /* VHDX_TESTS_GEN_H */
