/*
 * parts.c - --partition N of the `vhdx` commands (see parts.h): the
 * option and the lookup, over the reader of libvhdx/report/info_partitions.c.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "parts.h"

int tool_partition_option(const char *cmd, const char *arg, unsigned *out)
{
	uint64_t n;

	if (tool_uint_option(cmd, "--partition", arg, 1, 1024, &n) < 0)
		return -1;
	*out = (unsigned)n;
	return 0;
}

int tool_partition_find(struct vhdx_image *img, const char *cmd, unsigned number, struct vhdx_partition *out)
{
	struct vhdx_partition_table t;
	struct vhdx_partition *p;
	char have[256] = "";
	size_t len = 0;
	int ret = vhdx_report_partitions_read(img, &t, &p);

	if (ret < 0)
		return tool_lib_error(cmd, ret);
	for (unsigned i = 0; i < t.count; i++) {
		if (p[i].number == number && (p[i].flags & VHDX_PARTITION_EXTENDED)) {
			free(p);
			tool_error(cmd, "%s: partition %u is an extended partition: a container of the logical partitions "
				   "(5 and up), not a volume", vhdx_layer_path(img, 0), number);
			return EXIT_ERR;
		}
		if (p[i].number == number) {
			*out = p[i];
			free(p);
			return EXIT_OK;
		}
		if (!(p[i].flags & VHDX_PARTITION_EXTENDED) && len + 16 < sizeof have)
			len += (size_t)snprintf(have + len, sizeof have - len, "%s%u", len ? ", " : "", p[i].number);
	}
	free(p);
	if (!len)
		tool_error(cmd, "%s: no partition %u: the disk has %s", vhdx_layer_path(img, 0), number,
			   t.scheme == VHDX_SCHEME_NONE ? "no partition table" : "no partitions");
	else
		tool_error(cmd, "%s: no partition %u; the %s table has: %s", vhdx_layer_path(img, 0), number,
			   vhdx_report_scheme_name(t.scheme), have);
	return EXIT_ERR;
}

/* The size in a short human form: "100 MiB", "1.5 GiB", "512 B". */
