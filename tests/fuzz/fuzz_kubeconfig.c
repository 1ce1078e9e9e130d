// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_kubeconfig.c - kubeconfig files through kube_config_from_kubeconfig,
 * with the current context and with a named one. The file lives in a
 * per-process directory beside the few files a kubeconfig may name
 * relatively (ca.crt, token, client.crt, client.key); all are removed at exit.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/config.h"

#include "fuzz.h"

static char dir[4096];
static char config_path[4200];

static const char *const side_files[][2] = {
    {"ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
    {"client.crt", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"},
    {"client.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
    {"token", "eyJhbGciOiJSUzI1NiJ9.fuzz.token\n"},
};

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t)len);
    FUZZ_CHECK(close(fd) == 0);
}

static void side_path(char *out, size_t outlen, const char *name)
{
    FUZZ_CHECK((size_t)snprintf(out, outlen, "%s/%s", dir, name) < outlen);
}

static void remove_dir(void)
{
    char p[4200];
    for (size_t i = 0; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
        side_path(p, sizeof(p), side_files[i][0]);
        unlink(p);
    }
    unlink(config_path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    FUZZ_CHECK((size_t)snprintf(dir, sizeof(dir), "%s/kage-fuzz-kubeconfig.XXXXXX",
                                tmp && tmp[0] ? tmp : "/tmp") < sizeof(dir));
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    for (size_t i = 0; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
        char p[4200];
        side_path(p, sizeof(p), side_files[i][0]);
        write_file(p, side_files[i][1], strlen(side_files[i][1]));
    }
    side_path(config_path, sizeof(config_path), "config");
    atexit(remove_dir);
    return 0;
}

static bool zeroed(const struct kube_config *cfg)
{
    static const struct kube_config zero;
    return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

static void check(int rc, const struct kube_config *cfg, const char *err, size_t errlen)
{
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        size_t n = strnlen(err, errlen);
        FUZZ_CHECK(n < errlen);
        FUZZ_CHECK(errlen < 2 || n > 0);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
        FUZZ_CHECK(zeroed(cfg));
        return;
    }
    const char *s = cfg->server;
    FUZZ_CHECK(s != NULL);
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    FUZZ_CHECK(scheme > 0 && strlen(s) > scheme && s[strlen(s) - 1] != '/');
    FUZZ_CHECK(cfg->source != NULL);
    FUZZ_CHECK(!(cfg->ca_file && cfg->ca_data));
    FUZZ_CHECK(!(cfg->insecure_skip_tls_verify && (cfg->ca_file || cfg->ca_data)));
    FUZZ_CHECK(!(cfg->cert_file && cfg->cert_data));
    FUZZ_CHECK(!(cfg->key_file && cfg->key_data));
    FUZZ_CHECK(!(cfg->token && cfg->token_file));
    FUZZ_CHECK(!(cfg->cert_file || cfg->cert_data) == !(cfg->key_file || cfg->key_data));
    FUZZ_CHECK(!cfg->ca_data || cfg->ca_data[cfg->ca_data_len] == '\0');
    FUZZ_CHECK(!cfg->cert_data || cfg->cert_data[cfg->cert_data_len] == '\0');
    FUZZ_CHECK(!cfg->key_data || cfg->key_data[cfg->key_data_len] == '\0');
    FUZZ_CHECK(!cfg->token || cfg->token[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(config_path, data, size);

    struct kube_config cfg;
    char err[512];
    int rc = kube_config_from_kubeconfig(&cfg, config_path, NULL, err, sizeof(err));
    check(rc, &cfg, err, sizeof(err));
    kube_config_free(&cfg);
    FUZZ_CHECK(zeroed(&cfg));

    /* A named context, and an error buffer just big enough to overrun. */
    char *small = malloc(24);
    FUZZ_CHECK(small != NULL);
    rc = kube_config_from_kubeconfig(&cfg, config_path, "dev", small, 24);
    check(rc, &cfg, small, 24);
    kube_config_free(&cfg);
    free(small);

    unlink(config_path);
    return 0;
}
