/*
 * partition.h - partition tables (MBR with extended/logical chains, GPT with
 * its backup) and the probe of what a partition holds.  Codecs in the L1
 * sense: they never do I/O themselves; the bytes they need at an offset of
 * the disk come from a read callback the caller gives (the image, a memory
 * buffer in the unit tests, the fuzzer's input), and every offset they ask
 * for has been checked against the disk size first.
 *
 * Files: partition_mbr.c (MBR, EBR chains), partition_gpt.c (GPT headers
 * and entry arrays), partition_table.c (which table, primary or backup
 * GPT, numbering), partition_types.c (type names), fs_probe.c (file
 * systems and labels).
 */
#ifndef VHDX_CODEC_PARTITION_H
#define VHDX_CODEC_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads LEN bytes at byte OFF of the disk into BUF: 0 or -errno (message set). */
typedef int (*vhdx_part_read_fn)(void *arg, void *buf, size_t len, uint64_t off);

enum vhdx_part_scheme {
	VHDX_PART_NONE = 0, /* no partition table (maybe a file system on the whole disk) */
	VHDX_PART_MBR = 1,
	VHDX_PART_GPT = 2,
};

/* Bounds: anything larger is refused as damage, never allocated. */
#define VHDX_MBR_MAX_LOGICAL 256          /* logical partitions of one extended partition (Linux: 256 minors) */
#define VHDX_GPT_MAX_ARRAY (4u << 20)     /* bytes of a GPT entry array (128 entries x 128 bytes is 16 KiB) */
#define VHDX_GPT_MAX_ENTRY_SIZE 4096u     /* bytes of one GPT entry (128 x 2^n) */
#define VHDX_PART_NAME_MAX 112            /* UTF-8 bytes of a GPT name (36 UTF-16 units) + NUL */
#define VHDX_FS_NAME_MAX 16
#define VHDX_FS_LABEL_MAX 96              /* UTF-8 bytes of a label + NUL */

/* flags of struct vhdx_part */
#define VHDX_PART_F_BOOTABLE 0x1u  /* MBR status 0x80 */
#define VHDX_PART_F_LOGICAL 0x2u   /* MBR logical partition (in an extended one) */
#define VHDX_PART_F_EXTENDED 0x4u  /* MBR extended partition: a container, holds no file system */
#define VHDX_PART_F_UNREADABLE 0x8u /* its first bytes could not be read: fs unknown (T->note says why) */

struct vhdx_part {
	unsigned number;               /* as Linux numbers it: GPT entry index + 1; MBR slot 1-4, logicals 5.. */
	unsigned flags;                /* VHDX_PART_F_* */
	uint64_t start, size;          /* bytes */
	uint64_t entry_off;            /* byte offset of the table entry that describes it */
	uint8_t mbr_type;              /* MBR: the type byte */
	uint8_t type_guid[16];         /* GPT: on-disk bytes */
	uint8_t guid[16];              /* GPT: the partition's unique GUID */
	uint64_t attributes;           /* GPT attribute bits */
	char name[VHDX_PART_NAME_MAX]; /* GPT: the name, UTF-8 */
	char fs[VHDX_FS_NAME_MAX];     /* what fs_probe found ("" = nothing known) */
	char label[VHDX_FS_LABEL_MAX];
};

struct vhdx_part_table {
	enum vhdx_part_scheme scheme;
	uint32_t sector_size;          /* the sector size the table was read with */
	uint64_t disk_size;
	uint32_t mbr_signature;        /* MBR disk signature (bytes 440-443) */
	uint8_t disk_guid[16];         /* GPT */
	bool from_backup;              /* GPT: the primary was damaged, the backup was used */
	char note[512];                /* what was noticed and worked around ("" if nothing) */
	char fs[VHDX_FS_NAME_MAX];     /* VHDX_PART_NONE: a file system on the whole disk */
	char label[VHDX_FS_LABEL_MAX];
	unsigned n;
	struct vhdx_part *parts;       /* n entries, ascending number; freed by vhdx_part_table_free */
};

/* ---- partition_mbr.c ---- */

#define VHDX_MBR_SIZE 512
#define VHDX_MBR_ENTRIES_OFF 446
#define VHDX_MBR_SIG_OFF 510

/* One 16-byte entry of an MBR or EBR. */
struct vhdx_mbr_entry {
	uint8_t status, type;
	uint32_t lba, nsectors;
};

/** True for the MBR types of an extended partition (0x05, 0x0F, 0x85). */
bool vhdx_mbr_type_is_extended(uint8_t type);

/**
 * Decodes the 512-byte sector BUF as an MBR (or EBR): its four entries
 * into E[4].  Returns 0, or -EBADMSG without a message when the sector is
 * not one (no 0x55AA signature, a status byte other than 0x00 or 0x80).
 */
int vhdx_mbr_decode(const uint8_t *buf, struct vhdx_mbr_entry e[4]);

/**
 * Reads the MBR partitions of a disk of DISK_SIZE bytes with sectors of
 * SECTOR_SIZE bytes whose first sector is MBR (already decoded by
 * vhdx_mbr_decode): the primaries, and the logical partitions of every
 * extended partition by following its EBR chain through READ.  Appends to
 * T->parts.  An entry past the end of the disk, an EBR without signature,
 * a link outside the extended partition, a chain that loops or holds more
 * than VHDX_MBR_MAX_LOGICAL partitions: -EBADMSG naming the structure and
 * its byte offset.  0 or -errno.
 */
int vhdx_mbr_read(const uint8_t *mbr, vhdx_part_read_fn read, void *arg, struct vhdx_part_table *t);

/* ---- partition_gpt.c ---- */

#define VHDX_GPT_HEADER_MIN 92

struct vhdx_gpt_header {
	uint32_t revision, header_size, header_crc;
	uint64_t my_lba, alternate_lba, first_usable, last_usable;
	uint8_t disk_guid[16];
	uint64_t entries_lba;
	uint32_t n_entries, entry_size, entries_crc;
};

/**
 * Decodes the GPT header in the sector BUF (SECTOR_SIZE bytes) read from
 * LBA on a disk of DISK_SECTORS sectors: signature, revision, size,
 * CRC-32, MyLBA, usable range and entry array inside the disk, entry size
 * and count within the bounds above.  WHAT ("primary GPT header") and the
 * byte offset start the message.  0 or -EBADMSG.
 */
int vhdx_gpt_header_decode(const uint8_t *buf, uint32_t sector_size, uint64_t lba, uint64_t disk_sectors,
			   const char *what, struct vhdx_gpt_header *h);

/**
 * Checks the entry array ARRAY (h->n_entries * h->entry_size bytes, read
 * from h->entries_lba) against h->entries_crc and decodes its used entries
 * into T->parts (numbered by index + 1): start <= end, both inside the
 * header's usable range, the name valid UTF-16LE.  WHAT ("primary") starts
 * the messages.  0 or -EBADMSG / -ENOMEM.
 */
int vhdx_gpt_entries_decode(const uint8_t *array, const struct vhdx_gpt_header *h, uint32_t sector_size,
			    const char *what, struct vhdx_part_table *t);

/* ---- partition_table.c ---- */

/**
 * Reads the partition table of a disk of DISK_SIZE bytes through READ,
 * trying SECTOR_SIZE (the disk's logical sector size) first and then the
 * other of 512 and 4096 for a GPT.  GPT: the primary header and array,
 * else the backup at the end of the disk (T->from_backup, and T->note says
 * what was wrong with the primary); MBR: primaries and logicals.  With
 * PROBE, each partition's first bytes (and, without a table, the disk's)
 * are probed for a file system (fs_probe.c; a partition that cannot be
 * read is only said in T->note).  *T is filled (free it with
 * vhdx_part_table_free, also after a failure).  No table at all is not an
 * error: scheme VHDX_PART_NONE.  0 or -errno with a message naming the
 * structure and byte offset.
 */
int vhdx_part_table_read(vhdx_part_read_fn read, void *arg, uint64_t disk_size, uint32_t sector_size, bool probe,
			 struct vhdx_part_table *t);

/** Frees what vhdx_part_table_read allocated (the struct itself is the caller's). */
void vhdx_part_table_free(struct vhdx_part_table *t);

/** Appends a zeroed entry to T->parts: a pointer to it, or NULL when out of memory. */
struct vhdx_part *vhdx_part_table_add(struct vhdx_part_table *t);

/* ---- partition_types.c ---- */

/** "Microsoft basic data", "Linux filesystem", ... for a GPT type GUID; NULL when unknown. */
const char *vhdx_part_gpt_type_name(const uint8_t guid[16]);
/** "NTFS/exFAT", "W95 FAT32 (LBA)", ... for an MBR type byte; NULL when unknown. */
const char *vhdx_part_mbr_type_name(uint8_t type);
/**
 * The kind of contents a type announces, for what to do with the partition:
 * "ldm" (Windows dynamic disk), "storage-spaces", "msr", "extended",
 * "protective", or NULL (look at the contents).
 */
const char *vhdx_part_type_kind(const struct vhdx_part *p, enum vhdx_part_scheme scheme);

/* ---- fs_probe.c ---- */

/* Bytes from the start of a volume that vhdx_fs_probe looks at (Btrfs's superblock is at 64 KiB). */
#define VHDX_FS_PROBE_LEN (68u * 1024)

/**
 * Names what the volume of SIZE bytes whose first min(SIZE,
 * VHDX_FS_PROBE_LEN) bytes are HEAD holds: "ntfs", "refs", "fat12",
 * "fat16", "fat32", "exfat", "ext2", "ext3", "ext4", "xfs", "btrfs",
 * "bitlocker", "luks", "swap", "lvm2", or "" when nothing is recognised;
 * into FS (VHDX_FS_NAME_MAX).  The label (FAT, ext, XFS, Btrfs in HEAD;
 * NTFS from its $Volume record, read through READ at BASE + offset when
 * READ is not NULL) goes into LABEL (VHDX_FS_LABEL_MAX), "" when none.
 * Damaged structures only make the answer "" or the label empty: never an
 * error.
 */
void vhdx_fs_probe(const uint8_t *head, size_t head_len, uint64_t size, vhdx_part_read_fn read, void *arg,
		   uint64_t base, char *fs, char *label);

#endif /* VHDX_CODEC_PARTITION_H */
