/* SPDX-License-Identifier: MIT */
/* godwit-ctl: the operator's client of both daemons. This file parses the
 * command line (a command word anywhere among the flags), checks that every
 * flag given applies to the command, prints --help (overall and per
 * command) and dispatches; bad input is one sentence and exit 2.
 *
 *   godwit-ctl --control 127.0.0.1:1338 status [--json]
 *   godwit-ctl --control 127.0.0.1:1338 watch [--interval MS]
 *   godwit-ctl --control 127.0.0.1:1338 wait local|complete [--timeout S]
 *   godwit-ctl --control 127.0.0.1:1338 finalize
 *   godwit-ctl --control 127.0.0.1:1338 switchover [--json] [--timeout S]
 *   godwit-ctl --seeder 127.0.0.1:1337 info|abort */
#include "ctl.h"
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TIMEOUT_S = 86400, MIN_INTERVAL_MS = 10, MAX_INTERVAL_MS = 3600000 };

/* The flags a command accepts beyond the address, --timeout and TLS. */
enum { TAKES_JSON = 1, TAKES_INTERVAL = 2 };

struct command {
    const char *name;
    const char *args;    /* its words after the name, for help; NULL: none */
    bool seeder;         /* talks to --seeder, else to --control */
    unsigned takes;      /* TAKES_* */
    const char *summary; /* a few words for the overall --help */
    const char *help;    /* one paragraph for its own --help */
    int (*run)(const struct ctl *ctl, const char *arg);
};

static int run_status(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_status_command(ctl);
}

static int run_watch(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_watch(ctl);
}

static int run_wait(const struct ctl *ctl, const char *arg)
{
    return ctl_wait(ctl, strcmp(arg, "complete") == 0);
}

static int run_finalize(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_finalize(ctl);
}

static int run_switchover(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_switchover(ctl);
}

static int run_info(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_seeder_info(ctl);
}

static int run_abort(const struct ctl *ctl, const char *arg)
{
    (void)arg;
    return ctl_seeder_abort(ctl);
}

static const struct command commands[] = {
    {"status", NULL, false, TAKES_JSON, "the leecher's progress, once",
     "Prints the leecher's Status once: state, chunks local, bytes pulled, throughput, dirty "
     "chunks, predicted downtime, Sync rounds, retries, verify, bandwidth cap; --json: one JSON "
     "object with every field. --timeout S: the call's deadline (5).",
     run_status},
    {"watch", NULL, false, TAKES_JSON | TAKES_INTERVAL, "live progress until COMPLETE or FAILED",
     "Prints one progress line every --interval MS (1000) until the migration is COMPLETE "
     "(exit 0) or FAILED (exit 1); a reply older than the line on screen is not shown, so no "
     "figure goes backwards. --json: one Status object per line. --timeout S: give up (exit 1).",
     run_watch},
    {"wait", "local|complete", false, TAKES_JSON, "until pre-copy caught up or COMPLETE",
     "Waits until every chunk is local (pre-copy caught up: time to finalize) or the migration "
     "is COMPLETE, then prints the Status (--json: as JSON). Exit 1 if it FAILED or --timeout S "
     "(600) passed first.",
     run_wait},
    {"finalize", NULL, false, 0, "switch over to the destination",
     "Runs the switch-over (Leecher.Finalize): freezes the source, opens the export; prints "
     "{\"downtime_us\":...,\"dirty_chunks\":...}. Safe to retry. --timeout S: deadline (60).",
     run_finalize},
    {"switchover", NULL, false, TAKES_JSON, "wait local, finalize, wait complete: all of it",
     "The whole hand-over in one command: waits until every chunk is local (pre-copy caught "
     "up), finalizes (freezes the source, opens the destination), then waits until the "
     "migration is COMPLETE; one line per step, --json: one object at the end (local_s, "
     "finalized_s, complete_s, finalize_ms, downtime_us, dirty_chunks). It may start with the "
     "leecher (a leecher not answering yet is asked again) and is safe to run again. Exit 1 if "
     "the migration FAILED, a call failed or --timeout S (600, for all of it) passed.",
     run_switchover},
    {"info", NULL, true, 0, "the seeder's state (--seeder)",
     "Prints the seeder's Info as one JSON object (state, sessions, dirty chunks, held writes). "
     "--timeout S: deadline (5).",
     run_info},
    {"abort", NULL, true, 0, "call the migration off (--seeder)",
     "Aborts the migration on the seeder (Seeder.Abort): releases held writes, ends sessions, "
     "the source stays the copy of record; prints one JSON object. --timeout S: deadline (30).",
     run_abort},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

/* The options every command parses; the checks below say which apply. */
struct flags {
    char *control, *seeder, *tls_ca, *tls_cert, *tls_key;
    unsigned timeout, interval;
    bool json;
};

/* Where the command words go, picked out of argv. */
struct words {
    const char *list[4];
    int n;
    bool help;
};

static const struct command *find_command(const char *name, const char **arg)
{
    if (strcmp(name, "wait-local") == 0 || strcmp(name, "wait-complete") == 0) {
        *arg = name + 5; /* the old names: wait local|complete --json */
        return &commands[2];
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* True if ARG ("--name" without '=') is a flag that takes the next word. */
static bool takes_value(const struct option_spec *specs, size_t n, const char *arg)
{
    if (strchr(arg, '='))
        return false;
    if (strcmp(arg, "--config") == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(arg + 2, specs[i].name) == 0)
            return specs[i].type != OPTION_BOOL;
    return false;
}

/* Moves the command words out of ARGV into WORDS, leaving the flags (and
 * --help) for options_parse; -1 with ERR for too many words. */
static int split_words(int *argc, char **argv, const struct option_spec *specs, size_t n,
                       struct words *words, char *err, size_t errlen)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            words->help = true;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            argv[out++] = argv[i];
            if (takes_value(specs, n, argv[i]) && i + 1 < *argc)
                argv[out++] = argv[++i];
        } else if (words->n == 4) {
            snprintf(err, errlen, "too many arguments, \"%s\" among them (see --help)", argv[i]);
            return -1;
        } else {
            words->list[words->n++] = argv[i];
        }
    }
    *argc = out;
    return 0;
}

static void print_overall_help(const struct option_spec *specs, size_t n)
{
    printf("godwit-ctl - drive a godwit-leecher (--control) or godwit-seeder (--seeder)\n\n"
           "Usage: godwit-ctl --control ADDR:PORT status|watch|wait local|complete|finalize|"
           "switchover [options]\n       godwit-ctl --seeder ADDR:PORT info|abort "
           "[options]\n\nCommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        printf("  %-26s %s\n", commands[i].name, commands[i].summary);
    printf("  %-26s %s\n\nOptions:\n", "wait-local, wait-complete",
           "the same as wait local|complete --json");
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", specs[i].name, specs[i].metavar ? " " : "",
                 specs[i].metavar ? specs[i].metavar : "");
        printf("  %-26s %s\n", left, specs[i].help);
    }
    printf("  %-26s %s\n  %-26s %s\n\nExit status: 0 done, 1 the call or the migration failed, "
           "2 bad input. \"godwit-ctl COMMAND --help\" describes one command.\n",
           "--help", "this help, or with a command its own", "--version", "the version");
}

static void print_command_help(const struct command *c)
{
    printf("Usage: godwit-ctl %s %s%s%s%s%s [--timeout S] [--tls-ca FILE [--tls-cert FILE "
           "--tls-key FILE]]\n\n",
           c->seeder ? "--seeder ADDR:PORT" : "--control ADDR:PORT", c->name, c->args ? " " : "",
           c->args ? c->args : "", c->takes & TAKES_JSON ? " [--json]" : "",
           c->takes & TAKES_INTERVAL ? " [--interval MS]" : "");
    printf("%s\n", c->help);
}

/* The rules no option table can say; -1 with one sentence in ERR. */
static int check_flags(const struct command *c, const struct flags *f, const struct words *w,
                       char *err, size_t errlen)
{
    const char *want = c->seeder ? "seeder" : "control", *other = c->seeder ? "control" : "seeder";
    const char *address = c->seeder ? f->seeder : f->control;
    bool alias = strncmp(w->list[0], "wait-", 5) == 0; /* wait-local: its word is in the name */
    if ((!c->args || alias) && w->n > 1)
        snprintf(err, errlen, "%s takes no arguments, not \"%s\"", w->list[0], w->list[1]);
    else if (c->args && !alias && w->n != 2)
        snprintf(err, errlen, "%s needs one of %s (see godwit-ctl %s --help)", c->name, c->args,
                 c->name);
    else if (c->args && !alias && strcmp(w->list[1], "local") != 0 &&
             strcmp(w->list[1], "complete") != 0)
        snprintf(err, errlen, "%s needs local or complete, not \"%s\"", c->name, w->list[1]);
    else if (c->seeder ? f->control != NULL : f->seeder != NULL)
        snprintf(err, errlen, "%s talks to the %s: give --%s ADDR:PORT, not --%s", c->name,
                 c->seeder ? "seeder" : "leecher", want, other);
    else if (!address)
        snprintf(err, errlen, "%s needs --%s ADDR:PORT (the %s)", c->name, want,
                 c->seeder ? "seeder's gRPC address" : "leecher's control address");
    else if (f->json && !(c->takes & TAKES_JSON))
        snprintf(err, errlen, "--json does not apply to %s (it prints JSON already)", c->name);
    else if (f->interval != UINT32_MAX && !(c->takes & TAKES_INTERVAL))
        snprintf(err, errlen, "--interval applies to watch only, not to %s", c->name);
    else if (f->interval != UINT32_MAX &&
             (f->interval < MIN_INTERVAL_MS || f->interval > MAX_INTERVAL_MS))
        snprintf(err, errlen, "--interval must be from %d to %d ms, not %u", MIN_INTERVAL_MS,
                 MAX_INTERVAL_MS, f->interval);
    else if (f->timeout != UINT32_MAX && f->timeout > MAX_TIMEOUT_S)
        snprintf(err, errlen, "--timeout must be at most %d s (a day), not %u", MAX_TIMEOUT_S,
                 f->timeout);
    else if (!!f->tls_cert != !!f->tls_key)
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
    else if (f->tls_cert && !f->tls_ca)
        snprintf(err, errlen,
                 "--tls-cert and --tls-key need --tls-ca (the CA that verifies the "
                 "daemon)");
    else
        return options_check_address(want, address, err, errlen);
    return -1;
}

/* Parses the command line into F, W and *COMMAND; the exit status to
 * return at once (0 after --help, 2 for bad input), or -1 to go on. */
static int parse(int argc, char **argv, struct flags *f, struct words *w,
                 const struct command **command, const char **arg)
{
    struct option_spec specs[] = {
        {"control", OPTION_STRING, &f->control, "ADDR:PORT", "the leecher's control address"},
        {"seeder", OPTION_STRING, &f->seeder, "ADDR:PORT", "the seeder's address (info, abort)"},
        {"json", OPTION_BOOL, &f->json, NULL, "status, watch, wait: print JSON"},
        {"interval", OPTION_UINT, &f->interval, "MS", "watch: one line every MS ms (1000)"},
        {"timeout", OPTION_UINT, &f->timeout, "S", "give up after S seconds (per command)"},
        {"tls-ca", OPTION_STRING, &f->tls_ca, "FILE", "verify the daemon with this CA (TLS)"},
        {"tls-cert", OPTION_STRING, &f->tls_cert, "FILE", "our client certificate (mTLS)"},
        {"tls-key", OPTION_STRING, &f->tls_key, "FILE", "its private key"},
    };
    enum { N_SPECS = sizeof specs / sizeof specs[0] };
    char err[512];
    const struct program_info info = {"godwit-ctl", "drive a godwit-leecher or godwit-seeder",
                                      "COMMAND [options]"};
    int r = split_words(&argc, argv, specs, N_SPECS, w, err, sizeof err);
    if (r == 0)
        r = options_parse(&info, specs, N_SPECS, argc, argv, err, sizeof err);
    if (r == 0 && w->help && w->n == 0) {
        print_overall_help(specs, N_SPECS);
        r = 1;
    } else if (r == 0 && w->n == 0) {
        snprintf(err, sizeof err,
                 "give a command: status, watch, wait, finalize, switchover, info or abort "
                 "(see --help)");
        r = -1;
    } else if (r == 0 && !(*command = find_command(w->list[0], arg))) {
        snprintf(err, sizeof err,
                 "unknown command \"%s\" (status, watch, wait, finalize, switchover, info, abort; "
                 "see --help)",
                 w->list[0]);
        r = -1;
    } else if (r == 0 && w->help) {
        print_command_help(*command);
        r = 1;
    } else if (r == 0 && check_flags(*command, f, w, err, sizeof err) < 0) {
        r = -1;
    }
    if (r == 0 && (*command)->args && w->n == 2)
        *arg = w->list[1];
    if (r < 0)
        fprintf(stderr, "godwit-ctl: %s\n", err);
    if (r != 0)
        options_free(specs, N_SPECS);
    return r == 0 ? -1 : r < 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
    struct flags f = {.timeout = UINT32_MAX, .interval = UINT32_MAX};
    struct words w = {.n = 0};
    const struct command *command = NULL;
    const char *arg = NULL;
    int r = parse(argc, argv, &f, &w, &command, &arg);
    if (r >= 0)
        return r;
    struct ctl ctl = {.json = f.json || strncmp(w.list[0], "wait-", 5) == 0,
                      .timeout_given = f.timeout != UINT32_MAX,
                      .timeout_s = f.timeout,
                      .interval_ms = f.interval != UINT32_MAX ? f.interval : 1000};
    char err[512];
    struct rpc_tls tls = {f.tls_cert, f.tls_key, f.tls_ca};
    if (ctl_connect(&ctl, command->seeder ? f.seeder : f.control, &tls, err, sizeof err) < 0) {
        fprintf(stderr, "godwit-ctl: %s\n", err);
        r = 2;
    } else {
        r = command->run(&ctl, arg);
    }
    ctl_disconnect(&ctl);
    free(f.control), free(f.seeder), free(f.tls_ca), free(f.tls_cert), free(f.tls_key);
    return r;
}
