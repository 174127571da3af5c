/*
 * Dutch text analysis, shared by the node's search index, live search subscriptions and the
 * offline client, so that a word is the same term everywhere.
 *
 * A text becomes terms in four steps:
 *   1. Unicode normalisation with case folding and diacritics removed (utf8proc: NFC, case fold,
 *      strip marks, lump look-alike punctuation): "Creëren" and "creeren" meet.
 *   2. Words are runs of letters and digits; everything else separates them (so "auto's" is
 *      "auto" + "s", and "e-mail" is "e" + "mail").
 *   3. Stopwords (the Snowball Dutch list: "de", "het", "een", "van", …) and one-letter words are
 *      dropped; their positions still count, so phrase matching sees the gap.
 *   4. The Snowball Dutch stemmer (libstemmer), with a final v or z of the stem written f or s:
 *      "samenwerkingen" and "samenwerking" both become "samenwerk"; "creatieve" and "creatief"
 *      both "creatief"; "huizen" and "huis" both "huis".
 * Words longer than OV_TEXT_TERM_MAX bytes are cut there before stemming.
 */
#ifndef OV_TEXT_H
#define OV_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define OV_TEXT_TERM_MAX   64   /* bytes of one term */
#define OV_TEXT_MEMO_WORDS 8192 /* words an analyser of ov_text_new remembers the terms of */

typedef struct ov_text ov_text;

/* An analyser. It holds a stemmer with internal state and a memo of the terms of words it has
 * met: one thread at a time per analyser. Errors: OV_ENOMEM. *out is owned by the caller
 * (ov_text_free). */
int ov_text_new(ov_text **out);
/* As ov_text_new, remembering the terms of up to memo_words distinct words (0: none) so that a
 * word met again is not stemmed again; the terms are the same either way. The memo grows as words
 * come (about 72 bytes a word) and, full, starts again empty. */
int ov_text_new_memo(ov_text **out, size_t memo_words);
void ov_text_free(ov_text *text);

/* Called for each term in order: the term (NUL-terminated, valid until the call returns), its
 * length, and its word position (0-based; stopwords take positions too). Return 0 to go on,
 * non-zero to stop (ov_text_analyse then returns that value). */
typedef int (*ov_text_term_fn)(void *ctx, const char *term, size_t len, uint32_t position);

/* Analyses len bytes of UTF-8. Errors: OV_EINVAL (not valid UTF-8), OV_ENOMEM, or fn's value. */
int ov_text_analyse(ov_text *text, const char *utf8, size_t len, ov_text_term_fn fn, void *ctx);

/* As ov_text_analyse, and also tells where each term's word is in the original text: bytes
 * [start, end) of utf8. Words are folded one code point at a time here, so for scripts whose
 * letters compose after folding (not Latin) a term can differ from ov_text_analyse's; use it to
 * show matches (snippets), not to index. */
typedef int (*ov_text_span_fn)(void *ctx, const char *term, size_t len, uint32_t position,
                               size_t start, size_t end);
int ov_text_analyse_spans(ov_text *text, const char *utf8, size_t len, ov_text_span_fn fn,
                          void *ctx);

/* The term of one word as a query would use it, without stemming (for prefix matching while
 * typing: "samenw" must find "samenwerking"): folded like step 1, into out (NUL-terminated).
 * Returns the length, 0 for no word, or OV_EINVAL / OV_ENOMEM (negative). */
int ov_text_fold_word(const char *utf8, size_t len, char out[OV_TEXT_TERM_MAX + 1]);

/* True for a Dutch stopword (already folded, lower case). */
int ov_text_is_stopword(const char *word, size_t len);

#endif
