// SPDX-License-Identifier: Apache-2.0
/* reconcile.h - what one Sandbox needs next, decided without I/O. Given the
 * cached Sandbox, its class, the cached children, kage's own pending writes
 * and the last API answer, reconcile_next names the next request to send
 * (which object, which verb, which precondition) or ends the reconcile with
 * an outcome; Events and counters go through the environment. Pure: the
 * caller carries each request out and feeds the answer back. */
#ifndef KAGE_RECONCILE_H
#define KAGE_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "reconcile/class.h"
#include "reconcile/gate.h"
#include "reconcile/memory.h"
#include "reconcile/observed.h"
#include "reconcile/outcome.h"
#include "reconcile/podrecord.h"
#include "reconcile/validate.h"

#define RECONCILE_KEY_MAX 512 /* "namespace/name", as the work queue's keys */

/* How long a write of ours stands in for the cache that has not seen it. */
#define RECONCILE_EXPECT_MS 30000

/* Counters a reconcile moves (see metrics.h for their meaning). */
enum reconcile_counter {
    COUNT_CREATE,
    COUNT_UPDATE,
    COUNT_DELETE,
    COUNT_STATUS_WRITE,
    COUNT_STATUS_DEFERRED,
    COUNT_REFUSAL,
};

/*
 * What a reconcile may read and record: the caches, kage's memory of its
 * namespace-wide writes, the clocks, Events and counters. Every function is
 * called from the reconcile and must not call back into it. Objects
 * returned are borrowed until the reconcile's next call returns.
 */
struct reconcile_env {
    void *arg;
    const struct pod_obj *(*pod)(void *arg, const char *key);
    const struct policy_obj *(*policy)(void *arg, const char *key);
    const struct class_obj *(*class_named)(void *arg, const char *name);
    /* Up to max classes marked default into out; returns how many there are. */
    size_t (*class_defaults)(void *arg, const struct class_obj **out, size_t max);
    /* Whether kage wrote the baseline of ns in the last RECONCILE_EXPECT_MS. */
    bool (*baseline_recent)(void *arg, const char *ns);
    void (*baseline_written)(void *arg, const char *ns);
    /* A sandbox of ns waits for quota: a pod going there should wake it. */
    void (*quota_waiting)(void *arg, const char *ns);
    /* Calls cb(cbarg, name, p) for every NetworkPolicy of namespace ns that is
     * not kage's own (managed by kage and owned by a Sandbox, or the
     * baseline), until cb returns false. */
    void (*foreign_policies)(void *arg, const char *ns,
                             bool (*cb)(void *cbarg, const char *name, const struct policy_obj *p),
                             void *cbarg);
    /* The labels of namespace ns as canonical JSON, NULL when not cached. */
    const char *(*namespace_labels)(void *arg, const char *ns);
    uint64_t (*now_ms)(void *arg); /* monotonic, milliseconds */
    time_t (*wall)(void *arg);     /* seconds since the epoch */
    size_t (*queued)(void *arg);   /* sandboxes waiting to start (no pod yet) */
    void (*event)(void *arg, struct sbx_memory *mem, const char *ns, const char *name,
                  const char *uid, bool warning, const char *reason, const char *action,
                  const char *note);
    void (*count)(void *arg, enum reconcile_counter what);
    /* A sandbox became Ready for the first time, seconds after this
     * controller first saw it (its create-to-Ready time). */
    void (*ready)(void *arg, double seconds);
    const char *runtime_class;      /* the default runtimeClassName */
    bool require_class;             /* no class applies: no pod (fail closed) */
    const struct gate_config *gate; /* the policy gate; NULL: none */
};

enum reconcile_verb {
    VERB_GET,
    VERB_CREATE,  /* POST */
    VERB_REPLACE, /* PUT */
    VERB_PATCH,   /* merge patch */
    VERB_DELETE,  /* body: DeleteOptions */
};

enum reconcile_resource {
    RES_POLICY,
    RES_POD,
    RES_SANDBOX,
};

/* One request to send, in the reconcile's namespace. Strings and body are
 * borrowed from the reconcile until the answer is fed back. */
struct reconcile_request {
    enum reconcile_verb verb;
    enum reconcile_resource res;
    const char *ns;
    const char *name; /* NULL for a create */
    const char *sub;  /* "status" or NULL */
    json_t *body;     /* NULL for a GET */
};

/* The API's answer to the last request. */
struct reconcile_answer {
    long code;           /* HTTP status; 0 for a transport failure; -1 when it was never sent */
    const char *reason;  /* Status.reason of a failure, else "" */
    const char *message; /* Status.message of a failure, else "" */
    json_t *json;        /* the object a successful GET returned, else NULL */
};

enum reconcile_step {
    STEP_BASELINE,
    STEP_POLICY,
    STEP_POD,
    STEP_STATUS,
    STEP_DONE,
};

/* The request in flight, whose answer the next call takes. */
enum reconcile_wait {
    WAIT_NONE,
    WAIT_POLICY_WRITE,
    WAIT_POLICY_READ,
    WAIT_POLICY_FOLLOW,
    WAIT_POD_CREATE,
    WAIT_POD_READ,
    WAIT_POD_DELETE,
    WAIT_OWNER_READ,
    WAIT_SANDBOX_DELETE,
    WAIT_STATUS,
};

/* One reconcile of one Sandbox. Fields are the module's; read them in
 * tests, not elsewhere. */
struct reconcile {
    const struct reconcile_env *env;
    struct sbx_memory *mem; /* kage's memory of this Sandbox (may be NULL): the caller sets
                               it before each reconcile_next, as it may go between calls */
    char key[RECONCILE_KEY_MAX + 1];
    char ns[256];
    char name[256];
    char uid[128];
    int64_t generation;
    json_t *sbx;      /* the Sandbox as cached */
    json_t *baseline; /* rendered children */
    json_t *policy;
    json_t *pod;
    json_t *body; /* the body of the request in flight, when built for it */
    char baseline_hash[SPEC_HASH_LEN + 1];
    char policy_hash[SPEC_HASH_LEN + 1];
    char policy_pod_uid[128];  /* the pod the rendered policy names as an owner, "" none */
    char made_policy_uid[128]; /* the policy this reconcile created, as the server answered */
    char made_pod_uid[128];    /* the pod this reconcile created, as the server answered */
    char inputs_hash[SPEC_HASH_LEN + 1]; /* podrecord_inputs of the Sandbox; "" unrendered */
    struct podrecord record;             /* the pod's new record, when record_new */
    bool record_new;                     /* the status takes record in place of its own */
    enum reconcile_step step;
    enum reconcile_wait wait;
    struct outcome outcome;
    bool deleting;
    bool baseline_ok;
    bool policy_ok;
    bool late_checked; /* follow_late_pod ran */
    bool pod_replacing;
    bool owner_confirmed; /* a live read showed the Sandbox still there */
    bool ns_terminating;  /* the namespace is being deleted */
    bool invalid;
    struct validation_error verr;
    char block_reason[64];
    char block_message[1200];
    bool block_is_policy;
    bool paused;           /* spec.paused */
    bool expired;          /* the lifetime is over */
    bool delete_sandbox;   /* expired with shutdownPolicy Delete */
    bool pod_unwanted;     /* paused, expired or blocked: remove the pod */
    bool fail_closed;      /* blocked: no pod, the own policy narrowed to nothing */
    bool foreign_report;   /* the class says: a foreign policy is reported, the pod stays */
    char foreign[254];     /* a NetworkPolicy not kage's that selects the pod, or "" */
    char expires_at[32];   /* RFC 3339, "" without a lifetime */
    int kept_rules;        /* egress rules of the policy kept while blocked */
    enum gate_choice gate; /* whether the rendered pod has the policy gate */
    uint64_t deadline_ms;  /* the lifetime ends this far ahead; 0: no lifetime */
};

/* What to do next: send req (then feed its answer to reconcile_next), or
 * stop with outcome (and look again deadline_ms ahead when not 0: the end
 * of the lifetime, which no backoff may push back). */
struct reconcile_action {
    enum {
        ACTION_SEND,
        ACTION_FINISH
    } kind;
    struct reconcile_request req;
    struct outcome outcome;
    uint64_t deadline_ms;
};

/*
 * Notes in m (may be NULL) when this controller first saw a Sandbox (now_ms,
 * loop time) and whether it was made a moment before (created, its
 * creationTimestamp, within READY_TIMED_WITHIN_S of now, wall seconds): its
 * create-to-Ready time is then observed at its first Ready. Later calls do
 * nothing. The controller calls it at the Sandbox's add event; a reconcile
 * calls it too, for a Sandbox it meets first.
 */
void reconcile_note_sight(struct sbx_memory *m, uint64_t now_ms, time_t now, const char *created);

/*
 * Starts the reconcile r of the cached Sandbox s: validation, class,
 * lifetime and the rendered children. env must outlive r; mem (may be
 * NULL) is r->mem until the caller changes it.
 * Returns 0 or -ENOMEM (free r with reconcile_free either way).
 */
int reconcile_init(struct reconcile *r, const struct reconcile_env *env, struct sbx_memory *mem,
                   const struct sandbox_obj *s);

/*
 * The next action of r. ans is the answer to the request of the previous
 * ACTION_SEND (NULL on the first call). After ACTION_FINISH, r is done.
 */
void reconcile_next(struct reconcile *r, const struct reconcile_answer *ans,
                    struct reconcile_action *act);

/* Frees what r holds (not r). */
void reconcile_free(struct reconcile *r);

/* Records why progress stopped; the first blocker wins. */
void reconcile__block(struct reconcile *r, const char *reason, bool is_policy, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Moves r to its next step, and logs the move. */
void reconcile__go(struct reconcile *r, enum reconcile_step next, const char *why);

/* An Event about r's Sandbox (see reconcile_env.event). */
void reconcile__event(struct reconcile *r, bool warning, const char *reason, const char *action,
                      const char *note);

/* Internal, shared by the module's files (reconcile.c the chain and the
 * policies, pod.c the pod, report.c the status, prepare.c the start). */

/* The pod step: true with act set to a request, false when it moved on. */
bool reconcile__step_pod(struct reconcile *r, struct reconcile_action *act);

/* Takes the answer to a pod request (or the owner read); true when it leads
 * straight to another request. */
bool reconcile__take_pod(struct reconcile *r, enum reconcile_wait w,
                         const struct reconcile_answer *a, struct reconcile_action *act);

/* Shared verbs (act.c): answers, requests, objects. */
bool reconcile__failed(const struct reconcile_answer *a);
bool reconcile__not_found(const struct reconcile_answer *a);
bool reconcile__already_exists(const struct reconcile_answer *a);
const char *reconcile__uid_of(json_t *obj);
bool reconcile__label_is(json_t *obj, const char *name, const char *value);
void reconcile__pin_uid(json_t *body, const char *uid);
bool reconcile__as_rendered_spec(json_t *obj, const char *want_hash);
void reconcile__refused(struct reconcile *r, const char *what, const struct reconcile_answer *a,
                        bool is_policy);
bool reconcile__send(struct reconcile *r, struct reconcile_action *act, enum reconcile_wait w,
                     enum reconcile_verb verb, enum reconcile_resource res, const char *name,
                     json_t *body);
bool reconcile__delete_exactly(struct reconcile *r, struct reconcile_action *act,
                               enum reconcile_wait w, enum reconcile_resource res, const char *name,
                               const char *uid);
bool reconcile__owned_by(json_t *obj, const char *uid);
void reconcile__count(struct reconcile *r, enum reconcile_counter what);

/* reconcile_note_sight for r's Sandbox, at its first reconcile step. */
void reconcile__note_sight(struct reconcile *r);
uint64_t reconcile__now_ms(struct reconcile *r);

/* The status step: true when done (nothing to write), false with act set
 * to the status write. */
bool reconcile__status(struct reconcile *r, struct reconcile_action *act);

/* Takes the answer to the status write. */
void reconcile__status_answer(struct reconcile *r, const struct reconcile_answer *ans);

#endif
