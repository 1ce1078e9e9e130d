// SPDX-License-Identifier: Apache-2.0
/*
 * render.c - builds the desired children of a Sandbox as JSON. Every field
 * a server would default is written out, so an object read back from the
 * API server digests the same as the one rendered, and drift shows.
 */
#include "reconcile/render.h"

#include <stdio.h>
#include <string.h>

#include "kube/buf.h"
#include "reconcile/cidr.h"

const char render_keepalive[] = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/* The script comes in through the environment, never spliced into code.
 * A ready marker the image itself holds would make the pod Ready before
 * the script ran: it goes first, or the sandbox does not start. */
const char render_before_script_wrapper[] =
    "rm -f /tmp/.kage-ready\n"
    "if [ -e /tmp/.kage-ready ]; then\n"
    "  echo \"kage: the image's /tmp/.kage-ready cannot be removed\" >/dev/termination-log\n"
    "  exit 125\n"
    "fi\n"
    "/bin/sh -c \"$" BEFORE_SCRIPT_ENV "\"; rc=$?\n"
    "if [ \"$rc\" -ne 0 ]; then\n"
    "  echo \"" BEFORE_SCRIPT_FAILED "$rc\" >/dev/termination-log\n"
    "  exit \"$rc\"\n"
    "fi\n"
    "touch /tmp/.kage-ready\n"
    "if [ \"$#\" -eq 0 ]; then\n"
    "  trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done\n"
    "fi\n"
    "exec \"$@\"\n";

static const char *md_str(const json_t *obj, const char *k)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), k));
}

static json_t *labels_for(const char *name)
{
    return json_pack("{s:s, s:s}", LABEL_SANDBOX, name, LABEL_MANAGED_BY, "kage");
}

static json_t *owner_refs(const json_t *sandbox)
{
    return json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", SANDBOX_API_VERSION, "kind",
                     SANDBOX_KIND, "name", md_str(sandbox, "name"), "uid", md_str(sandbox, "uid"),
                     "controller", 1);
}

json_t *render_baseline(const char *ns)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:{s:[{s:s, s:s}]}, s:[s, s]}}",
                     "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata",
                     "name", BASELINE_POLICY, "namespace", ns, "labels", LABEL_MANAGED_BY, "kage",
                     "kage.dev/baseline", "true", "spec", "podSelector", "matchExpressions", "key",
                     LABEL_SANDBOX, "operator", "Exists", "policyTypes", "Ingress", "Egress");
}

/* A CIDR in canonical form (the validator accepted it, so it parses). */
static json_t *canonical_cidr(const char *s)
{
    struct cidr c;
    char out[CIDR_STRLEN];
    if (!s || cidr_parse(s, &c) != 0 || cidr_format(&c, out, sizeof(out)) != 0)
        return json_string(s ? s : "");
    return json_string(out);
}

static json_t *render_ports(const json_t *ports)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    if (!out)
        return NULL;
    json_array_foreach(ports, i, p)
    {
        const char *proto = json_string_value(json_object_get(p, "protocol"));
        json_t *port = json_pack("{s:s, s:O}", "protocol", proto ? proto : "TCP", "port",
                                 json_object_get(p, "port"));
        json_t *end = json_object_get(p, "endPort");
        /* A null endPort is an absent one, as for the validator. */
        if (!port || (json_is_integer(end) && json_object_set(port, "endPort", end) != 0)) {
            json_decref(port);
            json_decref(out);
            return NULL;
        }
        /* json_array_append_new releases port when it fails. */
        if (json_array_append_new(out, port) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *render_allow(const json_t *entry)
{
    json_t *block = json_object();
    json_t *rule = json_object();
    json_t *except = json_object_get(entry, "except");
    if (!block || !rule)
        goto fail;
    if (json_object_set_new(block, "cidr",
                            canonical_cidr(json_string_value(json_object_get(entry, "cidr")))))
        goto fail;
    if (json_array_size(except) > 0) {
        json_t *ex = json_array();
        size_t i;
        json_t *e;
        if (json_object_set_new(block, "except", ex))
            goto fail;
        json_array_foreach(except, i, e)
        {
            if (json_array_append_new(ex, canonical_cidr(json_string_value(e))))
                goto fail;
        }
    }
    if (json_object_set_new(rule, "to", json_pack("[{s:O}]", "ipBlock", block)))
        goto fail;
    json_decref(block);
    block = NULL;
    json_t *ports = json_object_get(entry, "ports");
    if (json_array_size(ports) > 0 && json_object_set_new(rule, "ports", render_ports(ports)))
        goto fail;
    return rule;
fail:
    json_decref(block);
    json_decref(rule);
    return NULL;
}

json_t *render_policy(const json_t *sandbox)
{
    const char *name = md_str(sandbox, "name");
    json_t *egress_spec = json_object_get(json_object_get(sandbox, "spec"), "egress");
    json_t *dns = json_object_get(egress_spec, "dns");
    json_t *egress = json_array();
    json_t *pol = NULL;
    if (!egress)
        return NULL;

    if (!json_is_false(dns)) {
        json_t *rule =
            json_pack("{s:[{s:{s:{s:s}}, s:{s:{s:s}}}], s:[{s:s, s:i}, {s:s, s:i}]}", "to",
                      "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name",
                      "kube-system", "podSelector", "matchLabels", "k8s-app", "kube-dns", "ports",
                      "protocol", "UDP", "port", 53, "protocol", "TCP", "port", 53);
        if (json_array_append_new(egress, rule))
            goto fail;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(egress_spec, "allow"), i, entry)
    {
        if (json_array_append_new(egress, render_allow(entry)))
            goto fail;
    }

    pol = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:o}, s:{s:{s:{s:s}}, s:[s, s]}}", "apiVersion",
                    "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata", "name", name,
                    "namespace", md_str(sandbox, "namespace"), "labels", labels_for(name),
                    "ownerReferences", owner_refs(sandbox), "spec", "podSelector", "matchLabels",
                    LABEL_SANDBOX, name, "policyTypes", "Ingress", "Egress");
    if (!pol)
        goto fail;
    /* No ingress rules at all: deny every ingress. An empty egress list is
     * left out too, as the API server stores it. */
    if (json_array_size(egress) > 0 &&
        json_object_set(json_object_get(pol, "spec"), "egress", egress) != 0)
        goto fail;
    json_decref(egress);
    return pol;
fail:
    json_decref(egress);
    json_decref(pol);
    return NULL;
}

int render_policy_pod_owner(json_t *policy, const char *pod_name, const char *pod_uid)
{
    json_t *refs = json_object_get(json_object_get(policy, "metadata"), "ownerReferences");
    for (size_t i = json_array_size(refs); i-- > 0;) {
        json_t *ref = json_array_get(refs, i);
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        const char *api = json_string_value(json_object_get(ref, "apiVersion"));
        if (kind && api && strcmp(kind, "Pod") == 0 && strcmp(api, "v1") == 0)
            json_array_remove(refs, i);
    }
    if (!pod_uid || !pod_uid[0])
        return 0;
    /* json_array_append_new releases the reference when it fails. */
    return json_array_append_new(refs, json_pack("{s:s, s:s, s:s, s:s, s:b}", "apiVersion", "v1",
                                                 "kind", "Pod", "name", pod_name, "uid", pod_uid,
                                                 "controller", 0)) == 0
               ? 0
               : -1;
}

/* A quantity field as a string ("1", "500m"): integers are printed. */
static json_t *quantity_of(const json_t *resources, const char *k, const char *dflt)
{
    json_t *v = json_object_get(resources, k);
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return json_string(buf);
    }
    return json_string(json_is_string(v) ? json_string_value(v) : dflt);
}

static json_t *render_resources(const json_t *spec)
{
    json_t *r = json_object_get(spec, "resources");
    json_t *amounts =
        json_pack("{s:o, s:o, s:o}", "cpu", quantity_of(r, "cpu", DEFAULT_CPU), "memory",
                  quantity_of(r, "memory", DEFAULT_MEMORY), "ephemeral-storage",
                  quantity_of(r, "ephemeralStorage", DEFAULT_EPHEMERAL_STORAGE));
    if (!amounts)
        return NULL;
    /* requests = limits: the sandbox gets exactly what it asked for. */
    json_t *out = json_pack("{s:O, s:O}", "requests", amounts, "limits", amounts);
    json_decref(amounts);
    return out;
}

static json_t *render_env(const json_t *spec)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    if (!out)
        return NULL;
    json_array_foreach(json_object_get(spec, "env"), i, e)
    {
        json_t *item = json_pack("{s:O}", "name", json_object_get(e, "name"));
        json_t *from = json_object_get(e, "valueFrom");
        int rc;
        if (!item)
            goto fail;
        /* JSON null counts as absent, as for the validator. */
        if (json_is_object(from)) {
            json_t *sec = json_object_get(from, "secretKeyRef");
            bool secret = json_is_object(sec);
            json_t *ref = secret ? sec : json_object_get(from, "configMapKeyRef");
            rc = json_object_set_new(
                item, "valueFrom",
                json_pack("{s:{s:O, s:O}}", secret ? "secretKeyRef" : "configMapKeyRef", "name",
                          json_object_get(ref, "name"), "key", json_object_get(ref, "key")));
        } else {
            json_t *v = json_object_get(e, "value");
            rc = json_object_set_new(item, "value",
                                     json_string(json_is_string(v) ? json_string_value(v) : ""));
        }
        if (rc) {
            json_decref(item);
            goto fail;
        }
        if (json_array_append_new(out, item))
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* command and args of the container, honouring beforeScript and keep-alive. */
static int render_command(json_t *container, const json_t *spec)
{
    json_t *command = json_object_get(spec, "command");
    json_t *args = json_object_get(spec, "args");
    const char *script = json_string_value(json_object_get(spec, "beforeScript"));
    bool has_cmd = json_array_size(command) > 0, has_args = json_array_size(args) > 0;

    if (script && script[0]) {
        /* sh -c WRAPPER kage-sandbox <command...> <args...>: the wrapper
         * runs the script, then execs the rest (or stays alive). */
        json_t *cmd = json_pack("[s, s, s, s]", "/bin/sh", "-c", render_before_script_wrapper,
                                "kage-sandbox");
        if (!cmd || (has_cmd && json_array_extend(cmd, command)) ||
            (has_args && json_array_extend(cmd, args))) {
            json_decref(cmd);
            return -1;
        }
        return json_object_set_new(container, "command", cmd);
    }
    if (!has_cmd && !has_args)
        return json_object_set_new(container, "command",
                                   json_pack("[s, s, s]", "/bin/sh", "-c", render_keepalive));
    if (has_cmd && json_object_set(container, "command", command))
        return -1;
    if (has_args && json_object_set(container, "args", args))
        return -1;
    return 0;
}

static json_int_t id_or(const json_t *sc, const char *k)
{
    json_t *v = json_object_get(sc, k);
    return json_is_integer(v) ? json_integer_value(v) : DEFAULT_USER;
}

json_t *render_pod(const json_t *sandbox, const struct render_opts *o)
{
    const json_t *spec = json_object_get(sandbox, "spec");
    const char *name = md_str(sandbox, "name");
    json_t *sc = json_object_get(spec, "securityContext");
    json_t *env = render_env(spec);
    const char *script = json_string_value(json_object_get(spec, "beforeScript"));
    json_t *pod = NULL;
    if (!env)
        return NULL;
    if (script && script[0]) {
        /* The kubelet expands $(VAR) and turns $$ into $ in env values;
         * doubling every $ delivers the script byte for byte. */
        struct buf esc;
        buf_init(&esc, 2 * strlen(script) + 1);
        int erc = 0;
        for (const char *p = script; *p && !erc; p++)
            erc = buf_append(&esc, *p == '$' ? "$$" : p, *p == '$' ? 2 : 1);
        json_t *item = erc ? NULL
                           : json_pack("{s:s, s:s}", "name", BEFORE_SCRIPT_ENV, "value",
                                       esc.data ? esc.data : "");
        buf_free(&esc);
        if (!item || json_array_append_new(env, item))
            goto fail;
    }

    const char *pull = json_string_value(json_object_get(spec, "imagePullPolicy"));
    json_t *container = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:{s:b, s:b, s:b, s:{s:[s]}, s:{s:s}}}", "name",
        CONTAINER_NAME, "image", json_string_value(json_object_get(spec, "image")),
        "imagePullPolicy", pull ? pull : "IfNotPresent", "resources", render_resources(spec), "env",
        env, "terminationMessagePath", "/dev/termination-log", "terminationMessagePolicy",
        "FallbackToLogsOnError", "securityContext", "allowPrivilegeEscalation", 0, "privileged", 0,
        "runAsNonRoot", 1, "capabilities", "drop", "ALL", "seccompProfile", "type",
        "RuntimeDefault");
    env = NULL; /* owned by container now (or freed by a failed pack) */
    if (!container || render_command(container, spec) != 0) {
        json_decref(container);
        goto fail;
    }
    const char *wd = json_string_value(json_object_get(spec, "workingDir"));
    if (wd && json_object_set_new(container, "workingDir", json_string(wd))) {
        json_decref(container);
        goto fail;
    }
    if (script && script[0] &&
        json_object_set_new(container, "readinessProbe",
                            json_pack("{s:{s:[s, s, s]}, s:i, s:i}", "exec", "command", "/bin/sh",
                                      "-c", "test -e /tmp/.kage-ready", "periodSeconds", 2,
                                      "failureThreshold", 1))) {
        json_decref(container);
        goto fail;
    }

    const json_t *cls = o->class_spec;
    const char *runtime = json_string_value(json_object_get(cls, "runtimeClassName"));
    /* NULL now means only that a copy failed, never "the class has none". */
    json_t *cl = json_object_get(cls, "podLabels"), *ca = json_object_get(cls, "podAnnotations");
    json_t *labels = json_is_object(cl) ? json_deep_copy(cl) : json_object();
    json_t *annotations = json_is_object(ca) ? json_deep_copy(ca) : json_object();
    json_t *ours = labels_for(name);
    /* kage's labels win over the class's: they select the pod's policies. */
    if (!labels || !annotations || !ours || json_object_update(labels, ours)) {
        json_decref(labels);
        json_decref(annotations);
        json_decref(ours);
        json_decref(container);
        goto fail;
    }
    json_decref(ours);
#ifdef KAGE_RENDER_NEXT
    /* Only in the second build the upgrade test makes (make render-next):
     * a kage that renders pods otherwise, in a field of the form (a label)
     * and one outside it (an annotation), never a setting users have. */
    if (json_object_set_new(labels, "kage.dev/rendering", json_string("next")) ||
        json_object_set_new(annotations, "kage.dev/rendering", json_string("next"))) {
        json_decref(labels);
        json_decref(annotations);
        json_decref(container);
        goto fail;
    }
#endif
    pod = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:o, s:o, s:o}, s:{s:s, s:s, s:i, s:b, s:b, s:b, s:b, s:b, "
        "s:{s:b, s:I, s:I, s:{s:s}}, s:[o]}}",
        "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace",
        md_str(sandbox, "namespace"), "labels", labels, "annotations", annotations,
        "ownerReferences", owner_refs(sandbox), "spec", "runtimeClassName",
        runtime ? runtime : o->runtime_class, "restartPolicy", "Never",
        "terminationGracePeriodSeconds", TERMINATION_GRACE_SECONDS, "automountServiceAccountToken",
        0, "enableServiceLinks", 0, "hostNetwork", 0, "hostPID", 0, "hostIPC", 0, "securityContext",
        "runAsNonRoot", 1, "runAsUser", id_or(sc, "runAsUser"), "runAsGroup",
        id_or(sc, "runAsGroup"), "seccompProfile", "type", "RuntimeDefault", "containers",
        container);
    if (!pod)
        return NULL;
    json_t *pspec = json_object_get(pod, "spec");
    /* Strict unless the class says Merge: groups the image's /etc/group
     * gives the user (group 0 among them) are not the sandbox's. Merge is
     * what a pod without the field gets, so it is left out, and a cluster
     * that lacks the field can still run the class's pods. */
    const char *sgp = json_string_value(json_object_get(cls, "supplementalGroupsPolicy"));
    bool merge = sgp && strcmp(sgp, "Merge") == 0;
    if ((!merge && json_object_set_new(json_object_get(pspec, "securityContext"),
                                       "supplementalGroupsPolicy", json_string("Strict"))) ||
        (json_is_false(json_object_get(cls, "hostUsers")) &&
         json_object_set_new(pspec, "hostUsers", json_false()))) {
        json_decref(pod);
        return NULL;
    }
    /* The gate runs before the sandbox's container: the sandbox's code
     * starts only once the pod's egress is seen filtered. */
    if (gate_choose(sandbox, cls, o->gate) == GATE_ADD &&
        json_object_set_new(pspec, "initContainers",
                            json_pack("[o]", gate_container(o->gate, cls, container)))) {
        json_decref(pod);
        return NULL;
    }
    json_t *sel = json_object_get(cls, "nodeSelector");
    json_t *tol = json_object_get(cls, "tolerations");
    if ((json_object_size(sel) > 0 && json_object_set(pspec, "nodeSelector", sel)) ||
        (json_array_size(tol) > 0 && json_object_set(pspec, "tolerations", tol))) {
        json_decref(pod);
        return NULL;
    }
    /* The digest covers labels, annotations, owner and spec; the
     * spec-hash annotation then holds it. */
    char hash[SPEC_HASH_LEN + 1];
    json_t *md = json_object_get(pod, "metadata");
    json_t *digest = json_pack("{s:O, s:O, s:O, s:O}", "labels", json_object_get(md, "labels"),
                               "annotations", json_object_get(md, "annotations"), "ownerReferences",
                               json_object_get(md, "ownerReferences"), "spec", pspec);
    int rc = digest ? observed_hash(digest, hash) : -1;
    json_decref(digest);
    if (rc != 0 ||
        json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "annotations"),
                            ANNOT_SPEC_HASH, json_string(hash))) {
        json_decref(pod);
        return NULL;
    }
    return pod;
fail:
    json_decref(env);
    json_decref(pod);
    return NULL;
}

const char *render_pod_hash(const json_t *pod)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(pod, "metadata"), "annotations"), ANNOT_SPEC_HASH));
}
