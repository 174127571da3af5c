/*
 * Roles, the role rules, accounts and passwords (see auth.h; docs/roles.md states the rules).
 *
 * The write rules are one table of (role, actions, kinds, reach) rows rather than if-chains, so
 * the whole policy can be read in one screen and docs/roles.md can be checked against it row by
 * row. A draft may be read by whoever may change it, and by its author.
 *
 * Password hashing and verification cost tens of milliseconds of CPU each, so the asynchronous
 * entry points run them on libuv's thread pool. The worker touches only copied strings, never
 * jansson values or the store.
 */
#include "server/auth.h"

#include <argon2.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/crypto.h"
#include "proto/error.h"
#include "server/ratelimit.h"

/* ---- Roles ----------------------------------------------------------------------------------- */

static const char *const role_names[OV_ROLE_COUNT] = {
    [OV_ROLE_ANONYMOUS] = "anonymous",
    [OV_ROLE_BRIGADIER] = "brigadier",
    [OV_ROLE_SCHOOL_EDITOR] = "school-editor",
    [OV_ROLE_MODERATOR] = "moderator",
    [OV_ROLE_ADMIN] = "admin",
};

const char *ov_role_name(ov_role role)
{
    return (unsigned)role < OV_ROLE_COUNT ? role_names[role] : "?";
}

int ov_role_parse(const char *name, size_t len, ov_role *out)
{
    for (int r = OV_ROLE_BRIGADIER; r < OV_ROLE_COUNT; r++) {
        if (strlen(role_names[r]) == len && memcmp(role_names[r], name, len) == 0) {
            *out = (ov_role)r;
            return OV_OK;
        }
    }
    return OV_EINVAL;
}

static const char *const action_names[OV_AUTH_ACTION_COUNT] = {"create", "replace", "delete",
                                                               "publish", "take"};

const char *ov_auth_action_name(ov_auth_action action)
{
    return (unsigned)action < OV_AUTH_ACTION_COUNT ? action_names[action] : "?";
}

/* The id member a role needs in its account, or NULL. */
static const char *role_id_member(ov_role role)
{
    switch (role) {
    case OV_ROLE_MODERATOR:
        return "region";
    case OV_ROLE_SCHOOL_EDITOR:
        return "school";
    case OV_ROLE_BRIGADIER:
        return "person";
    default:
        return NULL;
    }
}

static const char *const id_members[] = {"region", "school", "person"};

static int parse_id_member(const json_t *account, const char *member, ov_id *out)
{
    const char *text = json_string_value(json_object_get(account, member));
    if (!text)
        return OV_ESCHEMA;
    return ov_id_parse(text, strlen(text), out) == OV_OK ? OV_OK : OV_ESCHEMA;
}

int ov_auth_principal_from_account(const ov_id *id, const json_t *account, ov_principal *out)
{
    memset(out, 0, sizeof *out);
    const char *username = json_string_value(json_object_get(account, "username"));
    const char *role = json_string_value(json_object_get(account, "role"));
    if (!username || !role || strlen(username) > OV_AUTH_USERNAME_MAX)
        return OV_ESCHEMA;
    ov_role parsed;
    if (ov_role_parse(role, strlen(role), &parsed) != OV_OK)
        return OV_ESCHEMA;
    /* Only the id the role uses is taken over, so a stray member never widens a reach. */
    const char *member = role_id_member(parsed);
    ov_id *target = parsed == OV_ROLE_MODERATOR       ? &out->region
                    : parsed == OV_ROLE_SCHOOL_EDITOR ? &out->school
                    : parsed == OV_ROLE_BRIGADIER     ? &out->person
                                                      : NULL;
    if (member && (parse_id_member(account, member, target) != OV_OK || ov_id_is_zero(target))) {
        memset(out, 0, sizeof *out);
        return OV_ESCHEMA;
    }
    out->role = parsed;
    out->account = *id;
    memcpy(out->username, username, strlen(username) + 1);
    if (json_is_true(json_object_get(account, "disabled")))
        return OV_EDENIED;
    return OV_OK;
}

/* ---- Policy ---------------------------------------------------------------------------------- */

/* How far a rule reaches: which records of its kinds it covers. */
typedef enum {
    REACH_OWN_PROFILE, /* the person record of the principal, and the visits that person wrote */
    REACH_SCHOOL,      /* records one of whose schools is the principal's school */
    REACH_REGION,      /* records whose region is the principal's region */
    REACH_ALL,
} reach;

#define ACT(a)         (1u << OV_AUTH_##a)
#define KIND(k)        (1u << OV_KIND_##k)
#define ALL_ACTIONS    ((1u << OV_AUTH_ACTION_COUNT) - 1)
#define ALL_KINDS      ((1u << OV_KIND_COUNT) - 1)
#define SCHOOL_CONTENT (KIND(CASE) | KIND(LESSON) | KIND(REQUEST))

typedef struct {
    ov_role role;
    unsigned actions;
    unsigned kinds;
    reach reach;
} write_rule;

/* Everything not granted here is denied. Publishing (also creating or changing a record into
 * the published state) needs a PUBLISH row. docs/roles.md is this table in words.
 *
 * A visit note is the brigadier's own account of a visit: they write it (always as a draft),
 * and a moderator of the school's region reviews and publishes it but does not rewrite it. */
static const write_rule write_rules[] = {
    {OV_ROLE_BRIGADIER, ACT(REPLACE), KIND(PERSON), REACH_OWN_PROFILE},
    {OV_ROLE_BRIGADIER, ACT(CREATE) | ACT(REPLACE) | ACT(DELETE), KIND(VISIT), REACH_OWN_PROFILE},
    {OV_ROLE_BRIGADIER, ACT(TAKE), KIND(REQUEST), REACH_ALL},
    {OV_ROLE_SCHOOL_EDITOR, ACT(CREATE) | ACT(REPLACE) | ACT(DELETE), SCHOOL_CONTENT, REACH_SCHOOL},
    {OV_ROLE_SCHOOL_EDITOR, ACT(REPLACE), KIND(SCHOOL), REACH_SCHOOL},
    {OV_ROLE_MODERATOR, ACT(CREATE) | ACT(REPLACE) | ACT(DELETE) | ACT(PUBLISH),
     ALL_KINDS & ~KIND(REGION) & ~KIND(VISIT), REACH_REGION},
    {OV_ROLE_MODERATOR, ACT(PUBLISH), KIND(VISIT), REACH_REGION},
    {OV_ROLE_ADMIN, ALL_ACTIONS, ALL_KINDS, REACH_ALL},
};

/* Who may read drafts without changing them: the school a visit note is about may see what is
 * written about it before it is published. (Whoever may change or publish a draft reads it too.) */
typedef struct {
    ov_role role;
    unsigned kinds;
    reach reach;
} read_rule;

static const read_rule draft_readers[] = {
    {OV_ROLE_SCHOOL_EDITOR, KIND(VISIT), REACH_SCHOOL},
};

static int id_set_equal(const ov_id *a, const ov_id *b)
{
    return !ov_id_is_zero(a) && ov_id_compare(a, b) == 0;
}

static int within_reach(const ov_principal *p, reach r, const ov_record_scope *scope)
{
    switch (r) {
    case REACH_OWN_PROFILE:
        return id_set_equal(&p->person, &scope->person);
    case REACH_SCHOOL:
        if (ov_id_is_zero(&p->school))
            return 0;
        for (int i = 0; i < scope->school_count && i < OV_SCOPE_MAX_SCHOOLS; i++)
            if (ov_id_compare(&scope->schools[i], &p->school) == 0)
                return 1;
        return 0;
    case REACH_REGION:
        return id_set_equal(&p->region, &scope->region);
    case REACH_ALL:
        return 1;
    }
    return 0;
}

static int granted(const ov_principal *p, ov_auth_action action, ov_kind kind,
                   const ov_record_scope *scope)
{
    for (size_t i = 0; i < sizeof write_rules / sizeof write_rules[0]; i++) {
        const write_rule *rule = &write_rules[i];
        if (rule->role == p->role && (rule->actions & (1u << action)) &&
            (rule->kinds & (1u << kind)) && within_reach(p, rule->reach, scope))
            return 1;
    }
    return 0;
}

int ov_auth_can_write(const ov_principal *p, ov_auth_action action, ov_kind kind,
                      const ov_record_scope *scope, ov_status requested_status)
{
    if (!p || !scope || (unsigned)action >= OV_AUTH_ACTION_COUNT || (unsigned)kind >= OV_KIND_COUNT)
        return OV_EDENIED;
    if (p->role == OV_ROLE_ANONYMOUS)
        return OV_EAUTH;
    if ((unsigned)p->role >= OV_ROLE_COUNT)
        return OV_EDENIED;
    if (!granted(p, action, kind, scope))
        return OV_EDENIED;
    switch (action) {
    case OV_AUTH_CREATE:
    case OV_AUTH_REPLACE:
        if (requested_status == OV_STATUS_DRAFT)
            return OV_OK;
        if (requested_status == OV_STATUS_PUBLISHED)
            return granted(p, OV_AUTH_PUBLISH, kind, scope) ? OV_OK : OV_EDENIED;
        return OV_EDENIED;
    case OV_AUTH_PUBLISH:
        return requested_status == OV_STATUS_DRAFT || requested_status == OV_STATUS_PUBLISHED
                   ? OV_OK
                   : OV_EDENIED;
    default:
        return OV_OK;
    }
}

int ov_auth_can_read(const ov_principal *p, ov_kind kind, ov_status status,
                     const ov_record_scope *scope)
{
    if (!p || !scope || (unsigned)kind >= OV_KIND_COUNT)
        return OV_EDENIED;
    if (status == OV_STATUS_PUBLISHED || status == OV_STATUS_DELETED)
        return OV_OK;
    if (status != OV_STATUS_DRAFT)
        return OV_EDENIED;
    if (p->role == OV_ROLE_ANONYMOUS)
        return OV_EAUTH;
    if ((unsigned)p->role >= OV_ROLE_COUNT)
        return OV_EDENIED;
    if (id_set_equal(&p->account, &scope->author))
        return OV_OK;
    /* Whoever may change or publish a draft must be able to see it (a reviewer, the school's
     * editor). */
    if (granted(p, OV_AUTH_REPLACE, kind, scope) || granted(p, OV_AUTH_PUBLISH, kind, scope))
        return OV_OK;
    for (size_t i = 0; i < sizeof draft_readers / sizeof draft_readers[0]; i++) {
        const read_rule *rule = &draft_readers[i];
        if (rule->role == p->role && (rule->kinds & (1u << kind)) &&
            within_reach(p, rule->reach, scope))
            return OV_OK;
    }
    return OV_EDENIED;
}

/* ---- Accounts -------------------------------------------------------------------------------- */

int ov_auth_username_valid(const char *username, size_t len)
{
    if (!username || len < OV_AUTH_USERNAME_MIN || len > OV_AUTH_USERNAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = username[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Characters (code points) of a valid UTF-8 string. */
static size_t utf8_length(const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static int has_control(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return 1;
    return 0;
}

static const char *const known_members[] = {"username", "password", "role",     "region",
                                            "school",   "person",   "disabled", "display_name",
                                            "id",       "created",  "updated"};

static int is_known_member(const char *key)
{
    for (size_t i = 0; i < sizeof known_members / sizeof known_members[0]; i++)
        if (strcmp(key, known_members[i]) == 0)
            return 1;
    return 0;
}

static void check_username(const json_t *value, ov_field_errors *errs)
{
    if (!value) {
        ov_field_errors_add(errs, "username", "is verplicht", "is required");
        return;
    }
    const char *text = json_string_value(value);
    if (!text) {
        ov_field_errors_add(errs, "username", "moet tekst zijn", "must be a string");
        return;
    }
    if (!ov_auth_username_valid(text, json_string_length(value)))
        ov_field_errors_add(errs, "username",
                            "moet 3 tot 64 tekens zijn: kleine letters, cijfers, '.', '_' of '-'",
                            "must be 3 to 64 characters: lower-case letters, digits, '.', '_' or "
                            "'-'");
}

static void check_password(const json_t *value, int required, ov_field_errors *errs)
{
    if (!value) {
        if (required)
            ov_field_errors_add(errs, "password", "is verplicht", "is required");
        return;
    }
    const char *text = json_string_value(value);
    if (!text) {
        ov_field_errors_add(errs, "password", "moet tekst zijn", "must be a string");
        return;
    }
    size_t len = json_string_length(value);
    if (len > OV_AUTH_PASSWORD_MAX)
        ov_field_errors_add(errs, "password", "is langer dan 256 bytes",
                            "is longer than 256 bytes");
    else if (utf8_length(text, len) < OV_AUTH_PASSWORD_MIN)
        ov_field_errors_add(errs, "password", "moet minstens 10 tekens lang zijn",
                            "must be at least 10 characters long");
}

int ov_auth_account_check(const json_t *input, ov_account_input mode, ov_field_errors *errs)
{
    int before = errs->count + errs->truncated;
    if (!json_is_object(input)) {
        ov_field_errors_add(errs, "", "moet een JSON-object zijn", "must be a JSON object");
        return OV_ESCHEMA;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)input, key, value)
    {
        if (!is_known_member(key)) {
            char field[96];
            snprintf(field, sizeof field, "%.90s", key);
            ov_field_errors_add(errs, field, "is geen veld van een account",
                                "is not a member of an account");
        }
    }
    check_username(json_object_get(input, "username"), errs);
    check_password(json_object_get(input, "password"), mode == OV_ACCOUNT_INPUT_CREATE, errs);

    ov_role role = OV_ROLE_ANONYMOUS;
    json_t *role_value = json_object_get(input, "role");
    if (!role_value) {
        ov_field_errors_add(errs, "role", "is verplicht", "is required");
    } else if (!json_is_string(role_value) ||
               ov_role_parse(json_string_value(role_value), json_string_length(role_value),
                             &role) != OV_OK) {
        ov_field_errors_add(errs, "role", "moet brigadier, school-editor, moderator of admin zijn",
                            "must be brigadier, school-editor, moderator or admin");
    }
    /* Each role carries exactly the id its rules need. */
    const char *needed = role_id_member(role);
    for (size_t i = 0; i < sizeof id_members / sizeof id_members[0]; i++) {
        const char *member = id_members[i];
        json_t *id_value = json_object_get(input, member);
        int wanted = needed && strcmp(needed, member) == 0;
        if (!id_value) {
            if (wanted)
                ov_field_errors_add(errs, member, "is verplicht voor deze rol",
                                    "is required for this role");
            continue;
        }
        ov_id id;
        const char *text = json_string_value(id_value);
        if (!text || ov_id_parse(text, json_string_length(id_value), &id) != OV_OK ||
            ov_id_is_zero(&id))
            ov_field_errors_add(errs, member, "moet een geldige id zijn (26 tekens)",
                                "must be a valid id (26 characters)");
        else if (!wanted && role != OV_ROLE_ANONYMOUS)
            ov_field_errors_add(errs, member, "hoort niet bij deze rol",
                                "does not belong to this role");
    }

    json_t *display = json_object_get(input, "display_name");
    if (display) {
        const char *text = json_string_value(display);
        size_t len = json_string_length(display);
        if (!text)
            ov_field_errors_add(errs, "display_name", "moet tekst zijn", "must be a string");
        else if (len == 0 || len > OV_AUTH_DISPLAY_MAX || has_control(text, len))
            ov_field_errors_add(errs, "display_name",
                                "moet 1 tot 100 bytes zijn, zonder stuurtekens",
                                "must be 1 to 100 bytes without control characters");
    }
    json_t *disabled = json_object_get(input, "disabled");
    if (disabled && !json_is_boolean(disabled))
        ov_field_errors_add(errs, "disabled", "moet true of false zijn", "must be true or false");
    return errs->count + errs->truncated > before ? OV_ESCHEMA : OV_OK;
}

int ov_auth_account_build(const json_t *input, const char *password_hash, int64_t created_ms,
                          int64_t updated_ms, json_t **out)
{
    json_t *account = json_object();
    if (!account)
        return OV_ENOMEM;
    const char *key;
    json_t *value;
    int failed = 0;
    json_object_foreach((json_t *)input, key, value)
    {
        if (strcmp(key, "password") == 0 || strcmp(key, "id") == 0 || strcmp(key, "created") == 0 ||
            strcmp(key, "updated") == 0 || strcmp(key, "password_hash") == 0)
            continue;
        failed |= json_object_set(account, key, value);
    }
    char time[32];
    ov_time_format(created_ms, time);
    failed |= json_object_set_new(account, "created", json_string(time));
    if (updated_ms > 0) {
        ov_time_format(updated_ms, time);
        failed |= json_object_set_new(account, "updated", json_string(time));
    }
    if (password_hash)
        failed |= json_object_set_new(account, "password_hash", json_string(password_hash));
    if (failed) {
        json_decref(account);
        return OV_ENOMEM;
    }
    *out = account;
    return OV_OK;
}

json_t *ov_auth_account_view(const ov_id *id, const json_t *account)
{
    static const char *const shown[] = {"username", "role",   "display_name", "region",
                                        "school",   "person", "created",      "updated"};
    json_t *view = json_object();
    if (!view)
        return NULL;
    char text[OV_ID_CHARS + 1];
    ov_id_format(id, text);
    int failed = json_object_set_new(view, "id", json_string(text));
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        json_t *value = json_object_get(account, shown[i]);
        if (json_is_string(value))
            failed |= json_object_set(view, shown[i], value);
    }
    failed |= json_object_set_new(view, "disabled",
                                  json_boolean(json_is_true(json_object_get(account, "disabled"))));
    if (failed) {
        json_decref(view);
        return NULL;
    }
    return view;
}

/* ---- Passwords ------------------------------------------------------------------------------- */

/* A hash of 32 random bytes nobody kept, with the same parameters as real hashes, so verifying
 * against it costs exactly what a real verification costs and never succeeds. */
static const char dummy_hash[] = "$argon2id$v=19$m=19456,t=2,p=1$pad+M4uv9mqGDU+EZGJ1BA$"
                                 "uBxwMPyqGsKiox4yhzPRSvNxIurIrqfIqCVn6R5jRBM";

const char *ov_auth_dummy_hash(void)
{
    return dummy_hash;
}

int ov_auth_hash_password(const char *password, size_t len, char out[OV_AUTH_HASH_MAX])
{
    if (len > OV_AUTH_PASSWORD_MAX)
        return OV_EINVAL;
    uint8_t salt[16];
    if (ov_random(salt, sizeof salt) != OV_OK)
        return OV_EIO;
    int rc = argon2id_hash_encoded(OV_AUTH_ARGON2_T, OV_AUTH_ARGON2_M, OV_AUTH_ARGON2_P, password,
                                   len, salt, sizeof salt, 32, out, OV_AUTH_HASH_MAX);
    return rc == ARGON2_OK ? OV_OK : OV_ECRYPTO;
}

int ov_auth_verify_password(const char *encoded, const char *password, size_t len)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0 || len > OV_AUTH_PASSWORD_MAX)
        return OV_EAUTH;
    return argon2id_verify(encoded, password, len) == ARGON2_OK ? OV_OK : OV_EAUTH;
}

/* ---- Asynchronous sign-in -------------------------------------------------------------------- */

typedef struct {
    uv_work_t work;
    char hash[OV_AUTH_HASH_MAX]; /* the account's hash, or the dummy */
    char password[OV_AUTH_PASSWORD_MAX];
    size_t password_len;
    int usable; /* the account exists, is enabled and has a well-formed hash */
    int result;
    ov_id account_id;
    json_t *account;
    ov_auth_login_cb cb;
    void *arg;
} login_job;

static void on_login_work(uv_work_t *work)
{
    login_job *job = work->data;
    /* Always one full verification, whatever the account's state, so timing tells nothing. */
    int rc = ov_auth_verify_password(job->hash, job->password, job->password_len);
    explicit_bzero(job->password, sizeof job->password);
    job->result = rc == OV_OK && job->usable ? OV_OK : OV_EAUTH;
}

static void on_login_done(uv_work_t *work, int status)
{
    login_job *job = work->data;
    if (status != 0)
        job->result = OV_ESHUTDOWN;
    explicit_bzero(job->password, sizeof job->password);
    job->cb(job->arg, job->result, job->result == OV_OK ? &job->account_id : NULL,
            job->result == OV_OK ? job->account : NULL);
    json_decref(job->account);
    free(job);
}

int ov_auth_login_start(uv_loop_t *loop, ov_store *store, const char *username,
                        const char *password, size_t password_len, ov_auth_login_cb cb, void *arg)
{
    if (!loop || !store || !username || !password || !cb)
        return OV_EINVAL;
    if (password_len > OV_AUTH_PASSWORD_MAX)
        return OV_EINVAL;
    login_job *job = calloc(1, sizeof *job);
    if (!job)
        return OV_ENOMEM;
    memcpy(job->password, password, password_len);
    job->password_len = password_len;
    job->cb = cb;
    job->arg = arg;
    memcpy(job->hash, dummy_hash, sizeof dummy_hash);

    /* Usernames are stored in lower case; "Jan" signs in as "jan". */
    char name[OV_AUTH_USERNAME_MAX + 1];
    size_t len = strlen(username);
    int rc = OV_OK;
    if (len <= OV_AUTH_USERNAME_MAX) {
        for (size_t i = 0; i <= len; i++)
            name[i] = (char)tolower((unsigned char)username[i]);
        ov_read *read = NULL;
        rc = ov_read_begin(store, &read);
        if (rc == OV_OK && ov_auth_username_valid(name, len)) {
            rc = ov_read_account_by_name(read, name, &job->account_id, &job->account);
            if (rc == OV_ENOTFOUND)
                rc = OV_OK;
        }
        if (read)
            ov_read_end(read);
    }
    if (rc != OV_OK) {
        explicit_bzero(job->password, sizeof job->password);
        free(job);
        return rc;
    }
    if (job->account) {
        ov_principal who;
        const char *hash = json_string_value(json_object_get(job->account, "password_hash"));
        if (ov_auth_principal_from_account(&job->account_id, job->account, &who) == OV_OK && hash &&
            strlen(hash) < sizeof job->hash && strncmp(hash, "$argon2id$", 10) == 0) {
            memcpy(job->hash, hash, strlen(hash) + 1);
            job->usable = 1;
        }
    }
    job->work.data = job;
    rc = uv_queue_work(loop, &job->work, on_login_work, on_login_done);
    if (rc != 0) {
        explicit_bzero(job->password, sizeof job->password);
        json_decref(job->account);
        free(job);
        return OV_ENOMEM;
    }
    return OV_OK;
}

typedef struct {
    uv_work_t work;
    int verify; /* check current against current_hash first */
    char current_hash[OV_AUTH_HASH_MAX];
    char current[OV_AUTH_PASSWORD_MAX];
    size_t current_len;
    char fresh[OV_AUTH_PASSWORD_MAX];
    size_t fresh_len;
    char new_hash[OV_AUTH_HASH_MAX];
    int result;
    ov_auth_password_cb cb;
    void *arg;
} password_job;

static void wipe_password_job(password_job *job)
{
    explicit_bzero(job->current, sizeof job->current);
    explicit_bzero(job->fresh, sizeof job->fresh);
}

static void on_password_work(uv_work_t *work)
{
    password_job *job = work->data;
    job->result = OV_OK;
    if (job->verify)
        job->result = ov_auth_verify_password(job->current_hash, job->current, job->current_len);
    if (job->result == OV_OK)
        job->result = ov_auth_hash_password(job->fresh, job->fresh_len, job->new_hash);
    wipe_password_job(job);
}

static void on_password_done(uv_work_t *work, int status)
{
    password_job *job = work->data;
    if (status != 0)
        job->result = OV_ESHUTDOWN;
    wipe_password_job(job);
    job->cb(job->arg, job->result, job->result == OV_OK ? job->new_hash : NULL);
    free(job);
}

int ov_auth_password_start(uv_loop_t *loop, const char *current_hash, const char *current_password,
                           const char *new_password, ov_auth_password_cb cb, void *arg)
{
    if (!loop || !new_password || !cb || (current_hash && !current_password))
        return OV_EINVAL;
    size_t fresh_len = strlen(new_password);
    size_t current_len = current_password ? strlen(current_password) : 0;
    if (fresh_len > OV_AUTH_PASSWORD_MAX || current_len > OV_AUTH_PASSWORD_MAX)
        return OV_EINVAL;
    password_job *job = calloc(1, sizeof *job);
    if (!job)
        return OV_ENOMEM;
    if (current_hash) {
        job->verify = 1;
        /* A hash too long to be ours can never verify: keep it empty, verification fails. */
        if (strlen(current_hash) < sizeof job->current_hash)
            memcpy(job->current_hash, current_hash, strlen(current_hash) + 1);
        memcpy(job->current, current_password, current_len);
        job->current_len = current_len;
    }
    memcpy(job->fresh, new_password, fresh_len);
    job->fresh_len = fresh_len;
    job->cb = cb;
    job->arg = arg;
    job->work.data = job;
    if (uv_queue_work(loop, &job->work, on_password_work, on_password_done) != 0) {
        wipe_password_job(job);
        free(job);
        return OV_ENOMEM;
    }
    return OV_OK;
}

/* ---- Node state ------------------------------------------------------------------------------ */

struct ov_auth {
    ov_ratelimit *limits;
    unsigned in_flight;
};

int ov_auth_new(ov_auth **out)
{
    ov_auth *auth = calloc(1, sizeof *auth);
    if (!auth)
        return OV_ENOMEM;
    int rc = ov_ratelimit_new(OV_RATELIMIT_DEFAULT_KEYS, &auth->limits);
    if (rc != OV_OK) {
        free(auth);
        return rc;
    }
    *out = auth;
    return OV_OK;
}

void ov_auth_free(ov_auth *auth)
{
    if (!auth)
        return;
    ov_ratelimit_free(auth->limits);
    free(auth);
}

static unsigned to_seconds(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : (unsigned)s;
}

int ov_auth_login_admit(ov_auth *auth, const char *username, const char *peer, uint64_t now_ms,
                        unsigned *retry_after_s)
{
    char key[OV_RATELIMIT_KEY_MAX + 1];
    uint64_t wait = 0;
    snprintf(key, sizeof key, "ip:%s", peer ? peer : "?");
    int rc = ov_ratelimit_take(auth->limits, key, OV_AUTH_LOGINS_PER_ADDRESS,
                               OV_AUTH_LOGIN_WINDOW_MS, now_ms, &wait);
    if (rc == OV_OK) {
        /* Long names are hashed into the key by the limiter; build the whole key first. */
        size_t len = strlen(username);
        char *user_key = malloc(len + 6);
        if (!user_key)
            return OV_ENOMEM;
        memcpy(user_key, "user:", 5);
        for (size_t i = 0; i <= len; i++)
            user_key[5 + i] = (char)tolower((unsigned char)username[i]);
        rc = ov_ratelimit_take(auth->limits, user_key, OV_AUTH_LOGINS_PER_USER,
                               OV_AUTH_LOGIN_WINDOW_MS, now_ms, &wait);
        free(user_key);
    }
    if (rc == OV_ELIMIT && retry_after_s)
        *retry_after_s = to_seconds(wait);
    return rc;
}

int ov_auth_login_reserve(ov_auth *auth)
{
    if (auth->in_flight >= OV_AUTH_LOGINS_IN_FLIGHT)
        return OV_ELIMIT;
    auth->in_flight++;
    return OV_OK;
}

void ov_auth_login_release(ov_auth *auth)
{
    if (auth->in_flight > 0)
        auth->in_flight--;
}
