/* SPDX-License-Identifier: MIT */
/* Test of TLS and mTLS on the gRPC layer: a throwaway CA, server and client
 * certificates made with the openssl CLI at test time; an mTLS call works,
 * while a plaintext client, a client without a certificate and a client
 * whose certificate comes from another CA are refused, and the server keeps
 * serving after each refusal. */
#include "godwit/v1/seeder.pb-c.h"
#include "rpc-client.h"
#include "rpc-server.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void handle_info(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    (void)opaque, (void)request;
    Godwit__V1__InfoResponse response = GODWIT__V1__INFO_RESPONSE__INIT;
    response.size = 42;
    rpc_reply_message(reply, &response.base);
}

static const struct rpc_method methods[] = {
    {"Info", &godwit__v1__info_request__descriptor, handle_info},
};
static const struct rpc_service service = {"godwit.v1.Seeder", methods, 1, NULL};

/* Makes, in DIR, CA (unless it exists) and a certificate LEAF signed by it
 * (with localhost and 127.0.0.1 as names). */
static void make_certs(const char *dir, const char *ca, const char *leaf)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && { test -e %s.pem || openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
             "/CN=%s "
             "-keyout %s.key -out %s.pem 2>/dev/null; } && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout %s.key "
             "-out %s.csr 2>/dev/null && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > %s.ext && "
             "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
             "-days 1 -extfile %s.ext -out %s.pem 2>/dev/null",
             dir, ca, ca, ca, ca, leaf, leaf, leaf, leaf, ca, ca, leaf, leaf);
    CHECK(system(cmd) == 0, "openssl failed for %s/%s", ca, leaf);
}

static grpc_status_code call(const char *target, const struct rpc_tls *tls)
{
    char err[256];
    struct rpc_channel_config config = {.target = target, .tls = *tls};
    struct rpc_channel *ch = rpc_channel_open(&config, err, sizeof err);
    CHECK(ch, "open: %s", err);
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    grpc_status_code status =
        rpc_call(ch, "/godwit.v1.Seeder/Info", &request.base,
                 &godwit__v1__info_response__descriptor, &response, 10000, &result);
    if (response)
        protobuf_c_message_free_unpacked(response, NULL);
    rpc_channel_close(ch);
    return status;
}

int main(void)
{
    if (system("openssl version >/dev/null 2>&1") != 0)
        test_skip("no openssl CLI");
    char dir[] = "/tmp/godwit-tls-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    make_certs(dir, "ca", "server");
    make_certs(dir, "ca", "client");
    make_certs(dir, "other", "stranger");
    char path[6][512];
    const char *names[] = {"ca.pem",     "server.pem", "server.key",
                           "client.pem", "client.key", "stranger.pem"};
    for (int i = 0; i < 6; i++)
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
    char stranger_key[512];
    snprintf(stranger_key, sizeof stranger_key, "%s/stranger.key", dir);

    char err[256], target[64];
    int port;
    struct rpc_server_config config = {.listen = "127.0.0.1:0", .tls = {path[1], path[2], path[0]}};
    struct rpc_server *server = rpc_server_start(&config, &service, 1, &port, err, sizeof err);
    CHECK(server, "start: %s", err);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);

    struct rpc_tls mtls = {path[3], path[4], path[0]};
    struct rpc_tls plain = {NULL, NULL, NULL};
    struct rpc_tls no_cert = {NULL, NULL, path[0]};
    struct rpc_tls stranger = {path[5], stranger_key, path[0]};
    CHECK(call(target, &mtls) == GRPC_STATUS_OK, "mTLS call");
    CHECK(call(target, &plain) != GRPC_STATUS_OK, "plaintext refused");
    CHECK(call(target, &mtls) == GRPC_STATUS_OK, "serving after plaintext");
    CHECK(call(target, &no_cert) != GRPC_STATUS_OK, "no client certificate refused");
    CHECK(call(target, &mtls) == GRPC_STATUS_OK, "serving after no certificate");
    CHECK(call(target, &stranger) != GRPC_STATUS_OK, "other CA refused");
    CHECK(call(target, &mtls) == GRPC_STATUS_OK, "serving after other CA");
    rpc_server_stop(server, 1000);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    printf("test-rpc-tls: ok\n");
    return 0;
}
