// SPDX-License-Identifier: Apache-2.0
/*
 * token.c - the client's bearer token, re-read from its file on a worker
 * thread (file I/O stays off the loop) about every minute and after a 401,
 * so that a rotated token is picked up without a restart.
 */
#include <stdlib.h>
#include <string.h>

#include "kube/client_int.h"
#include "log.h"

#define TOKEN_REREAD_MS 60000

static void token_read_work(uv_work_t *w)
{
    struct kube_client *c = w->data;
    char err[256];
    c->token_new = NULL;
    /* A failed re-read keeps the old token: it may still be valid. */
    if (kube_token_read(c->cfg->token_file, &c->token_new, err, sizeof(err)) != 0)
        c->token_new = NULL;
}

void kube__token_free(char *t)
{
    if (t) {
        explicit_bzero(t, strlen(t));
        free(t);
    }
}

static void token_read_done(uv_work_t *w, int status)
{
    struct kube_client *c = w->data;
    (void)status;
    c->token_work_busy = 0;
    if (c->token_new) {
        if (!c->token || strcmp(c->token, c->token_new) != 0)
            log_info("bearer token reloaded", "{s:s}", "file", c->cfg->token_file);
        kube__token_free(c->token);
        c->token = c->token_new;
        c->token_new = NULL;
    }
    c->handles_open--;
    kube__client_maybe_free(c);
}

void kube__token_reread(struct kube_client *c)
{
    if (c->token_work_busy || c->closing || !c->cfg->token_file)
        return;
    c->token_work.data = c;
    if (uv_queue_work(c->loop, &c->token_work, token_read_work, token_read_done) == 0) {
        c->token_work_busy = 1;
        c->handles_open++; /* the work request pins the client until done */
    }
}

static void on_token_timer(uv_timer_t *t)
{
    kube__token_reread(t->data);
}

void kube__token_start(struct kube_client *c)
{
    uv_timer_start(&c->token_timer, on_token_timer, TOKEN_REREAD_MS, TOKEN_REREAD_MS);
    uv_unref((uv_handle_t *)&c->token_timer);
}
