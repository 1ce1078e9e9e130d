// SPDX-License-Identifier: Apache-2.0
/* Unit tests for how an informer fills its cache: the streaming list (a
 * WATCH with sendInitialEvents, synced at its end bookmark) and the paged
 * LIST it falls back to, against a scripted API server on 127.0.0.1 that
 * runs on the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "log.h"
#include "reconcile/observed.h"

#define MAX_STEPS 8

/* One request the server expects, in order, and its answer. */
struct step {
    const char *want[4]; /* substrings the path holds */
    const char *refuse;  /* a substring it must not hold, or NULL */
    int status;
    const char *body; /* a watch's lines, or the whole body */
    int hold;         /* a watch that stays open (the last step's ends the run) */
};

struct fixture;

struct conn {
    uv_tcp_t tcp;
    struct fixture *t;
    char req[4096];
    size_t len;
    int answered;
    struct conn *next;
};

struct fixture {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_timer_t timer;
    char url[64];
    struct kube_config cfg;
    struct kube_client *client;
    struct informer *inf;
    struct conn *conns;
    const struct step *steps;
    size_t nsteps, served;
    char paths[MAX_STEPS][512];
    uint64_t served_ms[MAX_STEPS];
    int adds, deletes, synced, closed, timed_out, unexpected;
    size_t size_at_sync;
    int adds_at_sync;
    char rv_at_sync[64];
    char deleted[64];
};

static void on_add(void *arg, const char *key, const void *obj)
{
    (void)key;
    (void)obj;
    ((struct fixture *)arg)->adds++;
}

static void on_delete(void *arg, const char *key, const void *obj)
{
    struct fixture *t = arg;
    (void)obj;
    t->deletes++;
    snprintf(t->deleted, sizeof(t->deleted), "%s", key);
}

static void on_synced(void *arg)
{
    struct fixture *t = arg;
    t->synced++;
    t->size_at_sync = informer_size(t->inf);
    t->adds_at_sync = t->adds;
    snprintf(t->rv_at_sync, sizeof(t->rv_at_sync), "%s", informer_resource_version(t->inf));
}

static void on_closed(void *arg)
{
    ((struct fixture *)arg)->closed++;
}

/* ---- the scripted server ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct conn **p = &c->t->conns;
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    free(c);
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

struct write_req {
    uv_write_t w;
    struct conn *c;
    int close_after;
    char data[];
};

static void on_written(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    (void)status;
    if (wr->close_after)
        conn_close(wr->c);
    free(wr);
}

static void answer(struct conn *c, const struct step *s)
{
    char head[256];
    size_t blen = strlen(s->body);
    int watch = s->status == 200 && strstr(c->req, "watch=1") != NULL;
    int n = watch ? snprintf(head, sizeof(head),
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s"
                             "Transfer-Encoding: chunked\r\n\r\n",
                             s->hold ? "" : "Connection: close\r\n")
                  : snprintf(head, sizeof(head),
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                             s->status, blen);
    if (watch && blen)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%zx\r\n", blen);
    /* A chunk's end, then (unless the watch goes on) the body's. */
    const char *tail = !watch    ? ""
                       : s->hold ? (blen ? "\r\n" : "")
                       : blen    ? "\r\n0\r\n\r\n"
                                 : "0\r\n\r\n";
    size_t len = (size_t)n + blen + strlen(tail);
    struct write_req *wr = malloc(sizeof(*wr) + len + 1);
    assert_non_null(wr);
    snprintf(wr->data, len + 1, "%s%s%s", head, s->body, tail);
    wr->c = c;
    wr->close_after = !s->hold;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
    assert_int_equal(uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written), 0);
}

static void serve(struct conn *c)
{
    struct fixture *t = c->t;
    const char *sp = strchr(c->req, ' ');
    const char *end = sp ? strstr(sp + 1, " HTTP/") : NULL;
    c->answered = 1;
    if (!end || t->served >= t->nsteps) {
        t->unexpected++;
        uv_stop(&t->loop);
        conn_close(c);
        return;
    }
    size_t i = t->served++;
    snprintf(t->paths[i], sizeof(t->paths[i]), "%.*s", (int)(end - sp - 1), sp + 1);
    t->served_ms[i] = uv_now(&t->loop);
    answer(c, &t->steps[i]);
    if (i + 1 == t->nsteps)
        uv_stop(&t->loop);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    (void)b;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (!c->answered && strstr(c->req, "\r\n\r\n"))
        serve(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct fixture *t = server->data;
    assert_int_equal(status, 0);
    struct conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->t = t;
    c->next = t->conns;
    t->conns = c;
    uv_tcp_init(&t->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fixture *t = calloc(1, sizeof(*t));
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    assert_non_null(t);
    log_set_level(LOG_WARN);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_tcp_init(&t->loop, &t->server);
    t->server.data = t;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t->server, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&t->server, 8, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&t->server, (struct sockaddr *)&got, &len), 0);
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&got)->sin_port));
    uv_timer_init(&t->loop, &t->timer);
    t->timer.data = t;
    t->cfg.server = t->url;
    char err[256];
    assert_int_equal(kube_client_new(&t->loop, &t->cfg, NULL, &t->client, err, sizeof(err)), 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *t = *state;
    if (t->inf)
        informer_close(t->inf, on_closed, t);
    kube_client_close(t->client, on_closed, t);
    for (struct conn *c = t->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&t->server, NULL);
    uv_close((uv_handle_t *)&t->timer, NULL);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t->closed, t->inf ? 2 : 1);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
    return 0;
}

static void on_timeout(uv_timer_t *tm)
{
    struct fixture *t = tm->data;
    t->timed_out = 1;
    uv_stop(&t->loop);
}

static void on_settled(uv_timer_t *tm)
{
    uv_stop(tm->loop);
}

/* Starts an informer of pods and runs until the script's last request has
 * been answered and a moment more; then checks each request's path. */
static void run(struct fixture *t, const struct step *steps, size_t n, uint64_t stream_wait_ms)
{
    static const struct informer_ops ops = {observed_decode_pod, free, NULL};
    static const struct informer_handlers h = {on_add, NULL, on_delete, on_synced, NULL};
    struct informer_opts o = {.res = &KUBE_PODS, .stream_wait_ms = stream_wait_ms};
    t->steps = steps;
    t->nsteps = n;
    assert_int_equal(informer_new(t->client, &t->loop, &o, &ops, &h, t, &t->inf), 0);
    assert_int_equal(informer_start(t->inf), 0);
    uv_timer_start(&t->timer, on_timeout, 5000, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_timer_start(&t->timer, on_settled, 100, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_false(t->timed_out);
    assert_int_equal(t->unexpected, 0);
    assert_int_equal(t->served, n);
    for (size_t i = 0; i < n; i++) {
        for (size_t w = 0; w < 4 && steps[i].want[w]; w++)
            if (!strstr(t->paths[i], steps[i].want[w]))
                fail_msg("request %zu: %s lacks %s", i, t->paths[i], steps[i].want[w]);
        if (steps[i].refuse && strstr(t->paths[i], steps[i].refuse))
            fail_msg("request %zu: %s holds %s", i, t->paths[i], steps[i].refuse);
    }
}

#define POD(name, rv)                                                                  \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"n\",\"uid\":\"u-" name "\"," \
    "\"resourceVersion\":\"" rv "\"}}"
#define EVENT(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}\n"
#define END_BOOKMARK(rv)                                                                       \
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{" \
    "\"resourceVersion\":\"" rv "\",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}\n"
#define GONE                                                                                \
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":" \
    "\"Failure\",\"message\":\"too old resource version\",\"reason\":\"Expired\","          \
    "\"code\":410}}\n"

/* The four parameters of a streaming list, from no resourceVersion. */
#define STREAM_WANT                                                               \
    {                                                                             \
        "watch=1", "sendInitialEvents=true", "resourceVersionMatch=NotOlderThan", \
            "allowWatchBookmarks=true"                                            \
    }

static void a_streaming_list_syncs_the_cache_at_its_end_bookmark(void **state)
{
    struct fixture *t = *state;
    const struct step steps[] = {
        {STREAM_WANT, "resourceVersion=", 200,
         EVENT("ADDED", POD("a", "11")) EVENT("ADDED", POD("b", "12")) END_BOOKMARK("20")
             EVENT("ADDED", POD("c", "21")),
         0},
        /* The server ended it at its timeout: the same WATCH resumes. */
        {{"watch=1", "resourceVersion=21", "allowWatchBookmarks=true"},
         "sendInitialEvents",
         200,
         "",
         1},
    };
    run(t, steps, 2, 0);
    assert_int_equal(t->synced, 1);
    assert_int_equal(t->size_at_sync, 2);
    assert_int_equal(t->adds_at_sync, 2);
    assert_string_equal(t->rv_at_sync, "20");
    assert_int_equal(informer_size(t->inf), 3);
    assert_int_equal(t->adds, 3);
    assert_non_null(informer_get(t->inf, "n/c"));
    struct informer_stats st;
    informer_stats(t->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.streams, 1);
    assert_int_equal(st.list_pages, 0);
    assert_int_equal(st.relists, 0);
    assert_int_equal(st.watches, 2);
}

static void a_refused_stream_falls_back_to_the_paged_list_for_good(void **state)
{
    struct fixture *t = *state;
    const struct step steps[] = {
        {STREAM_WANT, NULL, 422,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
         "\"sendInitialEvents is forbidden for watch unless the WatchList feature gate is "
         "enabled\",\"reason\":\"Invalid\",\"code\":422}",
         0},
        {{"limit=250"},
         "watch",
         200,
         "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"30\"},\"items\":[" POD(
             "a", "29") "]}",
         0},
        {{"watch=1", "resourceVersion=30"}, "sendInitialEvents", 200, GONE, 0},
        /* The relist after 410 is a paged LIST again: the refusal is kept. */
        {{"limit=250"},
         "watch",
         200,
         "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"40\"},\"items\":[" POD(
             "a", "29") "," POD("b", "39") "]}",
         0},
        {{"watch=1", "resourceVersion=40"}, "sendInitialEvents", 200, "", 1},
    };
    run(t, steps, 5, 0);
    assert_int_equal(t->synced, 1);
    assert_int_equal(t->size_at_sync, 1);
    assert_string_equal(t->rv_at_sync, "30");
    assert_int_equal(informer_size(t->inf), 2);
    assert_int_equal(t->adds, 2);
    struct informer_stats st;
    informer_stats(t->inf, &st);
    assert_int_equal(st.lists, 2);
    assert_int_equal(st.relists, 1);
    assert_int_equal(st.streams, 0);
}

static void an_object_gone_between_streams_leaves_the_cache(void **state)
{
    struct fixture *t = *state;
    const struct step steps[] = {
        {STREAM_WANT, "resourceVersion=", 200,
         EVENT("ADDED", POD("a", "1")) EVENT("ADDED", POD("b", "2")) END_BOOKMARK("10") GONE, 0},
        /* After the 410 the cache is filled afresh by a second stream,
         * which no longer holds b. */
        {STREAM_WANT, "resourceVersion=", 200, EVENT("ADDED", POD("a", "1")) END_BOOKMARK("12"), 1},
    };
    run(t, steps, 2, 0);
    assert_int_equal(t->synced, 1);
    assert_int_equal(t->adds, 2);
    assert_int_equal(t->deletes, 1);
    assert_string_equal(t->deleted, "n/b");
    assert_int_equal(informer_size(t->inf), 1);
    assert_non_null(informer_get(t->inf, "n/a"));
    assert_null(informer_get(t->inf, "n/b"));
    assert_string_equal(informer_resource_version(t->inf), "12");
    struct informer_stats st;
    informer_stats(t->inf, &st);
    assert_int_equal(st.lists, 2);
    assert_int_equal(st.relists, 1);
    assert_int_equal(st.streams, 2);
}

static void a_stream_without_its_end_bookmark_falls_back_after_the_bound(void **state)
{
    struct fixture *t = *state;
    const struct step steps[] = {
        /* A server that ignores sendInitialEvents: the objects come as
         * ADDED events (a watch from no version), then nothing. */
        {STREAM_WANT, NULL, 200, EVENT("ADDED", POD("a", "1")) EVENT("ADDED", POD("b", "2")), 1},
        {{"limit=250"},
         "watch",
         200,
         "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[" POD("a",
                                                                                          "1") "]}",
         0},
        {{"watch=1", "resourceVersion=5"}, "sendInitialEvents", 200, "", 1},
    };
    run(t, steps, 3, 200);
    assert_true(t->served_ms[1] - t->served_ms[0] >= 200);
    assert_true(t->served_ms[1] - t->served_ms[0] < 2000);
    /* The stream's objects never reached the cache: the LIST's did. */
    assert_int_equal(t->synced, 1);
    assert_int_equal(t->adds, 1);
    assert_int_equal(informer_size(t->inf), 1);
    assert_null(informer_get(t->inf, "n/b"));
    struct informer_stats st;
    informer_stats(t->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.streams, 0);
}

static void a_resource_type_not_installed_is_synced_empty_and_streamed_again(void **state)
{
    struct fixture *t = *state;
    const struct step steps[] = {
        {STREAM_WANT, NULL, 404,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
         "\"the server could not find the requested resource\",\"reason\":\"NotFound\","
         "\"code\":404}",
         0},
        /* Not a refusal: the streaming list is asked for again. */
        {STREAM_WANT, "resourceVersion=", 200, EVENT("ADDED", POD("a", "2")) END_BOOKMARK("3"), 1},
    };
    run(t, steps, 2, 0);
    assert_int_equal(t->synced, 1);
    assert_int_equal(t->size_at_sync, 0);
    assert_int_equal(t->adds, 1);
    assert_int_equal(informer_size(t->inf), 1);
    assert_string_equal(informer_resource_version(t->inf), "3");
    struct informer_stats st;
    informer_stats(t->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.streams, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_streaming_list_syncs_the_cache_at_its_end_bookmark, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_refused_stream_falls_back_to_the_paged_list_for_good,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_object_gone_between_streams_leaves_the_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_stream_without_its_end_bookmark_falls_back_after_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_resource_type_not_installed_is_synced_empty_and_streamed_again, setup, teardown),
    };
    return cmocka_run_group_tests_name("informer_stream", tests, NULL, NULL);
}
