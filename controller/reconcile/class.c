// SPDX-License-Identifier: Apache-2.0
/*
 * class.c - applies a SandboxClass to a Sandbox before rendering: fills
 * defaults, refuses what exceeds the class (PolicyViolation, naming the
 * field and the limit) and carves denied ranges out of every allow rule.
 */
#include "reconcile/class.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/cidr.h"
#include "reconcile/quantity.h"
#include "reconcile/render.h"

void *class_decode(json_t *obj, char *err, size_t errlen)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *spec = json_object_get(obj, "spec");
    const char *dflt = json_string_value(
        json_object_get(json_object_get(md, "annotations"), CLASS_DEFAULT_ANNOTATION));
    if (!name) {
        snprintf(err, errlen, "SandboxClass without metadata.name");
        return NULL;
    }
    char *text =
        json_is_object(spec) ? json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t nl = strlen(name) + 1, sl = strlen(text) + 1;
    struct class_obj *c = malloc(sizeof(*c) + nl + sl);
    if (!c) {
        free(text);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(c->data, name, nl);
    memcpy(c->data + nl, text, sl);
    free(text);
    c->name = c->data;
    c->spec = c->data + nl;
    c->is_default = dflt && strcmp(dflt, "true") == 0;
    return c;
}

static int violation(struct class_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int violation(struct class_verdict *v, const char *fmt, ...)
{
    va_list ap;
    snprintf(v->reason, sizeof(v->reason), "PolicyViolation");
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* A quantity field (string or integer) as text, or NULL. */
static const char *qtext(json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return json_string_value(v);
}

static int apply_resources(json_t *spec, const json_t *cls, const char *cname,
                           struct class_verdict *v)
{
    static const struct {
        const char *key;
        const char *builtin;
    } res[] = {{"cpu", DEFAULT_CPU},
               {"memory", DEFAULT_MEMORY},
               {"ephemeralStorage", DEFAULT_EPHEMERAL_STORAGE}};
    json_t *r = json_object_get(spec, "resources");
    if (!json_is_object(r)) { /* absent, or null, which counts as absent */
        r = json_object();
        if (!r || json_object_set_new(spec, "resources", r))
            return -ENOMEM;
    }
    json_t *defaults = json_object_get(cls, "defaultResources");
    json_t *max = json_object_get(cls, "maxResources");
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        char b1[32], b2[32];
        const char *mx = qtext(json_object_get(max, res[i].key), b1, sizeof(b1));
        const char *have = qtext(json_object_get(r, res[i].key), b2, sizeof(b2));
        int64_t have_m, max_m;
        if (!have) {
            /* The class's default, else the built-in one (never above the maximum). */
            char b3[32];
            const char *d = qtext(json_object_get(defaults, res[i].key), b3, sizeof(b3));
            if (!d) {
                d = res[i].builtin;
                int cmp;
                if (mx && quantity_cmp(d, mx, &cmp) == 0 && cmp > 0)
                    d = mx;
            }
            if (json_object_set_new(r, res[i].key, json_string(d)))
                return -ENOMEM;
            have = json_string_value(json_object_get(r, res[i].key));
        }
        if (mx && quantity_parse_milli(have, &have_m) == 0 &&
            quantity_parse_milli(mx, &max_m) == 0 && have_m > max_m)
            return violation(v, "spec.resources.%s: %s exceeds the maximum %s of SandboxClass %s",
                             res[i].key, have, mx, cname);
    }
    return 0;
}

static int apply_lifetime(json_t *spec, const json_t *cls, const char *cname,
                          struct class_verdict *v)
{
    json_t *max = json_object_get(cls, "maxLifetimeSeconds");
    if (!json_is_integer(max))
        return 0;
    json_t *life = json_object_get(spec, "lifetime");
    json_t *ttl = json_object_get(life, "ttlSeconds");
    if (json_is_integer(ttl)) {
        if (json_integer_value(ttl) > json_integer_value(max))
            return violation(v,
                             "spec.lifetime.ttlSeconds: %" JSON_INTEGER_FORMAT
                             " exceeds the maximum lifetime of %" JSON_INTEGER_FORMAT
                             " seconds of SandboxClass %s",
                             json_integer_value(ttl), json_integer_value(max), cname);
        return 0;
    }
    /* No lifetime asked: the class's maximum is the lifetime. */
    if (!json_is_object(life)) {
        life = json_object();
        if (!life || json_object_set_new(spec, "lifetime", life))
            return -ENOMEM;
    }
    return json_object_set(life, "ttlSeconds", max) ? -ENOMEM : 0;
}

/* The class's pull policy holds for its sandboxes: a Sandbox without one
 * takes it; one that asks for another is refused, except Always, which
 * only adds the registry's check. */
static int apply_pull_policy(json_t *spec, const json_t *cls, const char *cname,
                             struct class_verdict *v)
{
    const char *want = json_string_value(json_object_get(cls, "imagePullPolicy"));
    json_t *asked = json_object_get(spec, "imagePullPolicy");
    if (!want)
        return 0;
    if (strcmp(want, "Always") != 0 && strcmp(want, "IfNotPresent") != 0 &&
        strcmp(want, "Never") != 0)
        /* The CRD's enum refuses these; a class past it gets no pod. */
        return violation(v,
                         "spec.imagePullPolicy of SandboxClass %s must be Always, IfNotPresent or "
                         "Never; no sandbox of this class runs until it is fixed",
                         cname);
    if (!json_is_string(asked))
        return json_object_set_new(spec, "imagePullPolicy", json_string(want)) ? -ENOMEM : 0;
    const char *a = json_string_value(asked);
    if (strcmp(a, want) == 0 || strcmp(a, "Always") == 0)
        return 0;
    return violation(v,
                     "spec.imagePullPolicy: %s is not allowed by SandboxClass %s, which pulls "
                     "images with %s%s",
                     a, cname, want, strcmp(want, "Always") == 0 ? "" : " (or Always)");
}

/* Whether the list (of CIDR strings) already has c, canonically. */
static bool has_cidr(json_t *list, const struct cidr *c)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        struct cidr x;
        if (cidr_parse(json_string_value(e), &x) == 0 && x.family == c->family &&
            x.prefix == c->prefix && memcmp(x.addr, c->addr, sizeof(x.addr)) == 0)
            return true;
    }
    return false;
}

/* One denied block against allow entry i (block a, written as text):
 * a violation when a lies inside it, else it joins the entry's except list
 * when it lies inside a. denied_text is the class's entry; nat64 says that
 * no is its NAT64 form. Returns 0, -1 (v filled) or -ENOMEM. */
static int carve(json_t *entry, size_t i, const char *text, const struct cidr *a,
                 const struct cidr *no, const char *denied_text, bool nat64, const char *cname,
                 struct class_verdict *v)
{
    if (no->family != a->family)
        return 0;
    if (cidr_contains(no, a)) {
        char canon[CIDR_STRLEN];
        cidr_format(no, canon, sizeof(canon));
        return violation(v,
                         "spec.egress.allow[%zu].cidr: %s lies inside %s%s, which "
                         "SandboxClass %s denies",
                         i, text, nat64 ? canon : denied_text,
                         nat64 ? " (the NAT64 form of a denied IPv4 range)" : "", cname);
    }
    if (!cidr_strict_subset(a, no))
        return 0; /* disjoint */
    json_t *except = json_object_get(entry, "except");
    if (!json_is_array(except)) {
        except = json_array();
        if (!except || json_object_set_new(entry, "except", except))
            return -ENOMEM;
    }
    char canon[CIDR_STRLEN];
    if (!has_cidr(except, no) && (cidr_format(no, canon, sizeof(canon)) != 0 ||
                                  json_array_append_new(except, json_string(canon))))
        return -ENOMEM;
    return 0;
}

static int apply_egress(json_t *spec, const json_t *cls, const char *cname, struct class_verdict *v)
{
    json_t *cegress = json_object_get(cls, "egress");
    json_t *allowed = json_object_get(cegress, "allowedCIDRs");
    json_t *denied = json_object_get(cegress, "deniedCIDRs");
    size_t i, j;
    json_t *entry, *d;

    json_array_foreach(json_object_get(json_object_get(spec, "egress"), "allow"), i, entry)
    {
        const char *text = json_string_value(json_object_get(entry, "cidr"));
        struct cidr a;
        if (!text || cidr_parse(text, &a) != 0)
            continue; /* the validator refuses these first */
        if (json_is_array(allowed)) {
            bool inside = false;
            json_t *c;
            json_array_foreach(allowed, j, c)
            {
                struct cidr ceil;
                if (cidr_parse(json_string_value(c), &ceil) == 0 && cidr_contains(&ceil, &a))
                    inside = true;
            }
            if (!inside) {
                char *list = json_dumps(allowed, JSON_COMPACT);
                int rc = violation(v,
                                   "spec.egress.allow[%zu].cidr: %s is outside the allowed CIDRs "
                                   "%s of SandboxClass %s",
                                   i, text, list ? list : "", cname);
                free(list);
                return rc;
            }
        }
        json_array_foreach(denied, j, d)
        {
            struct cidr no, no6;
            if (cidr_parse(json_string_value(d), &no) != 0)
                /* The CRD refuses these; a class that got one past it
                 * (an IPv4-mapped block, an older CRD) denies all. */
                return violation(v,
                                 "spec.egress.deniedCIDRs[%zu] of SandboxClass %s is not a CIDR "
                                 "kage reads (an IPv4-mapped or malformed block); no egress is "
                                 "allowed under it until the class is fixed",
                                 j, cname);
            int rc = carve(entry, i, text, &a, &no, json_string_value(d), false, cname, v);
            /* An IPv4 range also denies its NAT64 form (64:ff9b::/96, RFC
             * 6052): a gateway turns IPv6 traffic to it into IPv4 traffic
             * to the range. */
            if (!rc && cidr_nat64(&no, &no6) == 0)
                rc = carve(entry, i, text, &a, &no6, json_string_value(d), true, cname, v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int class_apply(json_t *sandbox, const json_t *class_spec, const char *class_name,
                struct class_verdict *v)
{
    json_t *spec = json_object_get(sandbox, "spec");
    int rc;
    v->reason[0] = '\0';
    v->message[0] = '\0';
    if (!json_is_object(spec))
        return 0;
    if (!class_name)
        class_name = "(none)";
    rc = apply_resources(spec, class_spec, class_name, v);
    if (!rc)
        rc = apply_lifetime(spec, class_spec, class_name, v);
    if (!rc)
        rc = apply_pull_policy(spec, class_spec, class_name, v);
    if (!rc)
        rc = apply_egress(spec, class_spec, class_name, v);
    return rc;
}
