/*
 * RFC 9457 problem documents. The slug and title follow from the status; the title is Dutch
 * unless Accept-Language prefers English (q-values honoured, Dutch wins ties and is the default,
 * as the users are Dutch teachers). Field problems carry both languages already
 * (ov_field_errors), so the same choice picks their message. jansson builds the JSON, so every
 * string is escaped correctly.
 */
#include "server/problem.h"
#include "proto/error.h"
#include "proto/canon.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    int status;
    const char *slug;
    const char *title_nl;
    const char *title_en;
} problem_kind;

static const problem_kind kinds[] = {
    {400, "bad-request", "Ongeldig verzoek", "Bad request"},
    {401, "unauthorized", "Niet aangemeld", "Not signed in"},
    {403, "forbidden", "Geen toegang", "Forbidden"},
    {404, "not-found", "Niet gevonden", "Not found"},
    {405, "method-not-allowed", "Methode niet toegestaan", "Method not allowed"},
    {408, "timeout", "Verzoek duurde te lang", "Request timeout"},
    {409, "conflict", "Conflict", "Conflict"},
    {410, "gone", "Verwijderd", "Gone"},
    {412, "precondition-failed", "Versie komt niet overeen", "Precondition failed"},
    {413, "too-large", "Verzoek te groot", "Request too large"},
    {415, "unsupported-media-type", "Niet-ondersteund formaat", "Unsupported media type"},
    {422, "validation", "Gegevens kloppen niet", "Validation failed"},
    {428, "precondition-required", "Versie vereist (If-Match)", "Precondition required"},
    {429, "too-many-requests", "Te veel verzoeken", "Too many requests"},
    {500, "internal", "Interne fout", "Internal error"},
    {503, "unavailable", "Tijdelijk niet beschikbaar", "Service unavailable"},
    {507, "unavailable", "Opslag vol", "Insufficient storage"},
};

static const problem_kind *kind_for(int status)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].status == status)
            return &kinds[i];
    return status >= 500 ? &kinds[14] : &kinds[0];
}

/* The q-value of the best range in accept that matches lang ("en" matches "en", "en-GB"). */
static double quality_for(const char *accept, const char *lang)
{
    double best = -1;
    size_t lang_len = strlen(lang);
    const char *p = accept;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tag = p;
        size_t tag_len = strcspn(p, ";,");
        while (tag_len && (tag[tag_len - 1] == ' ' || tag[tag_len - 1] == '\t'))
            tag_len--;
        p += strcspn(p, ";,");
        double q = 1.0;
        while (*p == ';') {
            p++;
            while (*p == ' ')
                p++;
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                char *end = NULL;
                q = strtod(p + 2, &end);
                if (end == p + 2 || q < 0 || q > 1)
                    q = 0;
            }
            p += strcspn(p, ";,");
        }
        int matches = tag_len >= lang_len && strncasecmp(tag, lang, lang_len) == 0 &&
                      (tag_len == lang_len || tag[lang_len] == '-');
        if (matches && q > best)
            best = q;
        if (*p == ',')
            p++;
    }
    return best;
}

int ov_problem_prefers_english(const ov_http_request *request)
{
    const char *accept = ov_http_request_header(request, "accept-language");
    if (!accept)
        return 0;
    double en = quality_for(accept, "en");
    double nl = quality_for(accept, "nl");
    return en > 0 && en > nl;
}

static char *render(int status, const char *detail, const ov_field_errors *errs, int english,
                    const char *member, json_t *value)
{
    const problem_kind *kind = kind_for(status);
    char type[64];
    snprintf(type, sizeof type, "/problems/%s", kind->slug);
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    json_object_set_new(doc, "type", json_string(type));
    json_object_set_new(doc, "title", json_string(english ? kind->title_en : kind->title_nl));
    json_object_set_new(doc, "status", json_integer(status));
    json_t *detail_value = detail ? json_string(detail) : NULL;
    if (!detail_value) /* none given, or not UTF-8 */
        detail_value = json_string(english ? kind->title_en : kind->title_nl);
    json_object_set_new(doc, "detail", detail_value);
    if (errs && errs->count > 0) {
        json_t *list = json_array();
        for (int i = 0; i < errs->count && i < OV_FIELD_ERRORS_MAX; i++) {
            const ov_field_error *e = &errs->items[i];
            const char *message = english ? e->message_en : e->message_nl;
            json_t *item = json_object();
            json_object_set_new(item, "field", json_string(e->field));
            json_object_set_new(item, "message", json_string(message));
            json_array_append_new(list, item);
        }
        json_object_set_new(doc, "errors", list);
        if (errs->truncated)
            json_object_set_new(doc, "errors_truncated", json_true());
    }
    if (member && value)
        json_object_set(doc, member, value);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return text;
}

void ov_problem_respond(ov_http_request *request, int status, const char *detail,
                        const ov_field_errors *errs, const char *extra_headers, const char *route)
{
    ov_problem_respond_with(request, status, detail, errs, extra_headers, NULL, NULL, route);
}

void ov_problem_respond_with(ov_http_request *request, int status, const char *detail,
                             const ov_field_errors *errs, const char *extra_headers,
                             const char *member, json_t *value, const char *route)
{
    int english = ov_problem_prefers_english(request);
    char *text = render(status, detail, errs, english, member, value);
    char headers[1024];
    snprintf(headers, sizeof headers, "Content-Language: %s\r\n%s", english ? "en" : "nl",
             extra_headers ? extra_headers : "");
    if (!text) {
        static const char fallback[] = "{\"type\":\"/problems/internal\",\"title\":\"Interne "
                                       "fout\",\"status\":500,\"detail\":\"out of memory\"}";
        ov_http_respond(request, 500, "application/problem+json", NULL, fallback,
                        sizeof fallback - 1, route);
        return;
    }
    ov_http_respond(request, status, "application/problem+json", headers, text, strlen(text),
                    route);
    free(text);
}

void ov_problem_respond_error(ov_http_request *req, int rc, const char *route)
{
    switch (rc) {
    case OV_EAUTH:
        ov_problem_respond(req, 401, "sign in first (POST /api/v1/session)", NULL,
                           OV_PROBLEM_UNAUTHORIZED_HEADERS, route);
        break;
    case OV_EDENIED:
        ov_problem_respond(req, 403, "your role does not allow this", NULL, NULL, route);
        break;
    case OV_ENOTFOUND:
        ov_problem_respond(req, 404, NULL, NULL, NULL, route);
        break;
    case OV_EEXISTS:
        ov_problem_respond(req, 409, "this exists already", NULL, NULL, route);
        break;
    case OV_EGONE:
        ov_problem_respond(req, 410, "this record has been deleted", NULL, NULL, route);
        break;
    case OV_EFULL:
        ov_problem_respond(req, 507, "the node's storage is full", NULL, NULL, route);
        break;
    case OV_ESHUTDOWN:
        ov_problem_respond(req, 503, "the node is shutting down", NULL, "Retry-After: 5\r\n",
                           route);
        break;
    default:
        ov_problem_respond(req, 500, ov_strerror(rc), NULL, NULL, route);
        break;
    }
}

void ov_problem_method_not_allowed(ov_http_request *req, const char *allow, const char *route)
{
    char headers[128], detail[128];
    snprintf(headers, sizeof headers, "Allow: %s\r\n", allow);
    snprintf(detail, sizeof detail, "this address accepts %s", allow);
    ov_problem_respond(req, 405, detail, NULL, headers, route);
}

json_t *ov_problem_read_json_object(ov_http_request *req, const char *route)
{
    const char *type = ov_http_request_header(req, "content-type");
    size_t n = strlen("application/json");
    if (!type || strncasecmp(type, "application/json", n) != 0 ||
        (type[n] != 0 && type[n] != ';' && type[n] != ' ')) {
        char detail[200];
        snprintf(detail, sizeof detail, "send application/json, not %.100s",
                 type ? type : "(no Content-Type)");
        ov_problem_respond(req, 415, detail, NULL, NULL, route);
        return NULL;
    }
    size_t len;
    const char *body = ov_http_request_body(req, &len);
    json_t *value = NULL;
    ov_json_error err;
    if (ov_json_parse(body, len, &value, &err) != OV_OK) {
        char detail[300];
        snprintf(detail, sizeof detail, "malformed JSON at line %d, column %d: %s", err.line,
                 err.column, err.message);
        ov_problem_respond(req, 400, detail, NULL, NULL, route);
        return NULL;
    }
    if (!json_is_object(value)) {
        json_decref(value);
        ov_problem_respond(req, 422, "the body must be a JSON object", NULL, NULL, route);
        return NULL;
    }
    return value;
}
