/* SPDX-License-Identifier: MIT */
/* watch: live progress, one line per --interval, until the migration is
 * COMPLETE (exit 0) or FAILED (exit 1). Forward-only: a Status reply
 * older than the one on screen (an earlier state, fewer bytes pulled or
 * fewer Sync rounds, as from a lagging or restarted leecher) is not shown;
 * the line on screen is repeated instead, so no figure goes backwards. */
#include "ctl.h"

#include <stdio.h>
#include <time.h>

/* What is on screen: the newest snapshot and the pull rate up to it. */
struct shown {
    Godwit__V1__StatusResponse *s; /* owned; NULL before the first reply */
    double at;                     /* when it arrived (ctl_now_s) */
    double rate;                   /* bytes/s between the last two snapshots */
};

/* PRECOPY < FINALIZING < POSTCOPY < COMPLETE, FAILED: the order a
 * migration moves in. */
static int state_rank(Godwit__V1__State state)
{
    return state == GODWIT__V1__STATE__FAILED ? 4 : (int)state;
}

static bool older(const Godwit__V1__StatusResponse *poll, const Godwit__V1__StatusResponse *shown)
{
    return state_rank(poll->state) < state_rank(shown->state) ||
           poll->bytes_pulled < shown->bytes_pulled || poll->sync_rounds < shown->sync_rounds ||
           poll->pull_retries < shown->pull_retries ||
           poll->checksum_mismatches < shown->checksum_mismatches;
}

/* Takes POLL (owned) into SHOWN unless it is older than what is shown. */
static void take(struct shown *shown, Godwit__V1__StatusResponse *poll)
{
    double now = ctl_now_s();
    if (shown->s && older(poll, shown->s)) {
        protobuf_c_message_free_unpacked(&poll->base, NULL);
        return;
    }
    if (!shown->s)
        shown->rate = poll->pull_rate;
    else if (now > shown->at)
        shown->rate = (double)(poll->bytes_pulled - shown->s->bytes_pulled) / (now - shown->at);
    if (shown->s)
        protobuf_c_message_free_unpacked(&shown->s->base, NULL);
    shown->s = poll;
    shown->at = now;
}

static void print_line(const struct shown *shown)
{
    const Godwit__V1__StatusResponse *s = shown->s;
    char clock[16], pulled[32], rate[32];
    time_t t = time(NULL);
    strftime(clock, sizeof clock, "%H:%M:%S", localtime(&t));
    printf("%s %-10s chunks %llu/%llu (%.1f%%)  pulled %s  %s/s  dirty %llu  predicted downtime "
           "%.1f ms  sync rounds %llu  retries %llu  mismatches %llu\n",
           clock, ctl_state_name(s->state), (unsigned long long)s->chunks_local,
           (unsigned long long)s->chunks_total,
           s->chunks_total ? 100.0 * (double)s->chunks_local / (double)s->chunks_total : 100.0,
           ctl_bytes((double)s->bytes_pulled, pulled, sizeof pulled),
           ctl_bytes(shown->rate, rate, sizeof rate), (unsigned long long)s->finalize_dirty_chunks,
           s->predicted_downtime_ms, (unsigned long long)s->sync_rounds,
           (unsigned long long)s->pull_retries, (unsigned long long)s->checksum_mismatches);
}

/* Prints what is shown; the exit status once the migration ended, else -1. */
static int show(const struct ctl *ctl, const struct shown *shown)
{
    if (ctl->json) {
        if (ctl_print_status(shown->s, true, 0) != 0)
            return 1;
    } else {
        print_line(shown);
    }
    fflush(stdout);
    if (shown->s->state == GODWIT__V1__STATE__COMPLETE)
        return 0;
    if (shown->s->state != GODWIT__V1__STATE__FAILED)
        return -1;
    fprintf(stderr, "godwit-ctl: the migration failed: %s\n", shown->s->error);
    return 1;
}

int ctl_watch(const struct ctl *ctl)
{
    struct shown shown = {0};
    double start = ctl_now_s();
    int r = -1;
    while (r < 0) {
        if (ctl->timeout_given && ctl_now_s() - start >= ctl->timeout_s) {
            fprintf(stderr, "godwit-ctl: the migration was not complete after %u s (--timeout)\n",
                    ctl->timeout_s);
            r = 1;
            break;
        }
        Godwit__V1__StatusResponse *poll = ctl_status(ctl, 5000);
        if (!poll) {
            r = 1;
            break;
        }
        take(&shown, poll);
        r = show(ctl, &shown);
        if (r < 0)
            nanosleep(&(struct timespec){ctl->interval_ms / 1000,
                                         (long)(ctl->interval_ms % 1000) * 1000000},
                      NULL);
    }
    if (shown.s)
        protobuf_c_message_free_unpacked(&shown.s->base, NULL);
    return r;
}
