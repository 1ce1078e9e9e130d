// SPDX-License-Identifier: Apache-2.0
/* Unit test: the API client's in-flight bound against a slow server on
 * 127.0.0.1. Requests queued behind the bound wait without spinning the
 * loop: the process spends almost no CPU while the server takes its time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "kube/client.h"

#define REQUESTS        4
#define SERVER_DELAY_MS 250

struct server {
    int fd;
    unsigned port;
    int served;
    int most_at_once, now;
    pthread_mutex_t lock;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One connection: each request (headers end at a blank line; GETs carry
 * no body) is answered after SERVER_DELAY_MS, on the same connection. */
static void *serve_connection(void *arg)
{
    struct server *s = ((void **)arg)[0];
    int fd = (int)(intptr_t)((void **)arg)[1];
    free(arg);
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            pthread_mutex_lock(&s->lock);
            if (++s->now > s->most_at_once)
                s->most_at_once = s->now;
            pthread_mutex_unlock(&s->lock);
            sleep_ms(SERVER_DELAY_MS);
            static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       "Content-Length: 2\r\n\r\n{}";
            pthread_mutex_lock(&s->lock);
            s->now--;
            s->served++;
            pthread_mutex_unlock(&s->lock);
            if (write(fd, resp, sizeof(resp) - 1) != (ssize_t)sizeof(resp) - 1)
                goto out;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, have - used + 1);
            have -= used;
        }
        if (have == sizeof(buf) - 1)
            break;
    }
out:
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        void **a = malloc(2 * sizeof(void *));
        if (!a) {
            close(fd);
            continue;
        }
        a[0] = s;
        a[1] = (void *)(intptr_t)fd;
        pthread_t t;
        if (pthread_create(&t, NULL, serve_connection, a) != 0) {
            free(a);
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

static void server_start(struct server *s, pthread_t *t)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(t, NULL, serve, s), 0);
}

struct fixture {
    int done, ok;
};

static void on_response(void *arg, const struct kube_response *resp)
{
    struct fixture *f = arg;
    f->done++;
    if (resp->code == 200 && !resp->err)
        f->ok++;
}

static void on_closed(void *arg)
{
    (void)arg;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void requests_behind_the_bound_wait_without_spinning(void **state)
{
    (void)state;
    struct server s;
    pthread_t t;
    server_start(&s, &t);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", s.port);
    struct kube_config cfg = {.server = url, .source = "test"};
    struct kube_client_opts opts = {.max_in_flight = 1};
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct kube_client *c;
    char err[256];
    assert_int_equal(kube_client_new(&loop, &cfg, &opts, &c, err, sizeof(err)), 0);

    struct fixture f = {0};
    for (int i = 0; i < REQUESTS; i++)
        assert_int_equal(kube_request(c, KUBE_GET, "/api/v1/namespaces/x/pods/y", NULL, 0,
                                      on_response, &f, NULL),
                         0);
    double cpu0 = cpu_seconds();
    while (f.done < REQUESTS)
        uv_run(&loop, UV_RUN_ONCE);
    double cpu = cpu_seconds() - cpu0;

    assert_int_equal(f.ok, REQUESTS);
    pthread_mutex_lock(&s.lock);
    assert_int_equal(s.served, REQUESTS);
    assert_int_equal(s.most_at_once, 1); /* the bound held */
    pthread_mutex_unlock(&s.lock);
    /* Waiting costs next to nothing (a few ms); a loop that kept kicking
     * its queue while the bound was reached spent about 0.1 s here. */
    double wall = (double)(REQUESTS * SERVER_DELAY_MS) / 1000.0;
    print_message("client CPU %.3f s over %.2f s of server time\n", cpu, wall);
    assert_true(cpu < wall / 20);

    kube_client_close(c, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    shutdown(s.fd, SHUT_RDWR);
    close(s.fd);
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_behind_the_bound_wait_without_spinning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
