/*
 * vhdx_create.c - creating fixed, dynamic and differencing VHDX files
 * (MS-VHDX 2.2-2.6) with the layout Hyper-V uses:
 *
 *   0      1M         1M+log      +1M         +BAT (1 MiB multiple)
 *   | hdrs | log      | metadata  | BAT       | payload blocks ...
 *
 * Metadata items follow the 64 KiB table in the order of 2.6.2.  A
 * differencing child takes its virtual size and sector sizes from the
 * parent and records the parent's DataWriteGuid as parent_linkage with
 * relative_path and absolute_win32_path locator keys, as Hyper-V does.
 * Everything is written and flushed before the headers, so a file cut short
 * by a crash during creation has no valid header and is never mistaken for
 * a good image.
 */
#include "config.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_locator.h"
#include "format/vhdx_create.h"
#include "format/vhdx_format.h"

#define ITEMS_OFF (64 * 1024)

/*
 * Relative Windows-style path from folder FROM_DIR to file TO (both absolute,
 * '/'-separated, no "." or ".." components): ".\name" in the same folder,
 * "..\x\name" elsewhere, as Hyper-V writes relative_path.
 */
static char *relative_windows_path(const char *from_dir, const char *to)
{
	size_t common = 0, i = 0, ups = 0, len;
	const char *rest;
	char *out, *p;

	/* common leading components: both strings agree up to a '/' (or FROM_DIR's end) */
	for (;; i++) {
		bool from_end = from_dir[i] == '\0' || (from_dir[i] == '/' && from_dir[i + 1] == '\0');
		if (from_end && to[i] == '/') {
			common = i + 1;
			break;
		}
		if (from_dir[i] != to[i] || from_dir[i] == '\0')
			break;
		if (to[i] == '/')
			common = i + 1;
	}
	rest = to + common;
	/* one ".." for each component of FROM_DIR after the common part */
	for (const char *q = from_dir + VHDX_MIN(common, strlen(from_dir)); *q;) {
		while (*q == '/')
			q++;
		if (!*q)
			break;
		ups++;
		while (*q && *q != '/')
			q++;
	}
	len = (ups ? ups * 3 : 2) + strlen(rest) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	p = out;
	if (!ups) {
		memcpy(p, ".\\", 2);
		p += 2;
	}
	for (size_t k = 0; k < ups; k++) {
		memcpy(p, "..\\", 3);
		p += 3;
	}
	strcpy(p, rest);
	for (; *p; p++)
		if (*p == '/')
			*p = '\\';
	return out;
}

int vhdx_create_parent_paths(const char *child_path, const char *parent_path, char **relative, char **absolute)
{
	char parent_abs[PATH_MAX], child_dir[PATH_MAX];
	char *dup, *rel, *abs_win;
	int ret;

	if (!realpath(parent_path, parent_abs))
		return vhdx_err(errno, "%s: %s", parent_path, strerror(errno));
	dup = strdup(child_path);
	if (!dup)
		return vhdx_err(ENOMEM, "out of memory");
	if (!realpath(dirname(dup), child_dir)) {
		ret = vhdx_err(errno, "%s: folder of the new file: %s", child_path, strerror(errno));
		free(dup);
		return ret;
	}
	free(dup);
	rel = relative_windows_path(child_dir, parent_abs);
	abs_win = strdup(parent_abs);
	if (!rel || !abs_win) {
		free(rel);
		free(abs_win);
		return vhdx_err(ENOMEM, "out of memory");
	}
	for (char *p = abs_win; *p; p++)
		if (*p == '/')
			*p = '\\';
	*relative = rel;
	*absolute = abs_win;
	return 0;
}

/* Builds the parent locator item of a new child at CHILD_PATH over PARENT_PATH. */
static int build_locator(const char *child_path, const char *parent_path, const uint8_t linkage[16], uint8_t **item,
			 size_t *item_len)
{
	char gs[VHDX_GUID_STRLEN], linkage_text[VHDX_GUID_STRLEN + 2];
	char *rel, *abs_win;
	const char *keys[3], *values[3];
	int ret;

	ret = vhdx_create_parent_paths(child_path, parent_path, &rel, &abs_win);
	if (ret < 0)
		return ret;
	vhdx_guid_format(linkage, gs);
	snprintf(linkage_text, sizeof linkage_text, "{%s}", gs);
	keys[0] = "parent_linkage";
	values[0] = linkage_text;
	keys[1] = "relative_path";
	values[1] = rel;
	keys[2] = "absolute_win32_path";
	values[2] = abs_win;
	ret = vhdx_locator_encode(keys, values, 3, item, item_len);
	free(rel);
	free(abs_win);
	if (ret < 0)
		return vhdx_err(-ret, "cannot encode the parent locator");
	if (*item_len > VHDX_METADATA_MAX_ITEM - ITEMS_OFF) {
		free(*item);
		return vhdx_err(EINVAL, "the parent locator (%zu bytes) is too large", *item_len);
	}
	return 0;
}

static void add_item(struct vhdx_metadata_table *t, const uint8_t id[16], uint32_t off, uint32_t len, bool vdisk)
{
	struct vhdx_metadata_entry *e = &t->entries[t->entry_count++];

	memcpy(e->item_id, id, 16);
	e->offset = off;
	e->length = len;
	e->is_user = false;
	e->is_virtual_disk = vdisk;
	e->is_required = true;
}

int vhdx_create_vhdx_check(const struct vhdx_create_params *p)
{
	uint32_t lss = p->logical_sector_size;
	uint32_t log_len = p->log_size ? p->log_size : VHDX_ALIGN;
	struct vhdx_geometry g;

	if (lss != 512 && lss != 4096)
		return vhdx_err(EINVAL, "logical sector size %u is neither 512 nor 4096", lss);
	if (p->virtual_size == 0 || p->virtual_size > VHDX_MAX_VIRTUAL_SIZE || p->virtual_size % lss)
		return vhdx_err(EINVAL, "a VHDX's virtual size must be a multiple of its %u-byte logical sector, from %u "
					"bytes to 64 TiB (%llu bytes); %llu bytes asked for", lss, lss,
				VHDX_MAX_VIRTUAL_SIZE, (unsigned long long)p->virtual_size);
	if (log_len % VHDX_ALIGN)
		return vhdx_err(EINVAL, "log size %u is not a multiple of 1 MiB", log_len);
	if (p->physical_sector_size != 512 && p->physical_sector_size != 4096)
		return vhdx_err(EINVAL, "physical sector size %u is neither 512 nor 4096", p->physical_sector_size);
	if (vhdx_geometry_init(&g, p->virtual_size, p->block_size, lss, p->parent != NULL) < 0) {
		/* the geometry's message, as an invalid argument (copied: vhdx_err formats into its own buffer) */
		char *m = vhdx_err_dup();
		int ret = vhdx_err(EINVAL, "%s", m ? m : "bad geometry");
		free(m);
		return ret;
	}
	return 0;
}

int vhdx_create_vhdx(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p)
{
	struct vhdx_geometry g;
	struct vhdx_header h;
	struct vhdx_region_table *rt = NULL;
	struct vhdx_metadata_table *mt = NULL;
	struct vhdx_file_params fp;
	uint8_t *buf = NULL, *locator = NULL, *bat = NULL;
	size_t locator_len = 0;
	uint64_t log_off = VHDX_ALIGN, meta_off, bat_off, bat_len, data_off, end;
	uint32_t log_len = p->log_size ? p->log_size : VHDX_ALIGN;
	uint8_t parent_linkage[16];
	int ret;

	if (log_len % VHDX_ALIGN)
		return vhdx_err(EINVAL, "log size %u is not a multiple of 1 MiB", log_len);
	if (p->physical_sector_size != 512 && p->physical_sector_size != 4096)
		return vhdx_err(EINVAL, "physical sector size %u is neither 512 nor 4096", p->physical_sector_size);
	ret = vhdx_create_vhdx_check(p);
	if (ret < 0)
		return ret;
	vhdx_geometry_init(&g, p->virtual_size, p->block_size, p->logical_sector_size, p->parent != NULL);
	if (p->parent)
		memcpy(parent_linkage, p->parent_linkage, 16);

	meta_off = log_off + log_len;
	bat_off = meta_off + VHDX_ALIGN;
	bat_len = vhdx_round_up(g.bat_entries * 8, VHDX_ALIGN);
	if (bat_len > UINT32_MAX)
		return vhdx_err(EINVAL, "a BAT of %llu bytes does not fit a region", (unsigned long long)bat_len);
	data_off = bat_off + bat_len;
	end = data_off;

	rt = calloc(1, sizeof *rt);
	mt = calloc(1, sizeof *mt);
	/* one scratch buffer big enough for the metadata table plus the fixed items */
	buf = calloc(1, 2 * VHDX_FILEID_SIZE);
	bat = calloc(1, bat_len);
	if (!rt || !mt || !buf || !bat) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}

	/* BAT: fixed disks have every payload block present, laid out in order */
	if (p->type == VHDX_TYPE_FIXED) {
		for (uint64_t blk = 0; blk < g.payload_blocks; blk++) {
			vhdx_put_le64(bat + 8 * vhdx_bat_payload_index(&g, blk),
				      vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, end));
			end += g.block_size;
		}
	}
	ret = vhdx_io_set_size(io, end);
	if (ret < 0)
		goto out;
	ret = vhdx_io_pwrite(io, bat, bat_len, bat_off, VHDX_TAG_BAT);
	if (ret < 0)
		goto out;

	/* metadata region */
	memset(buf, 0, 2 * VHDX_FILEID_SIZE);
	fp.block_size = g.block_size;
	fp.leave_blocks_allocated = p->type == VHDX_TYPE_FIXED;
	fp.has_parent = p->parent != NULL;
	vhdx_file_params_encode(&fp, buf + ITEMS_OFF);
	add_item(mt, VHDX_GUID_FILE_PARAMETERS, ITEMS_OFF, 8, false);
	vhdx_put_le64(buf + ITEMS_OFF + 8, g.virtual_size);
	add_item(mt, VHDX_GUID_VIRTUAL_DISK_SIZE, ITEMS_OFF + 8, 8, true);
	ret = vhdx_guid_generate(buf + ITEMS_OFF + 16);
	if (ret < 0)
		goto out;
	add_item(mt, VHDX_GUID_VIRTUAL_DISK_ID, ITEMS_OFF + 16, 16, true);
	vhdx_put_le32(buf + ITEMS_OFF + 32, g.logical_sector_size);
	add_item(mt, VHDX_GUID_LOGICAL_SECTOR_SIZE, ITEMS_OFF + 32, 4, true);
	vhdx_put_le32(buf + ITEMS_OFF + 36, p->physical_sector_size);
	add_item(mt, VHDX_GUID_PHYSICAL_SECTOR_SIZE, ITEMS_OFF + 36, 4, true);
	if (p->parent) {
		ret = build_locator(path, p->parent, parent_linkage, &locator, &locator_len);
		if (ret < 0)
			goto out;
		add_item(mt, VHDX_GUID_PARENT_LOCATOR, ITEMS_OFF + 40, (uint32_t)locator_len, false);
	}
	vhdx_metadata_table_encode(mt, buf);
	ret = vhdx_io_pwrite(io, buf, ITEMS_OFF + 40, meta_off, VHDX_TAG_METADATA);
	if (ret == 0 && locator)
		ret = vhdx_io_pwrite(io, locator, locator_len, meta_off + ITEMS_OFF + 40, VHDX_TAG_METADATA);
	if (ret < 0)
		goto out;

	/* region tables: both copies identical */
	rt->entry_count = 2;
	memcpy(rt->entries[0].guid, VHDX_GUID_BAT_REGION, 16);
	rt->entries[0].file_offset = bat_off;
	rt->entries[0].length = (uint32_t)bat_len;
	rt->entries[0].required = true;
	memcpy(rt->entries[1].guid, VHDX_GUID_METADATA_REGION, 16);
	rt->entries[1].file_offset = meta_off;
	rt->entries[1].length = VHDX_ALIGN;
	rt->entries[1].required = true;
	vhdx_region_table_encode(rt, buf);
	ret = vhdx_io_pwrite(io, buf, VHDX_REGION_SIZE, VHDX_REGION1_OFF, VHDX_TAG_REGION);
	if (ret == 0)
		ret = vhdx_io_pwrite(io, buf, VHDX_REGION_SIZE, VHDX_REGION2_OFF, VHDX_TAG_REGION);
	if (ret < 0)
		goto out;

	vhdx_fileid_encode(p->creator ? p->creator : "libvhdx " PACKAGE_VERSION, buf);
	ret = vhdx_io_pwrite(io, buf, VHDX_FILEID_SIZE, 0, VHDX_TAG_FILEID);
	if (ret < 0)
		goto out;
	/* everything above durable before a valid header makes the file an image */
	ret = vhdx_io_flush(io);
	if (ret < 0)
		goto out;

	memset(&h, 0, sizeof h);
	h.version = 1;
	h.log_version = 0;
	h.log_offset = log_off;
	h.log_length = log_len;
	ret = vhdx_guid_generate(h.file_write_guid);
	if (ret == 0)
		ret = vhdx_guid_generate(h.data_write_guid);
	if (ret < 0)
		goto out;
	for (int slot = 0; slot < 2; slot++) {
		h.seq = (uint64_t)slot + 1;
		vhdx_header_encode(&h, buf);
		ret = vhdx_io_pwrite(io, buf, VHDX_HEADER_SIZE, slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
				     VHDX_TAG_HEADER);
		if (ret < 0)
			goto out;
	}
	ret = vhdx_io_flush(io);
out:
	free(rt);
	free(mt);
	free(buf);
	free(bat);
	free(locator);
	return ret;
}
