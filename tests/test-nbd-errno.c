/* SPDX-License-Identifier: MIT */
/* The NBD server's errno -> wire mapping takes the request's flags, as
 * nbdkit's nbd_errno does: ENOTSUP and EOVERFLOW reach the client only
 * when its request asked for them (FAST_ZERO, DF), otherwise EINVAL. Checked
 * on the function and through a real connection, where a backend's ENOTSUP
 * or EOVERFLOW on a plain READ arrives at libnbd as EINVAL, and EOVERFLOW on
 * a READ with DF (structured replies) as EOVERFLOW. */
#include "internal.h"
#include "nbd-memory.h"
#include "protocol.h"
#include "testlib.h"

#include <errno.h>
#include <libnbd.h>
#include <sys/socket.h>

static void test_mapping(void)
{
    CHECK(nbd_errno_to_wire(0, 0) == 0, "success");
    CHECK(nbd_errno_to_wire(EPERM, 0) == NBD_EPERM && nbd_errno_to_wire(EROFS, 0) == NBD_EPERM,
          "EPERM/EROFS");
    CHECK(nbd_errno_to_wire(ENOMEM, 0) == NBD_ENOMEM, "ENOMEM");
    CHECK(nbd_errno_to_wire(EINVAL, 0) == NBD_EINVAL, "EINVAL");
    CHECK(nbd_errno_to_wire(ENOSPC, 0) == NBD_ENOSPC && nbd_errno_to_wire(EFBIG, 0) == NBD_ENOSPC,
          "ENOSPC/EFBIG");
    CHECK(nbd_errno_to_wire(ESHUTDOWN, 0) == NBD_ESHUTDOWN, "ESHUTDOWN");
    CHECK(nbd_errno_to_wire(EIO, 0) == NBD_EIO && nbd_errno_to_wire(EBADF, 0) == NBD_EIO,
          "anything else is EIO");

    CHECK(nbd_errno_to_wire(ENOTSUP, 0) == NBD_EINVAL, "ENOTSUP without FAST_ZERO");
    CHECK(nbd_errno_to_wire(EOPNOTSUPP, NBD_CMD_FLAG_FUA) == NBD_EINVAL, "EOPNOTSUPP with FUA");
    CHECK(nbd_errno_to_wire(ENOTSUP, NBD_CMD_FLAG_FAST_ZERO) == NBD_ENOTSUP, "with FAST_ZERO");
    CHECK(nbd_errno_to_wire(ENOTSUP, NBD_CMD_FLAG_DF) == NBD_EINVAL, "DF does not ask for it");

    CHECK(nbd_errno_to_wire(EOVERFLOW, 0) == NBD_EINVAL, "EOVERFLOW without DF");
    CHECK(nbd_errno_to_wire(EOVERFLOW, NBD_CMD_FLAG_FAST_ZERO) == NBD_EINVAL, "with FAST_ZERO");
    CHECK(nbd_errno_to_wire(EOVERFLOW, NBD_CMD_FLAG_DF) == NBD_EOVERFLOW, "with DF");
}

/* libnbd's chunk callback for nbd_pread_structured (DF needs it). */
static int any_chunk(void *opaque, const void *data, size_t count, uint64_t offset, unsigned status,
                     int *error)
{
    (void)opaque, (void)data, (void)count, (void)offset, (void)status, (void)error;
    return 0;
}

/* A READ of the failing range (with libnbd's FLAGS, e.g. LIBNBD_CMD_FLAG_DF),
 * the backend failing with ERR; returns what libnbd reports. */
static int read_error(struct nbd_server *server, struct memory_disk *disk, int err, uint32_t flags)
{
    disk->read_errno = err;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    CHECK(nbd_server_add_fd(server, sv[0]) == 0, "nbd_server_add_fd");
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd && nbd_connect_socket(nbd, sv[1]) == 0, "connect: %s", nbd_get_error());
    char buf[512];
    if (flags & LIBNBD_CMD_FLAG_DF)
        CHECK(nbd_can_df(nbd) == 1, "the server does not offer DF with structured replies");
    int r = flags ? nbd_pread_structured(nbd, buf, sizeof buf, 0,
                                         (nbd_chunk_callback){.callback = any_chunk}, flags)
                  : nbd_pread(nbd, buf, sizeof buf, 0, 0);
    CHECK(r == -1, "the read of a failing range worked");
    int got = nbd_get_errno();
    CHECK(nbd_pread(nbd, buf, sizeof buf, 4096, 0) == 0, "the connection did not live on: %s",
          nbd_get_error());
    nbd_shutdown(nbd, 0);
    nbd_close(nbd);
    return got;
}

static void test_on_the_wire(void)
{
    struct memory_disk disk;
    memory_disk_init(&disk, 1 << 20);
    disk.eio_offset = 0, disk.eio_length = 512;
    struct nbd_backend b;
    memory_backend(&disk, &b, false);
    const struct nbd_server_config config = {.description = "errno test"};
    char err[256] = "";
    struct nbd_server *server = nbd_server_start(&config, &b, err, sizeof err);
    CHECK(server, "nbd_server_start: %s", err);
    int got;
    CHECK((got = read_error(server, &disk, ENOTSUP, 0)) == EINVAL, "ENOTSUP arrived as %d", got);
    CHECK((got = read_error(server, &disk, EOVERFLOW, 0)) == EINVAL, "EOVERFLOW arrived as %d",
          got);
    CHECK((got = read_error(server, &disk, ENOSPC, 0)) == ENOSPC, "ENOSPC arrived as %d", got);
    CHECK((got = read_error(server, &disk, EBADF, 0)) == EIO, "EBADF arrived as %d", got);
    /* A client that asked for an unfragmented read may see EOVERFLOW. */
    CHECK((got = read_error(server, &disk, EOVERFLOW, LIBNBD_CMD_FLAG_DF)) == EOVERFLOW,
          "EOVERFLOW with DF arrived as %d", got);
    CHECK((got = read_error(server, &disk, ENOTSUP, LIBNBD_CMD_FLAG_DF)) == EINVAL,
          "ENOTSUP with DF arrived as %d", got);
    nbd_server_stop(server);
    memory_disk_free(&disk);
}

int main(void)
{
    test_mapping();
    test_on_the_wire();
    printf("test-nbd-errno: ok\n");
    return 0;
}
