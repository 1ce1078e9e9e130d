// SPDX-License-Identifier: Apache-2.0
/*
 * census.c - counts the cached Sandboxes by phase and namespace in one walk
 * of the cache: its keys are "namespace/name" in order, so each namespace's
 * Sandboxes come together.
 */
#include "census.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/observed.h"

const char *const census_phase_names[CENSUS_PHASES] = {"",        "Pending", "Creating",
                                                       "Running", "Paused",  "Succeeded",
                                                       "Failed",  "Expired", "Terminating"};

/* A Sandbox without a phase kage knows counts under "". */
static size_t phase_of(const struct sandbox_obj *s)
{
    for (size_t k = 1; k < CENSUS_PHASES; k++)
        if (strcmp(s->phase, census_phase_names[k]) == 0)
            return k;
    return 0;
}

struct walk {
    struct census *c;
    size_t cap;
    int err;
};

static void count(void *arg, const char *key, const void *obj)
{
    struct walk *w = arg;
    struct census *c = w->c;
    const struct sandbox_obj *s = obj;
    size_t ph = phase_of(s);
    c->all[ph]++;
    if (w->err)
        return;
    struct census_row *last = c->nrows ? &c->rows[c->nrows - 1] : NULL;
    size_t nslen = strcspn(key, "/");
    if (!last || strlen(last->ns) != nslen || strncmp(last->ns, key, nslen) != 0) {
        if (c->nrows == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 16;
            struct census_row *rows = realloc(c->rows, cap * sizeof(*rows));
            if (!rows) {
                w->err = -ENOMEM;
                return;
            }
            c->rows = rows;
            w->cap = cap;
        }
        last = &c->rows[c->nrows++];
        memset(last, 0, sizeof(*last));
        /* A namespace name is at most 63 characters; a longer key part
         * cannot come from the API server, and is cut. */
        size_t n = nslen < CENSUS_NS_MAX - 1 ? nslen : CENSUS_NS_MAX - 1;
        memcpy(last->ns, key, n);
        last->ns[n] = '\0';
    }
    last->n[ph]++;
    last->total++;
}

/* Most Sandboxes first; equal counts by name, so the rows are stable. */
static int by_size(const void *a, const void *b)
{
    const struct census_row *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->ns, y->ns);
}

int census_take(struct census *c, const struct informer *sandboxes, size_t max_rows)
{
    memset(c, 0, sizeof(*c));
    struct walk w = {c, 0, 0};
    informer_foreach(sandboxes, count, &w);
    if (w.err) {
        census_free(c);
        return w.err;
    }
    if (c->nrows > 1)
        qsort(c->rows, c->nrows, sizeof(*c->rows), by_size);
    for (size_t i = max_rows; i < c->nrows; i++) {
        for (size_t k = 0; k < CENSUS_PHASES; k++)
            c->other.n[k] += c->rows[i].n[k];
        c->other.total += c->rows[i].total;
    }
    if (c->nrows > max_rows)
        c->nrows = max_rows;
    return 0;
}

void census_free(struct census *c)
{
    free(c->rows);
    memset(c, 0, sizeof(*c));
}
