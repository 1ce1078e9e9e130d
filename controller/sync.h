/* sync.h - internal: one reconcile of one Sandbox, shared by sync.c (the
 * chain of writes), sync_prepare.c (validation, class, lifetime, rendering)
 * and sync_status.c (status and Events). */
#ifndef KAGE_SYNC_H
#define KAGE_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ctl.h"
#include "reconcile/validate.h"

enum step {
    STEP_BASELINE,
    STEP_POLICY,
    STEP_POD,
    STEP_STATUS,
    STEP_DONE,
};

struct run {
    struct ctl *c;
    uint64_t started; /* uv_hrtime() when the reconcile began */
    char key[QUEUE_KEY_MAX + 1];
    char ns[256];
    char name[256];
    char uid[128];
    int64_t generation;
    json_t *sbx;      /* the Sandbox as cached */
    json_t *baseline; /* rendered children */
    json_t *policy;
    json_t *pod;
    char baseline_hash[SPEC_HASH_LEN + 1];
    char policy_hash[SPEC_HASH_LEN + 1];
    enum step step;
    int result; /* for queue_done: 0, < 0 retry with backoff, > 0 requeue after ms */
    bool deleting;
    bool baseline_ok;
    bool policy_ok;
    bool pod_replacing;
    bool owner_confirmed; /* a live read showed the Sandbox still there */
    bool ns_terminating;  /* the namespace is being deleted */
    struct validation_error verr;
    bool invalid;
    char block_reason[64];
    char block_message[1200];
    bool block_is_policy;
    bool paused;          /* spec.paused */
    bool expired;         /* the lifetime is over */
    bool delete_sandbox;  /* expired with shutdownPolicy Delete */
    bool pod_unwanted;    /* paused, expired or against the class: remove the pod */
    char expires_at[32];  /* RFC 3339, "" without a lifetime */
    int kept_rules;       /* egress rules of the policy kept while blocked */
    uint64_t deadline_ms; /* the lifetime ends this far ahead; 0: no lifetime */
};

/* Records why progress stopped; the first blocker wins. */
void sync__block(struct run *r, const char *reason, bool is_policy, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An Event about the run's Sandbox (see ctl_event). */
void sync__event(struct run *r, bool warning, const char *reason, const char *action,
                 const char *note);

/* Sends a request about the run's namespace; fieldManager=kage on writes.
 * Returns 0 or a negative errno (cb then never runs). */
int sync__send(struct run *r, enum kube_verb verb, const struct kube_resource *res,
               const char *name, const char *sub, json_t *body, kube_response_cb cb);

/* Fills the run from the cached Sandbox s: validation, class, lifetime and
 * the rendered children. Returns 0 or -ENOMEM. */
int sync__prepare(struct run *r, const struct sandbox_obj *s);

/* The status step: returns true when done (nothing written), false when a
 * write is in flight (its callback moves the run on to STEP_DONE). */
bool sync__status(struct run *r);

/* Moves the run on after an asynchronous step. */
void sync__next(struct run *r);

#endif
