/*
 * cycle_model.c - the model of `vhdx cycle mount`: what the workload may
 * expect of every 512-byte sector of the virtual disk, and the comparison of
 * an image with it.
 *
 * A sector is in one of three states:
 *   KNOWN(k)        its contents are k: the initial contents, or a write
 *                   that returned OK followed by an fsync that returned OK
 *                   (acknowledged), or what verification found last cycle
 *   PENDING(c, p)   a write of p returned OK but no fsync has yet: reads
 *                   must return p; if the fsync fails the sector may hold p
 *                   or any of the candidates c it could hold before
 *   UNCERTAIN(c)    a write to it failed, or the fsync after a write failed:
 *                   it may hold any one of the candidates c (the contents
 *                   before, and every write attempted since) and nothing else
 * An fsync that fails does not make earlier acknowledged sectors uncertain:
 * a failing flush must not undo what an earlier flush made durable.  A
 * sector acknowledged once and overwritten later by a failed write is
 * uncertain until a later write and fsync succeed.
 *
 * Contents are kept as 64-bit XXH3 hashes of the 512 bytes (the workload's
 * data is unique per write and sector, so a hash names a version).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/grow.h"
#include "cycle.h"

enum { S_KNOWN, S_PENDING, S_UNCERTAIN };

struct cand {
	uint64_t h;
	uint32_t next; /* index + 1 in the pool, 0: end */
};

struct cycle_model {
	uint64_t size;
	uint64_t nsec;
	uint64_t *known;     /* KNOWN contents (also the "before" of a PENDING sector's first write) */
	uint64_t *pend;      /* PENDING: the contents written last */
	uint8_t *state;
	uint32_t *cand;      /* head of the sector's candidate list (pool index + 1), 0: none */
	uint32_t *ack_cycle; /* the cycle and op that made KNOWN contents (0: initial or adopted) */
	uint32_t *ack_op;
	uint32_t *pend_cycle, *pend_op;
	struct cand *pool;
	size_t npool, cap;
	bool pool_failed;    /* out of memory for candidates: those sectors accept anything */
	uint64_t zero_hash;
};

uint64_t cycle_sector_hash(const void *sector)
{
	return XXH3_64bits(sector, CYCLE_SECTOR);
}

struct cycle_model *cycle_model_new(uint64_t size)
{
	static const uint8_t zeros[CYCLE_SECTOR];
	struct cycle_model *m;
	uint64_t n = size / CYCLE_SECTOR;

	if (size % CYCLE_SECTOR || n == 0 || n > UINT32_MAX)
		return NULL;
	m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->size = size;
	m->nsec = n;
	m->known = malloc(n * sizeof *m->known);
	m->pend = calloc(n, sizeof *m->pend);
	m->state = calloc(n, 1);
	m->cand = calloc(n, sizeof *m->cand);
	m->ack_cycle = calloc(n, sizeof *m->ack_cycle);
	m->ack_op = calloc(n, sizeof *m->ack_op);
	m->pend_cycle = calloc(n, sizeof *m->pend_cycle);
	m->pend_op = calloc(n, sizeof *m->pend_op);
	if (!m->known || !m->pend || !m->state || !m->cand || !m->ack_cycle || !m->ack_op || !m->pend_cycle ||
	    !m->pend_op) {
		cycle_model_free(m);
		return NULL;
	}
	m->zero_hash = cycle_sector_hash(zeros);
	for (uint64_t i = 0; i < n; i++)
		m->known[i] = m->zero_hash;
	return m;
}

void cycle_model_free(struct cycle_model *m)
{
	if (!m)
		return;
	free(m->known);
	free(m->pend);
	free(m->state);
	free(m->cand);
	free(m->ack_cycle);
	free(m->ack_op);
	free(m->pend_cycle);
	free(m->pend_op);
	free(m->pool);
	free(m);
}

struct cycle_model *cycle_model_copy(const struct cycle_model *m)
{
	struct cycle_model *c = cycle_model_new(m->size);
	uint64_t n = m->nsec;

	if (!c)
		return NULL;
	if (m->npool) {
		c->pool = malloc(m->npool * sizeof *c->pool);
		if (!c->pool) {
			cycle_model_free(c);
			return NULL;
		}
		memcpy(c->pool, m->pool, m->npool * sizeof *c->pool);
		c->npool = c->cap = m->npool;
	}
	memcpy(c->known, m->known, n * sizeof *c->known);
	memcpy(c->pend, m->pend, n * sizeof *c->pend);
	memcpy(c->state, m->state, n);
	memcpy(c->cand, m->cand, n * sizeof *c->cand);
	memcpy(c->ack_cycle, m->ack_cycle, n * sizeof *c->ack_cycle);
	memcpy(c->ack_op, m->ack_op, n * sizeof *c->ack_op);
	memcpy(c->pend_cycle, m->pend_cycle, n * sizeof *c->pend_cycle);
	memcpy(c->pend_op, m->pend_op, n * sizeof *c->pend_op);
	c->pool_failed = m->pool_failed;
	return c;
}

uint64_t cycle_model_size(const struct cycle_model *m)
{
	return m->size;
}

/* Adds H to sector S's candidates (once). */
static void cand_add(struct cycle_model *m, uint64_t s, uint64_t h)
{
	for (uint32_t i = m->cand[s]; i; i = m->pool[i - 1].next)
		if (m->pool[i - 1].h == h)
			return;
	/* the pool's indices are uint32_t, 0 meaning none */
	if (m->npool >= UINT32_MAX - 1 || grow(&m->pool, &m->cap, m->npool + 1, sizeof *m->pool, 1024) < 0) {
		m->pool_failed = true;
		return;
	}
	m->pool[m->npool].h = h;
	m->pool[m->npool].next = m->cand[s];
	m->cand[s] = (uint32_t)++m->npool;
}

static bool cand_has(const struct cycle_model *m, uint64_t s, uint64_t h)
{
	for (uint32_t i = m->cand[s]; i; i = m->pool[i - 1].next)
		if (m->pool[i - 1].h == h)
			return true;
	return false;
}

void cycle_model_write_ok(struct cycle_model *m, uint64_t voff, uint64_t len, const uint64_t *hashes,
			  unsigned cycle, unsigned op)
{
	uint64_t s0 = voff / CYCLE_SECTOR, n = len / CYCLE_SECTOR;

	for (uint64_t i = 0; i < n && s0 + i < m->nsec; i++) {
		uint64_t s = s0 + i;

		switch (m->state[s]) {
		case S_KNOWN:
			/* if the fsync fails, the sector may still hold what it held */
			cand_add(m, s, m->known[s]);
			break;
		case S_PENDING:
			/* an earlier write of this cycle, not yet synced, may be what survives */
			cand_add(m, s, m->pend[s]);
			break;
		default:
			break;
		}
		m->state[s] = S_PENDING;
		m->pend[s] = hashes[i];
		m->pend_cycle[s] = cycle;
		m->pend_op[s] = op;
	}
}

void cycle_model_write_failed(struct cycle_model *m, uint64_t voff, uint64_t len, const uint64_t *hashes)
{
	uint64_t s0 = voff / CYCLE_SECTOR, n = len / CYCLE_SECTOR;

	for (uint64_t i = 0; i < n && s0 + i < m->nsec; i++) {
		uint64_t s = s0 + i;

		if (m->state[s] == S_KNOWN)
			cand_add(m, s, m->known[s]);
		else if (m->state[s] == S_PENDING)
			cand_add(m, s, m->pend[s]);
		/* a failed write may have landed, in whole or sector by sector */
		cand_add(m, s, hashes[i]);
		m->state[s] = S_UNCERTAIN;
	}
}

void cycle_model_fsync(struct cycle_model *m, bool ok)
{
	for (uint64_t s = 0; s < m->nsec; s++) {
		if (m->state[s] != S_PENDING)
			continue;
		if (ok) {
			m->state[s] = S_KNOWN;
			m->known[s] = m->pend[s];
			m->ack_cycle[s] = m->pend_cycle[s];
			m->ack_op[s] = m->pend_op[s];
			m->cand[s] = 0;
		} else {
			cand_add(m, s, m->pend[s]);
			m->state[s] = S_UNCERTAIN;
		}
	}
}

/* Adds sector S (mismatching) to the ranges R (N of them), merging with the last one. */
static void add_range(struct cycle_mismatch *r, unsigned *n, uint64_t s, unsigned cycle, unsigned op)
{
	uint64_t voff = s * CYCLE_SECTOR;

	if (*n && r[*n - 1].voff + r[*n - 1].len == voff && r[*n - 1].ack_cycle == cycle && r[*n - 1].ack_op == op) {
		r[*n - 1].len += CYCLE_SECTOR;
		return;
	}
	if (*n == CYCLE_MAX_MISMATCH)
		return;
	r[*n].voff = voff;
	r[*n].len = CYCLE_SECTOR;
	r[*n].ack_cycle = cycle;
	r[*n].ack_op = op;
	(*n)++;
}

/* Compares sector S holding H with the model; counts a mismatch in CK.  Returns true when it matches. */
static bool check_sector(struct cycle_model *m, uint64_t s, uint64_t h, bool mounted, struct cycle_check *ck)
{
	ck->sectors++;
	switch (m->state[s]) {
	case S_KNOWN:
		if (h == m->known[s])
			return true;
		if (mounted) {
			/* a wrong read while mounted: the read path or the disk; the reopen tells which */
			ck->damaged++;
			add_range(ck->damaged_r, &ck->n_damaged_r, s, m->ack_cycle[s], m->ack_op[s]);
			return false;
		}
		ck->lost++;
		add_range(ck->lost_r, &ck->n_lost_r, s, m->ack_cycle[s], m->ack_op[s]);
		return false;
	case S_PENDING:
		/* while mounted a write that returned OK must read back; after the unmount it may not have been synced */
		if (h == m->pend[s] || (!mounted && (m->pool_failed || cand_has(m, s, h))))
			return true;
		break;
	default:
		if (m->pool_failed || cand_has(m, s, h))
			return true;
		if (mounted) {
			/* a failed write's sector with foreign bytes: torn, as the reopen will say
			 * (issue #15 item 9: one class for the same sector at both times) */
			ck->torn++;
			return true;
		}
		break;
	}
	ck->damaged++;
	add_range(ck->damaged_r, &ck->n_damaged_r, s, 0, 0);
	return false;
}

uint64_t cycle_model_check_read(struct cycle_model *m, uint64_t voff, const uint8_t *buf, uint64_t len,
				struct cycle_check *ck)
{
	uint64_t bad = 0, s0 = voff / CYCLE_SECTOR;

	for (uint64_t i = 0; i < len / CYCLE_SECTOR && s0 + i < m->nsec; i++) {
		if (m->state[s0 + i] == S_UNCERTAIN)
			ck->uncertain++;
		if (!check_sector(m, s0 + i, cycle_sector_hash(buf + i * CYCLE_SECTOR), true, ck))
			bad++;
	}
	return bad;
}

/* After a verification: sector S holds H from now on. */
static void adopt(struct cycle_model *m, uint64_t s, uint64_t h)
{
	if (m->state[s] == S_PENDING && h == m->pend[s]) {
		/* written OK, not synced by the workload, but there after the unmount */
		m->ack_cycle[s] = m->pend_cycle[s];
		m->ack_op[s] = m->pend_op[s];
	} else if (m->state[s] != S_KNOWN || h != m->known[s]) {
		/* contents no acknowledged write made: none to name in later reports */
		m->ack_cycle[s] = 0;
		m->ack_op[s] = 0;
	}
	m->known[s] = h;
	m->state[s] = S_KNOWN;
	m->cand[s] = 0;
}

int cycle_model_verify(struct cycle_model *m, struct vhdx_image *img, bool adopt_only, struct cycle_check *ck)
{
	const size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);
	uint64_t voff = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (voff < m->size) {
		struct vhdx_extent ext;
		uint64_t end;

		ret = vhdx_map(img, voff, m->size - voff, &ext);
		if (ret < 0)
			break;
		if (ext.len == 0 || ext.len > m->size - voff) {
			ret = -EIO;
			break;
		}
		end = voff + ext.len;
		if (ext.kind == VHDX_EXTENT_ZERO) {
			/* no bytes to read: every sector of the extent is zeros */
			for (uint64_t s = voff / CYCLE_SECTOR; s < (end + CYCLE_SECTOR - 1) / CYCLE_SECTOR; s++) {
				if (!adopt_only) {
					if (m->state[s] != S_KNOWN)
						ck->uncertain++;
					check_sector(m, s, m->zero_hash, false, ck);
				}
				adopt(m, s, m->zero_hash);
			}
			voff = end;
			continue;
		}
		while (voff < end) {
			uint64_t n = end - voff < chunk ? end - voff : chunk;
			ssize_t got;

			/* whole sectors: an extent ends on a sector boundary of the 512-byte grid or at the end */
			got = vhdx_pread(img, buf, (size_t)n, voff);
			if (got < 0) {
				ret = (int)got;
				goto out;
			}
			if ((uint64_t)got != n) {
				ret = -EIO;
				goto out;
			}
			for (uint64_t i = 0; i < n / CYCLE_SECTOR; i++) {
				uint64_t s = voff / CYCLE_SECTOR + i;
				uint64_t h = cycle_sector_hash(buf + i * CYCLE_SECTOR);

				if (!adopt_only) {
					if (m->state[s] != S_KNOWN)
						ck->uncertain++;
					check_sector(m, s, h, false, ck);
				}
				adopt(m, s, h);
			}
			voff += n;
		}
	}
out:
	free(buf);
	if (ret == 0) {
		m->npool = 0;
		m->pool_failed = false;
	}
	return ret;
}
