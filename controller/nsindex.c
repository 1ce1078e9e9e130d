// SPDX-License-Identifier: Apache-2.0
/*
 * nsindex.c - a search tree (tsearch) of namespaces, each with a search tree
 * of its Sandboxes' keys: adding, removing and finding a namespace cost a
 * logarithm, walking one costs its own Sandboxes.
 */
#include "nsindex.h"

#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

/* A namespace's name: first in struct ns_entry, and alone in a lookup. */
struct ns_key {
    const char *ns; /* not terminated */
    size_t len;
};

struct ns_entry {
    struct ns_key k; /* k.ns points at ns below */
    void *keys;      /* tsearch root of malloc'd "namespace/name" strings */
    size_t n;
    char ns[];
};

struct nsindex {
    void *namespaces; /* struct ns_entry, by name */
    bool lost;        /* an add failed for want of memory */
};

static int ns_cmp(const void *a, const void *b)
{
    const struct ns_key *x = a, *y = b;
    int c = memcmp(x->ns, y->ns, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct nsindex *nsindex_new(void)
{
    return calloc(1, sizeof(struct nsindex));
}

static void entry_free(void *p)
{
    struct ns_entry *e = p;
    tdestroy(e->keys, free);
    free(e);
}

void nsindex_free(struct nsindex *x)
{
    if (!x)
        return;
    tdestroy(x->namespaces, entry_free);
    free(x);
}

static struct ns_entry *find_ns(const struct nsindex *x, const char *ns, size_t len)
{
    struct ns_key k = {ns, len};
    void *const *node = tfind(&k, &x->namespaces, ns_cmp);
    return node ? *node : NULL;
}

int nsindex_add(struct nsindex *x, const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash || slash == key)
        return -EINVAL;
    size_t len = (size_t)(slash - key);
    struct ns_entry *e = find_ns(x, key, len);
    if (e && tfind(key, &e->keys, key_cmp))
        return 0;
    bool made = false;
    if (!e) {
        e = calloc(1, sizeof(*e) + len + 1);
        if (!e)
            goto lost;
        memcpy(e->ns, key, len);
        e->k = (struct ns_key){e->ns, len};
        if (!tsearch(e, &x->namespaces, ns_cmp)) {
            free(e);
            goto lost;
        }
        made = true;
    }
    char *copy = strdup(key);
    if (!copy || !tsearch(copy, &e->keys, key_cmp)) {
        free(copy);
        if (made) {
            tdelete(e, &x->namespaces, ns_cmp);
            free(e);
        }
        goto lost;
    }
    e->n++;
    return 0;
lost:
    x->lost = true;
    return -ENOMEM;
}

void nsindex_remove(struct nsindex *x, const char *key)
{
    const char *slash = strchr(key, '/');
    struct ns_entry *e = slash ? find_ns(x, key, (size_t)(slash - key)) : NULL;
    void *const *node = e ? tfind(key, &e->keys, key_cmp) : NULL;
    if (!node)
        return;
    char *held = *node;
    tdelete(key, &e->keys, key_cmp);
    free(held);
    e->n--;
    if (e->n == 0) {
        tdelete(e, &x->namespaces, ns_cmp);
        free(e);
    }
}

bool nsindex_complete(const struct nsindex *x)
{
    return !x->lost;
}

struct walk {
    void (*cb)(void *arg, const char *key);
    void *arg;
    size_t calls;
};

static void visit(const void *node, VISIT v, void *arg)
{
    if (v != postorder && v != leaf)
        return;
    struct walk *w = arg;
    w->calls++;
    w->cb(w->arg, *(const char *const *)node);
}

size_t nsindex_foreach(const struct nsindex *x, const char *ns, size_t nslen,
                       void (*cb)(void *arg, const char *key), void *arg)
{
    const struct ns_entry *e = find_ns(x, ns, nslen);
    if (!e)
        return 0;
    struct walk w = {cb, arg, 0};
    twalk_r(e->keys, visit, &w);
    return w.calls;
}
