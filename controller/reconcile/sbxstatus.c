// SPDX-License-Identifier: Apache-2.0
/*
 * sbxstatus.c - maps what a reconcile saw (validation, API refusals, the
 * pod's state) to the Sandbox's status. Every way a sandbox can stop or
 * die has a reason and a message a person can act on.
 */
#include "reconcile/sbxstatus.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcile/gate.h"
#include "reconcile/render.h"
#include "utf8.h"

struct verdict {
    const char *phase;
    bool ready;
    char reason[128];
    char message[1400];
};

/* A condition reason must match ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$
 * (metav1.Condition); the kubelet's own reasons do not always (e.g.
 * "OutOfnvidia.com/gpu"), and a status that breaks the schema is never
 * written. Other characters become '_'. */
static void clean_reason(char *out, size_t n, const char *in)
{
    size_t w = 0;
    if (!((in[0] >= 'A' && in[0] <= 'Z') || (in[0] >= 'a' && in[0] <= 'z')))
        out[w++] = 'R';
    for (const char *p = in; *p && w + 1 < n; p++) {
        char ch = *p;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == ',' || ch == ':';
        out[w++] = ok ? ch : '_';
    }
    if (w > 1 && (out[w - 1] == ',' || out[w - 1] == ':'))
        out[w - 1] = '_';
    out[w] = '\0';
}

static void say(struct verdict *v, const char *phase, bool ready, const char *reason,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void say(struct verdict *v, const char *phase, bool ready, const char *reason,
                const char *fmt, ...)
{
    va_list ap;
    v->phase = phase;
    v->ready = ready;
    clean_reason(v->reason, sizeof(v->reason), reason);
    va_start(ap, fmt);
    int n = vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    /* Cut short: a split character would make json_pack refuse it all. */
    if (n >= (int)sizeof(v->message))
        utf8_trim_tail(v->message);
}

static bool is_image_failure(const char *r)
{
    return strcmp(r, "ImagePullBackOff") == 0 || strcmp(r, "ErrImagePull") == 0 ||
           strcmp(r, "InvalidImageName") == 0 || strcmp(r, "ErrImageNeverPull") == 0;
}

/* Room for text the sandbox wrote, as shown in a message. */
#define SANDBOX_TEXT_MAX 256

/*
 * Whether the pod's end is the wrapper's report of a failed beforeScript:
 * the sandbox has one, the termination message is exactly the wrapper's
 * line with the container's own exit code, and the pod was never Ready
 * (the kubelet's Ready condition has not changed since the container
 * started; once Ready, the script had ended, and the command then runs
 * as the same user and could write the same line).
 */
static bool before_script_failed(const struct status_facts *f, const struct pod_obj *p)
{
    char want[sizeof(BEFORE_SCRIPT_FAILED) + 16];
    snprintf(want, sizeof(want), "%s%d", BEFORE_SCRIPT_FAILED, p->term_exit_code);
    size_t n = strlen(want);
    return f->before_script && !p->was_ready && p->term_exit_code != 0 &&
           strncmp(p->term_message, want, n) == 0 &&
           (p->term_message[n] == '\0' || strcmp(p->term_message + n, "\n") == 0);
}

/* The verdict for a sandbox whose pod exists. */
static void judge_pod(struct verdict *v, const struct status_facts *f)
{
    const struct pod_obj *p = f->pod;
    char words[SANDBOX_TEXT_MAX];
    /* The kubelet's waiting message can carry what a registry (the
     * tenant's, perhaps) answered: one clean line too. */
    char waiting[1100];
    bool said = utf8_clean_line(waiting, sizeof(waiting), p->waiting_message) > 0;

    /* The gate's own words: kage's text (the sandbox's code has not run
     * yet), still kept to one clean line. */
    char gate_words[SANDBOX_TEXT_MAX * 2];
    bool gate_said = utf8_clean_line(gate_words, sizeof(gate_words), p->gate_term_message) > 0;
    char gwaiting[1100];
    bool gsaid = utf8_clean_line(gwaiting, sizeof(gwaiting), p->gate_waiting_message) > 0;

    switch (p->phase) {
    case POD_PENDING:
        if (p->gate_waiting_reason[0] && is_image_failure(p->gate_waiting_reason))
            say(v, "Creating", false, "ImagePullBackOff",
                "cannot pull the policy gate's image \"%s\" (init container " GATE_CONTAINER_NAME
                ", the controller's image): %s",
                p->gate_image, gsaid ? gwaiting : p->gate_waiting_reason);
        else if (p->gate_waiting_reason[0] &&
                 strcmp(p->gate_waiting_reason, "ContainerCreating") != 0 &&
                 strcmp(p->gate_waiting_reason, "PodInitializing") != 0)
            say(v, "Creating", false, p->gate_waiting_reason,
                "the policy gate (init container " GATE_CONTAINER_NAME ") cannot start: %s",
                gsaid ? gwaiting : p->gate_waiting_reason);
        else if (p->waiting_reason[0] && is_image_failure(p->waiting_reason))
            say(v, "Creating", false, "ImagePullBackOff", "cannot pull image \"%s\": %s",
                f->image ? f->image : p->image, said ? waiting : p->waiting_reason);
        else if (p->waiting_reason[0] && strcmp(p->waiting_reason, "ContainerCreating") != 0 &&
                 strcmp(p->waiting_reason, "PodInitializing") != 0)
            say(v, "Creating", false, p->waiting_reason, "%s",
                said ? waiting : "the container cannot start");
        else if (strcmp(p->reason, "Unschedulable") == 0)
            say(v, "Pending", false, "Unschedulable", "no node can run the sandbox: %s",
                p->message);
        else
            say(v, "Creating", false, "PodStarting", "the pod is being scheduled and started");
        return;
    case POD_RUNNING:
        if (p->ready)
            say(v, "Running", true, "SandboxReady", "the sandbox runs on node %s", p->node_name);
        else if (f->before_script)
            say(v, "Creating", false, "BeforeScriptRunning",
                "waiting for the beforeScript to finish");
        else
            say(v, "Creating", false, "ContainerNotReady", "the container is not ready yet");
        return;
    case POD_SUCCEEDED:
        say(v, "Succeeded", false, "Completed", "the command exited with code 0");
        return;
    case POD_FAILED:
        if (p->gate_terminated && p->gate_exit_code != 0)
            say(v, "Failed", false, "EgressNotEnforced",
                "the policy gate (init container " GATE_CONTAINER_NAME
                ") exited with code %d before the sandbox started: %s",
                p->gate_exit_code, gate_said ? gate_words : "it wrote no reason");
        else if (before_script_failed(f, p))
            say(v, "Failed", false, "BeforeScriptFailed", "the beforeScript exited with code %d",
                p->term_exit_code);
        else if (strcmp(p->term_reason, "OOMKilled") == 0)
            say(v, "Failed", false, "OOMKilled",
                "the sandbox ran out of memory: it used more than its memory limit of %s",
                f->memory_limit ? f->memory_limit : "(unknown)");
        else if (p->reason[0])
            say(v, "Failed", false, p->reason, "%s", p->message[0] ? p->message : p->reason);
        else if (p->terminated && utf8_clean_line(words, sizeof(words), p->term_message) > 0)
            /* The termination message (or the log's tail) is the
             * sandbox's own text: quoted, one line, bounded, never a
             * reason. */
            say(v, "Failed", false, "CommandFailed",
                "the command exited with code %d; the sandbox wrote: \"%s\"", p->term_exit_code,
                words);
        else if (p->terminated)
            say(v, "Failed", false, "CommandFailed", "the command exited with code %d",
                p->term_exit_code);
        else
            say(v, "Failed", false, "PodFailed", "the pod failed without a reason");
        return;
    case POD_UNKNOWN:
        say(v, "Pending", false, "PodUnknown", "the pod's node does not report its state");
        return;
    }
}

/* Blockers that only a person can clear; the first ones fail the sandbox,
 * the others leave it waiting (for the conflicting object to go, the class
 * or runtime class to appear). Others (quota, API trouble) clear by
 * themselves and are retried. */
static const char *const failing_blocks[] = {"PolicyViolation", "Forbidden", "PodInvalid",
                                             "PolicyInvalid"};
static const char *const stalling_blocks[] = {
    "NameConflict",         "ClassNotFound", "ClassNotAllowed", "NoClass",
    "RuntimeClassNotFound", "ForeignPolicy", "PodAltered"};

static bool listed(const char *reason, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(reason, list[i]) == 0)
            return true;
    return false;
}

/*
 * Ready says the sandbox is usable: its pod runs and is ready, so a script
 * that waits for Ready can exec into it. A paused, completed or expired
 * sandbox is Ready=False with that reason, and is settled: neither
 * Reconciling nor Stalled (see is_settled()).
 */
static void judge(struct verdict *v, const struct status_facts *f, const char *pod_name)
{
    if (f->invalid)
        say(v, "Failed", false, "InvalidSpec", "%s: %s", f->invalid->field, f->invalid->message);
    else if (f->expired)
        say(v, "Expired", false, "Expired",
            "the sandbox's lifetime ended at %s; its pod was removed and the Sandbox kept "
            "(shutdownPolicy Retain)",
            f->expires_at ? f->expires_at : "its deadline");
    else if (f->block_reason)
        say(v,
            listed(f->block_reason, failing_blocks,
                   sizeof(failing_blocks) / sizeof(*failing_blocks))
                ? "Failed"
                : "Pending",
            false, f->block_reason, "%s", f->block_message ? f->block_message : f->block_reason);
    else if (f->paused)
        say(v, "Paused", false, f->pod ? "Pausing" : "Paused", "%s",
            f->pod ? "pausing: the pod is being removed; the network policies stay"
                   : "the sandbox is paused: it has no pod; the network policies stay");
    else if (!f->policies_ready)
        say(v, "Creating", false, "PolicyPending", "creating the network policies before the pod");
    else if (f->pod && (f->pod->deleting || f->pod_replacing))
        say(v, "Creating", false, "PodReplacing",
            "replacing pod %s: the sandbox's spec changed or the pod is being deleted", pod_name);
    else if (!f->pod)
        /* Said the same way as a pod not yet started, so a new sandbox's
         * status is written once on its way, not once per step. */
        say(v, "Creating", false, "PodStarting", "the pod is being scheduled and started");
    else
        judge_pod(v, f);
}

/*
 * Whether the sandbox is where its spec asks it to be: running and ready,
 * or deliberately paused (its pod gone), completed or expired. A settled
 * sandbox carries neither Reconciling nor Stalled.
 */
static bool is_settled(const struct verdict *v)
{
    return v->ready || strcmp(v->reason, "Paused") == 0 || strcmp(v->reason, "Completed") == 0 ||
           strcmp(v->reason, "Expired") == 0;
}

/* A condition, keeping lastTransitionTime while its status is unchanged. */
static json_t *condition(const json_t *old_status, const char *type, bool status,
                         const char *reason, const char *message, int64_t generation,
                         const char *now)
{
    const char *st = status ? "True" : "False";
    const char *when = now;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(old_status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        const char *lt = json_string_value(json_object_get(c, "lastTransitionTime"));
        if (t && s && lt && strcmp(t, type) == 0 && strcmp(s, st) == 0)
            when = lt;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", st, "reason", reason,
                     "message", message, "lastTransitionTime", when, "observedGeneration",
                     (json_int_t)generation);
}

json_t *sbxstatus_render(const json_t *old_status, int64_t generation, const char *pod_name,
                         const struct status_facts *f, const char *now)
{
    struct verdict v;
    char net_msg[1400];
    const char *net_reason;
    bool isolated = f->policies_ready && !f->invalid && !f->foreign;

    judge(&v, f, pod_name);
    if (isolated) {
        net_reason = "PoliciesApplied";
        snprintf(net_msg, sizeof(net_msg),
                 "all ingress denied; egress limited to %d rule%s by NetworkPolicy %s%s%s",
                 f->egress_rules, f->egress_rules == 1 ? "" : "s", pod_name,
                 f->gate_note ? "; " : "", f->gate_note ? f->gate_note : "");
    } else if (f->foreign) {
        net_reason = "ForeignPolicy";
        snprintf(net_msg, sizeof(net_msg), "%s", f->foreign);
    } else if (f->invalid) {
        net_reason = "InvalidSpec";
        snprintf(net_msg, sizeof(net_msg), "no policy is rendered from an invalid spec");
    } else if (f->block_is_policy && f->block_reason) {
        net_reason = f->block_reason;
        snprintf(net_msg, sizeof(net_msg), "%s",
                 f->block_message ? f->block_message : f->block_reason);
    } else if (f->block_reason) {
        net_reason = "PolicyPending";
        snprintf(net_msg, sizeof(net_msg),
                 "no network policy is created while the sandbox is blocked (%s)", f->block_reason);
    } else {
        net_reason = "PolicyPending";
        snprintf(net_msg, sizeof(net_msg), "the network policies are being created");
    }

    json_t *st = json_pack(
        "{s:s, s:I, s:[o, o]}", "phase", v.phase, "observedGeneration", (json_int_t)generation,
        "conditions", condition(old_status, "Ready", v.ready, v.reason, v.message, generation, now),
        condition(old_status, "NetworkIsolated", isolated, net_reason, net_msg, generation, now));
    if (!st)
        return NULL;
    /* kstatus: Reconciling while on the way, Stalled when a person must act. */
    bool settled = is_settled(&v);
    bool stalled =
        strcmp(v.phase, "Failed") == 0 ||
        listed(v.reason, stalling_blocks, sizeof(stalling_blocks) / sizeof(*stalling_blocks));
    if (!settled &&
        json_array_append_new(json_object_get(st, "conditions"),
                              condition(old_status, stalled ? "Stalled" : "Reconciling", true,
                                        v.reason, v.message, generation, now)) != 0) {
        json_decref(st);
        return NULL;
    }
    if ((f->expires_at && json_object_set_new(st, "expiresAt", json_string(f->expires_at)) != 0) ||
        (f->pod_record &&
         json_object_set_new(st, "podRecord", json_deep_copy(f->pod_record)) != 0)) {
        json_decref(st);
        return NULL;
    }
    const struct pod_obj *p = f->pod;
    if (p && !f->invalid) {
        int rc = json_object_set_new(st, "podName", json_string(pod_name));
        if (!rc && p->pod_ip[0])
            rc = json_object_set_new(st, "podIP", json_string(p->pod_ip));
        if (!rc && p->node_name[0])
            rc = json_object_set_new(st, "nodeName", json_string(p->node_name));
        if (!rc && p->start_time[0])
            rc = json_object_set_new(st, "startTime", json_string(p->start_time));
        if (rc) {
            json_decref(st);
            return NULL;
        }
    }
    return st;
}

bool sbxstatus_equal(const json_t *a, const json_t *b)
{
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

void sbxstatus_time(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

time_t sbxstatus_parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return -1;
    return timegm(&tm);
}
