/* SPDX-License-Identifier: MIT */
/* Drives the NBD server with libnbd: handshakes over a unix socket and a
 * socketpair, data round trips, bad requests on a connection that lives
 * on, backend errors, concurrent in-flight commands, several connections,
 * option negotiation (list, info, export names) and a read-only export. */
#include "nbd-memory.h"
#include "nbd-server.h"
#include "testlib.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { DISK_SIZE = 4 << 20 };

static struct nbd_server *start(struct memory_disk *disk, bool read_only, const char *unix_path,
                                const char *export_name, const char *tcp_address)
{
    struct nbd_backend b;
    memory_backend(disk, &b, read_only);
    struct nbd_server_config config = {.unix_path = unix_path,
                                       .tcp_address = tcp_address,
                                       .export_name = export_name,
                                       .description = "a test disk",
                                       .max_request = 1 << 20};
    char err[256] = "";
    struct nbd_server *server = nbd_server_start(&config, &b, err, sizeof err);
    CHECK(server, "nbd_server_start: %s", err);
    return server;
}

static struct nbd_handle *handle(void)
{
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd, "nbd_create: %s", nbd_get_error());
    /* Let bad requests reach the server instead of failing in libnbd. */
    CHECK(nbd_set_strict_mode(nbd, 0) == 0, "%s", nbd_get_error());
    return nbd;
}

static struct nbd_handle *connect_unix(const char *path, const char *export_name)
{
    struct nbd_handle *nbd = handle();
    if (export_name)
        CHECK(nbd_set_export_name(nbd, export_name) == 0, "%s", nbd_get_error());
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    return nbd;
}

static struct nbd_handle *connect_pair(struct nbd_server *server)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    CHECK(nbd_server_add_fd(server, sv[0]) == 0, "nbd_server_add_fd");
    struct nbd_handle *nbd = handle();
    CHECK(nbd_set_export_name(nbd, "disk") == 0, "%s", nbd_get_error());
    CHECK(nbd_connect_socket(nbd, sv[1]) == 0, "connect_socket: %s", nbd_get_error());
    return nbd;
}

static void close_handle(struct nbd_handle *nbd)
{
    nbd_shutdown(nbd, 0);
    nbd_close(nbd);
}

/* Writes, reads back, flushes, trims and zeroes; checks flags and FUA. */
static void test_round_trips(struct nbd_handle *nbd, struct memory_disk *disk)
{
    CHECK(nbd_get_size(nbd) == DISK_SIZE, "size %lld", (long long)nbd_get_size(nbd));
    CHECK(nbd_is_read_only(nbd) == 0, "read-only");
    CHECK(nbd_can_flush(nbd) == 1 && nbd_can_fua(nbd) == 1 && nbd_can_trim(nbd) == 1 &&
              nbd_can_zero(nbd) == 1 && nbd_can_multi_conn(nbd) == 1,
          "flags");
    static char out[300000], in[300000];
    test_fill_random(out, sizeof out, 7);
    /* Unaligned offset and length. */
    CHECK(nbd_pwrite(nbd, out, sizeof out, 12345, 0) == 0, "pwrite: %s", nbd_get_error());
    CHECK(nbd_pread(nbd, in, sizeof in, 12345, 0) == 0, "pread: %s", nbd_get_error());
    CHECK(memcmp(in, out, sizeof in) == 0, "read back differs");
    CHECK(memcmp(disk->data + 12345, out, sizeof out) == 0, "disk differs");
    unsigned fua = disk->fua_writes;
    CHECK(nbd_pwrite(nbd, out, 777, DISK_SIZE - 777, LIBNBD_CMD_FLAG_FUA) == 0, "fua: %s",
          nbd_get_error());
    CHECK(disk->fua_writes == fua + 1, "FUA did not reach the backend");
    CHECK(nbd_flush(nbd, 0) == 0 && disk->flushes >= 1, "flush: %s", nbd_get_error());
    CHECK(nbd_trim(nbd, 1000, 12345 + 1, 0) == 0 && disk->trims == 1, "trim: %s", nbd_get_error());
    CHECK(nbd_zero(nbd, 3001, 12345 + 5000, LIBNBD_CMD_FLAG_NO_HOLE) == 0 && disk->zeroes == 1,
          "zero: %s", nbd_get_error());
    CHECK(nbd_pread(nbd, in, 10000, 12345, 0) == 0, "pread: %s", nbd_get_error());
    for (int i = 0; i < 10000; i++) {
        bool cleared = (i >= 1 && i < 1001) || (i >= 5000 && i < 8001);
        CHECK(in[i] == (cleared ? 0 : out[i]), "byte %d after trim/zero", i);
    }
}

/* Out-of-range and too-large requests fail; the same connection works on. */
static void test_bad_requests(struct nbd_handle *nbd)
{
    char buf[4096];
    CHECK(nbd_pread(nbd, buf, sizeof buf, DISK_SIZE - 100, 0) == -1, "read past end worked");
    CHECK(nbd_get_errno() == EINVAL, "read past end: errno %d", nbd_get_errno());
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, DISK_SIZE, 0) == -1, "write past end worked");
    CHECK(nbd_get_errno() == ENOSPC, "write past end: errno %d", nbd_get_errno());
    CHECK(nbd_trim(nbd, 10, UINT64_MAX - 5, 0) == -1, "trim overflow worked");
    /* Larger than max_request (1 MiB): refused, payload skipped. */
    size_t big = (1 << 20) + 1;
    char *huge = calloc(1, big);
    CHECK(nbd_pwrite(nbd, huge, big, 0, 0) == -1, "huge write worked");
    CHECK(nbd_get_errno() == EINVAL, "huge write: errno %d", nbd_get_errno());
    CHECK(nbd_pread(nbd, huge, big, 0, 0) == -1, "huge read worked");
    free(huge);
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "connection died: %s", nbd_get_error());
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, DISK_SIZE - sizeof buf, 0) == 0, "write: %s",
          nbd_get_error());
}

static void test_backend_error(struct nbd_handle *nbd, struct memory_disk *disk)
{
    char buf[4096];
    disk->eio_offset = 1 << 20, disk->eio_length = 10;
    memset(buf, 'x', sizeof buf);
    CHECK(nbd_pread(nbd, buf, sizeof buf, (1 << 20) - 100, 0) == -1, "EIO read worked");
    CHECK(nbd_get_errno() == EIO, "errno %d", nbd_get_errno());
    disk->eio_length = 0;
    CHECK(nbd_pread(nbd, buf, sizeof buf, (1 << 20) - 100, 0) == 0, "%s", nbd_get_error());
}

/* Four reads that the backend holds until four are inside at once. */
static void test_concurrent(struct nbd_handle *nbd, struct memory_disk *disk)
{
    static char bufs[4][65536];
    int64_t cookies[4];
    disk->gate_width = 4;
    for (int i = 0; i < 4; i++) {
        cookies[i] = nbd_aio_pread(nbd, bufs[i], sizeof bufs[i], (uint64_t)i * 65536,
                                   NBD_NULL_COMPLETION, 0);
        CHECK(cookies[i] > 0, "aio_pread: %s", nbd_get_error());
    }
    while (nbd_aio_in_flight(nbd) > 0)
        CHECK(nbd_poll(nbd, -1) >= 0, "poll: %s", nbd_get_error());
    for (int i = 0; i < 4; i++)
        CHECK(nbd_aio_command_completed(nbd, cookies[i]) == 1, "aio %d: %s", i, nbd_get_error());
    disk->gate_width = 0;
    CHECK(disk->gate_met, "the four reads never ran at the same time");
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(bufs[i], disk->data + i * 65536, 65536) == 0, "aio read %d differs", i);
}

static int count_export(void *opaque, const char *name, const char *description)
{
    (void)description;
    CHECK(strcmp(name, "disk") == 0, "listed %s", name);
    ++*(int *)opaque;
    return 0;
}

static void test_options(const char *path)
{
    struct nbd_handle *nbd = handle();
    CHECK(nbd_set_opt_mode(nbd, true) == 0 && nbd_set_full_info(nbd, true) == 0, "opt mode");
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    int listed = 0;
    CHECK(nbd_opt_list(nbd, (nbd_list_callback){.callback = count_export, .user_data = &listed}) ==
              1,
          "opt_list: %s", nbd_get_error());
    CHECK(listed == 1, "listed %d exports", listed);
    nbd_set_export_name(nbd, "wrong");
    CHECK(nbd_opt_info(nbd) == -1, "info on an unknown export worked");
    nbd_set_export_name(nbd, "disk");
    CHECK(nbd_opt_info(nbd) == 0, "opt_info: %s", nbd_get_error());
    CHECK(nbd_get_size(nbd) == DISK_SIZE, "info size");
    char *description = nbd_get_export_description(nbd);
    CHECK(description && strcmp(description, "a test disk") == 0, "description %s",
          description ? description : "(none)");
    free(description);
    CHECK(nbd_get_block_size(nbd, LIBNBD_SIZE_MINIMUM) == 1 &&
              nbd_get_block_size(nbd, LIBNBD_SIZE_PREFERRED) == 4096 &&
              nbd_get_block_size(nbd, LIBNBD_SIZE_MAXIMUM) == 1 << 20,
          "block sizes");
    CHECK(nbd_opt_go(nbd) == 0, "opt_go: %s", nbd_get_error());
    char buf[512];
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "%s", nbd_get_error());
    close_handle(nbd);

    nbd = handle();
    nbd_set_export_name(nbd, "wrong");
    CHECK(nbd_connect_unix(nbd, path) == -1, "unknown export accepted");
    nbd_close(nbd);
    /* The old NBD_OPT_EXPORT_NAME way in. */
    nbd = handle();
    nbd_set_export_name(nbd, "disk");
    nbd_set_request_structured_replies(nbd, false);
    nbd_set_opt_mode(nbd, false);
    CHECK(nbd_set_handshake_flags(nbd, LIBNBD_HANDSHAKE_FLAG_NO_ZEROES) == 0, "flags");
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    CHECK(nbd_get_size(nbd) == DISK_SIZE, "size");
    close_handle(nbd);
}

static void wait_for_connections(struct nbd_server *server, unsigned n)
{
    for (int i = 0; i < 5000 && nbd_server_connections(server) != n; i++)
        poll(NULL, 0, 1);
    CHECK(nbd_server_connections(server) == n, "%u connections, not %u",
          nbd_server_connections(server), n);
}

static void test_many_connections(const char *path, struct nbd_server *server,
                                  struct memory_disk *disk)
{
    struct nbd_handle *h[5];
    for (int i = 0; i < 4; i++)
        h[i] = connect_unix(path, "disk");
    h[4] = connect_pair(server);
    wait_for_connections(server, 5);
    for (int i = 0; i < 5; i++) {
        char buf[1000];
        memset(buf, 'a' + i, sizeof buf);
        CHECK(nbd_pwrite(h[i], buf, sizeof buf, (uint64_t)i * 1000, 0) == 0, "%s", nbd_get_error());
    }
    for (int i = 0; i < 5; i++) {
        char buf[5000];
        CHECK(nbd_pread(h[(i + 1) % 5], buf, sizeof buf, 0, 0) == 0, "%s", nbd_get_error());
        CHECK(memcmp(buf, disk->data, sizeof buf) == 0 && buf[i * 1000] == 'a' + i, "view %d", i);
    }
    for (int i = 0; i < 5; i++)
        close_handle(h[i]);
    wait_for_connections(server, 0);
}

static void test_read_only(const char *dir)
{
    struct memory_disk disk;
    memory_disk_init(&disk, DISK_SIZE);
    disk.data[0] = 42;
    char *path = NULL;
    CHECK(asprintf(&path, "%s/ro.sock", dir) > 0, "asprintf");
    /* Served over TCP as well; any export name is accepted. */
    struct nbd_server *server = start(&disk, true, path, NULL, "127.0.0.1:0");
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", nbd_server_tcp_port(server));
    CHECK(nbd_server_tcp_port(server) > 0, "no bound TCP port reported");
    struct nbd_handle *nbd = handle();
    nbd_set_export_name(nbd, "anything");
    CHECK(nbd_connect_tcp(nbd, "127.0.0.1", port_text) == 0, "tcp: %s", nbd_get_error());
    CHECK(nbd_is_read_only(nbd) == 1, "not read-only");
    char buf[512];
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, 0, 0) == -1 && nbd_get_errno() == EPERM, "write: %d",
          nbd_get_errno());
    CHECK(nbd_zero(nbd, 512, 0, 0) == -1 && nbd_trim(nbd, 512, 0, 0) == -1, "zero/trim worked");
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0 && buf[0] == 42, "read");
    close_handle(nbd);
    nbd = connect_unix(path, "other");
    CHECK(nbd_is_read_only(nbd) == 1, "not read-only over unix");
    close_handle(nbd);
    nbd_server_stop(server);
    CHECK(access(path, F_OK) != 0, "socket left behind");
    free(path);
    memory_disk_free(&disk);
}

/* Start-up failures are one sentence, and the running server is untouched. */
static void test_start_errors(const char *path)
{
    struct memory_disk disk;
    memory_disk_init(&disk, 4096);
    struct nbd_backend b;
    memory_backend(&disk, &b, false);
    char err[256] = "";
    struct nbd_server_config in_use = {.unix_path = path};
    CHECK(!nbd_server_start(&in_use, &b, err, sizeof err), "socket in use accepted");
    CHECK(strstr(err, "in use"), "error: %s", err);
    struct nbd_server_config bad_tcp = {.tcp_address = "no-port-here"};
    CHECK(!nbd_server_start(&bad_tcp, &b, err, sizeof err), "bad address accepted");
    CHECK(strstr(err, "no-port-here"), "error: %s", err);
    b.pread = NULL;
    struct nbd_server_config none = {0};
    CHECK(!nbd_server_start(&none, &b, err, sizeof err), "no pread accepted");
    CHECK(access(path, F_OK) == 0, "the running server's socket was removed");
    memory_disk_free(&disk);
}

static void *stop_thread(void *server)
{
    nbd_server_stop(server);
    return NULL;
}

/* Stop while a read is inside the backend: the read still completes, then
 * the connection is closed, the socket removed, nothing leaks. */
static void test_stop_in_flight(const char *path, struct nbd_server *server,
                                struct memory_disk *disk)
{
    struct nbd_handle *nbd = connect_unix(path, "disk");
    static char buf[65536];
    atomic_store(&disk->hold, true);
    int64_t cookie = nbd_aio_pread(nbd, buf, sizeof buf, 65536, NBD_NULL_COMPLETION, 0);
    CHECK(cookie > 0, "aio_pread: %s", nbd_get_error());
    while (atomic_load(&disk->held) == 0)
        CHECK(nbd_poll(nbd, 10) >= 0, "poll: %s", nbd_get_error());
    pthread_t stopper;
    CHECK(pthread_create(&stopper, NULL, stop_thread, server) == 0, "pthread_create");
    while (access(path, F_OK) == 0) /* the stop has begun */
        poll(NULL, 0, 1);
    atomic_store(&disk->hold, false);
    while (nbd_aio_in_flight(nbd) > 0)
        CHECK(nbd_poll(nbd, -1) >= 0, "poll: %s", nbd_get_error());
    CHECK(nbd_aio_command_completed(nbd, cookie) == 1, "in-flight read failed: %s",
          nbd_get_error());
    CHECK(memcmp(buf, disk->data + 65536, sizeof buf) == 0, "in-flight read differs");
    pthread_join(stopper, NULL);
    CHECK(nbd_pread(nbd, buf, 512, 0, 0) == -1, "read after stop worked");
    nbd_close(nbd);
}

int main(void)
{
    char *dir = test_make_dir("nbd-libnbd");
    char *path = NULL;
    CHECK(asprintf(&path, "%s/nbd.sock", dir) > 0, "asprintf");
    struct memory_disk disk;
    memory_disk_init(&disk, DISK_SIZE);
    struct nbd_server *server = start(&disk, false, path, "disk", NULL);

    struct nbd_handle *nbd = connect_unix(path, "disk");
    test_round_trips(nbd, &disk);
    test_bad_requests(nbd);
    test_backend_error(nbd, &disk);
    test_concurrent(nbd, &disk);
    close_handle(nbd);

    nbd = connect_pair(server);
    test_bad_requests(nbd);
    test_concurrent(nbd, &disk);
    close_handle(nbd);

    test_options(path);
    test_start_errors(path);
    test_many_connections(path, server, &disk);

    test_stop_in_flight(path, server, &disk);
    memory_disk_free(&disk);

    test_read_only(dir);
    test_cleanup_dir(dir);
    free(path);
    free(dir);
    return 0;
}
