/*
 * RFC 9457 problem details: every error the API returns is application/problem+json with type,
 * title, status, detail and, for input problems, errors: [{field, message}] — in Dutch unless the
 * request's Accept-Language prefers English.
 */
#ifndef OV_PROBLEM_H
#define OV_PROBLEM_H

#include <jansson.h>

#include "proto/record.h"
#include "server/http.h"

/* Answers request with a problem document for status. detail says what was wrong and where (it
 * may be NULL for the status's standard text); errs may be NULL. extra_headers as for
 * ov_http_respond (e.g. "Retry-After: 5\r\n"). */
void ov_problem_respond(ov_http_request *request, int status, const char *detail,
                        const ov_field_errors *errs, const char *extra_headers, const char *route);

/* The same with one more member (e.g. "current": the record a 412 conflicts with); value is
 * borrowed (may be NULL: no member). */
void ov_problem_respond_with(ov_http_request *request, int status, const char *detail,
                             const ov_field_errors *errs, const char *extra_headers,
                             const char *member, json_t *value, const char *route);

/* The header every 401 carries (RFC 9110 §11.6.1): how to authenticate. */
#define OV_PROBLEM_UNAUTHORIZED_HEADERS "WWW-Authenticate: Bearer realm=\"olievlek\"\r\n"

/* Answers request for an OV_E* error code with its status and standard wording: 401 (with
 * WWW-Authenticate), 403, 404, 409, 410, 507, 503 (with Retry-After) and 500 for the rest. Callers
 * that can say more (which account, which record) answer those cases themselves first. */
void ov_problem_respond_error(ov_http_request *request, int rc, const char *route);

/* Answers 405 with an Allow header and a detail naming the methods allow lists ("GET, HEAD"). */
void ov_problem_method_not_allowed(ov_http_request *request, const char *allow, const char *route);

/* Reads the request body as one JSON object: checks Content-Type (415), parses strictly (400 with
 * line and column, see canon.h) and requires an object (422). On failure the request has been
 * answered and NULL is returned; on success the caller owns the object (json_decref). */
json_t *ov_problem_read_json_object(ov_http_request *request, const char *route);

/* True when the request prefers English over Dutch (Accept-Language). */
int ov_problem_prefers_english(const ov_http_request *request);

#endif
