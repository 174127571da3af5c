/*
 * The durable queue of local edits and the local versions they produce. Internal to
 * libolievlek: edit.c adds to it, push.c drains it, conflict.c resolves what pushing brought back.
 *
 * An edit is stored as a JSON object (queue database, keyed by an increasing position):
 *   mutation  the client mutation id sent as Idempotency-Key (26 characters)
 *   op        "create" | "update" | "delete"
 *   kind, id  the record
 *   base      the node version the edit starts from; 0: the version the edit before it in the
 *             queue (same record) produces, known only once that one is accepted
 *   attempted true once it may have reached the node: from then on it is never changed, only
 *             sent again with the same mutation id
 *   state     "pending" | "rejected"; reason: the node's explanation of a rejection
 *   queued    ms since the epoch
 *   content   the JSON text to send (create and update)
 */
#ifndef OLV_QUEUE_H
#define OLV_QUEUE_H

#include "client/replica.h"

typedef enum { OLV_OP_CREATE, OLV_OP_UPDATE, OLV_OP_DELETE } olv_op;

typedef struct {
    uint64_t key;
    char mutation[OV_ID_CHARS + 1];
    olv_op op;
    ov_kind kind;
    ov_id id;
    uint32_t base;
    int attempted;
    int rejected;
    char *reason; /* owned, or NULL */
    int64_t queued_ms;
    char *content; /* owned, or NULL for a deletion */
} olv_edit;

const char *olv_op_name(olv_op op);
void olv_edit_clear(olv_edit *edit);
int olv_edit_decode(const MDB_val *key, const MDB_val *value, olv_edit *edit);
/* Stores edit at edit->key, or at a new position after every other when edit->key is 0 (then
 * sets edit->key). */
int olv_edit_put(olievlek_replica *replica, MDB_txn *txn, olv_edit *edit);
int olv_edit_del(olievlek_replica *replica, MDB_txn *txn, uint64_t key);
/* The last queued edit of record id (pending or rejected). OLIEVLEK_ENOTFOUND when none. */
int olv_edit_last_for(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, olv_edit *out);
/* How many queued edits wait to be pushed and how many the node rejected. */
void olv_queue_counts(olievlek_replica *replica, MDB_txn *txn, unsigned *pending,
                      unsigned *rejected);
/* A fresh mutation id. */
int olv_mutation_id(char out[OV_ID_CHARS + 1]);

/* The local version of a record (a row as in the records database), or OLIEVLEK_ENOTFOUND. The
 * row points into the transaction's memory. */
int olv_local_get(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, MDB_val *row);
/* The record as the node last gave it (records database). */
int olv_record_get(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, MDB_val *row);
int olv_row_put(MDB_txn *txn, MDB_dbi dbi, const ov_id *id, ov_kind kind, ov_status status,
                uint32_t version, int64_t updated_ms, const ov_id *origin, const char *json,
                size_t json_len);

#endif
