// SPDX-License-Identifier: Apache-2.0
/*
 * controller.c - wires the Sandbox controller together: one API client,
 * informers on Sandboxes and on the pods and policies kage manages, a work
 * queue keyed by Sandbox, and an orderly stop on SIGTERM/SIGINT.
 */
#include "controller.h"

#include <errno.h>
#include <malloc.h>
#include <search.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/random.h>
#include <unistd.h>

#include "httpd.h"
#include "kube/informer.h"
#include "kube/path.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "nsindex.h"
#include "reconcile/class.h"
#include "reconcile/observed.h"
#include "reconcile/selector.h"
#include "workers.h"

#define INFORMERS 6

/* The controller: private to this file. A reconcile sees it only through
 * the sync_env below. */
struct ctl {
    uv_loop_t *loop;
    struct kube_client *client;
    struct informer *sandboxes;
    struct informer *pods;
    struct informer *policies;
    struct informer *classes;
    struct informer *namespaces;
    struct informer *all_policies; /* every NetworkPolicy: those not kage's may select its pods */
    struct nsindex *by_ns;         /* the cached Sandboxes' keys by namespace */
    struct workers *workers; /* reconciling starts once every cache has synced (and we lead) */
    struct httpd *http;
    struct httpd *probes; /* the kubelet's: apart from /metrics, which anyone may scrape */
    struct leader *leader;
    struct controller_opts opts;
    char identity[160]; /* this replica: reportingInstance, holderIdentity */
    unsigned synced;
    bool leading;
    bool stopping;
    int exit_code;
    uv_signal_t sigint;
    uv_signal_t sigterm;
};

/* ---- events to keys -------------------------------------------------- */

static void enqueue(struct ctl *c, const char *key)
{
    if (!c->stopping)
        workers_add(c->workers, key);
}

static void on_sandbox(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    nsindex_add(c->by_ns, key); /* lost to ENOMEM: namespaces walk the cache */
    workers_sandbox_added(c->workers, key, obj);
    enqueue(c, key);
}

/* Updates that change only metadata kage does not read, or that only echo
 * the status kage itself just wrote, need no reconcile. */
static void on_sandbox_update(void *arg, const char *key, const void *old, const void *obj)
{
    struct ctl *c = arg;
    const struct sandbox_obj *a = old, *b = obj;
    struct sbx_memory *st = ledger_sandbox(workers_ledger(c->workers), key, false);
    bool echo = st && st->last_status && observed_sandbox_status_is(b, st->last_status);
    bool status_same = strcmp(a->status_digest, b->status_digest) == 0;
    if (!echo && st && st->last_status && !status_same) {
        /* Someone else wrote the status: what kage wrote is no longer
         * there, so the next reconcile must not skip writing it again. */
        free(st->last_status);
        st->last_status = NULL;
    }
    if (a->generation == b->generation && a->deleting == b->deleting &&
        strcmp(a->spec_digest, b->spec_digest) == 0 && (status_same || echo))
        return; /* nothing kage reads changed, or only our own write came back */
    enqueue(c, key);
}

static void on_sandbox_delete(void *arg, const char *key, const void *obj)
{
    (void)obj;
    struct ctl *c = arg;
    nsindex_remove(c->by_ns, key);
    ledger_forget(workers_ledger(c->workers), key);
}

/* A child's event concerns the Sandbox named by its kage.dev/sandbox label. */
static void enqueue_owner(struct ctl *c, const char *key, const char *sandbox)
{
    const char *slash = strchr(key, '/');
    char owner[QUEUE_KEY_MAX + 1];
    if (!slash || !sandbox[0])
        return;
    int n = snprintf(owner, sizeof(owner), "%.*s/%s", (int)(slash - key), key, sandbox);
    if (n > 0 && (size_t)n < sizeof(owner))
        enqueue(c, owner);
}

static void on_pod(void *arg, const char *key, const void *obj)
{
    /* kage names each pod after its Sandbox; the label normally agrees,
     * unless someone changed it, and then both Sandboxes must look. */
    const struct pod_obj *p = obj;
    const char *slash = strchr(key, '/');
    enqueue(arg, key);
    if (slash && strcmp(slash + 1, p->sandbox) != 0)
        enqueue_owner(arg, key, p->sandbox);
}

/* The watch shows the pod: a write of ours no longer stands in for it, so
 * that its later deletion is seen as one. */
static void on_pod_seen(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    struct sbx_memory *st = ledger_sandbox(workers_ledger(c->workers), key, false);
    if (st)
        st->pod_at = 0;
    on_pod(arg, key, obj);
}

static void on_pod_update(void *arg, const char *key, const void *old, const void *obj)
{
    if (observed_pod_same(old, obj))
        return; /* nothing the reconciler reads changed (a heartbeat, say) */
    on_pod_seen(arg, key, obj);
}

struct ns_walk {
    struct ctl *c;
    const char *ns; /* not terminated */
    size_t len;
    bool podless; /* only Sandboxes without a pod */
};

static void enqueue_walked(void *arg, const char *key)
{
    struct ns_walk *w = arg;
    if (!w->podless || !informer_get(w->c->pods, key))
        enqueue(w->c, key);
}

static void enqueue_cached(void *arg, const char *key, const void *obj)
{
    (void)obj;
    struct ns_walk *w = arg;
    if (strncmp(key, w->ns, w->len) == 0 && key[w->len] == '/')
        enqueue_walked(arg, key);
}

/* The Sandboxes of namespace ns (len bytes), or its podless ones, look again:
 * from the index, or the whole cache if the index lost a key to ENOMEM. */
static void enqueue_ns(struct ctl *c, const char *ns, size_t len, bool podless)
{
    struct ns_walk w = {c, ns, len, podless};
    if (nsindex_complete(c->by_ns))
        nsindex_foreach(c->by_ns, ns, len, enqueue_walked, &w);
    else
        informer_foreach(c->sandboxes, enqueue_cached, &w);
}

static void on_policy(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    const struct policy_obj *p = obj;
    const char *slash = strchr(key, '/');
    if (slash && strcmp(slash + 1, BASELINE_POLICY) == 0) {
        ledger_baseline_seen(workers_ledger(c->workers), key, (size_t)(slash - key));
        /* The namespace's guard changed: every sandbox there checks it. */
        enqueue_ns(c, key, (size_t)(slash - key), false);
        return;
    }
    struct sbx_memory *st = ledger_sandbox(workers_ledger(c->workers), key, false);
    if (st) {
        st->policy_at = 0;
        /* An owner update of ours stands in until the watch shows it. */
        if (strcmp(p->pod_owner_uid, st->owner_uid) == 0)
            st->owner_at = 0;
    }
    /* Named after its Sandbox; the label normally agrees, unless changed. */
    enqueue(c, key);
    if (slash && strcmp(slash + 1, p->sandbox) != 0)
        enqueue_owner(c, key, p->sandbox);
}

static void on_policy_update(void *arg, const char *key, const void *old, const void *obj)
{
    if (observed_policy_same(old, obj))
        return;
    on_policy(arg, key, obj);
}

static void enqueue_all(void *arg, const char *key, const void *obj);

/* A class changed: every Sandbox may be shaped by it (directly, or as the
 * default); classes change rarely, so all are looked at again. */
static void on_class(void *arg, const char *key, const void *obj);

static void on_class_update(void *arg, const char *key, const void *old, const void *obj)
{
    (void)old;
    on_class(arg, key, obj);
}

static void on_pod_gone(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    struct sbx_memory *st = ledger_sandbox(workers_ledger(c->workers), key, false);
    if (st)
        st->pod_at = 0; /* seen, and gone: no write of ours stands in for it */
    on_pod(arg, key, obj);
    const char *slash = strchr(key, '/');
    /* A pod went: quota it held may now admit a sandbox still without one,
     * where one waits for quota (else a mass teardown would walk the
     * namespace once per pod). Those still held mark it again. */
    if (slash && ledger_quota_release(workers_ledger(c->workers), key, (size_t)(slash - key)) &&
        workers_started(c->workers))
        enqueue_ns(c, key, (size_t)(slash - key), true);
}

static void on_informer_error(void *arg, const char *what, const struct kube_error *err)
{
    (void)arg;
    log_warn("watch trouble, retrying", "{s:s, s:I, s:s, s:s}", "during", what, "code",
             (json_int_t)err->code, "reason", err->reason, "message", err->message);
}

static void on_class(void *arg, const char *key, const void *obj)
{
    (void)key;
    (void)obj;
    struct ctl *c = arg;
    if (workers_started(c->workers))
        informer_foreach(c->sandboxes, enqueue_all, c);
}

static void enqueue_all(void *arg, const char *key, const void *obj)
{
    (void)obj;
    enqueue(arg, key);
}

/* Whether policy key (namespace/name) is not one of kage's own. */
static bool foreign_policy(const char *key, const struct policy_obj *p)
{
    const char *slash = strchr(key, '/');
    return !(p->managed && (p->owned || (slash && strcmp(slash + 1, BASELINE_POLICY) == 0)));
}

/* Every sandbox of the namespace of key looks again. */
static void enqueue_namespace_of(struct ctl *c, const char *key)
{
    const char *slash = strchr(key, '/');
    if (slash && workers_started(c->workers))
        enqueue_ns(c, key, (size_t)(slash - key), false);
}

/* A NetworkPolicy not kage's came, changed or went: it may select sandbox
 * pods of its namespace, which then look again. */
static void on_any_policy(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    if (!foreign_policy(key, obj))
        return;
    const char *slash = strchr(key, '/');
    if (slash)
        ledger_foreign_count(workers_ledger(c->workers), key, (size_t)(slash - key), +1);
    enqueue_namespace_of(c, key);
}

static void on_any_policy_update(void *arg, const char *key, const void *old, const void *obj)
{
    struct ctl *c = arg;
    bool was = foreign_policy(key, old), is = foreign_policy(key, obj);
    const char *slash = strchr(key, '/');
    if (slash && was != is)
        ledger_foreign_count(workers_ledger(c->workers), key, (size_t)(slash - key), is ? +1 : -1);
    if ((was || is) && !observed_policy_same(old, obj))
        enqueue_namespace_of(c, key);
}

static void on_any_policy_gone(void *arg, const char *key, const void *obj)
{
    struct ctl *c = arg;
    if (!foreign_policy(key, obj))
        return;
    const char *slash = strchr(key, '/');
    if (slash)
        ledger_foreign_count(workers_ledger(c->workers), key, (size_t)(slash - key), -1);
    enqueue_namespace_of(c, key);
}

/* A namespace came or its labels changed: which classes its Sandboxes may
 * use may have changed with them. */
static void on_namespace(void *arg, const char *key, const void *obj)
{
    (void)obj;
    struct ctl *c = arg;
    if (workers_started(c->workers))
        enqueue_ns(c, key, strlen(key), false);
}

static void on_namespace_update(void *arg, const char *key, const void *old, const void *obj)
{
    const struct namespace_obj *a = old, *b = obj;
    if (strcmp(a->labels, b->labels) != 0)
        on_namespace(arg, key, obj);
}

/* Work starts once every cache is complete (reconciling earlier would
 * create what exists) and, with leader election, once this replica leads. */
static void maybe_start_work(struct ctl *c)
{
    if (workers_started(c->workers) || c->stopping || c->synced < INFORMERS ||
        (c->opts.leader_elect && !c->leading))
        return;
    if (workers_start(c->workers) != 0) {
        log_error("out of memory creating the work queue", NULL);
        c->exit_code = 1;
        raise(SIGTERM);
        return;
    }
    log_info("reconciling", "{s:I, s:I, s:I}", "sandboxes", (json_int_t)informer_size(c->sandboxes),
             "pods", (json_int_t)informer_size(c->pods), "networkpolicies",
             (json_int_t)informer_size(c->policies));
    informer_foreach(c->sandboxes, enqueue_all, c);
}

static void on_synced(void *arg)
{
    struct ctl *c = arg;
    if (++c->synced < INFORMERS)
        return;
    /* The first LISTs parsed pages of whole objects and kept compact ones:
     * give the freed heap back, so the resident size is what is kept. */
    malloc_trim(0);
    log_info("caches synced", "{s:I, s:I, s:I}", "sandboxes",
             (json_int_t)informer_size(c->sandboxes), "pods", (json_int_t)informer_size(c->pods),
             "networkpolicies", (json_int_t)informer_size(c->policies));
    maybe_start_work(c);
}

static void stop(struct ctl *c);

static void on_leader(void *arg, bool leading)
{
    struct ctl *c = arg;
    if (leading) {
        c->leading = true;
        maybe_start_work(c);
        return;
    }
    /* Another replica may reconcile from now on: stop at once and exit
     * non-zero, so the pod restarts as a standby. */
    c->exit_code = 1;
    stop(c);
}

/* The kubelet's probes: /healthz (the loop turns), /readyz (caches synced). */
static int on_probe(void *arg, const char *method, const char *path, struct buf *body,
                    const char **content_type)
{
    struct ctl *c = arg;
    (void)method;
    (void)content_type;
    if (strcmp(path, "/healthz") == 0 ||
        (strcmp(path, "/readyz") == 0 && c->synced >= INFORMERS && !c->stopping)) {
        buf_append_str(body, "ok\n");
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        buf_append_str(body, c->stopping ? "stopping\n" : "caches not synced\n");
        return 503;
    }
    buf_append_str(body, "not found: try /healthz, /readyz or (on the metrics port) /metrics\n");
    return 404;
}

/* The metrics port: /metrics, and the probes for a controller run without
 * a port of their own. */
static int on_http(void *arg, const char *method, const char *path, struct buf *body,
                   const char **content_type)
{
    struct ctl *c = arg;
    *content_type = "text/plain; charset=utf-8";
    if (strcmp(path, "/metrics") != 0)
        return on_probe(arg, method, path, body, content_type);
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    struct metrics_sources src = {c->client,
                                  workers_queue(c->workers),
                                  {c->sandboxes, c->pods, c->policies, c->classes, c->namespaces},
                                  c->synced >= INFORMERS};
    return metrics_render(workers_metrics(c->workers), &src, body) == 0 ? 200 : 500;
}

/* ---- lifecycle -------------------------------------------------------- */

static void closed(void *arg)
{
    (void)arg;
}

/* Informers, server and client go once no reconcile and no Lease needs them. */
static void release(void *arg)
{
    struct ctl *c = arg;
    c->leader = NULL;
    informer_close(c->sandboxes, closed, NULL);
    informer_close(c->pods, closed, NULL);
    informer_close(c->policies, closed, NULL);
    informer_close(c->classes, closed, NULL);
    informer_close(c->namespaces, closed, NULL);
    informer_close(c->all_policies, closed, NULL);
    if (c->http)
        httpd_close(c->http, closed, NULL);
    if (c->probes)
        httpd_close(c->probes, closed, NULL);
    c->http = c->probes = NULL;
    kube_client_close(c->client, closed, NULL);
}

/* The Lease is handed back (so a standby takes over at once) before the
 * client that must send that goes. */
static void release_lease(struct ctl *c)
{
    if (c->leader)
        leader_close(c->leader, release, c);
    else
        release(c);
}

static void workers_closed(void *arg)
{
    release_lease(arg);
}

static void stop(struct ctl *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    log_info("stopping", NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    /* No new work; reconciles in flight finish (their requests are answered
     * or time out), then everything else follows. */
    workers_close(c->workers, workers_closed, c);
}

/* hostname_random: unique per process, recognisable per pod. */
static void make_identity(char *out, size_t outlen)
{
    char host[128] = "kage";
    unsigned char r[6] = {0};
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "kage");
    host[sizeof(host) - 1] = '\0';
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        uint64_t t = uv_hrtime();
        memcpy(r, &t, sizeof(r));
    }
    snprintf(out, outlen, "%s_%02x%02x%02x%02x%02x%02x", host, r[0], r[1], r[2], r[3], r[4], r[5]);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    stop(h->data);
}

static int new_informer(struct ctl *c, const struct kube_resource *res, const char *selector,
                        void *(*decode)(json_t *, char *, size_t), const char *const *strip,
                        const struct informer_handlers *h, struct informer **out)
{
    struct informer_opts o = {.res = res,
                              .label_selector = selector,
                              .max_page_bytes = res == &KAGE_SANDBOXES ? SANDBOX_PAGE_BYTES : 0};
    struct informer_ops ops = {decode, free, strip};
    return informer_new(c->client, c->loop, &o, &ops, h, c, out);
}

int controller_run(const struct controller_opts *o, const struct kube_config *cfg)
{
    struct ctl c = {0};
    char err[512];
    c.loop = uv_default_loop();
    c.opts = *o;
    if (!c.opts.workers)
        c.opts.workers = 32;

    if (kube_client_new(c.loop, cfg, NULL, &c.client, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s\n", err);
        return 2;
    }
    static const struct informer_handlers sandbox_h = {
        on_sandbox, on_sandbox_update, on_sandbox_delete, on_synced, on_informer_error};
    static const struct informer_handlers pod_h = {on_pod_seen, on_pod_update, on_pod_gone,
                                                   on_synced, on_informer_error};
    static const struct informer_handlers class_h = {on_class, on_class_update, on_class, on_synced,
                                                     on_informer_error};
    static const struct informer_handlers policy_h = {on_policy, on_policy_update, on_policy,
                                                      on_synced, on_informer_error};
    static const struct informer_handlers all_policy_h = {
        on_any_policy, on_any_policy_update, on_any_policy_gone, on_synced, on_informer_error};
    static const struct informer_handlers namespace_h = {on_namespace, on_namespace_update, NULL,
                                                         on_synced, on_informer_error};
    make_identity(c.identity, sizeof(c.identity));
    c.by_ns = nsindex_new();
    if (!c.by_ns ||
        new_informer(&c, &KAGE_SANDBOXES, NULL, observed_decode_sandbox, NULL, &sandbox_h,
                     &c.sandboxes) ||
        new_informer(&c, &KUBE_PODS, LABEL_SANDBOX, observed_decode_pod, observed_pod_unread,
                     &pod_h, &c.pods) ||
        new_informer(&c, &KUBE_NETWORK_POLICIES, LABEL_MANAGED_BY "=kage", observed_decode_policy,
                     NULL, &policy_h, &c.policies) ||
        new_informer(&c, &KAGE_SANDBOXCLASSES, NULL, class_decode, NULL, &class_h, &c.classes) ||
        new_informer(&c, &KUBE_NAMESPACES, NULL, selector_decode_namespace, NULL, &namespace_h,
                     &c.namespaces) ||
        new_informer(&c, &KUBE_NETWORK_POLICIES, NULL, observed_decode_policy, NULL, &all_policy_h,
                     &c.all_policies)) {
        fprintf(stderr, "kage-controller: out of memory\n");
        return 1;
    }
    struct workers_opts wo = {.loop = c.loop,
                              .client = c.client,
                              .sandboxes = c.sandboxes,
                              .pods = c.pods,
                              .policies = c.policies,
                              .all_policies = c.all_policies,
                              .classes = c.classes,
                              .namespaces = c.namespaces,
                              .runtime_class = c.opts.runtime_class,
                              .identity = c.identity,
                              .require_class = c.opts.require_class,
                              .gate = c.opts.gate,
                              .workers = c.opts.workers};
    c.workers = workers_new(&wo);
    if (!c.workers || informer_start(c.sandboxes) || informer_start(c.pods) ||
        informer_start(c.policies) || informer_start(c.classes) || informer_start(c.namespaces) ||
        informer_start(c.all_policies)) {
        fprintf(stderr, "kage-controller: out of memory\n");
        return 1;
    }
    if (c.opts.http_addr && c.opts.http_addr[0] &&
        httpd_start(c.loop, c.opts.http_addr, on_http, &c, &c.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: --http-addr: %s\n", err);
        return 2;
    }
    if (c.opts.probe_addr && c.opts.probe_addr[0] &&
        httpd_start(c.loop, c.opts.probe_addr, on_probe, &c, &c.probes, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: --probe-addr: %s\n", err);
        return 2;
    }
    if (c.opts.leader_elect) {
        struct leader_opts lo = {
            .ns = c.opts.lease_namespace, .name = c.opts.lease_name, .identity = c.identity};
        if (leader_start(c.client, c.loop, &lo, on_leader, &c, &c.leader) != 0) {
            fprintf(stderr, "kage-controller: out of memory\n");
            return 1;
        }
    }
    uv_signal_init(c.loop, &c.sigint);
    uv_signal_init(c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    log_info("kage-controller started", "{s:s, s:s, s:s, s:i, s:s, s:b, s:s, s:s}", "version",
             KAGE_VERSION, "server", cfg->server, "runtimeClass", c.opts.runtime_class, "workers",
             (int)c.opts.workers, "identity", c.identity, "leaderElect", c.opts.leader_elect,
             "http", c.http ? c.opts.http_addr : "off", "probes",
             c.probes ? c.opts.probe_addr : "off");

    uv_run(c.loop, UV_RUN_DEFAULT);

    const struct metrics *m = workers_metrics(c.workers);
    int rc = uv_loop_close(c.loop);
    log_info("stopped", "{s:I, s:I, s:I, s:I, s:I}", "reconciles", (json_int_t)m->reconciles,
             "creates", (json_int_t)m->creates, "updates", (json_int_t)m->updates, "deletes",
             (json_int_t)m->deletes, "statusWrites", (json_int_t)m->status_writes);
    workers_free(c.workers);
    nsindex_free(c.by_ns);
    if (rc != 0)
        log_error("handles left open at exit", "{s:s}", "error", uv_strerror(rc));
    return rc != 0 ? 1 : c.exit_code;
}
