// SPDX-License-Identifier: Apache-2.0
/*
 * gate.c - decides whether a sandbox pod gets the policy gate and renders
 * it. The gate waits for its canary to be blocked, so a Sandbox whose
 * allow list reaches the canary must not get it.
 */
#include "reconcile/gate.h"

#include <stdio.h>
#include <string.h>

#include "reconcile/cidr.h"

/* host as a one-address block (/32 or /128), or -1. */
static int host_block(const char *host, struct cidr *out)
{
    char text[GATE_HOST_MAX + 8];
    if (!host || !host[0] || strlen(host) >= GATE_HOST_MAX || strchr(host, '/'))
        return -1;
    snprintf(text, sizeof(text), "%s/%d", host, strchr(host, ':') ? 128 : 32);
    return cidr_parse(text, out) == 0 ? 0 : -1;
}

/* Whether a ports list (absent or empty: every port) lets TCP port through. */
static bool ports_take(const json_t *ports, int port)
{
    if (json_array_size(ports) == 0)
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        const char *proto = json_string_value(json_object_get(p, "protocol"));
        json_t *first = json_object_get(p, "port"), *end = json_object_get(p, "endPort");
        if ((proto && strcmp(proto, "TCP") != 0) || !json_is_integer(first))
            continue;
        json_int_t lo = json_integer_value(first);
        json_int_t hi = json_is_integer(end) ? json_integer_value(end) : lo;
        if (port >= lo && port <= hi)
            return true;
    }
    return false;
}

bool gate_allow_list_reaches(const json_t *sandbox, const char *host, int port)
{
    struct cidr h;
    if (host_block(host, &h) != 0)
        return false;
    json_t *egress = json_object_get(json_object_get(sandbox, "spec"), "egress");
    size_t i, j;
    json_t *entry, *e;
    json_array_foreach(json_object_get(egress, "allow"), i, entry)
    {
        struct cidr a;
        if (cidr_parse(json_string_value(json_object_get(entry, "cidr")), &a) != 0 ||
            !cidr_contains(&a, &h))
            continue;
        bool excepted = false;
        json_array_foreach(json_object_get(entry, "except"), j, e)
        {
            struct cidr x;
            if (cidr_parse(json_string_value(e), &x) == 0 && cidr_contains(&x, &h))
                excepted = true;
        }
        if (!excepted && ports_take(json_object_get(entry, "ports"), port))
            return true;
    }
    return false;
}

enum gate_choice gate_choose(const json_t *sandbox, const json_t *class_spec,
                             const struct gate_config *g)
{
    const char *want =
        json_string_value(json_object_get(json_object_get(class_spec, "egress"), "policyGate"));
    if (!g || !g->image || !g->image[0])
        return GATE_UNCONFIGURED;
    if (want && strcmp(want, "Disabled") == 0)
        return GATE_DISABLED;
    if (g->canary_host[0] && g->canary_port > 0 &&
        gate_allow_list_reaches(sandbox, g->canary_host, g->canary_port))
        return GATE_COVERED;
    return GATE_ADD;
}

json_t *gate_container(const struct gate_config *g, const json_t *class_spec,
                       const json_t *sandbox_container)
{
    const char *pull = json_string_value(json_object_get(class_spec, "imagePullPolicy"));
    char deadline[16];
    snprintf(deadline, sizeof(deadline), "%d", GATE_DEADLINE_S);
    return json_pack("{s:s, s:s, s:s, s:[s, s, s], s:O, s:s, s:s, s:O}", "name",
                     GATE_CONTAINER_NAME, "image", g->image, "imagePullPolicy",
                     pull ? pull : "IfNotPresent", "command", GATE_BINARY, "--deadline", deadline,
                     "resources", json_object_get(sandbox_container, "resources"),
                     "terminationMessagePath", "/dev/termination-log", "terminationMessagePolicy",
                     "FallbackToLogsOnError", "securityContext",
                     json_object_get(sandbox_container, "securityContext"));
}
