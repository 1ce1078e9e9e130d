// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the controller's own Sandbox check: good sandboxes pass,
 * and each bad one is refused naming the first offending field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/validate.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Test JSON is written with single quotes, turned into double ones here.
 * NUL escapes (\u0000) are let through so that they can be refused. */
static json_t *parse(const char *text)
{
    char buf[4096];
    size_t n = strlen(text);
    assert_true(n < sizeof(buf));
    for (size_t i = 0; i <= n; i++)
        buf[i] = text[i] == '\'' ? '"' : text[i];
    json_error_t je;
    json_t *j = json_loads(buf, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (j == NULL)
        fail_msg("test JSON does not parse (%s): %s", je.text, buf);
    return j;
}

static void expect_valid(json_t *sandbox, const char *what)
{
    struct validation_error err;
    memset(&err, 'x', sizeof(err));
    int rc = sandbox_validate(sandbox, &err);
    if (rc != 0)
        fail_msg("%s: refused: %s: %s", what, err.field, err.message);
    assert_string_equal(err.field, "");
    assert_string_equal(err.message, "");
}

static void expect_invalid(json_t *sandbox, const char *field, const char *message,
                           const char *what)
{
    struct validation_error err;
    memset(&err, 'x', sizeof(err));
    int rc = sandbox_validate(sandbox, &err);
    assert_non_null(memchr(err.field, '\0', sizeof(err.field)));
    assert_non_null(memchr(err.message, '\0', sizeof(err.message)));
    if (rc != -1 || strcmp(err.field, field) != 0 || strstr(err.message, message) == NULL)
        fail_msg("%s\n  got  %d %s: %s\n  want -1 %s: ...%s...", what, rc, err.field, err.message,
                 field, message);
}

#define META                                             \
    "'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox'," \
    "'metadata':{'name':'agent-42','namespace':'team-a'}"
/* A Sandbox with a valid image and the given further spec fields. */
#define SPEC(fields) "{" META ",'spec':{'image':'busybox'" fields "}}"
#define ENV(item)    SPEC(",'env':[" item "]")
#define ALLOW(rule)  SPEC(",'egress':{'allow':[" rule "]}")
#define PORT(port)   ALLOW("{'cidr':'10.0.0.0/8','ports':[" port "]}")
#define RES(fields)  SPEC(",'resources':{" fields "}")

static const char full[] =
    "{" META ",'spec':{"
    "'sandboxClassName':'small','image':'python:3.12-slim',"
    "'command':['python3','-m','http.server'],'args':['--bind','0.0.0.0'],"
    "'workingDir':'/home/sandbox',"
    "'env':[{'name':'FOO','value':'bar'},"
    "{'name':'TOKEN','valueFrom':{'secretKeyRef':{'name':'creds','key':'token'}}},"
    "{'name':'MODE','valueFrom':{'configMapKeyRef':{'name':'app.config','key':'mode.yaml'}}}],"
    "'resources':{'cpu':'1','memory':'1Gi','ephemeralStorage':'2Gi'},"
    "'egress':{'dns':true,'allow':[{'cidr':'203.0.113.0/24','except':['203.0.113.7/32'],"
    "'ports':[{'port':443,'protocol':'TCP'},{'port':8000,'endPort':8100}]}]},"
    "'beforeScript':'pip install requests\\nexport X=1',"
    "'lifetime':{'ttlSeconds':3600,'shutdownPolicy':'Delete'},'paused':false,"
    "'securityContext':{'runAsUser':1000,'runAsGroup':1000}},"
    "'status':{'phase':'Running'}}";

static void good_sandboxes_pass(void **state)
{
    (void)state;
    static const struct {
        const char *what, *json;
    } cases[] = {
        {"minimal", SPEC("")},
        {"full", full},
        {"IPv6 egress",
         ALLOW("{'cidr':'2001:db8::/32','except':['2001:db8:1::/48','2001:db8:2::1/128'],"
               "'ports':[{'port':53,'protocol':'UDP'},{'port':9000,'endPort':9000,'protocol':"
               "'SCTP'}]},{'cidr':'::/0'}")},
        {"host bits in cidr and except", ALLOW("{'cidr':'10.1.2.3/8','except':['10.1.2.3/32']}")},
        {"whole IPv4 space", ALLOW("{'cidr':'0.0.0.0/0','except':['169.254.0.0/16']}")},
        {"nulls count as absent",
         SPEC(",'command':null,'env':null,'egress':{'dns':null,'allow':null},'lifetime':null")},
        {"unknown fields are ignored",
         SPEC(",'gpu':1,'resources':{'nvidia.com/gpu':'x'},'egress':{'deny':[]}")},
        {"integer quantities", RES("'cpu':2,'memory':1073741824,'ephemeralStorage':1")},
        {"smallest quantities", RES("'cpu':'1n','memory':'1','ephemeralStorage':'1e0'")},
        {"a quantity of 64 characters",
         RES("'memory':'1.00000000000000000000000000000000000000000000000000000000000000'")},
        {"CIDRs of 43 characters",
         ALLOW(
             "{'cidr':'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'},{'cidr':'::/0','except':['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128']}")},
        {"empty lists", SPEC(",'command':[],'args':[],'env':[],'egress':{'allow':[]}")},
        {"env without a value", ENV("{'name':'_EMPTY'},{'name':'x1','value':''}")},
        {"args may hold anything but NUL", SPEC(",'args':['', ' two words ', 'tab\\there\\n']")},
        {"unicode env value", ENV("{'name':'GREETING','value':'gr\\u00fc\\u00df dich \\u2603'}")},
        {"retained forever-ish",
         SPEC(",'lifetime':{'ttlSeconds':31536000,'shutdownPolicy':'Retain'},'paused':true")},
        {"highest ids", SPEC(",'securityContext':{'runAsUser':2147483647,'runAsGroup':1}")},
        {"class name with dots", SPEC(",'sandboxClassName':'gpu.large-2'")},
        {"each image pull policy", SPEC(",'imagePullPolicy':'Always'")},
        {"image pull policy Never", SPEC(",'imagePullPolicy':'Never'")},
        {"image pull policy IfNotPresent", SPEC(",'imagePullPolicy':'IfNotPresent'")},
        {"one-character name", "{'metadata':{'name':'a'},'spec':{'image':'a'}}"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        json_t *j = parse(cases[i].json);
        expect_valid(j, cases[i].what);
        json_decref(j);
    }
}

static const struct bad {
    const char *json, *field, *message;
} bad_cases[] = {
    /* The object and its metadata. */
    {"[]", "", "the Sandbox must be a JSON object"},
    {"{'spec':{'image':'x'}}", "metadata", "is required"},
    {"{'metadata':[],'spec':{'image':'x'}}", "metadata", "must be an object"},
    {"{'metadata':{},'spec':{'image':'x'}}", "metadata.name", "is required"},
    {"{'metadata':{'name':42},'spec':{'image':'x'}}", "metadata.name", "must be a string"},
    {"{'metadata':{'name':'Agent_42'},'spec':{'image':'x'}}", "metadata.name",
     "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter "
     "or digit (e.g. \"agent-42\"), not \"Agent_42\""},
    {"{'metadata':{'name':'-agent'},'spec':{'image':'x'}}", "metadata.name", "must be a DNS label"},
    {"{'metadata':{'name':'agent-'},'spec':{'image':'x'}}", "metadata.name", "must be a DNS label"},
    {"{'metadata':{'name':'a.b'},'spec':{'image':'x'}}", "metadata.name", "not \"a.b\""},
    {"{'metadata':{'name':''},'spec':{'image':'x'}}", "metadata.name", "not \"\""},
    {"{'metadata':{'name':'agent\\u0000x'},'spec':{'image':'x'}}", "metadata.name",
     "must not contain NUL characters"},
    {"{'metadata':{'name':'agent\\n'},'spec':{'image':'x'}}", "metadata.name",
     "must not contain control characters (found \\x0a)"},
    /* The metadata is checked before the spec. */
    {"{'metadata':{'name':'A'},'spec':{}}", "metadata.name", "must be a DNS label"},
    {"{" META "}", "spec", "is required"},
    {"{" META ",'spec':null}", "spec", "is required"},
    {"{" META ",'spec':[]}", "spec", "must be an object"},

    /* spec.image and spec.sandboxClassName */
    {"{" META ",'spec':{}}", "spec.image",
     "is required: the container image to run, such as python:3.12-slim"},
    {"{" META ",'spec':{'image':null}}", "spec.image", "is required"},
    {"{" META ",'spec':{'image':''}}", "spec.image", "must not be empty"},
    {"{" META ",'spec':{'image':7}}", "spec.image", "must be a string"},
    {"{" META ",'spec':{'image':'python 3'}}", "spec.image", "must not contain spaces"},
    {"{" META ",'spec':{'image':'python\\t3'}}", "spec.image", "must not contain control"},
    {"{" META ",'spec':{'image':'python\\u007f'}}", "spec.image", "(found \\x7f)"},
    {"{" META ",'spec':{'image':'caf\\u00e9:1'}}", "spec.image",
     "must be printable ASCII (an image reference), not \"caf\xc3\xa9:1\""},
    {"{" META ",'spec':{'image':'a\\u00a0b'}}", "spec.image", "must be printable ASCII"},
    {SPEC(",'sandboxClassName':'Small'"), "spec.sandboxClassName",
     "must be a DNS subdomain: lowercase letters, digits, '-' and '.', each part starting and "
     "ending with a letter or digit (e.g. \"small\"), not \"Small\""},
    {SPEC(",'sandboxClassName':'a..b'"), "spec.sandboxClassName", "must be a DNS subdomain"},
    {SPEC(",'sandboxClassName':'small.'"), "spec.sandboxClassName", "must be a DNS subdomain"},
    {SPEC(",'sandboxClassName':''"), "spec.sandboxClassName",
     "must not be empty: name a SandboxClass, or leave the field out for the default class"},
    /* The class name is checked before the image. */
    {"{" META ",'spec':{'sandboxClassName':true}}", "spec.sandboxClassName", "must be a string"},

    /* imagePullPolicy */
    {SPEC(",'imagePullPolicy':'sometimes'"), "spec.imagePullPolicy",
     "must be Always, IfNotPresent or Never, not \"sometimes\""},
    {SPEC(",'imagePullPolicy':true"), "spec.imagePullPolicy", "must be a string"},

    /* command, args, workingDir */
    {SPEC(",'command':'python3 -m http.server'"), "spec.command", "must be an array"},
    {SPEC(",'command':['python3',1]"), "spec.command[1]", "must be a string"},
    {SPEC(",'args':[null]"), "spec.args[0]", "must be a string"},
    {SPEC(",'args':['a\\u0000b']"), "spec.args[0]", "must not contain NUL characters"},
    {SPEC(",'workingDir':'tmp'"), "spec.workingDir",
     "must be an absolute path such as /home/sandbox, not \"tmp\""},
    {SPEC(",'workingDir':''"), "spec.workingDir", "must be an absolute path"},
    {SPEC(",'workingDir':'/a\\nb'"), "spec.workingDir", "must not contain control characters"},

    /* env */
    {SPEC(",'env':{'FOO':'bar'}"), "spec.env", "must be an array"},
    {ENV("'FOO=bar'"), "spec.env[0]", "must be an object"},
    {ENV("{'value':'x'}"), "spec.env[0].name", "is required"},
    {ENV("{'name':'A'},{'name':'1FOO'}"), "spec.env[1].name",
     "must be letters, digits and '_', not starting with a digit (e.g. \"API_TOKEN\"), not "
     "\"1FOO\""},
    {ENV("{'name':'MY-VAR'}"), "spec.env[0].name", "not \"MY-VAR\""},
    {ENV("{'name':''}"), "spec.env[0].name", "must be letters, digits and '_'"},
    {ENV("{'name':'A B'}"), "spec.env[0].name", "must not contain spaces"},
    {ENV("{'name':'A'},{'name':'B'},{'name':'A'}"), "spec.env[2].name",
     "must be unique: \"A\" is also spec.env[0].name"},
    {ENV("{'name':'A','value':1}"), "spec.env[0].value", "must be a string"},
    {ENV("{'name':'A','value':'x','valueFrom':{'secretKeyRef':{'name':'s','key':'k'}}}"),
     "spec.env[0].valueFrom", "must not be set together with value: set one or the other"},
    {ENV("{'name':'A','value':'','valueFrom':{'configMapKeyRef':{'name':'c','key':'k'}}}"),
     "spec.env[0].valueFrom", "must not be set together with value"},
    {ENV("{'name':'A','valueFrom':'creds'}"), "spec.env[0].valueFrom", "must be an object"},
    {ENV("{'name':'A','valueFrom':{}}"), "spec.env[0].valueFrom",
     "must set exactly one of secretKeyRef or configMapKeyRef"},
    {ENV("{'name':'A','valueFrom':{'fieldRef':{'fieldPath':'metadata.name'}}}"),
     "spec.env[0].valueFrom", "must set exactly one of secretKeyRef or configMapKeyRef"},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'k'},"
         "'configMapKeyRef':{'name':'c','key':'k'}}}"),
     "spec.env[0].valueFrom", "must set exactly one"},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':'creds'}}"), "spec.env[0].valueFrom.secretKeyRef",
     "must be an object"},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'key':'k'}}}"),
     "spec.env[0].valueFrom.secretKeyRef.name", "is required"},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'name':'Creds','key':'k'}}}"),
     "spec.env[0].valueFrom.secretKeyRef.name", "must be a DNS subdomain"},
    {ENV("{'name':'A','valueFrom':{'configMapKeyRef':{'name':'cfg'}}}"),
     "spec.env[0].valueFrom.configMapKeyRef.key", "is required"},
    {ENV("{'name':'A','valueFrom':{'configMapKeyRef':{'name':'cfg','key':'a/b'}}}"),
     "spec.env[0].valueFrom.configMapKeyRef.key",
     "must be a key of letters, digits, '-', '_' and '.', not \".\" or starting with \"..\" "
     "(e.g. \"token\"), not \"a/b\""},
    {ENV("{'name':'A','valueFrom':{'configMapKeyRef':{'name':'cfg','key':'..x'}}}"),
     "spec.env[0].valueFrom.configMapKeyRef.key", "not \"..x\""},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'.'}}}"),
     "spec.env[0].valueFrom.secretKeyRef.key", "must be a key"},
    {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':''}}}"),
     "spec.env[0].valueFrom.secretKeyRef.key", "must be a key"},

    /* resources */
    {SPEC(",'resources':['cpu']"), "spec.resources", "must be an object"},
    {RES("'cpu':'0'"), "spec.resources.cpu", "must be greater than zero, not \"0\""},
    {RES("'cpu':'-1'"), "spec.resources.cpu", "must be greater than zero"},
    {RES("'cpu':0"), "spec.resources.cpu", "must be greater than zero, not 0"},
    {RES("'cpu':-2"), "spec.resources.cpu", "must be greater than zero, not -2"},
    {RES("'cpu':'lots'"), "spec.resources.cpu",
     "must be a quantity such as \"500m\", not \"lots\""},
    {RES("'cpu':' 1'"), "spec.resources.cpu", "must be a quantity"},
    {RES("'cpu':1.5"), "spec.resources.cpu",
     "must be a quantity string such as \"500m\" or an integer"},
    {RES("'cpu':'1','memory':'1Gb'"), "spec.resources.memory",
     "must be a quantity such as \"512Mi\", not \"1Gb\""},
    {RES("'memory':'500m'"), "spec.resources.memory",
     "must be at least 1 byte (such as \"512Mi\"), not \"500m\""},
    {RES("'memory':'10Ei'"), "spec.resources.memory", "is too large: \"10Ei\""},
    {RES("'memory':9223372036854775807"), "spec.resources.memory", "is too large"},
    {RES("'cpu':'1.000000000000000000000000000000000000000000000000000000000000000'"),
     "spec.resources.cpu", "must be at most 64 characters long, not 65"},
    {RES("'ephemeralStorage':true"), "spec.resources.ephemeralStorage",
     "must be a quantity string such as \"2Gi\" or an integer"},
    {RES("'ephemeralStorage':'1\\u0000Gi'"), "spec.resources.ephemeralStorage",
     "must not contain NUL characters"},

    /* egress */
    {SPEC(",'egress':[]"), "spec.egress", "must be an object"},
    {SPEC(",'egress':{'dns':'yes'}"), "spec.egress.dns", "must be true or false"},
    {SPEC(",'egress':{'allow':{}}"), "spec.egress.allow", "must be an array"},
    {ALLOW("'10.0.0.0/8'"), "spec.egress.allow[0]", "must be an object"},
    {ALLOW("{}"), "spec.egress.allow[0].cidr",
     "is required: the block to allow, such as 203.0.113.0/24"},
    {ALLOW("{'cidr':'300.1.2.3/8'}"), "spec.egress.allow[0].cidr",
     "must be a valid CIDR such as 203.0.113.0/24, not \"300.1.2.3/8\""},
    {ALLOW("{'cidr':'10.0.0.0'}"), "spec.egress.allow[0].cidr", "must be a valid CIDR"},
    {ALLOW("{'cidr':'010.0.0.0/8'}"), "spec.egress.allow[0].cidr", "must be a valid CIDR"},
    {ALLOW("{'cidr':'10.0.0.0/8\\u0000'}"), "spec.egress.allow[0].cidr", "must not contain NUL"},
    {ALLOW("{'cidr':'0000:0000:0000:00:0:ffff:255.255.255.255/128'}"), "spec.egress.allow[0].cidr",
     "must be at most 43 characters long, not 44"},
    {ALLOW("{'cidr':'::/0','except':['0000:0000:0000:00:0:ffff:255.255.255.255/128']}"),
     "spec.egress.allow[0].except[0]", "must be at most 43 characters long, not 44"},
    {ALLOW("{'cidr':'::ffff:169.254.169.254/128'}"), "spec.egress.allow[0].cidr",
     "must not be an IPv4-mapped IPv6 block (::ffff:0:0/96), not \"::ffff:169.254.169.254/128\": "
     "write the IPv4 block itself"},
    {ALLOW("{'cidr':'::/0','except':['::ffff:a9fe:0/112']}"), "spec.egress.allow[0].except[0]",
     "must not be an IPv4-mapped IPv6 block"},
    {ALLOW("{'cidr':24}"), "spec.egress.allow[0].cidr", "must be a string"},
    {ALLOW("{'cidr':'10.0.0.0/8'},{'cidr':'10.0.0.0/33'}"), "spec.egress.allow[1].cidr",
     "not \"10.0.0.0/33\""},
    {ALLOW("{'cidr':'10.0.0.0/8','except':'10.1.0.0/16'}"), "spec.egress.allow[0].except",
     "must be an array"},
    {ALLOW("{'cidr':'10.0.0.0/8','except':['10.0.0.0/8']}"), "spec.egress.allow[0].except[0]",
     "must be a smaller block inside the cidr 10.0.0.0/8, not \"10.0.0.0/8\""},
    {ALLOW("{'cidr':'10.1.2.3/8','except':['11.0.0.0/16']}"), "spec.egress.allow[0].except[0]",
     "must be a smaller block inside the cidr 10.0.0.0/8, not \"11.0.0.0/16\""},
    {ALLOW("{'cidr':'10.0.0.0/16','except':['10.0.0.0/8']}"), "spec.egress.allow[0].except[0]",
     "must be a smaller block inside"},
    {ALLOW("{'cidr':'10.0.0.0/8','except':['2001:db8::/64']}"), "spec.egress.allow[0].except[0]",
     "must be an IPv4 block like the cidr 10.0.0.0/8, not \"2001:db8::/64\""},
    {ALLOW("{'cidr':'2001:db8::/32','except':['10.0.0.0/8']}"), "spec.egress.allow[0].except[0]",
     "must be an IPv6 block like the cidr 2001:db8::/32"},
    {ALLOW("{'cidr':'10.0.0.0/8','except':['10.1.0.0/16','nope']}"),
     "spec.egress.allow[0].except[1]", "must be a valid CIDR such as 203.0.113.0/24, not \"nope\""},
    {PORT("443"), "spec.egress.allow[0].ports[0]", "must be an object"},
    {ALLOW("{'cidr':'10.0.0.0/8','ports':{'port':443}}"), "spec.egress.allow[0].ports",
     "must be an array"},
    {PORT("{'protocol':'TCP'}"), "spec.egress.allow[0].ports[0].port", "is required"},
    {PORT("{'port':0}"), "spec.egress.allow[0].ports[0].port", "must be from 1 to 65535, not 0"},
    {PORT("{'port':443},{'port':70000}"), "spec.egress.allow[0].ports[1].port",
     "must be from 1 to 65535, not 70000"},
    {PORT("{'port':'443'}"), "spec.egress.allow[0].ports[0].port", "must be an integer"},
    {PORT("{'port':443.0}"), "spec.egress.allow[0].ports[0].port", "must be an integer"},
    {PORT("{'port':8000,'endPort':7000}"), "spec.egress.allow[0].ports[0].endPort",
     "must be at least port (8000), not 7000"},
    {PORT("{'port':8000,'endPort':65536}"), "spec.egress.allow[0].ports[0].endPort",
     "must be from 1 to 65535"},
    {PORT("{'port':53,'protocol':'tcp'}"), "spec.egress.allow[0].ports[0].protocol",
     "must be TCP, UDP or SCTP, not \"tcp\""},
    {PORT("{'port':53,'protocol':'TCP\\u0000'}"), "spec.egress.allow[0].ports[0].protocol",
     "must be TCP, UDP or SCTP, not \"TCP\\x00\""},
    {PORT("{'port':53,'protocol':6}"), "spec.egress.allow[0].ports[0].protocol",
     "must be a string"},

    /* beforeScript, lifetime, paused, securityContext */
    {SPEC(",'beforeScript':['pip','install']"), "spec.beforeScript", "must be a string"},
    {SPEC(",'lifetime':3600"), "spec.lifetime", "must be an object"},
    {SPEC(",'lifetime':{'ttlSeconds':0}"), "spec.lifetime.ttlSeconds",
     "must be from 1 to 31536000 seconds (one year), not 0"},
    {SPEC(",'lifetime':{'ttlSeconds':31536001}"), "spec.lifetime.ttlSeconds", "not 31536001"},
    {SPEC(",'lifetime':{'ttlSeconds':'1h'}"), "spec.lifetime.ttlSeconds", "must be an integer"},
    {SPEC(",'lifetime':{'shutdownPolicy':'delete'}"), "spec.lifetime.shutdownPolicy",
     "must be Delete or Retain, not \"delete\""},
    {SPEC(",'lifetime':{'shutdownPolicy':false}"), "spec.lifetime.shutdownPolicy",
     "must be a string"},
    {SPEC(",'paused':'false'"), "spec.paused", "must be true or false"},
    {SPEC(",'paused':0"), "spec.paused", "must be true or false"},
    {SPEC(",'securityContext':'root'"), "spec.securityContext", "must be an object"},
    {SPEC(",'securityContext':{'runAsUser':0}"), "spec.securityContext.runAsUser",
     "must be from 1 to 2147483647 (sandboxes never run as root), not 0"},
    {SPEC(",'securityContext':{'runAsUser':-1}"), "spec.securityContext.runAsUser", "not -1"},
    {SPEC(",'securityContext':{'runAsUser':1000,'runAsGroup':2147483648}"),
     "spec.securityContext.runAsGroup", "not 2147483648"},
    {SPEC(",'securityContext':{'runAsGroup':0}"), "spec.securityContext.runAsGroup",
     "never run as root"},

    /* With several problems, the first in the documented order wins. */
    {SPEC(",'securityContext':{'runAsUser':0},'command':[1],'env':[{}]"), "spec.command[0]",
     "must be a string"},
    {SPEC(",'paused':1,'egress':{'dns':1,'allow':[{}]}"), "spec.egress.dns",
     "must be true or false"},
};

static void bad_sandboxes_name_the_first_offending_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(bad_cases); i++) {
        json_t *j = parse(bad_cases[i].json);
        expect_invalid(j, bad_cases[i].field, bad_cases[i].message, bad_cases[i].json);
        json_decref(j);
    }
}

static void a_null_sandbox_is_refused(void **state)
{
    (void)state;
    expect_invalid(NULL, "", "the Sandbox must be a JSON object", "NULL");
}

/* Sets the value at a path such as "spec.env[1].valueFrom" (steals v); only
 * the last member may be new. */
static void set_path(json_t *root, const char *path, json_t *v)
{
    json_t *parent = NULL, *cur = root;
    char key[64] = "";
    long idx = -1;
    const char *p = path;
    while (*p) {
        parent = cur;
        if (*p == '[') {
            char *end;
            idx = strtol(p + 1, &end, 10);
            p = end + 1;
            cur = json_array_get(parent, (size_t)idx);
        } else {
            if (*p == '.')
                p++;
            size_t n = strcspn(p, ".[");
            assert_true(n < sizeof(key));
            memcpy(key, p, n);
            key[n] = '\0';
            p += n;
            idx = -1;
            cur = json_object_get(parent, key);
        }
        if (cur == NULL && (*p != '\0' || idx >= 0))
            fail_msg("no %s in the test object", path);
    }
    if (idx >= 0)
        assert_int_equal(json_array_set_new(parent, (size_t)idx, v), 0);
    else
        assert_int_equal(json_object_set_new(parent, key, v), 0);
}

/* Every field of the full example, for sweeps. */
static const char *const full_paths[] = {
    "metadata",
    "metadata.name",
    "spec",
    "spec.sandboxClassName",
    "spec.image",
    "spec.command",
    "spec.command[2]",
    "spec.args",
    "spec.args[0]",
    "spec.workingDir",
    "spec.env",
    "spec.env[0]",
    "spec.env[0].name",
    "spec.env[0].value",
    "spec.env[1].valueFrom",
    "spec.env[1].valueFrom.secretKeyRef",
    "spec.env[1].valueFrom.secretKeyRef.name",
    "spec.env[1].valueFrom.secretKeyRef.key",
    "spec.env[2].valueFrom.configMapKeyRef",
    "spec.env[2].valueFrom.configMapKeyRef.name",
    "spec.env[2].valueFrom.configMapKeyRef.key",
    "spec.resources",
    "spec.resources.cpu",
    "spec.resources.memory",
    "spec.resources.ephemeralStorage",
    "spec.egress",
    "spec.egress.dns",
    "spec.egress.allow",
    "spec.egress.allow[0]",
    "spec.egress.allow[0].cidr",
    "spec.egress.allow[0].except",
    "spec.egress.allow[0].except[0]",
    "spec.egress.allow[0].ports",
    "spec.egress.allow[0].ports[1]",
    "spec.egress.allow[0].ports[1].port",
    "spec.egress.allow[0].ports[1].endPort",
    "spec.egress.allow[0].ports[0].protocol",
    "spec.beforeScript",
    "spec.lifetime",
    "spec.lifetime.ttlSeconds",
    "spec.lifetime.shutdownPolicy",
    "spec.paused",
    "spec.securityContext",
    "spec.securityContext.runAsUser",
    "spec.securityContext.runAsGroup",
};

static void every_field_of_the_wrong_json_type_is_named(void **state)
{
    (void)state;
    /* No field takes a fractional number, so 1.5 is wrong everywhere. */
    for (size_t i = 0; i < N(full_paths); i++) {
        json_t *j = parse(full);
        set_path(j, full_paths[i], json_real(1.5));
        expect_invalid(j, full_paths[i], "must be", full_paths[i]);
        json_decref(j);
    }
}

static void any_value_anywhere_gets_an_answer(void **state)
{
    (void)state;
    /* Whatever lands in a field, the check answers without crashing, and a
     * refusal always says where and why. */
    const char *const values[] = {
        "null", "true", "false", "0",    "-1",     "1e300",     "''",
        "'x'",  "[]",   "{}",    "[{}]", "[null]", "'\\u0000'", "-9223372036854775808"};
    for (size_t i = 0; i < N(full_paths); i++) {
        for (size_t k = 0; k < N(values); k++) {
            json_t *j = parse(full);
            set_path(j, full_paths[i], parse(values[k]));
            struct validation_error err;
            int rc = sandbox_validate(j, &err);
            assert_true(rc == 0 || rc == -1);
            if (rc == -1) {
                assert_true(err.field[0] != '\0');
                assert_true(err.message[0] != '\0');
            }
            json_decref(j);
        }
    }
}

/* Parses base and sets the array at path to count items: item with its '#'
 * replaced by 1, 2, ... count. */
static json_t *with_items(const char *base, const char *path, const char *item, size_t count)
{
    json_t *j = parse(base), *arr = json_array();
    assert_non_null(arr);
    for (size_t i = 1; i <= count; i++) {
        char text[256];
        size_t hash = strcspn(item, "#");
        assert_true(item[hash] == '#');
        snprintf(text, sizeof(text), "%.*s%zu%s", (int)hash, item, i, item + hash + 1);
        assert_int_equal(json_array_append_new(arr, parse(text)), 0);
    }
    set_path(j, path, arr);
    return j;
}

/* Parses base and sets the string at path to count copies of unit, then tail. */
static json_t *with_string(const char *base, const char *path, const char *unit, size_t count,
                           const char *tail)
{
    json_t *j = parse(base);
    size_t ulen = strlen(unit), tlen = strlen(tail);
    char *s = malloc(ulen * count + tlen + 1);
    assert_non_null(s);
    for (size_t i = 0; i < count; i++)
        memcpy(s + i * ulen, unit, ulen);
    memcpy(s + ulen * count, tail, tlen + 1);
    set_path(j, path, json_string(s));
    free(s);
    return j;
}

static void limits_are_inclusive(void **state)
{
    (void)state;
    static const struct {
        const char *base, *path, *item;
        size_t max;
        const char *message;
    } lists[] = {
        {SPEC(",'command':[]"), "spec.command", "'c#'", 64, "must have at most 64 items, not 65"},
        {SPEC(",'args':[]"), "spec.args", "'a#'", 64, "must have at most 64 items, not 65"},
        {SPEC(",'env':[]"), "spec.env", "{'name':'V#'}", 128,
         "must have at most 128 items, not 129"},
        {SPEC(",'egress':{'allow':[]}"), "spec.egress.allow", "{'cidr':'10.#.0.0/16'}", 64,
         "must have at most 64 items, not 65"},
        {ALLOW("{'cidr':'10.0.0.0/8','except':[]}"), "spec.egress.allow[0].except", "'10.#.0.0/16'",
         32, "must have at most 32 items, not 33"},
        {ALLOW("{'cidr':'10.0.0.0/8','ports':[]}"), "spec.egress.allow[0].ports", "{'port':#}", 32,
         "must have at most 32 items, not 33"},
    };
    for (size_t i = 0; i < N(lists); i++) {
        json_t *j = with_items(lists[i].base, lists[i].path, lists[i].item, lists[i].max);
        expect_valid(j, lists[i].path);
        json_decref(j);
        j = with_items(lists[i].base, lists[i].path, lists[i].item, lists[i].max + 1);
        expect_invalid(j, lists[i].path, lists[i].message, lists[i].path);
        json_decref(j);
    }

    static const struct {
        const char *base, *path, *unit;
        size_t max;
        const char *tail, *message;
    } strings[] = {
        {SPEC(""), "metadata.name", "a", 63, "", "must be at most 63 characters long, not 64"},
        {SPEC(",'sandboxClassName':'x'"), "spec.sandboxClassName", "a.", 126, "a",
         "must be at most 253 characters long, not 255"},
        {SPEC(""), "spec.image", "i", 1024, "", "must be at most 1024 characters long, not 1025"},
        {SPEC(",'args':['x']"), "spec.args[0]", "x", 4096, "", "not 4097"},
        {SPEC(",'workingDir':'/'"), "spec.workingDir", "/", 4096, "", "not 4097"},
        {ENV("{'name':'A'}"), "spec.env[0].name", "N", 256, "", "not 257"},
        /* Characters, not bytes: each of these is two bytes in UTF-8. */
        {ENV("{'name':'A','value':''}"), "spec.env[0].value", "\xc3\xa9", 32768, "",
         "must be at most 32768 characters long, not 32769"},
        {ENV("{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'k'}}}"),
         "spec.env[0].valueFrom.secretKeyRef.key", "k", 253, "", "not 254"},
        {SPEC(",'beforeScript':''"), "spec.beforeScript", "echo\n", 16384 / 5, "echo",
         "must be at most 16384 characters long, not 16389"},
    };
    for (size_t i = 0; i < N(strings); i++) {
        json_t *j = with_string(strings[i].base, strings[i].path, strings[i].unit, strings[i].max,
                                strings[i].tail);
        expect_valid(j, strings[i].path);
        json_decref(j);
        j = with_string(strings[i].base, strings[i].path, strings[i].unit, strings[i].max + 1,
                        strings[i].tail);
        expect_invalid(j, strings[i].path, strings[i].message, strings[i].path);
        json_decref(j);
    }
}

static void long_bad_values_are_cut_in_messages(void **state)
{
    (void)state;
    /* 60 three-byte characters: the quote stops after 16 of them (48 bytes)
     * and never splits one. */
    json_t *j = with_string(SPEC(""), "spec.workingDir", "\xe2\x98\x83", 60, "");
    struct validation_error err;
    assert_int_equal(sandbox_validate(j, &err), -1);
    assert_string_equal(err.field, "spec.workingDir");
    assert_string_equal(err.message, "must be an absolute path such as /home/sandbox, not \""
                                     "\u2603\u2603\u2603\u2603\u2603\u2603\u2603\u2603"
                                     "\u2603\u2603\u2603\u2603\u2603\u2603\u2603\u2603\"...");
    json_decref(j);

    /* Cut inside a character: 47 ASCII bytes, then a snowman across 48. */
    j = with_string(SPEC(""), "spec.workingDir", "a", 47, "\xe2\x98\x83 and more");
    assert_int_equal(sandbox_validate(j, &err), -1);
    assert_string_equal(err.message, "must be an absolute path such as /home/sandbox, not "
                                     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"...");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_sandboxes_pass),
        cmocka_unit_test(bad_sandboxes_name_the_first_offending_field),
        cmocka_unit_test(a_null_sandbox_is_refused),
        cmocka_unit_test(every_field_of_the_wrong_json_type_is_named),
        cmocka_unit_test(any_value_anywhere_gets_an_answer),
        cmocka_unit_test(limits_are_inclusive),
        cmocka_unit_test(long_bad_values_are_cut_in_messages),
    };
    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
