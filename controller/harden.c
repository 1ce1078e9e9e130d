// SPDX-License-Identifier: Apache-2.0
/*
 * harden.c - the controller's own process hardening, done at start, before
 * the kubeconfig or the ServiceAccount token is read.
 */
#include "harden.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int harden_process(char *err, size_t errlen)
{
    const struct rlimit none = {0, 0};
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        int e = errno;
        snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(e));
        return -e;
    }
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        int e = errno;
        snprintf(err, errlen, "setrlimit(RLIMIT_CORE, 0): %s", strerror(e));
        return -e;
    }
    return 0;
}
