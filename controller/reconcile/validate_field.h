// SPDX-License-Identifier: Apache-2.0
/* validate_field.h - for the Sandbox check (validate*.c) only, not API:
 * checks of one JSON field, and the messages that name it. Pure: no I/O,
 * no allocation. A check returns 0, or -1 with *e filled through
 * validate__fail; f is the field's path, as the message will name it. */
#ifndef KAGE_VALIDATE_FIELD_H
#define KAGE_VALIDATE_FIELD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "reconcile/validate.h"

/* Quoted values in messages show at most this many bytes of the value. */
#define QUOTE_SHOWN 48
#define QUOTE_MAX   (QUOTE_SHOWN * 4 + 8)

typedef char field_t[VALIDATION_FIELD_MAX];

enum text_rule {
    TEXT_ANY,      /* anything but NUL (scripts, arguments, values) */
    TEXT_NO_CTRL,  /* no control characters either */
    TEXT_NO_SPACE, /* no whitespace or control characters */
};

/* Fills *e with field and the formatted message; returns -1. */
__attribute__((format(printf, 3, 4))) int validate__fail(struct validation_error *e,
                                                         const char *field, const char *fmt, ...);

/* Writes a child's path into f (truncated when too long) and returns f. */
__attribute__((format(printf, 2, 3))) const char *validate__at(field_t f, const char *fmt, ...);

/*
 * Renders string v as a double-quoted C-style literal into q[QUOTE_MAX]:
 * quotes, backslashes and control bytes escaped, cut after QUOTE_SHOWN
 * bytes (on a UTF-8 character boundary) with "..." after the closing
 * quote. Returns q.
 */
const char *validate__quote(char *q, const json_t *v);

/* obj[key], or NULL when absent or JSON null. */
const json_t *validate__member(const json_t *obj, const char *key);

/* v is a string of at most max characters (code points) under rule, with
 * no NUL. */
int validate__text(struct validation_error *e, const char *f, const json_t *v, size_t max,
                   enum text_rule rule);

/* s[0..len) is a DNS-1123 label without its length limit:
 * [a-z0-9]([-a-z0-9]*[a-z0-9])? */
bool validate__is_label(const char *s, size_t len);

/* v is a DNS-1123 subdomain as Kubernetes' IsDNS1123Subdomain has it:
 * labels joined by '.', at most 253 characters in all; example is a good
 * value for the message. */
int validate__subdomain(struct validation_error *e, const char *f, const json_t *v,
                        const char *example);

/* v is a JSON integer in [min, max]; why (may be "") ends the range
 * message. */
int validate__int(struct validation_error *e, const char *f, const json_t *v, long long min,
                  long long max, const char *why);

/* v is true or false. */
int validate__bool(struct validation_error *e, const char *f, const json_t *v);

/* v is an array of at most max items; returns its size, or -1. */
long validate__array(struct validation_error *e, const char *f, const json_t *v, size_t max);

/* v is an object. */
int validate__object(struct validation_error *e, const char *f, const json_t *v);

/* True when string v is exactly one of the NULL-terminated words. */
bool validate__is_one_of(const json_t *v, const char *const *words);

#endif
