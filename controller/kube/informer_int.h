// SPDX-License-Identifier: Apache-2.0
/* informer_int.h - the state that informer.c (the cache and the informer's
 * life), informer_list.c (the paginated LIST), informer_watch.c (the WATCH
 * stream) and informer_stream.c (the streaming list) share. Not API: only
 * those four files include it. */
#ifndef KAGE_KUBE_INFORMER_INT_H
#define KAGE_KUBE_INFORMER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "kube/buf.h"
#include "kube/informer.h"

#define KEY_MAX 512 /* namespace (63) + "/" + name (253), with room */
#define RV_MAX  64

/* One cached object. key and rv point into data. */
struct cache_entry {
    const char *key; /* first: tsearch compares entries by *(const char **) */
    const char *rv;
    void *obj;
    char data[];
};

enum next_action {
    NEXT_LIST,        /* the paged LIST, from its first page */
    NEXT_WATCH,       /* the WATCH from inf->rv */
    NEXT_START,       /* the streaming list, or the paged LIST once it was refused */
    NEXT_STREAM_WAIT, /* the streaming list is open: check it is not stuck */
};

struct informer {
    struct kube_client *client;
    uv_loop_t *loop;
    struct informer_ops ops;
    struct informer_handlers h;
    void *arg;
    const struct kube_resource *res;
    char *ns;
    char *selector;
    unsigned page_size;  /* the LIST limit now: smaller after a page was too large */
    unsigned page_max;   /* the LIST limit asked for */
    size_t page_bytes;   /* max_page_bytes */
    size_t list_biggest; /* the largest page body of the LIST under way */
    unsigned min_timeout_s;
    uint64_t stall_ms;

    void *cache; /* tsearch root of struct cache_entry */
    size_t size;
    void *next; /* the tree a LIST in progress builds */
    size_t next_size;
    char rv[RV_MAX];

    struct kube_request *req; /* the LIST page or WATCH in flight */
    uv_timer_t timer;         /* backoff before the next LIST or WATCH */
    enum next_action action;
    unsigned list_attempt;
    unsigned watch_attempt;
    int want_relist;         /* the watch saw an ERROR event or a 410 */
    int initial;             /* the watch open is a streaming list before its end bookmark */
    int stream_off;          /* the server refused the streaming list: paged LISTs only */
    long stream_refused;     /* the code of an ERROR event that refused the streaming list */
    unsigned stream_attempt; /* streaming lists failed in a row */
    uint64_t stream_wait_ms;
    uint64_t start_ms;        /* uv_now at informer_start */
    uint64_t stream_start_ms; /* uv_now when the streaming list opened */
    uint64_t stream_added_ms; /* uv_now at its latest initial ADDED event */
    int synced;
    int started;
    int closing;
    uint64_t rng;
    void (*close_cb)(void *arg);
    void *close_arg;
    struct informer_stats stats;
};

/* ---- informer.c: the cache, the timer and the informer's life ---- */

/* Decodes obj into a new entry (its key, resourceVersion and the ops'
 * compact object); NULL, counted and reported, when it cannot. */
struct cache_entry *informer__decode(struct informer *inf, json_t *obj);

/* Frees e and its object; e may be NULL. */
void informer__entry_free(struct informer *inf, struct cache_entry *e);

/* The entry of key in the tree *root, or NULL. */
struct cache_entry *informer__tree_find(void *const *root, const char *key);

/* Puts e into *root. An entry of the same key is replaced and returned in
 * *old (else *old is NULL) for the caller to free. Returns 0 or -ENOMEM. */
int informer__tree_put(void **root, struct cache_entry *e, struct cache_entry **old);

/* Removes the entry of key from *root and returns it for the caller to
 * free, or NULL when there is none. */
struct cache_entry *informer__tree_take(void **root, const char *key);

/* Frees every entry of *root, which is left empty. */
void informer__tree_destroy(struct informer *inf, void **root);

/* Keeps rv as the version the next WATCH resumes from; NULL or "" is ignored. */
void informer__set_rv(struct informer *inf, const char *rv);

/* obj's metadata.resourceVersion, or "". */
const char *informer__object_rv(json_t *obj);

/* Hands a failure that is being dealt with to the on_error handler, if any. */
void informer__report(struct informer *inf, const char *what, const struct kube_error *err);

/* Starts the LIST (from its first page) or the WATCH after delay_ms. */
void informer__schedule(struct informer *inf, enum next_action action, uint64_t delay_ms);

/* Appends the path of the resource's collection, with the label selector,
 * to b. Returns 0 or a negative errno from the buffer. */
int informer__base_path(struct informer *inf, struct buf *b);

/* Starts what fills the cache afresh: the streaming list, or the paged
 * LIST when the server refused it. inf->next is emptied first. */
void informer__start(struct informer *inf);

/* ---- informer_list.c: the paginated LIST ---- */

/* The LIST (paged or streamed) in inf->next is complete: it becomes the
 * cache, the handlers hear the difference, and on_synced runs the first
 * time. */
void informer__list_complete(struct informer *inf);

/* Requests the LIST page after cont (NULL: the first page) into inf->next.
 * After the last page that tree becomes the cache, the handlers are told
 * the difference and the WATCH starts. */
void informer__list(struct informer *inf, const char *cont);

/* ---- informer_watch.c: the WATCH stream ---- */

/* Opens the WATCH from inf->rv; each event updates the cache. When it ends
 * the watch resumes, reconnects with backoff, or relists. */
void informer__watch(struct informer *inf);

/* Opens the streaming list: a WATCH with sendInitialEvents from no
 * resourceVersion. Returns 0 or a negative errno (nothing is open). */
int informer__watch_initial(struct informer *inf);

/* ---- informer_stream.c: the streaming list ---- */

/* Opens the streaming list; its initial events go into inf->next. Falls
 * back to the paged LIST when it cannot be opened after a few tries. */
void informer__stream(struct informer *inf);

/* One event of the streaming list before its end bookmark. Returns 0 to go
 * on, nonzero to drop the stream. */
int informer__stream_event(struct informer *inf, const char *type, json_t *obj);

/* The streaming list ended before its end bookmark; err as the watch's. */
void informer__stream_ended(struct informer *inf, const struct kube_error *err);

/* The timer of a streaming list that is open: falls back to the paged
 * LIST when its initial events have stopped without the end bookmark. */
void informer__stream_check(struct informer *inf);

#endif
