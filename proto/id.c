/*
 * Time-ordered 128-bit ids in Crockford base32 (see id.h). The random part comes from getrandom
 * so ids made on different nodes and clients never collide in practice (80 bits per millisecond).
 */
#include "proto/id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "proto/error.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Random bytes for ids, taken from getrandom() a block at a time: one system call per 25 ids
 * instead of one per id (it was 4 % of the writer's time). Per thread, so no locking. */
#define RANDOM_BLOCK 256
static _Thread_local uint8_t random_block[RANDOM_BLOCK];
static _Thread_local size_t random_left;

static int take_random(uint8_t *out, size_t len)
{
    if (random_left < len) {
        size_t got = 0;
        while (got < RANDOM_BLOCK) {
            ssize_t n = getrandom(random_block + got, RANDOM_BLOCK - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return OV_EIO;
            }
            got += (size_t)n;
        }
        random_left = RANDOM_BLOCK;
    }
    uint8_t *from = random_block + RANDOM_BLOCK - random_left;
    memcpy(out, from, len);
    memset(from, 0, len); /* used bytes do not linger */
    random_left -= len;
    return OV_OK;
}

int ov_id_generate(ov_id *out, uint64_t now_ms)
{
    for (int i = 0; i < 6; i++)
        out->bytes[i] = (uint8_t)(now_ms >> (8 * (5 - i)));
    return take_random(out->bytes + 6, 10);
}

void ov_id_format(const ov_id *id, char out[OV_ID_CHARS + 1])
{
    /* 26 characters carry 130 bits: the first character holds the top 3 bits. */
    for (int c = OV_ID_CHARS - 1, bit = 0; c >= 0; c--, bit += 5) {
        unsigned value = 0;
        for (int k = 0; k < 5; k++) {
            int b = bit + k; /* bit index from the least significant end */
            if (b < 128 && (id->bytes[15 - b / 8] >> (b % 8)) & 1)
                value |= 1u << k;
        }
        out[c] = alphabet[value];
    }
    out[OV_ID_CHARS] = 0;
}

static int decode_char(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    switch (c) {
    case 'O':
        return 0;
    case 'I':
    case 'L':
        return 1;
    case 'U':
        return -1;
    }
    const char *p = memchr(alphabet, c, 32);
    return c && p ? (int)(p - alphabet) : -1;
}

int ov_id_parse(const char *text, size_t len, ov_id *out)
{
    if (!text || len != OV_ID_CHARS)
        return OV_EINVAL;
    ov_id id;
    memset(&id, 0, sizeof id);
    for (int c = 0; c < OV_ID_CHARS; c++) {
        int value = decode_char(text[c]);
        if (value < 0 || (c == 0 && value > 7))
            return OV_EINVAL;
        int bit = (OV_ID_CHARS - 1 - c) * 5;
        for (int k = 0; k < 5; k++) {
            int b = bit + k;
            if ((value >> k) & 1)
                id.bytes[15 - b / 8] |= (uint8_t)(1u << (b % 8));
        }
    }
    *out = id;
    return OV_OK;
}

uint64_t ov_id_time_ms(const ov_id *id)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id->bytes[i];
    return ms;
}

int ov_id_compare(const ov_id *a, const ov_id *b)
{
    return memcmp(a->bytes, b->bytes, OV_ID_BYTES);
}

int ov_id_is_zero(const ov_id *id)
{
    for (int i = 0; i < OV_ID_BYTES; i++)
        if (id->bytes[i])
            return 0;
    return 1;
}
