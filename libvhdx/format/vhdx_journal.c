/*
 * vhdx_journal.c - the log WRITER (MS-VHDX 2.3): turns a set of dirty 4 KiB
 * metadata pages (BAT pages, sector-bitmap pages) into log entries and
 * applies them, so that a crash at any instant leaves either the old or the
 * new metadata, never a mix.
 *
 * Protocol of one commit (called with the payload data already flushed):
 *   1. write the entry (descriptors + data sectors, CRC) into the ring;
 *   2. flush: the entry is durable, so replay can redo the pages;
 *   3. write the pages to their final offsets, without a flush: until the
 *      next flush makes them durable the entry stays needed, which is what
 *      the Tail of the next entry records.
 * After any flush of the file, every page applied before it is durable, so
 * the next entry can name itself as the tail and all older entries become
 * free space.  An entry never straddles the end of the ring (it restarts at
 * offset 0 instead), and it never fills the ring completely.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "codec/vhdx_log_codec.h"
#include "format/vhdx_journal.h"

int vhdx_journal_start(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j)
{
	return vhdx_journal_start_flags(l, s, j, VHDX_HDR_NEW_FILE_GUID | VHDX_HDR_NEW_DATA_GUID);
}

int vhdx_journal_start_flags(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j, unsigned hdr_flags)
{
	const struct vhdx_header *h = &s->headers[s->current];
	int ret;

	memset(j, 0, sizeof *j);
	if (h->log_length < 2 * VHDX_LOG_SECTOR)
		return vhdx_err(ENOTSUP, "the log of %u bytes is too small to journal metadata updates", h->log_length);
	j->log_off = h->log_offset;
	j->log_len = h->log_length;
	ret = vhdx_guid_generate(j->log_guid);
	if (ret < 0)
		return ret;
	/*
	 * New FileWriteGuid (and DataWriteGuid for data changes) and the new
	 * LogGuid, all before the first byte of the file changes (MS-VHDX
	 * 2.2.2): a stale entry of an earlier session carries another LogGuid
	 * and can never be replayed.
	 */
	ret = vhdx_header_update(l, s, j->log_guid, hdr_flags);
	if (ret < 0)
		return ret;
	j->seq = 1;
	j->head = 0;
	j->tail_pinned = false;
	j->active = true;
	return 0;
}

void vhdx_journal_file_flushed(struct vhdx_journal *j)
{
	j->tail_pinned = false;
}

int vhdx_journal_commit(struct vhdx_layer *l, struct vhdx_journal *j, const struct vhdx_log_page *pages,
			const enum vhdx_tag *tags, size_t n, uint64_t file_size)
{
	size_t size = vhdx_log_entry_size(pages, n);
	struct vhdx_log_entry_info info;
	uint32_t at;
	uint8_t *buf;
	int ret;

	if (size > (size_t)j->log_len - VHDX_LOG_SECTOR)
		return vhdx_err(EINVAL, "internal error: a log entry of %zu bytes does not fit a %u-byte log", size,
				j->log_len);
	if (j->tail_pinned) {
		/* older entries are still needed: append after them without wrapping over the tail */
		uint64_t used = j->head >= j->tail ? j->head - j->tail : j->log_len - j->tail + j->head;
		if (j->head + size > j->log_len || used + size > (uint64_t)j->log_len - VHDX_LOG_SECTOR)
			return vhdx_err(ENOSPC, "internal error: log ring full");
		at = j->head;
	} else {
		at = j->head + size <= j->log_len ? j->head : 0;
		j->tail = at;
	}
	buf = malloc(size);
	if (!buf)
		return vhdx_err(ENOMEM, "out of memory for a log entry of %zu bytes", size);
	memset(&info, 0, sizeof info);
	info.seq = j->seq;
	info.tail = j->tail;
	memcpy(info.log_guid, j->log_guid, 16);
	/* the file size is durable: the caller flushed after the last extension */
	info.flushed_file_offset = vhdx_round_up(file_size, VHDX_ALIGN);
	info.last_file_offset = info.flushed_file_offset;
	vhdx_log_entry_encode(&info, pages, n, buf);
	ret = vhdx_io_pwrite(l->io, buf, size, j->log_off + at, VHDX_TAG_LOG);
	free(buf);
	if (ret < 0)
		return ret;
	/* the entry must be durable before any page it carries lands in place */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	j->tail_pinned = true;
	j->head = at + (uint32_t)size;
	if (j->head >= j->log_len)
		j->head = 0;
	j->seq++;
	j->entries++;
	j->pages += n;
	for (size_t i = 0; i < n; i++) {
		if (pages[i].data)
			ret = vhdx_io_pwrite(l->io, pages[i].data, VHDX_LOG_SECTOR, pages[i].file_offset, tags[i]);
		else
			ret = vhdx_io_zero_range(l->io, pages[i].file_offset, pages[i].zero_length, tags[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int vhdx_journal_finish(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j)
{
	static const uint8_t zero_guid[16];
	int ret;

	if (!j->active)
		return 0;
	/* every applied page durable first: then no entry is needed any more */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	j->tail_pinned = false;
	ret = vhdx_header_update(l, s, zero_guid, 0);
	if (ret < 0)
		return ret;
	j->active = false;
	return 0;
}
