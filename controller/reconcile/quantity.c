// SPDX-License-Identifier: Apache-2.0
/*
 * quantity.c - reads Kubernetes resource quantities as exact int64 milli
 * values. Works on the digits in place (no big numbers, no allocation) so
 * that no input, however long or extreme its exponent, can overflow.
 */
#include "reconcile/quantity.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

typedef unsigned __int128 u128;

/* Exponents are clamped here: beyond it any non-zero value is out of
 * range or rounds up to 1m, and the arithmetic below stays in int64. */
#define EXP_CLAMP 1000000000LL

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Reads the suffix at s (the whole rest of the string) into a power of two
 * (*shift) and a power of ten (*exp10). Returns 0 or -EINVAL.
 */
static int parse_suffix(const char *s, unsigned *shift, long long *exp10)
{
    static const char binary[] = "KMGTPE";
    static const struct {
        char c;
        int exp10;
    } decimal[] = {
        {'n', -9}, {'u', -6}, {'m', -3}, {'k', 3},  {'M', 6},
        {'G', 9},  {'T', 12}, {'P', 15}, {'E', 18},
    };

    *shift = 0;
    *exp10 = 0;
    if (s[0] == '\0')
        return 0;
    if (s[1] == 'i' && s[2] == '\0') {
        for (unsigned i = 0; binary[i]; i++) {
            if (s[0] == binary[i]) {
                *shift = 10 * (i + 1);
                return 0;
            }
        }
        return -EINVAL;
    }
    if (s[1] == '\0') {
        for (size_t i = 0; i < sizeof(decimal) / sizeof(decimal[0]); i++) {
            if (s[0] == decimal[i].c) {
                *exp10 = decimal[i].exp10;
                return 0;
            }
        }
        return -EINVAL;
    }
    /* "1E" is exa (above); "1E3" and "1e-3" are decimal exponents. */
    if (s[0] != 'e' && s[0] != 'E')
        return -EINVAL;
    s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!is_digit(*s))
        return -EINVAL;
    long long e = 0;
    for (; is_digit(*s); s++)
        if (e < EXP_CLAMP)
            e = e * 10 + (*s - '0');
    if (*s != '\0')
        return -EINVAL;
    *exp10 = neg ? -e : e;
    return 0;
}

int quantity_parse_milli(const char *s, int64_t *milli)
{
    if (s == NULL)
        return -EINVAL;

    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    const char *int_digits = p;
    while (is_digit(*p))
        p++;
    size_t int_len = (size_t)(p - int_digits);
    const char *frac_digits = p;
    size_t frac_len = 0;
    if (*p == '.') {
        frac_digits = ++p;
        while (is_digit(*p))
            p++;
        frac_len = (size_t)(p - frac_digits);
    }
    size_t n = int_len + frac_len;
    if (n == 0)
        return -EINVAL;

    unsigned shift;
    long long exp10;
    if (parse_suffix(p, &shift, &exp10) != 0)
        return -EINVAL;

    bool zero = true;
    for (size_t i = 0; i < n && zero; i++)
        zero = (i < int_len ? int_digits[i] : frac_digits[i - int_len]) == '0';
    if (zero) {
        *milli = 0;
        return 0;
    }

    /*
     * With D the integer spelt by all the digits, the value in milli is
     * D * 2^shift * 10^scale. The magnitude may reach 2^63 only when
     * negative.
     */
    const u128 limit = neg ? (u128)1 << 63 : ((u128)1 << 63) - 1;
    long long scale = exp10 + 3 - (long long)frac_len;
    u128 acc = 0;

    if (scale >= 0) {
        /* An integer: each step only grows it, so stop at the first excess. */
        for (size_t i = 0; i < n; i++) {
            char c = i < int_len ? int_digits[i] : frac_digits[i - int_len];
            acc = acc * 10 + (unsigned)(c - '0');
            if (acc > limit)
                return -ERANGE;
        }
        acc <<= shift; /* acc <= 2^63, shift <= 60: fits */
        if (acc > limit)
            return -ERANGE;
        for (long long k = 0; k < scale; k++) {
            acc *= 10;
            if (acc > limit)
                return -ERANGE;
        }
    } else {
        /*
         * Divide by 10^q: multiply D by 2^shift digit by digit from the
         * right (carry < 2^shift, so d * 2^shift + carry < 10 * 2^60 fits
         * a uint64); the q lowest digits of the product are the fraction,
         * the others the integer part, weighted by pow.
         */
        long long q = -scale;
        uint64_t carry = 0;
        bool sticky = false, pow_big = false;
        u128 pow = 1;
        for (size_t i = 0; i < n; i++) {
            char c = i < frac_len ? frac_digits[frac_len - 1 - i]
                                  : int_digits[int_len - 1 - (i - frac_len)];
            uint64_t t = ((uint64_t)(c - '0') << shift) + carry;
            unsigned digit = (unsigned)(t % 10);
            carry = t / 10;
            if ((long long)i < q) {
                sticky |= digit != 0;
                continue;
            }
            if (digit != 0) {
                if (pow_big)
                    return -ERANGE;
                acc += digit * pow;
                if (acc > limit)
                    return -ERANGE;
            }
            if (!pow_big) {
                pow *= 10;
                pow_big = pow > limit;
            }
        }
        if ((long long)n > q) {
            if (carry != 0) {
                if (pow_big)
                    return -ERANGE;
                acc += carry * pow;
                if (acc > limit)
                    return -ERANGE;
            }
        } else if (q - (long long)n >= 20) {
            sticky |= carry != 0; /* carry < 2^60 < 10^20 */
        } else {
            uint64_t div = 1;
            for (long long k = 0; k < q - (long long)n; k++)
                div *= 10;
            acc = carry / div;
            sticky |= carry % div != 0;
        }
        if (sticky) {
            acc += 1;
            if (acc > limit)
                return -ERANGE;
        }
    }

    *milli = neg ? (int64_t)(-(__int128)acc) : (int64_t)acc;
    return 0;
}

int quantity_cmp(const char *a, const char *b, int *out)
{
    int64_t ma, mb;
    int rc = quantity_parse_milli(a, &ma);
    if (rc == 0)
        rc = quantity_parse_milli(b, &mb);
    if (rc != 0)
        return rc;
    *out = ma < mb ? -1 : ma > mb;
    return 0;
}
