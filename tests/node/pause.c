// SPDX-License-Identifier: Apache-2.0
// The pod sandbox ("pause") process of the real-node test bed: PID 1 of each
// pod, holding its namespaces. It waits for signals and nothing else.

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

/* Asks the main loop to exit: the runtime stops a sandbox with SIGTERM (or
 * SIGINT by hand), and PID 1 has no default action for either. */
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

/* Reaps every exited child: with a shared PID namespace the pause process is
 * the init of the pod and inherits its orphans, which must not pile up as
 * zombies. Keeps errno as the interrupted code saw it. */
static void on_child(int sig)
{
    int saved = errno;

    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

/* Installs handler for sig; SIGCHLD only for children that exit, not for
 * ones that stop. */
static int handle(int sig, void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sig == SIGCHLD)
        sa.sa_flags = SA_NOCLDSTOP;
    return sigaction(sig, &sa, NULL);
}

/* Runs until SIGINT or SIGTERM, then exits 0. Any argument is an error: the
 * image's entrypoint runs it bare. The signals are blocked but inside
 * sigsuspend(), so one that arrives between the check of stop and the wait
 * is not lost (as it could be with pause()). */
int main(int argc, char **argv)
{
    sigset_t block, during;

    (void)argv;
    if (argc > 1) {
        fputs("pause: takes no arguments\n", stderr);
        return 2;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &block, &during) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    sigdelset(&during, SIGINT);
    sigdelset(&during, SIGTERM);
    sigdelset(&during, SIGCHLD);
    if (handle(SIGINT, on_stop) != 0 || handle(SIGTERM, on_stop) != 0 ||
        handle(SIGCHLD, on_child) != 0) {
        perror("pause: sigaction");
        return 1;
    }
    while (!stop)
        sigsuspend(&during);
    return 0;
}
