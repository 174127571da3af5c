/*
 * olievlekd: the Olievlek node.
 *
 * Start-up reads the configuration, loads (or on first start creates) the node key, opens the
 * store, loads the demo dataset when asked, and then runs everything on one libuv loop: the HTTP
 * server, the writer's completions and the signal handlers. SIGTERM/SIGINT shut down gracefully:
 * new writes are refused with 503, every write already queued is committed and answered, open
 * answers are flushed, and only then does the process exit. A SIGKILL at any moment loses nothing
 * that was acknowledged, because nothing is acknowledged before its commit is durable.
 *
 * Subcommands: `olievlekd import-schools FILE.csv` upserts schools from a DUO address file;
 * `reindex` rebuilds the search index; `node-id` prints the node id; `rotate-key` replaces the
 * node key (node stopped: the old key signs the new one into the log); `new-log` ends the wait
 * of a node that would restore its own log from its peers and lets it start a new one.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "proto/error.h"
#include "proto/log.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/demo.h"
#include "server/http.h"
#include "server/import.h"
#include "server/jlog.h"
#include "server/federation.h"
#include "server/live.h"
#include "server/search.h"
#include "server/node.h"
#include "server/static_files.h"
#include "server/sync_api.h"
#include "server/store.h"
#include "server/writer.h"

#define OV_VERSION "0.1.0"

typedef struct {
    ov_node node;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    int stopping;
} daemon_state;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_private_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return OV_OK;
    return OV_EIO;
}

static void on_http_stopped(void *arg)
{
    daemon_state *state = arg;
    uv_close((uv_handle_t *)&state->sigterm, NULL);
    uv_close((uv_handle_t *)&state->sigint, NULL);
    ov_jlog_info("node.stopped", NULL);
}

static void on_writer_stopped(void *arg)
{
    daemon_state *state = arg;
    /* Every queued write is now durable and answered; flush the answers and close. */
    ov_http_stop(state->node.http, on_http_stopped, state);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    daemon_state *state = handle->data;
    if (state->stopping)
        return;
    state->stopping = 1;
    state->node.shutting_down = 1;
    ov_jlog_info("node.stopping", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    ov_live_stop(state->node.live);
    ov_federation_stop(state->node.federation);
    ov_writer_stop(state->node.writer, on_writer_stopped, state);
}

/* The writer committed a batch: live subscribers get what is new in the change feed, and peers
 * what is new in the logs. */
static void on_committed(void *arg)
{
    ov_node *node = arg;
    ov_live_notify(node->live);
    ov_federation_notify(node->federation);
}

/* Every connection is a descriptor, and lws sizes its connection table by the open-file limit:
 * set the soft limit to max_connections plus room for the store, the key and the loops (within
 * the hard limit, which the service unit raises). */
static void set_fd_limit(unsigned connections)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    rlim_t target = (rlim_t)connections + 64;
    if (limit.rlim_max != RLIM_INFINITY && target > limit.rlim_max) {
        target = limit.rlim_max;
        ov_jlog_warn("node.fd_limit", "detail",
                     "the hard open-file limit is below max_connections; raise LimitNOFILE", NULL);
    }
    limit.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &limit);
}

static void key_path_of(const ov_config *config, char *out, size_t size)
{
    if (config->key_file[0])
        snprintf(out, size, "%s", config->key_file);
    else
        snprintf(out, size, "%s/node.key", config->data_dir);
}

/* The node key (created on first use, mode 0600) in the data directory or at key_file. *existed
 * (may be NULL) says whether the key file was there before. */
static int load_key_ex(const ov_config *config, ov_keypair **key, int *existed)
{
    char key_path[600];
    key_path_of(config, key_path, sizeof key_path);
    struct stat st;
    if (existed)
        *existed = lstat(key_path, &st) == 0;
    int rc = make_private_dir(config->data_dir);
    if (rc != OV_OK) {
        ov_jlog_error("store.open_failed", "dir", config->data_dir, "error", strerror(errno), NULL);
        return rc;
    }
    rc = ov_keypair_load_or_create(key_path, key);
    if (rc != OV_OK)
        ov_jlog_error("key.load_failed", "path", key_path, "error", ov_strerror(rc), NULL);
    return rc;
}

static int open_store(const ov_config *config, ov_keypair **key, ov_store **store);

/* olievlekd node-id: the id peers configure for this node (creating its key if needed). */
static int run_node_id(const ov_config *config)
{
    ov_keypair *key = NULL;
    ov_store *store = NULL;
    /* Opening the store creates it with a new key: a node that has a store from the start has
     * a new log, not one to restore from its peers. An existing store knows the node id (the
     * genesis key's, also after a rotation). */
    if (open_store(config, &key, &store) != OV_OK)
        return 1;
    char text[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(store), text);
    printf("%s\n", text);
    ov_store_close(store);
    ov_keypair_free(key);
    return 0;
}

/* Writes a file's directory to disk (after a rename or link in it). */
static int sync_dir_of(const char *path)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return OV_EIO;
    int rc = fsync(fd) == 0 ? OV_OK : OV_EIO;
    close(fd);
    return rc;
}

/* Puts the new key in place: the old key file is kept as <key>.N (the first free N, mode 0600
 * as it was), then <key>.next replaces <key> atomically. A crash in between leaves <key> the old
 * key, which the store then refuses; running rotate-key again finishes. */
static int install_key(const char *key_path, const char *next_path, char *kept, size_t kept_size)
{
    for (int n = 1; n < 1000; n++) {
        snprintf(kept, kept_size, "%s.%d", key_path, n);
        if (link(key_path, kept) == 0)
            break;
        if (errno != EEXIST)
            return OV_EIO;
    }
    if (rename(next_path, key_path) != 0)
        return OV_EIO;
    return sync_dir_of(key_path);
}

/* olievlekd rotate-key: with the node stopped, makes a new key and appends a key entry
 * introducing it to the node's log, with a head at that entry signed by the current key; the
 * node signs everything after with the new key. Peers follow from the log (docs/protocol.md §4,
 * §8.1). */
static int run_rotate_key(const ov_config *config, int argc)
{
    if (argc > 1) {
        fprintf(stderr, "usage: olievlekd rotate-key [--data-dir DIR] [--key-file FILE]\n");
        return 2;
    }
    char key_path[600], next_path[620], kept[640];
    key_path_of(config, key_path, sizeof key_path);
    snprintf(next_path, sizeof next_path, "%s.next", key_path);
    struct stat st;
    if (stat(key_path, &st) != 0) {
        fprintf(stderr, "rotate-key: there is no key at %s to rotate\n", key_path);
        return 1;
    }
    ov_keypair *next = NULL;
    int rc = ov_keypair_load_or_create(next_path, &next);
    if (rc != OV_OK) {
        fprintf(stderr, "rotate-key: cannot make the new key at %s: %s\n", next_path,
                ov_strerror(rc));
        return 1;
    }
    uint8_t next_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(next, next_pub);
    ov_store_options options = {config->data_dir, config->map_size, next, 0};
    ov_store *store = NULL;
    char data_file[620];
    snprintf(data_file, sizeof data_file, "%s/data.mdb", config->data_dir);
    if (stat(data_file, &st) != 0) {
        fprintf(stderr, "rotate-key: there is no store in %s\n", config->data_dir);
        ov_keypair_free(next);
        return 1;
    }
    /* A rotation interrupted after its commit: the store knows the new key already. */
    if (ov_store_open(&options, &store) == OV_OK) {
        ov_store_close(store);
        ov_keypair_free(next);
        rc = install_key(key_path, next_path, kept, sizeof kept);
        if (rc != OV_OK) {
            fprintf(stderr, "rotate-key: cannot put the new key in place: %s\n", strerror(errno));
            return 1;
        }
        printf("finished an interrupted rotation: %s is the new key, the old one is %s\n", key_path,
               kept);
        return 0;
    }
    ov_keypair *key = NULL;
    if (open_store(config, &key, &store) != OV_OK) {
        ov_keypair_free(next);
        return 1;
    }
    if (ov_store_recovering(store)) {
        fprintf(stderr, "rotate-key: this node has not restored its own log yet; rotate its key "
                        "once it has\n");
        ov_store_close(store);
        ov_keypair_free(key);
        ov_keypair_free(next);
        return 1;
    }
    ov_write_op *op = ov_write_op_new(OV_WRITE_KEY_ROTATE);
    if (!op) {
        rc = OV_ENOMEM;
    } else {
        memcpy(op->new_key, next_pub, OV_PUBKEY_BYTES);
        rc = ov_store_write_one(store, op);
    }
    uint64_t seq = 0;
    ov_read *read = NULL;
    ov_log_head head;
    if (rc == OV_OK && ov_read_begin(store, &read) == OV_OK) {
        if (ov_read_head(read, ov_store_node_id(store), &head, NULL) == OV_OK)
            seq = head.seq;
        ov_read_end(read);
    }
    char id[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(store), id);
    ov_write_op_free(op);
    ov_store_close(store);
    ov_keypair_free(key);
    ov_keypair_free(next);
    if (rc != OV_OK) {
        fprintf(stderr, "rotate-key: %s\n", ov_strerror(rc));
        unlink(next_path);
        return 1;
    }
    if (install_key(key_path, next_path, kept, sizeof kept) != OV_OK) {
        fprintf(stderr,
                "rotate-key: the log has the new key (entry %llu), but it could not be put in "
                "place (%s): run rotate-key again\n",
                (unsigned long long)seq, strerror(errno));
        return 1;
    }
    char hex[2 * OV_PUBKEY_BYTES + 1];
    ov_hex_encode(next_pub, OV_PUBKEY_BYTES, hex);
    printf("node %s: key entry %llu introduces the new key %s\n", id, (unsigned long long)seq, hex);
    printf("the new key is %s; the old one is kept as %s\n", key_path, kept);
    return 0;
}

/* olievlekd new-log: a node that waits to restore its own log from its peers starts a new log
 * instead (when no peer holds the old one). */
static int run_new_log(const ov_config *config, int argc)
{
    if (argc > 1) {
        fprintf(stderr, "usage: olievlekd new-log [--data-dir DIR]\n");
        return 2;
    }
    ov_keypair *key = NULL;
    ov_store *store = NULL;
    if (open_store(config, &key, &store) != OV_OK)
        return 1;
    int was = ov_store_recovering(store);
    int rc = was ? ov_store_new_log(store) : OV_OK;
    ov_store_close(store);
    ov_keypair_free(key);
    if (rc != OV_OK) {
        fprintf(stderr, "new-log: %s\n", ov_strerror(rc));
        return 1;
    }
    printf(was ? "this node starts a new log; it no longer waits for its peers\n"
               : "this node was not waiting to restore its log: nothing changed\n");
    return 0;
}

static int open_store(const ov_config *config, ov_keypair **key, ov_store **store)
{
    int existed = 0;
    int rc = load_key_ex(config, key, &existed);
    if (rc != OV_OK)
        return rc;
    /* A store made for a key that existed before it: the data was lost, not new (section
     * "Recovering a node that lost its data" of docs/operations.md). */
    ov_store_options options = {config->data_dir, config->map_size, *key, existed};
    rc = ov_store_open(&options, store);
    if (rc == OV_EDENIED)
        ov_jlog_error("store.open_failed", "dir", config->data_dir, "detail",
                      "the key file holds an earlier key of this node, replaced by a rotation: use "
                      "the current key (if olievlekd rotate-key was interrupted, run it again)",
                      NULL);
    else if (rc == OV_EINVAL)
        ov_jlog_error("store.open_failed", "dir", config->data_dir, "detail",
                      "the store belongs to another node key", NULL);
    if (rc != OV_OK) {
        ov_jlog_error("store.open_failed", "dir", config->data_dir, "error", ov_strerror(rc), NULL);
        ov_keypair_free(*key);
        *key = NULL;
    }
    return rc;
}

static int run_import(const ov_config *config, int argc, char **operands)
{
    if (argc < 2) {
        fprintf(stderr, "usage: olievlekd import-schools FILE.csv [--sector SECTOR]\n");
        return 2;
    }
    ov_import_options options;
    ov_import_options_init(&options);
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(operands[i], "--sector") == 0 && i + 1 < argc)
            options.sector = operands[++i];
        else if (strncmp(operands[i], "--sector=", 9) == 0)
            options.sector = operands[i] + 9;
        else if (!path && strncmp(operands[i], "--", 2) != 0)
            path = operands[i];
        else {
            fprintf(stderr, "import-schools: unexpected argument '%s'\n", operands[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "import-schools: name the CSV file to import\n");
        return 2;
    }
    ov_keypair *key = NULL;
    ov_store *store = NULL;
    if (open_store(config, &key, &store) != OV_OK)
        return 1;
    ov_import_report report;
    int rc = ov_import_schools(store, path, &options, &report);
    ov_import_report_print(&report, stdout);
    ov_import_report_free(&report);
    ov_store_close(store);
    ov_keypair_free(key);
    if (rc != OV_OK) {
        fprintf(stderr, "import-schools: %s\n", ov_strerror(rc));
        return 1;
    }
    return report.rejected > 0 ? 3 : 0;
}

/* `olievlekd reindex`: rebuilds the search index from the records. Best with the node stopped:
 * beside a running node its batches take turns with the node's writes, and searches see the
 * index partly rebuilt until the command ends (the node notices the rebuild and reloads). */
static int run_reindex(const ov_config *config, int argc)
{
    if (argc > 1) {
        fprintf(stderr, "usage: olievlekd reindex [options]\n");
        return 2;
    }
    ov_keypair *key = NULL;
    ov_store *store = NULL;
    if (open_store(config, &key, &store) != OV_OK)
        return 1;
    int64_t started = wall_ms();
    int rc = ov_store_search_rebuild(store);
    ov_search *search = NULL;
    ov_read *read = NULL;
    ov_buf out;
    ov_buf_init(&out, 1u << 20);
    if (rc == OV_OK)
        rc = ov_search_new(store, &search);
    if (rc == OV_OK)
        rc = ov_read_begin(store, &read);
    if (rc == OV_OK) {
        /* One query loads the index's documents: the count says what was indexed. */
        ov_search_query query;
        memset(&query, 0, sizeof query);
        query.limit = 1;
        query.bouwsteen_min = 3;
        char detail[200];
        rc = ov_search_run(search, read, &query, &out, detail, sizeof detail);
        ov_read_end(read);
    }
    if (rc == OV_OK)
        printf("reindexed %zu published records in %.1f s\n", ov_search_documents(search),
               (double)(wall_ms() - started) / 1000);
    else
        fprintf(stderr, "reindex: %s\n", ov_strerror(rc));
    ov_buf_free(&out);
    ov_search_free(search);
    ov_store_close(store);
    ov_keypair_free(key);
    return rc == OV_OK ? 0 : 1;
}

/* The password for add-account: OLIEVLEK_PASSWORD, else one line of standard input (not echoed
 * on a terminal). */
static int read_password(char *out, size_t size)
{
    const char *env = getenv("OLIEVLEK_PASSWORD");
    if (env) {
        snprintf(out, size, "%s", env);
        return OV_OK;
    }
    int tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)size, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (!line)
        return OV_EINVAL;
    out[strcspn(out, "\r\n")] = '\0';
    return OV_OK;
}

/* `olievlekd add-account USERNAME ROLE [SCOPE]`: creates an account on a node's store, the way
 * to the first admin of a node without the demo data (and for scripted setups). SCOPE is the
 * region id of a moderator, the school id of a school editor, the person id of a brigadier. */
static int run_add_account(const ov_config *config, int argc, char **operands)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: olievlekd add-account USERNAME ROLE [SCOPE-ID] [options]\n"
                        "  ROLE: admin | moderator REGION-ID | school-editor SCHOOL-ID | "
                        "brigadier PERSON-ID\n"
                        "  the password comes from OLIEVLEK_PASSWORD or standard input\n");
        return 2;
    }
    const char *username = operands[1], *role = operands[2], *scope = argc == 4 ? operands[3] : 0;
    const char *scope_member = strcmp(role, "moderator") == 0       ? "region"
                               : strcmp(role, "school-editor") == 0 ? "school"
                               : strcmp(role, "brigadier") == 0     ? "person"
                                                                    : NULL;
    char password[OV_AUTH_PASSWORD_MAX + 2];
    if (read_password(password, sizeof password) != OV_OK) {
        fprintf(stderr, "add-account: no password given\n");
        return 2;
    }
    json_t *input =
        json_pack("{s:s, s:s, s:s}", "username", username, "role", role, "password", password);
    if (input && scope_member && scope)
        json_object_set_new(input, scope_member, json_string(scope));
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    if (!input || ov_auth_account_check(input, OV_ACCOUNT_INPUT_CREATE, &errs) != OV_OK) {
        for (int i = 0; i < errs.count; i++)
            fprintf(stderr, "add-account: %s: %s\n", errs.items[i].field, errs.items[i].message_en);
        json_decref(input);
        return 2;
    }
    char hash[OV_AUTH_HASH_MAX];
    int rc = ov_auth_hash_password(password, strlen(password), hash);
    memset(password, 0, sizeof password);
    json_object_del(input, "password");
    ov_keypair *key = NULL;
    ov_store *store = NULL;
    if (rc != OV_OK || open_store(config, &key, &store) != OV_OK) {
        json_decref(input);
        return 1;
    }
    ov_read *read = NULL;
    ov_id existing;
    json_t *found = NULL;
    if (ov_read_begin(store, &read) == OV_OK) {
        if (ov_read_account_by_name(read, username, &existing, &found) == OV_OK)
            rc = OV_EEXISTS;
        ov_read_end(read);
    }
    json_decref(found);
    ov_write_op *op = NULL;
    ov_wtxn *txn = NULL;
    if (rc == OV_OK && !(op = ov_write_op_new(OV_WRITE_ACCOUNT_PUT)))
        rc = OV_ENOMEM;
    if (rc == OV_OK)
        rc = ov_id_generate(&op->account_id, (uint64_t)wall_ms());
    if (rc == OV_OK)
        rc = ov_auth_account_build(input, hash, wall_ms(), 0, &op->account);
    if (rc == OV_OK)
        rc = ov_store_write_begin(store, &txn);
    if (rc == OV_OK) {
        ov_store_apply(txn, op, wall_ms());
        rc = op->result;
        rc = rc == OV_OK ? ov_store_write_commit(txn) : (ov_store_write_abort(txn), rc);
    }
    char id[OV_ID_CHARS + 1] = "";
    if (op)
        ov_id_format(&op->account_id, id);
    ov_write_op_free(op);
    json_decref(input);
    ov_store_close(store);
    ov_keypair_free(key);
    if (rc == OV_EEXISTS) {
        fprintf(stderr, "add-account: an account named %s exists already\n", username);
        return 1;
    }
    if (rc != OV_OK) {
        fprintf(stderr, "add-account: %s\n", ov_strerror(rc));
        return 1;
    }
    printf("account %s (%s) created: %s\n", username, role, id);
    return 0;
}

/* Loads search's per-document columns before the node serves, so the first search after a
 * start does not pay for it (about 0.4 s per 100,000 published records). */
static int warm_search(ov_node *node)
{
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc)
        return rc;
    ov_search_query query;
    memset(&query, 0, sizeof query);
    query.limit = 1;
    query.bouwsteen_min = 3;
    ov_buf out;
    ov_buf_init(&out, 1u << 20);
    char detail[200];
    int64_t started = wall_ms();
    rc = ov_search_run(node->search, read, &query, &out, detail, sizeof detail);
    ov_read_end(read);
    ov_buf_free(&out);
    if (rc == OV_OK) {
        char documents[32], took[32];
        snprintf(documents, sizeof documents, "%zu", ov_search_documents(node->search));
        snprintf(took, sizeof took, "%lld", (long long)(wall_ms() - started));
        ov_jlog_info("search.ready", "documents", documents, "ms", took, NULL);
    }
    return rc;
}

static int serve(const ov_config *config)
{
    daemon_state state;
    memset(&state, 0, sizeof state);
    ov_node *node = &state.node;
    node->config = config;
    node->started_ms = wall_ms();
    if (open_store(config, &node->key, &node->store) != OV_OK)
        return 1;

    char node_id[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(node->store), node_id);
    if (ov_store_recovering(node->store))
        ov_jlog_warn("node.recovering", "node", node_id, "detail",
                     "the key existed before this store: the node restores its own log from its "
                     "peers and refuses writes until then (olievlekd new-log starts a new log)",
                     NULL);
    if (config->demo) {
        ov_demo_counts counts;
        int rc = ov_demo_load(node->store, &counts);
        if (rc != OV_OK) {
            ov_jlog_error("demo.load_failed", "error", ov_strerror(rc), NULL);
            ov_store_close(node->store);
            ov_keypair_free(node->key);
            return 1;
        }
        char loaded[32];
        snprintf(loaded, sizeof loaded, "%d", counts.records);
        ov_jlog_info("demo.loaded", "records", loaded, NULL);
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    node->loop = &loop;
    set_fd_limit(config->max_connections);
    ov_live_options live_options = {
        .max_per_address = config->live_max_per_address,
        .handshakes_per_s = config->live_handshakes_per_s,
        .heartbeat_s = config->live_heartbeat_s,
        .queue = config->live_queue,
    };
    int rc = ov_live_new(node, &live_options, &node->live);
    ov_peer_config peers[OV_FEDERATION_MAX_PEERS];
    int peer_count = 0;
    char peers_error[256];
    if (rc == OV_OK &&
        (rc = ov_federation_parse_peers(config->peers, peers, OV_FEDERATION_MAX_PEERS, &peer_count,
                                        peers_error, sizeof peers_error)) != OV_OK)
        ov_jlog_error("config.invalid", "detail", peers_error, NULL);
    if (rc == OV_OK &&
        (rc = ov_federation_new(node, peers, peer_count, &node->federation)) != OV_OK)
        ov_jlog_error("config.invalid", "detail", "peers: a peer is this node itself", NULL);
    ov_writer_options writer_options = {
        .max_batch = config->writer_max_batch,
        .on_committed = on_committed,
        .committed_arg = node,
    };
    if (rc == OV_OK)
        rc = ov_writer_start(node->store, &loop, &writer_options, &node->writer);
    if (rc == OV_OK)
        rc = ov_auth_new(&node->auth);
    if (rc == OV_OK)
        rc = ov_search_new(node->store, &node->search);
    if (rc == OV_OK)
        rc = warm_search(node);
    /* Loading the demo data and the columns used heap the node will not need again; the trim
     * threshold set in main keeps it otherwise. */
    malloc_trim(0);
    if (rc == OV_OK) {
        struct stat st;
        if (stat(config->web_root, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = ov_static_files_open(config->web_root, &node->web);
            if (rc != OV_OK)
                ov_jlog_error("web.load_failed", "root", config->web_root, "error", ov_strerror(rc),
                              NULL);
        } else {
            ov_jlog_warn("web.missing", "root", config->web_root, NULL);
        }
    }
    if (rc == OV_OK) {
        ov_http_options http = {
            .host = config->listen_host,
            .port = config->listen_port,
            .max_body = config->max_body,
            .request_timeout_s = config->request_timeout_s,
            .handler = ov_api_handle,
            .app = node,
            .ws = {{ov_live_ws_handlers(), node->live},
                   {ov_federation_ws_handlers(), node->federation}},
        };
        rc = ov_http_start(&loop, &http, &node->http);
        if (rc != OV_OK)
            ov_jlog_error("http.listen_failed", "host", config->listen_host, "error",
                          ov_strerror(rc), NULL);
    }
    if (rc != OV_OK) {
        if (node->writer) {
            ov_writer_stop(node->writer, NULL, NULL);
            uv_run(&loop, UV_RUN_DEFAULT);
            ov_writer_free(node->writer);
        }
        if (node->live) {
            ov_live_stop(node->live);
            uv_run(&loop, UV_RUN_DEFAULT);
            ov_live_free(node->live);
        }
        if (node->federation) {
            ov_federation_stop(node->federation);
            uv_run(&loop, UV_RUN_DEFAULT);
            ov_federation_free(node->federation);
        }
        ov_static_files_free(node->web);
        ov_auth_free(node->auth);
        ov_search_free(node->search);
        uv_loop_close(&loop);
        ov_store_close(node->store);
        ov_keypair_free(node->key);
        return 1;
    }

    uv_signal_init(&loop, &state.sigterm);
    uv_signal_init(&loop, &state.sigint);
    state.sigterm.data = state.sigint.data = &state;
    uv_signal_start(&state.sigterm, on_signal, SIGTERM);
    uv_signal_start(&state.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    char port[16];
    snprintf(port, sizeof port, "%d", ov_http_port(node->http));
    ov_jlog_info("node.ready", "node", node_id, "host", config->listen_host, "port", port,
                 "data_dir", config->data_dir, NULL);

    ov_federation_start(node->federation);
    ov_http_run(node->http);

    ov_http_free(node->http);
    ov_sync_api_free(node);
    ov_federation_free(node->federation);
    ov_live_free(node->live);
    ov_writer_free(node->writer);
    ov_static_files_free(node->web);
    ov_auth_free(node->auth);
    ov_search_free(node->search);
    rc = uv_loop_close(&loop);
    if (rc != 0)
        ov_jlog_warn("loop.unclosed_handles", NULL);
    ov_store_close(node->store);
    ov_keypair_free(node->key);
    return 0;
}

int main(int argc, char **argv)
{
    /* Password hashing allocates 19 MiB at a time. A fixed mmap threshold keeps such blocks out of
     * the heap (glibc would otherwise raise the threshold after the first free and keep the next
     * ones in a heap it never shrinks), so memory goes back to the system after each login. It
     * stays above the 2 MiB dirty-page list LMDB allocates for every (nested) write transaction,
     * which is reused from the heap rather than mapped and unmapped per write. */
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    /* The same list is freed after every op of a batch. With glibc's default trim threshold
     * (128 KiB) each free gave the 2 MiB back with madvise and the next op faulted it in again:
     * a TLB shootdown per write, ~15% of the writer's time. Free memory at the top of a heap is
     * kept up to this much. */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    /* No fast bins: records parsed on the thread pool are freed on the loop, and their chunks
     * piled up in the fast bins of the pool's arenas until the next large request there (a
     * search analysis, one per record) merged them all (malloc_consolidate), then split them
     * again for the next record's parse. Freed into the per-thread cache or merged at once
     * instead, a node pulling from a peer spends ~8% less CPU (measured: on the pool and the
     * writer). */
    mallopt(M_MXFAST, 0);

    int first = 1;
    const char *command = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        command = argv[1];
        first = 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(ov_config_usage(), stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("olievlekd %s\n", OV_VERSION);
            return 0;
        }
    }

    static ov_config config;
    char err[512];
    ov_config_defaults(&config);
    const char *file = ov_config_file_arg(argc, argv);
    if (file && ov_config_load_file(&config, file, err, sizeof err) != OV_OK) {
        fprintf(stderr, "olievlekd: %s\n", err);
        return 2;
    }
    if (ov_config_load_env(&config, err, sizeof err) != OV_OK) {
        fprintf(stderr, "olievlekd: %s\n", err);
        return 2;
    }
    char *operands[16];
    int operand_count = 0;
    operands[operand_count++] = (char *)command;
    int more = 0;
    if (ov_config_parse_args(&config, argc, argv, first, operands + 1, 15, &more, err,
                             sizeof err) != OV_OK) {
        fprintf(stderr, "olievlekd: %s\n%s", err, ov_config_usage());
        return 2;
    }
    operand_count += more;
    ov_jlog_set_level((ov_jlog_level)config.log_level);

    if (strcmp(command, "serve") == 0) {
        if (operand_count > 1) {
            fprintf(stderr, "olievlekd: unexpected argument '%s'\n%s", operands[1],
                    ov_config_usage());
            return 2;
        }
        return serve(&config);
    }
    if (strcmp(command, "import-schools") == 0)
        return run_import(&config, operand_count, operands);
    if (strcmp(command, "reindex") == 0)
        return run_reindex(&config, operand_count);
    if (strcmp(command, "node-id") == 0)
        return run_node_id(&config);
    if (strcmp(command, "add-account") == 0)
        return run_add_account(&config, operand_count, operands);
    if (strcmp(command, "rotate-key") == 0)
        return run_rotate_key(&config, operand_count);
    if (strcmp(command, "new-log") == 0)
        return run_new_log(&config, operand_count);
    fprintf(stderr, "olievlekd: unknown command '%s'\n%s", command, ov_config_usage());
    return 2;
}
