/*
 * info.h - per-format printers of one layer for `vhdx info`.
 */
#ifndef VHDX_TOOL_INFO_H
#define VHDX_TOOL_INFO_H

#include "tool.h"
#include "format/format.h"

/** Prints the VHDX-specific structures of L (headers, regions, metadata, BAT, log, locator). */
void info_vhdx_layer(struct report *r, struct vhdx_layer *l, bool verbose);
/**
 * Prints every entry of the active sequence of L's log (`vhdx info --log`):
 * log offset, sequence number, tail, length, descriptor count and each
 * descriptor's type and target, or why there is none.
 */
void info_vhdx_log(struct report *r, struct vhdx_layer *l);
/** Prints the VHD-specific structures of L (footer, dynamic header, locators). */
void info_vhd_layer(struct report *r, struct vhdx_layer *l, bool verbose);

#endif
