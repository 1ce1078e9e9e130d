// SPDX-License-Identifier: Apache-2.0
/*
 * transfer.c - one attempt of a request as a curl easy handle: URL, verb,
 * body, headers, credentials, TLS and limits going out; Retry-After and the
 * body (buffered, or framed into watch events) coming back.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "kube/client_int.h"

#define CONNECT_TIMEOUT_MS 10000L

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct kube_request *r = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        size_t v = len - (sizeof(name) - 1);
        if (v >= sizeof(r->retry_after))
            v = sizeof(r->retry_after) - 1;
        memcpy(r->retry_after, data + sizeof(name) - 1, v);
        r->retry_after[v] = '\0';
    }
    return len;
}

/* A cancel from inside line_cb takes effect only once curl returns; until
 * then the rest of the chunk must not reach a caller that has let go. */
static int deliver_line(void *arg, char *line, size_t len)
{
    struct kube_request *r = arg;
    if (r->cancelled)
        return -ECANCELED;
    return r->line_cb(r->arg, line, len);
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct kube_request *r = userp;
    size_t len = size * n;

    if (r->cancelled)
        return 0;
    if (r->watch && !r->status_known) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        r->status_known = 1;
        r->streaming = code == 200;
    }
    if (!r->streaming)
        return buf_append(&r->resp, data, len) == 0 ? len : 0;

    /* The framer NUL-terminates lines where they lie; give it our copy. */
    buf_reset(&r->chunk);
    if (buf_append(&r->chunk, data, len) != 0)
        return 0;
    int rc = framer_feed(&r->framer, r->chunk.data, r->chunk.len, deliver_line, r);
    if (rc != 0) {
        r->stop_rc = rc;
        return 0;
    }
    return len;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *h, int *failed)
{
    struct curl_slist *l = curl_slist_append(list, h);
    if (!l) {
        *failed = 1;
        return list;
    }
    return l;
}

static const char *const verb_names[] = {"GET", "POST", "PUT", "PATCH", "PATCH", "DELETE"};

int kube__transfer_prepare(struct kube_request *r)
{
    struct kube_client *c = r->c;
    const struct kube_config *cfg = c->cfg;
    CURL *e;
    if (c->nspare > 0) {
        e = c->spare[--c->nspare];
        curl_easy_reset(e); /* options off; connection cache and sessions kept */
    } else {
        e = curl_easy_init();
    }
    int failed = 0;
    if (!e)
        return -ENOMEM;
    r->easy = e;

    struct curl_slist *h = add_header(NULL, "Accept: application/json", &failed);
    h = add_header(h, "Expect:", &failed);
    if (r->verb == KUBE_PATCH_APPLY)
        h = add_header(h, "Content-Type: application/apply-patch+yaml", &failed);
    else if (r->verb == KUBE_PATCH_MERGE)
        h = add_header(h, "Content-Type: application/merge-patch+json", &failed);
    else if (r->body)
        h = add_header(h, "Content-Type: application/json", &failed);
    if (cfg->host_header)
        h = add_header(h, cfg->host_header, &failed);
    const char *token = cfg->token ? cfg->token : c->token;
    if (token) {
        struct buf auth;
        buf_init(&auth, KUBE_TOKEN_MAX_FILE + 64);
        if (buf_printf(&auth, "Authorization: Bearer %s", token) == 0)
            h = add_header(h, auth.data, &failed);
        else
            failed = 1;
        if (auth.data)
            explicit_bzero(auth.data, auth.len);
        buf_free(&auth);
    }
    r->headers = h;
    if (failed)
        return -ENOMEM;

    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 15L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (cfg->proxy_url)
        curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url);
    else
        curl_easy_setopt(e, CURLOPT_PROXY, "");

    /* Trust what the kubeconfig or service account names and nothing
     * beside it: libcurl's built-in CA directory (every public CA on a
     * Debian host) is dropped, and so is its bundle when a CA is given. With
     * no CA at all the bundle stays, as kubectl then uses the system's. */
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    if (cfg->insecure_skip_tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->ca_data) {
        struct curl_blob blob = {cfg->ca_data, cfg->ca_data_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (cfg->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    }
    /* tls-server-name: the URL names it, the connection goes to the server. */
    if (c->connect_to)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to);
    if (cfg->cert_data) {
        struct curl_blob cert = {cfg->cert_data, cfg->cert_data_len, CURL_BLOB_NOCOPY};
        struct curl_blob key = {cfg->key_data, cfg->key_data_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (cfg->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
    }

    if (r->watch) {
        /* No overall timeout: a stream that stays silent past stall_ms is dead. */
        long stall_s = (long)((r->stall_ms + 999) / 1000);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.timeout_ms);
    }

    switch (r->verb) {
    case KUBE_GET:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
    case KUBE_POST:
    case KUBE_PUT:
    case KUBE_PATCH_APPLY:
    case KUBE_PATCH_MERGE:
    case KUBE_DELETE:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, verb_names[r->verb]);
        if (r->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        }
        break;
    }
    return 0;
}

void kube__transfer_release(struct kube_request *r)
{
    if (r->easy) {
        struct kube_client *c = r->c;
        curl_multi_remove_handle(c->multi, r->easy);
        if (c->nspare < KUBE__SPARE_EASY && !c->closing)
            c->spare[c->nspare++] = r->easy;
        else
            curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}
