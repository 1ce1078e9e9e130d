/*
 * sync.c - one reconcile of one Sandbox, as a chain of steps on the loop:
 * baseline policy, the sandbox's policy, then (only once both exist) its
 * pod, then its status. Each step compares the cache with the rendered
 * object and writes only what differs; objects kage does not own are never
 * touched.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"
#include "utf8.h"
#include "kube/buf.h"
#include "kube/path.h"
#include "log.h"
#include "reconcile/render.h"
#include "reconcile/sbxstatus.h"
#include "reconcile/validate.h"

void sync__event(struct run *r, bool warning, const char *reason, const char *action,
                 const char *note)
{
    ctl_event(r->c, r->key, r->ns, r->name, r->uid, warning, reason, action, note);
}

static void run_free(struct run *r)
{
    json_decref(r->sbx);
    json_decref(r->baseline);
    json_decref(r->policy);
    json_decref(r->pod);
    free(r);
}

void sync__block(struct run *r, const char *reason, bool is_policy, const char *fmt, ...)
{
    if (r->block_reason[0])
        return;
    va_list ap;
    snprintf(r->block_reason, sizeof(r->block_reason), "%s", reason);
    r->block_is_policy = is_policy;
    va_start(ap, fmt);
    vsnprintf(r->block_message, sizeof(r->block_message), fmt, ap);
    va_end(ap);
    utf8_trim_tail(r->block_message); /* an API message may be cut mid-character */
}

/* The delay before looking again at a sandbox held up by something that
 * clears by itself: first ms, doubling per consecutive hold up to 5 min. */
static int blocked_retry(struct run *r, int ms)
{
    struct sbx_state *st = ctl_state(r->c, r->key, true);
    unsigned n = st ? st->holds++ : 0;
    uint64_t d = (uint64_t)ms << (n < 10 ? n : 10);
    return d > 300000 ? 300000 : (int)d;
}

/* Maps an API refusal of a write to a status reason and a retry policy. */
static void refused(struct run *r, const char *what, const struct kube_error *e, bool is_policy)
{
    const char *m = e->message;
    if (e->code == 403 && strstr(m, "because it is being terminated")) {
        /* The namespace goes, and the Sandbox with it: nothing to report. */
        r->ns_terminating = true;
        return;
    }
    if (e->code == 403 && strstr(m, "error looking up service account")) {
        /* A new namespace's default ServiceAccount is made a moment after
         * the namespace: admission refuses pods until then. Look again soon
         * rather than backing off for minutes. */
        sync__block(r, "ServiceAccountNotFound", is_policy, "%s", m);
        r->result = blocked_retry(r, 2000);
        r->c->stats.failures++;
        log_info("write refused until the namespace's ServiceAccount exists", "{s:s, s:s}",
                 "sandbox", r->key, "object", what);
        return;
    }
    if (e->code == 403 && strstr(m, "exceeded quota")) {
        sync__block(r, "QuotaExceeded", is_policy, "%s", m);
        ctl_quota_held(r->c, r->ns);
        /* Quota frees when a pod goes (which wakes podless sandboxes), or
         * when the quota changes, which kage does not watch: look again,
         * less often the longer it lasts. */
        r->result = blocked_retry(r, 5000);
    } else if (e->code == 403 && strstr(m, "RuntimeClass") && strstr(m, "not found")) {
        sync__block(r, "RuntimeClassNotFound", is_policy, "%s", m);
        r->result = -1;
    } else if (e->code == 403 && strstr(m, "PodSecurity")) {
        sync__block(r, "Forbidden", is_policy, "%s", m);
        r->result = -1;
    } else if (e->code == 403) {
        sync__block(r, "Forbidden", is_policy, "%s %s: %s", what, "refused", m);
        r->result = -1;
    } else if (e->code == 422 || e->code == 400) {
        sync__block(r, is_policy ? "PolicyInvalid" : "PodInvalid", is_policy, "%s", m);
        r->result = -1;
    } else {
        sync__block(r, is_policy ? "PolicyFailed" : "PodFailed", is_policy, "%s: %s", what,
                    m[0] ? m : e->reason);
        r->result = -1;
    }
    r->c->stats.failures++;
    log_warn("write refused", "{s:s, s:s, s:I, s:s, s:s}", "sandbox", r->key, "object", what,
             "code", (json_int_t)e->code, "reason", e->reason, "message", m);
}

int sync__send(struct run *r, enum kube_verb verb, const struct kube_resource *res,
               const char *name, const char *sub, json_t *body, kube_response_cb cb)
{
    struct buf path;
    char *text = NULL;
    int rc;
    buf_init(&path, 4096);
    rc = kube_path(&path, res, r->ns, name, sub);
    if (!rc && verb != KUBE_DELETE)
        rc = kube_query(&path, "fieldManager", "kage");
    if (!rc && body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            rc = -ENOMEM;
    }
    if (!rc)
        rc =
            kube_request(r->c->client, verb, path.data, text, text ? strlen(text) : 0, cb, r, NULL);
    free(text);
    buf_free(&path);
    return rc;
}

/* ---- NetworkPolicies ------------------------------------------------- */

static void on_policy_check(void *arg, const struct kube_response *resp);

/* After a 409 AlreadyExists: is the object there kage's (a cache lag) or
 * someone else's (a name conflict)? */
static void check_existing(struct run *r, const struct kube_resource *res, const char *name,
                           kube_response_cb cb)
{
    if (sync__send(r, KUBE_GET, res, name, NULL, NULL, cb) != 0) {
        r->result = -1;
        r->step = STEP_STATUS;
        sync__next(r);
    }
}

static bool owned_by(json_t *obj, const char *uid)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        const char *u = json_string_value(json_object_get(ref, "uid"));
        if (json_is_true(json_object_get(ref, "controller")) && u && strcmp(u, uid) == 0)
            return true;
    }
    return false;
}

static bool managed_by_kage(json_t *obj)
{
    const char *m = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "labels"), LABEL_MANAGED_BY));
    return m && strcmp(m, "kage") == 0;
}

/* Makes a replacing PUT apply only to the object with that uid: one deleted
 * and made again by someone else meanwhile is refused, not overwritten. */
static void pin_uid(json_t *body, const char *uid)
{
    if (uid)
        json_object_set_new(json_object_get(body, "metadata"), "uid", json_string(uid));
}

/* Whether obj's spec digests to want_hash. */
static bool as_rendered_spec(json_t *obj, const char *want_hash)
{
    char hash[SPEC_HASH_LEN + 1];
    return observed_hash(json_object_get(obj, "spec"), hash) == 0 && strcmp(hash, want_hash) == 0;
}

/* Whether an existing policy is exactly what kage renders, labels and
 * spec: then a 409 was only the cache lagging behind our own write. */
static bool as_rendered(json_t *obj, const char *want_hash)
{
    return managed_by_kage(obj) && as_rendered_spec(obj, want_hash);
}

static void on_policy_written(void *arg, const struct kube_response *resp);

static void on_policy_check(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    bool baseline = r->step == STEP_BASELINE;
    const char *name = baseline ? BASELINE_POLICY : r->name;
    const char *want = baseline ? r->baseline_hash : r->policy_hash;
    if (resp->err) {
        refused(r, baseline ? "baseline NetworkPolicy" : "NetworkPolicy", resp->err, true);
        r->step = STEP_STATUS;
    } else if (as_rendered(resp->json, want) && (baseline || owned_by(resp->json, r->uid))) {
        /* Ours, as rendered: the watch has not shown it yet. */
        if (baseline)
            r->baseline_ok = true;
        else
            r->policy_ok = true;
        r->step++;
    } else if (baseline ? managed_by_kage(resp->json) || as_rendered_spec(resp->json, want)
                        : owned_by(resp->json, r->uid)) {
        /* Ours, but out of the watch's sight: its managed-by label was
         * removed (the watch selects on it), maybe its rules edited too.
         * A baseline counts as ours when its rules are exactly kage's.
         * Put it back whole, labels included. */
        char note[700];
        snprintf(note, sizeof(note),
                 "NetworkPolicy %s/%s lost its labels or was changed from outside; restored", r->ns,
                 name);
        sync__event(r, true, "PolicyRestored", "Update", note);
        log_info("restoring network policy out of the watch's sight", "{s:s, s:s}", "namespace",
                 r->ns, "policy", name);
        r->c->stats.updates++;
        json_t *body = baseline ? r->baseline : r->policy;
        pin_uid(body,
                json_string_value(json_object_get(json_object_get(resp->json, "metadata"), "uid")));
        if (sync__send(r, KUBE_PUT, &KUBE_NETWORK_POLICIES, name, NULL, body, on_policy_written) ==
            0)
            return;
        r->result = -1;
        r->step = STEP_STATUS;
    } else {
        sync__block(r, "NameConflict", true,
                    "NetworkPolicy %s/%s exists and is not %s; kage leaves it alone and creates no "
                    "pod until it is renamed or removed",
                    r->ns, name, baseline ? "managed by kage" : "owned by this Sandbox");
        r->result = -1;
        r->step = STEP_STATUS;
    }
    sync__next(r);
}

static void on_policy_written(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    bool baseline = r->step == STEP_BASELINE;
    if (resp->err && kube_error_is_already_exists(resp->err)) {
        check_existing(r, &KUBE_NETWORK_POLICIES, baseline ? BASELINE_POLICY : r->name,
                       on_policy_check);
        return;
    }
    if (resp->err) {
        refused(r, baseline ? "baseline NetworkPolicy" : "NetworkPolicy", resp->err, true);
        r->step = STEP_STATUS;
        sync__next(r);
        return;
    }
    if (baseline) {
        r->baseline_ok = true;
        ctl_baseline_written(r->c, r->ns);
    } else {
        r->policy_ok = true;
        struct sbx_state *st = ctl_state(r->c, r->key, true);
        if (st) {
            memcpy(st->policy_hash, r->policy_hash, sizeof(st->policy_hash));
            st->policy_at = uv_now(r->c->loop);
        }
    }
    r->step++;
    sync__next(r);
}

/* Creates the policy when absent, replaces it when it drifted. */
/* What a step did: nothing left to do, a request in flight (its callback
 * moves the run on), or stop here and report (blocked or failed). */
enum outcome {
    NEXT,
    WAIT,
    STOP,
};

static enum outcome step_policy(struct run *r, bool baseline)
{
    const char *name = baseline ? BASELINE_POLICY : r->name;
    const char *want = baseline ? r->baseline_hash : r->policy_hash;
    json_t *body = baseline ? r->baseline : r->policy;
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", r->ns, name);
    const struct policy_obj *obs = informer_get(r->c->policies, key);
    int rc;

    if (obs && !baseline && obs->owned && obs->managed && strcmp(obs->owner_uid, r->uid) != 0) {
        /* Left by an earlier Sandbox of the same name: the garbage
         * collector takes it; then this one gets its own. */
        sync__block(r, "PolicyPending", true,
                    "NetworkPolicy %s still belongs to an earlier Sandbox of this name; waiting "
                    "for it to be collected",
                    key);
        r->result = 1000;
        return STOP;
    }
    if (obs && !baseline && (!obs->owned || strcmp(obs->owner_uid, r->uid) != 0)) {
        sync__block(
            r, "NameConflict", true,
            "NetworkPolicy %s exists and is not owned by this Sandbox; kage leaves it alone "
            "and creates no pod until it is renamed or removed",
            key);
        r->result = -1;
        return STOP;
    }
    if (obs && strcmp(obs->spec_hash, want) == 0 && !obs->deleting)
        return NEXT;
    if (!obs) {
        /* Written a moment ago and not yet seen by the watch? */
        if (baseline && ctl_baseline_recent(r->c, r->ns))
            return NEXT;
        struct sbx_state *st = baseline ? NULL : ctl_state(r->c, r->key, false);
        if (st && st->policy_at && strcmp(st->policy_hash, want) == 0 &&
            uv_now(r->c->loop) - st->policy_at < CTL_EXPECT_MS)
            return NEXT;
        r->c->stats.creates++;
        rc = sync__send(r, KUBE_POST, &KUBE_NETWORK_POLICIES, NULL, NULL, body, on_policy_written);
    } else if (obs->deleting) {
        /* Deleted from outside: it goes soon, then it is created anew. */
        sync__block(r, "PolicyPending", true,
                    "NetworkPolicy %s is being deleted; it will be recreated", key);
        r->result = 1000;
        return STOP;
    } else {
        /* Edited from outside: replace it whole. A server-side apply would
         * leave fields another manager added, such as an extra selector
         * label; a policy must be exactly what kage rendered. */
        r->c->stats.updates++;
        log_info("restoring network policy", "{s:s}", "policy", key);
        char note[700];
        snprintf(note, sizeof(note), "NetworkPolicy %s was changed from outside; restored", key);
        sync__event(r, true, "PolicyRestored", "Update", note);
        pin_uid(body, obs->uid);
        rc = sync__send(r, KUBE_PUT, &KUBE_NETWORK_POLICIES, name, NULL, body, on_policy_written);
    }
    if (rc) {
        r->result = -1;
        return STOP;
    }
    return WAIT;
}

/* ---- the pod ---------------------------------------------------------- */

static void on_pod_deleted(void *arg, const struct kube_response *resp);

/* Whether obj carries kage.dev/sandbox=name. */
static bool label_is(json_t *obj, const char *name)
{
    const char *v = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "labels"), LABEL_SANDBOX));
    return v && strcmp(v, name) == 0;
}

/* Deletes the run's pod (only the one with that uid) to replace it. Returns
 * 0 when the request is in flight. */
/* Deletes res/name of the run's namespace, only the object with that uid
 * (a precondition: never a newer one of the same name). Returns 0 when the
 * request is in flight. */
static int delete_exactly(struct run *r, const struct kube_resource *res, const char *name,
                          const char *uid, kube_response_cb cb)
{
    json_t *opts = json_pack("{s:s, s:s, s:{s:s}, s:s}", "kind", "DeleteOptions", "apiVersion",
                             "v1", "preconditions", "uid", uid, "propagationPolicy", "Background");
    int rc = opts ? sync__send(r, KUBE_DELETE, res, name, NULL, opts, cb) : -ENOMEM;
    json_decref(opts);
    if (rc == 0)
        r->c->stats.deletes++;
    return rc;
}

static int delete_pod(struct run *r, const char *uid, const char *why)
{
    char note[600];
    snprintf(note, sizeof(note), "pod %s differs from the Sandbox (%s); replacing it", r->name,
             why);
    sync__event(r, false, "PodReplaced", "Delete", note);
    log_info("replacing pod", "{s:s, s:s}", "sandbox", r->key, "because", why);
    return delete_exactly(r, &KUBE_PODS, r->name, uid, on_pod_deleted);
}

static void on_pod_check(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (!resp->err &&
        json_object_get(json_object_get(resp->json, "metadata"), "deletionTimestamp")) {
        /* Already going (a replacement in progress): look again soon. */
        r->pod_replacing = true;
        if (r->result == 0)
            r->result = 1000;
    } else if (resp->err) {
        refused(r, "pod", resp->err, false);
    } else if (!owned_by(resp->json, r->uid)) {
        sync__block(
            r, "NameConflict", false,
            "pod %s/%s exists and is not owned by this Sandbox; kage leaves it alone until it "
            "is renamed or removed",
            r->ns, r->name);
        r->result = -1;
    } else if (!label_is(resp->json, r->name)) {
        /* Ours, but its kage.dev/sandbox label was removed or changed: no
         * policy selects it any more. Replace it. */
        const char *uid =
            json_string_value(json_object_get(json_object_get(resp->json, "metadata"), "uid"));
        if (uid && delete_pod(r, uid, "its kage.dev/sandbox label was changed") == 0)
            return;
        r->result = -1;
    }
    r->step = STEP_STATUS;
    sync__next(r);
}

static void on_pod_created(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (resp->err && kube_error_is_already_exists(resp->err)) {
        check_existing(r, &KUBE_PODS, r->name, on_pod_check);
        return;
    }
    if (resp->err) {
        refused(r, "pod", resp->err, false);
    } else {
        struct sbx_state *st = ctl_state(r->c, r->key, true);
        if (st) {
            snprintf(st->pod_hash, sizeof(st->pod_hash), "%s", render_pod_hash(r->pod));
            st->pod_at = uv_now(r->c->loop);
            st->pod_made_at = st->pod_at;
        }
        log_info("created pod", "{s:s}", "sandbox", r->key);
        char note[600];
        snprintf(note, sizeof(note), "created pod %s (runtime class %s)", r->name,
                 r->c->opts.runtime_class);
        sync__event(r, false, "PodCreated", "Create", note);
    }
    r->step = STEP_STATUS;
    sync__next(r);
}

static void on_pod_deleted(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (resp->err && !kube_error_is_not_found(resp->err) && resp->err->code != 409)
        refused(r, "pod", resp->err, false);
    r->pod_replacing = true;
    /* Look again soon: a pod out of the watch's sight (its label changed)
     * sends no deletion event to bring the replacement. */
    if (r->result == 0 && !r->pod_unwanted)
        r->result = 1000;
    r->step = STEP_STATUS;
    sync__next(r);
}

/* The Sandbox as the API server has it now, read before making it a pod
 * again (see step_pod): gone, going or replaced by another of its name,
 * it gets none, and its own events bring what follows. */
static void on_owner_read(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (resp->err && !kube_error_is_not_found(resp->err)) {
        r->result = -1; /* unknown: try again later rather than guess */
        r->step = STEP_STATUS;
        sync__next(r);
        return;
    }
    json_t *md = json_object_get(resp->json, "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    if (resp->err || !uid || strcmp(uid, r->uid) != 0 || json_object_get(md, "deletionTimestamp")) {
        log_info("not making a pod again: the sandbox is gone", "{s:s}", "sandbox", r->key);
        r->step = STEP_DONE;
    } else {
        r->owner_confirmed = true; /* step_pod again, now to create */
    }
    sync__next(r);
}

static bool step_pod(struct run *r)
{
    const struct pod_obj *obs = informer_get(r->c->pods, r->key);
    const char *want = render_pod_hash(r->pod);
    int rc;

    if (obs && obs->owned && strcmp(obs->owner_uid, r->uid) != 0 &&
        strcmp(obs->sandbox, r->name) == 0) {
        sync__block(r, "PodPending", false,
                    "pod %s still belongs to an earlier Sandbox of this name; waiting for it to "
                    "be collected",
                    r->key);
        r->result = 1000;
        return true;
    }
    if (obs && (!obs->owned || strcmp(obs->owner_uid, r->uid) != 0)) {
        sync__block(
            r, "NameConflict", false,
            "pod %s exists and is not owned by this Sandbox; kage leaves it alone until it is "
            "renamed or removed",
            r->key);
        r->result = -1;
        return true;
    }
    if (!obs) {
        struct sbx_state *st = ctl_state(r->c, r->key, false);
        if (st && st->pod_at && strcmp(st->pod_hash, want) == 0 &&
            uv_now(r->c->loop) - st->pod_at < CTL_EXPECT_MS) {
            return true; /* created a moment ago */
        }
        if (st && st->pod_made_at && !r->owner_confirmed) {
            /* A pod kage made is gone. When a Sandbox is deleted, the
             * garbage collector removes its pod, and that deletion can
             * reach kage on the pod watch before the Sandbox's own reaches
             * it on another: a pod made now would be an orphan. One read
             * settles it. */
            if (sync__send(r, KUBE_GET, &KAGE_SANDBOXES, r->name, NULL, NULL, on_owner_read)) {
                r->result = -1;
                return true;
            }
            return false;
        }
        r->c->stats.creates++;
        rc = sync__send(r, KUBE_POST, &KUBE_PODS, NULL, NULL, r->pod, on_pod_created);
    } else if (obs->deleting) {
        return true; /* its deletion event brings the next reconcile */
    } else if (strcmp(obs->sandbox, r->name) != 0) {
        rc = delete_pod(r, obs->uid, "its kage.dev/sandbox label was changed");
    } else if (strcmp(obs->spec_hash, want) != 0) {
        /* The spec changed (or the pod was edited): pods are immutable
         * where it matters, so the sandbox gets a new one. */
        rc = delete_pod(r, obs->uid, "the spec changed");
    } else {
        return true;
    }
    if (rc) {
        r->result = -1;
        return true;
    }
    return false;
}

/* Whether the baseline and the sandbox's own policy (owned by it) exist,
 * as the cache shows them. */
static void kept_policies(struct run *r)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", r->ns, BASELINE_POLICY);
    const struct policy_obj *b = informer_get(r->c->policies, key);
    const struct policy_obj *p = informer_get(r->c->policies, r->key);
    r->baseline_ok = b && !b->deleting;
    r->policy_ok = p && !p->deleting && p->owned && strcmp(p->owner_uid, r->uid) == 0;
    r->kept_rules = r->policy_ok ? p->egress_rules : 0;
}

/* ---- the chain -------------------------------------------------------- */

/* ---- the Sandbox itself ---------------------------------------------- */

static void on_sandbox_deleted(void *arg, const struct kube_response *resp)
{
    struct run *r = arg;
    if (resp->err && !kube_error_is_not_found(resp->err) && resp->err->code != 409) {
        log_warn("expired sandbox not deleted", "{s:s, s:I, s:s}", "sandbox", r->key, "code",
                 (json_int_t)resp->err->code, "message", resp->err->message);
        r->result = -1;
    }
    /* The pod goes now, not when the garbage collector gets to it: a
     * finalizer on the Sandbox (or a refused delete) must not keep an
     * expired sandbox running. */
    r->step = STEP_POD;
    sync__next(r);
}

/* Lifetime over, shutdownPolicy Delete: the Sandbox goes, and its pod and
 * policy with it (ownerReferences). */
static bool step_delete_sandbox(struct run *r)
{
    char note[200];
    snprintf(note, sizeof(note), "the lifetime ended at %s; deleting the Sandbox", r->expires_at);
    sync__event(r, false, "Expired", "Delete", note);
    log_info("sandbox expired, deleting it", "{s:s, s:s}", "sandbox", r->key, "expiredAt",
             r->expires_at);
    if (delete_exactly(r, &KAGE_SANDBOXES, r->name, r->uid, on_sandbox_deleted) != 0) {
        r->result = -1;
        return true;
    }
    return false;
}

/* Paused, expired or against its class: the pod goes, the policies stay. */
static bool step_pod_remove(struct run *r)
{
    const struct pod_obj *obs = informer_get(r->c->pods, r->key);
    if (!obs || obs->deleting || !obs->owned || strcmp(obs->owner_uid, r->uid) != 0)
        return true;
    const char *why = r->paused ? "paused" : r->expired ? "expired" : "against its SandboxClass";
    char note[600];
    snprintf(note, sizeof(note), "the sandbox is %s: removing pod %s", why, r->name);
    sync__event(r, false, "PodRemoved", "Delete", note);
    log_info("removing pod", "{s:s, s:s}", "sandbox", r->key, "because", why);
    if (delete_exactly(r, &KUBE_PODS, r->name, obs->uid, on_pod_deleted) != 0) {
        r->result = -1;
        return true;
    }
    return false;
}

/* ---- the chain -------------------------------------------------------- */

void sync__next(struct run *r)
{
    for (;;) {
        switch (r->step) {
        case STEP_BASELINE:
            if (r->invalid) {
                r->step = STEP_STATUS;
                continue;
            }
            if (r->deleting) {
                /* Going: its children go with it, except an expired pod,
                 * which goes now whatever holds the Sandbox. */
                r->step = r->pod_unwanted ? STEP_POD : STEP_STATUS;
                continue;
            }
            if (r->delete_sandbox) {
                if (!step_delete_sandbox(r))
                    return;
                r->step = STEP_POD;
                continue;
            }
            if (r->block_reason[0] && !r->policy) {
                /* Blocked before anything could be rendered (no class):
                 * existing policies stay, and the status says whether they
                 * are there; a pod that is paused or expired still goes. */
                kept_policies(r);
                r->step = r->pod_unwanted ? STEP_POD : STEP_STATUS;
                continue;
            }
            switch (step_policy(r, true)) {
            case WAIT:
                return;
            case STOP:
                r->step = STEP_STATUS;
                continue;
            case NEXT:
                break;
            }
            r->baseline_ok = true;
            r->step = STEP_POLICY;
            continue;
        case STEP_POLICY:
            switch (step_policy(r, false)) {
            case WAIT:
                return;
            case STOP:
                r->step = STEP_STATUS;
                continue;
            case NEXT:
                break;
            }
            r->policy_ok = true;
            r->step = STEP_POD;
            continue;
        case STEP_POD:
            if (r->pod_unwanted) {
                if (!step_pod_remove(r))
                    return;
                r->step = STEP_STATUS;
                continue;
            }
            /* Only once both policies exist: the pod is never unguarded. */
            if (!(r->baseline_ok && r->policy_ok)) {
                r->step = STEP_STATUS;
                continue;
            }
            if (!step_pod(r))
                return;
            r->step = STEP_STATUS;
            continue;
        case STEP_STATUS:
            if (!r->ns_terminating && !r->delete_sandbox && !sync__status(r))
                return;
            r->step = STEP_DONE;
            continue;
        case STEP_DONE: {
            struct queue *q = r->c->queue;
            int result = r->result;
            ctl_observe(r->c, r->started, result);
            if (!r->block_reason[0]) {
                struct sbx_state *st = ctl_state(r->c, r->key, false);
                if (st)
                    st->holds = 0;
            }
            char key[QUEUE_KEY_MAX + 1];
            memcpy(key, r->key, sizeof(key));
            uint64_t deadline = r->deadline_ms;
            /* After a stop, queue_done may be the one that frees q. */
            bool stopping = r->c->stopping;
            run_free(r);
            queue_done(q, key, result);
            /* The end of the lifetime is a deadline of its own: a retry's
             * backoff (up to minutes) must not push it back. */
            if (deadline && !stopping && (result <= 0 || (uint64_t)result > deadline))
                queue_add_after(q, key, deadline);
            return;
        }
        }
    }
}

void sync_sandbox(struct ctl *c, const char *key)
{
    const struct sandbox_obj *s = informer_get(c->sandboxes, key);
    c->stats.reconciles++;
    if (!s) {
        /* Gone: its children go with it (ownerReferences). */
        ctl_state_drop(c, key);
        queue_done(c->queue, key, 0);
        return;
    }
    struct run *r = calloc(1, sizeof(*r));
    if (!r) {
        queue_done(c->queue, key, -ENOMEM);
        return;
    }
    r->c = c;
    r->started = uv_hrtime();
    if (sync__prepare(r, s) != 0) {
        run_free(r);
        queue_done(c->queue, key, -ENOMEM);
        return;
    }
    r->step = STEP_BASELINE;
    sync__next(r);
}
