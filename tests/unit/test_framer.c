// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the watch-stream line framer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/framer.h"

#define MAX_LINES 16

/* What the callback saw: copies of the lines, and where they lay. */
struct seen {
    int n;
    char *line[MAX_LINES];
    size_t len[MAX_LINES];
    const char *at[MAX_LINES];
    int stop_after; /* return 99 from the stop_after-th line; 0 never */
};

static int record(void *arg, char *line, size_t len)
{
    struct seen *s = arg;
    assert_true(s->n < MAX_LINES);
    assert_int_equal(line[len], '\0');
    s->line[s->n] = malloc(len + 1);
    assert_non_null(s->line[s->n]);
    memcpy(s->line[s->n], line, len + 1);
    s->len[s->n] = len;
    s->at[s->n] = line;
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 99 : 0;
}

static void seen_clear(struct seen *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->line[i]);
    memset(s, 0, sizeof(*s));
}

/* Feeds a string literal through a writable copy, as curl would hand it. */
static int feed(struct framer *f, const char *text, size_t len, struct seen *s)
{
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = framer_feed(f, copy, len, record, s);
    free(copy);
    return rc;
}

#define FEED(f, lit, s) feed(f, lit, sizeof(lit) - 1, s)

static const char event_a[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
static const char event_b[] = "{\"type\":\"MODIFIED\",\"object\":{}}";
static const char event_c[] = "{\"type\":\"BOOKMARK\"}";

static void whole_lines_are_handed_over_in_place(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};
    char chunk[] = "one\ntwo\nthree\n";

    framer_init(&f, 64);
    assert_int_equal(framer_feed(&f, chunk, sizeof(chunk) - 1, record, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.line[0], "one");
    assert_string_equal(s.line[1], "two");
    assert_string_equal(s.line[2], "three");
    /* No copies: each line lies where it arrived. */
    assert_ptr_equal(s.at[0], chunk);
    assert_ptr_equal(s.at[1], chunk + 4);
    assert_ptr_equal(s.at[2], chunk + 8);
    seen_clear(&s);
    framer_free(&f);
}

static void a_line_split_at_any_byte_comes_out_whole(void **state)
{
    (void)state;
    char stream[512];
    int n = snprintf(stream, sizeof(stream), "%s\n%s\r\n\n%s\n", event_a, event_b, event_c);
    assert_true(n > 0 && (size_t)n < sizeof(stream));

    /* Every cut into two chunks, then every cut into three. */
    for (size_t i = 0; i <= (size_t)n; i++) {
        for (size_t j = i; j <= (size_t)n; j++) {
            struct framer f;
            struct seen s = {0};
            framer_init(&f, 128);
            assert_int_equal(feed(&f, stream, i, &s), 0);
            assert_int_equal(feed(&f, stream + i, j - i, &s), 0);
            assert_int_equal(feed(&f, stream + j, (size_t)n - j, &s), 0);
            assert_int_equal(s.n, 3);
            assert_string_equal(s.line[0], event_a);
            assert_int_equal(s.len[0], strlen(event_a));
            assert_string_equal(s.line[1], event_b);
            assert_string_equal(s.line[2], event_c);
            seen_clear(&s);
            framer_free(&f);
        }
    }
}

static void byte_at_a_time_works(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};
    const char *stream = "{\"a\":1}\r\n{\"b\":2}\n";

    framer_init(&f, 16);
    for (size_t i = 0; stream[i]; i++)
        assert_int_equal(feed(&f, stream + i, 1, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.line[0], "{\"a\":1}");
    assert_string_equal(s.line[1], "{\"b\":2}");
    seen_clear(&s);
    framer_free(&f);
}

static void crlf_is_stripped_but_inner_cr_kept(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};

    framer_init(&f, 64);
    assert_int_equal(FEED(&f, "a\r\nb\rc\r\n\r\r\n", &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.line[0], "a");
    assert_string_equal(s.line[1], "b\rc");
    /* "\r\r\n": only the last '\r' belongs to the terminator. */
    assert_int_equal(s.len[2], 1);
    assert_string_equal(s.line[2], "\r");
    seen_clear(&s);
    framer_free(&f);
}

static void empty_lines_are_skipped(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};

    framer_init(&f, 64);
    assert_int_equal(FEED(&f, "\n\r\n\nx\n\n", &s), 0);
    assert_int_equal(FEED(&f, "\r", &s), 0);
    assert_int_equal(FEED(&f, "\n", &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.line[0], "x");
    seen_clear(&s);
    framer_free(&f);
}

static void a_partial_line_waits_for_its_end(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};

    framer_init(&f, 64);
    assert_int_equal(FEED(&f, "{\"type\":", &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(FEED(&f, "\"ADDED\"}", &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(FEED(&f, "\n", &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.line[0], "{\"type\":\"ADDED\"}");
    seen_clear(&s);
    framer_free(&f);
}

static void a_line_of_exactly_max_passes(void **state)
{
    (void)state;
    char line[18];
    memset(line, 'x', 16);
    line[16] = '\n';

    /* Whole, and cut at every byte, with "\n" and with "\r\n". */
    for (int crlf = 0; crlf <= 1; crlf++) {
        char text[18];
        size_t n = 16 + 1 + (size_t)crlf;
        memcpy(text, line, 16);
        memcpy(text + 16, crlf ? "\r\n" : "\n", 1 + (size_t)crlf);
        for (size_t cut = 0; cut <= n; cut++) {
            struct framer f;
            struct seen s = {0};
            framer_init(&f, 16);
            assert_int_equal(feed(&f, text, cut, &s), 0);
            assert_int_equal(feed(&f, text + cut, n - cut, &s), 0);
            assert_int_equal(s.n, 1);
            assert_int_equal(s.len[0], 16);
            seen_clear(&s);
            framer_free(&f);
        }
    }
}

static void a_line_over_max_is_refused_and_the_framer_reset(void **state)
{
    (void)state;
    char text[19];
    memset(text, 'x', 17);
    text[17] = '\n';
    text[18] = '\0';

    /* Whole, and cut at every byte: -E2BIG at the latest when the newline
     * comes, at the earliest as soon as 17 bytes without '\r' are seen. */
    for (size_t cut = 0; cut <= 18; cut++) {
        struct framer f;
        struct seen s = {0};
        framer_init(&f, 16);
        int rc = feed(&f, text, cut, &s);
        if (rc == 0)
            rc = feed(&f, text + cut, 18 - cut, &s);
        assert_int_equal(rc, -E2BIG);
        assert_int_equal(s.n, 0);
        /* The stream starts afresh. */
        assert_int_equal(FEED(&f, "ok\n", &s), 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.line[0], "ok");
        seen_clear(&s);
        framer_free(&f);
    }
}

static void an_endless_line_is_refused_before_it_is_buffered(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};
    char chunk[10];
    memset(chunk, 'y', sizeof(chunk));

    framer_init(&f, 25);
    assert_int_equal(feed(&f, chunk, 10, &s), 0);
    assert_int_equal(feed(&f, chunk, 10, &s), 0);
    assert_int_equal(feed(&f, chunk, 10, &s), -E2BIG);
    assert_true(f.tail.len == 0);
    assert_int_equal(s.n, 0);
    framer_free(&f);
}

static void lines_before_an_overlong_one_are_delivered(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};

    framer_init(&f, 4);
    assert_int_equal(FEED(&f, "ab\ncd\nefghi\nlost\n", &s), -E2BIG);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.line[1], "cd");
    seen_clear(&s);
    framer_free(&f);
}

static void binary_bytes_pass_through(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};
    const char bin[] = {'\x01', '\0', '\xff', '\xc3', '(', '\n', '\x7f', '\n'};

    framer_init(&f, 64);
    assert_int_equal(feed(&f, bin, 3, &s), 0);
    assert_int_equal(feed(&f, bin + 3, sizeof(bin) - 3, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.len[0], 5);
    assert_memory_equal(s.line[0], bin, 5);
    assert_int_equal(s.len[1], 1);
    assert_int_equal(s.line[1][0], '\x7f');
    seen_clear(&s);
    framer_free(&f);
}

static void the_callback_can_stop_the_stream(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {.stop_after = 2};

    framer_init(&f, 64);
    assert_int_equal(FEED(&f, "one\ntwo\nthree\nfou", &s), 99);
    assert_int_equal(s.n, 2);
    /* Reset: neither the rest of that chunk nor its tail come back. */
    s.stop_after = 0;
    assert_int_equal(FEED(&f, "r\nfive\n", &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.line[2], "r");
    assert_string_equal(s.line[3], "five");
    seen_clear(&s);

    /* Stopping on a line completed from the buffered tail. */
    s.stop_after = 1;
    assert_int_equal(FEED(&f, "abc", &s), 0);
    assert_int_equal(FEED(&f, "def\nghi\n", &s), 99);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.line[0], "abcdef");
    seen_clear(&s);
    framer_free(&f);
}

static void reset_drops_the_partial_line(void **state)
{
    (void)state;
    struct framer f;
    struct seen s = {0};

    framer_init(&f, 64);
    assert_int_equal(FEED(&f, "{\"half", &s), 0);
    framer_reset(&f);
    assert_int_equal(FEED(&f, "{}\n", &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.line[0], "{}");
    assert_int_equal(framer_feed(&f, NULL, 0, record, &s), 0);
    seen_clear(&s);
    framer_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_lines_are_handed_over_in_place),
        cmocka_unit_test(a_line_split_at_any_byte_comes_out_whole),
        cmocka_unit_test(byte_at_a_time_works),
        cmocka_unit_test(crlf_is_stripped_but_inner_cr_kept),
        cmocka_unit_test(empty_lines_are_skipped),
        cmocka_unit_test(a_partial_line_waits_for_its_end),
        cmocka_unit_test(a_line_of_exactly_max_passes),
        cmocka_unit_test(a_line_over_max_is_refused_and_the_framer_reset),
        cmocka_unit_test(an_endless_line_is_refused_before_it_is_buffered),
        cmocka_unit_test(lines_before_an_overlong_one_are_delivered),
        cmocka_unit_test(binary_bytes_pass_through),
        cmocka_unit_test(the_callback_can_stop_the_stream),
        cmocka_unit_test(reset_drops_the_partial_line),
    };
    return cmocka_run_group_tests_name("framer", tests, NULL, NULL);
}
