// SPDX-License-Identifier: Apache-2.0
/*
 * jsonscan.c - string-aware byte scans over JSON text. They never build a
 * tree; they find a member by name and skip its value by bracket depth, so
 * they cost about one pass over the bytes.
 */
#include "kube/jsonscan.h"

#include <stdbool.h>
#include <string.h>

static const char *const managed_fields[] = {"managedFields", NULL};

/* Index just past the string starting at s[i] == '"', or n if unterminated. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t skip_space(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Index just past the value starting at s[i], or 0 when it is not well
 * formed (a value never ends at index 0). */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return 0;
    if (s[i] == '"') {
        size_t e = skip_string(s, i, n);
        return e < n || (e == n && s[n - 1] == '"') ? e : 0;
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return 0;
    }
    /* A number, true, false or null runs to the next delimiter. */
    size_t start = i;
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
           s[i] != '\r' && s[i] != '\t')
        i++;
    return i > start ? i : 0;
}

/* Whether the string token s[0..n) (quotes included) is one of names.
 * Called for most strings of an event: most names fail on the first byte. */
static bool is_named(const char *s, size_t n, const char *const *names)
{
    if (n < 2)
        return false;
    const char *key = s + 1;
    size_t k = n - 2;
    for (; *names; names++) {
        const char *w = *names;
        size_t j = 0;
        while (j < k && w[j] == key[j] && w[j])
            j++;
        if (j == k && w[j] == '\0')
            return true;
    }
    return false;
}

int jsonscan_strip_managed_fields(char *buf, size_t *len)
{
    return jsonscan_strip_members(buf, len, managed_fields);
}

int jsonscan_strip_members(char *buf, size_t *len, const char *const *names)
{
    size_t n = *len, i = 0;
    int removed = 0;
    /* The index of the last structural character before the current token:
     * '{' or ',' when a member key may start here. */
    char prev = 0;
    size_t prev_at = 0;

    while (i < n) {
        char c = buf[i];
        if (c != '"') {
            if (c == '{' || c == ',' || c == '[' || c == ':' || c == '}' || c == ']') {
                prev = c;
                prev_at = i;
            }
            i++;
            continue;
        }
        size_t end = skip_string(buf, i, n);
        if ((prev == '{' || prev == ',') && is_named(buf + i, end - i, names)) {
            size_t colon = skip_space(buf, end, n);
            if (colon < n && buf[colon] == ':') {
                size_t vstart = skip_space(buf, colon + 1, n);
                size_t vend = skip_value(buf, vstart, n);
                if (vend) {
                    size_t after = skip_space(buf, vend, n);
                    size_t cut_from, cut_to;
                    if (prev == ',') {
                        cut_from = prev_at; /* drop ",<member>" */
                        cut_to = vend;
                    } else if (after < n && buf[after] == ',') {
                        cut_from = i; /* first member: drop "<member>," */
                        cut_to = after + 1;
                    } else {
                        cut_from = i; /* the only member */
                        cut_to = vend;
                    }
                    memmove(buf + cut_from, buf + cut_to, n - cut_to);
                    n -= cut_to - cut_from;
                    removed++;
                    i = cut_from;
                    if (prev == ',') {
                        /* the ',' is gone: the last structural char is unknown
                         * here, but the next one read will be ',' or '}'. */
                        prev = 0;
                    }
                    continue;
                }
            }
        }
        prev = '"';
        i = end;
    }
    if (n < *len)
        buf[n] = '\0';
    *len = n;
    return removed;
}
