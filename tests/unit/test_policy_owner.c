// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the sandbox's policy outliving its pod: the policy names
 * the sandbox's pod as a second owner (the garbage collector deletes an
 * object only once all its owners are gone), follows the pod when it is
 * made anew, keeps what it names while there is no pod, and waits for an
 * earlier Sandbox's pod that still holds it. Whole reconciles against the
 * fake cluster of world.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json_expect.h"
#include "log.h"
#include "reconcile/render.h"
#include "world.h"

#define SPEC       "{'image':'python:3.12-slim'}"
#define STATUS_RQ  "PATCH sandboxes/" WORLD_NAME "/status"
#define POLICY_PUT "PUT networkpolicies/" WORLD_NAME " if uid=uid-2"
#define SANDBOX_REF                                                                       \
    "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','name':'agent','uid':'" WORLD_UID \
    "','controller':true}"
#define POD_REF(uid) \
    "{'apiVersion':'v1','kind':'Pod','name':'agent','uid':'" uid "','controller':false}"

static void pod_running(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("node-1"));
    json_object_set_new(pod, "status",
                        parse("{'phase':'Running','podIP':'10.42.0.17','startTime':"
                              "'2026-09-21T14:13:25Z','conditions':[{'type':'Ready','status':"
                              "'True'}],'containerStatuses':[{'name':'sandbox','ready':true,"
                              "'state':{'running':{}}}]}"));
}

static void pod_going(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
                        json_string(WORLD_CREATED));
}

/* The garbage collector drops an owner reference to an object gone. */
static void pod_ref_dropped(json_t *policy)
{
    json_t *refs = json_object_get(json_object_get(policy, "metadata"), "ownerReferences");
    assert_int_equal(json_array_size(refs), 2);
    json_array_remove(refs, 1);
}

static json_t *policy_owners(struct world *w)
{
    return json_incref(json_object_get(json_object_get(world_obj(w, false, WORLD_NAME), "metadata"),
                                       "ownerReferences"));
}

static const char *pod_uid(struct world *w)
{
    return json_string_value(
        json_object_get(json_object_get(world_obj(w, true, WORLD_NAME), "metadata"), "uid"));
}

static const char *const no_requests[] = {"(none)"};

static void expect_requests(struct world *w, const char *const *want, size_t n)
{
    for (unsigned i = 0; i < w->nrequests || i < n; i++) {
        const char *got = i < w->nrequests ? w->requests[i] : "(none)";
        const char *exp = i < n ? want[i] : "(none)";
        if (strcmp(got, exp) != 0)
            fail_msg("request %u is \"%s\", want \"%s\"", i, got, exp);
    }
}
#define EXPECT(w, ...)                                               \
    do {                                                             \
        const char *const want_[] = {__VA_ARGS__};                   \
        expect_requests(w, want_, sizeof(want_) / sizeof(want_[0])); \
    } while (0)
#define EXPECT_NONE(w) expect_requests(w, no_requests, 0)

/* A new Sandbox, reconciled with a watch that follows every write: its
 * policy (uid-2) is written before the pod (uid-3) exists, and made to
 * name the pod, seen at once, before the status. */
static struct world *started(void)
{
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    w->watch_follows = true;
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {kage-baseline}", "POST networkpolicies {" WORLD_NAME "}",
           "POST pods {" WORLD_NAME "}", POLICY_PUT, STATUS_RQ);
    w->now_ms += RECONCILE_EXPECT_MS; /* our writes are long seen */
    return w;
}

/* The policy is written before the pod, so it names only the Sandbox;
 * the server's answer to the pod's create names the pod's uid, and the
 * same reconcile makes the policy name it (before the status). The watch
 * showing the policy as first created (its add event, late) costs no
 * second update while that write stands in for it; once it no longer
 * does, a policy still not naming the pod is made to. */
static void the_policy_names_the_pod_it_has_just_made(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {kage-baseline}", "POST networkpolicies {" WORLD_NAME "}",
           "POST pods {" WORLD_NAME "}", "PUT networkpolicies/" WORLD_NAME " if uid=made-2",
           STATUS_RQ);
    expect_json(
        json_incref(json_object_get(json_object_get(w->bodies[3], "metadata"), "ownerReferences")),
        parse("[" SANDBOX_REF ", " POD_REF("made-3") "]"), "owners sent");
    json_t *base = json_deep_copy(w->bodies[0]);
    json_t *pol = json_deep_copy(w->bodies[1]); /* as created: no pod named */
    json_t *pod = json_deep_copy(w->bodies[2]);
    json_object_set_new(json_object_get(base, "metadata"), "uid", json_string("made-1"));
    json_object_set_new(json_object_get(pol, "metadata"), "uid", json_string("made-2"));
    json_object_set_new(json_object_get(pod, "metadata"), "uid", json_string("made-3"));
    world_put(w, false, base);
    world_put(w, false, pol);
    world_put(w, true, pod);

    world_reconcile(w); /* the pod's add event; the policy's update not shown yet */
    EXPECT(w, STATUS_RQ);
    world_reconcile(w);
    EXPECT_NONE(w);

    w->now_ms += RECONCILE_EXPECT_MS; /* the update never showed: lost */
    w->watch_follows = true;
    world_reconcile(w);
    EXPECT(w, "PUT networkpolicies/" WORLD_NAME " if uid=made-2");
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("made-3") "]"),
                "policy owners, put back");
    world_reconcile(w);
    EXPECT_NONE(w);
    world_free(w);
}

/* A pod whose uid the create's answer did not give (an answer without the
 * object): the pod's add event, once the watch shows it, brings one
 * update that names the pod too (with the pod's record in the status),
 * and the Ready status costs no policy write. */
static void the_policy_names_a_pod_seen_later_before_it_is_ready(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    for (int i = 0; i < 3; i++)
        world_answer(w, 201, "", "", NULL);
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {kage-baseline}", "POST networkpolicies {" WORLD_NAME "}",
           "POST pods {" WORLD_NAME "}", STATUS_RQ);
    json_t *base = json_deep_copy(w->bodies[0]);
    json_t *pol = json_deep_copy(w->bodies[1]);
    json_t *pod = json_deep_copy(w->bodies[2]);
    expect_json(json_incref(json_object_get(json_object_get(pol, "metadata"), "ownerReferences")),
                parse("[" SANDBOX_REF "]"), "owners of the policy made before its pod");
    json_object_set_new(json_object_get(base, "metadata"), "uid", json_string("base-1"));
    json_object_set_new(json_object_get(pol, "metadata"), "uid", json_string("pol-1"));
    json_object_set_new(json_object_get(pod, "metadata"), "uid", json_string("pod-1"));
    world_put(w, false, base);
    world_put(w, false, pol);
    world_put(w, true, pod);
    w->now_ms += RECONCILE_EXPECT_MS;
    w->watch_follows = true;

    world_reconcile(w); /* the watch shows them */
    EXPECT(w, "PUT networkpolicies/" WORLD_NAME " if uid=pol-1", STATUS_RQ);
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("pod-1") "]"),
                "policy owners, pod seen");
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    EXPECT(w, STATUS_RQ);
    world_reconcile(w);
    EXPECT_NONE(w);
    world_free(w);
}

/* A pod the watch shows already when the status is to be written (made
 * in this reconcile, perhaps Ready at once): the policy names it first. */
static void the_policy_names_a_pod_seen_at_once_before_the_status(void **state)
{
    (void)state;
    struct world *w = started();
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("uid-3") "]"),
                "policy owners after the first reconcile");
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    EXPECT(w, STATUS_RQ);
    world_reconcile(w);
    EXPECT_NONE(w);
    world_free(w);
}

/* A running sandbox whose spec changes: the old pod goes (and the policy
 * names it while it goes), the new one is made, and the policy follows
 * the new pod's uid. */
static void the_policy_follows_the_pod_that_replaces_another(void **state)
{
    (void)state;
    struct world *w = started();
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    EXPECT(w, STATUS_RQ);

    w->watch_follows = false;
    world_spec(w, "{'image':'python:3.13-slim'}");
    world_reconcile(w);
    EXPECT(w, "DELETE pods/" WORLD_NAME " if uid=uid-3", STATUS_RQ);
    world_edit(w, true, WORLD_NAME, pod_going);
    world_reconcile(w);
    EXPECT_NONE(w); /* the going pod is still the one named */

    world_remove(w, true, WORLD_NAME);
    w->watch_follows = true;
    world_answer(w, 200, "", "", "{'metadata':{'uid':'" WORLD_UID "'}}");
    world_reconcile(w);
    EXPECT(w, "GET sandboxes/" WORLD_NAME, "POST pods {" WORLD_NAME "}", POLICY_PUT, STATUS_RQ);
    assert_string_equal(pod_uid(w), "uid-4");
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("uid-4") "]"),
                "policy owners, new pod");
    world_free(w);
}

/* Paused: the pod goes and nothing is written to the policy, whether the
 * garbage collector has dropped its reference to the pod gone or not;
 * resumed, the policy names the new pod. */
static void a_paused_sandbox_leaves_its_policys_owners_alone(void **state)
{
    (void)state;
    struct world *w = started();
    world_reconcile(w);
    EXPECT(w, STATUS_RQ);

    world_spec(w, "{'image':'python:3.12-slim','paused':true}");
    world_reconcile(w);
    EXPECT(w, "DELETE pods/" WORLD_NAME " if uid=uid-3", STATUS_RQ);
    world_reconcile(w);
    EXPECT_NONE(w);
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("uid-3") "]"),
                "policy owners, paused");
    world_edit(w, false, WORLD_NAME, pod_ref_dropped);
    world_reconcile(w);
    EXPECT_NONE(w);

    world_spec(w, SPEC);
    world_answer(w, 200, "", "", "{'metadata':{'uid':'" WORLD_UID "'}}");
    world_reconcile(w);
    EXPECT(w, "GET sandboxes/" WORLD_NAME, "POST pods {" WORLD_NAME "}", POLICY_PUT, STATUS_RQ);
    expect_json(policy_owners(w), parse("[" SANDBOX_REF ", " POD_REF("uid-4") "]"),
                "policy owners, resumed");
    world_free(w);
}

/* A policy deleted from outside comes back naming the pod it guards. */
static void a_deleted_policy_comes_back_naming_the_pod(void **state)
{
    (void)state;
    struct world *w = started();
    world_reconcile(w);
    EXPECT(w, STATUS_RQ);
    w->now_ms += RECONCILE_EXPECT_MS;
    world_remove(w, false, WORLD_NAME);
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {" WORLD_NAME "}");
    expect_json(
        json_incref(json_object_get(json_object_get(w->bodies[0], "metadata"), "ownerReferences")),
        parse("[" SANDBOX_REF ", " POD_REF("uid-3") "]"), "owners of the policy made again");
    world_reconcile(w);
    EXPECT_NONE(w);
    world_free(w);
}

/* What the garbage collector leaves of a deleted Sandbox's policy while
 * its pod terminates: the reference to the Sandbox gone is dropped, the
 * one to the pod holds it. */
static void arrange_earlier(struct world *w, bool pod_goes)
{
    world_put(
        w, false,
        parse("{'metadata':{'name':'agent','namespace':'team-a','uid':'old-policy',"
              "'labels':{'kage.dev/sandbox':'agent','app.kubernetes.io/managed-by':'kage'},"
              "'ownerReferences':[" POD_REF(
                  "old-pod") "]},"
                             "'spec':{'podSelector':{'matchLabels':{'kage.dev/sandbox':'agent'}},"
                             "'policyTypes':['Ingress','Egress']}}"));
    json_t *pod = parse("{'metadata':{'name':'agent','namespace':'team-a','uid':'old-pod',"
                        "'labels':{'kage.dev/sandbox':'agent'},'ownerReferences':[{'apiVersion':"
                        "'kage.dev/v1alpha1','kind':'Sandbox','name':'agent','uid':'earlier',"
                        "'controller':true}]},'spec':{'containers':[]}}");
    if (pod_goes)
        pod_going(pod);
    world_put(w, true, pod);
}

static const char *ready_reason(struct world *w)
{
    for (unsigned i = w->nrequests; i-- > 0;) {
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(w->bodies[i], "status"), "conditions"),
                           k, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "type")), "Ready") == 0)
                return json_string_value(json_object_get(c, "reason"));
        }
    }
    return "(none)";
}

static void an_earlier_sandboxs_policy_held_by_its_going_pod_is_waited_for(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    arrange_earlier(w, true);
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {kage-baseline}", STATUS_RQ);
    assert_string_equal(ready_reason(w), "PolicyPending");
    assert_int_equal(w->outcome.kind, OUTCOME_AFTER);
    assert_int_equal(w->outcome.after_ms, 1000);

    /* The pod gone, the policy not yet collected: still waited for. */
    world_remove(w, true, WORLD_NAME);
    world_reconcile(w);
    EXPECT_NONE(w); /* the status says so already */
    assert_int_equal(w->outcome.kind, OUTCOME_AFTER);
    assert_int_equal(w->outcome.after_ms, 1000);
    world_free(w);
}

/* An orphaned pod (its Sandbox deleted with orphan propagation) that
 * stays holds the policy for good: that is a conflict, not a wait. */
static void a_policy_held_by_a_pod_that_stays_is_a_conflict(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    arrange_earlier(w, false);
    world_reconcile(w);
    EXPECT(w, "POST networkpolicies {kage-baseline}", STATUS_RQ);
    assert_string_equal(ready_reason(w), "NameConflict");
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    world_free(w);
}

/* The reference: v1 Pod, not the controller, no blockOwnerDeletion. */
static void render_adds_the_pod_as_an_owner_that_is_not_the_controller(void **state)
{
    (void)state;
    json_t *sbx = parse("{'metadata':{'name':'agent','namespace':'team-a','uid':'" WORLD_UID
                        "'},'spec':{'image':'x'}}");
    json_t *pol = render_policy(sbx);
    assert_non_null(pol);
    assert_int_equal(render_policy_pod_owner(pol, "agent", ""), 0);
    assert_int_equal(render_policy_pod_owner(pol, "agent", NULL), 0);
    expect_json(json_incref(json_object_get(json_object_get(pol, "metadata"), "ownerReferences")),
                parse("[" SANDBOX_REF "]"), "no pod");
    assert_int_equal(render_policy_pod_owner(pol, "agent", "p-1"), 0);
    expect_json(json_incref(json_object_get(json_object_get(pol, "metadata"), "ownerReferences")),
                parse("[" SANDBOX_REF ", " POD_REF("p-1") "]"), "with its pod");
    json_decref(pol);
    json_decref(sbx);
}

/* The cached policy keeps the uid of its Pod owner, and a change to it
 * is a change the reconciler reads. */
static void the_cache_reads_the_pod_owner(void **state)
{
    (void)state;
    char err[200];
    json_t *a = parse("{'metadata':{'name':'agent','uid':'u','ownerReferences':[" SANDBOX_REF
                      ", {'apiVersion':'apps/v1','kind':'Pod','name':'agent','uid':'not-core'},"
                      " " POD_REF("p-1") "]}}");
    json_t *b =
        parse("{'metadata':{'name':'agent','uid':'u','ownerReferences':[" SANDBOX_REF "]}}");
    struct policy_obj *pa = observed_decode_policy(a, err, sizeof(err));
    struct policy_obj *pb = observed_decode_policy(b, err, sizeof(err));
    assert_non_null(pa);
    assert_non_null(pb);
    assert_string_equal(pa->pod_owner_uid, "p-1");
    assert_string_equal(pa->owner_uid, WORLD_UID);
    assert_true(pa->owned);
    assert_string_equal(pb->pod_owner_uid, "");
    assert_false(observed_policy_same(pa, pb));
    assert_true(observed_policy_same(pa, pa));
    free(pa);
    free(pb);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_policy_names_the_pod_it_has_just_made),
        cmocka_unit_test(the_policy_names_a_pod_seen_later_before_it_is_ready),
        cmocka_unit_test(the_policy_names_a_pod_seen_at_once_before_the_status),
        cmocka_unit_test(the_policy_follows_the_pod_that_replaces_another),
        cmocka_unit_test(a_paused_sandbox_leaves_its_policys_owners_alone),
        cmocka_unit_test(a_deleted_policy_comes_back_naming_the_pod),
        cmocka_unit_test(an_earlier_sandboxs_policy_held_by_its_going_pod_is_waited_for),
        cmocka_unit_test(a_policy_held_by_a_pod_that_stays_is_a_conflict),
        cmocka_unit_test(render_adds_the_pod_as_an_owner_that_is_not_the_controller),
        cmocka_unit_test(the_cache_reads_the_pod_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
