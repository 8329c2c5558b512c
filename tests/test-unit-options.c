/* SPDX-License-Identifier: MIT */
/* Unit test: flags and JSON config from one table; flags win; bad input
 * gives one sentence. */
#include "options.h"
#include "testlib.h"

#include <string.h>

struct values {
    char *image;
    uint64_t size;
    unsigned workers;
    bool exit_flag;
    char *rate;
};

static int parse(struct values *v, char *err, int argc, char **argv)
{
    const struct option_spec specs[] = {
        {"image", OPTION_STRING, &v->image, "PATH", "image"},
        {"size", OPTION_SIZE, &v->size, "BYTES", "size"},
        {"workers", OPTION_UINT, &v->workers, "N", "workers"},
        {"exit-on-complete", OPTION_BOOL, &v->exit_flag, NULL, "exit"},
        {"max-rate", OPTION_AMOUNT, &v->rate, "RATE", "rate"},
    };
    const struct program_info info = {"test", "a test", "[options]"};
    int r = options_parse(&info, specs, 5, argc, argv, err, 256);
    if (r != 0)
        options_free(specs, 5);
    return r;
}

/* The shared rules of both daemons, and listen addresses. */
static void test_daemon_rules(void)
{
    char err[256];
    struct daemon_options d = {.log_format = "text"};
    CHECK(daemon_options_check(&d, err, sizeof err) == 0, "defaults: %s", err);
    d.log_format = "yaml";
    CHECK(daemon_options_check(&d, err, sizeof err) < 0 && strstr(err, "--log-format"), "%s", err);
    d.log_format = "json", d.mount = "/mnt";
    CHECK(daemon_options_check(&d, err, sizeof err) < 0 && strstr(err, "--mount needs"), "%s", err);
    d.nbd_socket = "/run/s.sock";
    CHECK(daemon_options_check(&d, err, sizeof err) == 0, "mount with a socket: %s", err);
    d.tls_cert = "c.pem";
    CHECK(daemon_options_check(&d, err, sizeof err) < 0 && strstr(err, "go together"), "%s", err);
    d.tls_cert = NULL, d.tls_ca = "ca.pem";
    CHECK(daemon_options_check(&d, err, sizeof err) < 0 && strstr(err, "--tls-ca needs"), "%s",
          err);
    d.tls_cert = "c.pem", d.tls_key = "k.pem";
    CHECK(daemon_options_check(&d, err, sizeof err) == 0, "the TLS triplet: %s", err);

    const char *good[] = {"127.0.0.1:0", "0.0.0.0:1337", "[::]:1337",
                          "[::1]:65535", "localhost:80", "unix:/run/g.sock"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(options_check_address("listen", good[i], err, sizeof err) == 0, "%s: %s", good[i],
              err);
    const char *bad[] = {"",         "1337",   "host",    "host:", ":1337",  "host:65536",
                         "host:12x", "::1:80", "[::1:80", "unix:", "host:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(options_check_address("listen", bad[i], err, sizeof err) < 0 &&
                  strstr(err, "--listen must be"),
              "\"%s\" was accepted", bad[i]);
}

int main(void)
{
    test_daemon_rules();
    char err[256];
    uint64_t bytes;
    CHECK(parse_size("256K", &bytes) == 0 && bytes == 262144, "256K");
    CHECK(parse_size("1GiB", &bytes) == 0 && bytes == 1ull << 30, "1GiB");
    CHECK(parse_size("12x", &bytes) == -1 && parse_size("-1", &bytes) == -1, "bad sizes");

    char *dir = test_make_dir("options");
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"image\": \"/from/config\", \"size\": \"1M\", \"workers\": 3, "
          "\"exit_on_complete\": true, \"max_rate\": 50000000}",
          f);
    fclose(f);

    struct values v = {.image = "default", .workers = 8};
    char *argv1[] = {"test", "--config", path, "--workers=5", NULL};
    CHECK(parse(&v, err, 4, argv1) == 0, "parse: %s", err);
    CHECK(strcmp(v.image, "/from/config") == 0 && v.size == 1 << 20, "config applies");
    CHECK(v.workers == 5 && v.exit_flag, "flags win over config");
    CHECK(v.rate && strcmp(v.rate, "50000000") == 0, "a JSON number for an amount: %s",
          v.rate ? v.rate : "(none)");
    free(v.image);
    free(v.rate);

    f = fopen(path, "w");
    fputs("{\"max_rate\": \"50M/s\"}", f);
    fclose(f);
    struct values a = {.image = NULL};
    char *argv6[] = {"test", "--config", path, NULL};
    CHECK(parse(&a, err, 3, argv6) == 0 && a.rate && strcmp(a.rate, "50M/s") == 0,
          "a JSON string for an amount: %s", err);
    free(a.rate);
    a.rate = NULL; /* the next parse starts from no default */
    f = fopen(path, "w");
    fputs("{\"max_rate\": -5}", f);
    fclose(f);
    CHECK(parse(&a, err, 3, argv6) == -1 && strstr(err, "\"max_rate\" must be"),
          "a negative amount: %s", err);
    f = fopen(path, "w");
    fputs("{\"max_rate\": true}", f);
    fclose(f);
    CHECK(parse(&a, err, 3, argv6) == -1 && strstr(err, "\"max_rate\" must be"),
          "a boolean amount: %s", err);

    struct values w = {.image = "default"};
    char *argv2[] = {"test", "--size", "lots", NULL};
    CHECK(parse(&w, err, 3, argv2) == -1 && strstr(err, "--size"), "bad size: %s", err);
    char *argv3[] = {"test", "--nope", NULL};
    CHECK(parse(&w, err, 2, argv3) == -1 && strstr(err, "unknown option"), "unknown: %s", err);
    char *argv4[] = {"test", "--workers", NULL};
    CHECK(parse(&w, err, 2, argv4) == -1 && strstr(err, "needs a value"), "missing: %s", err);

    f = fopen(path, "w");
    fputs("{\"colour\": 1}", f);
    fclose(f);
    char *argv5[] = {"test", "--config", path, NULL};
    CHECK(parse(&w, err, 3, argv5) == -1 && strstr(err, "unknown key"), "bad key: %s", err);
    f = fopen(path, "w");
    fputs("{\"workers\": \"many\"", f);
    fclose(f);
    CHECK(parse(&w, err, 3, argv5) == -1 && strstr(err, "cannot read config"), "bad json: %s", err);
    test_cleanup_dir(dir);
    free(dir);
    printf("test-unit-options: ok\n");
    return 0;
}
