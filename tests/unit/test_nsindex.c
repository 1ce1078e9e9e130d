// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the index of Sandbox keys by namespace: a namespace's walk
 * sees exactly its own keys, however many other namespaces hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nsindex.h"

struct seen {
    char keys[8][64];
    size_t n;
};

static void collect(void *arg, const char *key)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
}

static size_t walk(const struct nsindex *x, const char *ns, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    return nsindex_foreach(x, ns, strlen(ns), collect, s);
}

static void a_namespace_walk_sees_its_own_keys_in_name_order(void **state)
{
    (void)state;
    struct nsindex *x = nsindex_new();
    assert_non_null(x);
    /* "team" is a prefix of "team-a"; "team-a/b" sorts before "team/a". */
    const char *keys[] = {"team-a/zeta", "team/a", "team-a/alpha", "team-b/x", "team-a/mid"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(nsindex_add(x, keys[i]), 0);
    assert_true(nsindex_complete(x));

    struct seen s;
    assert_int_equal(walk(x, "team-a", &s), 3);
    assert_string_equal(s.keys[0], "team-a/alpha");
    assert_string_equal(s.keys[1], "team-a/mid");
    assert_string_equal(s.keys[2], "team-a/zeta");
    assert_int_equal(walk(x, "team", &s), 1);
    assert_string_equal(s.keys[0], "team/a");
    assert_int_equal(walk(x, "team-", &s), 0);
    assert_int_equal(walk(x, "nobody", &s), 0);
    assert_int_equal(s.n, 0);

    /* The namespace need not be terminated: a key's prefix serves. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(nsindex_foreach(x, "team-b/x", 6, collect, &s), 1);
    assert_string_equal(s.keys[0], "team-b/x");
    nsindex_free(x);
}

static void adds_are_kept_once_and_removes_empty_a_namespace(void **state)
{
    (void)state;
    struct nsindex *x = nsindex_new();
    assert_non_null(x);
    assert_int_equal(nsindex_add(x, "ns/a"), 0);
    assert_int_equal(nsindex_add(x, "ns/a"), 0);
    assert_int_equal(nsindex_add(x, "ns/b"), 0);

    struct seen s;
    nsindex_remove(x, "ns/a");
    nsindex_remove(x, "ns/a");     /* unknown now: ignored */
    nsindex_remove(x, "other/a");  /* unknown namespace */
    nsindex_remove(x, "no-slash"); /* not a key */
    assert_int_equal(walk(x, "ns", &s), 1);
    assert_string_equal(s.keys[0], "ns/b");

    nsindex_remove(x, "ns/b");
    assert_int_equal(walk(x, "ns", &s), 0);

    /* Back again after it was emptied. */
    assert_int_equal(nsindex_add(x, "ns/c"), 0);
    assert_int_equal(walk(x, "ns", &s), 1);
    assert_string_equal(s.keys[0], "ns/c");
    nsindex_free(x);
}

static void keys_without_a_namespace_are_refused(void **state)
{
    (void)state;
    struct nsindex *x = nsindex_new();
    assert_non_null(x);
    assert_int_equal(nsindex_add(x, "cluster-scoped"), -EINVAL);
    assert_int_equal(nsindex_add(x, "/name"), -EINVAL);
    assert_true(nsindex_complete(x)); /* a refusal loses nothing */
    nsindex_free(x);
    nsindex_free(NULL);
}

/* 200 namespaces of 5: a walk costs its namespace, and every key is seen
 * exactly once across the walks. */
static void many_namespaces_walk_apart(void **state)
{
    (void)state;
    struct nsindex *x = nsindex_new();
    assert_non_null(x);
    char key[64];
    for (int ns = 0; ns < 200; ns++)
        for (int i = 0; i < 5; i++) {
            snprintf(key, sizeof(key), "ns-%03d/sbx-%d", ns, i);
            assert_int_equal(nsindex_add(x, key), 0);
        }
    struct seen s;
    for (int ns = 0; ns < 200; ns++) {
        char name[16];
        snprintf(name, sizeof(name), "ns-%03d", ns);
        assert_int_equal(walk(x, name, &s), 5);
        for (int i = 0; i < 5; i++) {
            snprintf(key, sizeof(key), "ns-%03d/sbx-%d", ns, i);
            assert_string_equal(s.keys[i], key);
        }
    }
    nsindex_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_namespace_walk_sees_its_own_keys_in_name_order),
        cmocka_unit_test(adds_are_kept_once_and_removes_empty_a_namespace),
        cmocka_unit_test(keys_without_a_namespace_are_refused),
        cmocka_unit_test(many_namespaces_walk_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
