// SPDX-License-Identifier: Apache-2.0
/*
 * framer.c - turns the byte chunks of a watch response into lines. Lines
 * that arrive whole are passed on where they lie; only a line cut by a chunk
 * boundary is copied, into a buffer capped just above the line limit.
 */
#include "kube/framer.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

void framer_init(struct framer *f, size_t max_line)
{
    /* Room for one '\r' beyond the limit, and for buf's own terminator. */
    if (max_line > SIZE_MAX - 2)
        max_line = SIZE_MAX - 2;
    f->max_line = max_line;
    buf_init(&f->tail, max_line + 1);
}

/* True when a partial line of n bytes ending in byte last can no longer
 * become a line of at most max_line bytes: only a final '\r' may be spare. */
static int partial_too_long(const struct framer *f, size_t n, char last)
{
    return n > f->max_line + 1 || (n == f->max_line + 1 && last != '\r');
}

/* Hands line[0..n) (its terminator at line[n] is ours to overwrite) to cb. */
static int deliver(const struct framer *f, char *line, size_t n, framer_line_cb cb, void *arg)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > f->max_line)
        return -E2BIG;
    line[n] = '\0';
    return n ? cb(arg, line, n) : 0;
}

int framer_feed(struct framer *f, char *data, size_t len, framer_line_cb cb, void *arg)
{
    size_t pos = 0;
    int rc = 0;

    if (len == 0)
        return 0;

    if (f->tail.len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        /* tail.len <= max_line + 1 always, so neither side overflows. */
        if (n > f->max_line + 1 - f->tail.len ||
            (!nl && partial_too_long(f, f->tail.len + n, data[len - 1]))) {
            rc = -E2BIG;
            goto out;
        }
        rc = buf_append(&f->tail, data, n);
        if (rc)
            goto out;
        if (!nl)
            return 0;
        /* buf keeps one byte beyond len for its NUL: deliver may use it. */
        rc = deliver(f, f->tail.data, f->tail.len, cb, arg);
        if (rc)
            goto out;
        buf_reset(&f->tail);
        pos = n + 1;
    }

    while (pos < len) {
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        if (!nl)
            break;
        size_t n = (size_t)(nl - line);
        rc = deliver(f, line, n, cb, arg);
        if (rc)
            goto out;
        pos += n + 1;
    }

    if (pos < len) {
        size_t n = len - pos;
        if (partial_too_long(f, n, data[len - 1])) {
            rc = -E2BIG;
            goto out;
        }
        rc = buf_append(&f->tail, data + pos, n);
        if (rc)
            goto out;
    }
    return 0;

out:
    framer_reset(f);
    return rc;
}

void framer_reset(struct framer *f)
{
    buf_reset(&f->tail);
}

void framer_free(struct framer *f)
{
    buf_free(&f->tail);
}
