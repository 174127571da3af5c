/*
 * The HTTP layer as a client sees it: a real server on 127.0.0.1 (port 0) on a libuv loop in the
 * test thread, spoken to with plain blocking sockets from a second thread. Every test ends by
 * stopping the server, freeing it and proving that uv_loop_close() returns 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/error.h"
#include "server/http.h"
#include "server/metrics.h"

#define BIG_SIZE (3u << 20)

/* ---- The application under the server ------------------------------------------------------- */

typedef struct {
    uv_loop_t *loop;
    ov_http_server *server;
    uv_async_t done;
    int answered_late; /* deferred answers given */
    int handled;
    int in_place_given, in_place_released; /* blocks given to ov_http_respond_in_place, back */
    char *big;
    /* A libuv timer ticking while the server runs (/ticker/...). */
    uv_timer_t ticker;
    int ticks;
    uint64_t last_tick_ns, max_gap_ns;
} app_state;

typedef struct {
    uv_timer_t timer;
    ov_http_request *req;
    app_state *app;
    const char *text;
} deferred;

static void on_deferred_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_deferred(uv_timer_t *timer)
{
    deferred *d = timer->data;
    ov_http_respond(d->req, 200, "text/plain", NULL, d->text, strlen(d->text), "/defer");
    d->app->answered_late++;
    uv_close((uv_handle_t *)timer, on_deferred_closed);
}

/* /in-place: the big body built into a block after OV_HTTP_HEADROOM; ?late=1 answers from a
 * timer, after the handler returned. */
static void release_block(void *ctx, void *block)
{
    app_state *app = ctx;
    app->in_place_released++;
    free(block);
}

static void answer_in_place(app_state *app, ov_http_request *req)
{
    unsigned char *block = malloc(OV_HTTP_HEADROOM + BIG_SIZE);
    memset(block, 0xee, OV_HTTP_HEADROOM); /* what lies before the body must not leak out */
    memcpy(block + OV_HTTP_HEADROOM, app->big, BIG_SIZE);
    app->in_place_given++;
    ov_http_respond_in_place(req, 200, "application/octet-stream", "X-Built: in place\r\n", block,
                             BIG_SIZE, "/in-place", release_block, app);
}

typedef struct {
    uv_timer_t timer;
    ov_http_request *req;
    app_state *app;
} deferred_in_place;

static void on_deferred_in_place(uv_timer_t *timer)
{
    deferred_in_place *d = timer->data;
    answer_in_place(d->app, d->req);
    uv_close((uv_handle_t *)timer, on_deferred_closed);
}

static int append_param(void *ctx, const char *name, const char *value)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 2048 - n, "[%s=%s]", name, value);
    return 0;
}

static void on_tick(uv_timer_t *timer)
{
    app_state *app = timer->data;
    uint64_t now = uv_hrtime();
    if (now - app->last_tick_ns > app->max_gap_ns)
        app->max_gap_ns = now - app->last_tick_ns;
    app->last_tick_ns = now;
    app->ticks++;
}

/* /ticker/start?ms=N starts a repeating timer; /ticker/read answers "ticks max_gap_ms" since the
 * start or the last read, counting the time since the last tick as a gap too (the request itself
 * wakes a loop whose timer stalled); /ticker/stop closes the timer. */
static void ticker_request(app_state *app, ov_http_request *req, const char *what)
{
    char text[64] = "ok";
    uint64_t now = uv_hrtime();
    if (strcmp(what, "start") == 0) {
        const char *ms = ov_http_request_query(req, "ms");
        uint64_t period = ms ? strtoull(ms, NULL, 10) : 1;
        uv_timer_init(app->loop, &app->ticker);
        app->ticker.data = app;
        app->ticks = 0;
        app->last_tick_ns = now;
        app->max_gap_ns = 0;
        uv_timer_start(&app->ticker, on_tick, period, period);
    } else if (strcmp(what, "read") == 0) {
        uint64_t gap = now - app->last_tick_ns;
        if (gap < app->max_gap_ns)
            gap = app->max_gap_ns;
        snprintf(text, sizeof text, "%d %.1f", app->ticks, (double)gap / 1e6);
        app->ticks = 0;
        app->max_gap_ns = 0;
    } else if (strcmp(what, "stop") == 0) {
        uv_close((uv_handle_t *)&app->ticker, NULL);
    }
    ov_http_respond(req, 200, "text/plain", NULL, text, strlen(text), "/ticker");
}

static void handler(void *arg, ov_http_request *req)
{
    app_state *app = arg;
    app->handled++;
    const char *path = ov_http_request_path(req);
    char text[4096];
    if (strcmp(path, "/echo") == 0 || strcmp(path, "/caf\xc3\xa9 x") == 0) {
        char params[2048] = "";
        ov_http_request_query_each(req, append_param, params);
        const char *all[4];
        int n = ov_http_request_query_all(req, "a", all, 4);
        const char *first = ov_http_request_query(req, "a");
        const char *ua = ov_http_request_header(req, "User-Agent");
        snprintf(text, sizeof text, "%s %s %s a#%d first=%s ua=%s peer=%s",
                 ov_http_request_method_name(req), path, params, n, first ? first : "-",
                 ua ? ua : "-", ov_http_request_peer(req));
        ov_http_respond(req, 200, "text/plain; charset=utf-8", "X-Test: 1\r\n", text, strlen(text),
                        "/echo");
        return;
    }
    if (strcmp(path, "/body") == 0) {
        size_t len = 0;
        const char *body = ov_http_request_body(req, &len);
        const char *type = ov_http_request_header(req, "content-type");
        ov_http_respond(req, 201, type ? type : "application/octet-stream", NULL, body, len,
                        "/body");
        return;
    }
    if (strcmp(path, "/defer") == 0 || strcmp(path, "/defer-long") == 0) {
        deferred *d = calloc(1, sizeof *d);
        d->req = req;
        d->app = app;
        d->text = "answered later";
        uv_timer_init(app->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_deferred, path[6] ? 300 : 30, 0);
        return;
    }
    if (strcmp(path, "/big") == 0) {
        ov_http_respond(req, 200, "application/octet-stream", NULL, app->big, BIG_SIZE, "/big");
        return;
    }
    if (strcmp(path, "/in-place") == 0) {
        const char *late = ov_http_request_query(req, "late");
        if (!late) {
            answer_in_place(app, req);
            return;
        }
        deferred_in_place *d = calloc(1, sizeof *d);
        d->req = req;
        d->app = app;
        uv_timer_init(app->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_deferred_in_place, strtoull(late, NULL, 10), 0);
        return;
    }
    if (strncmp(path, "/ticker/", 8) == 0) {
        ticker_request(app, req, path + 8);
        return;
    }
    if (strcmp(path, "/empty") == 0) {
        ov_http_respond(req, 204, NULL, NULL, NULL, 0, "/empty");
        return;
    }
    ov_http_respond(req, 404, "text/plain", NULL, "no", 2, "/other");
}

/* ---- A blocking client in its own thread ---------------------------------------------------- */

typedef struct {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
    int closed_after; /* the server closed the connection after this answer */
} reply;

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *find_header(const reply *r, const char *name)
{
    static char value[512];
    const char *p = r->head;
    size_t n = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            snprintf(value, sizeof value, "%.*s", (int)len, v);
            return value;
        }
    }
    return NULL;
}

/* Reads one answer; head_only for HEAD (no body follows despite Content-Length). */
static int read_reply(int fd, reply *r, int head_only)
{
    memset(r, 0, sizeof *r);
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got + 1 >= sizeof r->head)
            return -1;
        ssize_t n = recv(fd, r->head + got, 1, 0); /* byte by byte: never read past the head */
        if (n <= 0)
            return -1;
        got += (size_t)n;
        r->head[got] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = find_header(r, "content-length");
    size_t len = cl ? strtoul(cl, NULL, 10) : 0;
    if (head_only)
        len = 0;
    r->body = malloc(len + 1);
    while (r->body_len < len) {
        ssize_t n = recv(fd, r->body + r->body_len, len - r->body_len, 0);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* True when the peer closes the connection within a second (and sends nothing more). */
static int peer_closes(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        return 0;
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- Harness ----------------------------------------------------------------------------------
 */

typedef struct {
    int port;
    char error[512]; /* first failed expectation of the client thread */
    void (*scenario)(void *ctx);
    app_state *app;
    int stage; /* scenario progress, for the message */
    void *data;
} client_ctx;

#define EXPECT(ctx, cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond) && !(ctx)->error[0]) {                                                         \
            snprintf((ctx)->error, sizeof(ctx)->error, __VA_ARGS__);                               \
        }                                                                                          \
    } while (0)

static void on_async_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void on_stopped(void *arg)
{
    app_state *app = arg;
    uv_close((uv_handle_t *)&app->done, on_async_closed);
}

static void on_client_done(uv_async_t *async)
{
    app_state *app = async->data;
    ov_http_stop(app->server, on_stopped, app);
}

static void *client_main(void *arg)
{
    client_ctx *ctx = arg;
    ctx->scenario(ctx);
    uv_async_send(&ctx->app->done);
    return NULL;
}

static void run_with_server(const ov_http_options *extra, void (*scenario)(void *ctx),
                            client_ctx *ctx, app_state *app)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(app, 0, sizeof *app);
    app->loop = &loop;
    app->big = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        app->big[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    ov_http_options options = {.host = "127.0.0.1", .port = 0, .handler = handler, .app = app};
    if (extra) {
        options.max_body = extra->max_body;
        options.request_timeout_s = extra->request_timeout_s;
        options.keepalive_timeout_s = extra->keepalive_timeout_s;
    }
    assert_int_equal(ov_http_start(&loop, &options, &app->server), OV_OK);
    assert_true(ov_http_port(app->server) > 0);
    uv_async_init(&loop, &app->done, on_client_done);
    app->done.data = app;
    ctx->port = ov_http_port(app->server);
    ctx->scenario = scenario;
    ctx->app = app;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, client_main, ctx), 0);
    ov_http_run(app->server);
    pthread_join(thread, NULL);
    ov_http_free(app->server);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(app->big);
    if (ctx->error[0])
        fail_msg("%s", ctx->error);
}

/* ---- Scenarios ------------------------------------------------------------------------------- */

static void scenario_query(void *arg)
{
    client_ctx *ctx = arg;
    int fd = connect_to(ctx->port);
    const char *request =
        "GET /echo?a=1&b=x+y&c=%26%3D%2B&a=two%20words&empty=&flag&%C3%A9=%E2%82%AC"
        " HTTP/1.1\r\nHost: x\r\nUser-Agent: tester/1\r\n\r\n";
    reply r;
    EXPECT(ctx, send_all(fd, request, strlen(request)) == 0, "send");
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply");
    EXPECT(ctx, r.status == 200, "status %d", r.status);
    const char *want = "GET /echo [a=1][b=x y][c=&=+][a=two words][empty=][flag=]"
                       "[\xc3\xa9=\xe2\x82\xac] a#2 first=1 ua=tester/1 peer=127.0.0.1";
    EXPECT(ctx, r.body && strcmp(r.body, want) == 0, "body '%s'", r.body);
    const char *server = find_header(&r, "server");
    EXPECT(ctx, server && strcmp(server, "olievlekd") == 0, "Server header");
    const char *extra = find_header(&r, "x-test");
    EXPECT(ctx, extra && strcmp(extra, "1") == 0, "extra header");
    reply_free(&r);

    /* A percent-encoded path is decoded before the handler sees it. */
    request = "GET /caf%C3%A9%20x HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply 2");
    EXPECT(ctx, r.status == 200 && r.body && strncmp(r.body, "GET /caf\xc3\xa9 x ", 11) == 0,
           "decoded path: %d '%s'", r.status, r.body);
    reply_free(&r);

    /* Invalid UTF-8 in the path: 400, from the layer itself. */
    request = "GET /%FF%FE HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply 3");
    EXPECT(ctx, r.status == 400, "bad UTF-8 status %d", r.status);
    EXPECT(ctx, r.body && strstr(r.body, "/problems/bad-request"), "problem body '%s'", r.body);
    reply_free(&r);
    close(fd);

    /* More than 64 parameters: refused. */
    fd = connect_to(ctx->port);
    char many[4096] = "GET /echo?";
    for (int i = 0; i < 70; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "p%d=%d&", i, i);
    strcat(many, " HTTP/1.1\r\nHost: x\r\n\r\n");
    send_all(fd, many, strlen(many));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply 4");
    EXPECT(ctx, r.status == 414, "too many parameters: %d", r.status);
    reply_free(&r);
    close(fd);
}

static void test_get_with_query(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_query, &ctx, &app);
    assert_int_equal(app.handled, 2); /* the 400 and 414 never reached the handler */
}

static void scenario_keepalive(void *arg)
{
    client_ctx *ctx = arg;
    int fd = connect_to(ctx->port);
    reply r;
    for (int i = 0; i < 3; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /echo?a=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        send_all(fd, request, strlen(request));
        EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply %d on the same connection", i);
        char want[32];
        snprintf(want, sizeof want, "first=%d ", i);
        EXPECT(ctx, r.status == 200 && r.body && strstr(r.body, want), "reply %d: %s", i, r.body);
        reply_free(&r);
    }
    /* Connection: close is honoured: answered, then closed. */
    const char *last = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, last, strlen(last));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 200, "last reply");
    EXPECT(ctx, peer_closes(fd), "closed after Connection: close");
    reply_free(&r);
    close(fd);
}

static void test_keepalive(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_keepalive, &ctx, &app);
    assert_int_equal(app.handled, 4);
}

static void scenario_post(void *arg)
{
    client_ctx *ctx = arg;
    int fd = connect_to(ctx->port);
    reply r;
    const char *body = "{\"titel\":\"Intermezzo-jaar\",\"fase\":\"adoptie\"}";
    char request[512];
    snprintf(request, sizeof request,
             "POST /body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n",
             strlen(body));
    send_all(fd, request, strlen(request));
    usleep(20000); /* the body in a second segment */
    send_all(fd, body, strlen(body));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply");
    EXPECT(ctx, r.status == 201 && r.body && strcmp(r.body, body) == 0, "echo %d '%s'", r.status,
           r.body);
    const char *type = find_header(&r, "content-type");
    EXPECT(ctx, type && strcmp(type, "application/json") == 0, "type");
    reply_free(&r);

    /* Keep-alive after a body, then a chunked body (the layer closes after it). */
    const char *chunked = "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhallo\r\n8;ext=1\r\n, wereld\r\n0\r\n\r\n";
    send_all(fd, chunked, strlen(chunked));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no chunked reply");
    EXPECT(ctx, r.status == 201 && r.body && strcmp(r.body, "hallo, wereld") == 0,
           "chunked %d '%s'", r.status, r.body);
    reply_free(&r);
    close(fd);

    /* PUT with an empty body. */
    fd = connect_to(ctx->port);
    const char *put = "PUT /body HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    send_all(fd, put, strlen(put));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 201 && r.body_len == 0, "empty PUT");
    reply_free(&r);
    close(fd);
}

static void test_post_body(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_post, &ctx, &app);
}

static void scenario_too_large(void *arg)
{
    client_ctx *ctx = arg;
    reply r;
    int fd = connect_to(ctx->port);
    const char *request = "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply");
    EXPECT(ctx, r.status == 413, "status %d", r.status);
    EXPECT(ctx, r.body && strstr(r.body, "/problems/too-large"), "body %s", r.body);
    EXPECT(ctx, peer_closes(fd), "closed after 413");
    reply_free(&r);
    close(fd);

    /* A chunked body that grows past the limit. */
    fd = connect_to(ctx->port);
    request = "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, request, strlen(request));
    char chunk[600];
    memset(chunk, 'x', sizeof chunk);
    int sent_ok = 1;
    for (int i = 0; i < 4 && sent_ok; i++) {
        char size[16];
        snprintf(size, sizeof size, "%zx\r\n", sizeof chunk);
        sent_ok = send_all(fd, size, strlen(size)) == 0 && send_all(fd, chunk, sizeof chunk) == 0 &&
                  send_all(fd, "\r\n", 2) == 0;
    }
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply to the growing chunked body");
    EXPECT(ctx, r.status == 413, "chunked status %d", r.status);
    reply_free(&r);
    close(fd);
}

static void test_too_large(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    ov_http_options options = {.max_body = 1024};
    run_with_server(&options, scenario_too_large, &ctx, &app);
    assert_int_equal(app.handled, 0);
}

static void scenario_slow(void *arg)
{
    client_ctx *ctx = arg;
    reply r;
    int fd = connect_to(ctx->port);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *part = "GET /echo HTTP/1.1\r\nHost: x\r\nUser-Ag";
    send_all(fd, part, strlen(part));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply to slow headers");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    EXPECT(ctx, r.status == 408, "status %d", r.status);
    EXPECT(ctx, waited > 0.5 && waited < 4, "waited %.2f s", waited);
    EXPECT(ctx, peer_closes(fd), "closed after 408");
    reply_free(&r);
    close(fd);

    /* A body that stops arriving, on a second request of a keep-alive connection. */
    fd = connect_to(ctx->port);
    const char *first = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, first, strlen(first));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 200, "first request");
    reply_free(&r);
    usleep(700000);
    const char *post = "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this";
    send_all(fd, post, strlen(post));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no reply to slow body");
    EXPECT(ctx, r.status == 408, "slow body status %d", r.status);
    reply_free(&r);
    close(fd);
}

static void test_slow_sender(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    ov_http_options options = {.request_timeout_s = 1};
    run_with_server(&options, scenario_slow, &ctx, &app);
    assert_int_equal(app.handled, 1);
}

static void scenario_head(void *arg)
{
    client_ctx *ctx = arg;
    reply get, head, r;
    int fd = connect_to(ctx->port);
    const char *request = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &get, 0) == 0, "GET");
    request = "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &head, 1) == 0, "HEAD");
    EXPECT(ctx, head.status == 200, "HEAD status %d", head.status);
    const char *cl = find_header(&head, "content-length");
    /* The handler saw method HEAD, so its text is one byte longer than for GET. */
    EXPECT(ctx, cl && strtoul(cl, NULL, 10) == get.body_len + 1, "HEAD length %s vs %zu", cl,
           get.body_len);
    /* No body followed: the next answer on the connection starts right away. */
    request = "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 204, "after HEAD: %d", r.status);
    EXPECT(ctx, find_header(&r, "content-length") == NULL, "204 has no Content-Length");
    reply_free(&r);
    request = "OPTIONS /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 404 && r.body_len == 2,
           "OPTIONS reaches the handler");
    reply_free(&r);
    reply_free(&get);
    reply_free(&head);
    close(fd);
}

static void test_head_and_options(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_head, &ctx, &app);
}

static void scenario_deferred(void *arg)
{
    client_ctx *ctx = arg;
    reply r;
    int fd = connect_to(ctx->port);
    for (int i = 0; i < 2; i++) {
        const char *request = "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fd, request, strlen(request));
        EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no deferred reply");
        EXPECT(ctx, r.status == 200 && r.body && strcmp(r.body, "answered later") == 0,
               "deferred %d '%s'", r.status, r.body);
        reply_free(&r);
    }
    close(fd);

    /* The client leaves before the answer: the answer is dropped, the server lives on. */
    fd = connect_to(ctx->port);
    const char *request = "GET /defer-long HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    usleep(50000);
    close(fd);
    usleep(500000);
    fd = connect_to(ctx->port);
    request = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, request, strlen(request));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.status == 200, "server alive afterwards");
    reply_free(&r);
    close(fd);
}

static void test_deferred(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_deferred, &ctx, &app);
    assert_int_equal(app.answered_late, 3);
}

static void scenario_big(void *arg)
{
    client_ctx *ctx = arg;
    reply r;
    /* Two big answers on one keep-alive connection to a reader that lets the server's socket
     * fill up: both arrive whole, and the connection stays usable after the first. */
    int fd = connect_to(ctx->port);
    int small = 16384;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    for (int i = 0; i < 2; i++) {
        const char *request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fd, request, strlen(request));
        usleep(200000); /* let the server fill the socket and wait */
        EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no big reply %d", i);
        EXPECT(ctx, r.status == 200 && r.body_len == BIG_SIZE, "big %d %zu", r.status, r.body_len);
        EXPECT(ctx, r.body && memcmp(r.body, ctx->app->big, BIG_SIZE) == 0, "big bytes differ");
        reply_free(&r);
    }
    close(fd);
}

static void test_big_answer(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_big, &ctx, &app);
}

static void scenario_in_place(void *arg)
{
    client_ctx *ctx = arg;
    reply r;
    /* Answered at once and later, on one keep-alive connection to a slow reader: the body
     * arrives whole, with its headers, and nothing of the headroom. */
    int fd = connect_to(ctx->port);
    int small = 16384;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *requests[] = {"GET /in-place HTTP/1.1\r\nHost: x\r\n\r\n",
                              "GET /in-place?late=20 HTTP/1.1\r\nHost: x\r\n\r\n"};
    for (int i = 0; i < 2; i++) {
        send_all(fd, requests[i], strlen(requests[i]));
        usleep(100000);
        EXPECT(ctx, read_reply(fd, &r, 0) == 0, "no in-place reply %d", i);
        EXPECT(ctx, r.status == 200 && r.body_len == BIG_SIZE, "in place %d: %d %zu", i, r.status,
               r.body_len);
        EXPECT(ctx, r.body && memcmp(r.body, ctx->app->big, BIG_SIZE) == 0,
               "in-place bytes differ");
        const char *built = find_header(&r, "x-built"); /* find_header's value is static */
        EXPECT(ctx, built && strcmp(built, "in place") == 0, "extra header of an in-place answer");
        const char *type = find_header(&r, "content-type");
        EXPECT(ctx, type && strcmp(type, "application/octet-stream") == 0, "its content type");
        EXPECT(ctx, strchr(r.head, 0xee) == NULL, "headroom bytes in the head");
        reply_free(&r);
    }
    /* HEAD: the length, no body; the connection goes on. */
    const char *head = "HEAD /in-place HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, head, strlen(head));
    EXPECT(ctx, read_reply(fd, &r, 1) == 0 && r.status == 200, "HEAD in place");
    const char *length = find_header(&r, "content-length");
    EXPECT(ctx, length && strtoul(length, NULL, 10) == BIG_SIZE, "HEAD length %s", length);
    reply_free(&r);
    send_all(fd, requests[0], strlen(requests[0]));
    EXPECT(ctx, read_reply(fd, &r, 0) == 0 && r.body_len == BIG_SIZE, "after HEAD");
    reply_free(&r);
    close(fd);

    /* The client leaves before a late answer, and in the middle of one: the blocks come back
     * all the same (the test counts them after the server stopped). */
    fd = connect_to(ctx->port);
    const char *late = "GET /in-place?late=200 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, late, strlen(late));
    usleep(50000);
    close(fd);
    fd = connect_to(ctx->port);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_all(fd, requests[0], strlen(requests[0]));
    char some[4096];
    EXPECT(ctx, recv(fd, some, sizeof some, 0) > 0, "the start of an in-place answer");
    close(fd);
    usleep(400000);
}

static void test_in_place_answer(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_in_place, &ctx, &app);
    assert_int_equal(app.in_place_given, 6);
    assert_int_equal(app.in_place_released, app.in_place_given);
}

static void scenario_many(void *arg)
{
    client_ctx *ctx = arg;
    /* Many connections open at once, answered in any order. */
    int fds[40];
    for (int i = 0; i < 40; i++) {
        fds[i] = connect_to(ctx->port);
        const char *request = i % 2 ? "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
                                    : "GET /echo?a=x HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fds[i], request, strlen(request));
    }
    for (int i = 0; i < 40; i++) {
        reply r;
        EXPECT(ctx, read_reply(fds[i], &r, 0) == 0 && r.status == 200, "connection %d", i);
        reply_free(&r);
        close(fds[i]);
    }
}

static void test_metrics_and_many(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    ov_metrics_reset();
    run_with_server(NULL, scenario_many, &ctx, &app);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ov_metrics_render(&text, &len), OV_OK);
    assert_non_null(strstr(
        text, "olievlek_http_requests_total{route=\"/echo\",method=\"GET\",status=\"200\"} 20\n"));
    assert_non_null(strstr(
        text, "olievlek_http_requests_total{route=\"/defer\",method=\"GET\",status=\"200\"} 20\n"));
    assert_non_null(
        strstr(text, "olievlek_http_request_duration_seconds_count{route=\"/defer\"} 20\n"));
    free(text);
}

/* One GET on a connection of its own, closed after the answer; the body is copied to out. */
static int get_once(int port, const char *path, char *out, size_t out_size)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    char request[256];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             path);
    reply r;
    int rc =
        send_all(fd, request, strlen(request)) == 0 && read_reply(fd, &r, 0) == 0 && r.status == 200
            ? 0
            : -1;
    if (rc == 0)
        snprintf(out, out_size, "%s", r.body);
    reply_free(&r);
    close(fd);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define TICK_MS        2
#define TICK_PHASE_MS  1500
#define TICK_GAP_LIMIT 250.0 /* ms; a stalled timer waits for the next socket event instead */

/* libuv's timers keep their period under ov_http_run, with no socket activity at all (libuv's
 * timer is then the only thing that wakes lws's poll) and while requests keep lws busy. */
static void scenario_timer_period(void *arg)
{
    client_ctx *ctx = arg;
    char text[64] = "";
    char path[64];
    snprintf(path, sizeof path, "/ticker/start?ms=%d", TICK_MS);
    EXPECT(ctx, get_once(ctx->port, path, text, sizeof text) == 0, "start the timer");
    sleep_ms(TICK_PHASE_MS);
    int ticks = 0;
    double gap = 0;
    EXPECT(ctx, get_once(ctx->port, "/ticker/read", text, sizeof text) == 0, "read (idle)");
    EXPECT(ctx, sscanf(text, "%d %lf", &ticks, &gap) == 2, "read (idle): %s", text);
    EXPECT(ctx, gap < TICK_GAP_LIMIT && ticks > TICK_PHASE_MS / TICK_MS / 4,
           "idle: %d ticks of %d ms in %d ms, longest gap %.1f ms", ticks, TICK_MS, TICK_PHASE_MS,
           gap);

    int fd = connect_to(ctx->port);
    uint64_t end = uv_hrtime() + (uint64_t)TICK_PHASE_MS * 1000000u;
    while (fd >= 0 && uv_hrtime() < end) {
        const char *request = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
        reply r;
        int ok = send_all(fd, request, strlen(request)) == 0 && read_reply(fd, &r, 0) == 0;
        reply_free(&r);
        if (!ok) {
            EXPECT(ctx, 0, "a request failed while the timer ran");
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    EXPECT(ctx, get_once(ctx->port, "/ticker/read", text, sizeof text) == 0, "read (busy)");
    EXPECT(ctx, sscanf(text, "%d %lf", &ticks, &gap) == 2, "read (busy): %s", text);
    EXPECT(ctx, gap < TICK_GAP_LIMIT && ticks > TICK_PHASE_MS / TICK_MS / 4,
           "busy: %d ticks of %d ms in %d ms, longest gap %.1f ms", ticks, TICK_MS, TICK_PHASE_MS,
           gap);
    EXPECT(ctx, get_once(ctx->port, "/ticker/stop", text, sizeof text) == 0, "stop the timer");
}

static void test_timer_keeps_period(void **state)
{
    client_ctx ctx = {0};
    app_state app;
    run_with_server(NULL, scenario_timer_period, &ctx, &app);
}

static void test_start_fails_on_taken_port(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    app_state app = {.loop = &loop};
    ov_http_server *first = NULL, *second = NULL;
    ov_http_options options = {.host = "127.0.0.1", .handler = handler, .app = &app};
    assert_int_equal(ov_http_start(&loop, &options, &first), OV_OK);
    options.port = ov_http_port(first);
    assert_int_equal(ov_http_start(&loop, &options, &second), OV_EIO);
    assert_null(second);
    ov_http_stop(first, NULL, NULL);
    ov_http_run(first);
    ov_http_free(first);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_query),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_slow_sender),
        cmocka_unit_test(test_head_and_options),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_big_answer),
        cmocka_unit_test(test_in_place_answer),
        cmocka_unit_test(test_metrics_and_many),
        cmocka_unit_test(test_start_fails_on_taken_port),
        cmocka_unit_test(test_timer_keeps_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
