// SPDX-License-Identifier: Apache-2.0
/*
 * act.c - the reconcile's small verbs, shared by its steps: move to a step,
 * record a blocker, an Event or a counter, ask for a request, and read an
 * API answer (refusals through the table in refusal.c).
 */
#include "reconcile/reconcile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reconcile/refusal.h"
#include "utf8.h"

static const char *const step_names[] = {"baseline", "policy", "pod", "status", "done"};

void reconcile__go(struct reconcile *r, enum reconcile_step next, const char *why)
{
    log_debug("reconcile step", "{s:s, s:s, s:s, s:s}", "sandbox", r->key, "from",
              step_names[r->step], "to", step_names[next], "because", why);
    r->step = next;
}

void reconcile__block(struct reconcile *r, const char *reason, bool is_policy, const char *fmt, ...)
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

void reconcile__event(struct reconcile *r, bool warning, const char *reason, const char *action,
                      const char *note)
{
    r->env->event(r->env->arg, r->mem, r->ns, r->name, r->uid, warning, reason, action, note);
}

void reconcile__count(struct reconcile *r, enum reconcile_counter what)
{
    r->env->count(r->env->arg, what);
}

uint64_t reconcile__now_ms(struct reconcile *r)
{
    return r->env->now_ms(r->env->arg);
}

void reconcile_free(struct reconcile *r)
{
    json_decref(r->sbx);
    json_decref(r->baseline);
    json_decref(r->policy);
    json_decref(r->pod);
    json_decref(r->body);
    r->sbx = r->baseline = r->policy = r->pod = r->body = NULL;
}

/* ---- requests and answers -------------------------------------------- */

bool reconcile__send(struct reconcile *r, struct reconcile_action *act, enum reconcile_wait w,
                     enum reconcile_verb verb, enum reconcile_resource res, const char *name,
                     json_t *body)
{
    act->kind = ACTION_SEND;
    act->req = (struct reconcile_request){verb, res, r->ns, name, NULL, body};
    r->wait = w;
    return true;
}

bool reconcile__failed(const struct reconcile_answer *a)
{
    return a->code < 200 || a->code > 299;
}

bool reconcile__not_found(const struct reconcile_answer *a)
{
    return a->code == 404;
}

bool reconcile__already_exists(const struct reconcile_answer *a)
{
    return a->code == 409 && strcmp(a->reason, "AlreadyExists") == 0;
}

/* The delay before looking again at a sandbox blocked by something that
 * clears by itself: first ms, doubling per consecutive blocked run up to
 * 5 min. */
static uint64_t blocked_delay(struct reconcile *r, unsigned ms)
{
    unsigned n = r->mem ? r->mem->blocked_runs++ : 0;
    uint64_t d = (uint64_t)ms << (n < 10 ? n : 10);
    return d > 300000 ? 300000 : d;
}

/* Takes an API refusal of a write: the status reason and when to retry
 * (see refusal.h). A request never sent is retried, with nothing to say. */
void reconcile__refused(struct reconcile *r, const char *what, const struct reconcile_answer *a,
                        bool is_policy)
{
    if (a->code == -1) {
        r->outcome = outcome_retry();
        return;
    }
    const struct refusal *f = refusal_classify(a->code, a->message, is_policy);
    if (f->retry == REFUSAL_SILENT) {
        r->ns_terminating = true;
        return;
    }
    if (f->lead)
        reconcile__block(r, f->reason, is_policy, "%s%s: %s", what, f->lead,
                         a->message[0] ? a->message : a->reason);
    else
        reconcile__block(r, f->reason, is_policy, "%s", a->message);
    r->outcome =
        f->retry == REFUSAL_SOON ? outcome_after(blocked_delay(r, f->base_ms)) : outcome_retry();
    if (f->quota)
        r->env->quota_waiting(r->env->arg, r->ns);
    reconcile__count(r, COUNT_REFUSAL);
    log_warn("write refused", "{s:s, s:s, s:I, s:s, s:s}", "sandbox", r->key, "object", what,
             "code", (json_int_t)a->code, "reason", a->reason, "message", a->message);
}

const char *reconcile__uid_of(json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
}

bool reconcile__owned_by(json_t *obj, const char *uid)
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

/* Whether obj carries label name=value. */
bool reconcile__label_is(json_t *obj, const char *name, const char *value)
{
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), name));
    return v && strcmp(v, value) == 0;
}

/* Makes a replacing PUT apply only to the object with that uid: one deleted
 * and made again by someone else meanwhile is refused, not overwritten. */
void reconcile__pin_uid(json_t *body, const char *uid)
{
    if (uid)
        json_object_set_new(json_object_get(body, "metadata"), "uid", json_string(uid));
}

/* Whether obj's spec digests to want_hash. */
bool reconcile__as_rendered_spec(json_t *obj, const char *want_hash)
{
    char hash[SPEC_HASH_LEN + 1];
    return observed_hash(json_object_get(obj, "spec"), hash) == 0 && strcmp(hash, want_hash) == 0;
}

/* Asks to delete res/name, only the object with that uid (a precondition:
 * never a newer one of the same name). False when the request cannot be
 * built (the reconcile is then retried). */
bool reconcile__delete_exactly(struct reconcile *r, struct reconcile_action *act,
                               enum reconcile_wait w, enum reconcile_resource res, const char *name,
                               const char *uid)
{
    json_decref(r->body);
    r->body = json_pack("{s:s, s:s, s:{s:s}, s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
                        "preconditions", "uid", uid, "propagationPolicy", "Background");
    if (!r->body) {
        r->outcome = outcome_retry();
        return false;
    }
    reconcile__count(r, COUNT_DELETE);
    return reconcile__send(r, act, w, VERB_DELETE, res, name, r->body);
}
