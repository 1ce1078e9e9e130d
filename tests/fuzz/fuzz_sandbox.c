// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_sandbox.c - a Sandbox object down the controller's whole pure path:
 * decode to the cached form and back, validate, apply no class and a fixed
 * class with limits and CIDR rules, render baseline, policy and pod, hash;
 * and the status from the same object read as a pod. Whatever validates
 * must render, and what renders must keep the class's promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "reconcile/cidr.h"
#include "reconcile/class.h"
#include "reconcile/observed.h"
#include "reconcile/quantity.h"
#include "reconcile/render.h"
#include "reconcile/sbxstatus.h"
#include "reconcile/validate.h"

#include "fuzz.h"

static const char class_text[] =
    "{\"runtimeClassName\":\"kata-fc\","
    "\"defaultResources\":{\"cpu\":\"500m\",\"memory\":\"512Mi\",\"ephemeralStorage\":\"1Gi\"},"
    "\"maxResources\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"ephemeralStorage\":\"20Gi\"},"
    "\"maxLifetimeSeconds\":86400,"
    "\"egress\":{\"allowedCIDRs\":[\"0.0.0.0/0\",\"2001:db8::/32\"],"
    "\"deniedCIDRs\":[\"10.0.0.0/8\",\"169.254.169.254/32\",\"2001:db8:dead::/48\"]},"
    "\"nodeSelector\":{\"kage.dev/runtime\":\"kata\"},"
    "\"tolerations\":[{\"key\":\"kage.dev/sandbox\",\"operator\":\"Exists\","
    "\"effect\":\"NoSchedule\"}],"
    "\"podLabels\":{\"team\":\"platform\",\"kage.dev/sandbox\":\"spoof\"},"
    "\"podAnnotations\":{\"cost-center\":\"ai\"}}";

static json_t *class_spec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    class_spec = json_loads(class_text, 0, NULL);
    FUZZ_CHECK(class_spec != NULL);
    return 0;
}

static void check_string(const char *s)
{
    FUZZ_CHECK(s != NULL && fuzz_utf8_valid(s, strlen(s)));
}

static struct cidr parsed(const char *s)
{
    struct cidr c;
    FUZZ_CHECK(s && cidr_parse(s, &c) == 0);
    return c;
}

/* A CIDR as rendered: parses, and is already in canonical form. */
static struct cidr canonical(json_t *v)
{
    const char *s = json_string_value(v);
    struct cidr c = parsed(s);
    char text[CIDR_STRLEN];
    FUZZ_CHECK(cidr_format(&c, text, sizeof(text)) == 0 && strcmp(text, s) == 0);
    return c;
}

/* Every ipBlock of the policy is one the API server takes; under the class,
 * also one the class allows, with every denied range carved out. */
static void check_policy(json_t *pol, const json_t *cls)
{
    json_t *allowed = json_object_get(json_object_get(cls, "egress"), "allowedCIDRs");
    json_t *denied = json_object_get(json_object_get(cls, "egress"), "deniedCIDRs");
    size_t i, j, k;
    json_t *rule, *to, *c;
    json_array_foreach(json_object_get(json_object_get(pol, "spec"), "egress"), i, rule)
    {
        json_array_foreach(json_object_get(rule, "to"), j, to)
        {
            json_t *block = json_object_get(to, "ipBlock");
            if (!block)
                continue;
            struct cidr net = canonical(json_object_get(block, "cidr"));
            json_t *except = json_object_get(block, "except");
            json_array_foreach(except, k, c)
            {
                struct cidr x = canonical(c);
                FUZZ_CHECK(cidr_strict_subset(&net, &x));
            }
            if (!cls)
                continue;
            bool inside = false;
            json_array_foreach(allowed, k, c)
            {
                struct cidr a = parsed(json_string_value(c));
                inside |= cidr_contains(&a, &net);
            }
            FUZZ_CHECK(inside);
            json_array_foreach(denied, k, c)
            {
                struct cidr d = parsed(json_string_value(c));
                FUZZ_CHECK(!cidr_contains(&d, &net));
                if (!cidr_strict_subset(&net, &d))
                    continue;
                bool listed = false;
                size_t m;
                json_t *x;
                json_array_foreach(except, m, x)
                {
                    struct cidr e = parsed(json_string_value(x));
                    listed |= e.prefix == d.prefix && memcmp(e.addr, d.addr, 16) == 0;
                }
                FUZZ_CHECK(listed);
            }
        }
    }
}

/* requests = limits, each a positive quantity, within the class's maxima. */
static void check_resources(json_t *pod, const json_t *cls)
{
    static const char *const keys[3][2] = {
        {"cpu", "cpu"}, {"memory", "memory"}, {"ephemeral-storage", "ephemeralStorage"}};
    json_t *ctr = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
    json_t *res = json_object_get(ctr, "resources");
    json_t *lim = json_object_get(res, "limits");
    FUZZ_CHECK(json_equal(lim, json_object_get(res, "requests")));
    for (int i = 0; i < 3; i++) {
        const char *q = json_string_value(json_object_get(lim, keys[i][0]));
        int64_t m;
        FUZZ_CHECK(q && quantity_parse_milli(q, &m) == 0 && m > 0);
        const char *mx =
            json_string_value(json_object_get(json_object_get(cls, "maxResources"), keys[i][1]));
        int cmp;
        if (mx)
            FUZZ_CHECK(quantity_cmp(q, mx, &cmp) == 0 && cmp <= 0);
    }
}

/* What a Sandbox became under a class: the verdict, or the policy and pod. */
struct rendered {
    int rc;
    struct class_verdict v;
    json_t *pol, *pod;
};

/* The Sandbox under a class (or none): what validated must render. */
static void apply_and_render(const json_t *sbx, const json_t *cls, struct rendered *out)
{
    json_t *s = json_deep_copy(sbx);
    FUZZ_CHECK(s != NULL);
    struct class_verdict *v = &out->v;
    out->pol = out->pod = NULL;
    int rc = out->rc = class_apply(s, cls, cls ? "small" : NULL, v);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(strcmp(v->reason, "PolicyViolation") == 0);
        FUZZ_CHECK(fuzz_str_ok(v->message, sizeof(v->message)) && v->message[0]);
        json_decref(s);
        return;
    }
    FUZZ_CHECK(v->reason[0] == '\0');
    if (cls) {
        json_t *ttl =
            json_object_get(json_object_get(json_object_get(s, "spec"), "lifetime"), "ttlSeconds");
        FUZZ_CHECK(json_is_integer(ttl) && json_integer_value(ttl) <= 86400);
    }

    const char *ns =
        json_string_value(json_object_get(json_object_get(s, "metadata"), "namespace"));
    json_t *base = render_baseline(ns ? ns : "default");
    FUZZ_CHECK(base != NULL);
    json_decref(base);

    json_t *pol = render_policy(s);
    FUZZ_CHECK(pol != NULL);
    check_policy(pol, cls);

    /* With the policy gate, so its choice (which reads the allow list
     * against the canary) and its container are fuzzed too. */
    static const struct gate_config gate = {
        .image = "localhost/kage-controller:fuzz", .canary_host = "10.96.0.1", .canary_port = 443};
    struct render_opts ro = {.runtime_class = "kata", .class_spec = cls, .gate = &gate};
    json_t *pod = render_pod(s, &ro), *again = render_pod(s, &ro);
    FUZZ_CHECK(pod != NULL && again != NULL);
    FUZZ_CHECK(json_equal(pod, again));
    const char *hash = render_pod_hash(pod);
    FUZZ_CHECK(hash && strlen(hash) == SPEC_HASH_LEN &&
               strspn(hash, "0123456789abcdef") == SPEC_HASH_LEN);
    check_resources(pod, cls);
    char h[SPEC_HASH_LEN + 1];
    FUZZ_CHECK(observed_hash(pod, h) == 0 && observed_hash(pol, h) == 0);

    json_decref(again);
    json_decref(s);
    out->pol = pol;
    out->pod = pod;
}

static void rendered_free(struct rendered *r)
{
    json_decref(r->pol);
    json_decref(r->pod);
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Sets about one in six object members under a (at any depth) to null and
 * deletes the same members from its copy b. */
static void null_some(json_t *a, json_t *b, uint64_t *rng)
{
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(a, tmp, k, v)
        {
            if (next_rand(rng) % 6 == 0) {
                FUZZ_CHECK(json_object_set_new(a, k, json_null()) == 0);
                FUZZ_CHECK(json_object_del(b, k) == 0);
            } else {
                null_some(v, json_object_get(b, k), rng);
            }
        }
    } else if (json_is_array(a)) {
        for (size_t i = 0; i < json_array_size(a); i++)
            null_some(json_array_get(a, i), json_array_get(b, i), rng);
    }
}

/* JSON null counts as absent (validate.h): a spec with some members null
 * and the same spec without them must validate, apply and render alike. */
static void nulls_as_absent(const json_t *sbx, const uint8_t *data, size_t size)
{
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < size; i++)
        rng = (rng ^ data[i]) * 0x100000001b3u;
    rng |= 1;
    json_t *a = json_deep_copy(sbx), *b = json_deep_copy(sbx);
    FUZZ_CHECK(a && b);
    null_some(json_object_get(a, "spec"), json_object_get(b, "spec"), &rng);

    struct validation_error ea, eb;
    int va = sandbox_validate(a, &ea), vb = sandbox_validate(b, &eb);
    FUZZ_CHECK(va == vb);
    FUZZ_CHECK(strcmp(ea.field, eb.field) == 0 && strcmp(ea.message, eb.message) == 0);
    const json_t *classes[2] = {NULL, class_spec};
    for (int i = 0; va == 0 && i < 2; i++) {
        struct rendered ra, rb;
        apply_and_render(a, classes[i], &ra);
        apply_and_render(b, classes[i], &rb);
        FUZZ_CHECK(ra.rc == rb.rc && strcmp(ra.v.message, rb.v.message) == 0);
        FUZZ_CHECK(json_equal(ra.pol, rb.pol) || (!ra.pol && !rb.pol));
        FUZZ_CHECK(json_equal(ra.pod, rb.pod) || (!ra.pod && !rb.pod));
        rendered_free(&ra);
        rendered_free(&rb);
    }
    json_decref(a);
    json_decref(b);
}

/* The status for one set of facts: built, and stable when rebuilt later
 * from itself (no condition flaps its lastTransitionTime). */
static void check_status(const json_t *old, int64_t gen, const char *name,
                         const struct status_facts *f)
{
    json_t *st = sbxstatus_render(old, gen, name, f, "2026-11-28T10:00:00Z");
    FUZZ_CHECK(st != NULL);
    check_string(json_string_value(json_object_get(st, "phase")));
    FUZZ_CHECK(json_array_size(json_object_get(st, "conditions")) >= 2);
    json_t *later = sbxstatus_render(st, gen, name, f, "2026-11-28T11:00:00Z");
    FUZZ_CHECK(later != NULL && sbxstatus_equal(st, later));
    char *text = json_dumps(st, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(later);
    json_decref(st);
}

static void statuses(json_t *obj, const json_t *sbx, const struct sandbox_obj *so, int invalid,
                     const struct validation_error *verr)
{
    char err[256] = "";
    struct pod_obj *pod = observed_decode_pod(obj, err, sizeof(err));
    if (!pod)
        FUZZ_CHECK(err[0] != '\0');
    json_t *spec = json_object_get(sbx, "spec");
    const json_t *old = json_object_get(sbx, "status");
    struct status_facts f = {
        .invalid = invalid ? verr : NULL,
        .policies_ready = true,
        .egress_rules =
            (unsigned)json_array_size(json_object_get(json_object_get(spec, "egress"), "allow")),
        .pod = pod,
        .memory_limit = "1Gi",
        .image = json_string_value(json_object_get(spec, "image")),
        .before_script = json_string_length(json_object_get(spec, "beforeScript")) > 0,
        .expires_at = "2026-11-29T10:00:00Z",
    };
    check_status(old, so->generation, so->name, &f);
    f.pod_replacing = true;
    check_status(old, so->generation, so->name, &f);
    f.pod_replacing = false;
    f.block_reason = "QuotaExceeded";
    f.block_message = pod ? pod->message : NULL;
    f.block_is_policy = true;
    check_status(old, so->generation, so->name, &f);
    f.block_reason = NULL;
    f.paused = true;
    check_status(old, so->generation, so->name, &f);
    f.paused = false;
    f.expired = true;
    check_status(old, so->generation, so->name, &f);
    f.expired = false;
    f.policies_ready = false;
    f.pod = NULL;
    check_status(old, so->generation, so->name, &f);
    free(pod);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = json_loadb((const char *)data, size, 0, NULL);
    if (!obj)
        return 0;

    char err[256] = "";
    /* As a reconcile has it: whole, whatever its size. */
    struct sandbox_obj *so = observed_decode_sandbox_whole(obj, err, sizeof(err));
    if (!so) {
        FUZZ_CHECK(err[0] != '\0');
        json_decref(obj);
        return 0;
    }
    /* As the cache keeps it: the same sizes and digests, whole when small. */
    struct sandbox_obj *cached = observed_decode_sandbox(obj, err, sizeof(err));
    FUZZ_CHECK(cached != NULL);
    FUZZ_CHECK(cached->spec_len == so->spec_len && cached->status_len == so->status_len);
    FUZZ_CHECK(strcmp(cached->spec_digest, so->spec_digest) == 0);
    FUZZ_CHECK(strcmp(cached->status_digest, so->status_digest) == 0);
    FUZZ_CHECK(strcmp(cached->phase, so->phase) == 0);
    FUZZ_CHECK(cached->whole == (so->spec_len + so->status_len <= SANDBOX_INLINE_MAX));
    FUZZ_CHECK(!cached->whole || strcmp(cached->spec, so->spec) == 0);
    FUZZ_CHECK(observed_sandbox_status_is(cached, so->status));
    free(cached);
    json_t *sbx = observed_sandbox_json(so);
    FUZZ_CHECK(sbx != NULL);
    json_t *md = json_object_get(sbx, "metadata");
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(md, "name")), so->name) == 0);
    json_t *spec = json_object_get(obj, "spec");
    FUZZ_CHECK(json_equal(json_object_get(sbx, "spec"), spec ? spec : json_null()));

    struct validation_error verr;
    int invalid = sandbox_validate(sbx, &verr);
    FUZZ_CHECK(invalid == 0 || invalid == -1);
    FUZZ_CHECK(fuzz_str_ok(verr.field, sizeof(verr.field)));
    FUZZ_CHECK(fuzz_str_ok(verr.message, sizeof(verr.message)));
    FUZZ_CHECK(invalid ? verr.message[0] != '\0' : verr.message[0] == '\0');
    if (!invalid) {
        struct rendered r;
        apply_and_render(sbx, NULL, &r);
        rendered_free(&r);
        apply_and_render(sbx, class_spec, &r);
        rendered_free(&r);
    }
    nulls_as_absent(sbx, data, size);
    statuses(obj, sbx, so, invalid, &verr);

    json_decref(sbx);
    free(so);
    json_decref(obj);
    return 0;
}
