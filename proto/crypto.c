/*
 * SHA-256, randomness and ECDSA P-256 on mbedTLS 2.28 (see crypto.h). The only file that includes
 * mbedTLS headers, so a change of crypto library stays here.
 *
 * Signing is deterministic (RFC 6979): the same key and digest always give the same signature,
 * which keeps signed heads reproducible and needs no entropy at signing time. Signatures are
 * normalised to low-S and verification refuses high-S, so a third party cannot turn one valid
 * signature into a second one (signature malleability).
 */
#include "proto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>

#include "proto/error.h"

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(((ov_sha256_ctx *)0)->opaque),
               "ov_sha256_ctx too small for mbedtls_sha256_context");

struct ov_keypair {
    mbedtls_ecp_group group;
    mbedtls_mpi secret;
    mbedtls_ecp_point point;
};

/* ---- SHA-256 of one buffer, with the SHA extensions where the CPU has them ------------------
 *
 * mbedTLS 2.28 hashes in portable C (~220 MB/s on the build machine); a client verifying a clone
 * hashes every byte it receives, so that is most of its time. x86 CPUs with the SHA extensions
 * (Intel since Goldmont and Ice Lake, AMD since Zen) do two rounds per instruction; the result is
 * the same digest, checked against mbedTLS by tests/unit/test_crypto.c over every length up to
 * several blocks. Elsewhere, and for the streaming interface, mbedTLS does the work. */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define OV_SHA_X86 1

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Compresses n 64-byte blocks into h (a..h, as the standard numbers them). The instructions
 * keep the state as two vectors, ABEF and CDGH (A in the highest lane); each sha256rnds2 does two
 * rounds and returns the new ABEF, the old ABEF being the new CDGH. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha256_blocks_x86(uint32_t h[8], const uint8_t *p, size_t n)
{
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)(const void *)&h[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(const void *)&h[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for (; n > 0; n--, p += 64) {
        __m128i abef0 = abef, cdgh0 = cdgh, w[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)),
                                    swap);
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m128i *m = &w[g & 3];
            if (g >= 4) {
                /* W[t..t+3] from W[t-16..t-1]: msg1 adds σ0, the alignr brings W[t-7..t-4],
                 * msg2 adds σ1 (of words it computes itself for the upper two lanes). */
                __m128i t = _mm_sha256msg1_epu32(*m, w[(g + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                *m = _mm_sha256msg2_epu32(t, w[(g + 3) & 3]);
            }
            __m128i wk =
                _mm_add_epi32(*m, _mm_loadu_si128((const __m128i *)(const void *)&SHA256_K[4 * g]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)(void *)&h[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(void *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int sha_x86;
static pthread_once_t sha_x86_once = PTHREAD_ONCE_INIT;

static void sha_x86_detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
        return;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_SHA))
        return;
    sha_x86 = getenv("OLIEVLEK_NO_SHA_EXTENSIONS") == NULL;
}

static void sha256_x86(const uint8_t *p, size_t len, uint8_t out[OV_HASH_BYTES])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t full = len / 64;
    sha256_blocks_x86(h, p, full);
    /* The padding: 0x80, zeros, the length in bits as 64-bit big-endian; one or two blocks. */
    uint8_t tail[128] = {0};
    size_t rest = len - full * 64;
    memcpy(tail, p + full * 64, rest);
    tail[rest] = 0x80;
    size_t blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_blocks_x86(h, tail, blocks);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}
#endif

int ov_sha256_accelerated(void)
{
#ifdef OV_SHA_X86
    pthread_once(&sha_x86_once, sha_x86_detect);
    return sha_x86;
#else
    return 0;
#endif
}

void ov_sha256(const void *data, size_t len, uint8_t out[OV_HASH_BYTES])
{
#ifdef OV_SHA_X86
    if (ov_sha256_accelerated()) {
        sha256_x86(data, len, out);
        return;
    }
#endif
    mbedtls_sha256_ret(data, len, out, 0);
}

void ov_sha256_portable(const void *data, size_t len, uint8_t out[OV_HASH_BYTES])
{
    mbedtls_sha256_ret(data, len, out, 0);
}

void ov_sha256_init(ov_sha256_ctx *ctx)
{
    mbedtls_sha256_context *c = (mbedtls_sha256_context *)(void *)ctx->opaque;
    mbedtls_sha256_init(c);
    mbedtls_sha256_starts_ret(c, 0);
}

void ov_sha256_update(ov_sha256_ctx *ctx, const void *data, size_t len)
{
    mbedtls_sha256_update_ret((mbedtls_sha256_context *)(void *)ctx->opaque, data, len);
}

void ov_sha256_final(ov_sha256_ctx *ctx, uint8_t out[OV_HASH_BYTES])
{
    mbedtls_sha256_context *c = (mbedtls_sha256_context *)(void *)ctx->opaque;
    mbedtls_sha256_finish_ret(c, out);
    mbedtls_sha256_free(c);
}

int ov_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return OV_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return OV_OK;
}

/* mbedTLS's RNG callback (key generation, blinding during signing). */
static int random_callback(void *unused, unsigned char *out, size_t len)
{
    return ov_random(out, len) == OV_OK ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

static ov_keypair *keypair_new(void)
{
    ov_keypair *key = calloc(1, sizeof *key);
    if (!key)
        return NULL;
    mbedtls_ecp_group_init(&key->group);
    mbedtls_mpi_init(&key->secret);
    mbedtls_ecp_point_init(&key->point);
    if (mbedtls_ecp_group_load(&key->group, MBEDTLS_ECP_DP_SECP256R1) != 0) {
        ov_keypair_free(key);
        return NULL;
    }
    return key;
}

void ov_keypair_free(ov_keypair *key)
{
    if (!key)
        return;
    mbedtls_ecp_group_free(&key->group);
    mbedtls_mpi_free(&key->secret);
    mbedtls_ecp_point_free(&key->point);
    free(key);
}

int ov_keypair_generate(ov_keypair **out)
{
    ov_keypair *key = keypair_new();
    if (!key)
        return OV_ENOMEM;
    if (mbedtls_ecp_gen_keypair(&key->group, &key->secret, &key->point, random_callback, NULL)) {
        ov_keypair_free(key);
        return OV_ECRYPTO;
    }
    *out = key;
    return OV_OK;
}

int ov_keypair_from_secret(const uint8_t secret[32], ov_keypair **out)
{
    ov_keypair *key = keypair_new();
    if (!key)
        return OV_ENOMEM;
    int rc = OV_OK;
    if (mbedtls_mpi_read_binary(&key->secret, secret, 32) != 0)
        rc = OV_ENOMEM;
    else if (mbedtls_ecp_check_privkey(&key->group, &key->secret) != 0)
        rc = OV_EINVAL; /* zero, or not below the group order */
    else if (mbedtls_ecp_mul(&key->group, &key->point, &key->secret, &key->group.G, random_callback,
                             NULL) != 0)
        rc = OV_ECRYPTO;
    if (rc != OV_OK) {
        ov_keypair_free(key);
        return rc;
    }
    *out = key;
    return OV_OK;
}

void ov_keypair_public(const ov_keypair *key, uint8_t out[OV_PUBKEY_BYTES])
{
    size_t len = 0;
    mbedtls_ecp_point_write_binary(&key->group, &key->point, MBEDTLS_ECP_PF_UNCOMPRESSED, &len, out,
                                   OV_PUBKEY_BYTES);
}

/* Publishes data at path without ever replacing an existing file: a temporary file beside it,
 * fsync, link(2) to the final name, fsync of the directory. A crash leaves either no key or the
 * whole key, and of two processes creating the key at once exactly one wins (OV_EEXISTS for the
 * other, which then loads the winner's key instead of running with a key nobody stored). */
static int write_file_exclusively(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[4096];
    uint8_t nonce[8];
    char nonce_hex[sizeof nonce * 2 + 1];
    if (ov_random(nonce, sizeof nonce) != OV_OK)
        return OV_EIO;
    ov_hex_encode(nonce, sizeof nonce, nonce_hex);
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, nonce_hex) >= (int)sizeof tmp)
        return OV_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return errno == EACCES ? OV_EDENIED : OV_EIO;
    int rc = OV_OK;
    if (fchmod(fd, mode) != 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0)
        rc = OV_EIO;
    if (close(fd) != 0)
        rc = OV_EIO;
    if (rc == OV_OK && link(tmp, path) != 0)
        rc = errno == EEXIST ? OV_EEXISTS : OV_EIO;
    unlink(tmp);
    if (rc != OV_OK)
        return rc;
    char dir_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", path);
    int dir = open(dirname(dir_buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return OV_EIO;
    rc = fsync(dir) == 0 ? OV_OK : OV_EIO;
    close(dir);
    return rc;
}

static int create_key_file(const char *path, ov_keypair **out)
{
    ov_keypair *key = NULL;
    int rc = ov_keypair_generate(&key);
    if (rc)
        return rc;
    uint8_t secret[32];
    char text[66];
    if (mbedtls_mpi_write_binary(&key->secret, secret, sizeof secret) != 0) {
        ov_keypair_free(key);
        return OV_ECRYPTO;
    }
    ov_hex_encode(secret, sizeof secret, text);
    text[64] = '\n';
    rc = write_file_exclusively(path, text, 65, 0600);
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(text, sizeof text);
    if (rc) {
        ov_keypair_free(key);
        return rc;
    }
    *out = key;
    return OV_OK;
}

/* Reads an existing key file: a regular file of mode 0600 or stricter holding exactly 64 hex
 * digits and one optional newline. Anything else is refused rather than guessed at. */
static int read_key_file(int fd, ov_keypair **out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return OV_EIO;
    if (!S_ISREG(st.st_mode))
        return OV_EPARSE;
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return OV_EDENIED; /* a key others can read is no longer this node's secret */
    char text[66];
    size_t len = 0;
    while (len < sizeof text) {
        ssize_t n = read(fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return OV_EIO;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    int rc = OV_EPARSE;
    uint8_t secret[32];
    if ((len == 64 || (len == 65 && text[64] == '\n')) &&
        ov_hex_decode(text, 64, secret, sizeof secret) == OV_OK) {
        rc = ov_keypair_from_secret(secret, out);
        if (rc == OV_EINVAL)
            rc = OV_EPARSE;
    }
    explicit_bzero(text, sizeof text);
    explicit_bzero(secret, sizeof secret);
    return rc;
}

int ov_keypair_load_or_create(const char *path, ov_keypair **out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            int rc = read_key_file(fd, out);
            close(fd);
            return rc;
        }
        if (errno == EACCES)
            return OV_EDENIED;
        if (errno == ELOOP)
            return OV_EPARSE; /* a symlink: refuse rather than follow it somewhere else */
        if (errno != ENOENT)
            return OV_EIO;
        int rc = create_key_file(path, out);
        if (rc != OV_EEXISTS)
            return rc;
        /* Another process created the key between our open and link: load theirs. */
    }
    return OV_EIO;
}

/* n/2 for P-256, to normalise and check low-S. */
static int half_order(const mbedtls_ecp_group *group, mbedtls_mpi *half)
{
    return mbedtls_mpi_copy(half, &group->N) || mbedtls_mpi_shift_r(half, 1);
}

int ov_sign(const ov_keypair *key, const uint8_t digest[OV_HASH_BYTES],
            uint8_t signature[OV_SIGNATURE_BYTES])
{
    mbedtls_mpi r, s, half;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_mpi_init(&half);
    /* The group is not modified by signing, but mbedTLS's prototype is not const. */
    mbedtls_ecp_group *group = (mbedtls_ecp_group *)&key->group;
    int rc = mbedtls_ecdsa_sign_det_ext(group, &r, &s, &key->secret, digest, OV_HASH_BYTES,
                                        MBEDTLS_MD_SHA256, random_callback, NULL);
    if (rc == 0)
        rc = half_order(group, &half);
    if (rc == 0 && mbedtls_mpi_cmp_mpi(&s, &half) > 0)
        rc = mbedtls_mpi_sub_mpi(&s, &group->N, &s);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&r, signature, 32) ||
             mbedtls_mpi_write_binary(&s, signature + 32, 32);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&half);
    return rc == 0 ? OV_OK : OV_ECRYPTO;
}

/* Verification runs on several threads (the loop, the thread pool); each keeps its own loaded
 * group so the curve is set up once per thread, not once per signature. The key's destructor
 * frees a thread's group when the thread ends. */
static pthread_key_t group_key;
static pthread_once_t group_once = PTHREAD_ONCE_INIT;

static void free_group(void *group)
{
    mbedtls_ecp_group_free(group);
    free(group);
}

static void create_group_key(void)
{
    pthread_key_create(&group_key, free_group);
}

static mbedtls_ecp_group *verify_group(void)
{
    pthread_once(&group_once, create_group_key);
    mbedtls_ecp_group *group = pthread_getspecific(group_key);
    if (group)
        return group;
    group = malloc(sizeof *group);
    if (!group)
        return NULL;
    mbedtls_ecp_group_init(group);
    if (mbedtls_ecp_group_load(group, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        pthread_setspecific(group_key, group) != 0) {
        free_group(group);
        return NULL;
    }
    return group;
}

int ov_verify(const uint8_t pub[OV_PUBKEY_BYTES], const uint8_t digest[OV_HASH_BYTES],
              const uint8_t signature[OV_SIGNATURE_BYTES])
{
    mbedtls_ecp_group *group = verify_group();
    if (!group)
        return OV_ENOMEM;
    mbedtls_ecp_point point;
    mbedtls_mpi r, s, half;
    mbedtls_ecp_point_init(&point);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_mpi_init(&half);
    int result = OV_OK;
    if (pub[0] != 0x04 || mbedtls_ecp_point_read_binary(group, &point, pub, OV_PUBKEY_BYTES) ||
        mbedtls_ecp_check_pubkey(group, &point)) {
        result = OV_EINVAL;
    } else if (mbedtls_mpi_read_binary(&r, signature, 32) ||
               mbedtls_mpi_read_binary(&s, signature + 32, 32) || half_order(group, &half)) {
        result = OV_ENOMEM; /* reading 32 bytes into a bignum fails only on allocation */
    } else if (mbedtls_mpi_cmp_int(&r, 0) <= 0 || mbedtls_mpi_cmp_int(&s, 0) <= 0 ||
               mbedtls_mpi_cmp_mpi(&s, &half) > 0 || mbedtls_mpi_cmp_mpi(&r, &group->N) >= 0) {
        result = OV_EBADSIG;
    } else if (mbedtls_ecdsa_verify(group, digest, OV_HASH_BYTES, &point, &r, &s) != 0) {
        result = OV_EBADSIG;
    }
    mbedtls_ecp_point_free(&point);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&half);
    return result;
}

void ov_hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ov_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t len)
{
    if (hex_len != 2 * len)
        return OV_EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return OV_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return OV_OK;
}

int ov_memcmp_const(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff;
}
