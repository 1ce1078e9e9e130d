// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the informer's watch-line handling, fed as the stream
 * would deliver lines to a pod cache over a client that never connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "reconcile/observed.h"

struct fixture {
    uv_loop_t loop;
    struct kube_config cfg;
    struct kube_client *client;
    struct informer *inf;
    int adds, deletes, errors, closed;
    char message[sizeof(((struct kube_error *)0)->message)];
};

static void on_add(void *arg, const char *key, const void *obj)
{
    (void)key;
    (void)obj;
    ((struct fixture *)arg)->adds++;
}

static void on_delete(void *arg, const char *key, const void *obj)
{
    (void)key;
    (void)obj;
    ((struct fixture *)arg)->deletes++;
}

static void on_error(void *arg, const char *what, const struct kube_error *err)
{
    struct fixture *t = arg;
    (void)what;
    t->errors++;
    memcpy(t->message, err->message, sizeof(t->message));
}

static void on_closed(void *arg)
{
    ((struct fixture *)arg)->closed++;
}

static int setup(void **state)
{
    static const struct informer_ops ops = {observed_decode_pod, free, NULL};
    static const struct informer_handlers h = {on_add, NULL, on_delete, NULL, on_error};
    struct fixture *t = calloc(1, sizeof(*t));
    char err[256];
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->cfg.server = "https://127.0.0.1:1"; /* never dialled: nothing is started */
    assert_int_equal(kube_client_new(&t->loop, &t->cfg, NULL, &t->client, err, sizeof(err)), 0);
    struct informer_opts o = {.res = &KUBE_PODS};
    assert_int_equal(informer_new(t->client, &t->loop, &o, &ops, &h, t, &t->inf), 0);
    *state = t;
    return 0;
}

/* Closes both and checks that the loop ends with nothing left open. */
static int teardown(void **state)
{
    struct fixture *t = *state;
    informer_close(t->inf, on_closed, t);
    kube_client_close(t->client, on_closed, t);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t->closed, 2);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
    return 0;
}

static int feed(struct fixture *t, const char *text)
{
    size_t len = strlen(text);
    char *line = malloc(len + 1);
    assert_non_null(line);
    memcpy(line, text, len + 1);
    int rc = informer__feed(t->inf, line, len);
    free(line);
    return rc;
}

static void an_added_then_deleted_pod_leaves_the_cache_empty(void **state)
{
    struct fixture *t = *state;
    const char *pod =
        "{\"metadata\":{\"name\":\"agent-42\",\"namespace\":\"team-a\",\"uid\":\"u1\","
        "\"resourceVersion\":\"7\",\"managedFields\":[{\"manager\":\"kage\"}]}}";
    char line[512];
    snprintf(line, sizeof(line), "{\"type\":\"ADDED\",\"object\":%s}", pod);
    assert_int_equal(feed(t, line), 0);
    assert_int_equal(informer_size(t->inf), 1);
    assert_non_null(informer_get(t->inf, "team-a/agent-42"));
    snprintf(line, sizeof(line), "{\"type\":\"DELETED\",\"object\":%s}", pod);
    assert_int_equal(feed(t, line), 0);
    assert_int_equal(informer_size(t->inf), 0);
    assert_int_equal(t->adds, 1);
    assert_int_equal(t->deletes, 1);
    assert_string_equal(informer_resource_version(t->inf), "7");
}

/* Found by fuzz_watch_event: for a line that is valid UTF-8 but not JSON,
 * jansson's error quotes the bytes near the fault cut inside a character
 * (here U+031A after a bad "\u" escape), and the informer passed that on:
 * the error could not be logged (json_pack refuses invalid UTF-8). */
static void a_malformed_line_is_reported_in_loggable_text(void **state)
{
    struct fixture *t = *state;
    const char *line =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"\\u00e9\\u\xcc\x9a\xcd\xa3\"}}}";
    /* Skipped, not fatal: resuming before it would replay it forever. */
    assert_int_equal(feed(t, line), 0);
    assert_int_equal(t->errors, 1);
    assert_non_null(strstr(t->message, "malformed watch event: invalid escape"));
    json_t *s = json_string(t->message);
    if (!s)
        fail_msg("not valid UTF-8: %s", t->message);
    json_decref(s);
    assert_int_equal(informer_size(t->inf), 0);
}

static void a_nul_in_a_string_is_no_reason_to_refuse_the_event(void **state)
{
    struct fixture *t = *state;
    /* The API server allows \u0000 in strings; a namespace user can put one
     * in an annotation of a pod kage watches. */
    const char *line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\","
                       "\"namespace\":\"n\",\"uid\":\"u\",\"resourceVersion\":\"7\","
                       "\"annotations\":{\"x\":\"a\\u0000b\"}}}}";
    assert_int_equal(feed(t, line), 0);
    assert_int_equal(t->errors, 0);
    assert_int_equal(informer_size(t->inf), 1);
    assert_non_null(informer_get(t->inf, "n/p"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_added_then_deleted_pod_leaves_the_cache_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_malformed_line_is_reported_in_loggable_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_nul_in_a_string_is_no_reason_to_refuse_the_event, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("informer", tests, NULL, NULL);
}
