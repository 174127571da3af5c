/*
 * Live updates: the change feed pushed over websockets (GET /api/v1/live, subprotocol
 * olievlek.v1) to subscriptions with filters, with resume from a feed position, per-connection
 * queues with a cap, heartbeats, and caps per address. docs/protocol.md section 7 is the
 * protocol; this module is its node side. Loop thread only.
 *
 * The feed is the only source: after each committed write batch the module reads the feed from
 * the last position it published and fans every change out. A subscription that resumes reads the
 * feed itself, from its own position, until it reaches the end, and then joins the fan-out; since
 * both happen on the loop thread, no change is skipped or sent twice between the two.
 */
#ifndef OV_LIVE_H
#define OV_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "server/http.h"
#include "server/node.h"

typedef struct ov_live ov_live;

typedef struct {
    unsigned max_per_address;  /* open live connections from one address; 0 = 256 */
    unsigned handshakes_per_s; /* new connections per second from one address; 0 = 50 */
    unsigned heartbeat_s;      /* 0 = 30 */
    unsigned queue;            /* changes queued per connection before it is closed; 0 = 256 */
} ov_live_options;

/* Creates the module for node (its store and loop). Errors: OV_ENOMEM, or the store's when it
 * cannot be read. */
int ov_live_new(ov_node *node, const ov_live_options *options, ov_live **out);
/* The websocket handlers to give the HTTP layer (ws_app = the ov_live). */
const ov_ws_handlers *ov_live_ws_handlers(void);
/* The change feed may have grown: fan out what is new. */
void ov_live_notify(ov_live *live);
/* Closes every connection (1001, going away), refuses new ones and stops the heartbeat (its
 * timers close as the loop runs). */
void ov_live_stop(ov_live *live);
/* Frees the module: after the HTTP layer is freed, so that every connection has closed, and after
 * the loop has run once more since ov_live_stop, so that its timers are closed. */
void ov_live_free(ov_live *live);

#endif
