/*
 * Offline search over the replica, with the node's Dutch analysis (proto/text.h), so a word
 * finds the same records here as on the node: every query word must occur (AND), the last word
 * also as a prefix while it is being typed, "quoted words" as a phrase; ranked by BM25 over the
 * fields, titles weighing three times and summaries twice.
 *
 * The replica keeps no index: a search analyses the records it holds. A brigadier's replica is
 * a region (hundreds to a few thousand records), where that takes milliseconds; on a national
 * replica of 100,000 cases it is a few seconds (docs/benchmarks.md).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/queue.h"
#include "proto/buf.h"
#include "proto/canon.h"
#include "proto/error.h"
#include "proto/text.h"

#define QUERY_TERMS_MAX 32
#define QUERY_BYTES_MAX 512
#define BM25_K1         1.2
#define BM25_B          0.75

/* BM25F: each class of field has its own weight and its own length normalisation, so a long body
 * does not drown a match in the title. */
enum { FIELD_TITLE, FIELD_SUMMARY, FIELD_BODY, FIELD_CLASSES };
static const double field_weight[FIELD_CLASSES] = {3.0, 2.0, 1.0};

typedef struct {
    char text[OV_TEXT_TERM_MAX + 1];
    size_t len;
    int prefix; /* also matches any term starting with prefix_text */
    char prefix_text[OV_TEXT_TERM_MAX + 1];
    size_t prefix_len;
    int phrase;          /* phrase number (0: a lone word) */
    uint32_t phrase_pos; /* position within its phrase */
} query_term;

typedef struct {
    query_term terms[QUERY_TERMS_MAX];
    int count;
    int phrases;
} query;

typedef struct {
    query *q;
    int phrase;
    uint32_t base;
    int prefix_last;
} parse_ctx;

static int add_query_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    parse_ctx *p = ctx;
    query *q = p->q;
    if (q->count >= QUERY_TERMS_MAX)
        return 1;
    query_term *t = &q->terms[q->count++];
    memcpy(t->text, term, len + 1);
    t->len = len;
    t->phrase = p->phrase;
    t->phrase_pos = position;
    return 0;
}

/* Splits the query into quoted phrases and loose words and analyses each part. */
static int parse_query(ov_text *text, const char *s, query *q)
{
    memset(q, 0, sizeof *q);
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        int quoted = s[i] == '"';
        size_t start = quoted ? i + 1 : i;
        size_t end = start;
        while (end < n && s[end] != '"')
            end++;
        parse_ctx p = {q, quoted ? ++q->phrases : 0, 0, 0};
        int before = q->count;
        if (ov_text_analyse(text, s + start, end - start, add_query_term, &p) == OV_EINVAL)
            return OV_EINVAL;
        if (!quoted)
            for (int t = before; t < q->count; t++)
                q->terms[t].phrase = 0;
        i = end + (end < n ? 1 : 0);
    }
    /* Search as you type: the last word, unless finished by a space or a closing quote, is also a
     * prefix of longer words ("samenw" → "samenwerking"). */
    if (n && s[n - 1] != ' ' && s[n - 1] != '"') {
        size_t w = n;
        while (w > 0 && s[w - 1] != ' ' && s[w - 1] != '"')
            w--;
        char folded[OV_TEXT_TERM_MAX + 1];
        int len = ov_text_fold_word(s + w, n - w, folded);
        query_term *t = NULL;
        if (len > 1 && q->count > 0 && q->terms[q->count - 1].phrase == 0) {
            t = &q->terms[q->count - 1]; /* the word as typed so far, and its stem */
        } else if (len > 1 && q->count < QUERY_TERMS_MAX &&
                   !ov_text_is_stopword(folded, (size_t)len)) {
            t = &q->terms[q->count++]; /* a stopword as typed may be the start of a word */
            memcpy(t->text, folded, (size_t)len + 1);
            t->len = (size_t)len;
        }
        if (t) {
            memcpy(t->prefix_text, folded, (size_t)len + 1);
            t->prefix_len = (size_t)len;
            t->prefix = 1;
        }
    }
    return OV_OK;
}

static int term_matches(const query_term *t, const char *term, size_t len)
{
    if (len == t->len && memcmp(term, t->text, len) == 0)
        return 1;
    return t->prefix && len >= t->prefix_len && memcmp(term, t->prefix_text, t->prefix_len) == 0;
}

/* ---- Scoring one record ------------------------------------------------------------------ */

typedef struct {
    const query *q;
    double tf[QUERY_TERMS_MAX]; /* any field: decides whether the record matches */
    double tf_class[QUERY_TERMS_MAX][FIELD_CLASSES];
    uint32_t length[FIELD_CLASSES]; /* terms per class of field */
    int field_class;
    /* phrase tracking: for each term, the positions it was last seen at in this field */
    uint32_t last_pos[QUERY_TERMS_MAX];
    int seen_in_field[QUERY_TERMS_MAX];
    int phrase_ok[QUERY_TERMS_MAX + 1];
    const char *field;
    const char *best_field_text;
    size_t best_field_len;
    double best_field_weight;
} doc_score;

static int score_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    doc_score *d = ctx;
    d->length[d->field_class]++;
    for (int i = 0; i < d->q->count; i++) {
        const query_term *t = &d->q->terms[i];
        if (!term_matches(t, term, len))
            continue;
        d->tf[i] += 1;
        d->tf_class[i][d->field_class] += 1;
        if (t->phrase) {
            /* A phrase holds when its first word is followed, at the same distances, by the
             * others within one field. */
            if (t->phrase_pos == 0 ||
                (i > 0 && d->seen_in_field[i - 1] && d->q->terms[i - 1].phrase == t->phrase &&
                 position - d->last_pos[i - 1] == t->phrase_pos - d->q->terms[i - 1].phrase_pos)) {
                d->seen_in_field[i] = 1;
                d->last_pos[i] = position;
                int last_of_phrase = i + 1 == d->q->count || d->q->terms[i + 1].phrase != t->phrase;
                if (last_of_phrase)
                    d->phrase_ok[t->phrase] = 1;
            }
        }
    }
    return 0;
}

typedef struct {
    doc_score *d;
    ov_text *text;
    ov_kind kind;
} field_walk;

static int score_field(void *ctx, const char *field, const char *value, size_t len)
{
    field_walk *w = ctx;
    doc_score *d = w->d;
    const char *title = ov_record_title_field(w->kind);
    d->field_class = strcmp(field, title) == 0                                      ? FIELD_TITLE
                     : strcmp(field, "summary") == 0 || strcmp(field, "notes") == 0 ? FIELD_SUMMARY
                                                                                    : FIELD_BODY;
    memset(d->seen_in_field, 0, sizeof d->seen_in_field);
    double before = 0;
    for (int i = 0; i < d->q->count; i++)
        before += d->tf[i];
    ov_text_analyse(w->text, value, len, score_term, d);
    double after = 0;
    for (int i = 0; i < d->q->count; i++)
        after += d->tf[i];
    /* The snippet comes from the field with the most weight of matches, titles aside. */
    double gained = after - before;
    if (gained > d->best_field_weight && strcmp(field, title) != 0) {
        d->best_field_weight = gained;
        d->best_field_text = value;
        d->best_field_len = len;
    }
    return 0;
}

/* ---- Snippets ---------------------------------------------------------------------------- */

typedef struct {
    const query *q;
    size_t first_start, first_end;
    int found;
    size_t marks[16][2];
    int mark_count;
} snippet_walk;

static int snippet_span(void *ctx, const char *term, size_t len, uint32_t position, size_t start,
                        size_t end)
{
    snippet_walk *w = ctx;
    for (int i = 0; i < w->q->count; i++) {
        if (!term_matches(&w->q->terms[i], term, len))
            continue;
        if (!w->found) {
            w->found = 1;
            w->first_start = start;
            w->first_end = end;
        }
        if (w->mark_count < 16 && start >= w->first_start && start < w->first_start + 160) {
            w->marks[w->mark_count][0] = start;
            w->marks[w->mark_count][1] = end;
            w->mark_count++;
        }
        break;
    }
    return w->mark_count >= 16;
}

/* A piece of text around the first match, matches between « and ». */
static char *make_snippet(ov_text *text, const query *q, const char *value, size_t len)
{
    snippet_walk w = {q, 0, 0, 0, {{0}}, 0};
    ov_text_analyse_spans(text, value, len, snippet_span, &w);
    size_t from = w.found && w.first_start > 60 ? w.first_start - 60 : 0;
    while (from > 0 && value[from - 1] != ' ')
        from--; /* start at a word */
    size_t to = from + 200 < len ? from + 200 : len;
    while (to < len && value[to] != ' ' && to - from < 240)
        to++;
    while (to > from && to < len && ((unsigned char)value[to] & 0xC0) == 0x80)
        to--;
    ov_buf out;
    ov_buf_init(&out, 2048);
    if (from > 0)
        ov_buf_append_str(&out, "…");
    size_t at = from;
    for (int m = 0; m < w.mark_count; m++) {
        if (w.marks[m][0] < at || w.marks[m][1] > to)
            continue;
        ov_buf_append(&out, value + at, w.marks[m][0] - at);
        ov_buf_append_str(&out, "«");
        ov_buf_append(&out, value + w.marks[m][0], w.marks[m][1] - w.marks[m][0]);
        ov_buf_append_str(&out, "»");
        at = w.marks[m][1];
    }
    ov_buf_append(&out, value + at, to - at);
    if (to < len)
        ov_buf_append_str(&out, "…");
    /* Line breaks become spaces: a snippet is one line. */
    for (size_t i = 0; i < out.len; i++)
        if (out.data[i] == '\n' || out.data[i] == '\r' || out.data[i] == '\t')
            out.data[i] = ' ';
    char *s = out.failed ? NULL : strdup(out.data ? out.data : "");
    ov_buf_free(&out);
    return s;
}

/* ---- The search -------------------------------------------------------------------------- */

typedef struct {
    ov_id id;
    int local;
    double tf_class[QUERY_TERMS_MAX][FIELD_CLASSES];
    uint32_t length[FIELD_CLASSES];
    char *snippet;
    double score;
} candidate;

typedef struct {
    candidate *items;
    size_t count, cap;
    uint64_t docs;
    double total_length[FIELD_CLASSES];
    uint64_t df[QUERY_TERMS_MAX];
} results;

static int by_score(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return ov_id_compare(&y->id, &x->id);
}

static int scan(olievlek_replica *r, MDB_txn *txn, MDB_dbi dbi, int local, int want_kind,
                ov_kind kind, ov_text *text, const query *q, results *res)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, dbi, &cur) != 0)
        return OLIEVLEK_ESTORE;
    int rc = OLIEVLEK_OK;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        olv_row row;
        if (k.mv_size != OV_ID_BYTES || olv_row_decode(&v, &row) != OLIEVLEK_OK ||
            row.status == OV_STATUS_DELETED || (want_kind && row.kind != kind))
            continue;
        MDB_val lv;
        if (!local && mdb_get(txn, r->local, &k, &lv) == 0)
            continue; /* searched in its local version */
        json_t *record = json_loadb(row.json, row.json_len, 0, NULL);
        if (!record)
            continue;
        doc_score d = {.q = q};
        field_walk w = {&d, text, row.kind};
        ov_record_texts(row.kind, record, score_field, &w);
        res->docs++;
        for (int f = 0; f < FIELD_CLASSES; f++)
            res->total_length[f] += d.length[f];
        int all = 1;
        for (int i = 0; i < q->count; i++) {
            if (d.tf[i] > 0)
                res->df[i]++;
            else
                all = 0;
        }
        for (int p = 1; p <= q->phrases; p++)
            if (!d.phrase_ok[p])
                all = 0;
        if (all && q->count > 0) {
            if (res->count == res->cap) {
                size_t cap = res->cap ? res->cap * 2 : 64;
                candidate *grown = realloc(res->items, cap * sizeof *grown);
                if (!grown) {
                    json_decref(record);
                    rc = OLIEVLEK_ENOMEM;
                    break;
                }
                res->items = grown;
                res->cap = cap;
            }
            candidate *c = &res->items[res->count++];
            memset(c, 0, sizeof *c);
            memcpy(c->id.bytes, k.mv_data, OV_ID_BYTES);
            c->local = local;
            memcpy(c->tf_class, d.tf_class, sizeof c->tf_class);
            memcpy(c->length, d.length, sizeof c->length);
            const char *title = ov_record_display_title(row.kind, record);
            c->snippet = d.best_field_text
                             ? make_snippet(text, q, d.best_field_text, d.best_field_len)
                             : make_snippet(text, q, title, strlen(title));
        }
        json_decref(record);
    }
    mdb_cursor_close(cur);
    return rc;
}

typedef struct {
    olievlek_hit_fn fn;
    void *ctx;
    candidate *c;
} hit_ctx;

static int deliver_hit(void *ctx, const olievlek_record *record)
{
    hit_ctx *h = ctx;
    olievlek_hit hit = {record, h->c->score, h->c->snippet ? h->c->snippet : ""};
    return h->fn(h->ctx, &hit);
}

int olievlek_search(olievlek_replica *replica, const char *query_text, const char *kind_name,
                    unsigned limit, olievlek_hit_fn fn, void *ctx)
{
    if (!query_text || strlen(query_text) > QUERY_BYTES_MAX)
        return olv_fail(replica, OLIEVLEK_EINVAL, "a search is at most %d bytes", QUERY_BYTES_MAX);
    if (limit == 0 || limit > 1000)
        limit = limit ? 1000 : 20;
    ov_kind kind = OV_KIND_REGION;
    if (kind_name && ov_kind_parse(kind_name, strlen(kind_name), &kind) != OV_OK)
        return olv_fail(replica, OLIEVLEK_EINVAL, "unknown kind '%s'", kind_name);
    ov_text *text;
    if (ov_text_new(&text) != OV_OK)
        return OLIEVLEK_ENOMEM;
    query q;
    if (parse_query(text, query_text, &q) != OV_OK) {
        ov_text_free(text);
        return olv_fail(replica, OLIEVLEK_EINVAL, "the search is not valid UTF-8");
    }
    if (q.count == 0) {
        ov_text_free(text);
        return OLIEVLEK_OK; /* only stopwords: nothing to look for */
    }
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc) {
        ov_text_free(text);
        return rc;
    }
    results res = {0};
    rc = scan(replica, txn, replica->local, 1, kind_name != NULL, kind, text, &q, &res);
    if (!rc)
        rc = scan(replica, txn, replica->records, 0, kind_name != NULL, kind, text, &q, &res);
    double avg[FIELD_CLASSES];
    for (int f = 0; f < FIELD_CLASSES; f++)
        avg[f] = res.docs && res.total_length[f] > 0 ? res.total_length[f] / (double)res.docs : 1;
    for (size_t i = 0; i < res.count; i++) {
        candidate *c = &res.items[i];
        double score = 0;
        for (int t = 0; t < q.count; t++) {
            double df = (double)res.df[t];
            double idf = log(1.0 + ((double)res.docs - df + 0.5) / (df + 0.5));
            double tf = 0;
            for (int f = 0; f < FIELD_CLASSES; f++)
                tf += field_weight[f] * c->tf_class[t][f] /
                      (1 - BM25_B + BM25_B * (double)c->length[f] / avg[f]);
            score += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1);
        }
        c->score = score;
    }
    qsort(res.items, res.count, sizeof *res.items, by_score);
    /* Hits go out through olievlek_get, which shows each with its local edits. */
    mdb_txn_abort(txn);
    for (size_t i = 0; !rc && i < res.count && i < limit; i++) {
        char id[OV_ID_CHARS + 1];
        ov_id_format(&res.items[i].id, id);
        hit_ctx h = {fn, ctx, &res.items[i]};
        rc = olievlek_get(replica, id, deliver_hit, &h);
        if (rc == OLIEVLEK_ENOTFOUND)
            rc = OLIEVLEK_OK;
    }
    for (size_t i = 0; i < res.count; i++)
        free(res.items[i].snippet);
    free(res.items);
    ov_text_free(text);
    return rc > 0 ? OLIEVLEK_OK : rc;
}
