// SPDX-License-Identifier: Apache-2.0
/* workers.h - the reconciling side of the controller: a work queue of
 * Sandbox keys, each reconciled (sync.c) against the caches and the API
 * client, with kage's ledger of its own writes and the controller's
 * counters. */
#ifndef KAGE_WORKERS_H
#define KAGE_WORKERS_H

#include <stdbool.h>

#include <uv.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "kube/path.h"
#include "ledger.h"
#include "metrics.h"
#include "queue.h"
#include "reconcile/gate.h"

struct workers;

/* kage's own resources. */
extern const struct kube_resource KAGE_SANDBOXES;
extern const struct kube_resource KAGE_SANDBOXCLASSES;

/* What the workers read and use; everything must outlive them. */
struct workers_opts {
    uv_loop_t *loop;
    struct kube_client *client;
    const struct informer *sandboxes;
    const struct informer *pods;
    const struct informer *policies;
    const struct informer *all_policies; /* every NetworkPolicy, kage's or not */
    const struct informer *classes;
    const struct informer *namespaces;
    const char *runtime_class;      /* the default runtimeClassName */
    const char *identity;           /* reportingInstance of Events */
    bool require_class;             /* a Sandbox no class applies to gets no pod */
    unsigned workers;               /* Sandboxes reconciled at once */
    const struct gate_config *gate; /* the policy gate of sandbox pods */
};

/* New workers, not started; NULL on ENOMEM. */
struct workers *workers_new(const struct workers_opts *o);

/* Starts the queue (once). Returns 0, or -ENOMEM. */
int workers_start(struct workers *w);
bool workers_started(const struct workers *w);

/* A Sandbox's add event (s its cached form): notes when it was first seen,
 * so that its create-to-Ready time is observed at its first Ready. */
void workers_sandbox_added(struct workers *c, const char *key, const struct sandbox_obj *s);

/* Queues a Sandbox key; ignored before the start and after the close. */
void workers_add(struct workers *w, const char *key);

struct ledger *workers_ledger(struct workers *w);
const struct metrics *workers_metrics(const struct workers *w);
const struct queue *workers_queue(const struct workers *w); /* NULL before the start */

/* No new work; cb(arg) runs once every reconcile in flight has ended (at
 * once when never started, else from a libuv close callback). */
void workers_close(struct workers *w, void (*cb)(void *arg), void *arg);

/* Frees w, after its close. */
void workers_free(struct workers *w);

#endif
