/*
 * Federation over websockets (docs/protocol.md §8). One `link` per websocket to a peer, in or
 * out; at most one authenticated link per peer. A link goes HELLO → PROOF → DIGEST (→ SUMMARY)
 * and is then *live*: runs flow both ways as the two logs grow.
 *
 * What each link knows of its peer is `known`: per origin, the newest seq the peer has or has
 * been sent. It starts from the peer's SUMMARY (or from our own positions when the digests were
 * equal) and grows with every run sent or received, so a push sends exactly what the peer lacks.
 * A wrong guess costs nothing: a peer that finds a gap answers WANT from where it is.
 *
 * Received runs go through one pipeline per link, in arrival order: a copy of the message is
 * checked on the thread pool (ov_sync_run_check), then stored by the writer (which checks that
 * the run follows what is stored, in the same transaction). A link whose peer sends more than the
 * pipeline holds (RX_QUEUE_MAX messages or RX_QUEUE_BYTES) is cut off: a peer that asks
 * for runs one at a time never gets there.
 */
#include "server/federation.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/error.h"
#include "proto/sync.h"
#include "server/jlog.h"
#include "server/metrics.h"
#include "server/search_index.h"

#define PEER_PATH      "/api/v1/peer"
#define PEER_PROTOCOL  "olievlek.peer.v1"
#define HANDSHAKE_MS   10000
#define BATCH          4096u      /* entries asked for per run */
#define RUN_BYTES_MAX  (8u << 20) /* a run is cut short at a checkpoint before this many bytes */
#define RX_QUEUE_MAX   64
#define RX_QUEUE_BYTES (64u << 20)
#define TX_QUEUE_BYTES (32u << 20) /* pushes wait while this much is unsent to a peer */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 300000
#define TICK_MS        500
#define PING_MS        10000 /* a ping to every peer this often ... */
#define SILENT_MS      35000 /* ... and one not heard from for this long is closed */
#define KNOWN_MAX      4096  /* origins remembered per link */

typedef enum { LINK_HELLO, LINK_LIVE, LINK_CLOSING } link_state;

typedef enum {
    REJECT_MALFORMED,
    REJECT_PROOF,
    REJECT_FORGED,
    REJECT_CHAIN,
    REJECT_FORK,
    REJECT_OVERLOAD,
    REJECT_COUNT
} reject_reason;

static const char *const reject_names[REJECT_COUNT] = {"malformed", "proof", "forged",
                                                       "chain",     "fork",  "overload"};

typedef struct peer peer;
typedef struct peer_link peer_link;

typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    char data[];
} out_msg;

typedef struct rx_msg {
    struct rx_msg *next;
    ov_sync_message decoded; /* points into data */
    size_t len;
    uint8_t data[];
} rx_msg;

typedef struct {
    ov_id origin;
    uint64_t seq;
} known_pos;

struct peer_link {
    ov_federation *fed;
    peer_link *next;
    ov_ws *ws;
    peer *peer; /* the configured peer: from the dial, or once an incoming HELLO named it */
    int outgoing;
    link_state state;
    int64_t deadline_ms; /* handshake must be done by then */
    int64_t heard_ms;    /* last message or pong from the peer */
    int64_t pinged_ms;
    uint8_t nonce[OV_SYNC_NONCE_BYTES];
    ov_id their_id;
    uint8_t their_key[OV_PUBKEY_BYTES];
    int got_hello, got_proof, sent_digest;
    int key_pending; /* HELLO's key is not one we know for the peer: its KEYS must prove it */
    out_msg *out_head, *out_tail;
    size_t out_bytes;
    rx_msg *rx_head, *rx_tail;
    size_t rx_count, rx_bytes;
    /* The pipeline: one run checked on the thread pool while the one before is stored. */
    int checking;            /* a run is on the thread pool */
    struct check_job *ready; /* checked, waiting for the writer */
    int applying;            /* a run is with the writer */
    ov_id wanted_origin;     /* the last WANT sent ... */
    uint64_t wanted_from;    /* ... and where it asked from (0: none) */
    uint64_t arrived_upto;   /* the newest head.seq of wanted_origin's runs that arrived */
    int gone;                /* the websocket is closed; freed when nothing is in the pipeline */
    known_pos *known;
    size_t known_count, known_cap;
};

struct peer {
    ov_peer_config config;
    peer_link *link; /* the authenticated link, if any */
    int dialling;
    int64_t next_dial_ms;
    int64_t backoff_ms;
    char last_error[192];
    uint64_t runs_in, entries_in, runs_out, connects;
};

#define ANALYSERS_IDLE_MAX 8 /* kept idle; more (a larger thread pool) are freed after use */

struct ov_federation {
    ov_node *node;
    peer peers[OV_FEDERATION_MAX_PEERS];
    int peer_count;
    peer_link *links;
    uv_timer_t tick;
    int started, stopped;
    uint64_t rejected[REJECT_COUNT];
    uint64_t runs_in, entries_in, runs_out, entries_out, bytes_out;
    /* The analysers check_work used, kept for the next pieces: an analyser's memo of word ->
     * term is worth a run's vocabulary, stemmed again and its tables grown again with every new
     * analyser. As many are made as pieces are checked at once; freed with the federation (after
     * the loop, so no piece holds one). */
    pthread_mutex_t analysers_lock;
    ov_search_analyser *analysers[ANALYSERS_IDLE_MAX];
    int analyser_count;
};

static int64_t now_ms(ov_federation *fed)
{
    return (int64_t)uv_now(fed->node->loop);
}

/* ---- Peers setting ------------------------------------------------------------------------- */

int ov_federation_parse_peers(const char *text, ov_peer_config *peers, int max, int *count,
                              char *err, size_t err_size)
{
    *count = 0;
    const char *p = text;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if (*count >= max) {
            snprintf(err, err_size, "peers: more than %d peers", max);
            return OV_EINVAL;
        }
        ov_peer_config *c = &peers[*count];
        memset(c, 0, sizeof *c);
        const char *at = memchr(p, '@', len);
        size_t id_len = at ? (size_t)(at - p) : len;
        if (ov_id_parse(p, id_len, &c->id) != OV_OK) {
            snprintf(err, err_size, "peers: \"%.*s\" is not a node id (26 characters)", (int)id_len,
                     p);
            return OV_EINVAL;
        }
        if (at) {
            size_t url_len = len - id_len - 1;
            if (url_len == 0 || url_len >= sizeof c->url ||
                (strncmp(at + 1, "ws://", 5) != 0 && strncmp(at + 1, "wss://", 6) != 0)) {
                snprintf(err, err_size,
                         "peers: the URL after %.*s@ must start with ws:// or wss://", (int)id_len,
                         p);
                return OV_EINVAL;
            }
            memcpy(c->url, at + 1, url_len);
            c->url[url_len] = '\0';
        }
        for (int i = 0; i < *count; i++)
            if (ov_id_compare(&peers[i].id, &c->id) == 0) {
                snprintf(err, err_size, "peers: %.*s is named twice", (int)id_len, p);
                return OV_EINVAL;
            }
        (*count)++;
        p = end;
    }
    return OV_OK;
}

/* ---- Sending --------------------------------------------------------------------------------- */

static void flush(peer_link *l)
{
    while (l->out_head && l->ws) {
        int rc = ov_ws_send(l->ws, l->out_head->data, l->out_head->len, NULL, 0);
        if (rc == OV_EAGAIN) {
            ov_ws_want_writable(l->ws);
            return;
        }
        out_msg *m = l->out_head;
        l->out_head = m->next;
        if (!l->out_head)
            l->out_tail = NULL;
        l->out_bytes -= m->len;
        free(m);
        if (rc != OV_OK)
            return;
    }
}

/* Queues one whole message (buf's bytes) and sends what the socket takes. */
static int send_buf(peer_link *l, const ov_buf *buf)
{
    if (buf->failed || l->state == LINK_CLOSING || !l->ws)
        return buf->failed ? buf->failed : OV_EIO;
    out_msg *m = malloc(sizeof *m + buf->len);
    if (!m)
        return OV_ENOMEM;
    m->next = NULL;
    m->len = buf->len;
    memcpy(m->data, buf->data, buf->len);
    if (l->out_tail)
        l->out_tail->next = m;
    else
        l->out_head = m;
    l->out_tail = m;
    l->out_bytes += m->len;
    l->fed->bytes_out += m->len;
    flush(l);
    return OV_OK;
}

/* Sends a message built in buf, then frees buf. */
static void send_and_free(peer_link *l, ov_buf *buf)
{
    send_buf(l, buf);
    ov_buf_free(buf);
}

static void link_fail(peer_link *l, reject_reason reason, int code, const char *why)
{
    if (l->state == LINK_CLOSING)
        return;
    l->fed->rejected[reason]++;
    char id[OV_ID_CHARS + 1] = "";
    if (l->got_hello)
        ov_id_format(&l->their_id, id);
    ov_jlog_warn("peer.rejected", "peer", id, "reason", reject_names[reason], "detail", why, NULL);
    if (l->peer) {
        snprintf(l->peer->last_error, sizeof l->peer->last_error, "%s: %.150s",
                 reject_names[reason], why);
        /* A peer that sent something wrong waits longer each time before we dial it again. */
        l->peer->backoff_ms = l->peer->backoff_ms ? l->peer->backoff_ms * 2 : BACKOFF_MIN_MS * 4;
        if (l->peer->backoff_ms > BACKOFF_MAX_MS)
            l->peer->backoff_ms = BACKOFF_MAX_MS;
    }
    ov_buf buf;
    ov_buf_init(&buf, 256);
    ov_sync_encode_error(&buf, (uint16_t)code, why);
    send_and_free(l, &buf);
    l->state = LINK_CLOSING;
    if (l->ws)
        ov_ws_close(l->ws, code, why);
}

/* ---- What the peer has ------------------------------------------------------------------------
 */

static known_pos *known_find(peer_link *l, const ov_id *origin)
{
    for (size_t i = 0; i < l->known_count; i++)
        if (ov_id_compare(&l->known[i].origin, origin) == 0)
            return &l->known[i];
    return NULL;
}

static uint64_t known_seq(peer_link *l, const ov_id *origin)
{
    known_pos *k = known_find(l, origin);
    return k ? k->seq : 0;
}

static void known_raise(peer_link *l, const ov_id *origin, uint64_t seq)
{
    known_pos *k = known_find(l, origin);
    if (k) {
        if (seq > k->seq)
            k->seq = seq;
        return;
    }
    if (l->known_count == l->known_cap) {
        if (l->known_cap >= KNOWN_MAX)
            return; /* more origins than we track: they are sent again, and skipped as duplicates */
        size_t cap = l->known_cap ? l->known_cap * 2 : 16;
        known_pos *grown = realloc(l->known, cap * sizeof *grown);
        if (!grown)
            return;
        l->known = grown;
        l->known_cap = cap;
    }
    l->known[l->known_count].origin = *origin;
    l->known[l->known_count].seq = seq;
    l->known_count++;
}

/* ---- Runs out ------------------------------------------------------------------------------ */

typedef struct {
    ov_buf *buf;
    uint32_t count;
} run_items;

static int on_log_item(void *ctx, const ov_log_entry *entry, const char *content, size_t len)
{
    run_items *items = ctx;
    uint8_t bytes[OV_LOG_ENTRY_BYTES];
    ov_log_entry_encode(entry, bytes);
    items->count++;
    return ov_sync_encode_item(items->buf, bytes, content, content ? len : 0);
}

/* Sends origin's entries from `from` on, ending at a checkpoint, at most batch entries where a
 * checkpoint allows. Returns the last seq sent, or 0 when there is nothing from `from` on. */
static uint64_t send_run(peer_link *l, ov_read *read, const ov_id *origin, uint64_t from,
                         uint32_t batch)
{
    ov_log_head newest, end;
    uint8_t pub[OV_PUBKEY_BYTES];
    if (ov_read_head(read, origin, &newest, pub) != OV_OK || newest.seq < from)
        return 0;
    if (ov_read_checkpoint(read, origin, from, batch, &end) != OV_OK)
        return 0;
    /* The key that signed that checkpoint: the newest head's, unless a key entry lies between. */
    if (ov_read_key(read, origin, end.seq, pub) != OV_OK && end.seq != newest.seq)
        return 0;
    uint64_t count = end.seq - from + 1;
    if (count > OV_SYNC_BATCH_MAX)
        return 0; /* a log signed less often than this cannot be served in runs (never ours) */
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    uint8_t head_bytes[OV_LOG_HEAD_BYTES];
    ov_log_head_encode(&end, head_bytes);
    ov_sync_encode_run_begin(&buf, origin, pub, head_bytes, newest.seq, (uint32_t)count);
    run_items items = {&buf, 0};
    int rc = ov_read_log(read, origin, from, (size_t)count, on_log_item, &items);
    if (rc != OV_OK || items.count != count || buf.failed) {
        ov_buf_free(&buf);
        return 0;
    }
    send_and_free(l, &buf);
    l->fed->runs_out++;
    l->fed->entries_out += count;
    if (l->peer)
        l->peer->runs_out++;
    known_raise(l, origin, end.seq);
    return end.seq;
}

/* What the peer lacks, one run per origin. A peer far behind (more than a batch) gets only the
 * first run after its summary; it asks for the rest itself (WANT), one run at a time, so a
 * catch-up is paced by the receiver. A peer that is close behind — the live case — gets the
 * new entries at once. */
typedef struct {
    peer_link *link;
    ov_read *read;
    int first; /* just after the peer's summary */
} push_ctx;

static int on_head_push(void *ctx, const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES])
{
    (void)pub;
    push_ctx *p = ctx;
    if (p->link->out_bytes >= TX_QUEUE_BYTES || p->link->state != LINK_LIVE)
        return 0;
    uint64_t have = known_seq(p->link, &head->origin);
    if (have >= head->seq || (!p->first && head->seq - have > BATCH))
        return 0;
    send_run(p->link, p->read, &head->origin, have + 1, BATCH);
    return 0;
}

static void push_runs(peer_link *l, int first)
{
    if (l->state != LINK_LIVE)
        return;
    ov_read *read = NULL;
    if (ov_read_begin(l->fed->node->store, &read) != OV_OK)
        return;
    push_ctx ctx = {l, read, first};
    ov_read_heads(read, on_head_push, &ctx);
    ov_read_end(read);
}

static void push(peer_link *l)
{
    push_runs(l, 0);
}

void ov_federation_notify(ov_federation *fed)
{
    for (peer_link *l = fed->links; l; l = l->next)
        push(l);
}

/* ---- Handshake and summaries ---------------------------------------------------------------- */

/* After HELLO, a node whose key was rotated proves it (§8.1): KEYS with its genesis key and, per
 * rotation, the key entry, the head signed at it by the key before, and the new key. */
typedef struct {
    ov_read *read;
    const ov_id *node;
    ov_buf *buf;
    uint32_t count;
    int rc;
} chain_ctx;

static int on_chain_key(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES])
{
    chain_ctx *c = ctx;
    if (seq == 0)
        return 0;
    uint8_t entry[OV_LOG_ENTRY_BYTES], head_bytes[OV_LOG_HEAD_BYTES];
    ov_log_head head;
    c->rc = ov_read_entry(c->read, c->node, seq, entry);
    if (c->rc == OV_OK)
        c->rc = ov_read_checkpoint_at(c->read, c->node, seq, &head);
    if (c->rc != OV_OK)
        return c->rc;
    ov_log_head_encode(&head, head_bytes);
    ov_sync_encode_key_link(c->buf, entry, head_bytes, pub);
    c->count++;
    return 0;
}

static int on_genesis_key(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES])
{
    uint8_t *genesis = ctx;
    if (seq == 0)
        memcpy(genesis, pub, OV_PUBKEY_BYTES);
    return -1; /* row 0 comes first: the rest is not needed */
}

static void send_keys(peer_link *l)
{
    ov_read *read = NULL;
    const ov_id *self = ov_store_node_id(l->fed->node->store);
    if (ov_read_begin(l->fed->node->store, &read) != OV_OK)
        return;
    uint8_t current[OV_PUBKEY_BYTES], genesis[OV_PUBKEY_BYTES];
    ov_keypair_public(l->fed->node->key, current);
    ov_id owner;
    ov_log_node_id(current, &owner);
    if (ov_id_compare(&owner, self) == 0) { /* the genesis key: nothing to prove */
        ov_read_end(read);
        return;
    }
    memset(genesis, 0, sizeof genesis);
    ov_read_keys(read, self, on_genesis_key, genesis);
    ov_buf links, buf;
    ov_buf_init(&links, (size_t)OV_SYNC_KEYS_MAX * OV_SYNC_KEY_LINK);
    chain_ctx c = {read, self, &links, 0, OV_OK};
    int rc = ov_read_keys(read, self, on_chain_key, &c);
    ov_read_end(read);
    if (rc != OV_OK || c.rc != OV_OK || links.failed || c.count > OV_SYNC_KEYS_MAX) {
        ov_buf_free(&links);
        link_fail(l, REJECT_OVERLOAD, 1011, "this node's key chain is not readable");
        return;
    }
    ov_buf_init(&buf, links.len + 128);
    ov_sync_encode_keys_begin(&buf, genesis, c.count);
    ov_buf_append(&buf, links.data, links.len);
    ov_buf_free(&links);
    send_and_free(l, &buf);
}

static void send_hello(peer_link *l)
{
    ov_sync_hello hello = {.version = OV_SYNC_VERSION};
    hello.node = *ov_store_node_id(l->fed->node->store);
    ov_keypair_public(l->fed->node->key, hello.public_key);
    if (ov_random(l->nonce, sizeof l->nonce) != OV_OK) {
        link_fail(l, REJECT_MALFORMED, 1011, "no randomness for the handshake");
        return;
    }
    memcpy(hello.nonce, l->nonce, sizeof l->nonce);
    ov_buf buf;
    ov_buf_init(&buf, 512);
    ov_sync_encode_hello(&buf, &hello);
    send_and_free(l, &buf);
    send_keys(l);
}

typedef struct {
    ov_sync_digest_ctx digest;
    ov_buf *summary;
    uint32_t count;
} positions_ctx;

static int on_head_position(void *ctx, const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES])
{
    (void)pub;
    positions_ctx *p = ctx;
    ov_sync_position pos = {.origin = head->origin, .seq = head->seq};
    memcpy(pos.hash, head->hash, OV_HASH_BYTES);
    ov_sync_digest_add(&p->digest, &pos);
    if (p->summary)
        ov_sync_encode_position(p->summary, &pos);
    p->count++;
    return 0;
}

/* The digest of what this node holds, and optionally the positions themselves into summary. */
static int read_positions(ov_federation *fed, uint8_t digest[OV_HASH_BYTES], ov_buf *summary,
                          uint32_t *count)
{
    ov_read *read = NULL;
    int rc = ov_read_begin(fed->node->store, &read);
    if (rc != OV_OK)
        return rc;
    positions_ctx ctx = {.summary = summary};
    ov_sync_digest_init(&ctx.digest);
    rc = ov_read_heads(read, on_head_position, &ctx);
    ov_read_end(read);
    ov_sync_digest_final(&ctx.digest, digest);
    if (count)
        *count = ctx.count;
    return rc;
}

static void send_digest(peer_link *l)
{
    uint8_t digest[OV_HASH_BYTES];
    if (read_positions(l->fed, digest, NULL, NULL) != OV_OK) {
        link_fail(l, REJECT_OVERLOAD, 1011, "store not readable");
        return;
    }
    ov_buf buf;
    ov_buf_init(&buf, 64);
    ov_sync_encode_digest(&buf, digest);
    send_and_free(l, &buf);
    l->sent_digest = 1;
}

/* The summary of what this node holds: the positions read for the digest (count of them in
 * positions), behind the header that carries their count. */
static void send_summary(peer_link *l, const ov_buf *positions, uint32_t count)
{
    ov_buf buf;
    ov_buf_init(&buf, OV_SYNC_MESSAGE_MAX);
    ov_sync_encode_summary_begin(&buf, BATCH, count);
    if (positions->len)
        ov_buf_append(&buf, positions->data, positions->len);
    send_and_free(l, &buf);
}

static peer *peer_by_id(ov_federation *fed, const ov_id *id)
{
    for (int i = 0; i < fed->peer_count; i++)
        if (ov_id_compare(&fed->peers[i].config.id, id) == 0)
            return &fed->peers[i];
    return NULL;
}

static void on_hello(peer_link *l, const ov_sync_hello *hello)
{
    if (l->got_hello) {
        link_fail(l, REJECT_MALFORMED, 1002, "second HELLO");
        return;
    }
    if (l->outgoing && ov_id_compare(&hello->node, &l->peer->config.id) != 0) {
        link_fail(l, REJECT_PROOF, 4003, "not the node id pinned for this peer");
        return;
    }
    if (!l->outgoing) {
        peer *p = peer_by_id(l->fed, &hello->node);
        if (!p) {
            link_fail(l, REJECT_PROOF, 4003, "this node does not peer with that node id");
            return;
        }
        l->peer = p;
    }
    l->got_hello = 1;
    l->their_id = hello->node;
    memcpy(l->their_key, hello->public_key, OV_PUBKEY_BYTES);
    /* The key is the peer's if it is the newest of its key chain as this node holds it, or, when
     * this node holds none, its genesis key (it hashes to the id). Else KEYS must prove it. */
    ov_read *read = NULL;
    uint8_t known[OV_PUBKEY_BYTES];
    int rc = ov_read_begin(l->fed->node->store, &read);
    if (rc == OV_OK) {
        rc = ov_read_key(read, &hello->node, UINT64_MAX, known);
        ov_read_end(read);
    }
    ov_id key_owner;
    ov_log_node_id(hello->public_key, &key_owner);
    if (rc == OV_ENOTFOUND)
        l->key_pending = ov_id_compare(&key_owner, &hello->node) != 0;
    else
        l->key_pending = rc != OV_OK || memcmp(known, hello->public_key, OV_PUBKEY_BYTES) != 0;
    uint8_t digest[OV_HASH_BYTES], signature[OV_SIGNATURE_BYTES];
    ov_sync_proof_digest(hello->nonce, ov_store_node_id(l->fed->node->store), &hello->node, digest);
    if (ov_sign(l->fed->node->key, digest, signature) != OV_OK) {
        link_fail(l, REJECT_MALFORMED, 1011, "cannot sign the proof");
        return;
    }
    ov_buf buf;
    ov_buf_init(&buf, 128);
    ov_sync_encode_proof(&buf, signature);
    send_and_free(l, &buf);
}

typedef struct {
    const ov_sync_keys *keys;
    int consistent;
} known_chain;

/* Every key this node holds of the peer must be in the chain it sent, at the same position. */
static int on_known_key(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES])
{
    known_chain *k = ctx;
    int found = seq == 0 && memcmp(pub, k->keys->genesis, OV_PUBKEY_BYTES) == 0;
    for (uint32_t i = 0; !found && i < k->keys->count; i++) {
        ov_sync_key_link link;
        ov_sync_keys_at(k->keys, i, &link);
        found = link.entry.seq == seq && memcmp(link.key, pub, OV_PUBKEY_BYTES) == 0;
    }
    if (!found) {
        k->consistent = 0;
        return -1;
    }
    return 0;
}

static void on_keys(peer_link *l, const ov_sync_keys *keys)
{
    if (!l->got_hello || l->got_proof) {
        link_fail(l, REJECT_MALFORMED, 1002, "KEYS out of order");
        return;
    }
    if (!l->key_pending)
        return; /* the key is known already */
    uint8_t current[OV_PUBKEY_BYTES];
    if (ov_sync_keys_check(keys, &l->their_id, current) != OV_OK) {
        link_fail(l, REJECT_PROOF, 4003, "a key chain that does not verify");
        return;
    }
    if (memcmp(current, l->their_key, OV_PUBKEY_BYTES) != 0) {
        link_fail(l, REJECT_PROOF, 4003, "the key chain does not end in the key of HELLO");
        return;
    }
    known_chain k = {keys, 1};
    ov_read *read = NULL;
    if (ov_read_begin(l->fed->node->store, &read) == OV_OK) {
        ov_read_keys(read, &l->their_id, on_known_key, &k);
        ov_read_end(read);
    }
    if (!k.consistent) {
        link_fail(l, REJECT_PROOF, 4003, "a key chain that contradicts the one this node holds");
        return;
    }
    l->key_pending = 0;
}

static void on_proof(peer_link *l, const uint8_t signature[OV_SIGNATURE_BYTES])
{
    if (!l->got_hello || l->got_proof) {
        link_fail(l, REJECT_MALFORMED, 1002, "PROOF out of order");
        return;
    }
    if (l->key_pending) {
        link_fail(l, REJECT_PROOF, 4003, "a key that is not the node's genesis key, unproven");
        return;
    }
    uint8_t digest[OV_HASH_BYTES];
    ov_sync_proof_digest(l->nonce, &l->their_id, ov_store_node_id(l->fed->node->store), digest);
    if (ov_verify(l->their_key, digest, signature) != OV_OK) {
        link_fail(l, REJECT_PROOF, 4003, "the proof does not verify");
        return;
    }
    l->got_proof = 1;
    peer *p = l->peer;
    if (p->link && p->link != l) {
        /* Both nodes dialled at once: the link dialled by the node with the smaller id stays. */
        int mine_wins = ov_id_compare(ov_store_node_id(l->fed->node->store), &l->their_id) < 0;
        peer_link *keep = (l->outgoing == mine_wins) ? l : p->link;
        peer_link *drop = keep == l ? p->link : l;
        drop->state = LINK_CLOSING;
        if (drop->ws)
            ov_ws_close(drop->ws, 4004, "a second connection between the same nodes");
        if (drop == l)
            return;
    }
    p->link = l;
    p->backoff_ms = 0;
    p->last_error[0] = '\0';
    p->connects++;
    char id[OV_ID_CHARS + 1];
    ov_id_format(&l->their_id, id);
    ov_jlog_info("peer.connected", "peer", id, "direction", l->outgoing ? "out" : "in", NULL);
    send_digest(l);
}

static void on_digest(peer_link *l, const uint8_t theirs[OV_HASH_BYTES])
{
    if (!l->got_proof) {
        link_fail(l, REJECT_MALFORMED, 1002, "DIGEST before the handshake");
        return;
    }
    /* Our positions and their digest in one read: in sync, the positions become what we know the
     * peer has, so the next push starts after them. */
    uint8_t mine[OV_HASH_BYTES];
    ov_buf positions;
    ov_buf_init(&positions, (size_t)OV_SYNC_ORIGINS_MAX * OV_SYNC_SUMMARY_ENTRY);
    uint32_t count = 0;
    if (read_positions(l->fed, mine, &positions, &count) != OV_OK || positions.failed) {
        ov_buf_free(&positions);
        link_fail(l, REJECT_OVERLOAD, 1011, "store not readable");
        return;
    }
    if (memcmp(mine, theirs, OV_HASH_BYTES) == 0) {
        l->state = LINK_LIVE;
        ov_sync_summary held = {BATCH, count, (const uint8_t *)positions.data};
        for (uint32_t i = 0; i < count; i++) {
            ov_sync_position pos;
            ov_sync_summary_at(&held, i, &pos);
            known_raise(l, &pos.origin, pos.seq);
        }
        ov_buf_free(&positions);
        push(l); /* anything committed since the digest was made */
        return;
    }
    send_summary(l, &positions, count);
    ov_buf_free(&positions);
}

static void on_summary(peer_link *l, const ov_sync_summary *summary)
{
    if (!l->got_proof) {
        link_fail(l, REJECT_MALFORMED, 1002, "SUMMARY before the handshake");
        return;
    }
    if (summary->batch == 0) {
        link_fail(l, REJECT_MALFORMED, 1002, "a SUMMARY between peers asks for 1 to 65536");
        return;
    }
    for (uint32_t i = 0; i < summary->count; i++) {
        ov_sync_position pos;
        ov_sync_summary_at(summary, i, &pos);
        known_raise(l, &pos.origin, pos.seq);
    }
    l->state = LINK_LIVE;
    push_runs(l, 1); /* per origin, from the summary's seq + 1, the first run of what it lacks */
}

static void on_want(peer_link *l, const ov_sync_want *want)
{
    if (l->state != LINK_LIVE) {
        link_fail(l, REJECT_MALFORMED, 1002, "WANT before the summaries");
        return;
    }
    ov_read *read = NULL;
    if (ov_read_begin(l->fed->node->store, &read) != OV_OK)
        return;
    /* The peer says where it stands: what we thought it had is replaced by what it asks. */
    known_pos *k = known_find(l, &want->origin);
    if (k)
        k->seq = want->from - 1;
    send_run(l, read, &want->origin, want->from, want->batch);
    ov_read_end(read);
}

/* ---- Runs in ------------------------------------------------------------------------------- */

/* A run's contents are parsed and analysed in this many pieces at once (the first also checks
 * the run), so the next run is ready sooner while the writer stores the one before. */
#define CHECK_PARTS 2

typedef struct check_job check_job;

typedef struct {
    uv_work_t work;
    check_job *job;
    uint32_t from, to; /* the entries this piece parses */
} check_part;

struct check_job {
    check_part parts[CHECK_PARTS];
    int parts_left, cancelled;
    peer_link *link;
    rx_msg *msg;
    int rc;
    ov_sync_message decoded;
    json_t **records; /* the contents parsed on the thread pool, one per entry (NULL: none) */
    ov_search_analysis **analyses; /* their search analyses, where published (NULL: none) */
    uint32_t record_count;
};

static void check_job_free(check_job *job)
{
    for (uint32_t i = 0; job->records && i < job->record_count; i++)
        json_decref(job->records[i]);
    free(job->records);
    for (uint32_t i = 0; job->analyses && i < job->record_count; i++)
        ov_search_analysis_free(job->analyses[i]);
    free(job->analyses);
    free(job->msg);
    free(job);
}

static int link_busy(const peer_link *l)
{
    return l->checking || l->applying || l->ready;
}

/* Asks for origin's entries from `from`, unless that or a later run of it was asked already:
 * a run asked for twice arrives twice, and costs the transfer and the check again. (A gap resets
 * wanted_from first, to ask again from where the store is.) */
static void send_want(peer_link *l, const ov_id *origin, uint64_t from)
{
    int same_origin = ov_id_compare(&l->wanted_origin, origin) == 0;
    if (l->gone || (same_origin && from <= l->wanted_from))
        return;
    if (!same_origin)
        l->arrived_upto = 0;
    l->wanted_origin = *origin;
    l->wanted_from = from;
    ov_sync_want want = {*origin, from, BATCH};
    ov_buf buf;
    ov_buf_init(&buf, 64);
    ov_sync_encode_want(&buf, &want);
    send_and_free(l, &buf);
}

static void process_next(peer_link *l);

static void link_maybe_free(peer_link *l)
{
    if (!l->gone || link_busy(l))
        return;
    ov_federation *fed = l->fed;
    for (peer_link **pp = &fed->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    while (l->out_head) {
        out_msg *m = l->out_head;
        l->out_head = m->next;
        free(m);
    }
    while (l->rx_head) {
        rx_msg *m = l->rx_head;
        l->rx_head = m->next;
        free(m);
    }
    free(l->known);
    free(l);
}

static void submit_run(peer_link *l, check_job *job);

static void on_applied(ov_write_op *op)
{
    check_job *job = op->user;
    peer_link *l = job->link;
    ov_federation *fed = l->fed;
    const ov_sync_run *run = &job->decoded.u.run;
    if (op->recovered) {
        char seq[32];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)op->tail_seq);
        if (op->recovered > 0)
            ov_jlog_info("node.recovered", "seq", seq, "detail",
                         "this node's own log is restored from a peer; writes are accepted", NULL);
        else
            ov_jlog_error("node.recover_key_mismatch", "seq", seq, "detail",
                          "the restored key chain ends in another key than node.key: start the "
                          "node with its current key",
                          NULL);
    }
    if (op->result == OV_OK && op->fork) {
        link_fail(l, REJECT_FORK, 4005, "a different entry at a position already stored (fork)");
    } else if (op->result == OV_OK) {
        fed->runs_in++;
        fed->entries_in += op->applied;
        if (l->peer) {
            l->peer->runs_in++;
            l->peer->entries_in += op->applied;
        }
        known_raise(l, &run->origin, run->head.seq);
        /* Keep the catch-up going: the next run after the newest that arrived, once the last
         * WANT is answered (send_want skips what was asked already). */
        uint64_t upto = ov_id_compare(&l->wanted_origin, &run->origin) == 0 && l->arrived_upto
                            ? l->arrived_upto
                            : run->head.seq;
        if (upto < run->newest && (l->wanted_from == 0 || l->wanted_from <= upto))
            send_want(l, &run->origin, upto + 1);
    } else if (op->result == OV_ECHAIN) {
        /* A gap (a push overtook a missing run): ask for what follows what we hold. A run read
         * ahead of it is refused the same way and asks the same, once. */
        l->wanted_from = 0;
        send_want(l, &run->origin, op->tail_seq + 1);
    } else if (op->result == OV_EBADSIG) {
        link_fail(l, REJECT_FORGED, 4005,
                  "a run signed by another key than the origin's key chain has for it");
    } else if (op->result == OV_EDENIED) {
        ov_jlog_warn("peer.run_refused", "detail", "entries of this node's own log beyond its end",
                     NULL);
    } else {
        ov_jlog_warn("peer.run_not_stored", "error", ov_strerror(op->result), NULL);
    }
    /* Stored runs go on to every other peer, and to this node's live subscribers, from the
     * writer's committed callback (ov_federation_notify), which runs after this. */
    check_job_free(job);
    ov_write_op_free(op);
    l->applying = 0;
    if (l->ready && !l->gone && l->state != LINK_CLOSING) {
        check_job *next = l->ready;
        l->ready = NULL;
        submit_run(l, next);
    } else if (l->ready) {
        check_job_free(l->ready);
        l->ready = NULL;
    }
    if (l->gone)
        link_maybe_free(l);
    else
        process_next(l);
}

/* Hands a checked run to the writer, which stores runs in the order they are submitted. */
static void submit_run(peer_link *l, check_job *job)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_LOG_APPLY);
    if (op) {
        /* The op reads the run from the message bytes, which the job keeps until on_applied. */
        op->run = job->msg->data;
        op->run_len = job->msg->len;
        op->run_records = job->records; /* the op owns them now */
        op->run_record_count = job->record_count;
        op->run_analyses = job->analyses;
        job->records = NULL;
        job->analyses = NULL;
        job->record_count = 0;
        op->on_done = on_applied;
        op->user = job;
        if (ov_writer_submit(l->fed->node->writer, op) == OV_OK) {
            l->applying = 1;
            return;
        }
        ov_write_op_free(op);
    }
    check_job_free(job);
}

/* On the thread pool: an idle analyser, or a new one (NULL without memory). */
static ov_search_analyser *analyser_take(ov_federation *fed)
{
    ov_search_analyser *a = NULL;
    pthread_mutex_lock(&fed->analysers_lock);
    if (fed->analyser_count > 0)
        a = fed->analysers[--fed->analyser_count];
    pthread_mutex_unlock(&fed->analysers_lock);
    if (!a && ov_search_analyser_new(&a) != OV_OK)
        a = NULL;
    return a;
}

static void analyser_give_back(ov_federation *fed, ov_search_analyser *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&fed->analysers_lock);
    if (fed->analyser_count < ANALYSERS_IDLE_MAX) {
        fed->analysers[fed->analyser_count++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&fed->analysers_lock);
    ov_search_analyser_free(a);
}

/* On the thread pool: the run's checks (by the first piece), and the contents parsed and the
 * texts of the published ones analysed for search, so the writer, which stores runs one at a
 * time, spends its time on the store and not on JSON or words. What cannot be done here (no
 * memory) the writer does; a run that fails its checks is dropped whole. */
static void check_work(uv_work_t *work)
{
    check_part *part = work->data;
    check_job *job = part->job;
    const ov_sync_run *run = &job->decoded.u.run;
    if (part == &job->parts[0]) {
        ov_log_entry first;
        job->rc = ov_sync_run_check(run, &first);
        if (job->rc != OV_OK)
            return;
    }
    if (!job->records)
        return;
    ov_federation *fed = job->link->fed;
    ov_search_analyser *analyser = job->analyses ? analyser_take(fed) : NULL;
    size_t offset = 0;
    ov_sync_item item;
    for (uint32_t i = 0; i < part->to && ov_sync_run_next(run, &offset, &item); i++) {
        if (i < part->from || !item.content || item.entry.op == OV_OP_KEY)
            continue;
        job->records[i] = json_loadb(item.content, item.content_len, 0, NULL);
        ov_envelope env;
        if (analyser && job->records[i] && ov_record_envelope(job->records[i], &env) == OV_OK &&
            env.status == OV_STATUS_PUBLISHED &&
            ov_search_analyse(analyser, env.kind, job->records[i], &job->analyses[i]) != OV_OK)
            job->analyses[i] = NULL;
    }
    analyser_give_back(fed, analyser);
}

static void check_done(uv_work_t *work, int status)
{
    check_part *part = work->data;
    check_job *job = part->job;
    if (status != 0)
        job->cancelled = 1;
    if (--job->parts_left > 0)
        return; /* the other pieces are still at work */
    status = job->cancelled ? UV_ECANCELED : 0;
    peer_link *l = job->link;
    ov_federation *fed = l->fed;
    l->checking = 0;
    if (status == 0 && job->rc == OV_OK && !l->gone && !fed->stopped && l->state != LINK_CLOSING) {
        if (l->applying)
            l->ready = job; /* stored after the run before it */
        else
            submit_run(l, job);
        job = NULL;
    } else if (status == 0 && job->rc != OV_OK && !l->gone) {
        link_fail(l, job->rc == OV_EBADSIG ? REJECT_FORGED : REJECT_CHAIN, 4005,
                  job->rc == OV_EBADSIG  ? "a run whose key or signature does not verify"
                  : job->rc == OV_ECHAIN ? "a run whose entries do not chain to its head"
                                         : "a run whose content does not match its entries");
    }
    if (job) {
        check_job_free(job);
    }
    if (l->gone)
        link_maybe_free(l);
    else
        process_next(l);
}

/* Starts checking the next received run, while the writer may still store the one before (one
 * checked run waits at most). */
static void process_next(peer_link *l)
{
    if (l->checking || l->ready || !l->rx_head || l->gone || l->state == LINK_CLOSING)
        return;
    rx_msg *m = l->rx_head;
    l->rx_head = m->next;
    if (!l->rx_head)
        l->rx_tail = NULL;
    l->rx_count--;
    l->rx_bytes -= m->len;
    check_job *job = calloc(1, sizeof *job);
    if (!job) {
        free(m);
        return;
    }
    job->decoded = m->decoded;
    job->link = l;
    job->msg = m;
    /* Parsed and analysed in pieces; without memory for the results the writer does it. */
    uint32_t count = job->decoded.u.run.count;
    if ((job->records = calloc(count, sizeof *job->records)) != NULL) {
        job->record_count = count;
        job->analyses = calloc(count, sizeof *job->analyses);
    }
    l->checking = 1;
    for (int p = 0; p < CHECK_PARTS; p++) {
        check_part *part = &job->parts[p];
        part->job = job;
        part->work.data = part;
        part->from = (uint32_t)((uint64_t)count * (uint64_t)p / CHECK_PARTS);
        part->to = (uint32_t)((uint64_t)count * (uint64_t)(p + 1) / CHECK_PARTS);
        if (uv_queue_work(l->fed->node->loop, &part->work, check_work, check_done) != 0)
            break;
        job->parts_left++;
    }
    if (job->parts_left < CHECK_PARTS)
        job->cancelled = 1; /* check_done drops it once the queued pieces are back */
    if (!job->parts_left) {
        l->checking = 0;
        check_job_free(job);
    }
}

static void on_entries(peer_link *l, const uint8_t *data, size_t len)
{
    if (l->state != LINK_LIVE) {
        link_fail(l, REJECT_MALFORMED, 1002, "ENTRIES before the summaries");
        return;
    }
    if (l->rx_count >= RX_QUEUE_MAX || l->rx_bytes + len > RX_QUEUE_BYTES) {
        link_fail(l, REJECT_OVERLOAD, 1008, "more runs than this node has asked for");
        return;
    }
    rx_msg *m = malloc(sizeof *m + len);
    if (!m)
        return;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    /* Decoded again from the copy (on_message's decoding points into lws's buffer); it decoded
     * there, so it decodes here. */
    if (ov_sync_decode(m->data, len, &m->decoded) != OV_OK) {
        free(m);
        return;
    }
    /* Read ahead: a catch-up asks for the next run as soon as one arrives, so the sender, the
     * checks and the writer work at the same time; a few runs in the pipeline are enough for
     * that, more would only wait in memory. */
    const ov_sync_run *run = &m->decoded.u.run;
    if (ov_id_compare(&l->wanted_origin, &run->origin) == 0 && run->head.seq > l->arrived_upto)
        l->arrived_upto = run->head.seq;
    size_t in_flight = l->rx_count + (size_t)l->checking + (l->ready ? 1 : 0) + (size_t)l->applying;
    if (run->head.seq < run->newest && in_flight < 3)
        send_want(l, &run->origin, run->head.seq + 1);
    if (l->rx_tail)
        l->rx_tail->next = m;
    else
        l->rx_head = m;
    l->rx_tail = m;
    l->rx_count++;
    l->rx_bytes += len;
    process_next(l);
}

/* ---- Websocket handlers ---------------------------------------------------------------------- */

static peer_link *link_new(ov_federation *fed, int outgoing)
{
    peer_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->fed = fed;
    l->outgoing = outgoing;
    l->state = LINK_HELLO;
    l->deadline_ms = now_ms(fed) + HANDSHAKE_MS;
    l->heard_ms = l->pinged_ms = now_ms(fed);
    l->next = fed->links;
    fed->links = l;
    return l;
}

static void *on_open(void *app, ov_ws *ws, const ov_ws_upgrade *upgrade)
{
    peer_link *l;
    if (upgrade) { /* a peer dialled in: app is the federation */
        ov_federation *fed = app;
        if (fed->stopped)
            return NULL;
        l = link_new(fed, 0);
        if (!l)
            return NULL;
    } else { /* our dial: app is the link made for it */
        l = app;
    }
    l->ws = ws;
    send_hello(l);
    return l;
}

static void on_message(void *conn, const char *data, size_t len)
{
    peer_link *l = conn;
    if (l->state == LINK_CLOSING)
        return;
    l->heard_ms = now_ms(l->fed);
    ov_sync_message m;
    if (ov_sync_decode((const uint8_t *)data, len, &m) != OV_OK) {
        link_fail(l, REJECT_MALFORMED, 1002, "a message that does not decode");
        return;
    }
    if (m.type != OV_SYNC_HELLO && m.type != OV_SYNC_ERROR && !l->got_hello) {
        link_fail(l, REJECT_MALFORMED, 1002, "a message before HELLO");
        return;
    }
    switch (m.type) {
    case OV_SYNC_HELLO:
        on_hello(l, &m.u.hello);
        break;
    case OV_SYNC_PROOF:
        on_proof(l, m.u.signature);
        break;
    case OV_SYNC_DIGEST:
        on_digest(l, m.u.digest);
        break;
    case OV_SYNC_SUMMARY:
        on_summary(l, &m.u.summary);
        break;
    case OV_SYNC_WANT:
        on_want(l, &m.u.want);
        break;
    case OV_SYNC_ENTRIES:
        on_entries(l, (const uint8_t *)data, len);
        break;
    case OV_SYNC_KEYS:
        on_keys(l, &m.u.keys);
        break;
    case OV_SYNC_ERROR: {
        char reason[OV_SYNC_REASON_MAX + 1];
        snprintf(reason, sizeof reason, "%.*s", (int)m.u.error.reason_len, m.u.error.reason);
        ov_jlog_warn("peer.error_received", "reason", reason, NULL);
        if (l->peer)
            snprintf(l->peer->last_error, sizeof l->peer->last_error, "peer said: %s", reason);
        l->state = LINK_CLOSING;
        if (l->ws)
            ov_ws_close(l->ws, 1000, "error received");
        break;
    }
    }
}

static void on_pong(void *conn)
{
    peer_link *l = conn;
    l->heard_ms = now_ms(l->fed);
}

static void on_writable(void *conn)
{
    peer_link *l = conn;
    flush(l);
    if (!l->out_head)
        push(l); /* pushes held back by a full send queue */
}

static void on_closed(void *conn)
{
    peer_link *l = conn;
    ov_federation *fed = l->fed;
    l->ws = NULL;
    l->gone = 1;
    l->state = LINK_CLOSING;
    if (l->peer) {
        if (l->peer->link == l) {
            l->peer->link = NULL;
            char id[OV_ID_CHARS + 1];
            ov_id_format(&l->peer->config.id, id);
            ov_jlog_info("peer.disconnected", "peer", id, NULL);
        }
        if (l->outgoing) {
            l->peer->dialling = 0;
            if (!l->peer->backoff_ms)
                l->peer->backoff_ms = BACKOFF_MIN_MS;
            l->peer->next_dial_ms = now_ms(fed) + l->peer->backoff_ms;
            if (l->peer->backoff_ms < BACKOFF_MAX_MS && !l->got_proof)
                l->peer->backoff_ms *= 2; /* unreachable: wait longer next time */
            if (l->peer->backoff_ms > BACKOFF_MAX_MS)
                l->peer->backoff_ms = BACKOFF_MAX_MS;
        }
    }
    link_maybe_free(l);
}

/* A node that peers with no one takes no peer connections: with no peers there is no timer to
 * cut off one that never says HELLO. */
static int on_admit(void *app, const ov_ws_upgrade *upgrade, const char **detail,
                    unsigned *retry_after_s)
{
    (void)upgrade, (void)retry_after_s;
    ov_federation *fed = app;
    if (fed->peer_count > 0 && !fed->stopped)
        return 0;
    *detail = fed->stopped ? "the node is shutting down" : "this node federates with no other node";
    return fed->stopped ? 503 : 403;
}

static const ov_ws_handlers ws_handlers = {
    .path = PEER_PATH,
    .admit = on_admit,
    .subprotocol = PEER_PROTOCOL,
    .max_message = OV_SYNC_MESSAGE_MAX,
    .binary = 1,
    .open = on_open,
    .message = on_message,
    .writable = on_writable,
    .pong = on_pong,
    .closed = on_closed,
};

const ov_ws_handlers *ov_federation_ws_handlers(void)
{
    return &ws_handlers;
}

/* ---- Dialling and the timer ------------------------------------------------------------------ */

static void dial(ov_federation *fed, peer *p)
{
    peer_link *l = link_new(fed, 1);
    if (!l)
        return;
    l->peer = p;
    p->dialling = 1;
    /* The configured URL is the peer node's base; its federation endpoint is on PEER_PATH. */
    char url[sizeof p->config.url + sizeof PEER_PATH];
    size_t base = strlen(p->config.url);
    while (base && p->config.url[base - 1] == '/')
        base--;
    snprintf(url, sizeof url, "%.*s%s", (int)base, p->config.url, PEER_PATH);
    int rc = ov_ws_connect(fed->node->http, url, &ws_handlers, l, NULL);
    if (rc != OV_OK) {
        snprintf(p->last_error, sizeof p->last_error, "cannot dial: %s", ov_strerror(rc));
        p->dialling = 0;
        p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (p->backoff_ms > BACKOFF_MAX_MS)
            p->backoff_ms = BACKOFF_MAX_MS;
        p->next_dial_ms = now_ms(fed) + p->backoff_ms;
        l->gone = 1;
        link_maybe_free(l);
    }
}

static void on_tick(uv_timer_t *timer)
{
    ov_federation *fed = timer->data;
    int64_t now = now_ms(fed);
    for (peer_link *l = fed->links; l; l = l->next) {
        if (!l->got_proof && l->state == LINK_HELLO && now > l->deadline_ms) {
            link_fail(l, REJECT_PROOF, 4003, "no valid HELLO and PROOF within 10 s");
        } else if (l->state == LINK_LIVE && l->ws) {
            /* A partition leaves a TCP connection open but dead: pings find out, so the link is
             * dialled again and catches up once the network heals. */
            if (now - l->heard_ms > SILENT_MS) {
                l->state = LINK_CLOSING;
                ov_ws_close(l->ws, 4002, "peer silent");
            } else if (now - l->pinged_ms >= PING_MS && ov_ws_ping(l->ws) == OV_OK) {
                l->pinged_ms = now;
            }
        }
    }
    for (int i = 0; i < fed->peer_count; i++) {
        peer *p = &fed->peers[i];
        if (p->config.url[0] && !p->link && !p->dialling && now >= p->next_dial_ms)
            dial(fed, p);
    }
}

int ov_federation_new(ov_node *node, const ov_peer_config *peers, int count, ov_federation **out)
{
    if (count < 0 || count > OV_FEDERATION_MAX_PEERS)
        return OV_EINVAL;
    for (int i = 0; i < count; i++)
        if (ov_id_compare(&peers[i].id, ov_store_node_id(node->store)) == 0)
            return OV_EINVAL;
    ov_federation *fed = calloc(1, sizeof *fed);
    if (!fed)
        return OV_ENOMEM;
    fed->node = node;
    for (int i = 0; i < count; i++)
        fed->peers[i].config = peers[i];
    fed->peer_count = count;
    if (pthread_mutex_init(&fed->analysers_lock, NULL) != 0) {
        free(fed);
        return OV_ENOMEM;
    }
    uv_timer_init(node->loop, &fed->tick);
    fed->tick.data = fed;
    *out = fed;
    return OV_OK;
}

void ov_federation_start(ov_federation *fed)
{
    if (fed->started || fed->stopped)
        return;
    fed->started = 1;
    if (fed->peer_count > 0) /* without peers nobody is dialled, and nobody may dial in */
        uv_timer_start(&fed->tick, on_tick, TICK_MS, TICK_MS);
}

void ov_federation_stop(ov_federation *fed)
{
    if (fed->stopped)
        return;
    fed->stopped = 1;
    uv_timer_stop(&fed->tick);
    uv_close((uv_handle_t *)&fed->tick, NULL);
    for (peer_link *l = fed->links; l; l = l->next) {
        l->state = LINK_CLOSING;
        if (l->ws)
            ov_ws_close(l->ws, 1001, "node shutting down");
    }
}

void ov_federation_free(ov_federation *fed)
{
    if (!fed)
        return;
    while (fed->links) {
        peer_link *l = fed->links;
        l->gone = 1;
        l->checking = l->applying = 0;
        if (l->ready) {
            check_job_free(l->ready);
            l->ready = NULL;
        }
        link_maybe_free(l);
    }
    while (fed->analyser_count > 0)
        ov_search_analyser_free(fed->analysers[--fed->analyser_count]);
    pthread_mutex_destroy(&fed->analysers_lock);
    free(fed);
}

/* ---- Reporting ------------------------------------------------------------------------------- */

json_t *ov_federation_peers_json(const ov_federation *fed)
{
    json_t *list = json_array();
    for (int i = 0; fed && list && i < fed->peer_count; i++) {
        const peer *p = &fed->peers[i];
        char id[OV_ID_CHARS + 1];
        ov_id_format(&p->config.id, id);
        const char *state = p->link       ? (p->link->state == LINK_LIVE ? "live" : "handshake")
                            : p->dialling ? "dialling"
                                          : "disconnected";
        json_t *item = json_pack("{s:s, s:s?, s:b, s:s, s:I, s:I, s:I, s:I}", "id", id, "url",
                                 p->config.url[0] ? p->config.url : NULL, "connected",
                                 p->link != NULL, "state", state, "runs_in", (json_int_t)p->runs_in,
                                 "entries_in", (json_int_t)p->entries_in, "runs_out",
                                 (json_int_t)p->runs_out, "connects", (json_int_t)p->connects);
        if (item && p->last_error[0])
            json_object_set_new(item, "last_error", json_string(p->last_error));
        if (item)
            json_array_append_new(list, item);
    }
    return list;
}

void ov_federation_publish_metrics(const ov_federation *fed)
{
    if (!fed)
        return;
    int connected = 0;
    for (int i = 0; i < fed->peer_count; i++)
        connected += fed->peers[i].link != NULL;
    ov_metrics_set_gauge("olievlek_peers_configured", "Peers this node is configured with",
                         fed->peer_count);
    ov_metrics_set_gauge("olievlek_peers_connected", "Peers with an authenticated connection",
                         connected);
    ov_metrics_set_gauge("olievlek_peer_runs_received_total",
                         "Runs of log entries stored from peers", (double)fed->runs_in);
    ov_metrics_set_gauge("olievlek_peer_entries_received_total", "Log entries stored from peers",
                         (double)fed->entries_in);
    ov_metrics_set_gauge("olievlek_peer_runs_sent_total", "Runs of log entries sent to peers",
                         (double)fed->runs_out);
    ov_metrics_set_gauge("olievlek_peer_entries_sent_total", "Log entries sent to peers",
                         (double)fed->entries_out);
    ov_metrics_set_gauge("olievlek_peer_bytes_sent_total", "Bytes of messages sent to peers",
                         (double)fed->bytes_out);
    for (int r = 0; r < REJECT_COUNT; r++) {
        char name[96], help[128];
        snprintf(name, sizeof name, "olievlek_peer_rejected_%s_total", reject_names[r]);
        snprintf(help, sizeof help, "Peer connections ended for: %s", reject_names[r]);
        ov_metrics_set_gauge(name, help, (double)fed->rejected[r]);
    }
}
