// SPDX-License-Identifier: Apache-2.0
/* nsindex.h - the keys ("namespace/name") of the cached Sandboxes by
 * namespace, so that an event about a namespace (its baseline policy, a
 * policy not kage's, its labels, freed quota) looks at that namespace's
 * Sandboxes only, not at every Sandbox in the cache. */
#ifndef KAGE_NSINDEX_H
#define KAGE_NSINDEX_H

#include <stdbool.h>
#include <stddef.h>

struct nsindex;

/* A new, empty index; NULL on ENOMEM. */
struct nsindex *nsindex_new(void);

/* Frees x and every key it holds (NULL is ignored). */
void nsindex_free(struct nsindex *x);

/* Adds key (copied; an existing key is kept once). Returns 0, -EINVAL for
 * a key without a '/', or -ENOMEM; after -ENOMEM, nsindex_complete says
 * false until the index is freed. */
int nsindex_add(struct nsindex *x, const char *key);

/* Removes key (an unknown key is ignored). */
void nsindex_remove(struct nsindex *x, const char *key);

/* Whether every key added is held (no add lost to ENOMEM). When false, a
 * caller must find a namespace's Sandboxes some other way. */
bool nsindex_complete(const struct nsindex *x);

/* Calls cb(arg, key) for each key of namespace ns (nslen bytes, not
 * necessarily terminated), in the order of their names; cb must not add or
 * remove keys. Returns the number of calls. */
size_t nsindex_foreach(const struct nsindex *x, const char *ns, size_t nslen,
                       void (*cb)(void *arg, const char *key), void *arg);

#endif
