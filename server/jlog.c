/*
 * JSON-lines logger. A line is built in a stack buffer (no allocation for string fields, so
 * logging works when memory is short) and written with one write(2): POSIX makes writes to the
 * same pipe or file atomic up to PIPE_BUF and, for the sizes we write, unbroken in practice, so
 * concurrent threads need no lock. The level is an atomic for the same reason.
 */
#include "server/jlog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = OV_JLOG_INFO;
static atomic_int out_fd = 2;

void ov_jlog_set_level(ov_jlog_level level)
{
    if (level < OV_JLOG_DEBUG)
        level = OV_JLOG_DEBUG;
    if (level > OV_JLOG_ERROR)
        level = OV_JLOG_ERROR;
    atomic_store(&min_level, (int)level);
}

ov_jlog_level ov_jlog_get_level(void)
{
    return (ov_jlog_level)atomic_load(&min_level);
}

int ov_jlog_enabled(ov_jlog_level level)
{
    return (int)level >= atomic_load(&min_level);
}

void ov_jlog_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

static const char *level_name(ov_jlog_level level)
{
    switch (level) {
    case OV_JLOG_DEBUG:
        return "debug";
    case OV_JLOG_INFO:
        return "info";
    case OV_JLOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

/* A line under construction. Room for the closing "}\n" is always kept back, so a line that
 * runs out of space is cut at a field boundary and still ends well-formed. */
typedef struct {
    char data[OV_JLOG_LINE_MAX];
    size_t len;
    int full;
} line;

#define LINE_RESERVE 2

static void put_raw(line *l, const char *s, size_t n)
{
    if (l->full || l->len + n > sizeof l->data - LINE_RESERVE) {
        l->full = 1;
        return;
    }
    memcpy(l->data + l->len, s, n);
    l->len += n;
}

/* Appends s as a JSON string. Control characters are escaped; bytes >= 0x80 pass through (our
 * strings are UTF-8; invalid bytes are replaced so the line stays parseable). */
static void put_string(line *l, const char *s)
{
    char tmp[OV_JLOG_LINE_MAX];
    size_t n = 0;
    size_t room = sizeof l->data - LINE_RESERVE - l->len;
    if (l->full)
        return;
    tmp[n++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        size_t k = 0;
        unsigned char c = *p;
        size_t adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            k = 2;
        } else if (c < 0x20 || c == 0x7f) {
            k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else if (c < 0x80) {
            esc[0] = (char)c;
            k = 1;
        } else {
            /* Copy a well-formed UTF-8 sequence, or U+FFFD for a bad byte. */
            size_t want = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            size_t i = 1;
            while (want && i < want && (p[i] & 0xc0) == 0x80)
                i++;
            if (want && i == want && c < 0xf5) {
                memcpy(esc, p, want);
                k = want;
                adv = want;
            } else {
                memcpy(esc, "\xef\xbf\xbd", 3);
                k = 3;
            }
        }
        if (n + k + 1 > room || n + k + 1 > sizeof tmp) /* keep room for the closing quote */
            break;
        memcpy(tmp + n, esc, k);
        n += k;
        p += adv;
    }
    tmp[n++] = '"';
    put_raw(l, tmp, n);
}

static void begin_line(line *l, ov_jlog_level level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    char stamp[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(stamp, sizeof stamp, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000);
    l->len = 0;
    l->full = 0;
    put_raw(l, stamp, (size_t)n);
    put_raw(l, ",\"level\":\"", 10);
    put_raw(l, level_name(level), strlen(level_name(level)));
    put_raw(l, "\",\"event\":", 10);
    put_string(l, event ? event : "");
}

/* Appends one field, or nothing when it does not fit whole. */
static void put_field(line *l, const char *key, const char *raw_value, const char *string_value)
{
    size_t mark = l->len;
    put_raw(l, ",", 1);
    put_string(l, key);
    put_raw(l, ":", 1);
    if (raw_value)
        put_raw(l, raw_value, strlen(raw_value));
    else
        put_string(l, string_value);
    if (l->full)
        l->len = mark;
}

static void end_line(line *l)
{
    /* The reserve guarantees room for these two bytes. */
    l->data[l->len++] = '}';
    l->data[l->len++] = '\n';
    const char *p = l->data;
    size_t left = l->len;
    int fd = atomic_load(&out_fd);
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log */
        p += w;
        left -= (size_t)w;
    }
}

static int reserved_key(const char *key)
{
    return strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "event") == 0;
}

void ov_jlog(ov_jlog_level level, const char *event, ...)
{
    if (!ov_jlog_enabled(level))
        return;
    line l;
    begin_line(&l, level, event);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *value = va_arg(ap, const char *);
        if (reserved_key(key))
            continue;
        put_field(&l, key, value ? NULL : "null", value);
    }
    va_end(ap);
    end_line(&l);
}

void ov_jlog_json(ov_jlog_level level, const char *event, const json_t *fields)
{
    if (!ov_jlog_enabled(level))
        return;
    line l;
    begin_line(&l, level, event);
    const char *key;
    json_t *value;
    if (json_is_object(fields)) {
        json_object_foreach((json_t *)fields, key, value)
        {
            if (reserved_key(key))
                continue;
            if (json_is_string(value)) {
                put_field(&l, key, NULL, json_string_value(value));
                continue;
            }
            char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
            if (text) {
                put_field(&l, key, text, NULL);
                free(text);
            }
        }
    }
    end_line(&l);
}
