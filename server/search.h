/*
 * Search: Dutch full-text queries with facet counts over the search index (search_index.h).
 *
 * A query is words, "quoted phrases" and, while someone types, a last word that is a prefix. All
 * words must occur (in any text of a record); hits are ranked by BM25 with title above summary
 * above body; facet filters are AND across facets and OR within one, and each facet's counts
 * leave out that facet's own filter, so a choice never hides its alternatives.
 *
 * Per-document columns (kind, facet values, scan scores, length, updated time) are kept in memory
 * by number, so filtering and counting cost nanoseconds per hit. They are derived from the index
 * and brought up to the read snapshot before every query through the change feed: a query never
 * sees anything the snapshot does not hold.
 *
 * Loop thread only: one ov_search serves one thread.
 */
#ifndef OV_SEARCH_H
#define OV_SEARCH_H

#include <stddef.h>

#include "proto/buf.h"
#include "server/search_index.h"
#include "server/store.h"

#define OV_SEARCH_Q_MAX         256 /* bytes of a query */
#define OV_SEARCH_TERMS_MAX     16  /* words of a query that count; more are ignored and reported */
#define OV_SEARCH_LIMIT_DEFAULT 20
#define OV_SEARCH_LIMIT_MAX     100
#define OV_SEARCH_VALUES_MAX    16   /* values of one facet filter */
#define OV_SEARCH_SIMILAR_MAX   8192 /* bytes of text to find similar records for */

typedef struct ov_search ov_search;

/* Errors: OV_ENOMEM. The store must outlive the engine. */
int ov_search_new(ov_store *store, ov_search **out);
void ov_search_free(ov_search *search);

typedef struct {
    int facet; /* ov_search_facet_number */
    int count;
    const char *values[OV_SEARCH_VALUES_MAX];
} ov_search_filter;

typedef struct {
    const char *q; /* NULL or "": no text, everything the filters let through, newest first */
    size_t q_len;
    /* Instead of q: text to find similar records for (at most OV_SEARCH_SIMILAR_MAX bytes). Its
     * most telling words are searched with OR, ranked by BM25. */
    const char *similar;
    size_t similar_len;
    ov_search_filter filters[OV_SEARCH_FACETS_MAX];
    int filter_count;
    uint8_t bouwstenen;   /* bit b: building block b is asked for (OR within) */
    int bouwsteen_min;    /* the score a block must reach to count, 1..5 */
    int limit;            /* 1..OV_SEARCH_LIMIT_MAX */
    const char *cursor;   /* "next" of the previous page, or NULL */
    const ov_id *exclude; /* a record to leave out (the one similar ones are sought for) */
    /* Hits with this sector or region (values of those facets) rank higher: × 1.25 each. */
    const char *prefer_sector;
    const char *prefer_region;
} ov_search_query;

/* Runs the query on read's snapshot and appends the JSON answer to out:
 *   {"query":{...},"total":N,"hits":[...],"facets":{...},"next":...,"took_ms":...}
 * (docs/openapi.yaml, SearchResult). Errors: OV_EINVAL with detail saying what is wrong with the
 * query (UTF-8, length, cursor); OV_ESTORE; OV_ENOMEM. */
int ov_search_run(ov_search *search, ov_read *read, const ov_search_query *query, ov_buf *out,
                  char *detail, size_t detail_size);

/* Documents in the in-memory columns, for /metrics. */
size_t ov_search_documents(const ov_search *search);

#endif
