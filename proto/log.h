/*
 * The origin log: every node's append-only, hash-chained history of its own records.
 *
 * Entry (fixed 114 bytes, big-endian integers), the unit of replication:
 *   off len field
 *     0   1 format        1
 *     1   1 op            1 put, 2 delete, 3 purge, 4 key (rotation)
 *     2  16 origin        node id
 *    18   8 seq           1, 2, 3, … without gaps per origin
 *    26  32 prev_hash     entry hash of seq-1; all zero for seq 1
 *    58   8 time_ms       when the origin accepted the change
 *    66  16 record        record id (for op key: zero)
 *    82  32 content_hash  SHA-256 of the record's canonical bytes (op put/delete); for op key the
 *                         SHA-256 of the new public key; for op purge all zero
 * entry hash = SHA-256 of the 114 bytes. The entry commits to the content only through its hash,
 * so content can be erased (AVG/GDPR) while the chain stays verifiable.
 *
 * Head (fixed 128 bytes): origin(16) seq(8) hash(32) time_ms(8) signature(64). The signature is
 * ECDSA P-256 (see crypto.h) over SHA-256("olievlek/head/v1" ‖ origin ‖ seq ‖ hash ‖ time_ms).
 * One signed head vouches for every entry before it, so a receiver checks hashes per entry and
 * one signature per head.
 */
#ifndef OV_LOG_H
#define OV_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/crypto.h"
#include "proto/id.h"

#define OV_LOG_ENTRY_BYTES 114
#define OV_LOG_HEAD_BYTES  128
#define OV_LOG_FORMAT      1

typedef enum { OV_OP_PUT = 1, OV_OP_DELETE = 2, OV_OP_PURGE = 3, OV_OP_KEY = 4 } ov_log_op;

typedef struct {
    uint8_t op;
    ov_id origin;
    uint64_t seq;
    uint8_t prev_hash[OV_HASH_BYTES];
    int64_t time_ms;
    ov_id record;
    uint8_t content_hash[OV_HASH_BYTES];
} ov_log_entry;

typedef struct {
    ov_id origin;
    uint64_t seq;
    uint8_t hash[OV_HASH_BYTES];
    int64_t time_ms;
    uint8_t signature[OV_SIGNATURE_BYTES];
} ov_log_head;

void ov_log_entry_encode(const ov_log_entry *entry, uint8_t out[OV_LOG_ENTRY_BYTES]);
/* OV_OK, or OV_EPARSE (and *entry untouched) for a wrong length, format or op, seq 0, a key entry
 * with a nonzero record or a purge entry with a nonzero content_hash. Decoding then encoding
 * gives back the input bytes. */
int ov_log_entry_decode(const uint8_t *data, size_t len, ov_log_entry *entry);
void ov_log_entry_hash(const ov_log_entry *entry, uint8_t out[OV_HASH_BYTES]);

/* Checks that next directly follows an entry whose hash is prev_hash at seq next->seq-1 of the
 * same origin (prev_hash NULL: next must be seq 1 with a zero prev_hash). OV_OK or OV_ECHAIN. */
int ov_log_entry_follows(const uint8_t *prev_hash, const ov_id *origin, uint64_t prev_seq,
                         const ov_log_entry *next);

void ov_log_head_encode(const ov_log_head *head, uint8_t out[OV_LOG_HEAD_BYTES]);
/* OV_OK, or OV_EPARSE (and *head untouched) for a wrong length or seq 0. */
int ov_log_head_decode(const uint8_t *data, size_t len, ov_log_head *head);
/* The digest that is signed. */
void ov_log_head_digest(const ov_log_head *head, uint8_t out[OV_HASH_BYTES]);
/* Fills head->signature. OV_OK or OV_ECRYPTO. */
int ov_log_head_sign(ov_log_head *head, const ov_keypair *key);
/* OV_OK or OV_EBADSIG (also when pub is not a valid key). */
int ov_log_head_verify(const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES]);

/* The node id belonging to a genesis public key: first 16 bytes of its SHA-256. */
void ov_log_node_id(const uint8_t pub[OV_PUBKEY_BYTES], ov_id *out);

#endif
