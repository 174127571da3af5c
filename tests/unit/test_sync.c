/*
 * Federation messages: every type encodes and decodes to the same fields; malformed messages are
 * refused; and a run of log entries passes ov_sync_run_check only when its key, signature, chain
 * and contents are all right — each kind of forgery a hostile peer could send is tried.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/log.h"
#include "proto/sync.h"

#define RUN_LEN 3

typedef struct {
    ov_keypair *key;
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_id origin;
    char content[RUN_LEN][256];
    uint8_t entries[RUN_LEN][OV_LOG_ENTRY_BYTES];
    uint8_t head[OV_LOG_HEAD_BYTES];
} fixture;

static ov_keypair *key_from_byte(uint8_t first)
{
    uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(first + i);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    return key;
}

/* A log of RUN_LEN entries: two puts and a delete of real-looking canonical records, and a head
 * signed over the last. */
static void make_fixture(fixture *f, uint8_t key_byte)
{
    memset(f, 0, sizeof *f);
    f->key = key_from_byte(key_byte);
    ov_keypair_public(f->key, f->pub);
    ov_log_node_id(f->pub, &f->origin);
    char origin[OV_ID_CHARS + 1];
    ov_id_format(&f->origin, origin);
    uint8_t prev[OV_HASH_BYTES] = {0};
    for (int i = 0; i < RUN_LEN; i++) {
        ov_id record;
        assert_int_equal(ov_id_generate(&record, 1767225600000ull + (uint64_t)i), OV_OK);
        char id[OV_ID_CHARS + 1];
        ov_id_format(&record, id);
        int deleted = i == RUN_LEN - 1;
        snprintf(f->content[i], sizeof f->content[i],
                 "{\"id\":\"%s\",\"kind\":\"case\",\"origin\":\"%s\",\"status\":\"%s\"%s}", id,
                 origin, deleted ? "deleted" : "published",
                 deleted ? "" : ",\"title\":\"Intermezzo\"");
        ov_log_entry e = {.op = deleted ? OV_OP_DELETE : OV_OP_PUT,
                          .origin = f->origin,
                          .seq = (uint64_t)i + 1,
                          .time_ms = 1767225600000 + i,
                          .record = record};
        memcpy(e.prev_hash, prev, OV_HASH_BYTES);
        ov_sha256(f->content[i], strlen(f->content[i]), e.content_hash);
        ov_log_entry_encode(&e, f->entries[i]);
        ov_sha256(f->entries[i], OV_LOG_ENTRY_BYTES, prev);
    }
    ov_log_head head = {.origin = f->origin, .seq = RUN_LEN, .time_ms = 1767225601000};
    memcpy(head.hash, prev, OV_HASH_BYTES);
    assert_int_equal(ov_log_head_sign(&head, f->key), OV_OK);
    ov_log_head_encode(&head, f->head);
}

static void encode_run(const fixture *f, ov_buf *buf, int with_content)
{
    ov_buf_init(buf, OV_SYNC_MESSAGE_MAX);
    assert_int_equal(ov_sync_encode_run_begin(buf, &f->origin, f->pub, f->head, RUN_LEN, RUN_LEN),
                     OV_OK);
    for (int i = 0; i < RUN_LEN; i++)
        assert_int_equal(ov_sync_encode_item(buf, f->entries[i],
                                             with_content ? f->content[i] : NULL,
                                             strlen(f->content[i])),
                         OV_OK);
}

static int check_bytes(const ov_buf *buf)
{
    ov_sync_message m;
    int rc = ov_sync_decode((const uint8_t *)buf->data, buf->len, &m);
    if (rc != OV_OK)
        return rc;
    assert_int_equal(m.type, OV_SYNC_ENTRIES);
    ov_log_entry first;
    return ov_sync_run_check(&m.u.run, &first);
}

static void test_good_run_passes(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, 1);
    for (int with_content = 0; with_content <= 1; with_content++) {
        ov_buf buf;
        encode_run(&f, &buf, with_content);
        ov_sync_message m;
        assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
        assert_int_equal(m.u.run.count, RUN_LEN);
        assert_true(m.u.run.newest == RUN_LEN);
        assert_memory_equal(m.u.run.head_bytes, f.head, OV_LOG_HEAD_BYTES);
        ov_log_entry first;
        assert_int_equal(ov_sync_run_check(&m.u.run, &first), OV_OK);
        assert_true(first.seq == 1);
        size_t offset = 0;
        ov_sync_item item;
        int i = 0;
        while (ov_sync_run_next(&m.u.run, &offset, &item)) {
            assert_memory_equal(item.entry_bytes, f.entries[i], OV_LOG_ENTRY_BYTES);
            if (with_content)
                assert_int_equal(item.content_len, strlen(f.content[i]));
            else
                assert_null(item.content);
            i++;
        }
        assert_int_equal(i, RUN_LEN);
        ov_buf_free(&buf);
    }
    ov_keypair_free(f.key);
}

/* Each forgery, applied to a copy of the good message, at its byte offset. */
static void test_forgeries_are_refused(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, 1);
    const size_t run_header = 1 + 16 + OV_PUBKEY_BYTES + OV_LOG_HEAD_BYTES + 8 + 4;
    const size_t head_at = 1 + 16 + OV_PUBKEY_BYTES;
    ov_buf good;
    encode_run(&f, &good, 1);
    size_t first_content = run_header + OV_LOG_ENTRY_BYTES + 4;
    struct {
        const char *what;
        size_t offset;
        int expect;
    } cases[] = {
        {"a content byte", first_content + 10, OV_ESCHEMA},
        {"the signature", head_at + 64 + 5, OV_EBADSIG},
        {"the head's hash", head_at + 24, OV_EBADSIG},
        {"the public key", 1 + 16 + 20, OV_EBADSIG},
        {"the origin named by the run", 1 + 3, OV_EBADSIG},
        {"an entry's time", run_header + 58 + 7, OV_ECHAIN},
        {"an entry's content hash", run_header + 82, OV_ESCHEMA},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ov_buf bad;
        ov_buf_init(&bad, OV_SYNC_MESSAGE_MAX);
        ov_buf_append(&bad, good.data, good.len);
        bad.data[cases[i].offset] ^= 0x01;
        int rc = check_bytes(&bad);
        if (rc != cases[i].expect)
            fail_msg("%s: %s instead of %s", cases[i].what, ov_error_name(rc),
                     ov_error_name(cases[i].expect));
        ov_buf_free(&bad);
    }
    ov_buf_free(&good);

    /* A correct run signed by another node's key, claiming to be this origin. */
    fixture other;
    make_fixture(&other, 77);
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, other.pub, other.head, RUN_LEN, RUN_LEN);
    for (int i = 0; i < RUN_LEN; i++)
        ov_sync_encode_item(&buf, other.entries[i], NULL, 0);
    assert_int_equal(check_bytes(&buf), OV_EBADSIG);
    ov_buf_free(&buf);

    /* Entries out of order, and a run that stops short of its head. */
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN, RUN_LEN);
    ov_sync_encode_item(&buf, f.entries[1], NULL, 0);
    ov_sync_encode_item(&buf, f.entries[0], NULL, 0);
    ov_sync_encode_item(&buf, f.entries[2], NULL, 0);
    assert_int_equal(check_bytes(&buf), OV_ECHAIN);
    ov_buf_free(&buf);
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN, 2);
    ov_sync_encode_item(&buf, f.entries[0], NULL, 0);
    ov_sync_encode_item(&buf, f.entries[1], NULL, 0);
    assert_int_equal(check_bytes(&buf), OV_ECHAIN);
    ov_buf_free(&buf);

    /* A tombstone's content sent for a put entry, a put's content for the delete. */
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN, RUN_LEN);
    ov_sync_encode_item(&buf, f.entries[0], f.content[2], strlen(f.content[2]));
    ov_sync_encode_item(&buf, f.entries[1], NULL, 0);
    ov_sync_encode_item(&buf, f.entries[2], f.content[0], strlen(f.content[0]));
    assert_int_equal(check_bytes(&buf), OV_ESCHEMA);
    ov_buf_free(&buf);
    ov_keypair_free(f.key);
    ov_keypair_free(other.key);
}

static void test_malformed_runs_do_not_decode(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, 1);
    ov_buf good;
    encode_run(&f, &good, 1);
    ov_sync_message m;
    /* Every truncation, and one byte too many. */
    for (size_t len = 0; len < good.len; len++)
        assert_int_equal(ov_sync_decode((const uint8_t *)good.data, len, &m), OV_EPARSE);
    ov_buf_append(&good, "x", 1);
    assert_int_equal(ov_sync_decode((const uint8_t *)good.data, good.len, &m), OV_EPARSE);
    ov_buf_free(&good);

    /* A count larger than the entries that came, and a content length beyond the message. */
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN, 40000);
    ov_sync_encode_item(&buf, f.entries[0], NULL, 0);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN, 1);
    ov_buf_append(&buf, f.entries[2], OV_LOG_ENTRY_BYTES);
    ov_buf_append(&buf, "\xff\xff\xff\xf0", 4);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);
    /* newest below the head's seq */
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &f.origin, f.pub, f.head, RUN_LEN - 1, 1);
    ov_sync_encode_item(&buf, f.entries[2], NULL, 0);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);
    ov_keypair_free(f.key);
}

/* The shallow decode reads the same header, and leaves the walk over the items (and what is
 * wrong there) to the full decode. */
static void test_shallow_decode(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, 1);
    ov_buf good;
    encode_run(&f, &good, 1);
    ov_sync_message deep, shallow;
    assert_int_equal(ov_sync_decode((const uint8_t *)good.data, good.len, &deep), OV_OK);
    assert_int_equal(ov_sync_decode_shallow((const uint8_t *)good.data, good.len, &shallow), OV_OK);
    assert_int_equal(shallow.type, OV_SYNC_ENTRIES);
    assert_memory_equal(shallow.u.run.origin.bytes, deep.u.run.origin.bytes, OV_ID_BYTES);
    assert_true(shallow.u.run.head.seq == deep.u.run.head.seq);
    assert_memory_equal(shallow.u.run.head.hash, deep.u.run.head.hash, OV_HASH_BYTES);
    assert_int_equal(shallow.u.run.count, deep.u.run.count);
    assert_ptr_equal(shallow.u.run.items, deep.u.run.items);
    /* A header cut short fails both ways; items cut short or an item length beyond the message
     * fail only the full decode. */
    assert_int_equal(ov_sync_decode_shallow((const uint8_t *)good.data, 60, &shallow), OV_EPARSE);
    size_t cut = good.len - 10;
    assert_int_equal(ov_sync_decode((const uint8_t *)good.data, cut, &deep), OV_EPARSE);
    assert_int_equal(ov_sync_decode_shallow((const uint8_t *)good.data, cut, &shallow), OV_OK);
    /* Other messages decode exactly as ov_sync_decode has them. */
    ov_buf want;
    ov_buf_init(&want, 1024);
    ov_sync_want w = {.origin = f.origin, .from = 3, .batch = 7};
    ov_sync_encode_want(&want, &w);
    assert_int_equal(ov_sync_decode_shallow((const uint8_t *)want.data, want.len, &shallow), OV_OK);
    assert_true(shallow.type == OV_SYNC_WANT && shallow.u.want.from == 3);
    ov_buf_free(&want);
    ov_buf_free(&good);
    ov_keypair_free(f.key);
}

static void test_small_messages_round_trip(void **state)
{
    (void)state;
    ov_buf buf;
    ov_sync_message m;

    ov_sync_hello hello = {.version = OV_SYNC_VERSION};
    for (int i = 0; i < 16; i++)
        hello.node.bytes[i] = (uint8_t)i;
    memset(hello.public_key, 4, sizeof hello.public_key);
    memset(hello.nonce, 9, sizeof hello.nonce);
    ov_buf_init(&buf, 1024);
    assert_int_equal(ov_sync_encode_hello(&buf, &hello), OV_OK);
    assert_int_equal(buf.len, 1 + 1 + 16 + 65 + 32);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_int_equal(m.type, OV_SYNC_HELLO);
    assert_memory_equal(&m.u.hello, &hello, sizeof hello);
    buf.data[1] = 2; /* another protocol version */
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);

    uint8_t digest[OV_HASH_BYTES];
    memset(digest, 0xab, sizeof digest);
    ov_buf_init(&buf, 1024);
    ov_sync_encode_digest(&buf, digest);
    assert_int_equal(buf.len, 33); /* the in-sync check: 33 bytes each way */
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_memory_equal(m.u.digest, digest, sizeof digest);
    ov_buf_free(&buf);

    ov_sync_want want = {.from = 1000001, .batch = 4096};
    memset(want.origin.bytes, 7, 16);
    ov_buf_init(&buf, 1024);
    ov_sync_encode_want(&buf, &want);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_true(m.u.want.from == 1000001 && m.u.want.batch == 4096);
    ov_buf_free(&buf);
    want.batch = OV_SYNC_BATCH_MAX + 1;
    ov_buf_init(&buf, 1024);
    ov_sync_encode_want(&buf, &want);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);

    /* A summary must name origins in increasing order, each once. */
    ov_sync_position a = {.seq = 5}, b = {.seq = 9};
    memset(a.origin.bytes, 1, 16);
    memset(b.origin.bytes, 2, 16);
    ov_buf_init(&buf, 1024);
    ov_sync_encode_summary_begin(&buf, 1000, 2);
    ov_sync_encode_position(&buf, &a);
    ov_sync_encode_position(&buf, &b);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    ov_sync_position got;
    ov_sync_summary_at(&m.u.summary, 1, &got);
    assert_memory_equal(&got, &b, sizeof got);
    ov_buf_free(&buf);
    ov_buf_init(&buf, 1024);
    ov_sync_encode_summary_begin(&buf, 1000, 2);
    ov_sync_encode_position(&buf, &b);
    ov_sync_encode_position(&buf, &a);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);

    /* batch 0 is the answer that ends a pull (it asks for nothing); above the maximum is not. */
    ov_buf_init(&buf, 1024);
    ov_sync_encode_summary_begin(&buf, 0, 1);
    ov_sync_encode_position(&buf, &a);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_int_equal(m.u.summary.batch, 0);
    ov_buf_free(&buf);
    ov_buf_init(&buf, 1024);
    ov_sync_encode_summary_begin(&buf, OV_SYNC_BATCH_MAX + 1, 0);
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);

    ov_buf_init(&buf, 1024);
    ov_sync_encode_error(&buf, 4003, "proof does not verify");
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_int_equal(m.u.error.code, 4003);
    assert_int_equal(m.u.error.reason_len, strlen("proof does not verify"));
    buf.data[5] = (char)0xc0; /* not UTF-8 */
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    ov_buf_free(&buf);

    uint8_t unknown[] = {0x42, 0};
    assert_int_equal(ov_sync_decode(unknown, sizeof unknown, &m), OV_EPARSE);
    assert_int_equal(ov_sync_decode(unknown, 0, &m), OV_EPARSE);
}

static void test_proof_and_digest(void **state)
{
    (void)state;
    ov_keypair *key = key_from_byte(3);
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    ov_id me, them;
    ov_log_node_id(pub, &me);
    memset(them.bytes, 5, 16);
    uint8_t nonce[OV_SYNC_NONCE_BYTES], digest[OV_HASH_BYTES], sig[OV_SIGNATURE_BYTES];
    memset(nonce, 1, sizeof nonce);
    ov_sync_proof_digest(nonce, &me, &them, digest);
    assert_int_equal(ov_sign(key, digest, sig), OV_OK);
    assert_int_equal(ov_verify(pub, digest, sig), OV_OK);
    /* The proof is bound to the nonce and to both ids: replayed elsewhere it fails. */
    uint8_t other[OV_HASH_BYTES];
    nonce[0] ^= 1;
    ov_sync_proof_digest(nonce, &me, &them, other);
    assert_int_not_equal(ov_verify(pub, other, sig), OV_OK);
    nonce[0] ^= 1;
    ov_sync_proof_digest(nonce, &them, &me, other);
    assert_int_not_equal(ov_verify(pub, other, sig), OV_OK);
    ov_keypair_free(key);

    /* The digest depends on every position and on their order. */
    ov_sync_position p1 = {.seq = 1}, p2 = {.seq = 2};
    memset(p1.origin.bytes, 1, 16);
    memset(p2.origin.bytes, 2, 16);
    uint8_t d1[OV_HASH_BYTES], d2[OV_HASH_BYTES], empty[OV_HASH_BYTES];
    ov_sync_digest_ctx ctx;
    ov_sync_digest_init(&ctx);
    ov_sync_digest_final(&ctx, empty);
    ov_sha256("", 0, d1);
    assert_memory_equal(empty, d1, OV_HASH_BYTES);
    ov_sync_digest_init(&ctx);
    ov_sync_digest_add(&ctx, &p1);
    ov_sync_digest_add(&ctx, &p2);
    ov_sync_digest_final(&ctx, d1);
    p2.seq = 3;
    ov_sync_digest_init(&ctx);
    ov_sync_digest_add(&ctx, &p1);
    ov_sync_digest_add(&ctx, &p2);
    ov_sync_digest_final(&ctx, d2);
    assert_memory_not_equal(d1, d2, OV_HASH_BYTES);
}

/* A rotated log: entry 1 a put, entry 2 the key entry introducing next's key, entry 3 a put. The
 * head at 2 is signed by the genesis key, the head at 3 by the new one. */
typedef struct {
    fixture genesis, next;
    uint8_t entries[3][OV_LOG_ENTRY_BYTES];
    char content[3][256];
    uint8_t head2[OV_LOG_HEAD_BYTES], head3[OV_LOG_HEAD_BYTES], head3_old[OV_LOG_HEAD_BYTES];
} rotated;

static void sign_at(const ov_id *origin, uint64_t seq, const uint8_t *entry, ov_keypair *key,
                    uint8_t out[OV_LOG_HEAD_BYTES])
{
    ov_log_head head = {.origin = *origin, .seq = seq, .time_ms = 1767225602000};
    ov_sha256(entry, OV_LOG_ENTRY_BYTES, head.hash);
    assert_int_equal(ov_log_head_sign(&head, key), OV_OK);
    ov_log_head_encode(&head, out);
}

static void make_rotated(rotated *r)
{
    make_fixture(&r->genesis, 1);
    make_fixture(&r->next, 90);
    const ov_id *origin = &r->genesis.origin;
    memcpy(r->entries[0], r->genesis.entries[0], OV_LOG_ENTRY_BYTES);
    memcpy(r->content[0], r->genesis.content[0], sizeof r->content[0]);
    uint8_t prev[OV_HASH_BYTES];
    ov_sha256(r->entries[0], OV_LOG_ENTRY_BYTES, prev);
    ov_log_entry key = {.op = OV_OP_KEY, .origin = *origin, .seq = 2, .time_ms = 1767225601500};
    memcpy(key.prev_hash, prev, OV_HASH_BYTES);
    ov_sha256(r->next.pub, OV_PUBKEY_BYTES, key.content_hash);
    ov_log_entry_encode(&key, r->entries[1]);
    memcpy(r->content[1], r->next.pub, OV_PUBKEY_BYTES);
    ov_sha256(r->entries[1], OV_LOG_ENTRY_BYTES, prev);
    /* Entry 3: the fixture's second put, chained after the key entry. */
    ov_log_entry put;
    assert_int_equal(ov_log_entry_decode(r->genesis.entries[1], OV_LOG_ENTRY_BYTES, &put), OV_OK);
    put.seq = 3;
    memcpy(put.prev_hash, prev, OV_HASH_BYTES);
    ov_log_entry_encode(&put, r->entries[2]);
    memcpy(r->content[2], r->genesis.content[1], sizeof r->content[2]);
    sign_at(origin, 2, r->entries[1], r->genesis.key, r->head2);
    sign_at(origin, 3, r->entries[2], r->next.key, r->head3);
    sign_at(origin, 3, r->entries[2], r->genesis.key, r->head3_old);
}

static void free_rotated(rotated *r)
{
    ov_keypair_free(r->genesis.key);
    ov_keypair_free(r->next.key);
}

/* A run of entries first..last of r, with contents (the key entry's: key_content, key_len). */
static int check_rotated(const rotated *r, const uint8_t *pub, const uint8_t *head, int first,
                         int last, const char *key_content, size_t key_len)
{
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_run_begin(&buf, &r->genesis.origin, pub, head, 3, (uint32_t)(last - first + 1));
    for (int i = first; i <= last; i++) {
        const char *content = i == 2 ? key_content : r->content[i - 1];
        size_t len = i == 2 ? key_len : strlen(r->content[i - 1]);
        ov_sync_encode_item(&buf, r->entries[i - 1], content, content ? len : 0);
    }
    int rc = check_bytes(&buf);
    ov_buf_free(&buf);
    return rc;
}

static void test_rotated_runs(void **state)
{
    (void)state;
    rotated r;
    make_rotated(&r);
    const char *key = r.content[1];
    /* The run up to the key entry, signed by the genesis key; the next, by the new key. */
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head2, 1, 2, key, OV_PUBKEY_BYTES), OV_OK);
    assert_int_equal(check_rotated(&r, r.next.pub, r.head3, 3, 3, NULL, 0), OV_OK);
    /* The key that signs needs no longer hash to the origin: whether it is the trusted one for
     * that position is the receiver's check (a head by the old key verifies here, and the store
     * and the client refuse it). */
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head3_old, 3, 3, NULL, 0), OV_OK);
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head3, 3, 3, NULL, 0), OV_EBADSIG);
    /* A run that spans the key entry, whoever signed it. */
    assert_int_equal(check_rotated(&r, r.next.pub, r.head3, 1, 3, key, OV_PUBKEY_BYTES), OV_ECHAIN);
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head3_old, 2, 3, key, OV_PUBKEY_BYTES),
                     OV_ECHAIN);
    /* A key entry without its key, with a key that does not hash to it, or with a record. */
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head2, 1, 2, NULL, 0), OV_ESCHEMA);
    char other[OV_PUBKEY_BYTES];
    memcpy(other, r.genesis.pub, OV_PUBKEY_BYTES);
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head2, 1, 2, other, OV_PUBKEY_BYTES),
                     OV_ESCHEMA);
    assert_int_equal(check_rotated(&r, r.genesis.pub, r.head2, 1, 2, key, OV_PUBKEY_BYTES - 1),
                     OV_ESCHEMA);
    assert_int_equal(
        check_rotated(&r, r.genesis.pub, r.head2, 1, 2, r.content[0], strlen(r.content[0])),
        OV_ESCHEMA);
    free_rotated(&r);
}

static int check_keys(const uint8_t *genesis, const uint8_t *entry, const uint8_t *head,
                      const uint8_t *key, const ov_id *node, uint8_t current[OV_PUBKEY_BYTES])
{
    ov_buf buf;
    ov_buf_init(&buf, 4096);
    ov_sync_encode_keys_begin(&buf, genesis, 1);
    ov_sync_encode_key_link(&buf, entry, head, key);
    ov_sync_message m;
    int rc = ov_sync_decode((const uint8_t *)buf.data, buf.len, &m);
    if (rc == OV_OK) {
        assert_int_equal(m.type, OV_SYNC_KEYS);
        rc = ov_sync_keys_check(&m.u.keys, node, current);
    }
    ov_buf_free(&buf);
    return rc;
}

static void test_key_chain(void **state)
{
    (void)state;
    rotated r;
    make_rotated(&r);
    uint8_t current[OV_PUBKEY_BYTES];
    const uint8_t *key = (const uint8_t *)r.content[1];
    assert_int_equal(
        check_keys(r.genesis.pub, r.entries[1], r.head2, key, &r.genesis.origin, current), OV_OK);
    assert_memory_equal(current, r.next.pub, OV_PUBKEY_BYTES);
    /* Another node's genesis key; a head at the key entry signed by the new key itself; a key
     * that is not the one the entry commits to; a head at another entry. */
    assert_int_equal(check_keys(r.next.pub, r.entries[1], r.head2, key, &r.genesis.origin, NULL),
                     OV_EBADSIG);
    uint8_t self_signed[OV_LOG_HEAD_BYTES];
    sign_at(&r.genesis.origin, 2, r.entries[1], r.next.key, self_signed);
    assert_int_equal(
        check_keys(r.genesis.pub, r.entries[1], self_signed, key, &r.genesis.origin, NULL),
        OV_EBADSIG);
    assert_int_equal(
        check_keys(r.genesis.pub, r.entries[1], r.head2, r.genesis.pub, &r.genesis.origin, NULL),
        OV_EBADSIG);
    assert_int_equal(
        check_keys(r.genesis.pub, r.entries[1], r.head3_old, key, &r.genesis.origin, NULL),
        OV_EBADSIG);
    /* A link whose entry is not a key entry does not even decode; nor a count beyond the cap. */
    assert_int_equal(check_keys(r.genesis.pub, r.entries[0], r.head2, key, &r.genesis.origin, NULL),
                     OV_EPARSE);
    ov_buf buf;
    ov_buf_init(&buf, 4096);
    ov_sync_encode_keys_begin(&buf, r.genesis.pub, 0);
    buf.data[1 + OV_PUBKEY_BYTES] = OV_SYNC_KEYS_MAX + 1;
    ov_sync_message m;
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_EPARSE);
    buf.data[1 + OV_PUBKEY_BYTES] = 0; /* no rotation: the genesis key is current */
    assert_int_equal(ov_sync_decode((const uint8_t *)buf.data, buf.len, &m), OV_OK);
    assert_int_equal(ov_sync_keys_check(&m.u.keys, &r.genesis.origin, current), OV_OK);
    assert_memory_equal(current, r.genesis.pub, OV_PUBKEY_BYTES);
    ov_buf_free(&buf);
    free_rotated(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_run_passes),
        cmocka_unit_test(test_forgeries_are_refused),
        cmocka_unit_test(test_malformed_runs_do_not_decode),
        cmocka_unit_test(test_shallow_decode),
        cmocka_unit_test(test_small_messages_round_trip),
        cmocka_unit_test(test_proof_and_digest),
        cmocka_unit_test(test_rotated_runs),
        cmocka_unit_test(test_key_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
