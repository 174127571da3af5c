/*
 * JSON-lines logging on stderr: one object per line, {"ts":"2026-01-02T03:04:05.678Z",
 * "level":"info","event":"http.listen",...fields}, so operators can grep by event and feed the
 * lines to any log collector without a parser of ours.
 *
 * Fields are given as NULL-terminated pairs of strings (key, value): the compiler checks the
 * sentinel, every value is escaped as a JSON string, and a caller cannot get a format and its
 * arguments out of step. For numbers, booleans or nested values use ov_jlog_json with a jansson
 * object. Each line is written with a single write(2), so lines from threads never interleave.
 * A line is capped at OV_JLOG_LINE_MAX bytes; longer values are cut (the line stays valid JSON).
 */
#ifndef OV_JLOG_H
#define OV_JLOG_H

#include <jansson.h>

typedef enum {
    OV_JLOG_DEBUG = 0,
    OV_JLOG_INFO = 1,
    OV_JLOG_WARN = 2,
    OV_JLOG_ERROR = 3,
} ov_jlog_level;

#define OV_JLOG_LINE_MAX 8192

/* Lines below level are dropped. Default OV_JLOG_INFO. Thread-safe. */
void ov_jlog_set_level(ov_jlog_level level);
ov_jlog_level ov_jlog_get_level(void);
/* True when a line at level would be written (to skip building expensive fields). */
int ov_jlog_enabled(ov_jlog_level level);

/* Logs event with string fields: key, value, key, value, ..., NULL. A NULL value is written as
 * JSON null. */
void ov_jlog(ov_jlog_level level, const char *event, ...) __attribute__((sentinel));
/* Logs event with the members of fields (a JSON object, borrowed; may be NULL). */
void ov_jlog_json(ov_jlog_level level, const char *event, const json_t *fields);

/* Redirects output to fd (default 2), for tests. Not thread-safe against concurrent logging. */
void ov_jlog_set_fd(int fd);

#define ov_jlog_debug(...) ov_jlog(OV_JLOG_DEBUG, __VA_ARGS__)
#define ov_jlog_info(...)  ov_jlog(OV_JLOG_INFO, __VA_ARGS__)
#define ov_jlog_warn(...)  ov_jlog(OV_JLOG_WARN, __VA_ARGS__)
#define ov_jlog_error(...) ov_jlog(OV_JLOG_ERROR, __VA_ARGS__)

#endif
