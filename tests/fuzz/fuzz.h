// SPDX-License-Identifier: Apache-2.0
/* fuzz.h - what the libFuzzer targets share: a check that stops the run
 * with a reproducer when an invariant breaks, and small string helpers.
 * Header-only, so each target stays one program. */
#ifndef KAGE_FUZZ_H
#define KAGE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant of the code under test; a failure aborts, which libFuzzer
 * reports as a crash and saves the input for. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* A malloc'd NUL-terminated copy of data[0..n) (abort on ENOMEM: the
 * harness, not the code under test, failed). */
static inline char *fuzz_dup0(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates),
 * as jansson requires of every string it is given. */
static inline bool fuzz_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* A NUL-terminated, valid UTF-8 string inside a buffer of size bytes. */
static inline bool fuzz_str_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    return n < size && fuzz_utf8_valid(s, n);
}

#endif
