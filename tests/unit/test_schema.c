// SPDX-License-Identifier: Apache-2.0
/*
 * Unit test: the Sandbox CRD is the one source of the schema's limits, and
 * this is its guard. It reads crds/sandboxes.kage.dev.yaml, walks metadata
 * and spec, and probes sandbox_validate from a minimal valid Sandbox at
 * every bound, enum, required field and rule the CRD states, naming each
 * field where the controller and the CRD disagree.
 */
#include <glob.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "reconcile/validate.h"
#include "cel_rule.h"
#include "yaml_json.h"

/* Both relative to the repository root, where make test-unit runs. */
#ifndef KAGE_SANDBOX_CRD
#define KAGE_SANDBOX_CRD "crds/sandboxes.kage.dev.yaml"
#endif
#define VALIDATOR_SOURCES "controller/reconcile/validate*.c"

#define N(a)         (sizeof(a) / sizeof((a)[0]))
#define MAX_NODES    96
#define MAX_RULES    8
#define MAX_REQUIRED 8
#define MAX_WORDS    256
#define LONG_STRING  65536 /* a string past any bound the controller has */
#define LONG_LIST    1000  /* a list past any bound the controller has */
#define API_NAME_RULE \
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')"

enum type {
    T_OBJECT,
    T_ARRAY,
    T_STRING,
    T_INTEGER,
    T_BOOLEAN,
    T_INT_OR_STRING
};

/* How the test makes a valid string for a field. */
enum kind {
    K_NONE,
    K_WORD,
    K_IDENT,
    K_PATH,
    K_QUANTITY,
    K_CIDR,
    K_CIDR_INSIDE
};

struct node {
    char path[160];  /* "spec.env[].name": "[]" stands for the array's items */
    const char *key; /* the member name in the parent object; NULL for items */
    int parent;      /* -1 for the root */
    const json_t *schema;
    enum type type;
    enum kind kind;
    long long max_len, min_len, max_items; /* -1: none */
    bool has_min, has_max;
    long long min, max;
    long long excluded[4];
    int nexcluded;
    const char *required[MAX_REQUIRED];
    int nrequired;
    char one_of[2][64], not_both[2][64]; /* from the whole-rule forms; "": none */
    char not_both_at[64];                /* the not-both rule's fieldPath */
    struct cel_rule rules[MAX_RULES];
    int nrules, unread; /* rules read into rules[], and those left out */
};

static json_t *crd;
static struct node nodes[MAX_NODES];
static int nnodes;
static const char *words[MAX_WORDS]; /* identifier-like literals in the validator */
static int nwords;
static char *source_text;
static int problems;
static struct {
    int fields, max_len, min_len, max_items, list_keys, ranges, enums, required, rules, unread,
        types, lacks, probes;
} count;

/* Strings every string field is tried with, besides its bounds. */
static const char *const candidates[] = {
    "",    "a",   "z9",   "0",    "A",      "aB",       "_a",         "a_b",
    "0a",  "$",   "a*",   "a:b",  "a@b",    "a/b",      "a-b",        "-a",
    "a-",  "a.b", "a..b", ".a",   "a.",     ".",        "..",         "..a",
    "a b", " a",  "a\t",  "a\n",  "a\x01",  "a\x7f",    "a\xc2\xa0z", /* no-break space */
    "/",   "/a",  "/a/b", "/a b", "/a\x01", "\xc3\xa4", "/\xc3\xa4",  "a\xe2\x82\xac",
};

/* The string fields the test can make values for, and how. */
static const struct {
    const char *path;
    enum kind kind;
} kinds[] = {
    {"metadata.name", K_WORD},
    {"spec.sandboxClassName", K_WORD},
    {"spec.image", K_WORD},
    {"spec.command[]", K_WORD},
    {"spec.args[]", K_WORD},
    {"spec.workingDir", K_PATH},
    {"spec.env[].name", K_IDENT},
    {"spec.env[].value", K_WORD},
    {"spec.env[].valueFrom.secretKeyRef.name", K_WORD},
    {"spec.env[].valueFrom.secretKeyRef.key", K_WORD},
    {"spec.env[].valueFrom.configMapKeyRef.name", K_WORD},
    {"spec.env[].valueFrom.configMapKeyRef.key", K_WORD},
    {"spec.resources.cpu", K_QUANTITY},
    {"spec.resources.memory", K_QUANTITY},
    {"spec.resources.ephemeralStorage", K_QUANTITY},
    {"spec.egress.allow[].cidr", K_CIDR},
    {"spec.egress.allow[].except[]", K_CIDR_INSIDE},
    {"spec.beforeScript", K_WORD},
};

__attribute__((format(printf, 1, 2))) static void problem(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "schema: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    problems++;
}

/* ---- the schema as a list of fields ---------------------------------- */

static int find_node(const char *path)
{
    for (int i = 0; i < nnodes; i++)
        if (strcmp(nodes[i].path, path) == 0)
            return i;
    return -1;
}

/* The path with each "[]" made "[0]": what the controller names. */
static const char *concrete(const char *pattern, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 4 < outlen; p++) {
        out[o++] = *p;
        if (p[0] == '[' && p[1] == ']')
            out[o++] = '0';
    }
    out[o] = '\0';
    return out;
}

static long long int_member(const json_t *schema, const char *key, long long none)
{
    const json_t *v = json_object_get(schema, key);
    return json_is_integer(v) ? json_integer_value(v) : none;
}

static int add_node(int parent, const char *key, const json_t *schema)
{
    assert_true(nnodes < MAX_NODES);
    struct node *n = &nodes[nnodes];
    memset(n, 0, sizeof(*n));
    n->parent = parent;
    n->key = key;
    n->schema = schema;
    if (parent >= 0) {
        char pp[sizeof(n->path)];
        memcpy(pp, nodes[parent].path, sizeof(pp));
        assert_true(strlen(pp) + (key ? strlen(key) : 0) + 3 < sizeof(n->path));
        if (key)
            snprintf(n->path, sizeof(n->path), "%.100s%s%.50s", pp, pp[0] ? "." : "", key);
        else
            snprintf(n->path, sizeof(n->path), "%.150s[]", pp);
    }
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (json_is_true(json_object_get(schema, "x-kubernetes-int-or-string")))
        n->type = T_INT_OR_STRING;
    else if (type && strcmp(type, "object") == 0)
        n->type = T_OBJECT;
    else if (type && strcmp(type, "array") == 0)
        n->type = T_ARRAY;
    else if (type && strcmp(type, "string") == 0)
        n->type = T_STRING;
    else if (type && strcmp(type, "integer") == 0)
        n->type = T_INTEGER;
    else if (type && strcmp(type, "boolean") == 0)
        n->type = T_BOOLEAN;
    else
        problem("%s: type %s is not one the test knows", n->path, type ? type : "(none)");
    n->max_len = int_member(schema, "maxLength", -1);
    n->min_len = int_member(schema, "minLength", -1);
    n->max_items = int_member(schema, "maxItems", -1);
    n->has_min = json_is_integer(json_object_get(schema, "minimum"));
    n->has_max = json_is_integer(json_object_get(schema, "maximum"));
    n->min = int_member(schema, "minimum", 0);
    n->max = int_member(schema, "maximum", 0);
    const json_t *required = json_object_get(schema, "required");
    size_t i;
    for (i = 0; i < json_array_size(required); i++) {
        assert_true(n->nrequired < MAX_REQUIRED);
        n->required[n->nrequired++] = json_string_value(json_array_get(required, i));
    }
    if ((n->type == T_STRING && !json_object_get(schema, "enum")) || n->type == T_INT_OR_STRING) {
        for (i = 0; i < N(kinds); i++)
            if (strcmp(kinds[i].path, n->path) == 0)
                n->kind = kinds[i].kind;
        if (n->kind == K_NONE)
            problem("%s: a string field test_schema.c cannot make values for: add it to kinds[]",
                    n->path);
    }
    count.fields += parent >= 0;
    return nnodes++;
}

static void walk(int at)
{
    json_t *props = json_object_get(nodes[at].schema, "properties");
    for (void *it = json_object_iter(props); it; it = json_object_iter_next(props, it)) {
        const char *key = json_object_iter_key(it);
        json_t *sub = json_object_iter_value(it);
        /* The controller reads metadata and spec; the API server sets
         * apiVersion and kind, and status is the controller's own. */
        if (at == 0 &&
            (!strcmp(key, "apiVersion") || !strcmp(key, "kind") || !strcmp(key, "status")))
            continue;
        if (at == 0 && strcmp(key, "metadata") != 0 && strcmp(key, "spec") != 0) {
            problem("%s: a top-level field test_schema.c does not know", key);
            continue;
        }
        walk(add_node(at, key, sub));
    }
    const json_t *items = json_object_get(nodes[at].schema, "items");
    if (nodes[at].type == T_ARRAY && !items)
        problem("%s: an array without items", nodes[at].path);
    if (items)
        walk(add_node(at, NULL, items));
}

/* Reads one CEL rule at node at, attaching what it says to its subject. */
static void read_rule(int at, const char *text, const char *field_path)
{
    char a[64], b[64];
    int end = 0;
    struct node *n = &nodes[at];
    if (sscanf(text, "has(self.%63[A-Za-z]) != has(self.%63[A-Za-z])%n", a, b, &end) == 2 &&
        text[end] == '\0') {
        snprintf(n->one_of[0], sizeof(n->one_of[0]), "%s", a);
        snprintf(n->one_of[1], sizeof(n->one_of[1]), "%s", b);
        count.rules++;
        return;
    }
    if (sscanf(text, "!(has(self.%63[A-Za-z]) && has(self.%63[A-Za-z]))%n", a, b, &end) == 2 &&
        text[end] == '\0') {
        snprintf(n->not_both[0], sizeof(n->not_both[0]), "%s", a);
        snprintf(n->not_both[1], sizeof(n->not_both[1]), "%s", b);
        snprintf(n->not_both_at, sizeof(n->not_both_at), "%s",
                 field_path ? field_path + (field_path[0] == '.') : "");
        count.rules++;
        return;
    }
    struct cel_rule r;
    if (!cel_read(text, &r)) {
        cel_rule_free(&r);
        n->unread++;
        count.unread++;
        return;
    }
    char path[200];
    snprintf(path, sizeof(path), "%s%s%s", n->path, n->path[0] && r.subject[0] ? "." : "",
             r.subject);
    int target = find_node(path);
    if (target < 0) {
        problem("%s: a rule about %s, which the CRD does not define: %s", n->path, path, text);
        cel_rule_free(&r);
        return;
    }
    struct node *t = &nodes[target];
    count.rules++;
    /* A lone size bound is a maxLength; a lone "!= n" on a number takes
     * that number out of the range. */
    if (r.n == 1 && !r.atom[0].neg && r.atom[0].op == CEL_SIZE_LE) {
        if (t->max_len < 0 || r.atom[0].num < t->max_len)
            t->max_len = r.atom[0].num;
        return;
    }
    if (r.n == 1 && !r.atom[0].neg && r.atom[0].op == CEL_NE && r.atom[0].is_num &&
        t->type == T_INTEGER) {
        assert_true(t->nexcluded < (int)N(t->excluded));
        t->excluded[t->nexcluded++] = r.atom[0].num;
        return;
    }
    if (t->type != T_STRING) {
        problem("%s: a rule on a non-string field the test cannot read: %s", t->path, text);
        cel_rule_free(&r);
        return;
    }
    assert_true(t->nrules < MAX_RULES);
    t->rules[t->nrules++] = r;
}

/* Adds the string literal at s[0..len) to words[] when it is an
 * identifier not there yet. */
static void add_word(char *s, size_t len)
{
    const char *id = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    if (len == 0 || strspn(s, id) < len || (s[0] >= '0' && s[0] <= '9'))
        return;
    s[len] = '\0';
    for (int w = 0; w < nwords; w++)
        if (strcmp(words[w], s) == 0)
            return;
    assert_true(nwords < MAX_WORDS);
    words[nwords++] = s;
}

/* The identifier-like string literals of the validator's sources (not
 * its comments): the names it may look up, and the words it may accept. */
static void read_words(void)
{
    glob_t g;
    size_t total = 0;
    assert_int_equal(glob(VALIDATOR_SOURCES, 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "rb");
        assert_non_null(f);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            char *grown = realloc(source_text, total + n + 2);
            assert_non_null(grown);
            source_text = grown;
            memcpy(source_text + total, chunk, n);
            total += n;
        }
        source_text[total++] = '\n';
        fclose(f);
    }
    globfree(&g);
    assert_non_null(source_text);
    source_text[total] = '\0';
    for (char *p = source_text; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            p = end ? end + 1 : p + strlen(p) - 1;
        } else if (p[0] == '/' && p[1] == '/') {
            p += strcspn(p, "\n");
        } else if (*p == '\'' || *p == '"') {
            char quote = *p, *start = p + 1;
            for (p++; *p && *p != quote; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p)
                break;
            if (quote == '"')
                add_word(start, (size_t)(p - start));
        }
    }
}

static int setup(void **state)
{
    (void)state;
    crd = load_yaml(KAGE_SANDBOX_CRD);
    const json_t *versions = json_object_get(json_object_get(crd, "spec"), "versions");
    if (json_array_size(versions) != 1)
        fail_msg("the CRD has %zu versions; test_schema.c reads exactly one",
                 json_array_size(versions));
    const json_t *root =
        json_object_get(json_object_get(json_array_get(versions, 0), "schema"), "openAPIV3Schema");
    assert_non_null(root);
    add_node(-1, NULL, root);
    walk(0);

    /* What the API server requires of every object without the CRD
     * saying so: a metadata.name that is a DNS-1123 subdomain. */
    int meta = find_node("metadata"), name = find_node("metadata.name");
    assert_true(meta > 0 && name > 0);
    nodes[0].required[nodes[0].nrequired++] = "metadata";
    nodes[meta].required[nodes[meta].nrequired++] = "name";
    read_rule(name, API_NAME_RULE, NULL);

    for (int i = 0; i < nnodes; i++) {
        const json_t *rules = json_object_get(nodes[i].schema, "x-kubernetes-validations");
        for (size_t k = 0; k < json_array_size(rules); k++) {
            const json_t *v = json_array_get(rules, k);
            read_rule(i, json_string_value(json_object_get(v, "rule")),
                      json_string_value(json_object_get(v, "fieldPath")));
        }
    }
    for (size_t i = 0; i < N(kinds); i++)
        if (find_node(kinds[i].path) < 0)
            problem("%s: in test_schema.c's kinds[] but not in the CRD", kinds[i].path);
    read_words();
    if (problems)
        fail_msg("the CRD does not read as test_schema.c expects (above)");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fprintf(stderr,
            "schema: %d fields of %s; %d probes of %d maxLength, %d minLength, %d maxItems, "
            "%d list keys, %d ranges, %d enums, %d required fields, %d types, %d CEL rules and "
            "%d names the CRD lacks; %d CEL rules left to test_validate.c\n",
            count.fields, KAGE_SANDBOX_CRD, count.probes, count.max_len, count.min_len,
            count.max_items, count.list_keys, count.ranges, count.enums, count.required,
            count.types, count.rules, count.lacks, count.unread);
    for (int i = 0; i < nnodes; i++) {
        for (int r = 0; r < nodes[i].nrules; r++)
            cel_rule_free(&nodes[i].rules[r]);
    }
    json_decref(crd);
    free(source_text);
    return 0;
}

/* ---- valid values, and Sandboxes built around one field -------------- */

/*
 * A valid value of kind k that is n characters long (n < 0: short), the
 * idx-th of distinct ones where the kind has several; NULL when there is
 * none of that length. Free with free().
 */
static char *sample(enum kind k, long n, long idx)
{
    char digits[16], *s;
    int nd = 0;
    long v = idx;
    do {
        digits[nd++] = (char)('a' + v % 26);
        v /= 26;
    } while (v);

    if (k == K_CIDR || k == K_CIDR_INSIDE) {
        if (n < 0)
            return strdup(k == K_CIDR ? "::/0" : "::1/128");
        if (n == 43)
            return strdup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        if (n < 34 || n > 49)
            return NULL;
        /* "0:0:0:0:0:ffff:255.255.255.255/128" (34), its groups padded with zeros. */
        char buf[64] = "";
        long extra = n - 34;
        for (int g = 0; g < 5; g++) {
            long pad = extra > 3 ? 3 : extra;
            extra -= pad;
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%.*s0:", (int)pad, "000");
        }
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "ffff:255.255.255.255/128");
        assert_int_equal(strlen(buf), n);
        return strdup(buf);
    }
    if (k == K_QUANTITY) {
        if (n < 0 || n == 1)
            return strdup("1");
        if (n == 2)
            return strdup("10");
        s = malloc((size_t)n + 1);
        assert_non_null(s);
        memset(s, '0', (size_t)n); /* "1.000...": one, written long */
        memcpy(s, "1.", 2);
        s[n] = '\0';
        return s;
    }
    long lead = k == K_PATH; /* '/' */
    if (n < 0)
        n = nd + lead;
    if (n < nd + lead)
        return NULL;
    s = malloc((size_t)n + 1);
    assert_non_null(s);
    memset(s, k == K_IDENT ? 'A' : 'a', (size_t)n);
    for (int i = 0; i < nd; i++)
        s[n - 1 - i] = (char)(k == K_IDENT ? digits[i] - 'a' + 'A' : digits[i]);
    if (lead)
        s[0] = '/';
    s[n] = '\0';
    return s;
}

static json_t *string_of(enum kind k, long n, long idx, const char *path)
{
    char *s = sample(k, n, idx);
    if (!s)
        fail_msg("%s: test_schema.c cannot make a valid value of %ld characters", path, n);
    json_t *j = json_string(s);
    free(s);
    assert_non_null(j);
    return j;
}

static bool is_excluded(const struct node *n, long long v)
{
    for (int i = 0; i < n->nexcluded; i++)
        if (n->excluded[i] == v)
            return true;
    return false;
}

static int child(int at, const char *key)
{
    for (int i = at + 1; i < nnodes; i++)
        if (nodes[i].parent == at && nodes[i].key && strcmp(nodes[i].key, key) == 0)
            return i;
    return -1;
}

static int item_of(int at)
{
    for (int i = at + 1; i < nnodes; i++)
        if (nodes[i].parent == at && !nodes[i].key)
            return i;
    return -1;
}

/* The smallest valid value of a field: an object with its required
 * fields (and the first of an exactly-one pair), an empty list, the
 * lowest number, the first enum value; idx tells list items apart. */
static json_t *minimal(int at, long idx)
{
    const struct node *n = &nodes[at];
    json_t *v = NULL;
    switch (n->type) {
    case T_OBJECT:
        v = json_object();
        for (int i = 0; i < n->nrequired; i++) {
            int c = child(at, n->required[i]);
            if (c < 0)
                fail_msg("%s: requires %s, which it does not define", n->path, n->required[i]);
            json_object_set_new(v, n->required[i], minimal(c, idx));
        }
        if (n->one_of[0][0] && !json_object_get(v, n->one_of[0]) &&
            !json_object_get(v, n->one_of[1]))
            json_object_set_new(v, n->one_of[0], minimal(child(at, n->one_of[0]), idx));
        break;
    case T_ARRAY:
        v = json_array();
        break;
    case T_STRING:
        if (json_object_get(n->schema, "enum"))
            v = json_deep_copy(json_array_get(json_object_get(n->schema, "enum"), 0));
        else
            v = string_of(n->kind, -1, idx, n->path);
        break;
    case T_INT_OR_STRING:
        v = string_of(n->kind, -1, idx, n->path);
        break;
    case T_INTEGER: {
        long long lo = n->has_min ? n->min : 1;
        while (is_excluded(n, lo))
            lo++;
        v = json_integer(lo);
        break;
    }
    case T_BOOLEAN:
        v = json_false();
        break;
    }
    assert_non_null(v);
    return v;
}

/* Choosing key of an exactly-one pair in obj (of node p) drops the other. */
static void choose(const struct node *p, json_t *obj, const char *key)
{
    for (int k = 0; k < 2 && p->one_of[0][0]; k++)
        if (strcmp(p->one_of[k], key) != 0)
            json_object_del(obj, p->one_of[k]);
}

/* A minimal valid Sandbox that holds the field at; *out is the field's
 * value in it (its first item for a list's items). */
static json_t *build(int at, json_t **out)
{
    int chain[32] = {0}, n = 0;
    for (int i = at; i > 0; i = nodes[i].parent) {
        assert_true(n < (int)N(chain));
        chain[n++] = i;
    }
    json_t *root = minimal(0, 0), *cur = root;
    while (n--) {
        const struct node *c = &nodes[chain[n]], *p = &nodes[c->parent];
        json_t *v;
        if (c->key) {
            choose(p, cur, c->key);
            v = json_object_get(cur, c->key);
            if (!v) {
                v = minimal(chain[n], 0);
                json_object_set_new(cur, c->key, v);
            }
        } else {
            if (json_array_size(cur) == 0)
                json_array_append_new(cur, minimal(chain[n], 0));
            v = json_array_get(cur, 0);
        }
        cur = v;
    }
    *out = cur;
    return root;
}

/* A minimal valid Sandbox with the field at set to v (stolen), or left
 * out when v is NULL. */
static json_t *with(int at, json_t *v)
{
    json_t *parent;
    json_t *root = build(nodes[at].parent, &parent);
    if (nodes[at].key)
        choose(&nodes[nodes[at].parent], parent, nodes[at].key);
    if (nodes[at].key && v)
        json_object_set_new(parent, nodes[at].key, v);
    else if (nodes[at].key)
        json_object_del(parent, nodes[at].key);
    else {
        json_array_clear(parent);
        if (v)
            json_array_append_new(parent, v);
    }
    return root;
}

/* ---- expectations: each takes the Sandbox and frees it --------------- */

static char what_buf[512];

__attribute__((format(printf, 1, 2))) static const char *what(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what_buf, sizeof(what_buf), fmt, ap);
    va_end(ap);
    return what_buf;
}

static bool accepted(json_t *doc, const char *why)
{
    struct validation_error err;
    int rc = sandbox_validate(doc, &err);
    json_decref(doc);
    count.probes++;
    if (rc != 0)
        problem("%s: the CRD allows it, the controller refuses it: %s: %s", why, err.field,
                err.message);
    return rc == 0;
}

/* Refused naming field, with a message holding says (when not NULL). */
static bool refused(json_t *doc, const char *field, const char *says, const char *why)
{
    struct validation_error err;
    int rc = sandbox_validate(doc, &err);
    json_decref(doc);
    count.probes++;
    if (rc == 0) {
        problem("%s: the CRD refuses it, the controller accepts it", why);
        return false;
    }
    if (strcmp(err.field, field) != 0 || (says && !strstr(err.message, says))) {
        problem("%s: the controller refuses it as %s: %s (want %s: ...%s...)", why, err.field,
                err.message, field, says ? says : "");
        return false;
    }
    return true;
}

static void no_problems(void)
{
    int n = problems;
    problems = 0;
    if (n)
        fail_msg("%d difference(s) between %s and the controller, listed above", n,
                 KAGE_SANDBOX_CRD);
}

/* ---- the probes ------------------------------------------------------ */

/* The controller requires nothing the CRD does not: the smallest value of
 * every field, in the smallest Sandbox around it, passes. */
static void the_smallest_valid_value_of_every_field_is_accepted(void **state)
{
    (void)state;
    for (int i = 0; i < nnodes; i++) {
        json_t *at;
        accepted(build(i, &at),
                 what("%s at its smallest", nodes[i].path[0] ? nodes[i].path : "the Sandbox"));
    }
    no_problems();
}

static void every_required_field_is_required(void **state)
{
    (void)state;
    char field[400], where[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        concrete(n->path, where, sizeof(where));
        for (int r = 0; r < n->nrequired; r++) {
            snprintf(field, sizeof(field), "%s%s%s", where, where[0] ? "." : "", n->required[r]);
            count.required++;
            refused(with(child(i, n->required[r]), NULL), field, "is required",
                    what("%s left out", field));
        }
        if (n->one_of[0][0]) {
            json_t *at, *doc = build(i, &at);
            json_object_del(at, n->one_of[0]);
            count.required++;
            refused(doc, where, NULL,
                    what("%s without %s or %s", where, n->one_of[0], n->one_of[1]));
            doc = build(i, &at);
            json_object_set_new(at, n->one_of[1], minimal(child(i, n->one_of[1]), 0));
            count.required++;
            refused(doc, where, NULL,
                    what("%s with both %s and %s", where, n->one_of[0], n->one_of[1]));
        }
        if (n->not_both[0][0]) {
            json_t *at, *doc = build(i, &at);
            json_object_set_new(at, n->not_both[0], minimal(child(i, n->not_both[0]), 0));
            json_object_set_new(at, n->not_both[1], minimal(child(i, n->not_both[1]), 0));
            snprintf(field, sizeof(field), "%s%s%s", where,
                     where[0] && n->not_both_at[0] ? "." : "", n->not_both_at);
            count.required++;
            refused(doc, field, NULL,
                    what("%s with both %s and %s", where, n->not_both[0], n->not_both[1]));
        }
    }
    no_problems();
}

/* A value of the wrong JSON type in any field the CRD defines is refused
 * naming that field: the controller checks every field there is. */
static void every_field_of_the_crd_is_checked_by_the_controller(void **state)
{
    (void)state;
    char field[200];
    for (int i = 1; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        json_t *wrong[2] = {NULL, NULL};
        switch (n->type) {
        case T_OBJECT:
        case T_ARRAY:
            wrong[0] = json_string("x");
            break;
        case T_STRING:
            wrong[0] = json_integer(1);
            break;
        case T_INTEGER:
            wrong[0] = json_string("1");
            wrong[1] = json_real(1.5);
            break;
        case T_BOOLEAN:
            wrong[0] = json_string("true");
            break;
        case T_INT_OR_STRING:
            wrong[0] = json_true();
            wrong[1] = json_real(1.5);
            /* Both forms the CRD allows pass. */
            accepted(with(i, json_integer(1)), what("%s as an integer", n->path));
            break;
        }
        concrete(n->path, field, sizeof(field));
        for (int k = 0; k < 2 && wrong[k]; k++) {
            char *text = json_dumps(wrong[k], JSON_ENCODE_ANY);
            count.types++;
            refused(with(i, wrong[k]), field, NULL, what("%s = %s", field, text));
            free(text);
        }
    }
    no_problems();
}

/* Each name the validator's sources spell, put where the CRD has no such
 * field, is ignored: the controller checks no field the CRD lacks. */
static void the_controller_checks_no_field_the_crd_lacks(void **state)
{
    (void)state;
    char field[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        if (n->type != T_OBJECT)
            continue;
        for (int w = 0; w < nwords; w++) {
            if (json_object_get(json_object_get(n->schema, "properties"), words[w]))
                continue;
            concrete(n->path, field, sizeof(field));
            count.lacks++;
            size_t len = strlen(field);
            snprintf(field + len, sizeof(field) - len, "%s%s", len ? "." : "", words[w]);
            len = strlen(field);
            json_t *const poisons[] = {json_integer(-1), json_string(""), json_true(),
                                       json_object(),    json_array(),    json_real(1.5)};
            bool checked = false;
            for (size_t k = 0; k < N(poisons); k++) {
                json_t *at, *doc = build(i, &at);
                json_object_set_new(at, words[w], poisons[k]);
                struct validation_error err;
                count.probes++;
                if (sandbox_validate(doc, &err) != 0 && strncmp(err.field, field, len) == 0 &&
                    (err.field[len] == '\0' || err.field[len] == '.' || err.field[len] == '['))
                    checked = true;
                json_decref(doc);
            }
            if (checked)
                problem("%s: the controller checks it, the CRD does not define it", field);
        }
    }
    no_problems();
}

static void string_lengths_are_the_crds(void **state)
{
    (void)state;
    char field[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        if (n->kind == K_NONE)
            continue;
        concrete(n->path, field, sizeof(field));
        if (n->max_len >= 0) {
            count.max_len++;
            accepted(with(i, string_of(n->kind, n->max_len, 0, n->path)),
                     what("%s of %lld characters (maxLength)", field, n->max_len));
            refused(
                with(i, string_of(n->kind, n->max_len + 1, 0, n->path)), field, "at most",
                what("%s of %lld characters (maxLength %lld)", field, n->max_len + 1, n->max_len));
        } else {
            accepted(with(i, string_of(n->kind, LONG_STRING, 0, n->path)),
                     what("%s of %d characters (no maxLength)", field, LONG_STRING));
        }
        if (n->min_len > 0) {
            count.min_len++;
            accepted(with(i, string_of(n->kind, n->min_len, 0, n->path)),
                     what("%s of %lld characters (minLength)", field, n->min_len));
            json_t *shorter =
                n->min_len == 1 ? json_string("") : string_of(n->kind, n->min_len - 1, 0, n->path);
            refused(
                with(i, shorter), field, NULL,
                what("%s of %lld characters (minLength %lld)", field, n->min_len - 1, n->min_len));
        }
    }
    no_problems();
}

/* A list of count items: distinct ones for a list keyed by a field, else
 * the same item again (so that no uniqueness the CRD lacks can hide). */
static json_t *items(int at, long count_, bool distinct)
{
    json_t *list = json_array();
    int item = item_of(at);
    for (long k = 0; k < count_; k++)
        json_array_append_new(list, minimal(item, distinct ? k : 0));
    return list;
}

static void list_lengths_and_keys_are_the_crds(void **state)
{
    (void)state;
    char field[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        if (n->type != T_ARRAY)
            continue;
        concrete(n->path, field, sizeof(field));
        const json_t *keys = json_object_get(n->schema, "x-kubernetes-list-map-keys");
        const char *type = json_string_value(json_object_get(n->schema, "x-kubernetes-list-type"));
        bool keyed = type && strcmp(type, "map") == 0;
        if (n->max_items >= 0) {
            count.max_items++;
            accepted(with(i, items(i, n->max_items, keyed)),
                     what("%s of %lld items (maxItems)", field, n->max_items));
            refused(
                with(i, items(i, n->max_items + 1, keyed)), field, "at most",
                what("%s of %lld items (maxItems %lld)", field, n->max_items + 1, n->max_items));
        } else {
            accepted(with(i, items(i, LONG_LIST, keyed)),
                     what("%s of %d items (no maxItems)", field, LONG_LIST));
        }
        for (size_t k = 0; k < json_array_size(keys); k++) {
            const json_t *key = json_array_get(keys, k);
            char dup[240];
            snprintf(dup, sizeof(dup), "%.*s[1].%s", (int)strlen(field), field,
                     json_string_value(key));
            count.list_keys++;
            refused(with(i, items(i, 2, false)), dup, NULL,
                    what("%s: two items with the same %s", field, json_string_value(key)));
        }
    }
    no_problems();
}

static void number_ranges_are_the_crds(void **state)
{
    (void)state;
    char field[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        if (n->type != T_INTEGER)
            continue;
        concrete(n->path, field, sizeof(field));
        const char *format = json_string_value(json_object_get(n->schema, "format"));
        bool i32 = format && strcmp(format, "int32") == 0;
        long long lo = n->has_min ? n->min : i32 ? INT32_MIN : INT64_MIN;
        long long hi = n->has_max ? n->max : i32 ? INT32_MAX : INT64_MAX;
        while (is_excluded(n, lo))
            lo++;
        while (is_excluded(n, hi))
            hi--;
        count.ranges++;
        accepted(with(i, json_integer(lo)), what("%s = %lld (lowest)", field, lo));
        accepted(with(i, json_integer(hi)), what("%s = %lld (highest)", field, hi));
        if (n->has_min)
            refused(with(i, json_integer(n->min - 1)), field, NULL,
                    what("%s = %lld (minimum %lld)", field, n->min - 1, n->min));
        if (n->has_max)
            refused(with(i, json_integer(n->max + 1)), field, NULL,
                    what("%s = %lld (maximum %lld)", field, n->max + 1, n->max));
        for (int x = 0; x < n->nexcluded; x++)
            refused(with(i, json_integer(n->excluded[x])), field, NULL,
                    what("%s = %lld (excluded by a rule)", field, n->excluded[x]));
    }
    no_problems();
}

static bool in_enum(const json_t *e, const char *s)
{
    for (size_t k = 0; k < json_array_size(e); k++)
        if (strcmp(json_string_value(json_array_get(e, k)), s) == 0)
            return true;
    return false;
}

/* Every enum value anywhere in the CRD, into out. */
static void all_enum_values(const json_t *j, json_t *out)
{
    if (json_is_object(j)) {
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            json_t *v = json_object_iter_value(it);
            if (strcmp(json_object_iter_key(it), "enum") == 0)
                json_array_extend(out, v);
            else
                all_enum_values(v, out);
        }
    } else if (json_is_array(j)) {
        for (size_t k = 0; k < json_array_size(j); k++)
            all_enum_values(json_array_get(j, k), out);
    }
}

/* Each value of an enum passes; anything else is refused: other enums'
 * values, each word the validator spells, and near misses. */
static void enums_are_the_crds(void **state)
{
    (void)state;
    char field[200], near[300];
    json_t *others = json_array();
    all_enum_values(crd, others);
    for (int i = 0; i < nnodes; i++) {
        const json_t *e = json_object_get(nodes[i].schema, "enum");
        if (!e)
            continue;
        concrete(nodes[i].path, field, sizeof(field));
        count.enums++;
        json_t *misses = json_array();
        json_array_append_new(misses, json_string(""));
        json_array_extend(misses, others);
        for (int w = 0; w < nwords; w++)
            json_array_append_new(misses, json_string(words[w]));
        for (size_t k = 0; k < json_array_size(e); k++) {
            const char *s = json_string_value(json_array_get(e, k));
            accepted(with(i, json_string(s)), what("%s = \"%s\" (in the enum)", field, s));
            snprintf(near, sizeof(near), "%s ", s);
            json_array_append_new(misses, json_string(near));
            for (size_t c = 0; c < strlen(near); c++)
                near[c] = (char)(near[c] >= 'A' && near[c] <= 'Z' ? near[c] - 'A' + 'a' : near[c]);
            near[strlen(near) - 1] = '\0';
            json_array_append_new(misses, json_string(near));
        }
        for (size_t k = 0; k < json_array_size(misses); k++) {
            const char *s = json_string_value(json_array_get(misses, k));
            if (!in_enum(e, s))
                refused(with(i, json_string(s)), field, NULL,
                        what("%s = \"%s\" (not in the enum)", field, s));
        }
        json_decref(misses);
    }
    json_decref(others);
    no_problems();
}

/* Every string field, tried with strings of every shape: the controller
 * accepts exactly what the CRD's rules accept (only refusals are checked
 * where the CRD has rules the test cannot read). */
static void string_rules_are_the_crds(void **state)
{
    (void)state;
    char field[200];
    for (int i = 0; i < nnodes; i++) {
        const struct node *n = &nodes[i];
        if (n->type != T_STRING || json_object_get(n->schema, "enum"))
            continue;
        concrete(n->path, field, sizeof(field));
        for (size_t c = 0; c < N(candidates); c++) {
            const char *s = candidates[c];
            long long len = (long long)cel_chars(s);
            bool ok =
                (n->max_len < 0 || len <= n->max_len) && (n->min_len < 0 || len >= n->min_len);
            for (int r = 0; r < n->nrules && ok; r++)
                ok = cel_holds(&n->rules[r], s);
            if (!ok)
                refused(with(i, json_string(s)), field, NULL, what("%s = \"%s\"", field, s));
            else if (n->unread == 0)
                accepted(with(i, json_string(s)), what("%s = \"%s\"", field, s));
        }
    }
    no_problems();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_smallest_valid_value_of_every_field_is_accepted),
        cmocka_unit_test(every_required_field_is_required),
        cmocka_unit_test(every_field_of_the_crd_is_checked_by_the_controller),
        cmocka_unit_test(the_controller_checks_no_field_the_crd_lacks),
        cmocka_unit_test(string_lengths_are_the_crds),
        cmocka_unit_test(list_lengths_and_keys_are_the_crds),
        cmocka_unit_test(number_ranges_are_the_crds),
        cmocka_unit_test(enums_are_the_crds),
        cmocka_unit_test(string_rules_are_the_crds),
    };
    return cmocka_run_group_tests_name("schema", tests, setup, teardown);
}
