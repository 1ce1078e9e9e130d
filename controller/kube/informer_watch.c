// SPDX-License-Identifier: Apache-2.0
/*
 * informer_watch.c - an informer's WATCH stream: from the list's
 * resourceVersion with bookmarks, each event applied to the cache; resumes
 * from the last version seen, relists on 410 or an ERROR event, and
 * reconnects with jittered backoff. A streaming list is the same stream
 * opened with sendInitialEvents: its events up to the end bookmark go to
 * informer_stream.c.
 */
#include <stdio.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/informer_int.h"
#include "kube/jsonscan.h"

static void apply_upsert(struct informer *inf, json_t *obj)
{
    struct cache_entry *e = informer__decode(inf, obj), *old = NULL;
    if (!e)
        return;
    if (informer__tree_put(&inf->cache, e, &old) != 0) {
        informer__entry_free(inf, e);
        inf->want_relist = 1; /* the cache missed an event: rebuild it */
        return;
    }
    inf->stats.events++;
    if (old) {
        if (inf->h.on_update)
            inf->h.on_update(inf->arg, e->key, old->obj, e->obj);
        informer__entry_free(inf, old);
    } else {
        inf->size++;
        if (inf->h.on_add)
            inf->h.on_add(inf->arg, e->key, e->obj);
    }
}

static void apply_delete(struct informer *inf, json_t *obj)
{
    char key[KEY_MAX];
    if (informer_key(obj, key, sizeof(key)) != 0) {
        inf->stats.decode_errors++;
        return;
    }
    struct cache_entry *e = informer__tree_take(&inf->cache, key);
    if (!e)
        return;
    inf->size--;
    inf->stats.events++;
    /* Handlers see the object's last state as the event carries it. */
    char err[256];
    void *last = inf->ops.decode(obj, err, sizeof(err));
    if (inf->h.on_delete)
        inf->h.on_delete(inf->arg, e->key, last ? last : e->obj);
    if (last)
        inf->ops.free_obj(last);
    informer__entry_free(inf, e);
}

/* Returns 0 to go on, nonzero to drop the stream (want_relist says how). */
static int on_watch_line(void *arg, char *line, size_t len)
{
    struct informer *inf = arg;
    json_error_t jerr;
    /* The end bookmark of a streaming list is read for an annotation that
     * a strip list might name: short lines are not worth stripping. */
    if (!inf->initial || len >= 1024) {
        if (inf->ops.strip)
            jsonscan_strip_members(line, &len, inf->ops.strip);
        else
            jsonscan_strip_managed_fields(line, &len);
    }
    /* Strings may hold NUL (\u0000) where the API allows it; decoders and
     * validation deal with that, the parser must not stop on it. */
    json_t *ev = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    int rc = 0;

    if (!type || !json_is_object(obj)) {
        struct kube_error e;
        char what[300];
        /* jansson quotes the bytes near the error, cut anywhere (even inside
         * a character): keep its text ASCII, so the error can be logged. */
        for (char *p = jerr.text; !ev && *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        snprintf(what, sizeof(what), "malformed watch event: %s",
                 ev ? "no type or object" : jerr.text);
        kube_error_transport(&e, what);
        inf->stats.decode_errors++;
        informer__report(inf, "watch", &e);
        json_decref(ev);
        /* Skip it and go on: resuming from the version before it would
         * replay the same event forever, stalling every object behind it. */
        return 0;
    }
    if (inf->initial) {
        rc = informer__stream_event(inf, type, obj);
        json_decref(ev);
        return rc;
    }
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        apply_upsert(inf, obj);
        informer__set_rv(inf, informer__object_rv(obj));
    } else if (strcmp(type, "DELETED") == 0) {
        apply_delete(inf, obj);
        informer__set_rv(inf, informer__object_rv(obj));
    } else if (strcmp(type, "BOOKMARK") == 0) {
        inf->stats.bookmarks++;
        informer__set_rv(inf, informer__object_rv(obj));
    } else if (strcmp(type, "ERROR") == 0) {
        struct kube_error e;
        kube_error_from_status_json(&e, obj);
        informer__report(inf, "watch", &e);
        inf->want_relist = 1;
        rc = 1;
    }
    if (inf->want_relist)
        rc = 1;
    inf->watch_attempt = 0;
    json_decref(ev);
    return rc;
}

int informer__feed(struct informer *inf, char *line, size_t len)
{
    return on_watch_line(inf, line, len);
}

static void relist(struct informer *inf)
{
    inf->want_relist = 0;
    inf->rv[0] = '\0';
    informer__start(inf);
}

static void on_watch_end(void *arg, const struct kube_error *err)
{
    struct informer *inf = arg;
    inf->req = NULL;
    if (inf->initial) {
        informer__stream_ended(inf, err);
        return;
    }
    if (inf->want_relist || (err && kube_error_is_gone(err))) {
        if (err && !inf->want_relist)
            informer__report(inf, "watch", err);
        relist(inf);
        return;
    }
    if (!err) {
        /* The server ended the watch at its timeoutSeconds: resume. */
        informer__watch(inf);
        return;
    }
    informer__report(inf, "watch", err);
    inf->stats.reconnects++;
    uint64_t delay = backoff_delay_ms(inf->watch_attempt++, 500, 30000, backoff_rand(&inf->rng));
    informer__schedule(inf, NEXT_WATCH, delay);
}

/* Opens a WATCH: from inf->rv, or (initial) the streaming list. */
static int watch_open(struct informer *inf, int initial)
{
    struct buf path;
    char timeout[16];
    unsigned t = inf->min_timeout_s + (unsigned)(backoff_rand(&inf->rng) * inf->min_timeout_s);
    buf_init(&path, 16 * 1024);
    snprintf(timeout, sizeof(timeout), "%u", t);
    int rc = informer__base_path(inf, &path);
    if (!rc)
        rc = kube_query(&path, "watch", "1");
    if (!rc && initial) {
        /* From no resourceVersion: the objects as of a consistent read,
         * then the end bookmark (KEP-3157, "watch list"). */
        rc = kube_query(&path, "sendInitialEvents", "true");
        if (!rc)
            rc = kube_query(&path, "resourceVersionMatch", "NotOlderThan");
    }
    if (!rc)
        rc = kube_query(&path, "allowWatchBookmarks", "true");
    if (!rc && !initial)
        rc = kube_query(&path, "resourceVersion", inf->rv);
    if (!rc)
        rc = kube_query(&path, "timeoutSeconds", timeout);
    if (!rc)
        rc = kube_watch(inf->client, path.data, inf->stall_ms, on_watch_line, on_watch_end, inf,
                        &inf->req);
    buf_free(&path);
    if (!rc)
        inf->stats.watches++;
    return rc;
}

void informer__watch(struct informer *inf)
{
    if (watch_open(inf, 0) != 0)
        informer__schedule(inf, NEXT_WATCH, 1000);
}

int informer__watch_initial(struct informer *inf)
{
    return watch_open(inf, 1);
}
