// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the work queue's lanes, on a real libuv loop: finish keys
 * are served before start keys queued earlier, a queued key moves up to the
 * finish lane, and start keys are never starved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define MAX_CALLS 128

struct rec {
    uv_loop_t loop;
    struct queue *q;
    int calls;
    char key[MAX_CALLS][16];
    uint64_t waited[MAX_CALLS];
    int waits;
    int closed;
    bool started[MAX_CALLS]; /* by key number: whether the key "began something" */
};

/* Keys are "f<n>" or "s<n>"; f* keys and those marked started go first. */
static int num(const char *key)
{
    return (int)strtol(key + 1, NULL, 10);
}

static size_t depth(const struct queue *q)
{
    struct queue_stats st;
    queue_get_stats(q, &st);
    return st.depth;
}

static size_t lane_depth(const struct queue *q, enum queue_lane l)
{
    struct queue_stats st;
    queue_get_stats(q, &st);
    return st.depth_lane[l];
}

static enum queue_lane lane(void *arg, const char *key)
{
    struct rec *r = arg;
    int n = num(key);
    return key[0] == 'f' || (n >= 0 && n < MAX_CALLS && r->started[n]) ? QUEUE_LANE_FINISH
                                                                       : QUEUE_LANE_START;
}

static void work_ok(struct queue *q, const char *key, void *arg)
{
    struct rec *r = arg;
    assert_true(r->calls < MAX_CALLS);
    snprintf(r->key[r->calls++], sizeof(r->key[0]), "%s", key);
    queue_done(q, key, outcome_done());
}

static void on_wait(void *arg, uint64_t waited_ms)
{
    struct rec *r = arg;
    if (r->waits < MAX_CALLS)
        r->waited[r->waits++] = waited_ms;
}

static void on_closed(struct queue *q, void *arg)
{
    struct rec *r = arg;
    assert_ptr_equal(q, r->q);
    r->closed++;
}

static void start(struct rec *r, unsigned max, bool lanes)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->q = queue_new(&r->loop, max, work_ok, r);
    assert_non_null(r->q);
    if (lanes)
        queue_on_lane(r->q, lane, r);
    queue_on_wait(r->q, on_wait, r);
}

static void finish(struct rec *r)
{
    queue_close(r->q, on_closed);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->closed, 1);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void add(struct rec *r, const char *prefix, int n)
{
    char key[16];
    snprintf(key, sizeof(key), "%s%d", prefix, n);
    assert_int_equal(queue_add(r->q, key), 0);
}

static void a_finish_key_goes_before_start_keys_queued_earlier(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    for (int i = 0; i < 3; i++)
        add(&r, "s", i);
    add(&r, "f", 0);
    assert_int_equal(depth(r.q), 4);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_START), 3);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_FINISH), 1);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.depth, 4);
    assert_int_equal(st.depth_lane[QUEUE_LANE_FINISH], 1);
    assert_int_equal(st.depth_lane[QUEUE_LANE_START], 3);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 4);
    assert_string_equal(r.key[0], "f0");
    assert_string_equal(r.key[1], "s0");
    assert_string_equal(r.key[2], "s1");
    assert_string_equal(r.key[3], "s2");
    finish(&r);
}

static void without_a_lane_callback_keys_go_in_order(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, false);
    add(&r, "s", 0);
    add(&r, "f", 0);
    add(&r, "s", 1);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_START), 3);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    assert_string_equal(r.key[0], "s0");
    assert_string_equal(r.key[1], "f0");
    assert_string_equal(r.key[2], "s1");
    finish(&r);
}

/* A new Sandbox queued, then its pod appears: the pod's event moves it up,
 * once (still queued once), keeping its wait since it was first queued. */
static void a_queued_key_added_again_moves_up_once(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    add(&r, "s", 0);
    add(&r, "s", 1);
    add(&r, "s", 2);
    r.started[2] = true;
    add(&r, "s", 2);
    add(&r, "s", 2);
    r.started[0] = false;
    add(&r, "s", 0); /* still a start: stays where it is */
    assert_int_equal(depth(r.q), 3);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_FINISH), 1);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_START), 2);

    struct queue_stats st;
    queue_get_stats(r.q, &st);
    assert_int_equal(st.adds, 3);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    assert_string_equal(r.key[0], "s2");
    assert_string_equal(r.key[1], "s0");
    assert_string_equal(r.key[2], "s1");
    assert_int_equal(r.waits, 3);
    finish(&r);
}

/* A finish key is never moved back to the start lane while queued. */
static void a_finish_key_stays_in_its_lane(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    add(&r, "s", 0);
    r.started[1] = true;
    add(&r, "s", 1);
    r.started[1] = false;
    add(&r, "s", 1);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_FINISH), 1);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_string_equal(r.key[0], "s1");
    assert_string_equal(r.key[1], "s0");
    finish(&r);
}

/* With 3 start keys and 40 finish keys all queued, a start key is served
 * after every QUEUE_FINISH_BURST finish keys; once the start lane is empty,
 * the finish keys go on one after another. */
static void start_keys_are_served_after_a_bounded_burst(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    for (int i = 0; i < 3; i++)
        add(&r, "s", i);
    for (int i = 0; i < 40; i++)
        add(&r, "f", i);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 43);

    const int b = (int)QUEUE_FINISH_BURST;
    int f = 0, s = 0;
    for (int i = 0; i < 43; i++) {
        char want[16];
        bool start_turn = s < 3 && i == (s + 1) * b + s;
        snprintf(want, sizeof(want), "%s%d", start_turn ? "s" : "f", start_turn ? s : f);
        assert_string_equal(r.key[i], want);
        if (start_turn)
            s++;
        else
            f++;
    }
    assert_int_equal(s, 3);
    assert_int_equal(f, 40);
    finish(&r);
}

/* A finish key requeued at its done (dirty) or when due goes in the finish
 * lane as well: the lane is asked whenever a key is queued. */
static void a_due_key_is_asked_its_lane(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    assert_int_equal(queue_add_after(r.q, "f0", 5), 0);
    add(&r, "s", 0);
    add(&r, "s", 1);
    /* s0 and s1 go at once; f0 is due 5 ms later, alone. */
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    assert_string_equal(r.key[0], "s0");
    assert_string_equal(r.key[1], "s1");
    assert_string_equal(r.key[2], "f0");

    assert_int_equal(queue_add_after(r.q, "f1", 5), 0);
    uv_sleep(10);
    uv_update_time(&r.loop);
    add(&r, "s", 2);
    /* The timer fires in the same turn before the idle dispatches: f1 is
     * queued after s2 but served first. */
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 5);
    assert_string_equal(r.key[3], "f1");
    assert_string_equal(r.key[4], "s2");
    finish(&r);
}

static void shutdown_empties_both_lanes(void **state)
{
    (void)state;
    struct rec r;
    start(&r, 1, true);
    add(&r, "s", 0);
    add(&r, "f", 0);
    queue_shutdown(r.q);
    assert_int_equal(depth(r.q), 0);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_FINISH), 0);
    assert_int_equal(lane_depth(r.q, QUEUE_LANE_START), 0);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 0);
    finish(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_finish_key_goes_before_start_keys_queued_earlier),
        cmocka_unit_test(without_a_lane_callback_keys_go_in_order),
        cmocka_unit_test(a_queued_key_added_again_moves_up_once),
        cmocka_unit_test(a_finish_key_stays_in_its_lane),
        cmocka_unit_test(start_keys_are_served_after_a_bounded_burst),
        cmocka_unit_test(a_due_key_is_asked_its_lane),
        cmocka_unit_test(shutdown_empties_both_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
