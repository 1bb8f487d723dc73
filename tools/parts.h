/*
 * parts.h - --partition N of the `vhdx` commands (parts.c): finding a
 * partition by its number (convert, map and mount); the reader and the
 * table of `vhdx info` are in common/info_partitions.c.
 */
#ifndef VHDX_TOOL_PARTS_H
#define VHDX_TOOL_PARTS_H

#include "tool.h"
#include "common/info_partitions.h"

/**
 * Finds partition NUMBER of IMG into *OUT.  Prints the reason as "vhdx
 * CMD: ..." (the table's error, or which numbers exist) and returns
 * EXIT_ERR when it cannot; EXIT_OK otherwise.
 */
int tool_partition_find(struct vhdx_image *img, const char *cmd, unsigned number, struct vhdx_partition *out);

/** Parses the N of --partition N (1..1024) for CMD; prints the error and returns -1 when bad. */
int tool_partition_option(const char *cmd, const char *arg, unsigned *out);

#endif
