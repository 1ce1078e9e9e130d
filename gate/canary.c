// SPDX-License-Identifier: Apache-2.0
/*
 * canary.c - connects to canary addresses with a short timeout and waits
 * until every one of them is blocked: the sign that the node's
 * NetworkPolicy implementation filters this pod's egress.
 */
#include "canary.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t canary_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A decimal port 1..65535, nothing else around it. */
static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Fills c from a host literal (no brackets) and a port text. */
static int fill(struct canary *c, const char *host, const char *port, char *err, size_t errlen)
{
    uint16_t p;
    memset(c, 0, sizeof(*c));
    if (parse_port(port, &p) != 0) {
        snprintf(err, errlen, "port \"%s\" is not a number from 1 to 65535", port ? port : "");
        return -1;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(p);
        c->addrlen = sizeof(*v4);
        snprintf(c->text, sizeof(c->text), "%s:%u", host, (unsigned)p);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(p);
        c->addrlen = sizeof(*v6);
        snprintf(c->text, sizeof(c->text), "[%s]:%u", host, (unsigned)p);
    } else {
        snprintf(err, errlen, "host \"%s\" is not an IP address literal", host);
        return -1;
    }
    return 0;
}

int canary_parse(struct canary *c, const char *text, char *err, size_t errlen)
{
    char host[CANARY_TEXT_MAX];
    const char *colon, *start = text;
    size_t len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "canary \"%s\" is not [IPV6]:PORT", text);
            return -1;
        }
        start = text + 1;
        len = (size_t)(close - start);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || strchr(text, ':') != colon) {
            snprintf(err, errlen, "canary \"%s\" is not HOST:PORT", text);
            return -1;
        }
        len = (size_t)(colon - text);
    }
    if (len == 0 || len >= sizeof(host)) {
        snprintf(err, errlen, "canary \"%s\" has no usable host", text);
        return -1;
    }
    memcpy(host, start, len);
    host[len] = '\0';
    return fill(c, host, colon + 1, err, errlen);
}

int canary_parse_env(struct canary *c, const char *host, const char *port, char *err, size_t errlen)
{
    if (!host || !host[0]) {
        snprintf(err, errlen, "KUBERNETES_SERVICE_HOST is not set and no canary was given");
        return -1;
    }
    if (strlen(host) >= CANARY_TEXT_MAX - 8) {
        snprintf(err, errlen, "KUBERNETES_SERVICE_HOST is too long");
        return -1;
    }
    return fill(c, host, port, err, errlen);
}

enum canary_result canary_probe(const struct canary *c, int timeout_ms, int *err_no)
{
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    *err_no = 0;
    if (fd < 0) {
        *err_no = errno;
        return CANARY_ERROR;
    }
    enum canary_result res = CANARY_ERROR;
    if (connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) == 0) {
        res = CANARY_OPEN;
        goto out;
    }
    if (errno != EINPROGRESS) {
        *err_no = errno;
        goto judge;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        *err_no = ETIMEDOUT;
        goto judge;
    }
    if (n < 0) {
        *err_no = errno;
        goto out;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        *err_no = errno;
        goto out;
    }
    *err_no = soerr;
    if (soerr == 0) {
        res = CANARY_OPEN;
        goto out;
    }
judge:
    /* What a filter answers with: a reset (REJECT tcp-reset), an ICMP
     * unreachable or prohibited, or nothing (DROP). */
    switch (*err_no) {
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EACCES:
    case EPERM:
        res = CANARY_BLOCKED;
        break;
    default:
        res = CANARY_ERROR;
        break;
    }
out:
    close(fd);
    return res;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool canary_wait_blocked(struct canary *cs, size_t n, unsigned need, int timeout_ms, int pause_ms,
                         uint64_t deadline_ms, size_t *open_one, unsigned long *attempts)
{
    *attempts = 0;
    for (size_t i = 0; i < n; i++)
        cs[i].fails = 0;
    for (;;) {
        bool all = true, pause = false;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].fails >= need)
                continue;
            uint64_t now = canary_now_ms();
            if (now >= deadline_ms) {
                *open_one = i;
                return false;
            }
            /* No connect outlives the deadline. */
            int t =
                deadline_ms - now < (uint64_t)timeout_ms ? (int)(deadline_ms - now) : timeout_ms;
            int e;
            enum canary_result r = canary_probe(&cs[i], t, &e);
            (*attempts)++;
            if (r == CANARY_BLOCKED) {
                cs[i].fails++;
            } else {
                cs[i].fails = 0;
                pause = true;
            }
            if (cs[i].fails < need)
                all = false;
        }
        if (all)
            return true;
        if (pause)
            sleep_ms(pause_ms);
    }
}
