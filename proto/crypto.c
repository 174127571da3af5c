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

void ov_sha256(const void *data, size_t len, uint8_t out[OV_HASH_BYTES])
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
