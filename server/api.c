/*
 * REST handlers of the node. A request is routed by its path; reads are answered at once from an
 * LMDB snapshot on the loop thread (they never wait for the writer); writes are checked here
 * (content type, JSON, schema, references, role) and then handed to the writer, and answered only
 * in the op's completion, i.e. after the batch holding them is durable.
 *
 * Records are stored in their canonical JSON form and sent as stored: a GET copies bytes from the
 * snapshot into the response without parsing them, and a list concatenates them.
 */
#include "server/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/buf.h"
#include "proto/canon.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/record.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/federation.h"
#include "server/metrics.h"
#include "server/problem.h"
#include "server/search.h"
#include "server/search_api.h"
#include "server/session_api.h"
#include "server/static_files.h"
#include "server/sync_api.h"

#define JSON_TYPE    "application/json"
#define RESPONSE_MAX (64u << 20)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void respond_buf(ov_http_request *req, int status, ov_buf *buf, const char *headers,
                        const char *route)
{
    if (buf->failed) {
        ov_problem_respond(req, 500, "the response could not be built", NULL, NULL, route);
        return;
    }
    ov_http_respond(req, status, JSON_TYPE, headers, buf->data, buf->len, route);
}

static void respond_error_code(ov_http_request *req, int rc, const char *route)
{
    if (rc == OV_EEXISTS)
        ov_problem_respond(req, 409, "a record with this id exists already", NULL, NULL, route);
    else
        ov_problem_respond_error(req, rc, route);
}

/* ---- Request parsing helpers ----------------------------------------------------------------- */

/* Parses an If-Match value ("3", W/"3" is not accepted: versions are strong validators). Returns
 * the version, 0 when absent, -1 when malformed. */
static long parse_if_match(const char *value)
{
    if (!value)
        return 0;
    if (strcmp(value, "*") == 0)
        return 0;
    const char *p = value;
    if (*p != '"')
        return -1;
    p++;
    char *end;
    long version = strtol(p, &end, 10);
    if (end == p || *end != '"' || end[1] != 0 || version < 1 || version > 0x7fffffff)
        return -1;
    return version;
}

static void format_etag(char *out, size_t size, uint32_t version)
{
    snprintf(out, size, "\"%u\"", version);
}

/* ---- Policy scope ---------------------------------------------------------------------------- */

static void scope_add_school(ov_record_scope *scope, const char *text)
{
    ov_id id;
    if (!text || scope->school_count >= OV_SCOPE_MAX_SCHOOLS ||
        ov_id_parse(text, strlen(text), &id) != OV_OK)
        return;
    scope->schools[scope->school_count++] = id;
}

/* The region a school belongs to, from its record (zero id when unknown). Parsing the school's
 * record was a tenth of the node's time in a write load, so the answer is remembered per school
 * version. */
static void school_region(ov_school_region *cache, ov_read *read, const ov_id *school,
                          ov_id *region)
{
    const char *json;
    size_t len;
    ov_record_meta meta;
    if (ov_read_record(read, school, &meta, &json, &len) != OV_OK ||
        meta.env.kind != OV_KIND_SCHOOL)
        return;
    uint64_t slot_hash = 0;
    memcpy(&slot_hash, school->bytes + sizeof school->bytes - sizeof slot_hash, sizeof slot_hash);
    ov_school_region unused, *slot = cache ? &cache[slot_hash % OV_SCHOOL_REGION_SLOTS] : &unused;
    if (cache && slot->change_seq == meta.change_seq && ov_id_compare(&slot->school, school) == 0) {
        *region = slot->region;
        return;
    }
    json_t *record = json_loadb(json, len, 0, NULL);
    const char *text = json_string_value(json_object_get(record, "region"));
    ov_id found = {0};
    if (text)
        ov_id_parse(text, strlen(text), &found);
    json_decref(record);
    if (!record)
        return;
    *region = found;
    slot->school = *school;
    slot->change_seq = meta.change_seq;
    slot->region = found;
}

/* Describes a record (stored or proposed) for the role rules: its region, schools, person and
 * author. Records without their own region inherit their (first) school's region. cache is the
 * node's school_regions on the loop thread, NULL elsewhere. */
static void build_scope(ov_school_region *cache, ov_read *read, ov_kind kind, const json_t *record,
                        const ov_id *id, const ov_id *author, ov_record_scope *scope)
{
    memset(scope, 0, sizeof *scope);
    if (author)
        scope->author = *author;
    const char *region = json_string_value(json_object_get(record, "region"));
    if (region)
        ov_id_parse(region, strlen(region), &scope->region);
    switch (kind) {
    case OV_KIND_SCHOOL:
        if (id && scope->school_count < OV_SCOPE_MAX_SCHOOLS)
            scope->schools[scope->school_count++] = *id;
        break;
    case OV_KIND_CASE: {
        size_t i;
        json_t *school;
        json_array_foreach(json_object_get(record, "schools"), i, school)
            scope_add_school(scope, json_string_value(school));
        break;
    }
    case OV_KIND_LESSON:
    case OV_KIND_REQUEST:
        scope_add_school(scope, json_string_value(json_object_get(record, "school")));
        break;
    case OV_KIND_PERSON:
        if (id)
            scope->person = *id;
        scope_add_school(scope, json_string_value(json_object_get(record, "school")));
        break;
    case OV_KIND_VISIT: {
        /* A visit note belongs to the brigadier who visited, and is about the school visited. */
        const char *brigadier = json_string_value(json_object_get(record, "brigadier"));
        if (brigadier)
            ov_id_parse(brigadier, strlen(brigadier), &scope->person);
        scope_add_school(scope, json_string_value(json_object_get(record, "school")));
        break;
    }
    default:
        break;
    }
    if (ov_id_is_zero(&scope->region) && scope->school_count > 0)
        school_region(cache, read, &scope->schools[0], &scope->region);
}

/* A case, lesson, help request or visit note written without a region belongs to its school's
 * region: it
 * is stored with it, so region filters of lists and live subscriptions find it like any other. */
static void inherit_region(ov_kind kind, json_t *content, const ov_record_scope *scope)
{
    if ((kind != OV_KIND_CASE && kind != OV_KIND_REQUEST && kind != OV_KIND_VISIT &&
         kind != OV_KIND_LESSON) ||
        json_object_get(content, "region") || ov_id_is_zero(&scope->region))
        return;
    char region[OV_ID_CHARS + 1];
    ov_id_format(&scope->region, region);
    json_object_set_new(content, "region", json_string(region));
}

/* A brigadier writes visit notes as themselves: one sent without "brigadier" is theirs. Others
 * (an admin) name the brigadier. Before validation, so a note nobody owns is refused. */
static void fill_brigadier(ov_kind kind, json_t *content, const ov_principal *who)
{
    json_t *given = json_object_get(content, "brigadier");
    if (kind != OV_KIND_VISIT || (given && !json_is_null(given)) || ov_id_is_zero(&who->person))
        return;
    char person[OV_ID_CHARS + 1];
    ov_id_format(&who->person, person);
    json_object_set_new(content, "brigadier", json_string(person));
}

/* ---- Reference checks ------------------------------------------------------------------------ */

typedef struct {
    const char *field;
    ov_kind target;
    int is_array;
} reference_field;

static const reference_field reference_fields[] = {
    {"school", OV_KIND_SCHOOL, 0},   {"schools", OV_KIND_SCHOOL, 1},
    {"region", OV_KIND_REGION, 0},   {"case", OV_KIND_CASE, 0},
    {"taken_by", OV_KIND_PERSON, 0}, {"brigadier", OV_KIND_PERSON, 0},
    {"request", OV_KIND_REQUEST, 0},
};

static void check_reference(ov_read *read, const char *field, const char *text, ov_kind target,
                            ov_field_errors *errs)
{
    ov_id id;
    ov_record_meta meta;
    if (!text || ov_id_parse(text, strlen(text), &id) != OV_OK)
        return; /* the schema check reports malformed ids */
    if (ov_read_record(read, &id, &meta, NULL, NULL) == OV_OK && meta.env.kind == target &&
        meta.env.status != OV_STATUS_DELETED)
        return;
    char nl[200], en[200];
    snprintf(nl, sizeof nl, "verwijst naar een %s die hier niet bestaat", ov_kind_name(target));
    snprintf(en, sizeof en, "refers to a %s that does not exist here", ov_kind_name(target));
    ov_field_errors_add(errs, field, nl, en);
}

/* Every id a record refers to must name an existing record of the right kind. */
static void check_references(ov_read *read, const json_t *content, ov_field_errors *errs)
{
    for (size_t f = 0; f < sizeof reference_fields / sizeof reference_fields[0]; f++) {
        const reference_field *rf = &reference_fields[f];
        json_t *value = json_object_get(content, rf->field);
        if (!value)
            continue;
        if (!rf->is_array) {
            check_reference(read, rf->field, json_string_value(value), rf->target, errs);
            continue;
        }
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            char path[64];
            snprintf(path, sizeof path, "%s[%zu]", rf->field, i);
            check_reference(read, path, json_string_value(item), rf->target, errs);
        }
    }
}

/* ---- Writes ---------------------------------------------------------------------------------- */

/* The writes an idempotency key may come with (docs/protocol.md §9.2). The number is stored
 * with the key, so that the key sent again with another request is recognised: never renumber. */
typedef enum {
    REQUEST_CREATE = 1,
    REQUEST_REPLACE = 2,
    REQUEST_DELETE = 3,
    REQUEST_PUBLISH = 4,
    REQUEST_UNPUBLISH = 5,
    REQUEST_TAKE = 6,
    REQUEST_PURGE = 7,
} write_request;

#define IDEMPOTENCY_HEADER "Idempotency-Key"

typedef struct {
    char key[OV_IDEMPOTENCY_KEY_MAX + 1]; /* empty: the request has none */
    uint8_t request;
    uint16_t status; /* the answer's status when it is applied */
} idempotency;

/* The answer given to a write the first time, given again to its retry: status, ETag and
 * Location as then, the record as it is now. */
static void respond_replay(ov_http_request *req, const ov_idempotency_answer *answer,
                           const char *json, size_t len, const char *route)
{
    char headers[256], etag[32], id[OV_ID_CHARS + 1];
    format_etag(etag, sizeof etag, answer->version);
    ov_id_format(&answer->record, id);
    int n = snprintf(headers, sizeof headers, "ETag: %s\r\nIdempotency-Replayed: true\r\n", etag);
    if (answer->status == 201)
        snprintf(headers + n, sizeof headers - (size_t)n, "Location: /api/v1/%s/%s\r\n",
                 ov_kind_collection(answer->kind), id);
    if (answer->status == 204)
        ov_http_respond(req, 204, NULL, headers, NULL, 0, route);
    else
        ov_http_respond(req, answer->status, JSON_TYPE, headers, json, len, route);
}

static void respond_key_reused(ov_http_request *req, const char *route)
{
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    ov_field_errors_add(&errs, IDEMPOTENCY_HEADER,
                        "is al gebruikt voor een ander verzoek; kies een nieuwe sleutel",
                        "was used for another request already; choose a new key");
    ov_problem_respond(req, 422, "this Idempotency-Key belongs to another request", &errs, NULL,
                       route);
}

/* Reads the request's Idempotency-Key and, when the caller used it before, answers as then (or
 * 422 when it was used for another request); 400 for a malformed key. Returns 1 when the request
 * has been answered, 0 to go on (out says whether a key came along). This is the fast path: the
 * writer checks again inside the write transaction (two retries may pass here at once). */
static int idempotency_check(ov_node *node, ov_http_request *req, const ov_principal *who,
                             write_request request, int status, ov_kind kind, const ov_id *id,
                             idempotency *out, const char *route)
{
    memset(out, 0, sizeof *out);
    out->request = (uint8_t)request;
    out->status = (uint16_t)status;
    const char *key = ov_http_request_header(req, "idempotency-key");
    if (!key)
        return 0;
    if (!ov_idempotency_key_valid(key, strlen(key))) {
        ov_problem_respond(req, 400,
                           "Idempotency-Key must be 1 to 64 characters of A-Z a-z 0-9 - _", NULL,
                           NULL, route);
        return 1;
    }
    memcpy(out->key, key, strlen(key) + 1);
    ov_read *read = NULL;
    if (ov_read_begin(node->store, &read) != OV_OK)
        return 0; /* the writer looks again */
    ov_idempotency_answer answer;
    int rc = ov_read_idempotency(read, &who->account, key, &answer);
    const char *json = NULL;
    size_t len = 0;
    if (rc == OV_OK && ov_idempotency_matches(&answer, out->request, kind, id))
        rc = ov_read_record(read, &answer.record, NULL, &json, &len) == OV_OK ? OV_OK : OV_ESTORE;
    else if (rc == OV_OK)
        rc = OV_EPRECONDITION;
    if (rc == OV_OK)
        respond_replay(req, &answer, json, len, route);
    else if (rc == OV_EPRECONDITION)
        respond_key_reused(req, route);
    ov_read_end(read);
    return rc == OV_OK || rc == OV_EPRECONDITION;
}

typedef struct {
    ov_node *node;
    ov_http_request *req;
    const char *route;
    int created; /* answer 201 with Location */
    int no_body; /* answer 204 */
    ov_principal who;
} pending_write;

/* A stale If-Match: 412 with the record as GET gives it now in "current", so a client that edited
 * offline can show both sides (docs/protocol.md §9.2). */
static void respond_conflict(pending_write *pending, const ov_write_op *op)
{
    char headers[64], etag[32], detail[160];
    format_etag(etag, sizeof etag, op->meta.env.version);
    snprintf(detail, sizeof detail,
             "the record changed meanwhile: it is at version %u; read it again and retry",
             op->meta.env.version);
    snprintf(headers, sizeof headers, "ETag: %s\r\n", etag);
    json_t *current = NULL;
    ov_read *read = NULL;
    if (ov_read_begin(pending->node->store, &read) == OV_OK) {
        ov_record_meta meta;
        const char *json;
        size_t len;
        if (ov_read_record(read, &op->meta.env.id, &meta, &json, &len) == OV_OK &&
            ov_api_can_see(pending->node, read, &pending->who, &meta, json, len))
            current = json_loadb(json, len, 0, NULL);
        ov_read_end(read);
    }
    ov_problem_respond_with(pending->req, 412, detail, NULL, headers, "current", current,
                            pending->route);
    json_decref(current);
}

static void on_record_written(ov_write_op *op)
{
    pending_write *pending = op->user;
    ov_http_request *req = pending->req;
    char headers[256];
    char etag[32];
    if (op->result == OV_OK && op->replayed) {
        respond_replay(req, &op->answer, op->canon, op->canon_len, pending->route);
        free(pending);
        ov_write_op_free(op);
        return;
    }
    switch (op->result) {
    case OV_OK: {
        format_etag(etag, sizeof etag, op->meta.env.version);
        char id[OV_ID_CHARS + 1];
        ov_id_format(&op->meta.env.id, id);
        if (pending->no_body) {
            snprintf(headers, sizeof headers, "ETag: %s\r\n", etag);
            ov_http_respond(req, 204, NULL, headers, NULL, 0, pending->route);
        } else if (pending->created) {
            snprintf(headers, sizeof headers, "ETag: %s\r\nLocation: /api/v1/%s/%s\r\n", etag,
                     ov_kind_collection(op->meta.env.kind), id);
            ov_http_respond(req, 201, JSON_TYPE, headers, op->canon, op->canon_len, pending->route);
        } else {
            snprintf(headers, sizeof headers, "ETag: %s\r\n", etag);
            ov_http_respond(req, 200, JSON_TYPE, headers, op->canon, op->canon_len, pending->route);
        }
        break;
    }
    case OV_ECONFLICT:
        respond_conflict(pending, op);
        break;
    case OV_EPRECONDITION:
        respond_key_reused(req, pending->route);
        break;
    default:
        respond_error_code(req, op->result, pending->route);
        break;
    }
    free(pending);
    ov_write_op_free(op);
}

/* A node that restores its own log from its peers writes no record: a new entry now would fork
 * the history its peers hold. */
static void respond_recovering(ov_http_request *req, const char *route)
{
    ov_problem_respond(req, 503,
                       "this node is restoring its own log from its peers and accepts no writes "
                       "until it is restored (docs/operations.md, \"Recovering a node that lost "
                       "its data\")",
                       NULL, "Retry-After: 10\r\n", route);
}

/* Hands op to the writer; the answer follows in on_record_written. Takes ownership of op. */
static void submit_write(ov_node *node, ov_http_request *req, const ov_principal *who,
                         const idempotency *idem, ov_write_op *op, const char *route, int created,
                         int no_body)
{
    pending_write *pending = calloc(1, sizeof *pending);
    if (!pending) {
        ov_write_op_free(op);
        respond_error_code(req, OV_ENOMEM, route);
        return;
    }
    *pending = (pending_write){node, req, route, created, no_body, *who};
    memcpy(op->idempotency_key, idem->key, sizeof op->idempotency_key);
    op->idempotency_request = idem->request;
    op->idempotency_status = idem->status;
    op->user = pending;
    op->on_done = on_record_written;
    if (ov_store_recovering(node->store)) {
        free(pending);
        ov_write_op_free(op);
        respond_recovering(req, route);
        return;
    }
    int rc = node->shutting_down ? OV_ESHUTDOWN : ov_writer_submit(node->writer, op);
    if (rc != OV_OK) {
        free(pending);
        ov_write_op_free(op);
        respond_error_code(req, rc, route);
    }
}

/* Status is moderation: a new record of someone who may publish in its region starts published
 * (unless they ask for a draft); everyone else's starts as a draft for review. A change keeps the
 * record's status unless it asks for another one, and only those who may publish may ask. */
static ov_status choose_status(const ov_principal *who, const json_t *content, ov_kind kind,
                               const ov_record_scope *scope, ov_status current, int is_new)
{
    if (json_object_get(content, "status"))
        return ov_record_requested_status(content, OV_STATUS_DRAFT);
    if (!is_new)
        return current;
    if (ov_auth_can_write(who, OV_AUTH_PUBLISH, kind, scope, OV_STATUS_PUBLISHED) == OV_OK)
        return OV_STATUS_PUBLISHED;
    return OV_STATUS_DRAFT;
}

/* The status the role rules must allow: keeping a record's status asks for nothing, so it is
 * checked as a draft write; moving it (or creating it) published needs the right to publish. */
static ov_status status_to_authorise(ov_status status, ov_status current, int is_new)
{
    return !is_new && status == current ? OV_STATUS_DRAFT : status;
}

/* A client that creates records offline may choose their ids (docs/protocol.md §9.2), as long as
 * the id's time part is near the node's clock: ids sort by creation time, and one far off would
 * sit among records made at another time. The schema check has parsed it already. */
#define CHOSEN_ID_SKEW_MS (24 * 3600 * 1000LL)

static void check_chosen_id(const ov_id *id, ov_field_errors *errs)
{
    int64_t skew = (int64_t)ov_id_time_ms(id) - now_ms();
    if (skew > CHOSEN_ID_SKEW_MS || skew < -CHOSEN_ID_SKEW_MS)
        ov_field_errors_add(errs, "id",
                            "de tijd in dit id ligt meer dan een dag van de klok van de node af",
                            "the time in this id is more than a day off the node's clock");
}

static void handle_create(ov_node *node, ov_http_request *req, ov_kind kind,
                          const ov_principal *who, const char *route)
{
    if (who->role == OV_ROLE_ANONYMOUS) {
        respond_error_code(req, OV_EAUTH, route);
        return;
    }
    json_t *content = ov_problem_read_json_object(req, route);
    if (!content)
        return;
    ov_id chosen = {0};
    const char *given_id = json_string_value(json_object_get(content, "id"));
    if (given_id)
        ov_id_parse(given_id, strlen(given_id), &chosen);
    idempotency idem;
    if (idempotency_check(node, req, who, REQUEST_CREATE, 201, kind, &chosen, &idem, route)) {
        json_decref(content);
        return;
    }
    fill_brigadier(kind, content, who);
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    ov_record_validate(kind, content, &errs);
    if (given_id && errs.count == 0)
        check_chosen_id(&chosen, &errs);
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        json_decref(content);
        respond_error_code(req, rc, route);
        return;
    }
    if (given_id && errs.count == 0 && ov_read_record(read, &chosen, NULL, NULL, NULL) == OV_OK) {
        ov_read_end(read);
        json_decref(content);
        respond_error_code(req, OV_EEXISTS, route);
        return;
    }
    if (errs.count == 0)
        check_references(read, content, &errs);
    if (errs.count > 0) {
        ov_read_end(read);
        json_decref(content);
        ov_problem_respond(req, 422, "the record does not meet the schema", &errs, NULL, route);
        return;
    }
    ov_record_scope scope;
    build_scope(node->school_regions, read, kind, content, NULL, &who->account, &scope);
    inherit_region(kind, content, &scope);
    ov_read_end(read);
    ov_status status = choose_status(who, content, kind, &scope, OV_STATUS_DRAFT, 1);
    rc = ov_auth_can_write(who, OV_AUTH_CREATE, kind, &scope, status);
    if (rc != OV_OK) {
        json_decref(content);
        respond_error_code(req, rc, route);
        return;
    }
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
    if (!op) {
        json_decref(content);
        respond_error_code(req, OV_ENOMEM, route);
        return;
    }
    op->kind = kind;
    op->id = chosen;
    op->content = content;
    op->author = who->account;
    op->status = status;
    submit_write(node, req, who, &idem, op, route, 1, 0);
}

/* Loads a stored record for a change: answers 404/410 itself and returns NULL. */
static json_t *load_for_change(ov_read *read, ov_http_request *req, ov_kind kind, const ov_id *id,
                               ov_record_meta *meta, const char *route)
{
    const char *json;
    size_t len;
    int rc = ov_read_record(read, id, meta, &json, &len);
    if (rc == OV_OK && meta->env.kind != kind)
        rc = OV_ENOTFOUND;
    if (rc == OV_OK && meta->env.status == OV_STATUS_DELETED)
        rc = OV_EGONE;
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return NULL;
    }
    json_t *record = json_loadb(json, len, 0, NULL);
    if (!record)
        respond_error_code(req, OV_ESTORE, route);
    return record;
}

static void handle_replace(ov_node *node, ov_http_request *req, ov_kind kind, const ov_id *id,
                           const ov_principal *who, const char *route)
{
    if (who->role == OV_ROLE_ANONYMOUS) {
        respond_error_code(req, OV_EAUTH, route);
        return;
    }
    const char *if_match = ov_http_request_header(req, "if-match");
    long version = parse_if_match(if_match);
    if (!if_match || strcmp(if_match, "*") == 0) {
        ov_problem_respond(req, 428,
                           "send If-Match with the ETag you read, so no one's change is "
                           "overwritten unseen",
                           NULL, NULL, route);
        return;
    }
    if (version < 0) {
        ov_problem_respond(req, 400, "If-Match must be an ETag of this API, e.g. \"3\"", NULL, NULL,
                           route);
        return;
    }
    idempotency idem;
    if (idempotency_check(node, req, who, REQUEST_REPLACE, 200, kind, id, &idem, route))
        return;
    json_t *content = ov_problem_read_json_object(req, route);
    if (!content)
        return;
    fill_brigadier(kind, content, who);
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    ov_record_validate(kind, content, &errs);
    const char *given_id = json_string_value(json_object_get(content, "id"));
    char id_text[OV_ID_CHARS + 1];
    ov_id_format(id, id_text);
    if (given_id && strcmp(given_id, id_text) != 0)
        ov_field_errors_add(&errs, "id", "hoort bij een ander record dan het adres",
                            "belongs to another record than the URL");
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        json_decref(content);
        respond_error_code(req, rc, route);
        return;
    }
    ov_record_meta meta;
    json_t *current = load_for_change(read, req, kind, id, &meta, route);
    if (!current) {
        ov_read_end(read);
        json_decref(content);
        return;
    }
    if (errs.count == 0)
        check_references(read, content, &errs);
    if (errs.count > 0) {
        ov_read_end(read);
        json_decref(current);
        json_decref(content);
        ov_problem_respond(req, 422, "the record does not meet the schema", &errs, NULL, route);
        return;
    }
    /* Both the record as it is and as it would become must be within the writer's reach. */
    ov_record_scope before, after;
    build_scope(node->school_regions, read, kind, current, id, &meta.env.author, &before);
    build_scope(node->school_regions, read, kind, content, id, &meta.env.author, &after);
    inherit_region(kind, content, &after);
    ov_read_end(read);
    json_decref(current);
    ov_status status = choose_status(who, content, kind, &before, meta.env.status, 0);
    ov_status asked = status_to_authorise(status, meta.env.status, 0);
    rc = ov_auth_can_write(who, OV_AUTH_REPLACE, kind, &before, asked);
    if (rc == OV_OK)
        rc = ov_auth_can_write(who, OV_AUTH_REPLACE, kind, &after, asked);
    if (rc != OV_OK) {
        json_decref(content);
        respond_error_code(req, rc, route);
        return;
    }
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_REPLACE);
    if (!op) {
        json_decref(content);
        respond_error_code(req, OV_ENOMEM, route);
        return;
    }
    op->kind = kind;
    op->id = *id;
    op->if_version = (uint32_t)version;
    op->content = content;
    op->author = who->account;
    op->status = status;
    submit_write(node, req, who, &idem, op, route, 0, 0);
}

/* DELETE, publish/unpublish and take-up: changes decided by the stored record alone. */
static void handle_change(ov_node *node, ov_http_request *req, ov_kind kind, const ov_id *id,
                          const ov_principal *who, ov_auth_action action, const char *route)
{
    if (who->role == OV_ROLE_ANONYMOUS) {
        respond_error_code(req, OV_EAUTH, route);
        return;
    }
    const char *if_match = ov_http_request_header(req, "if-match");
    long version = parse_if_match(if_match);
    if (version < 0) {
        ov_problem_respond(req, 400, "If-Match must be an ETag of this API, e.g. \"3\"", NULL, NULL,
                           route);
        return;
    }
    write_request request = action == OV_AUTH_DELETE     ? REQUEST_DELETE
                            : action == OV_AUTH_TAKE     ? REQUEST_TAKE
                            : strstr(route, "unpublish") ? REQUEST_UNPUBLISH
                                                         : REQUEST_PUBLISH;
    idempotency idem;
    if (idempotency_check(node, req, who, request, action == OV_AUTH_DELETE ? 204 : 200, kind, id,
                          &idem, route))
        return;
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    ov_record_meta meta;
    json_t *current = load_for_change(read, req, kind, id, &meta, route);
    if (!current) {
        ov_read_end(read);
        return;
    }
    ov_record_scope scope;
    build_scope(node->school_regions, read, kind, current, id, &meta.env.author, &scope);
    ov_read_end(read);

    ov_write_op *op = NULL;
    ov_status status = meta.env.status;
    if (action == OV_AUTH_DELETE) {
        op = ov_write_op_new(OV_WRITE_RECORD_DELETE);
    } else if (action == OV_AUTH_PUBLISH) {
        status = strstr(route, "unpublish") ? OV_STATUS_DRAFT : OV_STATUS_PUBLISHED;
        op = ov_write_op_new(OV_WRITE_RECORD_STATUS);
    } else { /* take: the brigadier's person record becomes the request's taker */
        const char *state = json_string_value(json_object_get(current, "state"));
        if (kind != OV_KIND_REQUEST || meta.env.status != OV_STATUS_PUBLISHED ||
            (state && strcmp(state, "open") != 0)) {
            json_decref(current);
            ov_problem_respond(req, 409, "only an open, published help request can be taken up",
                               NULL, NULL, route);
            return;
        }
        if (ov_id_is_zero(&who->person)) {
            json_decref(current);
            ov_problem_respond(req, 403, "your account has no brigadier profile", NULL, NULL,
                               route);
            return;
        }
        char person[OV_ID_CHARS + 1];
        ov_id_format(&who->person, person);
        json_object_set_new(current, "state", json_string("opgepakt"));
        json_object_set_new(current, "taken_by", json_string(person));
        op = ov_write_op_new(OV_WRITE_RECORD_REPLACE);
        if (op) {
            op->content = current;
            current = NULL;
        }
    }
    json_decref(current);
    rc = ov_auth_can_write(
        who, action, kind, &scope,
        action == OV_AUTH_PUBLISH ? status : status_to_authorise(status, meta.env.status, 0));
    if (rc != OV_OK || !op) {
        ov_write_op_free(op);
        respond_error_code(req, op ? rc : OV_ENOMEM, route);
        return;
    }
    op->kind = kind;
    op->id = *id;
    op->if_version = (uint32_t)version;
    op->author = who->account;
    op->status = status;
    submit_write(node, req, who, &idem, op, route, 0, action == OV_AUTH_DELETE);
}

/* Erasure of a record's content on every node (AVG/GDPR; docs/protocol.md §4): admins only,
 * since it cannot be undone. Answered 204 once the purge entry is durable. */
static void handle_purge(ov_node *node, ov_http_request *req, ov_kind kind, const ov_id *id,
                         const ov_principal *who, const char *route)
{
    if (who->role == OV_ROLE_ANONYMOUS) {
        respond_error_code(req, OV_EAUTH, route);
        return;
    }
    if (who->role != OV_ROLE_ADMIN) {
        ov_problem_respond(req, 403,
                           "only an administrator of the record's origin node may erase it", NULL,
                           NULL, route);
        return;
    }
    idempotency idem;
    if (idempotency_check(node, req, who, REQUEST_PURGE, 204, kind, id, &idem, route))
        return;
    ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_PURGE);
    if (!op) {
        respond_error_code(req, OV_ENOMEM, route);
        return;
    }
    op->kind = kind;
    op->id = *id;
    op->author = who->account;
    submit_write(node, req, who, &idem, op, route, 0, 1);
}

/* ---- Reads ----------------------------------------------------------------------------------- */

/* May who see a record in this state? Drafts only for those the role rules allow; others get 404
 * rather than 403, so drafts do not leak their existence. */
int ov_api_hidden_change(char *out, size_t size, const ov_record_meta *meta)
{
    char id[OV_ID_CHARS + 1];
    ov_id_format(&meta->env.id, id);
    return snprintf(out, size, "{\"id\":\"%s\",\"kind\":\"%s\",\"hidden\":true}", id,
                    ov_kind_name(meta->env.kind));
}

static int can_see(ov_school_region *cache, ov_read *read, const ov_principal *who,
                   const ov_record_meta *meta, const char *json, size_t len)
{
    if (meta->env.status == OV_STATUS_PUBLISHED || meta->env.status == OV_STATUS_DELETED)
        return 1;
    if (who->role == OV_ROLE_ANONYMOUS)
        return 0;
    json_t *record = json_loadb(json, len, 0, NULL);
    ov_record_scope scope;
    build_scope(cache, read, meta->env.kind, record, &meta->env.id, &meta->env.author, &scope);
    json_decref(record);
    return ov_auth_can_read(who, meta->env.kind, meta->env.status, &scope) == OV_OK;
}

int ov_api_can_see(ov_node *node, ov_read *read, const ov_principal *who,
                   const ov_record_meta *meta, const char *json, size_t len)
{
    return can_see(node->school_regions, read, who, meta, json, len);
}

int ov_api_can_see_anywhere(ov_read *read, const ov_principal *who, const ov_record_meta *meta,
                            const char *json, size_t len)
{
    return can_see(NULL, read, who, meta, json, len);
}

static void handle_get(ov_node *node, ov_http_request *req, ov_kind kind, const ov_id *id,
                       const ov_principal *who, const char *route)
{
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    ov_record_meta meta;
    const char *json;
    size_t len;
    rc = ov_read_record(read, id, &meta, &json, &len);
    if (rc == OV_OK &&
        (meta.env.kind != kind || !ov_api_can_see(node, read, who, &meta, json, len)))
        rc = OV_ENOTFOUND;
    if (rc == OV_OK && meta.env.status == OV_STATUS_DELETED)
        rc = OV_EGONE;
    if (rc != OV_OK) {
        ov_read_end(read);
        respond_error_code(req, rc, route);
        return;
    }
    char etag[32], headers[96];
    format_etag(etag, sizeof etag, meta.env.version);
    snprintf(headers, sizeof headers, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const char *if_none_match = ov_http_request_header(req, "if-none-match");
    if (if_none_match && strcmp(if_none_match, etag) == 0)
        ov_http_respond(req, 304, NULL, headers, NULL, 0, route);
    else
        ov_http_respond(req, 200, JSON_TYPE, headers, json, len, route);
    ov_read_end(read);
}

typedef struct {
    ov_node *node;
    ov_read *read;
    const ov_principal *who;
    ov_buf *out;
    size_t count;
} list_context;

static int on_list_item(void *ctx, const ov_record_meta *meta, const char *json, size_t len)
{
    list_context *list = ctx;
    if (!ov_api_can_see(list->node, list->read, list->who, meta, json, len))
        return 1;
    if (list->count++ > 0)
        ov_buf_append(list->out, ",", 1);
    ov_buf_append(list->out, json, len);
    return list->out->failed ? list->out->failed : 0;
}

/* The list filters: query parameter = facet. Repeating a parameter (or separating values with
 * commas) ORs values; different parameters AND. */
static int parse_list_query(ov_http_request *req, ov_kind kind, const ov_principal *who,
                            ov_list_query *query, char *storage, size_t storage_size, char *detail,
                            size_t detail_size)
{
    memset(query, 0, sizeof *query);
    query->kind = kind;
    query->limit = OV_API_LIST_DEFAULT;
    const char *limit = ov_http_request_query(req, "limit");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (*end || end == limit || n < 1 || n > OV_API_LIST_MAX) {
            snprintf(detail, detail_size, "limit must be a whole number from 1 to %d",
                     OV_API_LIST_MAX);
            return OV_EINVAL;
        }
        query->limit = (size_t)n;
    }
    const char *cursor = ov_http_request_query(req, "cursor");
    if (cursor && ov_id_parse(cursor, strlen(cursor), &query->before) != OV_OK) {
        snprintf(detail, detail_size, "cursor must be the 'next' value of a previous page");
        return OV_EINVAL;
    }
    const char *statuses[OV_STATUS_COUNT];
    int status_count = ov_http_request_query_all(req, "status", statuses, OV_STATUS_COUNT);
    for (int i = 0; i < status_count; i++) {
        ov_status status;
        if (ov_status_parse(statuses[i], strlen(statuses[i]), &status) != OV_OK ||
            status == OV_STATUS_DELETED) {
            snprintf(detail, detail_size, "status must be draft or published");
            return OV_EINVAL;
        }
        if (status == OV_STATUS_DRAFT && who->role == OV_ROLE_ANONYMOUS)
            return OV_EAUTH;
        query->status_mask |= 1u << status;
    }
    if (!query->status_mask)
        query->status_mask = 1u << OV_STATUS_PUBLISHED;

    size_t used = 0;
    for (size_t f = 0; ov_record_facet_names[f]; f++) {
        const char *values[OV_LIST_MAX_VALUES];
        int n =
            ov_http_request_query_all(req, ov_record_facet_names[f], values, OV_LIST_MAX_VALUES);
        if (n == 0)
            continue;
        if (query->filter_count >= OV_LIST_MAX_FILTERS) {
            snprintf(detail, detail_size, "at most %d different filters at once",
                     OV_LIST_MAX_FILTERS);
            return OV_EINVAL;
        }
        ov_list_filter *filter = &query->filters[query->filter_count++];
        filter->facet = ov_record_facet_names[f];
        for (int v = 0; v < n; v++) {
            /* Split "a,b" into values; copies live in storage until the list is done. */
            const char *p = values[v];
            while (*p) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len > 0) {
                    if (filter->value_count >= OV_LIST_MAX_VALUES ||
                        len > OV_RECORD_FACET_VALUE_MAX || used + len + 1 > storage_size) {
                        snprintf(detail, detail_size, "too many or too long values for %s",
                                 ov_record_facet_names[f]);
                        return OV_EINVAL;
                    }
                    char *copy = storage + used;
                    memcpy(copy, p, len);
                    copy[len] = 0;
                    /* Themes are indexed lower-cased. */
                    if (strcmp(ov_record_facet_names[f], "theme") == 0)
                        for (char *c = copy; *c; c++)
                            if (*c >= 'A' && *c <= 'Z')
                                *c = (char)(*c - 'A' + 'a');
                    used += len + 1;
                    filter->values[filter->value_count++] = copy;
                }
                p += len + (comma ? 1 : 0);
            }
        }
        if (filter->value_count == 0)
            query->filter_count--;
    }
    return OV_OK;
}

static void handle_list(ov_node *node, ov_http_request *req, ov_kind kind, const ov_principal *who,
                        const char *route)
{
    ov_list_query query;
    char storage[4096];
    char detail[200];
    int rc =
        parse_list_query(req, kind, who, &query, storage, sizeof storage, detail, sizeof detail);
    if (rc == OV_EAUTH) {
        respond_error_code(req, rc, route);
        return;
    }
    if (rc != OV_OK) {
        ov_problem_respond(req, 400, detail, NULL, NULL, route);
        return;
    }
    ov_read *read = NULL;
    rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    ov_buf out;
    ov_buf_init(&out, RESPONSE_MAX);
    ov_buf_append_str(&out, "{\"items\":[");
    list_context list = {node, read, who, &out, 0};
    ov_id next;
    memset(&next, 0, sizeof next);
    rc = ov_read_list(read, &query, on_list_item, &list, &next);
    ov_read_end(read);
    if (rc != OV_OK) {
        ov_buf_free(&out);
        respond_error_code(req, rc, route);
        return;
    }
    ov_buf_append_str(&out, "],\"next\":");
    if (ov_id_is_zero(&next)) {
        ov_buf_append_str(&out, "null");
    } else {
        char cursor[OV_ID_CHARS + 1];
        ov_id_format(&next, cursor);
        ov_buf_printf(&out, "\"%s\"", cursor);
    }
    ov_buf_printf(&out, ",\"count\":%zu}", list.count);
    respond_buf(req, 200, &out, "Cache-Control: no-cache\r\n", route);
    ov_buf_free(&out);
}

typedef struct {
    ov_node *node;
    ov_read *read;
    const ov_principal *who;
    ov_buf *out;
    size_t count;
} changes_context;

/* A change of a record the caller may not see still advances the feed, but shows only what a
 * deletion would: the envelope, so a replica learns nothing of a draft's content. */
static int on_change(void *ctx, uint64_t change_seq, const ov_record_meta *meta, const char *json,
                     size_t len)
{
    changes_context *changes = ctx;
    if (changes->count++ > 0)
        ov_buf_append(changes->out, ",", 1);
    ov_buf_printf(changes->out, "{\"seq\":%llu,\"record\":", (unsigned long long)change_seq);
    if (ov_api_can_see(changes->node, changes->read, changes->who, meta, json, len)) {
        ov_buf_append(changes->out, json, len);
    } else {
        char hidden[128];
        int n = ov_api_hidden_change(hidden, sizeof hidden, meta);
        ov_buf_append(changes->out, hidden, (size_t)n);
    }
    ov_buf_append(changes->out, "}", 1);
    return changes->out->failed;
}

static void handle_changes(ov_node *node, ov_http_request *req, const ov_principal *who,
                           const char *route)
{
    unsigned long long since = 0;
    long limit = OV_API_CHANGES_DEFAULT;
    const char *since_text = ov_http_request_query(req, "since");
    const char *limit_text = ov_http_request_query(req, "limit");
    char *end;
    if (since_text) {
        since = strtoull(since_text, &end, 10);
        if (*end || end == since_text || since_text[0] == '-') {
            ov_problem_respond(req, 400, "since must be a change position (a whole number ≥ 0)",
                               NULL, NULL, route);
            return;
        }
    }
    if (limit_text) {
        limit = strtol(limit_text, &end, 10);
        if (*end || end == limit_text || limit < 1 || limit > OV_API_CHANGES_MAX) {
            char detail[100];
            snprintf(detail, sizeof detail, "limit must be a whole number from 1 to %d",
                     OV_API_CHANGES_MAX);
            ov_problem_respond(req, 400, detail, NULL, NULL, route);
            return;
        }
    }
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    ov_buf out;
    ov_buf_init(&out, RESPONSE_MAX);
    ov_buf_append_str(&out, "{\"changes\":[");
    changes_context changes = {node, read, who, &out, 0};
    uint64_t last = since;
    rc = ov_read_changes(read, since, (size_t)limit, on_change, &changes, &last);
    uint64_t newest = ov_read_last_change(read);
    ov_read_end(read);
    if (rc != OV_OK) {
        ov_buf_free(&out);
        respond_error_code(req, rc, route);
        return;
    }
    ov_buf_printf(&out, "],\"last\":%llu,\"newest\":%llu,\"more\":%s}", (unsigned long long)last,
                  (unsigned long long)newest, last < newest ? "true" : "false");
    respond_buf(req, 200, &out, "Cache-Control: no-store\r\n", route);
    ov_buf_free(&out);
}

typedef struct {
    ov_buf *out;
    int count;
} origins_ctx;

static int on_origin(void *ctx, const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES])
{
    (void)pub;
    origins_ctx *o = ctx;
    char id[OV_ID_CHARS + 1], hash[2 * OV_HASH_BYTES + 1], time[32];
    ov_id_format(&head->origin, id);
    ov_hex_encode(head->hash, sizeof head->hash, hash);
    ov_time_format(head->time_ms, time);
    ov_buf_printf(o->out, "%s{\"origin\":\"%s\",\"seq\":%llu,\"hash\":\"%s\",\"time\":\"%s\"}",
                  o->count++ ? "," : "", id, (unsigned long long)head->seq, hash, time);
    return o->out->failed;
}

typedef struct {
    ov_buf *out;
    size_t count;
} keys_json;

static int on_key_json(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES])
{
    keys_json *k = ctx;
    char hex[2 * OV_PUBKEY_BYTES + 1];
    ov_hex_encode(pub, OV_PUBKEY_BYTES, hex);
    ov_buf_printf(k->out, "%s{\"seq\":%llu,\"key\":\"%s\"}", k->count++ ? "," : "",
                  (unsigned long long)seq, hex);
    return k->out->failed;
}

static int on_genesis_hex(void *ctx, uint64_t seq, const uint8_t pub[OV_PUBKEY_BYTES])
{
    if (seq == 0)
        ov_hex_encode(pub, OV_PUBKEY_BYTES, ctx);
    return -1; /* row 0 comes first */
}

static void handle_node_info(ov_node *node, ov_http_request *req, const char *route)
{
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    char id[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(node->store), id);
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_keypair_public(node->key, pub);
    char pub_hex[2 * OV_PUBKEY_BYTES + 1];
    ov_hex_encode(pub, sizeof pub, pub_hex);
    ov_store_stats stats;
    memset(&stats, 0, sizeof stats);
    ov_read_stats(read, &stats);
    ov_buf out;
    ov_buf_init(&out, 64 * 1024);
    ov_buf_printf(&out, "{\"id\":\"%s\",\"name\":", id);
    ov_buf_append_json_string(&out, node->config->node_name, strlen(node->config->node_name));
    ov_buf_printf(&out,
                  ",\"public_key\":\"%s\",\"records\":%llu,\"log_entries\":%llu,"
                  "\"last_change\":%llu",
                  pub_hex, (unsigned long long)stats.records, (unsigned long long)stats.log_entries,
                  (unsigned long long)stats.changes);
    /* The key chain: the genesis key (it hashes to the id) and each key a key entry introduced
     * (at that entry's seq); the last one is public_key. */
    char genesis_hex[2 * OV_PUBKEY_BYTES + 1] = "";
    ov_read_keys(read, ov_store_node_id(node->store), on_genesis_hex, genesis_hex);
    ov_buf_printf(&out, ",\"genesis_key\":\"%s\",\"keys\":[", genesis_hex);
    keys_json keys = {&out, 0};
    ov_read_keys(read, ov_store_node_id(node->store), on_key_json, &keys);
    ov_buf_printf(&out, "],\"recovering\":%s", ov_store_recovering(node->store) ? "true" : "false");
    ov_log_head head;
    if (ov_read_head(read, ov_store_node_id(node->store), &head, pub) == OV_OK) {
        char hash_hex[2 * OV_HASH_BYTES + 1], sig_hex[2 * OV_SIGNATURE_BYTES + 1], time[32];
        ov_hex_encode(head.hash, sizeof head.hash, hash_hex);
        ov_hex_encode(head.signature, sizeof head.signature, sig_hex);
        ov_time_format(head.time_ms, time);
        ov_buf_printf(&out,
                      ",\"head\":{\"seq\":%llu,\"hash\":\"%s\",\"time\":\"%s\","
                      "\"signature\":\"%s\"}",
                      (unsigned long long)head.seq, hash_hex, time, sig_hex);
    } else {
        ov_buf_append_str(&out, ",\"head\":null");
    }
    /* The logs this node holds (its own and its peers'), and its peers. */
    ov_buf_append_str(&out, ",\"origins\":[");
    origins_ctx origins = {&out, 0};
    ov_read_heads(read, on_origin, &origins);
    ov_buf_printf(&out,
                  "],\"forks\":%llu,\"peers\":", (unsigned long long)ov_read_fork_count(read));
    json_t *peers = ov_federation_peers_json(node->federation);
    char *peers_text = peers ? json_dumps(peers, JSON_COMPACT) : NULL;
    ov_buf_append_str(&out, peers_text ? peers_text : "[]");
    free(peers_text);
    json_decref(peers);
    ov_buf_append_str(&out, "}");
    ov_read_end(read);
    respond_buf(req, 200, &out, "Cache-Control: no-cache\r\n", route);
    ov_buf_free(&out);
}

typedef struct {
    ov_buf *out;
    size_t count;
    ov_read *read;
} log_context;

static int on_log_entry(void *ctx, const ov_log_entry *entry, const char *content, size_t len)
{
    log_context *log = ctx;
    uint8_t bytes[OV_LOG_ENTRY_BYTES];
    char hex[2 * OV_LOG_ENTRY_BYTES + 1];
    ov_log_entry_encode(entry, bytes);
    ov_hex_encode(bytes, sizeof bytes, hex);
    ov_buf_printf(log->out,
                  "%s{\"seq\":%llu,\"entry\":\"%s\",\"content\":", log->count++ ? "," : "",
                  (unsigned long long)entry->seq, hex);
    /* The log is public: the store gives out only public content; drafts travel as hashes. */
    if (content && entry->op != OV_OP_KEY)
        ov_buf_append_json_string(log->out, content, len);
    else
        ov_buf_append_str(log->out, "null");
    ov_log_head head;
    if (entry->op == OV_OP_KEY && content && len == OV_PUBKEY_BYTES &&
        ov_read_checkpoint_at(log->read, &entry->origin, entry->seq, &head) == OV_OK) {
        /* A key entry: the key it introduces, and the head at it, signed by the key before. */
        char key_hex[2 * OV_PUBKEY_BYTES + 1], hash_hex[2 * OV_HASH_BYTES + 1],
            sig_hex[2 * OV_SIGNATURE_BYTES + 1];
        ov_hex_encode((const uint8_t *)content, OV_PUBKEY_BYTES, key_hex);
        ov_hex_encode(head.hash, sizeof head.hash, hash_hex);
        ov_hex_encode(head.signature, sizeof head.signature, sig_hex);
        ov_buf_printf(log->out,
                      ",\"key\":\"%s\",\"head\":{\"seq\":%llu,\"hash\":\"%s\",\"time_ms\":%lld,"
                      "\"signature\":\"%s\"}",
                      key_hex, (unsigned long long)head.seq, hash_hex, (long long)head.time_ms,
                      sig_hex);
    }
    ov_buf_append_str(log->out, "}");
    return log->out->failed;
}

/* An origin's log: the signed head, the key that signed it, and entries from a position, each
 * with the canonical bytes of its record while they are the current version. Everything a reader
 * needs to check the chain and the signature itself (docs/protocol.md). */
static void handle_log(ov_node *node, ov_http_request *req, const char *route)
{
    ov_id origin = *ov_store_node_id(node->store);
    const char *origin_text = ov_http_request_query(req, "origin");
    const char *from_text = ov_http_request_query(req, "from");
    const char *limit_text = ov_http_request_query(req, "limit");
    unsigned long long from = 1;
    long limit = OV_API_CHANGES_DEFAULT;
    char *end;
    if (origin_text && ov_id_parse(origin_text, strlen(origin_text), &origin) != OV_OK) {
        ov_problem_respond(req, 400, "origin must be a node id", NULL, NULL, route);
        return;
    }
    if (from_text) {
        from = strtoull(from_text, &end, 10);
        if (*end || end == from_text || from_text[0] == '-' || from < 1) {
            ov_problem_respond(req, 400, "from must be a log position (a whole number >= 1)", NULL,
                               NULL, route);
            return;
        }
    }
    if (limit_text) {
        limit = strtol(limit_text, &end, 10);
        if (*end || end == limit_text || limit < 1 || limit > OV_API_CHANGES_MAX) {
            ov_problem_respond(req, 400, "limit must be a whole number from 1 to 1000", NULL, NULL,
                               route);
            return;
        }
    }
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        respond_error_code(req, rc, route);
        return;
    }
    ov_log_head head;
    uint8_t pub[OV_PUBKEY_BYTES];
    rc = ov_read_head(read, &origin, &head, pub);
    if (rc != OV_OK) {
        ov_read_end(read);
        ov_problem_respond(req, 404, "this node holds no log of that origin", NULL, NULL, route);
        return;
    }
    char id[OV_ID_CHARS + 1], pub_hex[2 * OV_PUBKEY_BYTES + 1], hash_hex[2 * OV_HASH_BYTES + 1],
        sig_hex[2 * OV_SIGNATURE_BYTES + 1], time[32];
    ov_id_format(&origin, id);
    ov_hex_encode(pub, sizeof pub, pub_hex);
    ov_hex_encode(head.hash, sizeof head.hash, hash_hex);
    ov_hex_encode(head.signature, sizeof head.signature, sig_hex);
    ov_time_format(head.time_ms, time);
    ov_buf out;
    ov_buf_init(&out, RESPONSE_MAX);
    ov_buf_printf(&out,
                  "{\"origin\":\"%s\",\"public_key\":\"%s\",\"head\":{\"seq\":%llu,\"hash\":\"%s\","
                  "\"time\":\"%s\",\"time_ms\":%lld,\"signature\":\"%s\"},",
                  id, pub_hex, (unsigned long long)head.seq, hash_hex, time,
                  (long long)head.time_ms, sig_hex);
    char genesis_hex[2 * OV_PUBKEY_BYTES + 1] = "";
    ov_read_keys(read, &origin, on_genesis_hex, genesis_hex);
    ov_buf_printf(&out, "\"genesis_key\":\"%s\",\"entries\":[", genesis_hex);
    log_context log = {&out, 0, read};
    /* Only entries the head vouches for: those after it were committed by batches that left
     * signing to a later one (at most ~10 ms later) and are served once a head covers them. */
    if (from > head.seq)
        limit = 0;
    else if ((uint64_t)limit > head.seq - from + 1)
        limit = (long)(head.seq - from + 1);
    rc = limit ? ov_read_log(read, &origin, from, (size_t)limit, on_log_entry, &log) : OV_OK;
    ov_read_end(read);
    if (rc != OV_OK) {
        ov_buf_free(&out);
        respond_error_code(req, rc, route);
        return;
    }
    ov_buf_append_str(&out, "]}");
    respond_buf(req, 200, &out, "Cache-Control: no-cache\r\n", route);
    ov_buf_free(&out);
}

static void handle_health(ov_node *node, ov_http_request *req)
{
    const char *route = "/healthz";
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    ov_store_stats stats;
    memset(&stats, 0, sizeof stats);
    if (rc == OV_OK) {
        rc = ov_read_stats(read, &stats);
        ov_read_end(read);
    }
    ov_buf out;
    ov_buf_init(&out, 4096);
    int healthy = rc == OV_OK && !node->shutting_down;
    ov_buf_printf(&out, "{\"status\":\"%s\",\"records\":%llu,\"uptime_s\":%lld}",
                  healthy ? "ok" : (node->shutting_down ? "stopping" : "failing"),
                  (unsigned long long)stats.records,
                  (long long)((now_ms() - node->started_ms) / 1000));
    respond_buf(req, healthy ? 200 : 503, &out, "Cache-Control: no-store\r\n", route);
    ov_buf_free(&out);
}

static void handle_metrics(ov_node *node, ov_http_request *req)
{
    ov_read *read = NULL;
    ov_store_stats stats;
    memset(&stats, 0, sizeof stats);
    uint64_t search_bytes = 0;
    if (ov_read_begin(node->store, &read) == OV_OK) {
        ov_read_stats(read, &stats);
        ov_search_index_bytes(ov_store_search_index(node->store), ov_read_txn(read), &search_bytes);
        ov_read_end(read);
    }
    ov_federation_publish_metrics(node->federation);
    ov_metrics_set_gauge("olievlek_search_index_bytes", "Bytes of the search index in the store",
                         (double)search_bytes);
    if (node->search)
        ov_metrics_set_gauge("olievlek_search_documents",
                             "Published records in search's memory (after the last query)",
                             (double)ov_search_documents(node->search));
    ov_metrics_set_gauge("olievlek_store_bytes", "Bytes of the LMDB data file in use",
                         (double)stats.map_bytes);
    ov_metrics_set_gauge("olievlek_records", "Records held (all origins, all states)",
                         (double)stats.records);
    ov_metrics_set_gauge("olievlek_log_entries", "Log entries held (all origins)",
                         (double)stats.log_entries);
    ov_metrics_set_gauge("olievlek_change_seq", "Newest position of the change feed",
                         (double)stats.changes);
    ov_writer_stats ws;
    ov_writer_get_stats(node->writer, &ws);
    ov_metrics_set_gauge("olievlek_writer_queued", "Write ops waiting for the writer",
                         (double)ws.queued);
    ov_metrics_set_gauge("olievlek_writer_failed_commits_total", "Write batches that failed",
                         (double)ws.failed_commits);
    ov_metrics_set_gauge("olievlek_writer_flushes_total",
                         "Flushes that made committed batches durable (one may cover several)",
                         (double)ws.syncs);
    ov_metrics_set_gauge("olievlek_writer_failed_flushes_total",
                         "Flushes that failed (their ops were answered with an error)",
                         (double)ws.failed_syncs);
    /* The writer counts batches in buckets of at most 1, 4, 16, 64, 256 ops and above. */
    static const double bounds[] = {1, 4, 16, 64, 256};
    uint64_t cumulative[5];
    uint64_t running = 0;
    for (int i = 0; i < 5; i++) {
        running += ws.batch_size_buckets[i];
        cumulative[i] = running;
    }
    ov_metrics_set_histogram("olievlek_writer_batch_ops", "Write ops per committed batch", bounds,
                             cumulative, 5, (double)ws.ops, ws.batches);
    char *text = NULL;
    size_t len = 0;
    if (ov_metrics_render(&text, &len) != OV_OK) {
        respond_error_code(req, OV_ENOMEM, "/metrics");
        return;
    }
    ov_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                    "Cache-Control: no-store\r\n", text, len, "/metrics");
    free(text);
}

/* ---- Routing --------------------------------------------------------------------------------- */

/* Splits "/api/v1/a/b/c" after the prefix into up to 3 segments. Returns the count, -1 when
 * there are more. */
static int split_path(const char *path, char segments[3][64])
{
    int count = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (count == 3 || len >= 64)
            return -1;
        memcpy(segments[count], p, len);
        segments[count][len] = 0;
        count++;
        p += len;
    }
    return count;
}

static void route_api(ov_node *node, ov_http_request *req, const char *rest)
{
    ov_http_method method = ov_http_request_method(req);
    char seg[3][64];
    int n = split_path(rest, seg);
    if (n <= 0) {
        ov_problem_respond(req, 404, "no such API address; docs/openapi.yaml lists them", NULL,
                           NULL, "/api/v1/other");
        return;
    }
    ov_principal who;
    int rc = ov_session_api_principal(node, req, &who);
    if (rc != OV_OK) {
        respond_error_code(req, OV_EAUTH, "/api/v1/auth");
        return;
    }
    if (n == 1 && strcmp(seg[0], "changes") == 0) {
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_changes(node, req, &who, "/api/v1/changes");
        else
            ov_problem_method_not_allowed(req, "GET, HEAD", "/api/v1/changes");
        return;
    }
    if (n == 1 && strcmp(seg[0], "search") == 0) {
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            ov_search_api_search(node, req);
        else
            ov_problem_method_not_allowed(req, "GET, HEAD", OV_SEARCH_API_ROUTE);
        return;
    }
    if (n == 1 && strcmp(seg[0], "log") == 0) {
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_log(node, req, "/api/v1/log");
        else
            ov_problem_method_not_allowed(req, "GET, HEAD", "/api/v1/log");
        return;
    }
    if (n == 1 && strcmp(seg[0], "sync") == 0) {
        if (method == OV_HTTP_POST)
            ov_sync_api_pull(node, req, &who, ov_api_can_see_anywhere);
        else
            ov_problem_method_not_allowed(req, "POST", OV_SYNC_API_ROUTE);
        return;
    }
    if (n == 1 && strcmp(seg[0], "node") == 0) {
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_node_info(node, req, "/api/v1/node");
        else
            ov_problem_method_not_allowed(req, "GET, HEAD", "/api/v1/node");
        return;
    }
    ov_kind kind;
    if (ov_kind_parse_collection(seg[0], strlen(seg[0]), &kind) != OV_OK) {
        ov_problem_respond(req, 404,
                           "no such collection; there are regions, schools, people, cases, "
                           "lessons, requests and visits",
                           NULL, NULL, "/api/v1/other");
        return;
    }
    if (ov_store_recovering(node->store) &&
        (method == OV_HTTP_POST || method == OV_HTTP_PUT || method == OV_HTTP_DELETE)) {
        respond_recovering(req, n == 1 ? "/api/v1/{kind}" : "/api/v1/{kind}/{id}");
        return;
    }
    if (n == 1) {
        const char *route = "/api/v1/{kind}";
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_list(node, req, kind, &who, route);
        else if (method == OV_HTTP_POST)
            handle_create(node, req, kind, &who, route);
        else
            ov_problem_method_not_allowed(req, "GET, HEAD, POST", route);
        return;
    }
    ov_id id;
    if (ov_id_parse(seg[1], strlen(seg[1]), &id) != OV_OK) {
        ov_problem_respond(req, 404, "record ids are 26 characters of Crockford base32", NULL, NULL,
                           "/api/v1/{kind}/{id}");
        return;
    }
    if (n == 2) {
        const char *route = "/api/v1/{kind}/{id}";
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_get(node, req, kind, &id, &who, route);
        else if (method == OV_HTTP_PUT)
            handle_replace(node, req, kind, &id, &who, route);
        else if (method == OV_HTTP_DELETE)
            handle_change(node, req, kind, &id, &who, OV_AUTH_DELETE, route);
        else
            ov_problem_method_not_allowed(req, "GET, HEAD, PUT, DELETE", route);
        return;
    }
    if (strcmp(seg[2], "publish") == 0 || strcmp(seg[2], "unpublish") == 0) {
        const char *route = strcmp(seg[2], "publish") == 0 ? "/api/v1/{kind}/{id}/publish"
                                                           : "/api/v1/{kind}/{id}/unpublish";
        if (method == OV_HTTP_POST)
            handle_change(node, req, kind, &id, &who, OV_AUTH_PUBLISH, route);
        else
            ov_problem_method_not_allowed(req, "POST", route);
        return;
    }
    if (strcmp(seg[2], "purge") == 0) {
        const char *route = "/api/v1/{kind}/{id}/purge";
        if (method == OV_HTTP_POST)
            handle_purge(node, req, kind, &id, &who, route);
        else
            ov_problem_method_not_allowed(req, "POST", route);
        return;
    }
    int matches = strcmp(seg[2], "matches") == 0 && kind == OV_KIND_REQUEST;
    if (matches || strcmp(seg[2], "similar") == 0) {
        if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            ov_search_api_similar(node, req, kind, &id, matches);
        else
            ov_problem_method_not_allowed(req, "GET, HEAD",
                                          matches ? OV_SEARCH_API_ROUTE_MATCHES
                                                  : OV_SEARCH_API_ROUTE_SIMILAR);
        return;
    }
    if (strcmp(seg[2], "take") == 0 && kind == OV_KIND_REQUEST) {
        const char *route = "/api/v1/requests/{id}/take";
        if (method == OV_HTTP_POST)
            handle_change(node, req, kind, &id, &who, OV_AUTH_TAKE, route);
        else
            ov_problem_method_not_allowed(req, "POST", route);
        return;
    }
    ov_problem_respond(req, 404, NULL, NULL, NULL, "/api/v1/other");
}

void ov_api_handle(void *app, ov_http_request *req)
{
    ov_node *node = app;
    const char *path = ov_http_request_path(req);
    ov_http_method method = ov_http_request_method(req);
    if (strcmp(path, "/healthz") == 0) {
        handle_health(node, req);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        handle_metrics(node, req);
        return;
    }
    if (strncmp(path, "/api/", 5) == 0) {
        if (strncmp(path, "/api/v1/", 8) != 0) {
            ov_problem_respond(req, 404, "this node speaks API version 1: /api/v1/", NULL, NULL,
                               "/api/other");
            return;
        }
        if (ov_session_api_route(node, req))
            return;
        route_api(node, req, path + 8);
        return;
    }
    if ((method == OV_HTTP_GET || method == OV_HTTP_HEAD) && node->web &&
        ov_static_files_serve(node->web, req))
        return;
    ov_problem_respond(req, 404, NULL, NULL, NULL, "/static");
}
