// SPDX-License-Identifier: Apache-2.0
/* error.h - typed Kubernetes API errors, decoded from metav1.Status bodies,
 * HTTP codes and Retry-After headers. Pure: no I/O. */
#ifndef KAGE_KUBE_ERROR_H
#define KAGE_KUBE_ERROR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

/* The reason of a transport error for a response over the client's cap. */
#define KUBE_REASON_TOO_LARGE "ResponseTooLarge"

/* Retry-After values are honoured up to this many seconds. */
#define KUBE_RETRY_AFTER_MAX_S 600

struct kube_error {
    long code;          /* HTTP status; 0 = transport failure */
    char reason[64];    /* Status.reason ("NotFound", "AlreadyExists", "Conflict", "Invalid",
                           "Forbidden", "Gone", "Expired", "TooManyRequests", ...) or "" */
    char message[1024]; /* Status.message, or a description of the failure; always
                           NUL-terminated, valid UTF-8 when the source was */
    long retry_after_s; /* Retry-After header or Status.details.retryAfterSeconds, capped at
                           KUBE_RETRY_AFTER_MAX_S; -1 when absent */
};

/*
 * Fills *e from an HTTP response that is not a success. When body[0..body_len)
 * is a metav1.Status its reason, message and details.retryAfterSeconds are
 * taken (code stays http_code); otherwise reason is derived from http_code
 * (404 NotFound, 409 Conflict, 410 Gone, 422 Invalid, 429 TooManyRequests,
 * 5xx InternalError/ServiceUnavailable/Timeout, unknown 4xx "") and message is
 * a printable prefix of the body (markup dropped from HTML pages). A
 * parseable retry_after_header (may be NULL) wins over the body's value.
 * body may be NULL when body_len is 0. Overlong strings are truncated.
 */
void kube_error_from_response(struct kube_error *e, long http_code, const char *body,
                              size_t body_len, const char *retry_after_header);

/*
 * Fills *e from a decoded metav1.Status object, e.g. the object of a watch
 * ERROR event: code from Status.code. Returns 0, or -EINVAL when status is not
 * a Status object; *e then still describes the failure (code 0, reason "",
 * so it counts as retryable: the caller reconnects).
 */
int kube_error_from_status_json(struct kube_error *e, json_t *status);

/* Fills *e for a failure without an HTTP response (connect, TLS, timeout...):
 * code 0, reason "", message what (truncated). */
void kube_error_transport(struct kube_error *e, const char *what);

/*
 * True when repeating the same request later may succeed: transport
 * failures, 429, 500, 502, 503, 504. Not 409: a Conflict means our
 * resourceVersion is stale and resending the same body fails the same way;
 * the controller re-reads and re-reconciles through its work queue instead.
 */
bool kube_error_retryable(const struct kube_error *e);

/* 404: the object (or its resource type) does not exist. */
bool kube_error_is_not_found(const struct kube_error *e);
/* 409 other than AlreadyExists: an update raced another writer. */
bool kube_error_is_conflict(const struct kube_error *e);
/* 409 AlreadyExists: a create found the name taken. */
bool kube_error_is_already_exists(const struct kube_error *e);
/* 410, or reason Expired/Gone (a watch ERROR Status): the resourceVersion or
 * continue token is too old; relist. */
bool kube_error_is_gone(const struct kube_error *e);

/*
 * Parses a Retry-After header value: delta-seconds or an HTTP-date
 * (IMF-fixdate, RFC 850 or asctime form), surrounding whitespace allowed.
 * Stores the wait in seconds into *secs, clamped to [0, KUBE_RETRY_AFTER_MAX_S]
 * (a date in the past is 0). Returns 0, or -EINVAL (*secs untouched).
 */
int kube_parse_retry_after(const char *value, long *secs);

/* kube_parse_retry_after with the current time given (for HTTP-dates). */
int kube_parse_retry_after_at(const char *value, time_t now, long *secs);

#endif
