/*
 * Fuzz target for the offline client's reading of a pull answer (docs/protocol.md §9.1):
 * arbitrary bytes as the body of a POST /api/v1/sync answer. The walk must stay inside the
 * bytes, end exactly at their end when it reports a well-formed answer (its closing SUMMARY
 * last), and every run in it must get a defined answer from the run check the client applies.
 * A violation aborts so the fuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "client/answer.h"
#include "proto/error.h"
#include "proto/sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    olv_answer_reader reader;
    ov_sync_message msg;
    olv_answer_begin(&reader, data, size);
    int rc, summaries = 0;
    while ((rc = olv_answer_next(&reader, &msg)) == 1) {
        if (reader.offset > size)
            abort();
        if (msg.type == OV_SYNC_SUMMARY) {
            summaries++;
        } else if (msg.type == OV_SYNC_ENTRIES) {
            if (summaries)
                abort(); /* runs after the closing summary must not be handed out */
            ov_log_entry first;
            int check = ov_sync_run_check(&msg.u.run, &first);
            if (check != OV_OK && check != OV_EBADSIG && check != OV_ECHAIN && check != OV_ESCHEMA)
                abort();
        } else {
            abort();
        }
    }
    if (rc == 0 && (reader.offset != size || summaries != 1))
        abort();
    if (rc != 0 && rc != OV_EPARSE)
        abort();
    return 0;
}
