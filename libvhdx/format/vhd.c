/*
 * vhd.c - legacy VHD (placeholder until the VHD reader lands: bids 0, so
 * VHD files are reported as unrecognised rather than misread).
 */
#include "config.h"

#include "internal.h"
#include "format/format.h"

static int vhd_probe(struct vhdx_io *io, const uint8_t *head, size_t headlen, uint64_t file_size)
{
	return 0;
}

static int vhd_open(struct vhdx_layer *l, unsigned flags)
{
	return vhdx_err(ENOTSUP, "VHD is not supported yet");
}

const struct vhdx_format_ops vhdx_format_vhd = {
	.name = "vhd",
	.probe = vhd_probe,
	.open = vhd_open,
};
