/*
 * The record model (see record.h and docs/records.md): a field table per kind drives validation,
 * so every rule is written once, and validation reports every problem at once with its JSON path
 * and a message a teacher can act on, in Dutch and English.
 */
#include "proto/record.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "proto/canon.h"
#include "proto/error.h"

const char *const ov_bouwsteen_slug[OV_BOUWSTENEN] = {"doel",   "talenten", "proces", "houding",
                                                      "ruimte", "contact",  "delen"};
const char *const ov_bouwsteen_title_nl[OV_BOUWSTENEN] = {
    "Werken vanuit een gezamenlijk aanstekelijk doel",
    "Bundelen van de aanwezige talenten en expertise",
    "Aandacht voor het samenwerkingsproces en de relatie",
    "Onderzoekende en waarderende houding van alle betrokkenen",
    "Mogelijkheid om samen te werken",
    "Contact met relevante betrokkenen",
    "Delen wat werkt",
};
const char *const ov_bouwsteen_title_en[OV_BOUWSTENEN] = {
    "Working from a shared, inspiring goal",
    "Bringing together the talents and expertise at hand",
    "Attention to the collaboration process and the relationship",
    "An inquiring and appreciative attitude of everyone involved",
    "The opportunity to work together",
    "Contact with the relevant people",
    "Sharing what works",
};
const char *const ov_scan_level[2] = {"innovatieteam", "omgeving"};

static const char *const kind_names[OV_KIND_COUNT] = {"region", "school",  "person", "case",
                                                      "lesson", "request", "visit"};
static const char *const kind_collections[OV_KIND_COUNT] = {
    "regions", "schools", "people", "cases", "lessons", "requests", "visits"};
static const char *const status_names[OV_STATUS_COUNT] = {"draft", "published", "deleted"};

const char *ov_kind_name(ov_kind kind)
{
    return kind < OV_KIND_COUNT ? kind_names[kind] : "?";
}

const char *ov_kind_collection(ov_kind kind)
{
    return kind < OV_KIND_COUNT ? kind_collections[kind] : "?";
}

static int find_name(const char *const *names, int count, const char *name, size_t len)
{
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return i;
    return -1;
}

int ov_kind_parse(const char *name, size_t len, ov_kind *out)
{
    int i = find_name(kind_names, OV_KIND_COUNT, name, len);
    if (i < 0)
        return OV_EINVAL;
    *out = (ov_kind)i;
    return OV_OK;
}

int ov_kind_parse_collection(const char *name, size_t len, ov_kind *out)
{
    int i = find_name(kind_collections, OV_KIND_COUNT, name, len);
    if (i < 0)
        return OV_EINVAL;
    *out = (ov_kind)i;
    return OV_OK;
}

const char *ov_status_name(ov_status status)
{
    return status < OV_STATUS_COUNT ? status_names[status] : "?";
}

int ov_status_parse(const char *name, size_t len, ov_status *out)
{
    int i = find_name(status_names, OV_STATUS_COUNT, name, len);
    if (i < 0)
        return OV_EINVAL;
    *out = (ov_status)i;
    return OV_OK;
}

void ov_field_errors_init(ov_field_errors *errs)
{
    /* Only the counters: items are written whole when added, and zeroing all 32 of them (20 KB)
     * cost more than validating a record. */
    errs->count = 0;
    errs->truncated = 0;
}

void ov_field_errors_add(ov_field_errors *errs, const char *field, const char *message_nl,
                         const char *message_en)
{
    if (errs->count >= OV_FIELD_ERRORS_MAX) {
        errs->truncated = 1;
        return;
    }
    ov_field_error *e = &errs->items[errs->count++];
    snprintf(e->field, sizeof e->field, "%s", field);
    snprintf(e->message_nl, sizeof e->message_nl, "%s", message_nl);
    snprintf(e->message_en, sizeof e->message_en, "%s", message_en);
}

/* ---- Field tables ---------------------------------------------------------------------------- */

typedef enum {
    F_TEXT,     /* single line, max chars */
    F_LONGTEXT, /* newlines and tabs allowed */
    F_ENUM,     /* one of values */
    F_ID,       /* ov_id text */
    F_IDS,      /* array of ids */
    F_TEXTS,    /* array of short texts */
    F_SLUGS,    /* array of enum values */
    F_INTS,     /* array of integers min..max */
    F_BOOL,
    F_URL,
    F_PATTERN, /* checked by a named rule */
    F_SCAN,    /* the bouwstenen scan */
} field_type;

typedef enum {
    P_NONE,
    P_BRIN,
    P_VESTIGING,
    P_POSTCODE,
    P_DIGITS10,
    P_HEX130,
    P_EMAIL,
    P_DATE
} pattern;

typedef struct {
    const char *name;
    field_type type;
    int required;
    int max;                   /* characters, or items for arrays */
    const char *const *values; /* enum values, NULL-terminated */
    pattern rule;
    int min_int, max_int;
} field_spec;

static const char *const region_types[] = {"swv-po", "swv-vo", "netwerk", "anders", NULL};
static const char *const sectors[] = {"po", "so", "vso", "vo", "mbo", "hbo", "anders", NULL};
static const char *const availabilities[] = {"beschikbaar", "beperkt", "niet-beschikbaar", NULL};
static const char *const phases[] = {"adoptie", "implementatie", "institutionalisering", NULL};
static const char *const licences[] = {"CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0",
                                       "alle-rechten-voorbehouden", NULL};
static const char *const states[] = {"open", "opgepakt", "afgerond", NULL};
static const char *const bouwstenen[] = {"doel",   "talenten", "proces", "houding",
                                         "ruimte", "contact",  "delen",  NULL};

#define END                                                                                        \
    {                                                                                              \
        NULL, 0, 0, 0, NULL, P_NONE, 0, 0                                                          \
    }
#define COMMON                                                                                     \
    {"generated", F_BOOL, 0, 0, NULL, P_NONE, 0, 0},                                               \
    {                                                                                              \
        "source", F_TEXT, 0, 300, NULL, P_NONE, 0, 0                                               \
    }

static const field_spec region_fields[] = {
    {"name", F_TEXT, 1, 120, NULL, P_NONE, 0, 0},
    {"type", F_ENUM, 1, 0, region_types, P_NONE, 0, 0},
    {"url", F_URL, 0, 300, NULL, P_NONE, 0, 0},
    {"place", F_TEXT, 0, 120, NULL, P_NONE, 0, 0},
    {"description", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"public_key", F_PATTERN, 0, 130, NULL, P_HEX130, 0, 0},
    COMMON,
    END,
};

static const field_spec school_fields[] = {
    {"name", F_TEXT, 1, 200, NULL, P_NONE, 0, 0},
    {"brin", F_PATTERN, 1, 4, NULL, P_BRIN, 0, 0},
    {"vestiging", F_PATTERN, 0, 2, NULL, P_VESTIGING, 0, 0},
    {"sector", F_ENUM, 1, 0, sectors, P_NONE, 0, 0},
    {"place", F_TEXT, 1, 120, NULL, P_NONE, 0, 0},
    {"municipality", F_TEXT, 0, 120, NULL, P_NONE, 0, 0},
    {"province", F_TEXT, 0, 60, NULL, P_NONE, 0, 0},
    {"street", F_TEXT, 0, 200, NULL, P_NONE, 0, 0},
    {"postcode", F_PATTERN, 0, 7, NULL, P_POSTCODE, 0, 0},
    {"website", F_URL, 0, 300, NULL, P_NONE, 0, 0},
    {"denomination", F_TEXT, 0, 120, NULL, P_NONE, 0, 0},
    {"authority", F_PATTERN, 0, 10, NULL, P_DIGITS10, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    COMMON,
    END,
};

static const field_spec person_fields[] = {
    {"name", F_TEXT, 1, 120, NULL, P_NONE, 0, 0},
    {"school", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"sector", F_ENUM, 0, 0, sectors, P_NONE, 0, 0},
    {"place", F_TEXT, 0, 120, NULL, P_NONE, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"themes", F_TEXTS, 0, 24, NULL, P_NONE, 60, 0},
    {"bio", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"availability", F_ENUM, 0, 0, availabilities, P_NONE, 0, 0},
    {"contact", F_TEXT, 0, 300, NULL, P_NONE, 0, 0},
    {"email", F_PATTERN, 0, 200, NULL, P_EMAIL, 0, 0},
    COMMON,
    END,
};

static const field_spec case_fields[] = {
    {"title", F_TEXT, 1, 200, NULL, P_NONE, 0, 0},
    {"schools", F_IDS, 1, 16, NULL, P_NONE, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"sector", F_ENUM, 0, 0, sectors, P_NONE, 0, 0},
    {"summary", F_LONGTEXT, 1, 4000, NULL, P_NONE, 0, 0},
    {"question", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"goal", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"target_group", F_TEXT, 0, 400, NULL, P_NONE, 0, 0},
    {"team", F_LONGTEXT, 0, 2000, NULL, P_NONE, 0, 0},
    {"themes", F_TEXTS, 0, 24, NULL, P_NONE, 60, 0},
    {"phase", F_ENUM, 1, 0, phases, P_NONE, 0, 0},
    {"scan", F_SCAN, 0, 0, NULL, P_NONE, 0, 0},
    {"lessons_learned", F_LONGTEXT, 0, 8000, NULL, P_NONE, 0, 0},
    {"licence", F_ENUM, 0, 0, licences, P_NONE, 0, 0},
    {"contact", F_TEXT, 0, 300, NULL, P_NONE, 0, 0},
    COMMON,
    END,
};

static const field_spec lesson_fields[] = {
    {"title", F_TEXT, 1, 200, NULL, P_NONE, 0, 0},
    {"body", F_LONGTEXT, 1, 8000, NULL, P_NONE, 0, 0},
    {"school", F_ID, 1, 0, NULL, P_NONE, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0}, /* the school's, filled in by the node */
    {"case", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"bouwstenen", F_SLUGS, 0, 7, bouwstenen, P_NONE, 0, 0},
    {"principles", F_INTS, 0, 5, NULL, P_NONE, 1, 5},
    {"themes", F_TEXTS, 0, 24, NULL, P_NONE, 60, 0},
    COMMON,
    END,
};

static const field_spec request_fields[] = {
    {"title", F_TEXT, 1, 200, NULL, P_NONE, 0, 0},
    {"question", F_LONGTEXT, 1, 4000, NULL, P_NONE, 0, 0},
    {"school", F_ID, 1, 0, NULL, P_NONE, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"sector", F_ENUM, 0, 0, sectors, P_NONE, 0, 0},
    {"themes", F_TEXTS, 0, 24, NULL, P_NONE, 60, 0},
    {"state", F_ENUM, 0, 0, states, P_NONE, 0, 0},
    {"taken_by", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    COMMON,
    END,
};

/* A bezoekverslag (visit note): what a brigadier saw, discussed and advised at a school. It belongs
 * to the brigadier (a person record) who visited; the node fills in the writer's own profile
 * when "brigadier" is left out, and the school's region when "region" is. */
static const field_spec visit_fields[] = {
    {"title", F_TEXT, 1, 200, NULL, P_NONE, 0, 0},
    {"school", F_ID, 1, 0, NULL, P_NONE, 0, 0},
    {"date", F_PATTERN, 1, 10, NULL, P_DATE, 0, 0},
    {"brigadier", F_ID, 1, 0, NULL, P_NONE, 0, 0},
    {"region", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"notes", F_LONGTEXT, 1, 8000, NULL, P_NONE, 0, 0},
    {"advice", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"follow_up", F_LONGTEXT, 0, 4000, NULL, P_NONE, 0, 0},
    {"request", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"case", F_ID, 0, 0, NULL, P_NONE, 0, 0},
    {"themes", F_TEXTS, 0, 24, NULL, P_NONE, 60, 0},
    {"bouwstenen", F_SLUGS, 0, 7, bouwstenen, P_NONE, 0, 0},
    COMMON,
    END,
};

static const field_spec *const kind_fields[OV_KIND_COUNT] = {
    region_fields, school_fields,  person_fields, case_fields,
    lesson_fields, request_fields, visit_fields,
};

static const char *const envelope_members[] = {"id",      "kind",   "origin", "version", "created",
                                               "updated", "author", "status", NULL};

static int is_envelope(const char *key)
{
    for (int i = 0; envelope_members[i]; i++)
        if (strcmp(key, envelope_members[i]) == 0)
            return 1;
    return 0;
}

/* ---- Checks ---------------------------------------------------------------------------------- */

static void add(ov_field_errors *errs, const char *path, const char *nl, const char *en)
{
    ov_field_errors_add(errs, path, nl, en);
}

/* Counts code points; -1 for invalid UTF-8. */
static long count_chars(const char *text, size_t len)
{
    long count = 0;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return -1;
        i += (size_t)n;
        count++;
    }
    return count;
}

/* The NFC form of text (malloc'd, caller frees), or NULL when it is not valid UTF-8 or memory is
 * short. Lengths and duplicates are judged on what sealing will store: NFC can lengthen a text
 * (U+0958 becomes two code points) and make two different strings equal. */
static char *nfc_copy(const char *text, size_t len)
{
    utf8proc_uint8_t *out = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &out,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE) < 0)
        return NULL;
    return (char *)out;
}

static int check_text(const json_t *value, const char *path, int max, int multiline,
                      ov_field_errors *errs)
{
    if (!json_is_string(value)) {
        add(errs, path, "moet een tekst zijn", "must be a string");
        return 0;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    long chars = count_chars(text, len);
    char nl[200], en[200];
    if (chars > 0 && !ov_text_is_simple_nfc(text, len)) {
        char *nfc = nfc_copy(text, len);
        if (nfc) {
            chars = count_chars(nfc, strlen(nfc));
            free(nfc);
        }
    }
    if (chars < 0) {
        add(errs, path, "bevat ongeldige tekens", "contains invalid characters");
        return 0;
    }
    if (chars == 0 || strspn(text, " \t\n") == len) {
        add(errs, path, "mag niet leeg zijn", "must not be empty");
        return 0;
    }
    if (chars > max) {
        snprintf(nl, sizeof nl, "mag hoogstens %d tekens zijn (nu %ld)", max, chars);
        snprintf(en, sizeof en, "must be at most %d characters (now %ld)", max, chars);
        add(errs, path, nl, en);
        return 0;
    }
    /* Control characters (C0, DEL and C1, including NUL) hide text or break layouts; long texts
     * keep their line breaks and tabs. */
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        i += (size_t)utf8proc_iterate((const utf8proc_uint8_t *)text + i,
                                      (utf8proc_ssize_t)(len - i), &c);
        if (utf8proc_category(c) == UTF8PROC_CATEGORY_CC) {
            if (multiline && (c == '\n' || c == '\t'))
                continue;
            add(errs, path,
                multiline ? "bevat een besturingsteken" : "mag geen regeleinde of tab bevatten",
                multiline ? "contains a control character"
                          : "must not contain a line break or tab");
            return 0;
        }
    }
    return 1;
}

static void expected_one_of(const char *const *values, char *nl, size_t nl_size, char *en,
                            size_t en_size)
{
    char list[160] = "";
    for (int i = 0; values[i]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", values[i]);
    }
    snprintf(nl, nl_size, "moet een van: %s zijn", list);
    snprintf(en, en_size, "must be one of: %s", list);
}

static int check_enum(const json_t *value, const char *path, const char *const *values,
                      ov_field_errors *errs)
{
    if (!json_is_string(value)) {
        add(errs, path, "moet een tekst zijn", "must be a string");
        return 0;
    }
    for (int i = 0; values[i]; i++)
        if (strcmp(json_string_value(value), values[i]) == 0)
            return 1;
    char nl[200], en[200];
    expected_one_of(values, nl, sizeof nl, en, sizeof en);
    add(errs, path, nl, en);
    return 0;
}

static int check_id(const json_t *value, const char *path, ov_field_errors *errs)
{
    ov_id id;
    if (!json_is_string(value)) {
        add(errs, path, "moet een tekst zijn", "must be a string");
        return 0;
    }
    if (ov_id_parse(json_string_value(value), json_string_length(value), &id) == OV_OK)
        return 1;
    add(errs, path, "moet een geldige id zijn (26 tekens)", "must be a valid id (26 characters)");
    return 0;
}

static int check_url(const json_t *value, const char *path, int max, ov_field_errors *errs)
{
    if (!check_text(value, path, max, 0, errs))
        return 0;
    const char *text = json_string_value(value);
    const char *rest = !strncmp(text, "https://", 8)  ? text + 8
                       : !strncmp(text, "http://", 7) ? text + 7
                                                      : NULL;
    if (!rest || !*rest || strchr(text, ' ')) {
        add(errs, path, "moet een webadres zijn dat begint met https:// of http://",
            "must be a web address starting with https:// or http://");
        return 0;
    }
    return 1;
}

static int matches(const char *text, const char *shape)
{
    /* shape: 'd' digit, 'A' upper-case letter, '?' optional space */
    for (; *shape; shape++) {
        if (*shape == '?') {
            if (*text == ' ')
                text++;
            continue;
        }
        if (*shape == 'd' && !isdigit((unsigned char)*text))
            return 0;
        if (*shape == 'A' && !(*text >= 'A' && *text <= 'Z'))
            return 0;
        text++;
    }
    return *text == 0;
}

/* A calendar date "YYYY-MM-DD" that exists (no 30 February), years 1900-2999. */
static int is_date(const char *text, size_t len)
{
    if (len != 10 || text[4] != '-' || text[7] != '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)text[i]))
            return 0;
    int year = atoi(text), month = (text[5] - '0') * 10 + (text[6] - '0'),
        day = (text[8] - '0') * 10 + (text[9] - '0');
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1900 || year > 2999 || month < 1 || month > 12 || day < 1)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days[month - 1] + (month == 2 && leap);
}

static int check_pattern(const json_t *value, const char *path, const field_spec *spec,
                         ov_field_errors *errs)
{
    if (!json_is_string(value)) {
        add(errs, path, "moet een tekst zijn", "must be a string");
        return 0;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    int ok = 0;
    const char *nl = "", *en = "";
    switch (spec->rule) {
    case P_BRIN:
        ok = matches(text, "ddAA");
        nl = "is geen geldige BRIN-code (twee cijfers en twee hoofdletters, bijvoorbeeld 20AB)";
        en = "is not a valid BRIN code (two digits and two capital letters, e.g. 20AB)";
        break;
    case P_VESTIGING:
        ok = matches(text, "dd");
        nl = "moet een vestigingsnummer van twee cijfers zijn, bijvoorbeeld 00";
        en = "must be a two-digit branch number, e.g. 00";
        break;
    case P_POSTCODE:
        ok = matches(text, "dddd?AA") && text[0] != '0';
        nl = "is geen geldige postcode (bijvoorbeeld 1811 KL)";
        en = "is not a valid Dutch postcode (e.g. 1811 KL)";
        break;
    case P_DIGITS10:
        ok = len >= 1 && len <= 10;
        for (size_t i = 0; ok && i < len; i++)
            ok = isdigit((unsigned char)text[i]);
        nl = "moet uit 1 tot 10 cijfers bestaan";
        en = "must be 1 to 10 digits";
        break;
    case P_HEX130:
        ok = len == 130;
        for (size_t i = 0; ok && i < len; i++)
            ok = isdigit((unsigned char)text[i]) || (text[i] >= 'a' && text[i] <= 'f');
        nl = "moet een publieke sleutel van 130 hexadecimale tekens zijn";
        en = "must be a public key of 130 hexadecimal digits";
        break;
    case P_EMAIL: {
        const char *at = strchr(text, '@');
        ok = len <= 200 && at && at != text && !strchr(at + 1, '@') && strchr(at + 1, '.') &&
             at[1] != '.' && text[len - 1] != '.' && !strpbrk(text, " \t\n<>");
        nl = "is geen geldig e-mailadres";
        en = "is not a valid e-mail address";
        break;
    }
    case P_DATE:
        ok = is_date(text, len);
        nl = "moet een bestaande datum zijn in de vorm JJJJ-MM-DD, bijvoorbeeld 2026-03-12";
        en = "must be a real date written YYYY-MM-DD, e.g. 2026-03-12";
        break;
    case P_NONE:
        ok = 1;
        break;
    }
    if (!ok)
        add(errs, path, nl, en);
    return ok;
}

/* Equal as stored: texts after NFC, ids by value (ov_id_parse accepts lower case and aliases). */
static int same_item(field_type type, const json_t *a, const json_t *b)
{
    if (json_equal(a, b))
        return 1;
    if (!json_is_string(a) || !json_is_string(b))
        return 0;
    if (type == F_IDS) {
        ov_id x, y;
        return ov_id_parse(json_string_value(a), json_string_length(a), &x) == OV_OK &&
               ov_id_parse(json_string_value(b), json_string_length(b), &y) == OV_OK &&
               ov_id_compare(&x, &y) == 0;
    }
    if (type != F_TEXTS)
        return 0;
    if (ov_text_is_simple_nfc(json_string_value(a), json_string_length(a)) &&
        ov_text_is_simple_nfc(json_string_value(b), json_string_length(b)))
        return json_equal(a, b);
    char *x = nfc_copy(json_string_value(a), json_string_length(a));
    char *y = nfc_copy(json_string_value(b), json_string_length(b));
    int same = x && y && strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

static void check_array(const json_t *value, const char *path, const field_spec *spec,
                        ov_field_errors *errs)
{
    if (!json_is_array(value)) {
        add(errs, path, "moet een lijst zijn", "must be a list");
        return;
    }
    size_t count = json_array_size(value);
    char nl[200], en[200];
    if ((int)count > spec->max) {
        snprintf(nl, sizeof nl, "mag hoogstens %d onderdelen hebben (nu %zu)", spec->max, count);
        snprintf(en, sizeof en, "must have at most %d items (now %zu)", spec->max, count);
        add(errs, path, nl, en);
        return;
    }
    if (spec->required && count == 0) {
        add(errs, path, "moet minstens één onderdeel hebben", "must have at least one item");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *item = json_array_get(value, i);
        char item_path[96];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        int ok = 1;
        switch (spec->type) {
        case F_IDS:
            ok = check_id(item, item_path, errs);
            break;
        case F_TEXTS:
            ok = check_text(item, item_path, spec->min_int, 0, errs);
            break;
        case F_SLUGS:
            ok = check_enum(item, item_path, spec->values, errs);
            break;
        case F_INTS:
            if (!json_is_integer(item)) {
                add(errs, item_path, "moet een geheel getal zijn", "must be a whole number");
                ok = 0;
            } else if (json_integer_value(item) < spec->min_int ||
                       json_integer_value(item) > spec->max_int) {
                snprintf(nl, sizeof nl, "moet een geheel getal van %d tot en met %d zijn",
                         spec->min_int, spec->max_int);
                snprintf(en, sizeof en, "must be a whole number from %d to %d", spec->min_int,
                         spec->max_int);
                add(errs, item_path, nl, en);
                ok = 0;
            }
            break;
        default:
            break;
        }
        for (size_t j = 0; ok && j < i; j++)
            if (same_item(spec->type, item, json_array_get(value, j))) {
                add(errs, item_path, "komt dubbel voor in de lijst", "appears twice in the list");
                break;
            }
    }
}

/* "a.b" into out; paths longer than out are cut (they only label an error). */
static void join_path(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s.%s", a, b);
    if (n < 0 || (size_t)n >= size)
        out[size - 1] = 0;
}

static void check_scan(const json_t *value, const char *path, ov_field_errors *errs)
{
    if (!json_is_object(value)) {
        add(errs, path, "moet een object met bouwstenen zijn", "must be an object of bouwstenen");
        return;
    }
    const char *block;
    json_t *levels;
    json_object_foreach((json_t *)value, block, levels)
    {
        char block_path[96];
        join_path(block_path, sizeof block_path, path, block);
        int known = 0;
        for (int i = 0; i < OV_BOUWSTENEN; i++)
            known |= strcmp(block, ov_bouwsteen_slug[i]) == 0;
        if (!known) {
            add(errs, block_path,
                "is geen bouwsteen (doel, talenten, proces, houding, ruimte, contact, delen)",
                "is not a building block (doel, talenten, proces, houding, ruimte, contact, "
                "delen)");
            continue;
        }
        if (!json_is_object(levels)) {
            add(errs, block_path, "moet een object met innovatieteam en/of omgeving zijn",
                "must be an object with innovatieteam and/or omgeving");
            continue;
        }
        const char *level;
        json_t *assessment;
        json_object_foreach(levels, level, assessment)
        {
            char level_path[96];
            join_path(level_path, sizeof level_path, block_path, level);
            if (strcmp(level, ov_scan_level[0]) != 0 && strcmp(level, ov_scan_level[1]) != 0) {
                add(errs, level_path, "moet innovatieteam of omgeving zijn",
                    "must be innovatieteam or omgeving");
                continue;
            }
            if (!json_is_object(assessment)) {
                add(errs, level_path, "moet een object met score en note zijn",
                    "must be an object with score and note");
                continue;
            }
            const char *member;
            json_t *item;
            json_object_foreach(assessment, member, item)
            {
                char member_path[96];
                join_path(member_path, sizeof member_path, level_path, member);
                if (strcmp(member, "score") == 0) {
                    if (!json_is_null(item) && !json_is_integer(item))
                        add(errs, member_path, "moet een geheel getal of null zijn",
                            "must be a whole number or null");
                    else if (!json_is_null(item) &&
                             (!json_is_integer(item) || json_integer_value(item) < 1 ||
                              json_integer_value(item) > 5))
                        add(errs, member_path,
                            "moet een geheel getal van 1 tot en met 5 zijn, of null (niet "
                            "beoordeeld)",
                            "must be a whole number from 1 to 5, or null (not assessed)");
                } else if (strcmp(member, "note") == 0) {
                    check_text(item, member_path, 2000, 1, errs);
                } else {
                    add(errs, member_path, "onbekend veld (alleen score en note)",
                        "unknown field (only score and note)");
                }
            }
        }
    }
}

static void check_field(const field_spec *spec, const json_t *value, ov_field_errors *errs)
{
    const char *path = spec->name;
    switch (spec->type) {
    case F_TEXT:
        check_text(value, path, spec->max, 0, errs);
        break;
    case F_LONGTEXT:
        check_text(value, path, spec->max, 1, errs);
        break;
    case F_ENUM:
        check_enum(value, path, spec->values, errs);
        break;
    case F_ID:
        check_id(value, path, errs);
        break;
    case F_IDS:
    case F_TEXTS:
    case F_SLUGS:
    case F_INTS:
        check_array(value, path, spec, errs);
        break;
    case F_BOOL:
        if (!json_is_boolean(value))
            add(errs, path, "moet true of false zijn", "must be true or false");
        break;
    case F_URL:
        check_url(value, path, spec->max, errs);
        break;
    case F_PATTERN:
        check_pattern(value, path, spec, errs);
        break;
    case F_SCAN:
        check_scan(value, path, errs);
        break;
    }
}

static void check_envelope(ov_kind kind, const char *key, const json_t *value,
                           ov_field_errors *errs)
{
    if (strcmp(key, "kind") == 0) {
        if (!json_is_string(value) || strcmp(json_string_value(value), ov_kind_name(kind)) != 0) {
            char nl[200], en[200];
            snprintf(nl, sizeof nl, "moet \"%s\" zijn op dit adres", ov_kind_name(kind));
            snprintf(en, sizeof en, "must be \"%s\" at this address", ov_kind_name(kind));
            add(errs, key, nl, en);
        }
    } else if (strcmp(key, "id") == 0) {
        check_id(value, key, errs);
    } else if (strcmp(key, "status") == 0) {
        if (!json_is_string(value) || (strcmp(json_string_value(value), "draft") != 0 &&
                                       strcmp(json_string_value(value), "published") != 0))
            add(errs, key, "moet draft of published zijn", "must be draft or published");
    }
    /* version, created, updated, origin, author: assigned by the origin node; ignored. */
}

int ov_record_validate(ov_kind kind, const json_t *content, ov_field_errors *errs)
{
    int before = errs->count;
    if (kind >= OV_KIND_COUNT) {
        add(errs, "kind", "onbekende soort", "unknown kind");
        return OV_ESCHEMA;
    }
    if (!json_is_object(content)) {
        add(errs, "", "moet een JSON-object zijn", "must be a JSON object");
        return OV_ESCHEMA;
    }
    const field_spec *fields = kind_fields[kind];
    for (const field_spec *spec = fields; spec->name; spec++) {
        const json_t *value = json_object_get(content, spec->name);
        if (!value || json_is_null(value)) {
            if (spec->required)
                add(errs, spec->name, "is verplicht", "is required");
            continue;
        }
        check_field(spec, value, errs);
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)content, key, value)
    {
        if (is_envelope(key)) {
            check_envelope(kind, key, value, errs);
            continue;
        }
        int known = 0;
        for (const field_spec *spec = fields; spec->name && !known; spec++)
            known = strcmp(spec->name, key) == 0;
        if (!known) {
            char path[96];
            snprintf(path, sizeof path, "%s", key);
            add(errs, path, "onbekend veld", "unknown field");
        }
    }
    return errs->count > before || errs->truncated ? OV_ESCHEMA : OV_OK;
}

ov_status ov_record_requested_status(const json_t *content, ov_status fallback)
{
    const char *text = json_string_value(json_object_get(content, "status"));
    ov_status status;
    if (text && ov_status_parse(text, strlen(text), &status) == OV_OK &&
        status != OV_STATUS_DELETED)
        return status;
    return fallback;
}

/* ---- Time ------------------------------------------------------------------------------------ */

void ov_time_format(int64_t ms, char out[32])
{
    time_t seconds = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)seconds * 1000);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!gmtime_r(&seconds, &tm))
        tm.tm_year = 70, tm.tm_mday = 1, millis = 0; /* out of time_t's range: the epoch */
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    if (n < 0 || n >= 32)
        out[31] = 0; /* years beyond 9999 do not occur in records */
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar (month 1..12): the civil
 * calendar counted from March, so that the leap day comes last (H. Hinnant, "chrono-Compatible
 * Low-Level Date Algorithms"). Pure arithmetic: timegm, which this replaced, took a lock and the
 * time zone's rules for every record a replica stores. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int ov_time_parse(const char *text, size_t len, int64_t *ms)
{
    if (len != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != '.' || text[23] != 'Z')
        return OV_EINVAL;
    static const int digits[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22};
    for (size_t i = 0; i < sizeof digits / sizeof digits[0]; i++)
        if (text[digits[i]] < '0' || text[digits[i]] > '9')
            return OV_EINVAL;
#define TWO(at) ((text[at] - '0') * 10 + (text[(at) + 1] - '0'))
    int year = TWO(0) * 100 + TWO(2), month = TWO(5), day = TWO(8);
    int hour = TWO(11), minute = TWO(14), second = TWO(17);
    int millis = TWO(20) * 10 + (text[22] - '0');
#undef TWO
    /* No leap seconds, no 31 February: every time has one text form. */
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return OV_EINVAL;
    int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    *ms = seconds * 1000 + millis;
    return OV_OK;
}

/* ---- Sealing --------------------------------------------------------------------------------- */

static int set_envelope(json_t *record, const ov_envelope *env)
{
    char id[OV_ID_CHARS + 1], origin[OV_ID_CHARS + 1], author[OV_ID_CHARS + 1];
    char created[32], updated[32];
    ov_id_format(&env->id, id);
    ov_id_format(&env->origin, origin);
    ov_id_format(&env->author, author);
    ov_time_format(env->created_ms, created);
    ov_time_format(env->updated_ms, updated);
    int rc = 0;
    rc |= json_object_set_new(record, "id", json_string(id));
    rc |= json_object_set_new(record, "kind", json_string(ov_kind_name(env->kind)));
    rc |= json_object_set_new(record, "origin", json_string(origin));
    rc |= json_object_set_new(record, "version", json_integer(env->version));
    rc |= json_object_set_new(record, "created", json_string(created));
    rc |= json_object_set_new(record, "updated", json_string(updated));
    rc |= json_object_set_new(record, "author", json_string(author));
    rc |= json_object_set_new(record, "status", json_string(ov_status_name(env->status)));
    return rc ? OV_ENOMEM : OV_OK;
}

static int finish_seal(json_t *record, json_t **record_out, char **canon, size_t *canon_len,
                       uint8_t hash[OV_HASH_BYTES])
{
    int rc = ov_canon_normalize(record, NULL);
    if (rc == OV_OK)
        rc = ov_canon_encode(record, canon, canon_len);
    if (rc == OV_OK) {
        ov_sha256(*canon, *canon_len, hash);
        if (record_out) {
            *record_out = record;
            return OV_OK;
        }
    }
    json_decref(record);
    return rc;
}

/* The canonical text of an id value (upper case, no aliases), or a new reference to value when it
 * is not an id: ids are compared and indexed as text, so "01kd…" must be stored as "01KD…". */
static json_t *canonical_id(json_t *value)
{
    ov_id id;
    char text[OV_ID_CHARS + 1];
    if (!json_is_string(value) ||
        ov_id_parse(json_string_value(value), json_string_length(value), &id) != OV_OK)
        return json_incref(value);
    ov_id_format(&id, text);
    return json_string(text);
}

static int canonical_ids(json_t *record, ov_kind kind)
{
    for (const field_spec *spec = kind_fields[kind]; spec->name; spec++) {
        json_t *value = json_object_get(record, spec->name);
        if (!value || (spec->type != F_ID && spec->type != F_IDS))
            continue;
        if (spec->type == F_ID) {
            if (json_object_set_new(record, spec->name, canonical_id(value)))
                return OV_ENOMEM;
            continue;
        }
        json_t *ids = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            if (!ids || json_array_append_new(ids, canonical_id(item))) {
                json_decref(ids);
                return OV_ENOMEM;
            }
        }
        if (!ids || json_object_set_new(record, spec->name, ids))
            return OV_ENOMEM;
    }
    return OV_OK;
}

/* Drops empty assessments, blocks and the scan itself: {} says no more than absence, and one
 * meaning should have one stored form (it also keeps empty objects out of the encoder). */
static void prune_scan(json_t *record)
{
    json_t *scan = json_object_get(record, "scan");
    if (!json_is_object(scan))
        return;
    const char *block;
    json_t *levels, *tmp;
    json_object_foreach_safe(scan, tmp, block, levels)
    {
        const char *level;
        json_t *assessment, *tmp2;
        if (json_is_object(levels))
            json_object_foreach_safe(levels, tmp2, level, assessment)
            {
                if (json_is_object(assessment) && json_object_size(assessment) == 0)
                    json_object_del(levels, level);
            }
        if (json_is_object(levels) && json_object_size(levels) == 0)
            json_object_del(scan, block);
    }
    if (json_object_size(scan) == 0)
        json_object_del(record, "scan");
}

int ov_record_seal(const json_t *content, const ov_envelope *env, json_t **record_out, char **canon,
                   size_t *canon_len, uint8_t hash[OV_HASH_BYTES])
{
    if (!json_is_object(content) || env->kind >= OV_KIND_COUNT || env->status >= OV_STATUS_COUNT)
        return OV_EINVAL;
    json_t *record = json_object();
    if (!record)
        return OV_ENOMEM;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)content, key, value)
    {
        /* null means "absent": it never reaches the canonical form. A deep copy, because
         * normalisation works in place and content belongs to the caller. */
        if (is_envelope(key) || json_is_null(value))
            continue;
        if (json_object_set_new(record, key, json_deep_copy(value))) {
            json_decref(record);
            return OV_ENOMEM;
        }
    }
    if (env->kind == OV_KIND_CASE && !json_object_get(record, "licence"))
        json_object_set_new(record, "licence", json_string("CC-BY-4.0"));
    if (env->kind == OV_KIND_REQUEST && !json_object_get(record, "state"))
        json_object_set_new(record, "state", json_string("open"));
    if (env->kind == OV_KIND_CASE)
        prune_scan(record);
    int rc = canonical_ids(record, env->kind);
    if (rc == OV_OK)
        rc = set_envelope(record, env);
    if (rc != OV_OK) {
        json_decref(record);
        return rc;
    }
    return finish_seal(record, record_out, canon, canon_len, hash);
}

int ov_record_seal_tombstone(const ov_envelope *env, char **canon, size_t *canon_len,
                             uint8_t hash[OV_HASH_BYTES])
{
    json_t *record = json_object();
    if (!record)
        return OV_ENOMEM;
    ov_envelope tomb = *env;
    tomb.status = OV_STATUS_DELETED;
    int rc = set_envelope(record, &tomb);
    if (rc != OV_OK) {
        json_decref(record);
        return rc;
    }
    return finish_seal(record, NULL, canon, canon_len, hash);
}

static int member_id(const json_t *record, const char *name, ov_id *out)
{
    const char *text = json_string_value(json_object_get(record, name));
    return text && ov_id_parse(text, strlen(text), out) == OV_OK ? OV_OK : OV_ESCHEMA;
}

static int member_time(const json_t *record, const char *name, int64_t *out)
{
    const char *text = json_string_value(json_object_get(record, name));
    return text && ov_time_parse(text, strlen(text), out) == OV_OK ? OV_OK : OV_ESCHEMA;
}

typedef struct {
    ov_envelope *env;
    unsigned seen;
} envelope_read;

/* A string member's text, for the envelope's values: none of them may contain an escape (ids are
 * base32, kinds and statuses lower-case words, times digits and punctuation), so the raw bytes
 * between the quotes are the text, and a value with an escape simply does not parse. */
static int raw_string(const char *value, size_t len, const char **text, size_t *text_len)
{
    if (len < 2 || value[0] != '"')
        return 0;
    *text = value + 1;
    *text_len = len - 2;
    return 1;
}

static int on_envelope_member(void *ctx, const char *key, size_t key_len, const char *value,
                              size_t value_len)
{
    envelope_read *r = ctx;
    const char *text;
    size_t n;
#define KEY_IS(name) (key_len == sizeof(name) - 1 && memcmp(key, name, sizeof(name) - 1) == 0)
    if (KEY_IS("version")) {
        /* Shortest decimal form, as canonical JSON and jansson write it: at most 10 digits for a
         * 32-bit version, no leading zero. */
        uint64_t v = 0;
        int digits = value_len > 0 && value_len <= 10 && (value[0] != '0' || value_len == 1);
        for (size_t i = 0; digits && i < value_len; i++) {
            digits = value[i] >= '0' && value[i] <= '9';
            v = v * 10 + (uint64_t)(value[i] - '0');
        }
        if (digits && v <= UINT32_MAX) {
            r->env->version = (uint32_t)v;
            r->seen |= OV_ENVELOPE_VERSION;
        } else {
            r->seen |= OV_ENVELOPE_MALFORMED;
        }
        return 0;
    }
    int envelope =
        KEY_IS("id") || KEY_IS("kind") || KEY_IS("status") || KEY_IS("origin") || KEY_IS("updated");
    if (!envelope)
        return 0;
    if (!raw_string(value, value_len, &text, &n)) {
        r->seen |= OV_ENVELOPE_MALFORMED;
        return 0;
    }
    unsigned bit = 0;
    if (KEY_IS("id")) {
        if (ov_id_parse(text, n, &r->env->id) == OV_OK)
            bit = OV_ENVELOPE_ID;
    } else if (KEY_IS("kind")) {
        if (ov_kind_parse(text, n, &r->env->kind) != OV_OK)
            r->env->kind = OV_KIND_COUNT;
        bit = OV_ENVELOPE_KIND;
    } else if (KEY_IS("status")) {
        if (ov_status_parse(text, n, &r->env->status) != OV_OK)
            r->env->status = OV_STATUS_COUNT;
        bit = OV_ENVELOPE_STATUS;
    } else if (KEY_IS("origin")) {
        if (ov_id_parse(text, n, &r->env->origin) == OV_OK)
            bit = OV_ENVELOPE_ORIGIN;
    } else if (ov_time_parse(text, n, &r->env->updated_ms) == OV_OK) {
        bit = OV_ENVELOPE_UPDATED;
    }
    r->seen |= bit ? bit : OV_ENVELOPE_MALFORMED;
#undef KEY_IS
    return 0;
}

int ov_record_envelope_canonical(const char *data, size_t len, ov_envelope *env, unsigned *seen)
{
    memset(env, 0, sizeof *env);
    envelope_read r = {env, 0};
    int canonical = ov_canon_check_members(data, len, on_envelope_member, &r);
    *seen = r.seen;
    return canonical;
}

int ov_record_envelope_members(const char *data, size_t len, ov_envelope *env, unsigned *seen)
{
    memset(env, 0, sizeof *env);
    envelope_read r = {env, 0};
    int rc = ov_canon_each_member(data, len, on_envelope_member, &r);
    *seen = r.seen;
    return rc == 0 ? OV_OK : OV_EINVAL;
}

int ov_record_envelope(const json_t *record, ov_envelope *env)
{
    ov_envelope e;
    memset(&e, 0, sizeof e);
    const char *kind = json_string_value(json_object_get(record, "kind"));
    const char *status = json_string_value(json_object_get(record, "status"));
    json_t *version = json_object_get(record, "version");
    if (!kind || ov_kind_parse(kind, strlen(kind), &e.kind) != OV_OK || !status ||
        ov_status_parse(status, strlen(status), &e.status) != OV_OK || !json_is_integer(version) ||
        json_integer_value(version) < 1 || json_integer_value(version) > UINT32_MAX ||
        member_id(record, "id", &e.id) || member_id(record, "origin", &e.origin) ||
        member_id(record, "author", &e.author) || member_time(record, "created", &e.created_ms) ||
        member_time(record, "updated", &e.updated_ms))
        return OV_ESCHEMA;
    e.version = (uint32_t)json_integer_value(version);
    *env = e;
    return OV_OK;
}

/* ---- Facets ---------------------------------------------------------------------------------- */

void ov_record_scan_best(const json_t *record, uint8_t best[OV_BOUWSTENEN])
{
    const json_t *scan = json_object_get(record, "scan");
    for (int b = 0; b < OV_BOUWSTENEN; b++) {
        const json_t *block = json_object_get(scan, ov_bouwsteen_slug[b]);
        best[b] = 0;
        for (int l = 0; l < 2; l++) {
            const json_t *score =
                json_object_get(json_object_get(block, ov_scan_level[l]), "score");
            if (json_is_integer(score) && json_integer_value(score) > best[b] &&
                json_integer_value(score) <= 5)
                best[b] = (uint8_t)json_integer_value(score);
        }
    }
}

static int emit(ov_facet_fn fn, void *ctx, const char *facet, const char *value)
{
    if (!value || !*value || strlen(value) > OV_RECORD_FACET_VALUE_MAX)
        return 0;
    return fn(ctx, facet, value);
}

static int emit_member(ov_facet_fn fn, void *ctx, const json_t *record, const char *facet,
                       const char *member)
{
    return emit(fn, ctx, facet, json_string_value(json_object_get(record, member)));
}

static int emit_themes(ov_facet_fn fn, void *ctx, const json_t *record)
{
    size_t i;
    json_t *theme;
    json_array_foreach(json_object_get(record, "themes"), i, theme)
    {
        const char *text = json_string_value(theme);
        if (!text)
            continue;
        /* Themes match case-insensitively: index them case-folded. */
        utf8proc_uint8_t *folded = NULL;
        if (utf8proc_map((const utf8proc_uint8_t *)text, 0, &folded,
                         UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                             UTF8PROC_CASEFOLD) < 0)
            continue;
        int rc = emit(fn, ctx, "theme", (const char *)folded);
        free(folded);
        if (rc)
            return rc;
    }
    return 0;
}

int ov_record_texts(ov_kind kind, const json_t *record, ov_text_field_fn fn, void *ctx)
{
    if (kind >= OV_KIND_COUNT || !json_is_object(record))
        return 0;
    for (const field_spec *spec = kind_fields[kind]; spec->name; spec++) {
        if (strcmp(spec->name, "source") == 0)
            continue; /* where the record comes from, not what it says */
        const json_t *value = json_object_get(record, spec->name);
        int rc = 0;
        if ((spec->type == F_TEXT || spec->type == F_LONGTEXT) && json_is_string(value)) {
            rc = fn(ctx, spec->name, json_string_value(value), json_string_length(value));
        } else if (spec->type == F_TEXTS && json_is_array(value)) {
            size_t i;
            const json_t *item;
            json_array_foreach(value, i, item)
            {
                if (json_is_string(item) &&
                    (rc = fn(ctx, spec->name, json_string_value(item), json_string_length(item))))
                    break;
            }
        } else if (spec->type == F_SCAN && json_is_object(value)) {
            /* The scan's notes say how a school stands on each building block: search them. */
            for (int b = 0; b < OV_BOUWSTENEN && !rc; b++) {
                const json_t *block = json_object_get(value, ov_bouwsteen_slug[b]);
                for (int l = 0; l < 2 && block && !rc; l++) {
                    const json_t *note =
                        json_object_get(json_object_get(block, ov_scan_level[l]), "note");
                    if (json_is_string(note))
                        rc = fn(ctx, "scan", json_string_value(note), json_string_length(note));
                }
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

int ov_record_facets(ov_kind kind, const json_t *record, ov_facet_fn fn, void *ctx)
{
    int rc = 0;
    size_t i;
    json_t *item;
    switch (kind) {
    case OV_KIND_REGION:
        break;
    case OV_KIND_SCHOOL: {
        rc = emit_member(fn, ctx, record, "school", "id");
        if (!rc)
            rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "sector", "sector");
        const char *brin = json_string_value(json_object_get(record, "brin"));
        const char *vestiging = json_string_value(json_object_get(record, "vestiging"));
        if (!rc && brin) {
            char key[16];
            snprintf(key, sizeof key, "%s%s", brin, vestiging ? vestiging : "00");
            rc = emit(fn, ctx, "brin", key);
        }
        break;
    }
    case OV_KIND_PERSON:
        rc = emit_member(fn, ctx, record, "school", "school");
        if (!rc)
            rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "sector", "sector");
        if (!rc)
            rc = emit_member(fn, ctx, record, "availability", "availability");
        if (!rc)
            rc = emit_themes(fn, ctx, record);
        break;
    case OV_KIND_CASE: {
        json_array_foreach(json_object_get(record, "schools"), i, item)
        {
            if ((rc = emit(fn, ctx, "school", json_string_value(item))))
                return rc;
        }
        rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "sector", "sector");
        if (!rc)
            rc = emit_member(fn, ctx, record, "phase", "phase");
        if (!rc)
            rc = emit_themes(fn, ctx, record);
        uint8_t best[OV_BOUWSTENEN];
        ov_record_scan_best(record, best);
        for (int b = 0; !rc && b < OV_BOUWSTENEN; b++)
            if (best[b] >= 3)
                rc = emit(fn, ctx, "bouwsteen", ov_bouwsteen_slug[b]);
        break;
    }
    case OV_KIND_LESSON:
        rc = emit_member(fn, ctx, record, "school", "school");
        if (!rc)
            rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "case", "case");
        if (!rc)
            rc = emit_themes(fn, ctx, record);
        json_array_foreach(json_object_get(record, "bouwstenen"), i, item)
        {
            if (!rc)
                rc = emit(fn, ctx, "bouwsteen", json_string_value(item));
        }
        json_array_foreach(json_object_get(record, "principles"), i, item)
        {
            char number[8];
            snprintf(number, sizeof number, "%lld", (long long)json_integer_value(item));
            if (!rc && json_is_integer(item))
                rc = emit(fn, ctx, "principle", number);
        }
        break;
    case OV_KIND_REQUEST:
        rc = emit_member(fn, ctx, record, "school", "school");
        if (!rc)
            rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "sector", "sector");
        if (!rc)
            rc = emit_member(fn, ctx, record, "state", "state");
        if (!rc)
            rc = emit_member(fn, ctx, record, "person", "taken_by");
        if (!rc)
            rc = emit_themes(fn, ctx, record);
        break;
    case OV_KIND_VISIT:
        rc = emit_member(fn, ctx, record, "school", "school");
        if (!rc)
            rc = emit_member(fn, ctx, record, "region", "region");
        if (!rc)
            rc = emit_member(fn, ctx, record, "person", "brigadier");
        if (!rc)
            rc = emit_member(fn, ctx, record, "case", "case");
        if (!rc)
            rc = emit_member(fn, ctx, record, "request", "request");
        if (!rc)
            rc = emit_themes(fn, ctx, record);
        json_array_foreach(json_object_get(record, "bouwstenen"), i, item)
        {
            if (!rc)
                rc = emit(fn, ctx, "bouwsteen", json_string_value(item));
        }
        break;
    default:
        break;
    }
    return rc;
}

const char *ov_record_title_field(ov_kind kind)
{
    return kind == OV_KIND_REGION || kind == OV_KIND_SCHOOL || kind == OV_KIND_PERSON ? "name"
                                                                                      : "title";
}

int ov_record_text_field(ov_kind kind, const char *field, size_t len)
{
    if (kind >= OV_KIND_COUNT || (len == 6 && !memcmp(field, "source", 6)))
        return 0;
    for (const field_spec *spec = kind_fields[kind]; spec->name; spec++) {
        if (strlen(spec->name) != len || memcmp(spec->name, field, len))
            continue;
        if (spec->type == F_TEXT || spec->type == F_LONGTEXT)
            return 1;
        return spec->type == F_TEXTS ? 2 : 0;
    }
    return 0;
}

const char *ov_record_display_title(ov_kind kind, const json_t *record)
{
    const char *member = ov_record_title_field(kind);
    const char *text = json_string_value(json_object_get(record, member));
    return text ? text : "";
}

/* New facets go at the end: the search index numbers facets by their place in this list. */
const char *const ov_record_facet_names[] = {
    "region", "school", "sector",       "phase", "theme",  "bouwsteen", "principle",
    "case",   "state",  "availability", "brin",  "person", "request",   NULL};

const char *ov_record_facet_name(const char *name)
{
    for (int i = 0; ov_record_facet_names[i]; i++)
        if (!strcmp(name, ov_record_facet_names[i]))
            return ov_record_facet_names[i];
    return NULL;
}

/* ---- Describing a kind's fields (templates for editors) -------------------------------------- */

int ov_record_fields(ov_kind kind, ov_field_describe_fn fn, void *ctx)
{
    if ((unsigned)kind >= OV_KIND_COUNT)
        return OV_EINVAL;
    static const char *const shapes[] = {
        [F_TEXT] = "text",    [F_LONGTEXT] = "text", [F_ENUM] = "choice",   [F_ID] = "id",
        [F_IDS] = "ids",      [F_TEXTS] = "texts",   [F_SLUGS] = "choices", [F_INTS] = "numbers",
        [F_BOOL] = "boolean", [F_URL] = "url",       [F_PATTERN] = "text",  [F_SCAN] = "scan",
    };
    for (const field_spec *f = kind_fields[kind]; f->name; f++) {
        char choices[256] = "";
        size_t used = 0;
        if (f->values)
            for (const char *const *v = f->values; *v && used < sizeof choices; v++)
                used += (size_t)snprintf(choices + used, sizeof choices - used, "%s%s",
                                         used ? ", " : "", *v);
        else if (f->type == F_INTS)
            snprintf(choices, sizeof choices, "%d–%d", f->min_int, f->max_int);
        int rc = fn(ctx, f->name, shapes[f->type], f->required, choices);
        if (rc)
            return rc;
    }
    return OV_OK;
}
