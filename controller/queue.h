// SPDX-License-Identifier: Apache-2.0
/* queue.h - the controller's work queue on a libuv loop, with client-go
 * workqueue semantics: a key is queued at most once, never worked on twice
 * at the same time, retried with per-key backoff, and delayed with one timer.
 * Queued keys wait in one of two lanes: the finish lane is served before
 * the start lane, but never more than QUEUE_FINISH_BURST times in a row
 * while a start key waits. */
#ifndef KAGE_QUEUE_H
#define KAGE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "reconcile/outcome.h"

#define QUEUE_KEY_MAX         512 /* longest key accepted, in bytes */
#define QUEUE_BACKOFF_BASE_MS 5u  /* first retry of a failed key */
#define QUEUE_BACKOFF_MAX_MS  (5u * 60 * 1000)
#define QUEUE_FINISH_BURST    8u /* finish keys served per start key, when both wait */

/* The lanes of queued keys, in the order they are served. */
enum queue_lane {
    QUEUE_LANE_FINISH, /* work that brings something already begun to its end */
    QUEUE_LANE_START,  /* work that begins something (the lane of every key by default) */
    QUEUE_LANES
};

struct queue;

/*
 * Called from the loop (never from inside queue_add) with a key to work on.
 * key is the queue's copy: valid until queue_done for it, which may free it
 * (copy it first if it is needed afterwards). The worker must call
 * queue_done exactly once per call, then or later, from any loop callback.
 */
typedef void (*queue_work_cb)(struct queue *q, const char *key, void *arg);

/* Called once the queue is closed; q is freed when it returns. */
typedef void (*queue_close_cb)(struct queue *q, void *arg);

struct queue_stats {
    uint64_t adds;       /* keys put in the queue (adds of an already queued key not counted) */
    uint64_t retries;    /* failures requeued with backoff */
    uint64_t dispatches; /* calls of the work callback */
    size_t depth;        /* queued, not in flight */
    size_t depth_lane[QUEUE_LANES]; /* depth by lane */
    size_t waiting;                 /* keys with a pending deadline (add_after, backoff) */
    unsigned in_flight;             /* dispatched, queue_done not yet called */
};

/*
 * Creates a queue on loop that hands keys to work(q, key, arg), at most
 * max_concurrent (0 is taken as 1) at once. Returns NULL on ENOMEM.
 * Release with queue_close.
 */
struct queue *queue_new(uv_loop_t *loop, unsigned max_concurrent, queue_work_cb work, void *arg);

/*
 * Queues key (copied) for work on a later turn of the loop. A key already
 * queued is not queued again; a key in flight is marked dirty and queued
 * once more when its queue_done comes. A pending deadline of the key is kept.
 * Returns 0, -EINVAL (empty key or longer than QUEUE_KEY_MAX), -ENOMEM, or
 * -ESHUTDOWN after queue_shutdown.
 */
int queue_add(struct queue *q, const char *key);

/*
 * Queues key once delay_ms have passed (0: as queue_add). A key has one
 * deadline: an earlier one replaces it, a later one is ignored. Work should
 * therefore ask again for its next deadline each time it runs (queue_done
 * with result > 0). Same returns as queue_add.
 */
int queue_add_after(struct queue *q, const char *key, uint64_t delay_ms);

/*
 * Ends the work on key with its outcome. OUTCOME_DONE: the key's failure
 * count is reset. OUTCOME_RETRY: the key is requeued after its backoff,
 * QUEUE_BACKOFF_BASE_MS doubling per consecutive failure up to
 * QUEUE_BACKOFF_MAX_MS (equal jitter, see backoff_delay_ms). OUTCOME_AFTER:
 * success, requeued after after_ms. A key that was added while in flight is
 * queued again now. Keys not in flight are ignored. After queue_close, the
 * last done starts the close.
 */
void queue_done(struct queue *q, const char *key, struct outcome o);

/* Called at each dispatch with how long the key waited in the queue (from
 * being queued, or from its deadline, to now), in milliseconds. */
typedef void (*queue_wait_cb)(void *arg, uint64_t waited_ms);

/* Sets (or, with NULL, clears) the wait callback. */
void queue_on_wait(struct queue *q, queue_wait_cb cb, void *arg);

/*
 * Called with a key each time it is queued (added, due, or requeued at its
 * done) and each time a queued key is added again, to choose its lane. A
 * queued key moves to the finish lane when asked again and the answer is
 * QUEUE_LANE_FINISH; it never moves back to the start lane while queued.
 */
typedef enum queue_lane (*queue_lane_cb)(void *arg, const char *key);

/* Sets (or, with NULL, clears: every key in the start lane) the lane callback. */
void queue_on_lane(struct queue *q, queue_lane_cb cb, void *arg);

/* Number of keys dispatched whose queue_done has not come yet. */
unsigned queue_in_flight(const struct queue *q);

/* Consecutive failures of key (0 for an unknown key). */
unsigned queue_num_requeues(const struct queue *q, const char *key);

/* Stores into *deadline_ms the loop time (uv_now scale) at which key is due
 * to be queued. Returns 0, or -ENOENT when key has no deadline. */
int queue_deadline(const struct queue *q, const char *key, uint64_t *deadline_ms);

/* Copies the counters and gauges into *st. */
void queue_get_stats(const struct queue *q, struct queue_stats *st);

/*
 * Stops dispatching: queued and waiting keys are dropped, later adds fail
 * with -ESHUTDOWN. Keys in flight still end with queue_done (not requeued).
 */
void queue_shutdown(struct queue *q);

/*
 * Shuts the queue down and frees it: once no key is in flight and its
 * handles are closed, close_cb(q, arg) is called (from a libuv close
 * callback) and q is freed. close_cb may be NULL. Call once.
 */
void queue_close(struct queue *q, queue_close_cb close_cb);

#endif
