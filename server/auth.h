/*
 * Accounts, roles, passwords and the role rules of the node. No HTTP here: session_api.c speaks
 * HTTP and calls these; api.c asks the policy functions before every read of a draft and every
 * write. docs/roles.md has the rules as a table.
 *
 * Roles: an anonymous reader (no session) reads published records only; a brigadier keeps their
 * own person record (profile), writes their own visit notes (as drafts) and takes up help
 * requests; a school editor writes the cases, lessons and help requests of their school and the
 * school's own record, always as drafts, and reads the draft visit notes about their school; a
 * moderator reviews (publishes) and writes every record of their region except region records,
 * and publishes visit notes without rewriting them; an admin may do everything.
 *
 * Account JSON, as stored by server/store.h (OV_WRITE_ACCOUNT_PUT) under a random ov_id:
 *   username       3–64 of [a-z0-9._-], unique on the node
 *   password_hash  argon2id PHC string ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash")
 *   role           "brigadier" | "school-editor" | "moderator" | "admin"
 *   region         ov_id text, exactly for moderators (the region they moderate)
 *   school         ov_id text, exactly for school editors
 *   person         ov_id text, exactly for brigadiers (their profile record)
 *   display_name   optional, 1–100 bytes
 *   disabled       optional bool; a disabled account cannot sign in and its sessions stop working
 *   created        RFC 3339 time; updated likewise after a change
 * The stored member is "password_hash", not "password", so a clear password sent by a client
 * can never be mistaken for a hash (the demo loader writes the same member).
 *
 * Passwords are argon2id with t=2, m=19 MiB, p=1 (the OWASP minimum); on the 2-vCPU build machine
 * one hash costs ~31 ms and one verification ~22 ms of one core. They therefore never run on the
 * event loop: the *_start functions run them on libuv's thread pool and call back on the loop.
 */
#ifndef OV_AUTH_H
#define OV_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/id.h"
#include "proto/record.h"
#include "server/store.h"

/* ---- Roles and principals ---------------------------------------------------------------- */

typedef enum {
    OV_ROLE_ANONYMOUS,
    OV_ROLE_BRIGADIER,
    OV_ROLE_SCHOOL_EDITOR,
    OV_ROLE_MODERATOR,
    OV_ROLE_ADMIN,
    OV_ROLE_COUNT
} ov_role;

/* "anonymous", "brigadier", "school-editor", "moderator", "admin"; "?" for other values. */
const char *ov_role_name(ov_role role);
/* Parses a stored role (anonymous is not one). OV_OK or OV_EINVAL. */
int ov_role_parse(const char *name, size_t len, ov_role *out);

#define OV_AUTH_USERNAME_MIN 3
#define OV_AUTH_USERNAME_MAX 64
#define OV_AUTH_PASSWORD_MIN 10
#define OV_AUTH_PASSWORD_MAX 256
#define OV_AUTH_DISPLAY_MAX  100
/* Room for an encoded hash of our parameters (97 bytes) with margin. */
#define OV_AUTH_HASH_MAX 128

/* Who is asking. Ids that the role does not use are zero. An anonymous principal is all zero
 * (role OV_ROLE_ANONYMOUS == 0), so memset(0) makes one. */
typedef struct {
    ov_role role;
    ov_id account;
    char username[OV_AUTH_USERNAME_MAX + 1];
    ov_id region; /* moderator */
    ov_id school; /* school editor */
    ov_id person; /* brigadier */
} ov_principal;

/* Fills *out from a stored account. Errors: OV_EDENIED (the account is disabled; *out is then
 * still filled, with the role), OV_ESCHEMA (a member is missing or malformed). */
int ov_auth_principal_from_account(const ov_id *id, const json_t *account, ov_principal *out);

/* ---- Policy ------------------------------------------------------------------------------ */

/* What the API knows about a record when it asks: its region (for lessons and requests the
 * region of their school), the schools it belongs to (a school record: its own id), the person
 * it is about (a person record: its own id; a visit note: the brigadier who wrote it) and the
 * account that wrote its current version.
 * Zero ids mean unknown/none. */
#define OV_SCOPE_MAX_SCHOOLS 16
typedef struct {
    ov_id region;
    ov_id schools[OV_SCOPE_MAX_SCHOOLS];
    int school_count;
    ov_id person;
    ov_id author;
} ov_record_scope;

typedef enum {
    OV_AUTH_CREATE,
    OV_AUTH_REPLACE,
    OV_AUTH_DELETE,
    OV_AUTH_PUBLISH, /* status → published, or back to draft */
    OV_AUTH_TAKE,    /* a brigadier takes up a help request */
    OV_AUTH_ACTION_COUNT
} ov_auth_action;

/* "create", "replace", "delete", "publish", "take". */
const char *ov_auth_action_name(ov_auth_action action);

/* May p read a record of kind in status? Published records and tombstones are public. Returns
 * OV_OK, OV_EAUTH (anonymous, a draft: sign in first) or OV_EDENIED. */
int ov_auth_can_read(const ov_principal *p, ov_kind kind, ov_status status,
                     const ov_record_scope *scope);

/* May p perform action on a record of kind described by scope, leaving it in requested_status?
 * For create and replace, requested_status is the status the record will have: published needs
 * the right to publish in the record's region; the API passes draft when a change keeps the
 * status the record already has. For publish, it is the new status (published or draft): both
 * need the right to publish. For delete and take it is not consulted (neither changes who may
 * see the record); "deleted" is never a requested status (OV_EDENIED). Returns OV_OK, OV_EAUTH
 * (anonymous) or OV_EDENIED. Pure: reads only its arguments. */
int ov_auth_can_write(const ov_principal *p, ov_auth_action action, ov_kind kind,
                      const ov_record_scope *scope, ov_status requested_status);

/* ---- Accounts ---------------------------------------------------------------------------- */

typedef enum {
    OV_ACCOUNT_INPUT_CREATE,  /* admin creates: username, password, role (+ ids) required */
    OV_ACCOUNT_INPUT_REPLACE, /* admin replaces: as create, but the password is optional */
} ov_account_input;

/* Checks an account sent by a client: the members above with "password" (clear text,
 * OV_AUTH_PASSWORD_MIN–MAX bytes) instead of "password_hash"; "id", "created" and "updated" are
 * tolerated and ignored (a client may send back what it read). Every problem is added to errs
 * (Dutch and English). Returns OV_OK or OV_ESCHEMA. Does not check that the ids exist. */
int ov_auth_account_check(const json_t *input, ov_account_input mode, ov_field_errors *errs);

/* True when username is 3–64 bytes of [a-z0-9._-]. */
int ov_auth_username_valid(const char *username, size_t len);

/* The stored form of a checked input: its members without "password", "id", "created",
 * "updated", with "password_hash" = password_hash (may be NULL to leave it out), "created" =
 * created_ms and, when updated_ms > 0, "updated". New reference in *out (caller decrefs).
 * Errors: OV_ENOMEM. */
int ov_auth_account_build(const json_t *input, const char *password_hash, int64_t created_ms,
                          int64_t updated_ms, json_t **out);

/* What a client may see of an account: id, username, role, display_name, region, school, person,
 * disabled, created, updated — never the hash. New reference (caller decrefs), NULL on OOM. */
json_t *ov_auth_account_view(const ov_id *id, const json_t *account);

/* ---- Passwords --------------------------------------------------------------------------- */

#define OV_AUTH_ARGON2_T 2
#define OV_AUTH_ARGON2_M 19456 /* KiB */
#define OV_AUTH_ARGON2_P 1

/* Hashes password with a fresh random salt into out (NUL-terminated PHC string). Blocks for
 * ~30 ms: for command-line tools and tests; on the loop use ov_auth_password_start. Errors:
 * OV_EINVAL (longer than OV_AUTH_PASSWORD_MAX), OV_EIO (randomness), OV_ECRYPTO. */
int ov_auth_hash_password(const char *password, size_t len, char out[OV_AUTH_HASH_MAX]);

/* Checks password against an encoded hash. OV_OK, or OV_EAUTH when it does not match or the hash
 * is malformed or not argon2id. Blocks like ov_auth_hash_password. */
int ov_auth_verify_password(const char *encoded, const char *password, size_t len);

/* The hash every unknown username is verified against, so a login for a name that does not exist
 * costs as much as one with a wrong password (no enumeration by timing). Static string. */
const char *ov_auth_dummy_hash(void);

/* Completion of ov_auth_login_start, on the loop thread. result: OV_OK (account_id and account,
 * both borrowed for the duration of the call, name the signed-in account), OV_EAUTH (unknown
 * user, wrong password or disabled account: deliberately indistinguishable), OV_ENOMEM,
 * OV_ESTORE. */
typedef void (*ov_auth_login_cb)(void *arg, int result, const ov_id *account_id,
                                 const json_t *account);

/* Looks the account up (a read snapshot on the calling thread, cheap), verifies the password on
 * the thread pool (an unknown user against the dummy hash) and calls cb on loop. Username and
 * password are copied. Returns OV_OK (cb will be called exactly once), OV_EINVAL (a password
 * longer than OV_AUTH_PASSWORD_MAX) or OV_ENOMEM (cb not called). store must outlive the call. */
int ov_auth_login_start(uv_loop_t *loop, ov_store *store, const char *username,
                        const char *password, size_t password_len, ov_auth_login_cb cb, void *arg);

/* Completion of ov_auth_password_start. result: OV_OK with new_hash (borrowed for the call),
 * OV_EAUTH (current_password did not match current_hash), OV_EIO, OV_ECRYPTO, OV_ENOMEM. */
typedef void (*ov_auth_password_cb)(void *arg, int result, const char *new_hash);

/* On the thread pool: if current_hash is not NULL, verifies current_password against it; then
 * hashes new_password. Strings are copied. Returns OV_OK (cb follows on loop), OV_EINVAL (a
 * password over OV_AUTH_PASSWORD_MAX) or OV_ENOMEM. */
int ov_auth_password_start(uv_loop_t *loop, const char *current_hash, const char *current_password,
                           const char *new_password, ov_auth_password_cb cb, void *arg);

/* ---- The node's auth state --------------------------------------------------------------- */

/* Per-node state of sign-in: the login rate limits (ratelimit.h) and a cap on logins waiting for
 * the thread pool. Loop thread only. */
struct ov_auth;
typedef struct ov_auth ov_auth;

/* *out owned by the caller (ov_auth_free). Errors: OV_ENOMEM. */
int ov_auth_new(ov_auth **out);
/* Frees the state; no login may be in flight (call after the loop has run dry). NULL is fine. */
void ov_auth_free(ov_auth *auth);

/* Login attempts: 10 per minute per username, 30 per minute per peer address. */
#define OV_AUTH_LOGINS_PER_USER    10
#define OV_AUTH_LOGINS_PER_ADDRESS 30
#define OV_AUTH_LOGIN_WINDOW_MS    60000
/* Logins whose password check has not finished yet; more are answered 503. */
#define OV_AUTH_LOGINS_IN_FLIGHT 64

/* Counts one login attempt for username (compared in lower case) from peer at now_ms. OV_OK, or
 * OV_ELIMIT with *retry_after_s (≥ 1) set. */
int ov_auth_login_admit(ov_auth *auth, const char *username, const char *peer, uint64_t now_ms,
                        unsigned *retry_after_s);

/* Reserves a slot for a login in flight: OV_OK or OV_ELIMIT (too many). Release it when the
 * login's callback ran. */
int ov_auth_login_reserve(ov_auth *auth);
void ov_auth_login_release(ov_auth *auth);

#endif
