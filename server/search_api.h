/*
 * The search endpoints of the REST API: /api/v1/search, /api/v1/{kind}/{id}/similar and
 * /api/v1/requests/{id}/matches (docs/openapi.yaml).
 */
#ifndef OV_SEARCH_API_H
#define OV_SEARCH_API_H

#include "server/http.h"
#include "proto/id.h"
#include "proto/record.h"
#include "server/node.h"

#define OV_SEARCH_API_ROUTE         "/api/v1/search"
#define OV_SEARCH_API_ROUTE_SIMILAR "/api/v1/{kind}/{id}/similar"
#define OV_SEARCH_API_ROUTE_MATCHES "/api/v1/requests/{id}/matches"

/* GET /api/v1/search (api.c routes it). */
void ov_search_api_search(ov_node *node, ov_http_request *request);

/* GET /api/v1/{kind}/{id}/similar, or with matches (kind is request) the brigadiers who match a
 * help request. */
void ov_search_api_similar(ov_node *node, ov_http_request *request, ov_kind kind, const ov_id *id,
                           int matches);

#endif
