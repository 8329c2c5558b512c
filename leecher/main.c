/* SPDX-License-Identifier: MIT */
/* godwit-leecher: the destination side of a migration. Pulls the image
 * from a seeder into a local file, keeps it current during pre-copy,
 * and serves it to the destination app over NBD from Finalize on. */
#include "leecher.h"

#include "daemon.h"
#include "fuse-mount.h"
#include "log.h"
#include "nbd-server.h"
#include "options.h"
#include "pull-order.h"
#include "rate-limit.h"
#include "rpc-server.h"
#include "seeder-client.h"

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct leecher_options {
    char *seeder, *image, *control, *compress;
    char *max_bandwidth; /* RATE as given: rate_limit_parse */
    unsigned workers, channels, sync_interval, pull_timeout, auto_finalize_ms, converge_rounds,
        checksum_retries;
    uint64_t batch;
    bool skip_final_sync, no_checksums, verify, no_verify;
    struct daemon_options d; /* nbd-socket, mount, log-format, TLS */
};

#define BATCH_UNSET UINT64_MAX /* --batch not given */
#define RETRIES_UNSET UINT_MAX /* --checksum-retries not given */

enum {
    MAX_SPECS = 24,
    MAX_WORKERS = 1024,
    MAX_CHANNELS = 256,
    MAX_MS = 86400000, /* --sync-interval, --pull-timeout: a day */
    MAX_CONVERGE_ROUNDS = 10000,
    DEFAULT_BATCH = 1 << 20,       /* without --batch: 1M, or one chunk if larger */
    LINK_BYTES_PER_S = 1250000000, /* 10 Gbit/s: what choose_workers plans for */
    MIN_AUTO_WORKERS = 4,          /* choose_workers: at least, and one per channel */
    MAX_AUTO_WORKERS = 64,         /* ... at most */
    MAX_CHECKSUM_RETRIES = 100,
    DEFAULT_CHECKSUM_RETRIES = 3,
    DEFAULT_VERIFY = 0, /* --verify costs more than 5% of a pull: docs/benchmarks.md */
};

static size_t option_specs(struct leecher_options *o, struct option_spec *specs)
{
    const struct option_spec table[] = {
        {"seeder", OPTION_STRING, &o->seeder, "ADDR:PORT", "the seeder's gRPC address (required)"},
        {"image", OPTION_STRING, &o->image, "PATH", "the local image to fill (required)"},
        {"workers", OPTION_UINT, &o->workers, "N",
         "background pullers, at most 1024 (default or 0: from the round trip, 4 (or one per "
         "channel) to 64)"},
        {"channels", OPTION_UINT, &o->channels, "N",
         "gRPC connections to the seeder, 1 to 256 (default 4)"},
        {"control", OPTION_STRING, &o->control, "ADDR:PORT",
         "control gRPC address, HOST:PORT or unix:PATH (default 127.0.0.1:1338)"},
        {"sync-interval", OPTION_UINT, &o->sync_interval, "MS",
         "Sync every MS, 1 to 86400000 (default 1000)"},
        {"pull-timeout", OPTION_UINT, &o->pull_timeout, "MS",
         "post-copy: a read waits this long for a missing chunk, then fails (default 30000; at "
         "most a day)"},
        {"batch", OPTION_SIZE, &o->batch, "BYTES",
         "largest background ReadAt, from one chunk to 16M (default 1M, or one chunk)"},
        {"auto-finalize-ms", OPTION_UINT, &o->auto_finalize_ms, "MS",
         "finalize by itself once the predicted downtime is <= MS for two Syncs in a row "
         "(default 0: off; at most a day)"},
        {"max-bandwidth", OPTION_AMOUNT, &o->max_bandwidth, "RATE",
         "cap on pulled bytes/s over all channels, K/M/G = 1024-powers (50M = 50 MiB/s; default "
         "0 or none: no cap)"},
        {"converge-rounds", OPTION_UINT, &o->converge_rounds, "K",
         "warn (not_converging) after K Sync rounds in a row without progress, 1 to 10000 "
         "(default 10)"},
        {"compress", OPTION_STRING, &o->compress, "off|zstd|auto",
         "ask the seeder for zstd-compressed data: never, always, or while the link is below "
         "1 Gbit/s (default auto)"},
        {"skip-final-sync", OPTION_BOOL, &o->skip_final_sync, NULL,
         "no last Sync before the freeze (measures Finalize with the whole dirty set)"},
        {"checksum-retries", OPTION_UINT, &o->checksum_retries, "N",
         "re-pull a range whose checksum did not match N times, then fail (0 to 100, "
         "default 3)"},
        {"no-checksums", OPTION_BOOL, &o->no_checksums, NULL,
         "do not ask for nor verify ReadAt checksums (to measure their cost)"},
        {"verify", OPTION_BOOL, &o->verify, NULL,
         "compare the whole image with the frozen source before COMPLETE (default: off)"},
        {"no-verify", OPTION_BOOL, &o->no_verify, NULL, "do not compare the whole image"},
    };
    const struct daemon_option_help help = {
        .nbd_socket = "serve the image over NBD here from Finalize on",
        .mount = "also expose it as DIR/image via FUSE (needs --nbd-socket)",
        .tls_cert = "our certificate: to the seeder (mTLS) and on the control port",
        .tls_key = "its private key",
        .tls_ca = "verify the seeder, and control clients, with this CA (needs --tls-cert)",
    };
    _Static_assert(sizeof table / sizeof table[0] + DAEMON_OPTION_ROWS <= MAX_SPECS,
                   "raise MAX_SPECS");
    return daemon_option_specs(specs, table, sizeof table / sizeof table[0], &o->d, &help);
}

/* --compress NAME as enum seeder_compress; -1 if it is none. */
static int compress_mode(const char *name)
{
    static const char *const names[] = {
        [COMPRESS_OFF] = "off", [COMPRESS_ZSTD] = "zstd", [COMPRESS_AUTO] = "auto"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static int check_options(const void *ctx, char *err, size_t errlen)
{
    const struct leecher_options *o = ctx;
    if (!o->seeder || !o->image)
        snprintf(err, errlen, "--seeder and --image are required (see --help)");
    else if (daemon_options_check(&o->d, err, errlen) < 0 ||
             options_check_address("control", o->control, err, errlen) < 0)
        return -1;
    else if (!o->channels || !o->sync_interval)
        snprintf(err, errlen, "--channels and --sync-interval must be at least 1");
    else if (o->channels > MAX_CHANNELS)
        snprintf(err, errlen, "--channels must be at most %d", MAX_CHANNELS);
    else if (o->sync_interval > MAX_MS || o->pull_timeout > MAX_MS)
        snprintf(err, errlen, "--sync-interval and --pull-timeout must be at most %d ms (a day)",
                 MAX_MS);
    else if (o->auto_finalize_ms > MAX_MS)
        snprintf(err, errlen, "--auto-finalize-ms must be at most %d ms (a day)", MAX_MS);
    else if (o->max_bandwidth && rate_limit_parse(o->max_bandwidth, &(uint64_t){0}) < 0)
        snprintf(err, errlen,
                 "--max-bandwidth must be bytes per second such as 50M or 1G (K, M, G: powers of "
                 "1024), or 0 or none for no cap, not \"%s\"",
                 o->max_bandwidth);
    else if (o->converge_rounds < 1 || o->converge_rounds > MAX_CONVERGE_ROUNDS)
        snprintf(err, errlen, "--converge-rounds must be from 1 to %d, not %u", MAX_CONVERGE_ROUNDS,
                 o->converge_rounds);
    else if (compress_mode(o->compress) < 0)
        snprintf(err, errlen, "--compress must be off, zstd or auto, not %s", o->compress);
    else if (o->checksum_retries != RETRIES_UNSET && o->checksum_retries > MAX_CHECKSUM_RETRIES)
        snprintf(err, errlen, "--checksum-retries must be from 0 to %d, not %u",
                 MAX_CHECKSUM_RETRIES, o->checksum_retries);
    else if (o->no_checksums && o->checksum_retries != RETRIES_UNSET)
        snprintf(err, errlen, "--checksum-retries has no effect with --no-checksums");
    else if (o->verify && o->no_verify)
        snprintf(err, errlen, "--verify and --no-verify contradict each other");
    else if (o->workers > MAX_WORKERS)
        snprintf(err, errlen, "--workers must be at most %d", MAX_WORKERS);
    else if (o->batch != BATCH_UNSET && (o->batch < 4096 || o->batch > CHUNK_MAX_READ))
        snprintf(err, errlen, "--batch must be from 4K to 16M (the largest ReadAt), not %llu",
                 (unsigned long long)o->batch);
    else {
        const struct rpc_tls tls = {o->d.tls_cert, o->d.tls_key, o->d.tls_ca};
        return rpc_tls_check(&tls, err, errlen);
    }
    return -1;
}

/* The largest background ReadAt, from the seeder's chunk size and
 * max_read_length. 0, -1 with ERR if the seeder's chunks do not fit in
 * one of its reads, -2 with ERR if --batch does not fit the seeder (a flag
 * error: exit 2). */
static int choose_batch(struct leecher *l, uint64_t batch, char *err, size_t errlen)
{
    if (l->geo.chunk_size > l->max_read) {
        snprintf(err, errlen,
                 "the seeder's chunks (%u bytes) do not fit in its largest read "
                 "(max_read_length %u): they cannot be pulled",
                 l->geo.chunk_size, l->max_read);
        return -1;
    }
    if (batch == BATCH_UNSET) {
        batch = l->geo.chunk_size > DEFAULT_BATCH ? l->geo.chunk_size : DEFAULT_BATCH;
        l->batch_bytes = (uint32_t)(batch < l->max_read ? batch : l->max_read);
        return 0;
    }
    if (batch < l->geo.chunk_size || batch > l->max_read) {
        snprintf(err, errlen,
                 "--batch %llu must be from the seeder's chunk size (%u) to its largest read "
                 "(%u)",
                 (unsigned long long)batch, l->geo.chunk_size, l->max_read);
        return -2;
    }
    l->batch_bytes = (uint32_t)batch;
    return 0;
}

static int open_seeder(struct leecher *l, const struct leecher_options *o, char *err, size_t errlen)
{
    l->max_bandwidth = 0;
    if (o->max_bandwidth)
        rate_limit_parse(o->max_bandwidth, &l->max_bandwidth); /* checked by check_options */
    const struct seeder_client_config config = {.target = o->seeder,
                                                .channels = o->channels,
                                                .tls = {o->d.tls_cert, o->d.tls_key, o->d.tls_ca},
                                                .max_bandwidth = l->max_bandwidth,
                                                .compress = compress_mode(o->compress),
                                                .budget = &l->budget};
    l->seeder = seeder_client_open(&config, err, errlen);
    return l->seeder ? 0 : -1;
}

/* The shortest of a few Info round trips to the seeder, in microseconds. */
static uint64_t measure_round_trip(struct leecher *l)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        struct rpc_result result;
        uint64_t start = leecher_now_us();
        Godwit__V1__InfoResponse *info = seeder_client_info(l->seeder, &result);
        if (!info)
            continue;
        protobuf_c_message_free_unpacked(&info->base, NULL);
        uint64_t took = leecher_now_us() - start;
        best = took < best ? took : best;
    }
    return best == UINT64_MAX ? 0 : best;
}

/* Without --workers: enough pulls in flight to keep a 10 Gbit/s link busy
 * over the measured round trip (each worker has one ReadAt of up to
 * --batch in flight), at least one per channel and MIN_AUTO_WORKERS, at
 * most MAX_AUTO_WORKERS. On a short round trip the bulk budget lets only
 * a few MiB be in flight anyway (bulk-budget.h): more workers than that
 * only wait for it, and on two cores 16 of them cost a pull of 1 GiB 11%
 * more CPU and 23% more time than 4 (docs/benchmarks.md). */
static void choose_workers(struct leecher *l, unsigned channels)
{
    uint64_t rtt_us = measure_round_trip(l);
    uint64_t in_flight = rtt_us * (LINK_BYTES_PER_S / 1000000); /* bytes */
    uint64_t workers = (in_flight + l->batch_bytes - 1) / l->batch_bytes;
    uint64_t least = channels > MIN_AUTO_WORKERS ? channels : MIN_AUTO_WORKERS;
    workers = workers < least ? least : workers;
    l->n_workers = workers > MAX_AUTO_WORKERS ? MAX_AUTO_WORKERS : (unsigned)workers;
    log_info(l->log, "round trip to the seeder %.1f ms: %u workers", (double)rtt_us / 1000.0,
             l->n_workers);
}

/* Everything main starts, to stop it in reverse order. */
struct running {
    struct nbd_server *nbd;
    struct fuse_mount *mount;
    struct rpc_server *control;
    int control_port; /* the bound TCP port of control (0 for a unix socket) */
    struct rpc_service service;
    pthread_t *workers, syncer, monitor;
    unsigned workers_started;
    bool syncer_started, monitor_started;
    struct metrics_server *metrics;
    int metrics_port;
};

static int start(struct leecher *l, struct running *run, const struct leecher_options *o, char *err,
                 size_t errlen)
{
    if (o->d.nbd_socket) {
        struct nbd_backend backend;
        leecher_backend(l, &backend);
        const struct nbd_server_config config = {.unix_path = o->d.nbd_socket,
                                                 .description = "godwit-leecher image",
                                                 .max_connections = 256,
                                                 .log = l->log};
        if (!(run->nbd = nbd_server_start(&config, &backend, err, errlen)))
            return -1;
        if (o->d.mount &&
            !(run->mount = fuse_mount_start(o->d.mount, o->d.nbd_socket, l->log, err, errlen)))
            return -1;
    }
    leecher_service(l, &run->service);
    /* The control port uses the same certificate (and client CA) as the
     * connection to the seeder; without them it is plaintext. */
    const struct rpc_server_config config = {
        .listen = o->control, .tls = {o->d.tls_cert, o->d.tls_key, o->d.tls_ca}, .log = l->log};
    if (!o->d.tls_cert && !daemon_address_is_local(o->control))
        log_warn(l->log,
                 "the control API on %s is plaintext and reachable from other hosts; anyone there "
                 "can call Finalize (use --tls-cert/--tls-key, or a NetworkPolicy)",
                 o->control);
    if (!(run->control =
              rpc_server_start(&config, &run->service, 1, &run->control_port, err, errlen)))
        return -1;
    l->control = run->control;
    if (o->d.metrics &&
        !(run->metrics = leecher_metrics_start(l, o->d.metrics, &run->metrics_port, err, errlen)))
        return -1;
    int r = pullers_start(l, &run->workers, &run->workers_started) < 0 ? errno : 0;
    if (!r && !(r = pthread_create(&run->syncer, NULL, syncer_thread, l)))
        run->syncer_started = true;
    if (!r && !(r = pthread_create(&run->monitor, NULL, monitor_thread, l)))
        run->monitor_started = true;
    if (r) {
        snprintf(err, errlen, "cannot start the leecher's threads: %s", strerror(r));
        return -1;
    }
    return 0;
}

/* Says where the leecher can be reached, once everything listens. */
static void announce(struct leecher *l, const struct running *run, const struct leecher_options *o)
{
    json_t *fields =
        json_pack("{s:s,s:i}", "control", o->control, "control_port", run->control_port);
    if (o->d.nbd_socket)
        json_object_set_new(fields, "nbd_socket", json_string(o->d.nbd_socket));
    if (run->mount)
        json_object_set_new(fields, "mount", json_string(fuse_mount_file(run->mount)));
    if (run->metrics) {
        json_object_set_new(fields, "metrics", json_string(o->d.metrics));
        json_object_set_new(fields, "metrics_port", json_integer(run->metrics_port));
    }
    log_event(l->log, "ready", fields);
}

enum { FAILED_LINGER_MS = 2000 };

/* After a failure (leecher_fail sends the SIGTERM that ended serve), the
 * control port keeps answering for FAILED_LINGER_MS once the export and
 * every thread have stopped, so godwit-ctl watch and wait and the probes
 * see FAILED and the error instead of a closed port, while no app reads
 * the failed copy any more. A second SIGINT/SIGTERM ends it at once. */
static void linger_failed(struct leecher *l)
{
    log_info(l->log, "the migration failed: the control port answers for %d ms more",
             FAILED_LINGER_MS);
    uint64_t until = leecher_now_us() + FAILED_LINGER_MS * 1000ull;
    for (uint64_t now = leecher_now_us(); now < until; now = leecher_now_us()) {
        int sig = daemon_wait_signal_ms((int)((until - now + 999) / 1000));
        if (sig == SIGINT || sig == SIGTERM)
            return;
    }
}

static void stop(struct leecher *l, struct running *run)
{
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    if (run->control)
        rpc_server_set_serving(run->control, false);
    fuse_mount_stop(run->mount);
    if (run->nbd)
        nbd_server_stop(run->nbd);
    pullers_join(run->workers, run->workers_started);
    if (run->syncer_started)
        pthread_join(run->syncer, NULL);
    if (run->monitor_started)
        pthread_join(run->monitor, NULL);
    pthread_mutex_lock(&l->lock);
    bool failed = l->state == FAILED;
    pthread_mutex_unlock(&l->lock);
    if (run->control && failed)
        linger_failed(l);
    if (run->control)
        rpc_server_stop(run->control, 2000);
    if (l->map && l->image.fd >= 0 && state_file_save(l) < 0)
        log_warn(l->log, "cannot write %s: %s", l->state_path, strerror(errno));
    metrics_server_stop(run->metrics);
}

static void release(struct leecher *l)
{
    seeder_client_close(l->seeder);
    chunk_map_free(l->map);
    image_close(&l->image);
    free(l->state_path);
    free(l->saved_local);
    free(l->flushed_words);
    if (l->state_dir_fd >= 0)
        close(l->state_dir_fd);
    pull_order_close(l->order);
}

/* Runs until SIGINT/SIGTERM; SIGUSR1 finalizes. Returns 0, or 1 if the
 * migration failed. */
static int serve(struct leecher *l)
{
    for (;;) {
        int sig = daemon_wait_signal();
        if (sig == SIGINT || sig == SIGTERM)
            break;
        if (sig == SIGUSR1) {
            char err[256];
            if (leecher_finalize(l, err, sizeof err) < 0)
                log_error(l->log, "Finalize: %s", err);
        }
    }
    pthread_mutex_lock(&l->lock);
    int failed = l->state == FAILED;
    pthread_mutex_unlock(&l->lock);
    return failed;
}

static int run_leecher(struct leecher *l, const struct leecher_options *o, char *err, size_t errlen)
{
    struct running run = {0};
    int r = open_seeder(l, o, err, errlen);
    int resumed = r == 0 ? leecher_prepare(l, o->seeder, o->image, err, errlen) : -1;
    r = resumed < 0 ? -1 : 0;
    if (r == 0)
        r = choose_batch(l, o->batch, err, errlen);
    if (r == 0 && !l->n_workers) {
        if (l->seeder_contacted)
            choose_workers(l, o->channels);
        else
            l->n_workers = 16; /* resumed in post-copy: the seeder may be down */
    }
    if (r == 0) {
        leecher_log_start(l, resumed > 0);
        r = start(l, &run, o, err, errlen);
    }
    if (r == 0)
        announce(l, &run, o);
    if (r == 0 && l->resume_finalize && leecher_finalize(l, err, errlen) < 0) {
        log_warn(l->log, "finishing the freeze the seeder made: %s", err);
        err[0] = 0; /* a Finalize retry can finish it */
    }
    if (r == 0 && serve(l) != 0) {
        snprintf(err, errlen, "%s", l->error);
        r = -1;
    }
    stop(l, &run);
    release(l);
    return r;
}

/* After daemon_start's malloc settings (common/daemon.c): the leecher's
 * buffers in flight are bounded by the bulk budget (a few MiB), so one
 * arena is enough, and it keeps up to 64 MiB free: more than a pull's
 * whole heap, so memory freed by one reply is reused by the next instead of
 * trimmed and faulted in again. With two arenas trimmed at 4 MiB each, a
 * 1 GiB pull took 26-58 k minor faults (on a VM that hands free memory back
 * to its host, each costs several times a plain one); with one kept arena,
 * 5-7 k, and peak RSS 35-38 MiB for a 4 GiB pull instead of 41
 * (docs/benchmarks.md). Before any thread starts: arenas are made as
 * threads first allocate. */
static void bound_heap(void)
{
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv)
{
    struct leecher_options o = {.control = "127.0.0.1:1338",
                                .compress = "auto",
                                .d.log_format = "text",
                                .channels = 4,
                                .sync_interval = 1000,
                                .pull_timeout = 30000,
                                .converge_rounds = 10,
                                .checksum_retries = RETRIES_UNSET,
                                .batch = BATCH_UNSET};
    struct option_spec specs[MAX_SPECS];
    size_t n = option_specs(&o, specs);
    const struct program_info info = {"godwit-leecher",
                                      "pull a live image from a seeder and serve it",
                                      "--seeder ADDR:PORT --image PATH "
                                      "[--nbd-socket PATH] [options]"};
    int status = options_parse_main(&info, specs, n, argc, argv, check_options, &o);
    if (status >= 0)
        return status;
    char err[512] = "";
    struct logger log;
    daemon_start(&log, "godwit-leecher", o.d.log_format);
    bound_heap();
    struct leecher l = {
        .log = &log,
        .image.fd = -1,
        .state_dir_fd = -1,
        .n_workers = o.workers,
        .sync_interval_ms = (int)o.sync_interval,
        .pull_timeout_ms = (int)o.pull_timeout,
        .final_sync = !o.skip_final_sync,
        .auto_finalize_ms = (int)o.auto_finalize_ms,
        .converge_rounds = o.converge_rounds,
        .checksums = !o.no_checksums,
        .verify = o.verify || (DEFAULT_VERIFY && !o.no_verify) ? VERIFY_PENDING : VERIFY_OFF,
        .checksum_retries =
            o.checksum_retries == RETRIES_UNSET ? DEFAULT_CHECKSUM_RETRIES : o.checksum_retries,
        .state = PRECOPY,
        .started_us = leecher_now_us()};
    pthread_mutex_init(&l.lock, NULL);
    pthread_mutex_init(&l.finalize_lock, NULL);
    pthread_mutex_init(&l.save_lock, NULL);
    pthread_cond_init(&l.changed, NULL);
    bulk_budget_init(&l.budget, NULL, NULL);
    leecher_metrics_init(&l);
    int r = run_leecher(&l, &o, err, sizeof err);
    if (r < 0)
        log_error(&log, "%s", err);
    options_free(specs, n);
    return r == -2 ? 2 : r < 0 ? 1 : 0; /* 2: a flag that does not fit the seeder */
}
