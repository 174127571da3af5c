/*
 * The node's and client's cryptography: SHA-256, randomness and ECDSA P-256 signatures.
 * This is the only module that includes mbedTLS headers.
 *
 * Signatures are deterministic (RFC 6979 with SHA-256), encoded as fixed-size r‖s (64 bytes,
 * big-endian) and normalised to low-S (s ≤ n/2); verification rejects high-S, so each message has
 * exactly one valid signature per key. Public keys are uncompressed SEC1 points (65 bytes,
 * 0x04‖X‖Y).
 */
#ifndef OV_CRYPTO_H
#define OV_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define OV_HASH_BYTES      32
#define OV_PUBKEY_BYTES    65
#define OV_SIGNATURE_BYTES 64

typedef struct ov_keypair ov_keypair;

typedef struct {
    uint8_t opaque[128]; /* holds an mbedtls_sha256_context; see crypto.c */
} ov_sha256_ctx;

void ov_sha256(const void *data, size_t len, uint8_t out[OV_HASH_BYTES]);
/* The same digest, always computed by mbedTLS in portable C: for tests and benchmarks. */
void ov_sha256_portable(const void *data, size_t len, uint8_t out[OV_HASH_BYTES]);
/* 1 when ov_sha256 uses the CPU's SHA instructions (x86 SHA extensions; the environment variable
 * OLIEVLEK_NO_SHA_EXTENSIONS turns them off), 0 when it is mbedTLS's portable code. */
int ov_sha256_accelerated(void);
void ov_sha256_init(ov_sha256_ctx *ctx);
void ov_sha256_update(ov_sha256_ctx *ctx, const void *data, size_t len);
void ov_sha256_final(ov_sha256_ctx *ctx, uint8_t out[OV_HASH_BYTES]);

/* Fills buf with len bytes from the kernel CSPRNG (getrandom). OV_OK or OV_EIO. */
int ov_random(void *buf, size_t len);

/* Loads the private key stored at path, or, when the file does not exist, generates a new key
 * and writes it there atomically (temporary file, fsync, link, fsync of the directory) with mode
 * 0600; an existing file is never replaced. An existing file that is readable by group or others
 * is refused with OV_EDENIED. The file holds the 32-byte private scalar as 64 hex digits and a
 * newline. On success *out is owned by the caller (ov_keypair_free). Errors: OV_EIO, OV_EDENIED,
 * OV_EPARSE (corrupt file, not a regular file, a symlink, or a scalar outside [1, n-1]),
 * OV_ECRYPTO, OV_ENOMEM. */
int ov_keypair_load_or_create(const char *path, ov_keypair **out);

/* Generates a key in memory only (tests, benchmarks). */
int ov_keypair_generate(ov_keypair **out);

/* Builds a key from a 32-byte big-endian private scalar (deterministic test keys). OV_EINVAL when
 * the scalar is zero or not below the group order n. */
int ov_keypair_from_secret(const uint8_t secret[32], ov_keypair **out);

void ov_keypair_free(ov_keypair *key);

/* The uncompressed public point of key. */
void ov_keypair_public(const ov_keypair *key, uint8_t out[OV_PUBKEY_BYTES]);

/* Signs a 32-byte digest. OV_OK or OV_ECRYPTO. A key may sign on several threads at once: signing
 * only reads the key (its curve tables are complete once the key exists). */
int ov_sign(const ov_keypair *key, const uint8_t digest[OV_HASH_BYTES],
            uint8_t signature[OV_SIGNATURE_BYTES]);

/* Verifies signature over digest with public key pub. OV_OK, OV_EBADSIG (wrong, malformed or
 * high-S signature), OV_EINVAL (pub is not an uncompressed valid P-256 point) or OV_ENOMEM.
 * Thread-safe; each thread keeps its own loaded curve, freed when the thread exits. */
int ov_verify(const uint8_t pub[OV_PUBKEY_BYTES], const uint8_t digest[OV_HASH_BYTES],
              const uint8_t signature[OV_SIGNATURE_BYTES]);

/* Lower-case hex of len bytes into out (2*len+1 bytes with NUL). */
void ov_hex_encode(const uint8_t *data, size_t len, char *out);

/* Parses exactly 2*len hex digits. OV_OK or OV_EINVAL. */
int ov_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t len);

/* Constant-time comparison; 0 when equal. */
int ov_memcmp_const(const void *a, const void *b, size_t len);

#endif
