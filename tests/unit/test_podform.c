// SPDX-License-Identifier: Apache-2.0
/*
 * Unit test: podform, the digest of what kage sets in a pod. A pod read
 * back as the API server stores it digests as rendered; every change that
 * matters to isolation or to what runs changes the digest; what the
 * cluster adds does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_expect.h"
#include "kube/jsonscan.h"
#include "reconcile/observed.h"
#include "reconcile/podform.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A pod as kage renders one (trimmed to its shape). */
static const char rendered[] =
    "{'metadata':{'name':'agent','labels':{'kage.dev/sandbox':'agent',"
    "'app.kubernetes.io/managed-by':'kage'},'annotations':{'kage.dev/spec-hash':'0123456789abcdef'}},"
    "'spec':{'runtimeClassName':'kata-fc','restartPolicy':'Never',"
    "'terminationGracePeriodSeconds':5,'automountServiceAccountToken':false,"
    "'enableServiceLinks':false,'hostNetwork':false,'hostPID':false,'hostIPC':false,"
    "'securityContext':{'runAsNonRoot':true,'runAsUser':65532,'runAsGroup':65532,"
    "'seccompProfile':{'type':'RuntimeDefault'}},"
    "'containers':[{'name':'sandbox','image':'python:3.12-slim','imagePullPolicy':'IfNotPresent',"
    "'resources':{'requests':{'cpu':'1','memory':'1Gi','ephemeral-storage':'2Gi'},"
    "'limits':{'cpu':'1','memory':'1Gi','ephemeral-storage':'2Gi'}},"
    "'env':[{'name':'A','value':''},{'name':'B','value':'x'}],"
    "'terminationMessagePath':'/dev/termination-log',"
    "'terminationMessagePolicy':'FallbackToLogsOnError',"
    "'securityContext':{'allowPrivilegeEscalation':false,'privileged':false,'runAsNonRoot':true,"
    "'capabilities':{'drop':['ALL']},'seccompProfile':{'type':'RuntimeDefault'}},"
    "'command':['/bin/sh','-c','x'],"
    "'readinessProbe':{'exec':{'command':['/bin/sh','-c','test -e /tmp/.kage-ready']},"
    "'periodSeconds':2,'failureThreshold':1}}]}}";

static char *hash_of(json_t *pod)
{
    static char out[SPEC_HASH_LEN + 1];
    assert_int_equal(observed_pod_form_hash(pod, out), 0);
    assert_int_equal(strlen(out), SPEC_HASH_LEN);
    return out;
}

static json_t *container0(json_t *pod)
{
    return json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
}

/* The API server's defaults, canonical quantities, dropped empty values and
 * zero booleans, probe defaults, and what the cluster adds (tolerations,
 * node, service account, annotations, status) leave the digest alone. */
static void a_pod_as_stored_digests_as_rendered(void **state)
{
    (void)state;
    json_t *r = parse(rendered);
    char want[SPEC_HASH_LEN + 1];
    memcpy(want, hash_of(r), sizeof(want));

    json_t *p = json_deep_copy(r);
    json_t *spec = json_object_get(p, "spec"), *c = container0(p);
    json_object_del(spec, "hostNetwork");
    json_object_del(spec, "hostPID");
    json_object_del(spec, "hostIPC");
    json_object_set_new(spec, "dnsPolicy", json_string("ClusterFirst"));
    json_object_set_new(spec, "schedulerName", json_string("default-scheduler"));
    json_object_set_new(spec, "serviceAccountName", json_string("default"));
    json_object_set_new(spec, "nodeName", json_string("node-1"));
    json_object_set_new(spec, "tolerations", parse("[{'operator':'Exists'}]"));
    json_object_set_new(spec, "nodeSelector", parse("{'zone':'a'}"));
    json_object_set_new(spec, "overhead", parse("{'memory':'160Mi'}"));
    json_object_del(json_array_get(json_object_get(c, "env"), 0), "value");
    json_t *res = json_object_get(c, "resources");
    json_object_set_new(json_object_get(res, "requests"), "cpu", json_string("1000m"));
    json_object_set_new(json_object_get(res, "limits"), "memory", json_string("1024Mi"));
    json_t *probe = json_object_get(c, "readinessProbe");
    json_object_set_new(probe, "timeoutSeconds", json_integer(1));
    json_object_set_new(probe, "successThreshold", json_integer(1));
    json_object_set_new(json_object_get(p, "metadata"), "annotations", parse("{'x':'y'}"));
    json_object_set_new(p, "status", parse("{'phase':'Running','podIP':'10.0.0.1'}"));
    assert_string_equal(hash_of(p), want);
    json_decref(p);
    json_decref(r);
}

/* A class may give pods labels whose keys are member names the pod watch
 * cuts from every object ("priority", "running", ...): the live pod in the
 * cache lacks them, and its form must still be the rendered pod's, or
 * every pod of the class would look altered. */
static void labels_the_pod_watch_cuts_are_not_in_the_form(void **state)
{
    (void)state;
    json_t *r = parse(rendered);
    json_t *labels = json_object_get(json_object_get(r, "metadata"), "labels");
    json_object_set_new(labels, "priority", json_string("low"));
    json_object_set_new(labels, "running", json_string("yes"));
    json_object_set_new(labels, "team", json_string("a"));
    char want[SPEC_HASH_LEN + 1];
    memcpy(want, hash_of(r), sizeof(want));

    char *text = json_dumps(r, JSON_COMPACT);
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(jsonscan_strip_members(text, &len, observed_pod_unread) >= 2);
    json_error_t e;
    json_t *live = json_loadb(text, len, 0, &e);
    assert_non_null(live);
    json_t *kept = json_object_get(json_object_get(live, "metadata"), "labels");
    assert_null(json_object_get(kept, "priority"));
    assert_string_equal(json_string_value(json_object_get(kept, "team")), "a");
    assert_string_equal(hash_of(live), want);

    /* A label kage does not cut still counts. */
    json_object_set_new(kept, "team", json_string("b"));
    assert_string_not_equal(hash_of(live), want);
    json_decref(live);
    free(text);
    json_decref(r);
}

/* Each edit, applied to a copy of the rendered pod, must change the digest. */
static void edit(json_t *pod, int which)
{
    json_t *spec = json_object_get(pod, "spec"), *c = container0(pod);
    switch (which) {
    case 0:
        json_object_set_new(c, "image", json_string("evil:latest"));
        break;
    case 1:
        json_object_del(spec, "runtimeClassName");
        break;
    case 2:
        json_object_del(spec, "automountServiceAccountToken");
        break;
    case 3:
        json_object_set_new(spec, "volumes", parse("[{'name':'h','hostPath':{'path':'/'}}]"));
        break;
    case 4:
        json_object_set_new(spec, "hostNetwork", json_true());
        break;
    case 5:
        json_object_set_new(spec, "hostUsers", json_false());
        break;
    case 6:
        json_object_set_new(json_object_get(spec, "securityContext"), "runAsUser", json_integer(0));
        break;
    case 7:
        json_object_set_new(json_object_get(c, "securityContext"), "privileged", json_true());
        break;
    case 8:
        json_object_set_new(c, "args", parse("['-c','id']"));
        break;
    case 9:
        json_object_set_new(json_array_get(json_object_get(c, "env"), 1), "value",
                            json_string("y"));
        break;
    case 10:
        json_object_set_new(json_object_get(json_object_get(c, "resources"), "limits"), "memory",
                            json_string("2Gi"));
        break;
    case 11:
        json_array_append_new(json_object_get(spec, "containers"),
                              parse("{'name':'side','image':'x'}"));
        break;
    case 12:
        json_object_set_new(spec, "initContainers", parse("[{'name':'init','image':'x'}]"));
        break;
    case 13:
        json_object_set_new(spec, "ephemeralContainers", parse("[{'name':'debug','image':'x'}]"));
        break;
    case 14:
        json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "app",
                            json_string("web"));
        break;
    case 15:
        json_object_del(c, "readinessProbe");
        break;
    case 16:
        json_object_set_new(c, "volumeMounts", parse("[{'name':'h','mountPath':'/h'}]"));
        break;
    case 17:
        json_object_set_new(spec, "enableServiceLinks", json_true());
        break;
    case 18:
        json_object_set_new(c, "imagePullPolicy", json_string("Never"));
        break;
    case 19:
        json_object_set_new(spec, "shareProcessNamespace", json_true());
        break;
    default:
        fail_msg("no edit %d", which);
    }
}

static void every_edit_that_matters_changes_the_digest(void **state)
{
    (void)state;
    json_t *r = parse(rendered);
    char want[SPEC_HASH_LEN + 1];
    memcpy(want, hash_of(r), sizeof(want));
    for (int i = 0; i < 20; i++) {
        json_t *p = json_deep_copy(r);
        edit(p, i);
        if (strcmp(hash_of(p), want) == 0)
            fail_msg("edit %d left the digest as rendered", i);
        json_decref(p);
    }
    json_decref(r);
}

/* Nothing a pod carries makes the digest fail or crash it: wrong types,
 * nulls, an empty object. */
static void odd_pods_digest_without_failing(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "{}",
        "{'spec':null,'metadata':null}",
        "{'spec':{'containers':'x','volumes':3,'securityContext':null}}",
        "{'spec':{'containers':[null,3,{'env':[null,{'value':3}],'resources':{'limits':"
        "{'cpu':'nope','memory':7}}}]}}",
    };
    for (size_t i = 0; i < N(odd); i++) {
        json_t *p = parse(odd[i]);
        hash_of(p);
        json_decref(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_pod_as_stored_digests_as_rendered),
        cmocka_unit_test(labels_the_pod_watch_cuts_are_not_in_the_form),
        cmocka_unit_test(every_edit_that_matters_changes_the_digest),
        cmocka_unit_test(odd_pods_digest_without_failing),
    };
    return cmocka_run_group_tests_name("podform", tests, NULL, NULL);
}
