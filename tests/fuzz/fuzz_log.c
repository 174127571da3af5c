/*
 * Fuzz target for the origin log decoders: arbitrary bytes as an entry and as a head. Whatever
 * decodes must encode back to exactly the input bytes (one encoding per entry, or two nodes could
 * hash the same entry differently), and the chain check and head verification must return a
 * defined answer for whatever decodes. A violation aborts so the fuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const uint8_t *data, size_t size)
{
    ov_log_entry entry;
    if (ov_log_entry_decode(data, size, &entry) != OV_OK)
        return;
    uint8_t again[OV_LOG_ENTRY_BYTES];
    ov_log_entry_encode(&entry, again);
    if (size != OV_LOG_ENTRY_BYTES || memcmp(again, data, size) != 0)
        abort();
    /* An entry always follows its own prev_hash at seq-1, and never itself. */
    uint8_t hash[OV_HASH_BYTES];
    ov_log_entry_hash(&entry, hash);
    int rc = entry.seq == 1
                 ? ov_log_entry_follows(NULL, &entry.origin, 0, &entry)
                 : ov_log_entry_follows(entry.prev_hash, &entry.origin, entry.seq - 1, &entry);
    int zero_prev = 1;
    for (size_t i = 0; i < OV_HASH_BYTES; i++)
        zero_prev &= entry.prev_hash[i] == 0;
    if (rc != (entry.seq == 1 && !zero_prev ? OV_ECHAIN : OV_OK))
        abort();
    if (ov_log_entry_follows(hash, &entry.origin, entry.seq, &entry) != OV_ECHAIN)
        abort();
}

static void check_head(const uint8_t *data, size_t size)
{
    ov_log_head head;
    if (ov_log_head_decode(data, size, &head) != OV_OK)
        return;
    uint8_t again[OV_LOG_HEAD_BYTES];
    ov_log_head_encode(&head, again);
    if (size != OV_LOG_HEAD_BYTES || memcmp(again, data, size) != 0)
        abort();
    /* Verification gives a defined answer for any bytes, and a signature that verifies stops
     * verifying when one bit of it changes. The key is the generator point (private key 1), so
     * a corpus may hold heads that really verify. */
    static const uint8_t generator[OV_PUBKEY_BYTES] = {
        0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5,
        0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4,
        0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a,
        0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33,
        0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};
    int rc = ov_log_head_verify(&head, generator);
    if (rc != OV_OK && rc != OV_EBADSIG)
        abort();
    if (rc == OV_OK) {
        head.signature[head.seq % OV_SIGNATURE_BYTES] ^= 1;
        if (ov_log_head_verify(&head, generator) != OV_EBADSIG)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_entry(data, size);
    check_head(data, size);
    /* Inputs longer than an entry are also read as an entry followed by a head, the way a log
     * answer pairs them. */
    if (size == OV_LOG_ENTRY_BYTES + OV_LOG_HEAD_BYTES) {
        check_entry(data, OV_LOG_ENTRY_BYTES);
        check_head(data + OV_LOG_ENTRY_BYTES, OV_LOG_HEAD_BYTES);
    }
    return 0;
}
