// SPDX-License-Identifier: Apache-2.0
/* alloc_fail.h - for unit tests: makes jansson's allocation number fail_at
 * fail, so that a test can sweep every allocation of the code under test
 * and check that it copes with ENOMEM. Install with json_set_alloc_funcs:
 *
 *   fi_malloc, free                 one allocation fails
 *   fi_track_malloc, fi_track_free  also, what jansson frees is poisoned and
 *                                   kept until fi_track_clean, so that a
 *                                   double free or a write after free on an
 *                                   error path shows in any build
 *
 * Blocks are plain malloc memory (the code under test may free() what
 * json_dumps returns); leaks show under LeakSanitizer (make test-asan).
 * Include after cmocka.h. */
#ifndef KAGE_TEST_ALLOC_FAIL_H
#define KAGE_TEST_ALLOC_FAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define FI_SLOTS 16384

/* Counts allocations down to the one that fails; -1: none fails. */
__attribute__((unused)) static long fail_at = -1;
/* Set when an allocation was made to fail. */
__attribute__((unused)) static bool failed;

__attribute__((unused)) static void *fi_malloc(size_t n)
{
    if (fail_at >= 0 && fail_at-- == 0) {
        failed = true;
        return NULL;
    }
    return malloc(n);
}

__attribute__((unused)) static struct fi_block {
    void *p;
    size_t size;
    bool freed;
} fi_tab[FI_SLOTS];
__attribute__((unused)) static bool fi_double_free, fi_table_full;

/* The slot of the block at address a, or the free slot for it. */
__attribute__((unused)) static struct fi_block *fi_find(uintptr_t a)
{
    size_t i = (a >> 4) % FI_SLOTS;
    for (size_t k = 0; k < FI_SLOTS; k++, i = (i + 1) % FI_SLOTS)
        if ((uintptr_t)fi_tab[i].p == a || fi_tab[i].p == NULL)
            return &fi_tab[i];
    return NULL;
}

__attribute__((unused)) static void *fi_track_malloc(size_t n)
{
    void *p = fi_malloc(n);
    if (!p)
        return NULL;
    /* A slot of the same address is a block free()d outside jansson. */
    struct fi_block *b = fi_find((uintptr_t)p);
    if (!b) {
        fi_table_full = true;
        return p;
    }
    *b = (struct fi_block){.p = p, .size = n};
    return p;
}

__attribute__((unused)) static void fi_track_free(void *p)
{
    struct fi_block *b = p ? fi_find((uintptr_t)p) : NULL;
    if (!b || !b->p) {
        free(p); /* not made while tracking */
        return;
    }
    if (b->freed) {
        fi_double_free = true;
        return;
    }
    b->freed = true;
    memset(p, 0xA5, b->size);
}

/* Releases the blocks jansson freed and forgets the others; true when
 * none was freed twice or written after free, else why says what. */
__attribute__((unused)) static bool fi_track_clean(char *why, size_t whylen)
{
    size_t touched = 0;
    for (size_t i = 0; i < FI_SLOTS; i++) {
        struct fi_block *b = &fi_tab[i];
        if (b->p && b->freed) {
            for (size_t k = 0; k < b->size; k++)
                touched += ((const unsigned char *)b->p)[k] != 0xA5;
            free(b->p);
        }
        *b = (struct fi_block){0};
    }
    snprintf(why, whylen, "%zu bytes written after free%s%s", touched,
             fi_double_free ? ", a block freed twice" : "", fi_table_full ? ", table full" : "");
    bool clean = touched == 0 && !fi_double_free && !fi_table_full;
    fi_double_free = fi_table_full = false;
    return clean;
}

#endif
