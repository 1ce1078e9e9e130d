// SPDX-License-Identifier: Apache-2.0
/*
 * main.c - kage-controller's entry point: reads flags and configuration and
 * hands over. Exit codes: 0 done, 1 runtime failure, 2 bad flags or config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "harden.h"
#include "kube/config.h"
#include "log.h"
#include "options.h"
#include "watchcmd.h"

int main(int argc, char **argv)
{
    struct options opts;
    char err[512];

    if (options_parse(&opts, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s (see --help)\n", err);
        return 2;
    }
    switch (opts.action) {
    case OPTIONS_HELP:
        options_usage(stdout, "kage-controller");
        return 0;
    case OPTIONS_VERSION:
        printf("kage-controller %s (revision %s)\n", KAGE_VERSION, KAGE_REVISION);
        return 0;
    case OPTIONS_RUN:
        break;
    }
    /* Before any secret is read: a core dump or a debugger would hold it. */
    if (harden_process(err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s\n", err);
        return 1;
    }
    enum log_level level;
    if (log_parse_level(opts.log_level, &level) == 0)
        log_set_level(level);
    log_set_format(strcmp(opts.log_format, "text") == 0 ? LOG_TEXT : LOG_JSON);

    struct kube_config cfg;
    if (kube_config_load(&cfg, opts.kubeconfig, opts.context, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s\n", err);
        return 2;
    }
    /* The gate's canary is the API service the pods reach, which the
     * kubelet gives this pod too; out of the cluster it is unknown, and
     * every sandbox pod gets the gate (see SECURITY.md). */
    struct gate_config gate = {.image = opts.gate_image};
    const char *svc_host = getenv("KUBERNETES_SERVICE_HOST");
    const char *svc_port = getenv("KUBERNETES_SERVICE_PORT");
    if (cfg.source && strcmp(cfg.source, "in-cluster") == 0 && svc_host && svc_port &&
        strlen(svc_host) < sizeof(gate.canary_host)) {
        char *end;
        errno = 0;
        long port = strtol(svc_port, &end, 10);
        if (!errno && end != svc_port && !*end && port > 0 && port < 65536) {
            snprintf(gate.canary_host, sizeof(gate.canary_host), "%s", svc_host);
            gate.canary_port = (int)port;
        }
    }
    int rc;
    if (opts.watch) {
        rc = watchcmd_run(&opts, &cfg);
    } else {
        struct controller_opts co = {
            .runtime_class = opts.default_runtime_class,
            .workers = opts.workers,
            .http_addr = opts.http_addr,
            .probe_addr = opts.probe_addr,
            .leader_elect = opts.leader_elect,
            .require_class = !opts.allow_no_class,
            /* In a cluster, the pod's own namespace; else kage's. */
            .lease_namespace =
                opts.lease_namespace ? opts.lease_namespace
                : (cfg.namespace && cfg.source && strcmp(cfg.source, "in-cluster") == 0)
                    ? cfg.namespace
                    : "kage-system",
            .lease_name = opts.lease_name,
            .gate = &gate,
        };
        if (gate.canary_port > 0)
            log_info("policy gate", "{s:s, s:s, s:i}", "image", gate.image, "canaryHost",
                     gate.canary_host, "canaryPort", gate.canary_port);
        else
            log_info("policy gate", "{s:s, s:s}", "image", gate.image, "canary",
                     "unknown out of the cluster: every sandbox pod not turned off by its class "
                     "gets the gate");
        rc = controller_run(&co, &cfg);
    }
    kube_config_free(&cfg);
    return rc;
}
