// SPDX-License-Identifier: Apache-2.0
/* ledger.h - kage's memory of its own writes until its watches show them:
 * one struct sbx_memory per Sandbox, and per namespace the baseline policy
 * it wrote and whether a sandbox there waits for quota. */
#ifndef KAGE_LEDGER_H
#define KAGE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconcile/memory.h"

struct ledger;

/* A new, empty ledger; NULL on ENOMEM. Free with ledger_free. */
struct ledger *ledger_new(void);
void ledger_free(struct ledger *l);

/* The memory of Sandbox key ("namespace/name"), created when create is
 * set. NULL when absent or on ENOMEM. Owned by the ledger. */
struct sbx_memory *ledger_sandbox(struct ledger *l, const char *key, bool create);

/* Forgets Sandbox key (it is gone). */
void ledger_forget(struct ledger *l, const char *key);

/* Namespace marks; ns is the namespace name, ns[0..len) where a length is
 * taken. now is loop time in ms. */
bool ledger_baseline_recent(const struct ledger *l, const char *ns, uint64_t now, uint64_t within);
void ledger_baseline_written(struct ledger *l, const char *ns, uint64_t now);
void ledger_baseline_seen(struct ledger *l, const char *ns, size_t len);
void ledger_quota_waiting(struct ledger *l, const char *ns);
/* Counts the NetworkPolicies not kage's own in ns[0..len): delta +1 or -1. */
void ledger_foreign_count(struct ledger *l, const char *ns, size_t len, int delta);
/* How many NetworkPolicies not kage's own namespace ns holds (at least 1
 * for every namespace once a count was lost to ENOMEM). */
unsigned long ledger_foreign_policies(const struct ledger *l, const char *ns);

/* Takes the quota mark of ns[0..len) off; true when it had one. */
bool ledger_quota_release(struct ledger *l, const char *ns, size_t len);

#endif
