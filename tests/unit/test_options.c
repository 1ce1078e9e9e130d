// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the command-line parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "options.h"

#define PARSE(opts, err, ...)                                                                      \
    ({                                                                                             \
        char *argv_[] = {"kage-controller", __VA_ARGS__, NULL};                                    \
        options_parse(opts, (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_, err, sizeof(err)); \
    })

static void no_flags_runs_with_defaults(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    char *argv[] = {"kage-controller", NULL};
    assert_int_equal(options_parse(&o, 1, argv, err, sizeof(err)), 0);
    assert_int_equal(o.action, OPTIONS_RUN);
    assert_null(o.kubeconfig);
    assert_null(o.context);
    assert_string_equal(o.default_runtime_class, "kata-fc");
}

static void version_and_help_win_over_other_flags(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--kubeconfig", "x", "--version"), 0);
    assert_int_equal(o.action, OPTIONS_VERSION);
    assert_int_equal(PARSE(&o, err, "-h"), 0);
    assert_int_equal(o.action, OPTIONS_HELP);
}

static void values_are_taken_in_both_spellings(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--kubeconfig=/tmp/kc", "--context", "dev",
                           "--default-runtime-class=kata-qemu"),
                     0);
    assert_string_equal(o.kubeconfig, "/tmp/kc");
    assert_string_equal(o.context, "dev");
    assert_string_equal(o.default_runtime_class, "kata-qemu");
}

static void the_probe_port_is_off_unless_asked_for(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    char *argv[] = {"kage-controller", NULL};
    assert_int_equal(options_parse(&o, 1, argv, err, sizeof(err)), 0);
    assert_string_equal(o.http_addr, "127.0.0.1:8081");
    assert_string_equal(o.probe_addr, "");
    assert_int_equal(PARSE(&o, err, "--http-addr=0.0.0.0:8081", "--probe-addr", "0.0.0.0:8082"), 0);
    assert_string_equal(o.http_addr, "0.0.0.0:8081");
    assert_string_equal(o.probe_addr, "0.0.0.0:8082");
    assert_int_equal(PARSE(&o, err, "--probe-addr"), -1);
    assert_string_equal(err, "flag --probe-addr needs a value");
}

static void unknown_flag_is_named(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--frobnicate"), -1);
    assert_string_equal(err, "unknown flag --frobnicate");
}

static void missing_value_is_named(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--kubeconfig"), -1);
    assert_string_equal(err, "flag --kubeconfig needs a value");
}

static void empty_runtime_class_is_refused(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--default-runtime-class="), -1);
    assert_string_equal(err, "--default-runtime-class must not be empty");
}

/* The gate's image defaults to this controller's own; it may be named, but
 * not emptied: a class, not a flag, turns the gate off. */
static void the_gate_image_defaults_to_this_version_and_is_never_empty(void **state)
{
    (void)state;
    struct options o;
    char err[160];
    assert_int_equal(PARSE(&o, err, "--leader-elect"), 0);
    assert_string_equal(o.gate_image, "localhost/kage-controller:" KAGE_VERSION);
    assert_int_equal(PARSE(&o, err, "--gate-image=registry.example/kage:1.2.3"), 0);
    assert_string_equal(o.gate_image, "registry.example/kage:1.2.3");
    assert_int_equal(PARSE(&o, err, "--gate-image="), -1);
    assert_string_equal(err, "--gate-image must not be empty (a SandboxClass turns the gate off "
                             "with spec.egress.policyGate: Disabled)");
}

static void stray_argument_is_named(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "run"), -1);
    assert_string_equal(err, "unexpected argument run");
}

static void debugging_flags_are_parsed(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--watch", "pods", "--namespace=team-a", "--selector",
                           "a=b,c!=d", "--page-size=2", "--watch-timeout", "5",
                           "--log-level=debug"),
                     0);
    assert_string_equal(o.watch, "pods");
    assert_string_equal(o.namespace, "team-a");
    assert_string_equal(o.selector, "a=b,c!=d");
    assert_int_equal(o.page_size, 2);
    assert_int_equal(o.watch_timeout_s, 5);
    assert_string_equal(o.log_level, "debug");
    assert_false(o.list_paged);
    assert_int_equal(PARSE(&o, err, "--watch", "pods", "--list", "paged"), 0);
    assert_true(o.list_paged);
    assert_int_equal(PARSE(&o, err, "--watch", "pods", "--list=stream"), 0);
    assert_false(o.list_paged);
}

static void bad_numbers_are_refused_with_the_flag_named(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    assert_int_equal(PARSE(&o, err, "--page-size=0"), -1);
    assert_string_equal(err, "--page-size must be a number from 1 to 100000, not 0");
    assert_int_equal(PARSE(&o, err, "--page-size=-3"), -1);
    assert_string_equal(err, "--page-size must be a number from 1 to 100000, not -3");
    assert_int_equal(PARSE(&o, err, "--watch-timeout=12x"), -1);
    assert_string_equal(err,
                        "--watch-timeout must be a number of seconds from 1 to 86400, not 12x");
    assert_int_equal(PARSE(&o, err, "--log-level=loud"), -1);
    assert_string_equal(err, "--log-level must be debug, info, warn or error, not loud");
    assert_int_equal(PARSE(&o, err, "--list=pages"), -1);
    assert_string_equal(err, "--list must be stream or paged, not pages");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_flags_runs_with_defaults),
        cmocka_unit_test(version_and_help_win_over_other_flags),
        cmocka_unit_test(values_are_taken_in_both_spellings),
        cmocka_unit_test(the_probe_port_is_off_unless_asked_for),
        cmocka_unit_test(unknown_flag_is_named),
        cmocka_unit_test(missing_value_is_named),
        cmocka_unit_test(empty_runtime_class_is_refused),
        cmocka_unit_test(the_gate_image_defaults_to_this_version_and_is_never_empty),
        cmocka_unit_test(stray_argument_is_named),
        cmocka_unit_test(debugging_flags_are_parsed),
        cmocka_unit_test(bad_numbers_are_refused_with_the_flag_named),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
