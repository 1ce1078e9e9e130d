// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the work queue, on a real libuv loop: each test counts
 * callback calls and ends with a loop that closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"

#define MAX_CALLS 64

struct rec {
    uv_loop_t loop;
    struct queue *q;
    int calls;
    char key[MAX_CALLS][32];
    uint64_t at[MAX_CALLS];   /* uv_now at each dispatch */
    uint64_t turn[MAX_CALLS]; /* loop turn of each dispatch */
    uint64_t turns;           /* counted by a prepare handle, when used */
    unsigned max_in_flight;
    int closed;
    int busy[8]; /* per test key: 1 while a worker holds it */
    void *ctx;   /* per-test state */
};

/* Index of a test key "k<digit>" for the busy check, -1 for others. */
static int key_slot(const char *key)
{
    return key[0] == 'k' && key[1] >= '0' && key[1] <= '7' && !key[2] ? key[1] - '0' : -1;
}

/* Number of keys queued and not in flight. */
static size_t depth(const struct queue *q)
{
    struct queue_stats st;
    queue_get_stats(q, &st);
    return st.depth;
}

/* Records a dispatch; returns its index. */
static int note(struct rec *r, struct queue *q, const char *key)
{
    assert_true(r->calls < MAX_CALLS);
    int i = r->calls++;
    snprintf(r->key[i], sizeof(r->key[i]), "%s", key);
    r->at[i] = uv_now(&r->loop);
    r->turn[i] = r->turns;
    if (queue_in_flight(q) > r->max_in_flight)
        r->max_in_flight = queue_in_flight(q);
    int s = key_slot(key);
    if (s >= 0) {
        assert_int_equal(r->busy[s], 0); /* never two workers on one key */
        r->busy[s] = 1;
    }
    return i;
}

static void done(struct rec *r, struct queue *q, const char *key, struct outcome result)
{
    int s = key_slot(key);
    if (s >= 0)
        r->busy[s] = 0;
    queue_done(q, key, result);
}

/* Finishing a key from a later callback, as a reconcile waiting on HTTP. */
struct later {
    uv_timer_t timer;
    struct rec *r;
    char key[32];
    struct outcome result;
};

static void later_free(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    struct later *l = t->data;
    done(l->r, l->r->q, l->key, l->result);
    uv_close((uv_handle_t *)t, later_free);
}

static void done_later(struct rec *r, const char *key, struct outcome result, uint64_t ms)
{
    struct later *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->r = r;
    snprintf(l->key, sizeof(l->key), "%s", key);
    l->result = result;
    assert_int_equal(uv_timer_init(&r->loop, &l->timer), 0);
    l->timer.data = l;
    assert_int_equal(uv_timer_start(&l->timer, later_fire, ms, 0), 0);
}

static void on_closed(struct queue *q, void *arg)
{
    struct rec *r = arg;
    assert_ptr_equal(q, r->q);
    r->closed++;
}

static void start(struct rec *r, unsigned max, queue_work_cb work)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->q = queue_new(&r->loop, max, work, r);
    assert_non_null(r->q);
}

/* Closes the queue and checks that nothing is left on the loop. */
static void finish(struct rec *r)
{
    queue_close(r->q, on_closed);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->closed, 1);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void work_ok(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    note(r, q, key);
    done(r, q, key, outcome_done());
}

static void many_adds_of_one_key_dispatch_once(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 4, work_ok);
    for (int i = 0; i < 100; i++)
        assert_int_equal(queue_add(r.q, "team-a/agent-42"), 0);
    assert_int_equal(depth(r.q), 1);
    /* Work runs from the loop, never inside queue_add. */
    assert_int_equal(r.calls, 0);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.key[0], "team-a/agent-42");
    assert_int_equal(depth(r.q), 0);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.adds, 1);
    assert_int_equal(st.dispatches, 1);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.in_flight, 0);
    finish(&r);
}

static void work_readds_while_busy(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    int i = note(r, q, key);
    if (i == 0) {
        /* Events for the key while it is being reconciled. */
        for (int k = 0; k < 3; k++)
            assert_int_equal(queue_add(q, key), 0);
        assert_int_equal(depth(q), 0);
        done_later(r, key, outcome_done(), 5);
    } else {
        done(r, q, key, outcome_done());
    }
}

static void add_during_processing_redispatches_once_after_done(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 4, work_readds_while_busy);
    assert_int_equal(queue_add(r.q, "k0"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    /* The second run began only after the first one's done (5 ms later). */
    assert_true(r.at[1] >= r.at[0] + 5);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.adds, 2);
    assert_int_equal(st.dispatches, 2);
    finish(&r);
}

static void work_async(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    note(r, q, key);
    done_later(r, key, outcome_done(), 1);
}

static void no_more_than_max_concurrent_keys_in_flight(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 3, work_async);
    char key[16];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(queue_add(r.q, key), 0);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(queue_add(r.q, "other"), 0);
    assert_int_equal(depth(r.q), 9);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 9);
    assert_int_equal(r.max_in_flight, 3);
    assert_int_equal(queue_in_flight(r.q), 0);
    /* First in, first out. */
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_string_equal(r.key[i], key);
    }
    assert_string_equal(r.key[8], "other");
    finish(&r);
}

struct waits {
    int n;
    uint64_t ms[4];
};

static void record_wait(void *arg, uint64_t waited_ms)
{
    struct waits *w = arg;
    assert_true(w->n < 4);
    w->ms[w->n++] = waited_ms;
}

static void work_slowly(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    note(r, q, key);
    done_later(r, key, outcome_done(), 40);
}

/* kage_queue_wait_seconds: one worker, two keys; the second waits while the
 * first is worked on (40 ms), and says so at its dispatch. */
static void each_dispatch_reports_how_long_the_key_waited(void **state)
{
    (void)state;
    struct rec r;
    struct waits w = {0};
    start(&r, 1, work_slowly);
    queue_on_wait(r.q, record_wait, &w);
    assert_int_equal(queue_add(r.q, "k0"), 0);
    assert_int_equal(queue_add(r.q, "k1"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(w.n, 2);
    assert_true(w.ms[0] < 10);
    assert_true(w.ms[1] >= 40 && w.ms[1] < 200);
    assert_int_equal(w.ms[1], r.at[1] - r.at[0] + w.ms[0]);
    finish(&r);
}

static void work_blocks_the_loop(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    note(r, q, key);
    if (strcmp(key, "k0") == 0)
        usleep(60 * 1000); /* a loop running late, as under load */
    done(r, q, key, outcome_done());
}

/* A key due while the loop ran late has waited since its deadline, not
 * since the timer finally fired. */
static void a_late_timer_counts_the_wait_from_the_deadline(void **state)
{
    (void)state;
    struct rec r;
    struct waits w = {0};
    start(&r, 1, work_blocks_the_loop);
    queue_on_wait(r.q, record_wait, &w);
    assert_int_equal(queue_add_after(r.q, "k1", 10), 0);
    assert_int_equal(queue_add(r.q, "k0"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_string_equal(r.key[1], "k1");
    assert_int_equal(w.n, 2);
    assert_true(w.ms[1] >= 40);
    finish(&r);
}

static void work_fails_then_succeeds(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    int i = note(r, q, key);
    uint64_t deadline;
    char copy[32];
    snprintf(copy, sizeof(copy), "%s", key);
    key = copy; /* the queue's copy may die with queue_done */

    /* Calls 0-3 fail, 4 succeeds and re-adds, 5 fails, 6 succeeds. */
    if (i == 4 || i == 6) {
        done(r, q, key, outcome_done());
        assert_int_equal(queue_num_requeues(q, key), 0);
        assert_int_equal(queue_deadline(q, key, &deadline), -ENOENT);
        if (i == 4)
            assert_int_equal(queue_add(q, key), 0);
        return;
    }
    unsigned failures = i < 4 ? (unsigned)i + 1 : 1;
    done(r, q, key, outcome_retry());
    assert_int_equal(queue_num_requeues(q, key), failures);
    assert_int_equal(queue_deadline(q, key, &deadline), 0);
    /* QUEUE_BACKOFF_BASE_MS doubling per failure, equal jitter: [d/2, d]. */
    uint64_t d = (uint64_t)QUEUE_BACKOFF_BASE_MS << (failures - 1);
    uint64_t delay = deadline - uv_now(&r->loop);
    assert_true(delay >= d - d / 2 && delay <= d);
    r->turn[i] = delay; /* kept to check against the next dispatch */
}

static void failures_back_off_exponentially_and_success_resets(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 2, work_fails_then_succeeds);
    assert_int_equal(queue_add(r.q, "k1"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 7);
    /* Each retry came no earlier than its backoff, and they grew. */
    for (int i = 0; i < 4; i++)
        assert_true(r.at[i + 1] - r.at[i] >= r.turn[i]);
    assert_true(r.at[4] - r.at[3] >= 20);
    assert_true(r.at[6] - r.at[5] >= r.turn[5]);
    assert_true(r.turn[5] <= QUEUE_BACKOFF_BASE_MS);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.retries, 5);
    assert_int_equal(st.dispatches, 7);
    assert_int_equal(queue_num_requeues(r.q, "k1"), 0);
    finish(&r);
}

static void add_after_fires_after_its_delay(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, work_ok);
    uint64_t t0 = uv_now(&r.loop);
    assert_int_equal(queue_add_after(r.q, "a", 30), 0);
    assert_int_equal(depth(r.q), 0);
    uint64_t deadline;
    assert_int_equal(queue_deadline(r.q, "a", &deadline), 0);
    assert_true(deadline == t0 + 30);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_true(r.at[0] >= t0 + 30);
    assert_int_equal(queue_deadline(r.q, "a", &deadline), -ENOENT);
    finish(&r);
}

static void the_earlier_deadline_wins(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 4, work_ok);
    uint64_t t0 = uv_now(&r.loop), deadline;

    assert_int_equal(queue_add_after(r.q, "later-then-sooner", 5000), 0);
    assert_int_equal(queue_add_after(r.q, "later-then-sooner", 20), 0);
    assert_int_equal(queue_deadline(r.q, "later-then-sooner", &deadline), 0);
    assert_true(deadline == t0 + 20);

    assert_int_equal(queue_add_after(r.q, "sooner-then-later", 20), 0);
    assert_int_equal(queue_add_after(r.q, "sooner-then-later", 5000), 0);
    assert_int_equal(queue_deadline(r.q, "sooner-then-later", &deadline), 0);
    assert_true(deadline == t0 + 20);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.waiting, 2);

    /* The run ends at ~20 ms: no 5 s deadline is left behind. */
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_true(uv_now(&r.loop) - t0 < 1000);
    finish(&r);
}

static void deadlines_fire_in_order(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 64, work_ok);
    char key[16];
    /* 40 keys with distinct delays in a scrambled order, some moved earlier. */
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "d%02d", (i * 17) % 40);
        assert_int_equal(queue_add_after(r.q, key, 2 + 2 * (uint64_t)((i * 17) % 40) + 100), 0);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "d%02d", i);
        assert_int_equal(queue_add_after(r.q, key, 2 + 2 * (uint64_t)i), 0);
    }
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 40);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "d%02d", i);
        assert_string_equal(r.key[i], key);
    }
    finish(&r);
}

static void work_requeues_after(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    int i = note(r, q, key);
    done(r, q, key, i == 0 ? outcome_after(25) : outcome_done());
}

static void positive_result_requeues_after_that_many_ms(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, work_requeues_after);
    assert_int_equal(queue_add(r.q, "ttl"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_true(r.at[1] - r.at[0] >= 25);
    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.retries, 0);
    finish(&r);
}

static void count_turn(uv_prepare_t *p)
{
    struct rec *r = p->data;
    r->turns++;
}

static void work_readds_itself(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    int i = note(r, q, key);
    char copy[32];
    snprintf(copy, sizeof(copy), "%s", key); /* key dies with queue_done */
    done(r, q, key, outcome_done());
    if (i < 19)
        assert_int_equal(queue_add(q, copy), 0);
}

static void a_key_readded_by_its_work_waits_for_the_next_turn(void **state)
{
    (void)state;
    struct rec r;
    uv_prepare_t prep;
    start(&r, 1, work_readds_itself);
    assert_int_equal(uv_prepare_init(&r.loop, &prep), 0);
    prep.data = &r;
    assert_int_equal(uv_prepare_start(&prep, count_turn), 0);
    assert_int_equal(queue_add(r.q, "self"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 1);
    while (r.calls < 20)
        uv_run(&r.loop, UV_RUN_NOWAIT);
    for (int i = 1; i < 20; i++)
        assert_true(r.turn[i] > r.turn[i - 1]);
    uv_close((uv_handle_t *)&prep, NULL);
    finish(&r);
}

static void work_never(struct queue *q, const char *key, void *arg)
{
    (void)q;
    (void)key;
    struct rec *r = arg;
    r->calls++;
}

static void shutdown_drops_pending_keys(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 2, work_never);
    assert_int_equal(queue_add(r.q, "a"), 0);
    assert_int_equal(queue_add(r.q, "b"), 0);
    assert_int_equal(queue_add_after(r.q, "c", 10), 0);
    queue_shutdown(r.q);
    assert_int_equal(depth(r.q), 0);
    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(queue_add(r.q, "d"), -ESHUTDOWN);
    assert_int_equal(queue_add_after(r.q, "d", 5), -ESHUTDOWN);
    queue_shutdown(r.q);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 0);
    finish(&r);
}

static void work_closes_queue(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    note(r, q, key);
    queue_close(q, on_closed);
    assert_int_equal(queue_add(q, "more"), -ESHUTDOWN);
    /* The failure must not be retried: the queue is going away. */
    done_later(r, key, outcome_retry(), 5);
}

static void close_waits_for_keys_in_flight(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, work_closes_queue);
    assert_int_equal(queue_add(r.q, "k2"), 0);
    assert_int_equal(queue_add(r.q, "k3"), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_NOWAIT), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.closed, 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    /* k3 was dropped; the queue closed once k2 was done. */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

static void close_while_idle_with_deadlines_pending(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, work_ok);
    assert_int_equal(queue_add_after(r.q, "x", 60000), 0);
    assert_int_equal(queue_add(r.q, "y"), 0);
    finish(&r);
    assert_int_equal(r.calls, 0);
}

static void bad_keys_are_refused(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, work_ok);
    char key[QUEUE_KEY_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';

    assert_int_equal(queue_add(r.q, ""), -EINVAL);
    assert_int_equal(queue_add(r.q, NULL), -EINVAL);
    assert_int_equal(queue_add(r.q, key), -EINVAL);
    assert_int_equal(queue_add_after(r.q, key, 10), -EINVAL);
    key[QUEUE_KEY_MAX] = '\0';
    assert_int_equal(queue_add(r.q, key), 0);
    assert_int_equal(depth(r.q), 1);

    /* A done for a key nobody holds changes nothing. */
    queue_done(r.q, "nobody", outcome_retry());
    queue_done(r.q, key, outcome_retry());
    assert_int_equal(depth(r.q), 1);
    assert_int_equal(queue_num_requeues(r.q, key), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    finish(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_adds_of_one_key_dispatch_once),
        cmocka_unit_test(add_during_processing_redispatches_once_after_done),
        cmocka_unit_test(no_more_than_max_concurrent_keys_in_flight),
        cmocka_unit_test(each_dispatch_reports_how_long_the_key_waited),
        cmocka_unit_test(a_late_timer_counts_the_wait_from_the_deadline),
        cmocka_unit_test(failures_back_off_exponentially_and_success_resets),
        cmocka_unit_test(add_after_fires_after_its_delay),
        cmocka_unit_test(the_earlier_deadline_wins),
        cmocka_unit_test(deadlines_fire_in_order),
        cmocka_unit_test(positive_result_requeues_after_that_many_ms),
        cmocka_unit_test(a_key_readded_by_its_work_waits_for_the_next_turn),
        cmocka_unit_test(shutdown_drops_pending_keys),
        cmocka_unit_test(close_waits_for_keys_in_flight),
        cmocka_unit_test(close_while_idle_with_deadlines_pending),
        cmocka_unit_test(bad_keys_are_refused),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
