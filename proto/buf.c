/* Growable buffer with a hard cap; see buf.h. */
#include "proto/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

void ov_buf_init(ov_buf *buf, size_t max)
{
    memset(buf, 0, sizeof *buf);
    buf->max = max;
}

void ov_buf_free(ov_buf *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

void ov_buf_adopt(ov_buf *buf, void *data, size_t cap, size_t len, size_t max)
{
    buf->data = data;
    buf->cap = cap;
    buf->len = len;
    buf->max = max;
    buf->failed = 0;
    buf->data[len] = 0;
}

static int reserve(ov_buf *buf, size_t extra)
{
    if (buf->failed)
        return buf->failed;
    if (extra > buf->max || buf->len + extra > buf->max) {
        buf->failed = OV_ETOOBIG;
        return OV_ETOOBIG;
    }
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return OV_OK;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > buf->max + 1)
        cap = buf->max + 1;
    char *data = realloc(buf->data, cap);
    if (!data) {
        buf->failed = OV_ENOMEM;
        return OV_ENOMEM;
    }
    buf->data = data;
    buf->cap = cap;
    return OV_OK;
}

int ov_buf_append(ov_buf *buf, const void *data, size_t len)
{
    int rc = reserve(buf, len);
    if (rc)
        return rc;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = 0;
    return OV_OK;
}

int ov_buf_append_str(ov_buf *buf, const char *text)
{
    return ov_buf_append(buf, text, strlen(text));
}

int ov_buf_printf(ov_buf *buf, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (n < 0)
        return OV_EINVAL;
    int rc = reserve(buf, (size_t)n);
    if (rc)
        return rc;
    va_start(args, format);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, format, args);
    va_end(args);
    buf->len += (size_t)n;
    return OV_OK;
}

/* The JSON escape of a character that needs one (quote, backslash, control), in out. */
static size_t json_escape(unsigned char c, char out[8])
{
    static const char short_form[] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                      ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
    if (c < sizeof short_form && short_form[c]) {
        out[0] = '\\';
        out[1] = short_form[c];
        return 2;
    }
    snprintf(out, 8, "\\u%04X", c);
    return 6;
}

int ov_buf_append_json_string(ov_buf *buf, const char *text, size_t len)
{
    int rc = ov_buf_append(buf, "\"", 1);
    size_t run = 0; /* start of the characters not appended yet, none of which needs an escape */
    for (size_t i = 0; i < len && rc == OV_OK; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue; /* most text: appended in one piece with its neighbours */
        char escape[8];
        size_t n = json_escape(c, escape);
        rc = ov_buf_append(buf, text + run, i - run);
        if (rc == OV_OK)
            rc = ov_buf_append(buf, escape, n);
        run = i + 1;
    }
    if (rc == OV_OK)
        rc = ov_buf_append(buf, text + run, len - run);
    if (rc == OV_OK)
        rc = ov_buf_append(buf, "\"", 1);
    return rc;
}
