// SPDX-License-Identifier: Apache-2.0
/* render.h - the objects a Sandbox becomes: the namespace baseline policy,
 * the sandbox's own NetworkPolicy and its pod. Pure functions of the
 * (validated) Sandbox; no I/O. */
#ifndef KAGE_RENDER_H
#define KAGE_RENDER_H

#include <jansson.h>

#include "reconcile/gate.h"
#include "reconcile/observed.h"

#define DEFAULT_CPU               "1"
#define DEFAULT_MEMORY            "1Gi"
#define DEFAULT_EPHEMERAL_STORAGE "2Gi"
#define DEFAULT_USER              65532
#define SANDBOX_API_VERSION       "kage.dev/v1alpha1"
#define SANDBOX_KIND              "Sandbox"
#define BEFORE_SCRIPT_ENV         "KAGE_BEFORE_SCRIPT"
#define BEFORE_SCRIPT_FAILED      "kage: beforeScript failed with exit code "
#define TERMINATION_GRACE_SECONDS 5

struct render_opts {
    const char *runtime_class;      /* runtimeClassName of sandbox pods (the class's wins) */
    const json_t *class_spec;       /* the SandboxClass's spec, or NULL: runtimeClassName,
                                       nodeSelector, tolerations, podAnnotations, podLabels,
                                       egress.policyGate, imagePullPolicy */
    const struct gate_config *gate; /* the policy gate's image and canary; NULL: no gate */
};

/*
 * The NetworkPolicy kage-baseline of namespace ns: selects every pod with
 * the label kage.dev/sandbox and allows nothing, so a sandbox pod is
 * isolated even while its own policy is missing. New reference (caller
 * decrefs), NULL on ENOMEM.
 */
json_t *render_baseline(const char *ns);

/*
 * The sandbox's NetworkPolicy: all ingress denied; egress to kube-dns on
 * port 53 (unless spec.egress.dns is false) and to each allow entry, with
 * CIDRs in canonical form. sandbox must have passed sandbox_validate and
 * carry metadata.name, namespace and uid. New reference, NULL on ENOMEM.
 */
json_t *render_policy(const json_t *sandbox);

/*
 * Makes the rendered policy's ownerReference to the sandbox's pod the one
 * to v1 Pod pod_name, uid pod_uid (not the controller, no
 * blockOwnerDeletion), in place of any it had: the garbage collector
 * deletes an object only once all its owners are gone, so the policy then
 * outlives the pod. pod_uid NULL or "": no reference to a pod.
 * Returns 0, or -1 on ENOMEM.
 */
int render_policy_pod_owner(json_t *policy, const char *pod_name, const char *pod_uid);

/*
 * The sandbox's pod: runtime class, hardened security context, requests =
 * limits, env, command (kept alive for exec when unset), the beforeScript
 * wrapper, labels, controller ownerReference, what the class adds (node
 * selector, tolerations, pod annotations and labels; kage's own labels
 * win), the policy gate as init container when gate_choose says so, and
 * the kage.dev/spec-hash annotation (a digest of everything else
 * rendered). New reference, NULL on ENOMEM.
 */
json_t *render_pod(const json_t *sandbox, const struct render_opts *o);

/* The spec-hash annotation of a rendered pod (never NULL for one). */
const char *render_pod_hash(const json_t *pod);

/* The shell program that runs the beforeScript, then the command. */
extern const char render_before_script_wrapper[];
/* The shell program that keeps a sandbox without a command alive. */
extern const char render_keepalive[];

#endif
