// SPDX-License-Identifier: Apache-2.0
/*
 * informer_stream.c - an informer's streaming list (KEP-3157, "watch
 * list"): a WATCH with sendInitialEvents=true from no resourceVersion. Its
 * ADDED events, the objects as of a consistent read, build a new tree as
 * LIST pages do; the BOOKMARK annotated k8s.io/initial-events-end makes
 * that tree the cache (objects it lacks are deleted), and the same WATCH
 * goes on. A server that refuses it (400, 403, 422), ends it before the end
 * bookmark, or stops sending before it, is given up for the paged LIST for
 * the rest of the informer's life.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/informer_int.h"
#include "log.h"

/* Failed streaming lists in a row (the server answered, or had sent
 * events) before the paged LIST takes over. */
#define STREAM_TRIES 3

static void drop_next(struct informer *inf)
{
    informer__tree_destroy(inf, &inf->next);
    inf->next_size = 0;
}

/* The server does not stream lists: paged LISTs from now on, said once. */
static void fall_back(struct informer *inf, const char *why)
{
    drop_next(inf);
    inf->stream_attempt = 0;
    if (!inf->stream_off) {
        inf->stream_off = 1;
        log_info("streaming list refused: paged LIST from now on", "{s:s, s:s}", "resource",
                 inf->res->resource, "reason", why);
    }
    informer__list(inf, NULL);
}

static int refusal(long code)
{
    return code == 400 || code == 403 || code == 422;
}

void informer__stream(struct informer *inf)
{
    inf->initial = 1;
    inf->stream_refused = 0;
    if (informer__watch_initial(inf) != 0) {
        inf->initial = 0;
        informer__schedule(inf, NEXT_START, 1000);
        return;
    }
    inf->stream_start_ms = inf->stream_added_ms = uv_now(inf->loop);
    informer__schedule(inf, NEXT_STREAM_WAIT, inf->stream_wait_ms);
}

static int is_end_bookmark(json_t *obj)
{
    json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    const char *v = json_string_value(json_object_get(ann, "k8s.io/initial-events-end"));
    return v && strcmp(v, "true") == 0;
}

/* The end bookmark: the tree the initial events built becomes the cache. */
static void stream_complete(struct informer *inf, json_t *bookmark)
{
    uv_timer_stop(&inf->timer);
    inf->initial = 0;
    inf->stream_attempt = 0;
    informer__set_rv(inf, informer__object_rv(bookmark));
    inf->stats.streams++;
    informer__list_complete(inf);
    inf->watch_attempt = 0;
}

static int put_next(struct informer *inf, json_t *obj)
{
    struct cache_entry *e = informer__decode(inf, obj), *old = NULL;
    if (!e)
        return 0;
    if (informer__tree_put(&inf->next, e, &old) != 0) {
        informer__entry_free(inf, e);
        struct kube_error err;
        kube_error_transport(&err, "out of memory building the cache");
        informer__report(inf, "list", &err);
        inf->want_relist = 1;
        return 1;
    }
    if (old)
        informer__entry_free(inf, old);
    else
        inf->next_size++;
    return 0;
}

int informer__stream_event(struct informer *inf, const char *type, json_t *obj)
{
    if (strcmp(type, "ADDED") == 0) {
        inf->stream_added_ms = uv_now(inf->loop);
        return put_next(inf, obj);
    }
    /* Only ADDED events come before the end bookmark; the others are
     * applied to the tree all the same, should a server send them. */
    if (strcmp(type, "MODIFIED") == 0)
        return put_next(inf, obj);
    if (strcmp(type, "DELETED") == 0) {
        char key[KEY_MAX];
        struct cache_entry *e = NULL;
        if (informer_key(obj, key, sizeof(key)) == 0)
            e = informer__tree_take(&inf->next, key);
        if (e) {
            inf->next_size--;
            informer__entry_free(inf, e);
        }
        return 0;
    }
    if (strcmp(type, "BOOKMARK") == 0) {
        inf->stats.bookmarks++;
        if (is_end_bookmark(obj))
            stream_complete(inf, obj);
        return 0;
    }
    if (strcmp(type, "ERROR") == 0) {
        struct kube_error e;
        kube_error_from_status_json(&e, obj);
        if (refusal(e.code))
            inf->stream_refused = e.code;
        else
            informer__report(inf, "watch", &e);
        inf->want_relist = 1;
        return 1;
    }
    return 0;
}

void informer__stream_ended(struct informer *inf, const struct kube_error *err)
{
    long refused = inf->stream_refused         ? inf->stream_refused
                   : err && refusal(err->code) ? err->code
                                               : 0;
    /* Events came: the server took the request, whatever ended it. */
    int served = inf->next_size > 0 || (err && err->code != 0);

    uv_timer_stop(&inf->timer);
    inf->initial = 0;
    inf->stream_refused = 0;
    inf->want_relist = 0;
    drop_next(inf);
    if (refused) {
        char why[sizeof(err->message) + 32];
        snprintf(why, sizeof(why), "%ld %s", refused,
                 err && err->code == refused ? err->message : "in an ERROR event");
        fall_back(inf, why);
        return;
    }
    if (!err) {
        fall_back(inf, "the stream ended before its end bookmark");
        return;
    }
    informer__report(inf, "list", err);
    if (kube_error_is_not_found(err)) {
        /* The resource type is not installed (yet), as for a LIST. */
        if (!inf->synced) {
            inf->synced = 1;
            if (inf->h.on_synced)
                inf->h.on_synced(inf->arg);
        }
    } else if ((served || !kube_error_retryable(err)) && ++inf->stream_attempt >= STREAM_TRIES) {
        fall_back(inf, err->message);
        return;
    }
    uint64_t delay = backoff_delay_ms(inf->list_attempt++, 500, 30000, backoff_rand(&inf->rng));
    informer__schedule(inf, NEXT_START, delay);
}

void informer__stream_check(struct informer *inf)
{
    if (!inf->initial || !inf->req)
        return;
    uint64_t now = uv_now(inf->loop), wait = inf->stream_wait_ms, cap = 10 * wait;
    uint64_t idle = now - inf->stream_added_ms, all = now - inf->stream_start_ms;
    if (idle < wait && all < cap) {
        uint64_t left = wait - idle < cap - all ? wait - idle : cap - all;
        informer__schedule(inf, NEXT_STREAM_WAIT, left);
        return;
    }
    kube_request_cancel(inf->req);
    inf->req = NULL;
    inf->initial = 0;
    char why[96];
    snprintf(why, sizeof(why), "no end bookmark %" PRIu64 " ms into the stream", all);
    fall_back(inf, why);
}
