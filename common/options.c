/* SPDX-License-Identifier: MIT */
/* Flags and JSON config from one table. Every string value ends up on the
 * heap (defaults are duplicated first) so options_free can free them all. */
#include "options.h"

#include "cleanup.h"
#include "log.h"
#include "host-port.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_size(const char *text, uint64_t *bytes)
{
    char *end;
    errno = 0;
    if (!text || *text == '\0' || *text == '-')
        return -1;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    case '\0':
        break;
    default:
        return -1;
    }
    if (*end && end[1] != '\0' && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
        return -1;
    if (shift && value > (UINT64_MAX >> shift))
        return -1;
    *bytes = (uint64_t)value << shift;
    return 0;
}

static int parse_uint(const char *text, unsigned *out)
{
    char *end;
    errno = 0;
    if (!text || *text == '\0' || *text == '-')
        return -1;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || *end != '\0' || value > 0xffffffffu)
        return -1;
    *out = (unsigned)value;
    return 0;
}

static const char *type_words(enum option_type type)
{
    switch (type) {
    case OPTION_SIZE:
        return "a size in bytes (e.g. 4096, 256K, 1G)";
    case OPTION_UINT:
        return "a non-negative integer";
    case OPTION_BOOL:
        return "true or false";
    case OPTION_AMOUNT:
        return "a non-negative integer or a string";
    default:
        return "a string";
    }
}

/* True for the types stored as a heap string. */
static bool is_string(enum option_type type)
{
    return type == OPTION_STRING || type == OPTION_AMOUNT;
}

/* Stores TEXT into SPEC's value; -1 if it does not parse. */
static int set_from_text(const struct option_spec *spec, const char *text)
{
    switch (spec->type) {
    case OPTION_STRING:
    case OPTION_AMOUNT: {
        char **dest = spec->value;
        free(*dest);
        *dest = strdup(text);
        return *dest ? 0 : (errno = ENOMEM, -1);
    }
    case OPTION_SIZE:
        return parse_size(text, spec->value);
    case OPTION_UINT:
        return parse_uint(text, spec->value);
    case OPTION_BOOL:
        *(bool *)spec->value = true;
        return 0;
    }
    return -1;
}

/* Stores a JSON VALUE into SPEC's value; -1 if its type does not fit. */
static int set_from_json(const struct option_spec *spec, json_t *value)
{
    if (spec->type == OPTION_BOOL) {
        if (!json_is_boolean(value))
            return -1;
        *(bool *)spec->value = json_is_true(value);
        return 0;
    }
    if (json_is_integer(value) && spec->type != OPTION_STRING) {
        char text[32];
        if (json_integer_value(value) < 0)
            return -1;
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return set_from_text(spec, text);
    }
    if (!json_is_string(value))
        return -1;
    return set_from_text(spec, json_string_value(value));
}

static void print_help(const struct program_info *info, const struct option_spec *specs, size_t n)
{
    printf("%s - %s\n\nUsage: %s %s\n\nOptions:\n", info->name, info->summary, info->name,
           info->usage);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", specs[i].name, specs[i].metavar ? " " : "",
                 specs[i].metavar ? specs[i].metavar : "");
        printf("  %-28s %s\n", left, specs[i].help);
    }
    printf("  %-28s %s\n  %-28s %s\n  %-28s %s\n", "--config FILE.json",
           "read options from a JSON object (keys: flag names with '_' for '-'); flags win",
           "--help", "show this help and exit", "--version", "show the version and exit");
}

static const struct option_spec *find_spec(const struct option_spec *specs, size_t n,
                                           const char *name, size_t len, bool underscores)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = specs[i].name;
        if (strlen(s) != len)
            continue;
        size_t j = 0;
        while (j < len && (s[j] == name[j] || (underscores && s[j] == '-' && name[j] == '_')))
            j++;
        if (j == len)
            return &specs[i];
    }
    return NULL;
}

static int load_config(const char *path, const struct option_spec *specs, size_t n,
                       const bool *from_flags, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "cannot read config %s: %s (line %d)", path, jerr.text, jerr.line);
        return -1;
    }
    int r = 0;
    const char *key;
    json_t *value;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config %s must be a JSON object", path);
        r = -1;
    }
    json_object_foreach(r == 0 ? root : NULL, key, value)
    {
        const struct option_spec *spec = find_spec(specs, n, key, strlen(key), true);
        if (!spec) {
            snprintf(err, errlen, "unknown key \"%s\" in config %s", key, path);
            r = -1;
            break;
        }
        if (from_flags[spec - specs])
            continue;
        errno = 0;
        if (set_from_json(spec, value) < 0) {
            if (errno == ENOMEM)
                snprintf(err, errlen, "out of memory reading config %s", path);
            else
                snprintf(err, errlen, "config %s: \"%s\" must be %s", path, key,
                         type_words(spec->type));
            r = -1;
            break;
        }
    }
    json_decref(root);
    return r;
}

/* Duplicates string defaults so every stored string is ours to free; -1
 * (ENOMEM) if one does not fit (those not duplicated are then NULL). */
static int own_defaults(const struct option_spec *specs, size_t n)
{
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        char **dest = specs[i].value;
        if (is_string(specs[i].type) && *dest && !(*dest = strdup(*dest)))
            r = -1;
    }
    return r;
}

/* Parses one "--name[=value]" at ARGV[*i]; -1 with ERR on a bad flag. */
static int parse_flag(const struct option_spec *specs, size_t n, int argc, char **argv, int *i,
                      bool *from_flags, char *err, size_t errlen)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct option_spec *spec = find_spec(specs, n, arg, len, false);
    if (!spec) {
        snprintf(err, errlen, "unknown option %s (see --help)", argv[*i]);
        return -1;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (spec->type == OPTION_BOOL && value) {
        snprintf(err, errlen, "option --%s takes no value", spec->name);
        return -1;
    }
    if (spec->type != OPTION_BOOL && !value) {
        if (*i + 1 >= argc) {
            snprintf(err, errlen, "option --%s needs a value (%s)", spec->name, spec->metavar);
            return -1;
        }
        value = argv[++*i];
    }
    errno = 0;
    if (set_from_text(spec, value ? value : "") < 0) {
        if (errno == ENOMEM)
            snprintf(err, errlen, "out of memory storing --%s", spec->name);
        else
            snprintf(err, errlen, "option --%s: \"%s\" is not %s", spec->name, value,
                     type_words(spec->type));
        return -1;
    }
    from_flags[spec - specs] = true;
    return 0;
}

int options_parse(const struct program_info *info, const struct option_spec *specs, size_t n,
                  int argc, char **argv, char *err, size_t errlen)
{
    const char *config = NULL;
    if (own_defaults(specs, n) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(info, specs, n);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", info->name, GODWIT_VERSION);
            return 1;
        }
    }
    CLEANUP_FREE bool *from_flags = calloc(n + 1, sizeof *from_flags);
    if (!from_flags) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config", 8) == 0 && (argv[i][8] == '\0' || argv[i][8] == '=')) {
            config = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!config) {
                snprintf(err, errlen, "option --config needs a value (FILE.json)");
                return -1;
            }
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (options start with --)", argv[i]);
            return -1;
        }
        if (parse_flag(specs, n, argc, argv, &i, from_flags, err, errlen) < 0)
            return -1;
    }
    if (config && load_config(config, specs, n, from_flags, err, errlen) < 0)
        return -1;
    return 0;
}

int options_parse_main(const struct program_info *info, const struct option_spec *specs, size_t n,
                       int argc, char **argv,
                       int (*check)(const void *ctx, char *err, size_t errlen), const void *ctx)
{
    char err[512] = "";
    int r = options_parse(info, specs, n, argc, argv, err, sizeof err);
    if (r == 0 && check)
        r = check(ctx, err, sizeof err);
    if (r == 0)
        return -1;
    options_free(specs, n);
    if (r < 0)
        fprintf(stderr, "%s: %s\n", info->name, err);
    return r < 0 ? 2 : 0;
}

size_t daemon_option_specs(struct option_spec *specs, const struct option_spec *own, size_t n,
                           struct daemon_options *o, const struct daemon_option_help *help)
{
    const struct option_spec table[DAEMON_OPTION_ROWS] = {
        {"nbd-socket", OPTION_STRING, &o->nbd_socket, "PATH", help->nbd_socket},
        {"mount", OPTION_STRING, &o->mount, "DIR", help->mount},
        {"log-format", OPTION_STRING, &o->log_format, "text|json", "log lines (default text)"},
        {"tls-cert", OPTION_STRING, &o->tls_cert, "FILE", help->tls_cert},
        {"tls-key", OPTION_STRING, &o->tls_key, "FILE", help->tls_key},
        {"tls-ca", OPTION_STRING, &o->tls_ca, "FILE", help->tls_ca},
        {"metrics", OPTION_STRING, &o->metrics, "ADDR:PORT",
         "serve Prometheus metrics at http://ADDR:PORT/metrics (port 0 picks one)"},
    };
    memcpy(specs, own, n * sizeof *own);
    memcpy(specs + n, table, sizeof table);
    return n + DAEMON_OPTION_ROWS;
}

int daemon_options_check(const struct daemon_options *o, char *err, size_t errlen)
{
    enum log_format format;
    if (!o->log_format || log_format_parse(o->log_format, &format) < 0)
        snprintf(err, errlen, "--log-format must be text or json, not \"%s\"",
                 o->log_format ? o->log_format : "");
    else if (o->mount && !o->nbd_socket)
        snprintf(err, errlen, "--mount needs --nbd-socket (the FUSE file is served from it)");
    else if (!!o->tls_cert != !!o->tls_key)
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
    else if (o->tls_ca && !o->tls_cert)
        snprintf(err, errlen,
                 "--tls-ca needs --tls-cert and --tls-key (without them there is no TLS for the CA "
                 "to check)");
    else
        return options_check_metrics(o->metrics, err, errlen);
    return -1;
}

/* True if TEXT is a port number, 0 to 65535. */
static bool is_port(const char *text)
{
    char *end;
    errno = 0;
    unsigned long port = strtoul(text, &end, 10);
    return *text >= '0' && *text <= '9' && *end == '\0' && !errno && port <= 65535;
}

int options_check_address(const char *flag, const char *address, char *err, size_t errlen)
{
    if (address && strncmp(address, "unix:", 5) == 0 && address[5] != '\0')
        return 0;
    const char *colon = address ? strrchr(address, ':') : NULL;
    size_t host_len = colon ? (size_t)(colon - address) : 0;
    bool bracketed = host_len >= 2 && address[0] == '[' && address[host_len - 1] == ']';
    bool plain_host = host_len > 0 && !memchr(address, ':', host_len) && address[0] != '[';
    if (colon && (bracketed || plain_host) && is_port(colon + 1))
        return 0;
    snprintf(err, errlen, "--%s must be HOST:PORT, [IPv6]:PORT or unix:PATH, not \"%s\"", flag,
             address ? address : "");
    return -1;
}

void options_free(const struct option_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_string(specs[i].type)) {
            char **dest = specs[i].value;
            free(*dest);
            *dest = NULL;
        }
    }
}

int options_check_metrics(const char *value, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    char why[384];
    if (!value || host_port_resolve(value, &addr, &len, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "--metrics: %s", why);
    return -1;
}
