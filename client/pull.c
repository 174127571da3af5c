/*
 * Pull: fetch the runs of log entries the replica lacks (docs/protocol.md §9.1), verify each
 * as a node verifies a peer's (hash chain, content hashes, one signed head per run) and store
 * what it carries.
 *
 * Fetching, checking and storing overlap (see "The pipeline" below). The next request names the
 * positions the answer before it ends at, before they are verified; if verification then fails,
 * the pull stops and the answers fetched ahead are thrown away, so nothing unverified is ever
 * stored.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/answer.h"
#include "client/net.h"
#include "client/replica.h"
#include "proto/buf.h"
#include "proto/error.h"
#include "proto/sync.h"

/* Entries per run asked for first, unless OLIEVLEK_PULL_BATCH says: about what an answer of
 * PULL_BYTES_FIRST holds; later requests fit it to the answers (next_request). */
#define PULL_BATCH 1024u
/* Bytes per answer asked for at most, unless OLIEVLEK_PULL_BYTES says. An answer passes from the
 * thread that receives it to one that checks it and one that stores it: at 4 MiB it is still in
 * the shared cache when the next thread reads it, and a clone of 100,000 records took 0.18-0.19 s
 * on the benchmark machine, against 0.20-0.22 s with 8 MiB and 0.22-0.25 s with 16 MiB
 * (docs/benchmarks.md). */
#define PULL_MAX_BYTES   (4u << 20)
#define PULL_BYTES_FIRST (1u << 20)  /* the first answer asked for, doubled up to max_bytes */
#define PULL_BYTES_MIN   (64u << 10) /* the node's bounds of max_bytes (protocol §9.1) */
#define PULL_BYTES_MAX   (16u << 20)
#define PULL_ORIGINS_MAX 4096u /* origins one replica follows */

typedef struct {
    ov_id origin;
    uint64_t seq;
    uint8_t hash[OV_HASH_BYTES];
} position;

typedef struct {
    position *items;
    size_t count;
} positions;

typedef struct {
    olievlek_replica *replica;
    ov_id home;
    int region_only;
    char kinds[512];
    olv_net *net;
    char scope[600];    /* the query's origins and kinds, "" or "&..." */
    uint32_t max_bytes; /* asked for per answer, at most */
    uint32_t asking;    /* asked for in the next request (the fetching thread's once it runs) */
    int bytes_fixed;    /* OLIEVLEK_PULL_BYTES set max_bytes: asked for from the first answer on */
    uint32_t batch;     /* entries asked for per run (the fetching thread's once it runs) */
    int batch_fixed;    /* OLIEVLEK_PULL_BATCH set it: not to be fitted to the answers */
    olievlek_progress progress;
    struct timespec started;
    int due_known;
} pull_state;

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static position *positions_find(positions *p, const ov_id *origin)
{
    for (size_t i = 0; i < p->count; i++)
        if (ov_id_compare(&p->items[i].origin, origin) == 0)
            return &p->items[i];
    return NULL;
}

static int positions_set(positions *p, const ov_id *origin, uint64_t seq,
                         const uint8_t hash[OV_HASH_BYTES])
{
    position *at = positions_find(p, origin);
    if (!at) {
        if (p->count >= PULL_ORIGINS_MAX)
            return OLIEVLEK_EPROTO;
        position *grown = realloc(p->items, (p->count + 1) * sizeof *grown);
        if (!grown)
            return OLIEVLEK_ENOMEM;
        p->items = grown;
        at = &p->items[p->count++];
        at->origin = *origin;
    }
    at->seq = seq;
    if (hash)
        memcpy(at->hash, hash, OV_HASH_BYTES);
    else
        memset(at->hash, 0, OV_HASH_BYTES);
    return OLIEVLEK_OK;
}

static uint64_t positions_total(const positions *p)
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->count; i++)
        total += p->items[i].seq;
    return total;
}

static int compare_positions(const void *a, const void *b)
{
    return ov_id_compare(&((const position *)a)->origin, &((const position *)b)->origin);
}

/* What the replica holds: every verified head, plus the home node when nothing of it is held. */
static int load_positions(pull_state *s, positions *out)
{
    olievlek_replica *r = s->replica;
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = olv_txn_begin(r, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, r->heads, &cur) == 0) {
        for (int op = MDB_FIRST; rc == OLIEVLEK_OK && mdb_cursor_get(cur, &k, &v, op) == 0;
             op = MDB_NEXT) {
            ov_id origin;
            olv_head head;
            if (k.mv_size != OV_ID_BYTES)
                continue;
            memcpy(origin.bytes, k.mv_data, OV_ID_BYTES);
            if (s->region_only && ov_id_compare(&origin, &s->home) != 0)
                continue;
            if (olv_head_get(txn, r->heads, &origin, &head) == OLIEVLEK_OK)
                rc = positions_set(out, &origin, head.seq, head.hash);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    if (rc == OLIEVLEK_OK && !positions_find(out, &s->home))
        rc = positions_set(out, &s->home, 0, NULL);
    return rc;
}

/* The request body: a SUMMARY of positions, in origin order. */
static int encode_summary(positions *p, uint32_t batch, ov_buf *body)
{
    qsort(p->items, p->count, sizeof *p->items, compare_positions);
    ov_buf_init(body, 1u << 20);
    ov_sync_encode_summary_begin(body, batch, (uint32_t)p->count);
    for (size_t i = 0; i < p->count; i++) {
        ov_sync_position pos = {p->items[i].origin, p->items[i].seq, {0}};
        memcpy(pos.hash, p->items[i].hash, OV_HASH_BYTES);
        ov_sync_encode_position(body, &pos);
    }
    return body->failed ? OLIEVLEK_ENOMEM : OLIEVLEK_OK;
}

/* ---- One answer: frames of ENTRIES and a final SUMMARY ------------------------------------ */

typedef struct {
    ov_sync_run run;
    size_t first_item; /* its items in answer.items */
} checked_run;

typedef struct {
    ov_buf body;
    long status;
    char content_type[96];
    int failed; /* a network failure: error says what */
    char error[256];
    int checked;        /* every run was put through ov_sync_run_check ... */
    int check_rc;       /* ... with this result (OV_OK, or the first failure's) */
    ov_id check_origin; /* the origin of the run that failed */
    int malformed;      /* a frame did not decode (whole) */
    /* What check_answer decoded and read, for storing: the runs, and all their items in order
     * (each run's run->count of them, from the run's first_item on). */
    checked_run *runs;
    size_t run_count;
    ov_sync_checked *items;
    size_t item_count, item_cap;
} answer;

static void answer_free(answer *a)
{
    ov_buf_free(&a->body);
    free(a->runs);
    free(a->items);
    a->runs = NULL;
    a->items = NULL;
    a->run_count = a->item_count = a->item_cap = 0;
}

/* The positions an answer leaves the replica at if it verifies, and whether the node has more
 * (its final summary names a later checkpoint somewhere). */
static int advance_positions(const answer *a, positions *p, int region_only, const ov_id *home,
                             int *more, uint64_t *node_total, uint64_t *entries)
{
    olv_answer_reader reader;
    ov_sync_message msg;
    int rc;
    *more = 0;
    *node_total = 0;
    *entries = 0;
    olv_answer_begin_shallow(&reader, a->body.data, a->body.len);
    while ((rc = olv_answer_next(&reader, &msg)) == 1) {
        if (msg.type == OV_SYNC_ENTRIES) {
            const ov_sync_run *run = &msg.u.run;
            *entries += run->count;
            position *at = positions_find(p, &run->origin);
            if (!at || run->head.seq > at->seq)
                if ((rc = positions_set(p, &run->origin, run->head.seq, run->head.hash)) != 0)
                    return rc;
        } else {
            for (uint32_t i = 0; i < msg.u.summary.count; i++) {
                ov_sync_position node;
                ov_sync_summary_at(&msg.u.summary, i, &node);
                if (region_only && ov_id_compare(&node.origin, home) != 0)
                    continue;
                *node_total += node.seq;
                position *at = positions_find(p, &node.origin);
                if (!at || at->seq < node.seq)
                    *more = 1;
            }
        }
    }
    return rc == 0 ? OLIEVLEK_OK : OLIEVLEK_EPROTO;
}

/* ---- Storing a verified run -------------------------------------------------------------- */

typedef struct {
    pull_state *s;
    MDB_txn *txn;
    uint64_t records;
    uint64_t entries;
    int last_known; /* last is read (from the store, once per answer) */
    int has_last;   /* 1: last is at least the greatest id held; 0: none held; -1: not known */
    ov_id last;
} store_ctx;

/* Whether id sorts after every record the replica holds: then the replica holds nothing of it and
 * it goes at the end, without a search (MDB_APPEND). A clone stores logs of records created one
 * after another, whose ids rise, so most of its records go this way. */
static int after_last(store_ctx *c, const ov_id *id)
{
    if (!c->last_known) {
        c->last_known = 1;
        c->has_last = -1; /* unknown: no shortcut */
        MDB_cursor *cur;
        MDB_val k, v;
        if (mdb_cursor_open(c->txn, c->s->replica->records, &cur) == 0) {
            int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            if (rc == MDB_NOTFOUND) {
                c->has_last = 0;
            } else if (rc == 0 && k.mv_size == OV_ID_BYTES) {
                memcpy(c->last.bytes, k.mv_data, OV_ID_BYTES);
                c->has_last = 1;
            }
            mdb_cursor_close(cur);
        }
    }
    if (c->has_last < 0)
        return 0; /* search as for any record */
    return !c->has_last || memcmp(id->bytes, c->last.bytes, OV_ID_BYTES) > 0;
}

static int kind_wanted(const pull_state *s, ov_kind kind)
{
    if (!s->kinds[0])
        return 1;
    const char *name = ov_kind_name(kind);
    size_t n = strlen(name);
    for (const char *p = s->kinds; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* A minimal tombstone for a record whose content was purged: it stays deleted here too. */
static int store_purged(store_ctx *c, const ov_id *id, const olv_row *held)
{
    char text[OV_ID_CHARS + 1];
    ov_id_format(id, text);
    char json[160];
    int n = snprintf(json, sizeof json, "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"deleted\"}",
                     text, ov_kind_name(held->kind));
    uint8_t row[OLV_ROW_HEADER + 160];
    olv_row_encode_header(row, held->kind, OV_STATUS_DELETED, held->version, held->updated_ms,
                          &held->origin);
    memcpy(row + OLV_ROW_HEADER, json, (size_t)n);
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes}, v = {OLV_ROW_HEADER + (size_t)n, row};
    return mdb_put(c->txn, c->s->replica->records, &k, &v, 0);
}

static int store_item(store_ctx *c, const ov_sync_checked *checked)
{
    const ov_sync_item *item = &checked->item;
    olievlek_replica *r = c->s->replica;
    const ov_id *id = &item->entry.record;
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes}, held_val;
    int append = after_last(c, id);
    int held = !append && mdb_get(c->txn, r->records, &k, &held_val) == 0;
    olv_row held_row;
    if (held && olv_row_decode(&held_val, &held_row) != OLIEVLEK_OK)
        held = 0;

    switch (item->entry.op) {
    case OV_OP_KEY:
        return 0;
    case OV_OP_PURGE:
        return held ? store_purged(c, id, &held_row) : 0;
    default:
        break;
    }
    if (!item->content) {
        /* No content: this version is not one the caller may read (a draft, say); what the
         * replica held of the record is no longer to be shown. A later entry of the same run
         * brings the content back when the version was merely superseded. */
        return held ? mdb_del(c->txn, r->records, &k, NULL) : 0;
    }
    /* The envelope as the check read it: a record this client cannot file (a kind or status it
     * does not know, no version, or version 0, which no node gives out) is refused rather than
     * guessed at. */
    const ov_envelope *env = &checked->env;
    const unsigned needed = OV_ENVELOPE_KIND | OV_ENVELOPE_STATUS | OV_ENVELOPE_VERSION |
                            OV_ENVELOPE_ID | OV_ENVELOPE_ORIGIN;
    if ((checked->env_seen & needed) != needed || (checked->env_seen & OV_ENVELOPE_MALFORMED) ||
        env->kind >= OV_KIND_COUNT || env->status >= OV_STATUS_COUNT || env->version == 0)
        return MDB_INVALID;
    if (!kind_wanted(c->s, env->kind))
        return 0;
    if (held && held_row.version > env->version)
        return 0; /* the replica already has a newer version (its own accepted edit) */
    MDB_val v = {OLV_ROW_HEADER + item->content_len, NULL};
    int rc = mdb_put(c->txn, r->records, &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0));
    if (rc)
        return rc;
    if (append) {
        c->last = *id;
        c->has_last = 1;
    }
    olv_row_encode_header(v.mv_data, env->kind, env->status, env->version, env->updated_ms,
                          &env->origin);
    memcpy((uint8_t *)v.mv_data + OLV_ROW_HEADER, item->content, item->content_len);
    c->records++;
    return 0;
}

/* Stores one run after ov_sync_run_check_items passed, from the items it gave (run->count): the
 * entries the replica lacks, then the head. */
static int store_run(store_ctx *c, const ov_sync_run *run, const ov_sync_checked *items)
{
    olievlek_replica *r = c->s->replica;
    char origin_text[OV_ID_CHARS + 1];
    ov_id_format(&run->origin, origin_text);
    olv_head have;
    int rc = olv_head_get(c->txn, r->heads, &run->origin, &have);
    if (rc != OLIEVLEK_OK && rc != OLIEVLEK_ENOTFOUND)
        return olv_fail(r, OLIEVLEK_ESTORE, "the replica's record of origin %s is damaged",
                        origin_text);
    if (run->head.seq <= have.seq) {
        if (run->head.seq == have.seq && memcmp(run->head.hash, have.hash, OV_HASH_BYTES) != 0)
            return olv_fail(r, OLIEVLEK_EVERIFY,
                            "origin %s signed two different histories (a fork at entry %llu): "
                            "nothing of it was stored; tell the node's administrator",
                            origin_text, (unsigned long long)have.seq);
        return OLIEVLEK_OK; /* already held */
    }
    /* ov_sync_run_check found every entry of the run chained to the one before it and the last
     * to the signed head; what is left to check here is the key, and the link of the first new
     * entry to the head this replica holds (and, where the run overlaps it, that it is the same
     * history). The run's key must be the one the replica trusts for what follows its position:
     * the genesis key (it hashes to the origin) until a key entry it stored introduced the next. */
    ov_id owner;
    ov_log_node_id(run->public_key, &owner);
    if (rc == OLIEVLEK_ENOTFOUND ? ov_id_compare(&owner, &run->origin) != 0
                                 : memcmp(have.public_key, run->public_key, OV_PUBKEY_BYTES) != 0)
        return olv_fail(r, OLIEVLEK_EVERIFY,
                        "the node sent entries of origin %s signed by a key that is not the "
                        "origin's current key (its key chain): nothing of them was stored",
                        origin_text);
    const char *next_key = NULL;
    int linked = 0;
    for (uint32_t i = 0; i < run->count; i++) {
        const ov_sync_checked *checked = &items[i];
        const ov_sync_item item = checked->item;
        uint64_t seq = item.entry.seq;
        if (seq < have.seq)
            continue;
        if (linked) {
            if ((rc = store_item(c, checked)) != 0)
                return olv_fail_mdb(r, rc, "storing pulled records");
            if (item.entry.op == OV_OP_KEY) /* the run's last entry, with its key (checked) */
                next_key = item.content;
            have.seq = seq;
            c->entries++;
            continue;
        }
        if (seq == have.seq) {
            uint8_t hash[OV_HASH_BYTES];
            ov_sha256(item.entry_bytes, OV_LOG_ENTRY_BYTES, hash);
            if (memcmp(hash, have.hash, OV_HASH_BYTES) != 0)
                return olv_fail(r, OLIEVLEK_EVERIFY,
                                "origin %s signed two different histories (a fork at entry %llu): "
                                "nothing of it was stored; tell the node's administrator",
                                origin_text, (unsigned long long)seq);
            continue;
        }
        if (ov_log_entry_follows(have.seq ? have.hash : NULL, &run->origin, have.seq,
                                 &item.entry) != OV_OK)
            return olv_fail(r, OLIEVLEK_EVERIFY,
                            "the entries of origin %s from %llu do not follow the %llu this "
                            "replica holds: nothing of them was stored",
                            origin_text, (unsigned long long)seq, (unsigned long long)have.seq);
        if ((rc = store_item(c, checked)) != 0)
            return olv_fail_mdb(r, rc, "storing pulled records");
        linked = 1;
        if (item.entry.op == OV_OP_KEY) /* the run's last entry, with its key (checked) */
            next_key = item.content;
        have.seq = seq;
        c->entries++;
    }
    if (have.seq != run->head.seq)
        return olv_fail(r, OLIEVLEK_EVERIFY, "a run of origin %s ends before its head",
                        origin_text);
    memcpy(have.hash, run->head.hash, OV_HASH_BYTES); /* the last entry's, as checked */
    memcpy(have.head, run->head_bytes, OV_LOG_HEAD_BYTES);
    memcpy(have.public_key, next_key ? next_key : (const char *)run->public_key, OV_PUBKEY_BYTES);
    if (olv_head_put(c->txn, r->heads, &run->origin, &have) != OLIEVLEK_OK)
        return olv_fail(r, OLIEVLEK_ESTORE, "cannot store the head of origin %s", origin_text);
    return OLIEVLEK_OK;
}

static const char *verify_reason(int rc)
{
    switch (rc) {
    case OV_EBADSIG:
        return "its signed head does not verify with the origin's key";
    case OV_ECHAIN:
        return "its entries do not chain to its signed head";
    case OV_ESCHEMA:
        return "a record does not match the hash its entry commits to";
    default:
        return "it is malformed";
    }
}

/* Puts every run of an answer through the store-free checks (protocol §8.3 rules 1, 2 and 4: key,
 * signature, chain, content hashes, canonical records), and keeps the runs as decoded for
 * storing. Pure CPU and touching only the answer, so it runs on a thread of its own while the
 * pull's thread stores the answer before. */
static void check_answer(answer *a)
{
    olv_answer_reader reader;
    ov_sync_message msg;
    size_t cap = 0;
    int rc;
    a->check_rc = OV_OK;
    olv_answer_begin(&reader, a->body.data, a->body.len);
    while ((rc = olv_answer_next(&reader, &msg)) == 1) {
        if (msg.type != OV_SYNC_ENTRIES)
            continue;
        const ov_sync_run *run = &msg.u.run;
        if (a->run_count == cap) {
            cap = cap ? cap * 2 : 8;
            checked_run *grown = realloc(a->runs, cap * sizeof *grown);
            if (!grown) {
                a->check_rc = OV_ENOMEM;
                break;
            }
            a->runs = grown;
        }
        if (a->item_cap - a->item_count < run->count) {
            size_t want = a->item_cap ? a->item_cap : 4096;
            while (want - a->item_count < run->count)
                want *= 2;
            ov_sync_checked *grown = realloc(a->items, want * sizeof *grown);
            if (!grown) {
                a->check_rc = OV_ENOMEM;
                break;
            }
            a->items = grown;
            a->item_cap = want;
        }
        ov_log_entry first;
        int check = ov_sync_run_check_items(run, &first, a->items + a->item_count);
        if (check != OV_OK) {
            a->check_rc = check;
            a->check_origin = run->origin;
            break;
        }
        a->runs[a->run_count++] = (checked_run){*run, a->item_count};
        a->item_count += run->count;
    }
    a->malformed = rc < 0;
    a->checked = 1;
}

/* Stores every run of a checked answer in one transaction. */
static int store_answer(pull_state *s, answer *a)
{
    olievlek_replica *r = s->replica;
    if (!a->checked)
        check_answer(a);
    if (a->check_rc == OV_ENOMEM)
        return olv_fail(r, OLIEVLEK_ENOMEM, "out of memory checking the node's answer");
    if (a->check_rc != OV_OK) {
        /* Nothing of an answer with a forged or broken run is stored, not even the good runs
         * before it: the node that sent it is not to be trusted for this pull. */
        char origin_text[OV_ID_CHARS + 1];
        ov_id_format(&a->check_origin, origin_text);
        return olv_fail(r, OLIEVLEK_EVERIFY,
                        "the node sent entries of origin %s that fail verification (%s): "
                        "nothing of them was stored",
                        origin_text, verify_reason(a->check_rc));
    }
    if (a->malformed)
        return olv_fail(r, OLIEVLEK_EPROTO, "the node's answer to a pull is malformed");
    MDB_txn *txn;
    int rc = olv_txn_begin(r, 0, &txn);
    if (rc)
        return rc;
    store_ctx c = {.s = s, .txn = txn};
    for (size_t i = 0; rc == OLIEVLEK_OK && i < a->run_count; i++)
        rc = store_run(&c, &a->runs[i].run, a->items + a->runs[i].first_item);
    if (rc != OLIEVLEK_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = olv_txn_commit(r, txn, 0)) != OLIEVLEK_OK)
        return rc;
    s->progress.records += c.records;
    s->progress.entries += c.entries;
    return OLIEVLEK_OK;
}

/* ---- Fetching ---------------------------------------------------------------------------- */

/* One request for what follows positions p; the body goes into reuse's block when it has one. */
static void fetch(pull_state *s, const positions *p, answer *a, ov_buf *reuse)
{
    memset(a, 0, sizeof *a);
    ov_buf body;
    positions copy = {malloc((p->count ? p->count : 1) * sizeof *p->items), p->count};
    if (!copy.items) {
        a->failed = 1;
        snprintf(a->error, sizeof a->error, "out of memory");
        ov_buf_init(&a->body, 0);
        return;
    }
    memcpy(copy.items, p->items, p->count * sizeof *p->items);
    if (encode_summary(&copy, s->batch, &body) != OLIEVLEK_OK) {
        free(copy.items);
        a->failed = 1;
        snprintf(a->error, sizeof a->error, "out of memory");
        ov_buf_init(&a->body, 0);
        return;
    }
    free(copy.items);
    char path[768];
    snprintf(path, sizeof path, "/api/v1/sync?max_bytes=%u%s", s->asking, s->scope);
    olv_request req = {.method = "POST",
                       .path = path,
                       .content_type = "application/vnd.olievlek.sync",
                       .body = body.data,
                       .body_len = body.len,
                       .token = s->replica->token,
                       /* at least one run comes whole, even beyond max_bytes */
                       .max_body = (size_t)s->asking + OV_SYNC_MESSAGE_MAX + 65536u,
                       .reuse = reuse};
    olv_response resp;
    if (olv_net_send(s->net, &req, &resp, a->error, sizeof a->error) != 0)
        a->failed = 1;
    ov_buf_free(&body);
    a->status = resp.status;
    memcpy(a->content_type, resp.content_type, sizeof a->content_type);
    a->body = resp.body; /* ownership moves */
}

static int answer_problem(pull_state *s, const answer *a)
{
    olievlek_replica *r = s->replica;
    if (a->failed)
        return olv_fail(r, OLIEVLEK_ENETWORK,
                        "the pull was cut off (%s); what arrived before is kept: run `olievlek "
                        "pull` again when the network is back",
                        a->error);
    if (a->status == 401)
        return olv_fail(r, OLIEVLEK_EAUTH,
                        "the node no longer accepts your session: run `olievlek login` again");
    if (a->status == 403)
        return olv_fail(r, OLIEVLEK_EDENIED, "the node does not let this account pull");
    if (a->status != 200 || strncmp(a->content_type, "application/vnd.olievlek.sync", 29) != 0)
        return olv_fail(r, OLIEVLEK_EPROTO,
                        "the node answered %ld (%s) to a pull: it may be an older node without "
                        "client sync",
                        a->status, a->content_type[0] ? a->content_type : "no content type");
    return OLIEVLEK_OK;
}

static int read_settings(pull_state *s)
{
    olievlek_replica *r = s->replica;
    MDB_txn *txn;
    int rc = olv_txn_begin(r, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    char *url = NULL, *node = NULL, *region = NULL, *kinds = NULL;
    olv_meta_get(r, txn, "node_url", &url);
    olv_meta_get(r, txn, "node_id", &node);
    olv_meta_get(r, txn, "region_only", &region);
    olv_meta_get(r, txn, "kinds", &kinds);
    mdb_txn_abort(txn);
    if (!url || !node || ov_id_parse(node, strlen(node), &s->home) != OV_OK)
        rc = olv_fail(r, OLIEVLEK_ESTORE, "the replica's settings are damaged: clone it again");
    else {
        s->region_only = region && strcmp(region, "1") == 0;
        snprintf(s->kinds, sizeof s->kinds, "%s", kinds ? kinds : "");
        /* Smaller answers lose less to a link that keeps breaking (each answer is stored whole
         * or not at all); larger ones cost fewer round trips. */
        const char *batch = getenv("OLIEVLEK_PULL_BATCH");
        unsigned long runs = batch ? strtoul(batch, NULL, 10) : PULL_BATCH;
        s->batch = runs < 1 ? 1 : runs > OV_SYNC_BATCH_MAX ? OV_SYNC_BATCH_MAX : (uint32_t)runs;
        s->batch_fixed = batch != NULL;
        const char *env = getenv("OLIEVLEK_PULL_BYTES");
        unsigned long asked = env ? strtoul(env, NULL, 10) : PULL_MAX_BYTES;
        s->max_bytes = asked < PULL_BYTES_MIN   ? PULL_BYTES_MIN
                       : asked > PULL_BYTES_MAX ? PULL_BYTES_MAX
                                                : (uint32_t)asked;
        /* The first answer small, so that checking and storing start while the node builds the
         * next (the pipeline below fills in a few milliseconds, not in the time of one full
         * answer); each next one twice as large, up to max_bytes. */
        s->bytes_fixed = env != NULL;
        s->asking =
            s->bytes_fixed || s->max_bytes < PULL_BYTES_FIRST ? s->max_bytes : PULL_BYTES_FIRST;
        snprintf(s->scope, sizeof s->scope, "%s%s%s", s->region_only ? "&origins=listed" : "",
                 s->kinds[0] ? "&kinds=" : "", s->kinds);
        s->net = olv_net_new(url);
        if (!s->net)
            rc = OLIEVLEK_ENOMEM;
    }
    free(url);
    free(node);
    free(region);
    free(kinds);
    return rc;
}

static int finish(pull_state *s)
{
    olievlek_replica *r = s->replica;
    MDB_txn *txn;
    int rc = olv_txn_begin(r, 0, &txn);
    if (rc)
        return rc;
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)olv_now_ms());
    rc = olv_meta_put(r, txn, "last_pull", now);
    if (!rc && s->progress.entries)
        rc = olv_history_add(r, txn, "pulled %llu records (%llu log entries, %llu bytes) in %.1f s",
                             (unsigned long long)s->progress.records,
                             (unsigned long long)s->progress.entries,
                             (unsigned long long)s->progress.bytes, s->progress.seconds);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return olv_txn_commit(r, txn, 1);
}

/* ---- The pipeline ------------------------------------------------------------------------ */

/* Four threads, so that on two cores the node builds the next answer while this client checks
 * answers and stores the one before them: the fetching thread asks for the next answer as soon as
 * one has arrived (its positions are read from it, unverified), two checking threads put the
 * answers through check_answer (checking is most of a pull's CPU: SHA-256 of every byte, the
 * canonical walk of every record), each taking the oldest not yet taken, and the pull's own
 * thread stores them in order. At most PIPE_AHEAD answers are held at once; stored answers'
 * blocks go back to the fetching thread, so the megabytes of an answer are not allocated and
 * faulted in again for every answer. Only the pull's own thread touches the replica's store and
 * its error message. */
#define PIPE_CHECKERS 2
#define PIPE_AHEAD    (PIPE_CHECKERS + 2)

typedef struct {
    answer a;
    int malformed;       /* advance_positions could not read it */
    int stalled;         /* the node said it has more but sent none of it */
    int more;            /* the node has more after it */
    uint64_t node_total; /* entries of the node's summary in scope */
    int done;            /* checked (or not to be checked) */
} fetched;

typedef struct {
    pull_state *s;
    positions at; /* the fetching thread's: where the answers fetched so far end */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    fetched items[PIPE_AHEAD]; /* a ring, oldest at first */
    unsigned first, count;     /* held */
    unsigned taken;            /* of them, from first on, taken by a checking thread */
    unsigned checked;          /* of them, from first on, checked: all done */
    int fetch_done;            /* the fetching thread added its last */
    int stop;                  /* the pull's thread wants no more */
    ov_buf spares[PIPE_AHEAD];
    unsigned spare_count;
    /* Stored answers' arrays of checked items, for the checking threads: a few megabytes each. */
    ov_sync_checked *spare_items[PIPE_AHEAD];
    size_t spare_item_caps[PIPE_AHEAD];
    unsigned spare_item_count;
} pipeline;

/* What the next request asks for, after an answer of bytes holding entries: twice the bytes of
 * the one before, up to max_bytes, and runs as long as such an answer may be. The node ends each
 * answer with the run that would take it beyond max_bytes, and every run costs one ECDSA
 * verification (the most expensive check of all per byte, ~2 ms), so the entries asked for per
 * run are fitted to the bytes an entry took. The node still cuts runs where its log has signed
 * heads. */
static void next_request(pull_state *s, size_t bytes, uint64_t entries)
{
    if (!s->bytes_fixed)
        s->asking = s->asking > s->max_bytes / 2 ? s->max_bytes : s->asking * 2;
    if (s->batch_fixed || entries == 0 || bytes == 0)
        return;
    uint64_t per_entry = bytes / entries;
    uint64_t fits = s->asking / (per_entry ? per_entry : 1);
    s->batch = fits < 1 ? 1 : fits > OV_SYNC_BATCH_MAX ? OV_SYNC_BATCH_MAX : (uint32_t)fits;
}

static void *fetch_main(void *arg)
{
    pipeline *p = arg;
    for (;;) {
        ov_buf reuse;
        ov_buf_init(&reuse, 0);
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->count == PIPE_AHEAD)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop) {
            p->fetch_done = 1;
            pthread_cond_broadcast(&p->changed);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        if (p->spare_count)
            reuse = p->spares[--p->spare_count];
        pthread_mutex_unlock(&p->lock);

        fetched f;
        memset(&f, 0, sizeof f);
        fetch(p->s, &p->at, &f.a, &reuse);
        ov_buf_free(&reuse); /* when fetch did not take it */
        int last = f.a.failed || f.a.status != 200;
        if (!last) {
            uint64_t before = positions_total(&p->at), entries;
            f.malformed = advance_positions(&f.a, &p->at, p->s->region_only, &p->s->home, &f.more,
                                            &f.node_total, &entries) != OLIEVLEK_OK;
            if (!f.malformed)
                next_request(p->s, f.a.body.len, entries);
            f.stalled = !f.malformed && f.more && positions_total(&p->at) == before;
            /* A run is sent whole, and no answer may exceed OV_SYNC_MESSAGE_MAX: when the
             * entries ahead are much larger than those the batch was fitted to (records after a
             * stretch of entries without content), the node can send none of the run asked
             * for. Ask again for a quarter as many before calling the node stalled. */
            if (f.stalled && !p->s->batch_fixed && p->s->batch > 1) {
                p->s->batch = p->s->batch / 4 ? p->s->batch / 4 : 1;
                answer_free(&f.a);
                continue;
            }
            last = f.malformed || f.stalled || !f.more;
        }
        pthread_mutex_lock(&p->lock);
        p->items[(p->first + p->count) % PIPE_AHEAD] = f;
        p->count++;
        if (last)
            p->fetch_done = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (last)
            return NULL;
    }
}

static void *check_main(void *arg)
{
    pipeline *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->taken == p->count && !p->fetch_done)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop || p->taken == p->count) /* stopped, or all fetched are taken */
            break;
        fetched *f = &p->items[(p->first + p->taken) % PIPE_AHEAD];
        p->taken++;
        if (p->spare_item_count && !f->a.items) {
            unsigned last = --p->spare_item_count;
            f->a.items = p->spare_items[last];
            f->a.item_cap = p->spare_item_caps[last];
        }
        pthread_mutex_unlock(&p->lock);
        /* The item stays where it is until it is counted as checked: only this thread uses it. */
        if (!f->a.failed && f->a.status == 200 && !f->malformed)
            check_answer(&f->a);
        pthread_mutex_lock(&p->lock);
        f->done = 1;
        while (p->checked < p->taken && p->items[(p->first + p->checked) % PIPE_AHEAD].done)
            p->checked++;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The oldest answer, once checked; 0 when the fetching thread ended without another. */
static int next_checked(pipeline *p, fetched *out)
{
    pthread_mutex_lock(&p->lock);
    while (p->checked == 0 && !(p->fetch_done && p->count == 0))
        pthread_cond_wait(&p->changed, &p->lock);
    int got = p->checked > 0;
    if (got) {
        *out = p->items[p->first];
        p->first = (p->first + 1) % PIPE_AHEAD;
        p->count--;
        p->taken--;
        p->checked--;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return got;
}

/* A stored answer's block goes back to the fetching thread, its items to the checking ones. */
static void give_back(pipeline *p, answer *a)
{
    pthread_mutex_lock(&p->lock);
    if (p->spare_count < PIPE_AHEAD && a->body.data) {
        p->spares[p->spare_count++] = a->body;
        ov_buf_init(&a->body, 0);
    }
    if (p->spare_item_count < PIPE_AHEAD && a->items) {
        p->spare_items[p->spare_item_count] = a->items;
        p->spare_item_caps[p->spare_item_count++] = a->item_cap;
        a->items = NULL;
        a->item_cap = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

/* Stops the other threads (the fetching one and checkers of them) and frees what they left. */
static void pipeline_end(pipeline *p, pthread_t fetcher, const pthread_t *checkers,
                         unsigned checker_count)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(fetcher, NULL);
    for (unsigned i = 0; i < checker_count; i++)
        pthread_join(checkers[i], NULL);
    for (; p->count; p->count--, p->first = (p->first + 1) % PIPE_AHEAD)
        answer_free(&p->items[p->first].a);
    for (unsigned i = 0; i < p->spare_count; i++)
        ov_buf_free(&p->spares[i]);
    for (unsigned i = 0; i < p->spare_item_count; i++)
        free(p->spare_items[i]);
    free(p->at.items);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
}

/* Stores the answers as they come, in order, until the last. */
static int run_pipeline(pull_state *s, pipeline *p, uint64_t held_total,
                        olievlek_progress_fn progress_fn, void *ctx)
{
    olievlek_replica *replica = s->replica;
    int rc = OLIEVLEK_OK;
    fetched f;
    while (rc == OLIEVLEK_OK) {
        if (!next_checked(p, &f))
            return olv_fail(replica, OLIEVLEK_EPROTO, "the pull ended without an answer");
        if ((rc = answer_problem(s, &f.a)) == OLIEVLEK_OK && f.malformed)
            rc = olv_fail(replica, OLIEVLEK_EPROTO, "the node's answer to a pull is malformed");
        if (rc == OLIEVLEK_OK && !s->due_known) {
            s->due_known = 1;
            s->progress.entries_due = f.node_total > held_total ? f.node_total - held_total : 0;
        }
        if (rc == OLIEVLEK_OK && f.stalled)
            rc = olv_fail(replica, OLIEVLEK_EPROTO,
                          "the node says it has more but sent none of it; try again later");
        if (rc == OLIEVLEK_OK) {
            rc = store_answer(s, &f.a);
            s->progress.bytes += f.a.body.len;
        }
        give_back(p, &f.a);
        answer_free(&f.a);
        s->progress.seconds = seconds_since(&s->started);
        if (rc == OLIEVLEK_OK && progress_fn && progress_fn(ctx, &s->progress) != 0)
            break;
        if (!f.more)
            break;
    }
    return rc;
}

int olievlek_pull(olievlek_replica *replica, olievlek_progress_fn progress_fn, void *ctx,
                  olievlek_progress *result)
{
    pull_state s = {.replica = replica};
    clock_gettime(CLOCK_MONOTONIC, &s.started);
    if (result)
        memset(result, 0, sizeof *result);
    int rc = olv_lock(replica);
    if (rc)
        return rc;
    olv_token_load(replica);
    rc = read_settings(&s);
    positions held = {0};
    if (rc == OLIEVLEK_OK)
        rc = load_positions(&s, &held);
    uint64_t held_total = positions_total(&held);

    if (rc == OLIEVLEK_OK) {
        pipeline p = {.s = &s, .at = held};
        held.items = NULL; /* the fetching thread's now */
        pthread_mutex_init(&p.lock, NULL);
        pthread_cond_init(&p.changed, NULL);
        pthread_t fetcher, checkers[PIPE_CHECKERS];
        unsigned started = 0;
        if (pthread_create(&fetcher, NULL, fetch_main, &p) != 0) {
            held = p.at;
            pthread_cond_destroy(&p.changed);
            pthread_mutex_destroy(&p.lock);
            rc = olv_fail(replica, OLIEVLEK_ENOMEM, "cannot start a thread");
        } else {
            while (started < PIPE_CHECKERS &&
                   pthread_create(&checkers[started], NULL, check_main, &p) == 0)
                started++;
            if (started == 0) /* one is enough to go on; none is not */
                rc = olv_fail(replica, OLIEVLEK_ENOMEM, "cannot start a thread");
            else
                rc = run_pipeline(&s, &p, held_total, progress_fn, ctx);
            pipeline_end(&p, fetcher, checkers, started);
        }
    }
    free(held.items);
    s.progress.seconds = seconds_since(&s.started);
    if (rc == OLIEVLEK_OK)
        rc = finish(&s);
    else
        mdb_env_sync(replica->env, 1);
    olv_net_free(s.net);
    olv_unlock(replica);
    if (result)
        *result = s.progress;
    return rc;
}
