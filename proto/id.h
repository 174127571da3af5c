/*
 * Globally unique, time-ordered identifiers for records and nodes.
 *
 * An id is 16 bytes: 48 bits of milliseconds since the Unix epoch (big-endian) followed by 80
 * random bits from the kernel. Two nodes that never talk still never collide, and ids sort by
 * creation time, which keeps LMDB's B-trees append-mostly. Text form: 26 characters of Crockford
 * base32, upper case (the ULID layout), e.g. "01JD3M5Q8X7Y2Z9ABCDEFGHJKM". Parsing accepts lower
 * case and the Crockford aliases (O→0, I/L→1) and rejects everything else.
 *
 * A node's id is the first 16 bytes of SHA-256 over its first (genesis) public key, in the same
 * text form; it stays the same when the node rotates its key.
 */
#ifndef OV_ID_H
#define OV_ID_H

#include <stddef.h>
#include <stdint.h>

#define OV_ID_BYTES 16
#define OV_ID_CHARS 26

typedef struct {
    uint8_t bytes[OV_ID_BYTES];
} ov_id;

/* Fills *out with a new id for time now_ms. Returns OV_OK or OV_EIO if the kernel's random
 * source fails. */
int ov_id_generate(ov_id *out, uint64_t now_ms);

/* Writes the 26-character text form and a terminating NUL into out. */
void ov_id_format(const ov_id *id, char out[OV_ID_CHARS + 1]);

/* Parses exactly len characters. Returns OV_OK or OV_EINVAL (wrong length, bad character, or a
 * first character above '7', which would overflow 128 bits). */
int ov_id_parse(const char *text, size_t len, ov_id *out);

/* The creation time in milliseconds encoded in id. */
uint64_t ov_id_time_ms(const ov_id *id);

/* memcmp-style ordering; equal to byte order and to text order. */
int ov_id_compare(const ov_id *a, const ov_id *b);

/* True when all bytes are zero (used as "no id"). */
int ov_id_is_zero(const ov_id *id);

#endif
