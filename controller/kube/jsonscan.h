// SPDX-License-Identifier: Apache-2.0
/* jsonscan.h - byte-level scans of JSON text that run before (and spare)
 * a full parse. */
#ifndef KAGE_JSONSCAN_H
#define KAGE_JSONSCAN_H

#include <stddef.h>

/*
 * Removes every object member named "managedFields" (and its value) from
 * the JSON text in buf[0..*len), in place, fixing the commas around it, and
 * updates *len. Server-side apply bookkeeping is often a third of an object
 * and the controller never reads it, so dropping it first saves the parser
 * that work. Text that is not well-formed around a match is left as it is
 * (the parser then reports it). Returns the number of members removed.
 */
int jsonscan_strip_managed_fields(char *buf, size_t *len);

/*
 * The same for every member whose name is in names (a NULL-terminated
 * list of names as they appear between the quotes, at any depth): for a
 * decoder that reads a few fields of a large object, the members it never
 * reads. A name spelled with escapes in the text is not matched (and so
 * kept). Returns the number of members removed.
 */
int jsonscan_strip_members(char *buf, size_t *len, const char *const *names);

#endif
