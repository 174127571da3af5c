/*
 * HTTP handlers for sessions and accounts (see session_api.h).
 *
 * Every handler that changes something goes through the same steps: check the caller, parse and
 * check the body, do CPU-heavy password work on the thread pool (auth.h), then hand the ops to the
 * writer and answer only in the last op's completion, so a 201 or 204 means the change is on
 * disk. A pending request is carried through those steps in one heap struct whose pointer is the
 * op's user data; the request itself stays valid until answered (http.h).
 *
 * Failed sign-ins all look alike (401, same text, same cost), whether the name exists or not.
 */
#include "server/session_api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto/canon.h"
#include "proto/crypto.h"
#include "proto/error.h"
#include "server/problem.h"

#define JSON_TYPE       "application/json"
#define ROUTE_SESSION   "/api/v1/session"
#define ROUTE_ACCOUNTS  "/api/v1/accounts"
#define ROUTE_ACCOUNT   "/api/v1/accounts/{id}"
#define ACCOUNTS_PREFIX "/api/v1/accounts/"
#define NO_STORE        "Cache-Control: no-store\r\n"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Answers --------------------------------------------------------------------------------- */

/* Answers with value as compact JSON (value is not consumed). */
static void respond_json(ov_http_request *req, int status, const json_t *value, const char *headers,
                         const char *route)
{
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    if (!text) {
        ov_problem_respond(req, 500, "the response could not be built", NULL, NULL, route);
        return;
    }
    ov_http_respond(req, status, JSON_TYPE, headers, text, strlen(text), route);
    free(text);
}

static void respond_unauthorized(ov_http_request *req, const char *detail, const char *route)
{
    ov_problem_respond(req, 401, detail ? detail : "sign in first (POST /api/v1/session)", NULL,
                       OV_PROBLEM_UNAUTHORIZED_HEADERS, route);
}

static void respond_error(ov_http_request *req, int rc, const char *route)
{
    switch (rc) {
    case OV_EDENIED:
        ov_problem_respond(req, 403, "only an admin may do this", NULL, NULL, route);
        break;
    case OV_ENOTFOUND:
        ov_problem_respond(req, 404, "no such account", NULL, NULL, route);
        break;
    case OV_EEXISTS:
        ov_problem_respond(req, 409, "this username is taken", NULL, NULL, route);
        break;
    default:
        ov_problem_respond_error(req, rc, route);
        break;
    }
}

/* ---- Tokens ---------------------------------------------------------------------------------- */

static int token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void base64url(const uint8_t *data, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    out[o] = 0;
}

/* Copies a token of exactly OV_SESSION_TOKEN_CHARS token characters from text (ending at NUL,
 * ';', or whitespace). Returns 1 when well-formed, else 0. */
static int copy_token(const char *text, char out[OV_SESSION_TOKEN_CHARS + 1])
{
    size_t n = 0;
    while (text[n] && token_char(text[n])) {
        if (n == OV_SESSION_TOKEN_CHARS)
            return 0;
        n++;
    }
    const char *rest = text + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (n != OV_SESSION_TOKEN_CHARS || (*rest && *rest != ';'))
        return 0;
    memcpy(out, text, n);
    out[n] = 0;
    return 1;
}

/* The request's token: 1 found (in out), 0 none, -1 present but malformed. The Authorization
 * header wins over the cookie; an Authorization of another scheme counts as malformed. */
static int token_from_headers(const char *auth, const char *cookie,
                              char out[OV_SESSION_TOKEN_CHARS + 1])
{
    if (auth) {
        while (*auth == ' ')
            auth++;
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return -1;
        auth += 7;
        while (*auth == ' ')
            auth++;
        return copy_token(auth, out) ? 1 : -1;
    }
    size_t name_len = strlen(OV_SESSION_COOKIE);
    int seen_bad = 0;
    for (const char *p = cookie; p && *p;) {
        while (*p == ' ' || *p == ';' || *p == '\t')
            p++;
        if (strncmp(p, OV_SESSION_COOKIE, name_len) == 0 && p[name_len] == '=') {
            const char *value = p + name_len + 1;
            /* An emptied cookie (after sign-out) is no token at all. */
            if (*value && *value != ';') {
                if (copy_token(value, out))
                    return 1;
                seen_bad = 1;
            }
        }
        p = strchr(p, ';');
    }
    return seen_bad ? -1 : 0;
}

static int request_token(ov_http_request *req, char out[OV_SESSION_TOKEN_CHARS + 1])
{
    return token_from_headers(ov_http_request_header(req, "authorization"),
                              ov_http_request_header(req, "cookie"), out);
}

/* ---- Who is asking --------------------------------------------------------------------------- */

typedef struct {
    ov_principal who;
    ov_session session;
    uint8_t token_hash[OV_HASH_BYTES];
    int has_token;
    json_t *account; /* the signed-in account, new reference; NULL when anonymous */
} caller;

static void on_expired_deleted(ov_write_op *op)
{
    ov_write_op_free(op);
}

/* Best effort: an expired session met on the way is removed; nobody waits for it. */
static void forget_session(ov_node *node, const uint8_t hash[OV_HASH_BYTES])
{
    if (node->shutting_down || !node->writer)
        return;
    ov_write_op *op = ov_write_op_new(OV_WRITE_SESSION_DELETE);
    if (!op)
        return;
    memcpy(op->token_hash, hash, OV_HASH_BYTES);
    op->on_done = on_expired_deleted;
    if (ov_writer_submit(node->writer, op) != OV_OK)
        ov_write_op_free(op);
}

/* Principals by the stored bytes of their account. Deriving one means parsing the account's JSON,
 * which was a third of the loop's work per write when every request did it; an account that
 * changed has other bytes and is parsed again, so nothing needs invalidating. */
#define PRINCIPALS_CACHED 8
typedef struct {
    ov_id account;
    char *json;
    size_t len;
    int rc; /* of ov_auth_principal_from_account */
    ov_principal who;
} cached_principal;
static pthread_mutex_t principals_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_principal principals[PRINCIPALS_CACHED];
static unsigned principals_next;

static int principal_of(ov_read *read, const ov_id *account, ov_principal *who)
{
    const char *json;
    size_t len;
    int rc = ov_read_account_json(read, account, &json, &len);
    if (rc)
        return rc;
    pthread_mutex_lock(&principals_lock);
    for (int i = 0; i < PRINCIPALS_CACHED; i++) {
        cached_principal *p = &principals[i];
        if (p->json && p->len == len && !memcmp(p->account.bytes, account->bytes, OV_ID_BYTES) &&
            !memcmp(p->json, json, len)) {
            *who = p->who;
            rc = p->rc;
            pthread_mutex_unlock(&principals_lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&principals_lock);
    json_t *parsed = json_loadb(json, len, 0, NULL);
    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return OV_ESTORE;
    }
    rc = ov_auth_principal_from_account(account, parsed, who);
    json_decref(parsed);
    char *copy = malloc(len);
    if (!copy)
        return rc;
    memcpy(copy, json, len);
    pthread_mutex_lock(&principals_lock);
    cached_principal *p = &principals[principals_next++ % PRINCIPALS_CACHED];
    free(p->json);
    *p = (cached_principal){*account, copy, len, rc, *who};
    pthread_mutex_unlock(&principals_lock);
    return rc;
}

/* Who is calling. With want_account the caller's account JSON comes along in c->account;
 * without, only the principal is derived (through the cache above). */
static int identify_from(ov_node *node, const char *authorization, const char *cookie,
                         int want_account, caller *c)
{
    memset(c, 0, sizeof *c);
    char token[OV_SESSION_TOKEN_CHARS + 1];
    int found = token_from_headers(authorization, cookie, token);
    if (found == 0)
        return OV_OK;
    if (found < 0)
        return OV_EAUTH;
    c->has_token = 1;
    ov_sha256(token, OV_SESSION_TOKEN_CHARS, c->token_hash);
    explicit_bzero(token, sizeof token);

    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK)
        return rc;
    rc = ov_read_session(read, c->token_hash, &c->session);
    if (rc == OV_OK && c->session.expires_ms <= now_ms()) {
        forget_session(node, c->token_hash);
        rc = OV_EAUTH;
    }
    if (rc == OV_OK && !want_account) {
        rc = principal_of(read, &c->session.account, &c->who);
        ov_read_end(read);
        if (rc == OV_EDENIED || rc == OV_ESCHEMA)
            rc = OV_EAUTH;
    } else {
        if (rc == OV_OK)
            rc = ov_read_account(read, &c->session.account, &c->account);
        ov_read_end(read);
        if (rc == OV_OK &&
            ov_auth_principal_from_account(&c->session.account, c->account, &c->who) != OV_OK)
            rc = OV_EAUTH;
    }
    if (rc == OV_ENOTFOUND)
        rc = OV_EAUTH;
    if (rc != OV_OK) {
        json_decref(c->account);
        c->account = NULL;
        memset(&c->who, 0, sizeof c->who);
    }
    return rc;
}

static int identify(ov_node *node, ov_http_request *req, caller *c)
{
    return identify_from(node, ov_http_request_header(req, "authorization"),
                         ov_http_request_header(req, "cookie"), 1, c);
}

int ov_session_api_principal_from(ov_node *node, const char *authorization, const char *cookie,
                                  ov_principal *out)
{
    caller c;
    int rc = identify_from(node, authorization, cookie, 0, &c);
    json_decref(c.account);
    *out = c.who;
    return rc;
}

int ov_session_api_principal(ov_node *node, ov_http_request *req, ov_principal *out)
{
    caller c;
    int rc = identify_from(node, ov_http_request_header(req, "authorization"),
                           ov_http_request_header(req, "cookie"), 0, &c);
    json_decref(c.account);
    *out = c.who;
    return rc;
}

/* ---- POST /api/v1/session -------------------------------------------------------------------- */

typedef struct {
    ov_node *node;
    ov_http_request *req;
    char token[OV_SESSION_TOKEN_CHARS + 1];
    int64_t expires_ms;
    json_t *view; /* the account as shown */
} login_pending;

static void login_pending_free(login_pending *p)
{
    explicit_bzero(p->token, sizeof p->token);
    json_decref(p->view);
    free(p);
}

static void on_session_stored(ov_write_op *op)
{
    login_pending *p = op->user;
    if (op->result != OV_OK) {
        respond_error(p->req, op->result, ROUTE_SESSION);
    } else {
        char expires[32];
        ov_time_format(p->expires_ms, expires);
        json_t *body =
            json_pack("{s:s, s:s, s:O}", "token", p->token, "expires", expires, "account", p->view);
        char headers[256];
        snprintf(headers, sizeof headers,
                 "Set-Cookie: %s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%lld\r\n" NO_STORE,
                 OV_SESSION_COOKIE, p->token, (long long)(OV_SESSION_LIFETIME_MS / 1000));
        respond_json(p->req, 201, body, headers, ROUTE_SESSION);
        json_decref(body);
    }
    login_pending_free(p);
    ov_write_op_free(op);
}

static void on_login_checked(void *arg, int result, const ov_id *account_id, const json_t *account)
{
    login_pending *p = arg;
    ov_node *node = p->node;
    ov_auth_login_release(node->auth);
    if (result == OV_EAUTH) {
        respond_unauthorized(p->req, "wrong username or password", ROUTE_SESSION);
        login_pending_free(p);
        return;
    }
    if (result == OV_OK && node->shutting_down)
        result = OV_ESHUTDOWN;
    ov_write_op *op = NULL;
    if (result == OV_OK) {
        p->view = ov_auth_account_view(account_id, account);
        op = ov_write_op_new(OV_WRITE_SESSION_PUT);
        result = p->view && op ? OV_OK : OV_ENOMEM;
    }
    uint8_t secret[OV_SESSION_TOKEN_BYTES];
    if (result == OV_OK)
        result = ov_random(secret, sizeof secret);
    if (result == OV_OK) {
        base64url(secret, sizeof secret, p->token);
        explicit_bzero(secret, sizeof secret);
        int64_t now = now_ms();
        p->expires_ms = now + OV_SESSION_LIFETIME_MS;
        ov_sha256(p->token, OV_SESSION_TOKEN_CHARS, op->token_hash);
        op->session = (ov_session){*account_id, now, p->expires_ms};
        op->on_done = on_session_stored;
        op->user = p;
        result = ov_writer_submit(node->writer, op);
        if (result == OV_OK)
            return;
    }
    ov_write_op_free(op);
    respond_error(p->req, result, ROUTE_SESSION);
    login_pending_free(p);
}

static void handle_login(ov_node *node, ov_http_request *req)
{
    if (node->shutting_down) {
        respond_error(req, OV_ESHUTDOWN, ROUTE_SESSION);
        return;
    }
    if (!node->auth) {
        respond_error(req, OV_EINVAL, ROUTE_SESSION);
        return;
    }
    json_t *body = ov_problem_read_json_object(req, ROUTE_SESSION);
    if (!body)
        return;
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        if (strcmp(key, "username") != 0 && strcmp(key, "password") != 0) {
            char field[96];
            snprintf(field, sizeof field, "%.90s", key);
            ov_field_errors_add(&errs, field, "hoort niet bij het inloggen",
                                "is not part of signing in");
        }
    }
    json_t *username = json_object_get(body, "username");
    json_t *password = json_object_get(body, "password");
    if (!json_is_string(username) || json_string_length(username) == 0)
        ov_field_errors_add(&errs, "username", "is verplicht en moet tekst zijn",
                            "is required and must be a string");
    if (!json_is_string(password) || json_string_length(password) == 0)
        ov_field_errors_add(&errs, "password", "is verplicht en moet tekst zijn",
                            "is required and must be a string");
    else if (json_string_length(password) > OV_AUTH_PASSWORD_MAX)
        ov_field_errors_add(&errs, "password", "is langer dan 256 bytes",
                            "is longer than 256 bytes");
    if (errs.count > 0) {
        json_decref(body);
        ov_problem_respond(req, 422, "send {\"username\", \"password\"}", &errs, NULL,
                           ROUTE_SESSION);
        return;
    }
    unsigned retry = 0;
    int rc = ov_auth_login_admit(node->auth, json_string_value(username), ov_http_request_peer(req),
                                 uv_now(node->loop), &retry);
    if (rc == OV_ELIMIT) {
        json_decref(body);
        char headers[64], detail[128];
        snprintf(headers, sizeof headers, "Retry-After: %u\r\n", retry);
        snprintf(detail, sizeof detail, "too many sign-in attempts; try again in %u seconds",
                 retry);
        ov_problem_respond(req, 429, detail, NULL, headers, ROUTE_SESSION);
        return;
    }
    if (rc == OV_OK && ov_auth_login_reserve(node->auth) != OV_OK) {
        json_decref(body);
        ov_problem_respond(req, 503, "too many sign-ins at once; try again", NULL,
                           "Retry-After: 1\r\n", ROUTE_SESSION);
        return;
    }
    login_pending *p = rc == OV_OK ? calloc(1, sizeof *p) : NULL;
    if (rc == OV_OK && !p) {
        ov_auth_login_release(node->auth);
        rc = OV_ENOMEM;
    }
    if (rc == OV_OK) {
        p->node = node;
        p->req = req;
        rc = ov_auth_login_start(node->loop, node->store, json_string_value(username),
                                 json_string_value(password), json_string_length(password),
                                 on_login_checked, p);
        if (rc != OV_OK) {
            ov_auth_login_release(node->auth);
            free(p);
        }
    }
    json_decref(body);
    if (rc != OV_OK)
        respond_error(req, rc, ROUTE_SESSION);
}

/* ---- GET and DELETE /api/v1/session ---------------------------------------------------------- */

static void handle_whoami(ov_node *node, ov_http_request *req)
{
    caller c;
    int rc = identify(node, req, &c);
    if (rc == OV_OK && c.who.role == OV_ROLE_ANONYMOUS)
        rc = OV_EAUTH;
    if (rc != OV_OK) {
        respond_error(req, rc, ROUTE_SESSION);
        return;
    }
    json_t *view = ov_auth_account_view(&c.session.account, c.account);
    char expires[32];
    ov_time_format(c.session.expires_ms, expires);
    /* When this session ends, for clients that want to warn before it does. */
    if (view)
        json_object_set_new(view, "session_expires", json_string(expires));
    respond_json(req, 200, view, NO_STORE, ROUTE_SESSION);
    json_decref(view);
    json_decref(c.account);
}

static void on_session_deleted(ov_write_op *op)
{
    ov_http_request *req = op->user;
    if (op->result == OV_OK)
        ov_http_respond(req, 204, NULL,
                        "Set-Cookie: " OV_SESSION_COOKIE
                        "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0\r\n",
                        NULL, 0, ROUTE_SESSION);
    else
        respond_error(req, op->result, ROUTE_SESSION);
    ov_write_op_free(op);
}

static void handle_logout(ov_node *node, ov_http_request *req)
{
    char token[OV_SESSION_TOKEN_CHARS + 1];
    if (request_token(req, token) != 1) {
        respond_unauthorized(req, "there is no session to end", ROUTE_SESSION);
        return;
    }
    ov_write_op *op = ov_write_op_new(OV_WRITE_SESSION_DELETE);
    if (!op) {
        respond_error(req, OV_ENOMEM, ROUTE_SESSION);
        return;
    }
    /* Deleting is idempotent: an expired or unknown token also ends with a cleared cookie. */
    ov_sha256(token, OV_SESSION_TOKEN_CHARS, op->token_hash);
    explicit_bzero(token, sizeof token);
    op->on_done = on_session_deleted;
    op->user = req;
    int rc = node->shutting_down ? OV_ESHUTDOWN : ov_writer_submit(node->writer, op);
    if (rc != OV_OK) {
        ov_write_op_free(op);
        respond_error(req, rc, ROUTE_SESSION);
    }
}

/* ---- Accounts -------------------------------------------------------------------------------- */

typedef struct {
    json_t *items;
} account_list;

static int on_account_listed(void *ctx, const ov_id *id, const json_t *account)
{
    account_list *list = ctx;
    json_t *view = ov_auth_account_view(id, account);
    if (!view || json_array_append_new(list->items, view) != 0)
        return OV_ENOMEM;
    return 0;
}

static void handle_list_accounts(ov_node *node, ov_http_request *req)
{
    account_list list = {json_array()};
    ov_read *read = NULL;
    int rc = list.items ? ov_read_begin(node->store, &read) : OV_ENOMEM;
    if (rc == OV_OK) {
        rc = ov_read_accounts(read, on_account_listed, &list);
        ov_read_end(read);
    }
    if (rc != OV_OK) {
        json_decref(list.items);
        respond_error(req, rc, ROUTE_ACCOUNTS);
        return;
    }
    json_t *body = json_pack("{s:o}", "items", list.items);
    respond_json(req, 200, body, NO_STORE, ROUTE_ACCOUNTS);
    json_decref(body);
}

/* The ids an account refers to must name existing records of the right kind. */
static int check_account_references(ov_node *node, const json_t *input, ov_field_errors *errs)
{
    static const struct {
        const char *member;
        ov_kind kind;
    } refs[] = {{"region", OV_KIND_REGION}, {"school", OV_KIND_SCHOOL}, {"person", OV_KIND_PERSON}};
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK)
        return rc;
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        json_t *value = json_object_get(input, refs[i].member);
        ov_id id;
        ov_record_meta meta;
        if (!json_is_string(value) ||
            ov_id_parse(json_string_value(value), json_string_length(value), &id) != OV_OK)
            continue;
        if (ov_read_record(read, &id, &meta, NULL, NULL) == OV_OK &&
            meta.env.kind == refs[i].kind && meta.env.status != OV_STATUS_DELETED)
            continue;
        char nl[160], en[160];
        snprintf(nl, sizeof nl, "verwijst naar een %s die hier niet bestaat",
                 ov_kind_name(refs[i].kind));
        snprintf(en, sizeof en, "refers to a %s that does not exist here",
                 ov_kind_name(refs[i].kind));
        ov_field_errors_add(errs, refs[i].member, nl, en);
    }
    ov_read_end(read);
    return OV_OK;
}

/* A create or change of an account on its way through hashing and the writer. */
typedef struct {
    ov_node *node;
    ov_http_request *req;
    const char *route;
    int creating;
    ov_id id;
    json_t *input;      /* the checked client input (without current_password) */
    char *kept_hash;    /* the stored hash when the password does not change */
    int64_t created_ms; /* kept from the stored account on a change */
    int revoke;         /* end the account's sessions */
    int keep_session;   /* ...but restore the one the change was made with */
    uint8_t keep_hash[OV_HASH_BYTES];
    ov_session keep;
    int outstanding; /* ops not completed yet */
    int result;      /* of the account write */
    json_t *written; /* the stored account, for the answer */
} account_pending;

static void account_pending_free(account_pending *p)
{
    json_decref(p->input);
    json_decref(p->written);
    free(p->kept_hash);
    free(p);
}

static void on_account_op_done(ov_write_op *op)
{
    account_pending *p = op->user;
    /* The account write's own failure says most; otherwise the first failure counts. */
    if (op->result != OV_OK && (p->result == OV_OK || op->type == OV_WRITE_ACCOUNT_PUT))
        p->result = op->result;
    ov_write_op_free(op);
    if (--p->outstanding > 0)
        return;
    if (p->result != OV_OK) {
        respond_error(p->req, p->result, p->route);
    } else {
        json_t *view = ov_auth_account_view(&p->id, p->written);
        char headers[160];
        char id[OV_ID_CHARS + 1];
        ov_id_format(&p->id, id);
        if (p->creating)
            snprintf(headers, sizeof headers, "Location: /api/v1/accounts/%s\r\n" NO_STORE, id);
        else
            snprintf(headers, sizeof headers, NO_STORE);
        respond_json(p->req, p->creating ? 201 : 200, view, headers, p->route);
        json_decref(view);
    }
    account_pending_free(p);
}

/* Queues op for p; on failure records the error (the op is freed). */
static void submit_account_op(account_pending *p, ov_write_op *op)
{
    op->on_done = on_account_op_done;
    op->user = p;
    int rc = p->node->shutting_down ? OV_ESHUTDOWN : ov_writer_submit(p->node->writer, op);
    if (rc != OV_OK) {
        ov_write_op_free(op);
        if (p->result == OV_OK)
            p->result = rc;
        return;
    }
    p->outstanding++;
}

/* Builds the stored account and hands the writes to the writer. */
static void write_account(account_pending *p, const char *password_hash)
{
    int64_t now = now_ms();
    int rc = ov_auth_account_build(p->input, password_hash, p->creating ? now : p->created_ms,
                                   p->creating ? 0 : now, &p->written);
    ov_write_op *put = rc == OV_OK ? ov_write_op_new(OV_WRITE_ACCOUNT_PUT) : NULL;
    if (!put) {
        respond_error(p->req, OV_ENOMEM, p->route);
        account_pending_free(p);
        return;
    }
    put->account_id = p->id;
    put->account = json_incref(p->written);
    p->outstanding = 1; /* held while submitting, so no completion answers early */
    submit_account_op(p, put);
    if (p->revoke) {
        ov_write_op *revoke = ov_write_op_new(OV_WRITE_SESSIONS_REVOKE);
        if (revoke) {
            revoke->account_id = p->id;
            submit_account_op(p, revoke);
        } else if (p->result == OV_OK) {
            p->result = OV_ENOMEM;
        }
    }
    if (p->revoke && p->keep_session) {
        ov_write_op *restore = ov_write_op_new(OV_WRITE_SESSION_PUT);
        if (restore) {
            memcpy(restore->token_hash, p->keep_hash, OV_HASH_BYTES);
            restore->session = p->keep;
            submit_account_op(p, restore);
        }
    }
    /* Release the hold: answers now if every submission failed, else in the last completion. */
    if (--p->outstanding == 0) {
        respond_error(p->req, p->result != OV_OK ? p->result : OV_ESTORE, p->route);
        account_pending_free(p);
    }
}

static void on_account_password_hashed(void *arg, int result, const char *new_hash)
{
    account_pending *p = arg;
    if (result == OV_EAUTH) {
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        ov_field_errors_add(&errs, "current_password", "klopt niet", "is not correct");
        ov_problem_respond(p->req, 422, "the current password is not correct", &errs, NULL,
                           p->route);
        account_pending_free(p);
        return;
    }
    if (result != OV_OK) {
        respond_error(p->req, result, p->route);
        account_pending_free(p);
        return;
    }
    write_account(p, new_hash);
}

static void handle_create_account(ov_node *node, ov_http_request *req, const ov_principal *who)
{
    if (who->role != OV_ROLE_ADMIN) {
        respond_error(req, OV_EDENIED, ROUTE_ACCOUNTS);
        return;
    }
    json_t *input = ov_problem_read_json_object(req, ROUTE_ACCOUNTS);
    if (!input)
        return;
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs);
    int rc = errs.count == 0 ? check_account_references(node, input, &errs) : OV_OK;
    if (rc == OV_OK && errs.count > 0) {
        json_decref(input);
        ov_problem_respond(req, 422, "the account is not valid", &errs, NULL, ROUTE_ACCOUNTS);
        return;
    }
    ov_id id;
    if (rc == OV_OK)
        rc = ov_id_generate(&id, (uint64_t)now_ms());
    account_pending *p = rc == OV_OK ? calloc(1, sizeof *p) : NULL;
    if (rc == OV_OK && !p)
        rc = OV_ENOMEM;
    if (rc == OV_OK && node->shutting_down)
        rc = OV_ESHUTDOWN;
    if (rc != OV_OK) {
        free(p);
        json_decref(input);
        respond_error(req, rc, ROUTE_ACCOUNTS);
        return;
    }
    *p = (account_pending){
        .node = node, .req = req, .route = ROUTE_ACCOUNTS, .creating = 1, .id = id, .input = input};
    rc = ov_auth_password_start(node->loop, NULL, NULL,
                                json_string_value(json_object_get(input, "password")),
                                on_account_password_hashed, p);
    if (rc != OV_OK) {
        respond_error(req, rc, ROUTE_ACCOUNTS);
        account_pending_free(p);
    }
}

/* Loads an account; answers 404 (or the error) itself and returns NULL. */
static json_t *load_account(ov_node *node, ov_http_request *req, const ov_id *id)
{
    ov_read *read = NULL;
    json_t *account = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc == OV_OK) {
        rc = ov_read_account(read, id, &account);
        ov_read_end(read);
    }
    if (rc != OV_OK) {
        respond_error(req, rc, ROUTE_ACCOUNT);
        return NULL;
    }
    return account;
}

static void handle_get_account(ov_node *node, ov_http_request *req, const ov_principal *who,
                               const ov_id *id)
{
    if (who->role != OV_ROLE_ADMIN && ov_id_compare(&who->account, id) != 0) {
        respond_error(req, OV_EDENIED, ROUTE_ACCOUNT);
        return;
    }
    json_t *account = load_account(node, req, id);
    if (!account)
        return;
    json_t *view = ov_auth_account_view(id, account);
    respond_json(req, 200, view, NO_STORE, ROUTE_ACCOUNT);
    json_decref(view);
    json_decref(account);
}

static int same_string_member(const json_t *a, const json_t *b, const char *member)
{
    const char *x = json_string_value(json_object_get(a, member));
    const char *y = json_string_value(json_object_get(b, member));
    return x && y ? strcmp(x, y) == 0 : x == y;
}

static void handle_put_account(ov_node *node, ov_http_request *req, const caller *c,
                               const ov_id *id)
{
    const ov_principal *who = &c->who;
    int self = ov_id_compare(&who->account, id) == 0;
    if (who->role != OV_ROLE_ADMIN && !self) {
        respond_error(req, OV_EDENIED, ROUTE_ACCOUNT);
        return;
    }
    json_t *input = ov_problem_read_json_object(req, ROUTE_ACCOUNT);
    if (!input)
        return;
    json_t *stored = load_account(node, req, id);
    if (!stored) {
        json_decref(input);
        return;
    }
    /* current_password is a proof, not a member of the account. */
    json_t *current = json_incref(json_object_get(input, "current_password"));
    json_object_del(input, "current_password");
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    int rc = OV_OK;
    if (who->role != OV_ROLE_ADMIN) {
        /* Everyone else may only change their own password: the body is exactly that. */
        const char *key;
        json_t *value;
        json_object_foreach(input, key, value)
        {
            if (strcmp(key, "password") != 0)
                rc = OV_EDENIED;
        }
        if (rc == OV_OK && !json_object_get(input, "password"))
            ov_field_errors_add(&errs, "password", "is verplicht", "is required");
        /* Keep everything else as stored. */
        json_t *merged = json_deep_copy(stored);
        if (merged) {
            json_object_del(merged, "password_hash");
            json_object_update(merged, input);
        }
        json_decref(input);
        input = merged;
        if (!input)
            rc = OV_ENOMEM;
    }
    if (rc != OV_OK) {
        json_decref(current);
        json_decref(stored);
        json_decref(input);
        if (rc == OV_EDENIED)
            ov_problem_respond(req, 403,
                               "only an admin changes accounts; you may change your own "
                               "password with {\"password\", \"current_password\"}",
                               NULL, NULL, ROUTE_ACCOUNT);
        else
            respond_error(req, rc, ROUTE_ACCOUNT);
        return;
    }
    ov_auth_account_check(input, OV_ACCOUNT_INPUT_REPLACE, &errs);
    const char *new_password = json_string_value(json_object_get(input, "password"));
    if (self && new_password && !json_is_string(current))
        ov_field_errors_add(&errs, "current_password",
                            "is verplicht om je eigen wachtwoord te wijzigen",
                            "is required to change your own password");
    if (self && who->role == OV_ROLE_ADMIN) {
        /* A node must never lose its last way in by accident. */
        if (!same_string_member(input, stored, "role"))
            ov_field_errors_add(&errs, "role", "je kunt je eigen beheerdersrol niet afnemen",
                                "you cannot take away your own admin role");
        if (json_is_true(json_object_get(input, "disabled")))
            ov_field_errors_add(&errs, "disabled", "je kunt jezelf niet uitschakelen",
                                "you cannot disable yourself");
    }
    if (errs.count == 0)
        rc = check_account_references(node, input, &errs);
    if (rc == OV_OK && errs.count > 0) {
        json_decref(current);
        json_decref(stored);
        json_decref(input);
        ov_problem_respond(req, 422, "the account is not valid", &errs, NULL, ROUTE_ACCOUNT);
        return;
    }
    account_pending *p = rc == OV_OK ? calloc(1, sizeof *p) : NULL;
    if (rc == OV_OK && !p)
        rc = OV_ENOMEM;
    if (rc == OV_OK && node->shutting_down)
        rc = OV_ESHUTDOWN;
    if (rc != OV_OK) {
        free(p);
        json_decref(current);
        json_decref(stored);
        json_decref(input);
        respond_error(req, rc, ROUTE_ACCOUNT);
        return;
    }
    p->node = node;
    p->req = req;
    p->route = ROUTE_ACCOUNT;
    p->id = *id;
    p->input = input;
    const char *created = json_string_value(json_object_get(stored, "created"));
    if (!created || ov_time_parse(created, strlen(created), &p->created_ms) != OV_OK)
        p->created_ms = now_ms();
    p->revoke = new_password || !same_string_member(input, stored, "role") ||
                json_is_true(json_object_get(input, "disabled"));
    /* Whoever changes their own password stays signed in with the session they did it from. */
    if (self && c->has_token) {
        p->keep_session = 1;
        memcpy(p->keep_hash, c->token_hash, OV_HASH_BYTES);
        p->keep = c->session;
    }
    const char *stored_hash = json_string_value(json_object_get(stored, "password_hash"));
    if (new_password) {
        rc = ov_auth_password_start(node->loop, self ? (stored_hash ? stored_hash : "") : NULL,
                                    self ? json_string_value(current) : NULL, new_password,
                                    on_account_password_hashed, p);
        if (rc != OV_OK) {
            respond_error(req, rc, ROUTE_ACCOUNT);
            account_pending_free(p);
        }
    } else {
        p->kept_hash = stored_hash ? strdup(stored_hash) : NULL;
        if (stored_hash && !p->kept_hash) {
            respond_error(req, OV_ENOMEM, ROUTE_ACCOUNT);
            account_pending_free(p);
        } else {
            write_account(p, p->kept_hash);
        }
    }
    json_decref(current);
    json_decref(stored);
}

/* ---- Routing --------------------------------------------------------------------------------- */

static void route_accounts(ov_node *node, ov_http_request *req, const char *rest)
{
    ov_http_method method = ov_http_request_method(req);
    const char *route = rest ? ROUTE_ACCOUNT : ROUTE_ACCOUNTS;
    ov_id id;
    if (rest && (strchr(rest, '/') || ov_id_parse(rest, strlen(rest), &id) != OV_OK)) {
        ov_problem_respond(req, 404, "account ids are 26 characters of Crockford base32", NULL,
                           NULL, ROUTE_ACCOUNT);
        return;
    }
    int allowed = rest
                      ? (method == OV_HTTP_GET || method == OV_HTTP_HEAD || method == OV_HTTP_PUT)
                      : (method == OV_HTTP_GET || method == OV_HTTP_HEAD || method == OV_HTTP_POST);
    if (!allowed) {
        ov_problem_method_not_allowed(req, rest ? "GET, HEAD, PUT" : "GET, HEAD, POST", route);
        return;
    }
    caller c;
    int rc = identify(node, req, &c);
    if (rc == OV_OK && c.who.role == OV_ROLE_ANONYMOUS)
        rc = OV_EAUTH;
    if (rc != OV_OK) {
        respond_error(req, rc, route);
        return;
    }
    if (!rest) {
        if (method == OV_HTTP_POST)
            handle_create_account(node, req, &c.who);
        else if (c.who.role != OV_ROLE_ADMIN)
            respond_error(req, OV_EDENIED, route);
        else
            handle_list_accounts(node, req);
    } else if (method == OV_HTTP_PUT) {
        handle_put_account(node, req, &c, &id);
    } else {
        handle_get_account(node, req, &c.who, &id);
    }
    json_decref(c.account);
}

int ov_session_api_route(ov_node *node, ov_http_request *req)
{
    const char *path = ov_http_request_path(req);
    ov_http_method method = ov_http_request_method(req);
    if (strcmp(path, ROUTE_SESSION) == 0) {
        if (method == OV_HTTP_POST)
            handle_login(node, req);
        else if (method == OV_HTTP_GET || method == OV_HTTP_HEAD)
            handle_whoami(node, req);
        else if (method == OV_HTTP_DELETE)
            handle_logout(node, req);
        else
            ov_problem_method_not_allowed(req, "GET, HEAD, POST, DELETE", ROUTE_SESSION);
        return 1;
    }
    if (strcmp(path, ROUTE_ACCOUNTS) == 0) {
        route_accounts(node, req, NULL);
        return 1;
    }
    if (strncmp(path, ACCOUNTS_PREFIX, strlen(ACCOUNTS_PREFIX)) == 0) {
        route_accounts(node, req, path + strlen(ACCOUNTS_PREFIX));
        return 1;
    }
    return 0;
}
