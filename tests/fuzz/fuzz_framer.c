// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_framer.c - the watch-stream framer against a plain reference
 * splitter: the input's first bytes choose the line limit and where the
 * stream is cut into chunks, so lines cut at every position are tried.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/framer.h"

#include "fuzz.h"

#define HEADER    9 /* limit and stop selector, then 8 chunk sizes */
#define STOP_CODE 7 /* what the callback returns to stop the feed */

/* The lines a correct framer delivers, up to the first one too long. */
struct expect {
    size_t n;
    size_t *off, *len;
    bool too_long; /* a line (or the unfinished last one) exceeds the limit */
};

static void expect_lines(struct expect *x, const char *s, size_t len, size_t max)
{
    size_t cap = 1, pos = 0;
    for (size_t i = 0; i < len; i++)
        cap += s[i] == '\n';
    x->off = malloc(cap * sizeof(*x->off));
    x->len = malloc(cap * sizeof(*x->len));
    FUZZ_CHECK(x->off && x->len);
    x->n = 0;
    x->too_long = false;
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        if (!nl) {
            /* Unfinished: only a final '\r' may exceed the limit. */
            size_t n = len - pos;
            x->too_long = n > max + 1 || (n == max + 1 && s[len - 1] != '\r');
            return;
        }
        size_t n = (size_t)(nl - (s + pos)), m = n;
        if (m > 0 && s[pos + m - 1] == '\r')
            m--;
        if (m > max) {
            x->too_long = true;
            return;
        }
        if (m > 0) {
            x->off[x->n] = pos;
            x->len[x->n] = m;
            x->n++;
        }
        pos += n + 1;
    }
}

struct run {
    const char *stream;
    const struct expect *x;
    size_t max;
    size_t got;
    size_t stop_at; /* stop after this many lines; 0 = never */
};

static int on_line(void *arg, char *line, size_t len)
{
    struct run *r = arg;
    FUZZ_CHECK(len > 0 && len <= r->max);
    FUZZ_CHECK(line[len] == '\0');
    FUZZ_CHECK(memchr(line, '\n', len) == NULL);
    FUZZ_CHECK(r->got < r->x->n);
    FUZZ_CHECK(r->x->len[r->got] == len);
    FUZZ_CHECK(memcmp(r->stream + r->x->off[r->got], line, len) == 0);
    memset(line, 'X', len); /* the callback may modify the line */
    r->got++;
    return r->stop_at && r->got == r->stop_at ? STOP_CODE : 0;
}

/* Feeds the stream in chunks of the sizes in sizes[] (cycled); each chunk
 * is its own allocation of its exact size, so any overrun shows. */
static void feed(struct framer *f, const struct expect *x, const char *s, size_t len, size_t max,
                 const size_t sizes[8], size_t stop_at)
{
    struct run r = {s, x, max, 0, stop_at};
    size_t pos = 0, k = 0;
    int rc = 0;
    while (pos < len || k == 0) {
        size_t n = sizes[k++ % 8];
        if (n > len - pos)
            n = len - pos;
        char *chunk = malloc(n ? n : 1);
        FUZZ_CHECK(chunk != NULL);
        if (n)
            memcpy(chunk, s + pos, n);
        rc = framer_feed(f, chunk, n, on_line, &r);
        free(chunk);
        pos += n;
        if (rc)
            break;
    }
    if (stop_at && stop_at <= x->n) {
        FUZZ_CHECK(rc == STOP_CODE);
        FUZZ_CHECK(r.got == stop_at);
    } else if (x->too_long) {
        FUZZ_CHECK(rc == -E2BIG);
        FUZZ_CHECK(r.got == x->n);
    } else {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(r.got == x->n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[8] = {0, 1, 2, 3, 16, 256, 4096, 1u << 20};
    if (size < HEADER)
        return 0;
    size_t max = limits[data[0] & 7];
    size_t stop_at = data[0] >> 3;
    size_t sizes[8], reversed[8], whole[8];
    bool any = false;
    for (int i = 0; i < 8; i++) {
        sizes[i] = data[1 + i];
        any |= sizes[i] != 0;
    }
    for (int i = 0; i < 8; i++) {
        if (!any)
            sizes[i] = 1;
        whole[i] = SIZE_MAX;
    }
    for (int i = 0; i < 8; i++)
        reversed[i] = sizes[7 - i];

    const char *s = (const char *)data + HEADER;
    size_t len = size - HEADER;
    struct expect x;
    expect_lines(&x, s, len, max);

    struct framer f;
    framer_init(&f, max);
    feed(&f, &x, s, len, max, sizes, stop_at);
    /* The same framer after a reset (a reconnect) must not remember the
     * stream it dropped; cut the other way this time. */
    framer_reset(&f);
    feed(&f, &x, s, len, max, reversed, 0);
    framer_reset(&f);
    feed(&f, &x, s, len, max, whole, 0);
    framer_free(&f);

    /* A fresh framer given everything at once. */
    framer_init(&f, max);
    feed(&f, &x, s, len, max, whole, stop_at);
    framer_free(&f);

    free(x.off);
    free(x.len);
    return 0;
}
