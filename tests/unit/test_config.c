// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the client configuration: kubeconfig, in-cluster, the
 * controller's choice between them, and token files. Each test writes its
 * inputs into its own temporary directory and removes it afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/config.h"

#define ERRLEN  512
#define WANTLEN (PATH_MAX + ERRLEN) /* room for a message naming a path */

/* PEM text and its base64, as a kubeconfig's *-data fields hold it. */
#define CA_PEM   "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define CA_B64   "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define CERT_B64 \
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNMSUVOVAotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
#define KEY_PEM   "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
#define KEY_B64   "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCktFWQotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="
#define CERT_USER "    client-certificate-data: " CERT_B64 "\n    client-key-data: " KEY_B64 "\n"

struct fx {
    char dir[PATH_MAX]; /* the test's temporary directory, symlinks resolved */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    char templ[PATH_MAX];
    snprintf(templ, sizeof(templ), "%s/kage-config-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(templ) || !realpath(templ, fx->dir)) {
        free(fx);
        return -1;
    }
    /* Each test states the environment it depends on. */
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    char home[PATH_MAX + 8];
    snprintf(home, sizeof(home), "%s/home", fx->dir);
    setenv("HOME", home, 1);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc;
}

/* Returns <test dir>/<rel> in one of a few rotating static buffers. */
static const char *in_dir(const struct fx *fx, const char *rel)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/%s", fx->dir, rel);
    assert_true(n > 0 && n < PATH_MAX);
    return b;
}

/* Writes len bytes to <test dir>/<rel>, creating the directories on the way. */
static void put_bytes(const struct fx *fx, const char *rel, const char *data, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", in_dir(fx, rel));
    for (char *s = path + strlen(fx->dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
        *s = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void put(const struct fx *fx, const char *rel, const char *text)
{
    put_bytes(fx, rel, text, strlen(text));
}

/* Writes yaml to <test dir>/config and loads it. */
static int load_kc(const struct fx *fx, const char *yaml, const char *context,
                   struct kube_config *cfg, char *err)
{
    put(fx, "config", yaml);
    return kube_config_from_kubeconfig(cfg, in_dir(fx, "config"), context, err, ERRLEN);
}

/* A kubeconfig whose current context "dev" joins cluster "c" and user "u",
 * with the given field lines (indented four spaces) in each. */
static const char *one_context(const char *cluster, const char *user)
{
    static char yaml[8192];
    int n = snprintf(yaml, sizeof(yaml),
                     "apiVersion: v1\n"
                     "kind: Config\n"
                     "current-context: dev\n"
                     "contexts:\n"
                     "- name: dev\n"
                     "  context: {cluster: c, user: u}\n"
                     "clusters:\n"
                     "- name: c\n"
                     "  cluster:\n"
                     "%s"
                     "users:\n"
                     "- name: u\n"
                     "  user:\n"
                     "%s",
                     cluster, user);
    assert_true(n > 0 && (size_t)n < sizeof(yaml));
    return yaml;
}

#define SERVER "    server: https://c.example:6443\n"

/* Asserts that err is "kubeconfig <test dir>/config: <msg>". */
static void assert_kc_err(const struct fx *fx, const char *err, const char *msg)
{
    char want[WANTLEN];
    snprintf(want, sizeof(want), "kubeconfig %s: %s", in_dir(fx, "config"), msg);
    assert_string_equal(err, want);
}

/* Loads yaml, expects failure with exactly msg, and an empty cfg after. */
static void assert_kc_fails(const struct fx *fx, const char *yaml, const char *context,
                            const char *msg)
{
    struct kube_config cfg, zero;
    char err[ERRLEN];
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(load_kc(fx, yaml, context, &cfg, err), -1);
    assert_kc_err(fx, err, msg);
    assert_memory_equal(&cfg, &zero, sizeof(cfg));
}

static void assert_data(const char *got, size_t got_len, const char *want)
{
    assert_non_null(got);
    assert_int_equal(got_len, strlen(want));
    assert_memory_equal(got, want, got_len);
    assert_int_equal(got[got_len], '\0');
}

/* ---- kubeconfig: what loads ---- */

static const char two_contexts[] = "apiVersion: v1\n"
                                   "kind: Config\n"
                                   "current-context: dev\n"
                                   "contexts:\n"
                                   "- name: dev\n"
                                   "  context:\n"
                                   "    cluster: dev-cluster\n"
                                   "    user: dev-user\n"
                                   "    namespace: team-a\n"
                                   "- name: prod\n"
                                   "  context: {cluster: prod-cluster, user: prod-user}\n"
                                   "clusters:\n"
                                   "- name: dev-cluster\n"
                                   "  cluster:\n"
                                   "    server: https://dev.example:6443\n"
                                   "    certificate-authority-data: " CA_B64 "\n"
                                   "- name: prod-cluster\n"
                                   "  cluster:\n"
                                   "    server: https://prod.example:443//\n"
                                   "    certificate-authority-data: " CA_B64 "\n"
                                   "users:\n"
                                   "- name: dev-user\n"
                                   "  user:\n" CERT_USER "- name: prod-user\n"
                                   "  user:\n"
                                   "    token: prod-token\n";

static void current_context_picks_cluster_user_and_namespace(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], source[PATH_MAX + 64];

    assert_int_equal(load_kc(fx, two_contexts, NULL, &cfg, err), 0);
    assert_string_equal(cfg.server, "https://dev.example:6443");
    assert_data(cfg.ca_data, cfg.ca_data_len, CA_PEM);
    assert_data(cfg.cert_data, cfg.cert_data_len, CERT_PEM);
    assert_data(cfg.key_data, cfg.key_data_len, KEY_PEM);
    assert_string_equal(cfg.namespace, "team-a");
    snprintf(source, sizeof(source), "kubeconfig %s context dev", in_dir(fx, "config"));
    assert_string_equal(cfg.source, source);
    assert_null(cfg.ca_file);
    assert_null(cfg.cert_file);
    assert_null(cfg.key_file);
    assert_null(cfg.token);
    assert_null(cfg.token_file);
    assert_null(cfg.tls_server_name);
    assert_null(cfg.proxy_url);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    kube_config_free(&cfg);
}

static void an_explicit_context_wins_over_current_context(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], source[PATH_MAX + 64];

    assert_int_equal(load_kc(fx, two_contexts, "prod", &cfg, err), 0);
    assert_string_equal(cfg.server, "https://prod.example:443"); /* trailing slashes dropped */
    assert_string_equal(cfg.token, "prod-token");
    assert_null(cfg.namespace);
    assert_null(cfg.cert_data);
    assert_null(cfg.key_data);
    snprintf(source, sizeof(source), "kubeconfig %s context prod", in_dir(fx, "config"));
    assert_string_equal(cfg.source, source);
    kube_config_free(&cfg);

    /* An empty --context means "not given". */
    assert_int_equal(load_kc(fx, two_contexts, "", &cfg, err), 0);
    assert_string_equal(cfg.server, "https://dev.example:6443");
    kube_config_free(&cfg);
}

static void relative_certificate_paths_resolve_against_the_kubeconfigs_directory(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], user[PATH_MAX + 128];

    put(fx, "kube/ca.crt", CA_PEM);
    put(fx, "kube/pki/client.crt", CERT_PEM);
    put(fx, "keys/client.key", KEY_PEM);
    snprintf(user, sizeof(user), "    client-certificate: pki/client.crt\n    client-key: %s\n",
             in_dir(fx, "keys/client.key"));
    put(fx, "kube/config", one_context(SERVER "    certificate-authority: ca.crt\n", user));

    assert_int_equal(
        kube_config_from_kubeconfig(&cfg, in_dir(fx, "kube/config"), NULL, err, ERRLEN), 0);
    assert_string_equal(cfg.ca_file, in_dir(fx, "kube/ca.crt"));
    assert_string_equal(cfg.cert_file, in_dir(fx, "kube/pki/client.crt"));
    assert_string_equal(cfg.key_file, in_dir(fx, "keys/client.key")); /* absolute: kept */
    assert_null(cfg.ca_data);
    assert_null(cfg.cert_data);
    assert_null(cfg.key_data);
    kube_config_free(&cfg);
}

static void a_relative_kubeconfig_path_resolves_against_the_working_directory(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], cwd[PATH_MAX];

    put(fx, "kube/ca.crt", CA_PEM);
    put(fx, "kube/config", one_context(SERVER "    certificate-authority: ca.crt\n", ""));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->dir), 0);
    int rc = kube_config_from_kubeconfig(&cfg, "kube/config", NULL, err, ERRLEN);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.ca_file, in_dir(fx, "kube/ca.crt"));
    assert_string_equal(cfg.source, "kubeconfig kube/config context dev");
    kube_config_free(&cfg);
}

static void a_token_file_is_resolved_and_left_for_the_client_to_reread(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    put(fx, "secrets/token", "abc\n");
    assert_int_equal(
        load_kc(fx, one_context(SERVER, "    tokenFile: secrets/token\n"), NULL, &cfg, err), 0);
    assert_string_equal(cfg.token_file, in_dir(fx, "secrets/token"));
    assert_null(cfg.token);
    kube_config_free(&cfg);
}

static void a_static_token_wins_over_a_token_file(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    assert_int_equal(load_kc(fx,
                             one_context(SERVER, "    token: static-token\n"
                                                 "    tokenFile: does-not-exist\n"),
                             NULL, &cfg, err),
                     0);
    assert_string_equal(cfg.token, "static-token");
    assert_null(cfg.token_file);
    kube_config_free(&cfg);
}

static void insecure_tls_server_name_and_proxy_are_kept(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    assert_int_equal(load_kc(fx,
                             one_context(SERVER "    insecure-skip-tls-verify: true\n"
                                                "    tls-server-name: kubernetes.default\n"
                                                "    proxy-url: http://proxy.example:3128\n",
                                         "    token: t\n"),
                             NULL, &cfg, err),
                     0);
    assert_int_equal(cfg.insecure_skip_tls_verify, 1);
    assert_string_equal(cfg.tls_server_name, "kubernetes.default");
    assert_string_equal(cfg.proxy_url, "http://proxy.example:3128");
    assert_null(cfg.ca_file);
    assert_null(cfg.ca_data);
    kube_config_free(&cfg);

    /* YAML 1.1 spellings, as kubectl reads them. */
    assert_int_equal(
        load_kc(fx, one_context(SERVER "    insecure-skip-tls-verify: yes\n", ""), NULL, &cfg, err),
        0);
    assert_int_equal(cfg.insecure_skip_tls_verify, 1);
    kube_config_free(&cfg);
    assert_int_equal(load_kc(fx, one_context(SERVER "    insecure-skip-tls-verify: False\n", ""),
                             NULL, &cfg, err),
                     0);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    kube_config_free(&cfg);
}

static void embedded_data_wins_over_file_references(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    /* The files named do not exist: with data given they are never read. */
    assert_int_equal(load_kc(fx,
                             one_context(SERVER "    certificate-authority: nope/ca.crt\n"
                                                "    certificate-authority-data: " CA_B64 "\n",
                                         "    client-certificate: nope/c.crt\n"
                                         "    client-key: nope/c.key\n" CERT_USER),
                             NULL, &cfg, err),
                     0);
    assert_null(cfg.ca_file);
    assert_null(cfg.cert_file);
    assert_null(cfg.key_file);
    assert_data(cfg.ca_data, cfg.ca_data_len, CA_PEM);
    assert_data(cfg.cert_data, cfg.cert_data_len, CERT_PEM);
    assert_data(cfg.key_data, cfg.key_data_len, KEY_PEM);
    kube_config_free(&cfg);
}

static void base64_data_may_wrap_lines_and_end_in_padding(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    /* A block scalar wrapped at 16 columns, CRLF line ends included. */
    assert_int_equal(load_kc(fx,
                             one_context(SERVER, "    client-certificate-data: " CERT_B64 "\n"
                                                 "    client-key-data: |\n"
                                                 "      LS0tLS1CRUdJTiBQ\n"
                                                 "      UklWQVRFIEtFWS0t\r\n"
                                                 "      LS0tCktFWQotLS0t\n"
                                                 "      LUVORCBQUklWQVRF\n"
                                                 "      IEtFWS0tLS0tCg==\n"),
                             NULL, &cfg, err),
                     0);
    assert_data(cfg.key_data, cfg.key_data_len, KEY_PEM);
    kube_config_free(&cfg);

    /* Lengths 17, 18 and 19: one pad, none, two. */
    static const struct {
        const char *b64, *pem;
    } cases[] = {
        {"LS0tLS1CRUdJTiBYLS0tLS0=", "-----BEGIN X-----"},
        {"LS0tLS1CRUdJTiBYLS0tLS1h", "-----BEGIN X-----a"},
        {"LS0tLS1CRUdJTiBYLS0tLS1hYg==", "-----BEGIN X-----ab"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cluster[256];
        snprintf(cluster, sizeof(cluster), SERVER "    certificate-authority-data: %s\n",
                 cases[i].b64);
        assert_int_equal(load_kc(fx, one_context(cluster, ""), NULL, &cfg, err), 0);
        assert_data(cfg.ca_data, cfg.ca_data_len, cases[i].pem);
        kube_config_free(&cfg);
    }
}

static void a_json_kubeconfig_reads_like_yaml(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    assert_int_equal(
        load_kc(fx,
                "{\n"
                "\t\"apiVersion\": \"v1\",\n"
                "\t\"current-context\": \"j\",\n"
                "\t\"contexts\": [{\"name\": \"j\", \"context\": {\"cluster\": \"c\", \"user\": "
                "\"u\", \"namespace\": \"ns\"}}],\n"
                "\t\"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": "
                "\"https://10.0.0.1:6443\", \"insecure-skip-tls-verify\": true}}],\n"
                "\t\"users\": [{\"name\": \"u\", \"user\": {\"token\": \"json-token\"}}]\n"
                "}\n",
                NULL, &cfg, err),
        0);
    assert_string_equal(cfg.server, "https://10.0.0.1:6443");
    assert_int_equal(cfg.insecure_skip_tls_verify, 1);
    assert_string_equal(cfg.token, "json-token");
    assert_string_equal(cfg.namespace, "ns");
    kube_config_free(&cfg);
}

static void null_and_empty_fields_count_as_unset(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    assert_int_equal(load_kc(fx,
                             "current-context: dev\n"
                             "contexts:\n"
                             "- name: dev\n"
                             "  context: {cluster: c, user: u, namespace: ~}\n"
                             "clusters:\n"
                             "- name: c\n"
                             "  cluster:\n"
                             "    server: http://127.0.0.1:8001\n"
                             "    tls-server-name: null\n"
                             "    insecure-skip-tls-verify:\n"
                             "    certificate-authority: ''\n"
                             "    certificate-authority-data: \"\"\n"
                             "users:\n"
                             "- name: u\n"
                             "  user:\n"
                             "    token: \"\"\n"
                             "    exec: null\n",
                             NULL, &cfg, err),
                     0);
    assert_string_equal(cfg.server, "http://127.0.0.1:8001");
    assert_null(cfg.namespace);
    assert_null(cfg.tls_server_name);
    assert_null(cfg.ca_file);
    assert_null(cfg.ca_data);
    assert_int_equal(cfg.ca_data_len, 0);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    assert_null(cfg.token); /* a user with no credentials is anonymous */
    assert_null(cfg.token_file);
    kube_config_free(&cfg);
}

static void a_kubeconfig_of_exactly_4_mib_loads(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];
    const char *head = one_context(SERVER, "    token: t\n");
    size_t hl = strlen(head);
    char *big = malloc(KUBE_CONFIG_MAX_FILE);

    assert_non_null(big);
    memcpy(big, head, hl);
    memset(big + hl, ' ', KUBE_CONFIG_MAX_FILE - hl - 1);
    big[hl] = '#';
    big[KUBE_CONFIG_MAX_FILE - 1] = '\n';
    put_bytes(fx, "config", big, KUBE_CONFIG_MAX_FILE);
    free(big);
    assert_int_equal(kube_config_from_kubeconfig(&cfg, in_dir(fx, "config"), NULL, err, ERRLEN), 0);
    assert_string_equal(cfg.token, "t");
    kube_config_free(&cfg);
}

/* ---- kubeconfig: what is refused, and how it is named ---- */

static void a_missing_kubeconfig_is_named(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], want[WANTLEN];

    assert_int_equal(kube_config_from_kubeconfig(&cfg, in_dir(fx, "nope"), NULL, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "kubeconfig %s: No such file or directory", in_dir(fx, "nope"));
    assert_string_equal(err, want);

    assert_int_equal(kube_config_from_kubeconfig(&cfg, fx->dir, NULL, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "kubeconfig %s: Is a directory", fx->dir);
    assert_string_equal(err, want);
}

static void a_kubeconfig_over_4_mib_is_refused(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];
    char *big = malloc(KUBE_CONFIG_MAX_FILE + 1);

    assert_non_null(big);
    memset(big, '\n', KUBE_CONFIG_MAX_FILE + 1);
    put_bytes(fx, "config", big, KUBE_CONFIG_MAX_FILE + 1);
    free(big);
    assert_int_equal(kube_config_from_kubeconfig(&cfg, in_dir(fx, "config"), NULL, err, ERRLEN),
                     -1);
    assert_kc_err(fx, err, "the file is larger than 4 MiB");
}

static void a_yaml_syntax_error_names_its_line(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "clusters:\n"
                    "- name: c\n"
                    "  cluster: {server: https://x\n"
                    "users: []\n",
                    NULL, "YAML error at line 5 column 6: did not find expected ',' or '}'");
    assert_kc_fails(
        fx, "current-context: dev\n\tclusters: []\n", NULL,
        "YAML error at line 2 column 1: found a tab character that violates indentation");
    assert_kc_fails(fx, "current-context: \xff\n", NULL,
                    "YAML error at byte 17: invalid leading UTF-8 octet");
}

static void an_empty_or_non_mapping_kubeconfig_is_refused(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, "", NULL, "the file is empty");
    assert_kc_fails(fx, "# only a comment\n", NULL, "the file is empty");
    assert_kc_fails(fx, "- a\n- b\n", NULL, "the top level must be a mapping");
}

static void without_current_context_a_context_must_be_given(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, "clusters: []\n", NULL, "no current-context is set; pass --context");
    assert_kc_fails(fx, "current-context: \"\"\n", NULL,
                    "no current-context is set; pass --context");
}

static void an_unknown_context_is_named(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, two_contexts, "staging", "context \"staging\" not found");
    assert_kc_fails(fx, "current-context: gone\n", NULL, "context \"gone\" not found");
}

static void a_context_must_name_a_defined_cluster_and_user(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "contexts: [{name: dev, context: {user: u}}]\n",
                    NULL, "context \"dev\" names no cluster");
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "contexts: [{name: dev, context: {cluster: c}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://c'}}]\n",
                    NULL, "context \"dev\" names no user");
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "contexts: [{name: dev, context: {cluster: c2, user: u}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://c'}}]\n",
                    NULL, "context \"dev\" refers to cluster \"c2\", which is not defined");
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "contexts: [{name: dev, context: {cluster: c, user: u2}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://c'}}]\n"
                    "users: [{name: u, user: {token: t}}]\n",
                    NULL, "context \"dev\" refers to user \"u2\", which is not defined");
}

static void a_cluster_needs_an_http_or_https_server(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, one_context("    insecure-skip-tls-verify: true\n", ""), NULL,
                    "cluster \"c\" has no server");
    assert_kc_fails(fx, one_context("    server: c.example:6443\n", ""), NULL,
                    "cluster \"c\": server \"c.example:6443\" must start with https:// or http://");
    assert_kc_fails(fx, one_context("    server: https:///\n", ""), NULL,
                    "cluster \"c\": server \"https://\" has no host");
}

static void a_client_certificate_needs_its_key_and_a_key_its_certificate(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, one_context(SERVER, "    client-certificate-data: " CERT_B64 "\n"), NULL,
                    "user \"u\" has a client-certificate but no client-key");
    assert_kc_fails(fx, one_context(SERVER, "    client-key-data: " KEY_B64 "\n"), NULL,
                    "user \"u\" has a client-key but no client-certificate");
}

static void exec_and_auth_provider_users_are_refused_by_name(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx,
                    one_context(SERVER, "    exec:\n"
                                        "      apiVersion: client.authentication.k8s.io/v1\n"
                                        "      command: aws\n"),
                    NULL,
                    "user \"u\" uses exec, which kage does not support (use a token, tokenFile or "
                    "client certificate)");
    assert_kc_fails(fx, one_context(SERVER, "    auth-provider: {name: gcp}\n"), NULL,
                    "user \"u\" uses auth-provider, which kage does not support (use a token, "
                    "tokenFile or client certificate)");
    assert_kc_fails(fx, one_context(SERVER, "    username: admin\n    password: secret\n"), NULL,
                    "user \"u\" uses username, which kage does not support (use a token, "
                    "tokenFile or client certificate)");
    assert_kc_fails(fx, one_context(SERVER, "    token: t\n    as: someone-else\n"), NULL,
                    "user \"u\" uses as, which kage does not support (use a token, "
                    "tokenFile or client certificate)");
}

static void invalid_base64_is_refused_naming_the_field(void **state)
{
    struct fx *fx = *state;
    /* A PEM pasted as-is: OpenSSL alone would decode it to nothing. */
    assert_kc_fails(fx,
                    one_context(SERVER "    certificate-authority-data: |\n"
                                       "      -----BEGIN CERTIFICATE-----\n"
                                       "      Q0E=\n"
                                       "      -----END CERTIFICATE-----\n",
                                ""),
                    NULL,
                    "cluster \"c\": certificate-authority-data is not valid base64 (it holds a "
                    "PEM file, base64-encoded)");
    /* Padding left off. */
    assert_kc_fails(fx, one_context(SERVER, "    client-key-data: aGVsbG8\n"), NULL,
                    "user \"u\": client-key-data is not valid base64 (it holds a PEM file, "
                    "base64-encoded)");
    /* The URL-safe alphabet. */
    assert_kc_fails(fx, one_context(SERVER, "    client-certificate-data: aGVsbG8_\n"), NULL,
                    "user \"u\": client-certificate-data is not valid base64 (it holds a PEM "
                    "file, base64-encoded)");
    /* Data after the padding. */
    assert_kc_fails(fx, one_context(SERVER "    certificate-authority-data: aGk=aGk=\n", ""), NULL,
                    "cluster \"c\": certificate-authority-data is not valid base64 (it holds a "
                    "PEM file, base64-encoded)");
}

static void base64_that_is_not_pem_is_refused(void **state)
{
    struct fx *fx = *state;
    /* base64("hello"), or a PEM encoded twice, decodes without a PEM header. */
    assert_kc_fails(fx, one_context(SERVER "    certificate-authority-data: aGVsbG8=\n", ""), NULL,
                    "cluster \"c\": certificate-authority-data does not decode to PEM");
}

static void insecure_with_a_certificate_authority_is_refused(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx,
                    one_context(SERVER "    insecure-skip-tls-verify: true\n"
                                       "    certificate-authority-data: " CA_B64 "\n",
                                ""),
                    NULL,
                    "cluster \"c\": insecure-skip-tls-verify cannot be combined with a "
                    "certificate-authority");
}

static void names_and_keys_given_twice_are_refused(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx,
                    "current-context: dev\n"
                    "contexts:\n"
                    "- {name: dev, context: {cluster: c, user: u}}\n"
                    "- {name: dev, context: {cluster: d, user: u}}\n",
                    NULL, "context \"dev\" is defined twice");
    assert_kc_fails(fx, one_context(SERVER SERVER, ""), NULL,
                    "cluster \"c\": server appears twice");
    assert_kc_fails(fx, "current-context: a\ncurrent-context: b\n", NULL,
                    "current-context appears twice");
}

static void a_field_of_the_wrong_type_is_named(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, one_context("    server: {url: https://c}\n", ""), NULL,
                    "cluster \"c\": server must be a string");
    assert_kc_fails(fx, "current-context: dev\ncontexts: {dev: {}}\n", NULL,
                    "contexts must be a list");
    assert_kc_fails(fx, "current-context: dev\ncontexts: [dev]\n", NULL,
                    "contexts[0] must be a mapping");
    assert_kc_fails(fx, "current-context: dev\ncontexts: [{name: dev, context: [c, u]}]\n", NULL,
                    "context \"dev\": context must be a mapping");
    /* Quoted, it is a string, and kubectl refuses it too. */
    assert_kc_fails(fx, one_context(SERVER "    insecure-skip-tls-verify: \"true\"\n", ""), NULL,
                    "cluster \"c\": insecure-skip-tls-verify must be true or false");
    assert_kc_fails(fx, one_context(SERVER, "    token: \"a\\0b\"\n"), NULL,
                    "user \"u\": token contains a NUL byte");
}

static void a_missing_referenced_file_is_named_with_its_field(void **state)
{
    struct fx *fx = *state;
    char msg[WANTLEN];

    snprintf(msg, sizeof(msg), "cluster \"c\": certificate-authority %s: No such file or directory",
             in_dir(fx, "ca.crt"));
    assert_kc_fails(fx, one_context(SERVER "    certificate-authority: ca.crt\n", ""), NULL, msg);

    put(fx, "client.crt", CERT_PEM);
    snprintf(msg, sizeof(msg), "user \"u\": client-key %s: No such file or directory",
             in_dir(fx, "client.key"));
    assert_kc_fails(fx,
                    one_context(SERVER, "    client-certificate: client.crt\n"
                                        "    client-key: client.key\n"),
                    NULL, msg);

    snprintf(msg, sizeof(msg), "user \"u\": token file %s: No such file or directory",
             in_dir(fx, "token"));
    assert_kc_fails(fx, one_context(SERVER, "    tokenFile: token\n"), NULL, msg);

    put(fx, "token", " \n");
    snprintf(msg, sizeof(msg), "user \"u\": token file %s is empty", in_dir(fx, "token"));
    assert_kc_fails(fx, one_context(SERVER, "    tokenFile: token\n"), NULL, msg);
}

static void a_token_with_a_control_character_is_refused(void **state)
{
    struct fx *fx = *state;
    /* It would end the Authorization header and start another. */
    assert_kc_fails(fx, one_context(SERVER, "    token: \"abc\\r\\nX-Evil: 1\"\n"), NULL,
                    "user \"u\": token contains a control character");
}

static void names_in_errors_cannot_break_the_line(void **state)
{
    struct fx *fx = *state;
    assert_kc_fails(fx, "current-context: \"a\\nb\"\n", NULL, "context \"a?b\" not found");
}

/* ---- in-cluster ---- */

static void put_service_account(const struct fx *fx, const char *token, const char *ns)
{
    put(fx, "root/var/run/secrets/kubernetes.io/serviceaccount/token", token);
    put(fx, "root/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", CA_PEM);
    if (ns)
        put(fx, "root/var/run/secrets/kubernetes.io/serviceaccount/namespace", ns);
}

#define SA_PATH "root/var/run/secrets/kubernetes.io/serviceaccount/"

static void in_cluster_uses_the_service_env_and_the_account_files(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    put_service_account(fx, "eyJhbGciOi.sa-token\n", "team-a\n");
    assert_int_equal(kube_config_in_cluster(&cfg, in_dir(fx, "root"), err, ERRLEN), 0);
    assert_string_equal(cfg.server, "https://10.43.0.1:443");
    assert_string_equal(cfg.token_file, in_dir(fx, SA_PATH "token"));
    assert_string_equal(cfg.ca_file, in_dir(fx, SA_PATH "ca.crt"));
    assert_string_equal(cfg.namespace, "team-a");
    assert_string_equal(cfg.source, "in-cluster");
    assert_null(cfg.token); /* the client re-reads the file */
    assert_null(cfg.ca_data);
    assert_null(cfg.cert_file);
    assert_null(cfg.key_file);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    kube_config_free(&cfg);

    /* A root with a trailing slash gives the same paths. */
    assert_int_equal(kube_config_in_cluster(&cfg, in_dir(fx, "root/"), err, ERRLEN), 0);
    assert_string_equal(cfg.token_file, in_dir(fx, SA_PATH "token"));
    kube_config_free(&cfg);
}

static void an_ipv6_service_host_is_bracketed(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    put_service_account(fx, "t", NULL);
    assert_int_equal(kube_config_in_cluster(&cfg, in_dir(fx, "root"), err, ERRLEN), 0);
    assert_string_equal(cfg.server, "https://[fd00::1]:6443");
    assert_null(cfg.namespace); /* no namespace file */
    kube_config_free(&cfg);
}

static void in_cluster_needs_a_valid_service_host_and_port(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    put_service_account(fx, "t", NULL);
    const char *root = in_dir(fx, "root");
    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_HOST is not set");

    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_PORT is not set");

    static const char *const bad_ports[] = {"https", "0", "65536", "443x", "-1", "000443000"};
    for (size_t i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
        char want[WANTLEN];
        setenv("KUBERNETES_SERVICE_PORT", bad_ports[i], 1);
        assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
        snprintf(want, sizeof(want),
                 "in-cluster: KUBERNETES_SERVICE_PORT \"%s\" is not a port number", bad_ports[i]);
        assert_string_equal(err, want);
    }

    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("KUBERNETES_SERVICE_HOST", "evil.example/path?", 1);
    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_HOST \"evil.example/path?\" is not a "
                             "host name or IP address");
}

static void in_cluster_needs_a_readable_token_and_ca(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg, zero;
    char err[ERRLEN], want[WANTLEN];

    memset(&zero, 0, sizeof(zero));
    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    const char *root = in_dir(fx, "root");

    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "in-cluster: token file %s: No such file or directory",
             in_dir(fx, SA_PATH "token"));
    assert_string_equal(err, want);
    assert_memory_equal(&cfg, &zero, sizeof(cfg));

    put(fx, SA_PATH "token", "\n\n");
    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "in-cluster: token file %s is empty", in_dir(fx, SA_PATH "token"));
    assert_string_equal(err, want);

    put(fx, SA_PATH "token", "t");
    assert_int_equal(kube_config_in_cluster(&cfg, root, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "in-cluster: CA file %s: No such file or directory",
             in_dir(fx, SA_PATH "ca.crt"));
    assert_string_equal(err, want);
    assert_memory_equal(&cfg, &zero, sizeof(cfg));
}

/* ---- the controller's choice ---- */

/* Writes a kubeconfig at rel whose only server is server. */
static void put_kubeconfig(const struct fx *fx, const char *rel, const char *server)
{
    char cluster[256];
    snprintf(cluster, sizeof(cluster), "    server: %s\n", server);
    put(fx, rel, one_context(cluster, "    token: t\n"));
}

static void the_kubeconfig_flag_wins_over_everything(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    put_kubeconfig(fx, "flag", "https://flag");
    put_kubeconfig(fx, "env", "https://env");
    put_kubeconfig(fx, "home/.kube/config", "https://home");
    put_service_account(fx, "t", NULL);
    setenv("KUBECONFIG", in_dir(fx, "env"), 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(
        kube__config_load_root(&cfg, in_dir(fx, "flag"), "dev", in_dir(fx, "root"), err, ERRLEN),
        0);
    assert_string_equal(cfg.server, "https://flag");
    kube_config_free(&cfg);
}

static void kubeconfig_env_first_entry_wins_over_in_cluster_and_home(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], env[3 * PATH_MAX];

    put_kubeconfig(fx, "env1", "https://env1");
    put_kubeconfig(fx, "env2", "https://env2");
    put_kubeconfig(fx, "home/.kube/config", "https://home");
    put_service_account(fx, "t", NULL);
    snprintf(env, sizeof(env), "::%s:%s", in_dir(fx, "env1"), in_dir(fx, "env2"));
    setenv("KUBECONFIG", env, 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube__config_load_root(&cfg, NULL, NULL, in_dir(fx, "root"), err, ERRLEN), 0);
    assert_string_equal(cfg.server, "https://env1");
    kube_config_free(&cfg);
}

static void in_cluster_wins_over_the_home_kubeconfig(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN];

    put_kubeconfig(fx, "home/.kube/config", "https://home");
    put_service_account(fx, "t", NULL);
    setenv("KUBECONFIG", "", 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube__config_load_root(&cfg, "", NULL, in_dir(fx, "root"), err, ERRLEN), 0);
    assert_string_equal(cfg.server, "https://10.43.0.1:443");
    assert_string_equal(cfg.source, "in-cluster");
    kube_config_free(&cfg);

    /* A context needs a kubeconfig; in-cluster has none to choose from. */
    assert_int_equal(kube__config_load_root(&cfg, NULL, "dev", in_dir(fx, "root"), err, ERRLEN),
                     -1);
    assert_string_equal(err, "--context dev needs a kubeconfig; in-cluster config has no contexts");
}

static void the_home_kubeconfig_is_the_last_resort(void **state)
{
    struct fx *fx = *state;
    struct kube_config cfg;
    char err[ERRLEN], source[PATH_MAX + 64];

    put_kubeconfig(fx, "home/.kube/config", "https://home");
    assert_int_equal(kube_config_load(&cfg, NULL, NULL, err, ERRLEN), 0);
    assert_string_equal(cfg.server, "https://home");
    snprintf(source, sizeof(source), "kubeconfig %s context dev", in_dir(fx, "home/.kube/config"));
    assert_string_equal(cfg.source, source);
    kube_config_free(&cfg);
}

static void with_nothing_to_load_the_error_says_what_to_set(void **state)
{
    (void)state;
    struct kube_config cfg, zero;
    char err[ERRLEN];

    memset(&zero, 0, sizeof(zero));
    assert_int_equal(kube_config_load(&cfg, NULL, NULL, err, ERRLEN), -1);
    assert_string_equal(err, "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
    assert_memory_equal(&cfg, &zero, sizeof(cfg));
    unsetenv("HOME");
    assert_int_equal(kube_config_load(&cfg, NULL, NULL, err, ERRLEN), -1);
    assert_string_equal(err, "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
}

/* ---- token files ---- */

static void token_file_whitespace_is_trimmed(void **state)
{
    struct fx *fx = *state;
    char err[ERRLEN], *tok;

    put(fx, "token", " \t\r\n abc.def ghi\r\n\n");
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), 0);
    assert_string_equal(tok, "abc.def ghi");
    free(tok);
}

static void a_token_file_of_only_whitespace_is_empty(void **state)
{
    struct fx *fx = *state;
    char err[ERRLEN], want[WANTLEN], *tok;

    put(fx, "token", "");
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), -1);
    assert_null(tok);
    snprintf(want, sizeof(want), "token file %s is empty", in_dir(fx, "token"));
    assert_string_equal(err, want);

    put(fx, "token", " \n\t\n");
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), -1);
    assert_string_equal(err, want);
}

static void a_token_file_of_16_kib_is_read_and_one_byte_more_is_refused(void **state)
{
    struct fx *fx = *state;
    char err[ERRLEN], want[WANTLEN], *tok;
    char *big = malloc(KUBE_TOKEN_MAX_FILE + 1);

    assert_non_null(big);
    memset(big, 'x', KUBE_TOKEN_MAX_FILE + 1);
    put_bytes(fx, "token", big, KUBE_TOKEN_MAX_FILE);
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), 0);
    assert_int_equal(strlen(tok), KUBE_TOKEN_MAX_FILE);
    assert_memory_equal(tok, big, KUBE_TOKEN_MAX_FILE);
    free(tok);

    put_bytes(fx, "token", big, KUBE_TOKEN_MAX_FILE + 1);
    free(big);
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), -1);
    assert_null(tok);
    snprintf(want, sizeof(want), "token file %s is larger than 16 KiB", in_dir(fx, "token"));
    assert_string_equal(err, want);
}

static void a_missing_or_binary_token_file_is_refused(void **state)
{
    struct fx *fx = *state;
    char err[ERRLEN], want[WANTLEN], *tok;

    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "token file %s: No such file or directory", in_dir(fx, "token"));
    assert_string_equal(err, want);

    put_bytes(fx, "token", "abc\0def\n", 8);
    assert_int_equal(kube_token_read(in_dir(fx, "token"), &tok, err, ERRLEN), -1);
    snprintf(want, sizeof(want), "token file %s contains a control character", in_dir(fx, "token"));
    assert_string_equal(err, want);
}

static void freeing_an_empty_config_is_harmless(void **state)
{
    (void)state;
    struct kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    kube_config_free(&cfg);
    kube_config_free(&cfg);
    assert_null(cfg.server);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(current_context_picks_cluster_user_and_namespace),
        T(an_explicit_context_wins_over_current_context),
        T(relative_certificate_paths_resolve_against_the_kubeconfigs_directory),
        T(a_relative_kubeconfig_path_resolves_against_the_working_directory),
        T(a_token_file_is_resolved_and_left_for_the_client_to_reread),
        T(a_static_token_wins_over_a_token_file),
        T(insecure_tls_server_name_and_proxy_are_kept),
        T(embedded_data_wins_over_file_references),
        T(base64_data_may_wrap_lines_and_end_in_padding),
        T(a_json_kubeconfig_reads_like_yaml),
        T(null_and_empty_fields_count_as_unset),
        T(a_kubeconfig_of_exactly_4_mib_loads),
        T(a_missing_kubeconfig_is_named),
        T(a_kubeconfig_over_4_mib_is_refused),
        T(a_yaml_syntax_error_names_its_line),
        T(an_empty_or_non_mapping_kubeconfig_is_refused),
        T(without_current_context_a_context_must_be_given),
        T(an_unknown_context_is_named),
        T(a_context_must_name_a_defined_cluster_and_user),
        T(a_cluster_needs_an_http_or_https_server),
        T(a_client_certificate_needs_its_key_and_a_key_its_certificate),
        T(exec_and_auth_provider_users_are_refused_by_name),
        T(invalid_base64_is_refused_naming_the_field),
        T(base64_that_is_not_pem_is_refused),
        T(insecure_with_a_certificate_authority_is_refused),
        T(names_and_keys_given_twice_are_refused),
        T(a_field_of_the_wrong_type_is_named),
        T(a_missing_referenced_file_is_named_with_its_field),
        T(a_token_with_a_control_character_is_refused),
        T(names_in_errors_cannot_break_the_line),
        T(in_cluster_uses_the_service_env_and_the_account_files),
        T(an_ipv6_service_host_is_bracketed),
        T(in_cluster_needs_a_valid_service_host_and_port),
        T(in_cluster_needs_a_readable_token_and_ca),
        T(the_kubeconfig_flag_wins_over_everything),
        T(kubeconfig_env_first_entry_wins_over_in_cluster_and_home),
        T(in_cluster_wins_over_the_home_kubeconfig),
        T(the_home_kubeconfig_is_the_last_resort),
        T(with_nothing_to_load_the_error_says_what_to_set),
        T(token_file_whitespace_is_trimmed),
        T(a_token_file_of_only_whitespace_is_empty),
        T(a_token_file_of_16_kib_is_read_and_one_byte_more_is_refused),
        T(a_missing_or_binary_token_file_is_refused),
        T(freeing_an_empty_config_is_harmless),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
