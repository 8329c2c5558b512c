/* SPDX-License-Identifier: MIT */
/* End-to-end integrity: a migration through godwit-linkem --corrupt-every,
 * a relay that flips bits in ReadAt reply payloads on the way.
 *
 *   corrupt      one flip per MiB: every reply that was hit is refused by
 *                its checksum and pulled again, background and on-demand
 *                (reads of the export after an early Finalize); the copy
 *                ends byte-exact and the mismatches are counted in Status.
 *   corrupt-all  one flip per KiB: every reply is corrupt, so the leecher
 *                fails loudly after --checksum-retries re-pulls of a range,
 *                wrote not one corrupt byte, and the source is intact
 *                (still tracking, its image unchanged).
 *
 *   verify       --verify: the images are compared at the end of post-copy
 *                (a chunk the destination app wrote is skipped): PASSED,
 *                then COMPLETE.
 *   verify-bad   a byte of the destination file changed behind the
 *                leecher's back after it was pulled: --verify finds it,
 *                the migration FAILS loudly, the source image is intact.
 *
 *   test-integrity corrupt | corrupt-all | verify | verify-bad */
#include "leecher-harness.h"
#include "testlib.h"

#include <string.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, SIZE = 16 << 20, ON_DEMAND_BYTES = 2 << 20 };

static unsigned char *read_whole(const char *path)
{
    unsigned char *buf = malloc(SIZE);
    FILE *f = fopen(path, "rb");
    CHECK(buf && f && fread(buf, 1, SIZE, f) == SIZE, "read %s", path);
    fclose(f);
    return buf;
}

/* Starts a leecher on S through a relay with LINK_FLAGS; the relay's pid. */
static pid_t leecher_via_relay(struct leecher_proc *l, struct seeder_proc *s,
                               const char *const *link_flags, const char *const *extra)
{
    char relay[64], saved[64];
    pid_t linkem = linkem_start_with(s->target, link_flags, s->dir, relay);
    snprintf(saved, sizeof saved, "%s", s->target);
    snprintf(s->target, sizeof s->target, "%s", relay);
    leecher_start(l, s, extra);
    snprintf(s->target, sizeof s->target, "%s", saved);
    return linkem;
}

/* Lines of LOG_PATH with "event":"EVENT" and ALSO (NULL: anything). */
static unsigned count_events_with(const char *log_path, const char *event, const char *also)
{
    char want[64], line[4096];
    snprintf(want, sizeof want, "\"event\":\"%s\"", event);
    FILE *f = fopen(log_path, "r");
    unsigned n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, want) && (!also || strstr(line, also));
    if (f)
        fclose(f);
    return n;
}

static unsigned count_events(const char *log_path, const char *event)
{
    return count_events_with(log_path, event, NULL);
}

static bool log_has(const char *log_path, const char *text)
{
    char line[4096];
    FILE *f = fopen(log_path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_corrupt(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "integrity", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image);
    /* One chunk per ReadAt and one flip per 256 KiB of reply payload on
     * each connection: one reply in four is hit (20 re-pulls of one range
     * are never all hit). 2 MB/s per connection: the reads of the last
     * chunks right after Finalize come long before the background pull
     * (in order from the start) is there, so they are on-demand pulls,
     * every fourth of them corrupt. */
    const char *link[] = {"--corrupt-every", "256", "--rate-mbps", "2", NULL};
    const char *extra[] = {"--batch", "64K", "--checksum-retries", "20", NULL};
    struct leecher_proc l = {0};
    pid_t linkem = leecher_via_relay(&l, &s, link, extra);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    struct nbd_handle *nbd = leecher_nbd(&l);
    unsigned char *got = malloc(CHUNK);
    for (uint64_t at = SIZE - CHUNK; at >= SIZE - ON_DEMAND_BYTES; at -= CHUNK) {
        CHECK(nbd_pread(nbd, got, CHUNK, at, 0) == 0, "read %llu: %s", (unsigned long long)at,
              nbd_get_error());
        CHECK(memcmp(got, source + at, CHUNK) == 0, "the export served wrong bytes at %llu",
              (unsigned long long)at);
    }
    nbd_close(nbd);
    free(got);
    Godwit__V1__StatusResponse *st = leecher_wait_state(&l, GODWIT__V1__STATE__COMPLETE, 60000);
    CHECK(st->state == GODWIT__V1__STATE__COMPLETE, "state %d: %s", st->state, st->error);
    CHECK(st->checksum_mismatches > 0, "no checksum mismatch counted through a corrupting relay");
    unsigned events = count_events(l.log, "checksum_mismatch");
    CHECK(events == st->checksum_mismatches, "%u checksum_mismatch events, Status counts %llu",
          events, (unsigned long long)st->checksum_mismatches);
    unsigned on_demand = count_events_with(l.log, "checksum_mismatch", "\"on_demand\":true");
    printf("corrupting relay: %llu replies refused and pulled again, %u of them on-demand\n",
           (unsigned long long)st->checksum_mismatches, on_demand);
    CHECK(on_demand > 0, "no on-demand pull was refused (each fourth should be)");
    protobuf_c_message_free_unpacked(&st->base, NULL);
    CHECK(leecher_stop(&l) == 0, "leecher exit status (see %s)", l.log);
    unsigned char *dest = read_whole(l.image);
    for (uint64_t i = 0; i < SIZE; i++)
        CHECK(dest[i] == source[i], "destination differs at byte %llu", (unsigned long long)i);
    free(dest);
    free(source);
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

/* Every chunk of the destination is unwritten (zeroes) or the source's. */
static void check_nothing_corrupt(const unsigned char *dest, const unsigned char *source)
{
    static const unsigned char zeros[CHUNK];
    for (uint64_t at = 0; at < SIZE; at += CHUNK)
        CHECK(memcmp(dest + at, zeros, CHUNK) == 0 || memcmp(dest + at, source + at, CHUNK) == 0,
              "chunk %llu of the destination is neither empty nor the source's",
              (unsigned long long)(at / CHUNK));
}

static void test_corrupt_all(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "integrity-all", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image);
    const char *link[] = {"--corrupt-every", "1", NULL};
    const char *extra[] = {"--checksum-retries", "2", NULL};
    struct leecher_proc l = {0};
    pid_t linkem = leecher_via_relay(&l, &s, link, extra);
    CHECK(leecher_wait_exit(&l, 30000) == 1, "the leecher did not fail (see %s)", l.log);
    CHECK(log_has(l.log, "3 ReadAt replies in a row for"),
          "no error naming the 3 mismatches of one range in %s", l.log);
    CHECK(count_events(l.log, "checksum_mismatch") >= 3, "fewer than 3 checksum_mismatch events");
    unsigned char *dest = read_whole(l.image);
    check_nothing_corrupt(dest, source);
    free(dest);
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *reply;
    struct rpc_result result;
    CHECK(seeder_call(&s, "Info", &request.base, &godwit__v1__info_response__descriptor, &reply,
                      &result) == GRPC_STATUS_OK,
          "Info: %s", result.message);
    Godwit__V1__InfoResponse *info = (Godwit__V1__InfoResponse *)reply;
    CHECK(info->state == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_TRACKING,
          "the source is in state %d, not still tracking", info->state);
    protobuf_c_message_free_unpacked(reply, NULL);
    unsigned char *after = read_whole(s.image);
    CHECK(memcmp(after, source, SIZE) == 0, "the source image changed");
    free(after);
    free(source);
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

static void test_verify(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "integrity-verify", SIZE, CHUNK, NULL);
    unsigned char *model = read_whole(s.image);
    const char *extra[] = {"--verify", NULL};
    struct leecher_proc l = {0};
    leecher_start(&l, &s, extra);
    leecher_wait_local(&l, SIZE / CHUNK, 30000);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    struct nbd_handle *nbd = leecher_nbd(&l); /* the destination app writes a chunk */
    test_fill_random(model + 3 * CHUNK + 100, 1000, 99);
    CHECK(nbd_pwrite(nbd, model + 3 * CHUNK + 100, 1000, 3 * CHUNK + 100, 0) == 0, "write: %s",
          nbd_get_error());
    nbd_close(nbd);
    Godwit__V1__StatusResponse *st = leecher_wait_state(&l, GODWIT__V1__STATE__COMPLETE, 60000);
    CHECK(st->state == GODWIT__V1__STATE__COMPLETE, "state %d: %s", st->state, st->error);
    CHECK(st->verify == GODWIT__V1__VERIFY_STATE__VERIFY_STATE_PASSED, "verify state %d",
          st->verify);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    CHECK(count_events(l.log, "verified") == 1, "no verified event in %s", l.log);
    CHECK(leecher_stop(&l) == 0, "leecher exit status (see %s)", l.log);
    unsigned char *dest = read_whole(l.image);
    CHECK(memcmp(dest, model, SIZE) == 0, "the destination is not source + the app's write");
    free(dest);
    free(model);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

static void test_verify_bad(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "integrity-verify-bad", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image);
    const char *extra[] = {"--verify", NULL};
    struct leecher_proc l = {0};
    leecher_start(&l, &s, extra);
    leecher_wait_local(&l, SIZE / CHUNK, 30000);
    /* A bad disk (or a bug) changes a pulled byte of chunk 7. */
    FILE *f = fopen(l.image, "r+b");
    unsigned char flipped = source[7 * CHUNK + 5] ^ 0x40;
    CHECK(f && fseek(f, 7 * CHUNK + 5, SEEK_SET) == 0 && fwrite(&flipped, 1, 1, f) == 1,
          "change %s", l.image);
    fclose(f);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    CHECK(leecher_wait_exit(&l, 30000) == 1, "the leecher did not fail (see %s)", l.log);
    CHECK(log_has(l.log, "--verify: 1 chunks of the destination differ"),
          "no error naming the differing chunk in %s", l.log);
    CHECK(count_events_with(l.log, "verify_mismatch", "\"offset\":458752") == 1,
          "no verify_mismatch event for chunk 7");
    CHECK(count_events(l.log, "complete") == 0, "the leecher reported complete");
    unsigned char *after = read_whole(s.image);
    CHECK(memcmp(after, source, SIZE) == 0, "the source image changed");
    free(after);
    free(source);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "corrupt") == 0)
        test_corrupt();
    else if (argc == 2 && strcmp(argv[1], "corrupt-all") == 0)
        test_corrupt_all();
    else if (argc == 2 && strcmp(argv[1], "verify") == 0)
        test_verify();
    else if (argc == 2 && strcmp(argv[1], "verify-bad") == 0)
        test_verify_bad();
    else
        CHECK(false, "usage: test-integrity corrupt | corrupt-all | verify | verify-bad");
    return 0;
}
