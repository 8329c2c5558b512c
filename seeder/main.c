/* SPDX-License-Identifier: MIT */
/* godwit-seeder: the source side of a migration. Serves the image to the
 * local app over NBD (and optionally as a FUSE file), tracks its writes per
 * chunk, and exposes godwit.v1.Seeder over gRPC for a leecher. */
#include "seeder.h"

#include "compression.h"
#include "daemon.h"
#include "fuse-mount.h"
#include "log.h"
#include "nbd-server.h"
#include "options.h"
#include "rpc-server.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seeder_options {
    char *image;
    uint64_t size;
    uint64_t chunk_size;
    char *listen;
    char *nbd_tcp;
    unsigned threads;
    bool exit_on_complete;
    char *freeze;      /* hold|fail */
    unsigned max_held; /* --freeze-max-held */
    uint64_t max_held_bytes;
    unsigned max_sessions;
    char *state_file;        /* default IMAGE.godwit-seeder */
    struct daemon_options d; /* nbd-socket, mount, log-format, TLS */
};

/* Everything main starts, so it can be stopped in reverse order. */
struct running {
    struct nbd_server *nbd;
    struct fuse_mount *mount;
    struct rpc_server *rpc;
    struct rpc_service service;
    int port;
    struct metrics_server *metrics;
    int metrics_port;
};

enum {
    MAX_SPECS = 24,
    MAX_THREADS = 256,
    DEFAULT_MAX_HELD = 256,
    DEFAULT_MAX_HELD_BYTES = 64 << 20,
};

/* Fills SPECS (room for MAX_SPECS) with the seeder's flags; returns how many. */
static size_t option_specs(struct seeder_options *o, struct option_spec *specs)
{
    const struct option_spec table[] = {
        {"image", OPTION_STRING, &o->image, "PATH", "image file or block device (required)"},
        {"size", OPTION_SIZE, &o->size, "BYTES", "create a missing image sparse with this size"},
        {"chunk-size", OPTION_SIZE, &o->chunk_size, "BYTES",
         "dirty-tracking granularity, a power of two from 4K to 16M (default 256K)"},
        {"listen", OPTION_STRING, &o->listen, "ADDR:PORT",
         "gRPC address, HOST:PORT or unix:PATH (default 127.0.0.1:1337; port 0 picks one)"},
        {"nbd-tcp", OPTION_STRING, &o->nbd_tcp, "ADDR:PORT",
         "also serve NBD over TCP (unauthenticated)"},
        {"threads", OPTION_UINT, &o->threads, "N", "gRPC threads, 1 to 256 (default 4)"},
        {"exit-on-complete", OPTION_BOOL, &o->exit_on_complete, NULL,
         "exit once the leecher reports the migration complete"},
        {"freeze", OPTION_STRING, &o->freeze, "hold|fail",
         "source writes after Finalize wait (hold, default) or fail with EPERM"},
        {"freeze-max-held", OPTION_UINT, &o->max_held, "N",
         "with --freeze hold: hold at most N writes; more fail with EPERM (default 256)"},
        {"freeze-max-held-bytes", OPTION_SIZE, &o->max_held_bytes, "BYTES",
         "with --freeze hold: hold at most this much write payload (default 64M)"},
        {"max-sessions", OPTION_UINT, &o->max_sessions, "N",
         "leechers (sessions) at once, 1 to 1024 (default 8)"},
        {"state-file", OPTION_STRING, &o->state_file, "PATH",
         "the persisted migration state (default IMAGE.godwit-seeder)"},
    };
    const struct daemon_option_help help = {
        .nbd_socket = "serve the image over NBD here",
        .mount = "expose the image as DIR/image via FUSE (needs --nbd-socket)",
        .tls_cert = "serve gRPC over TLS with this cert (needs --tls-key)",
        .tls_key = "the TLS private key",
        .tls_ca = "require client certs signed by this CA (needs --tls-cert)",
    };
    _Static_assert(sizeof table / sizeof table[0] + DAEMON_OPTION_ROWS <= MAX_SPECS,
                   "raise MAX_SPECS");
    return daemon_option_specs(specs, table, sizeof table / sizeof table[0], &o->d, &help);
}

/* Checks what the table cannot; one sentence in ERR. */
static int check_options(const void *ctx, char *err, size_t errlen)
{
    const struct seeder_options *o = ctx;
    if (!o->image) {
        snprintf(err, errlen, "--image is required (see --help)");
        return -1;
    }
    if (daemon_options_check(&o->d, err, errlen) < 0 ||
        options_check_address("listen", o->listen, err, errlen) < 0 ||
        (o->nbd_tcp && options_check_address("nbd-tcp", o->nbd_tcp, err, errlen) < 0))
        return -1;
    if (o->chunk_size < 4096 || o->chunk_size > SEEDER_MAX_READ ||
        (o->chunk_size & (o->chunk_size - 1))) {
        snprintf(err, errlen,
                 "--chunk-size must be a power of two from 4K to 16M (a chunk must fit in one "
                 "ReadAt), not %llu",
                 (unsigned long long)o->chunk_size);
        return -1;
    }
    if (strcmp(o->freeze, "hold") != 0 && strcmp(o->freeze, "fail") != 0) {
        snprintf(err, errlen, "--freeze must be hold or fail, not \"%s\"", o->freeze);
        return -1;
    }
    if (strcmp(o->freeze, "fail") == 0 &&
        (o->max_held != DEFAULT_MAX_HELD || o->max_held_bytes != DEFAULT_MAX_HELD_BYTES)) {
        snprintf(err, errlen,
                 "--freeze-max-held and --freeze-max-held-bytes only matter with --freeze hold");
        return -1;
    }
    if (o->max_sessions < 1 || o->max_sessions > 1024) {
        snprintf(err, errlen, "--max-sessions must be between 1 and 1024, not %u", o->max_sessions);
        return -1;
    }
    if (o->threads < 1 || o->threads > MAX_THREADS) {
        snprintf(err, errlen, "--threads must be from 1 to %d, not %u", MAX_THREADS, o->threads);
        return -1;
    }
    const struct rpc_tls tls = {o->d.tls_cert, o->d.tls_key, o->d.tls_ca};
    return rpc_tls_check(&tls, err, errlen);
}

/* Opens the image and sets up the seeder's state. */
static int seeder_init(struct seeder *seeder, const struct seeder_options *o, struct logger *log,
                       char *err, size_t errlen)
{
    seeder->log = log;
    seeder->exit_on_complete = o->exit_on_complete;
    if (image_open(&seeder->image, o->image, o->size, err, errlen) < 0)
        return -1;
    if (chunk_geometry_init(&seeder->geo, seeder->image.size, (uint32_t)o->chunk_size) < 0) {
        snprintf(err, errlen, "--chunk-size %llu is unusable", (unsigned long long)o->chunk_size);
        return -1; /* check_options refused it already */
    }
    metric_histogram_init(&seeder->read_at_us, metric_latency_bounds_us, metric_latency_n_bounds,
                          1e-6);
    char path[4096];
    snprintf(path, sizeof path, "%s.godwit-seeder", o->image);
    const struct tracker_config config = {
        .geo = seeder->geo,
        .freeze = strcmp(o->freeze, "fail") == 0 ? FREEZE_FAIL : FREEZE_HOLD,
        .limits = {o->max_held, o->max_held_bytes},
        .max_sessions = o->max_sessions,
        .state_path = o->state_file ? o->state_file : path,
        .log = log,
    };
    seeder->max_sessions = o->max_sessions;
    if (!(seeder->compressor = compressor_new(SEEDER_ZSTD_LEVEL))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    seeder->tracker = tracker_new(&config, err, errlen);
    if (!seeder->tracker)
        return -1;
    struct tracker_stats stats;
    tracker_stats(seeder->tracker, 0, 0, &stats);
    if (stats.state >= TRACKER_FROZEN)
        log_event(log, "restored",
                  json_pack("{s:s,s:s,s:I}", "state_file", config.state_path, "phase",
                            stats.state == TRACKER_COMPLETE ? "complete" : "frozen", "sessions",
                            (json_int_t)stats.sessions));
    return 0;
}

static int start_nbd(struct running *run, struct seeder *seeder, const struct seeder_options *o,
                     char *err, size_t errlen)
{
    if (!o->d.nbd_socket && !o->nbd_tcp)
        return 0;
    struct nbd_backend backend;
    seeder_backend(seeder, &backend);
    const struct nbd_server_config config = {
        .unix_path = o->d.nbd_socket,
        .tcp_address = o->nbd_tcp,
        .description = "godwit-seeder image",
        .max_connections = 256, /* documented in README: Limits */
        .log = seeder->log,
    };
    run->nbd = nbd_server_start(&config, &backend, err, errlen);
    if (!run->nbd)
        return -1;
    if (o->d.mount) {
        run->mount = fuse_mount_start(o->d.mount, o->d.nbd_socket, seeder->log, err, errlen);
        if (!run->mount)
            return -1;
    }
    return 0;
}

static int start_rpc(struct running *run, struct seeder *seeder, const struct seeder_options *o,
                     char *err, size_t errlen)
{
    seeder_service(seeder, &run->service);
    const struct rpc_server_config config = {
        .listen = o->listen,
        .threads = (int)o->threads,
        .max_message = SEEDER_MAX_READ + 4096,
        .tls = {o->d.tls_cert, o->d.tls_key, o->d.tls_ca},
        .log = seeder->log,
    };
    if (!o->d.tls_cert && !daemon_address_is_local(o->listen))
        log_warn(seeder->log,
                 "gRPC on %s is plaintext and reachable from other hosts; anyone there can read "
                 "the image (use --tls-cert/--tls-key)",
                 o->listen);
    run->rpc = rpc_server_start(&config, &run->service, 1, &run->port, err, errlen);
    return run->rpc ? 0 : -1;
}

static void stop_all(struct running *run, struct seeder *seeder)
{
    metrics_server_stop(run->metrics);
    if (run->rpc)
        rpc_server_set_serving(run->rpc, false);
    fuse_mount_stop(run->mount);
    if (seeder->tracker)
        tracker_shutdown(seeder->tracker); /* held writes fail: the NBD workers can end */
    if (run->nbd)
        nbd_server_stop(run->nbd);
    if (seeder->image.fd >= 0 && image_flush(&seeder->image) < 0)
        log_error(seeder->log, "flushing the image at exit: %s", strerror(errno));
    if (run->rpc)
        rpc_server_stop(run->rpc, 5000);
    tracker_free(seeder->tracker);
    compressor_free(seeder->compressor);
    image_close(&seeder->image);
}

static void announce(struct seeder *seeder, const struct seeder_options *o, struct running *run)
{
    char image_id[33];
    tracker_image_id(seeder->tracker, image_id);
    json_t *fields = json_pack("{s:s,s:i,s:s,s:I,s:i}", "listen", o->listen, "port", run->port,
                               "image_id", image_id, "size", (json_int_t)seeder->image.size,
                               "chunk_size", (int)seeder->geo.chunk_size);
    if (o->d.nbd_socket)
        json_object_set_new(fields, "nbd_socket", json_string(o->d.nbd_socket));
    if (o->nbd_tcp) {
        json_object_set_new(fields, "nbd_tcp", json_string(o->nbd_tcp));
        json_object_set_new(fields, "nbd_port", json_integer(nbd_server_tcp_port(run->nbd)));
    }
    if (run->mount)
        json_object_set_new(fields, "mount", json_string(fuse_mount_file(run->mount)));
    if (run->metrics) {
        json_object_set_new(fields, "metrics", json_string(o->d.metrics));
        json_object_set_new(fields, "metrics_port", json_integer(run->metrics_port));
    }
    log_event(seeder->log, "ready", fields);
}

/* Serves until SIGINT or SIGTERM. */
static int serve(struct seeder *seeder, const struct seeder_options *o, char *err, size_t errlen)
{
    struct running run = {0};
    int status = 0;
    if (start_nbd(&run, seeder, o, err, errlen) < 0 ||
        start_rpc(&run, seeder, o, err, errlen) < 0 ||
        (o->d.metrics && !(run.metrics = seeder_metrics_start(seeder, o->d.metrics,
                                                              &run.metrics_port, err, errlen)))) {
        status = -1;
    } else {
        announce(seeder, o, &run);
        int sig;
        while ((sig = daemon_wait_signal()) != SIGINT && sig != SIGTERM)
            ;
        log_info(seeder->log, "%s: shutting down", strsignal(sig));
    }
    stop_all(&run, seeder);
    return status;
}

int main(int argc, char **argv)
{
    struct seeder_options o = {
        .chunk_size = 256 << 10,
        .listen = "127.0.0.1:1337",
        .d.log_format = "text",
        .threads = 4,
        .freeze = "hold",
        .max_held = DEFAULT_MAX_HELD,
        .max_held_bytes = DEFAULT_MAX_HELD_BYTES,
        .max_sessions = 8,
    };
    struct option_spec specs[MAX_SPECS];
    size_t n = option_specs(&o, specs);
    const struct program_info info = {"godwit-seeder",
                                      "serve an image for live migration and track "
                                      "its writes",
                                      "--image PATH [--listen ADDR:PORT] "
                                      "[--nbd-socket PATH] [options]"};
    int status = options_parse_main(&info, specs, n, argc, argv, check_options, &o);
    if (status >= 0)
        return status;
    char err[512] = "";

    struct logger log;
    daemon_start(&log, "godwit-seeder", o.d.log_format);
    struct seeder seeder = {.image.fd = -1};
    int r = seeder_init(&seeder, &o, &log, err, sizeof err);
    if (r == 0)
        r = serve(&seeder, &o, err, sizeof err);
    else
        stop_all(&(struct running){0}, &seeder);
    if (r < 0)
        log_error(&log, "%s", err);
    options_free(specs, n);
    return r < 0 ? 1 : 0;
}
