/*
 * The running node: the pieces every request handler needs, owned by main.c. Handlers receive a
 * pointer to it as their application context; nothing here is global.
 */
#ifndef OV_NODE_H
#define OV_NODE_H

#include <stdint.h>
#include <uv.h>

#include "proto/crypto.h"
#include "server/http.h"
#include "server/store.h"
#include "server/writer.h"

struct ov_auth;
struct ov_static_files;
struct ov_config;

/* Answer blocks of pulls kept for reuse: the one being sent and the next being built. */
#define OV_PULL_SPARES 2

/* The region of a recently seen school, so the role checks of a write need not parse the school's
 * record every time. An entry holds while the school's change_seq is the one it was read at. */
#define OV_SCHOOL_REGION_SLOTS 256
typedef struct {
    ov_id school;
    uint64_t change_seq;
    ov_id region;
} ov_school_region;

typedef struct ov_node {
    uv_loop_t *loop;
    ov_store *store;
    ov_writer *writer;
    ov_http_server *http;
    struct ov_live *live;             /* live updates (live.h) */
    struct ov_federation *federation; /* peers (federation.h) */
    struct ov_search *search;         /* search (search.h); loop thread */
    struct ov_auth *auth;             /* rate limits for logins (auth.h) */
    struct ov_static_files *web;      /* the web client's files (static_files.h) */
    const struct ov_config *config;   /* config.h */
    ov_keypair *key;                  /* node key, also borrowed by the store */
    int64_t started_ms;
    int shutting_down;   /* set on SIGTERM: new writes get 503 */
    int pulls_in_flight; /* POST /api/v1/sync answers being built (sync_api.c); loop thread */
    /* Answer blocks of pulls already sent, kept for the next ones (sync_api.c); loop thread. */
    struct {
        void *block;
        size_t cap;
    } pull_spares[OV_PULL_SPARES];
    ov_school_region school_regions[OV_SCHOOL_REGION_SLOTS]; /* loop thread only */
} ov_node;

#endif
