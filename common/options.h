/* SPDX-License-Identifier: MIT */
/* Command-line flags and JSON config from one table: every flag --foo-bar
 * is also the config key "foo_bar"; flags win over the config file. */
#ifndef GODWIT_OPTIONS_H
#define GODWIT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum option_type {
    OPTION_STRING, /* char ** (strdup'ed; free with options_free) */
    OPTION_SIZE,   /* uint64_t *: bytes, with an optional K/M/G/T suffix (powers of 1024) */
    OPTION_UINT,   /* unsigned *: a plain non-negative integer */
    OPTION_BOOL,   /* bool *: a flag without argument; true/false in JSON */
    OPTION_AMOUNT, /* char **: a string the program parses itself (e.g. a rate, "50M/s"); in
                      JSON also a non-negative integer, stored as its decimal text */
};

struct option_spec {
    const char *name; /* flag name without dashes, e.g. "chunk-size" */
    enum option_type type;
    void *value;         /* where the value goes; holds the default beforehand */
    const char *metavar; /* e.g. "BYTES"; NULL for OPTION_BOOL */
    const char *help;    /* one line */
};

struct program_info {
    const char *name;    /* "godwit-seeder" */
    const char *summary; /* one sentence for --help */
    const char *usage;   /* e.g. "--image PATH [options]" */
};

/* Parses ARGV (and --config FILE, which every program accepts) into the
 * table. Returns 0 to run, 1 if --help or --version was printed (exit 0),
 * -1 on a bad flag or config, with one sentence in ERR. */
int options_parse(const struct program_info *info, const struct option_spec *specs, size_t n,
                  int argc, char **argv, char *err, size_t errlen);

/* options_parse for a program's main: also runs CHECK (may be NULL; one
 * sentence in ERR on failure) and prints "NAME: sentence" to stderr for
 * bad input. Returns -1 to go on, or the exit status main should return
 * at once: 0 after --help or --version, 2 for a bad flag or config (the
 * strings are freed then). */
int options_parse_main(const struct program_info *info, const struct option_spec *specs, size_t n,
                       int argc, char **argv,
                       int (*check)(const void *ctx, char *err, size_t errlen), const void *ctx);

/* The flags both daemons take (the same names, types and rules). */
struct daemon_options {
    char *nbd_socket;
    char *mount;
    char *log_format;
    char *tls_cert, *tls_key, *tls_ca;
    char *metrics; /* --metrics ADDR:PORT; NULL: off */
};

/* The help lines of the shared flags that differ between the daemons. */
struct daemon_option_help {
    const char *nbd_socket, *mount, *tls_cert, *tls_key, *tls_ca;
};

enum { DAEMON_OPTION_ROWS = 7 };

/* A daemon's option table: its own N rows OWN, then the shared rows
 * (nbd-socket, mount, log-format, tls-cert, tls-key, tls-ca, metrics) for D, copied
 * into SPECS, which has room for N + DAEMON_OPTION_ROWS; returns how many. */
size_t daemon_option_specs(struct option_spec *specs, const struct option_spec *own, size_t n,
                           struct daemon_options *d, const struct daemon_option_help *help);

/* The shared rules, one sentence in ERR on the first broken one: the log
 * format is text or json; --mount needs --nbd-socket; --tls-cert and
 * --tls-key go together; --tls-ca needs both. */
int daemon_options_check(const struct daemon_options *o, char *err, size_t errlen);

/* An address to listen on, given to --FLAG: "unix:PATH", or HOST:PORT
 * (HOST a name, an IPv4 address or [IPv6]; PORT 0 to 65535). -1 with one
 * sentence in ERR otherwise. */
int options_check_address(const char *flag, const char *address, char *err, size_t errlen);

/* Frees the strings options_parse stored. */
void options_free(const struct option_spec *specs, size_t n);

/* Checks a --metrics value (NULL is fine: off); -1 with one sentence in
 * ERR if it is not a HOST:PORT that resolves. */
int options_check_metrics(const char *value, char *err, size_t errlen);

/* Parses "64M", "4096", "1G" into bytes; -1 on error. */
int parse_size(const char *text, uint64_t *bytes);

#endif
