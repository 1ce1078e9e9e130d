// SPDX-License-Identifier: Apache-2.0
/*
 * watchcmd.c - `kage-controller --watch RESOURCE` runs one informer and
 * prints a line per event on stdout (SYNCED, ADDED, MODIFIED, DELETED,
 * RELISTED); SIGUSR1 prints the cache. It proves the client end to end.
 */
#include "watchcmd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "log.h"

/* What the cache keeps of each object: its version and, for pods, phase. */
struct watched {
    char rv[32];
    char phase[16];
};

struct watch_state {
    uv_loop_t *loop;
    struct kube_client *client;
    struct informer *inf;
    uv_signal_t sigint, sigterm, sigusr1;
    uint64_t lists_seen;
    uint64_t streams_seen;
    int closing;
};

static void *decode(json_t *obj, char *err, size_t errlen)
{
    struct watched *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_t *md = json_object_get(obj, "metadata");
    const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
    const char *phase = json_string_value(json_object_get(json_object_get(obj, "status"), "phase"));
    snprintf(w->rv, sizeof(w->rv), "%s", rv ? rv : "");
    snprintf(w->phase, sizeof(w->phase), "%s", phase ? phase : "");
    return w;
}

static void print_obj(const char *what, const char *key, const struct watched *w)
{
    printf("%s %s rv=%s%s%s\n", what, key, w->rv, w->phase[0] ? " phase=" : "", w->phase);
}

static void on_add(void *arg, const char *key, const void *obj)
{
    (void)arg;
    print_obj("ADDED", key, obj);
}

static void on_update(void *arg, const char *key, const void *old, const void *obj)
{
    (void)arg;
    (void)old;
    print_obj("MODIFIED", key, obj);
}

static void on_delete(void *arg, const char *key, const void *obj)
{
    (void)arg;
    print_obj("DELETED", key, obj);
}

static void on_synced(void *arg)
{
    struct watch_state *s = arg;
    struct informer_stats st;
    informer_stats(s->inf, &st);
    /* The list just completed came as a streaming list when the count of
     * streamed ones moved; else as pages. */
    if (st.streams > s->streams_seen)
        printf("SYNCED %zu objects streamed rv=%s\n", informer_size(s->inf),
               informer_resource_version(s->inf));
    else
        printf("SYNCED %zu objects in %llu pages rv=%s\n", informer_size(s->inf),
               (unsigned long long)st.list_pages, informer_resource_version(s->inf));
    s->lists_seen = st.lists;
    s->streams_seen = st.streams;
}

static void on_error(void *arg, const char *what, const struct kube_error *err)
{
    struct watch_state *s = arg;
    log_warn("informer error, retrying", "{s:s, s:I, s:s, s:s}", "during", what, "code",
             (json_int_t)err->code, "reason", err->reason, "message", err->message);
    printf("ERROR %s code=%ld reason=%s\n", what, err->code, err->reason);
    (void)s;
}

static void print_entry(void *arg, const char *key, const void *obj)
{
    (void)arg;
    print_obj("CACHE", key, obj);
}

static void on_closed(void *arg)
{
    (void)arg;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct watch_state *s = h->data;
    if (signum == SIGUSR1) {
        struct informer_stats st;
        informer_stats(s->inf, &st);
        printf("CACHE-BEGIN %zu rv=%s lists=%llu relists=%llu reconnects=%llu watches=%llu\n",
               informer_size(s->inf), informer_resource_version(s->inf),
               (unsigned long long)st.lists, (unsigned long long)st.relists,
               (unsigned long long)st.reconnects, (unsigned long long)st.watches);
        informer_foreach(s->inf, print_entry, NULL);
        printf("CACHE-END\n");
        return;
    }
    if (s->closing)
        return;
    s->closing = 1;
    informer_close(s->inf, on_closed, NULL);
    kube_client_close(s->client, on_closed, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigusr1, NULL);
}

int watchcmd_run(const struct options *opts, const struct kube_config *cfg)
{
    const struct kube_resource *res = kube_resource_lookup(opts->watch);
    if (!res) {
        fprintf(stderr,
                "kage-controller: --watch: unknown resource %s (pods, networkpolicies, "
                "events, leases, configmaps, namespaces)\n",
                opts->watch);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct watch_state s = {0};
    char err[512];
    s.loop = uv_default_loop();
    if (kube_client_new(s.loop, cfg, NULL, &s.client, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s\n", err);
        return 2;
    }
    struct informer_opts io = {
        .res = res,
        .namespace = opts->namespace,
        .label_selector = opts->selector,
        .page_size = opts->page_size,
        .paged_only = opts->list_paged,
        .min_timeout_s = opts->watch_timeout_s,
    };
    static const struct informer_ops ops = {decode, free, NULL};
    struct informer_handlers h = {on_add, on_update, on_delete, on_synced, on_error};
    if (informer_new(s.client, s.loop, &io, &ops, &h, &s, &s.inf) != 0 ||
        informer_start(s.inf) != 0) {
        fprintf(stderr, "kage-controller: out of memory\n");
        return 1;
    }
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    uv_signal_init(s.loop, &s.sigusr1);
    s.sigint.data = s.sigterm.data = s.sigusr1.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigusr1, on_signal, SIGUSR1);
    log_info("watching", "{s:s, s:s, s:s}", "resource", res->resource, "server",
             kube_client_server(s.client), "config", cfg->source ? cfg->source : "");

    uv_run(s.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(s.loop);
    if (rc != 0)
        log_error("handles left open at exit", "{s:s}", "error", uv_strerror(rc));
    return rc == 0 ? 0 : 1;
}
