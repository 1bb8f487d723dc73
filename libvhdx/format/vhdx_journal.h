/*
 * vhdx_journal.h - the VHDX log writer used by the write path (see
 * vhdx_journal.c for the commit protocol and why each flush is where it is).
 */
#ifndef VHDX_FORMAT_JOURNAL_H
#define VHDX_FORMAT_JOURNAL_H

#include "codec/vhdx_log_codec.h"
#include "format/vhdx_format.h"

struct vhdx_journal {
	bool active;          /* a session is open: LogGuid is set in the headers */
	uint8_t log_guid[16];
	uint64_t log_off;     /* file offset of the ring */
	uint32_t log_len;
	uint32_t head;        /* ring offset of the next entry */
	uint32_t tail;        /* ring offset of the oldest entry still needed */
	bool tail_pinned;     /* pages applied since the last file flush: entries from tail on are needed */
	uint64_t seq;         /* sequence number of the next entry */
	uint64_t entries, pages;
};

/**
 * Starts a write session: a fresh LogGuid, FileWriteGuid and DataWriteGuid
 * written through the header protocol.  0 or -errno.
 */
int vhdx_journal_start(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j);

/**
 * vhdx_journal_start() renewing only the GUIDs HDR_FLAGS asks for
 * (VHDX_HDR_NEW_*): metadata-only changes such as a new parent locator
 * renew FileWriteGuid but keep DataWriteGuid, which children link to.
 */
int vhdx_journal_start_flags(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j, unsigned hdr_flags);

/** Tells the journal that the file was just flushed: every applied page is durable. */
void vhdx_journal_file_flushed(struct vhdx_journal *j);

/**
 * Journals PAGES[0..N) (TAGS name the structure of each, for I/O tagging),
 * then applies them in place.  The caller has flushed the payload data and
 * the file size (FILE_SIZE) beforehand.  One flush of the file inside.
 * The entry must fit in the ring (callers batch by vhdx_log_entry_size).
 */
int vhdx_journal_commit(struct vhdx_layer *l, struct vhdx_journal *j, const struct vhdx_log_page *pages,
			const enum vhdx_tag *tags, size_t n, uint64_t file_size);

/** Ends the session: flush, then LogGuid cleared through the header protocol. */
int vhdx_journal_finish(struct vhdx_layer *l, struct vhdx_state *s, struct vhdx_journal *j);

#endif
