/*
 * The search endpoints of the REST API: /api/v1/search, /api/v1/{kind}/{id}/similar and
 * /api/v1/requests/{id}/matches (docs/openapi.yaml).
 */
#ifndef OV_SEARCH_API_H
#define OV_SEARCH_API_H

#include "server/http.h"
#include "server/node.h"

/* Answers the request when path is one of the search endpoints and returns 1; else returns 0. */
int ov_search_api_route(ov_node *node, ov_http_request *request, const char *path);

#endif
