/* The capped buffer: appends up to the cap, refuses beyond it, and stays failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/error.h"

static void test_append_and_cap(void **state)
{
    ov_buf buf;
    ov_buf_init(&buf, 10);
    assert_int_equal(ov_buf_append_str(&buf, "12345"), OV_OK);
    assert_int_equal(ov_buf_printf(&buf, "%d", 6789), OV_OK);
    assert_string_equal(buf.data, "123456789");
    assert_int_equal(ov_buf_append_str(&buf, "ab"), OV_ETOOBIG);
    assert_int_equal(buf.failed, OV_ETOOBIG);
    assert_int_equal(ov_buf_append_str(&buf, "c"), OV_ETOOBIG); /* stays failed */
    assert_int_equal(buf.len, 9);
    ov_buf_free(&buf);
}

static void test_json_string(void **state)
{
    ov_buf buf;
    ov_buf_init(&buf, 1024);
    const char text[] = "a\"b\\c/\n\t\x01\x7f\xc3\xa9";
    assert_int_equal(ov_buf_append_json_string(&buf, text, sizeof text - 1), OV_OK);
    assert_string_equal(buf.data, "\"a\\\"b\\\\c/\\n\\t\\u0001\x7f\xc3\xa9\"");
    ov_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_json_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
