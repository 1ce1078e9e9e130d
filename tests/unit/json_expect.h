// SPDX-License-Identifier: Apache-2.0
/* json_expect.h - for unit tests: JSON written with single quotes, and a
 * whole-object comparison that prints both sides when they differ.
 * Include after cmocka.h. */
#ifndef KAGE_TEST_JSON_EXPECT_H
#define KAGE_TEST_JSON_EXPECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Test JSON is written with single quotes, turned into double ones here;
 * \' stands for a literal single quote. */
__attribute__((unused)) static json_t *parse(const char *text)
{
    size_t n = strlen(text);
    char *buf = malloc(n + 1);
    size_t w = 0;
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\\' && text[i + 1] == '\'')
            buf[w++] = text[++i];
        else
            buf[w++] = text[i] == '\'' ? '"' : text[i];
    }
    buf[w] = '\0';
    json_error_t je;
    json_t *j = json_loads(buf, JSON_DECODE_ANY, &je);
    if (j == NULL) {
        fprintf(stderr, "test JSON does not parse (%s at %d): %s\n", je.text, je.position, buf);
        free(buf);
        fail();
    }
    free(buf);
    return j;
}

/* Fails, printing both objects, unless got equals want exactly. Takes
 * both references, so that a failing test leaks nothing. */
__attribute__((unused)) static void expect_json(json_t *got, json_t *want, const char *what)
{
    if (got && json_equal(got, want)) {
        json_decref(got);
        json_decref(want);
        return;
    }
    char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(2));
    /* Not print_error: cmocka cuts its output at 1 KiB. */
    fprintf(stderr, "%s: objects differ\n--- got:\n%s\n--- want:\n%s\n", what, g ? g : "(NULL)", w);
    free(g);
    free(w);
    json_decref(got);
    json_decref(want);
    fail();
}

#endif
