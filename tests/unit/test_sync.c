// SPDX-License-Identifier: Apache-2.0
/* Unit tests for how a reconcile gets its Sandbox: from the cache when it
 * keeps the Sandbox whole, else read whole from the API server first,
 * within the budget of bytes in flight (world.h: the real driver and
 * decisions against a fake cluster). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "json_expect.h"
#include "log.h"
#include "world.h"

#define BASELINE  "POST networkpolicies {kage-baseline}"
#define POLICY    "POST networkpolicies {" WORLD_NAME "}"
#define POD       "POST pods {" WORLD_NAME "}"
#define STATUS_RQ "PATCH sandboxes/" WORLD_NAME "/status"
#define READ      "GET sandboxes/" WORLD_NAME
/* the policy made (the second object made) names the pod made after it */
#define FOLLOWS  "PUT networkpolicies/" WORLD_NAME " if uid=made-2"
#define LONG_ARG 4000

/* A Sandbox too large for the cache to keep whole: one argument of
 * LONG_ARG characters. Returns the text of the Sandbox as the API server
 * would answer a read (free it). */
static char *large_sandbox(struct world *w)
{
    char spec[LONG_ARG + 64];
    int n = snprintf(spec, sizeof(spec), "{'image':'python:3.12-slim','args':['");
    memset(spec + n, 'a', LONG_ARG);
    snprintf(spec + n + LONG_ARG, sizeof(spec) - (size_t)n - LONG_ARG, "']}");
    world_sandbox(w, spec, "{}");
    assert_false(w->sandbox->whole);
    char *text = json_dumps(w->sandbox_json, JSON_COMPACT);
    assert_non_null(text);
    return text;
}

/* The budget as the world sees it: every take and give, and whether a
 * take is granted at once. */
static size_t took, gave, takes;
static int take_answer;
static void (*pending)(void *arg);
static void *pending_arg;

static int fake_take(void *arg, size_t bytes, void (*granted)(void *cb_arg), void *cb_arg)
{
    (void)arg;
    took += bytes;
    takes++;
    if (take_answer == 0) {
        pending = granted;
        pending_arg = cb_arg;
    }
    return take_answer;
}

static void fake_give(void *arg, size_t bytes)
{
    (void)arg;
    gave += bytes;
}

static struct world *world_with_budget(int answer)
{
    struct world *w = world_new();
    w->env.budget_take = fake_take;
    w->env.budget_give = fake_give;
    took = gave = takes = 0;
    take_answer = answer;
    pending = NULL;
    pending_arg = NULL;
    return w;
}

static void a_small_sandbox_is_reconciled_from_the_cache_outside_the_budget(void **state)
{
    (void)state;
    struct world *w = world_with_budget(1);
    world_sandbox(w, "{'image':'python:3.12-slim'}", "{}");
    assert_true(w->sandbox->whole);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 5);
    assert_string_equal(w->requests[0], BASELINE);
    assert_string_equal(w->requests[3], FOLLOWS);
    assert_string_equal(w->requests[4], STATUS_RQ);
    assert_int_equal(takes, 0);
    world_free(w);
}

static void a_large_sandbox_is_read_whole_then_reconciled(void **state)
{
    (void)state;
    struct world *w = world_with_budget(1);
    char *text = large_sandbox(w);
    world_answer(w, 200, "", "", text);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 6);
    assert_string_equal(w->requests[0], READ);
    assert_string_equal(w->requests[1], BASELINE);
    assert_string_equal(w->requests[2], POLICY);
    assert_string_equal(w->requests[3], POD);
    assert_string_equal(w->requests[4], FOLLOWS);
    assert_string_equal(w->requests[5], STATUS_RQ);
    /* The pod is rendered from the Sandbox read, long argument and all. */
    json_t *args = json_object_get(
        json_array_get(json_object_get(json_object_get(w->bodies[3], "spec"), "containers"), 0),
        "args");
    assert_int_equal(json_string_length(json_array_get(args, 0)), LONG_ARG);
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);
    /* Its texts were the share, given back at the end. */
    assert_int_equal(took, w->sandbox->spec_len + w->sandbox->status_len);
    assert_int_equal(gave, took);
    free(text);
    world_free(w);
}

static void a_read_waits_for_the_budget(void **state)
{
    (void)state;
    struct world *w = world_with_budget(0);
    char *text = large_sandbox(w);
    world_answer(w, 200, "", "", text);
    sync_sandbox(&w->env, WORLD_KEY);
    /* Nothing sent, nothing ended: it waits in line. */
    assert_int_equal(w->nrequests, 0);
    assert_false(w->finished);
    assert_non_null(pending);
    pending(pending_arg);
    assert_int_equal(w->nrequests, 1);
    assert_string_equal(w->requests[0], READ);
    while (w->cb)
        world_answer_one(w);
    assert_true(w->finished);
    assert_int_equal(w->nrequests, 6);
    assert_int_equal(gave, took);
    free(text);
    world_free(w);
}

static void a_sandbox_gone_when_read_is_forgotten(void **state)
{
    (void)state;
    struct world *w = world_with_budget(1);
    char *text = large_sandbox(w);
    assert_non_null(ledger_sandbox(w->ledger, WORLD_KEY, true));
    world_answer(w, 404, "NotFound", "sandboxes.kage.dev \"agent\" not found", NULL);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 1);
    assert_string_equal(w->requests[0], READ);
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);
    assert_null(ledger_sandbox(w->ledger, WORLD_KEY, false));
    assert_int_equal(gave, took);
    free(text);
    world_free(w);
}

static void a_failed_read_is_retried(void **state)
{
    (void)state;
    struct world *w = world_with_budget(1);
    char *text = large_sandbox(w);
    world_answer(w, 500, "InternalError", "etcd is unavailable", NULL);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 1);
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    assert_int_equal(gave, took);
    /* A read that cannot be sent, the same. */
    w->send_error = -ENOMEM;
    world_reconcile(w);
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    assert_int_equal(gave, took);
    assert_int_equal(takes, 2);
    free(text);
    world_free(w);
}

static void a_budget_that_cannot_queue_means_a_retry(void **state)
{
    (void)state;
    struct world *w = world_with_budget(-ENOMEM);
    char *text = large_sandbox(w);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 0);
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    assert_int_equal(gave, 0);
    free(text);
    world_free(w);
}

/* An answer that is another object (never from a real server) is not
 * reconciled in the Sandbox's place. */
static void a_read_answered_with_another_sandbox_is_retried(void **state)
{
    (void)state;
    struct world *w = world_with_budget(1);
    char *text = large_sandbox(w);
    world_answer(w, 200, "", "",
                 "{'metadata':{'name':'other','namespace':'" WORLD_NS "','uid':'u'},"
                 "'spec':{'image':'busybox'}}");
    world_reconcile(w);
    assert_int_equal(w->nrequests, 1);
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    free(text);
    world_free(w);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_small_sandbox_is_reconciled_from_the_cache_outside_the_budget),
        cmocka_unit_test(a_large_sandbox_is_read_whole_then_reconciled),
        cmocka_unit_test(a_read_waits_for_the_budget),
        cmocka_unit_test(a_sandbox_gone_when_read_is_forgotten),
        cmocka_unit_test(a_failed_read_is_retried),
        cmocka_unit_test(a_budget_that_cannot_queue_means_a_retry),
        cmocka_unit_test(a_read_answered_with_another_sandbox_is_retried),
    };
    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
