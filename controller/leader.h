// SPDX-License-Identifier: Apache-2.0
/* leader.h - leader election on a coordination.k8s.io/v1 Lease, so that of
 * several replicas only one reconciles, and a standby takes over within the
 * lease duration when the leader dies. */
#ifndef KAGE_LEADER_H
#define KAGE_LEADER_H

#include <stdbool.h>

#include <uv.h>

#include "kube/client.h"

struct leader;

struct leader_opts {
    const char *ns;            /* namespace of the Lease */
    const char *name;          /* the Lease's name */
    const char *identity;      /* this replica's holderIdentity */
    unsigned lease_s;          /* leaseDurationSeconds; 0 = 15 */
    unsigned renew_deadline_s; /* leadership is given up when renewal fails this long; 0 = 10 */
    unsigned retry_s;          /* seconds between tries and renewals; 0 = 2 */
};

/* Called on the loop when this replica starts (true) or stops (false)
 * leading. After false it never leads again: the process should exit. */
typedef void (*leader_cb)(void *arg, bool leading);

/* Starts contending for the Lease (strings are copied). Returns 0 or a
 * negative errno (cb is then never called). */
int leader_start(struct kube_client *client, uv_loop_t *loop, const struct leader_opts *o,
                 leader_cb cb, void *arg, struct leader **out);

/* Stops contending; if leading, releases the Lease first (holder cleared,
 * duration 1 s) so a standby takes over at once. done(arg) runs when all is
 * released; the leader callback is not called again. */
void leader_close(struct leader *l, void (*done)(void *arg), void *arg);

/* Writes the current UTC time as a Kubernetes MicroTime
 * ("2026-11-28T10:00:00.123456Z") into out (at least 28 bytes). */
void leader_micro_time(char *out, size_t outlen);

#endif
