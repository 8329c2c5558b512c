/* Test of the NBD server library with an in-memory backend, driven by
 * libnbd over a unix socket and over a socketpair: every command, FUA,
 * errors that keep the connection alive, a failing backend (an error, not
 * zeros), out-of-order concurrent replies, several connections, option
 * negotiation, a read-only export, and malformed handshakes on raw sockets
 * that must not take the server down. */
#include "nbd-server.h"
#include "testlib.h"

#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { SIZE = 8 << 20, BAD = 6 << 20, SLOW = 7 << 20 };

/* The backend: a buffer; reads of [BAD, BAD+4096) fail with EIO; reads at
 * SLOW take 300 ms. Data is owned by the test: requests touch disjoint
 * ranges or are ordered by the test itself. */
struct memory {
    unsigned char *data;
    _Atomic int flushes, fuas;
};

static int mem_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    struct memory *m = opaque;
    if (offset < BAD + 4096 && offset + count > BAD) {
        errno = EIO;
        return -1;
    }
    if (offset == SLOW)
        usleep(300000);
    memcpy(buf, m->data + offset, count);
    return 0;
}

static int mem_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    struct memory *m = opaque;
    memcpy(m->data + offset, buf, count);
    if (fua)
        atomic_fetch_add(&m->fuas, 1);
    return 0;
}

static int mem_flush(void *opaque)
{
    struct memory *m = opaque;
    atomic_fetch_add(&m->flushes, 1);
    return 0;
}

static int mem_trim(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    struct memory *m = opaque;
    (void)fua;
    memset(m->data + offset, 0, count);
    return 0;
}

static struct memory mem;

static struct nbd_handle *connect_unix(const char *path, const char *name)
{
    struct nbd_handle *nbd = nbd_create();
    if (name)
        nbd_set_export_name(nbd, name);
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    return nbd;
}

static void test_commands(struct nbd_handle *nbd)
{
    CHECK(nbd_get_size(nbd) == SIZE, "size %lld", (long long)nbd_get_size(nbd));
    CHECK(nbd_can_trim(nbd) == 1 && nbd_can_multi_conn(nbd) == 1 && nbd_is_read_only(nbd) == 0,
          "flags");
    char out[10000], in[10000];
    test_fill_random(out, sizeof out, 3);
    CHECK(nbd_pwrite(nbd, out, sizeof out, 4097, 0) == 0, "unaligned write: %s", nbd_get_error());
    CHECK(nbd_pread(nbd, in, sizeof in, 4097, 0) == 0 && memcmp(in, out, sizeof in) == 0,
          "read back");
    CHECK(memcmp(mem.data + 4097, out, sizeof out) == 0, "backend holds the write");
    CHECK(nbd_pwrite(nbd, out, 512, 0, LIBNBD_CMD_FLAG_FUA) == 0 && atomic_load(&mem.fuas) == 1,
          "FUA reaches the backend");
    CHECK(nbd_flush(nbd, 0) == 0 && atomic_load(&mem.flushes) == 1, "flush");
    CHECK(nbd_zero(nbd, 3000, 5000, 0) == 0, "zero: %s", nbd_get_error());
    CHECK(nbd_pread(nbd, in, 3000, 5000, 0) == 0, "read zeroes");
    for (int i = 0; i < 3000; i++)
        CHECK(in[i] == 0, "byte %d not zeroed", i);
    CHECK(nbd_trim(nbd, 4096, 8192, 0) == 0, "trim: %s", nbd_get_error());

    /* Errors that keep the connection. */
    CHECK(nbd_pread(nbd, in, 100, SIZE - 50, 0) == -1 && nbd_get_errno() == EINVAL,
          "read past the end: errno %d", nbd_get_errno());
    CHECK(nbd_pread(nbd, in, 100, BAD, 0) == -1 && nbd_get_errno() == EIO,
          "backend error must be an error, errno %d", nbd_get_errno());
    CHECK(nbd_pread(nbd, in, 100, 0, 0) == 0, "the connection survives errors");
}

/* A slow read sent first must not hold up a fast one sent after it. */
static void test_out_of_order(struct nbd_handle *nbd)
{
    char slow[4096], fast[4096];
    int64_t a = nbd_aio_pread(nbd, slow, sizeof slow, SLOW, NBD_NULL_COMPLETION, 0);
    int64_t b = nbd_aio_pread(nbd, fast, sizeof fast, 0, NBD_NULL_COMPLETION, 0);
    CHECK(a > 0 && b > 0, "aio_pread: %s", nbd_get_error());
    int64_t first = 0;
    while (first == 0) {
        CHECK(nbd_poll(nbd, 5000) >= 0, "poll");
        first = nbd_aio_peek_command_completed(nbd);
        if (first < 0)
            first = 0;
    }
    CHECK(first == b, "the fast read did not complete first");
    while (nbd_aio_in_flight(nbd) > 0)
        nbd_poll(nbd, 5000);
    CHECK(nbd_aio_command_completed(nbd, a) == 1 && nbd_aio_command_completed(nbd, b) == 1,
          "both complete");
}

static int count_export(void *opaque, const char *name, const char *description)
{
    (void)description;
    CHECK(strcmp(name, "godwit") == 0, "listed export '%s'", name);
    (*(int *)opaque)++;
    return 0;
}

static void test_options(const char *path)
{
    struct nbd_handle *nbd = nbd_create();
    nbd_set_opt_mode(nbd, true);
    CHECK(nbd_connect_unix(nbd, path) == 0, "opt-mode connect: %s", nbd_get_error());
    int listed = 0;
    CHECK(nbd_opt_list(nbd, (nbd_list_callback){.callback = count_export, .user_data = &listed}) ==
                  1 &&
              listed == 1,
          "NBD_OPT_LIST: %s", nbd_get_error());
    nbd_set_export_name(nbd, "wrong");
    CHECK(nbd_opt_info(nbd) == -1, "INFO on an unknown export must fail");
    nbd_set_export_name(nbd, "godwit");
    nbd_set_full_info(nbd, true);
    CHECK(nbd_opt_info(nbd) == 0 && nbd_get_size(nbd) == SIZE, "NBD_OPT_INFO: %s", nbd_get_error());
    char *description = nbd_get_export_description(nbd);
    CHECK(description && strcmp(description, "test export") == 0, "description");
    free(description);
    CHECK(nbd_get_block_size(nbd, LIBNBD_SIZE_MAXIMUM) == 32 << 20, "max block size");
    CHECK(nbd_opt_go(nbd) == 0, "NBD_OPT_GO: %s", nbd_get_error());
    char buf[16];
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "read after GO");
    nbd_close(nbd);
}

static int raw_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "raw connect");
    char greeting[18];
    CHECK(recv(fd, greeting, sizeof greeting, MSG_WAITALL) == sizeof greeting, "greeting");
    return fd;
}

/* Sends BYTES after the greeting; the server must close this connection
 * (or answer) without harm to others. */
static void send_garbage(const char *path, const void *bytes, size_t len)
{
    int fd = raw_connect(path);
    send(fd, bytes, len, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    while (recv(fd, sink, sizeof sink, 0) > 0)
        ;
    close(fd);
}

static void test_malformed(const char *path)
{
    static const unsigned char bad_flags[] = {0xff, 0xff, 0xff, 0xff};
    static const unsigned char bad_magic[] = {0, 0, 0, 3, 'N', 'O', 'T', 'M', 'A', 'G', 'I', 'C'};
    static const unsigned char huge_option[] = {0,   0,   0, 3, 'I', 'H', 'A',  'V',  'E',  'O',
                                                'P', 'T', 0, 0, 0,   7,   0x7f, 0xff, 0xff, 0xff};
    static const unsigned char truncated[] = {0, 0, 0, 3, 'I', 'H', 'A', 'V', 'E', 'O', 'P'};
    static const unsigned char unknown_option[] = {0,   0, 0, 3, 'I', 'H', 'A', 'V', 'E', 'O', 'P',
                                                   'T', 0, 0, 0, 99,  0,   0,   0,   2,   'h', 'i'};
    send_garbage(path, bad_flags, sizeof bad_flags);
    send_garbage(path, bad_magic, sizeof bad_magic);
    send_garbage(path, huge_option, sizeof huge_option);
    send_garbage(path, truncated, sizeof truncated);
    send_garbage(path, unknown_option, sizeof unknown_option);
    struct nbd_handle *nbd = connect_unix(path, "godwit");
    char buf[16];
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "server still serves after garbage");
    nbd_close(nbd);
}

int main(void)
{
    char *dir = test_make_dir("nbd-test");
    char path[512];
    snprintf(path, sizeof path, "%s/nbd.sock", dir);
    mem.data = calloc(1, SIZE);
    struct nbd_backend backend = {.opaque = &mem,
                                  .size = SIZE,
                                  .pread = mem_pread,
                                  .pwrite = mem_pwrite,
                                  .flush = mem_flush,
                                  .trim = mem_trim};
    struct nbd_server_config config = {
        .unix_path = path, .export_name = "godwit", .description = "test export"};
    char err[256];
    struct nbd_server *server = nbd_server_start(&config, &backend, err, sizeof err);
    CHECK(server, "start: %s", err);

    struct nbd_handle *a = connect_unix(path, "godwit"), *b = connect_unix(path, "godwit");
    test_commands(a);
    test_out_of_order(b);
    CHECK(nbd_server_connections(server) == 2, "two connections");
    nbd_close(a);
    nbd_close(b);
    test_options(path);
    test_malformed(path);

    /* A connected socketpair served without a listener. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    CHECK(nbd_server_add_fd(server, sv[0]) == 0, "add_fd");
    struct nbd_handle *c = nbd_create();
    nbd_set_export_name(c, "godwit");
    CHECK(nbd_connect_socket(c, sv[1]) == 0, "connect_socket: %s", nbd_get_error());
    char buf[64];
    CHECK(nbd_pread(c, buf, sizeof buf, 4097, 0) == 0 && memcmp(buf, mem.data + 4097, 64) == 0,
          "read over the socketpair");
    nbd_close(c);
    nbd_server_stop(server);
    CHECK(access(path, F_OK) != 0, "socket removed at stop");

    /* Read-only. */
    backend.read_only = true;
    server = nbd_server_start(&config, &backend, err, sizeof err);
    CHECK(server, "start read-only: %s", err);
    c = connect_unix(path, "godwit");
    CHECK(nbd_is_read_only(c) == 1, "read-only flag");
    CHECK(nbd_pwrite(c, buf, 16, 0, 0) == -1, "write to a read-only export");
    nbd_close(c);
    nbd_server_stop(server);
    free(mem.data);
    test_cleanup_dir(dir);
    free(dir);
    printf("nbd-test: ok\n");
    return 0;
}
