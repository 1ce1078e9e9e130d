// SPDX-License-Identifier: Apache-2.0
/* client_int.h - the state that client.c (request lifecycle), response.c
 * (a finished transfer's outcome), token.c (the bearer token), curl_uv.c
 * (the curl multi handle on the libuv loop) and transfer.c (one request's
 * curl easy handle) share. Not API: only those five files include it. */
#ifndef KAGE_KUBE_CLIENT_INT_H
#define KAGE_KUBE_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <uv.h>

#include "kube/buf.h"
#include "kube/client.h"
#include "kube/framer.h"

enum req_state {
    REQ_WAITING, /* in c->waiting, not yet handed to curl */
    REQ_ACTIVE,  /* in c->active: a curl transfer runs */
    REQ_BACKOFF, /* in c->backoff: waiting on r->timer to be retried */
    REQ_CLOSING, /* finished; freed in r->timer's close callback */
};

struct kube_request {
    struct kube_client *c;
    TAILQ_ENTRY(kube_request) link;   /* the list its state names */
    struct kube_request *cancel_next; /* c->cancels: cancelled inside curl */
    enum req_state state;
    enum kube_verb verb;
    bool watch;
    bool echo;                /* decode a write's response too */
    const char *const *strip; /* members cut before decoding; NULL: managedFields */
    bool cancelled;
    bool cancel_pending;
    char *url;
    char *body;
    size_t body_len;
    CURL *easy;
    struct curl_slist *headers;
    struct buf resp;
    char retry_after[64];
    char curl_err[CURL_ERROR_SIZE];
    unsigned attempts;
    uv_timer_t timer;
    kube_response_cb cb;
    kube_watch_line_cb line_cb;
    kube_watch_end_cb end_cb;
    void *arg;
    /* watches only */
    uint64_t stall_ms;
    struct framer framer;
    struct buf chunk; /* a private copy of each chunk, which the framer edits */
    int status_known; /* the response code of the watch has been read */
    int streaming;    /* 200: the body is framed into events */
    int stop_rc;      /* nonzero when line_cb asked to stop */
};

TAILQ_HEAD(req_list, kube_request);

/* One socket curl watches, and its poll handle; defined in curl_uv.c. */
struct sock_ctx;
TAILQ_HEAD(sock_list, sock_ctx);

/* Easy handles kept for reuse: setting one up costs more than resetting it. */
#define KUBE__SPARE_EASY 64

struct kube_client {
    uv_loop_t *loop;
    const struct kube_config *cfg;
    struct kube_client_opts opts;
    char user_agent[96];
    CURLM *multi;
    CURL *spare[KUBE__SPARE_EASY]; /* released easy handles, reset and reused */
    unsigned nspare;
    uv_timer_t curl_timer;
    uv_idle_t kick; /* starts waiting requests and applies deferred cancels */
    uv_timer_t token_timer;
    uv_work_t token_work;
    int token_work_busy;
    char *token_new; /* read by the worker, swapped in on the loop */
    char *token;
    struct curl_slist *connect_to; /* from cfg->connect_to, or NULL */
    struct req_list waiting;
    struct req_list active;
    struct req_list backoff;
    struct kube_request *cancels; /* cancelled while inside curl */
    struct sock_list socks;
    int in_curl; /* inside curl_multi_socket_action */
    int closing;
    int close_deferred; /* kube_client_close ran inside curl: finish after it */
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t rng;
    struct kube_client_stats stats;
};

/* ---- curl_uv.c: curl's multi handle driven by the loop ---- */

/*
 * Creates c->multi, wired to poll handles and c->curl_timer on c->loop, and
 * initialises c->curl_timer, which then counts in c->handles_open. Returns
 * 0, or -ENOMEM with nothing created.
 */
int kube__curl_uv_init(struct kube_client *c);

/*
 * Tells curl that fd (or CURL_SOCKET_TIMEOUT) is ready for flags, then
 * hands finished transfers to kube__client_check_multi_info. c->in_curl is
 * nonzero while curl runs, so that callbacks can tell.
 */
void kube__curl_uv_action(struct kube_client *c, curl_socket_t fd, int flags);

/*
 * Cleans up c->multi (every easy handle must be removed first), then closes
 * every poll handle and c->curl_timer; each close calls
 * kube__client_maybe_free once done. For kube_client_close.
 */
void kube__curl_uv_close(struct kube_client *c);

/* ---- transfer.c: one attempt of a request as a curl easy handle ---- */

/*
 * Sets up r->easy and r->headers for the next attempt of r, with the
 * client's credentials and r's verb, body and limits; the body and header
 * callbacks fill r->resp or feed r->framer. Returns 0 or -ENOMEM; either
 * way what was set up is the caller's to free with kube__transfer_release.
 */
int kube__transfer_prepare(struct kube_request *r);

/* Removes r->easy from the multi handle and frees it and r->headers. Safe
 * when there are none. Not from inside a curl callback. */
void kube__transfer_release(struct kube_request *r);

/* ---- response.c: what a finished transfer comes to ---- */

/*
 * Counts code (the HTTP status, 0 when none arrived) and ends r, which has
 * left the active list and has no transfer any more: closed without a
 * callback when cancelled; a watch's end_cb; a retryable failure (and a
 * first 401 with a token file, which is re-read) back off through
 * kube__req_retry while attempts are left; else r's callback, with the
 * body decoded for a GET or an echoed write.
 */
void kube__response_done(struct kube_request *r, CURLcode result, long code);

/* ---- token.c: the bearer token, re-read off the loop ---- */

/* Re-reads c->cfg->token_file on a worker thread, unless one runs already
 * or c is closing; the token read replaces c->token when it succeeds. The
 * work counts in c->handles_open until it is done. */
void kube__token_reread(struct kube_client *c);

/* Starts c->token_timer (initialised by the caller), which re-reads the
 * token about every minute without keeping the loop alive. */
void kube__token_start(struct kube_client *c);

/* Zeroes and frees a token; t may be NULL. */
void kube__token_free(char *t);

/* ---- client.c ---- */

/* Finishes the requests whose transfers curl reports done, then applies the
 * cancels, and a kube_client_close, that arrived while curl ran. Call only
 * after curl returns; c may be closing afterwards (not yet freed). */
void kube__client_check_multi_info(struct kube_client *c);

/* Frees a closing client (then calls its close callback) once its last
 * handle has closed; otherwise does nothing. */
void kube__client_maybe_free(struct kube_client *c);

/* Marks r, on no list, finished (REQ_CLOSING); it is freed in its timer's
 * close callback. Call it before r's own callback runs (see client.c). */
void kube__req_close(struct kube_request *r);

/* Puts r, on no list, in backoff: it waits again once the jittered delay
 * for its attempt count (at least retry_after_s when that is >= 0) is over. */
void kube__req_retry(struct kube_request *r, long retry_after_s);

#endif
