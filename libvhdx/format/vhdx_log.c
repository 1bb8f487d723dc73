/*
 * vhdx_log.c - the VHDX metadata log (MS-VHDX 2.3.2 and 2.3.3, FORMAT.md
 * 1.5): finding the active sequence in the circular log and replaying it,
 * in place on a writable open, into an in-memory overlay on a read-only one
 * (the file is never touched then).
 *
 * Search.  The whole log is read once.  Every 4 KiB offset is tried as an
 * entry; entries that carry the header's LogGuid and pass every check of
 * the codec are the nodes of a graph whose edges join an entry to the one
 * laid right after it (modulo the log length) when that one's sequence
 * number is one higher, it fits the space not held by the live part of the
 * log, and its Tail does not move backwards (the rules openvmm applies while
 * growing a sequence).  Each node has at most one successor, so the chain
 * from any node ends at one head; chains are resolved once each (memoised),
 * which keeps the search linear in the log size however many entries there
 * are.  A chain is acceptable when its head's Tail is one of its entries:
 * then everything the head still needs was seen.  The acceptable chain
 * whose head has the highest sequence number is the active sequence;
 * replay runs from the head's Tail to the head.
 *
 * Why a Tail must be an entry start (not just a byte inside the span, as
 * openvmm checks): replay walks entry by entry from the Tail, so a Tail
 * inside an entry can only be corruption.  And two valid entries can never
 * overlap: every sector of a valid entry is typed by its first bytes
 * ("loge", a descriptor signature, or "data"), so a sector inside one entry
 * cannot be the "loge" start of another.  Hence the chains do not branch
 * and "the Tail is on the chain" is "the Tail is a valid entry with the same
 * head and no farther from it".
 *
 * No acceptable sequence with a non-zero LogGuid is reported, not refused
 * (see vhdx_log.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "format/vhdx_log.h"

#define SECTOR VHDX_LOG_SECTOR

enum { N_UNSEEN = 0, N_ON_STACK, N_DONE };

struct node {
	bool valid;     /* an entry of this log starts here and passed every check */
	bool linked;    /* the entry at .next continues its sequence */
	bool accepted;  /* a head whose chain was found acceptable (counted once) */
	uint8_t state;  /* chain resolution: N_* */
	uint32_t len, tail;
	uint64_t seq;
	uint32_t next;  /* sector index right after the entry (mod the log) */
	uint32_t head;  /* sector index of the head its chain ends at */
	uint64_t span;  /* bytes from this entry's start to the end of that head */
};

static char *fmt_alloc(const char *fmt, ...) VHDX_PRINTF(1, 2);
static char *fmt_alloc(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Length of the circular range [TAIL, HEAD) of a log of L bytes; equal ends mean the whole log. */
static uint64_t ring_span(uint32_t tail, uint32_t head, uint32_t L)
{
	if (head > tail)
		return head - tail;
	if (head < tail)
		return (uint64_t)head + L - tail;
	return L;
}

/* The LEN bytes of the entry at OFF, contiguous: in RING, or in a new *COPY when it wraps. */
static const uint8_t *entry_bytes(const uint8_t *ring, uint32_t L, uint32_t off, uint32_t len, uint8_t **copy)
{
	*copy = NULL;
	if ((uint64_t)off + len <= L)
		return ring + off;
	*copy = malloc(len);
	if (!*copy)
		return NULL;
	memcpy(*copy, ring + off, L - off);
	memcpy(*copy + (L - off), ring, len - (L - off));
	return *copy;
}

void vhdx_log_sequence_free(struct vhdx_log_sequence *seq)
{
	for (size_t i = 0; seq->entries && i < seq->n; i++) {
		vhdx_log_entry_free(&seq->entries[i].e);
		free(seq->entries[i].copy);
	}
	free(seq->entries);
	free(seq->diag);
	free(seq->ring);
	memset(seq, 0, sizeof *seq);
}

/* Decodes every sector that starts an entry of this log; counts and remembers the first rejection. */
static int scan_entries(struct vhdx_log_sequence *out, const uint8_t *guid, struct node *nodes, uint32_t *rejected,
			char **first_reject)
{
	uint32_t L = out->log_length;

	for (uint32_t i = 0; i < L / SECTOR; i++) {
		uint32_t off = i * SECTOR;
		struct vhdx_log_entry e;
		const uint8_t *bytes;
		uint8_t *copy = NULL;
		int ret;

		/* other sessions' leftovers and non-header sectors are not worth a word */
		if (!vhdx_log_entry_matches(out->ring + off, guid))
			continue;
		ret = vhdx_log_entry_header_decode(out->ring + off, SECTOR, L, guid, &e);
		if (ret == 0) {
			bytes = entry_bytes(out->ring, L, off, e.entry_length, &copy);
			if (!bytes)
				return vhdx_err(ENOMEM, "out of memory for a log entry of %u bytes", e.entry_length);
			ret = vhdx_log_entry_decode(bytes, e.entry_length, out->log_offset, L, guid, &e);
			free(copy);
		}
		if (ret == -ENOMEM)
			return ret;
		if (ret < 0) {
			(*rejected)++;
			if (!*first_reject) {
				char *m = vhdx_err_dup();
				const char *why = m ? m : "invalid";
				/* the codec says "log entry: ..."; this says which one */
				if (!strncmp(why, "log entry: ", 11))
					why += 11;
				*first_reject = fmt_alloc("log entry at log offset 0x%x: %s", off, why);
				free(m);
			}
			continue;
		}
		vhdx_log_entry_free(&e);
		nodes[i].valid = true;
		nodes[i].len = e.entry_length;
		nodes[i].tail = e.tail;
		nodes[i].seq = e.seq;
		nodes[i].next = (uint32_t)(((uint64_t)off + e.entry_length) % L / SECTOR);
		out->valid_entries++;
	}
	return 0;
}

/* Joins each valid entry to the one laid after it when that one continues its sequence. */
static void link_entries(struct node *nodes, uint32_t L)
{
	for (uint32_t i = 0; i < L / SECTOR; i++) {
		struct node *a = &nodes[i], *b;
		uint32_t b_off, b_end;

		if (!a->valid)
			continue;
		b = &nodes[a->next];
		b_off = a->next * SECTOR;
		if (!b->valid || a->seq == UINT64_MAX || b->seq != a->seq + 1)
			continue;
		/* it must not overwrite the live part [a.tail, b) of the log */
		if (b->len > L - ring_span(a->tail, b_off, L))
			continue;
		/* and its Tail must lie in [a.tail, end of b): a tail never moves backwards */
		b_end = (uint32_t)(((uint64_t)b_off + b->len) % L);
		if (ring_span(b->tail, b_end, L) > ring_span(a->tail, b_end, L))
			continue;
		a->linked = true;
	}
}

/* Resolves every chain to its head and span, each node once. */
static int resolve_chains(struct node *nodes, uint32_t n)
{
	uint32_t *stack = vhdx_calloc(n, sizeof *stack);

	if (!stack)
		return vhdx_err(ENOMEM, "out of memory");
	for (uint32_t s = 0; s < n; s++) {
		uint32_t sp = 0, k = s;

		if (!nodes[s].valid || nodes[s].state != N_UNSEEN)
			continue;
		for (;;) {
			nodes[k].state = N_ON_STACK;
			stack[sp++] = k;
			if (!nodes[k].linked || nodes[nodes[k].next].state == N_DONE)
				break;
			if (nodes[nodes[k].next].state == N_ON_STACK) {
				/* a loop would need ever-growing sequence numbers: cannot happen; cut it anyway */
				nodes[k].linked = false;
				break;
			}
			k = nodes[k].next;
		}
		while (sp) {
			struct node *a = &nodes[stack[--sp]];
			if (a->linked) {
				a->head = nodes[a->next].head;
				a->span = a->len + nodes[a->next].span;
			} else {
				a->head = stack[sp];
				a->span = a->len;
			}
			a->state = N_DONE;
		}
	}
	free(stack);
	return 0;
}

/* Fills OUT->entries with the chain from sector index T to head H. */
static int collect(struct vhdx_log_sequence *out, const struct node *nodes, uint32_t t, uint32_t h,
		   const uint8_t *guid)
{
	size_t n = 1;
	uint32_t k;
	int ret;

	for (k = t; k != h; k = nodes[k].next)
		n++;
	out->entries = vhdx_calloc(n, sizeof *out->entries);
	if (!out->entries)
		return vhdx_err(ENOMEM, "out of memory");
	k = t;
	for (size_t i = 0; i < n; i++, k = nodes[k].next) {
		struct vhdx_log_seq_entry *se = &out->entries[i];

		se->log_off = k * SECTOR;
		se->bytes = entry_bytes(out->ring, out->log_length, se->log_off, nodes[k].len, &se->copy);
		if (!se->bytes)
			return vhdx_err(ENOMEM, "out of memory");
		out->n = i + 1;
		ret = vhdx_log_entry_decode(se->bytes, nodes[k].len, out->log_offset, out->log_length, guid, &se->e);
		if (ret < 0) {
			/* checked moments ago on the same bytes: only memory can fail here */
			out->n = i;
			free(se->copy);
			se->copy = NULL;
			return vhdx_err_prefix(ret, "log entry at log offset 0x%x", se->log_off);
		}
	}
	return 0;
}

/* Block size of the File Parameters item of the metadata region at MOFF (MLEN bytes), or 0. */
static int file_block_size(struct vhdx_io *io, uint64_t moff, uint32_t mlen, uint32_t *bs)
{
	struct vhdx_metadata_table *t = calloc(1, sizeof *t);
	uint8_t *buf = malloc(VHDX_METADATA_TABLE_SIZE), b8[8];
	const struct vhdx_metadata_entry *e;
	struct vhdx_file_params fp;
	int ret;

	*bs = 0;
	if (!t || !buf) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	ret = vhdx_io_pread(io, buf, VHDX_METADATA_TABLE_SIZE, moff, VHDX_TAG_METADATA);
	if (ret < 0)
		goto out;
	ret = 0;
	if (vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, mlen, t) < 0)
		goto out;
	e = vhdx_metadata_find(t, VHDX_GUID_FILE_PARAMETERS, false);
	if (!e || e->length != 8)
		goto out;
	ret = vhdx_io_pread(io, b8, 8, moff + e->offset, VHDX_TAG_METADATA);
	if (ret == 0 && vhdx_file_params_decode(b8, 8, &fp) == 0)
		*bs = fp.block_size;
out:
	free(t);
	free(buf);
	return ret;
}

/*
 * The largest file a replay may leave (issue #15 item 7: a LastFileOffset
 * of 2^50 with a valid CRC extended a 4 MiB image to 1 PiB).  The spec
 * only says the file grows to LastFileOffset; a log written by a real
 * writer never needs more than the structures the file declares plus a
 * block for every entry its BAT region can hold.  The region table is not
 * changed through the log, so it is read from the file as it is.
 */
static int size_limit(struct vhdx_io *io, const struct vhdx_header *h, uint64_t file_size, uint64_t *limit)
{
	static const uint64_t offs[2] = { VHDX_REGION1_OFF, VHDX_REGION2_OFF };
	struct vhdx_region_table *rt = calloc(1, sizeof *rt);
	uint8_t *buf = malloc(VHDX_REGION_SIZE);
	uint64_t end = VHDX_MAX(file_size, h->log_offset + h->log_length), room = 0;
	int ret = 0;

	if (!rt || !buf) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		const struct vhdx_region_entry *bat, *meta;
		uint32_t bs;
		ret = vhdx_io_pread(io, buf, VHDX_REGION_SIZE, offs[i], VHDX_TAG_REGION);
		if (ret < 0)
			goto out;
		if (vhdx_region_table_decode(buf, VHDX_REGION_SIZE, rt) < 0)
			continue;
		for (uint32_t k = 0; k < rt->entry_count; k++)
			end = VHDX_MAX(end, rt->entries[k].file_offset + rt->entries[k].length);
		bat = vhdx_region_find(rt, VHDX_GUID_BAT_REGION);
		meta = vhdx_region_find(rt, VHDX_GUID_METADATA_REGION);
		bs = 0;
		if (meta) {
			ret = file_block_size(io, meta->file_offset, meta->length, &bs);
			if (ret < 0)
				goto out;
		}
		if (bat)
			room = (uint64_t)(bat->length / 8) * VHDX_MAX(bs ? bs : VHDX_MAX_BLOCK_SIZE, (uint32_t)VHDX_ALIGN);
		break;
	}
	/* both sums stay far below 2^64: regions and log are 32-bit lengths at 1 MiB-aligned 64-bit offsets
	 * the codecs checked, and room is below 2^29 entries times 2^28 bytes */
	if (vhdx_add_ovf(vhdx_round_up(end, VHDX_ALIGN), room, limit))
		*limit = UINT64_MAX;
out:
	free(rt);
	free(buf);
	return ret;
}

int vhdx_log_find(struct vhdx_io *io, const struct vhdx_header *h, struct vhdx_log_sequence *out)
{
	uint32_t L = h->log_length, N = L / SECTOR, rejected = 0, best = UINT32_MAX, best_tail = 0;
	struct node *nodes = NULL;
	char *first_reject = NULL, gs[VHDX_GUID_STRLEN];
	uint64_t file_size;
	int ret;

	memset(out, 0, sizeof *out);
	out->log_offset = h->log_offset;
	out->log_length = L;
	if (L == 0) {
		out->diag = fmt_alloc("LogLength is 0: there is no log to replay");
		return out->diag ? 0 : vhdx_err(ENOMEM, "out of memory");
	}
	ret = vhdx_io_get_size(io, &file_size);
	if (ret < 0)
		return ret;
	/* read the log once, but never trust its length further than the file goes */
	if (!vhdx_range_ok(h->log_offset, L, file_size))
		return vhdx_err(EBADMSG, "log at 0x%llx (+0x%x bytes) extends past the end of the file (0x%llx bytes)",
				(unsigned long long)h->log_offset, L, (unsigned long long)file_size);
	out->ring = malloc(L);
	nodes = vhdx_calloc(N, sizeof *nodes);
	if (!out->ring || !nodes) {
		ret = vhdx_err(ENOMEM, "out of memory for a log of %u bytes", L);
		goto fail;
	}
	ret = vhdx_io_pread(io, out->ring, L, h->log_offset, VHDX_TAG_LOG);
	if (ret < 0)
		goto fail;
	ret = size_limit(io, h, file_size, &out->size_limit);
	if (ret < 0)
		goto fail;

	ret = scan_entries(out, h->log_guid, nodes, &rejected, &first_reject);
	if (ret < 0)
		goto fail;
	link_entries(nodes, L);
	ret = resolve_chains(nodes, N);
	if (ret < 0)
		goto fail;

	for (uint32_t o = 0; o < N; o++) {
		uint32_t hd, t;

		if (!nodes[o].valid)
			continue;
		hd = nodes[o].head;
		t = nodes[hd].tail / SECTOR;
		/* acceptable: the head's Tail is an entry of this chain (same head, not before O) */
		if (!nodes[t].valid || nodes[t].head != hd || nodes[t].span > nodes[o].span)
			continue;
		if (!nodes[hd].accepted) {
			nodes[hd].accepted = true;
			out->candidates++;
		}
		if (best == UINT32_MAX || nodes[hd].seq > nodes[best].seq) {
			best = hd;
			best_tail = t;
		}
	}

	if (best != UINT32_MAX) {
		ret = collect(out, nodes, best_tail, best, h->log_guid);
		if (ret < 0)
			goto fail;
	} else if (out->valid_entries) {
		uint32_t top = UINT32_MAX;
		for (uint32_t i = 0; i < N; i++)
			if (nodes[i].valid && nodes[i].head == i && (top == UINT32_MAX || nodes[i].seq > nodes[top].seq))
				top = i;
		out->diag = fmt_alloc("%u valid entr%s, but no sequence contains its head's Tail (the newest head, seq %llu at log offset 0x%x, has Tail 0x%x)",
				      out->valid_entries, out->valid_entries == 1 ? "y" : "ies",
				      (unsigned long long)nodes[top].seq, top * SECTOR, nodes[top].tail);
	} else if (rejected) {
		out->diag = fmt_alloc("%u entr%s carr%s the LogGuid but fail%s a check (%s)", rejected,
				      rejected == 1 ? "y" : "ies", rejected == 1 ? "ies" : "y", rejected == 1 ? "s" : "",
				      first_reject ? first_reject : "?");
	} else {
		vhdx_guid_format(h->log_guid, gs);
		out->diag = fmt_alloc("no entry in the log carries the LogGuid %s", gs);
	}
	if (!out->n && !out->diag) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto fail;
	}
	free(first_reject);
	free(nodes);
	return 0;
fail:
	free(first_reject);
	free(nodes);
	vhdx_log_sequence_free(out);
	return ret;
}

/* Writes LEN zero bytes at OFF: zeros inside the file, a size change past its end. */
static int zero_range(struct vhdx_io *io, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	uint64_t size, end = off + len, wend; /* no overflow: checked by the codec */
	int ret;

	ret = vhdx_io_get_size(io, &size);
	if (ret < 0)
		return ret;
	wend = VHDX_MIN(end, size);
	for (uint64_t p = off; p < wend; p += sizeof zeros) {
		ret = vhdx_io_pwrite(io, zeros, (size_t)VHDX_MIN((uint64_t)sizeof zeros, wend - p), p, VHDX_TAG_LOG);
		if (ret < 0)
			return ret;
	}
	/* past the end, growing the file gives the same zeros without writing them */
	if (end > size)
		return vhdx_io_set_size(io, end);
	return 0;
}

/* Replay step 1: the head promised the file was at least this long; a shorter file lost data since. */
static int check_flushed(const struct vhdx_log_sequence *seq, uint64_t size)
{
	const struct vhdx_log_seq_entry *head = &seq->entries[seq->n - 1];

	if (size < head->e.flushed_file_offset)
		return vhdx_err(EBADMSG, "log entry at log offset 0x%x (seq %llu): the file is 0x%llx bytes, shorter than the entry's FlushedFileOffset 0x%llx (it was truncated after the log was written); refusing to replay",
				head->log_off, (unsigned long long)head->e.seq, (unsigned long long)size,
				(unsigned long long)head->e.flushed_file_offset);
	return 0;
}

/*
 * Before anything changes: no entry may make the file larger than
 * seq->size_limit, neither through its LastFileOffset nor through a
 * descriptor's range past the end of the file.
 */
static int check_extent(const struct vhdx_log_sequence *seq, uint64_t size)
{
	uint64_t lim = VHDX_MAX(seq->size_limit, size);

	for (size_t i = 0; i < seq->n; i++) {
		const struct vhdx_log_seq_entry *se = &seq->entries[i];
		uint64_t want = se->e.last_file_offset;
		const char *what = "LastFileOffset";
		for (uint32_t k = 0; k < se->e.desc_count; k++) {
			const struct vhdx_log_desc *d = &se->e.descs[k];
			/* no overflow: the codec checked every descriptor's range */
			uint64_t dend = d->file_offset + (d->is_zero ? d->zero_length : SECTOR);
			if (dend > want && dend > lim) {
				want = dend;
				what = d->is_zero ? "the range of a zero descriptor" : "the page of a data descriptor";
			}
		}
		if (want > lim)
			return vhdx_err(EBADMSG, "log entry at log offset 0x%x (seq %llu): %s would extend the file to 0x%llx bytes, more than the 0x%llx this image's structures can need; refusing to replay",
					se->log_off, (unsigned long long)se->e.seq, what, (unsigned long long)want,
					(unsigned long long)lim);
	}
	return 0;
}

int vhdx_log_apply(struct vhdx_io *io, const struct vhdx_log_sequence *seq, uint64_t *old_size,
		   uint64_t *new_size)
{
	const struct vhdx_log_seq_entry *head = &seq->entries[seq->n - 1];
	uint8_t page[SECTOR];
	uint64_t size;
	int ret;

	ret = vhdx_io_get_size(io, &size);
	if (ret < 0)
		return ret;
	if (old_size)
		*old_size = size;
	ret = check_flushed(seq, size);
	if (ret == 0)
		ret = check_extent(seq, size);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < seq->n; i++) {
		const struct vhdx_log_seq_entry *se = &seq->entries[i];
		for (uint32_t k = 0; k < se->e.desc_count; k++) {
			const struct vhdx_log_desc *d = &se->e.descs[k];
			if (d->is_zero) {
				ret = zero_range(io, d->file_offset, d->zero_length);
			} else {
				vhdx_log_entry_page(se->bytes, &se->e, d, page);
				ret = vhdx_io_pwrite(io, page, SECTOR, d->file_offset, VHDX_TAG_LOG);
			}
			if (ret < 0)
				return vhdx_err_prefix(ret, "replaying descriptor %u of the log entry at log offset 0x%x",
						       k, se->log_off);
		}
	}
	ret = vhdx_io_get_size(io, &size);
	if (ret < 0)
		return ret;
	/* LastFileOffset is a 1 MiB multiple (checked by the codec), so this is qemu's round-up too */
	if (size < head->e.last_file_offset) {
		ret = vhdx_io_set_size(io, head->e.last_file_offset);
		if (ret < 0)
			return ret;
		size = head->e.last_file_offset;
	}
	if (new_size)
		*new_size = size;
	return 0;
}

/* "N entries (seq A..B, D descriptors) from log offset 0x..." */
static char *summary(const struct vhdx_log_sequence *seq)
{
	uint64_t ndesc = 0, nzero = 0;

	for (size_t i = 0; i < seq->n; i++) {
		ndesc += seq->entries[i].e.desc_count;
		nzero += seq->entries[i].e.desc_count - seq->entries[i].e.data_count;
	}
	return fmt_alloc("%zu entr%s (seq %llu..%llu, %llu descriptor%s: %llu data, %llu zero) from log offset 0x%x",
			 seq->n, seq->n == 1 ? "y" : "ies", (unsigned long long)seq->entries[0].e.seq,
			 (unsigned long long)seq->entries[seq->n - 1].e.seq, (unsigned long long)ndesc,
			 ndesc == 1 ? "" : "s", (unsigned long long)(ndesc - nzero), (unsigned long long)nzero,
			 seq->entries[0].log_off);
}

static int set_report(struct vhdx_state *s, char *report)
{
	if (!report)
		return vhdx_err(ENOMEM, "out of memory");
	free(s->log_report);
	s->log_report = report;
	return 0;
}

static const uint8_t zero_guid[16];

int vhdx_log_open_dirty(struct vhdx_layer *l, struct vhdx_state *s, unsigned flags)
{
	const struct vhdx_header *h = &s->headers[s->current];
	struct vhdx_log_sequence seq;
	uint64_t old_size = 0, new_size = 0;
	char *sum = NULL, ext[96] = "";
	struct vhdx_io *ov;
	int ret;

	ret = vhdx_log_find(l->io, h, &seq);
	if (ret < 0)
		return ret;

	if (seq.n == 0) {
		/* our policy: nothing to replay, but never silently (see vhdx_log.h) */
		if (l->writable) {
			ret = vhdx_header_update(l, s, zero_guid, VHDX_HDR_NEW_FILE_GUID);
			if (ret < 0)
				goto out;
		}
		ret = set_report(s, fmt_alloc("dirty log, no valid sequence: %s; nothing replayed%s", seq.diag,
					      l->writable ? "; LogGuid cleared" : ""));
		goto out;
	}

	sum = summary(&seq);
	if (!sum) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto out;
	}
	if (!l->writable) {
		if (flags & VHDX_LAYER_NO_REPLAY) {
			ret = vhdx_err(EROFS, "dirty log (LogGuid set; %s to replay); replay it with 'vhdx replay' or open read-write",
				       sum);
			goto out;
		}
		/* the overlay takes the file's io: from here on nothing can reach the file but reads */
		ret = vhdx_io_overlay_new(l->io, &ov);
		if (ret < 0) {
			l->io = NULL;
			goto out;
		}
		l->io = ov;
		ret = vhdx_log_apply(l->io, &seq, &old_size, &new_size);
		if (ret < 0)
			goto out;
		/* a reader has no business writing into the replayed view */
		l->io->readonly = true;
	} else {
		/* refuse a truncated file before the first byte changes */
		ret = vhdx_io_get_size(l->io, &old_size);
		if (ret < 0)
			goto out;
		ret = check_flushed(&seq, old_size);
		if (ret == 0)
			ret = check_extent(&seq, old_size);
		if (ret < 0)
			goto out;
		/*
		 * MS-VHDX 2.2.2: FileWriteGuid changes before the first
		 * modification of the file in a session, log replay included.
		 * The LogGuid stays until the replayed pages are durable.
		 */
		ret = vhdx_header_update(l, s, NULL, VHDX_HDR_NEW_FILE_GUID);
		if (ret < 0)
			goto out;
		ret = vhdx_log_apply(l->io, &seq, &old_size, &new_size);
		if (ret < 0)
			goto out;
		/*
		 * The pages must be durable before the LogGuid goes: after a
		 * crash between the two, the log is still there to replay
		 * again (replay is idempotent); the other order could lose
		 * pages whose only durable copy was the log.
		 */
		ret = vhdx_io_flush(l->io);
		if (ret < 0)
			goto out;
		ret = vhdx_header_update(l, s, zero_guid, 0);
		if (ret < 0)
			goto out;
	}
	if (new_size != old_size)
		snprintf(ext, sizeof ext, "; %s from 0x%llx to 0x%llx bytes",
			 l->writable ? "file extended" : "size seen extended", (unsigned long long)old_size,
			 (unsigned long long)new_size);
	l->log_replayed = true;
	ret = set_report(s, fmt_alloc("replayed %s %s%s", sum,
				      l->writable ? "in place; LogGuid cleared" : "into memory (the file is untouched)",
				      ext));
out:
	free(sum);
	vhdx_log_sequence_free(&seq);
	return ret;
}
