/*
 * informer.c - keeps a cache of one resource in step with the API server:
 * paginated LIST, then WATCH from the list's resourceVersion with bookmarks;
 * resumes from the last version seen, relists on 410 or an ERROR event, and
 * reconnects with jittered backoff. The cache is a POSIX search tree of
 * compact entries made by the resource's decode function.
 */
#include "kube/informer.h"

#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/buf.h"
#include "kube/jsonscan.h"

#define KEY_MAX 512 /* namespace (63) + "/" + name (253), with room */
#define RV_MAX  64

/* One cached object. key and rv point into data. */
struct cache_entry {
    const char *key; /* first: tsearch compares entries by *(const char **) */
    const char *rv;
    void *obj;
    char data[];
};

enum next_action {
    NEXT_LIST,
    NEXT_WATCH,
};

struct informer {
    struct kube_client *client;
    uv_loop_t *loop;
    struct informer_ops ops;
    struct informer_handlers h;
    void *arg;
    const struct kube_resource *res;
    char *ns;
    char *selector;
    unsigned page_size;
    unsigned min_timeout_s;
    uint64_t stall_ms;

    void *cache; /* tsearch root of struct cache_entry */
    size_t size;
    void *next; /* the tree a LIST in progress builds */
    size_t next_size;
    char rv[RV_MAX];

    struct kube_request *req; /* the LIST page or WATCH in flight */
    uv_timer_t timer;         /* backoff before the next LIST or WATCH */
    enum next_action action;
    unsigned list_attempt;
    unsigned watch_attempt;
    int want_relist; /* the watch saw an ERROR event or a 410 */
    int synced;
    int started;
    int closing;
    uint64_t rng;
    void (*close_cb)(void *arg);
    void *close_arg;
    struct informer_stats stats;
};

static void list_page(struct informer *inf, const char *cont);
static void watch(struct informer *inf);

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

static void entry_free(struct informer *inf, struct cache_entry *e)
{
    if (e) {
        inf->ops.free_obj(e->obj);
        free(e);
    }
}

static struct cache_entry *tree_find(void *const *root, const char *key)
{
    void *node = tfind(&key, root, entry_cmp);
    return node ? *(struct cache_entry **)node : NULL;
}

/* Puts e into *root, replacing (and returning) an entry of the same key. */
static int tree_put(void **root, struct cache_entry *e, struct cache_entry **old)
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

static void set_rv(struct informer *inf, const char *rv)
{
    if (rv && rv[0])
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
}

static const char *object_rv(json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return rv ? rv : "";
}

static void report(struct informer *inf, const char *what, const struct kube_error *err)
{
    if (inf->h.on_error)
        inf->h.on_error(inf->arg, what, err);
}

/* Decodes obj into a new entry; NULL (counted, reported) when it cannot. */
static struct cache_entry *decode(struct informer *inf, json_t *obj)
{
    char key[KEY_MAX], err[256];
    if (informer_key(obj, key, sizeof(key)) != 0) {
        inf->stats.decode_errors++;
        struct kube_error e;
        kube_error_transport(&e, "object without a usable metadata.name");
        report(inf, "decode", &e);
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
        report(inf, "decode", &e);
        return NULL;
    }
    struct cache_entry *e = entry_new(key, object_rv(obj), o);
    if (!e)
        inf->ops.free_obj(o);
    return e;
}

static void on_timer(uv_timer_t *t)
{
    struct informer *inf = t->data;
    if (inf->closing)
        return;
    if (inf->action == NEXT_LIST)
        list_page(inf, NULL);
    else
        watch(inf);
}

static void schedule_next(struct informer *inf, enum next_action action, uint64_t delay_ms)
{
    inf->action = action;
    uv_timer_start(&inf->timer, on_timer, delay_ms, 0);
}

/* ---- LIST ------------------------------------------------------------- */

struct diff_ctx {
    struct informer *inf;
    void *old;
};

static struct informer *freeing; /* tdestroy has no context argument */

static void free_entry_cb(void *p)
{
    entry_free(freeing, p);
}

static void tree_destroy(struct informer *inf, void **root)
{
    freeing = inf;
    tdestroy(*root, free_entry_cb);
    freeing = NULL;
    *root = NULL;
}

/* For each entry of the new list: an add, or an update if its version moved. */
static void diff_new(const void *node, VISIT which, void *arg)
{
    if (which != postorder && which != leaf)
        return;
    struct diff_ctx *d = arg;
    struct cache_entry *e = *(struct cache_entry *const *)node;
    struct cache_entry *was = tree_find(&d->old, e->key);
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
    if (tree_find(&g->fresh, e->key))
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
static void list_complete(struct informer *inf)
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
    tree_destroy(inf, &old);

    inf->stats.lists++;
    if (inf->stats.lists > 1)
        inf->stats.relists++;
    inf->list_attempt = 0;
    if (!inf->synced) {
        inf->synced = 1;
        if (inf->h.on_synced)
            inf->h.on_synced(inf->arg);
    }
}

static void on_list(void *arg, const struct kube_response *resp)
{
    struct informer *inf = arg;
    inf->req = NULL;

    if (resp->err) {
        report(inf, "list", resp->err);
        tree_destroy(inf, &inf->next);
        inf->next_size = 0;
        if (strcmp(resp->err->reason, KUBE_REASON_TOO_LARGE) == 0 && inf->page_size > 1) {
            /* Large objects: a page of them exceeds the response cap. Ask
             * for pages a quarter the size, at once. */
            inf->page_size = inf->page_size / 4 ? inf->page_size / 4 : 1;
            schedule_next(inf, NEXT_LIST, 0);
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
        schedule_next(inf, NEXT_LIST, delay);
        return;
    }
    inf->stats.list_pages++;
    json_t *items = json_object_get(resp->json, "items");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        struct cache_entry *e = decode(inf, item), *old = NULL;
        if (!e)
            continue;
        if (tree_put(&inf->next, e, &old) != 0) {
            entry_free(inf, e);
            struct kube_error err;
            kube_error_transport(&err, "out of memory building the cache");
            report(inf, "list", &err);
            tree_destroy(inf, &inf->next);
            inf->next_size = 0;
            schedule_next(inf, NEXT_LIST, 1000);
            return;
        }
        if (old)
            entry_free(inf, old);
        else
            inf->next_size++;
    }
    json_t *md = json_object_get(resp->json, "metadata");
    const char *cont = json_string_value(json_object_get(md, "continue"));
    if (cont && cont[0]) {
        list_page(inf, cont);
        return;
    }
    set_rv(inf, json_string_value(json_object_get(md, "resourceVersion")));
    list_complete(inf);
    inf->watch_attempt = 0;
    watch(inf);
}

static int base_path(struct informer *inf, struct buf *b)
{
    int rc = kube_path(b, inf->res, inf->ns, NULL, NULL);
    if (!rc && inf->selector)
        rc = kube_query(b, "labelSelector", inf->selector);
    return rc;
}

static void list_page(struct informer *inf, const char *cont)
{
    struct buf path;
    char limit[16];
    buf_init(&path, 16 * 1024);
    snprintf(limit, sizeof(limit), "%u", inf->page_size);
    int rc = base_path(inf, &path);
    if (!rc)
        rc = kube_query(&path, "limit", limit);
    if (!rc && cont)
        rc = kube_query(&path, "continue", cont);
    if (!rc)
        rc = kube_get_stripped(inf->client, path.data, inf->ops.strip, on_list, inf, &inf->req);
    buf_free(&path);
    if (rc) {
        tree_destroy(inf, &inf->next);
        inf->next_size = 0;
        schedule_next(inf, NEXT_LIST, 1000);
    }
}

/* ---- WATCH ------------------------------------------------------------ */

static void apply_upsert(struct informer *inf, json_t *obj)
{
    struct cache_entry *e = decode(inf, obj), *old = NULL;
    if (!e)
        return;
    if (tree_put(&inf->cache, e, &old) != 0) {
        entry_free(inf, e);
        inf->want_relist = 1; /* the cache missed an event: rebuild it */
        return;
    }
    inf->stats.events++;
    if (old) {
        if (inf->h.on_update)
            inf->h.on_update(inf->arg, e->key, old->obj, e->obj);
        entry_free(inf, old);
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
    const char *k = key;
    void *node = tfind(&k, &inf->cache, entry_cmp);
    if (!node)
        return;
    struct cache_entry *e = *(struct cache_entry **)node;
    tdelete(&k, &inf->cache, entry_cmp);
    inf->size--;
    inf->stats.events++;
    /* Handlers see the object's last state as the event carries it. */
    char err[256];
    void *last = inf->ops.decode(obj, err, sizeof(err));
    if (inf->h.on_delete)
        inf->h.on_delete(inf->arg, e->key, last ? last : e->obj);
    if (last)
        inf->ops.free_obj(last);
    entry_free(inf, e);
}

/* Returns 0 to go on, nonzero to drop the stream (want_relist says how). */
static int on_watch_line(void *arg, char *line, size_t len)
{
    struct informer *inf = arg;
    json_error_t jerr;
    if (inf->ops.strip)
        jsonscan_strip_members(line, &len, inf->ops.strip);
    else
        jsonscan_strip_managed_fields(line, &len);
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
        report(inf, "watch", &e);
        json_decref(ev);
        /* Skip it and go on: resuming from the version before it would
         * replay the same event forever, stalling every object behind it. */
        return 0;
    }
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        apply_upsert(inf, obj);
        set_rv(inf, object_rv(obj));
    } else if (strcmp(type, "DELETED") == 0) {
        apply_delete(inf, obj);
        set_rv(inf, object_rv(obj));
    } else if (strcmp(type, "BOOKMARK") == 0) {
        inf->stats.bookmarks++;
        set_rv(inf, object_rv(obj));
    } else if (strcmp(type, "ERROR") == 0) {
        struct kube_error e;
        kube_error_from_status_json(&e, obj);
        report(inf, "watch", &e);
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
    list_page(inf, NULL);
}

static void on_watch_end(void *arg, const struct kube_error *err)
{
    struct informer *inf = arg;
    inf->req = NULL;
    if (inf->want_relist || (err && kube_error_is_gone(err))) {
        if (err && !inf->want_relist)
            report(inf, "watch", err);
        relist(inf);
        return;
    }
    if (!err) {
        /* The server ended the watch at its timeoutSeconds: resume. */
        watch(inf);
        return;
    }
    report(inf, "watch", err);
    inf->stats.reconnects++;
    uint64_t delay = backoff_delay_ms(inf->watch_attempt++, 500, 30000, backoff_rand(&inf->rng));
    schedule_next(inf, NEXT_WATCH, delay);
}

static void watch(struct informer *inf)
{
    struct buf path;
    char timeout[16];
    unsigned t = inf->min_timeout_s + (unsigned)(backoff_rand(&inf->rng) * inf->min_timeout_s);
    buf_init(&path, 16 * 1024);
    snprintf(timeout, sizeof(timeout), "%u", t);
    int rc = base_path(inf, &path);
    if (!rc)
        rc = kube_query(&path, "watch", "1");
    if (!rc)
        rc = kube_query(&path, "allowWatchBookmarks", "true");
    if (!rc)
        rc = kube_query(&path, "resourceVersion", inf->rv);
    if (!rc)
        rc = kube_query(&path, "timeoutSeconds", timeout);
    if (!rc)
        rc = kube_watch(inf->client, path.data, inf->stall_ms, on_watch_line, on_watch_end, inf,
                        &inf->req);
    buf_free(&path);
    if (rc) {
        schedule_next(inf, NEXT_WATCH, 1000);
        return;
    }
    inf->stats.watches++;
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
    inf->page_size = o->page_size ? o->page_size : 250;
    inf->min_timeout_s = o->min_timeout_s ? o->min_timeout_s : 300;
    inf->stall_ms = o->stall_ms ? o->stall_ms : 90000;
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
    list_page(inf, NULL);
    return 0;
}

const void *informer_get(const struct informer *inf, const char *key)
{
    struct cache_entry *e = tree_find(&inf->cache, key);
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
    tree_destroy(inf, &inf->cache);
    tree_destroy(inf, &inf->next);
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
