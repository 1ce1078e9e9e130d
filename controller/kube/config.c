/*
 * config.c - finds the API server and the credentials for it: a kubeconfig
 * read with libyaml's document API under kubectl's rules (minus the auth
 * plugins), or the pod's service-account files. Reads files; writes none.
 */
#include "kube/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define SA_DIR        "/var/run/secrets/kubernetes.io/serviceaccount"
#define NAMESPACE_MAX 1024
#define ERR_MAX       512
#define PEM_BEGIN     "-----BEGIN"

/* Control characters (a name in a hostile file may hold "\n") become '?',
 * so that an error stays one line. */
static void err_clean(char *err)
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
    err_clean(err);
    return -1;
}

/* Returns a malloc'd formatted string, or NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *dup_printf(const char *fmt, ...)
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

/* Returns a malloc'd NUL-terminated copy of n bytes, or NULL. */
static char *memdup0(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void free_secret(char *p, size_t n)
{
    if (p)
        OPENSSL_cleanse(p, n);
    free(p);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    }
    return 0;
}

/*
 * Reads the whole file at path into a malloc'd NUL-terminated *out. Returns
 * 0, -EFBIG past max bytes, or another -errno. Buffers are wiped before they
 * are freed, since most of what we read is a secret.
 */
static int read_capped(const char *path, size_t max, char **out, size_t *outlen)
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
            free_secret(data, len);
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
    free_secret(data, len);
    close(fd);
    return rc;
}

/* Returns 0 when path opens for reading and is not a directory, else -errno. */
static int check_readable(const char *path)
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
    int rc = read_capped(path, max, &raw, &len);
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
    else if (has_control(raw + start, end - start))
        rc = fail(err, errlen, "%s %s contains a control character", label, path);
    else if (!(*out = memdup0(raw + start, end - start)))
        rc = fail(err, errlen, "%s %s: out of memory", label, path);
    free_secret(raw, len);
    return rc;
}

int kube_token_read(const char *path, char **out, char *err, size_t errlen)
{
    return read_trimmed(path, KUBE_TOKEN_MAX_FILE, "token file", out, NULL, err, errlen);
}

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
    free_secret((char *)dec, inlen / 4 * 3 + 4);
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

/* ---- kubeconfig ---- */

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
    err_clean(k->err);
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
    if (!(*out = memdup0(v->data.scalar.value, len)))
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
            k->dir = memdup0(k->path, slash == k->path ? 1 : (size_t)(slash - k->path));
        } else {
            char *cwd = getcwd(NULL, 0);
            if (!cwd)
                return kc_fail(k, "%s: cannot resolve %s: %s", where, *out, strerror(errno));
            if (slash && slash - k->path <= INT_MAX)
                k->dir = dup_printf("%s/%.*s", cwd, (int)(slash - k->path), k->path);
            else
                k->dir = memdup0(cwd, strlen(cwd));
            free(cwd);
        }
        if (!k->dir)
            return kc_fail(k, "out of memory");
    }
    size_t dl = strlen(k->dir);
    char *abs = dup_printf("%s%s%s", k->dir, dl && k->dir[dl - 1] == '/' ? "" : "/", *out);
    free(*out);
    *out = abs;
    return abs ? 0 : kc_fail(k, "out of memory");
}

static int kc_check_file(struct kc *k, const char *where, const char *key, const char *path)
{
    int rc = check_readable(path);
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
    char where[ERR_MAX];
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
        if (has_control(cfg->token, strlen(cfg->token)))
            return kc_fail(k, "%s: token contains a control character", where);
        free(cfg->token_file);
        cfg->token_file = NULL;
    }
    if (cfg->token_file) {
        char *tok, e[ERR_MAX];
        if (kube_token_read(cfg->token_file, &tok, e, sizeof(e)))
            return kc_fail(k, "%s: %s", where, e);
        free_secret(tok, strlen(tok));
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
    char where[ERR_MAX];
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

    if (!(cfg->source = dup_printf("kubeconfig %s context %s", k->path, name))) {
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
    int e = read_capped(path, KUBE_CONFIG_MAX_FILE, &text, &len);
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
    free_secret(text, len);
    if (rc)
        kube_config_free(cfg);
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
    char *tok = NULL, *ns_file = NULL, e[ERR_MAX];
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
        cfg->server = dup_printf("https://[%s]:%s", host, port);
    else
        cfg->server = dup_printf("https://%s:%s", host, port);
    cfg->token_file = dup_printf("%.*s" SA_DIR "/token", r, root);
    cfg->ca_file = dup_printf("%.*s" SA_DIR "/ca.crt", r, root);
    cfg->source = dup_printf("in-cluster");
    ns_file = dup_printf("%.*s" SA_DIR "/namespace", r, root);
    if (!cfg->server || !cfg->token_file || !cfg->ca_file || !cfg->source || !ns_file) {
        fail(err, errlen, "in-cluster: out of memory");
        goto out;
    }
    if (kube_token_read(cfg->token_file, &tok, e, sizeof(e))) {
        fail(err, errlen, "in-cluster: %s", e);
        goto out;
    }
    int crc = check_readable(cfg->ca_file);
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
    free_secret(tok, tok ? strlen(tok) : 0);
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
            char *first = memdup0(env, n);
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
        char *p = dup_printf("%s/.kube/config", home);
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
    free_secret(cfg->key_data, cfg->key_data_len);
    free_secret(cfg->token, cfg->token ? strlen(cfg->token) : 0);
    free(cfg->token_file);
    free(cfg->namespace);
    free(cfg->source);
    memset(cfg, 0, sizeof(*cfg));
}
