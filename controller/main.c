// SPDX-License-Identifier: Apache-2.0
/*
 * main.c - kage-controller's entry point: reads flags and configuration and
 * hands over. Exit codes: 0 done, 1 runtime failure, 2 bad flags or config.
 */
#include <stdio.h>
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
        };
        rc = controller_run(&co, &cfg);
    }
    kube_config_free(&cfg);
    return rc;
}
