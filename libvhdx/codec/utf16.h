/*
 * utf16.h - UTF-16 (LE for VHDX keys/values, VHD W2ru/W2ku; BE for the VHD
 * parent Unicode name) to and from UTF-8.  Invalid surrogates are an error,
 * never silently replaced, because these strings become file paths.
 */
#ifndef VHDX_CODEC_UTF16_H
#define VHDX_CODEC_UTF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Converts LEN bytes of UTF-16 (BIG_ENDIAN selects the byte order) to a
 * newly allocated NUL-terminated UTF-8 string in *OUT.  Stops at the first
 * NUL code unit when STOP_AT_NUL.  Returns 0, -EINVAL (odd length, bad
 * surrogate, embedded NUL when !STOP_AT_NUL) or -ENOMEM; no message.
 */
int vhdx_utf16_to_utf8(const uint8_t *buf, size_t len, bool big_endian, bool stop_at_nul, char **out);

/**
 * Converts the UTF-8 string S to UTF-16 in a newly allocated buffer *OUT of
 * *OUTLEN bytes (no terminator).  Returns 0, -EINVAL or -ENOMEM; no message.
 */
int vhdx_utf8_to_utf16(const char *s, bool big_endian, uint8_t **out, size_t *outlen);

#endif
