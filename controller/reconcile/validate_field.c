// SPDX-License-Identifier: Apache-2.0
/*
 * validate_field.c - the checks of one JSON field that the Sandbox check
 * is built from: type, length, range, DNS names, and a value quoted
 * safely for a message. Reads the JSON tree only; allocates nothing.
 */
#include "reconcile/validate_field.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Kubernetes' limit for a DNS-1123 subdomain. */
#define SUBDOMAIN_MAX_LEN 253

int validate__fail(struct validation_error *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    snprintf(e->field, sizeof(e->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

const char *validate__at(field_t f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f, sizeof(field_t), fmt, ap);
    va_end(ap);
    return f;
}

const char *validate__quote(char *q, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), o = 0, i;

    q[o++] = '"';
    for (i = 0; i < len && i < QUOTE_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            q[o++] = '\\';
            q[o++] = (char)c;
        } else if (c == '\n') {
            memcpy(q + o, "\\n", 2);
            o += 2;
        } else if (c == '\t') {
            memcpy(q + o, "\\t", 2);
            o += 2;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(q + o, QUOTE_MAX - o, "\\x%02x", c);
        } else {
            q[o++] = (char)c;
        }
    }
    if (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) {
        /* Cut inside a character: drop its first bytes too. */
        while (o > 1 && ((unsigned char)q[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 1 && (unsigned char)q[o - 1] >= 0xC0)
            o--;
    }
    q[o++] = '"';
    if (i < len) {
        memcpy(q + o, "...", 3);
        o += 3;
    }
    q[o] = '\0';
    return q;
}

const json_t *validate__member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Number of UTF-8 characters in s[0..len). */
static size_t chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

int validate__text(struct validation_error *e, const char *f, const json_t *v, size_t max,
                   enum text_rule rule)
{
    if (!json_is_string(v))
        return validate__fail(e, f, "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return validate__fail(e, f, "must not contain NUL characters");
    for (size_t i = 0; i < len && rule != TEXT_ANY; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return validate__fail(e, f, "must not contain control characters (found \\x%02x)", c);
        if (c == ' ' && rule == TEXT_NO_SPACE)
            return validate__fail(e, f, "must not contain spaces");
    }
    size_t n = chars(s, len);
    if (n > max)
        return validate__fail(e, f, "must be at most %zu characters long, not %zu", max, n);
    return 0;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool validate__is_label(const char *s, size_t len)
{
    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Kubernetes' IsDNS1123Subdomain: labels joined by '.', at most 253 in all
 * (no per-label limit, as there). */
static bool is_subdomain(const char *s, size_t len)
{
    if (len == 0 || len > SUBDOMAIN_MAX_LEN)
        return false;
    for (size_t start = 0;;) {
        const char *dot = memchr(s + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - s) : len;
        if (!validate__is_label(s + start, end - start))
            return false;
        if (!dot)
            return true;
        start = end + 1;
    }
}

int validate__subdomain(struct validation_error *e, const char *f, const json_t *v,
                        const char *example)
{
    char q[QUOTE_MAX];
    if (validate__text(e, f, v, SUBDOMAIN_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (!is_subdomain(json_string_value(v), json_string_length(v)))
        return validate__fail(
            e, f,
            "must be a DNS subdomain: lowercase letters, digits, '-' and '.', each "
            "part starting and ending with a letter or digit (e.g. \"%s\"), not %s",
            example, validate__quote(q, v));
    return 0;
}

int validate__int(struct validation_error *e, const char *f, const json_t *v, long long min,
                  long long max, const char *why)
{
    if (!json_is_integer(v))
        return validate__fail(e, f, "must be an integer");
    long long n = json_integer_value(v);
    if (n < min || n > max)
        return validate__fail(e, f, "must be from %lld to %lld%s, not %lld", min, max, why, n);
    return 0;
}

int validate__bool(struct validation_error *e, const char *f, const json_t *v)
{
    return json_is_boolean(v) ? 0 : validate__fail(e, f, "must be true or false");
}

long validate__array(struct validation_error *e, const char *f, const json_t *v, size_t max)
{
    if (!json_is_array(v))
        return validate__fail(e, f, "must be an array");
    size_t n = json_array_size(v);
    if (n > max)
        return validate__fail(e, f, "must have at most %zu items, not %zu", max, n);
    return (long)n;
}

int validate__object(struct validation_error *e, const char *f, const json_t *v)
{
    return json_is_object(v) ? 0 : validate__fail(e, f, "must be an object");
}

bool validate__is_one_of(const json_t *v, const char *const *words)
{
    for (; *words; words++)
        if (json_string_length(v) == strlen(*words) && strcmp(json_string_value(v), *words) == 0)
            return true;
    return false;
}
