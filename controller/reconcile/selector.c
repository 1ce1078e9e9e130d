// SPDX-License-Identifier: Apache-2.0
/*
 * selector.c - label selectors as the API server reads them, for the
 * namespaceSelector of a SandboxClass, and the compact namespace cache
 * entry they are matched against.
 */
#include "reconcile/selector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *selector_decode_namespace(json_t *obj, char *err, size_t errlen)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *labels = json_object_get(md, "labels");
    if (!name) {
        snprintf(err, errlen, "namespace without metadata.name");
        return NULL;
    }
    char *text =
        json_is_object(labels) ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t nl = strlen(name) + 1, ll = strlen(text) + 1;
    struct namespace_obj *n = malloc(sizeof(*n) + nl + ll);
    if (!n) {
        free(text);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(n->data, name, nl);
    memcpy(n->data + nl, text, ll);
    free(text);
    n->name = n->data;
    n->labels = n->data + nl;
    return n;
}

/* Whether values (an array of strings) holds v; -1 when not well formed. */
static int holds(const json_t *values, const char *v)
{
    size_t i;
    json_t *x;
    if (!json_is_array(values) || json_array_size(values) == 0)
        return -1;
    int found = 0;
    json_array_foreach(values, i, x)
    {
        if (!json_is_string(x))
            return -1;
        if (v && strcmp(json_string_value(x), v) == 0)
            found = 1;
    }
    return found;
}

/* One requirement of matchExpressions; false when not well formed. */
static bool requirement_holds(const json_t *req, const json_t *labels)
{
    const char *key = json_string_value(json_object_get(req, "key"));
    const char *op = json_string_value(json_object_get(req, "operator"));
    const json_t *values = json_object_get(req, "values");
    if (!key || !op)
        return false;
    const char *v = json_string_value(json_object_get(labels, key));
    if (strcmp(op, "Exists") == 0 || strcmp(op, "DoesNotExist") == 0) {
        if (values && json_array_size(values) > 0)
            return false;
        return (v != NULL) == (strcmp(op, "Exists") == 0);
    }
    int in = holds(values, v);
    if (in < 0)
        return false;
    if (strcmp(op, "In") == 0)
        return in == 1;
    if (strcmp(op, "NotIn") == 0)
        return in == 0;
    return false;
}

bool selector_matches(const json_t *selector, const json_t *labels)
{
    if (!selector || json_is_null(selector))
        return true;
    if (!json_is_object(selector))
        return false;
    const json_t *ml = json_object_get(selector, "matchLabels");
    const json_t *me = json_object_get(selector, "matchExpressions");
    const char *k;
    json_t *want;
    if (ml && !json_is_object(ml))
        return false;
    json_object_foreach((json_t *)ml, k, want)
    {
        const char *have = json_string_value(json_object_get(labels, k));
        if (!json_is_string(want) || !have || strcmp(have, json_string_value(want)) != 0)
            return false;
    }
    if (me && !json_is_array(me))
        return false;
    size_t i;
    json_t *req;
    json_array_foreach(me, i, req)
    {
        if (!requirement_holds(req, labels))
            return false;
    }
    return true;
}
