/*
 * Unit tests of the record model: real records of every kind (from the seed documents) pass,
 * every rule refuses what it should at the right JSON path with a message a teacher can act on,
 * all problems are reported at once, and sealing is deterministic, NFC-insensitive and round-trips
 * its envelope. Facets and the time format are checked the way lists and sync will use them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/canon.h"
#include "proto/error.h"
#include "proto/record.h"

#define SCHOOL_ID  "01KDVDNA081M10000000000008"
#define REGION_ID  "01KDVDNA011M0G000000000001"
#define PERSON_ID  "01KDVDNA0C1M1G00000000000C"
#define CASE_ID    "01KDVDNA0V1M2000000000000V"
#define REQUEST_ID "01KDVDNA1V1M3000000000001V"
#define NODE_ID    "01KDVDN9ZZ0000000000000001"

static const char *const valid_json[OV_KIND_COUNT] = {
    [OV_KIND_REGION] =
        "{\"name\":\"Samenwerkingsverband VO Noord-Kennemerland\",\"type\":\"swv-vo\","
        "\"url\":\"https://www.swv-vo-nk.nl/\",\"place\":\"Alkmaar\","
        "\"description\":\"Actieonderzoek naar gunstige condities om passend "
        "onderwijs te blijven verbeteren.\\nZeven bouwstenen.\","
        "\"generated\":false,\"source\":\"seed 000\"}",
    [OV_KIND_SCHOOL] = "{\"name\":\"Murmellius Gymnasium\",\"brin\":\"20AB\",\"vestiging\":\"00\","
                       "\"sector\":\"vo\",\"place\":\"Alkmaar\",\"municipality\":\"Alkmaar\","
                       "\"province\":\"Noord-Holland\",\"street\":\"Voorburggracht 1\","
                       "\"postcode\":\"1811 KL\",\"website\":\"https://www.murmellius.nl\","
                       "\"denomination\":\"Openbaar\",\"authority\":\"41234\","
                       "\"region\":\"" REGION_ID "\"}",
    [OV_KIND_PERSON] =
        "{\"name\":\"Sanne de Vries\",\"school\":\"" SCHOOL_ID "\",\"sector\":\"vo\","
        "\"place\":\"Alkmaar\",\"region\":\"" REGION_ID "\","
        "\"themes\":[\"tussenjaar\",\"overgang po-vo\"],"
        "\"bio\":\"Als onderwijsvernieuwer houd ik mij bezig met het tussenjaar.\","
        "\"availability\":\"beperkt\",\"contact\":\"Liefst per e-mail\","
        "\"email\":\"sanne@murmellius.nl\"}",
    [OV_KIND_CASE] =
        "{\"title\":\"Intermezzo: een tussenjaar op het Murmellius Gymnasium\","
        "\"schools\":[\"" SCHOOL_ID "\"],\"region\":\"" REGION_ID "\",\"sector\":\"vo\","
        "\"summary\":\"Het team van het Murmellius Gymnasium ervaarde al een aantal jaren dat "
        "jongeren van 9, 10 of 11 jaar oud willen starten in klas 1 van de middelbare school, "
        "omdat zij de basisschool afgerond hebben.\\n\\nHet team richtte daarom een tussenjaar "
        "in.\",\"question\":\"Hoe bieden we deze jongeren een passende plek?\","
        "\"goal\":\"Jongeren een jaar geven om zich te ontwikkelen.\","
        "\"target_group\":\"Leerlingen van 9 tot 11 jaar\",\"team\":\"Docententeam\","
        "\"themes\":[\"tussenjaar\",\"Jonge leerlingen\"],\"phase\":\"implementatie\","
        "\"scan\":{\"doel\":{\"innovatieteam\":{\"score\":5,\"note\":\"Het team was meteen "
        "enthousiast.\"},\"omgeving\":{\"score\":5,\"note\":\"De opkomst was bijna 2 maal zo hoog "
        "als verwacht.\"}},\"contact\":{\"omgeving\":{\"score\":4}},"
        "\"proces\":{\"innovatieteam\":{\"score\":2}},"
        "\"talenten\":{\"innovatieteam\":{\"score\":null,\"note\":\"Niet beoordeeld.\"}}},"
        "\"lessons_learned\":\"Een doel dat iedereen belangrijk vindt, trekt mensen aan.\","
        "\"contact\":\"Via de school\",\"generated\":true}",
    [OV_KIND_LESSON] = "{\"title\":\"Een aanstekelijk doel trekt ouders aan\","
                       "\"body\":\"De eerste informatiebijeenkomst trok bijna twee keer zoveel "
                       "bezoekers als verwacht.\",\"school\":\"" SCHOOL_ID "\","
                       "\"case\":\"" CASE_ID "\",\"bouwstenen\":[\"doel\",\"contact\"],"
                       "\"principles\":[1,4],\"themes\":[\"ouders\"]}",
    [OV_KIND_REQUEST] = "{\"title\":\"Wie heeft ervaring met een tussenjaar?\","
                        "\"question\":\"We willen een tussenjaar starten. Wie denkt mee?\","
                        "\"school\":\"" SCHOOL_ID "\",\"region\":\"" REGION_ID "\","
                        "\"sector\":\"vo\",\"themes\":[\"tussenjaar\"],\"state\":\"opgepakt\","
                        "\"taken_by\":\"" PERSON_ID "\"}",
    [OV_KIND_VISIT] = "{\"title\":\"Het tussenjaar evalueren met ouders en leerlingen\","
                      "\"school\":\"" SCHOOL_ID "\",\"date\":\"2026-02-05\","
                      "\"brigadier\":\"" PERSON_ID "\",\"region\":\"" REGION_ID "\","
                      "\"notes\":\"Kennismaking met het team.\\nHet doel trekt ouders aan.\","
                      "\"advice\":\"Laat leerlingen zelf vertellen wat het jaar bracht.\","
                      "\"follow_up\":\"Over drie maanden terugkijken.\","
                      "\"request\":\"" REQUEST_ID "\",\"case\":\"" CASE_ID "\","
                      "\"themes\":[\"tussenjaar\",\"Evaluatie\"],"
                      "\"bouwstenen\":[\"doel\",\"houding\"]}",
};

static json_t *parse(const char *text)
{
    json_t *value = NULL;
    ov_json_error err;
    int rc = ov_json_parse(text, strlen(text), &value, &err);
    if (rc != OV_OK)
        fail_msg("fixture does not parse: %s at %ld", err.message, err.offset);
    return value;
}

static const ov_field_error *find_error(const ov_field_errors *errs, const char *field)
{
    for (int i = 0; i < errs->count; i++)
        if (strcmp(errs->items[i].field, field) == 0)
            return &errs->items[i];
    return NULL;
}

static void print_errors(const ov_field_errors *errs)
{
    for (int i = 0; i < errs->count; i++)
        print_message("  %s: %s / %s\n", errs->items[i].field, errs->items[i].message_nl,
                      errs->items[i].message_en);
}

static void test_valid_records_pass(void **state)
{
    (void)state;
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        json_t *content = parse(valid_json[k]);
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        int rc = ov_record_validate((ov_kind)k, content, &errs);
        if (rc != OV_OK)
            print_errors(&errs);
        assert_int_equal(rc, OV_OK);
        assert_int_equal(errs.count, 0);
        /* A record of one kind is not a valid record of another. */
        ov_field_errors other;
        ov_field_errors_init(&other);
        assert_int_equal(ov_record_validate((ov_kind)((k + 1) % OV_KIND_COUNT), content, &other),
                         OV_ESCHEMA);
        json_decref(content);
    }
}

/* One rule broken: member set to value (JSON text; NULL removes it) must give an error at path
 * whose Dutch message contains nl. */
typedef struct {
    ov_kind kind;
    const char *member;
    const char *value;
    const char *path;
    const char *nl;
} rule_case;

static const rule_case rules[] = {
    {OV_KIND_REGION, "name", NULL, "name", "is verplicht"},
    {OV_KIND_REGION, "type", "\"swv\"", "type",
     "moet een van: swv-po, swv-vo, netwerk, anders zijn"},
    {OV_KIND_REGION, "url", "\"ftp://x.nl\"", "url", "https://"},
    {OV_KIND_REGION, "url", "\"https://\"", "url", "https://"},
    {OV_KIND_REGION, "public_key", "\"04ab\"", "public_key", "130"},
    {OV_KIND_REGION, "generated", "\"ja\"", "generated", "true of false"},
    {OV_KIND_REGION, "source", "42", "source", "moet een tekst zijn"},
    {OV_KIND_REGION, "titel", "\"x\"", "titel", "onbekend veld"},
    {OV_KIND_SCHOOL, "name", "\"\"", "name", "mag niet leeg zijn"},
    {OV_KIND_SCHOOL, "name", "\"   \"", "name", "mag niet leeg zijn"},
    {OV_KIND_SCHOOL, "name", "\"Murmellius\\nGymnasium\"", "name", "regeleinde"},
    {OV_KIND_SCHOOL, "brin", "\"20ab\"", "brin",
     "is geen geldige BRIN-code (twee cijfers en twee hoofdletters, bijvoorbeeld 20AB)"},
    {OV_KIND_SCHOOL, "brin", "\"20ABC\"", "brin", "BRIN-code"},
    {OV_KIND_SCHOOL, "brin", "\"2OAB\"", "brin", "BRIN-code"},
    {OV_KIND_SCHOOL, "brin", NULL, "brin", "is verplicht"},
    {OV_KIND_SCHOOL, "vestiging", "\"0\"", "vestiging", "twee cijfers"},
    {OV_KIND_SCHOOL, "sector", "\"VO\"", "sector", "moet een van: po, so, vso, vo, mbo, hbo"},
    {OV_KIND_SCHOOL, "sector", "3", "sector", "moet een tekst zijn"},
    {OV_KIND_SCHOOL, "place", NULL, "place", "is verplicht"},
    {OV_KIND_SCHOOL, "postcode", "\"1811 kl\"", "postcode", "postcode"},
    {OV_KIND_SCHOOL, "postcode", "\"181 KL\"", "postcode", "postcode"},
    {OV_KIND_SCHOOL, "postcode", "\"1811  KL\"", "postcode", "postcode"},
    {OV_KIND_SCHOOL, "website", "\"www.murmellius.nl\"", "website", "https://"},
    {OV_KIND_SCHOOL, "authority", "\"12345678901\"", "authority", "1 tot 10 cijfers"},
    {OV_KIND_SCHOOL, "authority", "\"12a\"", "authority", "1 tot 10 cijfers"},
    {OV_KIND_SCHOOL, "region", "\"region-1\"", "region", "geldige id"},
    {OV_KIND_SCHOOL, "province",
     "\"Noord-Holland en nog heel veel meer tekst om over zestig te "
     "komen\"",
     "province", "mag hoogstens 60 tekens zijn (nu 65)"},
    {OV_KIND_PERSON, "email", "\"sanne.murmellius.nl\"", "email", "e-mailadres"},
    {OV_KIND_PERSON, "email", "\"sanne@@murmellius.nl\"", "email", "e-mailadres"},
    {OV_KIND_PERSON, "email", "\"sanne@localhost\"", "email", "e-mailadres"},
    {OV_KIND_PERSON, "availability", "\"misschien\"", "availability",
     "moet een van: beschikbaar, beperkt, niet-beschikbaar zijn"},
    {OV_KIND_PERSON, "themes", "\"tussenjaar\"", "themes", "moet een lijst zijn"},
    {OV_KIND_PERSON, "themes", "[\"a\",\"b\",\"a\"]", "themes[2]", "dubbel"},
    {OV_KIND_PERSON, "themes", "[\"a\",7]", "themes[1]", "moet een tekst zijn"},
    /* Equal once sealed: composed and decomposed "é", an id in upper and lower case. */
    {OV_KIND_PERSON, "themes", "[\"caf\\u00e9\",\"cafe\\u0301\"]", "themes[1]", "dubbel"},
    {OV_KIND_CASE, "schools", "[\"" SCHOOL_ID "\",\"01kdvdna081m10000000000008\"]", "schools[1]",
     "dubbel"},
    {OV_KIND_PERSON, "school", "[]", "school", "moet een tekst zijn"},
    {OV_KIND_PERSON, "bio", "\"Regel\\u0007met een bel\"", "bio", "besturingsteken"},
    {OV_KIND_PERSON, "bio", "\"Regel\\r\\nWindows\"", "bio", "besturingsteken"},
    {OV_KIND_PERSON, "bio", "\"C1 \\u0085 teken\"", "bio", "besturingsteken"},
    {OV_KIND_CASE, "schools", "[]", "schools", "minstens één"},
    {OV_KIND_CASE, "schools", "[\"" SCHOOL_ID "\",\"x\"]", "schools[1]", "geldige id"},
    {OV_KIND_CASE, "phase", "\"start\"", "phase",
     "moet een van: adoptie, implementatie, institutionalisering zijn"},
    {OV_KIND_CASE, "summary", NULL, "summary", "is verplicht"},
    {OV_KIND_CASE, "licence", "\"MIT\"", "licence", "CC-BY-4.0"},
    {OV_KIND_CASE, "scan", "[]", "scan", "object"},
    {OV_KIND_CASE, "scan", "{\"visie\":{}}", "scan.visie", "geen bouwsteen"},
    {OV_KIND_CASE, "scan", "{\"doel\":5}", "scan.doel", "innovatieteam en/of omgeving"},
    {OV_KIND_CASE, "scan", "{\"doel\":{\"school\":{}}}", "scan.doel.school",
     "innovatieteam of omgeving"},
    {OV_KIND_CASE, "scan", "{\"doel\":{\"omgeving\":{\"score\":6}}}", "scan.doel.omgeving.score",
     "1 tot en met 5"},
    {OV_KIND_CASE, "scan", "{\"doel\":{\"omgeving\":{\"score\":0}}}", "scan.doel.omgeving.score",
     "1 tot en met 5"},
    {OV_KIND_CASE, "scan", "{\"doel\":{\"omgeving\":{\"score\":\"4\"}}}",
     "scan.doel.omgeving.score", "geheel getal"},
    {OV_KIND_CASE, "scan", "{\"ruimte\":{\"innovatieteam\":{\"note\":3}}}",
     "scan.ruimte.innovatieteam.note", "moet een tekst zijn"},
    {OV_KIND_CASE, "scan", "{\"delen\":{\"omgeving\":{\"score\":3,\"cijfer\":3}}}",
     "scan.delen.omgeving.cijfer", "onbekend veld"},
    {OV_KIND_LESSON, "school", NULL, "school", "is verplicht"},
    {OV_KIND_LESSON, "bouwstenen", "[\"doel\",\"visie\"]", "bouwstenen[1]", "moet een van: doel"},
    {OV_KIND_LESSON, "principles", "[1,6]", "principles[1]", "1 tot en met 5"},
    {OV_KIND_LESSON, "principles", "[\"1\"]", "principles[0]", "geheel getal"},
    {OV_KIND_LESSON, "principles", "[2,2]", "principles[1]", "dubbel"},
    {OV_KIND_REQUEST, "state", "\"gesloten\"", "state", "moet een van: open, opgepakt, afgerond"},
    {OV_KIND_REQUEST, "taken_by", "\"Sanne\"", "taken_by", "geldige id"},
    {OV_KIND_REQUEST, "question", NULL, "question", "is verplicht"},
    {OV_KIND_REQUEST, "kind", "\"case\"", "kind", "\"request\""},
    {OV_KIND_REQUEST, "status", "\"deleted\"", "status", "draft of published"},
    {OV_KIND_REQUEST, "id", "\"nope\"", "id", "geldige id"},
    {OV_KIND_VISIT, "school", NULL, "school", "is verplicht"},
    {OV_KIND_VISIT, "brigadier", NULL, "brigadier", "is verplicht"},
    {OV_KIND_VISIT, "notes", NULL, "notes", "is verplicht"},
    {OV_KIND_VISIT, "title", "\"Bezoek\\nDe Fontein\"", "title", "regeleinde"},
    {OV_KIND_VISIT, "date", NULL, "date", "is verplicht"},
    {OV_KIND_VISIT, "date", "\"5-2-2026\"", "date", "JJJJ-MM-DD"},
    {OV_KIND_VISIT, "date", "\"2026-02-30\"", "date", "bestaande datum"},
    {OV_KIND_VISIT, "date", "\"2025-02-29\"", "date", "bestaande datum"}, /* not a leap year */
    {OV_KIND_VISIT, "date", "\"2026-13-01\"", "date", "bestaande datum"},
    {OV_KIND_VISIT, "date", "\"2026-02-05T10:00\"", "date", "JJJJ-MM-DD"},
    {OV_KIND_VISIT, "date", "20260205", "date", "moet een tekst zijn"},
    {OV_KIND_VISIT, "request", "\"hulpvraag\"", "request", "geldige id"},
    {OV_KIND_VISIT, "bouwstenen", "[1,2]", "bouwstenen[0]", "moet een tekst zijn"},
    {OV_KIND_VISIT, "bouwstenen", "[\"delen\",\"delen\"]", "bouwstenen[1]", "dubbel"},
    {OV_KIND_VISIT, "advice", "\"\"", "advice", "mag niet leeg zijn"},
    {OV_KIND_VISIT, "phase", "\"adoptie\"", "phase", "onbekend veld"},
    {OV_KIND_VISIT, "kind", "\"lesson\"", "kind", "\"visit\""},
};

static void test_every_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const rule_case *r = &rules[i];
        json_t *content = parse(valid_json[r->kind]);
        if (r->value)
            json_object_set_new(content, r->member, parse(r->value));
        else
            json_object_del(content, r->member);
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        int rc = ov_record_validate(r->kind, content, &errs);
        const ov_field_error *e = find_error(&errs, r->path);
        if (rc != OV_ESCHEMA || !e || !strstr(e->message_nl, r->nl) || !e->message_en[0]) {
            print_message("rule %zu: %s %s=%s\n", i, ov_kind_name(r->kind), r->member,
                          r->value ? r->value : "(absent)");
            print_errors(&errs);
            fail_msg("expected an error at '%s' saying '%s'", r->path, r->nl);
        }
        json_decref(content);
    }
}

static void test_lengths_count_characters(void **state)
{
    (void)state;
    /* 200 "é" are 400 bytes but 200 characters: a title at the limit passes, one more fails. */
    char title[1024] = "";
    for (int i = 0; i < 200; i++)
        strcat(title, "\xc3\xa9");
    json_t *content = parse(valid_json[OV_KIND_CASE]);
    json_object_set_new(content, "title", json_string(title));
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_CASE, content, &errs), OV_OK);
    strcat(title, "\xc3\xa9");
    json_object_set_new(content, "title", json_string(title));
    assert_int_equal(ov_record_validate(OV_KIND_CASE, content, &errs), OV_ESCHEMA);
    assert_string_equal(errs.items[0].field, "title");
    assert_string_equal(errs.items[0].message_nl, "mag hoogstens 200 tekens zijn (nu 201)");
    assert_string_equal(errs.items[0].message_en, "must be at most 200 characters (now 201)");

    /* Judged as stored: 101 U+0958 become 202 code points in NFC, so they do not fit 200. */
    title[0] = 0;
    for (int i = 0; i < 101; i++)
        strcat(title, "\xe0\xa5\x98");
    json_object_set_new(content, "title", json_string(title));
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_CASE, content, &errs), OV_ESCHEMA);
    assert_string_equal(errs.items[0].message_nl, "mag hoogstens 200 tekens zijn (nu 202)");
    json_decref(content);
}

static void test_all_problems_reported(void **state)
{
    (void)state;
    json_t *content = parse("{\"title\":5,\"schools\":[],\"phase\":\"klaar\",\"kleur\":\"rood\","
                            "\"scan\":{\"doel\":{\"omgeving\":{\"score\":9}}}}");
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_CASE, content, &errs), OV_ESCHEMA);
    assert_int_equal(errs.count, 6);
    assert_string_equal(find_error(&errs, "title")->message_nl, "moet een tekst zijn");
    assert_string_equal(find_error(&errs, "title")->message_en, "must be a string");
    assert_non_null(find_error(&errs, "schools"));
    assert_string_equal(find_error(&errs, "summary")->message_nl, "is verplicht");
    assert_non_null(find_error(&errs, "phase"));
    assert_string_equal(find_error(&errs, "kleur")->message_en, "unknown field");
    assert_non_null(find_error(&errs, "scan.doel.omgeving.score"));
    json_decref(content);
}

static void test_content_must_be_object(void **state)
{
    (void)state;
    const char *bad[] = {"[]", "\"case\"", "3", "null", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *content = parse(bad[i]);
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        assert_int_equal(ov_record_validate(OV_KIND_LESSON, content, &errs), OV_ESCHEMA);
        assert_int_equal(errs.count, 1);
        assert_string_equal(errs.items[0].field, "");
        json_decref(content);
    }
}

static void test_errors_capped(void **state)
{
    (void)state;
    json_t *content = json_object();
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "veld%d", i);
        json_object_set_new(content, key, json_true());
    }
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_REGION, content, &errs), OV_ESCHEMA);
    assert_int_equal(errs.count, OV_FIELD_ERRORS_MAX);
    assert_true(errs.truncated);
    json_decref(content);
}

static void test_envelope_members_accepted(void **state)
{
    (void)state;
    /* A client may send back what it read, envelope and all. */
    json_t *content = parse(valid_json[OV_KIND_LESSON]);
    json_object_set_new(content, "id", json_string(CASE_ID));
    json_object_set_new(content, "kind", json_string("lesson"));
    json_object_set_new(content, "status", json_string("draft"));
    json_object_set_new(content, "version", json_integer(7));
    json_object_set_new(content, "created", json_string("whenever"));
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_LESSON, content, &errs), OV_OK);
    assert_int_equal(ov_record_requested_status(content, OV_STATUS_PUBLISHED), OV_STATUS_DRAFT);
    json_object_set_new(content, "status", json_string("deleted"));
    assert_int_equal(ov_record_requested_status(content, OV_STATUS_PUBLISHED), OV_STATUS_PUBLISHED);
    json_decref(content);
}

static ov_envelope sample_envelope(ov_kind kind)
{
    ov_envelope env;
    memset(&env, 0, sizeof env);
    assert_int_equal(ov_id_parse(CASE_ID, strlen(CASE_ID), &env.id), OV_OK);
    assert_int_equal(ov_id_parse(NODE_ID, strlen(NODE_ID), &env.origin), OV_OK);
    assert_int_equal(ov_id_parse(PERSON_ID, strlen(PERSON_ID), &env.author), OV_OK);
    env.kind = kind;
    env.version = 3;
    env.created_ms = 1795867200000;
    env.updated_ms = 1795867200123;
    env.status = OV_STATUS_PUBLISHED;
    return env;
}

static void seal_text(ov_kind kind, const char *json, const ov_envelope *env, char **canon,
                      uint8_t hash[OV_HASH_BYTES])
{
    json_t *content = parse(json);
    size_t len;
    assert_int_equal(ov_record_seal(content, env, NULL, canon, &len, hash), OV_OK);
    assert_int_equal(strlen(*canon), len);
    assert_true(ov_canon_is_canonical(*canon, len));
    (void)kind;
    json_decref(content);
}

static void test_seal_deterministic(void **state)
{
    (void)state;
    ov_envelope env = sample_envelope(OV_KIND_CASE);
    char *a, *b, *c;
    uint8_t ha[OV_HASH_BYTES], hb[OV_HASH_BYTES], hc[OV_HASH_BYTES];
    seal_text(OV_KIND_CASE, valid_json[OV_KIND_CASE], &env, &a, ha);
    /* The same members in another order, with envelope members a client sent back. */
    json_t *content = parse(valid_json[OV_KIND_CASE]);
    json_t *shuffled = json_object();
    json_object_set_new(shuffled, "version", json_integer(99));
    json_object_set_new(shuffled, "kind", json_string("case"));
    const char *keys[64];
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(content, key, value) keys[n++] = key;
    while (n > 0) {
        n--;
        json_object_set(shuffled, keys[n], json_object_get(content, keys[n]));
    }
    char *text = json_dumps(shuffled, 0);
    seal_text(OV_KIND_CASE, text, &env, &b, hb);
    assert_string_equal(a, b);
    assert_memory_equal(ha, hb, OV_HASH_BYTES);
    /* Anything that changes changes the hash. */
    env.version = 4;
    seal_text(OV_KIND_CASE, valid_json[OV_KIND_CASE], &env, &c, hc);
    assert_memory_not_equal(ha, hc, OV_HASH_BYTES);
    free(text);
    free(a);
    free(b);
    free(c);
    json_decref(shuffled);
    json_decref(content);
}

static void test_seal_nfc(void **state)
{
    (void)state;
    ov_envelope env = sample_envelope(OV_KIND_REQUEST);
    char *composed, *decomposed;
    uint8_t hc[OV_HASH_BYTES], hd[OV_HASH_BYTES];
    seal_text(OV_KIND_REQUEST,
              "{\"title\":\"Cr\xc3\xa9\xc3\xab"
              "er ruimte\",\"question\":\"Hoe?\",\"school\":\"" SCHOOL_ID "\"}",
              &env, &composed, hc);
    seal_text(OV_KIND_REQUEST,
              "{\"title\":\"Cre\xcc\x81"
              "e\xcc\x88"
              "er ruimte\",\"question\":\"Hoe?\","
              "\"school\":\"" SCHOOL_ID "\"}",
              &env, &decomposed, hd);
    assert_string_equal(composed, decomposed);
    assert_memory_equal(hc, hd, OV_HASH_BYTES);

    /* The caller's content is left as it was, and lower-case ids are stored in upper case. */
    const char *text = "{\"title\":\"Cre\xcc\x81"
                       "er\",\"question\":\"Hoe?\",\"school\":\"01kdvdna081m10000000000008\"}";
    json_t *content = parse(text);
    json_t *record;
    char *canon;
    size_t len;
    assert_int_equal(ov_record_seal(content, &env, &record, &canon, &len, hc), OV_OK);
    assert_string_equal(json_string_value(json_object_get(content, "title")), "Cre\xcc\x81"
                                                                              "er");
    assert_string_equal(json_string_value(json_object_get(record, "title")), "Cr\xc3\xa9"
                                                                             "er");
    assert_string_equal(json_string_value(json_object_get(record, "school")), SCHOOL_ID);
    free(canon);
    json_decref(record);
    json_decref(content);
    free(composed);
    free(decomposed);
}

static void test_seal_envelope_round_trip(void **state)
{
    (void)state;
    ov_envelope env = sample_envelope(OV_KIND_CASE);
    json_t *content = parse(valid_json[OV_KIND_CASE]);
    json_object_set_new(content, "status", json_string("draft")); /* the envelope decides */
    json_object_set_new(content, "region", json_null());          /* null means absent */
    json_t *record = NULL;
    char *canon;
    size_t len;
    uint8_t hash[OV_HASH_BYTES], again[OV_HASH_BYTES];
    assert_int_equal(ov_record_seal(content, &env, &record, &canon, &len, hash), OV_OK);
    assert_string_equal(json_string_value(json_object_get(record, "id")), CASE_ID);
    assert_string_equal(json_string_value(json_object_get(record, "kind")), "case");
    assert_string_equal(json_string_value(json_object_get(record, "origin")), NODE_ID);
    assert_string_equal(json_string_value(json_object_get(record, "author")), PERSON_ID);
    assert_string_equal(json_string_value(json_object_get(record, "status")), "published");
    assert_string_equal(json_string_value(json_object_get(record, "created")),
                        "2026-11-28T12:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(record, "updated")),
                        "2026-11-28T12:00:00.123Z");
    assert_int_equal(json_integer_value(json_object_get(record, "version")), 3);
    assert_null(json_object_get(record, "region"));
    assert_string_equal(json_string_value(json_object_get(record, "licence")), "CC-BY-4.0");
    assert_string_equal(ov_record_display_title(OV_KIND_CASE, record),
                        "Intermezzo: een tussenjaar op het Murmellius Gymnasium");

    /* What was sealed reads back to the same envelope, validates again as content, and the
     * stored bytes parse and hash to the same record. */
    ov_envelope back;
    assert_int_equal(ov_record_envelope(record, &back), OV_OK);
    assert_memory_equal(&back.id, &env.id, sizeof env.id);
    assert_memory_equal(&back.origin, &env.origin, sizeof env.origin);
    assert_memory_equal(&back.author, &env.author, sizeof env.author);
    assert_int_equal(back.kind, env.kind);
    assert_int_equal(back.version, env.version);
    assert_int_equal(back.created_ms, env.created_ms);
    assert_int_equal(back.updated_ms, env.updated_ms);
    assert_int_equal(back.status, env.status);
    ov_field_errors errs;
    ov_field_errors_init(&errs);
    assert_int_equal(ov_record_validate(OV_KIND_CASE, record, &errs), OV_OK);

    json_t *reparsed = parse(canon);
    char *canon2;
    size_t len2;
    assert_int_equal(ov_record_seal(reparsed, &back, NULL, &canon2, &len2, again), OV_OK);
    assert_memory_equal(hash, again, OV_HASH_BYTES);

    /* A broken envelope is refused. */
    json_object_set_new(reparsed, "version", json_integer(0));
    assert_int_equal(ov_record_envelope(reparsed, &back), OV_ESCHEMA);
    json_object_set_new(reparsed, "version", json_integer(3));
    json_object_set_new(reparsed, "updated", json_string("2026-11-28 08:00:00"));
    assert_int_equal(ov_record_envelope(reparsed, &back), OV_ESCHEMA);
    json_object_set_new(reparsed, "updated", json_string("2026-11-28T12:00:00.123Z"));
    json_object_set_new(reparsed, "kind", json_string("cases"));
    assert_int_equal(ov_record_envelope(reparsed, &back), OV_ESCHEMA);

    free(canon);
    free(canon2);
    json_decref(reparsed);
    json_decref(record);
    json_decref(content);
}

static void test_seal_defaults_and_tombstone(void **state)
{
    (void)state;
    ov_envelope env = sample_envelope(OV_KIND_REQUEST);
    json_t *content =
        parse("{\"title\":\"Hulp\",\"question\":\"Wie?\",\"school\":\"" SCHOOL_ID "\"}");
    json_t *record;
    char *canon;
    size_t len;
    uint8_t hash[OV_HASH_BYTES];
    assert_int_equal(ov_record_seal(content, &env, &record, &canon, &len, hash), OV_OK);
    assert_string_equal(json_string_value(json_object_get(record, "state")), "open");
    assert_null(json_object_get(record, "licence"));
    free(canon);
    json_decref(record);
    json_decref(content);

    /* Empty parts of a scan say nothing and are not stored; the rest of the scan stays. */
    env.kind = OV_KIND_CASE;
    content = parse(valid_json[OV_KIND_CASE]);
    json_t *scan = json_object_get(content, "scan");
    json_object_set_new(scan, "houding", json_object());
    json_object_set_new(json_object_get(scan, "proces"), "omgeving", json_object());
    assert_int_equal(ov_record_seal(content, &env, &record, &canon, &len, hash), OV_OK);
    json_t *sealed_scan = json_object_get(record, "scan");
    assert_null(json_object_get(sealed_scan, "houding"));
    assert_null(json_object_get(json_object_get(sealed_scan, "proces"), "omgeving"));
    assert_non_null(json_object_get(json_object_get(sealed_scan, "proces"), "innovatieteam"));
    assert_int_equal(json_object_size(json_object_get(scan, "houding")), 0); /* caller's intact */
    free(canon);
    json_decref(record);
    json_object_set_new(content, "scan", parse("{\"doel\":{\"omgeving\":{}}}"));
    assert_int_equal(ov_record_seal(content, &env, &record, &canon, &len, hash), OV_OK);
    assert_null(json_object_get(record, "scan"));
    free(canon);
    json_decref(record);
    json_decref(content);
    env.kind = OV_KIND_REQUEST;

    assert_int_equal(ov_record_seal_tombstone(&env, &canon, &len, hash), OV_OK);
    json_t *tomb = parse(canon);
    assert_int_equal(json_object_size(tomb), 8);
    assert_string_equal(json_string_value(json_object_get(tomb, "status")), "deleted");
    ov_envelope back;
    assert_int_equal(ov_record_envelope(tomb, &back), OV_OK);
    assert_int_equal(back.status, OV_STATUS_DELETED);
    assert_int_equal(back.version, 3);
    free(canon);
    json_decref(tomb);

    json_t *array = json_array();
    assert_int_equal(ov_record_seal(array, &env, NULL, &canon, &len, hash), OV_EINVAL);
    json_decref(array);
}

typedef struct {
    char seen[32][128];
    int count;
    int stop_after;
} facet_log;

static int collect(void *ctx, const char *facet, const char *value)
{
    facet_log *log = ctx;
    if (log->count < 32)
        snprintf(log->seen[log->count++], sizeof log->seen[0], "%s=%s", facet, value);
    return log->stop_after && log->count >= log->stop_after ? 42 : 0;
}

static int has_facet(const facet_log *log, const char *pair)
{
    for (int i = 0; i < log->count; i++)
        if (strcmp(log->seen[i], pair) == 0)
            return 1;
    return 0;
}

static void test_facets(void **state)
{
    (void)state;
    json_t *record = parse(valid_json[OV_KIND_CASE]);
    facet_log log = {0};
    assert_int_equal(ov_record_facets(OV_KIND_CASE, record, collect, &log), 0);
    assert_true(has_facet(&log, "school=" SCHOOL_ID));
    assert_true(has_facet(&log, "region=" REGION_ID));
    assert_true(has_facet(&log, "sector=vo"));
    assert_true(has_facet(&log, "phase=implementatie"));
    assert_true(has_facet(&log, "theme=tussenjaar"));
    assert_true(has_facet(&log, "theme=jonge leerlingen")); /* lower-cased */
    /* Scores ≥ 3 at either level: doel (5) and contact (4); not proces (2), not talenten (null). */
    assert_true(has_facet(&log, "bouwsteen=doel"));
    assert_true(has_facet(&log, "bouwsteen=contact"));
    assert_false(has_facet(&log, "bouwsteen=proces"));
    assert_false(has_facet(&log, "bouwsteen=talenten"));
    assert_int_equal(log.count, 8);

    /* A non-zero return stops the walk and comes back. */
    facet_log stop = {.stop_after = 2};
    assert_int_equal(ov_record_facets(OV_KIND_CASE, record, collect, &stop), 42);
    assert_int_equal(stop.count, 2);
    json_decref(record);

    record = parse(valid_json[OV_KIND_SCHOOL]);
    json_object_set_new(record, "id", json_string(SCHOOL_ID));
    json_object_del(record, "vestiging");
    facet_log school = {0};
    assert_int_equal(ov_record_facets(OV_KIND_SCHOOL, record, collect, &school), 0);
    assert_true(has_facet(&school, "school=" SCHOOL_ID));
    assert_true(has_facet(&school, "brin=20AB00"));
    assert_string_equal(ov_record_display_title(OV_KIND_SCHOOL, record), "Murmellius Gymnasium");
    json_decref(record);

    record = parse(valid_json[OV_KIND_LESSON]);
    facet_log lesson = {0};
    assert_int_equal(ov_record_facets(OV_KIND_LESSON, record, collect, &lesson), 0);
    assert_true(has_facet(&lesson, "case=" CASE_ID));
    assert_true(has_facet(&lesson, "bouwsteen=contact"));
    assert_true(has_facet(&lesson, "principle=4"));
    json_decref(record);

    record = parse(valid_json[OV_KIND_REQUEST]);
    facet_log request = {0};
    assert_int_equal(ov_record_facets(OV_KIND_REQUEST, record, collect, &request), 0);
    assert_true(has_facet(&request, "state=opgepakt"));
    assert_true(has_facet(&request, "person=" PERSON_ID));
    json_decref(record);

    record = parse(valid_json[OV_KIND_PERSON]);
    facet_log person = {0};
    assert_int_equal(ov_record_facets(OV_KIND_PERSON, record, collect, &person), 0);
    assert_true(has_facet(&person, "availability=beperkt"));
    assert_true(has_facet(&person, "theme=overgang po-vo"));
    json_decref(record);

    record = parse(valid_json[OV_KIND_VISIT]);
    facet_log visit = {0};
    assert_int_equal(ov_record_facets(OV_KIND_VISIT, record, collect, &visit), 0);
    assert_true(has_facet(&visit, "school=" SCHOOL_ID));
    assert_true(has_facet(&visit, "region=" REGION_ID));
    assert_true(has_facet(&visit, "person=" PERSON_ID));
    assert_true(has_facet(&visit, "case=" CASE_ID));
    assert_true(has_facet(&visit, "request=" REQUEST_ID));
    assert_true(has_facet(&visit, "theme=evaluatie"));
    assert_true(has_facet(&visit, "bouwsteen=doel"));
    assert_true(has_facet(&visit, "bouwsteen=houding"));
    assert_int_equal(visit.count, 9);
    assert_string_equal(ov_record_display_title(OV_KIND_VISIT, record),
                        "Het tussenjaar evalueren met ouders en leerlingen");
    json_decref(record);
}

/* A visit's date is a day that exists: leap years by the Gregorian rule. */
static void test_visit_dates(void **state)
{
    (void)state;
    static const struct {
        const char *date;
        int ok;
    } dates[] = {
        {"2024-02-29", 1},  {"2000-02-29", 1},  {"1900-02-29", 0}, {"2100-02-29", 0},
        {"2026-04-30", 1},  {"2026-04-31", 0},  {"2026-12-31", 1}, {"2026-00-10", 0},
        {"2026-01-00", 0},  {"1899-12-31", 0},  {"2026-1-05", 0},  {"2026/01/05", 0},
        {"2026-01-05 ", 0}, {"２026-01-05", 0},
    };
    json_t *record = parse(valid_json[OV_KIND_VISIT]);
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        json_object_set_new(record, "date", json_string(dates[i].date));
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        int rc = ov_record_validate(OV_KIND_VISIT, record, &errs);
        if ((rc == OV_OK) != dates[i].ok)
            fail_msg("date %s: expected %s", dates[i].date, dates[i].ok ? "valid" : "refused");
        if (!dates[i].ok)
            assert_string_equal(errs.items[0].message_en,
                                "must be a real date written YYYY-MM-DD, e.g. 2026-03-12");
    }
    json_decref(record);
}

static void test_time(void **state)
{
    (void)state;
    const int64_t samples[] = {0,
                               1,
                               999,
                               1000,
                               1795867200123,
                               951782400000 /* 29 Feb 2000 */,
                               -1,
                               253402300799999 /* 9999-12-31T23:59:59.999Z */};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char text[32];
        int64_t back = 12345;
        ov_time_format(samples[i], text);
        assert_int_equal(strlen(text), 24);
        assert_int_equal(ov_time_parse(text, strlen(text), &back), OV_OK);
        assert_int_equal(back, samples[i]);
    }
    /* Every day from 1600 to 2400 (leap centuries and all), at a time of day that moves: the
     * parse is arithmetic of its own, held here to the formatting (gmtime) it must invert. */
    for (int64_t day = -135140; day < 157054; day++) {
        int64_t ms = day * 86400000 + (day * 7919 % 86400) * 1000 + day % 1000 * (day < 0 ? -1 : 1);
        char when[32];
        int64_t back = 0;
        ov_time_format(ms, when);
        if (ov_time_parse(when, strlen(when), &back) != OV_OK || back != ms)
            fail_msg("%s: %lld, not %lld", when, (long long)back, (long long)ms);
    }
    char text[32];
    ov_time_format(-1, text);
    assert_string_equal(text, "1969-12-31T23:59:59.999Z");
    ov_time_format(1795867200123, text);
    assert_string_equal(text, "2026-11-28T12:00:00.123Z");

    const char *bad[] = {
        "2026-11-28T12:00:00Z",     "2026-11-28T12:00:00.123",
        "2026-11-28 08:00:00.123Z", "2026-11-28T12:00:00.123+01:00",
        "2026-02-30T08:00:00.000Z", "2026-13-01T08:00:00.000Z",
        "2026-11-28T24:00:00.000Z", "2026-11-28T08:60:00.000Z",
        "2026-12-31T23:59:60.000Z", "2026-11-28t08:00:00.000z",
        "+026-11-28T08:00:00.000Z", "2026-11-28T12:00:00.-23Z",
        "2025-02-29T00:00:00.000Z", "1900-02-29T00:00:00.000Z",
        "2026-04-31T00:00:00.000Z", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 7;
        if (ov_time_parse(bad[i], strlen(bad[i]), &ms) != OV_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ms, 7);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        ov_kind kind;
        const char *name = ov_kind_name((ov_kind)k);
        const char *coll = ov_kind_collection((ov_kind)k);
        assert_int_equal(ov_kind_parse(name, strlen(name), &kind), OV_OK);
        assert_int_equal(kind, k);
        assert_int_equal(ov_kind_parse_collection(coll, strlen(coll), &kind), OV_OK);
        assert_int_equal(kind, k);
    }
    ov_kind kind;
    assert_string_equal(ov_kind_collection(OV_KIND_PERSON), "people");
    assert_string_equal(ov_kind_collection(OV_KIND_VISIT), "visits");
    assert_int_equal(ov_kind_parse("cases", 5, &kind), OV_EINVAL);
    assert_int_equal(ov_kind_parse("casefile", 4, &kind), OV_OK); /* exactly len bytes */
    assert_int_equal(kind, OV_KIND_CASE);
    assert_int_equal(ov_kind_parse_collection("case", 4, &kind), OV_EINVAL);
    ov_status status;
    assert_int_equal(ov_status_parse("deleted", 7, &status), OV_OK);
    assert_int_equal(status, OV_STATUS_DELETED);
    assert_int_equal(ov_status_parse("Draft", 5, &status), OV_EINVAL);
    assert_string_equal(ov_bouwsteen_slug[6], "delen");
    assert_string_equal(ov_bouwsteen_title_nl[0],
                        "Werken vanuit een gezamenlijk aanstekelijk doel");
    assert_string_equal(ov_scan_level[1], "omgeving");
}

static int collect_text(void *ctx, const char *field, const char *text, size_t len)
{
    facet_log *log = ctx;
    if (log->count < 32)
        snprintf(log->seen[log->count++], sizeof log->seen[0], "%s=%.*s", field,
                 (int)(len > 40 ? 40 : len), text);
    return 0;
}

static void test_texts(void **state)
{
    (void)state;
    json_t *record = parse(valid_json[OV_KIND_CASE]);
    facet_log log = {0};
    assert_int_equal(ov_record_texts(OV_KIND_CASE, record, collect_text, &log), 0);
    assert_true(has_facet(&log, "title=Intermezzo: een tussenjaar op het Murmel"));
    assert_true(has_facet(&log, "goal=Jongeren een jaar geven om zich te ontwi"));
    assert_true(has_facet(&log, "themes=Jonge leerlingen"));
    /* Ids, enumerations and the scan are not text to search in. */
    for (int i = 0; i < log.count; i++) {
        assert_null(strstr(log.seen[i], "schools="));
        assert_null(strstr(log.seen[i], "phase="));
        assert_null(strstr(log.seen[i], "region="));
    }
    json_decref(record);

    /* A visit note: its title and what was seen, advised and agreed; not the date or the ids. */
    record = parse(valid_json[OV_KIND_VISIT]);
    facet_log visit = {0};
    assert_int_equal(ov_record_texts(OV_KIND_VISIT, record, collect_text, &visit), 0);
    assert_true(has_facet(&visit, "title=Het tussenjaar evalueren met ouders en l"));
    assert_true(has_facet(&visit, "notes=Kennismaking met het team.\nHet doel trek"));
    assert_true(has_facet(&visit, "advice=Laat leerlingen zelf vertellen wat het j"));
    assert_true(has_facet(&visit, "follow_up=Over drie maanden terugkijken."));
    assert_true(has_facet(&visit, "themes=Evaluatie"));
    assert_int_equal(visit.count, 6);
    assert_int_equal(ov_record_text_field(OV_KIND_VISIT, "notes", 5), 1);
    assert_int_equal(ov_record_text_field(OV_KIND_VISIT, "date", 4), 0);
    json_decref(record);
}

/* The envelope read in the canonical check's own walk equals the one read from the parsed record,
 * for every kind; what is not canonical, or not a known kind or status, is said so. */
static void test_envelope_from_canonical_bytes(void **state)
{
    (void)state;
    for (int k = 0; k < OV_KIND_COUNT; k++) {
        ov_envelope env = sample_envelope((ov_kind)k), read, parsed;
        char *canon;
        uint8_t hash[OV_HASH_BYTES];
        seal_text((ov_kind)k, valid_json[k], &env, &canon, hash);
        unsigned seen = 0;
        assert_true(ov_record_envelope_canonical(canon, strlen(canon), &read, &seen));
        assert_int_equal(seen, OV_ENVELOPE_ID | OV_ENVELOPE_KIND | OV_ENVELOPE_STATUS |
                                   OV_ENVELOPE_ORIGIN | OV_ENVELOPE_UPDATED | OV_ENVELOPE_VERSION);
        json_t *record = parse(canon);
        assert_int_equal(ov_record_envelope(record, &parsed), OV_OK);
        json_decref(record);
        assert_memory_equal(read.id.bytes, parsed.id.bytes, OV_ID_BYTES);
        assert_memory_equal(read.origin.bytes, parsed.origin.bytes, OV_ID_BYTES);
        assert_int_equal(read.kind, parsed.kind);
        assert_int_equal(read.status, parsed.status);
        assert_int_equal(read.version, parsed.version);
        assert_int_equal(read.updated_ms, parsed.updated_ms);
        /* The same record as jansson spells it with spaces: not canonical, same envelope. */
        json_t *again = parse(canon);
        char *spaced_json = json_dumps(again, JSON_INDENT(2));
        json_decref(again);
        ov_envelope loose;
        unsigned loose_seen = 0;
        assert_int_equal(
            ov_record_envelope_members(spaced_json, strlen(spaced_json), &loose, &loose_seen),
            OV_OK);
        assert_int_equal(loose_seen, seen);
        assert_memory_equal(&loose, &read, sizeof loose);
        assert_false(
            ov_record_envelope_canonical(spaced_json, strlen(spaced_json), &loose, &loose_seen));
        free(spaced_json);
        /* One byte out of canonical form (a space after the first member) and the answer is no. */
        size_t len = strlen(canon);
        char *spaced = malloc(len + 2);
        const char *comma = strchr(canon, ',');
        size_t at = (size_t)(comma - canon) + 1;
        memcpy(spaced, canon, at);
        spaced[at] = ' ';
        memcpy(spaced + at + 1, canon + at, len - at + 1);
        assert_false(ov_record_envelope_canonical(spaced, len + 1, &read, &seen));
        free(spaced);
        free(canon);
    }
    unsigned seen = 0;
    ov_envelope read;
    const char *odd = "{\"id\":\"not an id\",\"kind\":\"poem\",\"status\":\"archived\","
                      "\"updated\":\"yesterday\",\"version\":0}";
    assert_true(ov_record_envelope_canonical(odd, strlen(odd), &read, &seen));
    assert_int_equal(seen, OV_ENVELOPE_KIND | OV_ENVELOPE_STATUS | OV_ENVELOPE_VERSION |
                               OV_ENVELOPE_MALFORMED);
    assert_int_equal(read.kind, OV_KIND_COUNT);
    assert_int_equal(read.status, OV_STATUS_COUNT);
    /* One member of the wrong form is enough to say so; the others are still read. */
    const char *late =
        "{\"id\":\"01KDVDNA0V1M2000000000000V\",\"updated\":\"yesterday\",\"version\":3}";
    assert_true(ov_record_envelope_canonical(late, strlen(late), &read, &seen));
    assert_int_equal(seen, OV_ENVELOPE_ID | OV_ENVELOPE_VERSION | OV_ENVELOPE_MALFORMED);
    assert_int_equal(read.version, 3);
    /* Version 0 (a record not accepted yet, as a client keeps it) reads; a leading zero does not.
     */
    const char *zero = "{\"version\":0}";
    assert_true(ov_record_envelope_canonical(zero, strlen(zero), &read, &seen));
    assert_int_equal(seen, OV_ENVELOPE_VERSION);
    assert_int_equal(read.version, 0);
    const char *padded = "{\"version\":07}";
    assert_false(ov_record_envelope_canonical(padded, strlen(padded), &read, &seen));
    assert_int_equal(ov_record_envelope_members(padded, strlen(padded), &read, &seen), OV_OK);
    assert_int_equal(seen, OV_ENVELOPE_MALFORMED);
    assert_false(ov_record_envelope_canonical("[1]", 3, &read, &seen));
    assert_int_equal(ov_record_envelope_members("[1]", 3, &read, &seen), OV_EINVAL);
    assert_false(ov_record_envelope_canonical("{\"version\":01}", 14, &read, &seen));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_records_pass),
        cmocka_unit_test(test_every_rule),
        cmocka_unit_test(test_lengths_count_characters),
        cmocka_unit_test(test_all_problems_reported),
        cmocka_unit_test(test_content_must_be_object),
        cmocka_unit_test(test_errors_capped),
        cmocka_unit_test(test_envelope_members_accepted),
        cmocka_unit_test(test_seal_deterministic),
        cmocka_unit_test(test_seal_nfc),
        cmocka_unit_test(test_seal_envelope_round_trip),
        cmocka_unit_test(test_seal_defaults_and_tombstone),
        cmocka_unit_test(test_facets),
        cmocka_unit_test(test_visit_dates),
        cmocka_unit_test(test_texts),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_envelope_from_canonical_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
