/*
 * The node's configuration: built-in defaults, then a JSON file (--config FILE), then environment
 * variables (OLIEVLEK_*), then command-line flags — each later source overriding the earlier.
 * docs/operations.md lists every setting.
 */
#ifndef OV_CONFIG_H
#define OV_CONFIG_H

#include <stddef.h>

typedef struct ov_config {
    char listen_host[64];
    int listen_port;
    char data_dir[512];
    char web_root[512];
    char key_file[512];  /* empty: <data_dir>/node.key */
    char node_name[128]; /* shown in /api/v1/node and the node's region record */
    int demo;            /* load the embedded demo dataset into an empty store */
    size_t max_body;     /* request body limit in bytes */
    size_t map_size;     /* LMDB map size in bytes */
    unsigned request_timeout_s;
    unsigned writer_max_batch;      /* write ops per transaction (1 = one commit per write) */
    int log_level;                  /* 0 debug, 1 info, 2 warn, 3 error */
    unsigned max_connections;       /* open HTTP and websocket connections */
    unsigned live_max_per_address;  /* live websockets from one address */
    unsigned live_handshakes_per_s; /* new live websockets per second from one address */
    unsigned live_heartbeat_s;      /* seconds between heartbeats */
    unsigned live_queue;            /* changes queued for one connection before it is closed */
    char peers[4096]; /* "NODEID@ws://host:port,NODEID" (federation.h); empty: no peers */
} ov_config;

void ov_config_defaults(ov_config *config);

/* Applies one setting by its name as used in the file ("listen", "data_dir", …), the variable
 * (OLIEVLEK_LISTEN, …) and the flag (--listen, …). Errors: OV_EINVAL with a message in err. */
int ov_config_set(ov_config *config, const char *name, const char *value, char *err,
                  size_t err_size);

/* Reads a JSON object of settings. Errors: OV_EIO, OV_EPARSE, OV_EINVAL with err filled. */
int ov_config_load_file(ov_config *config, const char *path, char *err, size_t err_size);

/* Applies OLIEVLEK_<NAME> variables for every setting. */
int ov_config_load_env(ov_config *config, char *err, size_t err_size);

/* Parses flags --name=value / --name value / --demo from argv[first..argc). Non-flag arguments are
 * moved to operands (borrowed from argv), at most max_operands, and so are unknown options (a
 * subcommand's own). --config is skipped: read it first with ov_config_file_arg. Errors: OV_EINVAL
 * with err filled. */
int ov_config_parse_args(ov_config *config, int argc, char **argv, int first, char **operands,
                         int max_operands, int *operand_count, char *err, size_t err_size);

/* The FILE of a --config FILE (or --config=FILE) flag in argv, or NULL. */
const char *ov_config_file_arg(int argc, char **argv);

/* The usage text for --help. */
const char *ov_config_usage(void);

#endif
