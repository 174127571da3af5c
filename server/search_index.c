/*
 * The search index's storage (see search_index.h). Updates are diffs: a new version of a record
 * touches only the postings of terms whose counts changed, so publishing or re-tagging a case
 * costs a few LMDB writes, not one per word.
 */
#include "server/search_index.h"

#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/error.h"
#include "proto/id.h"
#include "server/lmdb_error.h"

#define TERMS_MAX     16384 /* distinct terms and pairs of one record; more are not indexed */
#define POSITIONS_MAX 1024  /* positions kept per term of one record (phrases beyond: not found) */
#define TEXT_GAP      4     /* positions between two texts, so a phrase never spans them */
#define VALUES_MAX    256   /* facet values of one record */
#define SKIP_EVERY    16    /* forward-list entries per skip-table offset */
#define DOC_MAX       (16u << 20) /* bytes of one document row: far above any record's terms */
/* Keys of search_values that are not facet values (facet values start with a facet number). */
#define DOCNO_COUNTER  "\377\377docno"
#define FORMAT_KEY     "\377\377format"
#define GENERATION_KEY "\377\377generation"
#define FORMAT_VERSION 4 /* of the search databases; another means: rebuild */
#define FACET_COUNTER  0xFF

/* The analysis of one record: its terms and pairs, and the scratch that makes them, reused from
 * record to record. One thread at a time. */
struct ov_search_analyser {
    ov_text *text;
    struct term_entry *terms;
    uint32_t *slots; /* open addressing: index + 1 into terms; 0 empty */
    size_t term_count, term_cap, slot_cap;
    uint32_t position_base, last_position;
    int field_class;
    char previous[OV_TEXT_TERM_MAX + 1]; /* the text's previous term, for pairs */
    size_t previous_len;
    uint32_t previous_position;
    /* Whether analyse_record sorts the table itself (the writer's), or leaves it in the order the
     * terms came for ov_search_analyse, which sorts pointers to them (cheaper than moving them). */
    int sort_in_place;
    struct order_key *order; /* order_cap keys, then order_cap / 2 + 1 of the sort's scratch */
    size_t order_cap;
};

struct ov_search_index {
    MDB_dbi postings, docs, ids, values, names;
    ov_search_analyser an; /* the writer's */
};

struct term_entry {
    /* The first bytes of term, big-endian and zero-padded: compared as integers they order as
     * strcmp orders the terms, and most comparisons of the sort end in them (a pair key's first
     * word is in them too). Set by add_key, for the sorts; a table analysis_load fills comes
     * sorted and leaves them unset. */
    uint64_t prefix[2];
    char term[OV_SEARCH_KEY_MAX + 1];
    uint8_t len;
    uint32_t counts[OV_SEARCH_CLASSES];
    uint32_t *positions;
    uint32_t position_count, position_cap;
    uint8_t pair; /* a pair key: kept in postings, not in the forward list (derived from it) */
};

static const char *const facet_leading[] = {"kind", "origin"};

const char *ov_search_facet_name(int facet)
{
    if (facet < 0)
        return NULL;
    if (facet < OV_SEARCH_FACET_RECORD)
        return facet_leading[facet];
    return ov_record_facet_names[facet - OV_SEARCH_FACET_RECORD];
}

int ov_search_facet_number(const char *name)
{
    for (int f = 0; ov_search_facet_name(f); f++)
        if (!strcmp(name, ov_search_facet_name(f)))
            return f;
    return -1;
}

int ov_search_field_class(ov_kind kind, const char *field)
{
    /* Themes are the author's own keywords: as telling as the title. */
    if (!strcmp(field, "title") || !strcmp(field, "name") || !strcmp(field, "themes"))
        return OV_SEARCH_TITLE;
    if (!strcmp(field, "summary") || (kind == OV_KIND_REQUEST && !strcmp(field, "question")) ||
        (kind == OV_KIND_VISIT && !strcmp(field, "notes")))
        return OV_SEARCH_SUMMARY;
    return OV_SEARCH_BODY;
}

/* ---- Encoding ------------------------------------------------------------------------------- */

int ov_search_varint(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*p >= end)
            return 0;
        uint8_t b = *(*p)++;
        v |= (uint32_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static uint32_t varint_size(uint32_t v)
{
    uint32_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Appends v as a varint (7 bits a byte, low first). */
static void append_varint(ov_buf *out, uint32_t v)
{
    uint8_t bytes[5];
    size_t n = 0;
    while (v >= 0x80) {
        bytes[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    bytes[n++] = (uint8_t)v;
    ov_buf_append(out, bytes, n);
}

/* Writes v as a varint at p (room for 5 bytes); returns the byte after it. */
static uint8_t *put_varint(uint8_t *p, uint32_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

void ov_search_posting_encode(uint8_t out[OV_SEARCH_POSTING_BYTES], uint32_t docno,
                              const uint32_t counts[OV_SEARCH_CLASSES])
{
    ov_be32_put(out, docno);
    out[4] = (uint8_t)(counts[0] > 255 ? 255 : counts[0]);
    out[5] = (uint8_t)(counts[1] > 255 ? 255 : counts[1]);
    ov_be16_put(out + 6, counts[2] > 65535 ? 65535 : counts[2]);
}

int ov_search_doc_decode(const void *data, size_t len, ov_search_doc *doc)
{
    const uint8_t *p = data;
    if (len < OV_SEARCH_DOC_HEADER)
        return OV_ESTORE;
    memcpy(doc->id.bytes, p, OV_ID_BYTES);
    doc->kind = p[16];
    doc->flags = p[17];
    if ((unsigned)doc->kind >= OV_KIND_COUNT)
        return OV_ESTORE;
    memcpy(doc->scores, p + 18, OV_BOUWSTENEN);
    for (int c = 0; c < OV_SEARCH_CLASSES; c++)
        doc->length[c] = (uint16_t)(p[26 + 2 * c] << 8 | p[27 + 2 * c]);
    doc->updated_ms = (int64_t)ov_be64_get(p + 32);
    doc->value_count = (uint16_t)(p[40] << 8 | p[41]);
    size_t values_end = OV_SEARCH_DOC_HEADER + 4 * (size_t)doc->value_count;
    if (values_end > len)
        return OV_ESTORE;
    doc->values = p + OV_SEARCH_DOC_HEADER;
    /* The forward list opens with its skip table: the count, then that many u32 offsets of every
     * SKIP_EVERY-th entry, counted from the first entry. */
    const uint8_t *at = p + values_end, *end = p + len;
    uint32_t skips;
    if (!ov_search_varint(&at, end, &skips) || skips > (size_t)(end - at) / 4)
        return OV_ESTORE;
    doc->skips = at;
    doc->skip_count = skips;
    doc->terms = at + 4 * (size_t)skips;
    doc->terms_len = (size_t)(end - doc->terms);
    return OV_OK;
}

/* Walks entries from p; stops after max entries (0: all). */
static int walk_entries(const uint8_t *p, const uint8_t *end, size_t max, ov_search_term_fn fn,
                        void *ctx)
{
    for (size_t walked = 0; p < end && (!max || walked < max); walked++) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        if (!nul || nul == p || nul - p > OV_SEARCH_KEY_MAX)
            return OV_ESTORE;
        const char *term = (const char *)p;
        size_t term_len = (size_t)(nul - p);
        p = nul + 1;
        uint32_t counts[OV_SEARCH_CLASSES], n, bytes;
        for (int c = 0; c < OV_SEARCH_CLASSES; c++)
            if (!ov_search_varint(&p, end, &counts[c]))
                return OV_ESTORE;
        if (!ov_search_varint(&p, end, &n) || !ov_search_varint(&p, end, &bytes) ||
            bytes > (size_t)(end - p))
            return OV_ESTORE;
        int rc = fn(ctx, term, term_len, counts, p, bytes, n);
        if (rc)
            return rc;
        p += bytes;
    }
    return OV_OK;
}

int ov_search_doc_terms(const ov_search_doc *doc, ov_search_term_fn fn, void *ctx)
{
    return walk_entries(doc->terms, doc->terms + doc->terms_len, 0, fn, ctx);
}

typedef struct {
    const char *term;
    size_t len;
    ov_search_term_fn fn;
    void *ctx;
    int found;
} find_walk;

static int find_entry(void *ctx, const char *term, size_t term_len,
                      const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                      size_t positions_len, uint32_t position_count)
{
    find_walk *f = ctx;
    size_t n = term_len < f->len ? term_len : f->len;
    int cmp = memcmp(term, f->term, n);
    if (cmp > 0 || (cmp == 0 && term_len > f->len))
        return 1; /* past it: the list is sorted */
    if (cmp == 0 && term_len == f->len) {
        f->found = 1;
        int rc = f->fn(f->ctx, term, term_len, counts, positions, positions_len, position_count);
        return rc ? rc : 1;
    }
    return 0;
}

/* Compares the entry term at offset with term (strcmp order). */
static int compare_at_offset(const ov_search_doc *doc, uint32_t offset, const char *term,
                             size_t len)
{
    if (offset >= doc->terms_len)
        return 1;
    const char *at = (const char *)doc->terms + offset;
    size_t room = doc->terms_len - offset;
    size_t at_len = strnlen(at, room);
    size_t n = at_len < len ? at_len : len;
    int cmp = memcmp(at, term, n);
    if (cmp)
        return cmp;
    return at_len < len ? -1 : at_len > len;
}

int ov_search_doc_find(const ov_search_doc *doc, const char *term, size_t len, ov_search_term_fn fn,
                       void *ctx)
{
    /* The last skip entry at or before term, by binary search; then at most SKIP_EVERY entries. */
    uint32_t lo = 0, hi = doc->skip_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (compare_at_offset(doc, ov_be32_get(doc->skips + 4 * mid), term, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t start = lo ? ov_be32_get(doc->skips + 4 * (lo - 1)) : 0;
    if (start > doc->terms_len)
        return OV_ESTORE;
    find_walk f = {term, len, fn, ctx, 0};
    int rc = walk_entries(doc->terms + start, doc->terms + doc->terms_len, SKIP_EVERY + 1,
                          find_entry, &f);
    if (rc < 0)
        return rc;
    return f.found;
}

/* ---- Opening -------------------------------------------------------------------------------- */

static int from_mdb(int rc)
{
    return ov_lmdb_error(rc);
}

int ov_search_index_open(MDB_txn *txn, ov_search_index **out, int *rebuild_needed)
{
    *out = NULL;
    *rebuild_needed = 0;
    ov_search_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return OV_ENOMEM;
    ix->an.sort_in_place = 1;
    int rc = ov_text_new(&ix->an.text);
    if (rc) {
        free(ix);
        return rc;
    }
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[] = {
        {"search_postings", MDB_DUPSORT | MDB_DUPFIXED, &ix->postings},
        {"search_docs", 0, &ix->docs},
        {"search_ids", 0, &ix->ids},
        {"search_values", 0, &ix->values},
        {"search_names", 0, &ix->names},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof *dbs; i++) {
        int mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbs[i].dbi);
        if (mrc) {
            ov_search_index_free(ix);
            return from_mdb(mrc);
        }
    }
    MDB_val key = {sizeof FORMAT_KEY - 1, FORMAT_KEY}, value;
    if (mdb_get(txn, ix->values, &key, &value) || value.mv_size != 4 ||
        ov_be32_get(value.mv_data) != FORMAT_VERSION)
        *rebuild_needed = 1; /* new, or written by another version */
    *out = ix;
    return OV_OK;
}

static void analyser_release(ov_search_analyser *a)
{
    for (size_t i = 0; i < a->term_cap; i++)
        free(a->terms[i].positions);
    free(a->terms);
    free(a->slots);
    free(a->order);
    ov_text_free(a->text);
}

void ov_search_index_free(ov_search_index *ix)
{
    if (!ix)
        return;
    analyser_release(&ix->an);
    free(ix);
}

int ov_search_index_bytes(const ov_search_index *ix, MDB_txn *txn, uint64_t *bytes)
{
    MDB_dbi all[] = {ix->postings, ix->docs, ix->ids, ix->values, ix->names};
    *bytes = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        MDB_stat st;
        if (mdb_stat(txn, all[i], &st))
            return OV_ESTORE;
        *bytes +=
            (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
    }
    return OV_OK;
}

MDB_dbi ov_search_index_postings(const ov_search_index *ix)
{
    return ix->postings;
}

MDB_dbi ov_search_index_docs(const ov_search_index *ix)
{
    return ix->docs;
}

MDB_dbi ov_search_index_ids(const ov_search_index *ix)
{
    return ix->ids;
}

uint32_t ov_search_index_generation(const ov_search_index *ix, MDB_txn *txn)
{
    MDB_val key = {sizeof GENERATION_KEY - 1, GENERATION_KEY}, value;
    if (mdb_get(txn, ix->values, &key, &value) || value.mv_size != 4)
        return 0;
    return ov_be32_get(value.mv_data);
}

int ov_search_index_clear(ov_search_index *ix, MDB_txn *txn)
{
    uint32_t generation = ov_search_index_generation(ix, txn) + 1;
    MDB_dbi all[] = {ix->postings, ix->docs, ix->ids, ix->values, ix->names};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        int rc = mdb_drop(txn, all[i], 0);
        if (rc)
            return from_mdb(rc);
    }
    uint8_t bytes[4];
    ov_be32_put(bytes, generation);
    MDB_val key = {sizeof GENERATION_KEY - 1, GENERATION_KEY}, value = {4, bytes};
    return from_mdb(mdb_put(txn, ix->values, &key, &value, 0));
}

int ov_search_index_mark_complete(ov_search_index *ix, MDB_txn *txn)
{
    uint8_t version[4];
    ov_be32_put(version, FORMAT_VERSION);
    MDB_val key = {sizeof FORMAT_KEY - 1, FORMAT_KEY}, value = {4, version};
    return from_mdb(mdb_put(txn, ix->values, &key, &value, 0));
}

/* ---- Facet values --------------------------------------------------------------------------- */

/* Takes the next number of a counter kept in search_values under key: first (when the counter is
 * new) and up, at most last (then OV_EFULL). */
static int take_number(ov_search_index *ix, MDB_txn *txn, const void *key_bytes, size_t key_len,
                       uint32_t first, uint32_t last, uint32_t *out)
{
    MDB_val key = {key_len, (void *)key_bytes}, data;
    uint32_t n = first;
    int rc = mdb_get(txn, ix->values, &key, &data);
    if (rc == 0 && data.mv_size == 4)
        n = ov_be32_get(data.mv_data);
    else if (rc != MDB_NOTFOUND)
        return from_mdb(rc);
    if (n > last)
        return OV_EFULL;
    uint8_t next[4];
    ov_be32_put(next, n + 1);
    data = (MDB_val){4, next};
    if ((rc = mdb_put(txn, ix->values, &key, &data, 0)))
        return from_mdb(rc);
    *out = n;
    return OV_OK;
}

static size_t value_key(uint8_t *out, int facet, const char *value, size_t len)
{
    out[0] = (uint8_t)facet;
    memcpy(out + 1, value, len);
    return len + 1;
}

/* A facet value's id: *id 0 when the index has never seen it; OV_EINVAL for an empty or overlong
 * value, which is never a facet value. */
static int lookup_value(const ov_search_index *ix, MDB_txn *txn, int facet, const char *value,
                        uint32_t *id)
{
    *id = 0;
    size_t len = strlen(value);
    if (len == 0 || len > OV_RECORD_FACET_VALUE_MAX)
        return OV_EINVAL;
    uint8_t key_bytes[OV_RECORD_FACET_VALUE_MAX + 1];
    MDB_val key = {value_key(key_bytes, facet, value, len), key_bytes}, data;
    int rc = mdb_get(txn, ix->values, &key, &data);
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc || data.mv_size != 4)
        return OV_ESTORE;
    *id = ov_be32_get(data.mv_data);
    return OV_OK;
}

uint32_t ov_search_value_id(const ov_search_index *ix, MDB_txn *txn, int facet, const char *value)
{
    uint32_t id;
    return lookup_value(ix, txn, facet, value, &id) == OV_OK ? id : 0;
}

int ov_search_value_name(const ov_search_index *ix, MDB_txn *txn, uint32_t id, char *out,
                         size_t size)
{
    uint8_t key_bytes[4];
    ov_be32_put(key_bytes, id);
    MDB_val key = {4, key_bytes}, data;
    int rc = mdb_get(txn, ix->names, &key, &data);
    if (rc)
        return rc == MDB_NOTFOUND ? OV_ENOTFOUND : OV_ESTORE;
    if (data.mv_size >= size)
        return OV_ESTORE;
    memcpy(out, data.mv_data, data.mv_size);
    out[data.mv_size] = 0;
    return OV_OK;
}

/* The id of a facet value, created when new. */
static int value_id_create(ov_search_index *ix, MDB_txn *txn, int facet, const char *value,
                           uint32_t *id)
{
    int rc = lookup_value(ix, txn, facet, value, id);
    if (rc || *id)
        return rc;
    size_t len = strlen(value);
    uint8_t counter_key[2] = {FACET_COUNTER, (uint8_t)facet};
    uint32_t n = 0;
    rc = take_number(ix, txn, counter_key, sizeof counter_key, 1, (1u << 24) - 1, &n);
    if (rc)
        return rc;
    *id = (uint32_t)facet << 24 | n;
    MDB_val key, data;
    uint8_t key_bytes[OV_RECORD_FACET_VALUE_MAX + 1], id_bytes[4];
    ov_be32_put(id_bytes, *id);
    key = (MDB_val){value_key(key_bytes, facet, value, len), key_bytes};
    data = (MDB_val){4, id_bytes};
    if ((rc = mdb_put(txn, ix->values, &key, &data, 0)))
        return from_mdb(rc);
    key = (MDB_val){4, id_bytes};
    data = (MDB_val){len, (void *)value};
    return from_mdb(mdb_put(txn, ix->names, &key, &data, 0));
}

typedef struct {
    ov_search_index *ix;
    MDB_txn *txn;
    uint32_t ids[VALUES_MAX];
    int count;
    int rc;
} value_walk;

static int add_value(value_walk *w, int facet, const char *value)
{
    if (w->count >= VALUES_MAX)
        return 0;
    uint32_t id;
    int rc = value_id_create(w->ix, w->txn, facet, value, &id);
    if (rc == OV_EINVAL)
        return 0; /* empty or overlong: not a facet value */
    if (rc) {
        w->rc = rc;
        return 1;
    }
    for (int i = 0; i < w->count; i++)
        if (w->ids[i] == id)
            return 0;
    w->ids[w->count++] = id;
    return 0;
}

static int on_record_facet(void *ctx, const char *facet, const char *value)
{
    int number = ov_search_facet_number(facet);
    if (number < 0 || !strcmp(facet, "bouwsteen"))
        return 0; /* building blocks are faceted by score, from the doc's scores */
    return add_value(ctx, number, value);
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- Analysis into the term table ---------------------------------------------------------- */

static void terms_reset(ov_search_analyser *a)
{
    a->term_count = 0;
    a->position_base = 0;
    a->last_position = 0;
    if (a->slots)
        memset(a->slots, 0, a->slot_cap * sizeof *a->slots);
}

static int slots_grow(ov_search_analyser *a)
{
    size_t cap = a->slot_cap ? a->slot_cap * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return OV_ENOMEM;
    for (size_t i = 0; i < a->term_count; i++) {
        struct term_entry *t = &a->terms[i];
        size_t s = ov_hash_bytes(t->term, t->len) & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)i + 1;
    }
    free(a->slots);
    a->slots = slots;
    a->slot_cap = cap;
    return OV_OK;
}

size_t ov_search_pair_key(char *out, const char *a, size_t a_len, const char *b, size_t b_len,
                          uint32_t gap)
{
    out[0] = OV_SEARCH_PAIR_MARK;
    out[1] = (char)('0' + gap);
    memcpy(out + 2, a, a_len);
    out[2 + a_len] = ' ';
    memcpy(out + 3 + a_len, b, b_len);
    out[3 + a_len + b_len] = 0;
    return 3 + a_len + b_len;
}

#define PREFIX_BYTES (2 * sizeof(uint64_t))

static void set_prefix(struct term_entry *t)
{
    uint8_t bytes[PREFIX_BYTES] = {0};
    memcpy(bytes, t->term, t->len < PREFIX_BYTES ? t->len : PREFIX_BYTES);
    t->prefix[0] = ov_be64_get(bytes);
    t->prefix[1] = ov_be64_get(bytes + sizeof(uint64_t));
}

/* strcmp's order of two terms (which hold no NUL). */
static int compare_entries_of(const struct term_entry *x, const struct term_entry *y)
{
    for (int i = 0; i < 2; i++)
        if (x->prefix[i] != y->prefix[i])
            return x->prefix[i] < y->prefix[i] ? -1 : 1;
    /* Equal prefixes: a term shorter than the prefix is padded with zeros, and the other, having
     * zeros at the same place, is as long, so the two are equal. */
    return x->len < PREFIX_BYTES ? 0 : strcmp(x->term + PREFIX_BYTES, y->term + PREFIX_BYTES);
}

/* Counts one occurrence of key in the term table; global is its position, or UINT32_MAX for a
 * pair (pairs keep no positions and no counts: their postings say only "present"). *recorded
 * tells whether the position was kept (a term keeps at most POSITIONS_MAX). */
static int add_key(ov_search_analyser *a, const char *term, size_t len, uint32_t global,
                   int *recorded)
{
    *recorded = 0;
    if ((a->term_count + 1) * 2 > a->slot_cap && slots_grow(a))
        return OV_ENOMEM;
    size_t s = ov_hash_bytes(term, len) & (a->slot_cap - 1);
    struct term_entry *t = NULL;
    while (a->slots[s]) {
        struct term_entry *c = &a->terms[a->slots[s] - 1];
        if (c->len == len && !memcmp(c->term, term, len)) {
            t = c;
            break;
        }
        s = (s + 1) & (a->slot_cap - 1);
    }
    if (!t) {
        if (a->term_count >= TERMS_MAX)
            return 0;
        if (a->term_count == a->term_cap) {
            size_t cap = a->term_cap ? a->term_cap * 2 : 256;
            struct term_entry *grown = realloc(a->terms, cap * sizeof *grown);
            if (!grown)
                return OV_ENOMEM;
            memset(grown + a->term_cap, 0, (cap - a->term_cap) * sizeof *grown);
            a->terms = grown;
            a->term_cap = cap;
        }
        t = &a->terms[a->term_count];
        memcpy(t->term, term, len);
        t->term[len] = 0;
        t->len = (uint8_t)len;
        set_prefix(t);
        memset(t->counts, 0, sizeof t->counts);
        t->position_count = 0;
        t->pair = global == UINT32_MAX;
        if (t->pair)
            t->counts[OV_SEARCH_BODY] = 1;
        a->slots[s] = (uint32_t)++a->term_count;
    }
    if (t->pair)
        return 0;
    t->counts[a->field_class]++;
    if (t->position_count < POSITIONS_MAX) {
        *recorded = 1;
        if (t->position_count == t->position_cap) {
            uint32_t cap = t->position_cap ? t->position_cap * 2 : 8;
            uint32_t *grown = realloc(t->positions, cap * sizeof *grown);
            if (!grown)
                return OV_ENOMEM;
            t->positions = grown;
            t->position_cap = cap;
        }
        t->positions[t->position_count++] = global;
    }
    return 0;
}

static int on_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    ov_search_analyser *a = ctx;
    uint32_t global = a->position_base + position;
    if (global > a->last_position)
        a->last_position = global;
    int recorded, ignored;
    int rc = add_key(a, term, len, global, &recorded);
    if (rc)
        return rc;
    /* Pairs join neighbours whose positions the forward list keeps, so that removing a version
     * can derive its pairs from that list (pairs_of_forward_list) exactly. */
    if (!recorded)
        return 0;
    if (a->previous_len && global - a->previous_position <= OV_SEARCH_PAIR_GAP) {
        char pair[OV_SEARCH_KEY_MAX + 1];
        size_t n = ov_search_pair_key(pair, a->previous, a->previous_len, term, len,
                                      global - a->previous_position);
        if ((rc = add_key(a, pair, n, UINT32_MAX, &ignored)))
            return rc;
    }
    memcpy(a->previous, term, len);
    a->previous_len = len;
    a->previous_position = global;
    return 0;
}

typedef struct {
    ov_search_analyser *a;
    ov_kind kind;
    uint32_t length[OV_SEARCH_CLASSES];
} text_walk;

static int on_text(void *ctx, const char *field, const char *text, size_t len)
{
    text_walk *w = ctx;
    ov_search_analyser *a = w->a;
    a->field_class = ov_search_field_class(w->kind, field);
    a->last_position = a->position_base;
    a->previous_len = 0; /* no pair spans two texts */
    int rc = ov_text_analyse(a->text, text, len, on_term, a);
    if (rc == OV_EINVAL)
        rc = OV_OK; /* stored texts are valid UTF-8; never fail a write over analysis */
    if (rc)
        return rc;
    uint32_t used = a->last_position - a->position_base + 1;
    w->length[a->field_class] += used;
    a->position_base = a->last_position + TEXT_GAP;
    return 0;
}

static int compare_terms(const void *a, const void *b)
{
    return compare_entries_of(a, b);
}

/* A term as ov_search_analyse sorts it: with its prefix beside the pointer, so that most
 * comparisons do not follow it, and by a merge sort that compares inline (qsort's call per
 * comparison was most of the sort). */
struct order_key {
    uint64_t prefix[2];
    const struct term_entry *t;
};

static int order_before(const struct order_key *x, const struct order_key *y)
{
    if (x->prefix[0] != y->prefix[0])
        return x->prefix[0] < y->prefix[0];
    if (x->prefix[1] != y->prefix[1])
        return x->prefix[1] < y->prefix[1];
    return compare_entries_of(x->t, y->t) < 0;
}

/* Sorts keys[0, n) (distinct terms, so stability does not matter); scratch holds n / 2 + 1. */
static void order_sort(struct order_key *keys, struct order_key *scratch, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            struct order_key k = keys[i];
            size_t j = i;
            for (; j > 0 && order_before(&k, &keys[j - 1]); j--)
                keys[j] = keys[j - 1];
            keys[j] = k;
        }
        return;
    }
    size_t half = n / 2;
    order_sort(keys, scratch, half);
    order_sort(keys + half, scratch, n - half);
    if (!order_before(&keys[half], &keys[half - 1]))
        return; /* the halves are in order already */
    memcpy(scratch, keys, half * sizeof *keys);
    /* Merged from the front: the next place written is never past the right half's next key. */
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n)
        keys[k++] = order_before(&keys[j], &scratch[i]) ? keys[j++] : scratch[i++];
    while (i < half)
        keys[k++] = scratch[i++];
}

/* ---- Update --------------------------------------------------------------------------------- */

static int docno_of(ov_search_index *ix, MDB_txn *txn, const ov_id *id, uint32_t *docno, int create)
{
    MDB_val key = {OV_ID_BYTES, (void *)id->bytes}, data;
    int rc = mdb_get(txn, ix->ids, &key, &data);
    if (rc == 0 && data.mv_size == 4) {
        *docno = ov_be32_get(data.mv_data);
        return OV_OK;
    }
    if (rc != MDB_NOTFOUND && rc != 0)
        return from_mdb(rc);
    if (!create)
        return OV_ENOTFOUND;
    uint32_t next = 0;
    rc = take_number(ix, txn, DOCNO_COUNTER, sizeof DOCNO_COUNTER - 1, 0, UINT32_MAX - 1, &next);
    if (rc)
        return rc;
    uint8_t bytes[4];
    ov_be32_put(bytes, next);
    data = (MDB_val){4, bytes};
    if ((rc = mdb_put(txn, ix->ids, &key, &data, 0)))
        return from_mdb(rc);
    *docno = next;
    return OV_OK;
}

/* The postings of one document version: key and counts, sorted by key. */
typedef struct {
    char key[OV_SEARCH_KEY_MAX + 1];
    uint8_t len;
    uint32_t counts[OV_SEARCH_CLASSES];
} posting_entry;

typedef struct {
    uint32_t position;
    uint32_t entry; /* index into items */
} kept_position;

typedef struct {
    posting_entry *items;
    size_t count, cap;
    kept_position *at; /* every kept position and its term, for deriving pairs */
    size_t at_count, at_cap;
} old_postings;

static int old_push(old_postings *o, const char *key, size_t len, const uint32_t *counts)
{
    if (o->count == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        posting_entry *grown = realloc(o->items, cap * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        o->items = grown;
        o->cap = cap;
    }
    posting_entry *e = &o->items[o->count++];
    memcpy(e->key, key, len);
    e->key[len] = 0;
    e->len = (uint8_t)len;
    memcpy(e->counts, counts, sizeof e->counts);
    return OV_OK;
}

static int take_old_term(void *ctx, const char *term, size_t term_len,
                         const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                         size_t positions_len, uint32_t position_count)
{
    old_postings *o = ctx;
    if (term_len > OV_TEXT_TERM_MAX || old_push(o, term, term_len, counts))
        return OV_ENOMEM;
    const uint8_t *p = positions, *end = positions + positions_len;
    uint32_t value = 0, delta;
    for (uint32_t n = 0; n < position_count && ov_search_varint(&p, end, &delta); n++) {
        value += delta;
        if (o->at_count == o->at_cap) {
            size_t cap = o->at_cap ? o->at_cap * 2 : 1024;
            kept_position *grown = realloc(o->at, cap * sizeof *o->at);
            if (!grown)
                return OV_ENOMEM;
            o->at = grown;
            o->at_cap = cap;
        }
        o->at[o->at_count].position = value;
        o->at[o->at_count++].entry = (uint32_t)(o->count - 1);
    }
    return 0;
}

static int compare_at(const void *a, const void *b)
{
    uint32_t x = ((const kept_position *)a)->position, y = ((const kept_position *)b)->position;
    return x < y ? -1 : x > y;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const posting_entry *)a)->key, ((const posting_entry *)b)->key);
}

/* The old version's postings: its forward list's terms, and the pairs its positions imply (the
 * same pairs on_term made, as it pairs only kept positions). */
static int old_postings_read(const ov_search_doc *doc, old_postings *o)
{
    int rc = ov_search_doc_terms(doc, take_old_term, o);
    if (rc)
        return rc;
    if (o->at_count > 1)
        qsort(o->at, o->at_count, sizeof *o->at, compare_at);
    static const uint32_t pair_counts[OV_SEARCH_CLASSES] = {0, 0, 1};
    for (size_t i = 0; i + 1 < o->at_count; i++) {
        uint32_t gap = o->at[i + 1].position - o->at[i].position;
        if (gap == 0 || gap > OV_SEARCH_PAIR_GAP)
            continue;
        const posting_entry *a = &o->items[o->at[i].entry], *b = &o->items[o->at[i + 1].entry];
        char key[OV_SEARCH_KEY_MAX + 1];
        size_t n = ov_search_pair_key(key, a->key, a->len, b->key, b->len, gap);
        if (old_push(o, key, n, pair_counts)) /* may move items: a and b are not used after */
            return OV_ENOMEM;
    }
    if (o->count > 1)
        qsort(o->items, o->count, sizeof *o->items, compare_entries);
    /* The same pair can occur twice in a text: keep one. */
    size_t unique = 0;
    for (size_t i = 0; i < o->count; i++)
        if (!unique || strcmp(o->items[unique - 1].key, o->items[i].key))
            o->items[unique++] = o->items[i];
    o->count = unique;
    return OV_OK;
}

static void old_postings_free(old_postings *o)
{
    free(o->items);
    free(o->at);
}

static int posting_write(MDB_txn *txn, ov_search_index *ix, uint32_t docno, const char *key,
                         size_t len, const uint32_t counts[OV_SEARCH_CLASSES], int remove)
{
    uint8_t value[OV_SEARCH_POSTING_BYTES];
    ov_search_posting_encode(value, docno, counts);
    MDB_val k = {len, (void *)key}, data = {sizeof value, value};
    int rc =
        remove ? mdb_del(txn, ix->postings, &k, &data) : mdb_put(txn, ix->postings, &k, &data, 0);
    if (rc && !(remove && rc == MDB_NOTFOUND) && !(!remove && rc == MDB_KEYEXIST))
        return from_mdb(rc);
    return OV_OK;
}

static int same_posting(const uint32_t a[OV_SEARCH_CLASSES], const uint32_t b[OV_SEARCH_CLASSES])
{
    uint8_t x[OV_SEARCH_POSTING_BYTES], y[OV_SEARCH_POSTING_BYTES];
    ov_search_posting_encode(x, 0, a);
    ov_search_posting_encode(y, 0, b);
    return !memcmp(x, y, sizeof x);
}

/* Writes only what differs between the old postings and the new (both sorted by key). */
static int postings_diff(ov_search_index *ix, MDB_txn *txn, uint32_t docno, const old_postings *old)
{
    size_t i = 0, j = 0;
    int rc = OV_OK;
    while (rc == OV_OK && (i < old->count || j < ix->an.term_count)) {
        const posting_entry *o = i < old->count ? &old->items[i] : NULL;
        const struct term_entry *t = j < ix->an.term_count ? &ix->an.terms[j] : NULL;
        int cmp = !o ? 1 : !t ? -1 : strcmp(o->key, t->term);
        if (cmp < 0) {
            rc = posting_write(txn, ix, docno, o->key, o->len, o->counts, 1);
            i++;
        } else if (cmp > 0) {
            rc = posting_write(txn, ix, docno, t->term, t->len, t->counts, 0);
            j++;
        } else {
            if (!same_posting(o->counts, t->counts)) {
                rc = posting_write(txn, ix, docno, o->key, o->len, o->counts, 1);
                if (rc == OV_OK)
                    rc = posting_write(txn, ix, docno, t->term, t->len, t->counts, 0);
            }
            i++;
            j++;
        }
    }
    return rc;
}

static void read_scores(ov_kind kind, const json_t *record, uint8_t scores[OV_BOUWSTENEN])
{
    memset(scores, 0, OV_BOUWSTENEN);
    if (kind == OV_KIND_CASE) {
        ov_record_scan_best(record, scores);
    } else if (kind == OV_KIND_LESSON || kind == OV_KIND_VISIT) {
        size_t i;
        const json_t *item;
        json_array_foreach(json_object_get(record, "bouwstenen"), i, item)
        {
            for (int b = 0; b < OV_BOUWSTENEN; b++)
                if (json_is_string(item) && !strcmp(json_string_value(item), ov_bouwsteen_slug[b]))
                    scores[b] = OV_SEARCH_SCORE_TAGGED;
        }
    }
}

/* Encodes the new document row into out (search_index.h, ov_search_doc_decode reads it). */
static void encode_doc(ov_search_index *ix, const ov_record_meta *meta, const json_t *record,
                       const text_walk *texts, const value_walk *values, ov_buf *out)
{
    uint8_t h[OV_SEARCH_DOC_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, meta->env.id.bytes, OV_ID_BYTES);
    h[16] = (uint8_t)meta->env.kind;
    if (json_is_true(json_object_get(record, "generated")))
        h[17] |= OV_SEARCH_DOC_GENERATED;
    read_scores(meta->env.kind, record, h + 18);
    for (int c = 0; c < OV_SEARCH_CLASSES; c++)
        ov_be16_put(h + 26 + 2 * c, texts->length[c] > 65535 ? 65535 : texts->length[c]);
    ov_be64_put(h + 32, (uint64_t)meta->env.updated_ms);
    ov_be16_put(h + 40, (uint32_t)values->count);
    ov_buf_append(out, h, sizeof h);
    for (int i = 0; i < values->count; i++) {
        uint8_t id[4];
        ov_be32_put(id, values->ids[i]);
        ov_buf_append(out, id, sizeof id);
    }
    /* The skip table: its size, then room for the offsets, filled in as the entries go out. */
    size_t entries = 0;
    for (size_t i = 0; i < ix->an.term_count; i++)
        entries += !ix->an.terms[i].pair;
    uint32_t skips = (uint32_t)((entries + SKIP_EVERY - 1) / SKIP_EVERY);
    append_varint(out, skips);
    size_t skip_table = out->len;
    for (uint32_t i = 0; i < skips; i++)
        ov_buf_append(out, "\0\0\0\0", 4);
    size_t first_entry = out->len, entry = 0;
    for (size_t i = 0; i < ix->an.term_count && !out->failed; i++) {
        const struct term_entry *t = &ix->an.terms[i];
        if (t->pair)
            continue;
        if (entry++ % SKIP_EVERY == 0)
            ov_be32_put((uint8_t *)out->data + skip_table + 4 * ((entry - 1) / SKIP_EVERY),
                        (uint32_t)(out->len - first_entry));
        /* Positions as deltas, their byte count first so readers can skip the list. */
        uint32_t bytes = 0;
        for (uint32_t p = 0; p < t->position_count; p++)
            bytes += varint_size(t->positions[p] - (p ? t->positions[p - 1] : 0));
        ov_buf_append(out, t->term, (size_t)t->len + 1);
        for (int c = 0; c < OV_SEARCH_CLASSES; c++)
            append_varint(out, t->counts[c]);
        append_varint(out, t->position_count);
        append_varint(out, bytes);
        for (uint32_t p = 0; p < t->position_count; p++)
            append_varint(out, t->positions[p] - (p ? t->positions[p - 1] : 0));
    }
}

/* Reads the stored row of docno (if any) into old, before anything is written: LMDB's pointers
 * into the row die with the first write. */
static int read_old_postings(ov_search_index *ix, MDB_txn *txn, uint32_t docno, old_postings *old)
{
    memset(old, 0, sizeof *old);
    uint8_t docno_bytes[4];
    ov_be32_put(docno_bytes, docno);
    MDB_val key = {4, docno_bytes}, data;
    int rc = mdb_get(txn, ix->docs, &key, &data);
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc)
        return from_mdb(rc);
    ov_search_doc doc;
    rc = ov_search_doc_decode(data.mv_data, data.mv_size, &doc);
    if (rc == OV_OK)
        rc = old_postings_read(&doc, old);
    if (rc)
        old_postings_free(old);
    return rc;
}

/* Fills the term table with the record's terms and pairs, sorted (empty when not indexed). */
static int analyse_record(ov_search_analyser *a, ov_kind kind, const json_t *record, int indexed,
                          text_walk *texts)
{
    terms_reset(a);
    *texts = (text_walk){a, kind, {0, 0, 0}};
    if (!indexed)
        return OV_OK;
    int rc = ov_record_texts(kind, record, on_text, texts);
    if (rc || !a->sort_in_place)
        return rc;
    if (a->term_count > 1)
        qsort(a->terms, a->term_count, sizeof *a->terms, compare_terms);
    return OV_OK;
}

/* ---- Analysis ahead of the writer ---------------------------------------------------------- */

/* The term table of one record, packed: per term (sorted as the table is) its length, bytes and
 * pair flag, then varints: its counts per class, its position count and the positions as
 * deltas. */
struct ov_search_analysis {
    size_t len; /* bytes of data */
    uint32_t term_count;
    uint32_t length[OV_SEARCH_CLASSES];
    uint8_t kind;
    uint8_t data[];
};

int ov_search_analyser_new(ov_search_analyser **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return OV_ENOMEM;
    int rc = ov_text_new(&(*out)->text);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

void ov_search_analyser_free(ov_search_analyser *a)
{
    if (!a)
        return;
    analyser_release(a);
    free(a);
}

int ov_search_analyse(ov_search_analyser *a, ov_kind kind, const json_t *record,
                      ov_search_analysis **out)
{
    *out = NULL;
    text_walk texts;
    int rc = analyse_record(a, kind, record, 1, &texts);
    if (rc)
        return rc;
    if (a->term_count > a->order_cap) {
        struct order_key *grown =
            realloc(a->order, (a->term_count + a->term_count / 2 + 1) * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        a->order = grown;
        a->order_cap = a->term_count;
    }
    for (size_t i = 0; i < a->term_count; i++)
        a->order[i] =
            (struct order_key){{a->terms[i].prefix[0], a->terms[i].prefix[1]}, &a->terms[i]};
    /* The terms are distinct: sorted, they are in the one order the writer's table has. */
    if (a->term_count > 1)
        order_sort(a->order, a->order + a->order_cap, a->term_count);
    size_t len = 0;
    for (size_t i = 0; i < a->term_count; i++) {
        const struct term_entry *t = a->order[i].t;
        len += 2 + (size_t)t->len + varint_size(t->position_count);
        for (int c = 0; c < OV_SEARCH_CLASSES; c++)
            len += varint_size(t->counts[c]);
        for (uint32_t p = 0; p < t->position_count; p++)
            len += varint_size(t->positions[p] - (p ? t->positions[p - 1] : 0));
    }
    ov_search_analysis *x = malloc(sizeof *x + len);
    if (!x)
        return OV_ENOMEM;
    x->len = len;
    x->term_count = (uint32_t)a->term_count;
    memcpy(x->length, texts.length, sizeof x->length);
    x->kind = (uint8_t)kind;
    uint8_t *at = x->data;
    for (size_t i = 0; i < a->term_count; i++) {
        const struct term_entry *t = a->order[i].t;
        *at++ = t->len;
        memcpy(at, t->term, t->len);
        at += t->len;
        *at++ = t->pair;
        for (int c = 0; c < OV_SEARCH_CLASSES; c++)
            at = put_varint(at, t->counts[c]);
        at = put_varint(at, t->position_count);
        for (uint32_t p = 0; p < t->position_count; p++)
            at = put_varint(at, t->positions[p] - (p ? t->positions[p - 1] : 0));
    }
    *out = x;
    return OV_OK;
}

size_t ov_search_analysis_bytes(const ov_search_analysis *x)
{
    return x ? sizeof *x + x->len : 0;
}

void ov_search_analysis_free(ov_search_analysis *x)
{
    free(x);
}

/* Fills the term table from a packed analysis, as analyse_record would have left it. */
static int analysis_load(ov_search_analyser *a, const ov_search_analysis *x, text_walk *texts)
{
    terms_reset(a);
    *texts = (text_walk){a, (ov_kind)x->kind, {0, 0, 0}};
    memcpy(texts->length, x->length, sizeof texts->length);
    if (x->term_count > a->term_cap) {
        struct term_entry *grown = realloc(a->terms, x->term_count * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        memset(grown + a->term_cap, 0, (x->term_count - a->term_cap) * sizeof *grown);
        a->terms = grown;
        a->term_cap = x->term_count;
    }
    const uint8_t *at = x->data, *end = x->data + x->len;
    for (uint32_t i = 0; i < x->term_count; i++) {
        struct term_entry *t = &a->terms[i];
        if (end - at < 2 || *at > OV_SEARCH_KEY_MAX || end - at < 2 + *at)
            return OV_EINVAL;
        t->len = *at++;
        memcpy(t->term, at, t->len);
        t->term[t->len] = 0;
        at += t->len;
        t->pair = *at++;
        uint32_t count = 0;
        for (int c = 0; c < OV_SEARCH_CLASSES; c++)
            if (!ov_search_varint(&at, end, &t->counts[c]))
                return OV_EINVAL;
        if (!ov_search_varint(&at, end, &count) || count > POSITIONS_MAX)
            return OV_EINVAL;
        if (count > t->position_cap) {
            uint32_t *grown = realloc(t->positions, count * sizeof *grown);
            if (!grown)
                return OV_ENOMEM;
            t->positions = grown;
            t->position_cap = count;
        }
        uint32_t value = 0, delta;
        for (uint32_t p = 0; p < count; p++) {
            if (!ov_search_varint(&at, end, &delta))
                return OV_EINVAL;
            value += delta;
            t->positions[p] = value;
        }
        t->position_count = count;
        a->term_count = i + 1;
    }
    return at == end ? OV_OK : OV_EINVAL;
}

/* Writes (or, when not indexed, deletes) the document row of docno from the term table. */
static int write_doc_row(ov_search_index *ix, MDB_txn *txn, uint32_t docno,
                         const ov_record_meta *meta, const json_t *record, int indexed,
                         const text_walk *texts)
{
    uint8_t docno_bytes[4];
    ov_be32_put(docno_bytes, docno);
    MDB_val key = {4, docno_bytes}, data;
    if (!indexed) {
        int rc = mdb_del(txn, ix->docs, &key, NULL);
        return rc == MDB_NOTFOUND ? OV_OK : from_mdb(rc);
    }

    value_walk values = {.ix = ix, .txn = txn, .count = 0, .rc = OV_OK};
    char text[OV_ID_CHARS + 1];
    add_value(&values, OV_SEARCH_FACET_KIND, ov_kind_name(meta->env.kind));
    ov_id_format(&meta->env.origin, text);
    add_value(&values, OV_SEARCH_FACET_ORIGIN, text);
    if (!values.rc)
        ov_record_facets(meta->env.kind, record, on_record_facet, &values);
    if (values.rc)
        return values.rc;
    qsort(values.ids, (size_t)values.count, sizeof *values.ids, compare_u32);

    ov_buf row;
    ov_buf_init(&row, DOC_MAX);
    encode_doc(ix, meta, record, texts, &values, &row);
    int rc = row.failed;
    if (!rc) {
        data = (MDB_val){row.len, row.data};
        rc = from_mdb(mdb_put(txn, ix->docs, &key, &data, 0));
    }
    ov_buf_free(&row);
    return rc;
}

int ov_search_index_update(ov_search_index *ix, MDB_txn *txn, const ov_record_meta *meta,
                           const json_t *record)
{
    int indexed = meta->env.status == OV_STATUS_PUBLISHED && record;
    uint32_t docno = 0;
    int rc = docno_of(ix, txn, &meta->env.id, &docno, indexed);
    if (rc == OV_ENOTFOUND)
        return OV_OK; /* never indexed and not to be now */
    if (rc)
        return rc;
    old_postings old;
    if ((rc = read_old_postings(ix, txn, docno, &old)))
        return rc;
    text_walk texts;
    rc = analyse_record(&ix->an, meta->env.kind, record, indexed, &texts);
    if (rc == OV_OK)
        rc = postings_diff(ix, txn, docno, &old);
    old_postings_free(&old);
    if (rc)
        return rc;
    return write_doc_row(ix, txn, docno, meta, record, indexed, &texts);
}

/* ---- Batches -------------------------------------------------------------------------------- */

/* A batch does what ov_search_index_update does per document, except for the postings: those of
 * all its documents are gathered by key and written at the end, key by key in LMDB's order with
 * one cursor, so a run of thousands of documents costs one pass over the touched postings pages
 * rather than a B-tree descent (and dirty-page lookups) per posting. The result is the same: a
 * docno ends with the postings of its last version, the postings of the version stored before
 * the batch are removed, and the versions in between never reach the database. */

struct batch_key {
    uint32_t offset; /* into keys */
    uint8_t len;
    uint32_t last; /* its last posting (index + 1; 0 none) */
    uint32_t count;
    uint32_t start, live; /* finish: where its live postings are in bucketed, and how many */
    uint8_t unsorted;     /* its postings were not added in order */
};

struct batch_posting {
    uint8_t value[OV_SEARCH_POSTING_BYTES];
    uint8_t remove; /* 1: a posting of the version stored before the batch */
    uint8_t dead;   /* an addition of a version the batch replaced again */
    uint32_t key;   /* index of its key in key_list */
};

struct batch_doc {
    uint32_t docno;
    uint32_t first_add, add_count; /* its current version's additions in postings */
};

struct ov_search_batch {
    ov_search_index *ix;
    char *keys;
    size_t keys_len, keys_cap;
    struct batch_key *key_list;
    size_t key_count, key_cap;
    uint32_t *key_slots; /* open addressing over key_list (index + 1) */
    size_t key_slot_cap;
    struct batch_posting *postings;
    size_t posting_count, posting_cap;
    struct batch_doc *docs;
    size_t doc_count, doc_cap;
    uint32_t *doc_slots; /* open addressing over docs (index + 1) */
    size_t doc_slot_cap;
    const struct batch_posting **order; /* scratch of finish */
    size_t order_cap;
    /* Scratch of finish: the live postings, key by key, in the order they were added. Moved
     * there in one pass over postings: following each key's postings through the array, one
     * dependent load after another, missed the cache at nearly every step. */
    struct batch_posting *bucketed;
    size_t bucketed_cap;
    uint8_t *adds; /* scratch of finish: one key's additions, back to back */
    size_t adds_cap;
};

static int grow(void **items, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return OV_OK;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *grown = realloc(*items, n * size);
    if (!grown)
        return OV_ENOMEM;
    *items = grown;
    *cap = n;
    return OV_OK;
}

static int slots_rehash(uint32_t **slots, size_t *slot_cap, size_t count,
                        uint32_t (*hash)(const struct ov_search_batch *, size_t),
                        const struct ov_search_batch *b)
{
    size_t cap = *slot_cap ? *slot_cap * 2 : 4096;
    uint32_t *grown = calloc(cap, sizeof *grown);
    if (!grown)
        return OV_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        size_t s = hash(b, i) & (cap - 1);
        while (grown[s])
            s = (s + 1) & (cap - 1);
        grown[s] = (uint32_t)i + 1;
    }
    free(*slots);
    *slots = grown;
    *slot_cap = cap;
    return OV_OK;
}

static uint32_t key_hash_at(const struct ov_search_batch *b, size_t i)
{
    return ov_hash_bytes(b->keys + b->key_list[i].offset, b->key_list[i].len);
}

static uint32_t docno_hash(uint32_t docno)
{
    return docno * 2654435761u;
}

static uint32_t doc_hash_at(const struct ov_search_batch *b, size_t i)
{
    return docno_hash(b->docs[i].docno);
}

/* Appends a posting to key's list. */
static int batch_posting(ov_search_batch *b, const char *key, size_t len, uint32_t docno,
                         const uint32_t counts[OV_SEARCH_CLASSES], int remove)
{
    if ((b->key_count + 1) * 2 > b->key_slot_cap &&
        slots_rehash(&b->key_slots, &b->key_slot_cap, b->key_count, key_hash_at, b))
        return OV_ENOMEM;
    size_t s = ov_hash_bytes(key, len) & (b->key_slot_cap - 1);
    struct batch_key *k = NULL;
    while (b->key_slots[s]) {
        struct batch_key *c = &b->key_list[b->key_slots[s] - 1];
        if (c->len == len && !memcmp(b->keys + c->offset, key, len)) {
            k = c;
            break;
        }
        s = (s + 1) & (b->key_slot_cap - 1);
    }
    if (!k) {
        if (grow((void **)&b->key_list, &b->key_cap, b->key_count + 1, sizeof *b->key_list, 1024) ||
            grow((void **)&b->keys, &b->keys_cap, b->keys_len + len, 1, 65536))
            return OV_ENOMEM;
        k = &b->key_list[b->key_count];
        *k = (struct batch_key){(uint32_t)b->keys_len, (uint8_t)len, 0, 0, 0, 0, 0};
        memcpy(b->keys + b->keys_len, key, len);
        b->keys_len += len;
        b->key_slots[s] = (uint32_t)++b->key_count;
    }
    if (grow((void **)&b->postings, &b->posting_cap, b->posting_count + 1, sizeof *b->postings,
             65536))
        return OV_ENOMEM;
    struct batch_posting *p = &b->postings[b->posting_count];
    ov_search_posting_encode(p->value, docno, counts);
    p->remove = (uint8_t)remove;
    p->dead = 0;
    p->key = (uint32_t)(k - b->key_list);
    uint32_t at = (uint32_t)++b->posting_count;
    if (k->last) {
        struct batch_posting *prev = &b->postings[k->last - 1];
        int cmp = memcmp(prev->value, p->value, sizeof p->value);
        if (cmp > 0 || (cmp == 0 && prev->remove <= p->remove))
            k->unsorted = 1;
    }
    k->last = at;
    k->count++;
    return OV_OK;
}

int ov_search_batch_new(ov_search_index *ix, ov_search_batch **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return OV_ENOMEM;
    (*out)->ix = ix;
    return OV_OK;
}

void ov_search_batch_reset(ov_search_batch *b)
{
    b->keys_len = b->key_count = b->posting_count = b->doc_count = 0;
    if (b->key_slots)
        memset(b->key_slots, 0, b->key_slot_cap * sizeof *b->key_slots);
    if (b->doc_slots)
        memset(b->doc_slots, 0, b->doc_slot_cap * sizeof *b->doc_slots);
}

void ov_search_batch_free(ov_search_batch *b)
{
    if (!b)
        return;
    free(b->keys);
    free(b->key_list);
    free(b->key_slots);
    free(b->postings);
    free(b->docs);
    free(b->doc_slots);
    free(b->order);
    free(b->bucketed);
    free(b->adds);
    free(b);
}

/* The batch's entry for docno; *fresh when the batch had none (one is made). */
static int batch_doc_of(ov_search_batch *b, uint32_t docno, struct batch_doc **doc, int *fresh)
{
    if ((b->doc_count + 1) * 2 > b->doc_slot_cap &&
        slots_rehash(&b->doc_slots, &b->doc_slot_cap, b->doc_count, doc_hash_at, b))
        return OV_ENOMEM;
    size_t s = docno_hash(docno) & (b->doc_slot_cap - 1);
    while (b->doc_slots[s]) {
        struct batch_doc *d = &b->docs[b->doc_slots[s] - 1];
        if (d->docno == docno) {
            *doc = d;
            *fresh = 0;
            return OV_OK;
        }
        s = (s + 1) & (b->doc_slot_cap - 1);
    }
    if (grow((void **)&b->docs, &b->doc_cap, b->doc_count + 1, sizeof *b->docs, 1024))
        return OV_ENOMEM;
    *doc = &b->docs[b->doc_count];
    **doc = (struct batch_doc){docno, 0, 0};
    b->doc_slots[s] = (uint32_t)++b->doc_count;
    *fresh = 1;
    return OV_OK;
}

int ov_search_batch_add(ov_search_batch *b, MDB_txn *txn, const ov_record_meta *meta,
                        const json_t *record)
{
    return ov_search_batch_add_analysed(b, txn, meta, record, NULL);
}

int ov_search_batch_add_analysed(ov_search_batch *b, MDB_txn *txn, const ov_record_meta *meta,
                                 const json_t *record, const ov_search_analysis *analysis)
{
    ov_search_index *ix = b->ix;
    int indexed = meta->env.status == OV_STATUS_PUBLISHED && record;
    uint32_t docno = 0;
    int rc = docno_of(ix, txn, &meta->env.id, &docno, indexed);
    if (rc == OV_ENOTFOUND)
        return OV_OK; /* never indexed and not to be now */
    if (rc)
        return rc;
    struct batch_doc *doc;
    int fresh;
    if ((rc = batch_doc_of(b, docno, &doc, &fresh)))
        return rc;
    if (fresh) {
        /* The version stored before the batch: its postings go (those the new version shares
         * cancel out in finish). */
        old_postings old;
        if ((rc = read_old_postings(ix, txn, docno, &old)))
            return rc;
        for (size_t i = 0; i < old.count && !rc; i++)
            rc =
                batch_posting(b, old.items[i].key, old.items[i].len, docno, old.items[i].counts, 1);
        old_postings_free(&old);
        if (rc)
            return rc;
    } else {
        /* A version added earlier in this batch: its additions never reach the database. */
        for (uint32_t i = 0; i < doc->add_count; i++)
            b->postings[doc->first_add + i].dead = 1;
    }
    text_walk texts;
    if (indexed && analysis && analysis->kind == (uint8_t)meta->env.kind)
        rc = analysis_load(&ix->an, analysis, &texts);
    else
        rc = analyse_record(&ix->an, meta->env.kind, record, indexed, &texts);
    if (rc)
        return rc;
    doc->first_add = (uint32_t)b->posting_count; /* docs do not move until the next document */
    for (size_t i = 0; i < ix->an.term_count && !rc; i++)
        rc = batch_posting(b, ix->an.terms[i].term, ix->an.terms[i].len, docno,
                           ix->an.terms[i].counts, 0);
    if (rc)
        return rc;
    doc->add_count = (uint32_t)(b->posting_count - doc->first_add);
    return write_doc_row(ix, txn, docno, meta, record, indexed, &texts);
}

typedef struct {
    const char *key;
    size_t len;
    const struct batch_key *entry;
} sorted_key;

static int compare_batch_keys(const void *a, const void *b)
{
    const sorted_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int cmp = memcmp(x->key, y->key, n);
    return cmp ? cmp : (x->len > y->len) - (x->len < y->len); /* LMDB's default key order */
}

static int compare_batch_postings(const void *a, const void *b)
{
    const struct batch_posting *x = *(const struct batch_posting *const *)a,
                               *y = *(const struct batch_posting *const *)b;
    int cmp = memcmp(x->value, y->value, sizeof x->value);
    return cmp ? cmp : (int)y->remove - (int)x->remove; /* a removal before an addition */
}

/* Writes the postings of one key: live ones in value order, a removal and an addition of the
 * same value (a document whose posting did not change) cancelling out. The removals go first
 * (they never touch an addition's value), then the additions in one MDB_MULTIPLE put, which
 * finds the key once for all of them. */
static int write_key(ov_search_batch *b, MDB_cursor *cursor, const struct batch_key *k)
{
    size_t n = k->live;
    for (size_t i = 0; i < n; i++)
        b->order[i] = &b->bucketed[k->start + i];
    if (k->unsorted && n > 1)
        qsort(b->order, n, sizeof *b->order, compare_batch_postings);
    size_t adds = 0;
    for (size_t i = 0; i < n; i++) {
        const struct batch_posting *p = b->order[i];
        if (p->remove && i + 1 < n) {
            const struct batch_posting *q = b->order[i + 1];
            if (!q->remove && !memcmp(p->value, q->value, sizeof p->value)) {
                i++;
                continue;
            }
        }
        if (!p->remove) {
            memcpy(b->adds + OV_SEARCH_POSTING_BYTES * adds++, p->value, OV_SEARCH_POSTING_BYTES);
            continue;
        }
        MDB_val key = {k->len, b->keys + k->offset}, data = {sizeof p->value, (void *)p->value};
        int rc = mdb_cursor_get(cursor, &key, &data, MDB_GET_BOTH);
        if (rc == 0)
            rc = mdb_cursor_del(cursor, 0);
        if (rc && rc != MDB_NOTFOUND)
            return from_mdb(rc);
    }
    if (!adds)
        return OV_OK;
    MDB_val key = {k->len, b->keys + k->offset};
    MDB_val data[2] = {{OV_SEARCH_POSTING_BYTES, b->adds}, {adds, NULL}};
    int rc = adds == 1 ? mdb_cursor_put(cursor, &key, &data[0], 0)
                       : mdb_cursor_put(cursor, &key, data, MDB_MULTIPLE);
    return rc && rc != MDB_KEYEXIST ? from_mdb(rc) : OV_OK;
}

int ov_search_batch_finish(ov_search_batch *b, MDB_txn *txn)
{
    size_t need = 0;
    for (size_t i = 0; i < b->key_count; i++)
        if (b->key_list[i].count > need)
            need = b->key_list[i].count;
    int rc = grow((void **)&b->order, &b->order_cap, need + 1, sizeof *b->order, 1024);
    if (rc == OV_OK)
        rc = grow((void **)&b->adds, &b->adds_cap, OV_SEARCH_POSTING_BYTES * (need + 1), 1, 8192);
    if (rc == OV_OK)
        rc = grow((void **)&b->bucketed, &b->bucketed_cap, b->posting_count + 1,
                  sizeof *b->bucketed, 65536);
    sorted_key *keys = NULL;
    if (rc == OV_OK && !(keys = malloc((b->key_count + 1) * sizeof *keys)))
        rc = OV_ENOMEM;
    MDB_cursor *cursor = NULL;
    if (rc == OV_OK)
        rc = from_mdb(mdb_cursor_open(txn, b->ix->postings, &cursor));
    if (rc == OV_OK) {
        for (size_t i = 0; i < b->key_count; i++) {
            const struct batch_key *k = &b->key_list[i];
            keys[i] = (sorted_key){b->keys + k->offset, k->len, k};
        }
        qsort(keys, b->key_count, sizeof *keys, compare_batch_keys);
        /* Each key's postings in bucketed, the keys in the order they are written. */
        uint32_t start = 0;
        for (size_t i = 0; i < b->key_count; i++) {
            struct batch_key *k = &b->key_list[keys[i].entry - b->key_list];
            k->start = start;
            k->live = 0;
            start += k->count;
        }
        for (size_t i = 0; i < b->posting_count; i++) {
            const struct batch_posting *p = &b->postings[i];
            if (!p->dead) {
                struct batch_key *k = &b->key_list[p->key];
                b->bucketed[k->start + k->live++] = *p;
            }
        }
        for (size_t i = 0; i < b->key_count && rc == OV_OK; i++)
            rc = write_key(b, cursor, keys[i].entry);
    }
    if (cursor)
        mdb_cursor_close(cursor);
    free(keys);
    ov_search_batch_reset(b);
    return rc;
}

int ov_search_index_update_many(ov_search_index *ix, MDB_txn *txn, const ov_record_meta *metas,
                                const json_t *const *records, size_t n)
{
    ov_search_batch *b;
    int rc = ov_search_batch_new(ix, &b);
    for (size_t i = 0; i < n && rc == OV_OK; i++)
        rc = ov_search_batch_add(b, txn, &metas[i], records[i]);
    if (rc == OV_OK)
        rc = ov_search_batch_finish(b, txn);
    ov_search_batch_free(b);
    return rc;
}
