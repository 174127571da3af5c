/*
 * Fuzz target for the search query parser and the search itself: any bytes as a query, a cursor
 * and a text to find similar records for, against a small real store. Every answer must be valid
 * JSON whose hit count never exceeds the limit, or a clean OV_EINVAL with a detail.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/id.h"
#include "server/search.h"
#include "server/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ov_store *store;
static ov_search *search;
static ov_keypair *key;
static char dir[64];

static void cleanup(void)
{
    ov_search_free(search);
    ov_store_close(store);
    ov_keypair_free(key);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void open_once(void)
{
    if (store)
        return;
    strcpy(dir, "/tmp/ov-fuzz-search-XXXXXX");
    ov_store_options options = {dir, (size_t)64 << 20, NULL, 0};
    if (!mkdtemp(dir) || ov_keypair_generate(&key))
        abort();
    options.key = key;
    if (ov_store_open(&options, &store) || ov_search_new(store, &search))
        abort();
    static const char *const texts[][2] = {
        {"Een tussenjaar voor jonge leerlingen", "Jongeren krijgen een jaar met \"eigen\" vakken."},
        {"Verzuim vroeg zien", "Het hele team weet welke jongeren zorgwekkend verzuim hebben."},
        {"Samenwerking met het wijkteam", "Brede brugklassen en veel overleg met ouders."},
        {"Creëren en ontwerpen", "Leerlingen ontwerpen creatieve oplossingen, ook in het mbo."},
    };
    ov_id school;
    char school_text[OV_ID_CHARS + 1];
    ov_id_generate(&school, 1795000000000ULL);
    ov_id_format(&school, school_text);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        ov_write_op *op = ov_write_op_new(OV_WRITE_RECORD_CREATE);
        op->kind = OV_KIND_CASE;
        op->status = OV_STATUS_PUBLISHED;
        op->content = json_pack("{s:s, s:[s], s:s, s:s, s:[s]}", "title", texts[i][0], "schools",
                                school_text, "summary", texts[i][1], "phase", "adoptie", "themes",
                                i % 2 ? "verzuim" : "talent");
        if (ov_store_write_one(store, op))
            abort();
        ov_write_op_free(op);
    }
    atexit(cleanup);
}

static void run(ov_search_query *query)
{
    ov_read *read;
    if (ov_read_begin(store, &read))
        abort();
    ov_buf out;
    ov_buf_init(&out, 8u << 20);
    char detail[200];
    int rc = ov_search_run(search, read, query, &out, detail, sizeof detail);
    ov_read_end(read);
    if (rc == OV_OK) {
        json_t *answer = json_loadb(out.data, out.len, 0, NULL);
        if (!answer || json_array_size(json_object_get(answer, "hits")) > (size_t)query->limit)
            abort();
        json_decref(answer);
    } else if (rc != OV_EINVAL || !detail[0]) {
        abort();
    }
    ov_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_once();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ov_search_query query;
    memset(&query, 0, sizeof query);
    query.limit = 3;
    query.bouwsteen_min = 3;
    query.q = text;
    query.q_len = size;
    run(&query);
    query.q = "tussenjaar";
    query.q_len = strlen(query.q);
    query.cursor = text;
    run(&query);
    memset(&query, 0, sizeof query);
    query.limit = 2;
    query.bouwsteen_min = 1;
    query.similar = text;
    query.similar_len = size;
    run(&query);
    free(text);
    return 0;
}
