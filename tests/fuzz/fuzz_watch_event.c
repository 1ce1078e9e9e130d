// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_watch_event.c - watch event lines through the informer's stream
 * handler into a pod cache (a client that never connects: nothing is
 * sent), then both closed on a loop that must end clean; and the
 * managedFields stripper on the raw input against a full parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "kube/jsonscan.h"
#include "kube/path.h"
#include "reconcile/observed.h"

#include "fuzz.h"

struct counts {
    size_t adds, updates, deletes, errors, closed;
    size_t listed;
    const char *last_key;
};

static void on_add(void *arg, const char *key, const void *obj)
{
    struct counts *c = arg;
    FUZZ_CHECK(key && key[0] && obj);
    c->adds++;
}

static void on_update(void *arg, const char *key, const void *old, const void *obj)
{
    struct counts *c = arg;
    FUZZ_CHECK(key && key[0] && old && obj);
    c->updates++;
}

static void on_delete(void *arg, const char *key, const void *obj)
{
    struct counts *c = arg;
    FUZZ_CHECK(key && key[0] && obj);
    c->deletes++;
}

static void on_error(void *arg, const char *what, const struct kube_error *err)
{
    struct counts *c = arg;
    FUZZ_CHECK(what && err);
    /* Loggable whatever the line held: the parser's own error quotes it. */
    FUZZ_CHECK(fuzz_str_ok(err->reason, sizeof(err->reason)));
    FUZZ_CHECK(fuzz_str_ok(err->message, sizeof(err->message)));
    c->errors++;
}

static void on_closed(void *arg)
{
    ((struct counts *)arg)->closed++;
}

/* The cache is walked in strictly increasing key order. */
static void visit(void *arg, const char *key, const void *obj)
{
    struct counts *c = arg;
    FUZZ_CHECK(obj != NULL);
    FUZZ_CHECK(!c->last_key || strcmp(c->last_key, key) < 0);
    c->last_key = key;
    c->listed++;
}

/* Removes every "managedFields" member, at any depth, as the stripper
 * should have. */
static void drop_managed_fields(json_t *v)
{
    if (json_is_object(v)) {
        json_object_del(v, "managedFields");
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            drop_managed_fields(m);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            drop_managed_fields(m);
        }
    }
}

/* jsonscan_strip_managed_fields on the raw input: in bounds always, and on
 * well-formed JSON the same as removing the members from the parsed tree.
 * (A key spelt with escapes, "managed\u0046ields", is left for the parser:
 * the scan compares bytes. Harmless, so both sides drop those.) */
static void check_strip(const uint8_t *data, size_t size)
{
    char *buf = fuzz_dup0(data, size);
    size_t len = size;
    int removed = jsonscan_strip_managed_fields(buf, &len);
    FUZZ_CHECK(removed >= 0 && len <= size);
    if (removed == 0)
        FUZZ_CHECK(len == size && memcmp(buf, data, size) == 0);

    json_t *orig = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (orig) {
        json_t *stripped = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
        FUZZ_CHECK(stripped != NULL);
        drop_managed_fields(orig);
        drop_managed_fields(stripped);
        FUZZ_CHECK(json_equal(orig, stripped));
        /* Nothing is left to strip. */
        size_t again = len;
        FUZZ_CHECK(jsonscan_strip_managed_fields(buf, &again) == 0 && again == len);
        json_decref(stripped);
        json_decref(orig);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_strip(data, size);

    uv_loop_t loop;
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    struct kube_config cfg = {0};
    cfg.server = "https://127.0.0.1:1";
    struct kube_client *client;
    char err[256];
    FUZZ_CHECK(kube_client_new(&loop, &cfg, NULL, &client, err, sizeof(err)) == 0);

    static const struct informer_ops ops = {observed_decode_pod, free, observed_pod_unread};
    static const struct informer_handlers h = {on_add, on_update, on_delete, NULL, on_error};
    struct informer_opts o = {.res = &KUBE_PODS};
    struct counts c = {0};
    struct informer *inf;
    FUZZ_CHECK(informer_new(client, &loop, &o, &ops, &h, &c, &inf) == 0);

    /* Each line as the framer hands it over: its own writable buffer,
     * NUL-terminated, without the '\n'. The stream is not dropped on a
     * nonzero return, so that later lines still run. */
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        if (n > 0) {
            char *line = fuzz_dup0(data + pos, n);
            informer__feed(inf, line, n);
            free(line);
        }
        pos += n + 1;
    }

    FUZZ_CHECK(informer_size(inf) == c.adds - c.deletes);
    informer_foreach(inf, visit, &c);
    FUZZ_CHECK(c.listed == informer_size(inf));
    const char *rv = informer_resource_version(inf);
    FUZZ_CHECK(rv && strlen(rv) < 64);
    struct informer_stats st;
    informer_stats(inf, &st);
    FUZZ_CHECK(st.events == c.adds + c.updates + c.deletes);

    informer_close(inf, on_closed, &c);
    kube_client_close(client, on_closed, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    FUZZ_CHECK(c.closed == 2);
    FUZZ_CHECK(uv_loop_close(&loop) == 0);
    return 0;
}
