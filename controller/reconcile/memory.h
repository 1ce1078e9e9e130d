// SPDX-License-Identifier: Apache-2.0
/* memory.h - what kage remembers of its own writes for one Sandbox until
 * its watches show them, and what it told last (status, Event). The
 * controller keeps one per Sandbox; a reconcile reads and updates it.
 * Pure data: no I/O. */
#ifndef KAGE_MEMORY_H
#define KAGE_MEMORY_H

#include <stdint.h>

#include "reconcile/observed.h"

/* A Sandbox first seen this many seconds after its creationTimestamp (a
 * whole second, the field's resolution) or less was created while this
 * controller watched: its wait for Ready is timed from then. */
#define READY_TIMED_WITHIN_S 2

struct sbx_memory {
    const char *key; /* first: the controller's search tree compares *(const char **) */
    char policy_hash[SPEC_HASH_LEN + 1];
    uint64_t policy_at; /* loop time of the policy write, 0 when none or seen */
    /* The pod the policy was last written to name as its second owner,
     * and when: until the watch shows the policy naming it, that write
     * stands in for the cache (no second update for a lagging watch). */
    char owner_uid[48];
    uint64_t owner_at; /* loop time, 0 when none or seen */
    char pod_hash[SPEC_HASH_LEN + 1];
    uint64_t pod_at;       /* loop time of the pod's creation, 0 when none or seen */
    uint64_t pod_made_at;  /* loop time kage last created its pod; kept once seen */
    char *last_status;     /* canonical JSON of the last status written (owned) */
    uint64_t event_hash;   /* digest of the last Event emitted (reason + note) */
    uint64_t event_at;     /* loop time it was emitted */
    char trouble[16];      /* phase (Pending, Failed) the sandbox was last stuck in, or "" */
    unsigned blocked_runs; /* consecutive reconciles blocked by quota or the like */
    /* Pod spec-hash last replaced because the live pod differed from it,
     * and the one whose pods were found changed twice: the API server or
     * a webhook changes every such pod, so no more are made for it. */
    uint64_t seen_at; /* loop time this controller first reconciled it */
    /* Its create-to-Ready time is observed: it was created within
     * READY_TIMED_WITHIN_S of seen_at, and is cleared once observed. */
    bool timed;
    char drift_hash[SPEC_HASH_LEN + 1];
    char altered_hash[SPEC_HASH_LEN + 1];
    char data[];
};

#endif
