/* SPDX-License-Identifier: MIT */
/* Integration test: a real godwit-seeder, written through its NBD export
 * with libnbd, driven through Track/Sync/Finalize/Complete over gRPC. The
 * dirty lists must be exactly the chunks written, and Sync's page masks
 * exactly the pages written; ReadAt must return the
 * written bytes (and, asked for it, their XXH3-64 checksum, zero ranges
 * counted as zeroes; not asked, no checksum field); Digest the XXH3-64 of
 * each chunk; Holes the file's holes; writes after Finalize
 * must fail at the client; every bad input gets its status code and the
 * server keeps serving. */
#include "seeder-harness.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

enum { CHUNK = 64 << 10, CHUNKS = 128, SIZE = CHUNK * CHUNKS };

static struct seeder_proc seeder;
static unsigned char *model; /* what the image must hold */

static void write_at(struct nbd_handle *nbd, uint64_t offset, size_t len, uint64_t seed)
{
    unsigned char *buf = malloc(len);
    test_fill_random(buf, len, seed);
    CHECK(nbd_pwrite(nbd, buf, len, offset, 0) == 0, "pwrite %llu+%zu: %s",
          (unsigned long long)offset, len, nbd_get_error());
    memcpy(model + offset, buf, len);
    free(buf);
}

static void zero_at(struct nbd_handle *nbd, uint64_t offset, size_t len, bool trim)
{
    int r = trim ? nbd_trim(nbd, len, offset, 0) : nbd_zero(nbd, len, offset, 0);
    CHECK(r == 0, "%s: %s", trim ? "trim" : "zero", nbd_get_error());
    memset(model + offset, 0, len);
}

static Godwit__V1__SyncResponse *sync_ack(uint64_t ack)
{
    Godwit__V1__SyncRequest request = GODWIT__V1__SYNC_REQUEST__INIT;
    request.ack_generation = ack;
    ProtobufCMessage *response;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Sync", &request.base, &godwit__v1__sync_response__descriptor,
                      &response, &result) == GRPC_STATUS_OK,
          "Sync: %s", result.message);
    return (Godwit__V1__SyncResponse *)response;
}

/* Info.dirty_chunks of the default session, acknowledging ACK. */
static uint64_t info_dirty(uint64_t ack)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    request.ack_generation = ack;
    ProtobufCMessage *response;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Info", &request.base, &godwit__v1__info_response__descriptor,
                      &response, &result) == GRPC_STATUS_OK,
          "Info: %s", result.message);
    uint64_t dirty = ((Godwit__V1__InfoResponse *)response)->dirty_chunks;
    protobuf_c_message_free_unpacked(response, NULL);
    return dirty;
}

/* The offsets must be exactly these chunk indices (ascending). */
static void expect_chunks(const uint64_t *offsets, size_t n, const uint64_t *chunks, size_t m,
                          const char *what)
{
    CHECK(n == m, "%s: %zu dirty chunks, expected %zu", what, n, m);
    for (size_t i = 0; i < n; i++)
        CHECK(offsets[i] == chunks[i] * CHUNK, "%s: dirty[%zu] = %llu, expected chunk %llu", what,
              i, (unsigned long long)offsets[i], (unsigned long long)chunks[i]);
}

/* The page masks (1 KiB pages of the 64 KiB chunks) must be exactly these,
 * one per dirty chunk. */
static void expect_pages(const Godwit__V1__SyncResponse *sync, const uint64_t *pages,
                         const char *what)
{
    CHECK(sync->n_dirty_pages == sync->n_dirty_offsets, "%s: %zu masks for %zu chunks", what,
          sync->n_dirty_pages, sync->n_dirty_offsets);
    for (size_t i = 0; i < sync->n_dirty_pages; i++)
        CHECK(sync->dirty_pages[i] == pages[i], "%s: pages of chunk at %llu are %#llx, not %#llx",
              what, (unsigned long long)sync->dirty_offsets[i],
              (unsigned long long)sync->dirty_pages[i], (unsigned long long)pages[i]);
}

static void expect_status(const char *method, const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *type, grpc_status_code expected)
{
    ProtobufCMessage *response = NULL;
    struct rpc_result result;
    grpc_status_code got = seeder_call(&seeder, method, request, type, &response, &result);
    CHECK(got == expected, "%s: status %d (%s), expected %d", method, got, result.message,
          expected);
    CHECK(expected != GRPC_STATUS_OK || response, "%s: no reply", method);
    if (got != GRPC_STATUS_OK)
        CHECK(result.message[0] != '\0', "%s: status %d without a message", method, got);
    if (response)
        protobuf_c_message_free_unpacked(response, NULL);
}

static void check_read_at(uint64_t offset, uint32_t length)
{
    Godwit__V1__ReadAtRequest request = GODWIT__V1__READ_AT_REQUEST__INIT;
    request.offset = offset;
    request.length = length;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "ReadAt", &request.base, &godwit__v1__read_at_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "ReadAt: %s", result.message);
    Godwit__V1__ReadAtResponse *response = (void *)message;
    CHECK(response->data.len == length, "ReadAt returned %zu bytes", response->data.len);
    CHECK(memcmp(response->data.data, model + offset, length) == 0,
          "ReadAt %llu+%u differs from what was written", (unsigned long long)offset, length);
    CHECK(response->checksum_kind == 0 && response->checksum == 0,
          "a ReadAt that did not ask for a checksum carries one");
    protobuf_c_message_free_unpacked(message, NULL);
}

/* ReadAt with want_checksum (and ZERO_RANGES): the checksum is XXH3-64 of
 * the range's bytes as the model holds them. */
static void check_checksum(uint64_t offset, uint32_t length, bool zero_ranges)
{
    Godwit__V1__ReadAtRequest request = GODWIT__V1__READ_AT_REQUEST__INIT;
    request.offset = offset;
    request.length = length;
    request.want_checksum = true;
    request.allow_zero_ranges = zero_ranges;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "ReadAt", &request.base, &godwit__v1__read_at_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "ReadAt: %s", result.message);
    Godwit__V1__ReadAtResponse *response = (void *)message;
    CHECK(response->checksum_kind == GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64,
          "ReadAt %llu+%u: checksum kind %d", (unsigned long long)offset, length,
          response->checksum_kind);
    CHECK(response->checksum == XXH3_64bits(model + offset, length),
          "ReadAt %llu+%u (zero ranges %d): the checksum is not XXH3-64 of the bytes",
          (unsigned long long)offset, length, zero_ranges);
    CHECK(!zero_ranges || response->n_zero_ranges > 0 || response->data.len == length,
          "zero ranges and data do not add up");
    protobuf_c_message_free_unpacked(message, NULL);
}

/* Digest of [OFFSET, OFFSET+LENGTH): one XXH3-64 per chunk of the model. */
static void check_digest(uint64_t offset, uint64_t length)
{
    Godwit__V1__DigestRequest request = GODWIT__V1__DIGEST_REQUEST__INIT;
    request.offset = offset;
    request.length = length;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Digest", &request.base, &godwit__v1__digest_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "Digest: %s", result.message);
    Godwit__V1__DigestResponse *response = (void *)message;
    size_t n = (size_t)((length + CHUNK - 1) / CHUNK);
    CHECK(response->n_chunk_digests == n &&
              response->kind == GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64,
          "Digest %llu+%llu: %zu digests", (unsigned long long)offset, (unsigned long long)length,
          response->n_chunk_digests);
    for (size_t i = 0; i < n; i++)
        CHECK(response->chunk_digests[i] == XXH3_64bits(model + offset + i * CHUNK, CHUNK),
              "Digest: chunk %zu is not XXH3-64 of its bytes", i);
    protobuf_c_message_free_unpacked(message, NULL);
}

static void test_digest(void)
{
    check_digest(0, SIZE);
    check_digest(5 * CHUNK, 3 * CHUNK);
    const ProtobufCMessageDescriptor *type = &godwit__v1__digest_response__descriptor;
    Godwit__V1__DigestRequest bad = GODWIT__V1__DIGEST_REQUEST__INIT;
    expect_status("Digest", &bad.base, type, GRPC_STATUS_INVALID_ARGUMENT); /* length 0 */
    bad.offset = 100, bad.length = CHUNK;
    expect_status("Digest", &bad.base, type, GRPC_STATUS_INVALID_ARGUMENT); /* not at a chunk */
    bad.offset = 0, bad.length = CHUNK + 1;
    expect_status("Digest", &bad.base, type, GRPC_STATUS_INVALID_ARGUMENT); /* ends inside one */
    bad.offset = SIZE - CHUNK, bad.length = 2 * CHUNK;
    expect_status("Digest", &bad.base, type, GRPC_STATUS_OUT_OF_RANGE);
    bad.offset = 0, bad.length = (uint64_t)1 << 30;
    expect_status("Digest", &bad.base, type, GRPC_STATUS_INVALID_ARGUMENT); /* over 256 MiB */
    bad.length = CHUNK, bad.image_id = "not-this-one";
    expect_status("Digest", &bad.base, type, GRPC_STATUS_FAILED_PRECONDITION);
}

/* Holes of the whole image: ascending, inside it, reading as zeroes in the
 * model, and covering the chunk the test trimmed if the file has a hole
 * there (SEEK_HOLE); bad ranges get their status. */
static void test_holes(void)
{
    Godwit__V1__HolesRequest request = GODWIT__V1__HOLES_REQUEST__INIT;
    request.length = SIZE;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Holes", &request.base, &godwit__v1__holes_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "Holes: %s", result.message);
    Godwit__V1__HolesResponse *holes = (void *)message;
    CHECK(holes->end == SIZE, "Holes looked up to %llu, not the whole image",
          (unsigned long long)holes->end);
    int fd = open(seeder.image, O_RDONLY);
    CHECK(fd >= 0, "open %s", seeder.image);
    bool trimmed_hole = lseek(fd, 9 * CHUNK, SEEK_HOLE) == 9 * CHUNK, covered = false;
    close(fd);
    uint64_t at = 0;
    for (size_t i = 0; i < holes->n_holes; i++) {
        const Godwit__V1__ZeroRange *h = holes->holes[i];
        CHECK(h->offset >= at && h->length > 0 && h->offset + h->length <= SIZE,
              "hole %zu (%llu+%llu) out of order or outside the image", i,
              (unsigned long long)h->offset, (unsigned long long)h->length);
        for (uint64_t b = h->offset; b < h->offset + h->length; b++)
            CHECK(model[b] == 0, "byte %llu of a hole is not zero", (unsigned long long)b);
        covered |= h->offset <= 9 * CHUNK && h->offset + h->length >= 10 * CHUNK;
        at = h->offset + h->length;
    }
    CHECK(!trimmed_hole || covered, "the trimmed chunk is a hole in the file but not listed");
    printf("Holes: %zu holes, the trimmed chunk %s\n", holes->n_holes,
           trimmed_hole ? "among them" : "not punched by this file system");
    protobuf_c_message_free_unpacked(message, NULL);
    const ProtobufCMessageDescriptor *type = &godwit__v1__holes_response__descriptor;
    Godwit__V1__HolesRequest bad = GODWIT__V1__HOLES_REQUEST__INIT;
    expect_status("Holes", &bad.base, type, GRPC_STATUS_INVALID_ARGUMENT); /* length 0 */
    bad.offset = SIZE - CHUNK, bad.length = 2 * CHUNK;
    expect_status("Holes", &bad.base, type, GRPC_STATUS_OUT_OF_RANGE);
    bad.offset = 1, bad.length = UINT64_MAX; /* wraps around */
    expect_status("Holes", &bad.base, type, GRPC_STATUS_OUT_OF_RANGE);
    bad.offset = 0, bad.length = CHUNK, bad.image_id = "not-this-one";
    expect_status("Holes", &bad.base, type, GRPC_STATUS_FAILED_PRECONDITION);
}

static void test_checksums(struct nbd_handle *nbd)
{
    Godwit__V1__InfoRequest info_request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Info", &info_request.base, &godwit__v1__info_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "Info: %s", result.message);
    CHECK(((Godwit__V1__InfoResponse *)message)->checksum ==
              GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64,
          "Info does not offer the XXH3-64 checksum");
    protobuf_c_message_free_unpacked(message, NULL);
    zero_at(nbd, 5 * CHUNK, 2 * CHUNK, false); /* all-zero data: a zero range */
    zero_at(nbd, 9 * CHUNK, CHUNK, true);      /* a hole, if the file system punches */
    check_checksum(0, 16 * CHUNK, false);
    check_checksum(0, 16 * CHUNK, true);
    check_checksum(5 * CHUNK + 100, 3 * CHUNK, true); /* cut pieces at both ends */
    check_checksum(9 * CHUNK, CHUNK, true);           /* nothing but zeroes */
    check_checksum(SIZE - 1, 1, false);
    check_read_at(0, 16 * CHUNK); /* not asked: no checksum */
}

static void test_info(void)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *message;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Info", &request.base, &godwit__v1__info_response__descriptor,
                      &message, &result) == GRPC_STATUS_OK,
          "Info: %s", result.message);
    Godwit__V1__InfoResponse *info = (void *)message;
    CHECK(info->size == SIZE && info->chunk_size == CHUNK, "Info size/chunk");
    CHECK(strlen(info->image_id) == 32, "image id '%s'", info->image_id);
    CHECK(info->max_read_length == 16u << 20, "max_read_length %u", info->max_read_length);
    CHECK(info->state == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_SERVING, "state %d", info->state);
    protobuf_c_message_free_unpacked(message, NULL);
}

static void test_track_and_sync(struct nbd_handle *nbd)
{
    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    expect_status("Sync", &sync.base, &godwit__v1__sync_response__descriptor,
                  GRPC_STATUS_FAILED_PRECONDITION);
    write_at(nbd, 0, CHUNK, 1); /* before Track: not reported */

    Godwit__V1__TrackRequest track = GODWIT__V1__TRACK_REQUEST__INIT;
    expect_status("Track", &track.base, &godwit__v1__track_response__descriptor, GRPC_STATUS_OK);
    expect_status("Track", &track.base, &godwit__v1__track_response__descriptor, GRPC_STATUS_OK);

    write_at(nbd, 2 * CHUNK, CHUNK, 2);    /* aligned, one chunk */
    write_at(nbd, 5 * CHUNK + 10, 100, 3); /* unaligned inside chunk 5 */
    write_at(nbd, 8 * CHUNK - 50, 100, 4); /* spans chunks 7 and 8 */
    for (int i = 0; i < 3; i++)
        write_at(nbd, 10 * CHUNK + 4096 * i, 512, 5 + i); /* chunk 10, three times */
    zero_at(nbd, 12 * CHUNK + 1000, 3000, false);
    zero_at(nbd, 14 * CHUNK, CHUNK, true);

    static const uint64_t expected[] = {2, 5, 7, 8, 10, 12, 14};
    Godwit__V1__SyncResponse *first = sync_ack(0);
    expect_chunks(first->dirty_offsets, first->n_dirty_offsets, expected, 7, "first Sync");
    /* A whole chunk: every page; 100 bytes at 10: page 0; across 7|8: the
     * last page of 7 and the first of 8; 512 bytes at 0, 4 and 8 KiB:
     * pages 0, 4, 8; zeroes at 1000..4000: pages 0..3; a trimmed chunk. */
    static const uint64_t pages[] = {UINT64_MAX, 1, 1ull << 63, 1, 0x111, 0xf, UINT64_MAX};
    expect_pages(first, pages, "first Sync");
    CHECK(first->generation > 0, "generation");
    for (size_t i = 0; i < first->n_dirty_offsets; i++)
        check_read_at(first->dirty_offsets[i], CHUNK);
    check_read_at(8 * CHUNK - 50, 100);

    /* Not acknowledged: the same set comes back, plus the new chunk 20. */
    write_at(nbd, 20 * CHUNK + 7, 9, 9);
    Godwit__V1__SyncResponse *again = sync_ack(0);
    static const uint64_t expected2[] = {2, 5, 7, 8, 10, 12, 14, 20};
    expect_chunks(again->dirty_offsets, again->n_dirty_offsets, expected2, 8, "unacked Sync");
    static const uint64_t pages2[] = {UINT64_MAX, 1, 1ull << 63, 1, 0x111, 0xf, UINT64_MAX, 1};
    expect_pages(again, pages2, "unacked Sync");
    /* Info's estimate of a Finalize: with the set acknowledged, only what
     * was written since (chunk 21); without, both. */
    write_at(nbd, 21 * CHUNK, 10, 10);
    CHECK(info_dirty(again->generation) == 1, "Info acknowledging the last Sync counts %llu, not 1",
          (unsigned long long)info_dirty(again->generation));
    CHECK(info_dirty(0) == 9, "Info without acknowledgement counts %llu, not 9",
          (unsigned long long)info_dirty(0));
    /* Acknowledged: only chunk 21 is left. */
    Godwit__V1__SyncResponse *acked = sync_ack(again->generation);
    static const uint64_t expected3[] = {21};
    expect_chunks(acked->dirty_offsets, acked->n_dirty_offsets, expected3, 1, "acked Sync");
    expect_pages(acked, (const uint64_t[]){1}, "acked Sync");
    Godwit__V1__SyncResponse *empty = sync_ack(acked->generation);
    expect_chunks(empty->dirty_offsets, empty->n_dirty_offsets, NULL, 0, "acked Sync");
    protobuf_c_message_free_unpacked(&empty->base, NULL);
    protobuf_c_message_free_unpacked(&first->base, NULL);
    protobuf_c_message_free_unpacked(&again->base, NULL);
    protobuf_c_message_free_unpacked(&acked->base, NULL);
}

static Godwit__V1__FinalizeResponse *finalize(void)
{
    Godwit__V1__FinalizeRequest request = GODWIT__V1__FINALIZE_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    CHECK(seeder_call(&seeder, "Finalize", &request.base,
                      &godwit__v1__finalize_response__descriptor, &response,
                      &result) == GRPC_STATUS_OK,
          "Finalize: %s", result.message);
    return (Godwit__V1__FinalizeResponse *)response;
}

static void test_finalize(struct nbd_handle *nbd)
{
    write_at(nbd, 30 * CHUNK, 10, 10);
    write_at(nbd, (CHUNKS - 1) * CHUNK + CHUNK - 1, 1, 11); /* the last byte */
    static const uint64_t expected[] = {30, CHUNKS - 1};
    Godwit__V1__FinalizeResponse *first = finalize();
    expect_chunks(first->dirty_offsets, first->n_dirty_offsets, expected, 2, "Finalize");
    CHECK(!first->already_finalized, "first Finalize is not a retry");
    /* The flush of the written image before the freeze is timed (it is
     * never free: fdatasync of dirty pages); a retry's is not, because the
     * image was frozen before it began. */
    CHECK(first->before_freeze_us > 0, "first Finalize timed no flush before its freeze");
    Godwit__V1__FinalizeResponse *retry = finalize();
    expect_chunks(retry->dirty_offsets, retry->n_dirty_offsets, expected, 2, "Finalize retry");
    CHECK(retry->already_finalized, "second Finalize is a retry");
    CHECK(retry->before_freeze_us == 0, "a retry reports %" PRIu64 " us before the freeze",
          (uint64_t)retry->before_freeze_us);
    protobuf_c_message_free_unpacked(&first->base, NULL);
    protobuf_c_message_free_unpacked(&retry->base, NULL);

    char buf[16] = "after freeze";
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, 40 * CHUNK, 0) == -1, "write after Finalize worked");
    CHECK(nbd_get_errno() == EPERM, "write after Finalize: errno %d, expected EPERM",
          nbd_get_errno());
    CHECK(nbd_zero(nbd, 100, 41 * CHUNK, 0) == -1, "zero after Finalize worked");
    char back[16];
    CHECK(nbd_pread(nbd, back, sizeof back, 40 * CHUNK, 0) == 0, "read after Finalize: %s",
          nbd_get_error());
    CHECK(memcmp(back, model + 40 * CHUNK, sizeof back) == 0, "the refused write landed");
    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    expect_status("Sync", &sync.base, &godwit__v1__sync_response__descriptor,
                  GRPC_STATUS_FAILED_PRECONDITION);
}

static void test_bad_input(void)
{
    Godwit__V1__ReadAtRequest read = GODWIT__V1__READ_AT_REQUEST__INIT;
    const ProtobufCMessageDescriptor *type = &godwit__v1__read_at_response__descriptor;
    read.length = 0;
    expect_status("ReadAt", &read.base, type, GRPC_STATUS_INVALID_ARGUMENT);
    read.length = (16u << 20) + 1;
    expect_status("ReadAt", &read.base, type, GRPC_STATUS_INVALID_ARGUMENT);
    read.offset = SIZE - 10, read.length = 11;
    expect_status("ReadAt", &read.base, type, GRPC_STATUS_OUT_OF_RANGE);
    read.offset = UINT64_MAX - 5, read.length = 10;
    expect_status("ReadAt", &read.base, type, GRPC_STATUS_OUT_OF_RANGE);
    expect_status("Rewind", &read.base, type, GRPC_STATUS_UNIMPLEMENTED);
    read.offset = 0, read.length = 10, read.image_id = "0123456789abcdef0123456789abcdef";
    expect_status("ReadAt", &read.base, type, GRPC_STATUS_FAILED_PRECONDITION);
    Godwit__V1__CompleteRequest complete = GODWIT__V1__COMPLETE_REQUEST__INIT;
    expect_status("Complete", &complete.base, &godwit__v1__complete_response__descriptor,
                  GRPC_STATUS_FAILED_PRECONDITION);
    test_info(); /* still serving */
}

int main(void)
{
    const char *const fail[] = {"--freeze", "fail", NULL}; /* today's EPERM at the freeze */
    seeder_start(&seeder, "seeder-api", SIZE, CHUNK, fail);
    model = malloc(SIZE);
    FILE *initial = fopen(seeder.image, "rb");
    CHECK(initial && fread(model, 1, SIZE, initial) == SIZE, "read the initial image");
    fclose(initial);
    struct nbd_handle *nbd = seeder_nbd(&seeder);
    test_info();
    test_checksums(nbd);
    test_digest();
    test_holes();
    test_bad_input();
    test_track_and_sync(nbd);
    test_finalize(nbd);
    check_read_at(0, SIZE); /* the whole image in one call */

    Godwit__V1__CompleteRequest complete = GODWIT__V1__COMPLETE_REQUEST__INIT;
    expect_status("Complete", &complete.base, &godwit__v1__complete_response__descriptor,
                  GRPC_STATUS_OK);
    nbd_close(nbd);
    int status = seeder_stop(&seeder);
    CHECK(status == 0, "seeder exited %d after SIGTERM", status);
    /* The image on disk is what the app wrote. */
    FILE *f = fopen(seeder.image, "rb");
    unsigned char *disk = malloc(SIZE);
    CHECK(f && fread(disk, 1, SIZE, f) == SIZE, "read back the image");
    fclose(f);
    CHECK(memcmp(disk, model, SIZE) == 0, "image on disk differs from the writes");
    free(disk);
    free(model);
    seeder_cleanup(&seeder);
    printf("test-seeder-api: ok\n");
    return 0;
}
