/*
 * GET /api/v1/search and the searches built on it: similar records
 * (GET /api/v1/{kind}/{id}/similar) and brigadiers who match a help request
 * (GET /api/v1/requests/{id}/matches). api.c routes to them; parameters are checked here and
 * search.c does the work.
 */
#include "server/search_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "proto/error.h"
#include "proto/id.h"
#include "server/metrics.h"
#include "server/problem.h"
#include "server/search.h"

#define ANSWER_MAX  (8u << 20)
#define VALUE_BYTES 4096 /* room for the filter values of one query */

typedef struct {
    ov_search_query query;
    char values[VALUE_BYTES];
    size_t used;
    char *similar_text; /* owned */
} request_query;

static const char *keep(request_query *rq, const char *value, size_t len)
{
    if (rq->used + len + 1 > sizeof rq->values)
        return NULL;
    char *copy = rq->values + rq->used;
    memcpy(copy, value, len);
    copy[len] = 0;
    rq->used += len + 1;
    return copy;
}

/* Themes are indexed case-folded (ov_record_facets); fold the filter the same way. */
static const char *keep_theme(request_query *rq, const char *value, size_t len)
{
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)value, (utf8proc_ssize_t)len, &folded,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    if (n < 0)
        return NULL;
    const char *kept = keep(rq, (const char *)folded, (size_t)n);
    free(folded);
    return kept;
}

/* Reads the filters, bouwsteen, limit and cursor parameters. Returns 0, or writes detail. */
static int read_filters(ov_http_request *req, request_query *rq, char *detail, size_t size)
{
    ov_search_query *q = &rq->query;
    q->limit = OV_SEARCH_LIMIT_DEFAULT;
    q->bouwsteen_min = 3;
    const char *limit = ov_http_request_query(req, "limit");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (end == limit || *end || n < 1 || n > OV_SEARCH_LIMIT_MAX) {
            snprintf(detail, size, "limit must be a whole number from 1 to %d",
                     OV_SEARCH_LIMIT_MAX);
            return -1;
        }
        q->limit = (int)n;
    }
    const char *min = ov_http_request_query(req, "bouwsteen_min");
    if (min) {
        if (strlen(min) != 1 || min[0] < '1' || min[0] > '5') {
            snprintf(detail, size, "bouwsteen_min must be a scan score from 1 to 5");
            return -1;
        }
        q->bouwsteen_min = min[0] - '0';
    }
    q->cursor = ov_http_request_query(req, "cursor");
    for (int facet = 0; ov_search_facet_name(facet); facet++) {
        const char *name = ov_search_facet_name(facet);
        int is_bouwsteen = !strcmp(name, "bouwsteen");
        const char *given[OV_SEARCH_VALUES_MAX + 1];
        int n = ov_http_request_query_all(req, name, given, OV_SEARCH_VALUES_MAX + 1);
        if (n == 0)
            continue;
        ov_search_filter *filter = &q->filters[q->filter_count];
        memset(filter, 0, sizeof *filter);
        filter->facet = facet;
        for (int i = 0; i < n; i++) {
            for (const char *p = given[i]; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len > 0) {
                    if (filter->count >= OV_SEARCH_VALUES_MAX || len > OV_RECORD_FACET_VALUE_MAX) {
                        snprintf(detail, size, "at most %d values of at most %d bytes for %s",
                                 OV_SEARCH_VALUES_MAX, OV_RECORD_FACET_VALUE_MAX, name);
                        return -1;
                    }
                    if (is_bouwsteen) {
                        int b = 0;
                        while (b < OV_BOUWSTENEN && (strlen(ov_bouwsteen_slug[b]) != len ||
                                                     strncmp(ov_bouwsteen_slug[b], p, len)))
                            b++;
                        if (b == OV_BOUWSTENEN) {
                            snprintf(detail, size,
                                     "bouwsteen %.40s is not one of the seven building blocks "
                                     "(visie, onderwijs, …: see /api/v1/node)",
                                     p);
                            return -1;
                        }
                        q->bouwstenen |= (uint8_t)(1u << b);
                    } else {
                        const char *kept =
                            !strcmp(name, "theme") ? keep_theme(rq, p, len) : keep(rq, p, len);
                        if (!kept) {
                            snprintf(detail, size, "the values of %s are too long or not text",
                                     name);
                            return -1;
                        }
                        filter->values[filter->count++] = kept;
                    }
                }
                p += len + (comma ? 1 : 0);
            }
        }
        if (!is_bouwsteen && filter->count > 0)
            q->filter_count++;
    }
    return 0;
}

static void run(ov_node *node, ov_http_request *req, request_query *rq, ov_read *read,
                const char *route)
{
    ov_buf out;
    ov_buf_init(&out, ANSWER_MAX);
    char detail[200];
    int rc = ov_search_run(node->search, read, &rq->query, &out, detail, sizeof detail);
    if (rc == OV_EINVAL)
        ov_problem_respond(req, 400, detail, NULL, NULL, route);
    else if (rc)
        ov_problem_respond_error(req, rc, route);
    else
        ov_http_respond(req, 200, "application/json", "Cache-Control: no-store\r\n", out.data,
                        out.len, route);
    ov_buf_free(&out);
}

void ov_search_api_search(ov_node *node, ov_http_request *req)
{
    request_query *rq = calloc(1, sizeof *rq);
    if (!rq) {
        ov_problem_respond_error(req, OV_ENOMEM, OV_SEARCH_API_ROUTE);
        return;
    }
    char detail[200];
    const char *q = ov_http_request_query(req, "q");
    const char *like = ov_http_request_query(req, "like");
    if (q && like) {
        ov_problem_respond(req, 400,
                           "send q (words to find) or like (a text to find similar "
                           "records for), not both",
                           NULL, NULL, OV_SEARCH_API_ROUTE);
        free(rq);
        return;
    }
    if (q) {
        rq->query.q = q;
        rq->query.q_len = strlen(q);
    }
    if (like) {
        /* A draft's text, e.g. a new case's title and summary: are there cases like it? */
        rq->query.similar = like;
        rq->query.similar_len = strlen(like);
    }
    if (read_filters(req, rq, detail, sizeof detail)) {
        ov_problem_respond(req, 400, detail, NULL, NULL, OV_SEARCH_API_ROUTE);
        free(rq);
        return;
    }
    ov_read *read = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (rc)
        ov_problem_respond_error(req, rc, OV_SEARCH_API_ROUTE);
    else
        run(node, req, rq, read, OV_SEARCH_API_ROUTE);
    ov_read_end(read);
    free(rq);
}

typedef struct {
    char *text;
    size_t len, cap;
} text_join;

static int join_text(void *ctx, const char *field, const char *text, size_t len)
{
    (void)field;
    text_join *j = ctx;
    if (j->len + len + 2 > j->cap)
        len = j->cap > j->len + 2 ? j->cap - j->len - 2 : 0;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80 && len < j->cap)
        len--; /* never cut a character in two */
    memcpy(j->text + j->len, text, len);
    j->len += len;
    j->text[j->len++] = '\n';
    j->text[j->len] = 0;
    return j->len + 2 >= j->cap;
}

/* Records similar to a stored one (its texts), or brigadiers matching a help request. */
void ov_search_api_similar(ov_node *node, ov_http_request *req, ov_kind kind, const ov_id *id,
                           int matches)
{
    const char *route = matches ? OV_SEARCH_API_ROUTE_MATCHES : OV_SEARCH_API_ROUTE_SIMILAR;
    request_query *rq = calloc(1, sizeof *rq);
    char detail[200];
    if (!rq) {
        ov_problem_respond_error(req, OV_ENOMEM, route);
        return;
    }
    if (read_filters(req, rq, detail, sizeof detail)) {
        ov_problem_respond(req, 400, detail, NULL, NULL, route);
        free(rq);
        return;
    }
    ov_read *read = NULL;
    ov_record_meta meta;
    const char *json;
    size_t len;
    json_t *record = NULL;
    int rc = ov_read_begin(node->store, &read);
    if (!rc)
        rc = ov_read_record(read, id, &meta, &json, &len);
    if (!rc && (meta.env.kind != kind || meta.env.status != OV_STATUS_PUBLISHED))
        rc = OV_ENOTFOUND; /* drafts are not searched; nor are their likes shown */
    if (!rc && !(record = json_loadb(json, len, 0, NULL)))
        rc = OV_ESTORE;
    text_join joined = {calloc(1, OV_SEARCH_SIMILAR_MAX), 0, OV_SEARCH_SIMILAR_MAX};
    if (!rc && !joined.text)
        rc = OV_ENOMEM;
    if (rc) {
        ov_problem_respond_error(req, rc, route);
    } else {
        ov_record_texts(kind, record, join_text, &joined);
        rq->query.similar = joined.text;
        rq->query.similar_len = joined.len;
        rq->query.exclude = id;
        if (matches) {
            /* Brigadiers: text similarity, with the request's sector and region preferred. */
            ov_search_filter *kinds = &rq->query.filters[rq->query.filter_count++];
            memset(kinds, 0, sizeof *kinds);
            kinds->facet = OV_SEARCH_FACET_KIND;
            kinds->values[kinds->count++] = "person";
            const char *sector = json_string_value(json_object_get(record, "sector"));
            const char *region = json_string_value(json_object_get(record, "region"));
            rq->query.prefer_sector = sector;
            rq->query.prefer_region = region;
        } else if (rq->query.filter_count == 0) {
            ov_search_filter *kinds = &rq->query.filters[rq->query.filter_count++];
            memset(kinds, 0, sizeof *kinds);
            kinds->facet = OV_SEARCH_FACET_KIND;
            kinds->values[kinds->count++] = ov_kind_name(kind);
        }
        run(node, req, rq, read, route);
    }
    json_decref(record);
    free(joined.text);
    ov_read_end(read);
    free(rq);
}
