/*
 * Walking a pull answer's frames; see answer.h.
 */
#include "client/answer.h"

#include "proto/buf.h"
#include "proto/error.h"

void olv_answer_begin(olv_answer_reader *reader, const void *data, size_t len)
{
    *reader = (olv_answer_reader){data, len, 0, 0, 0};
}

void olv_answer_begin_shallow(olv_answer_reader *reader, const void *data, size_t len)
{
    *reader = (olv_answer_reader){data, len, 0, 0, 1};
}

int olv_answer_next(olv_answer_reader *reader, ov_sync_message *msg)
{
    size_t left = reader->len - reader->offset;
    if (left == 0)
        return reader->saw_summary ? 0 : OV_EPARSE;
    if (reader->saw_summary || left < 4)
        return OV_EPARSE;
    uint32_t len = ov_be32_get(reader->data + reader->offset);
    if (len > left - 4)
        return OV_EPARSE;
    const uint8_t *frame = reader->data + reader->offset + 4;
    int rc =
        reader->shallow ? ov_sync_decode_shallow(frame, len, msg) : ov_sync_decode(frame, len, msg);
    if (rc != OV_OK || (msg->type != OV_SYNC_ENTRIES && msg->type != OV_SYNC_SUMMARY))
        return OV_EPARSE;
    reader->offset += 4 + (size_t)len;
    if (msg->type == OV_SYNC_SUMMARY)
        reader->saw_summary = 1;
    return 1;
}
