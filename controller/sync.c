/*
 * sync.c - carries one reconcile out: asks reconcile_next what to do, sends
 * that request through the environment, and feeds the answer back, until
 * the reconcile finishes. No decision is taken here.
 */
#include "sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

struct run {
    const struct sync_env *env;
    uint64_t started;
    struct reconcile rc;
};

static void finish(struct run *run, const struct reconcile_action *act)
{
    const struct sync_env *env = run->env;
    char key[RECONCILE_KEY_MAX + 1];
    memcpy(key, run->rc.key, sizeof(key));
    uint64_t started = run->started;
    reconcile_free(&run->rc);
    free(run);
    env->done(env->rc.arg, key, act->outcome, act->deadline_ms, started);
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
            finish(run, &act);
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
    if (reconcile_init(&run->rc, &env->rc, NULL, s) != 0) {
        reconcile_free(&run->rc);
        free(run);
        env->done(env->rc.arg, key, outcome_retry(), 0, started);
        return;
    }
    drive(run, NULL);
}
