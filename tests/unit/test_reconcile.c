// SPDX-License-Identifier: Apache-2.0
/* Unit tests for whole reconciles of one Sandbox, without an API server:
 * the real decisions (controller/reconcile/) carried out by the real
 * driver (sync.c) against a fake cluster (world.h) whose script answers
 * each request. Each row says what the cluster holds and answers, and the
 * exact requests, in order, that kage must send, the Ready reason it
 * writes, the Event it records and how the reconcile ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "json_expect.h"
#include "log.h"
#include "world.h"

#define SPEC       "{'image':'python:3.12-slim'}"
#define SANDBOX_RQ "sandboxes/" WORLD_NAME
#define STATUS_RQ  "PATCH sandboxes/" WORLD_NAME "/status"
#define BASELINE   "POST networkpolicies {kage-baseline}"
#define POLICY     "POST networkpolicies {" WORLD_NAME "}"
#define POD        "POST pods {" WORLD_NAME "}"
/* uids the fake API server gives a settled sandbox's children */
#define POLICY_UID "uid-2"
#define POD_UID    "uid-3"
#define POLICY_PUT "PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID
/* The policy made in this reconcile (uid from the create's answer, the
 * second object made) made to name the pod made right after it. */
#define POLICY_FOLLOWS "PUT networkpolicies/" WORLD_NAME " if uid=made-2"

#define QUOTA_MSG                                                                               \
    "pods \"agent\" is forbidden: exceeded quota: team-a-quota, requested: limits.memory=1Gi, " \
    "used: limits.memory=4Gi, limited: limits.memory=4Gi"
#define SA_MSG                                                                       \
    "pods \"agent\" is forbidden: error looking up service account team-a/default: " \
    "serviceaccount \"default\" not found"

static void pod_running(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("node-1"));
    json_object_set_new(pod, "status",
                        parse("{'phase':'Running','podIP':'10.42.0.17','startTime':"
                              "'2026-09-21T14:13:25Z','conditions':[{'type':'Ready','status':"
                              "'True'}],'containerStatuses':[{'name':'sandbox','ready':true,"
                              "'state':{'running':{}}}]}"));
}

static void pod_scheduled(json_t *pod)
{
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("node-1"));
    json_object_set_new(pod, "status", parse("{'phase':'Pending'}"));
}

/* A Sandbox of spec, reconciled with a watch that follows every write, its
 * pod then running and the status written: the state every later change
 * starts from. Its children got uids uid-1 (baseline), uid-2 (policy) and
 * uid-3 (pod). */
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

/* The Ready condition's field of the last status written, NULL when none
 * was written. */
static const char *written_ready(struct world *w, const char *field)
{
    for (unsigned i = w->nrequests; i-- > 0;) {
        if (strcmp(w->requests[i], STATUS_RQ) != 0)
            continue;
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(w->bodies[i], "status"), "conditions"),
                           k, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "type")), "Ready") == 0)
                return json_string_value(json_object_get(c, field));
        }
        fail_msg("a status without a Ready condition");
    }
    return NULL;
}

/* ---- the table -------------------------------------------------------- */

struct scripted {
    long code;
    const char *reason;
    const char *message;
    const char *object; /* JSON text, "@last..." (see world.h) or NULL */
};

struct row {
    const char *name;
    const char *spec;
    bool settled;                     /* start from a running sandbox (see settle) */
    void (*arrange)(struct world *w); /* then change the cluster, or NULL */
    struct scripted answers[6];       /* code 0 and no message ends the list */
    const char *requests[8];          /* exactly these, in order */
    const char *ready;                /* Ready reason written; NULL: no status write */
    enum outcome_kind outcome;
    uint64_t after_ms; /* OUTCOME_AFTER */
    const char *event; /* one Event recorded starts so; NULL: none */
};

static void drift_policy(json_t *obj)
{
    json_object_set_new(json_object_get(obj, "spec"), "egress", parse("[{}]"));
}

static void arrange_drifted_policy(struct world *w)
{
    world_edit(w, false, WORLD_NAME, drift_policy);
}

static void arrange_foreign_labelled_policy(struct world *w)
{
    world_put(w, false,
              parse("{'metadata':{'name':'agent','namespace':'team-a','uid':'theirs-1',"
                    "'labels':{'app.kubernetes.io/managed-by':'kage'}},"
                    "'spec':{'podSelector':{},'egress':[{}]}}"));
}

static void arrange_foreign_pod(struct world *w)
{
    world_put(w, true,
              parse("{'metadata':{'name':'agent','namespace':'team-a','uid':'theirs-1',"
                    "'labels':{'kage.dev/sandbox':'agent'}},'spec':{'containers':[]}}"));
}

static void relabel(json_t *pod)
{
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), LABEL_SANDBOX,
                        json_string("other"));
}

static void arrange_pod_relabelled(struct world *w)
{
    world_edit(w, true, WORLD_NAME, relabel);
}

/* The image changed in place (pods allow it), the annotation left as is. */
static void new_image_in_place(json_t *pod)
{
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0), "image",
        json_string("evil:latest"));
}

static void arrange_pod_image_edited(struct world *w)
{
    world_edit(w, true, WORLD_NAME, new_image_in_place);
}

/* Someone else's pod in the sandbox's place, with kage's labels, spec-hash
 * annotation and owner copied, but no runtime class and a token mounted. */
static void forged(json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    json_object_del(spec, "runtimeClassName");
    json_object_del(spec, "automountServiceAccountToken");
    json_object_set_new(json_object_get(pod, "metadata"), "uid", json_string("theirs-1"));
}

static void arrange_pod_forged(struct world *w)
{
    world_edit(w, true, WORLD_NAME, forged);
}

/* What the API server adds to or drops from the rendered pod when it
 * stores it: defaults, canonical quantities, empty env values left out. */
static void as_stored(json_t *pod)
{
    json_t *spec = json_object_get(pod, "spec");
    json_t *c = json_array_get(json_object_get(spec, "containers"), 0);
    json_object_set_new(spec, "dnsPolicy", json_string("ClusterFirst"));
    json_object_set_new(spec, "schedulerName", json_string("default-scheduler"));
    json_object_set_new(spec, "serviceAccountName", json_string("default"));
    json_object_set_new(spec, "priority", json_integer(0));
    json_object_set_new(spec, "nodeName", json_string("node-1"));
    json_object_del(spec, "hostNetwork");
    json_object_del(spec, "hostPID");
    json_object_del(spec, "hostIPC");
    json_object_set_new(spec, "tolerations",
                        json_pack("[{s:s, s:s, s:s, s:i}]", "key", "node.kubernetes.io/not-ready",
                                  "operator", "Exists", "effect", "NoExecute", "tolerationSeconds",
                                  300));
    json_t *res = json_object_get(c, "resources");
    json_object_set_new(json_object_get(res, "requests"), "memory", json_string("1024Mi"));
    json_object_set_new(json_object_get(res, "limits"), "cpu", json_string("1000m"));
    json_object_set_new(
        json_object_get(pod, "metadata"), "annotations",
        json_pack("{s:s}", ANNOT_SPEC_HASH,
                  json_string_value(json_object_get(
                      json_object_get(json_object_get(pod, "metadata"), "annotations"),
                      ANNOT_SPEC_HASH))));
}

static void arrange_pod_as_stored(struct world *w)
{
    world_edit(w, true, WORLD_NAME, as_stored);
}

static void arrange_pod_deleted(struct world *w)
{
    world_remove(w, true, WORLD_NAME);
}

static void arrange_expired(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','lifetime':{'ttlSeconds':60}}");
    w->wall = WORLD_NOW + 3600;
}

static void arrange_expired_retained(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','lifetime':{'ttlSeconds':60,'shutdownPolicy':"
                  "'Retain'}}");
    w->wall = WORLD_NOW + 3600;
}

static void arrange_expired_deleting(struct world *w)
{
    arrange_expired(w);
    world_sandbox_deleting(w);
}

static void arrange_new_image(struct world *w)
{
    world_spec(w, "{'image':'python:3.13-slim'}");
}

static void arrange_paused(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','paused':true}");
}

static void arrange_class_with_ceiling(struct world *w)
{
    world_class(w,
                "{'metadata':{'name':'small'},'spec':{'egress':{'allowedCIDRs':['10.0.0.0/8']}}}");
}

static void arrange_new_egress(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','egress':{'allow':[{'cidr':'203.0.113.0/24'}]}}");
}

static void arrange_policy_deleted(struct world *w)
{
    world_remove(w, false, WORLD_NAME);
}

static void policy_going(json_t *obj)
{
    json_object_set_new(json_object_get(obj, "metadata"), "deletionTimestamp",
                        json_string(WORLD_CREATED));
}

static void arrange_policy_going(struct world *w)
{
    world_edit(w, false, WORLD_NAME, policy_going);
}

static void earlier_owner(json_t *obj)
{
    json_t *ref =
        json_array_get(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), 0);
    json_object_set_new(ref, "uid", json_string("earlier"));
}

/* The children of an earlier Sandbox of the same name, not yet collected. */
static void arrange_earlier_children(struct world *w)
{
    world_edit(w, false, WORLD_NAME, earlier_owner);
    world_edit(w, true, WORLD_NAME, earlier_owner);
}

static void arrange_earlier_pod(struct world *w)
{
    world_edit(w, true, WORLD_NAME, earlier_owner);
}

static void arrange_default_class(struct world *w)
{
    world_class(w, "{'metadata':{'name':'fast','annotations':{'sandboxclass.kage.dev/"
                   "is-default-class':'true'}},'spec':{'runtimeClassName':'kata-qemu'}}");
}

static void arrange_two_default_classes(struct world *w)
{
    arrange_default_class(w);
    world_class(w, "{'metadata':{'name':'other','annotations':{'sandboxclass.kage.dev/"
                   "is-default-class':'true'}},'spec':{}}");
}

static void arrange_class_gone(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','sandboxClassName':'gone'}");
}

static void arrange_spec_invalid(struct world *w)
{
    world_spec(w, "{'image':'python:3.12-slim','resources':{'memory':'500m'}}");
}

/* Settled under a class that allowed everything, now allowing less. */
static void arrange_class_tightened(struct world *w)
{
    world_class(w,
                "{'metadata':{'name':'small'},'spec':{'egress':{'allowedCIDRs':['10.0.0.0/8']}}}");
}

/* The spec turns invalid (and loses its lifetime) after the recorded
 * expiry has passed. */
static void arrange_invalid_after_expiry(struct world *w)
{
    arrange_spec_invalid(w);
    w->wall = WORLD_NOW + 7200;
}

static void arrange_team_a(struct world *w)
{
    w->ns_labels = "{\"team\":\"a\"}";
}

static void arrange_class_for_team_b(struct world *w)
{
    arrange_team_a(w);
    world_class(w, "{'metadata':{'name':'small'},'spec':{'namespaceSelector':{'matchLabels':"
                   "{'team':'b'}}}}");
}

static void arrange_class_for_teams_a_b(struct world *w)
{
    arrange_team_a(w);
    world_class(w, "{'metadata':{'name':'small'},'spec':{'namespaceSelector':{"
                   "'matchExpressions':[{'key':'team','operator':'In','values':['a','b']}]}}}");
}

static void arrange_strict_default_for_team_b(struct world *w)
{
    arrange_team_a(w);
    w->env.rc.require_class = true;
    world_class(w, "{'metadata':{'name':'fast','annotations':{'sandboxclass.kage.dev/"
                   "is-default-class':'true'}},'spec':{'namespaceSelector':{'matchLabels':"
                   "{'team':'b'}}}}");
}

static void arrange_strict_default_for_team_a(struct world *w)
{
    arrange_team_a(w);
    w->env.rc.require_class = true;
    world_class(w, "{'metadata':{'name':'fast','annotations':{'sandboxclass.kage.dev/"
                   "is-default-class':'true'}},'spec':{'runtimeClassName':'kata-qemu',"
                   "'namespaceSelector':{'matchLabels':{'team':'a'}}}}");
}

static void arrange_namespace_relabelled(struct world *w)
{
    w->ns_labels = "{\"team\":\"z\"}";
}

static void arrange_foreign_open_policy(struct world *w)
{
    world_put(w, false,
              parse("{'metadata':{'name':'open-egress','namespace':'team-a','uid':'theirs-2'},"
                    "'spec':{'podSelector':{},'egress':[{}],'policyTypes':['Egress']}}"));
}

static void arrange_foreign_web_policy(struct world *w)
{
    world_put(w, false,
              parse("{'metadata':{'name':'web','namespace':'team-a','uid':'theirs-3'},"
                    "'spec':{'podSelector':{'matchLabels':{'app':'web'}},'egress':[{}]}}"));
}

static void disown(json_t *obj)
{
    json_object_del(json_object_get(obj, "metadata"), "ownerReferences");
}

static void arrange_policy_disowned(struct world *w)
{
    world_edit(w, false, WORLD_NAME, disown);
}

static void arrange_burst(struct world *w)
{
    w->queued = 5;
}

static void arrange_send_fails(struct world *w)
{
    w->send_error = -ENOMEM;
}

static const struct row rows[] = {
    {"a new sandbox gets its baseline, then its policy, then its pod, then its status",
     SPEC,
     false,
     NULL,
     {{0}},
     {BASELINE, POLICY, POD, POLICY_FOLLOWS, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated: created pod agent (runtime class kata-fc)"},
    {"a sandbox with everything in place sends nothing",
     SPEC,
     true,
     NULL,
     {{0}},
     {NULL},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a refused policy write makes no pod, and the status says why",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {403, "Forbidden", "networkpolicies.networking.k8s.io is forbidden: no", NULL}},
     {BASELINE, POLICY, STATUS_RQ},
     "Forbidden",
     OUTCOME_RETRY,
     0,
     "Warning Forbidden: NetworkPolicy refused: networkpolicies.networking.k8s.io is forbidden"},
    {"a drifted policy is replaced whole, pinned to its uid",
     SPEC,
     true,
     arrange_drifted_policy,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID},
     NULL,
     OUTCOME_DONE,
     0,
     "Warning PolicyRestored: NetworkPolicy team-a/agent was changed from outside; restored"},
    {"an unlabelled foreign policy of the same name is read, left alone, and no pod is made",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {409, "AlreadyExists", "networkpolicies \"agent\" already exists", NULL},
      {200, "", "", "@last-disowned"}},
     {BASELINE, POLICY, "GET networkpolicies/" WORLD_NAME, STATUS_RQ},
     "NameConflict",
     OUTCOME_RETRY,
     0,
     "Warning NameConflict: NetworkPolicy team-a/agent exists and is not owned by this Sandbox"},
    {"a foreign policy in the cache is left alone, and no pod is made",
     SPEC,
     false,
     arrange_foreign_labelled_policy,
     {{0}},
     {BASELINE, STATUS_RQ},
     "NameConflict",
     OUTCOME_RETRY,
     0,
     "Warning NameConflict: NetworkPolicy team-a/agent exists and is not owned"},
    {"a foreign pod of the same name is left alone",
     SPEC,
     false,
     arrange_foreign_pod,
     {{0}},
     {BASELINE, POLICY, STATUS_RQ},
     "NameConflict",
     OUTCOME_RETRY,
     0,
     "Warning NameConflict: pod team-a/agent exists and is not owned by this Sandbox"},
    {"409 on the policy, and it is ours as rendered: the watch only lags",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {409, "AlreadyExists", "networkpolicies \"agent\" already exists", NULL},
      {200, "", "", "@last"}},
     {BASELINE, POLICY, "GET networkpolicies/" WORLD_NAME, POD, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated"},
    {"409 on the baseline, which lost its labels: put back whole",
     SPEC,
     false,
     NULL,
     {{409, "AlreadyExists", "networkpolicies \"kage-baseline\" already exists", NULL},
      {200, "", "", "@last-unlabelled"}},
     {BASELINE, "GET networkpolicies/kage-baseline",
      "PUT networkpolicies/kage-baseline if uid=theirs-1", POLICY, POD,
      "PUT networkpolicies/" WORLD_NAME " if uid=made-1", STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Warning PolicyRestored: NetworkPolicy team-a/kage-baseline lost its labels"},
    {"409 on the pod, ours without the label the watch selects: replaced",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {201, "", "", NULL},
      {409, "AlreadyExists", "pods \"agent\" already exists", NULL},
      {200, "", "", "@last-unselected"}},
     {BASELINE, POLICY, POD, "GET pods/" WORLD_NAME, "DELETE pods/" WORLD_NAME " if uid=theirs-1",
      STATUS_RQ},
     "PodStarting",
     OUTCOME_AFTER,
     1000,
     "Normal PodReplaced: pod agent differs from the Sandbox (its kage.dev/sandbox label"},
    {"a pod whose sandbox label was changed is replaced, only the one with its uid",
     SPEC,
     true,
     arrange_pod_relabelled,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "PodReplacing",
     OUTCOME_AFTER,
     1000,
     "Normal PodReplaced: pod agent differs from the Sandbox (its kage.dev/sandbox label"},
    {"a quota refusal is reported, and looked at again in 5 s",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL}, {201, "", "", NULL}, {403, "Forbidden", QUOTA_MSG, NULL}},
     {BASELINE, POLICY, POD, STATUS_RQ},
     "QuotaExceeded",
     OUTCOME_AFTER,
     5000,
     "Warning QuotaExceeded: " QUOTA_MSG},
    {"a missing RuntimeClass is reported and retried with backoff",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {201, "", "", NULL},
      {403, "Forbidden",
       "pods \"agent\" is forbidden: pod rejected: RuntimeClass \"kata-fc\" not found", NULL}},
     {BASELINE, POLICY, POD, STATUS_RQ},
     "RuntimeClassNotFound",
     OUTCOME_RETRY,
     0,
     "Warning RuntimeClassNotFound: pods \"agent\" is forbidden: pod rejected"},
    {"a Pod Security refusal is Forbidden, with the server's words",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL},
      {201, "", "", NULL},
      {403, "Forbidden", "pods \"agent\" is forbidden: violates PodSecurity \"restricted:latest\"",
       NULL}},
     {BASELINE, POLICY, POD, STATUS_RQ},
     "Forbidden",
     OUTCOME_RETRY,
     0,
     "Warning Forbidden: pods \"agent\" is forbidden: violates PodSecurity"},
    {"a namespace being deleted ends the reconcile quietly",
     SPEC,
     false,
     NULL,
     {{403, "Forbidden",
       "networkpolicies \"kage-baseline\" is forbidden: unable to create new content in namespace "
       "team-a because it is being terminated",
       NULL}},
     {BASELINE},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a transport failure on the pod is PodFailed and retried",
     SPEC,
     false,
     NULL,
     {{201, "", "", NULL}, {201, "", "", NULL}, {0, "", "connection reset by peer", NULL}},
     {BASELINE, POLICY, POD, STATUS_RQ},
     "PodFailed",
     OUTCOME_RETRY,
     0,
     "Warning PodFailed: pod: connection reset by peer"},
    {"a pod deleted from outside is made again, once a read shows the Sandbox still there",
     SPEC,
     true,
     arrange_pod_deleted,
     {{200, "", "", "{'metadata':{'name':'agent','namespace':'team-a','uid':'" WORLD_UID "'}}"}},
     {"GET " SANDBOX_RQ, POD, POLICY_PUT, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated"},
    {"a pod gone with its Sandbox is not made again",
     SPEC,
     true,
     arrange_pod_deleted,
     {{404, "NotFound", "sandboxes.kage.dev \"agent\" not found", NULL}},
     {"GET " SANDBOX_RQ},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a pod whose Sandbox was replaced under the same name is not made again",
     SPEC,
     true,
     arrange_pod_deleted,
     {{200, "", "", "{'metadata':{'name':'agent','namespace':'team-a','uid':'another'}}"}},
     {"GET " SANDBOX_RQ},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a pod whose image was edited in place is replaced, though its annotation says it is current",
     SPEC,
     true,
     arrange_pod_image_edited,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "PodReplacing",
     OUTCOME_AFTER,
     1000,
     "Normal PodReplaced: pod agent differs from the Sandbox (it was changed outside kage: what it "
     "runs, its security settings or its labels are not what kage renders); replacing it"},
    {"a forged pod with kage's annotation and owner but no runtime class is replaced",
     SPEC,
     true,
     arrange_pod_forged,
     {{0}},
     {POLICY_PUT, "DELETE pods/" WORLD_NAME " if uid=theirs-1", STATUS_RQ},
     "PodReplacing",
     OUTCOME_AFTER,
     1000,
     "Normal PodReplaced: pod agent differs from the Sandbox (it was changed outside kage"},
    {"a pod as the API server stores it (defaults, canonical quantities) is left alone",
     SPEC,
     true,
     arrange_pod_as_stored,
     {{0}},
     {NULL},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a changed spec replaces the pod, only the one with its uid",
     SPEC,
     true,
     arrange_new_image,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "PodReplacing",
     OUTCOME_AFTER,
     1000,
     "Normal PodReplaced: pod agent differs from the Sandbox (the spec changed); replacing it"},
    {"an expired sandbox is deleted, then its pod at once, each pinned to its uid",
     SPEC,
     true,
     arrange_expired,
     {{0}},
     {"DELETE " SANDBOX_RQ " if uid=" WORLD_UID, "DELETE pods/" WORLD_NAME " if uid=" POD_UID},
     NULL,
     OUTCOME_DONE,
     0,
     "Normal Expired: the lifetime ended at 2026-09-21T14:14:20Z; deleting the Sandbox"},
    {"an expired sandbox kept by Retain loses its pod and says Expired",
     SPEC,
     true,
     arrange_expired_retained,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "Expired",
     OUTCOME_DONE,
     0,
     "Normal PodRemoved: the sandbox is expired: removing pod agent"},
    {"an expired sandbox held by a finalizer still loses its pod",
     SPEC,
     true,
     arrange_expired_deleting,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID},
     NULL,
     OUTCOME_DONE,
     0,
     "Normal PodRemoved"},
    {"a paused sandbox loses its pod and keeps its policies",
     SPEC,
     true,
     arrange_paused,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "Pausing",
     OUTCOME_DONE,
     0,
     "Normal PodRemoved: the sandbox is paused: removing pod agent"},
    {"an invalid spec writes nothing but its status",
     "{'image':'python:3.12-slim','resources':{'memory':'500m'}}",
     false,
     NULL,
     {{0}},
     {STATUS_RQ},
     "InvalidSpec",
     OUTCOME_DONE,
     0,
     "Warning InvalidSpec: spec.resources.memory: "},
    {"a missing class blocks before anything is written",
     "{'image':'python:3.12-slim','sandboxClassName':'gpu'}",
     false,
     NULL,
     {{0}},
     {STATUS_RQ},
     "ClassNotFound",
     OUTCOME_DONE,
     0,
     "Warning ClassNotFound: SandboxClass gpu does not exist"},
    {"a new sandbox against its class gets nothing written, and no pod",
     "{'image':'python:3.12-slim','sandboxClassName':'small','egress':{'allow':[{'cidr':"
     "'203.0.113.0/24'}]}}",
     false,
     arrange_class_with_ceiling,
     {{0}},
     {STATUS_RQ},
     "PolicyViolation",
     OUTCOME_DONE,
     0,
     "Warning PolicyViolation: "},
    {"a changed allow list replaces the policy and keeps the pod",
     SPEC,
     true,
     arrange_new_egress,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID, STATUS_RQ},
     "SandboxReady",
     OUTCOME_DONE,
     0,
     "Warning PolicyRestored: NetworkPolicy team-a/agent was changed from outside; restored"},
    {"a policy deleted from outside is made again",
     SPEC,
     true,
     arrange_policy_deleted,
     {{0}},
     {POLICY},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a policy being deleted is waited for, and no pod is touched",
     SPEC,
     true,
     arrange_policy_going,
     {{0}},
     {STATUS_RQ},
     "PolicyPending",
     OUTCOME_AFTER,
     1000,
     "Warning PolicyPending: NetworkPolicy team-a/agent is being deleted; it will be recreated"},
    {"an earlier Sandbox's policy of the same name is waited for",
     SPEC,
     true,
     arrange_earlier_children,
     {{0}},
     {STATUS_RQ},
     "PolicyPending",
     OUTCOME_AFTER,
     1000,
     "Warning PolicyPending: NetworkPolicy team-a/agent still belongs to an earlier Sandbox"},
    {"an earlier Sandbox's pod of the same name is waited for",
     SPEC,
     true,
     arrange_earlier_pod,
     {{0}},
     {STATUS_RQ},
     "PodPending",
     OUTCOME_AFTER,
     1000,
     "Warning PodPending: pod team-a/agent still belongs to an earlier Sandbox"},
    {"the default class shapes a sandbox that names none",
     SPEC,
     false,
     arrange_default_class,
     {{0}},
     {BASELINE, POLICY, POD, POLICY_FOLLOWS, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated: created pod agent (runtime class kata-qemu)"},
    {"two default classes are no default: nothing is written",
     SPEC,
     false,
     arrange_two_default_classes,
     {{0}},
     {STATUS_RQ},
     "ClassNotFound",
     OUTCOME_DONE,
     0,
     "Warning ClassNotFound: 2 SandboxClasses are marked default (fast, other): mark one"},
    {"a running sandbox whose class is gone loses its pod, and its policy allows nothing",
     SPEC,
     true,
     arrange_class_gone,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID,
      "DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "ClassNotFound",
     OUTCOME_DONE,
     0,
     "Warning PolicyNarrowed: NetworkPolicy team-a/agent narrowed to allow nothing while the "
     "sandbox is blocked"},
    {"a running sandbox whose spec turns invalid loses its pod, and its policy allows nothing",
     SPEC,
     true,
     arrange_spec_invalid,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID,
      "DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "InvalidSpec",
     OUTCOME_DONE,
     0,
     "Normal PodRemoved: the sandbox is blocked (InvalidSpec): removing pod agent"},
    {"a running sandbox put against its class by a class change fails closed",
     "{'image':'python:3.12-slim','sandboxClassName':'small','egress':{'allow':[{'cidr':"
     "'203.0.113.0/24'}]}}",
     true,
     arrange_class_tightened,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID,
      "DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "PolicyViolation",
     OUTCOME_DONE,
     0,
     "Warning PolicyViolation: spec.egress.allow[0].cidr: 203.0.113.0/24 is outside"},
    {"a blocked sandbox keeps the earliest expiry kage recorded",
     "{'image':'python:3.12-slim','lifetime':{'ttlSeconds':3600}}",
     true,
     arrange_invalid_after_expiry,
     {{0}},
     {"DELETE " SANDBOX_RQ " if uid=" WORLD_UID, "DELETE pods/" WORLD_NAME " if uid=" POD_UID},
     NULL,
     OUTCOME_DONE,
     0,
     "Normal Expired: the lifetime ended at 2026-09-21T15:13:20Z; deleting the Sandbox"},
    {"a class not granted to the namespace gives no pod, and nothing is written",
     "{'image':'python:3.12-slim','sandboxClassName':'small'}",
     false,
     arrange_class_for_team_b,
     {{0}},
     {STATUS_RQ},
     "ClassNotAllowed",
     OUTCOME_DONE,
     0,
     "Warning ClassNotAllowed: SandboxClass small may not be used in namespace team-a: its "
     "namespaceSelector does not select it"},
    {"a class granted to the namespace by an expression is used",
     "{'image':'python:3.12-slim','sandboxClassName':'small'}",
     false,
     arrange_class_for_teams_a_b,
     {{0}},
     {BASELINE, POLICY, POD, POLICY_FOLLOWS, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated"},
    {"a running sandbox whose namespace loses its class's label fails closed",
     "{'image':'python:3.12-slim','sandboxClassName':'team-a'}",
     true,
     arrange_namespace_relabelled,
     {{0}},
     {"PUT networkpolicies/" WORLD_NAME " if uid=" POLICY_UID,
      "DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "ClassNotAllowed",
     OUTCOME_DONE,
     0,
     "Normal PodRemoved: the sandbox is blocked (ClassNotAllowed): removing pod agent"},
    {"with a class required, a default class for other namespaces leaves the sandbox without one",
     SPEC,
     false,
     arrange_strict_default_for_team_b,
     {{0}},
     {STATUS_RQ},
     "NoClass",
     OUTCOME_DONE,
     0,
     "Warning NoClass: no SandboxClass applies in namespace team-a: set spec.sandboxClassName"},
    {"with a class required, the default class granted to the namespace applies",
     SPEC,
     false,
     arrange_strict_default_for_team_a,
     {{0}},
     {BASELINE, POLICY, POD, POLICY_FOLLOWS, STATUS_RQ},
     "PodStarting",
     OUTCOME_DONE,
     0,
     "Normal PodCreated: created pod agent (runtime class kata-qemu)"},
    {"a policy not kage's that selects the pod takes the pod away",
     SPEC,
     true,
     arrange_foreign_open_policy,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "ForeignPolicy",
     OUTCOME_DONE,
     0,
     "Warning ForeignPolicy: NetworkPolicy team-a/open-egress, not kage's, selects this "
     "sandbox's pod and may let it reach more than its own policy allows; kage removes the pod "
     "until the policy goes"},
    {"a policy not kage's that selects other pods changes nothing",
     SPEC,
     true,
     arrange_foreign_web_policy,
     {{0}},
     {NULL},
     NULL,
     OUTCOME_DONE,
     0,
     NULL},
    {"a class that reports foreign policies keeps the pod and says it is not isolated",
     "{'image':'python:3.12-slim','sandboxClassName':'reporting'}",
     true,
     arrange_foreign_open_policy,
     {{0}},
     {STATUS_RQ},
     "SandboxReady",
     OUTCOME_DONE,
     0,
     "Warning ForeignPolicy: NetworkPolicy team-a/open-egress, not kage's, selects this "
     "sandbox's pod and may let it reach more than its own policy allows; its class says to "
     "report it only"},
    {"kage's own policy that lost its owner is not trusted: the pod goes",
     SPEC,
     true,
     arrange_policy_disowned,
     {{0}},
     {"DELETE pods/" WORLD_NAME " if uid=" POD_UID, STATUS_RQ},
     "NameConflict",
     OUTCOME_RETRY,
     0,
     "Warning NameConflict: NetworkPolicy team-a/agent exists and is not owned by this Sandbox"},
    {"under a burst, a just-made pod's first status waits up to 10 s",
     SPEC,
     false,
     arrange_burst,
     {{0}},
     {BASELINE, POLICY, POD, POLICY_FOLLOWS},
     NULL,
     OUTCOME_AFTER,
     10000,
     "Normal PodCreated"},
    {"a request that cannot be sent is retried, with nothing reported",
     SPEC,
     false,
     arrange_send_fails,
     {{0}},
     {NULL},
     NULL,
     OUTCOME_RETRY,
     0,
     NULL},
};

static void run_row(void **state)
{
    const struct row *row = *state;
    struct world *w = world_new();
    world_class(w, "{'metadata':{'name':'small'},'spec':{}}"); /* open, until a row changes it */
    world_class(w, "{'metadata':{'name':'reporting'},'spec':{'foreignPolicies':'Report'}}");
    world_class(w, "{'metadata':{'name':'team-a'},'spec':{'namespaceSelector':{'matchLabels':"
                   "{'team':'a'}}}}");
    w->ns_labels = "{\"kubernetes.io/metadata.name\":\"team-a\",\"team\":\"a\"}";
    if (row->settled)
        settle(w, row->spec);
    else
        world_sandbox(w, row->spec, "{}");
    if (row->arrange)
        row->arrange(w);
    for (size_t i = 0; i < sizeof(row->answers) / sizeof(row->answers[0]); i++) {
        const struct scripted *a = &row->answers[i];
        if (a->code == 0 && !a->message)
            break;
        world_answer(w, a->code, a->reason, a->message, a->object);
    }
    world_reconcile(w);

    unsigned want = 0;
    while (want < 8 && row->requests[want])
        want++;
    for (unsigned i = 0; i < w->nrequests || i < want; i++) {
        const char *got = i < w->nrequests ? w->requests[i] : "(none)";
        const char *exp = i < want ? row->requests[i] : "(none)";
        if (strcmp(got, exp) != 0)
            fail_msg("%s: request %u is \"%s\", want \"%s\"", row->name, i, got, exp);
    }
    const char *ready = written_ready(w, "reason");
    if (row->ready)
        assert_string_equal(ready ? ready : "(no status write)", row->ready);
    else
        assert_null(ready);
    assert_int_equal(w->outcome.kind, row->outcome);
    assert_int_equal(w->outcome.after_ms, row->outcome == OUTCOME_AFTER ? row->after_ms : 0);
    bool seen = false;
    for (unsigned i = 0; i < w->nevents; i++)
        seen |= row->event && strncmp(w->events[i], row->event, strlen(row->event)) == 0;
    if (row->event && !seen)
        fail_msg("%s: no Event \"%s...\" (%u recorded%s%s)", row->name, row->event, w->nevents,
                 w->nevents ? ", first: " : "", w->nevents ? w->events[0] : "");
    if (!row->event)
        assert_int_equal(w->nevents, 0);
    world_free(w);
}

/* ---- cases that look past one reconcile ------------------------------- */

/* An API server that drops a field kage sets (here the pod's
 * supplementalGroupsPolicy), in the pod and in its replacement. */
static void sgp_dropped(json_t *pod)
{
    json_object_del(json_object_get(json_object_get(pod, "spec"), "securityContext"),
                    "supplementalGroupsPolicy");
}

static void sgp_dropped_again(json_t *pod)
{
    sgp_dropped(pod);
    json_object_set_new(json_object_get(pod, "metadata"), "uid", json_string("uid-9"));
}

/* A pod that comes back changed is replaced once; when its replacement is
 * changed the same way, it is the cluster doing it: the pod goes, no other
 * is made, and the sandbox says PodAltered until its rendering changes. */
static void a_pod_the_cluster_alters_every_time_is_replaced_once_then_reported(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_class(w, "{'metadata':{'name':'small'},'spec':{}}");
    settle(w, SPEC);
    world_edit(w, true, WORLD_NAME, sgp_dropped);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 2);
    assert_string_equal(w->requests[0], "DELETE pods/" WORLD_NAME " if uid=" POD_UID);

    world_edit(w, true, WORLD_NAME, sgp_dropped_again);
    world_reconcile(w);
    /* The policy follows the new pod first: it is to outlive it. */
    assert_int_equal(w->nrequests, 3);
    assert_string_equal(w->requests[0], POLICY_PUT);
    assert_string_equal(w->requests[1], "DELETE pods/" WORLD_NAME " if uid=uid-9");
    assert_string_equal(written_ready(w, "reason"), "PodAltered");
    const char *msg = written_ready(w, "message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "pod team-a/agent is stored differently than kage renders it, "
                                "twice in a row"));
    assert_non_null(strstr(msg, "supplementalGroupsPolicy: Merge"));

    world_remove(w, true, WORLD_NAME);
    w->now_ms += RECONCILE_EXPECT_MS;
    world_reconcile(w);
    for (unsigned i = 0; i < w->nrequests; i++)
        if (strncmp(w->requests[i], "POST pods", 9) == 0)
            fail_msg("a pod was made again");
    world_free(w);
}

/* kage's own writes, not yet in the cache, stand in for it for
 * RECONCILE_EXPECT_MS: a second reconcile writes nothing again; later, it
 * takes the cache's word (and reads the Sandbox before a pod). */
static void own_writes_are_not_repeated_while_the_watch_lags(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_reconcile(w);
    assert_int_equal(w->nrequests, 5);
    assert_string_equal(w->requests[3], POLICY_FOLLOWS);
    assert_true(w->baseline_marked);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 0);
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);

    w->now_ms += RECONCILE_EXPECT_MS;
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 200, "", "", "{'metadata':{'uid':'" WORLD_UID "'}}");
    world_reconcile(w);
    assert_int_equal(w->nrequests, 4);
    assert_string_equal(w->requests[0], BASELINE);
    assert_string_equal(w->requests[1], POLICY);
    assert_string_equal(w->requests[2], "GET " SANDBOX_RQ);
    assert_string_equal(w->requests[3], POD);
    world_free(w);
}

/* The baseline selects every sandbox pod, the policy this one's pod, and
 * the pod carries the label both select. */
static void the_policies_select_the_pod_they_precede(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_reconcile(w);
    expect_json(json_incref(json_object_get(json_object_get(w->bodies[0], "spec"), "podSelector")),
                parse("{'matchExpressions':[{'key':'kage.dev/sandbox','operator':'Exists'}]}"),
                "baseline podSelector");
    expect_json(json_incref(json_object_get(json_object_get(w->bodies[1], "spec"), "podSelector")),
                parse("{'matchLabels':{'kage.dev/sandbox':'agent'}}"), "policy podSelector");
    json_t *labels = json_object_get(json_object_get(w->bodies[2], "metadata"), "labels");
    assert_string_equal(json_string_value(json_object_get(labels, LABEL_SANDBOX)), WORLD_NAME);
    world_free(w);
}

/* With the policy gate configured, the pod written after the policies
 * carries it; a Sandbox whose allow list reaches the API service gets
 * none, and NetworkIsolated says why. */
static void the_pod_waits_for_its_policy_unless_its_allow_list_reaches_the_api(void **state)
{
    (void)state;
    static const struct gate_config gate = {"localhost/kage-controller:0.1.0", "10.96.0.1", 443};
    struct world *w = world_new();
    w->env.rc.gate = &gate;
    world_sandbox(w, SPEC, "{}");
    world_reconcile(w);
    assert_string_equal(w->requests[0], BASELINE);
    assert_string_equal(w->requests[1], POLICY);
    assert_string_equal(w->requests[2], POD);
    json_t *init = json_object_get(json_object_get(w->bodies[2], "spec"), "initContainers");
    assert_int_equal(json_array_size(init), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(init, 0), "name")),
                        "kage-gate");
    world_free(w);

    w = world_new();
    w->env.rc.gate = &gate;
    world_sandbox(w, "{'image':'python:3.12-slim','egress':{'allow':[{'cidr':'0.0.0.0/0'}]}}",
                  "{}");
    world_reconcile(w);
    assert_string_equal(w->requests[2], POD);
    assert_null(json_object_get(json_object_get(w->bodies[2], "spec"), "initContainers"));
    const char *msg = NULL;
    for (unsigned i = 0; i < w->nrequests; i++)
        if (strcmp(w->requests[i], STATUS_RQ) == 0)
            msg = json_string_value(json_object_get(
                json_array_get(
                    json_object_get(json_object_get(w->bodies[i], "status"), "conditions"), 1),
                "message"));
    assert_non_null(msg);
    assert_string_equal(msg, "all ingress denied; egress limited to 2 rules by NetworkPolicy "
                             "agent; no policy gate: the egress allow list reaches the Kubernetes "
                             "API service 10.96.0.1:443, so the sandbox starts without waiting "
                             "for the policy to be enforced");
    world_free(w);
}

/* A namespace's new default ServiceAccount appears a moment after it:
 * pods are refused until then, looked at again after 2 s, then 4 s. */
static void a_missing_service_account_is_looked_at_again_soon_then_less_often(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 403, "Forbidden", SA_MSG, NULL);
    world_reconcile(w);
    assert_int_equal(w->outcome.kind, OUTCOME_AFTER);
    assert_int_equal(w->outcome.after_ms, 2000);
    assert_string_equal(written_ready(w, "reason"), "ServiceAccountNotFound");

    world_answer(w, 403, "Forbidden", SA_MSG, NULL);
    world_reconcile(w); /* the policies were written a moment ago: only the pod */
    assert_int_equal(w->nrequests, 1);
    assert_string_equal(w->requests[0], POD);
    assert_int_equal(w->outcome.after_ms, 4000);

    world_reconcile(w); /* it worked: the count starts over */
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);
    assert_int_equal(ledger_sandbox(w->ledger, WORLD_KEY, false)->blocked_runs, 0);
    world_free(w);
}

/* A quota refusal marks the namespace, so a pod going there wakes the
 * sandbox; a failed status write is forgotten, so it is written again. */
static void a_quota_refusal_marks_the_namespace(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 403, "Forbidden", QUOTA_MSG, NULL);
    world_reconcile(w);
    assert_true(w->quota_marked);
    assert_true(ledger_quota_release(w->ledger, WORLD_NS, strlen(WORLD_NS)));
    assert_int_equal(w->counts[COUNT_REFUSAL], 1);
    world_free(w);
}

static void a_failed_status_write_is_forgotten_and_retried(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 201, "", "", NULL);
    world_answer(w, 500, "InternalError", "etcd is unavailable", NULL);
    world_reconcile(w);
    assert_int_equal(w->outcome.kind, OUTCOME_RETRY);
    assert_null(ledger_sandbox(w->ledger, WORLD_KEY, false)->last_status);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 1);
    assert_string_equal(w->requests[0], STATUS_RQ);
    world_free(w);
}

/* The end of a lifetime is the reconcile's own deadline. */
static void a_lifetime_ahead_is_a_deadline(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, "{'image':'python:3.12-slim','lifetime':{'ttlSeconds':60}}", "{}");
    world_reconcile(w);
    assert_int_equal(w->outcome.kind, OUTCOME_DONE);
    assert_int_equal(w->deadline_ms, 60500);
    world_free(w);
}

/* A Sandbox gone from the cache is forgotten, and nothing is sent. */
static void a_sandbox_gone_is_forgotten(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    world_reconcile(w);
    assert_non_null(ledger_sandbox(w->ledger, WORLD_KEY, false));
    json_decref(w->sandbox_json);
    w->sandbox_json = NULL;
    free(w->sandbox);
    w->sandbox = NULL;
    world_reconcile(w);
    assert_int_equal(w->nrequests, 0);
    assert_null(ledger_sandbox(w->ledger, WORLD_KEY, false));
    world_free(w);
}

/* The Sandbox is deleted, and kage's memory of it forgotten, while a
 * request of its reconcile is in flight: the reconcile ends without
 * touching what was freed (ASan watches this one). */
/* A class that reports: NetworkIsolated says which policy, by name. */
static void a_reported_foreign_policy_shows_in_network_isolated(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_class(w, "{'metadata':{'name':'reporting'},'spec':{'foreignPolicies':'Report'}}");
    settle(w, "{'image':'python:3.12-slim','sandboxClassName':'reporting'}");
    arrange_foreign_open_policy(w);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 1);
    json_t *conds = json_object_get(json_object_get(w->bodies[0], "status"), "conditions");
    json_t *net = json_array_get(conds, 1);
    assert_string_equal(json_string_value(json_object_get(net, "type")), "NetworkIsolated");
    assert_string_equal(json_string_value(json_object_get(net, "status")), "False");
    assert_string_equal(json_string_value(json_object_get(net, "reason")), "ForeignPolicy");
    assert_string_equal(json_string_value(json_object_get(net, "message")),
                        "NetworkPolicy open-egress, not kage's, also selects the sandbox's pod: "
                        "egress may reach more than its own policy allows");
    world_free(w);
}

static void a_sandbox_forgotten_mid_reconcile_is_safe(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_sandbox(w, SPEC, "{}");
    sync_sandbox(&w->env, WORLD_KEY);
    unsigned answered = 0;
    while (w->cb) {
        ledger_forget(w->ledger, WORLD_KEY);
        world_answer_one(w);
        answered++;
    }
    assert_true(w->finished);
    assert_int_equal(answered, 5);
    assert_string_equal(w->requests[3], POLICY_FOLLOWS);
    assert_string_equal(w->requests[4], STATUS_RQ);
    world_free(w);
}

/* A sandbox that fails closed names no pod in its status, even while the
 * cache still shows the pod it has just asked to delete. */
static void a_blocked_sandbox_names_no_pod(void **state)
{
    (void)state;
    struct world *w = world_new();
    world_class(w, "{'metadata':{'name':'small'},'spec':{}}");
    settle(w, "{'image':'python:3.12-slim','sandboxClassName':'small','egress':{'allow':[{'cidr':"
              "'203.0.113.0/24'}]}}");
    arrange_class_tightened(w);
    world_reconcile(w);
    assert_int_equal(w->nrequests, 3);
    assert_string_equal(w->requests[2], STATUS_RQ);
    json_t *st = json_object_get(w->bodies[2], "status");
    assert_string_equal(json_string_value(json_object_get(st, "phase")), "Failed");
    const char *keys[] = {"podName", "podIP", "nodeName", "startTime"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (v && !json_is_null(v))
            fail_msg("the status of a blocked sandbox has %s", keys[i]);
    }
    world_free(w);
}

/* The create-to-Ready metric: a Sandbox created a moment before it is first
 * seen is timed from then to its first Ready, once; one that existed long
 * before (made while another replica led) is not timed at all. */
static void a_new_sandbox_is_timed_from_first_sight_to_its_first_ready(void **state)
{
    (void)state;
    struct world *w = world_new();
    w->wall = WORLD_NOW + 1; /* created a second ago */
    world_sandbox(w, "{'image':'python:3.12-slim'}", "{}");
    w->watch_follows = true;
    world_reconcile(w);
    assert_int_equal(w->nready, 0);
    w->now_ms += 1234;
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    assert_string_equal(written_ready(w, "status"), "True");
    assert_int_equal(w->nready, 1);
    assert_true(w->ready_s[0] > 1.233 && w->ready_s[0] < 1.235);
    /* Ready again after a replacement, or a later status: not timed again. */
    w->now_ms += RECONCILE_EXPECT_MS;
    world_reconcile(w);
    assert_int_equal(w->nready, 1);
    world_free(w);

    w = world_new();
    w->wall = WORLD_NOW + 60; /* created a minute before this controller saw it */
    world_sandbox(w, "{'image':'python:3.12-slim'}", "{}");
    w->watch_follows = true;
    world_reconcile(w);
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    assert_string_equal(written_ready(w, "status"), "True");
    assert_int_equal(w->nready, 0);
    world_free(w);
}

/* While others wait to start, a just-made pod's PodStarting status waits
 * (counted), its scheduling too; its Ready is written at the first
 * reconcile that sees it, however many wait. */
static void under_a_burst_ready_is_never_deferred(void **state)
{
    (void)state;
    struct world *w = world_new();
    w->queued = 500;
    world_sandbox(w, "{'image':'python:3.12-slim'}", "{}");
    w->watch_follows = true;
    world_reconcile(w);
    assert_null(written_ready(w, "status"));
    assert_int_equal(w->outcome.kind, OUTCOME_AFTER);
    assert_int_equal(w->outcome.after_ms, 10000);
    assert_int_equal(w->counts[COUNT_STATUS_DEFERRED], 1);

    w->now_ms += 300;
    world_edit(w, true, WORLD_NAME, pod_scheduled);
    world_reconcile(w);
    assert_null(written_ready(w, "status"));
    assert_int_equal(w->outcome.kind, OUTCOME_AFTER);
    assert_int_equal(w->outcome.after_ms, 9700);

    w->now_ms += 200;
    world_edit(w, true, WORLD_NAME, pod_running);
    world_reconcile(w);
    assert_string_equal(written_ready(w, "status"), "True");
    assert_int_equal(w->counts[COUNT_STATUS_DEFERRED], 0);
    assert_int_equal(w->counts[COUNT_STATUS_WRITE], 1);
    world_free(w);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0]) + 16];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        tests[n++] = (struct CMUnitTest){rows[i].name, run_row, NULL, NULL, (void *)&rows[i]};
    const struct CMUnitTest more[] = {
        cmocka_unit_test(own_writes_are_not_repeated_while_the_watch_lags),
        cmocka_unit_test(a_pod_the_cluster_alters_every_time_is_replaced_once_then_reported),
        cmocka_unit_test(the_policies_select_the_pod_they_precede),
        cmocka_unit_test(the_pod_waits_for_its_policy_unless_its_allow_list_reaches_the_api),
        cmocka_unit_test(a_missing_service_account_is_looked_at_again_soon_then_less_often),
        cmocka_unit_test(a_quota_refusal_marks_the_namespace),
        cmocka_unit_test(a_failed_status_write_is_forgotten_and_retried),
        cmocka_unit_test(a_lifetime_ahead_is_a_deadline),
        cmocka_unit_test(a_sandbox_gone_is_forgotten),
        cmocka_unit_test(a_sandbox_forgotten_mid_reconcile_is_safe),
        cmocka_unit_test(a_reported_foreign_policy_shows_in_network_isolated),
        cmocka_unit_test(a_blocked_sandbox_names_no_pod),
        cmocka_unit_test(a_new_sandbox_is_timed_from_first_sight_to_its_first_ready),
        cmocka_unit_test(under_a_burst_ready_is_never_deferred),
    };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        tests[n++] = more[i];
    return _cmocka_run_group_tests("reconcile", tests, n, NULL, NULL);
}
