/*
 * RFC 9457 problem documents (see problem.h). One table maps each status to its type slug and
 * its titles in Dutch and English; the field messages come from ov_field_error in the language
 * the request prefers, so a teacher reads Dutch and an English-speaking integrator English.
 */
#include "server/problem.h"

#include <jansson.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int status;
    const char *slug;
    const char *title_nl;
    const char *title_en;
} problem_kind;

static const problem_kind kinds[] = {
    {400, "bad-request", "Ongeldig verzoek", "Bad request"},
    {401, "unauthorized", "Aanmelden vereist", "Authentication required"},
    {403, "forbidden", "Niet toegestaan", "Forbidden"},
    {404, "not-found", "Niet gevonden", "Not found"},
    {405, "method-not-allowed", "Methode niet toegestaan", "Method not allowed"},
    {408, "timeout", "Verzoek duurde te lang", "Request timeout"},
    {409, "conflict", "Conflict", "Conflict"},
    {410, "gone", "Verwijderd", "Gone"},
    {412, "precondition-failed", "Gewijzigd door een ander", "Precondition failed"},
    {413, "too-large", "Verzoek te groot", "Payload too large"},
    {415, "unsupported-media-type", "Verkeerd inhoudstype", "Unsupported media type"},
    {422, "validation", "Gegevens kloppen niet", "Validation failed"},
    {428, "precondition-required", "Versie ontbreekt", "Precondition required"},
    {429, "too-many-requests", "Te veel verzoeken", "Too many requests"},
    {500, "internal", "Interne fout", "Internal error"},
    {503, "unavailable", "Tijdelijk niet beschikbaar", "Service unavailable"},
    {507, "storage-full", "Opslag vol", "Insufficient storage"},
};

static const problem_kind *find_kind(int status)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].status == status)
            return &kinds[i];
    return status >= 500 ? &kinds[sizeof kinds / sizeof kinds[0] - 3] : &kinds[0];
}

/* The q-value of language tag prefix in an Accept-Language header (0 when absent). */
static double language_quality(const char *header, const char *language)
{
    double best = 0;
    const char *p = header;
    size_t len = strlen(language);
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t item_len = end ? (size_t)(end - p) : strlen(p);
        if (item_len >= len && strncasecmp(p, language, len) == 0 &&
            (item_len == len || p[len] == '-' || p[len] == ';' || p[len] == ' ')) {
            double q = 1.0;
            const char *semi = memchr(p, ';', item_len);
            if (semi) {
                const char *qp = strstr(semi, "q=");
                if (qp && qp < p + item_len)
                    q = strtod(qp + 2, NULL);
            }
            if (q > best)
                best = q;
        }
        p = end;
    }
    return best;
}

int ov_problem_prefers_english(const ov_http_request *request)
{
    const char *header = ov_http_request_header(request, "accept-language");
    if (!header)
        return 0;
    return language_quality(header, "en") > language_quality(header, "nl");
}

void ov_problem_respond(ov_http_request *request, int status, const char *detail,
                        const ov_field_errors *errs, const char *extra_headers, const char *route)
{
    const problem_kind *kind = find_kind(status);
    int english = ov_problem_prefers_english(request);
    char type[64];
    snprintf(type, sizeof type, "/problems/%s", kind->slug);
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_string(type));
    json_object_set_new(doc, "title", json_string(english ? kind->title_en : kind->title_nl));
    json_object_set_new(doc, "status", json_integer(status));
    /* Details come from our own code in English; invalid UTF-8 never reaches them. */
    json_t *detail_value =
        json_string(detail ? detail : (english ? kind->title_en : kind->title_nl));
    json_object_set_new(doc, "detail", detail_value ? detail_value : json_string("?"));
    if (errs && errs->count > 0) {
        json_t *list = json_array();
        for (int i = 0; i < errs->count; i++) {
            json_t *item = json_object();
            json_object_set_new(item, "field", json_string(errs->items[i].field));
            const char *message = english ? errs->items[i].message_en : errs->items[i].message_nl;
            json_t *text = json_string(message);
            json_object_set_new(item, "message", text ? text : json_string("?"));
            json_array_append_new(list, item);
        }
        json_object_set_new(doc, "errors", list);
        if (errs->truncated)
            json_object_set_new(doc, "errors_truncated", json_true());
    }
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) {
        static const char fallback[] = "{\"type\":\"/problems/internal\",\"title\":\"Internal "
                                       "error\",\"status\":500,\"detail\":\"out of memory\"}";
        ov_http_respond(request, 500, "application/problem+json", NULL, fallback,
                        sizeof fallback - 1, route);
        return;
    }
    ov_http_respond(request, status, "application/problem+json", extra_headers, body, strlen(body),
                    route);
    free(body);
}
