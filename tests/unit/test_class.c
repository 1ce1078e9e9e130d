// SPDX-License-Identifier: Apache-2.0
/* Unit tests for applying a SandboxClass to a Sandbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
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

/* load() of text with single quotes for double ones. */
static json_t *parse(const char *text)
{
    char buf[512];
    size_t n = strlen(text);
    assert_true(n < sizeof(buf));
    for (size_t i = 0; i <= n; i++)
        buf[i] = text[i] == '\'' ? '"' : text[i];
    return load(buf);
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

/* The class's spec applied to a Sandbox whose egress.allow is allow (JSON
 * text); returns its canonical spec.egress text, or "violation: <message>". */
static char *egress_under(const char *cls_text, const char *allow)
{
    json_t *cls = load(cls_text);
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"image\":\"alpine\","
             "\"egress\":{\"allow\":%s}}}",
             allow);
    json_t *s = load(spec);
    struct class_verdict v;
    int rc = class_apply(s, cls, "small", &v);
    char *out;
    if (rc == -1) {
        size_t n = strlen(v.message) + 16;
        out = malloc(n);
        assert_non_null(out);
        snprintf(out, n, "violation: %s", v.message);
    } else {
        assert_int_equal(rc, 0);
        out = canonical(json_object_get(json_object_get(s, "spec"), "egress"));
    }
    json_decref(s);
    json_decref(cls);
    return out;
}

/* An IPv4 deniedCIDRs entry also holds against IPv6 allow blocks through
 * its NAT64 form (64:ff9b::/96): carved out of ::/0, and an allow block
 * inside it is a violation naming the form. IPv4 blocks are carved as
 * before, and an IPv6 block apart from 64:ff9b::/96 gets nothing. */
static void denied_ipv4_ranges_hold_through_nat64(void **state)
{
    (void)state;
    const char *cls = "{\"egress\":{\"deniedCIDRs\":[\"169.254.0.0/16\",\"10.0.0.0/8\"]}}";
    char *out = egress_under(cls, "[{\"cidr\":\"::/0\"},{\"cidr\":\"2001:db8::/32\"},"
                                  "{\"cidr\":\"0.0.0.0/0\"}]");
    assert_string_equal(out, "{\"allow\":[{\"cidr\":\"::/0\",\"except\":[\"64:ff9b::a9fe:0/"
                             "112\",\"64:ff9b::a00:0/104\"]},{\"cidr\":\"2001:db8::/32\"},"
                             "{\"cidr\":\"0.0.0.0/0\",\"except\":[\"169.254.0.0/16\","
                             "\"10.0.0.0/8\"]}]}");
    free(out);
    out = egress_under(cls, "[{\"cidr\":\"64:ff9b::a9fe:a9fe/128\"}]");
    assert_string_equal(out, "violation: spec.egress.allow[0].cidr: 64:ff9b::a9fe:a9fe/128 lies "
                             "inside 64:ff9b::a9fe:0/112 (the NAT64 form of a denied IPv4 range), "
                             "which SandboxClass small denies");
    free(out);
}

/* A deniedCIDRs entry the controller cannot read (the CRD refuses it, so
 * only a class written around the CRD has one) denies every allow block,
 * never none. */
static void an_unreadable_denied_entry_fails_closed(void **state)
{
    (void)state;
    static const char *const denied[] = {"::ffff:169.254.169.254/128", "not-a-cidr", "10.0.0.0"};
    for (size_t i = 0; i < N(denied); i++) {
        char cls[256];
        snprintf(cls, sizeof(cls), "{\"egress\":{\"deniedCIDRs\":[\"10.0.0.0/8\",\"%s\"]}}",
                 denied[i]);
        char *out = egress_under(cls, "[{\"cidr\":\"203.0.113.0/24\"}]");
        assert_string_equal(out, "violation: spec.egress.deniedCIDRs[1] of SandboxClass small is "
                                 "not a CIDR kage reads (an IPv4-mapped or malformed block); no "
                                 "egress is allowed under it until the class is fixed");
        free(out);
    }
}

/* The class's pull policy fills in a Sandbox's missing one; Always is
 * always allowed; another is a violation naming both. */
static void the_class_image_pull_policy_holds(void **state)
{
    (void)state;
    static const struct {
        const char *cls, *asked,
            *want; /* want: the policy after, or (with a space) the violation */
    } cases[] = {
        {"{'imagePullPolicy':'Always'}", NULL, "Always"},
        {"{'imagePullPolicy':'Always'}", "Always", "Always"},
        {"{'imagePullPolicy':'Always'}", "IfNotPresent",
         "spec.imagePullPolicy: IfNotPresent is not allowed by SandboxClass small, which pulls "
         "images with Always"},
        {"{'imagePullPolicy':'Always'}", "Never",
         "spec.imagePullPolicy: Never is not allowed by SandboxClass small"},
        {"{'imagePullPolicy':'IfNotPresent'}", "Always", "Always"},
        {"{'imagePullPolicy':'Never'}", NULL, "Never"},
        {"{}", "Never", "Never"},
        {"{}", NULL, NULL},
        {"{'imagePullPolicy':'Sometimes'}", NULL,
         "spec.imagePullPolicy of SandboxClass small must be Always, IfNotPresent or Never; no "
         "sandbox of this class runs until it is fixed"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char text[256];
        json_t *cls = parse(cases[i].cls);
        snprintf(text, sizeof(text), "{'metadata':{'name':'a'},'spec':{'image':'alpine'%s%s%s}}",
                 cases[i].asked ? ",'imagePullPolicy':'" : "", cases[i].asked ? cases[i].asked : "",
                 cases[i].asked ? "'" : "");
        json_t *s = parse(text);
        struct class_verdict v;
        int rc = class_apply(s, cls, "small", &v);
        const char *got =
            json_string_value(json_object_get(json_object_get(s, "spec"), "imagePullPolicy"));
        if (cases[i].want && strchr(cases[i].want, ' ')) {
            assert_int_equal(rc, -1);
            assert_string_equal(v.reason, "PolicyViolation");
            if (strncmp(v.message, cases[i].want, strlen(cases[i].want)) != 0)
                fail_msg("case %zu: %s", i, v.message);
        } else {
            assert_int_equal(rc, 0);
            if (cases[i].want)
                assert_string_equal(got ? got : "(none)", cases[i].want);
            else
                assert_null(got);
        }
        json_decref(s);
        json_decref(cls);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_fields_count_as_absent),
        cmocka_unit_test(defaults_and_carved_ranges_are_filled_in),
        cmocka_unit_test(denied_ipv4_ranges_hold_through_nat64),
        cmocka_unit_test(an_unreadable_denied_entry_fails_closed),
        cmocka_unit_test(the_class_image_pull_policy_holds),
    };
    return cmocka_run_group_tests_name("class", tests, NULL, NULL);
}
