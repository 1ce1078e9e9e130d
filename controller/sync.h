// SPDX-License-Identifier: Apache-2.0
/* sync.h - one reconcile of one Sandbox carried out: the pure decisions of
 * reconcile/ turned into requests through a sender, and the answers fed
 * back, until the reconcile ends. The sender and every read are the
 * caller's (the controller, or a test's script). */
#ifndef KAGE_SYNC_H
#define KAGE_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconcile/reconcile.h"

typedef void (*sync_answer_cb)(void *arg, const struct reconcile_answer *ans);

/* The narrow interface a reconcile runs against. */
struct sync_env {
    struct reconcile_env rc; /* caches, clocks, Events, counters; rc.arg is every call's arg */
    const struct sandbox_obj *(*sandbox)(void *arg, const char *key);
    /* kage's memory of key, created when create is set (NULL on ENOMEM). */
    struct sbx_memory *(*memory)(void *arg, const char *key, bool create);
    void (*forget)(void *arg, const char *key);
    /*
     * Sends req; cb(cb_arg, answer) runs once, later, from the loop (never
     * inside send). Returns 0, or a negative errno and cb never runs.
     */
    int (*send)(void *arg, const struct reconcile_request *req, sync_answer_cb cb, void *cb_arg);
    /* The reconcile of key ended with o; look again deadline_ms ahead when
     * not 0, whatever o says. started_ns: uv_hrtime() at its start. */
    void (*done)(void *arg, const char *key, struct outcome o, uint64_t deadline_ms,
                 uint64_t started_ns);
    /*
     * The bound on the bytes of Sandboxes read whole (those the cache does
     * not keep whole) being reconciled at once. take returns 1 when bytes
     * are granted now; 0 when the reconcile must wait, and granted(cb_arg)
     * runs once, later, from give; -ENOMEM. give hands bytes back. Both
     * NULL: no bound.
     */
    int (*budget_take)(void *arg, size_t bytes, void (*granted)(void *cb_arg), void *cb_arg);
    void (*budget_give)(void *arg, size_t bytes);
};

/* Reconciles the Sandbox key ("namespace/name"); ends with env->done,
 * then or later. A Sandbox the cache keeps whole is reconciled from the
 * cache; any other is read from the API server first, within the budget.
 * env must outlive the reconcile. */
void sync_sandbox(const struct sync_env *env, const char *key);

#endif
