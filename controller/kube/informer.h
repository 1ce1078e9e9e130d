// SPDX-License-Identifier: Apache-2.0
/* informer.h - a cache of one resource kept in step with the API server by
 * a streaming list (a WATCH that starts with the current objects), or a
 * paginated LIST where the server refuses that, and a resumable WATCH, with
 * add/update/delete handlers. */
#ifndef KAGE_INFORMER_H
#define KAGE_INFORMER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "kube/client.h"
#include "kube/path.h"

struct informer;

/* How objects of the resource become cache entries. */
struct informer_ops {
    /*
     * Decodes one API object into a compact, self-contained struct holding
     * only the fields the controller reads (one allocation, ideally). The
     * informer owns the result and frees it with free_obj. Returns NULL and
     * one line in err when the object cannot be decoded; it is then left
     * out of the cache (counted and logged by the caller).
     */
    void *(*decode)(json_t *obj, char *err, size_t errlen);
    void (*free_obj)(void *obj);
    /*
     * Member names decode never reads, at any depth (NULL-terminated), cut
     * from each LIST page and watch event before it is parsed: parsing is
     * most of the cost of an event, and most of a pod is never read. NULL:
     * only managedFields. A list given replaces that default, so it names
     * managedFields too. It must not name anything a LIST or event carries
     * that the informer reads (metadata, resourceVersion, continue, items,
     * type, object, kind).
     */
    const char *const *strip;
};

/* Called from the loop; objects are borrowed for the call only. old is the
 * cached state before the change. Any handler may be NULL. */
struct informer_handlers {
    void (*on_add)(void *arg, const char *key, const void *obj);
    void (*on_update)(void *arg, const char *key, const void *old, const void *obj);
    void (*on_delete)(void *arg, const char *key, const void *obj);
    void (*on_synced)(void *arg); /* once, after the first complete LIST (the
                                     streaming list's end bookmark, or the last
                                     page), or after a LIST answered 404 (the
                                     resource type is not installed: the cache
                                     is empty, and the LIST is retried until it
                                     appears) */
    /* Something went wrong and is being retried (for logs); may be NULL. */
    void (*on_error)(void *arg, const char *what, const struct kube_error *err);
};

struct informer_opts {
    const struct kube_resource *res;
    const char *namespace;      /* NULL or "": every namespace */
    const char *label_selector; /* NULL: no selector */
    unsigned page_size;         /* LIST limit; 0 = 250 */
    size_t max_page_bytes;      /* largest LIST page taken, 0 = the client's bound: a page
                                   past it is asked for again in fewer objects */
    unsigned min_timeout_s;     /* watch timeoutSeconds drawn from [min, 2*min); 0 = 300 */
    uint64_t stall_ms;          /* drop a silent watch after this; 0 = 90 s */
    uint64_t stream_wait_ms;    /* a streaming list whose initial events stop this long
                                   without its end bookmark (or last ten times this in
                                   all) is given up for the paged LIST; 0 = 10 s */
    bool paged_only;            /* never the streaming list: the paged LIST from the start */
};

struct informer_stats {
    uint64_t lists; /* complete LISTs, streamed or paged */
    uint64_t list_pages;
    uint64_t relists; /* LISTs after the first: 410, ERROR events */
    uint64_t watches; /* WATCH requests opened */
    uint64_t events;  /* ADDED, MODIFIED, DELETED applied */
    uint64_t bookmarks;
    uint64_t decode_errors;
    uint64_t reconnects; /* watches reopened after an error */
    uint64_t streams;    /* complete LISTs that came as a streaming list */
};

/*
 * Creates an informer over client; strings in o are copied. Starts nothing.
 * Returns 0 and *out, or -ENOMEM / -EINVAL.
 */
int informer_new(struct kube_client *client, uv_loop_t *loop, const struct informer_opts *o,
                 const struct informer_ops *ops, const struct informer_handlers *h, void *arg,
                 struct informer **out);

/* Starts the first LIST: the streaming list (a WATCH with
 * sendInitialEvents), or the paged LIST once the server refused it. Returns
 * 0 or a negative errno. */
int informer_start(struct informer *inf);

/* The cached object for key ("namespace/name", or "name" when
 * cluster-scoped), or NULL. */
const void *informer_get(const struct informer *inf, const char *key);

/* Calls cb for every cached object, in key order. cb must not change the
 * informer. */
void informer_foreach(const struct informer *inf,
                      void (*cb)(void *arg, const char *key, const void *obj), void *arg);

size_t informer_size(const struct informer *inf);
/* The resourceVersion the next WATCH resumes from ("" before the first LIST). */
const char *informer_resource_version(const struct informer *inf);
void informer_stats(const struct informer *inf, struct informer_stats *out);

/* Stops the informer, frees the cache; cb(arg) runs once all is released.
 * No handler runs after this call. */
void informer_close(struct informer *inf, void (*cb)(void *arg), void *arg);

/* Applies one watch event line as if it came from the stream; returns what
 * the stream handler returns (0 = go on). Internal: for benchmarks and
 * tests that measure the cache without a server. */
int informer__feed(struct informer *inf, char *line, size_t len);

/* Builds the cache key of an API object from its metadata into out.
 * Returns 0, or -EINVAL when metadata.name is missing or the key does not
 * fit. Exposed for decoders and tests. */
int informer_key(json_t *obj, char *out, size_t outlen);

#endif
