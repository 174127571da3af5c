/*
 * Error codes: every code has its own message and its own name, so a log line or a problem
 * document always tells which failure happened. The table is built from the same X-macro as the
 * enum, so a code added to error.h is checked here without editing this file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"

static const struct {
    int code;
    const char *name;
} all_codes[] = {{OV_OK, "OV_OK"},
#define OV_ERROR_ROW(name, value, text) {OV_E##name, "OV_E" #name},
                 OV_ERROR_MAP(OV_ERROR_ROW)
#undef OV_ERROR_ROW
};

#define N_CODES (sizeof all_codes / sizeof all_codes[0])

static void test_codes_are_negative_and_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        if (all_codes[i].code != OV_OK)
            assert_true(all_codes[i].code < 0);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_int_not_equal(all_codes[i].code, all_codes[j].code);
    }
}

static void test_every_code_has_its_own_message(void **state)
{
    (void)state;
    const char *unknown = ov_strerror(-9999);
    assert_string_equal(unknown, "unknown error");
    for (size_t i = 0; i < N_CODES; i++) {
        const char *msg = ov_strerror(all_codes[i].code);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        assert_string_not_equal(msg, unknown);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_string_not_equal(msg, ov_strerror(all_codes[j].code));
    }
}

static void test_every_code_has_its_own_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        const char *name = ov_error_name(all_codes[i].code);
        assert_string_equal(name, all_codes[i].name);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_string_not_equal(name, ov_error_name(all_codes[j].code));
    }
}

static void test_known_codes_and_unknown_ones(void **state)
{
    (void)state;
    assert_string_equal(ov_strerror(OV_OK), "success");
    assert_string_equal(ov_strerror(OV_ENOTFOUND), "not found");
    assert_string_equal(ov_error_name(OV_EPARSE), "OV_EPARSE");
    /* Positive values (errno leaking through) and unused negatives still give printable text. */
    assert_string_equal(ov_strerror(5), "unknown error");
    assert_string_equal(ov_error_name(5), "OV_E?");
    assert_string_equal(ov_error_name(-9999), "OV_E?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_negative_and_distinct),
        cmocka_unit_test(test_every_code_has_its_own_message),
        cmocka_unit_test(test_every_code_has_its_own_name),
        cmocka_unit_test(test_known_codes_and_unknown_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
