// SPDX-License-Identifier: Apache-2.0
/* sbxstatus.h - a Sandbox's status from what the reconciler knows: phase,
 * the Ready and NetworkIsolated conditions with actionable reasons, and the
 * pod's whereabouts. Pure: no I/O. */
#ifndef KAGE_SBXSTATUS_H
#define KAGE_SBXSTATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "reconcile/observed.h"
#include "reconcile/validate.h"

/* What one reconcile found out. Strings may be NULL where not said otherwise. */
struct status_facts {
    const struct validation_error *invalid; /* the spec is invalid: nothing rendered */
    /* Something stops progress (NameConflict, QuotaExceeded, Forbidden,
     * RuntimeClassNotFound, PodInvalid, ...), with the API's message. */
    const char *block_reason;
    const char *block_message;
    bool block_is_policy;      /* the blocker is about a network policy */
    bool policies_ready;       /* baseline and own policy exist as rendered */
    const char *foreign;       /* a policy not kage's selects the pod: NULL, or what to say */
    int egress_rules;          /* rules of the sandbox's policy (rendered, or as kept
                                  while blocked), for the message */
    const struct pod_obj *pod; /* the observed pod, NULL when none */
    bool pod_replacing;        /* the pod is being deleted to be created anew */
    const char *memory_limit;  /* rendered memory limit, for OOMKilled */
    const char *image;         /* for image pull failures */
    bool before_script;        /* the spec has a beforeScript */
    bool paused;               /* spec.paused: no pod is wanted */
    bool expired;              /* the lifetime ended and shutdownPolicy is Retain */
    const char *expires_at;    /* RFC 3339 end of the lifetime, or NULL */
    const json_t *pod_record;  /* status.podRecord as it is to be (podrecord.h), or NULL */
    const char *gate_note;     /* why the pod has no policy gate, added to NetworkIsolated's
                                  message; NULL to say nothing */
};

/*
 * Builds the status the Sandbox should have: phase, observedGeneration
 * (generation), conditions Ready and NetworkIsolated, plus (for kstatus, so
 * Flux and Argo CD read health without custom code) Reconciling=True while
 * the sandbox is on its way, or Stalled=True when it failed and needs a
 * person; neither once settled (Running, Paused, Succeeded, Expired).
 * lastTransitionTime is kept from old_status while a condition's status
 * stays the same, else now. Also podName, podIP, nodeName, startTime (with
 * a pod), expiresAt and podRecord (copied). old_status may be NULL. New
 * reference, NULL on ENOMEM.
 */
json_t *sbxstatus_render(const json_t *old_status, int64_t generation, const char *pod_name,
                         const struct status_facts *f, const char *now);

/* True when a and b are the same status (canonical comparison). */
bool sbxstatus_equal(const json_t *a, const json_t *b);

/* Writes t (seconds since the epoch) as RFC 3339 UTC
 * ("2026-11-28T10:00:00Z") into out (at least 21 bytes). */
void sbxstatus_time(time_t t, char *out, size_t outlen);

/* Reads an RFC 3339 UTC time as the API server writes them (seconds, "Z");
 * returns seconds since the epoch, or -1 for NULL or text it cannot read. */
time_t sbxstatus_parse_time(const char *s);

#endif
