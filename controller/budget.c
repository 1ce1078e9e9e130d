// SPDX-License-Identifier: Apache-2.0
/*
 * budget.c - a bound on bytes held at once, with a line of those waiting
 * for their share: the reconciles of Sandboxes read whole share one, so
 * their memory stays bounded however many of them are queued.
 */
#include "budget.h"

#include <errno.h>
#include <stdlib.h>

struct budget_waiter {
    size_t bytes;
    void (*granted)(void *arg);
    void *arg;
    struct budget_waiter *next;
};

void budget_init(struct budget *b, size_t limit)
{
    *b = (struct budget){.limit = limit};
}

/* Whether a share of bytes (at most the limit) fits now. */
static int fits(const struct budget *b, size_t bytes)
{
    return b->used == 0 || bytes <= b->limit - b->used;
}

static size_t share(const struct budget *b, size_t bytes)
{
    return bytes < b->limit ? bytes : b->limit;
}

int budget_take(struct budget *b, size_t bytes, void (*granted)(void *arg), void *arg)
{
    bytes = share(b, bytes);
    /* Nobody passes those in line: a large share is not starved by small
     * ones. */
    if (!b->first && fits(b, bytes)) {
        b->used += bytes;
        return 1;
    }
    struct budget_waiter *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct budget_waiter){bytes, granted, arg, NULL};
    if (b->last)
        b->last->next = w;
    else
        b->first = w;
    b->last = w;
    b->waiting++;
    return 0;
}

void budget_give(struct budget *b, size_t bytes)
{
    bytes = share(b, bytes);
    b->used -= bytes < b->used ? bytes : b->used;
    while (b->first && fits(b, b->first->bytes)) {
        struct budget_waiter w = *b->first;
        free(b->first);
        b->first = w.next;
        if (!b->first)
            b->last = NULL;
        b->waiting--;
        b->used += w.bytes;
        /* May give back at once (its request could not be sent), which
         * runs this loop again inside: the line is consistent here. */
        w.granted(w.arg);
    }
}

void budget_free(struct budget *b)
{
    while (b->first) {
        struct budget_waiter *next = b->first->next;
        free(b->first);
        b->first = next;
    }
    b->last = NULL;
    b->waiting = 0;
}
