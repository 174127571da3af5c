/*
 * Strict JSON input and the canonical encoding (see canon.h and docs/protocol.md).
 *
 * Parsing uses jansson, which already refuses invalid UTF-8, duplicate keys (on request) and
 * \u0000 and reports line and column; this module adds what jansson does not check (a raw NUL
 * byte before jansson's "premature end", nesting depth, reals and out-of-range integers) and turns
 * its errors into ov_json_error. The encoder is our own, because the canonical form is a contract
 * between nodes and must not depend on a library's choices of escapes or number formatting.
 */
#include "proto/canon.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <utf8proc.h>

#include "proto/buf.h"
#include "proto/error.h"

#define CANON_MAX_BYTES (16u << 20)

static void set_error(ov_json_error *err, int line, int column, long offset, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error(ov_json_error *err, int line, int column, long offset, const char *fmt, ...)
{
    if (!err)
        return;
    err->line = line;
    err->column = column;
    err->offset = offset;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, args);
    va_end(args);
}

/* Line and column (1-based) of byte offset in data. */
static void locate(const char *data, size_t offset, int *line, int *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (data[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

static int refuse_at(const char *data, size_t offset, ov_json_error *err, const char *message)
{
    int line, column;
    locate(data, offset, &line, &column);
    set_error(err, line, column, (long)offset, "%s", message);
    return OV_EPARSE;
}

/* True when the integer token of `digits` digits at text (no sign) exceeds 2^53-1. JSON forbids
 * leading zeros, so more digits than the limit's 16 means larger. */
static int integer_too_big(const char *text, size_t digits)
{
    if (digits != 16)
        return digits > 16;
    char copy[17];
    memcpy(copy, text, 16);
    copy[16] = '\0';
    return strtoll(copy, NULL, 10) > OV_JSON_MAX_INTEGER;
}

/*
 * Checks what jansson lets through (depth, reals, integer range) on the text rather than on the
 * tree, so each refusal carries its position. Called only on text jansson has accepted up to
 * `len`, so strings and numbers are well formed here and a short lexer suffices. Returns the first
 * problem in document order.
 */
static int check_text(const char *data, size_t len, ov_json_error *err)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '"') {
            for (i++; i < len && data[i] != '"'; i++)
                if (data[i] == '\\')
                    i++;
        } else if (c == '[' || c == '{') {
            if (++depth > OV_JSON_MAX_DEPTH) {
                char message[64];
                snprintf(message, sizeof message, "nesting deeper than %d levels",
                         OV_JSON_MAX_DEPTH);
                return refuse_at(data, i, err, message);
            }
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i, first_digit = i + (c == '-'), digits = 0;
            int real = 0;
            for (; i < len && data[i] && strchr("-+0123456789.eE", data[i]); i++) {
                if (data[i] >= '0' && data[i] <= '9')
                    digits++;
                else if (i != start)
                    real = 1;
            }
            if (real)
                return refuse_at(data, start, err,
                                 "numbers must be integers (no fraction or exponent)");
            if (integer_too_big(data + first_digit, digits))
                return refuse_at(data, start, err, "integer outside ±(2^53-1)");
            i--;
        }
    }
    return OV_OK;
}

int ov_json_parse(const char *data, size_t len, json_t **out, ov_json_error *err)
{
    *out = NULL;
    const char *nul = memchr(data, 0, len);
    if (nul) {
        int line, column;
        locate(data, (size_t)(nul - data), &line, &column);
        set_error(err, line, column, (long)(nul - data), "NUL byte in the input");
        return OV_EPARSE;
    }
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF) {
        set_error(err, 1, 1, 0, "byte-order mark before the JSON value");
        return OV_EPARSE;
    }
    json_error_t jerr;
    json_t *value = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!value) {
        /* jansson stops at depth 2048; name the level where our limit was crossed instead. */
        if (json_error_code(&jerr) == json_error_stack_overflow && jerr.position > 0 &&
            check_text(data, (size_t)jerr.position, err) != OV_OK)
            return OV_EPARSE;
        if (err) {
            err->line = jerr.line > 0 ? jerr.line : 1;
            err->column = jerr.column > 0 ? jerr.column : 1;
            err->offset = jerr.position;
            snprintf(err->message, sizeof err->message, "%s", jerr.text);
        }
        return OV_EPARSE;
    }
    int rc = check_text(data, len, err);
    if (rc) {
        json_decref(value);
        return rc;
    }
    *out = value;
    return OV_OK;
}

/* A new NFC copy of text (caller frees), or NULL when text is not valid UTF-8. */
static char *nfc_copy(const char *text, size_t len)
{
    utf8proc_uint8_t *result = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                      &result, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0)
        return NULL;
    return (char *)result;
}

int ov_text_is_simple_nfc(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x80)
            continue;
        /* Two-byte sequences C2 80 .. CB BF are U+0080 .. U+02FF. */
        if (p[i] < 0xC2 || p[i] > 0xCB || i + 1 >= len || (p[i + 1] & 0xC0) != 0x80)
            return 0;
        i++;
    }
    return 1;
}

static int is_nfc(const char *text, size_t len)
{
    if (ov_text_is_simple_nfc(text, len))
        return 1;
    char *normal = nfc_copy(text, len);
    int same = normal && strlen(normal) == len && memcmp(normal, text, len) == 0;
    free(normal);
    return same;
}

static int normalize(json_t *value, int depth, ov_json_error *err)
{
    if (depth > OV_JSON_MAX_DEPTH + 1)
        return OV_EINVAL;
    if (json_is_string(value)) {
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        if (is_nfc(text, len))
            return OV_OK;
        char *normal = nfc_copy(text, len);
        if (!normal) {
            set_error(err, 0, 0, -1, "text is not valid UTF-8");
            return OV_EINVAL;
        }
        int rc = json_string_setn(value, normal, strlen(normal)) ? OV_ENOMEM : OV_OK;
        free(normal);
        return rc;
    }
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            int rc = normalize(item, depth + 1, err);
            if (rc)
                return rc;
        }
        return OV_OK;
    }
    if (!json_is_object(value))
        return OV_OK;
    /* Keys first: collect those that change, then re-insert them under their NFC form. */
    int keys_ok = 1;
    const char *key;
    json_t *member;
    json_object_foreach(value, key, member)
    {
        if (!is_nfc(key, strlen(key)))
            keys_ok = 0;
        int rc = normalize(member, depth + 1, err);
        if (rc)
            return rc;
    }
    if (keys_ok)
        return OV_OK;
    json_t *rebuilt = json_object();
    if (!rebuilt)
        return OV_ENOMEM;
    json_object_foreach(value, key, member)
    {
        char *normal = nfc_copy(key, strlen(key));
        if (!normal) {
            json_decref(rebuilt);
            set_error(err, 0, 0, -1, "object key is not valid UTF-8");
            return OV_EINVAL;
        }
        if (json_object_get(rebuilt, normal)) {
            set_error(err, 0, 0, -1, "keys '%s' collide after Unicode normalisation", normal);
            free(normal);
            json_decref(rebuilt);
            return OV_EINVAL;
        }
        json_object_set(rebuilt, normal, member);
        free(normal);
    }
    json_object_clear(value);
    json_object_update(value, rebuilt);
    json_decref(rebuilt);
    return OV_OK;
}

int ov_canon_normalize(json_t *value, ov_json_error *err)
{
    return normalize(value, 0, err);
}

static int encode_string(ov_buf *out, const char *text, size_t len)
{
    if (!is_nfc(text, len))
        return OV_EINVAL;
    return ov_buf_append_json_string(out, text, len);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int encode(ov_buf *out, const json_t *value, int depth)
{
    if (depth > OV_JSON_MAX_DEPTH + 1)
        return OV_EINVAL;
    switch (json_typeof(value)) {
    case JSON_NULL:
        return ov_buf_append_str(out, "null");
    case JSON_TRUE:
        return ov_buf_append_str(out, "true");
    case JSON_FALSE:
        return ov_buf_append_str(out, "false");
    case JSON_REAL:
        return OV_EINVAL;
    case JSON_INTEGER: {
        json_int_t n = json_integer_value(value);
        if (n > OV_JSON_MAX_INTEGER || n < -OV_JSON_MAX_INTEGER)
            return OV_EINVAL;
        return ov_buf_printf(out, "%lld", (long long)n);
    }
    case JSON_STRING:
        return encode_string(out, json_string_value(value), json_string_length(value));
    case JSON_ARRAY: {
        int rc = ov_buf_append(out, "[", 1);
        for (size_t i = 0; rc == OV_OK && i < json_array_size(value); i++) {
            if (i)
                rc = ov_buf_append(out, ",", 1);
            if (rc == OV_OK)
                rc = encode(out, json_array_get(value, i), depth + 1);
        }
        return rc ? rc : ov_buf_append(out, "]", 1);
    }
    case JSON_OBJECT: {
        size_t count = json_object_size(value);
        const char **keys = count ? malloc(count * sizeof *keys) : NULL;
        if (count && !keys)
            return OV_ENOMEM;
        size_t n = 0;
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member) keys[n++] = key;
        /* strcmp orders by unsigned bytes: UTF-8 byte order, which is code point order. */
        if (n > 1)
            qsort(keys, n, sizeof *keys, compare_keys);
        int rc = ov_buf_append(out, "{", 1);
        for (size_t i = 0; rc == OV_OK && i < n; i++) {
            if (i)
                rc = ov_buf_append(out, ",", 1);
            if (rc == OV_OK)
                rc = encode_string(out, keys[i], strlen(keys[i]));
            if (rc == OV_OK)
                rc = ov_buf_append(out, ":", 1);
            if (rc == OV_OK)
                rc = encode(out, json_object_get(value, keys[i]), depth + 1);
        }
        free(keys);
        return rc ? rc : ov_buf_append(out, "}", 1);
    }
    }
    return OV_EINVAL;
}

int ov_canon_encode(const json_t *value, char **out, size_t *out_len)
{
    ov_buf buf;
    ov_buf_init(&buf, CANON_MAX_BYTES);
    int rc = encode(&buf, value, 0);
    if (rc == OV_OK && buf.failed)
        rc = buf.failed;
    if (rc != OV_OK) {
        ov_buf_free(&buf);
        return rc == OV_ETOOBIG ? OV_ETOOBIG : (rc == OV_ENOMEM ? OV_ENOMEM : OV_EINVAL);
    }
    *out = buf.data;
    *out_len = buf.len;
    return OV_OK;
}

/*
 * The canonical form checked in one pass over the bytes, without building the value: replicated
 * runs check every content this way (docs/protocol.md §8.3), and parsing and re-encoding each
 * one was most of that check's cost. ov_canon_is_canonical_by_encoding is the definition (parse
 * strictly, encode, compare); the fuzz target and the unit tests hold the two equal.
 */
typedef struct {
    const unsigned char *p, *end;
    ov_canon_member_fn on_member; /* called for the top-level object's members, or NULL */
    void *ctx;
    int stopped; /* on_member returned non-zero */
} scan;

static int scan_literal(scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

static int scan_integer(scan *s)
{
    const unsigned char *start = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    const unsigned char *digits = s->p;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return 0;
    if (*s->p == '0') {
        s->p++;
        if (digits != start) /* "-0" encodes as "0" */
            return 0;
    } else {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    return !integer_too_big((const char *)digits, (size_t)(s->p - digits));
}

static int hex_upper(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One UTF-8 sequence at p (< end): its length, or 0 when it is not valid UTF-8. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n)
        return 0;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3Fu);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

int ov_utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = utf8_length(p, end);
        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* How many bytes from p on are plain ASCII text: no byte below 0x20 or from 0x80 on, no quote, no
 * backslash. Most of a record's bytes are, and this scan is most of the canonical check's time, so
 * it takes sixteen bytes at a time where the CPU has SSE2 (every x86-64 has), then eight at a time
 * (the tests of "Bit Twiddling Hacks": a word has a zero byte when (v - 0x01..01) & ~v & 0x80..80
 * is not zero; below n likewise with n × 0x01..01), then one. */
static size_t plain_text_run(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed: bytes from 0x80 on are negative, so "below 0x20" takes them too. */
        __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                         _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(special);
        if (mask)
            return (size_t)(p - start) + (size_t)__builtin_ctz(mask);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
        uint64_t quote8 = v ^ (ones * '"'), slash8 = v ^ (ones * '\\');
        uint64_t special = (v & high) | ((v - ones * 0x20) & ~v & high) |
                           ((quote8 - ones) & ~quote8 & high) | ((slash8 - ones) & ~slash8 & high);
        if (special)
            break;
        p += 8;
    }
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return (size_t)(p - start);
}

/* A canonical string literal; *decoded (malloc'd, or NULL when the literal has no escapes and is
 * its own text) receives its text when want_text is set, for key comparison and NFC. */
static int scan_string(scan *s, int want_text, char **decoded, size_t *decoded_len,
                       const unsigned char **raw, size_t *raw_len)
{
    if (s->p >= s->end || *s->p != '"')
        return 0;
    s->p++;
    const unsigned char *start = s->p;
    int escapes = 0, ascii = 1;
    while (s->p < s->end) {
        s->p += plain_text_run(s->p, s->end);
        if (s->p >= s->end)
            break;
        unsigned char c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return 0; /* control characters are written escaped */
        if (c == '\\') {
            escapes = 1;
            if (s->end - s->p < 2)
                return 0;
            unsigned char e = s->p[1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                s->p += 2;
                continue;
            }
            if (e != 'u' || s->end - s->p < 6 || s->p[2] != '0' || s->p[3] != '0')
                return 0; /* only control characters are escaped, as \u00XX */
            int hi = hex_upper(s->p[4]), lo = hex_upper(s->p[5]);
            if (hi < 0 || lo < 0)
                return 0;
            int v = hi * 16 + lo;
            if (v == 0 || v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' ||
                v == '\t')
                return 0; /* NUL never occurs; these five have short escapes */
            s->p += 6;
            continue;
        }
        if (c < 0x80) {
            s->p++;
            continue;
        }
        ascii = 0;
        size_t n = utf8_length(s->p, s->end);
        if (n == 0)
            return 0;
        s->p += n;
    }
    if (s->p >= s->end)
        return 0;
    *raw = start;
    *raw_len = (size_t)(s->p - start);
    s->p++; /* the closing quote */
    *decoded = NULL;
    *decoded_len = *raw_len;
    if (!escapes && (ascii || ov_text_is_simple_nfc((const char *)start, *raw_len)))
        return 1;
    if (!escapes && !want_text)
        return is_nfc((const char *)start, *raw_len);
    /* Escapes (or text that needs the full NFC check): the decoded text. */
    char *text = malloc(*raw_len + 1);
    if (!text)
        return 0;
    long n = ov_canon_string((const char *)start - 1, *raw_len + 2, text, *raw_len + 1);
    if (n < 0 || !is_nfc(text, (size_t)n)) {
        free(text);
        return 0;
    }
    if (want_text) {
        *decoded = text;
        *decoded_len = (size_t)n;
    } else {
        free(text);
    }
    return 1;
}

static int scan_value(scan *s, int depth);

static int scan_object(scan *s, int depth)
{
    s->p++; /* { */
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 1;
    }
    char *prev = NULL;
    const unsigned char *prev_raw = NULL;
    size_t prev_len = 0;
    int ok = 0;
    for (;;) {
        char *text;
        size_t text_len;
        const unsigned char *raw;
        size_t raw_len;
        if (!scan_string(s, 1, &text, &text_len, &raw, &raw_len))
            break;
        const char *key = text ? text : (const char *)raw;
        const char *before = prev ? prev : (const char *)prev_raw;
        /* Strictly increasing by bytes (strcmp order of the texts): sorted, and no key twice. */
        if (before) {
            size_t common = prev_len < text_len ? prev_len : text_len;
            int cmp = memcmp(before, key, common);
            if (cmp > 0 || (cmp == 0 && prev_len >= text_len)) {
                free(text);
                break;
            }
        }
        free(prev);
        prev = text;
        prev_raw = raw;
        prev_len = text_len;
        if (s->p >= s->end || *s->p != ':')
            break;
        s->p++;
        const unsigned char *value = s->p;
        if (!scan_value(s, depth))
            break;
        if (depth == 1 && s->on_member &&
            s->on_member(s->ctx, (const char *)raw, raw_len, (const char *)value,
                         (size_t)(s->p - value)) != 0) {
            s->stopped = 1;
            break;
        }
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        ok = s->p < s->end && *s->p == '}';
        if (ok)
            s->p++;
        break;
    }
    free(prev);
    return ok;
}

static int scan_value(scan *s, int depth)
{
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case 'n':
        return scan_literal(s, "null");
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case '"': {
        char *text;
        size_t text_len, raw_len;
        const unsigned char *raw;
        return scan_string(s, 0, &text, &text_len, &raw, &raw_len);
    }
    case '[':
        if (depth >= OV_JSON_MAX_DEPTH)
            return 0;
        s->p++;
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 1;
        }
        for (;;) {
            if (!scan_value(s, depth + 1))
                return 0;
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == ']') {
                s->p++;
                return 1;
            }
            return 0;
        }
    case '{':
        if (depth >= OV_JSON_MAX_DEPTH)
            return 0;
        return scan_object(s, depth + 1);
    default:
        return scan_integer(s);
    }
}

int ov_canon_is_canonical(const char *data, size_t len)
{
    if (!data || len == 0 || len > CANON_MAX_BYTES)
        return 0;
    scan s = {(const unsigned char *)data, (const unsigned char *)data + len, NULL, NULL, 0};
    return scan_value(&s, 0) && s.p == s.end;
}

int ov_canon_check_members(const char *data, size_t len, ov_canon_member_fn fn, void *ctx)
{
    if (!data || len == 0 || len > CANON_MAX_BYTES || data[0] != '{')
        return 0;
    scan s = {(const unsigned char *)data, (const unsigned char *)data + len, fn, ctx, 0};
    return scan_value(&s, 0) && s.p == s.end && !s.stopped;
}

int ov_canon_is_canonical_by_encoding(const char *data, size_t len)
{
    json_t *value = NULL;
    if (ov_json_parse(data, len, &value, NULL) != OV_OK)
        return 0;
    char *encoded = NULL;
    size_t encoded_len = 0;
    int same = ov_canon_encode(value, &encoded, &encoded_len) == OV_OK && encoded_len == len &&
               memcmp(encoded, data, len) == 0;
    free(encoded);
    json_decref(value);
    return same;
}

/* The end of the JSON value starting at data[i] (one past its last byte), or 0 when malformed. */
static size_t value_end(const char *data, size_t len, size_t i)
{
    int depth = 0;
    while (i < len) {
        char c = data[i];
        if (c == '"') {
            /* To the closing quote: the next quote not escaped by an odd run of backslashes. */
            i++;
            for (;;) {
                const char *quote = memchr(data + i, '"', len - i);
                if (!quote)
                    return 0;
                size_t at = (size_t)(quote - data), slashes = 0;
                while (at - slashes > i && data[at - slashes - 1] == '\\')
                    slashes++;
                i = at + 1;
                if (slashes % 2 == 0)
                    break;
            }
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* the end of a scalar before the enclosing object's close */
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return depth == 0 ? i : 0;
}

static size_t skip_space(const char *data, size_t len, size_t i)
{
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    return i;
}

int ov_canon_each_member(const char *data, size_t len, ov_canon_member_fn fn, void *ctx)
{
    size_t i = skip_space(data, len, 0);
    if (i >= len || data[i] != '{')
        return OV_EINVAL;
    i = skip_space(data, len, i + 1);
    if (i < len && data[i] == '}')
        return 0;
    while (i < len) {
        if (data[i] != '"')
            return OV_EINVAL;
        size_t key_end = value_end(data, len, i);
        if (!key_end)
            return OV_EINVAL;
        size_t colon = skip_space(data, len, key_end);
        if (colon >= len || data[colon] != ':')
            return OV_EINVAL;
        size_t start = skip_space(data, len, colon + 1);
        size_t end = start < len ? value_end(data, len, start) : 0;
        if (!end || end == start)
            return OV_EINVAL;
        size_t trimmed = end;
        while (trimmed > start && (data[trimmed - 1] == ' ' || data[trimmed - 1] == '\n'))
            trimmed--;
        int rc = fn(ctx, data + i + 1, key_end - i - 2, data + start, trimmed - start);
        if (rc)
            return rc;
        i = skip_space(data, len, end);
        if (i < len && data[i] == '}')
            return 0;
        if (i >= len || data[i] != ',')
            return OV_EINVAL;
        i = skip_space(data, len, i + 1);
    }
    return OV_EINVAL;
}

/* The code unit of a \uXXXX escape (p at the four digits), or -1. */
static long read_hex4(const char *p)
{
    char digits[5];
    for (int k = 0; k < 4; k++) {
        if (!isxdigit((unsigned char)p[k]))
            return -1;
        digits[k] = p[k];
    }
    digits[4] = 0;
    return strtol(digits, NULL, 16);
}

long ov_canon_string(const char *literal, size_t len, char *out, size_t size)
{
    if (len < 2 || literal[0] != '"' || literal[len - 1] != '"' || size == 0)
        return -1;
    size_t n = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        char c = literal[i];
        uint8_t utf8[4];
        size_t bytes = 1;
        utf8[0] = (uint8_t)c;
        if (c == '\\') {
            if (i + 2 >= len)
                return -1;
            char e = literal[++i];
            switch (e) {
            case 'n':
                utf8[0] = '\n';
                break;
            case 't':
                utf8[0] = '\t';
                break;
            case 'r':
                utf8[0] = '\r';
                break;
            case 'b':
                utf8[0] = '\b';
                break;
            case 'f':
                utf8[0] = '\f';
                break;
            case '"':
            case '\\':
            case '/':
                utf8[0] = (uint8_t)e;
                break;
            case 'u': {
                if (i + 4 >= len)
                    return -1;
                long cp = read_hex4(literal + i + 1);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len && literal[i + 1] == '\\' &&
                    literal[i + 2] == 'u') {
                    long low = read_hex4(literal + i + 3);
                    if (low >= 0xDC00 && low <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        i += 6;
                    }
                }
                if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    return -1;
                bytes = (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, utf8);
                if (bytes == 0)
                    return -1;
                break;
            }
            default:
                return -1;
            }
        }
        if (n + bytes + 1 > size)
            return -1;
        memcpy(out + n, utf8, bytes);
        n += bytes;
    }
    out[n] = 0;
    return (long)n;
}
