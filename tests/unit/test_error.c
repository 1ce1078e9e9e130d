// SPDX-License-Identifier: Apache-2.0
/* Unit tests for typed API errors: Status bodies as the API server sends
 * them, proxies' pages, and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/error.h"

#define FROM(e, code, lit, ra) kube_error_from_response(e, code, lit, sizeof(lit) - 1, ra)

static void not_found_with_details(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 404,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"sandboxes.kage.dev \\\"agent-42\\\" not found\",\"reason\":\"NotFound\","
         "\"details\":{\"name\":\"agent-42\",\"group\":\"kage.dev\",\"kind\":\"sandboxes\"},"
         "\"code\":404}\n",
         NULL);
    assert_int_equal(e.code, 404);
    assert_string_equal(e.reason, "NotFound");
    assert_string_equal(e.message, "sandboxes.kage.dev \"agent-42\" not found");
    assert_int_equal(e.retry_after_s, -1);
    assert_true(kube_error_is_not_found(&e));
    assert_false(kube_error_is_conflict(&e));
    assert_false(kube_error_is_gone(&e));
    assert_false(kube_error_retryable(&e));
}

static void already_exists_is_not_a_conflict(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 409,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"pods \\\"agent-42\\\" already exists\",\"reason\":\"AlreadyExists\","
         "\"details\":{\"name\":\"agent-42\",\"kind\":\"pods\"},\"code\":409}",
         NULL);
    assert_int_equal(e.code, 409);
    assert_string_equal(e.reason, "AlreadyExists");
    assert_string_equal(e.message, "pods \"agent-42\" already exists");
    assert_true(kube_error_is_already_exists(&e));
    assert_false(kube_error_is_conflict(&e));
    assert_false(kube_error_retryable(&e));
}

static void conflict_on_a_stale_resource_version(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 409,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"Operation cannot be fulfilled on sandboxes.kage.dev \\\"agent-42\\\": the "
         "object has been modified; please apply your changes to the latest version and try "
         "again\",\"reason\":\"Conflict\",\"details\":{\"name\":\"agent-42\",\"group\":"
         "\"kage.dev\",\"kind\":\"sandboxes\"},\"code\":409}",
         NULL);
    assert_string_equal(e.reason, "Conflict");
    assert_string_equal(e.message, "Operation cannot be fulfilled on sandboxes.kage.dev "
                                   "\"agent-42\": the object has been modified; please apply "
                                   "your changes to the latest version and try again");
    assert_true(kube_error_is_conflict(&e));
    assert_false(kube_error_is_already_exists(&e));
    assert_false(kube_error_retryable(&e));
}

static void invalid_with_causes(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 422,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"Sandbox.kage.dev \\\"agent-42\\\" is invalid: [spec.image: Required "
         "value, spec.egress.allow[0].cidr: Invalid value: \\\"10.0.0.0/33\\\": must be a "
         "CIDR]\",\"reason\":\"Invalid\",\"details\":{\"name\":\"agent-42\",\"group\":"
         "\"kage.dev\",\"kind\":\"Sandbox\",\"causes\":[{\"reason\":\"FieldValueRequired\","
         "\"message\":\"Required value\",\"field\":\"spec.image\"},{\"reason\":"
         "\"FieldValueInvalid\",\"message\":\"Invalid value: \\\"10.0.0.0/33\\\": must be a "
         "CIDR\",\"field\":\"spec.egress.allow[0].cidr\"}]},\"code\":422}",
         NULL);
    assert_int_equal(e.code, 422);
    assert_string_equal(e.reason, "Invalid");
    assert_string_equal(e.message, "Sandbox.kage.dev \"agent-42\" is invalid: [spec.image: "
                                   "Required value, spec.egress.allow[0].cidr: Invalid value: "
                                   "\"10.0.0.0/33\": must be a CIDR]");
    assert_false(kube_error_retryable(&e));
}

static void forbidden_names_the_service_account(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 403,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"networkpolicies.networking.k8s.io is forbidden: User "
         "\\\"system:serviceaccount:kage-system:kage-controller\\\" cannot create resource "
         "\\\"networkpolicies\\\" in API group \\\"networking.k8s.io\\\" in the namespace "
         "\\\"team-a\\\"\",\"reason\":\"Forbidden\",\"details\":{\"group\":\"networking.k8s.io\","
         "\"kind\":\"networkpolicies\"},\"code\":403}",
         NULL);
    assert_string_equal(e.reason, "Forbidden");
    assert_non_null(strstr(e.message, "cannot create resource \"networkpolicies\""));
    assert_false(kube_error_retryable(&e));
}

static void expired_resource_version_is_gone(void **state)
{
    (void)state;
    struct kube_error e;
    /* A LIST with a too old continue token answers 410 itself... */
    FROM(&e, 410,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"The provided continue parameter is too old to display a consistent list "
         "result. You can start a new list without the continue parameter.\",\"reason\":"
         "\"Expired\",\"code\":410}",
         NULL);
    assert_string_equal(e.reason, "Expired");
    assert_true(kube_error_is_gone(&e));
    assert_false(kube_error_retryable(&e));

    /* ...a WATCH says so in an ERROR event on a 200 stream. */
    json_t *ev = json_loads("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
                            "\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old "
                            "resource version: 1 (2345)\",\"reason\":\"Expired\",\"code\":410}}",
                            0, NULL);
    assert_non_null(ev);
    assert_int_equal(kube_error_from_status_json(&e, json_object_get(ev, "object")), 0);
    assert_int_equal(e.code, 410);
    assert_string_equal(e.reason, "Expired");
    assert_string_equal(e.message, "too old resource version: 1 (2345)");
    assert_true(kube_error_is_gone(&e));
    json_decref(ev);
}

static void watch_error_without_code_is_gone_by_reason(void **state)
{
    (void)state;
    struct kube_error e;
    json_t *st =
        json_loads("{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Gone\"}", 0, NULL);
    assert_non_null(st);
    assert_int_equal(kube_error_from_status_json(&e, st), 0);
    assert_int_equal(e.code, 0);
    assert_true(kube_error_is_gone(&e));
    assert_string_equal(e.message, "Status without a message (reason Gone, code 0)");
    json_decref(st);
}

static void watch_error_that_is_not_a_status(void **state)
{
    (void)state;
    struct kube_error e;
    json_t *pod = json_loads("{\"kind\":\"Pod\",\"status\":{\"phase\":\"Running\"}}", 0, NULL);
    assert_non_null(pod);
    assert_int_equal(kube_error_from_status_json(&e, pod), -EINVAL);
    assert_int_equal(e.code, 0);
    assert_string_equal(e.message, "ERROR event without a Status object");
    assert_true(kube_error_retryable(&e));
    assert_int_equal(kube_error_from_status_json(&e, NULL), -EINVAL);
    json_decref(pod);
}

static void watch_error_internal_error_is_retryable(void **state)
{
    (void)state;
    struct kube_error e;
    json_t *st = json_loads(
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"an error on the server (\\\"unable to decode an event from the watch "
        "stream: context canceled\\\") has prevented the request from succeeding\",\"reason\":"
        "\"InternalError\",\"details\":{\"causes\":[{\"reason\":\"UnexpectedServerResponse\","
        "\"message\":\"unable to decode an event from the watch stream: context canceled\"}]},"
        "\"code\":500}",
        0, NULL);
    assert_non_null(st);
    assert_int_equal(kube_error_from_status_json(&e, st), 0);
    assert_int_equal(e.code, 500);
    assert_true(kube_error_retryable(&e));
    assert_false(kube_error_is_gone(&e));
    json_decref(st);
}

static void too_many_requests_carries_retry_after(void **state)
{
    (void)state;
    struct kube_error e;
    static const char body[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"Too many requests, please try again later.\",\"reason\":"
        "\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":7},\"code\":429}";

    FROM(&e, 429, body, NULL);
    assert_string_equal(e.reason, "TooManyRequests");
    assert_int_equal(e.retry_after_s, 7);
    assert_true(kube_error_retryable(&e));

    /* The header, when it parses, wins; when it does not, the body stands. */
    FROM(&e, 429, body, "2");
    assert_int_equal(e.retry_after_s, 2);
    FROM(&e, 429, body, "soon");
    assert_int_equal(e.retry_after_s, 7);

    /* A 503 with only the header. */
    FROM(&e, 503, "", "120\r\n");
    assert_string_equal(e.reason, "ServiceUnavailable");
    assert_int_equal(e.retry_after_s, 120);
    assert_true(kube_error_retryable(&e));

    /* An absurd details.retryAfterSeconds is capped. */
    FROM(&e, 429, "{\"kind\":\"Status\",\"code\":429,\"details\":{\"retryAfterSeconds\":86400}}",
         NULL);
    assert_int_equal(e.retry_after_s, KUBE_RETRY_AFTER_MAX_S);
    assert_string_equal(e.reason, "TooManyRequests");
}

static void html_from_a_proxy_reads_as_text(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 502,
         "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 "
         "Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n",
         NULL);
    assert_int_equal(e.code, 502);
    assert_string_equal(e.reason, "InternalError");
    assert_string_equal(e.message, "502 Bad Gateway 502 Bad Gateway nginx/1.25.3");
    assert_int_equal(e.retry_after_s, -1);
    assert_true(kube_error_retryable(&e));
}

static void plain_text_and_binary_bodies_are_made_printable(void **state)
{
    (void)state;
    struct kube_error e;
    FROM(&e, 401, "Unauthorized\n", NULL);
    assert_string_equal(e.reason, "Unauthorized");
    assert_string_equal(e.message, "Unauthorized");
    assert_false(kube_error_retryable(&e));

    static const char bin[] = {'\x1b', '[',  '3',  '1',    'm',    '\0',   'a', '<',
                               'b',    '\t', '\t', '\xc3', '\xa9', '\x7f', 'z'};
    kube_error_from_response(&e, 500, bin, sizeof(bin), NULL);
    assert_string_equal(e.message, "[31m a<b ?? z");
    assert_string_equal(e.reason, "InternalError");

    /* JSON that is not a Status is shown as text too. */
    FROM(&e, 400, "{\"error\":\"bad\"}", NULL);
    assert_string_equal(e.reason, "BadRequest");
    assert_string_equal(e.message, "{\"error\":\"bad\"}");
}

static void empty_body_is_described_from_the_code(void **state)
{
    (void)state;
    struct kube_error e;
    kube_error_from_response(&e, 404, NULL, 0, NULL);
    assert_string_equal(e.reason, "NotFound");
    assert_string_equal(e.message, "HTTP 404 with an empty body");
    assert_true(kube_error_is_not_found(&e));

    kube_error_from_response(&e, 504, "", 0, NULL);
    assert_string_equal(e.reason, "Timeout");
    assert_true(kube_error_retryable(&e));

    kube_error_from_response(&e, 410, " \r\n", 3, NULL);
    assert_string_equal(e.reason, "Gone");
    assert_string_equal(e.message, "HTTP 410 without a message");
    assert_true(kube_error_is_gone(&e));

    kube_error_from_response(&e, 418, NULL, 0, NULL);
    assert_string_equal(e.reason, "");
    assert_false(kube_error_retryable(&e));
}

/* Checks that s is NUL-terminated within size and valid UTF-8. */
static void assert_valid_utf8(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    assert_true(n < size);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t more = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : 3;
        assert_true(c < 0x80 || (c & 0xC0) != 0x80);
        assert_true(i + more < n);
        for (size_t k = 1; k <= more; k++)
            assert_int_equal((unsigned char)s[i + k] & 0xC0, 0x80);
        i += more + 1;
    }
}

static void huge_message_is_cut_on_a_character(void **state)
{
    (void)state;
    struct kube_error e;
    /* "é" (2 bytes) and "€" (3 bytes) repeated: every cut offset is hit
     * across the shifts. */
    for (int shift = 0; shift < 6; shift++) {
        char *body = malloc(8192);
        assert_non_null(body);
        size_t n = (size_t)snprintf(body, 8192, "{\"kind\":\"Status\",\"code\":422,\"message\":\"");
        for (int i = 0; i < shift; i++)
            body[n++] = 'x';
        while (n < 8000) {
            memcpy(body + n, "\xc3\xa9\xe2\x82\xac", 5);
            n += 5;
        }
        memcpy(body + n, "\"}", 3);
        kube_error_from_response(&e, 422, body, n + 2, NULL);
        assert_valid_utf8(e.message, sizeof(e.message));
        size_t len = strlen(e.message);
        assert_true(len >= sizeof(e.message) - 4 - 2 && len <= sizeof(e.message) - 1);
        assert_string_equal(e.message + len - 3, "...");
        assert_string_equal(e.reason, "Invalid");
        free(body);
    }

    /* A huge non-JSON body: the prefix, cut and marked. */
    char *page = malloc(100000);
    assert_non_null(page);
    memset(page, 'A', 100000);
    kube_error_from_response(&e, 503, page, 100000, NULL);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    assert_string_equal(e.message + sizeof(e.message) - 4, "...");
    free(page);
}

static void overlong_reason_is_truncated(void **state)
{
    (void)state;
    struct kube_error e;
    char body[512];
    int n =
        snprintf(body, sizeof(body), "{\"kind\":\"Status\",\"code\":400,\"reason\":\"%0200d\"}", 7);
    kube_error_from_response(&e, 400, body, (size_t)n, NULL);
    assert_int_equal(strlen(e.reason), sizeof(e.reason) - 1);
}

static void transport_failures_are_retryable(void **state)
{
    (void)state;
    struct kube_error e;
    kube_error_transport(&e, "Failed to connect to 10.43.0.1 port 443: Connection refused");
    assert_int_equal(e.code, 0);
    assert_string_equal(e.reason, "");
    assert_string_equal(e.message, "Failed to connect to 10.43.0.1 port 443: Connection refused");
    assert_int_equal(e.retry_after_s, -1);
    assert_true(kube_error_retryable(&e));
    assert_false(kube_error_is_not_found(&e));

    kube_error_transport(&e, NULL);
    assert_string_equal(e.message, "transport failure");

    char big[4096];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kube_error_transport(&e, big);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
}

static void retryable_codes(void **state)
{
    (void)state;
    static const struct {
        long code;
        bool retry;
    } cases[] = {{0, true},    {400, false}, {401, false}, {403, false}, {404, false},
                 {409, false}, {410, false}, {422, false}, {429, true},  {500, true},
                 {501, false}, {502, true},  {503, true},  {504, true}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_error e;
        kube_error_from_response(&e, cases[i].code, NULL, 0, NULL);
        assert_int_equal(kube_error_retryable(&e), cases[i].retry);
    }
}

static void retry_after_delta_seconds(void **state)
{
    (void)state;
    long s = -7;
    assert_int_equal(kube_parse_retry_after("0", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(kube_parse_retry_after("120", &s), 0);
    assert_int_equal(s, 120);
    assert_int_equal(kube_parse_retry_after(" \t5\r\n", &s), 0);
    assert_int_equal(s, 5);
    assert_int_equal(kube_parse_retry_after("600", &s), 0);
    assert_int_equal(s, 600);
    assert_int_equal(kube_parse_retry_after("601", &s), 0);
    assert_int_equal(s, KUBE_RETRY_AFTER_MAX_S);
    assert_int_equal(kube_parse_retry_after("99999999999999999999999999", &s), 0);
    assert_int_equal(s, KUBE_RETRY_AFTER_MAX_S);
    assert_int_equal(kube_parse_retry_after("0000000000000000000000000000000000000042", &s), 0);
    assert_int_equal(s, 42);

    const char *bad[] = {"", "  ", "-5", "+5", "1.5", "5s", "0x10", "1 2", "soon", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = -7;
        assert_int_equal(kube_parse_retry_after(bad[i], &s), -EINVAL);
        assert_int_equal(s, -7);
    }
}

static void retry_after_http_dates(void **state)
{
    (void)state;
    long s;
    /* Wed, 21 Oct 2015 07:28:00 GMT */
    const time_t at = 1445412480;

    assert_int_equal(kube_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", at - 30, &s), 0);
    assert_int_equal(s, 30);
    assert_int_equal(kube_parse_retry_after_at("Wednesday, 21-Oct-15 07:28:00 GMT", at - 45, &s),
                     0);
    assert_int_equal(s, 45);
    assert_int_equal(kube_parse_retry_after_at("Wed Oct 21 07:28:00 2015", at - 1, &s), 0);
    assert_int_equal(s, 1);
    assert_int_equal(kube_parse_retry_after_at("Sun Nov  6 08:49:37 1994", 784111777 - 9, &s), 0);
    assert_int_equal(s, 9);
    /* In the past: now. Far ahead: the cap. */
    assert_int_equal(kube_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", at + 100, &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(kube_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", at - 86400, &s), 0);
    assert_int_equal(s, KUBE_RETRY_AFTER_MAX_S);

    assert_int_equal(kube_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00", at, &s), -EINVAL);
    assert_int_equal(kube_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT junk", at, &s),
                     -EINVAL);
    assert_int_equal(kube_parse_retry_after_at("Wed, 32 Oct 2015 07:28:00 GMT", at, &s), -EINVAL);

    /* Against the clock: a date 60 s ahead. */
    char date[64];
    time_t later = time(NULL) + 60;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_int_equal(kube_parse_retry_after(date, &s), 0);
    assert_true(s >= 58 && s <= 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(not_found_with_details),
        cmocka_unit_test(already_exists_is_not_a_conflict),
        cmocka_unit_test(conflict_on_a_stale_resource_version),
        cmocka_unit_test(invalid_with_causes),
        cmocka_unit_test(forbidden_names_the_service_account),
        cmocka_unit_test(expired_resource_version_is_gone),
        cmocka_unit_test(watch_error_without_code_is_gone_by_reason),
        cmocka_unit_test(watch_error_that_is_not_a_status),
        cmocka_unit_test(watch_error_internal_error_is_retryable),
        cmocka_unit_test(too_many_requests_carries_retry_after),
        cmocka_unit_test(html_from_a_proxy_reads_as_text),
        cmocka_unit_test(plain_text_and_binary_bodies_are_made_printable),
        cmocka_unit_test(empty_body_is_described_from_the_code),
        cmocka_unit_test(huge_message_is_cut_on_a_character),
        cmocka_unit_test(overlong_reason_is_truncated),
        cmocka_unit_test(transport_failures_are_retryable),
        cmocka_unit_test(retryable_codes),
        cmocka_unit_test(retry_after_delta_seconds),
        cmocka_unit_test(retry_after_http_dates),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
