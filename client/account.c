/*
 * Signing in and out. The session token is the only secret the client keeps: it lives in
 * <replica>/token, created with mode 0600 and replaced atomically, never in the LMDB store
 * (which backups and copies of the replica carry around).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/net.h"
#include "client/replica.h"

static int write_token(olievlek_replica *r, const char *token)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/token", r->dir);
    snprintf(tmp, sizeof tmp, "%s/token.%ld", r->dir, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return olv_fail(r, OLIEVLEK_ESTORE, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(token);
    int ok = fchmod(fd, 0600) == 0 && write(fd, token, len) == (ssize_t)len &&
             write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return olv_fail(r, OLIEVLEK_ESTORE, "cannot write %s: %s", path, strerror(e));
    }
    return OLIEVLEK_OK;
}

static int read_url(olievlek_replica *r, char **url)
{
    MDB_txn *txn;
    int rc = olv_txn_begin(r, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    rc = olv_meta_get(r, txn, "node_url", url);
    mdb_txn_abort(txn);
    return rc ? olv_fail(r, OLIEVLEK_ESTORE, "the replica's settings are damaged") : OLIEVLEK_OK;
}

int olievlek_login(olievlek_replica *replica, const char *username, const char *password)
{
    char *url;
    int rc = read_url(replica, &url);
    if (rc)
        return rc;
    json_t *body = json_pack("{s:s, s:s}", "username", username, "password", password);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    olv_net *net = olv_net_new(url);
    free(url);
    if (!text || !net) {
        free(text);
        olv_net_free(net);
        return olv_fail(replica, OLIEVLEK_ENOMEM, "out of memory");
    }
    olv_request req = {.method = "POST",
                       .path = "/api/v1/session",
                       .content_type = "application/json",
                       .body = text,
                       .body_len = strlen(text),
                       .max_body = 1u << 20};
    olv_response resp;
    char error[256];
    int sent = olv_net_send(net, &req, &resp, error, sizeof error);
    olv_net_free(net);
    memset(text, 0, strlen(text)); /* the password */
    free(text);
    if (sent != 0) {
        olv_response_free(&resp);
        return olv_fail(replica, OLIEVLEK_ENETWORK,
                        "cannot reach the node (%s): log in when "
                        "you are online",
                        error);
    }
    json_t *answer = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    long status = resp.status;
    olv_response_free(&resp);
    const char *token = json_string_value(json_object_get(answer, "token"));
    if (status == 201 || status == 200) {
        if (!token) {
            rc = olv_fail(replica, OLIEVLEK_EPROTO, "the node's sign-in answer has no token");
        } else if ((rc = write_token(replica, token)) == OLIEVLEK_OK) {
            MDB_txn *txn;
            if ((rc = olv_txn_begin(replica, 0, &txn)) == OLIEVLEK_OK) {
                rc = olv_meta_put(replica, txn, "username", username);
                /* A brigadier's profile: visit notes are theirs by default. */
                const char *person = json_string_value(
                    json_object_get(json_object_get(answer, "account"), "person"));
                MDB_val pk = {6, "person"};
                if (!rc && person)
                    rc = olv_meta_put(replica, txn, "person", person);
                else if (!rc)
                    mdb_del(txn, replica->meta, &pk, NULL);
                if (!rc)
                    rc = olv_history_add(replica, txn, "logged in as %s", username);
                if (rc)
                    mdb_txn_abort(txn);
                else
                    rc = olv_txn_commit(replica, txn, 1);
            }
            olv_token_load(replica);
        }
    } else if (status == 401 || status == 400 || status == 422) {
        rc = olv_fail(replica, OLIEVLEK_EAUTH, "the node does not know this name and password");
    } else if (status == 429) {
        rc = olv_fail(replica, OLIEVLEK_EDENIED,
                      "too many sign-in attempts: wait a few minutes and try again");
    } else {
        rc = olv_fail(replica, OLIEVLEK_EPROTO, "the node answered %ld to the sign-in", status);
    }
    json_decref(answer);
    return rc;
}

int olievlek_logout(olievlek_replica *replica)
{
    olv_token_load(replica);
    if (replica->token) {
        char *url;
        if (read_url(replica, &url) == OLIEVLEK_OK) {
            olv_net *net = olv_net_new(url);
            free(url);
            if (net) {
                /* Best effort: offline, the token simply expires at the node. */
                olv_request req = {.method = "DELETE",
                                   .path = "/api/v1/session",
                                   .token = replica->token,
                                   .max_body = 65536};
                olv_response resp;
                char error[256];
                olv_net_send(net, &req, &resp, error, sizeof error);
                olv_response_free(&resp);
                olv_net_free(net);
            }
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/token", replica->dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return olv_fail(replica, OLIEVLEK_ESTORE, "cannot remove %s: %s", path, strerror(errno));
    free(replica->token);
    replica->token = NULL;
    MDB_txn *txn;
    int rc = olv_txn_begin(replica, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {8, "username"}, pk = {6, "person"};
    mdb_del(txn, replica->meta, &k, NULL);
    mdb_del(txn, replica->meta, &pk, NULL);
    olv_history_add(replica, txn, "logged out");
    return olv_txn_commit(replica, txn, 1);
}
