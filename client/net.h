/*
 * HTTP to the node, over libcurl: one connection kept alive for a whole pull or push. Internal
 * to libolievlek.
 */
#ifndef OLV_NET_H
#define OLV_NET_H

#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

typedef struct olv_net olv_net;

typedef struct {
    long status; /* HTTP status; 0 when no answer came */
    char content_type[96];
    char etag[40]; /* without quotes */
    char location[160];
    int replayed;           /* Idempotency-Replayed: true */
    unsigned retry_after_s; /* Retry-After, seconds; 0 when absent */
    ov_buf body;            /* capped by the request's max_body */
} olv_response;

typedef struct {
    const char *method;       /* GET, POST, PUT, DELETE */
    const char *path;         /* "/api/v1/sync?kinds=case" (appended to the node URL) */
    const char *content_type; /* of body, or NULL */
    const void *body;
    size_t body_len;
    const char *token;           /* Authorization: Bearer, or NULL */
    const char *if_match;        /* a version, sent as If-Match: "N"; or NULL */
    const char *idempotency_key; /* or NULL */
    size_t max_body;             /* cap on the answer's body */
    ov_buf *reuse; /* a buffer whose block the body goes into (taken, left empty), or NULL */
} olv_request;

/* A connection to base_url (http://host:port). NULL when out of memory. */
olv_net *olv_net_new(const char *base_url);
void olv_net_free(olv_net *net);

/* Sends request and waits for the whole answer. 0 with *response filled (any HTTP status), or
 * -1 when no answer came (refused, timed out, cut off, body over max_body); *error then says
 * why. response must be freed with olv_response_free either way. */
int olv_net_send(olv_net *net, const olv_request *request, olv_response *response, char *error,
                 size_t error_size);
void olv_response_free(olv_response *response);

/* libcurl's process-wide setup; call once before any thread uses the network. */
void olv_net_global_init(void);

#endif
