/*
 * client.c - Kubernetes API requests on the libuv loop: libcurl's multi
 * interface driven by uv_poll (sockets) and uv_timer (curl's timeouts), as
 * in curl's multi-uv example; HTTP/2 so every request and watch shares one
 * TLS connection; retries with jittered backoff; a bound on requests in
 * flight; the bearer token re-read from its file about every minute.
 */
#include "kube/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "kube/backoff.h"
#include "kube/buf.h"
#include "kube/framer.h"
#include "kube/jsonscan.h"
#include "log.h"

#define TOKEN_REREAD_MS    60000
#define ERROR_BODY_MAX     (1u << 20)
#define CONNECT_TIMEOUT_MS 10000L

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

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct kube_client *c;
    TAILQ_ENTRY(sock_ctx) link;
};

TAILQ_HEAD(sock_list, sock_ctx);

struct kube_client {
    uv_loop_t *loop;
    const struct kube_config *cfg;
    struct kube_client_opts opts;
    char user_agent[96];
    CURLM *multi;
    uv_timer_t curl_timer;
    uv_idle_t kick; /* starts waiting requests and applies deferred cancels */
    uv_timer_t token_timer;
    uv_work_t token_work;
    int token_work_busy;
    char *token_new; /* read by the worker, swapped in on the loop */
    char *token;
    struct req_list waiting;
    struct req_list active;
    struct req_list backoff;
    struct kube_request *cancels; /* cancelled while inside curl */
    struct sock_list socks;
    int in_curl; /* inside curl_multi_socket_action */
    int closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t rng;
    struct kube_client_stats stats;
};

static void check_multi_info(struct kube_client *c);
static void on_kick(uv_idle_t *h);
static void req_start(struct kube_request *r);
static void req_finish(struct kube_request *r);
static void client_maybe_free(struct kube_client *c);

/* ---- the curl <-> libuv glue --------------------------------------------- */

static void socket_action(struct kube_client *c, curl_socket_t fd, int flags)
{
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    check_multi_info(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->c, s->fd, flags);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock_ctx *s = h->data;
    struct kube_client *c = s->c;
    free(s);
    c->handles_open--;
    client_maybe_free(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct kube_client *c = userp;
    struct sock_ctx *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            TAILQ_REMOVE(&c->socks, s, link);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        c->handles_open++;
        TAILQ_INSERT_TAIL(&c->socks, s, link);
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timeout_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct kube_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->curl_timer);
    else
        uv_timer_start(&c->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- the bearer token, re-read off the loop ------------------------------ */

static void token_read_work(uv_work_t *w)
{
    struct kube_client *c = w->data;
    char err[256];
    c->token_new = NULL;
    /* A failed re-read keeps the old token: it may still be valid. */
    if (kube_token_read(c->cfg->token_file, &c->token_new, err, sizeof(err)) != 0)
        c->token_new = NULL;
}

static void free_token(char *t)
{
    if (t) {
        explicit_bzero(t, strlen(t));
        free(t);
    }
}

static void token_read_done(uv_work_t *w, int status)
{
    struct kube_client *c = w->data;
    (void)status;
    c->token_work_busy = 0;
    if (c->token_new) {
        if (!c->token || strcmp(c->token, c->token_new) != 0)
            log_info("bearer token reloaded", "{s:s}", "file", c->cfg->token_file);
        free_token(c->token);
        c->token = c->token_new;
        c->token_new = NULL;
    }
    c->handles_open--;
    client_maybe_free(c);
}

static void token_reread(struct kube_client *c)
{
    if (c->token_work_busy || c->closing || !c->cfg->token_file)
        return;
    c->token_work.data = c;
    if (uv_queue_work(c->loop, &c->token_work, token_read_work, token_read_done) == 0) {
        c->token_work_busy = 1;
        c->handles_open++; /* the work request pins the client until done */
    }
}

static void on_token_timer(uv_timer_t *t)
{
    token_reread(t->data);
}

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
    client_maybe_free(c);
}

static void req_close(struct kube_request *r)
{
    r->state = REQ_CLOSING;
    uv_close((uv_handle_t *)&r->timer, req_free_cb);
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct kube_request *r = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        size_t v = len - (sizeof(name) - 1);
        if (v >= sizeof(r->retry_after))
            v = sizeof(r->retry_after) - 1;
        memcpy(r->retry_after, data + sizeof(name) - 1, v);
        r->retry_after[v] = '\0';
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct kube_request *r = userp;
    size_t len = size * n;

    if (r->cancelled)
        return 0;
    if (r->watch && !r->status_known) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        r->status_known = 1;
        r->streaming = code == 200;
    }
    if (!r->streaming)
        return buf_append(&r->resp, data, len) == 0 ? len : 0;

    /* The framer NUL-terminates lines where they lie; give it our copy. */
    buf_reset(&r->chunk);
    if (buf_append(&r->chunk, data, len) != 0)
        return 0;
    int rc = framer_feed(&r->framer, r->chunk.data, r->chunk.len, r->line_cb, r->arg);
    if (rc != 0) {
        r->stop_rc = rc;
        return 0;
    }
    return len;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *h, int *failed)
{
    struct curl_slist *l = curl_slist_append(list, h);
    if (!l) {
        *failed = 1;
        return list;
    }
    return l;
}

static const char *const verb_names[] = {"GET", "POST", "PUT", "PATCH", "PATCH", "DELETE"};

/* Sets up r->easy for one attempt. Returns 0 or -ENOMEM. */
static int req_prepare(struct kube_request *r)
{
    struct kube_client *c = r->c;
    const struct kube_config *cfg = c->cfg;
    CURL *e = curl_easy_init();
    int failed = 0;
    if (!e)
        return -ENOMEM;
    r->easy = e;

    struct curl_slist *h = add_header(NULL, "Accept: application/json", &failed);
    h = add_header(h, "Expect:", &failed);
    if (r->verb == KUBE_PATCH_APPLY)
        h = add_header(h, "Content-Type: application/apply-patch+yaml", &failed);
    else if (r->verb == KUBE_PATCH_MERGE)
        h = add_header(h, "Content-Type: application/merge-patch+json", &failed);
    else if (r->body)
        h = add_header(h, "Content-Type: application/json", &failed);
    const char *token = cfg->token ? cfg->token : c->token;
    if (token) {
        struct buf auth;
        buf_init(&auth, KUBE_TOKEN_MAX_FILE + 64);
        if (buf_printf(&auth, "Authorization: Bearer %s", token) == 0)
            h = add_header(h, auth.data, &failed);
        else
            failed = 1;
        if (auth.data)
            explicit_bzero(auth.data, auth.len);
        buf_free(&auth);
    }
    r->headers = h;
    if (failed)
        return -ENOMEM;

    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 15L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (cfg->proxy_url)
        curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url);
    else
        curl_easy_setopt(e, CURLOPT_PROXY, "");

    if (cfg->insecure_skip_tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->ca_data) {
        struct curl_blob blob = {cfg->ca_data, cfg->ca_data_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (cfg->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->cert_data) {
        struct curl_blob cert = {cfg->cert_data, cfg->cert_data_len, CURL_BLOB_NOCOPY};
        struct curl_blob key = {cfg->key_data, cfg->key_data_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (cfg->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
    }

    if (r->watch) {
        /* No overall timeout: a stream that stays silent past stall_ms is dead. */
        long stall_s = (long)((r->stall_ms + 999) / 1000);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.timeout_ms);
    }

    switch (r->verb) {
    case KUBE_GET:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
    case KUBE_POST:
    case KUBE_PUT:
    case KUBE_PATCH_APPLY:
    case KUBE_PATCH_MERGE:
    case KUBE_DELETE:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, verb_names[r->verb]);
        if (r->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        }
        break;
    }
    return 0;
}

static void req_release_easy(struct kube_request *r)
{
    if (r->easy) {
        curl_multi_remove_handle(r->c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

/* Finishes r with a transport-level error before or without curl. */
static void req_fail_local(struct kube_request *r, const char *what)
{
    struct kube_error e;
    kube_error_transport(&e, what);
    r->c->stats.failures++;
    if (!r->cancelled) {
        if (r->watch) {
            r->end_cb(r->arg, &e);
        } else {
            struct kube_response resp = {0, &e, NULL, r->attempts};
            r->cb(r->arg, &resp);
        }
    }
    req_close(r);
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
    if (req_prepare(r) != 0 || curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        req_release_easy(r);
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

/* The transfer of r is over: decide between callback and retry. */
static void req_finish_transfer(struct kube_request *r, CURLcode result)
{
    struct kube_client *c = r->c;
    long code = 0;
    struct kube_error e;
    int have_err = 0;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    TAILQ_REMOVE(&c->active, r, link);
    if (!r->watch)
        c->stats.in_flight--;
    req_release_easy(r);

    if (r->cancelled) {
        req_close(r);
        return;
    }

    if (result != CURLE_OK) {
        char what[CURL_ERROR_SIZE + 96];
        if (r->stop_rc == -E2BIG)
            snprintf(what, sizeof(what), "watch event larger than %zu bytes",
                     c->opts.max_watch_line);
        else if (r->stop_rc)
            snprintf(what, sizeof(what), "stopped by caller (%d)", r->stop_rc);
        else if (result == CURLE_WRITE_ERROR)
            snprintf(what, sizeof(what), "response larger than %zu bytes", r->resp.max);
        else
            snprintf(what, sizeof(what), "%s: %s", curl_easy_strerror(result),
                     r->curl_err[0] ? r->curl_err : "no detail");
        kube_error_transport(&e, what);
        have_err = 1;
    } else if (code < 200 || code > 299) {
        kube_error_from_response(&e, code, r->resp.data, r->resp.len,
                                 r->retry_after[0] ? r->retry_after : NULL);
        have_err = 1;
    }

    if (r->watch) {
        if (have_err)
            c->stats.failures++;
        r->end_cb(r->arg, have_err ? &e : NULL);
        req_close(r);
        return;
    }

    if (have_err) {
        int retry = kube_error_retryable(&e);
        /* A rotated token: read the file again now and retry once. */
        if (e.code == 401 && c->cfg->token_file && r->attempts < 2) {
            token_reread(c);
            retry = 1;
            e.retry_after_s = 1;
        }
        if (retry && r->attempts < c->opts.max_attempts && !c->closing) {
            uint64_t delay =
                kube_retry_delay_ms(r->attempts - 1, e.retry_after_s, backoff_rand(&c->rng));
            c->stats.retries++;
            r->state = REQ_BACKOFF;
            TAILQ_INSERT_TAIL(&c->backoff, r, link);
            uv_timer_start(&r->timer, on_retry_timer, delay, 0);
            return;
        }
        c->stats.failures++;
        struct kube_response resp = {code, &e, NULL, r->attempts};
        r->cb(r->arg, &resp);
        req_close(r);
        return;
    }

    json_t *json = NULL;
    if (r->verb == KUBE_GET && !c->opts.keep_managed_fields)
        jsonscan_strip_managed_fields(r->resp.data, &r->resp.len);
    if (r->resp.len > 0) {
        json_error_t jerr;
        json = json_loadb(r->resp.data, r->resp.len, 0, &jerr);
        if (!json) {
            char what[256];
            snprintf(what, sizeof(what), "invalid JSON in a %ld response: %s", code, jerr.text);
            kube_error_transport(&e, what);
            e.code = code;
            c->stats.failures++;
            struct kube_response resp = {code, &e, NULL, r->attempts};
            r->cb(r->arg, &resp);
            req_close(r);
            return;
        }
    }
    struct kube_response resp = {code, NULL, json, r->attempts};
    r->cb(r->arg, &resp);
    json_decref(json);
    req_close(r);
}

static void check_multi_info(struct kube_client *c)
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
        req_finish_transfer(priv, result);
    }
    /* Cancels that arrived while curl was running can be applied now; a
     * request that finished meanwhile is already closing. */
    while (c->cancels) {
        struct kube_request *r = c->cancels;
        c->cancels = r->cancel_next;
        r->cancel_pending = 0;
        req_finish(r);
    }
    if (!TAILQ_EMPTY(&c->waiting))
        kick(c);
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
        }
    }
    /* New transfers need curl to look at them; its timer callback does. */
    socket_action(c, CURL_SOCKET_TIMEOUT, 0);
}

/* Removes a cancelled request from wherever it is and closes it. */
static void req_finish(struct kube_request *r)
{
    struct kube_client *c = r->c;
    switch (r->state) {
    case REQ_WAITING:
        TAILQ_REMOVE(&c->waiting, r, link);
        c->stats.waiting--;
        req_close(r);
        break;
    case REQ_ACTIVE:
        TAILQ_REMOVE(&c->active, r, link);
        if (!r->watch)
            c->stats.in_flight--;
        req_release_easy(r);
        req_close(r);
        kick(c);
        break;
    case REQ_BACKOFF:
        TAILQ_REMOVE(&c->backoff, r, link);
        uv_timer_stop(&r->timer);
        req_close(r);
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
    if (buf_append_str(&url, c->cfg->server) || buf_append_str(&url, path)) {
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

int kube_request(struct kube_client *c, enum kube_verb verb, const char *path, const char *body,
                 size_t body_len, kube_response_cb cb, void *arg, struct kube_request **handle)
{
    struct kube_request *r;
    int rc = req_new(c, verb, path, body, body_len, &r);
    if (rc)
        return rc;
    r->cb = cb;
    r->arg = arg;
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

static void client_maybe_free(struct kube_client *c)
{
    if (!c->closing || c->handles_open > 0)
        return;
    free_token(c->token);
    free_token(c->token_new);
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
    client_maybe_free(c);
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

    if (cfg->token_file && !cfg->token) {
        if (kube_token_read(cfg->token_file, &c->token, err, errlen) != 0) {
            free(c);
            return -EINVAL;
        }
    }

    c->multi = curl_multi_init();
    if (!c->multi) {
        free_token(c->token);
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout_change);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 250L);

    uv_timer_init(loop, &c->curl_timer);
    c->curl_timer.data = c;
    uv_idle_init(loop, &c->kick);
    c->kick.data = c;
    uv_timer_init(loop, &c->token_timer);
    c->token_timer.data = c;
    c->handles_open = 3;
    if (cfg->token_file && !cfg->token) {
        uv_timer_start(&c->token_timer, on_token_timer, TOKEN_REREAD_MS, TOKEN_REREAD_MS);
        uv_unref((uv_handle_t *)&c->token_timer);
    }
    *out = c;
    return 0;
}

void kube_client_close(struct kube_client *c, void (*cb)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->close_cb = cb;
    c->close_arg = arg;
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
    /* Closes the connections; curl reports their sockets removed, which
     * closes their poll handles. Any it does not report are closed here. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (!TAILQ_EMPTY(&c->socks)) {
        struct sock_ctx *s = TAILQ_FIRST(&c->socks);
        TAILQ_REMOVE(&c->socks, s, link);
        uv_close((uv_handle_t *)&s->poll, on_sock_closed);
    }
    uv_timer_stop(&c->curl_timer);
    uv_idle_stop(&c->kick);
    uv_timer_stop(&c->token_timer);
    uv_close((uv_handle_t *)&c->curl_timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->token_timer, on_client_handle_closed);
}

void kube_client_stats(const struct kube_client *c, struct kube_client_stats *out)
{
    *out = c->stats;
}

const char *kube_client_server(const struct kube_client *c)
{
    return c->cfg->server;
}
