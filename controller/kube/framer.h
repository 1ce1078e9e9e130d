// SPDX-License-Identifier: Apache-2.0
/* framer.h - splits a watch stream (chunked HTTP body) into newline-delimited
 * lines, each at most max_line bytes, so a peer cannot make us buffer without
 * bound. */
#ifndef KAGE_FRAMER_H
#define KAGE_FRAMER_H

#include <stddef.h>

#include "kube/buf.h"

struct framer {
    struct buf tail; /* the partial last line of earlier chunks */
    size_t max_line;
};

/*
 * Called once per complete, non-empty line: line[0..len) without its '\n'
 * or a trailing '\r', and line[len] == '\0' (the line may hold other NULs:
 * len is the truth). The line is valid only during the call; cb may modify
 * it. Returning nonzero stops framer_feed, which returns that value.
 */
typedef int (*framer_line_cb)(void *arg, char *line, size_t len);

/* Initialises an empty framer for lines of at most max_line bytes (not
 * counting "\r\n"). Allocates nothing. */
void framer_init(struct framer *f, size_t max_line);

/*
 * Feeds the next len bytes of the stream and calls cb on each line they
 * complete, in order. Whole lines are handed over in place: the framer
 * writes a NUL over each line's terminator inside data, which therefore must
 * be writable (curl's write callback buffer is, and curl does not read it
 * again once the callback has consumed it). Only a partial last line is
 * copied, to be completed by the next call.
 * Returns 0; -E2BIG when a line is longer than max_line; -ENOMEM; or the
 * first nonzero value cb returned. On any nonzero return the framer is reset
 * (the rest of data and any partial line are dropped): the caller is expected
 * to drop the stream.
 */
int framer_feed(struct framer *f, char *data, size_t len, framer_line_cb cb, void *arg);

/* Drops any partial line, e.g. when the stream is reconnected. Keeps memory. */
void framer_reset(struct framer *f);

/* Frees the framer's memory; it may be reused after framer_init. */
void framer_free(struct framer *f);

#endif
