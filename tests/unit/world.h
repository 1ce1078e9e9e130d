// SPDX-License-Identifier: Apache-2.0
/* world.h - for the reconcile unit tests: a fake cluster a whole reconcile
 * runs against, with no API server. It keeps the objects a watch would
 * show (decoded by the real decoders), a script of API answers, and
 * records every request in order, every Event, counter and outcome.
 * Include after cmocka.h and json_expect.h. */
#ifndef KAGE_TEST_WORLD_H
#define KAGE_TEST_WORLD_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledger.h"
#include "reconcile/class.h"
#include "reconcile/observed.h"
#include "sync.h"

/* Several test programs include this; each uses some of it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

#define WORLD_MAX     16 /* objects per kind, requests per reconcile, ... */
#define WORLD_NS      "team-a"
#define WORLD_NAME    "agent"
#define WORLD_KEY     WORLD_NS "/" WORLD_NAME
#define WORLD_UID     "0f6c1b1e-1111-4e2a-9d3c-7a5b9c8d7e6f"
#define WORLD_NOW     1790000000             /* wall clock seconds, fixed */
#define WORLD_CREATED "2026-09-21T14:13:20Z" /* WORLD_NOW - 0 */
#define WORLD_LOOP_MS 1000000                /* loop time at the start */

struct stored {
    char name[64];
    json_t *obj;   /* as the API server has it */
    void *decoded; /* as the cache keeps it */
};

struct world {
    struct sync_env env;
    struct ledger *ledger;
    /* the cache */
    json_t *sandbox_json;
    struct sandbox_obj *sandbox;
    struct stored pods[WORLD_MAX];
    struct stored policies[WORLD_MAX];
    struct class_obj *classes[WORLD_MAX];
    unsigned npods, npolicies, nclasses;
    bool watch_follows;    /* successful writes show in the cache at once */
    const char *ns_labels; /* the namespace's labels (JSON), NULL: not cached */
    /* the clocks and the queue */
    uint64_t now_ms;
    time_t wall;
    size_t queued;
    /* the script: answers given in order; past its end, writes succeed */
    struct reconcile_answer script[WORLD_MAX];
    json_t *script_json[WORLD_MAX];
    const char *script_obj[WORLD_MAX]; /* "@last...": made from the last write's body */
    unsigned nscript, next_answer;
    int send_error; /* send returns this (0: sends) */
    /* the request in flight */
    sync_answer_cb cb;
    void *cb_arg;
    struct reconcile_request last;
    /* what happened */
    char requests[WORLD_MAX][160];
    json_t *bodies[WORLD_MAX];
    unsigned nrequests;
    char events[WORLD_MAX][200];
    unsigned nevents;
    unsigned counts[COUNT_REFUSAL + 1];
    double ready_s[WORLD_MAX]; /* create-to-Ready times observed */
    unsigned nready;
    bool finished;
    struct outcome outcome;
    uint64_t deadline_ms;
    bool baseline_marked;
    bool quota_marked;
    unsigned uids; /* uids handed out */
    unsigned made; /* uids handed out in answers the watch does not follow */
    json_t *echo;  /* the object a successful create is answered with */
};

/* ---- the cache ------------------------------------------------------- */

static struct stored *world_find(struct stored *set, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(set[i].name, name) == 0)
            return &set[i];
    return NULL;
}

static void stored_clear(struct stored *s)
{
    json_decref(s->obj);
    free(s->decoded);
    s->obj = NULL;
    s->decoded = NULL;
}

/* Puts obj (taken) in the cache as a pod (is_pod) or a policy, replacing
 * one of the same name. */
static void world_put(struct world *w, bool is_pod, json_t *obj)
{
    struct stored *set = is_pod ? w->pods : w->policies;
    unsigned *n = is_pod ? &w->npods : &w->npolicies;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    assert_non_null(name);
    struct stored *s = world_find(set, *n, name);
    if (!s) {
        assert_true(*n < WORLD_MAX);
        s = &set[(*n)++];
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    stored_clear(s);
    s->obj = obj;
    char err[200];
    s->decoded = is_pod ? observed_decode_pod(obj, err, sizeof(err))
                        : observed_decode_policy(obj, err, sizeof(err));
    if (!s->decoded)
        fail_msg("test object does not decode: %s", err);
}

/* Takes name out of the cache. */
static void world_remove(struct world *w, bool is_pod, const char *name)
{
    struct stored *set = is_pod ? w->pods : w->policies;
    unsigned *n = is_pod ? &w->npods : &w->npolicies;
    struct stored *s = world_find(set, *n, name);
    assert_non_null(s);
    stored_clear(s);
    *s = set[--(*n)];
    memset(&set[*n], 0, sizeof(set[*n]));
}

/* The stored object name (borrowed). */
static json_t *world_obj(struct world *w, bool is_pod, const char *name)
{
    struct stored *s =
        is_pod ? world_find(w->pods, w->npods, name) : world_find(w->policies, w->npolicies, name);
    assert_non_null(s);
    return s->obj;
}

/* Changes the stored object name by fn, then lets the cache see it. */
static void world_edit(struct world *w, bool is_pod, const char *name, void (*fn)(json_t *obj))
{
    json_t *obj = json_deep_copy(world_obj(w, is_pod, name));
    assert_non_null(obj);
    fn(obj);
    world_put(w, is_pod, obj);
}

/* Sets the Sandbox from its spec (JSON text with single quotes) and
 * status ("{}" for none). */
static void world_sandbox(struct world *w, const char *spec, const char *status)
{
    json_decref(w->sandbox_json);
    w->sandbox_json =
        json_pack("{s:{s:s, s:s, s:s, s:i, s:s}, s:o, s:o}", "metadata", "name", WORLD_NAME,
                  "namespace", WORLD_NS, "uid", WORLD_UID, "generation", 1, "creationTimestamp",
                  WORLD_CREATED, "spec", parse(spec), "status", parse(status));
    assert_non_null(w->sandbox_json);
    free(w->sandbox);
    char err[200];
    w->sandbox = observed_decode_sandbox(w->sandbox_json, err, sizeof(err));
    assert_non_null(w->sandbox);
}

/* Changes the Sandbox's spec, keeping its status. */
static void world_spec(struct world *w, const char *spec)
{
    char *status = json_dumps(json_object_get(w->sandbox_json, "status"), JSON_COMPACT);
    assert_non_null(status);
    for (char *p = status; *p; p++)
        if (*p == '"')
            *p = '\'';
    world_sandbox(w, spec, status);
    free(status);
}

static void world_sandbox_deleting(struct world *w)
{
    json_object_set_new(json_object_get(w->sandbox_json, "metadata"), "deletionTimestamp",
                        json_string(WORLD_CREATED));
    free(w->sandbox);
    char err[200];
    w->sandbox = observed_decode_sandbox(w->sandbox_json, err, sizeof(err));
    assert_non_null(w->sandbox);
}

/* A SandboxClass in the cache, from its JSON text, in place of one of
 * the same name. */
static void world_class(struct world *w, const char *text)
{
    json_t *obj = parse(text);
    char err[200];
    struct class_obj *c = class_decode(obj, err, sizeof(err));
    json_decref(obj);
    assert_non_null(c);
    for (unsigned i = 0; i < w->nclasses; i++) {
        if (strcmp(w->classes[i]->name, c->name) == 0) { /* a class changed */
            free(w->classes[i]);
            w->classes[i] = c;
            return;
        }
    }
    assert_true(w->nclasses < WORLD_MAX);
    w->classes[w->nclasses++] = c;
}

/* ---- the environment ------------------------------------------------- */

static const char *key_name(const char *key)
{
    const char *slash = strchr(key, '/');
    return slash ? slash + 1 : key;
}

static const struct pod_obj *w_pod(void *arg, const char *key)
{
    struct world *w = arg;
    struct stored *s = world_find(w->pods, w->npods, key_name(key));
    return s ? s->decoded : NULL;
}

static const struct policy_obj *w_policy(void *arg, const char *key)
{
    struct world *w = arg;
    struct stored *s = world_find(w->policies, w->npolicies, key_name(key));
    return s ? s->decoded : NULL;
}

static const struct class_obj *w_class_named(void *arg, const char *name)
{
    struct world *w = arg;
    for (unsigned i = 0; i < w->nclasses; i++)
        if (strcmp(w->classes[i]->name, name) == 0)
            return w->classes[i];
    return NULL;
}

static size_t w_class_defaults(void *arg, const struct class_obj **out, size_t max)
{
    struct world *w = arg;
    size_t n = 0;
    for (unsigned i = 0; i < w->nclasses; i++) {
        if (!w->classes[i]->is_default)
            continue;
        if (n < max)
            out[n] = w->classes[i];
        n++;
    }
    return n;
}

static bool w_baseline_recent(void *arg, const char *ns)
{
    struct world *w = arg;
    return ledger_baseline_recent(w->ledger, ns, w->now_ms, RECONCILE_EXPECT_MS);
}

static void w_baseline_written(void *arg, const char *ns)
{
    struct world *w = arg;
    w->baseline_marked = true;
    ledger_baseline_written(w->ledger, ns, w->now_ms);
}

static void w_quota_waiting(void *arg, const char *ns)
{
    struct world *w = arg;
    w->quota_marked = true;
    ledger_quota_waiting(w->ledger, ns);
}

/* The cache's policies that are not kage's own, as the controller's
 * watch of every NetworkPolicy tells them. */
static void w_foreign_policies(void *arg, const char *ns,
                               bool (*cb)(void *cbarg, const char *name,
                                          const struct policy_obj *p),
                               void *cbarg)
{
    struct world *w = arg;
    assert_string_equal(ns, WORLD_NS);
    for (unsigned i = 0; i < w->npolicies; i++) {
        const struct policy_obj *p = w->policies[i].decoded;
        if (p->managed && (p->owned || strcmp(w->policies[i].name, BASELINE_POLICY) == 0))
            continue;
        if (!cb(cbarg, w->policies[i].name, p))
            return;
    }
}

static const char *w_namespace_labels(void *arg, const char *ns)
{
    struct world *w = arg;
    assert_string_equal(ns, WORLD_NS);
    return w->ns_labels;
}

static uint64_t w_now_ms(void *arg)
{
    return ((struct world *)arg)->now_ms;
}

static time_t w_wall(void *arg)
{
    return ((struct world *)arg)->wall;
}

static size_t w_queued(void *arg)
{
    return ((struct world *)arg)->queued;
}

static void w_event(void *arg, struct sbx_memory *mem, const char *ns, const char *name,
                    const char *uid, bool warning, const char *reason, const char *action,
                    const char *note)
{
    struct world *w = arg;
    (void)mem;
    (void)action;
    assert_string_equal(ns, WORLD_NS);
    assert_string_equal(name, WORLD_NAME);
    assert_string_equal(uid, WORLD_UID);
    assert_true(w->nevents < WORLD_MAX);
    snprintf(w->events[w->nevents++], sizeof(w->events[0]), "%s %s: %s",
             warning ? "Warning" : "Normal", reason, note);
}

static void w_count(void *arg, enum reconcile_counter what)
{
    ((struct world *)arg)->counts[what]++;
}

static void w_ready(void *arg, double seconds)
{
    struct world *w = arg;
    assert_true(w->nready < WORLD_MAX);
    w->ready_s[w->nready++] = seconds;
}

static const struct sandbox_obj *w_sandbox(void *arg, const char *key)
{
    struct world *w = arg;
    return w->sandbox && strcmp(key, WORLD_KEY) == 0 ? w->sandbox : NULL;
}

static struct sbx_memory *w_memory(void *arg, const char *key, bool create)
{
    return ledger_sandbox(((struct world *)arg)->ledger, key, create);
}

static void w_forget(void *arg, const char *key)
{
    ledger_forget(((struct world *)arg)->ledger, key);
}

static int w_send(void *arg, const struct reconcile_request *req, sync_answer_cb cb, void *cb_arg)
{
    static const char *const verbs[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    static const char *const kinds[] = {"networkpolicies", "pods", "sandboxes"};
    struct world *w = arg;
    assert_null(w->cb); /* one request at a time */
    assert_string_equal(req->ns, WORLD_NS);
    if (w->send_error)
        return w->send_error;
    assert_true(w->nrequests < WORLD_MAX);
    char *line = w->requests[w->nrequests];
    size_t n = sizeof(w->requests[0]);
    int len = snprintf(line, n, "%s %s", verbs[req->verb], kinds[req->res]);
    if (req->name)
        len += snprintf(line + len, n - (size_t)len, "/%s", req->name);
    if (req->verb == VERB_CREATE)
        len += snprintf(
            line + len, n - (size_t)len, " {%s}",
            json_string_value(json_object_get(json_object_get(req->body, "metadata"), "name")));
    if (req->sub)
        len += snprintf(line + len, n - (size_t)len, "/%s", req->sub);
    const char *pre =
        json_string_value(json_object_get(json_object_get(req->body, "preconditions"), "uid"));
    const char *pin =
        json_string_value(json_object_get(json_object_get(req->body, "metadata"), "uid"));
    if (pre)
        snprintf(line + len, n - (size_t)len, " if uid=%s", pre);
    else if (pin && req->verb == VERB_REPLACE)
        snprintf(line + len, n - (size_t)len, " if uid=%s", pin);
    w->bodies[w->nrequests] = req->body ? json_deep_copy(req->body) : NULL;
    w->nrequests++;
    w->cb = cb;
    w->cb_arg = cb_arg;
    w->last = *req;
    return 0;
}

static void w_done(void *arg, const char *key, struct outcome o, uint64_t deadline_ms,
                   uint64_t started_ns)
{
    struct world *w = arg;
    (void)started_ns;
    assert_string_equal(key, WORLD_KEY);
    assert_false(w->finished);
    w->finished = true;
    w->outcome = o;
    w->deadline_ms = deadline_ms;
}

/* A fresh world: an empty cache, no script, the clocks at their start. */
static struct world *world_new(void)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->ledger = ledger_new();
    assert_non_null(w->ledger);
    w->now_ms = WORLD_LOOP_MS;
    w->ns_labels = "{\"kubernetes.io/metadata.name\":\"" WORLD_NS "\"}";
    w->wall = WORLD_NOW;
    w->env = (struct sync_env){
        .rc = {.arg = w,
               .pod = w_pod,
               .policy = w_policy,
               .class_named = w_class_named,
               .class_defaults = w_class_defaults,
               .baseline_recent = w_baseline_recent,
               .baseline_written = w_baseline_written,
               .quota_waiting = w_quota_waiting,
               .foreign_policies = w_foreign_policies,
               .namespace_labels = w_namespace_labels,
               .now_ms = w_now_ms,
               .wall = w_wall,
               .queued = w_queued,
               .event = w_event,
               .count = w_count,
               .ready = w_ready,
               .runtime_class = "kata-fc"},
        .sandbox = w_sandbox,
        .memory = w_memory,
        .forget = w_forget,
        .send = w_send,
        .done = w_done,
    };
    return w;
}

/* Forgets what the last reconcile did (not the cache, nor the ledger). */
static void world_reset(struct world *w)
{
    for (unsigned i = 0; i < w->nrequests; i++)
        json_decref(w->bodies[i]);
    for (unsigned i = 0; i < w->nscript; i++)
        json_decref(w->script_json[i]);
    memset(w->requests, 0, sizeof(w->requests));
    memset(w->bodies, 0, sizeof(w->bodies));
    memset(w->events, 0, sizeof(w->events));
    memset(w->counts, 0, sizeof(w->counts));
    memset(w->script_json, 0, sizeof(w->script_json));
    memset(w->script_obj, 0, sizeof(w->script_obj));
    w->nrequests = w->nevents = w->nscript = w->next_answer = 0;
    w->finished = w->baseline_marked = w->quota_marked = false;
    w->outcome = outcome_done();
    w->deadline_ms = 0;
}

static void world_free(struct world *w)
{
    world_reset(w);
    for (unsigned i = 0; i < w->npods; i++)
        stored_clear(&w->pods[i]);
    for (unsigned i = 0; i < w->npolicies; i++)
        stored_clear(&w->policies[i]);
    for (unsigned i = 0; i < w->nclasses; i++)
        free(w->classes[i]);
    json_decref(w->sandbox_json);
    json_decref(w->echo);
    free(w->sandbox);
    ledger_free(w->ledger);
    free(w);
}

/* Adds an answer to the script: an HTTP code, the Status reason and
 * message, and for a GET the object (JSON text, or NULL). */
static void world_answer(struct world *w, long code, const char *reason, const char *message,
                         const char *object)
{
    assert_true(w->nscript < WORLD_MAX);
    w->script_json[w->nscript] = object && object[0] != '@' ? parse(object) : NULL;
    w->script_obj[w->nscript] = object;
    w->script[w->nscript] =
        (struct reconcile_answer){code, reason, message, w->script_json[w->nscript]};
    w->nscript++;
}

/* What the API server does with a successful write, when the watch
 * follows: creates and replaces show in the cache, deletions take the
 * object out (or mark it deleting), a status patch lands on the Sandbox. */
static void world_apply(struct world *w, const struct reconcile_request *req, json_t *body)
{
    bool is_pod = req->res == RES_POD;
    if (req->res == RES_SANDBOX) {
        if (req->verb != VERB_PATCH)
            return;
        json_t *patched = json_deep_copy(json_object_get(body, "status"));
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(patched, tmp, k, v)
        {
            if (json_is_null(v))
                json_object_del(patched, k);
        }
        json_object_set_new(w->sandbox_json, "status", patched);
        free(w->sandbox);
        char err[200];
        w->sandbox = observed_decode_sandbox(w->sandbox_json, err, sizeof(err));
        assert_non_null(w->sandbox);
        return;
    }
    if (req->verb == VERB_CREATE || req->verb == VERB_REPLACE) {
        json_t *obj = json_deep_copy(body);
        json_t *md = json_object_get(obj, "metadata");
        if (!json_object_get(md, "uid")) {
            char uid[40];
            snprintf(uid, sizeof(uid), "uid-%u", ++w->uids);
            json_object_set_new(md, "uid", json_string(uid));
        }
        world_put(w, is_pod, obj);
    } else if (req->verb == VERB_DELETE) {
        world_remove(w, is_pod, req->name);
    }
}

/* Answers the request in flight from the script (or with success). */
static void world_answer_one(struct world *w)
{
    sync_answer_cb cb = w->cb;
    assert_non_null(cb);
    struct reconcile_answer ok = {w->last.verb == VERB_GET ? 200 : 201, "", "", NULL};
    const struct reconcile_answer *a =
        w->next_answer < w->nscript ? &w->script[w->next_answer++] : &ok;
    if (a == &ok && w->last.verb == VERB_GET)
        fail_msg("the script has no answer for %s", w->requests[w->nrequests - 1]);
    if (a != &ok && w->script_obj[w->next_answer - 1] &&
        w->script_obj[w->next_answer - 1][0] == '@') {
        /* The object the last write would have made: ours, seen by a read
         * before the watch, or changed as the name says. */
        unsigned i = w->next_answer - 1;
        const char *how = w->script_obj[i];
        assert_true(w->nrequests >= 2);
        json_t *obj = json_deep_copy(w->bodies[w->nrequests - 2]);
        json_t *md = json_object_get(obj, "metadata");
        json_object_set_new(md, "uid", json_string("theirs-1"));
        if (strcmp(how, "@last-unlabelled") == 0)
            json_object_del(json_object_get(md, "labels"), LABEL_MANAGED_BY);
        else if (strcmp(how, "@last-unselected") == 0)
            json_object_del(json_object_get(md, "labels"), LABEL_SANDBOX);
        else if (strcmp(how, "@last-disowned") == 0)
            json_object_del(md, "ownerReferences");
        else
            assert_string_equal(how, "@last");
        json_decref(w->script_json[i]);
        w->script_json[i] = obj;
        w->script[i].json = obj;
    }
    if (w->watch_follows && a->code >= 200 && a->code < 300)
        world_apply(w, &w->last, w->bodies[w->nrequests - 1]);
    struct reconcile_answer echoed = *a;
    if (a == &ok && w->last.verb == VERB_CREATE && w->last.res != RES_SANDBOX) {
        /* As the server answers a create of a child (workers.c asks it
         * to): with the object made, which the watch shows with the same
         * uid when it follows. */
        const char *name = json_string_value(
            json_object_get(json_object_get(w->bodies[w->nrequests - 1], "metadata"), "name"));
        json_t *cached = w->watch_follows ? world_obj(w, w->last.res == RES_POD, name) : NULL;
        json_decref(w->echo);
        w->echo = json_deep_copy(cached ? cached : w->bodies[w->nrequests - 1]);
        assert_non_null(w->echo);
        if (!cached) {
            char uid[40];
            snprintf(uid, sizeof(uid), "made-%u", ++w->made);
            json_object_set_new(json_object_get(w->echo, "metadata"), "uid", json_string(uid));
        }
        echoed.json = w->echo;
    }
    w->cb = NULL;
    cb(w->cb_arg, &echoed);
}

/* Runs one whole reconcile of the Sandbox, answering every request from
 * the script, to its end. Every scripted answer must have been taken. */
static void world_reconcile(struct world *w)
{
    for (unsigned i = 0; i < w->nrequests; i++)
        json_decref(w->bodies[i]);
    memset(w->bodies, 0, sizeof(w->bodies));
    memset(w->requests, 0, sizeof(w->requests));
    memset(w->counts, 0, sizeof(w->counts));
    w->finished = w->baseline_marked = w->quota_marked = false;
    w->nrequests = w->nevents = 0;
    sync_sandbox(&w->env, WORLD_KEY);
    while (w->cb)
        world_answer_one(w);
    assert_true(w->finished);
    assert_int_equal(w->next_answer, w->nscript);
    for (unsigned i = 0; i < w->nscript; i++)
        json_decref(w->script_json[i]);
    memset(w->script_json, 0, sizeof(w->script_json));
    memset(w->script_obj, 0, sizeof(w->script_obj));
    w->nscript = w->next_answer = 0;
}

#pragma GCC diagnostic pop

#endif
