/*
 * parts.h - the partitions of an image's disk for the `vhdx` commands
 * (parts.c): reading the table through vhdx_partitions(), finding one by
 * its number (--partition N of convert, map and mount), and the table in
 * `vhdx info`.
 */
#ifndef VHDX_TOOL_PARTS_H
#define VHDX_TOOL_PARTS_H

#include "tool.h"

/**
 * Reads IMG's partition table into *T and a new array *PARTS (T->count
 * entries; free() it).  0, or -errno with vhdx_errmsg() set (T->scheme
 * still filled); *PARTS is NULL then.
 */
int tool_partitions_read(struct vhdx_image *img, struct vhdx_partition_table *t, struct vhdx_partition **parts);

/**
 * Finds partition NUMBER of IMG into *OUT.  Prints the reason as "vhdx
 * CMD: ..." (the table's error, or which numbers exist) and returns
 * EXIT_ERR when it cannot; EXIT_OK otherwise.
 */
int tool_partition_find(struct vhdx_image *img, const char *cmd, unsigned number, struct vhdx_partition *out);

/** Parses the N of --partition N (1..1024) for CMD; prints the error and returns -1 when bad. */
int tool_partition_option(const char *cmd, const char *arg, unsigned *out);

/** The scheme's name: "gpt", "mbr" or "none". */
const char *tool_scheme_name(enum vhdx_partition_scheme s);

/** The type of P as shown: its name, else the GUID or "0xNN". BUF holds at least 48 bytes. */
const char *tool_partition_type(const struct vhdx_partition *p, enum vhdx_partition_scheme s, char *buf, size_t len);

/**
 * `vhdx info`: the "partitions" member of the report R: scheme, sector
 * size, the disk's GUID or signature, whether the backup GPT was read and
 * why, the error of a damaged table, and one entry per partition (number,
 * first byte, size, type, name, file system, label); in text, a table.
 */
void tool_partitions_report(struct report *r, struct vhdx_image *img);

#endif
