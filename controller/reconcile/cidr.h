// SPDX-License-Identifier: Apache-2.0
/* cidr.h - IPv4/IPv6 CIDR blocks as NetworkPolicy ipBlocks use them:
 * strict parsing, containment, canonical text. Pure: no I/O, no allocation. */
#ifndef KAGE_CIDR_H
#define KAGE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the longest canonical CIDR text and its NUL
 * ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" is 43 characters). */
#define CIDR_STRLEN 64

struct cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address, host bits zero; IPv4 uses addr[0..4) */
    unsigned prefix;  /* 0..32 (IPv4) or 0..128 (IPv6) */
};

/*
 * Parses "a.b.c.d/n" (n 0..32) or an IPv6 "x:...:y/n" (n 0..128) into
 * *out, as the CRD's CEL isCIDR() accepts them (Go's netip.ParsePrefix,
 * then no IPv4-mapped address): the prefix length is required, decimal,
 * without sign or leading zeros; IPv4 octets with leading zeros
 * ("010.0.0.0/8") are refused, as are zones ("fe80::1%eth0/64") and any
 * surrounding whitespace. An address in ::ffff:0:0/96 (IPv4-mapped,
 * "::ffff:169.254.169.254/128", "::ffff:a9fe:a9fe/128") is refused: it
 * names IPv4 hosts in IPv6 text, where no IPv4 deniedCIDRs entry would
 * be compared with it. Host bits may be set ("10.1.2.3/8", as Kubernetes
 * accepts for ipBlock.cidr); they are masked off in out, so out is always
 * the network (10.0.0.0/8).
 * Returns 0; -EAFNOSUPPORT for an IPv4-mapped block; -EINVAL for anything
 * else refused (*out untouched either way).
 */
int cidr_parse(const char *s, struct cidr *out);

/*
 * True when every address of inner lies in outer: same family, inner's
 * prefix at least outer's, and inner's network inside outer's. A block
 * contains itself.
 */
bool cidr_contains(const struct cidr *outer, const struct cidr *inner);

/*
 * True when inner lies in outer and is smaller than it (a longer prefix):
 * what Kubernetes requires of each ipBlock.except entry against its cidr.
 */
bool cidr_strict_subset(const struct cidr *outer, const struct cidr *inner);

/*
 * The block an IPv4 block v4 becomes under the NAT64 well-known prefix
 * 64:ff9b::/96 (RFC 6052): 64:ff9b::a.b.c.d/(96 + n). A NAT64 gateway
 * turns IPv6 traffic to it into IPv4 traffic to v4. Returns 0, or -EINVAL
 * when v4 is not IPv4 (*out untouched).
 */
int cidr_nat64(const struct cidr *v4, struct cidr *out);

/*
 * Writes the canonical text of c's network (host bits masked off, should a
 * caller have set any) into out[outlen]: dotted quad for IPv4;
 * for IPv6 the RFC 5952 form Go's netip prints (lowercase, no leading
 * zeros, the longest run of two or more zero groups as "::", the first
 * such run on a tie, "::ffff:a.b.c.d" for IPv4-mapped addresses); then
 * "/prefix". CIDR_STRLEN bytes always suffice. Returns 0; -EINVAL for a
 * family other than AF_INET/AF_INET6 or a prefix too long for it; -ENOSPC
 * when outlen is too small. On failure out holds "" (when outlen > 0).
 */
int cidr_format(const struct cidr *c, char *out, size_t outlen);

#endif
