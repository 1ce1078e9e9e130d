// SPDX-License-Identifier: Apache-2.0
/* gate.h - the policy gate: an init container (kage-gate, from the
 * controller's own image) that holds a sandbox's code back until the
 * node enforces the pod's NetworkPolicy, seen as connects to a canary
 * (the Kubernetes API service) failing. Which pods get it and its shape.
 * Pure: no I/O. */
#ifndef KAGE_GATE_H
#define KAGE_GATE_H

#include <stdbool.h>

#include <jansson.h>

#define GATE_CONTAINER_NAME "kage-gate"
#define GATE_BINARY         "/kage-gate"
#define GATE_DEADLINE_S     60
#define GATE_HOST_MAX       64

/* What the controller knows for the gate. */
struct gate_config {
    const char *image;               /* the kage-gate image; NULL or "": no gate at all */
    char canary_host[GATE_HOST_MAX]; /* the API service address the pods get as
                                        KUBERNETES_SERVICE_HOST; "" when unknown */
    int canary_port;                 /* its port; 0 when unknown */
};

enum gate_choice {
    GATE_ADD,          /* the pod gets the gate */
    GATE_UNCONFIGURED, /* the controller has no gate image */
    GATE_DISABLED,     /* the class's spec.egress.policyGate is Disabled */
    GATE_COVERED,      /* the egress allow list reaches the canary: the gate cannot tell */
};

/*
 * Whether TCP to host:port passes the egress allow list of sandbox (a
 * validated Sandbox as its class shaped it: denied ranges already in each
 * entry's except list): some entry's cidr holds host, no except entry
 * does, and the entry has no ports or one whose protocol is TCP (or unset)
 * and whose port (to endPort) takes port. The DNS rule selects kube-dns
 * pods, never a service address, so it is not counted. host is an IPv4 or
 * IPv6 literal; false for anything else.
 */
bool gate_allow_list_reaches(const json_t *sandbox, const char *host, int port);

/*
 * Whether the pod of sandbox gets the gate: not when g (may be NULL) has
 * no image, nor when the class (class_spec, may be NULL) says spec.egress.policyGate Disabled;
 * not when the canary is known and the allow list reaches it (the gate
 * would wait for a block that never comes); else it does, also when the
 * canary is unknown (the gate then reads the pod's own environment).
 */
enum gate_choice gate_choose(const json_t *sandbox, const json_t *class_spec,
                             const struct gate_config *g);

/*
 * The gate's init container: image g->image, pull policy the class's
 * imagePullPolicy (IfNotPresent when unset), the sandbox container's
 * resources and security context (copied, so the pod's effective requests
 * stay the sandbox's and it passes restricted Pod Security), the
 * termination message where the kubelet reads it. New reference, NULL on
 * ENOMEM.
 */
json_t *gate_container(const struct gate_config *g, const json_t *class_spec,
                       const json_t *sandbox_container);

#endif
