// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_quantity.c - quantity_parse_milli against a slow reference that
 * does the same arithmetic on decimal digit strings, plus round trips
 * through "<milli>m" text and quantity_cmp's ordering. The input is one or
 * two quantities, one per line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/quantity.h"

#include "fuzz.h"

#define DIGITS_MAX 512

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A decimal number as little-endian digits. */
struct big {
    uint8_t d[DIGITS_MAX + 64];
    size_t n;
};

static void big_double(struct big *b)
{
    unsigned carry = 0;
    for (size_t i = 0; i < b->n; i++) {
        unsigned t = b->d[i] * 2u + carry;
        b->d[i] = (uint8_t)(t % 10);
        carry = t / 10;
    }
    if (carry)
        b->d[b->n++] = (uint8_t)carry;
}

/* The same grammar and value as quantity.h describes, computed the long way. */
static int ref_parse(const char *s, int64_t *out)
{
    static const char binary[] = "KMGTPE";
    static const char decimal[] = "numkMGTPE";
    static const int decimal_exp[] = {-9, -6, -3, 3, 6, 9, 12, 15, 18};
    const char *p = s;
    struct big b;
    char digits[DIGITS_MAX];
    size_t nd = 0, frac = 0;

    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    for (; is_digit(*p); p++) {
        if (nd == DIGITS_MAX)
            return -2; /* beyond the reference: skip */
        digits[nd++] = *p;
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++) {
            if (nd == DIGITS_MAX)
                return -2;
            digits[nd++] = *p;
            frac++;
        }
    }
    if (nd == 0)
        return -EINVAL;

    unsigned shift = 0;
    long long e10 = 0;
    size_t rest = strlen(p);
    if (rest == 0) {
        /* no suffix */
    } else if (rest == 2 && p[1] == 'i' && p[0] && strchr(binary, p[0])) {
        shift = 10u * (unsigned)(strchr(binary, p[0]) - binary + 1);
    } else if (rest == 1 && strchr(decimal, p[0])) {
        e10 = decimal_exp[strchr(decimal, p[0]) - decimal];
    } else if (p[0] == 'e' || p[0] == 'E') {
        const char *q = p + 1;
        bool eneg = *q == '-';
        if (*q == '-' || *q == '+')
            q++;
        if (!is_digit(*q))
            return -EINVAL;
        for (; is_digit(*q); q++)
            if (e10 < 1000000000000LL)
                e10 = e10 * 10 + (*q - '0');
        if (*q)
            return -EINVAL;
        if (eneg)
            e10 = -e10;
    } else {
        return -EINVAL;
    }

    bool zero = true;
    for (size_t i = 0; i < nd; i++)
        zero &= digits[i] == '0';
    if (zero) {
        *out = 0;
        return 0;
    }

    b.n = nd;
    for (size_t i = 0; i < nd; i++)
        b.d[i] = (uint8_t)(digits[nd - 1 - i] - '0');
    for (unsigned i = 0; i < shift; i++)
        big_double(&b);

    /* value in milli = b * 10^pw, rounded up in magnitude */
    long long pw = e10 + 3 - (long long)frac;
    unsigned __int128 v = 0;
    const unsigned __int128 limit =
        neg ? (unsigned __int128)1 << 63 : ((unsigned __int128)1 << 63) - 1;
    while (b.n > 0 && b.d[b.n - 1] == 0)
        b.n--;
    if (pw >= 0) {
        if (pw > 40)
            return -ERANGE;
        if (b.n + (size_t)pw > 20)
            return -ERANGE;
        for (size_t i = b.n; i-- > 0;)
            v = v * 10 + b.d[i];
        for (long long k = 0; k < pw; k++)
            v *= 10;
    } else {
        size_t q = -pw > (long long)b.n ? b.n : (size_t)-pw;
        bool sticky = false;
        for (size_t i = 0; i < q; i++)
            sticky |= b.d[i] != 0;
        if (b.n - q > 20)
            return -ERANGE;
        for (size_t i = b.n; i-- > q;)
            v = v * 10 + b.d[i];
        v += sticky;
    }
    if (v > limit)
        return -ERANGE;
    *out = neg ? (int64_t)(-(__int128)v) : (int64_t)v;
    return 0;
}

/* Parses s both ways and insists they agree; returns the parse result. */
static int parse_checked(const char *s, int64_t *milli)
{
    int64_t got = 0x5a5a5a5a, want = 0x5a5a5a5a;
    int rc = quantity_parse_milli(s, &got);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
    if (rc != 0)
        FUZZ_CHECK(got == 0x5a5a5a5a); /* written only on success */
    int ref = ref_parse(s, &want);
    if (ref != -2) {
        if (rc != ref || (rc == 0 && got != want))
            fprintf(stderr, "quantity \"%s\": got %d/%lld, reference %d/%lld\n", s, rc,
                    (long long)got, ref, (long long)want);
        FUZZ_CHECK(rc == ref);
        FUZZ_CHECK(rc != 0 || got == want);
    }
    if (rc == 0) {
        /* "<milli>m" reads back as the same value, and so does an exact
         * whole number of units. */
        char text[40];
        int64_t back;
        snprintf(text, sizeof(text), "%lldm", (long long)got);
        FUZZ_CHECK(quantity_parse_milli(text, &back) == 0 && back == got);
        if (got % 1000 == 0) {
            snprintf(text, sizeof(text), "%lld", (long long)(got / 1000));
            FUZZ_CHECK(quantity_parse_milli(text, &back) == 0 && back == got);
        }
        *milli = got;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t alen = nl ? (size_t)(nl - data) : size;
    char *a = fuzz_dup0(data, alen);
    char *b = nl ? fuzz_dup0(nl + 1, size - alen - 1) : fuzz_dup0(data, alen);
    char *cut = strchr(b, '\n');
    if (cut)
        *cut = '\0';

    int64_t ma = 0, mb = 0;
    int ra = parse_checked(a, &ma), rb = parse_checked(b, &mb);

    int ab = 7, ba = 7;
    int rc = quantity_cmp(a, b, &ab);
    FUZZ_CHECK(rc == (ra ? ra : rb));
    if (rc == 0) {
        FUZZ_CHECK(quantity_cmp(b, a, &ba) == 0);
        FUZZ_CHECK(ab == (ma < mb ? -1 : ma > mb) && ba == -ab);
    } else {
        FUZZ_CHECK(ab == 7);
    }
    int self = 7;
    if (ra == 0)
        FUZZ_CHECK(quantity_cmp(a, a, &self) == 0 && self == 0);

    free(a);
    free(b);
    return 0;
}
