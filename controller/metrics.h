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

/* Upper bounds (seconds) of the reconcile duration histogram's buckets. */
#define METRICS_DURATION_BUCKETS 10

struct metrics {
    uint64_t reconciles;
    uint64_t reconcile_errors; /* ended asking for a retry with backoff */
    uint64_t duration_buckets[METRICS_DURATION_BUCKETS + 1]; /* the last: +Inf */
    double duration_sum;
    uint64_t creates;
    uint64_t updates;
    uint64_t deletes;
    uint64_t status_writes;
    uint64_t status_deferred; /* status writes deferred while other sandboxes waited */
    uint64_t refusals;        /* writes the API server refused */
    uint64_t events;
};

/* Records one reconcile that took seconds and failed (retry) or not. */
void metrics_observe(struct metrics *m, double seconds, bool failed);

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
