// SPDX-License-Identifier: Apache-2.0
/*
 * prepare.c - what a reconcile decides before it writes anything: is the
 * spec valid, which SandboxClass applies and does the Sandbox keep to it,
 * is the lifetime over or the sandbox paused, and the children to render.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "reconcile/class.h"
#include "reconcile/podrecord.h"
#include "reconcile/reconcile.h"
#include "reconcile/render.h"
#include "reconcile/sbxstatus.h"
#include "reconcile/selector.h"

/* The class of the Sandbox (NULL: none applies), or a ClassNotFound block. */
/* Whether class c may be used in the namespace with labels ns_labels:
 * its namespaceSelector selects it (unset selects every namespace). */
static bool class_admits(const struct class_obj *c, const json_t *ns_labels)
{
    if (!strstr(c->spec, "\"namespaceSelector\""))
        return true;
    json_error_t e;
    json_t *spec = json_loads(c->spec, JSON_ALLOW_NUL, &e);
    bool ok = spec && selector_matches(json_object_get(spec, "namespaceSelector"), ns_labels);
    json_decref(spec);
    return ok;
}

/* The class of the Sandbox (NULL: none applies), or a block: the named
 * class is missing or not for this namespace, or several defaults apply. */
static const struct class_obj *resolve_class(struct reconcile *r)
{
    json_t *spec = json_object_get(r->sbx, "spec");
    const char *want = json_string_value(json_object_get(spec, "sandboxClassName"));
    const char *text = r->env->namespace_labels(r->env->arg, r->ns);
    json_error_t e;
    json_t *labels = text ? json_loads(text, 0, &e) : NULL;
    const struct class_obj *c = NULL;
    if (want) {
        c = r->env->class_named(r->env->arg, want);
        if (!c)
            reconcile__block(r, "ClassNotFound", false,
                             "SandboxClass %s does not exist; create it or change "
                             "spec.sandboxClassName",
                             want);
        else if (!class_admits(c, labels))
            reconcile__block(r, "ClassNotAllowed", false,
                             "SandboxClass %s may not be used in namespace %s: its "
                             "namespaceSelector does not select it; use a class granted to this "
                             "namespace",
                             want, r->ns);
        if (r->block_reason[0])
            c = NULL;
        json_decref(labels);
        return c;
    }
    const struct class_obj *found[8], *fit[2];
    size_t n = r->env->class_defaults(r->env->arg, found, 8), k = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (class_admits(found[i], labels) && k++ < 2)
            fit[k - 1] = found[i];
    json_decref(labels);
    if (k > 1) {
        reconcile__block(r, "ClassNotFound", false,
                         "%zu SandboxClasses are marked default (%s, %s%s): mark one, or set "
                         "spec.sandboxClassName",
                         k, fit[0]->name, fit[1]->name, k > 2 ? ", ..." : "");
        return NULL;
    }
    if (k == 0 && r->env->require_class)
        reconcile__block(r, "NoClass", false,
                         "no SandboxClass applies in namespace %s: set spec.sandboxClassName to "
                         "a class granted to it, or ask for a default class that selects it",
                         r->ns);
    return k == 1 ? fit[0] : NULL;
}

/* Whether the lifetime is over; when it is not, the reconcile asks to come
 * back then (a timer, computed from creationTimestamp, so it survives
 * restarts). A blocked Sandbox (recorded set) keeps the earliest expiry
 * kage ever wrote in its status: making the spec invalid or taking its
 * class away must not lengthen its life. */
static void check_lifetime(struct reconcile *r, bool recorded)
{
    json_t *life = json_object_get(json_object_get(r->sbx, "spec"), "lifetime");
    json_t *ttl = json_object_get(life, "ttlSeconds");
    time_t created = sbxstatus_parse_time(json_string_value(
        json_object_get(json_object_get(r->sbx, "metadata"), "creationTimestamp")));
    time_t end = -1;
    if (json_is_integer(ttl) && created >= 0)
        end = created + (time_t)json_integer_value(ttl);
    if (recorded) {
        time_t was = sbxstatus_parse_time(
            json_string_value(json_object_get(json_object_get(r->sbx, "status"), "expiresAt")));
        if (was >= 0 && (end < 0 || was < end))
            end = was;
    }
    if (end < 0)
        return;
    struct tm tm;
    gmtime_r(&end, &tm);
    strftime(r->expires_at, sizeof(r->expires_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    time_t now = r->env->wall(r->env->arg);
    if (now >= end) {
        const char *policy = json_string_value(json_object_get(life, "shutdownPolicy"));
        r->expired = true;
        r->delete_sandbox = !policy || strcmp(policy, "Retain") != 0;
        return;
    }
    r->deadline_ms = (uint64_t)(end - now) * 1000 + 500;
}

/* The pod the sandbox's policy names as its second owner: the sandbox's
 * pod as the cache shows it (going or not: a pod being replaced still
 * runs until it is gone), else the one the live policy names already (a
 * reference to a pod gone is harmless, and the garbage collector drops it
 * itself), else none. */
static void policy_pod_owner(struct reconcile *r)
{
    const struct pod_obj *pod = r->env->pod(r->env->arg, r->key);
    const struct policy_obj *pol = r->env->policy(r->env->arg, r->key);
    const char *uid = "";
    if (pod && pod->owned && strcmp(pod->owner_uid, r->uid) == 0)
        uid = pod->uid;
    else if (pol && pol->owned && strcmp(pol->owner_uid, r->uid) == 0)
        uid = pol->pod_owner_uid;
    snprintf(r->policy_pod_uid, sizeof(r->policy_pod_uid), "%s", uid);
}

/* The children to write: the baseline, the sandbox's policy rendered from
 * sandbox (a narrowed copy when it is against its class), and the pod
 * unless none is wanted. Returns 0 or -ENOMEM. */
static int render_children(struct reconcile *r, json_t *sandbox, const json_t *class_spec, bool pod)
{
    struct render_opts ro = {r->env->runtime_class, class_spec, r->env->gate};
    r->baseline = render_baseline(r->ns);
    r->policy = render_policy(sandbox);
    policy_pod_owner(r);
    if (r->policy && render_policy_pod_owner(r->policy, r->name, r->policy_pod_uid) != 0)
        return -ENOMEM;
    r->gate = gate_choose(sandbox, class_spec, r->env->gate);
    if (pod)
        r->pod = render_pod(sandbox, &ro);
    if (!r->baseline || !r->policy || (pod && !r->pod) ||
        observed_hash(json_object_get(r->baseline, "spec"), r->baseline_hash) ||
        observed_hash(json_object_get(r->policy, "spec"), r->policy_hash))
        return -ENOMEM;
    return 0;
}

/*
 * Whatever blocks the Sandbox (an invalid spec, a class missing or against
 * it) fails closed: no pod, and its policy narrowed to allow nothing, for
 * what it allowed may be what is now denied and any pod given its label
 * would inherit it. The narrowed policy is rendered from the Sandbox's
 * identity alone, as its spec may not be readable. Returns 0 or -ENOMEM.
 */
static int fail_closed(struct reconcile *r)
{
    r->fail_closed = true;
    r->pod_unwanted = true;
    json_decref(r->baseline);
    json_decref(r->policy);
    r->baseline = r->policy = NULL;
    json_t *closed =
        json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:{s:b}}}", "metadata", "name", r->name, "namespace",
                  r->ns, "uid", r->uid, "spec", "image", "closed", "egress", "dns", 0);
    if (!closed)
        return -ENOMEM;
    int rc = render_children(r, closed, NULL, false);
    json_decref(closed);
    return rc;
}

int reconcile_init(struct reconcile *r, const struct reconcile_env *env, struct sbx_memory *mem,
                   const struct sandbox_obj *s)
{
    memset(r, 0, sizeof(*r));
    r->env = env;
    r->mem = mem;
    r->step = STEP_BASELINE;
    snprintf(r->key, sizeof(r->key), "%s/%s", s->ns, s->name);
    snprintf(r->ns, sizeof(r->ns), "%s", s->ns);
    snprintf(r->name, sizeof(r->name), "%s", s->name);
    snprintf(r->uid, sizeof(r->uid), "%s", s->uid);
    r->generation = s->generation;
    r->deleting = s->deleting;
    r->sbx = observed_sandbox_json(s);
    if (!r->sbx)
        return -ENOMEM;
    if (sandbox_validate(r->sbx, &r->verr) != 0) {
        r->invalid = true;
        log_warn("invalid sandbox", "{s:s, s:s, s:s}", "sandbox", r->key, "field", r->verr.field,
                 "message", r->verr.message);
        check_lifetime(r, true);
        return fail_closed(r);
    }
    /* Lifetime and pause hold whatever the class says (even when there is
     * no class to render with): the pod goes at the end either way. */
    check_lifetime(r, false);
    r->paused = json_is_true(json_object_get(json_object_get(r->sbx, "spec"), "paused"));
    r->pod_unwanted = r->paused || r->expired;

    const struct class_obj *cls = resolve_class(r);
    if (r->block_reason[0]) {
        check_lifetime(r, true);
        return fail_closed(r);
    }
    json_t *class_spec = NULL;
    if (cls) {
        json_error_t e;
        class_spec = json_loads(cls->spec, JSON_ALLOW_NUL, &e);
        if (!class_spec)
            return -ENOMEM;
    }
    /* What shapes the pod as written, before the class fills it in. */
    if (podrecord_inputs(json_object_get(r->sbx, "spec"), cls ? cls->name : NULL, class_spec,
                         env->runtime_class, r->inputs_hash) != 0) {
        json_decref(class_spec);
        return -ENOMEM;
    }
    struct class_verdict v;
    int rc = class_apply(r->sbx, class_spec, cls ? cls->name : NULL, &v);
    if (rc == -ENOMEM) {
        json_decref(class_spec);
        return rc;
    }
    if (rc != 0) {
        json_decref(class_spec);
        reconcile__block(r, v.reason, false, "%s", v.message);
        check_lifetime(r, true);
        return fail_closed(r);
    }
    const char *foreign = json_string_value(json_object_get(class_spec, "foreignPolicies"));
    r->foreign_report = foreign && strcmp(foreign, "Report") == 0;
    /* The class may have set the lifetime (its maximum). */
    check_lifetime(r, false);
    r->pod_unwanted = r->paused || r->expired;
    rc = render_children(r, r->sbx, class_spec, true);
    json_decref(class_spec);
    return rc;
}
