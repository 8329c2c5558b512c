/* SPDX-License-Identifier: MIT */
/* Sessions and the state file, on a real godwit-seeder: each Track
 * {new_session} gets its own dirty sets and generations (one session's
 * acknowledgement hides nothing from another), --max-sessions is enforced
 * with RESOURCE_EXHAUSTED, Info reports per session. A SIGKILL after
 * Finalize and a restart keep the freeze, the image id, every session's
 * sets and generations; no source write is accepted. After Complete a
 * restarted seeder still refuses writes; a corrupt state file stops it at
 * start; without the file it starts over with a new identity. */
#include "seeder-harness.h"
#include "testlib.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, CHUNKS = 64, SIZE = CHUNK * CHUNKS };

static struct seeder_proc seeder;

static void *call(const char *method, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *type, grpc_status_code expected,
                  struct rpc_result *result)
{
    ProtobufCMessage *response = NULL;
    grpc_status_code got = GRPC_STATUS_UNAVAILABLE;
    for (int i = 0; i < 50 && got == GRPC_STATUS_UNAVAILABLE && expected != got; i++)
        if ((got = seeder_call(&seeder, method, request, type, &response, result)) ==
            GRPC_STATUS_UNAVAILABLE)
            usleep(100000); /* the channel reconnects after a restart */
    CHECK(got == expected, "%s: status %d (%s), expected %d", method, got, result->message,
          expected);
    return response;
}

/* Track: a new session (NEW), or SESSION; returns the id. */
static uint64_t track(bool new_session, uint64_t session, grpc_status_code expected)
{
    Godwit__V1__TrackRequest request = GODWIT__V1__TRACK_REQUEST__INIT;
    request.new_session = new_session;
    request.session_id = session;
    struct rpc_result result;
    Godwit__V1__TrackResponse *r =
        call("Track", &request.base, &godwit__v1__track_response__descriptor, expected, &result);
    if (!r) {
        CHECK(expected != GRPC_STATUS_RESOURCE_EXHAUSTED ||
                  strstr(result.message, "--max-sessions"),
              "the refusal does not name the limit: %s", result.message);
        return 0;
    }
    uint64_t id = r->session_id;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return id;
}

/* The chunk indices of OFFSETS must be EXPECTED (ascending, -1 ends). */
static void expect_chunks(const uint64_t *offsets, size_t n, const int *expected, const char *what)
{
    size_t m = 0;
    while (expected[m] >= 0)
        m++;
    CHECK(n == m, "%s: %zu dirty chunks, expected %zu", what, n, m);
    for (size_t i = 0; i < n; i++)
        CHECK(offsets[i] == (uint64_t)expected[i] * CHUNK, "%s: dirty[%zu] = chunk %llu", what, i,
              (unsigned long long)(offsets[i] / CHUNK));
}

/* Sync of SESSION acknowledging ACK; returns the new generation. */
static uint64_t sync_session(uint64_t session, uint64_t ack, const int *expected, const char *what)
{
    Godwit__V1__SyncRequest request = GODWIT__V1__SYNC_REQUEST__INIT;
    request.session_id = session;
    request.ack_generation = ack;
    struct rpc_result result;
    Godwit__V1__SyncResponse *r = call(
        "Sync", &request.base, &godwit__v1__sync_response__descriptor, GRPC_STATUS_OK, &result);
    expect_chunks(r->dirty_offsets, r->n_dirty_offsets, expected, what);
    uint64_t generation = r->generation;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return generation;
}

static void finalize(uint64_t session, uint64_t ack, const int *expected, bool retry,
                     const char *what)
{
    Godwit__V1__FinalizeRequest request = GODWIT__V1__FINALIZE_REQUEST__INIT;
    request.session_id = session;
    request.ack_generation = ack;
    struct rpc_result result;
    Godwit__V1__FinalizeResponse *r =
        call("Finalize", &request.base, &godwit__v1__finalize_response__descriptor, GRPC_STATUS_OK,
             &result);
    expect_chunks(r->dirty_offsets, r->n_dirty_offsets, expected, what);
    CHECK(r->already_finalized == retry, "%s: already_finalized %d", what, r->already_finalized);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Info for SESSION: returns the state, *DIRTY and the image id. */
static Godwit__V1__SeederState info(uint64_t session, uint64_t *dirty, char id[33])
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    request.session_id = session;
    struct rpc_result result;
    Godwit__V1__InfoResponse *r = call(
        "Info", &request.base, &godwit__v1__info_response__descriptor, GRPC_STATUS_OK, &result);
    Godwit__V1__SeederState state = r->state;
    if (dirty)
        *dirty = r->dirty_chunks;
    if (id)
        snprintf(id, 33, "%s", r->image_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return state;
}

static void write_chunk(struct nbd_handle *nbd, uint64_t chunk)
{
    char buf[100];
    test_fill_random(buf, sizeof buf, chunk);
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, chunk * CHUNK + 7, 0) == 0, "write chunk %llu: %s",
          (unsigned long long)chunk, nbd_get_error());
}

/* A source write must not be accepted: held (unanswered for a while). */
static int64_t expect_held(struct nbd_handle *nbd, char *byte)
{
    int64_t cookie = nbd_aio_pwrite(nbd, byte, 1, 40 * CHUNK, NBD_NULL_COMPLETION, 0);
    CHECK(cookie > 0, "aio write: %s", nbd_get_error());
    usleep(200000);
    CHECK(nbd_poll(nbd, 0) >= 0 && nbd_aio_command_completed(nbd, cookie) == 0,
          "a source write was answered while frozen");
    return cookie;
}

/* The seeder on a corrupt state file exits 1 naming the file. */
static void corrupt_state(const char *state)
{
    FILE *f = fopen(state, "w");
    CHECK(f && fputs("{\"version\": 1, \"image_id\": tru", f) >= 0, "write %s", state);
    fclose(f);
    char *program = test_program("seeder/godwit-seeder");
    char *argv[] = {program,           "--image",  seeder.image,  "--chunk-size",
                    seeder.chunk_size, "--listen", "127.0.0.1:0", NULL};
    char log[700];
    snprintf(log, sizeof log, "%s/corrupt.log", seeder.dir);
    pid_t pid = test_spawn(argv, log);
    free(program);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 1,
          "a seeder on a corrupt state file must exit 1");
    char text[4096] = "";
    f = fopen(log, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(text, "godwit-seeder") && strstr(text, "JSON"), "no sentence: %s", text);
}

int main(void)
{
    const char *const extra[] = {"--max-sessions", "2", NULL};
    seeder_start(&seeder, "test-seeder-sessions", SIZE, CHUNK, extra);
    struct nbd_handle *app = seeder_nbd(&seeder);
    uint64_t a = track(true, 0, GRPC_STATUS_OK), b = track(true, 0, GRPC_STATUS_OK);
    CHECK(a && b && a != b, "sessions %llu and %llu", (unsigned long long)a, (unsigned long long)b);
    track(true, 0, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK(track(false, a, GRPC_STATUS_OK) == a, "resuming a session");
    track(false, 77, GRPC_STATUS_FAILED_PRECONDITION);

    write_chunk(app, 3);
    static const int c3[] = {3, -1}, c5[] = {5, -1}, c35[] = {3, 5, -1}, none[] = {-1};
    uint64_t ga = sync_session(a, 0, c3, "A's first Sync");
    sync_session(a, ga, none, "A's acknowledged Sync"); /* hides nothing from B */
    write_chunk(app, 5);
    uint64_t dirty_a, dirty_b;
    info(a, &dirty_a, NULL);
    info(b, &dirty_b, NULL);
    CHECK(dirty_a == 1 && dirty_b == 2, "Info: A %llu dirty, B %llu", (unsigned long long)dirty_a,
          (unsigned long long)dirty_b);
    sync_session(b, 0, c35, "B's first Sync");

    finalize(a, 0, c5, false, "A's Finalize");
    uint64_t gb = sync_session(b, 0, c35, "B's Sync while A holds the freeze");
    char before[33], after[33];
    CHECK(info(0, NULL, before) == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN, "frozen");

    test_kill(seeder.pid);
    nbd_close(app);
    seeder_restart(&seeder);
    uint64_t sessions_dirty;
    CHECK(info(b, &sessions_dirty, after) == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN,
          "the restarted seeder must still be frozen");
    CHECK(strcmp(before, after) == 0, "image id %s after the restart, %s before", after, before);
    app = seeder_nbd(&seeder);
    char byte = 1;
    int64_t held = expect_held(app, &byte);
    finalize(a, 0, c5, true, "A's Finalize retried after the restart");
    sync_session(b, gb, none, "B acknowledges the Sync from before the restart");
    finalize(b, 0, none, false, "B's Finalize");
    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    sync.session_id = a;
    struct rpc_result result;
    call("Sync", &sync.base, &godwit__v1__sync_response__descriptor,
         GRPC_STATUS_FAILED_PRECONDITION, &result);

    Godwit__V1__CompleteRequest complete = GODWIT__V1__COMPLETE_REQUEST__INIT;
    complete.session_id = a;
    protobuf_c_message_free_unpacked(call("Complete", &complete.base,
                                          &godwit__v1__complete_response__descriptor,
                                          GRPC_STATUS_OK, &result),
                                     NULL);
    int done;
    while ((done = nbd_aio_command_completed(app, held)) == 0)
        CHECK(nbd_poll(app, 5000) >= 0, "poll: %s", nbd_get_error());
    CHECK(done == -1 && nbd_get_errno() == EPERM, "held write after Complete: errno %d",
          nbd_get_errno());
    nbd_close(app);

    CHECK(seeder_stop(&seeder) == 0, "clean stop (see %s)", seeder.log);
    seeder_restart(&seeder);
    CHECK(info(0, NULL, after) == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_COMPLETE,
          "a seeder restarted after Complete is complete");
    app = seeder_nbd(&seeder);
    CHECK(nbd_pwrite(app, &byte, 1, 0, 0) == -1 && nbd_get_errno() == EPERM,
          "after Complete a restarted seeder must refuse writes");
    nbd_close(app);
    CHECK(seeder_stop(&seeder) == 0, "clean stop");

    char state[600];
    snprintf(state, sizeof state, "%s.godwit-seeder", seeder.image);
    corrupt_state(state);
    CHECK(unlink(state) == 0, "remove %s", state);
    seeder_restart(&seeder);
    CHECK(info(0, NULL, after) == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_SERVING &&
              strcmp(after, before) != 0,
          "without its state file the seeder starts over with a new image id");
    app = seeder_nbd(&seeder);
    CHECK(nbd_pwrite(app, &byte, 1, 0, 0) == 0, "write: %s", nbd_get_error());
    nbd_close(app);
    seeder_cleanup(&seeder);
    printf("test-seeder-sessions: ok\n");
    return 0;
}
