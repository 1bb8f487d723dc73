/*
 * fault_rules.c - the fault rule language (fault.h, issue #6): parsing one
 * line into a struct vhdx_fault_rule with precise messages, matching a
 * request against its keys, and deciding whether it fires on a matching
 * call (nth=, after=, every=, prob= with a per-rule deterministic PRNG,
 * once).  No I/O and no locking here: the engine (fault_engine.c) holds its
 * lock around every call that changes a rule's state.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/rule_num.h"
#include "common/splitmix.h"
#include "internal.h"
#include "io/fault.h"

static const char *const op_names[VHDX_FOP__COUNT] = {
	[VHDX_FOP_READ] = "read",         [VHDX_FOP_WRITE] = "write", [VHDX_FOP_FLUSH] = "flush",
	[VHDX_FOP_TRUNCATE] = "truncate", [VHDX_FOP_OPEN] = "open",   [VHDX_FOP_CLOSE] = "close",
	[VHDX_FOP_LOCK] = "lock",
};

const char *vhdx_fault_op_name(enum vhdx_fault_op op)
{
	return (unsigned)op < VHDX_FOP__COUNT ? op_names[op] : "?";
}

/* struct= names: short words, unlike vhdx_tag_name()'s prose used in messages. */
static const char *const tag_words[VHDX_TAG__COUNT] = {
	[VHDX_TAG_OTHER] = "other",       [VHDX_TAG_FILEID] = "fileid", [VHDX_TAG_HEADER] = "header",
	[VHDX_TAG_REGION] = "region",     [VHDX_TAG_METADATA] = "metadata", [VHDX_TAG_LOG] = "log",
	[VHDX_TAG_BAT] = "bat",           [VHDX_TAG_BITMAP] = "bitmap", [VHDX_TAG_PAYLOAD] = "payload",
	[VHDX_TAG_FOOTER] = "footer",     [VHDX_TAG_DYNHDR] = "dynhdr",
};

const char *vhdx_fault_tag_name(enum vhdx_tag tag)
{
	return (unsigned)tag < VHDX_TAG__COUNT ? tag_words[tag] : "?";
}

#define E(x) { #x, x }
static const struct {
	const char *name;
	int err;
} errnos[] = {
	E(EIO),       E(ENOSPC),    E(EROFS),     E(EBADMSG),   E(ETIMEDOUT), E(ENOMEM),    E(EACCES),
	E(EPERM),     E(ENOENT),    E(EAGAIN),    E(EINTR),     E(EINVAL),    E(ENODEV),    E(ENXIO),
	E(EFBIG),     E(EDQUOT),    E(ESTALE),    E(ENOTSUP),   E(ECONNRESET), E(EPIPE),    E(EBUSY),
	E(EFAULT),    E(EEXIST),    E(ENOTCONN),  E(EMFILE),    E(ENFILE),    E(EREMOTEIO), E(ENOLINK),
	E(ECANCELED), E(EILSEQ),    E(EOVERFLOW), E(ERANGE),    E(EDEADLK),   E(ENOLCK),    E(ENOTDIR),
	E(EISDIR),    E(ELOOP),     E(ENAMETOOLONG), E(ESHUTDOWN), E(EHOSTDOWN), E(ENOMEDIUM),
	E(EMEDIUMTYPE), E(ENODATA), E(ENOSYS),    E(ETXTBSY),   E(ECONNABORTED), E(ECONNREFUSED),
	E(EHOSTUNREACH), E(ENETDOWN), E(ENETUNREACH), E(ENOBUFS), E(EPROTO), E(EUCLEAN),
	E(EOPNOTSUPP), E(EWOULDBLOCK), E(EDEADLOCK),
};
#undef E

const char *vhdx_fault_errno_name(int err, char *buf, size_t buflen)
{
	for (size_t i = 0; i < VHDX_ARRAY_LEN(errnos); i++)
		if (errnos[i].err == err)
			return errnos[i].name;
	snprintf(buf, buflen, "errno %d", err);
	return buf;
}

static int errno_parse(const char *s, size_t n, int *out)
{
	uint64_t v;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(errnos); i++)
		if (strlen(errnos[i].name) == n && !strncasecmp(errnos[i].name, s, n)) {
			*out = errnos[i].err;
			return 0;
		}
	if (rule_parse_u64(s, n, &v) == 0 && v >= 1 && v <= 4095) {
		*out = (int)v;
		return 0;
	}
	return -1;
}

/* ---------------------------------------------------------------- parser */

struct parse {
	const char *source;
	unsigned lineno;
	struct vhdx_fault_rule *r;
	unsigned seen; /* keys already given, bit per key index */
};

static int perr(const struct parse *p, const char *fmt, ...) VHDX_PRINTF(2, 3);
static int perr(const struct parse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->source)
		return vhdx_err(EINVAL, "%s line %u: %s", p->source, p->lineno, msg);
	return vhdx_err(EINVAL, "line %u: %s", p->lineno, msg);
}

/* START-END (inclusive), START+LEN, or N */
static int parse_range(struct parse *p, const char *key, const char *v, size_t n, uint64_t *first, uint64_t *last)
{
	const char *sep = NULL;
	uint64_t a, b;

	for (size_t i = 1; i < n; i++)
		if (v[i] == '-' || v[i] == '+') {
			sep = v + i;
			break;
		}
	if (!sep) {
		if (rule_parse_u64(v, n, &a) < 0)
			return perr(p, "%s=%.*s: not a number or range (START-END, START+LEN)", key, (int)n, v);
		*first = *last = a;
		return 0;
	}
	if (rule_parse_u64(v, (size_t)(sep - v), &a) < 0 ||
	    rule_parse_u64(sep + 1, n - (size_t)(sep + 1 - v), &b) < 0)
		return perr(p, "%s=%.*s: not a range (START-END, START+LEN)", key, (int)n, v);
	if (*sep == '+') {
		if (b == 0)
			return perr(p, "%s=%.*s: empty range", key, (int)n, v);
		if (vhdx_add_ovf(a, b - 1, &b))
			return perr(p, "%s=%.*s: range overflows", key, (int)n, v);
	} else if (b < a) {
		return perr(p, "%s=%.*s: end before start", key, (int)n, v);
	}
	*first = a;
	*last = b;
	return 0;
}

static int parse_count(struct parse *p, const char *key, const char *v, size_t n, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	uint64_t x;

	if (rule_parse_u64(v, n, &x) < 0)
		return perr(p, "%s=%.*s: not a number", key, (int)n, v);
	if (x < min || x > max)
		return perr(p, "%s=%.*s: must be from %llu to %llu", key, (int)n, v, (unsigned long long)min,
			    (unsigned long long)max);
	*out = x;
	return 0;
}

enum key {
	K_OP, K_FILE, K_OFF, K_VOFF, K_STRUCT, K_NTH, K_AFTER, K_EVERY, K_PROB, K_SEED, K_ONCE,
	K_ERR, K_DELAY, K_SHORT, K_TORN, K_FLIP, K_CRASH, K__COUNT
};
static const char *const key_names[K__COUNT] = {
	"op", "file", "off", "voff", "struct", "nth", "after", "every", "prob", "seed", "once",
	"err", "delay", "short", "torn", "flip", "crash",
};

static int parse_word(struct parse *p, const char *w, size_t wn)
{
	struct vhdx_fault_rule *r = p->r;
	const char *eq = memchr(w, '=', wn);
	size_t kn = eq ? (size_t)(eq - w) : wn;
	const char *v = eq ? eq + 1 : NULL;
	size_t vn = eq ? wn - kn - 1 : 0;
	int k = -1;
	uint64_t x;

	for (int i = 0; i < K__COUNT; i++)
		if (strlen(key_names[i]) == kn && !strncmp(key_names[i], w, kn))
			k = i;
	if (k < 0)
		return perr(p, "unknown key '%.*s'", (int)kn, w);
	if (p->seen & (1u << k))
		return perr(p, "%s given twice", key_names[k]);
	p->seen |= 1u << k;
	if (k == K_ONCE || k == K_CRASH) {
		if (eq)
			return perr(p, "%s takes no value", key_names[k]);
	} else if (!eq || vn == 0) {
		return perr(p, "%s needs a value (%s=...)", key_names[k], key_names[k]);
	}

	switch (k) {
	case K_OP:
		r->op_mask = 0;
		if (vn == 3 && !strncmp(v, "any", 3)) {
			r->op_mask = VHDX_FOP_ALL;
			break;
		}
		for (unsigned o = 0; o < VHDX_FOP__COUNT; o++)
			if (strlen(op_names[o]) == vn && !strncmp(op_names[o], v, vn))
				r->op_mask = 1u << o;
		if (!r->op_mask)
			return perr(p, "op=%.*s: unknown operation (read, write, flush, truncate, open, close, lock or any)",
				    (int)vn, v);
		break;
	case K_FILE:
		r->file_glob = strndup(v, vn);
		if (!r->file_glob)
			return vhdx_err(ENOMEM, "out of memory");
		break;
	case K_OFF:
		r->has_off = true;
		return parse_range(p, "off", v, vn, &r->off_first, &r->off_last);
	case K_VOFF:
		r->has_voff = true;
		return parse_range(p, "voff", v, vn, &r->voff_first, &r->voff_last);
	case K_STRUCT:
		/* a comma list is accepted: struct=bat,bitmap */
		for (size_t i = 0; i < vn;) {
			size_t j = i, t;
			while (j < vn && v[j] != ',')
				j++;
			for (t = 0; t < VHDX_TAG__COUNT; t++)
				if (strlen(tag_words[t]) == j - i && !strncmp(tag_words[t], v + i, j - i))
					break;
			if (t == VHDX_TAG__COUNT)
				return perr(p, "struct=%.*s: unknown structure '%.*s' (header, region, metadata, log, bat, bitmap, payload, footer, dynhdr, fileid or other)",
					    (int)vn, v, (int)(j - i), v + i);
			r->tag_mask |= 1u << t;
			i = j + 1;
		}
		break;
	case K_NTH: return parse_count(p, "nth", v, vn, 1, UINT64_MAX, &r->nth);
	case K_AFTER: return parse_count(p, "after", v, vn, 0, UINT64_MAX, &r->after);
	case K_EVERY: return parse_count(p, "every", v, vn, 1, UINT64_MAX, &r->every);
	case K_PROB: {
		char buf[64], *end;
		double d;
		bool pct = vn && v[vn - 1] == '%';
		size_t dn = pct ? vn - 1 : vn;
		if (dn == 0 || dn >= sizeof buf)
			return perr(p, "prob=%.*s: not a number", (int)vn, v);
		memcpy(buf, v, dn);
		buf[dn] = '\0';
		d = strtod(buf, &end);
		if (*end || end == buf)
			return perr(p, "prob=%.*s: not a number", (int)vn, v);
		if (pct)
			d /= 100;
		if (!(d >= 0 && d <= 1))
			return perr(p, "prob=%.*s: must be between 0 and 1 (or 0%% and 100%%)", (int)vn, v);
		r->has_prob = true;
		r->prob = d;
		break;
	}
	case K_SEED:
		if (rule_parse_u64(v, vn, &r->seed) < 0)
			return perr(p, "seed=%.*s: not a number", (int)vn, v);
		r->has_seed = true;
		break;
	case K_ONCE: r->once = true; break;
	case K_ERR:
		if (errno_parse(v, vn, &r->err) < 0)
			return perr(p, "err=%.*s: unknown errno name (EIO, ENOSPC, EROFS, ... or a number 1-4095)",
				    (int)vn, v);
		r->actions |= VHDX_FACT_ERR;
		break;
	case K_DELAY:
		r->actions |= VHDX_FACT_DELAY;
		return parse_count(p, "delay", v, vn, 0, VHDX_FAULT_MAX_DELAY_MS, &r->delay_ms);
	case K_SHORT:
		r->actions |= VHDX_FACT_SHORT;
		if (rule_parse_u64(v, vn, &r->short_bytes) < 0)
			return perr(p, "short=%.*s: not a number of bytes", (int)vn, v);
		break;
	case K_TORN:
		r->actions |= VHDX_FACT_TORN;
		return parse_count(p, "torn", v, vn, 0, UINT64_MAX / 512, &r->torn_sectors);
	case K_FLIP:
		r->actions |= VHDX_FACT_FLIP;
		if (parse_count(p, "flip", v, vn, 1, VHDX_FAULT_MAX_FLIP, &x) < 0)
			return -EINVAL;
		r->flip_bits = (unsigned)x;
		break;
	case K_CRASH: r->actions |= VHDX_FACT_CRASH; break;
	}
	return 0;
}

/* The whole-rule checks, once every word is in. */
static int check_rule(struct parse *p)
{
	struct vhdx_fault_rule *r = p->r;
	const unsigned rw = (1u << VHDX_FOP_READ) | (1u << VHDX_FOP_WRITE);
	unsigned main_acts = r->actions & ~VHDX_FACT_DELAY;

	if (!r->actions)
		return perr(p, "no action (err=, delay=, short=, torn=, flip= or crash)");
	if ((r->actions & VHDX_FACT_SHORT) && (r->actions & VHDX_FACT_TORN))
		return perr(p, "short= and torn= cannot be combined");
	if ((r->actions & VHDX_FACT_FLIP) && main_acts != VHDX_FACT_FLIP)
		return perr(p, "flip= cannot be combined with err=, short=, torn= or crash");
	if ((r->actions & VHDX_FACT_SHORT) && (r->actions & VHDX_FACT_CRASH))
		return perr(p, "short= cannot be combined with crash (use torn= for a write cut by the crash)");
	/* data actions need a data-moving operation: narrow op=any, refuse the others */
	if (r->actions & VHDX_FACT_TORN) {
		if (!(r->op_mask & (1u << VHDX_FOP_WRITE)))
			return perr(p, "torn= applies to writes only (op=write or op=any)");
	}
	if (r->actions & (VHDX_FACT_SHORT | VHDX_FACT_FLIP)) {
		if (!(r->op_mask & rw))
			return perr(p, "%s= applies to reads and writes only", r->actions & VHDX_FACT_SHORT ? "short" : "flip");
		r->op_mask &= rw;
	}
	if (r->actions & VHDX_FACT_TORN)
		r->op_mask &= 1u << VHDX_FOP_WRITE;
	/* keys that only requests with an offset, a tag or a virtual offset can meet */
	if (r->has_off && !(r->op_mask & (rw | (1u << VHDX_FOP_TRUNCATE))))
		return perr(p, "off= cannot match op=%s (it has no file offset)",
			    vhdx_fault_op_name((enum vhdx_fault_op)__builtin_ctz(r->op_mask)));
	if ((r->has_voff || r->tag_mask) && !(r->op_mask & rw))
		return perr(p, "%s= cannot match op=%s (only reads and writes have one)", r->has_voff ? "voff" : "struct",
			    vhdx_fault_op_name((enum vhdx_fault_op)__builtin_ctz(r->op_mask)));
	if (r->has_seed && !r->has_prob && !(r->actions & VHDX_FACT_FLIP))
		return perr(p, "seed= needs prob= or flip=");
	if (!(r->actions & VHDX_FACT_ERR))
		r->err = EIO;
	return 0;
}

void vhdx_fault_rule_free(struct vhdx_fault_rule *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->file_glob);
	free(r);
}

int vhdx_fault_rule_parse(const char *line, const char *source, unsigned lineno, struct vhdx_fault_rule **out)
{
	struct parse p = { .source = source, .lineno = lineno };
	size_t n = 0, end = 0;
	const char *s = line;
	int ret;

	*out = NULL;
	/* the rule text: up to a '#' that starts a word, trimmed */
	while (s[n] && s[n] != '\n') {
		if (s[n] == '#' && (n == 0 || isspace((unsigned char)s[n - 1])))
			break;
		if (!isspace((unsigned char)s[n]))
			end = n + 1;
		n++;
	}
	while (*s && isspace((unsigned char)*s) && s < line + end) {
		s++;
	}
	if (s >= line + end)
		return 0;
	if (end > VHDX_FAULT_MAX_LINE)
		return perr(&p, "longer than %u characters", VHDX_FAULT_MAX_LINE);
	p.r = calloc(1, sizeof *p.r);
	if (!p.r)
		return vhdx_err(ENOMEM, "out of memory");
	p.r->op_mask = VHDX_FOP_ALL;
	p.r->text = strndup(s, (size_t)(line + end - s));
	if (!p.r->text) {
		ret = vhdx_err(ENOMEM, "out of memory");
		goto fail;
	}
	for (const char *w = p.r->text; *w;) {
		size_t wn = 0;
		while (*w && isspace((unsigned char)*w))
			w++;
		while (w[wn] && !isspace((unsigned char)w[wn]))
			wn++;
		if (!wn)
			break;
		ret = parse_word(&p, w, wn);
		if (ret < 0)
			goto fail;
		w += wn;
	}
	ret = check_rule(&p);
	if (ret < 0)
		goto fail;
	p.r->prob_rng = p.r->seed;
	p.r->flip_rng = p.r->seed ^ 0x5f1c0ffee0ddf00dull;
	*out = p.r;
	return 1;
fail:
	vhdx_fault_rule_free(p.r);
	return ret;
}

/* ---------------------------------------------------------------- matching */

bool vhdx_fault_rule_matches(const struct vhdx_fault_rule *r, const struct vhdx_fault_req *q)
{
	if (!(r->op_mask & (1u << q->op)))
		return false;
	if (r->file_glob && fnmatch(r->file_glob, q->path, 0) != 0 &&
	    (!q->base || fnmatch(r->file_glob, q->base, 0) != 0))
		return false;
	if (r->has_off) {
		uint64_t last;
		if (!q->has_foff)
			return false;
		if (q->len == 0) { /* truncate: the new size */
			if (q->foff < r->off_first || q->foff > r->off_last)
				return false;
		} else {
			if (vhdx_add_ovf(q->foff, q->len - 1, &last))
				last = UINT64_MAX;
			if (last < r->off_first || q->foff > r->off_last)
				return false;
		}
	}
	if (r->has_voff) {
		uint64_t last;
		if (q->voff == VHDX_NO_VOFF || q->len == 0)
			return false;
		if (vhdx_add_ovf(q->voff, q->len - 1, &last))
			last = UINT64_MAX;
		if (last < r->voff_first || q->voff > r->voff_last)
			return false;
	}
	if (r->tag_mask && (!q->has_tag || !(r->tag_mask & (1u << q->tag))))
		return false;
	return true;
}

bool vhdx_fault_rule_fires(struct vhdx_fault_rule *r)
{
	uint64_t k = ++r->matched; /* this call is the k-th match (1-based) */

	if (r->once && r->hits)
		return false;
	if (r->nth && k != r->nth)
		return false;
	if (k <= r->after)
		return false;
	if (r->every && (k - r->after) % r->every != 0)
		return false;
	if (r->has_prob) {
		/* one draw per otherwise-firing call: the sequence depends only on the seed */
		double u = (double)(splitmix64_next(&r->prob_rng) >> 11) * 0x1.0p-53;
		if (!(u < r->prob))
			return false;
	}
	return true;
}

unsigned vhdx_fault_rule_flip_positions(struct vhdx_fault_rule *r, uint64_t len, uint64_t *bits)
{
	uint64_t nbits;
	unsigned n;

	if (vhdx_mul_ovf(len, 8, &nbits))
		nbits = UINT64_MAX;
	n = nbits < r->flip_bits ? (unsigned)nbits : r->flip_bits;
	for (unsigned i = 0; i < n;) {
		uint64_t b = splitmix64_next(&r->flip_rng) % nbits;
		bool dup = false;
		for (unsigned j = 0; j < i; j++)
			dup |= bits[j] == b;
		if (!dup)
			bits[i++] = b;
	}
	return n;
}
