/*
 * The web client's files, served from memory: the web root is read once at start (bounded in
 * total and per file), each file with its MIME type, a strong ETag from its content hash and, when
 * that is smaller, a gzip copy made once. Requests are looked up in that table only, so no request
 * path can reach the file system (no traversal, no symlinks followed out of the root).
 */
#ifndef OV_STATIC_FILES_H
#define OV_STATIC_FILES_H

#include <stddef.h>

#include "server/http.h"

#define OV_STATIC_MAX_TOTAL (64u << 20)
#define OV_STATIC_MAX_FILE  (8u << 20)
#define OV_STATIC_MAX_FILES 4096

typedef struct ov_static_files ov_static_files;

/* Loads every regular file under root. Errors: OV_EIO (root unreadable), OV_ETOOBIG (over the
 * caps), OV_ENOMEM. *out owned by the caller (ov_static_files_free). */
int ov_static_files_open(const char *root, ov_static_files **out);

/* Answers a GET or HEAD for the request's path and returns 1, or returns 0 when no file matches
 * (the caller answers 404). "/" serves index.html; a path without a dot in its last segment that
 * names no file serves index.html too (client-side routes). */
int ov_static_files_serve(ov_static_files *files, ov_http_request *request);

void ov_static_files_free(ov_static_files *files);

#endif
