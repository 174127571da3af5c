/*
 * The web client's files, served from memory. ov_static_files_open reads a web root once at
 * start (at most OV_STATIC_MAX_TOTAL bytes, OV_STATIC_MAX_FILE per file; regular files only,
 * symlinks and dot-files are skipped, so nothing outside the root is ever read) and precomputes
 * for each file its MIME type, a strong ETag and, when smaller, a gzip copy. Requests are looked
 * up in that table only, so no request path can reach the file system.
 */
#ifndef OV_STATIC_FILES_H
#define OV_STATIC_FILES_H

#include "server/http.h"

#define OV_STATIC_MAX_TOTAL (64u << 20)
#define OV_STATIC_MAX_FILE  (8u << 20)
#define OV_STATIC_MAX_FILES 4096

typedef struct ov_static_files ov_static_files;

/* Loads root. Errors: OV_EIO (unreadable root or file), OV_ETOOBIG (a file or the total over its
 * cap, or too many files), OV_ENOMEM. *out is owned by the caller: ov_static_files_free. */
int ov_static_files_open(const char *root, ov_static_files **out);

/* Answers GET or HEAD of a file: 200 (gzip when Accept-Encoding allows it and it is smaller),
 * 304 when If-None-Match matches. "/" and directories mean index.html; a path with no file and no
 * dot in its last segment (a client-side route such as /zaken/01J…) gets index.html. Returns 1
 * when it answered (the request is then gone), 0 when it did not (other methods, paths with "..",
 * backslashes or control characters, unknown files) and the caller still owns the request. */
int ov_static_files_serve(ov_static_files *files, ov_http_request *request);

void ov_static_files_free(ov_static_files *files);

#endif
