// SPDX-License-Identifier: Apache-2.0
/*
 * httpd.c - libmicrohttpd in external-polling epoll mode on the libuv loop:
 * a uv_poll watches MHD's epoll fd and a uv_timer follows MHD_get_timeout,
 * each calling MHD_run, so the server needs no thread and never blocks. A
 * second timer enforces the deadline for request headers that MHD lacks.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "log.h"

#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
#define SWEEP_MS             250u /* how often overdue headers are looked for */

/* One open connection, for the header deadline. */
struct conn {
    struct conn *prev, *next;
    struct MHD_Connection *mhd;
    uint64_t due_ms; /* loop time by which its request's headers must be in; 0: none due */
};

struct httpd {
    uv_loop_t *loop;
    struct MHD_Daemon *daemon;
    uv_poll_t poll;   /* MHD's epoll fd: readable when a socket of it is ready */
    uv_timer_t timer; /* due when MHD_get_timeout says MHD_run must run again */
    uv_timer_t sweep; /* while connections are open: closes those past headers_ms */
    struct conn *conns;
    uint64_t headers_ms;
    httpd_handler handler;
    void *arg;
    size_t body_max;
    int port;
    int open_handles;
    bool in_run;  /* inside MHD_run: the handler may be on the stack */
    bool closing; /* httpd_close called */
    bool starting;
    bool conn_closed;    /* a connection closed in this MHD_run */
    char start_err[256]; /* MHD's last log line while starting */
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* A parsed listen address. */
struct listen_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
    bool any6; /* "[::]": listen on IPv4 too */
};

/*
 * Parses the digits of a port, 0..65535, the whole of s. Returns the port
 * or -1.
 */
static int parse_port(const char *s)
{
    long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return -1;
    }
    return (int)v;
}

/*
 * Parses "A.B.C.D:PORT" or "[V6]:PORT" into *la. Returns 0, or -EINVAL with
 * the reason in err.
 */
static int parse_addr(const char *addr, struct listen_addr *la, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN];
    const char *port_s;
    const char *why = NULL;
    bool v6 = false;

    memset(la, 0, sizeof(*la));
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close) {
            why = "missing ']' after the IPv6 address";
            goto bad;
        }
        if (close[1] != ':') {
            why = "want [IPv6]:PORT";
            goto bad;
        }
        size_t n = (size_t)(close - addr - 1);
        if (n == 0 || n >= sizeof(host)) {
            why = "not a numeric IPv6 address in the brackets";
            goto bad;
        }
        memcpy(host, addr + 1, n);
        host[n] = '\0';
        port_s = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon) {
            why = "want HOST:PORT, e.g. 127.0.0.1:8081 or [::1]:8081";
            goto bad;
        }
        size_t n = (size_t)(colon - addr);
        if (memchr(addr, ':', n)) {
            why = "an IPv6 address goes in brackets, e.g. [::1]:8081";
            goto bad;
        }
        if (n == 0 || n >= sizeof(host)) {
            why = "want a numeric IPv4 address before the ':', e.g. 0.0.0.0:8081";
            goto bad;
        }
        memcpy(host, addr, n);
        host[n] = '\0';
        port_s = colon + 1;
    }

    int port = parse_port(port_s);
    if (port < 0) {
        why = "the port must be a number from 0 to 65535";
        goto bad;
    }
    if (v6) {
        la->u.in6.sin6_family = AF_INET6;
        la->u.in6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &la->u.in6.sin6_addr) != 1) {
            why = "not a numeric IPv6 address in the brackets";
            goto bad;
        }
        la->any6 = IN6_IS_ADDR_UNSPECIFIED(&la->u.in6.sin6_addr);
    } else {
        la->u.in4.sin_family = AF_INET;
        la->u.in4.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &la->u.in4.sin_addr) != 1) {
            why = "want a numeric IPv4 address before the ':', e.g. 0.0.0.0:8081";
            goto bad;
        }
    }
    return 0;

bad:
    snprintf(err, errlen, "httpd: bad listen address \"%s\": %s", addr, why);
    return -EINVAL;
}

/* MHD's log lines: kept as the reason while starting, else debug lines (a
 * client that hangs up early is not news). */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fm, va_list ap)
{
    struct httpd *s = cls;
    char line[sizeof(s->start_err)];
    int saved = errno; /* MHD reads errno after logging a failed bind */

    vsnprintf(line, sizeof(line), fm, ap);
    line[strcspn(line, "\r\n")] = '\0';
    if (s->starting)
        memcpy(s->start_err, line, sizeof(line));
    else
        log_debug("httpd: libmicrohttpd", "{s:s}", "detail", line);
    errno = saved;
}

static void on_timer(uv_timer_t *t);

/* MHD must run again within the time it names, even with no socket ready:
 * that is how idle connections time out and buffered input gets parsed.
 * After a connection closed it runs once more at once, to listen again. */
static void rearm(struct httpd *s)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (s->conn_closed) {
        s->conn_closed = false;
        uv_timer_start(&s->timer, on_timer, 0, 0);
    } else if (MHD_get_timeout(s->daemon, &ms) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&s->timer);
}

static void finish_close(struct httpd *s);

static void run(struct httpd *s);

/* The tracked connection behind an MHD connection, or NULL. */
static struct conn *conn_of(struct MHD_Connection *mhd)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* Shuts the socket of an MHD connection: MHD sees the end of input on its
 * next run and closes the connection as if the client had. */
static void conn_shut(struct MHD_Connection *mhd)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (i)
        shutdown(i->connect_fd, SHUT_RDWR);
}

/* Closes every connection whose request headers are overdue. A client that
 * trickles its headers keeps MHD's idle timeout from firing; this does not
 * care how the bytes arrive. */
static void on_sweep(uv_timer_t *t)
{
    struct httpd *s = t->data;
    uint64_t now = uv_now(s->loop);
    int shut = 0;

    if (!s->conns) {
        uv_timer_stop(&s->sweep);
        return;
    }
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->due_ms && now >= c->due_ms) {
            c->due_ms = 0;
            conn_shut(c->mhd);
            shut++;
        }
    }
    if (shut) {
        log_debug("httpd: closed connections whose request headers were overdue", "{s:i, s:I}",
                  "connections", shut, "deadlineMs", (json_int_t)s->headers_ms);
        run(s);
    }
}

static void run(struct httpd *s)
{
    s->in_run = true;
    MHD_run(s->daemon);
    s->in_run = false;
    if (s->closing)
        finish_close(s);
    else
        rearm(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    run(h->data);
}

static void on_timer(uv_timer_t *t)
{
    run(t->data);
}

/* Queues a response built from len bytes of data (copied). */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *data,
                               size_t len, const char *content_type, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(data ? data : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
        goto out;
    if (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)
        goto out;
    ret = MHD_queue_response(conn, status, r);
out:
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text,
                                    const char *allow)
{
    return respond(conn, status, text, strlen(text), DEFAULT_CONTENT_TYPE, allow);
}

/* Calls the handler and queues its response. */
static enum MHD_Result serve(struct httpd *s, struct MHD_Connection *conn, const char *method,
                             const char *url)
{
    struct buf body;
    const char *content_type = DEFAULT_CONTENT_TYPE;
    buf_init(&body, s->body_max);
    int status = s->handler(s->arg, method, url, &body, &content_type);

    enum MHD_Result ret;
    char msg[128];
    if (status < 0) {
        snprintf(msg, sizeof(msg), "internal error: %s\n", strerror(-status));
        ret = respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, NULL);
    } else if (status < 100 || status > 599) {
        snprintf(msg, sizeof(msg), "internal error: handler returned status %d\n", status);
        ret = respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, NULL);
    } else {
        ret = respond(conn, (unsigned)status, body.data, body.len,
                      content_type ? content_type : DEFAULT_CONTENT_TYPE, NULL);
    }
    buf_free(&body);
    return ret;
}

/* Whether the request announces a body. */
static bool has_body(struct MHD_Connection *conn)
{
    const char *len =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (len && strcmp(len, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * MHD's access handler: called once the headers are in, then once per piece
 * of request body, then once more with none. MHD takes a response only on
 * the first call or the last; one queued on the first makes it close the
 * connection afterwards rather than read the rest of the request. So a GET
 * or HEAD without a body is answered on the last call, keeping the
 * connection alive, and anything else on the first, so that no body is read.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int headers_seen;
    struct httpd *s = cls;
    (void)version;
    (void)upload_data;

    if (s->closing)
        return MHD_NO;
    if (!*con_cls) { /* the headers are in: the deadline is met */
        struct conn *c = conn_of(conn);
        if (c)
            c->due_ms = 0;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    if (!*con_cls) {
        *con_cls = &headers_seen;
        if (has_body(conn))
            return serve(s, conn, method, url);
        return MHD_YES;
    }
    if (*upload_data_size) { /* not announced, so not expected: dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    return serve(s, conn, method, url);
}

/* A request is done: the next one on this keep-alive connection has its
 * own deadline, counted from now. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct httpd *s = cls;
    (void)con_cls;
    (void)toe;
    struct conn *c = conn_of(conn);
    if (c)
        c->due_ms = uv_now(s->loop) + s->headers_ms;
}

static void conn_unlink(struct httpd *s, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* A new connection gets its header deadline; one that cannot be tracked is
 * refused, since nothing would bound it. A closed connection may have been
 * holding the daemon at its connection limit; MHD then took the listen
 * socket out of its epoll set and puts it back only at the start of a later
 * MHD_run. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct httpd *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (!c) {
            conn_shut(conn);
            return;
        }
        c->mhd = conn;
        c->due_ms = uv_now(s->loop) + s->headers_ms;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        if (!uv_is_active((uv_handle_t *)&s->sweep))
            uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        return;
    }
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (*socket_context)
            conn_unlink(s, *socket_context);
        *socket_context = NULL;
        s->conn_closed = true;
    }
}

int httpd_start(uv_loop_t *loop, const char *addr, httpd_handler h, void *arg, struct httpd **out,
                char *err, size_t errlen)
{
    return httpd_start_opts(loop, addr, NULL, h, arg, out, err, errlen);
}

int httpd_start_opts(uv_loop_t *loop, const char *addr, const struct httpd_opts *opts,
                     httpd_handler h, void *arg, struct httpd **out, char *err, size_t errlen)
{
    struct httpd_opts o = {0};
    struct listen_addr la;
    int rc = parse_addr(addr, &la, err, errlen);
    if (rc)
        return rc;
    if (opts)
        o = *opts;

    struct httpd *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "httpd: out of memory");
        return -ENOMEM;
    }
    s->loop = loop;
    s->handler = h;
    s->arg = arg;
    s->body_max = o.body_max ? o.body_max : HTTPD_BODY_MAX;
    s->headers_ms = 1000u * (uint64_t)(o.headers_s ? o.headers_s : HTTPD_HEADERS_S);

    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (la.u.sa.sa_family == AF_INET6)
        flags |= la.any6 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;

    /* MHD returns no error code; 0.9.75 leaves bind's and listen's in errno,
     * which is taken when set, with MHD's log line as the fallback reason. */
    s->starting = true;
    errno = 0;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_SOCK_ADDR, &la.u.sa, MHD_OPTION_CONNECTION_TIMEOUT,
        o.timeout_s ? o.timeout_s : HTTPD_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        o.max_conns ? o.max_conns : HTTPD_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        o.max_per_ip ? o.max_per_ip : HTTPD_MAX_PER_IP, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o.conn_memory ? o.conn_memory : (size_t)HTTPD_CONN_MEMORY, MHD_OPTION_END);
    int e = errno;
    s->starting = false;
    if (!s->daemon) {
        if (e == EADDRINUSE)
            snprintf(err, errlen, "httpd: cannot listen on %s: address already in use", addr);
        else if (e > 0)
            snprintf(err, errlen, "httpd: cannot listen on %s: %s", addr, strerror(e));
        else
            snprintf(err, errlen, "httpd: cannot listen on %s: %s", addr,
                     s->start_err[0] ? s->start_err : "libmicrohttpd failed to start");
        free(s);
        return e > 0 ? -e : -EIO;
    }

    const union MHD_DaemonInfo *port = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!port || !ep) {
        snprintf(err, errlen, "httpd: libmicrohttpd gave no port or epoll fd for %s", addr);
        rc = -EIO;
        goto fail;
    }
    s->port = port->port;
    rc = uv_poll_init(loop, &s->poll, ep->epoll_fd);
    if (rc) {
        snprintf(err, errlen, "httpd: cannot watch the server's epoll fd: %s", uv_strerror(rc));
        goto fail;
    }
    /* MHD calls back only from MHD_run, so the timers may start after it. */
    uv_timer_init(loop, &s->timer);
    uv_timer_init(loop, &s->sweep);
    s->poll.data = s;
    s->timer.data = s;
    s->sweep.data = s;
    s->open_handles = 3;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    rearm(s);
    *out = s;
    return 0;

fail:
    MHD_stop_daemon(s->daemon);
    free(s);
    return rc;
}

int httpd_port(const struct httpd *s)
{
    return s->port;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct httpd *s = h->data;
    if (--s->open_handles > 0)
        return;
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    free(s);
    if (cb)
        cb(arg);
}

/* The poll handle goes first: libuv drops the epoll fd from its own set at
 * once, before MHD_stop_daemon closes it and the number can be reused. */
static void finish_close(struct httpd *s)
{
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    MHD_stop_daemon(s->daemon); /* reports each connection closed */
    s->daemon = NULL;
    while (s->conns)
        conn_unlink(s, s->conns);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
}

void httpd_close(struct httpd *s, void (*cb)(void *arg), void *arg)
{
    s->close_cb = cb;
    s->close_arg = arg;
    s->closing = true;
    if (!s->in_run)
        finish_close(s);
}
