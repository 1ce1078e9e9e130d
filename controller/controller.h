// SPDX-License-Identifier: Apache-2.0
/* controller.h - the Sandbox controller: informers on Sandboxes and the
 * pods and policies kage manages, a work queue, and the loop that runs
 * them until SIGTERM or SIGINT. */
#ifndef KAGE_CONTROLLER_H
#define KAGE_CONTROLLER_H

#include "kube/config.h"
#include "reconcile/gate.h"

#include <stdbool.h>

struct controller_opts {
    const char *runtime_class;      /* runtimeClassName of sandbox pods */
    unsigned workers;               /* Sandboxes reconciled at once; 0 = 32 */
    const char *http_addr;          /* /healthz, /readyz, /metrics; NULL or "" = none */
    const char *probe_addr;         /* /healthz, /readyz alone; NULL or "" = none */
    bool leader_elect;              /* reconcile only while holding the Lease */
    bool require_class;             /* a Sandbox no class applies to gets no pod */
    const char *lease_namespace;    /* the Lease's namespace */
    const char *lease_name;         /* the Lease's name */
    const struct gate_config *gate; /* the policy gate of sandbox pods */
};

/* Runs the controller on the default loop until a signal stops it.
 * Returns the process exit code (0 after a clean stop). */
int controller_run(const struct controller_opts *o, const struct kube_config *cfg);

#endif
