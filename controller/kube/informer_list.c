// SPDX-License-Identifier: Apache-2.0
/*
 * informer_list.c - an informer's paginated LIST: pages of the resource
 * decoded into a new tree, which becomes the cache once the last page is
 * in; the handlers hear the difference from the cache it replaces.
 */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/informer_int.h"
#include "log.h"

struct diff_ctx {
    struct informer *inf;
    void *old;
};

/* For each entry of the new list: an add, or an update if its version moved. */
static void diff_new(const void *node, VISIT which, void *arg)
{
    if (which != postorder && which != leaf)
        return;
    struct diff_ctx *d = arg;
    struct cache_entry *e = *(struct cache_entry *const *)node;
    struct cache_entry *was = informer__tree_find(&d->old, e->key);
    if (!was) {
        d->inf->stats.events++;
        if (d->inf->h.on_add)
            d->inf->h.on_add(d->inf->arg, e->key, e->obj);
    } else if (strcmp(was->rv, e->rv) != 0) {
        d->inf->stats.events++;
        if (d->inf->h.on_update)
            d->inf->h.on_update(d->inf->arg, e->key, was->obj, e->obj);
    }
}

struct gone_ctx {
    struct informer *inf;
    void *fresh;
    struct cache_entry **gone;
    size_t n, cap;
    int failed;
};

static void collect_gone(const void *node, VISIT which, void *arg)
{
    if (which != postorder && which != leaf)
        return;
    struct gone_ctx *g = arg;
    struct cache_entry *e = *(struct cache_entry *const *)node;
    if (informer__tree_find(&g->fresh, e->key))
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct cache_entry **p = realloc(g->gone, cap * sizeof(*p));
        if (!p) {
            g->failed = 1;
            return;
        }
        g->gone = p;
        g->cap = cap;
    }
    g->gone[g->n++] = e;
}

/* The LIST is complete: make it the cache and tell the handlers the difference. */
void informer__list_complete(struct informer *inf)
{
    void *old = inf->cache;
    struct diff_ctx d = {inf, old};
    struct gone_ctx g = {inf, inf->next, NULL, 0, 0, 0};

    inf->cache = inf->next;
    inf->size = inf->next_size;
    inf->next = NULL;
    inf->next_size = 0;

    twalk_r(inf->cache, diff_new, &d);
    twalk_r(old, collect_gone, &g);
    for (size_t i = 0; i < g.n; i++) {
        inf->stats.events++;
        if (inf->h.on_delete)
            inf->h.on_delete(inf->arg, g.gone[i]->key, g.gone[i]->obj);
    }
    free(g.gone);
    informer__tree_destroy(inf, &old);

    inf->stats.lists++;
    if (inf->stats.lists > 1)
        inf->stats.relists++;
    inf->list_attempt = 0;
    if (!inf->synced) {
        inf->synced = 1;
        log_debug("cache listed", "{s:s, s:I, s:b, s:I}", "resource", inf->res->resource, "objects",
                  (json_int_t)inf->size, "streamed", inf->stats.streams > 0, "ms",
                  (json_int_t)(uv_now(inf->loop) - inf->start_ms));
        if (inf->h.on_synced)
            inf->h.on_synced(inf->arg);
    }
}

static void on_list(void *arg, const struct kube_response *resp)
{
    struct informer *inf = arg;
    inf->req = NULL;

    if (resp->err) {
        informer__report(inf, "list", resp->err);
        informer__tree_destroy(inf, &inf->next);
        inf->next_size = 0;
        if (strcmp(resp->err->reason, KUBE_REASON_TOO_LARGE) == 0 && inf->page_size > 1) {
            /* Large objects: a page of them exceeds the response cap. Ask
             * for pages a quarter the size, at once. */
            inf->page_size = inf->page_size / 4 ? inf->page_size / 4 : 1;
            informer__schedule(inf, NEXT_LIST, 0);
            return;
        }
        if (kube_error_is_not_found(resp->err) && !inf->synced) {
            /* The resource type is not installed (yet): there are none of
             * it. Say so, and keep looking for it to appear. */
            inf->synced = 1;
            if (inf->h.on_synced)
                inf->h.on_synced(inf->arg);
        }
        uint64_t delay = backoff_delay_ms(inf->list_attempt++, 500, 30000, backoff_rand(&inf->rng));
        informer__schedule(inf, NEXT_LIST, delay);
        return;
    }
    inf->stats.list_pages++;
    if (resp->body_len > inf->list_biggest)
        inf->list_biggest = resp->body_len;
    json_t *items = json_object_get(resp->json, "items");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        struct cache_entry *e = informer__decode(inf, item), *old = NULL;
        if (!e)
            continue;
        if (informer__tree_put(&inf->next, e, &old) != 0) {
            informer__entry_free(inf, e);
            struct kube_error err;
            kube_error_transport(&err, "out of memory building the cache");
            informer__report(inf, "list", &err);
            informer__tree_destroy(inf, &inf->next);
            inf->next_size = 0;
            informer__schedule(inf, NEXT_LIST, 1000);
            return;
        }
        if (old)
            informer__entry_free(inf, old);
        else
            inf->next_size++;
    }
    json_t *md = json_object_get(resp->json, "metadata");
    const char *cont = json_string_value(json_object_get(md, "continue"));
    if (cont && cont[0]) {
        informer__list(inf, cont);
        return;
    }
    informer__set_rv(inf, json_string_value(json_object_get(md, "resourceVersion")));
    /* Pages shrink for large objects within a LIST (which then starts
     * over); they grow back only between LISTs, once a whole LIST came in
     * pages well under the bound. Growing within one would meet the same
     * large objects again and start over for ever. */
    size_t bound = inf->page_bytes ? inf->page_bytes : 64u << 20;
    if (inf->list_biggest < bound / 4 && inf->page_size < inf->page_max)
        inf->page_size = inf->page_size * 2 < inf->page_max ? inf->page_size * 2 : inf->page_max;
    informer__list_complete(inf);
    inf->watch_attempt = 0;
    informer__watch(inf);
}

void informer__list(struct informer *inf, const char *cont)
{
    struct buf path;
    char limit[16];
    buf_init(&path, 16 * 1024);
    snprintf(limit, sizeof(limit), "%u", inf->page_size);
    if (!cont)
        inf->list_biggest = 0; /* a LIST starts */
    int rc = informer__base_path(inf, &path);
    if (!rc)
        rc = kube_query(&path, "limit", limit);
    if (!rc && cont)
        rc = kube_query(&path, "continue", cont);
    if (!rc)
        rc = kube_get_stripped(inf->client, path.data, inf->ops.strip, inf->page_bytes, on_list,
                               inf, &inf->req);
    buf_free(&path);
    if (rc) {
        informer__tree_destroy(inf, &inf->next);
        inf->next_size = 0;
        informer__schedule(inf, NEXT_LIST, 1000);
    }
}
