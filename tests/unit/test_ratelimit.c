/*
 * Rate limiter tests: the login limits as a client sees them (10 tries, then refused with a
 * retry time that is exactly right), refill over time, independent keys, eviction of the least
 * recently used key when the table is full, long keys, and time going backwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "server/ratelimit.h"

#define MINUTE 60000u

static void ten_per_minute_then_refused(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(0, &rl), OV_OK);
    uint64_t retry = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 1000, &retry), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 1000, &retry), OV_ELIMIT);
    /* One token comes back every 6 seconds. */
    assert_int_equal(retry, 6000);
    assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 1000 + 5999, &retry), OV_ELIMIT);
    assert_int_equal(retry, 1);
    assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 1000 + 6000, &retry), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 1000 + 6000, &retry), OV_ELIMIT);
    assert_int_equal(retry, 6000);
    /* A full minute later the whole burst is back, but never more than the limit. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 10 * MINUTE, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "user:jan", 10, MINUTE, 10 * MINUTE, NULL), OV_ELIMIT);
    ov_ratelimit_free(rl);
}

static void keys_are_independent(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(0, &rl), OV_OK);
    for (int i = 0; i < 30; i++)
        assert_int_equal(ov_ratelimit_take(rl, "ip:192.0.2.1", 30, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "ip:192.0.2.1", 30, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "ip:192.0.2.2", 30, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "user:192.0.2.1", 10, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_count(rl), 3);
    ov_ratelimit_free(rl);
}

static void full_table_evicts_least_recently_used(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(4, &rl), OV_OK);
    const char *keys[] = {"a", "b", "c", "d"};
    /* Exhaust all four buckets (limit 1). */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ov_ratelimit_take(rl, keys[i], 1, MINUTE, 0, NULL), OV_OK);
        assert_int_equal(ov_ratelimit_take(rl, keys[i], 1, MINUTE, 0, NULL), OV_ELIMIT);
    }
    /* Touch "a" so "b" becomes the least recently used. */
    assert_int_equal(ov_ratelimit_take(rl, "a", 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "e", 1, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_count(rl), 4);
    /* "b" was forgotten (fresh bucket); "a", "c", "d", "e" still remember. */
    assert_int_equal(ov_ratelimit_take(rl, "a", 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "e", 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "b", 1, MINUTE, 0, NULL), OV_OK); /* evicts "c" */
    assert_int_equal(ov_ratelimit_take(rl, "d", 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "c", 1, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_count(rl), 4);
    ov_ratelimit_free(rl);
}

static void many_keys_stay_bounded(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(0, &rl), OV_OK);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        assert_int_equal(ov_ratelimit_take(rl, key, 1, MINUTE, 0, NULL), OV_OK);
    }
    assert_int_equal(ov_ratelimit_count(rl), OV_RATELIMIT_DEFAULT_KEYS);
    /* The newest 4096 are all still remembered. */
    for (int i = 20000 - OV_RATELIMIT_DEFAULT_KEYS; i < 20000; i += 97) {
        snprintf(key, sizeof key, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        assert_int_equal(ov_ratelimit_take(rl, key, 1, MINUTE, 0, NULL), OV_ELIMIT);
    }
    ov_ratelimit_free(rl);
}

static void long_keys_are_distinct_and_stable(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(0, &rl), OV_OK);
    char a[1000], b[1000];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = 0;
    memcpy(b, a, sizeof a);
    b[998] = 'y'; /* differs only far beyond the stored prefix */
    assert_int_equal(ov_ratelimit_take(rl, a, 1, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, a, 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, b, 1, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "", 1, MINUTE, 0, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_count(rl), 3);
    ov_ratelimit_free(rl);
}

static void time_going_backwards_refills_nothing(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new(0, &rl), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "k", 1, MINUTE, 5 * MINUTE, NULL), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "k", 1, MINUTE, 0, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "k", 1, MINUTE, 5 * MINUTE + 59999, NULL), OV_ELIMIT);
    assert_int_equal(ov_ratelimit_take(rl, "k", 1, MINUTE, 6 * MINUTE, NULL), OV_OK);
    ov_ratelimit_free(rl);
}

static void bad_arguments(void **state)
{
    ov_ratelimit *rl;
    assert_int_equal(ov_ratelimit_new((size_t)1 << 21, &rl), OV_EINVAL);
    assert_int_equal(ov_ratelimit_new(1, &rl), OV_OK);
    assert_int_equal(ov_ratelimit_take(rl, "k", 0, MINUTE, 0, NULL), OV_EINVAL);
    assert_int_equal(ov_ratelimit_take(rl, "k", 1, 0, 0, NULL), OV_EINVAL);
    assert_int_equal(ov_ratelimit_take(rl, NULL, 1, MINUTE, 0, NULL), OV_EINVAL);
    assert_int_equal(ov_ratelimit_count(rl), 0);
    ov_ratelimit_free(rl);
    ov_ratelimit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ten_per_minute_then_refused),
        cmocka_unit_test(keys_are_independent),
        cmocka_unit_test(full_table_evicts_least_recently_used),
        cmocka_unit_test(many_keys_stay_bounded),
        cmocka_unit_test(long_keys_are_distinct_and_stable),
        cmocka_unit_test(time_going_backwards_refills_nothing),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
