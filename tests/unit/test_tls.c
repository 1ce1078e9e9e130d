// SPDX-License-Identifier: Apache-2.0
/* Unit tests for whom the API client trusts: kubeconfig checks (tls-server-
 * name, tokens and plain HTTP), then real TLS handshakes against a server on
 * 127.0.0.1 (OpenSSL, on a thread) with certificates made here: the name
 * verified is tls-server-name, and a CA in the system's CA directory is not
 * trusted beside the cluster's CA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/config_int.h"

#define ERRLEN 1024

/* ---- kubeconfig ---- */

/* Writes yaml to a fresh file and loads it; the path goes to *path. */
static int load(const char *yaml, struct kube_config *cfg, char *err, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "/tmp/kage-test-tls-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    int rc = kube_config_from_kubeconfig(cfg, path, NULL, err, ERRLEN);
    unlink(path);
    return rc;
}

static const char *kubeconfig(const char *cluster, const char *user)
{
    static char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "current-context: dev\n"
             "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
             "clusters: [{name: c, cluster: {%s}}]\n"
             "users: [{name: u, user: {%s}}]\n",
             cluster, user);
    return yaml;
}

static void assert_fails(const char *yaml, const char *msg)
{
    struct kube_config cfg;
    char err[ERRLEN], path[64], want[ERRLEN];
    assert_int_equal(load(yaml, &cfg, err, path, sizeof(path)), -1);
    snprintf(want, sizeof(want), "kubeconfig %s: %s", path, msg);
    assert_string_equal(err, want);
}

static void tls_server_name_becomes_the_url_and_the_server_the_connection(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[ERRLEN], path[64];

    assert_int_equal(load(kubeconfig("server: 'https://127.0.0.1:6443', "
                                     "tls-server-name: api.kage.test",
                                     "token: t"),
                          &cfg, err, path, sizeof(path)),
                     0);
    assert_string_equal(cfg.server, "https://127.0.0.1:6443");
    assert_string_equal(cfg.url_base, "https://api.kage.test:6443");
    assert_string_equal(cfg.connect_to, "api.kage.test:6443:127.0.0.1:6443");
    assert_string_equal(cfg.host_header, "Host: 127.0.0.1:6443");
    kube_config_free(&cfg);

    /* IPv6, no port (443), a path prefix */
    assert_int_equal(load(kubeconfig("server: 'https://[fd00::1]/k8s/clusters/c1/', "
                                     "tls-server-name: kubernetes.default.svc",
                                     ""),
                          &cfg, err, path, sizeof(path)),
                     0);
    assert_string_equal(cfg.url_base, "https://kubernetes.default.svc:443/k8s/clusters/c1");
    assert_string_equal(cfg.connect_to, "kubernetes.default.svc:443:[fd00::1]:443");
    assert_string_equal(cfg.host_header, "Host: [fd00::1]");
    kube_config_free(&cfg);

    /* without a TLS name the server's URL is used as it is */
    assert_int_equal(
        load(kubeconfig("server: 'https://127.0.0.1:6443'", ""), &cfg, err, path, sizeof(path)), 0);
    assert_null(cfg.url_base);
    assert_null(cfg.connect_to);
    assert_null(cfg.host_header);
    kube_config_free(&cfg);
}

static void a_tls_server_name_that_is_not_a_name_is_refused(void **state)
{
    (void)state;
    assert_fails(kubeconfig("server: 'https://127.0.0.1:6443', "
                            "tls-server-name: 'evil.example:443:10.0.0.1'",
                            ""),
                 "cluster \"c\": tls-server-name \"evil.example:443:10.0.0.1\" is not a DNS name "
                 "or IPv4 address");
    assert_fails(kubeconfig("server: 'https://u:p@127.0.0.1:6443', tls-server-name: a.test", ""),
                 "cluster \"c\": server \"https://u:p@127.0.0.1:6443\" must not carry user "
                 "information");
}

static void a_token_is_never_sent_over_plain_http(void **state)
{
    (void)state;
    assert_fails(kubeconfig("server: 'http://10.0.0.1:8080'", "token: secret"),
                 "user \"u\": token is set, but cluster \"c\" has the plain-HTTP server "
                 "http://10.0.0.1:8080; a bearer token is sent only to an https:// server");

    char tok[] = "/tmp/kage-test-token-XXXXXX", user[128];
    int fd = mkstemp(tok);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "t\n", 2), 2);
    close(fd);
    snprintf(user, sizeof(user), "tokenFile: '%s'", tok);
    assert_fails(kubeconfig("server: 'http://10.0.0.1:8080'", user),
                 "user \"u\": tokenFile is set, but cluster \"c\" has the plain-HTTP server "
                 "http://10.0.0.1:8080; a bearer token is sent only to an https:// server");
    unlink(tok);

    /* no token: plain HTTP stays allowed (kubectl proxy) */
    struct kube_config cfg;
    char err[ERRLEN], path[64];
    assert_int_equal(
        load(kubeconfig("server: 'http://127.0.0.1:8001'", ""), &cfg, err, path, sizeof(path)), 0);
    kube_config_free(&cfg);

    /* and the client refuses the pair when a config is made by hand */
    cfg = (struct kube_config){.server = "http://127.0.0.1:8001", .token = "t"};
    uv_loop_t loop;
    struct kube_client *c = NULL;
    uv_loop_init(&loop);
    assert_int_equal(kube_client_new(&loop, &cfg, NULL, &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "config: a bearer token is sent only to an https:// server, not "
                             "http://127.0.0.1:8001");
    assert_null(c);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- certificates ---- */

struct pki {
    EVP_PKEY *key;
    X509 *cert;
};

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

/* A certificate for subject cn with subjectAltName san (NULL for a CA),
 * signed by issuer (NULL: self-signed). */
static struct pki make_cert(const char *cn, const char *san, const struct pki *issuer)
{
    static long serial = 1;
    struct pki p = {new_key(), X509_new()};
    assert_non_null(p.cert);
    X509_set_version(p.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(p.cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(p.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(p.cert), 3600);
    X509_set_pubkey(p.cert, p.key);
    X509_NAME *name = X509_get_subject_name(p.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(p.cert, issuer ? X509_get_subject_name(issuer->cert) : name);

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer->cert : p.cert, p.cert, NULL, NULL, 0);
    const char *exts[][2] = {
        {"basicConstraints", san ? "critical,CA:FALSE" : "critical,CA:TRUE"},
        {"keyUsage", san ? "critical,digitalSignature" : "critical,keyCertSign,cRLSign"},
        {"subjectKeyIdentifier", "hash"},
        {"subjectAltName", san},
    };
    for (size_t i = 0; i < 4; i++) {
        if (!exts[i][1])
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(e);
        X509_add_ext(p.cert, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(p.cert, issuer ? issuer->key : p.key, EVP_sha256()) > 0);
    return p;
}

static void pki_free(struct pki *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
}

/* The PEM text of a certificate, malloc'd. */
static char *pem(X509 *cert, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, cert);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = kube__memdup0(data, (size_t)n);
    assert_non_null(out);
    BIO_free(b);
    *len = (size_t)n;
    return out;
}

/* ---- a TLS server on a thread ---- */

struct server {
    int fd;
    int port;
    SSL_CTX *ctx;
    pthread_t thread;
    int conns;         /* handshakes attempted */
    int served;        /* requests answered */
    char sni[256];     /* the last ClientHello's server name */
    char host[256];    /* the last request's Host header */
    int authorization; /* the last request carried one */
};

static void read_request(SSL *ssl, struct server *s)
{
    char req[8192];
    size_t len = 0;
    while (len < sizeof(req) - 1) {
        int n = SSL_read(ssl, req + len, (int)(sizeof(req) - 1 - len));
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    const char *h = strcasestr(req, "\r\nhost: ");
    if (h) {
        h += 8;
        snprintf(s->host, sizeof(s->host), "%.*s", (int)strcspn(h, "\r"), h);
    }
    s->authorization = strcasestr(req, "\r\nauthorization: ") != NULL;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    s->served++; /* before the client can see the response */
    SSL_write(ssl, resp, (int)sizeof(resp) - 1);
}

/* Serves one connection at a time until the listening socket is shut. */
static void *serve(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        s->conns++;
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
            snprintf(s->sni, sizeof(s->sni), "%s", name ? name : "");
            read_request(ssl, s);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(c);
    }
}

static void server_start(struct server *s, const struct pki *cert)
{
    memset(s, 0, sizeof(*s));
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, cert->cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, cert->key), 1);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    SSL_CTX_free(s->ctx);
}

/* ---- one GET through the client ---- */

struct result {
    int done;
    long code;
    char message[1024];
};

static void on_response(void *arg, const struct kube_response *resp)
{
    struct result *r = arg;
    r->done = 1;
    r->code = resp->code;
    if (resp->err)
        snprintf(r->message, sizeof(r->message), "%s", resp->err->message);
}

static void closed(void *arg)
{
    ++*(int *)arg;
}

/* GET /version with cfg; returns the status (0: no response, the reason in r). */
static long get(const struct kube_config *cfg, struct result *r)
{
    uv_loop_t loop;
    struct kube_client *c;
    char err[ERRLEN];
    struct kube_client_opts o = {.max_attempts = 1, .timeout_ms = 5000};
    int n_closed = 0;

    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kube_client_new(&loop, cfg, &o, &c, err, sizeof(err)), 0);
    assert_int_equal(kube_request(c, KUBE_GET, "/version", NULL, 0, on_response, r, NULL), 0);
    while (!r->done)
        uv_run(&loop, UV_RUN_ONCE);
    kube_client_close(c, closed, &n_closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(n_closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    return r->code;
}

struct world {
    struct pki cluster_ca, cluster_server; /* the kubeconfig's CA; api.kage.test */
    struct pki public_ca, public_server;   /* a CA of the host's; IP:127.0.0.1 */
    char *cluster_pem, *public_pem;
    size_t cluster_pem_len, public_pem_len;
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->cluster_ca = make_cert("kage test cluster CA", NULL, NULL);
    w->cluster_server = make_cert("api.kage.test", "DNS:api.kage.test", &w->cluster_ca);
    w->public_ca = make_cert("kage test public CA", NULL, NULL);
    w->public_server = make_cert("127.0.0.1", "IP:127.0.0.1", &w->public_ca);
    w->cluster_pem = pem(w->cluster_ca.cert, &w->cluster_pem_len);
    w->public_pem = pem(w->public_ca.cert, &w->public_pem_len);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    pki_free(&w->cluster_ca);
    pki_free(&w->cluster_server);
    pki_free(&w->public_ca);
    pki_free(&w->public_server);
    free(w->cluster_pem);
    free(w->public_pem);
    free(w);
    return 0;
}

static void the_name_verified_is_tls_server_name(void **state)
{
    struct world *w = *state;
    struct server s;
    struct result r;
    char server[64], err[ERRLEN];
    server_start(&s, &w->cluster_server);
    snprintf(server, sizeof(server), "https://127.0.0.1:%d", s.port);

    /* Without tls-server-name the certificate (api.kage.test only) does not
     * match the address, and nothing is sent. */
    struct kube_config cfg = {.server = server,
                              .ca_data = w->cluster_pem,
                              .ca_data_len = w->cluster_pem_len,
                              .token = "secret"};
    assert_int_equal(get(&cfg, &r), 0);
    assert_non_null(strstr(r.message, "SSL"));
    assert_int_equal(s.served, 0);

    /* With it: SNI and verification use the name, the connection goes to
     * the server, and the Host header is the server's. */
    cfg.tls_server_name = "api.kage.test";
    assert_int_equal(kube__config_route(&cfg, err, sizeof(err)), 0);
    assert_int_equal(get(&cfg, &r), 200);
    assert_int_equal(s.served, 1);
    assert_string_equal(s.sni, "api.kage.test");
    char want_host[64];
    snprintf(want_host, sizeof(want_host), "127.0.0.1:%d", s.port);
    assert_string_equal(s.host, want_host);
    assert_int_equal(s.authorization, 1);

    /* A name the certificate does not carry fails as before. */
    free(cfg.url_base);
    free(cfg.connect_to);
    free(cfg.host_header);
    cfg.tls_server_name = "other.kage.test";
    assert_int_equal(kube__config_route(&cfg, err, sizeof(err)), 0);
    assert_int_equal(get(&cfg, &r), 0);
    assert_int_equal(s.served, 1);
    free(cfg.url_base);
    free(cfg.connect_to);
    free(cfg.host_header);
    server_stop(&s);
}

/* Writes n bytes of data to dir/name. */
static void put(const char *dir, const char *name, const char *data, size_t n)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/*
 * The host's CA directory and bundle (libcurl's built-in defaults, both in
 * /etc/ssl/certs) are replaced, in a mount namespace of this process only,
 * by ones holding a "public" CA; the server presents a certificate that CA
 * signed. A client given the cluster's CA must refuse it, as CA data and as
 * a CA file; a client given no CA (kubectl's system roots) accepts it, which
 * shows that the replacement is what libcurl reads.
 */
static void a_ca_in_the_system_directory_is_not_trusted_beside_the_clusters(void **state)
{
    struct world *w = *state;
    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0) {
        print_message("needs root for a private mount namespace; not run\n");
        skip();
    }
    /* Private first, so that nothing done here reaches the host. */
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    char dir[] = "/tmp/kage-test-certs-XXXXXX", hashed[32], cafile[64];
    assert_non_null(mkdtemp(dir));
    snprintf(hashed, sizeof(hashed), "%08lx.0", X509_subject_name_hash(w->public_ca.cert));
    put(dir, hashed, w->public_pem, w->public_pem_len);
    put(dir, "ca-certificates.crt", w->public_pem, w->public_pem_len);
    put(dir, "cluster.crt", w->cluster_pem, w->cluster_pem_len);
    assert_int_equal(mount(dir, "/etc/ssl/certs", NULL, MS_BIND, NULL), 0);

    struct server s;
    struct result r;
    char server[64];
    server_start(&s, &w->public_server);
    snprintf(server, sizeof(server), "https://127.0.0.1:%d", s.port);

    struct kube_config cfg = {.server = server, .token = "secret"};
    assert_int_equal(get(&cfg, &r), 200); /* no CA given: the system's */
    assert_int_equal(s.served, 1);

    cfg.ca_data = w->cluster_pem;
    cfg.ca_data_len = w->cluster_pem_len;
    assert_int_equal(get(&cfg, &r), 0);
    assert_non_null(strstr(r.message, "SSL"));

    snprintf(cafile, sizeof(cafile), "%s/cluster.crt", dir);
    cfg = (struct kube_config){.server = server, .ca_file = cafile, .token = "secret"};
    assert_int_equal(get(&cfg, &r), 0);
    assert_non_null(strstr(r.message, "SSL"));
    assert_int_equal(s.served, 1); /* the token never reached it */
    assert_int_equal(s.conns, 3);
    server_stop(&s);

    assert_int_equal(umount2("/etc/ssl/certs", MNT_DETACH), 0);
    char p[256];
    const char *names[] = {hashed, "ca-certificates.crt", "cluster.crt"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    /* The server's OpenSSL writes to sockets that a refusing client has
     * closed. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        /* first: a mount namespace needs a process with no other thread */
        cmocka_unit_test(a_ca_in_the_system_directory_is_not_trusted_beside_the_clusters),
        cmocka_unit_test(the_name_verified_is_tls_server_name),
        cmocka_unit_test(tls_server_name_becomes_the_url_and_the_server_the_connection),
        cmocka_unit_test(a_tls_server_name_that_is_not_a_name_is_refused),
        cmocka_unit_test(a_token_is_never_sent_over_plain_http),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
