/*
 * Auth tests. The role rules are checked cell by cell against a written-out table of every
 * role × action × kind × (own / other school in the same region / other region) with the answer
 * a user would get, for a draft and for a published result; reads of drafts likewise. Then
 * accounts (input checks in both languages, stored and shown forms), passwords (argon2id
 * parameters, verification, the dummy hash), the asynchronous sign-in against a real store on a
 * real uv loop (right, wrong, unknown, disabled, case of the name, comparable timing, callback on
 * the loop thread) and the login limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/crypto.h"
#include "proto/error.h"
#include "server/auth.h"

/* ---- Fixture ids ----------------------------------------------------------------------------- */

static ov_id make_id(int n)
{
    ov_id id;
    memset(&id, 0, sizeof id);
    id.bytes[0] = 0x01;
    id.bytes[15] = (uint8_t)n;
    return id;
}

enum { R1 = 1, R2, S1, S2, S3, P1, P2, P3, ACCOUNT_SELF, ACCOUNT_OTHER };

static ov_principal principal(ov_role role)
{
    ov_principal p;
    memset(&p, 0, sizeof p);
    p.role = role;
    if (role == OV_ROLE_ANONYMOUS)
        return p;
    p.account = make_id(ACCOUNT_SELF);
    strcpy(p.username, ov_role_name(role));
    if (role == OV_ROLE_BRIGADIER)
        p.person = make_id(P1);
    if (role == OV_ROLE_SCHOOL_EDITOR)
        p.school = make_id(S1);
    if (role == OV_ROLE_MODERATOR)
        p.region = make_id(R1);
    return p;
}

/* Where a record is, seen from the principals above: 0 = their own (region R1, school S1, the
 * brigadier's person P1: their profile, or a visit note they wrote), 1 = another school (S2, person
 * P2) in the same region R1, 2 = another region (R2, school S3, person P3). Written by someone
 * else. */
static ov_record_scope scope_at(ov_kind kind, int where)
{
    static const int schools[] = {S1, S2, S3}, regions[] = {R1, R1, R2}, people[] = {P1, P2, P3};
    ov_record_scope s;
    memset(&s, 0, sizeof s);
    s.region = make_id(regions[where]);
    s.author = make_id(ACCOUNT_OTHER);
    if (kind != OV_KIND_REGION) {
        s.schools[0] = make_id(schools[where]);
        s.school_count = 1;
    }
    if (kind == OV_KIND_PERSON || kind == OV_KIND_VISIT) /* a visit: its brigadier */
        s.person = make_id(people[where]);
    return s;
}

/* ---- The role table -------------------------------------------------------------------------- */

/* Per role and action: seven groups (region school person case lesson request visit) of three cells
 * (own, other school same region, other region). y = allowed, also into the published state;
 * d = allowed only as a draft (asking for published is denied); n = denied; a = sign in first. */
static const char *const write_table[OV_ROLE_COUNT][OV_AUTH_ACTION_COUNT] = {
    [OV_ROLE_ANONYMOUS] = {
        /* create  */ "aaa aaa aaa aaa aaa aaa aaa",
        /* replace */ "aaa aaa aaa aaa aaa aaa aaa",
        /* delete  */ "aaa aaa aaa aaa aaa aaa aaa",
        /* publish */ "aaa aaa aaa aaa aaa aaa aaa",
        /* take    */ "aaa aaa aaa aaa aaa aaa aaa",
    },
    [OV_ROLE_BRIGADIER] = {
        /* create  */ "nnn nnn nnn nnn nnn nnn dnn",
        /* replace */ "nnn nnn dnn nnn nnn nnn dnn",
        /* delete  */ "nnn nnn nnn nnn nnn nnn ynn",
        /* publish */ "nnn nnn nnn nnn nnn nnn nnn",
        /* take    */ "nnn nnn nnn nnn nnn yyy nnn",
    },
    [OV_ROLE_SCHOOL_EDITOR] = {
        /* create  */ "nnn nnn nnn dnn dnn dnn nnn",
        /* replace */ "nnn dnn nnn dnn dnn dnn nnn",
        /* delete  */ "nnn nnn nnn ynn ynn ynn nnn",
        /* publish */ "nnn nnn nnn nnn nnn nnn nnn",
        /* take    */ "nnn nnn nnn nnn nnn nnn nnn",
    },
    [OV_ROLE_MODERATOR] = {
        /* create  */ "nnn yyn yyn yyn yyn yyn nnn",
        /* replace */ "nnn yyn yyn yyn yyn yyn nnn",
        /* delete  */ "nnn yyn yyn yyn yyn yyn nnn",
        /* publish */ "nnn yyn yyn yyn yyn yyn yyn",
        /* take    */ "nnn nnn nnn nnn nnn nnn nnn",
    },
    [OV_ROLE_ADMIN] = {
        /* create  */ "yyy yyy yyy yyy yyy yyy yyy",
        /* replace */ "yyy yyy yyy yyy yyy yyy yyy",
        /* delete  */ "yyy yyy yyy yyy yyy yyy yyy",
        /* publish */ "yyy yyy yyy yyy yyy yyy yyy",
        /* take    */ "yyy yyy yyy yyy yyy yyy yyy",
    },
};

/* Reading a draft someone else wrote: r = visible, n = denied, a = sign in first. */
static const char *const read_table[OV_ROLE_COUNT] = {
    [OV_ROLE_ANONYMOUS] = "aaa aaa aaa aaa aaa aaa aaa",
    [OV_ROLE_BRIGADIER] = "nnn nnn rnn nnn nnn nnn rnn",
    [OV_ROLE_SCHOOL_EDITOR] = "nnn rnn nnn rnn rnn rnn rnn",
    [OV_ROLE_MODERATOR] = "nnn rrn rrn rrn rrn rrn rrn",
    [OV_ROLE_ADMIN] = "rrr rrr rrr rrr rrr rrr rrr",
};

static char cell(const char *row, ov_kind kind, int where)
{
    return row[(int)kind * 4 + where];
}

static int answer_for(char c, ov_auth_action action, ov_status status)
{
    switch (c) {
    case 'a':
        return OV_EAUTH;
    case 'n':
        return OV_EDENIED;
    case 'd':
        return status == OV_STATUS_DRAFT ? OV_OK : OV_EDENIED;
    default:
        return OV_OK;
    }
}

static void every_write_cell_matches_the_table(void **state)
{
    int checked = 0, failures = 0;
    for (int r = 0; r < OV_ROLE_COUNT; r++) {
        ov_principal p = principal((ov_role)r);
        for (int a = 0; a < OV_AUTH_ACTION_COUNT; a++) {
            for (int k = 0; k < OV_KIND_COUNT; k++) {
                for (int where = 0; where < 3; where++) {
                    ov_record_scope scope = scope_at((ov_kind)k, where);
                    char c = cell(write_table[r][a], (ov_kind)k, where);
                    for (int s = OV_STATUS_DRAFT; s <= OV_STATUS_PUBLISHED; s++) {
                        int want = answer_for(c, (ov_auth_action)a, (ov_status)s);
                        int got = ov_auth_can_write(&p, (ov_auth_action)a, (ov_kind)k, &scope,
                                                    (ov_status)s);
                        checked++;
                        if (got != want) {
                            failures++;
                            print_error(
                                "%s %s %s at %d as %s: want %s, got %s\n", ov_role_name((ov_role)r),
                                ov_auth_action_name((ov_auth_action)a), ov_kind_name((ov_kind)k),
                                where, ov_status_name((ov_status)s), ov_error_name(want),
                                ov_error_name(got));
                        }
                    }
                }
            }
        }
    }
    assert_int_equal(checked, OV_ROLE_COUNT * OV_AUTH_ACTION_COUNT * OV_KIND_COUNT * 3 * 2);
    assert_int_equal(failures, 0);
}

static void every_draft_read_matches_the_table(void **state)
{
    int failures = 0;
    for (int r = 0; r < OV_ROLE_COUNT; r++) {
        ov_principal p = principal((ov_role)r);
        for (int k = 0; k < OV_KIND_COUNT; k++) {
            for (int where = 0; where < 3; where++) {
                ov_record_scope scope = scope_at((ov_kind)k, where);
                char c = cell(read_table[r], (ov_kind)k, where);
                int want = c == 'a' ? OV_EAUTH : c == 'n' ? OV_EDENIED : OV_OK;
                int got = ov_auth_can_read(&p, (ov_kind)k, OV_STATUS_DRAFT, &scope);
                if (got != want) {
                    failures++;
                    print_error("read %s %s at %d: want %s, got %s\n", ov_role_name((ov_role)r),
                                ov_kind_name((ov_kind)k), where, ov_error_name(want),
                                ov_error_name(got));
                }
                /* Published records and tombstones are public, whoever asks. */
                assert_int_equal(ov_auth_can_read(&p, (ov_kind)k, OV_STATUS_PUBLISHED, &scope),
                                 OV_OK);
                assert_int_equal(ov_auth_can_read(&p, (ov_kind)k, OV_STATUS_DELETED, &scope),
                                 OV_OK);
            }
        }
    }
    assert_int_equal(failures, 0);
}

static void authors_read_their_own_drafts_anywhere(void **state)
{
    for (int r = OV_ROLE_BRIGADIER; r < OV_ROLE_COUNT; r++) {
        ov_principal p = principal((ov_role)r);
        ov_record_scope scope = scope_at(OV_KIND_CASE, 2);
        scope.author = p.account;
        assert_int_equal(ov_auth_can_read(&p, OV_KIND_CASE, OV_STATUS_DRAFT, &scope), OV_OK);
        /* Authorship is not a right to change it. */
        if (r != OV_ROLE_ADMIN)
            assert_int_equal(
                ov_auth_can_write(&p, OV_AUTH_REPLACE, OV_KIND_CASE, &scope, OV_STATUS_DRAFT),
                OV_EDENIED);
    }
    /* A zero author never matches a principal without an account. */
    ov_principal anonymous = principal(OV_ROLE_ANONYMOUS);
    ov_record_scope scope;
    memset(&scope, 0, sizeof scope);
    assert_int_equal(ov_auth_can_read(&anonymous, OV_KIND_CASE, OV_STATUS_DRAFT, &scope), OV_EAUTH);
}

static void editors_of_either_school_share_a_case(void **state)
{
    ov_principal editor = principal(OV_ROLE_SCHOOL_EDITOR);
    ov_record_scope scope = scope_at(OV_KIND_CASE, 2);
    scope.schools[1] = make_id(S1); /* a case of S3 (other region) and S1 */
    scope.school_count = 2;
    assert_int_equal(
        ov_auth_can_write(&editor, OV_AUTH_REPLACE, OV_KIND_CASE, &scope, OV_STATUS_DRAFT), OV_OK);
    /* A school count beyond the array is not trusted past its end. */
    scope.school_count = 1000;
    assert_int_equal(
        ov_auth_can_write(&editor, OV_AUTH_REPLACE, OV_KIND_CASE, &scope, OV_STATUS_DRAFT), OV_OK);
}

static void nothing_is_granted_to_unknown_places(void **state)
{
    /* A moderator whose region is unknown, and records whose region is unknown, match nothing. */
    ov_principal moderator = principal(OV_ROLE_MODERATOR);
    ov_record_scope unknown;
    memset(&unknown, 0, sizeof unknown);
    assert_int_equal(
        ov_auth_can_write(&moderator, OV_AUTH_CREATE, OV_KIND_CASE, &unknown, OV_STATUS_DRAFT),
        OV_EDENIED);
    memset(&moderator.region, 0, sizeof moderator.region);
    assert_int_equal(
        ov_auth_can_write(&moderator, OV_AUTH_CREATE, OV_KIND_CASE, &unknown, OV_STATUS_DRAFT),
        OV_EDENIED);
    ov_principal brigadier = principal(OV_ROLE_BRIGADIER);
    memset(&brigadier.person, 0, sizeof brigadier.person);
    assert_int_equal(
        ov_auth_can_write(&brigadier, OV_AUTH_REPLACE, OV_KIND_PERSON, &unknown, OV_STATUS_DRAFT),
        OV_EDENIED);
    /* "deleted" is never asked for through create, replace or publish. */
    ov_principal admin = principal(OV_ROLE_ADMIN);
    ov_record_scope own = scope_at(OV_KIND_CASE, 0);
    assert_int_equal(
        ov_auth_can_write(&admin, OV_AUTH_REPLACE, OV_KIND_CASE, &own, OV_STATUS_DELETED),
        OV_EDENIED);
    assert_int_equal(
        ov_auth_can_write(&admin, OV_AUTH_PUBLISH, OV_KIND_CASE, &own, OV_STATUS_DELETED),
        OV_EDENIED);
    /* Out-of-range values from a confused caller are denied, not trusted. */
    assert_int_equal(
        ov_auth_can_write(&admin, (ov_auth_action)99, OV_KIND_CASE, &own, OV_STATUS_DRAFT),
        OV_EDENIED);
    assert_int_equal(ov_auth_can_write(&admin, OV_AUTH_CREATE, (ov_kind)99, &own, OV_STATUS_DRAFT),
                     OV_EDENIED);
    admin.role = (ov_role)42;
    assert_int_equal(ov_auth_can_write(&admin, OV_AUTH_CREATE, OV_KIND_CASE, &own, OV_STATUS_DRAFT),
                     OV_EDENIED);
    assert_int_equal(ov_auth_can_read(&admin, OV_KIND_CASE, OV_STATUS_DRAFT, &own), OV_EDENIED);
}

static void role_names_round_trip(void **state)
{
    const char *names[] = {"brigadier", "school-editor", "moderator", "admin"};
    for (int i = 0; i < 4; i++) {
        ov_role role;
        assert_int_equal(ov_role_parse(names[i], strlen(names[i]), &role), OV_OK);
        assert_string_equal(ov_role_name(role), names[i]);
    }
    ov_role role;
    assert_int_equal(ov_role_parse("anonymous", 9, &role), OV_EINVAL);
    assert_int_equal(ov_role_parse("Admin", 5, &role), OV_EINVAL);
    assert_int_equal(ov_role_parse("admi", 4, &role), OV_EINVAL);
    assert_string_equal(ov_role_name(OV_ROLE_ANONYMOUS), "anonymous");
    assert_string_equal(ov_role_name((ov_role)17), "?");
}

/* ---- Accounts -------------------------------------------------------------------------------- */

static const char *id_text(int n)
{
    static char text[8][OV_ID_CHARS + 1];
    static int next;
    char *out = text[next++ % 8];
    ov_id id = make_id(n);
    ov_id_format(&id, out);
    return out;
}

static int has_error(const ov_field_errors *errs, const char *field, const char *english_part)
{
    for (int i = 0; i < errs->count; i++)
        if (strcmp(errs->items[i].field, field) == 0 &&
            strstr(errs->items[i].message_en, english_part) && errs->items[i].message_nl[0])
            return 1;
    return 0;
}

static void valid_accounts_pass(void **state)
{
    json_t *inputs[] = {
        json_pack("{s:s, s:s, s:s}", "username", "admin.2", "password", "correct horse battery",
                  "role", "admin"),
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "username", "moderator-nk", "password", "0123456789",
                  "role", "moderator", "region", id_text(R1), "display_name",
                  "Moderator Noord-Kennemerland"),
        json_pack("{s:s, s:s, s:s, s:s, s:b}", "username", "murmellius", "password", "éééééééééé",
                  "role", "school-editor", "school", id_text(S1), "disabled", 1),
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "username", "joost_t", "password",
                  "een lang wachtwoord", "role", "brigadier", "person", id_text(P1), "id",
                  "whatever the client read"),
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        int rc = ov_auth_account_check(inputs[i], OV_ACCOUNT_INPUT_CREATE, &errs);
        if (rc != OV_OK)
            print_error("input %zu: %s: %s\n", i, errs.items[0].field, errs.items[0].message_en);
        assert_int_equal(rc, OV_OK);
        assert_int_equal(errs.count, 0);
        json_decref(inputs[i]);
    }
}

static void bad_accounts_name_every_problem(void **state)
{
    char long_password[300];
    memset(long_password, 'x', sizeof long_password - 1);
    long_password[sizeof long_password - 1] = 0;
    json_t *input =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "username", "Jan Smit", "password",
                  "kort", "role", "moderator", "school", id_text(S1), "disabled", 1, "display_name",
                  "", "person", "not-an-id", "colour", "blue");
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs), OV_ESCHEMA);
    assert_true(has_error(&errs, "username", "lower-case"));
    assert_true(has_error(&errs, "password", "at least 10"));
    assert_true(has_error(&errs, "region", "required for this role"));
    assert_true(has_error(&errs, "school", "does not belong to this role"));
    assert_true(has_error(&errs, "person", "valid id"));
    assert_true(has_error(&errs, "disabled", "true or false"));
    assert_true(has_error(&errs, "display_name", "1 to 100"));
    assert_true(has_error(&errs, "colour", "not a member"));
    assert_int_equal(errs.count, 8);
    json_decref(input);

    input = json_pack("{s:s, s:s, s:s}", "username", "ab", "password", long_password, "role",
                      "superuser");
    ov_field_errors_init(&errs);
    assert_int_equal(ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs), OV_ESCHEMA);
    assert_true(has_error(&errs, "username", "3 to 64"));
    assert_true(has_error(&errs, "password", "longer than 256"));
    assert_true(has_error(&errs, "role", "must be brigadier"));
    assert_int_equal(errs.count, 3);
    json_decref(input);

    /* Missing members; a replacement may leave the password out, a creation may not. */
    input = json_object();
    ov_field_errors_init(&errs);
    assert_int_equal(ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs), OV_ESCHEMA);
    assert_true(has_error(&errs, "username", "required"));
    assert_true(has_error(&errs, "password", "required"));
    assert_true(has_error(&errs, "role", "required"));
    ov_field_errors_init(&errs);
    assert_int_equal(ov_auth_account_check(input, OV_ACCOUNT_INPUT_REPLACE, &errs), OV_ESCHEMA);
    assert_false(has_error(&errs, "password", "required"));
    json_decref(input);

    input = json_pack("[]");
    ov_field_errors_init(&errs);
    assert_int_equal(ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs), OV_ESCHEMA);
    json_decref(input);

    assert_true(ov_auth_username_valid("a.b_c-9", 7));
    assert_false(ov_auth_username_valid("jan/../x", 8));
    assert_false(ov_auth_username_valid("jän", strlen("jän")));
    char name[70];
    memset(name, 'a', sizeof name);
    assert_true(ov_auth_username_valid(name, 64));
    assert_false(ov_auth_username_valid(name, 65));
}

static void stored_and_shown_forms(void **state)
{
    json_t *input = json_pack("{s:s, s:s, s:s, s:s, s:s}", "username", "murmellius", "password",
                              "geheim-en-lang", "role", "school-editor", "school", id_text(S1),
                              "id", id_text(ACCOUNT_SELF));
    json_t *account;
    assert_int_equal(ov_auth_account_build(input, "$argon2id$fake", 1795000000000LL, 0, &account),
                     OV_OK);
    assert_null(json_object_get(account, "password"));
    assert_null(json_object_get(account, "id"));
    assert_null(json_object_get(account, "updated"));
    assert_string_equal(json_string_value(json_object_get(account, "password_hash")),
                        "$argon2id$fake");
    assert_string_equal(json_string_value(json_object_get(account, "created")),
                        "2026-11-18T11:06:40.000Z");

    ov_id id = make_id(ACCOUNT_SELF);
    json_t *view = ov_auth_account_view(&id, account);
    assert_non_null(view);
    assert_null(json_object_get(view, "password_hash"));
    assert_null(json_object_get(view, "password"));
    assert_string_equal(json_string_value(json_object_get(view, "id")), id_text(ACCOUNT_SELF));
    assert_string_equal(json_string_value(json_object_get(view, "role")), "school-editor");
    assert_string_equal(json_string_value(json_object_get(view, "school")), id_text(S1));
    assert_true(json_is_false(json_object_get(view, "disabled")));
    json_decref(view);

    ov_principal p;
    assert_int_equal(ov_auth_principal_from_account(&id, account, &p), OV_OK);
    assert_int_equal(p.role, OV_ROLE_SCHOOL_EDITOR);
    assert_string_equal(p.username, "murmellius");
    ov_id school = make_id(S1);
    assert_int_equal(ov_id_compare(&p.school, &school), 0);
    assert_true(ov_id_is_zero(&p.region));
    assert_int_equal(ov_id_compare(&p.account, &id), 0);

    /* Disabled: known, but refused. A role without its id is not an account one can use. */
    json_object_set_new(account, "disabled", json_true());
    assert_int_equal(ov_auth_principal_from_account(&id, account, &p), OV_EDENIED);
    json_object_set_new(account, "disabled", json_false());
    json_object_del(account, "school");
    assert_int_equal(ov_auth_principal_from_account(&id, account, &p), OV_ESCHEMA);
    assert_int_equal(p.role, OV_ROLE_ANONYMOUS);
    json_object_set_new(account, "role", json_string("root"));
    assert_int_equal(ov_auth_principal_from_account(&id, account, &p), OV_ESCHEMA);
    json_decref(account);

    /* A stray region on a brigadier never gives a region reach. */
    account = json_pack("{s:s, s:s, s:s}", "username", "beheer", "role", "brigadier", "person",
                        id_text(P1));
    json_object_set_new(account, "region", json_string(id_text(R1)));
    assert_int_equal(ov_auth_principal_from_account(&id, account, &p), OV_OK);
    assert_true(ov_id_is_zero(&p.region));
    json_decref(account);
    json_decref(input);
}

/* ---- Passwords ------------------------------------------------------------------------------- */

static void hashes_are_argon2id_with_our_parameters(void **state)
{
    char hash[OV_AUTH_HASH_MAX], again[OV_AUTH_HASH_MAX];
    assert_int_equal(ov_auth_hash_password("olievlek-demo", 13, hash), OV_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "$argon2id$v=19$m=%d,t=%d,p=%d$", OV_AUTH_ARGON2_M,
             OV_AUTH_ARGON2_T, OV_AUTH_ARGON2_P);
    assert_memory_equal(hash, prefix, strlen(prefix));
    /* The dummy must cost what a real verification costs: same parameters. */
    assert_memory_equal(ov_auth_dummy_hash(), prefix, strlen(prefix));
    assert_int_equal(ov_auth_verify_password(hash, "olievlek-demo", 13), OV_OK);
    assert_int_equal(ov_auth_verify_password(hash, "olievlek-demO", 13), OV_EAUTH);
    assert_int_equal(ov_auth_verify_password(hash, "olievlek-dem", 12), OV_EAUTH);
    /* Fresh salt each time. */
    assert_int_equal(ov_auth_hash_password("olievlek-demo", 13, again), OV_OK);
    assert_string_not_equal(hash, again);
    /* Malformed or foreign hashes never verify. */
    assert_int_equal(
        ov_auth_verify_password("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x", 1),
        OV_EAUTH);
    assert_int_equal(ov_auth_verify_password("$argon2id$garbage", "x", 1), OV_EAUTH);
    assert_int_equal(ov_auth_verify_password(NULL, "x", 1), OV_EAUTH);
    assert_int_equal(ov_auth_verify_password(ov_auth_dummy_hash(), "", 0), OV_EAUTH);
    char big[OV_AUTH_PASSWORD_MAX + 1];
    memset(big, 'p', sizeof big);
    assert_int_equal(ov_auth_hash_password(big, sizeof big, hash), OV_EINVAL);
}

/* ---- Asynchronous sign-in against a real store ----------------------------------------------- */

typedef struct {
    char dir[64];
    ov_keypair *key;
    ov_store *store;
    uv_loop_t loop;
    ov_id jan, piet, ghost;
} store_fixture;

static void put_account(store_fixture *f, const ov_id *id, json_t *account)
{
    ov_write_op *op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT);
    assert_non_null(op);
    op->account_id = *id;
    op->account = account;
    assert_int_equal(ov_store_write_one(f->store, op), OV_OK);
    ov_write_op_free(op);
}

static int store_setup(void **state)
{
    store_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/ov-auth-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(ov_keypair_generate(&f->key), OV_OK);
    ov_store_options options = {f->dir, (size_t)16 << 20, f->key, 0};
    assert_int_equal(ov_store_open(&options, &f->store), OV_OK);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->jan = make_id(ACCOUNT_SELF);
    f->piet = make_id(ACCOUNT_OTHER);
    char hash[OV_AUTH_HASH_MAX];
    assert_int_equal(ov_auth_hash_password("jans-wachtwoord", 15, hash), OV_OK);
    json_t *input =
        json_pack("{s:s, s:s, s:s}", "username", "jan", "role", "moderator", "region", id_text(R1));
    json_t *account;
    assert_int_equal(ov_auth_account_build(input, hash, 1795000000000LL, 0, &account), OV_OK);
    put_account(f, &f->jan, account);
    json_decref(input);
    input = json_pack("{s:s, s:s, s:b}", "username", "piet", "role", "admin", "disabled", 1);
    assert_int_equal(ov_auth_account_build(input, hash, 1795000000000LL, 0, &account), OV_OK);
    put_account(f, &f->piet, account);
    json_decref(input);
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    store_fixture *f = *state;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ov_store_close(f->store);
    ov_keypair_free(f->key);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

typedef struct {
    int calls;
    int result;
    ov_id account;
    char username[80];
    pthread_t thread;
    char new_hash[OV_AUTH_HASH_MAX];
} outcome;

static void on_login(void *arg, int result, const ov_id *account_id, const json_t *account)
{
    outcome *o = arg;
    o->calls++;
    o->result = result;
    o->thread = pthread_self();
    if (result == OV_OK) {
        assert_non_null(account_id);
        o->account = *account_id;
        snprintf(o->username, sizeof o->username, "%s",
                 json_string_value(json_object_get(account, "username")));
    } else {
        assert_null(account_id);
        assert_null(account);
    }
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Signs in and runs the loop until the answer came; returns the elapsed seconds. */
static double login(store_fixture *f, const char *username, const char *password, outcome *o)
{
    memset(o, 0, sizeof *o);
    double start = seconds();
    assert_int_equal(
        ov_auth_login_start(&f->loop, f->store, username, password, strlen(password), on_login, o),
        OV_OK);
    assert_int_equal(o->calls, 0); /* never answered before the loop runs */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o->calls, 1);
    return seconds() - start;
}

static void sign_in_outcomes(void **state)
{
    store_fixture *f = *state;
    outcome o;
    login(f, "jan", "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_OK);
    assert_int_equal(ov_id_compare(&o.account, &f->jan), 0);
    assert_string_equal(o.username, "jan");
    assert_true(pthread_equal(o.thread, pthread_self()));

    login(f, "JAN", "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_OK);

    login(f, "jan", "Jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_EAUTH);
    login(f, "nobody", "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_EAUTH);
    /* Disabled: even the right password does not sign in, and it looks like a wrong one. */
    login(f, "piet", "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_EAUTH);
    /* Nonsense names are simply unknown users. */
    login(f, "jan\xff", "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_EAUTH);
    char long_name[500];
    memset(long_name, 'j', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    login(f, long_name, "jans-wachtwoord", &o);
    assert_int_equal(o.result, OV_EAUTH);

    char big[OV_AUTH_PASSWORD_MAX + 2];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(ov_auth_login_start(&f->loop, f->store, "jan", big, strlen(big), on_login, &o),
                     OV_EINVAL);
}

static void unknown_users_cost_a_full_verification(void **state)
{
    store_fixture *f = *state;
    outcome o;
    double wrong = 1e9, unknown = 1e9;
    for (int i = 0; i < 3; i++) {
        double t = login(f, "jan", "geraden-wachtwoord", &o);
        assert_int_equal(o.result, OV_EAUTH);
        wrong = t < wrong ? t : wrong;
        t = login(f, "onbekend", "geraden-wachtwoord", &o);
        assert_int_equal(o.result, OV_EAUTH);
        unknown = t < unknown ? t : unknown;
    }
    print_message("wrong password %.1f ms, unknown user %.1f ms\n", wrong * 1e3, unknown * 1e3);
    /* Both are dominated by one argon2id verification (~20 ms here); without the dummy the
     * unknown user would answer in microseconds. */
    assert_true(unknown > wrong * 0.5);
    assert_true(unknown > 0.005);
}

static void on_password(void *arg, int result, const char *new_hash)
{
    outcome *o = arg;
    o->calls++;
    o->result = result;
    o->thread = pthread_self();
    if (new_hash)
        snprintf(o->new_hash, sizeof o->new_hash, "%s", new_hash);
}

static void password_changes_verify_then_hash(void **state)
{
    store_fixture *f = *state;
    char current[OV_AUTH_HASH_MAX];
    assert_int_equal(ov_auth_hash_password("oud-wachtwoord", 14, current), OV_OK);
    outcome o;
    memset(&o, 0, sizeof o);
    assert_int_equal(ov_auth_password_start(&f->loop, current, "oud-wachtwoord", "nieuw-wachtwoord",
                                            on_password, &o),
                     OV_OK);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.result, OV_OK);
    assert_true(pthread_equal(o.thread, pthread_self()));
    assert_int_equal(ov_auth_verify_password(o.new_hash, "nieuw-wachtwoord", 16), OV_OK);
    assert_int_equal(ov_auth_verify_password(o.new_hash, "oud-wachtwoord", 14), OV_EAUTH);

    memset(&o, 0, sizeof o);
    assert_int_equal(ov_auth_password_start(&f->loop, current, "fout-wachtwoord",
                                            "nieuw-wachtwoord", on_password, &o),
                     OV_OK);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.result, OV_EAUTH);
    assert_string_equal(o.new_hash, "");

    /* An admin setting someone's password verifies nothing first. */
    memset(&o, 0, sizeof o);
    assert_int_equal(
        ov_auth_password_start(&f->loop, NULL, NULL, "door-admin-gezet", on_password, &o), OV_OK);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o.result, OV_OK);
    assert_int_equal(ov_auth_verify_password(o.new_hash, "door-admin-gezet", 16), OV_OK);
}

/* ---- Login limits ---------------------------------------------------------------------------- */

static void login_limits(void **state)
{
    ov_auth *auth;
    assert_int_equal(ov_auth_new(&auth), OV_OK);
    unsigned retry = 0;
    for (int i = 0; i < OV_AUTH_LOGINS_PER_USER; i++)
        assert_int_equal(ov_auth_login_admit(auth, i % 2 ? "Jan" : "jan", "192.0.2.1", 0, &retry),
                         OV_OK);
    assert_int_equal(ov_auth_login_admit(auth, "jan", "192.0.2.2", 0, &retry), OV_ELIMIT);
    assert_int_equal(retry, 6); /* 10 per minute: one back every 6 s */
    /* Other names from the same address go on until the address's 30 are used. */
    char name[32];
    int admitted = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "user%d", i);
        if (ov_auth_login_admit(auth, name, "192.0.2.1", 0, &retry) == OV_OK)
            admitted++;
    }
    assert_int_equal(admitted, OV_AUTH_LOGINS_PER_ADDRESS - OV_AUTH_LOGINS_PER_USER);
    assert_int_equal(retry, 2); /* 30 per minute: one back every 2 s */
    /* A minute later everything is forgiven. */
    assert_int_equal(ov_auth_login_admit(auth, "jan", "192.0.2.1", 60000, &retry), OV_OK);

    for (int i = 0; i < OV_AUTH_LOGINS_IN_FLIGHT; i++)
        assert_int_equal(ov_auth_login_reserve(auth), OV_OK);
    assert_int_equal(ov_auth_login_reserve(auth), OV_ELIMIT);
    ov_auth_login_release(auth);
    assert_int_equal(ov_auth_login_reserve(auth), OV_OK);
    ov_auth_free(auth);
    ov_auth_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_write_cell_matches_the_table),
        cmocka_unit_test(every_draft_read_matches_the_table),
        cmocka_unit_test(authors_read_their_own_drafts_anywhere),
        cmocka_unit_test(editors_of_either_school_share_a_case),
        cmocka_unit_test(nothing_is_granted_to_unknown_places),
        cmocka_unit_test(role_names_round_trip),
        cmocka_unit_test(valid_accounts_pass),
        cmocka_unit_test(bad_accounts_name_every_problem),
        cmocka_unit_test(stored_and_shown_forms),
        cmocka_unit_test(hashes_are_argon2id_with_our_parameters),
        cmocka_unit_test_setup_teardown(sign_in_outcomes, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(unknown_users_cost_a_full_verification, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(password_changes_verify_then_hash, store_setup,
                                        store_teardown),
        cmocka_unit_test(login_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
