// SPDX-License-Identifier: Apache-2.0
/*
 * informer.c - an informer's cache of one resource and its life: compact
 * entries made by the resource's decode function, kept in a POSIX search
 * tree by key, and the timer that starts the next streaming list
 * (informer_stream.c), LIST (informer_list.c) or WATCH (informer_watch.c)
 * after a backoff.
 */
#include "kube/informer.h"

#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/informer_int.h"

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int informer_key(json_t *obj, char *out, size_t outlen)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (!name || !name[0])
        return -EINVAL;
    int n = (ns && ns[0]) ? snprintf(out, outlen, "%s/%s", ns, name)
                          : snprintf(out, outlen, "%s", name);
    return (n < 0 || (size_t)n >= outlen) ? -EINVAL : 0;
}

static struct cache_entry *entry_new(const char *key, const char *rv, void *obj)
{
    size_t kl = strlen(key), rl = strlen(rv);
    struct cache_entry *e = malloc(sizeof(*e) + kl + rl + 2);
    if (!e)
        return NULL;
    memcpy(e->data, key, kl + 1);
    memcpy(e->data + kl + 1, rv, rl + 1);
    e->key = e->data;
    e->rv = e->data + kl + 1;
    e->obj = obj;
    return e;
}

void informer__entry_free(struct informer *inf, struct cache_entry *e)
{
    if (e) {
        inf->ops.free_obj(e->obj);
        free(e);
    }
}

struct cache_entry *informer__tree_find(void *const *root, const char *key)
{
    void *node = tfind(&key, root, entry_cmp);
    return node ? *(struct cache_entry **)node : NULL;
}

/* Puts e into *root, replacing (and returning) an entry of the same key. */
int informer__tree_put(void **root, struct cache_entry *e, struct cache_entry **old)
{
    void *node = tsearch(e, root, entry_cmp);
    if (!node)
        return -ENOMEM;
    struct cache_entry *there = *(struct cache_entry **)node;
    *old = NULL;
    if (there != e) {
        *old = there;
        *(struct cache_entry **)node = e; /* same key: the tree order holds */
    }
    return 0;
}

struct cache_entry *informer__tree_take(void **root, const char *key)
{
    void *node = tfind(&key, root, entry_cmp);
    if (!node)
        return NULL;
    struct cache_entry *e = *(struct cache_entry **)node;
    tdelete(&key, root, entry_cmp);
    return e;
}

static struct informer *freeing; /* tdestroy has no context argument */

static void free_entry_cb(void *p)
{
    informer__entry_free(freeing, p);
}

void informer__tree_destroy(struct informer *inf, void **root)
{
    freeing = inf;
    tdestroy(*root, free_entry_cb);
    freeing = NULL;
    *root = NULL;
}

void informer__set_rv(struct informer *inf, const char *rv)
{
    if (rv && rv[0])
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
}

const char *informer__object_rv(json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return rv ? rv : "";
}

void informer__report(struct informer *inf, const char *what, const struct kube_error *err)
{
    if (inf->h.on_error)
        inf->h.on_error(inf->arg, what, err);
}

/* Decodes obj into a new entry; NULL (counted, reported) when it cannot. */
struct cache_entry *informer__decode(struct informer *inf, json_t *obj)
{
    char key[KEY_MAX], err[256];
    if (informer_key(obj, key, sizeof(key)) != 0) {
        inf->stats.decode_errors++;
        struct kube_error e;
        kube_error_transport(&e, "object without a usable metadata.name");
        informer__report(inf, "decode", &e);
        return NULL;
    }
    err[0] = '\0';
    void *o = inf->ops.decode(obj, err, sizeof(err));
    if (!o) {
        inf->stats.decode_errors++;
        struct kube_error e;
        char what[KEY_MAX + 300];
        snprintf(what, sizeof(what), "%s: %s", key, err[0] ? err : "cannot decode");
        kube_error_transport(&e, what);
        informer__report(inf, "decode", &e);
        return NULL;
    }
    struct cache_entry *e = entry_new(key, informer__object_rv(obj), o);
    if (!e)
        inf->ops.free_obj(o);
    return e;
}

static void on_timer(uv_timer_t *t)
{
    struct informer *inf = t->data;
    if (inf->closing)
        return;
    switch (inf->action) {
    case NEXT_LIST:
        informer__list(inf, NULL);
        break;
    case NEXT_WATCH:
        informer__watch(inf);
        break;
    case NEXT_START:
        informer__start(inf);
        break;
    case NEXT_STREAM_WAIT:
        informer__stream_check(inf);
        break;
    }
}

void informer__start(struct informer *inf)
{
    informer__tree_destroy(inf, &inf->next);
    inf->next_size = 0;
    if (inf->stream_off)
        informer__list(inf, NULL);
    else
        informer__stream(inf);
}

void informer__schedule(struct informer *inf, enum next_action action, uint64_t delay_ms)
{
    inf->action = action;
    uv_timer_start(&inf->timer, on_timer, delay_ms, 0);
}

int informer__base_path(struct informer *inf, struct buf *b)
{
    int rc = kube_path(b, inf->res, inf->ns, NULL, NULL);
    if (!rc && inf->selector)
        rc = kube_query(b, "labelSelector", inf->selector);
    return rc;
}

/* ---- lifecycle -------------------------------------------------------- */

int informer_new(struct kube_client *client, uv_loop_t *loop, const struct informer_opts *o,
                 const struct informer_ops *ops, const struct informer_handlers *h, void *arg,
                 struct informer **out)
{
    if (!o || !o->res || !ops || !ops->decode || !ops->free_obj)
        return -EINVAL;
    struct informer *inf = calloc(1, sizeof(*inf));
    if (!inf)
        return -ENOMEM;
    inf->client = client;
    inf->loop = loop;
    inf->ops = *ops;
    if (h)
        inf->h = *h;
    inf->arg = arg;
    inf->res = o->res;
    /* 250 objects a page: a page is parsed whole before it is compacted,
     * so this bounds the transient memory of a LIST (about 10 MiB of
     * parsed pods) while keeping requests few. */
    inf->page_size = inf->page_max = o->page_size ? o->page_size : 250;
    inf->page_bytes = o->max_page_bytes;
    inf->min_timeout_s = o->min_timeout_s ? o->min_timeout_s : 300;
    inf->stall_ms = o->stall_ms ? o->stall_ms : 90000;
    inf->stream_wait_ms = o->stream_wait_ms ? o->stream_wait_ms : 10000;
    inf->stream_off = o->paged_only;
    if ((o->namespace && o->namespace[0] && !(inf->ns = strdup(o->namespace))) ||
        (o->label_selector && !(inf->selector = strdup(o->label_selector)))) {
        free(inf->ns);
        free(inf);
        return -ENOMEM;
    }
    inf->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)inf;
    uv_timer_init(loop, &inf->timer);
    inf->timer.data = inf;
    *out = inf;
    return 0;
}

int informer_start(struct informer *inf)
{
    if (inf->started)
        return -EALREADY;
    inf->started = 1;
    inf->start_ms = uv_now(inf->loop);
    informer__start(inf);
    return 0;
}

const void *informer_get(const struct informer *inf, const char *key)
{
    struct cache_entry *e = informer__tree_find(&inf->cache, key);
    return e ? e->obj : NULL;
}

struct foreach_ctx {
    void (*cb)(void *arg, const char *key, const void *obj);
    void *arg;
};

static void foreach_visit(const void *node, VISIT which, void *arg)
{
    if (which != postorder && which != leaf)
        return;
    struct foreach_ctx *f = arg;
    const struct cache_entry *e = *(struct cache_entry *const *)node;
    f->cb(f->arg, e->key, e->obj);
}

void informer_foreach(const struct informer *inf,
                      void (*cb)(void *arg, const char *key, const void *obj), void *arg)
{
    struct foreach_ctx f = {cb, arg};
    twalk_r(inf->cache, foreach_visit, &f);
}

size_t informer_size(const struct informer *inf)
{
    return inf->size;
}

const char *informer_resource_version(const struct informer *inf)
{
    return inf->rv;
}

void informer_stats(const struct informer *inf, struct informer_stats *out)
{
    *out = inf->stats;
}

static void on_informer_closed(uv_handle_t *h)
{
    struct informer *inf = h->data;
    void (*cb)(void *) = inf->close_cb;
    void *arg = inf->close_arg;
    informer__tree_destroy(inf, &inf->cache);
    informer__tree_destroy(inf, &inf->next);
    free(inf->ns);
    free(inf->selector);
    free(inf);
    if (cb)
        cb(arg);
}

void informer_close(struct informer *inf, void (*cb)(void *arg), void *arg)
{
    if (inf->closing)
        return;
    inf->closing = 1;
    inf->close_cb = cb;
    inf->close_arg = arg;
    if (inf->req) {
        kube_request_cancel(inf->req);
        inf->req = NULL;
    }
    memset(&inf->h, 0, sizeof(inf->h));
    uv_timer_stop(&inf->timer);
    uv_close((uv_handle_t *)&inf->timer, on_informer_closed);
}
