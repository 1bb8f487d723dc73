/*
 * reparent.c - vhdx_reparent(): points a differencing layer at another
 * parent file, like Set-VHD -ParentPath.
 *
 * VHDX (MS-VHDX 2.6.1, 2.6.2.6): the parent locator item is rebuilt
 * (parent_linkage, relative_path, absolute_win32_path) and written into the
 * metadata region through the log, with the metadata table when the item
 * moves, so a crash leaves the old or the new locator, never a mix.  The
 * session renews FileWriteGuid only: the child's data does not change, so
 * its DataWriteGuid (which its own children link to) must not either.
 *
 * VHD (FORMAT.md 2.x): the W2ku and W2ru locator data are rewritten in the
 * space they already have, flushed, then the dynamic header (parent name,
 * data lengths, and with relinking the parent unique id and time stamp) in
 * one 1 KiB write.  VHD has no log: a crash between the two writes leaves
 * paths that may not resolve (the link itself is intact): run the reparent
 * again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "codec/guid.h"
#include "codec/utf16.h"
#include "codec/vhdx_locator.h"
#include "format/vhd_format.h"
#include "format/vhdx_create.h"
#include "format/vhdx_format.h"
#include "format/vhdx_journal.h"
#include "merge_internal.h"

#define PAGE VHDX_LOG_SECTOR

/* Builds the new locator item: the old keys except paths (and linkage2 when relinking), then the new ones. */
static int vhdx_build_item(struct vhdx_state *s, const uint8_t linkage[16], bool relink, const char *rel,
			   const char *abs_win, uint8_t **item, size_t *item_len)
{
	struct vhdx_locator_kv *kv = NULL;
	size_t n = 0, m = 0;
	const char **keys, **values;
	char gs[VHDX_GUID_STRLEN], link_text[VHDX_GUID_STRLEN + 2];
	int ret;

	ret = vhdx_locator_list(s->locator_raw, s->locator_len, &kv, &n);
	if (ret < 0)
		return vhdx_err_prefix(ret, "parent locator");
	keys = calloc(n + 3, sizeof *keys);
	values = calloc(n + 3, sizeof *values);
	if (!keys || !values) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	vhdx_guid_format(linkage, gs);
	snprintf(link_text, sizeof link_text, "{%s}", gs);
	keys[m] = "parent_linkage";
	values[m++] = link_text;
	for (size_t i = 0; i < n; i++) {
		const char *k = kv[i].key;
		if (!strcmp(k, "parent_linkage") || !strcmp(k, "relative_path") || !strcmp(k, "absolute_win32_path") ||
		    !strcmp(k, "volume_path") || (relink && !strcmp(k, "parent_linkage2")))
			continue; /* replaced, or (volume_path) no longer true */
		keys[m] = k;
		values[m++] = kv[i].value;
	}
	keys[m] = "relative_path";
	values[m++] = rel;
	keys[m] = "absolute_win32_path";
	values[m++] = abs_win;
	ret = vhdx_locator_encode(keys, values, m, item, item_len);
	if (ret < 0)
		ret = vhdx_err(-ret, "cannot encode the new parent locator");
out:
	free(keys);
	free(values);
	vhdx_locator_kv_free(kv, n);
	return ret;
}

static int reparent_vhdx(struct vhdx_layer *l, const uint8_t linkage[16], bool relink, const char *rel,
			 const char *abs_win)
{
	struct vhdx_state *s = vhdx_state_of(l);
	struct vhdx_metadata_entry *e = NULL;
	struct vhdx_log_page *pages = NULL;
	enum vhdx_tag *tags = NULL;
	struct vhdx_journal j;
	uint8_t *old = NULL, *neu = NULL, *item = NULL;
	size_t item_len = 0, n_pages = 0;
	uint32_t end = VHDX_METADATA_TABLE_SIZE, place;
	int ret;

	for (unsigned i = 0; i < s->meta->entry_count; i++)
		if (!s->meta->entries[i].is_user &&
		    !memcmp(s->meta->entries[i].item_id, VHDX_GUID_PARENT_LOCATOR, 16))
			e = &s->meta->entries[i];
	if (!e || !s->locator_raw)
		return vhdx_err(EINVAL, "%s has no parent locator", l->path);
	ret = vhdx_build_item(s, linkage, relink, rel, abs_win, &item, &item_len);
	if (ret < 0)
		return ret;
	old = malloc(s->meta_len);
	neu = malloc(s->meta_len);
	if (!old || !neu) {
		ret = vhdx_err(ENOMEM, "out of memory for the %u-byte metadata region", s->meta_len);
		goto out;
	}
	ret = vhdx_io_pread(l->io, old, s->meta_len, s->meta_off, VHDX_TAG_METADATA);
	if (ret < 0)
		goto out;
	memcpy(neu, old, s->meta_len);
	if (item_len <= e->length) {
		place = e->offset; /* fits where the old item is */
	} else {
		/* after every item, inside the region */
		for (unsigned i = 0; i < s->meta->entry_count; i++) {
			const struct vhdx_metadata_entry *x = &s->meta->entries[i];
			if (x->length && x->offset + x->length > end)
				end = x->offset + x->length;
		}
		place = (uint32_t)vhdx_round_up(end, 8);
		if ((uint64_t)place + item_len > s->meta_len) {
			ret = vhdx_err(ENOSPC, "%s: the new parent locator (%zu bytes) does not fit the metadata region "
					       "at 0x%llx", l->path, item_len, (unsigned long long)s->meta_off);
			goto out;
		}
	}
	memcpy(neu + place, item, item_len);
	if (place == e->offset && item_len < e->length)
		memset(neu + place + item_len, 0, e->length - item_len);
	e->offset = place;
	e->length = (uint32_t)item_len;
	vhdx_metadata_table_encode(s->meta, neu);
	/* journal every 4 KiB page of the region that changed: one entry, old or new after a crash */
	pages = calloc(s->meta_len / PAGE, sizeof *pages);
	tags = calloc(s->meta_len / PAGE, sizeof *tags);
	if (!pages || !tags) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t off = 0; off < s->meta_len; off += PAGE) {
		if (!memcmp(old + off, neu + off, PAGE))
			continue;
		pages[n_pages].file_offset = s->meta_off + off;
		pages[n_pages].data = neu + off;
		tags[n_pages++] = VHDX_TAG_METADATA;
	}
	if (n_pages == 0)
		goto out;
	/* only FileWriteGuid: the child's data is unchanged and its children link to DataWriteGuid */
	ret = vhdx_journal_start_flags(l, s, &j, VHDX_HDR_NEW_FILE_GUID);
	if (ret < 0)
		goto out;
	ret = vhdx_journal_commit(l, &j, pages, tags, n_pages, s->file_size);
	if (ret < 0)
		goto out;
	ret = vhdx_journal_finish(l, s, &j);
out:
	free(pages);
	free(tags);
	free(old);
	free(neu);
	free(item);
	return ret;
}

/* Usable bytes of a VHD locator's data area (data space is bytes in most files, sectors in the spec). */
static uint64_t vhd_space(const struct vhdx_vhd_locator *loc)
{
	if (loc->data_space >= loc->data_length)
		return loc->data_space;
	return (uint64_t)loc->data_space * 512;
}

static int reparent_vhd(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
			const char *rel, const char *abs_win)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	struct vhdx_vhd_dynhdr h;
	uint8_t *data[2] = { NULL, NULL }, *name = NULL, buf[VHD_DYNHDR_SIZE];
	size_t len[2] = { 0, 0 }, name_len = 0;
	const char *base;
	int slot[2] = { -1, -1 };
	int ret;

	if (!s->has_dynhdr)
		return vhdx_err(EINVAL, "%s has no dynamic header", l->path);
	h = s->dyn;
	for (int i = 0; i < VHD_N_LOCATORS; i++) {
		if (h.locators[i].code == VHD_PLAT_W2KU && slot[0] < 0)
			slot[0] = i;
		if (h.locators[i].code == VHD_PLAT_W2RU && slot[1] < 0)
			slot[1] = i;
	}
	if (slot[0] < 0 || slot[1] < 0)
		return vhdx_err(ENOTSUP, "%s: dynamic header at 0x%llx has no W2ku and W2ru locators to rewrite", l->path,
				(unsigned long long)s->dynhdr_off);
	ret = vhdx_utf8_to_utf16(abs_win, false, &data[0], &len[0]);
	if (ret == 0)
		ret = vhdx_utf8_to_utf16(rel, false, &data[1], &len[1]);
	if (ret < 0) {
		ret = vhdx_err(-ret, "cannot encode the parent path as UTF-16");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		struct vhdx_vhd_locator *loc = &h.locators[slot[i]];
		if (len[i] > vhd_space(loc) || len[i] > VHD_LOCATOR_MAX_LEN) {
			ret = vhdx_err(ENOSPC, "%s: the new path (%zu bytes) does not fit the %llu bytes of locator %d at "
					       "0x%llx", l->path, len[i], (unsigned long long)vhd_space(loc), slot[i],
				       (unsigned long long)loc->data_offset);
			goto out;
		}
		ret = vhdx_vhd_locator_check(&h, (unsigned)slot[i], s->data_end);
		if (ret < 0)
			goto out;
	}
	ret = vhdx_utf8_to_utf16(abs_win, true, &name, &name_len);
	if (ret == 0 && name_len > VHD_PARENT_NAME_LEN) {
		free(name);
		base = strrchr(abs_win, '\\');
		ret = vhdx_utf8_to_utf16(base ? base + 1 : abs_win, true, &name, &name_len);
		if (ret == 0 && name_len > VHD_PARENT_NAME_LEN)
			ret = -EINVAL;
	}
	if (ret < 0) {
		ret = vhdx_err(-ret, "cannot encode the parent name");
		goto out;
	}
	memset(h.parent_name, 0, sizeof h.parent_name);
	memcpy(h.parent_name, name, name_len);
	if (relink) {
		struct stat st;
		/* the exact bytes of the parent's footer (the layer identity may be byte-swapped) */
		const struct vhdx_vhd_state *ps = (const struct vhdx_vhd_state *)parent->priv;
		memcpy(h.parent_unique_id, ps->footer->unique_id, 16);
		if (stat(new_parent, &st) == 0)
			h.parent_timestamp = vhdx_vhd_time_from_unix((int64_t)st.st_mtime);
	}
	/* the path data first (zero-padded over the whole area), durable before the header points at it */
	for (int i = 0; i < 2; i++) {
		struct vhdx_vhd_locator *loc = &h.locators[slot[i]];
		uint64_t space = VHDX_MIN(vhd_space(loc), (uint64_t)VHD_LOCATOR_MAX_LEN);
		uint8_t *area = calloc(1, space ? space : 1);
		if (!area) {
			ret = vhdx_err(ENOMEM, "out of memory");
			goto out;
		}
		if (loc->data_offset + space > s->data_end)
			space = s->data_end - loc->data_offset;
		memcpy(area, data[i], len[i]);
		ret = vhdx_io_pwrite(l->io, area, space, loc->data_offset, VHDX_TAG_DYNHDR);
		free(area);
		if (ret < 0)
			goto out;
		loc->data_length = (uint32_t)len[i];
	}
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		goto out;
	vhdx_vhd_dynhdr_encode(&h, buf);
	ret = vhdx_io_pwrite(l->io, buf, VHD_DYNHDR_SIZE, s->dynhdr_off, VHDX_TAG_DYNHDR);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
out:
	free(data[0]);
	free(data[1]);
	free(name);
	return ret;
}

int vhdx_reparent_faults(const char *child, const char *new_parent, unsigned flags, struct vhdx_faults *faults)
{
	struct vhdx_layer *c = NULL, *p = NULL;
	struct vhdx_lockset locks;
	char *rel = NULL, *abs_win = NULL;
	bool relink = flags & VHDX_REPARENT_RELINK;
	int ret;

	vhdx_err_clear();
	if (!child || !new_parent)
		return vhdx_err(EINVAL, "vhdx_reparent: child and new_parent must not be NULL");
	/* issue #14: CHILD is locked exclusively from the first read of it to the last write */
	vhdx_lockset_begin(&locks);
	ret = vhdx_lockset_add(&locks, child, VHDX_LOCK_EXCLUSIVE, faults);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		return ret;
	}
	ret = vhdx_layer_open_faults(new_parent, 0, faults, &p);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		return vhdx_err_prefix(ret, "new parent");
	}
	/* read-only first: nothing is written unless every check passes */
	ret = vhdx_layer_open_faults(child, 0, faults, &c);
	if (ret < 0)
		goto out;
	if (!c->has_parent) {
		ret = vhdx_err(EINVAL, "%s is not a differencing disk: it has no parent to change", child);
		goto out;
	}
	if (c->format != p->format) {
		ret = vhdx_err(ENOTSUP, "%s is a %s, the new parent %s a %s: a child and its parent share a format here",
			       child, c->ops->name, new_parent, p->ops->name);
		goto out;
	}
	if (c->logical_sector_size != p->logical_sector_size) {
		ret = vhdx_err(EINVAL, "%s has %u-byte logical sectors, the new parent %s %u-byte ones", child,
			       c->logical_sector_size, new_parent, p->logical_sector_size);
		goto out;
	}
	if (!relink && memcmp(p->identity, c->parent.linkage, 16) &&
	    !(c->parent.has_linkage2 && !memcmp(p->identity, c->parent.linkage2, 16))) {
		char want[VHDX_GUID_STRLEN], got[VHDX_GUID_STRLEN];
		vhdx_guid_format(c->parent.linkage, want);
		vhdx_guid_format(p->identity, got);
		ret = vhdx_err(EBADMSG, "%s links to a parent with identity {%s}, %s is {%s} (use ignore-id-mismatch "
					"to link to it anyway)", child, want, new_parent, got);
		goto out;
	}
	ret = vhdx_create_parent_paths(child, new_parent, &rel, &abs_win);
	if (ret < 0)
		goto out;
	vhdx_layer_close(c);
	c = NULL;
	ret = vhdx_layer_open_faults(child, VHDX_LAYER_WRITABLE, faults, &c);
	if (ret < 0)
		goto out;
	if (c->format == VHDX_FORMAT_VHDX)
		ret = reparent_vhdx(c, relink ? p->identity : c->parent.linkage, relink, rel, abs_win);
	else
		ret = reparent_vhd(c, p, new_parent, relink, rel, abs_win);
	if (ret < 0)
		ret = vhdx_err_prefix(ret, "reparenting %s", child);
out:
	if (c) {
		int r2 = vhdx_layer_close(c);
		if (ret == 0 && r2 < 0)
			ret = r2;
	}
	vhdx_layer_close(p);
	vhdx_lockset_end(&locks);
	free(rel);
	free(abs_win);
	return ret;
}

int vhdx_reparent(const char *child, const char *new_parent, unsigned flags)
{
	return vhdx_reparent_faults(child, new_parent, flags, NULL);
}
