/*
 * The node's HTTP surface: /healthz, /metrics, the REST API under /api/v1 (records, lists,
 * the change feed, node info; sessions and accounts via session_api.h) and, for every other
 * path, the web client's files. docs/openapi.yaml describes it.
 */
#ifndef OV_API_H
#define OV_API_H

#include "server/auth.h"
#include "server/http.h"
#include "server/node.h"

/* The ov_http_handler of the node; app is the ov_node. */
void ov_api_handle(void *app, ov_http_request *request);

/* May who see this version of a record (read is the snapshot it came from)? Published records and
 * tombstones: everyone; drafts: those the role rules allow. Loop thread only. */
int ov_api_can_see(ov_node *node, ov_read *read, const ov_principal *who,
                   const ov_record_meta *meta, const char *json, size_t len);

/* The same rule on any thread (the school region cache of the loop is not used). */
int ov_api_can_see_anywhere(ov_read *read, const ov_principal *who, const ov_record_meta *meta,
                            const char *json, size_t len);

/* What the change feed and live updates show in place of a record its reader may not see: that
 * something with this id and kind changed, not what. Formats into out (at least 96 bytes) and
 * returns the length. */
int ov_api_hidden_change(char *out, size_t size, const ov_record_meta *meta);

/* Limits of the list and change endpoints. */
#define OV_API_LIST_DEFAULT    50
#define OV_API_LIST_MAX        200
#define OV_API_CHANGES_DEFAULT 100
#define OV_API_CHANGES_MAX     1000

#endif
