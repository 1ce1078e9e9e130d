// SPDX-License-Identifier: Apache-2.0
/* Unit tests for label selectors (a SandboxClass's namespaceSelector) and
 * the namespace cache entry they are matched against. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json_expect.h"
#include "reconcile/selector.h"

#define LABELS "{'team':'a','tier':'gold','kubernetes.io/metadata.name':'team-a'}"

static const struct {
    const char *selector; /* NULL: no selector */
    bool selects;
} cases[] = {
    {NULL, true},
    {"{}", true},
    {"{'matchLabels':{}}", true},
    {"{'matchLabels':{'team':'a'}}", true},
    {"{'matchLabels':{'team':'a','tier':'gold'}}", true},
    {"{'matchLabels':{'team':'b'}}", false},
    {"{'matchLabels':{'absent':'x'}}", false},
    {"{'matchExpressions':[{'key':'team','operator':'In','values':['b','a']}]}", true},
    {"{'matchExpressions':[{'key':'team','operator':'In','values':['b']}]}", false},
    {"{'matchExpressions':[{'key':'absent','operator':'In','values':['b']}]}", false},
    {"{'matchExpressions':[{'key':'team','operator':'NotIn','values':['b']}]}", true},
    {"{'matchExpressions':[{'key':'team','operator':'NotIn','values':['a']}]}", false},
    {"{'matchExpressions':[{'key':'absent','operator':'NotIn','values':['a']}]}", true},
    {"{'matchExpressions':[{'key':'tier','operator':'Exists'}]}", true},
    {"{'matchExpressions':[{'key':'absent','operator':'Exists'}]}", false},
    {"{'matchExpressions':[{'key':'absent','operator':'DoesNotExist'}]}", true},
    {"{'matchExpressions':[{'key':'team','operator':'DoesNotExist'}]}", false},
    /* every requirement, and matchLabels too, must hold */
    {"{'matchLabels':{'team':'a'},'matchExpressions':[{'key':'tier','operator':'In','values':"
     "['silver']}]}",
     false},
    /* not well formed: selects nothing, so a mistake never widens a class */
    {"{'matchExpressions':[{'key':'team','operator':'Like','values':['a']}]}", false},
    {"{'matchExpressions':[{'key':'team','operator':'In'}]}", false},
    {"{'matchExpressions':[{'key':'team','operator':'In','values':[]}]}", false},
    {"{'matchExpressions':[{'key':'team','operator':'In','values':[1]}]}", false},
    {"{'matchExpressions':[{'key':'team','operator':'Exists','values':['a']}]}", false},
    {"{'matchExpressions':[{'operator':'Exists'}]}", false},
    {"{'matchLabels':{'team':1}}", false},
    {"{'matchLabels':'team=a'}", false},
    {"{'matchExpressions':{}}", false},
    {"'team=a'", false},
};

static void a_selector_selects_exactly_what_the_api_server_would(void **state)
{
    (void)state;
    json_t *labels = parse(LABELS);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *sel = cases[i].selector ? parse(cases[i].selector) : NULL;
        bool got = selector_matches(sel, labels);
        json_decref(sel);
        if (got != cases[i].selects)
            fail_msg("%s: selects %d, want %d", cases[i].selector ? cases[i].selector : "(none)",
                     got, cases[i].selects);
    }
    /* A namespace without labels is selected only by selectors that ask
     * for nothing, or for an absence. */
    json_t *sel = parse("{'matchExpressions':[{'key':'team','operator':'DoesNotExist'}]}");
    assert_true(selector_matches(sel, NULL));
    json_decref(sel);
    sel = parse("{'matchLabels':{'team':'a'}}");
    assert_false(selector_matches(sel, NULL));
    json_decref(sel);
    json_decref(labels);
}

static void a_namespace_is_cached_as_its_name_and_sorted_labels(void **state)
{
    (void)state;
    char err[100];
    json_t *obj = parse("{'metadata':{'name':'team-a','uid':'u','labels':{'z':'1','a':'2'}},"
                        "'spec':{'finalizers':['kubernetes']}}");
    struct namespace_obj *n = selector_decode_namespace(obj, err, sizeof(err));
    assert_non_null(n);
    assert_string_equal(n->name, "team-a");
    assert_string_equal(n->labels, "{\"a\":\"2\",\"z\":\"1\"}");
    free(n);
    json_decref(obj);

    obj = parse("{'metadata':{'name':'bare'}}");
    n = selector_decode_namespace(obj, err, sizeof(err));
    assert_non_null(n);
    assert_string_equal(n->labels, "{}");
    free(n);
    json_decref(obj);

    obj = parse("{'metadata':{}}");
    assert_null(selector_decode_namespace(obj, err, sizeof(err)));
    assert_string_equal(err, "namespace without metadata.name");
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_selector_selects_exactly_what_the_api_server_would),
        cmocka_unit_test(a_namespace_is_cached_as_its_name_and_sorted_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
