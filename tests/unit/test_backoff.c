// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the backoff arithmetic and its PRNG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "kube/backoff.h"

#define MIN_MS 60000u
#define QMAX   (5u * 60 * 1000)

static void delay_doubles_from_base_with_equal_jitter(void **state)
{
    (void)state;
    /* d = 5 ms: ceil(d/2) = 3 fixed, floor(d/2) = 2 spread by the draw. */
    assert_int_equal(backoff_delay_ms(0, 5, QMAX, 0.0), 3);
    assert_int_equal(backoff_delay_ms(0, 5, QMAX, 0.5), 4);
    assert_int_equal(backoff_delay_ms(0, 5, QMAX, 1.0), 5);
    assert_int_equal(backoff_delay_ms(1, 5, QMAX, 0.0), 5);
    assert_int_equal(backoff_delay_ms(1, 5, QMAX, 1.0), 10);
    /* 5 * 2^10 = 5120 */
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 0.0), 2560);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 0.25), 3200);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 0.5), 3840);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 0.999999), 5119);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 1.0), 5120);
}

static void delay_is_capped_at_max(void **state)
{
    (void)state;
    /* 5 * 2^16 = 327680 > 300000 */
    assert_int_equal(backoff_delay_ms(16, 5, QMAX, 1.0), QMAX);
    assert_int_equal(backoff_delay_ms(16, 5, QMAX, 0.0), QMAX / 2);
    assert_int_equal(backoff_delay_ms(15, 5, QMAX, 1.0), 163840);
    /* A base above the cap is the cap. */
    assert_int_equal(backoff_delay_ms(0, 10 * MIN_MS, MIN_MS, 1.0), MIN_MS);
}

static void no_attempt_count_overflows(void **state)
{
    (void)state;
    unsigned attempts[] = {31, 32, 33, 62, 63, 64, 65, 1000, 4096, UINT32_MAX};
    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        assert_int_equal(backoff_delay_ms(attempts[i], 5, QMAX, 1.0), QMAX);
        assert_int_equal(backoff_delay_ms(attempts[i], 5, QMAX, 0.0), QMAX / 2);
    }
    /* The whole uint64_t range: 1 << 63 fits, 1 << 64 is capped. */
    assert_true(backoff_delay_ms(63, 1, UINT64_MAX, 1.0) == UINT64_C(1) << 63);
    assert_true(backoff_delay_ms(64, 1, UINT64_MAX, 1.0) == UINT64_MAX);
    assert_true(backoff_delay_ms(64, 1, UINT64_MAX, 0.0) == UINT64_C(1) << 63);
    assert_true(backoff_delay_ms(1000, UINT64_MAX, UINT64_MAX, 0.75) >= UINT64_C(1) << 63);
    assert_true(backoff_delay_ms(3, UINT64_MAX / 3, UINT64_MAX, 1.0) == UINT64_MAX);
}

static void zero_base_or_max_means_no_delay(void **state)
{
    (void)state;
    assert_int_equal(backoff_delay_ms(3, 0, QMAX, 1.0), 0);
    assert_int_equal(backoff_delay_ms(3, 5, 0, 1.0), 0);
    assert_int_equal(backoff_delay_ms(0, 1, 1, 0.0), 1);
}

static void jitter_outside_0_1_is_clamped(void **state)
{
    (void)state;
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, -3.0), 2560);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, 7.0), 5120);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, NAN), 2560);
    assert_int_equal(backoff_delay_ms(10, 5, QMAX, INFINITY), 5120);
}

static void delays_never_shrink_whatever_the_draws(void **state)
{
    (void)state;
    /* With doubling and equal jitter, the shortest delay of attempt n+1 is
     * the longest of attempt n, so any draws give a non-decreasing series
     * up to the cap (5 * 2^15 < 300000 < 5 * 2^16); past it, every delay
     * lies in [max/2, max]. */
    uint64_t rng = 42;
    for (int run = 0; run < 100; run++) {
        uint64_t prev = 0;
        for (unsigned a = 0; a <= 15; a++) {
            uint64_t d = backoff_delay_ms(a, 5, QMAX, backoff_rand(&rng));
            assert_true(d >= prev);
            assert_true(d >= (UINT64_C(5) << a) / 2 && d <= UINT64_C(5) << a);
            prev = d;
        }
        for (unsigned a = 16; a < 40; a++) {
            uint64_t d = backoff_delay_ms(a, 5, QMAX, backoff_rand(&rng));
            assert_true(d >= QMAX / 2 && d <= QMAX);
        }
    }
}

static void retry_after_wins_over_backoff(void **state)
{
    (void)state;
    assert_int_equal(kube_retry_delay_ms(7, 3, 0.0), 3000);
    assert_int_equal(kube_retry_delay_ms(7, 3, 0.5), 3500);
    assert_int_equal(kube_retry_delay_ms(0, 0, 0.25), 250);
    assert_int_equal(kube_retry_delay_ms(0, 120, 1.0), 121000);
    /* Capped, jitter included. */
    assert_int_equal(kube_retry_delay_ms(0, 599, 1.0), KUBE_RETRY_AFTER_MAX_MS);
    assert_int_equal(kube_retry_delay_ms(0, 600, 0.0), KUBE_RETRY_AFTER_MAX_MS);
    assert_int_equal(kube_retry_delay_ms(0, 86400L * 365, 0.0), KUBE_RETRY_AFTER_MAX_MS);
}

static void without_retry_after_api_retries_back_off(void **state)
{
    (void)state;
    assert_int_equal(kube_retry_delay_ms(0, -1, 0.0), KUBE_RETRY_BASE_MS / 2);
    assert_int_equal(kube_retry_delay_ms(0, -1, 1.0), KUBE_RETRY_BASE_MS);
    assert_int_equal(kube_retry_delay_ms(2, -1, 1.0), 4 * KUBE_RETRY_BASE_MS);
    assert_int_equal(kube_retry_delay_ms(100, -1, 1.0), KUBE_RETRY_MAX_MS);
    assert_int_equal(kube_retry_delay_ms(100, -1, 0.0), KUBE_RETRY_MAX_MS / 2);
}

static void rand_is_splitmix64_and_seeded(void **state)
{
    (void)state;
    /* The first splitmix64 output for seed 0 is 0xE220A8397B1DCDAF. */
    uint64_t s = 0;
    assert_true(backoff_rand(&s) == (double)(UINT64_C(0xE220A8397B1DCDAF) >> 11) * 0x1.0p-53);

    uint64_t a = 12345, b = 12345, c = 54321;
    int differs = 0;
    for (int i = 0; i < 100; i++) {
        double x = backoff_rand(&a);
        assert_true(x == backoff_rand(&b));
        differs += x != backoff_rand(&c);
    }
    assert_true(differs > 90);
}

static void rand_draws_are_uniform_in_0_1(void **state)
{
    (void)state;
    uint64_t s = 7;
    int buckets[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double x = backoff_rand(&s);
        assert_true(x >= 0.0 && x < 1.0);
        buckets[(int)(x * 10)]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(buckets[i] > 9500 && buckets[i] < 10500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delay_doubles_from_base_with_equal_jitter),
        cmocka_unit_test(delay_is_capped_at_max),
        cmocka_unit_test(no_attempt_count_overflows),
        cmocka_unit_test(zero_base_or_max_means_no_delay),
        cmocka_unit_test(jitter_outside_0_1_is_clamped),
        cmocka_unit_test(delays_never_shrink_whatever_the_draws),
        cmocka_unit_test(retry_after_wins_over_backoff),
        cmocka_unit_test(without_retry_after_api_retries_back_off),
        cmocka_unit_test(rand_is_splitmix64_and_seeded),
        cmocka_unit_test(rand_draws_are_uniform_in_0_1),
    };
    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
