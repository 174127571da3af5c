/*
 * Fuzz target for the search index's stored-document decoder: a search_docs row read back from
 * disk (a damaged file, a bug in an older writer) must be refused or walked within its bounds,
 * never read past. Walks every entry, and looks up terms through the skip table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "server/search_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t entries;
    char first[OV_SEARCH_KEY_MAX + 1];
} walk;

static int on_entry(void *ctx, const char *term, size_t len,
                    const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                    size_t positions_len, uint32_t position_count)
{
    (void)counts;
    walk *w = ctx;
    if (len == 0 || len > OV_SEARCH_KEY_MAX)
        abort(); /* the decoder promised a term of sane length */
    const uint8_t *p = positions, *end = positions + positions_len;
    uint32_t value;
    for (uint32_t i = 0; i < position_count && ov_search_varint(&p, end, &value); i++)
        ;
    if (w->entries++ == 0) {
        memcpy(w->first, term, len);
        w->first[len] = 0;
    }
    return 0;
}

static int on_found(void *ctx, const char *term, size_t len,
                    const uint32_t counts[OV_SEARCH_CLASSES], const uint8_t *positions,
                    size_t positions_len, uint32_t position_count)
{
    (void)ctx;
    (void)term;
    (void)len;
    (void)counts;
    (void)positions;
    (void)positions_len;
    (void)position_count;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so any read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    ov_search_doc doc;
    if (ov_search_doc_decode(copy, size, &doc) == OV_OK) {
        walk w = {0, {0}};
        ov_search_doc_terms(&doc, on_entry, &w);
        if (w.entries)
            ov_search_doc_find(&doc, w.first, strlen(w.first), on_found, NULL);
        ov_search_doc_find(&doc, "leerling", 8, on_found, NULL);
        ov_search_doc_find(&doc,
                           "\x01"
                           "1a b",
                           5, on_found, NULL);
    }
    free(copy);
    return 0;
}
