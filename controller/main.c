/*
 * main.c - kage-controller's entry point: reads flags and hands over to the
 * controller. Exit codes: 0 done, 1 runtime failure, 2 bad flags or config.
 */
#include <stdio.h>

#include "options.h"

int main(int argc, char **argv)
{
    struct options opts;
    char err[256];

    if (options_parse(&opts, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "kage-controller: %s (see --help)\n", err);
        return 2;
    }
    switch (opts.action) {
    case OPTIONS_HELP:
        options_usage(stdout, "kage-controller");
        return 0;
    case OPTIONS_VERSION:
        printf("kage-controller %s\n", KAGE_VERSION);
        return 0;
    case OPTIONS_RUN:
        break;
    }
    fprintf(stderr, "kage-controller: nothing to run yet\n");
    return 1;
}
