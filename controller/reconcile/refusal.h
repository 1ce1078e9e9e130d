// SPDX-License-Identifier: Apache-2.0
/* refusal.h - what an API refusal of a write means for a Sandbox: the
 * status reason a person reads, and when to try again. A table of rules on
 * the HTTP code and the server's message. Pure: no I/O. */
#ifndef KAGE_REFUSAL_H
#define KAGE_REFUSAL_H

#include <stdbool.h>

enum refusal_retry {
    REFUSAL_BACKOFF, /* retry after the key's backoff */
    REFUSAL_SOON,    /* clears by itself: look again after base_ms, doubling per blocked run */
    REFUSAL_SILENT,  /* nothing to report or retry (the namespace goes) */
};

struct refusal {
    const char *reason; /* status reason; for the object's kind when NULL (see below) */
    enum refusal_retry retry;
    unsigned base_ms; /* REFUSAL_SOON only */
    bool quota;       /* a quota refused it: a pod going in the namespace may free it */
    const char *lead; /* NULL: the status message is the server's message alone;
                         else "<object><lead>: <message>" (the reason when the
                         message is empty) */
};

/*
 * The rule for a refusal with HTTP code (403, 422, ...) and the server's
 * message, for a write of a policy (is_policy) or a pod. reason is then
 * "Forbidden", "QuotaExceeded", "RuntimeClassNotFound",
 * "ServiceAccountNotFound", "PolicyInvalid"/"PodInvalid" (400, 422) or
 * "PolicyFailed"/"PodFailed" (anything else). Never NULL.
 */
const struct refusal *refusal_classify(long code, const char *message, bool is_policy);

#endif
