/*
 * Reading the replica: records (with local edits laid over the node's versions), the queued
 * edits, conflicts and their resolution, and the history.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/queue.h"
#include "proto/buf.h"
#include "proto/canon.h"
#include "proto/error.h"

typedef struct {
    char id[OV_ID_CHARS + 1];
    char origin[OV_ID_CHARS + 1];
    char updated[32];
    char title[256];
    char *json;
} record_text;

/* The title of a stored record, found without parsing the whole record. */
typedef struct {
    const char *field;
    char *out;
    size_t size;
} title_walk;

static int title_member(void *ctx, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    title_walk *w = ctx;
    if (strlen(w->field) == key_len && memcmp(key, w->field, key_len) == 0) {
        if (ov_canon_string(value, value_len, w->out, w->size) < 0) {
            /* Longer than fits: cut it at a character boundary. */
            size_t n = value_len - 2 < w->size - 4 ? value_len - 2 : w->size - 4;
            memcpy(w->out, value + 1, n);
            while (n > 0 && ((unsigned char)w->out[n] & 0xC0) == 0x80)
                n--;
            memcpy(w->out + n, "…", 4);
        }
        return 1;
    }
    return 0;
}

static void row_title(const olv_row *row, char *out, size_t size)
{
    out[0] = '\0';
    title_walk w = {ov_record_title_field(row->kind), out, size};
    ov_canon_each_member(row->json, row->json_len, title_member, &w);
}

static int deliver(olievlek_replica *r, MDB_txn *txn, const ov_id *id, const MDB_val *value,
                   int local, olievlek_record_fn fn, void *ctx)
{
    olv_row row;
    if (olv_row_decode(value, &row) != OLIEVLEK_OK)
        return 0;
    record_text t;
    ov_id_format(id, t.id);
    ov_id_format(&row.origin, t.origin);
    ov_time_format(row.updated_ms, t.updated);
    row_title(&row, t.title, sizeof t.title);
    t.json = strndup(row.json, row.json_len);
    if (!t.json)
        return OLIEVLEK_ENOMEM;
    MDB_val ck = {OV_ID_BYTES, (void *)id->bytes}, cv;
    olievlek_record rec = {.id = t.id,
                           .kind = ov_kind_name(row.kind),
                           .title = t.title,
                           .status = ov_status_name(row.status),
                           .origin = t.origin,
                           .updated = t.updated,
                           .version = row.version,
                           .local = local,
                           .conflict = mdb_get(txn, r->conflicts, &ck, &cv) == 0,
                           .json = t.json};
    int stop = fn(ctx, &rec);
    free(t.json);
    return stop;
}

typedef struct {
    ov_id id;
    int64_t updated_ms;
    int local;
} list_item;

static int newest_first(const void *a, const void *b)
{
    const list_item *x = a, *y = b;
    if (x->updated_ms != y->updated_ms)
        return x->updated_ms < y->updated_ms ? 1 : -1;
    return ov_id_compare(&y->id, &x->id);
}

static int collect(MDB_txn *txn, MDB_dbi dbi, MDB_dbi skip_if_in, int local, int want_kind,
                   ov_kind kind, int include_deleted, list_item **items, size_t *count, size_t *cap)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, dbi, &cur) != 0)
        return OLIEVLEK_ESTORE;
    int rc = OLIEVLEK_OK;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        olv_row row;
        if (k.mv_size != OV_ID_BYTES || olv_row_decode(&v, &row) != OLIEVLEK_OK)
            continue;
        if ((want_kind && row.kind != kind) ||
            (!include_deleted && row.status == OV_STATUS_DELETED))
            continue;
        MDB_val lv;
        if (!local && mdb_get(txn, skip_if_in, &k, &lv) == 0)
            continue; /* shown through its local version */
        if (*count == *cap) {
            size_t grown_cap = *cap ? *cap * 2 : 256;
            list_item *grown = realloc(*items, grown_cap * sizeof *grown);
            if (!grown) {
                rc = OLIEVLEK_ENOMEM;
                break;
            }
            *items = grown;
            *cap = grown_cap;
        }
        list_item *it = &(*items)[(*count)++];
        memcpy(it->id.bytes, k.mv_data, OV_ID_BYTES);
        it->updated_ms = row.updated_ms;
        it->local = local;
    }
    mdb_cursor_close(cur);
    return rc;
}

int olievlek_list(olievlek_replica *replica, const char *kind_name, int include_deleted,
                  olievlek_record_fn fn, void *ctx)
{
    ov_kind kind = OV_KIND_REGION;
    if (kind_name && ov_kind_parse(kind_name, strlen(kind_name), &kind) != OV_OK)
        return olv_fail(replica, OLIEVLEK_EINVAL, "unknown kind '%s'", kind_name);
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    list_item *items = NULL;
    size_t count = 0, cap = 0;
    rc = collect(txn, replica->local, replica->local, 1, kind_name != NULL, kind, include_deleted,
                 &items, &count, &cap);
    if (!rc)
        rc = collect(txn, replica->records, replica->local, 0, kind_name != NULL, kind,
                     include_deleted, &items, &count, &cap);
    if (!rc)
        qsort(items, count, sizeof *items, newest_first);
    for (size_t i = 0; !rc && i < count; i++) {
        MDB_val k = {OV_ID_BYTES, items[i].id.bytes}, v;
        if (mdb_get(txn, items[i].local ? replica->local : replica->records, &k, &v) != 0)
            continue;
        int stop = deliver(replica, txn, &items[i].id, &v, items[i].local, fn, ctx);
        if (stop < 0)
            rc = stop;
        else if (stop)
            break;
    }
    free(items);
    mdb_txn_abort(txn);
    return rc;
}

int olievlek_get(olievlek_replica *replica, const char *id_text, olievlek_record_fn fn, void *ctx)
{
    ov_id id;
    if (olv_parse_record_id(replica, id_text, &id) != OLIEVLEK_OK)
        return OLIEVLEK_EINVAL;
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_val v;
    int local = olv_local_get(replica, txn, &id, &v) == OLIEVLEK_OK;
    if (local || olv_record_get(replica, txn, &id, &v) == OLIEVLEK_OK) {
        int stop = deliver(replica, txn, &id, &v, local, fn, ctx);
        rc = stop < 0 ? stop : OLIEVLEK_OK;
    } else {
        rc = olv_fail(replica, OLIEVLEK_ENOTFOUND,
                      "this replica holds no record %s (pull first, or check its scope)", id_text);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* ---- Edits ------------------------------------------------------------------------------- */

int olievlek_edits(olievlek_replica *replica, olievlek_edit_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->queue, &cur) != 0) {
        mdb_txn_abort(txn);
        return OLIEVLEK_ESTORE;
    }
    /* Pending ones first (in push order), then the rejected. */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
            olv_edit e;
            if (olv_edit_decode(&k, &v, &e) != OLIEVLEK_OK)
                continue;
            if (e.rejected == pass) {
                char id[OV_ID_CHARS + 1], title[256] = "";
                ov_id_format(&e.id, id);
                MDB_val lv;
                olv_row row;
                if (olv_local_get(replica, txn, &e.id, &lv) == OLIEVLEK_OK &&
                    olv_row_decode(&lv, &row) == OLIEVLEK_OK)
                    row_title(&row, title, sizeof title);
                olievlek_edit_info info = {e.mutation,
                                           olv_op_name(e.op),
                                           ov_kind_name(e.kind),
                                           id,
                                           title,
                                           e.rejected ? "rejected" : "pending",
                                           e.reason,
                                           e.queued_ms};
                if (fn(ctx, &info))
                    rc = 1;
            }
            olv_edit_clear(&e);
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc > 0 ? OLIEVLEK_OK : rc;
}

int olievlek_discard(olievlek_replica *replica, const char *mutation_id)
{
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, 0, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    int found = 0;
    olv_edit e = {0};
    if (mdb_cursor_open(txn, replica->queue, &cur) == 0) {
        for (int op = MDB_FIRST; !found && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
            if (olv_edit_decode(&k, &v, &e) != OLIEVLEK_OK)
                continue;
            if (strcmp(e.mutation, mutation_id) == 0 && e.rejected)
                found = 1;
            else
                olv_edit_clear(&e);
        }
        mdb_cursor_close(cur);
    }
    if (!found) {
        mdb_txn_abort(txn);
        return olv_fail(replica, OLIEVLEK_ENOTFOUND,
                        "no rejected edit %s (see `olievlek status` for the edits)", mutation_id);
    }
    rc = olv_edit_del(replica, txn, e.key);
    olv_edit later;
    /* With no other edit of the record left, the local version goes too: the replica shows the
     * node's version again. */
    if (!rc && olv_edit_last_for(replica, txn, &e.id, &later) == OLIEVLEK_ENOTFOUND) {
        MDB_val lk = {OV_ID_BYTES, e.id.bytes};
        mdb_del(txn, replica->local, &lk, NULL);
    } else if (!rc) {
        olv_edit_clear(&later);
    }
    char id[OV_ID_CHARS + 1];
    ov_id_format(&e.id, id);
    if (!rc)
        rc =
            olv_history_add(replica, txn, "discarded the rejected %s of %s", olv_op_name(e.op), id);
    olv_edit_clear(&e);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return olv_txn_commit(replica, txn, 1);
}

/* ---- Conflicts --------------------------------------------------------------------------- */

int olievlek_conflicts(olievlek_replica *replica, olievlek_conflict_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->conflicts, &cur) != 0) {
        mdb_txn_abort(txn);
        return OLIEVLEK_ESTORE;
    }
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        json_t *c = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (!c || k.mv_size != OV_ID_BYTES) {
            json_decref(c);
            continue;
        }
        ov_id id;
        memcpy(id.bytes, k.mv_data, OV_ID_BYTES);
        char id_text[OV_ID_CHARS + 1], title[256] = "";
        ov_id_format(&id, id_text);
        MDB_val lv;
        olv_row row;
        if (olv_local_get(replica, txn, &id, &lv) == OLIEVLEK_OK &&
            olv_row_decode(&lv, &row) == OLIEVLEK_OK)
            row_title(&row, title, sizeof title);
        olievlek_conflict info = {
            .id = id_text,
            .kind = json_string_value(json_object_get(c, "kind")),
            .title = title,
            .base_version = (uint32_t)json_integer_value(json_object_get(c, "base")),
            .their_version = (uint32_t)json_integer_value(json_object_get(c, "their_version")),
            .mine = json_string_value(json_object_get(c, "mine")),
            .theirs = json_string_value(json_object_get(c, "theirs"))};
        if (fn(ctx, &info))
            rc = 1;
        json_decref(c);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc > 0 ? OLIEVLEK_OK : rc;
}

/* Drops the conflict, the local version and every queued edit of id. */
static int forget_local(olievlek_replica *r, MDB_txn *txn, const ov_id *id)
{
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes};
    mdb_del(txn, r->conflicts, &k, NULL);
    mdb_del(txn, r->local, &k, NULL);
    olv_edit e;
    while (olv_edit_last_for(r, txn, id, &e) == OLIEVLEK_OK) {
        int rc = olv_edit_del(r, txn, e.key);
        olv_edit_clear(&e);
        if (rc)
            return rc;
    }
    return OLIEVLEK_OK;
}

int olievlek_resolve(olievlek_replica *replica, const char *id_text, olievlek_resolution how,
                     const char *merged_json)
{
    ov_id id;
    if (olv_parse_record_id(replica, id_text, &id) != OLIEVLEK_OK)
        return OLIEVLEK_EINVAL;
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {OV_ID_BYTES, id.bytes}, v;
    json_t *c = NULL;
    if (mdb_get(txn, replica->conflicts, &k, &v) == 0)
        c = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (!c) {
        mdb_txn_abort(txn);
        return olv_fail(replica, OLIEVLEK_ENOTFOUND, "%s has no conflict to resolve", id_text);
    }
    const char *kind = json_string_value(json_object_get(c, "kind"));
    const char *mine = json_string_value(json_object_get(c, "mine"));
    uint32_t theirs_version = (uint32_t)json_integer_value(json_object_get(c, "their_version"));
    char *content = NULL;
    if (how == OLIEVLEK_MERGED)
        content = merged_json ? strdup(merged_json) : NULL;
    else if (how == OLIEVLEK_KEEP_MINE)
        content = mine ? strdup(mine) : NULL;
    char *kind_copy = kind ? strdup(kind) : NULL;
    json_decref(c);
    rc = forget_local(replica, txn, &id);
    if (!rc)
        rc = olv_history_add(replica, txn, "conflict on %s resolved: %s", id_text,
                             how == OLIEVLEK_KEEP_THEIRS ? "the node's version kept"
                             : how == OLIEVLEK_KEEP_MINE ? "the local version goes on top"
                                                         : "a merged version goes on top");
    if (!rc)
        rc = olv_txn_commit(replica, txn, 1);
    else
        mdb_txn_abort(txn);
    /* Then the chosen content is a new edit on top of the node's current version. A local
     * deletion kept ("mine" empty) is a deletion again; a record deleted at the node comes back
     * only as a new record. */
    if (!rc && how != OLIEVLEK_KEEP_THEIRS) {
        if (!content && how == OLIEVLEK_KEEP_MINE)
            rc = theirs_version ? olievlek_delete(replica, id_text) : OLIEVLEK_OK;
        else if (!content)
            rc = olv_fail(replica, OLIEVLEK_EINVAL, "give the merged record");
        else if (theirs_version == 0)
            rc = olievlek_new(replica, kind_copy, content, NULL);
        else
            rc = olievlek_edit(replica, id_text, content);
    }
    free(content);
    free(kind_copy);
    return rc;
}

/* ---- History ----------------------------------------------------------------------------- */

int olievlek_history(olievlek_replica *replica, unsigned limit, olievlek_event_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->history, &cur) != 0) {
        mdb_txn_abort(txn);
        return OLIEVLEK_ESTORE;
    }
    unsigned n = 0;
    for (int op = MDB_LAST; n < limit && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_PREV) {
        if (k.mv_size != 12)
            continue;
        char *line = strndup(v.mv_data, v.mv_size);
        if (!line)
            break;
        olievlek_event ev = {(int64_t)ov_be64_get(k.mv_data), line};
        int stop = fn(ctx, &ev);
        free(line);
        n++;
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return OLIEVLEK_OK;
}
