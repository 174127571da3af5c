/*
 * Federation: this node's websockets to the other nodes it is configured to peer with, over which
 * the origin logs of every node are replicated (docs/protocol.md §8). Loop thread only.
 *
 * Each configured peer is named by its node id (the fingerprint of its genesis key, pinned) and,
 * when this node should dial it, a URL; a peer without a URL may only dial in. A connection
 * proves both keys (HELLO/PROOF), compares digests of what each holds, exchanges summaries when
 * they differ and then streams runs of log entries — each ending at a signed head of its origin
 * — in batches the receiver asks for. A received run is checked on the thread pool (one ECDSA
 * verification, SHA-256 over the rest), stored by the writer in one transaction, and sent on at
 * once to every other connected peer that lacks it; so are this node's own commits.
 */
#ifndef OV_FEDERATION_H
#define OV_FEDERATION_H

#include <jansson.h>

#include "server/http.h"
#include "server/node.h"

typedef struct ov_federation ov_federation;

#define OV_FEDERATION_MAX_PEERS 64

typedef struct {
    ov_id id;
    char url[256]; /* empty: the peer dials in */
} ov_peer_config;

/* Parses a peers setting: comma-separated items "NODEID@ws://host:port" (dial) or "NODEID"
 * (accept only). Errors: OV_EINVAL with err filled. */
int ov_federation_parse_peers(const char *text, ov_peer_config *peers, int max, int *count,
                              char *err, size_t err_size);

/* Creates the module for node (store, writer, key, loop; node->http must exist before
 * ov_federation_start). Errors: OV_ENOMEM, OV_EINVAL (a peer that is this node). */
int ov_federation_new(ov_node *node, const ov_peer_config *peers, int count, ov_federation **out);
/* The websocket endpoint for peers dialling in (/api/v1/peer, olievlek.peer.v1); app = the
 * ov_federation. */
const ov_ws_handlers *ov_federation_ws_handlers(void);
/* Starts dialling the peers that have URLs (after the HTTP server runs). */
void ov_federation_start(ov_federation *fed);
/* The writer committed: send what is new to the connected peers. */
void ov_federation_notify(ov_federation *fed);
/* The peers and their connections, for /api/v1/node ({"id","url","connected","state",...}). */
json_t *ov_federation_peers_json(const ov_federation *fed);
/* Publishes the counters as gauges for /metrics. */
void ov_federation_publish_metrics(const ov_federation *fed);
/* Closes every connection (1001) and stops dialling; timers close as the loop runs. */
void ov_federation_stop(ov_federation *fed);
/* After the HTTP layer is freed and the loop ran once more since ov_federation_stop. */
void ov_federation_free(ov_federation *fed);

#endif
