// SPDX-License-Identifier: Apache-2.0
/* config.h - where the API server is and how to authenticate to it: from a
 * kubeconfig file or from the pod's service account (in-cluster). */
#ifndef KAGE_KUBE_CONFIG_H
#define KAGE_KUBE_CONFIG_H

#include <stddef.h>

/* Hard caps on what this module reads from disk. */
#define KUBE_CONFIG_MAX_FILE (4u * 1024 * 1024) /* a kubeconfig */
#define KUBE_TOKEN_MAX_FILE  (16u * 1024)       /* a bearer token file */

/*
 * Everything the HTTP client needs to reach the API server. Every pointer is
 * malloc'd and owned by the struct (kube_config_free), or NULL when unset.
 * Of each path/data pair at most one is set: *-data wins, as in kubectl.
 * Of token and token_file at most one is set: token wins, as kubectl
 * documents. Data buffers are NUL-terminated; the lengths exclude the NUL.
 */
struct kube_config {
    char *server;          /* "https://host:port" (or http://), no trailing slash */
    char *tls_server_name; /* SNI / name to verify instead of the server's host, or NULL */
    char *proxy_url;       /* the cluster's proxy-url, or NULL */
    char *ca_file;         /* CA bundle path, or NULL */
    char *ca_data;         /* PEM bytes (already base64-decoded), or NULL */
    size_t ca_data_len;
    int insecure_skip_tls_verify; /* never set together with a CA */
    char *cert_file;              /* client certificate: path or PEM bytes */
    char *cert_data;
    size_t cert_data_len;
    char *key_file; /* client key: path or PEM bytes; set iff a certificate is */
    char *key_data;
    size_t key_data_len;
    char *token;      /* static bearer token, or NULL */
    char *token_file; /* bearer token file, re-read by the client about every minute, or NULL */
    char *namespace;  /* the context's namespace, or the in-cluster namespace file's, or NULL */
    char *source;     /* for logs: "kubeconfig /x/y context dev" or "in-cluster" */
    /* Derived from tls_server_name for an https:// server, else NULL: the
     * URL requests are made to, naming the TLS name (so that it is the name
     * sent in SNI and verified in the certificate), "NAME:PORT:HOST:PORT"
     * for curl's CONNECT_TO (so that the connection still goes to the
     * server's host), and the Host header the server would have had. */
    char *url_base;
    char *connect_to;
    char *host_header;
};

/*
 * Loads *cfg from the kubeconfig at path, using the named context, or the
 * file's current-context when context is NULL. Relative file references are
 * resolved against the kubeconfig's directory and must be readable now.
 * Users with exec, auth-provider, basic auth or impersonation are refused.
 * Returns 0 (the caller frees *cfg with kube_config_free), or -1 with *cfg
 * empty and one line in err (always terminated) naming the file and the
 * context, cluster, user or field at fault.
 */
int kube_config_from_kubeconfig(struct kube_config *cfg, const char *path, const char *context,
                                char *err, size_t errlen);

/*
 * Loads *cfg from the pod's environment: KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT, and the service-account files under
 * <root>/var/run/secrets/kubernetes.io/serviceaccount/ (root is "" in
 * production, a temporary directory in tests). The token is checked to be
 * readable and non-empty but left in its file (cfg->token_file) for the
 * client to re-read; the CA must be readable; the namespace file is
 * optional. Returns 0 (caller frees with kube_config_free), or -1 with *cfg
 * empty and one line in err.
 */
int kube_config_in_cluster(struct kube_config *cfg, const char *root, char *err, size_t errlen);

/*
 * The controller's choice of configuration: path_flag (--kubeconfig) when
 * set, else the first entry of $KUBECONFIG, else in-cluster when
 * KUBERNETES_SERVICE_HOST is set, else ~/.kube/config when it exists.
 * context (--context) needs a kubeconfig. Returns 0 (caller frees with
 * kube_config_free), or -1 with *cfg empty and one line in err.
 */
int kube_config_load(struct kube_config *cfg, const char *path_flag, const char *context, char *err,
                     size_t errlen);

/* kube_config_load with the in-cluster files under root; for tests, not API. */
int kube__config_load_root(struct kube_config *cfg, const char *path_flag, const char *context,
                           const char *root, char *err, size_t errlen);

/* Frees every member (wiping the secrets first) and zeroes *cfg. Safe on a
 * zeroed struct and after a failed load. */
void kube_config_free(struct kube_config *cfg);

/*
 * Reads the bearer token in the file at path: at most KUBE_TOKEN_MAX_FILE
 * bytes, surrounding whitespace trimmed, non-empty, and free of control
 * characters (it goes into an HTTP header). Returns 0 and a malloc'd string
 * in *out (caller frees), or -1 with *out NULL and one line in err.
 */
int kube_token_read(const char *path, char **out, char *err, size_t errlen);

#endif
