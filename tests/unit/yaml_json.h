// SPDX-License-Identifier: Apache-2.0
/* yaml_json.h - for unit tests: a YAML file (a CRD, a manifest) read with
 * libyaml into a jansson tree, so tests walk it as they walk JSON.
 * Include after cmocka.h. */
#ifndef KAGE_TEST_YAML_JSON_H
#define KAGE_TEST_YAML_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

/* A plain scalar is typed as YAML 1.2's core schema types it (the few
 * forms a CRD uses); a quoted one is always a string. */
static json_t *scalar_json(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
            return json_boolean(s[0] == 't');
        if (len == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
            return json_null();
        size_t digits = strspn(s + (s[0] == '-'), "0123456789");
        if (digits > 0 && digits < 19 && digits + (s[0] == '-') == len)
            return json_integer(strtoll(s, NULL, 10));
    }
    return json_stringn(s, len);
}

static json_t *yaml_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    assert_non_null(n);
    assert_true(depth < 64);
    json_t *j = NULL;
    if (n->type == YAML_SCALAR_NODE) {
        j = scalar_json(n);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        j = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            json_array_append_new(j, yaml_json(doc, yaml_document_get_node(doc, *it), depth + 1));
    } else if (n->type == YAML_MAPPING_NODE) {
        j = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            assert_true(k != NULL && k->type == YAML_SCALAR_NODE);
            json_object_set_new(j, (const char *)k->data.scalar.value,
                                yaml_json(doc, yaml_document_get_node(doc, p->value), depth + 1));
        }
    }
    assert_non_null(j);
    return j;
}

static json_t *load_yaml(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: run the unit tests from the repository root (make test-unit)",
                 path);
    yaml_parser_t parser;
    yaml_document_t doc;
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc))
        fail_msg("%s: %s at line %zu", path, parser.problem, parser.problem_mark.line + 1);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        fail_msg("%s holds no document", path);
    json_t *j = yaml_json(&doc, root, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return j;
}

#endif
