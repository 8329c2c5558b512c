/* SPDX-License-Identifier: MIT */
/* Test harness for the seeder: process, NBD handle and gRPC channel. */
#include "seeder-harness.h"

#include "testlib.h"

#include <string.h>
#include <unistd.h>

/* Spawns the seeder with the arguments recorded in S and waits for its
 * ready event: on port 0 the first time, then on the port it got, so that
 * a restarted seeder is found where the leecher (or linkem) dials. */
static void spawn(struct seeder_proc *s)
{
    char *seeder = test_program("seeder/godwit-seeder");
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    const char *argv[40] = {seeder,        "--image",      s->image,  "--listen",
                            listen,        "--nbd-socket", s->socket, "--chunk-size",
                            s->chunk_size, "--log-format", "json"};
    size_t argc = 11;
    for (size_t i = 0; i < s->n_extra && argc < 39; i++)
        argv[argc++] = s->extra[i];
    json_t *ready = test_spawn_ready((char *const *)argv, s->log, &s->pid, 10000);
    free(seeder);
    s->port = test_event_int(ready, "port");
    json_decref(ready);
    snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
}

static void open_channel(struct seeder_proc *s)
{
    char err[256];
    struct rpc_channel_config config = {.target = s->target, .max_message = 32 << 20};
    s->channel = rpc_channel_open(&config, err, sizeof err);
    CHECK(s->channel, "rpc_channel_open: %s", err);
}

void seeder_start(struct seeder_proc *s, const char *name, uint64_t size, uint64_t chunk_size,
                  const char *const *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = test_make_dir(name);
    snprintf(s->image, sizeof s->image, "%s/source.img", s->dir);
    snprintf(s->socket, sizeof s->socket, "%s/nbd.sock", s->dir);
    snprintf(s->log, sizeof s->log, "%s/seeder.log", s->dir);
    test_write_random_file(s->image, size, 42);
    snprintf(s->chunk_size, sizeof s->chunk_size, "%llu", (unsigned long long)chunk_size);
    for (s->n_extra = 0; extra && extra[s->n_extra] && s->n_extra < 16; s->n_extra++)
        s->extra[s->n_extra] = extra[s->n_extra];
    spawn(s);
    open_channel(s);
}

void seeder_restart(struct seeder_proc *s)
{
    unlink(s->socket);
    spawn(s);
    if (!s->channel) /* seeder_stop closed it */
        open_channel(s);
}

int seeder_stop(struct seeder_proc *s)
{
    if (s->channel)
        rpc_channel_close(s->channel);
    s->channel = NULL;
    int status = s->pid > 0 ? test_stop(s->pid, 20000) : 0;
    s->pid = 0;
    return status;
}

void seeder_cleanup(struct seeder_proc *s)
{
    seeder_stop(s);
    test_cleanup_dir(s->dir);
    free(s->dir);
}

struct nbd_handle *seeder_nbd(struct seeder_proc *s)
{
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd, "nbd_create: %s", nbd_get_error());
    CHECK(nbd_connect_unix(nbd, s->socket) == 0, "nbd_connect_unix: %s", nbd_get_error());
    return nbd;
}

grpc_status_code seeder_call(struct seeder_proc *s, const char *method,
                             const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *response_type,
                             ProtobufCMessage **response, struct rpc_result *result)
{
    char path[128];
    snprintf(path, sizeof path, "/godwit.v1.Seeder/%s", method);
    return rpc_call(s->channel, path, request, response_type, response, 10000, result);
}
