/*
 * In-memory static files. The table is a sorted array of paths ("/index.html") searched with
 * bsearch. Loading walks the root with openat(O_NOFOLLOW) and fstat, so a symlink anywhere in the
 * tree is skipped rather than followed out of the root, and a file swapped for a symlink between
 * readdir and open is refused by the kernel. The ETag is a hash of the content (64-bit FNV-1a and
 * CRC-32 with the length), the gzip copy gets its own tag, since it is another representation.
 * Cache-Control: "no-cache" everywhere (revalidate with the ETag, answered by a cheap 304) except
 * for names carrying a content hash (app.3f9a2b1c.js), which are immutable for a year.
 */
#include "server/static_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "proto/error.h"

#define MAX_DEPTH    16
#define PATH_MAX_LEN 512

typedef struct {
    char *path; /* "/css/site.css" */
    unsigned char *data;
    size_t len;
    unsigned char *gz; /* NULL when gzip does not help */
    size_t gz_len;
    const char *type;
    const char *cache;
    char etag[48];
    char etag_gz[48];
} entry;

struct ov_static_files {
    entry *entries;
    size_t count, cap;
    size_t total;
};

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
};

static const char *mime_for(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
                return mime_types[i].type;
    return "application/octet-stream";
}

static int compressible(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strstr(type, "json") || strstr(type, "svg") ||
           strstr(type, "x-icon");
}

/* A dot-separated name segment of 8+ hex digits marks a content-hashed, immutable file. */
static int hashed_name(const char *path)
{
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
        size_t n = 0;
        while (p[1 + n] && p[1 + n] != '.' &&
               ((p[1 + n] >= '0' && p[1 + n] <= '9') || (p[1 + n] >= 'a' && p[1 + n] <= 'f')))
            n++;
        if (n >= 8 && p[1 + n] == '.')
            return 1;
    }
    return 0;
}

static void make_etags(entry *e)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < e->len; i++)
        h = (h ^ e->data[i]) * 1099511628211ull;
    uLong crc = crc32(0L, e->data, (uInt)e->len);
    snprintf(e->etag, sizeof e->etag, "\"%016llx%08lx%zx\"", (unsigned long long)h,
             (unsigned long)crc, e->len);
    snprintf(e->etag_gz, sizeof e->etag_gz, "\"%016llx%08lx%zx-gz\"", (unsigned long long)h,
             (unsigned long)crc, e->len);
}

static void gzip_if_smaller(entry *e)
{
    if (!compressible(e->type) || e->len < 256)
        return;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    uLong bound = deflateBound(&z, (uLong)e->len);
    unsigned char *out = malloc(bound);
    if (out) {
        z.next_in = e->data;
        z.avail_in = (uInt)e->len;
        z.next_out = out;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out < e->len) {
            e->gz = out;
            e->gz_len = z.total_out;
            out = NULL;
        }
        free(out);
    }
    deflateEnd(&z);
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return OV_EIO;
        got += (size_t)n;
    }
    return OV_OK;
}

static int add_file(ov_static_files *sf, int dirfd, const char *name, const char *path)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? OV_OK : OV_EIO; /* a symlink: skipped */
    struct stat st;
    int rc = OV_OK;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return OV_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return OV_OK;
    }
    if ((size_t)st.st_size > OV_STATIC_MAX_FILE ||
        sf->total + (size_t)st.st_size > OV_STATIC_MAX_TOTAL || sf->count == OV_STATIC_MAX_FILES) {
        close(fd);
        return OV_ETOOBIG;
    }
    if (sf->count == sf->cap) {
        size_t cap = sf->cap ? sf->cap * 2 : 64;
        entry *grown = realloc(sf->entries, cap * sizeof *grown);
        if (!grown) {
            close(fd);
            return OV_ENOMEM;
        }
        sf->entries = grown;
        sf->cap = cap;
    }
    entry *e = &sf->entries[sf->count];
    memset(e, 0, sizeof *e);
    e->len = (size_t)st.st_size;
    e->data = malloc(e->len ? e->len : 1);
    e->path = strdup(path);
    if (!e->data || !e->path) {
        free(e->data);
        free(e->path);
        close(fd);
        return OV_ENOMEM;
    }
    rc = read_all(fd, e->data, e->len);
    close(fd);
    if (rc != OV_OK) {
        free(e->data);
        free(e->path);
        return rc;
    }
    e->type = mime_for(path);
    e->cache = hashed_name(path) ? "public, max-age=31536000, immutable" : "no-cache";
    make_etags(e);
    gzip_if_smaller(e);
    sf->total += e->len;
    sf->count++;
    return OV_OK;
}

static int walk(ov_static_files *sf, int dirfd, const char *prefix, int depth)
{
    if (depth > MAX_DEPTH)
        return OV_OK;
    int fd = dup(dirfd);
    if (fd < 0)
        return OV_EIO;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return OV_EIO;
    }
    int rc = OV_OK;
    struct dirent *d;
    while (rc == OV_OK && (d = readdir(dir)) != NULL) {
        if (d->d_name[0] == '.') /* ".", "..", and hidden files such as .git */
            continue;
        char path[PATH_MAX_LEN];
        int n = snprintf(path, sizeof path, "%s/%s", prefix, d->d_name);
        if (n < 0 || (size_t)n >= sizeof path || strchr(d->d_name, '\\'))
            continue;
        struct stat st;
        if (fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue;
            rc = walk(sf, sub, path, depth + 1);
            close(sub);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(sf, dirfd, d->d_name, path);
        }
    }
    closedir(dir);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

int ov_static_files_open(const char *root, ov_static_files **out)
{
    *out = NULL;
    ov_static_files *sf = calloc(1, sizeof *sf);
    if (!sf)
        return OV_ENOMEM;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        free(sf);
        return OV_EIO;
    }
    int rc = walk(sf, fd, "", 0);
    close(fd);
    if (rc != OV_OK) {
        ov_static_files_free(sf);
        return rc;
    }
    qsort(sf->entries, sf->count, sizeof *sf->entries, by_path);
    *out = sf;
    return OV_OK;
}

void ov_static_files_free(ov_static_files *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->count; i++) {
        free(sf->entries[i].path);
        free(sf->entries[i].data);
        free(sf->entries[i].gz);
    }
    free(sf->entries);
    free(sf);
}

static entry *lookup(ov_static_files *sf, const char *path)
{
    entry key = {.path = (char *)path};
    return bsearch(&key, sf->entries, sf->count, sizeof *sf->entries, by_path);
}

/* Does the comma-separated list in header (If-None-Match) contain tag, or "*"? Weak
 * comparison, as RFC 9110 prescribes for If-None-Match. */
static int etag_listed(const char *header, const char *tag)
{
    size_t tag_len = strlen(tag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t n = strcspn(p, ", \t");
        if (n == tag_len && strncmp(p, tag, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static int accepts_gzip(const char *header)
{
    if (!header)
        return 0;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ";,");
        size_t name_len = n;
        while (name_len && (p[name_len - 1] == ' ' || p[name_len - 1] == '\t'))
            name_len--;
        int is_gzip = (name_len == 4 && strncasecmp(p, "gzip", 4) == 0) ||
                      (name_len == 6 && strncasecmp(p, "x-gzip", 6) == 0) ||
                      (name_len == 1 && *p == '*');
        p += n;
        double q = 1;
        while (*p == ';') {
            p++;
            while (*p == ' ')
                p++;
            if ((*p == 'q' || *p == 'Q') && p[1] == '=')
                q = strtod(p + 2, NULL);
            p += strcspn(p, ";,");
        }
        if (is_gzip)
            return q > 0;
    }
    return 0;
}

static int safe_path(const char *path)
{
    if (path[0] != '/' || strstr(path, "..") || strchr(path, '\\') || strlen(path) >= PATH_MAX_LEN)
        return 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int ov_static_files_serve(ov_static_files *sf, ov_http_request *request)
{
    ov_http_method method = ov_http_request_method(request);
    if (!sf || (method != OV_HTTP_GET && method != OV_HTTP_HEAD))
        return 0;
    const char *path = ov_http_request_path(request);
    if (!safe_path(path))
        return 0;
    char candidate[PATH_MAX_LEN + 16];
    size_t len = strlen(path);
    entry *e = NULL;
    if (path[len - 1] == '/') {
        snprintf(candidate, sizeof candidate, "%sindex.html", path);
        e = lookup(sf, candidate);
    } else {
        e = lookup(sf, path);
        if (!e) { /* a directory? */
            snprintf(candidate, sizeof candidate, "%s/index.html", path);
            e = lookup(sf, candidate);
        }
        if (!e && !strchr(strrchr(path, '/'), '.'))
            e = lookup(sf, "/index.html"); /* a client-side route */
    }
    if (!e)
        return 0;

    int gz = e->gz && accepts_gzip(ov_http_request_header(request, "accept-encoding"));
    const char *etag = gz ? e->etag_gz : e->etag;
    char headers[512];
    snprintf(headers, sizeof headers, "ETag: %s\r\nCache-Control: %s\r\n%s%s", etag, e->cache,
             e->gz ? "Vary: Accept-Encoding\r\n" : "", gz ? "Content-Encoding: gzip\r\n" : "");
    const char *inm = ov_http_request_header(request, "if-none-match");
    if (inm && (etag_listed(inm, e->etag) || etag_listed(inm, e->etag_gz))) {
        ov_http_respond(request, 304, NULL, headers, NULL, 0, "/static");
        return 1;
    }
    ov_http_respond(request, 200, e->type, headers, gz ? e->gz : e->data, gz ? e->gz_len : e->len,
                    "/static");
    return 1;
}
