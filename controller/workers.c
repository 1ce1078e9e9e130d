// SPDX-License-Identifier: Apache-2.0
/*
 * workers.c - the reconciling side of the controller: the work queue, the
 * ledger of kage's own writes, and the sync_env through which a reconcile
 * reads the caches, sends requests, records Events and counts.
 */
#include "workers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "events.h"
#include "kube/path.h"
#include "ledger.h"
#include "reconcile/selector.h"
#include "sync.h"

const struct kube_resource KAGE_SANDBOXES = {"kage.dev", "v1alpha1", "sandboxes", "Sandbox", true};
const struct kube_resource KAGE_SANDBOXCLASSES = {"kage.dev", "v1alpha1", "sandboxclasses",
                                                  "SandboxClass", false};

/* The bytes of Sandboxes read whole (their spec and status texts) that may
 * be reconciled at once. Such a reconcile holds a few times its texts (the
 * parsed Sandbox, the rendered pod, its JSON, the client's copy), so this
 * keeps them to a small part of the Deployment's 128 MiB; one Sandbox
 * larger than the whole budget still goes, alone. */
#define WORKERS_BUDGET_BYTES (4u << 20)

struct workers {
    struct workers_opts o;
    struct budget budget; /* of Sandboxes read whole */
    struct queue *queue;  /* NULL until started */
    struct ledger *ledger;
    struct sync_env env;
    struct events_source events;
    struct metrics metrics;
    bool closing;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

/* ---- what a reconcile may do (its sync_env) -------------------------- */

static const struct pod_obj *env_pod(void *arg, const char *key)
{
    return informer_get(((struct workers *)arg)->o.pods, key);
}

static const struct policy_obj *env_policy(void *arg, const char *key)
{
    return informer_get(((struct workers *)arg)->o.policies, key);
}

static const struct class_obj *env_class_named(void *arg, const char *name)
{
    return informer_get(((struct workers *)arg)->o.classes, name);
}

struct defaults {
    const struct class_obj **out;
    size_t max;
    size_t n;
};

static void find_default(void *arg, const char *key, const void *obj)
{
    (void)key;
    struct defaults *d = arg;
    const struct class_obj *c = obj;
    if (c->is_default) {
        if (d->n < d->max)
            d->out[d->n] = c;
        d->n++;
    }
}

static size_t env_class_defaults(void *arg, const struct class_obj **out, size_t max)
{
    struct defaults d = {out, max, 0};
    informer_foreach(((struct workers *)arg)->o.classes, find_default, &d);
    return d.n;
}

static bool env_baseline_recent(void *arg, const char *ns)
{
    struct workers *c = arg;
    return ledger_baseline_recent(c->ledger, ns, uv_now(c->o.loop), RECONCILE_EXPECT_MS);
}

static void env_baseline_written(void *arg, const char *ns)
{
    struct workers *c = arg;
    ledger_baseline_written(c->ledger, ns, uv_now(c->o.loop));
}

static void env_quota_waiting(void *arg, const char *ns)
{
    ledger_quota_waiting(((struct workers *)arg)->ledger, ns);
}

struct foreign_walk {
    const char *ns;
    size_t len;
    bool (*cb)(void *cbarg, const char *name, const struct policy_obj *p);
    void *cbarg;
    bool stopped;
};

static void foreign_one(void *arg, const char *key, const void *obj)
{
    struct foreign_walk *w = arg;
    const struct policy_obj *p = obj;
    if (w->stopped || strncmp(key, w->ns, w->len) != 0 || key[w->len] != '/')
        return;
    const char *name = key + w->len + 1;
    if (p->managed && (p->owned || strcmp(name, BASELINE_POLICY) == 0))
        return; /* kage's own */
    w->stopped = !w->cb(w->cbarg, name, p);
}

static void env_foreign_policies(void *arg, const char *ns,
                                 bool (*cb)(void *cbarg, const char *name,
                                            const struct policy_obj *p),
                                 void *cbarg)
{
    struct workers *c = arg;
    /* Most namespaces hold none: walk only where the ledger counts one. */
    if (!ledger_foreign_policies(c->ledger, ns))
        return;
    struct foreign_walk w = {ns, strlen(ns), cb, cbarg, false};
    informer_foreach(c->o.all_policies, foreign_one, &w);
}

static const char *env_namespace_labels(void *arg, const char *ns)
{
    const struct namespace_obj *n = informer_get(((struct workers *)arg)->o.namespaces, ns);
    return n ? n->labels : NULL;
}

static uint64_t env_now_ms(void *arg)
{
    return uv_now(((struct workers *)arg)->o.loop);
}

static time_t env_wall(void *arg)
{
    (void)arg;
    return time(NULL);
}

static void env_event(void *arg, struct sbx_memory *mem, const char *ns, const char *name,
                      const char *uid, bool warning, const char *reason, const char *action,
                      const char *note)
{
    struct workers *c = arg;
    if (events_record(&c->events, mem, uv_now(c->o.loop), ns, name, uid, warning, reason, action,
                      note))
        c->metrics.events++;
}

static void env_count(void *arg, enum reconcile_counter what)
{
    struct metrics *m = &((struct workers *)arg)->metrics;
    switch (what) {
    case COUNT_CREATE:
        m->creates++;
        break;
    case COUNT_UPDATE:
        m->updates++;
        break;
    case COUNT_DELETE:
        m->deletes++;
        break;
    case COUNT_STATUS_WRITE:
        m->status_writes++;
        break;
    case COUNT_STATUS_DEFERRED:
        m->status_deferred++;
        break;
    case COUNT_REFUSAL:
        m->refusals++;
        break;
    }
}

/* Sandboxes waiting to start: those a deferred status leaves the API
 * server's time to. */
static size_t env_queued(void *arg)
{
    struct workers *c = arg;
    struct queue_stats st = {0};
    if (c->queue)
        queue_get_stats(c->queue, &st);
    return st.depth_lane[QUEUE_LANE_START];
}

static const struct sandbox_obj *env_sandbox(void *arg, const char *key)
{
    return informer_get(((struct workers *)arg)->o.sandboxes, key);
}

static struct sbx_memory *env_memory(void *arg, const char *key, bool create)
{
    return ledger_sandbox(((struct workers *)arg)->ledger, key, create);
}

static void env_forget(void *arg, const char *key)
{
    ledger_forget(((struct workers *)arg)->ledger, key);
}

static int env_budget_take(void *arg, size_t bytes, void (*granted)(void *cb_arg), void *cb_arg)
{
    return budget_take(&((struct workers *)arg)->budget, bytes, granted, cb_arg);
}

static void env_budget_give(void *arg, size_t bytes)
{
    budget_give(&((struct workers *)arg)->budget, bytes);
}

/* A request in flight for a reconcile: whom to answer. */
struct sent {
    sync_answer_cb cb;
    void *arg;
};

static void on_sent(void *arg, const struct kube_response *resp)
{
    struct sent s = *(struct sent *)arg;
    free(arg);
    struct reconcile_answer a = {resp->code, "", "", resp->json};
    if (resp->err) {
        a.code = resp->err->code;
        a.reason = resp->err->reason;
        a.message = resp->err->message;
        a.json = NULL;
    }
    s.cb(s.arg, &a);
}

static int env_send(void *arg, const struct reconcile_request *req, sync_answer_cb cb, void *cb_arg)
{
    static const enum kube_verb verbs[] = {[VERB_GET] = KUBE_GET,
                                           [VERB_CREATE] = KUBE_POST,
                                           [VERB_REPLACE] = KUBE_PUT,
                                           [VERB_PATCH] = KUBE_PATCH_MERGE,
                                           [VERB_DELETE] = KUBE_DELETE};
    struct workers *c = arg;
    const struct kube_resource *res = req->res == RES_POLICY ? &KUBE_NETWORK_POLICIES
                                      : req->res == RES_POD  ? &KUBE_PODS
                                                             : &KAGE_SANDBOXES;
    struct sent *s = malloc(sizeof(*s));
    struct buf path;
    char *text = NULL;
    if (!s)
        return -ENOMEM;
    s->cb = cb;
    s->arg = cb_arg;
    buf_init(&path, 4096);
    int rc = kube_path(&path, res, req->ns, req->name, req->sub);
    if (!rc && req->verb != VERB_DELETE)
        rc = kube_query(&path, "fieldManager", "kage");
    if (!rc && req->body) {
        text = json_dumps(req->body, JSON_COMPACT);
        if (!text)
            rc = -ENOMEM;
    }
    /* A child's create is answered with the object made: its uid lets the
     * same reconcile make the policy name the pod it has just made. */
    bool echo = req->verb == VERB_CREATE && req->res != RES_SANDBOX;
    if (!rc)
        rc = (echo ? kube_request_echo : kube_request)(c->o.client, verbs[req->verb], path.data,
                                                       text, text ? strlen(text) : 0, on_sent, s,
                                                       NULL);
    free(text);
    buf_free(&path);
    if (rc)
        free(s);
    return rc;
}

static void env_done(void *arg, const char *key, struct outcome o, uint64_t deadline,
                     uint64_t started_ns)
{
    struct workers *c = arg;
    char copy[RECONCILE_KEY_MAX + 1];
    snprintf(copy, sizeof(copy), "%s", key); /* key may be the queue's, freed by queue_done */
    metrics_observe(&c->metrics, (double)(uv_hrtime() - started_ns) / 1e9, o.kind == OUTCOME_RETRY);
    struct queue *q = c->queue;
    /* After a stop, queue_done may be the one that frees q. */
    bool stopping = c->closing;
    queue_done(q, copy, o);
    /* The end of the lifetime is a deadline of its own: a retry's backoff
     * (up to minutes) must not push it back. */
    if (deadline && !stopping && (o.kind != OUTCOME_AFTER || o.after_ms > deadline))
        queue_add_after(q, copy, deadline);
}

static void env_ready(void *arg, double seconds)
{
    metrics_observe_ready(&((struct workers *)arg)->metrics, seconds);
}

static void on_wait(void *arg, uint64_t waited_ms)
{
    metrics_histogram_observe(&((struct workers *)arg)->metrics.queue_wait,
                              (double)waited_ms / 1000.0);
}

/* A Sandbox whose pod exists (or was just created by kage and is not in
 * the cache yet) is finished before a new one is started: users wait for
 * their sandbox to be Ready, and a pod's start is what most of that is. */
static enum queue_lane lane(void *arg, const char *key)
{
    struct workers *c = arg;
    if (informer_get(c->o.pods, key))
        return QUEUE_LANE_FINISH;
    const struct sbx_memory *st = ledger_sandbox(c->ledger, key, false);
    return st && st->pod_at ? QUEUE_LANE_FINISH : QUEUE_LANE_START;
}

static void work(struct queue *q, const char *key, void *arg)
{
    (void)q;
    struct workers *c = arg;
    c->metrics.reconciles++;
    sync_sandbox(&c->env, key);
}

struct workers *workers_new(const struct workers_opts *o)
{
    struct workers *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->o = *o;
    metrics_init(&c->metrics);
    budget_init(&c->budget, WORKERS_BUDGET_BYTES);
    c->ledger = ledger_new();
    if (!c->ledger) {
        free(c);
        return NULL;
    }
    c->events = (struct events_source){o->client, o->identity};
    c->env = (struct sync_env){
        .rc = {.arg = c,
               .pod = env_pod,
               .policy = env_policy,
               .class_named = env_class_named,
               .class_defaults = env_class_defaults,
               .baseline_recent = env_baseline_recent,
               .baseline_written = env_baseline_written,
               .quota_waiting = env_quota_waiting,
               .foreign_policies = env_foreign_policies,
               .namespace_labels = env_namespace_labels,
               .now_ms = env_now_ms,
               .wall = env_wall,
               .event = env_event,
               .queued = env_queued,
               .count = env_count,
               .ready = env_ready,
               .runtime_class = o->runtime_class,
               .require_class = o->require_class,
               .gate = o->gate},
        .sandbox = env_sandbox,
        .memory = env_memory,
        .forget = env_forget,
        .send = env_send,
        .done = env_done,
        .budget_take = env_budget_take,
        .budget_give = env_budget_give,
    };
    return c;
}

int workers_start(struct workers *c)
{
    if (c->queue || c->closing)
        return 0;
    c->queue = queue_new(c->o.loop, c->o.workers, work, c);
    if (!c->queue)
        return -ENOMEM;
    queue_on_wait(c->queue, on_wait, c);
    queue_on_lane(c->queue, lane, c);
    return 0;
}

bool workers_started(const struct workers *c)
{
    return c->queue != NULL;
}

void workers_sandbox_added(struct workers *c, const char *key, const struct sandbox_obj *s)
{
    /* Its wait for Ready is timed from this event, whichever replica
     * leads then. */
    reconcile_note_sight(ledger_sandbox(c->ledger, key, true), uv_now(c->o.loop), time(NULL),
                         s->created);
}

void workers_add(struct workers *c, const char *key)
{
    if (c->queue && !c->closing)
        queue_add(c->queue, key);
}

struct ledger *workers_ledger(struct workers *c)
{
    return c->ledger;
}

const struct metrics *workers_metrics(const struct workers *c)
{
    return &c->metrics;
}

const struct queue *workers_queue(const struct workers *c)
{
    return c->queue;
}

static void queue_closed(struct queue *q, void *arg)
{
    (void)q;
    struct workers *c = arg;
    c->queue = NULL;
    c->closed_cb(c->closed_arg);
}

void workers_close(struct workers *c, void (*cb)(void *arg), void *arg)
{
    c->closing = true;
    c->closed_cb = cb;
    c->closed_arg = arg;
    /* No new work; reconciles in flight finish (their requests are
     * answered or time out), then the queue closes. */
    if (c->queue)
        queue_close(c->queue, queue_closed);
    else
        cb(arg);
}

void workers_free(struct workers *c)
{
    if (!c)
        return;
    budget_free(&c->budget);
    ledger_free(c->ledger);
    free(c);
}
