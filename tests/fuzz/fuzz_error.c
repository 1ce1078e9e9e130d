// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_error.c - failed API responses: the input as the body of responses
 * with various codes and Retry-After headers, as a watch ERROR object, and
 * as a Retry-After value itself. Every error must come out bounded,
 * terminated and valid UTF-8 (it is logged and put into statuses).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube/error.h"

#include "fuzz.h"

static void check_error(const struct kube_error *e, long code)
{
    FUZZ_CHECK(e->code == code);
    FUZZ_CHECK(fuzz_str_ok(e->reason, sizeof(e->reason)));
    FUZZ_CHECK(fuzz_str_ok(e->message, sizeof(e->message)));
    FUZZ_CHECK(e->message[0] != '\0');
    FUZZ_CHECK(e->retry_after_s >= -1 && e->retry_after_s <= KUBE_RETRY_AFTER_MAX_S);
    /* The predicates agree with each other. */
    FUZZ_CHECK(!(kube_error_is_conflict(e) && kube_error_is_already_exists(e)));
    FUZZ_CHECK(kube_error_is_not_found(e) == (e->code == 404));
}

/* What a header value of only digits must give: the number, capped. */
static long digits_value(const char *s)
{
    long v = 0;
    for (; *s && v < KUBE_RETRY_AFTER_MAX_S; s++)
        v = v * 10 + (*s - '0');
    return v < KUBE_RETRY_AFTER_MAX_S ? v : KUBE_RETRY_AFTER_MAX_S;
}

static void check_retry_after(const char *value)
{
    long secs = -7;
    int rc = kube_parse_retry_after_at(value, 1764324000 /* 2025-11-28 */, &secs);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc != 0) {
        FUZZ_CHECK(secs == -7);
        return;
    }
    FUZZ_CHECK(secs >= 0 && secs <= KUBE_RETRY_AFTER_MAX_S);
    /* Delta-seconds, surrounding whitespace allowed. */
    const char *p = value + strspn(value, " \t\r\n");
    size_t n = strspn(p, "0123456789");
    if (n > 0 && p[n + strspn(p + n, " \t\r\n")] == '\0') {
        char digits[64];
        if (n < sizeof(digits)) {
            memcpy(digits, p, n);
            digits[n] = '\0';
            FUZZ_CHECK(secs == digits_value(digits));
        }
    }
    long now = -7;
    FUZZ_CHECK(kube_parse_retry_after(value, &now) == 0 && now >= 0 &&
               now <= KUBE_RETRY_AFTER_MAX_S);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long codes[] = {0,   400, 401, 403, 404, 409, 410, 422,
                                 429, 500, 502, 503, 504, 599, 999, -1};
    /* The body exactly as received: its own allocation, not terminated. */
    char *body = malloc(size ? size : 1);
    FUZZ_CHECK(body != NULL);
    if (size)
        memcpy(body, data, size);

    /* The first line doubles as a Retry-After header. */
    const uint8_t *nl = memchr(data, '\n', size);
    char *header = fuzz_dup0(data, nl ? (size_t)(nl - data) : size);
    char *whole = fuzz_dup0(data, size);

    struct kube_error e;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        kube_error_from_response(&e, codes[i], body, size, NULL);
        check_error(&e, codes[i]);
    }
    kube_error_from_response(&e, 429, body, size, header);
    check_error(&e, 429);
    kube_error_from_response(&e, 503, body, size, "120");
    check_error(&e, 503);
    FUZZ_CHECK(e.retry_after_s == 120);
    kube_error_from_response(&e, 500, NULL, 0, header);
    check_error(&e, 500);

    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    int rc = kube_error_from_status_json(&e, j);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    FUZZ_CHECK(e.code >= 0 && e.code < 1000);
    FUZZ_CHECK(fuzz_str_ok(e.reason, sizeof(e.reason)) &&
               fuzz_str_ok(e.message, sizeof(e.message)));
    FUZZ_CHECK(e.message[0] != '\0');
    json_decref(j);

    /* A transport message is cut, not cleaned: UTF-8 in, UTF-8 out. */
    kube_error_transport(&e, whole);
    FUZZ_CHECK(e.code == 0 && e.reason[0] == '\0' && e.retry_after_s == -1);
    FUZZ_CHECK(strnlen(e.message, sizeof(e.message)) < sizeof(e.message) && e.message[0]);
    if (fuzz_utf8_valid(whole, strlen(whole)))
        FUZZ_CHECK(fuzz_str_ok(e.message, sizeof(e.message)));

    check_retry_after(header);
    check_retry_after(whole);

    free(whole);
    free(header);
    free(body);
    return 0;
}
