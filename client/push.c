/*
 * Push: send the queued edits to the node in order, each as the REST call it stands for with its
 * mutation id as Idempotency-Key (docs/protocol.md §9.2), and act on each answer: accepted,
 * conflict, rejected, or undecided (then stop and try again later with the same key).
 *
 * An edit is marked "attempted" durably before it is sent: if the client dies while the request
 * is out, the next push sends it again with the same key, and the node answers as it did the
 * first time instead of applying it twice.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/net.h"
#include "client/queue.h"
#include "proto/error.h"

#define PUSH_ANSWER_MAX (4u << 20)
#define BLOCKED_MAX     256

typedef struct {
    olievlek_replica *r;
    olv_net *net;
    olievlek_push_result result;
    ov_id blocked[BLOCKED_MAX]; /* records whose earlier edit is rejected or in conflict */
    size_t blocked_count;
} push_state;

static int is_blocked(const push_state *s, const ov_id *id)
{
    for (size_t i = 0; i < s->blocked_count; i++)
        if (ov_id_compare(&s->blocked[i], id) == 0)
            return 1;
    return 0;
}

static void block(push_state *s, const ov_id *id)
{
    if (!is_blocked(s, id) && s->blocked_count < BLOCKED_MAX)
        s->blocked[s->blocked_count++] = *id;
}

static int record_version(olievlek_replica *r, MDB_txn *txn, const ov_id *id, uint32_t *version)
{
    MDB_val v;
    olv_row row;
    if (olv_record_get(r, txn, id, &v) != OLIEVLEK_OK || olv_row_decode(&v, &row) != OLIEVLEK_OK)
        return OLIEVLEK_ENOTFOUND;
    *version = row.version;
    return OLIEVLEK_OK;
}

/* Whether any edit of id other than the one at key is still queued. */
static int more_edits_of(olievlek_replica *r, MDB_txn *txn, const ov_id *id, uint64_t key)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int found = 0;
    if (mdb_cursor_open(txn, r->queue, &cur) != 0)
        return 0;
    for (int op = MDB_FIRST; !found && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        olv_edit e;
        if (olv_edit_decode(&k, &v, &e) == OLIEVLEK_OK)
            found = e.key != key && ov_id_compare(&e.id, id) == 0;
        olv_edit_clear(&e);
    }
    mdb_cursor_close(cur);
    return found;
}

/* The node's answer stored as the record's new state; the local version goes once no other
 * edit of it waits. */
static int accept(push_state *s, const olv_edit *edit, const olv_response *resp)
{
    olievlek_replica *r = s->r;
    MDB_txn *txn;
    int rc = olv_txn_begin(r, 0, &txn);
    if (rc)
        return rc;
    char id[OV_ID_CHARS + 1];
    ov_id_format(&edit->id, id);
    uint32_t version = (uint32_t)strtoul(resp->etag, NULL, 10);
    if (resp->body.len > 0) {
        olv_row row;
        ov_id body_id;
        if (olv_row_from_json(resp->body.data, resp->body.len, &row, &body_id) == OLIEVLEK_OK &&
            ov_id_compare(&body_id, &edit->id) == 0) {
            version = row.version;
            rc = olv_row_put(txn, r->records, &edit->id, row.kind, row.status, row.version,
                             row.updated_ms, &row.origin, resp->body.data, resp->body.len);
        }
    } else if (edit->op == OLV_OP_DELETE) {
        MDB_val v;
        olv_row held;
        ov_id origin = {{0}};
        if (olv_record_get(r, txn, &edit->id, &v) == OLIEVLEK_OK &&
            olv_row_decode(&v, &held) == OLIEVLEK_OK)
            origin = held.origin;
        char tomb[160];
        int n =
            snprintf(tomb, sizeof tomb, "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"deleted\"}",
                     id, ov_kind_name(edit->kind));
        rc = olv_row_put(txn, r->records, &edit->id, edit->kind, OV_STATUS_DELETED, version,
                         olv_now_ms(), &origin, tomb, (size_t)n);
    }
    if (rc)
        rc = olv_fail_mdb(r, rc, "storing the node's answer");
    if (!rc && !more_edits_of(r, txn, &edit->id, edit->key)) {
        MDB_val k = {OV_ID_BYTES, (void *)edit->id.bytes};
        mdb_del(txn, r->local, &k, NULL);
    }
    if (!rc)
        rc = olv_edit_del(r, txn, edit->key);
    if (!rc)
        rc = olv_history_add(r, txn, "pushed: %s of %s %s accepted, version %u%s",
                             olv_op_name(edit->op), ov_kind_name(edit->kind), id, version,
                             resp->replayed ? " (the node had it already)" : "");
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    s->result.accepted++;
    return olv_txn_commit(r, txn, 1);
}

/* The node's current version of a record, for a conflict: from the 412's `current`, else asked
 * for. NULL when it is gone (a tombstone is made by the caller). */
static char *their_version(push_state *s, const olv_edit *edit, const olv_response *resp)
{
    json_t *problem = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    json_t *current = json_object_get(problem, "current");
    char *text =
        json_is_object(current) ? json_dumps(current, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(problem);
    if (text || resp->status != 412)
        return text;
    char path[128], id[OV_ID_CHARS + 1];
    ov_id_format(&edit->id, id);
    snprintf(path, sizeof path, "/api/v1/%s/%s", ov_kind_collection(edit->kind), id);
    olv_request req = {
        .method = "GET", .path = path, .token = s->r->token, .max_body = PUSH_ANSWER_MAX};
    olv_response got;
    char error[256];
    if (olv_net_send(s->net, &req, &got, error, sizeof error) == 0 && got.status == 200)
        text = strndup(got.body.data, got.body.len);
    olv_response_free(&got);
    return text;
}

/* A conflict: the local version and the node's, kept side by side until the user resolves.
 * This edit and the record's later ones leave the queue (the local version holds them all). */
static int conflict(push_state *s, const olv_edit *edit, const olv_response *resp, uint32_t base)
{
    olievlek_replica *r = s->r;
    char id[OV_ID_CHARS + 1];
    ov_id_format(&edit->id, id);
    char *theirs = their_version(s, edit, resp);
    MDB_txn *txn;
    int rc = olv_txn_begin(r, 0, &txn);
    if (rc) {
        free(theirs);
        return rc;
    }
    uint32_t their_version_n = 0;
    if (theirs) {
        olv_row row;
        ov_id body_id;
        if (olv_row_from_json(theirs, strlen(theirs), &row, &body_id) == OLIEVLEK_OK) {
            their_version_n = row.status == OV_STATUS_DELETED ? 0 : row.version;
            /* The node's current state is also what the replica should show as the node's. */
            olv_row_put(txn, r->records, &edit->id, row.kind, row.status, row.version,
                        row.updated_ms, &row.origin, theirs, strlen(theirs));
        }
    } else {
        char tomb[160];
        snprintf(tomb, sizeof tomb, "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"deleted\"}", id,
                 ov_kind_name(edit->kind));
        theirs = strdup(tomb);
    }
    MDB_val local;
    char *mine = NULL;
    if (olv_local_get(r, txn, &edit->id, &local) == OLIEVLEK_OK) {
        olv_row row;
        if (olv_row_decode(&local, &row) == OLIEVLEK_OK && row.status != OV_STATUS_DELETED)
            mine = strndup(row.json, row.json_len);
    }
    json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:s?, s:s?, s:s}", "kind", ov_kind_name(edit->kind),
                          "op", olv_op_name(edit->op), "base", (json_int_t)base, "their_version",
                          (json_int_t)their_version_n, "mine", mine, "theirs", theirs, "mutation",
                          edit->mutation);
    char *text = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(c);
    free(mine);
    free(theirs);
    if (!text) {
        mdb_txn_abort(txn);
        return OLIEVLEK_ENOMEM;
    }
    MDB_val k = {OV_ID_BYTES, (void *)edit->id.bytes}, v = {strlen(text), text};
    rc = mdb_put(txn, r->conflicts, &k, &v, 0);
    free(text);
    if (rc)
        rc = olv_fail_mdb(r, rc, "keeping the conflict");
    /* Drop this record's edits from the queue: what they wrote is in the local version. */
    MDB_cursor *cur;
    MDB_val qk, qv;
    if (!rc && mdb_cursor_open(txn, r->queue, &cur) == 0) {
        for (int op = MDB_FIRST; mdb_cursor_get(cur, &qk, &qv, op) == 0; op = MDB_NEXT) {
            olv_edit e;
            if (olv_edit_decode(&qk, &qv, &e) == OLIEVLEK_OK &&
                ov_id_compare(&e.id, &edit->id) == 0)
                mdb_cursor_del(cur, 0);
            olv_edit_clear(&e);
        }
        mdb_cursor_close(cur);
    }
    if (!rc)
        rc = olv_history_add(r, txn,
                             "conflict: %s %s changed on the node meanwhile (version %u); see "
                             "`olievlek conflicts`",
                             ov_kind_name(edit->kind), id, their_version_n);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    s->result.conflicts++;
    block(s, &edit->id);
    return olv_txn_commit(r, txn, 1);
}

/* The node's explanation of a refusal: its detail and each field's problem, one line. */
static char *refusal_reason(const olv_response *resp)
{
    json_t *p = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    ov_buf out;
    ov_buf_init(&out, 4096);
    const char *title = json_string_value(json_object_get(p, "title"));
    const char *detail = json_string_value(json_object_get(p, "detail"));
    ov_buf_printf(&out, "%ld %s", resp->status, title ? title : "refused");
    if (detail)
        ov_buf_printf(&out, ": %s", detail);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(p, "errors"), i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *message = json_string_value(json_object_get(e, "message"));
        ov_buf_printf(&out, "; %s: %s", field ? field : "?", message ? message : "");
    }
    json_decref(p);
    char *text = out.failed ? NULL : strdup(out.data ? out.data : "");
    ov_buf_free(&out);
    return text;
}

static int reject(push_state *s, olv_edit *edit, const olv_response *resp)
{
    olievlek_replica *r = s->r;
    MDB_txn *txn;
    int rc = olv_txn_begin(r, 0, &txn);
    if (rc)
        return rc;
    free(edit->reason);
    edit->reason = refusal_reason(resp);
    edit->rejected = 1;
    char id[OV_ID_CHARS + 1];
    ov_id_format(&edit->id, id);
    rc = olv_edit_put(r, txn, edit);
    if (!rc)
        rc = olv_history_add(r, txn, "rejected: %s of %s %s: %s", olv_op_name(edit->op),
                             ov_kind_name(edit->kind), id, edit->reason ? edit->reason : "");
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    s->result.rejected++;
    block(s, &edit->id);
    return olv_txn_commit(r, txn, 1);
}

static int mark_attempted(push_state *s, olv_edit *edit)
{
    if (edit->attempted)
        return OLIEVLEK_OK;
    MDB_txn *txn;
    int rc = olv_txn_begin(s->r, 0, &txn);
    if (rc)
        return rc;
    edit->attempted = 1;
    if ((rc = olv_edit_put(s->r, txn, edit)) != OLIEVLEK_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    return olv_txn_commit(s->r, txn, 1);
}

/* Sends one edit and acts on the answer. OLIEVLEK_OK to go on with the next edit; an error to
 * stop the push (the edit stays queued). */
static int push_one(push_state *s, olv_edit *edit)
{
    olievlek_replica *r = s->r;
    uint32_t base = edit->base;
    if (edit->op != OLV_OP_CREATE && base == 0) {
        MDB_txn *txn;
        int rc = olv_txn_begin(r, MDB_RDONLY, &txn);
        if (rc)
            return rc;
        rc = record_version(r, txn, &edit->id, &base);
        mdb_txn_abort(txn);
        if (rc)
            return olv_fail(r, OLIEVLEK_ESTORE, "the replica lost the base of a queued edit");
    }
    int rc = mark_attempted(s, edit);
    if (rc)
        return rc;
    char id[OV_ID_CHARS + 1], path[128], if_match[16];
    ov_id_format(&edit->id, id);
    if (edit->op == OLV_OP_CREATE)
        snprintf(path, sizeof path, "/api/v1/%s", ov_kind_collection(edit->kind));
    else
        snprintf(path, sizeof path, "/api/v1/%s/%s", ov_kind_collection(edit->kind), id);
    snprintf(if_match, sizeof if_match, "%u", base);
    olv_request req = {.method = edit->op == OLV_OP_CREATE   ? "POST"
                                 : edit->op == OLV_OP_UPDATE ? "PUT"
                                                             : "DELETE",
                       .path = path,
                       .content_type = edit->content ? "application/json" : NULL,
                       .body = edit->content,
                       .body_len = edit->content ? strlen(edit->content) : 0,
                       .token = r->token,
                       .if_match = edit->op == OLV_OP_CREATE ? NULL : if_match,
                       .idempotency_key = edit->mutation,
                       .max_body = PUSH_ANSWER_MAX};
    olv_response resp;
    char error[256];
    if (olv_net_send(s->net, &req, &resp, error, sizeof error) != 0) {
        olv_response_free(&resp);
        return olv_fail(r, OLIEVLEK_ENETWORK,
                        "the node could not be reached (%s); the edits stay queued: push again "
                        "later",
                        error);
    }
    long st = resp.status;
    if (st >= 200 && st < 300)
        rc = accept(s, edit, &resp);
    else if (st == 412 || ((st == 404 || st == 410) && edit->op != OLV_OP_CREATE))
        rc = conflict(s, edit, &resp, base);
    else if (st == 400 || st == 403 || st == 404 || st == 409 || st == 413 || st == 415 ||
             st == 422)
        rc = reject(s, edit, &resp);
    else if (st == 401)
        rc = olv_fail(r, OLIEVLEK_EAUTH,
                      "the node no longer accepts your session: run `olievlek login`, then push");
    else
        rc = olv_fail(r, OLIEVLEK_ENETWORK,
                      "the node answered %ld; the edits stay queued: push again later%s", st,
                      resp.retry_after_s ? " (it asked to wait)" : "");
    olv_response_free(&resp);
    return rc;
}

/* The edit to send next: the first queued one that is not rejected and not behind a rejected
 * or conflicting edit of its record. OLIEVLEK_ENOTFOUND when none is left. Rejected edits block
 * their record's later edits. */
static int next_edit(push_state *s, uint64_t after, olv_edit *out)
{
    olievlek_replica *r = s->r;
    MDB_txn *txn;
    int rc = olv_txn_begin(r, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t start[8];
    ov_be64_put(start, after + 1);
    rc = OLIEVLEK_ENOTFOUND;
    if (mdb_cursor_open(txn, r->queue, &cur) == 0) {
        k.mv_size = 8;
        k.mv_data = start;
        for (int op = MDB_SET_RANGE; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
            olv_edit e;
            if (olv_edit_decode(&k, &v, &e) != OLIEVLEK_OK)
                continue;
            MDB_val ck = {OV_ID_BYTES, e.id.bytes}, cv;
            if (e.rejected || mdb_get(txn, r->conflicts, &ck, &cv) == 0) {
                block(s, &e.id);
            } else if (!is_blocked(s, &e.id)) {
                *out = e;
                rc = OLIEVLEK_OK;
                break;
            }
            olv_edit_clear(&e);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* What is still waiting, without counting the replica's records as the status does. */
static void count_left(push_state *s)
{
    MDB_txn *txn;
    unsigned rejected;
    if (olv_txn_begin(s->r, MDB_RDONLY, &txn) == OLIEVLEK_OK) {
        olv_queue_counts(s->r, txn, &s->result.pending, &rejected);
        mdb_txn_abort(txn);
    }
}

int olievlek_push(olievlek_replica *replica, olievlek_push_result *result)
{
    push_state s = {.r = replica};
    int rc = olv_lock(replica);
    if (rc)
        return rc;
    olv_token_load(replica);
    MDB_txn *txn;
    char *url = NULL;
    if ((rc = olv_txn_begin(replica, MDB_RDONLY, &txn)) == OLIEVLEK_OK) {
        olv_meta_get(replica, txn, "node_url", &url);
        mdb_txn_abort(txn);
    }
    olv_edit first;
    int have = rc == OLIEVLEK_OK ? next_edit(&s, 0, &first) : rc;
    if (have == OLIEVLEK_OK && !replica->token) {
        olv_edit_clear(&first);
        have = olv_fail(replica, OLIEVLEK_EAUTH,
                        "log in first (`olievlek login`): the node takes edits only from known "
                        "accounts");
    }
    if (have == OLIEVLEK_OK && !(s.net = url ? olv_net_new(url) : NULL)) {
        olv_edit_clear(&first);
        have = olv_fail(replica, OLIEVLEK_ESTORE, "the replica's settings are damaged");
    }
    free(url);
    rc = have == OLIEVLEK_ENOTFOUND ? OLIEVLEK_OK : have;
    /* Bounded by the queue: every round removes, rejects or blocks one edit, or stops. */
    while (have == OLIEVLEK_OK) {
        uint64_t key = first.key;
        rc = push_one(&s, &first);
        olv_edit_clear(&first);
        if (rc)
            break;
        have = next_edit(&s, key, &first);
        if (have != OLIEVLEK_OK && have != OLIEVLEK_ENOTFOUND)
            rc = have;
    }
    if ((rc == OLIEVLEK_OK || rc == OLIEVLEK_ENETWORK) &&
        olv_txn_begin(replica, 0, &txn) == OLIEVLEK_OK) {
        char now[32];
        snprintf(now, sizeof now, "%lld", (long long)olv_now_ms());
        if (olv_meta_put(replica, txn, "last_push", now) == OLIEVLEK_OK)
            olv_txn_commit(replica, txn, 1);
        else
            mdb_txn_abort(txn);
    }
    olv_net_free(s.net);
    olv_unlock(replica);
    count_left(&s);
    if (result)
        *result = s.result;
    return rc;
}
