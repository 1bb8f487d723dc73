/*
 * rule_num.h - the numbers of the fault-rule language, read the same way by
 * the fault engine and by `vhdx cycle` (header-only; not part of the API).
 */
#ifndef COMMON_RULE_NUM_H
#define COMMON_RULE_NUM_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Reads the N characters at S as a rule number: decimal ("010" is ten, not
 * octal) or 0x hex, then an optional binary suffix K, M, G or T, each
 * optionally followed by i and B ("4K", "4KiB", "4KB").  No sign, no
 * spaces.  0 with *OUT set, or -1 (not a number, or it overflows 64 bits).
 */
static inline int rule_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i = 0;
	unsigned base = 10;

	if (n == 0)
		return -1;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i >= n || !isxdigit((unsigned char)s[i]))
		return -1;
	for (; i < n; i++) {
		unsigned d;
		unsigned char c = (unsigned char)s[i];
		if (isdigit(c))
			d = c - '0';
		else if (base == 16 && isxdigit(c))
			d = (unsigned)(tolower(c) - 'a' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	if (i < n) {
		switch (toupper((unsigned char)s[i])) {
		case 'K': mul = 1ull << 10; break;
		case 'M': mul = 1ull << 20; break;
		case 'G': mul = 1ull << 30; break;
		case 'T': mul = 1ull << 40; break;
		default: return -1;
		}
		i++;
		if (i < n && (s[i] == 'i' || s[i] == 'I'))
			i++;
		if (i < n && (s[i] == 'B' || s[i] == 'b'))
			i++;
		if (i != n)
			return -1;
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

#endif
