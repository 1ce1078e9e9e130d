// SPDX-License-Identifier: Apache-2.0
/* client.h - asynchronous Kubernetes API requests on a libuv loop, over
 * libcurl's multi interface (HTTP/2, one multiplexed TLS connection). */
#ifndef KAGE_CLIENT_H
#define KAGE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "kube/config.h"
#include "kube/error.h"

struct kube_client;
struct kube_request;

struct kube_client_opts {
    unsigned max_in_flight;   /* requests (not watches) in flight at once; 0 = 64 */
    uint64_t timeout_ms;      /* per request (not watches); 0 = 30 s */
    size_t max_body;          /* largest response body accepted; 0 = 64 MiB */
    size_t max_watch_line;    /* largest watch event; 0 = 16 MiB */
    unsigned max_attempts;    /* tries of a retryable failure; 0 = 6 */
    const char *user_agent;   /* NULL = "kage-controller/<version>" */
    bool keep_managed_fields; /* false: drop metadata.managedFields from GET responses before
                                 parsing them (the controller never reads them) */
};

enum kube_verb {
    KUBE_GET,
    KUBE_POST,
    KUBE_PUT,
    KUBE_PATCH_APPLY, /* server-side apply: application/apply-patch+yaml */
    KUBE_PATCH_MERGE, /* application/merge-patch+json */
    KUBE_DELETE,
};

/* What a finished request hands to its callback; valid only during it. */
struct kube_response {
    long code;                    /* HTTP status, 0 when none arrived */
    const struct kube_error *err; /* NULL on 2xx */
    json_t *json;                 /* the decoded body of a GET (or of a write sent with
                                     kube_request_echo) on 2xx, borrowed; else NULL */
    unsigned attempts;            /* how many times it was sent */
    size_t body_len;              /* bytes of the body received (after any cut) */
};

typedef void (*kube_response_cb)(void *arg, const struct kube_response *resp);

/* A watch delivers each event line; a nonzero return stops the watch (its
 * end callback then gets that as a transport error "stopped by caller"). */
typedef int (*kube_watch_line_cb)(void *arg, char *line, size_t len);
/* The watch ended: err NULL when the server closed it cleanly (its
 * timeoutSeconds ran out), else why it failed (HTTP error or transport). */
typedef void (*kube_watch_end_cb)(void *arg, const struct kube_error *err);

/* The response codes counted per verb: 0 (no response), then these. */
#define KUBE_CODES 16
extern const int kube_stat_codes[KUBE_CODES]; /* [0] = 0, [KUBE_CODES - 1] = -1: any other */

/* Counters for /metrics and benchmarks. */
struct kube_client_stats {
    uint64_t requests; /* sent, retries included */
    uint64_t retries;
    uint64_t failures; /* finished with an error */
    uint64_t watches;  /* watch streams opened */
    uint64_t by_verb[KUBE_DELETE + 1];
    uint64_t by_code[KUBE_DELETE + 1][KUBE_CODES]; /* finished attempts, see kube_stat_codes */
    unsigned in_flight;
    unsigned waiting; /* queued behind max_in_flight */
};

/*
 * Creates a client for cfg (which must outlive it) on loop. Returns 0 and
 * *out, or a negative errno (-EINVAL with err filled for a config libcurl
 * rejects). Starts the token-file re-reader when cfg has a token file.
 */
int kube_client_new(uv_loop_t *loop, const struct kube_config *cfg,
                    const struct kube_client_opts *opts, struct kube_client **out, char *err,
                    size_t errlen);

/*
 * Cancels every request and watch (their callbacks are not called), closes
 * the client's handles and frees it; cb(arg) runs once all is released.
 */
void kube_client_close(struct kube_client *c, void (*cb)(void *arg), void *arg);

/*
 * Sends a request. path is the URL path with query ("/api/v1/pods?limit=5");
 * body (may be NULL) is JSON for POST/PUT/PATCH/DELETE. cb runs exactly once
 * (unless the request is cancelled first), from the loop, never from inside
 * this call. Retryable failures (transport, 429, 5xx) are retried with
 * jittered backoff honouring Retry-After, up to max_attempts. *handle (if
 * given) may be passed to kube_request_cancel until cb runs.
 * Returns 0 or a negative errno (cb is then never called).
 */
int kube_request(struct kube_client *c, enum kube_verb verb, const char *path, const char *body,
                 size_t body_len, kube_response_cb cb, void *arg, struct kube_request **handle);

/* As kube_request, but a 2xx response to a write is decoded too (resp->json
 * is the object the server stored): for the few writes whose result the
 * caller needs, such as a Lease's new resourceVersion. */
int kube_request_echo(struct kube_client *c, enum kube_verb verb, const char *path,
                      const char *body, size_t body_len, kube_response_cb cb, void *arg,
                      struct kube_request **handle);

/* A GET whose response has the members named in strip (NULL-terminated,
 * any depth; see jsonscan_strip_members) cut before it is decoded, in
 * place of the default cut of managedFields: an informer's LIST pages,
 * whose objects the decoder reads a few fields of. A body longer than
 * max_body bytes (0: the client's max_body) fails with reason
 * KUBE_REASON_TOO_LARGE. */
int kube_get_stripped(struct kube_client *c, const char *path, const char *const *strip,
                      size_t max_body, kube_response_cb cb, void *arg,
                      struct kube_request **handle);

/*
 * Opens a watch stream at path (which carries watch=1 and its query). Lines
 * go to line_cb as they arrive; end_cb runs once when the stream ends. Not
 * retried and not bounded by max_in_flight; no timeout, but a stream silent
 * for longer than stall_ms is dropped (end_cb gets a transport error).
 * Returns 0 or a negative errno (no callback is then called).
 */
int kube_watch(struct kube_client *c, const char *path, uint64_t stall_ms,
               kube_watch_line_cb line_cb, kube_watch_end_cb end_cb, void *arg,
               struct kube_request **handle);

/* Cancels a request or watch whose callback has not run; none will run. */
void kube_request_cancel(struct kube_request *r);

/* Copies the counters. */
void kube_client_stats(const struct kube_client *c, struct kube_client_stats *out);

/* The server URL, for logs. */
const char *kube_client_server(const struct kube_client *c);

#endif
