// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the census of Sandboxes by namespace and phase, over a
 * Sandbox cache fed watch lines by a client that never connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "census.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "kube/informer_int.h"
#include "reconcile/observed.h"
#include "workers.h"

struct fixture {
    uv_loop_t loop;
    struct kube_config cfg;
    struct kube_client *client;
    struct informer *inf;
    int closed;
};

static void on_closed(void *arg)
{
    ((struct fixture *)arg)->closed++;
}

static struct fixture *start(void)
{
    static const struct informer_ops ops = {observed_decode_sandbox, free, NULL};
    static const struct informer_handlers h = {0};
    struct fixture *t = calloc(1, sizeof(*t));
    char err[256];
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->cfg.server = "https://127.0.0.1:1"; /* never dialled: nothing is started */
    assert_int_equal(kube_client_new(&t->loop, &t->cfg, NULL, &t->client, err, sizeof(err)), 0);
    struct informer_opts o = {.res = &KAGE_SANDBOXES};
    assert_int_equal(informer_new(t->client, &t->loop, &o, &ops, &h, t, &t->inf), 0);
    return t;
}

static void finish(struct fixture *t)
{
    informer_close(t->inf, on_closed, t);
    kube_client_close(t->client, on_closed, t);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t->closed, 2);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
}

/* Adds Sandbox ns/name with phase ("" for no status). */
static void add(struct fixture *t, const char *ns, const char *name, const char *phase)
{
    static int rv;
    char line[512], status[64] = "{}";
    if (phase[0])
        snprintf(status, sizeof(status), "{\"phase\":\"%s\"}", phase);
    snprintf(line, sizeof(line),
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
             "\"uid\":\"u-%s-%s\",\"resourceVersion\":\"%d\",\"generation\":1},"
             "\"spec\":{\"image\":\"busybox\"},\"status\":%s}}",
             name, ns, ns, name, ++rv, status);
    size_t len = strlen(line);
    assert_int_equal(informer__feed(t->inf, line, len), 0);
}

static size_t phase(const char *name)
{
    for (size_t i = 0; i < CENSUS_PHASES; i++)
        if (strcmp(census_phase_names[i], name) == 0)
            return i;
    fail_msg("no phase %s", name);
    return 0;
}

/* Namespaces whose names sort around one another ("a", "a-b", "a.c") are
 * told apart; the largest get rows, most first, ties by name; the rest are
 * summed; the totals count everything. */
static void sandboxes_are_counted_by_namespace_and_the_rest_summed(void **state)
{
    (void)state;
    struct fixture *t = start();
    add(t, "a", "x", "Running");
    add(t, "a-b", "x", "Running");
    add(t, "a-b", "y", "Failed");
    add(t, "a-b", "z", "");
    add(t, "a.c", "x", "Paused");
    add(t, "a.c", "y", "Running");
    add(t, "team", "one", "Creating");
    add(t, "zz", "one", "Expired");

    struct census c;
    assert_int_equal(census_take(&c, t->inf, 2), 0);
    assert_int_equal(c.nrows, 2);
    assert_string_equal(c.rows[0].ns, "a-b");
    assert_int_equal(c.rows[0].total, 3);
    assert_int_equal(c.rows[0].n[phase("Running")], 1);
    assert_int_equal(c.rows[0].n[phase("Failed")], 1);
    assert_int_equal(c.rows[0].n[phase("")], 1);
    assert_string_equal(c.rows[1].ns, "a.c");
    assert_int_equal(c.rows[1].total, 2);
    /* a, team and zz: one each. */
    assert_int_equal(c.other.total, 3);
    assert_int_equal(c.other.n[phase("Running")], 1);
    assert_int_equal(c.other.n[phase("Creating")], 1);
    assert_int_equal(c.other.n[phase("Expired")], 1);
    assert_int_equal(c.all[phase("Running")], 3);
    uint64_t sum = 0;
    for (size_t i = 0; i < CENSUS_PHASES; i++)
        sum += c.all[i];
    assert_int_equal(sum, 8);
    census_free(&c);

    /* Room for all: no rest. */
    assert_int_equal(census_take(&c, t->inf, 50), 0);
    assert_int_equal(c.nrows, 5);
    assert_int_equal(c.other.total, 0);
    assert_string_equal(c.rows[2].ns, "a");
    assert_string_equal(c.rows[3].ns, "team");
    assert_string_equal(c.rows[4].ns, "zz");
    census_free(&c);
    finish(t);
}

static void an_empty_cache_has_no_rows(void **state)
{
    (void)state;
    struct fixture *t = start();
    struct census c;
    assert_int_equal(census_take(&c, t->inf, 50), 0);
    assert_int_equal(c.nrows, 0);
    assert_int_equal(c.other.total, 0);
    census_free(&c);
    finish(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sandboxes_are_counted_by_namespace_and_the_rest_summed),
        cmocka_unit_test(an_empty_cache_has_no_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
