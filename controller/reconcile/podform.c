// SPDX-License-Identifier: Apache-2.0
/*
 * podform.c - reduces a pod to the fields kage sets, each as the API server
 * would store it, and digests that. Drift is judged by comparing the
 * digest of the live pod with that of the rendered one, never by a hash
 * the pod carries about itself.
 */
#include "reconcile/podform.h"

#include <stdbool.h>
#include <stdint.h>

#include "reconcile/observed.h"
#include "reconcile/quantity.h"

/* Builds one object; a failed step marks the whole form failed. */
struct form {
    bool failed;
};

static void put(struct form *f, json_t *obj, const char *k, json_t *v)
{
    /* json_object_set_new releases v even when it fails. */
    if (!obj)
        json_decref(v);
    if (!v || !obj || json_object_set_new(obj, k, v) != 0)
        f->failed = true;
}

/* The member as is (a new reference), or dflt when absent or null. */
static json_t *or_default(const json_t *obj, const char *k, json_t *dflt)
{
    json_t *v = json_object_get(obj, k);
    if (!v || json_is_null(v))
        return dflt;
    json_decref(dflt);
    return json_incref(v);
}

/* A boolean field that the API server leaves out when it is its default. */
static json_t *flag(const json_t *obj, const char *k, bool dflt)
{
    json_t *v = json_object_get(obj, k);
    return json_boolean(json_is_boolean(v) ? json_is_true(v) : dflt);
}

/* {name: quantity} as {name: milli-units}: the API server stores "1000m"
 * as "1" and "1024Mi" as "1Gi". Text that is no quantity stays text. */
static json_t *amounts(struct form *f, const json_t *list)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)list, k, v)
    {
        int64_t milli;
        if (json_is_string(v) && quantity_parse_milli(json_string_value(v), &milli) == 0)
            put(f, out, k, json_integer((json_int_t)milli));
        else
            put(f, out, k, json_incref(v));
    }
    if (!out)
        f->failed = true;
    return out;
}

static json_t *resources(struct form *f, const json_t *r)
{
    json_t *out = json_object();
    put(f, out, "requests", amounts(f, json_object_get(r, "requests")));
    put(f, out, "limits", amounts(f, json_object_get(r, "limits")));
    return out;
}

/* An env entry: the API server drops an empty value. */
static json_t *env(struct form *f, const json_t *list)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        json_t *item = json_object();
        put(f, item, "name", or_default(e, "name", json_string("")));
        put(f, item, "value", or_default(e, "value", json_string("")));
        put(f, item, "valueFrom", or_default(e, "valueFrom", json_null()));
        if (!item || json_array_append_new(out, item) != 0)
            f->failed = true;
    }
    if (!out)
        f->failed = true;
    return out;
}

/* A probe by what kage sets in one: the server fills in the rest. */
static json_t *probe(struct form *f, const json_t *p)
{
    if (!json_is_object(p))
        return json_null();
    json_t *out = json_deep_copy(p);
    if (!out) {
        f->failed = true;
        return json_null();
    }
    json_object_del(out, "timeoutSeconds");
    json_object_del(out, "successThreshold");
    return out;
}

static json_t *container(struct form *f, const json_t *c)
{
    json_t *out = json_object();
    put(f, out, "name", or_default(c, "name", json_string("")));
    put(f, out, "image", or_default(c, "image", json_string("")));
    put(f, out, "imagePullPolicy", or_default(c, "imagePullPolicy", json_null()));
    put(f, out, "command", or_default(c, "command", json_array()));
    put(f, out, "args", or_default(c, "args", json_array()));
    put(f, out, "workingDir", or_default(c, "workingDir", json_string("")));
    put(f, out, "env", env(f, json_object_get(c, "env")));
    put(f, out, "envFrom", or_default(c, "envFrom", json_array()));
    put(f, out, "resources", resources(f, json_object_get(c, "resources")));
    put(f, out, "securityContext", or_default(c, "securityContext", json_null()));
    put(f, out, "ports", or_default(c, "ports", json_array()));
    put(f, out, "volumeMounts", or_default(c, "volumeMounts", json_array()));
    put(f, out, "volumeDevices", or_default(c, "volumeDevices", json_array()));
    put(f, out, "readinessProbe", probe(f, json_object_get(c, "readinessProbe")));
    put(f, out, "livenessProbe", probe(f, json_object_get(c, "livenessProbe")));
    put(f, out, "startupProbe", probe(f, json_object_get(c, "startupProbe")));
    put(f, out, "lifecycle", or_default(c, "lifecycle", json_null()));
    put(f, out, "restartPolicy", or_default(c, "restartPolicy", json_null()));
    put(f, out, "terminationMessagePath", or_default(c, "terminationMessagePath", json_null()));
    put(f, out, "terminationMessagePolicy", or_default(c, "terminationMessagePolicy", json_null()));
    return out;
}

static json_t *containers(struct form *f, const json_t *list)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        if (json_array_append_new(out, container(f, c)) != 0)
            f->failed = true;
    }
    if (!out)
        f->failed = true;
    return out;
}

/* The pod's labels, less any whose key is a member name the pod watch
 * cuts from every object it receives (observed_pod_unread): the live pod
 * in the cache never has those, so neither side's form counts them. A new
 * reference; NULL on ENOMEM. */
static json_t *labels_of(const json_t *pod)
{
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    json_t *out = json_is_object(labels) ? json_copy(labels) : json_object();
    if (!out)
        return NULL;
    for (const char *const *k = observed_pod_unread; *k; k++)
        json_object_del(out, *k);
    return out;
}

json_t *podform_of(const json_t *pod)
{
    struct form f = {false};
    const json_t *spec = json_object_get(pod, "spec");
    json_t *s = json_object();
    put(&f, s, "runtimeClassName", or_default(spec, "runtimeClassName", json_null()));
    put(&f, s, "automountServiceAccountToken", flag(spec, "automountServiceAccountToken", true));
    put(&f, s, "enableServiceLinks", flag(spec, "enableServiceLinks", true));
    put(&f, s, "hostNetwork", flag(spec, "hostNetwork", false));
    put(&f, s, "hostPID", flag(spec, "hostPID", false));
    put(&f, s, "hostIPC", flag(spec, "hostIPC", false));
    put(&f, s, "hostUsers", flag(spec, "hostUsers", true));
    put(&f, s, "shareProcessNamespace", flag(spec, "shareProcessNamespace", false));
    put(&f, s, "securityContext", or_default(spec, "securityContext", json_object()));
    put(&f, s, "restartPolicy", or_default(spec, "restartPolicy", json_null()));
    put(&f, s, "volumes", or_default(spec, "volumes", json_array()));
    put(&f, s, "resourceClaims", or_default(spec, "resourceClaims", json_array()));
    put(&f, s, "resources", or_default(spec, "resources", json_null()));
    put(&f, s, "containers", containers(&f, json_object_get(spec, "containers")));
    put(&f, s, "initContainers", containers(&f, json_object_get(spec, "initContainers")));
    put(&f, s, "ephemeralContainers", containers(&f, json_object_get(spec, "ephemeralContainers")));

    json_t *form = json_object();
    put(&f, form, "labels", labels_of(pod));
    put(&f, form, "spec", s);
    if (f.failed) {
        json_decref(form);
        return NULL;
    }
    return form;
}
