// SPDX-License-Identifier: Apache-2.0
/*
 * error.c - turns failed API responses into struct kube_error: decodes
 * metav1.Status bodies, falls back to the HTTP code for proxies' pages, and
 * reads Retry-After. Every string is bounded and stays NUL-terminated.
 */
#include "kube/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    long code;
    const char *reason;
} code_reasons[] = {
    /* The reasons the API server itself uses for these codes. */
    {400, "BadRequest"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "NotFound"},
    {405, "MethodNotAllowed"},
    {406, "NotAcceptable"},
    {409, "Conflict"},
    {410, "Gone"},
    {413, "RequestEntityTooLarge"},
    {415, "UnsupportedMediaType"},
    {422, "Invalid"},
    {429, "TooManyRequests"},
    {500, "InternalError"},
    {503, "ServiceUnavailable"},
    {504, "Timeout"},
};

static const char *reason_for_code(long code)
{
    for (size_t i = 0; i < sizeof(code_reasons) / sizeof(code_reasons[0]); i++)
        if (code_reasons[i].code == code)
            return code_reasons[i].reason;
    /* As client-go does for 5xx it has no name for (502 from a proxy...). */
    return code >= 500 && code < 600 ? "InternalError" : "";
}

/* Copies src[0..n) into dst[size] (size >= 4). When it does not fit, ends
 * with "..." and cuts on a UTF-8 character boundary. */
static void copy_trunc(char *dst, size_t size, const char *src, size_t n)
{
    if (n < size) {
        memcpy(dst, src, n);
        dst[n] = '\0';
        return;
    }
    size_t keep = size - 4;
    while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(dst, src, keep);
    memcpy(dst + keep, "...", 4);
}

static void copy_json_string(char *dst, size_t size, json_t *s)
{
    if (json_is_string(s))
        copy_trunc(dst, size, json_string_value(s), json_string_length(s));
}

/*
 * Writes a one-line, printable-ASCII rendering of body into dst[size]:
 * controls and whitespace runs become one space, other bytes '?'. A body
 * that starts with '<' is taken for HTML and its tags are dropped, so an
 * nginx "502 Bad Gateway" page reads as such.
 */
static void printable_prefix(char *dst, size_t size, const char *body, size_t len)
{
    size_t i = 0, o = 0;
    bool markup, in_tag = false, gap = false, cut = false;

    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    markup = i < len && body[i] == '<';
    for (; i < len; i++) {
        unsigned char c = (unsigned char)body[i];
        if (markup && c == '<') {
            in_tag = true;
            gap = true;
            continue;
        }
        if (in_tag) {
            in_tag = c != '>';
            continue;
        }
        if (c <= ' ' || c == 0x7f) {
            gap = true;
            continue;
        }
        bool space = gap && o > 0;
        if (o + space + 1 > size - 1) {
            cut = true;
            break;
        }
        if (space)
            dst[o++] = ' ';
        gap = false;
        dst[o++] = c < 0x80 ? (char)c : '?';
    }
    if (cut) {
        /* Mark the cut; all of dst is ASCII, so any cut is a clean one. */
        o = o > size - 4 ? size - 4 : o;
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static void error_clear(struct kube_error *e, long code)
{
    e->code = code;
    e->reason[0] = '\0';
    e->message[0] = '\0';
    e->retry_after_s = -1;
}

static bool is_status(json_t *o)
{
    if (!json_is_object(o))
        return false;
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (kind)
        return strcmp(kind, "Status") == 0;
    /* Tolerate a Status without its type meta; an object such as a Pod has
     * an object, not a string, under "status". */
    return json_is_string(json_object_get(o, "status")) &&
           json_is_integer(json_object_get(o, "code"));
}

/* Takes reason, message and details.retryAfterSeconds from a Status. */
static void fill_from_status(struct kube_error *e, json_t *status)
{
    copy_json_string(e->reason, sizeof(e->reason), json_object_get(status, "reason"));
    copy_json_string(e->message, sizeof(e->message), json_object_get(status, "message"));
    json_t *ra = json_object_get(json_object_get(status, "details"), "retryAfterSeconds");
    if (json_is_integer(ra) && json_integer_value(ra) >= 0) {
        json_int_t v = json_integer_value(ra);
        e->retry_after_s = v > KUBE_RETRY_AFTER_MAX_S ? KUBE_RETRY_AFTER_MAX_S : (long)v;
    }
}

/* Fills reason from the code where the source left it empty. */
static void fill_reason(struct kube_error *e)
{
    if (!e->reason[0]) {
        const char *r = reason_for_code(e->code);
        copy_trunc(e->reason, sizeof(e->reason), r, strlen(r));
    }
}

void kube_error_from_response(struct kube_error *e, long http_code, const char *body,
                              size_t body_len, const char *retry_after_header)
{
    error_clear(e, http_code);
    if (!body)
        body_len = 0;
    if (body_len > 0) {
        json_t *j = json_loadb(body, body_len, 0, NULL);
        if (is_status(j))
            fill_from_status(e, j);
        else
            printable_prefix(e->message, sizeof(e->message), body, body_len);
        json_decref(j);
    }
    fill_reason(e);
    if (!e->message[0])
        snprintf(e->message, sizeof(e->message), "HTTP %ld %s", e->code,
                 body_len ? "without a message" : "with an empty body");

    long secs;
    if (retry_after_header && kube_parse_retry_after(retry_after_header, &secs) == 0)
        e->retry_after_s = secs;
}

int kube_error_from_status_json(struct kube_error *e, json_t *status)
{
    error_clear(e, 0);
    if (!is_status(status)) {
        copy_trunc(e->message, sizeof(e->message), "ERROR event without a Status object",
                   strlen("ERROR event without a Status object"));
        return -EINVAL;
    }
    json_t *code = json_object_get(status, "code");
    if (json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 1000)
        e->code = (long)json_integer_value(code);
    fill_from_status(e, status);
    fill_reason(e);
    if (!e->message[0])
        snprintf(e->message, sizeof(e->message), "Status without a message (reason %s, code %ld)",
                 e->reason[0] ? e->reason : "unknown", e->code);
    return 0;
}

void kube_error_transport(struct kube_error *e, const char *what)
{
    error_clear(e, 0);
    if (!what || !what[0])
        what = "transport failure";
    copy_trunc(e->message, sizeof(e->message), what, strlen(what));
}

bool kube_error_retryable(const struct kube_error *e)
{
    /* The same request brings the same too-large answer. */
    if (strcmp(e->reason, KUBE_REASON_TOO_LARGE) == 0)
        return false;
    switch (e->code) {
    case 0:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

bool kube_error_is_not_found(const struct kube_error *e)
{
    return e->code == 404;
}

bool kube_error_is_conflict(const struct kube_error *e)
{
    return e->code == 409 && strcmp(e->reason, "AlreadyExists") != 0;
}

bool kube_error_is_already_exists(const struct kube_error *e)
{
    return e->code == 409 && strcmp(e->reason, "AlreadyExists") == 0;
}

bool kube_error_is_gone(const struct kube_error *e)
{
    return e->code == 410 || strcmp(e->reason, "Expired") == 0 || strcmp(e->reason, "Gone") == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int kube_parse_retry_after_at(const char *value, time_t now, long *secs)
{
    /* The three date forms HTTP/1.1 allows (RFC 9110 section 5.6.7). */
    static const char *const date_formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* asctime: Sun Nov  6 08:49:37 1994 */
    };
    char tmp[64];

    if (!value)
        return -EINVAL;
    while (is_ows(*value))
        value++;
    size_t n = strlen(value);
    while (n > 0 && is_ows(value[n - 1]))
        n--;
    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, value, n);
    tmp[n] = '\0';

    if (strspn(tmp, "0123456789") == n) {
        long v = 0;
        for (size_t i = 0; i < n && v < KUBE_RETRY_AFTER_MAX_S; i++)
            v = v * 10 + (tmp[i] - '0');
        *secs = v < KUBE_RETRY_AFTER_MAX_S ? v : KUBE_RETRY_AFTER_MAX_S;
        return 0;
    }

    for (size_t i = 0; i < sizeof(date_formats) / sizeof(date_formats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(tmp, date_formats[i], &tm);
        if (!end || *end != '\0')
            continue;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return -EINVAL;
        if (t <= now)
            *secs = 0;
        else if (t - now >= KUBE_RETRY_AFTER_MAX_S)
            *secs = KUBE_RETRY_AFTER_MAX_S;
        else
            *secs = (long)(t - now);
        return 0;
    }
    return -EINVAL;
}

int kube_parse_retry_after(const char *value, long *secs)
{
    return kube_parse_retry_after_at(value, time(NULL), secs);
}
