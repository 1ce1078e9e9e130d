// SPDX-License-Identifier: Apache-2.0
/*
 * kubeconfig.c - reads one context of a kubeconfig file (its cluster and
 * user) into a kube_config, with libyaml's document API under kubectl's
 * rules, minus the auth plugins. Reads files; writes none.
 */
#include "kube/config.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "kube/config_int.h"

#define PEM_BEGIN "-----BEGIN"

static int is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

/*
 * Decodes standard padded base64, line breaks allowed, as Go's encoding/json
 * does for kubectl's []byte fields. OpenSSL's decoder alone stops silently at
 * a '-' (a PEM pasted as-is would decode to nothing), hence the alphabet
 * check first. Returns 0 with a malloc'd NUL-terminated *out, -EINVAL or
 * -ENOMEM.
 */
static int b64_decode(const char *in, size_t inlen, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (inlen > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < inlen; i++) {
        if (!is_b64_char((unsigned char)in[i]))
            return -EINVAL;
    }
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    unsigned char *dec = malloc(inlen / 4 * 3 + 4);
    int n = 0, fin = 0, rc = 0;
    if (!ctx || !dec) {
        rc = -ENOMEM;
        goto out;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, dec, &n, (const unsigned char *)in, (int)inlen) < 0 ||
        EVP_DecodeFinal(ctx, dec + n, &fin) != 1) {
        rc = -EINVAL;
        goto out;
    }
    *outlen = (size_t)n + (size_t)fin;
    dec[*outlen] = '\0';
    *out = (char *)dec;
    dec = NULL;
out:
    kube__free_secret((char *)dec, inlen / 4 * 3 + 4);
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

struct kc {
    const char *path;
    yaml_document_t doc;
    char *dir; /* absolute directory of path, made on first use */
    char *err;
    size_t errlen;
};

/* Writes "kubeconfig <path>: <message>" into err and returns -1. */
__attribute__((format(printf, 2, 3))) static int kc_fail(struct kc *k, const char *fmt, ...)
{
    if (k->errlen == 0)
        return -1;
    int n = snprintf(k->err, k->errlen, "kubeconfig %s: ", k->path);
    if (n >= 0 && (size_t)n < k->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    kube__err_clean(k->err);
    return -1;
}

/* Names the field at fault: "<where>: <key> <what>", where may be NULL. */
static int kc_field_fail(struct kc *k, const char *where, const char *key, const char *what)
{
    if (where)
        return kc_fail(k, "%s: %s %s", where, key, what);
    return kc_fail(k, "%s %s", key, what);
}

static int scalar_is(const yaml_node_t *n, const char *s)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* YAML 1.1 nulls, which kubectl (through Go's yaml) reads as "unset". */
static int is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return n->data.scalar.length == 0 || scalar_is(n, "~") || scalar_is(n, "null") ||
           scalar_is(n, "Null") || scalar_is(n, "NULL");
}

/*
 * Finds key in mapping map (NULL is an empty mapping) and returns its value
 * node in *out, NULL when absent. A key given twice is an error, as in
 * kubectl.
 */
static int map_get(struct kc *k, yaml_node_t *map, const char *key, const char *where,
                   yaml_node_t **out)
{
    *out = NULL;
    if (!map)
        return 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        if (!scalar_is(yaml_document_get_node(&k->doc, p->key), key))
            continue;
        if (*out)
            return kc_field_fail(k, where, key, "appears twice");
        *out = yaml_document_get_node(&k->doc, p->value);
    }
    return 0;
}

/* Like map_get, for a value that must be a mapping (or null). */
static int map_get_map(struct kc *k, yaml_node_t *map, const char *key, const char *where,
                       yaml_node_t **out)
{
    if (map_get(k, map, key, where, out))
        return -1;
    if (is_null(*out)) {
        *out = NULL;
        return 0;
    }
    if ((*out)->type != YAML_MAPPING_NODE)
        return kc_field_fail(k, where, key, "must be a mapping");
    return 0;
}

/* Reads a string field into a malloc'd *out; NULL when absent, null or "". */
static int get_str(struct kc *k, yaml_node_t *map, const char *key, const char *where, char **out)
{
    yaml_node_t *v;

    *out = NULL;
    if (map_get(k, map, key, where, &v))
        return -1;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SCALAR_NODE)
        return kc_field_fail(k, where, key, "must be a string");
    size_t len = v->data.scalar.length;
    if (len == 0)
        return 0;
    if (memchr(v->data.scalar.value, '\0', len))
        return kc_field_fail(k, where, key, "contains a NUL byte");
    if (!(*out = kube__memdup0(v->data.scalar.value, len)))
        return kc_fail(k, "out of memory");
    return 0;
}

/* Reads a boolean field (YAML 1.1 spellings, unquoted, as kubectl reads
 * them); absent is false. */
static int get_bool(struct kc *k, yaml_node_t *map, const char *key, const char *where, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    yaml_node_t *v;

    *out = 0;
    if (map_get(k, map, key, where, &v))
        return -1;
    if (is_null(v))
        return 0;
    if (v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
            if (scalar_is(v, yes[i])) {
                *out = 1;
                return 0;
            }
            if (scalar_is(v, no[i]))
                return 0;
        }
    }
    return kc_field_fail(k, where, key, "must be true or false");
}

/* Reads a base64 *-data field holding PEM into a malloc'd *out (NULL and 0
 * when absent or empty). */
static int get_pem_data(struct kc *k, yaml_node_t *map, const char *key, const char *where,
                        char **out, size_t *outlen)
{
    yaml_node_t *v;

    *out = NULL;
    *outlen = 0;
    if (map_get(k, map, key, where, &v))
        return -1;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SCALAR_NODE)
        return kc_field_fail(k, where, key, "must be a base64 string");
    int rc = b64_decode((const char *)v->data.scalar.value, v->data.scalar.length, out, outlen);
    if (rc == -ENOMEM)
        return kc_fail(k, "out of memory");
    if (rc)
        return kc_field_fail(k, where, key,
                             "is not valid base64 (it holds a PEM file, base64-encoded)");
    if (*outlen == 0) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (!memmem(*out, *outlen, PEM_BEGIN, strlen(PEM_BEGIN)))
        return kc_field_fail(k, where, key, "does not decode to PEM");
    return 0;
}

/* Reads a file path field, resolving a relative one against the
 * kubeconfig's directory as kubectl does. */
static int get_path(struct kc *k, yaml_node_t *map, const char *key, const char *where, char **out)
{
    if (get_str(k, map, key, where, out))
        return -1;
    if (!*out || (*out)[0] == '/')
        return 0;
    if (!k->dir) {
        const char *slash = strrchr(k->path, '/');
        if (k->path[0] == '/') {
            k->dir = kube__memdup0(k->path, slash == k->path ? 1 : (size_t)(slash - k->path));
        } else {
            char *cwd = getcwd(NULL, 0);
            if (!cwd)
                return kc_fail(k, "%s: cannot resolve %s: %s", where, *out, strerror(errno));
            if (slash && slash - k->path <= INT_MAX)
                k->dir = kube__dup_printf("%s/%.*s", cwd, (int)(slash - k->path), k->path);
            else
                k->dir = kube__memdup0(cwd, strlen(cwd));
            free(cwd);
        }
        if (!k->dir)
            return kc_fail(k, "out of memory");
    }
    size_t dl = strlen(k->dir);
    char *abs = kube__dup_printf("%s%s%s", k->dir, dl && k->dir[dl - 1] == '/' ? "" : "/", *out);
    free(*out);
    *out = abs;
    return abs ? 0 : kc_fail(k, "out of memory");
}

static int kc_check_file(struct kc *k, const char *where, const char *key, const char *path)
{
    int rc = kube__check_readable(path);
    if (rc)
        return kc_fail(k, "%s: %s %s: %s", where, key, path, strerror(-rc));
    return 0;
}

/*
 * Finds the entry of the list "<kind>s" whose name is name, and its body
 * mapping "<kind>" in *body (NULL when it has none). Returns 1 when found,
 * 0 when not, -1 on error (a malformed list, the name defined twice).
 */
static int kc_find(struct kc *k, yaml_node_t *root, const char *kind, const char *name,
                   yaml_node_t **body)
{
    char list_key[16];
    yaml_node_t *list, *found = NULL;

    *body = NULL;
    snprintf(list_key, sizeof(list_key), "%ss", kind);
    if (map_get(k, root, list_key, NULL, &list))
        return -1;
    if (is_null(list))
        return 0;
    if (list->type != YAML_SEQUENCE_NODE)
        return kc_fail(k, "%s must be a list", list_key);
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        yaml_node_t *entry = yaml_document_get_node(&k->doc, *it);
        if (!entry || entry->type != YAML_MAPPING_NODE)
            return kc_fail(k, "%s[%td] must be a mapping", list_key,
                           it - list->data.sequence.items.start);
        yaml_node_t *n;
        if (map_get(k, entry, "name", list_key, &n))
            return -1;
        if (!scalar_is(n, name))
            continue;
        if (found)
            return kc_fail(k, "%s \"%s\" is defined twice", kind, name);
        found = entry;
    }
    if (!found)
        return 0;
    char where[KUBE__ERR_MAX];
    snprintf(where, sizeof(where), "%s \"%s\"", kind, name);
    return map_get_map(k, found, kind, where, body) ? -1 : 1;
}

static int kc_cluster(struct kc *k, yaml_node_t *c, const char *where, struct kube_config *cfg)
{
    if (get_str(k, c, "server", where, &cfg->server) ||
        get_str(k, c, "tls-server-name", where, &cfg->tls_server_name) ||
        get_str(k, c, "proxy-url", where, &cfg->proxy_url) ||
        get_path(k, c, "certificate-authority", where, &cfg->ca_file) ||
        get_pem_data(k, c, "certificate-authority-data", where, &cfg->ca_data, &cfg->ca_data_len) ||
        get_bool(k, c, "insecure-skip-tls-verify", where, &cfg->insecure_skip_tls_verify))
        return -1;
    if (!cfg->server)
        return kc_fail(k, "%s has no server", where);
    size_t scheme = strncmp(cfg->server, "https://", 8) == 0  ? 8
                    : strncmp(cfg->server, "http://", 7) == 0 ? 7
                                                              : 0;
    if (!scheme)
        return kc_fail(k, "%s: server \"%s\" must start with https:// or http://", where,
                       cfg->server);
    size_t len = strlen(cfg->server);
    while (len > scheme && cfg->server[len - 1] == '/')
        cfg->server[--len] = '\0';
    if (len == scheme)
        return kc_fail(k, "%s: server \"%s\" has no host", where, cfg->server);
    if (cfg->ca_data) {
        free(cfg->ca_file);
        cfg->ca_file = NULL;
    }
    /* kubectl refuses this pair too: a CA that is never checked misleads. */
    if (cfg->insecure_skip_tls_verify && (cfg->ca_file || cfg->ca_data))
        return kc_fail(
            k, "%s: insecure-skip-tls-verify cannot be combined with a certificate-authority",
            where);
    if (cfg->ca_file && kc_check_file(k, where, "certificate-authority", cfg->ca_file))
        return -1;
    /* It becomes the URL's host and part of curl's CONNECT_TO entry. */
    const char *tsn = cfg->tls_server_name;
    if (tsn &&
        (strlen(tsn) > 253 || strspn(tsn, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(tsn)))
        return kc_fail(k, "%s: tls-server-name \"%s\" is not a DNS name or IPv4 address", where,
                       tsn);
    char e[KUBE__ERR_MAX];
    if (kube__config_route(cfg, e, sizeof(e)))
        return kc_fail(k, "%s: %s", where, e);
    return 0;
}

static int kc_user(struct kc *k, yaml_node_t *u, const char *where, struct kube_config *cfg)
{
    /* Plugins run programs; basic auth and impersonation would silently
     * change who we are. Better to refuse them by name. */
    static const char *const unsupported[] = {
        "exec", "auth-provider", "username",  "password",
        "as",   "as-uid",        "as-groups", "as-user-extra",
    };
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        yaml_node_t *v;
        if (map_get(k, u, unsupported[i], where, &v))
            return -1;
        if (!is_null(v))
            return kc_fail(k,
                           "%s uses %s, which kage does not support (use a token, tokenFile or "
                           "client certificate)",
                           where, unsupported[i]);
    }
    if (get_path(k, u, "client-certificate", where, &cfg->cert_file) ||
        get_pem_data(k, u, "client-certificate-data", where, &cfg->cert_data,
                     &cfg->cert_data_len) ||
        get_path(k, u, "client-key", where, &cfg->key_file) ||
        get_pem_data(k, u, "client-key-data", where, &cfg->key_data, &cfg->key_data_len) ||
        get_str(k, u, "token", where, &cfg->token) ||
        get_path(k, u, "tokenFile", where, &cfg->token_file))
        return -1;
    if (cfg->cert_data) {
        free(cfg->cert_file);
        cfg->cert_file = NULL;
    }
    if (cfg->key_data) {
        free(cfg->key_file);
        cfg->key_file = NULL;
    }
    int has_cert = cfg->cert_file || cfg->cert_data, has_key = cfg->key_file || cfg->key_data;
    if (has_cert && !has_key)
        return kc_fail(k, "%s has a client-certificate but no client-key", where);
    if (has_key && !has_cert)
        return kc_fail(k, "%s has a client-key but no client-certificate", where);
    if (cfg->cert_file && kc_check_file(k, where, "client-certificate", cfg->cert_file))
        return -1;
    if (cfg->key_file && kc_check_file(k, where, "client-key", cfg->key_file))
        return -1;
    if (cfg->token) {
        if (kube__has_control(cfg->token, strlen(cfg->token)))
            return kc_fail(k, "%s: token contains a control character", where);
        free(cfg->token_file);
        cfg->token_file = NULL;
    }
    if (cfg->token_file) {
        char *tok, e[KUBE__ERR_MAX];
        if (kube_token_read(cfg->token_file, &tok, e, sizeof(e)))
            return kc_fail(k, "%s: %s", where, e);
        kube__free_secret(tok, strlen(tok));
    }
    return 0;
}

/* Parses text into k->doc, or fails naming the line. */
static int kc_parse(struct kc *k, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return kc_fail(k, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&p, &k->doc);
    if (!ok && p.error == YAML_MEMORY_ERROR)
        kc_fail(k, "out of memory");
    else if (!ok && p.error == YAML_READER_ERROR)
        kc_fail(k, "YAML error at byte %zu: %s", p.problem_offset, p.problem ? p.problem : "?");
    else if (!ok)
        kc_fail(k, "YAML error at line %zu column %zu: %s", p.problem_mark.line + 1,
                p.problem_mark.column + 1, p.problem ? p.problem : "syntax error");
    /* The parser's decoded copy of the file holds the same secrets. */
    if (p.buffer.start)
        OPENSSL_cleanse(p.buffer.start, (size_t)(p.buffer.end - p.buffer.start));
    yaml_parser_delete(&p);
    return ok ? 0 : -1;
}

static void kc_wipe_doc(yaml_document_t *doc)
{
    for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++) {
        if (n->type == YAML_SCALAR_NODE)
            OPENSSL_cleanse(n->data.scalar.value, n->data.scalar.length);
    }
    yaml_document_delete(doc);
}

/* Reads the chosen context, its cluster and its user into cfg. */
static int kc_load(struct kc *k, const char *context, struct kube_config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    char *current = NULL, *cluster = NULL, *user = NULL;
    char where[KUBE__ERR_MAX];
    const char *name;
    yaml_node_t *body;
    int found, rc = -1;

    if (is_null(root))
        return kc_fail(k, "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return kc_fail(k, "the top level must be a mapping");
    if (!context && get_str(k, root, "current-context", NULL, &current))
        goto out;
    if (!context && !current) {
        kc_fail(k, "no current-context is set; pass --context");
        goto out;
    }
    name = context ? context : current;
    snprintf(where, sizeof(where), "context \"%s\"", name);
    found = kc_find(k, root, "context", name, &body);
    if (found <= 0) {
        if (found == 0)
            kc_fail(k, "context \"%s\" not found", name);
        goto out;
    }
    if (get_str(k, body, "cluster", where, &cluster) || get_str(k, body, "user", where, &user) ||
        get_str(k, body, "namespace", where, &cfg->namespace))
        goto out;
    if (!cluster || !user) {
        kc_fail(k, "%s names no %s", where, cluster ? "user" : "cluster");
        goto out;
    }

    found = kc_find(k, root, "cluster", cluster, &body);
    if (found <= 0) {
        if (found == 0)
            kc_fail(k, "%s refers to cluster \"%s\", which is not defined", where, cluster);
        goto out;
    }
    snprintf(where, sizeof(where), "cluster \"%s\"", cluster);
    if (kc_cluster(k, body, where, cfg))
        goto out;

    snprintf(where, sizeof(where), "context \"%s\"", name);
    found = kc_find(k, root, "user", user, &body);
    if (found <= 0) {
        if (found == 0)
            kc_fail(k, "%s refers to user \"%s\", which is not defined", where, user);
        goto out;
    }
    snprintf(where, sizeof(where), "user \"%s\"", user);
    if (kc_user(k, body, where, cfg))
        goto out;
    /* A bearer token over plain HTTP is readable by anyone on the path. */
    if (strncmp(cfg->server, "http://", 7) == 0 && (cfg->token || cfg->token_file)) {
        kc_fail(k,
                "%s: %s is set, but cluster \"%s\" has the plain-HTTP server %s; a bearer "
                "token is sent only to an https:// server",
                where, cfg->token ? "token" : "tokenFile", cluster, cfg->server);
        goto out;
    }

    if (!(cfg->source = kube__dup_printf("kubeconfig %s context %s", k->path, name))) {
        kc_fail(k, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(current);
    free(cluster);
    free(user);
    return rc;
}

int kube_config_from_kubeconfig(struct kube_config *cfg, const char *path, const char *context,
                                char *err, size_t errlen)
{
    struct kc k = {.path = path, .err = err, .errlen = errlen};
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    if (errlen)
        err[0] = '\0';
    if (context && context[0] == '\0')
        context = NULL;
    int e = kube__read_capped(path, KUBE_CONFIG_MAX_FILE, &text, &len);
    if (e == -EFBIG) {
        kc_fail(&k, "the file is larger than %u MiB", KUBE_CONFIG_MAX_FILE / (1024 * 1024));
        goto out;
    }
    if (e) {
        kc_fail(&k, "%s", strerror(-e));
        goto out;
    }
    if (kc_parse(&k, text, len))
        goto out;
    rc = kc_load(&k, context, cfg);
    kc_wipe_doc(&k.doc);
out:
    free(k.dir);
    kube__free_secret(text, len);
    if (rc)
        kube_config_free(cfg);
    return rc;
}
