/* SPDX-License-Identifier: MIT */
/* Fault-injection soak: N randomized migrations on loopback, each with a
 * random image size, chunk size, workers and channels, a source writer
 * (godwit-writer through the seeder's export) and destination writes after
 * Finalize, and one random fault: the seeder killed and restarted during
 * pre-copy, the link cut and restored (godwit-linkem), the leecher killed
 * and restarted (resume), Finalize failing and retried, a slow link, 64
 * NBD clients loading the seeder, the leecher killed in post-copy after
 * flushed destination writes (restarted, it must keep them), the seeder
 * SIGKILLed after Finalize and restarted (still frozen: no source write
 * accepted), or Finalize then Abort (the first leecher fails loudly, the
 * writer's held writes land) and a fresh migration. Every run ends either byte-exact
 * (destination == final source + destination writes) or failed loudly
 * with the source intact and its writes refused only after a Finalize.
 *
 *   test-soak [RUNS] [SEED] [FAULT]   (ctest runs a handful; FAULT forces one)
 */
#include "leecher-harness.h"
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

enum fault {
    SEEDER_RESTART,
    LINK_CUT,
    LEECHER_RESTART,
    FINALIZE_RETRY,
    SLOW_LINK,
    LOAD,
    POSTCOPY_LEECHER_KILL,
    SEEDER_KILL_FROZEN,
    ABORT_MIGRATE,
    FAULTS
};
static const char *fault_names[] = {
    "seeder-restart",        "link-cut",           "leecher-restart",
    "finalize-retry",        "slow-link",          "load-64-clients",
    "postcopy-leecher-kill", "seeder-kill-frozen", "abort-then-migrate"};

struct run {
    uint64_t rng;
    uint64_t size, chunk;
    char workers[8], channels[8];
    struct seeder_proc seeder;
    struct leecher_proc leecher;
    pid_t linkem, writer;
    char relay[64];
    uint64_t bytes_compared;
};

static uint64_t next(uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    return *rng >> 17;
}

static void start_link(struct run *r, const char *rate)
{
    r->linkem = linkem_start(r->seeder.target, rate, "0", r->seeder.dir, r->relay);
}

static void start_leecher(struct run *r)
{
    char saved[64];
    snprintf(saved, sizeof saved, "%s", r->seeder.target);
    snprintf(r->seeder.target, sizeof r->seeder.target, "%s", r->relay);
    const char *extra[] = {"--workers",      r->workers,        "--channels",
                           r->channels,      "--sync-interval", "150",
                           "--pull-timeout", "20000",           NULL};
    leecher_start(&r->leecher, &r->seeder, extra);
    snprintf(r->seeder.target, sizeof r->seeder.target, "%s", saved);
}

/* The source app at RATE MB/s: below what the link carries, or pre-copy
 * of a small image in large chunks would never catch up. */
static void start_writer(struct run *r, const char *rate)
{
    char *writer = test_program("bench/godwit-writer");
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(r->rng % 100000));
    char *argv[] = {writer, "--socket", r->seeder.socket, "--rate-mbps", (char *)rate, "--seed",
                    seed,   NULL};
    char log[700];
    snprintf(log, sizeof log, "%s/writer.log", r->seeder.dir);
    r->writer = test_spawn(argv, log);
    free(writer);
}

/* 64 clients reading and writing the seeder's export at once for a while. */
struct load {
    struct run *r;
    int index;
};

static void *load_client(void *arg)
{
    struct load *l = arg;
    struct nbd_handle *nbd = seeder_nbd(&l->r->seeder);
    uint64_t rng = (uint64_t)l->index * 977 + 1;
    char buf[4096];
    for (int i = 0; i < 100; i++) {
        uint64_t offset = next(&rng) % (l->r->size - sizeof buf);
        if (i % 2) {
            test_fill_random(buf, sizeof buf, rng);
            nbd_pwrite(nbd, buf, sizeof buf, offset, 0); /* EPERM after the freeze is fine */
        } else {
            CHECK(nbd_pread(nbd, buf, sizeof buf, offset, 0) == 0, "load read: %s",
                  nbd_get_error());
        }
    }
    nbd_close(nbd);
    return NULL;
}

static void apply_load(struct run *r)
{
    pthread_t threads[64];
    struct load args[64];
    for (int i = 0; i < 64; i++) {
        args[i] = (struct load){r, i};
        pthread_create(&threads[i], NULL, load_client, &args[i]);
    }
    for (int i = 0; i < 64; i++)
        pthread_join(threads[i], NULL);
}

/* Finalize, then Abort: the leecher of the cancelled migration must fail
 * loudly; a fresh leecher then migrates from scratch. */
static void abort_and_restart(struct run *r)
{
    uint64_t downtime;
    CHECK(leecher_finalize_call(&r->leecher, &downtime) == GRPC_STATUS_OK, "Finalize");
    usleep(20000); /* the writer's next write is held */
    Godwit__V1__AbortRequest request = GODWIT__V1__ABORT_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    grpc_status_code got = seeder_call(&r->seeder, "Abort", &request.base,
                                       &godwit__v1__abort_response__descriptor, &response, &result);
    if (got == GRPC_STATUS_FAILED_PRECONDITION) {
        /* The leecher was faster: it completed, and Abort is refused then. */
        Godwit__V1__StatusResponse *s = leecher_status(&r->leecher);
        CHECK(s && s->state == GODWIT__V1__STATE__COMPLETE, "Abort refused before COMPLETE: %s",
              result.message);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return;
    }
    CHECK(got == GRPC_STATUS_OK, "Abort: %s", result.message);
    protobuf_c_message_free_unpacked(response, NULL);
    int status = leecher_wait_exit(&r->leecher, 60000);
    CHECK(status > 0 && status < 128, "the aborted leecher must fail loudly, exit %d", status);
    char state[700];
    snprintf(state, sizeof state, "%s.godwit-state", r->leecher.image);
    unlink(state);
    unlink(r->leecher.image);
    start_leecher(r);
}

/* Waits until the leecher has pulled BYTES: pre-copy is under way. (Not
 * "chunks local": a writer that re-dirties a small image in large chunks
 * faster than a slow link brings them in keeps every chunk remote, and
 * that is the workload's business until Finalize pauses it.) */
static void wait_pulled(struct run *r, uint64_t bytes, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        Godwit__V1__StatusResponse *s = leecher_status(&r->leecher);
        bool done = s && s->bytes_pulled >= bytes;
        if (s)
            protobuf_c_message_free_unpacked(&s->base, NULL);
        if (done)
            return;
        CHECK(waited < timeout_ms, "the leecher pulled less than %llu bytes in %d ms",
              (unsigned long long)bytes, timeout_ms);
        usleep(50000);
    }
}

/* Applies the fault during pre-copy; false if the run is expected to fail. */
static bool inject(struct run *r, enum fault fault)
{
    wait_pulled(r, 4 * r->chunk, 30000);
    switch (fault) {
    case SEEDER_RESTART:
        test_kill(r->seeder.pid);
        seeder_restart(&r->seeder); /* new identity: the leecher must refuse it */
        return false;
    case LINK_CUT:
        kill(r->linkem, SIGUSR1);
        usleep(400000);
        kill(r->linkem, SIGUSR2);
        return true;
    case LEECHER_RESTART:
        test_kill(r->leecher.pid);
        r->leecher.pid = 0;
        leecher_stop(&r->leecher);
        start_leecher(r);
        return true;
    case LOAD:
        apply_load(r);
        return true;
    case ABORT_MIGRATE:
        abort_and_restart(r);
        return true;
    default:
        return true;
    }
}

/* Finalize; for FINALIZE_RETRY the first attempt runs on a cut link. */
static void finalize(struct run *r, enum fault fault)
{
    uint64_t downtime;
    if (fault == FINALIZE_RETRY) {
        kill(r->linkem, SIGUSR1);
        usleep(200000);
        CHECK(leecher_finalize_call(&r->leecher, &downtime) != GRPC_STATUS_OK,
              "Finalize over a cut link succeeded");
        kill(r->linkem, SIGUSR2);
    }
    grpc_status_code status = GRPC_STATUS_UNAVAILABLE;
    for (int i = 0; i < 20 && status != GRPC_STATUS_OK; i++) {
        status = leecher_finalize_call(&r->leecher, &downtime);
        if (status != GRPC_STATUS_OK)
            usleep(250000);
    }
    CHECK(status == GRPC_STATUS_OK, "Finalize never succeeded (see %s)", r->leecher.log);
}

/* Destination writes after Finalize; applied to EXPECTED too. */
static void destination_writes(struct run *r, unsigned char *expected)
{
    struct nbd_handle *nbd = leecher_nbd(&r->leecher);
    for (int i = 0; i < 8; i++) {
        uint64_t len = 1 + next(&r->rng) % 20000, offset = next(&r->rng) % (r->size - len);
        unsigned char *buf = malloc(len);
        test_fill_random(buf, len, r->rng);
        CHECK(nbd_pwrite(nbd, buf, len, offset, 0) == 0, "destination write: %s", nbd_get_error());
        memcpy(expected + offset, buf, len);
        free(buf);
    }
    CHECK(nbd_flush(nbd, 0) == 0, "destination flush: %s", nbd_get_error());
    nbd_close(nbd);
}

static void read_file(const char *path, unsigned char *buf, uint64_t size)
{
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(buf, 1, size, f) == size, "read %s", path);
    fclose(f);
}

/* SIGKILL after Finalize and a restart: still frozen, no write accepted. */
static void kill_frozen_seeder(struct run *r)
{
    test_kill(r->seeder.pid);
    seeder_restart(&r->seeder);
    struct nbd_handle *nbd = seeder_nbd(&r->seeder);
    char byte = 3;
    int64_t held = nbd_aio_pwrite(nbd, &byte, 1, 0, NBD_NULL_COMPLETION, 0);
    CHECK(held > 0, "aio write: %s", nbd_get_error());
    usleep(200000);
    CHECK(nbd_poll(nbd, 0) >= 0, "poll: %s", nbd_get_error());
    int done = nbd_aio_command_completed(nbd, held); /* held, or refused once complete */
    CHECK(done == 0 || (done == -1 && nbd_get_errno() == EPERM),
          "the seeder restarted after Finalize accepted a source write");
    nbd_close(nbd); /* a held write never lands: Complete fails it, or the stop */
}

static void finish_ok(struct run *r, enum fault fault)
{
    finalize(r, fault);
    test_kill(r->writer); /* its writes are held by the freeze now: it cannot stop by itself */
    if (fault == SEEDER_KILL_FROZEN)
        kill_frozen_seeder(r);
    unsigned char *expected = malloc(r->size), *dest = malloc(r->size);
    read_file(r->seeder.image, expected, r->size); /* frozen: the final source */
    destination_writes(r, expected);
    if (fault == POSTCOPY_LEECHER_KILL) { /* the flushed writes must survive */
        test_kill(r->leecher.pid);
        r->leecher.pid = 0;
        leecher_stop(&r->leecher);
        start_leecher(r);
    }
    Godwit__V1__StatusResponse *s =
        leecher_wait_state(&r->leecher, GODWIT__V1__STATE__COMPLETE, 120000);
    CHECK(s->state == GODWIT__V1__STATE__COMPLETE, "state %d: %s", s->state, s->error);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    CHECK(leecher_stop(&r->leecher) == 0, "leecher exit status");
    read_file(r->leecher.image, dest, r->size);
    CHECK(memcmp(dest, expected, r->size) == 0, "destination differs from source + writes");
    r->bytes_compared += r->size;
    free(expected);
    free(dest);
}

static void finish_failed(struct run *r)
{
    int status = leecher_wait_exit(&r->leecher, 60000);
    CHECK(status > 0 && status < 128, "the leecher must fail loudly, exit %d", status);
    /* The source is intact and not frozen: its app can still write. */
    struct nbd_handle *nbd = seeder_nbd(&r->seeder);
    char byte = 7;
    CHECK(nbd_pwrite(nbd, &byte, 1, 0, 0) == 0, "the restarted source refuses writes");
    nbd_close(nbd);
    test_stop(r->writer, 10000);
}

static void one_run(uint64_t seed, int index, int forced, uint64_t *compared)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull; /* splitmix: spread nearby seeds apart */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    struct run r = {.rng = z ^ (z >> 31)};
    r.size = (uint64_t)(4 + next(&r.rng) % 29) << 20; /* 4-32 MiB */
    r.chunk = 65536u << (next(&r.rng) % 5);           /* 64K-1M */
    snprintf(r.workers, sizeof r.workers, "%u", 1u << (next(&r.rng) % 6));
    snprintf(r.channels, sizeof r.channels, "%u", 1u << (next(&r.rng) % 4));
    enum fault fault = (enum fault)(next(&r.rng) % FAULTS);
    if (forced >= 0)
        fault = (enum fault)forced;
    printf("soak run %d: %llu MiB, chunk %llu K, %s workers, %s channels, fault %s\n", index,
           (unsigned long long)(r.size >> 20), (unsigned long long)(r.chunk >> 10), r.workers,
           r.channels, fault_names[fault]);
    fflush(stdout);
    seeder_start(&r.seeder, "soak", r.size, r.chunk, NULL);
    bool slow = fault == SLOW_LINK || fault == POSTCOPY_LEECHER_KILL;
    start_link(&r, slow ? "8" : "0");
    start_writer(&r, slow ? "1" : "4");
    start_leecher(&r);
    if (inject(&r, fault))
        finish_ok(&r, fault);
    else
        finish_failed(&r);
    test_stop(r.linkem, 5000);
    seeder_cleanup(&r.seeder);
    *compared += r.bytes_compared;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 4;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL);
    printf("test-soak: %d runs, seed %llu\n", runs, (unsigned long long)seed);
    int forced = -1;
    for (int f = 0; argc > 3 && f < FAULTS; f++)
        if (strcmp(argv[3], fault_names[f]) == 0)
            forced = f;
    CHECK(argc <= 3 || forced >= 0, "unknown fault %s", argv[3]);
    uint64_t compared = 0;
    for (int i = 0; i < runs; i++)
        one_run(seed + (uint64_t)i * 7919, i, forced, &compared);
    printf("test-soak: %d runs, %d faults injected, %llu bytes compared: ok\n", runs, runs,
           (unsigned long long)compared);
    return 0;
}
