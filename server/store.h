/*
 * The node's storage: one LMDB environment in the data directory. The only module that includes
 * <lmdb.h>.
 *
 * Named databases (docs/storage.md has the exact key and value layouts):
 *   records   record id → meta header ‖ canonical record bytes (the current version only)
 *   index     facet ‖ 0 ‖ value ‖ 0 ‖ kind ‖ record id → ∅   (lists and filters; kind, school,
 *             region, sector, phase, theme, bouwsteen, status, … — see ov_record_facets)
 *   updated   kind ‖ updated_ms ‖ record id → ∅             (recently changed first)
 *   log       origin ‖ seq → 114-byte log entry            (every origin's hash-chained log)
 *   heads     origin → 128-byte signed head ‖ 65-byte public key   (the newest, per origin)
 *   checkpoints origin ‖ seq → 128-byte signed head               (every head signed or received)
 *   forks     origin ‖ seq → entry ‖ head ‖ key that contradict the stored log (evidence)
 *   changes   change seq → record id                        (this node's change feed: one row
 *             per record, at the position of its latest change; older rows are deleted, so
 *             reading from N yields every record changed after N exactly once, in order)
 *   accounts  account id → account JSON;  usernames  username → account id
 *   sessions  SHA-256(token) → session
 *   idempotency  account id ‖ key → the answer to the write that first used the key (an
 *             offline client's retries are answered, not applied again: docs/protocol.md §9.2)
 *   meta      schema version, node id, the last change seq
 *
 * Reads run on the caller's thread in their own read-only snapshot (MDB_NOTLS) and never wait for
 * the writer. Writes happen only through a write transaction (ov_store_write_begin), used by
 * exactly one thread at a time (the writer, see writer.h, or a CLI command when no node runs; LMDB
 * serialises writers across processes). Commits are durable (fsync) before they return, except
 * ov_store_write_commit_unflushed, which leaves the last flush to ov_store_sync.
 *
 * Content of superseded versions is not kept: a log entry whose content hash is no longer the
 * record's current hash is replicated without content. Purged records keep their log entries.
 */
#ifndef OV_STORE_H
#define OV_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/log.h"
#include "proto/record.h"

typedef struct ov_store ov_store;
typedef struct ov_read ov_read;
typedef struct ov_wtxn ov_wtxn;

typedef struct {
    const char *dir;       /* data directory; created with mode 0700 if missing */
    size_t map_size;       /* maximum database size in bytes; 0 = 8 GiB */
    const ov_keypair *key; /* the node key, borrowed for the store's lifetime; signs heads */
    /* A store created now waits to restore this node's own log from its peers (the key existed
     * before the store: its log may be held elsewhere) instead of starting a new log at seq 1.
     * Record writes are refused (OV_EAGAIN) until a peer's run restores it up to that peer's
     * newest checkpoint, or until ov_store_new_log. Ignored for an existing store. */
    int restore;
} ov_store_options;

/* Opens (creating if needed) the store. The node id is the one the store was created with (the
 * fingerprint of the genesis key); key must be the node's current key: the genesis key until a
 * key entry of the node's log introduced the next. Errors: OV_EIO, OV_ESTORE, OV_ENOMEM,
 * OV_EINVAL (a store created by another node key), OV_EDENIED (an earlier key of this node,
 * replaced by a rotation). *out is owned by the caller (ov_store_close). */
int ov_store_open(const ov_store_options *options, ov_store **out);
/* Closes the environment. No read or write transaction may be open. */
void ov_store_close(ov_store *store);
/* This node's id (from its genesis key). */
const ov_id *ov_store_node_id(const ov_store *store);
/* True while the node waits to restore its own log from its peers (ov_store_options.restore):
 * record writes are refused. Any thread. */
int ov_store_recovering(ov_store *store);
/* Ends that wait without a restore: this node starts a new log (an operator's decision, when no
 * peer holds the old one). OV_OK, or a store error. No writer may be running. */
int ov_store_new_log(ov_store *store);

/* The search index kept in the store (search_index.h), and the LMDB transaction of a read, for
 * the search engine's own reads. */
struct ov_search_index *ov_store_search_index(ov_store *store);
struct MDB_txn *ov_read_txn(ov_read *read);

/* Rebuilds the search index from the records, 2,000 records per transaction (olievlekd reindex;
 * also run by ov_store_open on a store whose index is missing, of another format, or cut short).
 * No writer may be running. */
int ov_store_search_rebuild(ov_store *store);

typedef struct {
    ov_envelope env;
    uint8_t content_hash[OV_HASH_BYTES];
    uint64_t change_seq; /* position of the record's latest change in the change feed */
    uint64_t log_seq;    /* the origin log entry that produced this version */
} ov_record_meta;

/* ---- Reads ------------------------------------------------------------------------------- */

/* Starts a read snapshot of the last committed state. Cheap: ended snapshots are kept (reset) in
 * a small mutex-protected free list and renewed, so this costs no malloc. Any thread may use a
 * snapshot (MDB_NOTLS), one thread at a time. *out until ov_read_end. */
int ov_read_begin(ov_store *store, ov_read **out);
void ov_read_end(ov_read *read);

/* The current version of a record. *json (not NUL-terminated) is borrowed from the snapshot and
 * valid until ov_read_end. meta or json may be NULL. Errors: OV_ENOTFOUND, OV_ESTORE. */
int ov_read_record(ov_read *read, const ov_id *id, ov_record_meta *meta, const char **json,
                   size_t *len);

#define OV_LIST_MAX_FILTERS 8
#define OV_LIST_MAX_VALUES  16
typedef struct {
    const char *facet;                      /* e.g. "school", "theme" */
    const char *values[OV_LIST_MAX_VALUES]; /* OR within one facet */
    int value_count;
} ov_list_filter;

typedef struct {
    ov_kind kind;
    ov_list_filter filters[OV_LIST_MAX_FILTERS]; /* AND across facets */
    int filter_count;
    unsigned status_mask; /* bit (1u << ov_status) per status to include; 0 = published only */
    ov_id before;         /* cursor: only ids strictly smaller; zero id = from the newest */
    size_t limit;         /* records to deliver (fn returned 0), 1..200 */
} ov_list_query;

/* Called per matching record, newest id first. Return 0 to count it towards limit, 1 to skip it
 * (e.g. not visible to the caller), negative to stop with that error. json is borrowed until
 * ov_read_end. */
typedef int (*ov_list_fn)(void *ctx, const ov_record_meta *meta, const char *json, size_t len);

/* Lists records of query->kind matching every filter, newest first, until limit were counted.
 * *next receives the cursor for the following page, or the zero id when there are no more.
 * The status mask counts as one more filter on the "status" facet. The scan is driven by the
 * filter with the fewest index rows (each counted up to 256); the others are checked by point
 * lookups in the index. It is bounded: at most 20,000 candidate ids are examined per call (then
 * *next continues from there, possibly after fewer than limit records). Errors: OV_EINVAL (kind,
 * limit, filter or value counts out of range), OV_ESTORE, or fn's. */
int ov_read_list(ov_read *read, const ov_list_query *query, ov_list_fn fn, void *ctx, ov_id *next);

/* Called per change after since, in change order. Return 0 to go on, negative to stop. */
typedef int (*ov_change_fn)(void *ctx, uint64_t change_seq, const ov_record_meta *meta,
                            const char *json, size_t len);
/* Delivers up to limit changes with since < change_seq <= ov_read_last_change(read); *last
 * receives the change_seq of the last one delivered (since when none). */
int ov_read_changes(ov_read *read, uint64_t since, size_t limit, ov_change_fn fn, void *ctx,
                    uint64_t *last);
/* The same up to upto, which may lie beyond what is durable (up to ov_read_snapshot_change). */
int ov_read_changes_upto(ov_read *read, uint64_t since, uint64_t upto, size_t limit,
                         ov_change_fn fn, void *ctx, uint64_t *last);
/* The newest change_seq that is durable and in the snapshot (0 for an empty store): the feed
 * never hands out a position that a crash could undo and give to another change. */
uint64_t ov_read_last_change(ov_read *read);
/* The newest change_seq in the snapshot, durable or not: for the search engine, whose columns
 * must match the snapshot's postings. */
uint64_t ov_read_snapshot_change(ov_read *read);

/* The signed head of origin's log and the public key that signed it. OV_ENOTFOUND when this
 * node holds nothing from origin. This node's own head is the newest that is durable (a head in
 * a commit not yet flushed stays unseen until ov_store_sync). */
int ov_read_head(ov_read *read, const ov_id *origin, ov_log_head *head,
                 uint8_t pub[OV_PUBKEY_BYTES]);
/* Up to limit log entries of origin from seq from_seq on. For each: the entry, and its record's
 * canonical bytes if they are still the current, public version (published or a tombstone;
 * else NULL, 0). */
typedef int (*ov_log_fn)(void *ctx, const ov_log_entry *entry, const char *content, size_t len);
int ov_read_log(ov_read *read, const ov_id *origin, uint64_t from_seq, size_t limit, ov_log_fn fn,
                void *ctx);
/* The same walk for callers that decide themselves who may see a draft (the offline clients'
 * pull, docs/protocol.md §9.1): for each entry its 114 bytes as stored and, while the entry is its
 * record's current version (a put or delete whose content hash is the record's), the record's
 * meta and canonical bytes whatever its status; else meta NULL and content NULL, 0. Everything
 * is borrowed from the snapshot; no allocation per entry. */
typedef int (*ov_log_version_fn)(void *ctx, const ov_log_entry *entry,
                                 const uint8_t bytes[OV_LOG_ENTRY_BYTES],
                                 const ov_record_meta *meta, const char *content, size_t len);
int ov_read_log_versions(ov_read *read, const ov_id *origin, uint64_t from_seq, size_t limit,
                         ov_log_version_fn fn, void *ctx);

/* Every origin this node holds a log of, in origin order, with its newest head (as ov_read_head
 * gives it) and key. fn returns negative to stop. */
typedef int (*ov_head_fn)(void *ctx, const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES]);
int ov_read_heads(ov_read *read, ov_head_fn fn, void *ctx);
/* The checkpoint (a signed head kept for that seq) that ends a run of origin's entries starting
 * at from with at most batch entries: the highest within from … from+batch-1, else the lowest
 * above (a sparse log), else the newest head; never one beyond the first key entry at or after
 * from (a run ends at a key entry: what follows is signed by another key). OV_ENOTFOUND when
 * nothing from `from` on is held. */
int ov_read_checkpoint(ov_read *read, const ov_id *origin, uint64_t from, uint64_t batch,
                       ov_log_head *head);
/* Key chains (docs/protocol.md §4): per origin its genesis key (row 0) and the key each of its
 * key entries introduced (row = the key entry's seq).
 * The key that signs origin's heads at seq (the last one introduced before seq, else genesis).
 * OV_ENOTFOUND when the node holds no key of origin. */
int ov_read_key(ov_read *read, const ov_id *origin, uint64_t seq, uint8_t pub[OV_PUBKEY_BYTES]);
/* Every key of origin in seq order (0 the genesis key). fn returns negative to stop. */
typedef int (*ov_key_fn)(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES]);
int ov_read_keys(ov_read *read, const ov_id *origin, ov_key_fn fn, void *ctx);
/* The 114 bytes of origin's entry seq. OV_ENOTFOUND when not held. */
int ov_read_entry(ov_read *read, const ov_id *origin, uint64_t seq,
                  uint8_t out[OV_LOG_ENTRY_BYTES]);
/* The checkpoint kept at exactly seq. OV_ENOTFOUND when none. */
int ov_read_checkpoint_at(ov_read *read, const ov_id *origin, uint64_t seq, ov_log_head *head);
/* Fork evidence kept (entries that contradict a stored log). */
uint64_t ov_read_fork_count(ov_read *read);

/* Accounts. The account JSON is documented in auth.h. *account is a new reference (decref). */
int ov_read_account(ov_read *read, const ov_id *id, json_t **account);
/* The account's stored JSON text, borrowed until ov_read_end. */
int ov_read_account_json(ov_read *read, const ov_id *id, const char **json, size_t *len);
int ov_read_account_by_name(ov_read *read, const char *username, ov_id *id, json_t **account);
/* Calls fn for every account in id order. */
typedef int (*ov_account_fn)(void *ctx, const ov_id *id, const json_t *account);
int ov_read_accounts(ov_read *read, ov_account_fn fn, void *ctx);

typedef struct {
    ov_id account;
    int64_t created_ms;
    int64_t expires_ms;
} ov_session;
int ov_read_session(ov_read *read, const uint8_t token_hash[OV_HASH_BYTES], ov_session *session);

/* Idempotency keys (docs/protocol.md §9.2): 1–64 characters of A–Z a–z 0–9 - _, per account.
 * What a write answered the first time its key was used; kept with the change, in its
 * transaction. */
#define OV_IDEMPOTENCY_KEY_MAX 64
typedef struct {
    uint8_t request; /* the caller's kind of request (api.c numbers them), for mismatches */
    ov_kind kind;
    uint16_t status; /* HTTP status of the answer */
    ov_id record;
    uint32_t version; /* the version the write left */
    int64_t time_ms;  /* when it was applied */
} ov_idempotency_answer;

/* True when key is 1–OV_IDEMPOTENCY_KEY_MAX characters of A–Z a–z 0–9 - _. */
int ov_idempotency_key_valid(const char *key, size_t len);
/* The stored answer of account's key. OV_ENOTFOUND when the key was not used by the account. */
int ov_read_idempotency(ov_read *read, const ov_id *account, const char *key,
                        ov_idempotency_answer *answer);
/* Does a request (request, kind, record id; a zero id when it names none, as a create) repeat the
 * one answer was given to? */
int ov_idempotency_matches(const ov_idempotency_answer *answer, uint8_t request, ov_kind kind,
                           const ov_id *record);

typedef struct {
    uint64_t records;     /* rows in records */
    uint64_t log_entries; /* rows in log */
    uint64_t changes;     /* last change seq */
    uint64_t map_bytes;   /* bytes of the data file in use (pages × page size) */
} ov_store_stats;
int ov_read_stats(ov_read *read, ov_store_stats *stats);

/* ---- Writes ------------------------------------------------------------------------------ */

typedef enum {
    OV_WRITE_RECORD_CREATE,   /* kind, content, author, status; id if not zero (else generated) */
    OV_WRITE_RECORD_REPLACE,  /* id, if_version (0 = any), content, author, status */
    OV_WRITE_RECORD_DELETE,   /* id, if_version, author: leaves a tombstone version */
    OV_WRITE_RECORD_STATUS,   /* id, if_version, author, status: e.g. a moderator publishes */
    OV_WRITE_ACCOUNT_PUT,     /* account_id, account (JSON with "username"); creates or replaces */
    OV_WRITE_SESSION_PUT,     /* token_hash, session */
    OV_WRITE_SESSION_DELETE,  /* token_hash; deleting an absent session is OV_OK */
    OV_WRITE_SESSIONS_REVOKE, /* account_id: deletes every session of that account */
    OV_WRITE_LOG_APPLY,       /* run: another origin's entries (federation.h, sync.h) */
    OV_WRITE_RECORD_PURGE,    /* id, author: erases the record's content (AVG); a purge entry */
    OV_WRITE_KEY_ROTATE,      /* new_key: a key entry introducing it; the commit signs the head at
                                 it with the current key, and this store signs no more heads */
} ov_write_type;

typedef struct ov_write_op ov_write_op;
struct ov_write_op {
    ov_write_type type;

    /* Inputs, owned by the op until ov_write_op_free. */
    ov_kind kind;
    ov_id id;
    uint32_t if_version;
    json_t *content; /* validated content (ov_record_validate); reference owned by the op */
    ov_id author;
    ov_status status;
    ov_id account_id;
    json_t *account;
    uint8_t token_hash[OV_HASH_BYTES];
    ov_session session;
    /* Record ops: an idempotency key of author (empty: none) with what to remember of the
     * answer (request, status; the record and version come from the outcome). */
    char idempotency_key[OV_IDEMPOTENCY_KEY_MAX + 1];
    uint8_t idempotency_request;
    uint16_t idempotency_status;
    /* LOG_APPLY: an ENTRIES message (proto/sync.h) that passed ov_sync_run_check; borrowed,
     * valid until on_done. */
    const uint8_t *run;
    size_t run_len;
    /* LOG_APPLY, optional: the run's contents parsed beforehand (off the writer thread), one per
     * entry in run order, NULL for an entry without content. Owned by the op; NULL: the writer
     * parses them itself. */
    json_t **run_records;
    uint32_t run_record_count;
    /* LOG_APPLY, optional: beside run_records, the search analysis of each published record
     * (ov_search_analyse, for the kind in its envelope), NULL where there is none. Owned by the
     * op; NULL: the writer analyses. */
    struct ov_search_analysis **run_analyses;
    /* KEY_ROTATE: the new public key. */
    uint8_t new_key[OV_PUBKEY_BYTES];

    /* Results, set before completion. result: OV_OK; OV_ENOTFOUND (no such record or a kind
     * mismatch); OV_ECONFLICT (if_version stale, the current version is in meta); OV_EEXISTS
     * (create with a used id or a taken username); OV_EGONE (record deleted); OV_EDENIED (the
     * record's origin is another node: only the origin changes it); OV_EINVAL (missing content or
     * account, status "deleted" asked outside DELETE, account without "username");
     * OV_ESTORE/OV_EFULL. On OV_ECONFLICT, OV_EGONE and OV_EDENIED meta holds the current version.
     * On success for record ops: meta and the sealed bytes canon/canon_len (owned by the op).
     * With an idempotency key already used by author: OV_EPRECONDITION when it was used for
     * another request (nothing applied), else OV_OK with replayed set, answer the first answer,
     * meta and canon the record as it is now (nothing applied either). */
    int result;
    ov_record_meta meta;
    char *canon;
    size_t canon_len;
    int replayed;
    ov_idempotency_answer answer;
    /* LOG_APPLY results. result: OV_OK (applied entries stored, 0 when all were duplicates; or
     * fork set: an entry differs from the stored one at its seq, the evidence was kept and
     * nothing else stored); OV_ECHAIN (the run does not follow the stored log: tail_seq is the
     * newest seq held, ask from tail_seq + 1); OV_EDENIED (entries of this node's own log
     * beyond its end, unless it restores its log); OV_EBADSIG (the run's key is not the one the
     * origin's key chain, as stored, has for the run's head); OV_ESCHEMA (a content that takes over
     * another origin's record id, or does not parse). tail_seq is the origin's newest seq after the
     * op. */
    uint32_t applied;
    uint64_t tail_seq;
    int fork;
    /* A run of this node's own log while it restores it (ov_store_recovering): 1 when the run
     * reached the sender's newest checkpoint and the restore is complete; -1 when it did, but
     * the restored key chain ends in another key than this node's (the restore stays open). */
    int recovered;
    uint64_t batch; /* set by the writer: the number of the batch that carried the op (1, 2, …) */

    /* Completion, called once on the submitting loop's thread (see writer.h). */
    void (*on_done)(ov_write_op *op);
    void *user;
    ov_write_op *next; /* the writer's queue link */
};

/* A zeroed op of the given type (caller fills inputs). NULL on OOM. */
ov_write_op *ov_write_op_new(ov_write_type type);
/* Releases the op, its content/account references and canon. */
void ov_write_op_free(ov_write_op *op);

int ov_store_write_begin(ov_store *store, ov_wtxn **out);
/* Applies one op inside the batch, in a nested transaction: a failing op sets op->result and
 * leaves the batch as it was; a successful op sets result OV_OK and its outputs. now_ms is the
 * batch's timestamp. */
void ov_store_apply(ov_wtxn *txn, ov_write_op *op, int64_t now_ms);
/* Applies a batch (a chain through op->next) the fast way: directly in txn, without a nested
 * transaction per op, with the same outcome as ov_store_apply for each op. That works because an
 * op checks all it can before it writes, so a failing op has usually written nothing. One that
 * fails after writing (a full map, out of memory) spoils the transaction: it is then aborted and
 * begun again (*txn changes), and the other ops are applied once more, each in a nested
 * transaction as ov_store_apply does; the spoiler keeps its error. Returns OV_OK, or the error of
 * beginning again: then *txn is NULL and the batch must be treated as failed. */
int ov_store_apply_batch(ov_wtxn **txn, ov_write_op *batch, int64_t now_ms);
/* Signs the new log head (if the batch appended entries) and commits durably. On failure every op
 * of the batch must be treated as failed (OV_ESTORE or OV_EFULL returned). The txn is gone after.
 */
int ov_store_write_commit(ov_wtxn *txn);
/* The same, but with sign_head 0 the head is left as it is: the batch's entries are durable and
 * chained, and the next commit that signs covers them too. The writer defers signing while more
 * writes wait (see writer.c); ov_store_open signs a tail left unsigned by a crash. */
int ov_store_write_commit_ex(ov_wtxn *txn, int sign_head);
/* The writer's commit: the same as ov_store_write_commit_ex, but it returns before the last flush.
 * The batch's pages are on disk, the meta page that makes them the store's current state is
 * written but not yet flushed: the batch is durable once a later ov_store_sync has returned OV_OK
 * (or a later commit has). A crash before that may undo this commit, and only this one; the store
 * is intact either way. So the flush can run on another thread while the next batch is built. */
int ov_store_write_commit_unflushed(ov_wtxn *txn, int sign_head);
/* Flushes the data file (fdatasync): every commit that returned before this call is durable when
 * it returns OV_OK. Safe on any thread, also while a write transaction is open. OV_EIO on error.
 */
int ov_store_sync(ov_store *store);
/* True when the log has entries after the signed head. */
int ov_store_write_head_pending(const ov_wtxn *txn);
void ov_store_write_abort(ov_wtxn *txn);

/* Begin, apply one op at the current time, commit: for command-line tools that write without a
 * running node. Returns op->result, or the commit error (then also in op->result). */
int ov_store_write_one(ov_store *store, ov_write_op *op);

#endif
