/* Unit tests for applying a SandboxClass to a Sandbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "reconcile/class.h"
#include "reconcile/validate.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("%s: %s", e.text, text);
    return v;
}

static char *canonical(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    return s;
}

/* Found by fuzz_sandbox: the validator takes a JSON null as an absent
 * field, but class_apply took a null resources, lifetime or except for one
 * that is there, failed to write into it and returned -ENOMEM, so such a
 * Sandbox was retried for ever with no status. Null must shape exactly as
 * absent. */
static void null_fields_count_as_absent(void **state)
{
    (void)state;
    static const struct {
        const char *with_null, *without;
    } cases[] = {
        {"{\"image\":\"alpine\",\"resources\":null}", "{\"image\":\"alpine\"}"},
        {"{\"image\":\"alpine\",\"lifetime\":null}", "{\"image\":\"alpine\"}"},
        {"{\"image\":\"alpine\",\"egress\":{\"allow\":[{\"cidr\":\"0.0.0.0/0\",\"except\":null}]}}",
         "{\"image\":\"alpine\",\"egress\":{\"allow\":[{\"cidr\":\"0.0.0.0/0\"}]}}"},
    };
    json_t *cls = load("{\"maxLifetimeSeconds\":3600,\"defaultResources\":{\"cpu\":\"250m\"},"
                       "\"egress\":{\"deniedCIDRs\":[\"10.0.0.0/8\"]}}");
    for (size_t i = 0; i < N(cases); i++) {
        json_t *a = json_pack("{s:{s:s, s:s, s:s}, s:o}", "metadata", "name", "agent-42",
                              "namespace", "team-a", "uid", "u1", "spec", load(cases[i].with_null));
        json_t *b = json_pack("{s:{s:s, s:s, s:s}, s:o}", "metadata", "name", "agent-42",
                              "namespace", "team-a", "uid", "u1", "spec", load(cases[i].without));
        struct validation_error e;
        assert_int_equal(sandbox_validate(a, &e), 0);
        struct class_verdict va, vb;
        assert_int_equal(class_apply(a, cls, "small", &va), 0);
        assert_int_equal(class_apply(b, cls, "small", &vb), 0);
        char *ta = canonical(a), *tb = canonical(b);
        assert_string_equal(ta, tb);
        free(ta);
        free(tb);
        json_decref(a);
        json_decref(b);
    }
    json_decref(cls);
}

static void defaults_and_carved_ranges_are_filled_in(void **state)
{
    (void)state;
    json_t *cls = load("{\"maxLifetimeSeconds\":3600,\"defaultResources\":{\"cpu\":\"250m\"},"
                       "\"maxResources\":{\"memory\":\"512Mi\"},"
                       "\"egress\":{\"deniedCIDRs\":[\"10.0.0.0/8\",\"192.168.0.0/16\"]}}");
    json_t *s =
        load("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"image\":\"alpine\","
             "\"egress\":{\"allow\":[{\"cidr\":\"0.0.0.0/0\",\"except\":[\"10.0.0.0/8\"]}]}}}");
    struct class_verdict v;
    assert_int_equal(class_apply(s, cls, "small", &v), 0);
    assert_string_equal(v.reason, "");
    char *text = canonical(json_object_get(s, "spec"));
    /* cpu from the class, memory the built-in 1Gi lowered to the maximum,
     * the class's maximum lifetime, 192.168/16 carved out (10/8 once). */
    assert_string_equal(text, "{\"egress\":{\"allow\":[{\"cidr\":\"0.0.0.0/0\",\"except\":["
                              "\"10.0.0.0/8\",\"192.168.0.0/16\"]}]},\"image\":\"alpine\","
                              "\"lifetime\":{\"ttlSeconds\":3600},\"resources\":{\"cpu\":\"250m\","
                              "\"ephemeralStorage\":\"2Gi\",\"memory\":\"512Mi\"}}");
    free(text);
    json_decref(s);
    json_decref(cls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_fields_count_as_absent),
        cmocka_unit_test(defaults_and_carved_ranges_are_filled_in),
    };
    return cmocka_run_group_tests_name("class", tests, NULL, NULL);
}
