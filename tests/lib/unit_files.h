/*
 * unit_files.h - files on disk for the unit tests of operations that take
 * paths (check, merge, reparent): a temporary folder, a two-layer chain
 * written there from the generator (tests/lib/vhdx_gen.h), and what a file
 * or a disk holds.  Compiled into each test that uses it (it calls cmocka).
 */
#ifndef VHDX_TEST_UNIT_FILES_H
#define VHDX_TEST_UNIT_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/vhdx_gen.h"

struct vhdx_image;

/* A base (dynamic) and a differencing child over it, written as DIR/base.vhdx and DIR/child.vhdx. */
struct unit_chain {
	char dir[64];
	char base_path[96], child_path[96];
	struct vhdx_gen_image *base, *child;
};

/* The blocks of a 4 MiB base of 1 MiB blocks, the chains' base: 0, 1 and 3 present, 2 unmapped. */
extern const struct vhdx_gen_block unit_base_blocks[3];

/** Makes a new temporary folder (named after WHAT) and writes the chain into it (seeds SEED, SEED+1). */
void unit_chain_make(struct unit_chain *c, const char *what, uint32_t seed);
/** Removes every file of the folder and the folder; frees the images. */
void unit_chain_free(struct unit_chain *c);

/** The whole file at PATH, newly allocated; *LEN gets its size. */
uint8_t *unit_slurp(const char *path, size_t *len);
/** Writes DATA[0..LEN) to PATH (created or truncated). */
void unit_spill(const char *path, const void *data, size_t len);
/** The whole virtual disk of PATH opened with vhdx_open() (its chain too), newly allocated; *SIZE gets its size. */
uint8_t *unit_read_disk(const char *path, uint64_t *size);
/** What LEAF over PARENT reads, as the generator's oracle says: LEAF->virtual_size bytes, newly allocated. */
uint8_t *unit_chain_expected(const struct vhdx_gen_image *leaf, const struct vhdx_gen_image *parent);
/** Fails unless the virtual disk of PATH (opened with vhdx_open()) is SIZE bytes that equal WANT. */
void unit_assert_disk_reads(const char *path, const uint8_t *want, uint64_t size);
/** Fails unless the first SIZE bytes of the open IMG read as the generated chain LAYERS[0..N) (leaf first) says. */
void unit_assert_image_reads_chain(struct vhdx_image *img, const struct vhdx_gen_image *const *layers, size_t n,
				   uint64_t size);
/** The current header of the VHDX file at PATH (the valid one with the higher sequence number). */
void unit_current_header(const char *path, struct vhdx_header *h);

#endif
