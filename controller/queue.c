// SPDX-License-Identifier: Apache-2.0
/*
 * queue.c - the work queue: two FIFO lanes of ready keys drained by a uv_idle
 * handle up to a concurrency bound (the finish lane first, with a bounded
 * burst), a min-heap of deadlines behind one uv_timer, and a tsearch tree
 * that owns one item per known key.
 */
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <search.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kube/backoff.h"

#define NOT_WAITING SIZE_MAX
#define NOT_ARMED   UINT64_MAX

struct item {
    struct item *next; /* in its lane's FIFO while queued */
    struct item *prev;
    size_t heap_idx;   /* in q->heap while waiting, else NOT_WAITING */
    uint64_t deadline; /* loop time it is due, while waiting */
    uint64_t seq;      /* equal deadlines fire in the order they were set */
    uint64_t ready_at; /* loop time it was queued, while in the ready FIFO */
    unsigned failures;
    enum queue_lane lane; /* while queued */
    bool queued;          /* in q->ready */
    bool in_flight;       /* dispatched, queue_done not yet called */
    bool dirty;           /* added while in flight: queue again at done */
    char key[];           /* the tree holds pointers to this */
};

struct queue {
    uv_loop_t *loop;
    uv_idle_t idle;   /* active while keys can be dispatched */
    uv_timer_t timer; /* due at the earliest deadline */
    queue_work_cb work;
    void *arg;
    queue_close_cb close_cb;
    unsigned max_concurrent;
    unsigned in_flight;
    void *items; /* tsearch root; nodes point at item->key */
    size_t nitems;
    struct lane {
        struct item *head; /* FIFO of queued keys */
        struct item *tail;
        size_t n;
    } lanes[QUEUE_LANES];
    size_t nready;  /* in all lanes */
    unsigned burst; /* finish keys served in a row while a start key waited */
    queue_lane_cb lane_cb;
    void *lane_arg;
    struct item **heap; /* min-heap by (deadline, seq) */
    size_t nheap;
    size_t heap_cap; /* kept >= nitems, so a key can always start waiting */
    uint64_t armed;  /* deadline the timer is set for, or NOT_ARMED */
    uint64_t seq;
    uint64_t rng;
    uint64_t adds, retries, dispatches;
    queue_wait_cb wait_cb;
    void *wait_arg;
    int closes_pending;
    bool shut_down;
    bool closing;
};

static struct item *item_of(const void *key)
{
    return (struct item *)((const char *)key - offsetof(struct item, key));
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static struct item *find(const struct queue *q, const char *key)
{
    void *const *node = tfind(key, &q->items, key_cmp);
    return node ? item_of(*node) : NULL;
}

/* Returns the item of key, creating it; NULL on ENOMEM. */
static struct item *get_item(struct queue *q, const char *key, size_t len)
{
    struct item *it = find(q, key);
    if (it)
        return it;

    if (q->heap_cap < q->nitems + 1) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(*q->heap))
            return NULL;
        struct item **heap = realloc(q->heap, cap * sizeof(*heap));
        if (!heap)
            return NULL;
        q->heap = heap;
        q->heap_cap = cap;
    }
    it = calloc(1, sizeof(*it) + len + 1);
    if (!it)
        return NULL;
    memcpy(it->key, key, len + 1);
    it->heap_idx = NOT_WAITING;
    if (!tsearch(it->key, &q->items, key_cmp)) {
        free(it);
        return NULL;
    }
    q->nitems++;
    return it;
}

/* Frees it once nothing refers to it: neither queued, in flight, waiting,
 * nor remembered for its failures. */
static void maybe_free(struct queue *q, struct item *it)
{
    if (it->queued || it->in_flight || it->heap_idx != NOT_WAITING || it->failures)
        return;
    tdelete(it->key, &q->items, key_cmp);
    q->nitems--;
    free(it);
}

static bool heap_before(const struct item *a, const struct item *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct queue *q, size_t i, struct item *it)
{
    q->heap[i] = it;
    it->heap_idx = i;
}

static void sift_up(struct queue *q, size_t i)
{
    struct item *it = q->heap[i];
    while (i > 0 && heap_before(it, q->heap[(i - 1) / 2])) {
        heap_set(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(q, i, it);
}

static void sift_down(struct queue *q, size_t i)
{
    struct item *it = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nheap)
            break;
        if (c + 1 < q->nheap && heap_before(q->heap[c + 1], q->heap[c]))
            c++;
        if (!heap_before(q->heap[c], it))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, it);
}

static struct item *heap_pop(struct queue *q)
{
    struct item *top = q->heap[0];
    top->heap_idx = NOT_WAITING;
    if (--q->nheap > 0) {
        heap_set(q, 0, q->heap[q->nheap]);
        sift_down(q, 0);
    }
    return top;
}

static void on_timer(uv_timer_t *timer);
static void on_idle(uv_idle_t *idle);

/* Points the timer at the earliest deadline, or stops it. */
static void timer_arm(struct queue *q)
{
    if (q->nheap == 0) {
        if (q->armed != NOT_ARMED)
            uv_timer_stop(&q->timer);
        q->armed = NOT_ARMED;
        return;
    }
    uint64_t due = q->heap[0]->deadline;
    if (due == q->armed)
        return;
    uint64_t now = uv_now(q->loop);
    uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
    q->armed = due;
}

/* Sets key's deadline to `deadline` unless it already has an earlier one.
 * Cannot fail: heap_cap >= nitems. */
static void wait_until(struct queue *q, struct item *it, uint64_t deadline)
{
    if (it->heap_idx != NOT_WAITING) {
        if (deadline >= it->deadline)
            return;
        it->deadline = deadline;
        sift_up(q, it->heap_idx);
    } else {
        it->deadline = deadline;
        it->seq = q->seq++;
        heap_set(q, q->nheap++, it);
        sift_up(q, it->heap_idx);
    }
    timer_arm(q);
}

/* Starts the dispatcher when a key can be handed out. */
static void kick(struct queue *q)
{
    if (!q->shut_down && q->nready > 0 && q->in_flight < q->max_concurrent)
        uv_idle_start(&q->idle, on_idle);
}

static enum queue_lane lane_of(struct queue *q, const struct item *it)
{
    enum queue_lane l = q->lane_cb ? q->lane_cb(q->lane_arg, it->key) : QUEUE_LANE_START;
    return l == QUEUE_LANE_FINISH ? QUEUE_LANE_FINISH : QUEUE_LANE_START;
}

static void lane_append(struct queue *q, struct item *it, enum queue_lane l)
{
    struct lane *ln = &q->lanes[l];
    it->lane = l;
    it->next = NULL;
    it->prev = ln->tail;
    if (ln->tail)
        ln->tail->next = it;
    else
        ln->head = it;
    ln->tail = it;
    ln->n++;
}

static void lane_unlink(struct queue *q, struct item *it)
{
    struct lane *ln = &q->lanes[it->lane];
    if (it->prev)
        it->prev->next = it->next;
    else
        ln->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        ln->tail = it->prev;
    it->next = it->prev = NULL;
    ln->n--;
}

static void push_ready(struct queue *q, struct item *it)
{
    it->queued = true;
    it->ready_at = uv_now(q->loop);
    lane_append(q, it, lane_of(q, it));
    q->nready++;
    kick(q);
}

/* A queued key added again may have begun something since: it moves up to
 * the finish lane (keeping its place in time for the wait it reports). */
static void maybe_promote(struct queue *q, struct item *it)
{
    if (it->lane == QUEUE_LANE_FINISH || lane_of(q, it) != QUEUE_LANE_FINISH)
        return;
    lane_unlink(q, it);
    lane_append(q, it, QUEUE_LANE_FINISH);
}

/* The finish lane first, but while a start key waits, at most
 * QUEUE_FINISH_BURST finish keys in a row: a start key at the head of its
 * lane is served after at most that many others. */
static struct item *pop_ready(struct queue *q)
{
    struct lane *fin = &q->lanes[QUEUE_LANE_FINISH], *start = &q->lanes[QUEUE_LANE_START];
    struct item *it;
    if (fin->n > 0 && (start->n == 0 || q->burst < QUEUE_FINISH_BURST)) {
        it = fin->head;
        if (start->n > 0)
            q->burst++;
    } else {
        it = start->head;
        q->burst = 0;
    }
    lane_unlink(q, it);
    q->nready--;
    it->queued = false;
    return it;
}

/* The add of client-go: dirty if in flight, else queued unless already. */
static void enqueue(struct queue *q, struct item *it)
{
    if (it->in_flight) {
        if (!it->dirty)
            q->adds++;
        it->dirty = true;
    } else if (!it->queued) {
        q->adds++;
        push_ready(q, it);
    } else {
        maybe_promote(q, it);
    }
}

static void on_timer(uv_timer_t *timer)
{
    struct queue *q = timer->data;
    uint64_t now = uv_now(q->loop);

    q->armed = NOT_ARMED;
    while (q->nheap > 0 && q->heap[0]->deadline <= now) {
        struct item *it = heap_pop(q);
        enqueue(q, it);
        /* Its wait counts from its deadline: a loop running late shows. */
        if (it->queued)
            it->ready_at = it->deadline;
    }
    timer_arm(q);
}

static void on_idle(uv_idle_t *idle)
{
    struct queue *q = idle->data;

    /* Only the keys queued before this turn: a key that work re-adds at once
     * waits for the next turn, so the loop never spins inside this callback. */
    size_t batch = q->nready;
    while (batch-- > 0 && q->nready > 0 && !q->shut_down && q->in_flight < q->max_concurrent) {
        struct item *it = pop_ready(q);
        if (q->wait_cb)
            q->wait_cb(q->wait_arg, uv_now(q->loop) - it->ready_at);
        it->in_flight = true;
        q->in_flight++;
        q->dispatches++;
        /* it may be freed inside: a synchronous queue_done. */
        q->work(q, it->key, q->arg);
    }
    if (q->shut_down || q->nready == 0 || q->in_flight >= q->max_concurrent)
        uv_idle_stop(&q->idle);
}

static int check_key(const char *key, size_t *len)
{
    if (!key)
        return -EINVAL;
    *len = strnlen(key, QUEUE_KEY_MAX + 1);
    return *len == 0 || *len > QUEUE_KEY_MAX ? -EINVAL : 0;
}

static void on_new_failed(uv_handle_t *handle)
{
    free(handle->data);
}

struct queue *queue_new(uv_loop_t *loop, unsigned max_concurrent, queue_work_cb work, void *arg)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->work = work;
    q->arg = arg;
    q->max_concurrent = max_concurrent ? max_concurrent : 1;
    q->armed = NOT_ARMED;
    q->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)q;
    if (uv_timer_init(loop, &q->timer) != 0) {
        free(q);
        return NULL;
    }
    q->timer.data = q;
    if (uv_idle_init(loop, &q->idle) != 0) {
        /* Cannot happen with libuv 1.x; if it did, the timer must close first. */
        uv_close((uv_handle_t *)&q->timer, on_new_failed);
        return NULL;
    }
    q->idle.data = q;
    return q;
}

int queue_add(struct queue *q, const char *key)
{
    size_t len;
    int rc = check_key(key, &len);
    if (rc)
        return rc;
    if (q->shut_down)
        return -ESHUTDOWN;
    struct item *it = get_item(q, key, len);
    if (!it)
        return -ENOMEM;
    enqueue(q, it);
    return 0;
}

int queue_add_after(struct queue *q, const char *key, uint64_t delay_ms)
{
    if (delay_ms == 0)
        return queue_add(q, key);

    size_t len;
    int rc = check_key(key, &len);
    if (rc)
        return rc;
    if (q->shut_down)
        return -ESHUTDOWN;
    struct item *it = get_item(q, key, len);
    if (!it)
        return -ENOMEM;
    uint64_t now = uv_now(q->loop);
    wait_until(q, it, delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms);
    return 0;
}

static void free_node(void *key)
{
    free(item_of(key));
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct queue *q = handle->data;
    if (--q->closes_pending > 0)
        return;
    /* Every item not in flight went at shutdown, and none is in flight now;
     * tdestroy is the safety net. */
    tdestroy(q->items, free_node);
    free(q->heap);
    if (q->close_cb)
        q->close_cb(q, q->arg);
    free(q);
}

static void close_handles(struct queue *q)
{
    q->closes_pending = 2;
    uv_close((uv_handle_t *)&q->idle, on_handle_closed);
    uv_close((uv_handle_t *)&q->timer, on_handle_closed);
}

void queue_done(struct queue *q, const char *key, struct outcome o)
{
    struct item *it = key ? find(q, key) : NULL;
    if (!it || !it->in_flight)
        return;
    it->in_flight = false;
    q->in_flight--;

    if (q->shut_down) {
        it->dirty = false;
        it->failures = 0;
        maybe_free(q, it);
        if (q->closing && q->in_flight == 0)
            close_handles(q);
        return;
    }

    uint64_t now = uv_now(q->loop);
    if (o.kind == OUTCOME_RETRY) {
        uint64_t delay = backoff_delay_ms(it->failures, QUEUE_BACKOFF_BASE_MS, QUEUE_BACKOFF_MAX_MS,
                                          backoff_rand(&q->rng));
        if (it->failures < UINT_MAX)
            it->failures++;
        q->retries++;
        wait_until(q, it, now + delay);
    } else {
        it->failures = 0;
        if (o.kind == OUTCOME_AFTER)
            wait_until(q, it, now + o.after_ms);
    }
    if (it->dirty) {
        /* Counted as an add when it was marked. */
        it->dirty = false;
        push_ready(q, it);
    }
    kick(q);
    maybe_free(q, it);
}

void queue_on_lane(struct queue *q, queue_lane_cb cb, void *arg)
{
    q->lane_cb = cb;
    q->lane_arg = arg;
}

unsigned queue_in_flight(const struct queue *q)
{
    return q->in_flight;
}

unsigned queue_num_requeues(const struct queue *q, const char *key)
{
    const struct item *it = key ? find(q, key) : NULL;
    return it ? it->failures : 0;
}

int queue_deadline(const struct queue *q, const char *key, uint64_t *deadline_ms)
{
    const struct item *it = key ? find(q, key) : NULL;
    if (!it || it->heap_idx == NOT_WAITING)
        return -ENOENT;
    *deadline_ms = it->deadline;
    return 0;
}

void queue_on_wait(struct queue *q, queue_wait_cb cb, void *arg)
{
    q->wait_cb = cb;
    q->wait_arg = arg;
}

void queue_get_stats(const struct queue *q, struct queue_stats *st)
{
    st->adds = q->adds;
    st->retries = q->retries;
    st->dispatches = q->dispatches;
    st->depth = q->nready;
    for (int l = 0; l < QUEUE_LANES; l++)
        st->depth_lane[l] = q->lanes[l].n;
    st->waiting = q->nheap;
    st->in_flight = q->in_flight;
}

void queue_shutdown(struct queue *q)
{
    if (q->shut_down)
        return;
    q->shut_down = true;
    uv_idle_stop(&q->idle);
    uv_timer_stop(&q->timer);
    q->armed = NOT_ARMED;

    struct item *it;
    while (q->nready > 0) {
        it = pop_ready(q);
        it->failures = 0;
        maybe_free(q, it);
    }
    while (q->nheap > 0) {
        it = q->heap[--q->nheap];
        it->heap_idx = NOT_WAITING;
        it->failures = 0;
        maybe_free(q, it);
    }
}

void queue_close(struct queue *q, queue_close_cb close_cb)
{
    if (q->closing)
        return;
    q->closing = true;
    q->close_cb = close_cb;
    queue_shutdown(q);
    if (q->in_flight == 0)
        close_handles(q);
}
