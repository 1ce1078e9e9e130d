// SPDX-License-Identifier: Apache-2.0
/* podrecord.h - the record of the pod kage made for a Sandbox, kept in the
 * Sandbox's status (status.podRecord), which no tenant may write: the pod's
 * uid, the digest of its kage-set fields as made (its form) and the digest
 * of the inputs that shaped it. The live pod is judged against this record,
 * not against what the running build of kage would render, so an upgrade
 * that renders pods differently keeps running sandboxes. Pure: no I/O. */
#ifndef KAGE_PODRECORD_H
#define KAGE_PODRECORD_H

#include <stdint.h>

#include <jansson.h>

#include "reconcile/observed.h"

/* The version of the digests a record holds: of podform_of with
 * observed_hash (the form) and of podrecord_inputs (the inputs). Any
 * change to either bumps it; a record of another version is judged as no
 * record, by rendering, and the release notes must say that pods made
 * before are replaced. */
#define PODRECORD_VERSION 1
#define PODRECORD_FIELD   "podRecord" /* its member in the Sandbox's status */
#define PODRECORD_UID_MAX 128

struct podrecord {
    char uid[PODRECORD_UID_MAX + 1];
    int64_t version;              /* digestVersion */
    char form[SPEC_HASH_LEN + 1]; /* formDigest ("" when not of this version's shape) */
    char inputs[SPEC_HASH_LEN + 1];
};

/*
 * Writes into out the digest of what shapes a Sandbox's pod, as the user
 * and the platform team wrote it, never as kage renders it: spec (the
 * Sandbox's, before its class fills it in) without egress, lifetime and
 * paused (they shape the policy, the deadline and whether a pod exists,
 * never the pod), the class's name and spec (NULL: no class) without
 * namespaceSelector, foreignPolicies, maxLifetimeSeconds and egress, and
 * the controller's default runtime class. Returns 0 or -ENOMEM.
 */
int podrecord_inputs(const json_t *spec, const char *class_name, const json_t *class_spec,
                     const char *runtime_class, char out[SPEC_HASH_LEN + 1]);

/*
 * Reads status.podRecord of status (may be NULL) into *out. Returns 0;
 * -ENOENT when there is none; -EINVAL when it is no object with a uid
 * and an integer digestVersion. The digests are read only when they have
 * this version's shape (else left "").
 */
int podrecord_read(const json_t *status, struct podrecord *out);

/* The record as the status holds it. New reference; NULL on ENOMEM. */
json_t *podrecord_json(const struct podrecord *rec);

enum podrecord_verdict {
    PODRECORD_KEEP,    /* the pod is as made, and nothing that shaped it changed */
    PODRECORD_ALTERED, /* its kage-set fields are not what was made: replace it */
    PODRECORD_RENDER,  /* no record of this pod in a known version, or what shapes it
                          changed: judge it by what kage renders now */
};

/*
 * The decision for live pod pod_uid, whose form digest is live_form, with
 * the Sandbox's current inputs digest, given its record (NULL: none).
 */
enum podrecord_verdict podrecord_judge(const struct podrecord *rec, const char *pod_uid,
                                       const char *live_form, const char *inputs);

/* The verdict's name, for logs. */
const char *podrecord_verdict_name(enum podrecord_verdict v);

#endif
