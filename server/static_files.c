/* The web root from memory; see static_files.h. */
#include "server/static_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "proto/crypto.h"
#include "proto/error.h"

typedef struct {
    char *path; /* "/index.html" */
    const char *type;
    char etag[24];
    char *data;
    size_t len;
    char *gzip; /* NULL when compression does not pay */
    size_t gzip_len;
    int immutable;
} static_file;

struct ov_static_files {
    static_file *files;
    size_t count;
    size_t total;
};

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".yaml", "application/yaml"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (strcasecmp(dot, mime_types[i].ext) == 0)
                return mime_types[i].type;
    return "application/octet-stream";
}

static int compressible(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strstr(type, "json") || strstr(type, "svg") ||
           strstr(type, "yaml");
}

static int read_whole(int dir_fd, const char *name, size_t size, char **out)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return OV_EIO;
    char *data = malloc(size ? size : 1);
    size_t got = 0;
    while (data && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!data || got != size) {
        free(data);
        return OV_EIO;
    }
    *out = data;
    return OV_OK;
}

static void make_gzip(static_file *file)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    uLong bound = deflateBound(&z, (uLong)file->len);
    char *out = malloc(bound);
    if (out) {
        z.next_in = (Bytef *)file->data;
        z.avail_in = (uInt)file->len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out + 64 < file->len) {
            file->gzip = out;
            file->gzip_len = z.total_out;
            out = NULL;
        }
        free(out);
    }
    deflateEnd(&z);
}

static int load_dir(ov_static_files *sf, int dir_fd, const char *prefix, int depth)
{
    if (depth > 16)
        return OV_OK;
    DIR *dir = fdopendir(dup(dir_fd));
    if (!dir)
        return OV_EIO;
    int rc = OV_OK;
    struct dirent *entry;
    while (rc == OV_OK && (entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue; /* hidden files and . / .. are never served */
        struct stat st;
        if (fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        char path[1024];
        if (snprintf(path, sizeof path, "%s/%s", prefix, entry->d_name) >= (int)sizeof path)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dir_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            if (sub >= 0) {
                rc = load_dir(sf, sub, path, depth + 1);
                close(sub);
            }
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue; /* symlinks and devices stay out */
        if ((size_t)st.st_size > OV_STATIC_MAX_FILE ||
            sf->total + (size_t)st.st_size > OV_STATIC_MAX_TOTAL ||
            sf->count >= OV_STATIC_MAX_FILES) {
            rc = OV_ETOOBIG;
            break;
        }
        static_file *grown = realloc(sf->files, (sf->count + 1) * sizeof *grown);
        if (!grown) {
            rc = OV_ENOMEM;
            break;
        }
        sf->files = grown;
        static_file *file = &sf->files[sf->count];
        memset(file, 0, sizeof *file);
        file->path = strdup(path);
        file->type = type_of(path);
        rc = file->path ? read_whole(dir_fd, entry->d_name, (size_t)st.st_size, &file->data)
                        : OV_ENOMEM;
        if (rc != OV_OK) {
            free(file->path);
            break;
        }
        file->len = (size_t)st.st_size;
        uint8_t hash[OV_HASH_BYTES];
        char hex[2 * OV_HASH_BYTES + 1];
        ov_sha256(file->data, file->len, hash);
        ov_hex_encode(hash, 8, hex);
        hex[16] = 0; /* 64 bits of the content hash tell versions apart */
        file->etag[0] = '"';
        memcpy(file->etag + 1, hex, 16);
        file->etag[17] = '"';
        file->etag[18] = 0;
        file->immutable = strstr(path, "/assets/") != NULL;
        if (compressible(file->type))
            make_gzip(file);
        sf->total += file->len;
        sf->count++;
    }
    closedir(dir);
    return rc;
}

void ov_static_files_free(ov_static_files *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->count; i++) {
        free(sf->files[i].path);
        free(sf->files[i].data);
        free(sf->files[i].gzip);
    }
    free(sf->files);
    free(sf);
}

int ov_static_files_open(const char *root, ov_static_files **out)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return OV_EIO;
    ov_static_files *sf = calloc(1, sizeof *sf);
    if (!sf) {
        close(fd);
        return OV_ENOMEM;
    }
    int rc = load_dir(sf, fd, "", 0);
    close(fd);
    if (rc != OV_OK) {
        ov_static_files_free(sf);
        return rc;
    }
    *out = sf;
    return OV_OK;
}

static const static_file *find(const ov_static_files *sf, const char *path)
{
    for (size_t i = 0; i < sf->count; i++)
        if (strcmp(sf->files[i].path, path) == 0)
            return &sf->files[i];
    return NULL;
}

static int accepts_gzip(const char *header)
{
    if (!header)
        return 0;
    const char *p = strstr(header, "gzip");
    if (!p)
        return 0;
    const char *q = strstr(p, "q=0");
    const char *comma = strchr(p, ',');
    return !(q && (!comma || q < comma) && !strstr(p, "q=0."));
}

int ov_static_files_serve(ov_static_files *sf, ov_http_request *request)
{
    const char *path = ov_http_request_path(request);
    if (strstr(path, "..") || strchr(path, '\\'))
        return 0;
    const static_file *file = strcmp(path, "/") == 0 ? find(sf, "/index.html") : find(sf, path);
    if (!file) {
        const char *last = strrchr(path, '/');
        if (last && !strchr(last, '.'))
            file = find(sf, "/index.html"); /* a client-side route */
    }
    if (!file)
        return 0;
    char headers[256];
    int gzip = file->gzip && accepts_gzip(ov_http_request_header(request, "accept-encoding"));
    snprintf(headers, sizeof headers,
             "ETag: %s\r\nCache-Control: %s\r\nVary: Accept-Encoding\r\n%s", file->etag,
             file->immutable ? "public, max-age=31536000, immutable" : "no-cache",
             gzip ? "Content-Encoding: gzip\r\n" : "");
    const char *if_none_match = ov_http_request_header(request, "if-none-match");
    if (if_none_match && strstr(if_none_match, file->etag)) {
        ov_http_respond(request, 304, NULL, headers, NULL, 0, "/static");
        return 1;
    }
    ov_http_respond(request, 200, file->type, headers, gzip ? file->gzip : file->data,
                    gzip ? file->gzip_len : file->len, "/static");
    return 1;
}
