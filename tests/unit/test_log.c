/*
 * The origin log: entry and head encodings, strict decoding, the chain rule, signed heads, and the
 * worked example of docs/log-format.md, which this test regenerates and finds verbatim in the
 * document so the two cannot drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/crypto.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/log.h"

static void random_bytes(void *out, size_t len)
{
    assert_int_equal(ov_random(out, len), OV_OK);
}

static ov_keypair *key_from_byte(uint8_t first)
{
    uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(first + i);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    return key;
}

static ov_log_entry random_entry(uint8_t op)
{
    ov_log_entry e;
    memset(&e, 0, sizeof e);
    e.op = op;
    random_bytes(&e.origin, sizeof e.origin);
    random_bytes(&e.seq, sizeof e.seq);
    e.seq |= 1; /* never 0 */
    random_bytes(e.prev_hash, sizeof e.prev_hash);
    random_bytes(&e.time_ms, sizeof e.time_ms);
    if (op != OV_OP_KEY)
        random_bytes(&e.record, sizeof e.record);
    if (op != OV_OP_PURGE)
        random_bytes(e.content_hash, sizeof e.content_hash);
    return e;
}

static void assert_entry_equal(const ov_log_entry *a, const ov_log_entry *b)
{
    assert_int_equal(a->op, b->op);
    assert_memory_equal(a->origin.bytes, b->origin.bytes, OV_ID_BYTES);
    assert_true(a->seq == b->seq);
    assert_memory_equal(a->prev_hash, b->prev_hash, OV_HASH_BYTES);
    assert_true(a->time_ms == b->time_ms);
    assert_memory_equal(a->record.bytes, b->record.bytes, OV_ID_BYTES);
    assert_memory_equal(a->content_hash, b->content_hash, OV_HASH_BYTES);
}

static void test_entry_round_trip(void **state)
{
    for (int round = 0; round < 50; round++) {
        for (uint8_t op = OV_OP_PUT; op <= OV_OP_KEY; op++) {
            ov_log_entry e = random_entry(op), back;
            uint8_t bytes[OV_LOG_ENTRY_BYTES], again[OV_LOG_ENTRY_BYTES];
            ov_log_entry_encode(&e, bytes);
            assert_int_equal(bytes[0], OV_LOG_FORMAT);
            assert_int_equal(bytes[1], op);
            assert_int_equal(ov_log_entry_decode(bytes, sizeof bytes, &back), OV_OK);
            assert_entry_equal(&e, &back);
            ov_log_entry_encode(&back, again);
            assert_memory_equal(bytes, again, sizeof bytes);

            /* The entry hash is SHA-256 of exactly those bytes. */
            uint8_t hash[OV_HASH_BYTES], expected[OV_HASH_BYTES];
            ov_log_entry_hash(&e, hash);
            ov_sha256(bytes, sizeof bytes, expected);
            assert_memory_equal(hash, expected, sizeof hash);
        }
    }

    /* Big-endian integers at their offsets; negative times survive as two's complement. */
    ov_log_entry e = random_entry(OV_OP_PUT), back;
    e.seq = 0x0102030405060708ull;
    e.time_ms = -2;
    uint8_t bytes[OV_LOG_ENTRY_BYTES];
    ov_log_entry_encode(&e, bytes);
    const uint8_t seq_be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t time_be[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    assert_memory_equal(bytes + 18, seq_be, 8);
    assert_memory_equal(bytes + 58, time_be, 8);
    assert_memory_equal(bytes + 2, e.origin.bytes, OV_ID_BYTES);
    assert_memory_equal(bytes + 26, e.prev_hash, OV_HASH_BYTES);
    assert_memory_equal(bytes + 66, e.record.bytes, OV_ID_BYTES);
    assert_memory_equal(bytes + 82, e.content_hash, OV_HASH_BYTES);
    assert_int_equal(ov_log_entry_decode(bytes, sizeof bytes, &back), OV_OK);
    assert_true(back.time_ms == -2);
}

static void assert_entry_refused(const uint8_t *bytes, size_t len, const char *why)
{
    ov_log_entry untouched, e;
    memset(&untouched, 0xa5, sizeof untouched);
    e = untouched;
    int rc = ov_log_entry_decode(bytes, len, &e);
    if (rc != OV_EPARSE)
        fail_msg("%s: got %s, expected OV_EPARSE", why, ov_error_name(rc));
    assert_memory_equal(&e, &untouched, sizeof e); /* nothing half-written */
}

static void test_entry_decode_refuses(void **state)
{
    ov_log_entry e = random_entry(OV_OP_PUT);
    uint8_t good[OV_LOG_ENTRY_BYTES + 1], bad[OV_LOG_ENTRY_BYTES + 1];
    ov_log_entry_encode(&e, good);
    good[OV_LOG_ENTRY_BYTES] = 0;

    assert_entry_refused(good, OV_LOG_ENTRY_BYTES - 1, "one byte short");
    assert_entry_refused(good, OV_LOG_ENTRY_BYTES + 1, "one byte long");
    assert_entry_refused(good, 0, "empty");

    const uint8_t formats[] = {0, 2, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof formats; i++) {
        memcpy(bad, good, sizeof bad);
        bad[0] = formats[i];
        assert_entry_refused(bad, OV_LOG_ENTRY_BYTES, "unknown format");
    }
    const uint8_t ops[] = {0, 5, 6, 0x80, 0xff};
    for (size_t i = 0; i < sizeof ops; i++) {
        memcpy(bad, good, sizeof bad);
        bad[1] = ops[i];
        assert_entry_refused(bad, OV_LOG_ENTRY_BYTES, "unknown op");
    }
    memcpy(bad, good, sizeof bad);
    memset(bad + 18, 0, 8);
    assert_entry_refused(bad, OV_LOG_ENTRY_BYTES, "seq 0");

    /* A key entry names no record; a purge commits to no content. */
    ov_log_entry key_entry = random_entry(OV_OP_KEY);
    ov_log_entry_encode(&key_entry, bad);
    bad[66 + 15] = 1;
    assert_entry_refused(bad, OV_LOG_ENTRY_BYTES, "key entry with a record");
    ov_log_entry purge = random_entry(OV_OP_PURGE);
    ov_log_entry_encode(&purge, bad);
    bad[82] = 0x80;
    assert_entry_refused(bad, OV_LOG_ENTRY_BYTES, "purge entry with content");
}

static void test_head_round_trip_and_refusal(void **state)
{
    ov_log_head head, back;
    random_bytes(&head, sizeof head);
    head.seq |= 1;
    uint8_t bytes[OV_LOG_HEAD_BYTES], again[OV_LOG_HEAD_BYTES];
    ov_log_head_encode(&head, bytes);
    assert_int_equal(ov_log_head_decode(bytes, sizeof bytes, &back), OV_OK);
    assert_memory_equal(back.origin.bytes, head.origin.bytes, OV_ID_BYTES);
    assert_true(back.seq == head.seq);
    assert_memory_equal(back.hash, head.hash, OV_HASH_BYTES);
    assert_true(back.time_ms == head.time_ms);
    assert_memory_equal(back.signature, head.signature, OV_SIGNATURE_BYTES);
    ov_log_head_encode(&back, again);
    assert_memory_equal(bytes, again, sizeof bytes);

    assert_int_equal(ov_log_head_decode(bytes, sizeof bytes - 1, &back), OV_EPARSE);
    assert_int_equal(ov_log_head_decode(bytes, 0, &back), OV_EPARSE);
    memset(bytes + 16, 0, 8);
    ov_log_head untouched;
    memset(&untouched, 0xa5, sizeof untouched);
    back = untouched;
    assert_int_equal(ov_log_head_decode(bytes, sizeof bytes, &back), OV_EPARSE); /* seq 0 */
    assert_memory_equal(&back, &untouched, sizeof back);
}

static void test_follows(void **state)
{
    ov_id origin, other;
    random_bytes(&origin, sizeof origin);
    random_bytes(&other, sizeof other);
    ov_log_entry first = random_entry(OV_OP_PUT);
    first.origin = origin;
    first.seq = 1;
    memset(first.prev_hash, 0, OV_HASH_BYTES);
    assert_int_equal(ov_log_entry_follows(NULL, &origin, 0, &first), OV_OK);
    assert_int_equal(ov_log_entry_follows(NULL, &other, 0, &first), OV_ECHAIN);

    ov_log_entry bad = first;
    bad.prev_hash[31] = 1;
    assert_int_equal(ov_log_entry_follows(NULL, &origin, 0, &bad), OV_ECHAIN);
    bad = first;
    bad.seq = 2;
    assert_int_equal(ov_log_entry_follows(NULL, &origin, 0, &bad), OV_ECHAIN);

    uint8_t hash[OV_HASH_BYTES];
    ov_log_entry_hash(&first, hash);
    ov_log_entry second = random_entry(OV_OP_DELETE);
    second.origin = origin;
    second.seq = 2;
    memcpy(second.prev_hash, hash, OV_HASH_BYTES);
    assert_int_equal(ov_log_entry_follows(hash, &origin, 1, &second), OV_OK);
    assert_int_equal(ov_log_entry_follows(hash, &other, 1, &second), OV_ECHAIN);
    assert_int_equal(ov_log_entry_follows(hash, &origin, 0, &second), OV_ECHAIN); /* gap */
    assert_int_equal(ov_log_entry_follows(hash, &origin, 2, &second), OV_ECHAIN); /* repeat */
    assert_int_equal(ov_log_entry_follows(NULL, &origin, 1, &second), OV_ECHAIN);
    bad = second;
    bad.prev_hash[0] ^= 0x40;
    assert_int_equal(ov_log_entry_follows(hash, &origin, 1, &bad), OV_ECHAIN);
    bad = second;
    bad.origin.bytes[15] ^= 1;
    assert_int_equal(ov_log_entry_follows(hash, &origin, 1, &bad), OV_ECHAIN);
}

/* What a receiver does with a served log: decode each entry, check it follows the previous one,
 * check the last hash is the head's, check the head's signature. OV_OK or the first failure. */
static int verify_log(const uint8_t (*entries)[OV_LOG_ENTRY_BYTES], size_t count,
                      const uint8_t head_bytes[OV_LOG_HEAD_BYTES],
                      const uint8_t pub[OV_PUBKEY_BYTES])
{
    ov_log_head head;
    int rc = ov_log_head_decode(head_bytes, OV_LOG_HEAD_BYTES, &head);
    if (rc)
        return rc;
    uint8_t prev[OV_HASH_BYTES];
    for (size_t i = 0; i < count; i++) {
        ov_log_entry e;
        rc = ov_log_entry_decode(entries[i], OV_LOG_ENTRY_BYTES, &e);
        if (rc)
            return rc;
        rc = ov_log_entry_follows(i == 0 ? NULL : prev, &head.origin, i, &e);
        if (rc)
            return rc;
        ov_log_entry_hash(&e, prev);
    }
    if (head.seq != count || memcmp(prev, head.hash, OV_HASH_BYTES) != 0)
        return OV_ECHAIN;
    return ov_log_head_verify(&head, pub);
}

static void test_chain_of_1000(void **state)
{
    enum { COUNT = 1000 };
    ov_keypair *key = key_from_byte(1), *other = key_from_byte(2);
    uint8_t pub[OV_PUBKEY_BYTES], other_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    ov_keypair_public(other, other_pub);
    ov_id origin;
    ov_log_node_id(pub, &origin);

    uint8_t(*entries)[OV_LOG_ENTRY_BYTES] = calloc(COUNT, OV_LOG_ENTRY_BYTES);
    assert_non_null(entries);
    uint8_t prev[OV_HASH_BYTES] = {0};
    for (size_t i = 0; i < COUNT; i++) {
        ov_log_entry e = random_entry((uint8_t)(OV_OP_PUT + i % 4));
        e.origin = origin;
        e.seq = i + 1;
        e.time_ms = 1767225600000 + (int64_t)i;
        memcpy(e.prev_hash, prev, OV_HASH_BYTES);
        ov_log_entry_encode(&e, entries[i]);
        ov_log_entry_hash(&e, prev);
    }
    ov_log_head head = {.origin = origin, .seq = COUNT, .time_ms = 1767225601000};
    memcpy(head.hash, prev, OV_HASH_BYTES);
    assert_int_equal(ov_log_head_sign(&head, key), OV_OK);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);
    assert_int_equal(ov_log_head_verify(&head, other_pub), OV_EBADSIG);
    uint8_t head_bytes[OV_LOG_HEAD_BYTES];
    ov_log_head_encode(&head, head_bytes);
    assert_int_equal(verify_log(entries, COUNT, head_bytes, pub), OV_OK);
    assert_int_equal(verify_log(entries, COUNT, head_bytes, other_pub), OV_EBADSIG);

    /* Any single changed byte, in the first, a middle or the last entry, is noticed. */
    const size_t victims[] = {0, 1, COUNT / 2, COUNT - 2, COUNT - 1};
    for (size_t v = 0; v < sizeof victims / sizeof victims[0]; v++) {
        for (size_t pos = 0; pos < OV_LOG_ENTRY_BYTES; pos++) {
            uint8_t saved = entries[victims[v]][pos];
            entries[victims[v]][pos] ^= (uint8_t)(1u << (pos % 8));
            int rc = verify_log(entries, COUNT, head_bytes, pub);
            if (rc == OV_OK)
                fail_msg("changed byte %zu of entry %zu went unnoticed", pos, victims[v] + 1);
            entries[victims[v]][pos] = saved;
        }
    }
    /* So is any changed byte of the head. */
    for (size_t pos = 0; pos < OV_LOG_HEAD_BYTES; pos++) {
        head_bytes[pos] ^= 0x01;
        if (verify_log(entries, COUNT, head_bytes, pub) == OV_OK)
            fail_msg("changed byte %zu of the head went unnoticed", pos);
        head_bytes[pos] ^= 0x01;
    }
    /* Dropping, swapping or truncating entries breaks it too. */
    assert_int_not_equal(verify_log(entries + 1, COUNT - 1, head_bytes, pub), OV_OK);
    assert_int_not_equal(verify_log(entries, COUNT - 1, head_bytes, pub), OV_OK);
    uint8_t swap[OV_LOG_ENTRY_BYTES];
    memcpy(swap, entries[10], sizeof swap);
    memcpy(entries[10], entries[11], sizeof swap);
    memcpy(entries[11], swap, sizeof swap);
    assert_int_equal(verify_log(entries, COUNT, head_bytes, pub), OV_ECHAIN);
    memcpy(entries[11], entries[10], sizeof swap);
    memcpy(entries[10], swap, sizeof swap);
    assert_int_equal(verify_log(entries, COUNT, head_bytes, pub), OV_OK);

    free(entries);
    ov_keypair_free(key);
    ov_keypair_free(other);
}

static void test_head_signature(void **state)
{
    ov_keypair *key = key_from_byte(7), *other = key_from_byte(8);
    uint8_t pub[OV_PUBKEY_BYTES], other_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    ov_keypair_public(other, other_pub);
    ov_log_head head;
    memset(&head, 0, sizeof head);
    ov_log_node_id(pub, &head.origin);
    head.seq = 42;
    random_bytes(head.hash, OV_HASH_BYTES);
    head.time_ms = 1767225600000;
    assert_int_equal(ov_log_head_sign(&head, key), OV_OK);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);

    /* Signed by another key: refused, even when that key signs an otherwise identical head. */
    assert_int_equal(ov_log_head_verify(&head, other_pub), OV_EBADSIG);
    ov_log_head forged = head;
    assert_int_equal(ov_log_head_sign(&forged, other), OV_OK);
    assert_int_equal(ov_log_head_verify(&forged, pub), OV_EBADSIG);
    assert_int_equal(ov_log_head_verify(&forged, other_pub), OV_OK);

    /* Every signed field counts. */
    ov_log_head changed = head;
    changed.seq = 43;
    assert_int_equal(ov_log_head_verify(&changed, pub), OV_EBADSIG);
    changed = head;
    changed.time_ms++;
    assert_int_equal(ov_log_head_verify(&changed, pub), OV_EBADSIG);
    changed = head;
    changed.hash[9] ^= 2;
    assert_int_equal(ov_log_head_verify(&changed, pub), OV_EBADSIG);
    changed = head;
    changed.origin.bytes[0] ^= 2;
    assert_int_equal(ov_log_head_verify(&changed, pub), OV_EBADSIG);

    /* Deterministic: the same head signs to the same bytes. */
    ov_log_head again = head;
    memset(again.signature, 0, OV_SIGNATURE_BYTES);
    assert_int_equal(ov_log_head_sign(&again, key), OV_OK);
    assert_memory_equal(again.signature, head.signature, OV_SIGNATURE_BYTES);

    /* An invalid public key verifies nothing. */
    uint8_t bad_pub[OV_PUBKEY_BYTES] = {0x04};
    assert_int_equal(ov_log_head_verify(&head, bad_pub), OV_EBADSIG);
    ov_keypair_free(key);
    ov_keypair_free(other);
}

static void test_node_id(void **state)
{
    ov_keypair *key = key_from_byte(1);
    uint8_t pub[OV_PUBKEY_BYTES], hash[OV_HASH_BYTES];
    ov_keypair_public(key, pub);
    ov_id id;
    ov_log_node_id(pub, &id);
    ov_sha256(pub, sizeof pub, hash);
    assert_memory_equal(id.bytes, hash, OV_ID_BYTES);
    ov_keypair_free(key);
}

/* ---- The worked example of docs/log-format.md ---- */

static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf + len, size - len, fmt, args);
    va_end(args);
    assert_true(n >= 0 && (size_t)n < size - len);
    return len + (size_t)n;
}

static size_t append_hex(char *buf, size_t size, size_t len, const char *name, const uint8_t *data,
                         size_t data_len)
{
    char hex[2 * OV_LOG_HEAD_BYTES + 1];
    assert_true(data_len <= OV_LOG_HEAD_BYTES);
    ov_hex_encode(data, data_len, hex);
    return append(buf, size, len, "%-15s %s\n", name, hex);
}

static size_t append_entry(char *buf, size_t size, size_t len, const char *name,
                           const ov_log_entry *e)
{
    uint8_t b[OV_LOG_ENTRY_BYTES], hash[OV_HASH_BYTES];
    ov_log_entry_encode(e, b);
    ov_log_entry_hash(e, hash);
    len = append(buf, size, len, "%s, field by field:\n", name);
    len = append_hex(buf, size, len, "  format", b, 1);
    len = append_hex(buf, size, len, "  op", b + 1, 1);
    len = append_hex(buf, size, len, "  origin", b + 2, 16);
    len = append_hex(buf, size, len, "  seq", b + 18, 8);
    len = append_hex(buf, size, len, "  prev_hash", b + 26, 32);
    len = append_hex(buf, size, len, "  time_ms", b + 58, 8);
    len = append_hex(buf, size, len, "  record", b + 66, 16);
    len = append_hex(buf, size, len, "  content_hash", b + 82, 32);
    len = append(buf, size, len, "%s, all 114 bytes:\n", name);
    len = append_hex(buf, size, len, "", b, sizeof b);
    return append_hex(buf, size, len, "entry hash", hash, sizeof hash);
}

/* Builds the example text from the inputs the document states; every value in it is computed. */
static void build_example(char *buf, size_t size)
{
    size_t len = 0;
    uint8_t secret[32], pub[OV_PUBKEY_BYTES];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(i + 1);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    ov_keypair_public(key, pub);
    ov_id node;
    ov_log_node_id(pub, &node);
    char node_text[OV_ID_CHARS + 1];
    ov_id_format(&node, node_text);

    len = append_hex(buf, size, len, "secret", secret, sizeof secret);
    len = append_hex(buf, size, len, "public key", pub, sizeof pub);
    len = append_hex(buf, size, len, "node id", node.bytes, OV_ID_BYTES);
    len = append(buf, size, len, "%-15s %s\n\n", "node id text", node_text);

    /* Entry 1: a put at 2026-01-01T00:00:00Z of a record created at that moment, whose random
     * part is 01 02 … 0a. */
    ov_log_entry e1 = {.op = OV_OP_PUT, .origin = node, .seq = 1, .time_ms = 1767225600000};
    const uint8_t record[OV_ID_BYTES] = {0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00, 0x01, 0x02,
                                         0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
    memcpy(e1.record.bytes, record, OV_ID_BYTES);
    assert_true(ov_id_time_ms(&e1.record) == 1767225600000);
    char record_text[OV_ID_CHARS + 1];
    ov_id_format(&e1.record, record_text);
    len = append(buf, size, len, "%-15s %s\n", "record id", record_text);
    const char *content = "{\"title\":\"Voorbeeld\"}";
    ov_sha256(content, strlen(content), e1.content_hash);
    len = append(buf, size, len, "%-15s %s\n", "content", content);
    len = append_entry(buf, size, len, "entry 1", &e1);

    /* Entry 2: the same record deleted a minute later; its tombstone's bytes stand in as
     * content. */
    ov_log_entry e2 = e1;
    e2.op = OV_OP_DELETE;
    e2.seq = 2;
    e2.time_ms = 1767225660000;
    ov_log_entry_hash(&e1, e2.prev_hash);
    const char *tombstone = "{\"deleted\":true}";
    ov_sha256(tombstone, strlen(tombstone), e2.content_hash);
    len = append(buf, size, len, "\n%-15s %s\n", "content", tombstone);
    len = append_entry(buf, size, len, "entry 2", &e2);

    /* The head over entry 2, signed at 2026-01-01T00:01:00.500Z. */
    ov_log_head head = {.origin = node, .seq = 2, .time_ms = 1767225660500};
    ov_log_entry_hash(&e2, head.hash);
    uint8_t message[16 + 16 + 8 + 32 + 8], digest[OV_HASH_BYTES];
    memcpy(message, "olievlek/head/v1", 16);
    memcpy(message + 16, node.bytes, 16);
    uint8_t head_bytes[OV_LOG_HEAD_BYTES];
    assert_int_equal(ov_log_head_sign(&head, key), OV_OK);
    ov_log_head_encode(&head, head_bytes);
    memcpy(message + 32, head_bytes + 16, 8 + 32 + 8); /* seq, hash, time_ms as encoded */
    ov_log_head_digest(&head, digest);
    uint8_t expected_digest[OV_HASH_BYTES];
    ov_sha256(message, sizeof message, expected_digest);
    assert_memory_equal(digest, expected_digest, OV_HASH_BYTES);
    assert_int_equal(ov_log_head_verify(&head, pub), OV_OK);

    len = append(buf, size, len, "\nhead (seq 2), signed message:\n");
    len = append_hex(buf, size, len, "", message, sizeof message);
    len = append_hex(buf, size, len, "digest", digest, sizeof digest);
    len = append_hex(buf, size, len, "signature r", head.signature, 32);
    len = append_hex(buf, size, len, "signature s", head.signature + 32, 32);
    len = append(buf, size, len, "head, all 128 bytes:\n");
    append_hex(buf, size, len, "", head_bytes, sizeof head_bytes);
    ov_keypair_free(key);
}

static char *read_doc(void)
{
    const char *root = getenv("OV_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/log-format.md", root ? root : ".");
    FILE *file = fopen(path, "rb");
    if (!file)
        fail_msg("cannot open %s (set OV_SOURCE_DIR to the source tree)", path);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, file);
    fclose(file);
    doc[n] = 0;
    return doc;
}

static void test_documented_example(void **state)
{
    static char example[16384];
    build_example(example, sizeof example);
    /* Built twice: the example is deterministic, signature included. */
    static char again[16384];
    build_example(again, sizeof again);
    assert_string_equal(example, again);
    if (getenv("OV_PRINT_LOG_EXAMPLE"))
        fputs(example, stdout);
    const char *doc = read_doc();
    if (!strstr(doc, example)) {
        fprintf(stderr, "docs/log-format.md lacks the example as computed now:\n%s", example);
        fail_msg("docs/log-format.md is out of date");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_round_trip),
        cmocka_unit_test(test_entry_decode_refuses),
        cmocka_unit_test(test_head_round_trip_and_refusal),
        cmocka_unit_test(test_follows),
        cmocka_unit_test(test_chain_of_1000),
        cmocka_unit_test(test_head_signature),
        cmocka_unit_test(test_node_id),
        cmocka_unit_test(test_documented_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
