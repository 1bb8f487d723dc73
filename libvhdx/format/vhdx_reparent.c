/*
 * vhdx_reparent.c - re-pointing a differencing VHDX (MS-VHDX 2.6.1,
 * 2.6.2.6) at another parent file, the VHDX half of vhdx_reparent() (the
 * driver is maint/reparent.c; the VHD half format/vhd_reparent.c).
 *
 * The parent locator item is rebuilt (parent_linkage, relative_path,
 * absolute_win32_path) and written into the metadata region through the
 * log, with the metadata table when the item moves, so a crash leaves the
 * old or the new locator, never a mix.  The session renews FileWriteGuid
 * only: the child's data does not change, so its DataWriteGuid (which its
 * own children link to) must not either.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "codec/vhdx_locator.h"
#include "format/vhdx_format.h"
#include "format/vhdx_journal.h"
#include "format/vhdx_reparent.h"

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

int vhdx_reparent_vhdx(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
		       const char *rel, const char *abs_win)
{
	/* without relinking the child keeps the link it has: the parent was checked to match it */
	const uint8_t *linkage = relink ? parent->identity : l->parent.linkage;
	struct vhdx_state *s = vhdx_state_of(l);
	struct vhdx_metadata_entry *e = NULL;
	struct vhdx_log_page *pages = NULL;
	enum vhdx_tag *tags = NULL;
	struct vhdx_journal j;
	uint8_t *old = NULL, *neu = NULL, *item = NULL;
	size_t item_len = 0, n_pages = 0;
	uint32_t end = VHDX_METADATA_TABLE_SIZE, place;
	int ret;

	(void)new_parent; /* its paths come as REL and ABS_WIN */
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
