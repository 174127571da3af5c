/* Dutch text analysis: folding, words, stopwords, stemming, positions, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/error.h"
#include "proto/text.h"

typedef struct {
    char joined[1024]; /* "term@position term@position …" */
    int count;
} collected;

static int collect(void *ctx, const char *term, size_t len, uint32_t position)
{
    collected *c = ctx;
    size_t used = strlen(c->joined);
    snprintf(c->joined + used, sizeof c->joined - used, "%s%.*s@%u", c->count ? " " : "", (int)len,
             term, position);
    c->count++;
    return 0;
}

static const char *analyse(ov_text *text, const char *input, collected *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(ov_text_analyse(text, input, strlen(input), collect, c), OV_OK);
    return c->joined;
}

static int setup(void **state)
{
    ov_text *text = NULL;
    assert_int_equal(ov_text_new(&text), OV_OK);
    *state = text;
    return 0;
}

static int teardown(void **state)
{
    ov_text_free(*state);
    return 0;
}

/* The forms the search issue's relevance cases depend on meet in one term. */
static void test_word_forms_meet(void **state)
{
    ov_text *text = *state;
    collected a, b;
    static const char *pairs[][2] = {
        {"samenwerkingen", "samenwerking"},
        {"creatieve", "creatief"},
        {"thuiszitters", "thuiszitter"},
        {"Creëren", "creeren"},
        {"VERZUIM", "verzuim"},
        {"tussenjaren", "tussenjaar"},
        {"huizen", "huis"},
        {"scholen", "school"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        analyse(text, pairs[i][0], &a);
        analyse(text, pairs[i][1], &b);
        assert_int_equal(a.count, 1);
        assert_string_equal(a.joined, b.joined);
    }
}

static void test_stopwords_keep_positions(void **state)
{
    ov_text *text = *state;
    collected c;
    /* "het", "van", "de" are stopwords; "s" (of "leerling's") is one letter. Positions still
     * count them, so a phrase query sees the gaps. */
    assert_string_equal(analyse(text, "het intermezzo van de school", &c), "intermezzo@1 schol@4");
    analyse(text, "Het tussenjaar: een jaar voor jezelf!", &c);
    assert_int_equal(c.count, 3);
    assert_non_null(strstr(c.joined, "@1"));
    /* The list is searched by bisection: words from both ends and the middle are found. */
    static const char *const listed[] = {"aan",   "al",     "hebben", "heeft", "me", "meer",
                                         "wordt", "worden", "zij",    "zijn",  "zo", "zou"};
    for (size_t i = 0; i < sizeof listed / sizeof *listed; i++)
        assert_true(ov_text_is_stopword(listed[i], strlen(listed[i])));
    assert_true(ov_text_is_stopword("een", 3));
    assert_false(ov_text_is_stopword("eenheid", 7));
}

static void test_separators_and_digits(void **state)
{
    ov_text *text = *state;
    collected c;
    assert_string_equal(analyse(text, "auto's, e-mail/2024", &c), "auto@0 mail@3 2024@4");
    assert_string_equal(analyse(text, "7 bouwstenen", &c), "7@0 bouwsten@1");
    assert_string_equal(analyse(text, "   \n\t ", &c), "");
}

static void test_limits_and_bad_input(void **state)
{
    ov_text *text = *state;
    char long_word[300];
    memset(long_word, 'x', sizeof long_word - 1);
    long_word[sizeof long_word - 1] = '\0';
    collected c;
    analyse(text, long_word, &c);
    assert_int_equal(c.count, 1);
    assert_true(strlen(c.joined) <= OV_TEXT_TERM_MAX + 2); /* term plus "@0" */
    /* A cut never splits a multi-byte character: 100 × "ë" folds to "e", 200 × "€" stays. */
    char euros[3 * 100 + 1] = "";
    for (int i = 0; i < 100; i++)
        strcat(euros, "\xe2\x82\xac");
    memset(&c, 0, sizeof c);
    assert_int_equal(ov_text_analyse(text, euros, strlen(euros), collect, &c), OV_OK);
    assert_int_equal(ov_text_analyse(text, "bad \xc3\x28", 6, collect, &c), OV_EINVAL);
    assert_int_equal(ov_text_analyse(text, "nul\0byte", 8, collect, &c), OV_EINVAL);
}

static int stop_after_first(void *ctx, const char *term, size_t len, uint32_t position)
{
    (void)term, (void)len, (void)position;
    ++*(int *)ctx;
    return 7;
}

static void test_callback_stops(void **state)
{
    int calls = 0;
    assert_int_equal(ov_text_analyse(*state, "een twee drie", 13, stop_after_first, &calls), 7);
    assert_int_equal(calls, 1);
}

typedef struct {
    collected terms;
    const char *input;
    char words[1024]; /* the original bytes of each span, "|"-separated */
} spanned;

static int collect_span(void *ctx, const char *term, size_t len, uint32_t position, size_t start,
                        size_t end)
{
    spanned *s = ctx;
    size_t used = strlen(s->words);
    snprintf(s->words + used, sizeof s->words - used, "%s%.*s", s->terms.count ? "|" : "",
             (int)(end - start), s->input + start);
    return collect(&s->terms, term, len, position);
}

/* Spans give the same terms and positions as the analysis itself, and point at the original
 * words, capitals, diacritics and all: what snippets mark. */
static void test_spans_point_at_original_words(void **state)
{
    const char *input = "Creëren en SAMENWERKEN: de leerlingen van 't Brede-Brugklas hebben "
                        "cafe\xcc\x81"
                        " idee\xc3\xab"
                        "n (auto's).";
    collected plain;
    analyse(*state, input, &plain);
    spanned s;
    memset(&s, 0, sizeof s);
    s.input = input;
    assert_int_equal(ov_text_analyse_spans(*state, input, strlen(input), collect_span, &s), OV_OK);
    assert_string_equal(s.terms.joined, plain.joined);
    assert_string_equal(s.words, "Creëren|SAMENWERKEN|leerlingen|Brede|Brugklas|cafe\xcc\x81|"
                                 "idee\xc3\xab"
                                 "n|auto");
    assert_int_equal(ov_text_analyse_spans(*state, "\xff", 1, collect_span, &s), OV_EINVAL);
}

static void test_fold_word_for_prefixes(void **state)
{
    (void)state;
    char word[OV_TEXT_TERM_MAX + 1];
    assert_int_equal(ov_text_fold_word("Samenw", 6, word), 6);
    assert_string_equal(word, "samenw"); /* not stemmed: a prefix of "samenwerking" */
    assert_int_equal(ov_text_fold_word("  Één!", 7, word), 3);
    assert_string_equal(word, "een");
    assert_int_equal(ov_text_fold_word("...", 3, word), 0);
    assert_int_equal(ov_text_fold_word("\xff", 1, word), OV_EINVAL);
}

/* Plain ASCII text takes a short path (lower-casing only); it must give the terms the full
 * Unicode folding gives. A trailing "é" sends the same text down the full path and adds nothing
 * (one letter is no term), so both analyses must be equal. */
static unsigned next_random(unsigned *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_ascii_path_equals_full_folding(void **state)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'\"!?-_()[]{}/\\@#\t\n";
    unsigned seed = 20261201;
    for (int round = 0; round < 2000; round++) {
        char input[200], slow[210];
        size_t len = 1 + (size_t)(next_random(&seed) % 150);
        for (size_t i = 0; i < len; i++)
            input[i] = alphabet[next_random(&seed) % (sizeof alphabet - 1)];
        input[len] = '\0';
        snprintf(slow, sizeof slow, "%s \xc3\xa9", input);
        collected fast_terms, slow_terms;
        analyse(*state, input, &fast_terms);
        analyse(*state, slow, &slow_terms);
        if (strcmp(fast_terms.joined, slow_terms.joined) != 0)
            fail_msg("'%s': '%s' against '%s'", input, fast_terms.joined, slow_terms.joined);
    }
    collected c;
    assert_string_equal(analyse(*state, "Samenwerkingen IN DE Regio", &c),
                        analyse(*state, "samenwerkingen in de regio", &(collected){0}));
}

/* The memo of word -> term gives the terms the analysis gives without it: on text with capitals,
 * diacritics (composed and combining), stopwords, one-letter words, digits, words too long for a
 * memo entry and words longer than a term, and with memos so small they fill up and start again
 * many times over. */
typedef struct {
    char joined[16384];
    size_t used;
} long_collected;

static int collect_long(void *ctx, const char *term, size_t len, uint32_t position)
{
    long_collected *c = ctx;
    int n = snprintf(c->joined + c->used, sizeof c->joined - c->used, "%.*s@%u ", (int)len, term,
                     position);
    assert_true(n > 0 && (size_t)n < sizeof c->joined - c->used);
    c->used += (size_t)n;
    return 0;
}

static int collect_long_span(void *ctx, const char *term, size_t len, uint32_t position,
                             size_t start, size_t end)
{
    long_collected *c = ctx;
    int n = snprintf(c->joined + c->used, sizeof c->joined - c->used, "[%zu,%zu)", start, end);
    assert_true(n > 0 && (size_t)n < sizeof c->joined - c->used);
    c->used += (size_t)n;
    return collect_long(ctx, term, len, position);
}

static void analyse_both_ways(ov_text *text, const char *input, long_collected *terms,
                              long_collected *spans)
{
    memset(terms, 0, sizeof *terms);
    memset(spans, 0, sizeof *spans);
    assert_int_equal(ov_text_analyse(text, input, strlen(input), collect_long, terms), OV_OK);
    assert_int_equal(ov_text_analyse_spans(text, input, strlen(input), collect_long_span, spans),
                     OV_OK);
}

static void test_memo_gives_the_same_terms(void **state)
{
    (void)state;
    static const char *const words[] = {
        "samenwerkingen",
        "Samenwerking",
        "SAMENWERKING",
        "creatieve",
        "creatief",
        "Creëren",
        "cree\xcc\x88ren",
        "ideeën",
        "financiële",
        "één",
        "Één",
        "café",
        "cafe\xcc\x81",
        "huizen",
        "huis",
        "scholen",
        "thuiszitters",
        "leerlingen",
        "de",
        "het",
        "een",
        "van",
        "zijn",
        "Zij",
        "DE",
        "Het",
        "niet",
        "s",
        "n",
        "7",
        "2024",
        "e-mail",
        "auto's",
        "zo'n",
        "naïef",
        "reünie",
        "coöperatie",
        "Noorderzijlvest",
        "arbeidsongeschiktheidsverzekeringen",
        "kinderopvangtoeslagaanvraagformulieren", /* word and term beyond an entry's bytes */
        "hoogwaterbeschermingsprogrammaonderzoeksresultatenoverzichtsrapportages", /* > a term */
        "€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€",
        "ĳsvogel",
        "IJsselmeer",
        "straße",
        "Œuvre",
    };
    static const char *const separators[] = {" ", "  ", ", ", ". ", "\n", " – ", "/", ": ", "!"};
    ov_text *plain = NULL, *memo = NULL, *tiny = NULL, *single = NULL;
    assert_int_equal(ov_text_new_memo(&plain, 0), OV_OK);
    assert_int_equal(ov_text_new(&memo), OV_OK);
    assert_int_equal(ov_text_new_memo(&tiny, 5), OV_OK);
    assert_int_equal(ov_text_new_memo(&single, 1), OV_OK);
    ov_text *const memoised[] = {memo, tiny, single};
    unsigned seed = 20261202;
    for (int round = 0; round < 3000; round++) {
        char input[4096];
        size_t len = 0;
        int count = 1 + (int)(next_random(&seed) % 40);
        for (int i = 0; i < count; i++) {
            const char *word = words[next_random(&seed) % (sizeof words / sizeof *words)];
            const char *sep =
                separators[next_random(&seed) % (sizeof separators / sizeof *separators)];
            /* Now and then a word of its own (a number, a made-up compound): the small memos
             * keep meeting words they do not hold. */
            char made[64];
            if (next_random(&seed) % 8 == 0) {
                snprintf(made, sizeof made, "%s%u", word, next_random(&seed) % 1000);
                word = made;
            }
            len += (size_t)snprintf(input + len, sizeof input - len, "%s%s", i ? sep : "", word);
            assert_true(len < sizeof input);
        }
        long_collected expected_terms, expected_spans, terms, spans;
        analyse_both_ways(plain, input, &expected_terms, &expected_spans);
        for (size_t m = 0; m < sizeof memoised / sizeof *memoised; m++) {
            for (int pass = 0; pass < 2; pass++) { /* the second pass finds the words remembered */
                analyse_both_ways(memoised[m], input, &terms, &spans);
                if (strcmp(terms.joined, expected_terms.joined) != 0)
                    fail_msg("'%s': '%s' against '%s'", input, terms.joined, expected_terms.joined);
                if (strcmp(spans.joined, expected_spans.joined) != 0)
                    fail_msg("'%s': '%s' against '%s'", input, spans.joined, expected_spans.joined);
            }
        }
    }
    /* Words one after another, each new: a memo that fills up and starts again. */
    for (int i = 0; i < 20000; i++) {
        char input[64];
        snprintf(input, sizeof input, "Samenwerkingsverband%d ideeën %d", i, i % 97);
        long_collected expected_terms, expected_spans, terms, spans;
        analyse_both_ways(plain, input, &expected_terms, &expected_spans);
        for (size_t m = 0; m < sizeof memoised / sizeof *memoised; m++) {
            analyse_both_ways(memoised[m], input, &terms, &spans);
            assert_string_equal(terms.joined, expected_terms.joined);
            assert_string_equal(spans.joined, expected_spans.joined);
        }
    }
    ov_text_free(plain);
    ov_text_free(memo);
    ov_text_free(tiny);
    ov_text_free(single);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_word_forms_meet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ascii_path_equals_full_folding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopwords_keep_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_separators_and_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_stops, setup, teardown),
        cmocka_unit_test(test_fold_word_for_prefixes),
        cmocka_unit_test_setup_teardown(test_spans_point_at_original_words, setup, teardown),
        cmocka_unit_test(test_memo_gives_the_same_terms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
