// SPDX-License-Identifier: Apache-2.0
/*
 * cidr.c - parses, compares and prints CIDR blocks. Parsing follows the
 * API server's CEL isCIDR() (Go's netip, IPv4-mapped addresses refused), so
 * a block the CRD lets through is one the controller reads the same way,
 * and nothing more.
 */
#include "reconcile/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Zeroes the bits of addr past the first prefix ones. */
static void mask_host_bits(uint8_t *addr, size_t len, unsigned prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned first = (unsigned)i * 8;
        if (prefix <= first)
            addr[i] = 0;
        else if (prefix < first + 8)
            addr[i] &= (uint8_t)(0xff << (first + 8 - prefix));
    }
}

/* True when the dotted-quad text at s has an octet with a leading zero
 * ("010"), which inet_aton would read as octal and netip refuses. */
static bool octet_has_leading_zero(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((p == s || p[-1] == '.') && p[0] == '0' && p[1] >= '0' && p[1] <= '9')
            return true;
    return false;
}

int cidr_parse(const char *s, struct cidr *out)
{
    if (s == NULL)
        return -EINVAL;
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s)
        return -EINVAL;

    char text[INET6_ADDRSTRLEN];
    size_t alen = (size_t)(slash - s);
    if (alen >= sizeof(text))
        return -EINVAL;
    memcpy(text, s, alen);
    text[alen] = '\0';

    /* The prefix: 1 to 3 decimal digits, "0" or without a leading zero. */
    const char *p = slash + 1;
    size_t plen = strspn(p, "0123456789");
    if (plen == 0 || plen > 3 || p[plen] != '\0' || (p[0] == '0' && plen > 1))
        return -EINVAL;
    unsigned prefix = 0;
    for (size_t i = 0; i < plen; i++)
        prefix = prefix * 10 + (unsigned)(p[i] - '0');

    struct cidr c;
    memset(&c, 0, sizeof(c));
    const char *colon = strrchr(text, ':');
    c.family = colon ? AF_INET6 : AF_INET;
    /* Also the "::ffff:1.2.3.4" tail; hex groups ("::0001") may have
     * leading zeros, so an IPv6 tail is checked only when dotted. */
    const char *quad = colon ? colon + 1 : text;
    if (strchr(quad, '.') && octet_has_leading_zero(quad))
        return -EINVAL;
    if (inet_pton(c.family, text, c.addr) != 1)
        return -EINVAL;
    size_t bytes = c.family == AF_INET ? 4 : 16;
    if (prefix > bytes * 8)
        return -EINVAL;
    /* Checked on the address as written, before masking, as CEL does:
     * "::ffff:1.2.3.4/64" is refused, "::/0" is not. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c.family == AF_INET6 && memcmp(c.addr, mapped, sizeof(mapped)) == 0)
        return -EAFNOSUPPORT;
    c.prefix = prefix;
    mask_host_bits(c.addr, bytes, prefix);
    *out = c;
    return 0;
}

bool cidr_contains(const struct cidr *outer, const struct cidr *inner)
{
    if (outer->family != inner->family || inner->prefix < outer->prefix)
        return false;
    size_t bytes = outer->family == AF_INET ? 4 : 16;
    if (outer->prefix > bytes * 8)
        return false;
    uint8_t net[16];
    memcpy(net, inner->addr, bytes);
    mask_host_bits(net, bytes, outer->prefix);
    return memcmp(net, outer->addr, bytes) == 0;
}

bool cidr_strict_subset(const struct cidr *outer, const struct cidr *inner)
{
    return inner->prefix > outer->prefix && cidr_contains(outer, inner);
}

int cidr_nat64(const struct cidr *v4, struct cidr *out)
{
    static const uint8_t wkp[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (v4->family != AF_INET || v4->prefix > 32)
        return -EINVAL;
    struct cidr c;
    memset(&c, 0, sizeof(c));
    c.family = AF_INET6;
    memcpy(c.addr, wkp, sizeof(wkp));
    memcpy(c.addr + 12, v4->addr, 4);
    c.prefix = 96 + v4->prefix;
    mask_host_bits(c.addr, 16, c.prefix);
    *out = c;
    return 0;
}

/* Writes the RFC 5952 text of a 16-byte address into buf[CIDR_STRLEN]. */
static void format_ipv6(const uint8_t *a, char *buf)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
        snprintf(buf, CIDR_STRLEN, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return;
    }

    unsigned group[8];
    for (int i = 0; i < 8; i++)
        group[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    /* The longest run of zero groups, if at least two long. */
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && group[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }

    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            o += (size_t)snprintf(buf + o, CIDR_STRLEN - o, "::");
            i += best_len - 1;
            continue;
        }
        bool sep = i > 0 && i != best + best_len;
        o += (size_t)snprintf(buf + o, CIDR_STRLEN - o, "%s%x", sep ? ":" : "", group[i]);
    }
}

int cidr_format(const struct cidr *c, char *out, size_t outlen)
{
    char addr[CIDR_STRLEN];
    uint8_t net[16];
    if (outlen > 0)
        out[0] = '\0';
    memcpy(net, c->addr, sizeof(net));
    if (c->family == AF_INET && c->prefix <= 32) {
        mask_host_bits(net, 4, c->prefix);
        snprintf(addr, sizeof(addr), "%u.%u.%u.%u", net[0], net[1], net[2], net[3]);
    } else if (c->family == AF_INET6 && c->prefix <= 128) {
        mask_host_bits(net, 16, c->prefix);
        format_ipv6(net, addr);
    } else {
        return -EINVAL;
    }

    int n = snprintf(out, outlen, "%s/%u", addr, c->prefix);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -ENOSPC;
    }
    return 0;
}
