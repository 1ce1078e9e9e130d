// SPDX-License-Identifier: Apache-2.0
/* observed.h - the compact cached forms of the children kage watches (pods
 * and network policies): only the fields the reconciler reads, each decoded
 * object one allocation. */
#ifndef KAGE_OBSERVED_H
#define KAGE_OBSERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LABEL_SANDBOX    "kage.dev/sandbox"
#define LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define ANNOT_SPEC_HASH  "kage.dev/spec-hash"
#define CONTAINER_NAME   "sandbox"
#define BASELINE_POLICY  "kage-baseline"
#define SPEC_HASH_LEN    16   /* hex characters */
#define SELECTOR_MAX     8192 /* longest podSelector kept, in bytes */

enum pod_phase {
    POD_PENDING,
    POD_RUNNING,
    POD_SUCCEEDED,
    POD_FAILED,
    POD_UNKNOWN,
};

/* A pod, as far as the reconciler cares. Strings are never NULL ("" when
 * absent) and point into the same allocation. */
struct pod_obj {
    const char *uid;
    const char *owner_uid; /* the controller ownerReference's uid, if a Sandbox */
    const char *sandbox;   /* label kage.dev/sandbox */
    const char *spec_hash; /* annotation kage.dev/spec-hash */
    const char *image;     /* of the sandbox container */
    const char *pod_ip;
    const char *node_name;
    const char *start_time;
    const char *reason;  /* status.reason (Evicted...) or PodScheduled=False's reason */
    const char *message; /* its message */
    /* The sandbox container's state. */
    const char *waiting_reason; /* ImagePullBackOff, CreateContainerConfigError... */
    const char *waiting_message;
    const char *term_reason; /* OOMKilled, Error, Completed */
    const char *term_message;
    /* The policy gate's (init container kage-gate), "" without one. */
    const char *gate_image;
    const char *gate_waiting_reason; /* ImagePullBackOff... */
    const char *gate_waiting_message;
    const char *gate_term_message; /* why it failed, as it wrote it */
    int term_exit_code;
    int gate_exit_code;
    bool terminated;
    bool gate_terminated;
    bool deleting;  /* deletionTimestamp set */
    bool ready;     /* condition Ready=True */
    bool was_ready; /* terminated after being Ready: the Ready condition
                       changed after the container started */
    bool owned;     /* the controller owner is a kage.dev Sandbox */
    enum pod_phase phase;
    /* Digest of the fields kage sets (observed_pod_form_hash): compared with the
     * rendered pod's, so an edit or a forged pod shows. "" when the pod
     * could not be digested. */
    char live_hash[SPEC_HASH_LEN + 1];
    char data[];
};

/* A network policy: who owns it and a digest of its spec, so an edit made
 * by anyone else shows as a different hash. */
struct policy_obj {
    const char *uid;
    const char *owner_uid;
    const char *pod_owner_uid; /* of an ownerReference to a v1 Pod (the sandbox's pod,
                                  which the policy outlives), "" when none */
    const char *sandbox;
    const char *pod_selector; /* spec.podSelector as canonical JSON ("{}" when absent);
                                 "" when longer than SELECTOR_MAX */
    bool owned;               /* controller owner is a kage.dev Sandbox */
    bool managed;             /* label app.kubernetes.io/managed-by=kage */
    bool deleting;
    int egress_rules; /* rules in spec.egress */
    char spec_hash[SPEC_HASH_LEN + 1];
    char data[];
};

/* Hex characters of the digest of a Sandbox's spec or status text. */
#define SANDBOX_DIGEST_LEN 32
/* A Sandbox whose spec and status texts together are no longer than this
 * keeps them in the cache; a larger one keeps only their digests, and a
 * reconcile reads it whole from the API server. So a cached Sandbox costs
 * a bounded few KiB whatever its spec (the API server admits 1.5 MiB). */
#define SANDBOX_INLINE_MAX 3072
/* The largest page of Sandboxes a LIST takes. A page is held whole, as
 * text and then parsed, before its objects are compacted, so pages are
 * asked for in fewer objects until they fit. 8 MiB holds 3 of the largest:
 * a start over 200 of them syncs in about 8 s, against 29 s in pages of
 * one at 4 MiB, for the same peak RSS. */
#define SANDBOX_PAGE_BYTES (8u << 20)

/* A Sandbox as cached: identity, the digests and sizes of its spec and
 * status as canonical JSON text (compact, sorted keys), and those texts
 * themselves when small enough (whole), parsed again when it is
 * reconciled. */
struct sandbox_obj {
    const char *ns;
    const char *name;
    const char *uid;
    const char *created; /* metadata.creationTimestamp */
    const char *spec;    /* JSON text ("null" when absent); NULL when not whole */
    const char *status;  /* JSON text ("{}" when absent); NULL when not whole */
    const char *phase;   /* status.phase (at most 15 bytes), "" when absent */
    size_t spec_len;     /* of the texts, kept or not */
    size_t status_len;
    char spec_digest[SANDBOX_DIGEST_LEN + 1];
    char status_digest[SANDBOX_DIGEST_LEN + 1];
    int64_t generation;
    bool deleting;
    bool whole; /* spec and status are kept */
    char data[];
};

/* Whether two decoded pods (or policies) read the same to the reconciler:
 * an update that changes nothing it reads need not wake it. */
bool observed_pod_same(const struct pod_obj *a, const struct pod_obj *b);
bool observed_policy_same(const struct policy_obj *a, const struct policy_obj *b);

/* Informer decode functions (see informer_ops); the result is freed with free(). */
/* A Sandbox as the cache keeps it: whole only up to SANDBOX_INLINE_MAX. */
void *observed_decode_sandbox(json_t *obj, char *err, size_t errlen);
/* A Sandbox whole, whatever its size: one read from the API server to
 * reconcile it. Freed with free(); NULL and err as decode. */
struct sandbox_obj *observed_decode_sandbox_whole(json_t *obj, char *err, size_t errlen);

/* Whether text (canonical JSON, such as the last status kage wrote) is
 * the status of s, by size and digest. */
bool observed_sandbox_status_is(const struct sandbox_obj *s, const char *text);
void *observed_decode_pod(json_t *obj, char *err, size_t errlen);
/* Member names observed_decode_pod never reads at any depth (informer_ops
 * strip): cut from pod events before they are parsed. */
extern const char *const observed_pod_unread[];
void *observed_decode_policy(json_t *obj, char *err, size_t errlen);

/*
 * Rebuilds a Sandbox object ({metadata: {name, namespace, uid, generation,
 * creationTimestamp}, spec, status}) from its whole form. New reference;
 * NULL on ENOMEM, when the texts do not parse, or when s is not whole.
 */
json_t *observed_sandbox_json(const struct sandbox_obj *s);

/*
 * Writes the first SPEC_HASH_LEN hex characters of the SHA-256 of v's
 * canonical JSON (sorted keys, compact) into out (SPEC_HASH_LEN + 1 bytes).
 * Returns 0, or -ENOMEM.
 */
int observed_hash(json_t *v, char out[SPEC_HASH_LEN + 1]);

/*
 * Writes the digest of pod's canonical form (podform_of: the fields kage
 * sets, as the API server stores them) into out, as observed_hash does.
 * The same for a pod read back as for the one rendered, so drift shows as
 * a different digest. Returns 0, or -ENOMEM.
 */
int observed_pod_form_hash(const json_t *pod, char out[SPEC_HASH_LEN + 1]);

#endif
