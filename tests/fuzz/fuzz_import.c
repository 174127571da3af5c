/*
 * Fuzz target for the DUO CSV parser: any bytes, as a file name-less import without a store.
 * Checks that the parser never crashes or leaks, that every delivered row carries a six-character
 * key and validated content, and that the counts add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "server/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_row(void *ctx, long line, const char *key, const json_t *content,
                     const char **reason)
{
    size_t *rows = ctx;
    if (strlen(key) != 6 || line < 2 || !json_is_object(content))
        abort();
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    if (ov_record_validate(OV_KIND_SCHOOL, content, &errs) != OV_OK)
        abort();
    (*rows)++;
    /* Reject every third row through the callback path too. */
    if (*rows % 3 == 0) {
        *reason = "test";
        return 1;
    }
    return OV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ov_import_options options;
    ov_import_options_init(&options);
    options.max_rows = 1000;
    ov_import_report report;
    memset(&report, 0, sizeof report);
    size_t rows = 0;
    int rc = ov_import_parse((const char *)data, size, NULL, &options, count_row, &rows, &report);
    if (rc == OV_OK || rc == OV_ETOOBIG) {
        if (report.rejected > report.read || rows > report.read)
            abort();
        if (report.rejection_count > report.rejected)
            abort();
    }
    ov_import_report_free(&report);
    return 0;
}
