/* SPDX-License-Identifier: MIT */
/* The freeze is a pause (--freeze hold, the default): a real godwit-seeder,
 * a source app writing through its NBD export with libnbd. After Finalize
 * the writes (WRITE, WRITE_ZEROES, TRIM) are held, unanswered, while reads
 * keep working; beyond --freeze-max-held they fail with EPERM; a
 * connection whose 16 workers all hold writes reads nothing more while
 * other connections do. `godwit-ctl --seeder ADDR abort` then applies the
 * held writes in arrival order (each answered OK), draws a new image id and
 * ends the session; a new Track tracks again; after Complete held writes
 * fail with EPERM and Abort is refused. */
#include "seeder-harness.h"
#include "testlib.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, CHUNKS = 64, SIZE = CHUNK * CHUNKS, MAX_HELD = 24 };

static struct seeder_proc seeder;
static unsigned char model[SIZE]; /* what the image must hold */

static void *call(const char *method, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *type, grpc_status_code expected)
{
    ProtobufCMessage *response = NULL;
    struct rpc_result result;
    grpc_status_code got = seeder_call(&seeder, method, request, type, &response, &result);
    CHECK(got == expected, "%s: status %d (%s), expected %d", method, got, result.message,
          expected);
    return response;
}

static Godwit__V1__InfoResponse *info(void)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    return call("Info", &request.base, &godwit__v1__info_response__descriptor, GRPC_STATUS_OK);
}

static void track(void)
{
    Godwit__V1__TrackRequest request = GODWIT__V1__TRACK_REQUEST__INIT;
    protobuf_c_message_free_unpacked(
        call("Track", &request.base, &godwit__v1__track_response__descriptor, GRPC_STATUS_OK),
        NULL);
}

static void finalize(void)
{
    Godwit__V1__FinalizeRequest request = GODWIT__V1__FINALIZE_REQUEST__INIT;
    protobuf_c_message_free_unpacked(
        call("Finalize", &request.base, &godwit__v1__finalize_response__descriptor, GRPC_STATUS_OK),
        NULL);
}

/* Runs godwit-ctl --seeder with COMMAND; returns its exit status, output in OUT. */
static int ctl(const char *command, char *out, size_t room)
{
    char *program = test_program("ctl/godwit-ctl");
    char line[1024];
    snprintf(line, sizeof line, "%s --seeder %s %s 2>&1", program, seeder.target, command);
    free(program);
    FILE *p = popen(line, "r");
    CHECK(p, "popen godwit-ctl");
    size_t n = fread(out, 1, room - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Starts a write of LEN bytes of SEED at OFFSET; the model is updated by
 * the caller once it is known to land. */
static int64_t aio_write(struct nbd_handle *nbd, unsigned char *buf, size_t len, uint64_t offset,
                         uint64_t seed)
{
    test_fill_random(buf, len, seed);
    int64_t cookie = nbd_aio_pwrite(nbd, buf, len, offset, NBD_NULL_COMPLETION, 0);
    CHECK(cookie > 0, "aio_pwrite: %s", nbd_get_error());
    return cookie;
}

/* Polls NBD until COOKIE completes or TIMEOUT_MS passes: 1 OK, -1 error
 * (errno in nbd_get_errno), 0 still pending. */
static int wait_command(struct nbd_handle *nbd, int64_t cookie, int timeout_ms)
{
    uint64_t deadline = test_now_us() + (uint64_t)timeout_ms * 1000;
    int done;
    while ((done = nbd_aio_command_completed(nbd, cookie)) == 0 && test_now_us() < deadline)
        CHECK(nbd_poll(nbd, 20) >= 0, "poll: %s", nbd_get_error());
    return done;
}

/* Waits until the seeder holds N writes (so the next one queues behind them). */
static void wait_held(uint64_t n)
{
    for (int i = 0; i < 500; i++) {
        Godwit__V1__InfoResponse *r = info();
        uint64_t held = r->held_writes;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (held == n)
            return;
        usleep(10000);
    }
    CHECK(false, "the seeder never held %llu writes", (unsigned long long)n);
}

static void expect_image(const char *what)
{
    FILE *f = fopen(seeder.image, "rb");
    static unsigned char disk[SIZE];
    CHECK(f && fread(disk, 1, SIZE, f) == SIZE, "read the image");
    fclose(f);
    for (size_t i = 0; i < SIZE; i++)
        CHECK(disk[i] == model[i], "%s: the image differs at byte %zu (chunk %zu)", what, i,
              i / CHUNK);
}

/* Held writes, in order: three to one range (the last must win), a zero
 * and a trim, each sent once the one before is held (requests in flight
 * together have no order in NBD). Reads on the same connection keep
 * working meanwhile. */
static void hold_and_abort(void)
{
    track();
    finalize();
    struct nbd_handle *app = seeder_nbd(&seeder);
    static unsigned char bufs[3][8192];
    int64_t cookies[5];
    for (int i = 0; i < 3; i++) {
        cookies[i] = aio_write(app, bufs[i], sizeof bufs[i], 3 * CHUNK + 100, 10 + (uint64_t)i);
        CHECK(nbd_poll(app, 0) >= 0, "poll: %s", nbd_get_error());
        wait_held((uint64_t)i + 1);
    }
    cookies[3] = nbd_aio_zero(app, 5000, 7 * CHUNK + 3, NBD_NULL_COMPLETION, 0);
    cookies[4] = nbd_aio_trim(app, CHUNK, 9 * CHUNK, NBD_NULL_COMPLETION, 0);
    CHECK(cookies[3] > 0 && cookies[4] > 0, "aio zero/trim: %s", nbd_get_error());
    for (int i = 0; i < 5; i++)
        CHECK(wait_command(app, cookies[i], i ? 10 : 300) == 0,
              "source write %d was answered during the freeze: it must be held", i);
    unsigned char back[512];
    CHECK(nbd_pread(app, back, sizeof back, 3 * CHUNK + 100, 0) == 0, "read while held: %s",
          nbd_get_error());
    CHECK(memcmp(back, model + 3 * CHUNK + 100, sizeof back) == 0, "a held write landed");
    Godwit__V1__InfoResponse *i = info();
    CHECK(i->state == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN, "state %d", i->state);
    CHECK(i->held_writes == 5 && i->held_bytes == 3 * 8192, "Info: %llu writes held, %llu bytes",
          (unsigned long long)i->held_writes, (unsigned long long)i->held_bytes);
    char old_id[33];
    snprintf(old_id, sizeof old_id, "%s", i->image_id);
    protobuf_c_message_free_unpacked(&i->base, NULL);

    char out[1024];
    CHECK(ctl("abort", out, sizeof out) == 0, "godwit-ctl abort: %s", out);
    CHECK(strstr(out, "\"released_writes\":5") && strstr(out, "\"previous_state\":\"FROZEN\""),
          "godwit-ctl abort said %s", out);
    for (int k = 0; k < 5; k++)
        CHECK(wait_command(app, cookies[k], 10000) == 1, "held write %d after Abort: %s", k,
              nbd_get_error());
    memcpy(model + 3 * CHUNK + 100, bufs[2], sizeof bufs[2]); /* in order: the last one wins */
    memset(model + 7 * CHUNK + 3, 0, 5000);
    memset(model + 9 * CHUNK, 0, CHUNK);
    CHECK(nbd_flush(app, 0) == 0, "flush: %s", nbd_get_error());
    expect_image("after Abort");

    i = info();
    CHECK(i->state == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_SERVING && i->sessions == 0,
          "after Abort: state %d, %u sessions", i->state, i->sessions);
    CHECK(strcmp(i->image_id, old_id) != 0, "Abort kept the image id");
    CHECK(i->held_writes == 0 && i->held_writes_total == 5, "after Abort: %llu held, %llu ever",
          (unsigned long long)i->held_writes, (unsigned long long)i->held_writes_total);
    protobuf_c_message_free_unpacked(&i->base, NULL);
    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    sync.image_id = old_id; /* a leecher of the cancelled migration */
    call("Sync", &sync.base, &godwit__v1__sync_response__descriptor,
         GRPC_STATUS_FAILED_PRECONDITION);
    unsigned char byte = 5;
    CHECK(nbd_pwrite(app, &byte, 1, 11 * CHUNK, 0) == 0, "write after Abort: %s", nbd_get_error());
    model[11 * CHUNK] = byte;
    nbd_close(app);
}

/* Beyond --freeze-max-held writes fail with EPERM at once; a connection
 * whose 16 workers all hold writes stalls, another one reads on. */
static void cap_and_saturation(void)
{
    track();
    finalize();
    struct nbd_handle *full = seeder_nbd(&seeder), *other = seeder_nbd(&seeder);
    static unsigned char bufs[MAX_HELD + 1][4096];
    int64_t cookies[MAX_HELD + 1];
    for (int i = 0; i < 16; i++)
        cookies[i] = aio_write(full, bufs[i], 4096, (20 + (uint64_t)i) * CHUNK, 100 + (uint64_t)i);
    CHECK(wait_command(full, cookies[15], 300) == 0, "held write answered");
    unsigned char back[4096];
    int64_t stalled = nbd_aio_pread(full, back, sizeof back, 0, NBD_NULL_COMPLETION, 0);
    CHECK(stalled > 0, "aio_pread: %s", nbd_get_error());
    CHECK(wait_command(full, stalled, 300) == 0,
          "a read behind 16 held writes on one connection was served: the documented "
          "behaviour changed");
    CHECK(nbd_pread(other, back, sizeof back, 0, 0) == 0, "a read on another connection: %s",
          nbd_get_error());
    CHECK(memcmp(back, model, sizeof back) == 0, "read on another connection differs");
    /* They reach the gate in any order: exactly one, the last there, fails. */
    for (int i = 16; i <= MAX_HELD; i++)
        cookies[i] = aio_write(other, bufs[i], 4096, (20 + (uint64_t)i) * CHUNK, 100 + (uint64_t)i);
    int refused = -1;
    for (int tries = 0; tries < 250 && refused < 0; tries++) {
        CHECK(nbd_poll(other, 20) >= 0, "poll: %s", nbd_get_error());
        for (int i = 16; i <= MAX_HELD && refused < 0; i++) {
            int done = nbd_aio_command_completed(other, cookies[i]);
            CHECK(done <= 0, "write %d past the freeze succeeded", i);
            if (done < 0) {
                CHECK(nbd_get_errno() == EPERM, "the write past the cap: errno %d",
                      nbd_get_errno());
                refused = i;
            }
        }
    }
    CHECK(refused >= 0, "no write past the cap was refused");
    cookies[refused] = cookies[MAX_HELD]; /* the held ones are cookies[0..MAX_HELD) */
    for (int i = 16; i < MAX_HELD; i++)
        CHECK(wait_command(other, cookies[i], 10) == 0, "write %d answered (errno %d)", i,
              nbd_get_errno());
    Godwit__V1__InfoResponse *i = info();
    CHECK(i->held_writes == MAX_HELD && i->refused_writes_total == 1,
          "at the cap: %llu held, %llu refused", (unsigned long long)i->held_writes,
          (unsigned long long)i->refused_writes_total);
    protobuf_c_message_free_unpacked(&i->base, NULL);

    /* Complete: every held write fails with EPERM, none lands; Abort is refused. */
    Godwit__V1__CompleteRequest complete = GODWIT__V1__COMPLETE_REQUEST__INIT;
    protobuf_c_message_free_unpacked(call("Complete", &complete.base,
                                          &godwit__v1__complete_response__descriptor,
                                          GRPC_STATUS_OK),
                                     NULL);
    for (int k = 0; k < MAX_HELD; k++) {
        struct nbd_handle *nbd = k < 16 ? full : other;
        CHECK(wait_command(nbd, cookies[k], 10000) == -1 && nbd_get_errno() == EPERM,
              "held write %d after Complete: errno %d, expected EPERM", k, nbd_get_errno());
    }
    CHECK(wait_command(full, stalled, 10000) == 1, "the stalled read after Complete: %s",
          nbd_get_error());
    char out[1024];
    CHECK(ctl("abort", out, sizeof out) == 1 && strstr(out, "complete"),
          "godwit-ctl abort after Complete: %s", out);
    Godwit__V1__AbortRequest abort_request = GODWIT__V1__ABORT_REQUEST__INIT;
    call("Abort", &abort_request.base, &godwit__v1__abort_response__descriptor,
         GRPC_STATUS_FAILED_PRECONDITION);
    nbd_close(full);
    nbd_close(other);
    expect_image("after Complete");
}

int main(void)
{
    char max_held[16];
    snprintf(max_held, sizeof max_held, "%d", MAX_HELD);
    const char *const extra[] = {"--freeze-max-held", max_held, NULL};
    seeder_start(&seeder, "test-freeze", SIZE, CHUNK, extra);
    FILE *initial = fopen(seeder.image, "rb");
    CHECK(initial && fread(model, 1, SIZE, initial) == SIZE, "read the initial image");
    fclose(initial);
    hold_and_abort();
    cap_and_saturation();
    CHECK(seeder_stop(&seeder) == 0, "seeder exit status (see %s)", seeder.log);
    seeder_cleanup(&seeder);
    printf("test-freeze: ok\n");
    return 0;
}
