// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the objects a Sandbox becomes: the namespace baseline
 * policy, the sandbox's own NetworkPolicy and its pod, each compared whole
 * against the object it must be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/observed.h"
#include "reconcile/render.h"
#include "reconcile/validate.h"

#include "alloc_fail.h"
#include "json_expect.h"

static void expect_json_text(json_t *got, const char *want, const char *what)
{
    expect_json(got, parse(want), what);
}

#define UID  "7d2f4a1e-9c3b-4f6d-8e21-5a0b9c8d7e6f"
#define META "'metadata':{'name':'agent-42','namespace':'team-a','uid':'" UID "','generation':3}"
/* A Sandbox with the given spec fields. */
#define SANDBOX(fields) \
    "{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox'," META ",'spec':{" fields "}}"
#define IMAGE "'image':'python:3.12-slim'"

/* A Sandbox from text; it must pass validation, as render requires. */
static json_t *sandbox(const char *text)
{
    json_t *s = parse(text);
    struct validation_error err;
    if (sandbox_validate(s, &err) != 0)
        fail_msg("test sandbox is invalid: %s: %s", err.field, err.message);
    return s;
}

static const struct render_opts kata = {.runtime_class = "kata-fc"};

#define LABELS "{'kage.dev/sandbox':'agent-42','app.kubernetes.io/managed-by':'kage'}"
#define OWNERS                                                                               \
    "[{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','name':'agent-42','uid':'" UID "'," \
    "'controller':true}]"
#define POLICY_META                                                           \
    "'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{" \
    "'name':'agent-42','namespace':'team-a','labels':" LABELS ",'ownerReferences':" OWNERS "}"
#define POLICY_SPEC                                                  \
    "'podSelector':{'matchLabels':{'kage.dev/sandbox':'agent-42'}}," \
    "'policyTypes':['Ingress','Egress']"
#define DNS_RULE                                                                                 \
    "{'to':[{'namespaceSelector':{'matchLabels':{'kubernetes.io/metadata.name':'kube-system'}}," \
    "'podSelector':{'matchLabels':{'k8s-app':'kube-dns'}}}],"                                    \
    "'ports':[{'protocol':'UDP','port':53},{'protocol':'TCP','port':53}]}"

static json_t *policy_of(const char *sandbox_text)
{
    json_t *s = sandbox(sandbox_text);
    json_t *p = render_policy(s);
    json_decref(s);
    assert_non_null(p);
    return p;
}

static void the_baseline_selects_every_sandbox_pod_and_allows_nothing(void **state)
{
    (void)state;
    json_t *b = render_baseline("team-a");
    expect_json_text(b,
                     "{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy',"
                     "'metadata':{'name':'kage-baseline','namespace':'team-a',"
                     "'labels':{'app.kubernetes.io/managed-by':'kage','kage.dev/baseline':'true'}},"
                     "'spec':{'podSelector':{'matchExpressions':"
                     "[{'key':'kage.dev/sandbox','operator':'Exists'}]},"
                     "'policyTypes':['Ingress','Egress']}}",
                     "baseline");
}

static void a_sandbox_without_egress_gets_only_the_dns_rule(void **state)
{
    (void)state;
    const char *want = "{" POLICY_META ",'spec':{" POLICY_SPEC ",'egress':[" DNS_RULE "]}}";
    json_t *p = policy_of(SANDBOX(IMAGE));
    expect_json_text(p, want, "no egress");

    /* dns: true and an empty allow list say the same. */
    p = policy_of(SANDBOX(IMAGE ",'egress':{'dns':true,'allow':[]}"));
    expect_json_text(p, want, "dns true, allow []");
}

static void a_sandbox_without_dns_or_allow_entries_gets_no_egress_key(void **state)
{
    (void)state;
    /* policyTypes still names Egress, so all egress is denied. */
    json_t *p = policy_of(SANDBOX(IMAGE ",'egress':{'dns':false}"));
    expect_json_text(p, "{" POLICY_META ",'spec':{" POLICY_SPEC "}}", "dns false");
}

static void allow_entries_become_ip_blocks_with_their_except_and_ports(void **state)
{
    (void)state;
    json_t *p = policy_of(
        SANDBOX(IMAGE ",'egress':{'allow':["
                      "{'cidr':'203.0.113.0/24','except':['203.0.113.7/32'],"
                      "'ports':[{'port':443},{'port':8000,'endPort':8100,'protocol':'UDP'}]},"
                      "{'cidr':'2001:db8::/32'}]}"));
    expect_json_text(p,
                     "{" POLICY_META ",'spec':{" POLICY_SPEC ",'egress':[" DNS_RULE ","
                     "{'to':[{'ipBlock':{'cidr':'203.0.113.0/24','except':['203.0.113.7/32']}}],"
                     "'ports':[{'protocol':'TCP','port':443},"
                     "{'protocol':'UDP','port':8000,'endPort':8100}]},"
                     "{'to':[{'ipBlock':{'cidr':'2001:db8::/32'}}]}]}}",
                     "two allow entries");

    /* Without the DNS rule the allow entries are the whole egress. */
    p = policy_of(SANDBOX(IMAGE ",'egress':{'dns':false,'allow':[{'cidr':'10.0.0.0/8',"
                                "'ports':[{'port':22,'protocol':'SCTP'}]}]}"));
    expect_json_text(p,
                     "{" POLICY_META ",'spec':{" POLICY_SPEC ",'egress':["
                     "{'to':[{'ipBlock':{'cidr':'10.0.0.0/8'}}],"
                     "'ports':[{'protocol':'SCTP','port':22}]}]}}",
                     "dns false, one allow entry");
}

static void non_canonical_cidrs_are_written_in_canonical_form(void **state)
{
    (void)state;
    json_t *p = policy_of(SANDBOX(IMAGE ",'egress':{'dns':false,'allow':["
                                        "{'cidr':'203.0.113.5/24','except':['203.0.113.77/30']},"
                                        "{'cidr':'2001:DB8::/32','except':['2001:DB8:0:0::1/64']}"
                                        "]}"));
    expect_json_text(p,
                     "{" POLICY_META ",'spec':{" POLICY_SPEC ",'egress':["
                     "{'to':[{'ipBlock':{'cidr':'203.0.113.0/24','except':['203.0.113.76/30']}}]},"
                     "{'to':[{'ipBlock':{'cidr':'2001:db8::/32','except':['2001:db8::/64']}}]}]}}",
                     "canonical CIDRs");
}

/* The validator lets a JSON null through as "absent", and render_ports
 * takes a null endPort or protocol as it would an absent one (no endPort,
 * TCP): the API server would not store a null, so a policy holding one
 * would never hash like the observed one and be rewritten on every
 * reconcile. */
static void a_null_end_port_is_left_out_like_an_absent_one(void **state)
{
    (void)state;
    json_t *p = policy_of(SANDBOX(IMAGE ",'egress':{'dns':false,'allow':[{'cidr':'10.0.0.0/8',"
                                        "'ports':[{'port':80,'endPort':null,'protocol':null}]}]}"));
    expect_json_text(p,
                     "{" POLICY_META ",'spec':{" POLICY_SPEC ",'egress':["
                     "{'to':[{'ipBlock':{'cidr':'10.0.0.0/8'}}],"
                     "'ports':[{'protocol':'TCP','port':80}]}]}}",
                     "null endPort");
}

/* The pod, the way each test states it: what render_pod must return, with
 * the spec-hash annotation being observed_hash of the expected labels,
 * annotations (before the hash), ownerReferences and spec. */
#define POD(spec_rest, container_rest)                                                     \
    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'agent-42','namespace':'team-a',"  \
    "'labels':" LABELS ",'annotations':{},'ownerReferences':" OWNERS "},"                  \
    "'spec':{'restartPolicy':'Never','terminationGracePeriodSeconds':5,"                   \
    "'automountServiceAccountToken':false,'enableServiceLinks':false,'hostNetwork':false," \
    "'hostPID':false,'hostIPC':false," spec_rest ",'containers':[{'name':'sandbox',"       \
    "'imagePullPolicy':'IfNotPresent','terminationMessagePath':'/dev/termination-log',"    \
    "'terminationMessagePolicy':'FallbackToLogsOnError',"                                  \
    "'securityContext':{'allowPrivilegeEscalation':false,'privileged':false,"              \
    "'runAsNonRoot':true,'capabilities':{'drop':['ALL']},"                                 \
    "'seccompProfile':{'type':'RuntimeDefault'}}," container_rest "}]}}"
#define POD_SC(user, group)                                                               \
    "'securityContext':{'runAsNonRoot':true,'runAsUser':" user ",'runAsGroup':" group "," \
    "'seccompProfile':{'type':'RuntimeDefault'},'supplementalGroupsPolicy':'Strict'}"
#define KATA             "'runtimeClassName':'kata-fc'," POD_SC("65532", "65532")
#define AMOUNTS(c, m, e) "{'cpu':'" c "','memory':'" m "','ephemeral-storage':'" e "'}"
#define RESOURCES(c, m, e) \
    "'resources':{'requests':" AMOUNTS(c, m, e) ",'limits':" AMOUNTS(c, m, e) "}"
#define DEFAULT_RES RESOURCES("1", "1Gi", "2Gi")
#define KEEPALIVE                                                                      \
    "'command':['/bin/sh','-c','trap \\'exit 0\\' TERM INT; while :; do sleep 3600 & " \
    "wait $!; done']"

static void set_expected_hash(json_t *want)
{
    json_t *md = json_object_get(want, "metadata");
    json_t *digest =
        json_pack("{s:O, s:O, s:O, s:O}", "labels", json_object_get(md, "labels"), "annotations",
                  json_object_get(md, "annotations"), "ownerReferences",
                  json_object_get(md, "ownerReferences"), "spec", json_object_get(want, "spec"));
    char hash[SPEC_HASH_LEN + 1];
    assert_non_null(digest);
    assert_int_equal(observed_hash(digest, hash), 0);
    json_decref(digest);
    assert_int_equal(
        json_object_set_new(json_object_get(md, "annotations"), ANNOT_SPEC_HASH, json_string(hash)),
        0);
}

static void expect_pod(json_t *got, json_t *want, const char *what)
{
    set_expected_hash(want);
    expect_json(got, want, what);
}

static json_t *pod_of(const char *sandbox_text, const struct render_opts *o)
{
    json_t *s = sandbox(sandbox_text);
    json_t *p = render_pod(s, o);
    json_decref(s);
    assert_non_null(p);
    return p;
}

static void a_pod_without_resources_or_user_gets_the_defaults_and_stays_alive(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE), &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "defaults");
}

static void the_keepalive_program_exits_on_term_and_sleeps_otherwise(void **state)
{
    (void)state;
    assert_string_equal(render_keepalive,
                        "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done");
}

static void given_resources_are_requests_and_limits_with_integers_as_strings(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE ",'resources':{'cpu':2,'memory':'512Mi',"
                                     "'ephemeralStorage':'10Gi'}"),
                       &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," RESOURCES(
                                   "2", "512Mi", "10Gi") ",'env':[]," KEEPALIVE)),
               "given resources");

    /* Only cpu given: the rest keep their defaults. */
    p = pod_of(SANDBOX(IMAGE ",'resources':{'cpu':'500m'}"), &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," RESOURCES(
                                   "500m", "1Gi", "2Gi") ",'env':[]," KEEPALIVE)),
               "cpu only");
}

static void a_given_user_and_group_run_the_pod(void **state)
{
    (void)state;
    json_t *p =
        pod_of(SANDBOX(IMAGE ",'securityContext':{'runAsUser':1000,'runAsGroup':2000}"), &kata);
    expect_pod(p,
               parse(POD("'runtimeClassName':'kata-fc'," POD_SC("1000", "2000"),
                         "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "user and group");
}

static void env_entries_keep_their_value_or_reference(void **state)
{
    (void)state;
    json_t *p = pod_of(
        SANDBOX(IMAGE ",'env':[{'name':'FOO','value':'bar'},"
                      "{'name':'EMPTY'},"
                      "{'name':'TOKEN','valueFrom':{'secretKeyRef':{'name':'creds','key':'token',"
                      "'optional':true}}},"
                      "{'name':'MODE','valueFrom':{'configMapKeyRef':{'name':'app.config',"
                      "'key':'mode.yaml'}}}]"),
        &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':["
                               "{'name':'FOO','value':'bar'},"
                               "{'name':'EMPTY','value':''},"
                               "{'name':'TOKEN','valueFrom':{'secretKeyRef':"
                               "{'name':'creds','key':'token'}}},"
                               "{'name':'MODE','valueFrom':{'configMapKeyRef':"
                               "{'name':'app.config','key':'mode.yaml'}}}]," KEEPALIVE)),
               "env");
}

/* The validator takes a JSON null as absent ("valueFrom": null next to a
 * value, or "secretKeyRef": null next to a configMapKeyRef), and so does
 * render_env: the pod is rendered from the keys that are set (a NULL
 * return would read as ENOMEM, and the sandbox would never get a pod). */
static void a_null_value_from_counts_as_absent(void **state)
{
    (void)state;
    json_t *s = sandbox(SANDBOX(IMAGE ",'env':[{'name':'FOO','value':'bar','valueFrom':null},"
                                      "{'name':'MODE','valueFrom':{'secretKeyRef':null,"
                                      "'configMapKeyRef':{'name':'app','key':'mode'}}}]"));
    json_t *p = render_pod(s, &kata);
    json_decref(s);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':["
                               "{'name':'FOO','value':'bar'},"
                               "{'name':'MODE','valueFrom':{'configMapKeyRef':"
                               "{'name':'app','key':'mode'}}}]," KEEPALIVE)),
               "null valueFrom");
}

static void command_and_args_are_passed_as_given(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE ",'command':['python3','-m','http.server'],"
                                     "'args':['--bind','0.0.0.0']"),
                       &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[],"
                               "'command':['python3','-m','http.server'],"
                               "'args':['--bind','0.0.0.0']")),
               "command and args");
}

static void args_alone_go_to_the_image_entrypoint(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE ",'args':['--port','8080'],'command':[]"), &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES
                               ",'env':[],'args':['--port','8080']")),
               "args only");
}

static void the_working_directory_is_set_on_the_container(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE ",'workingDir':'/home/sandbox'"), &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE
                               ",'workingDir':'/home/sandbox'")),
               "workingDir");
}

static void the_image_pull_policy_is_the_spec_s_else_if_not_present(void **state)
{
    (void)state;
    static const char *const policies[] = {"Always", "IfNotPresent", "Never"};
    for (size_t i = 0; i < 3; i++) {
        char text[300];
        snprintf(text, sizeof(text), SANDBOX(IMAGE ",'imagePullPolicy':'%s'"), policies[i]);
        json_t *p = pod_of(text, &kata);
        json_t *want =
            parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE));
        json_t *c = json_array_get(json_object_get(json_object_get(want, "spec"), "containers"), 0);
        assert_int_equal(json_object_set_new(c, "imagePullPolicy", json_string(policies[i])), 0);
        expect_pod(p, want, policies[i]);
    }
    /* Unset, the pod is the one kage rendered before the field existed:
     * its spec hash, and so every running pod, stays as it was. */
    expect_pod(pod_of(SANDBOX(IMAGE), &kata),
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "imagePullPolicy unset");
}

static void the_runtime_class_comes_from_the_options(void **state)
{
    (void)state;
    const struct render_opts gvisor = {.runtime_class = "gvisor"};
    json_t *p = pod_of(SANDBOX(IMAGE), &gvisor);
    expect_pod(p,
               parse(POD("'runtimeClassName':'gvisor'," POD_SC("65532", "65532"),
                         "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "runtime class");
}

/* The wrapper, its environment and probe added to the expected pod. */
static json_t *with_before_script(json_t *want, const char *script, const char *tail_json)
{
    json_t *c = json_array_get(json_object_get(json_object_get(want, "spec"), "containers"), 0);
    json_t *cmd =
        json_pack("[s, s, s, s]", "/bin/sh", "-c", render_before_script_wrapper, "kage-sandbox");
    json_t *tail = parse(tail_json);
    assert_non_null(cmd);
    assert_int_equal(json_array_extend(cmd, tail), 0);
    json_decref(tail);
    assert_int_equal(json_object_set_new(c, "command", cmd), 0);
    assert_int_equal(json_array_append_new(
                         json_object_get(c, "env"),
                         json_pack("{s:s, s:s}", "name", "KAGE_BEFORE_SCRIPT", "value", script)),
                     0);
    return want;
}

#define PROBE                                                                           \
    "'readinessProbe':{'exec':{'command':['/bin/sh','-c','test -e /tmp/.kage-ready']}," \
    "'periodSeconds':2,'failureThreshold':1}"

static void a_before_script_runs_through_the_wrapper_before_the_command(void **state)
{
    (void)state;
    json_t *p = pod_of(SANDBOX(IMAGE ",'beforeScript':'pip install requests',"
                                     "'env':[{'name':'FOO','value':'bar'}],"
                                     "'command':['python3','-m','http.server'],'args':['8000']"),
                       &kata);
    /* The script's env comes last; command and args follow the wrapper's
     * $0, and there is no args key. */
    expect_pod(p,
               with_before_script(parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES
                                                  ",'env':[{'name':'FOO','value':'bar'}]," PROBE)),
                                  "pip install requests", "['python3','-m','http.server','8000']"),
               "beforeScript with command and args");

    /* Without a command the wrapper keeps the sandbox alive itself. */
    p = pod_of(SANDBOX(IMAGE ",'beforeScript':'apt-get update'"), &kata);
    expect_pod(p,
               with_before_script(
                   parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," PROBE)),
                   "apt-get update", "[]"),
               "beforeScript alone");

    /* The kubelet expands $(VAR) and turns $$ into $ in env values: every
     * $ is doubled, so the shell gets the script byte for byte. */
    p = pod_of(SANDBOX(IMAGE ",'beforeScript':'echo \\\"$HOME $$ $(date)\\\" > $OUT'"), &kata);
    expect_pod(p,
               with_before_script(
                   parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," PROBE)),
                   "echo \"$$HOME $$$$ $$(date)\" > $$OUT", "[]"),
               "beforeScript with $");

    /* An empty script is no script. */
    p = pod_of(SANDBOX(IMAGE ",'beforeScript':''"), &kata);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "empty beforeScript");
}

static void the_wrapper_reports_a_failed_script_in_the_termination_log(void **state)
{
    (void)state;
    assert_string_equal(render_before_script_wrapper,
                        "rm -f /tmp/.kage-ready\n"
                        "if [ -e /tmp/.kage-ready ]; then\n"
                        "  echo \"kage: the image's /tmp/.kage-ready cannot be removed\" "
                        ">/dev/termination-log\n"
                        "  exit 125\n"
                        "fi\n"
                        "/bin/sh -c \"$KAGE_BEFORE_SCRIPT\"; rc=$?\n"
                        "if [ \"$rc\" -ne 0 ]; then\n"
                        "  echo \"kage: beforeScript failed with exit code $rc\" "
                        ">/dev/termination-log\n"
                        "  exit \"$rc\"\n"
                        "fi\n"
                        "touch /tmp/.kage-ready\n"
                        "if [ \"$#\" -eq 0 ]; then\n"
                        "  trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done\n"
                        "fi\n"
                        "exec \"$@\"\n");
}

static char *hash_of(const char *sandbox_text, const struct render_opts *o)
{
    json_t *p = pod_of(sandbox_text, o);
    const char *h = render_pod_hash(p);
    assert_non_null(h);
    char *copy = strdup(h);
    json_decref(p);
    assert_non_null(copy);
    return copy;
}

static void the_spec_hash_is_sixteen_hex_digits_stable_for_the_same_sandbox(void **state)
{
    (void)state;
    char *a = hash_of(SANDBOX(IMAGE), &kata);
    char *b = hash_of(SANDBOX(IMAGE), &kata);
    assert_int_equal(strlen(a), SPEC_HASH_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), SPEC_HASH_LEN);
    assert_string_equal(a, b);
    /* Pinned: a different digest after an upgrade would recreate every
     * sandbox pod in the cluster. (It changed once, on purpose, when
     * supplementalGroupsPolicy Strict joined the pod: pods made before
     * are replaced to get it.) */
    assert_string_equal(a, "c65ed0cabb138f4d");
    free(a);
    free(b);

    /* Fields the pod does not carry do not count. */
    a = hash_of(SANDBOX(IMAGE ",'lifetime':{'ttlSeconds':60},'paused':false"), &kata);
    assert_string_equal(a, "c65ed0cabb138f4d");
    free(a);
}

static void the_spec_hash_changes_with_image_env_runtime_class_and_owner(void **state)
{
    (void)state;
    const struct render_opts gvisor = {.runtime_class = "gvisor"};
    char *base = hash_of(SANDBOX(IMAGE), &kata);
    char *other[] = {
        hash_of(SANDBOX("'image':'python:3.13-slim'"), &kata),
        hash_of(SANDBOX(IMAGE ",'env':[{'name':'FOO','value':'bar'}]"), &kata),
        hash_of(SANDBOX(IMAGE), &gvisor),
        hash_of("{'apiVersion':'kage.dev/v1alpha1','kind':'Sandbox','metadata':{'name':'agent-42',"
                "'namespace':'team-a','uid':'00000000-0000-0000-0000-000000000001'},"
                "'spec':{" IMAGE "}}",
                &kata),
    };
    const char *what[] = {"image", "env", "runtime class", "owner uid"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (strcmp(base, other[i]) == 0)
            fail_msg("a different %s gives the same hash %s", what[i], base);
        free(other[i]);
    }
    free(base);
}

static void the_spec_hash_digests_labels_annotations_owner_and_spec(void **state)
{
    (void)state;
    json_t *cls = parse("{'podAnnotations':{'example.com/team':'a'}}");
    const struct render_opts o = {.runtime_class = "kata-fc", .class_spec = cls};
    json_t *p = pod_of(SANDBOX(IMAGE ",'command':['sleep','infinity']"), &o);
    json_t *md = json_object_get(p, "metadata");
    /* The annotations as they were before the hash joined them. */
    json_t *annotations = json_deep_copy(json_object_get(md, "annotations"));
    assert_int_equal(json_object_del(annotations, ANNOT_SPEC_HASH), 0);
    json_t *digest =
        json_pack("{s:O, s:o, s:O, s:O}", "labels", json_object_get(md, "labels"), "annotations",
                  annotations, "ownerReferences", json_object_get(md, "ownerReferences"), "spec",
                  json_object_get(p, "spec"));
    char hash[SPEC_HASH_LEN + 1];
    assert_int_equal(observed_hash(digest, hash), 0);
    assert_string_equal(render_pod_hash(p), hash);
    json_decref(digest);
    json_decref(p);
    json_decref(cls);
}

/* Strict unless the class says Merge (then left out: what a pod without
 * it gets); hostUsers false only when the class asks for user namespaces. */
static void the_class_chooses_user_namespaces_and_supplemental_groups(void **state)
{
    (void)state;
    static const struct {
        const char *cls, *sgp;
        int host_users; /* -1: absent */
    } cases[] = {
        {"{}", "Strict", -1},
        {"{'supplementalGroupsPolicy':'Merge'}", NULL, -1},
        {"{'supplementalGroupsPolicy':'Strict','hostUsers':false}", "Strict", 0},
        {"{'hostUsers':true}", "Strict", -1},
        {"{'supplementalGroupsPolicy':'Bogus'}", "Strict", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *cls = parse(cases[i].cls);
        const struct render_opts o = {.runtime_class = "kata-fc", .class_spec = cls};
        json_t *p = pod_of(SANDBOX(IMAGE), &o);
        json_t *spec = json_object_get(p, "spec");
        const char *sgp = json_string_value(
            json_object_get(json_object_get(spec, "securityContext"), "supplementalGroupsPolicy"));
        if (cases[i].sgp)
            assert_string_equal(sgp ? sgp : "(none)", cases[i].sgp);
        else
            assert_null(sgp);
        json_t *hu = json_object_get(spec, "hostUsers");
        if (cases[i].host_users < 0)
            assert_null(hu);
        else
            assert_true(json_is_false(hu));
        json_decref(p);
        json_decref(cls);
    }
}

static void the_class_places_the_pod_and_adds_its_labels_and_annotations(void **state)
{
    (void)state;
    json_t *cls = parse("{'runtimeClassName':'kata-qemu','nodeSelector':{'kata':'true'},"
                        "'tolerations':[{'key':'sandbox','operator':'Exists',"
                        "'effect':'NoSchedule'}],"
                        "'podAnnotations':{'io.katacontainers.config.hypervisor.default_memory':"
                        "'2048'},"
                        "'podLabels':{'team':'a','kage.dev/sandbox':'spoofed',"
                        "'app.kubernetes.io/managed-by':'someone'},"
                        "'maxResources':{'cpu':'4'}}");
    const struct render_opts o = {.runtime_class = "kata-fc", .class_spec = cls};
    json_t *p = pod_of(SANDBOX(IMAGE), &o);
    /* The class's runtime class wins over the option; kage's labels win
     * over the class's, as they select the pod's policies. */
    json_t *want = parse(
        POD("'runtimeClassName':'kata-qemu'," POD_SC(
                "65532", "65532") ",'nodeSelector':{'kata':'true'},'tolerations':[{'key':'sandbox',"
                                  "'operator':'Exists','effect':'NoSchedule'}]",
            "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE));
    json_t *md = json_object_get(want, "metadata");
    json_object_set_new(md, "labels",
                        parse("{'team':'a','kage.dev/sandbox':'agent-42',"
                              "'app.kubernetes.io/managed-by':'kage'}"));
    json_object_set_new(md, "annotations",
                        parse("{'io.katacontainers.config.hypervisor.default_memory':'2048'}"));
    expect_pod(p, want, "class");

    /* Empty selector and tolerations are left out; no runtime class in the
     * class leaves the option's. */
    json_decref(cls);
    cls = parse("{'nodeSelector':{},'tolerations':[],'podLabels':{},'podAnnotations':{}}");
    const struct render_opts bare = {.runtime_class = "kata-fc", .class_spec = cls};
    p = pod_of(SANDBOX(IMAGE), &bare);
    expect_pod(p,
               parse(POD(KATA, "'image':'python:3.12-slim'," DEFAULT_RES ",'env':[]," KEEPALIVE)),
               "empty class");
    json_decref(cls);
}

static void the_class_annotations_count_in_the_spec_hash(void **state)
{
    (void)state;
    json_t *a = parse("{'podAnnotations':{'example.com/a':'1'}}");
    json_t *b = parse("{'podAnnotations':{'example.com/a':'2'}}");
    const struct render_opts oa = {.runtime_class = "kata-fc", .class_spec = a};
    const struct render_opts ob = {.runtime_class = "kata-fc", .class_spec = b};
    char *ha = hash_of(SANDBOX(IMAGE), &oa);
    char *hb = hash_of(SANDBOX(IMAGE), &ob);
    char *plain = hash_of(SANDBOX(IMAGE), &kata);
    assert_string_not_equal(ha, hb);
    assert_string_not_equal(ha, plain);
    free(ha);
    free(hb);
    free(plain);
    json_decref(a);
    json_decref(b);
}

/* Calls make(input) once for each allocation it makes, that allocation
 * failing: each must give NULL (or, having coped, the right object) and
 * free all it made; the run without a failure gives the object made with
 * plain malloc. */
static void sweep(json_t *(*make)(json_t *), const char *input, const char *what)
{
    char why[160] = "";
    json_t *in = parse(input);
    json_t *want = make(in);
    json_decref(in);
    assert_non_null(want);
    json_set_alloc_funcs(fi_track_malloc, fi_track_free);
    for (long n = 0;; n++) {
        failed = false;
        in = parse(input);
        fail_at = n;
        json_t *got = make(in);
        fail_at = -1;
        /* A failure may be absorbed, if the object is the right one. */
        bool same = got ? json_equal(got, want) : failed;
        const char *wrong = got ? "a different object" : "NULL without a failure";
        json_decref(got);
        json_decref(in);
        bool clean = fi_track_clean(why, sizeof(why));
        if (!same || !clean) {
            json_set_alloc_funcs(malloc, free);
            json_decref(want);
            fail_msg("%s, allocation %ld failing: %s", what, n, !same ? wrong : why);
        }
        if (!failed)
            break;
    }
    json_set_alloc_funcs(malloc, free);
    json_decref(want);
}

static json_t *make_baseline(json_t *in)
{
    return render_baseline(json_string_value(in));
}

static json_t *make_policy(json_t *in)
{
    return render_policy(in);
}

static json_t *make_pod(json_t *in)
{
    return render_pod(in, &kata);
}

static json_t *sweep_class; /* made with plain malloc, before the sweep */

static json_t *make_pod_of_class(json_t *in)
{
    const struct render_opts o = {.runtime_class = "kata-fc", .class_spec = sweep_class};
    return render_pod(in, &o);
}

/* Every list longer than jansson's first array allocation (8), so that
 * appending allocates too. */
#define PORTS10                                                                                 \
    "[{'port':1},{'port':2},{'port':3},{'port':4},{'port':5},{'port':6},{'port':7},{'port':8}," \
    "{'port':9,'endPort':10,'protocol':'UDP'},{'port':11}]"
#define MANY                                                                                       \
    SANDBOX(IMAGE ",'command':['a','b'],'args':['c'],'workingDir':'/w','beforeScript':'true',"     \
                  "'resources':{'cpu':2,'memory':'1Gi'},"                                          \
                  "'securityContext':{'runAsUser':1000},'env':["                                   \
                  "{'name':'A1','value':'1'},{'name':'A2','value':'2'},{'name':'A3'},"             \
                  "{'name':'A4','value':'4'},{'name':'A5','value':'5'},{'name':'A6','value':'6'}," \
                  "{'name':'A7','value':'7'},{'name':'A8','valueFrom':{'secretKeyRef':"            \
                  "{'name':'s','key':'k'}}},{'name':'A9','valueFrom':{'configMapKeyRef':"          \
                  "{'name':'c','key':'k'}}}],"                                                     \
                  "'egress':{'allow':[{'cidr':'10.0.0.0/8','except':['10.1.0.0/16',"               \
                  "'10.2.0.0/16','10.3.0.0/16','10.4.0.0/16','10.5.0.0/16','10.6.0.0/16',"         \
                  "'10.7.0.0/16','10.8.0.0/16','10.9.0.0/16'],'ports':" PORTS10 "},"               \
                  "{'cidr':'192.0.2.0/24'},{'cidr':'198.51.100.0/24'},{'cidr':'203.0.113.0/24'},"  \
                  "{'cidr':'2001:db8::/32'},{'cidr':'2001:db9::/32'},{'cidr':'2001:dba::/32'},"    \
                  "{'cidr':'2001:dbb::/32','ports':[{'port':443}]}]}")

static void a_failed_allocation_in_the_baseline_gives_null(void **state)
{
    (void)state;
    sweep(make_baseline, "'team-a'", "baseline");
}

/* A failed allocation anywhere in the pod gives NULL and frees what was
 * made, the env items half filled included (LeakSanitizer reports a leak
 * at exit under make test-asan); and a pod that comes out despite a
 * failure is the right one, its spec hash included (see test_observed.c
 * for how json_dumps could make it wrong). */
static void a_failed_allocation_in_the_pod_gives_null_and_frees_what_was_made(void **state)
{
    (void)state;
    json_t *s = sandbox(MANY); /* valid, as render requires */
    json_decref(s);
    sweep(make_pod, SANDBOX(IMAGE), "pod");
    sweep(make_pod, MANY, "pod with many entries");
}

/* A failed json_deep_copy of the class's podLabels or podAnnotations is a
 * failure, not "the class has none": the pod is never rendered, and
 * hashed, without them (without the hypervisor settings a class puts in
 * annotations, say). */
static void a_failed_allocation_never_drops_what_the_class_adds(void **state)
{
    (void)state;
    sweep_class = parse("{'runtimeClassName':'kata-qemu','nodeSelector':{'kata':'true'},"
                        "'tolerations':[{'key':'sandbox','operator':'Exists'}],"
                        "'podLabels':{'team':'a'},'podAnnotations':{'example.com/a':'1'}}");
    sweep(make_pod_of_class, SANDBOX(IMAGE), "pod of a class");
    json_decref(sweep_class);
}

/* A failed allocation in the policy gives NULL and frees what was made,
 * each block once: render_ports leaves a port that json_array_append_new
 * has already released on failure alone (the sweep's poisoned blocks show
 * a write after free or a double free in any build). */
static void a_failed_allocation_in_the_policy_gives_null_and_frees_what_was_made(void **state)
{
    (void)state;
    sweep(make_policy, SANDBOX(IMAGE), "policy");
    sweep(make_policy, MANY, "policy with many entries");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_baseline_selects_every_sandbox_pod_and_allows_nothing),
        cmocka_unit_test(a_sandbox_without_egress_gets_only_the_dns_rule),
        cmocka_unit_test(a_sandbox_without_dns_or_allow_entries_gets_no_egress_key),
        cmocka_unit_test(allow_entries_become_ip_blocks_with_their_except_and_ports),
        cmocka_unit_test(non_canonical_cidrs_are_written_in_canonical_form),
        cmocka_unit_test(a_null_end_port_is_left_out_like_an_absent_one),
        cmocka_unit_test(a_pod_without_resources_or_user_gets_the_defaults_and_stays_alive),
        cmocka_unit_test(the_keepalive_program_exits_on_term_and_sleeps_otherwise),
        cmocka_unit_test(given_resources_are_requests_and_limits_with_integers_as_strings),
        cmocka_unit_test(a_given_user_and_group_run_the_pod),
        cmocka_unit_test(env_entries_keep_their_value_or_reference),
        cmocka_unit_test(a_null_value_from_counts_as_absent),
        cmocka_unit_test(command_and_args_are_passed_as_given),
        cmocka_unit_test(args_alone_go_to_the_image_entrypoint),
        cmocka_unit_test(the_working_directory_is_set_on_the_container),
        cmocka_unit_test(the_image_pull_policy_is_the_spec_s_else_if_not_present),
        cmocka_unit_test(the_runtime_class_comes_from_the_options),
        cmocka_unit_test(a_before_script_runs_through_the_wrapper_before_the_command),
        cmocka_unit_test(the_wrapper_reports_a_failed_script_in_the_termination_log),
        cmocka_unit_test(the_spec_hash_is_sixteen_hex_digits_stable_for_the_same_sandbox),
        cmocka_unit_test(the_spec_hash_changes_with_image_env_runtime_class_and_owner),
        cmocka_unit_test(the_spec_hash_digests_labels_annotations_owner_and_spec),
        cmocka_unit_test(the_class_chooses_user_namespaces_and_supplemental_groups),
        cmocka_unit_test(the_class_places_the_pod_and_adds_its_labels_and_annotations),
        cmocka_unit_test(the_class_annotations_count_in_the_spec_hash),
        cmocka_unit_test(a_failed_allocation_in_the_baseline_gives_null),
        cmocka_unit_test(a_failed_allocation_in_the_pod_gives_null_and_frees_what_was_made),
        cmocka_unit_test(a_failed_allocation_never_drops_what_the_class_adds),
        cmocka_unit_test(a_failed_allocation_in_the_policy_gives_null_and_frees_what_was_made),
    };
    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
