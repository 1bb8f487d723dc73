/*
 * info_partitions.h - the "partitions" member of the info document and the
 * partition reader and names the vhdx commands use for --partition N
 * (info_partitions.c).  Built on the public API alone, so it is compiled
 * into the library (vhdx_info_json) and into the tools; not API.
 */
#ifndef VHDX_COMMON_INFO_PARTITIONS_H
#define VHDX_COMMON_INFO_PARTITIONS_H

#include "libvhdx.h"
#include "common/report.h"

/**
 * Reads IMG's partition table into *T and a new array *PARTS (T->count
 * entries; free() it).  0, or -errno with vhdx_errmsg() set (T->scheme
 * still filled); *PARTS is NULL then.
 */
int vhdx_report_partitions_read(struct vhdx_image *img, struct vhdx_partition_table *t,
				struct vhdx_partition **parts);
/** The scheme's name: "gpt", "mbr" or "none". */
const char *vhdx_report_scheme_name(enum vhdx_partition_scheme s);
/** The type of P as shown: its name, else the GUID or "0xNN". BUF holds at least 48 bytes. */
const char *vhdx_report_partition_type(const struct vhdx_partition *p, enum vhdx_partition_scheme s, char *buf,
				       size_t len);
/**
 * The "partitions" member of R: scheme, sector size, the disk's GUID or
 * signature, whether the backup GPT was read and why, the error of a
 * damaged table, and one entry per partition; in text, a table.
 */
void vhdx_report_partitions(struct report *r, struct vhdx_image *img);

#endif
