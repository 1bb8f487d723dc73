/*
 * vhd_create.c - creating fixed, dynamic and differencing legacy VHD files
 * (VHD spec v1.0 "Hard Disk Footer Format", "Dynamic Disk Header Format";
 * FORMAT.md 2.2-2.5).  Layouts:
 *
 *   fixed:         | data (sparse) ............................ | footer |
 *
 *   dynamic:       | footer | dynamic  | BAT, all 0xFFFFFFFF       | footer |
 *                  | copy   | header   | (4 bytes an entry,       |        |
 *                  | 0      | 512      | 1536, padded to 512)     |        |
 *
 *   differencing:  | footer | dynamic  | BAT      | W2ku data | W2ru data | footer |
 *                  | copy   | header   |          | (absolute)| (relative)|        |
 *
 * Blocks are appended later, where the trailing footer is (vhd_write.c).
 *
 * Field choices (FORMAT.md 2.2-2.4, with what Windows writes as the model:
 * the diskpart-made differencing disk of the conformance set):
 *   - creator application "vhdx" (or the first 4 bytes of P->creator),
 *     creator version major<<16 | minor of our version, host OS "Wi2k",
 *     features 0x2, format version 1.0, time stamps now;
 *   - original and current size the requested size (a 512 multiple); CHS
 *     geometry by the spec's algorithm, a differencing disk copies its
 *     parent's geometry so that both present the same disk;
 *   - a child's parent unique id is the parent's footer unique id byte for
 *     byte (the reader compares exactly these bytes when it opens the
 *     chain), its parent Unicode name (UTF-16BE) the parent's path
 *     relative to the child's folder with '/' separators: the file name
 *     alone when both share a folder (the spec calls the field the
 *     parent's file name), "../other/p.vhd" otherwise.  vhd-lib (Xen
 *     Orchestra) finds a parent only through this field, resolved against
 *     the child's folder; Windows finds it through the locators below.
 *     (Windows itself stores the absolute path here, which vhd-lib cannot
 *     follow; see vhdx_vhd_parent_name_encode());
 *   - the parent time stamp is the parent file's modification time, as the
 *     specification defines it and as DiscUtils, VirtualBox and MiniVHD
 *     write and check it.  (Windows 10's diskpart writes 0 and Windows only
 *     checks the unique id; a tool that compares the time stamp with the
 *     parent's modification time accepts ours, and the parent is never
 *     modified while it has children.)
 *   - locators in slots 0 (W2ku, absolute) and 1 (W2ru, relative ".\p.vhd"),
 *     UTF-16LE without a terminator, as Windows writes them (DiscUtils uses
 *     slots 7 and 6; readers search every slot by code).  Their data lies in
 *     512-byte aligned areas after the BAT; each area is at least 4 KiB (its
 *     size in bytes in "platform data space", as Windows records it) so
 *     that a later reparent can rewrite a longer path in place.
 *
 * Everything the footers point at is written and flushed before either
 * footer exists, so a file cut short by a crash during creation is never
 * taken for an image.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "codec/utf16.h"
#include "codec/vhd_codec.h"
#include "format/vhd_create.h"
#include "format/vhd_format.h"

#define DYNHDR_OFF        512u
#define BAT_OFF           1536u
#define LOCATOR_MIN_SPACE 4096u

/* "0.1.0" -> 0x00000001: major in the high 16 bits, minor in the low. */
static uint32_t creator_version(void)
{
	unsigned major = 0, minor = 0;

	if (sscanf(PACKAGE_VERSION, "%u.%u", &major, &minor) < 1)
		return 0;
	return (uint32_t)(major & 0xffff) << 16 | (minor & 0xffff);
}

static void fill_footer(struct vhdx_vhd_footer *f, const struct vhdx_create_params *p, uint32_t disk_type,
			uint32_t now)
{
	const char *app = p->creator ? p->creator : "vhdx";
	struct vhdx_vhd_chs chs;

	memset(f, 0, sizeof *f);
	f->features = VHD_FEATURE_RESERVED;
	f->version = VHD_VERSION_1;
	f->data_offset = disk_type == VHD_TYPE_FIXED ? UINT64_MAX : DYNHDR_OFF;
	f->timestamp = now;
	/* four bytes, space padded like "vpc " and "win " */
	for (size_t i = 0, n = strlen(app); i < 4; i++)
		f->creator_app[i] = i < n ? (uint8_t)app[i] : ' ';
	f->creator_version = creator_version();
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = p->virtual_size;
	f->current_size = p->virtual_size;
	vhdx_vhd_chs_calc(p->virtual_size, &chs);
	f->cylinders = chs.cylinders;
	f->heads = chs.heads;
	f->sectors_per_track = chs.sectors_per_track;
	f->disk_type = disk_type;
}

/* A new random unique id in the footer's byte order (RFC 4122, big-endian fields). */
static int new_unique_id(uint8_t id[16])
{
	uint8_t g[16];
	int ret = vhdx_guid_generate(g);

	if (ret < 0)
		return vhdx_err(-ret, "cannot generate a unique id: %s", strerror(-ret));
	/* the conversion is its own inverse: the version nibble lands where RFC 4122 puts it */
	vhdx_vhd_uuid_to_guid(g, id);
	return 0;
}

/* A UTF-16 encoding of S (LE or BE) in a new buffer; -EINVAL with a message for bad UTF-8. */
static int to_utf16(const char *s, bool big_endian, const char *what, uint8_t **out, size_t *len)
{
	int ret = vhdx_utf8_to_utf16(s, big_endian, out, len);

	if (ret == -ENOMEM)
		return vhdx_err(ENOMEM, "out of memory");
	if (ret < 0)
		return vhdx_err(EINVAL, "%s '%s' is not valid UTF-8", what, s);
	return 0;
}

int vhdx_vhd_parent_name_encode(const char *rel_win, uint8_t name[VHD_PARENT_NAME_LEN])
{
	const char *r = rel_win;
	char *posix;
	uint8_t *u = NULL;
	size_t len = 0;
	int ret;

	while (r[0] == '.' && r[1] == '\\')
		r += 2; /* ".\base.vhd": the file name alone */
	posix = strdup(r);
	if (!posix)
		return vhdx_err(ENOMEM, "out of memory");
	for (char *p = posix; *p; p++)
		if (*p == '\\')
			*p = '/';
	ret = to_utf16(posix, true, "parent path", &u, &len);
	if (ret == 0 && len > VHD_PARENT_NAME_LEN) {
		/* too long for the field: the file name alone (found in the child's folder) */
		const char *b = strrchr(posix, '/');
		free(u);
		u = NULL;
		ret = to_utf16(b ? b + 1 : posix, true, "parent file name", &u, &len);
		if (ret == 0 && len > VHD_PARENT_NAME_LEN)
			ret = vhdx_err(EINVAL, "the parent's file name '%s' is longer than the 256 UTF-16 units of a VHD "
					       "parent name", b ? b + 1 : posix);
	}
	if (ret == 0) {
		memset(name, 0, VHD_PARENT_NAME_LEN);
		memcpy(name, u, len);
	}
	free(u);
	free(posix);
	return ret;
}

/*
 * Fills the parent fields of H for a child at PATH over PARENT (opened as
 * PARENT_PATH) and returns the locator data to write: *LOC[0] W2ku,
 * *LOC[1] W2ru, placed from DATA_OFF on; *END receives the end of their areas.
 */
static int fill_parent(struct vhdx_vhd_dynhdr *h, const char *path, const char *parent_path,
		       const struct vhdx_layer *parent, uint64_t data_off, uint8_t *loc[2], size_t loc_len[2],
		       uint64_t *end)
{
	const struct vhdx_vhd_state *ps = (const struct vhdx_vhd_state *)parent->priv;
	char *rel = NULL, *abs_win = NULL;
	struct stat st;
	int ret;

	/* the exact bytes the parent's footer holds: the reader's linkage check compares them */
	memcpy(h->parent_unique_id, ps->footer->unique_id, 16);
	if (stat(parent_path, &st) < 0)
		return vhdx_err(errno, "%s: %s", parent_path, strerror(errno));
	h->parent_timestamp = vhdx_vhd_time_from_unix((int64_t)st.st_mtime);

	ret = vhdx_create_parent_paths(path, parent_path, &rel, &abs_win);
	if (ret < 0)
		return ret;
	ret = vhdx_vhd_parent_name_encode(rel, h->parent_name);
	if (ret == 0)
		ret = to_utf16(abs_win, false, "parent path", &loc[0], &loc_len[0]);
	if (ret == 0)
		ret = to_utf16(rel, false, "relative parent path", &loc[1], &loc_len[1]);
	if (ret == 0 && (loc_len[0] > VHD_LOCATOR_MAX_LEN || loc_len[1] > VHD_LOCATOR_MAX_LEN))
		ret = vhdx_err(EINVAL, "the parent path '%s' is too long for a VHD parent locator (%u bytes of UTF-16 at most)",
			       abs_win, VHD_LOCATOR_MAX_LEN);
	if (ret == 0) {
		static const uint32_t codes[2] = { VHD_PLAT_W2KU, VHD_PLAT_W2RU };
		for (int i = 0; i < 2; i++) {
			uint32_t space = (uint32_t)VHDX_MAX(vhdx_round_up(loc_len[i], VHD_SECTOR), LOCATOR_MIN_SPACE);
			h->locators[i].code = codes[i];
			h->locators[i].data_space = space;
			h->locators[i].data_length = (uint32_t)loc_len[i];
			h->locators[i].data_offset = data_off;
			data_off += space;
		}
		*end = data_off;
	}
	free(rel);
	free(abs_win);
	return ret;
}

int vhdx_create_vhd_check(const struct vhdx_create_params *p, const struct vhdx_layer *parent)
{
	if (p->logical_sector_size != VHD_SECTOR)
		return vhdx_err(EINVAL, "a VHD has 512-byte sectors (logical sector size %u asked for)",
				p->logical_sector_size);
	if (p->virtual_size == 0 || p->virtual_size % VHD_SECTOR)
		return vhdx_err(EINVAL, "a VHD's virtual size must be a non-zero multiple of 512 bytes, not %llu (from 512 "
					"bytes to 2040 GiB, %llu bytes, for a dynamic one)",
				(unsigned long long)p->virtual_size, VHD_MAX_DYNAMIC_SIZE);
	if (p->type == VHDX_TYPE_FIXED)
		return 0;
	if (p->virtual_size > VHD_MAX_DYNAMIC_SIZE)
		return vhdx_err(EINVAL, "a dynamic or differencing VHD holds at most 2040 GiB (%llu bytes); %llu bytes asked for (use VHDX for larger disks)",
				VHD_MAX_DYNAMIC_SIZE, (unsigned long long)p->virtual_size);
	if (!vhdx_is_pow2(p->block_size) || p->block_size < VHD_MIN_BLOCK_SIZE || p->block_size > VHD_MAX_BLOCK_SIZE)
		return vhdx_err(EINVAL, "VHD block size %u is not a power of two from 4 KiB to 256 MiB", p->block_size);
	if (p->type == VHDX_TYPE_DIFFERENCING) {
		if (!parent || !p->parent || parent->format != VHDX_FORMAT_VHD)
			return vhdx_err(EINVAL, "a differencing VHD needs a VHD parent");
		if (parent->virtual_size != p->virtual_size)
			return vhdx_err(EINVAL, "a child must have its parent's size (%llu bytes), not %llu",
					(unsigned long long)parent->virtual_size, (unsigned long long)p->virtual_size);
	}
	return 0;
}

static int create_fixed(struct vhdx_io *io, const struct vhdx_create_params *p, uint32_t now)
{
	struct vhdx_vhd_footer f;
	uint8_t buf[VHD_FOOTER_SIZE];
	int ret;

	fill_footer(&f, p, VHD_TYPE_FIXED, now);
	ret = new_unique_id(f.unique_id);
	if (ret < 0)
		return ret;
	vhdx_vhd_footer_encode(&f, buf);
	/* the data area stays a hole of zeros; the footer write sets the file size */
	ret = vhdx_io_pwrite(io, buf, VHD_FOOTER_SIZE, p->virtual_size, VHDX_TAG_FOOTER);
	if (ret == 0)
		ret = vhdx_io_flush(io);
	return ret;
}

int vhdx_create_vhd(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p,
		    const struct vhdx_layer *parent)
{
	bool differencing = p->type == VHDX_TYPE_DIFFERENCING;
	uint32_t now = vhdx_vhd_time_from_unix((int64_t)time(NULL));
	struct vhdx_vhd_footer f;
	struct vhdx_vhd_dynhdr h;
	uint8_t *bat = NULL, *loc[2] = { NULL, NULL }, buf[VHD_DYNHDR_SIZE];
	size_t loc_len[2] = { 0, 0 };
	uint64_t entries, bat_len, first_block;
	int ret;

	ret = vhdx_create_vhd_check(p, parent);
	if (ret < 0)
		return ret;
	if (p->type == VHDX_TYPE_FIXED)
		return create_fixed(io, p, now);

	entries = vhdx_div_round_up(p->virtual_size, p->block_size);
	bat_len = vhdx_round_up(4 * entries, VHD_SECTOR);
	first_block = BAT_OFF + bat_len;
	memset(&h, 0, sizeof h);
	h.data_offset = UINT64_MAX;
	h.table_offset = BAT_OFF;
	h.version = VHD_VERSION_1;
	h.max_table_entries = (uint32_t)entries;
	h.block_size = p->block_size;
	fill_footer(&f, p, differencing ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC, now);
	ret = new_unique_id(f.unique_id);
	if (ret == 0 && differencing) {
		const struct vhdx_vhd_footer *pf = ((const struct vhdx_vhd_state *)parent->priv)->footer;
		f.cylinders = pf->cylinders;
		f.heads = pf->heads;
		f.sectors_per_track = pf->sectors_per_track;
		ret = fill_parent(&h, path, p->parent, parent, first_block, loc, loc_len, &first_block);
	}
	if (ret < 0)
		goto out;

	/* BAT: every block unallocated, the padding too */
	bat = malloc(bat_len);
	if (!bat) {
		ret = vhdx_err(ENOMEM, "out of memory for a BAT of %llu bytes", (unsigned long long)bat_len);
		goto out;
	}
	memset(bat, 0xff, bat_len);
	ret = vhdx_io_pwrite(io, bat, bat_len, BAT_OFF, VHDX_TAG_BAT);
	for (int i = 0; i < 2 && ret == 0; i++)
		if (loc[i])
			ret = vhdx_io_pwrite(io, loc[i], loc_len[i], h.locators[i].data_offset, VHDX_TAG_DYNHDR);
	if (ret == 0) {
		vhdx_vhd_dynhdr_encode(&h, buf);
		ret = vhdx_io_pwrite(io, buf, VHD_DYNHDR_SIZE, DYNHDR_OFF, VHDX_TAG_DYNHDR);
	}
	/* header, BAT and locators durable before a footer makes the file an image */
	if (ret == 0)
		ret = vhdx_io_flush(io);
	if (ret == 0) {
		vhdx_vhd_footer_encode(&f, buf);
		/* the trailing footer (where the first block will go) sets the file size */
		ret = vhdx_io_pwrite(io, buf, VHD_FOOTER_SIZE, first_block, VHDX_TAG_FOOTER);
	}
	if (ret == 0)
		ret = vhdx_io_pwrite(io, buf, VHD_FOOTER_SIZE, 0, VHDX_TAG_FOOTER);
	if (ret == 0)
		ret = vhdx_io_flush(io);
out:
	free(bat);
	free(loc[0]);
	free(loc[1]);
	return ret;
}
