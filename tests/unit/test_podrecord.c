// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the pod record (status.podRecord): the decision table of
 * podrecord_judge, what the inputs digest covers, and whole reconciles
 * (world.h) that show a pod made by an earlier kage, which renders pods
 * otherwise, kept by its record, while an edited pod, a changed spec, a
 * missing record or one of an unknown version still lead to a new pod. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "json_expect.h"
#include "log.h"
#include "reconcile/podrecord.h"
#include "world.h"

#define SPEC      "{'image':'python:3.12-slim'}"
#define STATUS_RQ "PATCH sandboxes/" WORLD_NAME "/status"
#define POD_UID   "uid-3" /* the uid the fake API server gives a settled sandbox's pod */
#define DELETE_RQ "DELETE pods/" WORLD_NAME " if uid=" POD_UID
#define FORM      "0123456789abcdef"
#define INPUTS    "fedcba9876543210"

/* ---- the decision table ----------------------------------------------- */

static struct podrecord record(const char *uid, int64_t version, const char *form,
                               const char *inputs)
{
    struct podrecord r;
    memset(&r, 0, sizeof(r));
    snprintf(r.uid, sizeof(r.uid), "%s", uid);
    r.version = version;
    snprintf(r.form, sizeof(r.form), "%s", form);
    snprintf(r.inputs, sizeof(r.inputs), "%s", inputs);
    return r;
}

static void the_decision_table(void **state)
{
    (void)state;
    struct podrecord same = record("pod-1", PODRECORD_VERSION, FORM, INPUTS);
    struct podrecord next = record("pod-1", PODRECORD_VERSION + 1, FORM, INPUTS);
    struct podrecord other = record("pod-0", PODRECORD_VERSION, FORM, INPUTS);
    struct podrecord unshaped = record("pod-1", PODRECORD_VERSION, "", INPUTS);
    /* As made, from the same inputs: kept, whatever kage renders now. */
    assert_int_equal(podrecord_judge(&same, "pod-1", FORM, INPUTS), PODRECORD_KEEP);
    /* Its kage-set fields changed: altered, even when the inputs changed too. */
    assert_int_equal(podrecord_judge(&same, "pod-1", "00000000000000ff", INPUTS),
                     PODRECORD_ALTERED);
    assert_int_equal(podrecord_judge(&same, "pod-1", "00000000000000ff", "1111111111111111"),
                     PODRECORD_ALTERED);
    assert_int_equal(podrecord_judge(&same, "pod-1", "", INPUTS), PODRECORD_ALTERED);
    /* The spec or class changed: judged by what kage renders now. */
    assert_int_equal(podrecord_judge(&same, "pod-1", FORM, "1111111111111111"), PODRECORD_RENDER);
    /* No record, one of another pod, of a version unknown here, or without
     * a digest of this version's shape: as no record. */
    assert_int_equal(podrecord_judge(NULL, "pod-1", FORM, INPUTS), PODRECORD_RENDER);
    assert_int_equal(podrecord_judge(&other, "pod-1", FORM, INPUTS), PODRECORD_RENDER);
    assert_int_equal(podrecord_judge(&next, "pod-1", FORM, INPUTS), PODRECORD_RENDER);
    assert_int_equal(podrecord_judge(&unshaped, "pod-1", FORM, INPUTS), PODRECORD_RENDER);
    assert_string_equal(podrecord_verdict_name(PODRECORD_KEEP), "keep");
    assert_string_equal(podrecord_verdict_name(PODRECORD_ALTERED), "altered");
    assert_string_equal(podrecord_verdict_name(PODRECORD_RENDER), "render");
}

/* ---- the record in the status ----------------------------------------- */

static void a_record_reads_back_as_written(void **state)
{
    (void)state;
    struct podrecord r = record("pod-1", PODRECORD_VERSION, FORM, INPUTS), back;
    json_t *rec = podrecord_json(&r);
    assert_non_null(rec);
    json_t *want = parse("{'uid':'pod-1','digestVersion':1,'formDigest':'" FORM
                         "','inputsDigest':'" INPUTS "'}");
    expect_json(json_incref(rec), want, "the record");
    json_t *status = json_pack("{s:o}", PODRECORD_FIELD, rec);
    assert_int_equal(podrecord_read(status, &back), 0);
    assert_string_equal(back.uid, "pod-1");
    assert_int_equal(back.version, PODRECORD_VERSION);
    assert_string_equal(back.form, FORM);
    assert_string_equal(back.inputs, INPUTS);
    json_decref(status);
}

static void records_that_say_nothing_are_none(void **state)
{
    (void)state;
    struct podrecord r;
    assert_int_equal(podrecord_read(NULL, &r), -ENOENT);
    const struct {
        const char *status;
        int rc;
    } cases[] = {
        {"{}", -ENOENT},
        {"{'podRecord':null}", -ENOENT},
        {"{'podRecord':'pod-1'}", -EINVAL},
        {"{'podRecord':{'digestVersion':1,'formDigest':'" FORM "','inputsDigest':'" INPUTS "'}}",
         -EINVAL},
        {"{'podRecord':{'uid':'','digestVersion':1}}", -EINVAL},
        {"{'podRecord':{'uid':'pod-1','digestVersion':'1'}}", -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *st = parse(cases[i].status);
        assert_int_equal(podrecord_read(st, &r), cases[i].rc);
        json_decref(st);
    }
    /* A later version's digests (longer, say) are kept out; its version
     * alone makes it no record here. */
    json_t *st = parse("{'podRecord':{'uid':'pod-1','digestVersion':2,'formDigest':'" FORM FORM
                       "','inputsDigest':'" INPUTS "'}}");
    assert_int_equal(podrecord_read(st, &r), 0);
    assert_int_equal(r.version, 2);
    assert_string_equal(r.form, "");
    assert_string_equal(r.inputs, INPUTS);
    assert_int_equal(podrecord_judge(&r, "pod-1", FORM, INPUTS), PODRECORD_RENDER);
    json_decref(st);
    st = parse("{'podRecord':{'uid':'pod-1','digestVersion':1,'formDigest':'0123456789ABCDEF',"
               "'inputsDigest':'" INPUTS "'}}");
    assert_int_equal(podrecord_read(st, &r), 0);
    assert_string_equal(r.form, "");
    json_decref(st);
}

/* ---- the inputs ------------------------------------------------------- */

static void digest_inputs(const char *spec, const char *class_name, const char *class_spec,
                          const char *runtime, char out[SPEC_HASH_LEN + 1])
{
    json_t *s = parse(spec);
    json_t *c = class_spec ? parse(class_spec) : NULL;
    assert_int_equal(podrecord_inputs(s, class_name, c, runtime, out), 0);
    assert_int_equal(strlen(out), SPEC_HASH_LEN);
    json_decref(s);
    json_decref(c);
}

#define BASE_SPEC  "'image':'python:3.12-slim','env':[{'name':'A','value':'1'}]"
#define BASE_CLASS "'runtimeClassName':'kata-fc','podAnnotations':{'a':'1'}"

static void the_inputs_are_what_shapes_the_pod(void **state)
{
    (void)state;
    char base[SPEC_HASH_LEN + 1], d[SPEC_HASH_LEN + 1];
    digest_inputs("{" BASE_SPEC "}", "small", "{" BASE_CLASS "}", "kata-fc", base);
    /* Neither the policy's, the deadline's nor the pause's fields shape it. */
    const char *same_specs[] = {
        "{" BASE_SPEC ",'egress':{'dns':false,'allow':[{'cidr':'192.0.2.0/24'}]}}",
        "{" BASE_SPEC ",'lifetime':{'ttlSeconds':60,'shutdownPolicy':'Retain'}}",
        "{" BASE_SPEC ",'paused':false}",
    };
    for (size_t i = 0; i < sizeof(same_specs) / sizeof(same_specs[0]); i++) {
        digest_inputs(same_specs[i], "small", "{" BASE_CLASS "}", "kata-fc", d);
        assert_string_equal(d, base);
    }
    const char *same_classes[] = {
        "{" BASE_CLASS ",'namespaceSelector':{'matchLabels':{'t':'a'}}}",
        "{" BASE_CLASS ",'foreignPolicies':'Report'}",
        "{" BASE_CLASS ",'maxLifetimeSeconds':600}",
        "{" BASE_CLASS ",'egress':{'allowedCIDRs':['0.0.0.0/0'],'deniedCIDRs':['10.0.0.0/8']}}",
    };
    for (size_t i = 0; i < sizeof(same_classes) / sizeof(same_classes[0]); i++) {
        digest_inputs("{" BASE_SPEC "}", "small", same_classes[i], "kata-fc", d);
        assert_string_equal(d, base);
    }
    /* What the user or the platform team asked of the pod does. */
    const struct {
        const char *spec, *class_name, *class_spec, *runtime;
    } changed[] = {
        {"{'image':'python:3.13-slim','env':[{'name':'A','value':'1'}]}", "small",
         "{" BASE_CLASS "}", "kata-fc"},
        {"{" BASE_SPEC ",'securityContext':{'runAsUser':1000}}", "small", "{" BASE_CLASS "}",
         "kata-fc"},
        {"{" BASE_SPEC ",'resources':{'cpu':'2'}}", "small", "{" BASE_CLASS "}", "kata-fc"},
        {"{" BASE_SPEC ",'beforeScript':'true'}", "small", "{" BASE_CLASS "}", "kata-fc"},
        {"{" BASE_SPEC "}", "large", "{" BASE_CLASS "}", "kata-fc"},
        {"{" BASE_SPEC "}", NULL, NULL, "kata-fc"},
        {"{" BASE_SPEC "}", "small", "{'runtimeClassName':'kata-qemu','podAnnotations':{'a':'1'}}",
         "kata-fc"},
        {"{" BASE_SPEC "}", "small", "{" BASE_CLASS ",'hostUsers':false}", "kata-fc"},
        {"{" BASE_SPEC "}", "small", "{" BASE_CLASS ",'defaultResources':{'cpu':'2'}}", "kata-fc"},
        {"{" BASE_SPEC "}", "small", "{" BASE_CLASS ",'tolerations':[{'operator':'Exists'}]}",
         "kata-fc"},
        {"{" BASE_SPEC "}", "small", "{" BASE_CLASS "}", "kata-clh"},
    };
    for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
        digest_inputs(changed[i].spec, changed[i].class_name, changed[i].class_spec,
                      changed[i].runtime, d);
        if (strcmp(d, base) == 0)
            fail_msg("case %zu: the inputs digest did not change", i);
    }
}

/* ---- whole reconciles ------------------------------------------------- */

static void pod_running(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("node-1"));
    json_object_set_new(pod, "status",
                        parse("{'phase':'Running','podIP':'10.42.0.17','startTime':"
                              "'2026-09-21T14:13:25Z','conditions':[{'type':'Ready','status':"
                              "'True'}],'containerStatuses':[{'name':'sandbox','ready':true,"
                              "'state':{'running':{}}}]}"));
}

/* A Sandbox of spec, its children made with a watch that follows every
 * write, its pod running and the status written. */
static void settle(struct world *w, const char *spec)
{
    world_sandbox(w, spec, "{}");
    w->watch_follows = true;
    world_reconcile(w);
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    w->watch_follows = false;
    w->now_ms += RECONCILE_EXPECT_MS; /* our writes are long seen */
}

static json_t *status_of(struct world *w)
{
    return json_object_get(w->sandbox_json, "status");
}

/* The Sandbox's status changed by an administrator (or another version
 * of kage) as the cache then shows it. */
static void world_status_set(struct world *w, const char *k, json_t *v)
{
    if (v)
        assert_int_equal(json_object_set_new(status_of(w), k, v), 0);
    else
        json_object_del(status_of(w), k);
    free(w->sandbox);
    char err[200];
    w->sandbox = observed_decode_sandbox(w->sandbox_json, err, sizeof(err));
    assert_non_null(w->sandbox);
}

static void live_form(struct world *w, char out[SPEC_HASH_LEN + 1])
{
    assert_int_equal(observed_pod_form_hash(world_obj(w, true, WORLD_NAME), out), 0);
}

/* As an earlier kage would have made the pod: another annotation and
 * label, so another spec-hash and another form than kage renders now. */
static void made_by_an_earlier_kage(json_t *pod)
{
    json_t *md = json_object_get(pod, "metadata");
    json_object_set_new(json_object_get(md, "labels"), "kage.dev/rendering", json_string("old"));
    json_object_set_new(json_object_get(md, "annotations"), ANNOT_SPEC_HASH,
                        json_string("00000000000000aa"));
}

/* Settles a sandbox, then makes its pod one an earlier kage rendered, and
 * its record the one that kage wrote for it. */
static struct world *upgraded(void)
{
    struct world *w = world_new();
    settle(w, SPEC);
    world_edit(w, true, WORLD_NAME, made_by_an_earlier_kage);
    char form[SPEC_HASH_LEN + 1];
    live_form(w, form);
    json_t *rec = json_deep_copy(json_object_get(status_of(w), PODRECORD_FIELD));
    assert_non_null(rec);
    json_object_set_new(rec, "formDigest", json_string(form));
    world_status_set(w, PODRECORD_FIELD, rec);
    world_reset(w);
    return w;
}

static bool has_event(struct world *w, const char *prefix)
{
    for (unsigned i = 0; i < w->nevents; i++)
        if (strncmp(w->events[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static void the_pod_kage_makes_is_recorded_at_first_sight(void **state)
{
    (void)state;
    struct world *w = world_new();
    settle(w, SPEC);
    char form[SPEC_HASH_LEN + 1], inputs[SPEC_HASH_LEN + 1];
    live_form(w, form);
    digest_inputs(SPEC, NULL, NULL, "kata-fc", inputs);
    json_t *want = json_pack("{s:s, s:i, s:s, s:s}", "uid", POD_UID, "digestVersion",
                             PODRECORD_VERSION, "formDigest", form, "inputsDigest", inputs);
    assert_true(json_equal(json_object_get(status_of(w), PODRECORD_FIELD), want));
    json_decref(want);
    /* Once written, it is not written again. */
    world_reconcile(w);
    assert_int_equal(w->nrequests, 0);
    world_free(w);
}

static void a_pod_an_earlier_kage_made_is_kept_by_its_record(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_reconcile(w);
    assert_int_equal(w->nrequests, 0);
    assert_int_equal(w->nevents, 0);
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);
    world_free(w);
}

static void without_a_record_the_pod_is_judged_by_what_kage_renders(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_status_set(w, PODRECORD_FIELD, NULL);
    world_reconcile(w);
    assert_true(w->nrequests >= 1);
    assert_string_equal(w->requests[0], DELETE_RQ);
    assert_true(has_event(w, "Normal PodReplaced: pod agent differs from the Sandbox (the spec "
                             "changed); replacing it"));
    world_free(w);
}

static void a_record_of_an_unknown_version_is_judged_by_what_kage_renders(void **state)
{
    (void)state;
    struct world *w = upgraded();
    json_t *rec = json_deep_copy(json_object_get(status_of(w), PODRECORD_FIELD));
    json_object_set_new(rec, "digestVersion", json_integer(PODRECORD_VERSION + 1));
    world_status_set(w, PODRECORD_FIELD, rec);
    world_reconcile(w);
    assert_true(w->nrequests >= 1);
    assert_string_equal(w->requests[0], DELETE_RQ);
    world_free(w);
}

static void a_recorded_pod_whose_spec_changed_is_replaced(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_spec(w, "{'image':'busybox:1.37'}");
    world_reconcile(w);
    assert_true(w->nrequests >= 1);
    assert_string_equal(w->requests[0], DELETE_RQ);
    assert_true(has_event(w, "Normal PodReplaced: pod agent differs from the Sandbox (the spec "
                             "changed); replacing it"));
    /* The record outlives the pod: the next pod is judged against it. */
    json_t *rec = NULL;
    for (unsigned i = 0; i < w->nrequests; i++)
        if (strcmp(w->requests[i], STATUS_RQ) == 0)
            rec = json_object_get(json_object_get(w->bodies[i], "status"), PODRECORD_FIELD);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "uid")), POD_UID);
    world_free(w);
}

static void a_recorded_pod_whose_egress_changed_is_kept(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_spec(w, "{'image':'python:3.12-slim','egress':{'dns':false}}");
    world_reconcile(w);
    for (unsigned i = 0; i < w->nrequests; i++)
        if (strncmp(w->requests[i], "DELETE pods", 11) == 0)
            fail_msg("the pod was replaced for an egress change");
    assert_true(w->nrequests >= 1);
    world_free(w);
}

static void add_label(json_t *pod)
{
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "app",
                        json_string("web"));
}

static void a_recorded_pod_edited_in_place_is_replaced(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_edit(w, true, WORLD_NAME, add_label);
    world_reconcile(w);
    assert_true(w->nrequests >= 1);
    assert_string_equal(w->requests[0], DELETE_RQ);
    assert_true(has_event(w, "Normal PodReplaced: pod agent differs from the Sandbox (it was "
                             "changed outside kage"));
    world_free(w);
}

static void remove_sandbox_label(json_t *pod)
{
    json_object_del(json_object_get(json_object_get(pod, "metadata"), "labels"), LABEL_SANDBOX);
}

static void a_recorded_pod_that_lost_its_sandbox_label_is_replaced(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_edit(w, true, WORLD_NAME, remove_sandbox_label);
    world_reconcile(w);
    assert_true(w->nrequests >= 1);
    assert_string_equal(w->requests[0], DELETE_RQ);
    world_free(w);
}

/* A pod made in the recorded one's place, with the recorded form but not
 * the recorded uid, is judged by what kage renders: not taken on the
 * record's word. */
static void new_uid(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "metadata"), "uid", json_string("theirs-1"));
}

static void a_pod_in_the_recorded_ones_place_is_not_taken_on_its_record(void **state)
{
    (void)state;
    struct world *w = upgraded();
    world_edit(w, true, WORLD_NAME, new_uid);
    world_reconcile(w);
    /* The policy first follows the pod now there (it is to outlive it). */
    assert_true(w->nrequests >= 2);
    assert_string_equal(w->requests[0], "PUT networkpolicies/" WORLD_NAME " if uid=uid-2");
    assert_string_equal(w->requests[1], "DELETE pods/" WORLD_NAME " if uid=theirs-1");
    world_free(w);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_decision_table),
        cmocka_unit_test(a_record_reads_back_as_written),
        cmocka_unit_test(records_that_say_nothing_are_none),
        cmocka_unit_test(the_inputs_are_what_shapes_the_pod),
        cmocka_unit_test(the_pod_kage_makes_is_recorded_at_first_sight),
        cmocka_unit_test(a_pod_an_earlier_kage_made_is_kept_by_its_record),
        cmocka_unit_test(without_a_record_the_pod_is_judged_by_what_kage_renders),
        cmocka_unit_test(a_record_of_an_unknown_version_is_judged_by_what_kage_renders),
        cmocka_unit_test(a_recorded_pod_whose_spec_changed_is_replaced),
        cmocka_unit_test(a_recorded_pod_whose_egress_changed_is_kept),
        cmocka_unit_test(a_recorded_pod_edited_in_place_is_replaced),
        cmocka_unit_test(a_recorded_pod_that_lost_its_sandbox_label_is_replaced),
        cmocka_unit_test(a_pod_in_the_recorded_ones_place_is_not_taken_on_its_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
