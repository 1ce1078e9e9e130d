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
 * controller or make it write a bad pod or NetworkPolicy:
 *
 *   metadata.name       required DNS-1123 label, at most 63 characters
 *   spec                required object
 *   .sandboxClassName   DNS-1123 subdomain, at most 253 (not "": leave it out)
 *   .image              required, 1..1024 characters, no spaces or control characters
 *   .command, .args     at most 64 strings of at most 4096
 *   .workingDir         absolute path, at most 4096, no controls
 *   .env                at most 128 of {name: required [A-Za-z_][A-Za-z0-9_]*, at most
 *                       256, unique; value: at most 32768 | valueFrom: exactly one of
 *                       secretKeyRef/configMapKeyRef {name: DNS subdomain, key:
 *                       [-._a-zA-Z0-9]+ at most 253, not "." nor starting ".."};
 *                       not both value and valueFrom}
 *   .resources          cpu, memory, ephemeralStorage: quantity string or integer,
 *                       > 0; memory and ephemeralStorage at least 1 byte
 *   .egress             dns: bool; allow: at most 64 of {cidr: required CIDR;
 *                       except: at most 32 CIDRs of the same family, each strictly
 *                       inside cidr; ports: at most 32 of {port: required 1..65535,
 *                       endPort: port..65535, protocol: TCP|UDP|SCTP}}
 *   .beforeScript       at most 16384 characters
 *   .lifetime           ttlSeconds 1..31536000; shutdownPolicy Delete|Retain
 *   .paused             bool
 *   .securityContext    runAsUser, runAsGroup 1..2147483647 (never root)
 *
 * Lengths count characters (code points), as OpenAPI maxLength does. No
 * string may hold a NUL. A wrong JSON type is an error naming the field
 * ("must be a string"); JSON null counts as absent, as the API server
 * prunes nulls of non-nullable fields; unknown fields are ignored. Fields
 * are checked in the order above, array items in order.
 *
 * Returns 0 when the Sandbox is valid (*err then holds empty strings), or
 * -1 with the first problem in *err: field is the path of the offending
 * value ("" when sandbox itself is not an object), message is one
 * sentence fragment meant to follow "<field>: ".
 */
int sandbox_validate(const json_t *sandbox, struct validation_error *err);

#endif
