// SPDX-License-Identifier: Apache-2.0
/* harden.h - what the process does to itself before it reads a secret:
 * no core dump, no ptrace by its own user, nothing dumped from /proc. */
#ifndef KAGE_HARDEN_H
#define KAGE_HARDEN_H

#include <stddef.h>

/*
 * Makes the process not dumpable (prctl PR_SET_DUMPABLE 0: no core file,
 * no ptrace attach or /proc/<pid>/mem, environ, fd by another process of
 * the same user) and its core size limit 0, so the ServiceAccount token
 * and the client keys it holds never reach a core dump or a debugger.
 * Returns 0, or -errno with err[errlen] naming the step that failed.
 */
int harden_process(char *err, size_t errlen);

#endif
