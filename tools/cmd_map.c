/*
 * cmd_map.c - `vhdx map`: the allocation map of the virtual disk, one line
 * (or JSON object) per extent, for incremental backup and forensics.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "parts.h"

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx map [--json] [--layers] [--partition N] [--offset N] [--length N] IMAGE\n\n"
		   "Lists the extents of the virtual disk in order: 'data' ranges stored in a\n"
		   "file of the chain (with --layers: which layer and at which file offset)\n"
		   "and 'zero' ranges that read as zeros.\n\n"
		   "  --json          one JSON array of {offset, length, type, layer, file, file_offset}\n"
		   "  --layers        show the layer and file offset of every data extent\n"
		   "  --offset N      start at byte N of the disk (default 0)\n"
		   "  --length N      map N bytes (default: to the end of the disk)\n"
		   "  --partition N   map partition N (numbered as Linux does, see 'vhdx info'):\n"
		   "                  offsets count from its first byte, like MNT/pN of vhdxfs\n"
		   "  -h, --help      this text\n\n" TOOL_OPEN_HELP TOOL_SHARE_HELP);
}

int cmd_map(int argc, char **argv)
{
	enum { OPT_LAYERS = OPT__NEXT, OPT_OFFSET, OPT_LENGTH, OPT_PARTITION };
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		{ "layers", no_argument, NULL, OPT_LAYERS },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "partition", required_argument, NULL, OPT_PARTITION },
		TOOL_READ_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img;
	struct vhdx_info info = { .struct_size = sizeof info };
	bool json = false, layers = false;
	uint64_t off = 0, len = UINT64_MAX, end, base = 0, limit;
	unsigned partition = 0;
	int c, ret;
	struct tool_cmd tc = { .name = "map", .help = help, .shortopts = "hU", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_LAYERS: layers = true; break;
		case OPT_OFFSET:
			if (tool_size_option("map", "--offset", optarg, false, &off) < 0)
				return EXIT_USAGE;
			break;
		case OPT_LENGTH:
			if (tool_size_option("map", "--length", optarg, true, &len) < 0)
				return EXIT_USAGE;
			break;
		case OPT_PARTITION:
			if (tool_partition_option("map", optarg, &partition) < 0)
				return EXIT_USAGE;
			break;
		}
	}
	if (tool_operands(&tc, argc, 1, "one IMAGE"))
		return tc.rc;
	ret = tool_open_image(&to, argv[optind], "map", &img);
	if (ret)
		return ret;
	vhdx_get_info(img, &info);
	limit = info.virtual_size;
	if (partition) {
		/* the partition's bytes, offsets from its start */
		struct vhdx_partition p;

		ret = tool_partition_find(img, "map", partition, &p);
		if (ret) {
			vhdx_close(img);
			return ret;
		}
		base = p.offset;
		limit = p.size;
	}
	end = len > (off < limit ? limit - off : 0) ? limit : off + len;
	off += base;
	end += base;
	if (json)
		fputc('[', stdout);
	for (uint64_t at = off; at < end;) {
		struct vhdx_extent e;
		ret = vhdx_map(img, at, end - at, &e);
		if (ret < 0) {
			vhdx_close(img);
			ret = tool_lib_error("map", ret);
			if (json)
				tool_json_error_element(stdout, at != off, ret);
			return ret;
		}
		if (json) {
			printf("%s{\"offset\":%" PRIu64 ",\"length\":%" PRIu64 ",\"type\":\"%s\"", at == off ? "" : ",",
			       e.voff - base, e.len, e.kind == VHDX_EXTENT_DATA ? "data" : "zero");
			if (e.kind == VHDX_EXTENT_DATA) {
				printf(",\"layer\":%u,\"file\":", e.layer);
				json_write_string(stdout, vhdx_layer_path(img, e.layer));
				printf(",\"file_offset\":%" PRIu64, e.foff);
			}
			fputc('}', stdout);
		} else if (e.kind == VHDX_EXTENT_DATA && layers) {
			printf("0x%012" PRIx64 " 0x%012" PRIx64 " data layer=%u file_offset=0x%" PRIx64 " %s\n", e.voff - base,
			       e.len, e.layer, e.foff, vhdx_layer_path(img, e.layer));
		} else {
			printf("0x%012" PRIx64 " 0x%012" PRIx64 " %s\n", e.voff - base, e.len,
			       e.kind == VHDX_EXTENT_DATA ? "data" : "zero");
		}
		at += e.len;
	}
	if (json) {
		fputs("]\n", stdout);
		tool_json_printed();
	}
	return tool_close_image("map", img);
}
