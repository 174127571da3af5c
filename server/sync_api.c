/*
 * The pull of docs/protocol.md §9.1. The request is checked on the loop (content type, one
 * SUMMARY, the query); the answer is built on libuv's thread pool from one read snapshot (LMDB
 * read transactions are MDB_NOTLS, so the worker may own it) and sent from the loop again, where
 * ov_http_respond must be called.
 *
 * The answer is a sequence of frames, length(4) ‖ message, in one growing buffer: per origin in
 * scope the runs from the client's position on, ending at checkpoints as federation cuts them
 * (same heads, byte for byte, same newest), then one SUMMARY of the node's positions. An entry's
 * 114 bytes are copied as stored and its record's kind and status come from the stored meta: no
 * allocation and no JSON per entry, except for drafts, whose readers the role rules decide.
 *
 * The buffer is the HTTP answer itself: built after OV_HTTP_HEADROOM bytes, sent from where it
 * was built, and then kept for the next pull (node->pull_spares). A clone asks for a dozen or
 * more answers of megabytes each; fresh blocks of that size come from mmap, and faulting them in
 * (the kernel zeroing every page) and copying them into the HTTP layer's buffer had cost more
 * than a third of the node's CPU per answer.
 */
#include "server/sync_api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/buf.h"
#include "proto/error.h"
#include "proto/sync.h"
#include "server/problem.h"

#define BODY_MAX          ((size_t)4 << 20)
#define MAX_BYTES_MIN     ((size_t)64 << 10)
#define MAX_BYTES_MAX     ((size_t)16 << 20)
#define MAX_BYTES_DEFAULT ((size_t)4 << 20)
/* Answers being built at once: each may hold up to max_bytes plus one run in memory. */
#define PULLS_IN_FLIGHT_MAX 8
#define FRAME_HEADER        4

typedef struct {
    ov_log_head head;
    uint8_t pub[OV_PUBKEY_BYTES];
    uint64_t have; /* the client's seq of this origin (0: none) */
} scope_origin;

typedef struct {
    uv_work_t work;
    ov_node *node;
    ov_http_request *req;
    ov_principal who;
    ov_sync_api_visible_fn visible;
    ov_sync_summary summary; /* borrowed from the request body, valid until the answer */
    int listed;              /* origins=listed */
    unsigned kinds;          /* bit (1u << kind) per kind whose content travels */
    size_t max_bytes;
    int rc;
    ov_buf out; /* OV_HTTP_HEADROOM bytes, then the answer */
    /* Worker state. */
    ov_read *read;
    scope_origin *origins;
    uint32_t origin_count, origin_cap;
    uint32_t runs;
    uint64_t run_entries; /* in the runs appended */
    size_t runs_from;     /* where the first run begins in out */
} pull_job;

/* ---- Building the answer (worker thread) ------------------------------------------------ */

/* The client's position of origin, from its summary (origins strictly increasing, checked by
 * ov_sync_decode): a binary search. 0 when the summary does not name it; *named says whether. */
static uint64_t summary_seq(const ov_sync_summary *summary, const ov_id *origin, int *named)
{
    uint32_t lo = 0, hi = summary->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *p = summary->positions + (size_t)mid * OV_SYNC_SUMMARY_ENTRY;
        int c = memcmp(p, origin->bytes, OV_ID_BYTES);
        if (c == 0) {
            *named = 1;
            return ov_be64_get(p + OV_ID_BYTES);
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *named = 0;
    return 0;
}

static int on_head_in_scope(void *ctx, const ov_log_head *head, const uint8_t pub[OV_PUBKEY_BYTES])
{
    pull_job *job = ctx;
    int named;
    uint64_t have = summary_seq(&job->summary, &head->origin, &named);
    if (job->listed && !named)
        return 0;
    if (job->origin_count == job->origin_cap) {
        uint32_t cap = job->origin_cap ? job->origin_cap * 2 : 16;
        scope_origin *grown = realloc(job->origins, cap * sizeof *grown);
        if (!grown)
            return OV_ENOMEM;
        job->origins = grown;
        job->origin_cap = cap;
    }
    scope_origin *o = &job->origins[job->origin_count++];
    o->head = *head;
    memcpy(o->pub, pub, OV_PUBKEY_BYTES);
    o->have = have;
    return 0;
}

typedef struct {
    pull_job *job;
    size_t budget; /* the body may not grow beyond this, except for the first run */
    uint32_t delivered;
    int over;
} run_fill;

/* Content travels while the entry is its record's current version, of a kind asked for, and the
 * caller may read it: published and tombstones for everyone, drafts as the role rules say. */
static int content_travels(const pull_job *job, const ov_record_meta *meta, const char *content,
                           size_t len)
{
    if (!meta || !(job->kinds & (1u << meta->env.kind)))
        return 0;
    if (meta->env.status != OV_STATUS_DRAFT)
        return 1;
    return job->who.role != OV_ROLE_ANONYMOUS &&
           job->visible(job->read, &job->who, meta, content, len);
}

static int on_version(void *ctx, const ov_log_entry *entry, const uint8_t bytes[OV_LOG_ENTRY_BYTES],
                      const ov_record_meta *meta, const char *content, size_t len)
{
    run_fill *fill = ctx;
    pull_job *job = fill->job;
    /* A key entry's content is the key it introduces: the next runs verify with it. */
    int travels =
        entry->op == OV_OP_KEY ? content != NULL : content_travels(job, meta, content, len);
    int rc = ov_sync_encode_item(&job->out, bytes, travels ? content : NULL, travels ? len : 0);
    if (rc)
        return rc;
    fill->delivered++;
    if (job->runs > 0 && job->out.len > fill->budget) {
        fill->over = 1;
        return OV_ETOOBIG; /* stop early: this run goes to the next answer */
    }
    return 0;
}

/* Appends one frame with the run of o's entries from `from` on, ending at a checkpoint with at
 * most batch entries where the checkpoints allow (as federation sends it). Returns the run's last
 * seq, or 0 when none was appended: nothing to send, or it did not fit within the budget (then
 * *full is set and the answer ends here). */
static uint64_t append_run(pull_job *job, const scope_origin *o, uint64_t from, size_t budget,
                           int *full)
{
    /* The window ends at the newest head given out (this node's own may have checkpoints that
     * are not durable yet, see ov_read_head). */
    uint64_t window = o->head.seq - from + 1;
    if (window > job->summary.batch)
        window = job->summary.batch;
    ov_log_head end;
    if (ov_read_checkpoint(job->read, &o->head.origin, from, window, &end) != OV_OK ||
        end.seq < from || end.seq > o->head.seq)
        return 0;
    uint64_t count = end.seq - from + 1;
    if (count > OV_SYNC_BATCH_MAX)
        return 0; /* a log signed less often than this cannot be served in runs (never ours) */
    /* A run is sent whole or not at all, and only the first may go beyond the budget: one that
     * the entries so far say will not fit ends the answer before it is read and copied, rather
     * than after (a clone's answers each held most of a run that was then thrown away). */
    if (job->runs > 0 && job->run_entries > 0) {
        size_t per_entry = (job->out.len - job->runs_from) / job->run_entries;
        if (job->out.len + count * per_entry > budget) {
            *full = 1;
            return 0;
        }
    }
    /* The key that signed the run's head: the newest head's unless a key entry lies between. */
    uint8_t pub[OV_PUBKEY_BYTES];
    memcpy(pub, o->pub, sizeof pub);
    if (ov_read_key(job->read, &o->head.origin, end.seq, pub) != OV_OK && end.seq != o->head.seq)
        return 0;
    size_t mark = job->out.len;
    uint8_t frame[FRAME_HEADER] = {0}, head_bytes[OV_LOG_HEAD_BYTES];
    ov_buf_append(&job->out, frame, sizeof frame);
    ov_log_head_encode(&end, head_bytes);
    ov_sync_encode_run_begin(&job->out, &o->head.origin, pub, head_bytes, o->head.seq,
                             (uint32_t)count);
    run_fill fill = {job, budget, 0, 0};
    int rc = job->out.failed ? job->out.failed
                             : ov_read_log_versions(job->read, &o->head.origin, from, (size_t)count,
                                                    on_version, &fill);
    if (rc != OV_OK || fill.delivered != count || job->out.failed) {
        /* Not whole: leave it out. Over the budget or the buffer's limit, the answer is full. */
        if (fill.over || job->out.failed == OV_ETOOBIG)
            *full = 1;
        else if (rc != OV_OK && rc != OV_ETOOBIG)
            job->rc = rc;
        job->out.len = mark;
        job->out.failed = 0;
        if (job->out.data)
            job->out.data[mark] = 0;
        return 0;
    }
    ov_be32_put((uint8_t *)job->out.data + mark, (uint32_t)(job->out.len - mark - FRAME_HEADER));
    job->runs++;
    job->run_entries += count;
    return end.seq;
}

static void append_summary(pull_job *job)
{
    size_t mark = job->out.len;
    uint8_t frame[FRAME_HEADER] = {0};
    ov_buf_append(&job->out, frame, sizeof frame);
    ov_sync_encode_summary_begin(&job->out, 0, job->origin_count);
    for (uint32_t i = 0; i < job->origin_count; i++) {
        ov_sync_position pos = {.origin = job->origins[i].head.origin,
                                .seq = job->origins[i].head.seq};
        memcpy(pos.hash, job->origins[i].head.hash, OV_HASH_BYTES);
        ov_sync_encode_position(&job->out, &pos);
    }
    if (!job->out.failed)
        ov_be32_put((uint8_t *)job->out.data + mark,
                    (uint32_t)(job->out.len - mark - FRAME_HEADER));
}

static void build_answer(pull_job *job)
{
    job->rc = ov_read_heads(job->read, on_head_in_scope, job);
    if (job->rc)
        return;
    /* The closing summary always fits: the runs get what the budget leaves for it. */
    size_t summary_bytes = FRAME_HEADER + 9 + (size_t)job->origin_count * OV_SYNC_SUMMARY_ENTRY;
    size_t budget = job->max_bytes > summary_bytes ? job->max_bytes - summary_bytes : 0;
    job->out.max = OV_HTTP_HEADROOM +
                   (job->max_bytes > OV_SYNC_MESSAGE_MAX ? job->max_bytes : OV_SYNC_MESSAGE_MAX) +
                   summary_bytes + FRAME_HEADER;
    int full = 0;
    job->runs_from = job->out.len;
    for (uint32_t i = 0; i < job->origin_count && !full && !job->rc; i++) {
        const scope_origin *o = &job->origins[i];
        uint64_t at = o->have;
        while (at < o->head.seq && !full && !job->rc) {
            uint64_t last = append_run(job, o, at + 1, budget, &full);
            if (last == 0)
                break;
            at = last;
        }
    }
    if (!job->rc)
        append_summary(job);
    if (!job->rc && job->out.failed)
        job->rc = job->out.failed;
}

static void pull_work(uv_work_t *work)
{
    pull_job *job = work->data;
    job->rc = ov_read_begin(job->node->store, &job->read);
    if (job->rc)
        return;
    build_answer(job);
    ov_read_end(job->read);
    job->read = NULL;
}

/* ---- On the loop ------------------------------------------------------------------------ */

/* The answer block: a spare when one is kept, else a new one that grows as the answer does. */
static void take_block(pull_job *job)
{
    ov_node *node = job->node;
    ov_buf_init(&job->out, 0);
    for (int i = 0; i < OV_PULL_SPARES; i++) {
        if (node->pull_spares[i].block) {
            ov_buf_adopt(&job->out, node->pull_spares[i].block, node->pull_spares[i].cap,
                         OV_HTTP_HEADROOM, node->pull_spares[i].cap);
            node->pull_spares[i].block = NULL;
            return;
        }
    }
    /* Empty: the first append allocates it, with the headroom as its first bytes. */
    job->out.max = OV_HTTP_HEADROOM; /* build_answer sets the answer's own limit */
    static const uint8_t headroom[OV_HTTP_HEADROOM];
    ov_buf_append(&job->out, headroom, sizeof headroom);
}

/* The answer is sent (or given up): its block is kept for the next pull if there is room. */
static void give_block(void *ctx, void *block)
{
    pull_job *job = ctx;
    ov_node *node = job->node;
    for (int i = 0; block && i < OV_PULL_SPARES; i++) {
        if (!node->pull_spares[i].block) {
            node->pull_spares[i].block = block;
            node->pull_spares[i].cap = job->out.cap;
            block = NULL;
        }
    }
    free(block);
    free(job->origins);
    free(job);
}

static void pull_done(uv_work_t *work, int status)
{
    pull_job *job = work->data;
    job->node->pulls_in_flight--;
    if (status == 0 && job->rc == OV_OK) {
        ov_http_respond_in_place(job->req, 200, OV_SYNC_API_TYPE, "Cache-Control: no-store\r\n",
                                 job->out.data, job->out.len - OV_HTTP_HEADROOM, OV_SYNC_API_ROUTE,
                                 give_block, job);
        return;
    }
    if (status != 0)
        ov_problem_respond(job->req, 503, "the pull was cancelled", NULL, "Retry-After: 1\r\n",
                           OV_SYNC_API_ROUTE);
    else
        ov_problem_respond_error(job->req, job->rc, OV_SYNC_API_ROUTE);
    give_block(job, job->out.data);
}

void ov_sync_api_free(ov_node *node)
{
    for (int i = 0; i < OV_PULL_SPARES; i++) {
        free(node->pull_spares[i].block);
        node->pull_spares[i].block = NULL;
    }
}

static int has_type(const char *type, const char *want)
{
    size_t n = strlen(want);
    return type && strncasecmp(type, want, n) == 0 &&
           (type[n] == 0 || type[n] == ';' || type[n] == ' ');
}

/* kinds=case,lesson,…: the kinds whose content travels. OV_EINVAL for an unknown kind. */
static int parse_kinds(const char *text, unsigned *kinds)
{
    if (!text) {
        *kinds = (1u << OV_KIND_COUNT) - 1;
        return OV_OK;
    }
    *kinds = 0;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        ov_kind kind;
        if (len > 0) {
            if (ov_kind_parse(p, len, &kind) != OV_OK)
                return OV_EINVAL;
            *kinds |= 1u << kind;
        }
        if (!p[len])
            return OV_OK;
        p += len + 1;
    }
}

static int parse_max_bytes(const char *text, size_t *out)
{
    *out = MAX_BYTES_DEFAULT;
    if (!text)
        return OV_OK;
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (end == text || *end || text[0] == '-' || n < MAX_BYTES_MIN || n > MAX_BYTES_MAX)
        return OV_EINVAL;
    *out = (size_t)n;
    return OV_OK;
}

/* The query of a pull; answers 400 itself and returns OV_EINVAL. */
static int parse_query(ov_http_request *req, pull_job *job)
{
    const char *origins = ov_http_request_query(req, "origins");
    if (origins && strcmp(origins, "listed") != 0) {
        ov_problem_respond(req, 400, "origins must be 'listed' (or left out for every origin)",
                           NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    job->listed = origins != NULL;
    if (parse_kinds(ov_http_request_query(req, "kinds"), &job->kinds) != OV_OK) {
        ov_problem_respond(req, 400,
                           "kinds must name kinds separated by commas: region, school, person, "
                           "case, lesson, request",
                           NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    if (parse_max_bytes(ov_http_request_query(req, "max_bytes"), &job->max_bytes) != OV_OK) {
        ov_problem_respond(req, 400, "max_bytes must be a whole number from 65536 to 16777216",
                           NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    return OV_OK;
}

/* The body: exactly one SUMMARY that asks for something (batch 1..65536). */
static int parse_summary(ov_http_request *req, ov_sync_summary *summary)
{
    const char *type = ov_http_request_header(req, "content-type");
    if (!has_type(type, OV_SYNC_API_TYPE)) {
        ov_problem_respond(req, 415, "send application/vnd.olievlek.sync: one SUMMARY message",
                           NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    size_t len;
    const char *body = ov_http_request_body(req, &len);
    if (len > BODY_MAX) {
        ov_problem_respond(req, 413, "a summary is at most 4 MiB", NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    ov_sync_message m;
    if (len == 0 || ov_sync_decode((const uint8_t *)body, len, &m) != OV_OK ||
        m.type != OV_SYNC_SUMMARY || m.u.summary.batch == 0) {
        ov_problem_respond(req, 400,
                           "the body must be one SUMMARY message (docs/protocol.md section 8.1) "
                           "with a batch of 1 to 65536 and its origins in increasing order",
                           NULL, NULL, OV_SYNC_API_ROUTE);
        return OV_EINVAL;
    }
    *summary = m.u.summary;
    return OV_OK;
}

void ov_sync_api_pull(ov_node *node, ov_http_request *req, const ov_principal *who,
                      ov_sync_api_visible_fn visible)
{
    pull_job *job = calloc(1, sizeof *job);
    if (!job) {
        ov_problem_respond_error(req, OV_ENOMEM, OV_SYNC_API_ROUTE);
        return;
    }
    if (parse_summary(req, &job->summary) != OV_OK || parse_query(req, job) != OV_OK) {
        free(job);
        return;
    }
    if (node->pulls_in_flight >= PULLS_IN_FLIGHT_MAX) {
        free(job);
        ov_problem_respond(req, 503, "too many pulls at once; try again in a second", NULL,
                           "Retry-After: 1\r\n", OV_SYNC_API_ROUTE);
        return;
    }
    job->node = node;
    job->req = req;
    job->who = *who;
    job->visible = visible;
    job->work.data = job;
    take_block(job);
    if (job->out.failed) {
        ov_buf_free(&job->out);
        free(job);
        ov_problem_respond_error(req, OV_ENOMEM, OV_SYNC_API_ROUTE);
        return;
    }
    if (uv_queue_work(node->loop, &job->work, pull_work, pull_done) != 0) {
        ov_buf_free(&job->out);
        free(job);
        ov_problem_respond(req, 503, "the node cannot take a pull now", NULL, "Retry-After: 1\r\n",
                           OV_SYNC_API_ROUTE);
        return;
    }
    node->pulls_in_flight++;
}
