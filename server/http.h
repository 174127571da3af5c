/*
 * HTTP/1.1 server on the node's libuv loop, built on libwebsockets. The only module (with the
 * live-update module) that includes <libwebsockets.h>; everything above it sees ov_http_request.
 *
 * The layer reads a whole request (headers and a body of at most max_body bytes) before it calls
 * the application's handler; it answers by itself, with a minimal application/problem+json of its
 * own (it sits below problem.c), what never reaches the handler: 413 for a body over the limit
 * (decided from Content-Length before reading it), 408 for a sender too slow to finish within
 * request_timeout_s, 400 for an unparseable request. Keep-alive is supported; every response has an
 * exact Content-Length.
 *
 * A handler answers exactly once, at once or later (after a durable write, say), always on the
 * loop thread. A request stays valid until it is answered, even if its connection closes first:
 * the answer is then discarded.
 */
#ifndef OV_HTTP_H
#define OV_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ov_http_server ov_http_server;
typedef struct ov_http_request ov_http_request;

typedef enum {
    OV_HTTP_GET,
    OV_HTTP_HEAD,
    OV_HTTP_POST,
    OV_HTTP_PUT,
    OV_HTTP_DELETE,
    OV_HTTP_OPTIONS,
    OV_HTTP_OTHER
} ov_http_method;

typedef void (*ov_http_handler)(void *app, ov_http_request *request);

/* ---- Websockets ---------------------------------------------------------------------------
 * A few paths may be upgraded to a websocket, each with one subprotocol (the live updates, the
 * node-to-node federation). Any other upgrade is answered 400 with a problem document saying
 * what to send. Messages are whole messages, text or binary as the endpoint says (fragments are
 * joined, up to max_message bytes; more is closed with 1009, frames of the other kind with
 * 1003). The node can also dial out: ov_ws_connect opens a client websocket with the same
 * handlers and sending functions. */
typedef struct ov_ws ov_ws;

typedef struct {
    const char *peer;          /* IP address as text */
    const char *cookie;        /* Cookie header, or NULL */
    const char *authorization; /* Authorization header, or NULL */
} ov_ws_upgrade;

typedef struct {
    const char *path;        /* e.g. "/api/v1/live" */
    const char *subprotocol; /* e.g. "olievlek.v1" */
    size_t max_message;      /* bytes of one incoming message; 0 = 8 KiB */
    int binary;              /* messages are binary (1) or text (0), both ways */
    /* May this upgrade go ahead? 0 admits; otherwise an HTTP status to answer with (429, 503),
     * *detail the English explanation (a constant string) and *retry_after_s, when not 0, a
     * Retry-After header. */
    int (*admit)(void *app, const ov_ws_upgrade *upgrade, const char **detail,
                 unsigned *retry_after_s);
    /* The websocket is open: returns the application's state for it, or NULL to close. For a
     * connection the node dialled (ov_ws_connect), app is the state given there and upgrade is
     * NULL. */
    void *(*open)(void *app, ov_ws *ws, const ov_ws_upgrade *upgrade);
    void (*message)(void *conn, const char *text, size_t len);
    /* ov_ws_want_writable was called and the connection can take more. */
    void (*writable)(void *conn);
    /* The peer answered a ping (ov_ws_ping) with a pong. May be NULL. */
    void (*pong)(void *conn);
    /* The connection is gone; ws must not be used after this returns. For a dialled connection
     * this is called exactly once, also when it never opened. */
    void (*closed)(void *conn);
} ov_ws_handlers;

#define OV_HTTP_WS_ENDPOINTS 2
typedef struct {
    const ov_ws_handlers *handlers; /* NULL: unused slot */
    void *app;                      /* passed to admit and open */
} ov_ws_endpoint;

/* Sends one message (text or binary, as the endpoint's handlers say): head then body, joined
 * (either may be empty). OV_OK when handed to the
 * connection; OV_EAGAIN when the connection still holds unsent output (nothing was sent: call
 * ov_ws_want_writable and send from the writable handler); OV_EIO when it is closing. */
int ov_ws_send(ov_ws *ws, const char *head, size_t head_len, const char *body, size_t body_len);
/* True when ov_ws_send would not answer OV_EAGAIN. */
int ov_ws_ready(const ov_ws *ws);
void ov_ws_want_writable(ov_ws *ws);
/* Sends a ping frame (browsers answer it by themselves) when the connection is ready; returns
 * like ov_ws_send. */
int ov_ws_ping(ov_ws *ws);
/* Closes with a close frame carrying code and reason (≤ 120 bytes) once the peer can take it; a
 * peer that cannot within 30 s is cut off. Nothing more is sent. */
void ov_ws_close(ov_ws *ws, int code, const char *reason);

typedef struct {
    const char *host;             /* listen address, e.g. "127.0.0.1" or "::" */
    int port;                     /* 0 = any free port (see ov_http_port) */
    size_t max_body;              /* bytes; 0 = 1 MiB */
    unsigned request_timeout_s;   /* headers and body must arrive within this; 0 = 30 */
    unsigned keepalive_timeout_s; /* idle keep-alive connections are closed; 0 = 60 */
    ov_http_handler handler;
    void *app;
    ov_ws_endpoint ws[OV_HTTP_WS_ENDPOINTS]; /* none: every websocket upgrade is refused */
} ov_http_options;

/* Starts listening on loop. Open connections are bounded by the process's open-file limit, which
 * lws sizes its connection table from (set it before this). Errors: OV_EIO (cannot bind),
 * OV_ENOMEM. */
int ov_http_start(uv_loop_t *loop, const ov_http_options *options, ov_http_server **out);
/* Runs the node's thread: lws's poll loop for the HTTP sockets with the libuv loop embedded in it
 * (see http.c for why). Replaces uv_run(loop, UV_RUN_DEFAULT) while the server exists; returns
 * uv_run's result once the server is stopped and the loop has nothing left to do. */
int ov_http_run(ov_http_server *server);
/* Dials a websocket: url is ws://host:port/path (wss:// for TLS), with handlers->subprotocol.
 * handlers->open(conn, ws, NULL) follows once it is open, handlers->closed(conn) when it ends or
 * fails (always later, on the loop, never from inside this call). OV_OK; OV_EINVAL for a URL
 * this cannot dial; OV_EIO when the connection cannot even be started (then nothing is called).
 * *out (may be NULL) is the ws, usable with ov_ws_close before it opens. */
int ov_ws_connect(ov_http_server *server, const char *url, const ov_ws_handlers *handlers,
                  void *conn, ov_ws **out);

/* The bound port (useful with port 0). */
int ov_http_port(const ov_http_server *server);
/* Stops accepting, closes connections once their pending answers are written, and calls
 * on_stopped(arg) on the loop when everything is closed. Free with ov_http_free after that. */
void ov_http_stop(ov_http_server *server, void (*on_stopped)(void *arg), void *arg);
void ov_http_free(ov_http_server *server);

/* ---- The request (all strings borrowed, valid until the request is answered) ------------- */
ov_http_method ov_http_request_method(const ov_http_request *request);
const char *ov_http_request_method_name(const ov_http_request *request);
/* The percent-decoded path without the query, NUL-terminated, e.g. "/api/v1/cases/01J…". A path
 * whose decoding yields NUL or invalid UTF-8 is answered 400 before the handler sees it. */
const char *ov_http_request_path(const ov_http_request *request);
/* The first value of query parameter name, percent-decoded ('+' = space), or NULL. */
const char *ov_http_request_query(const ov_http_request *request, const char *name);
/* All values of name (repeated parameters), up to max; returns how many were stored. */
int ov_http_request_query_all(const ov_http_request *request, const char *name, const char **values,
                              int max);
/* Calls fn for every query parameter (name, value decoded) in order; stops on non-zero. */
int ov_http_request_query_each(const ov_http_request *request,
                               int (*fn)(void *ctx, const char *name, const char *value),
                               void *ctx);
/* A request header by case-insensitive name ("if-match"), or NULL. The layer keeps the headers
 * an application of ours reads: the standard request headers lws knows by name (Accept*,
 * Authorization, Cookie, Content-*, Connection, Host, If-*, Origin, Range, Referer, User-Agent,
 * X-Forwarded-For, Transfer-Encoding), X-Request-Id and Idempotency-Key; others read as NULL.
 * Repeated headers are joined by lws. */
const char *ov_http_request_header(const ov_http_request *request, const char *name);
/* The body (may be empty; not NUL-terminated). */
const char *ov_http_request_body(const ov_http_request *request, size_t *len);
/* The peer's IP address as text. */
const char *ov_http_request_peer(const ov_http_request *request);
/* Monotonic time (ns) at which the request was complete, for latency metrics. */
uint64_t ov_http_request_start_ns(const ov_http_request *request);

/* ---- The answer -------------------------------------------------------------------------- */
/* Answers with status, a Content-Type (may be NULL for no body), extra header lines (each ending
 * in "\r\n", may be NULL), and body (copied; for HEAD only its length is sent). Frees the request.
 * route is a low-cardinality label for metrics ("/api/v1/{kind}/{id}"), may be NULL. */
void ov_http_respond(ov_http_request *request, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t body_len,
                     const char *route);

/* Bytes an answer built in place leaves free before its body, for the status line, the headers
 * and libwebsockets' own headroom. */
#define OV_HTTP_HEADROOM 2048

/* Hands a block given to ov_http_respond_in_place back to its owner (loop thread). */
typedef void ov_http_release_fn(void *ctx, void *block);

/* As ov_http_respond, for a large body built at block + OV_HTTP_HEADROOM (body_len bytes): the
 * headers are written into the headroom and the answer is sent from the block, never copied.
 * The request holds block until the answer is sent or abandoned, then calls release(ctx, block)
 * on the loop thread; also at once when the request was already answered. extra_headers should
 * stay well under a kilobyte (longer ones make the body be copied). */
void ov_http_respond_in_place(ov_http_request *request, int status, const char *content_type,
                              const char *extra_headers, void *block, size_t body_len,
                              const char *route, ov_http_release_fn *release, void *release_ctx);

#endif
