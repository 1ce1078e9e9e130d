// SPDX-License-Identifier: Apache-2.0
/*
 * observed.c - decodes the pods and network policies kage watches into
 * compact structs: the fields the reconciler reads, packed with their
 * strings into one allocation, so a cached pod costs a few hundred bytes.
 */
#include "reconcile/observed.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "reconcile/gate.h"
#include "reconcile/podform.h"
#include "utf8.h"

#define PACK_MAX    24
#define SHORT_MAX   253  /* names, IPs, reasons */
#define MESSAGE_MAX 1024 /* messages kept for status */

/* Collects strings to copy behind a struct, then makes one allocation. */
struct packer {
    size_t off[PACK_MAX]; /* offset of the const char * field in the struct */
    const char *src[PACK_MAX];
    size_t len[PACK_MAX];
    int n;
    size_t total;
};

static void pack(struct packer *p, size_t off, const char *s, size_t max)
{
    if (!s)
        s = "";
    p->off[p->n] = off;
    p->src[p->n] = s;
    p->len[p->n] = utf8_cut(s, max);
    p->total += p->len[p->n] + 1;
    p->n++;
}

/* Allocates head + the strings, zeroes the head, points each field at its
 * copy. NULL on ENOMEM. */
static char *pack_alloc(struct packer *p, size_t head)
{
    char *mem = malloc(head + p->total);
    if (!mem)
        return NULL;
    memset(mem, 0, head);
    char *w = mem + head;
    for (int i = 0; i < p->n; i++) {
        memcpy(w, p->src[i], p->len[i]);
        w[p->len[i]] = '\0';
        memcpy(mem + p->off[i], &w, sizeof(w));
        w += p->len[i] + 1;
    }
    return mem;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The uid of the controller ownerReference, and whether it is a Sandbox. */
static const char *controller_owner(json_t *md, bool *is_sandbox)
{
    size_t i;
    json_t *ref;
    *is_sandbox = false;
    json_array_foreach(json_object_get(md, "ownerReferences"), i, ref)
    {
        if (!json_is_true(json_object_get(ref, "controller")))
            continue;
        const char *api = str(ref, "apiVersion");
        const char *kind = str(ref, "kind");
        *is_sandbox =
            api && kind && strncmp(api, "kage.dev/", 9) == 0 && strcmp(kind, "Sandbox") == 0;
        return str(ref, "uid");
    }
    return NULL;
}

/* The uid of the first ownerReference to a core Pod, or NULL. */
static const char *pod_owner(json_t *md)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(md, "ownerReferences"), i, ref)
    {
        const char *api = str(ref, "apiVersion");
        const char *kind = str(ref, "kind");
        if (api && kind && strcmp(api, "v1") == 0 && strcmp(kind, "Pod") == 0)
            return str(ref, "uid");
    }
    return NULL;
}

static enum pod_phase parse_phase(const char *s)
{
    if (!s)
        return POD_PENDING;
    if (strcmp(s, "Pending") == 0)
        return POD_PENDING;
    if (strcmp(s, "Running") == 0)
        return POD_RUNNING;
    if (strcmp(s, "Succeeded") == 0)
        return POD_SUCCEEDED;
    if (strcmp(s, "Failed") == 0)
        return POD_FAILED;
    return POD_UNKNOWN;
}

static json_t *find_named(json_t *arr, const char *key, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *n = str(v, key);
        if (n && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

#define F(field) offsetof(struct pod_obj, field)

/*
 * The bulk of a pod that observed_decode_pod below never reads. A name here
 * is cut wherever it appears as a member, so no name the decoder reads at
 * any depth (metadata, uid, ownerReferences, controller, labels,
 * annotations, deletionTimestamp, resourceVersion, name, namespace, spec,
 * containers, image, nodeName, status, phase, conditions, type, reason,
 * message, podIP, startTime, containerStatuses, state, waiting, terminated,
 * initContainers, initContainerStatuses,
 * exitCode, lastTransitionTime, startedAt, and all that podform_of reads)
 * may ever be added; test_observed checks that a full pod
 * decodes the same with and without the cut.
 */
/* clang-format off */
const char *const observed_pod_unread[] = {
    "managedFields", "tolerations", "dnsPolicy", "schedulerName",
    "terminationGracePeriodSeconds", "preemptionPolicy", "priority", "overhead", "affinity",
    "hostIPs", "podIPs", "hostIP", "qosClass", "lastProbeTime", "imageID", "containerID",
    "lastState", "restartCount", "started", "allocatedResources", "running",
    "creationTimestamp", "observedGeneration", NULL};
/* clang-format on */

void *observed_decode_pod(json_t *obj, char *err, size_t errlen)
{
    json_t *md = json_object_get(obj, "metadata");
    json_t *spec = json_object_get(obj, "spec");
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(md) || !str(md, "uid")) {
        snprintf(err, errlen, "pod without metadata.uid");
        return NULL;
    }
    bool owned;
    const char *owner = controller_owner(md, &owned);
    json_t *container = find_named(json_object_get(spec, "containers"), "name", CONTAINER_NAME);
    json_t *cstatus = find_named(json_object_get(st, "containerStatuses"), "name", CONTAINER_NAME);
    json_t *state = json_object_get(cstatus, "state");
    json_t *waiting = json_object_get(state, "waiting");
    json_t *term = json_object_get(state, "terminated");
    json_t *gate = find_named(json_object_get(spec, "initContainers"), "name", GATE_CONTAINER_NAME);
    json_t *gstate = json_object_get(
        find_named(json_object_get(st, "initContainerStatuses"), "name", GATE_CONTAINER_NAME),
        "state");
    json_t *gwaiting = json_object_get(gstate, "waiting");
    json_t *gterm = json_object_get(gstate, "terminated");
    json_t *conds = json_object_get(st, "conditions");
    json_t *ready = find_named(conds, "type", "Ready");
    json_t *sched = find_named(conds, "type", "PodScheduled");

    /* A pod-level reason: eviction and the like, else why it is unscheduled. */
    const char *reason = str(st, "reason");
    const char *message = str(st, "message");
    if (!reason && sched && json_is_string(json_object_get(sched, "status")) &&
        strcmp(str(sched, "status"), "False") == 0) {
        reason = str(sched, "reason");
        message = str(sched, "message");
    }

    struct packer p = {0};
    pack(&p, F(uid), str(md, "uid"), SHORT_MAX);
    pack(&p, F(owner_uid), owner, SHORT_MAX);
    pack(&p, F(sandbox), str(json_object_get(md, "labels"), LABEL_SANDBOX), SHORT_MAX);
    pack(&p, F(spec_hash), str(json_object_get(md, "annotations"), ANNOT_SPEC_HASH), SPEC_HASH_LEN);
    pack(&p, F(image), str(container, "image"), MESSAGE_MAX);
    pack(&p, F(pod_ip), str(st, "podIP"), SHORT_MAX);
    pack(&p, F(node_name), str(spec, "nodeName"), SHORT_MAX);
    pack(&p, F(start_time), str(st, "startTime"), SHORT_MAX);
    pack(&p, F(reason), reason, SHORT_MAX);
    pack(&p, F(message), message, MESSAGE_MAX);
    pack(&p, F(waiting_reason), str(waiting, "reason"), SHORT_MAX);
    pack(&p, F(waiting_message), str(waiting, "message"), MESSAGE_MAX);
    pack(&p, F(term_reason), str(term, "reason"), SHORT_MAX);
    pack(&p, F(term_message), str(term, "message"), MESSAGE_MAX);
    pack(&p, F(gate_image), str(gate, "image"), MESSAGE_MAX);
    pack(&p, F(gate_waiting_reason), str(gwaiting, "reason"), SHORT_MAX);
    pack(&p, F(gate_waiting_message), str(gwaiting, "message"), MESSAGE_MAX);
    pack(&p, F(gate_term_message), str(gterm, "message"), MESSAGE_MAX);

    struct pod_obj *pod = (struct pod_obj *)pack_alloc(&p, sizeof(struct pod_obj));
    if (!pod) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pod->owned = owned;
    pod->deleting = json_object_get(md, "deletionTimestamp") != NULL;
    pod->phase = parse_phase(str(st, "phase"));
    pod->ready = ready && str(ready, "status") && strcmp(str(ready, "status"), "True") == 0;
    pod->terminated = term != NULL;
    /* RFC 3339 times of one writer (the kubelet) compare as text. */
    const char *rt = str(ready, "lastTransitionTime"), *started = str(term, "startedAt");
    pod->was_ready = term && rt && started && started[0] && strcmp(rt, started) > 0;
    if (observed_pod_form_hash(obj, pod->live_hash) != 0) {
        free(pod);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_int_t code = json_integer_value(json_object_get(term, "exitCode"));
    pod->term_exit_code = (code > INT32_MAX || code < INT32_MIN) ? -1 : (int)code;
    pod->gate_terminated = gterm != NULL;
    code = json_integer_value(json_object_get(gterm, "exitCode"));
    pod->gate_exit_code = (code > INT32_MAX || code < INT32_MIN) ? -1 : (int)code;
    return pod;
}

#undef F
#define F(field) offsetof(struct policy_obj, field)

void *observed_decode_policy(json_t *obj, char *err, size_t errlen)
{
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md) || !str(md, "uid")) {
        snprintf(err, errlen, "network policy without metadata.uid");
        return NULL;
    }
    bool owned;
    const char *owner = controller_owner(md, &owned);
    json_t *labels = json_object_get(md, "labels");
    const char *manager = str(labels, LABEL_MANAGED_BY);

    json_t *spec = json_object_get(obj, "spec");
    json_t *sel = json_object_get(spec, "podSelector");
    char *seltext =
        json_is_object(sel) ? json_dumps(sel, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    struct packer p = {0};
    pack(&p, F(uid), str(md, "uid"), SHORT_MAX);
    pack(&p, F(owner_uid), owner, SHORT_MAX);
    pack(&p, F(pod_owner_uid), pod_owner(md), SHORT_MAX);
    pack(&p, F(sandbox), str(labels, LABEL_SANDBOX), SHORT_MAX);
    /* A selector too long to keep is kept as "": read as one that selects
     * every pod (see reconcile's foreign policy check). */
    pack(&p, F(pod_selector), seltext && strlen(seltext) <= SELECTOR_MAX ? seltext : "",
         SELECTOR_MAX);
    struct policy_obj *pol = (struct policy_obj *)pack_alloc(&p, sizeof(struct policy_obj));
    free(seltext);
    if (!pol) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pol->owned = owned;
    pol->managed = manager && strcmp(manager, "kage") == 0;
    pol->deleting = json_object_get(md, "deletionTimestamp") != NULL;
    pol->egress_rules = (int)json_array_size(json_object_get(spec, "egress"));
    if (observed_hash(spec ? spec : json_null(), pol->spec_hash) != 0) {
        free(pol);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return pol;
}

/* jansson ignores a failed write of an object key (dump.c), so json_dumps
 * can succeed with text missing a piece; these sinks remember a failure. */
struct sha_sink {
    EVP_MD_CTX *ctx;
    bool failed;
};

static int sha_chunk(const char *buf, size_t size, void *data)
{
    struct sha_sink *s = data;
    if (!s->failed && !EVP_DigestUpdate(s->ctx, buf, size))
        s->failed = true;
    return s->failed ? -1 : 0;
}

struct text_sink {
    char *data;
    size_t len, cap;
    bool failed;
};

static int text_chunk(const char *buf, size_t size, void *data)
{
    struct text_sink *t = data;
    if (!t->failed && t->len + size + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + size + 1)
            cap *= 2;
        char *d = realloc(t->data, cap);
        if (!d)
            t->failed = true;
        else {
            t->data = d;
            t->cap = cap;
        }
    }
    if (t->failed)
        return -1;
    memcpy(t->data + t->len, buf, size);
    t->len += size;
    t->data[t->len] = '\0';
    return 0;
}

/* v as canonical text (compact, sorted keys), or NULL on ENOMEM; free(). */
static char *canonical_text(json_t *v)
{
    struct text_sink t = {0};
    if (json_dump_callback(v, text_chunk, &t, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) ||
        t.failed || !t.data) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

int observed_hash(json_t *v, char out[SPEC_HASH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct sha_sink s = {EVP_MD_CTX_new(), false};
    int ok = s.ctx && EVP_DigestInit_ex(s.ctx, EVP_sha256(), NULL) &&
             json_dump_callback(v, sha_chunk, &s,
                                JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) == 0 &&
             !s.failed && EVP_DigestFinal_ex(s.ctx, md, &mdlen);
    EVP_MD_CTX_free(s.ctx);
    if (!ok)
        return -ENOMEM;
    for (int i = 0; i < SPEC_HASH_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[SPEC_HASH_LEN] = '\0';
    return 0;
}

int observed_pod_form_hash(const json_t *pod, char out[SPEC_HASH_LEN + 1])
{
    json_t *form = podform_of(pod);
    int rc = form ? observed_hash(form, out) : -ENOMEM;
    json_decref(form);
    return rc;
}

#undef F
#define F(field) offsetof(struct sandbox_obj, field)

/* The first SANDBOX_DIGEST_LEN hex characters of the SHA-256 of
 * text[0..len) into out. Returns 0, or -ENOMEM. */
static int text_digest(const char *text, size_t len, char out[SANDBOX_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < SANDBOX_DIGEST_LEN / 2)
        return -ENOMEM;
    for (int i = 0; i < SANDBOX_DIGEST_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[SANDBOX_DIGEST_LEN] = '\0';
    return 0;
}

/* Decodes a Sandbox, keeping its texts when they come to at most
 * inline_max bytes together. */
static struct sandbox_obj *decode_sandbox(json_t *obj, size_t inline_max, char *err, size_t errlen)
{
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md) || !str(md, "uid") || !str(md, "name")) {
        snprintf(err, errlen, "sandbox without metadata.name or uid");
        return NULL;
    }
    json_t *spec = json_object_get(obj, "spec");
    json_t *status = json_object_get(obj, "status");
    char *spec_text = canonical_text(spec ? spec : json_null());
    char *status_text = json_is_object(status) ? canonical_text(status) : strdup("{}");
    struct sandbox_obj *s = NULL;
    char spec_digest[SANDBOX_DIGEST_LEN + 1], status_digest[SANDBOX_DIGEST_LEN + 1];
    size_t spec_len = spec_text ? strlen(spec_text) : 0;
    size_t status_len = status_text ? strlen(status_text) : 0;
    if (spec_text && status_text && !text_digest(spec_text, spec_len, spec_digest) &&
        !text_digest(status_text, status_len, status_digest)) {
        bool whole = spec_len + status_len <= inline_max;
        struct packer p = {0};
        pack(&p, F(ns), str(md, "namespace"), SHORT_MAX);
        pack(&p, F(name), str(md, "name"), SHORT_MAX);
        pack(&p, F(uid), str(md, "uid"), SHORT_MAX);
        pack(&p, F(created), str(md, "creationTimestamp"), SHORT_MAX);
        pack(&p, F(phase), str(status, "phase"), 15);
        if (whole) {
            /* The API server bounds objects (1.5 MiB); so does this. */
            pack(&p, F(spec), spec_text, 2u << 20);
            pack(&p, F(status), status_text, 2u << 20);
        }
        s = (struct sandbox_obj *)pack_alloc(&p, sizeof(struct sandbox_obj));
        if (s) {
            s->whole = whole;
            s->spec_len = spec_len;
            s->status_len = status_len;
            memcpy(s->spec_digest, spec_digest, sizeof(spec_digest));
            memcpy(s->status_digest, status_digest, sizeof(status_digest));
        }
    }
    free(spec_text);
    free(status_text);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->generation = json_integer_value(json_object_get(md, "generation"));
    s->deleting = json_object_get(md, "deletionTimestamp") != NULL;
    return s;
}

void *observed_decode_sandbox(json_t *obj, char *err, size_t errlen)
{
    return decode_sandbox(obj, SANDBOX_INLINE_MAX, err, errlen);
}

struct sandbox_obj *observed_decode_sandbox_whole(json_t *obj, char *err, size_t errlen)
{
    return decode_sandbox(obj, SIZE_MAX, err, errlen);
}

bool observed_sandbox_status_is(const struct sandbox_obj *s, const char *text)
{
    char digest[SANDBOX_DIGEST_LEN + 1];
    size_t len = strlen(text);
    return len == s->status_len && text_digest(text, len, digest) == 0 &&
           strcmp(digest, s->status_digest) == 0;
}

json_t *observed_sandbox_json(const struct sandbox_obj *s)
{
    if (!s->whole)
        return NULL;
    json_error_t e;
    json_t *spec = json_loads(s->spec, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    json_t *status = json_loads(s->status, JSON_ALLOW_NUL, &e);
    /* jansson's lexer ignores a failed append (load.c lex_save), so a parse
     * under ENOMEM can drop a byte and succeed: check it against the text. */
    char *spec_back = spec ? canonical_text(spec) : NULL;
    char *status_back = status ? canonical_text(status) : NULL;
    bool same = spec_back && status_back && strcmp(spec_back, s->spec) == 0 &&
                strcmp(status_back, s->status) == 0;
    free(spec_back);
    free(status_back);
    if (!same) {
        json_decref(spec);
        json_decref(status);
        return NULL;
    }
    return json_pack("{s:{s:s, s:s, s:s, s:I, s:s}, s:o, s:o}", "metadata", "name", s->name,
                     "namespace", s->ns, "uid", s->uid, "generation", (json_int_t)s->generation,
                     "creationTimestamp", s->created, "spec", spec, "status", status);
}

bool observed_pod_same(const struct pod_obj *a, const struct pod_obj *b)
{
    const char *const fa[] = {a->uid,
                              a->owner_uid,
                              a->sandbox,
                              a->spec_hash,
                              a->image,
                              a->pod_ip,
                              a->node_name,
                              a->start_time,
                              a->reason,
                              a->message,
                              a->waiting_reason,
                              a->waiting_message,
                              a->term_reason,
                              a->term_message,
                              a->gate_image,
                              a->gate_waiting_reason,
                              a->gate_waiting_message,
                              a->gate_term_message};
    const char *const fb[] = {b->uid,
                              b->owner_uid,
                              b->sandbox,
                              b->spec_hash,
                              b->image,
                              b->pod_ip,
                              b->node_name,
                              b->start_time,
                              b->reason,
                              b->message,
                              b->waiting_reason,
                              b->waiting_message,
                              b->term_reason,
                              b->term_message,
                              b->gate_image,
                              b->gate_waiting_reason,
                              b->gate_waiting_message,
                              b->gate_term_message};
    for (size_t i = 0; i < sizeof(fa) / sizeof(fa[0]); i++)
        if (strcmp(fa[i], fb[i]) != 0)
            return false;
    return a->term_exit_code == b->term_exit_code && a->terminated == b->terminated &&
           a->gate_exit_code == b->gate_exit_code && a->gate_terminated == b->gate_terminated &&
           a->deleting == b->deleting && a->ready == b->ready && a->owned == b->owned &&
           a->was_ready == b->was_ready && strcmp(a->live_hash, b->live_hash) == 0 &&
           a->phase == b->phase;
}

bool observed_policy_same(const struct policy_obj *a, const struct policy_obj *b)
{
    return strcmp(a->uid, b->uid) == 0 && strcmp(a->owner_uid, b->owner_uid) == 0 &&
           strcmp(a->pod_owner_uid, b->pod_owner_uid) == 0 && strcmp(a->sandbox, b->sandbox) == 0 &&
           strcmp(a->spec_hash, b->spec_hash) == 0 && a->owned == b->owned &&
           a->managed == b->managed && a->deleting == b->deleting &&
           a->egress_rules == b->egress_rules && strcmp(a->pod_selector, b->pod_selector) == 0;
}
