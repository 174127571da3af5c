/*
 * Live updates over websockets (see live.h and docs/protocol.md section 7).
 *
 * Memory: a change is rendered once into a reference-counted event ("seq":N,"record":…}) and a
 * connection's queue holds only pointers to events plus the subscription they are for; the
 * message prefix naming the subscription is joined at send time. A subscriber that keeps up has
 * no queue at all (the fast path sends at once), so an idle subscriber costs its connection and
 * its subscriptions only. A queue that reaches its cap closes the connection with 4001.
 */
#include "server/live.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/buf.h"
#include "proto/canon.h"
#include "proto/error.h"
#include "proto/id.h"
#include "proto/record.h"
#include "proto/text.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/jlog.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/session_api.h"
#include "server/store.h"

#define MAX_SUBSCRIPTIONS 32
#define SUB_ID_MAX        64
#define MAX_MESSAGE       (8u << 10)
#define FILTER_MAX_TERMS  14
#define FILTER_MAX_VALUES 16
#define FILTER_VALUE_MAX  128
#define FACETS_MAX        64
#define FEED_STEP         256    /* changes read per feed pass */
#define FEED_PASSES       16     /* passes per notify before yielding to the loop */
#define REPLAY_STEP       64     /* changes a resuming subscription reads at a time */
#define REPLAY_MAX        100000 /* positions behind the feed's end a resume may be */
#define ADDRESS_BUCKETS   1024
#define CLOSE_SLOW        4001
#define CLOSE_IDLE        4002
#define CLOSE_GOING_AWAY  1001

/* ---- Events ---------------------------------------------------------------------------------- */

typedef struct {
    int refs;
    uint64_t seq;
    size_t len;
    char data[]; /* "seq":N,"record":{…}}  — the tail of a change message */
} event;

static event *event_new(uint64_t seq, const char *record, size_t record_len)
{
    char head[48];
    int n = snprintf(head, sizeof head, "\"seq\":%llu,\"record\":", (unsigned long long)seq);
    event *ev = malloc(sizeof *ev + (size_t)n + record_len + 1);
    if (!ev)
        return NULL;
    ev->refs = 1;
    ev->seq = seq;
    memcpy(ev->data, head, (size_t)n);
    memcpy(ev->data + n, record, record_len);
    ev->data[(size_t)n + record_len] = '}';
    ev->len = (size_t)n + record_len + 1;
    return ev;
}

/* A whole message of its own (a control message), queued like changes to keep the order. */
static event *event_raw(const char *text, size_t len)
{
    event *ev = malloc(sizeof *ev + len);
    if (!ev)
        return NULL;
    ev->refs = 1;
    ev->seq = 0;
    ev->len = len;
    memcpy(ev->data, text, len);
    return ev;
}

static void event_unref(event *ev)
{
    if (ev && --ev->refs == 0)
        free(ev);
}

/* ---- Filters --------------------------------------------------------------------------------- */

typedef struct {
    char key[16]; /* "kind", "id", "origin" or a list facet */
    int count;
    char **values; /* count strings, allocated together with the array */
} filter_term;

typedef struct {
    const char *facet[FACETS_MAX];
    const char *value[FACETS_MAX];
    int count;
    json_t *record; /* owns the strings above */
} facet_list;

static int collect_facet(void *ctx, const char *facet, const char *value)
{
    facet_list *list = ctx;
    if (list->count < FACETS_MAX) {
        list->facet[list->count] = facet;
        list->value[list->count] = value;
        list->count++;
    }
    return 0;
}

/* ---- Connections ----------------------------------------------------------------------------- */

typedef struct {
    char id[SUB_ID_MAX + 1];
    filter_term *terms;
    int term_count;
    int envelope_only; /* filters on kind/id/origin only: may see changes of hidden records */
    uint64_t pos;      /* the feed position this subscription has been served up to */
    int replaying;     /* reading the feed itself, from pos, until it reaches the end */
} subscription;

typedef struct {
    event *ev;
    int sub; /* index into subs (an unsubscribe drops its events and renumbers the rest), or -1
                for a control message sent as it is */
} queued;

typedef struct live_conn live_conn;
struct live_conn {
    ov_live *live;
    ov_ws *ws;
    live_conn *prev, *next;
    ov_principal who;
    char peer[64];
    subscription *subs;
    int sub_count;
    queued *queue; /* ring, allocated when first needed */
    unsigned q_head, q_len;
    uint64_t last_heard_ms;
    uint64_t next_beat_ms; /* when this connection's next heartbeat is due */
    int closing;
};

typedef struct {
    uint64_t connections; /* open now */
    uint64_t subscriptions;
    uint64_t sent;        /* change messages handed to connections */
    uint64_t closed_slow; /* connections closed for not reading */
    uint64_t refused;     /* upgrades refused by the caps */
} live_stats;

typedef struct address_count {
    struct address_count *next;
    unsigned count;
    char peer[64];
} address_count;

struct ov_live {
    ov_node *node;
    ov_live_options options;
    live_conn *conns;
    uint64_t published; /* feed position fanned out up to */
    uv_timer_t heartbeat;
    uv_idle_t more; /* continues a fan-out that yielded */
    int stopping;
    ov_ratelimit *handshakes;
    uint32_t jitter; /* spreads heartbeats of connections opened together */
    ov_text *text;   /* analyses queries and records for "q" filters */
    address_count *addresses[ADDRESS_BUCKETS];
    live_stats stats;
};

/* Publishes the counters on /metrics; called where they change (at most once per fan-out for the
 * send counter), so a scrape never has to ask this module. */
static void update_metrics(const ov_live *live)
{
    const live_stats *st = &live->stats;
    ov_metrics_set_gauge("olievlek_live_connections", "Open live-update websockets",
                         (double)st->connections);
    ov_metrics_set_gauge("olievlek_live_subscriptions", "Active live subscriptions",
                         (double)st->subscriptions);
    ov_metrics_set_gauge("olievlek_live_sent_total", "Change messages handed to live connections",
                         (double)st->sent);
    ov_metrics_set_gauge("olievlek_live_closed_slow_total",
                         "Live connections closed for not reading their queue",
                         (double)st->closed_slow);
    ov_metrics_set_gauge("olievlek_live_refused_total",
                         "Live upgrades refused by the per-address caps", (double)st->refused);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static address_count **address_slot(ov_live *live, const char *peer)
{
    address_count **slot = &live->addresses[ov_hash_bytes(peer, strlen(peer)) % ADDRESS_BUCKETS];
    while (*slot && strcmp((*slot)->peer, peer) != 0)
        slot = &(*slot)->next;
    return slot;
}

static void address_release(ov_live *live, const char *peer)
{
    address_count **slot = address_slot(live, peer);
    if (*slot && --(*slot)->count == 0) {
        address_count *gone = *slot;
        *slot = gone->next;
        free(gone);
    }
}

/* ---- Sending --------------------------------------------------------------------------------- */

static void deliver(live_conn *conn, event *ev, int sub);

static void send_control(live_conn *conn, json_t *message)
{
    char *text = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(message);
    if (!text)
        return;
    event *ev = event_raw(text, strlen(text));
    free(text);
    if (ev) {
        deliver(conn, ev, -1);
        event_unref(ev);
    }
}

static void send_error(live_conn *conn, int status, const char *title, const char *detail,
                       const char *ref)
{
    json_t *m = json_pack("{s:s, s:i, s:s, s:s}", "type", "error", "status", status, "title", title,
                          "detail", detail);
    if (m && ref)
        json_object_set_new(m, "ref", json_string(ref));
    if (m)
        send_control(conn, m);
}

static void close_conn(live_conn *conn, int code, const char *reason)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    ov_ws_close(conn->ws, code, reason);
}

static int send_change(live_conn *conn, const event *ev, int sub)
{
    if (sub < 0)
        return ov_ws_send(conn->ws, ev->data, ev->len, NULL, 0);
    char head[SUB_ID_MAX + 40];
    int n = snprintf(head, sizeof head, "{\"type\":\"change\",\"sub\":\"%s\",", conn->subs[sub].id);
    return ov_ws_send(conn->ws, head, (size_t)n, ev->data, ev->len);
}

/* The lowest position any subscription of conn has been handed out up to: where to resume. */
static uint64_t resume_position(const live_conn *conn)
{
    uint64_t low = UINT64_MAX;
    for (int i = 0; i < conn->sub_count; i++)
        if (conn->subs[i].pos < low)
            low = conn->subs[i].pos;
    /* Queued changes have not been handed out: resume before the oldest. */
    unsigned cap = conn->live->options.queue;
    for (unsigned i = 0; i < conn->q_len; i++) {
        const queued *q = &conn->queue[(conn->q_head + i) % cap];
        if (q->sub >= 0) {
            if (q->ev->seq - 1 < low)
                low = q->ev->seq - 1;
            break;
        }
    }
    return low == UINT64_MAX ? 0 : low;
}

/* Queues (or sends at once) ev for subscription sub. */
static void deliver(live_conn *conn, event *ev, int sub)
{
    if (conn->closing)
        return;
    if (conn->q_len == 0 && ov_ws_ready(conn->ws)) {
        if (send_change(conn, ev, sub) == OV_OK) {
            if (sub >= 0)
                conn->live->stats.sent++;
            return;
        }
    }
    if (conn->closing)
        return;
    ov_live *live = conn->live;
    unsigned cap = live->options.queue;
    if (!conn->queue) {
        conn->queue = malloc(sizeof *conn->queue * cap);
        if (!conn->queue) {
            close_conn(conn, 1011, "out of memory");
            return;
        }
    }
    if (conn->q_len == cap) {
        char reason[96];
        snprintf(reason, sizeof reason, "te traag gelezen / reader too slow; resume from seq %llu",
                 (unsigned long long)resume_position(conn));
        live->stats.closed_slow++;
        ov_jlog_info("live.slow_reader", "peer", conn->peer, NULL);
        close_conn(conn, CLOSE_SLOW, reason);
        return;
    }
    ev->refs++;
    conn->queue[(conn->q_head + conn->q_len) % cap] = (queued){ev, sub};
    conn->q_len++;
    ov_ws_want_writable(conn->ws);
}

static void replay_step(live_conn *conn);

/* Sends what is queued while the connection takes it. */
static void flush(live_conn *conn)
{
    unsigned cap = conn->live->options.queue;
    while (conn->q_len && !conn->closing) {
        queued *q = &conn->queue[conn->q_head];
        int rc = send_change(conn, q->ev, q->sub);
        if (rc == OV_EAGAIN)
            break;
        if (rc == OV_OK && q->sub >= 0)
            conn->live->stats.sent++;
        event_unref(q->ev);
        conn->q_head = (conn->q_head + 1) % cap;
        conn->q_len--;
        if (rc != OV_OK)
            return;
    }
    if (conn->q_len) {
        ov_ws_want_writable(conn->ws);
        return;
    }
    free(conn->queue); /* idle subscribers keep no queue */
    conn->queue = NULL;
    conn->q_head = 0;
    replay_step(conn);
}

/* ---- Matching -------------------------------------------------------------------------------- */

static int term_has(const filter_term *t, const char *value)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->values[i], value) == 0)
            return 1;
    return 0;
}

#define VIEW_WORDS_MAX 4096 /* distinct terms of one record a text filter looks at */

typedef struct {
    const ov_record_meta *meta;
    char id[OV_ID_CHARS + 1];
    char origin[OV_ID_CHARS + 1];
    const char *kind;
    facet_list facets; /* of the record, when it is visible */
    /* The record's analysed words, sorted and distinct: made when a text filter first asks. */
    ov_text *analyser;
    char **words;
    size_t word_count, word_cap;
    int words_done;
} change_view;

static int add_word(void *ctx, const char *term, size_t len, uint32_t position)
{
    (void)position;
    change_view *view = ctx;
    if (view->word_count == VIEW_WORDS_MAX)
        return 1;
    if (view->word_count == view->word_cap) {
        size_t cap = view->word_cap ? view->word_cap * 2 : 64;
        char **grown = realloc(view->words, cap * sizeof *grown);
        if (!grown)
            return 1;
        view->words = grown;
        view->word_cap = cap;
    }
    char *copy = strndup(term, len);
    if (!copy)
        return 1;
    view->words[view->word_count++] = copy;
    return 0;
}

static int analyse_field(void *ctx, const char *field, const char *text, size_t len)
{
    (void)field;
    change_view *view = ctx;
    return ov_text_analyse(view->analyser, text, len, add_word, view) > 0;
}

static int compare_words(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void view_words(change_view *view)
{
    view->words_done = 1;
    if (!view->facets.record || !view->analyser)
        return;
    ov_record_texts(view->meta->env.kind, view->facets.record, analyse_field, view);
    if (view->word_count)
        qsort(view->words, view->word_count, sizeof *view->words, compare_words);
}

static int view_has_word(const change_view *view, const char *word)
{
    return view->word_count &&
           bsearch(&word, view->words, view->word_count, sizeof *view->words, compare_words);
}

static int matches(const subscription *sub, change_view *view, int visible)
{
    if (!visible && !sub->envelope_only)
        return 0;
    for (int i = 0; i < sub->term_count; i++) {
        const filter_term *t = &sub->terms[i];
        int hit = 0;
        if (!strcmp(t->key, "kind"))
            hit = term_has(t, view->kind);
        else if (!strcmp(t->key, "id"))
            hit = term_has(t, view->id);
        else if (!strcmp(t->key, "origin"))
            hit = term_has(t, view->origin);
        else if (!strcmp(t->key, "q")) { /* every word of the query, in the record's texts */
            if (!view->words_done)
                view_words(view);
            hit = 1;
            for (int w = 0; w < t->count && hit; w++)
                hit = view_has_word(view, t->values[w]);
        } else
            for (int f = 0; f < view->facets.count && !hit; f++)
                hit = !strcmp(view->facets.facet[f], t->key) && term_has(t, view->facets.value[f]);
        if (!hit)
            return 0;
    }
    return 1;
}

static void view_init(change_view *view, ov_text *analyser, const ov_record_meta *meta,
                      const char *json, size_t len, int want_facets)
{
    memset(view, 0, sizeof *view);
    view->meta = meta;
    view->analyser = analyser;
    ov_id_format(&meta->env.id, view->id);
    ov_id_format(&meta->env.origin, view->origin);
    view->kind = ov_kind_name(meta->env.kind);
    if (want_facets) {
        view->facets.record = json_loadb(json, len, 0, NULL);
        if (view->facets.record)
            ov_record_facets(meta->env.kind, view->facets.record, collect_facet, &view->facets);
    }
}

static void view_free(change_view *view)
{
    json_decref(view->facets.record);
    for (size_t i = 0; i < view->word_count; i++)
        free(view->words[i]);
    free(view->words);
}

static event *hidden_event(uint64_t seq, const change_view *view)
{
    char body[128];
    int n = ov_api_hidden_change(body, sizeof body, view->meta);
    return event_new(seq, body, (size_t)n);
}

/* ---- Fan-out --------------------------------------------------------------------------------- */

/* A fan-out hands the loop back after this long, so HTTP requests are served in between; the rest
 * of the change goes out on the next turn. Each turn costs a poll() over every open socket (~1.5 ms
 * at 10,000), so the slice is a trade: 8 ms slices made a 10,000-subscriber fan-out ~70% slower,
 * 25 ms ones ~15%, while a request waits at most one slice. */
#define FANOUT_SLICE_NS (25u * 1000u * 1000u)

typedef struct {
    ov_live *live;
    ov_read *read;
    int count;
    uint64_t deadline_ns;
    int yielded; /* the slice is over: the current change is not yet everywhere */
} fanout_ctx;

static int fan_out_change(void *ctx, uint64_t seq, const ov_record_meta *meta, const char *json,
                          size_t len)
{
    fanout_ctx *f = ctx;
    ov_live *live = f->live;
    live->published = seq;
    f->count++;
    unsigned visited = 0;
    int is_public =
        meta->env.status == OV_STATUS_PUBLISHED || meta->env.status == OV_STATUS_DELETED;
    change_view view;
    view_init(&view, live->text, meta, json, len, 1);
    event *full = NULL, *hidden = NULL;
    for (live_conn *conn = live->conns; conn; conn = conn->next) {
        if (++visited % 256 == 0 && uv_hrtime() > f->deadline_ns) {
            /* Subscriptions served so far have pos == seq; the next turn reads this change again
             * and serves the others. A subscription made in between starts before it and gets
             * it too, which its "subscribed" position says. */
            live->published = seq - 1;
            f->yielded = 1;
            break;
        }
        if (conn->closing || !conn->sub_count)
            continue;
        int visible = -1; /* decided once per connection, when a subscription needs it */
        for (int i = 0; i < conn->sub_count; i++) {
            subscription *sub = &conn->subs[i];
            if (sub->replaying || sub->pos >= seq)
                continue;
            sub->pos = seq;
            if (visible < 0)
                visible =
                    is_public || (conn->who.role != OV_ROLE_ANONYMOUS &&
                                  ov_api_can_see(live->node, f->read, &conn->who, meta, json, len));
            if (!matches(sub, &view, visible))
                continue;
            event **ev = visible ? &full : &hidden;
            if (!*ev)
                *ev = visible ? event_new(seq, json, len) : hidden_event(seq, &view);
            if (*ev)
                deliver(conn, *ev, i);
        }
    }
    event_unref(full);
    event_unref(hidden);
    view_free(&view);
    return f->yielded ? -1 : 0;
}

static void on_more(uv_idle_t *idle);

void ov_live_notify(ov_live *live)
{
    if (!live || live->stopping)
        return;
    ov_read *read = NULL;
    if (ov_read_begin(live->node->store, &read) != OV_OK)
        return;
    if (live->stats.subscriptions == 0) {
        /* Nobody to tell: skip to the feed's end (a subscription made later starts there). */
        live->published = ov_read_last_change(read);
        ov_read_end(read);
        return;
    }
    uint64_t started_ns = uv_hrtime();
    uint64_t sent_before = live->stats.sent;
    fanout_ctx f = {live, read, 0, started_ns + FANOUT_SLICE_NS, 0};
    for (int pass = 0; pass < FEED_PASSES; pass++) {
        uint64_t last = live->published;
        f.count = 0;
        int rc = ov_read_changes(read, live->published, FEED_STEP, fan_out_change, &f, &last);
        if (f.yielded || (rc == OV_OK && f.count == FEED_STEP && pass == FEED_PASSES - 1)) {
            /* More to send: go on after the loop has served the sockets. */
            uv_idle_start(&live->more, on_more);
            break;
        }
        if (rc != OV_OK || f.count < FEED_STEP)
            break;
    }
    ov_read_end(read);
    update_metrics(live);
    if (ov_jlog_enabled(OV_JLOG_DEBUG)) {
        char ms[32], sent[32];
        snprintf(ms, sizeof ms, "%.3f", (double)(uv_hrtime() - started_ns) / 1e6);
        snprintf(sent, sizeof sent, "%llu", (unsigned long long)(live->stats.sent - sent_before));
        ov_jlog_debug("live.fanout", "ms", ms, "sent", sent, NULL);
    }
}

/* An idle handle, not a zero timer: libuv 1.44 runs a zero timer started from a timer callback
 * again in the same turn, so the loop would never get back to the sockets in between. */
static void on_more(uv_idle_t *idle)
{
    uv_idle_stop(idle);
    ov_live_notify(idle->data);
}

/* ---- Resuming -------------------------------------------------------------------------------- */

typedef struct {
    live_conn *conn;
    int sub;
    ov_read *read;
    int count;
} replay_ctx;

static int replay_change(void *ctx, uint64_t seq, const ov_record_meta *meta, const char *json,
                         size_t len)
{
    replay_ctx *r = ctx;
    live_conn *conn = r->conn;
    subscription *sub = &conn->subs[r->sub];
    r->count++;
    sub->pos = seq;
    int visible = meta->env.status == OV_STATUS_PUBLISHED ||
                  meta->env.status == OV_STATUS_DELETED ||
                  (conn->who.role != OV_ROLE_ANONYMOUS &&
                   ov_api_can_see(conn->live->node, r->read, &conn->who, meta, json, len));
    change_view view;
    view_init(&view, conn->live->text, meta, json, len, visible && sub->term_count > 0);
    if (matches(sub, &view, visible)) {
        event *ev = visible ? event_new(seq, json, len) : hidden_event(seq, &view);
        if (ev) {
            deliver(conn, ev, r->sub);
            event_unref(ev);
        }
    }
    view_free(&view);
    return conn->closing ? -1 : 0;
}

/* Moves resuming subscriptions forward while the queue has room; a subscription that reaches the
 * feed's end joins the fan-out and says caught_up. */
static void replay_step(live_conn *conn)
{
    if (conn->closing)
        return;
    for (int i = 0; i < conn->sub_count; i++) {
        subscription *sub = &conn->subs[i];
        if (!sub->replaying)
            continue;
        ov_read *read = NULL;
        if (ov_read_begin(conn->live->node->store, &read) != OV_OK)
            return;
        /* At most a quarter of the queue per read, so replayed changes never fill it. */
        unsigned step = conn->live->options.queue / 4;
        if (step > REPLAY_STEP)
            step = REPLAY_STEP;
        if (step == 0)
            step = 1;
        while (!conn->closing && conn->q_len + step <= conn->live->options.queue) {
            replay_ctx r = {conn, i, read, 0};
            uint64_t last = sub->pos;
            if (ov_read_changes(read, sub->pos, step, replay_change, &r, &last) < 0 &&
                !conn->closing)
                break;
            if ((unsigned)r.count < step) {
                /* The end of the feed as this snapshot sees it, which is at or after what the
                 * fan-out has reached; later changes have higher positions, so the fan-out
                 * brings them. */
                sub->replaying = 0;
                json_t *m = json_pack("{s:s, s:s, s:I}", "type", "caught_up", "sub", sub->id, "seq",
                                      (json_int_t)sub->pos);
                if (m)
                    send_control(conn, m);
                break;
            }
        }
        ov_read_end(read);
        if (sub->replaying)
            return; /* the queue is full: go on when it drains */
    }
}

/* ---- Client messages ------------------------------------------------------------------------- */

static int valid_sub_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > SUB_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

static int find_sub(const live_conn *conn, const char *id)
{
    for (int i = 0; i < conn->sub_count; i++)
        if (strcmp(conn->subs[i].id, id) == 0)
            return i;
    return -1;
}

static int known_key(const char *key, int *envelope)
{
    if (!strcmp(key, "q")) {
        *envelope = 0;
        return 1;
    }
    *envelope = !strcmp(key, "kind") || !strcmp(key, "id") || !strcmp(key, "origin");
    if (*envelope)
        return 1;
    return ov_record_facet_name(key) != NULL;
}

#define QUERY_MAX_BYTES 256
#define QUERY_MAX_WORDS 16

typedef struct {
    char words[QUERY_MAX_WORDS][OV_TEXT_TERM_MAX + 1];
    int count;
    int too_many;
} query_words;

static int add_query_word(void *ctx, const char *term, size_t len, uint32_t position)
{
    (void)position;
    query_words *q = ctx;
    for (int i = 0; i < q->count; i++)
        if (!strcmp(q->words[i], term))
            return 0;
    if (q->count == QUERY_MAX_WORDS) {
        q->too_many = 1;
        return 1;
    }
    memcpy(q->words[q->count++], term, len + 1);
    return 0;
}

/* A "q" filter: the query's words, analysed like the records' texts; all must occur. */
static int parse_query(ov_text *analyser, json_t *value, filter_term *t, char *detail, size_t size)
{
    if (json_is_array(value) && json_array_size(value) == 1)
        value = json_array_get(value, 0);
    const char *text = json_string_value(value);
    if (!text || json_string_length(value) > QUERY_MAX_BYTES) {
        snprintf(detail, size, "filter.q must be a text of at most %d bytes", QUERY_MAX_BYTES);
        return -1;
    }
    query_words q = {.count = 0};
    int rc = ov_text_analyse(analyser, text, json_string_length(value), add_query_word, &q);
    if (rc < 0 || q.too_many || q.count == 0) {
        snprintf(detail, size, "%s",
                 q.too_many ? "filter.q has more than 16 different words"
                 : rc < 0   ? "filter.q is not valid text"
                            : "filter.q has no word to look for (only stopwords?)");
        return -1;
    }
    size_t bytes = (size_t)q.count * sizeof(char *);
    for (int i = 0; i < q.count; i++)
        bytes += strlen(q.words[i]) + 1;
    t->values = malloc(bytes);
    if (!t->values) {
        snprintf(detail, size, "out of memory");
        return -1;
    }
    snprintf(t->key, sizeof t->key, "q");
    char *next = (char *)(t->values + q.count);
    for (int i = 0; i < q.count; i++) {
        size_t n = strlen(q.words[i]) + 1;
        memcpy(next, q.words[i], n);
        t->values[t->count++] = next;
        next += n;
    }
    return 0;
}

/* Reads filter into sub; on a problem fills detail and returns -1. */
static int parse_filter(ov_text *analyser, json_t *filter, subscription *sub, char *detail,
                        size_t size)
{
    sub->envelope_only = 1;
    if (!filter || json_is_null(filter))
        return 0;
    if (!json_is_object(filter)) {
        snprintf(detail, size, "filter must be an object of arrays of strings");
        return -1;
    }
    if (json_object_size(filter) > FILTER_MAX_TERMS) {
        snprintf(detail, size, "a filter has at most %d members", FILTER_MAX_TERMS);
        return -1;
    }
    sub->terms =
        calloc(json_object_size(filter) ? json_object_size(filter) : 1, sizeof *sub->terms);
    if (!sub->terms) {
        snprintf(detail, size, "out of memory");
        return -1;
    }
    const char *key;
    json_t *values;
    json_object_foreach(filter, key, values)
    {
        int envelope = 0;
        if (!known_key(key, &envelope) || strlen(key) >= sizeof sub->terms[0].key) {
            snprintf(detail, size, "filter.%.40s is not a filter (see docs/protocol.md)", key);
            return -1;
        }
        if (!strcmp(key, "q")) {
            if (parse_query(analyser, values, &sub->terms[sub->term_count], detail, size) != 0)
                return -1;
            sub->term_count++;
            sub->envelope_only = 0;
            continue;
        }
        if (json_is_string(values)) { /* one value may be given bare */
            json_t *one = json_array();
            json_array_append(one, values);
            json_object_set_new(filter, key, one);
            values = one;
        }
        if (!json_is_array(values) || json_array_size(values) > FILTER_MAX_VALUES) {
            snprintf(detail, size, "filter.%s must be an array of at most %d strings", key,
                     FILTER_MAX_VALUES);
            return -1;
        }
        if (json_array_size(values) == 0)
            continue;
        filter_term *t = &sub->terms[sub->term_count];
        snprintf(t->key, sizeof t->key, "%s", key);
        /* One block per term: the pointer array, then the strings. Idle subscribers are many,
         * so a filter costs what its values need and no more. */
        size_t i, bytes = json_array_size(values) * sizeof(char *);
        json_t *v;
        json_array_foreach(values, i, v)
        {
            const char *text = json_string_value(v);
            if (!text || strlen(text) >= FILTER_VALUE_MAX) {
                snprintf(detail, size, "filter.%s[%zu] must be a string under %d bytes", key, i,
                         FILTER_VALUE_MAX);
                return -1;
            }
            bytes += strlen(text) + 1;
        }
        t->values = malloc(bytes);
        if (!t->values) {
            snprintf(detail, size, "out of memory");
            return -1;
        }
        sub->term_count++;
        char *next = (char *)(t->values + json_array_size(values));
        json_array_foreach(values, i, v)
        {
            const char *text = json_string_value(v);
            char *value = next;
            size_t n = strlen(text) + 1;
            memcpy(value, text, n);
            next += n;
            t->values[t->count++] = value;
            if (!strcmp(key, "theme")) /* themes are compared lower-cased, as the list API does */
                for (char *c = value; *c; c++)
                    if (*c >= 'A' && *c <= 'Z')
                        *c = (char)(*c - 'A' + 'a');
        }
        if (!envelope)
            sub->envelope_only = 0;
    }
    return 0;
}

static void subscription_free(subscription *sub)
{
    for (int i = 0; i < sub->term_count; i++)
        free(sub->terms[i].values);
    free(sub->terms);
    sub->terms = NULL;
}

static void drop_queued_for(live_conn *conn, int sub)
{
    /* Rebuild the ring without sub's events, renumbering later subscriptions. */
    unsigned cap = conn->live->options.queue, kept = 0;
    for (unsigned i = 0; i < conn->q_len; i++) {
        queued q = conn->queue[(conn->q_head + i) % cap];
        if (q.sub == sub) {
            event_unref(q.ev);
            continue;
        }
        if (q.sub > sub)
            q.sub--;
        conn->queue[(conn->q_head + kept) % cap] = q;
        kept++;
    }
    conn->q_len = kept;
}

static void handle_subscribe(live_conn *conn, json_t *msg, const char *ref)
{
    ov_live *live = conn->live;
    if (!valid_sub_id(ref)) {
        send_error(conn, 400, "Ongeldig abonnement",
                   "id must be 1-64 characters of A-Z a-z 0-9 - _ . :", ref);
        return;
    }
    if (find_sub(conn, ref) >= 0) {
        send_error(conn, 409, "Bestaat al", "a subscription with this id is active", ref);
        return;
    }
    if (conn->sub_count >= MAX_SUBSCRIPTIONS) {
        send_error(conn, 429, "Te veel abonnementen",
                   "at most 32 subscriptions per connection; unsubscribe first", ref);
        return;
    }
    json_t *since = json_object_get(msg, "since");
    if (since && !(json_is_integer(since) && json_integer_value(since) >= 0)) {
        send_error(conn, 400, "Ongeldige positie", "since must be a feed position (integer >= 0)",
                   ref);
        return;
    }
    subscription sub;
    memset(&sub, 0, sizeof sub);
    snprintf(sub.id, sizeof sub.id, "%s", ref);
    char detail[160];
    if (parse_filter(live->text, json_object_get(msg, "filter"), &sub, detail, sizeof detail) !=
        0) {
        subscription_free(&sub);
        send_error(conn, 400, "Ongeldig filter", detail, ref);
        return;
    }
    ov_read *read = NULL;
    if (ov_read_begin(live->node->store, &read) != OV_OK) {
        subscription_free(&sub);
        send_error(conn, 503, "Opslag niet beschikbaar", "the node cannot read its store now", ref);
        return;
    }
    uint64_t last = ov_read_last_change(read);
    ov_read_end(read);
    if (since) {
        uint64_t from = (uint64_t)json_integer_value(since);
        const char *why = from > last                ? "ahead of this node's feed"
                          : last - from > REPLAY_MAX ? "older than this node replays"
                                                     : NULL;
        if (why) {
            json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "type", "reset", "sub", ref, "seq",
                                  (json_int_t)last, "reason", why);
            subscription_free(&sub);
            if (m)
                send_control(conn, m);
            return;
        }
        sub.pos = from;
        sub.replaying = 1;
    } else {
        /* Live from the last position fanned out: changes committed but not yet fanned out
         * arrive with the fan-out. */
        sub.pos = live->published;
    }
    subscription *grown = realloc(conn->subs, sizeof *grown * (size_t)(conn->sub_count + 1));
    if (!grown) {
        subscription_free(&sub);
        send_error(conn, 503, "Geen geheugen", "out of memory", ref);
        return;
    }
    conn->subs = grown;
    conn->subs[conn->sub_count++] = sub;
    live->stats.subscriptions++;
    update_metrics(live);
    json_t *m =
        json_pack("{s:s, s:s, s:I}", "type", "subscribed", "id", ref, "seq", (json_int_t)sub.pos);
    if (m)
        send_control(conn, m);
    if (sub.replaying && conn->q_len == 0)
        replay_step(conn);
}

static void handle_unsubscribe(live_conn *conn, const char *ref)
{
    int i = ref ? find_sub(conn, ref) : -1;
    if (i < 0) {
        send_error(conn, 404, "Onbekend abonnement", "no active subscription has this id", ref);
        return;
    }
    drop_queued_for(conn, i);
    subscription_free(&conn->subs[i]);
    memmove(&conn->subs[i], &conn->subs[i + 1],
            sizeof *conn->subs * (size_t)(conn->sub_count - i - 1));
    conn->sub_count--;
    conn->live->stats.subscriptions--;
    json_t *m = json_pack("{s:s, s:s}", "type", "unsubscribed", "id", ref);
    if (m)
        send_control(conn, m);
}

static void handle_auth(live_conn *conn, json_t *msg, const char *ref)
{
    const char *token = json_string_value(json_object_get(msg, "token"));
    char header[128];
    if (!token || strlen(token) > 100) {
        send_error(conn, 400, "Ongeldig verzoek", "auth needs the token of a session", ref);
        return;
    }
    snprintf(header, sizeof header, "Bearer %s", token);
    ov_principal who;
    if (ov_session_api_principal_from(conn->live->node, header, NULL, &who) != OV_OK) {
        send_error(conn, 401, "Niet aangemeld", "the token is unknown or expired", ref);
        return;
    }
    conn->who = who;
    json_t *m = json_pack("{s:s, s:s}", "type", "auth", "role", ov_role_name(who.role));
    if (m)
        send_control(conn, m);
}

static void on_message(void *arg, const char *text, size_t len)
{
    live_conn *conn = arg;
    conn->last_heard_ms = now_ms();
    json_t *msg = NULL;
    ov_json_error err;
    if (ov_json_parse(text, len, &msg, &err) != OV_OK) {
        char detail[200];
        snprintf(detail, sizeof detail, "not JSON at line %d, column %d: %s", err.line, err.column,
                 err.message);
        send_error(conn, 400, "Ongeldig bericht", detail, NULL);
        return;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *id_value = json_object_get(msg, "id");
    const char *ref = json_string_value(id_value);
    if (!json_is_object(msg) || !type) {
        send_error(conn, 400, "Ongeldig bericht", "a message is an object with a \"type\"", ref);
    } else if (id_value && !ref) {
        send_error(conn, 400, "Ongeldig bericht", "id must be a string", NULL);
    } else if (!strcmp(type, "subscribe")) {
        handle_subscribe(conn, msg, ref);
    } else if (!strcmp(type, "unsubscribe")) {
        handle_unsubscribe(conn, ref);
    } else if (!strcmp(type, "auth")) {
        handle_auth(conn, msg, ref);
    } else if (!strcmp(type, "ping")) {
        json_t *m = json_pack("{s:s}", "type", "pong");
        if (m && ref)
            json_object_set_new(m, "id", json_string(ref));
        if (m)
            send_control(conn, m);
    } else {
        send_error(conn, 400, "Onbekend bericht",
                   "type must be subscribe, unsubscribe, auth or ping", ref);
    }
    json_decref(msg);
}

/* ---- Connection life ------------------------------------------------------------------------- */

static int on_admit(void *app, const ov_ws_upgrade *up, const char **detail,
                    unsigned *retry_after_s)
{
    ov_live *live = app;
    if (live->stopping) {
        *detail = "the node is shutting down";
        return 503;
    }
    address_count **slot = address_slot(live, up->peer);
    if (*slot && (*slot)->count >= live->options.max_per_address) {
        live->stats.refused++;
        update_metrics(live);
        *detail = "too many live connections from this address";
        *retry_after_s = 10;
        return 429;
    }
    char key[96];
    snprintf(key, sizeof key, "live:%s", up->peer);
    uint64_t retry_ms = 0;
    if (ov_ratelimit_take(live->handshakes, key, live->options.handshakes_per_s, 1000, now_ms(),
                          &retry_ms) != OV_OK) {
        live->stats.refused++;
        update_metrics(live);
        *detail = "too many new live connections from this address; wait a moment";
        *retry_after_s = (unsigned)((retry_ms + 999) / 1000);
        return 429;
    }
    return 0;
}

static void *on_open(void *app, ov_ws *ws, const ov_ws_upgrade *up)
{
    ov_live *live = app;
    if (live->stopping)
        return NULL;
    live_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->live = live;
    conn->ws = ws;
    snprintf(conn->peer, sizeof conn->peer, "%s", up->peer);
    conn->last_heard_ms = now_ms();
    /* The first heartbeat somewhere in the second half of a period, the next ones a period
     * apart: connections opened in a burst do not all beat in the same turn. */
    uint64_t period_ms = (uint64_t)live->options.heartbeat_s * 1000u;
    live->jitter = live->jitter * 1103515245u + 12345u;
    conn->next_beat_ms =
        conn->last_heard_ms + period_ms / 2 + (live->jitter >> 8) % (period_ms / 2 + 1);
    /* Bad credentials do not refuse the socket: it serves as an anonymous reader, and says so. */
    int auth_rc =
        ov_session_api_principal_from(live->node, up->authorization, up->cookie, &conn->who);
    if (auth_rc != OV_OK)
        memset(&conn->who, 0, sizeof conn->who);
    address_count **slot = address_slot(live, up->peer);
    if (!*slot) {
        *slot = calloc(1, sizeof **slot);
        if (!*slot) {
            free(conn);
            return NULL;
        }
        snprintf((*slot)->peer, sizeof(*slot)->peer, "%s", up->peer);
    }
    (*slot)->count++;
    conn->next = live->conns;
    if (live->conns)
        live->conns->prev = conn;
    live->conns = conn;
    live->stats.connections++;
    update_metrics(live);

    ov_read *read = NULL;
    uint64_t last = 0;
    if (ov_read_begin(live->node->store, &read) == OV_OK) {
        last = ov_read_last_change(read);
        ov_read_end(read);
    }
    char node_id[OV_ID_CHARS + 1];
    ov_id_format(ov_store_node_id(live->node->store), node_id);
    json_t *m = json_pack("{s:s, s:s, s:I, s:i, s:s, s:{s:i, s:i, s:i}}", "type", "welcome", "node",
                          node_id, "seq", (json_int_t)last, "heartbeat_s",
                          (int)live->options.heartbeat_s, "role", ov_role_name(conn->who.role),
                          "limits", "max_subscriptions", MAX_SUBSCRIPTIONS, "max_message",
                          (int)MAX_MESSAGE, "queue", (int)live->options.queue);
    if (m)
        send_control(conn, m);
    if (auth_rc == OV_EAUTH)
        send_error(conn, 401, "Niet aangemeld",
                   "the session token is unknown or expired; reading as anonymous", NULL);
    return conn;
}

static void on_pong(void *arg)
{
    live_conn *conn = arg;
    conn->last_heard_ms = now_ms();
}

static void on_writable(void *arg)
{
    flush(arg);
}

static void on_closed(void *arg)
{
    live_conn *conn = arg;
    ov_live *live = conn->live;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        live->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    address_release(live, conn->peer);
    unsigned cap = live->options.queue;
    for (unsigned i = 0; i < conn->q_len; i++)
        event_unref(conn->queue[(conn->q_head + i) % cap].ev);
    free(conn->queue);
    for (int i = 0; i < conn->sub_count; i++)
        subscription_free(&conn->subs[i]);
    live->stats.subscriptions -= (uint64_t)conn->sub_count;
    free(conn->subs);
    live->stats.connections--;
    update_metrics(live);
    free(conn);
}

static const ov_ws_handlers live_handlers = {
    .path = "/api/v1/live",
    .subprotocol = "olievlek.v1",
    .max_message = MAX_MESSAGE,
    .admit = on_admit,
    .open = on_open,
    .message = on_message,
    .writable = on_writable,
    .pong = on_pong,
    .closed = on_closed,
};

const ov_ws_handlers *ov_live_ws_handlers(void)
{
    return &live_handlers;
}

/* ---- Heartbeat ------------------------------------------------------------------------------- */

/* Runs a few times per heartbeat period and beats the connections whose turn it is, so 10,000
 * subscribers cost a few hundred sends per turn instead of 20,000 sends in one. */
static void on_heartbeat(uv_timer_t *timer)
{
    ov_live *live = timer->data;
    uint64_t now = now_ms();
    uint64_t period_ms = (uint64_t)live->options.heartbeat_s * 1000u;
    uint64_t silent_ms = 3 * period_ms;
    char beat[64];
    int n = snprintf(beat, sizeof beat, "{\"type\":\"heartbeat\",\"seq\":%llu}",
                     (unsigned long long)live->published);
    for (live_conn *conn = live->conns; conn; conn = conn->next) {
        if (conn->closing)
            continue;
        if (now - conn->last_heard_ms > silent_ms) {
            close_conn(conn, CLOSE_IDLE, "niets gehoord / nothing heard for three heartbeats");
            continue;
        }
        if (now < conn->next_beat_ms)
            continue;
        conn->next_beat_ms += period_ms;
        if (conn->next_beat_ms <= now)
            conn->next_beat_ms = now + period_ms;
        /* A ping frame that browsers answer by themselves (so a page needs no code to stay
         * connected), and the heartbeat message that tells the feed's position. */
        if (conn->q_len == 0 && ov_ws_ready(conn->ws) && ov_ws_ping(conn->ws) == OV_OK &&
            ov_ws_ready(conn->ws))
            ov_ws_send(conn->ws, beat, (size_t)n, NULL, 0);
    }
}

/* ---- Module ---------------------------------------------------------------------------------- */

int ov_live_new(ov_node *node, const ov_live_options *options, ov_live **out)
{
    *out = NULL;
    ov_live *live = calloc(1, sizeof *live);
    if (!live)
        return OV_ENOMEM;
    live->node = node;
    if (options)
        live->options = *options;
    if (!live->options.max_per_address)
        live->options.max_per_address = 256;
    if (!live->options.handshakes_per_s)
        live->options.handshakes_per_s = 50;
    if (!live->options.heartbeat_s)
        live->options.heartbeat_s = 30;
    if (!live->options.queue)
        live->options.queue = 256;
    /* Fan-out starts at the feed's end as it is now. */
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc != OV_OK) {
        free(live);
        return rc;
    }
    live->published = ov_read_last_change(read);
    ov_read_end(read);
    if (ov_ratelimit_new(0, &live->handshakes) != OV_OK) {
        free(live);
        return OV_ENOMEM;
    }
    if (ov_text_new(&live->text) != OV_OK) {
        ov_ratelimit_free(live->handshakes);
        free(live);
        return OV_ENOMEM;
    }
    update_metrics(live);
    uv_timer_init(node->loop, &live->heartbeat);
    uv_idle_init(node->loop, &live->more);
    live->heartbeat.data = live->more.data = live;
    uint64_t every = (uint64_t)live->options.heartbeat_s * 1000u / 8;
    uv_timer_start(&live->heartbeat, on_heartbeat, every ? every : 1, every ? every : 1);
    *out = live;
    return OV_OK;
}

void ov_live_free(ov_live *live)
{
    if (!live)
        return;
    for (size_t i = 0; i < ADDRESS_BUCKETS; i++)
        while (live->addresses[i]) {
            address_count *next = live->addresses[i]->next;
            free(live->addresses[i]);
            live->addresses[i] = next;
        }
    ov_ratelimit_free(live->handshakes);
    ov_text_free(live->text);
    free(live);
}

void ov_live_stop(ov_live *live)
{
    if (!live || live->stopping)
        return;
    live->stopping = 1;
    for (live_conn *conn = live->conns; conn; conn = conn->next)
        close_conn(conn, CLOSE_GOING_AWAY, "de node stopt / node shutting down");
    uv_close((uv_handle_t *)&live->heartbeat, NULL);
    uv_close((uv_handle_t *)&live->more, NULL);
}
