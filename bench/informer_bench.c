// SPDX-License-Identifier: Apache-2.0
/*
 * informer_bench.c - decodes and caches 10,000 pod watch events through the
 * informer (no server: events are fed as the stream would deliver them) and
 * prints the cache's bytes per pod and the microseconds per event.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "kube/buf.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "reconcile/observed.h"

#define N 10000

/* A pod as kage renders it and the API server returns it, with status. */
static int pod_event(struct buf *b, const char *type, int i, int rv)
{
    return buf_printf(
        b,
        "{\"type\":\"%s\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{"
        "\"name\":\"sandbox-%05d\",\"namespace\":\"team-%02d\",\"uid\":\"6f1c2d3e-0000-4000-8000-%012d\","
        "\"resourceVersion\":\"%d\",\"creationTimestamp\":\"2026-11-28T10:00:00Z\","
        "\"labels\":{\"app.kubernetes.io/managed-by\":\"kage\",\"kage.dev/sandbox\":\"sandbox-%05d\"},"
        "\"annotations\":{\"kage.dev/spec-hash\":\"0123456789abcdef\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"kage.dev/v1alpha1\",\"kind\":\"Sandbox\","
        "\"name\":\"sandbox-%05d\",\"uid\":\"9a8b7c6d-0000-4000-8000-%012d\",\"controller\":true}],"
        "\"managedFields\":[{\"manager\":\"kage\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
        "\"time\":\"2026-11-28T10:00:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{"
        "\"f:labels\":{\".\":{},\"f:kage.dev/sandbox\":{}}},\"f:spec\":{\"f:containers\":{}}}}]},"
        "\"spec\":{\"runtimeClassName\":\"kata-fc\",\"restartPolicy\":\"Never\","
        "\"terminationGracePeriodSeconds\":5,\"automountServiceAccountToken\":false,"
        "\"enableServiceLinks\":false,\"nodeName\":\"kwok-node-%d\",\"securityContext\":{"
        "\"runAsNonRoot\":true,\"runAsUser\":65532,\"runAsGroup\":65532,\"seccompProfile\":{\"type\":"
        "\"RuntimeDefault\"}},\"containers\":[{\"name\":\"sandbox\",\"image\":\"python:3.12-slim\","
        "\"command\":[\"python3\",\"-m\",\"http.server\"],\"resources\":{\"limits\":{\"cpu\":\"1\","
        "\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"securityContext\":{"
        "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":[\"ALL\"]}},"
        "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":"
        "\"FallbackToLogsOnError\",\"imagePullPolicy\":\"IfNotPresent\"}],\"dnsPolicy\":\"ClusterFirst\","
        "\"schedulerName\":\"default-scheduler\",\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\","
        "\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300}]},"
        "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Initialized\",\"status\":\"True\"},"
        "{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"ContainersReady\",\"status\":\"True\"},"
        "{\"type\":\"PodScheduled\",\"status\":\"True\"}],\"hostIP\":\"10.0.0.1\",\"podIP\":\"10.244.%d.%d\","
        "\"startTime\":\"2026-11-28T10:00:01Z\",\"containerStatuses\":[{\"name\":\"sandbox\",\"state\":{"
        "\"running\":{\"startedAt\":\"2026-11-28T10:00:02Z\"}},\"ready\":true,\"restartCount\":0,"
        "\"image\":\"python:3.12-slim\",\"imageID\":\"\",\"started\":true}]}}}",
        type, i, i % 50, i, rv, i, i, i, i % 10, i / 250, i % 250);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void closed(void *arg)
{
    (void)arg;
}

int main(void)
{
    uv_loop_t *loop = uv_default_loop();
    struct kube_config cfg = {0};
    cfg.server = "https://127.0.0.1:1";
    struct kube_client *client;
    struct informer *inf;
    char err[256];
    if (kube_client_new(loop, &cfg, NULL, &client, err, sizeof(err)) != 0) {
        fprintf(stderr, "client: %s\n", err);
        return 1;
    }
    static const struct informer_ops ops = {observed_decode_pod, free, observed_pod_unread};
    struct informer_opts o = {.res = &KUBE_PODS};
    if (informer_new(client, loop, &o, &ops, NULL, NULL, &inf) != 0)
        return 1;

    /* Prepare the event lines first, so only decoding and caching is timed. */
    struct buf *adds = calloc(N, sizeof(*adds)), *mods = calloc(N, sizeof(*mods));
    size_t bytes = 0;
    for (int i = 0; i < N; i++) {
        buf_init(&adds[i], 1 << 16);
        buf_init(&mods[i], 1 << 16);
        if (pod_event(&adds[i], "ADDED", i, 1000 + i) ||
            pod_event(&mods[i], "MODIFIED", i, 20000 + i))
            return 1;
        bytes += adds[i].len;
    }

    malloc_trim(0);
    size_t before = mallinfo2().uordblks;
    double t0 = now_s();
    for (int i = 0; i < N; i++)
        if (informer__feed(inf, adds[i].data, adds[i].len) != 0)
            return 1;
    double t1 = now_s();
    size_t after = mallinfo2().uordblks;
    for (int i = 0; i < N; i++)
        if (informer__feed(inf, mods[i].data, mods[i].len) != 0)
            return 1;
    double t2 = now_s();

    if (informer_size(inf) != N) {
        fprintf(stderr, "cache holds %zu pods, want %d\n", informer_size(inf), N);
        return 1;
    }
    printf("informer benchmark: %d pods, %.0f bytes of JSON per event\n", N, (double)bytes / N);
    printf("  cache: %.0f bytes per cached pod (heap in use, decoded struct + key + tree node)\n",
           (double)(after - before) / N);
    printf("  ADDED:    %.2f us per event\n", (t1 - t0) * 1e6 / N);
    printf("  MODIFIED: %.2f us per event\n", (t2 - t1) * 1e6 / N);

    for (int i = 0; i < N; i++) {
        buf_free(&adds[i]);
        buf_free(&mods[i]);
    }
    free(adds);
    free(mods);
    informer_close(inf, closed, NULL);
    kube_client_close(client, closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
