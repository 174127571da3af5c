/*
 * POST /api/v1/sync: an offline client pulls the same verifiable runs a peer node receives
 * (docs/protocol.md §9.1), over plain HTTP. The answer is built off the event loop, from one read
 * snapshot, into one buffer: a clone of a whole node is mostly copying log entries and records.
 */
#ifndef OV_SYNC_API_H
#define OV_SYNC_API_H

#include "server/auth.h"
#include "server/http.h"
#include "server/node.h"

#define OV_SYNC_API_ROUTE "/api/v1/sync"
#define OV_SYNC_API_TYPE  "application/vnd.olievlek.sync"

/* May who read this version of a record? Called on a worker thread with the snapshot the record
 * came from (api.h: ov_api_can_see_anywhere). */
typedef int (*ov_sync_api_visible_fn)(ov_read *read, const ov_principal *who,
                                      const ov_record_meta *meta, const char *json, size_t len);

/* Answers a POST to OV_SYNC_API_ROUTE for who (copied). Loop thread. */
void ov_sync_api_pull(ov_node *node, ov_http_request *req, const ov_principal *who,
                      ov_sync_api_visible_fn visible);

/* Frees the answer blocks kept for later pulls (at shutdown, after the HTTP server). */
void ov_sync_api_free(ov_node *node);

#endif
