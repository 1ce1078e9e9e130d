// SPDX-License-Identifier: Apache-2.0
/* selector.h - Kubernetes label selectors (metav1.LabelSelector) against a
 * set of labels, and namespaces as cached for them: which namespaces may
 * use a SandboxClass. Pure: no I/O. */
#ifndef KAGE_SELECTOR_H
#define KAGE_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* A namespace as cached: its name and its labels as canonical JSON. */
struct namespace_obj {
    const char *name;
    const char *labels; /* "{}" when none */
    char data[];
};

/* Informer decode for namespaces; the result is freed with free(). */
void *selector_decode_namespace(json_t *obj, char *err, size_t errlen);

/*
 * Whether selector selects labels (an object of strings; NULL counts as
 * none). A NULL or empty selector selects everything. matchLabels and
 * every matchExpressions requirement (In, NotIn, Exists, DoesNotExist)
 * must hold; a selector that is not well formed (an unknown operator, a
 * value not a string) selects nothing, so a mistake never widens a class.
 */
bool selector_matches(const json_t *selector, const json_t *labels);

#endif
