/* SPDX-License-Identifier: MIT */
/* The leecher on a slow link (godwit-linkem --rate-mbps 6 --shared-rate,
 * one 6 MB/s line for all connections): control never waits behind bulk
 * data. During a saturated pre-copy, Finalize with 2 dirty chunks returns
 * within 1 s with a small downtime, and an on-demand read of a chunk not
 * yet pulled is served ahead of the background pulls.
 *
 *   test-slow-link finalize */
#include "leecher-harness.h"
#include "testlib.h"

#include <string.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, SIZE = 32 << 20 };

/* godwit-linkem on port 0 to TARGET with one shared line of MBPS MB/s
 * ("0": no cap); its address in RELAY. */
static pid_t shared_link_start(const char *target, const char *mbps, const char *dir, char *relay)
{
    const char *flags[] = {"--rate-mbps", mbps, "--shared-rate", NULL};
    return linkem_start_with(target, flags, dir, relay);
}

/* Starts a leecher on S through RELAY with EXTRA flags. */
static void leecher_via(struct leecher_proc *l, struct seeder_proc *s, const char *relay,
                        const char *const *extra)
{
    char saved[64];
    snprintf(saved, sizeof saved, "%s", s->target);
    snprintf(s->target, sizeof s->target, "%s", relay);
    leecher_start(l, s, extra);
    snprintf(s->target, sizeof s->target, "%s", saved);
}

static void write_chunk(struct nbd_handle *nbd, uint64_t chunk, uint64_t seed)
{
    unsigned char buf[4096];
    test_fill_random(buf, sizeof buf, seed);
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, chunk * CHUNK, 0) == 0, "write: %s", nbd_get_error());
}

static void test_finalize(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "slow-link", SIZE, CHUNK, NULL);
    char relay[64];
    pid_t linkem = shared_link_start(s.target, "6", s.dir, relay);
    struct leecher_proc l = {0};
    const char *extra[] = {"--sync-interval", "600000", "--skip-final-sync", NULL};
    leecher_via(&l, &s, relay, extra);
    leecher_wait_local(&l, 16, 30000);
    sleep(2); /* pre-copy in full swing: the line is saturated */
    struct nbd_handle *src = seeder_nbd(&s);
    write_chunk(src, 1, 11);
    write_chunk(src, 3, 12);
    nbd_close(src);
    uint64_t start = test_now_us(), downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    uint64_t took = test_now_us() - start;
    Godwit__V1__StatusResponse *st = leecher_status(&l);
    CHECK(st && st->finalize_dirty_chunks == 2, "the freeze carried %llu chunks, not 2",
          st ? (unsigned long long)st->finalize_dirty_chunks : 0ull);
    CHECK(st->chunks_local < st->chunks_total - 64, "the pull was not still running (%llu of %llu)",
          (unsigned long long)st->chunks_local, (unsigned long long)st->chunks_total);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    /* An on-demand read of the last chunk (the pull goes in order: not
     * there yet) while the background pull saturates the line. */
    struct nbd_handle *dst = leecher_nbd(&l);
    unsigned char got[4096], want[4096];
    uint64_t read_start = test_now_us();
    CHECK(nbd_pread(dst, got, sizeof got, SIZE - CHUNK, 0) == 0, "read: %s", nbd_get_error());
    uint64_t read_took = test_now_us() - read_start;
    nbd_close(dst);
    FILE *f = fopen(s.image, "rb");
    CHECK(f && fseek(f, SIZE - CHUNK, SEEK_SET) == 0 &&
              fread(want, 1, sizeof want, f) == sizeof want,
          "read the source");
    fclose(f);
    CHECK(memcmp(got, want, sizeof got) == 0, "the on-demand read differs from the source");
    printf("6 MB/s shared line, saturated pre-copy, 2 dirty chunks: Finalize %.1f ms, downtime "
           "%.3f ms, an on-demand read %.1f ms\n",
           (double)took / 1000, (double)downtime / 1000, (double)read_took / 1000);
    CHECK(took < 1000000, "Finalize took %.1f ms (at most 1 s)", (double)took / 1000);
    CHECK(downtime < 250000, "downtime %.1f ms (at most 250 ms)", (double)downtime / 1000);
    CHECK(read_took < 1000000, "an on-demand read took %.1f ms (at most 1 s)",
          (double)read_took / 1000);
    leecher_stop(&l);
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "finalize") == 0)
        test_finalize();
    else
        CHECK(false, "usage: test-slow-link finalize");
    return 0;
}
