// SPDX-License-Identifier: Apache-2.0
/* outcome.h - how a reconcile, and each of its steps, ends: done, retry
 * with backoff, or look again after some milliseconds. The one result type
 * of the reconcile core and of the work queue. Pure: no I/O. */
#ifndef KAGE_OUTCOME_H
#define KAGE_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>

enum outcome_kind {
    OUTCOME_DONE,  /* nothing more to do until something changes */
    OUTCOME_RETRY, /* failed: try again after the key's backoff */
    OUTCOME_AFTER, /* succeeded so far: look again after after_ms */
};

struct outcome {
    enum outcome_kind kind;
    uint64_t after_ms; /* OUTCOME_AFTER only, > 0 */
};

static inline struct outcome outcome_done(void)
{
    return (struct outcome){OUTCOME_DONE, 0};
}

static inline struct outcome outcome_retry(void)
{
    return (struct outcome){OUTCOME_RETRY, 0};
}

/* Look again after ms (at least 1). */
static inline struct outcome outcome_after(uint64_t ms)
{
    return (struct outcome){OUTCOME_AFTER, ms ? ms : 1};
}

static inline bool outcome_is_done(struct outcome o)
{
    return o.kind == OUTCOME_DONE;
}

/*
 * The sooner of two ways to look again: a retry stands (its backoff is the
 * queue's to choose), else the earlier of two delays, else a delay over
 * done.
 */
static inline struct outcome outcome_sooner(struct outcome a, struct outcome b)
{
    if (a.kind == OUTCOME_RETRY || b.kind == OUTCOME_DONE)
        return a;
    if (b.kind == OUTCOME_RETRY || a.kind == OUTCOME_DONE)
        return b;
    return a.after_ms <= b.after_ms ? a : b;
}

#endif
