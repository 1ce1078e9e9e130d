// SPDX-License-Identifier: Apache-2.0
/* utf8.h - cutting text to a byte limit without splitting a UTF-8
 * sequence (a split one makes jansson refuse the whole string). */
#ifndef KAGE_UTF8_H
#define KAGE_UTF8_H

#include <stddef.h>

/* The length of the NUL-terminated s cut to at most max bytes, ending on a
 * character boundary. Reads at most max + 1 bytes of s. */
size_t utf8_cut(const char *s, size_t max);

/* Drops a multi-byte sequence left incomplete at the end of s (as a
 * truncating vsnprintf leaves it), in place. */
void utf8_trim_tail(char *s);

/*
 * Copies the NUL-terminated text in into out[outlen] as one line fit to
 * show a person: every control character (C0, DEL, C1, U+2028/U+2029) and
 * every invisible format control that can hide or reorder text (U+200B to
 * U+200F, U+202A to U+202E, U+2060 to U+2064, U+2066 to U+2069, U+FEFF)
 * becomes a space, a byte that is not part of valid UTF-8 becomes '?',
 * runs of spaces become one, and leading and trailing spaces go. When the
 * result does not fit, it is cut on a character boundary and ends with
 * "...". outlen must be at least 4; out is always terminated. Returns the
 * length written.
 */
size_t utf8_clean_line(char *out, size_t outlen, const char *in);

#endif
