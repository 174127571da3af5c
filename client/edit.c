/*
 * Offline edits: new records, changes and deletions, validated as the node validates them and
 * queued durably for push; the local version each produces; templates for editors.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/queue.h"
#include "proto/buf.h"
#include "proto/canon.h"
#include "proto/error.h"

/* ---- The queue ---------------------------------------------------------------------------- */

const char *olv_op_name(olv_op op)
{
    return op == OLV_OP_CREATE ? "create" : op == OLV_OP_UPDATE ? "update" : "delete";
}

void olv_edit_clear(olv_edit *edit)
{
    free(edit->reason);
    free(edit->content);
    memset(edit, 0, sizeof *edit);
}

int olv_edit_decode(const MDB_val *key, const MDB_val *value, olv_edit *edit)
{
    memset(edit, 0, sizeof *edit);
    if (key->mv_size != 8)
        return OLIEVLEK_ESTORE;
    edit->key = ov_be64_get(key->mv_data);
    json_t *o = json_loadb(value->mv_data, value->mv_size, 0, NULL);
    if (!o)
        return OLIEVLEK_ESTORE;
    const char *mutation = json_string_value(json_object_get(o, "mutation"));
    const char *op = json_string_value(json_object_get(o, "op"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *state = json_string_value(json_object_get(o, "state"));
    const char *reason = json_string_value(json_object_get(o, "reason"));
    const char *content = json_string_value(json_object_get(o, "content"));
    int rc = OLIEVLEK_OK;
    if (!mutation || strlen(mutation) != OV_ID_CHARS || !op || !kind || !id ||
        ov_kind_parse(kind, strlen(kind), &edit->kind) != OV_OK ||
        ov_id_parse(id, strlen(id), &edit->id) != OV_OK)
        rc = OLIEVLEK_ESTORE;
    if (rc == OLIEVLEK_OK) {
        memcpy(edit->mutation, mutation, OV_ID_CHARS + 1);
        edit->op = strcmp(op, "create") == 0   ? OLV_OP_CREATE
                   : strcmp(op, "update") == 0 ? OLV_OP_UPDATE
                                               : OLV_OP_DELETE;
        edit->base = (uint32_t)json_integer_value(json_object_get(o, "base"));
        edit->attempted = json_is_true(json_object_get(o, "attempted"));
        edit->rejected = state && strcmp(state, "rejected") == 0;
        edit->queued_ms = (int64_t)json_integer_value(json_object_get(o, "queued"));
        edit->reason = reason ? strdup(reason) : NULL;
        edit->content = content ? strdup(content) : NULL;
    }
    json_decref(o);
    return rc;
}

int olv_edit_put(olievlek_replica *replica, MDB_txn *txn, olv_edit *edit)
{
    if (edit->key == 0) {
        MDB_cursor *cur;
        MDB_val k, v;
        uint64_t last = 0;
        if (mdb_cursor_open(txn, replica->queue, &cur) == 0) {
            if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
                last = ov_be64_get(k.mv_data);
            mdb_cursor_close(cur);
        }
        edit->key = last + 1;
    }
    char id[OV_ID_CHARS + 1];
    ov_id_format(&edit->id, id);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:s, s:I}", "mutation", edit->mutation, "op",
                  olv_op_name(edit->op), "kind", ov_kind_name(edit->kind), "id", id, "base",
                  (json_int_t)edit->base, "attempted", edit->attempted, "state",
                  edit->rejected ? "rejected" : "pending", "queued", (json_int_t)edit->queued_ms);
    if (o && edit->reason)
        json_object_set_new(o, "reason", json_string(edit->reason));
    if (o && edit->content)
        json_object_set_new(o, "content", json_string(edit->content));
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!text)
        return olv_fail(replica, OLIEVLEK_ENOMEM, "out of memory");
    uint8_t key[8];
    ov_be64_put(key, edit->key);
    MDB_val k = {8, key}, v = {strlen(text), text};
    int rc = mdb_put(txn, replica->queue, &k, &v, 0);
    free(text);
    return rc ? olv_fail_mdb(replica, rc, "queueing the edit") : OLIEVLEK_OK;
}

int olv_edit_del(olievlek_replica *replica, MDB_txn *txn, uint64_t key)
{
    uint8_t k8[8];
    ov_be64_put(k8, key);
    MDB_val k = {8, k8};
    int rc = mdb_del(txn, replica->queue, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? olv_fail_mdb(replica, rc, "updating the queue") : OLIEVLEK_OK;
}

int olv_edit_last_for(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, olv_edit *out)
{
    memset(out, 0, sizeof *out);
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->queue, &cur) != 0)
        return OLIEVLEK_ESTORE;
    int found = OLIEVLEK_ENOTFOUND;
    /* The queue is short (what one brigadier wrote offline): a walk from the end is enough. */
    for (int op = MDB_LAST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_PREV) {
        olv_edit e;
        if (olv_edit_decode(&k, &v, &e) != OLIEVLEK_OK)
            continue;
        if (ov_id_compare(&e.id, id) == 0) {
            *out = e;
            found = OLIEVLEK_OK;
            break;
        }
        olv_edit_clear(&e);
    }
    mdb_cursor_close(cur);
    return found;
}

void olv_queue_counts(olievlek_replica *replica, MDB_txn *txn, unsigned *pending,
                      unsigned *rejected)
{
    *pending = *rejected = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->queue, &cur) != 0)
        return;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        olv_edit e;
        if (olv_edit_decode(&k, &v, &e) != OLIEVLEK_OK)
            continue;
        if (e.rejected)
            (*rejected)++;
        else
            (*pending)++;
        olv_edit_clear(&e);
    }
    mdb_cursor_close(cur);
}

int olv_mutation_id(char out[OV_ID_CHARS + 1])
{
    ov_id id;
    if (ov_id_generate(&id, (uint64_t)olv_now_ms()) != OV_OK)
        return OLIEVLEK_ESTORE;
    ov_id_format(&id, out);
    return OLIEVLEK_OK;
}

int olv_local_get(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, MDB_val *row)
{
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes};
    int rc = mdb_get(txn, replica->local, &k, row);
    return rc == 0 ? OLIEVLEK_OK : rc == MDB_NOTFOUND ? OLIEVLEK_ENOTFOUND : OLIEVLEK_ESTORE;
}

int olv_record_get(olievlek_replica *replica, MDB_txn *txn, const ov_id *id, MDB_val *row)
{
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes};
    int rc = mdb_get(txn, replica->records, &k, row);
    return rc == 0 ? OLIEVLEK_OK : rc == MDB_NOTFOUND ? OLIEVLEK_ENOTFOUND : OLIEVLEK_ESTORE;
}

int olv_row_put(MDB_txn *txn, MDB_dbi dbi, const ov_id *id, ov_kind kind, ov_status status,
                uint32_t version, int64_t updated_ms, const ov_id *origin, const char *json,
                size_t json_len)
{
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes}, v = {OLV_ROW_HEADER + json_len, NULL};
    int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc)
        return rc;
    olv_row_encode_header(v.mv_data, kind, status, version, updated_ms, origin);
    memcpy((uint8_t *)v.mv_data + OLV_ROW_HEADER, json, json_len);
    return 0;
}

/* ---- Validation -------------------------------------------------------------------------- */

unsigned olievlek_validation_count(const olievlek_replica *replica)
{
    return (unsigned)replica->validation.count;
}

const char *olievlek_validation_field(const olievlek_replica *replica, unsigned i)
{
    return i < (unsigned)replica->validation.count ? replica->validation.items[i].field : NULL;
}

const char *olievlek_validation_message(const olievlek_replica *replica, unsigned i,
                                        const char *lang)
{
    if (i >= (unsigned)replica->validation.count)
        return NULL;
    const ov_field_error *e = &replica->validation.items[i];
    return lang && strcmp(lang, "en") == 0 ? e->message_en : e->message_nl;
}

/* Envelope members the node sets; a user's copy of them is ignored (status is the user's wish). */
static void strip_envelope(json_t *content)
{
    static const char *const members[] = {"version", "created", "updated",
                                          "origin",  "author",  NULL};
    for (const char *const *m = members; *m; m++)
        json_object_del(content, *m);
}

/* A field of the template left empty ("", [], {}) means "not given", not "given as empty". */
static void strip_empty(json_t *content)
{
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(content, tmp, key, value)
    {
        if ((json_is_string(value) && json_string_length(value) == 0) ||
            (json_is_array(value) && json_array_size(value) == 0) ||
            (json_is_object(value) && json_object_size(value) == 0))
            json_object_del(content, key);
    }
}

/* The signed-in brigadier's profile id, as the node gave it at login; NULL when none. */
static char *own_profile(olievlek_replica *r)
{
    MDB_txn *txn;
    char *person = NULL;
    if (olv_txn_begin(r, MDB_RDONLY, &txn) == OLIEVLEK_OK) {
        olv_meta_get(r, txn, "person", &person);
        mdb_txn_abort(txn);
    }
    return person;
}

/* A visit note is the brigadier's own: the node fills in their profile when it is left out, and
 * so does the client, so the note validates here as it will there. */
static void fill_own_profile(olievlek_replica *r, ov_kind kind, json_t *content)
{
    if (kind != OV_KIND_VISIT || json_object_get(content, "brigadier"))
        return;
    char *person = r->token ? own_profile(r) : NULL;
    if (person)
        json_object_set_new(content, "brigadier", json_string(person));
    free(person);
}

/* Parses and validates the user's JSON for kind. On OLIEVLEK_ESCHEMA replica->validation says
 * what is wrong (a JSON syntax error is one problem at field "" with line and column). */
static int parse_content(olievlek_replica *r, ov_kind kind, const char *json, json_t **out)
{
    ov_field_errors_init(&r->validation);
    ov_json_error jerr;
    json_t *content = NULL;
    if (ov_json_parse(json, strlen(json), &content, &jerr) != OV_OK) {
        char nl[200], en[200];
        snprintf(nl, sizeof nl, "geen geldige JSON (regel %d, kolom %d): %s", jerr.line,
                 jerr.column, jerr.message);
        snprintf(en, sizeof en, "not valid JSON (line %d, column %d): %s", jerr.line, jerr.column,
                 jerr.message);
        ov_field_errors_add(&r->validation, "", nl, en);
        return olv_fail(r, OLIEVLEK_ESCHEMA, "%s", en);
    }
    if (!json_is_object(content)) {
        json_decref(content);
        ov_field_errors_add(&r->validation, "", "een record is een JSON-object {…}",
                            "a record is a JSON object {…}");
        return olv_fail(r, OLIEVLEK_ESCHEMA, "a record is a JSON object");
    }
    strip_envelope(content);
    strip_empty(content);
    fill_own_profile(r, kind, content);
    if (ov_record_validate(kind, content, &r->validation) != OV_OK) {
        json_decref(content);
        return olv_fail(r, OLIEVLEK_ESCHEMA, "the %s does not validate: %s %s", ov_kind_name(kind),
                        r->validation.items[0].field, r->validation.items[0].message_en);
    }
    *out = content;
    return OLIEVLEK_OK;
}

static int read_home(olievlek_replica *r, MDB_txn *txn, ov_id *home)
{
    char *node = NULL;
    int rc = olv_meta_get(r, txn, "node_id", &node);
    if (rc == OLIEVLEK_OK && ov_id_parse(node, strlen(node), home) != OV_OK)
        rc = OLIEVLEK_ESTORE;
    free(node);
    return rc ? olv_fail(r, OLIEVLEK_ESTORE, "the replica's settings are damaged") : OLIEVLEK_OK;
}

/* Seals content with env and stores it as the record's local version. */
static int put_local(olievlek_replica *r, MDB_txn *txn, const json_t *content,
                     const ov_envelope *env)
{
    char *canon;
    size_t len;
    uint8_t hash[OV_HASH_BYTES];
    if (ov_record_seal(content, env, NULL, &canon, &len, hash) != OV_OK)
        return olv_fail(r, OLIEVLEK_ENOMEM, "cannot encode the record");
    int rc = olv_row_put(txn, r->local, &env->id, env->kind, env->status, env->version,
                         env->updated_ms, &env->origin, canon, len);
    free(canon);
    return rc ? olv_fail_mdb(r, rc, "saving the local version") : OLIEVLEK_OK;
}

static char *encode_content(const json_t *content)
{
    json_t *copy = json_deep_copy(content);
    char *canon = NULL;
    size_t len;
    if (copy && ov_canon_normalize(copy, NULL) == OV_OK)
        ov_canon_encode(copy, &canon, &len);
    json_decref(copy);
    return canon;
}

int olievlek_new(olievlek_replica *replica, const char *kind_name, const char *json, char **id_out)
{
    if (id_out)
        *id_out = NULL;
    ov_kind kind;
    if (!kind_name || ov_kind_parse(kind_name, strlen(kind_name), &kind) != OV_OK)
        return olv_fail(replica, OLIEVLEK_EINVAL, "unknown kind '%s'", kind_name ? kind_name : "");
    json_t *content;
    int rc = parse_content(replica, kind, json, &content);
    if (rc)
        return rc;
    json_object_del(content, "id");
    MDB_txn *txn;
    if ((rc = olv_txn_begin(replica, 0, &txn)) != OLIEVLEK_OK) {
        json_decref(content);
        return rc;
    }
    ov_envelope env = {.kind = kind, .version = 0, .status = OV_STATUS_DRAFT};
    env.created_ms = env.updated_ms = olv_now_ms();
    env.status = ov_record_requested_status(content, OV_STATUS_DRAFT);
    char id[OV_ID_CHARS + 1];
    olv_edit edit = {.op = OLV_OP_CREATE, .kind = kind, .queued_ms = env.created_ms};
    if (ov_id_generate(&env.id, (uint64_t)env.created_ms) != OV_OK)
        rc = olv_fail(replica, OLIEVLEK_ESTORE, "no randomness for a new id");
    if (!rc)
        rc = read_home(replica, txn, &env.origin);
    if (!rc) {
        ov_id_format(&env.id, id);
        json_object_set_new(content, "id", json_string(id));
        edit.id = env.id;
        rc = olv_mutation_id(edit.mutation);
    }
    if (!rc && !(edit.content = encode_content(content)))
        rc = olv_fail(replica, OLIEVLEK_ENOMEM, "cannot encode the record");
    if (!rc)
        rc = put_local(replica, txn, content, &env);
    if (!rc)
        rc = olv_edit_put(replica, txn, &edit);
    if (!rc)
        rc = olv_history_add(replica, txn, "new %s %s \"%s\" queued", kind_name, id,
                             ov_record_display_title(kind, content));
    json_decref(content);
    free(edit.content);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = olv_txn_commit(replica, txn, 1)) != OLIEVLEK_OK)
        return rc;
    if (id_out && !(*id_out = strdup(id)))
        return OLIEVLEK_ENOMEM;
    return OLIEVLEK_OK;
}

/* The record as the user sees it now (local version, else the node's), in txn's memory. */
static int current_row(olievlek_replica *r, MDB_txn *txn, const ov_id *id, olv_row *row,
                       int *is_local)
{
    MDB_val v;
    *is_local = olv_local_get(r, txn, id, &v) == OLIEVLEK_OK;
    if (!*is_local && olv_record_get(r, txn, id, &v) != OLIEVLEK_OK)
        return OLIEVLEK_ENOTFOUND;
    return olv_row_decode(&v, row);
}

static int has_conflict(olievlek_replica *r, MDB_txn *txn, const ov_id *id)
{
    MDB_val k = {OV_ID_BYTES, (void *)id->bytes}, v;
    return mdb_get(txn, r->conflicts, &k, &v) == 0;
}

/* Queues a change (update or delete) of a record: folded into the record's last edit when that
 * one never left this machine (or was rejected and is being fixed), else a new edit after it. */
static int queue_change(olievlek_replica *r, MDB_txn *txn, const ov_id *id, const olv_row *now,
                        int now_local, olv_op op, char *content)
{
    olv_edit last;
    int rc = olv_edit_last_for(r, txn, id, &last);
    if (rc == OLIEVLEK_OK && (!last.attempted || last.rejected)) {
        if (last.rejected) {
            /* A fix of a refused edit is a new request: the refused one's id is spent. */
            last.rejected = 0;
            last.attempted = 0;
            free(last.reason);
            last.reason = NULL;
            if ((rc = olv_mutation_id(last.mutation)) != OLIEVLEK_OK) {
                olv_edit_clear(&last);
                return rc;
            }
        }
        if (op == OLV_OP_DELETE && last.op == OLV_OP_CREATE) {
            /* Created and deleted before the node ever heard of it: nothing to send. */
            rc = olv_edit_del(r, txn, last.key);
            olv_edit_clear(&last);
            free(content);
            return rc ? rc : 1;
        }
        if (op == OLV_OP_DELETE)
            last.op = OLV_OP_DELETE;
        free(last.content);
        last.content = content;
        last.queued_ms = olv_now_ms();
        rc = olv_edit_put(r, txn, &last);
        olv_edit_clear(&last);
        return rc;
    }
    olv_edit edit = {.op = op, .kind = now->kind, .id = *id, .queued_ms = olv_now_ms()};
    /* After an edit already sent, this one's base is whatever version that one produces. */
    edit.base = rc == OLIEVLEK_OK ? 0 : now->version;
    (void)now_local;
    if (rc == OLIEVLEK_OK)
        olv_edit_clear(&last);
    edit.content = content;
    rc = olv_mutation_id(edit.mutation);
    if (!rc)
        rc = olv_edit_put(r, txn, &edit);
    free(edit.content);
    return rc;
}

int olievlek_edit(olievlek_replica *replica, const char *id_text, const char *json)
{
    ov_id id;
    if (olv_parse_record_id(replica, id_text, &id) != OLIEVLEK_OK)
        return OLIEVLEK_EINVAL;
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, 0, &txn);
    if (rc)
        return rc;
    olv_row now;
    int now_local;
    json_t *content = NULL;
    if (has_conflict(replica, txn, &id))
        rc = olv_fail(replica, OLIEVLEK_ECONFLICT,
                      "%s has an unresolved conflict: see `olievlek conflicts` and resolve it "
                      "first",
                      id_text);
    else if (current_row(replica, txn, &id, &now, &now_local) != OLIEVLEK_OK)
        rc = olv_fail(replica, OLIEVLEK_ENOTFOUND, "this replica holds no record %s", id_text);
    else if (now.status == OV_STATUS_DELETED)
        rc = olv_fail(replica, OLIEVLEK_EINVAL, "%s is deleted; deleted records stay deleted",
                      id_text);
    if (!rc)
        rc = parse_content(replica, now.kind, json, &content);
    if (!rc) {
        json_t *given_id = json_object_get(content, "id");
        if (given_id &&
            (!json_is_string(given_id) || strcmp(json_string_value(given_id), id_text) != 0)) {
            ov_field_errors_add(&replica->validation, "id", "hoort bij een ander record",
                                "belongs to another record");
            rc = olv_fail(replica, OLIEVLEK_ESCHEMA, "the id in the text is not %s", id_text);
        }
    }
    if (!rc) {
        json_object_set_new(content, "id", json_string(id_text));
        /* Keep the parts of the envelope the local version shows. */
        ov_envelope env = {.id = id,
                           .kind = now.kind,
                           .origin = now.origin,
                           .version = now.version,
                           .updated_ms = olv_now_ms()};
        olv_row parsed;
        ov_id ignored;
        env.created_ms = olv_row_from_json(now.json, now.json_len, &parsed, &ignored) == 0
                             ? parsed.updated_ms
                             : env.updated_ms;
        env.status = ov_record_requested_status(content, now.status);
        char *canon = encode_content(content);
        if (!canon)
            rc = olv_fail(replica, OLIEVLEK_ENOMEM, "cannot encode the record");
        if (!rc)
            rc = put_local(replica, txn, content, &env);
        if (!rc)
            rc = queue_change(replica, txn, &id, &now, now_local, OLV_OP_UPDATE, canon);
        else
            free(canon);
        if (!rc)
            rc = olv_history_add(replica, txn, "change of %s %s \"%s\" queued",
                                 ov_kind_name(now.kind), id_text,
                                 ov_record_display_title(now.kind, content));
    }
    json_decref(content);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return olv_txn_commit(replica, txn, 1);
}

int olievlek_delete(olievlek_replica *replica, const char *id_text)
{
    ov_id id;
    if (olv_parse_record_id(replica, id_text, &id) != OLIEVLEK_OK)
        return OLIEVLEK_EINVAL;
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, 0, &txn);
    if (rc)
        return rc;
    olv_row now;
    int now_local;
    if (has_conflict(replica, txn, &id))
        rc = olv_fail(replica, OLIEVLEK_ECONFLICT,
                      "%s has an unresolved conflict: resolve it first", id_text);
    else if (current_row(replica, txn, &id, &now, &now_local) != OLIEVLEK_OK)
        rc = olv_fail(replica, OLIEVLEK_ENOTFOUND, "this replica holds no record %s", id_text);
    else if (now.status == OV_STATUS_DELETED)
        rc = olv_fail(replica, OLIEVLEK_EINVAL, "%s is already deleted", id_text);
    if (!rc) {
        ov_kind kind = now.kind;
        int dropped = queue_change(replica, txn, &id, &now, now_local, OLV_OP_DELETE, NULL);
        if (dropped < 0) {
            rc = dropped;
        } else if (dropped == 1) {
            /* Never sent: it simply disappears. */
            MDB_val k = {OV_ID_BYTES, id.bytes};
            mdb_del(txn, replica->local, &k, NULL);
        } else {
            char tomb[160];
            int n = snprintf(tomb, sizeof tomb,
                             "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"deleted\"}", id_text,
                             ov_kind_name(kind));
            rc = olv_row_put(txn, replica->local, &id, kind, OV_STATUS_DELETED, now.version,
                             olv_now_ms(), &now.origin, tomb, (size_t)n);
            if (rc)
                rc = olv_fail_mdb(replica, rc, "saving the deletion");
        }
        if (!rc)
            rc = olv_history_add(replica, txn, "deletion of %s %s queued", ov_kind_name(kind),
                                 id_text);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return olv_txn_commit(replica, txn, 1);
}

/* ---- Templates --------------------------------------------------------------------------- */

static int add_template_field(void *ctx, const char *name, const char *shape, int required,
                              const char *choices)
{
    json_t *o = ctx;
    if (strcmp(name, "generated") == 0 || strcmp(name, "source") == 0)
        return 0; /* set by importers and the demo, not by people */
    json_t *value;
    if (!strcmp(shape, "ids") || !strcmp(shape, "texts") || !strcmp(shape, "choices") ||
        !strcmp(shape, "numbers"))
        value = json_array();
    else if (!strcmp(shape, "scan"))
        value = json_object();
    else if (!strcmp(shape, "boolean"))
        value = json_false();
    else
        value = json_string("");
    (void)required;
    (void)choices;
    return json_object_set_new(o, name, value);
}

int olievlek_template(olievlek_replica *replica, const char *kind_name, char **json_out)
{
    *json_out = NULL;
    ov_kind kind;
    if (!kind_name || ov_kind_parse(kind_name, strlen(kind_name), &kind) != OV_OK)
        return olv_fail(replica, OLIEVLEK_EINVAL, "unknown kind '%s'", kind_name ? kind_name : "");
    json_t *o = json_object();
    if (!o || ov_record_fields(kind, add_template_field, o) != OV_OK) {
        json_decref(o);
        return OLIEVLEK_ENOMEM;
    }
    if (kind == OV_KIND_VISIT) {
        /* Today, by the brigadier who is signed in. */
        char today[16];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(today, sizeof today, "%Y-%m-%d", &tm);
        json_object_set_new(o, "date", json_string(today));
        char *person = replica->token ? own_profile(replica) : NULL;
        if (person)
            json_object_set_new(o, "brigadier", json_string(person));
        free(person);
    }
    *json_out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return *json_out ? OLIEVLEK_OK : OLIEVLEK_ENOMEM;
}
