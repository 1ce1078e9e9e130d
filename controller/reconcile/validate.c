/*
 * validate.c - checks a Sandbox against the CRD's rules once more inside
 * the controller, reporting the first problem with its field path and a
 * message a person can act on. Reads the JSON tree only; allocates nothing.
 */
#include "reconcile/validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "reconcile/cidr.h"
#include "reconcile/quantity.h"

#define NAME_MAX_LEN      63
#define SUBDOMAIN_MAX_LEN 253
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

/* Quoted values in messages show at most this many bytes of the value. */
#define QUOTE_SHOWN 48
#define QUOTE_MAX   (QUOTE_SHOWN * 4 + 8)

typedef char field_t[VALIDATION_FIELD_MAX];

__attribute__((format(printf, 3, 4))) static int fail(struct validation_error *e, const char *field,
                                                      const char *fmt, ...)
{
    va_list ap;
    snprintf(e->field, sizeof(e->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* Writes a child's path into f (truncated when too long) and returns f. */
__attribute__((format(printf, 2, 3))) static const char *at(field_t f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f, sizeof(field_t), fmt, ap);
    va_end(ap);
    return f;
}

/*
 * Renders string v as a double-quoted C-style literal into q[QUOTE_MAX]:
 * quotes, backslashes and control bytes escaped, cut after QUOTE_SHOWN
 * bytes (on a UTF-8 character boundary) with "..." after the closing quote.
 */
static const char *quote(char *q, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), o = 0, i;

    q[o++] = '"';
    for (i = 0; i < len && i < QUOTE_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            q[o++] = '\\';
            q[o++] = (char)c;
        } else if (c == '\n') {
            memcpy(q + o, "\\n", 2);
            o += 2;
        } else if (c == '\t') {
            memcpy(q + o, "\\t", 2);
            o += 2;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(q + o, QUOTE_MAX - o, "\\x%02x", c);
        } else {
            q[o++] = (char)c;
        }
    }
    if (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) {
        /* Cut inside a character: drop its first bytes too. */
        while (o > 1 && ((unsigned char)q[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 1 && (unsigned char)q[o - 1] >= 0xC0)
            o--;
    }
    q[o++] = '"';
    if (i < len) {
        memcpy(q + o, "...", 3);
        o += 3;
    }
    q[o] = '\0';
    return q;
}

/* obj[key], or NULL when absent or JSON null. */
static const json_t *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Number of UTF-8 characters in s[0..len). */
static size_t chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

enum text_rule {
    TEXT_ANY,      /* anything but NUL (scripts, arguments, values) */
    TEXT_NO_CTRL,  /* no control characters either */
    TEXT_NO_SPACE, /* no whitespace or control characters */
};

/* Checks that v is a string of at most max characters under rule. */
static int check_text(struct validation_error *e, const char *f, const json_t *v, size_t max,
                      enum text_rule rule)
{
    if (!json_is_string(v))
        return fail(e, f, "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return fail(e, f, "must not contain NUL characters");
    for (size_t i = 0; i < len && rule != TEXT_ANY; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return fail(e, f, "must not contain control characters (found \\x%02x)", c);
        if (c == ' ' && rule == TEXT_NO_SPACE)
            return fail(e, f, "must not contain spaces");
    }
    size_t n = chars(s, len);
    if (n > max)
        return fail(e, f, "must be at most %zu characters long, not %zu", max, n);
    return 0;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A DNS-1123 label without its length limit: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool is_label(const char *s, size_t len)
{
    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Kubernetes' IsDNS1123Subdomain: labels joined by '.', at most 253 in all
 * (no per-label limit, as there). */
static bool is_subdomain(const char *s, size_t len)
{
    if (len == 0 || len > SUBDOMAIN_MAX_LEN)
        return false;
    for (size_t start = 0;;) {
        const char *dot = memchr(s + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - s) : len;
        if (!is_label(s + start, end - start))
            return false;
        if (!dot)
            return true;
        start = end + 1;
    }
}

static int check_subdomain(struct validation_error *e, const char *f, const json_t *v,
                           const char *example)
{
    char q[QUOTE_MAX];
    if (check_text(e, f, v, SUBDOMAIN_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (!is_subdomain(json_string_value(v), json_string_length(v)))
        return fail(e, f,
                    "must be a DNS subdomain: lowercase letters, digits, '-' and '.', each "
                    "part starting and ending with a letter or digit (e.g. \"%s\"), not %s",
                    example, quote(q, v));
    return 0;
}

/* A JSON integer in [min, max]; why (may be "") ends the range message. */
static int check_int(struct validation_error *e, const char *f, const json_t *v, long long min,
                     long long max, const char *why)
{
    if (!json_is_integer(v))
        return fail(e, f, "must be an integer");
    long long n = json_integer_value(v);
    if (n < min || n > max)
        return fail(e, f, "must be from %lld to %lld%s, not %lld", min, max, why, n);
    return 0;
}

static int check_bool(struct validation_error *e, const char *f, const json_t *v)
{
    return json_is_boolean(v) ? 0 : fail(e, f, "must be true or false");
}

/* v is an array of at most max items; returns its size or -1. */
static long check_array(struct validation_error *e, const char *f, const json_t *v, size_t max)
{
    if (!json_is_array(v))
        return fail(e, f, "must be an array");
    size_t n = json_array_size(v);
    if (n > max)
        return fail(e, f, "must have at most %zu items, not %zu", max, n);
    return (long)n;
}

static int check_object(struct validation_error *e, const char *f, const json_t *v)
{
    return json_is_object(v) ? 0 : fail(e, f, "must be an object");
}

/* True when string v is exactly one of the NULL-terminated words. */
static bool is_one_of(const json_t *v, const char *const *words)
{
    for (; *words; words++)
        if (json_string_length(v) == strlen(*words) && strcmp(json_string_value(v), *words) == 0)
            return true;
    return false;
}

static int check_string_array(struct validation_error *e, const char *f, const json_t *v)
{
    field_t g;
    long n = check_array(e, f, v, ARGV_MAX_ITEMS);
    for (long i = 0; i < n; i++)
        if (check_text(e, at(g, "%s[%ld]", f, i), json_array_get(v, (size_t)i), ARG_MAX_LEN,
                       TEXT_ANY))
            return -1;
    return n < 0 ? -1 : 0;
}

static int check_metadata(struct validation_error *e, const json_t *sandbox)
{
    char q[QUOTE_MAX];
    const json_t *meta = member(sandbox, "metadata");
    if (!meta)
        return fail(e, "metadata", "is required");
    if (check_object(e, "metadata", meta))
        return -1;
    const json_t *name = member(meta, "name");
    if (!name)
        return fail(e, "metadata.name", "is required");
    if (check_text(e, "metadata.name", name, NAME_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (!is_label(json_string_value(name), json_string_length(name)))
        return fail(e, "metadata.name",
                    "must be a DNS label: lowercase letters, digits and '-', starting and "
                    "ending with a letter or digit (e.g. \"agent-42\"), not %s",
                    quote(q, name));
    return 0;
}

static int check_env_ref(struct validation_error *e, const char *f, const json_t *ref)
{
    field_t g;
    char q[QUOTE_MAX];
    if (check_object(e, f, ref))
        return -1;
    const json_t *name = member(ref, "name");
    if (!name)
        return fail(e, at(g, "%s.name", f), "is required: the object to read the value from");
    if (check_subdomain(e, at(g, "%s.name", f), name, "creds"))
        return -1;
    const json_t *key = member(ref, "key");
    at(g, "%s.key", f);
    if (!key)
        return fail(e, g, "is required: the key of the value within the object");
    if (check_text(e, g, key, KEY_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    const char *k = json_string_value(key);
    size_t len = json_string_length(key);
    bool ok = len > 0 && strcmp(k, ".") != 0 && strncmp(k, "..", 2) != 0 &&
              strspn(k, "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
    if (!ok)
        return fail(e, g,
                    "must be a key of letters, digits, '-', '_' and '.', not \".\" or starting "
                    "with \"..\" (e.g. \"token\"), not %s",
                    quote(q, key));
    return 0;
}

static int check_env_item(struct validation_error *e, const json_t *env, size_t i)
{
    field_t f, g;
    char q[QUOTE_MAX];
    const json_t *item = json_array_get(env, i);
    if (check_object(e, at(f, "spec.env[%zu]", i), item))
        return -1;

    const json_t *name = member(item, "name");
    at(g, "spec.env[%zu].name", i);
    if (!name)
        return fail(e, g, "is required");
    if (check_text(e, g, name, ENV_NAME_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    const char *s = json_string_value(name);
    size_t len = json_string_length(name);
    bool ok = len > 0 && !(s[0] >= '0' && s[0] <= '9') &&
              strspn(s, "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
    if (!ok)
        return fail(e, g,
                    "must be letters, digits and '_', not starting with a digit (e.g. "
                    "\"API_TOKEN\"), not %s",
                    quote(q, name));
    for (size_t j = 0; j < i; j++) {
        /* Earlier items passed these checks already. */
        if (json_equal(member(json_array_get(env, j), "name"), name))
            return fail(e, g, "must be unique: %s is also spec.env[%zu].name", quote(q, name), j);
    }

    const json_t *value = member(item, "value");
    if (value && check_text(e, at(g, "spec.env[%zu].value", i), value, ENV_VALUE_MAX_LEN, TEXT_ANY))
        return -1;
    const json_t *from = member(item, "valueFrom");
    if (!from)
        return 0;
    at(g, "spec.env[%zu].valueFrom", i);
    if (check_object(e, g, from))
        return -1;
    if (value) /* as the CRD; a pod would also take valueFrom beside an empty value */
        return fail(e, g, "must not be set together with value: set one or the other");
    const json_t *secret = member(from, "secretKeyRef"), *config = member(from, "configMapKeyRef");
    if (!secret == !config)
        return fail(e, g, "must set exactly one of secretKeyRef or configMapKeyRef");
    if (secret)
        return check_env_ref(e, at(g, "spec.env[%zu].valueFrom.secretKeyRef", i), secret);
    return check_env_ref(e, at(g, "spec.env[%zu].valueFrom.configMapKeyRef", i), config);
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
            return fail(e, f, "must be greater than zero, not %lld", n);
        if (n > INT64_MAX / 1000)
            return fail(e, f, "is too large: %lld", n);
    } else if (json_is_string(v)) {
        if (check_text(e, f, v, QUANTITY_MAX_LEN, TEXT_ANY))
            return -1;
        int rc = quantity_parse_milli(json_string_value(v), &milli);
        if (rc == -ERANGE)
            return fail(e, f, "is too large: %s", quote(q, v));
        if (rc != 0)
            return fail(e, f, "must be a quantity such as \"%s\", not %s", example, quote(q, v));
        if (milli <= 0)
            return fail(e, f, "must be greater than zero, not %s", quote(q, v));
        /* Kubernetes would take "500m" of memory and round it up to a byte. */
        if (bytes && milli < 1000)
            return fail(e, f, "must be at least 1 byte (such as \"%s\"), not %s", example,
                        quote(q, v));
    } else {
        return fail(e, f, "must be a quantity string such as \"%s\" or an integer", example);
    }
    return 0;
}

static int check_resources(struct validation_error *e, const json_t *res)
{
    const json_t *v;
    if (check_object(e, "spec.resources", res))
        return -1;
    if ((v = member(res, "cpu")) && check_quantity(e, "spec.resources.cpu", v, false, "500m"))
        return -1;
    if ((v = member(res, "memory")) && check_quantity(e, "spec.resources.memory", v, true, "512Mi"))
        return -1;
    if ((v = member(res, "ephemeralStorage")) &&
        check_quantity(e, "spec.resources.ephemeralStorage", v, true, "2Gi"))
        return -1;
    return 0;
}

/* A CIDR string into *c; the message shows the kind of value wanted. */
static int check_cidr(struct validation_error *e, const char *f, const json_t *v, struct cidr *c)
{
    char q[QUOTE_MAX];
    if (check_text(e, f, v, CIDR_MAX_LEN, TEXT_ANY))
        return -1;
    if (cidr_parse(json_string_value(v), c) != 0)
        return fail(e, f, "must be a valid CIDR such as 203.0.113.0/24, not %s", quote(q, v));
    return 0;
}

static int check_port(struct validation_error *e, const char *f, const json_t *p)
{
    field_t g;
    char q[QUOTE_MAX];
    if (check_object(e, f, p))
        return -1;
    const json_t *port = member(p, "port"), *end = member(p, "endPort");
    const json_t *proto = member(p, "protocol");
    if (!port)
        return fail(e, at(g, "%s.port", f), "is required: the port (or first port) to allow");
    if (check_int(e, at(g, "%s.port", f), port, 1, 65535, ""))
        return -1;
    if (end) {
        long long first = json_integer_value(port);
        if (check_int(e, at(g, "%s.endPort", f), end, 1, 65535, ""))
            return -1;
        if (json_integer_value(end) < first)
            return fail(e, g, "must be at least port (%lld), not %lld", first,
                        json_integer_value(end));
    }
    if (proto) {
        static const char *const protocols[] = {"TCP", "UDP", "SCTP", NULL};
        if (!json_is_string(proto))
            return fail(e, at(g, "%s.protocol", f), "must be a string");
        if (!is_one_of(proto, protocols))
            return fail(e, at(g, "%s.protocol", f), "must be TCP, UDP or SCTP, not %s",
                        quote(q, proto));
    }
    return 0;
}

static int check_allow(struct validation_error *e, const char *f, const json_t *rule)
{
    field_t g;
    char q[QUOTE_MAX], net[CIDR_STRLEN];
    struct cidr block, inner;

    if (check_object(e, f, rule))
        return -1;
    const json_t *cidr = member(rule, "cidr");
    if (!cidr)
        return fail(e, at(g, "%s.cidr", f),
                    "is required: the block to allow, such as 203.0.113.0/24");
    if (check_cidr(e, at(g, "%s.cidr", f), cidr, &block))
        return -1;
    cidr_format(&block, net, sizeof(net));

    const json_t *except = member(rule, "except");
    if (except && check_array(e, at(g, "%s.except", f), except, EXCEPT_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; except && i < json_array_size(except); i++) {
        const json_t *x = json_array_get(except, i);
        if (check_cidr(e, at(g, "%s.except[%zu]", f, i), x, &inner))
            return -1;
        if (inner.family != block.family)
            return fail(e, g, "must be an %s block like the cidr %s, not %s",
                        block.family == AF_INET ? "IPv4" : "IPv6", net, quote(q, x));
        if (!cidr_strict_subset(&block, &inner))
            return fail(e, g, "must be a smaller block inside the cidr %s, not %s", net,
                        quote(q, x));
    }

    const json_t *ports = member(rule, "ports");
    if (ports && check_array(e, at(g, "%s.ports", f), ports, PORTS_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; ports && i < json_array_size(ports); i++)
        if (check_port(e, at(g, "%s.ports[%zu]", f, i), json_array_get(ports, i)))
            return -1;
    return 0;
}

static int check_egress(struct validation_error *e, const json_t *egress)
{
    field_t f;
    const json_t *v;
    if (check_object(e, "spec.egress", egress))
        return -1;
    if ((v = member(egress, "dns")) && check_bool(e, "spec.egress.dns", v))
        return -1;
    const json_t *allow = member(egress, "allow");
    if (allow && check_array(e, "spec.egress.allow", allow, ALLOW_MAX_ITEMS) < 0)
        return -1;
    for (size_t i = 0; allow && i < json_array_size(allow); i++)
        if (check_allow(e, at(f, "spec.egress.allow[%zu]", i), json_array_get(allow, i)))
            return -1;
    return 0;
}

static int check_lifetime(struct validation_error *e, const json_t *life)
{
    char q[QUOTE_MAX];
    const json_t *v;
    if (check_object(e, "spec.lifetime", life))
        return -1;
    if ((v = member(life, "ttlSeconds")) &&
        check_int(e, "spec.lifetime.ttlSeconds", v, 1, TTL_MAX_S, " seconds (one year)"))
        return -1;
    if ((v = member(life, "shutdownPolicy"))) {
        static const char *const policies[] = {"Delete", "Retain", NULL};
        if (!json_is_string(v))
            return fail(e, "spec.lifetime.shutdownPolicy", "must be a string");
        if (!is_one_of(v, policies))
            return fail(e, "spec.lifetime.shutdownPolicy", "must be Delete or Retain, not %s",
                        quote(q, v));
    }
    return 0;
}

static int check_security(struct validation_error *e, const json_t *sc)
{
    const json_t *v;
    if (check_object(e, "spec.securityContext", sc))
        return -1;
    if ((v = member(sc, "runAsUser")) && check_int(e, "spec.securityContext.runAsUser", v, 1,
                                                   ID_MAX, " (sandboxes never run as root)"))
        return -1;
    if ((v = member(sc, "runAsGroup")) && check_int(e, "spec.securityContext.runAsGroup", v, 1,
                                                    ID_MAX, " (sandboxes never run as root)"))
        return -1;
    return 0;
}

static int check_spec(struct validation_error *e, const json_t *spec)
{
    char q[QUOTE_MAX];
    const json_t *v;

    if ((v = member(spec, "sandboxClassName"))) {
        if (json_is_string(v) && json_string_length(v) == 0)
            return fail(e, "spec.sandboxClassName",
                        "must not be empty: name a SandboxClass, or leave the field out for "
                        "the default class");
        if (check_subdomain(e, "spec.sandboxClassName", v, "small"))
            return -1;
    }

    if (!(v = member(spec, "image")))
        return fail(e, "spec.image", "is required: the container image to run, such as %s",
                    IMAGE_EG);
    if (check_text(e, "spec.image", v, IMAGE_MAX_LEN, TEXT_NO_SPACE))
        return -1;
    if (json_string_length(v) == 0)
        return fail(e, "spec.image", "must not be empty: the container image to run, such as %s",
                    IMAGE_EG);
    for (const char *c = json_string_value(v); *c; c++)
        if ((unsigned char)*c > 0x7e)
            return fail(e, "spec.image", "must be printable ASCII (an image reference), not %s",
                        quote(q, v));

    if ((v = member(spec, "command")) && check_string_array(e, "spec.command", v))
        return -1;
    if ((v = member(spec, "args")) && check_string_array(e, "spec.args", v))
        return -1;
    if ((v = member(spec, "workingDir"))) {
        if (check_text(e, "spec.workingDir", v, PATH_MAX_LEN, TEXT_NO_CTRL))
            return -1;
        if (json_string_value(v)[0] != '/')
            return fail(e, "spec.workingDir",
                        "must be an absolute path such as /home/sandbox, not %s", quote(q, v));
    }

    if ((v = member(spec, "env"))) {
        if (check_array(e, "spec.env", v, ENV_MAX_ITEMS) < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (check_env_item(e, v, i))
                return -1;
    }

    if ((v = member(spec, "resources")) && check_resources(e, v))
        return -1;
    if ((v = member(spec, "egress")) && check_egress(e, v))
        return -1;
    if ((v = member(spec, "beforeScript")) &&
        check_text(e, "spec.beforeScript", v, SCRIPT_MAX_LEN, TEXT_ANY))
        return -1;
    if ((v = member(spec, "lifetime")) && check_lifetime(e, v))
        return -1;
    if ((v = member(spec, "paused")) && check_bool(e, "spec.paused", v))
        return -1;
    if ((v = member(spec, "securityContext")) && check_security(e, v))
        return -1;
    return 0;
}

int sandbox_validate(const json_t *sandbox, struct validation_error *err)
{
    memset(err, 0, sizeof(*err));
    if (!json_is_object(sandbox))
        return fail(err, "", "the Sandbox must be a JSON object");
    if (check_metadata(err, sandbox))
        return -1;
    const json_t *spec = member(sandbox, "spec");
    if (!spec)
        return fail(err, "spec", "is required");
    if (check_object(err, "spec", spec))
        return -1;
    return check_spec(err, spec);
}
