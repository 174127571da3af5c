/* Strict JSON input and the canonical encoding: golden vectors from docs/protocol.md and every
 * kind of input the parser must refuse, with its position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/canon.h"
#include "proto/error.h"

/* Parses, normalises and encodes input; returns the canonical text (caller frees). */
static char *canonical(const char *input, size_t len)
{
    json_t *value = NULL;
    ov_json_error err;
    assert_int_equal(ov_json_parse(input, len, &value, &err), OV_OK);
    assert_int_equal(ov_canon_normalize(value, &err), OV_OK);
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(ov_canon_encode(value, &out, &out_len), OV_OK);
    assert_int_equal(strlen(out), out_len);
    json_decref(value);
    return out;
}

static void expect_canonical(const char *input, const char *expected)
{
    char *out = canonical(input, strlen(input));
    assert_string_equal(out, expected);
    assert_true(ov_canon_is_canonical(out, strlen(out)));
    free(out);
}

static void test_golden_vectors(void **state)
{
    expect_canonical(" { \"b\" : 1 , \"a\" : [ true , false , null ] } ",
                     "{\"a\":[true,false,null],\"b\":1}");
    /* keys sort by UTF-8 bytes: "Z" < "a" < "é" (C3 A9) < "中" (E4 B8 AD) */
    expect_canonical("{\"\xe4\xb8\xad\":1,\"\xc3\xa9\":2,\"a\":3,\"Z\":4}",
                     "{\"Z\":4,\"a\":3,\"\xc3\xa9\":2,\"\xe4\xb8\xad\":1}");
    /* escapes: only quote, backslash and control characters; '/' and DEL stay raw */
    expect_canonical("\"a/b\\\"c\\\\d\\u0001\\u001f\\b\\f\\n\\r\\t\x7f\"",
                     "\"a/b\\\"c\\\\d\\u0001\\u001F\\b\\f\\n\\r\\t\x7f\"");
    /* \u escapes of printable characters are written as UTF-8 */
    expect_canonical("\"\\u00e9\\ud83d\\ude00\"", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    expect_canonical("[0,-1,9007199254740991,-9007199254740991]",
                     "[0,-1,9007199254740991,-9007199254740991]");
    expect_canonical("{\"k\":{}}", "{\"k\":{}}");
}

/* Equal bytes, so equal content hashes on every node. */
static void test_nfc_hashes_equal(void **state)
{
    char *composed = canonical("{\"t\":\"caf\xc3\xa9\"}", 13);
    char *decomposed = canonical("{\"t\":\"cafe\xcc\x81\"}", 14);
    assert_string_equal(composed, decomposed);
    free(composed);
    free(decomposed);
}

static void expect_refused(const char *input, size_t len, int line, const char *fragment)
{
    json_t *value = NULL;
    ov_json_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(ov_json_parse(input, len, &value, &err), OV_EPARSE);
    assert_null(value);
    if (line)
        assert_int_equal(err.line, line);
    if (fragment && !strstr(err.message, fragment))
        fail_msg("message '%s' lacks '%s'", err.message, fragment);
}

static void test_refusals(void **state)
{
    expect_refused("{\"title\": \"x\",\n  \"phase\": ", 25, 2, NULL);
    expect_refused("{\"a\":1,\"a\":2}", 13, 1, "duplicate");
    expect_refused("[1.5]", 5, 1, "integer");
    expect_refused("[1e3]", 5, 1, "integer");
    expect_refused("[-1E-3]", 7, 1, "integer");
    expect_refused("9007199254740992", 16, 1, "2^53");
    expect_refused("-9007199254740992", 17, 1, "2^53");
    expect_refused("[12345678901234567]", 19, 1, "2^53");
    expect_refused("\"a\\u0000b\"", 10, 1, NULL);
    expect_refused("\"a\0b\"", 5, 1, "NUL");
    expect_refused("\"\xff\"", 3, 1, NULL);
    expect_refused("\"\xc0\xaf\"", 4, 1, NULL); /* overlong '/' */
    expect_refused("\"\\ud800\"", 8, 1, NULL);  /* lone surrogate */
    expect_refused("[1] x", 5, 1, NULL);
    expect_refused("\xef\xbb\xbf{}", 5, 1, "byte-order");
    char *deep = malloc(20000);
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    expect_refused(deep, 20000, 1, "nesting");
    char nested[80];
    memset(nested, '[', 40);
    memset(nested + 40, ']', 40);
    expect_refused(nested, 80, 1, "nesting");
    free(deep);
}

static void expect_refused_at(const char *input, int line, int column, long offset,
                              const char *fragment)
{
    json_t *value = NULL;
    ov_json_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(ov_json_parse(input, strlen(input), &value, &err), OV_EPARSE);
    assert_null(value);
    if (!strstr(err.message, fragment))
        fail_msg("message '%s' lacks '%s'", err.message, fragment);
    assert_int_equal(err.line, line);
    assert_int_equal(err.column, column);
    assert_int_equal(err.offset, offset);
}

/* A client shows the author where the problem is, so every refusal carries its position. */
static void test_refusal_positions(void **state)
{
    expect_refused_at("{\"a\": \"1.5\",\n \"b\": 2.5}", 2, 7, 19, "integers");
    expect_refused_at("{\"n\":\n  -9007199254740992}", 2, 3, 8, "2^53");
    expect_refused_at("[9007199254740991, 1e2]", 1, 20, 19, "integers");
    expect_refused_at("\"x\\u0000\"", 1, 9, 9, "\\u0000"); /* jansson: end of the string */
    const char nul[] = "[1,\n\"a\0\"]";
    json_t *value = NULL;
    ov_json_error err;
    assert_int_equal(ov_json_parse(nul, sizeof nul - 1, &value, &err), OV_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 3);
    assert_int_equal(err.offset, 6);
    /* depth 33 is refused at its own bracket, also when jansson's own limit trips first */
    char deep[3000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    expect_refused_at(deep, 1, OV_JSON_MAX_DEPTH + 1, OV_JSON_MAX_DEPTH, "nesting deeper than 32");
    char ok[2 * OV_JSON_MAX_DEPTH + 1];
    memset(ok, '[', OV_JSON_MAX_DEPTH);
    memset(ok + OV_JSON_MAX_DEPTH, ']', OV_JSON_MAX_DEPTH);
    assert_int_equal(ov_json_parse(ok, 2 * OV_JSON_MAX_DEPTH, &value, &err), OV_OK);
    json_decref(value);
    /* strings that look like numbers or brackets are not mistaken for them */
    const char *tricky = "{\"s\":\"1.5 [[[[ \\\" 1e9\",\"n\":-0}";
    assert_int_equal(ov_json_parse(tricky, strlen(tricky), &value, &err), OV_OK);
    json_decref(value);
}

static void test_encoder_refuses_non_canonical_values(void **state)
{
    char *out = NULL;
    size_t len = 0;
    json_t *real = json_real(1.5);
    assert_int_equal(ov_canon_encode(real, &out, &len), OV_EINVAL);
    json_decref(real);
    json_t *big = json_integer(9007199254740992LL);
    assert_int_equal(ov_canon_encode(big, &out, &len), OV_EINVAL);
    json_decref(big);
    json_t *decomposed = json_string("cafe\xcc\x81");
    assert_int_equal(ov_canon_encode(decomposed, &out, &len), OV_EINVAL);
    json_decref(decomposed);
}

static void test_key_collision_after_nfc(void **state)
{
    json_t *value = NULL;
    ov_json_error err;
    const char *input = "{\"caf\xc3\xa9\":1,\"cafe\xcc\x81\":2}";
    assert_int_equal(ov_json_parse(input, strlen(input), &value, &err), OV_OK);
    assert_int_equal(ov_canon_normalize(value, &err), OV_EINVAL);
    assert_non_null(strstr(err.message, "collide"));
    json_decref(value);
}

typedef struct {
    char seen[512];
} members;

static int note_member(void *ctx, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    members *m = ctx;
    size_t used = strlen(m->seen);
    snprintf(m->seen + used, sizeof m->seen - used, "%.*s=%.*s;", (int)key_len, key, (int)value_len,
             value);
    return 0;
}

static int stop_at_c(void *ctx, const char *key, size_t key_len, const char *value,
                     size_t value_len)
{
    (void)ctx, (void)value, (void)value_len;
    return key_len == 1 && key[0] == 'c';
}

/* Members of stored records are read without parsing the record: keys and raw values, with
 * nested values and strings holding braces, commas and escaped quotes kept whole. */
static void test_members_without_parsing(void **state)
{
    (void)state;
    const char *json = "{\"a\":1,\"b\":\"x,}\\\"y\",\"c\":{\"d\":[1,{\"e\":\"}\"}]},\"f\":null,"
                       "\"g\":true}";
    members m = {{0}};
    assert_int_equal(ov_canon_each_member(json, strlen(json), note_member, &m), 0);
    assert_string_equal(m.seen, "a=1;b=\"x,}\\\"y\";c={\"d\":[1,{\"e\":\"}\"}]};f=null;g=true;");
    memset(&m, 0, sizeof m);
    assert_int_equal(ov_canon_each_member("{}", 2, note_member, &m), 0);
    assert_string_equal(m.seen, "");
    assert_int_equal(ov_canon_each_member("[1]", 3, note_member, &m), OV_EINVAL);
    assert_int_equal(ov_canon_each_member("{\"a\":\"open", 10, note_member, &m), OV_EINVAL);
    assert_int_equal(ov_canon_each_member("{\"a\" 1}", 7, note_member, &m), OV_EINVAL);

    /* The canonical check's own walk gives the same members as the walk without the check. */
    const char *canonical =
        "{\"a\":1,\"b\":\"x,}\\\"y\",\"c\":{\"d\":[1,{\"e\":\"}\"}]},\"f\":null,"
        "\"g\":true}";
    members walked = {{0}}, checked = {{0}};
    assert_int_equal(ov_canon_each_member(canonical, strlen(canonical), note_member, &walked), 0);
    assert_true(ov_canon_check_members(canonical, strlen(canonical), note_member, &checked));
    assert_string_equal(checked.seen, walked.seen);
    assert_string_equal(checked.seen,
                        "a=1;b=\"x,}\\\"y\";c={\"d\":[1,{\"e\":\"}\"}]};f=null;g=true;");
    /* A callback that stops the walk makes the answer false. */
    assert_false(ov_canon_check_members(canonical, strlen(canonical), stop_at_c, NULL));

    char out[64];
    const char *literal = "\"Cre\\u00ebren \\\"nu\\\" \\ud83d\\ude00\\n\"";
    assert_int_equal(ov_canon_string(literal, strlen(literal), out, sizeof out), 19);
    assert_string_equal(out, "Creëren \"nu\" \xf0\x9f\x98\x80\n");
    assert_int_equal(ov_canon_string("\"\\x\"", 4, out, sizeof out), -1);
    assert_int_equal(ov_canon_string("\"abc\"", 5, out, 3), -1); /* does not fit */
    assert_int_equal(ov_canon_string("abc", 3, out, sizeof out), -1);
}

static void test_simple_nfc_scan(void **state)
{
    (void)state;
    /* Known NFC without normalising: ASCII and code points up to U+02FF. */
    assert_true(ov_text_is_simple_nfc("", 0));
    assert_true(ov_text_is_simple_nfc("Een tussenjaar", 14));
    assert_true(ov_text_is_simple_nfc("cre\xc3\xabren", 8)); /* creëren, precomposed */
    assert_true(ov_text_is_simple_nfc("\xcb\xbf", 2));       /* U+02FF */
    /* Not known: a combining mark, code points from U+0300 up, and invalid UTF-8. */
    assert_false(ov_text_is_simple_nfc("cree\xcc\x88ren", 9)); /* e + U+0308 */
    assert_false(ov_text_is_simple_nfc("\xcc\x80", 2));        /* U+0300 */
    assert_false(ov_text_is_simple_nfc("\xe2\x82\xac", 3));    /* the euro sign */
    assert_false(ov_text_is_simple_nfc("\xc3", 1));            /* truncated */
    assert_false(ov_text_is_simple_nfc("\xc0\x80", 2));        /* overlong NUL */
    assert_false(ov_text_is_simple_nfc("\xc3\x28", 2));        /* bad continuation */
    /* Whatever the scan accepts, full normalisation leaves unchanged. */
    const char *samples[] = {"Murmellius Gymnasium",
                             "na\xc3\xaf"
                             "ef",
                             "\xc2\xa9 2024"};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        json_t *value = json_string(samples[i]);
        assert_true(ov_text_is_simple_nfc(samples[i], strlen(samples[i])));
        assert_int_equal(ov_canon_normalize(value, NULL), OV_OK);
        assert_string_equal(json_string_value(value), samples[i]);
        json_decref(value);
    }
}

/* The one-pass canonical check says what its definition (parse, encode, compare) says, on the
 * forms that differ in one detail from canonical. */
static void test_canonical_check_agrees_with_its_definition(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int canonical;
    } cases[] = {
        {"{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}", 1},
        {"{\"b\":1,\"a\":2}", 0},        /* keys out of order */
        {"{\"a\":1,\"a\":2}", 0},        /* a key twice */
        {"{\"a\":1, \"b\":2}", 0},       /* whitespace */
        {"{\"a\":-0}", 0},               /* -0 is written 0 */
        {"{\"a\":01}", 0},               /* leading zero */
        {"{\"a\":1.0}", 0},              /* a real */
        {"{\"a\":9007199254740991}", 1}, /* 2^53-1 */
        {"{\"a\":9007199254740992}", 0}, /* beyond */
        {"{\"a\":-9007199254740991}", 1},
        {"\"caf\xc3\xa9\"", 1},  /* composed é */
        {"\"cafe\xcc\x81\"", 0}, /* decomposed: not NFC */
        {"\"a\\u0001b\"", 1},    /* control character escaped */
        {"\"a\\u001fb\"", 0},    /* lower-case hex */
        {"\"a\\u000Ab\"", 0},    /* newline has a short escape */
        {"\"a\\nb\"", 1},
        {"\"a\\/b\"", 0},           /* slash is written raw */
        {"\"\\u00e9\"", 0},         /* é is written raw */
        {"\"\\u0000\"", 0},         /* NUL never occurs */
        {"\"\x7f\"", 1},            /* DEL raw */
        {"\"\xed\xa0\x80\"", 0},    /* a surrogate in UTF-8 */
        {"\"\xc0\xaf\"", 0},        /* overlong */
        {"{\"\\n\":1,\"a\":2}", 1}, /* sorted by the keys' texts */
        {"{\"a\":2,\"\\n\":1}", 0},
        {"[]", 1},
        {"{}", 1},
        {"[1,]", 0},
        {"{\"a\":1}x", 0}, /* trailing data */
        {"", 0},
        {"nul", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text);
        int fast = ov_canon_is_canonical(cases[i].text, len);
        int slow = ov_canon_is_canonical_by_encoding(cases[i].text, len);
        if (fast != cases[i].canonical || slow != cases[i].canonical)
            fail_msg("%s: one pass %d, by encoding %d, expected %d", cases[i].text, fast, slow,
                     cases[i].canonical);
        /* The walk that also gives the members agrees, for objects; it refuses anything else. */
        members m = {{0}};
        int walked = ov_canon_check_members(cases[i].text, len, note_member, &m);
        if (walked != (cases[i].canonical && cases[i].text[0] == '{'))
            fail_msg("%s: member walk %d, expected %d", cases[i].text, walked,
                     cases[i].canonical && cases[i].text[0] == '{');
    }
    /* Nesting: 32 levels are canonical, 33 are not (the strict parser's limit). */
    char deep[80];
    for (int levels = 32; levels <= 33; levels++) {
        memset(deep, '[', (size_t)levels);
        memset(deep + levels, ']', (size_t)levels);
        deep[2 * levels] = 0;
        assert_int_equal(ov_canon_is_canonical(deep, strlen(deep)), levels == 32);
        assert_int_equal(ov_canon_is_canonical_by_encoding(deep, strlen(deep)), levels == 32);
    }
}

/* A 64-bit linear congruential step (Knuth's MMIX constants): the same strings on every run. */
static uint64_t next_random(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return *seed;
}

/* The one-pass check reads plain text sixteen and eight bytes at a time: random strings with every
 * kind of byte it must stop at, at every offset of those blocks, are judged as the definition
 * judges them. */
static void test_string_scan_at_every_offset(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a",
        "Z",
        " ",
        "~",
        "\x7f",
        "\"",
        "\\",
        "\\\"",
        "\\n",
        "\\t",
        "\\u0001",
        "\\u001F",
        "\\u00e9",
        "\\u000A",
        "\\/",
        "\x01",
        "\n",
        "\xc3\xa9",
        "e\xcc\x81",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xff",
        "\xc3",
        "\xed\xa0\x80",
    };
    const size_t piece_count = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char text[256];
    for (int round = 0; round < 200000; round++) {
        size_t len = 0;
        text[len++] = '"';
        /* A run of plain letters of random length puts the next piece at any offset. */
        size_t plain = (size_t)(next_random(&seed) >> 59); /* 0..31 */
        for (size_t i = 0; i < plain; i++)
            text[len++] = (char)('a' + (i % 26));
        size_t count = (size_t)(next_random(&seed) >> 61); /* 0..7 pieces */
        for (size_t i = 0; i < count; i++) {
            uint64_t r = next_random(&seed);
            const char *piece = pieces[(r >> 33) % piece_count];
            size_t n = strlen(piece);
            memcpy(text + len, piece, n);
            len += n;
            size_t more = (size_t)((r >> 20) % 20);
            for (size_t k = 0; k < more; k++)
                text[len++] = 'x';
        }
        text[len++] = '"';
        int fast = ov_canon_is_canonical(text, len);
        int slow = ov_canon_is_canonical_by_encoding(text, len);
        if (fast != slow)
            fail_msg("round %d: %.*s: one pass %d, by encoding %d", round, (int)len, text, fast,
                     slow);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_check_agrees_with_its_definition),
        cmocka_unit_test(test_golden_vectors),
        cmocka_unit_test(test_nfc_hashes_equal),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_positions),
        cmocka_unit_test(test_encoder_refuses_non_canonical_values),
        cmocka_unit_test(test_key_collision_after_nfc),
        cmocka_unit_test(test_simple_nfc_scan),
        cmocka_unit_test(test_members_without_parsing),
        cmocka_unit_test(test_string_scan_at_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
