/* SPDX-License-Identifier: MIT */
/* Test harness for the leecher: process, control channel, NBD handle. */
#include "leecher-harness.h"

#include "grpc/health/v1/health.pb-c.h"

#include "testlib.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void leecher_start(struct leecher_proc *l, struct seeder_proc *s, const char *const *extra)
{
    leecher_start_named(l, s, "dest", extra);
}

void leecher_start_via(struct leecher_proc *l, struct seeder_proc *s, const char *relay,
                       const char *const *extra)
{
    char saved[sizeof s->target];
    snprintf(saved, sizeof saved, "%s", s->target);
    snprintf(s->target, sizeof s->target, "%s", relay);
    leecher_start(l, s, extra);
    snprintf(s->target, sizeof s->target, "%s", saved);
}

void leecher_start_named(struct leecher_proc *l, struct seeder_proc *s, const char *name,
                         const char *const *extra)
{
    memset(l, 0, sizeof *l);
    snprintf(l->image, sizeof l->image, "%s/%s.img", s->dir, name);
    snprintf(l->socket, sizeof l->socket, "%s/%s.sock", s->dir, name);
    if (strcmp(name, "dest") == 0)
        snprintf(l->log, sizeof l->log, "%s/leecher.log", s->dir);
    else
        snprintf(l->log, sizeof l->log, "%s/%s.log", s->dir, name);
    char *leecher = test_program("leecher/godwit-leecher");
    const char *argv[40] = {leecher,       "--seeder",     s->target, "--image",
                            l->image,      "--nbd-socket", l->socket, "--control",
                            "127.0.0.1:0", "--log-format", "json"};
    size_t argc = 11;
    for (size_t i = 0; extra && extra[i] && argc < 39; i++)
        argv[argc++] = extra[i];
    json_t *ready = test_spawn_ready((char *const *)argv, l->log, &l->pid, 15000);
    free(leecher);
    snprintf(l->control, sizeof l->control, "127.0.0.1:%d", test_event_int(ready, "control_port"));
    json_decref(ready);
    char err[256];
    struct rpc_channel_config config = {.target = l->control};
    l->channel = rpc_channel_open(&config, err, sizeof err);
    CHECK(l->channel, "control channel: %s", err);
}

int leecher_stop(struct leecher_proc *l)
{
    if (l->channel)
        rpc_channel_close(l->channel);
    l->channel = NULL;
    int status = l->pid > 0 ? test_stop(l->pid, 20000) : 0;
    l->pid = 0;
    return status;
}

int leecher_wait_exit(struct leecher_proc *l, int timeout_ms)
{
    int status;
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (waitpid(l->pid, &status, WNOHANG) == l->pid) {
            l->pid = 0;
            if (l->channel)
                rpc_channel_close(l->channel);
            l->channel = NULL;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(20000);
    }
    return -1;
}

bool leecher_serving(struct leecher_proc *l)
{
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *reply;
    struct rpc_result result;
    CHECK(rpc_call(l->channel, "/grpc.health.v1.Health/Check", &request.base,
                   &grpc__health__v1__health_check_response__descriptor, &reply, 5000,
                   &result) == GRPC_STATUS_OK,
          "Health.Check: %s", result.message);
    bool serving = ((Grpc__Health__V1__HealthCheckResponse *)reply)->status ==
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(reply, NULL);
    return serving;
}

Godwit__V1__StatusResponse *leecher_status(struct leecher_proc *l)
{
    Godwit__V1__StatusRequest request = GODWIT__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    if (rpc_call(l->channel, "/godwit.v1.Leecher/Status", &request.base,
                 &godwit__v1__status_response__descriptor, &response, 5000,
                 &result) != GRPC_STATUS_OK)
        return NULL;
    return (Godwit__V1__StatusResponse *)response;
}

Godwit__V1__StatusResponse *leecher_wait_state(struct leecher_proc *l, Godwit__V1__State state,
                                               int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        Godwit__V1__StatusResponse *s = leecher_status(l);
        if (s && (s->state == state || s->state == GODWIT__V1__STATE__FAILED))
            return s;
        CHECK(waited < timeout_ms, "leecher never reached state %d (now %d; see %s)", state,
              s ? (int)s->state : -1, l->log);
        if (s)
            protobuf_c_message_free_unpacked(&s->base, NULL);
        usleep(20000);
    }
}

void leecher_wait_local(struct leecher_proc *l, uint64_t chunks, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        Godwit__V1__StatusResponse *s = leecher_status(l);
        bool done = s && s->chunks_local >= chunks;
        uint64_t local = s ? s->chunks_local : 0;
        if (s)
            protobuf_c_message_free_unpacked(&s->base, NULL);
        if (done)
            return;
        CHECK(waited < timeout_ms, "only %llu of %llu chunks local (see %s)",
              (unsigned long long)local, (unsigned long long)chunks, l->log);
        usleep(20000);
    }
}

grpc_status_code leecher_finalize_call(struct leecher_proc *l, uint64_t *downtime_us)
{
    Godwit__V1__LeecherFinalizeRequest request = GODWIT__V1__LEECHER_FINALIZE_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    grpc_status_code status =
        rpc_call(l->channel, "/godwit.v1.Leecher/Finalize", &request.base,
                 &godwit__v1__leecher_finalize_response__descriptor, &response, 20000, &result);
    if (status == GRPC_STATUS_OK) {
        *downtime_us = ((Godwit__V1__LeecherFinalizeResponse *)response)->downtime_us;
        protobuf_c_message_free_unpacked(response, NULL);
    }
    return status;
}

struct nbd_handle *leecher_nbd(struct leecher_proc *l)
{
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd_connect_unix(nbd, l->socket) == 0, "connect to the leecher: %s", nbd_get_error());
    return nbd;
}

pid_t linkem_start_with(const char *target, const char *const *flags, const char *dir, char *relay)
{
    char *linkem = test_program("bench/godwit-linkem");
    char log[600];
    snprintf(log, sizeof log, "%s/linkem.log", dir);
    const char *argv[24] = {linkem, "--listen",     "127.0.0.1:0", "--target",
                            target, "--log-format", "json"};
    size_t argc = 7;
    for (size_t i = 0; flags[i] && argc < 23; i++)
        argv[argc++] = flags[i];
    pid_t pid;
    json_t *ready = test_spawn_ready((char *const *)argv, log, &pid, 5000);
    free(linkem);
    snprintf(relay, 64, "127.0.0.1:%d", test_event_int(ready, "port"));
    json_decref(ready);
    return pid;
}

pid_t linkem_start(const char *target, const char *rate, const char *rtt_ms, const char *dir,
                   char *relay)
{
    const char *flags[] = {"--rate-mbps", rate, "--rtt-ms", rtt_ms, NULL};
    return linkem_start_with(target, flags, dir, relay);
}
