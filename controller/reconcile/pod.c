// SPDX-License-Identifier: Apache-2.0
/*
 * pod.c - the reconcile's pod step: create the sandbox's pod once both of
 * its policies exist, replace it when it drifted, remove it when paused,
 * expired or against its class, and never touch a pod kage does not own.
 */
#include "reconcile/reconcile.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reconcile/podrecord.h"
#include "reconcile/render.h"
#include "reconcile/selector.h"

/* Asks to delete the sandbox's pod (only the one with that uid) to replace
 * it. False when the request cannot be built. */
static bool replace_pod(struct reconcile *r, struct reconcile_action *act, const char *uid,
                        const char *why)
{
    char note[600];
    snprintf(note, sizeof(note), "pod %s differs from the Sandbox (%s); replacing it", r->name,
             why);
    reconcile__event(r, false, "PodReplaced", "Delete", note);
    log_info("replacing pod", "{s:s, s:s}", "sandbox", r->key, "because", why);
    return reconcile__delete_exactly(r, act, WAIT_POD_DELETE, RES_POD, r->name, uid);
}

/* The pods kage makes for this rendering come back changed: the API server
 * drops a field it does not support, or a mutating webhook edits them.
 * kage runs no pod but the one it renders: the sandbox waits, saying so. */
static void block_altered(struct reconcile *r)
{
    json_t *spec = json_object_get(r->pod, "spec");
    bool userns = json_is_false(json_object_get(spec, "hostUsers"));
    reconcile__block(r, "PodAltered", false,
                     "pod %s is stored differently than kage renders it, twice in a row: the API "
                     "server drops a field this cluster does not support (%s"
                     "securityContext.supplementalGroupsPolicy needs Kubernetes 1.31 or later) or "
                     "a mutating admission webhook changes it; kage runs no other pod until its "
                     "rendering changes. Fix the cluster, or the SandboxClass "
                     "(%ssupplementalGroupsPolicy: Merge)",
                     r->key,
                     userns ? "hostUsers: false needs the UserNamespacesSupport feature; " : "",
                     userns ? "hostUsers, " : "");
    r->pod_unwanted = true;
}

/* Paused, expired or against its class: the pod goes, the policies stay. */
static bool remove_pod(struct reconcile *r, struct reconcile_action *act)
{
    const struct pod_obj *obs = r->env->pod(r->env->arg, r->key);
    if (!obs || obs->deleting || !obs->owned || strcmp(obs->owner_uid, r->uid) != 0)
        return false;
    char why[96];
    if (r->paused || r->expired)
        snprintf(why, sizeof(why), "%s", r->paused ? "paused" : "expired");
    else
        snprintf(why, sizeof(why), "blocked (%s)",
                 r->invalid           ? "InvalidSpec"
                 : r->block_reason[0] ? r->block_reason
                                      : "unknown");
    char note[600];
    snprintf(note, sizeof(note), "the sandbox is %s: removing pod %s", why, r->name);
    reconcile__event(r, false, "PodRemoved", "Delete", note);
    log_info("removing pod", "{s:s, s:s}", "sandbox", r->key, "because", why);
    return reconcile__delete_exactly(r, act, WAIT_POD_DELETE, RES_POD, r->name, obs->uid);
}

/* The live pod is what kage renders now for what the Sandbox and its class
 * say now: from here on it is judged by this record of it, whatever a
 * later kage renders. Written with the status, unless it says so already. */
static void take_record(struct reconcile *r, const struct pod_obj *obs)
{
    struct podrecord *rec = &r->record;
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->uid, sizeof(rec->uid), "%s", obs->uid);
    rec->version = PODRECORD_VERSION;
    memcpy(rec->form, obs->live_hash, sizeof(rec->form));
    memcpy(rec->inputs, r->inputs_hash, sizeof(rec->inputs));
    struct podrecord was;
    r->record_new = podrecord_read(json_object_get(r->sbx, "status"), &was) != 0 ||
                    strcmp(was.uid, rec->uid) != 0 || was.version != rec->version ||
                    strcmp(was.form, rec->form) != 0 || strcmp(was.inputs, rec->inputs) != 0;
}

/* The pod as the cache shows it, against the rendered one: true with a
 * request in act, false when there is nothing (more) to do here. */
static bool make_pod(struct reconcile *r, struct reconcile_action *act)
{
    const struct pod_obj *obs = r->env->pod(r->env->arg, r->key);
    const char *want = render_pod_hash(r->pod);

    if (obs && obs->owned && strcmp(obs->owner_uid, r->uid) != 0 &&
        strcmp(obs->sandbox, r->name) == 0) {
        reconcile__block(r, "PodPending", false,
                         "pod %s still belongs to an earlier Sandbox of this name; waiting for "
                         "it to be collected",
                         r->key);
        r->outcome = outcome_after(1000);
        return false;
    }
    if (obs && (!obs->owned || strcmp(obs->owner_uid, r->uid) != 0)) {
        reconcile__block(r, "NameConflict", false,
                         "pod %s exists and is not owned by this Sandbox; kage leaves it alone "
                         "until it is renamed or removed",
                         r->key);
        r->outcome = outcome_retry();
        return false;
    }
    if (!obs) {
        const struct sbx_memory *m = r->mem;
        if (m && m->pod_at && strcmp(m->pod_hash, want) == 0 &&
            reconcile__now_ms(r) - m->pod_at < RECONCILE_EXPECT_MS)
            return false; /* created a moment ago */
        if (m && m->pod_made_at && !r->owner_confirmed) {
            /* A pod kage made is gone. When a Sandbox is deleted, the
             * garbage collector removes its pod, and that deletion can
             * reach kage on the pod watch before the Sandbox's own reaches
             * it on another: a pod made now would be an orphan. One read
             * settles it. */
            return reconcile__send(r, act, WAIT_OWNER_READ, VERB_GET, RES_SANDBOX, r->name, NULL);
        }
        reconcile__count(r, COUNT_CREATE);
        return reconcile__send(r, act, WAIT_POD_CREATE, VERB_CREATE, RES_POD, NULL, r->pod);
    }
    if (obs->deleting)
        return false; /* its deletion event brings the next reconcile */
    if (strcmp(obs->sandbox, r->name) != 0)
        return replace_pod(r, act, obs->uid, "its kage.dev/sandbox label was changed");
    struct podrecord rec;
    bool recorded = podrecord_read(json_object_get(r->sbx, "status"), &rec) == 0;
    enum podrecord_verdict v =
        podrecord_judge(recorded ? &rec : NULL, obs->uid, obs->live_hash, r->inputs_hash);
    log_debug("pod judged by its record", "{s:s, s:s}", "sandbox", r->key, "verdict",
              podrecord_verdict_name(v));
    struct sbx_memory *m = r->mem;
    if (v == PODRECORD_KEEP) {
        /* As kage made it, from what the Sandbox and its class say now:
         * it stays, even when this kage would render it otherwise. */
        if (m)
            m->drift_hash[0] = '\0';
        return false;
    }
    if (v == PODRECORD_RENDER) {
        if (strcmp(obs->spec_hash, want) != 0) {
            /* The spec changed (or the pod was edited): pods are immutable
             * where it matters, so the sandbox gets a new one. */
            return replace_pod(r, act, obs->uid, "the spec changed");
        }
        /* The annotation is the pod's own word; what it runs is compared
         * with what kage renders, so a pod edited in place (image,
         * resources, labels) or made by someone else with kage's
         * annotation and owner is replaced, not adopted. */
        char live[SPEC_HASH_LEN + 1];
        if (observed_pod_form_hash(r->pod, live) != 0) {
            r->outcome = outcome_retry();
            return false;
        }
        if (strcmp(obs->live_hash, live) == 0) {
            if (m)
                m->drift_hash[0] = '\0';
            take_record(r, obs);
            return false;
        }
    }
    if (m && strcmp(m->drift_hash, want) == 0) {
        /* Its replacement differs too: not an edit but the cluster. */
        snprintf(m->altered_hash, sizeof(m->altered_hash), "%s", want);
        block_altered(r);
        return remove_pod(r, act);
    }
    if (m)
        snprintf(m->drift_hash, sizeof(m->drift_hash), "%s", want);
    return replace_pod(r, act, obs->uid,
                       "it was changed outside kage: what it runs, its security settings or "
                       "its labels are not what kage renders");
}

struct foreign_search {
    struct reconcile *r;
    json_t *labels; /* the pod's */
};

static bool selects_pod(void *arg, const char *name, const struct policy_obj *p)
{
    struct foreign_search *f = arg;
    /* The baseline and the sandbox's own policy are kept exactly as kage
     * renders them by the steps before (or block the pod themselves). */
    if (strcmp(name, BASELINE_POLICY) == 0 || strcmp(name, f->r->name) == 0)
        return true;
    bool selects = true; /* a selector kage could not keep or read selects everything */
    if (p->pod_selector[0]) {
        json_error_t e;
        json_t *sel = json_loads(p->pod_selector, 0, &e);
        selects = !sel || selector_matches(sel, f->labels);
        json_decref(sel);
    }
    if (!selects || p->deleting)
        return true;
    snprintf(f->r->foreign, sizeof(f->r->foreign), "%s", name);
    return false;
}

/*
 * NetworkPolicies add up: any other policy that selects the sandbox's pod
 * may let it reach what its own does not allow. Such a policy blocks the
 * sandbox: its pod goes until the policy does, unless its class says to
 * report only.
 */
static void check_foreign_policies(struct reconcile *r)
{
    struct foreign_search f = {r, json_object_get(json_object_get(r->pod, "metadata"), "labels")};
    r->env->foreign_policies(r->env->arg, r->ns, selects_pod, &f);
    if (!r->foreign[0])
        return;
    char note[700];
    snprintf(note, sizeof(note),
             "NetworkPolicy %s/%s, not kage's, selects this sandbox's pod and may let it reach "
             "more than its own policy allows; %s",
             r->ns, r->foreign,
             r->foreign_report ? "its class says to report it only"
                               : "kage removes the pod until the policy goes");
    if (r->foreign_report) {
        reconcile__event(r, true, "ForeignPolicy", "Reconcile", note);
        return;
    }
    reconcile__block(r, "ForeignPolicy", true, "%s", note);
    r->pod_unwanted = true;
}

bool reconcile__step_pod(struct reconcile *r, struct reconcile_action *act)
{
    if (!r->pod_unwanted && r->pod && r->mem && r->mem->altered_hash[0] &&
        strcmp(r->mem->altered_hash, render_pod_hash(r->pod)) == 0)
        block_altered(r);
    if (!r->pod_unwanted && r->pod && r->baseline_ok && r->policy_ok)
        check_foreign_policies(r);
    if (r->pod_unwanted) {
        if (remove_pod(r, act))
            return true;
    } else if (r->baseline_ok && r->policy_ok) {
        /* Only once both policies exist: the pod is never unguarded. */
        if (make_pod(r, act))
            return true;
    }
    reconcile__go(r, STEP_STATUS, "pod in place");
    return false;
}

static void take_pod_created(struct reconcile *r, const struct reconcile_answer *a)
{
    const char *uid = reconcile__uid_of(a->json); /* the server's answer names it */
    if (uid)
        snprintf(r->made_pod_uid, sizeof(r->made_pod_uid), "%s", uid);
    if (r->mem) {
        snprintf(r->mem->pod_hash, sizeof(r->mem->pod_hash), "%s", render_pod_hash(r->pod));
        r->mem->pod_at = reconcile__now_ms(r);
        r->mem->pod_made_at = r->mem->pod_at;
    }
    log_info("created pod", "{s:s}", "sandbox", r->key);
    char note[600];
    const char *rc =
        json_string_value(json_object_get(json_object_get(r->pod, "spec"), "runtimeClassName"));
    snprintf(note, sizeof(note), "created pod %s (runtime class %s)", r->name,
             rc ? rc : r->env->runtime_class);
    reconcile__event(r, false, "PodCreated", "Create", note);
}

/* After a 409 AlreadyExists on the create: a pod being replaced, someone
 * else's pod, or ours with its kage.dev/sandbox label changed. */
static bool take_pod_read(struct reconcile *r, const struct reconcile_answer *a,
                          struct reconcile_action *act)
{
    if (!reconcile__failed(a) &&
        json_object_get(json_object_get(a->json, "metadata"), "deletionTimestamp")) {
        /* Already going (a replacement in progress): look again soon. */
        r->pod_replacing = true;
        if (outcome_is_done(r->outcome))
            r->outcome = outcome_after(1000);
    } else if (reconcile__failed(a)) {
        reconcile__refused(r, "pod", a, false);
    } else if (!reconcile__owned_by(a->json, r->uid)) {
        reconcile__block(r, "NameConflict", false,
                         "pod %s/%s exists and is not owned by this Sandbox; kage leaves it alone "
                         "until it is renamed or removed",
                         r->ns, r->name);
        r->outcome = outcome_retry();
    } else if (!reconcile__label_is(a->json, LABEL_SANDBOX, r->name)) {
        /* Ours, but its kage.dev/sandbox label was removed or changed: no
         * policy selects it any more. Replace it. */
        const char *uid = reconcile__uid_of(a->json);
        if (uid && replace_pod(r, act, uid, "its kage.dev/sandbox label was changed"))
            return true;
        r->outcome = outcome_retry();
    }
    return false;
}

/* The Sandbox as the API server has it now, read before making it a pod
 * again: gone, going or replaced by another of its name, it gets none, and
 * its own events bring what follows. */
static void take_owner_read(struct reconcile *r, const struct reconcile_answer *a)
{
    if (reconcile__failed(a) && !reconcile__not_found(a)) {
        r->outcome = outcome_retry(); /* unknown: try again later rather than guess */
        reconcile__go(r, STEP_STATUS, "sandbox unread");
        return;
    }
    json_t *md = json_object_get(a->json, "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    if (reconcile__failed(a) || !uid || strcmp(uid, r->uid) != 0 ||
        json_object_get(md, "deletionTimestamp")) {
        log_info("not making a pod again: the sandbox is gone", "{s:s}", "sandbox", r->key);
        reconcile__go(r, STEP_DONE, "sandbox gone");
    } else {
        r->owner_confirmed = true; /* the pod step again, now to create */
    }
}

bool reconcile__take_pod(struct reconcile *r, enum reconcile_wait w,
                         const struct reconcile_answer *a, struct reconcile_action *act)
{
    switch (w) {
    case WAIT_POD_CREATE:
        if (reconcile__already_exists(a))
            return reconcile__send(r, act, WAIT_POD_READ, VERB_GET, RES_POD, r->name, NULL);
        if (reconcile__failed(a))
            reconcile__refused(r, "pod", a, false);
        else
            take_pod_created(r, a);
        break;
    case WAIT_POD_READ:
        if (take_pod_read(r, a, act))
            return true;
        break;
    case WAIT_POD_DELETE:
        if (reconcile__failed(a) && !reconcile__not_found(a) && a->code != 409)
            reconcile__refused(r, "pod", a, false);
        r->pod_replacing = true;
        /* Look again soon: a pod out of the watch's sight (its label
         * changed) sends no deletion event to bring the replacement. */
        if (outcome_is_done(r->outcome) && !r->pod_unwanted)
            r->outcome = outcome_after(1000);
        break;
    case WAIT_OWNER_READ:
        take_owner_read(r, a);
        return false;
    default:
        return false;
    }
    reconcile__go(r, STEP_STATUS, "pod written");
    return false;
}
