/*
 * The search index: LMDB databases in the store's environment, written in the same transaction as
 * the record they describe, so search is never stale and never loses what the store holds.
 *
 * Only published records are indexed (drafts are found through the lists, by those who may see
 * them). A record gets a search document number (docno) the first time it is indexed and keeps it
 * for good; numbers are dense, so the query side (search.h) keeps per-document columns in arrays.
 *
 * Databases (all keys and numbers big-endian):
 *   search_postings  term → 8-byte entries, sorted by docno (DUPSORT|DUPFIXED): docno u32, then
 *                    the term's count in the title (u8), summary (u8) and body (u16) of the doc
 *   search_docs      docno → the document: record id, kind, updated time, field lengths, scan
 *                    scores, facet value ids, and its terms with their positions (the forward
 *                    list; pair keys are not in it: they follow from the positions)
 *   search_ids       record id → docno
 *   search_values    facet u8 + value → value id u32 (facet << 24 | n); 0xFF + facet → next n
 *   search_names     value id → value
 * docs/architecture.md ("Search") explains the choice.
 */
#ifndef OV_SEARCH_INDEX_H
#define OV_SEARCH_INDEX_H

#include <jansson.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/record.h"
#include "proto/text.h"
#include "server/store.h" /* ov_record_meta */

/* Field classes, weighted in ranking: title above summary above body. */
enum { OV_SEARCH_TITLE, OV_SEARCH_SUMMARY, OV_SEARCH_BODY, OV_SEARCH_CLASSES };

/* Facets of the search index: kind and origin, then ov_record_facet_names in order. */
enum { OV_SEARCH_FACET_KIND, OV_SEARCH_FACET_ORIGIN, OV_SEARCH_FACET_RECORD };
#define OV_SEARCH_FACETS_MAX 32

/* A scan score that a lesson's bouwsteen tag counts as: at or above every threshold. */
#define OV_SEARCH_SCORE_TAGGED 6

/* Pairs of neighbouring terms are indexed too, so a two-word phrase is one postings lookup: the key
 * is 0x01, the position gap as a digit ('1' adjacent, '2' and '3' with stopwords between), the
 * first term, a space and the second term. No term holds 0x01 or a space. */
#define OV_SEARCH_PAIR_MARK 0x01
#define OV_SEARCH_PAIR_GAP  3
#define OV_SEARCH_KEY_MAX   (2 + 2 * OV_TEXT_TERM_MAX + 1)

/* Writes the pair key of a then b at gap into out (OV_SEARCH_KEY_MAX + 1); returns its length. */
size_t ov_search_pair_key(char *out, const char *a, size_t a_len, const char *b, size_t b_len,
                          uint32_t gap);

#define OV_SEARCH_POSTING_BYTES 8

/* A posting entry: docno, then the counts in title (u8), summary (u8) and body (u16), each capped
 * at its field's largest value. */
void ov_search_posting_encode(uint8_t out[OV_SEARCH_POSTING_BYTES], uint32_t docno,
                              const uint32_t counts[OV_SEARCH_CLASSES]);
#define OV_SEARCH_DOC_HEADER 44

typedef struct ov_search_index ov_search_index;

/* Opens (creating) the databases in txn. *rebuild_needed is set when the index is new, of another
 * format version, or a rebuild of it was cut short: the caller then runs ov_store_search_rebuild.
 */
int ov_search_index_open(MDB_txn *txn, ov_search_index **out, int *rebuild_needed);
void ov_search_index_free(ov_search_index *index);

/* Brings the index in line with one stored record version (meta and its parsed record): indexes
 * it when published, removes it otherwise. Writer thread, inside its transaction. */
int ov_search_index_update(ov_search_index *index, MDB_txn *txn, const ov_record_meta *meta,
                           const json_t *record);

/* Many documents in one transaction (a received run, a rebuild): the same index as calling
 * ov_search_index_update for each in order, but the postings of all of them are written at the
 * end, sorted by key, with one cursor. add analyses a document and writes its document row at
 * once (the record need not outlive the call); finish writes the postings and empties the batch
 * for reuse. Until finish, the postings DB lags the document rows: nothing in between may read
 * it or call ov_search_index_update. After a failed add or finish the transaction is to be
 * aborted, and the batch reset. Writer thread, inside its transaction. */
typedef struct ov_search_batch ov_search_batch;
int ov_search_batch_new(ov_search_index *index, ov_search_batch **out);
int ov_search_batch_add(ov_search_batch *batch, MDB_txn *txn, const ov_record_meta *meta,
                        const json_t *record);
int ov_search_batch_finish(ov_search_batch *batch, MDB_txn *txn);
/* The analysis of a record's texts done ahead, on any thread (a received run's records, on the
 * thread pool while the writer stores the run before): ov_search_analyse gives what
 * ov_search_batch_add would work out from a published record of that kind, packed (a few bytes a
 * term), and ov_search_batch_add_analysed takes it instead of analysing again. The index written
 * is the same, byte for byte. analysis may be NULL (the batch analyses); it is used only when
 * the version is published and of the kind it was made for, and must have been made from that
 * record. An analyser is one thread's at a time; its scratch is reused from record to record. */
typedef struct ov_search_analyser ov_search_analyser;
typedef struct ov_search_analysis ov_search_analysis;
int ov_search_analyser_new(ov_search_analyser **out);
void ov_search_analyser_free(ov_search_analyser *analyser);
int ov_search_analyse(ov_search_analyser *analyser, ov_kind kind, const json_t *record,
                      ov_search_analysis **out);
size_t ov_search_analysis_bytes(const ov_search_analysis *analysis);
void ov_search_analysis_free(ov_search_analysis *analysis);
int ov_search_batch_add_analysed(ov_search_batch *batch, MDB_txn *txn, const ov_record_meta *meta,
                                 const json_t *record, const ov_search_analysis *analysis);

void ov_search_batch_reset(ov_search_batch *batch);
void ov_search_batch_free(ov_search_batch *batch);

/* A batch of n documents in one call (records[i] may be NULL, as for ov_search_index_update). */
int ov_search_index_update_many(ov_search_index *index, MDB_txn *txn, const ov_record_meta *metas,
                                const json_t *const *records, size_t n);

/* Empties the index; the caller then feeds every record through ov_search_index_update, in as
 * many transactions as it likes, and then calls ov_search_index_mark_complete. An index not
 * marked complete (a rebuild cut short by a crash) is rebuilt when the store opens. */
int ov_search_index_clear(ov_search_index *index, MDB_txn *txn);
int ov_search_index_mark_complete(ov_search_index *index, MDB_txn *txn);

/* Counts the clears: document numbers of one generation mean nothing in another, so whatever
 * holds them (search's columns) starts over when it changes — e.g. after `olievlekd reindex`. */
uint32_t ov_search_index_generation(const ov_search_index *index, MDB_txn *txn);

/* ---- Reading (any thread, any read transaction) ---------------------------------------------- */

/* A document's header as stored in search_docs. */
#define OV_SEARCH_DOC_GENERATED 0x01 /* flags: made up for the demo ("generated": true) */

typedef struct {
    ov_id id;
    ov_kind kind;
    uint8_t flags;
    uint8_t scores[OV_BOUWSTENEN]; /* best scan score per building block; 0: none */
    uint16_t length[OV_SEARCH_CLASSES];
    int64_t updated_ms;
    uint16_t value_count;
    const uint8_t *values; /* value_count big-endian u32 value ids */
    const uint8_t *skips;  /* skip_count big-endian u32 offsets into terms, every 16th entry */
    uint32_t skip_count;
    const uint8_t *terms; /* the forward list's entries, see ov_search_doc_terms */
    size_t terms_len;
} ov_search_doc;

/* Decodes a search_docs value (pointing into it). Returns OV_ESTORE when malformed. */
int ov_search_doc_decode(const void *data, size_t len, ov_search_doc *doc);

/* Walks a document's forward list: term, its counts per class and its positions (varints; read
 * them with ov_search_varint). fn returns non-zero to stop. */
typedef int (*ov_search_term_fn)(void *ctx, const char *term, size_t term_len,
                                 const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                                 size_t positions_len, uint32_t position_count);
int ov_search_doc_terms(const ov_search_doc *doc, ov_search_term_fn fn, void *ctx);

/* Calls fn for one term of the forward list, found through its skip table (a binary search and
 * at most 16 entries, not the whole list). Returns 1 when found, 0 when not, or an error. */
int ov_search_doc_find(const ov_search_doc *doc, const char *term, size_t len, ov_search_term_fn fn,
                       void *ctx);

/* Reads one varint at *p (below end); returns 0 when malformed. */
int ov_search_varint(const uint8_t **p, const uint8_t *end, uint32_t *out);

/* Bytes the index's databases take in the data file (pages × page size). */
int ov_search_index_bytes(const ov_search_index *index, MDB_txn *txn, uint64_t *bytes);

MDB_dbi ov_search_index_postings(const ov_search_index *index);
MDB_dbi ov_search_index_docs(const ov_search_index *index);
MDB_dbi ov_search_index_ids(const ov_search_index *index);

/* A facet value's id (0 when the index has never seen it) and a value id's text (into out). */
uint32_t ov_search_value_id(const ov_search_index *index, MDB_txn *txn, int facet,
                            const char *value);
int ov_search_value_name(const ov_search_index *index, MDB_txn *txn, uint32_t id, char *out,
                         size_t size);

/* Facet names, by facet number (kind, origin, then the record facets). NULL past the end. */
const char *ov_search_facet_name(int facet);
int ov_search_facet_number(const char *name);

/* The weight class a record field's text belongs to. */
int ov_search_field_class(ov_kind kind, const char *field);

#endif
