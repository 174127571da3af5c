/*
 * Metrics store and Prometheus text renderer. Request counters live in a small open-addressing
 * hash keyed by (route, method, status) so counting an answer costs one hash of a short string and
 * no allocation; everything has a fixed capacity (see metrics.h), so the memory is bounded no
 * matter what clients send. Rendering allocates one growing text buffer.
 */
#include "server/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

#define LATENCY_BUCKETS 13
static const double latency_bounds[LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

#define METHOD_MAX   12
#define NAME_MAX_LEN 128
#define HELP_MAX     256
#define SERIES_SLOTS 1024 /* power of two, at least twice OV_METRICS_MAX_SERIES */
/* Rows for route="other" once the table is full; past this an answer is timed but not counted. */
#define OTHER_RESERVE_LIMIT (OV_METRICS_MAX_SERIES + 128)

typedef struct {
    char route[OV_METRICS_LABEL_MAX];
    uint64_t buckets[LATENCY_BUCKETS]; /* not cumulative; summed at render */
    uint64_t count;
    double sum;
} route_stats;

typedef struct {
    int used;
    int route; /* index into routes */
    char method[METHOD_MAX];
    int status;
    uint64_t count;
} series;

typedef struct {
    char name[NAME_MAX_LEN];
    char help[HELP_MAX];
    double value;
} gauge;

typedef struct {
    char name[NAME_MAX_LEN];
    char help[HELP_MAX];
    size_t n;
    double bounds[OV_METRICS_MAX_BUCKETS];
    uint64_t counts[OV_METRICS_MAX_BUCKETS];
    double sum;
    uint64_t count;
} histogram;

static route_stats routes[OV_METRICS_MAX_ROUTES + 1]; /* the last one is "other" */
static int route_count;
static series series_table[SERIES_SLOTS];
static int series_count;
static gauge gauges[OV_METRICS_MAX_GAUGES];
static int gauge_count;
static histogram histograms[OV_METRICS_MAX_HISTOGRAMS];
static int histogram_count;

void ov_metrics_reset(void)
{
    memset(routes, 0, sizeof routes);
    memset(series_table, 0, sizeof series_table);
    route_count = series_count = gauge_count = histogram_count = 0;
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        /* Do not leave half a UTF-8 sequence at the cut. */
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Index of route's stats, creating it while there is room, else the shared "other" entry. */
static int route_index(const char *route)
{
    char cut[OV_METRICS_LABEL_MAX];
    copy_cut(cut, sizeof cut, route);
    for (int i = 0; i < route_count; i++)
        if (strcmp(routes[i].route, cut) == 0)
            return i;
    if (route_count < OV_METRICS_MAX_ROUTES && strcmp(cut, "other") != 0) {
        memcpy(routes[route_count].route, cut, sizeof cut);
        return route_count++;
    }
    strcpy(routes[OV_METRICS_MAX_ROUTES].route, "other");
    return OV_METRICS_MAX_ROUTES;
}

static uint32_t hash_series(int route, const char *method, int status)
{
    uint32_t h = 2166136261u;
    h = (h ^ (uint32_t)route) * 16777619u;
    for (const char *p = method; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ (uint32_t)status) * 16777619u;
    return h;
}

/* The row of (route, method, status); created while fewer than limit rows exist. */
static series *find_series(int route, const char *method, int status, int limit)
{
    uint32_t i = hash_series(route, method, status) & (SERIES_SLOTS - 1);
    for (;;) {
        series *s = &series_table[i];
        if (!s->used) {
            if (series_count >= limit)
                return NULL;
            s->used = 1;
            s->route = route;
            copy_cut(s->method, sizeof s->method, method);
            s->status = status;
            series_count++;
            return s;
        }
        if (s->route == route && s->status == status && strcmp(s->method, method) == 0)
            return s;
        i = (i + 1) & (SERIES_SLOTS - 1);
    }
}

void ov_metrics_request(const char *route, const char *method, int status, double seconds)
{
    if (!route || !*route)
        route = "unknown";
    if (!method || !*method)
        method = "OTHER";
    char m[METHOD_MAX];
    copy_cut(m, sizeof m, method);
    if (!(seconds >= 0)) /* also catches NaN */
        seconds = 0;
    int r = route_index(route);
    series *s = find_series(r, m, status, OV_METRICS_MAX_SERIES);
    if (!s) {
        /* The table is full: count under route="other", whose rows may use the reserve. */
        r = route_index("other");
        s = find_series(r, m, status, OTHER_RESERVE_LIMIT);
    }
    if (s)
        s->count++;
    route_stats *rs = &routes[r];
    int b = 0;
    while (b < LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    if (b < LATENCY_BUCKETS)
        rs->buckets[b]++;
    rs->count++;
    rs->sum += seconds;
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int valid_name(const char *name)
{
    if (!name || !*name || strlen(name) >= NAME_MAX_LEN)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (p != name && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

int ov_metrics_set_gauge(const char *name, const char *help, double value)
{
    if (!valid_name(name))
        return OV_EINVAL;
    int i;
    for (i = 0; i < gauge_count; i++)
        if (strcmp(gauges[i].name, name) == 0)
            break;
    if (i == gauge_count) {
        if (gauge_count == OV_METRICS_MAX_GAUGES)
            return OV_ETOOBIG;
        gauge_count++;
        strcpy(gauges[i].name, name);
    }
    copy_cut(gauges[i].help, sizeof gauges[i].help, help ? help : "");
    gauges[i].value = value;
    return OV_OK;
}

int ov_metrics_set_histogram(const char *name, const char *help, const double *bounds,
                             const uint64_t *counts, size_t n, double sum, uint64_t count)
{
    if (!valid_name(name) || n > OV_METRICS_MAX_BUCKETS || (n && (!bounds || !counts)))
        return OV_EINVAL;
    for (size_t k = 0; k < n; k++) {
        if (isnan(bounds[k]) || (k && !(bounds[k] > bounds[k - 1])))
            return OV_EINVAL;
        if (counts[k] > count || (k && counts[k] < counts[k - 1]))
            return OV_EINVAL;
    }
    int i;
    for (i = 0; i < histogram_count; i++)
        if (strcmp(histograms[i].name, name) == 0)
            break;
    if (i == histogram_count) {
        if (histogram_count == OV_METRICS_MAX_HISTOGRAMS)
            return OV_ETOOBIG;
        histogram_count++;
        strcpy(histograms[i].name, name);
    }
    histogram *h = &histograms[i];
    copy_cut(h->help, sizeof h->help, help ? help : "");
    h->n = n;
    if (n) {
        memcpy(h->bounds, bounds, n * sizeof *bounds);
        memcpy(h->counts, counts, n * sizeof *counts);
    }
    h->sum = sum;
    h->count = count;
    return OV_OK;
}

/* ---- Rendering ------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} text;

static void text_printf(text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(text *t, const char *format, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, format);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, format, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

/* A label value with \, " and newline escaped, as the format requires. */
static void escape_label(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 3 < cap; src++) {
        if (*src == '\\' || *src == '"') {
            dst[n++] = '\\';
            dst[n++] = *src;
        } else if (*src == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else {
            dst[n++] = *src;
        }
    }
    dst[n] = '\0';
}

/* HELP text escapes only \ and newline. */
static void escape_help(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 3 < cap; src++) {
        if (*src == '\\') {
            dst[n++] = '\\';
            dst[n++] = '\\';
        } else if (*src == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else {
            dst[n++] = *src;
        }
    }
    dst[n] = '\0';
}

/* Numbers as Prometheus reads them: +Inf, -Inf, NaN, else shortest round-trip text. */
static const char *number(char *buf, size_t cap, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(buf, cap, "%.17g", v);
    /* Prefer the short form when it reads back the same. */
    char shorter[40];
    snprintf(shorter, sizeof shorter, "%g", v);
    if (strtod(shorter, NULL) == v)
        snprintf(buf, cap, "%s", shorter);
    return buf;
}

static int by_route_then_status(const void *a, const void *b)
{
    const series *x = *(const series *const *)a, *y = *(const series *const *)b;
    int c = strcmp(routes[x->route].route, routes[y->route].route);
    if (c)
        return c;
    c = strcmp(x->method, y->method);
    if (c)
        return c;
    return x->status - y->status;
}

static void render_requests(text *t)
{
    series *sorted[SERIES_SLOTS];
    int n = 0;
    for (int i = 0; i < SERIES_SLOTS; i++)
        if (series_table[i].used)
            sorted[n++] = &series_table[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_route_then_status);
    text_printf(t, "# HELP olievlek_http_requests_total HTTP answers by route, method and "
                   "status\n# TYPE olievlek_http_requests_total counter\n");
    for (int i = 0; i < n; i++) {
        char route[OV_METRICS_LABEL_MAX * 2 + 1], method[METHOD_MAX * 2 + 1];
        escape_label(route, sizeof route, routes[sorted[i]->route].route);
        escape_label(method, sizeof method, sorted[i]->method);
        text_printf(t,
                    "olievlek_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} "
                    "%llu\n",
                    route, method, sorted[i]->status, (unsigned long long)sorted[i]->count);
    }
    text_printf(t, "# HELP olievlek_http_request_duration_seconds Time from a complete request to "
                   "its answer, by route\n# TYPE olievlek_http_request_duration_seconds "
                   "histogram\n");
    for (int r = 0; r <= OV_METRICS_MAX_ROUTES; r++) {
        if (r == route_count)
            r = OV_METRICS_MAX_ROUTES; /* the unused slots, then the "other" entry */
        route_stats *rs = &routes[r];
        if (rs->count == 0)
            continue;
        char route[OV_METRICS_LABEL_MAX * 2 + 1], num[40];
        escape_label(route, sizeof route, rs->route);
        uint64_t cumulative = 0;
        for (int b = 0; b < LATENCY_BUCKETS; b++) {
            cumulative += rs->buckets[b];
            text_printf(t,
                        "olievlek_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} "
                        "%llu\n",
                        route, number(num, sizeof num, latency_bounds[b]),
                        (unsigned long long)cumulative);
        }
        text_printf(t,
                    "olievlek_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                    "%llu\n",
                    route, (unsigned long long)rs->count);
        text_printf(t, "olievlek_http_request_duration_seconds_sum{route=\"%s\"} %s\n", route,
                    number(num, sizeof num, rs->sum));
        text_printf(t, "olievlek_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route,
                    (unsigned long long)rs->count);
    }
}

int ov_metrics_render(char **out, size_t *len)
{
    text t = {.data = malloc(16384), .cap = 16384};
    if (!t.data)
        return OV_ENOMEM;
    t.data[0] = '\0';
    render_requests(&t);
    char help[HELP_MAX * 2], num[40];
    for (int i = 0; i < gauge_count; i++) {
        escape_help(help, sizeof help, gauges[i].help);
        text_printf(&t, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", gauges[i].name, help,
                    gauges[i].name, gauges[i].name, number(num, sizeof num, gauges[i].value));
    }
    for (int i = 0; i < histogram_count; i++) {
        histogram *h = &histograms[i];
        escape_help(help, sizeof help, h->help);
        text_printf(&t, "# HELP %s %s\n# TYPE %s histogram\n", h->name, help, h->name);
        for (size_t k = 0; k < h->n; k++)
            text_printf(&t, "%s_bucket{le=\"%s\"} %llu\n", h->name,
                        number(num, sizeof num, h->bounds[k]), (unsigned long long)h->counts[k]);
        text_printf(&t, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, (unsigned long long)h->count);
        text_printf(&t, "%s_sum %s\n%s_count %llu\n", h->name, number(num, sizeof num, h->sum),
                    h->name, (unsigned long long)h->count);
    }
    if (t.failed) {
        free(t.data);
        return OV_ENOMEM;
    }
    *out = t.data;
    *len = t.len;
    return OV_OK;
}
