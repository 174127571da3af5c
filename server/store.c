/*
 * The node's storage on LMDB: records with their indexes, the origin log and its signed heads,
 * the change feed, accounts and sessions, all in one environment so that one write transaction
 * changes them together or not at all.
 *
 * Every write runs inside a batch transaction opened by the writer thread, and an op that fails
 * (stale version, deleted record, full map) is undone alone while the others of the batch still
 * commit. Each op checks what can fail before it writes, so the writer's ops run directly in the
 * batch transaction (ov_store_apply_batch); only an op that fails after writing costs a second
 * pass, in which every op gets a nested transaction of its own (ov_store_apply). A nested
 * transaction per op was the rule before, and it was a third of the writer's work: LMDB copies
 * every page the op touches that the batch already dirtied (malloc, zeroing, copy, merge). The
 * batch's log position and change position live in the ov_wtxn and advance only when an op
 * succeeds. Commit signs the new log head once per batch.
 *
 * Durability: the environment runs with MDB_NOMETASYNC. LMDB's commit writes the transaction's
 * pages, fdatasyncs them, and then writes the meta page that makes them the current state; with
 * the flag, that meta page is not flushed by the commit itself but by the next fdatasync of the
 * file: the next commit's, or ov_store_sync. Until then a crash may undo that last commit (never
 * an earlier one, and never leave a broken store: docs/architecture.md, "Durable writes"). Every
 * commit in this file is followed by ov_store_sync, except ov_store_write_commit_unflushed, whose
 * caller (the writer) flushes on another thread while it builds the next batch. Readers see such
 * a commit at once, so the positions that others resume from are served only up to what the last
 * flush covered: the change feed (ov_read_changes, ov_read_last_change) and this node's signed
 * head (ov_read_head). A position handed out is never undone by a crash and then reused.
 *
 * Reads use read-only snapshots recycled through a small free list (MDB_NOTLS makes a reset
 * snapshot usable from any thread), so a GET costs no malloc. Key and value layouts are in
 * docs/storage.md; all integers on disk are big-endian so a data directory can move between
 * machines and keys sort numerically.
 */
#include "server/store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/buf.h"
#include "proto/error.h"
#include "proto/sync.h"
#include "server/lmdb_error.h"
#include "server/search_index.h"

#define SCHEMA_VERSION   1
#define DEFAULT_MAP_SIZE ((size_t)8 << 30)
#define MAX_DBS          24

/* Record value header (big-endian), followed by the canonical JSON bytes:
 *   0 format(1) 1 kind(1) 2 status(1) 3 reserved(1) 4 version(4) 8 created_ms(8)
 *   16 updated_ms(8) 24 origin(16) 40 author(16) 56 content_hash(32) 88 change_seq(8)
 *   96 log_seq(8) = 104 bytes. */
#define RECORD_FORMAT       1
#define RECORD_HEADER_BYTES 104
/* Records arrive through a 1 MiB request body; anything far beyond that is a bug upstream. */
#define RECORD_MAX_BYTES    ((size_t)4 << 20)
#define ACCOUNT_MAX_BYTES   ((size_t)64 << 10)
#define USERNAME_MAX_BYTES  128
#define SESSION_VALUE_BYTES 32

/* Index key: facet ‖ 0 ‖ value ‖ 0 ‖ kind ‖ id. Facet names are short constants; values are at most
 * 96 bytes (ov_record_facets). LMDB's key limit is 511 bytes. */
#define FACET_MAX_BYTES   64
#define VALUE_MAX_BYTES   96
#define INDEX_KEY_MAX     (FACET_MAX_BYTES + 1 + VALUE_MAX_BYTES + 1 + 1 + OV_ID_BYTES)
#define UPDATED_KEY_BYTES (1 + 8 + OV_ID_BYTES)
#define LOG_KEY_BYTES     (OV_ID_BYTES + 8)
#define HEAD_VALUE_BYTES  (OV_LOG_HEAD_BYTES + OV_PUBKEY_BYTES)

#define LIST_MAX_ROWS      20000
#define LIST_ESTIMATE_ROWS 256
#define LIST_MAX_LIMIT     200
#define READ_POOL_MAX      32

static const char META_SCHEMA[] = "schema";
static const char META_NODE[] = "node_id";
static const char META_CHANGE[] = "change_seq";
/* Present while this node waits to restore its own log from its peers (docs/operations.md). */
static const char META_RECOVER[] = "recover";

struct ov_read {
    ov_store *store;
    MDB_txn *txn;
    ov_read *next;
};

/* The change feed position and this node's signed head as of one commit. */
typedef struct {
    uint64_t change_seq;
    int has_head;
    uint8_t head[HEAD_VALUE_BYTES];
} feed_state;

struct ov_store {
    MDB_env *env;
    MDB_dbi records, index, updated, log, heads, changes, accounts, usernames, sessions, meta;
    MDB_dbi checkpoints, forks, idempotency, keys;
    ov_search_index *search;
    ov_search_batch *run_batch; /* the writer's, for received runs (made on first use) */
    ov_id node_id;
    const ov_keypair *key;
    uint8_t pub[OV_PUBKEY_BYTES];
    pthread_mutex_t pool_lock;
    ov_read *pool;
    size_t pool_count;
    /* Guarded by durable_lock: the state of the last commit, and of the last commit a flush
     * covered (what readers of the feed and the head get to see). */
    pthread_mutex_t durable_lock;
    feed_state committed, durable;
    int recovering;      /* under durable_lock: own log not yet restored, record writes refused */
    uint64_t rotated_at; /* writer only: a key entry appended by this process (no more signing) */
};

struct ov_wtxn {
    ov_store *store;
    MDB_txn *txn;
    uint64_t start_log_seq; /* our log's last entry when the batch began */
    uint64_t signed_seq;    /* the entry our signed head covers (0: no head yet) */
    uint64_t log_seq;       /* after the last committed op of the batch */
    uint8_t log_hash[OV_HASH_BYTES];
    int64_t log_time;
    uint64_t change_seq;
    int own_head_set; /* a run of this node's own log was restored: its head is own_head */
    uint8_t own_head[HEAD_VALUE_BYTES];
    int recovered; /* the restore completed in this batch */
};

/* ---- Encoding helpers ----------------------------------------------------------------------- */

static int from_mdb(int rc)
{
    return ov_lmdb_error(rc);
}

/* Cursor loops end with a mix of codes: LMDB's (-30799..-30780), errno (positive), ours (-1..-20)
 * or a callback's. The end of the data is success; LMDB and errno codes are converted. */
static int settle(int rc)
{
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc > 0 || rc < -1000)
        return from_mdb(rc);
    return rc;
}

static int id_equal(const ov_id *a, const ov_id *b)
{
    return memcmp(a->bytes, b->bytes, OV_ID_BYTES) == 0;
}

static void encode_record_header(uint8_t *p, const ov_record_meta *meta)
{
    p[0] = RECORD_FORMAT;
    p[1] = (uint8_t)meta->env.kind;
    p[2] = (uint8_t)meta->env.status;
    p[3] = 0;
    ov_be32_put(p + 4, meta->env.version);
    ov_be64_put(p + 8, (uint64_t)meta->env.created_ms);
    ov_be64_put(p + 16, (uint64_t)meta->env.updated_ms);
    memcpy(p + 24, meta->env.origin.bytes, OV_ID_BYTES);
    memcpy(p + 40, meta->env.author.bytes, OV_ID_BYTES);
    memcpy(p + 56, meta->content_hash, OV_HASH_BYTES);
    ov_be64_put(p + 88, meta->change_seq);
    ov_be64_put(p + 96, meta->log_seq);
}

/* Decodes a records value; OV_ESTORE when it is not one we wrote. */
static int decode_record(const ov_id *id, const MDB_val *value, ov_record_meta *meta,
                         const char **json, size_t *len)
{
    const uint8_t *p = value->mv_data;
    if (value->mv_size < RECORD_HEADER_BYTES || p[0] != RECORD_FORMAT || p[1] >= OV_KIND_COUNT ||
        p[2] >= OV_STATUS_COUNT)
        return OV_ESTORE;
    if (meta) {
        memset(meta, 0, sizeof *meta);
        meta->env.id = *id;
        meta->env.kind = (ov_kind)p[1];
        meta->env.status = (ov_status)p[2];
        meta->env.version = ov_be32_get(p + 4);
        meta->env.created_ms = (int64_t)ov_be64_get(p + 8);
        meta->env.updated_ms = (int64_t)ov_be64_get(p + 16);
        memcpy(meta->env.origin.bytes, p + 24, OV_ID_BYTES);
        memcpy(meta->env.author.bytes, p + 40, OV_ID_BYTES);
        memcpy(meta->content_hash, p + 56, OV_HASH_BYTES);
        meta->change_seq = ov_be64_get(p + 88);
        meta->log_seq = ov_be64_get(p + 96);
    }
    if (json)
        *json = (const char *)p + RECORD_HEADER_BYTES;
    if (len)
        *len = value->mv_size - RECORD_HEADER_BYTES;
    return OV_OK;
}

/* Builds facet ‖ 0 ‖ value ‖ 0 ‖ kind, the prefix of every index row of that (facet, value, kind).
 * Returns its length, or 0 when facet or value are too long to be indexed. */
static size_t index_prefix(uint8_t *out, const char *facet, const char *value, ov_kind kind)
{
    size_t flen = strlen(facet), vlen = strlen(value);
    if (flen == 0 || flen > FACET_MAX_BYTES || vlen > VALUE_MAX_BYTES)
        return 0;
    memcpy(out, facet, flen);
    out[flen] = 0;
    memcpy(out + flen + 1, value, vlen);
    out[flen + 1 + vlen] = 0;
    out[flen + vlen + 2] = (uint8_t)kind;
    return flen + vlen + 3;
}

static void updated_key(uint8_t out[UPDATED_KEY_BYTES], ov_kind kind, int64_t updated_ms,
                        const ov_id *id)
{
    out[0] = (uint8_t)kind;
    ov_be64_put(out + 1, (uint64_t)updated_ms);
    memcpy(out + 9, id->bytes, OV_ID_BYTES);
}

static void log_key(uint8_t out[LOG_KEY_BYTES], const ov_id *origin, uint64_t seq)
{
    memcpy(out, origin->bytes, OV_ID_BYTES);
    ov_be64_put(out + OV_ID_BYTES, seq);
}

static MDB_val val_of(const void *data, size_t size)
{
    MDB_val v = {size, (void *)data};
    return v;
}

/* ---- Opening and closing -------------------------------------------------------------------- */

static int make_data_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0)
        return OV_OK;
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return OV_OK;
    return OV_EIO;
}

static int open_dbs(ov_store *store, MDB_txn *txn)
{
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        {"records", &store->records},
        {"index", &store->index},
        {"updated", &store->updated},
        {"log", &store->log},
        {"heads", &store->heads},
        {"changes", &store->changes},
        {"accounts", &store->accounts},
        {"usernames", &store->usernames},
        {"sessions", &store->sessions},
        {"meta", &store->meta},
        {"checkpoints", &store->checkpoints},
        {"forks", &store->forks},
        {"idempotency", &store->idempotency},
        {"keys", &store->keys},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc)
            return from_mdb(rc);
    }
    return OV_OK;
}

/* A new store is stamped with the schema and the node id; an existing one must match both, so a
 * data directory is never silently taken over by another node key. */
static int check_meta(ov_store *store, MDB_txn *txn, int restore)
{
    MDB_val key = val_of(META_SCHEMA, sizeof META_SCHEMA - 1), value;
    int rc = mdb_get(txn, store->meta, &key, &value);
    if (rc == MDB_NOTFOUND) {
        uint8_t schema[4];
        ov_be32_put(schema, SCHEMA_VERSION);
        value = val_of(schema, sizeof schema);
        rc = mdb_put(txn, store->meta, &key, &value, 0);
        if (rc)
            return from_mdb(rc);
        if (restore) {
            /* A key that existed before its store: its log may be held by peers. */
            MDB_val mark_key = val_of(META_RECOVER, sizeof META_RECOVER - 1), mark = val_of("1", 1);
            rc = mdb_put(txn, store->meta, &mark_key, &mark, 0);
            if (rc)
                return from_mdb(rc);
        }
        key = val_of(META_NODE, sizeof META_NODE - 1);
        value = val_of(store->node_id.bytes, OV_ID_BYTES);
        return from_mdb(mdb_put(txn, store->meta, &key, &value, 0));
    }
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != 4 || ov_be32_get(value.mv_data) != SCHEMA_VERSION)
        return OV_ESTORE;
    key = val_of(META_NODE, sizeof META_NODE - 1);
    rc = mdb_get(txn, store->meta, &key, &value);
    if (rc)
        return rc == MDB_NOTFOUND ? OV_ESTORE : from_mdb(rc);
    if (value.mv_size != OV_ID_BYTES)
        return OV_ESTORE;
    /* The node id is the genesis key's; a rotated key is checked against the key chain next. */
    memcpy(store->node_id.bytes, value.mv_data, OV_ID_BYTES);
    return OV_OK;
}

static void key_row(uint8_t out[LOG_KEY_BYTES], const ov_id *origin, uint64_t seq)
{
    memcpy(out, origin->bytes, OV_ID_BYTES);
    ov_be64_put(out + OV_ID_BYTES, seq);
}

/* Puts cursor on the last row whose key is below seek, or equal to it when inclusive (origin ‖ seq
 * keys: the newest row of an origin up to a position). MDB_NOTFOUND when there is none; the caller
 * checks that the row found is still of the origin it wants. */
static int cursor_last_before(MDB_cursor *cursor, const uint8_t *seek, size_t seek_len,
                              int inclusive, MDB_val *key, MDB_val *value)
{
    *key = val_of(seek, seek_len);
    int rc = mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(cursor, key, value, MDB_LAST);
    if (rc == 0 && (!inclusive || key->mv_size != seek_len || memcmp(key->mv_data, seek, seek_len)))
        return mdb_cursor_get(cursor, key, value, MDB_PREV);
    return rc;
}

/* The key that signs origin's heads at seq: the one the last key entry before seq introduced, or
 * the genesis key (row 0). *at receives that row's seq. OV_ENOTFOUND when origin has no row. */
static int key_before(MDB_txn *txn, const ov_store *store, const ov_id *origin, uint64_t seq,
                      uint8_t pub[OV_PUBKEY_BYTES], uint64_t *at)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->keys, &cursor);
    if (rc)
        return from_mdb(rc);
    uint8_t seek[LOG_KEY_BYTES];
    key_row(seek, origin, seq);
    MDB_val key, value;
    rc = cursor_last_before(cursor, seek, sizeof seek, 0, &key, &value);
    int found =
        rc == 0 && key.mv_size == LOG_KEY_BYTES && !memcmp(key.mv_data, origin->bytes, OV_ID_BYTES);
    if (found && value.mv_size != OV_PUBKEY_BYTES)
        rc = OV_ESTORE;
    else if (found) {
        memcpy(pub, value.mv_data, OV_PUBKEY_BYTES);
        if (at)
            *at = ov_be64_get((const uint8_t *)key.mv_data + OV_ID_BYTES);
        rc = OV_OK;
    } else if (rc == 0 || rc == MDB_NOTFOUND)
        rc = OV_ENOTFOUND;
    else
        rc = from_mdb(rc);
    mdb_cursor_close(cursor);
    return rc;
}

static int put_key(MDB_txn *txn, const ov_store *store, const ov_id *origin, uint64_t seq,
                   const uint8_t pub[OV_PUBKEY_BYTES])
{
    uint8_t row[LOG_KEY_BYTES];
    key_row(row, origin, seq);
    MDB_val key = val_of(row, sizeof row), value = val_of(pub, OV_PUBKEY_BYTES);
    return from_mdb(mdb_put(txn, store->keys, &key, &value, 0));
}

static int owns_key(const ov_id *origin, const uint8_t pub[OV_PUBKEY_BYTES])
{
    ov_id owner;
    ov_log_node_id(pub, &owner);
    return id_equal(&owner, origin);
}

/* The key given must be this node's current one: its genesis key until a key entry of its log
 * introduced the next (OV_EDENIED for an earlier key of this node, OV_EINVAL for a stranger's).
 * Origins held from before key chains were kept get their genesis row (their heads' keys were
 * all genesis keys then), and this node's meta says whether it still restores its own log. */
static int check_key(ov_store *store, MDB_txn *txn)
{
    uint8_t current[OV_PUBKEY_BYTES];
    int rc = key_before(txn, store, &store->node_id, UINT64_MAX, current, NULL);
    if (rc == OV_ENOTFOUND) {
        if (!owns_key(&store->node_id, store->pub))
            return OV_EINVAL;
        rc = put_key(txn, store, &store->node_id, 0, store->pub);
    } else if (rc == OV_OK && memcmp(current, store->pub, OV_PUBKEY_BYTES) != 0) {
        return owns_key(&store->node_id, store->pub) ? OV_EDENIED : OV_EINVAL;
    }
    if (rc)
        return rc;
    MDB_cursor *cursor;
    rc = mdb_cursor_open(txn, store->heads, &cursor);
    if (rc)
        return from_mdb(rc);
    MDB_val key, value;
    int step = MDB_FIRST;
    while ((rc = mdb_cursor_get(cursor, &key, &value, step)) == 0) {
        step = MDB_NEXT;
        if (key.mv_size != OV_ID_BYTES || value.mv_size != HEAD_VALUE_BYTES)
            continue;
        ov_id origin;
        memcpy(origin.bytes, key.mv_data, OV_ID_BYTES);
        const uint8_t *pub = (const uint8_t *)value.mv_data + OV_LOG_HEAD_BYTES;
        uint8_t held[OV_PUBKEY_BYTES];
        if (owns_key(&origin, pub) &&
            key_before(txn, store, &origin, UINT64_MAX, held, NULL) == OV_ENOTFOUND) {
            uint8_t copy[OV_PUBKEY_BYTES];
            memcpy(copy, pub, sizeof copy);
            if ((rc = put_key(txn, store, &origin, 0, copy)) != OV_OK)
                break;
        }
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND && rc != OV_OK)
        return rc > 0 || rc < -1000 ? from_mdb(rc) : rc;
    key = val_of(META_RECOVER, sizeof META_RECOVER - 1);
    rc = mdb_get(txn, store->meta, &key, &value);
    store->recovering = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? OV_OK : from_mdb(rc);
}

static uint64_t read_change_seq(MDB_txn *txn, const ov_store *store);

static int load_feed_state(const ov_store *store, MDB_txn *txn, feed_state *state)
{
    memset(state, 0, sizeof *state);
    state->change_seq = read_change_seq(txn, store);
    MDB_val key = val_of(store->node_id.bytes, OV_ID_BYTES), value;
    int rc = mdb_get(txn, store->heads, &key, &value);
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != HEAD_VALUE_BYTES)
        return OV_ESTORE;
    state->has_head = 1;
    memcpy(state->head, value.mv_data, HEAD_VALUE_BYTES);
    return OV_OK;
}

int ov_store_open(const ov_store_options *options, ov_store **out)
{
    *out = NULL;
    if (!options || !options->dir || !options->key)
        return OV_EINVAL;
    int rc = make_data_dir(options->dir);
    if (rc)
        return rc;
    ov_store *store = calloc(1, sizeof *store);
    if (!store)
        return OV_ENOMEM;
    store->key = options->key;
    ov_keypair_public(options->key, store->pub);
    ov_log_node_id(store->pub, &store->node_id);
    pthread_mutex_init(&store->pool_lock, NULL);
    pthread_mutex_init(&store->durable_lock, NULL);

    MDB_txn *txn = NULL;
    rc = mdb_env_create(&store->env);
    if (rc) {
        store->env = NULL;
        rc = from_mdb(rc);
        goto fail;
    }
    rc = mdb_env_set_maxdbs(store->env, MAX_DBS);
    if (!rc)
        rc = mdb_env_set_mapsize(store->env,
                                 options->map_size ? options->map_size : DEFAULT_MAP_SIZE);
    if (rc) {
        rc = from_mdb(rc);
        goto fail;
    }
    rc = mdb_env_open(store->env, options->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc) {
        rc = (rc == ENOENT || rc == EACCES || rc == EROFS || rc == ENOTDIR) ? OV_EIO : from_mdb(rc);
        goto fail;
    }
    rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc) {
        rc = from_mdb(rc);
        goto fail;
    }
    int search_rebuild = 0;
    rc = open_dbs(store, txn);
    if (!rc)
        rc = check_meta(store, txn, options->restore);
    if (!rc)
        rc = check_key(store, txn);
    if (!rc)
        rc = ov_search_index_open(txn, &store->search, &search_rebuild);
    if (!rc)
        rc = load_feed_state(store, txn, &store->committed);
    if (rc) {
        mdb_txn_abort(txn);
        goto fail;
    }
    store->durable = store->committed; /* durable once the sync below returns */
    rc = mdb_txn_commit(txn);
    if (!rc)
        rc = mdb_env_sync(store->env, 1);
    if (rc) {
        rc = from_mdb(rc);
        goto fail;
    }
    /* Entries committed by batches that deferred signing, before a crash: sign them now. */
    ov_wtxn *w = NULL;
    rc = ov_store_write_begin(store, &w);
    if (!rc && !ov_store_write_head_pending(w)) {
        ov_store_write_abort(w);
    } else if (!rc) {
        rc = ov_store_write_commit(w);
    }
    /* A store from before the search index: index what it holds. */
    if (!rc && search_rebuild)
        rc = ov_store_search_rebuild(store);
    if (rc) {
        ov_search_index_free(store->search);
        mdb_env_close(store->env);
        pthread_mutex_destroy(&store->durable_lock);
        pthread_mutex_destroy(&store->pool_lock);
        free(store);
        return rc;
    }
    *out = store;
    return OV_OK;

fail:
    ov_search_index_free(store->search);
    if (store->env)
        mdb_env_close(store->env);
    pthread_mutex_destroy(&store->durable_lock);
    pthread_mutex_destroy(&store->pool_lock);
    free(store);
    return rc;
}

void ov_store_close(ov_store *store)
{
    if (!store)
        return;
    while (store->pool) {
        ov_read *read = store->pool;
        store->pool = read->next;
        mdb_txn_abort(read->txn);
        free(read);
    }
    ov_store_sync(store); /* a last unflushed commit is durable once the store is closed */
    mdb_env_close(store->env);
    ov_search_batch_free(store->run_batch);
    ov_search_index_free(store->search);
    pthread_mutex_destroy(&store->durable_lock);
    pthread_mutex_destroy(&store->pool_lock);
    free(store);
}

ov_search_index *ov_store_search_index(ov_store *store)
{
    return store->search;
}

MDB_txn *ov_read_txn(ov_read *read)
{
    return read->txn;
}

/* Indexes up to REBUILD_BATCH published records after *after (all-zero: from the first) in one
 * transaction; *after moves to the last record read, *done is set at the end. Batches keep
 * LMDB's dirty-page list short: one transaction over a whole store spent most of its time
 * searching that list. */
#define REBUILD_BATCH 2000
static int rebuild_batch(ov_store *store, ov_id *after, int first, int *done)
{
    MDB_txn *txn;
    int rc = from_mdb(mdb_txn_begin(store->env, NULL, 0, &txn));
    if (rc)
        return rc;
    if (first)
        rc = ov_search_index_clear(store->search, txn);
    MDB_cursor *cursor = NULL;
    if (!rc)
        rc = from_mdb(mdb_cursor_open(txn, store->records, &cursor));
    MDB_val key = val_of(after->bytes, OV_ID_BYTES), value;
    int mrc = MDB_NOTFOUND;
    if (!rc) {
        mrc = mdb_cursor_get(cursor, &key, &value, first ? MDB_FIRST : MDB_SET_RANGE);
        if (!first && mrc == 0 && key.mv_size == OV_ID_BYTES &&
            !memcmp(key.mv_data, after->bytes, OV_ID_BYTES))
            mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    ov_search_batch *batch = NULL;
    if (!rc)
        rc = ov_search_batch_new(store->search, &batch);
    int indexed = 0;
    while (!rc && mrc == 0 && indexed < REBUILD_BATCH) {
        ov_record_meta meta;
        const char *json;
        size_t len;
        if (key.mv_size != OV_ID_BYTES) {
            rc = OV_ESTORE;
            break;
        }
        memcpy(after->bytes, key.mv_data, OV_ID_BYTES);
        rc = decode_record(after, &value, &meta, &json, &len);
        if (rc)
            break;
        if (meta.env.status == OV_STATUS_PUBLISHED) {
            json_t *record = json_loadb(json, len, 0, NULL);
            if (!record) {
                rc = OV_ESTORE;
                break;
            }
            rc = ov_search_batch_add(batch, txn, &meta, record);
            json_decref(record);
            indexed++;
        }
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    if (cursor)
        mdb_cursor_close(cursor);
    if (!rc && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = from_mdb(mrc);
    if (!rc)
        rc = ov_search_batch_finish(batch, txn);
    ov_search_batch_free(batch);
    *done = mrc == MDB_NOTFOUND;
    /* The index counts as built only once the last batch is in. */
    if (!rc && *done)
        rc = ov_search_index_mark_complete(store->search, txn);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    return rc ? from_mdb(rc) : ov_store_sync(store);
}

int ov_store_search_rebuild(ov_store *store)
{
    ov_id after;
    memset(&after, 0, sizeof after);
    int done = 0, rc = OV_OK;
    for (int first = 1; !rc && !done; first = 0)
        rc = rebuild_batch(store, &after, first, &done);
    return rc;
}

int ov_store_recovering(ov_store *store)
{
    pthread_mutex_lock(&store->durable_lock);
    int recovering = store->recovering;
    pthread_mutex_unlock(&store->durable_lock);
    return recovering;
}

int ov_store_new_log(ov_store *store)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (rc)
        return from_mdb(rc);
    MDB_val key = val_of(META_RECOVER, sizeof META_RECOVER - 1);
    rc = mdb_del(txn, store->meta, &key, NULL);
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return from_mdb(rc);
    pthread_mutex_lock(&store->durable_lock);
    store->recovering = 0;
    pthread_mutex_unlock(&store->durable_lock);
    return mdb_env_sync(store->env, 1) ? OV_EIO : OV_OK;
}

const ov_id *ov_store_node_id(const ov_store *store)
{
    return &store->node_id;
}

/* ---- Reads ---------------------------------------------------------------------------------- */

int ov_read_begin(ov_store *store, ov_read **out)
{
    *out = NULL;
    pthread_mutex_lock(&store->pool_lock);
    ov_read *read = store->pool;
    if (read) {
        store->pool = read->next;
        store->pool_count--;
    }
    pthread_mutex_unlock(&store->pool_lock);
    if (read) {
        int rc = mdb_txn_renew(read->txn);
        if (rc == 0) {
            read->next = NULL;
            *out = read;
            return OV_OK;
        }
        mdb_txn_abort(read->txn);
        free(read);
    }
    read = calloc(1, sizeof *read);
    if (!read)
        return OV_ENOMEM;
    read->store = store;
    int rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &read->txn);
    if (rc) {
        free(read);
        return from_mdb(rc);
    }
    *out = read;
    return OV_OK;
}

void ov_read_end(ov_read *read)
{
    if (!read)
        return;
    ov_store *store = read->store;
    mdb_txn_reset(read->txn);
    pthread_mutex_lock(&store->pool_lock);
    if (store->pool_count < READ_POOL_MAX) {
        read->next = store->pool;
        store->pool = read;
        store->pool_count++;
        read = NULL;
    }
    pthread_mutex_unlock(&store->pool_lock);
    if (read) {
        mdb_txn_abort(read->txn);
        free(read);
    }
}

static int get_record(MDB_txn *txn, const ov_store *store, const ov_id *id, ov_record_meta *meta,
                      const char **json, size_t *len)
{
    MDB_val key = val_of(id->bytes, OV_ID_BYTES), value;
    int rc = mdb_get(txn, store->records, &key, &value);
    if (rc)
        return from_mdb(rc);
    return decode_record(id, &value, meta, json, len);
}

int ov_read_record(ov_read *read, const ov_id *id, ov_record_meta *meta, const char **json,
                   size_t *len)
{
    return get_record(read->txn, read->store, id, meta, json, len);
}

/* One descending stream of ids: the index rows under one (facet, value, kind) prefix. */
typedef struct {
    MDB_cursor *cursor;
    uint8_t prefix[INDEX_KEY_MAX];
    size_t prefix_len;
    ov_id head;
    int valid;
} id_stream;

static int stream_take(id_stream *s, int rc, const MDB_val *key)
{
    s->valid = 0;
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc)
        return from_mdb(rc);
    if (key->mv_size != s->prefix_len + OV_ID_BYTES ||
        memcmp(key->mv_data, s->prefix, s->prefix_len) != 0)
        return OV_OK;
    memcpy(s->head.bytes, (const uint8_t *)key->mv_data + s->prefix_len, OV_ID_BYTES);
    s->valid = 1;
    return OV_OK;
}

/* Positions s on the newest id below before (zero: the newest of all). A value too long to have
 * been indexed gives an empty stream. */
static int stream_open(id_stream *s, ov_read *read, const char *facet, const char *value,
                       ov_kind kind, const ov_id *before)
{
    memset(s, 0, sizeof *s);
    s->prefix_len = index_prefix(s->prefix, facet, value, kind);
    if (s->prefix_len == 0)
        return OV_OK;
    int rc = mdb_cursor_open(read->txn, read->store->index, &s->cursor);
    if (rc) {
        s->cursor = NULL;
        return from_mdb(rc);
    }
    uint8_t seek[INDEX_KEY_MAX];
    memcpy(seek, s->prefix, s->prefix_len);
    if (ov_id_is_zero(before))
        memset(seek + s->prefix_len, 0xff, OV_ID_BYTES);
    else
        memcpy(seek + s->prefix_len, before->bytes, OV_ID_BYTES);
    MDB_val key = val_of(seek, s->prefix_len + OV_ID_BYTES), data;
    rc = mdb_cursor_get(s->cursor, &key, &data, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(s->cursor, &key, &data, MDB_LAST);
    else if (rc == 0)
        rc = mdb_cursor_get(s->cursor, &key, &data, MDB_PREV);
    return stream_take(s, rc, &key);
}

static int stream_next(id_stream *s)
{
    if (!s->valid)
        return OV_OK;
    MDB_val key, data;
    int rc = mdb_cursor_get(s->cursor, &key, &data, MDB_PREV);
    return stream_take(s, rc, &key);
}

static void stream_close(id_stream *s)
{
    if (s->cursor)
        mdb_cursor_close(s->cursor);
    s->cursor = NULL;
    s->valid = 0;
}

/* The OR of one facet's values: the union of several descending streams, without duplicates
 * (a record with two matching themes appears once). */
typedef struct {
    id_stream streams[OV_LIST_MAX_VALUES];
    int count;
} id_union;

static void union_close(id_union *u)
{
    for (int i = 0; i < u->count; i++)
        stream_close(&u->streams[i]);
    u->count = 0;
}

static int union_open(id_union *u, ov_read *read, const char *facet, const char *const *values,
                      int value_count, ov_kind kind, const ov_id *before)
{
    u->count = 0;
    for (int i = 0; i < value_count; i++) {
        int rc = stream_open(&u->streams[u->count++], read, facet, values[i], kind, before);
        if (rc) {
            union_close(u);
            return rc;
        }
    }
    return OV_OK;
}

/* The largest head, or 0 when every stream is exhausted. */
static int union_top(const id_union *u, ov_id *out)
{
    int found = 0;
    for (int i = 0; i < u->count; i++) {
        const id_stream *s = &u->streams[i];
        if (s->valid && (!found || ov_id_compare(&s->head, out) > 0)) {
            *out = s->head;
            found = 1;
        }
    }
    return found;
}

static int union_advance(id_union *u, const ov_id *id)
{
    for (int i = 0; i < u->count; i++) {
        id_stream *s = &u->streams[i];
        if (s->valid && id_equal(&s->head, id)) {
            int rc = stream_next(s);
            if (rc)
                return rc;
        }
    }
    return OV_OK;
}

/* A filter as the list scan sees it: the status mask becomes one more OR-filter on "status". */
typedef struct {
    const char *facet;
    const char *values[OV_LIST_MAX_VALUES];
    int value_count;
} list_filter;

/* Counts a filter's rows below before, up to LIST_ESTIMATE_ROWS: enough to tell a selective
 * filter from a broad one without paying for a full count. */
static int estimate_rows(ov_read *read, const list_filter *f, ov_kind kind, const ov_id *before,
                         size_t *count)
{
    id_union u;
    int rc = union_open(&u, read, f->facet, f->values, f->value_count, kind, before);
    if (rc)
        return rc;
    size_t n = 0;
    for (int i = 0; i < u.count && n < LIST_ESTIMATE_ROWS && !rc; i++) {
        id_stream *s = &u.streams[i];
        while (s->valid && n < LIST_ESTIMATE_ROWS && !rc) {
            n++;
            rc = stream_next(s);
        }
    }
    union_close(&u);
    *count = n;
    return rc;
}

/* True when id has an index row for any of f's values. */
static int filter_matches(ov_read *read, const list_filter *f, ov_kind kind, const ov_id *id,
                          int *match)
{
    *match = 0;
    for (int i = 0; i < f->value_count; i++) {
        uint8_t key_bytes[INDEX_KEY_MAX];
        size_t n = index_prefix(key_bytes, f->facet, f->values[i], kind);
        if (n == 0)
            continue;
        memcpy(key_bytes + n, id->bytes, OV_ID_BYTES);
        MDB_val key = val_of(key_bytes, n + OV_ID_BYTES), value;
        int rc = mdb_get(read->txn, read->store->index, &key, &value);
        if (rc == 0) {
            *match = 1;
            return OV_OK;
        }
        if (rc != MDB_NOTFOUND)
            return from_mdb(rc);
    }
    return OV_OK;
}

int ov_read_list(ov_read *read, const ov_list_query *query, ov_list_fn fn, void *ctx, ov_id *next)
{
    memset(next, 0, sizeof *next);
    if (!query || !fn || (unsigned)query->kind >= OV_KIND_COUNT || query->filter_count < 0 ||
        query->filter_count > OV_LIST_MAX_FILTERS || query->limit < 1 ||
        query->limit > LIST_MAX_LIMIT)
        return OV_EINVAL;

    list_filter filters[OV_LIST_MAX_FILTERS + 1];
    int filter_count = 0;
    for (int i = 0; i < query->filter_count; i++) {
        const ov_list_filter *in = &query->filters[i];
        if (!in->facet || in->value_count < 1 || in->value_count > OV_LIST_MAX_VALUES)
            return OV_EINVAL;
        list_filter *f = &filters[filter_count++];
        f->facet = in->facet;
        f->value_count = in->value_count;
        for (int v = 0; v < in->value_count; v++) {
            if (!in->values[v])
                return OV_EINVAL;
            f->values[v] = in->values[v];
        }
    }
    unsigned mask = query->status_mask ? query->status_mask : 1u << OV_STATUS_PUBLISHED;
    list_filter *status = &filters[filter_count++];
    status->facet = "status";
    status->value_count = 0;
    for (int s = 0; s < OV_STATUS_COUNT; s++)
        if (mask & (1u << s))
            status->values[status->value_count++] = ov_status_name((ov_status)s);
    if (status->value_count == 0)
        return OV_OK;

    /* The scan is driven by the filter with the fewest rows; the others are point lookups. */
    int driver = 0;
    size_t best = (size_t)-1;
    for (int i = 0; i < filter_count; i++) {
        size_t rows;
        int rc = estimate_rows(read, &filters[i], query->kind, &query->before, &rows);
        if (rc)
            return rc;
        if (rows < best) {
            best = rows;
            driver = i;
        }
        if (rows == 0)
            return OV_OK;
    }

    id_union u;
    int rc = union_open(&u, read, filters[driver].facet, filters[driver].values,
                        filters[driver].value_count, query->kind, &query->before);
    if (rc)
        return rc;
    size_t delivered = 0, examined = 0;
    ov_id id;
    while (union_top(&u, &id)) {
        if (delivered == query->limit || examined == LIST_MAX_ROWS) {
            /* More candidates remain: the next page starts below the last one looked at. */
            break;
        }
        examined++;
        rc = union_advance(&u, &id);
        if (rc)
            break;
        *next = id;
        int match = 1;
        for (int i = 0; i < filter_count && match && !rc; i++)
            if (i != driver)
                rc = filter_matches(read, &filters[i], query->kind, &id, &match);
        if (rc)
            break;
        if (!match)
            continue;
        ov_record_meta meta;
        const char *json;
        size_t len;
        rc = get_record(read->txn, read->store, &id, &meta, &json, &len);
        if (rc == OV_ENOTFOUND) {
            rc = OV_OK; /* an index row without its record would be a bug; skip, never fail */
            continue;
        }
        if (rc)
            break;
        if (meta.env.kind != query->kind || !(mask & (1u << meta.env.status)))
            continue;
        int verdict = fn(ctx, &meta, json, len);
        if (verdict < 0) {
            rc = verdict;
            break;
        }
        if (verdict == 0)
            delivered++;
    }
    if (!rc && !union_top(&u, &id))
        memset(next, 0, sizeof *next); /* nothing left: no further page */
    union_close(&u);
    if (rc)
        memset(next, 0, sizeof *next);
    return rc;
}

static uint64_t read_change_seq(MDB_txn *txn, const ov_store *store)
{
    MDB_val key = val_of(META_CHANGE, sizeof META_CHANGE - 1), value;
    if (mdb_get(txn, store->meta, &key, &value) != 0 || value.mv_size != 8)
        return 0;
    return ov_be64_get(value.mv_data);
}

int ov_read_changes(ov_read *read, uint64_t since, size_t limit, ov_change_fn fn, void *ctx,
                    uint64_t *last)
{
    return ov_read_changes_upto(read, since, ov_read_last_change(read), limit, fn, ctx, last);
}

int ov_read_changes_upto(ov_read *read, uint64_t since, uint64_t upto, size_t limit,
                         ov_change_fn fn, void *ctx, uint64_t *last)
{
    *last = since;
    if (limit == 0 || since >= upto)
        return OV_OK;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(read->txn, read->store->changes, &cursor);
    if (rc)
        return from_mdb(rc);
    uint8_t seek[8];
    ov_be64_put(seek, since + 1);
    MDB_val key = val_of(seek, sizeof seek), value;
    size_t delivered = 0;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && delivered < limit) {
        if (key.mv_size != 8 || value.mv_size != OV_ID_BYTES) {
            rc = OV_ESTORE;
            break;
        }
        uint64_t seq = ov_be64_get(key.mv_data);
        if (seq > upto)
            break;
        ov_id id;
        memcpy(id.bytes, value.mv_data, OV_ID_BYTES);
        ov_record_meta meta;
        const char *json;
        size_t len;
        rc = get_record(read->txn, read->store, &id, &meta, &json, &len);
        if (rc)
            break;
        rc = fn(ctx, seq, &meta, json, len);
        if (rc < 0)
            break;
        *last = seq;
        delivered++;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return settle(rc);
}

uint64_t ov_read_snapshot_change(ov_read *read)
{
    return read_change_seq(read->txn, read->store);
}

uint64_t ov_read_last_change(ov_read *read)
{
    uint64_t snapshot = read_change_seq(read->txn, read->store);
    pthread_mutex_lock(&read->store->durable_lock);
    uint64_t durable = read->store->durable.change_seq;
    pthread_mutex_unlock(&read->store->durable_lock);
    return snapshot < durable ? snapshot : durable;
}

int ov_read_head(ov_read *read, const ov_id *origin, ov_log_head *head,
                 uint8_t pub[OV_PUBKEY_BYTES])
{
    MDB_val key = val_of(origin->bytes, OV_ID_BYTES), value;
    int rc = mdb_get(read->txn, read->store->heads, &key, &value);
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != HEAD_VALUE_BYTES)
        return OV_ESTORE;
    ov_log_head stored;
    if (ov_log_head_decode(value.mv_data, OV_LOG_HEAD_BYTES, &stored) != OV_OK)
        return OV_ESTORE;
    const uint8_t *bytes = value.mv_data;
    uint8_t durable[HEAD_VALUE_BYTES];
    if (id_equal(origin, &read->store->node_id)) {
        /* Our own head, as far as a flush has covered it: a head signed by a commit that is not
         * yet durable could be undone by a crash and then signed again over other entries. */
        pthread_mutex_lock(&read->store->durable_lock);
        int has = read->store->durable.has_head;
        memcpy(durable, read->store->durable.head, sizeof durable);
        pthread_mutex_unlock(&read->store->durable_lock);
        ov_log_head older;
        if (!has || ov_log_head_decode(durable, OV_LOG_HEAD_BYTES, &older) != OV_OK)
            return OV_ENOTFOUND;
        if (older.seq < stored.seq) {
            stored = older;
            bytes = durable;
        }
    }
    if (head)
        *head = stored;
    if (pub)
        memcpy(pub, bytes + OV_LOG_HEAD_BYTES, OV_PUBKEY_BYTES);
    return OV_OK;
}

/* The record of id, read through a cursor that follows the log: where the log's entries come in
 * the order of their records' ids (a log of records created one after another, as a clone or a
 * new peer reads it), each entry's record is the one after the last, found by one step instead
 * of a search from the root; that search was a third of a node's CPU while it served a clone.
 * *at says whether the cursor stands on a record. */
static int follow_record(MDB_cursor *records, int *at, const ov_id *id, ov_record_meta *meta,
                         const char **json, size_t *len)
{
    MDB_val key, value;
    int rc = MDB_NOTFOUND;
    if (*at) {
        rc = mdb_cursor_get(records, &key, &value, MDB_NEXT);
        if (rc == 0 && (key.mv_size != OV_ID_BYTES || memcmp(key.mv_data, id->bytes, OV_ID_BYTES)))
            rc = MDB_NOTFOUND;
    }
    if (rc == MDB_NOTFOUND) {
        key = val_of(id->bytes, OV_ID_BYTES);
        rc = mdb_cursor_get(records, &key, &value, MDB_SET_KEY);
    }
    *at = rc == 0;
    if (rc)
        return from_mdb(rc);
    return decode_record(id, &value, meta, json, len);
}

int ov_read_log_versions(ov_read *read, const ov_id *origin, uint64_t from_seq, size_t limit,
                         ov_log_version_fn fn, void *ctx)
{
    MDB_cursor *cursor, *records;
    int rc = mdb_cursor_open(read->txn, read->store->log, &cursor);
    if (rc)
        return from_mdb(rc);
    if ((rc = mdb_cursor_open(read->txn, read->store->records, &records)) != 0) {
        mdb_cursor_close(cursor);
        return from_mdb(rc);
    }
    int at_record = 0;
    uint8_t seek[LOG_KEY_BYTES];
    log_key(seek, origin, from_seq);
    MDB_val key = val_of(seek, sizeof seek), value;
    size_t delivered = 0;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && delivered < limit) {
        if (key.mv_size != LOG_KEY_BYTES || memcmp(key.mv_data, origin->bytes, OV_ID_BYTES))
            break;
        ov_log_entry entry;
        if (ov_log_entry_decode(value.mv_data, value.mv_size, &entry) != OV_OK) {
            rc = OV_ESTORE;
            break;
        }
        /* Only the current version has content: superseded and erased content is not kept, the
         * chain still verifies through the hashes. */
        const char *content = NULL;
        size_t len = 0;
        ov_record_meta meta;
        if (entry.op == OV_OP_KEY) {
            /* A key entry's content is the key it introduces, kept in the key chain. */
            uint8_t row[LOG_KEY_BYTES];
            key_row(row, origin, entry.seq);
            MDB_val kk = val_of(row, sizeof row), kv;
            int found = mdb_get(read->txn, read->store->keys, &kk, &kv) == 0 &&
                        kv.mv_size == OV_PUBKEY_BYTES;
            rc = fn(ctx, &entry, value.mv_data, NULL, found ? kv.mv_data : NULL,
                    found ? OV_PUBKEY_BYTES : 0);
            if (rc < 0)
                break;
            delivered++;
            rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
            continue;
        }
        int current =
            (entry.op == OV_OP_PUT || entry.op == OV_OP_DELETE) &&
            follow_record(records, &at_record, &entry.record, &meta, &content, &len) == OV_OK &&
            memcmp(meta.content_hash, entry.content_hash, OV_HASH_BYTES) == 0;
        if (!current) {
            content = NULL;
            len = 0;
        }
        rc = fn(ctx, &entry, value.mv_data, current ? &meta : NULL, content, len);
        if (rc < 0)
            break;
        delivered++;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(records);
    mdb_cursor_close(cursor);
    return settle(rc);
}

typedef struct {
    ov_log_fn fn;
    void *ctx;
} public_log;

/* Content travels to everyone only while it is the record's current, public version: drafts
 * are given out as their entry alone. */
static int on_public_version(void *ctx, const ov_log_entry *entry,
                             const uint8_t bytes[OV_LOG_ENTRY_BYTES], const ov_record_meta *meta,
                             const char *content, size_t len)
{
    (void)bytes;
    const public_log *log = ctx;
    if (entry->op == OV_OP_KEY) /* the new key: public */
        return log->fn(log->ctx, entry, content, len);
    if (!meta || meta->env.status == OV_STATUS_DRAFT)
        return log->fn(log->ctx, entry, NULL, 0);
    return log->fn(log->ctx, entry, content, len);
}

int ov_read_log(ov_read *read, const ov_id *origin, uint64_t from_seq, size_t limit, ov_log_fn fn,
                void *ctx)
{
    public_log log = {fn, ctx};
    return ov_read_log_versions(read, origin, from_seq, limit, on_public_version, &log);
}

/* ---- Idempotency keys ----------------------------------------------------------------------- */

#define IDEMPOTENCY_FORMAT      1
#define IDEMPOTENCY_VALUE_BYTES 36
#define IDEMPOTENCY_KEY_BYTES   (OV_ID_BYTES + OV_IDEMPOTENCY_KEY_MAX)

int ov_idempotency_key_valid(const char *key, size_t len)
{
    if (!key || len == 0 || len > OV_IDEMPOTENCY_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        if (!ok)
            return 0;
    }
    return 1;
}

/* account ‖ key: the rows of one account lie together. Returns the length, 0 for a bad key. */
static size_t idempotency_key(uint8_t out[IDEMPOTENCY_KEY_BYTES], const ov_id *account,
                              const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (!ov_idempotency_key_valid(key, len))
        return 0;
    memcpy(out, account->bytes, OV_ID_BYTES);
    memcpy(out + OV_ID_BYTES, key, len);
    return OV_ID_BYTES + len;
}

static void encode_idempotency(uint8_t p[IDEMPOTENCY_VALUE_BYTES],
                               const ov_idempotency_answer *answer)
{
    memset(p, 0, IDEMPOTENCY_VALUE_BYTES);
    p[0] = IDEMPOTENCY_FORMAT;
    p[1] = answer->request;
    p[2] = (uint8_t)answer->kind;
    ov_be16_put(p + 4, answer->status);
    ov_be32_put(p + 8, answer->version);
    ov_be64_put(p + 12, (uint64_t)answer->time_ms);
    memcpy(p + 20, answer->record.bytes, OV_ID_BYTES);
}

static int decode_idempotency(const MDB_val *value, ov_idempotency_answer *answer)
{
    const uint8_t *p = value->mv_data;
    if (value->mv_size != IDEMPOTENCY_VALUE_BYTES || p[0] != IDEMPOTENCY_FORMAT ||
        p[2] >= OV_KIND_COUNT)
        return OV_ESTORE;
    memset(answer, 0, sizeof *answer);
    answer->request = p[1];
    answer->kind = (ov_kind)p[2];
    answer->status = (uint16_t)(p[4] << 8 | p[5]);
    answer->version = ov_be32_get(p + 8);
    answer->time_ms = (int64_t)ov_be64_get(p + 12);
    memcpy(answer->record.bytes, p + 20, OV_ID_BYTES);
    return OV_OK;
}

static int get_idempotency(MDB_txn *txn, const ov_store *store, const ov_id *account,
                           const char *key, ov_idempotency_answer *answer)
{
    uint8_t key_bytes[IDEMPOTENCY_KEY_BYTES];
    size_t n = idempotency_key(key_bytes, account, key);
    if (n == 0)
        return OV_EINVAL;
    MDB_val k = val_of(key_bytes, n), value;
    int rc = mdb_get(txn, store->idempotency, &k, &value);
    if (rc)
        return from_mdb(rc);
    return decode_idempotency(&value, answer);
}

int ov_read_idempotency(ov_read *read, const ov_id *account, const char *key,
                        ov_idempotency_answer *answer)
{
    return get_idempotency(read->txn, read->store, account, key, answer);
}

int ov_idempotency_matches(const ov_idempotency_answer *answer, uint8_t request, ov_kind kind,
                           const ov_id *record)
{
    if (answer->request != request || answer->kind != kind)
        return 0;
    return !record || ov_id_is_zero(record) || id_equal(record, &answer->record);
}

static int parse_account(const MDB_val *value, json_t **account)
{
    json_t *parsed = json_loadb(value->mv_data, value->mv_size, 0, NULL);
    if (!parsed || !json_is_object(parsed)) {
        json_decref(parsed);
        return OV_ESTORE;
    }
    *account = parsed;
    return OV_OK;
}

int ov_read_account_json(ov_read *read, const ov_id *id, const char **json, size_t *len)
{
    MDB_val key = val_of(id->bytes, OV_ID_BYTES), value;
    int rc = mdb_get(read->txn, read->store->accounts, &key, &value);
    if (rc)
        return from_mdb(rc);
    *json = value.mv_data;
    *len = value.mv_size;
    return OV_OK;
}

int ov_read_account(ov_read *read, const ov_id *id, json_t **account)
{
    *account = NULL;
    MDB_val key = val_of(id->bytes, OV_ID_BYTES), value;
    int rc = mdb_get(read->txn, read->store->accounts, &key, &value);
    if (rc)
        return from_mdb(rc);
    return parse_account(&value, account);
}

int ov_read_account_by_name(ov_read *read, const char *username, ov_id *id, json_t **account)
{
    if (account)
        *account = NULL;
    size_t len = strlen(username);
    if (len == 0 || len > USERNAME_MAX_BYTES)
        return OV_ENOTFOUND;
    MDB_val key = val_of(username, len), value;
    int rc = mdb_get(read->txn, read->store->usernames, &key, &value);
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != OV_ID_BYTES)
        return OV_ESTORE;
    ov_id found;
    memcpy(found.bytes, value.mv_data, OV_ID_BYTES);
    if (id)
        *id = found;
    return account ? ov_read_account(read, &found, account) : OV_OK;
}

int ov_read_accounts(ov_read *read, ov_account_fn fn, void *ctx)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(read->txn, read->store->accounts, &cursor);
    if (rc)
        return from_mdb(rc);
    MDB_val key, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (rc == 0) {
        if (key.mv_size != OV_ID_BYTES) {
            rc = OV_ESTORE;
            break;
        }
        ov_id id;
        memcpy(id.bytes, key.mv_data, OV_ID_BYTES);
        json_t *account;
        rc = parse_account(&value, &account);
        if (rc)
            break;
        rc = fn(ctx, &id, account);
        json_decref(account);
        if (rc > 0)
            rc = MDB_NOTFOUND; /* the callback is done: stop without error */
        if (rc)
            break;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return settle(rc);
}

static void decode_session(const uint8_t *p, ov_session *session)
{
    memcpy(session->account.bytes, p, OV_ID_BYTES);
    session->created_ms = (int64_t)ov_be64_get(p + 16);
    session->expires_ms = (int64_t)ov_be64_get(p + 24);
}

int ov_read_session(ov_read *read, const uint8_t token_hash[OV_HASH_BYTES], ov_session *session)
{
    MDB_val key = val_of(token_hash, OV_HASH_BYTES), value;
    int rc = mdb_get(read->txn, read->store->sessions, &key, &value);
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != SESSION_VALUE_BYTES)
        return OV_ESTORE;
    if (session)
        decode_session(value.mv_data, session);
    return OV_OK;
}

int ov_read_stats(ov_read *read, ov_store_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    MDB_stat st;
    int rc = mdb_stat(read->txn, read->store->records, &st);
    if (rc)
        return from_mdb(rc);
    stats->records = st.ms_entries;
    rc = mdb_stat(read->txn, read->store->log, &st);
    if (rc)
        return from_mdb(rc);
    stats->log_entries = st.ms_entries;
    stats->changes = read_change_seq(read->txn, read->store);
    MDB_envinfo info;
    rc = mdb_env_info(read->store->env, &info);
    if (rc)
        return from_mdb(rc);
    rc = mdb_env_stat(read->store->env, &st);
    if (rc)
        return from_mdb(rc);
    stats->map_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    return OV_OK;
}

/* ---- Write ops ------------------------------------------------------------------------------ */

ov_write_op *ov_write_op_new(ov_write_type type)
{
    ov_write_op *op = calloc(1, sizeof *op);
    if (op)
        op->type = type;
    return op;
}

void ov_write_op_free(ov_write_op *op)
{
    if (!op)
        return;
    json_decref(op->content);
    json_decref(op->account);
    for (uint32_t i = 0; op->run_records && i < op->run_record_count; i++)
        json_decref(op->run_records[i]);
    free(op->run_records);
    for (uint32_t i = 0; op->run_analyses && i < op->run_record_count; i++)
        ov_search_analysis_free(op->run_analyses[i]);
    free(op->run_analyses);
    free(op->canon);
    free(op);
}

/* Where the batch's log and feed stand inside one op; copied into the ov_wtxn only when the op's
 * nested transaction commits. */
typedef struct {
    ov_store *store;
    MDB_txn *txn;
    uint64_t log_seq;
    uint8_t log_hash[OV_HASH_BYTES];
    uint64_t change_seq;
    /* Set before an op's first write. Each op checks everything it can before writing, so the
     * usual failures (conflict, gone, exists, …) leave the transaction untouched; a failure after
     * this (a full map, memory, a damaged row) leaves part of the op in it. */
    int wrote;
    ov_search_batch *search_batch; /* set while a run is stored: search postings go there */
    ov_wtxn *w;                    /* the batch */
    /* The search analysis of the record store_record_row is given, made ahead (or NULL). */
    const ov_search_analysis *search_analysis;
} op_state;

typedef struct {
    op_state *state;
    ov_kind kind;
    const ov_id *id;
    int remove;
    int rc;
} facet_walk;

static int index_row(facet_walk *walk, const char *facet, const char *value)
{
    uint8_t key_bytes[INDEX_KEY_MAX];
    size_t n = index_prefix(key_bytes, facet, value, walk->kind);
    if (n == 0)
        return 0; /* not indexable; the same rule applies on removal */
    memcpy(key_bytes + n, walk->id->bytes, OV_ID_BYTES);
    MDB_val key = val_of(key_bytes, n + OV_ID_BYTES), empty = {0, NULL};
    int rc = walk->remove ? mdb_del(walk->state->txn, walk->state->store->index, &key, NULL)
                          : mdb_put(walk->state->txn, walk->state->store->index, &key, &empty, 0);
    if (rc && !(walk->remove && rc == MDB_NOTFOUND)) {
        walk->rc = from_mdb(rc);
        return 1;
    }
    return 0;
}

static int on_facet(void *ctx, const char *facet, const char *value)
{
    return index_row(ctx, facet, value);
}

/* Adds or removes every index row of one record version. */
static int index_version(op_state *state, const ov_id *id, ov_kind kind, ov_status status,
                         const json_t *record, int remove)
{
    facet_walk walk = {state, kind, id, remove, OV_OK};
    if (index_row(&walk, "kind", ov_kind_name(kind)) ||
        index_row(&walk, "status", ov_status_name(status)))
        return walk.rc;
    int rc = ov_record_facets(kind, record, on_facet, &walk);
    if (walk.rc)
        return walk.rc;
    return rc > 0 ? OV_OK : rc;
}

static int last_log_entry_of(MDB_txn *txn, const ov_store *store, const ov_id *origin,
                             uint64_t *seq, uint8_t hash[OV_HASH_BYTES], int64_t *time_ms)
{
    *seq = 0;
    memset(hash, 0, OV_HASH_BYTES);
    *time_ms = 0;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->log, &cursor);
    if (rc)
        return from_mdb(rc);
    uint8_t seek[LOG_KEY_BYTES];
    log_key(seek, origin, UINT64_MAX);
    MDB_val key, value;
    rc = cursor_last_before(cursor, seek, sizeof seek, 1, &key, &value);
    if (rc == 0 && key.mv_size == LOG_KEY_BYTES &&
        memcmp(key.mv_data, origin->bytes, OV_ID_BYTES) == 0) {
        ov_log_entry entry;
        if (ov_log_entry_decode(value.mv_data, value.mv_size, &entry) != OV_OK) {
            rc = OV_ESTORE;
        } else {
            *seq = entry.seq;
            *time_ms = entry.time_ms;
            ov_log_entry_hash(&entry, hash);
        }
    } else if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = OV_OK;
    } else {
        rc = from_mdb(rc);
    }
    mdb_cursor_close(cursor);
    return rc;
}

static int last_log_entry(MDB_txn *txn, const ov_store *store, uint64_t *seq,
                          uint8_t hash[OV_HASH_BYTES], int64_t *time_ms)
{
    return last_log_entry_of(txn, store, &store->node_id, seq, hash, time_ms);
}

static int append_log(op_state *state, uint8_t op, const ov_id *record,
                      const uint8_t content_hash[OV_HASH_BYTES], int64_t now_ms)
{
    ov_log_entry entry;
    memset(&entry, 0, sizeof entry);
    entry.op = op;
    entry.origin = state->store->node_id;
    entry.seq = state->log_seq + 1;
    memcpy(entry.prev_hash, state->log_hash, OV_HASH_BYTES);
    entry.time_ms = now_ms;
    entry.record = *record;
    memcpy(entry.content_hash, content_hash, OV_HASH_BYTES);
    uint8_t bytes[OV_LOG_ENTRY_BYTES], key_bytes[LOG_KEY_BYTES];
    ov_log_entry_encode(&entry, bytes);
    log_key(key_bytes, &entry.origin, entry.seq);
    MDB_val key = val_of(key_bytes, sizeof key_bytes), value = val_of(bytes, sizeof bytes);
    int rc = mdb_put(state->txn, state->store->log, &key, &value, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return OV_ESTORE; /* the log is append-only: an existing seq means corrupt state */
    if (rc)
        return from_mdb(rc);
    state->log_seq = entry.seq;
    ov_log_entry_hash(&entry, state->log_hash);
    return OV_OK;
}

static int move_change(op_state *state, const ov_id *id, uint64_t old_seq, uint64_t *new_seq)
{
    uint8_t key_bytes[8] = {0};
    MDB_val key = val_of(key_bytes, sizeof key_bytes), value;
    int rc;
    if (old_seq) {
        ov_be64_put(key_bytes, old_seq);
        rc = mdb_del(state->txn, state->store->changes, &key, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return from_mdb(rc);
    }
    *new_seq = ++state->change_seq;
    ov_be64_put(key_bytes, *new_seq);
    value = val_of(id->bytes, OV_ID_BYTES);
    rc = mdb_put(state->txn, state->store->changes, &key, &value, 0);
    if (rc)
        return from_mdb(rc);
    MDB_val meta_key = val_of(META_CHANGE, sizeof META_CHANGE - 1);
    value = val_of(key_bytes, sizeof key_bytes);
    return from_mdb(mdb_put(state->txn, state->store->meta, &meta_key, &value, 0));
}

static int move_updated(op_state *state, const ov_record_meta *old, const ov_record_meta *now)
{
    uint8_t key_bytes[UPDATED_KEY_BYTES] = {0};
    MDB_val key = val_of(key_bytes, sizeof key_bytes), empty = {0, NULL};
    if (old) {
        updated_key(key_bytes, old->env.kind, old->env.updated_ms, &old->env.id);
        int rc = mdb_del(state->txn, state->store->updated, &key, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return from_mdb(rc);
    }
    updated_key(key_bytes, now->env.kind, now->env.updated_ms, &now->env.id);
    return from_mdb(mdb_put(state->txn, state->store->updated, &key, &empty, 0));
}

static int store_record_row(op_state *state, ov_record_meta *meta, const json_t *record,
                            const char *canon, size_t canon_len, const ov_record_meta *old,
                            const json_t *old_record);

/* Stores a sealed version: log entry, change feed, indexes, then the record row itself. old and
 * old_record describe the version it replaces (NULL for a create). */
static int store_version(op_state *state, ov_write_op *op, uint8_t log_op, ov_record_meta *meta,
                         const json_t *record, const char *canon, size_t canon_len,
                         const ov_record_meta *old, const json_t *old_record, int64_t now_ms)
{
    if (canon_len > RECORD_MAX_BYTES)
        return OV_ETOOBIG;
    state->wrote = 1;
    /* A purge entry commits to no content (docs/log-format.md): the erased record's tombstone
     * is this node's row, not something the log vouches for. */
    static const uint8_t no_content[OV_HASH_BYTES];
    int rc = append_log(state, log_op, &meta->env.id,
                        log_op == OV_OP_PURGE ? no_content : meta->content_hash, now_ms);
    if (rc)
        return rc;
    meta->log_seq = state->log_seq;
    return store_record_row(state, meta, record, canon, canon_len, old, old_record);
}

/* The record side of a version: change feed, indexes, search, updated time, the row. */
static int store_record_row(op_state *state, ov_record_meta *meta, const json_t *record,
                            const char *canon, size_t canon_len, const ov_record_meta *old,
                            const json_t *old_record)
{
    int rc = move_change(state, &meta->env.id, old ? old->change_seq : 0, &meta->change_seq);
    if (rc)
        return rc;
    if (old) {
        rc = index_version(state, &old->env.id, old->env.kind, old->env.status, old_record, 1);
        if (rc)
            return rc;
    }
    rc = index_version(state, &meta->env.id, meta->env.kind, meta->env.status, record, 0);
    if (!rc)
        rc = state->search_batch
                 ? ov_search_batch_add_analysed(state->search_batch, state->txn, meta, record,
                                                state->search_analysis)
                 : ov_search_index_update(state->store->search, state->txn, meta, record);
    if (rc)
        return rc;
    rc = move_updated(state, old, meta);
    if (rc)
        return rc;
    MDB_val key = val_of(meta->env.id.bytes, OV_ID_BYTES);
    MDB_val value = {RECORD_HEADER_BYTES + canon_len, NULL};
    rc = mdb_put(state->txn, state->store->records, &key, &value, MDB_RESERVE);
    if (rc)
        return from_mdb(rc);
    encode_record_header(value.mv_data, meta);
    memcpy((uint8_t *)value.mv_data + RECORD_HEADER_BYTES, canon, canon_len);
    return OV_OK;
}

static int apply_create(op_state *state, ov_write_op *op, int64_t now_ms)
{
    if (!op->content || !json_is_object(op->content) || (unsigned)op->kind >= OV_KIND_COUNT ||
        (op->status != OV_STATUS_DRAFT && op->status != OV_STATUS_PUBLISHED))
        return OV_EINVAL;
    ov_record_meta meta;
    memset(&meta, 0, sizeof meta);
    if (ov_id_is_zero(&op->id)) {
        int rc = ov_id_generate(&meta.env.id, (uint64_t)now_ms);
        if (rc)
            return rc;
    } else {
        meta.env.id = op->id;
    }
    MDB_val key = val_of(meta.env.id.bytes, OV_ID_BYTES), existing;
    int rc = mdb_get(state->txn, state->store->records, &key, &existing);
    if (rc == 0)
        return OV_EEXISTS;
    if (rc != MDB_NOTFOUND)
        return from_mdb(rc);
    meta.env.kind = op->kind;
    meta.env.origin = state->store->node_id;
    meta.env.version = 1;
    meta.env.created_ms = now_ms;
    meta.env.updated_ms = now_ms;
    meta.env.author = op->author;
    meta.env.status = op->status;
    json_t *record = NULL;
    char *canon = NULL;
    size_t canon_len = 0;
    rc = ov_record_seal(op->content, &meta.env, &record, &canon, &canon_len, meta.content_hash);
    if (rc)
        return rc;
    rc = store_version(state, op, OV_OP_PUT, &meta, record, canon, canon_len, NULL, NULL, now_ms);
    json_decref(record);
    if (rc) {
        free(canon);
        return rc;
    }
    op->meta = meta;
    op->canon = canon;
    op->canon_len = canon_len;
    return OV_OK;
}

/* The stored version an op changes: of the op's kind, and kept in op->meta for the caller (what
 * it sees on GONE, CONFLICT or DENIED). */
static int read_for_change(op_state *state, ov_write_op *op, ov_record_meta *old,
                           const char **old_json, size_t *old_len)
{
    int rc = get_record(state->txn, state->store, &op->id, old, old_json, old_len);
    if (rc)
        return rc;
    if (old->env.kind != op->kind)
        return OV_ENOTFOUND;
    op->meta = *old;
    return OV_OK;
}

/* REPLACE, DELETE, STATUS and PURGE: checks the stored version, then writes its successor. PURGE
 * (erasure under the AVG/GDPR) leaves a tombstone like DELETE, with a purge entry in the log; the
 * record's earlier entries stay in the chain, but their content is not the current version any
 * more, so no node gives it out again, and replicas erase it when the entry reaches them. A
 * deleted record can be purged too. */
static int apply_change(op_state *state, ov_write_op *op, int64_t now_ms)
{
    ov_record_meta old;
    const char *old_json;
    size_t old_len;
    int rc = read_for_change(state, op, &old, &old_json, &old_len);
    if (rc)
        return rc;
    int purge = op->type == OV_WRITE_RECORD_PURGE;
    if (old.env.status == OV_STATUS_DELETED && !purge)
        return OV_EGONE;
    if (!id_equal(&old.env.origin, &state->store->node_id))
        return OV_EDENIED;
    if (op->if_version != 0 && op->if_version != old.env.version)
        return OV_ECONFLICT;
    if (old.env.version == UINT32_MAX)
        return OV_EINVAL;

    ov_record_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.env = old.env;
    meta.env.version = old.env.version + 1;
    meta.env.updated_ms = now_ms;
    meta.env.author = op->author;
    meta.env.origin = state->store->node_id;

    /* Parse before writing: LMDB's pointer into the old value dies with the first update. */
    json_t *old_record = json_loadb(old_json, old_len, 0, NULL);
    if (!old_record)
        return OV_ESTORE;
    json_t *record = NULL;
    char *canon = NULL;
    size_t canon_len = 0;
    uint8_t log_op = OV_OP_PUT;
    if (op->type == OV_WRITE_RECORD_DELETE || purge) {
        meta.env.status = OV_STATUS_DELETED;
        log_op = purge ? OV_OP_PURGE : OV_OP_DELETE;
        rc = ov_record_seal_tombstone(&meta.env, &canon, &canon_len, meta.content_hash);
        if (rc == OV_OK && !(record = json_loadb(canon, canon_len, 0, NULL)))
            rc = OV_ENOMEM;
    } else if (op->status != OV_STATUS_DRAFT && op->status != OV_STATUS_PUBLISHED) {
        rc = OV_EINVAL; /* deleting goes through DELETE, which leaves a tombstone */
    } else {
        meta.env.status = op->status;
        const json_t *content = op->type == OV_WRITE_RECORD_STATUS ? old_record : op->content;
        if (!content || !json_is_object(content))
            rc = OV_EINVAL;
        else
            rc = ov_record_seal(content, &meta.env, &record, &canon, &canon_len, meta.content_hash);
    }
    if (rc == OV_OK)
        rc = store_version(state, op, log_op, &meta, record, canon, canon_len, &old, old_record,
                           now_ms);
    json_decref(record);
    json_decref(old_record);
    if (rc) {
        free(canon);
        return rc;
    }
    op->meta = meta;
    op->canon = canon;
    op->canon_len = canon_len;
    return OV_OK;
}

static int apply_account(op_state *state, ov_write_op *op)
{
    if (!op->account || !json_is_object(op->account) || ov_id_is_zero(&op->account_id))
        return OV_EINVAL;
    const char *username = json_string_value(json_object_get(op->account, "username"));
    size_t name_len = username ? strlen(username) : 0;
    if (name_len == 0 || name_len > USERNAME_MAX_BYTES)
        return OV_EINVAL;
    MDB_txn *txn = state->txn;
    MDB_val name_key = val_of(username, name_len), value;
    int rc = mdb_get(txn, state->store->usernames, &name_key, &value);
    if (rc == 0 && (value.mv_size != OV_ID_BYTES ||
                    memcmp(value.mv_data, op->account_id.bytes, OV_ID_BYTES) != 0))
        return OV_EEXISTS;
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);

    /* A rename frees the old username. */
    state->wrote = 1;
    MDB_val id_key = val_of(op->account_id.bytes, OV_ID_BYTES);
    rc = mdb_get(txn, state->store->accounts, &id_key, &value);
    if (rc == 0) {
        json_t *old = NULL;
        if (parse_account(&value, &old) == OV_OK) {
            const char *old_name = json_string_value(json_object_get(old, "username"));
            if (old_name && strcmp(old_name, username) != 0) {
                MDB_val old_key = val_of(old_name, strlen(old_name)), owner;
                if (mdb_get(txn, state->store->usernames, &old_key, &owner) == 0 &&
                    owner.mv_size == OV_ID_BYTES &&
                    memcmp(owner.mv_data, op->account_id.bytes, OV_ID_BYTES) == 0)
                    rc = mdb_del(txn, state->store->usernames, &old_key, NULL);
            }
        }
        json_decref(old);
        if (rc)
            return from_mdb(rc);
    } else if (rc != MDB_NOTFOUND) {
        return from_mdb(rc);
    }

    char *text = json_dumps(op->account, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return OV_ENOMEM;
    size_t text_len = strlen(text);
    if (text_len > ACCOUNT_MAX_BYTES) {
        free(text);
        return OV_ETOOBIG;
    }
    value = val_of(text, text_len);
    rc = mdb_put(txn, state->store->accounts, &id_key, &value, 0);
    free(text);
    if (rc)
        return from_mdb(rc);
    value = val_of(op->account_id.bytes, OV_ID_BYTES);
    return from_mdb(mdb_put(txn, state->store->usernames, &name_key, &value, 0));
}

static int apply_session(op_state *state, ov_write_op *op)
{
    MDB_val key = val_of(op->token_hash, OV_HASH_BYTES);
    state->wrote = 1;
    if (op->type == OV_WRITE_SESSION_DELETE) {
        int rc = mdb_del(state->txn, state->store->sessions, &key, NULL);
        return rc == MDB_NOTFOUND ? OV_OK : from_mdb(rc);
    }
    if (ov_id_is_zero(&op->session.account))
        return OV_EINVAL;
    uint8_t bytes[SESSION_VALUE_BYTES];
    memcpy(bytes, op->session.account.bytes, OV_ID_BYTES);
    ov_be64_put(bytes + 16, (uint64_t)op->session.created_ms);
    ov_be64_put(bytes + 24, (uint64_t)op->session.expires_ms);
    MDB_val value = val_of(bytes, sizeof bytes);
    return from_mdb(mdb_put(state->txn, state->store->sessions, &key, &value, 0));
}

/* Sessions are few (one per logged-in device), so a full scan beats keeping a second index. */
static int revoke_sessions(op_state *state, const ov_id *account)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(state->txn, state->store->sessions, &cursor);
    if (rc)
        return from_mdb(rc);
    state->wrote = 1;
    MDB_val key, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (rc == 0) {
        if (value.mv_size == SESSION_VALUE_BYTES &&
            memcmp(value.mv_data, account->bytes, OV_ID_BYTES) == 0) {
            rc = mdb_cursor_del(cursor, 0);
            if (rc)
                break;
            /* After a delete the cursor already stands on the following row. */
            rc = mdb_cursor_get(cursor, &key, &value, MDB_GET_CURRENT);
            continue;
        }
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? OV_OK : from_mdb(rc);
}

/* ---- Checkpoints and replicated runs (docs/protocol.md §8) --------------------------------- */

static int put_checkpoint(MDB_txn *txn, const ov_store *store, const ov_log_head *head)
{
    uint8_t key_bytes[LOG_KEY_BYTES], bytes[OV_LOG_HEAD_BYTES];
    log_key(key_bytes, &head->origin, head->seq);
    ov_log_head_encode(head, bytes);
    MDB_val key = val_of(key_bytes, sizeof key_bytes), value = val_of(bytes, sizeof bytes);
    return from_mdb(mdb_put(txn, store->checkpoints, &key, &value, 0));
}

int ov_read_heads(ov_read *read, ov_head_fn fn, void *ctx)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(read->txn, read->store->heads, &cursor);
    if (rc)
        return from_mdb(rc);
    MDB_val key, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (rc == 0) {
        ov_log_head head;
        if (key.mv_size != OV_ID_BYTES || value.mv_size != HEAD_VALUE_BYTES ||
            ov_log_head_decode(value.mv_data, OV_LOG_HEAD_BYTES, &head) != OV_OK) {
            rc = OV_ESTORE;
            break;
        }
        /* This node's own head as the store's reader sees it (see ov_read_head). */
        ov_log_head shown;
        uint8_t pub[OV_PUBKEY_BYTES];
        if (ov_read_head(read, &head.origin, &shown, pub) == OV_OK) {
            rc = fn(ctx, &shown, pub);
            if (rc < 0)
                break;
        }
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return settle(rc);
}

static int checkpoint_within(ov_read *read, const ov_id *origin, uint64_t from, uint64_t batch,
                             ov_log_head *head)
{
    if (from == 0 || batch == 0)
        return OV_EINVAL;
    ov_log_head newest;
    int rc = ov_read_head(read, origin, &newest, NULL);
    if (rc)
        return rc;
    if (newest.seq < from)
        return OV_ENOTFOUND;
    uint64_t last = from + batch - 1 < from ? UINT64_MAX : from + batch - 1;
    if (last >= newest.seq) { /* the newest head ends the run: the common case when live */
        *head = newest;
        return OV_OK;
    }
    MDB_cursor *cursor;
    rc = mdb_cursor_open(read->txn, read->store->checkpoints, &cursor);
    if (rc)
        return from_mdb(rc);
    /* The highest checkpoint at or below last: seek past it, step back. */
    uint8_t seek[LOG_KEY_BYTES];
    log_key(seek, origin, last + 1);
    MDB_val key, value;
    rc = cursor_last_before(cursor, seek, sizeof seek, 0, &key, &value);
    int found = 0;
    if (rc == 0 && key.mv_size == LOG_KEY_BYTES && !memcmp(key.mv_data, origin->bytes, 16) &&
        ov_be64_get((const uint8_t *)key.mv_data + 16) >= from)
        found = 1;
    if (!found) { /* none within the batch: the next one after it */
        log_key(seek, origin, from);
        key = val_of(seek, sizeof seek);
        rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
        found = rc == 0 && key.mv_size == LOG_KEY_BYTES &&
                !memcmp(key.mv_data, origin->bytes, 16) &&
                ov_be64_get((const uint8_t *)key.mv_data + 16) <= newest.seq;
    }
    if (found && ov_log_head_decode(value.mv_data, value.mv_size, head) != OV_OK)
        rc = OV_ESTORE;
    mdb_cursor_close(cursor);
    if (rc && rc != MDB_NOTFOUND)
        return settle(rc);
    if (!found) {
        *head = newest; /* a log from before checkpoints were kept: only its newest head */
    }
    return OV_OK;
}

int ov_read_checkpoint_at(ov_read *read, const ov_id *origin, uint64_t seq, ov_log_head *head)
{
    uint8_t row[LOG_KEY_BYTES];
    log_key(row, origin, seq);
    MDB_val key = val_of(row, sizeof row), value;
    int rc = mdb_get(read->txn, read->store->checkpoints, &key, &value);
    if (rc)
        return from_mdb(rc);
    return ov_log_head_decode(value.mv_data, value.mv_size, head) == OV_OK ? OV_OK : OV_ESTORE;
}

int ov_read_checkpoint(ov_read *read, const ov_id *origin, uint64_t from, uint64_t batch,
                       ov_log_head *head)
{
    int rc = checkpoint_within(read, origin, from, batch, head);
    if (rc)
        return rc;
    /* The first key entry at or after from ends the run if the checkpoint lies beyond it: every
     * key entry has a checkpoint of its own, signed by the key before. */
    MDB_cursor *cursor;
    rc = mdb_cursor_open(read->txn, read->store->keys, &cursor);
    if (rc)
        return from_mdb(rc);
    uint8_t seek[LOG_KEY_BYTES];
    key_row(seek, origin, from);
    MDB_val key = val_of(seek, sizeof seek), value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    uint64_t key_seq = 0;
    if (rc == 0 && key.mv_size == LOG_KEY_BYTES && !memcmp(key.mv_data, origin->bytes, 16))
        key_seq = ov_be64_get((const uint8_t *)key.mv_data + OV_ID_BYTES);
    mdb_cursor_close(cursor);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    if (key_seq && key_seq < head->seq) {
        rc = ov_read_checkpoint_at(read, origin, key_seq, head);
        return rc == OV_ENOTFOUND ? OV_ESTORE : rc;
    }
    return OV_OK;
}

int ov_read_key(ov_read *read, const ov_id *origin, uint64_t seq, uint8_t pub[OV_PUBKEY_BYTES])
{
    return key_before(read->txn, read->store, origin, seq, pub, NULL);
}

int ov_read_keys(ov_read *read, const ov_id *origin, ov_key_fn fn, void *ctx)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(read->txn, read->store->keys, &cursor);
    if (rc)
        return from_mdb(rc);
    uint8_t seek[LOG_KEY_BYTES];
    key_row(seek, origin, 0);
    MDB_val key = val_of(seek, sizeof seek), value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == LOG_KEY_BYTES &&
           !memcmp(key.mv_data, origin->bytes, OV_ID_BYTES)) {
        if (value.mv_size != OV_PUBKEY_BYTES) {
            rc = OV_ESTORE;
            break;
        }
        rc = fn(ctx, ov_be64_get((const uint8_t *)key.mv_data + OV_ID_BYTES), value.mv_data);
        if (rc < 0)
            break;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == 0)
        return OV_OK;
    return settle(rc);
}

int ov_read_entry(ov_read *read, const ov_id *origin, uint64_t seq, uint8_t out[OV_LOG_ENTRY_BYTES])
{
    uint8_t row[LOG_KEY_BYTES];
    log_key(row, origin, seq);
    MDB_val key = val_of(row, sizeof row), value;
    int rc = mdb_get(read->txn, read->store->log, &key, &value);
    if (rc)
        return from_mdb(rc);
    if (value.mv_size != OV_LOG_ENTRY_BYTES)
        return OV_ESTORE;
    memcpy(out, value.mv_data, OV_LOG_ENTRY_BYTES);
    return OV_OK;
}

uint64_t ov_read_fork_count(ov_read *read)
{
    MDB_stat st;
    return mdb_stat(read->txn, read->store->forks, &st) == 0 ? st.ms_entries : 0;
}

/* A content of a run, parsed and checked against what is stored before anything is written. */
typedef struct {
    json_t *record;      /* the content, or NULL */
    ov_record_meta meta; /* its envelope and hashes (when record) */
    int have_old;        /* a version of the record is stored */
    ov_record_meta old;  /* that version */
    json_t *old_record;  /* parsed, for removing its index rows */
    int parsed;          /* record is the one parsed ahead (op->run_records) */
} run_item_plan;

static void free_plans(run_item_plan *plans, uint32_t n)
{
    for (uint32_t i = 0; plans && i < n; i++) {
        json_decref(plans[i].record);
        json_decref(plans[i].old_record);
    }
    free(plans);
}

/* parsed: the item's content parsed beforehand (a reference taken here), or NULL to parse it. */
static int plan_item(op_state *state, const ov_sync_item *item, json_t *parsed, run_item_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (item->entry.op == OV_OP_KEY)
        return OV_OK; /* its content is a key, kept in the key chain */
    ov_record_meta old;
    const char *old_json;
    size_t old_len;
    int rc =
        item->entry.op == OV_OP_PUT || item->entry.op == OV_OP_DELETE ||
                item->entry.op == OV_OP_PURGE
            ? get_record(state->txn, state->store, &item->entry.record, &old, &old_json, &old_len)
            : OV_ENOTFOUND;
    if (rc == OV_OK) {
        /* A record id of another origin: the run would take over what is not its own. */
        if (!id_equal(&old.env.origin, &item->entry.origin))
            return OV_ESCHEMA;
        plan->have_old = 1;
        plan->old = old;
        plan->old_record = json_loadb(old_json, old_len, 0, NULL);
        if (!plan->old_record)
            return OV_ESTORE;
    } else if (rc != OV_ENOTFOUND) {
        return rc;
    }
    if (!item->content)
        return OV_OK;
    if (item->content_len > RECORD_MAX_BYTES)
        return OV_ETOOBIG;
    plan->record =
        parsed ? json_incref(parsed) : json_loadb(item->content, item->content_len, 0, NULL);
    plan->parsed = parsed != NULL;
    if (!plan->record || ov_record_envelope(plan->record, &plan->meta.env) != OV_OK)
        return OV_ESCHEMA;
    if (!id_equal(&plan->meta.env.id, &item->entry.record) ||
        !id_equal(&plan->meta.env.origin, &item->entry.origin))
        return OV_ESCHEMA;
    memcpy(plan->meta.content_hash, item->entry.content_hash, OV_HASH_BYTES);
    plan->meta.log_seq = item->entry.seq;
    return OV_OK;
}

/* A version the origin did not make public (a draft after a published one): the replica keeps
 * only an envelope stub in the draft state, so lists, search and feed readers see the record
 * leave, and the stale public content is no longer given out. A purge entry does the same with a
 * tombstone: the content is erased here too. */
static int withdraw_record(op_state *state, const ov_sync_item *item, run_item_plan *plan,
                           ov_status status)
{
    ov_record_meta meta = plan->old;
    meta.env.status = status;
    meta.env.version = plan->old.env.version < UINT32_MAX ? plan->old.env.version + 1 : UINT32_MAX;
    meta.env.updated_ms = item->entry.time_ms;
    memcpy(meta.content_hash, item->entry.content_hash, OV_HASH_BYTES);
    meta.log_seq = item->entry.seq;
    char *canon = NULL;
    size_t canon_len = 0;
    uint8_t ignored[OV_HASH_BYTES];
    json_t *stub = json_object();
    int rc = !stub ? OV_ENOMEM
             : status == OV_STATUS_DELETED
                 ? ov_record_seal_tombstone(&meta.env, &canon, &canon_len, meta.content_hash)
                 : ov_record_seal(stub, &meta.env, NULL, &canon, &canon_len, ignored);
    json_t *record = rc == OV_OK ? json_loadb(canon, canon_len, 0, NULL) : NULL;
    if (rc == OV_OK && !record)
        rc = OV_ENOMEM;
    if (rc == OV_OK)
        rc = store_record_row(state, &meta, record, canon, canon_len, &plan->old, plan->old_record);
    json_decref(stub);
    json_decref(record);
    free(canon);
    return rc;
}

static int store_fork_evidence(op_state *state, const ov_sync_run *run, const ov_sync_item *item)
{
    uint8_t key_bytes[LOG_KEY_BYTES],
        value_bytes[OV_LOG_ENTRY_BYTES + OV_LOG_HEAD_BYTES + OV_PUBKEY_BYTES];
    log_key(key_bytes, &run->origin, item->entry.seq);
    memcpy(value_bytes, item->entry_bytes, OV_LOG_ENTRY_BYTES);
    memcpy(value_bytes + OV_LOG_ENTRY_BYTES, run->head_bytes, OV_LOG_HEAD_BYTES);
    memcpy(value_bytes + OV_LOG_ENTRY_BYTES + OV_LOG_HEAD_BYTES, run->public_key, OV_PUBKEY_BYTES);
    MDB_val key = val_of(key_bytes, sizeof key_bytes),
            value = val_of(value_bytes, sizeof value_bytes);
    return from_mdb(mdb_put(state->txn, state->store->forks, &key, &value, 0));
}

/* A run of this node's own log, restored from a peer: the batch's log position moves to its head
 * (so the writer appends after it), and once the run reaches the sender's newest checkpoint with
 * this node's current key at the end of the chain, the restore is complete. */
static int restored_own_run(op_state *state, ov_write_op *op, const ov_sync_run *run,
                            const uint8_t head_value[HEAD_VALUE_BYTES])
{
    ov_wtxn *w = state->w;
    state->log_seq = run->head.seq;
    memcpy(state->log_hash, run->head.hash, OV_HASH_BYTES);
    w->signed_seq = run->head.seq;
    w->start_log_seq = run->head.seq;
    w->own_head_set = 1;
    memcpy(w->own_head, head_value, HEAD_VALUE_BYTES);
    if (run->head.seq < run->newest)
        return OV_OK;
    uint8_t current[OV_PUBKEY_BYTES];
    int rc = key_before(state->txn, state->store, &run->origin, UINT64_MAX, current, NULL);
    if (rc)
        return rc;
    if (memcmp(current, state->store->pub, OV_PUBKEY_BYTES) != 0) {
        op->recovered = -1;
        return OV_OK;
    }
    MDB_val key = val_of(META_RECOVER, sizeof META_RECOVER - 1);
    rc = mdb_del(state->txn, state->store->meta, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    op->recovered = 1;
    w->recovered = 1;
    return OV_OK;
}

/* Stores a run another node sent (its key, signature, chain and contents were checked by
 * ov_sync_run_check before it was queued): the entries beyond what is stored, their records,
 * and the head as a checkpoint. Everything that can refuse the run is checked before the first
 * write. */
static int apply_run(op_state *state, ov_write_op *op)
{
    ov_sync_message m;
    if (!op->run || ov_sync_decode(op->run, op->run_len, &m) != OV_OK || m.type != OV_SYNC_ENTRIES)
        return OV_EINVAL;
    const ov_sync_run *run = &m.u.run;
    uint64_t tail = 0;
    uint8_t tail_hash[OV_HASH_BYTES];
    int64_t tail_time;
    int rc =
        last_log_entry_of(state->txn, state->store, &run->origin, &tail, tail_hash, &tail_time);
    if (rc)
        return rc;
    op->tail_seq = tail;
    uint64_t first_seq = run->head.seq - run->count + 1;
    if (first_seq > tail + 1)
        return OV_ECHAIN; /* a gap: the receiver asks from tail + 1 */

    /* The run's key must be the one the origin's key chain has for the head's position: every
     * key entry before it is held (a run holds a key entry only as its last entry, and starts at
     * most one after what is held). Nothing held yet: the genesis key, which names the origin. */
    uint8_t trusted[OV_PUBKEY_BYTES];
    rc = key_before(state->txn, state->store, &run->origin, run->head.seq, trusted, NULL);
    int first_key = rc == OV_ENOTFOUND;
    if (rc && !first_key)
        return rc;
    if (first_key ? !owns_key(&run->origin, run->public_key)
                  : memcmp(trusted, run->public_key, OV_PUBKEY_BYTES) != 0)
        return OV_EBADSIG;

    /* Entries already stored must be the same ones; a different one is a fork. */
    size_t offset = 0;
    ov_sync_item item;
    uint32_t index = 0, fresh_from = run->count;
    while (ov_sync_run_next(run, &offset, &item)) {
        if (item.entry.seq > tail) {
            fresh_from = index;
            break;
        }
        uint8_t key_bytes[LOG_KEY_BYTES];
        log_key(key_bytes, &run->origin, item.entry.seq);
        MDB_val key = val_of(key_bytes, sizeof key_bytes), value;
        rc = mdb_get(state->txn, state->store->log, &key, &value);
        if (rc)
            return from_mdb(rc);
        if (value.mv_size != OV_LOG_ENTRY_BYTES ||
            memcmp(value.mv_data, item.entry_bytes, OV_LOG_ENTRY_BYTES) != 0) {
            op->fork = 1;
            state->wrote = 1;
            return store_fork_evidence(state, run, &item);
        }
        index++;
    }
    if (fresh_from == run->count) {
        op->applied = 0; /* all duplicates */
        return OV_OK;
    }
    int own = id_equal(&run->origin, &state->store->node_id);
    if (own && !ov_store_recovering(state->store))
        return OV_EDENIED; /* this node's own log beyond its end: never from elsewhere */
    if (item.entry.seq != tail + 1 ||
        (tail == 0 ? ov_log_entry_follows(NULL, &run->origin, 0, &item.entry)
                   : ov_log_entry_follows(tail_hash, &run->origin, tail, &item.entry)) != OV_OK)
        return OV_ECHAIN;

    /* Plan every fresh entry: parse contents, find the versions they replace. */
    uint32_t fresh = run->count - fresh_from;
    run_item_plan *plans = calloc(fresh, sizeof *plans);
    if (!plans)
        return OV_ENOMEM;
    size_t fresh_offset = offset - (OV_LOG_ENTRY_BYTES + 4 + item.content_len);
    offset = fresh_offset;
    for (uint32_t i = 0; i < fresh && ov_sync_run_next(run, &offset, &item); i++) {
        uint32_t at = fresh_from + i;
        json_t *parsed = op->run_records && at < op->run_record_count ? op->run_records[at] : NULL;
        rc = plan_item(state, &item, parsed, &plans[i]);
        if (rc) {
            free_plans(plans, fresh);
            return rc;
        }
    }
    /* Two entries of one run may change the same record: later plans must see the earlier
     * version as their old one, so plans are refreshed as the writes go (below). The search
     * postings of all the run's records are written together at the end (search_index.h). */
    if (!state->store->run_batch &&
        (rc = ov_search_batch_new(state->store->search, &state->store->run_batch))) {
        free_plans(plans, fresh);
        return rc;
    }
    state->search_batch = state->store->run_batch;
    state->wrote = 1;
    offset = fresh_offset;
    for (uint32_t i = 0; i < fresh && ov_sync_run_next(run, &offset, &item); i++) {
        uint8_t key_bytes[LOG_KEY_BYTES];
        log_key(key_bytes, &run->origin, item.entry.seq);
        MDB_val key = val_of(key_bytes, sizeof key_bytes),
                value = val_of(item.entry_bytes, OV_LOG_ENTRY_BYTES);
        rc = from_mdb(mdb_put(state->txn, state->store->log, &key, &value, MDB_NOOVERWRITE));
        if (rc == OV_OK && item.entry.op == OV_OP_KEY) /* checked: 65 bytes hashing to it */
            rc = put_key(state->txn, state->store, &run->origin, item.entry.seq,
                         (const uint8_t *)item.content);
        if (rc)
            break;
        run_item_plan *plan = &plans[i];
        if (i > 0 && (item.entry.op == OV_OP_PUT || item.entry.op == OV_OP_DELETE)) {
            ov_record_meta old;
            const char *old_json;
            size_t old_len;
            int found = get_record(state->txn, state->store, &item.entry.record, &old, &old_json,
                                   &old_len) == OV_OK;
            /* Parsed again only when an earlier entry of the run rewrote the record (every
             * rewrite takes a new change_seq): most runs change each record once. */
            int same = found && plan->have_old && old.change_seq == plan->old.change_seq &&
                       !memcmp(old.content_hash, plan->old.content_hash, OV_HASH_BYTES);
            if (!same) {
                json_decref(plan->old_record);
                plan->old_record = NULL;
                plan->have_old = 0;
            }
            if (found && !same) {
                plan->have_old = 1;
                plan->old = old;
                plan->old_record = json_loadb(old_json, old_len, 0, NULL);
                if (!plan->old_record) {
                    rc = OV_ESTORE;
                    break;
                }
            }
        }
        if (plan->record) {
            char *canon = (char *)item.content; /* canonical already (checked) */
            uint32_t at = fresh_from + i;
            /* The analysis was made from the parsed record the plan holds, if any. */
            state->search_analysis = plan->parsed && op->run_analyses && at < op->run_record_count
                                         ? op->run_analyses[at]
                                         : NULL;
            rc = store_record_row(state, &plan->meta, plan->record, canon, item.content_len,
                                  plan->have_old ? &plan->old : NULL, plan->old_record);
            state->search_analysis = NULL;
        } else if (plan->have_old && item.entry.op == OV_OP_PUT &&
                   plan->old.env.status != OV_STATUS_DRAFT) {
            rc = withdraw_record(state, &item, plan, OV_STATUS_DRAFT);
        } else if (plan->have_old && item.entry.op == OV_OP_PURGE) {
            rc = withdraw_record(state, &item, plan, OV_STATUS_DELETED);
        }
        if (rc)
            break;
    }
    free_plans(plans, fresh);
    state->search_batch = NULL;
    if (rc == OV_OK)
        rc = ov_search_batch_finish(state->store->run_batch, state->txn);
    else
        ov_search_batch_reset(state->store->run_batch);
    if (rc)
        return rc;
    op->applied = fresh;
    op->tail_seq = run->head.seq;
    /* The newest head and every head as a checkpoint, so this node serves the run on. */
    uint8_t head_value[HEAD_VALUE_BYTES];
    memcpy(head_value, run->head_bytes, OV_LOG_HEAD_BYTES);
    memcpy(head_value + OV_LOG_HEAD_BYTES, run->public_key, OV_PUBKEY_BYTES);
    MDB_val key = val_of(run->origin.bytes, OV_ID_BYTES),
            value = val_of(head_value, sizeof head_value);
    rc = from_mdb(mdb_put(state->txn, state->store->heads, &key, &value, 0));
    if (rc == OV_OK)
        rc = put_checkpoint(state->txn, state->store, &run->head);
    if (rc == OV_OK && first_key)
        rc = put_key(state->txn, state->store, &run->origin, 0, run->public_key);
    if (rc == OV_OK && own)
        rc = restored_own_run(state, op, run, head_value);
    return rc;
}

/* Rewrites the stored head with itself, so its pages are already copied into this transaction:
 * signing the new head at commit then needs no fresh page, and a batch whose last op found the map
 * full can still commit the ops before it. */
static int touch_head(MDB_txn *txn, const ov_store *store, uint64_t *signed_seq)
{
    *signed_seq = 0;
    MDB_val key = val_of(store->node_id.bytes, OV_ID_BYTES), value;
    int rc = mdb_get(txn, store->heads, &key, &value);
    if (rc == MDB_NOTFOUND)
        return OV_OK;
    if (rc)
        return from_mdb(rc);
    uint8_t copy[HEAD_VALUE_BYTES];
    if (value.mv_size != sizeof copy)
        return OV_ESTORE;
    memcpy(copy, value.mv_data, sizeof copy);
    ov_log_head head;
    if (ov_log_head_decode(copy, OV_LOG_HEAD_BYTES, &head) != OV_OK)
        return OV_ESTORE;
    *signed_seq = head.seq;
    value = val_of(copy, sizeof copy);
    return from_mdb(mdb_put(txn, store->heads, &key, &value, 0));
}

int ov_store_write_begin(ov_store *store, ov_wtxn **out)
{
    *out = NULL;
    ov_wtxn *w = calloc(1, sizeof *w);
    if (!w)
        return OV_ENOMEM;
    w->store = store;
    int rc = mdb_txn_begin(store->env, NULL, 0, &w->txn);
    if (rc) {
        free(w);
        return from_mdb(rc);
    }
    rc = last_log_entry(w->txn, store, &w->log_seq, w->log_hash, &w->log_time);
    if (rc) {
        mdb_txn_abort(w->txn);
        free(w);
        return rc;
    }
    w->start_log_seq = w->log_seq;
    w->change_seq = read_change_seq(w->txn, store);
    rc = touch_head(w->txn, store, &w->signed_seq);
    if (rc) {
        mdb_txn_abort(w->txn);
        free(w);
        return rc;
    }
    *out = w;
    return OV_OK;
}

static void op_begin(ov_wtxn *w, ov_write_op *op, op_state *state)
{
    free(op->canon);
    op->canon = NULL;
    op->canon_len = 0;
    memset(&op->meta, 0, sizeof op->meta);
    op->replayed = 0;
    *state = (op_state){w->store, w->txn, w->log_seq, {0}, w->change_seq, 0, NULL, w, NULL};
    memcpy(state->log_hash, w->log_hash, OV_HASH_BYTES);
}

/* The op's outcome: on success the batch's log and feed move on to where the op left them. */
static void op_end(ov_wtxn *w, ov_write_op *op, const op_state *state, int rc, int64_t now_ms)
{
    if (rc == OV_OK) {
        if (state->log_seq != w->log_seq)
            w->log_time = now_ms;
        w->log_seq = state->log_seq;
        memcpy(w->log_hash, state->log_hash, OV_HASH_BYTES);
        w->change_seq = state->change_seq;
    } else {
        free(op->canon);
        op->canon = NULL;
        op->canon_len = 0;
    }
    op->result = rc;
}

/* A key the author used before: checked inside the write transaction too, so two retries that
 * both passed the API's look-up before either was applied cannot both apply. The first answer is
 * given again with the record as it is now; nothing is written. */
static int replay_answer(op_state *state, ov_write_op *op, int *replayed)
{
    *replayed = 0;
    if (!op->idempotency_key[0])
        return OV_OK;
    ov_idempotency_answer answer;
    int rc = get_idempotency(state->txn, state->store, &op->author, op->idempotency_key, &answer);
    if (rc == OV_ENOTFOUND)
        return OV_OK;
    if (rc)
        return rc;
    if (!ov_idempotency_matches(&answer, op->idempotency_request, op->kind, &op->id))
        return OV_EPRECONDITION;
    const char *json;
    size_t len;
    rc = get_record(state->txn, state->store, &answer.record, &op->meta, &json, &len);
    if (rc)
        return rc == OV_ENOTFOUND ? OV_ESTORE : rc; /* records are never removed */
    op->canon = malloc(len + 1);
    if (!op->canon)
        return OV_ENOMEM;
    memcpy(op->canon, json, len);
    op->canon_len = len;
    op->answer = answer;
    *replayed = 1;
    op->replayed = 1;
    return OV_OK;
}

/* Keeps the answer of an applied write under its key, in the write's own transaction. */
static int remember_answer(op_state *state, ov_write_op *op, int64_t now_ms)
{
    if (!op->idempotency_key[0])
        return OV_OK;
    ov_idempotency_answer answer = {op->idempotency_request, op->kind,
                                    op->idempotency_status,  op->meta.env.id,
                                    op->meta.env.version,    now_ms};
    uint8_t key_bytes[IDEMPOTENCY_KEY_BYTES], value_bytes[IDEMPOTENCY_VALUE_BYTES];
    size_t n = idempotency_key(key_bytes, &op->author, op->idempotency_key);
    if (n == 0)
        return OV_EINVAL;
    encode_idempotency(value_bytes, &answer);
    MDB_val key = val_of(key_bytes, n), value = val_of(value_bytes, sizeof value_bytes);
    int rc = mdb_put(state->txn, state->store->idempotency, &key, &value, 0);
    if (rc)
        return from_mdb(rc);
    op->answer = answer;
    return OV_OK;
}

/* A key entry introducing op->new_key; the commit signs the head at it with the key before. */
static int apply_rotate(op_state *state, ov_write_op *op, int64_t now_ms)
{
    if (op->new_key[0] != 0x04 || memcmp(op->new_key, state->store->pub, OV_PUBKEY_BYTES) == 0)
        return OV_EINVAL;
    if (ov_store_recovering(state->store) || state->store->rotated_at)
        return OV_EAGAIN;
    uint8_t hash[OV_HASH_BYTES];
    ov_sha256(op->new_key, OV_PUBKEY_BYTES, hash);
    ov_id none;
    memset(&none, 0, sizeof none);
    state->wrote = 1;
    int rc = append_log(state, OV_OP_KEY, &none, hash, now_ms);
    if (rc == OV_OK)
        rc = put_key(state->txn, state->store, &state->store->node_id, state->log_seq, op->new_key);
    if (rc == OV_OK)
        state->store->rotated_at = state->log_seq;
    return rc;
}

static int apply_record_op(op_state *state, ov_write_op *op, int64_t now_ms)
{
    if (ov_store_recovering(state->store))
        return OV_EAGAIN; /* the own log is not restored yet: a write would fork it */
    int replayed;
    int rc = replay_answer(state, op, &replayed);
    if (rc || replayed)
        return rc;
    rc = op->type == OV_WRITE_RECORD_CREATE ? apply_create(state, op, now_ms)
                                            : apply_change(state, op, now_ms);
    return rc ? rc : remember_answer(state, op, now_ms);
}

static int run_op(op_state *state, ov_write_op *op, int64_t now_ms)
{
    int rc;
    switch (op->type) {
    case OV_WRITE_RECORD_CREATE:
    case OV_WRITE_RECORD_REPLACE:
    case OV_WRITE_RECORD_DELETE:
    case OV_WRITE_RECORD_STATUS:
    case OV_WRITE_RECORD_PURGE:
        rc = apply_record_op(state, op, now_ms);
        break;
    case OV_WRITE_ACCOUNT_PUT:
        rc = apply_account(state, op);
        break;
    case OV_WRITE_SESSION_PUT:
    case OV_WRITE_SESSION_DELETE:
        rc = apply_session(state, op);
        break;
    case OV_WRITE_SESSIONS_REVOKE:
        rc = revoke_sessions(state, &op->account_id);
        break;
    case OV_WRITE_LOG_APPLY:
        rc = apply_run(state, op);
        break;
    case OV_WRITE_KEY_ROTATE:
        rc = apply_rotate(state, op, now_ms);
        break;

    default:
        rc = OV_EINVAL;
        break;
    }
    return rc;
}

void ov_store_apply(ov_wtxn *w, ov_write_op *op, int64_t now_ms)
{
    op_state state;
    op_begin(w, op, &state);
    int rc = mdb_txn_begin(w->store->env, w->txn, 0, &state.txn);
    if (rc) {
        op_end(w, op, &state, from_mdb(rc), now_ms);
        return;
    }
    rc = run_op(&state, op, now_ms);
    if (rc == OV_OK)
        rc = from_mdb(mdb_txn_commit(state.txn));
    else
        mdb_txn_abort(state.txn);
    op_end(w, op, &state, rc, now_ms);
}

int ov_store_apply_batch(ov_wtxn **txn, ov_write_op *batch, int64_t now_ms)
{
    ov_wtxn *w = *txn;
    ov_write_op *spoiler = NULL;
    for (ov_write_op *op = batch; op && !spoiler; op = op->next) {
        op_state state;
        op_begin(w, op, &state);
        int rc = run_op(&state, op, now_ms);
        op_end(w, op, &state, rc, now_ms);
        if (rc != OV_OK && state.wrote)
            spoiler = op;
    }
    if (!spoiler)
        return OV_OK;
    /* The transaction holds part of the spoiler: start it again, and this time give every other
     * op a nested transaction of its own, so that a second failure of that kind stays alone. */
    int result = spoiler->result;
    ov_store *store = w->store;
    ov_store_write_abort(w);
    *txn = NULL;
    int rc = ov_store_write_begin(store, txn);
    if (rc)
        return rc;
    for (ov_write_op *op = batch; op; op = op->next)
        if (op != spoiler)
            ov_store_apply(*txn, op, now_ms);
    spoiler->result = result;
    return OV_OK;
}

int ov_store_write_commit(ov_wtxn *w)
{
    return ov_store_write_commit_ex(w, 1);
}

int ov_store_write_commit_ex(ov_wtxn *w, int sign_head)
{
    ov_store *store = w->store;
    int rc = ov_store_write_commit_unflushed(w, sign_head);
    return rc ? rc : ov_store_sync(store);
}

int ov_store_sync(ov_store *store)
{
    /* What is committed now is covered by the fdatasync that follows. */
    pthread_mutex_lock(&store->durable_lock);
    feed_state covered = store->committed;
    pthread_mutex_unlock(&store->durable_lock);
    if (mdb_env_sync(store->env, 1))
        return OV_EIO;
    pthread_mutex_lock(&store->durable_lock);
    if (covered.change_seq >= store->durable.change_seq) /* two flushes may end out of order */
        store->durable = covered;
    pthread_mutex_unlock(&store->durable_lock);
    return OV_OK;
}

int ov_store_write_commit_unflushed(ov_wtxn *w, int sign_head)
{
    int rc = OV_OK;
    int signed_now = 0;
    uint8_t bytes[HEAD_VALUE_BYTES];
    if (sign_head && w->log_seq != w->signed_seq && w->store->rotated_at &&
        w->log_seq > w->store->rotated_at) {
        /* After a key entry, the key this store holds is no longer the node's. */
        mdb_txn_abort(w->txn);
        free(w);
        return OV_EDENIED;
    }
    if (sign_head && w->log_seq != w->signed_seq) {
        /* One signature vouches for every entry up to the new head: this batch's and those of
         * batches committed without signing. */
        ov_log_head head;
        memset(&head, 0, sizeof head);
        head.origin = w->store->node_id;
        head.seq = w->log_seq;
        memcpy(head.hash, w->log_hash, OV_HASH_BYTES);
        head.time_ms = w->log_time;
        rc = ov_log_head_sign(&head, w->store->key);
        if (rc == OV_OK) {
            signed_now = 1;
            ov_log_head_encode(&head, bytes);
            memcpy(bytes + OV_LOG_HEAD_BYTES, w->store->pub, OV_PUBKEY_BYTES);
            MDB_val key = val_of(head.origin.bytes, OV_ID_BYTES),
                    value = val_of(bytes, sizeof bytes);
            rc = from_mdb(mdb_put(w->txn, w->store->heads, &key, &value, 0));
            if (rc == OV_OK)
                rc = put_checkpoint(w->txn, w->store, &head);
        }
        if (rc) {
            mdb_txn_abort(w->txn);
            free(w);
            return rc == OV_EFULL ? OV_EFULL : OV_ESTORE;
        }
    }
    ov_store *store = w->store;
    uint64_t change_seq = w->change_seq;
    int own_head_set = w->own_head_set && !signed_now, recovered = w->recovered;
    if (own_head_set)
        memcpy(bytes, w->own_head, sizeof bytes);
    rc = mdb_txn_commit(w->txn);
    free(w);
    if (rc)
        return rc == MDB_MAP_FULL ? OV_EFULL : OV_ESTORE;
    pthread_mutex_lock(&store->durable_lock);
    store->committed.change_seq = change_seq;
    if (signed_now || own_head_set) {
        store->committed.has_head = 1;
        memcpy(store->committed.head, bytes, sizeof bytes);
    }
    if (recovered)
        store->recovering = 0;
    pthread_mutex_unlock(&store->durable_lock);
    return OV_OK;
}

int ov_store_write_head_pending(const ov_wtxn *w)
{
    return w && w->log_seq != w->signed_seq;
}

void ov_store_write_abort(ov_wtxn *w)
{
    if (!w)
        return;
    mdb_txn_abort(w->txn);
    free(w);
}

int ov_store_write_one(ov_store *store, ov_write_op *op)
{
    ov_wtxn *w;
    int rc = ov_store_write_begin(store, &w);
    if (rc) {
        op->result = rc;
        return rc;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ov_store_apply(w, op, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    if (op->result != OV_OK) {
        ov_store_write_abort(w);
        return op->result;
    }
    rc = ov_store_write_commit(w);
    if (rc) {
        free(op->canon);
        op->canon = NULL;
        op->canon_len = 0;
        op->result = rc;
    }
    return rc;
}
