/* Configuration precedence and validation: file < environment < flags; bad values are refused
 * with a message that names the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/error.h"
#include "server/config.h"

static void test_defaults(void **state)
{
    ov_config config;
    ov_config_defaults(&config);
    assert_string_equal(config.listen_host, "127.0.0.1");
    assert_int_equal(config.listen_port, 8080);
    assert_int_equal(config.max_body, 1024 * 1024);
    assert_int_equal(config.demo, 0);
}

static void test_values_are_validated(void **state)
{
    ov_config config;
    char err[256];
    ov_config_defaults(&config);
    assert_int_equal(ov_config_set(&config, "listen", "[::1]:9000", err, sizeof err), OV_OK);
    assert_string_equal(config.listen_host, "::1");
    assert_int_equal(config.listen_port, 9000);
    assert_int_equal(ov_config_set(&config, "listen", "nocolon", err, sizeof err), OV_EINVAL);
    assert_non_null(strstr(err, "listen"));
    assert_int_equal(ov_config_set(&config, "listen", "h:70000", err, sizeof err), OV_EINVAL);
    assert_int_equal(ov_config_set(&config, "max_body", "2m", err, sizeof err), OV_OK);
    assert_int_equal(config.max_body, 2 * 1024 * 1024);
    assert_int_equal(ov_config_set(&config, "max_body", "-1", err, sizeof err), OV_EINVAL);
    assert_int_equal(ov_config_set(&config, "max_body", "5q", err, sizeof err), OV_EINVAL);
    assert_int_equal(ov_config_set(&config, "log_level", "loud", err, sizeof err), OV_EINVAL);
    assert_int_equal(ov_config_set(&config, "nonsense", "1", err, sizeof err), OV_EINVAL);
    assert_non_null(strstr(err, "nonsense"));
    assert_int_equal(ov_config_set(&config, "demo", "maybe", err, sizeof err), OV_EINVAL);
}

static void test_precedence(void **state)
{
    char path[] = "/tmp/olievlek-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *json = "{\"listen\": \"127.0.0.1:7000\", \"node_name\": \"Bestand\", "
                       "\"max_body\": \"64k\", \"demo\": true}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);

    ov_config config;
    char err[256];
    ov_config_defaults(&config);
    assert_int_equal(ov_config_load_file(&config, path, err, sizeof err), OV_OK);
    assert_int_equal(config.listen_port, 7000);
    assert_int_equal(config.demo, 1);
    setenv("OLIEVLEK_NODE_NAME", "Omgeving", 1);
    setenv("OLIEVLEK_LISTEN", "127.0.0.1:7001", 1);
    assert_int_equal(ov_config_load_env(&config, err, sizeof err), OV_OK);
    assert_string_equal(config.node_name, "Omgeving");
    char *argv[] = {"olievlekd", "--config", path,   "--listen=127.0.0.1:7002",
                    "--no-such", "value",    "extra"};
    char *operands[8];
    int count = 0;
    assert_int_equal(
        ov_config_parse_args(&config, 7, argv, 1, operands, 8, &count, err, sizeof err), OV_OK);
    assert_int_equal(config.listen_port, 7002);        /* flag beats environment */
    assert_string_equal(config.node_name, "Omgeving"); /* --config is not re-read */
    assert_int_equal(config.max_body, 64 * 1024);      /* file value kept */
    assert_int_equal(count, 3);                        /* unknown option and operand pass */
    assert_string_equal(operands[0], "--no-such");
    assert_string_equal(operands[2], "extra");
    assert_string_equal(ov_config_file_arg(7, argv), path);
    unsetenv("OLIEVLEK_NODE_NAME");
    unsetenv("OLIEVLEK_LISTEN");

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"listen\": 5,", 13), 13);
    close(fd);
    assert_int_equal(ov_config_load_file(&config, path, err, sizeof err), OV_EPARSE);
    assert_non_null(strstr(err, path));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_are_validated),
        cmocka_unit_test(test_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
