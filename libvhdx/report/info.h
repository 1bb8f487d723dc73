/*
 * info.h - the document of `vhdx info` and vhdx_info_json(): the whole
 * image (info_image.c) and the per-format printers of one layer.
 */
#ifndef VHDX_REPORT_INFO_H
#define VHDX_REPORT_INFO_H

#include "common/report.h"
#include "format/format.h"
#include "common/info_partitions.h"

/**
 * Prints the info document of IMG into R: the leaf's summary, the chain's
 * depth, completeness and warnings, then every layer.  CHAIN_ERROR (or
 * NULL) is why the chain could not be opened when IMG holds the leaf
 * alone; SHOW_LOG adds every log entry of VHDX layers.  The top object
 * stays open, so the caller may add members (the tool's "error") before
 * it ends it with report_end().
 */
void vhdx_info_report(struct report *r, struct vhdx_image *img, const char *chain_error, bool show_log);

/**
 * The info document of IMG (vhdx_info_report) in *DOC (malloc'd): JSON, or
 * text with VHDX_INFO_TEXT; VHDX_INFO_OPEN leaves JSON's top object open,
 * VHDX_INFO_LOG adds the log entries.  FN names the caller in messages.
 * 0 or -ENOMEM.
 */
int vhdx_info_render(struct vhdx_image *img, const char *chain_error, unsigned flags, char **doc, const char *fn);

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
