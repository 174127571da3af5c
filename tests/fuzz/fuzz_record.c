/*
 * Fuzz target for the record model: arbitrary bytes are parsed as strict JSON and validated as
 * every kind; whatever validates is sealed, and the sealed form must be canonical, seal again to
 * the same hash, validate again and give back its envelope. Facets and the display title are
 * walked for any parsed value, valid or not, since lists index what peers send. The input is also
 * tried as a timestamp, which must round-trip when accepted. A violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/canon.h"
#include "proto/error.h"
#include "proto/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_facet(void *ctx, const char *facet, const char *value)
{
    if (!facet || !value || strlen(value) > 96)
        abort();
    (*(int *)ctx)++;
    return 0;
}

static void check_sealed(ov_kind kind, const json_t *content)
{
    ov_envelope env;
    memset(&env, 0, sizeof env);
    env.kind = kind;
    env.version = 1;
    env.created_ms = 1795867200000;
    env.updated_ms = 1795867200001;
    env.status = ov_record_requested_status(content, OV_STATUS_PUBLISHED);
    env.id.bytes[0] = 1;
    env.origin.bytes[0] = 2;
    env.author.bytes[0] = 3;

    json_t *record = NULL;
    char *canon = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    uint8_t hash[OV_HASH_BYTES], hash2[OV_HASH_BYTES];
    int rc = ov_record_seal(content, &env, &record, &canon, &len, hash);
    if (rc == OV_ENOMEM)
        return;
    if (rc != OV_OK || !ov_canon_is_canonical(canon, len))
        abort();
    /* Sealing is a function of content and envelope only. */
    if (ov_record_seal(content, &env, NULL, &again, &again_len, hash2) != OV_OK ||
        again_len != len || memcmp(canon, again, len) != 0 || memcmp(hash, hash2, sizeof hash))
        abort();
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    if (ov_record_validate(kind, record, &errs) != OV_OK)
        abort();
    ov_envelope back;
    if (ov_record_envelope(record, &back) != OV_OK || back.kind != kind || back.version != 1 ||
        back.created_ms != env.created_ms || back.updated_ms != env.updated_ms ||
        back.status != env.status || memcmp(&back.id, &env.id, sizeof env.id) != 0)
        abort();
    int facets = 0;
    ov_record_facets(kind, record, count_facet, &facets);
    free(canon);
    free(again);
    json_decref(record);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ms;
    if (ov_time_parse((const char *)data, size, &ms) == OV_OK) {
        char text[32];
        ov_time_format(ms, text);
        if (strlen(text) != size || memcmp(text, data, size) != 0)
            abort();
    }

    json_t *content = NULL;
    ov_json_error err;
    if (ov_json_parse((const char *)data, size, &content, &err) != OV_OK)
        return 0;
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        int rc = ov_record_validate((ov_kind)k, content, &errs);
        if (rc != OV_OK && rc != OV_ESCHEMA)
            abort();
        if ((rc == OV_OK) != (errs.count == 0 && !errs.truncated))
            abort();
        for (int i = 0; i < errs.count; i++)
            if (!errs.items[i].message_nl[0] || !errs.items[i].message_en[0] ||
                memchr(errs.items[i].field, 0, sizeof errs.items[i].field) == NULL)
                abort();
        if (rc == OV_OK)
            check_sealed((ov_kind)k, content);
        int facets = 0;
        ov_record_facets((ov_kind)k, content, count_facet, &facets);
        if (!ov_record_display_title((ov_kind)k, content))
            abort();
        ov_envelope env;
        (void)ov_record_envelope(content, &env);
    }
    json_decref(content);
    return 0;
}
