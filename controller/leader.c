// SPDX-License-Identifier: Apache-2.0
/*
 * leader.c - Lease-based leader election, after client-go's: a holder
 * renews every retry period; others take the Lease only once its record has
 * not changed for a whole lease duration as measured on their own clock
 * (never by comparing clocks); a holder that cannot renew in time steps down.
 *
 * A holder renews with one request: a PUT conditional on the
 * resourceVersion its last write returned. Only when that fails (409: the
 * Lease changed under it) does it read the Lease again. An idle controller
 * thus makes one request per retry period, not two.
 */
#include "leader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/buf.h"
#include "kube/path.h"
#include "log.h"

struct leader {
    struct kube_client *client;
    uv_loop_t *loop;
    char *ns;
    char *name;
    char *identity;
    unsigned lease_s, renew_deadline_s, retry_s;
    leader_cb cb;
    void *arg;
    uv_timer_t timer;
    struct kube_request *req;
    bool leading;
    bool lost;
    bool closing;
    bool releasing;
    uint64_t last_renew;  /* loop time of our last successful renewal */
    char observed[256];   /* holder + renewTime last seen */
    uint64_t observed_at; /* loop time it was first seen */
    /* What our last successful write stored; rv[0] == 0 when unknown. */
    char rv[64];
    char acquire[40];
    json_int_t transitions;
    void (*done)(void *arg);
    void *done_arg;
};

static void tick(struct leader *l);
static void on_closed(uv_handle_t *h);

void leader_micro_time(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, outlen - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static void set_leading(struct leader *l, bool leading)
{
    if (l->leading == leading || l->lost)
        return;
    l->leading = leading;
    if (!leading)
        l->lost = true;
    log_info(leading ? "became the leader" : "lost the leadership", "{s:s, s:s}", "lease", l->name,
             "identity", l->identity);
    if (l->cb && !l->closing)
        l->cb(l->arg, leading);
}

static void on_timer(uv_timer_t *t)
{
    tick(t->data);
}

/* A failed try: a leader that has not renewed within the deadline steps down. */
static void failed(struct leader *l, const char *what, const struct kube_error *e)
{
    log_warn("lease trouble", "{s:s, s:s, s:I, s:s}", "lease", l->name, "during", what, "code",
             (json_int_t)(e ? e->code : 0), "message", e ? e->message : "");
    if (l->leading && uv_now(l->loop) - l->last_renew > (uint64_t)l->renew_deadline_s * 1000)
        set_leading(l, false);
}

static int lease_path(struct leader *l, struct buf *b, bool named)
{
    return kube_path(b, &KUBE_LEASES, l->ns, named ? l->name : NULL, NULL);
}

static json_t *lease_body(struct leader *l, const char *holder, unsigned duration,
                          const char *acquire, json_int_t transitions, const char *rv)
{
    char now[40];
    leader_micro_time(now, sizeof(now));
    json_t *body = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:I}}", "apiVersion",
        "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name, "namespace", l->ns,
        "spec", "holderIdentity", holder, "leaseDurationSeconds", (int)duration, "acquireTime",
        acquire ? acquire : now, "renewTime", now, "leaseTransitions", transitions);
    if (body && rv)
        json_object_set_new(json_object_get(body, "metadata"), "resourceVersion", json_string(rv));
    return body;
}

/* Keeps what a successful write stored, for the next renewal's PUT. */
static void remember(struct leader *l, const json_t *lease)
{
    const json_t *spec = json_object_get(lease, "spec");
    const char *rv =
        json_string_value(json_object_get(json_object_get(lease, "metadata"), "resourceVersion"));
    const char *acquire = json_string_value(json_object_get(spec, "acquireTime"));
    l->rv[0] = 0;
    if (!rv || !acquire || strlen(rv) >= sizeof(l->rv) || strlen(acquire) >= sizeof(l->acquire))
        return; /* unknown: the next tick reads the Lease */
    memcpy(l->rv, rv, strlen(rv) + 1);
    memcpy(l->acquire, acquire, strlen(acquire) + 1);
    l->transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
}

static void on_written(void *arg, const struct kube_response *resp)
{
    struct leader *l = arg;
    l->req = NULL;
    if (l->releasing) {
        /* Released or not, we are done: the Lease expires anyway. */
        uv_close((uv_handle_t *)&l->timer, on_closed);
        return;
    }
    if (resp->err) {
        l->rv[0] = 0;
        failed(l, "write", resp->err);
        /* The Lease changed under us: read it now rather than a retry
         * period later, so a renewal is not skipped. */
        if (kube_error_is_conflict(resp->err))
            tick(l);
    } else {
        remember(l, resp->json);
        l->last_renew = uv_now(l->loop);
        set_leading(l, true);
    }
}

static int write_lease(struct leader *l, enum kube_verb verb, json_t *body)
{
    struct buf path;
    buf_init(&path, 2048);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = lease_path(l, &path, verb != KUBE_POST);
    if (!rc && !text)
        rc = -ENOMEM;
    if (!rc)
        rc = kube_request_echo(l->client, verb, path.data, text, strlen(text), on_written, l,
                               &l->req);
    free(text);
    buf_free(&path);
    json_decref(body);
    return rc;
}

static void on_read(void *arg, const struct kube_response *resp)
{
    struct leader *l = arg;
    l->req = NULL;
    int rc;

    if (resp->err && kube_error_is_not_found(resp->err)) {
        (void)write_lease(l, KUBE_POST, lease_body(l, l->identity, l->lease_s, NULL, 0, NULL));
        return; /* on failure, the next tick tries again */
    }
    if (resp->err) {
        failed(l, "read", resp->err);
        return;
    }
    json_t *spec = json_object_get(resp->json, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    const char *acquire = json_string_value(json_object_get(spec, "acquireTime"));
    json_int_t duration = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
    const char *rv = json_string_value(
        json_object_get(json_object_get(resp->json, "metadata"), "resourceVersion"));
    char seen[256];
    uint64_t now = uv_now(l->loop);

    snprintf(seen, sizeof(seen), "%s|%s", holder ? holder : "", renew ? renew : "");
    if (strcmp(seen, l->observed) != 0) {
        memcpy(l->observed, seen, sizeof(seen));
        l->observed_at = now;
    }
    if (holder && strcmp(holder, l->identity) == 0) {
        rc = write_lease(l, KUBE_PUT,
                         lease_body(l, l->identity, l->lease_s, acquire, transitions, rv));
    } else if (!holder || !holder[0] || now - l->observed_at > (uint64_t)duration * 1000) {
        /* Free, or its holder has not renewed for a whole lease: take it. */
        if (l->leading)
            set_leading(l, false); /* someone else took it meanwhile */
        rc = l->lost
                 ? 0
                 : write_lease(l, KUBE_PUT,
                               lease_body(l, l->identity, l->lease_s, NULL, transitions + 1, rv));
    } else {
        if (l->leading)
            set_leading(l, false);
        rc = -EAGAIN;
    }
    (void)rc; /* the next tick tries again */
}

/* Every retry period: read the Lease (then renew or try to take it), or,
 * while a request still hangs (the client retries with backoff), check the
 * renew deadline: a leader that cannot renew in time must stop at once, not
 * when the hung request finally gives up, or two replicas reconcile. */
static void tick(struct leader *l)
{
    if (l->closing || l->lost)
        return;
    if (l->req) {
        if (l->leading && uv_now(l->loop) - l->last_renew > (uint64_t)l->renew_deadline_s * 1000) {
            kube_request_cancel(l->req);
            l->req = NULL;
            log_warn("lease renewal hangs past its deadline", "{s:s}", "lease", l->name);
            set_leading(l, false);
        }
        return;
    }
    if (l->leading && l->rv[0]) {
        (void)write_lease(
            l, KUBE_PUT, lease_body(l, l->identity, l->lease_s, l->acquire, l->transitions, l->rv));
        return; /* on failure, the next tick reads the Lease */
    }
    struct buf path;
    buf_init(&path, 2048);
    int rc = lease_path(l, &path, true);
    if (!rc)
        rc = kube_request(l->client, KUBE_GET, path.data, NULL, 0, on_read, l, &l->req);
    buf_free(&path);
    (void)rc; /* the next tick tries again */
}

static void on_release_read(void *arg, const struct kube_response *resp)
{
    struct leader *l = arg;
    l->req = NULL;
    json_t *spec = json_object_get(resp->json, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *rv = json_string_value(
        json_object_get(json_object_get(resp->json, "metadata"), "resourceVersion"));
    if (!resp->err && holder && rv && strcmp(holder, l->identity) == 0 &&
        write_lease(l, KUBE_PUT,
                    lease_body(l, "", 1, NULL,
                               json_integer_value(json_object_get(spec, "leaseTransitions")),
                               rv)) == 0)
        return; /* on_written closes */
    uv_close((uv_handle_t *)&l->timer, on_closed);
}

int leader_start(struct kube_client *client, uv_loop_t *loop, const struct leader_opts *o,
                 leader_cb cb, void *arg, struct leader **out)
{
    struct leader *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->client = client;
    l->loop = loop;
    l->ns = strdup(o->ns);
    l->name = strdup(o->name);
    l->identity = strdup(o->identity);
    if (!l->ns || !l->name || !l->identity) {
        free(l->ns);
        free(l->name);
        free(l->identity);
        free(l);
        return -ENOMEM;
    }
    l->lease_s = o->lease_s ? o->lease_s : 15;
    l->renew_deadline_s = o->renew_deadline_s ? o->renew_deadline_s : 10;
    l->retry_s = o->retry_s ? o->retry_s : 2;
    l->cb = cb;
    l->arg = arg;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_timer, 0, (uint64_t)l->retry_s * 1000);
    *out = l;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct leader *l = h->data;
    void (*done)(void *) = l->done;
    void *darg = l->done_arg;
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l);
    if (done)
        done(darg);
}

void leader_close(struct leader *l, void (*done)(void *arg), void *arg)
{
    if (l->closing)
        return;
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    uv_timer_stop(&l->timer);
    if (l->req) {
        kube_request_cancel(l->req);
        l->req = NULL;
    }
    if (l->leading && !l->lost) {
        /* Hand the Lease back (holder cleared, one second left), but only
         * if it is still ours: read it, then replace it at that version. */
        l->releasing = true;
        struct buf path;
        buf_init(&path, 2048);
        int rc = lease_path(l, &path, true);
        if (!rc)
            rc = kube_request(l->client, KUBE_GET, path.data, NULL, 0, on_release_read, l, &l->req);
        buf_free(&path);
        if (rc == 0) {
            log_info("releasing the lease", "{s:s}", "lease", l->name);
            return;
        }
        l->releasing = false;
    }
    uv_close((uv_handle_t *)&l->timer, on_closed);
}
