/*
 * metrics.c - renders /metrics in the Prometheus text exposition format
 * (version 0.0.4): reconciles and writes, API requests by verb, the work
 * queue, the caches, leadership, and the process's CPU and memory.
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reconcile/observed.h"

static const double duration_bounds[METRICS_DURATION_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                 0.05,  0.1,    0.25,  1,    5};

void metrics_observe(struct metrics *m, double s, bool failed)
{
    int i = 0;
    while (i < METRICS_DURATION_BUCKETS && s > duration_bounds[i])
        i++;
    m->duration_buckets[i]++;
    m->duration_sum += s;
    if (failed)
        m->reconcile_errors++;
}

static int metric(struct buf *b, const char *name, const char *type, const char *help,
                  const char *labels, double value)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help, name, type, name,
                      labels ? labels : "", value);
}

static int sample(struct buf *b, const char *name, const char *labels, double value)
{
    return buf_printf(b, "%s%s %.17g\n", name, labels, value);
}

static int header(struct buf *b, const char *name, const char *type, const char *help)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* CPU seconds and resident bytes of this process, from /proc (memory-backed
 * files: no disk is touched). */
static void process_figures(double *cpu_s, double *rss_bytes)
{
    *cpu_s = 0;
    *rss_bytes = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[1024];
        if (fgets(line, sizeof(line), f)) {
            char *p = strrchr(line, ')');
            unsigned long ut = 0, st = 0;
            if (p &&
                sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }
    f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size = 0, resident = 0;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            *rss_bytes = (double)resident * (double)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
}

static const char *const phase_names[] = {"",        "Pending", "Creating",
                                          "Running", "Paused",  "Succeeded",
                                          "Failed",  "Expired", "Terminating"};

struct phases {
    uint64_t n[sizeof(phase_names) / sizeof(phase_names[0])];
};

/* A Sandbox without a phase kage knows counts under "". */
static void count_phase(void *arg, const char *key, const void *obj)
{
    (void)key;
    struct phases *ph = arg;
    const struct sandbox_obj *s = obj;
    size_t i = 0;
    for (size_t k = 1; k < sizeof(phase_names) / sizeof(phase_names[0]); k++) {
        if (strcmp(s->phase, phase_names[k]) == 0) {
            i = k;
            break;
        }
    }
    ph->n[i]++;
}

int metrics_render(const struct metrics *m, const struct metrics_sources *src, struct buf *b)
{
    static const char *const verbs[] = {"GET", "POST", "PUT", "APPLY", "PATCH", "DELETE"};
    struct kube_client_stats cs;
    struct queue_stats qs = {0};
    double cpu, rss;
    char labels[128];
    int rc = 0;

    kube_client_stats(src->client, &cs);
    if (src->queue)
        queue_get_stats(src->queue, &qs);
    process_figures(&cpu, &rss);

    rc |= metric(b, "kage_build_info", "gauge", "Version of kage-controller.",
                 "{version=\"" KAGE_VERSION "\"}", 1);
    rc |= metric(b, "kage_leader", "gauge", "1 while this replica reconciles (leads).", NULL,
                 src->queue ? 1 : 0);
    rc |= metric(b, "kage_caches_synced", "gauge", "1 once every informer has listed.", NULL,
                 src->synced ? 1 : 0);
    rc |= metric(b, "kage_reconciles_total", "counter", "Sandbox reconciles run.", NULL,
                 (double)m->reconciles);
    rc |= metric(b, "kage_reconcile_errors_total", "counter",
                 "Reconciles that ended in an error and are retried with backoff.", NULL,
                 (double)m->reconcile_errors);
    rc |= header(b, "kage_reconcile_duration_seconds", "histogram",
                 "Time from the start of a reconcile to its end, API round trips included.");
    uint64_t cum = 0;
    for (int i = 0; i <= METRICS_DURATION_BUCKETS; i++) {
        cum += m->duration_buckets[i];
        if (i < METRICS_DURATION_BUCKETS)
            snprintf(labels, sizeof(labels), "{le=\"%g\"}", duration_bounds[i]);
        else
            snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
        rc |= sample(b, "kage_reconcile_duration_seconds_bucket", labels, (double)cum);
    }
    rc |= sample(b, "kage_reconcile_duration_seconds_sum", "", m->duration_sum);
    rc |= sample(b, "kage_reconcile_duration_seconds_count", "", (double)cum);
    rc |= metric(b, "kage_reconcile_refusals_total", "counter",
                 "Writes the API server refused (quota, admission, conflicts).", NULL,
                 (double)m->refusals);
    rc |= header(b, "kage_writes_total", "counter", "Writes of children and status, by kind.");
    rc |= sample(b, "kage_writes_total", "{kind=\"create\"}", (double)m->creates);
    rc |= sample(b, "kage_writes_total", "{kind=\"update\"}", (double)m->updates);
    rc |= sample(b, "kage_writes_total", "{kind=\"delete\"}", (double)m->deletes);
    rc |= sample(b, "kage_writes_total", "{kind=\"status\"}", (double)m->status_writes);
    rc |= metric(b, "kage_status_writes_deferred_total", "counter",
                 "Status writes of a just-started pod deferred while other sandboxes waited.", NULL,
                 (double)m->status_deferred);
    rc |= metric(b, "kage_events_total", "counter", "Kubernetes Events emitted.", NULL,
                 (double)m->events);

    rc |= header(b, "kage_api_requests_total", "counter",
                 "API requests sent, retries included, by verb.");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        snprintf(labels, sizeof(labels), "{verb=\"%s\"}", verbs[i]);
        rc |= sample(b, "kage_api_requests_total", labels, (double)cs.by_verb[i]);
    }
    rc |= header(b, "kage_api_responses_total", "counter",
                 "Finished API request attempts by verb and HTTP code (0: no response).");
    for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
        for (int k = 0; k < KUBE_CODES; k++) {
            if (!cs.by_code[v][k])
                continue;
            if (kube_stat_codes[k] < 0)
                snprintf(labels, sizeof(labels), "{verb=\"%s\",code=\"other\"}", verbs[v]);
            else
                snprintf(labels, sizeof(labels), "{verb=\"%s\",code=\"%d\"}", verbs[v],
                         kube_stat_codes[k]);
            rc |= sample(b, "kage_api_responses_total", labels, (double)cs.by_code[v][k]);
        }
    }
    rc |= metric(b, "kage_api_retries_total", "counter", "API requests retried.", NULL,
                 (double)cs.retries);
    rc |= metric(b, "kage_api_failures_total", "counter", "API requests that failed for good.",
                 NULL, (double)cs.failures);
    rc |= metric(b, "kage_api_watches_total", "counter", "Watch streams opened.", NULL,
                 (double)cs.watches);
    rc |= metric(b, "kage_api_in_flight", "gauge", "API requests in flight (not watches).", NULL,
                 cs.in_flight);

    rc |= metric(b, "kage_queue_depth", "gauge", "Sandboxes waiting to be reconciled.", NULL,
                 (double)qs.depth);
    rc |= metric(b, "kage_queue_in_flight", "gauge", "Sandboxes being reconciled.", NULL,
                 qs.in_flight);
    rc |= metric(b, "kage_queue_retries_total", "counter", "Reconciles retried after a failure.",
                 NULL, (double)qs.retries);

    const struct informer *const *infs = src->informers;
    const char *names[] = {"sandboxes", "pods", "networkpolicies", "sandboxclasses", "namespaces"};
    rc |= header(b, "kage_cache_objects", "gauge", "Objects in each informer's cache.");
    for (int i = 0; i < 5; i++) {
        snprintf(labels, sizeof(labels), "{resource=\"%s\"}", names[i]);
        rc |= sample(b, "kage_cache_objects", labels, (double)informer_size(infs[i]));
    }
    rc |= header(b, "kage_watch_events_total", "counter", "Watch events applied to each cache.");
    for (int i = 0; i < 5; i++) {
        struct informer_stats is;
        informer_stats(infs[i], &is);
        snprintf(labels, sizeof(labels), "{resource=\"%s\"}", names[i]);
        rc |= sample(b, "kage_watch_events_total", labels, (double)is.events);
    }
    rc |= header(b, "kage_watch_restarts_total", "counter",
                 "Watches reopened after an error or a relist, by resource.");
    for (int i = 0; i < 5; i++) {
        struct informer_stats is;
        informer_stats(infs[i], &is);
        snprintf(labels, sizeof(labels), "{resource=\"%s\"}", names[i]);
        rc |= sample(b, "kage_watch_restarts_total", labels, (double)(is.reconnects + is.relists));
    }
    struct phases ph = {0};
    informer_foreach(src->informers[0], count_phase, &ph);
    rc |= header(b, "kage_sandboxes", "gauge", "Sandboxes by the phase in their status.");
    for (size_t i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++) {
        snprintf(labels, sizeof(labels), "{phase=\"%s\"}", phase_names[i]);
        rc |= sample(b, "kage_sandboxes", labels, (double)ph.n[i]);
    }
    rc |= header(b, "kage_relists_total", "counter", "LISTs after the first (410, ERROR events).");
    for (int i = 0; i < 5; i++) {
        struct informer_stats is;
        informer_stats(infs[i], &is);
        snprintf(labels, sizeof(labels), "{resource=\"%s\"}", names[i]);
        rc |= sample(b, "kage_relists_total", labels, (double)is.relists);
    }

    rc |= metric(b, "process_cpu_seconds_total", "counter", "User and system CPU time.", NULL, cpu);
    rc |= metric(b, "process_resident_memory_bytes", "gauge", "Resident memory.", NULL, rss);
    return rc ? -1 : 0;
}
