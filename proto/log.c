/*
 * The origin log's entry and head formats (see log.h; docs/log-format.md is the byte-exact spec
 * with a worked example). Fixed-size big-endian structures rather than JSON, because replication
 * hashes millions of them and every node must produce identical bytes. Decoding is strict and
 * keeps every field, so decode followed by encode always reproduces the input bytes.
 */
#include "proto/log.h"

#include <string.h>

#include "proto/error.h"

static const char head_domain[16] = {'o', 'l', 'i', 'e', 'v', 'l', 'e', 'k',
                                     '/', 'h', 'e', 'a', 'd', '/', 'v', '1'};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

void ov_log_entry_encode(const ov_log_entry *entry, uint8_t out[OV_LOG_ENTRY_BYTES])
{
    out[0] = OV_LOG_FORMAT;
    out[1] = entry->op;
    memcpy(out + 2, entry->origin.bytes, OV_ID_BYTES);
    put_u64(out + 18, entry->seq);
    memcpy(out + 26, entry->prev_hash, OV_HASH_BYTES);
    put_u64(out + 58, (uint64_t)entry->time_ms);
    memcpy(out + 66, entry->record.bytes, OV_ID_BYTES);
    memcpy(out + 82, entry->content_hash, OV_HASH_BYTES);
}

int ov_log_entry_decode(const uint8_t *data, size_t len, ov_log_entry *entry)
{
    if (len != OV_LOG_ENTRY_BYTES || data[0] != OV_LOG_FORMAT || data[1] < OV_OP_PUT ||
        data[1] > OV_OP_KEY)
        return OV_EPARSE;
    ov_log_entry e;
    e.op = data[1];
    memcpy(e.origin.bytes, data + 2, OV_ID_BYTES);
    e.seq = get_u64(data + 18);
    memcpy(e.prev_hash, data + 26, OV_HASH_BYTES);
    e.time_ms = (int64_t)get_u64(data + 58);
    memcpy(e.record.bytes, data + 66, OV_ID_BYTES);
    memcpy(e.content_hash, data + 82, OV_HASH_BYTES);
    /* Shapes the format rules out: no position 0, a key entry names no record, a purge commits
     * to no content. */
    if (e.seq == 0 || (e.op == OV_OP_KEY && !ov_id_is_zero(&e.record)) ||
        (e.op == OV_OP_PURGE && !all_zero(e.content_hash, OV_HASH_BYTES)))
        return OV_EPARSE;
    *entry = e;
    return OV_OK;
}

void ov_log_entry_hash(const ov_log_entry *entry, uint8_t out[OV_HASH_BYTES])
{
    uint8_t bytes[OV_LOG_ENTRY_BYTES];
    ov_log_entry_encode(entry, bytes);
    ov_sha256(bytes, sizeof bytes, out);
}

int ov_log_entry_follows(const uint8_t *prev_hash, const ov_id *origin, uint64_t prev_seq,
                         const ov_log_entry *next)
{
    if (ov_id_compare(origin, &next->origin) != 0)
        return OV_ECHAIN;
    if (!prev_hash)
        return next->seq == 1 && all_zero(next->prev_hash, OV_HASH_BYTES) ? OV_OK : OV_ECHAIN;
    if (next->seq != prev_seq + 1 || memcmp(prev_hash, next->prev_hash, OV_HASH_BYTES) != 0)
        return OV_ECHAIN;
    return OV_OK;
}

void ov_log_head_encode(const ov_log_head *head, uint8_t out[OV_LOG_HEAD_BYTES])
{
    memcpy(out, head->origin.bytes, OV_ID_BYTES);
    put_u64(out + 16, head->seq);
    memcpy(out + 24, head->hash, OV_HASH_BYTES);
    put_u64(out + 56, (uint64_t)head->time_ms);
    memcpy(out + 64, head->signature, OV_SIGNATURE_BYTES);
}

int ov_log_head_decode(const uint8_t *data, size_t len, ov_log_head *head)
{
    if (len != OV_LOG_HEAD_BYTES)
        return OV_EPARSE;
    ov_log_head h;
    memcpy(h.origin.bytes, data, OV_ID_BYTES);
    h.seq = get_u64(data + 16);
    memcpy(h.hash, data + 24, OV_HASH_BYTES);
    h.time_ms = (int64_t)get_u64(data + 56);
    memcpy(h.signature, data + 64, OV_SIGNATURE_BYTES);
    if (h.seq == 0) /* a head covers at least one entry */
        return OV_EPARSE;
    *head = h;
    return OV_OK;
}

void ov_log_head_digest(const ov_log_head *head, uint8_t out[OV_HASH_BYTES])
{
    uint8_t message[sizeof head_domain + OV_ID_BYTES + 8 + OV_HASH_BYTES + 8];
    memcpy(message, head_domain, sizeof head_domain);
    memcpy(message + 16, head->origin.bytes, OV_ID_BYTES);
    put_u64(message + 32, head->seq);
    memcpy(message + 40, head->hash, OV_HASH_BYTES);
    put_u64(message + 72, (uint64_t)head->time_ms);
    ov_sha256(message, sizeof message, out);
}

int ov_log_head_sign(ov_log_head *head, const ov_keypair *key)
{
    uint8_t digest[OV_HASH_BYTES];
    ov_log_head_digest(head, digest);
    return ov_sign(key, digest, head->signature);
}

int ov_log_head_verify(const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES])
{
    uint8_t digest[OV_HASH_BYTES];
    ov_log_head_digest(head, digest);
    return ov_verify(pub, digest, head->signature) == OV_OK ? OV_OK : OV_EBADSIG;
}

void ov_log_node_id(const uint8_t pub[OV_PUBKEY_BYTES], ov_id *out)
{
    uint8_t hash[OV_HASH_BYTES];
    ov_sha256(pub, OV_PUBKEY_BYTES, hash);
    memcpy(out->bytes, hash, OV_ID_BYTES);
}
