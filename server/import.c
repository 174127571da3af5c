/*
 * DUO "Adressen" CSV import of schools (see import.h).
 *
 * The parser works on the whole file in memory (capped), line by line: DUO fields never contain
 * line breaks, so a quote still open at the end of a line is a broken row, rejected on its own,
 * instead of swallowing the rest of the file. Every row is turned into school content, validated
 * with the record validator, and only then handed to the store side, which upserts by BRIN +
 * vestiging against a table of the schools already stored (read once at the start, so the import
 * does not depend on a particular index and repeated rows in one file update the same record).
 */
#include "server/import.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/canon.h"
#include "proto/error.h"

#define MAX_COLUMNS 128
#define WRITE_BATCH 1000

/* ---- Encoding ---------------------------------------------------------------------------------
 */

static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else
            return 0;
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Windows-1252 0x80..0x9F; the five unassigned bytes become U+FFFD. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

/* Converts Windows-1252 to a new malloc'd UTF-8 buffer (at most 3 bytes per input byte). */
static char *from_cp1252(const unsigned char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = s[i] >= 0x80 && s[i] < 0xA0 ? cp1252_high[s[i] - 0x80] : s[i];
        if (cp < 0x80)
            out[o++] = (char)cp;
        else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* ---- Report -----------------------------------------------------------------------------------
 */

void ov_import_options_init(ov_import_options *options)
{
    memset(options, 0, sizeof *options);
}

static void reject(ov_import_report *report, long line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(ov_import_report *report, long line, const char *format, ...)
{
    report->rejected++;
    if (report->rejection_count >= OV_IMPORT_MAX_REJECTIONS)
        return;
    if (!report->rejections) {
        report->rejections = calloc(OV_IMPORT_MAX_REJECTIONS, sizeof *report->rejections);
        if (!report->rejections)
            return; /* the count above still tells the operator */
    }
    ov_import_rejection *r = &report->rejections[report->rejection_count++];
    r->line = line;
    va_list ap;
    va_start(ap, format);
    vsnprintf(r->reason, sizeof r->reason, format, ap);
    va_end(ap);
}

void ov_import_report_free(ov_import_report *report)
{
    free(report->rejections);
    report->rejections = NULL;
    report->rejection_count = 0;
}

void ov_import_report_print(const ov_import_report *report, FILE *out)
{
    fprintf(out, "codering / encoding: %s\n", report->encoding ? report->encoding : "-");
    fprintf(out, "sector: %s (%s)\n", report->sector[0] ? report->sector : "-",
            report->sector_reason ? report->sector_reason : "-");
    fprintf(out,
            "gelezen / read: %zu\nnieuw / created: %zu\nbijgewerkt / updated: %zu\n"
            "ongewijzigd / unchanged: %zu\nafgewezen / rejected: %zu\n",
            report->read, report->created, report->updated, report->unchanged, report->rejected);
    if (report->truncated)
        fprintf(out, "afgebroken: meer dan het maximum aantal rijen (stopped at the row cap)\n");
    for (size_t i = 0; i < report->rejection_count; i++)
        fprintf(out, "regel %ld: %s\n", report->rejections[i].line, report->rejections[i].reason);
    if (report->rejected > report->rejection_count)
        fprintf(out, "… en nog %zu afgewezen regels (and %zu more rejected lines)\n",
                report->rejected - report->rejection_count,
                report->rejected - report->rejection_count);
}

/* ---- CSV --------------------------------------------------------------------------------------
 */

typedef struct {
    char *text; /* into the line buffer, NUL-terminated */
} field;

/* Splits one line (without terminator) in place into fields. Returns the field count, -1 for an
 * unbalanced quote, -2 for more than MAX_COLUMNS fields. */
static int split_line(char *line, field *fields)
{
    int count = 0;
    char *p = line;
    for (;;) {
        if (count == MAX_COLUMNS)
            return -2;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            /* Anything between the closing quote and the separator is kept, as spreadsheets do. */
            while (*p && *p != ';')
                *w++ = *p++;
        } else {
            while (*p && *p != ';')
                *w++ = *p++;
        }
        int last = *p == '\0';
        *w = '\0';
        fields[count++].text = start;
        if (last)
            return count;
        p++;
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

enum {
    COL_BRIN,
    COL_VESTIGING,
    COL_VESTIGINGSNAAM,
    COL_INSTELLINGSNAAM,
    COL_STRAAT,
    COL_HUISNUMMER,
    COL_POSTCODE,
    COL_PLAATS,
    COL_GEMEENTE,
    COL_PROVINCIE,
    COL_DENOMINATIE,
    COL_INTERNET,
    COL_BEVOEGD_GEZAG,
    COL_STRUCTUUR,
    COL_COUNT
};

static const struct {
    const char *name;
    int column;
} column_names[] = {
    {"BRIN NUMMER", COL_BRIN},
    {"BRINNUMMER", COL_BRIN},
    {"INSTELLINGSCODE", COL_BRIN},
    {"VESTIGINGSNUMMER", COL_VESTIGING},
    {"VESTIGINGSCODE", COL_VESTIGING},
    {"VESTIGINGSNAAM", COL_VESTIGINGSNAAM},
    {"INSTELLINGSNAAM", COL_INSTELLINGSNAAM},
    {"STRAATNAAM", COL_STRAAT},
    {"HUISNUMMER-TOEVOEGING", COL_HUISNUMMER},
    {"HUISNUMMER", COL_HUISNUMMER},
    {"POSTCODE", COL_POSTCODE},
    {"PLAATSNAAM", COL_PLAATS},
    {"GEMEENTENAAM", COL_GEMEENTE},
    {"PROVINCIE", COL_PROVINCIE},
    {"DENOMINATIE", COL_DENOMINATIE},
    {"INTERNETADRES", COL_INTERNET},
    {"BEVOEGD GEZAG NUMMER", COL_BEVOEGD_GEZAG},
    {"BEVOEGDGEZAGNUMMER", COL_BEVOEGD_GEZAG},
    {"ONDERWIJSSTRUCTUUR", COL_STRUCTUUR},
};

static int column_of(const char *header)
{
    for (size_t i = 0; i < sizeof column_names / sizeof column_names[0]; i++)
        if (strcasecmp(header, column_names[i].name) == 0)
            return column_names[i].column;
    return -1;
}

/* DUO writes places and municipalities in capitals ("BERGEN OP ZOOM"): give them their usual
 * form. Only ASCII letters change; "'S-HERTOGENBOSCH" becomes "'s-Hertogenbosch", particles
 * after the first word stay lower case ("Egmond aan Zee") and short abbreviations in
 * parentheses stay as they are ("Bergen (NH)"). */
static int is_particle(const char *word, size_t len)
{
    static const char *const particles[] = {"aan", "op",  "de",  "den", "der", "bij",   "in",
                                            "het", "ter", "ten", "van", "en",  "onder", "over"};
    for (size_t i = 0; i < sizeof particles / sizeof particles[0]; i++)
        if (strlen(particles[i]) == len && strncmp(word, particles[i], len) == 0)
            return 1;
    return 0;
}

static void title_case(char *s)
{
    for (char *p = s; *p; p++)
        if (islower((unsigned char)*p))
            return; /* already mixed case: leave it */
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int first = 1;
    for (char *p = s; *p;) {
        if (*p == '(') {
            char *close = strchr(p, ')');
            if (close && close - p <= 4) {
                for (char *q = p; q < close; q++)
                    *q = (char)toupper((unsigned char)*q);
                p = close + 1;
                continue;
            }
        }
        if (!isalpha((unsigned char)*p)) {
            p++;
            continue;
        }
        char *word = p;
        while (isalpha((unsigned char)*p) || (unsigned char)*p >= 0x80)
            p++;
        size_t len = (size_t)(p - word);
        int after_apostrophe = word > s && word[-1] == '\'';
        if (!after_apostrophe && (first || !is_particle(word, len)))
            *word = (char)toupper((unsigned char)*word);
        first = 0;
    }
}

static int is_sector(const char *s)
{
    static const char *const sectors[] = {"po", "so", "vso", "vo", "mbo", "hbo", "anders"};
    for (size_t i = 0; i < sizeof sectors / sizeof sectors[0]; i++)
        if (strcmp(s, sectors[i]) == 0)
            return 1;
    return 0;
}

/* Whether word occurs in name delimited by non-letters (so "vo" does not match "vso"). */
static int has_word(const char *name, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = name; (p = strcasestr(p, word)) != NULL; p++) {
        int before = p == name || !isalpha((unsigned char)p[-1]);
        int after = !isalpha((unsigned char)p[n]);
        if (before && after)
            return 1;
    }
    return 0;
}

static void choose_sector(const ov_import_options *options, const char *name, int has_structure,
                          ov_import_report *report)
{
    const char *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : name;
    const char *sector = "vo";
    report->sector_reason = "standaard, geen aanwijzing in bestand (default)";
    if (options->sector) {
        sector = options->sector;
        report->sector_reason = "gekozen met --sector (option)";
    } else if (base && (has_word(base, "vso"))) {
        sector = "vso";
        report->sector_reason = "geraden uit de bestandsnaam (guessed from the file name)";
    } else if (base && (has_word(base, "so") || strcasestr(base, "speciaal"))) {
        sector = "so";
        report->sector_reason = "geraden uit de bestandsnaam (guessed from the file name)";
    } else if (base && (has_word(base, "po") || has_word(base, "bo") || has_word(base, "bao") ||
                        strcasestr(base, "basisonderwijs"))) {
        sector = "po";
        report->sector_reason = "geraden uit de bestandsnaam (guessed from the file name)";
    } else if (base && has_word(base, "mbo")) {
        sector = "mbo";
        report->sector_reason = "geraden uit de bestandsnaam (guessed from the file name)";
    } else if (base && has_word(base, "vo")) {
        report->sector_reason = "geraden uit de bestandsnaam (guessed from the file name)";
    } else if (has_structure) {
        report->sector_reason = "geraden uit de kolom ONDERWIJSSTRUCTUUR (guessed from columns)";
    }
    snprintf(report->sector, sizeof report->sector, "%s", sector);
}

/* Builds school content from one row's fields. Returns NULL on OOM. *key gets BRIN+vestiging. */
static json_t *row_content(char **col, const char *sector, char key[8], const char **problem)
{
    *problem = NULL;
    char brin[16] = "", vest[8] = "00";
    const char *b = col[COL_BRIN] ? col[COL_BRIN] : "";
    snprintf(brin, sizeof brin, "%s", b);
    for (char *p = brin; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    const char *v = col[COL_VESTIGING];
    if (v && *v) {
        size_t n = strlen(v);
        if (n == 6 && strncasecmp(v, brin, 4) == 0 && strlen(brin) == 4)
            snprintf(vest, sizeof vest, "%s", v + 4);
        else if (n == 6)
            *problem = "vestigingscode hoort niet bij de BRIN (vestiging code does not belong to "
                       "the BRIN)";
        else if (n == 1 && isdigit((unsigned char)v[0]))
            snprintf(vest, sizeof vest, "0%s", v);
        else
            snprintf(vest, sizeof vest, "%.7s", v);
    }
    snprintf(key, 8, "%.4s%.2s", brin, vest);

    const char *name = col[COL_VESTIGINGSNAAM] && *col[COL_VESTIGINGSNAAM]
                           ? col[COL_VESTIGINGSNAAM]
                           : col[COL_INSTELLINGSNAAM];
    json_t *c = json_object();
    if (!c)
        return NULL;
    json_object_set_new(c, "brin", json_string(brin));
    json_object_set_new(c, "vestiging", json_string(vest));
    json_object_set_new(c, "sector", json_string(sector));
    if (name && *name)
        json_object_set_new(c, "name", json_string(name));
    if (col[COL_PLAATS] && *col[COL_PLAATS]) {
        title_case(col[COL_PLAATS]);
        json_object_set_new(c, "place", json_string(col[COL_PLAATS]));
    }
    if (col[COL_GEMEENTE] && *col[COL_GEMEENTE]) {
        title_case(col[COL_GEMEENTE]);
        json_object_set_new(c, "municipality", json_string(col[COL_GEMEENTE]));
    }
    if (col[COL_PROVINCIE] && *col[COL_PROVINCIE])
        json_object_set_new(c, "province", json_string(col[COL_PROVINCIE]));
    if (col[COL_STRAAT] && *col[COL_STRAAT]) {
        char street[260];
        const char *number = col[COL_HUISNUMMER] ? col[COL_HUISNUMMER] : "";
        snprintf(street, sizeof street, "%.200s%s%.50s", col[COL_STRAAT], *number ? " " : "",
                 number);
        json_object_set_new(c, "street", json_string(street));
    }
    if (col[COL_POSTCODE] && *col[COL_POSTCODE]) {
        char postcode[16];
        snprintf(postcode, sizeof postcode, "%s", col[COL_POSTCODE]);
        for (char *p = postcode; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        json_object_set_new(c, "postcode", json_string(postcode));
    }
    if (col[COL_DENOMINATIE] && *col[COL_DENOMINATIE])
        json_object_set_new(c, "denomination", json_string(col[COL_DENOMINATIE]));
    if (col[COL_BEVOEGD_GEZAG] && *col[COL_BEVOEGD_GEZAG])
        json_object_set_new(c, "authority", json_string(col[COL_BEVOEGD_GEZAG]));
    const char *web = col[COL_INTERNET];
    if (web && *web && !strpbrk(web, " \t\"<>")) {
        char url[300];
        if (strncasecmp(web, "http://", 7) == 0 || strncasecmp(web, "https://", 8) == 0)
            snprintf(url, sizeof url, "%s", web);
        else
            snprintf(url, sizeof url, "https://%s", web);
        if (strlen(url) < sizeof url - 1)
            json_object_set_new(c, "website", json_string(url));
    }
    return c;
}

static void describe_errors(const ov_field_errors *errs, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < errs->count && used < size; i++) {
        int n =
            snprintf(out + used, size - used, "%s%s: %s (%s)", i ? "; " : "", errs->items[i].field,
                     errs->items[i].message_nl, errs->items[i].message_en);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int ov_import_parse(const char *data, size_t len, const char *name,
                    const ov_import_options *options, ov_import_row_fn fn, void *ctx,
                    ov_import_report *report)
{
    if (options->sector && !is_sector(options->sector))
        return OV_EINVAL;
    char *converted = NULL;
    const unsigned char *bytes = (const unsigned char *)data;
    report->encoding = "UTF-8";
    if (len >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) {
        bytes += 3;
        len -= 3;
        report->encoding = "UTF-8 met BOM";
    }
    /* The line splitter writes into the text, so it always works on a private copy. */
    if (valid_utf8(bytes, len)) {
        converted = malloc(len + 1);
        if (converted) {
            memcpy(converted, bytes, len);
            converted[len] = '\0';
        }
    } else {
        converted = from_cp1252(bytes, len, &len);
        report->encoding = "Windows-1252";
    }
    if (!converted)
        return OV_ENOMEM;

    size_t max_rows = options->max_rows ? options->max_rows : OV_IMPORT_MAX_ROWS;
    int map[MAX_COLUMNS];
    int header_columns = 0;
    int rc = OV_OK;
    long line_no = 0;
    field fields[MAX_COLUMNS];
    char *p = converted, *end = converted + len;
    while (p < end && rc == OV_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        line_no++;
        size_t line_len = (size_t)(line_end - p);
        if (line_len > 0 && p[line_len - 1] == '\r')
            line_len--;
        if (line_len > OV_IMPORT_MAX_LINE) {
            if (header_columns == 0) {
                rc = OV_EPARSE;
                break;
            }
            report->read++;
            reject(report, line_no, "regel langer dan %d bytes (line too long)",
                   OV_IMPORT_MAX_LINE);
            p = next;
            continue;
        }
        p[line_len] = '\0';
        char *line = p;
        p = next;
        if (strspn(line, " \t;") == strlen(line))
            continue; /* empty line */
        if (strlen(line) < line_len) {
            if (header_columns == 0) {
                rc = OV_EPARSE;
                break;
            }
            report->read++;
            reject(report, line_no, "NUL-teken in regel (NUL byte in line)");
            continue;
        }
        int count = split_line(line, fields);
        if (header_columns == 0) {
            if (count <= 0) {
                rc = OV_EPARSE;
                break;
            }
            int have_brin = 0, have_name = 0, have_structure = 0;
            for (int i = 0; i < count; i++) {
                map[i] = column_of(trim(fields[i].text));
                have_brin |= map[i] == COL_BRIN;
                have_name |= map[i] == COL_VESTIGINGSNAAM || map[i] == COL_INSTELLINGSNAAM;
                have_structure |= map[i] == COL_STRUCTUUR;
            }
            if (!have_brin || !have_name) {
                rc = OV_EPARSE;
                break;
            }
            header_columns = count;
            choose_sector(options, name, have_structure, report);
            continue;
        }
        if (report->read >= max_rows) {
            report->truncated = 1;
            rc = OV_ETOOBIG;
            break;
        }
        report->read++;
        if (count == -1) {
            reject(report, line_no, "aanhalingsteken niet gesloten (unbalanced quote)");
            continue;
        }
        if (count == -2 || count > header_columns) {
            reject(report, line_no, "te veel kolommen: kop heeft er %d (too many columns)",
                   header_columns);
            continue;
        }
        if (count < header_columns) {
            reject(report, line_no, "te weinig kolommen: %d van %d (too few columns)", count,
                   header_columns);
            continue;
        }
        char *col[COL_COUNT] = {0};
        for (int i = 0; i < count; i++)
            if (map[i] >= 0 && !col[map[i]])
                col[map[i]] = trim(fields[i].text);
        char key[8];
        const char *problem;
        json_t *content = row_content(col, report->sector, key, &problem);
        if (!content) {
            rc = OV_ENOMEM;
            break;
        }
        ov_field_errors errs;
        ov_field_errors_init(&errs);
        if (problem) {
            reject(report, line_no, "%s", problem);
        } else if (ov_record_validate(OV_KIND_SCHOOL, content, &errs) != OV_OK) {
            char reason[400];
            describe_errors(&errs, reason, sizeof reason);
            reject(report, line_no, "%s", reason);
        } else {
            const char *reason = NULL;
            int r = fn(ctx, line_no, key, content, &reason);
            if (r < 0)
                rc = r;
            else if (r > 0)
                reject(report, line_no, "%s", reason ? reason : "afgewezen (rejected)");
        }
        json_decref(content);
    }
    if (rc == OV_OK && header_columns == 0)
        rc = OV_EPARSE;
    free(converted);
    return rc;
}

/* ---- Store side -------------------------------------------------------------------------------
 */

typedef struct {
    char key[8]; /* "" = empty slot */
    ov_id id;
    uint32_t version;
    ov_status status;
    json_t *content; /* the stored content fields, owned */
} school_entry;

typedef struct {
    school_entry *slots;
    size_t capacity; /* power of two */
    size_t used;
} school_table;

static uint64_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    return h;
}

static school_entry *table_find(school_table *t, const char *key, int insert)
{
    if (insert && (t->used + 1) * 2 > t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 1024;
        school_entry *slots = calloc(capacity, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < t->capacity; i++) {
            if (!t->slots[i].key[0])
                continue;
            size_t j = hash_key(t->slots[i].key) & (capacity - 1);
            while (slots[j].key[0])
                j = (j + 1) & (capacity - 1);
            slots[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->capacity = capacity;
    }
    if (!t->capacity)
        return NULL;
    size_t i = hash_key(key) & (t->capacity - 1);
    while (t->slots[i].key[0]) {
        if (strcmp(t->slots[i].key, key) == 0)
            return &t->slots[i];
        i = (i + 1) & (t->capacity - 1);
    }
    if (!insert)
        return NULL;
    snprintf(t->slots[i].key, sizeof t->slots[i].key, "%s", key);
    t->used++;
    return &t->slots[i];
}

static void table_free(school_table *t)
{
    for (size_t i = 0; i < t->capacity; i++)
        json_decref(t->slots[i].content);
    free(t->slots);
}

static const char *const envelope_members[] = {"id",      "kind",    "origin", "version",
                                               "created", "updated", "author", "status"};

static int remember_school(void *ctx, const ov_record_meta *meta, const char *json, size_t len)
{
    school_table *t = ctx;
    json_t *record;
    ov_json_error err;
    if (ov_json_parse(json, len, &record, &err) != OV_OK)
        return 1; /* not ours to repair; skip */
    const char *brin = json_string_value(json_object_get(record, "brin"));
    const char *vest = json_string_value(json_object_get(record, "vestiging"));
    if (!brin) {
        json_decref(record);
        return 1;
    }
    char key[8];
    snprintf(key, sizeof key, "%.4s%.2s", brin, vest ? vest : "00");
    school_entry *e = table_find(t, key, 1);
    if (!e) {
        json_decref(record);
        return OV_ENOMEM;
    }
    if (e->content) { /* two stored schools share a key: keep the older, as the first created */
        json_decref(record);
        return 0;
    }
    for (size_t i = 0; i < sizeof envelope_members / sizeof envelope_members[0]; i++)
        json_object_del(record, envelope_members[i]);
    e->id = meta->env.id;
    e->version = meta->env.version;
    e->status = meta->env.status;
    e->content = record;
    return 0;
}

static int load_table(ov_store *store, school_table *t)
{
    ov_read *read;
    int rc = ov_read_begin(store, &read);
    if (rc != OV_OK)
        return rc;
    ov_list_query q;
    memset(&q, 0, sizeof q);
    q.kind = OV_KIND_SCHOOL;
    q.status_mask = (1u << OV_STATUS_DRAFT) | (1u << OV_STATUS_PUBLISHED);
    q.limit = 200;
    for (;;) {
        ov_id next;
        rc = ov_read_list(read, &q, remember_school, t, &next);
        if (rc != OV_OK || ov_id_is_zero(&next))
            break;
        q.before = next;
    }
    ov_read_end(read);
    return rc;
}

typedef struct {
    ov_store *store;
    ov_wtxn *txn;
    int in_batch;
    int64_t now_ms;
    ov_id author;
    school_table table;
    ov_import_report *report;
} importer;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int import_row(void *ctx, long line, const char *key, const json_t *content,
                      const char **reason)
{
    importer *im = ctx;
    school_entry *e = table_find(&im->table, key, 0);
    json_t *merged;
    ov_write_op *op;
    if (e && e->content) {
        merged = json_deep_copy(e->content);
        if (!merged || json_object_update(merged, (json_t *)content))
            goto nomem;
        if (json_equal(merged, e->content)) {
            json_decref(merged);
            im->report->unchanged++;
            return OV_OK;
        }
        op = ov_write_op_new(OV_WRITE_RECORD_REPLACE);
        if (!op)
            goto nomem;
        op->id = e->id;
        op->if_version = e->version;
        op->status = e->status;
    } else {
        merged = json_deep_copy(content);
        op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
        if (!merged || !op) {
            ov_write_op_free(op);
            goto nomem;
        }
        op->status = OV_STATUS_PUBLISHED;
    }
    op->kind = OV_KIND_SCHOOL;
    op->author = im->author;
    op->content = json_incref(merged);
    int rc = OV_OK;
    if (!im->txn)
        rc = ov_store_write_begin(im->store, &im->txn);
    if (rc == OV_OK) {
        ov_store_apply(im->txn, op, im->now_ms);
        rc = op->result;
    }
    if (rc == OV_OK) {
        if (!e && !(e = table_find(&im->table, key, 1))) {
            ov_write_op_free(op);
            goto nomem;
        }
        if (e->content)
            im->report->updated++;
        else
            im->report->created++;
        json_decref(e->content);
        e->content = merged;
        e->id = op->meta.env.id;
        e->version = op->meta.env.version;
        e->status = op->meta.env.status;
        merged = NULL;
    }
    ov_write_op_free(op);
    json_decref(merged);
    if (rc == OV_ECONFLICT || rc == OV_EGONE || rc == OV_EEXISTS || rc == OV_ENOTFOUND) {
        *reason = "de school is intussen elders gewijzigd of verwijderd (changed or deleted "
                  "meanwhile)";
        return 1;
    }
    if (rc != OV_OK)
        return rc;
    if (++im->in_batch >= WRITE_BATCH) {
        im->in_batch = 0;
        rc = ov_store_write_commit(im->txn);
        im->txn = NULL;
    }
    (void)line;
    return rc;
nomem:
    json_decref(merged);
    return OV_ENOMEM;
}

/* Reads path whole, capped. *data is malloc'd. */
static int read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return OV_EIO;
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    int rc = buf ? OV_OK : OV_ENOMEM;
    while (rc == OV_OK) {
        if (used == cap) {
            if (cap >= OV_IMPORT_MAX_FILE) {
                rc = OV_ETOOBIG;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                rc = OV_ENOMEM;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0) {
            if (ferror(f))
                rc = OV_EIO;
            break;
        }
    }
    fclose(f);
    if (rc == OV_OK && used > OV_IMPORT_MAX_FILE)
        rc = OV_ETOOBIG;
    if (rc != OV_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = used;
    return OV_OK;
}

int ov_import_schools(ov_store *store, const char *path, const ov_import_options *options,
                      ov_import_report *report)
{
    memset(report, 0, sizeof *report);
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len);
    if (rc != OV_OK)
        return rc;
    importer im;
    memset(&im, 0, sizeof im);
    im.store = store;
    im.now_ms = wall_ms();
    im.author = ov_id_is_zero(&options->author) ? *ov_store_node_id(store) : options->author;
    im.report = report;
    rc = load_table(store, &im.table);
    if (rc == OV_OK)
        rc = ov_import_parse(data, len, path, options, import_row, &im, report);
    /* Rows applied before a cap or a later error are kept: each was valid on its own. */
    if (im.txn) {
        int commit = (rc == OV_OK || rc == OV_ETOOBIG) ? ov_store_write_commit(im.txn) : OV_OK;
        if (rc != OV_OK && rc != OV_ETOOBIG)
            ov_store_write_abort(im.txn);
        if (commit != OV_OK)
            rc = commit;
    }
    table_free(&im.table);
    free(data);
    return rc;
}
