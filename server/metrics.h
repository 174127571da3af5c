/*
 * Prometheus metrics of the node, rendered in the text exposition format 0.0.4 for GET /metrics.
 *
 * The HTTP layer counts every answer (olievlek_http_requests_total{route,method,status}) and
 * times it (olievlek_http_request_duration_seconds{route}, buckets 0.5 ms … 5 s). Other modules
 * publish gauges and pre-bucketed histograms by name, typically just before a render.
 *
 * The number of label sets is bounded: routes beyond OV_METRICS_MAX_ROUTES, and label sets beyond
 * OV_METRICS_MAX_SERIES, are counted under route="other", so a client inventing paths cannot grow
 * memory. Callers should pass a route template ("/api/v1/{kind}/{id}"), not a raw path.
 *
 * State is process-global and not locked: call these functions from the loop thread only.
 */
#ifndef OV_METRICS_H
#define OV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define OV_METRICS_MAX_ROUTES     64  /* distinct routes with a latency histogram */
#define OV_METRICS_MAX_SERIES     512 /* distinct (route, method, status) counters */
#define OV_METRICS_MAX_GAUGES     64
#define OV_METRICS_MAX_HISTOGRAMS 32
#define OV_METRICS_MAX_BUCKETS    32 /* bounds per published histogram */
#define OV_METRICS_LABEL_MAX      96 /* longer routes are cut */

/* Counts one answer. route may be NULL ("unknown"); method is e.g. "GET"; seconds is the time
 * from request complete to answer queued. */
void ov_metrics_request(const char *route, const char *method, int status, double seconds);

/* Sets gauge name (a valid Prometheus metric name) to value, with help text. Returns OV_OK,
 * OV_EINVAL for a bad name, OV_ETOOBIG when the gauge table is full. Strings are copied. */
int ov_metrics_set_gauge(const char *name, const char *help, double value);

/* Publishes histogram name as a whole: bounds[i] are the n upper bounds (ascending, +Inf is
 * implicit), counts[i] the cumulative number of observations <= bounds[i], count the total
 * number of observations (the +Inf bucket) and sum their sum. Replaces earlier values. Returns
 * OV_OK, OV_EINVAL (bad name, n > OV_METRICS_MAX_BUCKETS, bounds not ascending, counts not
 * cumulative or above count), OV_ETOOBIG (table full). */
int ov_metrics_set_histogram(const char *name, const char *help, const double *bounds,
                             const uint64_t *counts, size_t n, double sum, uint64_t count);

/* Renders everything. On OV_OK *out is a malloc'd NUL-terminated text the caller frees and *len
 * its length; OV_ENOMEM otherwise. */
int ov_metrics_render(char **out, size_t *len);

/* Forgets everything (tests, restarts of an embedded node). */
void ov_metrics_reset(void);

#endif
