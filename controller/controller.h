/* controller.h - the Sandbox controller: informers on Sandboxes and the
 * pods and policies kage manages, a work queue, and the loop that runs
 * them until SIGTERM or SIGINT. */
#ifndef KAGE_CONTROLLER_H
#define KAGE_CONTROLLER_H

#include "kube/config.h"

struct controller_opts {
    const char *runtime_class; /* runtimeClassName of sandbox pods */
    unsigned workers;          /* Sandboxes reconciled at once; 0 = 32 */
};

/* Runs the controller on the default loop until a signal stops it.
 * Returns the process exit code (0 after a clean stop). */
int controller_run(const struct controller_opts *o, const struct kube_config *cfg);

#endif
