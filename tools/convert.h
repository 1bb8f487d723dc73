/*
 * convert.h - the two ends of `vhdx convert`: a source (an image and its
 * chain, read through libvhdx, or a raw disk file) that says which ranges
 * hold data, and an output (raw file, stream, or a new VHDX/VHD written
 * through the library) that accepts data and knows whether it may skip
 * zeros.  cmd_convert.c drives the copy between them.
 */
#ifndef VHDX_TOOL_CONVERT_H
#define VHDX_TOOL_CONVERT_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tool.h"
#include "common/buf.h"

#define CONVERT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CONVERT_MAX(a, b) ((a) > (b) ? (a) : (b))

enum convert_fmt {
	CONVERT_RAW = 0,
	CONVERT_VHDX,
	CONVERT_VHD,
};

struct convert_src {
	const char *path;
	struct vhdx_image *img;      /* VHDX/VHD and its chain, or NULL for a raw file */
	int fd;                      /* raw input, or -1 */
	bool seek_data;              /* raw input: SEEK_DATA/SEEK_HOLE work on it */
	uint64_t size;               /* bytes of the virtual disk */
	enum vhdx_format format;     /* 0 for raw */
	enum vhdx_disk_type type;    /* 0 for raw */
	uint32_t logical_sector_size;  /* 0 for raw (not known) */
	uint32_t physical_sector_size; /* 0 for raw */
	/* read-ahead already asked for: file bytes [ra_start, ra_end) of layer ra_layer */
	unsigned ra_layer;
	uint64_t ra_start, ra_end;
};

/**
 * Opens PATH as the source: RAW reads it as a raw disk (its size is the
 * disk size), otherwise as a VHDX/VHD with the chain options of TO.  Prints
 * the error (with a hint to -f raw for a file that is no image) and returns
 * EXIT_ERR on failure, EXIT_OK on success.
 */
int convert_src_open(struct convert_src *s, const char *path, bool raw, struct tool_open *to);

/**
 * The extent at OFF (at most LEN bytes): *DATA says whether it may hold
 * non-zero bytes, *EXT_LEN its length (> 0).  0, or -errno after printing
 * the error.
 */
int convert_src_map(struct convert_src *s, uint64_t off, uint64_t len, bool *data, uint64_t *ext_len);

/** Reads exactly LEN bytes at OFF (inside the disk) into BUF.  0, or -errno after printing the error. */
int convert_src_read(struct convert_src *s, void *buf, size_t len, uint64_t off);

/** True when PATH is one of the files the source reads (the raw file or any layer). */
bool convert_src_uses(struct convert_src *s, const char *path);

/** Closes the source.  0 or the image's -errno. */
int convert_src_close(struct convert_src *s);

struct convert_out {
	const char *path;            /* "-" for standard output */
	enum convert_fmt fmt;
	int fd;                      /* raw output, or -1 */
	bool stream;                 /* raw output written in order, zeros included (pipe, device, stdout) */
	struct vhdx_image *img;      /* VHDX/VHD output, or NULL */
	bool remove_on_failure;      /* a regular file this command created or replaced */
	uint64_t size;               /* bytes the output must hold */
	struct tool_outfile of;      /* a regular file: written as of.tmp, renamed to PATH when complete */
	bool replace;                /* PATH exists and is replaced */
};

struct convert_out_params {
	enum convert_fmt fmt;
	uint64_t size;                 /* bytes of the output disk */
	bool force;                    /* replace an existing DST */
	bool replace_raw;              /* -O raw given: an existing raw DST is replaced (earlier versions' behaviour) */
	enum vhdx_disk_type type;      /* images: FIXED or DYNAMIC */
	uint32_t block_size;           /* images: 0 = library default */
	uint32_t logical_sector_size;  /* images: 0 = library default */
	uint32_t physical_sector_size; /* images: 0 = library default */
};

/**
 * Creates the output PATH.  Refuses an existing regular file unless
 * P->force (or P->replace_raw for raw), and a file the source reads.  Prints
 * the error and returns EXIT_ERR (or EXIT_USAGE) on failure; nothing is left
 * behind then.
 */
int convert_out_open(struct convert_out *o, const char *path, const struct convert_out_params *p,
		     struct convert_src *src);

/** True when zero ranges may be skipped (the output reads as zeros where nothing is written). */
static inline bool convert_out_sparse(const struct convert_out *o)
{
	return !o->stream;
}

/**
 * Writes LEN bytes of BUF at disk offset OFF (a stream: at its current end,
 * which must be OFF).  0, or -errno after printing the error.
 */
int convert_out_write(struct convert_out *o, const void *buf, size_t len, uint64_t off);

/** Completes the output: size, flush, close.  Prints the error and returns EXIT_ERR on failure. */
int convert_out_finish(struct convert_out *o);

/** After a failure: closes the output and removes the temporary file (an existing PATH is never touched). */
void convert_out_abort(struct convert_out *o);

/* ---- the copy (convert_copy.c) */

/** Set by the signal handler of cmd_convert: the copy stops at the next window. */
extern volatile sig_atomic_t convert_interrupted;


/**
 * Copies disk bytes [START, END) of SRC to OUT (output offset = disk offset
 * - START), skipping what reads as zeros where OUT is sparse; a reader
 * thread reads ahead while this thread writes.  0 or -errno (message
 * printed; -EINTR when convert_interrupted was set).
 */
int convert_copy(struct convert_src *src, struct convert_out *out, uint64_t start, uint64_t end,
		 struct tool_progress *prog);

#endif
