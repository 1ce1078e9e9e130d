/* memory.h - what kage remembers of its own writes for one Sandbox until
 * its watches show them, and what it told last (status, Event). The
 * controller keeps one per Sandbox; a reconcile reads and updates it.
 * Pure data: no I/O. */
#ifndef KAGE_MEMORY_H
#define KAGE_MEMORY_H

#include <stdint.h>

#include "reconcile/observed.h"

struct sbx_memory {
    const char *key; /* first: the controller's search tree compares *(const char **) */
    char policy_hash[SPEC_HASH_LEN + 1];
    uint64_t policy_at; /* loop time of the policy write, 0 when none or seen */
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
    char drift_hash[SPEC_HASH_LEN + 1];
    char altered_hash[SPEC_HASH_LEN + 1];
    char data[];
};

#endif
