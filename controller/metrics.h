// SPDX-License-Identifier: Apache-2.0
/* metrics.h - the controller's counters, and /metrics in the Prometheus
 * text format from them and from the client, queue and caches. */
#ifndef KAGE_METRICS_H
#define KAGE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "kube/buf.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "queue.h"

/* Namespaces that get their own kage_namespace_sandboxes series. */
#define METRICS_NAMESPACES 50

/* Most buckets a histogram has, +Inf not counted. */
#define METRICS_MAX_BUCKETS 16

/* A Prometheus histogram: counts per bucket (not cumulative; the last is
 * +Inf) over the upper bounds of bounds[0..n), and the sum. */
struct metrics_histogram {
    const double *bounds;
    int n;
    uint64_t counts[METRICS_MAX_BUCKETS + 1];
    double sum;
};

/* Counts value in h. */
void metrics_histogram_observe(struct metrics_histogram *h, double value);

struct metrics {
    uint64_t reconciles;
    uint64_t reconcile_errors;           /* ended asking for a retry with backoff */
    struct metrics_histogram duration;   /* of reconciles; set by metrics_init */
    struct metrics_histogram ready;      /* create-to-Ready; set by metrics_init */
    struct metrics_histogram queue_wait; /* queued to dispatched; set by metrics_init */
    uint64_t creates;
    uint64_t updates;
    uint64_t deletes;
    uint64_t status_writes;
    uint64_t status_deferred; /* PodStarting writes deferred while sandboxes waited to start */
    uint64_t refusals;        /* writes the API server refused */
    uint64_t events;
};

/* Zeroes m and sets its histograms' buckets. */
void metrics_init(struct metrics *m);

/* Records one reconcile that took seconds and failed (retry) or not. */
void metrics_observe(struct metrics *m, double seconds, bool failed);

/* Records one sandbox's wait from creation to its first Ready. */
void metrics_observe_ready(struct metrics *m, double seconds);

/* What /metrics reads besides the counters. queue may be NULL (not
 * leading); the informers are those of sandboxes, pods, networkpolicies,
 * sandboxclasses and namespaces, in that order. */
struct metrics_sources {
    const struct kube_client *client;
    const struct queue *queue;
    const struct informer *informers[5];
    bool synced;
};

/* Appends every metric to out. Returns 0 or a negative errno from the buffer. */
int metrics_render(const struct metrics *m, const struct metrics_sources *src, struct buf *out);

#endif
