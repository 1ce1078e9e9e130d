// SPDX-License-Identifier: Apache-2.0
/*
 * kage-gate - the init container of every sandbox pod whose egress must
 * not reach the Kubernetes API. It exits 0 only once connects to the
 * canaries fail, so the sandbox's own code starts only after the node
 * enforces the pod's NetworkPolicy; else it fails the pod with a reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"

#define MAX_CANARIES     8
#define BLOCKED_IN_ROW   2  /* failed connects in a row that count as blocked */
#define PAUSE_MS         50 /* after an open connect, before the next */
#define DEFAULT_TIMEOUT  250
#define DEFAULT_DEADLINE 60

static const char usage[] =
    "usage: kage-gate [--deadline SECONDS] [--timeout-ms MS] [--termination-log PATH]\n"
    "                 [HOST:PORT ...]\n"
    "Waits until TCP connects to every canary HOST:PORT (IP literals; default\n"
    "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT) fail twice in a row, then\n"
    "exits 0. Past the deadline (default 60 s) it writes why to the termination\n"
    "log (default /dev/termination-log) and exits 1.\n";

/* Writes line to the termination log (the kubelet shows it as the
 * container's message) and to stderr. */
static void report(const char *path, const char *line)
{
    fprintf(stderr, "kage-gate: %s\n", line);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
}

/* A whole decimal number in [lo, hi] from s, or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (errno || *end || v < lo || v > hi) ? -1 : v;
}

int main(int argc, char **argv)
{
    const char *log_path = "/dev/termination-log";
    long deadline_s = DEFAULT_DEADLINE, timeout_ms = DEFAULT_TIMEOUT;
    struct canary cs[MAX_CANARIES];
    size_t n = 0;
    char err[160], line[512];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--deadline") == 0) {
            if ((deadline_s = number(v, 1, 86400)) < 0) {
                snprintf(line, sizeof(line), "--deadline wants seconds from 1 to 86400");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if ((timeout_ms = number(v, 1, 60000)) < 0) {
                snprintf(line, sizeof(line), "--timeout-ms wants milliseconds from 1 to 60000");
                goto bad;
            }
            i++;
        } else if (strcmp(a, "--termination-log") == 0) {
            if (!v) {
                snprintf(line, sizeof(line), "--termination-log wants a path");
                goto bad;
            }
            log_path = v;
            i++;
        } else if (a[0] == '-') {
            snprintf(line, sizeof(line), "unknown option %.64s", a);
            goto bad;
        } else if (n == MAX_CANARIES) {
            snprintf(line, sizeof(line), "at most %d canaries", MAX_CANARIES);
            goto bad;
        } else if (canary_parse(&cs[n], a, err, sizeof(err)) != 0) {
            snprintf(line, sizeof(line), "%s", err);
            goto bad;
        } else {
            n++;
        }
    }
    if (n == 0) {
        if (canary_parse_env(&cs[0], getenv("KUBERNETES_SERVICE_HOST"),
                             getenv("KUBERNETES_SERVICE_PORT"), err, sizeof(err)) != 0) {
            snprintf(line, sizeof(line), "no canary to probe: %s", err);
            goto bad;
        }
        n = 1;
    }

    uint64_t start = canary_now_ms();
    size_t open_one = 0;
    unsigned long attempts = 0;
    if (canary_wait_blocked(cs, n, BLOCKED_IN_ROW, (int)timeout_ms, PAUSE_MS,
                            start + (uint64_t)deadline_s * 1000u, &open_one, &attempts)) {
        fprintf(stderr, "kage-gate: egress blocked after %llu ms (%lu connects)\n",
                (unsigned long long)(canary_now_ms() - start), attempts);
        return 0;
    }
    snprintf(line, sizeof(line),
             "egress to %s still open after %ld s: the node's NetworkPolicy implementation did "
             "not enforce this sandbox's policy",
             cs[open_one].text, deadline_s);
    report(log_path, line);
    return 1;
bad:
    report(log_path, line);
    fputs(usage, stderr);
    return 2;
}
