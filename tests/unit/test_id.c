/* Ids: text round trip, time order, the Crockford aliases, and refusal of everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/id.h"

static void test_round_trip_and_time(void **state)
{
    ov_id id, parsed;
    char text[OV_ID_CHARS + 1];
    assert_int_equal(ov_id_generate(&id, 1767225600000ULL), OV_OK);
    ov_id_format(&id, text);
    assert_int_equal(strlen(text), OV_ID_CHARS);
    assert_int_equal(ov_id_parse(text, OV_ID_CHARS, &parsed), OV_OK);
    assert_memory_equal(id.bytes, parsed.bytes, OV_ID_BYTES);
    assert_int_equal(ov_id_time_ms(&parsed), 1767225600000ULL);
    assert_false(ov_id_is_zero(&id));
}

static void test_order_follows_time(void **state)
{
    ov_id earlier, later;
    char a[OV_ID_CHARS + 1], b[OV_ID_CHARS + 1];
    ov_id_generate(&earlier, 1000);
    ov_id_generate(&later, 1001);
    assert_true(ov_id_compare(&earlier, &later) < 0);
    ov_id_format(&earlier, a);
    ov_id_format(&later, b);
    assert_true(strcmp(a, b) < 0); /* text order is byte order */
}

static void test_known_values_and_aliases(void **state)
{
    ov_id id;
    char text[OV_ID_CHARS + 1];
    memset(&id, 0xff, sizeof id);
    ov_id_format(&id, text);
    assert_string_equal(text, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    memset(&id, 0, sizeof id);
    ov_id_format(&id, text);
    assert_string_equal(text, "00000000000000000000000000");
    assert_true(ov_id_is_zero(&id));

    ov_id upper, lower, alias;
    assert_int_equal(ov_id_parse("01KDVDNA081M10000000000008", 26, &upper), OV_OK);
    assert_int_equal(ov_id_parse("01kdvdna081m10000000000008", 26, &lower), OV_OK);
    assert_int_equal(ov_id_parse("OIKDVDNA08LM1OOOOOOOOOOOO8", 26, &alias), OV_OK);
    assert_memory_equal(upper.bytes, lower.bytes, OV_ID_BYTES);
    assert_memory_equal(upper.bytes, alias.bytes, OV_ID_BYTES);
}

static void test_refusals(void **state)
{
    ov_id id;
    assert_int_equal(ov_id_parse("01KDVDNA081M1000000000000", 25, &id), OV_EINVAL);
    assert_int_equal(ov_id_parse("01KDVDNA081M100000000000089", 27, &id), OV_EINVAL);
    assert_int_equal(ov_id_parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", 26, &id),
                     OV_EINVAL); /* > 128 bits */
    assert_int_equal(ov_id_parse("01KDVDNA081M1000000000000U", 26, &id), OV_EINVAL);
    assert_int_equal(ov_id_parse("01KDVDNA081M1000000000000-", 26, &id), OV_EINVAL);
    assert_int_equal(ov_id_parse("01KDVDNA081M100000000\0000008", 26, &id), OV_EINVAL);
    assert_int_equal(ov_id_parse(NULL, 26, &id), OV_EINVAL);
}

/* The text of random ids, against the definition: bit k of the 130-bit number (two zero bits
 * above the id's 128) is bit k % 5 of character 25 - k / 5. */
static void test_format_matches_the_bit_definition(void **state)
{
    for (int n = 0; n < 2000; n++) {
        ov_id id;
        for (int i = 0; i < OV_ID_BYTES; i++)
            id.bytes[i] = (uint8_t)rand();
        char text[OV_ID_CHARS + 1], want[OV_ID_CHARS + 1];
        ov_id_format(&id, text);
        const char *alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        for (int c = 0; c < OV_ID_CHARS; c++) {
            unsigned value = 0;
            for (int k = 0; k < 5; k++) {
                int bit = (OV_ID_CHARS - 1 - c) * 5 + k;
                if (bit < 128 && (id.bytes[15 - bit / 8] >> (bit % 8) & 1))
                    value |= 1u << k;
            }
            want[c] = alphabet[value];
        }
        want[OV_ID_CHARS] = 0;
        assert_string_equal(text, want);
        ov_id parsed;
        assert_int_equal(ov_id_parse(text, OV_ID_CHARS, &parsed), OV_OK);
        assert_memory_equal(parsed.bytes, id.bytes, OV_ID_BYTES);
    }
}

static int compare(const void *a, const void *b)
{
    return ov_id_compare(a, b);
}

static void test_unique(void **state)
{
    enum { N = 10000 };
    ov_id *ids = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        assert_int_equal(ov_id_generate(&ids[i], 42), OV_OK); /* same millisecond */
    qsort(ids, N, sizeof *ids, compare);
    for (int i = 1; i < N; i++)
        assert_true(ov_id_compare(&ids[i - 1], &ids[i]) != 0);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_time),
        cmocka_unit_test(test_order_follows_time),
        cmocka_unit_test(test_known_values_and_aliases),
        cmocka_unit_test(test_format_matches_the_bit_definition),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
