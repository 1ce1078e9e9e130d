// SPDX-License-Identifier: Apache-2.0
/*
 * options.c - parses kage-controller's command line. Pure: no I/O beyond
 * the usage text, so every flag and every error is unit-tested.
 */
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <stdlib.h>

enum {
    OPT_KUBECONFIG = 256,
    OPT_CONTEXT,
    OPT_RUNTIME_CLASS,
    OPT_GATE_IMAGE,
    OPT_LOG_LEVEL,
    OPT_WATCH,
    OPT_NAMESPACE,
    OPT_SELECTOR,
    OPT_PAGE_SIZE,
    OPT_WATCH_TIMEOUT,
    OPT_LIST,
    OPT_HTTP_ADDR,
    OPT_PROBE_ADDR,
    OPT_LEADER_ELECT,
    OPT_LEASE_NAMESPACE,
    OPT_LEASE_NAME,
    OPT_WORKERS,
    OPT_LOG_FORMAT,
    OPT_ALLOW_NO_CLASS,
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"default-runtime-class", required_argument, NULL, OPT_RUNTIME_CLASS},
    {"gate-image", required_argument, NULL, OPT_GATE_IMAGE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"http-addr", required_argument, NULL, OPT_HTTP_ADDR},
    {"probe-addr", required_argument, NULL, OPT_PROBE_ADDR},
    {"leader-elect", no_argument, NULL, OPT_LEADER_ELECT},
    {"leader-election-namespace", required_argument, NULL, OPT_LEASE_NAMESPACE},
    {"leader-election-id", required_argument, NULL, OPT_LEASE_NAME},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"allow-no-class", no_argument, NULL, OPT_ALLOW_NO_CLASS},
    {"watch", required_argument, NULL, OPT_WATCH},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"selector", required_argument, NULL, OPT_SELECTOR},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT},
    {"list", required_argument, NULL, OPT_LIST},
    {NULL, 0, NULL, 0},
};

void options_usage(void *stream, const char *prog)
{
    fprintf(
        (FILE *)stream,
        "Usage: %s [flags]\n"
        "\n"
        "Reconciles kage.dev Sandboxes into isolated pods and network policies.\n"
        "\n"
        "Flags:\n"
        "  --kubeconfig PATH              kubeconfig to use (default: $KUBECONFIG, else in-cluster)\n"
        "  --context NAME                 kubeconfig context (default: its current-context)\n"
        "  --default-runtime-class NAME   runtimeClassName for sandbox pods (default: kata-fc)\n"
        "  --gate-image IMAGE             image of kage-gate, the init container that holds a sandbox\n"
        "                                 back until its egress policy is enforced: this image\n"
        "                                 (default: localhost/kage-controller:" KAGE_VERSION ")\n"
        "  --log-level LEVEL              debug, info, warn or error (default: info)\n"
        "  --log-format FORMAT            json (default) or text\n"
        "  --http-addr ADDR               serve /metrics, /healthz, /readyz (default: 127.0.0.1:8081; \"\" = off)\n"
        "  --probe-addr ADDR              serve only /healthz and /readyz, for the kubelet's probes,\n"
        "                                 apart from the metrics port (default: \"\" = off)\n"
        "  --leader-elect                 reconcile only while holding the leader Lease\n"
        "  --allow-no-class               run Sandboxes no SandboxClass applies to, with no\n"
        "                                 guardrails (default: they get no pod, reason NoClass)\n"
        "  --leader-election-namespace NS namespace of the Lease (default: in-cluster namespace, else kage-system)\n"
        "  --leader-election-id NAME      name of the Lease (default: kage-controller)\n"
        "  --workers N                    Sandboxes reconciled at once (default: 32)\n"
        "\n"
        "Debugging:\n"
        "  --watch RESOURCE               print one informer's events (pods, networkpolicies, ...)\n"
        "  --namespace NS                 with --watch: only this namespace\n"
        "  --selector SELECTOR            with --watch: a label selector\n"
        "  --page-size N                  with --watch: LIST page size (default 250)\n"
        "  --list stream|paged            with --watch: fill the cache with a streaming list\n"
        "                                 (default; the paged LIST where the server refuses it)\n"
        "                                 or with the paged LIST only\n"
        "  --watch-timeout SECONDS        with --watch: least watch timeoutSeconds (default 300)\n"
        "\n"
        "  -h, --help                     show this help and exit\n"
        "  -V, --version                  print the version and exit\n",
        prog);
}

/* Parses a whole decimal number in [1, max]. Returns 0 or -1. */
static int parse_count(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < 1 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int options_parse(struct options *opts, int argc, char **argv, char *err, size_t errlen)
{
    memset(opts, 0, sizeof(*opts));
    opts->default_runtime_class = "kata-fc";
    opts->gate_image = "localhost/kage-controller:" KAGE_VERSION;
    opts->log_level = "info";
    opts->log_format = "json";
    opts->http_addr = "127.0.0.1:8081";
    opts->probe_addr = "";
    opts->lease_name = "kage-controller";
    err[0] = '\0';

    /* getopt keeps global state; reset it so the parser can run again. */
    optind = 0;
    opterr = 0;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, ":hV", long_opts, &idx);
        if (c == -1)
            break;
        switch (c) {
        case 'h':
            opts->action = OPTIONS_HELP;
            return 0;
        case 'V':
            opts->action = OPTIONS_VERSION;
            return 0;
        case OPT_KUBECONFIG:
            opts->kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            opts->context = optarg;
            break;
        case OPT_RUNTIME_CLASS:
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--default-runtime-class must not be empty");
                return -1;
            }
            opts->default_runtime_class = optarg;
            break;
        case OPT_GATE_IMAGE:
            /* The gate is what keeps a sandbox's code from running before
             * its policy is enforced: a class turns it off, not the flag. */
            if (optarg[0] == '\0') {
                snprintf(err, errlen,
                         "--gate-image must not be empty (a SandboxClass turns the gate off "
                         "with spec.egress.policyGate: Disabled)");
                return -1;
            }
            opts->gate_image = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (strcmp(optarg, "debug") && strcmp(optarg, "info") && strcmp(optarg, "warn") &&
                strcmp(optarg, "error")) {
                snprintf(err, errlen, "--log-level must be debug, info, warn or error, not %s",
                         optarg);
                return -1;
            }
            opts->log_level = optarg;
            break;
        case OPT_HTTP_ADDR:
            opts->http_addr = optarg;
            break;
        case OPT_PROBE_ADDR:
            opts->probe_addr = optarg;
            break;
        case OPT_LEADER_ELECT:
            opts->leader_elect = true;
            break;
        case OPT_ALLOW_NO_CLASS:
            opts->allow_no_class = true;
            break;
        case OPT_LEASE_NAMESPACE:
            opts->lease_namespace = optarg;
            break;
        case OPT_LEASE_NAME:
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--leader-election-id must not be empty");
                return -1;
            }
            opts->lease_name = optarg;
            break;
        case OPT_WORKERS:
            if (parse_count(optarg, 10000, &opts->workers)) {
                snprintf(err, errlen, "--workers must be a number from 1 to 10000, not %s", optarg);
                return -1;
            }
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
                snprintf(err, errlen, "--log-format must be json or text, not %s", optarg);
                return -1;
            }
            opts->log_format = optarg;
            break;
        case OPT_WATCH:
            opts->watch = optarg;
            break;
        case OPT_NAMESPACE:
            opts->namespace = optarg;
            break;
        case OPT_SELECTOR:
            opts->selector = optarg;
            break;
        case OPT_PAGE_SIZE:
            if (parse_count(optarg, 100000, &opts->page_size)) {
                snprintf(err, errlen, "--page-size must be a number from 1 to 100000, not %s",
                         optarg);
                return -1;
            }
            break;
        case OPT_LIST:
            if (strcmp(optarg, "stream") == 0) {
                opts->list_paged = false;
            } else if (strcmp(optarg, "paged") == 0) {
                opts->list_paged = true;
            } else {
                snprintf(err, errlen, "--list must be stream or paged, not %s", optarg);
                return -1;
            }
            break;
        case OPT_WATCH_TIMEOUT:
            if (parse_count(optarg, 86400, &opts->watch_timeout_s)) {
                snprintf(err, errlen,
                         "--watch-timeout must be a number of seconds from 1 to 86400, not %s",
                         optarg);
                return -1;
            }
            break;
        case ':':
            snprintf(err, errlen, "flag %s needs a value", argv[optind - 1]);
            return -1;
        default:
            snprintf(err, errlen, "unknown flag %s", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument %s", argv[optind]);
        return -1;
    }
    return 0;
}
