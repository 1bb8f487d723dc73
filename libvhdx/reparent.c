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
 * VHD: format/vhd_reparent.c (the header's parent name and id, and the
 * W2ku/W2ru locators where the child has them).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"
#include "codec/utf16.h"
#include "codec/vhdx_locator.h"
#include "format/vhd_reparent.h"
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

/* -ELOOP (before anything is written) when NEW_PARENT P is CHILD or leads back to it. */
static int reparent_loop_check(const char *child, struct vhdx_layer *p, struct vhdx_faults *faults)
{
	unsigned depth;
	int r = vhdx_chain_find_ancestor(p, child, faults, &depth);

	if (r < 0)
		return vhdx_err_prefix(r, "reparenting %s to %s", child, p->path);
	if (r == 1 && depth == 0)
		return vhdx_err(ELOOP, "%s cannot be its own parent: nothing was changed", child);
	if (r == 1)
		return vhdx_err(ELOOP, "reparenting %s to %s would make a cycle: %s is layer %u of the chain of %s; "
				       "nothing was changed", child, p->path, child, depth, p->path);
	return 0;
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
	/* a file its own parent, or a->c->a: every later open would refuse the chain */
	ret = reparent_loop_check(child, p, faults);
	if (ret < 0)
		goto out;
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
		ret = vhdx_vhd_reparent(c, p, new_parent, relink, rel, abs_win);
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
