/*
 * The demo dataset: every record validates and refers only to records of the right kind that
 * come before it, the generated part is the same on every run, the counts are what
 * docs/demo-data.md promises, and loading into a store creates it all once with its fixed ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/canon.h"
#include "proto/error.h"
#include "server/demo.h"

/* Expected sizes: seed records per kind, generated records per kind. */
static const int seed_count[OV_KIND_COUNT] = {7, 14, 5, 12, 16, 5, 4};
static const int generated_count[OV_KIND_COUNT] = {0, 40, 30, 120, 200, 20, 0};

#define MAX_RECORDS 2000

typedef struct {
    int count;
    ov_id ids[MAX_RECORDS];
    ov_kind kinds[MAX_RECORDS];
    int per_kind[OV_KIND_COUNT];
    int generated[OV_KIND_COUNT];
    int drafts;
    int bad_references;
    char first_bad[200];
    char *dump; /* concatenated sorted JSON of every record, for the determinism check */
    size_t dump_len;
    json_t *murmellius_case;
    ov_id murmellius_id;
} walk;

static int known(const walk *w, const char *text, ov_kind kind)
{
    ov_id id;
    if (!text || ov_id_parse(text, strlen(text), &id) != OV_OK)
        return 0;
    for (int i = 0; i < w->count; i++)
        if (ov_id_compare(&w->ids[i], &id) == 0)
            return w->kinds[i] == kind;
    return 0;
}

static void check_reference(walk *w, const json_t *content, const char *field, ov_kind kind)
{
    json_t *value = json_object_get(content, field);
    if (!value)
        return;
    size_t i;
    json_t *item;
    if (json_is_array(value)) {
        json_array_foreach(value, i, item) check_reference(w, item, NULL, kind);
        return;
    }
    const char *text = json_string_value(value);
    if (!known(w, text, kind)) {
        if (!w->bad_references++)
            snprintf(w->first_bad, sizeof w->first_bad, "%s -> %s", field ? field : "[]",
                     text ? text : "(not a string)");
    }
}

static int collect(void *ctx, ov_kind kind, const ov_id *id, ov_status status,
                   const json_t *content, int generated)
{
    walk *w = ctx;
    if (w->count == MAX_RECORDS)
        return OV_ETOOBIG;
    /* Each reference must point at a record already walked, of the right kind. */
    if (json_is_object(content)) {
        check_reference(w, content, "region", OV_KIND_REGION);
        check_reference(w, content, "school", OV_KIND_SCHOOL);
        check_reference(w, content, "case", OV_KIND_CASE);
        check_reference(w, content, "taken_by", OV_KIND_PERSON);
        check_reference(w, content, "brigadier", OV_KIND_PERSON);
        check_reference(w, content, "request", OV_KIND_REQUEST);
        json_t *schools = json_object_get(content, "schools");
        size_t i;
        json_t *item;
        json_array_foreach(schools, i, item)
        {
            if (!known(w, json_string_value(item), OV_KIND_SCHOOL) && !w->bad_references++)
                snprintf(w->first_bad, sizeof w->first_bad, "schools -> %s",
                         json_string_value(item));
        }
    }
    w->ids[w->count] = *id;
    w->kinds[w->count] = kind;
    w->count++;
    w->per_kind[kind]++;
    if (generated)
        w->generated[kind]++;
    assert_int_equal(json_is_true(json_object_get(content, "generated")), generated);
    if (status == OV_STATUS_DRAFT)
        w->drafts++;
    const char *title = json_string_value(json_object_get(content, "title"));
    if (kind == OV_KIND_CASE && !generated && title && strstr(title, "Murmellius")) {
        w->murmellius_case = json_deep_copy(content);
        w->murmellius_id = *id;
    }
    char *text = json_dumps(content, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(text);
    size_t n = strlen(text);
    w->dump = realloc(w->dump, w->dump_len + n + 1);
    memcpy(w->dump + w->dump_len, text, n + 1);
    w->dump_len += n;
    free(text);
    return OV_OK;
}

static walk *walk_all(void)
{
    walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(ov_demo_each(collect, w), OV_OK);
    return w;
}

static void walk_free(walk *w)
{
    json_decref(w->murmellius_case);
    free(w->dump);
    free(w);
}

static void test_every_record_validates(void **state)
{
    ov_demo_problem problem;
    memset(&problem, 0, sizeof problem);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = ov_demo_check(&problem);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc != OV_OK) {
        fprintf(stderr, "invalid demo record: %s %s\n", ov_kind_name(problem.kind), problem.id);
        for (int i = 0; i < problem.errors.count; i++)
            fprintf(stderr, "  %s: %s\n", problem.errors.items[i].field,
                    problem.errors.items[i].message_en);
    }
    assert_int_equal(rc, OV_OK);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(seconds < 1.0);
}

static void test_counts_references_and_ids(void **state)
{
    walk *w = walk_all();
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        assert_int_equal(w->per_kind[k] - w->generated[k], seed_count[k]);
        assert_int_equal(w->generated[k], generated_count[k]);
    }
    if (w->bad_references)
        fprintf(stderr, "first dangling reference: %s\n", w->first_bad);
    assert_int_equal(w->bad_references, 0);
    for (int i = 0; i < w->count; i++)
        for (int j = i + 1; j < w->count; j++)
            assert_int_not_equal(ov_id_compare(&w->ids[i], &w->ids[j]), 0);
    /* Mostly published, a few drafts for the moderation flow. */
    assert_true(w->drafts >= 5);
    assert_true(w->drafts < w->count / 10);
    walk_free(w);
}

static void test_murmellius_case(void **state)
{
    walk *w = walk_all();
    json_t *c = w->murmellius_case;
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "phase")), "implementatie");
    json_t *doel = json_object_get(json_object_get(c, "scan"), "doel");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(doel, "innovatieteam"), "score")), 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(doel, "omgeving"), "score")), 5);
    assert_non_null(strstr(json_string_value(json_object_get(c, "source")), "seed 000"));
    walk_free(w);
}

static void test_generation_is_deterministic(void **state)
{
    walk *a = walk_all();
    walk *b = walk_all();
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->dump_len, b->dump_len);
    assert_memory_equal(a->dump, b->dump, a->dump_len);
    assert_memory_equal(a->ids, b->ids, sizeof(ov_id) * (size_t)a->count);
    walk_free(a);
    walk_free(b);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void test_load_once(void **state)
{
    char dir[] = "/tmp/ov-test-demo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ov_keypair *key;
    assert_int_equal(ov_keypair_generate(&key), OV_OK);
    ov_store_options options = {.dir = dir, .map_size = 64u << 20, .key = key};
    ov_store *store;
    assert_int_equal(ov_store_open(&options, &store), OV_OK);

    ov_demo_counts counts;
    assert_int_equal(ov_demo_load(store, &counts), OV_OK);
    int total = 0;
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        assert_int_equal(counts.per_kind[k], seed_count[k] + generated_count[k]);
        total += seed_count[k] + generated_count[k];
    }
    assert_int_equal(counts.records, total);
    assert_int_equal(counts.generated + counts.from_seeds, total);
    assert_int_equal(counts.accounts, 5);
    assert_int_equal(counts.already_loaded, 0);

    ov_read *read;
    assert_int_equal(ov_read_begin(store, &read), OV_OK);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.records, (uint64_t)total);
    uint64_t last_change = ov_read_last_change(read);

    /* The accounts: passwords are stored hashed, never in clear, and the brigadier has a
     * person record. */
    ov_id admin, id;
    json_t *account;
    assert_int_equal(ov_demo_account_id("admin", &admin), OV_OK);
    assert_int_equal(ov_read_account_by_name(read, "moderator", &id, &account), OV_OK);
    assert_null(json_object_get(account, "password"));
    const char *hash = json_string_value(json_object_get(account, "password_hash"));
    assert_non_null(hash);
    assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
    json_decref(account);
    assert_int_equal(ov_read_account_by_name(read, "brigadier", &id, &account), OV_OK);
    const char *person = json_string_value(json_object_get(account, "person"));
    assert_non_null(person);
    ov_id person_id;
    ov_record_meta meta;
    assert_int_equal(ov_id_parse(person, strlen(person), &person_id), OV_OK);
    assert_int_equal(ov_read_record(read, &person_id, &meta, NULL, NULL), OV_OK);
    assert_int_equal(meta.env.kind, OV_KIND_PERSON);
    assert_int_equal(ov_id_compare(&meta.env.author, &admin), 0);
    json_decref(account);

    /* The Murmellius case is there under its fixed id, published, with its phase and scan. */
    walk *w = walk_all();
    const char *json;
    size_t len;
    assert_int_equal(ov_read_record(read, &w->murmellius_id, &meta, &json, &len), OV_OK);
    assert_int_equal(meta.env.kind, OV_KIND_CASE);
    assert_int_equal(meta.env.status, OV_STATUS_PUBLISHED);
    json_t *stored;
    ov_json_error err;
    assert_int_equal(ov_json_parse(json, len, &stored, &err), OV_OK);
    assert_string_equal(json_string_value(json_object_get(stored, "phase")), "implementatie");
    assert_true(
        json_equal(json_object_get(stored, "scan"), json_object_get(w->murmellius_case, "scan")));
    json_decref(stored);
    walk_free(w);
    ov_read_end(read);

    /* A second load changes nothing. */
    assert_int_equal(ov_demo_load(store, &counts), OV_OK);
    assert_int_equal(counts.already_loaded, 1);
    assert_int_equal(counts.records, 0);
    assert_int_equal(ov_read_begin(store, &read), OV_OK);
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.records, (uint64_t)total);
    assert_int_equal(ov_read_last_change(read), last_change);
    ov_read_end(read);

    ov_store_close(store);
    ov_keypair_free(key);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_record_validates),
        cmocka_unit_test(test_counts_references_and_ids),
        cmocka_unit_test(test_murmellius_case),
        cmocka_unit_test(test_generation_is_deterministic),
        cmocka_unit_test(test_load_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
