// SPDX-License-Identifier: Apache-2.0
/*
 * response.c - what a finished transfer comes to: its code counted, a
 * failure typed (transport, API error, oversized), then a retry with
 * backoff or the caller's callback, with the object decoded when wanted.
 */
#include <errno.h>
#include <stdio.h>

#include "kube/client_int.h"
#include "kube/jsonscan.h"

const int kube_stat_codes[KUBE_CODES] = {0,   200, 201, 400, 401, 403, 404, 409,
                                         410, 422, 429, 500, 502, 503, 504, -1};

static void count_code(struct kube_client *c, enum kube_verb verb, long code)
{
    int i = KUBE_CODES - 1;
    for (int k = 0; k < KUBE_CODES - 1; k++) {
        if (kube_stat_codes[k] == code) {
            i = k;
            break;
        }
    }
    c->stats.by_code[verb][i]++;
}

void kube__response_done(struct kube_request *r, CURLcode result, long code)
{
    struct kube_client *c = r->c;
    struct kube_error e;
    int have_err = 0;

    count_code(c, r->verb, code);
    if (r->cancelled) {
        kube__req_close(r);
        return;
    }

    if (result != CURLE_OK) {
        char what[CURL_ERROR_SIZE + 96];
        if (r->stop_rc == -E2BIG)
            snprintf(what, sizeof(what), "watch event larger than %zu bytes",
                     c->opts.max_watch_line);
        else if (r->stop_rc)
            snprintf(what, sizeof(what), "stopped by caller (%d)", r->stop_rc);
        else if (result == CURLE_WRITE_ERROR)
            snprintf(what, sizeof(what), "response larger than %zu bytes", r->resp.max);
        else
            snprintf(what, sizeof(what), "%s: %s", curl_easy_strerror(result),
                     r->curl_err[0] ? r->curl_err : "no detail");
        kube_error_transport(&e, what);
        /* Typed, so a LIST can ask again for smaller pages. */
        if (result == CURLE_WRITE_ERROR && !r->stop_rc)
            snprintf(e.reason, sizeof(e.reason), "%s", KUBE_REASON_TOO_LARGE);
        have_err = 1;
    } else if (code < 200 || code > 299) {
        kube_error_from_response(&e, code, r->resp.data, r->resp.len,
                                 r->retry_after[0] ? r->retry_after : NULL);
        have_err = 1;
    }

    if (r->watch) {
        if (have_err)
            c->stats.failures++;
        kube__req_close(r);
        r->end_cb(r->arg, have_err ? &e : NULL);
        return;
    }

    if (have_err) {
        int retry = kube_error_retryable(&e);
        /* A rotated token: read the file again now and retry once. */
        if (e.code == 401 && c->cfg->token_file && r->attempts < 2) {
            kube__token_reread(c);
            retry = 1;
            e.retry_after_s = 1;
        }
        if (retry && r->attempts < c->opts.max_attempts && !c->closing) {
            kube__req_retry(r, e.retry_after_s);
            return;
        }
        c->stats.failures++;
        struct kube_response resp = {code, &e, NULL, r->attempts, 0};
        kube__req_close(r);
        r->cb(r->arg, &resp);
        return;
    }

    /* Only reads want the object back, and the few writes that ask: a
     * write's echo of what was written would otherwise cost a parse (a
     * fifth of the controller's CPU) for nothing. */
    json_t *json = NULL;
    bool decode = r->verb == KUBE_GET || r->echo;
    if (decode && !c->opts.keep_managed_fields) {
        if (r->strip)
            jsonscan_strip_members(r->resp.data, &r->resp.len, r->strip);
        else
            jsonscan_strip_managed_fields(r->resp.data, &r->resp.len);
    }
    if (decode && r->resp.len > 0) {
        json_error_t jerr;
        json = json_loadb(r->resp.data, r->resp.len, JSON_ALLOW_NUL, &jerr);
        if (!json) {
            char what[256];
            snprintf(what, sizeof(what), "invalid JSON in a %ld response: %s", code, jerr.text);
            kube_error_transport(&e, what);
            e.code = code;
            c->stats.failures++;
            struct kube_response resp = {code, &e, NULL, r->attempts, 0};
            kube__req_close(r);
            r->cb(r->arg, &resp);
            return;
        }
    }
    struct kube_response resp = {code, NULL, json, r->attempts, r->resp.len};
    kube__req_close(r);
    r->cb(r->arg, &resp);
    json_decref(json);
}
