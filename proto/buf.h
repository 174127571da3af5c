/*
 * A growable byte buffer with a hard maximum, for building responses and messages. Appends fail
 * with OV_ETOOBIG instead of growing past max, so no peer can make us allocate without bound;
 * after a failed append the buffer is marked failed and further appends are no-ops, which lets
 * callers check once at the end.
 */
#ifndef OV_BUF_H
#define OV_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data; /* owned; NUL-terminated after every successful append */
    size_t len;
    size_t cap;
    size_t max;
    int failed; /* OV_ENOMEM or OV_ETOOBIG once an append failed, else 0 */
} ov_buf;

void ov_buf_init(ov_buf *buf, size_t max);
void ov_buf_free(ov_buf *buf);
/* Starts buf on a block of cap bytes from malloc (it now owns it), its first len bytes already
 * counted as content (len < cap): a large buffer reused rather than allocated and faulted in
 * again. max caps the content as in ov_buf_init. */
void ov_buf_adopt(ov_buf *buf, void *data, size_t cap, size_t len, size_t max);
int ov_buf_append(ov_buf *buf, const void *data, size_t len);
int ov_buf_append_str(ov_buf *buf, const char *text);
int ov_buf_printf(ov_buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Appends text as a JSON string literal (quotes included), escaping as the canonical form does. */
int ov_buf_append_json_string(ov_buf *buf, const char *text, size_t len);

/* Big-endian integers in byte strings: the order of stored keys and numbers, so keys sort as the
 * numbers do. */
static inline void ov_be16_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void ov_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ov_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void ov_be64_put(uint8_t *p, uint64_t v)
{
    ov_be32_put(p, (uint32_t)(v >> 32));
    ov_be32_put(p + 4, (uint32_t)v);
}

static inline uint64_t ov_be64_get(const uint8_t *p)
{
    return (uint64_t)ov_be32_get(p) << 32 | ov_be32_get(p + 4);
}

/* Spreads byte strings (words, terms, addresses) over the slots of an in-memory table; nothing
 * stored or sent depends on it. Eight bytes at a time: a multiplication per byte (FNV) was most
 * of the search analysis's term table. */
static inline uint32_t ov_hash_bytes(const void *data, size_t len)
{
    const unsigned char *s = data;
    uint64_t h = 0x9E3779B97F4A7C15u ^ len, w;
    for (; len >= sizeof w; s += sizeof w, len -= sizeof w) {
        memcpy(&w, s, sizeof w);
        h = (h ^ w) * 0xBF58476D1CE4E5B9u;
        h ^= h >> 31;
    }
    if (len) {
        w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * 0xBF58476D1CE4E5B9u;
    }
    h = (h ^ (h >> 29)) * 0x94D049BB133111EBu;
    return (uint32_t)(h ^ (h >> 32));
}

#endif
