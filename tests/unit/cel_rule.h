// SPDX-License-Identifier: Apache-2.0
/* cel_rule.h - for unit tests: reads the small part of CEL that the CRDs'
 * x-kubernetes-validations rules use, and tells whether a string passes a
 * rule so read. Pure: no I/O; regexes are POSIX ones translated from RE2. */
#ifndef KAGE_TEST_CEL_RULE_H
#define KAGE_TEST_CEL_RULE_H

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CEL_MAX_ATOMS 8

/*
 * A rule is read when it is an OR of ANDs of these atoms on one subject
 * (self, or a field below it such as self.metadata.name), each perhaps
 * negated with '!':
 *   S.matches('re')  S.startsWith('s')  S.contains('s')  S != 's'  S != n
 *   size(S) <= n  S.size() <= n  S.size() == n
 * cel_read() refuses anything else (isCIDR, quantities, comparisons of two
 * fields, has()); a caller that reads whole-rule forms of its own does so
 * first.
 */
enum cel_op {
    CEL_MATCHES,
    CEL_STARTS,
    CEL_CONTAINS,
    CEL_NE,
    CEL_SIZE_LE,
    CEL_SIZE_EQ
};

struct cel_atom {
    enum cel_op op;
    bool neg, or_before; /* or_before: starts a new alternative */
    bool is_num;
    long long num;
    char text[256];
    regex_t re;
    bool has_re;
};

struct cel_rule {
    struct cel_atom atom[CEL_MAX_ATOMS];
    int n;
    char subject[64]; /* "" for self, else the path below self */
};

static size_t cel_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static const char *cel__space(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    return p;
}

/* A CEL string literal '...' at *p into out; false on escapes CEL would
 * read otherwise than a plain backslash. */
static bool cel__string(const char **p, char *out, size_t outlen)
{
    const char *s = *p;
    size_t o = 0;
    if (*s++ != '\'')
        return false;
    for (; *s && *s != '\''; s++) {
        if (*s == '\\') {
            s++;
            if (*s != '\\' && *s != '\'' && *s != '"')
                return false;
        }
        if (o + 1 >= outlen)
            return false;
        out[o++] = *s;
    }
    if (*s != '\'')
        return false;
    out[o] = '\0';
    *p = s + 1;
    return true;
}

/* The subject "self" or "self.a.b" at *p; stops before a method call. */
static bool cel__subject(const char **p, char *out, size_t outlen)
{
    const char *s = *p;
    if (strncmp(s, "self", 4) != 0)
        return false;
    s += 4;
    out[0] = '\0';
    while (*s == '.') {
        size_t n = strspn(s + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        if (n == 0 || s[1 + n] == '(')
            break;
        size_t used = strlen(out);
        if (used + n + 2 > outlen)
            return false;
        snprintf(out + used, outlen - used, "%s%.*s", used ? "." : "", (int)n, s + 1);
        s += 1 + n;
    }
    *p = s;
    return true;
}

static bool cel__number(const char **p, long long *out)
{
    char *end;
    *out = strtoll(*p, &end, 10);
    if (end == *p)
        return false;
    *p = end;
    return true;
}

/*
 * RE2 (CEL's matches) to POSIX extended syntax, for what the CRD writes:
 * \xHH, \s, \d and escaped punctuation. False for anything else.
 */
static bool cel__posix(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    bool bracket = false;
#define PUT(str)                  \
    do {                          \
        size_t l_ = strlen(str);  \
        if (o + l_ >= outlen)     \
            return false;         \
        memcpy(out + o, str, l_); \
        o += l_;                  \
    } while (0)
    for (const char *s = in; *s; s++) {
        char one[2] = {*s, '\0'};
        if (*s == '\\') {
            char d = *++s;
            if (d == 'x' && s[1] && s[2]) {
                char hex[3] = {s[1], s[2], '\0'};
                char *end;
                long b = strtol(hex, &end, 16);
                if (*end)
                    return false;
                /* No value here holds a NUL: \x00 may stand for \x01. */
                one[0] = (char)(b == 0 ? 1 : b);
                s += 2;
                PUT(one);
            } else if (d == 's') {
                PUT(bracket ? "[:space:]" : "[[:space:]]");
            } else if (d == 'd') {
                PUT(bracket ? "0-9" : "[0-9]");
            } else if (d && strchr(".\\()[]{}*+?|^$/-", d)) {
                if (bracket && strchr("]^-", d))
                    return false;
                one[0] = d;
                PUT(bracket || d == '/' ? "" : "\\");
                PUT(one);
            } else {
                return false;
            }
        } else {
            if (*s == '[' && !bracket)
                bracket = true;
            else if (*s == ']' && bracket && s[-1] != '[')
                bracket = false;
            PUT(one);
        }
    }
#undef PUT
    out[o] = '\0';
    return !bracket;
}

/* One atom, the whole of text; the subject it is about goes to subject. */
static bool cel__atom(const char *text, struct cel_atom *a, char *subject, size_t sublen)
{
    const char *p = cel__space(text);
    memset(a, 0, sizeof(*a));
    if (*p == '!' && p[1] != '=') {
        a->neg = true;
        p = cel__space(p + 1);
    }
    if (strncmp(p, "size(", 5) == 0) {
        p += 5;
        if (!cel__subject(&p, subject, sublen) || *p++ != ')')
            return false;
        p = cel__space(p);
        if (strncmp(p, "<=", 2) != 0)
            return false;
        p = cel__space(p + 2);
        a->op = CEL_SIZE_LE;
        a->is_num = true;
        if (!cel__number(&p, &a->num))
            return false;
        return *cel__space(p) == '\0';
    }
    if (!cel__subject(&p, subject, sublen))
        return false;
    static const struct {
        const char *call;
        enum cel_op op;
    } calls[] = {
        {".matches(", CEL_MATCHES}, {".startsWith(", CEL_STARTS}, {".contains(", CEL_CONTAINS}};
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        size_t l = strlen(calls[i].call);
        if (strncmp(p, calls[i].call, l) == 0) {
            p += l;
            a->op = calls[i].op;
            if (!cel__string(&p, a->text, sizeof(a->text)) || *p++ != ')')
                return false;
            return *cel__space(p) == '\0';
        }
    }
    if (strncmp(p, ".size()", 7) == 0) {
        p = cel__space(p + 7);
        if (strncmp(p, "<=", 2) == 0)
            a->op = CEL_SIZE_LE;
        else if (strncmp(p, "==", 2) == 0)
            a->op = CEL_SIZE_EQ;
        else
            return false;
        p = cel__space(p + 2);
        a->is_num = true;
        return cel__number(&p, &a->num) && *cel__space(p) == '\0';
    }
    p = cel__space(p);
    if (strncmp(p, "!=", 2) != 0)
        return false;
    p = cel__space(p + 2);
    a->op = CEL_NE;
    if (*p == '\'') {
        if (!cel__string(&p, a->text, sizeof(a->text)))
            return false;
    } else {
        a->is_num = true;
        if (!cel__number(&p, &a->num))
            return false;
    }
    return *cel__space(p) == '\0';
}

/* Reads rule text into *r, split at its top-level "||" and "&&"; false
 * for what it cannot read, or atoms about different subjects. Either way
 * cel_rule_free releases r. */
static bool cel_read(const char *text, struct cel_rule *r)
{
    char buf[1024];
    if (strlen(text) >= sizeof(buf))
        return false;
    memset(r, 0, sizeof(*r));
    const char *start = text;
    bool or_next = false, quoted = false;
    int depth = 0;
    for (const char *p = text;; p++) {
        bool end = *p == '\0';
        bool split = !quoted && depth == 0 &&
                     (end || (p[0] == '|' && p[1] == '|') || (p[0] == '&' && p[1] == '&'));
        if (split) {
            char subject[64];
            size_t len = (size_t)(p - start);
            if (r->n == CEL_MAX_ATOMS)
                return false;
            memcpy(buf, start, len);
            buf[len] = '\0';
            struct cel_atom *a = &r->atom[r->n];
            if (!cel__atom(buf, a, subject, sizeof(subject)))
                return false;
            a->or_before = or_next;
            if (r->n++ == 0)
                snprintf(r->subject, sizeof(r->subject), "%s", subject);
            else if (strcmp(r->subject, subject) != 0)
                return false;
            if (end)
                break;
            or_next = p[0] == '|';
            start = p + 2;
            p++;
            continue;
        }
        if (*p == '\\' && quoted && p[1])
            p++;
        else if (*p == '\'')
            quoted = !quoted;
        else if (!quoted && *p == '(')
            depth++;
        else if (!quoted && *p == ')')
            depth--;
    }
    for (int i = 0; i < r->n; i++) {
        struct cel_atom *a = &r->atom[i];
        char posix[512];
        if (a->op != CEL_MATCHES)
            continue;
        if (!cel__posix(a->text, posix, sizeof(posix)) ||
            regcomp(&a->re, posix, REG_EXTENDED | REG_NOSUB) != 0)
            return false;
        a->has_re = true;
    }
    return true;
}

static void cel_rule_free(struct cel_rule *r)
{
    for (int i = 0; i < r->n; i++)
        if (r->atom[i].has_re)
            regfree(&r->atom[i].re);
    r->n = 0;
}

static bool cel__atom_holds(const struct cel_atom *a, const char *s)
{
    bool v = false;
    switch (a->op) {
    case CEL_MATCHES:
        v = regexec(&a->re, s, 0, NULL, 0) == 0;
        break;
    case CEL_STARTS:
        v = strncmp(s, a->text, strlen(a->text)) == 0;
        break;
    case CEL_CONTAINS:
        v = strstr(s, a->text) != NULL;
        break;
    case CEL_NE:
        v = a->is_num || strcmp(s, a->text) != 0;
        break;
    case CEL_SIZE_LE:
        v = (long long)cel_chars(s) <= a->num;
        break;
    case CEL_SIZE_EQ:
        v = (long long)cel_chars(s) == a->num;
        break;
    }
    return v != a->neg;
}

/* Whether string s passes rule r (as read by cel_read): an OR of AND groups. */
static bool cel_holds(const struct cel_rule *r, const char *s)
{
    bool any = false, all = true;
    for (int i = 0; i < r->n; i++) {
        if (r->atom[i].or_before) {
            any = any || all;
            all = true;
        }
        all = all && cel__atom_holds(&r->atom[i], s);
    }
    return any || all;
}

#endif
