/*
 * The query side of search (see search.h): parse, fetch postings, intersect, filter and count
 * facets per candidate from the in-memory columns, rank with BM25, then build snippets for the
 * page of hits only.
 */
#include "server/search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "proto/canon.h"
#include "proto/buf.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/text.h"

#define KIND_ABSENT     0xFF
#define REACH_MAX       5     /* the highest minimum score a query names (1..5) */
#define PREFIX_MIN      3     /* folded bytes (three letters) before a last word is a prefix */
#define PREFIX_KEYS     32    /* terms a prefix expands to, the most frequent */
#define PREFIX_SCAN     4096  /* terms looked at to find them */
#define PHRASES_MAX     4     /* phrases of one query; further quoted parts count as words */
#define FACET_TOP       30    /* values reported per facet */
#define SIMILAR_TERMS   12    /* words of a text that similar-search keeps */
#define RESYNC_FULL     20000 /* changes behind after which a full reload is cheaper */
#define SNIPPET_BEFORE  80
#define SNIPPET_BYTES   240
#define PREFER_BOOST    1.25
#define GENERATED_SCALE 0.5 /* demo filler ranks after what real schools wrote */
#define BM25_K1         1.2
#define BM25_B          0.75

static const double class_weight[OV_SEARCH_CLASSES] = {3.0, 2.0, 1.0};

/* Facets reported with counts (the others only filter). */
static const char *const reported_facets[] = {"kind",   "origin",      "region", "school",
                                              "sector", "phase",       "theme",  "principle",
                                              "state",  "availability"};

/* What every candidate of a query reads: 32 bytes, two to a cache line. */
typedef struct {
    uint32_t values_at; /* into the pool */
    uint16_t value_count;
    uint8_t kind; /* KIND_ABSENT: not indexed (now) */
    uint8_t flags;
    uint8_t scores[OV_BOUWSTENEN];
    /* reach[t - 1]: bit b set when block b's score is t or more, so filtering and counting by
     * blocks is one lookup; reach[0] is 0 for a document without scores. */
    uint8_t reach[REACH_MAX];
    /* BM25 length normalisation per field class, 1 / (1 - b + b · length / average), for the
     * averages in ov_search.norm_average. */
    float inv_norm[OV_SEARCH_CLASSES];
} column;
_Static_assert(sizeof(column) == 32, "two columns to a cache line");

/* The blocks whose score is min or more, as bits. */
static unsigned blocks_at_least(const column *c, int min)
{
    if (min >= 1 && min <= REACH_MAX)
        return c->reach[min - 1];
    unsigned blocks = 0;
    for (int b = 0; b < OV_BOUWSTENEN; b++)
        blocks |= (unsigned)(c->scores[b] >= min) << b;
    return blocks;
}

/* The blocks a document counts for in the bouwsteen facet: only a document with scores counts. */
static unsigned blocks_counted(const column *c, int min)
{
    return c->reach[0] ? blocks_at_least(c, min) : 0;
}

/* What only hits, browsing and bookkeeping read, kept apart so the hot columns stay small. */
typedef struct {
    ov_id id;
    int64_t updated_ms;
    uint16_t length[OV_SEARCH_CLASSES];
} column_cold;

/* What a facet value is called, read once: its text, and for values that are record ids (region,
 * school) the record's name as of its change label_seq, as a JSON string literal. */
typedef struct {
    char *name;
    char *label;
    uint64_t label_seq;
} value_info;

struct ov_search {
    ov_store *store;
    ov_search_index *index;
    ov_text *text;
    column *docs;
    column_cold *cold; /* by docno, as docs */
    uint32_t doc_slots, doc_cap;
    uint32_t *pool;
    size_t pool_len, pool_cap, pool_dead;
    uint64_t synced;
    int loaded;
    uint32_t generation; /* of the index the columns were loaded from */
    uint32_t live;
    uint64_t total_length[OV_SEARCH_CLASSES];
    uint32_t facet_max[OV_SEARCH_FACETS_MAX];
    uint32_t *counts[OV_SEARCH_FACETS_MAX];
    uint32_t counts_cap[OV_SEARCH_FACETS_MAX];
    /* Every live document's facet values counted, and its scan scores by block and score, kept
     * by column_set and column_clear: a query that matches most documents starts its counts from
     * these and takes away the documents it does not count (see count_by_complement). */
    uint32_t *totals[OV_SEARCH_FACETS_MAX];
    uint32_t totals_cap[OV_SEARCH_FACETS_MAX];
    uint32_t score_docs[OV_BOUWSTENEN][256];
    value_info *values[OV_SEARCH_FACETS_MAX]; /* by value number n */
    uint32_t values_cap[OV_SEARCH_FACETS_MAX];
    /* The average field lengths the columns' inv_norm are for: the true averages rounded to a 1 %
     * grid, so norms are recomputed only when an average moves that much, and two processes with
     * the same data rank the same. */
    double norm_average[OV_SEARCH_CLASSES];
    uint64_t *union_acc; /* prefix unions, by docno */
    uint32_t union_cap;
    char scratch[40000]; /* one decoded text of a hit (8,000 characters of up to 4 bytes) */
};

/* ---- Columns -------------------------------------------------------------------------------- */

int ov_search_new(ov_store *store, ov_search **out)
{
    *out = NULL;
    ov_search *s = calloc(1, sizeof *s);
    if (!s)
        return OV_ENOMEM;
    int rc = ov_text_new(&s->text);
    if (rc) {
        free(s);
        return rc;
    }
    s->store = store;
    s->index = ov_store_search_index(store);
    *out = s;
    return OV_OK;
}

void ov_search_free(ov_search *s)
{
    if (!s)
        return;
    for (int f = 0; f < OV_SEARCH_FACETS_MAX; f++) {
        free(s->counts[f]);
        free(s->totals[f]);
        for (uint32_t n = 0; n < s->values_cap[f]; n++) {
            free(s->values[f][n].name);
            free(s->values[f][n].label);
        }
        free(s->values[f]);
    }
    free(s->docs);
    free(s->cold);
    free(s->pool);
    free(s->union_acc);
    ov_text_free(s->text);
    free(s);
}

size_t ov_search_documents(const ov_search *s)
{
    return s->live;
}

static void set_norms(const ov_search *s, uint32_t docno)
{
    column *c = &s->docs[docno];
    const column_cold *cold = &s->cold[docno];
    for (int k = 0; k < OV_SEARCH_CLASSES; k++) {
        double average = s->norm_average[k] > 0 ? s->norm_average[k] : 1;
        c->inv_norm[k] = (float)(1.0 / (1 - BM25_B + BM25_B * cold->length[k] / average));
    }
}

/* Moves the norms to the current averages when one of them left its 1 % step. */
static void update_norms(ov_search *s)
{
    double grid[OV_SEARCH_CLASSES];
    int changed = 0;
    for (int k = 0; k < OV_SEARCH_CLASSES; k++) {
        double average = s->live ? (double)s->total_length[k] / s->live : 1;
        if (average < 1)
            average = 1;
        grid[k] = exp(round(log(average) * 100) / 100);
        changed |= grid[k] != s->norm_average[k];
    }
    if (!changed)
        return;
    memcpy(s->norm_average, grid, sizeof grid);
    for (uint32_t d = 0; d < s->doc_slots; d++)
        if (s->docs[d].kind != KIND_ABSENT)
            set_norms(s, d);
}

static void column_clear(ov_search *s, uint32_t docno)
{
    if (docno >= s->doc_slots)
        return;
    column *c = &s->docs[docno];
    if (c->kind == KIND_ABSENT)
        return;
    s->live--;
    for (int k = 0; k < OV_SEARCH_CLASSES; k++)
        s->total_length[k] -= s->cold[docno].length[k];
    const uint32_t *v = s->pool + c->values_at;
    for (uint16_t i = 0; i < c->value_count; i++)
        s->totals[v[i] >> 24][v[i] & 0xFFFFFF]--;
    if (c->reach[0])
        for (int b = 0; b < OV_BOUWSTENEN; b++)
            s->score_docs[b][c->scores[b]]--;
    s->pool_dead += c->value_count;
    c->kind = KIND_ABSENT;
    c->value_count = 0;
}

/* Room in the totals for every value of doc, made before anything changes, so a failure leaves
 * the totals matching the columns. */
static int totals_reserve(ov_search *s, const ov_search_doc *doc)
{
    for (uint16_t i = 0; i < doc->value_count; i++) {
        uint32_t v = ov_be32_get(doc->values + 4 * i);
        uint32_t f = v >> 24, n = v & 0xFFFFFF;
        if (f >= OV_SEARCH_FACETS_MAX || n < s->totals_cap[f])
            continue;
        uint32_t cap = s->totals_cap[f] ? s->totals_cap[f] : 64;
        while (cap <= n)
            cap *= 2;
        uint32_t *grown = realloc(s->totals[f], cap * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        memset(grown + s->totals_cap[f], 0, (cap - s->totals_cap[f]) * sizeof *grown);
        s->totals[f] = grown;
        s->totals_cap[f] = cap;
    }
    return OV_OK;
}

static int column_set(ov_search *s, uint32_t docno, const ov_search_doc *doc)
{
    if (docno >= s->doc_cap) {
        uint32_t cap = s->doc_cap ? s->doc_cap : 1024;
        while (cap <= docno)
            cap *= 2;
        column *grown = realloc(s->docs, cap * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        s->docs = grown;
        column_cold *grown_cold = realloc(s->cold, cap * sizeof *grown_cold);
        if (!grown_cold)
            return OV_ENOMEM; /* docs is larger already; doc_cap still tells the smaller size */
        s->cold = grown_cold;
        s->doc_cap = cap;
    }
    while (s->doc_slots <= docno)
        s->docs[s->doc_slots++].kind = KIND_ABSENT;
    if (totals_reserve(s, doc))
        return OV_ENOMEM;
    column_clear(s, docno);
    if (s->pool_len + doc->value_count > s->pool_cap) {
        size_t cap = s->pool_cap ? s->pool_cap : 4096;
        while (cap < s->pool_len + doc->value_count)
            cap *= 2;
        uint32_t *grown = realloc(s->pool, cap * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        s->pool = grown;
        s->pool_cap = cap;
    }
    column *c = &s->docs[docno];
    column_cold *cold = &s->cold[docno];
    cold->id = doc->id;
    cold->updated_ms = doc->updated_ms;
    memcpy(cold->length, doc->length, sizeof cold->length);
    c->kind = (uint8_t)doc->kind;
    c->flags = doc->flags;
    memcpy(c->scores, doc->scores, OV_BOUWSTENEN);
    memset(c->reach, 0, sizeof c->reach);
    for (int t = 1; t <= REACH_MAX; t++)
        for (int b = 0; b < OV_BOUWSTENEN; b++)
            c->reach[t - 1] |= (uint8_t)((c->scores[b] >= t) << b);
    if (c->reach[0])
        for (int b = 0; b < OV_BOUWSTENEN; b++)
            s->score_docs[b][c->scores[b]]++;
    set_norms(s, docno);
    c->values_at = (uint32_t)s->pool_len;
    c->value_count = 0;
    for (uint16_t i = 0; i < doc->value_count; i++) {
        uint32_t v = ov_be32_get(doc->values + 4 * i);
        uint32_t f = v >> 24, n = v & 0xFFFFFF;
        if (f >= OV_SEARCH_FACETS_MAX || n == 0)
            continue; /* not a value this version writes: leave it out of counting */
        if (n > s->facet_max[f])
            s->facet_max[f] = n;
        s->pool[s->pool_len++] = v;
        s->totals[f][n]++;
        c->value_count++;
    }
    s->live++;
    for (int k = 0; k < OV_SEARCH_CLASSES; k++)
        s->total_length[k] += cold->length[k];
    return OV_OK;
}

/* Drops the value lists of replaced versions once they are half the pool. */
static int pool_compact(ov_search *s)
{
    if (s->pool_dead < 4096 || s->pool_dead * 2 < s->pool_len)
        return OV_OK;
    uint32_t *fresh = malloc((s->pool_len - s->pool_dead + 1) * sizeof *fresh);
    if (!fresh)
        return OV_ENOMEM;
    size_t used = 0;
    for (uint32_t d = 0; d < s->doc_slots; d++) {
        column *c = &s->docs[d];
        if (c->kind == KIND_ABSENT)
            continue;
        memcpy(fresh + used, s->pool + c->values_at, c->value_count * sizeof *fresh);
        c->values_at = (uint32_t)used;
        used += c->value_count;
    }
    free(s->pool);
    s->pool = fresh;
    s->pool_len = used;
    s->pool_cap = s->pool_len - s->pool_dead + 1;
    s->pool_dead = 0;
    return OV_OK;
}

static int load_all(ov_search *s, MDB_txn *txn)
{
    s->doc_slots = 0;
    s->pool_len = s->pool_dead = 0;
    s->live = 0;
    memset(s->total_length, 0, sizeof s->total_length);
    for (int f = 0; f < OV_SEARCH_FACETS_MAX; f++)
        if (s->totals[f])
            memset(s->totals[f], 0, s->totals_cap[f] * sizeof *s->totals[f]);
    memset(s->score_docs, 0, sizeof s->score_docs);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, ov_search_index_docs(s->index), &cursor);
    if (rc)
        return OV_ESTORE;
    MDB_val key, value;
    int mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    rc = OV_OK;
    while (mrc == 0 && rc == OV_OK) {
        ov_search_doc doc;
        if (key.mv_size != 4 || ov_search_doc_decode(value.mv_data, value.mv_size, &doc)) {
            rc = OV_ESTORE;
            break;
        }
        rc = column_set(s, ov_be32_get(key.mv_data), &doc);
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == OV_OK && mrc != MDB_NOTFOUND)
        rc = OV_ESTORE;
    return rc;
}

typedef struct {
    ov_search *s;
    MDB_txn *txn;
    int rc;
} resync;

static int on_change(void *ctx, uint64_t change_seq, const ov_record_meta *meta, const char *json,
                     size_t len)
{
    (void)change_seq;
    (void)json;
    (void)len;
    resync *r = ctx;
    MDB_val key = {OV_ID_BYTES, (void *)meta->env.id.bytes}, value;
    int mrc = mdb_get(r->txn, ov_search_index_ids(r->s->index), &key, &value);
    if (mrc == MDB_NOTFOUND)
        return 0; /* never indexed */
    if (mrc || value.mv_size != 4) {
        r->rc = OV_ESTORE;
        return -1;
    }
    uint32_t docno = ov_be32_get(value.mv_data);
    key = value;
    mrc = mdb_get(r->txn, ov_search_index_docs(r->s->index), &key, &value);
    if (mrc == MDB_NOTFOUND) {
        column_clear(r->s, docno);
        return 0;
    }
    ov_search_doc doc;
    if (mrc || ov_search_doc_decode(value.mv_data, value.mv_size, &doc)) {
        r->rc = OV_ESTORE;
        return -1;
    }
    r->rc = column_set(r->s, docno, &doc);
    return r->rc ? -1 : 0;
}

/* Brings the columns to read's snapshot. */
static int sync_columns(ov_search *s, ov_read *read)
{
    MDB_txn *txn = ov_read_txn(read);
    uint64_t last = ov_read_snapshot_change(read);
    uint32_t generation = ov_search_index_generation(s->index, txn);
    if (!s->loaded || generation != s->generation || last < s->synced ||
        last - s->synced > RESYNC_FULL) {
        int rc = load_all(s, txn);
        if (rc)
            return rc;
        s->loaded = 1;
        s->generation = generation;
        s->synced = last;
        return OV_OK;
    }
    resync r = {s, txn, OV_OK};
    while (s->synced < last) {
        uint64_t reached = s->synced;
        int rc = ov_read_changes_upto(read, s->synced, last, 1000, on_change, &r, &reached);
        if (r.rc)
            return r.rc;
        if (rc)
            return rc;
        if (reached <= s->synced)
            break;
        s->synced = reached;
    }
    s->synced = last;
    return pool_compact(s);
}

/* ---- Postings ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *data; /* OV_SEARCH_POSTING_BYTES each, by docno */
    size_t n;
} plist;

static uint32_t p_docno(const plist *p, size_t i)
{
    return ov_be32_get(p->data + i * OV_SEARCH_POSTING_BYTES);
}

static const uint8_t *p_entry(const plist *p, size_t i)
{
    return p->data + i * OV_SEARCH_POSTING_BYTES;
}

static int read_postings(MDB_cursor *cursor, const char *term, size_t len, plist *out)
{
    out->data = NULL;
    out->n = 0;
    MDB_val key = {len, (void *)term}, value;
    int rc = mdb_cursor_get(cursor, &key, &value, MDB_SET);
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc)
        return OV_ESTORE;
    size_t count;
    if (mdb_cursor_count(cursor, &count))
        return OV_ESTORE;
    out->data = malloc(count * OV_SEARCH_POSTING_BYTES + 1);
    if (!out->data)
        return OV_ENOMEM;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_GET_MULTIPLE);
    while (rc == 0) {
        size_t got = value.mv_size / OV_SEARCH_POSTING_BYTES;
        if (out->n + got > count)
            got = count - out->n;
        memcpy(out->data + out->n * OV_SEARCH_POSTING_BYTES, value.mv_data,
               got * OV_SEARCH_POSTING_BYTES);
        out->n += got;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT_MULTIPLE);
    }
    return rc == MDB_NOTFOUND ? OV_OK : OV_ESTORE;
}

/* ---- Query terms ---------------------------------------------------------------------------- */

typedef struct {
    char term[OV_SEARCH_KEY_MAX + 1];
    uint8_t len;
    char prefix[OV_TEXT_TERM_MAX + 1]; /* non-empty: also every term starting with this */
    plist list;
    size_t at; /* intersection cursor */
    double idf;
    int pair; /* a pair of a phrase's neighbouring words (search_index.h) */
} qterm;

/* Query terms: the words (at most OV_SEARCH_TERMS_MAX) and the pairs of their phrases. */
#define QTERMS_MAX (2 * OV_SEARCH_TERMS_MAX)

typedef struct {
    int count;
    int term[OV_SEARCH_TERMS_MAX];
    uint32_t offset[OV_SEARCH_TERMS_MAX];
    int by_pair; /* two words whose pair key decides the phrase exactly: no position check */
    int pairs;   /* every neighbouring pair of the phrase is a query term */
} phrase;

typedef struct {
    qterm terms[QTERMS_MAX];
    int count, words;
    int ignored;
    phrase phrases[PHRASES_MAX];
    int phrase_count;
    phrase *current; /* phrase being parsed */
    uint32_t first_position;
    int last_term; /* index of the term the last analysed word gave, -1 */
} parsed;

static int add_key(parsed *p, const char *term, size_t len, int pair)
{
    for (int i = 0; i < p->count; i++)
        if (p->terms[i].len == len && !memcmp(p->terms[i].term, term, len))
            return i;
    if ((!pair && p->words >= OV_SEARCH_TERMS_MAX) || p->count >= QTERMS_MAX) {
        p->ignored += !pair;
        return -1;
    }
    qterm *t = &p->terms[p->count];
    memset(t, 0, sizeof *t);
    memcpy(t->term, term, len);
    t->len = (uint8_t)len;
    t->pair = pair;
    p->words += !pair;
    return p->count++;
}

static int add_term(parsed *p, const char *term, size_t len)
{
    return add_key(p, term, len, 0);
}

/* Adds the pair keys of a phrase's neighbouring words; a two-word phrase within the pair gap is
 * then decided by its pair alone. */
static void add_phrase_pairs(parsed *p, phrase *ph)
{
    int all = 1;
    for (int k = 0; k + 1 < ph->count; k++) {
        uint32_t gap = ph->offset[k + 1] - ph->offset[k];
        const qterm *a = &p->terms[ph->term[k]], *b = &p->terms[ph->term[k + 1]];
        if (gap == 0 || gap > OV_SEARCH_PAIR_GAP) {
            all = 0;
            continue;
        }
        char key[OV_SEARCH_KEY_MAX + 1];
        size_t n = ov_search_pair_key(key, a->term, a->len, b->term, b->len, gap);
        if (add_key(p, key, n, 1) < 0)
            all = 0;
    }
    ph->pairs = all;
    ph->by_pair = all && ph->count == 2;
}

static int on_query_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    parsed *p = ctx;
    int i = add_term(p, term, len);
    p->last_term = i;
    if (p->current && i >= 0 && p->current->count < OV_SEARCH_TERMS_MAX) {
        if (p->current->count == 0)
            p->first_position = position;
        p->current->term[p->current->count] = i;
        p->current->offset[p->current->count++] = position - p->first_position;
    }
    return 0;
}

static int valid_utf8(const char *s, size_t len)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0 || c == 0)
            return 0;
        i += (size_t)n;
    }
    return 1;
}

/* Splits q into words and "phrases"; an unclosed quote runs to the end. The last word, when q
 * does not end in a space or quote, is also a prefix. */
static int parse_query(ov_search *s, const char *q, size_t len, parsed *p)
{
    memset(p, 0, sizeof *p);
    p->last_term = -1;
    size_t i = 0;
    int quoted = 0;
    while (i <= len) {
        size_t end = i;
        while (end < len && q[end] != '"')
            end++;
        if (end > i) {
            phrase *ph = NULL;
            if (quoted && p->phrase_count < PHRASES_MAX) {
                ph = &p->phrases[p->phrase_count];
                ph->count = 0;
            }
            p->current = ph;
            p->last_term = -1;
            int rc = ov_text_analyse(s->text, q + i, end - i, on_query_term, p);
            if (rc)
                return rc;
            if (ph && ph->count > 1) {
                add_phrase_pairs(p, ph);
                p->phrase_count++;
            }
        }
        if (end >= len)
            break;
        quoted = !quoted;
        i = end + 1;
    }
    /* Search as you type: the last word, unless finished by a space or a closing quote. */
    if (len > 0 && !quoted && q[len - 1] != '"' && q[len - 1] != ' ' && q[len - 1] != '\t') {
        size_t start = len;
        while (start > 0 && q[start - 1] != ' ' && q[start - 1] != '\t' && q[start - 1] != '"')
            start--;
        char folded[OV_TEXT_TERM_MAX + 1];
        int n = ov_text_fold_word(q + start, len - start, folded);
        if (n >= PREFIX_MIN) {
            int t = p->last_term;
            if (t < 0)
                t = add_term(p, folded, (size_t)n); /* a stopword so far: only its prefix */
            if (t >= 0)
                memcpy(p->terms[t].prefix, folded, (size_t)n + 1);
        }
    }
    return OV_OK;
}

typedef struct {
    char key[OV_TEXT_TERM_MAX + 1];
    size_t len, count;
} expansion;

static int compare_expansion(const void *a, const void *b)
{
    size_t x = ((const expansion *)a)->count, y = ((const expansion *)b)->count;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Adds a list's counts into the dense accumulator (fields of 16, 16 and 32 bits). */
static void accumulate(uint64_t *acc, uint32_t slots, const plist *list)
{
    for (size_t i = 0; i < list->n; i++) {
        const uint8_t *e = list->data + i * OV_SEARCH_POSTING_BYTES;
        uint32_t d = ov_be32_get(e);
        if (d < slots)
            acc[d] += (uint64_t)e[4] | (uint64_t)e[5] << 16 | (uint64_t)(e[6] << 8 | e[7]) << 32;
    }
}

/* A term's postings: the exact term, plus the most frequent terms its prefix begins, united in a
 * dense array by document number (one pass per list and one over the documents, where merging
 * list by list would copy the growing union once per list). */
static int fetch_term(ov_search *s, MDB_cursor *cursor, qterm *t)
{
    int rc = read_postings(cursor, t->term, t->len, &t->list);
    if (rc || !t->prefix[0])
        return rc;
    size_t plen = strlen(t->prefix);
    expansion *found = malloc(PREFIX_SCAN * sizeof *found);
    if (!found)
        return OV_ENOMEM;
    size_t nfound = 0;
    MDB_val key = {plen, t->prefix}, value;
    int mrc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    for (int scanned = 0; mrc == 0 && scanned < PREFIX_SCAN; scanned++) {
        if (key.mv_size < plen || memcmp(key.mv_data, t->prefix, plen))
            break;
        if (key.mv_size <= OV_TEXT_TERM_MAX &&
            !(key.mv_size == t->len && !memcmp(key.mv_data, t->term, t->len))) {
            expansion *e = &found[nfound++];
            memcpy(e->key, key.mv_data, key.mv_size);
            e->len = key.mv_size;
            if (mdb_cursor_count(cursor, &e->count))
                e->count = 0;
        }
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT_NODUP);
    }
    if (nfound == 0) {
        free(found);
        return OV_OK;
    }
    qsort(found, nfound, sizeof *found, compare_expansion);
    /* Most frequent first, and no more postings than the documents hold: a short prefix of common
     * words ("lee") already matches nearly everything with its first list, and the rare words it
     * also begins come back as soon as one more letter is typed. */
    size_t budget = s->live ? s->live : 1, read = t->list.n, lists = 0;
    while (lists < nfound && lists < PREFIX_KEYS && read < budget)
        read += found[lists++].count;
    if (t->list.n == 0 && lists == 1) { /* one list: nothing to unite */
        rc = read_postings(cursor, found[0].key, found[0].len, &t->list);
        free(found);
        return rc;
    }
    if (s->doc_slots > s->union_cap) {
        uint64_t *grown = realloc(s->union_acc, s->doc_slots * sizeof *grown);
        if (!grown) {
            free(found);
            return OV_ENOMEM;
        }
        s->union_acc = grown;
        s->union_cap = s->doc_slots;
    }
    uint64_t *acc = s->union_acc;
    memset(acc, 0, s->doc_slots * sizeof *acc);
    accumulate(acc, s->doc_slots, &t->list);
    for (size_t i = 0; i < lists && rc == OV_OK; i++) {
        plist more;
        rc = read_postings(cursor, found[i].key, found[i].len, &more);
        if (rc == OV_OK)
            accumulate(acc, s->doc_slots, &more);
        free(more.data);
    }
    free(found);
    if (rc)
        return rc;
    size_t n = 0;
    for (uint32_t d = 0; d < s->doc_slots; d++)
        n += acc[d] != 0;
    uint8_t *data = malloc(n * OV_SEARCH_POSTING_BYTES + 1);
    if (!data)
        return OV_ENOMEM;
    uint8_t *e = data;
    for (uint32_t d = 0; d < s->doc_slots; d++) {
        uint64_t a = acc[d];
        if (!a)
            continue;
        uint32_t counts[OV_SEARCH_CLASSES] = {(uint32_t)(a & 0xFFFF), (uint32_t)(a >> 16 & 0xFFFF),
                                              (uint32_t)(a >> 32)};
        ov_search_posting_encode(e, d, counts);
        e += OV_SEARCH_POSTING_BYTES;
    }
    free(t->list.data);
    t->list.data = data;
    t->list.n = n;
    return OV_OK;
}

/* ---- Filters and facet counts --------------------------------------------------------------- */

typedef struct {
    int group_of[OV_SEARCH_FACETS_MAX]; /* filter group of a facet, -1 */
    /* By facet, then value number: the bit of the facet's group when the filter lets the value
     * through, else 0. A facet without a filter shares `none`, zeros as long as the longest facet,
     * so a document's filters are one lookup per value, without branches. */
    uint32_t *pass[OV_SEARCH_FACETS_MAX];
    uint32_t *none;
    int groups;
    int bouwsteen_group; /* -1 */
    uint8_t bouwstenen;
    int bouwsteen_min;
    uint32_t all;
} filter_set;

static void filters_free(filter_set *f)
{
    for (int i = 0; i < OV_SEARCH_FACETS_MAX; i++)
        if (f->pass[i] != f->none)
            free(f->pass[i]);
    free(f->none);
}

static int filters_build(ov_search *s, MDB_txn *txn, const ov_search_query *q, filter_set *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < OV_SEARCH_FACETS_MAX; i++)
        f->group_of[i] = -1;
    f->bouwsteen_group = -1;
    for (int i = 0; i < q->filter_count; i++) {
        int facet = q->filters[i].facet;
        if (facet < 0 || facet >= OV_SEARCH_FACETS_MAX || f->group_of[facet] >= 0)
            return OV_EINVAL;
        /* The columns are synced: no value of theirs is above facet_max. */
        uint32_t values = s->facet_max[facet] + 1;
        f->pass[facet] = calloc(values, sizeof(uint32_t));
        if (!f->pass[facet])
            return OV_ENOMEM;
        f->group_of[facet] = f->groups++;
        for (int v = 0; v < q->filters[i].count; v++) {
            uint32_t id = ov_search_value_id(s->index, txn, facet, q->filters[i].values[v]);
            uint32_t n = id & 0xFFFFFF;
            if (id && n < values)
                f->pass[facet][n] = 1u << f->group_of[facet];
        }
    }
    if (q->filter_count) {
        uint32_t longest = 0;
        for (int facet = 0; facet < OV_SEARCH_FACETS_MAX; facet++)
            if (s->facet_max[facet] > longest)
                longest = s->facet_max[facet];
        f->none = calloc(longest + 1, sizeof(uint32_t));
        if (!f->none)
            return OV_ENOMEM;
        for (int facet = 0; facet < OV_SEARCH_FACETS_MAX; facet++)
            if (!f->pass[facet])
                f->pass[facet] = f->none;
    }
    if (q->bouwstenen) {
        f->bouwsteen_group = f->groups++;
        f->bouwstenen = q->bouwstenen;
    }
    f->bouwsteen_min = q->bouwsteen_min;
    f->all = f->groups ? (uint32_t)((1ull << f->groups) - 1) : 0;
    return OV_OK;
}

/* The filter groups a document fails. */
static uint32_t filters_failed(const ov_search *s, const filter_set *f, const column *c)
{
    if (!f->all)
        return 0;
    uint32_t passed = 0;
    if (f->none) { /* facet filters */
        const uint32_t *v = s->pool + c->values_at;
        for (uint16_t i = 0; i < c->value_count; i++)
            passed |= f->pass[v[i] >> 24][v[i] & 0xFFFFFF];
    }
    if (f->bouwsteen_group >= 0 && (blocks_at_least(c, f->bouwsteen_min) & f->bouwstenen))
        passed |= 1u << f->bouwsteen_group;
    return f->all & ~passed;
}

typedef struct {
    uint32_t bouwsteen[OV_BOUWSTENEN];
    /* Documents counted (or taken away, modulo 2^32) by the set of blocks they count for: one
     * update per document instead of one per block; blocks_expand adds them to bouwsteen. */
    uint32_t by_blocks[1u << OV_BOUWSTENEN];
} extra_counts;

static void blocks_expand(extra_counts *extra)
{
    for (unsigned blocks = 1; blocks < 1u << OV_BOUWSTENEN; blocks++)
        for (int b = 0; b < OV_BOUWSTENEN && extra->by_blocks[blocks]; b++)
            if (blocks >> b & 1)
                extra->bouwsteen[b] += extra->by_blocks[blocks];
    memset(extra->by_blocks, 0, sizeof extra->by_blocks);
}

static int counts_reset(ov_search *s, extra_counts *extra)
{
    memset(extra, 0, sizeof *extra);
    for (int f = 0; f < OV_SEARCH_FACETS_MAX; f++) {
        uint32_t need = s->facet_max[f] + 1;
        if (need > s->counts_cap[f]) {
            uint32_t *grown = realloc(s->counts[f], need * sizeof *grown);
            if (!grown)
                return OV_ENOMEM;
            s->counts[f] = grown;
            s->counts_cap[f] = need;
        }
        memset(s->counts[f], 0, s->counts_cap[f] * sizeof *s->counts[f]);
    }
    return OV_OK;
}

/* Counts a document's values: all of them (only_group < 0), or those of one failed group. */
static void count_values(ov_search *s, const filter_set *f, const column *c, int only_group,
                         extra_counts *extra)
{
    const uint32_t *v = s->pool + c->values_at;
    if (only_group < 0) {
        /* Every value is in range: counts_reset sized each facet's counters to the largest value
         * the columns hold (column_set keeps facet_max), after the columns were synced. */
        for (uint16_t i = 0; i < c->value_count; i++)
            s->counts[v[i] >> 24][v[i] & 0xFFFFFF]++;
    } else {
        for (uint16_t i = 0; i < c->value_count; i++) {
            uint32_t facet = v[i] >> 24;
            if (f->group_of[facet] == only_group)
                s->counts[facet][v[i] & 0xFFFFFF]++;
        }
    }
    if (only_group < 0 || only_group == f->bouwsteen_group)
        extra->by_blocks[blocks_counted(c, f->bouwsteen_min)]++;
}

/* ---- Phrases -------------------------------------------------------------------------------- */

typedef struct {
    const parsed *p;
    const phrase *ph;
    uint32_t *positions[OV_SEARCH_TERMS_MAX];
    uint32_t counts[OV_SEARCH_TERMS_MAX];
} phrase_walk;

static int take_positions(void *ctx, const char *term, size_t len,
                          const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                          size_t positions_len, uint32_t position_count)
{
    (void)counts;
    phrase_walk *w = ctx;
    for (int k = 0; k < w->ph->count; k++) {
        const qterm *t = &w->p->terms[w->ph->term[k]];
        if (t->len != len || memcmp(t->term, term, len) || w->positions[k])
            continue;
        w->positions[k] = malloc((position_count + 1) * sizeof(uint32_t));
        if (!w->positions[k])
            return OV_ENOMEM;
        const uint8_t *at = positions, *end = positions + positions_len;
        uint32_t value = 0, n = 0, delta;
        while (n < position_count && ov_search_varint(&at, end, &delta)) {
            value += delta;
            w->positions[k][n++] = value;
        }
        w->counts[k] = n;
    }
    return 0;
}

static int has_position(const uint32_t *list, uint32_t n, uint32_t want)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (list[mid] < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && list[lo] == want;
}

/* Whether a document that holds every pair of phrase ph holds the phrase itself, without reading
 * positions: it does when each inner word occurs once in it, since then the pair before and the
 * pair after that word meet at its one position. entry: the document's postings per query term. */
static int decided_by_pairs(const parsed *p, const phrase *ph, const uint8_t *const *entry)
{
    if (ph->by_pair)
        return 1;
    if (!ph->pairs || !entry)
        return 0;
    for (int k = 1; k + 1 < ph->count; k++) {
        const uint8_t *e = entry[ph->term[k]];
        if (!e || p->terms[ph->term[k]].prefix[0] || e[4] + e[5] + (e[6] << 8 | e[7]) != 1)
            return 0;
    }
    return 1;
}

/* Whether the document holds every phrase, word after word (stopwords keep their place). */
static int phrases_match(MDB_cursor *docs, const parsed *p, uint32_t docno,
                         const uint8_t *const *entry)
{
    if (!p->phrase_count)
        return 1;
    int needed = 0;
    for (int i = 0; i < p->phrase_count; i++)
        needed |= !decided_by_pairs(p, &p->phrases[i], entry);
    if (!needed)
        return 1;
    uint8_t key_bytes[4];
    ov_be32_put(key_bytes, docno);
    MDB_val key = {4, key_bytes}, value;
    ov_search_doc doc;
    /* A cursor, not mdb_get: candidates come in docno order, and a positioned cursor finds the
     * next key on its current page without descending from the root. */
    if (!docs || mdb_cursor_get(docs, &key, &value, MDB_SET_KEY) ||
        ov_search_doc_decode(value.mv_data, value.mv_size, &doc))
        return 0;
    for (int i = 0; i < p->phrase_count; i++) {
        if (decided_by_pairs(p, &p->phrases[i], entry))
            continue;
        phrase_walk w;
        memset(&w, 0, sizeof w);
        w.p = p;
        w.ph = &p->phrases[i];
        int ok = 1;
        for (int k = 0; k < w.ph->count && ok; k++) {
            const qterm *t = &p->terms[w.ph->term[k]];
            ok = ov_search_doc_find(&doc, t->term, t->len, take_positions, &w) == 1;
        }
        int found = 0;
        for (int k = 0; k < w.ph->count; k++)
            ok = ok && w.positions[k];
        for (uint32_t a = 0; ok && !found && a < w.counts[0]; a++) {
            uint32_t start = w.positions[0][a];
            found = 1;
            for (int k = 1; k < w.ph->count && found; k++)
                found = has_position(w.positions[k], w.counts[k], start + w.ph->offset[k]);
        }
        for (int k = 0; k < w.ph->count; k++)
            free(w.positions[k]);
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- Ranking -------------------------------------------------------------------------------- */

typedef struct {
    double score;
    uint32_t docno;
} hit;

/* a before b in the answer: higher score first, then lower docno. */
static int hit_before(const hit *a, const hit *b)
{
    return a->score > b->score || (a->score == b->score && a->docno < b->docno);
}

typedef struct {
    hit *items;
    int count, cap;
} top_hits;

/* Keeps the cap best hits in a heap whose root is the worst of them. Returns whether h is kept. */
static int top_push(top_hits *t, hit h)
{
    if (t->count < t->cap) {
        int i = t->count++;
        t->items[i] = h;
        while (i > 0) {
            int parent = (i - 1) / 2;
            if (!hit_before(&t->items[parent], &t->items[i]))
                break;
            hit tmp = t->items[parent];
            t->items[parent] = t->items[i];
            t->items[i] = tmp;
            i = parent;
        }
        return 1;
    }
    if (!hit_before(&h, &t->items[0]))
        return 0;
    t->items[0] = h;
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, worst = i;
        if (l < t->count && hit_before(&t->items[worst], &t->items[l]))
            worst = l;
        if (r < t->count && hit_before(&t->items[worst], &t->items[r]))
            worst = r;
        if (worst == i)
            break;
        hit tmp = t->items[worst];
        t->items[worst] = t->items[i];
        t->items[i] = tmp;
        i = worst;
    }
    return 1;
}

static int compare_hits(const void *a, const void *b)
{
    return hit_before(a, b) ? -1 : hit_before(b, a) ? 1 : 0;
}

static int parse_cursor(const char *text, hit *after)
{
    unsigned long long bits;
    unsigned docno;
    char tail;
    if (!text || sscanf(text, "%16llx-%8x%c", &bits, &docno, &tail) != 2 || strlen(text) != 25)
        return OV_EINVAL;
    memcpy(&after->score, &bits, sizeof bits);
    if (!isfinite(after->score))
        return OV_EINVAL;
    after->docno = docno;
    return OV_OK;
}

static void format_cursor(const hit *h, char out[32])
{
    unsigned long long bits;
    memcpy(&bits, &h->score, sizeof bits);
    snprintf(out, 32, "%016llx-%08x", bits, h->docno);
}

/* ---- Snippets ------------------------------------------------------------------------------- */

typedef struct {
    const parsed *p;
    size_t starts[64], ends[64];
    int count;
} marks;

static int term_matches(const parsed *p, const char *term, size_t len)
{
    for (int i = 0; i < p->count; i++) {
        const qterm *t = &p->terms[i];
        if (t->len == len && !memcmp(t->term, term, len))
            return 1;
        size_t plen = strlen(t->prefix);
        if (plen && len >= plen && !memcmp(term, t->prefix, plen))
            return 1;
    }
    return 0;
}

static int on_span(void *ctx, const char *term, size_t len, uint32_t position, size_t start,
                   size_t end)
{
    (void)position;
    marks *m = ctx;
    /* A snippet ends within SNIPPET_BYTES of its first mark, so words past that would not be
     * shown: stop analysing (stemming is most of a snippet's cost). */
    if (m->count && start > m->starts[0] + SNIPPET_BYTES)
        return 1;
    if (!term_matches(m->p, term, len))
        return 0;
    m->starts[m->count] = start;
    m->ends[m->count] = end;
    return ++m->count == (int)(sizeof m->starts / sizeof *m->starts);
}

static int append_escaped(ov_buf *out, const char *text, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        const char *entity = NULL;
        switch (text[i]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            continue;
        }
        ov_buf_append(out, text + from, i - from);
        ov_buf_append_str(out, entity);
        from = i + 1;
    }
    return ov_buf_append(out, text + from, len - from);
}

/* A cheap test before analysing a text: could any query term occur in it? Looks for the first
 * bytes of each term, ignoring ASCII case (terms are folded; a non-ASCII start always may). */
static int may_contain(const parsed *p, const char *text, size_t len)
{
    for (int i = 0; i < p->count; i++) {
        const qterm *t = &p->terms[i];
        if (t->pair)
            continue; /* its words are terms of their own */
        const char *probe = t->prefix[0] ? t->prefix : t->term;
        size_t n = strlen(probe) < 4 ? strlen(probe) : 4;
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)probe[k] >= 0x80)
                return 1;
        for (size_t at = 0; at + n <= len; at++) {
            size_t k = 0;
            while (k < n && (text[at + k] | 0x20) == probe[k])
                k++;
            if (k == n)
                return 1;
        }
    }
    return 0;
}

/* The members of a stored record a hit shows, found without parsing the record. */
#define SNIPPET_FIELDS 16
typedef struct {
    ov_kind kind;
    const char *title_field;
    const char *title; /* raw string literal */
    size_t title_len;
    struct {
        const char *value;
        size_t len;
        int field_class;
    } texts[SNIPPET_FIELDS];
    int count;
} hit_members;

static int on_hit_member(void *ctx, const char *key, size_t key_len, const char *value,
                         size_t value_len)
{
    hit_members *h = ctx;
    if (value_len < 2 || value[0] != '"')
        return 0;
    if (strlen(h->title_field) == key_len && !memcmp(key, h->title_field, key_len)) {
        h->title = value;
        h->title_len = value_len;
        return 0;
    }
    /* A list of themes says little in a snippet, and the title is shown anyway. */
    if (ov_record_text_field(h->kind, key, key_len) != 1 || h->count == SNIPPET_FIELDS)
        return 0;
    char field[32];
    if (key_len >= sizeof field)
        return 0;
    memcpy(field, key, key_len);
    field[key_len] = 0;
    h->texts[h->count].value = value;
    h->texts[h->count].len = value_len;
    h->texts[h->count].field_class = ov_search_field_class(h->kind, field);
    h->count++;
    return 0;
}

static size_t back_to_char(const char *text, size_t at)
{
    while (at > 0 && ((unsigned char)text[at] & 0xC0) == 0x80)
        at--;
    return at;
}

/* The part of the text around the first match, HTML-escaped, matches in <mark>. */
static void append_snippet(ov_buf *out, const char *text, size_t len, const marks *m)
{
    size_t first = m && m->count ? m->starts[0] : 0;
    size_t from = first > SNIPPET_BEFORE ? first - SNIPPET_BEFORE : 0;
    if (from > 0) {
        size_t space = from;
        while (space < first && text[space] != ' ')
            space++;
        from = space < first ? space + 1 : back_to_char(text, from);
    }
    size_t to = from + SNIPPET_BYTES < len ? from + SNIPPET_BYTES : len;
    if (to < len) {
        size_t space = to;
        while (space > from && text[space] != ' ')
            space--;
        to = space > first ? space : back_to_char(text, to);
    }
    ov_buf snippet;
    ov_buf_init(&snippet, 4096);
    if (from > 0)
        ov_buf_append_str(&snippet, "… ");
    size_t at = from;
    for (int i = 0; m && i < m->count; i++) {
        if (m->starts[i] < at || m->ends[i] > to)
            continue;
        append_escaped(&snippet, text + at, m->starts[i] - at);
        ov_buf_append_str(&snippet, "<mark>");
        append_escaped(&snippet, text + m->starts[i], m->ends[i] - m->starts[i]);
        ov_buf_append_str(&snippet, "</mark>");
        at = m->ends[i];
    }
    append_escaped(&snippet, text + at, to - at);
    if (to < len)
        ov_buf_append_str(&snippet, " …");
    ov_buf_append_json_string(out, snippet.data ? snippet.data : "", snippet.len);
    ov_buf_free(&snippet);
}

/* Appends the snippet of a hit: from the first text (summaries before bodies) where a query word
 * occurs, else the start of its summary. */
static void append_hit_snippet(ov_search *s, const parsed *p, const hit_members *h, ov_buf *out)
{
    marks m;
    for (int pass = 0; pass < 2 && p->count; pass++) {
        for (int i = 0; i < h->count; i++) {
            if ((h->texts[i].field_class == OV_SEARCH_SUMMARY) != (pass == 0))
                continue;
            if (!may_contain(p, h->texts[i].value, h->texts[i].len))
                continue;
            long n =
                ov_canon_string(h->texts[i].value, h->texts[i].len, s->scratch, sizeof s->scratch);
            if (n <= 0)
                continue;
            m.count = 0;
            m.p = p;
            if (ov_text_analyse_spans(s->text, s->scratch, (size_t)n, on_span, &m) >= 0 &&
                m.count > 0) {
                append_snippet(out, s->scratch, (size_t)n, &m);
                return;
            }
        }
    }
    int best = -1;
    for (int i = 0; i < h->count && best < 0; i++)
        if (h->texts[i].field_class == OV_SEARCH_SUMMARY)
            best = i;
    if (best < 0 && h->count)
        best = 0;
    long n = best < 0 ? -1
                      : ov_canon_string(h->texts[best].value, h->texts[best].len, s->scratch,
                                        sizeof s->scratch);
    if (n > 0)
        append_snippet(out, s->scratch, (size_t)n, NULL);
    else
        ov_buf_append_str(out, "\"\"");
}

static void append_hit(ov_search *s, ov_read *read, const parsed *p, const hit *h, ov_buf *out)
{
    const column *c = &s->docs[h->docno];
    ov_record_meta meta;
    const char *json;
    size_t len;
    char id[OV_ID_CHARS + 1], origin[OV_ID_CHARS + 1];
    const ov_id *record_id = &s->cold[h->docno].id;
    ov_id_format(record_id, id);
    if (ov_read_record(read, record_id, &meta, &json, &len) != OV_OK) {
        ov_buf_printf(out, "{\"id\":\"%s\",\"kind\":\"%s\",\"score\":%.4f}", id,
                      ov_kind_name(c->kind), h->score);
        return;
    }
    ov_id_format(&meta.env.origin, origin);
    ov_buf_printf(out, "{\"id\":\"%s\",\"kind\":\"%s\",\"origin\":\"%s\",\"score\":%.4f,", id,
                  ov_kind_name(c->kind), origin, h->score);
    hit_members members;
    memset(&members, 0, sizeof members);
    members.kind = (ov_kind)c->kind;
    members.title_field = ov_record_title_field((ov_kind)c->kind);
    ov_canon_each_member(json, len, on_hit_member, &members);
    ov_buf_append_str(out, "\"title\":");
    if (members.title) /* stored records are canonical: the literal is valid JSON as it is */
        ov_buf_append(out, members.title, members.title_len);
    else
        ov_buf_append_str(out, "\"\"");
    ov_buf_append_str(out, ",\"snippet\":");
    append_hit_snippet(s, p, &members, out);
    ov_buf_append_str(out, ",\"record\":");
    ov_buf_append(out, json, len);
    ov_buf_append_str(out, "}");
}

/* ---- Facet output --------------------------------------------------------------------------- */

static value_info *value_slot(ov_search *s, int facet, uint32_t n)
{
    if (n >= s->values_cap[facet]) {
        uint32_t cap = s->values_cap[facet] ? s->values_cap[facet] : 64;
        while (cap <= n)
            cap *= 2;
        value_info *grown = realloc(s->values[facet], cap * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + s->values_cap[facet], 0, (cap - s->values_cap[facet]) * sizeof *grown);
        s->values[facet] = grown;
        s->values_cap[facet] = cap;
    }
    return &s->values[facet][n];
}

static const char *value_name(ov_search *s, MDB_txn *txn, int facet, uint32_t n)
{
    value_info *v = value_slot(s, facet, n);
    if (!v)
        return NULL;
    if (!v->name) {
        char text[OV_RECORD_FACET_VALUE_MAX + 1];
        if (ov_search_value_name(s->index, txn, (uint32_t)facet << 24 | n, text, sizeof text))
            return NULL;
        v->name = strdup(text);
    }
    return v->name;
}

typedef struct {
    uint32_t n, count;
} facet_count;

static int compare_counts(const void *a, const void *b)
{
    const facet_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->n < y->n ? -1 : x->n > y->n;
}

typedef struct {
    const char *field;
    const char *value;
    size_t len;
} member_lookup;

static int find_member(void *ctx, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    member_lookup *l = ctx;
    if (strlen(l->field) != key_len || memcmp(key, l->field, key_len))
        return 0;
    l->value = value;
    l->len = value_len;
    return 1;
}

/* For facets whose values are record ids, the record's name (cached while the record is
 * unchanged: reading its change position costs no parsing). */
static void append_label(ov_search *s, ov_read *read, int facet, uint32_t n, const char *value,
                         ov_buf *out)
{
    const char *name = ov_search_facet_name(facet);
    if (strcmp(name, "region") && strcmp(name, "school"))
        return;
    ov_id id;
    ov_record_meta meta;
    const char *json;
    size_t len;
    if (ov_id_parse(value, strlen(value), &id) || ov_read_record(read, &id, &meta, &json, &len))
        return;
    value_info *v = value_slot(s, facet, n);
    if (!v)
        return;
    if (!v->label || v->label_seq != meta.change_seq) {
        member_lookup lookup = {ov_record_title_field(meta.env.kind), NULL, 0};
        ov_canon_each_member(json, len, find_member, &lookup);
        if (!lookup.value || lookup.value[0] != '"')
            return;
        free(v->label);
        v->label = strndup(lookup.value, lookup.len); /* the JSON literal, ready to append */
        v->label_seq = meta.change_seq;
        if (!v->label)
            return;
    }
    ov_buf_append_str(out, ",\"label\":");
    ov_buf_append_str(out, v->label);
}

static void append_facets(ov_search *s, ov_read *read, const extra_counts *extra, ov_buf *out)
{
    MDB_txn *txn = ov_read_txn(read);
    ov_buf_append_str(out, "\"facets\":{");
    facet_count *list = NULL;
    size_t list_cap = 0;
    for (size_t r = 0; r < sizeof reported_facets / sizeof *reported_facets; r++) {
        int facet = ov_search_facet_number(reported_facets[r]);
        size_t n_found = 0;
        for (uint32_t n = 1; n < s->counts_cap[facet]; n++) {
            if (!s->counts[facet][n])
                continue;
            if (n_found == list_cap) {
                size_t cap = list_cap ? list_cap * 2 : 64;
                facet_count *grown = realloc(list, cap * sizeof *grown);
                if (!grown)
                    break;
                list = grown;
                list_cap = cap;
            }
            list[n_found++] = (facet_count){n, s->counts[facet][n]};
        }
        if (n_found > 1)
            qsort(list, n_found, sizeof *list, compare_counts);
        ov_buf_printf(out, "%s\"%s\":[", r ? "," : "", reported_facets[r]);
        int written = 0;
        for (size_t i = 0; i < n_found && written < FACET_TOP; i++) {
            const char *name = value_name(s, txn, facet, list[i].n);
            if (!name)
                continue;
            ov_buf_printf(out, "%s{\"value\":", written++ ? "," : "");
            ov_buf_append_json_string(out, name, strlen(name));
            ov_buf_printf(out, ",\"count\":%u", list[i].count);
            append_label(s, read, facet, list[i].n, name, out);
            ov_buf_append_str(out, "}");
        }
        ov_buf_append_str(out, "]");
    }
    free(list);
    ov_buf_append_str(out, ",\"bouwsteen\":[");
    int written = 0;
    for (int b = 0; b < OV_BOUWSTENEN; b++) {
        if (!extra->bouwsteen[b])
            continue;
        ov_buf_printf(out, "%s{\"value\":\"%s\",\"count\":%u,\"label\":", written++ ? "," : "",
                      ov_bouwsteen_slug[b], extra->bouwsteen[b]);
        ov_buf_append_json_string(out, ov_bouwsteen_title_nl[b], strlen(ov_bouwsteen_title_nl[b]));
        ov_buf_append_str(out, "}");
    }
    ov_buf_append_str(out, "]}");
}

/* ---- Similar ------------------------------------------------------------------------------- */

typedef struct {
    char term[OV_TEXT_TERM_MAX + 1];
    uint8_t len;
    uint32_t tf;
    double weight;
} similar_term;

typedef struct {
    similar_term *items;
    size_t count, cap;
} similar_terms;

static int on_similar_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    (void)position;
    similar_terms *st = ctx;
    for (size_t i = 0; i < st->count; i++)
        if (st->items[i].len == len && !memcmp(st->items[i].term, term, len)) {
            st->items[i].tf++;
            return 0;
        }
    if (st->count == st->cap)
        return 0; /* enough words to choose from */
    similar_term *t = &st->items[st->count++];
    memcpy(t->term, term, len);
    t->term[len] = 0;
    t->len = (uint8_t)len;
    t->tf = 1;
    return 0;
}

static int compare_similar(const void *a, const void *b)
{
    double x = ((const similar_term *)a)->weight, y = ((const similar_term *)b)->weight;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The text's most telling words (tf × idf), as query terms any of which may match. */
static int parse_similar(ov_search *s, MDB_txn *txn, const char *text, size_t len, parsed *p)
{
    memset(p, 0, sizeof *p);
    p->last_term = -1;
    similar_terms st = {calloc(1024, sizeof(similar_term)), 0, 1024};
    if (!st.items)
        return OV_ENOMEM;
    int rc = ov_text_analyse(s->text, text, len, on_similar_term, &st);
    MDB_cursor *cursor = NULL;
    if (!rc && mdb_cursor_open(txn, ov_search_index_postings(s->index), &cursor))
        rc = OV_ESTORE;
    double n_docs = s->live ? s->live : 1;
    for (size_t i = 0; !rc && i < st.count; i++) {
        MDB_val key = {st.items[i].len, st.items[i].term}, value;
        size_t df = 0;
        if (!mdb_cursor_get(cursor, &key, &value, MDB_SET))
            mdb_cursor_count(cursor, &df);
        st.items[i].weight =
            df ? st.items[i].tf * log(1 + (n_docs - (double)df + 0.5) / ((double)df + 0.5)) : 0;
    }
    if (cursor)
        mdb_cursor_close(cursor);
    qsort(st.items, st.count, sizeof *st.items, compare_similar);
    for (size_t i = 0; !rc && i < st.count && p->count < SIMILAR_TERMS; i++) {
        if (st.items[i].weight <= 0)
            break;
        add_term(p, st.items[i].term, st.items[i].len);
    }
    free(st.items);
    return rc;
}

/* ---- Running a query ------------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
    ov_search *s;
    MDB_txn *txn;
    const ov_search_query *q;
    const parsed *p;
    filter_set *f;
    extra_counts *extra;
    top_hits *top;
    const hit *after;
    uint64_t total;
    uint64_t beyond;      /* hits after the cursor: more than a page means a next page */
    uint32_t prefer[2];   /* value ids that raise a hit's score */
    MDB_cursor *docs;     /* on search_docs, for phrase checks */
    int bars;             /* words, no preferences, no cursor, not similar: bars apply */
    int bar_term;         /* the term the bars are for: the one with the highest idf */
    double bar[2];        /* see ranking_bars */
    int bars_stale;       /* the page changed since the bars were computed */
    int complement;       /* some counts are the totals minus what is not counted */
    int complement_group; /* complement: the filter group whose counts those are; -1: all counts */
    int descending;       /* candidates come in falling docno order (browsing) */
    uint32_t unsettled;   /* complement: where the documents not yet counted or taken away begin
                           * (rising order) or end (falling order) */
} run_state;

/* Counting by complement. A query without filters counts every value of every document its words
 * match; when they match most documents, fewer documents are left out than counted, so its counts
 * start as the totals of all live documents and each live document the words do not match is
 * taken away. Matches come in docno order, so the documents between two matches are the ones
 * taken away. With one filter group, that group's own counts leave out its filter: they too count
 * every matching document, and are found the same way; the other counts, of the documents that
 * pass, are counted as usual. Returns whether to, and in *group the group (-1: every count). */
static int count_by_complement(const ov_search *s, const parsed *p, const filter_set *f,
                               int similar, int *group)
{
    if (f->groups > 1 || similar)
        return 0;
    *group = f->groups ? 0 : -1;
    double matches = s->live; /* expected, were the words independent of one another */
    for (int i = 0; i < p->count && s->live; i++)
        matches *= (double)p->terms[i].list.n / s->live;
    return matches * 2 > s->live;
}

/* Whether a facet's counts come from the totals when group's do (-1: every facet's). */
static int in_group(const filter_set *f, int group, int facet)
{
    return group < 0 || f->group_of[facet] == group;
}

static void counts_from_totals(ov_search *s, const filter_set *f, int group, extra_counts *extra)
{
    for (int facet = 0; facet < OV_SEARCH_FACETS_MAX; facet++) {
        uint32_t n = s->counts_cap[facet] < s->totals_cap[facet] ? s->counts_cap[facet]
                                                                 : s->totals_cap[facet];
        if (n && in_group(f, group, facet))
            memcpy(s->counts[facet], s->totals[facet], n * sizeof *s->counts[facet]);
    }
    if (group >= 0 && group != f->bouwsteen_group)
        return;
    int from = f->bouwsteen_min > 0 ? f->bouwsteen_min : 0;
    for (int b = 0; b < OV_BOUWSTENEN; b++)
        for (int score = from; score < 256; score++)
            extra->bouwsteen[b] += s->score_docs[b][score];
}

/* Takes away what count_values(…, group, …) counts for c. */
static void uncount_values(ov_search *s, const filter_set *f, const column *c, int group,
                           extra_counts *extra)
{
    const uint32_t *v = s->pool + c->values_at;
    if (group < 0) {
        for (uint16_t i = 0; i < c->value_count; i++)
            s->counts[v[i] >> 24][v[i] & 0xFFFFFF]--;
    } else {
        for (uint16_t i = 0; i < c->value_count; i++)
            if (f->group_of[v[i] >> 24] == group)
                s->counts[v[i] >> 24][v[i] & 0xFFFFFF]--;
    }
    if (group < 0 || group == f->bouwsteen_group)
        extra->by_blocks[blocks_counted(c, f->bouwsteen_min)]--;
}

/* Counts what count_values(…, -1, …) counts for c outside group. */
static void count_values_outside(ov_search *s, const filter_set *f, const column *c, int group,
                                 extra_counts *extra)
{
    const uint32_t *v = s->pool + c->values_at;
    for (uint16_t i = 0; i < c->value_count; i++)
        if (f->group_of[v[i] >> 24] != group)
            s->counts[v[i] >> 24][v[i] & 0xFFFFFF]++;
    if (group != f->bouwsteen_group)
        extra->by_blocks[blocks_counted(c, f->bouwsteen_min)]++;
}

/* Complement: takes away the live documents from..to (not matched: between two matches). */
static void uncount_range(run_state *r, uint32_t from, uint32_t to)
{
    ov_search *s = r->s;
    for (uint32_t d = from; d < to; d++)
        if (s->docs[d].kind != KIND_ABSENT)
            uncount_values(s, r->f, &s->docs[d], r->complement_group, r->extra);
}

/* Complement: a matching document's counts, the group's being in the totals already. */
static void count_match_by_complement(run_state *r, uint32_t docno, const column *c,
                                      uint32_t failed)
{
    if (r->descending) {
        if (docno + 1 < r->unsettled)
            uncount_range(r, docno + 1, r->unsettled);
        r->unsettled = docno;
    } else {
        if (docno > r->unsettled)
            uncount_range(r, r->unsettled, docno);
        r->unsettled = docno + 1;
    }
    if (!failed && r->complement_group >= 0)
        count_values_outside(r->s, r->f, c, r->complement_group, r->extra);
}

/* BM25F: a term's counts per field class, each normalised by the field's length against its
 * average and weighted, then saturated once. Titles are short, so one title hit counts for more
 * than several in a long body. */
static double term_weight(const column *c, const uint8_t *entry)
{
    return class_weight[0] * entry[4] * c->inv_norm[0] +
           class_weight[1] * entry[5] * c->inv_norm[1] +
           class_weight[2] * (entry[6] << 8 | entry[7]) * c->inv_norm[2];
}

static double term_score(const column *c, double idf, const uint8_t *entry)
{
    double weighted = term_weight(c, entry);
    return idf * weighted * (BM25_K1 + 1) / (weighted + BM25_K1);
}

/* A term's part of a score, idf · w · (k1 + 1) / (w + k1), stays below idf · (k1 + 1), and it rises
 * with the term's weighted count w alone. So once the page is full, a hit can only enter if the
 * bar term's w reaches the w at which that term, with every other term at its most, would equal
 * the worst kept hit: one comparison rejects most hits before any other term is weighed or any
 * division is made. With one term the bar is exact. bar[g] is that w for non-generated (0) and
 * generated (1) documents, recomputed when the page changes. */
static void ranking_bars(run_state *r)
{
    const parsed *p = r->p;
    double others = 0; /* the most the other terms can add */
    for (int i = 0; i < p->count; i++)
        if (i != r->bar_term)
            others += p->terms[i].idf * (BM25_K1 + 1);
    double idf = p->terms[r->bar_term].idf;
    for (int g = 0; g < 2; g++) {
        double needed = r->top->items[0].score / (g ? GENERATED_SCALE : 1) - others * (1 + 1e-9);
        double x = needed / (idf * (BM25_K1 + 1));
        /* w / (w + k1) > x  ⇔  w > k1·x / (1 − x); a little below, so ties are scored exactly */
        r->bar[g] = x >= 1 ? INFINITY : BM25_K1 * x / (1 - x) * (1 - 1e-9);
    }
    r->bars_stale = 0;
}

/* Ranks a hit when ranking_bars apply; the score is summed as rank_hit sums it. */
static void rank_below_bars(run_state *r, uint32_t docno, const column *c,
                            const uint8_t *const *entry)
{
    r->beyond++;
    double w = term_weight(c, entry[r->bar_term]);
    int generated = (c->flags & OV_SEARCH_DOC_GENERATED) != 0;
    if (r->top->count == r->top->cap) {
        if (r->bars_stale)
            ranking_bars(r);
        if (w < r->bar[generated])
            return; /* cannot enter the page */
    }
    hit h = {0, docno};
    const parsed *p = r->p;
    for (int i = 0; i < p->count; i++)
        h.score += i == r->bar_term ? p->terms[i].idf * w * (BM25_K1 + 1) / (w + BM25_K1)
                                    : term_score(c, p->terms[i].idf, entry[i]);
    if (generated)
        h.score *= GENERATED_SCALE;
    if (top_push(r->top, h))
        r->bars_stale = 1;
}

/* One candidate document: filters, phrases, facet counts, rank. entry[i]: term i's posting for
 * the document (NULL: absent). */
static void consider(run_state *r, uint32_t docno, const uint8_t *const *entry)
{
    ov_search *s = r->s;
    if (docno >= s->doc_slots)
        return;
    const column *c = &s->docs[docno];
    if (c->kind == KIND_ABSENT)
        return;
    if (r->q->exclude && !memcmp(s->cold[docno].id.bytes, r->q->exclude->bytes, OV_ID_BYTES))
        return;
    uint32_t failed = filters_failed(s, r->f, c);
    if (failed & (failed - 1))
        return; /* two or more groups failed: counts for none */
    if (r->p->phrase_count && !phrases_match(r->docs, r->p, docno, entry))
        return;
    if (r->complement)
        count_match_by_complement(r, docno, c, failed);
    else
        count_values(s, r->f, c, failed ? __builtin_ctz(failed) : -1, r->extra);
    if (failed)
        return;
    r->total++;
    if (r->bars) {
        rank_below_bars(r, docno, c, entry);
        return;
    }
    hit h = {0, docno};
    if (r->p->count == 0) {
        h.score = (double)s->cold[docno].updated_ms; /* browsing: newest first */
    } else {
        for (int i = 0; i < r->p->count; i++)
            if (entry[i])
                h.score += term_score(c, r->p->terms[i].idf, entry[i]);
        if (r->prefer[0] != UINT32_MAX || r->prefer[1] != UINT32_MAX) {
            const uint32_t *v = s->pool + c->values_at;
            for (uint16_t i = 0; i < c->value_count; i++)
                if (v[i] == r->prefer[0] || v[i] == r->prefer[1])
                    h.score *= PREFER_BOOST;
        }
        if (c->flags & OV_SEARCH_DOC_GENERATED)
            h.score *= GENERATED_SCALE;
    }
    if (r->after && !hit_before(r->after, &h))
        return;
    r->beyond++;
    top_push(r->top, h);
}

/* All terms required: walk the shortest list, gallop the others. */
static void match_all(run_state *r, qterm *terms, int count)
{
    int driver = 0;
    for (int i = 1; i < count; i++)
        if (terms[i].list.n < terms[driver].list.n)
            driver = i;
    const uint8_t *entry[QTERMS_MAX];
    for (size_t k = 0; k < terms[driver].list.n; k++) {
        uint32_t docno = p_docno(&terms[driver].list, k);
        int ok = 1;
        for (int i = 0; i < count && ok; i++) {
            qterm *t = &terms[i];
            if (i == driver) {
                entry[i] = p_entry(&t->list, k);
                continue;
            }
            size_t step = 1;
            while (t->at + step < t->list.n && p_docno(&t->list, t->at + step) < docno) {
                t->at += step;
                step *= 2;
            }
            while (t->at < t->list.n && p_docno(&t->list, t->at) < docno)
                t->at++;
            ok = t->at < t->list.n && p_docno(&t->list, t->at) == docno;
            if (ok)
                entry[i] = p_entry(&t->list, t->at);
        }
        if (ok)
            consider(r, docno, entry);
    }
}

/* No words: every document, newest first. Numbers are given in indexing order, so the highest
 * come first and the page of the newest fills early; afterwards most documents are older than
 * its oldest and cost one comparison, where in rising order nearly each would enter the page.
 * The page does not depend on the order: hits are ordered by score, then docno. */
static void browse_newest_first(run_state *r)
{
    r->descending = 1;
    r->unsettled = r->s->doc_slots;
    for (uint32_t d = r->s->doc_slots; d-- > 0;)
        consider(r, d, NULL);
}

/* Any term may match (similar-search): a merge over all lists. */
static void match_any(run_state *r, qterm *terms, int count)
{
    const uint8_t *entry[QTERMS_MAX];
    for (;;) {
        uint32_t docno = UINT32_MAX;
        for (int i = 0; i < count; i++)
            if (terms[i].at < terms[i].list.n && p_docno(&terms[i].list, terms[i].at) < docno)
                docno = p_docno(&terms[i].list, terms[i].at);
        if (docno == UINT32_MAX)
            return;
        for (int i = 0; i < count; i++) {
            entry[i] = NULL;
            if (terms[i].at < terms[i].list.n && p_docno(&terms[i].list, terms[i].at) == docno)
                entry[i] = p_entry(&terms[i].list, terms[i].at++);
        }
        consider(r, docno, entry);
    }
}

static void append_query(const ov_search_query *q, const parsed *p, ov_buf *out)
{
    ov_buf_append_str(out, "\"query\":{\"q\":");
    if (q->q)
        ov_buf_append_json_string(out, q->q, q->q_len);
    else
        ov_buf_append_str(out, "null");
    ov_buf_append_str(out, ",\"terms\":[");
    for (int i = 0, written = 0; i < p->count; i++) {
        if (p->terms[i].pair)
            continue;
        if (written++)
            ov_buf_append_str(out, ",");
        ov_buf_append_json_string(out, p->terms[i].term, p->terms[i].len);
    }
    ov_buf_append_str(out, "],\"prefix\":");
    const char *prefix = NULL;
    for (int i = 0; i < p->count; i++)
        if (p->terms[i].prefix[0])
            prefix = p->terms[i].prefix;
    if (prefix)
        ov_buf_append_json_string(out, prefix, strlen(prefix));
    else
        ov_buf_append_str(out, "null");
    ov_buf_printf(out, ",\"phrases\":%d,\"ignored_words\":%d}", p->phrase_count, p->ignored);
}

int ov_search_run(ov_search *s, ov_read *read, const ov_search_query *q, ov_buf *out, char *detail,
                  size_t detail_size)
{
    double started = now_ms();
    detail[0] = 0;
    if (q->q && q->q_len > OV_SEARCH_Q_MAX) {
        snprintf(detail, detail_size, "q is at most %d bytes; this one has %zu", OV_SEARCH_Q_MAX,
                 q->q_len);
        return OV_EINVAL;
    }
    if (q->similar && q->similar_len > OV_SEARCH_SIMILAR_MAX) {
        snprintf(detail, detail_size, "the text is at most %d bytes", OV_SEARCH_SIMILAR_MAX);
        return OV_EINVAL;
    }
    if ((q->q && !valid_utf8(q->q, q->q_len)) ||
        (q->similar && !valid_utf8(q->similar, q->similar_len))) {
        snprintf(detail, detail_size, "q is not valid UTF-8 text");
        return OV_EINVAL;
    }
    if (q->limit < 1 || q->limit > OV_SEARCH_LIMIT_MAX) {
        snprintf(detail, detail_size, "limit is 1 to %d", OV_SEARCH_LIMIT_MAX);
        return OV_EINVAL;
    }
    hit after;
    if (q->cursor && parse_cursor(q->cursor, &after)) {
        snprintf(detail, detail_size, "cursor is not one this node gave out (use \"next\")");
        return OV_EINVAL;
    }
    int rc = sync_columns(s, read);
    if (rc)
        return rc;
    MDB_txn *txn = ov_read_txn(read);
    parsed *p = malloc(sizeof *p);
    if (!p)
        return OV_ENOMEM;
    if (q->similar)
        rc = parse_similar(s, txn, q->similar, q->similar_len, p);
    else
        rc = parse_query(s, q->q ? q->q : "", q->q ? q->q_len : 0, p);
    if (rc == OV_EINVAL)
        snprintf(detail, detail_size, "q is not valid UTF-8 text");
    if (rc) {
        free(p);
        return rc;
    }

    filter_set f;
    memset(&f, 0, sizeof f);
    extra_counts extra;
    top_hits top = {calloc((size_t)q->limit, sizeof(hit)), 0, q->limit};
    rc = top.items ? filters_build(s, txn, q, &f) : OV_ENOMEM;
    if (!rc)
        rc = counts_reset(s, &extra);
    run_state r = {.s = s,
                   .txn = txn,
                   .q = q,
                   .p = p,
                   .f = &f,
                   .extra = &extra,
                   .top = &top,
                   .after = q->cursor ? &after : NULL};
    if (q->prefer_sector)
        r.prefer[0] =
            ov_search_value_id(s->index, txn, ov_search_facet_number("sector"), q->prefer_sector);
    if (q->prefer_region)
        r.prefer[1] =
            ov_search_value_id(s->index, txn, ov_search_facet_number("region"), q->prefer_region);
    if (!r.prefer[0])
        r.prefer[0] = UINT32_MAX; /* never a value id: facet numbers stay below 32 */
    if (!r.prefer[1])
        r.prefer[1] = UINT32_MAX;
    update_norms(s);

    MDB_cursor *cursor = NULL;
    if (!rc && p->count && mdb_cursor_open(txn, ov_search_index_postings(s->index), &cursor))
        rc = OV_ESTORE;
    for (int i = 0; !rc && i < p->count; i++) {
        rc = fetch_term(s, cursor, &p->terms[i]);
        double df = (double)p->terms[i].list.n;
        p->terms[i].idf = log(1 + (s->live - df + 0.5) / (df + 0.5));
        if (p->terms[i].idf < 0.01)
            p->terms[i].idf = 0.01;
    }
    if (cursor)
        mdb_cursor_close(cursor);
    if (!rc && p->phrase_count && mdb_cursor_open(txn, ov_search_index_docs(s->index), &r.docs))
        rc = OV_ESTORE;
    r.bars = p->count > 0 && !q->similar && !r.after && r.prefer[0] == UINT32_MAX &&
             r.prefer[1] == UINT32_MAX;
    for (int i = 1; i < p->count; i++)
        if (p->terms[i].idf > p->terms[r.bar_term].idf)
            r.bar_term = i;
    r.bars_stale = 1;
    r.complement = !rc && count_by_complement(s, p, &f, q->similar != NULL, &r.complement_group);
    if (r.complement)
        counts_from_totals(s, &f, r.complement_group, &extra);
    if (!rc) {
        if (q->similar) {
            /* A text with no word the index knows is like nothing (not like everything). */
            match_any(&r, p->terms, p->count);
        } else if (p->count == 0) {
            browse_newest_first(&r);
        } else {
            match_all(&r, p->terms, p->count);
        }
        if (r.complement && r.descending)
            uncount_range(&r, 0, r.unsettled);
        else if (r.complement)
            uncount_range(&r, r.unsettled, s->doc_slots);
    }

    if (!rc) {
        qsort(top.items, (size_t)top.count, sizeof *top.items, compare_hits);
        ov_buf_append_str(out, "{");
        append_query(q, p, out);
        ov_buf_printf(out, ",\"total\":%llu,\"hits\":[", (unsigned long long)r.total);
        for (int i = 0; i < top.count; i++) {
            if (i)
                ov_buf_append_str(out, ",");
            append_hit(s, read, p, &top.items[i], out);
        }
        ov_buf_append_str(out, "],");
        blocks_expand(&extra);
        append_facets(s, read, &extra, out);
        if (r.beyond > (uint64_t)q->limit) {
            char next[32];
            format_cursor(&top.items[top.count - 1], next);
            ov_buf_printf(out, ",\"next\":\"%s\"", next);
        } else {
            ov_buf_append_str(out, ",\"next\":null");
        }
        ov_buf_printf(out, ",\"took_ms\":%.3f}", now_ms() - started);
        if (out->failed)
            rc = OV_ENOMEM;
    }
    for (int i = 0; i < p->count; i++)
        free(p->terms[i].list.data);
    free(p);
    if (r.docs)
        mdb_cursor_close(r.docs);
    filters_free(&f);
    free(top.items);
    return rc;
}
