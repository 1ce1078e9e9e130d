// SPDX-License-Identifier: Apache-2.0
/*
 * config.c - finds the API server and the credentials for it: chooses between
 * a kubeconfig (parsed in kubeconfig.c) and the pod's service-account files,
 * and reads bearer tokens. Reads files; writes none.
 */
#include "kube/config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/config_int.h"

#define SA_DIR        "/var/run/secrets/kubernetes.io/serviceaccount"
#define NAMESPACE_MAX 1024

void kube__err_clean(char *err)
{
    for (char *p = err; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

/* Writes one line into err and returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    kube__err_clean(err);
    return -1;
}

char *kube__dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *kube__memdup0(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void kube__free_secret(char *p, size_t n)
{
    if (p)
        OPENSSL_cleanse(p, n);
    free(p);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int kube__has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    }
    return 0;
}

/* Buffers are wiped before they are freed, since most of what we read is a
 * secret. */
int kube__read_capped(const char *path, size_t max, char **out, size_t *outlen)
{
    char *data = NULL;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    *outlen = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    /* Room for the size fstat reports plus one byte, to see EOF or growth. */
    size_t cap = max + 1;
    if (S_ISREG(st.st_mode) && st.st_size >= 0 && (uintmax_t)st.st_size < max)
        cap = (size_t)st.st_size + 1;
    data = malloc(cap + 1);
    if (!data) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                rc = -EFBIG;
                goto out;
            }
            size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
            char *n = malloc(ncap + 1);
            if (!n) {
                rc = -ENOMEM;
                goto out;
            }
            memcpy(n, data, len);
            kube__free_secret(data, len);
            data = n;
            cap = ncap;
        }
        ssize_t got = read(fd, data + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    data[len] = '\0';
    *out = data;
    *outlen = len;
    data = NULL;
out:
    kube__free_secret(data, len);
    close(fd);
    return rc;
}

int kube__check_readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    close(fd);
    return rc;
}

/*
 * Reads a small text file (label names it in errors), trimmed of surrounding
 * whitespace. Returns 0 with a malloc'd *out, or -1 with err; a missing file
 * is -1 with *missing set when missing is not NULL.
 */
static int read_trimmed(const char *path, size_t max, const char *label, char **out, int *missing,
                        char *err, size_t errlen)
{
    char *raw;
    size_t len;

    *out = NULL;
    int rc = kube__read_capped(path, max, &raw, &len);
    if (missing)
        *missing = rc == -ENOENT;
    if (rc == -EFBIG)
        return fail(err, errlen, "%s %s is larger than %zu KiB", label, path, max / 1024);
    if (rc)
        return fail(err, errlen, "%s %s: %s", label, path, strerror(-rc));
    size_t start = 0, end = len;
    while (start < end && is_space(raw[start]))
        start++;
    while (end > start && is_space(raw[end - 1]))
        end--;
    if (end == start)
        rc = fail(err, errlen, "%s %s is empty", label, path);
    else if (kube__has_control(raw + start, end - start))
        rc = fail(err, errlen, "%s %s contains a control character", label, path);
    else if (!(*out = kube__memdup0(raw + start, end - start)))
        rc = fail(err, errlen, "%s %s: out of memory", label, path);
    kube__free_secret(raw, len);
    return rc;
}

int kube_token_read(const char *path, char **out, char *err, size_t errlen)
{
    return read_trimmed(path, KUBE_TOKEN_MAX_FILE, "token file", out, NULL, err, errlen);
}

/* curl's URL parser finds the host (IPv6 in brackets, as CONNECT_TO wants)
 * and the port, 443 when the URL has none; the path prefix, if any, is kept
 * from the server as written. */
int kube__config_route(struct kube_config *cfg, char *err, size_t errlen)
{
    static const char https[] = "https://";
    char *host = NULL, *port = NULL;
    int rc = -1;

    if (!cfg->tls_server_name || strncmp(cfg->server, https, sizeof(https) - 1) != 0)
        return 0;
    CURLU *u = curl_url();
    if (!u)
        return fail(err, errlen, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        fail(err, errlen, "server \"%s\" is not a URL with a host", cfg->server);
        goto out;
    }
    const char *authority = cfg->server + sizeof(https) - 1;
    size_t alen = strcspn(authority, "/");
    if (memchr(authority, '@', alen)) {
        fail(err, errlen, "server \"%s\" must not carry user information", cfg->server);
        goto out;
    }
    cfg->url_base =
        kube__dup_printf("https://%s:%s%s", cfg->tls_server_name, port, authority + alen);
    cfg->connect_to = kube__dup_printf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
    cfg->host_header = kube__dup_printf("Host: %.*s", (int)alen, authority);
    if (!cfg->url_base || !cfg->connect_to || !cfg->host_header) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* ---- in-cluster ---- */

static int valid_host(const char *h)
{
    for (; *h; h++) {
        char c = *h;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_'))
            return 0;
    }
    return 1;
}

static int valid_port(const char *p)
{
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 5 || p[n] != '\0')
        return 0;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

int kube_config_in_cluster(struct kube_config *cfg, const char *root, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char *tok = NULL, *ns_file = NULL, e[KUBE__ERR_MAX];
    int missing = 0, rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    if (errlen)
        err[0] = '\0';
    if (!host || !*host)
        return fail(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST is not set");
    if (!port || !*port)
        return fail(err, errlen, "in-cluster: KUBERNETES_SERVICE_PORT is not set");
    if (!valid_host(host))
        return fail(err, errlen,
                    "in-cluster: KUBERNETES_SERVICE_HOST \"%s\" is not a host name or IP address",
                    host);
    if (!valid_port(port))
        return fail(err, errlen, "in-cluster: KUBERNETES_SERVICE_PORT \"%s\" is not a port number",
                    port);

    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/')
        rl--;
    if (rl > INT_MAX)
        return fail(err, errlen, "in-cluster: root path too long");
    int r = (int)rl;
    if (strchr(host, ':'))
        cfg->server = kube__dup_printf("https://[%s]:%s", host, port);
    else
        cfg->server = kube__dup_printf("https://%s:%s", host, port);
    cfg->token_file = kube__dup_printf("%.*s" SA_DIR "/token", r, root);
    cfg->ca_file = kube__dup_printf("%.*s" SA_DIR "/ca.crt", r, root);
    cfg->source = kube__dup_printf("in-cluster");
    ns_file = kube__dup_printf("%.*s" SA_DIR "/namespace", r, root);
    if (!cfg->server || !cfg->token_file || !cfg->ca_file || !cfg->source || !ns_file) {
        fail(err, errlen, "in-cluster: out of memory");
        goto out;
    }
    if (kube_token_read(cfg->token_file, &tok, e, sizeof(e))) {
        fail(err, errlen, "in-cluster: %s", e);
        goto out;
    }
    int crc = kube__check_readable(cfg->ca_file);
    if (crc) {
        fail(err, errlen, "in-cluster: CA file %s: %s", cfg->ca_file, strerror(-crc));
        goto out;
    }
    if (read_trimmed(ns_file, NAMESPACE_MAX, "namespace file", &cfg->namespace, &missing, e,
                     sizeof(e)) &&
        !missing) {
        fail(err, errlen, "in-cluster: %s", e);
        goto out;
    }
    rc = 0;
out:
    kube__free_secret(tok, tok ? strlen(tok) : 0);
    free(ns_file);
    if (rc)
        kube_config_free(cfg);
    return rc;
}

/* ---- the controller's choice ---- */

int kube__config_load_root(struct kube_config *cfg, const char *path_flag, const char *context,
                           const char *root, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    if (errlen)
        err[0] = '\0';
    if (context && context[0] == '\0')
        context = NULL;
    if (path_flag && path_flag[0])
        return kube_config_from_kubeconfig(cfg, path_flag, context, err, errlen);

    /* kubectl merges every file of a colon-separated $KUBECONFIG; kage reads
     * only the first non-empty entry, which serves the one-file case without
     * kubectl's merge rules. */
    const char *env = getenv("KUBECONFIG");
    if (env) {
        env += strspn(env, ":");
        size_t n = strcspn(env, ":");
        if (n > 0) {
            char *first = kube__memdup0(env, n);
            if (!first)
                return fail(err, errlen, "out of memory");
            int rc = kube_config_from_kubeconfig(cfg, first, context, err, errlen);
            free(first);
            return rc;
        }
    }

    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (host && host[0]) {
        if (context)
            return fail(err, errlen,
                        "--context %s needs a kubeconfig; in-cluster config has no contexts",
                        context);
        return kube_config_in_cluster(cfg, root, err, errlen);
    }

    const char *home = getenv("HOME");
    if (home && home[0]) {
        char *p = kube__dup_printf("%s/.kube/config", home);
        if (!p)
            return fail(err, errlen, "out of memory");
        struct stat st;
        /* Present but unreadable still counts, so its error is reported. */
        if (stat(p, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
            int rc = kube_config_from_kubeconfig(cfg, p, context, err, errlen);
            free(p);
            return rc;
        }
        free(p);
    }
    return fail(err, errlen, "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
}

int kube_config_load(struct kube_config *cfg, const char *path_flag, const char *context, char *err,
                     size_t errlen)
{
    return kube__config_load_root(cfg, path_flag, context, "", err, errlen);
}

void kube_config_free(struct kube_config *cfg)
{
    free(cfg->server);
    free(cfg->tls_server_name);
    free(cfg->proxy_url);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->cert_file);
    free(cfg->cert_data);
    free(cfg->key_file);
    kube__free_secret(cfg->key_data, cfg->key_data_len);
    kube__free_secret(cfg->token, cfg->token ? strlen(cfg->token) : 0);
    free(cfg->token_file);
    free(cfg->namespace);
    free(cfg->source);
    free(cfg->url_base);
    free(cfg->connect_to);
    free(cfg->host_header);
    memset(cfg, 0, sizeof(*cfg));
}
