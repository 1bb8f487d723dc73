/*
 * info_vhd.c - the VHD part of `vhdx info` (filled in with the VHD reader).
 */
#include "config.h"

#include "info.h"

void info_vhd_layer(struct report *r, struct vhdx_layer *l, bool verbose)
{
	(void)r;
	(void)l;
	(void)verbose;
}
