// SPDX-License-Identifier: Apache-2.0
/* events.h - Kubernetes Events (events.k8s.io/v1) about Sandboxes, so
 * `kubectl describe sandbox` and `kubectl events` tell what kage did and
 * what refused it. */
#ifndef KAGE_EVENTS_H
#define KAGE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "kube/client.h"
#include "reconcile/memory.h"

/* Who reports: the controller's name and this replica's identity. */
struct events_source {
    struct kube_client *client;
    const char *instance; /* reportingInstance */
};

/*
 * Records an Event about the Sandbox ns/name (uid), of type Warning when
 * warning, else Normal. The same reason and note for the same Sandbox is
 * emitted at most once per 10 minutes: mem (may be NULL) remembers the
 * last one; now is loop time in ms. Fire and forget: a refused Event is
 * logged, nothing else. Returns true when an Event was sent.
 */
bool events_record(const struct events_source *src, struct sbx_memory *mem, uint64_t now,
                   const char *ns, const char *name, const char *uid, bool warning,
                   const char *reason, const char *action, const char *note);

#endif
