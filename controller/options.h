// SPDX-License-Identifier: Apache-2.0
/* options.h - command-line options of kage-controller. */
#ifndef KAGE_OPTIONS_H
#define KAGE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum options_action {
    OPTIONS_RUN = 0, /* run the controller */
    OPTIONS_HELP,    /* print usage to stdout, exit 0 */
    OPTIONS_VERSION, /* print the version to stdout, exit 0 */
};

struct options {
    enum options_action action;
    const char *kubeconfig;            /* NULL: $KUBECONFIG, then in-cluster */
    const char *context;               /* NULL: the kubeconfig's current-context */
    const char *default_runtime_class; /* runtimeClassName when the class names none */
    const char *gate_image;            /* the image of sandbox pods' policy gate (kage-gate) */
    const char *log_level;             /* "debug", "info", "warn", "error" */
    const char *log_format;            /* "json" or "text" */
    const char *http_addr;             /* /healthz, /readyz, /metrics; "" = off */
    const char *probe_addr;            /* /healthz, /readyz only; "" = off */
    bool leader_elect;                 /* contend for the Lease before reconciling */
    bool allow_no_class;               /* a Sandbox no class applies to still runs */
    const char *lease_namespace;       /* NULL: the in-cluster namespace, else kage-system */
    const char *lease_name;            /* the Lease's name */
    unsigned workers;                  /* Sandboxes reconciled at once, 0 = default */
    /* Debugging: --watch RESOURCE prints the events of one informer. */
    const char *watch;        /* resource to watch, or NULL */
    const char *namespace;    /* --namespace: one namespace, NULL = all */
    const char *selector;     /* --selector: label selector, or NULL */
    unsigned page_size;       /* --page-size: LIST limit, 0 = default */
    unsigned watch_timeout_s; /* --watch-timeout: least watch timeoutSeconds, 0 = default */
    bool list_paged;          /* --list paged: the paged LIST, never the streaming list */
};

/*
 * Parses argv into *opts (strings point into argv). Returns 0, or -1 after
 * writing one line naming the bad argument into err (always terminated).
 */
int options_parse(struct options *opts, int argc, char **argv, char *err, size_t errlen);

/* Writes the usage text to the given stream (a FILE *). */
void options_usage(void *stream, const char *prog);

#endif
