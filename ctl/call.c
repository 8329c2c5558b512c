/* SPDX-License-Identifier: MIT */
/* godwit-ctl's calls: one gRPC channel (plaintext or TLS, built and
 * checked the way the leecher builds its channel to the seeder, by
 * rpc_tls_check and rpc_channel_open) and unary calls that print one
 * sentence when they fail. A Status poll that cannot reach the daemon
 * opens a new channel for the next one: gRPC 1.51 leaves a channel whose
 * connection was refused idle, and tries again only about 5 s later
 * (measured with GRPC_TRACE=subchannel), so a wait started together with
 * the leecher would lose those seconds; a new channel connects at once. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctl_connect(struct ctl *ctl, const char *target, const struct rpc_tls *tls, char *err,
                size_t errlen)
{
    if (rpc_tls_check(tls, err, errlen) < 0)
        return -1;
    if (!(ctl->conn = calloc(1, sizeof *ctl->conn))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ctl->conn->config = (struct rpc_channel_config){.target = target, .tls = *tls};
    ctl->conn->channel = rpc_channel_open(&ctl->conn->config, err, errlen);
    return ctl->conn->channel ? 0 : -1;
}

void ctl_disconnect(struct ctl *ctl)
{
    if (!ctl->conn)
        return;
    if (ctl->conn->channel)
        rpc_channel_close(ctl->conn->channel);
    free(ctl->conn);
    ctl->conn = NULL;
}

/* A new channel in place of CONN's (the new one first: closing the last
 * channel would shut gRPC down); the old one stays if it cannot open. */
static void redial(struct ctl_conn *conn)
{
    char err[256];
    struct rpc_channel *fresh = rpc_channel_open(&conn->config, err, sizeof err);
    if (!fresh)
        return;
    rpc_channel_close(conn->channel);
    conn->channel = fresh;
}

int ctl_timeout_ms(const struct ctl *ctl, int default_ms)
{
    if (!ctl->timeout_given)
        return default_ms;
    return ctl->timeout_s ? (int)ctl->timeout_s * 1000 : 1;
}

ProtobufCMessage *ctl_call(const struct ctl *ctl, const char *method, const char *what,
                           const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, int timeout_ms)
{
    ProtobufCMessage *reply;
    struct rpc_result result;
    if (rpc_call(ctl->conn->channel, method, request, reply_type, &reply, timeout_ms, &result) ==
        GRPC_STATUS_OK)
        return reply;
    fprintf(stderr, "godwit-ctl: %s failed: %s\n", what, result.message);
    return NULL;
}

Godwit__V1__StatusResponse *ctl_try_status(const struct ctl *ctl, int timeout_ms, char *why,
                                           size_t whylen)
{
    Godwit__V1__StatusRequest request = GODWIT__V1__STATUS_REQUEST__INIT;
    struct rpc_result result;
    ProtobufCMessage *reply;
    if (rpc_call(ctl->conn->channel, "/godwit.v1.Leecher/Status", &request.base,
                 &godwit__v1__status_response__descriptor, &reply, timeout_ms,
                 &result) == GRPC_STATUS_OK)
        return (Godwit__V1__StatusResponse *)reply;
    snprintf(why, whylen, "%s", result.message);
    if (result.status == GRPC_STATUS_UNAVAILABLE)
        redial(ctl->conn);
    return NULL;
}

Godwit__V1__StatusResponse *ctl_status(const struct ctl *ctl, int timeout_ms)
{
    char why[256];
    Godwit__V1__StatusResponse *s = ctl_try_status(ctl, timeout_ms, why, sizeof why);
    if (!s)
        fprintf(stderr, "godwit-ctl: Status failed: %s\n", why);
    return s;
}

double ctl_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
