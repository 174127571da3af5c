/*
 * Search benchmark: a corpus of Dutch cases generated from the demo dataset's texts (which come
 * from the seed documents), indexed by Olievlek's search index and by SQLite FTS5 (unicode61,
 * remove_diacritics 2), then the same queries run against both, side by side.
 *
 * Ours answers as /api/v1/search does: BM25F ranking, all facet counts and snippets for a page of
 * 20. FTS5 answers the same words with bm25() ranking, LIMIT 20, no facets, no snippets.
 *
 *   search_bench [RECORDS] [ROUNDS]     (100000 and 20 by default; bench/search.sh runs it)
 */
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/crypto.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/record.h"
#include "server/demo.h"
#include "server/search.h"
#include "server/store.h"

#define BATCH 1000

typedef struct {
    char **items;
    size_t count, cap;
} strings;

static void push(strings *s, const char *text, size_t len)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->items = realloc(s->items, s->cap * sizeof *s->items);
    }
    s->items[s->count++] = strndup(text, len);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static const char *pick(const strings *s)
{
    return s->items[rnd() % s->count];
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The vocabulary of the demo data: its sentences, titles, themes, schools and regions. */
typedef struct {
    strings sentences, titles, themes, schools, regions;
} vocabulary;

static int collect(void *ctx, const ov_record_meta *meta, const char *json, size_t len)
{
    vocabulary *v = ctx;
    json_t *r = json_loadb(json, len, 0, NULL);
    if (!r)
        return 0;
    if (meta->env.kind == OV_KIND_SCHOOL)
        push(&v->schools, json_string_value(json_object_get(r, "id")), OV_ID_CHARS);
    if (meta->env.kind == OV_KIND_REGION)
        push(&v->regions, json_string_value(json_object_get(r, "id")), OV_ID_CHARS);
    const char *title = json_string_value(json_object_get(r, "title"));
    if (title)
        push(&v->titles, title, strlen(title));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(r, "themes"), i, t)
        push(&v->themes, json_string_value(t), json_string_length(t));
    const char *texts[] = {"summary", "question", "goal", "lessons_learned", "body", "bio"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        const char *text = json_string_value(json_object_get(r, texts[k]));
        while (text && *text) {
            const char *end = strstr(text, ". ");
            size_t n = end ? (size_t)(end - text) + 1 : strlen(text);
            if (n > 20)
                push(&v->sentences, text, n);
            text += n + (end ? 1 : 0);
        }
    }
    json_decref(r);
    return 0;
}

static void read_vocabulary(ov_store *store, vocabulary *v)
{
    for (int kind = 0; kind < OV_KIND_COUNT; kind++) {
        ov_id next;
        memset(&next, 0, sizeof next);
        do {
            ov_read *read;
            ov_read_begin(store, &read);
            ov_list_query q;
            memset(&q, 0, sizeof q);
            q.kind = (ov_kind)kind;
            q.limit = 200;
            q.status_mask = 1u << OV_STATUS_PUBLISHED;
            q.before = next;
            ov_id after;
            ov_read_list(read, &q, collect, v, &after);
            ov_read_end(read);
            next = after;
        } while (!ov_id_is_zero(&next));
    }
}

static void text_of(strings *from, int sentences, char *out, size_t size)
{
    out[0] = 0;
    for (int i = 0; i < sentences; i++) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? " " : "", pick(from));
    }
}

static const char *const sectors[] = {"po", "vo", "mbo", "so"};
static const char *const phases[] = {"adoptie", "implementatie", "institutionalisering"};

/* One generated case, validated as the API would. */
static json_t *make_case(vocabulary *v)
{
    char title[400], summary[4000], goal[1200], lessons[4000];
    snprintf(title, sizeof title, "%.150s", pick(&v->titles));
    text_of(&v->sentences, 2 + (int)(rnd() % 3), summary, sizeof summary);
    text_of(&v->sentences, 1, goal, sizeof goal);
    text_of(&v->sentences, 2 + (int)(rnd() % 5), lessons, sizeof lessons);
    json_t *themes = json_array();
    for (int i = 0, n = 1 + (int)(rnd() % 3); i < n; i++) {
        const char *theme = pick(&v->themes);
        size_t k;
        json_t *t;
        int seen = 0;
        json_array_foreach(themes, k, t) seen |= !strcasecmp(json_string_value(t), theme);
        if (!seen)
            json_array_append_new(themes, json_string(theme));
    }
    json_t *scan = json_object();
    for (int b = 0; b < OV_BOUWSTENEN; b++) {
        json_t *block = json_object();
        for (int l = 0; l < 2; l++)
            json_object_set_new(
                block, ov_scan_level[l],
                json_pack("{s:i,s:s}", "score", 1 + (int)(rnd() % 5), "note", pick(&v->sentences)));
        json_object_set_new(scan, ov_bouwsteen_slug[b], block);
    }
    json_t *c = json_pack("{s:s,s:[s],s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:o}", "title", title, "schools",
                          pick(&v->schools), "region", pick(&v->regions), "sector",
                          sectors[rnd() % 4], "summary", summary, "goal", goal, "lessons_learned",
                          lessons, "themes", themes, "phase", phases[rnd() % 3], "scan", scan);
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    if (!c || ov_record_validate(OV_KIND_CASE, c, &errs) != OV_OK) {
        fprintf(stderr, "generated case invalid: %s %s\n", errs.items[0].field,
                errs.items[0].message_en);
        exit(1);
    }
    return c;
}

typedef struct {
    const char *ours;  /* as typed into the search box */
    const char *fts5;  /* the same in FTS5's query language */
    const char *facet; /* optional "name=value" filter (ours only: FTS5 has no facets) */
} bench_query;

static const bench_query queries[] = {
    {"thuiszitters ", "thuiszitters", NULL},
    {"verzuim ", "verzuim", NULL},
    {"tussenjaar ", "tussenjaar", NULL},
    {"leerlingen ", "leerlingen", NULL},
    {"onderwijs ", "onderwijs", NULL},
    {"team ", "team", NULL},
    {"samenwerking ouders ", "samenwerking ouders", NULL},
    {"zorgwekkend verzuim ", "zorgwekkend verzuim", NULL},
    {"\"passend onderwijs\"", "\"passend onderwijs\"", NULL},
    {"\"het hele team\"", "\"het hele team\"", NULL},
    {"\"administratie mentoren trajectbegeleiders\"",
     "\"administratie mentoren trajectbegeleiders\"", NULL},
    {"creatieve vakken ", "creatieve vakken", NULL},
    {"mentoren ", "mentoren", NULL},
    {"leerlingen school ", "leerlingen school", NULL},
    {"kwaliteit samenwerking scholen ", "kwaliteit samenwerking scholen", NULL},
    {"samenw", "samenw*", NULL},
    {"ontwikk", "ontwikk*", NULL},
    {"lee", "lee*", NULL},
    {"ouders betrekken ", "ouders betrekken", NULL},
    {"wijkteam ", "wijkteam", NULL},
    {"innovatie ", "innovatie", NULL},
    {"leerlingen ", "leerlingen", "sector=vo"},
    {"team ", "team", "phase=implementatie"},
    {"", NULL, "sector=po"},
    {"jongeren ouders school ", "jongeren ouders school", NULL},
};
#define QUERY_COUNT (sizeof queries / sizeof *queries)

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, compare_double);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

static uint64_t file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* Queries only an A/B comparison runs (SEARCH_BENCH_DUMP): several filters at once, several values
 * in one, building blocks, similar records' OR and second pages. Filters are "name=v1,v2&name=v".
 */
typedef struct {
    const char *q;
    const char *filters;
    uint8_t bouwstenen;
} dump_query;

static const dump_query dump_queries[] = {
    {"lee", "sector=po,vo", 0},
    {"lee", "sector=vo&phase=adoptie", 0},
    {"lee", "sector=mbo&phase=adoptie,implementatie", 0x05},
    {"leerlingen school ", "phase=institutionalisering", 0},
    {"leerlingen school ", NULL, 0x02},
    {"onderwijs ", "kind=case&sector=so", 0},
    {"", NULL, 0x10},
    {"", "phase=adoptie&sector=po", 0x01},
    {"team ouders", NULL, 0},
    {"\"passend onderwijs\" leerlingen ", "sector=vo", 0},
};

static void parse_filters(const char *text, ov_search_query *q, char *scratch, size_t size)
{
    snprintf(scratch, size, "%s", text ? text : "");
    for (char *part = strtok(scratch, "&"); part && q->filter_count < OV_SEARCH_FACETS_MAX;
         part = strtok(NULL, "&")) {
        char *eq = strchr(part, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *values_at;
        ov_search_filter *f = &q->filters[q->filter_count++];
        f->facet = ov_search_facet_number(part);
        for (char *value = strtok_r(eq + 1, ",", &values_at);
             value && f->count < OV_SEARCH_VALUES_MAX; value = strtok_r(NULL, ",", &values_at))
            f->values[f->count++] = value;
    }
}

/* Writes one answer without its timing, and the cursor of its next page into next. */
static int dump_answer(ov_search *search, ov_store *store, ov_search_query *q, FILE *to,
                       char next[64])
{
    ov_buf out;
    ov_buf_init(&out, 64u << 20);
    ov_read *read;
    char detail[200];
    ov_read_begin(store, &read);
    int rc = ov_search_run(search, read, q, &out, detail, sizeof detail);
    ov_read_end(read);
    if (rc == OV_OK) {
        const char *took = strstr(out.data, ",\"took_ms\":");
        fprintf(to, "%.*s\n", (int)(took ? took - out.data : (long)out.len), out.data);
        const char *cursor = strstr(out.data, "\"next\":\"");
        next[0] = 0;
        if (cursor)
            snprintf(next, 64, "%.25s", cursor + 8);
    }
    ov_buf_free(&out);
    return rc;
}

/* Every answer of the benchmark's queries and dump_queries (with their second pages) to path,
 * so two builds can be compared byte for byte. */
static int dump_answers(ov_search *search, ov_store *store, const char *path)
{
    FILE *to = fopen(path, "w");
    if (!to)
        return 1;
    size_t total = QUERY_COUNT + sizeof dump_queries / sizeof *dump_queries;
    for (size_t i = 0; i < total; i++) {
        ov_search_query q;
        memset(&q, 0, sizeof q);
        char scratch[256], next[64];
        const char *text;
        if (i < QUERY_COUNT) {
            text = queries[i].ours;
            parse_filters(queries[i].facet, &q, scratch, sizeof scratch);
        } else {
            const dump_query *d = &dump_queries[i - QUERY_COUNT];
            text = d->q;
            parse_filters(d->filters, &q, scratch, sizeof scratch);
            q.bouwstenen = d->bouwstenen;
        }
        q.q = text;
        q.q_len = strlen(text);
        q.limit = 20;
        q.bouwsteen_min = 3;
        if (dump_answer(search, store, &q, to, next))
            return 1;
        if (next[0]) {
            q.cursor = next;
            if (dump_answer(search, store, &q, to, next))
                return 1;
        }
    }
    return fclose(to) ? 1 : 0;
}

/* Builds ours: the demo data, then `records` generated cases stored and indexed. */
static int build_ours(ov_store *store, int records, json_t ***cases_out, double *store_ms,
                      double *index_ms)
{
    ov_demo_counts counts;
    if (ov_demo_load(store, &counts))
        return 1;
    vocabulary v;
    memset(&v, 0, sizeof v);
    read_vocabulary(store, &v);
    printf("vocabulary from the demo data: %zu sentences, %zu titles, %zu themes\n",
           v.sentences.count, v.titles.count, v.themes.count);

    /* Generate once; both engines get the same documents. */
    json_t **cases = malloc((size_t)records * sizeof *cases);
    for (int i = 0; i < records; i++)
        cases[i] = make_case(&v);

    double t0 = now_ms();
    for (int i = 0; i < records; i += BATCH) {
        ov_wtxn *w;
        if (ov_store_write_begin(store, &w))
            return 1;
        for (int k = i; k < i + BATCH && k < records; k++) {
            ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
            op->kind = OV_KIND_CASE;
            op->content = json_incref(cases[k]);
            op->status = OV_STATUS_PUBLISHED;
            ov_store_apply(w, op, 1700000000000LL + k);
            if (op->result) {
                fprintf(stderr, "write failed: %s\n", ov_strerror(op->result));
                return 1;
            }
            ov_write_op_free(op);
        }
        if (ov_store_write_commit(w))
            return 1;
    }
    *store_ms = now_ms() - t0;
    t0 = now_ms();
    if (ov_store_search_rebuild(store))
        return 1;
    *index_ms = now_ms() - t0;
    *cases_out = cases;
    return 0;
}

/* Builds FTS5's table from the same cases. */
static int build_fts(sqlite3 *db, json_t **cases, int records, double *ms)
{
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    if (sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE docs USING fts5(title, summary, body, "
                     "tokenize='unicode61 remove_diacritics 2')",
                     NULL, NULL, NULL) != SQLITE_OK)
        return 1;
    double t0 = now_ms();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *insert;
    sqlite3_prepare_v2(db, "INSERT INTO docs(rowid, title, summary, body) VALUES (?,?,?,?)", -1,
                       &insert, NULL);
    for (int i = 0; i < records; i++) {
        json_t *c = cases[i];
        char summary[6000], body[40000];
        snprintf(summary, sizeof summary, "%s", json_string_value(json_object_get(c, "summary")));
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(c, "themes"), k, t)
        {
            size_t n = strlen(summary);
            snprintf(summary + n, sizeof summary - n, " %s", json_string_value(t));
        }
        snprintf(body, sizeof body, "%s %s", json_string_value(json_object_get(c, "goal")),
                 json_string_value(json_object_get(c, "lessons_learned")));
        const json_t *scan = json_object_get(c, "scan");
        for (int b = 0; b < OV_BOUWSTENEN; b++)
            for (int l = 0; l < 2; l++) {
                size_t n = strlen(body);
                snprintf(body + n, sizeof body - n, " %s",
                         json_string_value(json_object_get(
                             json_object_get(json_object_get(scan, ov_bouwsteen_slug[b]),
                                             ov_scan_level[l]),
                             "note")));
            }
        sqlite3_bind_int(insert, 1, i + 1);
        sqlite3_bind_text(insert, 2, json_string_value(json_object_get(c, "title")), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(insert, 3, summary, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 4, body, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(insert) != SQLITE_DONE)
            return 1;
        sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    *ms = now_ms() - t0;
    return 0;
}

int main(int argc, char **argv)
{
    /* The allocator settings olievlekd runs with (server/main.c), so per-query buffers behave as
     * they do in the node. */
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    int records = argc > 1 ? atoi(argv[1]) : 100000;
    int rounds = argc > 2 ? atoi(argv[2]) : 20;
    /* SEARCH_BENCH_DATA=dir keeps the corpus there and uses it again on the next run (the build
     * takes minutes; a profile or an A/B comparison of two builds does not need a new one). */
    const char *keep = getenv("SEARCH_BENCH_DATA");
    char dir[256] = "/tmp/olievlek-search-bench.XXXXXX";
    if (keep)
        snprintf(dir, sizeof dir, "%s", keep);
    if (keep ? mkdir(dir, 0700) && access(dir, W_OK) : !mkdtemp(dir))
        return 1;
    char data[300], fts_path[300], key_path[300], built_path[300];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(fts_path, sizeof fts_path, "%s/fts5.db", dir);
    snprintf(key_path, sizeof key_path, "%s/node.key", dir);
    snprintf(built_path, sizeof built_path, "%s/built", dir);
    int reuse = keep && access(built_path, F_OK) == 0;

    ov_keypair *key;
    ov_store *store;
    ov_store_options options = {data, 0, NULL, 0};
    if (keep ? ov_keypair_load_or_create(key_path, &key) : ov_keypair_generate(&key))
        return 1;
    options.key = key;
    if (ov_store_open(&options, &store))
        return 1;
    json_t **cases = NULL;
    double ours_store_ms = 0, ours_index_ms = 0, fts_build_ms = 0;
    if (!reuse && build_ours(store, records, &cases, &ours_store_ms, &ours_index_ms))
        return 1;
    sqlite3 *db;
    if (sqlite3_open(fts_path, &db) != SQLITE_OK)
        return 1;
    if (!reuse && build_fts(db, cases, records, &fts_build_ms))
        return 1;
    if (keep && !reuse) {
        FILE *built = fopen(built_path, "w");
        if (built)
            fclose(built);
    }
    /* FTS5's index alone: its shadow tables without the content copy. */
    uint64_t fts_index = 0;
    sqlite3_stmt *size;
    if (sqlite3_prepare_v2(db,
                           "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                           "('docs_data','docs_idx','docs_docsize','docs_config')",
                           -1, &size, NULL) == SQLITE_OK &&
        sqlite3_step(size) == SQLITE_ROW)
        fts_index = (uint64_t)sqlite3_column_int64(size, 0);
    sqlite3_finalize(size);

    ov_read *read;
    ov_read_begin(store, &read);
    uint64_t ours_index = 0;
    ov_search_index_bytes(ov_store_search_index(store), ov_read_txn(read), &ours_index);
    ov_read_end(read);

    ov_buf out;
    ov_search *search;
    if (ov_search_new(store, &search))
        return 1;
    sqlite3_stmt *select;
    sqlite3_prepare_v2(db,
                       "SELECT rowid, bm25(docs, 3.0, 2.0, 1.0) FROM docs WHERE docs MATCH ? "
                       "ORDER BY bm25(docs, 3.0, 2.0, 1.0) LIMIT 20",
                       -1, &select, NULL);
    /* The node loads its in-memory columns on the first query after start; that is not a query's
     * cost, so one untimed query goes first. */
    {
        ov_search_query warm;
        memset(&warm, 0, sizeof warm);
        warm.limit = 1;
        warm.bouwsteen_min = 3;
        char detail[200];
        ov_buf_init(&out, 64u << 20);
        ov_read_begin(store, &read);
        double start = now_ms();
        ov_search_run(search, read, &warm, &out, detail, sizeof detail);
        printf("first query after start (loads the columns): %.1f ms\n", now_ms() - start);
        ov_read_end(read);
        ov_buf_free(&out);
    }
    /* SEARCH_BENCH_PROFILE="words ": run only that query, many times (for perf), and stop;
     * SEARCH_BENCH_FILTERS="sector=vo" adds filters to it. */
    const char *profile = getenv("SEARCH_BENCH_PROFILE");
    if (profile) {
        char filter_text[256];
        double start = now_ms();
        for (int i = 0; i < rounds * 100; i++) {
            ov_search_query q;
            memset(&q, 0, sizeof q);
            q.q = profile;
            q.q_len = strlen(profile);
            q.limit = 20;
            q.bouwsteen_min = 3;
            parse_filters(getenv("SEARCH_BENCH_FILTERS"), &q, filter_text, sizeof filter_text);
            char detail[200];
            ov_buf_init(&out, 64u << 20);
            ov_read_begin(store, &read);
            ov_search_run(search, read, &q, &out, detail, sizeof detail);
            ov_read_end(read);
            ov_buf_free(&out);
        }
        printf("%s: %.3f ms per query\n", profile, (now_ms() - start) / (rounds * 100));
        return 0;
    }
    /* SEARCH_BENCH_DUMP=file: write every answer (without its timing) there, and stop. */
    const char *dump = getenv("SEARCH_BENCH_DUMP");
    if (dump)
        return dump_answers(search, store, dump);
    size_t runs = QUERY_COUNT * (size_t)rounds;
    double *ours = malloc(runs * sizeof *ours), *fts = malloc(runs * sizeof *fts);
    size_t n_ours = 0, n_fts = 0;
    double ours_common = 0, fts_common = 0; /* queries both engines ran */
    printf("\n%-36s %9s %9s %9s %9s %9s\n", "query", "hits", "ours ms", "ours max", "fts5 hits",
           "fts5 ms");
    for (size_t qi = 0; qi < QUERY_COUNT; qi++) {
        const bench_query *bq = &queries[qi];
        double q_ours = 0, q_fts = 0, q_max = 0;
        unsigned long long hits = 0;
        int fts_hits = 0;
        for (int round = 0; round < rounds; round++) {
            ov_search_query q;
            memset(&q, 0, sizeof q);
            q.q = bq->ours;
            q.q_len = strlen(bq->ours);
            q.limit = 20;
            q.bouwsteen_min = 3;
            char facet[64];
            if (bq->facet) {
                snprintf(facet, sizeof facet, "%s", bq->facet);
                char *eq = strchr(facet, '=');
                *eq = 0;
                q.filters[0].facet = ov_search_facet_number(facet);
                q.filters[0].values[0] = eq + 1;
                q.filters[0].count = 1;
                q.filter_count = 1;
            }
            char detail[200];
            ov_buf_init(&out, 64u << 20);
            double start = now_ms();
            ov_read_begin(store, &read);
            int rc = ov_search_run(search, read, &q, &out, detail, sizeof detail);
            ov_read_end(read);
            double took = now_ms() - start;
            if (rc) {
                fprintf(stderr, "search failed: %s %s\n", ov_strerror(rc), detail);
                return 1;
            }
            const char *total = strstr(out.data, "\"total\":");
            hits = total ? strtoull(total + 8, NULL, 10) : 0;
            ov_buf_free(&out);
            ours[n_ours++] = took;
            q_ours += took;
            if (took > q_max)
                q_max = took;
            if (bq->fts5) {
                start = now_ms();
                sqlite3_bind_text(select, 1, bq->fts5, -1, SQLITE_STATIC);
                fts_hits = 0;
                while (sqlite3_step(select) == SQLITE_ROW)
                    fts_hits++;
                sqlite3_reset(select);
                took = now_ms() - start;
                fts[n_fts++] = took;
                q_fts += took;
            }
        }
        if (bq->fts5) {
            ours_common += q_ours;
            fts_common += q_fts;
        }
        char label[40];
        snprintf(label, sizeof label, "%s%s%s", bq->ours, bq->facet ? " +" : "",
                 bq->facet ? bq->facet : "");
        printf("%-36s %9llu %9.3f %9.3f %9s %9.3f\n", label, hits, q_ours / rounds, q_max,
               bq->fts5 ? (fts_hits == 20 ? "20 (top)" : "<20") : "-",
               bq->fts5 ? q_fts / rounds : 0);
    }
    printf("\nrecords: %d (plus the demo data)\n", records);
    printf("ours: store + index write %.1f s; index rebuild alone %.1f s; index %.1f MB\n",
           ours_store_ms / 1000, ours_index_ms / 1000, ours_index / 1e6);
    printf("fts5: build %.1f s; index %.1f MB (file with content %.1f MB)\n", fts_build_ms / 1000,
           fts_index / 1e6, file_bytes(fts_path) / 1e6);
    double ours_p50 = percentile(ours, n_ours, 0.5), ours_p99 = percentile(ours, n_ours, 0.99);
    double fts_p50 = percentile(fts, n_fts, 0.5), fts_p99 = percentile(fts, n_fts, 0.99);
    printf("ours (facets + snippets, page of 20): p50 %.3f ms, p99 %.3f ms  (target p99 <= 5 ms)\n",
           ours_p50, ours_p99);
    printf("fts5 (bm25, top 20, no facets):       p50 %.3f ms, p99 %.3f ms\n", fts_p50, fts_p99);
    printf("time for the same queries, ours / fts5: %.2f  (target <= 0.5)\n",
           ours_common / fts_common);

    sqlite3_finalize(select);
    sqlite3_close(db);
    ov_search_free(search);
    ov_store_close(store);
    ov_keypair_free(key);
    for (int i = 0; cases && i < records; i++)
        json_decref(cases[i]);
    free(cases);
    free(ours);
    free(fts);
    if (keep)
        return 0;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
