/*
 * Fuzz target for the Dutch text analysis: any bytes are either refused as invalid UTF-8 or give
 * terms that are non-empty, at most OV_TEXT_TERM_MAX bytes, without separators, with positions
 * that never go back; analysing the same text twice gives the same terms, and an analyser without
 * a memo of words gives them too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t digest;
    uint32_t last_position;
    int count;
} terms;

static int check_term(void *ctx, const char *term, size_t len, uint32_t position)
{
    terms *t = ctx;
    if (len == 0 || len > OV_TEXT_TERM_MAX || strlen(term) != len)
        abort();
    if (t->count > 0 && position <= t->last_position)
        abort();
    for (size_t i = 0; i < len; i++) {
        if (term[i] == ' ' || term[i] == '\t' || term[i] == '\n' || term[i] == ',')
            abort();
        t->digest = (t->digest ^ (uint8_t)term[i]) * 1099511628211u;
    }
    t->digest = (t->digest ^ position) * 1099511628211u;
    t->last_position = position;
    t->count++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ov_text *text, *plain;
    if (!text && ov_text_new(&text) != 0)
        abort();
    if (!plain && ov_text_new_memo(&plain, 0) != 0)
        abort();
    terms first = {14695981039346656037u, 0, 0}, second = first, third = first;
    int rc = ov_text_analyse(text, (const char *)data, size, check_term, &first);
    int rc2 = ov_text_analyse(text, (const char *)data, size, check_term, &second);
    if (rc != rc2 || first.digest != second.digest || first.count != second.count)
        abort();
    int rc3 = ov_text_analyse(plain, (const char *)data, size, check_term, &third);
    if (rc != rc3 || first.digest != third.digest || first.count != third.count)
        abort();
    char word[OV_TEXT_TERM_MAX + 1];
    int n = ov_text_fold_word((const char *)data, size, word);
    if (n > OV_TEXT_TERM_MAX || (n >= 0 && strlen(word) != (size_t)n))
        abort();
    return 0;
}
