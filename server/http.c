/*
 * HTTP/1.1 with libwebsockets 4.1, sharing one thread with the node's libuv loop.
 *
 * Who waits for what: lws serves its sockets with its own poll() loop, and the libuv loop (writer
 * completions, the thread pool, timers, signals) runs embedded in it. libuv's backend (epoll) fd
 * is one more descriptor in lws's poll set, and an lws timer wakes the poll when libuv's next
 * timer is due; ov_http_run then runs one non-blocking libuv iteration. Both sides stay on one
 * thread, so handlers and libuv callbacks may call each other freely.
 *
 * Why not lws's libuv plugin: it restarts a uv_poll watcher for every change of the events lws
 * wants, even unchanged ones, and libuv implements each restart as EPOLL_CTL_DEL plus ADD. That
 * was ~6 epoll_ctl calls per keep-alive request, most of the cost of a GET (docs/benchmarks.md).
 * lws's poll loop changes interest by editing its pollfd array, without a system call.
 *
 * A request is collected into a pooled ov_http_request: lws has already percent-decoded and
 * normalised the path ("/a/../b" is "/b") and split the query at unencoded '&' and ';' with '+'
 * as space, so we copy those pieces, the headers we know and the body into the request and check
 * what lws does not (UTF-8, parameter count and size, body size). The handler then answers at
 * once or later. The answer is formatted into one buffer with LWS_PRE headroom — status line,
 * headers, exact Content-Length and body — and sent with one lws_write(), directly from the lws
 * callback when the handler answered synchronously (the fast path: no extra POLLOUT round) or
 * from LWS_CALLBACK_HTTP_WRITEABLE after a deferred answer. Bodies larger than WRITE_CHUNK go out
 * a chunk per writeable callback, so lws never has to copy more than one chunk it could not send.
 *
 * Request objects and their buffers are recycled through a free list, so a keep-alive GET costs
 * no malloc of ours. The current request of a connection hangs on the wsi's opaque user data
 * (which, unlike per-session data, survives lws rebinding the protocol after each transaction);
 * when a connection closes before its deferred answer, the request is detached from the wsi and
 * lives on until ov_http_respond, which then just recycles it.
 *
 * Timeouts: a new connection must deliver a complete request (headers and body) within
 * request_timeout_s, and a body must arrive within request_timeout_s of its headers; otherwise
 * the layer answers 408 and closes (an lws per-wsi timer). Idle keep-alive connections are closed
 * by lws after keepalive_timeout_s. lws's own timeouts are set a little longer than ours so that
 * the 408 is what a slow client sees.
 */
#include "server/http.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/error.h"
#include "server/jlog.h"
#include "server/metrics.h"

#define DEFAULT_MAX_BODY        (1u << 20)
#define DEFAULT_REQUEST_TIMEOUT 30
#define DEFAULT_KEEPALIVE       60
#define HEADER_DATA_MAX         8192 /* lws's header table per request: request line + headers */
#define ARENA_SIZE              (2 * HEADER_DATA_MAX + 1024) /* path, query and headers copied */
#define QUERY_MAX_PARAMS        64
#define QUERY_MAX_BYTES         8192
#define MAX_HEADERS             32
#define WRITE_CHUNK             (128u << 10)
#define KEEP_BUFFER             (64u << 10) /* recycled requests keep buffers up to this size */
#define POOL_MAX                512
#define ROUTE_MAX               96
#define PEER_MAX                64
#define RESPONSE_HEAD_MAX       1024 /* status line and our headers, without extra_headers */
#define STOP_GRACE_MS           5000 /* ov_http_stop waits this long for answers to go out */

typedef enum {
    REQ_BODY,     /* headers read, body arriving */
    REQ_HANDLING, /* with the handler */
    REQ_ANSWERED, /* answer formatted, being written */
} request_state;

typedef enum {
    CHUNK_SIZE,
    CHUNK_EXT,
    CHUNK_SIZE_LF,
    CHUNK_DATA,
    CHUNK_DATA_CR,
    CHUNK_DATA_LF,
    CHUNK_TRAILER,
    CHUNK_TRAILER_LINE,
    CHUNK_DONE,
} chunk_state;

typedef struct {
    const char *name; /* lower case */
    const char *value;
} header;

struct ov_http_request {
    ov_http_server *server;
    struct lws *wsi; /* NULL once the connection is gone */
    ov_http_request *next_free;
    request_state state;
    int in_callback; /* the handler runs inside an lws callback of this connection */
    int close_after; /* answer with Connection: close and close */
    ov_http_method method;
    const char *method_name;
    const char *path;
    int query_count;
    const char *query_names[QUERY_MAX_PARAMS];
    const char *query_values[QUERY_MAX_PARAMS];
    int header_count;
    header headers[MAX_HEADERS];
    char peer[PEER_MAX];
    uint64_t start_ns;
    size_t arena_used;
    char arena[ARENA_SIZE];

    /* Body. */
    char *body;
    size_t body_len, body_cap;
    int chunked;
    chunk_state chunk;
    uint64_t chunk_left;
    int chunk_digits;

    /* Answer. */
    unsigned char *out;       /* LWS_PRE headroom, then head and body */
    size_t out_cap;           /* bytes after the headroom */
    unsigned char *send_from; /* the answer's first byte: in out, or in block (LWS_PRE before) */
    size_t out_len, out_sent;
    void *block; /* an answer built in place (ov_http_respond_in_place), until it is sent */
    ov_http_release_fn *block_release;
    void *block_ctx;
    int flushing; /* all written; waiting for lws to flush what it buffered */
    int status;
    char route[ROUTE_MAX];
};

/* Per connection, on the wsi's opaque user data from accept to destruction. */
typedef struct {
    ov_http_request *req; /* the request being read, handled or answered, or NULL */
    int served;           /* requests completed on this connection */
    uint64_t body_deadline_ns;
    /* A websocket upgrade: the credentials seen at the upgrade, until the socket is open. */
    char *upgrade_cookie, *upgrade_authorization;
    int endpoint;     /* the websocket endpoint the upgrade was admitted to */
    struct ov_ws *ws; /* once open (server side), or from the dial on (client side) */
} connection;

struct ov_ws {
    struct lws *wsi; /* NULL once lws closed the connection */
    ov_http_server *server;
    const ov_ws_handlers *handlers;
    void *app;             /* what open receives */
    void *conn;            /* the application's state */
    int client;            /* dialled by this node */
    int dialling;          /* inside ov_ws_connect's call to lws */
    int destroyed_in_dial; /* lws gave the dial up before returning */
    int opened;            /* open was called (and returned conn) */
    char *rx;              /* a message arriving in fragments */
    size_t rx_len, rx_cap;
    int close_code; /* ov_ws_close was called: send this close frame when writable */
    char close_reason[124];
};

struct ov_http_server {
    uv_loop_t *loop;
    struct lws_context *context;
    struct lws_vhost *vhost;
    ov_http_options options;
    char host[256];
    int port;
    ov_http_request *pool;
    int pool_count;
    int outstanding; /* requests handed out and not yet recycled */
    int stopping;
    int destroyed; /* lws_context_destroy has been called once */
    int free_requested;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
    uv_timer_t stop_timer;
    uint64_t stop_deadline_ms;
    int writing; /* answers formatted and not yet fully handed to lws */

    /* The embedded libuv loop (see the top of this file). */
    lws_sorted_usec_list_t uv_timer; /* due when libuv's next timer is */
    int uv_ready;                    /* libuv's backend fd polled readable, or its timer is due */
    uint64_t uv_timer_due;           /* uv_now() at which uv_timer is set to fire; 0 = not set */

    unsigned char *ws_scratch; /* LWS_PRE headroom + one outgoing websocket message */
    size_t ws_scratch_cap;
};

static const struct {
    const char *name;
    enum lws_token_indexes token;
} known_headers[] = {
    {"accept", WSI_TOKEN_HTTP_ACCEPT},
    {"accept-encoding", WSI_TOKEN_HTTP_ACCEPT_ENCODING},
    {"accept-language", WSI_TOKEN_HTTP_ACCEPT_LANGUAGE},
    {"authorization", WSI_TOKEN_HTTP_AUTHORIZATION},
    {"connection", WSI_TOKEN_CONNECTION},
    {"content-encoding", WSI_TOKEN_HTTP_CONTENT_ENCODING},
    {"content-length", WSI_TOKEN_HTTP_CONTENT_LENGTH},
    {"content-type", WSI_TOKEN_HTTP_CONTENT_TYPE},
    {"cookie", WSI_TOKEN_HTTP_COOKIE},
    {"host", WSI_TOKEN_HOST},
    {"if-match", WSI_TOKEN_HTTP_IF_MATCH},
    {"if-modified-since", WSI_TOKEN_HTTP_IF_MODIFIED_SINCE},
    {"if-none-match", WSI_TOKEN_HTTP_IF_NONE_MATCH},
    {"if-unmodified-since", WSI_TOKEN_HTTP_IF_UNMODIFIED_SINCE},
    {"origin", WSI_TOKEN_ORIGIN},
    {"range", WSI_TOKEN_HTTP_RANGE},
    {"referer", WSI_TOKEN_HTTP_REFERER},
    {"transfer-encoding", WSI_TOKEN_HTTP_TRANSFER_ENCODING},
    {"user-agent", WSI_TOKEN_HTTP_USER_AGENT},
    {"x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR},
};

static const char *const custom_headers[] = {"x-request-id", "idempotency-key"};

/* ---- Small helpers ----------------------------------------------------------------------------
 */

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF, no NUL. */
static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            if (c == 0xf4)
                hi = 0x8f;
        } else
            return 0;
        if (i + n >= len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

static char *arena_alloc(ov_http_request *req, size_t len)
{
    if (len > sizeof req->arena - req->arena_used)
        return NULL;
    char *p = req->arena + req->arena_used;
    req->arena_used += len;
    return p;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Content";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    default:
        return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- Request objects --------------------------------------------------------------------------
 */

static ov_http_request *request_get(ov_http_server *server)
{
    ov_http_request *req = server->pool;
    if (req) {
        server->pool = req->next_free;
        server->pool_count--;
    } else {
        req = calloc(1, sizeof *req);
        if (!req)
            return NULL;
    }
    req->server = server;
    req->wsi = NULL;
    req->next_free = NULL;
    req->state = REQ_BODY;
    req->in_callback = 0;
    req->close_after = 0;
    req->method = OV_HTTP_OTHER;
    req->method_name = "OTHER";
    req->path = "/";
    req->query_count = 0;
    req->header_count = 0;
    req->peer[0] = '\0';
    req->arena_used = 0;
    req->body_len = 0;
    req->chunked = 0;
    req->chunk = CHUNK_SIZE;
    req->chunk_left = 0;
    req->chunk_digits = 0;
    req->out_len = req->out_sent = 0;
    req->send_from = NULL;
    req->block = NULL;
    req->flushing = 0;
    req->status = 0;
    req->route[0] = '\0';
    server->outstanding++;
    return req;
}

static void server_release(ov_http_server *server);

static connection *connection_of(struct lws *wsi)
{
    return wsi ? lws_get_opaque_user_data(wsi) : NULL;
}

/* The peer's IP address as text. lws listens on a dual-stack socket: IPv4 peers show as IPv4. */
static void peer_address(struct lws *wsi, char out[PEER_MAX])
{
    out[0] = '\0';
    lws_get_peer_simple(wsi, out, PEER_MAX);
    if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.'))
        memmove(out, out + 7, strlen(out + 7) + 1);
}

static ov_http_request *current_request(struct lws *wsi)
{
    connection *conn = connection_of(wsi);
    return conn ? conn->req : NULL;
}

/* Returns req to the pool; big buffers are given back to the allocator. */
static void request_put(ov_http_request *req)
{
    ov_http_server *server = req->server;
    connection *conn = connection_of(req->wsi);
    if (conn && conn->req == req)
        conn->req = NULL;
    req->wsi = NULL;
    if (req->block) {
        req->block_release(req->block_ctx, req->block);
        req->block = NULL;
    }
    if (req->body_cap > KEEP_BUFFER) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
    if (req->out_cap > KEEP_BUFFER) {
        free(req->out);
        req->out = NULL;
        req->out_cap = 0;
    }
    if (req->state == REQ_ANSWERED)
        server->writing--;
    server->outstanding--;
    if (server->pool_count < POOL_MAX && !server->free_requested) {
        req->next_free = server->pool;
        server->pool = req;
        server->pool_count++;
    } else {
        free(req->body);
        free(req->out);
        free(req);
    }
    if (server->free_requested && server->outstanding == 0)
        server_release(server);
}

/* The connection went away: the request lives on for its handler, or is recycled now. */
static void request_detach(struct lws *wsi)
{
    connection *conn = connection_of(wsi);
    ov_http_request *req = conn ? conn->req : NULL;
    if (!req)
        return;
    conn->req = NULL;
    if (req->wsi != wsi)
        return;
    if (!req->peer[0])
        lws_get_peer_simple(wsi, req->peer, sizeof req->peer);
    req->wsi = NULL;
    if (req->state == REQ_HANDLING)
        return; /* the handler holds it; ov_http_respond will recycle it */
    request_put(req);
}

/* ---- Writing answers --------------------------------------------------------------------------
 */

static int out_reserve(ov_http_request *req, size_t len)
{
    if (len <= req->out_cap)
        return OV_OK;
    size_t cap = req->out_cap ? req->out_cap : 2048;
    while (cap < len)
        cap *= 2;
    unsigned char *grown = realloc(req->out, LWS_PRE + cap);
    if (!grown)
        return OV_ENOMEM;
    req->out = grown;
    req->out_cap = cap;
    return OV_OK;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_uint(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes the status line and headers at p (room for RESPONSE_HEAD_MAX plus the type and the
 * extra headers) and returns where they end. */
static char *format_head(char *p, ov_http_request *req, int status, const char *content_type,
                         const char *extra_headers, size_t body_len)
{
    int no_body_status = status == 204 || status == 304 || (status >= 100 && status < 200);
    p = put_str(p, "HTTP/1.1 ");
    p = put_uint(p, (uint64_t)status);
    *p++ = ' ';
    p = put_str(p, reason_phrase(status));
    p = put_str(p, "\r\nServer: olievlekd\r\n");
    if (content_type && !no_body_status) {
        p = put_str(p, "Content-Type: ");
        p = put_str(p, content_type);
        p = put_str(p, "\r\n");
    }
    if (!no_body_status) {
        p = put_str(p, "Content-Length: ");
        p = put_uint(p, body_len);
        p = put_str(p, "\r\n");
    }
    if (req->close_after)
        p = put_str(p, "Connection: close\r\n");
    if (extra_headers)
        p = put_str(p, extra_headers);
    return put_str(p, "\r\n");
}

static int sends_body(const ov_http_request *req, int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200)) &&
           req->method != OV_HTTP_HEAD;
}

/* Formats the whole answer into req->out. */
static int format_answer(ov_http_request *req, int status, const char *content_type,
                         const char *extra_headers, const void *body, size_t body_len)
{
    size_t type_len = content_type ? strlen(content_type) : 0;
    size_t extra_len = extra_headers ? strlen(extra_headers) : 0;
    int send_body = sends_body(req, status);
    size_t need = RESPONSE_HEAD_MAX + type_len + extra_len + (send_body ? body_len : 0);
    if (type_len > 256 || out_reserve(req, need) != OV_OK)
        return OV_ENOMEM;
    char *start = (char *)req->out + LWS_PRE;
    char *p = format_head(start, req, status, content_type, extra_headers, body_len);
    if (send_body && body_len) {
        memcpy(p, body, body_len);
        p += body_len;
    }
    req->send_from = req->out + LWS_PRE;
    req->out_len = (size_t)(p - start);
    req->out_sent = 0;
    req->status = status;
    return OV_OK;
}

/* Puts the status line and headers right before a body built at block + OV_HTTP_HEADROOM, so
 * that head and body go out from the block as they are. OV_ETOOBIG when they do not fit. */
static int format_in_place(ov_http_request *req, int status, const char *content_type,
                           const char *extra_headers, unsigned char *block, size_t body_len)
{
    size_t type_len = content_type ? strlen(content_type) : 0;
    size_t extra_len = extra_headers ? strlen(extra_headers) : 0;
    if (LWS_PRE + RESPONSE_HEAD_MAX + type_len + extra_len > OV_HTTP_HEADROOM)
        return OV_ETOOBIG;
    char head[OV_HTTP_HEADROOM];
    size_t head_len =
        (size_t)(format_head(head, req, status, content_type, extra_headers, body_len) - head);
    unsigned char *body = block + OV_HTTP_HEADROOM;
    memcpy(body - head_len, head, head_len);
    req->send_from = body - head_len;
    req->out_len = head_len + (sends_body(req, status) ? body_len : 0);
    req->out_sent = 0;
    req->status = status;
    return OV_OK;
}

static void count_answer(ov_http_request *req)
{
    double seconds = (double)(now_ns() - req->start_ns) / 1e9;
    ov_metrics_request(req->route[0] ? req->route : NULL, req->method_name, req->status, seconds);
}

static int finish_answer(struct lws *wsi, ov_http_request *req);

/* Sends the next part of req's answer on wsi. Returns what the lws callback must return. */
static int write_answer(struct lws *wsi, ov_http_request *req)
{
    if (req->flushing)
        return finish_answer(wsi, req);
    size_t left = req->out_len - req->out_sent;
    size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
    int last = n == left;
    /* The LWS_PRE bytes before a later chunk are already-sent answer bytes, free to overwrite. */
    unsigned char *from = req->send_from + req->out_sent;
    int written = lws_write(wsi, from, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (written < 0 || (size_t)written < n) {
        request_put(req);
        return -1;
    }
    req->out_sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return finish_answer(wsi, req);
}

/* The answer is out: count the connection's request, recycle it, and go on or close. */
static int finish_answer(struct lws *wsi, ov_http_request *req)
{
    int close_after = req->close_after;
    connection *conn = connection_of(wsi);
    if (conn)
        conn->served++;
    request_put(req);
    if (close_after)
        return -1;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* An answer of the layer itself (400, 408, 413, ...) as a small problem document, sent at once;
 * the connection is closed after it when close_after. Returns what the callback must return. */
static int answer_error_with(struct lws *wsi, ov_http_request *req, int status, const char *slug,
                             const char *title, const char *detail, int close_after,
                             const char *extra_headers)
{
    ov_http_server *server = lws_context_user(lws_get_context(wsi));
    if (!req) {
        req = request_get(server);
        if (!req)
            return -1;
        req->start_ns = now_ns();
        req->wsi = wsi;
    }
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"type\":\"/problems/%s\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}",
                     slug, title, status, detail);
    if (n < 0 || (size_t)n >= sizeof body)
        n = 0;
    req->close_after = close_after;
    snprintf(req->route, sizeof req->route, "%s", "http");
    req->state = REQ_ANSWERED;
    server->writing++;
    connection *conn = connection_of(wsi);
    if (conn)
        conn->req = req;
    if (format_answer(req, status, "application/problem+json", extra_headers, body, (size_t)n) !=
        OV_OK) {
        request_put(req);
        return -1;
    }
    count_answer(req);
    return write_answer(wsi, req);
}

static int answer_error(struct lws *wsi, ov_http_request *req, int status, const char *slug,
                        const char *title, const char *detail, int close_after)
{
    return answer_error_with(wsi, req, status, slug, title, detail, close_after, NULL);
}

/* ---- Collecting the request ------------------------------------------------------------------ */

static const char *copy_token(struct lws *wsi, ov_http_request *req, enum lws_token_indexes token)
{
    int len = lws_hdr_total_length(wsi, token);
    if (len <= 0)
        return NULL;
    char *dst = arena_alloc(req, (size_t)len + 1);
    if (!dst)
        return NULL;
    if (lws_hdr_copy(wsi, dst, len + 1, token) < 0)
        return NULL;
    return dst;
}

static int collect_headers(struct lws *wsi, ov_http_request *req)
{
    for (size_t i = 0; i < sizeof known_headers / sizeof known_headers[0]; i++) {
        const char *value = copy_token(wsi, req, known_headers[i].token);
        if (!value)
            continue;
        if (!valid_utf8((const unsigned char *)value, strlen(value)))
            return OV_EPARSE;
        req->headers[req->header_count].name = known_headers[i].name;
        req->headers[req->header_count].value = value;
        req->header_count++;
    }
    for (size_t i = 0; i < sizeof custom_headers / sizeof custom_headers[0]; i++) {
        char name[64];
        int nlen = snprintf(name, sizeof name, "%s:", custom_headers[i]);
        int len = lws_hdr_custom_length(wsi, name, nlen);
        if (len <= 0 || req->header_count == MAX_HEADERS)
            continue;
        char *dst = arena_alloc(req, (size_t)len + 1);
        if (!dst || lws_hdr_custom_copy(wsi, dst, len + 1, name, nlen) < 0)
            continue;
        req->headers[req->header_count].name = custom_headers[i];
        req->headers[req->header_count].value = dst;
        req->header_count++;
    }
    return OV_OK;
}

/* The query pieces lws split and decoded: "name=value", "name" or "=value". */
static int collect_query(struct lws *wsi, ov_http_request *req)
{
    size_t total = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) <= 0)
        return OV_OK;
    /* lws's fragment table is small and fixed, so this loop is bounded by lws as well. */
    for (int i = 0;; i++) {
        int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (len < 0)
            break;
        total += (size_t)len;
        if (total > QUERY_MAX_BYTES)
            return OV_ETOOBIG;
        char *dst = arena_alloc(req, (size_t)len + 1);
        if (!dst)
            return OV_ETOOBIG;
        if (lws_hdr_copy_fragment(wsi, dst, len + 1, WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
            req->arena_used -= (size_t)len + 1;
            break; /* past the last piece */
        }
        if (len == 0) /* an empty piece, as in "a=1&&b=2" */
            continue;
        if (req->query_count == QUERY_MAX_PARAMS)
            return OV_ETOOBIG;
        if (!valid_utf8((const unsigned char *)dst, (size_t)len))
            return OV_EPARSE;
        char *eq = strchr(dst, '=');
        if (eq)
            *eq = '\0';
        req->query_names[req->query_count] = dst;
        req->query_values[req->query_count] = eq ? eq + 1 : dst + len;
        req->query_count++;
    }
    return OV_OK;
}

static void identify_method(struct lws *wsi, ov_http_request *req)
{
    static const struct {
        enum lws_token_indexes token;
        ov_http_method method;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, OV_HTTP_GET, "GET"},
        {WSI_TOKEN_POST_URI, OV_HTTP_POST, "POST"},
        {WSI_TOKEN_PUT_URI, OV_HTTP_PUT, "PUT"},
        {WSI_TOKEN_DELETE_URI, OV_HTTP_DELETE, "DELETE"},
        {WSI_TOKEN_HEAD_URI, OV_HTTP_HEAD, "HEAD"},
        {WSI_TOKEN_OPTIONS_URI, OV_HTTP_OPTIONS, "OPTIONS"},
        {WSI_TOKEN_PATCH_URI, OV_HTTP_OTHER, "PATCH"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
            req->method = methods[i].method;
            req->method_name = methods[i].name;
            return;
        }
    }
}

static int header_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t' || p[n] == ';'))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

/* Runs the handler; if it answered at once, writes the answer now. */
static int dispatch(struct lws *wsi, ov_http_request *req)
{
    ov_http_server *server = req->server;
    /* No timer is cancelled here: lws 4.1.6 runs a "cancelled" wsi timer at once, so a timer
     * that fires after the request is complete is ignored by on_timer instead. */
    req->state = REQ_HANDLING;
    req->start_ns = now_ns();
    req->in_callback = 1;
    if (server->stopping) {
        static const char gone[] = "{\"type\":\"/problems/unavailable\",\"title\":\"Niet "
                                   "beschikbaar\",\"status\":503,\"detail\":\"the node is "
                                   "shutting down\"}";
        req->close_after = 1;
        ov_http_respond(req, 503, "application/problem+json", "Retry-After: 5\r\n", gone,
                        sizeof gone - 1, "http");
    } else {
        server->options.handler(server->options.app, req);
    }
    req->in_callback = 0;
    if (req->state != REQ_ANSWERED)
        return 0; /* answered later, from LWS_CALLBACK_HTTP_WRITEABLE */
    if (req->out_len == 0) {
        request_put(req); /* no memory even for an error answer */
        return -1;
    }
    return write_answer(wsi, req);
}

static int on_request(ov_http_server *server, struct lws *wsi, const char *uri, size_t uri_len)
{
    connection *conn = connection_of(wsi);
    if (!conn) {
        conn = calloc(1, sizeof *conn);
        if (!conn)
            return -1;
        lws_set_opaque_user_data(wsi, conn);
    }
    ov_http_request *req = request_get(server);
    if (!req)
        return -1;
    req->wsi = wsi;
    req->start_ns = now_ns();
    conn->req = req;
    identify_method(wsi, req);

    if (uri_len == 0 || uri[0] != '/' || !valid_utf8((const unsigned char *)uri, uri_len))
        return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                            "the path must be UTF-8 text starting with /", 1);
    char *path = arena_alloc(req, uri_len + 1);
    if (!path)
        return answer_error(wsi, req, 414, "bad-request", "Adres te lang", "the path is too long",
                            1);
    memcpy(path, uri, uri_len);
    path[uri_len] = '\0';
    req->path = path;

    int rc = collect_query(wsi, req);
    if (rc == OV_ETOOBIG)
        return answer_error(wsi, req, 414, "bad-request", "Adres te lang",
                            "at most 64 query parameters and 8 KiB of query text", 1);
    if (rc != OV_OK)
        return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                            "query parameters must be UTF-8 text", 1);
    if (collect_headers(wsi, req) != OV_OK)
        return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                            "header values must be UTF-8 text", 1);

    const char *connection_header = ov_http_request_header(req, "connection");
    if (connection_header && header_has_token(connection_header, "close"))
        req->close_after = 1;

    /* Does a body follow? lws reads one after headers when there is a Content-Length > 0, and
     * for POST, PUT and PATCH without one (until it has 100 MiB or the peer closes). */
    const char *length_text = ov_http_request_header(req, "content-length");
    const char *encoding = ov_http_request_header(req, "transfer-encoding");
    int has_body = 0;
    if (encoding) {
        if (!header_has_token(encoding, "chunked") || length_text)
            return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                                "only Transfer-Encoding: chunked without Content-Length is "
                                "understood",
                                1);
        req->chunked = 1;
        req->close_after = 1; /* lws does not know where a chunked body ends */
        has_body = 1;
    } else if (length_text) {
        char *end = NULL;
        errno = 0;
        unsigned long long length = strtoull(length_text, &end, 10);
        if (end == length_text || *end || length_text[0] == '-' || errno)
            return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                                "Content-Length must be a whole number", 1);
        if (length > server->options.max_body)
            return answer_error(wsi, req, 413, "too-large", "Verzoek te groot",
                                "the request body is larger than this node accepts", 1);
        has_body = length > 0 || req->method == OV_HTTP_POST;
    } else if (req->method == OV_HTTP_POST || req->method == OV_HTTP_PUT ||
               !strcmp(req->method_name, "PATCH")) {
        req->close_after = 1; /* the body ends when the peer closes its side */
        has_body = 1;
    }
    if (has_body) {
        req->state = REQ_BODY;
        conn->body_deadline_ns =
            now_ns() + (uint64_t)server->options.request_timeout_s * 1000000000u;
        lws_set_timer_usecs(wsi, (lws_usec_t)server->options.request_timeout_s * LWS_US_PER_SEC);
        return 0;
    }
    return dispatch(wsi, req);
}

/* Makes room for need bytes in *buf (capacity *cap): doubling from 4 KiB, never beyond max
 * (need <= max is the caller's check), so memory follows what actually arrives. */
static int grow_to(char **buf, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return OV_OK;
    size_t size = *cap ? *cap : 4096;
    while (size < need)
        size *= 2;
    if (size > max)
        size = max;
    char *grown = realloc(*buf, size);
    if (!grown)
        return OV_ENOMEM;
    *buf = grown;
    *cap = size;
    return OV_OK;
}

static int body_append(ov_http_request *req, const char *data, size_t len)
{
    size_t max = req->server->options.max_body;
    if (len > max - req->body_len)
        return OV_ETOOBIG;
    if (grow_to(&req->body, &req->body_cap, req->body_len + len, max) != OV_OK)
        return OV_ENOMEM;
    if (len) /* an empty body arrives as (NULL, 0) */
        memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    return OV_OK;
}

/* Decodes chunked framing (RFC 9112 7.1) incrementally. Returns OV_OK, OV_EPARSE, OV_ETOOBIG. */
static int body_chunked(ov_http_request *req, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && req->chunk != CHUNK_DONE) {
        char c = data[i];
        switch (req->chunk) {
        case CHUNK_SIZE: {
            int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
            if (digit >= 0) {
                if (++req->chunk_digits > 15)
                    return OV_ETOOBIG;
                req->chunk_left = req->chunk_left * 16 + (uint64_t)digit;
            } else if (req->chunk_digits && (c == ';' || c == ' ' || c == '\t')) {
                req->chunk = CHUNK_EXT;
            } else if (req->chunk_digits && c == '\r') {
                req->chunk = CHUNK_SIZE_LF;
            } else {
                return OV_EPARSE;
            }
            i++;
            break;
        }
        case CHUNK_EXT:
            if (c == '\r')
                req->chunk = CHUNK_SIZE_LF;
            i++;
            break;
        case CHUNK_SIZE_LF:
            if (c != '\n')
                return OV_EPARSE;
            i++;
            if (req->chunk_left > req->server->options.max_body)
                return OV_ETOOBIG;
            req->chunk = req->chunk_left ? CHUNK_DATA : CHUNK_TRAILER;
            req->chunk_digits = 0;
            break;
        case CHUNK_DATA: {
            size_t n = len - i;
            if (n > req->chunk_left)
                n = (size_t)req->chunk_left;
            int rc = body_append(req, data + i, n);
            if (rc != OV_OK)
                return rc;
            i += n;
            req->chunk_left -= n;
            if (!req->chunk_left)
                req->chunk = CHUNK_DATA_CR;
            break;
        }
        case CHUNK_DATA_CR:
            if (c != '\r')
                return OV_EPARSE;
            req->chunk = CHUNK_DATA_LF;
            i++;
            break;
        case CHUNK_DATA_LF:
            if (c != '\n')
                return OV_EPARSE;
            req->chunk = CHUNK_SIZE;
            i++;
            break;
        case CHUNK_TRAILER: /* at the start of a trailer line: CRLF ends the body */
            if (c == '\r') {
                i++;
                if (i < len && data[i] == '\n') {
                    i++;
                    req->chunk = CHUNK_DONE;
                }
                /* A lone CR at the end of this piece: the LF comes next; treat it as done. */
                else if (i == len)
                    req->chunk = CHUNK_DONE;
            } else {
                req->chunk = CHUNK_TRAILER_LINE;
                i++;
            }
            break;
        case CHUNK_TRAILER_LINE:
            if (c == '\n')
                req->chunk = CHUNK_TRAILER;
            if (++req->chunk_digits > 4096)
                return OV_ETOOBIG;
            i++;
            break;
        case CHUNK_DONE:
            break;
        }
    }
    return OV_OK;
}

static int on_body(struct lws *wsi, const char *data, size_t len)
{
    ov_http_request *req = current_request(wsi);
    if (!req || req->state != REQ_BODY)
        return 0; /* a body after an answer (e.g. the rest of an oversized one): drop it */
    int rc = req->chunked ? body_chunked(req, data, len) : body_append(req, data, len);
    if (rc == OV_ETOOBIG)
        return answer_error(wsi, req, 413, "too-large", "Verzoek te groot",
                            "the request body is larger than this node accepts", 1);
    if (rc == OV_EPARSE)
        return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                            "the chunked body is malformed", 1);
    if (rc != OV_OK)
        return answer_error(wsi, req, 503, "unavailable", "Niet beschikbaar", "out of memory", 1);
    if (req->chunked && req->chunk == CHUNK_DONE)
        return dispatch(wsi, req);
    return 0;
}

static int on_body_complete(struct lws *wsi)
{
    ov_http_request *req = current_request(wsi);
    if (!req || req->state != REQ_BODY)
        return 0;
    if (req->chunked) /* lws thinks the body is longer; the framing said it ended early */
        return answer_error(wsi, req, 400, "bad-request", "Ongeldig verzoek",
                            "the chunked body ended early", 1);
    return dispatch(wsi, req);
}

/* The wsi timer runs request_timeout_s after accept and after the headers of a request with a
 * body. It is never cancelled, so it decides here whether the client is really late. */
static int on_timer(struct lws *wsi)
{
    connection *conn = connection_of(wsi);
    if (!conn)
        return 0;
    ov_http_request *req = conn->req;
    if (req && req->state != REQ_BODY)
        return 0; /* the request is complete: its answer is not the client's fault */
    if (!req && conn->served)
        return 0; /* idle between requests: lws's keep-alive timeout deals with that */
    if (req) {
        uint64_t now = now_ns();
        if (now < conn->body_deadline_ns) { /* an earlier timer; this body has time left */
            lws_set_timer_usecs(wsi, (lws_usec_t)((conn->body_deadline_ns - now) / 1000) + 1);
            return 0;
        }
    }
    return answer_error(wsi, req, 408, "timeout", "Verzoek duurde te lang",
                        "the request did not arrive in time", 1);
}

static int confirm_upgrade(ov_http_server *server, struct lws *wsi, const char *upgrade_to);
static void connection_destroy(struct lws *wsi);

static int on_http_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct lws_context *context = lws_get_context(wsi);
    ov_http_server *server = context ? lws_context_user(context) : NULL;
    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        if (!server)
            return 0;
        connection *conn = calloc(1, sizeof *conn);
        if (!conn)
            return -1;
        lws_set_opaque_user_data(wsi, conn);
        lws_set_timer_usecs(wsi, (lws_usec_t)server->options.request_timeout_s * LWS_US_PER_SEC);
        return 0;
    }
    case LWS_CALLBACK_HTTP:
        return on_request(server, wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_complete(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        ov_http_request *req = current_request(wsi);
        if (req && req->state == REQ_ANSWERED && req->wsi == wsi)
            return write_answer(wsi, req);
        return 0;
    }
    case LWS_CALLBACK_TIMER:
        return on_timer(wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        request_detach(wsi);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(server, wsi, in);
    case LWS_CALLBACK_WSI_DESTROY:
        connection_destroy(wsi);
        return 0;
    default:
        return 0;
    }
}

/* ---- Websockets -------------------------------------------------------------------------------
 *
 * The upgrade is decided on protocols[0] (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE), where the request's
 * headers are still at hand: the path, the subprotocol and the application's admission (caps per
 * address, handshake rate). A refusal is an HTTP answer of ours, written before lws hangs up. The
 * credentials are kept on the connection until the socket is open, when the application sees
 * them. Writes bypass lws's writeable callback while lws holds no unsent output of an earlier
 * write: a fan-out to thousands of idle subscribers is then one send() each, with no poll round.
 */

#define WS_MAX_MESSAGE_DEFAULT (8u << 10)
#define WS_CLOSE_GRACE_S       30

static void connection_destroy(struct lws *wsi)
{
    request_detach(wsi);
    connection *conn = connection_of(wsi);
    if (!conn)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    free(conn->upgrade_cookie);
    free(conn->upgrade_authorization);
    if (conn->ws && conn->ws->dialling) { /* ov_ws_connect cleans up and reports instead */
        conn->ws->wsi = NULL;
        conn->ws->destroyed_in_dial = 1;
        return;
    }
    if (conn->ws) {
        ov_ws *ws = conn->ws;
        ws->wsi = NULL;
        /* A dialled connection tells its owner it ended even when it never opened. */
        if (ws->client ? ws->conn != NULL : ws->opened && ws->conn != NULL)
            ws->handlers->closed(ws->conn);
        free(ws->rx);
        free(ws);
    }
    free(conn);
}

/* A copy of header token, or NULL when absent (or on OOM). */
static char *header_copy(struct lws *wsi, enum lws_token_indexes token)
{
    int len = lws_hdr_total_length(wsi, token);
    if (len <= 0)
        return NULL;
    char *text = malloc((size_t)len + 1);
    if (text && lws_hdr_copy(wsi, text, len + 1, token) < 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Does the comma-separated list offered contain token? */
static int list_has_token(const char *offered, const char *token)
{
    size_t n = strlen(token);
    const char *p = offered;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if ((size_t)(last - p) == n && strncasecmp(p, token, n) == 0)
            return 1;
        p = end;
    }
    return 0;
}

static int refuse_upgrade(struct lws *wsi, int status, const char *detail, unsigned retry_after_s)
{
    char extra[64] = "";
    if (retry_after_s)
        snprintf(extra, sizeof extra, "Retry-After: %u\r\n", retry_after_s);
    const char *slug = status == 429   ? "rate-limited"
                       : status == 503 ? "unavailable"
                                       : "websocket-refused";
    const char *title = status == 429   ? "Te veel verbindingen"
                        : status == 503 ? "Tijdelijk niet beschikbaar"
                                        : "Websocket geweigerd";
    /* Closing after the answer: lws hangs up when this callback returns < 0; the small answer is
     * in the kernel's send buffer by then. */
    answer_error_with(wsi, NULL, status, slug, title, detail, 1, extra[0] ? extra : NULL);
    return -1;
}

static int confirm_upgrade(ov_http_server *server, struct lws *wsi, const char *upgrade_to)
{
    connection *conn = connection_of(wsi);
    int any = 0;
    for (int i = 0; server && i < OV_HTTP_WS_ENDPOINTS; i++)
        any |= server->options.ws[i].handlers != NULL;
    if (!any || !conn)
        return refuse_upgrade(wsi, 400, "this node upgrades no connection to a websocket", 0);
    if (!upgrade_to || strcasecmp(upgrade_to, "websocket") != 0)
        return refuse_upgrade(wsi, 400, "only upgrades to websocket are supported", 0);
    char *path = header_copy(wsi, WSI_TOKEN_GET_URI);
    int chosen = -1;
    for (int i = 0; path && i < OV_HTTP_WS_ENDPOINTS; i++)
        if (server->options.ws[i].handlers &&
            strcmp(path, server->options.ws[i].handlers->path) == 0)
            chosen = i;
    free(path);
    if (chosen < 0)
        return refuse_upgrade(wsi, 400, "websockets are served at /api/v1/live only", 0);
    const ov_ws_handlers *handlers = server->options.ws[chosen].handlers;
    char *offered = header_copy(wsi, WSI_TOKEN_PROTOCOL);
    int protocol_ok = offered && list_has_token(offered, handlers->subprotocol);
    free(offered);
    if (!protocol_ok) {
        char detail[160];
        snprintf(detail, sizeof detail,
                 "send the header Sec-WebSocket-Protocol: %s (the only subprotocol this node "
                 "speaks on this path)",
                 handlers->subprotocol);
        return refuse_upgrade(wsi, 400, detail, 0);
    }
    conn->endpoint = chosen;
    char peer[PEER_MAX];
    peer_address(wsi, peer);
    free(conn->upgrade_cookie);
    free(conn->upgrade_authorization);
    conn->upgrade_cookie = header_copy(wsi, WSI_TOKEN_HTTP_COOKIE);
    conn->upgrade_authorization = header_copy(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    ov_ws_upgrade up = {peer, conn->upgrade_cookie, conn->upgrade_authorization};
    const char *detail = NULL;
    unsigned retry_after_s = 0;
    int status = handlers->admit
                     ? handlers->admit(server->options.ws[chosen].app, &up, &detail, &retry_after_s)
                     : 0;
    if (status)
        return refuse_upgrade(wsi, status, detail ? detail : "not now", retry_after_s);
    return 0;
}

static int ws_opened(ov_http_server *server, struct lws *wsi)
{
    connection *conn = connection_of(wsi);
    if (!conn || !server)
        return -1;
    if (conn->ws && conn->ws->client) { /* a dialled connection: its ws exists since the dial */
        ov_ws *ws = conn->ws;
        ws->opened = 1;
        void *state = ws->handlers->open(ws->app, ws, NULL);
        if (!state) {
            ws->conn = NULL; /* the owner refused it: no closed() for what it gave up */
            return -1;
        }
        return 0;
    }
    const ov_ws_endpoint *endpoint = &server->options.ws[conn->endpoint];
    if (!endpoint->handlers)
        return -1;
    ov_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return -1;
    ws->wsi = wsi;
    ws->server = server;
    ws->handlers = endpoint->handlers;
    ws->app = endpoint->app;
    conn->ws = ws;
    /* The handshake's own timer must not cut the websocket off later. */
    lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL);
    char peer[PEER_MAX];
    peer_address(wsi, peer);
    ov_ws_upgrade up = {peer, conn->upgrade_cookie, conn->upgrade_authorization};
    ws->opened = 1; /* open may already send */
    ws->conn = ws->handlers->open(ws->app, ws, &up);
    ws->opened = ws->conn != NULL;
    free(conn->upgrade_cookie);
    free(conn->upgrade_authorization);
    conn->upgrade_cookie = conn->upgrade_authorization = NULL;
    return ws->conn ? 0 : -1;
}

static int ws_close_now(ov_ws *ws)
{
    lws_close_reason(ws->wsi, (enum lws_close_status)ws->close_code,
                     (unsigned char *)ws->close_reason, strlen(ws->close_reason));
    return -1;
}

static int ws_received(ov_http_server *server, struct lws *wsi, const char *in, size_t len)
{
    (void)server;
    connection *conn = connection_of(wsi);
    ov_ws *ws = conn ? conn->ws : NULL;
    if (!ws || !ws->conn || !ws->opened || ws->close_code)
        return 0;
    const ov_ws_handlers *handlers = ws->handlers;
    size_t max = handlers->max_message ? handlers->max_message : WS_MAX_MESSAGE_DEFAULT;
    if (!lws_frame_is_binary(wsi) != !handlers->binary) {
        ws->close_code = LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE;
        snprintf(ws->close_reason, sizeof ws->close_reason,
                 handlers->binary ? "only binary messages" : "only text messages (JSON)");
        return ws_close_now(ws);
    }
    int first = lws_is_first_fragment(wsi),
        last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (first && !ws->rx_len && last) { /* the common case: a whole message at once */
        if (len > max)
            goto too_big;
        handlers->message(ws->conn, in, len);
        return 0;
    }
    if (ws->rx_len + len > max)
        goto too_big;
    /* Grown as the message arrives, so a large limit costs memory only for large messages. */
    if (grow_to(&ws->rx, &ws->rx_cap, ws->rx_len + len, max) != OV_OK)
        return -1;
    memcpy(ws->rx + ws->rx_len, in, len);
    ws->rx_len += len;
    if (last) {
        size_t n = ws->rx_len;
        ws->rx_len = 0;
        handlers->message(ws->conn, ws->rx, n);
        free(ws->rx); /* idle connections keep no receive buffer */
        ws->rx = NULL;
        ws->rx_cap = 0;
    }
    return 0;
too_big:
    ws->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
    snprintf(ws->close_reason, sizeof ws->close_reason, "message over %zu bytes", max);
    return ws_close_now(ws);
}

static int on_ws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    struct lws_context *context = lws_get_context(wsi);
    ov_http_server *server = context ? lws_context_user(context) : NULL;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        return ws_opened(server, wsi);
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return ws_received(server, wsi, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG: {
        connection *conn = connection_of(wsi);
        ov_ws *ws = conn ? conn->ws : NULL;
        if (ws && ws->conn && ws->opened && ws->handlers->pong)
            ws->handlers->pong(ws->conn);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        connection *conn = connection_of(wsi);
        ov_ws *ws = conn ? conn->ws : NULL;
        if (!ws)
            return 0;
        if (ws->close_code)
            return ws_close_now(ws);
        if (ws->conn && ws->opened && ws->handlers->writable)
            ws->handlers->writable(ws->conn);
        return ws->close_code && !lws_partial_buffered(wsi) ? ws_close_now(ws) : 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        /* lws destroys the wsi after this; WSI_DESTROY tells the owner. */
        if (in && len)
            ov_jlog_info("http.ws_connect_failed", "error", (const char *)in, NULL);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        connection_destroy(wsi);
        return 0;
    default:
        return 0;
    }
}

int ov_ws_ready(const ov_ws *ws)
{
    return ws && ws->wsi && ws->opened && !ws->close_code && !lws_partial_buffered(ws->wsi);
}

int ov_ws_send(ov_ws *ws, const char *head, size_t head_len, const char *body, size_t body_len)
{
    if (!ws || !ws->wsi || !ws->opened || ws->close_code)
        return OV_EIO;
    if (lws_partial_buffered(ws->wsi))
        return OV_EAGAIN;
    ov_http_server *server = ws->server;
    size_t need = LWS_PRE + head_len + body_len;
    if (need > server->ws_scratch_cap) {
        unsigned char *grown = realloc(server->ws_scratch, need);
        if (!grown)
            return OV_EIO;
        server->ws_scratch = grown;
        server->ws_scratch_cap = need;
    }
    unsigned char *p = server->ws_scratch + LWS_PRE;
    if (head_len)
        memcpy(p, head, head_len);
    if (body_len)
        memcpy(p + head_len, body, body_len);
    /* lws sends what the socket takes and keeps the rest (lws_partial_buffered) until POLLOUT. */
    int n = lws_write(ws->wsi, p, head_len + body_len,
                      ws->handlers->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (n < 0) {
        ws->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return OV_EIO;
    }
    return OV_OK;
}

int ov_ws_ping(ov_ws *ws)
{
    if (!ws || !ws->wsi || ws->close_code)
        return OV_EIO;
    if (lws_partial_buffered(ws->wsi))
        return OV_EAGAIN;
    /* lws 4.1 reports a pong to the application only when it carries payload. */
    unsigned char frame[LWS_PRE + 2];
    memcpy(frame + LWS_PRE, "ov", 2);
    if (lws_write(ws->wsi, frame + LWS_PRE, 2, LWS_WRITE_PING) < 0)
        return OV_EIO;
    return OV_OK;
}

void ov_ws_want_writable(ov_ws *ws)
{
    if (ws && ws->wsi)
        lws_callback_on_writable(ws->wsi);
}

void ov_ws_close(ov_ws *ws, int code, const char *reason)
{
    if (!ws || !ws->wsi || ws->close_code)
        return;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_GRACE_S);
    lws_callback_on_writable(ws->wsi);
}

int ov_ws_connect(ov_http_server *server, const char *url, const ov_ws_handlers *handlers,
                  void *conn_state, ov_ws **out)
{
    if (!server || !server->context || server->stopping || !url || !handlers || !conn_state)
        return OV_EINVAL;
    char copy[512];
    if (strlen(url) >= sizeof copy - 1)
        return OV_EINVAL;
    snprintf(copy, sizeof copy, "%s", url);
    const char *scheme = NULL, *address = NULL, *path = NULL;
    int port = 0;
    if (lws_parse_uri(copy, &scheme, &address, &port, &path) != 0 || !address[0])
        return OV_EINVAL;
    int tls = strcmp(scheme, "wss") == 0 || strcmp(scheme, "https") == 0;
    if (!tls && strcmp(scheme, "ws") != 0 && strcmp(scheme, "http") != 0)
        return OV_EINVAL;
    char full_path[512];
    snprintf(full_path, sizeof full_path, "/%s", path);

    connection *conn = calloc(1, sizeof *conn);
    ov_ws *ws = calloc(1, sizeof *ws);
    if (!conn || !ws) {
        free(conn);
        free(ws);
        return OV_ENOMEM;
    }
    ws->server = server;
    ws->handlers = handlers;
    ws->app = conn_state;
    ws->conn = conn_state;
    ws->client = 1;
    conn->ws = ws;

    struct lws_client_connect_info info;
    memset(&info, 0, sizeof info);
    info.context = server->context;
    info.vhost = server->vhost;
    info.address = address;
    info.port = port;
    info.path = full_path;
    info.host = address;
    info.origin = address;
    info.protocol = handlers->subprotocol;
    info.local_protocol_name = handlers->subprotocol;
    info.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    info.opaque_user_data = conn;
    ws->dialling = 1;
    struct lws *wsi = lws_client_connect_via_info(&info);
    ws->dialling = 0;
    if (!wsi || ws->destroyed_in_dial) {
        /* lws refused at once (and may have destroyed the wsi already): nothing was reported
         * to the owner, and nothing will be. */
        free(conn);
        free(ws);
        return OV_EIO;
    }
    ws->wsi = wsi;
    if (out)
        *out = ws;
    return OV_OK;
}

/* libuv's backend fd, adopted as a raw file: readable means libuv has events to process. */
static int on_uv_backend_event(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                               void *in, size_t len)
{
    (void)user, (void)in, (void)len;
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {
        struct lws_context *context = lws_get_context(wsi);
        ov_http_server *server = context ? lws_context_user(context) : NULL;
        if (server)
            server->uv_ready = 1;
    }
    return 0;
}

#define UV_BACKEND_PROTOCOL "olievlek-uv-backend"

/* protocols[0] is the HTTP handler; the live-update websocket protocol goes after it. Its
 * tx_packet_size lets lws hand a whole chunk to send(): by default lws sends at most ~4 KB per
 * call and per POLLOUT, which made a large answer take one poll round per 4 KB. */
static const struct lws_protocols protocols[] = {
    {"http", on_http_event, 0, 0, 0, NULL, WRITE_CHUNK},
    {UV_BACKEND_PROTOCOL, on_uv_backend_event, 0, 0, 0, NULL, 0},
    /* The live-update websocket. A small receive buffer (client messages are small; longer ones
     * arrive in pieces and are joined) keeps an idle subscriber cheap; tx_packet_size lets one
     * send() carry a whole message. */
    {"olievlek.v1", on_ws_event, 0, 512, 0, NULL, 64u << 10},
    /* Node to node (docs/protocol.md §8): few connections, large runs of log entries. */
    {"olievlek.peer.v1", on_ws_event, 0, 16u << 10, 0, NULL, 256u << 10},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- Server ---------------------------------------------------------------------------------- */

static void on_lws_log(int level, const char *line)
{
    char text[512];
    snprintf(text, sizeof text, "%s", line);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    ov_jlog(level & LLL_ERR ? OV_JLOG_ERROR : OV_JLOG_WARN, "http.lws", "message", text, NULL);
}

/* Can host:port be bound? lws reports a failed bind only by a context without a listener,
 * which cannot be torn down cleanly on a foreign loop, so the common failure is caught first. */
static int probe_bind(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &found) != 0 || !found)
        return OV_EIO;
    int rc = OV_EIO;
    int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, found->ai_addr, found->ai_addrlen) == 0)
            rc = OV_OK;
        close(fd);
    }
    freeaddrinfo(found);
    return rc;
}

int ov_http_start(uv_loop_t *loop, const ov_http_options *options, ov_http_server **out)
{
    *out = NULL;
    if (!loop || !options || !options->handler)
        return OV_EINVAL;
    ov_http_server *server = calloc(1, sizeof *server);
    if (!server)
        return OV_ENOMEM;
    server->loop = loop;
    server->options = *options;
    if (!server->options.max_body)
        server->options.max_body = DEFAULT_MAX_BODY;
    if (!server->options.request_timeout_s)
        server->options.request_timeout_s = DEFAULT_REQUEST_TIMEOUT;
    if (!server->options.keepalive_timeout_s)
        server->options.keepalive_timeout_s = DEFAULT_KEEPALIVE;
    snprintf(server->host, sizeof server->host, "%s", options->host ? options->host : "127.0.0.1");
    server->options.host = server->host;

    if (probe_bind(server->host, options->port) != OV_OK) {
        free(server);
        return OV_EIO;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.port = options->port;
    info.iface = server->host;
    info.protocols = protocols;
    info.user = server;
    info.vhost_name = "olievlek";
    info.max_http_header_data = HEADER_DATA_MAX;
    info.max_http_header_pool = 256;
    info.keepalive_timeout = (int)server->options.keepalive_timeout_s;
    /* lws's own limits, a little looser than ours so that our 408 comes first. */
    info.timeout_secs = server->options.request_timeout_s + 5;
    info.timeout_secs_ah_idle = server->options.request_timeout_s + 2;
    /* No fd_limit_per_thread: below the process's open-file limit it switches lws 4.1 to a
     * linear search of all connections on every socket event (wsi_from_fd), 38% of the time of a
     * fan-out to 10,000 subscribers. lws indexes its table by descriptor up to the open-file
     * limit instead, which the application sets (main.c: max_connections). */
    info.count_threads = 1;

    server->context = lws_create_context(&info);
    if (!server->context) {
        free(server);
        return OV_EIO;
    }
    server->vhost = lws_get_vhost_by_name(server->context, "olievlek");
    server->port = server->vhost ? lws_get_vhost_listen_port(server->vhost) : -1;
    /* lws closes what it adopted when it is destroyed, so it gets a duplicate of libuv's fd
     * (the same epoll instance under a number of its own). */
    int uv_fd = uv_backend_fd(loop) >= 0 ? dup(uv_backend_fd(loop)) : -1;
    lws_sock_file_fd_type adopted = {.filefd = uv_fd};
    if (server->port <= 0 || uv_fd < 0 ||
        !lws_adopt_descriptor_vhost(server->vhost, LWS_ADOPT_RAW_FILE_DESC, adopted,
                                    UV_BACKEND_PROTOCOL, NULL)) {
        /* No listener (the port was taken between our probe and lws's bind), or no way to watch
         * libuv. lws_adopt_descriptor_vhost closes the fd when it fails. */
        if (uv_fd >= 0 && server->port <= 0)
            close(uv_fd);
        lws_context_destroy(server->context);
        free(server);
        return OV_EIO;
    }
    *out = server;
    ov_jlog_info("http.listen", "host", server->host, NULL);
    return OV_OK;
}

int ov_http_port(const ov_http_server *server)
{
    return server ? server->port : -1;
}

/* lws 4.1 runs due suls only at the start of lws_service, before it works out how long to wait
 * in poll() from the suls that are left, and looks at them again only in its next call. So a sul
 * that just set uv_ready is followed at once, in the same call, by a poll() that knows nothing of
 * it and sleeps until an unrelated socket event or lws's own next timer (a connection's timeout,
 * tens of seconds away, or none at all): libuv's timers stop. Usually ov_http_run finds libuv's
 * timer due first and this sul never fires; but lws rounds its wait down to whole milliseconds
 * and libuv counts whole milliseconds, so the loop spins through the last one, and when the
 * millisecond turns between our uv_update_time and lws's reading of its clock, libuv says "1 ms
 * to go" while lws fires this. Measured: 1 tick in ~150 of the live heartbeat's 125 ms timer,
 * and each time the heartbeats stopped. Waking poll() through lws's event pipe sends
 * lws_service back to ov_http_run, which runs libuv. */
static void on_uv_timer_due(lws_sorted_usec_list_t *sul)
{
    ov_http_server *server = lws_container_of(sul, ov_http_server, uv_timer);
    server->uv_ready = 1;
    server->uv_timer_due = 0;
    lws_cancel_service(server->context);
}

int ov_http_run(ov_http_server *server)
{
    uv_loop_t *loop = server->loop;
    while (!server->destroyed) {
        int timeout_ms = -1;
        if (uv_loop_alive(loop)) {
            uv_update_time(loop);
            timeout_ms = uv_backend_timeout(loop);
            if (server->uv_ready || timeout_ms == 0) {
                server->uv_ready = 0;
                uv_run(loop, UV_RUN_NOWAIT);
                if (server->destroyed)
                    break;
                if (!uv_loop_alive(loop))
                    continue;
                uv_update_time(loop);
                timeout_ms = uv_backend_timeout(loop);
                /* libuv has more to do at once (a fan-out that yields, say): let lws serve the
                 * sockets that are ready in between, without waiting in poll(). */
                if (timeout_ms == 0)
                    lws_cancel_service(server->context);
            }
        }
        /* lws keeps its timers in a sorted list: touch ours only when libuv's due time moved. */
        uint64_t due = timeout_ms < 0 ? 0 : uv_now(loop) + (uint64_t)timeout_ms;
        if (due != server->uv_timer_due) {
            lws_sul_schedule(server->context, 0, &server->uv_timer, on_uv_timer_due,
                             due ? (lws_usec_t)timeout_ms * LWS_US_PER_MS
                                 : LWS_SET_TIMER_USEC_CANCEL);
            server->uv_timer_due = due;
        }
        if (lws_service(server->context, 0) < 0)
            break;
    }
    /* lws is gone; what is left of the loop (closing handles, a writer finishing) runs alone. */
    return uv_run(loop, UV_RUN_DEFAULT);
}

static void finish_stop(ov_http_server *server)
{
    if (server->destroyed)
        return;
    server->destroyed = 1;
    /* Outside lws's service, with its own poll loop, this closes every connection and frees
     * the context in one call. */
    lws_context_destroy(server->context);
    server->context = NULL;
    if (server->on_stopped)
        server->on_stopped(server->stopped_arg);
}

static void on_stop_timer_closed(uv_handle_t *handle)
{
    finish_stop(handle->data);
}

/* Polls until every formatted answer has been handed to lws (which flushes what it holds before
 * it closes), or the grace period is over. Requests still with their handlers are not waited
 * for: the application finishes those (e.g. stops its writer) before it stops HTTP. */
static void on_stop_timer(uv_timer_t *timer)
{
    ov_http_server *server = timer->data;
    if (server->writing > 0 && uv_now(server->loop) < server->stop_deadline_ms)
        return;
    uv_timer_stop(timer);
    uv_close((uv_handle_t *)timer, on_stop_timer_closed);
}

void ov_http_stop(ov_http_server *server, void (*on_stopped)(void *arg), void *arg)
{
    if (!server || server->stopping)
        return;
    server->stopping = 1;
    server->on_stopped = on_stopped;
    server->stopped_arg = arg;
    server->stop_deadline_ms = uv_now(server->loop) + STOP_GRACE_MS;
    uv_timer_init(server->loop, &server->stop_timer);
    server->stop_timer.data = server;
    uv_timer_start(&server->stop_timer, on_stop_timer, 0, 10);
}

static void server_release(ov_http_server *server)
{
    free(server->ws_scratch);
    while (server->pool) {
        ov_http_request *req = server->pool;
        server->pool = req->next_free;
        free(req->body);
        free(req->out);
        free(req);
    }
    free(server);
}

void ov_http_free(ov_http_server *server)
{
    if (!server)
        return;
    if (server->context) {
        server->destroyed = 1;
        lws_context_destroy(server->context);
        server->context = NULL;
    }
    server->free_requested = 1;
    if (server->outstanding == 0)
        server_release(server);
    /* else the last ov_http_respond of a request its handler still holds frees the server */
}

/* ---- Request accessors ------------------------------------------------------------------------
 */

ov_http_method ov_http_request_method(const ov_http_request *request)
{
    return request->method;
}

const char *ov_http_request_method_name(const ov_http_request *request)
{
    return request->method_name;
}

const char *ov_http_request_path(const ov_http_request *request)
{
    return request->path;
}

const char *ov_http_request_query(const ov_http_request *request, const char *name)
{
    for (int i = 0; i < request->query_count; i++)
        if (strcmp(request->query_names[i], name) == 0)
            return request->query_values[i];
    return NULL;
}

int ov_http_request_query_all(const ov_http_request *request, const char *name, const char **values,
                              int max)
{
    int n = 0;
    for (int i = 0; i < request->query_count && n < max; i++)
        if (strcmp(request->query_names[i], name) == 0)
            values[n++] = request->query_values[i];
    return n;
}

int ov_http_request_query_each(const ov_http_request *request,
                               int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    for (int i = 0; i < request->query_count; i++) {
        int rc = fn(ctx, request->query_names[i], request->query_values[i]);
        if (rc)
            return rc;
    }
    return 0;
}

const char *ov_http_request_header(const ov_http_request *request, const char *name)
{
    for (int i = 0; i < request->header_count; i++)
        if (strcasecmp(request->headers[i].name, name) == 0)
            return request->headers[i].value;
    return NULL;
}

const char *ov_http_request_body(const ov_http_request *request, size_t *len)
{
    *len = request->body_len;
    return request->body_len ? request->body : "";
}

const char *ov_http_request_peer(const ov_http_request *request)
{
    ov_http_request *req = (ov_http_request *)request;
    if (!req->peer[0] && req->wsi)
        peer_address(req->wsi, req->peer);
    return req->peer;
}

uint64_t ov_http_request_start_ns(const ov_http_request *request)
{
    return request->start_ns;
}

/* ---- Answering --------------------------------------------------------------------------------
 */

/* After the answer is formatted (rc says whether): count it and send it now or when lws can. */
static void send_formatted(ov_http_request *req, int rc)
{
    req->state = REQ_ANSWERED;
    req->server->writing++;
    if (rc != OV_OK)
        req->status = 500;
    count_answer(req);
    if (req->in_callback) {
        if (rc != OV_OK)
            req->out_len = 0, req->close_after = 1; /* dispatch sends nothing and closes */
        return;
    }
    if (!req->wsi) {
        request_put(req); /* the connection closed while the handler worked */
        return;
    }
    if (rc != OV_OK) {
        struct lws *wsi = req->wsi;
        request_put(req);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    /* Deferred answers (after a durable write, say) go out at once when lws holds nothing unsent
     * for the connection, rather than after another poll round for POLLOUT; lws keeps whatever
     * the socket does not take. What a callback would have returned as "close" becomes an
     * immediate asynchronous close. */
    struct lws *wsi = req->wsi;
    if (lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi);
        return;
    }
    if (write_answer(wsi, req) < 0)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* No memory for this answer: a short one from the buffer we have, if it is big enough; else the
 * connection is cut, which the client at least notices. */
static int format_out_of_memory(ov_http_request *req)
{
    static const char oom[] = "{\"type\":\"/problems/internal\",\"title\":\"Interne fout\","
                              "\"status\":500,\"detail\":\"out of memory\"}";
    req->close_after = 1;
    return format_answer(req, 500, "application/problem+json", NULL, oom, sizeof oom - 1);
}

void ov_http_respond(ov_http_request *request, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t body_len,
                     const char *route)
{
    ov_http_request *req = request;
    if (!req || req->state != REQ_HANDLING)
        return; /* answered twice: keep the first */
    snprintf(req->route, sizeof req->route, "%s", route ? route : "");
    if (status < 100 || status > 599)
        status = 500;
    int rc = format_answer(req, status, content_type, extra_headers, body, body_len);
    if (rc != OV_OK)
        rc = format_out_of_memory(req);
    send_formatted(req, rc);
}

void ov_http_respond_in_place(ov_http_request *request, int status, const char *content_type,
                              const char *extra_headers, void *block, size_t body_len,
                              const char *route, ov_http_release_fn *release, void *release_ctx)
{
    ov_http_request *req = request;
    if (!req || req->state != REQ_HANDLING) {
        release(release_ctx, block); /* answered twice: keep the first */
        return;
    }
    snprintf(req->route, sizeof req->route, "%s", route ? route : "");
    if (status < 100 || status > 599)
        status = 500;
    req->block = block; /* from here on, request_put hands it back */
    req->block_release = release;
    req->block_ctx = release_ctx;
    int rc = format_in_place(req, status, content_type, extra_headers, block, body_len);
    if (rc != OV_OK)
        rc = format_answer(req, status, content_type, extra_headers,
                           (unsigned char *)block + OV_HTTP_HEADROOM, body_len);
    if (rc != OV_OK)
        rc = format_out_of_memory(req);
    send_formatted(req, rc);
}
