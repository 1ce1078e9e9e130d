// SPDX-License-Identifier: Apache-2.0
/* Unit tests for CIDR blocks: what parses (as Go's netip would), how host
 * bits and IPv6 text come out canonical, and containment both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "reconcile/cidr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct cidr parsed(const char *s)
{
    struct cidr c = {0};
    if (cidr_parse(s, &c) != 0)
        fail_msg("\"%s\" does not parse", s);
    return c;
}

static void canonical_text_of_valid_blocks(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int family;
        unsigned prefix;
        const char *canonical;
    } cases[] = {
        {"203.0.113.0/24", AF_INET, 24, "203.0.113.0/24"},
        {"0.0.0.0/0", AF_INET, 0, "0.0.0.0/0"},
        {"255.255.255.255/32", AF_INET, 32, "255.255.255.255/32"},
        {"169.254.0.0/16", AF_INET, 16, "169.254.0.0/16"},
        {"0.1.0.0/16", AF_INET, 16, "0.1.0.0/16"},
        {"2001:db8::/32", AF_INET6, 32, "2001:db8::/32"},
        {"2001:DB8:0:0:0:0:0:1/128", AF_INET6, 128, "2001:db8::1/128"},
        {"2001:0db8::/32", AF_INET6, 32, "2001:db8::/32"},
        {"::/0", AF_INET6, 0, "::/0"},
        {"::1/128", AF_INET6, 128, "::1/128"},
        {"1:0:0:0:0:0:0:0/16", AF_INET6, 16, "1::/16"},
        /* The longest zero run is compressed, the first one on a tie... */
        {"2001:db8:0:1:0:0:0:1/128", AF_INET6, 128, "2001:db8:0:1::1/128"},
        {"2001:db8:0:0:1:0:0:1/128", AF_INET6, 128, "2001:db8::1:0:0:1/128"},
        /* ...and never a single zero group. */
        {"2001:db8:1:0:1:1:1:1/128", AF_INET6, 128, "2001:db8:1:0:1:1:1:1/128"},
        {"64:ff9b::10.1.2.3/128", AF_INET6, 128, "64:ff9b::a01:203/128"},
        /* Not the deprecated IPv4-compatible "::1.2.3.4" form. */
        {"::102:304/128", AF_INET6, 128, "::102:304/128"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c = parsed(cases[i].in);
        char text[CIDR_STRLEN];
        assert_int_equal(c.family, cases[i].family);
        assert_int_equal(c.prefix, cases[i].prefix);
        assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
        assert_string_equal(text, cases[i].canonical);
        /* The canonical text reads back as the same block. */
        struct cidr again = parsed(text);
        assert_memory_equal(&again, &c, sizeof(c));
    }
}

static void host_bits_are_accepted_and_masked_off(void **state)
{
    (void)state;
    static const struct {
        const char *in, *network;
    } cases[] = {
        {"10.1.2.3/8", "10.0.0.0/8"},
        {"192.168.1.129/25", "192.168.1.128/25"},
        {"10.0.0.1/31", "10.0.0.0/31"},
        {"10.255.255.255/0", "0.0.0.0/0"},
        {"203.0.113.7/32", "203.0.113.7/32"},
        {"fe80::1/10", "fe80::/10"},
        {"2001:db8:ffff::1/33", "2001:db8:8000::/33"},
        {"64:ff9b::10.1.2.3/104", "64:ff9b::a00:0/104"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c = parsed(cases[i].in);
        char text[CIDR_STRLEN];
        assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
        assert_string_equal(text, cases[i].network);
    }
    struct cidr c = parsed("10.1.2.3/8");
    static const uint8_t net[16] = {10};
    assert_memory_equal(c.addr, net, sizeof(net));
}

static void malformed_blocks_are_refused(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "/",
        "/8",
        "10.0.0.0", /* the prefix is required */
        "10.0.0.0/",
        "2001:db8::",
        "10.0.0.0/33", /* prefix out of range */
        "10.0.0.0/1000",
        "2001:db8::/129",
        "10.0.0.0/-1", /* prefix: plain decimal only */
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/0x8",
        "10.0.0.0/8/8",
        "010.0.0.0/8", /* leading zeros in octets, as netip */
        "10.00.0.0/16",
        "10.0.0.01/32",
        "::ffff:010.1.2.3/128",
        "10.0.0/8", /* not four octets */
        "10.0.0.0.0/8",
        "10/8",
        "300.1.2.3/8", /* octet out of range */
        "256.0.0.0/8",
        "0x0a.0.0.0/8",
        "a.b.c.d/8",
        " 10.0.0.0/8", /* no surrounding whitespace */
        "10.0.0.0/8 ",
        "10.0.0.0/8\n",
        "10.0.0.0 /8",
        "2001:db8:::/32",
        "2001:db8::g/64",
        "12345::/16",
        "1:2:3:4:5:6:7:8:9/128",
        "fe80::1%eth0/64", /* zones are not CIDRs */
        "[::1]/128",
        "::ffff:1.2.3/128",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000/128",
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c = {.family = 99, .prefix = 77};
        if (cidr_parse(cases[i], &c) != -EINVAL)
            fail_msg("\"%s\" parsed", cases[i]);
        assert_int_equal(c.family, 99); /* untouched */
        assert_int_equal(c.prefix, 77);
    }
    struct cidr c;
    assert_int_equal(cidr_parse(NULL, &c), -EINVAL);
}

static void containment_and_strict_subsets(void **state)
{
    (void)state;
    static const struct {
        const char *outer, *inner;
        bool contains, strict;
    } cases[] = {
        {"10.0.0.0/8", "10.1.0.0/16", true, true},
        {"10.1.0.0/16", "10.0.0.0/8", false, false}, /* the other way round */
        {"10.0.0.0/8", "10.0.0.0/8", true, false},   /* itself: not strict */
        {"10.0.0.0/8", "10.1.2.3/8", true, false},   /* same network once masked */
        {"10.0.0.0/8", "11.0.0.0/16", false, false},
        {"10.0.0.0/8", "10.255.255.255/32", true, true},
        {"10.0.0.0/9", "10.127.0.0/16", true, true},
        {"10.0.0.0/9", "10.128.0.0/16", false, false},
        {"203.0.113.0/24", "203.0.113.7/32", true, true},
        {"203.0.113.0/24", "203.0.112.0/23", false, false},
        {"0.0.0.0/0", "198.51.100.0/24", true, true},
        {"0.0.0.0/0", "0.0.0.0/0", true, false},
        {"2001:db8::/32", "2001:db8:1::/48", true, true},
        {"2001:db8::/32", "2001:db9::/48", false, false},
        {"2001:db8::/32", "2001:db8::/32", true, false},
        {"::/0", "2001:db8::1/128", true, true},
        /* Families never mix, not even through IPv4-mapped addresses. */
        {"0.0.0.0/0", "::/0", false, false},
        {"::/0", "10.0.0.0/8", false, false},
        {"64:ff9b::/96", "10.0.0.0/8", false, false},
        {"10.0.0.0/8", "64:ff9b::a00:0/104", false, false},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr outer = parsed(cases[i].outer), inner = parsed(cases[i].inner);
        if (cidr_contains(&outer, &inner) != cases[i].contains ||
            cidr_strict_subset(&outer, &inner) != cases[i].strict)
            fail_msg("%s in %s: contains %d strict %d", cases[i].inner, cases[i].outer,
                     cidr_contains(&outer, &inner), cidr_strict_subset(&outer, &inner));
    }
}

static void format_never_overruns_its_buffer(void **state)
{
    (void)state;
    struct cidr c = parsed("10.0.0.0/8");
    char text[CIDR_STRLEN];
    memset(text, 'x', sizeof(text));
    assert_int_equal(cidr_format(&c, text, 11), 0); /* "10.0.0.0/8" and its NUL */
    assert_string_equal(text, "10.0.0.0/8");
    memset(text, 'x', sizeof(text));
    assert_int_equal(cidr_format(&c, text, 10), -ENOSPC);
    assert_string_equal(text, "");
    assert_int_equal(text[10], 'x');
    assert_int_equal(cidr_format(&c, text, 0), -ENOSPC);

    c = parsed("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
    assert_string_equal(text, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
}

static void format_refuses_what_parse_never_makes(void **state)
{
    (void)state;
    char text[CIDR_STRLEN] = "x";
    struct cidr c = {.family = AF_UNIX, .prefix = 8};
    assert_int_equal(cidr_format(&c, text, sizeof(text)), -EINVAL);
    assert_string_equal(text, "");
    c = (struct cidr){.family = AF_INET, .prefix = 33};
    assert_int_equal(cidr_format(&c, text, sizeof(text)), -EINVAL);
    c = (struct cidr){.family = AF_INET6, .prefix = 129};
    assert_int_equal(cidr_format(&c, text, sizeof(text)), -EINVAL);

    /* A hand-built block with host bits still prints as its network. */
    c = (struct cidr){.family = AF_INET, .addr = {192, 168, 7, 9}, .prefix = 16};
    assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
    assert_string_equal(text, "192.168.0.0/16");
}

/* Found by fuzz_cidr: a last hex group with a leading zero ("::0001")
 * went through the dotted-quad leading-zero check and was refused, though
 * netip (and so the CRD's isCIDR()) accepts it. */
static void ipv6_groups_with_leading_zeros_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canonical;
    } cases[] = {
        {"2001:db8::0001/128", "2001:db8::1/128"},
        {"fd00::0012/128", "fd00::12/128"},
        {"::00ff/128", "::ff/128"},
        {"2001:db8:0:0:0:0:0:0000/64", "2001:db8::/64"},
        {"0000:0000:0000:0000:0000:0000:0000:0001/128", "::1/128"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr c = parsed(cases[i].in);
        char text[CIDR_STRLEN];
        assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
        assert_string_equal(text, cases[i].canonical);
    }
    /* A dotted tail still may not have them. */
    struct cidr c;
    assert_int_equal(cidr_parse("64:ff9b::1.2.3.04/128", &c), -EINVAL);
    assert_int_equal(cidr_parse("64:ff9b::01.2.3.4/128", &c), -EINVAL);
}

/* An IPv4-mapped address names an IPv4 host in IPv6 text, out of reach of
 * every IPv4 deniedCIDRs entry; CEL's isCIDR() refuses them, and so does
 * the parser, whatever the spelling or prefix. The block around them
 * (::/0, ::/80) is not mapped and parses. */
static void ipv4_mapped_blocks_are_refused(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "::ffff:169.254.169.254/128",
        "::ffff:a9fe:a9fe/128",
        "::FFFF:A9FE:A9FE/128",
        "0:0:0:0:0:ffff:169.254.169.254/128",
        "0000:0000:0000:0000:0000:ffff:a9fe:a9fe/128",
        "::ffff:0.0.0.0/96",
        "::ffff:10.0.0.0/104",
        "::ffff:1.2.3.4/64",
        "::ffff:0:0/0",
    };
    struct cidr c = {.family = AF_INET, .prefix = 7};
    for (size_t i = 0; i < N(cases); i++)
        if (cidr_parse(cases[i], &c) != -EAFNOSUPPORT)
            fail_msg("%s parsed, or was refused for another reason", cases[i]);
    assert_int_equal(c.family, AF_INET); /* untouched */
    assert_int_equal(c.prefix, 7);
    c = parsed("::/80");
    assert_int_equal(c.prefix, 80);
    c = parsed("::fffe:a9fe:a9fe/128");
    assert_int_equal(c.prefix, 128);

    /* Printing a hand-built mapped block still says what it is. */
    char text[CIDR_STRLEN];
    c = (struct cidr){.family = AF_INET6,
                      .addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3},
                      .prefix = 128};
    assert_int_equal(cidr_format(&c, text, sizeof(text)), 0);
    assert_string_equal(text, "::ffff:10.1.2.3/128");
}

/* An IPv4 block under the NAT64 well-known prefix: what a gateway turns
 * back into that IPv4 block. */
static void nat64_embeds_ipv4_blocks(void **state)
{
    (void)state;
    static const struct {
        const char *v4, *v6;
    } cases[] = {
        {"169.254.0.0/16", "64:ff9b::a9fe:0/112"},
        {"169.254.169.254/32", "64:ff9b::a9fe:a9fe/128"},
        {"10.0.0.0/8", "64:ff9b::a00:0/104"},
        {"0.0.0.0/0", "64:ff9b::/96"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct cidr v4 = parsed(cases[i].v4), v6;
        char text[CIDR_STRLEN];
        assert_int_equal(cidr_nat64(&v4, &v6), 0);
        assert_int_equal(cidr_format(&v6, text, sizeof(text)), 0);
        assert_string_equal(text, cases[i].v6);
        assert_true(cidr_contains(&v6, &v6));
    }
    struct cidr v6 = parsed("2001:db8::/32"), out = {.prefix = 3};
    assert_int_equal(cidr_nat64(&v6, &out), -EINVAL);
    assert_int_equal(out.prefix, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_text_of_valid_blocks),
        cmocka_unit_test(host_bits_are_accepted_and_masked_off),
        cmocka_unit_test(malformed_blocks_are_refused),
        cmocka_unit_test(containment_and_strict_subsets),
        cmocka_unit_test(format_never_overruns_its_buffer),
        cmocka_unit_test(format_refuses_what_parse_never_makes),
        cmocka_unit_test(ipv6_groups_with_leading_zeros_parse),
        cmocka_unit_test(ipv4_mapped_blocks_are_refused),
        cmocka_unit_test(nat64_embeds_ipv4_blocks),
    };
    return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
