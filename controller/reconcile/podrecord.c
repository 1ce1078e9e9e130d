// SPDX-License-Identifier: Apache-2.0
/*
 * podrecord.c - what kage records of the pod it made, and how a live pod is
 * judged by that record: as made and shaped by the same inputs, it stays,
 * whatever the running kage would render now; changed, it goes.
 */
#include "reconcile/podrecord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Members that never shape the pod, in every version of the digests. */
static const char *const spec_unshaping[] = {"egress", "lifetime", "paused", NULL};
static const char *const class_unshaping[] = {"namespaceSelector", "foreignPolicies",
                                              "maxLifetimeSeconds", "egress", NULL};

/* A shallow copy of obj without the members named in cut; an object
 * whatever obj is. NULL on ENOMEM. */
static json_t *without(const json_t *obj, const char *const *cut)
{
    json_t *out = json_is_object(obj) ? json_copy((json_t *)obj) : json_object();
    if (!out)
        return NULL;
    for (; *cut; cut++)
        json_object_del(out, *cut);
    return out;
}

int podrecord_inputs(const json_t *spec, const char *class_name, const json_t *class_spec,
                     const char *runtime_class, char out[SPEC_HASH_LEN + 1])
{
    json_t *s = without(spec, spec_unshaping);
    json_t *c = class_spec ? without(class_spec, class_unshaping) : json_null();
    if (!s || !c) {
        json_decref(s);
        json_decref(c);
        return -ENOMEM;
    }
    /* json_pack releases s and c when it fails. */
    json_t *in = json_pack("{s:o, s:s?, s:o, s:s?}", "spec", s, "className", class_name, "class", c,
                           "runtimeClass", runtime_class);
    int rc = in ? observed_hash(in, out) : -ENOMEM;
    json_decref(in);
    return rc;
}

/* Copies a digest of this version's shape (SPEC_HASH_LEN lowercase hex). */
static void digest_of(const json_t *rec, const char *k, char out[SPEC_HASH_LEN + 1])
{
    const char *s = json_string_value(json_object_get(rec, k));
    out[0] = '\0';
    if (!s || strlen(s) != SPEC_HASH_LEN || strspn(s, "0123456789abcdef") != SPEC_HASH_LEN)
        return;
    memcpy(out, s, SPEC_HASH_LEN + 1);
}

int podrecord_read(const json_t *status, struct podrecord *out)
{
    memset(out, 0, sizeof(*out));
    json_t *rec = json_object_get(status, PODRECORD_FIELD);
    if (!rec || json_is_null(rec))
        return -ENOENT;
    const char *uid = json_string_value(json_object_get(rec, "uid"));
    json_t *version = json_object_get(rec, "digestVersion");
    if (!json_is_object(rec) || !uid || !uid[0] || strlen(uid) > PODRECORD_UID_MAX ||
        !json_is_integer(version))
        return -EINVAL;
    memcpy(out->uid, uid, strlen(uid) + 1);
    out->version = json_integer_value(version);
    digest_of(rec, "formDigest", out->form);
    digest_of(rec, "inputsDigest", out->inputs);
    return 0;
}

json_t *podrecord_json(const struct podrecord *rec)
{
    return json_pack("{s:s, s:I, s:s, s:s}", "uid", rec->uid, "digestVersion",
                     (json_int_t)rec->version, "formDigest", rec->form, "inputsDigest",
                     rec->inputs);
}

enum podrecord_verdict podrecord_judge(const struct podrecord *rec, const char *pod_uid,
                                       const char *live_form, const char *inputs)
{
    /* A record of another pod says nothing of this one: a pod made in the
     * old one's place by someone else is judged by what kage renders. */
    if (!rec || rec->version != PODRECORD_VERSION || !rec->form[0] || !rec->inputs[0] ||
        strcmp(rec->uid, pod_uid) != 0)
        return PODRECORD_RENDER;
    if (strcmp(rec->form, live_form) != 0)
        return PODRECORD_ALTERED;
    return strcmp(rec->inputs, inputs) == 0 ? PODRECORD_KEEP : PODRECORD_RENDER;
}

const char *podrecord_verdict_name(enum podrecord_verdict v)
{
    switch (v) {
    case PODRECORD_KEEP:
        return "keep";
    case PODRECORD_ALTERED:
        return "altered";
    case PODRECORD_RENDER:
        return "render";
    }
    return "unknown";
}
