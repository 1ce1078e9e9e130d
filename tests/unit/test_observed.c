// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the cached forms of what kage watches: pods, network
 * policies and Sandboxes as the API server sends them, decoded into the
 * fields the reconciler reads, compared whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/jsonscan.h"
#include "reconcile/observed.h"
#include "reconcile/render.h"

#include "alloc_fail.h"
#include "json_expect.h"

static const char *phase_name(enum pod_phase p)
{
    switch (p) {
    case POD_PENDING:
        return "Pending";
    case POD_RUNNING:
        return "Running";
    case POD_SUCCEEDED:
        return "Succeeded";
    case POD_FAILED:
        return "Failed";
    case POD_UNKNOWN:
        return "Unknown";
    }
    return "?";
}

/* Every field of a decoded pod, as JSON, so it compares whole. */
static json_t *pod_fields(const struct pod_obj *p)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:b, "
        "s:b, s:b, s:s}",
        "uid", p->uid, "owner_uid", p->owner_uid, "sandbox", p->sandbox, "spec_hash", p->spec_hash,
        "image", p->image, "pod_ip", p->pod_ip, "node_name", p->node_name, "start_time",
        p->start_time, "reason", p->reason, "message", p->message, "waiting_reason",
        p->waiting_reason, "waiting_message", p->waiting_message, "term_reason", p->term_reason,
        "term_message", p->term_message, "term_exit_code", p->term_exit_code, "terminated",
        p->terminated, "deleting", p->deleting, "ready", p->ready, "owned", p->owned, "phase",
        phase_name(p->phase));
    assert_non_null(j);
    return j;
}

static struct pod_obj *decode_pod(const char *text)
{
    char err[128] = "";
    json_t *j = parse(text);
    struct pod_obj *p = observed_decode_pod(j, err, sizeof(err));
    json_decref(j);
    if (!p)
        fail_msg("pod refused: %s", err);
    return p;
}

static void expect_pod(const char *pod_text, const char *want, const char *what)
{
    struct pod_obj *p = decode_pod(pod_text);
    expect_json(pod_fields(p), parse(want), what);
    free(p);
}

#define SBX_UID "7d2f4a1e-9c3b-4f6d-8e21-5a0b9c8d7e6f"
#define POD_UID "0b6e9c1a-3f4d-4a7b-9e2c-8d1f5a6b7c8d"

/* A sandbox pod as the API server returns it, with a mesh sidecar injected
 * ahead of the sandbox container; its image cannot be pulled. */
static const char pulling[] =
    "{'kind':'Pod','apiVersion':'v1','metadata':{'name':'agent-42','namespace':'team-a',"
    "'uid':'" POD_UID "','resourceVersion':'48213','creationTimestamp':'2026-11-28T09:59:48Z',"
    "'labels':{'app.kubernetes.io/managed-by':'kage','kage.dev/sandbox':'agent-42',"
    "'security.istio.io/tlsMode':'istio'},"
    "'annotations':{'kage.dev/spec-hash':'236741f622b9d5fb','sidecar.istio.io/status':"
    "'{\\\"containers\\\":[\\\"istio-proxy\\\"]}'},"
    "'ownerReferences':[{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','name':'agent-42',"
    "'uid':'" SBX_UID "','controller':true}],"
    "'managedFields':[{'manager':'kage','operation':'Apply','apiVersion':'v1',"
    "'time':'2026-11-28T09:59:48Z','fieldsType':'FieldsV1','fieldsV1':{'f:metadata':{"
    "'f:annotations':{'f:kage.dev/spec-hash':{}},'f:labels':{'f:kage.dev/sandbox':{}}},"
    "'f:spec':{'f:containers':{'k:{\\\"name\\\":\\\"sandbox\\\"}':{'.':{},'f:image':{},"
    "'f:name':{}}}}}},"
    "{'manager':'kubelet','operation':'Update','apiVersion':'v1','time':'2026-11-28T09:59:55Z',"
    "'fieldsType':'FieldsV1','fieldsV1':{'f:status':{'f:conditions':{"
    "'k:{\\\"type\\\":\\\"Ready\\\"}':{'f:status':{}}},'f:containerStatuses':{}}},"
    "'subresource':'status'}]},"
    "'spec':{'runtimeClassName':'kata-fc','restartPolicy':'Never','nodeName':'node-1',"
    "'containers':[{'name':'istio-proxy','image':'docker.io/istio/proxyv2:1.24.0',"
    "'args':['proxy','sidecar']},"
    "{'name':'sandbox','image':'python:3.12-slim','imagePullPolicy':'IfNotPresent',"
    "'command':['/bin/sh','-c','sleep infinity'],'resources':{'limits':{'memory':'1Gi'}}}]},"
    "'status':{'phase':'Pending','hostIP':'192.168.5.2','podIP':'10.42.0.17',"
    "'podIPs':[{'ip':'10.42.0.17'}],'startTime':'2026-11-28T09:59:50Z','qosClass':'Guaranteed',"
    "'conditions':[{'type':'PodReadyToStartContainers','status':'True',"
    "'lastTransitionTime':'2026-11-28T09:59:52Z'},"
    "{'type':'Initialized','status':'True','lastTransitionTime':'2026-11-28T09:59:50Z'},"
    "{'type':'Ready','status':'False','lastTransitionTime':'2026-11-28T09:59:50Z',"
    "'reason':'ContainersNotReady','message':'containers with unready status: [sandbox]'},"
    "{'type':'ContainersReady','status':'False','lastTransitionTime':'2026-11-28T09:59:50Z',"
    "'reason':'ContainersNotReady','message':'containers with unready status: [sandbox]'},"
    "{'type':'PodScheduled','status':'True','lastTransitionTime':'2026-11-28T09:59:48Z'}],"
    "'containerStatuses':[{'name':'istio-proxy','state':{'terminated':{'exitCode':0,"
    "'reason':'Completed','message':'proxy done','startedAt':'2026-11-28T09:59:53Z',"
    "'finishedAt':'2026-11-28T09:59:54Z'}},'ready':false,'restartCount':0,"
    "'image':'docker.io/istio/proxyv2:1.24.0','imageID':'','started':false},"
    "{'name':'sandbox','state':{'waiting':{'reason':'ImagePullBackOff',"
    "'message':'Back-off pulling image \\\"python:3.12-slim\\\"'}},'lastState':{},"
    "'ready':false,'restartCount':0,'image':'python:3.12-slim','imageID':'','started':false}]}}";

static void a_pod_as_the_api_server_sends_it_is_decoded_field_by_field(void **state)
{
    (void)state;
    /* The sidecar's terminated state is not the sandbox's. */
    expect_pod(pulling,
               "{'uid':'" POD_UID "','owner_uid':'" SBX_UID "','sandbox':'agent-42',"
               "'spec_hash':'236741f622b9d5fb','image':'python:3.12-slim',"
               "'pod_ip':'10.42.0.17','node_name':'node-1','start_time':'2026-11-28T09:59:50Z',"
               "'reason':'','message':'','waiting_reason':'ImagePullBackOff',"
               "'waiting_message':'Back-off pulling image \\\"python:3.12-slim\\\"',"
               "'term_reason':'','term_message':'','term_exit_code':0,'terminated':false,"
               "'deleting':false,'ready':false,'owned':true,'phase':'Pending'}",
               "image pull back-off");
}

/* The same sandbox's pod after it ran out of memory, being deleted. */
static const char oom_killed[] =
    "{'kind':'Pod','apiVersion':'v1','metadata':{'name':'agent-42','namespace':'team-a',"
    "'uid':'" POD_UID "','resourceVersion':'48890','deletionTimestamp':'2026-11-28T10:05:00Z',"
    "'deletionGracePeriodSeconds':5,"
    "'labels':{'app.kubernetes.io/managed-by':'kage','kage.dev/sandbox':'agent-42'},"
    "'annotations':{'kage.dev/spec-hash':'236741f622b9d5fb'},"
    "'ownerReferences':[{'apiVersion':'v1','kind':'ConfigMap','name':'x','uid':'cm-uid'},"
    "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','name':'agent-42',"
    "'uid':'" SBX_UID "','controller':true,'blockOwnerDeletion':true}],"
    "'managedFields':[{'manager':'kage','operation':'Apply','apiVersion':'v1',"
    "'fieldsType':'FieldsV1','fieldsV1':{'f:spec':{}}}]},"
    "'spec':{'nodeName':'node-1','containers':[{'name':'istio-proxy','image':'proxy'},"
    "{'name':'sandbox','image':'python:3.12-slim'}]},"
    "'status':{'phase':'Failed','podIP':'10.42.0.17','startTime':'2026-11-28T09:59:50Z',"
    "'conditions':[{'type':'Ready','status':'False','reason':'PodFailed'},"
    "{'type':'PodScheduled','status':'True'}],"
    "'containerStatuses':[{'name':'istio-proxy','state':{'running':{'startedAt':"
    "'2026-11-28T09:59:53Z'}},'ready':true},"
    "{'name':'sandbox','state':{'terminated':{'exitCode':137,'reason':'OOMKilled',"
    "'startedAt':'2026-11-28T09:59:56Z','finishedAt':'2026-11-28T10:04:58Z',"
    "'containerID':'containerd://4f1e'}},'ready':false,'restartCount':0}]}}";

static void a_terminated_sandbox_container_gives_its_reason_and_code(void **state)
{
    (void)state;
    expect_pod(oom_killed,
               "{'uid':'" POD_UID "','owner_uid':'" SBX_UID "','sandbox':'agent-42',"
               "'spec_hash':'236741f622b9d5fb','image':'python:3.12-slim',"
               "'pod_ip':'10.42.0.17','node_name':'node-1','start_time':'2026-11-28T09:59:50Z',"
               "'reason':'','message':'','waiting_reason':'','waiting_message':'',"
               "'term_reason':'OOMKilled','term_message':'','term_exit_code':137,"
               "'terminated':true,'deleting':true,'ready':false,'owned':true,'phase':'Failed'}",
               "OOMKilled");
}

/* A terminated container "was Ready" when the kubelet's Ready condition
 * changed after the container started (True, then False at its end); a
 * pod never Ready keeps the transition of its start, and a status without
 * the times says nothing. */
static void a_pod_that_was_ready_before_it_ended_says_so(void **state)
{
    (void)state;
    static const struct {
        const char *ready_since, *started;
        bool was_ready;
    } cases[] = {
        {"2026-11-28T10:04:58Z", "2026-11-28T09:59:56Z", true},
        {"2026-11-28T09:59:51Z", "2026-11-28T09:59:56Z", false},
        {"2026-11-28T09:59:56Z", "2026-11-28T09:59:56Z", false},
        {NULL, "2026-11-28T09:59:56Z", false},
        {"2026-11-28T10:04:58Z", NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        char since[64] = "", started[64] = "";
        if (cases[i].ready_since)
            snprintf(since, sizeof(since), ",'lastTransitionTime':'%s'", cases[i].ready_since);
        if (cases[i].started)
            snprintf(started, sizeof(started), ",'startedAt':'%s'", cases[i].started);
        snprintf(text, sizeof(text),
                 "{'metadata':{'uid':'u'},'status':{'phase':'Failed','conditions':[{'type':"
                 "'Ready','status':'False'%s}],'containerStatuses':[{'name':'sandbox','state':"
                 "{'terminated':{'exitCode':3%s}}}]}}",
                 since, started);
        struct pod_obj *p = decode_pod(text);
        if (p->was_ready != cases[i].was_ready)
            fail_msg("case %zu: was_ready %d", i, p->was_ready);
        free(p);
    }
    /* Running: not ended, so not "was". */
    struct pod_obj *p = decode_pod("{'metadata':{'uid':'u'},'status':{'phase':'Running',"
                                   "'conditions':[{'type':'Ready','status':'True',"
                                   "'lastTransitionTime':'2026-11-28T10:04:58Z'}]}}");
    assert_false(p->was_ready);
    free(p);
}

static void an_unschedulable_pod_gives_the_schedulers_reason(void **state)
{
    (void)state;
    expect_pod("{'kind':'Pod','apiVersion':'v1','metadata':{'name':'agent-42',"
               "'namespace':'team-a','uid':'" POD_UID "',"
               "'labels':{'kage.dev/sandbox':'agent-42'},"
               "'ownerReferences':[{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox',"
               "'name':'agent-42','uid':'" SBX_UID "','controller':true}]},"
               "'spec':{'containers':[{'name':'sandbox','image':'python:3.12-slim'}]},"
               "'status':{'phase':'Pending','qosClass':'Guaranteed','conditions':["
               "{'type':'PodScheduled','status':'False','lastProbeTime':null,"
               "'lastTransitionTime':'2026-11-28T09:59:48Z','reason':'Unschedulable',"
               "'message':'0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 "
               "nodes are available: 3 No preemption victims found for incoming pod.'}]}}",
               "{'uid':'" POD_UID "','owner_uid':'" SBX_UID "','sandbox':'agent-42',"
               "'spec_hash':'','image':'python:3.12-slim','pod_ip':'','node_name':'',"
               "'start_time':'','reason':'Unschedulable','message':'0/3 nodes are available: "
               "3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption "
               "victims found for incoming pod.','waiting_reason':'','waiting_message':'',"
               "'term_reason':'','term_message':'','term_exit_code':0,'terminated':false,"
               "'deleting':false,'ready':false,'owned':true,'phase':'Pending'}",
               "Unschedulable");

    /* The pod's own reason (an eviction) comes before the scheduler's. */
    expect_pod("{'metadata':{'uid':'u'},'status':{'phase':'Failed','reason':'Evicted',"
               "'message':'The node was low on resource: memory.','conditions':["
               "{'type':'PodScheduled','status':'False','reason':'Unschedulable',"
               "'message':'no nodes'},{'type':'Ready','status':'True'}]}}",
               "{'uid':'u','owner_uid':'','sandbox':'','spec_hash':'','image':'','pod_ip':'',"
               "'node_name':'','start_time':'','reason':'Evicted',"
               "'message':'The node was low on resource: memory.','waiting_reason':'',"
               "'waiting_message':'','term_reason':'','term_message':'','term_exit_code':0,"
               "'terminated':false,'deleting':false,'ready':true,'owned':false,"
               "'phase':'Failed'}",
               "Evicted");
}

static void a_pod_without_the_sandbox_container_has_no_container_state(void **state)
{
    (void)state;
    expect_pod("{'metadata':{'uid':'u','ownerReferences':[{'apiVersion':'apps/v1',"
               "'kind':'ReplicaSet','name':'web-5d4f','uid':'rs-uid','controller':true}],"
               "'labels':{'kage.dev/sandbox':'agent-42'}},"
               "'spec':{'nodeName':'node-2','containers':[{'name':'web','image':'nginx'}]},"
               "'status':{'phase':'Running','podIP':'10.42.1.9','containerStatuses':["
               "{'name':'web','state':{'terminated':{'exitCode':1,'reason':'Error'}}}],"
               "'conditions':[{'type':'Ready','status':'True'}]}}",
               "{'uid':'u','owner_uid':'rs-uid','sandbox':'agent-42','spec_hash':'',"
               "'image':'','pod_ip':'10.42.1.9','node_name':'node-2','start_time':'',"
               "'reason':'','message':'','waiting_reason':'','waiting_message':'',"
               "'term_reason':'','term_message':'','term_exit_code':0,'terminated':false,"
               "'deleting':false,'ready':true,'owned':false,'phase':'Running'}",
               "no sandbox container");
}

static void owner_and_phase_are_read_strictly(void **state)
{
    (void)state;
    struct pod_obj *p;
    /* Not the controller reference, and a Sandbox of another group: not owned. */
    p = decode_pod("{'metadata':{'uid':'u','ownerReferences':["
                   "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','uid':'a'},"
                   "{'apiVersion':'example.com/v1','kind':'Sandbox','uid':'b','controller':true}"
                   "]},'status':{'phase':'Succeeded'}}");
    assert_false(p->owned);
    assert_string_equal(p->owner_uid, "b");
    assert_int_equal(p->phase, POD_SUCCEEDED);
    free(p);
    /* A phase this code does not know, and none at all. */
    p = decode_pod("{'metadata':{'uid':'u'},'status':{'phase':'Paused'}}");
    assert_int_equal(p->phase, POD_UNKNOWN);
    free(p);
    p = decode_pod("{'metadata':{'uid':'u'},'status':{'phase':'Unknown'}}");
    assert_int_equal(p->phase, POD_UNKNOWN);
    free(p);
    p = decode_pod("{'metadata':{'uid':'u'}}");
    assert_int_equal(p->phase, POD_PENDING);
    assert_false(p->ready);
    free(p);
}

static int exit_code_of(const char *code)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{'metadata':{'uid':'u'},'spec':{'containers':[{'name':'sandbox'}]},"
             "'status':{'containerStatuses':[{'name':'sandbox','state':{'terminated':"
             "{'exitCode':%s,'reason':'Error'}}}]}}",
             code);
    struct pod_obj *p = decode_pod(text);
    assert_true(p->terminated);
    int c = p->term_exit_code;
    free(p);
    return c;
}

static void an_exit_code_out_of_int_range_reads_as_minus_one(void **state)
{
    (void)state;
    assert_int_equal(exit_code_of("4294967296"), -1);
    assert_int_equal(exit_code_of("2147483648"), -1);
    assert_int_equal(exit_code_of("-2147483649"), -1);
    assert_int_equal(exit_code_of("9223372036854775807"), -1);
    assert_int_equal(exit_code_of("2147483647"), 2147483647);
    assert_int_equal(exit_code_of("-2147483648"), -2147483647 - 1);
    assert_int_equal(exit_code_of("255"), 255);
    /* A code that is not a number reads as 0. */
    assert_int_equal(exit_code_of("'137'"), 0);
}

static void a_pod_without_a_uid_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{'metadata':{'name':'agent-42','namespace':'team-a'}}",
        "{'metadata':{'name':'agent-42','uid':7}}",
        "{'metadata':null}",
        "{}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        json_t *j = parse(bad[i]);
        void *p = observed_decode_pod(j, err, sizeof(err));
        json_decref(j);
        if (p) {
            free(p);
            fail_msg("accepted: %s", bad[i]);
        }
        assert_string_equal(err, "pod without metadata.uid");
    }
}

/* Whether any object in v has a member named in names. */
static bool has_member(json_t *v, const char *const *names, const char **found)
{
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, m)
        {
            for (const char *const *n = names; *n; n++)
                if (strcmp(k, *n) == 0) {
                    *found = *n;
                    return true;
                }
            if (has_member(m, names, found))
                return true;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (has_member(m, names, found))
                return true;
        }
    }
    return false;
}

/* Pod events are cut (observed_pod_unread) before they are parsed: a cut
 * pod must decode exactly as the whole one, and lose every listed member. */
static void a_pod_cut_of_what_is_never_read_decodes_the_same(void **state)
{
    (void)state;
    const char *const pods[] = {pulling, oom_killed};
    for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
        json_t *whole = parse(pods[i]);
        char *text = json_dumps(whole, JSON_COMPACT);
        assert_non_null(text);
        size_t len = strlen(text), before = len;
        assert_true(jsonscan_strip_members(text, &len, observed_pod_unread) > 0);
        assert_true(len < before);
        json_error_t je;
        json_t *cut = json_loadb(text, len, 0, &je);
        if (!cut)
            fail_msg("pod %zu: the cut text does not parse: %s", i, je.text);
        const char *found = NULL;
        if (has_member(cut, observed_pod_unread, &found))
            fail_msg("pod %zu: member %s is left", i, found);

        char err[128] = "";
        struct pod_obj *a = observed_decode_pod(whole, err, sizeof(err));
        struct pod_obj *b = observed_decode_pod(cut, err, sizeof(err));
        assert_non_null(a);
        assert_non_null(b);
        expect_json(pod_fields(b), pod_fields(a), "the cut pod");
        free(a);
        free(b);
        json_decref(cut);
        json_decref(whole);
        free(text);
    }
}

/* A message of n bytes: 'a' * ascii, then tail. */
static char *message_of(size_t ascii, const char *tail)
{
    size_t t = strlen(tail);
    char *m = malloc(ascii + t + 1);
    assert_non_null(m);
    memset(m, 'a', ascii);
    memcpy(m + ascii, tail, t + 1);
    return m;
}

static struct pod_obj *pod_with_message(const char *message)
{
    json_t *j =
        json_pack("{s:{s:s}, s:{s:s}}", "metadata", "uid", "u", "status", "message", message);
    char err[128] = "";
    assert_non_null(j);
    struct pod_obj *p = observed_decode_pod(j, err, sizeof(err));
    json_decref(j);
    assert_non_null(p);
    return p;
}

static void expect_message_cut(size_t ascii, const char *tail, size_t kept)
{
    char *m = message_of(ascii, tail);
    struct pod_obj *p = pod_with_message(m);
    if (strlen(p->message) != kept || strncmp(p->message, m, kept) != 0)
        fail_msg("%zu ASCII + %zu bytes: kept %zu bytes, want %zu", ascii, strlen(tail),
                 strlen(p->message), kept);
    free(p);
    free(m);
}

static void an_overlong_message_is_cut_at_a_utf8_boundary(void **state)
{
    (void)state;
    /* Messages are kept up to 1024 bytes. */
    expect_message_cut(1024, "", 1024);
    expect_message_cut(1025, "", 1024);
    expect_message_cut(5000, "", 1024);
    /* A character across the limit goes whole. */
    expect_message_cut(1023, "\xc3\xa9", 1023);             /* é at 1023..1024 */
    expect_message_cut(1022, "\xe2\x82\xac", 1022);         /* € at 1022..1024 */
    expect_message_cut(1021, "\xf0\x9f\x98\x80", 1021);     /* 😀 at 1021..1024 */
    expect_message_cut(1023, "\xf0\x9f\x98\x80tail", 1023); /* 😀 at 1023..1026 */
    /* One that ends at the limit stays. */
    expect_message_cut(1020, "\xf0\x9f\x98\x80", 1024);
    expect_message_cut(1020, "\xf0\x9f\x98\x80more", 1024);
    expect_message_cut(1022, "\xc3\xa9\xc3\xa9", 1024);

    /* Names and reasons are kept up to 253 bytes, the hash to 16. */
    char *reason = message_of(300, "");
    json_t *j = json_pack("{s:{s:s, s:{s:s}}, s:{s:s}}", "metadata", "uid", "u", "annotations",
                          ANNOT_SPEC_HASH, "0123456789abcdef0123", "status", "reason", reason);
    char err[128];
    struct pod_obj *p = observed_decode_pod(j, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(strlen(p->reason), 253);
    assert_string_equal(p->spec_hash, "0123456789abcdef");
    free(p);
    json_decref(j);
    free(reason);
}

static void the_hash_is_sha256_of_the_canonical_text(void **state)
{
    (void)state;
    char h[SPEC_HASH_LEN + 1];
    /* sha256('{"a":[true,null],"b":"\u00e9"}') and sha256('null'), cut. */
    json_t *v = parse("{'b':'\\u00e9','a':[true,null]}");
    assert_int_equal(observed_hash(v, h), 0);
    assert_string_equal(h, "1228595fd72941f4");
    json_decref(v);
    assert_int_equal(observed_hash(json_null(), h), 0);
    assert_string_equal(h, "74234e98afe7498f");
}

/* The sandbox's policy as the API server returns it after kage applied it. */
#define POLICY(md_extra, spec)                                                                     \
    "{'kind':'NetworkPolicy','apiVersion':'networking.k8s.io/v1','metadata':{'name':'agent-42',"   \
    "'namespace':'team-a','uid':'9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d',"                           \
    "'resourceVersion':'48200','generation':1,'creationTimestamp':'2026-11-28T09:59:47Z',"         \
    "'managedFields':[{'manager':'kage','operation':'Update','apiVersion':'networking.k8s.io/v1'," \
    "'time':'2026-11-28T09:59:47Z','fieldsType':'FieldsV1','fieldsV1':{'f:spec':{}}}]" md_extra    \
    "},'spec':" spec "}"
#define KAGE_LABELS \
    ",'labels':{'app.kubernetes.io/managed-by':'kage','kage.dev/sandbox':'agent-42'}"
#define KAGE_OWNER                                                                              \
    ",'ownerReferences':[{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','name':'agent-42'," \
    "'uid':'" SBX_UID "','controller':true,'blockOwnerDeletion':true}]"
#define POLICY_SPEC                                                                               \
    "{'podSelector':{'matchLabels':{'kage.dev/sandbox':'agent-42'}},'egress':[{'ports':["         \
    "{'protocol':'UDP','port':53},{'protocol':'TCP','port':53}],'to':[{'namespaceSelector':"      \
    "{'matchLabels':{'kubernetes.io/metadata.name':'kube-system'}},'podSelector':{'matchLabels':" \
    "{'k8s-app':'kube-dns'}}}]}],'policyTypes':['Ingress','Egress']}"

static struct policy_obj *decode_policy(const char *text)
{
    char err[128] = "";
    json_t *j = parse(text);
    struct policy_obj *p = observed_decode_policy(j, err, sizeof(err));
    json_decref(j);
    if (!p)
        fail_msg("policy refused: %s", err);
    return p;
}

static json_t *policy_fields(const struct policy_obj *p)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:s}", "uid", p->uid, "owner_uid",
                          p->owner_uid, "sandbox", p->sandbox, "owned", p->owned, "managed",
                          p->managed, "deleting", p->deleting, "spec_hash", p->spec_hash);
    assert_non_null(j);
    return j;
}

static void spec_hash_of(const char *spec_text, char out[SPEC_HASH_LEN + 1])
{
    json_t *s = parse(spec_text);
    assert_int_equal(observed_hash(s, out), 0);
    json_decref(s);
}

static void expect_policy(const char *text, const char *want_without_hash, const char *spec_text,
                          const char *what)
{
    char h[SPEC_HASH_LEN + 1];
    struct policy_obj *p = decode_policy(text);
    json_t *want = parse(want_without_hash);
    spec_hash_of(spec_text, h);
    assert_int_equal(json_object_set_new(want, "spec_hash", json_string(h)), 0);
    expect_json(policy_fields(p), want, what);
    free(p);
}

static void a_policy_kage_made_is_owned_managed_and_hashed_by_its_spec(void **state)
{
    (void)state;
    expect_policy(POLICY(KAGE_LABELS KAGE_OWNER, POLICY_SPEC),
                  "{'uid':'9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d','owner_uid':'" SBX_UID "',"
                  "'sandbox':'agent-42','owned':true,'managed':true,'deleting':false}",
                  POLICY_SPEC, "kage's policy");

    /* Being deleted. */
    expect_policy(
        POLICY(KAGE_LABELS KAGE_OWNER ",'deletionTimestamp':'2026-11-28T10:00:00Z'", POLICY_SPEC),
        "{'uid':'9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d','owner_uid':'" SBX_UID "',"
        "'sandbox':'agent-42','owned':true,'managed':true,'deleting':true}",
        POLICY_SPEC, "deleting");
}

static void a_policy_of_someone_else_is_neither_owned_nor_managed(void **state)
{
    (void)state;
    /* Someone's own policy of the same name: no owner, no kage label. */
    expect_policy(POLICY(",'labels':{'app.kubernetes.io/managed-by':'helm'}", POLICY_SPEC),
                  "{'uid':'9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d','owner_uid':'','sandbox':'',"
                  "'owned':false,'managed':false,'deleting':false}",
                  POLICY_SPEC, "helm's policy");

    /* kage's label copied onto a policy another controller owns. */
    expect_policy(POLICY(KAGE_LABELS ",'ownerReferences':[{'apiVersion':'apps/v1',"
                                     "'kind':'Deployment','name':'web','uid':'dep-uid',"
                                     "'controller':true}]",
                         "{}"),
                  "{'uid':'9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d','owner_uid':'dep-uid',"
                  "'sandbox':'agent-42','owned':false,'managed':true,'deleting':false}",
                  "{}", "another controller's");

    /* No spec at all hashes as null. */
    char err[128] = "";
    json_t *j = parse("{'metadata':{'uid':'u'}}");
    struct policy_obj *p = observed_decode_policy(j, err, sizeof(err));
    json_decref(j);
    assert_non_null(p);
    assert_string_equal(p->spec_hash, "74234e98afe7498f");
    free(p);
}

static void an_edit_of_the_spec_changes_the_hash_and_metadata_does_not(void **state)
{
    (void)state;
    struct policy_obj *a = decode_policy(POLICY(KAGE_LABELS KAGE_OWNER, POLICY_SPEC));
    /* Another resourceVersion, labels, key order: the spec is the same. */
    struct policy_obj *b = decode_policy(
        "{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','spec':{"
        "'policyTypes':['Ingress','Egress'],'egress':[{'to':[{'podSelector':{'matchLabels':"
        "{'k8s-app':'kube-dns'}},'namespaceSelector':{'matchLabels':"
        "{'kubernetes.io/metadata.name':'kube-system'}}}],'ports':[{'port':53,'protocol':'UDP'},"
        "{'port':53,'protocol':'TCP'}]}],'podSelector':{'matchLabels':"
        "{'kage.dev/sandbox':'agent-42'}}},'metadata':{'uid':'other','resourceVersion':'9'}}");
    /* Someone opened port 443 to everything. */
    struct policy_obj *c = decode_policy(POLICY(
        KAGE_LABELS KAGE_OWNER,
        "{'podSelector':{'matchLabels':{'kage.dev/sandbox':'agent-42'}},'egress':[{'ports':["
        "{'protocol':'UDP','port':53},{'protocol':'TCP','port':53}],'to':[{'namespaceSelector':"
        "{'matchLabels':{'kubernetes.io/metadata.name':'kube-system'}},'podSelector':"
        "{'matchLabels':{'k8s-app':'kube-dns'}}}]},{'ports':[{'protocol':'TCP','port':443}]}],"
        "'policyTypes':['Ingress','Egress']}"));
    assert_string_equal(a->spec_hash, b->spec_hash);
    assert_string_not_equal(a->spec_hash, c->spec_hash);
    free(a);
    free(b);
    free(c);
}

static void a_rendered_policy_read_back_hashes_as_rendered(void **state)
{
    (void)state;
    json_t *sbx = parse("{'metadata':{'name':'agent-42','namespace':'team-a','uid':'" SBX_UID "'},"
                        "'spec':{'image':'busybox','egress':{'allow':[{'cidr':'203.0.113.5/24',"
                        "'except':['203.0.113.7/32'],'ports':[{'port':8000,'endPort':8100}]}]}}}");
    json_t *pol = render_policy(sbx);
    assert_non_null(pol);
    char want[SPEC_HASH_LEN + 1];
    assert_int_equal(observed_hash(json_object_get(pol, "spec"), want), 0);
    /* What the server adds is all metadata. */
    json_t *md = json_object_get(pol, "metadata");
    json_object_set_new(md, "uid", json_string("9a8b7c6d"));
    json_object_set_new(md, "resourceVersion", json_string("48200"));
    json_object_set_new(md, "generation", json_integer(1));
    char err[128] = "";
    struct policy_obj *p = observed_decode_policy(pol, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(p->spec_hash, want);
    assert_true(p->owned);
    assert_true(p->managed);
    assert_string_equal(p->owner_uid, SBX_UID);
    assert_string_equal(p->sandbox, "agent-42");
    free(p);
    json_decref(pol);
    json_decref(sbx);
}

static void a_policy_without_a_uid_is_refused(void **state)
{
    (void)state;
    char err[128] = "";
    json_t *j = parse(POLICY(KAGE_LABELS, POLICY_SPEC));
    json_object_del(json_object_get(j, "metadata"), "uid");
    void *p = observed_decode_policy(j, err, sizeof(err));
    json_decref(j);
    assert_null(p);
    assert_string_equal(err, "network policy without metadata.uid");
}

/* A Sandbox as the API server returns it. */
static const char sandbox_text[] =
    "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','metadata':{"
    "'annotations':{'kubectl.kubernetes.io/last-applied-configuration':'{\\\"apiVersion\\\":"
    "\\\"kage.dev/v1alpha1\\\"}\\n'},'creationTimestamp':'2026-11-28T09:59:46Z',"
    "'finalizers':['kage.dev/cleanup'],'generation':3,'name':'agent-42','namespace':'team-a',"
    "'resourceVersion':'48230','uid':'" SBX_UID "',"
    "'managedFields':[{'apiVersion':'kage.dev/v1alpha1','fieldsType':'FieldsV1','fieldsV1':"
    "{'f:spec':{'.':{},'f:image':{}}},'manager':'kubectl-client-side-apply',"
    "'operation':'Update','time':'2026-11-28T09:59:46Z'}]},"
    "'spec':{'image':'python:3.12-slim','env':[{'name':'GREETING','value':'h\\u00e9llo'}],"
    "'resources':{'memory':'512Mi','cpu':2},'egress':{'dns':true}},"
    "'status':{'phase':'Running','observedGeneration':3,'podName':'agent-42'}}";

static struct sandbox_obj *decode_sandbox(const char *text)
{
    char err[128] = "";
    json_t *j = parse(text);
    struct sandbox_obj *s = observed_decode_sandbox(j, err, sizeof(err));
    json_decref(j);
    if (!s)
        fail_msg("sandbox refused: %s", err);
    return s;
}

static json_t *sandbox_fields(const struct sandbox_obj *s)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "ns", s->ns, "name", s->name, "uid",
                  s->uid, "created", s->created, "spec", s->spec, "status", s->status, "generation",
                  (json_int_t)s->generation, "deleting", s->deleting);
    assert_non_null(j);
    return j;
}

static void a_sandbox_is_cached_as_identity_and_canonical_texts(void **state)
{
    (void)state;
    struct sandbox_obj *s = decode_sandbox(sandbox_text);
    /* spec and status as compact text with sorted keys. */
    expect_json(sandbox_fields(s),
                parse("{'ns':'team-a','name':'agent-42','uid':'" SBX_UID "',"
                      "'created':'2026-11-28T09:59:46Z',"
                      "'spec':'{\\\"egress\\\":{\\\"dns\\\":true},\\\"env\\\":[{\\\"name\\\":"
                      "\\\"GREETING\\\",\\\"value\\\":\\\"h\\u00e9llo\\\"}],\\\"image\\\":"
                      "\\\"python:3.12-slim\\\",\\\"resources\\\":{\\\"cpu\\\":2,\\\"memory\\\":"
                      "\\\"512Mi\\\"}}',"
                      "'status':'{\\\"observedGeneration\\\":3,\\\"phase\\\":\\\"Running\\\","
                      "\\\"podName\\\":\\\"agent-42\\\"}',"
                      "'generation':3,'deleting':false}"),
                "sandbox");

    /* Rebuilt: identity, spec and status, and nothing else. */
    expect_json(observed_sandbox_json(s),
                parse("{'metadata':{'name':'agent-42','namespace':'team-a','uid':'" SBX_UID "',"
                      "'generation':3,'creationTimestamp':'2026-11-28T09:59:46Z'},"
                      "'spec':{'image':'python:3.12-slim','env':[{'name':'GREETING',"
                      "'value':'h\\u00e9llo'}],'resources':{'memory':'512Mi','cpu':2},"
                      "'egress':{'dns':true}},"
                      "'status':{'phase':'Running','observedGeneration':3,'podName':'agent-42'}}"),
                "rebuilt sandbox");
    free(s);
}

static void a_sandbox_without_status_or_spec_gets_empty_ones(void **state)
{
    (void)state;
    struct sandbox_obj *s = decode_sandbox(
        "{'metadata':{'name':'agent-42','namespace':'team-a','uid':'u','generation':1,"
        "'deletionTimestamp':'2026-11-28T10:00:00Z'},'spec':{'image':'busybox'}}");
    expect_json(sandbox_fields(s),
                parse("{'ns':'team-a','name':'agent-42','uid':'u','created':'',"
                      "'spec':'{\\\"image\\\":\\\"busybox\\\"}','status':'{}','generation':1,"
                      "'deleting':true}"),
                "no status");
    expect_json(observed_sandbox_json(s),
                parse("{'metadata':{'name':'agent-42','namespace':'team-a','uid':'u',"
                      "'generation':1,'creationTimestamp':''},'spec':{'image':'busybox'},"
                      "'status':{}}"),
                "rebuilt, no status");
    free(s);

    /* No spec, a status that is not an object, no generation. */
    s = decode_sandbox("{'metadata':{'name':'agent-42','uid':'u'},'status':'broken'}");
    expect_json(sandbox_fields(s),
                parse("{'ns':'','name':'agent-42','uid':'u','created':'','spec':'null',"
                      "'status':'{}','generation':0,'deleting':false}"),
                "no spec");
    expect_json(observed_sandbox_json(s),
                parse("{'metadata':{'name':'agent-42','namespace':'','uid':'u','generation':0,"
                      "'creationTimestamp':''},'spec':null,'status':{}}"),
                "rebuilt, no spec");
    free(s);
}

/* A Sandbox of spec {"image": <k characters>} and status {"phase":"Paused"}:
 * texts of 12 + k and 18 bytes. */
static struct sandbox_obj *sized_sandbox(size_t k, bool whole)
{
    char *image = malloc(k + 1);
    assert_non_null(image);
    memset(image, 'x', k);
    image[k] = '\0';
    json_t *j = json_pack("{s:{s:s, s:s, s:s, s:i}, s:{s:s}, s:{s:s}}", "metadata", "name",
                          "agent-42", "namespace", "team-a", "uid", "u", "generation", 2, "spec",
                          "image", image, "status", "phase", "Paused");
    free(image);
    assert_non_null(j);
    char err[128] = "";
    struct sandbox_obj *s = whole ? observed_decode_sandbox_whole(j, err, sizeof(err))
                                  : observed_decode_sandbox(j, err, sizeof(err));
    json_decref(j);
    if (!s)
        fail_msg("sandbox refused: %s", err);
    return s;
}

/* The cache keeps a Sandbox's texts up to SANDBOX_INLINE_MAX bytes in all;
 * past that, identity, sizes and digests: an entry of a few hundred bytes
 * whatever the spec, the same digests as the Sandbox read whole. */
static void a_large_sandbox_is_cached_by_its_digests_alone(void **state)
{
    (void)state;
    size_t edge = SANDBOX_INLINE_MAX - 12 - 18;
    struct sandbox_obj *s = sized_sandbox(edge, false);
    assert_true(s->whole);
    assert_int_equal(strlen(s->spec), edge + 12);
    assert_string_equal(s->status, "{\"phase\":\"Paused\"}");
    free(s);

    s = sized_sandbox(edge + 1, false);
    struct sandbox_obj *whole = sized_sandbox(edge + 1, true);
    assert_false(s->whole);
    assert_null(s->spec);
    assert_null(s->status);
    assert_null(observed_sandbox_json(s));
    assert_true(whole->whole);
    assert_int_equal(s->spec_len, edge + 13);
    assert_int_equal(strlen(whole->spec), edge + 13);
    assert_int_equal(s->status_len, 18);
    assert_string_equal(s->spec_digest, whole->spec_digest);
    /* sha256('{"phase":"Paused"}'), cut */
    assert_string_equal(s->status_digest, "436e5aaf81e5d105a3f3f22e0d5f0d06");
    assert_string_equal(s->status_digest, whole->status_digest);
    assert_string_equal(s->phase, "Paused");
    assert_string_equal(s->name, "agent-42");
    assert_int_equal(s->generation, 2);
    assert_true(malloc_usable_size(s) < 512);
    free(s);

    /* A spec of a megabyte costs the cache no more. */
    s = sized_sandbox(1u << 20, false);
    assert_false(s->whole);
    assert_int_equal(s->spec_len, (1u << 20) + 12);
    assert_true(malloc_usable_size(s) < 512);
    assert_string_equal(s->status_digest, whole->status_digest);
    assert_string_not_equal(s->spec_digest, whole->spec_digest);
    free(s);
    free(whole);
}

/* kage's own status write coming back is recognised by size and digest. */
static void the_status_kage_wrote_is_recognised_by_its_digest(void **state)
{
    (void)state;
    struct sandbox_obj *s = sized_sandbox(SANDBOX_INLINE_MAX, false);
    assert_false(s->whole);
    assert_true(observed_sandbox_status_is(s, "{\"phase\":\"Paused\"}"));
    assert_false(observed_sandbox_status_is(s, "{\"phase\":\"Pausex\"}"));
    assert_false(observed_sandbox_status_is(s, "{\"phase\":\"Running\"}"));
    assert_false(observed_sandbox_status_is(s, "{}"));
    free(s);
    s = decode_sandbox("{'metadata':{'name':'agent-42','uid':'u'}}");
    /* sha256('null') and sha256('{}'), cut */
    assert_string_equal(s->spec_digest, "74234e98afe7498fb5daf1f36ac2d78a");
    assert_string_equal(s->status_digest, "44136fa355b3678a1146ad16f7e8649e");
    assert_true(observed_sandbox_status_is(s, "{}"));
    assert_string_equal(s->phase, "");
    free(s);
}

static void a_sandbox_without_name_or_uid_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{'metadata':{'name':'agent-42','namespace':'team-a'},'spec':{}}",
        "{'metadata':{'uid':'u','namespace':'team-a'},'spec':{}}",
        "{'metadata':'agent-42'}",
        "{'spec':{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        json_t *j = parse(bad[i]);
        void *s = observed_decode_sandbox(j, err, sizeof(err));
        json_decref(j);
        if (s) {
            free(s);
            fail_msg("accepted: %s", bad[i]);
        }
        assert_string_equal(err, "sandbox without metadata.name or uid");
    }
}

/* Runs step(n) with allocation n failing, n = 0, 1, ... until a run makes
 * no failure; step says whether its run went right. */
static void sweep(bool (*step)(json_t *in, char *why, size_t whylen), const char *input,
                  const char *what)
{
    char why[256];
    for (long n = 0;; n++) {
        json_t *in = parse(input);
        failed = false;
        json_set_alloc_funcs(fi_malloc, free);
        fail_at = n;
        bool ok = step(in, why, sizeof(why));
        fail_at = -1;
        json_set_alloc_funcs(malloc, free);
        json_decref(in);
        if (!ok)
            fail_msg("%s, allocation %ld failing: %s", what, n, why);
        if (!failed)
            break;
    }
}

static bool hash_step(json_t *in, char *why, size_t whylen)
{
    char want[SPEC_HASH_LEN + 1], got[SPEC_HASH_LEN + 1];
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(observed_hash(in, want), 0);
    json_set_alloc_funcs(fi_malloc, free);
    int rc = observed_hash(in, got);
    snprintf(why, whylen, "rc %d, hash %s, want -ENOMEM or %s", rc, rc ? "-" : got, want);
    return failed ? rc != 0 || strcmp(got, want) == 0 : rc == 0 && strcmp(got, want) == 0;
}

static bool policy_step(json_t *in, char *why, size_t whylen)
{
    char err[128] = "";
    json_set_alloc_funcs(malloc, free);
    struct policy_obj *want = observed_decode_policy(in, err, sizeof(err));
    assert_non_null(want);
    json_set_alloc_funcs(fi_malloc, free);
    struct policy_obj *got = observed_decode_policy(in, err, sizeof(err));
    bool ok = got ? strcmp(got->spec_hash, want->spec_hash) == 0 : failed;
    snprintf(why, whylen, "%s, spec hash %s, want NULL or %s", got ? "decoded" : err,
             got ? got->spec_hash : "-", want->spec_hash);
    free(got);
    free(want);
    return ok;
}

static bool sandbox_step(json_t *in, char *why, size_t whylen)
{
    char err[128] = "";
    json_set_alloc_funcs(malloc, free);
    struct sandbox_obj *want = observed_decode_sandbox(in, err, sizeof(err));
    assert_non_null(want);
    json_set_alloc_funcs(fi_malloc, free);
    struct sandbox_obj *got = observed_decode_sandbox(in, err, sizeof(err));
    bool ok = got ? strcmp(got->spec, want->spec) == 0 && strcmp(got->status, want->status) == 0
                  : failed && strcmp(err, "out of memory") == 0;
    snprintf(why, whylen, "%s: spec %.80s, status %.60s", got ? "decoded" : err,
             got ? got->spec : "-", got ? got->status : "-");
    free(got);
    free(want);
    return ok;
}

static bool rebuild_step(json_t *in, char *why, size_t whylen)
{
    char err[128] = "";
    json_set_alloc_funcs(malloc, free);
    struct sandbox_obj *s = observed_decode_sandbox(in, err, sizeof(err));
    assert_non_null(s);
    json_t *want = observed_sandbox_json(s);
    assert_non_null(want);
    json_set_alloc_funcs(fi_malloc, free);
    json_t *got = observed_sandbox_json(s);
    bool ok = got ? json_equal(got, want) : failed;
    snprintf(why, whylen, "%s", got ? "a different object" : "NULL without a failure");
    json_decref(got);
    json_set_alloc_funcs(malloc, free);
    json_decref(want);
    json_set_alloc_funcs(fi_malloc, free);
    free(s);
    return ok;
}

/* jansson's json_dumps ignores a failed write of an object's key (dump.c
 * calls dump_string for keys and drops its return), so under ENOMEM it can
 * give text with a key cut short, and no error. observed_hash never turns
 * that into a wrong hash: it fails, or gives the right one. (A wrong hash
 * would make a policy look edited and be rewritten, or give a pod a spec
 * hash no later render matches, so that it is recreated.) */
static void a_failed_allocation_never_gives_a_wrong_hash(void **state)
{
    (void)state;
    sweep(hash_step, POLICY_SPEC, "observed_hash");
    sweep(policy_step, POLICY(KAGE_LABELS KAGE_OWNER, POLICY_SPEC), "observed_decode_policy");
}

/* Under the same json_dumps flaw, observed_decode_sandbox fails rather
 * than cache a broken spec text. */
static void a_failed_allocation_never_caches_a_broken_spec_text(void **state)
{
    (void)state;
    sweep(sandbox_step, sandbox_text, "observed_decode_sandbox");
}

/* jansson's lexer ignores a failed append (load.c lex_save), so
 * json_loads under ENOMEM can drop a byte of a string and still succeed.
 * observed_sandbox_json fails rather than hand the reconciler another
 * spec ("python:3.12-slm", or another CIDR). */
static void a_failed_allocation_never_rebuilds_a_different_sandbox(void **state)
{
    (void)state;
    sweep(rebuild_step, sandbox_text, "observed_sandbox_json");
}

/* The pod selector of every policy is kept, canonical, so the controller
 * can tell whether a policy it did not write selects a sandbox pod; one
 * too long to keep is kept as "", which the reconcile reads as selecting
 * every pod. */
static void a_policy_keeps_its_pod_selector(void **state)
{
    (void)state;
    struct policy_obj *p =
        decode_policy("{'metadata':{'name':'agent-42','uid':'u'},'spec':" POLICY_SPEC "}");
    assert_string_equal(p->pod_selector, "{\"matchLabels\":{\"kage.dev/sandbox\":\"agent-42\"}}");
    free(p);
    p = decode_policy("{'metadata':{'name':'open','uid':'u'},'spec':{'egress':[{}]}}");
    assert_string_equal(p->pod_selector, "{}");
    free(p);
    char big[SELECTOR_MAX + 200];
    int n = snprintf(
        big, sizeof(big),
        "{'metadata':{'name':'big','uid':'u'},'spec':{'podSelector':{'matchLabels':{'k':'");
    memset(big + n, 'x', SELECTOR_MAX);
    snprintf(big + n + SELECTOR_MAX, sizeof(big) - (size_t)n - SELECTOR_MAX, "'}}}}");
    p = decode_policy(big);
    assert_string_equal(p->pod_selector, "");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_policy_keeps_its_pod_selector),
        cmocka_unit_test(a_pod_as_the_api_server_sends_it_is_decoded_field_by_field),
        cmocka_unit_test(a_pod_cut_of_what_is_never_read_decodes_the_same),
        cmocka_unit_test(a_terminated_sandbox_container_gives_its_reason_and_code),
        cmocka_unit_test(a_pod_that_was_ready_before_it_ended_says_so),
        cmocka_unit_test(an_unschedulable_pod_gives_the_schedulers_reason),
        cmocka_unit_test(a_pod_without_the_sandbox_container_has_no_container_state),
        cmocka_unit_test(owner_and_phase_are_read_strictly),
        cmocka_unit_test(an_exit_code_out_of_int_range_reads_as_minus_one),
        cmocka_unit_test(a_pod_without_a_uid_is_refused),
        cmocka_unit_test(an_overlong_message_is_cut_at_a_utf8_boundary),
        cmocka_unit_test(the_hash_is_sha256_of_the_canonical_text),
        cmocka_unit_test(a_policy_kage_made_is_owned_managed_and_hashed_by_its_spec),
        cmocka_unit_test(a_policy_of_someone_else_is_neither_owned_nor_managed),
        cmocka_unit_test(an_edit_of_the_spec_changes_the_hash_and_metadata_does_not),
        cmocka_unit_test(a_rendered_policy_read_back_hashes_as_rendered),
        cmocka_unit_test(a_policy_without_a_uid_is_refused),
        cmocka_unit_test(a_sandbox_is_cached_as_identity_and_canonical_texts),
        cmocka_unit_test(a_sandbox_without_status_or_spec_gets_empty_ones),
        cmocka_unit_test(a_sandbox_without_name_or_uid_is_refused),
        cmocka_unit_test(a_large_sandbox_is_cached_by_its_digests_alone),
        cmocka_unit_test(the_status_kage_wrote_is_recognised_by_its_digest),
        cmocka_unit_test(a_failed_allocation_never_gives_a_wrong_hash),
        cmocka_unit_test(a_failed_allocation_never_caches_a_broken_spec_text),
        cmocka_unit_test(a_failed_allocation_never_rebuilds_a_different_sandbox),
    };
    return cmocka_run_group_tests_name("observed", tests, NULL, NULL);
}
