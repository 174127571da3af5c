/*
 * Configuration sources for olievlekd. Every setting has one name, used as the JSON key, the
 * flag (--name, with '_' spelled '-') and the environment variable (OLIEVLEK_NAME), so the three
 * sources can never disagree about what exists. Values are validated when set, so a typo in a
 * config file stops the node at start rather than surfacing later.
 */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

#ifndef OV_DEFAULT_WEB_ROOT
#define OV_DEFAULT_WEB_ROOT "web"
#endif

typedef enum {
    SETTING_TEXT,
    SETTING_SIZE,
    SETTING_UINT,
    SETTING_BOOL,
    SETTING_LISTEN,
    SETTING_LEVEL
} setting_type;

typedef struct {
    const char *name;
    setting_type type;
    size_t offset;
    size_t size;
    const char *help;
} setting;

#define TEXT(field) offsetof(ov_config, field), sizeof(((ov_config *)0)->field)
static const setting settings[] = {
    {"listen", SETTING_LISTEN, 0, 0, "address:port to serve HTTP on (default 127.0.0.1:8080)"},
    {"data_dir", SETTING_TEXT, TEXT(data_dir), "directory of the LMDB store and node key"},
    {"web_root", SETTING_TEXT, TEXT(web_root), "directory of the web client's files"},
    {"key_file", SETTING_TEXT, TEXT(key_file), "node key file (default <data_dir>/node.key)"},
    {"node_name", SETTING_TEXT, TEXT(node_name), "human name of this node"},
    {"demo", SETTING_BOOL, offsetof(ov_config, demo), sizeof(int),
     "load the embedded demo dataset into an empty store"},
    {"max_body", SETTING_SIZE, offsetof(ov_config, max_body), sizeof(size_t),
     "request body limit, bytes (suffixes k, m; default 1m)"},
    {"map_size", SETTING_SIZE, offsetof(ov_config, map_size), sizeof(size_t),
     "maximum store size, bytes (suffixes k, m, g; default 8g)"},
    {"request_timeout", SETTING_UINT, offsetof(ov_config, request_timeout_s), sizeof(unsigned),
     "seconds a client has to send a whole request (default 30)"},
    {"writer_max_batch", SETTING_UINT, offsetof(ov_config, writer_max_batch), sizeof(unsigned),
     "write ops committed together at most (default 256; 1 = one commit per write)"},
    {"max_connections", SETTING_UINT, offsetof(ov_config, max_connections), sizeof(unsigned),
     "open HTTP and websocket connections at most (default 16384)"},
    {"live_max_per_address", SETTING_UINT, offsetof(ov_config, live_max_per_address),
     sizeof(unsigned), "live websockets from one address at most (default 256)"},
    {"live_handshakes_per_s", SETTING_UINT, offsetof(ov_config, live_handshakes_per_s),
     sizeof(unsigned), "new live websockets per second from one address (default 50)"},
    {"live_heartbeat_s", SETTING_UINT, offsetof(ov_config, live_heartbeat_s), sizeof(unsigned),
     "seconds between live heartbeats; silent clients go after three (default 30)"},
    {"live_queue", SETTING_UINT, offsetof(ov_config, live_queue), sizeof(unsigned),
     "changes queued for a live connection before it is closed as too slow (default 256)"},
    {"peers", SETTING_TEXT, TEXT(peers),
     "nodes to federate with: NODEID@ws://host:port to dial, NODEID to accept; comma-separated"},
    {"log_level", SETTING_LEVEL, offsetof(ov_config, log_level), sizeof(int),
     "debug, info, warn or error (default info)"},
};
#undef TEXT

void ov_config_defaults(ov_config *config)
{
    memset(config, 0, sizeof *config);
    snprintf(config->listen_host, sizeof config->listen_host, "127.0.0.1");
    config->listen_port = 8080;
    snprintf(config->data_dir, sizeof config->data_dir, "olievlek-data");
    snprintf(config->web_root, sizeof config->web_root, "%s", OV_DEFAULT_WEB_ROOT);
    snprintf(config->node_name, sizeof config->node_name, "Olievlek");
    config->max_body = 1024 * 1024;
    config->map_size = (size_t)8 << 30;
    config->request_timeout_s = 30;
    config->writer_max_batch = 256;
    config->log_level = 1;
    config->max_connections = 16384;
    config->live_max_per_address = 256;
    config->live_handshakes_per_s = 50;
    config->live_heartbeat_s = 30;
    config->live_queue = 256;
}

static const setting *find_setting(const char *name)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static int parse_size(const char *value, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (errno || end == value || value[0] == '-')
        return OV_EINVAL;
    unsigned long long unit = 1;
    switch (tolower((unsigned char)*end)) {
    case 0:
        break;
    case 'k':
        unit = 1024ULL;
        end++;
        break;
    case 'm':
        unit = 1024ULL * 1024;
        end++;
        break;
    case 'g':
        unit = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        return OV_EINVAL;
    }
    if (*end && !(tolower((unsigned char)end[0]) == 'b' && end[1] == 0) &&
        !(tolower((unsigned char)end[0]) == 'i' && tolower((unsigned char)end[1]) == 'b' &&
          end[2] == 0))
        return OV_EINVAL;
    if (n > (unsigned long long)SIZE_MAX / unit)
        return OV_EINVAL;
    *out = (size_t)(n * unit);
    return OV_OK;
}

static int parse_listen(ov_config *config, const char *value)
{
    const char *colon = strrchr(value, ':');
    if (!colon || colon == value)
        return OV_EINVAL;
    size_t host_len = (size_t)(colon - value);
    const char *host = value;
    if (host[0] == '[' && host_len >= 2 && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (host_len == 0 || host_len >= sizeof config->listen_host)
        return OV_EINVAL;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return OV_EINVAL;
    memcpy(config->listen_host, host, host_len);
    config->listen_host[host_len] = 0;
    config->listen_port = (int)port;
    return OV_OK;
}

int ov_config_set(ov_config *config, const char *name, const char *value, char *err,
                  size_t err_size)
{
    const setting *s = find_setting(name);
    if (!s) {
        snprintf(err, err_size, "unknown setting '%s'", name);
        return OV_EINVAL;
    }
    char *field = (char *)config + s->offset;
    int rc = OV_OK;
    switch (s->type) {
    case SETTING_TEXT:
        if (strlen(value) >= s->size || value[0] == 0) {
            snprintf(err, err_size, "%s: must be 1 to %zu characters", name, s->size - 1);
            return OV_EINVAL;
        }
        snprintf(field, s->size, "%s", value);
        return OV_OK;
    case SETTING_SIZE:
        rc = parse_size(value, (size_t *)(void *)field);
        break;
    case SETTING_UINT: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(value, &end, 10);
        if (errno || *end || end == value || value[0] == '-' || n == 0 || n > 86400)
            rc = OV_EINVAL;
        else
            *(unsigned *)(void *)field = (unsigned)n;
        break;
    }
    case SETTING_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(int *)(void *)field = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(int *)(void *)field = 0;
        else
            rc = OV_EINVAL;
        break;
    case SETTING_LISTEN:
        rc = parse_listen(config, value);
        break;
    case SETTING_LEVEL: {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        rc = OV_EINVAL;
        for (int i = 0; i < 4; i++)
            if (!strcmp(value, levels[i])) {
                *(int *)(void *)field = i;
                rc = OV_OK;
            }
        break;
    }
    }
    if (rc != OV_OK)
        snprintf(err, err_size, "%s: invalid value '%s' (%s)", name, value, s->help);
    return rc;
}

int ov_config_load_file(ov_config *config, const char *path, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, err_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return OV_EPARSE;
    }
    int rc = OV_OK;
    if (!json_is_object(root)) {
        snprintf(err, err_size, "%s: must hold a JSON object of settings", path);
        rc = OV_EPARSE;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (rc != OV_OK)
            break;
        char text[600];
        if (json_is_string(value))
            snprintf(text, sizeof text, "%s", json_string_value(value));
        else if (json_is_integer(value))
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(value));
        else if (json_is_boolean(value))
            snprintf(text, sizeof text, "%s", json_is_true(value) ? "true" : "false");
        else {
            snprintf(err, err_size, "%s: setting '%s' must be a string, number or boolean", path,
                     key);
            rc = OV_EINVAL;
            break;
        }
        char inner[256];
        rc = ov_config_set(config, key, text, inner, sizeof inner);
        if (rc != OV_OK)
            snprintf(err, err_size, "%s: %s", path, inner);
    }
    json_decref(root);
    return rc;
}

int ov_config_load_env(ov_config *config, char *err, size_t err_size)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        char variable[64] = "OLIEVLEK_";
        size_t n = strlen(variable);
        for (const char *c = settings[i].name; *c && n + 1 < sizeof variable; c++)
            variable[n++] = (char)toupper((unsigned char)*c);
        variable[n] = 0;
        const char *value = getenv(variable);
        if (!value)
            continue;
        char inner[256];
        int rc = ov_config_set(config, settings[i].name, value, inner, sizeof inner);
        if (rc != OV_OK) {
            snprintf(err, err_size, "%s: %s", variable, inner);
            return rc;
        }
    }
    return OV_OK;
}

int ov_config_parse_args(ov_config *config, int argc, char **argv, int first, char **operands,
                         int max_operands, int *operand_count, char *err, size_t err_size)
{
    *operand_count = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == 0) {
            if (*operand_count >= max_operands) {
                snprintf(err, err_size, "unexpected argument '%s'", arg);
                return OV_EINVAL;
            }
            operands[(*operand_count)++] = argv[i];
            continue;
        }
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name) {
            snprintf(err, err_size, "unknown option '%s'", arg);
            return OV_EINVAL;
        }
        for (size_t k = 0; k < len; k++)
            name[k] = arg[2 + k] == '-' ? '_' : arg[2 + k];
        name[len] = 0;
        if (eq)
            value = eq + 1;
        const setting *s = find_setting(name);
        if (strcmp(name, "config") != 0 && !s) {
            /* Options of subcommands (e.g. import-schools --sector vo) pass through as operands. */
            if (*operand_count + 2 > max_operands) {
                snprintf(err, err_size, "unknown option '%s'", arg);
                return OV_EINVAL;
            }
            operands[(*operand_count)++] = argv[i];
            if (!eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                operands[(*operand_count)++] = argv[++i];
            continue;
        }
        if (!value) {
            if (s && s->type == SETTING_BOOL) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                snprintf(err, err_size, "option '--%s' needs a value", name);
                return OV_EINVAL;
            }
        }
        /* --config was read before the environment (see ov_config_file_arg): skip it here. */
        int rc =
            strcmp(name, "config") == 0 ? OV_OK : ov_config_set(config, name, value, err, err_size);
        if (rc != OV_OK)
            return rc;
    }
    return OV_OK;
}

const char *ov_config_file_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

const char *ov_config_usage(void)
{
    return "usage: olievlekd [serve] [options]\n"
           "       olievlekd import-schools FILE.csv [--sector po|so|vso|vo|mbo] [options]\n"
           "       olievlekd reindex [options]   rebuild the search index (node stopped)\n"
           "       olievlekd add-account USERNAME ROLE [SCOPE-ID] [options]   create an account\n"
           "                         (password from OLIEVLEK_PASSWORD or stdin; node stopped)\n"
           "       olievlekd node-id [options]   print the node id peers configure (creates the "
           "key)\n"
           "       olievlekd rotate-key [options]   replace the node key (node stopped; the old "
           "key signs the new one into the log)\n"
           "       olievlekd new-log [options]   start a new log instead of restoring it from "
           "peers\n"
           "       olievlekd --help | --version\n"
           "\n"
           "options (also as JSON keys in --config FILE and as OLIEVLEK_<NAME> variables;\n"
           "flags override variables, which override the file):\n"
           "  --config FILE          read settings from a JSON file\n"
           "  --listen ADDR:PORT     address to serve HTTP on (default 127.0.0.1:8080)\n"
           "  --data-dir DIR         directory of the store and node key (default olievlek-data)\n"
           "  --web-root DIR         directory of the web client's files\n"
           "  --key-file FILE        node key (default DATA_DIR/node.key, created mode 0600)\n"
           "  --node-name NAME       human name of this node\n"
           "  --demo                 load the embedded demo dataset into an empty store\n"
           "  --max-body SIZE        request body limit (default 1m)\n"
           "  --map-size SIZE        maximum store size (default 8g)\n"
           "  --request-timeout SEC  time a client has to send a request (default 30)\n"
           "  --writer-max-batch N   write ops committed together at most (default 256)\n"
           "  --log-level LEVEL      debug, info, warn or error (default info)\n"
           "  --max-connections N    open HTTP and websocket connections (default 16384)\n"
           "  --live-max-per-address N   live websockets from one address (default 256)\n"
           "  --live-handshakes-per-s N  new live websockets per second per address (default 50)\n"
           "  --live-heartbeat-s SEC     seconds between live heartbeats (default 30)\n"
           "  --live-queue N             changes queued per live connection (default 256)\n"
           "  --peers LIST           nodes to federate with: NODEID@ws://host:port (dial) or "
           "NODEID\n"
           "                         (accept), comma-separated; see olievlekd node-id\n";
}
