// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_cidr.c - cidr_parse against inet_pton (whose glibc rules for
 * addresses are Go netip's: no octet with a leading zero, no zone), the
 * canonical text round trip, containment against a bit-by-bit reference,
 * and cidr_format on raw structs and short buffers. The input is two CIDRs
 * on two lines, then raw bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "reconcile/cidr.h"

#include "fuzz.h"

/* What cidr_parse should say of s: "addr/prefix", prefix decimal 0..32 or
 * 0..128 without sign or leading zero, addr what inet_pton takes for the
 * family its colons say. */
static int ref_parse(const char *s, struct cidr *out)
{
    const char *slash = strchr(s, '/');
    char addr[128];
    if (!slash || slash == s || (size_t)(slash - s) >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    const char *p = slash + 1;
    size_t n = strlen(p);
    if (n == 0 || n > 3 || strspn(p, "0123456789") != n || (p[0] == '0' && n > 1))
        return -EINVAL;
    unsigned prefix = (unsigned)strtoul(p, NULL, 10);
    memset(out, 0, sizeof(*out));
    out->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, addr, out->addr) != 1)
        return -EINVAL;
    if (prefix > (out->family == AF_INET ? 32u : 128u))
        return -EINVAL;
    /* IPv4-mapped (::ffff:0:0/96) is refused, as the CRD's isCIDR() does. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (out->family == AF_INET6 && memcmp(out->addr, mapped, sizeof(mapped)) == 0)
        return -EAFNOSUPPORT;
    out->prefix = prefix;
    return 0;
}

static bool bit(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

static bool ref_contains(const struct cidr *outer, const struct cidr *inner)
{
    if (outer->family != inner->family || inner->prefix < outer->prefix)
        return false;
    for (unsigned i = 0; i < outer->prefix; i++)
        if (bit(outer->addr, i) != bit(inner->addr, i))
            return false;
    return true;
}

static bool same(const struct cidr *a, const struct cidr *b)
{
    return a->family == b->family && a->prefix == b->prefix &&
           memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* Parses s and checks everything that follows from a block; returns 0 when
 * it parsed. */
static int parse_checked(const char *s, struct cidr *c)
{
    struct cidr ref, untouched;
    memset(c, 0xa5, sizeof(*c));
    memcpy(&untouched, c, sizeof(untouched));
    int rc = cidr_parse(s, c);
    int want = ref_parse(s, &ref);
    if (rc != want)
        fprintf(stderr, "cidr \"%s\": cidr_parse %d, reference %d\n", s, rc, want);
    FUZZ_CHECK(rc == want);
    if (rc != 0) {
        FUZZ_CHECK((rc == -EINVAL || rc == -EAFNOSUPPORT) &&
                   memcmp(c, &untouched, sizeof(*c)) == 0);
        return rc;
    }
    size_t bytes = c->family == AF_INET ? 4 : 16;
    FUZZ_CHECK(c->family == ref.family && c->prefix == ref.prefix);
    /* The network: the reference address with host bits (and the unused
     * tail of an IPv4 address) zero. */
    for (unsigned i = 0; i < 128; i++)
        FUZZ_CHECK(bit(c->addr, i) == (i < c->prefix && i < bytes * 8 && bit(ref.addr, i)));

    /* It contains itself, not strictly, and the address it was written with. */
    FUZZ_CHECK(cidr_contains(c, c) && !cidr_strict_subset(c, c));
    FUZZ_CHECK(ref_contains(c, &ref) && cidr_contains(c, &ref));

    /* Canonical text: parses back to the same block and prints the same. */
    char text[CIDR_STRLEN], again[CIDR_STRLEN];
    struct cidr back;
    FUZZ_CHECK(cidr_format(c, text, sizeof(text)) == 0);
    if (cidr_parse(text, &back) != 0 || !same(c, &back))
        fprintf(stderr, "cidr \"%s\": canonical \"%s\" does not read back\n", s, text);
    FUZZ_CHECK(cidr_parse(text, &back) == 0 && same(c, &back));
    FUZZ_CHECK(cidr_format(&back, again, sizeof(again)) == 0 && strcmp(text, again) == 0);
    FUZZ_CHECK(strchr(text, '/') && strlen(text) < CIDR_STRLEN);
    for (const char *p = text; *p; p++)
        FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    return 0;
}

/* cidr_format into a buffer of exactly outlen bytes. */
static void format_short(const struct cidr *c, size_t outlen)
{
    char full[CIDR_STRLEN];
    int frc = cidr_format(c, full, sizeof(full));
    char *out = malloc(outlen ? outlen : 1);
    FUZZ_CHECK(out != NULL);
    int rc = cidr_format(c, out, outlen);
    if (frc != 0) {
        FUZZ_CHECK(rc == frc && (outlen == 0 || out[0] == '\0'));
    } else if (strlen(full) < outlen) {
        FUZZ_CHECK(rc == 0 && strcmp(out, full) == 0);
    } else {
        FUZZ_CHECK(rc == -ENOSPC && (outlen == 0 || out[0] == '\0'));
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl1 = memchr(data, '\n', size);
    size_t l1 = nl1 ? (size_t)(nl1 - data) : size;
    const uint8_t *rest = nl1 ? nl1 + 1 : data + size;
    size_t rest_len = size - (size_t)(rest - data);
    const uint8_t *nl2 = memchr(rest, '\n', rest_len);
    size_t l2 = nl2 ? (size_t)(nl2 - rest) : rest_len;
    const uint8_t *raw = nl2 ? nl2 + 1 : rest + rest_len;
    size_t raw_len = size - (size_t)(raw - data);

    char *s1 = fuzz_dup0(data, l1), *s2 = fuzz_dup0(rest, l2);
    struct cidr a, b;
    int ra = parse_checked(s1, &a), rb = parse_checked(s2, &b);
    if (ra == 0 && rb == 0) {
        bool ab = cidr_contains(&a, &b), ba = cidr_contains(&b, &a);
        FUZZ_CHECK(ab == ref_contains(&a, &b) && ba == ref_contains(&b, &a));
        FUZZ_CHECK((ab && ba) == same(&a, &b));
        FUZZ_CHECK(cidr_strict_subset(&a, &b) == (ab && b.prefix > a.prefix));
        FUZZ_CHECK(cidr_strict_subset(&b, &a) == (ba && a.prefix > b.prefix));
    }
    if (ra == 0)
        format_short(&a, raw_len ? raw[0] % (CIDR_STRLEN + 1) : 0);

    /* A struct as a careless caller might fill it: any family, prefix and
     * host bits. Its text, when it has one, is its network's. */
    if (raw_len >= 19) {
        struct cidr c;
        static const int families[4] = {AF_INET, AF_INET6, AF_UNSPEC, AF_UNIX};
        c.family = families[raw[0] & 3];
        c.prefix = raw[1] <= 200 ? raw[1] : 0xffffffffu - raw[1];
        memcpy(c.addr, raw + 2, 16);
        char text[CIDR_STRLEN];
        int rc = cidr_format(&c, text, sizeof(text));
        unsigned bits = c.family == AF_INET ? 32 : c.family == AF_INET6 ? 128 : 0;
        FUZZ_CHECK((rc == 0) == (bits && c.prefix <= bits));
        /* Its network in ::ffff:0:0/96 prints as "::ffff:a.b.c.d/p", which
         * the parser refuses as the CRD does. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        bool in_mapped = c.family == AF_INET6 && c.prefix >= 96 && c.prefix <= 128 &&
                         memcmp(c.addr, mapped, sizeof(mapped)) == 0;
        if (rc == 0 && in_mapped) {
            struct cidr back;
            FUZZ_CHECK(strncmp(text, "::ffff:", 7) == 0);
            FUZZ_CHECK(cidr_parse(text, &back) == -EAFNOSUPPORT);
        } else if (rc == 0) {
            struct cidr back;
            FUZZ_CHECK(cidr_parse(text, &back) == 0);
            FUZZ_CHECK(back.family == c.family && back.prefix == c.prefix);
            FUZZ_CHECK(ref_contains(&back, &c) && cidr_contains(&back, &c));
        } else {
            FUZZ_CHECK(rc == -EINVAL && text[0] == '\0');
        }
        format_short(&c, raw[18] % (CIDR_STRLEN + 1));
    }
    free(s1);
    free(s2);
    return 0;
}
