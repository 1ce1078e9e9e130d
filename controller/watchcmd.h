// SPDX-License-Identifier: Apache-2.0
/* watchcmd.h - `kage-controller --watch RESOURCE`: a debugging entry point
 * that runs one informer and prints what it sees. */
#ifndef KAGE_WATCHCMD_H
#define KAGE_WATCHCMD_H

#include "kube/config.h"
#include "options.h"

/* Runs until SIGINT/SIGTERM. Returns the process exit code. */
int watchcmd_run(const struct options *opts, const struct kube_config *cfg);

#endif
