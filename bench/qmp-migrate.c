/* SPDX-License-Identifier: MIT */
/* godwit-qmp-migrate: drives one QEMU live migration over QMP, the peer
 * godwit is measured against. Waits for the destination's QMP greeting
 * (its -incoming listener is up by then), sets the migration parameters
 * on the source, starts `migrate`, polls `query-migrate` every 5 ms until
 * the source completed, then the destination's `query-status` until it has
 * loaded everything, and prints the outcome as one JSON line: QEMU's own
 * total-time, downtime and setup-time, the bytes it sent, our wall clock
 * from `migrate` to each end, the page counts and the highest dirty page
 * rate (pages/s) seen.
 *
 *   godwit-qmp-migrate --qmp SRC.sock --dest-qmp DST.sock --uri tcp:127.0.0.1:PORT
 *                      [--max-bandwidth BYTES] [--downtime-limit MS] [--timeout S]
 */
#include "cleanup.h"
#include "options.h"

#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { LINE_MAX_BYTES = 1 << 20 };

/* One QMP connection: the socket and a buffer of bytes read past the last line. */
struct qmp {
    int fd;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Connects to the unix socket PATH, retrying until DEADLINE_US; -1 if never. */
static int connect_unix(const char *path, uint64_t deadline_us)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        close(fd);
        if (now_us() > deadline_us)
            return -1;
        sleep_ms(20);
    }
}

/* Reads one JSON line into a new object; NULL on end of stream or bad JSON. */
static json_t *read_message(struct qmp *q)
{
    for (;;) {
        char *newline = memchr(q->buf, '\n', q->len);
        if (newline) {
            json_error_t error;
            json_t *msg = json_loadb(q->buf, (size_t)(newline - q->buf), 0, &error);
            q->len -= (size_t)(newline + 1 - q->buf);
            memmove(q->buf, newline + 1, q->len);
            return msg;
        }
        if (q->len == sizeof q->buf)
            return NULL;
        ssize_t n = read(q->fd, q->buf + q->len, sizeof q->buf - q->len);
        if (n <= 0)
            return NULL;
        q->len += (size_t)n;
    }
}

/* Sends COMMAND with ARGUMENTS (may be NULL; stolen) and returns its
 * "return" value (new reference), skipping events; NULL with a sentence
 * on stderr if QEMU answered with an error or went away. */
static json_t *execute(struct qmp *q, const char *command, json_t *arguments)
{
    json_t *request = json_pack("{s:s}", "execute", command);
    if (!request) {
        json_decref(arguments);
        return NULL;
    }
    if (arguments)
        json_object_set_new(request, "arguments", arguments);
    CLEANUP_FREE char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    if (write(q->fd, text, len) != (ssize_t)len || write(q->fd, "\n", 1) != 1) {
        fprintf(stderr, "godwit-qmp-migrate: cannot send %s: %s\n", command, strerror(errno));
        return NULL;
    }
    for (;;) {
        json_t *msg = read_message(q);
        if (!msg) {
            fprintf(stderr, "godwit-qmp-migrate: QEMU closed QMP during %s\n", command);
            return NULL;
        }
        json_t *ret = json_object_get(msg, "return");
        json_t *error = json_object_get(msg, "error");
        if (ret || error) {
            if (error)
                fprintf(stderr, "godwit-qmp-migrate: %s failed: %s\n", command,
                        json_string_value(json_object_get(error, "desc")));
            json_t *result = json_incref(ret);
            json_decref(msg);
            return result;
        }
        json_decref(msg); /* an event */
    }
}

/* Opens PATH, reads the greeting and leaves the negotiation mode; 0 or -1. */
static int qmp_open(struct qmp *q, const char *path, uint64_t deadline_us)
{
    q->len = 0;
    q->fd = connect_unix(path, deadline_us);
    if (q->fd < 0) {
        fprintf(stderr, "godwit-qmp-migrate: cannot connect to QMP at %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    json_t *greeting = read_message(q);
    bool ok = greeting && json_object_get(greeting, "QMP");
    json_decref(greeting);
    json_t *ret = ok ? execute(q, "qmp_capabilities", NULL) : NULL;
    if (!ret) {
        fprintf(stderr, "godwit-qmp-migrate: no QMP greeting at %s\n", path);
        return -1;
    }
    json_decref(ret);
    return 0;
}

static json_int_t integer_at(json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* What one migration came to: the source's last query-migrate and our clocks. */
struct outcome {
    json_t *info;          /* the source's query-migrate at "completed" (owned) */
    uint64_t source_us;    /* from `migrate` to the source saying completed */
    uint64_t dest_us;      /* from `migrate` to the destination having loaded it all */
    json_int_t dirty_rate; /* the highest dirty-pages-rate seen */
};

/* Prints OUT as one JSON line. wall_ms is to the destination's end: the
 * source says completed once it has sent everything, the destination may
 * still be loading then. */
static void print_outcome(const struct outcome *out)
{
    json_t *ram = json_object_get(out->info, "ram");
    printf("{\"status\":\"completed\",\"total_time_ms\":%lld,\"downtime_ms\":%lld,"
           "\"setup_time_ms\":%lld,\"source_done_ms\":%.1f,\"wall_ms\":%.1f,"
           "\"transferred_bytes\":%lld,\"ram_total_bytes\":%lld,\"zero_pages\":%lld,"
           "\"normal_pages\":%lld,\"dirty_sync_count\":%lld,\"dirty_pages_rate\":%lld,"
           "\"mb_per_s\":%.1f}\n",
           (long long)integer_at(out->info, "total-time"),
           (long long)integer_at(out->info, "downtime"),
           (long long)integer_at(out->info, "setup-time"), (double)out->source_us / 1000.0,
           (double)out->dest_us / 1000.0, (long long)integer_at(ram, "transferred"),
           (long long)integer_at(ram, "total"), (long long)integer_at(ram, "duplicate"),
           (long long)integer_at(ram, "normal"), (long long)integer_at(ram, "dirty-sync-count"),
           (long long)out->dirty_rate,
           (double)integer_at(ram, "total") / ((double)out->dest_us / 1e6) / 1e6);
}

/* Polls the source's query-migrate until the migration ends; 0 if it
 * completed (OUT->info then holds the last answer). */
static int wait_source(struct qmp *q, uint64_t started_us, uint64_t deadline_us,
                       struct outcome *out)
{
    for (;;) {
        json_t *info = execute(q, "query-migrate", NULL);
        if (!info)
            return -1;
        json_int_t rate = integer_at(json_object_get(info, "ram"), "dirty-pages-rate");
        out->dirty_rate = rate > out->dirty_rate ? rate : out->dirty_rate;
        const char *status = json_string_value(json_object_get(info, "status"));
        /* QEMU says completed a moment before it has filled in total-time
         * and downtime: until then, ask again. */
        if (status && strcmp(status, "completed") == 0 && !out->source_us)
            out->source_us = now_us() - started_us;
        if (out->source_us && integer_at(info, "total-time") > 0) {
            out->info = info;
            return 0;
        }
        if (status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)) {
            const char *why = json_string_value(json_object_get(info, "error-desc"));
            fprintf(stderr, "godwit-qmp-migrate: migration %s: %s\n", status, why ? why : "");
            json_decref(info);
            return -1;
        }
        json_decref(info);
        if (now_us() > deadline_us) {
            fprintf(stderr, "godwit-qmp-migrate: migration still %s at the timeout\n",
                    status ? status : "unknown");
            return -1;
        }
        sleep_ms(5);
    }
}

/* Polls the destination's query-status until it has left "inmigrate"
 * (started with -S it is then "paused": everything loaded); 0 or -1. */
static int wait_destination(struct qmp *q, uint64_t started_us, uint64_t deadline_us,
                            struct outcome *out)
{
    for (;;) {
        json_t *info = execute(q, "query-status", NULL);
        if (!info)
            return -1;
        const char *status = json_string_value(json_object_get(info, "status"));
        bool loading = status && strcmp(status, "inmigrate") == 0;
        bool failed =
            status && (strcmp(status, "internal-error") == 0 || strcmp(status, "io-error") == 0 ||
                       strcmp(status, "shutdown") == 0);
        if (!loading) {
            out->dest_us = now_us() - started_us;
            if (failed)
                fprintf(stderr, "godwit-qmp-migrate: the destination is %s\n", status);
        }
        json_decref(info);
        if (!loading)
            return failed ? -1 : 0;
        if (now_us() > deadline_us) {
            fprintf(stderr, "godwit-qmp-migrate: the destination still loads at the timeout\n");
            return -1;
        }
        sleep_ms(2);
    }
}

/* Sets the parameters on the source SRC, migrates to URI, waits for both
 * ends and prints the outcome; 0 or -1. */
static int migrate(struct qmp *src, struct qmp *dst, const char *uri, uint64_t max_bandwidth,
                   unsigned downtime_ms, uint64_t deadline_us)
{
    json_t *params = json_object();
    if (!params)
        return -1;
    if (max_bandwidth)
        json_object_set_new(params, "max-bandwidth", json_integer((json_int_t)max_bandwidth));
    if (downtime_ms)
        json_object_set_new(params, "downtime-limit", json_integer(downtime_ms));
    json_t *ret = execute(src, "migrate-set-parameters", params);
    if (!ret)
        return -1;
    json_decref(ret);
    uint64_t started = now_us();
    ret = execute(src, "migrate", json_pack("{s:s}", "uri", uri));
    if (!ret)
        return -1;
    json_decref(ret);
    struct outcome out = {0};
    int r = wait_source(src, started, deadline_us, &out);
    if (r == 0)
        r = wait_destination(dst, started, deadline_us, &out);
    if (r == 0)
        print_outcome(&out);
    json_decref(out.info);
    return r;
}

int main(int argc, char **argv)
{
    char *source = NULL, *dest = NULL, *uri = NULL;
    uint64_t max_bandwidth = 0;
    unsigned downtime_ms = 0, timeout_s = 300;
    struct option_spec specs[] = {
        {"qmp", OPTION_STRING, &source, "PATH", "the source QEMU's QMP unix socket (required)"},
        {"dest-qmp", OPTION_STRING, &dest, "PATH",
         "the destination's QMP socket: wait for it before migrating (required)"},
        {"uri", OPTION_STRING, &uri, "URI", "the destination's -incoming address (required)"},
        {"max-bandwidth", OPTION_SIZE, &max_bandwidth, "BYTES",
         "bytes per second QEMU may send (default: QEMU's, 128 MiB/s)"},
        {"downtime-limit", OPTION_UINT, &downtime_ms, "MS",
         "largest downtime QEMU aims for (default: QEMU's, 300)"},
        {"timeout", OPTION_UINT, &timeout_s, "S", "give up after S seconds (default 300)"},
    };
    size_t n = sizeof specs / sizeof *specs;
    const struct program_info info = {"godwit-qmp-migrate", "run and time one QEMU live migration",
                                      "--qmp SRC.sock --dest-qmp DST.sock --uri URI [options]"};
    int r = options_parse_main(&info, specs, n, argc, argv, NULL, NULL);
    if (r >= 0)
        return r;
    if (!source || !dest || !uri) {
        fprintf(stderr, "godwit-qmp-migrate: --qmp, --dest-qmp and --uri are required\n");
        options_free(specs, n);
        return 2;
    }
    uint64_t deadline = now_us() + timeout_s * 1000000ull;
    struct qmp *src = calloc(1, sizeof *src), *dst = calloc(1, sizeof *dst);
    int status = 1;
    if (!src || !dst)
        fprintf(stderr, "godwit-qmp-migrate: out of memory\n");
    else if (qmp_open(dst, dest, deadline) == 0 && qmp_open(src, source, deadline) == 0)
        status = migrate(src, dst, uri, max_bandwidth, downtime_ms, deadline) == 0 ? 0 : 1;
    if (src && src->fd > 0)
        close(src->fd);
    if (dst && dst->fd > 0)
        close(dst->fd);
    free(src);
    free(dst);
    options_free(specs, n);
    return status;
}
