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

#endif
