// SPDX-License-Identifier: Apache-2.0
/*
 * utf8.c - byte limits that respect UTF-8: every message kage copies from
 * the API server or builds for a status or an Event goes through these.
 */
#include "utf8.h"

#include <stdbool.h>
#include <string.h>

size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    /* s[n] is the first byte left out: step back off its continuation bytes. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

void utf8_trim_tail(char *s)
{
    size_t len = strlen(s), lead = len;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return;
    unsigned char c = (unsigned char)s[lead - 1];
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len - (lead - 1) < need)
        s[lead - 1] = '\0';
}

/* The length of the UTF-8 sequence at s (1 to 4), or 0 when s does not
 * start a valid one (stray continuation, overlong or truncated form). */
static size_t seq_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80                    ? 1
               : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] > 0x9F) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

/* Whether the sequence of n bytes at s is a control to blank out. */
static bool is_control(const unsigned char *s, size_t n)
{
    if (n == 1)
        return s[0] < 0x20 || s[0] == 0x7F;
    if (n == 2)
        return s[0] == 0xC2 && s[1] < 0xA0; /* C1: U+0080..U+009F */
    if (n != 3)
        return false;
    unsigned cp = (unsigned)(s[0] & 0x0F) << 12 | (unsigned)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

size_t utf8_clean_line(char *out, size_t outlen, const char *in)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t w = 0, room = outlen - 4; /* keeps space for "..." and the NUL */
    bool space = false, cut = false;
    while (*p) {
        size_t n = seq_len(p);
        const char *piece = (const char *)p;
        size_t len = n;
        if (n == 0) {
            piece = "?";
            len = 1;
            n = 1;
        } else if (is_control(p, n) || (n == 1 && *p == ' ')) {
            space = w > 0;
            p += n;
            continue;
        }
        if (w + (space ? 1 : 0) + len > room) {
            cut = true;
            break;
        }
        if (space)
            out[w++] = ' ';
        space = false;
        memcpy(out + w, piece, len);
        w += len;
        p += n;
    }
    if (cut) {
        memcpy(out + w, "...", 3);
        w += 3;
    }
    out[w] = '\0';
    return w;
}
