/*
 * Federation messages between nodes (docs/protocol.md §8): their binary layouts, and the checks
 * a run of replicated log entries must pass before it may be stored. Pure code: no I/O, no
 * store. Decoders copy nothing: every pointer they fill in points into the message given, and is
 * valid as long as that message is.
 *
 * One message = one binary websocket message = type byte ‖ fields (big-endian integers).
 */
#ifndef OV_SYNC_H
#define OV_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/log.h"
#include "proto/record.h"

#define OV_SYNC_VERSION       1
#define OV_SYNC_NONCE_BYTES   32
#define OV_SYNC_MESSAGE_MAX   (16u << 20) /* bytes of one message */
#define OV_SYNC_BATCH_MAX     65536u      /* entries of one run */
#define OV_SYNC_ORIGINS_MAX   65536u      /* origins in one summary */
#define OV_SYNC_REASON_MAX    120
#define OV_SYNC_SUMMARY_ENTRY (16 + 8 + OV_HASH_BYTES)
#define OV_SYNC_KEYS_MAX      64 /* rotations a KEYS message may prove */
#define OV_SYNC_KEY_LINK      (OV_LOG_ENTRY_BYTES + OV_LOG_HEAD_BYTES + OV_PUBKEY_BYTES)

typedef enum {
    OV_SYNC_HELLO = 1,
    OV_SYNC_PROOF = 2,
    OV_SYNC_DIGEST = 3,
    OV_SYNC_SUMMARY = 4,
    OV_SYNC_WANT = 5,
    OV_SYNC_ENTRIES = 6,
    OV_SYNC_ERROR = 7,
    OV_SYNC_KEYS = 8,
} ov_sync_type;

typedef struct {
    uint8_t version;
    ov_id node;
    uint8_t public_key[OV_PUBKEY_BYTES];
    uint8_t nonce[OV_SYNC_NONCE_BYTES];
} ov_sync_hello;

/* One origin's newest checkpoint as a summary names it. */
typedef struct {
    ov_id origin;
    uint64_t seq;
    uint8_t hash[OV_HASH_BYTES];
} ov_sync_position;

typedef struct {
    uint32_t batch; /* 1..OV_SYNC_BATCH_MAX in a request; 0 in the last frame of a pull (§9.1) */
    uint32_t count;
    const uint8_t *positions; /* count × OV_SYNC_SUMMARY_ENTRY bytes, see ov_sync_summary_at */
} ov_sync_summary;

typedef struct {
    ov_id origin;
    uint64_t from;
    uint32_t batch;
} ov_sync_want;

/* A run: consecutive entries of one origin ending at a signed head (a checkpoint). */
typedef struct {
    ov_id origin;
    uint8_t public_key[OV_PUBKEY_BYTES];
    ov_log_head head;
    const uint8_t *head_bytes; /* the 128 head bytes as received, for forwarding byte for byte */
    uint64_t newest;           /* the sender's newest checkpoint seq of origin */
    uint32_t count;
    const uint8_t *items; /* count × (entry ‖ length ‖ content), walked by ov_sync_run_next */
    size_t items_len;
} ov_sync_run;

/* One entry of a run, as ov_sync_run_next yields it. */
typedef struct {
    ov_log_entry entry;
    const uint8_t *entry_bytes; /* 114 bytes */
    const char *content;        /* NULL when the run carries no content for this entry */
    size_t content_len;
} ov_sync_item;

typedef struct {
    uint16_t code;
    const char *reason; /* not NUL-terminated */
    size_t reason_len;
} ov_sync_error;

/* A node's key chain (§8.1): its genesis key, then per rotation the key entry, the head signed
 * at it by the key before, and the new key. */
typedef struct {
    uint8_t genesis[OV_PUBKEY_BYTES];
    uint32_t count;       /* 0..OV_SYNC_KEYS_MAX */
    const uint8_t *links; /* count × OV_SYNC_KEY_LINK bytes */
} ov_sync_keys;

/* One rotation of a key chain. */
typedef struct {
    ov_log_entry entry;
    const uint8_t *entry_bytes;
    ov_log_head head;
    const uint8_t *head_bytes;
    const uint8_t *key; /* the new key, 65 bytes */
} ov_sync_key_link;

typedef struct {
    ov_sync_type type;
    union {
        ov_sync_hello hello;
        uint8_t signature[OV_SIGNATURE_BYTES]; /* PROOF */
        uint8_t digest[OV_HASH_BYTES];         /* DIGEST */
        ov_sync_summary summary;
        ov_sync_want want;
        ov_sync_run run;
        ov_sync_error error;
        ov_sync_keys keys;
    } u;
} ov_sync_message;

/* Decodes one message. OV_OK, or OV_EPARSE for an empty or over-long message, an unknown type,
 * a length that does not fit the type's layout, counts out of range (a WANT's batch 0, a batch
 * above OV_SYNC_BATCH_MAX, a run of 0 entries), an entry or head that does not decode, or an ERROR
 * reason that is not UTF-8. A decoded run's items are checked for layout (every length fits)
 * but not for content: that is ov_sync_run_check's job. */
int ov_sync_decode(const uint8_t *data, size_t len, ov_sync_message *out);
/* As ov_sync_decode, except that an ENTRIES message's items are not walked: its header is
 * checked, and nothing may walk its items (ov_sync_run_next) until ov_sync_decode has accepted
 * the same bytes. For reading where a run ends ahead of checking it, without touching every
 * entry of a large message one more time. */
int ov_sync_decode_shallow(const uint8_t *data, size_t len, ov_sync_message *out);

/* The i-th rotation of a decoded KEYS message (i < count); its entry and head decoded. */
void ov_sync_keys_at(const ov_sync_keys *keys, uint32_t i, ov_sync_key_link *out);

/* Checks a key chain for node: the genesis key hashes to node, and each rotation in turn is a key
 * entry of node's log (seq increasing) whose content_hash is SHA-256 of its new key, with a head
 * at exactly that entry (its hash) signed by the key before. OV_OK with current (may be NULL)
 * set to the last key; OV_EBADSIG otherwise. */
int ov_sync_keys_check(const ov_sync_keys *keys, const ov_id *node,
                       uint8_t current[OV_PUBKEY_BYTES]);

/* The i-th position of a decoded summary (i < count). */
void ov_sync_summary_at(const ov_sync_summary *summary, uint32_t i, ov_sync_position *out);

/* Walks a decoded run: *offset starts at 0; returns 1 with *item filled, 0 at the end. */
int ov_sync_run_next(const ov_sync_run *run, size_t *offset, ov_sync_item *item);

/* Encoders append one whole message to buf (OV_OK, or buf's error). */
int ov_sync_encode_hello(ov_buf *buf, const ov_sync_hello *hello);
int ov_sync_encode_proof(ov_buf *buf, const uint8_t signature[OV_SIGNATURE_BYTES]);
int ov_sync_encode_digest(ov_buf *buf, const uint8_t digest[OV_HASH_BYTES]);
/* A summary header for count positions; append each with ov_sync_encode_position. */
int ov_sync_encode_summary_begin(ov_buf *buf, uint32_t batch, uint32_t count);
int ov_sync_encode_position(ov_buf *buf, const ov_sync_position *position);
int ov_sync_encode_want(ov_buf *buf, const ov_sync_want *want);
/* A run header; append its count items with ov_sync_encode_item. head_bytes are the 128 bytes
 * of the origin's signed head, as stored. */
int ov_sync_encode_run_begin(ov_buf *buf, const ov_id *origin,
                             const uint8_t public_key[OV_PUBKEY_BYTES],
                             const uint8_t head_bytes[OV_LOG_HEAD_BYTES], uint64_t newest,
                             uint32_t count);
int ov_sync_encode_item(ov_buf *buf, const uint8_t entry_bytes[OV_LOG_ENTRY_BYTES],
                        const char *content, size_t content_len);
int ov_sync_encode_error(ov_buf *buf, uint16_t code, const char *reason);
/* A KEYS header for count rotations; append each with ov_sync_encode_key_link. */
int ov_sync_encode_keys_begin(ov_buf *buf, const uint8_t genesis[OV_PUBKEY_BYTES], uint32_t count);
int ov_sync_encode_key_link(ov_buf *buf, const uint8_t entry_bytes[OV_LOG_ENTRY_BYTES],
                            const uint8_t head_bytes[OV_LOG_HEAD_BYTES],
                            const uint8_t key[OV_PUBKEY_BYTES]);

/* The digest of a summary: SHA-256 over its positions in origin order (positions must be sorted
 * by origin bytes; they are as the store lists them). */
typedef struct {
    ov_sha256_ctx sha;
} ov_sync_digest_ctx;
void ov_sync_digest_init(ov_sync_digest_ctx *ctx);
void ov_sync_digest_add(ov_sync_digest_ctx *ctx, const ov_sync_position *position);
void ov_sync_digest_final(ov_sync_digest_ctx *ctx, uint8_t out[OV_HASH_BYTES]);

/* The message a PROOF signs: SHA-256("olievlek/peer/v1" ‖ their nonce ‖ my node ‖ their node). */
void ov_sync_proof_digest(const uint8_t their_nonce[OV_SYNC_NONCE_BYTES], const ov_id *mine,
                          const ov_id *theirs, uint8_t out[OV_HASH_BYTES]);

/* Everything about a run that needs no store (§8.3 rules 1, 2 and 4): the head is the origin's and
 * its signature verifies with the run's public_key, the entries chain from the first to the head,
 * a key entry (op 4) is only the run's last entry and carries the 65-byte new key that hashes to
 * its content_hash, and every other content hashes to its entry and is a canonical record whose
 * id, origin and status fit the entry. Whether public_key is the key the receiver trusts for that
 * position of the log (the genesis key, which hashes to the origin, until a key entry introduced
 * the next) is the caller's check: it needs what the receiver holds. CPU work (one ECDSA
 * verification, SHA-256 over everything): run it off the event loop. OV_OK; OV_EBADSIG
 * (signature); OV_ECHAIN (chain or head hash, or a key entry before the run's end); OV_ESCHEMA
 * (content that does not hash to its entry or does not fit it, a key entry without its key).
 * *first receives the first entry (for the store's check that it follows what is stored). */
int ov_sync_run_check(const ov_sync_run *run, ov_log_entry *first);

/* One item of a run as ov_sync_run_check_items checked it: decoded, and its record's envelope as
 * read in the same walk that found the record canonical. */
typedef struct {
    ov_sync_item item;
    ov_envelope env;   /* zeroed when the item carries no record */
    unsigned env_seen; /* OV_ENVELOPE_* bits of what env holds (ov_record_envelope_canonical) */
} ov_sync_checked;

/* ov_sync_run_check, also giving what it decoded and read: items (run->count of them, or NULL)
 * receives every item in order, so that whoever stores the run needs neither decode an entry nor
 * walk a record again. Filled only as far as the check got; use them only after OV_OK. */
int ov_sync_run_check_items(const ov_sync_run *run, ov_log_entry *first, ov_sync_checked *items);

#endif
