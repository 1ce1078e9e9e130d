// SPDX-License-Identifier: Apache-2.0
/* Unit tests for resource quantities: every suffix family, exponents,
 * fractions rounded up to the milli, the int64 edges, and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reconcile/quantity.h"

struct good {
    const char *in;
    int64_t milli;
};

static void check_good(const struct good *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t m = 0x5a5a;
        int rc = quantity_parse_milli(cases[i].in, &m);
        if (rc != 0 || m != cases[i].milli)
            print_error("\"%s\": rc %d, milli %lld, want %lld\n", cases[i].in, rc, (long long)m,
                        (long long)cases[i].milli);
        assert_int_equal(rc, 0);
        assert_true(m == cases[i].milli);
    }
}

static void check_bad(const char *const *cases, size_t n, int want)
{
    for (size_t i = 0; i < n; i++) {
        int64_t m = 0x5a5a;
        int rc = quantity_parse_milli(cases[i], &m);
        if (rc != want)
            print_error("\"%s\": rc %d, want %d\n", cases[i], rc, want);
        assert_int_equal(rc, want);
        assert_true(m == 0x5a5a); /* untouched on failure */
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void plain_numbers_are_whole_units(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"0", 0},
        {"1", 1000},
        {"2", 2000},
        {"+1", 1000},
        {"007", 7000},
        {"1.5", 1500},
        {"0.1", 100},
        {".5", 500},
        {"1.", 1000},
        {"-0", 0},
        {"0.000", 0},
        {"1.000000000000000000000", 1000},
        {"123456", 123456000},
    };
    check_good(cases, N(cases));
}

static void decimal_si_suffixes_scale_by_powers_of_ten(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"500m", 500},
        {"1m", 1},
        {"1000m", 1000},
        {"2500000u", 2500},
        {"3000000000n", 3000},
        {"1k", 1000000},
        {"1.5k", 1500000},
        {"1M", 1000000000},
        {"1G", 1000000000000},
        {"1T", 1000000000000000},
        {"1P", 1000000000000000000},
        {"9P", 9000000000000000000},
    };
    check_good(cases, N(cases));
}

static void binary_si_suffixes_scale_by_powers_of_1024(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"1Ki", 1024000},
        {"1Mi", 1048576000},
        {"1Gi", 1073741824000},
        {"1.5Gi", 1610612736000},
        {"2Ti", 2199023255552000},
        {"1Pi", 1125899906842624000},
        {"8.19Pi", 9221120237041090560},  /* 819 * 2^50 * 10, exact */
        {"0.007Ei", 8070450532247928832}, /* 7 * 2^60 */
        {"0.1Ki", 102400},                /* 102.4 bytes */
        {"0.001Ki", 1024},
    };
    check_good(cases, N(cases));
}

static void decimal_exponents(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"1e3", 1000000},
        {"1E3", 1000000},
        {"1e+3", 1000000},
        {"1e0", 1000},
        {"1.5e3", 1500000},
        {"5e-1", 500},
        {"1e-3", 1},
        {"12E-3", 12},
        {"1e15", INT64_C(1000000000000000000)},
        {"0e999999999999999999", 0},
        {"25e-2", 250},
    };
    check_good(cases, N(cases));
}

static void fractions_of_a_milli_round_up(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"1n", 1},
        {"1u", 1},
        {"999999n", 1},
        {"1000001n", 2},
        {"1500000n", 2},
        {"0.1m", 1},
        {"1.0001", 1001},
        {"0.0000001Ki", 1}, /* 0.1024 milli */
        {"1e-4", 1},
        {"1e-99999999999999999999", 1},
        {"0.000000000000000000000000000000000000000000000000001", 1},
        {"1.000000000000000000000000000000000000000000000000001", 1001},
    };
    check_good(cases, N(cases));
}

static void negative_quantities_round_away_from_zero(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"-1", -1000}, {"-500m", -500}, {"-1Ki", -1024000},
        {"-.5", -500}, {"-1n", -1},     {"-1.0001", -1001},
    };
    check_good(cases, N(cases));
}

static void the_int64_edges_are_exact(void **state)
{
    (void)state;
    static const struct good cases[] = {
        {"9223372036854775807m", INT64_MAX},
        {"9223372036854775.807", INT64_MAX},
        {"9223372036854775.8069", INT64_MAX}, /* rounds up onto the edge */
        {"-9223372036854775808m", INT64_MIN},
        {"-9223372036854775.808", INT64_MIN},
        {"0000000000000000000000000000009223372036854775807m", INT64_MAX},
    };
    check_good(cases, N(cases));
}

static void values_beyond_int64_milli_are_out_of_range(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "9223372036854775808m",
        "9223372036854775.8071",
        "-9223372036854775809m",
        "9223372036854776",
        "10P",
        "1E",
        "1Ei",
        "8.2Pi",
        "8389Ti",
        "1e16",
        "1e99999999999999999999",
        "100000000000000000000000000000000000000000000n",
        "-1e300",
    };
    check_bad(cases, N(cases), -ERANGE);
}

static void garbage_is_not_a_quantity(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",     " 1",   "1 ",  "1 Gi", "\t1", "1.2.3",        "1Gb", "1K",
        "1ki",  "1gi",  "1KI", "++1",  "+-1", "--1",          ".",   "-",
        "+",    "m",    "Gi",  "e3",   "1e",  "1e+",          "1e-", "1e1.5",
        "1e3m", "1Gi1", "1mm", "0x10", "1,5", "1_000",        "1E+", "NaN",
        "inf",  "1/2",  "1i",  "1Ki ", "1\n", "\xef\xbc\x91", "..5", "1..",
    };
    check_bad(cases, N(cases), -EINVAL);

    int64_t m = 7;
    assert_int_equal(quantity_parse_milli(NULL, &m), -EINVAL);
    assert_true(m == 7);
}

static void comparison_is_by_value(void **state)
{
    (void)state;
    int out = 9;
    assert_int_equal(quantity_cmp("1Gi", "1073741824", &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(quantity_cmp("1000m", "1", &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(quantity_cmp("500m", "1", &out), 0);
    assert_int_equal(out, -1);
    assert_int_equal(quantity_cmp("2", "1999m", &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(quantity_cmp("1Gi", "1G", &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(quantity_cmp("-1", "0", &out), 0);
    assert_int_equal(out, -1);

    out = 9;
    assert_int_equal(quantity_cmp("1Gb", "1", &out), -EINVAL);
    assert_int_equal(quantity_cmp("1", "1Gb", &out), -EINVAL);
    assert_int_equal(quantity_cmp("1", "1Ei", &out), -ERANGE);
    assert_int_equal(out, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_numbers_are_whole_units),
        cmocka_unit_test(decimal_si_suffixes_scale_by_powers_of_ten),
        cmocka_unit_test(binary_si_suffixes_scale_by_powers_of_1024),
        cmocka_unit_test(decimal_exponents),
        cmocka_unit_test(fractions_of_a_milli_round_up),
        cmocka_unit_test(negative_quantities_round_away_from_zero),
        cmocka_unit_test(the_int64_edges_are_exact),
        cmocka_unit_test(values_beyond_int64_milli_are_out_of_range),
        cmocka_unit_test(garbage_is_not_a_quantity),
        cmocka_unit_test(comparison_is_by_value),
    };
    return cmocka_run_group_tests_name("quantity", tests, NULL, NULL);
}
