// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the budget of bytes in flight: shares granted at once
 * while they fit, a line served in order as shares come back, and a
 * share larger than the whole budget that still goes, alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "budget.h"

struct line {
    struct budget *b;
    char order[16]; /* the names granted, in order */
    size_t n;
    size_t give_back; /* a grant that gives back at once (its send failed) */
};

struct user {
    struct line *l;
    char name;
    size_t bytes;
};

static void granted(void *arg)
{
    struct user *u = arg;
    u->l->order[u->l->n++] = u->name;
    if (u->bytes == u->l->give_back)
        budget_give(u->l->b, u->bytes);
}

static void shares_that_fit_go_at_once_and_the_rest_wait_in_order(void **state)
{
    (void)state;
    struct budget b;
    struct line l = {&b, "", 0, 0};
    struct user a = {&l, 'a', 3}, c = {&l, 'c', 2}, d = {&l, 'd', 1}, e = {&l, 'e', 5};
    budget_init(&b, 5);
    assert_int_equal(budget_take(&b, 3, granted, &a), 1);
    assert_int_equal(budget_take(&b, 2, granted, &c), 1);
    assert_int_equal(b.used, 5);
    /* Full: d waits, and e behind it, though d alone would fit later. */
    assert_int_equal(budget_take(&b, 1, granted, &d), 0);
    assert_int_equal(budget_take(&b, 5, granted, &e), 0);
    assert_int_equal(b.waiting, 2);
    budget_give(&b, 2);
    assert_string_equal(l.order, "d");
    assert_int_equal(b.used, 4);
    /* Nobody passes e while it waits, not even a share that fits. */
    assert_int_equal(budget_take(&b, 1, granted, &c), 0);
    budget_give(&b, 3);
    assert_string_equal(l.order, "d");
    budget_give(&b, 1);
    assert_string_equal(l.order, "de");
    assert_int_equal(b.used, 5);
    budget_give(&b, 5);
    assert_string_equal(l.order, "dec");
    budget_give(&b, 1);
    assert_int_equal(b.used, 0);
    assert_int_equal(b.waiting, 0);
    budget_free(&b);
}

static void a_share_larger_than_the_budget_goes_alone(void **state)
{
    (void)state;
    struct budget b;
    struct line l = {&b, "", 0, 0};
    struct user big = {&l, 'B', 100}, small = {&l, 's', 1};
    budget_init(&b, 10);
    assert_int_equal(budget_take(&b, 100, granted, &big), 1);
    assert_int_equal(b.used, 10); /* counted as the whole budget */
    assert_int_equal(budget_take(&b, 1, granted, &small), 0);
    budget_give(&b, 100);
    assert_string_equal(l.order, "s");
    assert_int_equal(b.used, 1);
    /* It waits for the whole budget, then goes. */
    assert_int_equal(budget_take(&b, 100, granted, &big), 0);
    budget_give(&b, 1);
    assert_string_equal(l.order, "sB");
    budget_give(&b, 100);
    assert_int_equal(b.used, 0);
    budget_free(&b);
}

/* A grant whose request cannot be sent gives its share back inside the
 * grant: the next in line is served, the line stays whole. */
static void a_share_given_back_inside_its_grant_serves_the_next(void **state)
{
    (void)state;
    struct budget b;
    struct line l = {&b, "", 0, 4};
    struct user a = {&l, 'a', 3}, f = {&l, 'f', 4}, g = {&l, 'g', 3};
    budget_init(&b, 5);
    assert_int_equal(budget_take(&b, 3, granted, &a), 1);
    assert_int_equal(budget_take(&b, 4, granted, &f), 0);
    assert_int_equal(budget_take(&b, 3, granted, &g), 0);
    budget_give(&b, 3);
    assert_string_equal(l.order, "fg");
    assert_int_equal(b.used, 3);
    assert_int_equal(b.waiting, 0);
    budget_give(&b, 3);
    assert_int_equal(b.used, 0);
    budget_free(&b);
}

static void those_left_in_line_are_freed(void **state)
{
    (void)state;
    struct budget b;
    struct line l = {&b, "", 0, 0};
    struct user a = {&l, 'a', 2};
    budget_init(&b, 2);
    assert_int_equal(budget_take(&b, 2, granted, &a), 1);
    assert_int_equal(budget_take(&b, 2, granted, &a), 0);
    assert_int_equal(budget_take(&b, 2, granted, &a), 0);
    budget_free(&b);
    assert_int_equal(b.waiting, 0);
    assert_null(b.first);
    assert_int_equal(l.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shares_that_fit_go_at_once_and_the_rest_wait_in_order),
        cmocka_unit_test(a_share_larger_than_the_budget_goes_alone),
        cmocka_unit_test(a_share_given_back_inside_its_grant_serves_the_next),
        cmocka_unit_test(those_left_in_line_are_freed),
    };
    return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
