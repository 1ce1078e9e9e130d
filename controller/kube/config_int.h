// SPDX-License-Identifier: Apache-2.0
/* config_int.h - what config.c lends kubeconfig.c: capped reads of files that
 * hold secrets, and the string helpers both parsers use. Not API. */
#ifndef KAGE_KUBE_CONFIG_INT_H
#define KAGE_KUBE_CONFIG_INT_H

#include <stddef.h>

/* Room for one error line, a path or two included. */
#define KUBE__ERR_MAX 512

/* Control characters (a name in a hostile file may hold "\n") become '?',
 * so that an error stays one line. */
void kube__err_clean(char *err);

/* Returns a malloc'd formatted string, or NULL when out of memory. */
__attribute__((format(printf, 1, 2))) char *kube__dup_printf(const char *fmt, ...);

/* Returns a malloc'd NUL-terminated copy of n bytes, or NULL. */
char *kube__memdup0(const void *p, size_t n);

/* Wipes the n bytes at p (which may be NULL), then frees p. */
void kube__free_secret(char *p, size_t n);

/* Returns 1 when s[0..n) holds a control character, which must not reach an
 * HTTP header or a log line; else 0. */
int kube__has_control(const char *s, size_t n);

/*
 * Reads the whole file at path into a malloc'd NUL-terminated *out (caller
 * frees, with kube__free_secret when it is one). Returns 0, -EFBIG past max
 * bytes, or another -errno, with *out NULL.
 */
int kube__read_capped(const char *path, size_t max, char **out, size_t *outlen);

/*
 * Fills cfg's url_base, connect_to and host_header from its server and
 * tls_server_name (a no-op without a TLS name or for an http:// server).
 * Returns 0, or -1 with one line in err (always terminated).
 */
int kube__config_route(struct kube_config *cfg, char *err, size_t errlen);

/* Returns 0 when path opens for reading and is not a directory, else -errno. */
int kube__check_readable(const char *path);

#endif
