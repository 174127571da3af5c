/*
 * The record model: kinds, the envelope every record carries, validation per kind, and the
 * sealed (canonical, hashed) form in which records are stored, logged and replicated.
 *
 * A record is one JSON object. The envelope members are assigned by the origin node and are
 * read-only for clients:
 *   id       ov_id text        stable, globally unique
 *   kind     "region" | "school" | "person" | "case" | "lesson" | "request" | "visit"
 *   origin   ov_id text        the node with authority over the record
 *   version  integer ≥ 1       +1 for every accepted change
 *   created  RFC 3339 UTC with milliseconds, e.g. "2026-11-22T12:00:00.000Z"
 *   updated  idem
 *   author   ov_id text        the account that wrote this version
 *   status   "draft" | "published" | "deleted"
 * All other members are the kind's content fields (see record.c's field tables and
 * docs/records.md). Unknown members are rejected, so typos never pass silently.
 */
#ifndef OV_RECORD_H
#define OV_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/crypto.h"
#include "proto/id.h"

typedef enum {
    OV_KIND_REGION,
    OV_KIND_SCHOOL,
    OV_KIND_PERSON,
    OV_KIND_CASE,
    OV_KIND_LESSON,
    OV_KIND_REQUEST,
    OV_KIND_VISIT, /* a brigadier's bezoekverslag; kinds are numbered in stores: add at the end */
    OV_KIND_COUNT
} ov_kind;

typedef enum { OV_STATUS_DRAFT, OV_STATUS_PUBLISHED, OV_STATUS_DELETED, OV_STATUS_COUNT } ov_status;

/* "case" */
const char *ov_kind_name(ov_kind kind);
/* The REST collection: "regions", "schools", "people", "cases", "lessons", "requests",
 * "visits". */
const char *ov_kind_collection(ov_kind kind);
/* OV_OK or OV_EINVAL. */
int ov_kind_parse(const char *name, size_t len, ov_kind *out);
int ov_kind_parse_collection(const char *name, size_t len, ov_kind *out);
const char *ov_status_name(ov_status status);
int ov_status_parse(const char *name, size_t len, ov_status *out);

/* Problems found in client input, each naming the field (a JSON path such as "title",
 * "scan.doel.omgeving.score" or "themes[2]") and saying what is wrong in Dutch and English. */
#define OV_FIELD_ERRORS_MAX 32
typedef struct {
    char field[96];
    char message_nl[200];
    char message_en[200];
} ov_field_error;

typedef struct {
    ov_field_error items[OV_FIELD_ERRORS_MAX];
    int count;
    int truncated; /* more problems than fit */
} ov_field_errors;

void ov_field_errors_init(ov_field_errors *errs);
/* Appends one problem; sets truncated when full. Strings are truncated to fit. */
void ov_field_errors_add(ov_field_errors *errs, const char *field, const char *message_nl,
                         const char *message_en);

typedef struct {
    ov_id id;
    ov_kind kind;
    ov_id origin;
    uint32_t version;
    int64_t created_ms;
    int64_t updated_ms;
    ov_id author;
    ov_status status;
} ov_envelope;

/* Checks client content for a record of kind. Envelope members may be present (a client may send
 * back what it read): "kind" must then equal kind, "id" must be a valid id, "status" must be
 * "draft" or "published"; version/created/updated/origin/author are ignored. Every problem is
 * added to errs. Returns OV_OK or OV_ESCHEMA. content is not modified. */
int ov_record_validate(ov_kind kind, const json_t *content, ov_field_errors *errs);

/* The status a client asked for in content ("status" member), or fallback when absent. */
ov_status ov_record_requested_status(const json_t *content, ov_status fallback);

/* Seals a record: copies content's non-envelope members, adds env's envelope members, applies
 * defaults (e.g. licence "CC-BY-4.0" for cases), writes ids in their canonical text form
 * (upper case, as ov_id_format), drops empty objects from a case's scan (an empty scan says
 * nothing; it is left out), normalises to NFC and encodes canonically.
 * On success *canon is malloc'd (caller frees), *canon_len its length, hash the SHA-256 of the
 * canonical bytes; if record_out is not NULL it receives the sealed object (caller decrefs).
 * content must have passed ov_record_validate. Errors: OV_EINVAL, OV_ENOMEM. */
int ov_record_seal(const json_t *content, const ov_envelope *env, json_t **record_out, char **canon,
                   size_t *canon_len, uint8_t hash[OV_HASH_BYTES]);

/* A sealed record with only its envelope and status "deleted": what a deletion leaves. */
int ov_record_seal_tombstone(const ov_envelope *env, char **canon, size_t *canon_len,
                             uint8_t hash[OV_HASH_BYTES]);

/* What a person calls the record: its "name" (regions, schools, people) or "title" (the rest).
 * Points into record (valid while record lives and that member is unchanged); "" when absent. */
/* The member that names a record of kind: "name" (regions, schools, people) or "title". */
const char *ov_record_title_field(ov_kind kind);
/* Whether field (len bytes) of kind is a text people search in, as ov_record_texts walks them:
 * 0 no, 1 a text, 2 a list of texts. */
int ov_record_text_field(ov_kind kind, const char *field, size_t len);
const char *ov_record_display_title(ov_kind kind, const json_t *record);

/* Reads the envelope members of a sealed record. OV_OK or OV_ESCHEMA. */
int ov_record_envelope(const json_t *record, ov_envelope *env);

/* Bits of what ov_record_envelope_canonical found. */
#define OV_ENVELOPE_ID        0x01u
#define OV_ENVELOPE_KIND      0x02u
#define OV_ENVELOPE_STATUS    0x04u
#define OV_ENVELOPE_ORIGIN    0x08u
#define OV_ENVELOPE_UPDATED   0x10u
#define OV_ENVELOPE_VERSION   0x20u
#define OV_ENVELOPE_MALFORMED 0x40u /* one of them is there in the wrong form */

/* Checks that data is the canonical encoding of an object and reads the envelope members of the
 * record it holds in the same pass, without building it: what a replicated run's check and a
 * replica's store need of every record, for the price of one walk. env is zeroed, then id, kind,
 * status, origin, updated and version are filled in as found well-formed, each setting its bit in
 * *seen (created and author are not read). A kind or status that is a string this version does not
 * know is seen as OV_KIND_COUNT / OV_STATUS_COUNT: the caller decides what that means. A member
 * of the wrong form (an id that is not one, a time that is not one, a version that is not an
 * integer from 0 to 2^32-1 in its shortest form, a kind or status that is not a string) is not
 * seen, and sets OV_ENVELOPE_MALFORMED. Version 0 is a record its node has not accepted yet, as a
 * client keeps the ones it created offline: a sealed record has 1 or more, which is the caller's
 * check. Returns 1 when data is canonical, else 0. */
int ov_record_envelope_canonical(const char *data, size_t len, ov_envelope *env, unsigned *seen);
/* The same envelope from any JSON object (spaces allowed, nothing checked beyond the members'
 * forms), by the walk of ov_canon_each_member: for records a client keeps or gets back, which
 * need not be canonical. OV_OK, or OV_EINVAL when data is not an object. */
int ov_record_envelope_members(const char *data, size_t len, ov_envelope *env, unsigned *seen);

/* RFC 3339 UTC with milliseconds ("2026-11-22T12:00:00.000Z", 24 chars + NUL) and back. */
void ov_time_format(int64_t ms, char out[32]);
int ov_time_parse(const char *text, size_t len, int64_t *ms);

/* Calls fn for each text of a record that people search in: the kind's single-line and long texts,
 * text lists and the scan's notes (field "scan"), with the field's name (not ids, enumerations,
 * numbers, URLs or the "source" note). Returns fn's first non-zero value, else 0. */
typedef int (*ov_text_field_fn)(void *ctx, const char *field, const char *text, size_t len);
int ov_record_texts(ov_kind kind, const json_t *record, ov_text_field_fn fn, void *ctx);

/* Facets a record is found by in lists and search. fn is called once per (facet, value) pair;
 * a non-zero return stops the walk and is returned. Facets:
 *   "school"    every school id the record refers to (a school record: its own id)
 *   "region"    the region id
 *   "sector"    e.g. "vo"
 *   "phase"     cases: adoptie | implementatie | institutionalisering
 *   "theme"     each theme, lower-cased
 *   "bouwsteen" cases: each building block with a score ≥ 3 at either level;
 *               lessons and visits: each block the record is tagged with
 *   "principle" lessons: each IIO principle "1".."5"
 *   "case"      lessons and visits: the case id; requests: none
 *   "person"    requests: the brigadier who took it up; visits: the brigadier who visited
 *   "request"   visits: the help request the visit answers
 *   "state"     requests: open | taken | closed
 *   "availability" people: their availability
 *   "brin"      schools: BRIN code and vestiging ("12AB00")
 * Values are at most OV_RECORD_FACET_VALUE_MAX bytes; longer ones are skipped. */
#define OV_RECORD_FACET_VALUE_MAX 96
typedef int (*ov_facet_fn)(void *ctx, const char *facet, const char *value);
int ov_record_facets(ov_kind kind, const json_t *record, ov_facet_fn fn, void *ctx);

/* Every facet name ov_record_facets emits, NULL-terminated; and a lookup that returns the list's
 * own copy of name (so callers can keep the pointer) or NULL when it is not a facet. */
extern const char *const ov_record_facet_names[];
const char *ov_record_facet_name(const char *name);

/* The seven building blocks (bouwstenen) in order, as slugs used in JSON and URLs:
 * doel, talenten, proces, houding, ruimte, contact, delen; with Dutch and English titles. */
#define OV_BOUWSTENEN 7
extern const char *const ov_bouwsteen_slug[OV_BOUWSTENEN];
extern const char *const ov_bouwsteen_title_nl[OV_BOUWSTENEN];
extern const char *const ov_bouwsteen_title_en[OV_BOUWSTENEN];
/* The two levels of the scan: "innovatieteam" and "omgeving". */
extern const char *const ov_scan_level[2];

/* The best scan score per building block, of either level (0: not assessed, else 1..5). */
void ov_record_scan_best(const json_t *record, uint8_t best[OV_BOUWSTENEN]);

/* Describes each content field of kind in table order, for templates and help: its name, shape
 * ("text", "choice", "id", "ids", "texts", "choices", "numbers", "boolean", "url", "scan"),
 * whether it is required, and the allowed values ("po, vo, …" or "1–5"; "" when free). fn
 * returns non-zero to stop (returned). OV_EINVAL for an unknown kind. */
typedef int (*ov_field_describe_fn)(void *ctx, const char *name, const char *shape, int required,
                                    const char *choices);
int ov_record_fields(ov_kind kind, ov_field_describe_fn fn, void *ctx);

#endif
