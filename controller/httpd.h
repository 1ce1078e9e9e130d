// SPDX-License-Identifier: Apache-2.0
/* httpd.h - a small HTTP server for /healthz, /readyz and /metrics: libmicrohttpd
 * in external-polling mode, driven by the libuv loop, so it starts no threads
 * and the handler runs on the loop like every other callback. */
#ifndef KAGE_HTTPD_H
#define KAGE_HTTPD_H

#include <stddef.h>

#include <uv.h>

#include "kube/buf.h"

#define HTTPD_TIMEOUT_S   10u          /* an idle connection is dropped after this */
#define HTTPD_HEADERS_S   5u           /* a request's headers must be in within this */
#define HTTPD_MAX_CONNS   64u          /* connections beyond this wait in the backlog */
#define HTTPD_MAX_PER_IP  8u           /* one client address's connections; more are closed */
#define HTTPD_CONN_MEMORY (16u * 1024) /* per connection: request line, headers, I/O */
#define HTTPD_BODY_MAX    (4u << 20)   /* cap on one response body */

struct httpd;

/*
 * Fills the response for one GET or HEAD request (other methods get 405
 * before it is called). path is the decoded path without the query string.
 * Returns the HTTP status (100..599), or a negative errno - such as the
 * -ENOSPC of a buf_* call that hit the body's cap - which is answered with a
 * plain-text 500. *body is initialised and capped, and freed by the caller;
 * *content_type starts as "text/plain; charset=utf-8" and may be pointed at
 * another string that lives as long as the server. Called on the loop; for
 * HEAD the body is measured for Content-Length and not sent.
 */
typedef int (*httpd_handler)(void *arg, const char *method, const char *path, struct buf *body,
                             const char **content_type);

/*
 * Tunables for httpd_start_opts; a zero field takes the default above.
 * MHD's idle timeout restarts with every byte received, so a client that
 * sends one header byte every few seconds would hold a connection slot for
 * ever; headers_s bounds the time from the connection's start (or the end of
 * its previous request) to the end of the request's headers, however the
 * bytes trickle in. max_per_ip keeps one address from taking every slot.
 */
struct httpd_opts {
    unsigned timeout_s;  /* idle connection timeout, in seconds */
    unsigned headers_s;  /* deadline for a request's headers, in seconds */
    unsigned max_conns;  /* concurrent connections */
    unsigned max_per_ip; /* concurrent connections from one client address */
    size_t conn_memory;  /* memory pool per connection, in bytes */
    size_t body_max;     /* cap on the handler's body, in bytes */
};

/*
 * Listens on addr - "127.0.0.1:8081", "0.0.0.0:8081", "[::1]:8081" or
 * "[::]:8081" (the last also takes IPv4); port 0 picks a free port, see
 * httpd_port - and serves requests with h(arg, ...). Returns 0 with the
 * server in *out, or a negative errno with one line in err: -EINVAL for an
 * address not of those forms, -EADDRINUSE naming the address when the port
 * is taken, another bind/listen errno, -ENOMEM, or -EIO when libmicrohttpd
 * fails without one. On error h is never called and *out is untouched.
 * Release with httpd_close.
 */
int httpd_start(uv_loop_t *loop, const char *addr, httpd_handler h, void *arg, struct httpd **out,
                char *err, size_t errlen);

/* As httpd_start, with opts (NULL: all defaults). */
int httpd_start_opts(uv_loop_t *loop, const char *addr, const struct httpd_opts *opts,
                     httpd_handler h, void *arg, struct httpd **out, char *err, size_t errlen);

/* The port the server is bound to (the chosen one when asked for port 0). */
int httpd_port(const struct httpd *s);

/*
 * Stops listening and closes every connection at once (a response not yet
 * sent is lost); the handler is not called again. s is freed after its
 * libuv handles close, then cb(arg) runs (cb may be NULL). May be called
 * from the handler: the server then closes when the current MHD_run
 * returns, by when a small response to that request has been written.
 * Call once.
 */
void httpd_close(struct httpd *s, void (*cb)(void *arg), void *arg);

#endif
