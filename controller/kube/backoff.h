// SPDX-License-Identifier: Apache-2.0
/* backoff.h - jittered exponential backoff arithmetic: pure functions, so
 * every delay is deterministic given the random draw. */
#ifndef KAGE_BACKOFF_H
#define KAGE_BACKOFF_H

#include <stdint.h>

/* Retries of one API request (transport failures, 429, 5xx). */
#define KUBE_RETRY_BASE_MS 250u
#define KUBE_RETRY_MAX_MS  30000u
/* A server's Retry-After is honoured up to this long (matches the cap of
 * kube_parse_retry_after). */
#define KUBE_RETRY_AFTER_MAX_MS 600000u

/*
 * Returns the delay before retry number `attempt` (0 = the first retry):
 * d = base_ms * 2^attempt, capped at max_ms without overflow for any attempt,
 * then "equal jitter": ceil(d/2) fixed plus jitter * floor(d/2), so the result
 * lies in [ceil(d/2), d]. jitter is the random draw in [0, 1]; values outside
 * (and NaN) are clamped. Returns 0 when base_ms or max_ms is 0.
 */
uint64_t backoff_delay_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, double jitter);

/*
 * Returns the delay before retrying an API request for the attempt-th time.
 * A server's Retry-After (retry_after_s >= 0) wins: the delay is that many
 * seconds plus up to one more second of jitter (never earlier than the
 * server asked), capped at KUBE_RETRY_AFTER_MAX_MS. Without one (-1), it is
 * backoff_delay_ms(attempt, KUBE_RETRY_BASE_MS, KUBE_RETRY_MAX_MS, jitter).
 */
uint64_t kube_retry_delay_ms(unsigned attempt, long retry_after_s, double jitter);

/*
 * Draws the next uniform double in [0, 1) from a splitmix64 generator whose
 * whole state is *state (any value is a valid seed, 0 included). Not for
 * secrets: it only spreads retries apart.
 */
double backoff_rand(uint64_t *state);

#endif
