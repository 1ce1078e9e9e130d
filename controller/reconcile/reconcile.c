// SPDX-License-Identifier: Apache-2.0
/*
 * reconcile.c - the decisions of one reconcile, as a chain of steps:
 * baseline policy, the sandbox's own policy, then (only once both exist)
 * its pod, then its status. Each step compares the cache with the rendered
 * object and asks to write only what differs; objects kage does not own are
 * never touched. Every answer of the API server comes back through
 * reconcile_next, which takes it and decides the next request.
 */
#include "reconcile/reconcile.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reconcile/render.h"

/* ---- NetworkPolicies ------------------------------------------------- */

static bool baseline_step(const struct reconcile *r)
{
    return r->step == STEP_BASELINE;
}

static const char *policy_what(const struct reconcile *r)
{
    return baseline_step(r) ? "baseline NetworkPolicy" : "NetworkPolicy";
}

/* The policy of the current step exists as rendered: on to the next step. */
static void policy_in_place(struct reconcile *r)
{
    if (baseline_step(r)) {
        r->baseline_ok = true;
        reconcile__go(r, STEP_POLICY, "baseline in place");
    } else {
        r->policy_ok = true;
        reconcile__go(r, STEP_POD, "policy in place");
    }
}

/* Whether kage wrote the sandbox's policy to name pod uid as its owner a
 * moment ago: the watch may not show that yet, and the write stands in
 * for it (else every reconcile until then would send it again). */
static bool owner_told(const struct reconcile *r, const char *uid)
{
    const struct sbx_memory *m = r->mem;
    return m && m->owner_at && uid[0] && strcmp(m->owner_uid, uid) == 0 &&
           reconcile__now_ms((struct reconcile *)r) - m->owner_at < RECONCILE_EXPECT_MS;
}

/* The sandbox's policy was written as rendered: remember the pod it names. */
static void owner_written(struct reconcile *r)
{
    struct sbx_memory *m = r->mem;
    if (!m)
        return;
    m->owner_at = 0;
    if (r->policy_pod_uid[0] && (size_t)snprintf(m->owner_uid, sizeof(m->owner_uid), "%s",
                                                 r->policy_pod_uid) < sizeof(m->owner_uid))
        m->owner_at = reconcile__now_ms(r);
}

/* Replaces the current step's policy (uid uid) whole with the rendered one. */
static bool restore_policy(struct reconcile *r, struct reconcile_action *act, const char *uid,
                           const char *note)
{
    bool baseline = baseline_step(r);
    json_t *body = baseline ? r->baseline : r->policy;
    reconcile__event(r, true, r->fail_closed && !baseline ? "PolicyNarrowed" : "PolicyRestored",
                     "Update", note);
    reconcile__count(r, COUNT_UPDATE);
    reconcile__pin_uid(body, uid);
    return reconcile__send(r, act, WAIT_POLICY_WRITE, VERB_REPLACE, RES_POLICY,
                           baseline ? BASELINE_POLICY : r->name, body);
}

static bool take_policy_written(struct reconcile *r, const struct reconcile_answer *a,
                                struct reconcile_action *act)
{
    bool baseline = baseline_step(r);
    if (reconcile__already_exists(a)) /* ours and unseen, or someone else's: read it */
        return reconcile__send(r, act, WAIT_POLICY_READ, VERB_GET, RES_POLICY,
                               baseline ? BASELINE_POLICY : r->name, NULL);
    if (reconcile__failed(a)) {
        reconcile__refused(r, policy_what(r), a, true);
        reconcile__go(r, STEP_STATUS, "policy write refused");
        return false;
    }
    if (baseline) {
        r->env->baseline_written(r->env->arg, r->ns);
    } else {
        const char *uid = reconcile__uid_of(a->json); /* a create's answer names it */
        if (uid)
            snprintf(r->made_policy_uid, sizeof(r->made_policy_uid), "%s", uid);
        if (r->mem) {
            memcpy(r->mem->policy_hash, r->policy_hash, sizeof(r->mem->policy_hash));
            r->mem->policy_at = reconcile__now_ms(r);
        }
        owner_written(r);
    }
    policy_in_place(r);
    return false;
}

/* A policy of the name kage needs is someone else's (or one of kage's
 * that lost its owner, which kage no longer trusts): it is left alone,
 * and the sandbox's pod goes, as nothing says what that policy allows. */
static void not_ours(struct reconcile *r, const char *name, bool baseline)
{
    reconcile__block(r, "NameConflict", true,
                     "NetworkPolicy %s/%s exists and is not %s; kage leaves it alone and creates "
                     "no pod until it is renamed or removed",
                     r->ns, name, baseline ? "managed by kage" : "owned by this Sandbox");
    r->outcome = outcome_retry();
    r->pod_unwanted = true;
    reconcile__go(r, STEP_POD, "policy not kage's");
}

/* After a 409 AlreadyExists: is the object there kage's (a cache lag) or
 * someone else's (a name conflict)? */
static bool take_policy_read(struct reconcile *r, const struct reconcile_answer *a,
                             struct reconcile_action *act)
{
    bool baseline = baseline_step(r);
    const char *name = baseline ? BASELINE_POLICY : r->name;
    const char *want = baseline ? r->baseline_hash : r->policy_hash;
    bool managed = !reconcile__failed(a) && reconcile__label_is(a->json, LABEL_MANAGED_BY, "kage");
    if (reconcile__failed(a)) {
        reconcile__refused(r, policy_what(r), a, true);
    } else if (managed && reconcile__as_rendered_spec(a->json, want) &&
               (baseline || reconcile__owned_by(a->json, r->uid))) {
        policy_in_place(r); /* ours, as rendered: the watch has not shown it yet */
        return false;
    } else if (baseline ? managed || reconcile__as_rendered_spec(a->json, want)
                        : reconcile__owned_by(a->json, r->uid)) {
        /* Ours, but out of the watch's sight: its managed-by label was
         * removed (the watch selects on it), maybe its rules edited too.
         * A baseline counts as ours when its rules are exactly kage's.
         * Put it back whole, labels included. */
        char note[700];
        snprintf(note, sizeof(note),
                 "NetworkPolicy %s/%s lost its labels or was changed from outside; restored", r->ns,
                 name);
        log_info("restoring network policy out of the watch's sight", "{s:s, s:s}", "namespace",
                 r->ns, "policy", name);
        return restore_policy(r, act, reconcile__uid_of(a->json), note);
    } else {
        not_ours(r, name, baseline);
        return false;
    }
    reconcile__go(r, STEP_STATUS, "policy not in place");
    return false;
}

/* Whether obs is a policy of kage's whose Sandbox is gone and which the
 * garbage collector keeps for that Sandbox's pod, its last owner: it goes
 * with the pod (absent from the cache, or going, with obs's pod uid). */
static bool earlier_pods_policy(struct reconcile *r, const struct policy_obj *obs)
{
    if (!obs->managed || obs->owner_uid[0] || !obs->pod_owner_uid[0])
        return false;
    const struct pod_obj *pod = r->env->pod(r->env->arg, r->key);
    return !pod || (pod->deleting && strcmp(pod->uid, obs->pod_owner_uid) == 0);
}

/* Creates the current step's policy when absent, replaces it when it
 * drifted. True when a request is to be sent. */
static bool step_policy(struct reconcile *r, struct reconcile_action *act)
{
    bool baseline = baseline_step(r);
    const char *name = baseline ? BASELINE_POLICY : r->name;
    const char *want = baseline ? r->baseline_hash : r->policy_hash;
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", r->ns, name);
    const struct policy_obj *obs = r->env->policy(r->env->arg, key);

    if (obs && !baseline && obs->owned && obs->managed && strcmp(obs->owner_uid, r->uid) != 0) {
        /* Left by an earlier Sandbox of the same name: the garbage
         * collector takes it; then this one gets its own. */
        reconcile__block(r, "PolicyPending", true,
                         "NetworkPolicy %s still belongs to an earlier Sandbox of this name; "
                         "waiting for it to be collected",
                         key);
        r->outcome = outcome_after(1000);
    } else if (obs && !baseline && earlier_pods_policy(r, obs)) {
        reconcile__block(r, "PolicyPending", true,
                         "NetworkPolicy %s still guards the pod of an earlier Sandbox of this "
                         "name; waiting for it to be collected with that pod",
                         key);
        r->outcome = outcome_after(1000);
    } else if (obs && !baseline && (!obs->owned || strcmp(obs->owner_uid, r->uid) != 0)) {
        not_ours(r, name, false);
        return false;
    } else if (obs && strcmp(obs->spec_hash, want) == 0 && !obs->deleting) {
        if (baseline || strcmp(obs->pod_owner_uid, r->policy_pod_uid) == 0 ||
            owner_told(r, r->policy_pod_uid)) {
            policy_in_place(r);
            return false;
        }
        /* As rendered but for the pod it names as an owner: it follows
         * the sandbox's pod (made, or replaced) so that it outlives it. */
        log_debug("policy follows the pod", "{s:s, s:s}", "policy", key, "pod", r->policy_pod_uid);
        reconcile__count(r, COUNT_UPDATE);
        reconcile__pin_uid(r->policy, obs->uid);
        return reconcile__send(r, act, WAIT_POLICY_WRITE, VERB_REPLACE, RES_POLICY, name,
                               r->policy);
    } else if (!obs) {
        /* Written a moment ago and not yet seen by the watch? */
        const struct sbx_memory *m = r->mem;
        if ((baseline && r->env->baseline_recent(r->env->arg, r->ns)) ||
            (!baseline && m && m->policy_at && strcmp(m->policy_hash, want) == 0 &&
             reconcile__now_ms(r) - m->policy_at < RECONCILE_EXPECT_MS)) {
            policy_in_place(r);
            return false;
        }
        reconcile__count(r, COUNT_CREATE);
        return reconcile__send(r, act, WAIT_POLICY_WRITE, VERB_CREATE, RES_POLICY, NULL,
                               baseline ? r->baseline : r->policy);
    } else if (obs->deleting) {
        /* Deleted from outside: it goes soon, then it is created anew. */
        reconcile__block(r, "PolicyPending", true,
                         "NetworkPolicy %s is being deleted; it will be recreated", key);
        r->outcome = outcome_after(1000);
    } else {
        /* Edited from outside: replace it whole. A server-side apply would
         * leave fields another manager added, such as an extra selector
         * label; a policy must be exactly what kage rendered. */
        char note[700];
        if (r->fail_closed && !baseline)
            snprintf(note, sizeof(note),
                     "NetworkPolicy %s narrowed to allow nothing while the sandbox is blocked",
                     key);
        else
            snprintf(note, sizeof(note), "NetworkPolicy %s was changed from outside; restored",
                     key);
        log_info("restoring network policy", "{s:s}", "policy", key);
        return restore_policy(r, act, obs->uid, note);
    }
    reconcile__go(r, STEP_STATUS, "policy blocked");
    return false;
}

/* Whether the baseline and the sandbox's own policy (owned by it) exist,
 * as the cache shows them: a blocked Sandbox keeps what it has. */
static void kept_policies(struct reconcile *r)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", r->ns, BASELINE_POLICY);
    const struct policy_obj *b = r->env->policy(r->env->arg, key);
    const struct policy_obj *p = r->env->policy(r->env->arg, r->key);
    r->baseline_ok = b && !b->deleting;
    r->policy_ok = p && !p->deleting && p->owned && strcmp(p->owner_uid, r->uid) == 0;
    r->kept_rules = r->policy_ok ? p->egress_rules : 0;
}

/* Whether the cache holds a policy of this Sandbox's name that is its own. */
static bool own_policy(struct reconcile *r)
{
    const struct policy_obj *p = r->env->policy(r->env->arg, r->key);
    return p && p->owned && strcmp(p->owner_uid, r->uid) == 0;
}

/* The first step: what the Sandbox's state allows, then the baseline. */
static bool step_baseline(struct reconcile *r, struct reconcile_action *act)
{
    if (r->deleting) {
        /* Going: its children go with it, except an expired pod, which
         * goes now whatever holds the Sandbox. */
        reconcile__go(r, r->pod_unwanted ? STEP_POD : STEP_STATUS, "sandbox being deleted");
    } else if (r->delete_sandbox) {
        /* Lifetime over, shutdownPolicy Delete: the Sandbox goes, and its
         * pod and policy with it (ownerReferences). */
        char note[200];
        snprintf(note, sizeof(note), "the lifetime ended at %s; deleting the Sandbox",
                 r->expires_at);
        reconcile__event(r, false, "Expired", "Delete", note);
        log_info("sandbox expired, deleting it", "{s:s, s:s}", "sandbox", r->key, "expiredAt",
                 r->expires_at);
        if (reconcile__delete_exactly(r, act, WAIT_SANDBOX_DELETE, RES_SANDBOX, r->name, r->uid))
            return true;
        reconcile__go(r, STEP_POD, "expired");
    } else if (r->fail_closed && !own_policy(r)) {
        /* Blocked, and it never had a policy: nothing is written for it
         * (its pod, if any, still goes); the status says what it keeps. */
        kept_policies(r);
        reconcile__go(r, STEP_POD, "blocked");
    } else {
        return step_policy(r, act);
    }
    return false;
}

static bool take_sandbox_deleted(struct reconcile *r, const struct reconcile_answer *a)
{
    if (reconcile__failed(a) && !reconcile__not_found(a) && a->code != 409) {
        log_warn("expired sandbox not deleted", "{s:s, s:I, s:s}", "sandbox", r->key, "code",
                 (json_int_t)a->code, "message", a->message);
        r->outcome = outcome_retry();
    }
    /* The pod goes now, not when the garbage collector gets to it: a
     * finalizer on the Sandbox (or a refused delete) must not keep an
     * expired sandbox running. */
    reconcile__go(r, STEP_POD, "expired sandbox deleted");
    return false;
}

/* ---- the policy follows the pod made or seen late ------------------ */

/* The policy was rendered before the sandbox's pod existed, or before the
 * cache showed it: it names that pod before the status is written, so
 * that a Ready sandbox's policy names its pod. The pod is the one this
 * reconcile made (its uid from the server's answer, so the update goes
 * now, not in the next reconcile that the pod's add event brings and
 * that would wait for it), else the one the cache shows; the policy is
 * the one this reconcile created, else the cached one as rendered. At
 * most once per reconcile; true with act set. */
static bool follow_late_pod(struct reconcile *r, struct reconcile_action *act)
{
    if (r->late_checked || !r->policy_ok || r->deleting || !r->policy)
        return false;
    r->late_checked = true;
    const struct pod_obj *pod = r->env->pod(r->env->arg, r->key);
    const struct policy_obj *pol = r->env->policy(r->env->arg, r->key);
    const char *pod_uid = NULL;
    if (r->made_pod_uid[0])
        pod_uid = r->made_pod_uid;
    else if (pod && !pod->deleting && pod->owned && strcmp(pod->owner_uid, r->uid) == 0)
        pod_uid = pod->uid;
    if (!pod_uid || strcmp(pod_uid, r->policy_pod_uid) == 0 || owner_told(r, pod_uid))
        return false;
    const char *pol_uid = NULL;
    if (pol && !pol->deleting && pol->owned && strcmp(pol->owner_uid, r->uid) == 0 &&
        strcmp(pol->spec_hash, r->policy_hash) == 0) {
        if (strcmp(pol->pod_owner_uid, pod_uid) == 0)
            return false;
        pol_uid = pol->uid;
    } else if (!pol && r->made_policy_uid[0]) {
        pol_uid = r->made_policy_uid;
    }
    if (!pol_uid || render_policy_pod_owner(r->policy, r->name, pod_uid) != 0)
        return false; /* the next reconcile, which the pod's events bring, does it */
    snprintf(r->policy_pod_uid, sizeof(r->policy_pod_uid), "%s", pod_uid);
    log_debug("policy follows the pod", "{s:s, s:s}", "policy", r->key, "pod", pod_uid);
    reconcile__count(r, COUNT_UPDATE);
    reconcile__pin_uid(r->policy, pol_uid);
    return reconcile__send(r, act, WAIT_POLICY_FOLLOW, VERB_REPLACE, RES_POLICY, r->name,
                           r->policy);
}

/* A failed write is left to the next reconcile: the policy stands as it
 * is, and the status is written all the same. */
static void take_policy_followed(struct reconcile *r, const struct reconcile_answer *a)
{
    if (reconcile__failed(a))
        log_warn("policy not made to name the pod", "{s:s, s:I, s:s}", "sandbox", r->key, "code",
                 (json_int_t)a->code, "message", a->message);
    else
        owner_written(r);
}

/* ---- the chain ------------------------------------------------------- */

/* Takes the answer to the request in flight; true when it leads straight
 * to another request (act set). */
static bool take(struct reconcile *r, enum reconcile_wait w, const struct reconcile_answer *a,
                 struct reconcile_action *act)
{
    switch (w) {
    case WAIT_POLICY_WRITE:
        return take_policy_written(r, a, act);
    case WAIT_POLICY_READ:
        return take_policy_read(r, a, act);
    case WAIT_POLICY_FOLLOW:
        take_policy_followed(r, a);
        return false;
    case WAIT_SANDBOX_DELETE:
        return take_sandbox_deleted(r, a);
    case WAIT_STATUS:
        reconcile__status_answer(r, a);
        return false;
    case WAIT_POD_CREATE:
    case WAIT_POD_READ:
    case WAIT_POD_DELETE:
    case WAIT_OWNER_READ:
        return reconcile__take_pod(r, w, a, act);
    case WAIT_NONE:
        break;
    }
    return false;
}

void reconcile_next(struct reconcile *r, const struct reconcile_answer *ans,
                    struct reconcile_action *act)
{
    static const struct reconcile_answer unsent = {-1, "", "", NULL};
    memset(act, 0, sizeof(*act));
    reconcile__note_sight(r);
    if (r->wait != WAIT_NONE) {
        enum reconcile_wait w = r->wait;
        r->wait = WAIT_NONE;
        if (take(r, w, ans ? ans : &unsent, act))
            return;
    }
    for (;;) {
        switch (r->step) {
        case STEP_BASELINE:
        case STEP_POLICY:
            if (r->step == STEP_BASELINE ? step_baseline(r, act) : step_policy(r, act))
                return;
            break;
        case STEP_POD:
            if (reconcile__step_pod(r, act))
                return;
            break;
        case STEP_STATUS:
            if (follow_late_pod(r, act))
                return;
            if (!r->ns_terminating && !r->delete_sandbox && !reconcile__status(r, act))
                return;
            reconcile__go(r, STEP_DONE, "status in place");
            break;
        case STEP_DONE:
            if (!r->block_reason[0] && r->mem)
                r->mem->blocked_runs = 0;
            act->kind = ACTION_FINISH;
            act->outcome = r->outcome;
            act->deadline_ms = r->deadline_ms;
            return;
        }
    }
}
