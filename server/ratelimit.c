/*
 * Token-bucket table for rate limits (see ratelimit.h).
 *
 * All memory is allocated up front: max_keys entries, a chained hash index over them and an LRU
 * list threaded through the same entries by index. Nothing a peer sends can make the table grow;
 * a new key when the table is full reuses the least recently used entry. Chains are bounded by
 * max_keys and the hash is seeded per table, so chosen keys cannot make lookups quadratic in
 * practice.
 */
#include "server/ratelimit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/error.h"

#define NONE UINT32_MAX

typedef struct {
    char key[OV_RATELIMIT_KEY_MAX + 1];
    uint64_t hash;
    double tokens;
    uint64_t last_ms;
    uint32_t chain; /* next entry in the same hash slot */
    uint32_t newer; /* LRU neighbours */
    uint32_t older;
} bucket;

struct ov_ratelimit {
    bucket *buckets;
    uint32_t *slots; /* hash slot → first entry */
    size_t slot_mask;
    size_t max_keys;
    size_t used;
    uint32_t newest;
    uint32_t oldest;
    uint64_t seed;
};

static uint64_t fnv1a(uint64_t seed, const char *text, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int ov_ratelimit_new(size_t max_keys, ov_ratelimit **out)
{
    if (max_keys == 0)
        max_keys = OV_RATELIMIT_DEFAULT_KEYS;
    if (max_keys > (1u << 20))
        return OV_EINVAL;
    ov_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return OV_ENOMEM;
    size_t slots = 16;
    while (slots < max_keys * 2)
        slots <<= 1;
    rl->buckets = calloc(max_keys, sizeof *rl->buckets);
    rl->slots = malloc(slots * sizeof *rl->slots);
    if (!rl->buckets || !rl->slots) {
        ov_ratelimit_free(rl);
        return OV_ENOMEM;
    }
    for (size_t i = 0; i < slots; i++)
        rl->slots[i] = NONE;
    rl->slot_mask = slots - 1;
    rl->max_keys = max_keys;
    rl->newest = rl->oldest = NONE;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rl->seed = fnv1a((uint64_t)ts.tv_nsec, (const char *)&rl, sizeof rl);
    *out = rl;
    return OV_OK;
}

void ov_ratelimit_free(ov_ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->buckets);
    free(rl->slots);
    free(rl);
}

size_t ov_ratelimit_count(const ov_ratelimit *rl)
{
    return rl->used;
}

/* The stored form of key: itself when short enough, else a prefix, '#' and a hash of it all. */
static void normalise_key(const char *key, char out[OV_RATELIMIT_KEY_MAX + 1])
{
    size_t len = strlen(key);
    if (len <= OV_RATELIMIT_KEY_MAX) {
        memcpy(out, key, len + 1);
        return;
    }
    size_t keep = OV_RATELIMIT_KEY_MAX - 17;
    memcpy(out, key, keep);
    snprintf(out + keep, 18, "#%016llx", (unsigned long long)fnv1a(0, key, len));
}

static void lru_unlink(ov_ratelimit *rl, uint32_t i)
{
    bucket *b = &rl->buckets[i];
    if (b->newer != NONE)
        rl->buckets[b->newer].older = b->older;
    else
        rl->newest = b->older;
    if (b->older != NONE)
        rl->buckets[b->older].newer = b->newer;
    else
        rl->oldest = b->newer;
}

static void lru_push_newest(ov_ratelimit *rl, uint32_t i)
{
    bucket *b = &rl->buckets[i];
    b->newer = NONE;
    b->older = rl->newest;
    if (rl->newest != NONE)
        rl->buckets[rl->newest].newer = i;
    rl->newest = i;
    if (rl->oldest == NONE)
        rl->oldest = i;
}

static void slot_remove(ov_ratelimit *rl, uint32_t i)
{
    uint32_t *link = &rl->slots[rl->buckets[i].hash & rl->slot_mask];
    while (*link != NONE && *link != i)
        link = &rl->buckets[*link].chain;
    if (*link == i)
        *link = rl->buckets[i].chain;
}

static uint32_t find(ov_ratelimit *rl, const char *key, uint64_t hash)
{
    for (uint32_t i = rl->slots[hash & rl->slot_mask]; i != NONE; i = rl->buckets[i].chain)
        if (rl->buckets[i].hash == hash && strcmp(rl->buckets[i].key, key) == 0)
            return i;
    return NONE;
}

/* A bucket for a key not in the table: a free entry, or the least recently used one. */
static uint32_t claim(ov_ratelimit *rl, const char *key, uint64_t hash, uint32_t limit,
                      uint64_t now_ms)
{
    uint32_t i;
    if (rl->used < rl->max_keys) {
        i = (uint32_t)rl->used++;
    } else {
        i = rl->oldest;
        lru_unlink(rl, i);
        slot_remove(rl, i);
    }
    bucket *b = &rl->buckets[i];
    memcpy(b->key, key, strlen(key) + 1);
    b->hash = hash;
    b->tokens = limit;
    b->last_ms = now_ms;
    uint32_t *slot = &rl->slots[hash & rl->slot_mask];
    b->chain = *slot;
    *slot = i;
    lru_push_newest(rl, i);
    return i;
}

int ov_ratelimit_take(ov_ratelimit *rl, const char *key, uint32_t limit, uint64_t window_ms,
                      uint64_t now_ms, uint64_t *retry_after_ms)
{
    if (!rl || !key || limit == 0 || window_ms == 0)
        return OV_EINVAL;
    char stored[OV_RATELIMIT_KEY_MAX + 1];
    normalise_key(key, stored);
    uint64_t hash = fnv1a(rl->seed, stored, strlen(stored));
    uint32_t i = find(rl, stored, hash);
    if (i == NONE) {
        i = claim(rl, stored, hash, limit, now_ms);
    } else {
        lru_unlink(rl, i);
        lru_push_newest(rl, i);
    }
    bucket *b = &rl->buckets[i];
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * limit / (double)window_ms;
        b->last_ms = now_ms;
    }
    /* A caller may pass a smaller limit than the bucket was filled with. */
    if (b->tokens > limit)
        b->tokens = limit;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return OV_OK;
    }
    if (retry_after_ms) {
        /* Rounded up without libm: never tell a client to come back too early. */
        double wait = (1.0 - b->tokens) * (double)window_ms / limit;
        uint64_t whole = (uint64_t)wait;
        if ((double)whole < wait)
            whole++;
        *retry_after_ms = whole < 1 ? 1 : whole;
    }
    return OV_ELIMIT;
}
