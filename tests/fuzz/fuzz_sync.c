/*
 * Fuzz target for the federation message decoder (docs/protocol.md §8): arbitrary bytes as one
 * peer message. Whatever decodes must re-encode to exactly the input (one encoding per message),
 * a decoded run must walk exactly its count of items within the message, and the run check must
 * give a defined answer. A violation aborts so the fuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/error.h"
#include "proto/sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode(const ov_sync_message *m, ov_buf *buf)
{
    switch (m->type) {
    case OV_SYNC_HELLO:
        ov_sync_encode_hello(buf, &m->u.hello);
        break;
    case OV_SYNC_PROOF:
        ov_sync_encode_proof(buf, m->u.signature);
        break;
    case OV_SYNC_DIGEST:
        ov_sync_encode_digest(buf, m->u.digest);
        break;
    case OV_SYNC_SUMMARY:
        ov_sync_encode_summary_begin(buf, m->u.summary.batch, m->u.summary.count);
        for (uint32_t i = 0; i < m->u.summary.count; i++) {
            ov_sync_position p;
            ov_sync_summary_at(&m->u.summary, i, &p);
            ov_sync_encode_position(buf, &p);
        }
        break;
    case OV_SYNC_WANT:
        ov_sync_encode_want(buf, &m->u.want);
        break;
    case OV_SYNC_ENTRIES: {
        ov_sync_encode_run_begin(buf, &m->u.run.origin, m->u.run.public_key, m->u.run.head_bytes,
                                 m->u.run.newest, m->u.run.count);
        size_t offset = 0;
        ov_sync_item item;
        uint32_t n = 0;
        while (ov_sync_run_next(&m->u.run, &offset, &item)) {
            ov_sync_encode_item(buf, item.entry_bytes, item.content, item.content_len);
            n++;
        }
        if (n != m->u.run.count || offset != m->u.run.items_len)
            abort();
        ov_log_entry first;
        int rc = ov_sync_run_check(&m->u.run, &first);
        if (rc != OV_OK && rc != OV_EBADSIG && rc != OV_ECHAIN && rc != OV_ESCHEMA)
            abort();
        break;
    }
    case OV_SYNC_KEYS: {
        ov_sync_encode_keys_begin(buf, m->u.keys.genesis, m->u.keys.count);
        for (uint32_t i = 0; i < m->u.keys.count; i++) {
            ov_sync_key_link link;
            ov_sync_keys_at(&m->u.keys, i, &link);
            if (link.entry.op != OV_OP_KEY)
                abort();
            ov_sync_encode_key_link(buf, link.entry_bytes, link.head_bytes, link.key);
        }
        /* Checked as the node the genesis key names, so the chain itself is walked. */
        ov_id node;
        ov_log_node_id(m->u.keys.genesis, &node);
        int rc = ov_sync_keys_check(&m->u.keys, &node, NULL);
        if (rc != OV_OK && rc != OV_EBADSIG)
            abort();
        break;
    }
    case OV_SYNC_ERROR: {
        uint8_t code[2] = {(uint8_t)(m->u.error.code >> 8), (uint8_t)m->u.error.code};
        uint8_t type = OV_SYNC_ERROR;
        ov_buf_append(buf, &type, 1);
        ov_buf_append(buf, code, 2);
        ov_buf_append(buf, m->u.error.reason, m->u.error.reason_len);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ov_sync_message m;
    if (ov_sync_decode(data, size, &m) != OV_OK)
        return 0;
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX + 16);
    reencode(&m, &buf);
    if (buf.failed || buf.len != size || memcmp(buf.data, data, size) != 0)
        abort();
    ov_buf_free(&buf);
    return 0;
}
