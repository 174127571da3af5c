/*
 * Federation messages (docs/protocol.md §8): decoding without copying, encoding into capped
 * buffers, and the store-free checks of a replicated run. The layouts are fixed-size fields in a
 * fixed order, so decoding is a length check and a few reads per type; every count a peer sends
 * is checked against the bytes that actually arrived before anything is walked.
 */
#include "proto/sync.h"

#include <string.h>

#include "proto/canon.h"
#include "proto/error.h"

#define HELLO_BYTES   (1 + 16 + OV_PUBKEY_BYTES + OV_SYNC_NONCE_BYTES)
#define WANT_BYTES    (16 + 8 + 4)
#define RUN_HEADER    (16 + OV_PUBKEY_BYTES + OV_LOG_HEAD_BYTES + 8 + 4)
#define ITEM_HEADER   (OV_LOG_ENTRY_BYTES + 4)
#define SUMMARY_FIXED (4 + 4)
#define KEYS_FIXED    (OV_PUBKEY_BYTES + 1)

static const char PROOF_CONTEXT[] = "olievlek/peer/v1";

/* The items of a run must be exactly count × (entry ‖ length ‖ content), lengths within the
 * message: checked once here, so ov_sync_run_next can walk without checks of its own. */
static int check_run_items(const ov_sync_run *run)
{
    size_t offset = 0;
    for (uint32_t i = 0; i < run->count; i++) {
        if (run->items_len - offset < ITEM_HEADER)
            return OV_EPARSE;
        ov_log_entry entry;
        if (ov_log_entry_decode(run->items + offset, OV_LOG_ENTRY_BYTES, &entry) != OV_OK)
            return OV_EPARSE;
        uint32_t length = ov_be32_get(run->items + offset + OV_LOG_ENTRY_BYTES);
        offset += ITEM_HEADER;
        if (length > run->items_len - offset)
            return OV_EPARSE;
        offset += length;
    }
    return offset == run->items_len ? OV_OK : OV_EPARSE;
}

static int decode_run(const uint8_t *p, size_t len, ov_sync_run *run, int deep)
{
    if (len < RUN_HEADER)
        return OV_EPARSE;
    memcpy(run->origin.bytes, p, 16);
    memcpy(run->public_key, p + 16, OV_PUBKEY_BYTES);
    run->head_bytes = p + 16 + OV_PUBKEY_BYTES;
    if (ov_log_head_decode(run->head_bytes, OV_LOG_HEAD_BYTES, &run->head) != OV_OK)
        return OV_EPARSE;
    run->newest = ov_be64_get(run->head_bytes + OV_LOG_HEAD_BYTES);
    run->count = ov_be32_get(run->head_bytes + OV_LOG_HEAD_BYTES + 8);
    if (run->count == 0 || run->count > OV_SYNC_BATCH_MAX || run->count > run->head.seq ||
        run->newest < run->head.seq)
        return OV_EPARSE;
    run->items = p + RUN_HEADER;
    run->items_len = len - RUN_HEADER;
    return deep ? check_run_items(run) : OV_OK;
}

static int decode_message(const uint8_t *data, size_t len, ov_sync_message *out, int deep)
{
    if (!data || len < 1 || len > OV_SYNC_MESSAGE_MAX)
        return OV_EPARSE;
    ov_sync_message m;
    memset(&m, 0, sizeof m);
    m.type = (ov_sync_type)data[0];
    const uint8_t *p = data + 1;
    size_t n = len - 1;
    switch (m.type) {
    case OV_SYNC_HELLO:
        if (n != HELLO_BYTES || p[0] != OV_SYNC_VERSION)
            return OV_EPARSE;
        m.u.hello.version = p[0];
        memcpy(m.u.hello.node.bytes, p + 1, 16);
        memcpy(m.u.hello.public_key, p + 17, OV_PUBKEY_BYTES);
        memcpy(m.u.hello.nonce, p + 17 + OV_PUBKEY_BYTES, OV_SYNC_NONCE_BYTES);
        break;
    case OV_SYNC_PROOF:
        if (n != OV_SIGNATURE_BYTES)
            return OV_EPARSE;
        memcpy(m.u.signature, p, OV_SIGNATURE_BYTES);
        break;
    case OV_SYNC_DIGEST:
        if (n != OV_HASH_BYTES)
            return OV_EPARSE;
        memcpy(m.u.digest, p, OV_HASH_BYTES);
        break;
    case OV_SYNC_SUMMARY: {
        if (n < SUMMARY_FIXED)
            return OV_EPARSE;
        m.u.summary.batch = ov_be32_get(p);
        m.u.summary.count = ov_be32_get(p + 4);
        /* batch 0: a summary that asks for nothing, the last frame of a pull (§9.1). */
        if (m.u.summary.batch > OV_SYNC_BATCH_MAX || m.u.summary.count > OV_SYNC_ORIGINS_MAX ||
            n - SUMMARY_FIXED != (size_t)m.u.summary.count * OV_SYNC_SUMMARY_ENTRY)
            return OV_EPARSE;
        m.u.summary.positions = p + SUMMARY_FIXED;
        /* Origins strictly increasing: no origin twice, and the digest order is given. */
        for (uint32_t i = 1; i < m.u.summary.count; i++)
            if (memcmp(m.u.summary.positions + (size_t)(i - 1) * OV_SYNC_SUMMARY_ENTRY,
                       m.u.summary.positions + (size_t)i * OV_SYNC_SUMMARY_ENTRY, 16) >= 0)
                return OV_EPARSE;
        break;
    }
    case OV_SYNC_WANT:
        if (n != WANT_BYTES)
            return OV_EPARSE;
        memcpy(m.u.want.origin.bytes, p, 16);
        m.u.want.from = ov_be64_get(p + 16);
        m.u.want.batch = ov_be32_get(p + 24);
        if (m.u.want.from == 0 || m.u.want.batch == 0 || m.u.want.batch > OV_SYNC_BATCH_MAX)
            return OV_EPARSE;
        break;
    case OV_SYNC_ENTRIES:
        if (decode_run(p, n, &m.u.run, deep) != OV_OK)
            return OV_EPARSE;
        break;
    case OV_SYNC_KEYS: {
        if (n < KEYS_FIXED)
            return OV_EPARSE;
        memcpy(m.u.keys.genesis, p, OV_PUBKEY_BYTES);
        m.u.keys.count = p[OV_PUBKEY_BYTES];
        if (m.u.keys.count > OV_SYNC_KEYS_MAX ||
            n - KEYS_FIXED != (size_t)m.u.keys.count * OV_SYNC_KEY_LINK)
            return OV_EPARSE;
        m.u.keys.links = p + KEYS_FIXED;
        for (uint32_t i = 0; i < m.u.keys.count; i++) {
            const uint8_t *link = m.u.keys.links + (size_t)i * OV_SYNC_KEY_LINK;
            ov_log_entry entry;
            ov_log_head head;
            if (ov_log_entry_decode(link, OV_LOG_ENTRY_BYTES, &entry) != OV_OK ||
                entry.op != OV_OP_KEY ||
                ov_log_head_decode(link + OV_LOG_ENTRY_BYTES, OV_LOG_HEAD_BYTES, &head) != OV_OK)
                return OV_EPARSE;
        }
        break;
    }
    case OV_SYNC_ERROR:
        if (n < 2 || n - 2 > OV_SYNC_REASON_MAX || !ov_utf8_valid((const char *)p + 2, n - 2))
            return OV_EPARSE;
        m.u.error.code = (uint16_t)(p[0] << 8 | p[1]);
        m.u.error.reason = (const char *)p + 2;
        m.u.error.reason_len = n - 2;
        break;
    default:
        return OV_EPARSE;
    }
    *out = m;
    return OV_OK;
}

int ov_sync_decode(const uint8_t *data, size_t len, ov_sync_message *out)
{
    return decode_message(data, len, out, 1);
}

int ov_sync_decode_shallow(const uint8_t *data, size_t len, ov_sync_message *out)
{
    return decode_message(data, len, out, 0);
}

void ov_sync_summary_at(const ov_sync_summary *summary, uint32_t i, ov_sync_position *out)
{
    const uint8_t *p = summary->positions + (size_t)i * OV_SYNC_SUMMARY_ENTRY;
    memcpy(out->origin.bytes, p, 16);
    out->seq = ov_be64_get(p + 16);
    memcpy(out->hash, p + 24, OV_HASH_BYTES);
}

void ov_sync_keys_at(const ov_sync_keys *keys, uint32_t i, ov_sync_key_link *out)
{
    const uint8_t *p = keys->links + (size_t)i * OV_SYNC_KEY_LINK;
    out->entry_bytes = p;
    out->head_bytes = p + OV_LOG_ENTRY_BYTES;
    out->key = p + OV_LOG_ENTRY_BYTES + OV_LOG_HEAD_BYTES;
    (void)ov_log_entry_decode(out->entry_bytes, OV_LOG_ENTRY_BYTES, &out->entry); /* checked */
    (void)ov_log_head_decode(out->head_bytes, OV_LOG_HEAD_BYTES, &out->head);
}

int ov_sync_keys_check(const ov_sync_keys *keys, const ov_id *node,
                       uint8_t current[OV_PUBKEY_BYTES])
{
    ov_id owner;
    ov_log_node_id(keys->genesis, &owner);
    if (ov_id_compare(&owner, node) != 0)
        return OV_EBADSIG;
    const uint8_t *key = keys->genesis;
    uint64_t last_seq = 0;
    for (uint32_t i = 0; i < keys->count; i++) {
        ov_sync_key_link link;
        ov_sync_keys_at(keys, i, &link);
        uint8_t hash[OV_HASH_BYTES];
        ov_sha256(link.key, OV_PUBKEY_BYTES, hash);
        if (link.entry.op != OV_OP_KEY || ov_id_compare(&link.entry.origin, node) != 0 ||
            link.entry.seq <= last_seq || memcmp(hash, link.entry.content_hash, OV_HASH_BYTES))
            return OV_EBADSIG;
        ov_sha256(link.entry_bytes, OV_LOG_ENTRY_BYTES, hash);
        if (ov_id_compare(&link.head.origin, node) != 0 || link.head.seq != link.entry.seq ||
            memcmp(hash, link.head.hash, OV_HASH_BYTES) != 0 ||
            ov_log_head_verify(&link.head, key) != OV_OK)
            return OV_EBADSIG;
        key = link.key;
        last_seq = link.entry.seq;
    }
    if (current)
        memcpy(current, key, OV_PUBKEY_BYTES);
    return OV_OK;
}

int ov_sync_run_next(const ov_sync_run *run, size_t *offset, ov_sync_item *item)
{
    if (*offset >= run->items_len)
        return 0;
    const uint8_t *p = run->items + *offset;
    item->entry_bytes = p;
    (void)ov_log_entry_decode(p, OV_LOG_ENTRY_BYTES, &item->entry); /* checked when decoded */
    uint32_t length = ov_be32_get(p + OV_LOG_ENTRY_BYTES);
    item->content = length ? (const char *)p + ITEM_HEADER : NULL;
    item->content_len = length;
    *offset += ITEM_HEADER + length;
    return 1;
}

static int put_type(ov_buf *buf, ov_sync_type type)
{
    uint8_t t = (uint8_t)type;
    return ov_buf_append(buf, &t, 1);
}

int ov_sync_encode_hello(ov_buf *buf, const ov_sync_hello *hello)
{
    uint8_t p[HELLO_BYTES];
    p[0] = OV_SYNC_VERSION;
    memcpy(p + 1, hello->node.bytes, 16);
    memcpy(p + 17, hello->public_key, OV_PUBKEY_BYTES);
    memcpy(p + 17 + OV_PUBKEY_BYTES, hello->nonce, OV_SYNC_NONCE_BYTES);
    put_type(buf, OV_SYNC_HELLO);
    return ov_buf_append(buf, p, sizeof p);
}

int ov_sync_encode_proof(ov_buf *buf, const uint8_t signature[OV_SIGNATURE_BYTES])
{
    put_type(buf, OV_SYNC_PROOF);
    return ov_buf_append(buf, signature, OV_SIGNATURE_BYTES);
}

int ov_sync_encode_digest(ov_buf *buf, const uint8_t digest[OV_HASH_BYTES])
{
    put_type(buf, OV_SYNC_DIGEST);
    return ov_buf_append(buf, digest, OV_HASH_BYTES);
}

int ov_sync_encode_summary_begin(ov_buf *buf, uint32_t batch, uint32_t count)
{
    uint8_t p[SUMMARY_FIXED];
    ov_be32_put(p, batch);
    ov_be32_put(p + 4, count);
    put_type(buf, OV_SYNC_SUMMARY);
    return ov_buf_append(buf, p, sizeof p);
}

int ov_sync_encode_position(ov_buf *buf, const ov_sync_position *position)
{
    uint8_t p[OV_SYNC_SUMMARY_ENTRY];
    memcpy(p, position->origin.bytes, 16);
    ov_be64_put(p + 16, position->seq);
    memcpy(p + 24, position->hash, OV_HASH_BYTES);
    return ov_buf_append(buf, p, sizeof p);
}

int ov_sync_encode_want(ov_buf *buf, const ov_sync_want *want)
{
    uint8_t p[WANT_BYTES];
    memcpy(p, want->origin.bytes, 16);
    ov_be64_put(p + 16, want->from);
    ov_be32_put(p + 24, want->batch);
    put_type(buf, OV_SYNC_WANT);
    return ov_buf_append(buf, p, sizeof p);
}

int ov_sync_encode_run_begin(ov_buf *buf, const ov_id *origin,
                             const uint8_t public_key[OV_PUBKEY_BYTES],
                             const uint8_t head_bytes[OV_LOG_HEAD_BYTES], uint64_t newest,
                             uint32_t count)
{
    uint8_t tail[12];
    ov_be64_put(tail, newest);
    ov_be32_put(tail + 8, count);
    put_type(buf, OV_SYNC_ENTRIES);
    ov_buf_append(buf, origin->bytes, 16);
    ov_buf_append(buf, public_key, OV_PUBKEY_BYTES);
    ov_buf_append(buf, head_bytes, OV_LOG_HEAD_BYTES);
    return ov_buf_append(buf, tail, sizeof tail);
}

int ov_sync_encode_item(ov_buf *buf, const uint8_t entry_bytes[OV_LOG_ENTRY_BYTES],
                        const char *content, size_t content_len)
{
    uint8_t length[4];
    if (!content)
        content_len = 0;
    if (content_len > OV_SYNC_MESSAGE_MAX)
        return OV_ETOOBIG;
    ov_be32_put(length, (uint32_t)content_len);
    ov_buf_append(buf, entry_bytes, OV_LOG_ENTRY_BYTES);
    ov_buf_append(buf, length, sizeof length);
    return content_len ? ov_buf_append(buf, content, content_len) : (buf->failed ? buf->failed : 0);
}

int ov_sync_encode_keys_begin(ov_buf *buf, const uint8_t genesis[OV_PUBKEY_BYTES], uint32_t count)
{
    if (count > OV_SYNC_KEYS_MAX)
        return OV_EINVAL;
    uint8_t n = (uint8_t)count;
    put_type(buf, OV_SYNC_KEYS);
    ov_buf_append(buf, genesis, OV_PUBKEY_BYTES);
    return ov_buf_append(buf, &n, 1);
}

int ov_sync_encode_key_link(ov_buf *buf, const uint8_t entry_bytes[OV_LOG_ENTRY_BYTES],
                            const uint8_t head_bytes[OV_LOG_HEAD_BYTES],
                            const uint8_t key[OV_PUBKEY_BYTES])
{
    ov_buf_append(buf, entry_bytes, OV_LOG_ENTRY_BYTES);
    ov_buf_append(buf, head_bytes, OV_LOG_HEAD_BYTES);
    return ov_buf_append(buf, key, OV_PUBKEY_BYTES);
}

int ov_sync_encode_error(ov_buf *buf, uint16_t code, const char *reason)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    size_t len = strlen(reason);
    if (len > OV_SYNC_REASON_MAX)
        len = OV_SYNC_REASON_MAX; /* our reasons are ASCII, so the cut keeps it UTF-8 */
    put_type(buf, OV_SYNC_ERROR);
    ov_buf_append(buf, p, 2);
    return ov_buf_append(buf, reason, len);
}

void ov_sync_digest_init(ov_sync_digest_ctx *ctx)
{
    ov_sha256_init(&ctx->sha);
}

void ov_sync_digest_add(ov_sync_digest_ctx *ctx, const ov_sync_position *position)
{
    uint8_t p[OV_SYNC_SUMMARY_ENTRY];
    memcpy(p, position->origin.bytes, 16);
    ov_be64_put(p + 16, position->seq);
    memcpy(p + 24, position->hash, OV_HASH_BYTES);
    ov_sha256_update(&ctx->sha, p, sizeof p);
}

void ov_sync_digest_final(ov_sync_digest_ctx *ctx, uint8_t out[OV_HASH_BYTES])
{
    ov_sha256_final(&ctx->sha, out);
}

void ov_sync_proof_digest(const uint8_t their_nonce[OV_SYNC_NONCE_BYTES], const ov_id *mine,
                          const ov_id *theirs, uint8_t out[OV_HASH_BYTES])
{
    ov_sha256_ctx ctx;
    ov_sha256_init(&ctx);
    ov_sha256_update(&ctx, PROOF_CONTEXT, sizeof PROOF_CONTEXT - 1);
    ov_sha256_update(&ctx, their_nonce, OV_SYNC_NONCE_BYTES);
    ov_sha256_update(&ctx, mine->bytes, 16);
    ov_sha256_update(&ctx, theirs->bytes, 16);
    ov_sha256_final(&ctx, out);
}

/* Whether an item's content is what its entry commits to: its hash, and for a record the
 * canonical form with an envelope that fits the entry (id, origin; deleted exactly for a
 * deletion), read into *env in the same walk. */
static int content_fits(const ov_sync_item *item, ov_envelope *env, unsigned *seen)
{
    uint8_t hash[OV_HASH_BYTES];
    ov_sha256(item->content, item->content_len, hash);
    if (memcmp(hash, item->entry.content_hash, OV_HASH_BYTES) != 0)
        return 0;
    if (item->entry.op == OV_OP_KEY) /* the new key: an uncompressed point */
        return item->content_len == OV_PUBKEY_BYTES && (uint8_t)item->content[0] == 0x04;
    if (item->entry.op != OV_OP_PUT && item->entry.op != OV_OP_DELETE)
        return 0; /* purge and key entries carry no record */
    const unsigned needed = OV_ENVELOPE_ID | OV_ENVELOPE_ORIGIN | OV_ENVELOPE_STATUS;
    if (!ov_record_envelope_canonical(item->content, item->content_len, env, seen) ||
        (*seen & needed) != needed)
        return 0;
    if (ov_id_compare(&env->id, &item->entry.record) != 0 ||
        ov_id_compare(&env->origin, &item->entry.origin) != 0)
        return 0;
    int deleted = env->status == OV_STATUS_DELETED;
    return item->entry.op == OV_OP_DELETE ? deleted : !deleted;
}

int ov_sync_run_check(const ov_sync_run *run, ov_log_entry *first)
{
    return ov_sync_run_check_items(run, first, NULL);
}

int ov_sync_run_check_items(const ov_sync_run *run, ov_log_entry *first, ov_sync_checked *items)
{
    if (ov_id_compare(&run->head.origin, &run->origin) != 0)
        return OV_EBADSIG;
    if (ov_log_head_verify(&run->head, run->public_key) != OV_OK)
        return OV_EBADSIG;
    size_t offset = 0;
    ov_sync_item item;
    uint8_t prev_hash[OV_HASH_BYTES];
    uint64_t prev_seq = 0;
    uint32_t seen = 0;
    while (ov_sync_run_next(run, &offset, &item)) {
        if (seen == 0) {
            *first = item.entry;
            if (ov_id_compare(&item.entry.origin, &run->origin) != 0 ||
                item.entry.seq != run->head.seq - run->count + 1)
                return OV_ECHAIN;
        } else if (ov_log_entry_follows(prev_hash, &run->origin, prev_seq, &item.entry) != OV_OK) {
            return OV_ECHAIN;
        }
        /* A key entry ends its run: what follows it is signed by the key it introduces, which
         * only a head signed by the key before may vouch for (§4). */
        if (item.entry.op == OV_OP_KEY && item.entry.seq != run->head.seq)
            return OV_ECHAIN;
        if (item.entry.op == OV_OP_KEY && !item.content)
            return OV_ESCHEMA;
        if (seen == run->count)
            return OV_ECHAIN; /* more items than the run says: ov_sync_decode refuses that */
        ov_sync_checked checked = {.item = item};
        if (item.content && !content_fits(&item, &checked.env, &checked.env_seen))
            return OV_ESCHEMA;
        if (items)
            items[seen] = checked;
        ov_sha256(item.entry_bytes, OV_LOG_ENTRY_BYTES, prev_hash);
        prev_seq = item.entry.seq;
        seen++;
    }
    if (seen != run->count || prev_seq != run->head.seq ||
        memcmp(prev_hash, run->head.hash, OV_HASH_BYTES) != 0)
        return OV_ECHAIN;
    return OV_OK;
}
