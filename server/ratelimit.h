/*
 * Token buckets keyed by short strings ("ip:127.0.0.1", "user:jan"), for login attempts and other
 * things a peer must not do too often.
 *
 * Each key has a bucket of `limit` tokens that refills continuously at `limit` tokens per
 * `window_ms`; an attempt takes one token or is refused with the time until one is back. The
 * table holds at most max_keys buckets: a new key beyond that evicts the least recently used one.
 * An evicted bucket forgets its debt, so an attacker with many keys can free one victim's key;
 * pair a per-account limit with a per-address one for that reason. Time is passed in by the
 * caller, so tests control it. Not thread-safe: one table per thread (the loop's).
 */
#ifndef OV_RATELIMIT_H
#define OV_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Longer keys are shortened to a prefix plus a hash of the whole key. */
#define OV_RATELIMIT_KEY_MAX      96
#define OV_RATELIMIT_DEFAULT_KEYS 4096

typedef struct ov_ratelimit ov_ratelimit;

/* max_keys: 0 = OV_RATELIMIT_DEFAULT_KEYS; at most 1<<20. *out owned by the caller
 * (ov_ratelimit_free). Errors: OV_EINVAL, OV_ENOMEM. */
int ov_ratelimit_new(size_t max_keys, ov_ratelimit **out);
void ov_ratelimit_free(ov_ratelimit *rl);

/* Takes one token from key's bucket at time now_ms (any monotonic milliseconds; time going
 * backwards counts as no time passing). Returns OV_OK, or OV_ELIMIT and, if retry_after_ms is not
 * NULL, the milliseconds until a token is available (≥ 1). OV_EINVAL for limit 0 or window 0. */
int ov_ratelimit_take(ov_ratelimit *rl, const char *key, uint32_t limit, uint64_t window_ms,
                      uint64_t now_ms, uint64_t *retry_after_ms);

/* Buckets currently held (≤ max_keys). */
size_t ov_ratelimit_count(const ov_ratelimit *rl);

#endif
