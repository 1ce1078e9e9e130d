/*
 * options.c - parses kage-controller's command line. Pure: no I/O beyond
 * the usage text, so every flag and every error is unit-tested.
 */
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum {
    OPT_KUBECONFIG = 256,
    OPT_CONTEXT,
    OPT_RUNTIME_CLASS
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"default-runtime-class", required_argument, NULL, OPT_RUNTIME_CLASS},
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
        "  -h, --help                     show this help and exit\n"
        "  -V, --version                  print the version and exit\n",
        prog);
}

int options_parse(struct options *opts, int argc, char **argv, char *err, size_t errlen)
{
    memset(opts, 0, sizeof(*opts));
    opts->default_runtime_class = "kata-fc";
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
