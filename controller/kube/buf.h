// SPDX-License-Identifier: Apache-2.0
/* buf.h - a growable byte buffer with a hard cap, so no peer can make us
 * allocate without bound. */
#ifndef KAGE_BUF_H
#define KAGE_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len; appends past it fail with -ENOSPC */
};

/* Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Appends n bytes. Returns 0, -ENOSPC past the cap (b unchanged), or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string; same returns as buf_append. */
int buf_append_str(struct buf *b, const char *s);

/* Appends printf-formatted text; same returns as buf_append. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* Hands the data to the caller (who frees it) and leaves b empty. */
char *buf_steal(struct buf *b);

/* Frees the memory; b may be reused after buf_init. */
void buf_free(struct buf *b);

#endif
