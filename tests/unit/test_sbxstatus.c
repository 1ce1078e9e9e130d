// SPDX-License-Identifier: Apache-2.0
/* Unit tests for a Sandbox's status: every way a sandbox can wait, run,
 * pause, expire or die gives the phase and the Ready, NetworkIsolated and
 * Reconciling or Stalled conditions it must, each status compared whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/sbxstatus.h"

#include "alloc_fail.h"
#include "json_expect.h"

#define NOW      "2026-11-28T10:00:00Z"
#define EARLIER  "2026-11-27T09:00:00Z"
#define POD_NAME "agent-42"

/* A pod as decoded, every string "" but where the test says otherwise. */
static void pod_init(struct pod_obj *p, enum pod_phase phase)
{
    memset(p, 0, sizeof(*p));
    p->uid = "0b6e9c1a-3f4d-4a7b-9e2c-8d1f5a6b7c8d";
    p->owner_uid = "7d2f4a1e-9c3b-4f6d-8e21-5a0b9c8d7e6f";
    p->sandbox = POD_NAME;
    p->spec_hash = "236741f622b9d5fb";
    p->image = "python:3.12-slim";
    p->pod_ip = "";
    p->node_name = "";
    p->start_time = "";
    p->reason = "";
    p->message = "";
    p->waiting_reason = "";
    p->waiting_message = "";
    p->term_reason = "";
    p->term_message = "";
    p->gate_image = "";
    p->gate_waiting_reason = "";
    p->gate_waiting_message = "";
    p->gate_term_message = "";
    p->owned = true;
    p->phase = phase;
}

/* A pod that is scheduled and started. */
static void pod_placed(struct pod_obj *p, enum pod_phase phase)
{
    pod_init(p, phase);
    p->pod_ip = "10.42.0.17";
    p->node_name = "node-1";
    p->start_time = "2026-11-28T09:59:50Z";
}

/* What a reconcile saw of a healthy sandbox: policies in place (the DNS
 * rule), no pod yet. */
static struct status_facts facts(void)
{
    return (struct status_facts){
        .policies_ready = true,
        .egress_rules = 1,
        .memory_limit = "1Gi",
        .image = "python:3.12-slim",
    };
}

static void expect_status(const json_t *old, const struct status_facts *f, const char *want,
                          const char *what)
{
    expect_json(sbxstatus_render(old, 3, POD_NAME, f, NOW), parse(want), what);
}

#define COND(type, status, reason, message, when)                                             \
    "{'type':'" type "','status':'" status "','reason':'" reason "','message':'" message "'," \
    "'lastTransitionTime':'" when "','observedGeneration':3}"
#define NOT_READY(reason, message) COND("Ready", "False", reason, message, NOW)
#define ISOLATED(rules)                                \
    COND("NetworkIsolated", "True", "PoliciesApplied", \
         "all ingress denied; egress limited to " rules " by NetworkPolicy agent-42", NOW)
#define NOT_ISOLATED(reason, message) COND("NetworkIsolated", "False", reason, message, NOW)
#define POLICY_PENDING                NOT_ISOLATED("PolicyPending", "the network policies are being created")
/* A whole status: conditions Ready and NetworkIsolated (and, for kstatus,
 * Reconciling or Stalled), then rest: the pod's whereabouts, if any. */
#define STATUS(phase, ready, isolated, rest) \
    "{'phase':'" phase "','observedGeneration':3,'conditions':[" ready "," isolated "]" rest "}"
/* A sandbox on its way: Ready False and Reconciling, with the same words. */
#define ON_ITS_WAY(phase, reason, message, isolated, rest)                                      \
    "{'phase':'" phase                                                                          \
    "','observedGeneration':3,'conditions':[" NOT_READY(reason, message) "," isolated "," COND( \
        "Reconciling", "True", reason, message, NOW) "]" rest "}"
/* A sandbox a person must see to: Ready False and Stalled. */
#define STUCK(phase, reason, message, isolated, rest)                                            \
    "{'phase':'" phase "','observedGeneration':3,'conditions':[" NOT_READY(                      \
        reason, message) "," isolated "," COND("Stalled", "True", reason, message, NOW) "]" rest \
                                                                                        "}"
#define PLACED                                                        \
    ",'podName':'agent-42','podIP':'10.42.0.17','nodeName':'node-1'," \
    "'startTime':'2026-11-28T09:59:50Z'"
#define UNPLACED ",'podName':'agent-42'"

static void an_invalid_spec_fails_the_sandbox_naming_the_field(void **state)
{
    (void)state;
    struct validation_error err = {
        .field = "spec.egress.allow[0].cidr",
        .message = "must be a valid CIDR such as 203.0.113.0/24, not \"300.1.2.3/8\"",
    };
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    struct status_facts f = facts();
    f.invalid = &err;
    f.pod = &pod;     /* an old pod is not reported on */
    f.expired = true; /* nor is the end of a lifetime */
    f.block_reason = "QuotaExceeded";
    expect_status(NULL, &f,
                  STUCK("Failed", "InvalidSpec",
                        "spec.egress.allow[0].cidr: must be a valid CIDR such as "
                        "203.0.113.0/24, not \\\"300.1.2.3/8\\\"",
                        NOT_ISOLATED("InvalidSpec", "no policy is rendered from an invalid spec"),
                        ""),
                  "invalid spec");
}

static void a_blocker_only_a_person_can_clear_stalls_the_sandbox(void **state)
{
    (void)state;
    /* A policy that is someone else's: neither condition holds. */
    struct status_facts f = facts();
    f.policies_ready = false;
    f.block_reason = "NameConflict";
    f.block_message = "NetworkPolicy team-a/agent-42 exists and is not owned by this Sandbox";
    f.block_is_policy = true;
    expect_status(NULL, &f,
                  STUCK("Pending", "NameConflict",
                        "NetworkPolicy team-a/agent-42 exists and is not owned by this Sandbox",
                        NOT_ISOLATED("NameConflict", "NetworkPolicy team-a/agent-42 exists and "
                                                     "is not owned by this Sandbox"),
                        ""),
                  "NameConflict");

    /* Waiting for an object to appear, or failed for good. */
    static const struct {
        const char *reason;
        const char *phase;
    } stuck[] = {
        {"ClassNotFound", "Pending"},  {"RuntimeClassNotFound", "Pending"},
        {"PolicyViolation", "Failed"}, {"Forbidden", "Failed"},
        {"PodInvalid", "Failed"},      {"PolicyInvalid", "Failed"},
    };
    for (size_t i = 0; i < sizeof(stuck) / sizeof(stuck[0]); i++) {
        char want[4096];
        f = facts();
        f.block_reason = stuck[i].reason;
        f.block_message = "what the API server said";
        snprintf(want, sizeof(want),
                 STUCK("%s", "%s", "what the API server said", ISOLATED("1 rule"), ""),
                 stuck[i].phase, stuck[i].reason, stuck[i].reason);
        expect_status(NULL, &f, want, stuck[i].reason);
    }

    /* Without a message the reason stands in for it; a blocker while the
     * policies are missing says none is made until it is resolved. */
    f = facts();
    f.policies_ready = false;
    f.block_reason = "Forbidden";
    expect_status(NULL, &f,
                  STUCK("Failed", "Forbidden", "Forbidden",
                        NOT_ISOLATED("PolicyPending", "no network policy is created while the "
                                                      "sandbox is blocked (Forbidden)"),
                        ""),
                  "blocker without message");

    /* A policy blocker without a message, likewise. */
    f.block_is_policy = true;
    expect_status(
        NULL, &f,
        STUCK("Failed", "Forbidden", "Forbidden", NOT_ISOLATED("Forbidden", "Forbidden"), ""),
        "policy blocker without message");
}

static void a_blocker_that_clears_by_itself_keeps_the_sandbox_reconciling(void **state)
{
    (void)state;
    /* Quota refuses the pod: the policies are in place all the same. */
    struct status_facts f = facts();
    f.block_reason = "QuotaExceeded";
    f.block_message = "pods \"agent-42\" is forbidden: exceeded quota: team-a, requested: "
                      "limits.memory=1Gi, used: limits.memory=4Gi, limited: limits.memory=4Gi";
    f.paused = true; /* the blocker comes first */
    expect_status(NULL, &f,
                  ON_ITS_WAY("Pending", "QuotaExceeded",
                             "pods \\\"agent-42\\\" is forbidden: exceeded quota: team-a, "
                             "requested: limits.memory=1Gi, used: limits.memory=4Gi, "
                             "limited: limits.memory=4Gi",
                             ISOLATED("1 rule"), ""),
                  "QuotaExceeded");

    f = facts();
    f.block_reason = "PolicyPending";
    f.block_message = "NetworkPolicy team-a/agent-42 is being deleted; it will be recreated";
    f.block_is_policy = true;
    f.policies_ready = false;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Pending", "PolicyPending",
                             "NetworkPolicy team-a/agent-42 is being deleted; it will be recreated",
                             NOT_ISOLATED("PolicyPending", "NetworkPolicy team-a/agent-42 is "
                                                           "being deleted; it will be recreated"),
                             ""),
                  "policy being deleted");
}

static void no_pod_is_made_before_the_policies_exist(void **state)
{
    (void)state;
    struct status_facts f = facts();
    f.policies_ready = false;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "PolicyPending",
                             "creating the network policies before the pod", POLICY_PENDING, ""),
                  "policies pending");
}

static void a_paused_sandbox_has_no_pod_and_keeps_its_policies(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    struct status_facts f = facts();
    f.paused = true;
    f.pod = &pod;
    /* While its pod goes, the sandbox is on its way to paused... */
    expect_status(NULL, &f,
                  ON_ITS_WAY("Paused", "Pausing",
                             "pausing: the pod is being removed; the network policies stay",
                             ISOLATED("1 rule"), PLACED),
                  "pausing");

    /* ...then it is where its spec asks it to be, but not usable: Ready is
     * False with reason Paused, and neither Reconciling nor Stalled. */
    f.pod = NULL;
    expect_status(
        NULL, &f,
        STATUS("Paused",
               COND("Ready", "False", "Paused",
                    "the sandbox is paused: it has no pod; the network policies stay", NOW),
               ISOLATED("1 rule"), ""),
        "paused");
}

static void an_expired_sandbox_that_is_kept_says_when_it_ended(void **state)
{
    (void)state;
    struct status_facts f = facts();
    f.expired = true;
    f.expires_at = "2026-11-28T09:00:00Z";
    f.block_reason = "QuotaExceeded"; /* expiry comes first */
    f.paused = true;
    expect_status(NULL, &f,
                  STATUS("Expired",
                         COND("Ready", "False", "Expired",
                              "the sandbox\\'s lifetime ended at "
                              "2026-11-28T09:00:00Z; its pod was removed and the "
                              "Sandbox kept (shutdownPolicy Retain)",
                              NOW),
                         ISOLATED("1 rule"), ",'expiresAt':'2026-11-28T09:00:00Z'"),
                  "expired");

    f.expires_at = NULL;
    expect_status(NULL, &f,
                  STATUS("Expired",
                         COND("Ready", "False", "Expired",
                              "the sandbox\\'s lifetime ended at its deadline; its "
                              "pod was removed and the Sandbox kept "
                              "(shutdownPolicy Retain)",
                              NOW),
                         ISOLATED("1 rule"), ""),
                  "expired, no time");
}

static void a_sandbox_with_a_lifetime_shows_when_it_expires(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    struct status_facts f = facts();
    f.pod = &pod;
    f.expires_at = "2026-11-28T11:00:00Z";
    expect_status(
        NULL, &f,
        STATUS("Running",
               COND("Ready", "True", "SandboxReady", "the sandbox runs on node node-1", NOW),
               ISOLATED("1 rule"), ",'expiresAt':'2026-11-28T11:00:00Z'" PLACED),
        "expiresAt");
}

static void a_pod_being_deleted_or_replaced_is_reported_as_replacing(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    pod.deleting = true;
    struct status_facts f = facts();
    f.pod = &pod;
    const char *want = ON_ITS_WAY("Creating", "PodReplacing",
                                  "replacing pod agent-42: the sandbox\\'s spec changed or the pod "
                                  "is being deleted",
                                  ISOLATED("1 rule"), PLACED);
    expect_status(NULL, &f, want, "pod deleting");

    pod.deleting = false;
    f.pod_replacing = true;
    expect_status(NULL, &f, want, "pod replacing");
}

static void a_missing_pod_is_being_created(void **state)
{
    (void)state;
    struct status_facts f = facts();
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "PodStarting", "the pod is being scheduled and started",
                             ISOLATED("1 rule"), ""),
                  "no pod");
}

static void an_image_that_cannot_be_pulled_is_named(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    pod.node_name = "node-1";
    pod.waiting_reason = "ImagePullBackOff";
    pod.waiting_message = "Back-off pulling image \"python:3.12-slim\"";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "ImagePullBackOff",
                             "cannot pull image \\\"python:3.12-slim\\\": Back-off pulling "
                             "image \\\"python:3.12-slim\\\"",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "ImagePullBackOff");

    /* Every pull failure has the one reason; without a message the
     * kubelet's reason says what went wrong. */
    static const char *const reasons[] = {"ErrImagePull", "InvalidImageName", "ErrImageNeverPull"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char want[4096];
        pod.waiting_reason = reasons[i];
        pod.waiting_message = "";
        snprintf(want, sizeof(want),
                 ON_ITS_WAY("Creating", "ImagePullBackOff",
                            "cannot pull image \\\"python:3.12-slim\\\": %s", ISOLATED("1 rule"),
                            ",'podName':'agent-42','nodeName':'node-1'"),
                 reasons[i], reasons[i]);
        expect_status(NULL, &f, want, reasons[i]);
    }

    /* Without the spec's image, the pod's is named. */
    f.image = NULL;
    pod.image = "registry.example.com/tool:1";
    pod.waiting_reason = "ErrImagePull";
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "ImagePullBackOff",
                             "cannot pull image \\\"registry.example.com/tool:1\\\": ErrImagePull",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "image from the pod");
}

/* The image (up to 1024 characters, so up to 4 KiB) and the kubelet's
 * message (up to 1 KiB) do not fit a condition message together: the
 * message is cut at a UTF-8 character boundary and the status is still
 * rendered, never refused as invalid UTF-8 (which would read as ENOMEM,
 * leave the status unwritten and retry the reconcile for ever). */
static void an_overlong_message_is_cut_at_a_character_boundary(void **state)
{
    (void)state;
    char image[1 + 700 * 2 + 1] = "x";
    for (int i = 0; i < 700; i++)
        memcpy(image + 1 + 2 * i, "\xc3\xa9", 3); /* é, and the NUL after the last */
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    pod.waiting_reason = "InvalidImageName";
    struct status_facts f = facts();
    f.pod = &pod;
    f.image = image;
    json_t *st = sbxstatus_render(NULL, 3, POD_NAME, &f, NOW);
    assert_non_null(st);
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(st, "conditions"), 0), "message"));
    assert_non_null(msg);
    /* "cannot pull image \"x" and whole characters after it. */
    assert_true(strlen(msg) < 1400);
    assert_int_equal(strncmp(msg, "cannot pull image \"x\xc3\xa9", 22), 0);
    assert_int_equal((strlen(msg) - 20) % 2, 0);
    json_decref(st);
}

static void another_waiting_reason_is_passed_through(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    pod.node_name = "node-1";
    pod.waiting_reason = "CreateContainerConfigError";
    pod.waiting_message = "secret \"creds\" not found";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "CreateContainerConfigError",
                             "secret \\\"creds\\\" not found", ISOLATED("1 rule"),
                             ",'podName':'agent-42','nodeName':'node-1'"),
                  "CreateContainerConfigError");

    pod.waiting_reason = "RunContainerError";
    pod.waiting_message = "";
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "RunContainerError", "the container cannot start",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "RunContainerError without message");
}

static void a_pod_no_node_can_take_is_unschedulable(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    pod.reason = "Unschedulable";
    pod.message = "0/3 nodes are available: 3 Insufficient memory.";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Pending", "Unschedulable",
                             "no node can run the sandbox: 0/3 nodes are available: 3 "
                             "Insufficient memory.",
                             ISOLATED("1 rule"), UNPLACED),
                  "Unschedulable");
}

static void a_pod_on_its_way_is_starting(void **state)
{
    (void)state;
    static const char *const waiting[] = {"", "ContainerCreating", "PodInitializing"};
    struct pod_obj pod;
    struct status_facts f = facts();
    f.pod = &pod;
    for (size_t i = 0; i < sizeof(waiting) / sizeof(waiting[0]); i++) {
        pod_init(&pod, POD_PENDING);
        pod.waiting_reason = waiting[i];
        expect_status(NULL, &f,
                      ON_ITS_WAY("Creating", "PodStarting",
                                 "the pod is being scheduled and started", ISOLATED("1 rule"),
                                 UNPLACED),
                      waiting[i]);
    }
}

static void a_ready_pod_makes_the_sandbox_ready(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    struct status_facts f = facts();
    f.pod = &pod;
    f.egress_rules = 2;
    expect_status(
        NULL, &f,
        STATUS("Running",
               COND("Ready", "True", "SandboxReady", "the sandbox runs on node node-1", NOW),
               ISOLATED("2 rules"), PLACED),
        "ready");
}

static void a_running_pod_not_yet_ready_waits_for_its_before_script(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    struct status_facts f = facts();
    f.pod = &pod;
    f.before_script = true;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "BeforeScriptRunning",
                             "waiting for the beforeScript to finish", ISOLATED("1 rule"), PLACED),
                  "beforeScript running");

    f.before_script = false;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "ContainerNotReady", "the container is not ready yet",
                             ISOLATED("1 rule"), PLACED),
                  "not ready");
}

static void a_command_that_exits_zero_completes_the_sandbox(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_SUCCEEDED);
    pod.terminated = true;
    pod.term_reason = "Completed";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  STATUS("Succeeded",
                         COND("Ready", "False", "Completed", "the command exited with code 0", NOW),
                         ISOLATED("1 rule"), PLACED),
                  "succeeded");
}

static void a_failed_before_script_fails_the_sandbox_with_its_code(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.terminated = true;
    pod.term_reason = "Error";
    pod.term_exit_code = 3;
    pod.term_message = "kage: beforeScript failed with exit code 3\n";
    struct status_facts f = facts();
    f.pod = &pod;
    f.before_script = true;
    expect_status(NULL, &f,
                  STUCK("Failed", "BeforeScriptFailed", "the beforeScript exited with code 3",
                        ISOLATED("1 rule"), PLACED),
                  "beforeScript failed");
}

static void an_oom_killed_pod_fails_the_sandbox_naming_its_memory_limit(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.terminated = true;
    pod.term_reason = "OOMKilled";
    pod.term_exit_code = 137;
    struct status_facts f = facts();
    f.pod = &pod;
    f.memory_limit = "512Mi";
    expect_status(NULL, &f,
                  STUCK("Failed", "OOMKilled",
                        "the sandbox ran out of memory: it used more than its memory limit of "
                        "512Mi",
                        ISOLATED("1 rule"), PLACED),
                  "OOMKilled");

    f.memory_limit = NULL;
    expect_status(NULL, &f,
                  STUCK("Failed", "OOMKilled",
                        "the sandbox ran out of memory: it used more than its memory limit of "
                        "(unknown)",
                        ISOLATED("1 rule"), PLACED),
                  "OOMKilled, limit unknown");
}

static void a_pod_level_reason_such_as_eviction_is_passed_on(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.reason = "Evicted";
    pod.message = "The node was low on resource: ephemeral-storage.";
    pod.terminated = true;
    pod.term_reason = "Error";
    pod.term_exit_code = 137;
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  STUCK("Failed", "Evicted", "The node was low on resource: ephemeral-storage.",
                        ISOLATED("1 rule"), PLACED),
                  "Evicted");

    pod.message = "";
    expect_status(NULL, &f, STUCK("Failed", "Evicted", "Evicted", ISOLATED("1 rule"), PLACED),
                  "Evicted without message");
}

static void a_failed_command_is_reported_with_its_code_and_message(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.terminated = true;
    pod.term_reason = "Error";
    pod.term_exit_code = 2;
    pod.term_message = "python3: can't open file 'main.py'";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed",
                        "the command exited with code 2; the sandbox wrote: \\\"python3: can\\'t "
                        "open file \\'main.py\\'\\\"",
                        ISOLATED("1 rule"), PLACED),
                  "CommandFailed");

    pod.term_exit_code = 1;
    pod.term_message = "";
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed", "the command exited with code 1",
                        ISOLATED("1 rule"), PLACED),
                  "CommandFailed without message");
}

/* The termination message is the sandbox's own text: it is quoted as
 * such, control characters (escape sequences, newlines, bidi overrides,
 * C1) become single spaces, and it is cut to 256 bytes. */
static void text_from_the_sandbox_is_quoted_cleaned_and_bounded(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.terminated = true;
    pod.term_reason = "Error";
    pod.term_exit_code = 1;
    pod.term_message = "\x1b[2J\x1b[1;31mERR\r\n\tline\xc2\x9b two\xe2\x80\xae"
                       "evil\x7f\xff ok\n";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed",
                        "the command exited with code 1; the sandbox wrote: \\\"[2J [1;31mERR "
                        "line two evil ? ok\\\"",
                        ISOLATED("1 rule"), PLACED),
                  "controls stripped");

    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pod.term_message = big;
    json_t *st = sbxstatus_render(NULL, 3, POD_NAME, &f, NOW);
    assert_non_null(st);
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(st, "conditions"), 0), "message"));
    const char *head = "the command exited with code 1; the sandbox wrote: \"";
    assert_non_null(msg);
    assert_memory_equal(msg, head, strlen(head));
    assert_int_equal(strlen(msg), strlen(head) + 252 + 3 + 1); /* 252 x, "...", the quote */
    assert_string_equal(msg + strlen(msg) - 5, "x...\"");
    json_decref(st);
}

/* What a registry answered reaches the status through the kubelet's
 * waiting message: cleaned the same way. */
static void a_registry_message_is_cleaned_too(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_PENDING);
    pod.waiting_reason = "ErrImagePull";
    pod.waiting_message = "denied:\x1b[2K\r\nfake: SandboxReady\xe2\x80\xae";
    struct status_facts f = facts();
    f.pod = &pod;
    json_t *st = sbxstatus_render(NULL, 3, POD_NAME, &f, NOW);
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(st, "conditions"), 0), "message")),
                        "cannot pull image \"python:3.12-slim\": denied: [2K fake: SandboxReady");
    json_decref(st);
}

/* BeforeScriptFailed is kage's word, not the sandbox's: the wrapper's line
 * counts only for a sandbox with a beforeScript, with the container's own
 * exit code, from a pod that was never Ready (after Ready the command
 * runs, and could write the same line). Otherwise it is the command's
 * failure, the line quoted as the sandbox's text. */
static void the_sandbox_cannot_forge_before_script_failed(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.terminated = true;
    pod.term_reason = "Error";
    pod.term_exit_code = 3;
    pod.term_message = "kage: beforeScript failed with exit code 3\n";
    struct status_facts f = facts();
    f.pod = &pod;
    f.before_script = true;
    const char *forged = STUCK("Failed", "CommandFailed",
                               "the command exited with code 3; the sandbox wrote: \\\"kage: "
                               "beforeScript failed with exit code 3\\\"",
                               ISOLATED("1 rule"), PLACED);

    pod.was_ready = true;
    expect_status(NULL, &f, forged, "after Ready");
    pod.was_ready = false;
    f.before_script = false;
    expect_status(NULL, &f, forged, "no beforeScript");
    f.before_script = true;
    pod.term_exit_code = 4;
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed",
                        "the command exited with code 4; the sandbox wrote: \\\"kage: "
                        "beforeScript failed with exit code 3\\\"",
                        ISOLATED("1 rule"), PLACED),
                  "another exit code");
    pod.term_exit_code = 3;
    pod.term_message = "kage: beforeScript failed with exit code 3\nand more";
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed",
                        "the command exited with code 3; the sandbox wrote: \\\"kage: "
                        "beforeScript failed with exit code 3 and more\\\"",
                        ISOLATED("1 rule"), PLACED),
                  "more text");
    pod.term_message = "kage: beforeScript failed with exit code 3";
    expect_status(NULL, &f,
                  STUCK("Failed", "BeforeScriptFailed", "the beforeScript exited with code 3",
                        ISOLATED("1 rule"), PLACED),
                  "the wrapper's own line");
}

static void a_pod_failed_without_a_reason_says_so(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(
        NULL, &f,
        STUCK("Failed", "PodFailed", "the pod failed without a reason", ISOLATED("1 rule"), PLACED),
        "PodFailed");
}

static void a_pod_whose_node_is_silent_is_unknown(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_UNKNOWN);
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Pending", "PodUnknown", "the pod\\'s node does not report its state",
                             ISOLATED("1 rule"), PLACED),
                  "PodUnknown");
}

static void a_transition_time_is_kept_while_the_status_stays(void **state)
{
    (void)state;
    /* Was: not ready (pod creating), isolated, reconciling; all since
     * EARLIER, as of generation 2. */
    json_t *old = parse("{'phase':'Creating','observedGeneration':2,'conditions':["
                        "{'type':'Ready','status':'False','reason':'PodCreating',"
                        "'message':'creating pod agent-42','lastTransitionTime':'" EARLIER "',"
                        "'observedGeneration':2},"
                        "{'type':'NetworkIsolated','status':'True','reason':'PoliciesApplied',"
                        "'message':'all ingress denied; egress limited to 1 rule by "
                        "NetworkPolicy agent-42','lastTransitionTime':'" EARLIER "',"
                        "'observedGeneration':2},"
                        "{'type':'Reconciling','status':'True','reason':'PodCreating',"
                        "'message':'creating pod agent-42','lastTransitionTime':'" EARLIER "',"
                        "'observedGeneration':2}]}");
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    struct status_facts f = facts();
    f.pod = &pod;
    /* Another reason, the same status: the times stay, the generation is
     * the new one. */
    expect_status(old, &f,
                  "{'phase':'Creating','observedGeneration':3,'conditions':[" COND(
                      "Ready", "False", "PodStarting", "the pod is being scheduled and started",
                      EARLIER) "," COND("NetworkIsolated", "True", "PoliciesApplied",
                                        "all ingress denied; egress limited to 1 rule by "
                                        "NetworkPolicy agent-42",
                                        EARLIER) "," COND("Reconciling", "True", "PodStarting",
                                                          "the pod is being scheduled and started",
                                                          EARLIER) "]" UNPLACED "}",
                  "same status, new reason");

    /* Ready flips: its time is now; NetworkIsolated's stays; the sandbox
     * has settled, so Reconciling goes. */
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    expect_status(
        old, &f,
        STATUS("Running",
               COND("Ready", "True", "SandboxReady", "the sandbox runs on node node-1", NOW),
               COND("NetworkIsolated", "True", "PoliciesApplied",
                    "all ingress denied; egress limited to 1 rule by NetworkPolicy "
                    "agent-42",
                    EARLIER),
               PLACED),
        "Ready flips");

    /* NetworkIsolated flips: its time is now. */
    f = facts();
    f.policies_ready = false;
    expect_status(old, &f,
                  "{'phase':'Creating','observedGeneration':3,'conditions':[" COND(
                      "Ready", "False", "PolicyPending",
                      "creating the network policies before the pod",
                      EARLIER) "," POLICY_PENDING "," COND("Reconciling", "True", "PolicyPending",
                                                           "creating the network policies before "
                                                           "the pod",
                                                           EARLIER) "]}",
                  "NetworkIsolated flips");

    /* From reconciling to stalled: Stalled is new. */
    pod_placed(&pod, POD_FAILED);
    f = facts();
    f.pod = &pod;
    expect_status(old, &f,
                  "{'phase':'Failed','observedGeneration':3,'conditions':[" COND(
                      "Ready", "False", "PodFailed", "the pod failed without a reason",
                      EARLIER) "," COND("NetworkIsolated", "True", "PoliciesApplied",
                                        "all ingress denied; egress limited to 1 rule by "
                                        "NetworkPolicy agent-42",
                                        EARLIER) "," COND("Stalled", "True", "PodFailed",
                                                          "the pod failed without a reason",
                                                          NOW) "]" PLACED "}",
                  "stalled");
    json_decref(old);

    /* A condition without a time, or of a type other than the one made,
     * gives no time to keep. */
    old = parse("{'conditions':[{'type':'Ready','status':'False','reason':'PodCreating'},"
                "{'type':'Paused','status':'True','lastTransitionTime':'" EARLIER "'},"
                "'not a condition']}");
    f = facts();
    expect_status(old, &f,
                  ON_ITS_WAY("Creating", "PodStarting", "the pod is being scheduled and started",
                             ISOLATED("1 rule"), ""),
                  "nothing to keep");
    json_decref(old);
}

static void statuses_compare_by_content(void **state)
{
    (void)state;
    json_t *a = parse("{'phase':'Running','observedGeneration':3,'podName':'agent-42',"
                      "'conditions':[{'type':'Ready','status':'True'}]}");
    json_t *b = parse("{'podName':'agent-42','conditions':[{'status':'True','type':'Ready'}],"
                      "'observedGeneration':3,'phase':'Running'}");
    json_t *c = parse("{'phase':'Running','observedGeneration':4,'podName':'agent-42',"
                      "'conditions':[{'type':'Ready','status':'True'}]}");
    json_t *d = parse("{'phase':'Running','observedGeneration':3,"
                      "'conditions':[{'type':'Ready','status':'True'}]}");
    assert_true(sbxstatus_equal(a, b));
    assert_true(sbxstatus_equal(a, a));
    assert_false(sbxstatus_equal(a, c));
    assert_false(sbxstatus_equal(a, d));
    assert_false(sbxstatus_equal(d, a));
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);

    /* A status rendered twice from the same facts is the same. */
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    struct status_facts f = facts();
    f.pod = &pod;
    json_t *first = sbxstatus_render(NULL, 3, POD_NAME, &f, NOW);
    json_t *again = sbxstatus_render(first, 3, POD_NAME, &f, "2026-11-28T11:00:00Z");
    assert_non_null(first);
    assert_non_null(again);
    assert_true(sbxstatus_equal(first, again));
    json_decref(first);
    json_decref(again);
}

static void now_is_an_rfc3339_utc_time(void **state)
{
    (void)state;
    char now[32];
    sbxstatus_time(1790000000, now, sizeof(now));
    assert_string_equal(now, "2026-09-21T14:13:20Z");
    sbxstatus_time(time(NULL), now, sizeof(now));
    assert_int_equal(strlen(now), 20);
    /* 2026-11-28T10:00:00Z */
    for (int i = 0; i < 20; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:ddZ";
        if (shape[i] == 'd')
            assert_in_range(now[i], '0', '9');
        else
            assert_int_equal(now[i], shape[i]);
    }
}

/* Renders with each allocation failing in turn: NULL each time (or,
 * having coped, the right status), and the same status once no allocation
 * fails. */
static void sweep(const char *old_text, const struct status_facts *f, const char *what)
{
    json_t *old = old_text ? parse(old_text) : NULL;
    json_t *want = sbxstatus_render(old, 3, POD_NAME, f, NOW);
    assert_non_null(want);
    for (long n = 0;; n++) {
        failed = false;
        json_set_alloc_funcs(fi_malloc, free);
        fail_at = n;
        json_t *got = sbxstatus_render(old, 3, POD_NAME, f, NOW);
        fail_at = -1;
        bool ok = got ? json_equal(got, want) : failed;
        const char *wrong = got ? "a different status" : "NULL without a failure";
        json_decref(got);
        json_set_alloc_funcs(malloc, free);
        if (!ok) {
            json_decref(want);
            json_decref(old);
            fail_msg("%s, allocation %ld failing: %s", what, n, wrong);
        }
        if (!failed)
            break;
    }
    json_decref(want);
    json_decref(old);
}

static void a_failed_allocation_gives_null(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_RUNNING);
    pod.ready = true;
    struct status_facts f = facts();
    f.pod = &pod;
    sweep(NULL, &f, "ready");
    sweep("{'conditions':[{'type':'Ready','status':'True','lastTransitionTime':'" EARLIER "'},"
          "{'type':'NetworkIsolated','status':'True','lastTransitionTime':'" EARLIER "'}]}",
          &f, "ready, times kept");
    struct validation_error err = {.field = "spec.image", .message = "is required"};
    f.invalid = &err;
    sweep(NULL, &f, "invalid");
}

/* The policy gate (init container kage-gate) found the pod's egress still
 * open at its deadline: the sandbox fails with a reason that names it and
 * the gate's own words, never as the command's failure. */
static void a_gate_that_finds_egress_open_fails_the_sandbox(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_placed(&pod, POD_FAILED);
    pod.waiting_reason = "PodInitializing";
    pod.gate_image = "localhost/kage-controller:0.1.0";
    pod.gate_terminated = true;
    pod.gate_exit_code = 1;
    pod.gate_term_message = "egress to 10.96.0.1:443 still open after 60 s: the node's "
                            "NetworkPolicy implementation did not enforce this sandbox's policy\n";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  STUCK("Failed", "EgressNotEnforced",
                        "the policy gate (init container kage-gate) exited with code 1 before "
                        "the sandbox started: egress to 10.96.0.1:443 still open after 60 s: the "
                        "node\\'s NetworkPolicy implementation did not enforce this "
                        "sandbox\\'s policy",
                        ISOLATED("1 rule"), PLACED),
                  "gate failed");

    /* A gate that passed is no reason: the command's end is reported. */
    pod.gate_exit_code = 0;
    pod.gate_term_message = "";
    pod.waiting_reason = "";
    pod.terminated = true;
    pod.term_exit_code = 3;
    expect_status(NULL, &f,
                  STUCK("Failed", "CommandFailed", "the command exited with code 3",
                        ISOLATED("1 rule"), PLACED),
                  "gate passed, command failed");
}

/* The gate's image is the controller's: a node that cannot pull it is
 * named as such, not as the sandbox's image. */
static void a_gate_image_that_cannot_be_pulled_is_named(void **state)
{
    (void)state;
    struct pod_obj pod;
    pod_init(&pod, POD_PENDING);
    pod.node_name = "node-1";
    pod.waiting_reason = "PodInitializing";
    pod.gate_image = "localhost/kage-controller:0.1.0";
    pod.gate_waiting_reason = "ErrImageNeverPull";
    pod.gate_waiting_message = "Container image \"localhost/kage-controller:0.1.0\" is not "
                               "present with pull policy of Never";
    struct status_facts f = facts();
    f.pod = &pod;
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "ImagePullBackOff",
                             "cannot pull the policy gate\\'s image "
                             "\\\"localhost/kage-controller:0.1.0\\\" (init container kage-gate, "
                             "the controller\\'s image): Container image "
                             "\\\"localhost/kage-controller:0.1.0\\\" is not present with pull "
                             "policy of Never",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "gate image");

    /* Another reason the gate cannot start is passed through, named. */
    pod.gate_waiting_reason = "CreateContainerConfigError";
    pod.gate_waiting_message = "";
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "CreateContainerConfigError",
                             "the policy gate (init container kage-gate) cannot start: "
                             "CreateContainerConfigError",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "gate cannot start");

    /* While the gate runs, the sandbox is starting. */
    pod.gate_waiting_reason = "";
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "PodStarting", "the pod is being scheduled and started",
                             ISOLATED("1 rule"), ",'podName':'agent-42','nodeName':'node-1'"),
                  "gate running");
}

/* Why a pod has no gate is said in NetworkIsolated. */
static void a_pod_without_the_gate_says_why(void **state)
{
    (void)state;
    struct status_facts f = facts();
    f.gate_note = "no policy gate: SandboxClass spec.egress.policyGate is Disabled";
    expect_status(NULL, &f,
                  ON_ITS_WAY("Creating", "PodStarting", "the pod is being scheduled and started",
                             COND("NetworkIsolated", "True", "PoliciesApplied",
                                  "all ingress denied; egress limited to 1 rule by NetworkPolicy "
                                  "agent-42; no policy gate: SandboxClass spec.egress.policyGate "
                                  "is Disabled",
                                  NOW),
                             ""),
                  "gate note");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_invalid_spec_fails_the_sandbox_naming_the_field),
        cmocka_unit_test(a_blocker_only_a_person_can_clear_stalls_the_sandbox),
        cmocka_unit_test(a_blocker_that_clears_by_itself_keeps_the_sandbox_reconciling),
        cmocka_unit_test(no_pod_is_made_before_the_policies_exist),
        cmocka_unit_test(a_paused_sandbox_has_no_pod_and_keeps_its_policies),
        cmocka_unit_test(an_expired_sandbox_that_is_kept_says_when_it_ended),
        cmocka_unit_test(a_sandbox_with_a_lifetime_shows_when_it_expires),
        cmocka_unit_test(a_pod_being_deleted_or_replaced_is_reported_as_replacing),
        cmocka_unit_test(a_missing_pod_is_being_created),
        cmocka_unit_test(an_image_that_cannot_be_pulled_is_named),
        cmocka_unit_test(a_gate_that_finds_egress_open_fails_the_sandbox),
        cmocka_unit_test(a_gate_image_that_cannot_be_pulled_is_named),
        cmocka_unit_test(a_pod_without_the_gate_says_why),
        cmocka_unit_test(an_overlong_message_is_cut_at_a_character_boundary),
        cmocka_unit_test(another_waiting_reason_is_passed_through),
        cmocka_unit_test(a_pod_no_node_can_take_is_unschedulable),
        cmocka_unit_test(a_pod_on_its_way_is_starting),
        cmocka_unit_test(a_ready_pod_makes_the_sandbox_ready),
        cmocka_unit_test(a_running_pod_not_yet_ready_waits_for_its_before_script),
        cmocka_unit_test(a_command_that_exits_zero_completes_the_sandbox),
        cmocka_unit_test(a_failed_before_script_fails_the_sandbox_with_its_code),
        cmocka_unit_test(an_oom_killed_pod_fails_the_sandbox_naming_its_memory_limit),
        cmocka_unit_test(a_pod_level_reason_such_as_eviction_is_passed_on),
        cmocka_unit_test(a_failed_command_is_reported_with_its_code_and_message),
        cmocka_unit_test(text_from_the_sandbox_is_quoted_cleaned_and_bounded),
        cmocka_unit_test(the_sandbox_cannot_forge_before_script_failed),
        cmocka_unit_test(a_registry_message_is_cleaned_too),
        cmocka_unit_test(a_pod_failed_without_a_reason_says_so),
        cmocka_unit_test(a_pod_whose_node_is_silent_is_unknown),
        cmocka_unit_test(a_transition_time_is_kept_while_the_status_stays),
        cmocka_unit_test(statuses_compare_by_content),
        cmocka_unit_test(now_is_an_rfc3339_utc_time),
        cmocka_unit_test(a_failed_allocation_gives_null),
    };
    return cmocka_run_group_tests_name("sbxstatus", tests, NULL, NULL);
}
