/* SPDX-License-Identifier: MIT */
/* godwit-ctl: a small client for the leecher's control API and the
 * seeder's operator calls, for scripts and hosts without grpcurl. Prints
 * one JSON object.
 *
 *   godwit-ctl --seeder 127.0.0.1:1337 info      (Seeder.Info)
 *   godwit-ctl --seeder 127.0.0.1:1337 abort     (Seeder.Abort)
 *   godwit-ctl --control 127.0.0.1:1338 status
 *   godwit-ctl --control 127.0.0.1:1338 finalize
 *   godwit-ctl --control 127.0.0.1:1338 wait-local [--timeout S]   (pre-copy caught up)
 *   godwit-ctl --control 127.0.0.1:1338 wait-complete [--timeout S]
 */
#include "godwit/v1/leecher.pb-c.h"
#include "godwit/v1/seeder.pb-c.h"
#include "options.h"
#include "rpc-client.h"

#include <jansson.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *state_names[] = {"UNSPECIFIED", "PRECOPY",  "FINALIZING",
                                    "POSTCOPY",    "COMPLETE", "FAILED"};

static Godwit__V1__StatusResponse *status(struct rpc_channel *ch, struct rpc_result *result)
{
    Godwit__V1__StatusRequest request = GODWIT__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *response;
    if (rpc_call(ch, "/godwit.v1.Leecher/Status", &request.base,
                 &godwit__v1__status_response__descriptor, &response, 5000,
                 result) != GRPC_STATUS_OK)
        return NULL;
    return (Godwit__V1__StatusResponse *)response;
}

/* The Status reply as one JSON object (WAITED_S: how long a wait-* took). */
static void print_status(const Godwit__V1__StatusResponse *s, double elapsed)
{
    json_t *o = json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:f,s:b,s:i,s:s,s:f,s:s}", "state",
        state_names[s->state <= 5 ? s->state : 0], "size", (json_int_t)s->size, "chunks_total",
        (json_int_t)s->chunks_total, "chunks_local", (json_int_t)s->chunks_local, "bytes_pulled",
        (json_int_t)s->bytes_pulled, "dirty_rate", s->dirty_rate, "downtime_us",
        (json_int_t)s->downtime_us, "finalize_dirty_chunks", (json_int_t)s->finalize_dirty_chunks,
        "predicted_downtime_ms", s->predicted_downtime_ms, "not_converging", s->not_converging,
        "stalled_rounds", (int)s->stalled_rounds, "convergence_hint", s->convergence_hint,
        "waited_s", elapsed, "error", s->error);
    static const char *verify_names[] = {"UNSPECIFIED", "OFF",    "PENDING",    "RUNNING",
                                         "PASSED",      "FAILED", "UNSUPPORTED"};
    json_object_set_new(o, "verify", json_string(verify_names[s->verify <= 6 ? s->verify : 0]));
    json_object_set_new(o, "checksum_mismatches", json_integer((json_int_t)s->checksum_mismatches));
    json_object_set_new(o, "max_bandwidth", json_integer((json_int_t)s->max_bandwidth));
    json_object_set_new(o, "bandwidth_throttled_us",
                        json_integer((json_int_t)s->bandwidth_throttled_us));
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(o);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls Status every 5 ms until DONE(s) or the timeout; prints the last. */
static int wait_for(struct rpc_channel *ch, bool complete, unsigned timeout)
{
    double start = now_s();
    for (;;) {
        struct rpc_result result;
        Godwit__V1__StatusResponse *s = status(ch, &result);
        bool done = s && (complete ? s->state == GODWIT__V1__STATE__COMPLETE
                                   : s->chunks_local == s->chunks_total);
        bool failed = s && s->state == GODWIT__V1__STATE__FAILED;
        if (done || failed || now_s() - start > timeout) {
            if (s)
                print_status(s, now_s() - start);
            else
                fprintf(stderr, "godwit-ctl: Status failed: %s\n", result.message);
            if (s)
                protobuf_c_message_free_unpacked(&s->base, NULL);
            return done ? 0 : 1;
        }
        if (s)
            protobuf_c_message_free_unpacked(&s->base, NULL);
        usleep(5000);
    }
}

static int print_once(struct rpc_channel *ch)
{
    struct rpc_result result;
    Godwit__V1__StatusResponse *s = status(ch, &result);
    if (!s) {
        fprintf(stderr, "godwit-ctl: Status failed: %s\n", result.message);
        return 1;
    }
    print_status(s, 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return 0;
}

static int finalize(struct rpc_channel *ch)
{
    Godwit__V1__LeecherFinalizeRequest request = GODWIT__V1__LEECHER_FINALIZE_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    if (rpc_call(ch, "/godwit.v1.Leecher/Finalize", &request.base,
                 &godwit__v1__leecher_finalize_response__descriptor, &response, 60000,
                 &result) != GRPC_STATUS_OK) {
        fprintf(stderr, "godwit-ctl: Finalize failed: %s\n", result.message);
        return 1;
    }
    Godwit__V1__LeecherFinalizeResponse *r = (void *)response;
    printf("{\"downtime_us\":%llu,\"dirty_chunks\":%llu}\n", (unsigned long long)r->downtime_us,
           (unsigned long long)r->dirty_chunks);
    protobuf_c_message_free_unpacked(response, NULL);
    return 0;
}

static const char *seeder_state_names[] = {"UNSPECIFIED", "SERVING", "TRACKING", "FROZEN",
                                           "COMPLETE"};

static const char *seeder_state_name(Godwit__V1__SeederState state)
{
    return seeder_state_names[state <= 4 ? state : 0];
}

static int seeder_info(struct rpc_channel *ch)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    if (rpc_call(ch, "/godwit.v1.Seeder/Info", &request.base,
                 &godwit__v1__info_response__descriptor, &response, 5000,
                 &result) != GRPC_STATUS_OK) {
        fprintf(stderr, "godwit-ctl: Seeder.Info failed: %s\n", result.message);
        return 1;
    }
    Godwit__V1__InfoResponse *r = (void *)response;
    printf("{\"state\":\"%s\",\"image_id\":\"%s\",\"size\":%llu,\"chunk_size\":%u,"
           "\"sessions\":%u,\"dirty_chunks\":%llu,\"held_writes\":%llu,\"held_bytes\":%llu,"
           "\"held_writes_total\":%llu,\"refused_writes_total\":%llu}\n",
           seeder_state_name(r->state), r->image_id, (unsigned long long)r->size, r->chunk_size,
           r->sessions, (unsigned long long)r->dirty_chunks, (unsigned long long)r->held_writes,
           (unsigned long long)r->held_bytes, (unsigned long long)r->held_writes_total,
           (unsigned long long)r->refused_writes_total);
    protobuf_c_message_free_unpacked(response, NULL);
    return 0;
}

static int seeder_abort(struct rpc_channel *ch)
{
    Godwit__V1__AbortRequest request = GODWIT__V1__ABORT_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    if (rpc_call(ch, "/godwit.v1.Seeder/Abort", &request.base,
                 &godwit__v1__abort_response__descriptor, &response, 30000,
                 &result) != GRPC_STATUS_OK) {
        fprintf(stderr, "godwit-ctl: Seeder.Abort failed: %s\n", result.message);
        return 1;
    }
    Godwit__V1__AbortResponse *r = (void *)response;
    printf("{\"previous_state\":\"%s\",\"released_writes\":%llu,\"ended_sessions\":%llu,"
           "\"image_id\":\"%s\"}\n",
           seeder_state_name(r->previous_state), (unsigned long long)r->released_writes,
           (unsigned long long)r->ended_sessions, r->image_id);
    protobuf_c_message_free_unpacked(response, NULL);
    return 0;
}

/* Runs COMMAND against the seeder (SEEDER) or the leecher; 2 if unknown. */
static int run(struct rpc_channel *ch, bool seeder, const char *command, unsigned timeout)
{
    if (seeder && strcmp(command, "abort") == 0)
        return seeder_abort(ch);
    if (seeder && strcmp(command, "info") == 0)
        return seeder_info(ch);
    if (!seeder && strcmp(command, "finalize") == 0)
        return finalize(ch);
    if (!seeder && (strcmp(command, "wait-local") == 0 || strcmp(command, "wait-complete") == 0))
        return wait_for(ch, strcmp(command, "wait-complete") == 0, timeout);
    if (!seeder && strcmp(command, "status") == 0)
        return print_once(ch);
    fprintf(stderr, "godwit-ctl: unknown %s command \"%s\" (see --help)\n",
            seeder ? "--seeder" : "--control", command);
    return 2;
}

int main(int argc, char **argv)
{
    char *control = NULL, *seeder = NULL, *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    unsigned timeout = 600;
    const char *command = argc > 1 && argv[argc - 1][0] != '-' ? argv[argc - 1] : NULL;
    struct option_spec specs[] = {
        {"control", OPTION_STRING, &control, "ADDR:PORT", "the leecher's control address"},
        {"seeder", OPTION_STRING, &seeder, "ADDR:PORT",
         "the seeder's gRPC address, for info and abort"},
        {"timeout", OPTION_UINT, &timeout, "S", "for wait-*: give up after S seconds (600)"},
        {"tls-ca", OPTION_STRING, &tls_ca, "FILE", "verify the daemon with this CA (TLS)"},
        {"tls-cert", OPTION_STRING, &tls_cert, "FILE", "our client certificate (mTLS)"},
        {"tls-key", OPTION_STRING, &tls_key, "FILE", "its private key"},
    };
    enum { N_SPECS = sizeof specs / sizeof specs[0] };
    char err[256];
    const struct program_info info = {"godwit-ctl", "drive a godwit-leecher or godwit-seeder",
                                      "--control ADDR:PORT status|finalize|wait-local|"
                                      "wait-complete, or --seeder ADDR:PORT info|abort"};
    int r = options_parse(&info, specs, N_SPECS, command ? argc - 1 : argc, argv, err, sizeof err);
    if (r == 0 && (!control == !seeder || !command)) {
        snprintf(err, sizeof err,
                 "give --control ADDR:PORT (leecher) or --seeder ADDR:PORT, and a command (see "
                 "--help)");
        r = -1;
    }
    if (r == 0 && !!tls_cert != !!tls_key) {
        snprintf(err, sizeof err, "--tls-cert and --tls-key go together");
        r = -1;
    }
    if (r == 0 && rpc_tls_check(&(struct rpc_tls){tls_cert, tls_key, tls_ca}, err, sizeof err) < 0)
        r = -1;
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "godwit-ctl: %s\n", err);
        options_free(specs, N_SPECS);
        return r < 0 ? 2 : 0;
    }
    struct rpc_channel_config config = {.target = seeder ? seeder : control,
                                        .tls = {tls_cert, tls_key, tls_ca}};
    struct rpc_channel *ch = rpc_channel_open(&config, err, sizeof err);
    if (!ch) {
        fprintf(stderr, "godwit-ctl: %s\n", err);
        r = 1;
    } else {
        r = run(ch, seeder != NULL, command, timeout);
    }
    if (ch)
        rpc_channel_close(ch);
    options_free(specs, N_SPECS);
    return r;
}
