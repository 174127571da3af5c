/*
 * Crypto: SHA-256 known answers, deterministic low-S ECDSA P-256 (checked against RFC 6979 A.2.5),
 * rejection of tampered, malformed and high-S signatures and of invalid points, signing and
 * verifying from several threads, and the node key file (creation, reload, permissions, corrupt
 * contents, concurrent creation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/crypto.h"
#include "proto/error.h"

/* The order n of the P-256 group. */
static const char ORDER_HEX[] = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

static void from_hex(const char *hex, uint8_t *out, size_t len)
{
    assert_int_equal(ov_hex_decode(hex, strlen(hex), out, len), OV_OK);
}

static void assert_hex_equal(const uint8_t *data, size_t len, const char *expected)
{
    char hex[2 * 128 + 1];
    assert_true(len <= 128);
    ov_hex_encode(data, len, hex);
    assert_string_equal(hex, expected);
}

/* out = n - s, 32-byte big-endian: turns a low-S signature half into its high-S twin. */
static void order_minus(const uint8_t s[32], uint8_t out[32])
{
    uint8_t n[32];
    from_hex(ORDER_HEX, n, 32);
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - s[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    assert_int_equal(borrow, 0);
}

/* Big-endian comparison of 32-byte numbers. */
static int compare32(const uint8_t a[32], const uint8_t b[32])
{
    return memcmp(a, b, 32);
}

static void assert_low_s(const uint8_t signature[OV_SIGNATURE_BYTES])
{
    uint8_t half[32], n[32];
    from_hex(ORDER_HEX, n, 32);
    /* half = n >> 1 */
    for (int i = 0, carry = 0; i < 32; i++) {
        half[i] = (uint8_t)((n[i] >> 1) | (carry << 7));
        carry = n[i] & 1;
    }
    assert_true(compare32(signature + 32, half) <= 0);
}

static void test_sha256_known_answers(void **state)
{
    uint8_t out[OV_HASH_BYTES];
    ov_sha256("abc", 3, out);
    assert_hex_equal(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ov_sha256("", 0, out);
    assert_hex_equal(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* FIPS 180-2's two-block message, fed in uneven pieces through the streaming interface. */
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ov_sha256_ctx ctx;
    ov_sha256_init(&ctx);
    ov_sha256_update(&ctx, msg, 1);
    ov_sha256_update(&ctx, msg + 1, 0);
    ov_sha256_update(&ctx, msg + 1, 40);
    ov_sha256_update(&ctx, msg + 41, strlen(msg) - 41);
    ov_sha256_final(&ctx, out);
    assert_hex_equal(out, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    ov_sha256(msg, strlen(msg), out);
    assert_hex_equal(out, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The one-shot digest (with the CPU's SHA instructions where it has them) equals mbedTLS's for
 * every length around the padding's boundaries and for long inputs, from unaligned addresses. */
static void test_sha256_accelerated_matches(void **state)
{
    enum { LONG = 70000 };
    uint8_t *data = malloc(LONG + 1);
    assert_non_null(data);
    assert_int_equal(ov_random(data, LONG + 1), OV_OK);
    uint8_t fast[OV_HASH_BYTES], slow[OV_HASH_BYTES];
    for (size_t len = 0; len <= 4 * 64 + 1; len++) {
        for (size_t shift = 0; shift < 2; shift++) {
            ov_sha256(data + shift, len, fast);
            ov_sha256_portable(data + shift, len, slow);
            assert_memory_equal(fast, slow, OV_HASH_BYTES);
        }
    }
    const size_t lengths[] = {1000, 4095, 4096, 65535, 65536, LONG};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        ov_sha256(data + 1, lengths[i], fast);
        ov_sha256_portable(data + 1, lengths[i], slow);
        assert_memory_equal(fast, slow, OV_HASH_BYTES);
    }
    print_message("SHA extensions %s\n", ov_sha256_accelerated() ? "used" : "not available");
    free(data);
}

static void test_random(void **state)
{
    uint8_t a[64] = {0}, b[64] = {0}, zero[64] = {0};
    assert_int_equal(ov_random(a, sizeof a), OV_OK);
    assert_int_equal(ov_random(b, sizeof b), OV_OK);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(ov_random(a, 0), OV_OK);
}

static void test_hex_helpers(void **state)
{
    const uint8_t data[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof data + 1];
    ov_hex_encode(data, sizeof data, hex);
    assert_string_equal(hex, "00017f80abff");

    uint8_t back[sizeof data];
    assert_int_equal(ov_hex_decode("00017F80ABff", 12, back, sizeof back), OV_OK);
    assert_memory_equal(back, data, sizeof data);
    assert_int_equal(ov_hex_decode("00017f80abf", 11, back, sizeof back), OV_EINVAL);
    assert_int_equal(ov_hex_decode("00017f80abfff0", 14, back, sizeof back), OV_EINVAL);
    assert_int_equal(ov_hex_decode("00017f80abfg", 12, back, sizeof back), OV_EINVAL);
    assert_int_equal(ov_hex_decode("0x017f80abff", 12, back, sizeof back), OV_EINVAL);
    assert_int_equal(ov_hex_decode(" 0017f80abff", 12, back, sizeof back), OV_EINVAL);
    char with_nul[] = "00\0001";
    assert_int_equal(ov_hex_decode(with_nul, 6, back, 3), OV_EINVAL);
    assert_int_equal(ov_hex_decode("", 0, back, 0), OV_OK);

    assert_int_equal(ov_memcmp_const("abcd", "abcd", 4), 0);
    assert_int_not_equal(ov_memcmp_const("abcd", "abce", 4), 0);
    assert_int_not_equal(ov_memcmp_const("\x80", "\x00", 1), 0);
}

/* RFC 6979 A.2.5: P-256 with SHA-256. */
static const char RFC_SECRET[] = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
static const char RFC_PUBLIC[] = "04"
                                 "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
                                 "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

static void test_rfc6979_vectors(void **state)
{
    uint8_t secret[32], pub[OV_PUBKEY_BYTES], digest[OV_HASH_BYTES], sig[OV_SIGNATURE_BYTES];
    from_hex(RFC_SECRET, secret, 32);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    ov_keypair_public(key, pub);
    assert_hex_equal(pub, OV_PUBKEY_BYTES, RFC_PUBLIC);

    /* "sample": the RFC's s is high, so ours is n - s; r is the RFC's. */
    ov_sha256("sample", 6, digest);
    assert_int_equal(ov_sign(key, digest, sig), OV_OK);
    assert_hex_equal(sig, 32, "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716");
    uint8_t rfc_s[32];
    order_minus(sig + 32, rfc_s);
    assert_hex_equal(rfc_s, 32, "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
    assert_low_s(sig);
    assert_int_equal(ov_verify(pub, digest, sig), OV_OK);

    /* "test": the RFC's s is already low and comes out unchanged. */
    ov_sha256("test", 4, digest);
    assert_int_equal(ov_sign(key, digest, sig), OV_OK);
    assert_hex_equal(sig, 64,
                     "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367"
                     "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083");
    assert_int_equal(ov_verify(pub, digest, sig), OV_OK);
    ov_keypair_free(key);
}

static void test_sign_verify_round_trip(void **state)
{
    ov_keypair *key = NULL, *other = NULL;
    assert_int_equal(ov_keypair_generate(&key), OV_OK);
    assert_int_equal(ov_keypair_generate(&other), OV_OK);
    uint8_t pub[OV_PUBKEY_BYTES], other_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    ov_keypair_public(other, other_pub);
    assert_int_equal(pub[0], 0x04);
    assert_memory_not_equal(pub, other_pub, OV_PUBKEY_BYTES);

    for (int i = 0; i < 40; i++) {
        uint8_t digest[OV_HASH_BYTES], sig[OV_SIGNATURE_BYTES], again[OV_SIGNATURE_BYTES];
        assert_int_equal(ov_random(digest, sizeof digest), OV_OK);
        assert_int_equal(ov_sign(key, digest, sig), OV_OK);
        assert_low_s(sig);
        assert_int_equal(ov_verify(pub, digest, sig), OV_OK);

        /* Deterministic: signing again gives the same bytes. */
        assert_int_equal(ov_sign(key, digest, again), OV_OK);
        assert_memory_equal(sig, again, sizeof sig);

        /* Wrong key. */
        assert_int_equal(ov_verify(other_pub, digest, sig), OV_EBADSIG);

        /* Any flipped bit of digest or signature. */
        uint8_t bad_digest[OV_HASH_BYTES];
        memcpy(bad_digest, digest, sizeof bad_digest);
        bad_digest[i % OV_HASH_BYTES] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ov_verify(pub, bad_digest, sig), OV_EBADSIG);
        uint8_t bad_sig[OV_SIGNATURE_BYTES];
        memcpy(bad_sig, sig, sizeof bad_sig);
        bad_sig[(i * 7) % OV_SIGNATURE_BYTES] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ov_verify(pub, digest, bad_sig), OV_EBADSIG);
    }
    ov_keypair_free(key);
    ov_keypair_free(other);
}

static void test_high_s_and_malformed_rejected(void **state)
{
    uint8_t secret[32], pub[OV_PUBKEY_BYTES], digest[OV_HASH_BYTES], sig[OV_SIGNATURE_BYTES];
    from_hex(RFC_SECRET, secret, 32);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    ov_keypair_public(key, pub);
    ov_sha256("sample", 6, digest);
    assert_int_equal(ov_sign(key, digest, sig), OV_OK);
    assert_int_equal(ov_verify(pub, digest, sig), OV_OK);

    /* (r, n - s) is mathematically valid ECDSA, the RFC's own answer, yet must be refused. */
    uint8_t high[OV_SIGNATURE_BYTES];
    memcpy(high, sig, 32);
    order_minus(sig + 32, high + 32);
    assert_int_equal(ov_verify(pub, digest, high), OV_EBADSIG);

    uint8_t bad[OV_SIGNATURE_BYTES];
    memset(bad, 0, sizeof bad);
    assert_int_equal(ov_verify(pub, digest, bad), OV_EBADSIG); /* r = s = 0 */
    memcpy(bad, sig, sizeof bad);
    memset(bad + 32, 0, 32);
    assert_int_equal(ov_verify(pub, digest, bad), OV_EBADSIG); /* s = 0 */
    memcpy(bad, sig, sizeof bad);
    memset(bad, 0, 32);
    assert_int_equal(ov_verify(pub, digest, bad), OV_EBADSIG); /* r = 0 */
    memcpy(bad, sig, sizeof bad);
    from_hex(ORDER_HEX, bad, 32);
    assert_int_equal(ov_verify(pub, digest, bad), OV_EBADSIG); /* r = n */
    memset(bad, 0xff, sizeof bad);
    assert_int_equal(ov_verify(pub, digest, bad), OV_EBADSIG);

    /* Invalid public keys: compressed form, point at infinity, off the curve, coordinates >= p. */
    uint8_t bad_pub[OV_PUBKEY_BYTES];
    memcpy(bad_pub, pub, sizeof bad_pub);
    bad_pub[0] = 0x02;
    assert_int_equal(ov_verify(bad_pub, digest, sig), OV_EINVAL);
    memset(bad_pub, 0, sizeof bad_pub);
    assert_int_equal(ov_verify(bad_pub, digest, sig), OV_EINVAL);
    memcpy(bad_pub, pub, sizeof bad_pub);
    bad_pub[OV_PUBKEY_BYTES - 1] ^= 1;
    assert_int_equal(ov_verify(bad_pub, digest, sig), OV_EINVAL);
    memset(bad_pub, 0xff, sizeof bad_pub);
    bad_pub[0] = 0x04;
    assert_int_equal(ov_verify(bad_pub, digest, sig), OV_EINVAL);
    ov_keypair_free(key);
}

static void test_secret_range(void **state)
{
    uint8_t secret[32] = {0};
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_EINVAL);
    from_hex(ORDER_HEX, secret, 32);
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_EINVAL);
    assert_null(key);

    /* Secret 1 gives the generator G of P-256. */
    memset(secret, 0, sizeof secret);
    secret[31] = 1;
    assert_int_equal(ov_keypair_from_secret(secret, &key), OV_OK);
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    assert_hex_equal(pub, OV_PUBKEY_BYTES,
                     "04"
                     "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                     "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    ov_keypair_free(key);
}

/* Several threads sign and verify with one shared key at once, as the writer thread and libuv's
 * thread pool will; every result must equal the single-threaded one. */
typedef struct {
    const ov_keypair *key;
    const uint8_t *pub;
    const uint8_t (*digests)[OV_HASH_BYTES];
    const uint8_t (*expected)[OV_SIGNATURE_BYTES];
    int count;
    int failures;
} thread_job;

static void *sign_and_verify_thread(void *arg)
{
    thread_job *job = arg;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < job->count; i++) {
            uint8_t sig[OV_SIGNATURE_BYTES];
            if (ov_sign(job->key, job->digests[i], sig) != OV_OK ||
                memcmp(sig, job->expected[i], sizeof sig) != 0 ||
                ov_verify(job->pub, job->digests[i], sig) != OV_OK)
                job->failures++;
            sig[5] ^= 0x10;
            if (ov_verify(job->pub, job->digests[i], sig) != OV_EBADSIG)
                job->failures++;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    enum { COUNT = 16, THREADS = 4 };
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_generate(&key), OV_OK);
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);
    uint8_t digests[COUNT][OV_HASH_BYTES], expected[COUNT][OV_SIGNATURE_BYTES];
    for (int i = 0; i < COUNT; i++) {
        assert_int_equal(ov_random(digests[i], OV_HASH_BYTES), OV_OK);
        assert_int_equal(ov_sign(key, digests[i], expected[i]), OV_OK);
    }
    pthread_t threads[THREADS];
    thread_job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (thread_job){key, pub, digests, expected, COUNT, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, sign_and_verify_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(jobs[t].failures, 0);
    }
    ov_keypair_free(key);
}

/* Key files live in a fresh temporary directory per test. */
static int make_dir(void **state)
{
    char *dir = strdup("/tmp/ov-test-crypto-XXXXXX");
    if (!dir || !mkdtemp(dir))
        return -1;
    *state = dir;
    return 0;
}

static int remove_dir(void **state)
{
    char *dir = *state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *entry;
        while ((entry = readdir(d))) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
    return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *entry;
    while ((entry = readdir(d)))
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_key_file_create_and_reload(void **state)
{
    const char *dir = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/node.key", dir);

    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_OK);
    uint8_t pub[OV_PUBKEY_BYTES];
    ov_keypair_public(key, pub);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(count_entries(dir), 1); /* no temporary file left behind */

    /* The file is the hex scalar and a newline, and that scalar is this key. */
    char text[80] = {0};
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, text, sizeof text), 65);
    close(fd);
    assert_int_equal(text[64], '\n');
    uint8_t secret[32];
    assert_int_equal(ov_hex_decode(text, 64, secret, 32), OV_OK);
    ov_keypair *same = NULL;
    assert_int_equal(ov_keypair_from_secret(secret, &same), OV_OK);
    uint8_t same_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(same, same_pub);
    assert_memory_equal(pub, same_pub, OV_PUBKEY_BYTES);
    ov_keypair_free(same);

    /* Reloading gives the same key and leaves the file alone. */
    ov_keypair *again = NULL;
    assert_int_equal(ov_keypair_load_or_create(path, &again), OV_OK);
    uint8_t again_pub[OV_PUBKEY_BYTES];
    ov_keypair_public(again, again_pub);
    assert_memory_equal(pub, again_pub, OV_PUBKEY_BYTES);

    /* A signature from the reloaded key verifies with the original public key. */
    uint8_t digest[OV_HASH_BYTES], sig[OV_SIGNATURE_BYTES];
    ov_sha256("olievlek", 8, digest);
    assert_int_equal(ov_sign(again, digest, sig), OV_OK);
    assert_int_equal(ov_verify(pub, digest, sig), OV_OK);
    ov_keypair_free(key);
    ov_keypair_free(again);

    /* A file without the final newline is accepted too (hand-written keys). */
    write_text(path, RFC_SECRET, 0600);
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_OK);
    ov_keypair_public(key, pub);
    assert_hex_equal(pub, OV_PUBKEY_BYTES, RFC_PUBLIC);
    ov_keypair_free(key);
}

static void test_key_file_permissions(void **state)
{
    const char *dir = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/node.key", dir);
    char text[70];
    snprintf(text, sizeof text, "%s\n", RFC_SECRET);
    ov_keypair *key = NULL;

    write_text(path, text, 0640);
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_EDENIED);
    write_text(path, text, 0604);
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_EDENIED);
    write_text(path, text, 0620);
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_EDENIED);
    assert_null(key);
    /* Refusing must not replace the key with a new one. */
    char back[70] = {0};
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, back, sizeof back), 65);
    close(fd);
    assert_string_equal(back, text);

    write_text(path, text, 0400);
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_OK);
    ov_keypair_free(key);

    /* A missing directory cannot hold a new key. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no/such/dir/node.key", dir);
    assert_int_equal(ov_keypair_load_or_create(missing, &key), OV_EIO);
}

static void test_key_file_corrupt(void **state)
{
    const char *dir = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/node.key", dir);
    char order_line[70];
    snprintf(order_line, sizeof order_line, "%s\n", ORDER_HEX);
    const char *corrupt[] = {
        "",
        "\n",
        "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f672\n",    /* 63 digits */
        "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f67211\n",  /* 65 digits */
        "x9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721\n",   /* not hex */
        "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721\n\n", /* extra line */
        "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721 \n",  /* space */
        " c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721\n",
        "0000000000000000000000000000000000000000000000000000000000000000\n", /* scalar 0 */
        order_line,                                                           /* scalar n */
        "-----BEGIN EC PRIVATE "
        "KEY-----\nMHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49\n",
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        write_text(path, corrupt[i], 0600);
        ov_keypair *key = NULL;
        int rc = ov_keypair_load_or_create(path, &key);
        if (rc != OV_EPARSE)
            fail_msg("corrupt key file %zu: got %s, expected OV_EPARSE", i, ov_error_name(rc));
        assert_null(key);
    }

    /* A symlink is not followed, even to a valid key. */
    char target[4096];
    snprintf(target, sizeof target, "%s/real.key", dir);
    char text[70];
    snprintf(text, sizeof text, "%s\n", RFC_SECRET);
    write_text(target, text, 0600);
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
    ov_keypair *key = NULL;
    assert_int_equal(ov_keypair_load_or_create(path, &key), OV_EPARSE);

    /* A directory where the key should be. */
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    int rc = ov_keypair_load_or_create(path, &key);
    assert_true(rc == OV_EPARSE || rc == OV_EIO);
    rmdir(path);
}

typedef struct {
    const char *path;
    uint8_t pub[OV_PUBKEY_BYTES];
    int rc;
} create_job;

static void *create_thread(void *arg)
{
    create_job *job = arg;
    ov_keypair *key = NULL;
    job->rc = ov_keypair_load_or_create(job->path, &key);
    if (job->rc == OV_OK) {
        ov_keypair_public(key, job->pub);
        ov_keypair_free(key);
    }
    return NULL;
}

/* Nodes started twice at once on one data directory must end up with one key, not two. */
static void test_key_file_concurrent_create(void **state)
{
    const char *dir = *state;
    for (int round = 0; round < 5; round++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/race%d.key", dir, round);
        enum { THREADS = 4 };
        pthread_t threads[THREADS];
        create_job jobs[THREADS];
        for (int t = 0; t < THREADS; t++) {
            jobs[t] = (create_job){.path = path};
            assert_int_equal(pthread_create(&threads[t], NULL, create_thread, &jobs[t]), 0);
        }
        for (int t = 0; t < THREADS; t++)
            assert_int_equal(pthread_join(threads[t], NULL), 0);
        ov_keypair *key = NULL;
        assert_int_equal(ov_keypair_load_or_create(path, &key), OV_OK);
        uint8_t pub[OV_PUBKEY_BYTES];
        ov_keypair_public(key, pub);
        ov_keypair_free(key);
        for (int t = 0; t < THREADS; t++) {
            assert_int_equal(jobs[t].rc, OV_OK);
            assert_memory_equal(jobs[t].pub, pub, OV_PUBKEY_BYTES);
        }
    }
    assert_int_equal(count_entries(dir), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_answers),
        cmocka_unit_test(test_sha256_accelerated_matches),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_hex_helpers),
        cmocka_unit_test(test_rfc6979_vectors),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_high_s_and_malformed_rejected),
        cmocka_unit_test(test_secret_range),
        cmocka_unit_test(test_threads),
        cmocka_unit_test_setup_teardown(test_key_file_create_and_reload, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_key_file_permissions, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_key_file_corrupt, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_key_file_concurrent_create, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
