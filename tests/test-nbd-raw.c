/* SPDX-License-Identifier: MIT */
/* Malformed clients on raw sockets: wrong magic, truncated and huge
 * options, unknown options and commands, options out of order, block status
 * with simple replies, bad client flags, oversized writes. Each bad connection is closed or
 * answered with an error, and the server keeps serving the next client. */
#include "nbd-memory.h"
#include "nbd-server.h"
#include "testlib.h"

#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { DISK_SIZE = 1 << 20, MAX_REQUEST = 64 << 10 };
#define IHAVEOPT 0x49484156454f5054ull
#define REP_ERR_UNSUP 0x80000001u
#define REP_ERR_INVALID 0x80000003u
#define REP_ACK 1u

static const char *socket_path;
static struct nbd_server *server;

/* Waits until only the idle client is left: every bad connection before has
 * been closed and reaped (slow under TSan), so the next one is admitted. */
static void wait_for_idle_only(void)
{
    for (int i = 0; i < 10000 && nbd_server_connections(server) != 1; i++)
        poll(NULL, 0, 1);
    CHECK(nbd_server_connections(server) == 1, "%u connections still open",
          nbd_server_connections(server));
}

static void send_all(int fd, const void *buf, size_t len)
{
    CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, "send: %s", strerror(errno));
}

static void recv_all(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        struct pollfd p = {fd, POLLIN, 0};
        CHECK(poll(&p, 1, 10000) == 1, "no answer from the server");
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        CHECK(n > 0, "server closed the connection early");
        got += (size_t)n;
    }
}

/* True once the server has closed FD (end of stream or reset). */
static bool closed_by_server(int fd)
{
    char buf[4096];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1)
            return false;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true;
    }
}

/* Connects and reads the greeting; sends FLAGS unless it is -1. */
static int raw_connect(int64_t flags)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, socket_path);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
    unsigned char greeting[18];
    recv_all(fd, greeting, sizeof greeting);
    CHECK(memcmp(greeting, "NBDMAGICIHAVEOPT", 16) == 0, "greeting");
    CHECK(greeting[17] & 1, "not fixed newstyle");
    if (flags >= 0) {
        uint32_t be = htobe32((uint32_t)flags);
        send_all(fd, &be, 4);
    }
    return fd;
}

static void send_option(int fd, uint64_t magic, uint32_t option, uint32_t len, const void *data,
                        size_t data_len)
{
    struct {
        uint64_t magic;
        uint32_t option, len;
    } __attribute__((packed)) h = {htobe64(magic), htobe32(option), htobe32(len)};
    send_all(fd, &h, sizeof h);
    if (data_len)
        send_all(fd, data, data_len);
}

/* Reads one option reply; returns its type, skipping its payload. */
static uint32_t option_reply(int fd, uint32_t option)
{
    struct {
        uint64_t magic;
        uint32_t option, type, len;
    } __attribute__((packed)) r;
    recv_all(fd, &r, sizeof r);
    CHECK(be64toh(r.magic) == 0x3e889045565a9ull, "reply magic");
    CHECK(be32toh(r.option) == option, "reply to option %u", be32toh(r.option));
    char skip[1024];
    for (uint32_t left = be32toh(r.len); left > 0;) {
        uint32_t n = left < sizeof skip ? left : sizeof skip;
        recv_all(fd, skip, n);
        left -= n;
    }
    return be32toh(r.type);
}

/* The server still serves a well-behaved libnbd client. */
static void check_server_alive(void)
{
    wait_for_idle_only();
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd_connect_unix(nbd, socket_path) == 0, "server died: %s", nbd_get_error());
    char buf[512];
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "read: %s", nbd_get_error());
    nbd_shutdown(nbd, 0);
    nbd_close(nbd);
}

static void test_bad_handshakes(void)
{
    int fd = raw_connect(0xff00); /* unknown client flags */
    CHECK(closed_by_server(fd), "unknown client flags accepted");
    close(fd);
    check_server_alive();

    fd = raw_connect(3);
    send_option(fd, 0x1122334455667788ull, 7, 0, NULL, 0); /* wrong option magic */
    CHECK(closed_by_server(fd), "wrong magic accepted");
    close(fd);
    check_server_alive();

    fd = raw_connect(3);
    send_option(fd, IHAVEOPT, 7, 100, "0123456789", 10); /* truncated option */
    shutdown(fd, SHUT_WR);
    CHECK(closed_by_server(fd), "truncated option");
    close(fd);
    check_server_alive();

    fd = raw_connect(3);
    send_option(fd, IHAVEOPT, 99, 0xffffffffu, NULL, 0); /* huge option */
    CHECK(closed_by_server(fd), "huge option accepted");
    close(fd);
    check_server_alive();

    fd = raw_connect(-1); /* closes before even sending flags */
    close(fd);
    fd = raw_connect(3);
    send_option(fd, IHAVEOPT, 7, 5, "\0\0\0", 3); /* GO cut short */
    close(fd);
    check_server_alive();
}

/* Unknown options (with payloads) are refused and negotiation goes on;
 * then NBD_OPT_EXPORT_NAME with NO_ZEROES enters transmission. */
static int negotiate_raw(void)
{
    int fd = raw_connect(3);
    send_option(fd, IHAVEOPT, 99, 7, "payload", 7);
    CHECK(option_reply(fd, 99) == REP_ERR_UNSUP, "unknown option");
    send_option(fd, IHAVEOPT, 8, 3, "abc", 3); /* STRUCTURED_REPLY takes no payload */
    CHECK(option_reply(fd, 8) == REP_ERR_INVALID, "structured reply with a payload");
    static const char set[] = "\0\0\0\4disk\0\0\0\1\0\0\0\17base:allocation";
    send_option(fd, IHAVEOPT, 10, sizeof set - 1, set, sizeof set - 1); /* SET_META_CONTEXT */
    CHECK(option_reply(fd, 10) == REP_ERR_INVALID, "meta context without structured replies");
    send_option(fd, IHAVEOPT, 5, 0, NULL, 0); /* STARTTLS */
    CHECK(option_reply(fd, 5) == REP_ERR_UNSUP, "starttls");
    send_option(fd, IHAVEOPT, 3, 0, NULL, 0); /* LIST */
    CHECK(option_reply(fd, 3) == 2 && option_reply(fd, 3) == REP_ACK, "list");
    send_option(fd, IHAVEOPT, 1, 4, "disk", 4); /* EXPORT_NAME */
    unsigned char reply[10];
    recv_all(fd, reply, sizeof reply); /* no 124 zeroes follow */
    uint64_t size;
    memcpy(&size, reply, 8);
    CHECK(be64toh(size) == DISK_SIZE, "export size");
    return fd;
}

static void send_request(int fd, uint16_t type, uint64_t offset, uint32_t count, uint64_t handle)
{
    struct {
        uint32_t magic;
        uint16_t flags, type;
        uint64_t handle, offset;
        uint32_t count;
    } __attribute__((packed))
    r = {htobe32(0x25609513), 0, htobe16(type), handle, htobe64(offset), htobe32(count)};
    send_all(fd, &r, sizeof r);
}

/* Reads a simple reply to HANDLE and returns its error. */
static uint32_t simple_reply(int fd, uint64_t handle)
{
    struct {
        uint32_t magic, error;
        uint64_t handle;
    } __attribute__((packed)) r;
    recv_all(fd, &r, sizeof r);
    CHECK(be32toh(r.magic) == 0x67446698, "reply magic");
    CHECK(r.handle == handle, "reply handle");
    return be32toh(r.error);
}

static void check_read_works(int fd, uint64_t handle)
{
    char buf[512];
    send_request(fd, 0, 0, sizeof buf, handle);
    CHECK(simple_reply(fd, handle) == 0, "read failed");
    recv_all(fd, buf, sizeof buf);
}

/* This export has no zero and no trim callbacks: zeroes are written
 * through pwrite, TRIM is refused. */
static void test_fallbacks(struct memory_disk *disk)
{
    int fd = negotiate_raw();
    memset(disk->data, 0x5a, 8192);
    send_request(fd, 6, 100, 3000, 11); /* WRITE_ZEROES */
    CHECK(simple_reply(fd, 11) == 0, "write zeroes");
    for (int i = 0; i < 8192; i++)
        CHECK(disk->data[i] == ((i >= 100 && i < 3100) ? 0 : 0x5a), "byte %d", i);
    CHECK(disk->zeroes == 0, "zero callback used");
    send_request(fd, 4, 0, 512, 12); /* TRIM, not advertised */
    CHECK(simple_reply(fd, 12) == EINVAL, "trim");
    check_read_works(fd, 13);
    send_request(fd, 2, 0, 0, 14); /* DISC: the server closes, no reply */
    CHECK(closed_by_server(fd), "disconnect");
    close(fd);
}

static void test_bad_requests(void)
{
    int fd = negotiate_raw();
    send_request(fd, 99, 0, 0, 1); /* unknown command */
    CHECK(simple_reply(fd, 1) == EINVAL, "unknown command");
    check_read_works(fd, 2);
    send_request(fd, 7, 0, 4096, 9); /* BLOCK_STATUS without structured replies */
    CHECK(simple_reply(fd, 9) == EINVAL, "block status without a context");
    check_read_works(fd, 10);
    /* A write larger than max_request: refused, its payload skipped. */
    static char big[2 * MAX_REQUEST];
    send_request(fd, 1, 0, sizeof big, 3);
    send_all(fd, big, sizeof big);
    CHECK(simple_reply(fd, 3) == EINVAL, "too-large write");
    check_read_works(fd, 4);
    send_request(fd, 0, DISK_SIZE, 1, 5); /* read past the end */
    CHECK(simple_reply(fd, 5) == EINVAL, "read past the end");
    check_read_works(fd, 6);
    /* An absurd write (1 GiB) cannot be skipped: error, then close. */
    send_request(fd, 1, 0, 1u << 30, 7);
    CHECK(simple_reply(fd, 7) == EINVAL, "absurd write");
    CHECK(closed_by_server(fd), "absurd write did not close");
    close(fd);
    check_server_alive();

    fd = negotiate_raw();
    send_request(fd, 1, 0, 4096, 8); /* write cut short by the client */
    send_all(fd, big, 100);
    close(fd);
    fd = negotiate_raw();
    struct nbd_request_bad {
        char junk[28];
    } junk = {{0}};
    send_all(fd, &junk, sizeof junk); /* bad request magic */
    CHECK(closed_by_server(fd), "bad request magic accepted");
    close(fd);
    check_server_alive();
}

int main(void)
{
    char *dir = test_make_dir("nbd-raw");
    char *path = NULL;
    CHECK(asprintf(&path, "%s/nbd.sock", dir) > 0, "asprintf");
    socket_path = path;
    struct memory_disk disk;
    memory_disk_init(&disk, DISK_SIZE);
    struct nbd_backend b;
    memory_backend(&disk, &b, false);
    b.zero = NULL, b.trim = NULL;
    struct nbd_server_config config = {
        .unix_path = path, .max_request = MAX_REQUEST, .max_connections = 4};
    char err[256] = "";
    server = nbd_server_start(&config, &b, err, sizeof err);
    CHECK(server, "start: %s", err);

    /* An idle client holding a connection does not block the others. */
    int idle = raw_connect(-1);
    test_bad_handshakes();
    test_bad_requests();
    test_fallbacks(&disk);

    /* Beyond max_connections (4), extra connections are closed. */
    wait_for_idle_only();
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = raw_connect(3);
    int extra = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    CHECK(connect(extra, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
    CHECK(closed_by_server(extra), "fifth connection accepted");
    close(extra);
    for (int i = 0; i < 3; i++)
        close(held[i]);

    nbd_server_stop(server); /* the idle client is still connected */
    close(idle);
    memory_disk_free(&disk);
    test_cleanup_dir(dir);
    free(path);
    free(dir);
    return 0;
}
