/*
 * DUO school import against a real store in a temporary directory, with the fixtures in
 * tests/fixtures/duo: old and new column names, UTF-8 with BOM and Windows-1252, broken rows
 * rejected with their line numbers, and a second import that changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/canon.h"
#include "proto/error.h"
#include "server/import.h"

typedef struct {
    char dir[64];
    ov_keypair *key;
    ov_store *store;
} fixture;

static char *fixture_path(const char *name)
{
    const char *source = getenv("OV_SOURCE_DIR");
    static char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/duo/%s", source ? source : ".", name);
    return path;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ov-test-import-XXXXXX");
    if (!mkdtemp(f->dir) || ov_keypair_generate(&f->key) != OV_OK)
        return -1;
    ov_store_options options = {.dir = f->dir, .map_size = 64u << 20, .key = f->key};
    if (ov_store_open(&options, &f->store) != OV_OK)
        return -1;
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    ov_store_close(f->store);
    ov_keypair_free(f->key);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

typedef struct {
    int count;
    json_t *found; /* the school whose key matched, if any */
    const char *key;
} school_search;

static int on_school(void *ctx, const ov_record_meta *meta, const char *json, size_t len)
{
    school_search *s = ctx;
    s->count++;
    json_t *record;
    ov_json_error err;
    assert_int_equal(ov_json_parse(json, len, &record, &err), OV_OK);
    char key[8];
    snprintf(key, sizeof key, "%s%s", json_string_value(json_object_get(record, "brin")),
             json_string_value(json_object_get(record, "vestiging")));
    if (s->key && strcmp(key, s->key) == 0 && !s->found)
        s->found = json_incref(record);
    json_decref(record);
    return 0;
}

/* Number of schools in the store; *found (if key) the one with that BRIN + vestiging. */
static int schools(fixture *f, const char *key, json_t **found)
{
    school_search s = {0, NULL, key};
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_list_query q;
    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_SCHOOL;
    q.limit = 200;
    ov_id next;
    assert_int_equal(ov_read_list(read, &q, on_school, &s, &next), OV_OK);
    ov_read_end(read);
    if (found)
        *found = s.found;
    else
        json_decref(s.found);
    return s.count;
}

static int import(fixture *f, const char *name, const char *sector, ov_import_report *report)
{
    ov_import_options options;
    ov_import_options_init(&options);
    options.sector = sector;
    return ov_import_schools(f->store, fixture_path(name), &options, report);
}

static const char *text(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static void test_old_style_then_unchanged(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-vo-oud.csv", NULL, &report), OV_OK);
    assert_int_equal(report.read, 3);
    assert_int_equal(report.created, 3);
    assert_int_equal(report.rejected, 0);
    assert_string_equal(report.sector, "vo");
    assert_non_null(strstr(report.sector_reason, "bestandsnaam"));
    assert_string_equal(report.encoding, "UTF-8");
    ov_import_report_free(&report);

    json_t *school;
    assert_int_equal(schools(f, "17MG00", &school), 3);
    assert_non_null(school);
    assert_string_equal(text(school, "name"), "Murmellius Gymnasium");
    assert_string_equal(text(school, "place"), "Alkmaar"); /* DUO's capitals made readable */
    assert_string_equal(text(school, "street"), "Drechterwaard 10");
    assert_string_equal(text(school, "website"), "https://www.murmellius.nl");
    assert_string_equal(text(school, "authority"), "41234");
    json_decref(school);
    assert_int_equal(schools(f, "25PX01", &school), 3);
    assert_non_null(school);
    assert_string_equal(text(school, "name"), "Scholengemeenschap \"De Duinen\"");
    assert_string_equal(text(school, "municipality"), "Bergen (NH)");
    json_decref(school);

    /* The same file again: nothing new, nothing changed, no duplicates. */
    assert_int_equal(import(f, "adressen-vo-oud.csv", NULL, &report), OV_OK);
    assert_int_equal(report.read, 3);
    assert_int_equal(report.created, 0);
    assert_int_equal(report.updated, 0);
    assert_int_equal(report.unchanged, 3);
    ov_import_report_free(&report);
    assert_int_equal(schools(f, NULL, NULL), 3);
}

static void test_update_keeps_other_fields(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-vo-oud.csv", NULL, &report), OV_OK);
    ov_import_report_free(&report);

    /* Someone links the school to a region: a field the CSV does not have. */
    json_t *school;
    schools(f, "17MG00", &school);
    ov_id id;
    const char *id_text = text(school, "id");
    assert_int_equal(ov_id_parse(id_text, strlen(id_text), &id), OV_OK);
    const char *envelope[] = {"id",      "kind",    "origin", "version",
                              "created", "updated", "author", "status"};
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        json_object_del(school, envelope[i]);
    json_object_set_new(school, "region", json_string("01KDVDNA011M0G000000000001"));
    json_object_set_new(school, "place", json_string("Oud-Alkmaar"));
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_REPLACE);
    op->id = id;
    op->kind = OV_KIND_SCHOOL;
    op->content = school;
    op->status = OV_STATUS_PUBLISHED;
    assert_int_equal(ov_store_write_one(f->store, op), OV_OK);
    ov_write_op_free(op);

    assert_int_equal(import(f, "adressen-vo-oud.csv", NULL, &report), OV_OK);
    assert_int_equal(report.updated, 1);
    assert_int_equal(report.unchanged, 2);
    assert_int_equal(report.created, 0);
    ov_import_report_free(&report);
    assert_int_equal(schools(f, "17MG00", &school), 3);
    assert_string_equal(text(school, "place"), "Alkmaar");                     /* from CSV */
    assert_string_equal(text(school, "region"), "01KDVDNA011M0G000000000001"); /* kept */
    assert_int_equal(json_integer_value(json_object_get(school, "version")), 3);
    json_decref(school);
}

static void test_new_style_with_bom(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-po-nieuw.csv", NULL, &report), OV_OK);
    assert_int_equal(report.created, 3);
    assert_int_equal(report.rejected, 0);
    assert_string_equal(report.encoding, "UTF-8 met BOM");
    assert_string_equal(report.sector, "po");
    ov_import_report_free(&report);
    json_t *school;
    /* VESTIGINGSCODE as BRIN + two digits, and as two digits. */
    assert_int_equal(schools(f, "15PP01", &school), 3);
    assert_non_null(school);
    assert_string_equal(text(school, "sector"), "po");
    json_decref(school);
    schools(f, "13BF00", &school);
    assert_non_null(school);
    assert_string_equal(text(school, "place"), "Westerhaar-Vriezenveensewijk");
    assert_string_equal(text(school, "postcode"), "7671 AA");
    json_decref(school);
    schools(f, "12DD00", &school);
    assert_non_null(school);
    json_decref(school);
}

static void test_windows_1252(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-so-windows1252.csv", NULL, &report), OV_OK);
    assert_int_equal(report.created, 2);
    assert_string_equal(report.encoding, "Windows-1252");
    assert_string_equal(report.sector, "so");
    ov_import_report_free(&report);
    json_t *school;
    schools(f, "33FR00", &school);
    assert_non_null(school);
    assert_string_equal(text(school, "name"), "Obs De F\xc3\xbbgel");
    assert_string_equal(text(school, "province"), "Frysl\xc3\xa2n");
    json_decref(school);
    schools(f, "34ZE00", &school);
    assert_non_null(school);
    assert_string_equal(text(school, "name"), "Basisschool \xe2\x80\x99t Zonneke");
    json_decref(school);
}

static void test_broken_rows(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-kapot.csv", "vo", &report), OV_OK);
    assert_int_equal(report.read, 7);
    assert_int_equal(report.created, 2);
    assert_int_equal(report.rejected, 5);
    assert_non_null(strstr(report.sector_reason, "--sector"));
    assert_int_equal(report.rejection_count, 5);
    const long lines[] = {3, 4, 5, 6, 9};
    const char *mentions[] = {"brin", "name", "aanhalingsteken", "te veel kolommen", "postcode"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(report.rejections[i].line, lines[i]);
        if (!strstr(report.rejections[i].reason, mentions[i]))
            fail_msg("line %ld: expected '%s' in '%s'", lines[i], mentions[i],
                     report.rejections[i].reason);
    }
    char *printed = NULL;
    size_t printed_len = 0;
    FILE *out = open_memstream(&printed, &printed_len);
    ov_import_report_print(&report, out);
    fclose(out);
    assert_non_null(strstr(printed, "regel 5: "));
    assert_non_null(strstr(printed, "afgewezen / rejected: 5"));
    free(printed);
    ov_import_report_free(&report);
    assert_int_equal(schools(f, NULL, NULL), 2);
}

static void test_options_and_limits(void **state)
{
    fixture *f = *state;
    ov_import_report report;
    assert_int_equal(import(f, "adressen-vo-oud.csv", "sbo", &report), OV_EINVAL);
    ov_import_report_free(&report);
    assert_int_equal(import(f, "adressen-vo-oud.csv", "mbo", &report), OV_OK);
    assert_string_equal(report.sector, "mbo");
    ov_import_report_free(&report);
    json_t *school;
    schools(f, "20GL00", &school);
    assert_string_equal(text(school, "sector"), "mbo");
    json_decref(school);

    assert_int_equal(import(f, "does-not-exist.csv", NULL, &report), OV_EIO);
    ov_import_report_free(&report);

    /* The row cap stops the import and says so; rows before it stay imported. */
    ov_import_options options;
    ov_import_options_init(&options);
    options.max_rows = 2;
    assert_int_equal(
        ov_import_schools(f->store, fixture_path("adressen-po-nieuw.csv"), &options, &report),
        OV_ETOOBIG);
    assert_int_equal(report.truncated, 1);
    assert_int_equal(report.created, 2);
    ov_import_report_free(&report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_old_style_then_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_keeps_other_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_style_with_bom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_1252, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_and_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
