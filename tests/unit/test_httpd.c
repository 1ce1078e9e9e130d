// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the health/metrics HTTP server, on a real loop with real
 * sockets on 127.0.0.1: raw HTTP clients on the same loop, and curl in a
 * child process, while the server's loop keeps running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "httpd.h"

#define MAX_CLIENTS 16
#define RESP_MAX    16384

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct t;

/* A raw HTTP client on the test's loop: connects, writes req (split in two
 * with a pause when split > 0), reads until the server closes. */
struct client {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr[2];
    uv_timer_t pause;
    struct t *t;
    const char *req;
    size_t split;
    uint64_t drip_ms; /* > 0: send req one byte every drip_ms instead */
    size_t dripped;
    char resp[RESP_MAX];
    size_t len;
    bool connected;
    bool eof;
    int open; /* handles not yet closed */
    uint64_t started_at, done_at;
};

struct t {
    uv_loop_t loop;
    uv_timer_t guard;
    struct httpd *s;
    int calls; /* handler calls */
    char method[16];
    char path[64];
    int closed; /* httpd_close callbacks */
    struct client c[MAX_CLIENTS];
    int nclients;
    int clients_done;
};

static int handler(void *arg, const char *method, const char *path, struct buf *body,
                   const char **content_type)
{
    struct t *t = arg;
    int rc;
    t->calls++;
    snprintf(t->method, sizeof(t->method), "%s", method);
    snprintf(t->path, sizeof(t->path), "%s", path);

    if (strcmp(path, "/healthz") == 0) {
        rc = buf_append_str(body, "ok\n");
        return rc ? rc : 200;
    }
    if (strcmp(path, "/metrics") == 0) {
        *content_type = METRICS_TYPE;
        rc = buf_printf(body, "kage_up 1\nkage_calls %d\n", t->calls);
        return rc ? rc : 200;
    }
    if (strcmp(path, "/big") == 0) {
        for (int i = 0; i < 8; i++) {
            rc = buf_append_str(body, "0123456789\n");
            if (rc)
                return rc;
        }
        return 200;
    }
    if (strcmp(path, "/teapot") == 0)
        return 42;
    if (strcmp(path, "/quit") == 0) {
        httpd_close(t->s, NULL, NULL);
        return 200;
    }
    rc = buf_append_str(body, "not found\n");
    return rc ? rc : 404;
}

static void on_closed(void *arg)
{
    struct t *t = arg;
    t->closed++;
}

static void on_guard(uv_timer_t *h)
{
    (void)h;
}

static void t_init(struct t *t)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->guard);
}

static void t_start(struct t *t, const struct httpd_opts *opts)
{
    char err[256] = "";
    int rc = httpd_start_opts(&t->loop, "127.0.0.1:0", opts, handler, t, &t->s, err, sizeof(err));
    if (rc)
        fail_msg("httpd_start: %d %s", rc, err);
    assert_true(httpd_port(t->s) > 0);
}

/* Closes the server (unless the test did), and checks that it and every
 * handle went away: the close callback ran once and the loop closes. */
static void t_finish(struct t *t)
{
    if (t->s && !t->closed) {
        httpd_close(t->s, on_closed, t);
        assert_int_equal(t->closed, 0); /* only after the handles close */
    }
    uv_close((uv_handle_t *)&t->guard, NULL);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t->closed, 1);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* Runs the loop until every client is done; fails after max_ms. */
static void run_clients(struct t *t, uint64_t max_ms)
{
    uint64_t start = uv_now(&t->loop);
    uv_timer_start(&t->guard, on_guard, max_ms, 0);
    while (t->clients_done < t->nclients) {
        uv_run(&t->loop, UV_RUN_ONCE);
        uv_update_time(&t->loop);
        if (uv_now(&t->loop) - start >= max_ms)
            fail_msg("clients not done after %llu ms", (unsigned long long)max_ms);
    }
    uv_timer_stop(&t->guard);
}

/* ---- the raw client ---- */

static void client_handle_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    if (--c->open == 0)
        c->t->clients_done++;
}

static void client_done(struct client *c)
{
    if (c->done_at)
        return;
    c->done_at = uv_now(&c->t->loop);
    uv_close((uv_handle_t *)&c->tcp, client_handle_closed);
    uv_close((uv_handle_t *)&c->pause, client_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct client *c = h->data;
    (void)hint;
    b->base = c->resp + c->len;
    b->len = RESP_MAX - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct client *c = s->data;
    (void)b;
    if (n > 0) {
        c->len += (size_t)n;
        c->resp[c->len] = '\0';
        assert_true(c->len < RESP_MAX - 1);
        return;
    }
    if (n == UV_EOF || n == UV_ECONNRESET) {
        c->eof = true;
        client_done(c);
    } else if (n < 0) {
        fail_msg("client read: %s", uv_strerror((int)n));
    }
}

static void on_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* the server may hang up first; the read side tells */
}

static void send_part(struct client *c, int i, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    assert_int_equal(uv_write(&c->wr[i], (uv_stream_t *)&c->tcp, &b, 1, on_written), 0);
}

static void on_pause(uv_timer_t *h)
{
    struct client *c = h->data;
    send_part(c, 1, c->req + c->split, strlen(c->req) - c->split);
}

/* One more byte of a trickled request; a closed connection ends it. */
static void on_drip(uv_timer_t *h)
{
    struct client *c = h->data;
    if (c->eof || c->dripped >= strlen(c->req)) {
        uv_timer_stop(h);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->req + c->dripped, 1);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) == 1)
        c->dripped++;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    assert_int_equal(status, 0);
    c->connected = true;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read), 0);
    if (!c->req)
        return; /* says nothing */
    if (c->drip_ms) {
        uv_timer_start(&c->pause, on_drip, 0, c->drip_ms);
        return;
    }
    if (c->split) {
        send_part(c, 0, c->req, c->split);
        uv_timer_start(&c->pause, on_pause, 150, 0);
    } else {
        send_part(c, 0, c->req, strlen(c->req));
    }
}

/* Starts a client from source address src (NULL: the kernel's choice) that
 * sends req (NULL: nothing) to ip:port of the server, one byte every drip_ms
 * when drip_ms > 0. */
static struct client *client_start_full(struct t *t, const char *src, const char *ip,
                                        const char *req, size_t split, uint64_t drip_ms)
{
    assert_true(t->nclients < MAX_CLIENTS);
    struct client *c = &t->c[t->nclients++];
    struct sockaddr_storage ss;
    c->t = t;
    c->req = req;
    c->split = split;
    c->drip_ms = drip_ms;
    c->started_at = uv_now(&t->loop);
    if (strchr(ip, ':'))
        assert_int_equal(uv_ip6_addr(ip, httpd_port(t->s), (struct sockaddr_in6 *)&ss), 0);
    else
        assert_int_equal(uv_ip4_addr(ip, httpd_port(t->s), (struct sockaddr_in *)&ss), 0);
    uv_tcp_init(&t->loop, &c->tcp);
    uv_timer_init(&t->loop, &c->pause);
    c->tcp.data = c->pause.data = c->conn.data = c;
    c->open = 2;
    if (src) {
        struct sockaddr_in from;
        assert_int_equal(uv_ip4_addr(src, 0, &from), 0);
        assert_int_equal(uv_tcp_bind(&c->tcp, (struct sockaddr *)&from, 0), 0);
    }
    assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&ss, on_connect), 0);
    return c;
}

static struct client *client_start_at(struct t *t, const char *ip, const char *req, size_t split)
{
    return client_start_full(t, NULL, ip, req, split, 0);
}

static struct client *client_start(struct t *t, const char *req, size_t split)
{
    return client_start_at(t, "127.0.0.1", req, split);
}

static int resp_status(const struct client *c)
{
    int status = 0;
    if (sscanf(c->resp, "HTTP/1.1 %d ", &status) != 1)
        fail_msg("no status line in: %s", c->resp);
    return status;
}

/* The value of header name in the response, or NULL. */
static const char *resp_header(const struct client *c, const char *name, char *out, size_t outlen)
{
    const char *end = strstr(c->resp, "\r\n\r\n");
    size_t n = strlen(name);
    for (const char *p = strstr(c->resp, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 2 + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

static const char *resp_body(const struct client *c)
{
    const char *end = strstr(c->resp, "\r\n\r\n");
    assert_non_null(end);
    return end + 4;
}

static void assert_header(const struct client *c, const char *name, const char *want)
{
    char v[128];
    const char *got = resp_header(c, name, v, sizeof(v));
    if (!got)
        fail_msg("no %s header in: %s", name, c->resp);
    assert_string_equal(got, want);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"

/* ---- tests ---- */

static void test_get_healthz_returns_the_handlers_response(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 5000);

    assert_int_equal(resp_status(c), 200);
    assert_header(c, "Content-Type", "text/plain; charset=utf-8");
    assert_header(c, "Content-Length", "3");
    assert_string_equal(resp_body(c), "ok\n");
    assert_int_equal(t.calls, 1);
    assert_string_equal(t.method, "GET");
    assert_string_equal(t.path, "/healthz");
    t_finish(&t);
}

static void test_metrics_content_type_and_query_string_stripped(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c = client_start(&t, GET("/metrics?format=text"), 0);
    run_clients(&t, 5000);

    assert_int_equal(resp_status(c), 200);
    assert_header(c, "Content-Type", METRICS_TYPE);
    assert_string_equal(resp_body(c), "kage_up 1\nkage_calls 1\n");
    assert_string_equal(t.path, "/metrics");
    t_finish(&t);
}

static void test_head_sends_headers_without_body(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c =
        client_start(&t, "HEAD /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 0);
    run_clients(&t, 5000);

    assert_int_equal(resp_status(c), 200);
    assert_header(c, "Content-Length", "3");
    assert_string_equal(resp_body(c), "");
    assert_int_equal(t.calls, 1);
    assert_string_equal(t.method, "HEAD");
    t_finish(&t);
}

static void test_post_gets_405_with_allow_and_no_handler_call(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c = client_start(&t,
                                    "POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                                    "Connection: close\r\n\r\nhello",
                                    0);
    struct client *d =
        client_start(&t, "DELETE /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 0);
    run_clients(&t, 5000);

    for (int i = 0; i < 2; i++) {
        struct client *x = i ? d : c;
        assert_int_equal(resp_status(x), 405);
        assert_header(x, "Allow", "GET, HEAD");
        assert_string_equal(resp_body(x), "method not allowed\n");
    }
    assert_int_equal(t.calls, 0);
    t_finish(&t);
}

static void test_get_with_a_body_is_answered_without_reading_it(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c =
        client_start(&t, "GET /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nabcd", 0);
    run_clients(&t, 5000);

    /* served, then closed although the client did not ask for it */
    assert_int_equal(resp_status(c), 200);
    assert_header(c, "Connection", "close");
    assert_string_equal(resp_body(c), "ok\n");
    assert_int_equal(t.calls, 1);
    t_finish(&t);
}

static void test_404_from_the_handler_passes_through(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c = client_start(&t, GET("/nope"), 0);
    run_clients(&t, 5000);

    assert_int_equal(resp_status(c), 404);
    assert_string_equal(resp_body(c), "not found\n");
    assert_string_equal(t.path, "/nope");
    t_finish(&t);
}

static void test_body_over_its_cap_or_bad_status_gives_plain_500(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.body_max = 32};
    t_start(&t, &o);

    struct client *big = client_start(&t, GET("/big"), 0);
    struct client *tea = client_start(&t, GET("/teapot"), 0);
    struct client *ok = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 5000);

    assert_int_equal(resp_status(big), 500);
    assert_header(big, "Content-Type", "text/plain; charset=utf-8");
    assert_string_equal(resp_body(big), "internal error: No space left on device\n");
    assert_int_equal(resp_status(tea), 500);
    assert_string_equal(resp_body(tea), "internal error: handler returned status 42\n");
    assert_int_equal(resp_status(ok), 200); /* under the cap */
    t_finish(&t);
}

/* A child process runs curl over one kept-alive connection and reports on
 * a pipe; the parent only runs the loop. */
struct child_report {
    uv_pipe_t pipe;
    char text[256];
    size_t len;
    bool eof;
};

static size_t curl_sink(char *p, size_t size, size_t n, void *userp)
{
    struct buf *b = userp;
    return buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static void child_requests(int port, int n, int fd)
{
    CURL *e = curl_easy_init();
    struct buf b;
    char url[128];
    int ok = 0;
    long connects = 0;

    buf_init(&b, 4096);
    for (int i = 0; e && i < n; i++) {
        const char *path = i % 3 == 0 ? "/healthz" : i % 3 == 1 ? "/metrics" : "/missing";
        long want = i % 3 == 2 ? 404 : 200;
        long code = 0, conns = 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        buf_reset(&b);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_sink);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
        if (curl_easy_perform(e) != CURLE_OK)
            continue;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
        connects += conns;
        if (code == want && b.len > 0)
            ok++;
    }
    char line[64];
    int len = snprintf(line, sizeof(line), "ok=%d connects=%ld\n", ok, connects);
    ssize_t w = write(fd, line, (size_t)len);
    (void)w;
}

static void report_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct child_report *r = h->data;
    (void)hint;
    b->base = r->text + r->len;
    b->len = sizeof(r->text) - 1 - r->len;
}

static void report_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct child_report *r = s->data;
    (void)b;
    if (n > 0) {
        r->len += (size_t)n;
        r->text[r->len] = '\0';
    } else if (n < 0) {
        r->eof = true;
        uv_close((uv_handle_t *)s, NULL);
    }
}

static void test_many_sequential_requests_from_curl_on_one_connection(void **state)
{
    (void)state;
    enum {
        N = 300
    };
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_requests(httpd_port(t.s), N, fds[1]);
        _exit(0);
    }
    close(fds[1]);

    struct child_report r = {0};
    uv_pipe_init(&t.loop, &r.pipe, 0);
    r.pipe.data = &r;
    assert_int_equal(uv_pipe_open(&r.pipe, fds[0]), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&r.pipe, report_alloc, report_read), 0);
    uv_timer_start(&t.guard, on_guard, 30000, 0);
    while (!r.eof)
        uv_run(&t.loop, UV_RUN_ONCE);
    uv_timer_stop(&t.guard);
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));

    char want[64];
    snprintf(want, sizeof(want), "ok=%d connects=1\n", N);
    assert_string_equal(r.text, want);
    assert_int_equal(t.calls, N);
    t_finish(&t);
}

static void test_concurrent_clients_and_a_slow_writer_do_not_wait_on_each_other(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    /* nine at once from one address: more than the default per-address limit */
    struct httpd_opts o = {.max_per_ip = 16};
    t_start(&t, &o);

    /* The slow one sends half its request line, then the rest 150 ms later. */
    struct client *slow = client_start(&t, GET("/metrics"), 7);
    for (int i = 0; i < 8; i++)
        client_start(&t, i % 2 ? GET("/healthz") : GET("/other"), 0);
    run_clients(&t, 5000);

    for (int i = 1; i <= 8; i++) {
        struct client *c = &t.c[i];
        assert_int_equal(resp_status(c), i % 2 ? 404 : 200);
        assert_string_equal(resp_body(c), i % 2 ? "not found\n" : "ok\n");
        assert_true(c->done_at < slow->done_at);
    }
    assert_int_equal(resp_status(slow), 200);
    assert_true(slow->done_at - slow->started_at >= 140);
    assert_int_equal(t.calls, 9);
    t_finish(&t);
}

static void count_turn(uv_prepare_t *h)
{
    ++*(int *)h->data;
}

static void test_silent_client_is_dropped_after_timeout_without_blocking_the_loop(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.timeout_s = 1};
    t_start(&t, &o);

    int turns = 0;
    uv_prepare_t prep;
    uv_prepare_init(&t.loop, &prep);
    prep.data = &turns;
    uv_prepare_start(&prep, count_turn);

    struct client *idle = client_start(&t, NULL, 0);
    struct client *busy = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 5000);
    uv_close((uv_handle_t *)&prep, NULL);

    /* The other client is served at once, the silent one closed with no
     * response after about a second, and the loop idles meanwhile rather
     * than spinning on zero timeouts. */
    assert_true(idle->connected);
    assert_int_equal(resp_status(busy), 200);
    assert_true(busy->done_at - busy->started_at < 500);
    assert_true(idle->eof);
    assert_int_equal(idle->len, 0);
    uint64_t idle_ms = idle->done_at - idle->started_at;
    if (idle_ms < 900 || idle_ms > 3000)
        fail_msg("silent client dropped after %llu ms", (unsigned long long)idle_ms);
    if (turns > 50)
        fail_msg("%d loop turns while waiting", turns);
    assert_int_equal(t.calls, 1);
    t_finish(&t);
}

static void test_connection_limit_queues_the_next_client(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.timeout_s = 1, .max_conns = 2};
    t_start(&t, &o);

    client_start(&t, NULL, 0);
    client_start(&t, NULL, 0);
    struct client *third = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 5000);

    /* served, but only once a silent one timed out */
    assert_int_equal(resp_status(third), 200);
    assert_true(third->done_at - third->started_at >= 900);
    assert_int_equal(t.calls, 1);
    t_finish(&t);
}

static void test_trickled_headers_are_cut_at_the_deadline(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.timeout_s = 1, .headers_s = 2};
    t_start(&t, &o);

    /* One header byte every 300 ms: never idle for the 1 s timeout. */
    struct client *drip =
        client_start_full(&t, NULL, "127.0.0.1",
                          "GET /healthz HTTP/1.1\r\nHost: test\r\n"
                          "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
                          0, 300);
    struct client *quick = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 6000);

    assert_int_equal(resp_status(quick), 200);
    assert_true(quick->done_at - quick->started_at < 500);
    /* Closed with nothing sent, after the 2 s deadline and well before the
     * request could have been finished; the idle timeout alone let it live. */
    assert_true(drip->eof);
    assert_int_equal(drip->len, 0);
    uint64_t ms = drip->done_at - drip->started_at;
    if (ms < 1900 || ms > 3000)
        fail_msg("trickling client closed after %llu ms", (unsigned long long)ms);
    assert_true(drip->dripped < 15);
    assert_int_equal(t.calls, 1);
    t_finish(&t);
}

static void test_keep_alive_requests_each_get_the_full_deadline(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.timeout_s = 10, .headers_s = 1};
    t_start(&t, &o);

    /* Three requests on one connection, 400 ms apart: 1.2 s in all, past the
     * 1 s deadline, which is counted for each request on its own. */
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    struct client *c = client_start(&t, NULL, 0);
    while (!c->connected)
        uv_run(&t.loop, UV_RUN_ONCE);
    for (int i = 0; i < 3; i++) {
        uv_buf_t b = uv_buf_init((char *)req, sizeof(req) - 1);
        assert_int_equal(uv_try_write((uv_stream_t *)&c->tcp, &b, 1), (int)sizeof(req) - 1);
        uv_timer_start(&t.guard, on_guard, 400, 0);
        while (uv_is_active((uv_handle_t *)&t.guard))
            uv_run(&t.loop, UV_RUN_ONCE);
    }
    assert_false(c->eof);
    assert_int_equal(t.calls, 3);
    /* then, silent, it is cut at its next request's deadline: 1 s after the
     * third response (sent at 800 ms or a little later), found by the next
     * sweep (every 250 ms), so between 1800 ms and about 2050 ms; never
     * before 1800 (10 ms are left for the loop's millisecond clock). */
    run_clients(&t, 3000);
    assert_true(c->eof);
    uint64_t ms = c->done_at - c->started_at;
    if (ms < 1790 || ms > 2700)
        fail_msg("keep-alive connection closed after %llu ms", (unsigned long long)ms);
    t_finish(&t);
}

static void test_one_address_gets_at_most_its_share_of_connections(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    struct httpd_opts o = {.timeout_s = 1, .max_conns = 8, .max_per_ip = 2};
    t_start(&t, &o);

    struct client *held[3];
    for (int i = 0; i < 3; i++)
        held[i] = client_start_full(&t, "127.0.0.2", "127.0.0.1", NULL, 0, 0);
    struct client *other = client_start_full(&t, "127.0.0.3", "127.0.0.1", GET("/healthz"), 0, 0);
    run_clients(&t, 5000);

    /* The third from 127.0.0.2 is closed at once; the other address is
     * served at once; the two within the limit last until the idle timeout. */
    assert_true(held[2]->eof);
    assert_true(held[2]->done_at - held[2]->started_at < 500);
    assert_int_equal(resp_status(other), 200);
    assert_true(other->done_at - other->started_at < 500);
    for (int i = 0; i < 2; i++) {
        assert_true(held[i]->eof);
        assert_true(held[i]->done_at - held[i]->started_at >= 900);
    }
    assert_int_equal(t.calls, 1);
    t_finish(&t);
}

static void test_close_drops_open_connections_and_leaves_no_handles(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *idle = client_start(&t, NULL, 0);
    struct client *half = client_start(&t, "GET /healthz HTTP/1.1\r\nHo", 0);
    while (!idle->connected || !half->connected)
        uv_run(&t.loop, UV_RUN_ONCE);
    /* let the server accept both and read the partial request */
    uv_timer_start(&t.guard, on_guard, 50, 0);
    uv_run(&t.loop, UV_RUN_ONCE);

    httpd_close(t.s, on_closed, &t);
    assert_int_equal(t.closed, 0);
    run_clients(&t, 5000);
    assert_true(idle->eof);
    assert_true(half->eof);
    assert_int_equal(half->len, 0);
    assert_int_equal(t.calls, 0);
    t_finish(&t);
}

static void test_close_from_inside_the_handler_is_deferred(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    struct client *c = client_start(&t, GET("/quit"), 0);
    run_clients(&t, 5000);
    assert_true(c->eof);
    assert_int_equal(t.calls, 1);
    /* a small response goes out within the same MHD_run, before the close */
    assert_int_equal(resp_status(c), 200);

    /* the handler passed no callback: the loop still ends clean */
    uv_close((uv_handle_t *)&t.guard, NULL);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&t.loop), 0);
}

static int never_called(void *arg, const char *method, const char *path, struct buf *body,
                        const char **content_type)
{
    (void)arg, (void)method, (void)path, (void)body, (void)content_type;
    fail_msg("handler called");
    return 500;
}

static void test_bad_addresses_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        const char *why;
    } cases[] = {
        {"nope", "want HOST:PORT, e.g. 127.0.0.1:8081 or [::1]:8081"},
        {"1.2.3.4:99999", "the port must be a number from 0 to 65535"},
        {"[::1", "missing ']' after the IPv6 address"},
        {"", "want HOST:PORT, e.g. 127.0.0.1:8081 or [::1]:8081"},
        {"127.0.0.1:", "the port must be a number from 0 to 65535"},
        {"127.0.0.1:80x", "the port must be a number from 0 to 65535"},
        {"127.0.0.1:-1", "the port must be a number from 0 to 65535"},
        {":8081", "want a numeric IPv4 address before the ':', e.g. 0.0.0.0:8081"},
        {"localhost:8081", "want a numeric IPv4 address before the ':', e.g. 0.0.0.0:8081"},
        {"300.1.1.1:80", "want a numeric IPv4 address before the ':', e.g. 0.0.0.0:8081"},
        {"::1:8081", "an IPv6 address goes in brackets, e.g. [::1]:8081"},
        {"[::1]8081", "want [IPv6]:PORT"},
        {"[]:8081", "not a numeric IPv6 address in the brackets"},
        {"[1.2.3.4]:8081", "not a numeric IPv6 address in the brackets"},
    };
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct httpd *s = (struct httpd *)&loop; /* untouched on error */
        char err[256], want[256];
        int rc = httpd_start(&loop, cases[i].addr, never_called, NULL, &s, err, sizeof(err));
        assert_int_equal(rc, -EINVAL);
        assert_ptr_equal(s, (struct httpd *)&loop);
        snprintf(want, sizeof(want), "httpd: bad listen address \"%s\": %s", cases[i].addr,
                 cases[i].why);
        assert_string_equal(err, want);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_port_in_use_names_the_address(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    t_start(&t, NULL);

    char addr[64], err[256], want[256];
    struct httpd *s2 = NULL;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpd_port(t.s));
    int rc = httpd_start(&t.loop, addr, never_called, NULL, &s2, err, sizeof(err));
    assert_int_equal(rc, -EADDRINUSE);
    assert_null(s2);
    snprintf(want, sizeof(want), "httpd: cannot listen on %s: address already in use", addr);
    assert_string_equal(err, want);

    /* an address this host does not have (TEST-NET-1) */
    rc = httpd_start(&t.loop, "192.0.2.1:0", never_called, NULL, &s2, err, sizeof(err));
    assert_int_equal(rc, -EADDRNOTAVAIL);
    assert_null(s2);
    assert_string_equal(err,
                        "httpd: cannot listen on 192.0.2.1:0: Cannot assign requested address");

    /* the first server still serves */
    struct client *c = client_start(&t, GET("/healthz"), 0);
    run_clients(&t, 5000);
    assert_int_equal(resp_status(c), 200);
    t_finish(&t);
}

static void test_ipv6_loopback_and_dual_stack_any(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *client_ip;
    } cases[] = {{"[::1]:0", "::1"}, {"[::]:0", "::1"}, {"[::]:0", "127.0.0.1"}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct t t;
        char err[256];
        t_init(&t);
        int rc = httpd_start(&t.loop, cases[i].addr, handler, &t, &t.s, err, sizeof(err));
        if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
            uv_close((uv_handle_t *)&t.guard, NULL);
            uv_run(&t.loop, UV_RUN_DEFAULT);
            uv_loop_close(&t.loop);
            skip(); /* no IPv6 here */
        }
        if (rc)
            fail_msg("%s: %s", cases[i].addr, err);
        struct client *c = client_start_at(&t, cases[i].client_ip, GET("/healthz"), 0);
        run_clients(&t, 5000);
        assert_int_equal(resp_status(c), 200);
        assert_string_equal(resp_body(c), "ok\n");
        t_finish(&t);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_healthz_returns_the_handlers_response),
        cmocka_unit_test(test_metrics_content_type_and_query_string_stripped),
        cmocka_unit_test(test_head_sends_headers_without_body),
        cmocka_unit_test(test_post_gets_405_with_allow_and_no_handler_call),
        cmocka_unit_test(test_get_with_a_body_is_answered_without_reading_it),
        cmocka_unit_test(test_404_from_the_handler_passes_through),
        cmocka_unit_test(test_body_over_its_cap_or_bad_status_gives_plain_500),
        cmocka_unit_test(test_many_sequential_requests_from_curl_on_one_connection),
        cmocka_unit_test(test_concurrent_clients_and_a_slow_writer_do_not_wait_on_each_other),
        cmocka_unit_test(test_silent_client_is_dropped_after_timeout_without_blocking_the_loop),
        cmocka_unit_test(test_connection_limit_queues_the_next_client),
        cmocka_unit_test(test_trickled_headers_are_cut_at_the_deadline),
        cmocka_unit_test(test_keep_alive_requests_each_get_the_full_deadline),
        cmocka_unit_test(test_one_address_gets_at_most_its_share_of_connections),
        cmocka_unit_test(test_close_drops_open_connections_and_leaves_no_handles),
        cmocka_unit_test(test_close_from_inside_the_handler_is_deferred),
        cmocka_unit_test(test_bad_addresses_are_refused_with_a_reason),
        cmocka_unit_test(test_port_in_use_names_the_address),
        cmocka_unit_test(test_ipv6_loopback_and_dual_stack_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
