// SPDX-License-Identifier: Apache-2.0
/*
 * path.c - builds API URL paths and queries from resource descriptions.
 * Every name and query value is percent-encoded (RFC 3986 unreserved kept).
 */
#include "kube/path.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

const struct kube_resource KUBE_PODS = {"", "v1", "pods", "Pod", true};
const struct kube_resource KUBE_NETWORK_POLICIES = {"networking.k8s.io", "v1", "networkpolicies",
                                                    "NetworkPolicy", true};
const struct kube_resource KUBE_EVENTS = {"events.k8s.io", "v1", "events", "Event", true};
const struct kube_resource KUBE_LEASES = {"coordination.k8s.io", "v1", "leases", "Lease", true};
const struct kube_resource KUBE_CONFIGMAPS = {"", "v1", "configmaps", "ConfigMap", true};
const struct kube_resource KUBE_NAMESPACES = {"", "v1", "namespaces", "Namespace", false};

static const struct kube_resource *const known[] = {
    &KUBE_PODS,   &KUBE_NETWORK_POLICIES, &KUBE_EVENTS,
    &KUBE_LEASES, &KUBE_CONFIGMAPS,       &KUBE_NAMESPACES,
};

const struct kube_resource *kube_resource_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcasecmp(name, known[i]->resource) == 0 || strcasecmp(name, known[i]->kind) == 0)
            return known[i];
    }
    return NULL;
}

static int append_escaped(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = buf_append(b, esc, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int kube_path(struct buf *b, const struct kube_resource *r, const char *ns, const char *name,
              const char *sub)
{
    int rc;
    if (r->group[0] == '\0')
        rc = buf_printf(b, "/api/%s", r->version);
    else
        rc = buf_printf(b, "/apis/%s/%s", r->group, r->version);
    if (!rc && r->namespaced && ns && ns[0]) {
        rc = buf_append_str(b, "/namespaces/");
        if (!rc)
            rc = append_escaped(b, ns);
    }
    if (!rc)
        rc = buf_printf(b, "/%s", r->resource);
    if (!rc && name) {
        rc = buf_append_str(b, "/");
        if (!rc)
            rc = append_escaped(b, name);
        if (!rc && sub)
            rc = buf_printf(b, "/%s", sub);
    }
    return rc;
}

int kube_query(struct buf *b, const char *key, const char *value)
{
    const char *sep = (b->data && memchr(b->data, '?', b->len)) ? "&" : "?";
    int rc = buf_printf(b, "%s%s=", sep, key);
    if (!rc)
        rc = append_escaped(b, value);
    return rc;
}
