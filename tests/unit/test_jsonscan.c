// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the member strippers (managedFields, and a list of names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kube/jsonscan.h"

/* Strips in a copy and returns how many members went; out gets the text. */
static int strip(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    assert_true(n < outlen);
    memcpy(out, in, n + 1);
    int removed = jsonscan_strip_managed_fields(out, &n);
    assert_int_equal(strlen(out), n);
    return removed;
}

static void a_middle_member_goes_with_its_leading_comma(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(strip("{\"metadata\":{\"name\":\"a\",\"managedFields\":[{\"manager\":\"x\","
                           "\"fieldsV1\":{\"f:a\":{}}}],\"uid\":\"u\"}}",
                           out, sizeof(out)),
                     1);
    assert_string_equal(out, "{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"}}");
}

static void a_first_member_goes_with_its_trailing_comma(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(strip("{\"managedFields\" : [1,2] , \"b\":2}", out, sizeof(out)), 1);
    assert_string_equal(out, "{ \"b\":2}");
}

static void the_only_member_leaves_an_empty_object(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(strip("{\"m\":{\"managedFields\":[]}}", out, sizeof(out)), 1);
    assert_string_equal(out, "{\"m\":{}}");
}

static void a_last_member_goes_with_its_leading_comma(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(strip("{\"a\":1,\"managedFields\":null}", out, sizeof(out)), 1);
    assert_string_equal(out, "{\"a\":1}");
}

static void every_object_of_a_list_is_stripped(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(strip("{\"items\":[{\"metadata\":{\"managedFields\":[{}],\"name\":\"a\"}},"
                           "{\"metadata\":{\"name\":\"b\",\"managedFields\":[{\"x\":\"]}\"}]}}]}",
                           out, sizeof(out)),
                     2);
    assert_string_equal(
        out, "{\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}");
}

static void the_name_inside_a_string_value_is_left_alone(void **state)
{
    (void)state;
    char out[256];
    const char *in = "{\"msg\":\"\\\"managedFields\\\":[1]\",\"list\":[\"managedFields\",1]}";
    assert_int_equal(strip(in, out, sizeof(out)), 0);
    assert_string_equal(out, in);
}

static void a_value_holding_brackets_in_strings_is_skipped_whole(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(
        strip("{\"managedFields\":[{\"k\":\"}]{[\\\"\"}],\"z\":true}", out, sizeof(out)), 1);
    assert_string_equal(out, "{\"z\":true}");
}

static void malformed_text_is_left_for_the_parser(void **state)
{
    (void)state;
    char out[256];
    const char *cases[] = {
        "{\"managedFields\":[{\"a\":1}",
        "{\"managedFields\":",
        "{\"managedFields\"",
        "{\"managedFields\":\"unterminated",
        "",
        "\"",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(strip(cases[i], out, sizeof(out)), 0);
        assert_string_equal(out, cases[i]);
    }
}

static void members_named_in_a_list_go_at_any_depth(void **state)
{
    (void)state;
    static const char *const names[] = {"env", "securityContext", NULL};
    char out[256];
    const char *in = "{\"spec\":{\"securityContext\":{\"runAsUser\":1},\"containers\":[{"
                     "\"name\":\"env\",\"env\":[{\"name\":\"A\"}],\"envFrom\":[],"
                     "\"securityContext\":{}}]},\"e\\u006ev\":1}";
    size_t n = strlen(in);
    memcpy(out, in, n + 1);
    /* "env" as a value stays, "envFrom" is another name, and a name spelled
     * with an escape is not matched. */
    assert_int_equal(jsonscan_strip_members(out, &n, names), 3);
    assert_int_equal(strlen(out), n);
    assert_string_equal(out, "{\"spec\":{\"containers\":[{\"name\":\"env\",\"envFrom\":[]}]},"
                             "\"e\\u006ev\":1}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_middle_member_goes_with_its_leading_comma),
        cmocka_unit_test(a_first_member_goes_with_its_trailing_comma),
        cmocka_unit_test(the_only_member_leaves_an_empty_object),
        cmocka_unit_test(a_last_member_goes_with_its_leading_comma),
        cmocka_unit_test(every_object_of_a_list_is_stripped),
        cmocka_unit_test(the_name_inside_a_string_value_is_left_alone),
        cmocka_unit_test(a_value_holding_brackets_in_strings_is_skipped_whole),
        cmocka_unit_test(malformed_text_is_left_for_the_parser),
        cmocka_unit_test(members_named_in_a_list_go_at_any_depth),
    };
    return cmocka_run_group_tests_name("jsonscan", tests, NULL, NULL);
}
