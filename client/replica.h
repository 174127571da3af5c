/*
 * The replica's store: one LMDB environment in the replica directory, and the handle every
 * other client module works through. Internal to libolievlek (the public API is
 * include/olievlek.h).
 *
 * Named databases:
 *   meta       text key → text value: node_url, node_id, region_only, kinds, username, …
 *   records    record id (16) → record row (below): what the node published, verified
 *   heads      origin (16) → seq (8) ‖ entry hash (32) ‖ head (128) ‖ public key (65): the newest
 *              verified checkpoint of each origin, where the next pull continues
 *   local      record id (16) → canonical JSON of the record with the local edits applied
 *   queue      local sequence (8) → edit (JSON): the edits waiting to be pushed, in order
 *   conflicts  record id (16) → conflict (JSON): mine, theirs, versions
 *   history    time (8) ‖ counter (4) → a line of text
 *
 * A record row is a fixed header then the record's canonical bytes:
 *   kind (1) ‖ status (1) ‖ version (4) ‖ updated_ms (8) ‖ origin (16) ‖ canonical JSON
 * so lists and counts never parse JSON.
 *
 * Pulled data can always be fetched again, so pulls commit without waiting for the disk's
 * metadata flush (MDB_NOMETASYNC: a power cut may lose the last pulled batch, never corrupt);
 * local edits cannot, so every edit is flushed completely before the call returns.
 */
#ifndef OLV_REPLICA_H
#define OLV_REPLICA_H

#include <lmdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "client/include/olievlek.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/log.h"
#include "proto/record.h"

#define OLV_ROW_HEADER 30
#define OLV_HEAD_ROW   (8 + OV_HASH_BYTES + OV_LOG_HEAD_BYTES + OV_PUBKEY_BYTES)

typedef struct {
    ov_kind kind;
    ov_status status;
    uint32_t version;
    int64_t updated_ms;
    ov_id origin;
    const char *json; /* borrowed: points into the row */
    size_t json_len;
} olv_row;

typedef struct {
    uint64_t seq;
    uint8_t hash[OV_HASH_BYTES];
    uint8_t head[OV_LOG_HEAD_BYTES];
    /* The key the origin's next heads must be signed with: the one that signed head, unless
     * entry seq is a key entry, whose new key it then is (docs/protocol.md §4). */
    uint8_t public_key[OV_PUBKEY_BYTES];
} olv_head;

struct olievlek_replica {
    char *dir;
    MDB_env *env;
    MDB_dbi meta, records, heads, local, queue, conflicts, history;
    char error[512];
    ov_field_errors validation;
    char *strings[6]; /* what olievlek_status_info handed out */
    char *token;      /* the session token, loaded from <dir>/token, or NULL */
    int lock_fd;      /* held during pull and push, else -1 */
};

/* Records a failure on replica (printf-style sentence) and returns status. */
int olv_fail(olievlek_replica *replica, int status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps an LMDB return code to OLIEVLEK_ESTORE with a sentence; returns the status. */
int olv_fail_mdb(olievlek_replica *replica, int rc, const char *doing);

int olv_txn_begin(olievlek_replica *replica, unsigned flags, MDB_txn **txn);
/* Commits; with durable, also flushes everything to disk before returning. */
int olv_txn_commit(olievlek_replica *replica, MDB_txn *txn, int durable);

/* meta: a NUL-terminated value (malloc'd into *out, caller frees), OLIEVLEK_ENOTFOUND if absent. */
int olv_meta_get(olievlek_replica *replica, MDB_txn *txn, const char *key, char **out);
int olv_meta_put(olievlek_replica *replica, MDB_txn *txn, const char *key, const char *value);

void olv_row_encode_header(uint8_t header[OLV_ROW_HEADER], ov_kind kind, ov_status status,
                           uint32_t version, int64_t updated_ms, const ov_id *origin);
/* Parses a stored row. OLIEVLEK_OK or OLIEVLEK_ESTORE (too short or unknown kind). */
int olv_row_decode(const MDB_val *value, olv_row *row);
/* Reads the envelope of a canonical record without parsing it all. OLIEVLEK_OK or OLIEVLEK_EPROTO
 * when a member is missing or malformed. */
int olv_row_from_json(const char *json, size_t len, olv_row *row, ov_id *id);

int olv_head_get(MDB_txn *txn, MDB_dbi heads, const ov_id *origin, olv_head *head);
int olv_head_put(MDB_txn *txn, MDB_dbi heads, const ov_id *origin, const olv_head *head);

/* Appends a line to the history in txn. */
int olv_history_add(olievlek_replica *replica, MDB_txn *txn, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* The pull/push lock (flock on <dir>/lock). OLIEVLEK_EBUSY when held elsewhere. */
int olv_lock(olievlek_replica *replica);
void olv_unlock(olievlek_replica *replica);

/* (Re)reads <dir>/token into replica->token (NULL when absent). */
void olv_token_load(olievlek_replica *replica);

int64_t olv_now_ms(void);

/* Parses a record id given by the user; OLIEVLEK_EINVAL with a sentence when it is not one. */
int olv_parse_record_id(olievlek_replica *replica, const char *text, ov_id *id);

#endif
