/*
 * Unit tests of search over a real store: the index follows creates, replaces, unpublishing and
 * deletes in the record's own transaction; ranking puts title hits first; phrases (by pair and by
 * position); prefixes; disjunctive facet counts, also of queries matching most documents; paging; a
 * rebuild gives the same answers; a batch of documents gives the very databases one update after
 * another gives.
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
    ov_store_options options = {f->dir, (size_t)64 << 20, f->key, 0};
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

/* ---- Batches: the same databases as one update after another --------------------------------- */

typedef struct {
    char dir[64];
    MDB_env *env;
    MDB_txn *txn;
    ov_search_index *index;
} raw_index;

static void raw_open(raw_index *r)
{
    strcpy(r->dir, "/tmp/ov-search-batch-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(mdb_env_create(&r->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(r->env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(r->env, (size_t)64 << 20), 0);
    assert_int_equal(mdb_env_open(r->env, r->dir, MDB_NOSYNC, 0600), 0);
    assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    int rebuild;
    assert_int_equal(ov_search_index_open(r->txn, &r->index, &rebuild), OV_OK);
}

static void raw_close(raw_index *r)
{
    mdb_txn_abort(r->txn);
    ov_search_index_free(r->index);
    mdb_env_close(r->env);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", r->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", r->dir);
    unlink(path);
    rmdir(r->dir);
}

/* One version of a record as the store hands it to the index. */
typedef struct {
    int doc; /* which of the test's record ids */
    ov_status status;
    int words; /* 0: no record (a delete) */
    uint32_t seed;
} version;

static json_t *version_record(const version *v, ov_record_meta *meta, const ov_id *ids,
                              const ov_id *origin)
{
    static const char *const words[] = {
        "leerlingen", "lezen", "rekenen", "school",  "docent", "feedback", "ouders", "samen",
        "de",         "een",   "groep",   "toetsen", "plan",   "team",     "lezen",  "rekenen",
    };
    memset(meta, 0, sizeof *meta);
    meta->env.id = ids[v->doc];
    meta->env.kind = OV_KIND_CASE;
    meta->env.origin = *origin;
    meta->env.status = v->status;
    meta->env.updated_ms = 1795000000000LL + v->seed;
    if (!v->words)
        return NULL;
    char title[256] = "", body[2048] = "";
    uint32_t x = v->seed * 2654435761u + 1;
    for (int i = 0; i < v->words; i++) {
        x = x * 1103515245u + 12345u;
        char *into = i < 3 ? title : body;
        strcat(into, words[(x >> 16) % (sizeof words / sizeof *words)]);
        strcat(into, " ");
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "title", title, "summary", body, "sector",
                     v->seed % 2 ? "po" : "vo", "phase", "adoptie", "themes",
                     v->seed % 3 ? "lezen" : "samenwerken");
}

/* A batch whose records were analysed ahead (as a received run's are, on the thread pool): every
 * record with content, published or not (a draft's analysis must go unused). */
static void batch_analysed(raw_index *r, const ov_record_meta *metas, json_t *const *records,
                           const ov_kind *analysed_as, size_t n)
{
    ov_search_analyser *analyser;
    assert_int_equal(ov_search_analyser_new(&analyser), OV_OK);
    ov_search_analysis *analyses[64] = {0};
    for (size_t i = 0; i < n; i++)
        if (records[i])
            assert_int_equal(ov_search_analyse(analyser,
                                               analysed_as ? analysed_as[i] : metas[i].env.kind,
                                               records[i], &analyses[i]),
                             OV_OK);
    ov_search_analyser_free(analyser);
    ov_search_batch *b;
    assert_int_equal(ov_search_batch_new(r->index, &b), OV_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            ov_search_batch_add_analysed(b, r->txn, &metas[i], records[i], analyses[i]), OV_OK);
    assert_int_equal(ov_search_batch_finish(b, r->txn), OV_OK);
    ov_search_batch_free(b);
    for (size_t i = 0; i < n; i++)
        ov_search_analysis_free(analyses[i]);
}

static void apply_versions(raw_index *one, raw_index *many, raw_index *ahead, const version *vs,
                           size_t n, const ov_id *ids, const ov_id *origin)
{
    ov_record_meta metas[64];
    json_t *records[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        records[i] = version_record(&vs[i], &metas[i], ids, origin);
        assert_int_equal(ov_search_index_update(one->index, one->txn, &metas[i], records[i]),
                         OV_OK);
    }
    assert_int_equal(ov_search_index_update_many(many->index, many->txn, metas,
                                                 (const json_t *const *)records, n),
                     OV_OK);
    batch_analysed(ahead, metas, records, NULL, n);
    for (size_t i = 0; i < n; i++)
        json_decref(records[i]);
}

/* Every key and value of one database, in order, the same in both. */
static void assert_same_db(raw_index *a, raw_index *b, const char *name, unsigned flags)
{
    MDB_dbi da, db;
    assert_int_equal(mdb_dbi_open(a->txn, name, flags, &da), 0);
    assert_int_equal(mdb_dbi_open(b->txn, name, flags, &db), 0);
    MDB_cursor *ca, *cb;
    assert_int_equal(mdb_cursor_open(a->txn, da, &ca), 0);
    assert_int_equal(mdb_cursor_open(b->txn, db, &cb), 0);
    MDB_val ka, va, kb, vb;
    size_t rows = 0;
    for (;;) {
        int ra = mdb_cursor_get(ca, &ka, &va, MDB_NEXT);
        int rb = mdb_cursor_get(cb, &kb, &vb, MDB_NEXT);
        assert_int_equal(ra, rb);
        if (ra)
            break;
        rows++;
        assert_int_equal(ka.mv_size, kb.mv_size);
        assert_memory_equal(ka.mv_data, kb.mv_data, ka.mv_size);
        assert_int_equal(va.mv_size, vb.mv_size);
        assert_memory_equal(va.mv_data, vb.mv_data, va.mv_size);
    }
    assert_true(rows > 0);
    mdb_cursor_close(ca);
    mdb_cursor_close(cb);
}

static void assert_same_index(raw_index *a, raw_index *b)
{
    assert_same_db(a, b, "search_postings", MDB_DUPSORT | MDB_DUPFIXED);
    assert_same_db(a, b, "search_docs", 0);
    assert_same_db(a, b, "search_ids", 0);
    assert_same_db(a, b, "search_values", 0);
    assert_same_db(a, b, "search_names", 0);
}

static void test_batch_equals_one_by_one(void **state)
{
    (void)state;
    raw_index one, many, ahead;
    raw_open(&one);
    raw_open(&many);
    raw_open(&ahead);
    ov_id ids[48], origin;
    assert_int_equal(ov_id_generate(&origin, 1795000000000ULL), OV_OK);
    for (int i = 0; i < 48; i++)
        assert_int_equal(ov_id_generate(&ids[i], 1795000000000ULL + (uint64_t)i), OV_OK);
    const ov_status P = OV_STATUS_PUBLISHED, D = OV_STATUS_DRAFT, X = OV_STATUS_DELETED;

    /* New documents, a draft never indexed, a record twice and one published then withdrawn. */
    version first[40];
    size_t n = 0;
    for (int i = 0; i < 30; i++)
        first[n++] = (version){i, P, 8 + i % 20, (uint32_t)i};
    first[n++] = (version){30, D, 12, 300};
    first[n++] = (version){5, P, 25, 501};
    first[n++] = (version){7, D, 10, 700};
    first[n++] = (version){31, D, 0, 310}; /* a delete of what was never indexed */
    first[n++] = (version){32, P, 9, 320};
    apply_versions(&one, &many, &ahead, first, n, ids, &origin);
    assert_same_index(&one, &many);
    assert_same_index(&one, &ahead);

    /* Replacements (the same text: nothing changes; other text), unpublishing, a delete, a
     * withdrawn one back, new ones, and one record three times over. */
    version second[40];
    n = 0;
    second[n++] = (version){1, P, 9, 1};     /* the same as before */
    second[n++] = (version){2, P, 10, 2000}; /* same length, other words */
    for (int i = 3; i <= 10; i++)
        second[n++] = (version){i, P, 4 + i, (uint32_t)(100 + i)};
    second[n++] = (version){11, D, 15, 1100};
    second[n++] = (version){12, D, 0, 1200};
    second[n++] = (version){13, X, 0, 1300};
    second[n++] = (version){7, P, 14, 701};
    for (int i = 40; i < 46; i++)
        second[n++] = (version){i, P, 10 + i % 7, (uint32_t)(4000 + i)};
    second[n++] = (version){20, P, 30, 2001};
    second[n++] = (version){20, D, 0, 2002};
    second[n++] = (version){20, P, 11, 2003};
    second[n++] = (version){41, P, 12, 4141}; /* new in this batch, then replaced in it */
    second[n++] = (version){42, X, 0, 4242};  /* new in this batch, then deleted in it */
    second[n++] = (version){3, P, 7, 103};    /* back to its first text of this batch */
    apply_versions(&one, &many, &ahead, second, n, ids, &origin);
    assert_same_index(&one, &many);
    assert_same_index(&one, &ahead);

    /* The same again: every document unchanged. */
    apply_versions(&one, &many, &ahead, second, n, ids, &origin);
    assert_same_index(&one, &many);
    assert_same_index(&one, &ahead);

    ov_search_index *ix = many.index;
    MDB_stat st;
    assert_int_equal(mdb_stat(many.txn, ov_search_index_postings(ix), &st), 0);
    assert_true(st.ms_entries > 100);
    raw_close(&one);
    raw_close(&many);
    raw_close(&ahead);
}

/* Records of other kinds and long texts (terms at their position limit, pairs, every class)
 * analysed ahead give the same document rows and postings as analysed in the writer; an
 * analysis made for another kind than the version's is not used. */
static void test_analysis_ahead_equals_writer(void **state)
{
    (void)state;
    raw_index one, ahead;
    raw_open(&one);
    raw_open(&ahead);
    ov_id origin, ids[6];
    assert_int_equal(ov_id_generate(&origin, 1795000000000ULL), OV_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(ov_id_generate(&ids[i], 1795000000100ULL + (uint64_t)i), OV_OK);
    static const char *const words[] = {"leerlingen",     "lezen",  "creëren", "huizen", "de",
                                        "samenwerkingen", "e-mail", "auto's",  "Ouders", "team"};
    char *body = malloc(64 * 1024);
    assert_non_null(body);
    body[0] = 0;
    uint32_t x = 7;
    for (int i = 0; i < 3000; i++) { /* "lezen" and others well past 1024 positions */
        x = x * 1103515245u + 12345u;
        strcat(body, words[(x >> 16) % (sizeof words / sizeof *words)]);
        strcat(body, i % 17 ? " " : ". ");
    }
    ov_record_meta metas[6];
    json_t *records[6];
    ov_kind as[6];
    memset(metas, 0, sizeof metas);
    for (int i = 0; i < 6; i++) {
        metas[i].env.id = ids[i];
        metas[i].env.origin = origin;
        metas[i].env.status = OV_STATUS_PUBLISHED;
        metas[i].env.updated_ms = 1795000000000LL + i;
    }
    metas[0].env.kind = as[0] = OV_KIND_CASE;
    records[0] = json_pack("{s:s, s:s, s:s, s:[s,s]}", "title", "Samen lezen in groep 5", "summary",
                           body + 100, "body", body, "themes", "lezen", "samenwerken");
    metas[1].env.kind = as[1] = OV_KIND_REQUEST;
    records[1] = json_pack("{s:s, s:s}", "title", "Wie heeft ervaring?", "question", body + 5000);
    metas[2].env.kind = as[2] = OV_KIND_VISIT;
    records[2] = json_pack("{s:s, s:s}", "title", "Bezoek", "notes", "creatieve huizen, huis");
    metas[3].env.kind = as[3] = OV_KIND_LESSON;
    records[3] = json_pack("{s:s, s:s}", "title", "Les", "body", body + 20000);
    metas[4].env.kind = OV_KIND_REQUEST; /* analysed as a case: not used, analysed again */
    as[4] = OV_KIND_CASE;
    records[4] = json_pack("{s:s, s:s}", "title", "Vraag", "question", "lezen met ouders");
    metas[5].env.kind = as[5] = OV_KIND_CASE;
    records[5] = json_pack("{s:s}", "title", ""); /* no terms at all */
    for (int i = 0; i < 6; i++) {
        assert_non_null(records[i]);
        assert_int_equal(ov_search_index_update(one.index, one.txn, &metas[i], records[i]), OV_OK);
    }
    batch_analysed(&ahead, metas, records, as, 6);
    assert_same_index(&one, &ahead);

    ov_search_analyser *analyser;
    ov_search_analysis *analysis;
    assert_int_equal(ov_search_analyser_new(&analyser), OV_OK);
    assert_int_equal(ov_search_analyse(analyser, OV_KIND_CASE, records[0], &analysis), OV_OK);
    assert_true(ov_search_analysis_bytes(analysis) < 64 * 1024); /* compact: a few bytes a term */
    ov_search_analysis_free(analysis);
    ov_search_analyser_free(analyser);
    for (int i = 0; i < 6; i++)
        json_decref(records[i]);
    free(body);
    raw_close(&one);
    raw_close(&ahead);
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
        cmocka_unit_test(test_batch_equals_one_by_one),
        cmocka_unit_test(test_analysis_ahead_equals_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
