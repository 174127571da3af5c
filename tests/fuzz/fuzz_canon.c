/*
 * Fuzz target for strict JSON input and the canonical encoding: whatever parses must normalise,
 * encode, and re-parse to a value whose encoding is byte for byte the same (the canonical form is
 * a fixed point), and ov_canon_is_canonical must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
        json_decref(again);
    }
    free(first);
    free(second);
    json_decref(value);
    return 0;
}
