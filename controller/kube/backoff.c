// SPDX-License-Identifier: Apache-2.0
/*
 * backoff.c - the delays between retries: exponential growth with a cap and
 * equal jitter, plus a tiny seeded PRNG so the loop code needs no rand().
 */
#include "kube/backoff.h"

uint64_t backoff_delay_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, double jitter)
{
    if (base_ms == 0 || max_ms == 0)
        return 0;

    /* base << attempt stays <= max exactly when base <= max >> attempt, which
     * is checked before shifting, so nothing overflows. */
    uint64_t d = max_ms;
    if (attempt < 64 && base_ms <= (max_ms >> attempt))
        d = base_ms << attempt;

    if (!(jitter > 0.0)) /* also catches NaN */
        jitter = 0.0;
    if (jitter > 1.0)
        jitter = 1.0;

    /* Equal jitter: half the delay is always waited, so a failing peer is
     * never retried in a hot loop, and the other half is spread so that many
     * clients failing together do not come back together. */
    uint64_t half = d / 2;
    uint64_t fixed = d - half;
    uint64_t spread = (uint64_t)(jitter * (double)half);
    if (spread > half) /* (double)half may round up */
        spread = half;
    return fixed + spread;
}

uint64_t kube_retry_delay_ms(unsigned attempt, long retry_after_s, double jitter)
{
    if (retry_after_s < 0)
        return backoff_delay_ms(attempt, KUBE_RETRY_BASE_MS, KUBE_RETRY_MAX_MS, jitter);

    if (!(jitter > 0.0))
        jitter = 0.0;
    if (jitter > 1.0)
        jitter = 1.0;
    if ((unsigned long)retry_after_s >= KUBE_RETRY_AFTER_MAX_MS / 1000)
        return KUBE_RETRY_AFTER_MAX_MS;
    uint64_t ms = (uint64_t)retry_after_s * 1000 + (uint64_t)(jitter * 1000.0);
    return ms < KUBE_RETRY_AFTER_MAX_MS ? ms : KUBE_RETRY_AFTER_MAX_MS;
}

double backoff_rand(uint64_t *state)
{
    /* splitmix64 (Steele, Lea, Flood 2014): one add and two multiply-xorshift
     * rounds; every seed gives a full-period sequence. */
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    /* The top 53 bits fill a double's mantissa exactly: uniform in [0, 1). */
    return (double)(z >> 11) * 0x1.0p-53;
}
