// SPDX-License-Identifier: Apache-2.0
/* validate.h - the controller's own check of a Sandbox before it renders
 * anything from it. Pure: no I/O, no allocation. */
#ifndef KAGE_VALIDATE_H
#define KAGE_VALIDATE_H

#include <jansson.h>

#define VALIDATION_FIELD_MAX   160
#define VALIDATION_MESSAGE_MAX 320

struct validation_error {
    char field[VALIDATION_FIELD_MAX];     /* Kubernetes-style path, e.g.
                                             "spec.egress.allow[2].except[0]" */
    char message[VALIDATION_MESSAGE_MAX]; /* what is wrong and what would be right, e.g.
                                             "must be a valid CIDR such as 203.0.113.0/24,
                                             not \"300.1.2.3/8\"" */
};

/*
 * Checks a whole Sandbox object (metadata and spec) against the same rules
 * as the CRD's schema, so that nothing the API server lets through (an old
 * CRD, a schema loosened by hand, a bug on either side) can crash the
 * controller or make it write a bad pod or NetworkPolicy.
 *
 * The rules are crds/sandboxes.kage.dev.yaml's: its bounds, enums,
 * required fields and CEL rules, plus the API server's own DNS-1123 rule
 * for metadata.name (a label here, as the CRD's CEL keeps out '.').
 * tests/unit/test_schema.c reads the CRD and fails when the two differ;
 * change both together.
 *
 * Lengths count characters (code points), as OpenAPI maxLength does. No
 * string may hold a NUL. A wrong JSON type is an error naming the field
 * ("must be a string"); JSON null counts as absent, as the API server
 * prunes nulls of non-nullable fields; unknown fields are ignored.
 * metadata is checked before spec, and spec's fields in the CRD's order,
 * array items in order.
 *
 * Returns 0 when the Sandbox is valid (*err then holds empty strings), or
 * -1 with the first problem in *err: field is the path of the offending
 * value ("" when sandbox itself is not an object), message is one
 * sentence fragment meant to follow "<field>: ".
 */
int sandbox_validate(const json_t *sandbox, struct validation_error *err);

#endif
