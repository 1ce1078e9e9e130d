// SPDX-License-Identifier: Apache-2.0
/*
 * sync.c - carries one reconcile out: reads the Sandbox whole when the
 * cache keeps only its digest (within the budget of bytes in flight), asks
 * reconcile_next what to do, sends that request through the environment,
 * and feeds the answer back, until the reconcile finishes. No decision is
 * taken here.
 */
#include "sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "log.h"

struct run {
    const struct sync_env *env;
    uint64_t started;
    size_t budget; /* bytes of the budget held, 0 when none */
    char key[RECONCILE_KEY_MAX + 1];
    char ns[256]; /* of a Sandbox read whole */
    char name[256];
    struct reconcile rc; /* zero until reconcile_init */
};

/* Ends the run with o: the budget goes back (which may let a waiting
 * reconcile start), then the caller hears. */
static void end(struct run *run, struct outcome o, uint64_t deadline_ms)
{
    const struct sync_env *env = run->env;
    char key[RECONCILE_KEY_MAX + 1];
    memcpy(key, run->key, sizeof(key));
    uint64_t started = run->started;
    size_t budget = run->budget;
    reconcile_free(&run->rc);
    free(run);
    if (budget && env->budget_give)
        env->budget_give(env->rc.arg, budget);
    env->done(env->rc.arg, key, o, deadline_ms, started);
}

static void on_answer(void *arg, const struct reconcile_answer *ans);

/* Runs the reconcile from ans (NULL at the start) to its next request in
 * flight, or to its end. */
static void drive(struct run *run, const struct reconcile_answer *ans)
{
    static const struct reconcile_answer unsent = {-1, "", "not sent", NULL};
    const struct sync_env *env = run->env;
    for (;;) {
        struct reconcile_action act;
        /* Looked up again each time: the Sandbox may have been deleted,
         * and its memory forgotten, while a request was in flight. */
        run->rc.mem = env->memory(env->rc.arg, run->rc.key, true);
        reconcile_next(&run->rc, ans, &act);
        if (act.kind == ACTION_FINISH) {
            end(run, act.outcome, act.deadline_ms);
            return;
        }
        if (env->send(env->rc.arg, &act.req, on_answer, run) == 0)
            return;
        ans = &unsent;
    }
}

static void on_answer(void *arg, const struct reconcile_answer *ans)
{
    drive(arg, ans);
}

/* Starts the reconcile of s, a whole Sandbox (borrowed for the call). */
static void start(struct run *run, const struct sandbox_obj *s)
{
    const struct sync_env *env = run->env;
    if (reconcile_init(&run->rc, &env->rc, NULL, s) != 0) {
        end(run, outcome_retry(), 0);
        return;
    }
    drive(run, NULL);
}

/* The Sandbox read whole: reconciled from what the API server has now,
 * which is at least as new as the cache. */
static void on_fetched(void *arg, const struct reconcile_answer *ans)
{
    struct run *run = arg;
    const struct sync_env *env = run->env;
    if (ans->code == 404) {
        /* Gone since the cache saw it: its children go with it. */
        env->forget(env->rc.arg, run->key);
        end(run, outcome_done(), 0);
        return;
    }
    char err[256] = "no object in the answer";
    struct sandbox_obj *s = NULL;
    if (ans->code >= 200 && ans->code < 300 && ans->json)
        s = observed_decode_sandbox_whole(ans->json, err, sizeof(err));
    if (!s) {
        log_warn("cannot read sandbox", "{s:s, s:I, s:s}", "sandbox", run->key, "code",
                 (json_int_t)ans->code, "message",
                 ans->code >= 200 && ans->code < 300 ? err : ans->message);
        end(run, outcome_retry(), 0);
        return;
    }
    if (strcmp(s->ns, run->ns) != 0 || strcmp(s->name, run->name) != 0) {
        log_warn("cannot read sandbox", "{s:s, s:s}", "sandbox", run->key, "message",
                 "the API server answered with another object");
        free(s);
        end(run, outcome_retry(), 0);
        return;
    }
    start(run, s);
    free(s);
}

static void fetch(struct run *run)
{
    const struct sync_env *env = run->env;
    struct reconcile_request req = {VERB_GET, RES_SANDBOX, run->ns, run->name, NULL, NULL};
    if (env->send(env->rc.arg, &req, on_fetched, run) != 0)
        end(run, outcome_retry(), 0);
}

static void on_granted(void *arg)
{
    fetch(arg);
}

void sync_sandbox(const struct sync_env *env, const char *key)
{
    uint64_t started = uv_hrtime();
    const struct sandbox_obj *s = env->sandbox(env->rc.arg, key);
    if (!s) {
        /* Gone: its children go with it (ownerReferences). */
        env->forget(env->rc.arg, key);
        env->done(env->rc.arg, key, outcome_done(), 0, started);
        return;
    }
    struct run *run = calloc(1, sizeof(*run));
    if (!run) {
        env->done(env->rc.arg, key, outcome_retry(), 0, started);
        return;
    }
    run->env = env;
    run->started = started;
    snprintf(run->key, sizeof(run->key), "%s", key);
    if (s->whole) {
        start(run, s);
        return;
    }
    /* Read whole at the API server: what it will cost in memory while it
     * is reconciled grows with its texts, so those are what the budget
     * counts. */
    snprintf(run->ns, sizeof(run->ns), "%s", s->ns);
    snprintf(run->name, sizeof(run->name), "%s", s->name);
    size_t bytes = s->spec_len + s->status_len;
    int rc = 1;
    if (env->budget_take) {
        rc = env->budget_take(env->rc.arg, bytes, on_granted, run);
        if (rc < 0) {
            end(run, outcome_retry(), 0);
            return;
        }
    }
    run->budget = env->budget_take ? bytes : 0;
    if (rc == 1)
        fetch(run);
}
