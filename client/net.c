/*
 * HTTP requests to the node through libcurl's easy interface. One handle per olv_net, reused so
 * a pull's requests share one keep-alive connection.
 */
#include "client/net.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/error.h"

struct olv_net {
    CURL *curl;
    char *base_url;
};

typedef struct {
    const olv_request *request;
    olv_response *response;
    int overflow;
} transfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void olv_net_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

olv_net *olv_net_new(const char *base_url)
{
    olv_net_global_init();
    olv_net *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->base_url = strdup(base_url);
    net->curl = curl_easy_init();
    if (!net->base_url || !net->curl) {
        olv_net_free(net);
        return NULL;
    }
    /* A trailing slash would double the one every path starts with. */
    size_t n = strlen(net->base_url);
    while (n > 0 && net->base_url[n - 1] == '/')
        net->base_url[--n] = '\0';
    return net;
}

void olv_net_free(olv_net *net)
{
    if (!net)
        return;
    if (net->curl)
        curl_easy_cleanup(net->curl);
    free(net->base_url);
    free(net);
}

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    transfer *t = arg;
    size_t len = size * count;
    if (ov_buf_append(&t->response->body, data, len) != OV_OK) {
        t->overflow = 1;
        return 0; /* makes curl abort with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Copies a header's value (trimmed) into out when line is "name: value". */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return 0;
    const char *v = line + name_len + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t n = (size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static size_t on_header(char *data, size_t size, size_t count, void *arg)
{
    transfer *t = arg;
    olv_response *r = t->response;
    size_t len = size * count;
    char value[160];
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new status line (after a 100 Continue, say): forget the earlier headers. */
        r->content_type[0] = r->etag[0] = r->location[0] = '\0';
        r->replayed = 0;
        r->retry_after_s = 0;
    } else if (header_value(data, len, "content-type", r->content_type, sizeof r->content_type)) {
    } else if (header_value(data, len, "etag", value, sizeof value)) {
        const char *v = value;
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
        if (n >= sizeof r->etag)
            n = sizeof r->etag - 1;
        memcpy(r->etag, v, n);
        r->etag[n] = '\0';
    } else if (header_value(data, len, "location", r->location, sizeof r->location)) {
    } else if (header_value(data, len, "idempotency-replayed", value, sizeof value)) {
        r->replayed = strcasecmp(value, "true") == 0;
    } else if (header_value(data, len, "retry-after", value, sizeof value)) {
        r->retry_after_s = (unsigned)strtoul(value, NULL, 10);
    }
    return len;
}

int olv_net_send(olv_net *net, const olv_request *request, olv_response *response, char *error,
                 size_t error_size)
{
    memset(response, 0, sizeof *response);
    size_t max_body = request->max_body ? request->max_body : (4u << 20);
    if (request->reuse && request->reuse->data && request->reuse->cap > 0) {
        ov_buf_adopt(&response->body, request->reuse->data, request->reuse->cap, 0, max_body);
        ov_buf_init(request->reuse, 0);
    } else {
        ov_buf_init(&response->body, max_body);
    }
    error[0] = '\0';

    size_t url_len = strlen(net->base_url) + strlen(request->path) + 1;
    char *url = malloc(url_len);
    if (!url) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    snprintf(url, url_len, "%s%s", net->base_url, request->path);

    struct curl_slist *headers = NULL;
    char line[256];
    /* curl would otherwise ask for 100-continue on larger bodies and wait for it. */
    headers = curl_slist_append(headers, "Expect:");
    headers = curl_slist_append(headers, "Accept-Language: nl");
    if (request->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", request->content_type);
        headers = curl_slist_append(headers, line);
    }
    if (request->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", request->token);
        headers = curl_slist_append(headers, line);
    }
    if (request->if_match) {
        snprintf(line, sizeof line, "If-Match: \"%s\"", request->if_match);
        headers = curl_slist_append(headers, line);
    }
    if (request->idempotency_key) {
        snprintf(line, sizeof line, "Idempotency-Key: %s", request->idempotency_key);
        headers = curl_slist_append(headers, line);
    }

    transfer t = {request, response, 0};
    CURL *c = net->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A node that stops sending for 30 s is as good as gone; the pull resumes next time. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
    /* Reads of up to 512 KiB instead of curl's 16 KiB: a clone's answers are megabytes, and at
     * 16 KiB the receiving thread made ~5,300 recv and as many poll calls per 100,000 records. */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L << 10);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "olievlek/0.1");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(request->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request->method);
        if (request->body || strcmp(request->method, "DELETE") != 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, request->body ? request->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_len);
        }
    }

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    free(url);
    if (rc != CURLE_OK) {
        if (t.overflow)
            snprintf(error, error_size,
                     "the node's answer is larger than this client accepts "
                     "(%zu bytes)",
                     response->body.max);
        else
            snprintf(error, error_size, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response->status);
    return 0;
}

void olv_response_free(olv_response *response)
{
    ov_buf_free(&response->body);
}
