// SPDX-License-Identifier: Apache-2.0
/*
 * client.c - the client and the life of its requests on the libuv loop:
 * queued under a bound on requests in flight, handed to curl (curl_uv.c
 * drives it, transfer.c sets up each attempt, response.c reads the outcome),
 * backed off before a retry, finished or cancelled. Every change of a
 * request's state is made here.
 */
#include "kube/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/client_int.h"

#define ERROR_BODY_MAX (1u << 20)

static void on_kick(uv_idle_t *h);
static void req_finish(struct kube_request *r);
static void client_close_now(struct kube_client *c);

/* ---- requests --------------------------------------------------------- */

static void kick(struct kube_client *c)
{
    if (!c->closing)
        uv_idle_start(&c->kick, on_kick);
}

static void req_free_cb(uv_handle_t *h)
{
    struct kube_request *r = h->data;
    struct kube_client *c = r->c;
    free(r->url);
    free(r->body);
    buf_free(&r->resp);
    buf_free(&r->chunk);
    framer_free(&r->framer);
    free(r);
    c->handles_open--;
    kube__client_maybe_free(c);
}

/*
 * Marks r finished; its memory lasts until the loop runs the close callback.
 * r is closed before its own callback runs, so that a kube_request_cancel
 * from inside that callback finds it finished (a no-op) rather than taking
 * it a second time out of a list it has left.
 */
void kube__req_close(struct kube_request *r)
{
    r->state = REQ_CLOSING;
    uv_close((uv_handle_t *)&r->timer, req_free_cb);
}

/* Finishes r with a transport-level error before or without curl. */
static void req_fail_local(struct kube_request *r, const char *what)
{
    struct kube_error e;
    kube_error_transport(&e, what);
    r->c->stats.failures++;
    kube__req_close(r);
    if (!r->cancelled) {
        if (r->watch) {
            r->end_cb(r->arg, &e);
        } else {
            struct kube_response resp = {0, &e, NULL, r->attempts, 0};
            r->cb(r->arg, &resp);
        }
    }
}

static void req_start(struct kube_request *r)
{
    struct kube_client *c = r->c;
    buf_reset(&r->resp);
    r->retry_after[0] = '\0';
    r->curl_err[0] = '\0';
    r->status_known = 0;
    r->streaming = 0;
    r->stop_rc = 0;
    r->attempts++;
    if (kube__transfer_prepare(r) != 0 || curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        kube__transfer_release(r);
        req_fail_local(r, "out of memory preparing the request");
        return;
    }
    r->state = REQ_ACTIVE;
    TAILQ_INSERT_TAIL(&c->active, r, link);
    c->stats.requests++;
    c->stats.by_verb[r->verb]++;
    if (r->watch)
        c->stats.watches++;
    else
        c->stats.in_flight++;
}

static void on_retry_timer(uv_timer_t *t)
{
    struct kube_request *r = t->data;
    struct kube_client *c = r->c;
    TAILQ_REMOVE(&c->backoff, r, link);
    r->state = REQ_WAITING;
    TAILQ_INSERT_HEAD(&c->waiting, r, link);
    c->stats.waiting++;
    kick(c);
}

void kube__req_retry(struct kube_request *r, long retry_after_s)
{
    struct kube_client *c = r->c;
    uint64_t delay = kube_retry_delay_ms(r->attempts - 1, retry_after_s, backoff_rand(&c->rng));
    c->stats.retries++;
    r->state = REQ_BACKOFF;
    TAILQ_INSERT_TAIL(&c->backoff, r, link);
    uv_timer_start(&r->timer, on_retry_timer, delay, 0);
}

/* curl is done with r's transfer: r leaves the active list, its easy handle
 * is released, and response.c turns the outcome into a callback or a retry. */
static void req_transfer_done(struct kube_request *r, CURLcode result)
{
    struct kube_client *c = r->c;
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    TAILQ_REMOVE(&c->active, r, link);
    if (!r->watch)
        c->stats.in_flight--;
    kube__transfer_release(r);
    kube__response_done(r, result, code);
}

void kube__client_check_multi_info(struct kube_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        /* m dies with its easy handle: copy what is needed first. */
        CURLcode result = m->data.result;
        void *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        req_transfer_done(priv, result);
    }
    /* Cancels that arrived while curl was running can be applied now; a
     * request that finished meanwhile is already closing. */
    while (c->cancels) {
        struct kube_request *r = c->cancels;
        c->cancels = r->cancel_next;
        r->cancel_pending = 0;
        req_finish(r);
    }
    /* Kick only when a waiting request can start: with the in-flight bound
     * reached, a kick would start nothing and come back on the next loop
     * turn, spinning a core until a transfer ends. A transfer's end frees
     * a slot and passes here again. (Waiting watches never linger: every
     * kick starts them all.) */
    if (!TAILQ_EMPTY(&c->waiting) && c->stats.in_flight < c->opts.max_in_flight)
        kick(c);
    if (c->close_deferred && !c->in_curl) {
        c->close_deferred = 0;
        client_close_now(c);
    }
}

static void on_kick(uv_idle_t *h)
{
    struct kube_client *c = h->data;
    uv_idle_stop(h);
    while (!TAILQ_EMPTY(&c->waiting) && c->stats.in_flight < c->opts.max_in_flight) {
        struct kube_request *r = TAILQ_FIRST(&c->waiting);
        TAILQ_REMOVE(&c->waiting, r, link);
        c->stats.waiting--;
        req_start(r);
    }
    /* Watches do not count against the bound; start them all. */
    struct kube_request *r, *next;
    for (r = TAILQ_FIRST(&c->waiting); r; r = next) {
        next = TAILQ_NEXT(r, link);
        if (r->watch) {
            TAILQ_REMOVE(&c->waiting, r, link);
            c->stats.waiting--;
            req_start(r);
            /* A failed start ran r's callback, which may have cancelled
             * next: look again from the head. */
            if (r->state != REQ_ACTIVE)
                next = TAILQ_FIRST(&c->waiting);
        }
    }
    /* New transfers need curl to look at them; its timer callback does. */
    kube__curl_uv_action(c, CURL_SOCKET_TIMEOUT, 0);
}

/* Removes a cancelled request from wherever it is and closes it. */
static void req_finish(struct kube_request *r)
{
    struct kube_client *c = r->c;
    switch (r->state) {
    case REQ_WAITING:
        TAILQ_REMOVE(&c->waiting, r, link);
        c->stats.waiting--;
        kube__req_close(r);
        break;
    case REQ_ACTIVE:
        TAILQ_REMOVE(&c->active, r, link);
        if (!r->watch)
            c->stats.in_flight--;
        kube__transfer_release(r);
        kube__req_close(r);
        kick(c);
        break;
    case REQ_BACKOFF:
        TAILQ_REMOVE(&c->backoff, r, link);
        uv_timer_stop(&r->timer);
        kube__req_close(r);
        break;
    case REQ_CLOSING:
        break;
    }
}

void kube_request_cancel(struct kube_request *r)
{
    if (!r || r->cancelled || r->state == REQ_CLOSING)
        return;
    r->cancelled = 1;
    struct kube_client *c = r->c;
    if (c->in_curl && r->state == REQ_ACTIVE) {
        /* curl may be inside this very transfer's callback: removing its
         * handle now is not allowed. Done once curl returns. */
        if (!r->cancel_pending) {
            r->cancel_pending = 1;
            r->cancel_next = c->cancels;
            c->cancels = r;
        }
        return;
    }
    req_finish(r);
}

static int req_new(struct kube_client *c, enum kube_verb verb, const char *path, const char *body,
                   size_t body_len, struct kube_request **out)
{
    if (c->closing)
        return -ECANCELED;
    struct kube_request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    struct buf url;
    buf_init(&url, 64 * 1024);
    const char *base = c->cfg->url_base ? c->cfg->url_base : c->cfg->server;
    if (buf_append_str(&url, base) || buf_append_str(&url, path)) {
        buf_free(&url);
        free(r);
        return -ENOMEM;
    }
    r->url = buf_steal(&url);
    if (body) {
        r->body = malloc(body_len + 1);
        if (!r->body || !r->url) {
            free(r->body);
            free(r->url);
            free(r);
            return -ENOMEM;
        }
        memcpy(r->body, body, body_len);
        r->body[body_len] = '\0';
        r->body_len = body_len;
    }
    if (!r->url) {
        free(r);
        return -ENOMEM;
    }
    r->c = c;
    r->verb = verb;
    buf_init(&r->resp, c->opts.max_body);
    buf_init(&r->chunk, (size_t)CURL_MAX_WRITE_SIZE * 4);
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    c->handles_open++;
    r->state = REQ_WAITING;
    TAILQ_INSERT_TAIL(&c->waiting, r, link);
    c->stats.waiting++;
    kick(c);
    *out = r;
    return 0;
}

static int request(struct kube_client *c, enum kube_verb verb, const char *path, const char *body,
                   size_t body_len, bool echo, const char *const *strip, kube_response_cb cb,
                   void *arg, struct kube_request **handle)
{
    struct kube_request *r;
    int rc = req_new(c, verb, path, body, body_len, &r);
    if (rc)
        return rc;
    r->echo = echo;
    r->strip = strip;
    r->cb = cb;
    r->arg = arg;
    if (handle)
        *handle = r;
    return 0;
}

int kube_request(struct kube_client *c, enum kube_verb verb, const char *path, const char *body,
                 size_t body_len, kube_response_cb cb, void *arg, struct kube_request **handle)
{
    return request(c, verb, path, body, body_len, false, NULL, cb, arg, handle);
}

int kube_request_echo(struct kube_client *c, enum kube_verb verb, const char *path,
                      const char *body, size_t body_len, kube_response_cb cb, void *arg,
                      struct kube_request **handle)
{
    return request(c, verb, path, body, body_len, true, NULL, cb, arg, handle);
}

int kube_get_stripped(struct kube_client *c, const char *path, const char *const *strip,
                      size_t max_body, kube_response_cb cb, void *arg, struct kube_request **handle)
{
    struct kube_request *r = NULL;
    int rc = request(c, KUBE_GET, path, NULL, 0, false, strip, cb, arg, &r);
    if (rc)
        return rc;
    if (max_body && max_body < r->resp.max)
        r->resp.max = max_body;
    if (handle)
        *handle = r;
    return 0;
}

int kube_watch(struct kube_client *c, const char *path, uint64_t stall_ms,
               kube_watch_line_cb line_cb, kube_watch_end_cb end_cb, void *arg,
               struct kube_request **handle)
{
    struct kube_request *r;
    int rc = req_new(c, KUBE_GET, path, NULL, 0, &r);
    if (rc)
        return rc;
    r->watch = true;
    r->stall_ms = stall_ms;
    r->line_cb = line_cb;
    r->end_cb = end_cb;
    r->arg = arg;
    r->resp.max = ERROR_BODY_MAX;
    framer_init(&r->framer, c->opts.max_watch_line);
    if (handle)
        *handle = r;
    return 0;
}

/* ---- the client -------------------------------------------------------- */

void kube__client_maybe_free(struct kube_client *c)
{
    if (!c->closing || c->handles_open > 0)
        return;
    kube__token_free(c->token);
    kube__token_free(c->token_new);
    curl_slist_free_all(c->connect_to);
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;
    free(c);
    if (cb)
        cb(arg);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct kube_client *c = h->data;
    c->handles_open--;
    kube__client_maybe_free(c);
}

int kube_client_new(uv_loop_t *loop, const struct kube_config *cfg,
                    const struct kube_client_opts *opts, struct kube_client **out, char *err,
                    size_t errlen)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl failed to initialise");
            return -EINVAL;
        }
        curl_ready = 1;
    }
    if (!cfg->server || !cfg->server[0]) {
        snprintf(err, errlen, "no API server URL in %s", cfg->source ? cfg->source : "config");
        return -EINVAL;
    }
    if (strncmp(cfg->server, "https://", 8) != 0 && (cfg->token || cfg->token_file)) {
        snprintf(err, errlen, "%s: a bearer token is sent only to an https:// server, not %s",
                 cfg->source ? cfg->source : "config", cfg->server);
        return -EINVAL;
    }

    struct kube_client *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->loop = loop;
    c->cfg = cfg;
    if (opts)
        c->opts = *opts;
    if (!c->opts.max_in_flight)
        c->opts.max_in_flight = 64;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = 30000;
    if (!c->opts.max_body)
        c->opts.max_body = 64u << 20;
    if (!c->opts.max_watch_line)
        c->opts.max_watch_line = 16u << 20;
    if (!c->opts.max_attempts)
        c->opts.max_attempts = 6;
    snprintf(c->user_agent, sizeof(c->user_agent), "%s",
             c->opts.user_agent ? c->opts.user_agent : "kage-controller/" KAGE_VERSION);
    c->rng = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)c;
    TAILQ_INIT(&c->waiting);
    TAILQ_INIT(&c->active);
    TAILQ_INIT(&c->backoff);
    TAILQ_INIT(&c->socks);

    if (cfg->connect_to && !(c->connect_to = curl_slist_append(NULL, cfg->connect_to))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (cfg->token_file && !cfg->token) {
        if (kube_token_read(cfg->token_file, &c->token, err, errlen) != 0) {
            curl_slist_free_all(c->connect_to);
            free(c);
            return -EINVAL;
        }
    }

    if (kube__curl_uv_init(c) != 0) {
        kube__token_free(c->token);
        curl_slist_free_all(c->connect_to);
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uv_idle_init(loop, &c->kick);
    c->kick.data = c;
    uv_timer_init(loop, &c->token_timer);
    c->token_timer.data = c;
    c->handles_open += 2; /* curl_uv counted its timer */
    if (cfg->token_file && !cfg->token)
        kube__token_start(c);
    *out = c;
    return 0;
}

/* Finishes every request without its callback, then closes curl's handles
 * and ours; the last close callback frees c. Not from inside curl. */
static void client_close_now(struct kube_client *c)
{
    c->cancels = NULL; /* every request is finished below anyway */
    struct req_list *lists[] = {&c->waiting, &c->active, &c->backoff};
    for (size_t i = 0; i < 3; i++) {
        while (!TAILQ_EMPTY(lists[i])) {
            struct kube_request *r = TAILQ_FIRST(lists[i]);
            r->cancelled = 1;
            req_finish(r);
        }
    }
    c->closing = 1;
    kube__curl_uv_close(c);
    uv_idle_stop(&c->kick);
    uv_timer_stop(&c->token_timer);
    uv_close((uv_handle_t *)&c->kick, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->token_timer, on_client_handle_closed);
}

void kube_client_close(struct kube_client *c, void (*cb)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->close_cb = cb;
    c->close_arg = arg;
    if (c->in_curl) {
        /* A line_cb runs inside curl, which forbids removing its handles
         * from there. Cancelled now, so that no callback runs and curl drops
         * what is left of each transfer; closed once curl returns. */
        struct req_list *lists[] = {&c->waiting, &c->active, &c->backoff};
        struct kube_request *r;
        for (size_t i = 0; i < 3; i++)
            for (r = TAILQ_FIRST(lists[i]); r; r = TAILQ_NEXT(r, link))
                r->cancelled = 1;
        c->closing = 1;
        c->close_deferred = 1;
        return;
    }
    client_close_now(c);
}

void kube_client_stats(const struct kube_client *c, struct kube_client_stats *out)
{
    *out = c->stats;
}

const char *kube_client_server(const struct kube_client *c)
{
    return c->cfg->server;
}
