// SPDX-License-Identifier: Apache-2.0
/*
 * refusal.c - the table that reads an API refusal: which admission plugin
 * or limit said no, what the Sandbox's status should call it, and whether
 * waiting helps. First matching row wins.
 */
#include "reconcile/refusal.h"

#include <stddef.h>
#include <string.h>

struct rule {
    long code;          /* 0: any code */
    const char *needle; /* substring of the message, or NULL */
    const char *also;   /* a second one, or NULL */
    struct refusal policy, pod;
};

#define BOTH(...)   \
    {__VA_ARGS__},  \
    {               \
        __VA_ARGS__ \
    }

static const struct rule rules[] = {
    /* The namespace goes, and the Sandbox with it: nothing to report. */
    {403, "because it is being terminated", NULL, BOTH(NULL, REFUSAL_SILENT, 0, false, NULL)},
    /* A new namespace's default ServiceAccount is made a moment after the
     * namespace: admission refuses pods until then. */
    {403, "error looking up service account", NULL,
     BOTH("ServiceAccountNotFound", REFUSAL_SOON, 2000, false, NULL)},
    /* Quota frees when a pod goes (which wakes podless sandboxes), or when
     * the quota changes, which kage does not watch. */
    {403, "exceeded quota", NULL, BOTH("QuotaExceeded", REFUSAL_SOON, 5000, true, NULL)},
    {403, "RuntimeClass", "not found",
     BOTH("RuntimeClassNotFound", REFUSAL_BACKOFF, 0, false, NULL)},
    {403, "PodSecurity", NULL, BOTH("Forbidden", REFUSAL_BACKOFF, 0, false, NULL)},
    {403, NULL, NULL, BOTH("Forbidden", REFUSAL_BACKOFF, 0, false, " refused")},
    {422,
     NULL,
     NULL,
     {"PolicyInvalid", REFUSAL_BACKOFF, 0, false, NULL},
     {"PodInvalid", REFUSAL_BACKOFF, 0, false, NULL}},
    {400,
     NULL,
     NULL,
     {"PolicyInvalid", REFUSAL_BACKOFF, 0, false, NULL},
     {"PodInvalid", REFUSAL_BACKOFF, 0, false, NULL}},
    {0,
     NULL,
     NULL,
     {"PolicyFailed", REFUSAL_BACKOFF, 0, false, ""},
     {"PodFailed", REFUSAL_BACKOFF, 0, false, ""}},
};

const struct refusal *refusal_classify(long code, const char *message, bool is_policy)
{
    const char *m = message ? message : "";
    size_t i;
    for (i = 0; i < sizeof(rules) / sizeof(rules[0]) - 1; i++) {
        const struct rule *r = &rules[i];
        if ((r->code == 0 || r->code == code) && (!r->needle || strstr(m, r->needle)) &&
            (!r->also || strstr(m, r->also)))
            break;
    }
    return is_policy ? &rules[i].policy : &rules[i].pod;
}
