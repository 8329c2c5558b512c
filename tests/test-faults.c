/* SPDX-License-Identifier: MIT */
/* Single faults that the other tests leave out, most at and after Finalize (the matrix
 * is in docs/developing.md, "Faults"): each must end byte-exact or fail
 * loudly, with the source intact (frozen, every byte as at the freeze).
 *
 *   link-cut   the link cut in post-copy for longer than --pull-timeout:
 *              an on-demand read of a missing chunk fails with EIO (never
 *              zeros), the migration does not end, and once the link is
 *              back it completes byte-exact
 *   disk-full  the destination disk fills in post-copy: Status says so,
 *              health is NOT_SERVING, a read of a missing chunk fails with
 *              EIO, the source stays frozen and intact; once there is room
 *              the migration completes byte-exact
 *   second-leecher  a second leecher starts on the seeder while the first
 *              is in post-copy (the source frozen): it is refused at start
 *              (exit 1, one sentence: Abort first or resume the leecher
 *              that froze it), and the first completes byte-exact
 *
 *   seeder-down  in pre-copy, first the link cut for a while: Status.error
 *              says the seeder cannot be reached, and nothing once it is
 *              back; then the seeder killed and down: the leecher stays in
 *              pre-copy retrying and says so (nothing local is lost), a
 *              Finalize meanwhile is UNAVAILABLE (retry), and when a seeder
 *              answers again at that address with a new identity the
 *              leecher refuses to mix images and exits 1 saying so
 *   source-disk-full  the seeder's disk is full at Finalize (its state
 *              file cannot be written): Finalize fails and says so, the
 *              source stays frozen with its bytes as at the freeze, and the
 *              retry once there is room completes byte-exact
 *
 *   test-faults link-cut | disk-full | second-leecher | seeder-down |
 *               source-disk-full */
#include "leecher-harness.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHUNK = 64 << 10, SIZE = 32 << 20 };

static unsigned char *read_whole(const char *path, uint64_t size)
{
    unsigned char *buf = malloc(size);
    FILE *f = fopen(path, "rb");
    CHECK(buf && f && fread(buf, 1, size, f) == size, "read %s", path);
    fclose(f);
    return buf;
}

/* PATH holds exactly WANT (SIZE bytes); WHAT names it in the message. */
static void expect_file(const char *path, const unsigned char *want, const char *what)
{
    unsigned char *got = read_whole(path, SIZE);
    for (uint64_t i = 0; i < SIZE; i++)
        CHECK(got[i] == want[i], "%s differs at byte %llu (chunk %llu)", what,
              (unsigned long long)i, (unsigned long long)(i / CHUNK));
    free(got);
}

static Godwit__V1__StatusResponse *status_of(struct leecher_proc *l)
{
    Godwit__V1__StatusResponse *s = leecher_status(l);
    CHECK(s, "Status");
    return s;
}

/* A read of the last chunk (the pull goes in order: still missing) must
 * fail with EIO, never return bytes. */
static void expect_read_fails(struct leecher_proc *l)
{
    struct nbd_handle *nbd = leecher_nbd(l);
    unsigned char buf[4096];
    memset(buf, 0xaa, sizeof buf);
    CHECK(nbd_pread(nbd, buf, sizeof buf, SIZE - CHUNK, 0) == -1,
          "a missing chunk was served during the fault");
    CHECK(nbd_get_errno() == EIO, "errno %d, expected EIO", nbd_get_errno());
    nbd_close(nbd);
}

/* Waits for COMPLETE and checks the destination against SOURCE. */
static void expect_complete(struct leecher_proc *l, const unsigned char *source)
{
    Godwit__V1__StatusResponse *s = leecher_wait_state(l, GODWIT__V1__STATE__COMPLETE, 120000);
    CHECK(s->state == GODWIT__V1__STATE__COMPLETE, "state %d: %s (see %s)", s->state, s->error,
          l->log);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    CHECK(leecher_stop(l) == 0, "leecher exit status (see %s)", l->log);
    expect_file(l->image, source, "the destination");
}

static void test_link_cut(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "faults-link-cut", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image, SIZE);
    char relay[64];
    pid_t linkem = linkem_start(s.target, "8", "0", s.dir, relay);
    struct leecher_proc l = {0};
    const char *extra[] = {"--workers", "2", "--pull-timeout", "1500", NULL};
    leecher_start_via(&l, &s, relay, extra);
    leecher_wait_local(&l, 16, 30000);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    CHECK(kill(linkem, SIGUSR1) == 0, "cut the link");
    Godwit__V1__StatusResponse *before = status_of(&l);
    expect_read_fails(&l); /* after --pull-timeout */
    usleep(1000000);
    Godwit__V1__StatusResponse *during = status_of(&l);
    CHECK(during->state == GODWIT__V1__STATE__POSTCOPY, "state %d during the cut: %s",
          during->state, during->error);
    CHECK(during->chunks_local < during->chunks_total, "the pull ended over a cut link");
    printf("link cut in post-copy: %llu of %llu chunks local, %llu pulls retried during the "
           "cut\n",
           (unsigned long long)during->chunks_local, (unsigned long long)during->chunks_total,
           (unsigned long long)(during->pull_retries - before->pull_retries));
    protobuf_c_message_free_unpacked(&before->base, NULL);
    protobuf_c_message_free_unpacked(&during->base, NULL);
    expect_file(s.image, source, "the frozen source");
    CHECK(kill(linkem, SIGUSR2) == 0, "restore the link");
    expect_complete(&l, source);
    expect_file(s.image, source, "the source after COMPLETE");
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
    free(source);
}

/* Waits until Status.error mentions WHAT; returns that Status. */
static Godwit__V1__StatusResponse *wait_for_error(struct leecher_proc *l, const char *what)
{
    for (int waited = 0; waited < 30000; waited += 100) {
        Godwit__V1__StatusResponse *s = status_of(l);
        if (strstr(s->error, what))
            return s;
        protobuf_c_message_free_unpacked(&s->base, NULL);
        usleep(100000);
    }
    CHECK(false, "Status.error never said \"%s\" (see %s)", what, l->log);
    return NULL;
}

static void run(const char *command)
{
    CHECK(system(command) == 0, "%s", command);
}

static void test_disk_full(void)
{
    if (geteuid() != 0)
        test_skip("mounting a small tmpfs needs root");
    struct seeder_proc s = {0};
    seeder_start(&s, "faults-disk-full", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image, SIZE);
    char small[700], target[760], link[700], cmd[1600];
    snprintf(small, sizeof small, "%s/small", s.dir);
    CHECK(mkdir(small, 0700) == 0, "mkdir %s", small);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=12m godwit-test '%s' 2>/dev/null", small);
    if (system(cmd) != 0) {
        seeder_cleanup(&s);
        test_skip("cannot mount a tmpfs here");
    }
    snprintf(target, sizeof target, "%s/dest.img", small);
    int fd = open(target, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && ftruncate(fd, SIZE) == 0, "create %s", target);
    close(fd);
    snprintf(link, sizeof link, "%s/dest.img", s.dir);
    CHECK(symlink(target, link) == 0, "symlink %s", link);
    /* 8 MB/s: Finalize comes after a few chunks, long before 12 MiB. */
    char relay[64];
    pid_t linkem = linkem_start(s.target, "8", "0", s.dir, relay);
    struct leecher_proc l = {0};
    const char *extra[] = {"--workers", "2", "--pull-timeout", "1500", NULL};
    leecher_start_via(&l, &s, relay, extra);
    leecher_wait_local(&l, 4, 30000);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize");
    Godwit__V1__StatusResponse *full = wait_for_error(&l, "no space left");
    CHECK(full->state == GODWIT__V1__STATE__POSTCOPY, "state %d with a full disk", full->state);
    printf("disk full in post-copy: %llu of %llu chunks local: %s\n",
           (unsigned long long)full->chunks_local, (unsigned long long)full->chunks_total,
           full->error);
    protobuf_c_message_free_unpacked(&full->base, NULL);
    CHECK(!leecher_serving(&l), "health must be NOT_SERVING while the disk is full");
    expect_read_fails(&l);
    expect_file(s.image, source, "the frozen source");
    snprintf(cmd, sizeof cmd, "mount -o remount,size=64m '%s'", small);
    run(cmd);
    expect_complete(&l, source);
    expect_file(s.image, source, "the source after COMPLETE");
    test_stop(linkem, 5000);
    seeder_stop(&s);
    snprintf(cmd, sizeof cmd, "umount '%s'", small);
    run(cmd);
    seeder_cleanup(&s);
    free(source);
}

/* The whole log at PATH has NEEDLE. */
static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_second_leecher(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "faults-second", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image, SIZE);
    char relay[64];
    pid_t linkem = linkem_start(s.target, "8", "0", s.dir, relay);
    struct leecher_proc a = {0};
    const char *extra[] = {"--workers", "2", NULL};
    leecher_start_via(&a, &s, relay, extra);
    leecher_wait_local(&a, 16, 30000);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&a, &downtime) == GRPC_STATUS_OK, "Finalize of the first");
    char log[700], cmd[3000];
    char *leecher = test_program("leecher/godwit-leecher");
    snprintf(log, sizeof log, "%s/second.log", s.dir);
    snprintf(cmd, sizeof cmd,
             "timeout 60 '%s' --seeder %s --image '%s/second.img' --control 127.0.0.1:0 "
             "--log-format json >'%s' 2>&1",
             leecher, s.target, s.dir, log);
    free(leecher);
    int status = system(cmd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1,
          "a second leecher on a frozen seeder exited with %d, not 1 (see %s)", status, log);
    CHECK(log_has(log, "is frozen by a migration this leecher has no record of"),
          "the second leecher did not say why (see %s)", log);
    Godwit__V1__StatusResponse *first = status_of(&a);
    CHECK(first->state == GODWIT__V1__STATE__POSTCOPY, "the first is in state %d: %s", first->state,
          first->error);
    protobuf_c_message_free_unpacked(&first->base, NULL);
    expect_file(s.image, source, "the frozen source");
    expect_complete(&a, source);
    expect_file(s.image, source, "the source after COMPLETE");
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
    free(source);
}

/* The seeder's state (Seeder.Info). */
static Godwit__V1__SeederState seeder_state(struct seeder_proc *s)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    CHECK(seeder_call(s, "Info", &request.base, &godwit__v1__info_response__descriptor, &response,
                      &result) == GRPC_STATUS_OK,
          "Info: %s", result.message);
    Godwit__V1__SeederState state = ((Godwit__V1__InfoResponse *)response)->state;
    protobuf_c_message_free_unpacked(response, NULL);
    return state;
}

static void test_source_disk_full(void)
{
    if (geteuid() != 0)
        test_skip("mounting a small tmpfs needs root");
    char dir[] = "/tmp/godwit-faults-source-XXXXXX", cmd[1600], state[600], filler[600];
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1m godwit-test '%s' 2>/dev/null", dir);
    if (system(cmd) != 0) {
        rmdir(dir);
        test_skip("cannot mount a tmpfs here");
    }
    snprintf(state, sizeof state, "%s/seeder.state", dir);
    snprintf(filler, sizeof filler, "%s/filler", dir);
    snprintf(cmd, sizeof cmd, "head -c 2M /dev/zero >'%s' 2>/dev/null", filler);
    CHECK(system(cmd) != 0, "a 1 MiB tmpfs took 2 MiB");
    struct seeder_proc s = {0};
    const char *flags[] = {"--state-file", state, NULL};
    seeder_start(&s, "faults-source-full", SIZE, CHUNK, flags);
    unsigned char *source = read_whole(s.image, SIZE);
    struct leecher_proc l = {0};
    const char *extra[] = {"--workers", "2", NULL};
    leecher_start(&l, &s, extra);
    leecher_wait_local(&l, SIZE / CHUNK, 60000);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) != GRPC_STATUS_OK,
          "Finalize succeeded with no room for the seeder's state file");
    CHECK(seeder_state(&s) == GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN,
          "the source is not frozen");
    Godwit__V1__StatusResponse *st = status_of(&l);
    CHECK(st->state != GODWIT__V1__STATE__FAILED && st->state != GODWIT__V1__STATE__COMPLETE,
          "state %d after the failed Finalize: %s", st->state, st->error);
    protobuf_c_message_free_unpacked(&st->base, NULL);
    CHECK(log_has(s.log, "cannot write the seeder state file"), "the seeder did not say why");
    expect_file(s.image, source, "the frozen source");
    CHECK(unlink(filler) == 0, "rm %s", filler);
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_OK, "Finalize once there is room");
    expect_complete(&l, source);
    expect_file(s.image, source, "the source after COMPLETE");
    seeder_stop(&s);
    seeder_cleanup(&s);
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    run(cmd);
    rmdir(dir);
    free(source);
}

/* Waits until Status.error is empty again. */
static void wait_error_cleared(struct leecher_proc *l)
{
    for (int waited = 0; waited < 30000; waited += 100) {
        Godwit__V1__StatusResponse *s = status_of(l);
        bool clear = s->error[0] == 0;
        protobuf_c_message_free_unpacked(&s->base, NULL);
        if (clear)
            return;
        usleep(100000);
    }
    CHECK(false, "Status.error still set 30 s after the seeder answered again (see %s)", l->log);
}

/* Waits until the leecher has retried more than BEFORE pulls. */
static void wait_retries(struct leecher_proc *l, uint64_t before)
{
    for (int waited = 0; waited < 30000; waited += 100) {
        Godwit__V1__StatusResponse *st = status_of(l);
        uint64_t retries = st->pull_retries;
        protobuf_c_message_free_unpacked(&st->base, NULL);
        if (retries > before)
            return;
        usleep(100000);
    }
    CHECK(false, "no pull was retried in 30 s with the seeder down (see %s)", l->log);
}

static void test_seeder_down(void)
{
    struct seeder_proc s = {0};
    seeder_start(&s, "faults-seeder-down", SIZE, CHUNK, NULL);
    unsigned char *source = read_whole(s.image, SIZE);
    char relay[64];
    pid_t linkem = linkem_start(s.target, "8", "0", s.dir, relay);
    struct leecher_proc l = {0};
    const char *extra[] = {"--workers", "2", "--pull-timeout", "1500", NULL};
    leecher_start_via(&l, &s, relay, extra);
    leecher_wait_local(&l, 16, 30000);
    CHECK(kill(linkem, SIGUSR1) == 0, "cut the link");
    protobuf_c_message_free_unpacked(&wait_for_error(&l, "the seeder cannot be reached")->base,
                                     NULL);
    CHECK(kill(linkem, SIGUSR2) == 0, "restore the link");
    wait_error_cleared(&l);
    test_kill(s.pid);
    s.pid = 0;
    Godwit__V1__StatusResponse *before = status_of(&l);
    wait_retries(&l, before->pull_retries);
    Godwit__V1__StatusResponse *down = status_of(&l);
    CHECK(down->state == GODWIT__V1__STATE__PRECOPY, "state %d with the seeder down: %s",
          down->state, down->error);
    CHECK(down->chunks_local >= before->chunks_local, "chunks local fell from %llu to %llu",
          (unsigned long long)before->chunks_local, (unsigned long long)down->chunks_local);
    protobuf_c_message_free_unpacked(&down->base, NULL);
    down = wait_for_error(&l, "the seeder cannot be reached");
    char cmd[1200], out[700];
    char *ctl = test_program("ctl/godwit-ctl");
    snprintf(out, sizeof out, "%s/status.txt", s.dir);
    snprintf(cmd, sizeof cmd, "'%s' --control %s status >'%s'", ctl, l.control, out);
    free(ctl);
    CHECK(system(cmd) == 0, "%s", cmd);
    CHECK(log_has(out, "error:               the seeder cannot be reached"),
          "godwit-ctl status does not show it (see %s)", out);
    printf("seeder down in pre-copy: PRECOPY, %llu of %llu chunks local, %llu pulls retried, "
           "Status.error '%s', health %s\n",
           (unsigned long long)down->chunks_local, (unsigned long long)down->chunks_total,
           (unsigned long long)down->pull_retries, down->error,
           leecher_serving(&l) ? "SERVING" : "NOT_SERVING");
    protobuf_c_message_free_unpacked(&before->base, NULL);
    protobuf_c_message_free_unpacked(&down->base, NULL);
    uint64_t downtime;
    CHECK(leecher_finalize_call(&l, &downtime) == GRPC_STATUS_UNAVAILABLE,
          "Finalize with the seeder down did not say UNAVAILABLE (retry)");
    seeder_restart(&s); /* back at the same address with a new identity */
    int status = leecher_wait_exit(&l, 60000);
    CHECK(status == 1, "the leecher exited %d once a seeder of another identity answered", status);
    CHECK(log_has(l.log, "refus"), "no sentence about refusing to mix images in %s", l.log);
    expect_file(s.image, source, "the source");
    test_stop(linkem, 5000);
    seeder_stop(&s);
    seeder_cleanup(&s);
    free(source);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "link-cut") == 0)
        test_link_cut();
    else if (argc == 2 && strcmp(argv[1], "disk-full") == 0)
        test_disk_full();
    else if (argc == 2 && strcmp(argv[1], "second-leecher") == 0)
        test_second_leecher();
    else if (argc == 2 && strcmp(argv[1], "seeder-down") == 0)
        test_seeder_down();
    else if (argc == 2 && strcmp(argv[1], "source-disk-full") == 0)
        test_source_disk_full();
    else
        CHECK(false, "usage: test-faults link-cut | disk-full | second-leecher | seeder-down | "
                     "source-disk-full");
    return 0;
}
