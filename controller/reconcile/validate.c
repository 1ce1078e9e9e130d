// SPDX-License-Identifier: Apache-2.0
/*
 * validate.c - checks a Sandbox against the CRD's rules once more inside
 * the controller, reporting the first problem with its field path and a
 * message a person can act on: which fields a Sandbox has and their limits;
 * validate_field.c checks each one. Reads the JSON tree only; allocates
 * nothing.
 */
#include "reconcile/validate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "reconcile/cidr.h"
#include "reconcile/quantity.h"
#include "reconcile/validate_field.h"

/* The CRD's limits (crds/sandboxes.kage.dev.yaml); test_schema.c fails
 * when the two differ. */
#define NAME_MAX_LEN      63
#define IMAGE_MAX_LEN     1024
#define QUANTITY_MAX_LEN  64
#define CIDR_MAX_LEN      43 /* "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" */
#define ARGV_MAX_ITEMS    64
#define ARG_MAX_LEN       4096
#define PATH_MAX_LEN      4096
#define ENV_MAX_ITEMS     128
#define ENV_NAME_MAX_LEN  256
#define ENV_VALUE_MAX_LEN 32768
#define KEY_MAX_LEN       253
#define ALLOW_MAX_ITEMS   64
#define EXCEPT_MAX_ITEMS  32
#define PORTS_MAX_ITEMS   32
#define SCRIPT_MAX_LEN    16384
#define TTL_MAX_S         31536000 /* one year */
#define ID_MAX            2147483647
#define IMAGE_EG          "python:3.12-slim"

static int check_string_array(struct validation_error *e, const char *f, const json_t *v)
{
    field_t g;
    long n = validate__array(e, f, v, ARGV_MAX_ITEMS);
    for (long i = 0; i < n; i++)
        if (validate__text(e, validate__at(g, "%s[%ld]", f, i), json_array_get(v, (size_t)i),
                           ARG_MAX_LEN, TEXT_ANY))
            return -1;
    return n < 0 ? -1 : 0;
}

static int check_metadata(struct validation_error *e, const json_t *sandbox)
{
    char q[QUOTE_MAX];
    const json_t *meta = validate__member(sandbox, "metadata");
    if (!meta)
        return validate__fail(e, "metadata", "is required");
    if (validate__object(e, "metadata", meta))
        return -1;
    const json_t *name = validate__member(meta, "name");
    if (!name)
        return validate__fail(e, "metadata.name", "is required");
    if (validate__text(e, "metadata.name", name, NAME_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (!validate__is_label(json_string_value(name), json_string_length(name)))
        return validate__fail(
            e, "metadata.name",
            "must be a DNS label: lowercase letters, digits and '-', starting and "
            "ending with a letter or digit (e.g. \"agent-42\"), not %s",
            validate__quote(q, name));
    return 0;
}

static int check_env_ref(struct validation_error *e, const char *f, const json_t *ref)
{
    field_t g;
    char q[QUOTE_MAX];
    if (validate__object(e, f, ref))
        return -1;
    const json_t *name = validate__member(ref, "name");
    if (!name)
        return validate__fail(e, validate__at(g, "%s.name", f),
                              "is required: the object to read the value from");
    if (validate__subdomain(e, validate__at(g, "%s.name", f), name, "creds"))
        return -1;
    const json_t *key = validate__member(ref, "key");
    validate__at(g, "%s.key", f);
    if (!key)
        return validate__fail(e, g, "is required: the key of the value within the object");
    if (validate__text(e, g, key, KEY_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    const char *k = json_string_value(key);
    size_t len = json_string_length(key);
    bool ok = len > 0 && strcmp(k, ".") != 0 && strncmp(k, "..", 2) != 0 &&
              strspn(k, "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
    if (!ok)
        return validate__fail(
            e, g,
            "must be a key of letters, digits, '-', '_' and '.', not \".\" or starting "
            "with \"..\" (e.g. \"token\"), not %s",
            validate__quote(q, key));
    return 0;
}

static int check_env_item(struct validation_error *e, const json_t *env, size_t i)
{
    field_t f, g;
    char q[QUOTE_MAX];
    const json_t *item = json_array_get(env, i);
    if (validate__object(e, validate__at(f, "spec.env[%zu]", i), item))
        return -1;

    const json_t *name = validate__member(item, "name");
    validate__at(g, "spec.env[%zu].name", i);
    if (!name)
        return validate__fail(e, g, "is required");
    if (validate__text(e, g, name, ENV_NAME_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    const char *s = json_string_value(name);
    size_t len = json_string_length(name);
    bool ok = len > 0 && !(s[0] >= '0' && s[0] <= '9') &&
              strspn(s, "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
    if (!ok)
        return validate__fail(e, g,
                              "must be letters, digits and '_', not starting with a digit (e.g. "
                              "\"API_TOKEN\"), not %s",
                              validate__quote(q, name));
    for (size_t j = 0; j < i; j++) {
        /* Earlier items passed these checks already. */
        if (json_equal(validate__member(json_array_get(env, j), "name"), name))
            return validate__fail(e, g, "must be unique: %s is also spec.env[%zu].name",
                                  validate__quote(q, name), j);
    }

    const json_t *value = validate__member(item, "value");
    if (value && validate__text(e, validate__at(g, "spec.env[%zu].value", i), value,
                                ENV_VALUE_MAX_LEN, TEXT_ANY))
        return -1;
    const json_t *from = validate__member(item, "valueFrom");
    if (!from)
        return 0;
    validate__at(g, "spec.env[%zu].valueFrom", i);
    if (validate__object(e, g, from))
        return -1;
    if (value) /* as the CRD; a pod would also take valueFrom beside an empty value */
        return validate__fail(e, g, "must not be set together with value: set one or the other");
    const json_t *secret = validate__member(from, "secretKeyRef"),
                 *config = validate__member(from, "configMapKeyRef");
    if (!secret == !config)
        return validate__fail(e, g, "must set exactly one of secretKeyRef or configMapKeyRef");
    if (secret)
        return check_env_ref(e, validate__at(g, "spec.env[%zu].valueFrom.secretKeyRef", i), secret);
    return check_env_ref(e, validate__at(g, "spec.env[%zu].valueFrom.configMapKeyRef", i), config);
}

/* A quantity above zero, and of at least one byte when bytes; example is
 * a good value for the field. */
static int check_quantity(struct validation_error *e, const char *f, const json_t *v, bool bytes,
                          const char *example)
{
    char q[QUOTE_MAX];
    int64_t milli;

    if (json_is_integer(v)) {
        long long n = json_integer_value(v);
        if (n <= 0)
            return validate__fail(e, f, "must be greater than zero, not %lld", n);
        if (n > INT64_MAX / 1000)
            return validate__fail(e, f, "is too large: %lld", n);
    } else if (json_is_string(v)) {
        if (validate__text(e, f, v, QUANTITY_MAX_LEN, TEXT_ANY))
            return -1;
        int rc = quantity_parse_milli(json_string_value(v), &milli);
        if (rc == -ERANGE)
            return validate__fail(e, f, "is too large: %s", validate__quote(q, v));
        if (rc != 0)
            return validate__fail(e, f, "must be a quantity such as \"%s\", not %s", example,
                                  validate__quote(q, v));
        if (milli <= 0)
            return validate__fail(e, f, "must be greater than zero, not %s", validate__quote(q, v));
        /* Kubernetes would take "500m" of memory and round it up to a byte. */
        if (bytes && milli < 1000)
            return validate__fail(e, f, "must be at least 1 byte (such as \"%s\"), not %s", example,
                                  validate__quote(q, v));
    } else {
        return validate__fail(e, f, "must be a quantity string such as \"%s\" or an integer",
                              example);
    }
    return 0;
}

static int check_resources(struct validation_error *e, const json_t *res)
{
    const json_t *v;
    if (validate__object(e, "spec.resources", res))
        return -1;
    if ((v = validate__member(res, "cpu")) &&
        check_quantity(e, "spec.resources.cpu", v, false, "500m"))
        return -1;
    if ((v = validate__member(res, "memory")) &&
        check_quantity(e, "spec.resources.memory", v, true, "512Mi"))
        return -1;
    if ((v = validate__member(res, "ephemeralStorage")) &&
        check_quantity(e, "spec.resources.ephemeralStorage", v, true, "2Gi"))
        return -1;
    return 0;
}

/* A CIDR string into *c; the message shows the kind of value wanted. */
static int check_cidr(struct validation_error *e, const char *f, const json_t *v, struct cidr *c)
{
    char q[QUOTE_MAX];
    if (validate__text(e, f, v, CIDR_MAX_LEN, TEXT_ANY))
        return -1;
    int rc = cidr_parse(json_string_value(v), c);
    if (rc == -EAFNOSUPPORT)
        return validate__fail(e, f,
                              "must not be an IPv4-mapped IPv6 block (::ffff:0:0/96), not %s: "
                              "write the IPv4 block itself",
                              validate__quote(q, v));
    if (rc != 0)
        return validate__fail(e, f, "must be a valid CIDR such as 203.0.113.0/24, not %s",
                              validate__quote(q, v));
    return 0;
}

static int check_port(struct validation_error *e, const char *f, const json_t *p)
{
    field_t g;
    char q[QUOTE_MAX];
    if (validate__object(e, f, p))
        return -1;
    const json_t *port = validate__member(p, "port"), *end = validate__member(p, "endPort");
    const json_t *proto = validate__member(p, "protocol");
    if (!port)
        return validate__fail(e, validate__at(g, "%s.port", f),
                              "is required: the port (or first port) to allow");
    if (validate__int(e, validate__at(g, "%s.port", f), port, 1, 65535, ""))
        return -1;
    if (end) {
        long long first = json_integer_value(port);
        if (validate__int(e, validate__at(g, "%s.endPort", f), end, 1, 65535, ""))
            return -1;
        if (json_integer_value(end) < first)
            return validate__fail(e, g, "must be at least port (%lld), not %lld", first,
                                  json_integer_value(end));
    }
    if (proto) {
        static const char *const protocols[] = {"TCP", "UDP", "SCTP", NULL};
        if (!json_is_string(proto))
            return validate__fail(e, validate__at(g, "%s.protocol", f), "must be a string");
        if (!validate__is_one_of(proto, protocols))
            return validate__fail(e, validate__at(g, "%s.protocol", f),
                                  "must be TCP, UDP or SCTP, not %s", validate__quote(q, proto));
    }
    return 0;
}

static int check_allow(struct validation_error *e, const char *f, const json_t *rule)
{
    field_t g;
    char q[QUOTE_MAX], net[CIDR_STRLEN];
    struct cidr block, inner;

    if (validate__object(e, f, rule))
        return -1;
    const json_t *cidr = validate__member(rule, "cidr");
    if (!cidr)
        return validate__fail(e, validate__at(g, "%s.cidr", f),
                              "is required: the block to allow, such as 203.0.113.0/24");
    if (check_cidr(e, validate__at(g, "%s.cidr", f), cidr, &block))
        return -1;
    cidr_format(&block, net, sizeof(net));

    const json_t *except = validate__member(rule, "except");
    if (except && validate__array(e, validate__at(g, "%s.except", f), except, EXCEPT_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; except && i < json_array_size(except); i++) {
        const json_t *x = json_array_get(except, i);
        if (check_cidr(e, validate__at(g, "%s.except[%zu]", f, i), x, &inner))
            return -1;
        /* The canonical text tells the family: IPv6 always has a ':',
         * IPv4 never (no AF_INET, and no <sys/socket.h>, needed here). */
        if (inner.family != block.family)
            return validate__fail(e, g, "must be an %s block like the cidr %s, not %s",
                                  strchr(net, ':') ? "IPv6" : "IPv4", net, validate__quote(q, x));
        if (!cidr_strict_subset(&block, &inner))
            return validate__fail(e, g, "must be a smaller block inside the cidr %s, not %s", net,
                                  validate__quote(q, x));
    }

    const json_t *ports = validate__member(rule, "ports");
    if (ports && validate__array(e, validate__at(g, "%s.ports", f), ports, PORTS_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; ports && i < json_array_size(ports); i++)
        if (check_port(e, validate__at(g, "%s.ports[%zu]", f, i), json_array_get(ports, i)))
            return -1;
    return 0;
}

static int check_egress(struct validation_error *e, const json_t *egress)
{
    field_t f;
    const json_t *v;
    if (validate__object(e, "spec.egress", egress))
        return -1;
    if ((v = validate__member(egress, "dns")) && validate__bool(e, "spec.egress.dns", v))
        return -1;
    const json_t *allow = validate__member(egress, "allow");
    if (allow && validate__array(e, "spec.egress.allow", allow, ALLOW_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; allow && i < json_array_size(allow); i++)
        if (check_allow(e, validate__at(f, "spec.egress.allow[%zu]", i), json_array_get(allow, i)))
            return -1;
    return 0;
}

static int check_lifetime(struct validation_error *e, const json_t *life)
{
    char q[QUOTE_MAX];
    const json_t *v;
    if (validate__object(e, "spec.lifetime", life))
        return -1;
    if ((v = validate__member(life, "ttlSeconds")) &&
        validate__int(e, "spec.lifetime.ttlSeconds", v, 1, TTL_MAX_S, " seconds (one year)"))
        return -1;
    if ((v = validate__member(life, "shutdownPolicy"))) {
        static const char *const policies[] = {"Delete", "Retain", NULL};
        if (!json_is_string(v))
            return validate__fail(e, "spec.lifetime.shutdownPolicy", "must be a string");
        if (!validate__is_one_of(v, policies))
            return validate__fail(e, "spec.lifetime.shutdownPolicy",
                                  "must be Delete or Retain, not %s", validate__quote(q, v));
    }
    return 0;
}

static int check_security(struct validation_error *e, const json_t *sc)
{
    const json_t *v;
    if (validate__object(e, "spec.securityContext", sc))
        return -1;
    if ((v = validate__member(sc, "runAsUser")) &&
        validate__int(e, "spec.securityContext.runAsUser", v, 1, ID_MAX,
                      " (sandboxes never run as root)"))
        return -1;
    if ((v = validate__member(sc, "runAsGroup")) &&
        validate__int(e, "spec.securityContext.runAsGroup", v, 1, ID_MAX,
                      " (sandboxes never run as root)"))
        return -1;
    return 0;
}

static int check_spec(struct validation_error *e, const json_t *spec)
{
    char q[QUOTE_MAX];
    const json_t *v;

    if ((v = validate__member(spec, "sandboxClassName"))) {
        if (json_is_string(v) && json_string_length(v) == 0)
            return validate__fail(
                e, "spec.sandboxClassName",
                "must not be empty: name a SandboxClass, or leave the field out for "
                "the default class");
        if (validate__subdomain(e, "spec.sandboxClassName", v, "small"))
            return -1;
    }

    if (!(v = validate__member(spec, "image")))
        return validate__fail(e, "spec.image",
                              "is required: the container image to run, such as %s", IMAGE_EG);
    if (validate__text(e, "spec.image", v, IMAGE_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (json_string_length(v) == 0)
        return validate__fail(
            e, "spec.image", "must not be empty: the container image to run, such as %s", IMAGE_EG);
    for (const char *c = json_string_value(v); *c; c++)
        if ((unsigned char)*c > 0x7e)
            return validate__fail(e, "spec.image",
                                  "must be printable ASCII (an image reference), not %s",
                                  validate__quote(q, v));

    if ((v = validate__member(spec, "command")) && check_string_array(e, "spec.command", v))
        return -1;
    if ((v = validate__member(spec, "args")) && check_string_array(e, "spec.args", v))
        return -1;
    if ((v = validate__member(spec, "imagePullPolicy"))) {
        static const char *const pulls[] = {"Always", "IfNotPresent", "Never", NULL};
        if (!json_is_string(v))
            return validate__fail(e, "spec.imagePullPolicy", "must be a string");
        if (!validate__is_one_of(v, pulls))
            return validate__fail(e, "spec.imagePullPolicy",
                                  "must be Always, IfNotPresent or Never, not %s",
                                  validate__quote(q, v));
    }
    if ((v = validate__member(spec, "workingDir"))) {
        if (validate__text(e, "spec.workingDir", v, PATH_MAX_LEN, TEXT_NO_CTRL))
            return -1;
        if (json_string_value(v)[0] != '/')
            return validate__fail(e, "spec.workingDir",
                                  "must be an absolute path such as /home/sandbox, not %s",
                                  validate__quote(q, v));
    }

    if ((v = validate__member(spec, "env"))) {
        if (validate__array(e, "spec.env", v, ENV_MAX_ITEMS) < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (check_env_item(e, v, i))
                return -1;
    }

    if ((v = validate__member(spec, "resources")) && check_resources(e, v))
        return -1;
    if ((v = validate__member(spec, "egress")) && check_egress(e, v))
        return -1;
    if ((v = validate__member(spec, "beforeScript")) &&
        validate__text(e, "spec.beforeScript", v, SCRIPT_MAX_LEN, TEXT_ANY))
        return -1;
    if ((v = validate__member(spec, "lifetime")) && check_lifetime(e, v))
        return -1;
    if ((v = validate__member(spec, "paused")) && validate__bool(e, "spec.paused", v))
        return -1;
    if ((v = validate__member(spec, "securityContext")) && check_security(e, v))
        return -1;
    return 0;
}

int sandbox_validate(const json_t *sandbox, struct validation_error *err)
{
    memset(err, 0, sizeof(*err));
    if (!json_is_object(sandbox))
        return validate__fail(err, "", "the Sandbox must be a JSON object");
    if (check_metadata(err, sandbox))
        return -1;
    const json_t *spec = validate__member(sandbox, "spec");
    if (!spec)
        return validate__fail(err, "spec", "is required");
    if (validate__object(err, "spec", spec))
        return -1;
    return check_spec(err, spec);
}
