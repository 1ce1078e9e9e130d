// SPDX-License-Identifier: Apache-2.0
/*
 * ledger.c - search trees (tsearch) of kage's own writes: per Sandbox the
 * memory a reconcile reads and updates, per namespace the baseline written
 * and the quota waits. Only an optimisation of what the caches will show:
 * a mark lost to ENOMEM costs one more request, never a wrong one.
 */
#include "ledger.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

struct ledger {
    void *sandboxes;   /* struct sbx_memory */
    void *baselines;   /* struct ns_mark: namespaces whose baseline kage wrote */
    void *quota;       /* struct ns_mark: namespaces with a sandbox waiting for quota */
    void *foreign;     /* struct ns_mark: at = policies not kage's in the namespace */
    bool foreign_lost; /* a count was lost to ENOMEM: every namespace may hold one */
};

struct ns_mark {
    const char *ns; /* first, as sbx_memory's key */
    uint64_t at;
    char data[];
};

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct ledger *ledger_new(void)
{
    return calloc(1, sizeof(struct ledger));
}

static void memory_free(void *p)
{
    struct sbx_memory *m = p;
    free(m->last_status);
    free(m);
}

void ledger_free(struct ledger *l)
{
    if (!l)
        return;
    tdestroy(l->sandboxes, memory_free);
    tdestroy(l->baselines, free);
    tdestroy(l->quota, free);
    tdestroy(l->foreign, free);
    free(l);
}

struct sbx_memory *ledger_sandbox(struct ledger *l, const char *key, bool create)
{
    void *node = tfind(&key, &l->sandboxes, key_cmp);
    if (node)
        return *(struct sbx_memory **)node;
    if (!create)
        return NULL;
    size_t n = strlen(key) + 1;
    struct sbx_memory *m = calloc(1, sizeof(*m) + n);
    if (!m)
        return NULL;
    memcpy(m->data, key, n);
    m->key = m->data;
    if (!tsearch(m, &l->sandboxes, key_cmp)) {
        free(m);
        return NULL;
    }
    return m;
}

void ledger_forget(struct ledger *l, const char *key)
{
    void *node = tfind(&key, &l->sandboxes, key_cmp);
    if (!node)
        return;
    struct sbx_memory *m = *(struct sbx_memory **)node;
    tdelete(&key, &l->sandboxes, key_cmp);
    memory_free(m);
}

static struct ns_mark *mark_find(void *const *tree, const char *ns)
{
    void *node = tfind(&ns, tree, key_cmp);
    return node ? *(struct ns_mark **)node : NULL;
}

/* Adds a mark for ns at time at, or moves an existing one to at. */
static void mark_set(void **tree, const char *ns, uint64_t at)
{
    struct ns_mark *m = mark_find(tree, ns);
    if (m) {
        m->at = at;
        return;
    }
    size_t n = strlen(ns) + 1;
    m = malloc(sizeof(*m) + n);
    if (!m)
        return;
    memcpy(m->data, ns, n);
    m->ns = m->data;
    m->at = at;
    if (!tsearch(m, tree, key_cmp))
        free(m);
}

/* Removes the mark of ns[0..len); true when there was one. */
static bool mark_drop(void **tree, const char *ns, size_t len)
{
    char name[300];
    if (len >= sizeof(name))
        return false;
    memcpy(name, ns, len);
    name[len] = '\0';
    const char *k = name;
    struct ns_mark *m = mark_find(tree, k);
    if (!m)
        return false;
    tdelete(&k, tree, key_cmp);
    free(m);
    return true;
}

bool ledger_baseline_recent(const struct ledger *l, const char *ns, uint64_t now, uint64_t within)
{
    const struct ns_mark *m = mark_find(&l->baselines, ns);
    return m && now - m->at < within;
}

void ledger_baseline_written(struct ledger *l, const char *ns, uint64_t now)
{
    mark_set(&l->baselines, ns, now);
}

void ledger_baseline_seen(struct ledger *l, const char *ns, size_t len)
{
    mark_drop(&l->baselines, ns, len);
}

void ledger_quota_waiting(struct ledger *l, const char *ns)
{
    if (!mark_find(&l->quota, ns))
        mark_set(&l->quota, ns, 0);
}

void ledger_foreign_count(struct ledger *l, const char *ns, size_t len, int delta)
{
    char name[300];
    if (len >= sizeof(name))
        return;
    memcpy(name, ns, len);
    name[len] = '\0';
    struct ns_mark *m = mark_find(&l->foreign, name);
    uint64_t n = m ? m->at : 0;
    if (delta < 0 && n <= 1) {
        mark_drop(&l->foreign, name, len);
        return;
    }
    mark_set(&l->foreign, name, delta < 0 ? n - 1 : n + 1);
    m = mark_find(&l->foreign, name);
    if (!m || m->at != (delta < 0 ? n - 1 : n + 1))
        l->foreign_lost = true; /* from now on, look everywhere: slower, never blind */
}

unsigned long ledger_foreign_policies(const struct ledger *l, const char *ns)
{
    const struct ns_mark *m = mark_find(&l->foreign, ns);
    return l->foreign_lost ? 1 : m ? (unsigned long)m->at : 0;
}

bool ledger_quota_release(struct ledger *l, const char *ns, size_t len)
{
    return mark_drop(&l->quota, ns, len);
}
