// SPDX-License-Identifier: Apache-2.0
/* canary.h - kage-gate's probe: is egress to a canary address still open?
 * A canary is an address every pod reaches unless its egress is filtered
 * (the Kubernetes API service); once connects to it fail, the pod's
 * NetworkPolicy is enforced. */
#ifndef KAGE_CANARY_H
#define KAGE_CANARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#define CANARY_TEXT_MAX 64 /* "[v6 address]:port" and its NUL */

struct canary {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[CANARY_TEXT_MAX]; /* as given, for messages */
    unsigned fails;             /* connects refused, unreachable or timed out in a row */
};

enum canary_result {
    CANARY_OPEN,    /* the connect was accepted: egress is still open */
    CANARY_BLOCKED, /* refused, unreachable, prohibited or timed out */
    CANARY_ERROR,   /* no verdict (no socket, ...): counts as neither */
};

/*
 * Parses "HOST:PORT" (HOST an IPv4 literal, or an IPv6 literal in
 * brackets) into *c, fails reset. Returns 0, or -1 with err[errlen]
 * naming what is wrong.
 */
int canary_parse(struct canary *c, const char *text, char *err, size_t errlen);

/*
 * Parses a host (an IPv4 or a bare IPv6 literal, as the kubelet writes
 * KUBERNETES_SERVICE_HOST) and a port into *c. Returns 0, or -1 with
 * err[errlen] naming what is wrong.
 */
int canary_parse_env(struct canary *c, const char *host, const char *port, char *err,
                     size_t errlen);

/*
 * One non-blocking TCP connect to c, given timeout_ms to complete; the
 * socket is closed before it returns. *err_no gets the errno of a failed
 * connect (ETIMEDOUT for a timeout), 0 when it opened.
 */
enum canary_result canary_probe(const struct canary *c, int timeout_ms, int *err_no);

/*
 * Probes every canary of cs[n] until each has been blocked `need` times
 * in a row (an open connect starts its count again and waits pause_ms), or
 * until deadline_ms of the monotonic clock (CLOCK_MONOTONIC, ms) passes.
 * Returns true when all were blocked; *open_one (when false) is the index
 * of a canary that was not, *attempts the connects made.
 */
bool canary_wait_blocked(struct canary *cs, size_t n, unsigned need, int timeout_ms, int pause_ms,
                         uint64_t deadline_ms, size_t *open_one, unsigned long *attempts);

/* The monotonic clock in milliseconds. */
uint64_t canary_now_ms(void);

#endif
