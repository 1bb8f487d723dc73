/*
 * vhd_reparent.c - re-pointing a differencing VHD (FORMAT.md 2.4) at
 * another parent file: the dynamic header's Parent Unicode Name (and with
 * relinking its parent unique id and time stamp) and the W2ku/W2ru locator
 * data, where the child has them.  Windows' children have both locators;
 * vhd-lib's (Xen Orchestra) have none and are found through the name only,
 * so a child without locators gets the header alone.
 *
 * VHD has no log.  The order keeps what a power cut can leave small:
 *   1. the locator data (zero-padded over its whole area) is written in
 *      place and flushed: the old header still describes the old link,
 *      whose locator lengths now cover (part of) the new paths;
 *   2. the header's changed 512-byte sectors are written in ONE write and
 *      flushed.  Name, unique id, time stamp and checksum all lie in the
 *      header's first sector, so a child without locators whose names fit
 *      224 UTF-16 units (every relative name in practice) changes one
 *      sector: old or new header after a crash, never a mix.  With
 *      locators their lengths (second sector) change too; a disk that
 *      tears that 1 KiB write between its sectors leaves a header whose
 *      checksum fails, which `vhdx check --repair` rewrites (each half is
 *      whole), after which the chain reads again (tests/test-vhdlib.sh).
 * Running the reparent again after a crash writes the same bytes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/utf16.h"
#include "codec/vhd_codec.h"
#include "format/vhd_create.h"
#include "format/vhd_format.h"
#include "format/vhd_reparent.h"

/* Usable bytes of a VHD locator's data area (data space is bytes in most files, sectors in the spec). */
static uint64_t vhd_space(const struct vhdx_vhd_locator *loc)
{
	if (loc->data_space >= loc->data_length)
		return loc->data_space;
	return (uint64_t)loc->data_space * 512;
}

/* Bytes of LOC's area that a rewrite may fill: inside the data area, at most VHD_LOCATOR_MAX_LEN. */
static uint64_t area_space(const struct vhdx_vhd_state *s, const struct vhdx_vhd_locator *loc)
{
	uint64_t space = VHDX_MIN(vhd_space(loc), (uint64_t)VHD_LOCATOR_MAX_LEN);

	if (loc->data_offset >= s->data_end)
		return 0;
	return VHDX_MIN(space, s->data_end - loc->data_offset);
}

/* Writes the changed 512-byte sectors of the header NEU (old bytes read from the file) in one write. */
static int write_header(struct vhdx_layer *l, const struct vhdx_vhd_state *s, const uint8_t *neu)
{
	uint8_t old[VHD_DYNHDR_SIZE];
	unsigned first = VHD_DYNHDR_SIZE, end = 0;
	int ret = vhdx_io_pread(l->io, old, VHD_DYNHDR_SIZE, s->dynhdr_off, VHDX_TAG_DYNHDR);

	if (ret < 0)
		return ret;
	for (unsigned off = 0; off < VHD_DYNHDR_SIZE; off += VHD_SECTOR) {
		if (!memcmp(old + off, neu + off, VHD_SECTOR))
			continue;
		if (first == VHD_DYNHDR_SIZE)
			first = off;
		end = off + VHD_SECTOR;
	}
	if (end == 0)
		return 0; /* already so: a re-run */
	ret = vhdx_io_pwrite(l->io, neu + first, end - first, s->dynhdr_off + first, VHDX_TAG_DYNHDR);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	return ret;
}

int vhdx_vhd_reparent(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
		      const char *rel, const char *abs_win)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	struct vhdx_vhd_dynhdr h;
	uint8_t *data[2] = { NULL, NULL }, buf[VHD_DYNHDR_SIZE];
	size_t len[2] = { 0, 0 };
	const char *paths[2] = { abs_win, rel };
	int slot[2] = { -1, -1 };
	int ret = 0;

	if (!s->has_dynhdr)
		return vhdx_err(EINVAL, "%s has no dynamic header", l->path);
	h = s->dyn;
	for (int i = 0; i < VHD_N_LOCATORS; i++) {
		if (h.locators[i].code == VHD_PLAT_W2KU && slot[0] < 0)
			slot[0] = i;
		if (h.locators[i].code == VHD_PLAT_W2RU && slot[1] < 0)
			slot[1] = i;
	}
	/* every check before the first write */
	for (int i = 0; i < 2; i++) {
		struct vhdx_vhd_locator *loc;
		if (slot[i] < 0)
			continue;
		loc = &h.locators[slot[i]];
		ret = vhdx_utf8_to_utf16(paths[i], false, &data[i], &len[i]);
		if (ret < 0) {
			ret = vhdx_err(-ret, "cannot encode the parent path '%s' as UTF-16", paths[i]);
			goto out;
		}
		ret = vhdx_vhd_locator_check(&h, (unsigned)slot[i], s->data_end);
		if (ret < 0)
			goto out;
		if (len[i] > area_space(s, loc)) {
			ret = vhdx_err(ENOSPC, "%s: the new path (%zu bytes) does not fit the %llu bytes of locator %d at "
					       "0x%llx", l->path, len[i], (unsigned long long)area_space(s, loc), slot[i],
				       (unsigned long long)loc->data_offset);
			goto out;
		}
	}
	ret = vhdx_vhd_parent_name_encode(rel, h.parent_name);
	if (ret < 0)
		goto out;
	if (relink) {
		struct stat st;
		/* the exact bytes of the parent's footer (the layer identity may be byte-swapped) */
		const struct vhdx_vhd_state *ps = (const struct vhdx_vhd_state *)parent->priv;
		memcpy(h.parent_unique_id, ps->footer->unique_id, 16);
		if (stat(new_parent, &st) == 0)
			h.parent_timestamp = vhdx_vhd_time_from_unix((int64_t)st.st_mtime);
	}
	/* 1. the path data (zero-padded over the whole area), durable before the header points at it */
	for (int i = 0; i < 2; i++) {
		struct vhdx_vhd_locator *loc;
		uint64_t space;
		uint8_t *area;
		if (slot[i] < 0)
			continue;
		loc = &h.locators[slot[i]];
		space = area_space(s, loc);
		area = calloc(1, space ? space : 1);
		if (!area) {
			ret = vhdx_err(ENOMEM, "out of memory");
			goto out;
		}
		memcpy(area, data[i], len[i]);
		ret = vhdx_io_pwrite(l->io, area, space, loc->data_offset, VHDX_TAG_DYNHDR);
		free(area);
		if (ret < 0)
			goto out;
		loc->data_length = (uint32_t)len[i];
	}
	if (slot[0] >= 0 || slot[1] >= 0) {
		ret = vhdx_io_flush(l->io);
		if (ret < 0)
			goto out;
	}
	/* 2. the header */
	vhdx_vhd_dynhdr_encode(&h, buf);
	ret = write_header(l, s, buf);
	if (ret == 0)
		s->dyn = h;
out:
	free(data[0]);
	free(data[1]);
	return ret;
}
