/*
 * The demo dataset: what a fresh node holds when started with --demo.
 *
 * Two parts. The records taken from the seed documents (regions, schools, brigadiers, cases with
 * their bouwstenen scan, lessons, help requests) and the demo accounts live in
 * data/demo/<name>.json, which the build compiles into the binary (CMakeLists.txt turns each file
 * into a byte array), so the node needs no data files at run time. On top of those, a few hundred
 * records marked "generated": true are built here deterministically (a fixed-seed PRNG over the
 * seeds' vocabulary) so browsing, filtering and paging have something to show. Every record has a
 * fixed id, so links in the README and tests stay valid across runs. docs/demo-data.md lists what
 * is in the dataset and where each real record comes from.
 */
#ifndef OV_DEMO_H
#define OV_DEMO_H

#include <jansson.h>
#include <stddef.h>

#include "proto/id.h"
#include "proto/record.h"
#include "server/store.h"

/* One embedded data/demo/<name>.json file (generated source, see CMakeLists.txt). */
typedef struct {
    const char *name; /* "schools", "accounts", … */
    const char *data; /* the file's bytes, NUL-terminated */
    size_t len;
} ov_demo_file;
extern const ov_demo_file ov_demo_files[];
extern const size_t ov_demo_file_count;

/* The password of every demo account (also in accounts.json, in clear: it is a demo). */
#define OV_DEMO_PASSWORD "olievlek-demo"

typedef struct {
    int records;    /* records created by this call (0 when nothing was loaded) */
    int from_seeds; /* of which from data/demo/<name>.json */
    int generated;  /* of which generated */
    int drafts;     /* of which created as drafts */
    int per_kind[OV_KIND_COUNT];
    int accounts;       /* accounts created */
    int already_loaded; /* 1 when the store held records, so nothing was done */
} ov_demo_counts;

/* Called once per demo record, in load order (every record after the records it refers to).
 * content is borrowed for the call: the record's content fields, without "id" and "status".
 * Return 0 to go on, non-zero to stop the walk (that value is returned). */
typedef int (*ov_demo_record_fn)(void *ctx, ov_kind kind, const ov_id *id, ov_status status,
                                 const json_t *content, int generated);

/* Walks every demo record, embedded and generated, without touching a store. Errors: OV_EPARSE
 * (an embedded file is not valid JSON or has an unexpected shape), OV_ENOMEM, or fn's value. */
int ov_demo_each(ov_demo_record_fn fn, void *ctx);

/* The first demo record that does not validate, if any. */
typedef struct {
    ov_kind kind; /* OV_KIND_COUNT: a demo account (checked with ov_auth_account_check) */
    char id[OV_ID_CHARS + 1];
    ov_field_errors errors;
} ov_demo_problem;

/* Validates every demo record with ov_record_validate and every demo account with
 * ov_auth_account_check. Returns OV_OK, or OV_ESCHEMA with
 * *problem (if not NULL) naming the record and its field errors; other errors as ov_demo_each. */
int ov_demo_check(ov_demo_problem *problem);

/* The fixed id of the demo account called username (for tests and the README); OV_ENOTFOUND. */
int ov_demo_account_id(const char *username, ov_id *out);

/* Loads the dataset into store when the store holds no records: validates everything (a record
 * that does not validate is a bug in the dataset: it is reported on stderr with its id and field
 * and OV_ESCHEMA is returned, nothing written), hashes the account passwords with argon2id
 * (ov_auth_hash_password, ~30 ms each: the only slow part),
 * creates the accounts and then every record with its fixed id, author = the demo admin, in a few
 * large transactions. When the store already holds records nothing is written and
 * out->already_loaded is set, so loading twice changes nothing. A store that restores its own log
 * from its peers (ov_store_recovering) gets the accounts only: the records come from the peers.
 * Must not run while a writer thread writes to store (call it before ov_writer_start, as main.c
 * does). out may be NULL. Errors: as ov_demo_check, OV_ENOMEM, OV_ECRYPTO (hashing), store errors.
 */
int ov_demo_load(ov_store *store, ov_demo_counts *out);

#endif
