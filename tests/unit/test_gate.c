// SPDX-License-Identifier: Apache-2.0
/*
 * Unit test: kage-gate's probe (gate/canary.c) against listeners on
 * 127.0.0.1. A port nothing listens on is blocked at once; a listener
 * keeps the gate waiting until it closes; one that never closes runs the
 * gate into its deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../gate/canary.h"

/* A TCP socket bound to 127.0.0.1 on a port the kernel picks; listening
 * (with room for every connect a test makes) or not. */
static int local_socket(bool listening, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listening)
        assert_int_equal(listen(fd, 512), 0);
    return fd;
}

static void canary_at(struct canary *c, unsigned port)
{
    char text[32], err[128];
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    assert_int_equal(canary_parse(c, text, err, sizeof(err)), 0);
    assert_string_equal(c->text, text);
}

static void canaries_are_ip_literals_with_a_port(void **state)
{
    (void)state;
    struct canary c;
    char err[128];
    assert_int_equal(canary_parse(&c, "10.96.0.1:443", err, sizeof(err)), 0);
    assert_string_equal(c.text, "10.96.0.1:443");
    assert_int_equal(c.addr.ss_family, AF_INET);
    assert_int_equal(canary_parse(&c, "[fd00:10:96::1]:443", err, sizeof(err)), 0);
    assert_string_equal(c.text, "[fd00:10:96::1]:443");
    assert_int_equal(c.addr.ss_family, AF_INET6);
    assert_int_equal(canary_parse(&c, "kubernetes.default:443", err, sizeof(err)), -1);
    assert_string_equal(err, "host \"kubernetes.default\" is not an IP address literal");
    assert_int_equal(canary_parse(&c, "10.96.0.1:0", err, sizeof(err)), -1);
    assert_string_equal(err, "port \"0\" is not a number from 1 to 65535");
    assert_int_equal(canary_parse(&c, "10.96.0.1:+443", err, sizeof(err)), -1);
    assert_int_equal(canary_parse(&c, "10.96.0.1", err, sizeof(err)), -1);
    assert_string_equal(err, "canary \"10.96.0.1\" is not HOST:PORT");
    assert_int_equal(canary_parse(&c, "fd00::1:443", err, sizeof(err)), -1);
    assert_string_equal(err, "canary \"fd00::1:443\" is not HOST:PORT");
    /* The kubelet writes an IPv6 service address bare. */
    assert_int_equal(canary_parse_env(&c, "fd00:10:96::1", "443", err, sizeof(err)), 0);
    assert_string_equal(c.text, "[fd00:10:96::1]:443");
    assert_int_equal(canary_parse_env(&c, NULL, "443", err, sizeof(err)), -1);
    assert_string_equal(err, "KUBERNETES_SERVICE_HOST is not set and no canary was given");
}

static void a_port_nothing_listens_on_is_blocked_after_two_connects(void **state)
{
    (void)state;
    unsigned port;
    int fd = local_socket(false, &port);
    struct canary c;
    canary_at(&c, port);
    int e;
    assert_int_equal(canary_probe(&c, 250, &e), CANARY_BLOCKED);
    assert_int_equal(e, ECONNREFUSED);
    size_t open_one = 99;
    unsigned long attempts = 0;
    assert_true(
        canary_wait_blocked(&c, 1, 2, 250, 50, canary_now_ms() + 5000, &open_one, &attempts));
    assert_int_equal(attempts, 2);
    assert_int_equal(open_one, 99);
    close(fd);
}

struct closer {
    int fd;
    int after_ms;
};

static void *close_later(void *arg)
{
    struct closer *cl = arg;
    struct timespec ts = {0, (long)cl->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    close(cl->fd);
    return NULL;
}

static void a_listener_holds_the_gate_until_it_closes(void **state)
{
    (void)state;
    unsigned port;
    struct closer cl = {local_socket(true, &port), 400};
    struct canary c;
    canary_at(&c, port);
    int e;
    assert_int_equal(canary_probe(&c, 250, &e), CANARY_OPEN);
    assert_int_equal(e, 0);
    pthread_t t;
    uint64_t start = canary_now_ms();
    assert_int_equal(pthread_create(&t, NULL, close_later, &cl), 0);
    size_t open_one = 99;
    unsigned long attempts = 0;
    assert_true(canary_wait_blocked(&c, 1, 2, 250, 50, start + 5000, &open_one, &attempts));
    uint64_t took = canary_now_ms() - start;
    pthread_join(t, NULL);
    /* Open every ~50 ms until the close, then refused twice. */
    assert_true(took >= 400);
    assert_true(took < 2000);
    assert_true(attempts >= 2 + 400 / 60);
}

static void a_listener_that_stays_open_runs_into_the_deadline(void **state)
{
    (void)state;
    unsigned open_port, closed_port;
    int lfd = local_socket(true, &open_port);
    int cfd = local_socket(false, &closed_port);
    struct canary cs[2];
    canary_at(&cs[0], closed_port);
    canary_at(&cs[1], open_port);
    uint64_t start = canary_now_ms();
    size_t open_one = 99;
    unsigned long attempts = 0;
    assert_false(canary_wait_blocked(cs, 2, 2, 250, 50, start + 300, &open_one, &attempts));
    uint64_t took = canary_now_ms() - start;
    /* The blocked canary does not hide the open one. */
    assert_int_equal(open_one, 1);
    assert_int_equal(cs[0].fails, 2);
    assert_int_equal(cs[1].fails, 0);
    assert_true(took >= 300);
    assert_true(took < 1300);
    close(lfd);
    close(cfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canaries_are_ip_literals_with_a_port),
        cmocka_unit_test(a_port_nothing_listens_on_is_blocked_after_two_connects),
        cmocka_unit_test(a_listener_holds_the_gate_until_it_closes),
        cmocka_unit_test(a_listener_that_stays_open_runs_into_the_deadline),
    };
    return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
