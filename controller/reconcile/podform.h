// SPDX-License-Identifier: Apache-2.0
/* podform.h - the fields of a pod that kage sets, in one canonical form,
 * so that a pod read from the API server and the pod kage would render
 * compare by a short digest. Pure: no I/O. */
#ifndef KAGE_PODFORM_H
#define KAGE_PODFORM_H

#include <jansson.h>

/*
 * The canonical form of pod (observed_pod_form_hash digests it): its labels, and from its spec the
 * runtime class, token automount, service links, host namespaces and host users, the pod security
 * context, restart policy, volumes, resource claims, pod-level resources, and every container, init
 * container and ephemeral container (name, image, pull policy, command, args, working directory,
 * env and envFrom, resources, security context, ports, mounts, probes, lifecycle, termination
 * message settings). What the API server fills in by default is read as its default when absent (a
 * missing hostNetwork is false, a missing automountServiceAccountToken true), quantities by value
 * ("1000m" is "1"), probes by what kage sets in them, so a pod read back digests as rendered.
 * Fields the cluster adds or owns (tolerations, node selector and name, scheduling, DNS, service
 * account name, annotations) are left out. Its digest is recorded in Sandboxes' status: any change
 * to what this reads bumps PODRECORD_VERSION (podrecord.h). New reference (caller decrefs), NULL on
 * ENOMEM.
 */
json_t *podform_of(const json_t *pod);

#endif
