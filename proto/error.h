/*
 * Error codes shared by every Olievlek module.
 *
 * Functions return int: 0 (OV_OK) on success, a negative OV_E* code on failure. The codes and their
 * messages come from one X-macro so the enum and ov_strerror() can never drift apart. Codes from
 * LMDB, mbedTLS and errno are converted where they arise; callers above that layer see only these.
 */
#ifndef OV_ERROR_H
#define OV_ERROR_H

#define OV_ERROR_MAP(X)                                                                            \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(NOTFOUND, -3, "not found")                                                                   \
    X(EXISTS, -4, "already exists")                                                                \
    X(CONFLICT, -5, "version conflict")                                                            \
    X(TOOBIG, -6, "too large")                                                                     \
    X(IO, -7, "input/output error")                                                                \
    X(CRYPTO, -8, "cryptographic failure")                                                         \
    X(BADSIG, -9, "signature does not verify")                                                     \
    X(CHAIN, -10, "hash chain broken")                                                             \
    X(PARSE, -11, "malformed input")                                                               \
    X(SCHEMA, -12, "schema violation")                                                             \
    X(DENIED, -13, "permission denied")                                                            \
    X(AUTH, -14, "authentication required")                                                        \
    X(LIMIT, -15, "rate limit exceeded")                                                           \
    X(SHUTDOWN, -16, "shutting down")                                                              \
    X(STORE, -17, "storage error")                                                                 \
    X(FULL, -18, "storage full")                                                                   \
    X(GONE, -19, "no longer available")                                                            \
    X(PRECONDITION, -20, "precondition failed")                                                    \
    X(AGAIN, -21, "try again later")

typedef enum {
    OV_OK = 0,
#define OV_ERROR_ENUM(name, code, text) OV_E##name = code,
    OV_ERROR_MAP(OV_ERROR_ENUM)
#undef OV_ERROR_ENUM
} ov_error;

/* A static English description of code; never NULL, also for unknown codes. */
const char *ov_strerror(int code);

/* The symbolic name ("OV_ENOTFOUND") of code, for logs; never NULL. */
const char *ov_error_name(int code);

#endif
