// SPDX-License-Identifier: Apache-2.0
/* class.h - SandboxClasses, the platform team's guardrails: which class a
 * Sandbox gets, and the Sandbox as its class shapes it (defaults filled,
 * maxima, egress ceiling and denied ranges enforced). Pure: no I/O. */
#ifndef KAGE_CLASS_H
#define KAGE_CLASS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CLASS_DEFAULT_ANNOTATION "sandboxclass.kage.dev/is-default-class"

/* A SandboxClass as cached. */
struct class_obj {
    const char *name;
    const char *spec; /* canonical JSON text of .spec ("{}" when absent) */
    bool is_default;  /* annotated as the default class */
    char data[];
};

/* Informer decode for SandboxClasses; the result is freed with free(). */
void *class_decode(json_t *obj, char *err, size_t errlen);

/* Why a Sandbox cannot have a pod under its class. */
struct class_verdict {
    char reason[32];   /* "ClassNotFound" or "PolicyViolation"; "" when fine */
    char message[640]; /* names the field and the limit */
};

/*
 * Shapes sandbox (a validated Sandbox object, changed in place) by its
 * class: class_spec is the class's spec (NULL: no class applies, only
 * built-in defaults), class_name names it in messages. Missing resources
 * come from defaultResources (or the built-in default, lowered to the
 * maximum when one is set); resources above maxResources, a ttlSeconds
 * above maxLifetimeSeconds, an allow CIDR outside every allowedCIDRs entry
 * or inside a deniedCIDRs entry are violations; a missing ttlSeconds takes
 * maxLifetimeSeconds; denied ranges inside an allow CIDR join its except
 * list; the class's imagePullPolicy fills in a missing one, and another
 * (but Always) is a violation. Returns 0, -1 with *v filled (reason PolicyViolation), or -ENOMEM.
 */
int class_apply(json_t *sandbox, const json_t *class_spec, const char *class_name,
                struct class_verdict *v);

#endif
