/*
 * Dutch text analysis (see text.h). Normalisation is utf8proc's and stemming is libstemmer's
 * Snowball Dutch algorithm; what is written here is the glue no library provides for Dutch in C:
 * splitting into words, the stopword list, the final v/z of stems and the cut at
 * OV_TEXT_TERM_MAX.
 */
#include "proto/text.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "proto/buf.h"
#include "proto/error.h"

/* The memo of word -> term. A corpus uses few distinct words many times over, and a word's term
 * depends on its folded bytes alone, so an analyser remembers the terms it made instead of
 * stemming the same word again: the stemmer and the stopword search were most of the cost of
 * analysis. One entry is one cache line: the word's bytes followed by its term's. A word whose
 * bytes and term's do not fit (long compounds, cut words) is analysed each time. */
#define MEMO_BYTES     58
#define MEMO_NO_TERM   UINT8_MAX /* term_len of a word that gives no term (a stopword) */
#define MEMO_FIRST_CAP 64        /* entries before the first growth: most analysers see few words */

typedef struct {
    uint32_t hash;
    uint8_t key_len, term_len;
    char bytes[MEMO_BYTES]; /* key_len bytes of the word, then term_len bytes of its term */
} memo_entry;

struct ov_text {
    struct sb_stemmer *stemmer;
    /* Open addressing over a dense entry array: slots hold index + 1 (0 empty) and there are
     * always twice as many slots as entries can be, so probes stay short. It grows by doubling
     * up to memo_max entries and, full, starts again empty: bounded memory, and a vocabulary that
     * drifts (one source after another) is learnt anew instead of missing forever. */
    memo_entry *memo;
    uint32_t *memo_slots;
    size_t memo_count, memo_cap, memo_max, memo_mask; /* mask: slots - 1, a power of two */
};

/* The Snowball project's Dutch stopword list, sorted for bsearch. */
static const char *const stopwords[] = {
    "aan",    "al",    "alles",  "als",    "altijd", "andere", "ben",   "bij",   "daar",
    "dan",    "dat",   "de",     "der",    "deze",   "die",    "dit",   "doch",  "doen",
    "door",   "dus",   "een",    "eens",   "en",     "er",     "ge",    "geen",  "geweest",
    "haar",   "had",   "heb",    "hebben", "heeft",  "hem",    "het",   "hier",  "hij",
    "hoe",    "hun",   "iemand", "iets",   "ik",     "in",     "is",    "ja",    "je",
    "kan",    "kon",   "kunnen", "maar",   "me",     "meer",   "men",   "met",   "mij",
    "mijn",   "moet",  "na",     "naar",   "niet",   "niets",  "nog",   "nu",    "of",
    "om",     "omdat", "onder",  "ons",    "ook",    "op",     "over",  "reeds", "te",
    "tegen",  "toch",  "toen",   "tot",    "u",      "uit",    "uw",    "van",   "veel",
    "voor",   "want",  "waren",  "was",    "wat",    "werd",   "wezen", "wie",   "wil",
    "worden", "wordt", "zal",    "ze",     "zelf",   "zich",   "zij",   "zijn",  "zo",
    "zonder", "zou",
};

static int compare_word(const void *key, const void *item)
{
    return strcmp(key, *(const char *const *)item);
}

int ov_text_is_stopword(const char *word, size_t len)
{
    char copy[16];
    if (len == 0 || len >= sizeof copy)
        return 0;
    memcpy(copy, word, len);
    copy[len] = '\0';
    return bsearch(copy, stopwords, sizeof stopwords / sizeof *stopwords, sizeof *stopwords,
                   compare_word) != NULL;
}

int ov_text_new(ov_text **out)
{
    return ov_text_new_memo(out, OV_TEXT_MEMO_WORDS);
}

int ov_text_new_memo(ov_text **out, size_t memo_words)
{
    *out = NULL;
    ov_text *text = calloc(1, sizeof *text);
    if (!text)
        return OV_ENOMEM;
    text->memo_max = memo_words < UINT32_MAX / 2 ? memo_words : UINT32_MAX / 2;
    text->stemmer = sb_stemmer_new("dutch", "UTF_8");
    if (!text->stemmer) {
        free(text);
        return OV_ENOMEM;
    }
    *out = text;
    return OV_OK;
}

void ov_text_free(ov_text *text)
{
    if (!text)
        return;
    sb_stemmer_delete(text->stemmer);
    free(text->memo);
    free(text->memo_slots);
    free(text);
}

/* Step 1: a new folded copy of the text (caller frees), or NULL with *rc set. */
static char *fold(const char *utf8, size_t len, int *rc)
{
    if (memchr(utf8, '\0', len)) { /* no text of a record holds NUL (canon.h refuses it) */
        *rc = OV_EINVAL;
        return NULL;
    }
    /* Plain ASCII, most Dutch text: the options below then only lower-case A-Z (case folding;
     * ASCII has no marks, nothing to lump or compose, no unassigned code points), so do just that
     * instead of decomposing every character. */
    size_t ascii = 0;
    while (ascii < len && (unsigned char)utf8[ascii] < 0x80)
        ascii++;
    if (ascii == len) {
        char *out = malloc(len + 1);
        if (!out) {
            *rc = OV_ENOMEM;
            return NULL;
        }
        for (size_t i = 0; i < len; i++)
            out[i] = utf8[i] >= 'A' && utf8[i] <= 'Z' ? (char)(utf8[i] + ('a' - 'A')) : utf8[i];
        out[len] = '\0';
        *rc = OV_OK;
        return out;
    }
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)utf8, (utf8proc_ssize_t)len, &folded,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK |
                         UTF8PROC_LUMP | UTF8PROC_REJECTNA);
    if (n < 0) {
        *rc = n == UTF8PROC_ERROR_NOMEM ? OV_ENOMEM : OV_EINVAL;
        return NULL;
    }
    *rc = OV_OK;
    return (char *)folded;
}

static int is_word_char(utf8proc_int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

/* The length of the longest prefix of word (len bytes) that is at most max bytes and ends on a
 * code point boundary. */
static size_t cut(const char *word, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)word[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Calls fn with each word of folded text (start, length, position). */
typedef int (*word_fn)(void *ctx, const char *word, size_t len, uint32_t position);

static int each_word(const char *folded, word_fn fn, void *ctx)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)folded;
    size_t len = strlen(folded), i = 0, start = 0;
    int in_word = 0;
    uint32_t position = 0;
    while (i <= len) {
        utf8proc_int32_t c = 0;
        utf8proc_ssize_t n = 1;
        int word_char = 0;
        if (i < len && p[i] < 0x80) { /* ASCII: letters and digits are the word characters */
            c = p[i];
            word_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        } else if (i < len) {
            n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
            if (n <= 0)
                return OV_EINVAL; /* cannot happen after utf8proc_map, but never loop */
            word_char = is_word_char(c);
        }
        if (word_char && !in_word) {
            start = i;
            in_word = 1;
        } else if (!word_char && in_word) {
            int rc = fn(ctx, folded + start, i - start, position++);
            if (rc)
                return rc;
            in_word = 0;
        }
        i += (size_t)n;
    }
    return OV_OK;
}

typedef struct {
    ov_text *text;
    ov_text_term_fn fn;
    ov_text_span_fn span_fn;
    void *ctx;
    size_t start, end; /* of the current word in the original, for span_fn */
} analyse_ctx;

static const memo_entry *memo_find(const ov_text *text, const char *word, size_t len, uint32_t hash)
{
    if (!text->memo_count)
        return NULL;
    size_t mask = text->memo_mask;
    for (size_t s = hash & mask; text->memo_slots[s]; s = (s + 1) & mask) {
        const memo_entry *e = &text->memo[text->memo_slots[s] - 1];
        if (e->hash == hash && e->key_len == len && !memcmp(e->bytes, word, len))
            return e;
    }
    return NULL;
}

/* Makes room for one more entry: grows, or empties a full memo. 0 when there is no room (no memo,
 * or no memory: the word is then simply not remembered). */
static int memo_room(ov_text *text)
{
    if (text->memo_count < text->memo_cap)
        return 1;
    if (text->memo_cap >= text->memo_max) {
        if (!text->memo_cap)
            return 0;
        text->memo_count = 0;
        memset(text->memo_slots, 0, (text->memo_mask + 1) * sizeof *text->memo_slots);
        return 1;
    }
    size_t cap = text->memo_cap ? text->memo_cap * 2 : MEMO_FIRST_CAP;
    if (cap > text->memo_max)
        cap = text->memo_max;
    memo_entry *memo = realloc(text->memo, cap * sizeof *memo);
    if (!memo)
        return 0;
    text->memo = memo;
    size_t slot_count = 1;
    while (slot_count < 2 * cap)
        slot_count *= 2;
    uint32_t *slots = calloc(slot_count, sizeof *slots);
    if (!slots)
        return 0; /* the entries stay usable with the old slots */
    size_t mask = slot_count - 1;
    for (size_t i = 0; i < text->memo_count; i++) {
        size_t s = text->memo[i].hash & mask;
        while (slots[s])
            s = (s + 1) & mask;
        slots[s] = (uint32_t)i + 1;
    }
    free(text->memo_slots);
    text->memo_slots = slots;
    text->memo_cap = cap;
    text->memo_mask = mask;
    return 1;
}

static void memo_add(ov_text *text, const char *word, size_t len, uint32_t hash, const char *term,
                     int term_len)
{
    size_t stored = term_len < 0 ? 0 : (size_t)term_len;
    if (len + stored > MEMO_BYTES || !memo_room(text))
        return;
    memo_entry *e = &text->memo[text->memo_count];
    e->hash = hash;
    e->key_len = (uint8_t)len;
    e->term_len = term_len < 0 ? MEMO_NO_TERM : (uint8_t)term_len;
    memcpy(e->bytes, word, len);
    memcpy(e->bytes + len, term, stored);
    size_t mask = text->memo_mask, s = hash & mask;
    while (text->memo_slots[s])
        s = (s + 1) & mask;
    text->memo_slots[s] = (uint32_t)++text->memo_count;
}

/* The term of one folded word (more than one letter) into term, NUL-terminated, and its length
 * into *term_len (-1 for a stopword, which gives none). Errors: OV_ENOMEM. */
static int term_of_word(ov_text *text, const char *word, size_t len,
                        char term[OV_TEXT_TERM_MAX + 1], int *term_len)
{
    *term_len = -1;
    if (ov_text_is_stopword(word, len))
        return OV_OK;
    len = cut(word, len, OV_TEXT_TERM_MAX);
    const sb_symbol *stem = sb_stemmer_stem(text->stemmer, (const sb_symbol *)word, (int)len);
    if (!stem)
        return OV_ENOMEM;
    int stem_len = sb_stemmer_length(text->stemmer);
    size_t n = cut((const char *)stem, (size_t)stem_len, OV_TEXT_TERM_MAX);
    memcpy(term, stem, n);
    term[n] = '\0';
    /* Dutch spells a final v and z as f and s ("creatieve" / "creatief", "huizen" / "huis"); the
     * Snowball stemmer of libstemmer 2.2 leaves "creatiev" and "huiz". Folding the last letter
     * makes the forms meet, as the Kraaij-Pohlmann stemmer does. */
    if (n > 1 && term[n - 1] == 'v')
        term[n - 1] = 'f';
    else if (n > 1 && term[n - 1] == 'z')
        term[n - 1] = 's';
    *term_len = (int)n;
    return OV_OK;
}

static int analyse_word(void *arg, const char *word, size_t len, uint32_t position)
{
    analyse_ctx *a = arg;
    /* One letter carries no meaning in Dutch text ("s" of "auto's", "n" of "zo'n"). */
    if (len == 1 && !(word[0] >= '0' && word[0] <= '9'))
        return 0;
    char term[OV_TEXT_TERM_MAX + 1];
    int n;
    uint32_t hash = ov_hash_bytes(word, len);
    const memo_entry *e = memo_find(a->text, word, len, hash);
    if (e) {
        n = e->term_len == MEMO_NO_TERM ? -1 : e->term_len;
        if (n >= 0) {
            memcpy(term, e->bytes + e->key_len, (size_t)n);
            term[n] = '\0';
        }
    } else {
        int rc = term_of_word(a->text, word, len, term, &n);
        if (rc)
            return rc;
        memo_add(a->text, word, len, hash, term, n);
    }
    if (n < 0)
        return 0;
    if (a->span_fn)
        return a->span_fn(a->ctx, term, (size_t)n, position, a->start, a->end);
    return a->fn(a->ctx, term, (size_t)n, position);
}

int ov_text_analyse(ov_text *text, const char *utf8, size_t len, ov_text_term_fn fn, void *ctx)
{
    int rc;
    char *folded = fold(utf8, len, &rc);
    if (!folded)
        return rc;
    analyse_ctx a = {text, fn, NULL, ctx, 0, 0};
    rc = each_word(folded, analyse_word, &a);
    free(folded);
    return rc;
}

int ov_text_analyse_spans(ov_text *text, const char *utf8, size_t len, ov_text_span_fn fn,
                          void *ctx)
{
    if (memchr(utf8, '\0', len))
        return OV_EINVAL;
    analyse_ctx a = {text, NULL, fn, ctx, 0, 0};
    /* A word is folded into word[]; a longer one is cut (as ov_text_analyse's cut would). */
    char word[4 * OV_TEXT_TERM_MAX + 8];
    size_t word_len = 0, i = 0;
    int in_word = 0;
    uint32_t position = 0;
    utf8proc_int32_t last_boundclass = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)utf8;
    while (i <= len) {
        utf8proc_int32_t c = 0, folded[8];
        utf8proc_ssize_t n = 1, count = 0;
        if (i < len) {
            n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
            if (n <= 0)
                return OV_EINVAL;
            count =
                utf8proc_decompose_char(c, folded, 8,
                                        UTF8PROC_DECOMPOSE | UTF8PROC_CASEFOLD |
                                            UTF8PROC_STRIPMARK | UTF8PROC_LUMP | UTF8PROC_REJECTNA,
                                        &last_boundclass);
            if (count < 0 || count > 8)
                return OV_EINVAL;
        }
        if (i < len && count == 0) { /* a stripped mark: part of the word it follows */
            if (in_word)
                a.end = i + (size_t)n;
            i += (size_t)n;
            continue;
        }
        for (utf8proc_ssize_t k = 0; k <= count; k++) {
            int word_char = k < count && is_word_char(folded[k]);
            if (k == count && i < len)
                break; /* the end of this code point's letters is not the end of the word */
            if (word_char) {
                if (!in_word) {
                    in_word = 1;
                    word_len = 0;
                    a.start = i;
                }
                if (word_len + 4 < sizeof word)
                    word_len += (size_t)utf8proc_encode_char(folded[k],
                                                             (utf8proc_uint8_t *)word + word_len);
                a.end = i + (size_t)n;
            } else if (in_word) {
                in_word = 0;
                int rc = analyse_word(&a, word, word_len, position++);
                if (rc)
                    return rc;
            }
        }
        i += (size_t)n;
    }
    return OV_OK;
}

typedef struct {
    char *out;
    size_t len;
} first_word;

static int take_first(void *arg, const char *word, size_t len, uint32_t position)
{
    (void)position;
    first_word *f = arg;
    f->len = cut(word, len, OV_TEXT_TERM_MAX);
    memcpy(f->out, word, f->len);
    f->out[f->len] = '\0';
    return 1; /* stop after the first */
}

int ov_text_fold_word(const char *utf8, size_t len, char out[OV_TEXT_TERM_MAX + 1])
{
    int rc;
    out[0] = '\0';
    char *folded = fold(utf8, len, &rc);
    if (!folded)
        return rc;
    first_word f = {out, 0};
    rc = each_word(folded, take_first, &f);
    free(folded);
    if (rc < 0)
        return rc;
    return (int)f.len;
}
