/*
 * Unit tests of the LMDB store: record writes and their checks, lists with filters and cursors,
 * the change feed, the signed origin log, reopening, accounts and sessions. Every test works on
 * real LMDB files in a fresh temporary directory with a freshly generated node key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/error.h"
#include "server/store.h"

typedef struct {
    char dir[64];
    ov_keypair *key;
    ov_store *store;
    int64_t now;
    ov_id author;
    ov_id schools[3];
    char school_text[3][OV_ID_CHARS + 1];
} fixture;

static int open_store(fixture *f, const ov_keypair *key)
{
    ov_store_options options = {f->dir, (size_t)64 << 20, key, 0};
    return ov_store_open(&options, &f->store);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/ov-store-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(ov_keypair_generate(&f->key), OV_OK);
    assert_int_equal(open_store(f, f->key), OV_OK);
    f->now = 1795000000000LL; /* 2026-11-18 */
    assert_int_equal(ov_id_generate(&f->author, (uint64_t)f->now), OV_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ov_id_generate(&f->schools[i], (uint64_t)f->now - 1000), OV_OK);
        ov_id_format(&f->schools[i], f->school_text[i]);
    }
    *state = f;
    return 0;
}

static void remove_dir(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

static int teardown(void **state)
{
    fixture *f = *state;
    ov_store_close(f->store);
    ov_keypair_free(f->key);
    remove_dir(f->dir);
    free(f);
    return 0;
}

/* A case of school (and optionally a second school) with one or two themes. */
static json_t *case_content(const fixture *f, const char *title, int school, int school2,
                            const char *theme, const char *theme2, const char *phase)
{
    json_t *content = json_pack("{s:s, s:[s], s:s, s:s, s:[s]}", "title", title, "schools",
                                f->school_text[school], "summary", "Een korte samenvatting.",
                                "phase", phase, "themes", theme);
    assert_non_null(content);
    if (school2 >= 0)
        json_array_append_new(json_object_get(content, "schools"),
                              json_string(f->school_text[school2]));
    if (theme2)
        json_array_append_new(json_object_get(content, "themes"), json_string(theme2));
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    int rc = ov_record_validate(OV_KIND_CASE, content, &errs);
    if (rc != OV_OK)
        fail_msg("test content invalid: %s: %s", errs.items[0].field, errs.items[0].message_en);
    return content;
}

/* Runs one op in its own batch at time f->now (then advances the clock by a second). */
static int run(fixture *f, ov_write_op *op)
{
    ov_wtxn *txn;
    int rc = ov_store_write_begin(f->store, &txn);
    assert_int_equal(rc, OV_OK);
    ov_store_apply(txn, op, f->now);
    f->now += 1000;
    rc = op->result;
    if (rc == OV_OK)
        assert_int_equal(ov_store_write_commit(txn), OV_OK);
    else
        ov_store_write_abort(txn);
    return rc;
}

static int create_case(fixture *f, json_t *content, ov_status status, ov_id *id)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_CASE;
    op->content = content;
    op->author = f->author;
    op->status = status;
    int rc = run(f, op);
    if (rc == OV_OK && id)
        *id = op->meta.env.id;
    ov_write_op_free(op);
    return rc;
}

static int change(fixture *f, ov_write_type type, const ov_id *id, uint32_t if_version,
                  json_t *content, ov_status status, ov_record_meta *meta)
{
    ov_write_op *op = ov_write_op_new(type);
    op->kind = OV_KIND_CASE;
    op->id = *id;
    op->if_version = if_version;
    op->content = content;
    op->author = f->author;
    op->status = status;
    int rc = run(f, op);
    if (meta)
        *meta = op->meta;
    ov_write_op_free(op);
    return rc;
}

static json_t *read_json(fixture *f, const ov_id *id, ov_record_meta *meta)
{
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    const char *json;
    size_t len;
    int rc = ov_read_record(read, id, meta, &json, &len);
    json_t *parsed = rc == OV_OK ? json_loadb(json, len, 0, NULL) : NULL;
    ov_read_end(read);
    assert_int_equal(rc, OV_OK);
    assert_non_null(parsed);
    return parsed;
}

static void test_create_and_read_back(void **state)
{
    fixture *f = *state;
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_CASE;
    op->content = case_content(f, "Intermezzo", 0, -1, "Tussenjaar", NULL, "implementatie");
    op->author = f->author;
    op->status = OV_STATUS_PUBLISHED;
    int64_t created = f->now;
    assert_int_equal(run(f, op), OV_OK);
    assert_non_null(op->canon);
    assert_int_equal(op->meta.env.version, 1);
    assert_int_equal(op->meta.log_seq, 1);
    assert_int_equal(op->meta.change_seq, 1);

    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_record_meta meta;
    const char *json;
    size_t len;
    assert_int_equal(ov_read_record(read, &op->meta.env.id, &meta, &json, &len), OV_OK);
    assert_int_equal(meta.env.kind, OV_KIND_CASE);
    assert_int_equal(meta.env.status, OV_STATUS_PUBLISHED);
    assert_int_equal(meta.env.version, 1);
    assert_int_equal(meta.env.created_ms, created);
    assert_int_equal(meta.env.updated_ms, created);
    assert_memory_equal(meta.env.origin.bytes, ov_store_node_id(f->store)->bytes, OV_ID_BYTES);
    assert_memory_equal(meta.env.author.bytes, f->author.bytes, OV_ID_BYTES);
    assert_memory_equal(meta.content_hash, op->meta.content_hash, OV_HASH_BYTES);
    /* The stored bytes are exactly the sealed canonical form, and hash to the content hash. */
    assert_int_equal(len, op->canon_len);
    assert_memory_equal(json, op->canon, len);
    uint8_t hash[OV_HASH_BYTES];
    ov_sha256(json, len, hash);
    assert_memory_equal(hash, meta.content_hash, OV_HASH_BYTES);
    json_t *record = json_loadb(json, len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Intermezzo");
    char id[OV_ID_CHARS + 1];
    ov_id_format(&op->meta.env.id, id);
    assert_string_equal(json_string_value(json_object_get(record, "id")), id);
    assert_string_equal(json_string_value(json_object_get(record, "status")), "published");
    json_decref(record);
    ov_id missing;
    assert_int_equal(ov_id_generate(&missing, 1), OV_OK);
    assert_int_equal(ov_read_record(read, &missing, NULL, NULL, NULL), OV_ENOTFOUND);
    ov_read_end(read);

    /* A create with an id that is taken is refused and changes nothing. */
    ov_write_op *again = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    again->kind = OV_KIND_CASE;
    again->id = op->meta.env.id;
    again->content = case_content(f, "Dubbel", 1, -1, "x", NULL, "adoptie");
    again->status = OV_STATUS_PUBLISHED;
    assert_int_equal(run(f, again), OV_EEXISTS);
    json_t *still = read_json(f, &op->meta.env.id, NULL);
    assert_string_equal(json_string_value(json_object_get(still, "title")), "Intermezzo");
    json_decref(still);
    ov_write_op_free(again);
    ov_write_op_free(op);
}

static void test_replace_checks_version_and_kind(void **state)
{
    fixture *f = *state;
    ov_id id;
    int64_t created = f->now;
    assert_int_equal(create_case(f, case_content(f, "Eerst", 0, -1, "a", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &id),
                     OV_OK);
    ov_record_meta meta;
    int64_t replaced = f->now;
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &id, 1,
                            case_content(f, "Tweede", 0, -1, "a", NULL, "implementatie"),
                            OV_STATUS_PUBLISHED, &meta),
                     OV_OK);
    assert_int_equal(meta.env.version, 2);
    assert_int_equal(meta.env.created_ms, created);
    assert_int_equal(meta.env.updated_ms, replaced);

    /* A writer that read version 1 loses, and learns the current version. */
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &id, 1,
                            case_content(f, "Verouderd", 0, -1, "a", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, &meta),
                     OV_ECONFLICT);
    assert_int_equal(meta.env.version, 2);
    json_t *record = read_json(f, &id, &meta);
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Tweede");
    assert_int_equal(meta.env.version, 2);
    json_decref(record);

    /* if_version 0 means "any version". */
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &id, 0,
                            case_content(f, "Derde", 0, -1, "a", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, &meta),
                     OV_OK);
    assert_int_equal(meta.env.version, 3);

    /* The path's kind must be the stored kind: /schools/<case id> is not found. */
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_REPLACE);
    op->kind = OV_KIND_SCHOOL;
    op->id = id;
    op->content = json_pack("{s:s, s:s, s:s}", "name", "X", "brin", "12AB", "sector", "po");
    op->status = OV_STATUS_PUBLISHED;
    assert_int_equal(run(f, op), OV_ENOTFOUND);
    ov_write_op_free(op);

    ov_id missing;
    assert_int_equal(ov_id_generate(&missing, 5), OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &missing, 0,
                            case_content(f, "Niets", 0, -1, "a", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, NULL),
                     OV_ENOTFOUND);
}

typedef struct {
    uint64_t seqs[64];
    ov_id ids[64];
    ov_status status[64];
    int count;
} change_list;

static int on_change(void *ctx, uint64_t seq, const ov_record_meta *meta, const char *json,
                     size_t len)
{
    change_list *c = ctx;
    assert_true(c->count < 64);
    assert_int_equal(meta->change_seq, seq);
    json_t *record = json_loadb(json, len, 0, NULL);
    assert_non_null(record);
    assert_string_equal(json_string_value(json_object_get(record, "status")),
                        ov_status_name(meta->env.status));
    json_decref(record);
    c->seqs[c->count] = seq;
    c->ids[c->count] = meta->env.id;
    c->status[c->count] = meta->env.status;
    c->count++;
    return 0;
}

static void read_changes(fixture *f, uint64_t since, size_t limit, change_list *c, uint64_t *last)
{
    memset(c, 0, sizeof *c);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_changes(read, since, limit, on_change, c, last), OV_OK);
    ov_read_end(read);
}

static int count_listed(fixture *f, unsigned status_mask);

static void test_delete_leaves_tombstone(void **state)
{
    fixture *f = *state;
    ov_id id;
    assert_int_equal(create_case(f, case_content(f, "Weg", 0, -1, "a", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &id),
                     OV_OK);
    ov_record_meta meta;
    assert_int_equal(change(f, OV_WRITE_RECORD_DELETE, &id, 2, NULL, 0, &meta), OV_ECONFLICT);
    assert_int_equal(change(f, OV_WRITE_RECORD_DELETE, &id, 1, NULL, 0, &meta), OV_OK);
    assert_int_equal(meta.env.version, 2);
    assert_int_equal(meta.env.status, OV_STATUS_DELETED);

    json_t *record = read_json(f, &id, &meta);
    assert_string_equal(json_string_value(json_object_get(record, "status")), "deleted");
    assert_null(json_object_get(record, "title")); /* only the envelope is left */
    json_decref(record);

    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &id, 0,
                            case_content(f, "Terug", 0, -1, "a", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, &meta),
                     OV_EGONE);
    assert_int_equal(change(f, OV_WRITE_RECORD_DELETE, &id, 0, NULL, 0, NULL), OV_EGONE);
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &id, 0, NULL, OV_STATUS_PUBLISHED, NULL),
                     OV_EGONE);

    /* Replicas learn of the deletion through the feed... */
    change_list c;
    uint64_t last;
    read_changes(f, 0, 100, &c, &last);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.status[0], OV_STATUS_DELETED);
    assert_int_equal(last, 2);

    /* ...and the log says delete, with the tombstone's hash. */
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_log_head head;
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, NULL), OV_OK);
    assert_int_equal(head.seq, 2);
    ov_read_end(read);

    /* A deleted record is not listed unless deleted ones are asked for. */
    assert_int_equal(count_listed(f, 0), 0);
    assert_int_equal(count_listed(f, 1u << OV_STATUS_DELETED), 1);
}

static void test_status_publishes_draft(void **state)
{
    fixture *f = *state;
    ov_id id;
    assert_int_equal(create_case(f, case_content(f, "Concept", 1, -1, "b", NULL, "adoptie"),
                                 OV_STATUS_DRAFT, &id),
                     OV_OK);
    ov_record_meta meta;
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &id, 1, NULL, OV_STATUS_PUBLISHED, &meta),
                     OV_OK);
    assert_int_equal(meta.env.version, 2);
    assert_int_equal(meta.env.status, OV_STATUS_PUBLISHED);
    json_t *record = read_json(f, &id, &meta);
    assert_string_equal(json_string_value(json_object_get(record, "status")), "published");
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Concept");
    assert_string_equal(json_string_value(json_object_get(record, "phase")), "adoptie");
    json_decref(record);
    /* STATUS cannot delete: that goes through DELETE and leaves a tombstone. */
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &id, 0, NULL, OV_STATUS_DELETED, NULL),
                     OV_EINVAL);
}

/* ---- Lists ---------------------------------------------------------------------------------- */

typedef struct {
    ov_id ids[256];
    int count;
} id_list;

static int on_listed(void *ctx, const ov_record_meta *meta, const char *json, size_t len)
{
    id_list *l = ctx;
    assert_true(l->count < 256);
    assert_true(len > 0 && json[0] == '{');
    l->ids[l->count++] = meta->env.id;
    return 0;
}

static int list(fixture *f, const ov_list_query *q, id_list *out, ov_id *next)
{
    memset(out, 0, sizeof *out);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    int rc = ov_read_list(read, q, on_listed, out, next);
    ov_read_end(read);
    return rc;
}

static int count_listed(fixture *f, unsigned status_mask)
{
    ov_list_query q;
    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 200;
    q.status_mask = status_mask;
    id_list got;
    ov_id next;
    assert_int_equal(list(f, &q, &got, &next), OV_OK);
    return got.count;
}

typedef struct {
    int school, school2;
    const char *theme, *theme2, *phase;
    ov_status status;
    ov_id id;
} case_spec;

static void add_filter(ov_list_query *q, const char *facet, const char *v1, const char *v2)
{
    ov_list_filter *filter = &q->filters[q->filter_count++];
    filter->facet = facet;
    filter->values[0] = v1;
    filter->value_count = 1;
    if (v2) {
        filter->values[1] = v2;
        filter->value_count = 2;
    }
}

/* The list must be exactly the specs matching want(), newest first. */
static void expect_list(fixture *f, const ov_list_query *q, case_spec *specs, int n,
                        int (*want)(const fixture *, const case_spec *))
{
    id_list got;
    ov_id next;
    assert_int_equal(list(f, q, &got, &next), OV_OK);
    int expected = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (!want(f, &specs[i]))
            continue;
        assert_true(expected < got.count);
        assert_memory_equal(got.ids[expected].bytes, specs[i].id.bytes, OV_ID_BYTES);
        expected++;
    }
    assert_int_equal(got.count, expected);
    assert_true(ov_id_is_zero(&next));
}

static int want_school0(const fixture *f, const case_spec *s)
{
    return s->status == OV_STATUS_PUBLISHED && (s->school == 0 || s->school2 == 0);
}

static int want_school0_or_2(const fixture *f, const case_spec *s)
{
    return s->status == OV_STATUS_PUBLISHED &&
           (s->school == 0 || s->school2 == 0 || s->school == 2 || s->school2 == 2);
}

static int has_theme(const case_spec *s, const char *theme)
{
    return strcasecmp(s->theme, theme) == 0 || (s->theme2 && strcasecmp(s->theme2, theme) == 0);
}

static int want_school0_and_ict(const fixture *f, const case_spec *s)
{
    return want_school0(f, s) && has_theme(s, "ict");
}

static int want_phase_adoptie_all_statuses(const fixture *f, const case_spec *s)
{
    return strcmp(s->phase, "adoptie") == 0;
}

static int want_drafts(const fixture *f, const case_spec *s)
{
    return s->status == OV_STATUS_DRAFT;
}

static int want_theme_ict_or_taal_and_implementatie(const fixture *f, const case_spec *s)
{
    return s->status == OV_STATUS_PUBLISHED && (has_theme(s, "ict") || has_theme(s, "taal")) &&
           strcmp(s->phase, "implementatie") == 0;
}

static void test_lists_with_filters(void **state)
{
    fixture *f = *state;
    case_spec specs[] = {
        {0, -1, "ict", NULL, "adoptie", OV_STATUS_PUBLISHED, {{0}}},
        {1, -1, "taal", NULL, "implementatie", OV_STATUS_PUBLISHED, {{0}}},
        {0, 1, "ICT", "taal", "implementatie", OV_STATUS_PUBLISHED, {{0}}},
        {2, -1, "rekenen", NULL, "adoptie", OV_STATUS_PUBLISHED, {{0}}},
        {0, -1, "rekenen", "ict", "institutionalisering", OV_STATUS_DRAFT, {{0}}},
        {2, 0, "taal", NULL, "implementatie", OV_STATUS_PUBLISHED, {{0}}},
        {1, -1, "ict", NULL, "adoptie", OV_STATUS_DRAFT, {{0}}},
        {0, -1, "burgerschap", NULL, "adoptie", OV_STATUS_PUBLISHED, {{0}}},
    };
    int n = (int)(sizeof specs / sizeof specs[0]);
    for (int i = 0; i < n; i++) {
        json_t *content = case_content(f, "Case", specs[i].school, specs[i].school2, specs[i].theme,
                                       specs[i].theme2, specs[i].phase);
        assert_int_equal(create_case(f, content, specs[i].status, &specs[i].id), OV_OK);
    }
    /* A school record is not a case, even when it is filed under the same school facet. */
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_SCHOOL;
    op->id = f->schools[0];
    op->content =
        json_pack("{s:s, s:s, s:s}", "name", "Murmellius", "brin", "17MG", "sector", "vo");
    op->status = OV_STATUS_PUBLISHED;
    assert_int_equal(run(f, op), OV_OK);
    ov_write_op_free(op);

    ov_list_query q;
    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 50;
    add_filter(&q, "school", f->school_text[0], NULL);
    expect_list(f, &q, specs, n, want_school0);

    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 50;
    add_filter(&q, "school", f->school_text[0], f->school_text[2]); /* OR within a facet */
    expect_list(f, &q, specs, n, want_school0_or_2);

    add_filter(&q, "theme", "ict", NULL); /* AND across facets; themes match case-folded */
    q.filters[0].value_count = 1;
    expect_list(f, &q, specs, n, want_school0_and_ict);

    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 50;
    q.status_mask = (1u << OV_STATUS_DRAFT) | (1u << OV_STATUS_PUBLISHED);
    add_filter(&q, "phase", "adoptie", NULL);
    expect_list(f, &q, specs, n, want_phase_adoptie_all_statuses);

    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 50;
    q.status_mask = 1u << OV_STATUS_DRAFT;
    expect_list(f, &q, specs, n, want_drafts);

    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    q.limit = 50;
    add_filter(&q, "theme", "ict", "taal");
    add_filter(&q, "phase", "implementatie", NULL);
    expect_list(f, &q, specs, n, want_theme_ict_or_taal_and_implementatie);

    /* Bad queries are refused, not guessed at. */
    q.limit = 0;
    id_list got;
    ov_id next;
    assert_int_equal(list(f, &q, &got, &next), OV_EINVAL);
    q.limit = 201;
    assert_int_equal(list(f, &q, &got, &next), OV_EINVAL);
    q.limit = 10;
    q.filters[0].value_count = 0;
    assert_int_equal(list(f, &q, &got, &next), OV_EINVAL);
}

/* Every page's cursor continues exactly where the previous page stopped. */
static void page_through(fixture *f, ov_list_query *q, const ov_id *expected, int expected_count)
{
    int seen = 0, pages = 0;
    memset(&q->before, 0, sizeof q->before);
    for (;;) {
        id_list got;
        ov_id next;
        assert_int_equal(list(f, q, &got, &next), OV_OK);
        assert_true(got.count <= (int)q->limit);
        for (int i = 0; i < got.count; i++) {
            assert_true(seen < expected_count);
            assert_memory_equal(got.ids[i].bytes, expected[seen].bytes, OV_ID_BYTES);
            seen++;
        }
        pages++;
        assert_true(pages < 100);
        if (ov_id_is_zero(&next))
            break;
        assert_int_equal(got.count, (int)q->limit);
        q->before = next;
    }
    assert_int_equal(seen, expected_count);
}

static void test_pagination_visits_each_record_once(void **state)
{
    fixture *f = *state;
    ov_id all[60], filtered[60];
    int all_count = 0, filtered_count = 0;
    for (int i = 0; i < 60; i++) {
        ov_id id;
        int school = i % 3;
        ov_status status = i % 4 == 3 ? OV_STATUS_DRAFT : OV_STATUS_PUBLISHED;
        json_t *content =
            case_content(f, "Case", school, -1, i % 2 ? "ict" : "taal", NULL, "adoptie");
        /* Several creates in one batch share a timestamp; ids still order by creation. */
        assert_int_equal(create_case(f, content, status, &id), OV_OK);
        if (status == OV_STATUS_PUBLISHED) {
            all[all_count++] = id;
            if (school == 1)
                filtered[filtered_count++] = id;
        }
    }
    /* Newest first. */
    for (int i = 0; i < all_count / 2; i++) {
        ov_id t = all[i];
        all[i] = all[all_count - 1 - i];
        all[all_count - 1 - i] = t;
    }
    for (int i = 0; i < filtered_count / 2; i++) {
        ov_id t = filtered[i];
        filtered[i] = filtered[filtered_count - 1 - i];
        filtered[filtered_count - 1 - i] = t;
    }
    ov_list_query q;
    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_CASE;
    for (size_t limit = 1; limit <= 50; limit += 7) {
        q.limit = limit;
        page_through(f, &q, all, all_count);
    }
    q.limit = 5; /* exactly divides the 15 filtered ones: the last page must say "no more" */
    add_filter(&q, "school", f->school_text[1], NULL);
    page_through(f, &q, filtered, filtered_count);
    q.limit = 4;
    page_through(f, &q, filtered, filtered_count);
}

/* ---- Change feed and log -------------------------------------------------------------------- */

static void test_changes_yield_each_record_once_in_order(void **state)
{
    fixture *f = *state;
    ov_id a, b, c;
    assert_int_equal(
        create_case(f, case_content(f, "A", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED, &a),
        OV_OK);
    assert_int_equal(
        create_case(f, case_content(f, "B", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED, &b),
        OV_OK);
    assert_int_equal(
        create_case(f, case_content(f, "C", 0, -1, "x", NULL, "adoptie"), OV_STATUS_DRAFT, &c),
        OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &a, 1,
                            case_content(f, "A2", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED,
                            NULL),
                     OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &a, 2,
                            case_content(f, "A3", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED,
                            NULL),
                     OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &b, 0, NULL, OV_STATUS_DRAFT, NULL), OV_OK);
    /* A failed change moves nothing. */
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &c, 7,
                            case_content(f, "C2", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED,
                            NULL),
                     OV_ECONFLICT);

    change_list ch;
    uint64_t last;
    read_changes(f, 0, 100, &ch, &last);
    assert_int_equal(ch.count, 3);
    assert_memory_equal(ch.ids[0].bytes, c.bytes, OV_ID_BYTES);
    assert_memory_equal(ch.ids[1].bytes, a.bytes, OV_ID_BYTES);
    assert_memory_equal(ch.ids[2].bytes, b.bytes, OV_ID_BYTES);
    assert_int_equal(ch.seqs[0], 3);
    assert_int_equal(ch.seqs[1], 5);
    assert_int_equal(ch.seqs[2], 6);
    assert_int_equal(last, 6);

    read_changes(f, 3, 100, &ch, &last);
    assert_int_equal(ch.count, 2);
    assert_memory_equal(ch.ids[0].bytes, a.bytes, OV_ID_BYTES);
    read_changes(f, 0, 2, &ch, &last);
    assert_int_equal(ch.count, 2);
    assert_int_equal(last, 5);
    read_changes(f, 6, 100, &ch, &last);
    assert_int_equal(ch.count, 0);
    assert_int_equal(last, 6);

    json_t *record = read_json(f, &a, NULL);
    assert_string_equal(json_string_value(json_object_get(record, "title")), "A3");
    json_decref(record);

    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_last_change(read), 6);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.records, 3);
    assert_int_equal(stats.log_entries, 6);
    assert_int_equal(stats.changes, 6);
    assert_true(stats.map_bytes > 0);
    ov_read_end(read);
}

typedef struct {
    uint8_t prev_hash[OV_HASH_BYTES];
    uint64_t prev_seq;
    ov_id origin;
    int with_content;
    int count;
    int ops[4 + 1];
} log_walk;

static int on_log(void *ctx, const ov_log_entry *entry, const char *content, size_t len)
{
    log_walk *w = ctx;
    assert_int_equal(
        ov_log_entry_follows(w->prev_seq ? w->prev_hash : NULL, &w->origin, w->prev_seq, entry),
        OV_OK);
    ov_log_entry_hash(entry, w->prev_hash);
    w->prev_seq = entry->seq;
    if (content) {
        uint8_t hash[OV_HASH_BYTES];
        ov_sha256(content, len, hash);
        assert_memory_equal(hash, entry->content_hash, OV_HASH_BYTES);
        w->with_content++;
    }
    w->ops[entry->op]++;
    w->count++;
    return 0;
}

static void check_log(fixture *f, int expected_entries, int expected_with_content)
{
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_log_head head;
    uint8_t pub[OV_PUBKEY_BYTES], mine[OV_PUBKEY_BYTES];
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, pub), OV_OK);
    ov_keypair_public(f->key, mine);
    assert_memory_equal(pub, mine, OV_PUBKEY_BYTES);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);
    assert_int_equal(head.seq, (uint64_t)expected_entries);

    log_walk w;
    memset(&w, 0, sizeof w);
    w.origin = *ov_store_node_id(f->store);
    /* Read in pages of 3 to exercise from_seq. */
    while (w.count < expected_entries) {
        int before = w.count;
        assert_int_equal(ov_read_log(read, &w.origin, w.prev_seq + 1, 3, on_log, &w), OV_OK);
        assert_true(w.count > before);
    }
    assert_int_equal(ov_read_log(read, &w.origin, w.prev_seq + 1, 3, on_log, &w), OV_OK);
    assert_int_equal(w.count, expected_entries);
    assert_memory_equal(w.prev_hash, head.hash, OV_HASH_BYTES);
    assert_int_equal(w.with_content, expected_with_content);
    ov_read_end(read);
}

static void test_log_chains_and_head_verifies(void **state)
{
    fixture *f = *state;
    ov_id a, b;
    assert_int_equal(
        create_case(f, case_content(f, "A", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED, &a),
        OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &a, 1,
                            case_content(f, "A2", 0, -1, "x", NULL, "adoptie"), OV_STATUS_PUBLISHED,
                            NULL),
                     OV_OK);

    /* One batch: two creates around a failing op; the failure takes no log position. */
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    ov_write_op *ops[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = ov_write_op_new(i == 1 ? OV_WRITE_RECORD_REPLACE : OV_WRITE_RECORD_CREATE);
        ops[i]->kind = OV_KIND_CASE;
        ops[i]->content = case_content(f, "Batch", 1, -1, "y", NULL, "adoptie");
        ops[i]->status = OV_STATUS_PUBLISHED;
    }
    ops[1]->id = a;
    ops[1]->if_version = 1; /* stale */
    for (int i = 0; i < 3; i++)
        ov_store_apply(txn, ops[i], f->now);
    assert_int_equal(ops[0]->result, OV_OK);
    assert_int_equal(ops[1]->result, OV_ECONFLICT);
    assert_int_equal(ops[2]->result, OV_OK);
    assert_int_equal(ops[0]->meta.log_seq, 3);
    assert_int_equal(ops[2]->meta.log_seq, 4);
    assert_int_equal(ov_store_write_commit(txn), OV_OK);
    b = ops[2]->meta.env.id;
    for (int i = 0; i < 3; i++)
        ov_write_op_free(ops[i]);
    assert_int_equal(change(f, OV_WRITE_RECORD_DELETE, &b, 0, NULL, 0, NULL), OV_OK);

    /* Five entries; content only where the entry is still the record's current version:
     * A's second version, the first batch create, and b's tombstone. */
    check_log(f, 5, 3);

    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_id stranger;
    assert_int_equal(ov_id_generate(&stranger, 9), OV_OK);
    assert_int_equal(ov_read_head(read, &stranger, NULL, NULL), OV_ENOTFOUND);
    ov_read_end(read);
}

/* A batch may commit without signing (the writer defers signatures under load): its entries are
 * durable but served only once a head covers them, and opening the store signs what a crash left
 * unsigned. */
static void test_unsigned_tail_is_signed_on_open(void **state)
{
    fixture *f = *state;
    ov_id a;
    assert_int_equal(create_case(f, case_content(f, "Getekend", 2, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &a),
                     OV_OK);
    ov_read *read;
    ov_log_head head;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, NULL), OV_OK);
    ov_read_end(read);
    uint64_t signed_seq = head.seq;

    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_CASE;
    op->content = case_content(f, "Ongetekend", 2, -1, "x", NULL, "adoptie");
    op->author = f->author;
    op->status = OV_STATUS_PUBLISHED;
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    ov_store_apply(txn, op, f->now);
    assert_int_equal(op->result, OV_OK);
    assert_true(ov_store_write_head_pending(txn));
    assert_int_equal(ov_store_write_commit_ex(txn, 0), OV_OK);
    ov_write_op_free(op);

    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, NULL), OV_OK);
    ov_read_end(read);
    assert_int_equal(head.seq, signed_seq); /* the entry is there, the head not yet over it */

    ov_store_close(f->store);
    f->store = NULL;
    assert_int_equal(open_store(f, f->key), OV_OK);
    uint8_t pub[OV_PUBKEY_BYTES];
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, pub), OV_OK);
    ov_read_end(read);
    assert_int_equal(head.seq, signed_seq + 1);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);
}

static int count_change(void *ctx, uint64_t change_seq, const ov_record_meta *meta,
                        const char *json, size_t len)
{
    (void)change_seq, (void)meta, (void)json, (void)len;
    ++*(int *)ctx;
    return 0;
}

/* The writer's commit leaves the last flush to ov_store_sync. Until that returns, the change feed
 * and this node's head stay where the last flush left them (a crash could still undo the commit,
 * and a position handed out must never be given to another change); the snapshot itself already
 * holds the record. */
static void test_unflushed_commit_is_hidden_from_feed_and_head(void **state)
{
    fixture *f = *state;
    ov_id a;
    assert_int_equal(create_case(f, case_content(f, "Vooraf", 2, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &a),
                     OV_OK);
    ov_read *read;
    ov_log_head before, head;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    uint64_t feed = ov_read_last_change(read);
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &before, NULL), OV_OK);
    ov_read_end(read);

    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_CASE;
    op->content = case_content(f, "Ongeflusht", 2, -1, "x", NULL, "adoptie");
    op->author = f->author;
    op->status = OV_STATUS_PUBLISHED;
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    ov_store_apply(txn, op, f->now);
    assert_int_equal(op->result, OV_OK);
    assert_int_equal(ov_store_write_commit_unflushed(txn, 1), OV_OK);

    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_record(read, &op->meta.env.id, NULL, NULL, NULL), OV_OK);
    assert_int_equal(ov_read_snapshot_change(read), op->meta.change_seq);
    assert_int_equal(ov_read_last_change(read), feed);
    uint64_t last = 0;
    int seen = 0;
    assert_int_equal(ov_read_changes(read, feed - 1, 10, count_change, &seen, &last), OV_OK);
    assert_int_equal(seen, 1); /* the durable one, not the new one */
    assert_int_equal(last, feed);
    assert_int_equal(
        ov_read_changes_upto(read, feed, op->meta.change_seq, 10, count_change, &seen, &last),
        OV_OK);
    assert_int_equal(seen, 2);
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, NULL), OV_OK);
    assert_int_equal(head.seq, before.seq);
    ov_read_end(read);

    assert_int_equal(ov_store_sync(f->store), OV_OK);
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_last_change(read), op->meta.change_seq);
    uint8_t pub[OV_PUBKEY_BYTES];
    assert_int_equal(ov_read_head(read, ov_store_node_id(f->store), &head, pub), OV_OK);
    assert_int_equal(head.seq, op->meta.log_seq);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);
    ov_read_end(read);
    ov_write_op_free(op);
}

static void test_reopen_keeps_everything_and_refuses_other_key(void **state)
{
    fixture *f = *state;
    ov_id a;
    assert_int_equal(create_case(f, case_content(f, "Blijft", 2, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &a),
                     OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &a, 1, NULL, OV_STATUS_DRAFT, NULL), OV_OK);
    ov_id node = *ov_store_node_id(f->store);
    ov_store_close(f->store);
    f->store = NULL;

    ov_keypair *other;
    assert_int_equal(ov_keypair_generate(&other), OV_OK);
    assert_int_equal(open_store(f, other), OV_EINVAL);
    assert_null(f->store);
    ov_keypair_free(other);

    assert_int_equal(open_store(f, f->key), OV_OK);
    assert_memory_equal(ov_store_node_id(f->store)->bytes, node.bytes, OV_ID_BYTES);
    ov_record_meta meta;
    json_t *record = read_json(f, &a, &meta);
    assert_int_equal(meta.env.version, 2);
    assert_int_equal(meta.env.status, OV_STATUS_DRAFT);
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Blijft");
    json_decref(record);
    check_log(f, 2, 0); /* the current version is a draft: its content is not given out */
    change_list ch;
    uint64_t last;
    read_changes(f, 0, 10, &ch, &last);
    assert_int_equal(ch.count, 1);
    assert_int_equal(last, 2);

    /* The log continues where it stopped. */
    assert_int_equal(change(f, OV_WRITE_RECORD_STATUS, &a, 2, NULL, OV_STATUS_PUBLISHED, &meta),
                     OV_OK);
    assert_int_equal(meta.log_seq, 3);
    assert_int_equal(meta.change_seq, 3);
    check_log(f, 3, 1);
}

/* ---- Accounts and sessions ------------------------------------------------------------------ */

static int put_account(fixture *f, const ov_id *id, const char *username, const char *role)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT);
    op->account_id = *id;
    op->account = json_pack("{s:s, s:s}", "username", username, "role", role);
    int rc = run(f, op);
    ov_write_op_free(op);
    return rc;
}

static int count_account(void *ctx, const ov_id *id, const json_t *account)
{
    (*(int *)ctx)++;
    assert_non_null(json_object_get(account, "username"));
    return 0;
}

static void test_accounts_keep_usernames_unique(void **state)
{
    fixture *f = *state;
    ov_id anna, bert;
    assert_int_equal(ov_id_generate(&anna, 1), OV_OK);
    assert_int_equal(ov_id_generate(&bert, 2), OV_OK);
    assert_int_equal(put_account(f, &anna, "anna", "editor"), OV_OK);
    assert_int_equal(put_account(f, &bert, "anna", "brigadier"), OV_EEXISTS);
    assert_int_equal(put_account(f, &anna, "anna", "moderator"), OV_OK); /* replace */

    ov_read *read;
    ov_id found;
    json_t *account;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_account_by_name(read, "anna", &found, &account), OV_OK);
    assert_memory_equal(found.bytes, anna.bytes, OV_ID_BYTES);
    assert_string_equal(json_string_value(json_object_get(account, "role")), "moderator");
    json_decref(account);
    assert_int_equal(ov_read_account(read, &bert, &account), OV_ENOTFOUND);
    ov_read_end(read);

    /* A rename frees the old name for someone else. */
    assert_int_equal(put_account(f, &anna, "anna.devries", "moderator"), OV_OK);
    assert_int_equal(put_account(f, &bert, "anna", "brigadier"), OV_OK);
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_account_by_name(read, "anna", &found, NULL), OV_OK);
    assert_memory_equal(found.bytes, bert.bytes, OV_ID_BYTES);
    assert_int_equal(ov_read_account_by_name(read, "anna.devries", &found, NULL), OV_OK);
    assert_memory_equal(found.bytes, anna.bytes, OV_ID_BYTES);
    assert_int_equal(ov_read_account_by_name(read, "nobody", &found, NULL), OV_ENOTFOUND);
    int count = 0;
    assert_int_equal(ov_read_accounts(read, count_account, &count), OV_OK);
    assert_int_equal(count, 2);
    ov_read_end(read);

    /* An account without a username is refused. */
    ov_write_op *op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT);
    op->account_id = anna;
    op->account = json_pack("{s:s}", "role", "editor");
    assert_int_equal(run(f, op), OV_EINVAL);
    ov_write_op_free(op);
}

static int put_session(fixture *f, uint8_t tag, const ov_id *account)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_SESSION_PUT);
    ov_sha256(&tag, 1, op->token_hash);
    op->session.account = *account;
    op->session.created_ms = 1000 + tag;
    op->session.expires_ms = 2000000 + tag;
    int rc = run(f, op);
    ov_write_op_free(op);
    return rc;
}

static int get_session(fixture *f, uint8_t tag, ov_session *session)
{
    uint8_t hash[OV_HASH_BYTES];
    ov_sha256(&tag, 1, hash);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    int rc = ov_read_session(read, hash, session);
    ov_read_end(read);
    return rc;
}

static void test_sessions_put_get_delete_revoke(void **state)
{
    fixture *f = *state;
    ov_id anna, bert;
    assert_int_equal(ov_id_generate(&anna, 1), OV_OK);
    assert_int_equal(ov_id_generate(&bert, 2), OV_OK);
    for (uint8_t tag = 1; tag <= 6; tag++)
        assert_int_equal(put_session(f, tag, tag % 2 ? &anna : &bert), OV_OK);
    ov_session s;
    assert_int_equal(get_session(f, 3, &s), OV_OK);
    assert_memory_equal(s.account.bytes, anna.bytes, OV_ID_BYTES);
    assert_int_equal(s.created_ms, 1003);
    assert_int_equal(s.expires_ms, 2000003);

    ov_write_op *op = ov_write_op_new(OV_WRITE_SESSION_DELETE);
    uint8_t tag = 2;
    ov_sha256(&tag, 1, op->token_hash);
    assert_int_equal(run(f, op), OV_OK);
    ov_write_op_free(op);
    assert_int_equal(get_session(f, 2, &s), OV_ENOTFOUND);
    assert_int_equal(get_session(f, 4, &s), OV_OK);

    op = ov_write_op_new(OV_WRITE_SESSIONS_REVOKE);
    op->account_id = anna;
    assert_int_equal(run(f, op), OV_OK);
    ov_write_op_free(op);
    for (uint8_t t = 1; t <= 6; t += 2)
        assert_int_equal(get_session(f, t, &s), OV_ENOTFOUND);
    assert_int_equal(get_session(f, 4, &s), OV_OK);
    assert_int_equal(get_session(f, 6, &s), OV_OK);
    assert_memory_equal(s.account.bytes, bert.bytes, OV_ID_BYTES);
}

/* A snapshot keeps seeing what was committed when it began, while a writer commits more. */
static void test_read_snapshot_is_stable(void **state)
{
    fixture *f = *state;
    ov_id a;
    assert_int_equal(create_case(f, case_content(f, "Oud", 0, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &a),
                     OV_OK);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &a, 1,
                            case_content(f, "Nieuw", 0, -1, "x", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, NULL),
                     OV_OK);
    ov_record_meta meta;
    assert_int_equal(ov_read_record(read, &a, &meta, NULL, NULL), OV_OK);
    assert_int_equal(meta.env.version, 1);
    ov_read_end(read);
    /* A recycled snapshot sees the new state. */
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    assert_int_equal(ov_read_record(read, &a, &meta, NULL, NULL), OV_OK);
    assert_int_equal(meta.env.version, 2);
    ov_read_end(read);
}

/* A full map fails the op that did not fit with OV_EFULL, and leaves the batch and store usable. */
static void test_full_map_fails_only_the_op(void **state)
{
    fixture *f = *state;
    ov_store_close(f->store);
    remove_dir(f->dir);
    ov_store_options options = {f->dir, (size_t)256 << 10, f->key, 0};
    assert_int_equal(ov_store_open(&options, &f->store), OV_OK);
    ov_id first;
    assert_int_equal(create_case(f, case_content(f, "Eerste", 0, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &first),
                     OV_OK);

    char summary[3001];
    memset(summary, 'a', sizeof summary - 1);
    summary[sizeof summary - 1] = 0;
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    int ok = 0, full = 0;
    for (int i = 0; i < 400 && !full; i++) {
        json_t *content = case_content(f, "Groot", 0, -1, "x", NULL, "adoptie");
        json_object_set_new(content, "summary", json_string(summary));
        ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
        op->kind = OV_KIND_CASE;
        op->content = content;
        op->status = OV_STATUS_PUBLISHED;
        ov_store_apply(txn, op, f->now);
        if (op->result == OV_OK)
            ok++;
        else if (op->result == OV_EFULL)
            full = 1;
        else
            fail_msg("unexpected %s", ov_error_name(op->result));
        ov_write_op_free(op);
    }
    assert_true(full);
    assert_true(ok > 0);
    /* Usually the batch commits. LMDB may still need a page for its free list at commit; then the
     * whole batch fails, atomically. Either way the store stays consistent and usable. */
    int rc = ov_store_write_commit(txn);
    assert_true(rc == OV_OK || rc == OV_EFULL);
    int kept = rc == OV_OK ? ok + 1 : 1;
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.records, (uint64_t)kept);
    assert_int_equal(stats.log_entries, (uint64_t)kept);
    ov_read_end(read);
    check_log(f, kept, kept);
    json_t *record = read_json(f, &first, NULL);
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Eerste");
    json_decref(record);
}

/* The writer's way: a batch applied directly in its transaction. An op that fails before it writes
 * (a conflict) costs nothing; one that fails after writing (the map full in the middle of an op)
 * has the batch applied again without it. Either way each op's outcome is what ov_store_apply
 * would give, and the log has exactly the successful ops. */
static void test_batch_without_nested_transactions(void **state)
{
    fixture *f = *state;
    ov_store_close(f->store);
    remove_dir(f->dir);
    ov_store_options options = {f->dir, (size_t)256 << 10, f->key, 0};
    assert_int_equal(ov_store_open(&options, &f->store), OV_OK);
    ov_id first;
    assert_int_equal(create_case(f, case_content(f, "Eerste", 0, -1, "x", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &first),
                     OV_OK);

    char summary[3001];
    memset(summary, 'a', sizeof summary - 1);
    summary[sizeof summary - 1] = 0;
    enum { OPS = 400 };
    ov_write_op *ops[OPS];
    for (int i = 0; i < OPS; i++) {
        json_t *content = case_content(f, "Groot", 0, -1, "x", NULL, "adoptie");
        json_object_set_new(content, "summary", json_string(summary));
        ops[i] = ov_write_op_new(i == 1 ? OV_WRITE_RECORD_REPLACE : OV_WRITE_RECORD_CREATE);
        ops[i]->kind = OV_KIND_CASE;
        ops[i]->content = content;
        ops[i]->status = OV_STATUS_PUBLISHED;
        if (i > 0)
            ops[i - 1]->next = ops[i];
    }
    ops[1]->id = first;
    ops[1]->if_version = 7; /* stale: fails before writing */
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    assert_int_equal(ov_store_apply_batch(&txn, ops[0], f->now), OV_OK);
    assert_non_null(txn);
    int ok = 0, full = 0;
    for (int i = 0; i < OPS; i++) {
        if (i == 1)
            assert_int_equal(ops[i]->result, OV_ECONFLICT);
        else if (ops[i]->result == OV_OK)
            ok++;
        else if (ops[i]->result == OV_EFULL)
            full++;
        else
            fail_msg("unexpected %s", ov_error_name(ops[i]->result));
    }
    assert_true(full > 0);
    assert_true(ok > 0);
    assert_int_equal(ops[0]->result, OV_OK);
    int rc = ov_store_write_commit(txn);
    assert_true(rc == OV_OK || rc == OV_EFULL); /* as in test_full_map_fails_only_the_op */
    int kept = rc == OV_OK ? ok + 1 : 1;
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.records, (uint64_t)kept);
    assert_int_equal(stats.log_entries, (uint64_t)kept);
    if (rc == OV_OK)
        for (int i = 0; i < OPS; i++)
            assert_int_equal(ov_read_record(read, &ops[i]->meta.env.id, NULL, NULL, NULL),
                             ops[i]->result == OV_OK || i == 1 ? OV_OK : OV_ENOTFOUND);
    ov_read_end(read);
    check_log(f, kept, kept);
    for (int i = 0; i < OPS; i++)
        ov_write_op_free(ops[i]);
}

/* ---- Idempotency keys and the log with drafts -------------------------------------------- */

static ov_write_op *keyed_create(fixture *f, const char *key)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    op->kind = OV_KIND_CASE;
    op->content = case_content(f, "Met sleutel", 0, -1, "a", NULL, "adoptie");
    op->author = f->author;
    op->status = OV_STATUS_PUBLISHED;
    strcpy(op->idempotency_key, key);
    op->idempotency_request = 1;
    op->idempotency_status = 201;
    return op;
}

static void test_idempotency_key_applies_once(void **state)
{
    fixture *f = *state;
    assert_true(ov_idempotency_key_valid("abc-DEF_09", 10));
    assert_false(ov_idempotency_key_valid("a b", 3));
    assert_false(ov_idempotency_key_valid("", 0));
    char long_key[66];
    memset(long_key, 'k', 65);
    long_key[65] = 0;
    assert_false(ov_idempotency_key_valid(long_key, 65));
    assert_true(ov_idempotency_key_valid(long_key, 64));

    /* Two ops with one key in one batch (retries that both passed the API's look-up): the
     * second is answered from the first's row, in the same transaction. */
    ov_write_op *first = keyed_create(f, "k-1"), *second = keyed_create(f, "k-1");
    first->next = second;
    ov_wtxn *txn;
    assert_int_equal(ov_store_write_begin(f->store, &txn), OV_OK);
    assert_int_equal(ov_store_apply_batch(&txn, first, f->now), OV_OK);
    assert_int_equal(ov_store_write_commit(txn), OV_OK);
    assert_int_equal(first->result, OV_OK);
    assert_int_equal(second->result, OV_OK);
    assert_false(first->replayed);
    assert_true(second->replayed);
    assert_memory_equal(&second->answer.record, &first->meta.env.id, sizeof(ov_id));
    assert_int_equal(second->answer.status, 201);
    assert_int_equal(second->answer.version, 1);
    assert_int_equal(second->canon_len, first->canon_len);
    assert_memory_equal(second->canon, first->canon, first->canon_len);

    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_store_stats stats;
    assert_int_equal(ov_read_stats(read, &stats), OV_OK);
    assert_int_equal(stats.log_entries, 1);
    ov_idempotency_answer answer;
    assert_int_equal(ov_read_idempotency(read, &f->author, "k-1", &answer), OV_OK);
    assert_true(ov_idempotency_matches(&answer, 1, OV_KIND_CASE, NULL));
    assert_false(ov_idempotency_matches(&answer, 2, OV_KIND_CASE, NULL));
    assert_false(ov_idempotency_matches(&answer, 1, OV_KIND_LESSON, NULL));
    assert_false(ov_idempotency_matches(&answer, 1, OV_KIND_CASE, &f->schools[0]));
    assert_int_equal(ov_read_idempotency(read, &f->schools[0], "k-1", &answer), OV_ENOTFOUND);
    ov_read_end(read);
    ov_id id = first->meta.env.id;
    ov_write_op_free(first);
    ov_write_op_free(second);

    /* The key used again for another request applies nothing. */
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_DELETE);
    op->kind = OV_KIND_CASE;
    op->id = id;
    op->author = f->author;
    strcpy(op->idempotency_key, "k-1");
    op->idempotency_request = 3;
    assert_int_equal(run(f, op), OV_EPRECONDITION);
    ov_write_op_free(op);
    ov_record_meta meta;
    json_decref(read_json(f, &id, &meta));
    assert_int_equal(meta.env.status, OV_STATUS_PUBLISHED);
}

typedef struct {
    int entries, with_meta, with_content, drafts;
} version_count;

static int on_version(void *ctx, const ov_log_entry *entry, const uint8_t bytes[OV_LOG_ENTRY_BYTES],
                      const ov_record_meta *meta, const char *content, size_t len)
{
    version_count *c = ctx;
    uint8_t encoded[OV_LOG_ENTRY_BYTES];
    ov_log_entry_encode(entry, encoded);
    assert_memory_equal(encoded, bytes, OV_LOG_ENTRY_BYTES);
    c->entries++;
    if (meta) {
        c->with_meta++;
        c->drafts += meta->env.status == OV_STATUS_DRAFT;
        assert_memory_equal(meta->content_hash, entry->content_hash, OV_HASH_BYTES);
    }
    c->with_content += content != NULL && len > 0;
    return 0;
}

static int on_public(void *ctx, const ov_log_entry *entry, const char *content, size_t len)
{
    (void)entry;
    (void)len;
    version_count *c = ctx;
    c->entries++;
    c->with_content += content != NULL;
    return 0;
}

static void test_log_versions_include_drafts(void **state)
{
    fixture *f = *state;
    ov_id published, draft;
    assert_int_equal(create_case(f, case_content(f, "Open", 0, -1, "a", NULL, "adoptie"),
                                 OV_STATUS_PUBLISHED, &published),
                     OV_OK);
    assert_int_equal(create_case(f, case_content(f, "Concept", 0, -1, "a", NULL, "adoptie"),
                                 OV_STATUS_DRAFT, &draft),
                     OV_OK);
    /* A superseded version: its entry has no current content any more. */
    assert_int_equal(change(f, OV_WRITE_RECORD_REPLACE, &published, 1,
                            case_content(f, "Open 2", 0, -1, "a", NULL, "adoptie"),
                            OV_STATUS_PUBLISHED, NULL),
                     OV_OK);
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    const ov_id *origin = ov_store_node_id(f->store);
    version_count all = {0}, pub = {0};
    assert_int_equal(ov_read_log_versions(read, origin, 1, 100, on_version, &all), OV_OK);
    assert_int_equal(ov_read_log(read, origin, 1, 100, on_public, &pub), OV_OK);
    ov_read_end(read);
    assert_int_equal(all.entries, 3);
    assert_int_equal(all.with_meta, 2);
    assert_int_equal(all.with_content, 2);
    assert_int_equal(all.drafts, 1);
    assert_int_equal(pub.entries, 3);
    assert_int_equal(pub.with_content, 1); /* ov_read_log keeps drafts to itself */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_checks_version_and_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_leaves_tombstone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_publishes_draft, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_with_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_visits_each_record_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_yield_each_record_once_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_chains_and_head_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything_and_refuses_other_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_tail_is_signed_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unflushed_commit_is_hidden_from_feed_and_head, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_accounts_keep_usernames_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_put_get_delete_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_snapshot_is_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_map_fails_only_the_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_without_nested_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_key_applies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_versions_include_drafts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
