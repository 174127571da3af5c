/*
 * Strict JSON input and the canonical encoding of records.
 *
 * Every record is stored, hashed and signed in one canonical byte form, so equal content hashes
 * equally on every node and in the client:
 *   - UTF-8, no byte-order mark, no whitespace outside strings;
 *   - object members sorted by the bytes of their (NFC) key, duplicate keys impossible;
 *   - integers only, in shortest decimal form, within ±(2^53-1); no fractions, no exponents;
 *   - every string and key in Unicode Normalization Form C;
 *   - strings escape only '"', '\\', and control characters: \b \f \n \r \t by name, the rest as
 *     \u00XX with upper-case hex; everything else, including '/', is written as its UTF-8 bytes.
 * docs/protocol.md specifies this for independent implementations.
 *
 * Parsing (ov_json_parse) is for input from outside: it rejects invalid UTF-8, NUL bytes (raw or
 * \u0000), duplicate keys, nesting deeper than OV_JSON_MAX_DEPTH, numbers with fractions or
 * exponents or outside ±(2^53-1), and anything after the value, and reports where.
 */
#ifndef OV_CANON_H
#define OV_CANON_H

#include <jansson.h>
#include <stddef.h>

#define OV_JSON_MAX_DEPTH   32
#define OV_JSON_MAX_INTEGER 9007199254740991LL

typedef struct {
    int line;          /* 1-based line of the problem, 0 if not positional */
    int column;        /* 1-based column (in bytes) */
    long offset;       /* 0-based byte offset */
    char message[160]; /* English, e.g. "duplicate object key 'title'" */
} ov_json_error;

/* Parses len bytes of data (not NUL-terminated) into *out (caller owns, json_decref).
 * Errors: OV_EPARSE with *err filled. */
int ov_json_parse(const char *data, size_t len, json_t **out, ov_json_error *err);

/* Brings every string and object key in value to NFC, in place. Fails with OV_EINVAL if a string
 * is not valid UTF-8 or two keys of one object become equal after normalisation (err names it). */
int ov_canon_normalize(json_t *value, ov_json_error *err);

/* Encodes value canonically into a new malloc'd buffer *out (caller frees) of *out_len bytes,
 * NUL-terminated for convenience (the NUL is not counted). value must be normalised. Errors:
 * OV_EINVAL (a real number, an integer out of range, a non-NFC string), OV_ENOMEM. */
int ov_canon_encode(const json_t *value, char **out, size_t *out_len);

/* True when text is valid UTF-8 made only of code points below U+0300: such text is always in NFC
 * (every one of them has NFC_Quick_Check=Yes, and only code points from U+0300 up combine with
 * what precedes them). A byte scan that spares most Dutch text the full normalisation; false
 * means "not known", not "not NFC". */
int ov_text_is_simple_nfc(const char *text, size_t len);

/* Walks the members of a JSON object without building it: fn gets each key (raw, between its
 * quotes) and the raw bytes of its value (a string with its quotes, a nested object, …). For
 * reading a few members of stored canonical records, where parsing the whole record would cost
 * more than the answer. fn returns non-zero to stop. Returns OV_EINVAL when data is not an
 * object (the walk checks structure, not every byte), else 0 or fn's value. */
typedef int (*ov_canon_member_fn)(void *ctx, const char *key, size_t key_len, const char *value,
                                  size_t value_len);
int ov_canon_each_member(const char *data, size_t len, ov_canon_member_fn fn, void *ctx);

/* Decodes a JSON string literal (with its quotes) into out, NUL-terminated. Returns the length,
 * or -1 when it is not a string or does not fit in size bytes. */
long ov_canon_string(const char *literal, size_t len, char *out, size_t size);

/* True when text[0..len) is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
int ov_utf8_valid(const char *text, size_t len);

/* True when data[0..len) is already the canonical encoding of some value: one pass over the
 * bytes, nothing built. */
int ov_canon_is_canonical(const char *data, size_t len);
/* ov_canon_is_canonical for an object, in the same pass giving fn each top-level member as
 * ov_canon_each_member would (the raw key between its quotes, the raw value), in order, as soon as
 * the member is checked: one walk over a record both checks it and reads its envelope. True when
 * data is the canonical encoding of an object and fn returned 0 for every member; fn's non-zero
 * stops the walk, and the answer is then false. A member given to fn before the walk found a
 * fault later in data was checked itself, but the answer is what counts. */
int ov_canon_check_members(const char *data, size_t len, ov_canon_member_fn fn, void *ctx);
/* The same by the definition — strict parse, canonical encoding, comparison — for the tests that
 * hold the fast check to it. */
int ov_canon_is_canonical_by_encoding(const char *data, size_t len);

#endif
