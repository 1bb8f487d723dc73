/*
 * splitmix.h - splitmix64 (Steele, Lea, Flood 2014), the one PRNG of the
 * tree: small, good, and the same everywhere, so a seed reproduces
 * (header-only; shared by the library, the programs and the tests).
 */
#ifndef COMMON_SPLITMIX_H
#define COMMON_SPLITMIX_H

#include <stdint.h>

#define SPLITMIX64_GAMMA 0x9e3779b97f4a7c15ull

/* A well-mixed 64-bit value of X: one step's output from the state X. */
static inline uint64_t splitmix64_mix(uint64_t x)
{
	x += SPLITMIX64_GAMMA;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The next value of the stream whose state is *STATE (and steps it). */
static inline uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t out = splitmix64_mix(*state);

	*state += SPLITMIX64_GAMMA;
	return out;
}

#endif
