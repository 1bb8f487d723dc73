/*
 * vhd_format.h - the state of one opened legacy VHD file (L2), shared by
 * the VHD reader (vhd.c), the VHD write path (vhd_write.c) and the
 * `vhdx info` report (tools/info_vhd.c), which prints these fields.
 */
#ifndef VHDX_FORMAT_VHD_H
#define VHDX_FORMAT_VHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec/vhd_codec.h"
#include "format/format.h"

/* The BAT is read and written in pieces of at most this many bytes (a
 * multiple of the 512-byte sector): a table's size never sets how much
 * memory one read takes. */
#define VHD_BAT_READ_CHUNK (64u * 1024)

/*
 * The largest dynamic or differencing disk the reader opens: 2 TiB, what
 * qemu (VHD_MAX_SECTORS) and VirtualBox accept (the spec's own limit is
 * 2040 GiB, which `vhdx create` and `vhdx resize` keep to).  With it the BAT
 * kept in memory is at most 2 TiB / block size entries (4 MiB at the usual
 * 2 MiB blocks), whatever a hostile footer claims.
 */
#define VHD_MAX_READ_DYNAMIC_SIZE (2ull << 40)

enum vhdx_vhd_copy { VHDX_VHD_TRAILING = 0, VHDX_VHD_LEADING = 1 };

/* One of the two footer copies as found in the file. */
struct vhdx_vhd_footer_copy {
	uint64_t offset;               /* where it was looked for */
	bool present;                  /* the "conectix" cookie is there */
	bool old_size;                 /* trailing copy: a 511-byte pre-2004 footer */
	bool valid;                    /* decoded without error (checksum included unless salvaged) */
	bool salvaged;                 /* valid only because the salvage flag excused its checksum */
	char *error;                   /* why it is not valid (owned), or NULL */
	int err;                       /* the positive errno behind ERROR (EBADMSG, ENOTSUP), or 0 */
	struct vhdx_vhd_footer f;      /* decoded fields (as far as decoding got) */
	uint8_t raw[VHD_FOOTER_SIZE];
};

/* One parent locator entry with its decoded data. */
struct vhdx_vhd_locator_info {
	char *path;                    /* decoded path (owned), or NULL */
	char *error;                   /* why the data could not be used (owned), or NULL */
};

struct vhdx_vhd_state {
	uint64_t file_size;
	uint64_t data_end;             /* end of the area blocks may use: the trailing footer, or EOF without one */

	struct vhdx_vhd_footer_copy copies[2]; /* [VHDX_VHD_TRAILING], [VHDX_VHD_LEADING] */
	bool leading_read;             /* dynamic/differencing: the leading copy was examined */
	bool footers_differ;           /* both copies valid but not byte-identical */
	enum vhdx_vhd_copy used;       /* which copy is in use */
	const struct vhdx_vhd_footer *footer; /* = &copies[used].f */

	/* dynamic and differencing disks only */
	bool has_dynhdr;
	uint64_t dynhdr_off;
	struct vhdx_vhd_dynhdr dyn;
	char *parent_name;             /* decoded parent Unicode name (owned), or NULL */
	struct vhdx_vhd_locator_info locators[VHD_N_LOCATORS];
	uint32_t bitmap_size;          /* bytes of the sector bitmap in front of each block */
	uint64_t blocks_needed;        /* ceil(current size / block size) */
	uint32_t *bat;                 /* blocks_needed entries (the ones the disk uses), host order;
					* changed only by the writer; entries past the disk's end are
					* never loaded (see load_bat() in vhd.c) */
	uint64_t allocated_blocks;     /* entries of bat[] != 0xFFFFFFFF (blocks inside the disk) */

	/* differencing disks (and any writable dynamic disk): sector bitmaps,
	 * loaded once per block on first use */
	pthread_mutex_t bitmap_mutex;
	bool mutex_ready;
	uint8_t **bitmaps;             /* blocks_needed pointers (NULL = not loaded) */

	/* writable layers only (vhd_write.c) */
	struct vhdx_vhd_writer *writer;
	pthread_rwlock_t lock;         /* bat[] and bitmap bits: read by map, written by the writer */
	bool lock_ready;
};

static inline struct vhdx_vhd_state *vhdx_vhd_state_of(struct vhdx_layer *l)
{
	return (struct vhdx_vhd_state *)l->priv;
}

/**
 * The cached sector bitmap of allocated block BLK of a differencing (or
 * writable) layer, read from the file on first use and kept until close.
 * Thread-safe (bitmap_mutex).  *OUT is owned by S; only the writer changes
 * its bits, under s->lock.  0 or -errno.
 */
int vhdx_vhd_bitmap_get(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint64_t blk, uint8_t **out);

/**
 * Makes the file of IO end with FOOTER at offset END: writes it there,
 * flushes, cuts the file after it, flushes.  The footer goes first so that
 * a cut at any point leaves a file that ends with a valid footer (the
 * reader looks for it at the end).  For compact and check --repair.  0 or
 * -errno.
 */
int vhdx_vhd_footer_move(struct vhdx_io *io, const uint8_t *footer, uint64_t end);

#endif /* VHDX_FORMAT_VHD_H */
