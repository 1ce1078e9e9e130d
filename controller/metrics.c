// SPDX-License-Identifier: Apache-2.0
/*
 * metrics.c - renders /metrics in the Prometheus text exposition format
 * (version 0.0.4): reconciles and writes, API requests by verb, the work
 * queue, the caches, leadership, and the process's CPU and memory.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "census.h"

static const double duration_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};
/* Create-to-Ready: tens of milliseconds (a warm sandbox) to minutes (an
 * image pull, a cold micro-VM). */
static const double ready_bounds[] = {0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                      5,     10,   20,  30,   60,  120, 300};
/* Time in the queue: from being queued to being worked on. */
static const double wait_bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                     0.1,    0.5,    1,     5,     10,   60};

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
    int i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
}

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->duration.bounds = duration_bounds;
    m->duration.n = LEN(duration_bounds);
    m->ready.bounds = ready_bounds;
    m->ready.n = LEN(ready_bounds);
    m->queue_wait.bounds = wait_bounds;
    m->queue_wait.n = LEN(wait_bounds);
}

void metrics_observe(struct metrics *m, double s, bool failed)
{
    metrics_histogram_observe(&m->duration, s);
    if (failed)
        m->reconcile_errors++;
}

void metrics_observe_ready(struct metrics *m, double s)
{
    metrics_histogram_observe(&m->ready, s);
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

/* A histogram's series: cumulative buckets, then _sum and _count. */
static int histogram(struct buf *b, const char *name, const char *help,
                     const struct metrics_histogram *h)
{
    char series[96], le[48];
    uint64_t cum = 0;
    int rc = header(b, name, "histogram", help);
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (int i = 0; i <= h->n; i++) {
        cum += h->counts[i];
        if (i < h->n)
            snprintf(le, sizeof(le), "{le=\"%g\"}", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "{le=\"+Inf\"}");
        rc |= sample(b, series, le, (double)cum);
    }
    snprintf(series, sizeof(series), "%s_sum", name);
    rc |= sample(b, series, "", h->sum);
    snprintf(series, sizeof(series), "%s_count", name);
    rc |= sample(b, series, "", (double)cum);
    return rc;
}

/* Seconds since the epoch the machine booted (/proc/stat's btime), 0 if
 * unknown: a process's start time is counted from it. */
static double boot_time(void)
{
    static double bt; /* read once: it does not change (the loop's thread only) */
    if (bt > 0)
        return bt;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

/* What /proc says of this process (memory-backed files: no disk is
 * touched); a figure it cannot read stays 0. */
struct process_figures {
    double cpu_s, rss_bytes, vsize_bytes, start_s, open_fds, max_fds;
};

static void process_figures(struct process_figures *pf)
{
    memset(pf, 0, sizeof(*pf));
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[1024];
        if (fgets(line, sizeof(line), f)) {
            char *p = strrchr(line, ')');
            unsigned long ut = 0, st = 0, vsize = 0;
            unsigned long long start = 0;
            if (p && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                            "%*d %*d %llu %lu",
                            &ut, &st, &start, &vsize) == 4) {
                double hz = (double)sysconf(_SC_CLK_TCK);
                pf->cpu_s = (double)(ut + st) / hz;
                pf->vsize_bytes = (double)vsize;
                pf->start_s = boot_time() + (double)start / hz;
            }
        }
        fclose(f);
    }
    f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size = 0, resident = 0;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            pf->rss_bytes = (double)resident * (double)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        const struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                pf->open_fds++;
        pf->open_fds--; /* the directory's own */
        closedir(d);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        pf->max_fds = (double)rl.rlim_cur;
}

int metrics_render(const struct metrics *m, const struct metrics_sources *src, struct buf *b)
{
    static const char *const verbs[] = {"GET", "POST", "PUT", "APPLY", "PATCH", "DELETE"};
    struct kube_client_stats cs;
    struct queue_stats qs = {0};
    struct process_figures pf;
    char labels[128];
    int rc = 0;

    kube_client_stats(src->client, &cs);
    if (src->queue)
        queue_get_stats(src->queue, &qs);
    process_figures(&pf);

    rc |= metric(b, "kage_build_info", "gauge", "Version and source commit of kage-controller.",
                 "{version=\"" KAGE_VERSION "\",revision=\"" KAGE_REVISION "\"}", 1);
    rc |= metric(b, "kage_leader", "gauge", "1 while this replica reconciles (leads).", NULL,
                 src->queue ? 1 : 0);
    rc |= metric(b, "kage_caches_synced", "gauge", "1 once every informer has listed.", NULL,
                 src->synced ? 1 : 0);
    rc |= metric(b, "kage_reconciles_total", "counter", "Sandbox reconciles run.", NULL,
                 (double)m->reconciles);
    rc |= metric(b, "kage_reconcile_errors_total", "counter",
                 "Reconciles that ended in an error and are retried with backoff.", NULL,
                 (double)m->reconcile_errors);
    rc |= histogram(b, "kage_reconcile_duration_seconds",
                    "Time from the start of a reconcile to its end, API round trips included.",
                    &m->duration);
    rc |= histogram(b, "kage_sandbox_ready_seconds",
                    "Time from a Sandbox's creation (its watch event, if within 2 s of its "
                    "creationTimestamp) to the status that first says Ready.",
                    &m->ready);
    rc |= metric(b, "kage_reconcile_refusals_total", "counter",
                 "Writes the API server refused (quota, admission, conflicts).", NULL,
                 (double)m->refusals);
    rc |= header(b, "kage_writes_total", "counter", "Writes of children and status, by kind.");
    rc |= sample(b, "kage_writes_total", "{kind=\"create\"}", (double)m->creates);
    rc |= sample(b, "kage_writes_total", "{kind=\"update\"}", (double)m->updates);
    rc |= sample(b, "kage_writes_total", "{kind=\"delete\"}", (double)m->deletes);
    rc |= sample(b, "kage_writes_total", "{kind=\"status\"}", (double)m->status_writes);
    rc |= metric(b, "kage_status_writes_deferred_total", "counter",
                 "PodStarting status writes of a just-started pod deferred while other sandboxes "
                 "waited to start.",
                 NULL, (double)m->status_deferred);
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
    rc |= header(b, "kage_queue_lane_depth", "gauge",
                 "Sandboxes waiting by lane: finish (their pod exists) before start (new).");
    rc |= sample(b, "kage_queue_lane_depth", "{lane=\"finish\"}",
                 (double)qs.depth_lane[QUEUE_LANE_FINISH]);
    rc |= sample(b, "kage_queue_lane_depth", "{lane=\"start\"}",
                 (double)qs.depth_lane[QUEUE_LANE_START]);
    rc |= metric(b, "kage_queue_in_flight", "gauge", "Sandboxes being reconciled.", NULL,
                 qs.in_flight);
    rc |= metric(b, "kage_queue_retries_total", "counter", "Reconciles retried after a failure.",
                 NULL, (double)qs.retries);
    rc |=
        histogram(b, "kage_queue_wait_seconds",
                  "Time a Sandbox waited in the queue before its reconcile began.", &m->queue_wait);

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
    struct census cen;
    if (census_take(&cen, src->informers[0], METRICS_NAMESPACES) != 0)
        return -1;
    rc |= header(b, "kage_sandboxes", "gauge", "Sandboxes by the phase in their status.");
    for (size_t i = 0; i < CENSUS_PHASES; i++) {
        snprintf(labels, sizeof(labels), "{phase=\"%s\"}", census_phase_names[i]);
        rc |= sample(b, "kage_sandboxes", labels, (double)cen.all[i]);
    }
    rc |= header(b, "kage_namespace_sandboxes", "gauge",
                 "Sandboxes by namespace and phase: the namespaces with the most Sandboxes, "
                 "the rest summed under namespace=\"_other\".");
    for (size_t r = 0; r <= cen.nrows; r++) {
        const struct census_row *row = r < cen.nrows ? &cen.rows[r] : &cen.other;
        if (r == cen.nrows && !row->total)
            break;
        for (size_t i = 0; i < CENSUS_PHASES; i++) {
            snprintf(labels, sizeof(labels), "{namespace=\"%s\",phase=\"%s\"}",
                     r < cen.nrows ? row->ns : "_other", census_phase_names[i]);
            rc |= sample(b, "kage_namespace_sandboxes", labels, (double)row->n[i]);
        }
    }
    census_free(&cen);
    rc |= header(b, "kage_relists_total", "counter", "LISTs after the first (410, ERROR events).");
    for (int i = 0; i < 5; i++) {
        struct informer_stats is;
        informer_stats(infs[i], &is);
        snprintf(labels, sizeof(labels), "{resource=\"%s\"}", names[i]);
        rc |= sample(b, "kage_relists_total", labels, (double)is.relists);
    }

    rc |= metric(b, "process_cpu_seconds_total", "counter", "User and system CPU time.", NULL,
                 pf.cpu_s);
    rc |=
        metric(b, "process_resident_memory_bytes", "gauge", "Resident memory.", NULL, pf.rss_bytes);
    rc |=
        metric(b, "process_virtual_memory_bytes", "gauge", "Virtual memory.", NULL, pf.vsize_bytes);
    rc |= metric(b, "process_start_time_seconds", "gauge",
                 "Start time of the process since the epoch, in seconds.", NULL, pf.start_s);
    rc |= metric(b, "process_open_fds", "gauge", "Open file descriptors.", NULL, pf.open_fds);
    rc |= metric(b, "process_max_fds", "gauge", "Most file descriptors the process may open.", NULL,
                 pf.max_fds);
    return rc ? -1 : 0;
}
