/*
 * The replica directory and its LMDB store: creating, opening, the small helpers every other
 * module uses, and the read side of the public API (status, list, get).
 */
#include "client/replica.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/net.h"
#include "client/queue.h"
#include "proto/buf.h"
#include "proto/error.h"

#define STORE_FILE "replica.mdb"
#define MAP_SIZE                                                                                   \
    (8ull << 30) /* address space only (the file grows as records arrive): a national replica of   \
                    100,000 cases takes a few hundred MB */
#define NODE_INFO_MAX  (1u << 20)
#define FORMAT_VERSION "1"

static __thread char thread_error[512];

int64_t olv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int olv_parse_record_id(olievlek_replica *replica, const char *text, ov_id *id)
{
    if (!text || ov_id_parse(text, strlen(text), id) != OV_OK)
        return olv_fail(replica, OLIEVLEK_EINVAL, "'%s' is not a record id", text ? text : "");
    return OLIEVLEK_OK;
}

const char *olievlek_strerror(int status)
{
    switch (status) {
    case OLIEVLEK_OK:
        return "ok";
    case OLIEVLEK_EINVAL:
        return "invalid argument";
    case OLIEVLEK_ENOTFOUND:
        return "not found";
    case OLIEVLEK_EEXISTS:
        return "already exists";
    case OLIEVLEK_ESCHEMA:
        return "record does not validate";
    case OLIEVLEK_ENETWORK:
        return "network error";
    case OLIEVLEK_EAUTH:
        return "not logged in";
    case OLIEVLEK_EDENIED:
        return "not allowed";
    case OLIEVLEK_EVERIFY:
        return "verification failed";
    case OLIEVLEK_EPROTO:
        return "unexpected answer from the node";
    case OLIEVLEK_ESTORE:
        return "replica store error";
    case OLIEVLEK_EBUSY:
        return "replica busy";
    case OLIEVLEK_ENOMEM:
        return "out of memory";
    case OLIEVLEK_ECONFLICT:
        return "unresolved conflict";
    default:
        return "unknown error";
    }
}

const char *olievlek_last_error(const olievlek_replica *replica)
{
    return replica ? replica->error : thread_error;
}

void olievlek_free(void *p)
{
    free(p);
}

int olv_fail(olievlek_replica *replica, int status, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(replica ? replica->error : thread_error, sizeof thread_error, format, ap);
    va_end(ap);
    return status;
}

int olv_fail_mdb(olievlek_replica *replica, int rc, const char *doing)
{
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        return olv_fail(replica, OLIEVLEK_ESTORE, "the replica is full while %s: free disk space",
                        doing);
    return olv_fail(replica, OLIEVLEK_ESTORE, "the replica's store failed while %s: %s", doing,
                    mdb_strerror(rc));
}

int olv_txn_begin(olievlek_replica *replica, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(replica->env, NULL, flags, txn);
    return rc ? olv_fail_mdb(replica, rc, "starting a transaction") : OLIEVLEK_OK;
}

int olv_txn_commit(olievlek_replica *replica, MDB_txn *txn, int durable)
{
    int rc = mdb_txn_commit(txn);
    if (rc)
        return olv_fail_mdb(replica, rc, "saving");
    if (durable && (rc = mdb_env_sync(replica->env, 1)) != 0)
        return olv_fail_mdb(replica, rc, "writing to disk");
    return OLIEVLEK_OK;
}

int olv_meta_get(olievlek_replica *replica, MDB_txn *txn, const char *key, char **out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, replica->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return OLIEVLEK_ENOTFOUND;
    if (rc)
        return olv_fail_mdb(replica, rc, "reading settings");
    *out = strndup(v.mv_data, v.mv_size);
    return *out ? OLIEVLEK_OK : OLIEVLEK_ENOMEM;
}

int olv_meta_put(olievlek_replica *replica, MDB_txn *txn, const char *key, const char *value)
{
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(value), (void *)value};
    int rc = mdb_put(txn, replica->meta, &k, &v, 0);
    return rc ? olv_fail_mdb(replica, rc, "saving settings") : OLIEVLEK_OK;
}

void olv_row_encode_header(uint8_t header[OLV_ROW_HEADER], ov_kind kind, ov_status status,
                           uint32_t version, int64_t updated_ms, const ov_id *origin)
{
    header[0] = (uint8_t)kind;
    header[1] = (uint8_t)status;
    ov_be32_put(header + 2, version);
    ov_be64_put(header + 6, (uint64_t)updated_ms);
    memcpy(header + 14, origin->bytes, OV_ID_BYTES);
}

int olv_row_decode(const MDB_val *value, olv_row *row)
{
    const uint8_t *p = value->mv_data;
    if (value->mv_size < OLV_ROW_HEADER || p[0] >= OV_KIND_COUNT || p[1] >= OV_STATUS_COUNT)
        return OLIEVLEK_ESTORE;
    row->kind = (ov_kind)p[0];
    row->status = (ov_status)p[1];
    row->version = ov_be32_get(p + 2);
    row->updated_ms = (int64_t)ov_be64_get(p + 6);
    memcpy(row->origin.bytes, p + 14, OV_ID_BYTES);
    row->json = (const char *)p + OLV_ROW_HEADER;
    row->json_len = value->mv_size - OLV_ROW_HEADER;
    return OLIEVLEK_OK;
}

int olv_row_from_json(const char *json, size_t len, olv_row *row, ov_id *id)
{
    memset(row, 0, sizeof *row);
    ov_envelope env;
    unsigned seen;
    const unsigned needed = OV_ENVELOPE_ID | OV_ENVELOPE_KIND | OV_ENVELOPE_STATUS |
                            OV_ENVELOPE_ORIGIN | OV_ENVELOPE_VERSION;
    if (ov_record_envelope_members(json, len, &env, &seen) != OV_OK || (seen & needed) != needed ||
        (seen & OV_ENVELOPE_MALFORMED) || env.kind >= OV_KIND_COUNT ||
        env.status >= OV_STATUS_COUNT)
        return OLIEVLEK_EPROTO;
    *id = env.id;
    row->kind = env.kind;
    row->status = env.status;
    row->version = env.version;
    row->updated_ms = env.updated_ms;
    row->origin = env.origin;
    row->json = json;
    row->json_len = len;
    return OLIEVLEK_OK;
}

int olv_head_get(MDB_txn *txn, MDB_dbi heads, const ov_id *origin, olv_head *head)
{
    MDB_val k = {OV_ID_BYTES, (void *)origin->bytes}, v;
    int rc = mdb_get(txn, heads, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(head, 0, sizeof *head);
        return OLIEVLEK_ENOTFOUND;
    }
    if (rc || v.mv_size != OLV_HEAD_ROW)
        return OLIEVLEK_ESTORE;
    const uint8_t *p = v.mv_data;
    head->seq = ov_be64_get(p);
    memcpy(head->hash, p + 8, OV_HASH_BYTES);
    memcpy(head->head, p + 8 + OV_HASH_BYTES, OV_LOG_HEAD_BYTES);
    memcpy(head->public_key, p + 8 + OV_HASH_BYTES + OV_LOG_HEAD_BYTES, OV_PUBKEY_BYTES);
    return OLIEVLEK_OK;
}

int olv_head_put(MDB_txn *txn, MDB_dbi heads, const ov_id *origin, const olv_head *head)
{
    uint8_t row[OLV_HEAD_ROW];
    ov_be64_put(row, head->seq);
    memcpy(row + 8, head->hash, OV_HASH_BYTES);
    memcpy(row + 8 + OV_HASH_BYTES, head->head, OV_LOG_HEAD_BYTES);
    memcpy(row + 8 + OV_HASH_BYTES + OV_LOG_HEAD_BYTES, head->public_key, OV_PUBKEY_BYTES);
    MDB_val k = {OV_ID_BYTES, (void *)origin->bytes}, v = {sizeof row, row};
    return mdb_put(txn, heads, &k, &v, 0) ? OLIEVLEK_ESTORE : OLIEVLEK_OK;
}

int olv_history_add(olievlek_replica *replica, MDB_txn *txn, const char *format, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    if (n < 0)
        return OLIEVLEK_EINVAL;
    /* Key: time, then a counter so two events in one millisecond keep their order. */
    uint8_t key[12];
    ov_be64_put(key, (uint64_t)olv_now_ms());
    ov_be32_put(key + 8, 0);
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, replica->history, &cur) == 0) {
        MDB_val k, v;
        if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == sizeof key &&
            memcmp(k.mv_data, key, 8) >= 0) {
            memcpy(key, k.mv_data, sizeof key);
            ov_be32_put(key + 8, ov_be32_get(key + 8) + 1);
        }
        mdb_cursor_close(cur);
    }
    MDB_val k = {sizeof key, key}, v = {strlen(line), line};
    int rc = mdb_put(txn, replica->history, &k, &v, 0);
    return rc ? olv_fail_mdb(replica, rc, "keeping the history") : OLIEVLEK_OK;
}

int olv_lock(olievlek_replica *replica)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", replica->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return olv_fail(replica, OLIEVLEK_ESTORE, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return olv_fail(replica, OLIEVLEK_EBUSY,
                        "another pull or push is running on this replica; wait for it to end");
    }
    replica->lock_fd = fd;
    return OLIEVLEK_OK;
}

void olv_unlock(olievlek_replica *replica)
{
    if (replica->lock_fd >= 0) {
        close(replica->lock_fd); /* releases the flock */
        replica->lock_fd = -1;
    }
}

void olv_token_load(olievlek_replica *replica)
{
    free(replica->token);
    replica->token = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/token", replica->dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[256];
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0])
            replica->token = strdup(line);
    }
    fclose(f);
}

static int open_env(olievlek_replica *r, int create)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" STORE_FILE, r->dir);
    if (!create && access(path, F_OK) != 0)
        return olv_fail(r, OLIEVLEK_ENOTFOUND,
                        "no replica in %s: create one with `olievlek clone URL`", r->dir);
    int rc = mdb_env_create(&r->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(r->env, 8);
    if (!rc)
        rc = mdb_env_set_mapsize(r->env, MAP_SIZE);
    if (!rc)
        rc = mdb_env_open(r->env, path, MDB_NOSUBDIR | MDB_NOMETASYNC | MDB_NOTLS, 0600);
    if (rc)
        return olv_fail_mdb(r, rc, "opening the replica");
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != 0)
        return olv_fail_mdb(r, rc, "opening the replica");
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"meta", &r->meta},      {"records", &r->records}, {"heads", &r->heads},
               {"local", &r->local},    {"queue", &r->queue},     {"conflicts", &r->conflicts},
               {"history", &r->history}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && !rc; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (rc) {
        mdb_txn_abort(txn);
        return olv_fail_mdb(r, rc, "opening the replica");
    }
    rc = mdb_txn_commit(txn);
    return rc ? olv_fail_mdb(r, rc, "opening the replica") : OLIEVLEK_OK;
}

static olievlek_replica *replica_alloc(const char *dir)
{
    olievlek_replica *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->lock_fd = -1;
    r->dir = strdup(dir);
    if (!r->dir) {
        free(r);
        return NULL;
    }
    return r;
}

int olievlek_open(const char *dir, olievlek_replica **out)
{
    *out = NULL;
    olievlek_replica *r = replica_alloc(dir);
    if (!r)
        return olv_fail(NULL, OLIEVLEK_ENOMEM, "out of memory");
    int rc = open_env(r, 0);
    if (rc == OLIEVLEK_OK) {
        MDB_txn *txn;
        char *format = NULL;
        if ((rc = olv_txn_begin(r, MDB_RDONLY, &txn)) == OLIEVLEK_OK) {
            rc = olv_meta_get(r, txn, "format", &format);
            mdb_txn_abort(txn);
            if (rc == OLIEVLEK_OK && strcmp(format, FORMAT_VERSION) != 0)
                rc = olv_fail(r, OLIEVLEK_ESTORE,
                              "the replica in %s has format %s, this client reads %s: clone it "
                              "again",
                              dir, format, FORMAT_VERSION);
            else if (rc == OLIEVLEK_ENOTFOUND)
                rc = olv_fail(r, OLIEVLEK_ENOTFOUND,
                              "the clone into %s did not finish: run `olievlek clone` with the "
                              "node's address again",
                              dir);
            free(format);
        }
    }
    if (rc != OLIEVLEK_OK) {
        snprintf(thread_error, sizeof thread_error, "%s", r->error);
        olievlek_close(r);
        return rc;
    }
    olv_token_load(r);
    *out = r;
    return OLIEVLEK_OK;
}

/* Asks the node for its id and key, and checks that the key hashes to the id (a node's id is its
 * genesis key's fingerprint) and, when the user pinned one, that it is that id. */
static int learn_node_id(olievlek_replica *r, const char *url, const char *pinned,
                         char id_out[OV_ID_CHARS + 1])
{
    olv_net *net = olv_net_new(url);
    if (!net)
        return olv_fail(r, OLIEVLEK_ENOMEM, "out of memory");
    olv_request req = {.method = "GET", .path = "/api/v1/node", .max_body = NODE_INFO_MAX};
    olv_response resp;
    char error[256];
    int rc = olv_net_send(net, &req, &resp, error, sizeof error);
    olv_net_free(net);
    if (rc != 0) {
        olv_response_free(&resp);
        return olv_fail(r, OLIEVLEK_ENETWORK,
                        "cannot reach the node at %s (%s): check the address and the network", url,
                        error);
    }
    json_t *info = resp.status == 200 ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
    long status = resp.status;
    olv_response_free(&resp);
    if (!info)
        return olv_fail(r, OLIEVLEK_EPROTO,
                        "%s answered %ld to /api/v1/node: is this an Olievlek node?", url, status);
    const char *id = json_string_value(json_object_get(info, "id"));
    /* The genesis key names the node; a rotated node's current key is proven by its log. */
    const char *key = json_string_value(json_object_get(info, "genesis_key"));
    if (!key || !key[0])
        key = json_string_value(json_object_get(info, "public_key"));
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_id node, claimed;
    rc = OLIEVLEK_OK;
    if (!id || !key || ov_id_parse(id, strlen(id), &claimed) != OV_OK ||
        ov_hex_decode(key, strlen(key), pub, sizeof pub) != OV_OK) {
        rc = olv_fail(r, OLIEVLEK_EPROTO, "the node's /api/v1/node lacks a valid id and key");
    } else {
        ov_log_node_id(pub, &node);
        ov_id pin;
        if (ov_id_compare(&node, &claimed) != 0)
            rc = olv_fail(r, OLIEVLEK_EVERIFY,
                          "the node's key does not belong to the id it claims (%s)", id);
        else if (pinned && (ov_id_parse(pinned, strlen(pinned), &pin) != OV_OK ||
                            ov_id_compare(&pin, &node) != 0))
            rc = olv_fail(r, OLIEVLEK_EVERIFY,
                          "the node at %s is %s, not the node id you gave (%s): check both with "
                          "its administrator",
                          url, id, pinned);
        else
            ov_id_format(&node, id_out);
    }
    json_decref(info);
    return rc;
}

int olievlek_create(const char *dir, const olievlek_clone_options *options, olievlek_replica **out)
{
    *out = NULL;
    if (!options || !options->node_url ||
        (strncmp(options->node_url, "http://", 7) != 0 &&
         strncmp(options->node_url, "https://", 8) != 0))
        return olv_fail(NULL, OLIEVLEK_EINVAL,
                        "give the node's address as http://host:port or https://host");
    if (options->kinds && options->kinds[0]) {
        /* Every name must be a kind, so a typo does not silently keep nothing. */
        const char *p = options->kinds;
        while (*p) {
            size_t n = strcspn(p, ",");
            ov_kind kind;
            if (ov_kind_parse(p, n, &kind) != OV_OK)
                return olv_fail(NULL, OLIEVLEK_EINVAL,
                                "unknown kind '%.*s' in the scope: use region, school, person, "
                                "case, lesson, request or visit",
                                (int)n, p);
            p += n;
            if (*p == ',')
                p++;
        }
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return olv_fail(NULL, OLIEVLEK_ESTORE, "cannot create %s: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/" STORE_FILE, dir);
    if (access(path, F_OK) == 0) {
        /* A clone cut off before its first commit leaves a store without a format: it holds
         * nothing, so cloning again simply finishes it. A finished replica is never overwritten. */
        olievlek_replica *existing = NULL;
        int open_rc = olievlek_open(dir, &existing);
        olievlek_close(existing);
        if (open_rc == OLIEVLEK_OK)
            return olv_fail(NULL, OLIEVLEK_EEXISTS,
                            "%s already holds a replica: use `olievlek pull`, or another "
                            "directory",
                            dir);
        if (open_rc != OLIEVLEK_ENOTFOUND)
            return open_rc;
    }
    olievlek_replica *r = replica_alloc(dir);
    if (!r)
        return olv_fail(NULL, OLIEVLEK_ENOMEM, "out of memory");
    char node_id[OV_ID_CHARS + 1];
    int rc = learn_node_id(r, options->node_url, options->node_id, node_id);
    if (rc == OLIEVLEK_OK)
        rc = open_env(r, 1);
    MDB_txn *txn = NULL;
    if (rc == OLIEVLEK_OK)
        rc = olv_txn_begin(r, 0, &txn);
    if (rc == OLIEVLEK_OK) {
        const char *url_end = options->node_url + strlen(options->node_url);
        while (url_end > options->node_url && url_end[-1] == '/')
            url_end--;
        char *url = strndup(options->node_url, (size_t)(url_end - options->node_url));
        if (!url)
            rc = OLIEVLEK_ENOMEM;
        if (!rc)
            rc = olv_meta_put(r, txn, "node_url", url);
        if (!rc)
            rc = olv_meta_put(r, txn, "node_id", node_id);
        if (!rc)
            rc = olv_meta_put(r, txn, "region_only", options->region_only ? "1" : "0");
        if (!rc)
            rc = olv_meta_put(r, txn, "kinds", options->kinds ? options->kinds : "");
        if (!rc)
            rc = olv_history_add(r, txn, "created the replica of %s (node %s, %s)", url, node_id,
                                 options->region_only ? "its region only" : "the whole network");
        /* Written last: a replica without it is an unfinished creation. */
        if (!rc)
            rc = olv_meta_put(r, txn, "format", FORMAT_VERSION);
        free(url);
        if (rc)
            mdb_txn_abort(txn);
        else
            rc = olv_txn_commit(r, txn, 1);
    }
    if (rc != OLIEVLEK_OK) {
        snprintf(thread_error, sizeof thread_error, "%s", r->error);
        olievlek_close(r);
        return rc;
    }
    *out = r;
    return OLIEVLEK_OK;
}

void olievlek_close(olievlek_replica *replica)
{
    if (!replica)
        return;
    olv_unlock(replica);
    if (replica->env)
        mdb_env_close(replica->env);
    for (size_t i = 0; i < sizeof replica->strings / sizeof replica->strings[0]; i++)
        free(replica->strings[i]);
    free(replica->token);
    free(replica->dir);
    free(replica);
}

static unsigned count_entries(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;
    return mdb_stat(txn, dbi, &st) == 0 ? (unsigned)st.ms_entries : 0;
}

int olievlek_status_info(olievlek_replica *replica, olievlek_info *info)
{
    memset(info, 0, sizeof *info);
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    const char *keys[] = {"node_url", "node_id", "username", "kinds", "region_only", "last_pull"};
    for (size_t i = 0; i < 6; i++) {
        free(replica->strings[i]);
        replica->strings[i] = NULL;
        olv_meta_get(replica, txn, keys[i], &replica->strings[i]);
    }
    char *last_push = NULL;
    olv_meta_get(replica, txn, "last_push", &last_push);
    info->node_url = replica->strings[0] ? replica->strings[0] : "";
    info->node_id = replica->strings[1] ? replica->strings[1] : "";
    info->username = replica->token ? replica->strings[2] : NULL;
    info->kinds = replica->strings[3] ? replica->strings[3] : "";
    info->region_only = replica->strings[4] && strcmp(replica->strings[4], "1") == 0;
    info->last_pull_ms = replica->strings[5] ? strtoll(replica->strings[5], NULL, 10) : 0;
    info->last_push_ms = last_push ? strtoll(last_push, NULL, 10) : 0;
    free(last_push);
    info->origins = count_entries(txn, replica->heads);
    info->conflicts = count_entries(txn, replica->conflicts);

    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, replica->records, &cur) == 0) {
        for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
            olv_row row;
            if (olv_row_decode(&v, &row) == OLIEVLEK_OK && row.status != OV_STATUS_DELETED)
                info->records++;
        }
        mdb_cursor_close(cur);
    }
    olv_queue_counts(replica, txn, &info->pending, &info->rejected);
    mdb_txn_abort(txn);
    return OLIEVLEK_OK;
}
