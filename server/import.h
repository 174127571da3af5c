/*
 * Importing schools from DUO's open data "Adressen" CSV files (`olievlekd import-schools`).
 *
 * The files are semicolon-separated with double-quoted fields ("" inside a field is one quote), a
 * header row naming the columns, one school location (vestiging) per line. Older exports name the
 * code columns BRIN NUMMER / VESTIGINGSNUMMER, newer ones INSTELLINGSCODE / VESTIGINGSCODE (the
 * latter either two digits or the six-character BRIN + two digits). Files come as UTF-8, with or
 * without a byte-order mark, or as Windows-1252; a file that is not valid UTF-8 is read as
 * Windows-1252. The sector is not in the file: it comes from an option or is guessed from the
 * file name and columns.
 *
 * Each row becomes a school record keyed by BRIN + vestiging: an existing school with that key is
 * replaced (fields the CSV does not carry, such as region, are kept) or left alone when nothing
 * changed; otherwise a new school is created. Rows that are malformed or do not validate are
 * rejected with their line number and reasons; the others are still imported.
 */
#ifndef OV_IMPORT_H
#define OV_IMPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "proto/id.h"
#include "proto/record.h"
#include "server/store.h"

#define OV_IMPORT_MAX_LINE       65536        /* bytes per line, terminator excluded */
#define OV_IMPORT_MAX_ROWS       200000       /* data rows per file */
#define OV_IMPORT_MAX_FILE       (256u << 20) /* bytes per file */
#define OV_IMPORT_MAX_REJECTIONS 1000         /* rejections kept with details (all are counted) */

typedef struct {
    const char *sector; /* po | so | vso | vo | mbo | hbo | anders; NULL = guess */
    ov_id author;       /* account recorded as author; zero = this node's id */
    size_t max_rows;    /* 0 = OV_IMPORT_MAX_ROWS; lower values are for tests */
} ov_import_options;

void ov_import_options_init(ov_import_options *options);

typedef struct {
    long line;        /* 1-based physical line in the file */
    char reason[400]; /* Dutch, then English in parentheses; field errors joined by "; " */
} ov_import_rejection;

typedef struct {
    size_t read; /* data rows seen (header and empty lines excluded) */
    size_t created;
    size_t updated;
    size_t unchanged;
    size_t rejected;
    int truncated; /* the row cap was reached; later rows were not read */
    char sector[8];
    const char *sector_reason;       /* static text: why this sector */
    const char *encoding;            /* static text: "UTF-8", "UTF-8 met BOM", "Windows-1252" */
    ov_import_rejection *rejections; /* the first OV_IMPORT_MAX_REJECTIONS, owned by the report */
    size_t rejection_count;
} ov_import_report;

/* Called for each row that parsed and validated: content is a school record's content (borrowed
 * for the call), key its BRIN + vestiging ("20AB00"), line the row's line. Return OV_OK to go on;
 * a negative value stops the parse and is returned; a positive value rejects the row with the
 * message in *reason (set by the callee, static or in the report's lifetime). */
typedef int (*ov_import_row_fn)(void *ctx, long line, const char *key, const json_t *content,
                                const char **reason);

/* Parses a whole file already in memory, without a store: detects the encoding, reads the
 * header, builds and validates one school per row, records rejections in report (which must be
 * zeroed or freshly initialised by the caller; free it with ov_import_report_free).
 * name is the file name, used only to guess the sector (may be NULL). Errors: OV_EPARSE (no
 * header, or no BRIN or name column), OV_EINVAL (unknown sector option), OV_ENOMEM,
 * OV_ETOOBIG (row cap reached; rows before it were delivered), or fn's error. */
int ov_import_parse(const char *data, size_t len, const char *name,
                    const ov_import_options *options, ov_import_row_fn fn, void *ctx,
                    ov_import_report *report);

/* Imports path into store (no writer thread of this process may be writing; a node in another
 * process may run: LMDB serialises writers). *report is always initialised, also on failure,
 * and must be freed with ov_import_report_free. Errors: OV_EIO (cannot read path), OV_ETOOBIG
 * (file over OV_IMPORT_MAX_FILE or rows over the cap), as ov_import_parse, store errors. */
int ov_import_schools(ov_store *store, const char *path, const ov_import_options *options,
                      ov_import_report *report);

/* Writes the counts, encoding, sector and every kept rejection to out, for people. */
void ov_import_report_print(const ov_import_report *report, FILE *out);

void ov_import_report_free(ov_import_report *report);

#endif
