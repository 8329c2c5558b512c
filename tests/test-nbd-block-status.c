/* SPDX-License-Identifier: MIT */
/* Structured replies, metadata contexts and NBD_CMD_BLOCK_STATUS, driven
 * by libnbd against the memory backend (an all-zero 4 KiB block is a
 * hole): base:allocation extents cut to the request, REQ_ONE, listing
 * contexts, unknown context names, block status without a context or
 * without structured replies (an error, and the connection works on),
 * backend errors, a backend without extents (all data), and structured
 * reads (one OFFSET_DATA chunk, DF, read errors, empty reads). */
#include "nbd-memory.h"
#include "nbd-server.h"
#include "testlib.h"

#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DISK_SIZE = 4 << 20, KiB = 1024, MiB = 1 << 20 };

/* What one block status reply said. */
struct extents {
    uint64_t length[64];
    uint32_t flags[64];
    size_t n;
    uint64_t offset;
    int calls;
};

static int collect(void *user_data, const char *context, uint64_t offset, uint32_t *entries,
                   size_t n, int *error)
{
    struct extents *e = user_data;
    (void)error;
    CHECK(strcmp(context, "base:allocation") == 0, "context %s", context);
    e->calls++;
    e->offset = offset;
    for (size_t i = 0; i < n / 2 && e->n < 64; i++, e->n++)
        e->length[e->n] = entries[2 * i], e->flags[e->n] = entries[2 * i + 1];
    return 0;
}

static int block_status(struct nbd_handle *nbd, uint64_t count, uint64_t offset, uint32_t flags,
                        struct extents *e)
{
    *e = (struct extents){0};
    return nbd_block_status(nbd, count, offset,
                            (nbd_extent_callback){.callback = collect, .user_data = e}, flags);
}

static struct nbd_server *start(struct memory_disk *disk, const char *path, bool with_extents)
{
    struct nbd_backend b;
    memory_backend(disk, &b, false);
    if (!with_extents)
        b.extents = NULL;
    struct nbd_server_config config = {.unix_path = path, .export_name = "disk"};
    char err[256] = "";
    struct nbd_server *server = nbd_server_start(&config, &b, err, sizeof err);
    CHECK(server, "nbd_server_start: %s", err);
    return server;
}

/* A handle that lets bad requests through to the server, asking for
 * CONTEXT (may be NULL) and structured replies if STRUCTURED. */
static struct nbd_handle *open_handle(const char *path, const char *context, bool structured)
{
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd, "nbd_create: %s", nbd_get_error());
    CHECK(nbd_set_strict_mode(nbd, 0) == 0, "%s", nbd_get_error());
    CHECK(nbd_set_export_name(nbd, "disk") == 0, "%s", nbd_get_error());
    CHECK(nbd_set_request_structured_replies(nbd, structured) == 0, "%s", nbd_get_error());
    if (context)
        CHECK(nbd_add_meta_context(nbd, context) == 0, "%s", nbd_get_error());
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    return nbd;
}

static void close_handle(struct nbd_handle *nbd)
{
    nbd_shutdown(nbd, 0);
    nbd_close(nbd);
}

static void check_still_serving(struct nbd_handle *nbd, const char *after)
{
    char buf[512];
    CHECK(nbd_pread(nbd, buf, sizeof buf, 0, 0) == 0, "read after %s: %s", after, nbd_get_error());
}

/* Data in [0, 64K) and [1M, 1M+8K) (the second 4 KiB block only partly
 * non-zero), zeroes elsewhere. */
static void fill(struct memory_disk *disk)
{
    memset(disk->data, 0, DISK_SIZE);
    test_fill_random(disk->data, 64 * KiB, 3);
    memset(disk->data + MiB, 0x11, 4 * KiB + 100);
}

static void test_extents(struct nbd_handle *nbd)
{
    CHECK(nbd_get_structured_replies_negotiated(nbd) == 1, "no structured replies");
    CHECK(nbd_can_meta_context(nbd, "base:allocation") == 1, "base:allocation not selected");
    CHECK(nbd_can_df(nbd) == 1, "DF not advertised");
    struct extents e;
    CHECK(block_status(nbd, DISK_SIZE, 0, 0, &e) == 0, "block status: %s", nbd_get_error());
    CHECK(e.calls == 1 && e.offset == 0 && e.n == 4, "%zu extents in %d calls", e.n, e.calls);
    uint64_t want_length[] = {64 * KiB, MiB - 64 * KiB, 8 * KiB, DISK_SIZE - MiB - 8 * KiB};
    uint32_t want_flags[] = {0, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO, 0,
                             LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO};
    for (size_t i = 0; i < 4; i++)
        CHECK(e.length[i] == want_length[i] && e.flags[i] == want_flags[i],
              "extent %zu: %llu bytes flags %u", i, (unsigned long long)e.length[i], e.flags[i]);

    /* An unaligned query is cut to the request. */
    CHECK(block_status(nbd, 100000, 1000, 0, &e) == 0, "block status: %s", nbd_get_error());
    CHECK(e.n == 2 && e.length[0] == 64 * KiB - 1000 && e.flags[0] == 0 &&
              e.length[1] == 100000 - (64 * KiB - 1000) && e.flags[1] == 3,
          "unaligned: %zu extents, first %llu", e.n, (unsigned long long)e.length[0]);

    /* REQ_ONE: one extent, never longer than asked. */
    CHECK(block_status(nbd, 2 * MiB, 0, LIBNBD_CMD_FLAG_REQ_ONE, &e) == 0, "req_one: %s",
          nbd_get_error());
    CHECK(e.n == 1 && e.length[0] == 64 * KiB && e.flags[0] == 0, "req_one at 0: %zu, %llu", e.n,
          (unsigned long long)e.length[0]);
    CHECK(block_status(nbd, 4096, 64 * KiB, LIBNBD_CMD_FLAG_REQ_ONE, &e) == 0, "req_one: %s",
          nbd_get_error());
    CHECK(e.n == 1 && e.length[0] == 4096 && e.flags[0] == 3, "req_one in a hole: %zu, %llu", e.n,
          (unsigned long long)e.length[0]);
}

static void test_bad_block_status(struct nbd_handle *nbd, struct memory_disk *disk)
{
    struct extents e;
    CHECK(block_status(nbd, 4096, DISK_SIZE - 100, 0, &e) == -1, "past the end worked");
    CHECK(nbd_get_errno() == EINVAL, "past the end: errno %d", nbd_get_errno());
    check_still_serving(nbd, "block status past the end");
    CHECK(block_status(nbd, 0, 0, 0, &e) == -1, "empty block status worked");
    CHECK(nbd_get_errno() == EINVAL, "empty block status: errno %d", nbd_get_errno());
    CHECK(block_status(nbd, 4096, 0, LIBNBD_CMD_FLAG_DF, &e) == -1, "DF on block status worked");
    CHECK(nbd_get_errno() == EINVAL, "DF on block status: errno %d", nbd_get_errno());
    atomic_store(&disk->extents_fail, true);
    CHECK(block_status(nbd, 4096, 0, 0, &e) == -1, "backend failure hidden");
    CHECK(nbd_get_errno() == EIO, "backend failure: errno %d", nbd_get_errno());
    atomic_store(&disk->extents_fail, false);
    check_still_serving(nbd, "a failed block status");
}

/* Without a selected context, or without structured replies, block status
 * is refused with EINVAL and the connection lives on. */
static void test_without_context(const char *path)
{
    const char *names[] = {"base:nonsense", "x-godwit:allocation", "base:", "nonsense"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct nbd_handle *nbd = open_handle(path, names[i], true);
        CHECK(nbd_can_meta_context(nbd, names[i]) == 0, "%s was selected", names[i]);
        CHECK(nbd_can_meta_context(nbd, "base:allocation") == 0, "base:allocation selected");
        struct extents e;
        CHECK(block_status(nbd, 4096, 0, 0, &e) == -1, "block status without a context worked");
        CHECK(nbd_get_errno() == EINVAL, "without a context: errno %d", nbd_get_errno());
        check_still_serving(nbd, "block status without a context");
        close_handle(nbd);
    }
    struct nbd_handle *nbd = open_handle(path, "base:allocation", false);
    CHECK(nbd_get_structured_replies_negotiated(nbd) == 0, "structured replies negotiated");
    CHECK(nbd_can_df(nbd) == 0, "DF advertised without structured replies");
    struct extents e;
    CHECK(block_status(nbd, 4096, 0, 0, &e) == -1, "block status with simple replies worked");
    CHECK(nbd_get_errno() == EINVAL, "simple replies: errno %d", nbd_get_errno());
    check_still_serving(nbd, "block status with simple replies");
    close_handle(nbd);
}

static int count_context(void *user_data, const char *name)
{
    CHECK(strcmp(name, "base:allocation") == 0, "listed %s", name);
    ++*(int *)user_data;
    return 0;
}

static int list_contexts(struct nbd_handle *nbd)
{
    int n = 0;
    int r = nbd_opt_list_meta_context(
        nbd, (nbd_context_callback){.callback = count_context, .user_data = &n});
    CHECK(r == n, "list meta context: %d, %d listed: %s", r, n, nbd_get_error());
    return n;
}

/* LIST: everything with no query, base:allocation for "base:" and for
 * itself, nothing for other namespaces or leaves. */
static void test_list(const char *path)
{
    struct nbd_handle *nbd = nbd_create();
    CHECK(nbd && nbd_set_opt_mode(nbd, true) == 0, "opt mode: %s", nbd_get_error());
    CHECK(nbd_set_export_name(nbd, "disk") == 0, "%s", nbd_get_error());
    CHECK(nbd_connect_unix(nbd, path) == 0, "connect: %s", nbd_get_error());
    CHECK(list_contexts(nbd) == 1, "no query");
    const char *queries[] = {"base:", "base:allocation", "base:nonsense", "x-other:", "nonsense"};
    int want[] = {1, 1, 0, 0, 0};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        CHECK(nbd_clear_meta_contexts(nbd) == 0 && nbd_add_meta_context(nbd, queries[i]) == 0, "%s",
              nbd_get_error());
        CHECK(list_contexts(nbd) == want[i], "query %s", queries[i]);
    }
    CHECK(nbd_clear_meta_contexts(nbd) == 0 && nbd_add_meta_context(nbd, "base:allocation") == 0,
          "%s", nbd_get_error());
    CHECK(nbd_opt_go(nbd) == 0, "go: %s", nbd_get_error());
    CHECK(nbd_can_meta_context(nbd, "base:allocation") == 1, "not selected after listing");
    close_handle(nbd);
}

struct chunks {
    int n;
    unsigned status;
    uint64_t offset;
    size_t count;
};

static int collect_chunk(void *user_data, const void *subbuf, size_t count, uint64_t offset,
                         unsigned status, int *error)
{
    struct chunks *c = user_data;
    (void)subbuf, (void)error;
    c->n++, c->status = status, c->offset = offset, c->count = count;
    return 0;
}

static void test_structured_reads(struct nbd_handle *nbd, struct memory_disk *disk)
{
    static char buf[300000];
    uint32_t flags[] = {0, LIBNBD_CMD_FLAG_DF};
    for (int i = 0; i < 2; i++) {
        struct chunks c = {0};
        CHECK(nbd_pread_structured(nbd, buf, sizeof buf, 12345,
                                   (nbd_chunk_callback){.callback = collect_chunk, .user_data = &c},
                                   flags[i]) == 0,
              "structured read: %s", nbd_get_error());
        CHECK(c.n == 1 && c.status == LIBNBD_READ_DATA && c.offset == 12345 &&
                  c.count == sizeof buf,
              "%d chunks, status %u", c.n, c.status);
        CHECK(memcmp(buf, disk->data + 12345, sizeof buf) == 0, "read differs");
    }
    CHECK(nbd_pread(nbd, buf, 0, 0, 0) == 0, "empty read: %s", nbd_get_error());
    disk->eio_offset = 2 * MiB, disk->eio_length = 4096;
    CHECK(nbd_pread(nbd, buf, 8192, 2 * MiB - 4096, 0) == -1, "read error hidden");
    CHECK(nbd_get_errno() == EIO, "read error: errno %d", nbd_get_errno());
    disk->eio_length = 0;
    CHECK(nbd_pread(nbd, buf, 4096, DISK_SIZE, 0) == -1, "read past the end worked");
    CHECK(nbd_get_errno() == EINVAL, "read past the end: errno %d", nbd_get_errno());
    check_still_serving(nbd, "failed structured reads");
}

/* A backend without an extents callback: the whole range is data. */
static void test_no_extents_callback(const char *dir, struct memory_disk *disk)
{
    char path[512];
    snprintf(path, sizeof path, "%s/plain.sock", dir);
    struct nbd_server *server = start(disk, path, false);
    struct nbd_handle *nbd = open_handle(path, "base:allocation", true);
    struct extents e;
    CHECK(block_status(nbd, 3 * MiB, MiB / 2, 0, &e) == 0, "block status: %s", nbd_get_error());
    CHECK(e.n == 1 && e.length[0] == 3 * MiB && e.flags[0] == 0, "%zu extents, %llu, flags %u", e.n,
          (unsigned long long)e.length[0], e.flags[0]);
    close_handle(nbd);
    nbd_server_stop(server);
}

int main(void)
{
    char *dir = test_make_dir("nbd-block-status");
    char path[512];
    snprintf(path, sizeof path, "%s/nbd.sock", dir);
    struct memory_disk disk;
    memory_disk_init(&disk, DISK_SIZE);
    fill(&disk);
    struct nbd_server *server = start(&disk, path, true);

    struct nbd_handle *nbd = open_handle(path, "base:allocation", true);
    test_extents(nbd);
    test_bad_block_status(nbd, &disk);
    test_structured_reads(nbd, &disk);
    close_handle(nbd);
    test_without_context(path);
    test_list(path);
    nbd_server_stop(server);
    test_no_extents_callback(dir, &disk);

    memory_disk_free(&disk);
    test_cleanup_dir(dir);
    free(dir);
    printf("nbd-block-status: ok\n");
    return 0;
}
