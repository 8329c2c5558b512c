/* SPDX-License-Identifier: MIT */
/* The leecher on a slow link (godwit-linkem --rate-mbps 6 --shared-rate,
 * one 6 MB/s line for all connections): control never waits behind bulk
 * data. During a saturated pre-copy, Finalize with 2 dirty chunks returns
 * within 1 s with a downtime under 250 ms, and an on-demand read of a chunk
 * not yet pulled is served ahead of the background pulls, within 1 s. What
 * the machine adds is measured in the same run and added to those bounds,
 * not assumed: the state-file write Finalize waits for on each side (a
 * write, fsync, rename and directory fsync in the same directory, timed by
 * the test just before and after), and for the read a ReadAt of the same
 * chunk size the test sends through the same line just before (the line's
 * queue and the path; a read queued behind the bulk pulls in the line
 * would wait seconds).
 *
 * And --max-bandwidth through a link faster than the cap (godwit-linkem
 * without a rate): the bytes pulled over 6 s stay within 5% of the cap,
 * and reach it within 5% when the pull was bound by the cap (a background
 * pull waited for tokens nearly all the time: Status
 * bandwidth_throttled_us), less what the same run's scheduler made the
 * bucket forfeit (bandwidth_forfeited_bytes: tokens dropped because a
 * waiting pull woke over 50 ms late; the product's own count of it); a
 * machine too slow to reach the cap only checks the upper bound. On-demand
 * reads during the capped post-copy pull go ahead of the waiting
 * background pulls: each takes at most 100 ms more than a ReadAt of the
 * same chunk that the test itself sends through the same relay just
 * before (the path's own cost on this machine in this run; a read that
 * queued behind the 4 waiting 256K pulls would wait up to 128 ms more at
 * 8M).
 *
 *   test-slow-link finalize
 *   test-slow-link max-bandwidth [RATE, default 8M] */
#include "leecher-harness.h"
#include "options.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
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

static void write_chunk(struct nbd_handle *nbd, uint64_t chunk, uint64_t seed)
{
    unsigned char buf[4096];
    test_fill_random(buf, sizeof buf, seed);
    CHECK(nbd_pwrite(nbd, buf, sizeof buf, chunk * CHUNK, 0) == 0, "write: %s", nbd_get_error());
}

/* What a state-file save costs on this machine now: 4 KiB written to a
 * temporary name in DIR, fsynced, renamed, the directory fsynced (us). */
static uint64_t state_file_floor_us(const char *dir)
{
    char tmp[600], path[600];
    snprintf(tmp, sizeof tmp, "%s/floor.tmp", dir);
    snprintf(path, sizeof path, "%s/floor", dir);
    unsigned char block[4096];
    test_fill_random(block, sizeof block, 7);
    uint64_t start = test_now_us();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, block, sizeof block) == (ssize_t)sizeof block && fsync(fd) == 0 &&
              close(fd) == 0 && rename(tmp, path) == 0,
          "the state-file floor in %s: %s", dir, strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0 && fsync(dfd) == 0 && close(dfd) == 0, "fsync %s: %s", dir, strerror(errno));
    return test_now_us() - start;
}

/* A ReadAt of CHUNK sent by the test through RELAY: how long the path to
 * the seeder takes on this machine now, without the leecher (us). */
static uint64_t timed_readat(struct rpc_channel *relay, uint64_t chunk);

static void test_finalize(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "slow-link", SIZE, CHUNK, NULL);
    char relay[64];
    pid_t linkem = shared_link_start(s.target, "6", s.dir, relay);
    struct leecher_proc l = {0};
    const char *extra[] = {"--sync-interval", "600000", "--skip-final-sync", NULL};
    leecher_start_via(&l, &s, relay, extra);
    leecher_wait_local(&l, 16, 30000);
    sleep(2); /* pre-copy in full swing: the line is saturated */
    struct nbd_handle *src = seeder_nbd(&s);
    write_chunk(src, 1, 11);
    write_chunk(src, 3, 12);
    nbd_close(src);
    uint64_t floor = state_file_floor_us(s.dir);
    uint64_t start = test_now_us(), downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    uint64_t took = test_now_us() - start;
    uint64_t floor_after = state_file_floor_us(s.dir);
    floor = floor_after > floor ? floor_after : floor;
    Godwit__V1__StatusResponse *st = leecher_status(&l);
    CHECK(st && st->finalize_dirty_chunks == 2, "the freeze carried %llu chunks, not 2",
          st ? (unsigned long long)st->finalize_dirty_chunks : 0ull);
    CHECK(st->chunks_local < st->chunks_total - 64, "the pull was not still running (%llu of %llu)",
          (unsigned long long)st->chunks_local, (unsigned long long)st->chunks_total);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    /* An on-demand read of the last chunk (the pull goes in order: not
     * there yet) while the background pull saturates the line. */
    char err[256];
    struct rpc_channel_config config = {.target = relay, .max_message = 32 << 20};
    struct rpc_channel *direct = rpc_channel_open(&config, err, sizeof err);
    CHECK(direct, "a channel to the relay: %s", err);
    uint64_t path = timed_readat(direct, SIZE / CHUNK - 2); /* connects, then the line's queue */
    rpc_channel_close(direct);
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
           "%.3f ms, an on-demand read %.1f ms; this run's state-file save %.1f ms, ReadAt "
           "through the line %.1f ms\n",
           (double)took / 1000, (double)downtime / 1000, (double)read_took / 1000,
           (double)floor / 1000, (double)path / 1000);
    CHECK(took < 1000000 + 2 * floor, "Finalize took %.1f ms (at most 1 s and 2 x %.1f ms)",
          (double)took / 1000, (double)floor / 1000);
    CHECK(downtime < 250000 + floor, "downtime %.1f ms (at most 250 ms and %.1f ms)",
          (double)downtime / 1000, (double)floor / 1000);
    CHECK(read_took < 1000000 + path, "an on-demand read took %.1f ms (at most 1 s and %.1f ms)",
          (double)read_took / 1000, (double)path / 1000);
    leecher_stop(&l);
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

/* bytes_pulled, bandwidth_throttled_us and _forfeited_bytes now, and when. */
struct pull_sample {
    uint64_t at_us, bytes, throttled_us, forfeited;
};

static struct pull_sample sample_pull(struct leecher_proc *l)
{
    Godwit__V1__StatusResponse *st = leecher_status(l);
    CHECK(st, "Status");
    struct pull_sample p = {test_now_us(), st->bytes_pulled, st->bandwidth_throttled_us,
                            st->bandwidth_forfeited_bytes};
    protobuf_c_message_free_unpacked(&st->base, NULL);
    return p;
}

/* A ReadAt of CHUNK sent by the test through RELAY: how long the path to
 * the seeder takes on this machine now, without the leecher (us). */
static uint64_t timed_readat(struct rpc_channel *relay, uint64_t chunk)
{
    Godwit__V1__ReadAtRequest request = GODWIT__V1__READ_AT_REQUEST__INIT;
    request.offset = chunk * CHUNK;
    request.length = CHUNK;
    request.want_checksum = true;
    ProtobufCMessage *reply = NULL;
    struct rpc_result result;
    uint64_t start = test_now_us();
    grpc_status_code status =
        rpc_call(relay, "/godwit.v1.Seeder/ReadAt", &request.base,
                 &godwit__v1__read_at_response__descriptor, &reply, 10000, &result);
    uint64_t took = test_now_us() - start;
    CHECK(status == GRPC_STATUS_OK, "ReadAt through the relay: %s", result.message);
    protobuf_c_message_free_unpacked(reply, NULL);
    return took;
}

/* Reads chunk CHUNK of the leecher's export, compares it with the source;
 * returns how long the read took in microseconds. */
static uint64_t timed_read(struct nbd_handle *dst, FILE *source, uint64_t chunk)
{
    unsigned char got[4096], want[4096];
    uint64_t start = test_now_us();
    CHECK(nbd_pread(dst, got, sizeof got, chunk * CHUNK, 0) == 0, "read: %s", nbd_get_error());
    uint64_t took = test_now_us() - start;
    CHECK(fseek(source, (long)(chunk * CHUNK), SEEK_SET) == 0 &&
              fread(want, 1, sizeof want, source) == sizeof want,
          "read the source");
    CHECK(memcmp(got, want, sizeof got) == 0, "chunk %llu differs from the source",
          (unsigned long long)chunk);
    return took;
}

/* 6 s at 8M is 48 MiB of the 96: the pull is still running after it. */
enum { CAPPED_SIZE = 96 << 20, WINDOW_US = 6000000, ON_DEMAND_READS = 4 };

static void test_max_bandwidth(const char *rate_text)
{
    uint64_t rate;
    CHECK(parse_size(rate_text, &rate) == 0 && rate >= (1 << 20), "a rate of at least 1M: %s",
          rate_text);
    struct seeder_proc s = {0};
    seeder_start(&s, "max-bandwidth", CAPPED_SIZE, CHUNK, NULL);
    char relay[64];
    pid_t linkem = linkem_start(s.target, "0", "0", s.dir, relay); /* faster than any cap */
    struct leecher_proc l = {0};
    /* 4 workers of 256K reads: the bytes in flight at either end of the
     * window (charged when asked for, counted when they arrive), at most
     * 1 MiB, are 2% of it. */
    const char *extra[] = {"--max-bandwidth", rate_text, "--batch", "256K", "--workers", "4",
                           "--sync-interval", "600000",  NULL};
    leecher_start_via(&l, &s, relay, extra);
    Godwit__V1__StatusResponse *st = leecher_status(&l);
    CHECK(st && st->max_bandwidth == rate, "Status shows max_bandwidth %llu, not %llu",
          st ? (unsigned long long)st->max_bandwidth : 0ull, (unsigned long long)rate);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    leecher_wait_local(&l, 8, 30000);
    struct pull_sample a = sample_pull(&l);
    usleep(WINDOW_US);
    struct pull_sample b = sample_pull(&l);
    double seconds = (double)(b.at_us - a.at_us) / 1e6;
    double measured = (double)(b.bytes - a.bytes) / seconds;
    double throttled = (double)(b.throttled_us - a.throttled_us) / (double)(b.at_us - a.at_us);
    double forfeited = (double)(b.forfeited - a.forfeited) / seconds; /* B/s */
    bool cap_bound = throttled >= 0.95;
    printf("--max-bandwidth %s (%llu B/s): %.0f B/s over %.2f s, %.3fx the cap; throttled %.0f%% "
           "of the time, %.0f B/s (%.3fx the cap) forfeited to wake-ups over 50 ms late%s\n",
           rate_text, (unsigned long long)rate, measured, seconds, measured / (double)rate,
           throttled * 100, forfeited, forfeited / (double)rate,
           cap_bound ? "" : " (not bound by the cap: only the upper bound holds)");
    CHECK(b.bytes < CAPPED_SIZE, "the pull ended inside the window: the cap did not hold");
    CHECK(measured <= 1.05 * (double)rate, "pulled %.0f B/s, over the cap %llu by more than 5%%",
          measured, (unsigned long long)rate);
    CHECK(!cap_bound || measured >= 0.95 * (double)rate - forfeited,
          "pulled %.0f B/s while bound by the cap %llu: more than 5%% under it, and %.0f B/s "
          "under it less the %.0f B/s forfeited to late wake-ups",
          measured, (unsigned long long)rate, 0.95 * (double)rate - forfeited - measured,
          forfeited);
    /* Post-copy: reads of chunks not pulled yet (the pull goes in order,
     * so the last ones) are served ahead of the background pulls waiting
     * for tokens. */
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    struct nbd_handle *dst = leecher_nbd(&l);
    FILE *source = fopen(s.image, "rb");
    CHECK(source, "open the source");
    char err[256];
    struct rpc_channel_config config = {.target = relay, .max_message = 32 << 20};
    struct rpc_channel *direct = rpc_channel_open(&config, err, sizeof err);
    CHECK(direct, "a channel to the relay: %s", err);
    timed_readat(direct, 0); /* connects */
    uint64_t slowest = 0, slowest_path = 0, most_over = 0;
    for (uint64_t i = 0; i < ON_DEMAND_READS; i++) {
        uint64_t chunk = CAPPED_SIZE / CHUNK - 1 - i * 16;
        uint64_t path = timed_readat(direct, chunk - 1); /* not yet pulled either */
        uint64_t took = timed_read(dst, source, chunk);
        slowest = took > slowest ? took : slowest;
        slowest_path = path > slowest_path ? path : slowest_path;
        most_over = took > path && took - path > most_over ? took - path : most_over;
    }
    rpc_channel_close(direct);
    fclose(source);
    nbd_close(dst);
    st = leecher_status(&l);
    CHECK(st && st->chunks_local < st->chunks_total, "the capped pull was over before the reads");
    protobuf_c_message_free_unpacked(&st->base, NULL);
    printf("on-demand reads during the capped pull: the slowest %.1f ms, at most %.1f ms more "
           "than the test's own ReadAt through the relay just before (the slowest %.1f ms)\n",
           (double)slowest / 1000, (double)most_over / 1000, (double)slowest_path / 1000);
    /* Behind the workers' turns at the cap a read would wait a few of
     * 256K / rate (32 ms at 8M). */
    CHECK(most_over < 100000,
          "an on-demand read took %.1f ms more than a ReadAt through the same relay: it waited "
          "behind the capped background pulls",
          (double)most_over / 1000);
    leecher_stop(&l);
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "finalize") == 0)
        test_finalize();
    else if ((argc == 2 || argc == 3) && strcmp(argv[1], "max-bandwidth") == 0)
        test_max_bandwidth(argc == 3 ? argv[2] : "8M");
    else
        CHECK(false, "usage: test-slow-link finalize | max-bandwidth [RATE]");
    return 0;
}
