// SPDX-License-Identifier: Apache-2.0
/*
 * curl_uv.c - drives libcurl's multi interface from the libuv loop, as in
 * curl's multi-uv example: a uv_poll per socket curl asks to watch, and one
 * uv_timer for the timeouts curl asks for.
 */
#include <errno.h>
#include <stdlib.h>

#include "kube/client_int.h"

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct kube_client *c;
    TAILQ_ENTRY(sock_ctx) link;
};

void kube__curl_uv_action(struct kube_client *c, curl_socket_t fd, int flags)
{
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    kube__client_check_multi_info(c);
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
    kube__curl_uv_action(s->c, s->fd, flags);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock_ctx *s = h->data;
    struct kube_client *c = s->c;
    free(s);
    c->handles_open--;
    kube__client_maybe_free(c);
}

/* curl's socket callback. Each poll handle is also listed in c->socks, so
 * that closing the client finds those curl never reports removed. */
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
    kube__curl_uv_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* curl's timer callback: one timer serves the whole multi handle; -1 asks
 * for none. */
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

static void on_curl_timer_closed(uv_handle_t *h)
{
    struct kube_client *c = h->data;
    c->handles_open--;
    kube__client_maybe_free(c);
}

int kube__curl_uv_init(struct kube_client *c)
{
    c->multi = curl_multi_init();
    if (!c->multi)
        return -ENOMEM;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout_change);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 250L);

    uv_timer_init(c->loop, &c->curl_timer);
    c->curl_timer.data = c;
    c->handles_open++;
    return 0;
}

void kube__curl_uv_close(struct kube_client *c)
{
    /* Closes the connections; curl reports their sockets removed, which
     * closes their poll handles. Any it does not report are closed here. */
    while (c->nspare > 0)
        curl_easy_cleanup(c->spare[--c->nspare]);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (!TAILQ_EMPTY(&c->socks)) {
        struct sock_ctx *s = TAILQ_FIRST(&c->socks);
        TAILQ_REMOVE(&c->socks, s, link);
        uv_close((uv_handle_t *)&s->poll, on_sock_closed);
    }
    uv_timer_stop(&c->curl_timer);
    uv_close((uv_handle_t *)&c->curl_timer, on_curl_timer_closed);
}
