/*
 * Fills a store with N published cases for the federation benchmark (bench/federation.sh): short
 * Dutch texts from a fixed vocabulary, written in batches of 2,000 through the store's normal
 * write path (sealing, log, indexes, search index), each batch signing a head — as a busy node's
 * log looks. Prints the node id.
 *
 *   federation_seed DATA_DIR N
 *   federation_seed --verify-rate N     ECDSA verifications per second on this machine, for the
 *                                       per-record reference the benchmark compares with
 *   federation_seed --admin DATA_DIR USERNAME PASSWORD
 *                                       an admin account in a seeded store (node stopped), for
 *                                       the benchmarks that change a record through the API;
 *                                       nothing is written when the name exists already
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/crypto.h"
#include "proto/error.h"
#include "proto/id.h"
#include "server/auth.h"
#include "server/store.h"

#define BATCH 2000

static const char *const words[] = {
    "leerlingen",   "school",     "team",      "samenwerking", "ouders",  "verzuim",
    "thuiszitters", "tussenjaar", "onderwijs", "begeleiding",  "mentor",  "klas",
    "regio",        "doel",       "talenten",  "expertise",    "houding", "contact",
    "delen",        "innovatie",  "aanpak",    "zorg",         "passend", "maatwerk",
    "docenten",     "leiding",    "netwerk",   "ervaring",     "project", "gesprek",
    "vertrouwen",   "structuur",  "ruimte",    "praktijk",     "lessen",  "evaluatie",
};
#define WORDS (sizeof words / sizeof words[0])

static unsigned long long rng = 88172645463325252ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

static void sentence(char *out, size_t size, int n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len + 20 < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "",
                                words[next_rand() % WORDS]);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int verify_rate(long n)
{
    ov_keypair *key;
    if (ov_keypair_generate(&key) != OV_OK)
        return 1;
    uint8_t pub[OV_PUBKEY_BYTES], digest[OV_HASH_BYTES] = {1}, sig[OV_SIGNATURE_BYTES];
    ov_keypair_public(key, pub);
    if (ov_sign(key, digest, sig) != OV_OK)
        return 1;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (ov_verify(pub, digest, sig) != OV_OK)
            return 1;
    printf("%.0f\n", (double)n / (now_s() - t0));
    ov_keypair_free(key);
    return 0;
}

/* An admin account, as an operator's first one would be: not logged, not federated. */
static int add_admin(const char *dir, const char *username, const char *password)
{
    char key_path[600];
    snprintf(key_path, sizeof key_path, "%s/node.key", dir);
    ov_keypair *key;
    ov_store *store;
    if (ov_keypair_load_or_create(key_path, &key) != OV_OK)
        return 1;
    ov_store_options options = {dir, (size_t)64 << 30, key, 0};
    if (ov_store_open(&options, &store) != OV_OK)
        return 1;
    ov_read *read;
    ov_id existing;
    json_t *found = NULL;
    int rc = ov_read_begin(store, &read);
    int lookup = rc == OV_OK ? ov_read_account_by_name(read, username, &existing, &found) : rc;
    json_decref(found);
    if (rc == OV_OK)
        ov_read_end(read);
    if (lookup != OV_OK) {
        char hash[OV_AUTH_HASH_MAX];
        json_t *input = json_pack("{s:s, s:s}", "username", username, "role", "admin");
        ov_write_op *op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT);
        ov_wtxn *w;
        rc = input && op ? ov_auth_hash_password(password, strlen(password), hash) : OV_ENOMEM;
        if (rc == OV_OK)
            rc = ov_auth_account_build(input, hash, 1767225600000LL, 0, &op->account);
        if (rc == OV_OK) {
            ov_id_generate(&op->account_id, 1767225600000ull);
            rc = ov_store_write_begin(store, &w);
        }
        if (rc == OV_OK) {
            ov_store_apply(w, op, 1767225600000LL);
            if ((rc = op->result) != OV_OK)
                ov_store_write_abort(w);
            else
                rc = ov_store_write_commit(w);
        }
        json_decref(input);
        ov_write_op_free(op);
        if (rc != OV_OK)
            fprintf(stderr, "cannot create the account: %s\n", ov_strerror(rc));
    }
    ov_store_close(store);
    ov_keypair_free(key);
    return rc == OV_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--verify-rate") == 0)
        return verify_rate(atol(argv[2]));
    if (argc == 5 && strcmp(argv[1], "--admin") == 0)
        return add_admin(argv[2], argv[3], argv[4]);
    if (argc != 3) {
        fprintf(stderr, "usage: federation_seed DATA_DIR N\n");
        return 2;
    }
    long n = atol(argv[2]);
    char key_path[600];
    snprintf(key_path, sizeof key_path, "%s/node.key", argv[1]);
    ov_keypair *key;
    ov_store *store;
    if (ov_keypair_load_or_create(key_path, &key) != OV_OK) {
        fprintf(stderr, "cannot create %s\n", key_path);
        return 1;
    }
    ov_store_options options = {argv[1], (size_t)64 << 30, key, 0};
    if (ov_store_open(&options, &store) != OV_OK)
        return 1;
    ov_id school;
    ov_id_generate(&school, 1700000000000ull);
    char school_id[OV_ID_CHARS + 1];
    ov_id_format(&school, school_id);
    for (long i = 0; i < n; i += BATCH) {
        ov_wtxn *w;
        if (ov_store_write_begin(store, &w) != OV_OK)
            return 1;
        for (long k = i; k < i + BATCH && k < n; k++) {
            char title[200], summary[600];
            sentence(title, sizeof title, 6);
            sentence(summary, sizeof summary, 40);
            ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
            op->kind = OV_KIND_CASE;
            op->content =
                json_pack("{s:s, s:[s], s:s, s:s, s:s}", "title", title, "schools", school_id,
                          "summary", summary, "phase", "implementatie", "sector", "vo");
            op->status = OV_STATUS_PUBLISHED;
            ov_store_apply(w, op, 1767225600000LL + k);
            if (op->result != OV_OK) {
                fprintf(stderr, "write failed: %s\n", ov_strerror(op->result));
                return 1;
            }
            ov_write_op_free(op);
        }
        if (ov_store_write_commit(w) != OV_OK)
            return 1;
    }
    char id[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(store), id);
    printf("%s\n", id);
    ov_store_close(store);
    ov_keypair_free(key);
    return 0;
}
