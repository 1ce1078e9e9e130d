/* ctl.h - internal: the controller's shared state, between controller.c
 * (informers, queue, lifecycle) and sync.c (one reconcile of one Sandbox). */
#ifndef KAGE_CTL_H
#define KAGE_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "controller.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "queue.h"
#include "reconcile/observed.h"

/* How long a write of ours stands in for the cache that has not seen it. */
#define CTL_EXPECT_MS 30000

extern const struct kube_resource KAGE_SANDBOXES;
extern const struct kube_resource KAGE_SANDBOXCLASSES;

/* Upper bounds (seconds) of the reconcile duration histogram's buckets. */
#define CTL_DURATION_BUCKETS 10
extern const double ctl_duration_bounds[CTL_DURATION_BUCKETS];

struct ctl_stats {
    uint64_t reconciles;
    uint64_t reconcile_errors;                           /* ended asking for a retry with backoff */
    uint64_t duration_buckets[CTL_DURATION_BUCKETS + 1]; /* the last: +Inf */
    double duration_sum;
    uint64_t creates;
    uint64_t updates;
    uint64_t deletes;
    uint64_t status_writes;
    uint64_t status_held; /* status writes held back under load (see sync_status.c) */
    uint64_t failures;
    uint64_t events;
};

/* What kage wrote for one Sandbox, until its own watch shows it. */
struct sbx_state {
    const char *key; /* first: the search tree compares *(const char **) */
    char policy_hash[SPEC_HASH_LEN + 1];
    uint64_t policy_at; /* loop time of the write, 0 if none */
    char pod_hash[SPEC_HASH_LEN + 1];
    uint64_t pod_at;
    uint64_t pod_made_at; /* loop time kage last created its pod; kept once seen */
    char *last_status;    /* canonical JSON of the last status written */
    uint64_t event_hash;  /* digest of the last Event emitted (reason + note) */
    uint64_t event_at;    /* loop time it was emitted */
    char held[16];        /* phase (Pending, Failed) it was last held up in, or "" */
    unsigned holds;       /* consecutive reconciles held up by quota or the like */
    char data[];
};

struct ctl {
    uv_loop_t *loop;
    struct kube_client *client;
    struct informer *sandboxes;
    struct informer *pods;
    struct informer *policies;
    struct informer *classes;
    struct queue *queue; /* created once every cache has synced (and we lead) */
    struct httpd *http;
    struct leader *leader;
    bool leading;
    int exit_code;
    struct controller_opts opts;
    char identity[160]; /* this replica: reportingInstance, holderIdentity */
    void *states;       /* search tree of struct sbx_state */
    void *baselines;    /* search tree of namespaces whose baseline kage wrote */
    void *quota_ns;     /* search tree of namespaces with a sandbox waiting for quota */
    unsigned synced;
    bool stopping;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    struct ctl_stats stats;
};

/*
 * Records a Kubernetes Event about the Sandbox key (ns, name, uid), of
 * type Warning when warning, else Normal. The same reason and note for the
 * same Sandbox is emitted at most once per 10 minutes. Fire and forget: a
 * refused Event is logged, nothing else.
 */
void ctl_event(struct ctl *c, const char *key, const char *ns, const char *name, const char *uid,
               bool warning, const char *reason, const char *action, const char *note);

/* Records one reconcile's duration and outcome (result as for queue_done). */
void ctl_observe(struct ctl *c, uint64_t started_ns, int result);

/* Reconciles the Sandbox key ("namespace/name"); ends with queue_done. */
void sync_sandbox(struct ctl *c, const char *key);

/* The state of key, created when create is set; NULL when absent or on
 * ENOMEM. */
struct sbx_state *ctl_state(struct ctl *c, const char *key, bool create);

/* Forgets the state of key. */
void ctl_state_drop(struct ctl *c, const char *key);

/* Whether kage wrote the baseline of namespace ns in the last
 * CTL_EXPECT_MS; ctl_baseline_written records such a write. */
bool ctl_baseline_recent(struct ctl *c, const char *ns);
void ctl_baseline_written(struct ctl *c, const char *ns);

/* Records that a sandbox of namespace ns waits for quota: a pod going
 * there then wakes the namespace's podless sandboxes. */
void ctl_quota_held(struct ctl *c, const char *ns);

#endif
