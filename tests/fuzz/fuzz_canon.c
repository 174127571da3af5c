/*
 * Fuzz target for strict JSON input and the canonical encoding: whatever parses must normalise,
 * encode, and re-parse to a value whose encoding is byte for byte the same (the canonical form is
 * a fixed point), and ov_canon_is_canonical must agree. The member walk and string decoder, which
 * read stored records without parsing them, get the raw input too (they must never read out of
 * bounds) and, on canonical objects, must give each member's string exactly as jansson does.
 * The canonical check that gives the top-level members as it goes (ov_canon_check_members) must
 * agree with the check alone, and give the members the walk gives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const json_t *object; /* NULL: only walk */
} walk;

static int check_member(void *ctx, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    walk *w = ctx;
    char text[4096];
    long n = ov_canon_string(value, value_len, text, sizeof text);
    if (!w->object)
        return 0;
    char name[256];
    if (key_len >= sizeof name)
        return 0;
    memcpy(name, key, key_len);
    name[key_len] = 0;
    const json_t *member = json_object_get(w->object, name);
    if (json_is_string(member) && json_string_length(member) < sizeof text &&
        !memchr(json_string_value(member), 0, json_string_length(member)) &&
        (n != (long)json_string_length(member) ||
         memcmp(text, json_string_value(member), (size_t)n)))
        abort();
    return 0;
}

/* Every member given, as "key\0value\0", for comparing two walks. */
typedef struct {
    char *text;
    size_t len, cap;
} transcript;

static int note(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    transcript *t = ctx;
    if (t->len + key_len + value_len + 2 > t->cap) {
        size_t cap = (t->cap + key_len + value_len + 2) * 2;
        char *grown = realloc(t->text, cap);
        if (!grown)
            abort();
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, key, key_len);
    t->text[t->len + key_len] = 0;
    memcpy(t->text + t->len + key_len + 1, value, value_len);
    t->text[t->len + key_len + 1 + value_len] = 0;
    t->len += key_len + value_len + 2;
    return 0;
}

static void check_member_walks(const char *data, size_t size)
{
    transcript checked = {NULL, 0, 0}, walked = {NULL, 0, 0};
    int canonical_object = ov_canon_check_members(data, size, note, &checked);
    if (canonical_object != (ov_canon_is_canonical(data, size) && size > 0 && data[0] == '{'))
        abort();
    if (canonical_object) {
        if (ov_canon_each_member(data, size, note, &walked) != 0 || walked.len != checked.len ||
            (walked.len && memcmp(walked.text, checked.text, walked.len) != 0))
            abort();
    }
    free(checked.text);
    free(walked.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_member_walks((const char *)data, size);
    /* The one-pass canonical check agrees with its definition on every input. */
    if (ov_canon_is_canonical((const char *)data, size) !=
        ov_canon_is_canonical_by_encoding((const char *)data, size))
        abort();
    walk raw = {NULL};
    ov_canon_each_member((const char *)data, size, check_member, &raw);
    json_t *value = NULL;
    ov_json_error err;
    if (ov_json_parse((const char *)data, size, &value, &err) != 0)
        return 0;
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    if (ov_canon_normalize(value, &err) == 0 && ov_canon_encode(value, &first, &first_len) == 0) {
        json_t *again = NULL;
        if (ov_json_parse(first, first_len, &again, &err) != 0)
            abort(); /* the canonical form must be valid strict JSON */
        if (ov_canon_encode(again, &second, &second_len) != 0 || second_len != first_len ||
            memcmp(first, second, first_len) != 0)
            abort(); /* and a fixed point */
        if (!ov_canon_is_canonical(first, first_len))
            abort();
        if (json_is_object(again)) {
            walk w = {again};
            if (ov_canon_each_member(first, first_len, check_member, &w) != 0)
                abort();
        }
        json_decref(again);
    }
    free(first);
    free(second);
    json_decref(value);
    return 0;
}
