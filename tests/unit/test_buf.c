/* The capped buffer: appends up to the cap, refuses beyond it, and stays failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A block handed over keeps its first bytes, grows when it must, and still stops at max. */
static void test_adopt(void **state)
{
    (void)state;
    char *block = malloc(16);
    memcpy(block, "head", 4);
    ov_buf buf;
    ov_buf_adopt(&buf, block, 16, 4, 40);
    assert_ptr_equal(buf.data, block);
    assert_int_equal(ov_buf_append_str(&buf, "-0123456789"), OV_OK);
    assert_ptr_equal(buf.data, block); /* 15 bytes and the NUL fit: no new block */
    assert_string_equal(buf.data, "head-0123456789");
    assert_int_equal(ov_buf_append_str(&buf, "abcdefghijklmnopqrstuvwxy"), OV_OK); /* 40 */
    assert_int_equal(buf.len, 40);
    assert_string_equal(buf.data + 15, "abcdefghijklmnopqrstuvwxy");
    assert_int_equal(ov_buf_append_str(&buf, "z"), OV_ETOOBIG);
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

/* Character by character, as RFC 8259 says: the definition the run-wise escaper must equal. */
static void reference_escape(const unsigned char *text, size_t len, char *out)
{
    *out++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = text[i];
        const char *named = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
        if (named)
            out += sprintf(out, "%s", named);
        else if (c < 0x20)
            out += sprintf(out, "\\u%04X", c);
        else
            *out++ = (char)c;
    }
    *out++ = '"';
    *out = 0;
}

static void test_json_string_equals_reference(void **state)
{
    static const unsigned char alphabet[] = {'a',  'Z',  ' ',  '"',  '\\', '/',  '\b', '\f', '\n',
                                             '\r', '\t', 0x01, 0x1f, 0x7f, 0xc3, 0xa9, 0};
    srand(7);
    for (int n = 0; n < 5000; n++) {
        unsigned char text[40];
        size_t len = (size_t)(rand() % (int)sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rand() % (int)sizeof alphabet];
        char want[40 * 6 + 3];
        reference_escape(text, len, want);
        ov_buf buf;
        ov_buf_init(&buf, 1024);
        assert_int_equal(ov_buf_append_json_string(&buf, (const char *)text, len), OV_OK);
        assert_int_equal(buf.len, strlen(want));
        assert_memory_equal(buf.data, want, buf.len);
        ov_buf_free(&buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_json_string_equals_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
