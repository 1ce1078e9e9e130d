// SPDX-License-Identifier: Apache-2.0
/* census.h - Sandboxes counted by the phase in their status, in all and per
 * namespace, for /metrics: the namespaces with the most Sandboxes each get
 * a row, the rest are summed in one, so the series stay bounded. */
#ifndef KAGE_CENSUS_H
#define KAGE_CENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "kube/informer.h"

#define CENSUS_PHASES 9 /* "" (no status yet) and the eight phases */
#define CENSUS_NS_MAX 64

/* The phase names, index 0 being "" (a Sandbox without a phase). */
extern const char *const census_phase_names[CENSUS_PHASES];

struct census_row {
    char ns[CENSUS_NS_MAX];
    uint64_t n[CENSUS_PHASES];
    uint64_t total;
};

struct census {
    struct census_row *rows; /* the largest namespaces, most Sandboxes first */
    size_t nrows;
    struct census_row other; /* the namespaces past max_rows, summed ("" if none) */
    uint64_t all[CENSUS_PHASES];
};

/*
 * Counts the Sandboxes of the sandboxes informer (cached struct
 * sandbox_obj) into c: all of them, and by namespace for at most max_rows
 * namespaces, the rest in c->other. Returns 0, or -ENOMEM (c is then
 * empty). Release with census_free.
 */
int census_take(struct census *c, const struct informer *sandboxes, size_t max_rows);

void census_free(struct census *c);

#endif
