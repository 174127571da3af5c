/*
 * Time-ordered 128-bit ids in Crockford base32 (see id.h). The random part comes from getrandom
 * so ids made on different nodes and clients never collide in practice (80 bits per millisecond).
 */
#include "proto/id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "proto/buf.h"
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
    /* 26 characters carry 130 bits: the first character holds the top 3 bits. The id is read as
     * two 64-bit halves, so each character is a shift or two rather than a loop over its bits
     * (ids are formatted for every record written and every answer). */
    uint64_t hi = ov_be64_get(id->bytes), lo = ov_be64_get(id->bytes + 8);
    for (int c = OV_ID_CHARS - 1, bit = 0; c >= 0; c--, bit += 5) {
        uint64_t value;
        if (bit >= 64)
            value = hi >> (bit - 64);
        else if (bit > 59)
            value = lo >> bit | hi << (64 - bit);
        else
            value = lo >> bit;
        out[c] = alphabet[value & 31];
    }
    out[OV_ID_CHARS] = 0;
}

/* Value + 1 of each character an id may contain (0: none): Crockford's decoding, which reads
 * lower case as upper case, O as 0, I and L as 1, and refuses U. */
static const uint8_t decode_table[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['A'] = 11, ['a'] = 11, ['B'] = 12, ['b'] = 12, ['C'] = 13, ['c'] = 13,
    ['D'] = 14, ['d'] = 14, ['E'] = 15, ['e'] = 15, ['F'] = 16, ['f'] = 16, ['G'] = 17, ['g'] = 17,
    ['H'] = 18, ['h'] = 18, ['I'] = 2,  ['i'] = 2,  ['J'] = 19, ['j'] = 19, ['K'] = 20, ['k'] = 20,
    ['L'] = 2,  ['l'] = 2,  ['M'] = 21, ['m'] = 21, ['N'] = 22, ['n'] = 22, ['O'] = 1,  ['o'] = 1,
    ['P'] = 23, ['p'] = 23, ['Q'] = 24, ['q'] = 24, ['R'] = 25, ['r'] = 25, ['S'] = 26, ['s'] = 26,
    ['T'] = 27, ['t'] = 27, ['V'] = 28, ['v'] = 28, ['W'] = 29, ['w'] = 29, ['X'] = 30, ['x'] = 30,
    ['Y'] = 31, ['y'] = 31, ['Z'] = 32, ['z'] = 32};

int ov_id_parse(const char *text, size_t len, ov_id *out)
{
    if (!text || len != OV_ID_CHARS)
        return OV_EINVAL;
    /* 26 characters of 5 bits, the first at most 7: exactly 128 bits, most significant first. */
    unsigned __int128 value = 0;
    for (int c = 0; c < OV_ID_CHARS; c++) {
        unsigned digit = decode_table[(unsigned char)text[c]];
        if (digit == 0 || (c == 0 && digit > 8))
            return OV_EINVAL;
        value = value << 5 | (digit - 1);
    }
    for (int i = OV_ID_BYTES - 1; i >= 0; i--, value >>= 8)
        out->bytes[i] = (uint8_t)value;
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
