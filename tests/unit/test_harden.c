// SPDX-License-Identifier: Apache-2.0
/*
 * Unit test: harden, the process hardening done at start. After it, the
 * process is not dumpable and writes no core, and a second call is as
 * good as the first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "harden.h"

static void the_process_is_not_dumpable_and_writes_no_core(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
    assert_int_equal(harden_process(err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    struct rlimit core;
    assert_int_equal(getrlimit(RLIMIT_CORE, &core), 0);
    assert_int_equal(core.rlim_cur, 0);
    assert_int_equal(core.rlim_max, 0);
    assert_int_equal(harden_process(err, sizeof(err)), 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_process_is_not_dumpable_and_writes_no_core),
    };
    return cmocka_run_group_tests_name("harden", tests, NULL, NULL);
}
