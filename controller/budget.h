// SPDX-License-Identifier: Apache-2.0
/* budget.h - a bound on the bytes that many users hold at once: each takes
 * its share before it starts and gives it back at its end; one that does
 * not fit waits its turn, first come first served. Loop-only, no I/O. */
#ifndef KAGE_BUDGET_H
#define KAGE_BUDGET_H

#include <stddef.h>

struct budget_waiter;

struct budget {
    size_t limit;
    size_t used;
    size_t waiting; /* users in line */
    struct budget_waiter *first;
    struct budget_waiter *last;
};

/* An empty budget of limit bytes (more than 0). Allocates nothing. */
void budget_init(struct budget *b, size_t limit);

/*
 * Takes bytes (at most the limit is counted: a larger share waits for the
 * whole budget). Returns 1 when they are granted now; 0 when the caller
 * waits in line, and granted(arg) runs once, later, from the budget_give
 * that makes room (never from this call); -ENOMEM (nothing taken, no
 * callback). A share fits when it does, or when nothing else is held, so
 * every share is granted in the end.
 */
int budget_take(struct budget *b, size_t bytes, void (*granted)(void *arg), void *arg);

/* Gives back bytes taken by budget_take (granted now or later), and grants
 * those in line that now fit, in order. */
void budget_give(struct budget *b, size_t bytes);

/* Frees whoever is still in line; their callbacks never run. */
void budget_free(struct budget *b);

#endif
