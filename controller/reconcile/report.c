// SPDX-License-Identifier: Apache-2.0
/*
 * report.c - the last step of a reconcile: the Sandbox's status from what
 * the reconcile found, written to the status subresource only when it
 * changed, and a Warning Event for whatever blocks the sandbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile/podrecord.h"
#include "reconcile/reconcile.h"
#include "reconcile/render.h"
#include "reconcile/sbxstatus.h"

static void forget_status(struct reconcile *r)
{
    if (r->mem) {
        free(r->mem->last_status);
        r->mem->last_status = NULL;
    }
}

void reconcile__status_answer(struct reconcile *r, const struct reconcile_answer *a)
{
    if (a->code == -1) {
        forget_status(r);
        r->outcome = outcome_retry();
    } else if (reconcile__failed(a) && !reconcile__not_found(a)) {
        log_warn("status write failed", "{s:s, s:I, s:s}", "sandbox", r->key, "code",
                 (json_int_t)a->code, "message", a->message);
        forget_status(r);
        if (outcome_is_done(r->outcome))
            r->outcome = outcome_retry();
    }
    reconcile__go(r, STEP_DONE, "status written");
}

/* Builds the merge patch: the new status, with null for every field the
 * old one has and the new one lacks (merge patches only remove by null). */
static json_t *status_patch(json_t *old, json_t *neu)
{
    json_t *st = json_deep_copy(neu);
    const char *k;
    json_t *v;
    if (!st)
        return NULL;
    json_object_foreach(old, k, v)
    {
        if (!json_object_get(neu, k) && json_object_set_new(st, k, json_null()) != 0) {
            json_decref(st);
            return NULL;
        }
    }
    return json_pack("{s:o}", "status", st);
}

/* A field ("status", "reason") of the Ready condition in a status
 * object, "" when none. */
static const char *ready_field(const json_t *status, const char *field)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, "Ready") == 0) {
            const char *s = json_string_value(json_object_get(c, field));
            return s ? s : "";
        }
    }
    return "";
}

static const char *ready_status(const json_t *status)
{
    return ready_field(status, "status");
}

/* Under load each new sandbox would get a status write for every step of
 * its pod (PodStarting just after the pod is made, again once scheduled,
 * then Ready). While other sandboxes wait for their first reconcile (the
 * queue's start lane), a PodStarting status is deferred for up to
 * STATUS_DEFER_MS after the pod was created, so the API server's time goes
 * to making their pods; the pod's next change, or the end of the deferral,
 * brings the reconcile that writes the status (by then often Ready, one
 * write instead of several). Only PodStarting waits: Ready, and any trouble,
 * are written at once, and a pod's changes are reconciled ahead of new
 * sandboxes, so the deferral never holds back what a user waits for. With
 * nothing waiting to start, it is written at once.
 * Returns the milliseconds left to defer, 0 to write now. */
#define STATUS_DEFER_MS 10000

static uint64_t status_defer(struct reconcile *r, const json_t *neu)
{
    const struct sbx_memory *m = r->mem;
    if (!m || !m->pod_made_at || r->env->queued(r->env->arg) == 0 ||
        strcmp(ready_field(neu, "reason"), "PodStarting") != 0)
        return 0;
    uint64_t age = reconcile__now_ms(r) - m->pod_made_at;
    return age < STATUS_DEFER_MS ? STATUS_DEFER_MS - age : 0;
}

void reconcile_note_sight(struct sbx_memory *m, uint64_t now_ms, time_t now, const char *created)
{
    if (!m || m->seen_at)
        return;
    m->seen_at = now_ms;
    time_t t = sbxstatus_parse_time(created);
    m->timed = t >= 0 && now - t <= READY_TIMED_WITHIN_S;
}

void reconcile__note_sight(struct reconcile *r)
{
    reconcile_note_sight(r->mem, reconcile__now_ms(r), r->env->wall(r->env->arg),
                         json_string_value(json_object_get(json_object_get(r->sbx, "metadata"),
                                                           "creationTimestamp")));
}

bool reconcile__status(struct reconcile *r, struct reconcile_action *act)
{
    char now[32];
    if (r->invalid) {
        char note[VALIDATION_FIELD_MAX + VALIDATION_MESSAGE_MAX + 4];
        snprintf(note, sizeof(note), "%s: %s", r->verr.field, r->verr.message);
        reconcile__event(r, true, "InvalidSpec", "Reconcile", note);
    } else if (r->block_reason[0]) {
        reconcile__event(r, true, r->block_reason, "Reconcile", r->block_message);
    }
    json_t *old = json_object_get(r->sbx, "status");
    const struct pod_obj *pod = r->env->pod(r->env->arg, r->key);
    json_t *spec = json_object_get(r->sbx, "spec");
    json_t *limits = json_object_get(
        json_object_get(
            json_object_get(
                json_array_get(json_object_get(json_object_get(r->pod, "spec"), "containers"), 0),
                "resources"),
            "limits"),
        "memory");
    json_t *policy_egress = json_object_get(json_object_get(r->policy, "spec"), "egress");
    char foreign[700];
    snprintf(foreign, sizeof(foreign),
             "NetworkPolicy %s, not kage's, also selects the sandbox's pod: egress may reach more "
             "than its own policy allows",
             r->foreign);
    char gate_note[300];
    const struct gate_config *g = r->env->gate;
    if (r->gate == GATE_COVERED)
        snprintf(gate_note, sizeof(gate_note),
                 "no policy gate: the egress allow list reaches the Kubernetes API service "
                 "%s:%d, so the sandbox starts without waiting for the policy to be enforced",
                 g->canary_host, g->canary_port);
    else
        snprintf(gate_note, sizeof(gate_note),
                 "no policy gate: SandboxClass spec.egress.policyGate is Disabled, so the "
                 "sandbox starts without waiting for the policy to be enforced");
    struct status_facts f = {
        .invalid = r->invalid ? &r->verr : NULL,
        .block_reason = r->block_reason[0] ? r->block_reason : NULL,
        .block_message = r->block_message,
        .block_is_policy = r->block_is_policy,
        .policies_ready = r->baseline_ok && r->policy_ok,
        .foreign = r->foreign[0] ? foreign : NULL,
        .egress_rules = r->policy ? (int)json_array_size(policy_egress) : r->kept_rules,
        /* A blocked sandbox's pod is on its way out: the status names none. */
        .pod = (pod && pod->owned && strcmp(pod->owner_uid, r->uid) == 0 &&
                !(r->pod_unwanted && r->block_reason[0]))
                   ? pod
                   : NULL,
        .pod_replacing = r->pod_replacing,
        .memory_limit = json_string_value(limits),
        .image = json_string_value(json_object_get(spec, "image")),
        .before_script = json_string_length(json_object_get(spec, "beforeScript")) > 0,
        .paused = r->paused,
        .expired = r->expired && !r->delete_sandbox,
        .expires_at = r->expires_at[0] ? r->expires_at : NULL,
        .gate_note =
            r->pod && (r->gate == GATE_COVERED || r->gate == GATE_DISABLED) ? gate_note : NULL,
    };
    /* The pod's record outlives the pod: a pod that appears in its place
     * is judged against it, never taken on its own word. */
    json_t *record = r->record_new ? podrecord_json(&r->record)
                                   : json_incref(json_object_get(old, PODRECORD_FIELD));
    if (r->record_new && !record) {
        r->outcome = outcome_retry();
        return true;
    }
    f.pod_record = json_is_object(record) ? record : NULL;
    sbxstatus_time(r->env->wall(r->env->arg), now, sizeof(now));
    json_t *neu = sbxstatus_render(old, r->generation, r->name, &f, now);
    json_decref(record);
    if (!neu) {
        r->outcome = outcome_retry();
        return true;
    }
    if (r->deleting) {
        json_object_set_new(neu, "phase", json_string("Terminating"));
    }
    if (old && sbxstatus_equal(old, neu)) {
        json_decref(neu);
        return true;
    }
    char *text = json_dumps(neu, JSON_COMPACT | JSON_SORT_KEYS);
    struct sbx_memory *st = r->mem;
    if (text && st && st->last_status && strcmp(st->last_status, text) == 0) {
        /* Written already; the watch has not caught up. */
        free(text);
        json_decref(neu);
        return true;
    }
    uint64_t defer = status_defer(r, neu);
    if (defer) {
        free(text);
        json_decref(neu);
        reconcile__count(r, COUNT_STATUS_DEFERRED);
        r->outcome = outcome_sooner(r->outcome, outcome_after(defer));
        return true;
    }
    /* A sandbox that was held up (pending or failed) and is ready now has
     * recovered: worth an Event saying when the trouble ended. The usual
     * way from Creating to Running is in the status alone. */
    const char *phase = json_string_value(json_object_get(neu, "phase"));
    if (st && phase && (strcmp(phase, "Pending") == 0 || strcmp(phase, "Failed") == 0))
        snprintf(st->trouble, sizeof(st->trouble), "%s", phase);
    if (st && st->trouble[0] && strcmp(ready_status(neu), "True") == 0) {
        char note[300];
        const char *node = json_string_value(json_object_get(neu, "nodeName"));
        snprintf(note, sizeof(note), "the sandbox recovered from %s and is ready on node %s",
                 st->trouble, node ? node : "(unknown)");
        reconcile__event(r, false, "Recovered", "Reconcile", note);
        st->trouble[0] = '\0';
    }
    if (st && st->timed && strcmp(ready_status(neu), "True") == 0) {
        st->timed = false;
        if (r->env->ready)
            r->env->ready(r->env->arg, (double)(reconcile__now_ms(r) - st->seen_at) / 1000.0);
    }
    json_t *patch = status_patch(old, neu);
    json_decref(neu);
    if (!patch || !text) {
        json_decref(patch);
        free(text);
        r->outcome = outcome_retry();
        return true;
    }
    if (st) {
        free(st->last_status);
        st->last_status = text;
    } else {
        free(text);
    }
    reconcile__count(r, COUNT_STATUS_WRITE);
    json_decref(r->body);
    r->body = patch;
    reconcile__send(r, act, WAIT_STATUS, VERB_PATCH, RES_SANDBOX, r->name, patch);
    act->req.sub = "status";
    return false;
}
