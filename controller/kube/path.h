// SPDX-License-Identifier: Apache-2.0
/* path.h - API resource descriptions and the URL paths built from them. */
#ifndef KAGE_PATH_H
#define KAGE_PATH_H

#include <stdbool.h>

#include "kube/buf.h"

struct kube_resource {
    const char *group;    /* "" for the core group */
    const char *version;  /* "v1" */
    const char *resource; /* plural, lower case: "pods" */
    const char *kind;     /* "Pod" */
    bool namespaced;
};

extern const struct kube_resource KUBE_PODS;
extern const struct kube_resource KUBE_NETWORK_POLICIES;
extern const struct kube_resource KUBE_EVENTS;
extern const struct kube_resource KUBE_LEASES;
extern const struct kube_resource KUBE_CONFIGMAPS;
extern const struct kube_resource KUBE_NAMESPACES;

/* Finds a resource by its plural or kind name, case-insensitive, among
 * the ones above ("pods", "Pod", "networkpolicies"...). NULL if unknown. */
const struct kube_resource *kube_resource_lookup(const char *name);

/*
 * Appends the path of a collection or object to b:
 * /api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]] or /apis/GROUP/VERSION/...
 * ns is ignored for cluster-scoped resources and may be NULL (all
 * namespaces) for namespaced ones; name and sub may be NULL. Names are
 * percent-encoded. Returns 0 or a negative errno from the buffer.
 */
int kube_path(struct buf *b, const struct kube_resource *r, const char *ns, const char *name,
              const char *sub);

/* Appends "?key=value" (or "&key=value" when b already has a query),
 * value percent-encoded. Returns 0 or a negative errno. */
int kube_query(struct buf *b, const char *key, const char *value);

#endif
