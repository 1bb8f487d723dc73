/*
 * unit_new_vhdx.h - a new VHDX as the library's creator writes it, into a
 * memory backend: the starting image of the write and crash unit tests.
 * Include after lib/unit.h.
 */
#ifndef VHDX_TESTS_UNIT_NEW_VHDX_H
#define VHDX_TESTS_UNIT_NEW_VHDX_H

#include "format/vhdx_create.h"

/*
 * A dynamic VHDX of VSIZE bytes in BS blocks (512-byte logical, 4096-byte
 * physical sectors), or with PARENT_PATH a differencing one over the parent
 * of LINKAGE, created as if at PATH into a memory backend named NAME.
 */
static inline struct vhdx_io *unit_new_vhdx(const char *name, const char *path, uint64_t vsize, uint32_t bs,
					    const char *parent_path, const uint8_t *linkage)
{
	struct vhdx_create_params p;
	struct vhdx_io *io;

	memset(&p, 0, sizeof p);
	p.type = parent_path ? VHDX_TYPE_DIFFERENCING : VHDX_TYPE_DYNAMIC;
	p.virtual_size = vsize;
	p.block_size = bs;
	p.logical_sector_size = 512;
	p.physical_sector_size = 4096;
	if (parent_path) {
		p.parent = parent_path;
		memcpy(p.parent_linkage, linkage, 16);
	}
	assert_int_equal(vhdx_io_mem_new(NULL, 0, name, &io), 0);
	assert_int_equal(vhdx_create_vhdx(io, path, &p), 0);
	return io;
}

#endif /* VHDX_TESTS_UNIT_NEW_VHDX_H */
