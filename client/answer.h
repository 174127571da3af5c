/*
 * The frames of a pull answer (docs/protocol.md §9.1): length(4, big-endian) ‖ one message,
 * repeated: ENTRIES runs, then exactly one closing SUMMARY, last. Pure code over the answer's
 * bytes, shared by the client's pull and its fuzz target; messages decode without copies
 * (proto/sync.h), so they point into the answer.
 */
#ifndef OLV_ANSWER_H
#define OLV_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/sync.h"

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t offset;
    int saw_summary;
    int shallow;
} olv_answer_reader;

void olv_answer_begin(olv_answer_reader *reader, const void *data, size_t len);
/* As olv_answer_begin, for a reader whose ENTRIES messages come from ov_sync_decode_shallow:
 * their headers only, to see where an answer ends before it is checked. */
void olv_answer_begin_shallow(olv_answer_reader *reader, const void *data, size_t len);
/* 1 with the next message in *msg; 0 at the end of a well-formed answer (its closing SUMMARY
 * was the last frame); OV_EPARSE for a frame that does not fit or decode, a message of another
 * type, anything after the SUMMARY, or an answer that ends without one. */
int olv_answer_next(olv_answer_reader *reader, ov_sync_message *msg);

#endif
