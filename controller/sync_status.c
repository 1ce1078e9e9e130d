/*
 * sync_status.c - the last step of a reconcile: the Sandbox's status from
 * what the run found, written to the status subresource only when it
 * changed, and a Warning Event for whatever blocks the sandbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/path.h"
#include "log.h"
#include "reconcile/render.h"
#include "reconcile/sbxstatus.h"
#include "sync.h"

/* ---- status ----------------------------------------------------------- */

static void on_status_written(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (resp->err && !kube_error_is_not_found(resp->err)) {
        log_warn("status write failed", "{s:s, s:I, s:s}", "sandbox", r->key, "code",
                 (json_int_t)resp->err->code, "message", resp->err->message);
        struct sbx_state *st = ctl_state(r->c, r->key, false);
        if (st) {
            free(st->last_status);
            st->last_status = NULL;
        }
        if (r->result == 0)
            r->result = -1;
    }
    r->step = STEP_DONE;
    sync__next(r);
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

/* Under load each new sandbox would get two status writes seconds apart:
 * PodStarting just after its pod is made, then Ready. While other
 * sandboxes wait in the queue, the first one is held back for up to
 * STATUS_HOLD_MS after the pod was created, so the API server's time goes
 * to making their pods; the pod's next change, or the end of the hold,
 * brings the reconcile that writes the status (by then often Ready, one
 * write instead of two). With nothing waiting, it is written at once.
 * Returns the milliseconds left to hold, 0 to write now. */
#define STATUS_HOLD_MS 10000

static uint64_t status_hold(const struct run *r, const struct sbx_state *st, const json_t *neu)
{
    if (!st || !st->pod_made_at || queue_len(r->c->queue) == 0 ||
        strcmp(ready_field(neu, "reason"), "PodStarting") != 0)
        return 0;
    uint64_t age = uv_now(r->c->loop) - st->pod_made_at;
    return age < STATUS_HOLD_MS ? STATUS_HOLD_MS - age : 0;
}

bool sync__status(struct run *r)
{
    char now[32];
    if (r->invalid) {
        char note[VALIDATION_FIELD_MAX + VALIDATION_MESSAGE_MAX + 4];
        snprintf(note, sizeof(note), "%s: %s", r->verr.field, r->verr.message);
        sync__event(r, true, "InvalidSpec", "Reconcile", note);
    } else if (r->block_reason[0]) {
        sync__event(r, true, r->block_reason, "Reconcile", r->block_message);
    }
    json_t *old = json_object_get(r->sbx, "status");
    const struct pod_obj *pod = informer_get(r->c->pods, r->key);
    json_t *spec = json_object_get(r->sbx, "spec");
    json_t *limits = json_object_get(
        json_object_get(
            json_object_get(
                json_array_get(json_object_get(json_object_get(r->pod, "spec"), "containers"), 0),
                "resources"),
            "limits"),
        "memory");
    json_t *policy_egress = json_object_get(json_object_get(r->policy, "spec"), "egress");
    struct status_facts f = {
        .invalid = r->invalid ? &r->verr : NULL,
        .block_reason = r->block_reason[0] ? r->block_reason : NULL,
        .block_message = r->block_message,
        .block_is_policy = r->block_is_policy,
        .policies_ready = r->baseline_ok && r->policy_ok,
        .egress_rules = r->policy ? (int)json_array_size(policy_egress) : r->kept_rules,
        .pod = (pod && pod->owned && strcmp(pod->owner_uid, r->uid) == 0) ? pod : NULL,
        .pod_replacing = r->pod_replacing,
        .memory_limit = json_string_value(limits),
        .image = json_string_value(json_object_get(spec, "image")),
        .before_script = json_string_length(json_object_get(spec, "beforeScript")) > 0,
        .paused = r->paused,
        .expired = r->expired && !r->delete_sandbox,
        .expires_at = r->expires_at[0] ? r->expires_at : NULL,
    };
    sbxstatus_now(now, sizeof(now));
    json_t *neu = sbxstatus_render(old, r->generation, r->name, &f, now);
    if (!neu) {
        r->result = -1;
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
    struct sbx_state *st = ctl_state(r->c, r->key, true);
    if (text && st && st->last_status && strcmp(st->last_status, text) == 0) {
        /* Written already; the watch has not caught up. */
        free(text);
        json_decref(neu);
        return true;
    }
    uint64_t hold = status_hold(r, st, neu);
    if (hold) {
        free(text);
        json_decref(neu);
        r->c->stats.status_held++;
        if (r->result == 0 || (r->result > 0 && (uint64_t)r->result > hold))
            r->result = (int)hold;
        return true;
    }
    /* A sandbox that was held up (pending or failed) and is ready now has
     * recovered: worth an Event saying when the trouble ended. The usual
     * way from Creating to Running is in the status alone. */
    const char *phase = json_string_value(json_object_get(neu, "phase"));
    if (st && phase && (strcmp(phase, "Pending") == 0 || strcmp(phase, "Failed") == 0))
        snprintf(st->held, sizeof(st->held), "%s", phase);
    if (st && st->held[0] && strcmp(ready_status(neu), "True") == 0) {
        char note[300];
        const char *node = json_string_value(json_object_get(neu, "nodeName"));
        snprintf(note, sizeof(note), "the sandbox recovered from %s and is ready on node %s",
                 st->held, node ? node : "(unknown)");
        sync__event(r, false, "Recovered", "Reconcile", note);
        st->held[0] = '\0';
    }
    json_t *patch = status_patch(old, neu);
    json_decref(neu);
    if (!patch || !text ||
        sync__send(r, KUBE_PATCH_MERGE, &KAGE_SANDBOXES, r->name, "status", patch,
                   on_status_written) != 0) {
        json_decref(patch);
        free(text);
        r->result = -1;
        return true;
    }
    json_decref(patch);
    if (st) {
        free(st->last_status);
        st->last_status = text;
    } else {
        free(text);
    }
    r->c->stats.status_writes++;
    return false;
}
