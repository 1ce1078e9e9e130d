// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the policy gate in a sandbox's pod: which pods get the
 * init container kage-gate (not when the class turns it off, nor when the
 * egress allow list, as the class carved it, reaches the canary), its
 * exact shape, and the pod form digest that covers it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/class.h"
#include "reconcile/gate.h"
#include "reconcile/observed.h"
#include "reconcile/render.h"
#include "reconcile/validate.h"

#include "json_expect.h"

#define META                                                                             \
    "'metadata':{'name':'agent-42','namespace':'team-a','uid':'7d2f4a1e-9c3b-4f6d-8e21-" \
    "5a0b9c8d7e6f','generation':3}"
#define SANDBOX(fields) \
    "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox'," META ",'spec':{" fields "}}"
#define IMAGE      "'image':'python:3.12-slim'"
#define GATE_IMAGE "localhost/kage-controller:0.1.0"

static const struct gate_config in_cluster = {GATE_IMAGE, "10.96.0.1", 443};
static const struct gate_config unknown_canary = {GATE_IMAGE, "", 0};

/* The Sandbox of text, validated and shaped by class (text, may be NULL)
 * as a reconcile does before rendering. */
static json_t *shaped(const char *text, json_t *cls)
{
    json_t *s = parse(text);
    struct validation_error err;
    struct class_verdict v;
    if (sandbox_validate(s, &err) != 0)
        fail_msg("test sandbox is invalid: %s: %s", err.field, err.message);
    if (class_apply(s, cls, cls ? "small" : NULL, &v) != 0)
        fail_msg("test sandbox breaks its class: %s", v.message);
    return s;
}

static enum gate_choice choice(const char *text, const char *class_text,
                               const struct gate_config *g)
{
    json_t *cls = class_text ? parse(class_text) : NULL;
    json_t *s = shaped(text, cls);
    enum gate_choice c = gate_choose(s, cls, g);
    json_decref(s);
    json_decref(cls);
    return c;
}

static json_t *pod(const char *text, const char *class_text, const struct gate_config *g)
{
    json_t *cls = class_text ? parse(class_text) : NULL;
    json_t *s = shaped(text, cls);
    const struct render_opts o = {.runtime_class = "kata-fc", .class_spec = cls, .gate = g};
    json_t *p = render_pod(s, &o);
    json_decref(s);
    json_decref(cls);
    assert_non_null(p);
    return p;
}

#define HARDENED                                                              \
    "'securityContext':{'allowPrivilegeEscalation':false,'privileged':false," \
    "'runAsNonRoot':true,'capabilities':{'drop':['ALL']},"                    \
    "'seccompProfile':{'type':'RuntimeDefault'}}"
#define AMOUNTS(c, m, e) "{'cpu':'" c "','memory':'" m "','ephemeral-storage':'" e "'}"
#define GATE(pull, c, m, e)                                                        \
    "[{'name':'kage-gate','image':'" GATE_IMAGE "','imagePullPolicy':'" pull "',"  \
    "'command':['/kage-gate','--deadline','60'],'resources':{'requests':" AMOUNTS( \
        c, m, e) ","                                                               \
                 "'limits':" AMOUNTS(                                              \
                     c, m, e) "},'terminationMessagePath':'/dev/termination-log'," \
                              "'terminationMessagePolicy':'FallbackToLogsOnError'," HARDENED "}]"

static void a_sandbox_without_allow_entries_waits_for_its_policy(void **state)
{
    (void)state;
    json_t *with =
        pod(SANDBOX(IMAGE ",'resources':{'cpu':'500m','memory':'256Mi'}"), NULL, &in_cluster);
    json_t *spec = json_object_get(with, "spec");
    /* The sandbox's resources and hardening, exactly: the pod's effective
     * requests stay the sandbox's, and restricted Pod Security admits it. */
    expect_json(json_incref(json_object_get(spec, "initContainers")),
                parse(GATE("IfNotPresent", "500m", "256Mi", "2Gi")), "gate");

    /* Everything else is the pod without the gate; the digest differs. */
    json_t *without =
        pod(SANDBOX(IMAGE ",'resources':{'cpu':'500m','memory':'256Mi'}"), NULL, NULL);
    assert_string_not_equal(render_pod_hash(with), render_pod_hash(without));
    json_t *rest = json_deep_copy(with);
    json_object_del(json_object_get(rest, "spec"), "initContainers");
    json_object_del(json_object_get(json_object_get(rest, "metadata"), "annotations"),
                    ANNOT_SPEC_HASH);
    json_object_del(json_object_get(json_object_get(without, "metadata"), "annotations"),
                    ANNOT_SPEC_HASH);
    expect_json(rest, without, "the rest of the pod");
    json_decref(with);
}

static void the_class_turns_the_gate_off(void **state)
{
    (void)state;
    const char *off = "{'egress':{'policyGate':'Disabled'}}";
    assert_int_equal(choice(SANDBOX(IMAGE), off, &in_cluster), GATE_DISABLED);
    json_t *p = pod(SANDBOX(IMAGE), off, &in_cluster);
    assert_null(json_object_get(json_object_get(p, "spec"), "initContainers"));
    json_decref(p);
    /* Required is the default; a value the CRD would refuse keeps it. */
    assert_int_equal(choice(SANDBOX(IMAGE), "{'egress':{'policyGate':'Required'}}", &in_cluster),
                     GATE_ADD);
    assert_int_equal(choice(SANDBOX(IMAGE), "{'egress':{'policyGate':'Off'}}", &in_cluster),
                     GATE_ADD);
    /* A controller without a gate image renders none. */
    assert_int_equal(choice(SANDBOX(IMAGE), NULL, NULL), GATE_UNCONFIGURED);
}

static void an_allow_list_that_reaches_the_canary_gets_no_gate(void **state)
{
    (void)state;
    /* Every address and port. */
    const char *all = SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'0.0.0.0/0'}]}");
    assert_int_equal(choice(all, NULL, &in_cluster), GATE_COVERED);
    json_t *p = pod(all, NULL, &in_cluster);
    assert_null(json_object_get(json_object_get(p, "spec"), "initContainers"));
    json_decref(p);
    /* The service range with the API's port in a range. */
    assert_int_equal(choice(SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'10.96.0.0/16',"
                                          "'ports':[{'port':400,'endPort':500}]}]}"),
                            NULL, &in_cluster),
                     GATE_COVERED);
    /* Out of the cluster the canary is unknown: the gate is added. */
    assert_int_equal(choice(all, NULL, &unknown_canary), GATE_ADD);
}

static void an_allow_list_that_misses_the_canary_keeps_the_gate(void **state)
{
    (void)state;
    static const char *const misses[] = {
        SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'203.0.113.0/24'}]}"),
        SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'10.96.0.0/16','ports':[{'port':80}]}]}"),
        SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'10.96.0.0/16',"
                      "'ports':[{'port':443,'protocol':'UDP'}]}]}"),
        SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'10.0.0.0/8','except':['10.96.0.0/12']}]}"),
        SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'::/0'}]}"),
    };
    for (size_t i = 0; i < sizeof(misses) / sizeof(*misses); i++)
        assert_int_equal(choice(misses[i], NULL, &in_cluster), GATE_ADD);
    /* The class's deniedCIDRs are carved out first: 10.0.0.0/8 less the
     * service range does not reach the API service. */
    const char *wide = SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'10.0.0.0/8'}]}");
    assert_int_equal(choice(wide, NULL, &in_cluster), GATE_COVERED);
    assert_int_equal(choice(wide, "{'egress':{'deniedCIDRs':['10.96.0.0/12']}}", &in_cluster),
                     GATE_ADD);
    /* The DNS rule selects kube-dns pods, never the API service. */
    assert_int_equal(choice(SANDBOX(IMAGE ",'egress':{'dns':true}"), NULL, &in_cluster), GATE_ADD);
    /* An IPv6 API service, reached or not. */
    const struct gate_config v6 = {GATE_IMAGE, "fd00:10:96::1", 443};
    assert_int_equal(choice(SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'fd00::/8'}]}"), NULL, &v6),
                     GATE_COVERED);
    assert_int_equal(choice(SANDBOX(IMAGE ",'egress':{'allow':[{'cidr':'0.0.0.0/0'}]}"), NULL, &v6),
                     GATE_ADD);
}

static void the_gate_pulls_as_the_class_says(void **state)
{
    (void)state;
    json_t *p = pod(SANDBOX(IMAGE), "{'imagePullPolicy':'Always'}", &in_cluster);
    expect_json(json_incref(json_object_get(json_object_get(p, "spec"), "initContainers")),
                parse(GATE("Always", "1", "1Gi", "2Gi")), "Always");
    json_decref(p);
}

/* Drift: a gate removed, or its image changed, from outside shows in the
 * live pod's form digest. */
static void the_pod_form_digest_covers_the_gate(void **state)
{
    (void)state;
    json_t *p = pod(SANDBOX(IMAGE), NULL, &in_cluster);
    char rendered[SPEC_HASH_LEN + 1], edited[SPEC_HASH_LEN + 1];
    assert_int_equal(observed_pod_form_hash(p, rendered), 0);
    json_t *gate = json_array_get(json_object_get(json_object_get(p, "spec"), "initContainers"), 0);
    json_object_set_new(gate, "image", json_string("attacker/nop:1"));
    assert_int_equal(observed_pod_form_hash(p, edited), 0);
    assert_string_not_equal(rendered, edited);
    json_object_del(json_object_get(p, "spec"), "initContainers");
    assert_int_equal(observed_pod_form_hash(p, edited), 0);
    assert_string_not_equal(rendered, edited);
    json_decref(p);
}

/* The gate's state as the pod cache keeps it, for the Sandbox's status. */
static void the_gates_state_is_read_from_the_pod(void **state)
{
    (void)state;
    json_t *live = parse(
        "{'metadata':{'uid':'u1','labels':{'kage.dev/sandbox':'agent-42'}},"
        "'spec':{'initContainers':[{'name':'kage-gate','image':'" GATE_IMAGE "'}],"
        "'containers':[{'name':'sandbox','image':'python:3.12-slim'}]},"
        "'status':{'phase':'Failed','initContainerStatuses':[{'name':'kage-gate','state':"
        "{'terminated':{'exitCode':1,'reason':'Error','message':'egress to 10.96.0.1:443 still "
        "open after 60 s'}}}],'containerStatuses':[{'name':'sandbox','state':{'waiting':"
        "{'reason':'PodInitializing'}}}]}}");
    char err[128];
    struct pod_obj *p = observed_decode_pod(live, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(p->gate_image, GATE_IMAGE);
    assert_true(p->gate_terminated);
    assert_int_equal(p->gate_exit_code, 1);
    assert_string_equal(p->gate_term_message, "egress to 10.96.0.1:443 still open after 60 s");
    assert_string_equal(p->gate_waiting_reason, "");
    assert_false(p->terminated);
    assert_string_equal(p->waiting_reason, "PodInitializing");
    /* A change of the gate's state alone wakes the reconciler. */
    json_object_set_new(
        json_object_get(
            json_object_get(
                json_array_get(
                    json_object_get(json_object_get(live, "status"), "initContainerStatuses"), 0),
                "state"),
            "terminated"),
        "exitCode", json_integer(0));
    struct pod_obj *q = observed_decode_pod(live, err, sizeof(err));
    assert_non_null(q);
    assert_false(observed_pod_same(p, q));
    free(p);
    free(q);
    json_decref(live);
}

/* Pinned, as the pod's digest without the gate is (test_render): a
 * different digest after an upgrade would recreate every sandbox pod. */
static void the_digest_of_a_gated_pod_is_pinned(void **state)
{
    (void)state;
    json_t *p = pod(SANDBOX(IMAGE), NULL, &in_cluster);
    assert_string_equal(render_pod_hash(p), "d2e8046e4785810b");
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_sandbox_without_allow_entries_waits_for_its_policy),
        cmocka_unit_test(the_class_turns_the_gate_off),
        cmocka_unit_test(an_allow_list_that_reaches_the_canary_gets_no_gate),
        cmocka_unit_test(an_allow_list_that_misses_the_canary_keeps_the_gate),
        cmocka_unit_test(the_gate_pulls_as_the_class_says),
        cmocka_unit_test(the_pod_form_digest_covers_the_gate),
        cmocka_unit_test(the_gates_state_is_read_from_the_pod),
        cmocka_unit_test(the_digest_of_a_gated_pod_is_pinned),
    };
    return cmocka_run_group_tests_name("gate_render", tests, NULL, NULL);
}
