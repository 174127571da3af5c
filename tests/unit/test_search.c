/*
 * Unit tests of search over a real store: the index follows creates, replaces, unpublishing and
 * deletes in the record's own transaction; ranking puts title hits first; phrases (by pair and by
 * position); prefixes; disjunctive facet counts, also of queries matching most documents; paging; a
 * rebuild gives the same answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/id.h"
#include "server/search.h"
#include "server/search_index.h"
#include "server/store.h"

typedef struct {
    char dir[64];
    ov_keypair *key;
    ov_store *store;
    ov_search *search;
    char school[OV_ID_CHARS + 1];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/ov-search-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(ov_keypair_generate(&f->key), OV_OK);
    ov_store_options options = {f->dir, (size_t)64 << 20, f->key};
    assert_int_equal(ov_store_open(&options, &f->store), OV_OK);
    assert_int_equal(ov_search_new(f->store, &f->search), OV_OK);
    ov_id school;
    assert_int_equal(ov_id_generate(&school, 1795000000000ULL), OV_OK);
    ov_id_format(&school, f->school);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ov_search_free(f->search);
    ov_store_close(f->store);
    ov_keypair_free(f->key);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static ov_id write_case(fixture *f, ov_write_type type, const ov_id *id, ov_status status,
                        const char *title, const char *summary, const char *sector)
{
    ov_write_op *op = ov_write_op_new(type);
    op->kind = OV_KIND_CASE;
    if (id)
        op->id = *id;
    op->status = status;
    if (type != OV_WRITE_RECORD_DELETE && type != OV_WRITE_RECORD_STATUS)
        op->content = json_pack("{s:s, s:[s], s:s, s:s, s:s}", "title", title, "schools", f->school,
                                "summary", summary, "phase", "adoptie", "sector", sector);
    assert_int_equal(ov_store_write_one(f->store, op), OV_OK);
    ov_id written = op->meta.env.id;
    ov_write_op_free(op);
    return written;
}

/* Runs a query; returns the parsed answer (caller decrefs). */
static json_t *run_search(fixture *f, const ov_search_query *query)
{
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_buf out;
    ov_buf_init(&out, 1u << 20);
    char detail[200];
    assert_int_equal(ov_search_run(f->search, read, query, &out, detail, sizeof detail), OV_OK);
    ov_read_end(read);
    json_t *answer = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(answer);
    ov_buf_free(&out);
    return answer;
}

/* A query for q, filtered on one facet value and on building blocks when given. */
static ov_search_query make_query(const char *q, const char *facet, const char *value, int limit,
                                  const char *cursor, uint8_t bouwstenen)
{
    ov_search_query query;
    memset(&query, 0, sizeof query);
    query.q = q;
    query.q_len = q ? strlen(q) : 0;
    query.limit = limit;
    query.bouwsteen_min = 3;
    query.bouwstenen = bouwstenen;
    query.cursor = cursor;
    if (facet) {
        query.filters[0].facet = ov_search_facet_number(facet);
        query.filters[0].values[0] = value;
        query.filters[0].count = 1;
        query.filter_count = 1;
    }
    return query;
}

static json_t *run_query(fixture *f, const char *q, const char *facet, const char *value, int limit,
                         const char *cursor)
{
    ov_search_query query = make_query(q, facet, value, limit, cursor, 0);
    return run_search(f, &query);
}

static long long total(fixture *f, const char *q)
{
    json_t *answer = run_query(f, q, NULL, NULL, 20, NULL);
    long long n = json_integer_value(json_object_get(answer, "total"));
    json_decref(answer);
    return n;
}

static void test_index_follows_every_write(void **state)
{
    fixture *f = *state;
    assert_int_equal(total(f, "leerlingen "), 0);
    ov_id id =
        write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED,
                   "Leerlingen ontwerpen hun rooster", "Een team laat leerlingen kiezen.", "vo");
    assert_int_equal(total(f, "leerlingen "), 1);
    assert_int_equal(total(f, "rooster "), 1);
    write_case(f, OV_WRITE_RECORD_REPLACE, &id, OV_STATUS_PUBLISHED, "Leerlingen ontwerpen lessen",
               "Een team laat leerlingen kiezen.", "vo");
    assert_int_equal(total(f, "rooster "), 0); /* the old word's posting is gone */
    assert_int_equal(total(f, "lessen "), 1);
    write_case(f, OV_WRITE_RECORD_STATUS, &id, OV_STATUS_DRAFT, NULL, NULL, NULL);
    assert_int_equal(total(f, "lessen "), 0); /* drafts are not searched */
    write_case(f, OV_WRITE_RECORD_STATUS, &id, OV_STATUS_PUBLISHED, NULL, NULL, NULL);
    assert_int_equal(total(f, "lessen "), 1);
    write_case(f, OV_WRITE_RECORD_DELETE, &id, OV_STATUS_DELETED, NULL, NULL, NULL);
    assert_int_equal(total(f, "lessen "), 0);
    assert_int_equal(total(f, "team "), 0);
}

static size_t postings_held(fixture *f)
{
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    MDB_stat st;
    assert_int_equal(
        mdb_stat(ov_read_txn(read), ov_search_index_postings(ov_store_search_index(f->store)), &st),
        0);
    ov_read_end(read);
    return st.ms_entries;
}

/* Every posting a version wrote goes when it is replaced or deleted: terms from the forward list,
 * word pairs derived from its positions (repeated pairs, stopword gaps, texts side by side). */
static void test_no_posting_outlives_its_version(void **state)
{
    fixture *f = *state;
    ov_id ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED,
                            i % 2 ? "Brede brugklas brede brugklas" : "Samen leren en samen doen",
                            "Het team en de ouders, het team en de leerlingen: brede brugklas, "
                            "brede brugklassen, samen samen samen.",
                            "vo");
    assert_true(postings_held(f) > 0);
    for (int i = 0; i < 6; i++)
        write_case(f, OV_WRITE_RECORD_REPLACE, &ids[i], OV_STATUS_PUBLISHED,
                   "Leerlingen kiezen zelf", "Een andere tekst met brede brugklassen en ouders.",
                   "po");
    assert_int_equal(total(f, "\"samen leren\""), 0);
    assert_int_equal(total(f, "\"brede brugklassen\""), 6);
    for (int i = 0; i < 6; i++)
        write_case(f, OV_WRITE_RECORD_DELETE, &ids[i], OV_STATUS_DELETED, NULL, NULL, NULL);
    assert_int_equal(postings_held(f), 0);
}

static void test_ranking_phrases_prefixes(void **state)
{
    fixture *f = *state;
    ov_id in_title = write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED,
                                "Een tussenjaar voor jonge leerlingen",
                                "Jongeren krijgen een jaar met een eigen programma.", "po");
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Samen sterker",
               "Het team overwoog ook een tussenjaar, maar koos voor iets anders met brede "
               "brugklassen en veel overleg tussen docenten en ouders over het programma.",
               "vo");
    json_t *answer = run_query(f, "tussenjaar ", NULL, NULL, 20, NULL);
    json_t *hits = json_object_get(answer, "hits");
    assert_int_equal(json_array_size(hits), 2);
    char id[OV_ID_CHARS + 1];
    ov_id_format(&in_title, id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "id")), id);
    const char *snippet = json_string_value(json_object_get(json_array_get(hits, 1), "snippet"));
    assert_non_null(strstr(snippet, "<mark>tussenjaar</mark>"));
    json_decref(answer);

    assert_int_equal(total(f, "\"brede brugklassen\""), 1);  /* a pair: one lookup */
    assert_int_equal(total(f, "\"brugklassen brede\""), 0);  /* order counts */
    assert_int_equal(total(f, "\"docenten en ouders\""), 1); /* a stopword between */
    assert_int_equal(total(f, "\"docenten ouders\""), 0);    /* but the gap must match */
    /* Three words: pairs narrow, positions decide ("en" and "veel" are stopwords). */
    assert_int_equal(total(f, "\"brede brugklassen en veel overleg\""), 1);
    assert_int_equal(total(f, "\"brede brugklassen overleg\""), 0);
    /* Pairs decide a three-word phrase when its middle word occurs once; when it occurs twice the
     * pairs can sit apart, and positions decide. */
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Roosters",
               "Kwartiermakers plannen weekroosters zelfstandig.", "vo");
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Roosters twee",
               "Kwartiermakers plannen eerst. Later plannen weekroosters zich vanzelf.", "vo");
    assert_int_equal(total(f, "\"kwartiermakers plannen weekroosters\""), 1);
    assert_int_equal(total(f, "kwartiermakers plannen weekroosters "), 2);
    assert_int_equal(total(f, "tussenj"), 2); /* the last word is a prefix while typing */
    assert_int_equal(total(f, "tussenj "), 0);
    assert_int_equal(total(f, "de het een "), 4); /* only stopwords: everything */
}

static void test_facets_and_paging(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 25; i++)
        write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Werkplaats onderwijs",
                   "Docenten werken samen.", i % 5 == 0 ? "po" : "vo");
    json_t *answer = run_query(f, "werkplaats ", "sector", "po", 20, NULL);
    assert_int_equal(json_integer_value(json_object_get(answer, "total")), 5);
    /* The sector facet leaves out its own filter: it still counts the vo cases. */
    json_t *sectors = json_object_get(json_object_get(answer, "facets"), "sector");
    long long po = 0, vo = 0;
    size_t i;
    json_t *item;
    json_array_foreach(sectors, i, item)
    {
        const char *value = json_string_value(json_object_get(item, "value"));
        long long count = json_integer_value(json_object_get(item, "count"));
        if (!strcmp(value, "po"))
            po = count;
        if (!strcmp(value, "vo"))
            vo = count;
    }
    assert_int_equal(po, 5);
    assert_int_equal(vo, 20);
    json_decref(answer);

    /* Pages of 10 deliver all 25 once. */
    char cursor[64] = "";
    int seen = 0;
    for (int page = 0; page < 5; page++) {
        answer = run_query(f, "werkplaats ", NULL, NULL, 10, cursor[0] ? cursor : NULL);
        seen += (int)json_array_size(json_object_get(answer, "hits"));
        const char *next = json_string_value(json_object_get(answer, "next"));
        if (!next) {
            json_decref(answer);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(answer);
    }
    assert_int_equal(seen, 25);
}

/* A case with a sector, a phase and one scan score (the "doel" building block). */
static ov_id write_scanned_case(fixture *f, ov_write_type type, const ov_id *id, const char *title,
                                const char *sector, const char *phase, int score)
{
    ov_write_op *op = ov_write_op_new(type);
    op->kind = OV_KIND_CASE;
    if (id)
        op->id = *id;
    op->status = OV_STATUS_PUBLISHED;
    op->content =
        json_pack("{s:s, s:[s], s:s, s:s, s:s, s:{s:{s:{s:i, s:s}}}}", "title", title, "schools",
                  f->school, "summary", "Docenten werken samen.", "phase", phase, "sector", sector,
                  "scan", "doel", "innovatieteam", "score", score, "note", "Een notitie.");
    assert_int_equal(ov_store_write_one(f->store, op), OV_OK);
    ov_id written = op->meta.env.id;
    ov_write_op_free(op);
    return written;
}

static long long facet_count(const json_t *answer, const char *facet, const char *value)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(json_object_get(answer, "facets"), facet), i, item)
    {
        if (!strcmp(json_string_value(json_object_get(item, "value")), value))
            return json_integer_value(json_object_get(item, "count"));
    }
    return 0;
}

#define BROAD_CASES 48
static const char *const broad_sectors[] = {"po", "vo", "mbo", "so"};
static const char *const broad_phases[] = {"adoptie", "implementatie", "institutionalisering"};

typedef struct {
    ov_id id;
    int live, matches, sector, phase, score;
} broad_case;

/* Counts the model holds for a query on "werkplaats" (or no words), optionally within a sector
 * or (doel_only) within the cases whose "doel" score is 3 or more. */
static void expect_counts(const json_t *answer, const broad_case *cases, int words, int in_sector,
                          int doel_only)
{
    long long total = 0, sector[4] = {0}, phase[3] = {0}, doel = 0;
    for (int i = 0; i < BROAD_CASES; i++) {
        const broad_case *c = &cases[i];
        if (!c->live || (words && !c->matches))
            continue;
        /* Each facet leaves out its own filter. */
        if (!doel_only || c->score >= 3)
            sector[c->sector]++;
        if (in_sector < 0 || c->sector == in_sector)
            doel += c->score >= 3;
        if ((in_sector >= 0 && c->sector != in_sector) || (doel_only && c->score < 3))
            continue;
        total++;
        phase[c->phase]++;
    }
    assert_int_equal(json_integer_value(json_object_get(answer, "total")), total);
    for (int k = 0; k < 4; k++)
        assert_int_equal(facet_count(answer, "sector", broad_sectors[k]), sector[k]);
    for (int k = 0; k < 3; k++)
        assert_int_equal(facet_count(answer, "phase", broad_phases[k]), phase[k]);
    assert_int_equal(facet_count(answer, "bouwsteen", "doel"), doel);
}

static void check_broad_counts(fixture *f, const broad_case *cases)
{
    json_t *answer = run_query(f, "werkplaats ", NULL, NULL, 20, NULL);
    expect_counts(answer, cases, 1, -1, 0);
    json_decref(answer);
    answer = run_query(f, "werkplaats ", "sector", "po", 20, NULL);
    expect_counts(answer, cases, 1, 0, 0);
    json_decref(answer);
    answer = run_query(f, "werkpl", NULL, NULL, 20, NULL); /* a prefix */
    expect_counts(answer, cases, 1, -1, 0);
    json_decref(answer);
    answer = run_query(f, NULL, NULL, NULL, 20, NULL); /* browsing: everything */
    expect_counts(answer, cases, 0, -1, 0);
    json_decref(answer);
    answer = run_query(f, NULL, "sector", "mbo", 20, NULL);
    expect_counts(answer, cases, 0, 2, 0);
    json_decref(answer);
    ov_search_query blocks = make_query("werkplaats ", NULL, NULL, 20, NULL, 1u << 0); /* doel */
    answer = run_search(f, &blocks);
    expect_counts(answer, cases, 1, -1, 1);
    json_decref(answer);
    blocks = make_query("werkplaats ", "sector", "vo", 20, NULL, 1u << 0); /* two filters */
    answer = run_search(f, &blocks);
    expect_counts(answer, cases, 1, 1, 1);
    json_decref(answer);
}

/* A query matching most documents counts its facets from the totals of all documents minus the
 * ones it does not match; the counts must be those of counting every hit, also after deletes,
 * unpublishing and replaced versions have changed the totals under a running engine. */
static void test_counts_of_broad_queries(void **state)
{
    fixture *f = *state;
    broad_case cases[BROAD_CASES];
    for (int i = 0; i < BROAD_CASES; i++) {
        broad_case *c = &cases[i];
        c->live = 1;
        c->matches = i % 8 != 7;
        c->sector = i % 4;
        c->phase = i % 3;
        c->score = 1 + i % 5;
        c->id = write_scanned_case(f, OV_WRITE_RECORD_CREATE, NULL,
                                   c->matches ? "Werkplaats onderwijs" : "Iets anders",
                                   broad_sectors[c->sector], broad_phases[c->phase], c->score);
    }
    check_broad_counts(f, cases); /* the engine's columns are loaded now */
    for (int i = 0; i < BROAD_CASES; i++) {
        broad_case *c = &cases[i];
        if (i % 7 == 0) {
            write_case(f, OV_WRITE_RECORD_DELETE, &c->id, OV_STATUS_DELETED, NULL, NULL, NULL);
            c->live = 0;
        } else if (i % 11 == 3) {
            write_case(f, OV_WRITE_RECORD_STATUS, &c->id, OV_STATUS_DRAFT, NULL, NULL, NULL);
            c->live = 0;
        } else if (i % 5 == 2) {
            c->sector = (c->sector + 1) % 4;
            c->phase = (c->phase + 2) % 3;
            c->score = 6 - c->score;
            c->matches = !c->matches || i % 3 == 0;
            write_scanned_case(f, OV_WRITE_RECORD_REPLACE, &c->id,
                               c->matches ? "Werkplaats onderwijs" : "Iets anders",
                               broad_sectors[c->sector], broad_phases[c->phase], c->score);
        }
    }
    check_broad_counts(f, cases);
    /* A new engine loads the columns from the index at once. */
    ov_search_free(f->search);
    assert_int_equal(ov_search_new(f->store, &f->search), OV_OK);
    check_broad_counts(f, cases);
}

static void test_rebuild_gives_the_same_answers(void **state)
{
    fixture *f = *state;
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Verzuim vroeg zien",
               "Het hele team weet welke jongeren zorgwekkend verzuim hebben.", "vo");
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Thuiszitters terug",
               "Zorgwekkend verzuim en thuiszitten voorkomen.", "mbo");
    json_t *before = run_query(f, "zorgwekkend verzuim ", NULL, NULL, 20, NULL);
    assert_int_equal(ov_store_search_rebuild(f->store), OV_OK);
    /* A new engine, as after a restart, reads the rebuilt index. */
    ov_search_free(f->search);
    assert_int_equal(ov_search_new(f->store, &f->search), OV_OK);
    json_t *after = run_query(f, "zorgwekkend verzuim ", NULL, NULL, 20, NULL);
    json_object_del(before, "took_ms");
    json_object_del(after, "took_ms");
    assert_true(json_equal(before, after));
    assert_int_equal(json_integer_value(json_object_get(after, "total")), 2);
    json_decref(before);
    json_decref(after);
}

/* A rebuild renumbers documents; an engine that keeps running (a node while `olievlekd reindex`
 * runs beside it) must not read the new numbers with its old columns. */
static void test_rebuild_under_a_running_engine(void **state)
{
    fixture *f = *state;
    ov_id first = write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Eerste versie",
                             "Een tekst over zeilboten.", "vo");
    write_case(f, OV_WRITE_RECORD_CREATE, NULL, OV_STATUS_PUBLISHED, "Tweede versie",
               "Een tekst over vliegers.", "vo");
    write_case(f, OV_WRITE_RECORD_STATUS, &first, OV_STATUS_DRAFT, NULL, NULL, NULL);
    assert_int_equal(total(f, "vliegers "), 1); /* the engine's columns are loaded now */
    /* The draft is not indexed again, so the other case moves to the first number. */
    assert_int_equal(ov_store_search_rebuild(f->store), OV_OK);
    assert_int_equal(total(f, "vliegers "), 1);
    assert_int_equal(total(f, "zeilboten "), 0);
}

static void test_bad_queries(void **state)
{
    fixture *f = *state;
    ov_search_query query;
    memset(&query, 0, sizeof query);
    query.limit = 10;
    query.bouwsteen_min = 3;
    ov_read *read;
    assert_int_equal(ov_read_begin(f->store, &read), OV_OK);
    ov_buf out;
    ov_buf_init(&out, 1u << 20);
    char detail[200];
    char long_q[400];
    memset(long_q, 'a', sizeof long_q);
    query.q = long_q;
    query.q_len = sizeof long_q;
    assert_int_equal(ov_search_run(f->search, read, &query, &out, detail, sizeof detail),
                     OV_EINVAL);
    assert_non_null(strstr(detail, "256"));
    query.q = "\xff\xfe";
    query.q_len = 2;
    assert_int_equal(ov_search_run(f->search, read, &query, &out, detail, sizeof detail),
                     OV_EINVAL);
    query.q = "x";
    query.q_len = 1;
    query.cursor = "3ff0000000000000-zzzzzzzz";
    assert_int_equal(ov_search_run(f->search, read, &query, &out, detail, sizeof detail),
                     OV_EINVAL);
    query.cursor = NULL;
    query.limit = 0;
    assert_int_equal(ov_search_run(f->search, read, &query, &out, detail, sizeof detail),
                     OV_EINVAL);
    ov_read_end(read);
    ov_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_follows_every_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_posting_outlives_its_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranking_phrases_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_facets_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_of_broad_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_gives_the_same_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_under_a_running_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
